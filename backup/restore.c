/* Restore. The new tree is built beside the target and renamed into place, so the target
 * is either untouched or complete; the previous data directory is only moved aside (never
 * deleted) when --replace is given. */
#include "restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "../common/process.h"
#include "../common/progress.h"
#include "verify.h"

/* 1 if dir exists and is empty, 0 if it exists and is not, -1 if it does not exist. */
static int dir_state(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	int empty = 1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

int hm_restore(const hm_repo *r, const hm_backup_meta *m, const hm_restore_opts *o, char *aside,
	       size_t asidesz, hm_error *err)
{
	char tmp[4200], ts[32], pidf[4200];
	struct stat st;
	aside[0] = '\0';
	size_t tl = strlen(o->to);
	while (tl > 1 && o->to[tl - 1] == '/')
		tl--;
	if (lstat(o->to, &st) == 0 && !S_ISDIR(st.st_mode))
		return hm_error_set(err, HM_EXIT_INPUT, "restore target \"%s\" exists and is not a directory",
				    o->to);
	int state = dir_state(o->to);
	if (state == 0) {
		if (!o->replace) {
			hm_error_set(err, HM_EXIT_INPUT, "restore target \"%s\" is not empty", o->to);
			return hm_error_hint(
				err,
				"restore into a new directory, or stop the stack and add --replace "
				"to keep the current data as %.*s.before-restore-<time>",
				(int)tl, o->to);
		}
		snprintf(pidf, sizeof pidf, "%.*s/postmaster.pid", (int)tl, o->to);
		if (lstat(pidf, &st) == 0) {
			hm_error_set(err, HM_EXIT_INPUT, "\"%s\" exists: PostgreSQL may be running on \"%s\"",
				     pidf, o->to);
			return hm_error_hint(err, "stop the stack first (docker compose stop -t 30)");
		}
	}
	snprintf(tmp, sizeof tmp, "%.*s.restoring-%ld", (int)tl, o->to, (long)getpid());
	hm_error ignored;
	hm_rmtree(tmp, &ignored);
	hm_progress prog;
	hm_progress_init(&prog, stderr, "restore",
			 strcmp(m->kind, "offline") ? m->archive_size : m->database_size, o->quiet);
	hm_verify_opts vo = {.extract_to = tmp,
			     .set_owner = o->set_owner,
			     .uid = o->uid,
			     .gid = o->gid,
			     .progress = &prog};
	hm_verify_report rep;
	int rc = hm_verify_backup(r, m, &vo, &rep, err);
	if (rc != 0 && rep.nerrors > 1) {
		for (size_t i = 0; i < rep.nerrors && rep.errors && i < 200; i++)
			if (rep.errors[i])
				fprintf(stderr, "hive-migrate: backup %s: %s\n", m->id, rep.errors[i]);
	}
	hm_verify_report_free(&rep);
	if (rc != 0)
		return hm_error_prefix(err, "restore refused, \"%s\" left untouched", o->to);
	hm_progress_finish(&prog);
	if (o->set_owner && !strcmp(m->kind, "offline") && chown(tmp, o->uid, o->gid) != 0) {
		hm_error_errno(err, errno, "chown", tmp);
		goto fail;
	}
	if (chmod(tmp, 0700) != 0) {
		hm_error_errno(err, errno, "chmod", tmp);
		goto fail;
	}
	if (state == 0) {
		struct tm tm;
		time_t now = time(NULL);
		gmtime_r(&now, &tm);
		strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
		snprintf(aside, asidesz, "%.*s.before-restore-%s", (int)tl, o->to, ts);
		if (rename(o->to, aside) != 0) {
			hm_error_errno(err, errno, "move aside", o->to);
			aside[0] = '\0';
			goto fail;
		}
	}
	/* rename over a missing or empty directory is atomic */
	if (rename(tmp, o->to) != 0) {
		hm_error_errno(err, errno, "rename into place", o->to);
		if (aside[0] && rename(aside, o->to) == 0)
			aside[0] = '\0';
		goto fail;
	}
	return hm_fsync_parent(o->to, err);
fail:
	hm_rmtree(tmp, &ignored);
	return -1;
}

/* Run argv (no shell); capture up to outsz-1 bytes of stdout then stderr into out.
 * Returns the exit status, or -1 if it could not run. */
static int run_capture(char *const argv[], char *out, size_t outsz)
{
	hm_proc_result r;
	hm_error ignored;
	if (out && outsz)
		out[0] = '\0';
	if (hm_proc_run(argv, &r, &ignored) != 0)
		return -1;
	if (out && outsz)
		snprintf(out, outsz, "%s%s", r.out ? r.out : "", r.errout ? r.errout : "");
	int status = r.status;
	hm_proc_result_free(&r);
	return status;
}

/* Trim trailing whitespace. */
static void rstrip(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* psql inside the container over its unix socket; out gets the unaligned output. */
static int container_psql(const char *name, const char *user, const char *db, const char *sql, char *out,
			  size_t outsz)
{
	char *argv[] = {
		"docker", "exec",	(char *)name, "psql",	  "-h", "/tmp", "-p", "5432",
		"-U",	  (char *)user, "-d",	      (char *)db, "-X", "-At",	"-v", "ON_ERROR_STOP=1",
		"-c",	  (char *)sql,	NULL};
	int rc = run_capture(argv, out, outsz);
	rstrip(out);
	return rc;
}

int hm_restore_test(const hm_repo *r, const hm_backup_meta *m, const char *image, char *summary,
		    size_t summarysz, int quiet, hm_error *err)
{
	char dir[4600], name[96], vol[4800], hba[4800], out[8192], bin[128], userspec[64];
	struct stat st;
	int rc = -1, started = 0;
	const char *prefix = getenv("HIVE_RESTORE_TEST_PREFIX");
	snprintf(dir, sizeof dir, "%s/.tmp/restore-test-%s", r->path, m->id);
	snprintf(name, sizeof name, "%srestoretest-%.8s", prefix && prefix[0] ? prefix : "hb-", m->uuid);
	hm_error ignored;
	hm_rmtree(dir, &ignored);
	hm_progress prog;
	hm_progress_init(&prog, stderr, "restore-test extract", m->archive_size, quiet);
	hm_verify_opts vo = {.extract_to = dir, .progress = &prog};
	hm_verify_report rep;
	int vr = hm_verify_backup(r, m, &vo, &rep, err);
	hm_verify_report_free(&rep);
	if (vr != 0)
		return -1;
	hm_progress_finish(&prog);
	snprintf(hba, sizeof hba, "%s/PG_VERSION", dir);
	if (stat(hba, &st) != 0) {
		hm_error_errno(err, errno, "stat", hba);
		goto cleanup;
	}
	snprintf(userspec, sizeof userspec, "%lu:%lu", (unsigned long)st.st_uid, (unsigned long)st.st_gid);
	/* our own pg_hba (local trust) on the throwaway copy; the backup's is not used */
	snprintf(hba, sizeof hba, "%s/hm_restore_test_hba.conf", dir);
	static const char hba_text[] = "local all all trust\n";
	if (hm_write_file_atomic(hba, hba_text, sizeof hba_text - 1, 0600, err) != 0)
		goto cleanup;
	if (chown(hba, st.st_uid, st.st_gid) != 0) {
		hm_error_errno(err, errno, "chown", hba);
		goto cleanup;
	}
	snprintf(vol, sizeof vol, "%s:/var/lib/postgresql/data/pgdata", dir);
	snprintf(bin, sizeof bin, "/usr/lib/postgresql/%d/bin/postgres", m->pg_version / 10000);
	{
		char *rm_argv[] = {"docker", "rm", "-f", name, NULL};
		run_capture(rm_argv, NULL, 0);
		char *argv[] = {"docker", "run",
				"-d",	  "--name",
				name,	  "--user",
				userspec, "--entrypoint",
				bin,	  "-v",
				vol,	  (char *)image,
				"-D",	  "/var/lib/postgresql/data/pgdata",
				"-c",	  "listen_addresses=",
				"-c",	  "unix_socket_directories=/tmp",
				"-c",	  "hba_file=/var/lib/postgresql/data/pgdata/hm_restore_test_hba.conf",
				"-c",	  "archive_mode=off",
				"-c",	  "port=5432",
				NULL};
		if (run_capture(argv, out, sizeof out) != 0) {
			rstrip(out);
			hm_error_set(err, HM_EXIT_ENGINE, "cannot start a restore-test container from %s: %s",
				     image, out);
			goto cleanup;
		}
		started = 1;
	}
	/* wait (bounded) for recovery to finish and connections to be accepted */
	double deadline = hm_progress_now() + 300;
	int ready = 0;
	while (hm_progress_now() < deadline) {
		char *argv[] = {"docker", "exec", name, "pg_isready", "-h", "/tmp", "-p", "5432", NULL};
		if (run_capture(argv, NULL, 0) == 0) {
			ready = 1;
			break;
		}
		char *st_argv[] = {"docker", "inspect", "-f", "{{.State.Running}}", name, NULL};
		run_capture(st_argv, out, sizeof out);
		rstrip(out);
		if (strcmp(out, "true") != 0)
			break; /* the server exited */
		struct timespec ts = {0, 300 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (!ready) {
		char *argv[] = {"docker", "logs", "--tail", "5", name, NULL};
		run_capture(argv, out, sizeof out);
		for (char *p = out; *p; p++)
			if (*p == '\n')
				*p = ' ';
		hm_error_set(err, HM_EXIT_VERIFY_FAILED,
			     "restore test: PostgreSQL did not start on the restored copy: %s", out);
		goto cleanup;
	}
	/* the bootstrap superuser (oid 10), found through any role that can log in */
	static const char *candidates[] = {"hive_backup", "postgres", "agent", "hive", NULL};
	char super[128] = "";
	for (int i = 0; candidates[i] && !super[0]; i++)
		if (container_psql(name, candidates[i], "postgres",
				   "select rolname from pg_roles where oid = 10", out, sizeof out) == 0)
			snprintf(super, sizeof super, "%s", out);
	if (!super[0]) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED,
			     "restore test: cannot query the restored cluster: %s", out);
		goto cleanup;
	}
	char dbs[4096];
	if (container_psql(
		    name, super, "postgres",
		    "select datname from pg_database where datallowconn and not datistemplate order by 1",
		    dbs, sizeof dbs) != 0) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "restore test: listing databases failed: %s", dbs);
		goto cleanup;
	}
	size_t sl = 0;
	summary[0] = '\0';
	sl += (size_t)snprintf(summary + sl, summarysz - sl, "started;");
	for (char *db = strtok(dbs, "\n"); db; db = strtok(NULL, "\n")) {
		if (container_psql(name, super, db, "select count(*) from pg_class", out, sizeof out) != 0) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED, "restore test: database %s: %s", db, out);
			goto cleanup;
		}
		char kb[64] = "";
		if (container_psql(name, super, db, "select to_regclass('agno.knowledge_base') is not null",
				   out, sizeof out) == 0 &&
		    !strcmp(out, "t")) {
			if (container_psql(name, super, db, "select count(*) from agno.knowledge_base", out,
					   sizeof out) != 0) {
				hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					     "restore test: %s: counting agno.knowledge_base: %s", db, out);
				goto cleanup;
			}
			snprintf(kb, sizeof kb, "%s", out);
			if (container_psql(name, super, db,
					   "select count(*) from (select id from agno.knowledge_base where "
					   "embedding is not null "
					   "order by embedding <=> (select embedding from "
					   "agno.knowledge_base where embedding is not null limit 1) "
					   "limit 5) s",
					   out, sizeof out) != 0) {
				hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					     "restore test: %s: pgvector search failed: %s", db, out);
				goto cleanup;
			}
			if (sl < summarysz)
				sl += (size_t)snprintf(summary + sl, summarysz - sl,
						       " %s: %s knowledge rows, vector search %s hits;", db,
						       kb, out);
		} else if (sl < summarysz) {
			sl += (size_t)snprintf(summary + sl, summarysz - sl, " %s: ok;", db);
		}
	}
	rc = 0;
cleanup:
	if (started) {
		char *stop_argv[] = {"docker", "stop", "-t", "30", name, NULL};
		run_capture(stop_argv, NULL, 0);
		char *rm_argv[] = {"docker", "rm", "-f", name, NULL};
		run_capture(rm_argv, NULL, 0);
	}
	hm_rmtree(dir, &ignored);
	return rc;
}
