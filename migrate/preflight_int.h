/* Internal interfaces between the preflight modules (not for other commands). */
#ifndef HM_PREFLIGHT_INT_H
#define HM_PREFLIGHT_INT_H

#include "preflight.h"

/* What the split stack's compose configuration says about postgres-<profile>. */
typedef struct hm_pf_stack {
	char data_dir[4096]; /* host path of PGDATA (bind mount source + /pgdata) */
	char host[64];
	int port; /* published port, 0 if none */
	char user[128];
	char dbname[128];
	char password[256]; /* never printed */
} hm_pf_stack;

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

/* Resolve the split stack at stack_dir for profile via `docker compose config`. */
int hm_pf_stack_resolve(const char *stack_dir, const char *profile, hm_pf_stack *out, hm_error *err);

/* Read the PostgreSQL major and the pgvector version an image ships. */
int hm_pf_image_target(const char *image, int *major, char *pgvector, size_t pgvector_sz, hm_error *err);

/* Connect and collect databases (+ sizes) and extensions into the report.
 * 0 when connected, -1 (err set, HM_EXIT_DATABASE) when the server did not answer. */
int hm_pf_live_collect(const hm_pf_conn *c, hm_preflight_report *r, hm_error *err);

#endif
