/* `up` across PostgreSQL majors, the new cluster's side: initdb beside the old directory in
 * a restore worker container (no network, reached with docker exec over its unix socket),
 * the globals and every database restored from the dump, extensions updated and the
 * statistics rebuilt. The forward path that runs this step is in major_up.c. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "../common/pg_control.h"
#include "../common/process.h"
#include "../common/progress.h"
#include "compose.h"
#include "major.h"
#include "major_int.h"
#include "migration.h"

#define SOCK "/tmp/hm"
#define WORKER_MOUNT "/var/lib/postgresql/data" /* the new cluster's directory in the worker */
#define NEW_PGDATA WORKER_MOUNT "/pgdata"
/* the schema SQL of one database, beside pgdata while it is restored, then removed */
#define PREDATA_RAW "hm-predata.sql"
#define PREDATA_FIXED "hm-predata-restore.sql"

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
			hm_major_worker_cause(name, err);
		return hm_major_tool_failed(err, m->j.new_data_dir);
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
			return hm_major_tool_failed(err, m->j.new_data_dir);
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

/* Read the regular file path (never through a symlink: the worker owns its directory),
 * at most max bytes. */
static int read_worker_file(const char *path, size_t max, char **out, size_t *len, hm_error *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return hm_error_errno(err, errno, "open", path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		close(fd);
		return hm_error_set(err, HM_EXIT_IO, "\"%s\" is not a regular file of at most %zu MB", path,
				    max >> 20);
	}
	close(fd);
	return hm_read_file(path, max, out, len, err);
}

/* The schema of database db (dump directory dir, as the worker sees it): pg_restore
 * --create --section=pre-data writes it as SQL into the new cluster's mount, the host makes
 * it restorable on the target (hm_major_filter_predata: options the target rejects, and the
 * CREATE DATABASE of a database that exists already), psql runs it. As one script rather
 * than pg_restore -d, because pg_restore cannot leave out part of an entry, and a single
 * unknown column option fails the whole table. The database keeps its grants, comment and
 * settings either way (they are pre-data entries of --create). */
