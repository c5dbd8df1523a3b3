/* The pre-copy of up's snapshot (issue 13; common/archive_delta.h, docs/migration.md "The
 * pre-copy"): the base is archived and verified while the split stack still runs (before
 * the fingerprint of step 2), only the delta is taken during the downtime (step 4), and the
 * two parts are merged into the usual single ARCHIVE_DIR/ID.tar.zst once the unified
 * container is healthy. Until then every reader of the snapshot (the rollbacks) merges
 * them first (hm_up_precopy_materialize). The journal's "precopy" says where it stands. */
#ifndef HM_UP_PRECOPY_H
#define HM_UP_PRECOPY_H

#include "../common/archive_dir.h"
#include "../common/error.h"
#include "migration.h"

struct hm_up_opts;
struct hm_up_times;

/* Before step 2: the base archive, verified, and its record. Never fails the migration:
 * when the pre-copy cannot be used (--no-precopy, not enough free space for base + delta
 * + merge, any error) it says so and the whole snapshot is taken after the stop. -1 only
 * when the journal cannot be saved. */
int hm_up_precopy_base(hm_mig *m, const struct hm_up_opts *o, struct hm_up_times *t, hm_error *err);

/* Is a pre-copy under way (base or delta taken, not merged)? */
int hm_up_precopy_pending(const hm_journal *j);

/* Step 4 with a base: the delta after the stop, verified. meta: the snapshot's metadata.
 * 0 done (st: the delta's stats, archive_bytes of both parts), 1 the pre-copy was given up
 * (its files removed, logged: take the whole snapshot), -1 error (journal). */
int hm_up_precopy_delta(hm_mig *m, const char *meta, hm_archive_stats *st, struct hm_up_times *t,
			hm_error *err);

/* After health: merge the parts into the snapshot. A failure is logged, not fatal (the parts
 * stay, and every reader merges them first). */
void hm_up_precopy_merge(hm_mig *m, struct hm_up_times *t);

/* For a reader of up's snapshot: if it is still base + delta, merge it now. 0 or -1. */
int hm_up_precopy_materialize(hm_mig *m, hm_error *err);

/* A run abandoned (or restarted) before its stop: remove its base and record, which are a
 * copy of nothing (the split stack kept running). */
void hm_up_precopy_discard(const hm_journal *j);

#endif
