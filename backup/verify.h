/* Checking a backup end to end, and restoring it in the same pass.
 * Online backups: the archive's size; every member's SHA-256 against backup.json; the
 * embedded backup.json against the repository's copy; backup_manifest's Manifest-Checksum;
 * every regular file of every server archive (decompressed with libarchive) against the
 * manifest's Files[] (size and CRC32C or SHA-256); no file missing or extra (pg_wal/ is
 * skipped as pg_verifybackup does); the WAL segments of every WAL-Ranges entry present in
 * the archived pg_wal/ with the right size. Offline backups: the archive's SHA-256 and
 * common/archive_dir's full verification.
 * Every problem is collected (not just the first) so one run names every bad file. */
#ifndef HM_VERIFY_H
#define HM_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"
#include "../common/progress.h"
#include "meta.h"
#include "repo.h"

typedef struct hm_verify_opts {
	const char *extract_to; /* NULL: verify only; else a directory that must NOT exist yet */
	int set_owner;		/* extract with this uid/gid instead of the archived owners */
	uid_t uid;
	gid_t gid;
	hm_progress *progress; /* may be NULL */
} hm_verify_opts;

typedef struct hm_verify_report {
	char **errors; /* one line each, naming the file */
	size_t nerrors, cap;
	uint64_t files; /* regular files checked */
	uint64_t bytes; /* archive bytes read */
} hm_verify_report;

/* Verify (and, with opts->extract_to, extract) backup m of repository r. 0 when every
 * check passed; otherwise -1 with err set: HM_EXIT_VERIFY_FAILED when problems were found
 * (all of them in rep->errors), or another code when the check itself could not run.
 * With extract_to, the directory is removed again on any failure. */
int hm_verify_backup(const hm_repo *r, const hm_backup_meta *m, const hm_verify_opts *opts,
		     hm_verify_report *rep, hm_error *err);

void hm_verify_report_free(hm_verify_report *rep);

/* WAL segment file name for timeline tli and segment number segno (24 hex digits). */
void hm_wal_file_name(char out[25], uint32_t tli, uint64_t segno, uint32_t seg_size);

#endif
