/* The live rollback: the data directory the unified container wrote to goes back to the split
 * stack unchanged, so that nothing written since the migration is lost. It is safe because
 * the split stack and the unified container run the same PostgreSQL major on the same
 * directory: only the owner (the unified container runs as 1000) and, possibly, the settings
 * files differ, and both are put back from what `up` recorded. Each step is written to the
 * journal (live_step) before the next starts; every step is idempotent, so a run killed
 * anywhere is completed by running `rollback` again. */
#include "rollback_live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "../common/pg_control.h"
#include "../common/progress.h"
#include "compose.h"
#include "fingerprint.h"
#include "fingerprint_snap.h"
#include "health.h"
#include "ownership.h"
#include "rollback_settings.h"

#define UNIFIED_UID 1000
#define UNIFIED_GID 1000

hm_pg_params hm_rb_unified_params(const hm_mig *m)
{
	hm_pg_params p = {"127.0.0.1",	    m->j.pg_port,	  m->stack.db_user,
			  m->stack.db_name, m->stack.db_password, 5};
	return p;
}

int hm_rb_unified_fingerprint(hm_mig *m, int wait_s, json_object **out, unsigned long long *guard, char *why,
			      size_t whysz, hm_error *err)
{
	hm_pg_params p = hm_rb_unified_params(m);
	char state[64] = "";
	hm_error e = {0};
	*out = NULL;
	if (why && whysz)
		why[0] = '\0';
	if (m->j.unified_container[0] &&
	    hm_docker_container_state(m->j.unified_container, state, sizeof state, &e) != 0)
		state[0] = '\0';
	double deadline = hm_progress_now() + (strcmp(state, "running") == 0 ? wait_s : 0);
	for (;;) {
		if (hm_pg_healthy(&p, why, whysz)) {
			if ((!guard || hm_fingerprint_guard(&p, guard, err) == 0) &&
			    hm_fingerprint_take(&p, out, err) == 0)
				return 1;
			return -1;
		}
		if (hm_progress_now() >= deadline)
			break;
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (why && whysz) {
		char reason[256];
		snprintf(reason, sizeof reason, "%s", why);
		snprintf(why, whysz, "container %s is %s%s%s", m->j.unified_container,
			 state[0] ? state : "gone", reason[0] ? "; its database: " : "", reason);
	}
	return 0;
}

/* Log a step and save the journal with the new live step. */
static int step_done(hm_mig *m, hm_live_step s, const char *fault, hm_error *err)
{
	m->j.live_step = s;
	if (hm_mig_save(m, err) != 0)
		return -1;
	hm_fault_point(fault);
	return 0;
}

/* Seconds since *t (hm_progress_now), and *t moved to now: one step's share of a run. */
static double lap(double *t)
{
	double now = hm_progress_now();
	double d = now - *t;
	*t = now;
	return d;
}

/* 1: the unified server's fingerprint, the reference for the end (when it answers). */
static int live_fingerprint(hm_mig *m, hm_error *err)
{
	hm_journal *j = &m->j;
	json_object *fp = NULL;
	char why[512];
	j->unified_fp_next_xid = 0;
	int got = hm_rb_unified_fingerprint(m, m->health_timeout < 30 ? m->health_timeout : 30, &fp,
					    &j->unified_fp_next_xid, why, sizeof why, err);
	if (got < 0)
		return hm_error_prefix(err, "cannot fingerprint the unified server");
	if (got == 1) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/fingerprint-unified-%s.json", m->state_dir, m->profile);
		const char *s = json_object_to_json_string_ext(fp, JSON_C_TO_STRING_PRETTY);
		int rc = hm_write_file_atomic(path, s, strlen(s), 0600, err);
		hm_mig_log(m, "fingerprint of the unified server before its stop: %lld rows",
			   hm_fingerprint_total_rows(fp));
		json_object_put(fp);
		if (rc != 0)
			return -1;
		snprintf(j->unified_fingerprint_file, sizeof j->unified_fingerprint_file, "%s", path);
	} else {
		j->unified_fingerprint_file[0] = '\0';
		hm_mig_log(
			m,
			"the unified server does not answer (%s): no fingerprint to compare with; the data "
			"directory is carried back as it is on disk",
			why);
	}
	return 0;
}

