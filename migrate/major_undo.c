/* Rolling back the cross-major path (migrate/major.h). No archive restore is needed: the
 * old directory was never written after its clean stop, so putting it back is a rename.
 * Order: workers gone, the dump removed (a copy; after a disk full it frees the space the
 * rest needs), unified container down, old directory back in its place (the new cluster, a
 * failed attempt, is moved aside first), then the failed new cluster is removed, and the
 * split stack must come back healthy with the fingerprint taken before the copy. Every
 * step is journaled (rollback_step) and can be run again.
 * After a completed run (journal step "done") the new cluster may hold writes the old major
 * cannot take back: it is never removed, only moved aside to its ".pgN-new" name, and only
 * once the unified container stopped it cleanly. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "../common/pg_control.h"
#include "compose.h"
#include "fingerprint.h"
#include "health.h"
#include "major.h"
#include "major_int.h"
#include "migration.h"

/* The split stack healthy and holding the data it held before (strict, same major). */
static int split_confirm(hm_mig *m, hm_error *err)
{
	hm_pg_params p = hm_mig_split_params(m);
	if (hm_wait_healthy("the split stack", m->stack.api_port, &p, m->health_timeout, err) != 0)
		return -1;
	if (!m->j.fingerprint_file[0] || !hm_major_exists(m->j.fingerprint_file))
		return 0;
	json_object *before = json_object_from_file(m->j.fingerprint_file), *after = NULL;
	if (!before)
		return hm_error_set(err, HM_EXIT_IO, "cannot read the fingerprint \"%s\"",
				    m->j.fingerprint_file);
	int rc = hm_fingerprint_take(&p, &after, err);
	if (rc == 0 && hm_fingerprint_compare(before, after, err) != 0)
		rc = hm_error_prefix(err, "the split stack's data differs from before the migration");
	json_object_put(before);
	json_object_put(after);
	return rc;
}

/* The new cluster in the canonical place was stopped cleanly: pg_control says "shut down"
 * (a crashed one would need its own recovery before anyone can read the kept writes). */
static int new_cluster_shut_down(hm_mig *m, hm_error *err)
{
	char pgdata[PATH_MAX];
	hm_pg_control ctl;
	snprintf(pgdata, sizeof pgdata, "%s/pgdata", m->j.data_dir);
	if (!hm_major_exists(pgdata))
		snprintf(pgdata, sizeof pgdata, "%s", m->j.data_dir);
	if (hm_pg_control_read(pgdata, &ctl, err) != 0)
		return -1;
	if (ctl.state != HM_DB_SHUTDOWNED) {
		hm_error_set(err, HM_EXIT_ROLLBACK_FAILED,
			     "the new cluster in %s is \"%s\", not shut down: it is not moved aside", pgdata,
			     hm_db_state_name(ctl.state));
		return hm_error_hint(err, "start the unified container again and stop it cleanly (docker "
					  "stop), then run rollback again");
	}
	return 0;
}

/* Put the old directory back in the canonical place; keep_new: the new cluster holds
 * writes, so it is moved aside and never removed. */
static int put_back(hm_mig *m, int keep_new, hm_error *err)
{
	hm_journal *j = &m->j;
	if (j->old_data_dir[0] && hm_major_exists(j->old_data_dir)) {
		if (hm_major_exists(j->data_dir)) {
			if (keep_new && hm_major_exists(j->new_data_dir)) {
				hm_error_set(err, HM_EXIT_ROLLBACK_FAILED,
					     "both %s and %s exist: the new cluster is not moved over the "
					     "other",
					     j->data_dir, j->new_data_dir);
				return hm_error_hint(err,
						     "move %s elsewhere (it may hold data), then run "
						     "rollback again",
						     j->new_data_dir);
			}
			if (keep_new && new_cluster_shut_down(m, err) != 0)
				return -1;
			/* the canonical place holds the new cluster: move it aside (a failed
			 * attempt's is removed below) */
			if (hm_major_exists(j->new_data_dir) && hm_rmtree(j->new_data_dir, err) != 0)
				return -1;
			if (rename(j->data_dir, j->new_data_dir) != 0)
				return hm_error_errno(err, errno, "move the new cluster aside", j->data_dir);
		}
		if (rename(j->old_data_dir, j->data_dir) != 0)
			return hm_error_errno(err, errno, "put the old directory back", j->old_data_dir);
		if (hm_fsync_parent(j->data_dir, err) != 0)
			return -1;
		hm_mig_log(m, "the old directory is back in %s", j->data_dir);
	}
	int major = 0;
	if (hm_pg_version_read(m->stack.pgdata, &major, err) != 0)
		return -1;
	if (major != j->old_major) {
		hm_error_set(err, HM_EXIT_ROLLBACK_FAILED,
			     "%s holds PostgreSQL %d, not the old %d: the split stack is not started on it",
			     m->stack.pgdata, major, j->old_major);
		return hm_error_hint(
			err, "see docs/migration.md, \"Across PostgreSQL majors\", rolling back by hand");
	}
	return 0;
}

