/* The forward path of `up` across PostgreSQL majors (migrate/major.h). Every step is
 * journaled in j.major_step (and the generic j.step, so that the journal's resume rules
 * apply) and can be redone: a dump or restore interrupted half-way is discarded and taken
 * again, never continued, because a half-written pg_dump directory or a half-restored
 * cluster cannot be told apart from a complete one.
 *
 * The tools are the target's own: every pg_dumpall, pg_dump, initdb, pg_restore, psql and
 * vacuumdb runs in a short-lived worker container of the unified image (uid 1000), so the
 * dump is made by the newer pg_dump, as PostgreSQL's upgrade documentation asks. The dump
 * worker reaches the old server through the host's network on its published port with the
 * stack's credentials (PGPASSWORD in a 0600 --env-file, never on argv); the restore worker
 * has no network at all and is reached with docker exec over its unix socket. */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "../common/archive_dir.h"
#include "../common/fsutil.h"
#include "../common/pg_control.h"
#include "../common/process.h"
#include "../common/progress.h"
#include "../common/version.h"
#include "compose.h"
#include "fingerprint.h"
#include "health.h"
#include "major.h"
#include "major_int.h"
#include "migration.h"
#include "preflight.h"

#define WORKER_UID "1000:1000"
#define NEW_UID 1000
#define NEW_GID 1000
#define SOCK "/tmp/hm"
#define NEW_PGDATA "/var/lib/postgresql/data/pgdata"

static double wall_now(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

void hm_major_worker_name(const hm_mig *m, const char *what, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s-major-%s", m->j.unified_container, what);
}

int hm_major_exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

/* Mark a step done in the journal (and the generic step that matches it). */
static int mark(hm_mig *m, hm_major_step s, hm_step generic, hm_error *err)
{
	snprintf(m->j.major_step, sizeof m->j.major_step, "%s", hm_major_step_name(s));
	if (generic > m->j.step)
		m->j.step = generic;
	return hm_mig_save(m, err);
}

/* A failed tool run: "No space left on device" becomes HM_EXIT_NO_SPACE with a hint. */
static int tool_failed(hm_error *err, const char *where)
{
	if (strstr(err->message, "No space left on device") ||
	    strstr(err->message, "could not extend file")) {
		err->code = HM_EXIT_NO_SPACE;
		hm_error_hint(err,
			      "free disk space where %s lives (the dump and the new cluster need about twice "
			      "the database size), then run up again",
			      where);
	}
	return -1;
}

/* A tool that lost its server (e.g. a PANIC on a full disk) only says "server closed the
 * connection": the server's own last lines say why. Appended to err when they tell of a
 * full disk. */
static void worker_cause(const char *name, hm_error *err)
{
	char *lg[] = {"docker", "logs", "--tail", "20", (char *)name, NULL};
	hm_proc_result l;
	hm_error e2;
	if (hm_proc_run(lg, &l, &e2) != 0)
		return;
	const char *o = l.errout && strstr(l.errout, "No space left on device") ? l.errout
			: l.out && strstr(l.out, "No space left on device")	? l.out
										: NULL;
	if (o) {
		size_t n = strlen(err->message);
		snprintf(err->message + n, sizeof err->message - n, " (the server: No space left on device)");
	}
	hm_proc_result_free(&l);
}

/* docker rm -f NAME, quietly (no such container is fine). */
void hm_major_rm_worker(const char *name)
{
	char *argv[] = {"docker", "rm", "-f", (char *)name, NULL};
	hm_proc_result r;
	hm_error e;
	if (hm_proc_run(argv, &r, &e) == 0)
		hm_proc_result_free(&r);
}

/* A connection string for one database: dbname='...' with \ and ' escaped. */
static int dbname_conninfo(const char *db, char *out, size_t outsz)
{
	size_t n = 0;
	const char *pre = "dbname='";
	for (const char *p = pre; *p; p++)
		if (n + 1 < outsz)
			out[n++] = *p;
	for (const char *p = db; *p; p++) {
		if (*p == '\\' || *p == '\'')
			if (n + 1 < outsz)
				out[n++] = '\\';
		if (n + 1 < outsz)
			out[n++] = *p;
	}
	if (n + 2 >= outsz)
		return -1;
	out[n++] = '\'';
	out[n] = '\0';
	return 0;
}

/* Step: stop the API containers only; the old server keeps running for the dump. */
static int stop_api(hm_mig *m, hm_error *err)
{
	char t[16], *argv[64];
	if (m->stack.n_api_services == 0)
		return 0;
	int n = hm_compose_argv(&m->stack.compose, argv, 40);
	if (n < 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "compose command too long");
	snprintf(t, sizeof t, "%d", m->stop_timeout);
	argv[n++] = "stop";
	argv[n++] = "-t";
	argv[n++] = t;
	for (int i = 0; i < m->stack.n_api_services && n < 62; i++)
		argv[n++] = m->stack.api_services[i];
	argv[n] = NULL;
	hm_mig_log(m, "stopping the API containers (no more writes); the old PostgreSQL keeps running");
	return hm_proc_check(argv, "stopping the split stack's API (docker compose stop)", NULL, err);
}

/* The fingerprint, taken again now that nothing writes any more. */
static int fingerprint_now(hm_mig *m, hm_error *err)
{
	hm_pg_params sp = hm_mig_split_params(m);
	json_object *fp = NULL;
	hm_mig_log(m, "fingerprinting every table with the API stopped");
	if (hm_fingerprint_take(&sp, &fp, err) != 0)
		return -1;
	const char *s = json_object_to_json_string_ext(fp, JSON_C_TO_STRING_PRETTY);
	int rc = hm_write_file_atomic(m->j.fingerprint_file, s, strlen(s), 0600, err);
	hm_mig_log(m, "fingerprint: %lld rows", hm_fingerprint_total_rows(fp));
	json_object_put(fp);
	return rc;
}

/* The dump's plan: the old cluster's bootstrap superuser and its databases, asked of the
 * old server and kept in DUMP/plan.json (the restore reads it, the old server is gone). */
static int write_plan(hm_mig *m, const char *locale_map, hm_error *err)
{
	hm_pg_params sp = hm_mig_split_params(m);
	PGconn *c = hm_pg_connect(&sp, err);
	PGresult *r = NULL;
	json_object *o = NULL, *dbs;
	int rc = -1;
	if (!c)
		return -1;
	r = PQexec(c, "SELECT rolname FROM pg_roles WHERE oid = 10");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		hm_error_set(err, HM_EXIT_DATABASE, "cannot read the old cluster's superuser: %s",
			     PQerrorMessage(c));
		goto cleanup;
	}
	o = json_object_new_object();
	json_object_object_add(o, "superuser", json_object_new_string(PQgetvalue(r, 0, 0)));
	PQclear(r);
	r = PQexec(c, "SELECT datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, "
		      "datctype FROM pg_database WHERE datallowconn AND datname <> 'template1' ORDER BY "
		      "datname = 'postgres' DESC, datname");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		hm_error_set(err, HM_EXIT_DATABASE, "cannot list the old cluster's databases: %s",
			     PQerrorMessage(c));
		goto cleanup;
	}
	dbs = json_object_new_array();
	json_object *create = json_object_new_object();
	for (int i = 0; i < PQntuples(r); i++) {
		char coll[128], ctype[128];
		json_object_array_add(dbs, json_object_new_string(PQgetvalue(r, i, 0)));
		/* a database whose locale --locale-map replaces is created by the restore itself */
		int mc = hm_major_locale_map_lookup(locale_map, PQgetvalue(r, i, 3), coll, sizeof coll);
		int mt = hm_major_locale_map_lookup(locale_map, PQgetvalue(r, i, 4), ctype, sizeof ctype);
		if (!mc && !mt)
			continue;
		json_object *d = json_object_new_object();
		json_object_object_add(d, "owner", json_object_new_string(PQgetvalue(r, i, 1)));
		json_object_object_add(d, "encoding", json_object_new_string(PQgetvalue(r, i, 2)));
		json_object_object_add(d, "collate", json_object_new_string(mc ? coll : PQgetvalue(r, i, 3)));
		json_object_object_add(d, "ctype", json_object_new_string(mt ? ctype : PQgetvalue(r, i, 4)));
		json_object_object_add(create, PQgetvalue(r, i, 0), d);
	}
	json_object_object_add(o, "databases", dbs);
	json_object_object_add(o, "create", create);
	json_object_object_add(o, "old_major", json_object_new_int(m->j.old_major));
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/plan.json", m->j.dump_dir);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	rc = hm_write_file_atomic(path, s, strlen(s), 0600, err);
cleanup:
	PQclear(r);
	PQfinish(c);
	json_object_put(o);
	return rc;
}