static int restore_predata(hm_mig *m, const char *su, const char *dir, const char *db, int existing,
			   hm_error *err)
{
	char raw[PATH_MAX], fixed[PATH_MAX], what[300];
	char *in = NULL, *out = NULL;
	size_t len = 0;
	long dropped = 0;
	int rc = -1;
	snprintf(raw, sizeof raw, "%s/" PREDATA_RAW, m->j.new_data_dir);
	snprintf(fixed, sizeof fixed, "%s/" PREDATA_FIXED, m->j.new_data_dir);
	unlink(raw);
	unlink(fixed);
	snprintf(what, sizeof what, "pg_restore --section=pre-data of database \"%s\"", db);
	char *p[] = {"pg_restore", "-C", "--section=pre-data", "-f", WORKER_MOUNT "/" PREDATA_RAW,
		     (char *)dir,  NULL};
	if (wexec(m, p, what, err) != 0)
		goto cleanup;
	if (read_worker_file(raw, 1u << 30, &in, &len, err) != 0)
		goto cleanup;
	if (!(out = malloc(len + 1))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	size_t o = hm_major_filter_predata(in, len, existing, out, &dropped);
	if (hm_write_file_atomic(fixed, out, o, 0644, err) != 0)
		goto cleanup;
	if (dropped)
		hm_mig_log(m,
			   "database %s: left out the column option pg_attver on %ld columns (an "
			   "internal marker of Debian's PostgreSQL 17.12 that the target rejects)",
			   db, dropped);
	snprintf(what, sizeof what, "restoring the schema of database \"%s\" (psql)", db);
	char *q[] = {"psql",
		     "-X",
		     "-q",
		     "-v",
		     "ON_ERROR_STOP=1",
		     "-h",
		     SOCK,
		     "-U",
		     (char *)su,
		     "-d",
		     "postgres",
		     "-f",
		     WORKER_MOUNT "/" PREDATA_FIXED,
		     NULL};
	if (wexec(m, q, what, err) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	unlink(raw);
	unlink(fixed);
	free(in);
	free(out);
	return rc;
}

/* MemAvailable of /proc/meminfo in bytes, 0 when it cannot be read. */
static uint64_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/* initdb the new cluster in the restore worker NAME and start its server on the private
 * socket; 0 once it accepts connections. */
static int start_worker(hm_mig *m, const char *name, const char *su, hm_error *err)
{
	char vol1[PATH_MAX + 40], vol2[PATH_MAX + 16];
	snprintf(vol1, sizeof vol1, "%s:/var/lib/postgresql/data", m->j.new_data_dir);
	snprintf(vol2, sizeof vol2, "%s:/dump:ro", m->j.dump_dir);
	char mwm[32], shm[32];
	int mb = hm_major_index_memory_mb(mem_available());
	/* benchmarks compare settings (tests/bench/major.sh --mwm); not a user option */
	const char *force = getenv("HIVE_MIGRATE_INDEX_MEMORY_MB");
	if (force && atoi(force) >= 64 && atoi(force) <= 65536)
		mb = atoi(force);
	snprintf(mwm, sizeof mwm, "%d", mb);
	snprintf(shm, sizeof shm, "%dm", mb + 512);
	hm_mig_log(m, "initialising the new cluster in %s (initdb from %s; maintenance_work_mem %d MB)",
		   m->j.new_data_dir, m->j.image, mb);
	/* initdb as the unified container initialises a cluster (UTF8, C.UTF-8, checksums, SCRAM
	 * for TCP), with the old cluster's bootstrap superuser so its role keeps oid 10; then the
	 * server on a private socket only (the worker has no network). */
	const char *script =
		"set -e; mkdir -p " SOCK "; [ -s " NEW_PGDATA "/PG_VERSION ] || initdb -D " NEW_PGDATA
		" -U \"$1\" --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 "
		"--locale=C.UTF-8 --data-checksums >/dev/null; exec postgres -D " NEW_PGDATA
		" -c listen_addresses= -c unix_socket_directories=" SOCK
		" -c max_wal_size=4GB -c maintenance_work_mem=\"$2\"MB -c checkpoint_timeout=30min";
	char *run[] = {"docker",
		       "run",
		       "-d",
		       "--name",
		       (char *)name,
		       "--network",
		       "none",
		       "--user",
		       HM_MAJOR_WORKER_UID,
		       "--shm-size",
		       shm,
		       "-v",
		       vol1,
		       "-v",
		       vol2,
		       "--entrypoint",
		       "bash",
		       m->j.image,
		       "-c",
		       (char *)script,
		       "hm-init",
		       (char *)su,
		       mwm,
		       NULL};
	if (hm_proc_check(run, "starting the restore worker (docker run)", NULL, err) != 0)
		return -1;
	return wait_worker(m, su, err);
}

/* Step: initialise the new cluster beside the old directory and restore into it. */
int hm_major_restore(hm_mig *m, int jobs, double *analyze_seconds, hm_error *err)
{
	char name[200], su[128], jarg[16];
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
	if (hm_major_fresh_dir(m->j.new_data_dir, err) != 0 || filter_globals(m, su, err) != 0)
		goto cleanup;
	if (start_worker(m, name, su, err) != 0)
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
		if (hm_major_dbname_conninfo(db, conn, sizeof conn) != 0) {
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
		hm_mig_log(m, "restoring database %s (schema, then pg_restore -j %d)", db, jobs);
		if (restore_predata(m, su, dir, db, existing, err) != 0)
			goto cleanup;
		snprintf(what, sizeof what, "pg_restore of database \"%s\"", db);
		/* the rows, then indexes and constraints, in parallel */
		char *a[] = {"pg_restore",
			     "-h",
			     SOCK,
			     "-U",
			     su,
			     "-d",
			     conn,
			     "-j",
			     jarg,
			     "--exit-on-error",
			     "--section=data",
			     "--section=post-data",
			     dir,
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
		if (hm_major_dbname_conninfo(db, conn, sizeof conn) != 0)
			continue;
		char *u[] = {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",  "-h", SOCK, "-U",
			     su,     "-d", conn, "-c", (char *)UPDATE_SQL, NULL};
		if (wexec(m, u, "ALTER EXTENSION ... UPDATE (psql)", err) != 0)
			goto cleanup;
	}
	double ta = hm_progress_now();
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
	*analyze_seconds = hm_progress_now() - ta;
	hm_mig_log(m, "restore complete in %.1f s", hm_progress_now() - t0);
	rc = 0;
cleanup:
	if (rc != 0)
		hm_major_rm_worker(name);
	json_object_put(dbs);
	json_object_put(plan);
	return rc;
}
