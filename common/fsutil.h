/* File-system helpers that keep user data safe: atomic writes (temp + fsync + rename +
 * directory fsync) and directory creation with explicit modes. */
#ifndef HM_FSUTIL_H
#define HM_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Write len bytes to path atomically with the given mode: a temp file in the same
 * directory, fsync, rename over path, fsync the directory. 0 or -1 with err set. */
int hm_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, hm_error *err);

/* fsync a directory so that a rename or create inside it is durable. 0 or -1. */
int hm_fsync_dir(const char *dir, hm_error *err);

/* fsync the directory holding path. 0 or -1. */
int hm_fsync_parent(const char *path, hm_error *err);

/* mkdir -p with mode for every directory it creates (existing ones are left as they are). */
int hm_mkdir_p(const char *path, mode_t mode, hm_error *err);

/* Read a whole (small) file into a malloc'd NUL-terminated buffer; *len gets its size.
 * Refuses files over max bytes. 0 or -1. */
int hm_read_file(const char *path, size_t max, char **out, size_t *len, hm_error *err);

/* Remove a directory tree without following symlinks; a missing path is not an error.
 * 0 or -1 with err set. */
int hm_rmtree(const char *path, hm_error *err);

/* Join two path parts into out (size outsz); -1 with err set if it does not fit. */
int hm_path_join(char *out, size_t outsz, const char *a, const char *b, hm_error *err);

#endif
