/* The preflight's outside world: the container engine (compose configuration of the
 * split stack, the target image) and the running old server (libpq). Read-only: compose
 * `config` and `image inspect` change nothing; `docker run --rm` of the target image with
 * no network only lists files. Passwords are passed to libpq as a keyword, never on a
 * command line, and never printed. */
#include "preflight_int.h"

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

/* Connect with the given parameters, dbname overriding c->dbname when not NULL. */
static PGconn *pf_connect(const hm_pf_conn *c, const char *dbname)
{
	char port[16], timeout[16];
	snprintf(port, sizeof port, "%d", c->port);
	snprintf(timeout, sizeof timeout, "%d", c->connect_timeout > 0 ? c->connect_timeout : 3);
	const char *keys[8], *vals[8];
	int n = 0;
	keys[n] = "host", vals[n++] = c->host;
	keys[n] = "port", vals[n++] = port;
	keys[n] = "connect_timeout", vals[n++] = timeout;
	keys[n] = "application_name", vals[n++] = "hive-migrate check";
	if (c->user)
		keys[n] = "user", vals[n++] = c->user;
	if (dbname || c->dbname)
		keys[n] = "dbname", vals[n++] = dbname ? dbname : c->dbname;
	if (c->password)
		keys[n] = "password", vals[n++] = c->password;
	keys[n] = NULL, vals[n] = NULL;
	return PQconnectdbParams(keys, vals, 0);
}

/* Append the extensions of one database to the report. */
static void collect_extensions(const hm_pf_conn *c, const char *db, hm_preflight_report *r)
{
	PGconn *pc = pf_connect(c, db);
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

int hm_pf_live_collect(const hm_pf_conn *c, hm_preflight_report *r, hm_error *err)
{
	PGconn *pc = pf_connect(c, NULL);
	if (PQstatus(pc) != CONNECTION_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(pc));
		char *nl = strchr(msg, '\n');
		if (nl)
			*nl = '\0';
		PQfinish(pc);
		hm_error_set(err, HM_EXIT_DATABASE, "cannot connect to %s:%d: %s", c->host, c->port, msg);
		return -1;
	}
	snprintf(r->server, sizeof r->server, "%s:%d %s@%s", c->host, c->port, PQuser(pc), PQdb(pc));
	PGresult *res = PQexec(pc, "SELECT datname, pg_database_size(oid) FROM pg_database "
				   "WHERE datallowconn AND NOT datistemplate ORDER BY 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		hm_error_set(err, HM_EXIT_DATABASE, "cannot list databases on %s:%d: %s", c->host, c->port,
			     PQresultErrorMessage(res));
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
