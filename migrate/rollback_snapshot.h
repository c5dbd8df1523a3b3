/* `rollback --to-snapshot` after a completed migration (and `--discard-new-writes` after a
 * cross-major one): today's rollback (restore the pre-migration archive, hm_mig_rollback),
 * preceded by the report of what it leaves out, the confirmation, and the safety snapshot. */
#ifndef HM_ROLLBACK_SNAPSHOT_H
#define HM_ROLLBACK_SNAPSHOT_H

#include <json-c/json.h>

#include "migration.h"

typedef struct hm_rb_snapshot_opts {
	const char *archive;	 /* the archive to restore (NULL: the migration's own) */
	const char *archive_dir; /* where the safety snapshot goes (NULL: beside up's snapshot) */
	int no_safety_snapshot;
	int yes;   /* confirmed on the command line */
	int quiet; /* no report lines */
} hm_rb_snapshot_opts;

/* Print (stderr) which tables differ from the pre-migration fingerprint, with row counts:
 * the live fingerprint is the unified server's (when it answers). *left_out (optional) gets
 * the JSON array of differences (NULL when they cannot be told). Returns 1 when writes may
 * be left out (differences, or the unified server does not answer), 0 when none, -1 error. */
int hm_rb_report_left_out(hm_mig *m, const char *verb, json_object **left_out, hm_error *err);

/* Ask on a terminal (y/N), or refuse without one unless o->yes: 0 go on, -1 with
 * HM_EXIT_USAGE (declined) or HM_EXIT_NEEDS_CONFIRMATION (no terminal). */
int hm_rb_confirm(const char *question, int yes, hm_error *err);

/* The snapshot rollback of m->j with safety snapshot (unless opted out): the archive is
 * verified first (a bad one is refused with nothing changed, HM_EXIT_VERIFY_FAILED), the
 * unified container stopped, the live directory archived, then hm_mig_rollback. Resumes an
 * interrupted one. 0 or -1. */
int hm_rb_to_snapshot(hm_mig *m, const hm_rb_snapshot_opts *o, hm_error *err);

#endif
