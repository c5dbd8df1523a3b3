/* Checking a backup end to end, and restoring it in the same pass.
 * Online backups: the archive's size; every member's SHA-256 against backup.json; the
 * embedded backup.json against the repository's copy; backup_manifest's Manifest-Checksum;
 * every regular file of every server archive (decompressed with libarchive) against the
 * manifest's Files[] (size and CRC32C or SHA-256); no file missing or extra (pg_wal/ is
 * skipped as pg_verifybackup does); the WAL segments of every WAL-Ranges entry present in
 * the archived pg_wal/ with the right size (a range is first weighed against the WAL the
 * archive holds, so no forged range can make this loop). Every member of a server archive
 * goes through the archive rule (server_archive.h). Offline backups: the archive's
 * SHA-256 and common/archive_dir's full verification.
 * Every problem is collected (not just the first) so one run names every bad file. */
#ifndef HM_VERIFY_H
#define HM_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/crypt.h"
#include "../common/error.h"
#include "../common/progress.h"
#include "meta.h"
#include "repo.h"

typedef struct hm_verify_opts {
	/* NULL: verify only. Else the directory to extract into, created by this call as
	 * extract_name inside the directory open as extract_parent_fd (never by path; it must
	 * not exist yet); extract_display is its path for messages. */
	const char *extract_name;
	int extract_parent_fd;
	const char *extract_display;
	int set_owner; /* extract with this uid/gid instead of the archived owners */
	uid_t uid;
	gid_t gid;
	hm_progress *progress;	 /* may be NULL */
	hm_crypt_secret *secret; /* the key of an encrypted backup (else NULL) */
} hm_verify_opts;

typedef struct hm_verify_report {
	char **errors; /* one line each, naming the file (the first nstored problems) */
	size_t nerrors, nstored, cap;
	uint64_t files;	   /* regular files checked */
	uint64_t bytes;	   /* archive bytes read */
	dev_t extract_dev; /* the extracted directory (extract_name) ... */
	ino_t extract_ino; /* ... identified whatever name it has later */
} hm_verify_report;

#define HM_VERIFY_MAX_ERRORS 200

/* Record one more problem in a report (the first HM_VERIFY_MAX_ERRORS are kept; the count
 * keeps going). */
void hm_verify_problem(hm_verify_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Verify (and, with opts->extract_name, extract) backup m of repository r. Verifying and
 * extracting apply the same rule (common/tree_rule.h) in the same pass, so what verifies
 * restores. 0 when every check passed; otherwise -1 with err set: HM_EXIT_VERIFY_FAILED
 * when problems were found (all of them in rep->errors), or another code when the check
 * itself could not run. When extracting, the directory is removed again on any failure. */
int hm_verify_backup(const hm_repo *r, const hm_backup_meta *m, const hm_verify_opts *opts,
		     hm_verify_report *rep, hm_error *err);

/* How many of rep->errors are stored (at most HM_VERIFY_MAX_ERRORS; nerrors may be more). */
size_t hm_verify_stored(const hm_verify_report *rep);

void hm_verify_report_free(hm_verify_report *rep);

/* WAL segment file name for timeline tli and segment number segno (24 hex digits). */
void hm_wal_file_name(char out[25], uint32_t tli, uint64_t segno, uint32_t seg_size);

#endif