/* Both rollbacks; discard_confirmed: the caller reported what a completed run's rollback
 * leaves behind and the user accepted it (--discard-new-writes). */
static int major_undo(hm_mig *m, int discard_confirmed, hm_error *err)
{
	hm_journal *j = &m->j;
	char name[200];
	int rc = -1;
	int keep_new = j->step == HM_STEP_DONE; /* the unified container served clients */
	if (j->status == HM_JS_DONE && !discard_confirmed) {
		/* the unified container may hold writes the old major cannot take back */
		hm_error_set(err, HM_EXIT_USAGE,
			     "the cross-major migration of profile %s is complete: its new cluster is not "
			     "undone here",
			     m->profile);
		return hm_error_hint(err, "run hive-migrate rollback (see docs/migration.md, \"Across "
					  "PostgreSQL majors\")");
	}
	if (keep_new)
		j->rb_mode = HM_RBM_SNAPSHOT; /* the pre-migration data comes back, writes stay aside */
	hm_major_worker_name(m, "dump", name, sizeof name);
	hm_major_rm_worker(name);
	hm_major_worker_name(m, "restore", name, sizeof name);
	hm_major_rm_worker(name);
	/* the dump first: after a disk full it is what frees the space the journal and the
	 * old server need (it is a copy of data the old directory still holds) */
	if (j->dump_dir[0] && hm_major_exists(j->dump_dir) && hm_rmtree(j->dump_dir, err) != 0)
		goto fail;
	j->status = HM_JS_ROLLING_BACK;
	if (hm_mig_save(m, err) != 0)
		goto fail;
	if (j->rb_step < HM_RB_UNIFIED_DOWN) {
		if (j->step >= HM_STEP_UNIFIED_STARTING && j->template_file[0] && j->env_file[0] &&
		    hm_major_exists(j->env_file)) {
			hm_mig_log(m, "stopping the unified container %s", j->unified_container);
			if (hm_compose_unified_down(j->template_file, j->unified_project, j->env_file,
						    m->stop_timeout, err) != 0)
				goto fail;
		}
		j->rb_step = HM_RB_UNIFIED_DOWN;
		if (hm_mig_save(m, err) != 0)
			goto fail;
	}
	if (j->rb_step < HM_RB_SWAPPED) {
		if (put_back(m, keep_new, err) != 0)
			goto fail;
		j->rb_step = HM_RB_SWAPPED;
		if (hm_mig_save(m, err) != 0)
			goto fail;
	}
	/* the failed attempt: the new cluster and the dump are copies, safe to remove */
	if (!keep_new && j->new_data_dir[0] && hm_major_exists(j->new_data_dir) &&
	    hm_rmtree(j->new_data_dir, err) != 0)
		goto fail;
	if (j->rb_step < HM_RB_SPLIT_STARTED) {
		hm_mig_log(m, "starting the split stack again");
		if (hm_compose_split_start(&m->stack, err) != 0 || split_confirm(m, err) != 0)
			goto fail;
		j->rb_step = HM_RB_SPLIT_STARTED;
		if (hm_mig_save(m, err) != 0)
			goto fail;
	}
	j->rb_step = HM_RB_DONE;
	j->status = HM_JS_ROLLED_BACK;
	rc = hm_mig_save(m, err);
	if (rc == 0)
		hm_mig_log(m, "rolled back: the split stack runs on its untouched PostgreSQL %d directory",
			   j->old_major);
	if (rc == 0 && keep_new)
		hm_mig_log(m,
			   "the new cluster, with every write made on the unified container, is kept "
			   "(stopped cleanly) in %s",
			   j->new_data_dir);
	return rc;
fail:
	j->status = HM_JS_ROLLBACK_FAILED;
	{
		hm_error e2;
		hm_mig_save(m, &e2);
	}
	err->code = HM_EXIT_ROLLBACK_FAILED;
	return -1;
}

int hm_major_rollback(hm_mig *m, hm_error *err)
{
	return major_undo(m, 0, err);
}

int hm_major_rollback_completed(hm_mig *m, hm_error *err)
{
	return major_undo(m, 1, err);
}
