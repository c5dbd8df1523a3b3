/* Probes. HTTP is a tiny HTTP/1.0 GET over a TCP socket (the only client we need, and no
 * libcurl dependency); every probe is bounded by a timeout so polling loops keep their
 * deadline. */
#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/progress.h"

/* Wait for fd to become readable/writable within ms. 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = {fd, ev, 0};
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r;
}

int hm_http_get(const char *host, int port, const char *path, int timeout_ms, int *status, char *body,
		size_t bodysz, hm_error *err)
{
	struct sockaddr_in sa = {0};
	char req[512], resp[8192];
	size_t got = 0;
	int fd = -1, rc = -1;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return hm_error_set(err, HM_EXIT_INTERNAL, "bad address \"%s\"", host);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return hm_error_errno(err, errno, "create socket for", host);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
		hm_error_set(err, HM_EXIT_HEALTH_TIMEOUT, "cannot connect to %s:%d: %s", host, port,
			     strerror(errno));
		goto cleanup;
	}
	if (wait_fd(fd, POLLOUT, timeout_ms) <= 0) {
		hm_error_set(err, HM_EXIT_HEALTH_TIMEOUT, "cannot connect to %s:%d: timed out", host, port);
		goto cleanup;
	}
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr) {
		hm_error_set(err, HM_EXIT_HEALTH_TIMEOUT, "cannot connect to %s:%d: %s", host, port,
			     strerror(soerr));
		goto cleanup;
	}
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", path,
			 host, port);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		hm_error_set(err, HM_EXIT_HEALTH_TIMEOUT, "cannot send to %s:%d", host, port);
		goto cleanup;
	}
	for (;;) {
		if (wait_fd(fd, POLLIN, timeout_ms) <= 0) {
			hm_error_set(err, HM_EXIT_HEALTH_TIMEOUT, "no answer from %s:%d within %d ms", host,
				     port, timeout_ms);
			goto cleanup;
		}
		ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof resp - 1)
			break;
	}
	resp[got] = '\0';
	int maj, min, code;
	if (sscanf(resp, "HTTP/%d.%d %d", &maj, &min, &code) != 3) {
		hm_error_set(err, HM_EXIT_HEALTH_TIMEOUT, "no HTTP answer from %s:%d", host, port);
		goto cleanup;
	}
	*status = code;
	if (body && bodysz) {
		char *b = strstr(resp, "\r\n\r\n");
		snprintf(body, bodysz, "%s", b ? b + 4 : "");
	}
	rc = 0;
cleanup:
	close(fd);
	return rc;
}

int hm_api_healthy(const char *host, int port, char *why, size_t whysz)
{
	hm_error err = {0};
	int status = 0;
	char body[1024];
	if (hm_http_get(host, port, "/api/v1/health", 3000, &status, body, sizeof body, &err) != 0) {
		if (why)
			snprintf(why, whysz, "api: %s", err.message);
		return 0;
	}
	if (status == 200 && strstr(body, "healthy") && !strstr(body, "unhealthy"))
		return 1;
	if (why)
		snprintf(why, whysz, "api: HTTP %d %.200s", status, body);
	return 0;
}

PGconn *hm_pg_connect(const hm_pg_params *p, hm_error *err)
{
	char port[16], timeout[16];
	snprintf(port, sizeof port, "%d", p->port);
	snprintf(timeout, sizeof timeout, "%d", p->connect_timeout > 0 ? p->connect_timeout : 5);
	const char *keys[] = {"host",
			      "port",
			      "user",
			      "dbname",
			      "connect_timeout",
			      "application_name",
			      p->password ? "password" : NULL,
			      NULL};
	const char *vals[] = {p->host, port, p->user, p->dbname, timeout, "hive-migrate", p->password, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		hm_error_set(err, HM_EXIT_DATABASE,
			     "cannot connect to database \"%s\" as \"%s\" at %s:%d: %s", p->dbname, p->user,
			     p->host, p->port, msg);
		if (strstr(msg, "password") || strstr(msg, "authentication"))
			hm_error_hint(err, "the password in the stack's .env does not match the database's");
		PQfinish(c);
		return NULL;
	}
	return c;
}

int hm_pg_healthy(const hm_pg_params *p, char *why, size_t whysz)
{
	hm_error err = {0};
	PGconn *c = hm_pg_connect(p, &err);
	if (!c) {
		if (why)
			snprintf(why, whysz, "database: %s", err.message);
		return 0;
	}
	PGresult *r = PQexec(c, "SELECT extversion FROM pg_extension WHERE extname = 'vector'");
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	if (!ok && why)
		snprintf(why, whysz, "database: %s",
			 PQresultStatus(r) == PGRES_TUPLES_OK ? "pgvector (extension vector) is not installed"
							      : PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok;
}

int hm_port_free(const char *host, int port)
{
	struct sockaddr_in sa = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, ok;
	if (fd < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

int hm_wait_healthy(const char *what, int api_port, const hm_pg_params *pg, int timeout_s, hm_error *err)
{
	double deadline = hm_progress_now() + timeout_s;
	char why[700] = "not checked yet";
	for (;;) {
		int api_ok = api_port <= 0 || hm_api_healthy("127.0.0.1", api_port, why, sizeof why);
		if (api_ok && (!pg || hm_pg_healthy(pg, why, sizeof why)))
			return 0;
		if (hm_progress_now() >= deadline)
			break;
		/* 100 ms: the first healthy answer ends the downtime of up and rollback, and a
		 * coarser poll adds half its interval to it on average; one HTTP GET and one
		 * connection per poll cost nothing next to that */
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	hm_error_set(err, HM_EXIT_HEALTH_TIMEOUT, "%s did not become healthy within %d s (last: %s)", what,
		     timeout_s, why);
	return hm_error_hint(err, "see its logs: docker logs CONTAINER");
}

int hm_pg_wait_accepting(const char *what, const hm_pg_params *p, int timeout_s, hm_error *err)
{
	double deadline = hm_progress_now() + timeout_s;
	hm_error last = {0};
	for (;;) {
		PGconn *c = hm_pg_connect(p, &last);
		if (c) {
			PQfinish(c);
			return 0;
		}
		if (hm_progress_now() >= deadline)
			break;
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL); /* poll interval */
	}
	hm_error_set(err, HM_EXIT_HEALTH_TIMEOUT,
		     "%s did not become healthy within %d s (its database accepted no connection; "
		     "last: %s)",
		     what, timeout_s, last.message);
	return hm_error_hint(err, "see its logs: docker logs CONTAINER");
}
