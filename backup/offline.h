/* The offline backup into a repository: the archive of a stopped cluster's directory
 * (common/archive_dir: pax tar + zstd + a manifest) as backup meta of repository repo. A
 * plain local repository gets the archive as a file in the partial directory; an object
 * store or an encrypted repository gets it streamed (hm_repo_stream_*), never staged.
 * Shared by `backup --offline` and the snapshot of `up --archive-dir s3://...`
 * (migrate/up_snapshot_repo.c). */
#ifndef HM_OFFLINE_H
#define HM_OFFLINE_H

#include "../common/archive_dir.h"
#include "../common/crypt.h"
#include "../common/error.h"
#include "../common/progress.h"
#include "meta.h"
#include "repo.h"

/* Archive srcdir (pgdata: the data directory inside it whose pg_control must say "shut
 * down" with no postmaster.pid; the same path for a plain offline backup) into the
 * repository opened with the exclusive lock, as backup meta (its id, uuid and start_time
 * set by the caller; kind, archive, source and the pg_control facts are filled in here).
 * prog (initialised by the caller) is fed while the archive is written. On success the
 * archive is stored or ready for hm_repo_store_archive, and stats (may be NULL) says what
 * was archived. 0 or -1 (a streamed object is aborted). */
int hm_offline_backup(hm_repo *repo, const char *srcdir, const char *pgdata, hm_backup_meta *meta,
		      hm_crypt_secret *secret, hm_progress *prog, hm_archive_stats *stats, hm_error *err);

#endif