/* 2: the unified container stopped; what pg_control says afterwards. */
static int live_stop(hm_mig *m, hm_rb_live_result *res, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_pg_control pc;
	hm_mig_log(m, "stopping and removing the unified container %s (-t %d)", j->unified_container,
		   m->stop_timeout);
	if (hm_mig_unified_down(m, err) != 0)
		return -1;
	if (hm_pg_control_read(j->pgdata, &pc, err) != 0)
		return hm_error_prefix(err, "the data directory cannot be carried back");
	snprintf(j->unified_stop_state, sizeof j->unified_stop_state, "%s", hm_db_state_name(pc.state));
	if (pc.state == HM_DB_SHUTDOWNED) {
		hm_mig_log(m, "the unified server is shut down cleanly (pg_control: \"shut down\")");
	} else {
		res->recovered = 1;
		hm_mig_log(m,
			   "the data directory was not shut down cleanly (pg_control: \"%s\"): the split "
			   "stack's PostgreSQL will recover it from its WAL when it starts",
			   j->unified_stop_state);
	}
	return 0;
}

/* 4: owners as before the migration; entries created since get the split stack's owner. */
static int live_owners(hm_mig *m, hm_rb_live_result *res, hm_error *err)
{
	hm_journal *j = &m->j;
	struct stat st;
	if (!j->chown_file[0] || lstat(j->chown_file, &st) != 0) {
		hm_mig_log(m, "no ownership record: owners unchanged");
		return 0;
	}
	hm_mig_log(m, "restoring the original file owners in %s", j->data_dir);
	if (hm_owner_undo_live(j->data_dir, j->chown_file, j->pgdata, UNIFIED_UID, UNIFIED_GID,
			       &res->owners_new, err) != 0)
		return -1;
	if (res->owners_new)
		hm_mig_log(m, "gave %ld entries created on the unified container the split stack's owner",
			   res->owners_new);
	return 0;
}

/* 5: the split stack's settings files, without the unified container's changes. */
static int live_settings(hm_mig *m, hm_rb_live_result *res, hm_error *err)
{
	char report[1024];
	if (!m->j.settings_dir[0]) {
		hm_mig_log(m, "settings files: no copies from up (an older migration): left as they are");
		return 0;
	}
	if (hm_settings_restore(m->j.pgdata, m->j.settings_dir, &res->settings_rewritten, report,
				sizeof report, err) != 0)
		return hm_error_prefix(err, "cannot restore the settings files");
	if (res->settings_rewritten)
		hm_mig_log(m, "settings files: %s", report);
	else
		hm_mig_log(m, "settings files: nothing the unified container changed (changes made since "
			      "are kept)");
	return 0;
}

/* 7: healthy, pgvector, and the rows the unified server had. next_xid: the nextXid of the
 * directory's shutdown checkpoint read before the split start (0: unknown). When it is still
 * the guard of the unified fingerprint, the fingerprint is taken under a snapshot opened as
 * soon as PostgreSQL answers, which none of the app's new writes can reach
 * (fingerprint_snap.h); when it is not, the unified server was written to after its
 * fingerprint (live traffic until its stop), which no longer describes the directory: the
 * directory is carried as it is and the comparison is left out, said so (fingerprint_stale). */
