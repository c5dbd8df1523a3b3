/* What the S3 driver's files share (internal to backup/storage): the storage handle and the
 * hooks between writers, readers and the lock. */
#ifndef HM_S3_DRIVER_H
#define HM_S3_DRIVER_H

#include "s3_client.h"
#include "storage.h"

typedef struct s3_write s3_write;
typedef struct s3_lock s3_lock;

/* Locks one handle may hold at once: prune holds the run lock and the restore lock. */
#define HM_S3_MAX_HELD 2

typedef struct s3_storage {
	hm_storage base;
	hm_s3_client c;
	s3_write *active;	       /* uploads in progress: not partials for sweep */
	s3_lock *held[HM_S3_MAX_HELD]; /* locks this handle holds, renewed during long transfers */
} s3_storage;

int hm_s3_open_read(hm_storage *st, const char *name, uint64_t offset, uint64_t length,
		    hm_storage_reader **out, hm_error *err);
int hm_s3_open_write(hm_storage *st, const char *name, unsigned flags, uint64_t size_hint,
		     hm_storage_writer **out, hm_error *err);
/* Is upload_id one of this handle's uploads in progress? */
int hm_s3_write_active(const s3_storage *st, const char *upload_id);

int hm_s3_lock_acquire(hm_storage *st, const char *name, const char *owner, hm_storage_lock **out,
		       hm_error *err);
int hm_s3_lock_check(hm_storage_lock *l, hm_error *err);
void hm_s3_lock_release(hm_storage_lock *l);
/* Renew each held lock if a third of its lease has passed (called between parts and reads).
 * 0, or -1 when the lock was lost. */
int hm_s3_lock_tick(s3_storage *st, hm_error *err);

/* Content-MD5 (base64) of data; md5 (may be NULL) gets the raw digest. */
void hm_s3_content_md5(const void *data, size_t len, unsigned char md5[16], char b64[32]);

#endif
