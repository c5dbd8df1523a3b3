/* The rollbacks of issue 11 ("rollback that keeps what was written"):
 *  - the live rollback: the unified container's data directory goes back to the split stack
 *    as it is, with every row written since the migration (same major only);
 *  - the safety snapshot taken before any rollback of a completed migration;
 *  - the unified server's fingerprint, taken before it stops. */
#ifndef HM_ROLLBACK_LIVE_H
#define HM_ROLLBACK_LIVE_H

#include <json-c/json.h>

#include "migration.h"

typedef struct hm_rb_live_opts {
	const char *archive_dir; /* where the safety snapshot goes (NULL: beside up's snapshot) */
	int no_safety_snapshot;	 /* --no-safety-snapshot */
} hm_rb_live_opts;

/* What a live rollback did, for the summary. */
typedef struct hm_rb_live_result {
	int fingerprint_compared; /* 1: the split stack's data equals the unified fingerprint */
	int fingerprint_stale;	  /* 1: the unified server was written to after its fingerprint */
	int recovered;		  /* 1: the directory was not shut down cleanly; PostgreSQL recovered it */
	long long rows;		  /* rows in the unified fingerprint (or the split's, when recovered) */
	long owners_new;	  /* entries created since the migration given the split stack's owner */
	int settings_rewritten;	  /* settings files put back */
	double downtime;	  /* seconds from the unified stop to the split stack healthy (this run) */
	/* Seconds per step in this run (0: not run here). `fingerprint` is taken while the
	 * unified container still serves, before the downtime starts; the rest add up to it. */
	struct {
		double fingerprint, stop, safety_snapshot, owners, settings, start, health, verify;
	} step_seconds;
} hm_rb_live_result;

/* Connection parameters of the unified container's database (its published port, the split
 * stack's credentials). */
hm_pg_params hm_rb_unified_params(const hm_mig *m);

/* The unified server's fingerprint when it answers (polling up to `wait_s` seconds while its
 * container runs): 1 and *out set, 0 when it does not answer (*why says why), -1 on error.
 * guard (may be NULL): the fingerprint's guard (fingerprint.h hm_fingerprint_guard). */
int hm_rb_unified_fingerprint(hm_mig *m, int wait_s, json_object **out, unsigned long long *guard, char *why,
			      size_t whysz, hm_error *err);

/* Stop the unified container (if still there) and take a verified archive of the live data
 * directory into archive_dir (NULL: the directory of up's snapshot), recorded in the journal
 * (safety_archive, safety_done). A finished archive of an interrupted run is verified and
 * reused. 0 or -1. */
int hm_rb_safety_snapshot(hm_mig *m, const char *archive_dir, hm_error *err);

/* The live rollback of m->j (status done, or a live rollback to resume; m->stack loaded):
 * fingerprint the unified server, stop it cleanly, safety snapshot (unless opted out),
 * owners from the undo record (and new entries to the split stack's owner), the settings
 * files, start the split stack on the same directory, health and pgvector, fingerprint
 * equal to the unified one. A directory left crashed (the unified container was killed or
 * no longer starts) is recovered by the split stack's PostgreSQL and then checked. Every
 * step is journaled (live_step) and a killed run continues when run again. 0 or -1
 * (HM_EXIT_ROLLBACK_FAILED). */
int hm_rb_live(hm_mig *m, const hm_rb_live_opts *o, hm_rb_live_result *res, hm_error *err);

#endif