static int live_verify(hm_mig *m, unsigned long long next_xid, hm_rb_live_result *res, hm_error *err)
{
	hm_journal *j = &m->j;
	hm_pg_params p = hm_mig_split_params(m);
	json_object *before = NULL, *after = NULL;
	hm_fpsnap *fs = NULL;
	char why[700] = "";
	int rc = -1;
	double t0 = hm_progress_now();
	if (j->unified_fingerprint_file[0] && next_xid && next_xid != j->unified_fp_next_xid) {
		res->fingerprint_stale = 1;
		hm_mig_log(m,
			   "the unified server was written to after its fingerprint (next XID %llu then, "
			   "%llu at its stop): the directory is carried back as the unified server left "
			   "it, not compared with the fingerprint",
			   j->unified_fp_next_xid, next_xid);
	} else if (j->unified_fingerprint_file[0] && next_xid) {
		if (hm_pg_wait_accepting("the split stack", &p, m->health_timeout, err) != 0)
			return -1;
		int o = hm_fpsnap_open(&p, next_xid, &fs, why, sizeof why, err);
		if (o < 0)
			return -1;
		if (o == 0 && hm_fpsnap_start(fs, err) != 0)
			goto cleanup;
		if (o == 1)
			hm_mig_log(m, "%s: the fingerprint runs after the health wait", why);
	}
	hm_mig_log(m, "waiting for the split stack to be healthy (up to %d s)", m->health_timeout);
	if (hm_wait_healthy("the split stack", m->stack.api_port, &p, m->health_timeout, err) != 0)
		goto cleanup;
	double t1 = hm_progress_now();
	res->step_seconds.health = t1 - t0;
	if ((fs ? hm_fpsnap_finish(fs, &after, err) : hm_fingerprint_take(&p, &after, err)) != 0)
		goto cleanup;
	res->step_seconds.verify = hm_progress_now() - t1;
	res->rows = hm_fingerprint_total_rows(after);
	if (res->fingerprint_stale) {
		hm_mig_log(m, "the split stack's PostgreSQL started on the directory and serves %lld rows",
			   res->rows);
		rc = 0;
		goto cleanup;
	}
	if (!j->unified_fingerprint_file[0]) {
		hm_mig_log(m,
			   "recovered: the split stack's PostgreSQL %s and serves %lld rows (no fingerprint "
			   "of the unified server could be taken to compare)",
			   strcmp(j->unified_stop_state, "shut down")
				   ? "replayed the WAL of the crashed directory"
				   : "started on the directory",
			   res->rows);
		rc = 0;
		goto cleanup;
	}
	if (!(before = json_object_from_file(j->unified_fingerprint_file))) {
		hm_error_set(err, HM_EXIT_IO, "cannot read the fingerprint \"%s\"",
			     j->unified_fingerprint_file);
		goto cleanup;
	}
	if (hm_fingerprint_compare(before, after, err) != 0) {
		hm_error_prefix(err,
				"the split stack's data differs from the unified server's before its stop");
		goto cleanup;
	}
	res->fingerprint_compared = 1;
	hm_mig_log(m, "every table matches the unified server's fingerprint (%lld rows)", res->rows);
	rc = 0;
cleanup:
	hm_fpsnap_free(fs);
	json_object_put(before);
	json_object_put(after);
	return rc;
}

