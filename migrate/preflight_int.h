/* Internal interfaces between the preflight modules (not for other commands). */
#ifndef HM_PREFLIGHT_INT_H
#define HM_PREFLIGHT_INT_H

#include "preflight.h"

/* Connection parameters for the live checks. */
typedef struct hm_pf_conn {
	const char *host;
	int port;
	const char *user;
	const char *dbname;
	const char *password; /* NULL: libpq's PGPASSWORD / PGPASSFILE rules */
	int connect_timeout;
} hm_pf_conn;

/* Run argv (no shell), capture up to max bytes of stdout into a malloc'd NUL-terminated
 * *out; stderr is captured into errbuf (first line). *status gets the exit status
 * (-1 if killed). 0, or -1 if it could not run. */
int hm_pf_run_capture(char *const argv[], char **out, size_t max, int *status, char *errbuf, size_t errsz,
		      hm_error *err);

/* The split stack's part of the report (preflight_stack.c): JSON and text. */
json_object *hm_pf_stack_json(const struct hm_stack *stack);
void hm_pf_stack_print(const struct hm_stack *stack, FILE *f);

/* Read the PostgreSQL major and the pgvector version an image ships. */
int hm_pf_image_target(const char *image, int *major, char *pgvector, size_t pgvector_sz, hm_error *err);

/* Connect and collect databases (+ sizes) and extensions into the report.
 * 0 when connected, -1 (err set, HM_EXIT_DATABASE) when the server did not answer. */
int hm_pf_live_collect(const hm_pf_conn *c, hm_preflight_report *r, hm_error *err);

#endif
