/* hive-migrate up, the step runner of a migration within one PostgreSQL major: stop the
 * split stack, snapshot and verify its data, change the owners, start the unified container
 * and confirm it holds the very same data (steps 3-8 of docs/migration.md). */
#include <dirent.h>
#include <fcntl.h>
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
#include "../common/progress.h"
#include "../common/version.h"
#include "compose.h"
#include "fingerprint.h"
#include "fingerprint_snap.h"
#include "health.h"
#include "migration.h"
#include "ownership.h"
#include "rollback_settings.h"
#include "up_int.h"
#include "up_snapshot_repo.h"
#include "up_precopy.h"

/* Connection parameters of the unified container's database. */
static hm_pg_params unified_params(const hm_mig *m)
{
	hm_pg_params p = {"127.0.0.1",	    m->j.pg_port,	  m->stack.db_user,
			  m->stack.db_name, m->stack.db_password, 5};
	return p;
}

/* Snapshot metadata (no secrets): who, what, when, and the pg_control facts. */
static char *snapshot_metadata(const hm_mig *m, const hm_pg_control *pc)
{
	json_object *o = json_object_new_object(), *src = json_object_new_object(),
		    *ctl = json_object_new_object();
	char sysid[32], lsn[32];
	json_object_object_add(o, "backup_id", json_object_new_string(m->j.backup_id));
	json_object_object_add(o, "kind", json_object_new_string("migration-snapshot"));
	json_object_object_add(o, "created_at", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(o, "tool", json_object_new_string("hive-migrate"));
	json_object_object_add(o, "tool_version", json_object_new_string(HM_VERSION));
	json_object_object_add(src, "stack_dir", json_object_new_string(m->stack_dir));
	json_object_object_add(src, "project", json_object_new_string(m->stack.project));
	json_object_object_add(src, "project_dir", json_object_new_string(m->stack.dir));
	json_object_object_add(src, "profile", json_object_new_string(m->profile));
	json_object_object_add(src, "service", json_object_new_string(m->stack.pg_service));
	json_object_object_add(src, "image", json_object_new_string(m->stack.pg_image));
	json_object_object_add(src, "data_dir", json_object_new_string(m->j.data_dir));
	json_object_object_add(src, "pgdata", json_object_new_string(m->stack.pgdata_rel));
	json_object_object_add(o, "source", src);
	snprintf(sysid, sizeof sysid, "%llu", (unsigned long long)pc->system_identifier);
	snprintf(lsn, sizeof lsn, "%X/%X", (unsigned)(pc->checkpoint_lsn >> 32),
		 (unsigned)pc->checkpoint_lsn);
	json_object_object_add(ctl, "major", json_object_new_int(pc->major));
	json_object_object_add(ctl, "system_identifier", json_object_new_string(sysid));
	json_object_object_add(ctl, "pg_control_version", json_object_new_int64(pc->pg_control_version));
	json_object_object_add(ctl, "catalog_version_no", json_object_new_int64(pc->catalog_version_no));
	json_object_object_add(ctl, "state", json_object_new_string(hm_db_state_name(pc->state)));
	json_object_object_add(ctl, "checkpoint_lsn", json_object_new_string(lsn));
	json_object_object_add(ctl, "data_checksum_version",
			       json_object_new_int64(pc->data_checksum_version));
	json_object_object_add(o, "pg_control", ctl);
	char *s = strdup(
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

/* Stop the split stack and make sure its cluster is cleanly shut down: a cluster left "in
 * production" (killed) is started and stopped properly once; never archived silently. */
static int stop_split(hm_mig *m, hm_pg_control *pc, hm_error *err)
{
	for (int attempt = 0;; attempt++) {
		hm_mig_log(m, "stopping the split stack (docker compose stop -t %d)", m->stop_timeout);
		if (hm_compose_split_stop(&m->stack, m->stop_timeout, err) != 0)
			return -1;
		if (hm_pg_control_read(m->stack.pgdata, pc, err) != 0)
			return -1;
		if (pc->state == HM_DB_SHUTDOWNED)
			return 0;
		if (attempt > 0 || pc->state != HM_DB_IN_PRODUCTION) {
			hm_error_set(
				err, HM_EXIT_IO,
				"the split cluster in \"%s\" is \"%s\" after stopping, not \"shut down\"",
				m->stack.pgdata, hm_db_state_name(pc->state));
			return hm_error_hint(err, "start the split stack, let it recover, and stop it with "
						  "docker compose stop -t 30");
		}
		hm_mig_log(m,
			   "the cluster was not shut down cleanly (\"%s\"): starting it to recover, then "
			   "stopping "
			   "it again",
			   hm_db_state_name(pc->state));
		hm_pg_params p = hm_mig_split_params(m);
		if (hm_compose_split_start(&m->stack, err) != 0 ||
		    hm_wait_healthy("the split database", 0, &p, m->health_timeout, err) != 0)
			return -1;
	}
}

/* How often the split database is started again to fingerprint its shut-down data when a
 * client other than the API keeps writing to it. */
#define REFINGERPRINT_ATTEMPTS 3

/* After the stop (pc: its pg_control, "shut down"): make sure the fingerprint of step 2
 * describes the data as it was shut down. It does when the guard read before it is still the
 * next XID of the shutdown checkpoint (fingerprint.h); else the app wrote after step 2, and the
 * fingerprint is taken again from the shut-down data (up_fingerprint.c), which leaves the
 * cluster running, so it is stopped again and checked again. */
static int fingerprint_current(hm_mig *m, hm_pg_control *pc, hm_up_times *t, hm_error *err)
{
	hm_journal *j = &m->j;
	for (int attempt = 0;; attempt++) {
		if (j->fp_next_xid && pc->next_full_xid == j->fp_next_xid) {
			if (attempt == 0)
				hm_mig_log(m,
					   "nothing was written after the fingerprint (next XID %llu then "
					   "and at "
					   "the shutdown)",
					   j->fp_next_xid);
			return 0;
		}
		if (attempt == REFINGERPRINT_ATTEMPTS) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				     "the split database was written to each time it ran to be "
				     "fingerprinted (%d times; next XID now %llu) although its API was "
				     "stopped: a client outside the stack writes to it",
				     REFINGERPRINT_ATTEMPTS, (unsigned long long)pc->next_full_xid);
			return hm_error_hint(err, "stop the other clients of the database (workers, cron "
						  "jobs, psql sessions), then run hive-migrate up again");
		}
		if (j->fp_next_xid)
			hm_mig_log(m,
				   "the split stack was written to after the fingerprint (next XID %llu "
				   "then, %llu at the shutdown): taking it again from the stopped data",
				   j->fp_next_xid, (unsigned long long)pc->next_full_xid);
		else
			hm_mig_log(m, "the fingerprint has no guard (a transaction was open when it "
				      "began): taking it again from the stopped data");
		double t0 = hm_progress_now();
		if (hm_up_refingerprint(m, pc->next_full_xid, err) < 0 || stop_split(m, pc, err) != 0)
			return -1;
		t->refingerprint += hm_progress_now() - t0;
		hm_fault_point("after:refingerprint");
	}
}

/* Step 4: the snapshot (reuses a finished one left by a killed run if it verifies). */
static int snapshot(hm_mig *m, const hm_up_opts *o, const hm_pg_control *pc, hm_archive_stats *st,
		    hm_up_times *t, hm_error *err)
{
	hm_journal *j = &m->j;
	char dir[PATH_MAX];
	if (j->snapshot_repo[0]) /* --archive-dir s3://... (up_snapshot_repo.c) */
		return hm_upsnap_take(m, st, t, err);
	if (o->archive_dir)
		snprintf(dir, sizeof dir, "%s", o->archive_dir);
	else if (hm_path_join(dir, sizeof dir, m->state_dir, "archives", err) != 0)
		return -1;
	if (!j->backup_id[0]) {
		uuid_t u;
		uuid_generate(u);
		uuid_unparse_lower(u, j->backup_id);
		if (hm_mkdir_p(dir, 0700, err) != 0)
			return -1;
		char name[64];
		snprintf(name, sizeof name, "%s.tar.zst", j->backup_id);
		if (hm_path_join(j->archive, sizeof j->archive, dir, name, err) != 0 ||
		    hm_mig_save(m, err) != 0)
			return -1;
	}
	if (hm_up_precopy_pending(j)) { /* only the delta now (up_precopy.h) */
		char *dmeta = snapshot_metadata(m, pc);
		int prc = dmeta ? hm_up_precopy_delta(m, dmeta, st, t, err)
				: hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		free(dmeta);
		if (prc <= 0)
			return prc;
	}
	if (access(j->archive, F_OK) == 0) {
		hm_mig_log(m, "verifying the snapshot left by the interrupted run: %s", j->archive);
		if (hm_archive_verify(j->archive, NULL, st, err) == 0) {
			snprintf(j->manifest_sha256, sizeof j->manifest_sha256, "%s", st->manifest_sha256);
			return 0;
		}
		hm_mig_log(m, "it does not verify (%s): taking it again", err->message);
		unlink(j->archive);
	}
	char *meta = snapshot_metadata(m, pc);
	if (!meta)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_progress pr;
	hm_archive_opts ao = {.metadata_json = meta, .zstd_level = 1, .progress = &pr};
	hm_mig_log(m, "snapshot of %s into %s", j->data_dir, j->archive);
	hm_progress_init(&pr, stderr, "snapshot", hm_tree_bytes(AT_FDCWD, j->data_dir), m->quiet);
	int rc = hm_archive_dir_create(j->data_dir, j->archive, &ao, st, err);
	free(meta);
	if (rc != 0)
		return -1;
	hm_progress_finish(&pr);
	t->snapshot = st->seconds;
	hm_fault_point("during:snapshot-verify");
	hm_progress_init(&pr, stderr, "verify", st->bytes, m->quiet);
	hm_archive_stats vst;
	if (hm_archive_verify(j->archive, &pr, &vst, err) != 0)
		return hm_error_prefix(err, "the snapshot just written does not verify");
	hm_progress_finish(&pr);
	t->verify = vst.seconds;
	snprintf(j->manifest_sha256, sizeof j->manifest_sha256, "%s", st->manifest_sha256);
	return 0;
}

/* Open the start snapshot of the unified server (fingerprint_snap.h) as soon as it accepts
 * connections: 0 opened (*fs), 1 not usable (logged: the caller falls back), -1 err. */
static int open_start_snapshot(hm_mig *m, const hm_pg_params *p, const hm_pg_control *shut, hm_fpsnap **fs,
			       hm_up_times *t, double t0, hm_error *err)
{
	char why[700] = "";
	hm_error e = {0};
	if (!shut) {
		hm_mig_log(m, "the data directory was not \"shut down\" before the start: the "
			      "fingerprint waits for health and runs after it");
		return 1;
	}
	if (hm_pg_wait_accepting("the unified container", p, m->health_timeout, err) != 0)
		return -1;
	t->pg_ready = hm_progress_now() - t0;
	/* test hooks: a test writes to the new server here (must be detected) or after the
	 * snapshot is open (must stay invisible to it) */
	if (hm_major_fail_point("before:start-snapshot", err) != 0)
		return -1;
	int rc = hm_fpsnap_open(p, shut->next_full_xid, fs, why, sizeof why, &e);
	if (rc == 0 && hm_major_fail_point("after:start-snapshot", err) != 0) {
		hm_fpsnap_free(*fs);
		*fs = NULL;
		return -1;
	}
	if (rc == 0 && hm_fpsnap_start(*fs, &e) == 0) {
		int tables, pieces;
		hm_fault_point("during:start-fingerprint");
		hm_fpsnap_size(*fs, &tables, &pieces);
		hm_mig_log(m,
			   "fingerprint under snapshot %s (xmax = next XID %llu of the shutdown "
			   "checkpoint: no write of the new server is visible): %d tables in %d pieces, "
			   "2 workers, during the health wait",
			   hm_fpsnap_snapshot(*fs), (unsigned long long)shut->next_full_xid, tables, pieces);
		return 0;
	}
	if (rc == 0) {
		hm_fpsnap_free(*fs);
		*fs = NULL;
	}
	hm_mig_log(m, "falling back to the fingerprint after the health wait: %s", rc == 1 ? why : e.message);
	return 1;
}

/* Is the unified container up, healthy, and holding the very same data? shut: pg_control
 * of the data directory read just before the start ("shut down"), NULL if it was not. The
 * fingerprint runs under the start snapshot concurrently with the health wait when that
 * snapshot provably predates the new server's writes, else after the health wait. */
static int confirm_unified(hm_mig *m, const hm_pg_control *shut, hm_up_times *t, hm_error *err)
{
	double t0 = hm_progress_now(), tf;
	hm_pg_params p = unified_params(m);
	json_object *before = NULL, *after = NULL;
	hm_fpsnap *fs = NULL;
	int rc = -1;
	int snap = open_start_snapshot(m, &p, shut, &fs, t, t0, err);
	if (snap < 0)
		goto cleanup;
	hm_mig_log(m, "waiting for the unified container to be healthy (up to %d s)", m->health_timeout);
	/* one deadline for the whole wait: the time until PostgreSQL answered counts */
	int left = m->health_timeout - (int)(hm_progress_now() - t0);
	if (hm_wait_healthy("the unified container", m->j.api_port, &p, left > 1 ? left : 1, err) != 0)
		goto cleanup;
	t->health = hm_progress_now() - t0;
	/* the app answers from now on: the end of the downtime, even if the fingerprint (under
	 * a snapshot that none of the app's writes can reach) is still running */
	m->j.healthy_at = hm_wall_now();
	if (hm_major_fail_point("after:unified-health", err) != 0) /* test hook */
		goto cleanup;
	if (fs) {
		t->fp_concurrent = 1;
		if (hm_fpsnap_finish(fs, &after, err) != 0)
			goto cleanup;
		t->fingerprint = hm_fpsnap_seconds(fs);
	} else {
		tf = hm_progress_now();
		if (hm_fingerprint_take(&p, &after, err) != 0)
			goto cleanup;
		t->fingerprint = hm_progress_now() - tf;
	}
	hm_mig_log(m, "comparing the data with the fingerprint taken before the move");
	if (!(before = json_object_from_file(m->j.fingerprint_file))) {
		hm_error_set(err, HM_EXIT_IO, "cannot read the fingerprint \"%s\"", m->j.fingerprint_file);
		goto cleanup;
	}
	if (hm_fingerprint_compare(before, after, err) == 0)
		rc = 0;
cleanup:
	hm_fpsnap_free(fs);
	json_object_put(before);
	json_object_put(after);
	return rc;
}

/* Everything from the stop of the split stack on (steps 3-8), resumable from j->step. */
int hm_up_forward(hm_mig *m, const hm_up_opts *o, hm_archive_stats *ast, hm_up_times *t, hm_error *err)
{
	double t0;
	hm_journal *j = &m->j;
	hm_pg_control pc;
	memset(&pc, 0, sizeof pc);

	if (j->step < HM_STEP_STOPPED) {
		j->step = HM_STEP_STOPPING;
		if (!j->stop_started_at)
			j->stop_started_at = hm_wall_now();
		if (hm_mig_save(m, err) != 0 || hm_major_fail_point("before:stop", err) != 0) /* test hook */
			return -1;
		t0 = hm_progress_now();
		if (stop_split(m, &pc, err) != 0)
			return -1;
		t->stop = hm_progress_now() - t0;
		j->stopped_at = hm_wall_now();
		j->step = HM_STEP_STOPPED;
		if (hm_mig_save(m, err) != 0)
			return -1;
		hm_fault_point("after:stop");
	} else if (j->step < HM_STEP_SNAPSHOTTED && hm_pg_control_read(m->stack.pgdata, &pc, err) != 0) {
		return -1;
	}

	if (j->step < HM_STEP_SNAPSHOTTED) {
		if (pc.state != HM_DB_SHUTDOWNED) /* resumed: make sure nobody started it meanwhile */
			if (stop_split(m, &pc, err) != 0)
				return -1;
		if (fingerprint_current(m, &pc, t, err) != 0)
			return -1;
		if (snapshot(m, o, &pc, ast, t, err) != 0)
			return -1;
		j->step = HM_STEP_SNAPSHOTTED;
		if (hm_mig_save(m, err) != 0)
			return -1;
		hm_fault_point("after:snapshot");
	}

	if (j->step < HM_STEP_CHOWNED) {
		if (j->step < HM_STEP_CHOWNING) {
			long n = 0;
			snprintf(j->chown_file, sizeof j->chown_file, "%s/owners-%s.txt", m->state_dir,
				 m->profile);
			if (hm_owner_plan(j->data_dir, HM_UP_UNIFIED_UID, HM_UP_UNIFIED_GID, j->chown_file,
					  &n, err) != 0)
				return -1;
			j->step = HM_STEP_CHOWNING;
			if (hm_mig_save(m, err) != 0)
				return -1;
			hm_mig_log(m, "changing the owner of %ld entries to %d:%d (undo record %s)", n,
				   HM_UP_UNIFIED_UID, HM_UP_UNIFIED_GID, j->chown_file);
		}
		hm_fault_point("during:chown");
		t0 = hm_progress_now();
		if (hm_owner_apply(j->data_dir, j->chown_file, HM_UP_UNIFIED_UID, HM_UP_UNIFIED_GID, err) !=
		    0)
			return -1;
		t->chown = hm_progress_now() - t0;
		j->step = HM_STEP_CHOWNED;
		if (hm_mig_save(m, err) != 0)
			return -1;
		hm_fault_point("after:chown");
	}

	if (j->step < HM_STEP_VERIFIED) {
		/* the next XID of the shutdown checkpoint, read before anything can start on it */
		hm_pg_control shut;
		hm_error pe = {0};
		int was_shut =
			hm_pg_control_read(j->pgdata, &shut, &pe) == 0 && shut.state == HM_DB_SHUTDOWNED;
		if (j->step < HM_STEP_UNIFIED_STARTING) {
			/* what the rollback checks before it may delete this directory */
			j->shut_next_xid = was_shut ? shut.next_full_xid : 0;
			snprintf(j->env_file, sizeof j->env_file, "%s/unified-%s.env", m->state_dir,
				 m->profile);
			if (hm_mig_write_env(m, j->env_file, o->backup_password, err) != 0)
				return -1;
			/* the split stack's settings files as they are, for a live rollback */
			snprintf(j->settings_dir, sizeof j->settings_dir, "%s/settings-%s", m->state_dir,
				 m->profile);
			if (hm_settings_save_stage(j->pgdata, j->settings_dir, "before", err) != 0)
				return -1;
			j->step = HM_STEP_UNIFIED_STARTING;
			if (hm_mig_save(m, err) != 0)
				return -1;
		}
		hm_mig_log(m, "starting the unified container %s (%s)", j->unified_container, j->image);
		t0 = hm_progress_now();
		if (hm_compose_unified_up(j->template_file, j->unified_project, j->env_file, err) != 0)
			return -1;
		t->start = hm_progress_now() - t0;
		hm_fault_point("after:unified-start");
		if (confirm_unified(m, was_shut ? &shut : NULL, t, err) != 0)
			return -1;
		j->verified_at = hm_wall_now();
		/* and as the unified container left them at its start (live rollback: issue 11) */
		if (j->settings_dir[0] &&
		    hm_settings_save_stage(j->pgdata, j->settings_dir, "after", err) != 0)
			return -1;
		j->step = HM_STEP_VERIFIED;
		if (hm_mig_save(m, err) != 0)
			return -1;
		hm_fault_point("after:verify");
	}
	hm_up_precopy_merge(m, t); /* off the downtime: the unified container serves already */
	j->step = HM_STEP_DONE;
	j->status = HM_JS_DONE;
	j->failure[0] = '\0';
	return hm_mig_save(m, err);
}
