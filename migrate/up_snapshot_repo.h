/* up's pre-migration snapshot in an object store (`up --archive-dir s3://BUCKET/PREFIX`,
 * issue 12): the snapshot is an offline backup of the repository format (backup/offline.h,
 * streamed with bounded memory, `backups list/verify/restore --repo s3://...` see it),
 * verified in full from the object store before anything it protects can change. The
 * journal records where it is (snapshot_repo, backup_id, archive = the object's location,
 * and the non-secret connection options); every path that restores up's snapshot (the
 * automatic rollback, rollback --to-snapshot / --backup, the resume of a killed up) comes
 * through here when the journal's archive is an s3:// location. The local archive
 * directory stays the default and is untouched by this file. */
#ifndef HM_UP_SNAPSHOT_REPO_H
#define HM_UP_SNAPSHOT_REPO_H

#include <stddef.h>

#include "../common/archive_dir.h"
#include "../common/error.h"
#include "../common/progress.h"
#include "migration.h"
#include "up_int.h"

/* Is location (may be NULL) an object-store location (s3://...)? */
int hm_upsnap_is_remote(const char *location);

/* A command-line option of HM_REPO_S3_LONGOPTS (backup/repo_cli.h) for up or rollback,
 * kept for this process (it overrides what the journal recorded): 1 handled, 0 not one of
 * them, -1 a bad value (a usage line was printed). */
int hm_upsnap_cli_option(int opt, const char *arg);

/* up's preflight, when archive_dir is s3://: record the location and the non-secret
 * connection options in the journal, then check that the object store answers, the
 * credentials are accepted, the bucket exists and the repository's lock can be taken (a
 * write), and release it. Refusals are HM_EXIT_PREFLIGHT (nothing has changed), one line
 * naming the cause. Local archive_dir (or NULL): 0, nothing done. */
int hm_upsnap_preflight(hm_mig *m, const char *archive_dir, hm_error *err);

/* The dry-run plan's line for step 4 into out: where the snapshot goes. */
void hm_upsnap_plan_line(const hm_mig *m, const char *archive_dir, char *out, size_t outsz);

/* Step 4 with the journal's snapshot_repo: stream the offline backup of the data directory
 * into the repository, commit it, and verify it in full as read back from the object
 * store (the verification status is recorded in its backup.json). A run killed before
 * left j->backup_id: that backup is verified again and reused, or (incomplete, or not
 * verifying) taken again. 0 or -1. */
int hm_upsnap_take(hm_mig *m, hm_archive_stats *st, hm_up_times *t, hm_error *err);

/* Verify the snapshot at location archive (s3://BUCKET/PREFIX/<id>/data.tar.zst) in full,
 * read from the object store: 0, or -1 (HM_EXIT_VERIFY_FAILED for a damaged one). */
int hm_upsnap_verify(hm_mig *m, const char *archive, hm_error *err);

/* Verify and extract the snapshot at location archive into restore_dir (which must not
 * exist; its parent must), in one pass, owners restored as archived when root, then the
 * file system synced. 0 or -1 (nothing is left in restore_dir). */
int hm_upsnap_extract(hm_mig *m, const char *archive, const char *restore_dir, hm_progress *pr,
		      hm_error *err);

/* rollback --backup ID when the snapshots are in an object store (ID an s3:// location,
 * or --archive-dir s3://..., or no --archive-dir and the journal's snapshot in one): its
 * location into out. 0 found, 1 not an object-store case (the caller looks locally), -1
 * error (HM_EXIT_NOT_FOUND when there is no such backup). */
int hm_upsnap_find_backup(const hm_mig *m, const char *archive_dir, const char *backup, char *out,
			  size_t outsz, hm_error *err);

#endif
