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

/* State of the restore target name inside pfd: -1 missing, 1 an empty directory, 0 a
 * non-empty one (with postmaster.pid: 2). -2 with err set otherwise. */
static int target_state(int pfd, const char *name, const char *to, hm_error *err)
{
	struct stat st;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return -1;
		hm_error_errno(err, errno, "stat", to);
		return -2;
	}
	if (!S_ISDIR(st.st_mode)) {
		hm_error_set(err, HM_EXIT_INPUT, "restore target \"%s\" exists and is not a directory%s", to,
			     S_ISLNK(st.st_mode) ? " (a symlink, never followed)" : "");
		return -2;
	}
	int fd = hm_open_dir_at(pfd, name, to, err);
	if (fd < 0)
		return -2;
	int dfd = dup(fd), empty = 1;
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d)
		rewinddir(d);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	if (d)
		closedir(d);
	else if (dfd >= 0)
		close(dfd);
	int pid = fstatat(fd, "postmaster.pid", &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(fd);
	return empty ? 1 : pid ? 2 : 0;
}

/* Remove work directories "<base>.restoring-<pid>" of restores that were killed: the pid
 * is dead, and it is a directory of ours (anything else is left alone). */
static void remove_stale(int pfd, const char *dir, const char *base, int quiet)
{
	int dfd = dup(pfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	size_t bl = strlen(base);
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	rewinddir(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		const char *n = e->d_name, *p;
		char *end;
		struct stat st;
		if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".restoring-", 11) != 0)
			continue;
		p = n + bl + 11;
		long pid = strtol(p, &end, 10);
		if (end == p || *end || pid <= 0)
			continue;
		if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue; /* a live restore (or a pid we may not signal) */
		if (fstatat(pfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
		    st.st_uid != geteuid())
			continue;
		char disp[4400];
		hm_error e2;
		snprintf(disp, sizeof disp, "%s/%s", dir, n);
		if (hm_rmtree_at(pfd, n, disp, &e2) == 0) {
			if (!quiet)
				fprintf(stderr,
					"hive-migrate: removed \"%s\", left by a restore that was killed\n",
					disp);
		} else {
			fprintf(stderr, "hive-migrate: could not remove \"%s\": %s\n", disp, e2.message);
		}
	}
	closedir(d);
}

