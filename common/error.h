/* Errors carried up with context: a function that fails fills an hm_error and returns
 * non-zero; only the command's top level prints it (hm_error_print). */
#ifndef HM_ERROR_H
#define HM_ERROR_H

#include <stdio.h>

#include "exitcode.h"

typedef struct hm_error {
	hm_exit code;	    /* exit code the command should end with */
	char message[1024]; /* lower case, names the path and the cause */
	char hint[512];	    /* what the user can do about it ("" if nothing) */
} hm_error;

/* Set code and message (printf-style); clears the hint. Returns -1 for `return hm_error_set(...)`. */
int hm_error_set(hm_error *err, hm_exit code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Set the hint line of an error already set. Returns -1. */
int hm_error_hint(hm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the message with more context ("while X: <old message>"). Returns -1. */
int hm_error_prefix(hm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set an error from errno for an operation on a path: maps ENOENT to HM_EXIT_INPUT,
 * EACCES/EPERM to HM_EXIT_PERMISSION, ENOSPC/EDQUOT to HM_EXIT_NO_SPACE, else HM_EXIT_IO.
 * Returns -1. */
int hm_error_errno(hm_error *err, int errnum, const char *what, const char *path);

/* Print "hive-migrate: error: MESSAGE (hint: HINT)" as one line on f. */
void hm_error_print(const hm_error *err, FILE *f);

#endif
