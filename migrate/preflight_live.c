/* The preflight's outside world: the container engine (compose configuration of the
 * split stack, the target image) and the running old server (libpq). Read-only: compose
 * `config` and `image inspect` change nothing; `docker run --rm` of the target image with
 * no network only lists files. Passwords are passed to libpq as a keyword, never on a
 * command line, and never printed. */
#include "preflight_int.h"
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "../common/process.h"

int hm_pf_run_capture(char *const argv[], char **out, size_t max, int *status, char *errbuf, size_t errsz,
		      hm_error *err)
{
	hm_proc_result r;
	*out = NULL;
	*status = -1;
	if (errbuf && errsz)
		errbuf[0] = '\0';
	if (hm_proc_run(argv, &r, err) != 0)
		return -1;
	*status = r.status;
	if (errbuf && errsz && r.errout) {
		snprintf(errbuf, errsz, "%s", r.errout);
		errbuf[strcspn(errbuf, "\n")] = '\0';
	}
	if (r.out && strlen(r.out) > max)
		r.out[max] = '\0';
	*out = r.out ? r.out : strdup("");
	r.out = NULL;
	hm_proc_result_free(&r);
	if (!*out)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory running %s", argv[0]);
	return 0;
}

/* String member of a JSON object, or NULL. */
static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_get_string(v);
}

/* Parse `ls /usr/lib/postgresql` + vector.control output: highest major, default_version. */
static void parse_image_listing(const char *text, int *major, char *pgvector, size_t sz)
{
	const char *p = text;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char line[256];
		snprintf(line, sizeof line, "%.*s", (int)(n < 255 ? n : 255), p);
		char *end;
		long v = strtol(line, &end, 10);
		if (end != line && *end == '\0' && v > *major && v < 100)
			*major = (int)v;
		const char *dv = strstr(line, "default_version");
		if (dv) {
			const char *q = strchr(dv, '\'');
			const char *q2 = q ? strchr(q + 1, '\'') : NULL;
			if (q && q2)
				snprintf(pgvector, sz, "%.*s", (int)(q2 - q - 1), q + 1);
		}
		p += n;
		if (*p == '\n')
			p++;
	}
}

int hm_pf_image_target(const char *image, int *major, char *pgvector, size_t pgvector_sz, hm_error *err)
{
	char *out = NULL, errline[512];
	int status = -1, found_major = 0;
	pgvector[0] = '\0';
	char *inspect[] = {"docker",	  "image", "inspect", "--format", "{{json .Config.Labels}}",
			   (char *)image, NULL};
	if (hm_pf_run_capture(inspect, &out, 1u << 20, &status, errline, sizeof errline, err))
		return -1;
	if (status != 0) {
		free(out);
		hm_error_set(err, HM_EXIT_ENGINE, "cannot inspect image \"%s\": %s", image,
			     errline[0] ? errline : "docker image inspect failed");
		return hm_error_hint(err, "build the unified image first, or give --target-major");
	}
	json_object *labels = json_tokener_parse(out);
	free(out);
	out = NULL;
	const char *lm = jstr(labels, "org.hive.pg-major");
	const char *lv = jstr(labels, "org.hive.pgvector");
	if (lm)
		found_major = atoi(lm);
	if (lv)
		snprintf(pgvector, pgvector_sz, "%s", lv);
	if (labels)
		json_object_put(labels);
	if (found_major > 0 && pgvector[0]) {
		*major = found_major;
		return 0;
	}
	char *run[] = {"docker",
		       "run",
		       "--rm",
		       "--network",
		       "none",
		       "--entrypoint",
		       "sh",
		       (char *)image,
		       "-c",
		       "ls /usr/lib/postgresql; cat /usr/share/postgresql/*/extension/vector.control "
		       "2>/dev/null; true",
		       NULL};
	if (hm_pf_run_capture(run, &out, 1u << 20, &status, errline, sizeof errline, err))
		return -1;
	int listed = 0;
	char vec[32] = "";
	if (status == 0)
		parse_image_listing(out, &listed, vec, sizeof vec);
	free(out);
	if (!found_major)
		found_major = listed;
	if (!pgvector[0])
		snprintf(pgvector, pgvector_sz, "%s", vec);
	if (found_major <= 0) {
		hm_error_set(err, HM_EXIT_ENGINE, "cannot tell the PostgreSQL major of image \"%s\": %s",
			     image,
			     status != 0 ? (errline[0] ? errline : "docker run failed")
					 : "no /usr/lib/postgresql/NN in it");
		return hm_error_hint(err, "give --target-major instead of --image");
	}
	*major = found_major;
	return 0;
}

/* Is a variable set that names a server for libpq? Then a check of a bare data
 * directory talks to that server, as psql would. */
static int env_names_server(void)
{
	static const char *const vars[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGSERVICE"};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		if (v && v[0])
			return 1;
	}
	return 0;
}

