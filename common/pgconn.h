/* libpq connection parameters built in layers, lowest precedence first: each layer sets
 * only the keywords it names and replaces what an earlier layer set; every keyword no
 * layer names is left to libpq (service file, PG* environment, compiled defaults), so
 * PGHOST, PGPORT, PGUSER, PGPASSWORD, PGPASSFILE, PGSERVICE, PGSSLMODE... work as in
 * psql and pg_basebackup. Connection strings and URIs are parsed by libpq itself
 * (PQconninfoParse), never here.
 *
 *     hm_pgconn p;
 *     hm_pgconn_init(&p);
 *     hm_pgconn_set(&p, "port", "35532");              // a profile
 *     hm_pgconn_apply(&p, "--dbname", conninfo, &err); // overrides what it names
 *     hm_pgconn_set(&p, "host", host_flag);            // NULL: nothing
 *     PGconn *c = hm_pgconn_connect(&p, NULL);
 *     ...
 *     hm_pgconn_free(&p);
 */
#ifndef HM_PGCONN_H
#define HM_PGCONN_H

#include <libpq-fe.h>
#include <stddef.h>

#include "error.h"

#define HM_PGCONN_MAX 64

typedef struct hm_pgconn {
	int n;
	const char *keys[HM_PGCONN_MAX];
	const char *vals[HM_PGCONN_MAX];
	PQconninfoOption *parsed[4]; /* owns the strings of applied connection strings */
	int nparsed;
} hm_pgconn;

void hm_pgconn_init(hm_pgconn *p);

/* Release what the applied connection strings own; p is empty afterwards. */
void hm_pgconn_free(hm_pgconn *p);

/* Set key to val, replacing an earlier value. A NULL or empty val sets nothing. key and
 * val must outlive p (string literals, argv, or the caller's buffers). 0 or -1 (full). */
int hm_pgconn_set(hm_pgconn *p, const char *key, const char *val);

/* The value set for key, or NULL. */
const char *hm_pgconn_get(const hm_pgconn *p, const char *key);

/* Does text name a connection string or URI rather than a plain database name? libpq's
 * own rule for dbname with expand_dbname: a postgresql:// or postgres:// prefix, or an
 * "=" anywhere. */
int hm_pgconn_is_conninfo(const char *text);

/* Apply --dbname's value: a connection string or URI (parsed by PQconninfoParse; every
 * keyword it gives a non-empty value replaces earlier ones), or a plain database name
 * (sets dbname). A password in it is refused: it would be on the command line. `what`
 * names the option in messages. HM_EXIT_USAGE on a bad string. 0 or -1. */
int hm_pgconn_apply(hm_pgconn *p, const char *what, const char *conninfo, hm_error *err);

/* PQconnectdbParams with p's keywords (expand_dbname 0: strings were parsed by
 * hm_pgconn_apply), dbname replaced by dbname_override when that is not NULL. Never NULL
 * unless out of memory; check PQstatus. */
PGconn *hm_pgconn_connect(const hm_pgconn *p, const char *dbname_override);

/* Where libpq connected or last tried, for messages: `socket "/run/pg" port 5433` or
 * `host "db.example" port 5432` (or "the server libpq's defaults name" if libpq could
 * not even parse its options). Never the password. */
void hm_pgconn_where(PGconn *c, char *buf, size_t bufsz);

/* libpq's error message as a one-line cause: for "connection to server ... failed: X"
 * only X of the last attempt (the server is named by hm_pgconn_where), other lines joined. */
const char *hm_pgconn_cause(PGconn *c, char *buf, size_t bufsz);

#endif
