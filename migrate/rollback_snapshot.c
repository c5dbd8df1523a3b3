/* The snapshot rollback with what issue 11 adds around it: say what will be left out, ask,
 * and keep a verified copy of the live directory before it is displaced. */
#include "rollback_snapshot.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/archive_dir.h"
#include "rollback_live.h"
#include "rollback_report.h"
#include "up_snapshot_repo.h"
#include "up_precopy.h"

int hm_rb_report_left_out(hm_mig *m, const char *verb, json_object **left_out, hm_error *err)
{
	json_object *before = NULL, *now = NULL, *diff = NULL;
	char why[512];
	int rc = 1;
	if (left_out)
		*left_out = NULL;
	int got = hm_rb_unified_fingerprint(m, 10, &now, NULL, why, sizeof why, err);
	if (got < 0)
		return -1;
	if (got == 0 || !m->j.fingerprint_file[0] ||
	    !(before = json_object_from_file(m->j.fingerprint_file))) {
		fprintf(stderr,
			"hive-migrate: [%s] %s restores the data as it was before the migration; which "
			"tables "
			"changed since cannot be told (%s): every write made on the unified container since "
			"is "
			"left out\n",
			m->profile, verb, got == 0 ? why : "no fingerprint from before the migration");
		goto cleanup;
	}
	if (!(diff = hm_rb_fingerprint_diff(before, now))) {
		rc = hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if (json_object_array_length(diff) == 0) {
		fprintf(stderr,
			"hive-migrate: [%s] %s: every table holds what it held before the migration: no "
			"write "
			"is left out\n",
			m->profile, verb);
		rc = 0;
	} else {
		fprintf(stderr,
			"hive-migrate: [%s] %s restores the data as it was before the migration; these "
			"tables "
			"changed since and their writes are left out (the unified container's directory is "
			"kept aside):\n",
			m->profile, verb);
		hm_rb_diff_print(diff, stderr);
	}
	if (left_out) {
		*left_out = diff;
		diff = NULL;
	}
cleanup:
	json_object_put(before);
	json_object_put(now);
	json_object_put(diff);
	return rc;
}

int hm_rb_confirm(const char *question, int yes, hm_error *err)
{
	char line[16] = "";
	if (yes)
		return 0;
	if (!isatty(0) || !isatty(2)) {
		hm_error_set(err, HM_EXIT_NEEDS_CONFIRMATION, "%s needs confirmation; nothing was changed",
			     question);
		return hm_error_hint(err, "run it on a terminal, or pass --yes; plain hive-migrate rollback "
					  "keeps the writes");
	}
	fprintf(stderr, "%s: continue? [y/N] ", question);
	if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y'))
		return hm_error_set(err, HM_EXIT_USAGE, "cancelled; nothing was changed");
	return 0;
}

int hm_rb_to_snapshot(hm_mig *m, const hm_rb_snapshot_opts *o, hm_error *err)
{
	hm_journal *j = &m->j;
	const char *archive = o->archive ? o->archive : j->archive;
	if (!o->no_safety_snapshot && !j->safety_done && j->rb_step < HM_RB_SWAPPED) {
		hm_archive_stats st;
		/* refused before anything changes, as the plain rollback does */
		if (j->rb_step < HM_RB_EXTRACTED) {
			if (!o->archive && hm_up_precopy_materialize(m, err) != 0) {
				if (err->code != HM_EXIT_VERIFY_FAILED && err->code != HM_EXIT_INPUT)
					err->code = HM_EXIT_VERIFY_FAILED;
				return hm_error_prefix(
					err, "the snapshot cannot be restored; nothing was changed");
			}
			hm_mig_log(m, "verifying the snapshot \"%s\" before anything changes", archive);
			if ((hm_upsnap_is_remote(archive)
				     ? hm_upsnap_verify(m, archive, err)
				     : hm_archive_verify(archive, NULL, &st, err)) != 0) {
				if (err->code != HM_EXIT_VERIFY_FAILED && err->code != HM_EXIT_INPUT &&
				    !hm_upsnap_is_remote(archive)) /* s3: 25, 22, 41 as they are */
					err->code = HM_EXIT_VERIFY_FAILED;
				return hm_error_prefix(
					err, "the snapshot cannot be restored; nothing was changed");
			}
		}
		j->rb_mode = HM_RBM_SNAPSHOT;
		j->status = HM_JS_ROLLING_BACK;
		if (hm_mig_save(m, err) != 0)
			return -1;
		if (hm_rb_safety_snapshot(m, o->archive_dir, err) != 0) {
			hm_error e2;
			j->status = HM_JS_ROLLBACK_FAILED;
			hm_journal_save(m->journal_path, j, &e2);
			err->code = HM_EXIT_ROLLBACK_FAILED;
			return -1;
		}
		hm_fault_point("rollback:snapshot:after-safety");
	}
	j->rb_mode = HM_RBM_SNAPSHOT;
	if (hm_mig_rollback(m, o->archive, err) != 0)
		return -1;
	if (j->safety_done)
		hm_mig_log(m, "safety snapshot of the directory as the unified container left it: %s",
			   j->safety_archive);
	return 0;
}