int hm_rb_live(hm_mig *m, const hm_rb_live_opts *o, hm_rb_live_result *res, hm_error *err)
{
	hm_journal *j = &m->j;
	double t_stop = 0;
	memset(res, 0, sizeof *res);
	if (j->live_step == HM_LIVE_DONE)
		j->live_step = HM_LIVE_NONE;
	j->rb_mode = HM_RBM_LIVE;
	j->status = HM_JS_ROLLING_BACK;
	if (j->live_step != HM_LIVE_NONE)
		hm_mig_log(m, "resuming the live rollback after step \"%s\"",
			   hm_live_step_name(j->live_step));
	else
		hm_mig_log(m, "live rollback: carrying the unified container's data back to the split stack");
	if (hm_mig_save(m, err) != 0)
		return -1;
	res->recovered = j->unified_stop_state[0] && strcmp(j->unified_stop_state, "shut down") != 0;

	double ts = hm_progress_now();
	if (j->live_step < HM_LIVE_FINGERPRINTED) {
		if (live_fingerprint(m, err) != 0 ||
		    step_done(m, HM_LIVE_FINGERPRINTED, "rollback:live:after-fingerprint", err) != 0)
			goto fail;
		res->step_seconds.fingerprint = lap(&ts);
	}
	if (j->live_step < HM_LIVE_UNIFIED_DOWN) {
		t_stop = ts = hm_progress_now();
		if (live_stop(m, res, err) != 0 ||
		    step_done(m, HM_LIVE_UNIFIED_DOWN, "rollback:live:after-unified-down", err) != 0)
			goto fail;
		res->step_seconds.stop = lap(&ts);
	} else if (hm_mig_unified_down(m, err) != 0) { /* resumed: nobody may have started it meanwhile */
		goto fail;
	}
	ts = hm_progress_now();
	if (j->live_step < HM_LIVE_SAFETY_SNAPSHOTTED) {
		if (o->no_safety_snapshot)
			hm_mig_log(m, "no safety snapshot (--no-safety-snapshot)");
		else if (hm_rb_safety_snapshot(m, o->archive_dir, err) != 0)
			goto fail;
		if (step_done(m, HM_LIVE_SAFETY_SNAPSHOTTED, "rollback:live:after-safety-snapshot", err) != 0)
			goto fail;
		res->step_seconds.safety_snapshot = lap(&ts);
	}
	if (j->live_step < HM_LIVE_OWNERS_RESTORED) {
		if (live_owners(m, res, err) != 0 ||
		    step_done(m, HM_LIVE_OWNERS_RESTORED, "rollback:live:after-owners", err) != 0)
			goto fail;
		res->step_seconds.owners = lap(&ts);
	}
	if (j->live_step < HM_LIVE_SETTINGS_RESTORED) {
		if (live_settings(m, res, err) != 0 ||
		    step_done(m, HM_LIVE_SETTINGS_RESTORED, "rollback:live:after-settings", err) != 0)
			goto fail;
		res->step_seconds.settings = lap(&ts);
	}
	unsigned long long next_xid = 0;
	if (j->live_step < HM_LIVE_SPLIT_STARTED) {
		hm_pg_control pc;
		hm_error pe = {0};
		if (hm_pg_control_read(j->pgdata, &pc, &pe) == 0 && pc.state == HM_DB_SHUTDOWNED)
			next_xid = pc.next_full_xid;
		hm_mig_log(m, "starting the split stack on %s", j->data_dir);
		if (hm_compose_split_start(&m->stack, err) != 0 ||
		    step_done(m, HM_LIVE_SPLIT_STARTED, "rollback:live:after-split-start", err) != 0)
			goto fail;
		res->step_seconds.start = lap(&ts);
	}
	if (j->live_step < HM_LIVE_VERIFIED) {
		if (live_verify(m, next_xid, res, err) != 0)
			goto fail;
		if (t_stop > 0)
			res->downtime = hm_progress_now() - t_stop;
		if (step_done(m, HM_LIVE_VERIFIED, "rollback:live:after-verify", err) != 0)
			goto fail;
	} else {
		/* verified by the interrupted run (the split stack may take writes since) */
		res->fingerprint_compared = j->unified_fingerprint_file[0] != '\0';
	}
	j->live_step = HM_LIVE_DONE;
	j->rb_step = HM_RB_DONE;
	j->status = HM_JS_ROLLED_BACK;
	j->failure[0] = '\0';
	if (hm_mig_save(m, err) != 0)
		return -1;
	hm_mig_log(m, "rolled back with the live data: the split stack is healthy on %s%s", j->data_dir,
		   j->safety_done ? "" : " (no safety snapshot)");
	if (j->safety_done)
		hm_mig_log(m, "safety snapshot of the directory as the unified container left it: %s",
			   j->safety_archive);
	return 0;
fail : {
	hm_error save_err = *err, e2;
	j->status = HM_JS_ROLLBACK_FAILED;
	snprintf(j->failure, sizeof j->failure, "live rollback: %s", save_err.message);
	hm_journal_save(m->journal_path, j, &e2);
	*err = save_err;
}
	err->code = HM_EXIT_ROLLBACK_FAILED;
	hm_error_prefix(err, "live rollback failed after step \"%s\"", hm_live_step_name(j->live_step));
	if (!err->hint[0])
		hm_error_hint(err,
			      "fix the cause and run hive-migrate rollback again (it continues from there)%s",
			      j->safety_done ? "; the safety snapshot is in the journal" : "");
	return -1;
}
