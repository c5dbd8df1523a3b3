/* Internal interfaces between the preflight modules (not for other commands). */
#ifndef HM_PREFLIGHT_INT_H
#define HM_PREFLIGHT_INT_H

#include "../common/pgconn.h"
#include "preflight.h"

/* Connection parameters for the live checks (hm_pf_conn_build). Not to be copied:
 * params points into the buffers here. */
typedef struct hm_pf_conn {
	hm_pgconn params;
	char port[16], timeout[16];
	int have;	   /* there is a server to try */
	int explicit_conn; /* the user named it: a failure to connect is a warning */
} hm_pf_conn;

/* The live server's connection, lowest precedence first: libpq's defaults and
 * environment (PGHOST, PGPORT, PGUSER, PGSERVICE, PGPASSFILE, ...) < the stack's compose
 * values (stack may be NULL) < --dbname (a connection string, URI or database name) <
 * --host/--port/--user and the caller's dbname/password. Without a stack or options, the
 * server is tried through libpq's environment alone when server_running, or when
 * PGHOST, PGHOSTADDR, PGPORT or PGSERVICE is set. Free c->params with hm_pgconn_free.
 * 0, or -1 with err set (HM_EXIT_USAGE: a bad --dbname). */
int hm_pf_conn_build(const hm_preflight_opts *o, const struct hm_stack *stack, int server_running,
		     hm_pf_conn *c, hm_error *err);

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
 * 0 when connected, -1 (err set, HM_EXIT_DATABASE) when the server did not answer, -2
 * (err set) when it is another cluster than the data directory's (system identifier). */
int hm_pf_live_collect(const hm_pf_conn *c, hm_preflight_report *r, hm_error *err);

/* The rules of a supported change of major (preflight_major.c, pure): "major-upgrade"
 * (warning, with the plan and the estimate), a missing extension, a locale the target lacks,
 * md5 passwords, free disk for the dump and the new cluster. 0, or -1 on allocation failure. */
int hm_pf_major_rules(const hm_preflight_facts *f, hm_preflight_report *r);

/* Gather the facts those rules need (target extensions and locales from the image, md5
 * roles and database sizes from the live server); best effort, nothing is refused here. */
void hm_pf_major_gather(const hm_preflight_opts *o, const hm_pf_conn *c, hm_preflight_report *r);

/* Is name a line of the newline-separated list? (locale names compared normalised:
 * "C.UTF-8" = "C.utf8"). Pure. */
int hm_pf_list_has(const char *list, const char *name, int locale);

#endif