/* Remove whatever entry of pfd is the directory dev/ino (a work directory renamed away). */
static void remove_by_identity(int pfd, const char *dir, dev_t dev, ino_t ino)
{
	int dfd = dup(pfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	rewinddir(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		struct stat st;
		if (fstatat(pfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_dev == dev && st.st_ino == ino) {
			char disp[4400];
			hm_error ignored;
			snprintf(disp, sizeof disp, "%s/%s", dir, e->d_name);
			hm_rmtree_at(pfd, e->d_name, disp, &ignored);
			break;
		}
	}
	closedir(d);
}

/* Rename from to to inside pfd, if and only if from is the directory dev/ino, and check
 * that to is it afterwards (else undone). 0 or -1. */
static int rename_checked(int pfd, const char *from, const char *to, const char *display, dev_t dev,
			  ino_t ino, hm_error *err)
{
	struct stat st;
	if (fstatat(pfd, from, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) || st.st_dev != dev ||
	    st.st_ino != ino) {
		hm_error_set(err, HM_EXIT_IO,
			     "the restored copy for \"%s\" was moved or replaced while restoring", display);
		return hm_error_hint(err,
				     "someone who can write the target's parent directory did it; check who");
	}
	if (renameat(pfd, from, pfd, to) != 0)
		return hm_error_errno(err, errno, "rename into place", display);
	if (fstatat(pfd, to, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev || st.st_ino != ino) {
		(void)renameat(pfd, to, pfd, from);
		hm_error_set(err, HM_EXIT_IO,
			     "the restored copy for \"%s\" was replaced while moved into place", display);
		return hm_error_hint(err,
				     "someone who can write the target's parent directory did it; check who");
	}
	return 0;
}

int hm_restore(const hm_repo *r, const hm_backup_meta *m, const hm_restore_opts *o, char *aside,
	       size_t asidesz, hm_error *err)
{
	char dir[4096], base[256], work[300], workdisp[4400], asidename[300], ts[32];
	int rc = -1;
	aside[0] = '\0';
	if (m->broken)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "backup %s cannot be restored: %s", m->id,
				    m->verify_error);
	if (hm_path_split(o->to, dir, sizeof dir, base, sizeof base, err) != 0)
		return -1;
	/* the target's parent, opened once: everything after is relative to it, so a path
	 * component swapped for a symlink cannot redirect the restore */
	int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return hm_error_errno(err, errno, "open the directory of the restore target", dir);
	int state = target_state(pfd, base, o->to, err);
	if (state == -2)
		goto out;
	if (state == 0 || state == 2) {
		if (!o->replace) {
			hm_error_set(err, HM_EXIT_INPUT, "restore target \"%s\" is not empty", o->to);
			hm_error_hint(
				err,
				"restore into a new directory, or stop the stack and add --replace to keep "
				"the current data as %s.before-restore-<time>",
				o->to);
			goto out;
		}
		if (state == 2) {
			hm_error_set(err, HM_EXIT_INPUT,
				     "\"%s/postmaster.pid\" exists: PostgreSQL may be running on \"%s\"",
				     o->to, o->to);
			hm_error_hint(err, "stop the stack first (docker compose stop -t 30)");
			goto out;
		}
	}
	remove_stale(pfd, dir, base, o->quiet);
	snprintf(work, sizeof work, "%s.restoring-%ld", base, (long)getpid());
	snprintf(workdisp, sizeof workdisp, "%s/%s", dir, work);
	hm_progress prog;
	hm_progress_init(&prog, stderr, "restore",
			 strcmp(m->kind, "offline") ? m->archive_size : m->database_size, o->quiet);
	hm_verify_opts vo = {.extract_name = work,
			     .extract_parent_fd = pfd,
			     .extract_display = workdisp,
			     .set_owner = o->set_owner,
			     .uid = o->uid,
			     .gid = o->gid,
			     .progress = &prog,
			     .secret = o->secret};
	hm_verify_report rep;
	int vr = hm_verify_backup(r, m, &vo, &rep, err);
	if (vr != 0 && rep.nerrors > 1)
		for (size_t i = 0; i < hm_verify_stored(&rep); i++)
			if (rep.errors[i])
				fprintf(stderr, "hive-migrate: backup %s: %s\n", m->id, rep.errors[i]);
	dev_t dev = rep.extract_dev;
	ino_t ino = rep.extract_ino;
	hm_verify_report_free(&rep);
	if (vr != 0) {
		hm_error_prefix(err, "restore refused, \"%s\" left untouched", o->to);
		goto out;
	}
	hm_progress_finish(&prog);
	/* the new data directory: 0700 whatever the archive said, as PostgreSQL wants it */
	int wfd = openat(pfd, work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat wst;
	if (wfd < 0 || fstat(wfd, &wst) != 0 || wst.st_dev != dev || wst.st_ino != ino) {
		hm_error_set(err, HM_EXIT_IO,
			     "the restored copy \"%s\" was moved or replaced while restoring", workdisp);
		hm_error_hint(err, "someone who can write the target's parent directory did it; check who");
		if (wfd >= 0)
			close(wfd);
		goto fail;
	}
	if (fchmod(wfd, 0700) != 0) {
		hm_error_errno(err, errno, "chmod", workdisp);
		close(wfd);
		goto fail;
	}
	close(wfd);
	if (state == 0) {
		struct tm tm;
		time_t now = time(NULL);
		gmtime_r(&now, &tm);
		strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
		snprintf(asidename, sizeof asidename, "%s.before-restore-%s", base, ts);
		snprintf(aside, asidesz, "%s/%s", dir, asidename);
		if (renameat(pfd, base, pfd, asidename) != 0) {
			hm_error_errno(err, errno, "move aside", o->to);
			aside[0] = '\0';
			goto fail;
		}
	}
	/* rename over a missing or empty directory is atomic */
	if (rename_checked(pfd, work, base, o->to, dev, ino, err) != 0) {
		if (aside[0] && renameat(pfd, asidename, pfd, base) == 0)
			aside[0] = '\0';
		goto fail;
	}
	if (fsync(pfd) != 0) {
		hm_error_errno(err, errno, "fsync the directory of", o->to);
		goto out;
	}
	rc = 0;
	goto out;
fail:
	remove_by_identity(pfd, dir, dev, ino);
out:
	close(pfd);
	return rc;
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

/* Sanity queries on the restore test's running cluster: per database pg_class, and where
 * the hive schema exists the knowledge rows and a pgvector search. summary gets one line.
 * 0, or -1 with HM_EXIT_VERIFY_FAILED. */
static int sanity_queries(const char *name, char *summary, size_t summarysz, hm_error *err)
{
	char out[8192];
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
		return -1;
	}
	char dbs[4096];
	if (container_psql(
		    name, super, "postgres",
		    "select datname from pg_database where datallowconn and not datistemplate order by 1",
		    dbs, sizeof dbs) != 0) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "restore test: listing databases failed: %s", dbs);
		return -1;
	}
	size_t sl = 0;
	summary[0] = '\0';
	sl += (size_t)snprintf(summary + sl, summarysz - sl, "started;");
	for (char *db = strtok(dbs, "\n"); db; db = strtok(NULL, "\n")) {
		if (container_psql(name, super, db, "select count(*) from pg_class", out, sizeof out) != 0) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED, "restore test: database %s: %s", db, out);
			return -1;
		}
		char kb[64] = "";
		if (container_psql(name, super, db, "select to_regclass('agno.knowledge_base') is not null",
				   out, sizeof out) == 0 &&
		    !strcmp(out, "t")) {
			if (container_psql(name, super, db, "select count(*) from agno.knowledge_base", out,
					   sizeof out) != 0) {
				hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					     "restore test: %s: counting agno.knowledge_base: %s", db, out);
				return -1;
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
				return -1;
			}
			if (sl < summarysz)
				sl += (size_t)snprintf(summary + sl, summarysz - sl,
						       " %s: %s knowledge rows, vector search %s hits;", db,
						       kb, out);
		} else if (sl < summarysz) {
			sl += (size_t)snprintf(summary + sl, summarysz - sl, " %s: ok;", db);
		}
	}
	return 0;
}

