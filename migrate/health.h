/* Health probes used while migrating: the API's health endpoint over a plain HTTP/1.0
 * GET on 127.0.0.1, a libpq connection with the stack's credentials (password through
 * PQconnectdbParams, never argv), pgvector present, and whether a host port is free. */
#ifndef HM_HEALTH_H
#define HM_HEALTH_H

#include <libpq-fe.h>

#include "../common/error.h"

/* GET http://host:port/path with a timeout; *status gets the HTTP status, body (optional)
 * the first bodysz-1 bytes of the body. 0 when an HTTP answer came, -1 otherwise (err set,
 * HM_EXIT_HEALTH_TIMEOUT for connection/timeout problems). */
int hm_http_get(const char *host, int port, const char *path, int timeout_ms, int *status, char *body,
		size_t bodysz, hm_error *err);

/* Is the API at host:port healthy (GET /api/v1/health -> 200 and "healthy")? 1/0;
 * why (optional) gets the last answer or failure. */
int hm_api_healthy(const char *host, int port, char *why, size_t whysz);

/* Connection parameters (password may be NULL: libpq's own rules then apply). */
typedef struct hm_pg_params {
	const char *host;
	int port;
	const char *user;
	const char *dbname;
	const char *password;
	int connect_timeout; /* seconds, default 5 */
} hm_pg_params;

/* Connect; NULL with err (HM_EXIT_DATABASE, message without the password). */
PGconn *hm_pg_connect(const hm_pg_params *p, hm_error *err);

/* The database answers a query and has the vector extension: 1/0; why gets the reason. */
int hm_pg_healthy(const hm_pg_params *p, char *why, size_t whysz);

/* Can we bind host:port (TCP) right now? 1 free, 0 in use. */
int hm_port_free(const char *host, int port);

/* Poll (every 100 ms) until the API and the database are healthy or timeout_s passes. 0 or -1 with
 * HM_EXIT_HEALTH_TIMEOUT naming what was still failing. */
int hm_wait_healthy(const char *what, int api_port, const hm_pg_params *pg, int timeout_s, hm_error *err);

/* Poll (every 50 ms) until the database p names accepts a connection as p's user, or
 * timeout_s passes: 0, or -1 with HM_EXIT_HEALTH_TIMEOUT and the last failure. The API is
 * not waited for. */
int hm_pg_wait_accepting(const char *what, const hm_pg_params *p, int timeout_s, hm_error *err);

#endif
