/* Running an external command without a shell, capturing its output: how hive-migrate
 * talks to the docker CLI and compose. Secrets never go on argv. */
#ifndef HM_PROCESS_H
#define HM_PROCESS_H

#include "error.h"

/* Output of a finished command. */
typedef struct hm_proc_result {
	int status;   /* exit status (128+signal when killed), -1 if it could not run */
	char *out;    /* captured stdout (malloc'd, NUL-terminated; may be NULL) */
	char *errout; /* captured stderr (malloc'd; may be NULL) */
} hm_proc_result;

/* Run argv (argv[0] searched in PATH) with stdin from /dev/null, capturing stdout and
 * stderr (each up to 16 MB). 0 when it ran (whatever its status), -1 with err when it
 * could not be started. Free with hm_proc_result_free. */
int hm_proc_run(char *const argv[], hm_proc_result *res, hm_error *err);

void hm_proc_result_free(hm_proc_result *res);

/* Run argv and require exit status 0; otherwise -1 with HM_EXIT_ENGINE and a message
 * holding `what` and the last line(s) of stderr. *out (optional) gets stdout. */
int hm_proc_check(char *const argv[], const char *what, char **out, hm_error *err);

#endif