int hm_major_read_plan(const char *dump_dir, char *superuser, size_t susz, json_object **dbs, hm_error *err)
{
	char path[PATH_MAX];
	json_object *o, *v;
	snprintf(path, sizeof path, "%s/plan.json", dump_dir);
	if (!(o = json_object_from_file(path)))
		return hm_error_set(err, HM_EXIT_CORRUPT, "the dump's plan \"%s\" cannot be read", path);
	if (!json_object_object_get_ex(o, "superuser", &v) || !json_object_is_type(v, json_type_string) ||
	    snprintf(superuser, susz, "%s", json_object_get_string(v)) >= (int)susz ||
	    !json_object_object_get_ex(o, "databases", &v) || !json_object_is_type(v, json_type_array)) {
		json_object_put(o);
		return hm_error_set(err, HM_EXIT_CORRUPT, "the dump's plan \"%s\" is incomplete", path);
	}
	*dbs = json_object_get(v);
	json_object_put(o);
	return 0;
}

/* A fresh, empty directory owned by the worker's uid (removing what an earlier attempt left). */
static int fresh_dir(const char *path, hm_error *err)
{
	if (hm_major_exists(path) && hm_rmtree(path, err) != 0)
		return -1;
	if (mkdir(path, 0700) != 0)
		return hm_error_errno(err, errno, "create the directory", path);
	if (chown(path, NEW_UID, NEW_GID) != 0)
		return hm_error_errno(err, errno, "change the owner of", path);
	return hm_fsync_parent(path, err);
}