int hm_pf_conn_build(const hm_preflight_opts *o, const struct hm_stack *stack, int server_running,
		     hm_pf_conn *c, hm_error *err)
{
	hm_pgconn *p = &c->params;
	int r = 0;
	c->have = c->explicit_conn = 0;
	if (stack && stack->pg_port > 0) {
		snprintf(c->port, sizeof c->port, "%d", stack->pg_port);
		r |= hm_pgconn_set(p, "host", stack->pg_host[0] ? stack->pg_host : "127.0.0.1");
		r |= hm_pgconn_set(p, "port", c->port);
		r |= hm_pgconn_set(p, "user", stack->db_user);
		r |= hm_pgconn_set(p, "dbname", stack->db_name);
		r |= hm_pgconn_set(p, "password", stack->db_password);
		c->have = 1;
	}
	if (hm_pgconn_apply(p, "--dbname", o->conninfo, err) != 0)
		return -1;
	if (o->conninfo || o->host || o->port > 0 || o->user || o->dbname)
		c->have = c->explicit_conn = 1;
	if (o->port > 0) {
		snprintf(c->port, sizeof c->port, "%d", o->port);
		r |= hm_pgconn_set(p, "port", c->port);
	}
	r |= hm_pgconn_set(p, "host", o->host);
	r |= hm_pgconn_set(p, "user", o->user);
	r |= hm_pgconn_set(p, "dbname", o->dbname);
	r |= hm_pgconn_set(p, "password", o->password);
	if (!hm_pgconn_get(p, "fallback_application_name"))
		r |= hm_pgconn_set(p, "fallback_application_name", "hive-migrate check");
	const char *env_timeout = getenv("PGCONNECT_TIMEOUT");
	const char *env_service = getenv("PGSERVICE");
	if (!hm_pgconn_get(p, "connect_timeout") && !hm_pgconn_get(p, "service") &&
	    !(env_timeout && env_timeout[0]) && !(env_service && env_service[0])) {
		snprintf(c->timeout, sizeof c->timeout, "%d",
			 o->connect_timeout > 0 ? o->connect_timeout : 3);
		r |= hm_pgconn_set(p, "connect_timeout", c->timeout);
	}
	if (r != 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "too many connection parameters");
	/* a bare --data-dir: libpq's environment, if a server runs there or one is named */
	if (!c->have && !stack && (server_running || env_names_server()))
		c->have = 1;
	return 0;
}

/* Append the extensions of one database to the report. */
static void collect_extensions(const hm_pf_conn *c, const char *db, hm_preflight_report *r)
{
	PGconn *pc = hm_pgconn_connect(&c->params, db);
	if (PQstatus(pc) != CONNECTION_OK) {
		PQfinish(pc);
		return;
	}
	PGresult *res = PQexec(pc, "SELECT extname, extversion FROM pg_extension ORDER BY 1");
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		int rows = PQntuples(res);
		hm_ext_info *e = rows ? realloc(r->extensions, (r->n_extensions + (size_t)rows) * sizeof *e)
				      : r->extensions;
		if (e) {
			r->extensions = e;
			for (int i = 0; i < rows; i++) {
				hm_ext_info *x = &r->extensions[r->n_extensions++];
				snprintf(x->database, sizeof x->database, "%s", db);
				snprintf(x->name, sizeof x->name, "%s", PQgetvalue(res, i, 0));
				snprintf(x->version, sizeof x->version, "%s", PQgetvalue(res, i, 1));
			}
		}
	}
	PQclear(res);
	PQfinish(pc);
}

/* Is the server the cluster of the data directory? pg_control_system() is readable by
 * any role; when it cannot be read, or pg_control was not, nothing is claimed. */
static int same_cluster(PGconn *pc, const hm_preflight_report *r, char *found, size_t foundsz)
{
	if (!r->facts.have_control)
		return 1;
	PGresult *res = PQexec(pc, "SELECT system_identifier FROM pg_control_system()");
	int same = 1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		snprintf(found, foundsz, "%s", PQgetvalue(res, 0, 0));
		same = strtoull(found, NULL, 10) == (unsigned long long)r->facts.control.system_identifier;
	}
	PQclear(res);
	return same;
}

int hm_pf_live_collect(const hm_pf_conn *c, hm_preflight_report *r, hm_error *err)
{
	char where[400], cause[512], found[32] = "";
	PGconn *pc = hm_pgconn_connect(&c->params, NULL);
	hm_pgconn_where(pc, where, sizeof where);
	if (PQstatus(pc) != CONNECTION_OK) {
		hm_error_set(err, HM_EXIT_DATABASE, "cannot connect to %s as user \"%s\": %s", where,
			     PQuser(pc) ? PQuser(pc) : "?", hm_pgconn_cause(pc, cause, sizeof cause));
		PQfinish(pc);
		return -1;
	}
	if (!same_cluster(pc, r, found, sizeof found)) {
		hm_error_set(err, HM_EXIT_DATABASE,
			     "the server at %s is another cluster (system identifier %s, the data "
			     "directory's %llu): its databases are not listed",
			     where, found, (unsigned long long)r->facts.control.system_identifier);
		PQfinish(pc);
		return -2;
	}
	snprintf(r->server, sizeof r->server, "%s:%s %s@%s", PQhost(pc), PQport(pc), PQuser(pc), PQdb(pc));
	PGresult *res = PQexec(pc, "SELECT datname, pg_database_size(oid) FROM pg_database "
				   "WHERE datallowconn AND NOT datistemplate ORDER BY 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		hm_error_set(err, HM_EXIT_DATABASE, "cannot list databases on %s: %s", where,
			     hm_pgconn_cause(pc, cause, sizeof cause));
		PQclear(res);
		PQfinish(pc);
		return -1;
	}
	int rows = PQntuples(res);
	if (rows > 0) {
		r->databases = calloc((size_t)rows, sizeof *r->databases);
		if (r->databases) {
			for (int i = 0; i < rows; i++) {
				hm_db_info *d = &r->databases[i];
				snprintf(d->name, sizeof d->name, "%s", PQgetvalue(res, i, 0));
				d->size_bytes = strtoll(PQgetvalue(res, i, 1), NULL, 10);
			}
			r->n_databases = (size_t)rows;
		}
	}
	PQclear(res);
	PQfinish(pc);
	for (size_t i = 0; i < r->n_databases; i++)
		collect_extensions(c, r->databases[i].name, r);
	return 0;
}
