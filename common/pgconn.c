/* Layered libpq connection parameters. Parsing is libpq's (PQconninfoParse): the same
 * code that expands dbname for psql and pg_basebackup, so URIs, percent-encoding,
 * quoting and multiple hosts mean exactly what they mean there. What we add is only the
 * order in which sources override each other, and messages that never show a password. */
#include "pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hm_pgconn_init(hm_pgconn *p)
{
	memset(p, 0, sizeof *p);
}

void hm_pgconn_free(hm_pgconn *p)
{
	for (int i = 0; i < p->nparsed; i++)
		PQconninfoFree(p->parsed[i]);
	hm_pgconn_init(p);
}

int hm_pgconn_set(hm_pgconn *p, const char *key, const char *val)
{
	if (!val || !val[0])
		return 0;
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->keys[i], key)) {
			p->vals[i] = val;
			return 0;
		}
	if (p->n >= HM_PGCONN_MAX)
		return -1;
	p->keys[p->n] = key;
	p->vals[p->n++] = val;
	return 0;
}

const char *hm_pgconn_get(const hm_pgconn *p, const char *key)
{
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->keys[i], key))
			return p->vals[i];
	return NULL;
}

int hm_pgconn_is_conninfo(const char *text)
{
	return text && (!strncmp(text, "postgresql://", 13) || !strncmp(text, "postgres://", 11) ||
			strchr(text, '='));
}

/* Could a connection string that libpq cannot parse hold a password? A "password"
 * keyword anywhere, or a URI whose user part has a ':' (postgresql://user:secret@host). */
static int may_hold_password(const char *text)
{
	if (strcasestr(text, "password"))
		return 1;
	const char *scheme = strstr(text, "://");
	if (!scheme)
		return 0;
	const char *auth = scheme + 3, *at = strchr(auth, '@');
	size_t authlen = strcspn(auth, "/?");
	return at && (size_t)(at - auth) < authlen && memchr(auth, ':', (size_t)(at - auth));
}

int hm_pgconn_apply(hm_pgconn *p, const char *what, const char *conninfo, hm_error *err)
{
	if (!conninfo || !conninfo[0])
		return 0;
	if (!hm_pgconn_is_conninfo(conninfo))
		return hm_pgconn_set(p, "dbname", conninfo) == 0
			       ? 0
			       : hm_error_set(err, HM_EXIT_USAGE, "too many connection parameters");
	if (p->nparsed >= (int)(sizeof p->parsed / sizeof p->parsed[0]))
		return hm_error_set(err, HM_EXIT_INTERNAL, "too many connection strings");
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	if (!opts) {
		/* libpq's message quotes parts of the string: withhold it when they could be a
		 * password (stderr of a cron job ends up in mail and logs). */
		char cause[512];
		if (may_hold_password(conninfo))
			snprintf(cause, sizeof cause,
				 "libpq's message withheld: the string may hold a password");
		else
			snprintf(cause, sizeof cause, "%s", msg ? msg : "out of memory");
		cause[strcspn(cause, "\n")] = '\0';
		PQfreemem(msg);
		hm_error_set(err, HM_EXIT_USAGE, "%s is not a valid connection string or URI: %s", what,
			     cause);
		return hm_error_hint(err, "\"host=H port=P user=U\" or postgresql://U@H:P/ (libpq's syntax)");
	}
	p->parsed[p->nparsed++] = opts;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		if (!strcmp(o->keyword, "password")) {
			hm_error_set(err, HM_EXIT_USAGE,
				     "%s holds a password: it would be visible on the command line", what);
			return hm_error_hint(err,
					     "use --password-file FILE (0600), PGPASSWORD, PGPASSFILE or "
					     "~/.pgpass, and drop the password from the string");
		}
		if (hm_pgconn_set(p, o->keyword, o->val) != 0)
			return hm_error_set(err, HM_EXIT_USAGE, "too many connection parameters");
	}
	return 0;
}

PGconn *hm_pgconn_connect(const hm_pgconn *p, const char *dbname_override)
{
	const char *keys[HM_PGCONN_MAX + 2], *vals[HM_PGCONN_MAX + 2];
	int n = 0;
	for (int i = 0; i < p->n; i++) {
		if (dbname_override && !strcmp(p->keys[i], "dbname"))
			continue;
		keys[n] = p->keys[i];
		vals[n++] = p->vals[i];
	}
	if (dbname_override)
		keys[n] = "dbname", vals[n++] = dbname_override;
	keys[n] = NULL, vals[n] = NULL;
	return PQconnectdbParams(keys, vals, 0);
}

void hm_pgconn_where(PGconn *c, char *buf, size_t bufsz)
{
	const char *host = c ? PQhost(c) : NULL;
	const char *port = c ? PQport(c) : NULL;
	if (!host || !host[0]) {
		snprintf(buf, bufsz, "the server libpq's settings name");
		return;
	}
	/* libpq's rule for a Unix-domain socket: an absolute path, or '@' (abstract namespace) */
	int sock = host[0] == '/' || host[0] == '@';
	snprintf(buf, bufsz, "%s \"%s\" port %s", sock ? "socket" : "host", host,
		 port && port[0] ? port : "5432");
}

const char *hm_pgconn_cause(PGconn *c, char *buf, size_t bufsz)
{
	const char *msg = c ? PQerrorMessage(c) : "out of memory";
	const char *start = msg;
	/* The last "connection to server ... failed: " names the server (we do that
	 * ourselves, once) and precedes the cause of the last attempt. */
	for (const char *s = msg; (s = strstr(s, "connection to server ")) != NULL; s++) {
		const char *f = (s == msg || s[-1] == '\n') ? strstr(s, " failed: ") : NULL;
		if (f && (!strchr(s, '\n') || f < strchr(s, '\n')))
			start = f + strlen(" failed: ");
	}
	size_t n = 0;
	for (const char *line = start; *line && n + 1 < bufsz;) {
		size_t len = strcspn(line, "\n");
		/* libpq's tab-indented lines are its own hints ("Is the server running ...") */
		if (len > 0 && line[0] != '\t') {
			if (n > 0 && n + 1 < bufsz)
				buf[n++] = ' ';
			size_t take = len < bufsz - 1 - n ? len : bufsz - 1 - n;
			memcpy(buf + n, line, take);
			n += take;
		}
		line += len;
		if (*line == '\n')
			line++;
	}
	buf[n] = '\0';
	if (n == 0)
		snprintf(buf, bufsz, "no reason given by libpq");
	return buf;
}