/* The dump worker: docker run --rm on the host network with the password in env_file. */
static int dump_run(hm_mig *m, const char *env_file, const char *tool, char **args, const char *what,
		    hm_error *err)
{
	char name[200], vol[PATH_MAX + 16], port[16], *argv[48];
	int n = 0;
	hm_major_worker_name(m, "dump", name, sizeof name);
	hm_major_rm_worker(name);
	snprintf(vol, sizeof vol, "%s:/dump", m->j.dump_dir);
	snprintf(port, sizeof port, "%d", m->stack.pg_port);
	const char *host = m->stack.pg_host[0] ? m->stack.pg_host : "127.0.0.1";
	char *pre[] = {"docker",
		       "run",
		       "--rm",
		       "--name",
		       name,
		       "--network",
		       "host",
		       "--user",
		       WORKER_UID,
		       "--env-file",
		       (char *)env_file,
		       "-v",
		       vol,
		       "--entrypoint",
		       (char *)tool,
		       m->j.image,
		       "-h",
		       (char *)host,
		       "-p",
		       port,
		       "-U",
		       m->stack.db_user,
		       "--no-password"};
	for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
		argv[n++] = pre[i];
	for (int i = 0; args[i] && n < 46; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (hm_proc_check(argv, what, NULL, err) != 0)
		return tool_failed(err, m->j.dump_dir);
	return 0;
}

/* Step: pg_dumpall --globals-only and pg_dump -Fd -j N of every database. */
static int dump(hm_mig *m, int jobs, const char *locale_map, hm_error *err)
{
	char env_file[PATH_MAX], jarg[16];
	json_object *dbs = NULL;
	char su[128];
	int rc = -1;
	double t0 = hm_progress_now();
	if (strchr(m->j.dump_dir, ':'))
		return hm_error_set(err, HM_EXIT_INPUT, "the dump directory \"%s\" holds a ':'",
				    m->j.dump_dir);
	if (fresh_dir(m->j.dump_dir, err) != 0 || write_plan(m, locale_map, err) != 0)
		return -1;
	snprintf(env_file, sizeof env_file, "%s/major-%s.env", m->state_dir, m->profile);
	{
		char *line = NULL;
		if (asprintf(&line, "PGPASSWORD=%s\nPGDATABASE=%s\n", m->stack.db_password,
			     m->stack.db_name) < 0)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		int wrc = strchr(m->stack.db_password, '\n')
				  ? hm_error_set(err, HM_EXIT_INPUT, "the database password holds a newline")
				  : hm_write_file_atomic(env_file, line, strlen(line), 0600, err);
		memset(line, 0, strlen(line));
		free(line);
		if (wrc != 0)
			return -1;
	}
	if (hm_major_read_plan(m->j.dump_dir, su, sizeof su, &dbs, err) != 0)
		goto cleanup;
	hm_mig_log(m, "dumping the roles and tablespaces (pg_dumpall --globals-only, from %s)", m->j.image);
	char *g[] = {"--globals-only", "-f", "/dump/globals.sql", NULL};
	if (dump_run(m, env_file, "pg_dumpall", g, "pg_dumpall --globals-only", err) != 0)
		goto cleanup;
	hm_fault_point("major:during:dump");
	if (hm_major_fail_point("major:during:dump", err) != 0)
		goto cleanup;
	snprintf(jarg, sizeof jarg, "%d", jobs);
	for (size_t i = 0; i < json_object_array_length(dbs); i++) {
		const char *db = json_object_get_string(json_object_array_get_idx(dbs, i));
		char out[64], conn[512], what[300];
		snprintf(out, sizeof out, "/dump/db-%zu", i);
		if (dbname_conninfo(db, conn, sizeof conn) != 0) {
			hm_error_set(err, HM_EXIT_INPUT, "database name too long");
			goto cleanup;
		}
		snprintf(what, sizeof what, "pg_dump of database \"%s\"", db);
		hm_mig_log(m, "dumping database %s (pg_dump -Fd -j %d)", db, jobs);
		char *a[] = {"-Fd", "-j", jarg, "-f", out, "-d", conn, NULL};
		if (dump_run(m, env_file, "pg_dump", a, what, err) != 0)
			goto cleanup;
	}
	{
		char done[PATH_MAX];
		snprintf(done, sizeof done, "%s/complete", m->j.dump_dir);
		if (hm_write_file_atomic(done, "complete\n", 9, 0600, err) != 0)
			goto cleanup;
	}
	hm_mig_log(m, "dump complete in %.1f s: %s", hm_progress_now() - t0, m->j.dump_dir);
	rc = 0;
cleanup:
	unlink(env_file);
	json_object_put(dbs);
	return rc;
}

/* Step: stop the old server cleanly (docker compose stop -t N), pg_control "shut down". */
static int stop_old(hm_mig *m, hm_error *err)
{
	hm_pg_control pc;
	hm_mig_log(m, "stopping the old PostgreSQL %d (docker compose stop -t %d)", m->j.old_major,
		   m->stop_timeout);
	if (hm_compose_split_stop(&m->stack, m->stop_timeout, err) != 0 ||
	    hm_pg_control_read(m->stack.pgdata, &pc, err) != 0)
		return -1;
	if (pc.state != HM_DB_SHUTDOWNED) {
		hm_error_set(err, HM_EXIT_IO,
			     "the old cluster in \"%s\" is \"%s\" after stopping, not \"shut down\"",
			     m->stack.pgdata, hm_db_state_name(pc.state));
		return hm_error_hint(err, "start the split stack, let it recover, and run up again");
	}
	return 0;
}

/* Step: the verified snapshot of the old directory, as the same-major path takes it. */
static int snapshot(hm_mig *m, const char *archive_dir, hm_error *err)
{
	hm_journal *j = &m->j;
	char dir[PATH_MAX];
	hm_archive_stats st;
	hm_pg_control pc;
	if (archive_dir)
		snprintf(dir, sizeof dir, "%s", archive_dir);
	else if (hm_path_join(dir, sizeof dir, m->state_dir, "archives", err) != 0)
		return -1;
	if (hm_pg_control_read(m->stack.pgdata, &pc, err) != 0)
		return -1;
	if (!j->backup_id[0]) {
		uuid_t u;
		char name[64];
		uuid_generate(u);
		uuid_unparse_lower(u, j->backup_id);
		snprintf(name, sizeof name, "%s.tar.zst", j->backup_id);
		if (hm_mkdir_p(dir, 0700, err) != 0 ||
		    hm_path_join(j->archive, sizeof j->archive, dir, name, err) != 0 ||
		    hm_mig_save(m, err) != 0)
			return -1;
	}
	if (hm_major_exists(j->archive)) {
		if (hm_archive_verify(j->archive, NULL, &st, err) == 0)
			goto verified;
		hm_mig_log(m,
			   "the snapshot left by the interrupted run does not verify (%s): taking it again",
			   err->message);
		unlink(j->archive);
	}
	json_object *o = json_object_new_object(), *src = json_object_new_object();
	json_object_object_add(o, "backup_id", json_object_new_string(j->backup_id));
	json_object_object_add(o, "kind", json_object_new_string("migration-snapshot"));
	json_object_object_add(o, "created_at", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(o, "tool", json_object_new_string("hive-migrate"));
	json_object_object_add(o, "tool_version", json_object_new_string(HM_VERSION));
	json_object_object_add(src, "stack_dir", json_object_new_string(m->stack_dir));
	json_object_object_add(src, "project", json_object_new_string(m->stack.project));
	json_object_object_add(src, "profile", json_object_new_string(m->profile));
	json_object_object_add(src, "image", json_object_new_string(m->stack.pg_image));
	json_object_object_add(src, "data_dir", json_object_new_string(j->data_dir));
	json_object_object_add(src, "pgdata", json_object_new_string(m->stack.pgdata_rel));
	json_object_object_add(src, "major", json_object_new_int(pc.major));
	json_object_object_add(o, "source", src);
	json_object_object_add(o, "cross_major_target", json_object_new_string(j->image));
	char *meta = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (!meta)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_archive_opts ao = {.metadata_json = meta, .zstd_level = 1};
	hm_mig_log(m, "snapshot of the old directory %s into %s", j->data_dir, j->archive);
	int rc = hm_archive_dir_create(j->data_dir, j->archive, &ao, &st, err);
	free(meta);
	if (rc != 0)
		return -1;
	if (hm_archive_verify(j->archive, NULL, &st, err) != 0)
		return hm_error_prefix(err, "the snapshot just written does not verify");
verified:
	snprintf(j->manifest_sha256, sizeof j->manifest_sha256, "%s", st.manifest_sha256);
	return 0;
}

/* docker exec into the restore worker; argv after the container name. */
static int wexec(hm_mig *m, char **args, const char *what, hm_error *err)
{
	char name[200], *argv[40];
	int n = 0;
	hm_major_worker_name(m, "restore", name, sizeof name);
	argv[n++] = "docker";
	argv[n++] = "exec";
	argv[n++] = name;
	for (int i = 0; args[i] && n < 38; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (hm_proc_check(argv, what, NULL, err) != 0) {
		if (!strstr(err->message, "No space left on device"))
			worker_cause(name, err);
		return tool_failed(err, m->j.new_data_dir);
	}
	return 0;
}

/* globals.sql without the CREATE ROLE of the bootstrap superuser (initdb made it; the
 * ALTER ROLE that follows gives it its attributes and password). */
static int filter_globals(const hm_mig *m, const char *su, hm_error *err)
{
	char in[PATH_MAX], outp[PATH_MAX];
	char *buf = NULL;
	size_t len;
	snprintf(in, sizeof in, "%s/globals.sql", m->j.dump_dir);
	snprintf(outp, sizeof outp, "%s/globals-restore.sql", m->j.dump_dir);
	if (hm_read_file(in, 64u << 20, &buf, &len, err) != 0)
		return -1;
	char *out = malloc(len + 1);
	if (!out) {
		free(buf);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	size_t o = hm_major_filter_globals(buf, len, su, out);
	int rc = hm_write_file_atomic(outp, out, o, 0644, err);
	free(out);
	free(buf);
	return rc;
}

/* Wait until the restore worker's server accepts connections on its socket. */
static int wait_worker(hm_mig *m, const char *su, hm_error *err)
{
	char name[200];
	hm_major_worker_name(m, "restore", name, sizeof name);
	double end = hm_progress_now() + m->health_timeout;
	char *argv[] = {"docker", "exec", name,	      "pg_isready", "-q",	"-h",
			SOCK,	  "-U",	  (char *)su, "-d",	    "postgres", NULL};
	for (;;) {
		hm_proc_result r;
		if (hm_proc_run(argv, &r, err) != 0)
			return -1;
		int ok = r.status == 0;
		hm_proc_result_free(&r);
		if (ok)
			return 0;
		char state[64] = "";
		if (hm_docker_container_state(name, state, sizeof state, err) != 0)
			return -1;
		if (strcmp(state, "running") != 0 && strcmp(state, "created") != 0 &&
		    strcmp(state, "configured") != 0 && strcmp(state, "initialized") != 0) {
			char *lg[] = {"docker", "logs", "--tail", "5", name, NULL};
			hm_proc_result l;
			hm_error e2;
			char last[600] = "";
			if (hm_proc_run(lg, &l, &e2) == 0) {
				snprintf(last, sizeof last, "%s",
					 l.errout && l.errout[0] ? l.errout : (l.out ? l.out : ""));
				hm_proc_result_free(&l);
			}
			for (char *c = last; *c; c++)
				if (*c == '\n')
					*c = ' ';
			hm_error_set(err, HM_EXIT_IO, "the new cluster's server (worker %s) ended (%s): %s",
				     name, state[0] ? state : "gone", last);
			return tool_failed(err, m->j.new_data_dir);
		}
		if (hm_progress_now() > end)
			return hm_error_set(err, HM_EXIT_HEALTH_TIMEOUT,
					    "the new cluster's server did not accept connections within %d s",
					    m->health_timeout);
		usleep(200000);
	}
}

/* SQL quoting: an identifier ("...", " doubled) or a literal ('...', ' doubled) appended to
 * out. -1 when it does not fit. */
static int sql_quote(char *out, size_t outsz, const char *s, char q)
{
	size_t n = strlen(out);
	if (n + 2 >= outsz)
		return -1;
	out[n++] = q;
	for (; *s; s++) {
		if (n + 3 >= outsz)
			return -1;
		if (*s == q)
			out[n++] = q;
		out[n++] = *s;
	}
	out[n++] = q;
	out[n] = '\0';
	return 0;
}

/* Append a keyword to out; -1 when it does not fit. */
static int sql_word(char *out, size_t outsz, const char *w)
{
	size_t n = strlen(out), l = strlen(w);
	if (n + l + 1 > outsz)
		return -1;
	memcpy(out + n, w, l + 1);
	return 0;
}

/* CREATE DATABASE for a database whose locale is mapped (plan.json "create"). */
static int create_sql(const char *db, json_object *d, char *out, size_t outsz)
{
	json_object *v;
	const char *owner = NULL, *enc = NULL, *coll = NULL, *ctype = NULL;
	if (json_object_object_get_ex(d, "owner", &v))
		owner = json_object_get_string(v);
	if (json_object_object_get_ex(d, "encoding", &v))
		enc = json_object_get_string(v);
	if (json_object_object_get_ex(d, "collate", &v))
		coll = json_object_get_string(v);
	if (json_object_object_get_ex(d, "ctype", &v))
		ctype = json_object_get_string(v);
	if (!owner || !enc || !coll || !ctype)
		return -1;
	out[0] = '\0';
	return sql_word(out, outsz, "CREATE DATABASE ") || sql_quote(out, outsz, db, '"') ||
	       sql_word(out, outsz, " OWNER ") || sql_quote(out, outsz, owner, '"') ||
	       sql_word(out, outsz, " TEMPLATE template0 ENCODING ") || sql_quote(out, outsz, enc, '\'') ||
	       sql_word(out, outsz, " LC_COLLATE ") || sql_quote(out, outsz, coll, '\'') ||
	       sql_word(out, outsz, " LC_CTYPE ") || sql_quote(out, outsz, ctype, '\'');
}

static const char *UPDATE_SQL =
	"DO $$ DECLARE r record; BEGIN FOR r IN SELECT e.extname FROM pg_extension e JOIN "
	"pg_available_extensions a ON a.name = e.extname WHERE a.default_version IS DISTINCT FROM "
	"e.extversion "
	"LOOP EXECUTE format('ALTER EXTENSION %I UPDATE', r.extname); END LOOP; END $$";

/* Step: initialise the new cluster beside the old directory and restore into it. */
static int restore(hm_mig *m, int jobs, hm_error *err)
{
	char name[200], vol1[PATH_MAX + 40], vol2[PATH_MAX + 16], su[128], jarg[16];
	json_object *dbs = NULL;
	int rc = -1;
	double t0 = hm_progress_now();
	hm_major_worker_name(m, "restore", name, sizeof name);
	hm_major_rm_worker(name);
	json_object *plan = NULL, *create = NULL;
	if (hm_major_read_plan(m->j.dump_dir, su, sizeof su, &dbs, err) != 0)
		return -1;
	{
		char pp[PATH_MAX];
		snprintf(pp, sizeof pp, "%s/plan.json", m->j.dump_dir);
		if ((plan = json_object_from_file(pp)))
			json_object_object_get_ex(plan, "create", &create);
	}
	if (strchr(m->j.new_data_dir, ':')) {
		hm_error_set(err, HM_EXIT_INPUT, "the directory \"%s\" holds a ':'", m->j.new_data_dir);
		goto cleanup;
	}
	if (fresh_dir(m->j.new_data_dir, err) != 0 || filter_globals(m, su, err) != 0)
		goto cleanup;
	snprintf(vol1, sizeof vol1, "%s:/var/lib/postgresql/data", m->j.new_data_dir);
	snprintf(vol2, sizeof vol2, "%s:/dump:ro", m->j.dump_dir);
	hm_mig_log(m, "initialising the new cluster in %s (initdb from %s)", m->j.new_data_dir, m->j.image);
	/* initdb as the unified container initialises a cluster (UTF8, C.UTF-8, checksums, SCRAM
	 * for TCP), with the old cluster's bootstrap superuser so its role keeps oid 10; then the
	 * server on a private socket only (the worker has no network). */
	const char *script =
		"set -e; mkdir -p " SOCK "; [ -s " NEW_PGDATA "/PG_VERSION ] || initdb -D " NEW_PGDATA
		" -U \"$1\" --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 "
		"--locale=C.UTF-8 --data-checksums >/dev/null; exec postgres -D " NEW_PGDATA
		" -c listen_addresses= -c unix_socket_directories=" SOCK
		" -c max_wal_size=4GB -c maintenance_work_mem=256MB -c checkpoint_timeout=30min";
	char *run[] = {"docker",       "run",  "-d",	   "--name",   name,
		       "--network",    "none", "--user",   WORKER_UID, "--shm-size",
		       "1g",	       "-v",   vol1,	   "-v",       vol2,
		       "--entrypoint", "bash", m->j.image, "-c",       (char *)script,
		       "hm-init",      su,     NULL};
	if (hm_proc_check(run, "starting the restore worker (docker run)", NULL, err) != 0)
		goto cleanup;
	if (wait_worker(m, su, err) != 0)
		goto cleanup;
	if (hm_major_fail_point("major:after:init", err) != 0)
		goto cleanup;
	hm_fault_point("major:after:init");
	hm_mig_log(m, "restoring the roles (passwords kept)");
	char *g[] = {"psql", "-X", "-q",       "-v", "ON_ERROR_STOP=1",		  "-h", SOCK, "-U",
		     su,     "-d", "postgres", "-f", "/dump/globals-restore.sql", NULL};
	if (wexec(m, g, "restoring the globals (psql)", err) != 0)
		goto cleanup;
	snprintf(jarg, sizeof jarg, "%d", jobs);
	for (size_t i = 0; i < json_object_array_length(dbs); i++) {
		const char *db = json_object_get_string(json_object_array_get_idx(dbs, i));
		char dir[64], what[300];
		int existing = !strcmp(db, "postgres");
		json_object *mapped = NULL;
		char conn[512];
		snprintf(dir, sizeof dir, "/dump/db-%zu", i);
		if (dbname_conninfo(db, conn, sizeof conn) != 0) {
			hm_error_set(err, HM_EXIT_INPUT, "database name too long");
			goto cleanup;
		}
		if (create && json_object_object_get_ex(create, db, &mapped) && !existing) {
			char sql[1200];
			if (create_sql(db, mapped, sql, sizeof sql) != 0) {
				hm_error_set(err, HM_EXIT_CORRUPT,
					     "the dump's plan for database \"%s\" is unusable", db);
				goto cleanup;
			}
			hm_mig_log(m, "creating database %s with the mapped locale (--locale-map)", db);
			char *cr[] = {"psql",	  "-X", "-q", "-v", "ON_ERROR_STOP=1",
				      "-h",	  SOCK, "-U", su,   "-d",
				      "postgres", "-c", sql,  NULL};
			if (wexec(m, cr, "CREATE DATABASE with the mapped locale (psql)", err) != 0)
				goto cleanup;
			existing = 1;
		}
		snprintf(what, sizeof what, "pg_restore of database \"%s\"", db);
		hm_mig_log(m, "restoring database %s (pg_restore -j %d)", db, jobs);
		/* -C recreates the database as it was (owner, encoding, locale, its grants and
		 * settings); one that exists (postgres, or created above) is restored into */
		char *a[] = {"pg_restore",
			     "-h",
			     SOCK,
			     "-U",
			     su,
			     "-d",
			     existing ? conn : "postgres",
			     "-j",
			     jarg,
			     "--exit-on-error",
			     existing ? dir : "-C",
			     existing ? NULL : dir,
			     NULL};
		if (wexec(m, a, what, err) != 0)
			goto cleanup;
		if (i == 0) {
			hm_fault_point("major:during:restore");
			if (hm_major_fail_point("major:during:restore", err) != 0)
				goto cleanup;
		}
	}
	for (size_t i = 0; i < json_object_array_length(dbs); i++) {
		const char *db = json_object_get_string(json_object_array_get_idx(dbs, i));
		char conn[512];
		if (dbname_conninfo(db, conn, sizeof conn) != 0)
			continue;
		char *u[] = {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",  "-h", SOCK, "-U",
			     su,     "-d", conn, "-c", (char *)UPDATE_SQL, NULL};
		if (wexec(m, u, "ALTER EXTENSION ... UPDATE (psql)", err) != 0)
			goto cleanup;
	}
	hm_mig_log(m, "analyzing (vacuumdb --analyze-in-stages)");
	char *v[] = {"vacuumdb", "-q", "-h", SOCK, "-U", su, "--all", "--analyze-in-stages", NULL};
	if (wexec(m, v, "vacuumdb --analyze-in-stages", err) != 0)
		goto cleanup;
	/* the server is the worker's PID 1: SIGINT is its fast shutdown (checkpoint, "shut
	 * down"), and the container ends with it */
	char *k[] = {"docker", "kill", "--signal", "INT", name, NULL};
	char *w[] = {"docker", "wait", name, NULL};
	if (hm_proc_check(k, "stopping the new cluster (docker kill --signal INT)", NULL, err) != 0 ||
	    hm_proc_check(w, "waiting for the new cluster to stop (docker wait)", NULL, err) != 0)
		goto cleanup;
	hm_major_rm_worker(name);
	{
		char pgdata[PATH_MAX];
		hm_pg_control pc;
		snprintf(pgdata, sizeof pgdata, "%s/pgdata", m->j.new_data_dir);
		if (hm_pg_control_read(pgdata, &pc, err) != 0)
			goto cleanup;
		if (pc.state != HM_DB_SHUTDOWNED) {
			hm_error_set(err, HM_EXIT_IO,
				     "the new cluster is \"%s\" after its stop, not \"shut down\"",
				     hm_db_state_name(pc.state));
			goto cleanup;
		}
	}
	hm_mig_log(m, "restore complete in %.1f s", hm_progress_now() - t0);
	rc = 0;
cleanup:
	if (rc != 0)
		hm_major_rm_worker(name);
	json_object_put(dbs);
	json_object_put(plan);
	return rc;
}

/* Step: the two renames. Each state in between is recognised when resumed. */
static int cut_over(hm_mig *m, hm_error *err)
{
	hm_journal *j = &m->j;
	if (mark(m, HM_MS_CUTTING_OVER, HM_STEP_CHOWNING, err) != 0)
		return -1;
	if (!hm_major_exists(j->old_data_dir)) {
		hm_mig_log(m, "keeping the old directory as %s (unchanged)", j->old_data_dir);
		if (rename(j->data_dir, j->old_data_dir) != 0)
			return hm_error_errno(err, errno, "rename the old directory", j->data_dir);
		if (hm_fsync_parent(j->data_dir, err) != 0)
			return -1;
	}
	hm_fault_point("major:mid:cutover");
	if (hm_major_fail_point("major:mid:cutover", err) != 0)
		return -1;
	if (hm_major_exists(j->new_data_dir)) {
		if (rename(j->new_data_dir, j->data_dir) != 0)
			return hm_error_errno(err, errno, "move the new cluster into place", j->new_data_dir);
		if (hm_fsync_parent(j->data_dir, err) != 0)
			return -1;
	}
	return mark(m, HM_MS_CUT_OVER, HM_STEP_CHOWNED, err);
}

/* Step: the unified container on the new cluster: healthy, pgvector, same fingerprint. */
static int start_unified(hm_mig *m, const char *backup_password, hm_error *err)
{
	hm_journal *j = &m->j;
	json_object *before = NULL, *after = NULL;
	int rc = -1;
	snprintf(j->env_file, sizeof j->env_file, "%s/unified-%s.env", m->state_dir, m->profile);
	if (hm_mig_write_env(m, j->env_file, backup_password, err) != 0)
		return -1;
	if (mark(m, HM_MS_CUT_OVER, HM_STEP_UNIFIED_STARTING, err) != 0)
		return -1;
	hm_mig_log(m, "starting the unified container %s (%s)", j->unified_container, j->image);
	if (hm_compose_unified_up(j->template_file, j->unified_project, j->env_file, err) != 0)
		return -1;
	if (mark(m, HM_MS_UNIFIED, HM_STEP_UNIFIED_STARTING, err) != 0)
		return -1;
	hm_fault_point("major:after:unified-start");
	if (hm_major_fail_point("major:after:unified-start", err) != 0)
		return -1;
	hm_pg_params p = {"127.0.0.1",	    j->pg_port,		  m->stack.db_user,
			  m->stack.db_name, m->stack.db_password, 5};
	hm_mig_log(m, "waiting for the unified container to be healthy (up to %d s)", m->health_timeout);
	if (hm_wait_healthy("the unified container", j->api_port, &p, m->health_timeout, err) != 0)
		return -1;
	hm_mig_log(m, "comparing the data with the fingerprint taken before the copy");
	if (!(before = json_object_from_file(j->fingerprint_file)))
		return hm_error_set(err, HM_EXIT_IO, "cannot read the fingerprint \"%s\"",
				    j->fingerprint_file);
	if (hm_fingerprint_take(&p, &after, err) == 0 &&
	    hm_fingerprint_compare_ex(before, after, HM_FP_CROSS_MAJOR, err) == 0)
		rc = 0;
	json_object_put(before);
	json_object_put(after);
	if (rc == 0)
		rc = hm_major_fail_point("major:after:verify", err);
	return rc;
}

int hm_major_forward(hm_mig *m, const char *archive_dir, const char *backup_password, int jobs,
		     const char *locale_map, hm_error *err)
{
	hm_journal *j = &m->j;
	int ms = hm_major_step_from_name(j->major_step);
	if (ms < 0)
		return hm_error_set(err, HM_EXIT_CORRUPT, "journal: unknown major_step \"%s\"",
				    j->major_step);
	if (jobs < 1)
		jobs = 1;
	j->cross_major = 1;

	if (ms < HM_MS_DUMPED) {
		/* a dump interrupted half-way is taken again from the start */
		hm_pg_params sp = hm_mig_split_params(m);
		if (ms < HM_MS_API_STOPPED) {
			j->step = HM_STEP_STOPPING;
			if (hm_mig_save(m, err) != 0 || stop_api(m, err) != 0)
				return -1;
			j->stopped_at = wall_now();
			if (mark(m, HM_MS_API_STOPPED, HM_STEP_STOPPING, err) != 0)
				return -1;
			hm_fault_point("major:after:api-stop");
			if (hm_major_fail_point("major:after:api-stop", err) != 0)
				return -1;
		} else if (!hm_pg_healthy(&sp, NULL, 0)) {
			/* resumed: the old server must run for the dump */
			char *argv[64];
			int n = hm_compose_argv(&m->stack.compose, argv, 56);
			argv[n++] = "up";
			argv[n++] = "-d";
			argv[n++] = "--no-recreate";
			argv[n++] = "--pull";
			argv[n++] = "never";
			argv[n++] = m->stack.pg_service;
			argv[n] = NULL;
			hm_mig_log(m, "starting the old PostgreSQL again for the dump");
			if (hm_proc_check(argv, "starting the old database (docker compose up)", NULL, err) !=
				    0 ||
			    hm_wait_healthy("the old database", 0, &sp, m->health_timeout, err) != 0)
				return -1;
		}
		if (fingerprint_now(m, err) != 0 || dump(m, jobs, locale_map, err) != 0)
			return -1;
		if (mark(m, HM_MS_DUMPED, HM_STEP_STOPPING, err) != 0)
			return -1;
		hm_fault_point("major:after:dump");
		if (hm_major_fail_point("major:after:dump", err) != 0)
			return -1;
		ms = HM_MS_DUMPED;
	}
	if (ms < HM_MS_OLD_STOPPED) {
		if (stop_old(m, err) != 0 || mark(m, HM_MS_OLD_STOPPED, HM_STEP_STOPPED, err) != 0)
			return -1;
		hm_fault_point("major:after:old-stop");
		if (hm_major_fail_point("major:after:old-stop", err) != 0)
			return -1;
		ms = HM_MS_OLD_STOPPED;
	}
	if (ms < HM_MS_SNAPSHOTTED) {
		if (snapshot(m, archive_dir, err) != 0 ||
		    mark(m, HM_MS_SNAPSHOTTED, HM_STEP_SNAPSHOTTED, err) != 0)
			return -1;
		hm_fault_point("major:after:snapshot");
		if (hm_major_fail_point("major:after:snapshot", err) != 0)
			return -1;
		ms = HM_MS_SNAPSHOTTED;
	}
	if (ms < HM_MS_RESTORED) {
		if (restore(m, jobs, err) != 0 || mark(m, HM_MS_RESTORED, HM_STEP_SNAPSHOTTED, err) != 0)
			return -1;
		hm_fault_point("major:after:restore");
		if (hm_major_fail_point("major:after:restore", err) != 0)
			return -1;
		ms = HM_MS_RESTORED;
	}
	if (ms < HM_MS_CUT_OVER) {
		if (cut_over(m, err) != 0)
			return -1;
		hm_fault_point("major:after:cutover");
		if (hm_major_fail_point("major:after:cutover", err) != 0)
			return -1;
		ms = HM_MS_CUT_OVER;
	}
	if (ms < HM_MS_VERIFIED) {
		if (start_unified(m, backup_password, err) != 0)
			return -1;
		j->healthy_at = wall_now();
		if (mark(m, HM_MS_VERIFIED, HM_STEP_VERIFIED, err) != 0)
			return -1;
		hm_fault_point("major:after:verify");
	}
	j->step = HM_STEP_DONE;
	j->status = HM_JS_DONE;
	j->failure[0] = '\0';
	hm_mig_log(m, "the old PostgreSQL %d directory is kept unchanged in %s; the dump in %s", j->old_major,
		   j->old_data_dir, j->dump_dir);
	return hm_mig_save(m, err);
}

int hm_major_up_setup(hm_mig *m, const hm_preflight_facts *f, hm_error *err)
{
	hm_journal *j = &m->j;
	if (m->stack.data_volume[0]) {
		hm_error_set(
			err, HM_EXIT_PREFLIGHT,
			"the data of %s is in the named volume \"%s\": the cross-major path keeps the old "
			"directory beside the new one and needs a bind mount",
			m->stack.pg_service, m->stack.data_volume);
		return hm_error_hint(err,
				     "bind-mount a host directory instead of the volume (copy the volume's "
				     "files there with the stack stopped), then run up again");
	}
	j->cross_major = 1;
	j->old_major = (int)f->control.major;
	if (hm_major_dir_names(j->data_dir, j->old_major, f->target_major, j->new_data_dir,
			       sizeof j->new_data_dir, j->old_data_dir, sizeof j->old_data_dir) != 0 ||
	    snprintf(j->dump_dir, sizeof j->dump_dir, "%s/dump-%s", m->state_dir, m->profile) >=
		    (int)sizeof j->dump_dir)
		return hm_error_set(err, HM_EXIT_PREFLIGHT, "path too long: \"%s\"", j->data_dir);
	if (hm_major_exists(j->old_data_dir)) {
		hm_error_set(err, HM_EXIT_PREFLIGHT, "\"%s\" exists already (kept by an earlier migration?)",
			     j->old_data_dir);
		return hm_error_hint(err, "move it elsewhere (it may be someone's data), then run up again");
	}
	if (hm_major_exists(j->new_data_dir)) {
		/* kept by a rollback after a completed run: it holds the writes made since */
		hm_error_set(err, HM_EXIT_PREFLIGHT,
			     "\"%s\" exists already (a new cluster kept by an earlier rollback?)",
			     j->new_data_dir);
		return hm_error_hint(err, "move it elsewhere (it may hold writes made on the unified "
					  "container), then run up again");
	}
	return 0;
}

/* Bytes of regular files below dir (the estimate's input; an upper bound of the data). */
static double tree_bytes(const char *dir)
{
	double total = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p || lstat(p, &st) != 0)
			continue;
		if (S_ISREG(st.st_mode))
			total += (double)st.st_size;
		else if (S_ISDIR(st.st_mode))
			total += tree_bytes(p);
	}
	closedir(d);
	return total;
}

void hm_major_print_plan(const hm_mig *m, const char *archive_dir, int jobs)
{
	const hm_journal *j = &m->j;
	double bytes = tree_bytes(j->data_dir);
	printf("plan for profile %s across PostgreSQL majors: %d -> the target of %s (dry run: nothing was "
	       "changed)\n",
	       m->profile, j->old_major, j->image);
	printf("  1. preflight: passed with major-upgrade (data %s)\n", m->stack.pgdata);
	printf("  2. stop the API containers; the old PostgreSQL keeps running; fingerprint every table\n");
	printf("  3. pg_dumpall --globals-only and pg_dump -Fd -j %d of every database, run from %s, into "
	       "%s\n",
	       jobs, j->image, j->dump_dir);
	printf("  4. stop the old PostgreSQL (docker compose stop -t %d), require \"shut down\"; snapshot %s "
	       "into "
	       "%s/<uuid>.tar.zst, verify it\n",
	       m->stop_timeout, j->data_dir, archive_dir ? archive_dir : "STACK/.hive-migrate/archives");
	printf("  5. initdb the new cluster in %s; restore the globals, then every database (pg_restore -j "
	       "%d); "
	       "ALTER EXTENSION ... UPDATE; vacuumdb --analyze-in-stages\n",
	       j->new_data_dir, jobs);
	printf("  6. cut over: %s -> %s (kept unchanged), %s -> %s\n", j->data_dir, j->old_data_dir,
	       j->new_data_dir, j->data_dir);
	printf("  7. start %s (API port %d, PostgreSQL 127.0.0.1:%d); wait up to %d s for health; compare "
	       "the "
	       "fingerprint\n",
	       j->unified_container, j->api_port, j->pg_port, m->health_timeout);
	printf("  8. on failure: put the old directory back, start the split stack, confirm its "
	       "fingerprint\n");
	printf("  estimated downtime: %.0f s (from %.1f MiB in %s; the API is down from step 2 to 7)\n",
	       hm_major_estimate_seconds(bytes), bytes / 1048576.0, j->data_dir);
}