int hm_restore_test(const hm_repo *r, const hm_backup_meta *m, hm_crypt_secret *secret, const char *image,
		    char *summary, size_t summarysz, int quiet, hm_error *err)
{
	char dir[4600], name[96], vol[4800], out[8192], bin[128], userspec[64], work[128], tp[4200];
	struct stat st;
	int rc = -1, started = 0, dfd = -1, tmpfd = hm_repo_tmpfd(r);
	const char *prefix = getenv("HIVE_RESTORE_TEST_PREFIX");
	if (tmpfd < 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "restore test: the repository is not locked");
	snprintf(work, sizeof work, "restore-test-%s", m->id);
	snprintf(dir, sizeof dir, "%s/%s", hm_repo_tmp_path(r, tp, sizeof tp), work);
	snprintf(name, sizeof name, "%srestoretest-%.8s", prefix && prefix[0] ? prefix : "hb-", m->uuid);
	hm_error ignored;
	hm_rmtree_at(tmpfd, work, dir, &ignored);
	hm_progress prog;
	hm_progress_init(&prog, stderr, "restore-test extract", m->archive_size, quiet);
	hm_verify_opts vo = {.extract_name = work,
			     .extract_parent_fd = tmpfd,
			     .extract_display = dir,
			     .progress = &prog,
			     .secret = secret};
	hm_verify_report rep;
	int vr = hm_verify_backup(r, m, &vo, &rep, err);
	hm_verify_report_free(&rep);
	if (vr != 0)
		return -1;
	hm_progress_finish(&prog);
	if ((dfd = hm_open_dir_at(tmpfd, work, dir, err)) < 0)
		goto cleanup;
	if (fstatat(dfd, "PG_VERSION", &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED,
			     "restore test: the restored copy has no PG_VERSION file");
		goto cleanup;
	}
	snprintf(userspec, sizeof userspec, "%lu:%lu", (unsigned long)st.st_uid, (unsigned long)st.st_gid);
	/* our own pg_hba (local trust) on the throwaway copy; the backup's is not used. Created
	 * O_EXCL|O_NOFOLLOW in the copy's directory: a member of that name is never written
	 * through. */
	static const char hba_text[] = "local all all trust\n";
	int hfd = openat(dfd, "hm_restore_test_hba.conf",
			 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (hfd < 0 || write(hfd, hba_text, sizeof hba_text - 1) != (ssize_t)(sizeof hba_text - 1) ||
	    fchown(hfd, st.st_uid, st.st_gid) != 0) {
		hm_error_errno(err, errno, "write the restore test's pg_hba into", dir);
		if (hfd >= 0)
			close(hfd);
		goto cleanup;
	}
	close(hfd);
	snprintf(vol, sizeof vol, "%s:/var/lib/postgresql/data/pgdata", dir);
	snprintf(bin, sizeof bin, "/usr/lib/postgresql/%d/bin/postgres", m->pg_version / 10000);
	{
		char *rm_argv[] = {"docker", "rm", "-f", name, NULL};
		run_capture(rm_argv, NULL, 0);
		/* The copy is whatever the repository held, so PostgreSQL runs it as hostile
		 * code: in a throwaway container without network, with that copy as its only
		 * mount, and without any setting that runs a command or loads a library. */
		char *argv[] = {"docker", "run",
				"-d",	  "--name",
				name,	  "--network",
				"none",	  "--user",
				userspec, "--entrypoint",
				bin,	  "-v",
				vol,	  (char *)image,
				"-D",	  "/var/lib/postgresql/data/pgdata",
				"-c",	  "listen_addresses=",
				"-c",	  "unix_socket_directories=/tmp",
				"-c",	  "hba_file=/var/lib/postgresql/data/pgdata/hm_restore_test_hba.conf",
				"-c",	  "archive_mode=off",
				"-c",	  "archive_command=",
				"-c",	  "restore_command=",
				"-c",	  "recovery_end_command=",
				"-c",	  "archive_cleanup_command=",
				"-c",	  "primary_conninfo=",
				"-c",	  "ssl=off",
				"-c",	  "ssl_passphrase_command=",
				"-c",	  "shared_preload_libraries=",
				"-c",	  "session_preload_libraries=",
				"-c",	  "local_preload_libraries=",
				"-c",	  "dynamic_library_path=$libdir",
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
	if (sanity_queries(name, summary, summarysz, err) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (started) {
		char *stop_argv[] = {"docker", "stop", "-t", "30", name, NULL};
		run_capture(stop_argv, NULL, 0);
		char *rm_argv[] = {"docker", "rm", "-f", name, NULL};
		run_capture(rm_argv, NULL, 0);
	}
	if (dfd >= 0)
		close(dfd);
	hm_rmtree_at(tmpfd, work, dir, &ignored);
	return rc;
}
