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
 * has no network at all and is reached with docker exec over its unix socket.
 *
 * This file runs the steps and holds the cut-over and the start of the unified container;
 * the dump and snapshot of the old cluster are in major_dump.c, the restore into the new one
 * in major_restore.c. */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "../common/process.h"
#include "../common/progress.h"
#include "compose.h"
#include "fingerprint.h"
#include "health.h"
#include "major.h"
#include "major_int.h"
#include "migration.h"
#include "preflight.h"

#define NEW_UID 1000
#define NEW_GID 1000

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
int hm_major_tool_failed(hm_error *err, const char *where)
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
void hm_major_worker_cause(const char *name, hm_error *err)
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
int hm_major_dbname_conninfo(const char *db, char *out, size_t outsz)
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

/* A fresh, empty directory owned by the worker's uid (removing what an earlier attempt left). */
int hm_major_fresh_dir(const char *path, hm_error *err)
{
	if (hm_major_exists(path) && hm_rmtree(path, err) != 0)
		return -1;
	if (mkdir(path, 0700) != 0)
		return hm_error_errno(err, errno, "create the directory", path);
	if (chown(path, NEW_UID, NEW_GID) != 0)
		return hm_error_errno(err, errno, "change the owner of", path);
	return hm_fsync_parent(path, err);
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
static int start_unified(hm_mig *m, const char *backup_password, hm_major_times *t, hm_error *err)
{
	hm_journal *j = &m->j;
	json_object *before = NULL, *after = NULL;
	int rc = -1;
	snprintf(j->env_file, sizeof j->env_file, "%s/unified-%s.env", m->state_dir, m->profile);
	if (hm_mig_write_env(m, j->env_file, backup_password, err) != 0)
		return -1;
	if (mark(m, HM_MS_CUT_OVER, HM_STEP_UNIFIED_STARTING, err) != 0)
		return -1;
	double t0 = hm_progress_now();
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
	t->start = hm_progress_now() - t0;
	t0 = hm_progress_now();
	hm_mig_log(m, "waiting for the unified container to be healthy (up to %d s)", m->health_timeout);
	if (hm_wait_healthy("the unified container", j->api_port, &p, m->health_timeout, err) != 0)
		return -1;
	t->health = hm_progress_now() - t0;
	t0 = hm_progress_now();
	hm_mig_log(m, "comparing the data with the fingerprint taken before the copy");
	if (!(before = json_object_from_file(j->fingerprint_file)))
		return hm_error_set(err, HM_EXIT_IO, "cannot read the fingerprint \"%s\"",
				    j->fingerprint_file);
	if (hm_fingerprint_take(&p, &after, err) == 0 &&
	    hm_fingerprint_compare_ex(before, after, HM_FP_CROSS_MAJOR, err) == 0)
		rc = 0;
	json_object_put(before);
	json_object_put(after);
	t->verify = hm_progress_now() - t0;
	if (rc == 0)
		rc = hm_major_fail_point("major:after:verify", err);
	return rc;
}

int hm_major_forward(hm_mig *m, const char *archive_dir, const char *backup_password, int jobs,
		     const char *locale_map, hm_major_times *t, hm_error *err)
{
	double t0;
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
			t0 = hm_progress_now();
			if (hm_mig_save(m, err) != 0 || stop_api(m, err) != 0)
				return -1;
			t->api_stop = hm_progress_now() - t0;
			j->stopped_at = hm_wall_now();
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
		t0 = hm_progress_now();
		if (fingerprint_now(m, err) != 0)
			return -1;
		t->fingerprint = hm_progress_now() - t0;
		t0 = hm_progress_now();
		if (hm_major_dump(m, jobs, locale_map, err) != 0)
			return -1;
		t->dump = hm_progress_now() - t0;
		if (mark(m, HM_MS_DUMPED, HM_STEP_STOPPING, err) != 0)
			return -1;
		hm_fault_point("major:after:dump");
		if (hm_major_fail_point("major:after:dump", err) != 0)
			return -1;
		ms = HM_MS_DUMPED;
	}
	if (ms < HM_MS_OLD_STOPPED) {
		t0 = hm_progress_now();
		if (hm_major_stop_old(m, err) != 0 || mark(m, HM_MS_OLD_STOPPED, HM_STEP_STOPPED, err) != 0)
			return -1;
		t->old_stop = hm_progress_now() - t0;
		hm_fault_point("major:after:old-stop");
		if (hm_major_fail_point("major:after:old-stop", err) != 0)
			return -1;
		ms = HM_MS_OLD_STOPPED;
	}
	if (ms < HM_MS_SNAPSHOTTED) {
		t0 = hm_progress_now();
		if (hm_major_snapshot(m, archive_dir, err) != 0 ||
		    mark(m, HM_MS_SNAPSHOTTED, HM_STEP_SNAPSHOTTED, err) != 0)
			return -1;
		t->snapshot = hm_progress_now() - t0;
		hm_fault_point("major:after:snapshot");
		if (hm_major_fail_point("major:after:snapshot", err) != 0)
			return -1;
		ms = HM_MS_SNAPSHOTTED;
	}
	if (ms < HM_MS_RESTORED) {
		t0 = hm_progress_now();
		if (hm_major_restore(m, jobs, &t->analyze, err) != 0 ||
		    mark(m, HM_MS_RESTORED, HM_STEP_SNAPSHOTTED, err) != 0)
			return -1;
		t->restore = hm_progress_now() - t0 - t->analyze;
		hm_fault_point("major:after:restore");
		if (hm_major_fail_point("major:after:restore", err) != 0)
			return -1;
		ms = HM_MS_RESTORED;
	}
	if (ms < HM_MS_CUT_OVER) {
		t0 = hm_progress_now();
		if (cut_over(m, err) != 0)
			return -1;
		t->cutover = hm_progress_now() - t0;
		hm_fault_point("major:after:cutover");
		if (hm_major_fail_point("major:after:cutover", err) != 0)
			return -1;
		ms = HM_MS_CUT_OVER;
	}
	if (ms < HM_MS_VERIFIED) {
		if (start_unified(m, backup_password, t, err) != 0)
			return -1;
		j->healthy_at = hm_wall_now();
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
