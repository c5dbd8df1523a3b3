/* Restoring a backup into a directory, and the restore test (a throwaway PostgreSQL
 * started on a restored copy in a container). */
#ifndef HM_RESTORE_H
#define HM_RESTORE_H

#include <stddef.h>
#include <sys/types.h>

#include "../common/crypt.h"
#include "../common/error.h"
#include "meta.h"
#include "repo.h"

typedef struct hm_restore_opts {
	const char *to; /* target directory: missing or empty; or, with replace, a stopped data dir */
	int replace;	/* move an existing non-empty target aside to TO.before-restore-<time> */
	int set_owner;
	uid_t uid;
	gid_t gid;
	int quiet;
	hm_crypt_secret *secret; /* the key of an encrypted backup (else NULL) */
} hm_restore_opts;

/* Restore backup m: verify and extract in one pass into a sibling TO.restoring-<pid>, then
 * rename into place (the previous directory, with replace, goes to aside). A failed check
 * leaves the target untouched. 0 or -1. */
int hm_restore(const hm_repo *r, const hm_backup_meta *m, const hm_restore_opts *o, char *aside,
	       size_t asidesz, hm_error *err);

/* Restore into REPO/.tmp (the stage for s3), start PostgreSQL from image on it (container
 * "hb-restoretest-<id8>" unless HIVE_RESTORE_TEST_PREFIX is set), wait until it accepts connections, run
 * sanity queries (databases, row counts, a pgvector search where the extension exists), stop and remove
 * everything. summary gets one line. Failure of the cluster is HM_EXIT_VERIFY_FAILED; engine trouble
 * HM_EXIT_ENGINE. 0 or -1. */
int hm_restore_test(const hm_repo *r, const hm_backup_meta *m, hm_crypt_secret *secret, const char *image,
		    char *summary, size_t summarysz, int quiet, hm_error *err);

#endif
