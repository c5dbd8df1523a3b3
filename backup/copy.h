/* backups copy: one backup from a repository into another (for example a local directory
 * into s3://, the off-site copy of a cron recipe), verified on both sides. */
#ifndef HM_COPY_H
#define HM_COPY_H

#include "../common/crypt.h"
#include "../common/error.h"
#include "meta.h"
#include "repo.h"

/* Copy backup m of src (opened for reading, HM_REPO_RESTORE) into dst (opened
 * HM_REPO_EXCLUSIVE). First the source is verified: fully when it is plain or secret is
 * its key, else by its stored digests. Then its stored object goes over as it is
 * (ciphertext stays ciphertext), or, for a plain backup and a secret, encrypted with
 * secret. The copy is read back and compared before its backup.json is written, the
 * commit point on the destination. *out gets the copy's metadata. 0 or -1. */
int hm_backup_copy(const hm_repo *src, const hm_repo *dst, const hm_backup_meta *m, hm_crypt_secret *secret,
		   hm_backup_meta *out, hm_error *err);

#endif
