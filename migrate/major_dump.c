/* `up` across PostgreSQL majors, the old cluster's side: the dump's plan (DUMP/plan.json),
 * pg_dumpall --globals-only and pg_dump -Fd of every database in a worker container of the
 * target image, then the clean stop of the old server and the verified snapshot of its
 * directory. The forward path that runs these steps is in major_up.c. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
#include "health.h"
#include "major.h"
#include "major_int.h"
#include "migration.h"

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
		       HM_MAJOR_WORKER_UID,
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
		return hm_major_tool_failed(err, m->j.dump_dir);
	return 0;
}

/* Step: pg_dumpall --globals-only and pg_dump -Fd -j N of every database. */
int hm_major_dump(hm_mig *m, int jobs, const char *locale_map, hm_error *err)
{
	char env_file[PATH_MAX], jarg[16];
	json_object *dbs = NULL;
	char su[128];
	int rc = -1;
	double t0 = hm_progress_now();
	if (strchr(m->j.dump_dir, ':'))
		return hm_error_set(err, HM_EXIT_INPUT, "the dump directory \"%s\" holds a ':'",
				    m->j.dump_dir);
	if (hm_major_fresh_dir(m->j.dump_dir, err) != 0 || write_plan(m, locale_map, err) != 0)
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
		if (hm_major_dbname_conninfo(db, conn, sizeof conn) != 0) {
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
int hm_major_stop_old(hm_mig *m, hm_error *err)
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
int hm_major_snapshot(hm_mig *m, const char *archive_dir, hm_error *err)
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
