/* A backup's archive as stored, whatever the repository: written once when a backup is
 * committed (plain in a local directory as before; encrypted with common/crypt when a key
 * is given; uploaded to an object store), and read back as a plain, seekable archive for
 * verify and restore, which therefore do not know where or how the bytes are kept. */
#ifndef HM_REPO_IO_H
#define HM_REPO_IO_H

#include "../common/crypt.h"
#include "../common/error.h"
#include "meta.h"
#include "repo.h"

/* Store the plain archive partial/<m->archive> of backup m (before hm_repo_commit):
 *  - local, no secret: left where it is (the layout of earlier versions);
 *  - local, secret: encrypted into partial/<archive>.hmenc (0600, O_EXCL|O_NOFOLLOW), the
 *    plain file removed;
 *  - s3: streamed (encrypted when secret) to <id>/<stored name>, multipart with bounded
 *    memory; the local plain file removed.
 * m gets stored_name/size/sha256 (the digests of the bytes as stored) and, with a secret,
 * its encryption fields (then seal its metadata: hm_repo_seal_meta). 0 or -1. */
int hm_repo_store_archive(const hm_repo *r, const char *partial, hm_backup_meta *m, hm_crypt_secret *secret,
			  hm_error *err);

/* A read-only fd of backup m's plain archive, positioned at 0 and seekable: the file itself
 * for a plain local backup; otherwise a private unlinked spool file in the stage, filled by
 * reading the stored object once, decrypting it with secret, and checking its stored size
 * and SHA-256. Errors: HM_EXIT_INPUT for an encrypted backup without a key or with another
 * key; HM_EXIT_CORRUPT for ciphertext that fails authentication (tampered, truncated,
 * reordered, extended; or a wrong passphrase); HM_EXIT_VERIFY_FAILED for a stored digest
 * that does not match; storage failures as hm_repo. -1 then. */
int hm_repo_open_archive(const hm_repo *r, const hm_backup_meta *m, hm_crypt_secret *secret, hm_error *err);

/* The outer check, no key needed: read the stored object and compare its size and SHA-256
 * with m's stored fields. 0; -1 with HM_EXIT_VERIFY_FAILED naming the mismatch (or the
 * storage error). */
int hm_repo_check_stored(const hm_repo *r, const hm_backup_meta *m, hm_error *err);

/* Copy backup m's stored object as it is (ciphertext stays ciphertext; a plain local
 * backup's archive counts as its stored object) from src into dst: streamed to
 * <id>/<name> for s3, or into partial/<name> for a local dst. The source's stored digests
 * are checked on the way when it has them; m's stored fields get the copy's. 0 or -1. */
int hm_repo_copy_stored(const hm_repo *src, const hm_repo *dst, const char *partial, hm_backup_meta *m,
			hm_error *err);

/* Before a copy or upload is committed: read what was stored for m in dst back (s3:
 * <id>/<stored name>; local: partial/<stored name>) and compare size and SHA-256 with m's
 * stored fields. 0, or -1 with HM_EXIT_VERIFY_FAILED. */
int hm_repo_check_partial(const hm_repo *dst, const char *partial, const hm_backup_meta *m, hm_error *err);

/* Write the sealed (encrypted) copy of backup m's full metadata, HM_META_SEALED, beside its
 * archive (s3: <id>/HM_META_SEALED; local: partial/HM_META_SEALED), after
 * hm_repo_store_archive and before hm_repo_commit. 0 or -1. */
int hm_repo_seal_meta(const hm_repo *r, const char *partial, const hm_backup_meta *m, hm_crypt_secret *secret,
		      hm_error *err);

/* The full metadata of encrypted backup m (as listed: the readable fields only) from its
 * sealed copy, with m's status. It must name the same backup and stored object
 * (HM_EXIT_CORRUPT otherwise; a missing copy is HM_EXIT_VERIFY_FAILED). 0 or -1. */
int hm_repo_unseal_meta(const hm_repo *r, const hm_backup_meta *m, hm_crypt_secret *secret,
			hm_backup_meta *out, hm_error *err);

/* Copy the sealed metadata of m as it is from src into dst (s3 or partial/). 0 or -1. */
int hm_repo_copy_sealed(const hm_repo *src, const hm_repo *dst, const char *partial, const hm_backup_meta *m,
			hm_error *err);

/* Streaming a new archive straight into an object store (no local copy): */
typedef struct hm_repo_stream hm_repo_stream;

/* Should backup stream its archive (s3), rather than stage it and store it? */
int hm_repo_streams(const hm_repo *r);

/* Start <id>/<archive> (or <archive>.hmenc, encrypted with secret): a multipart upload
 * with bounded memory. 0 or -1. */
int hm_repo_stream_open(const hm_repo *r, const hm_backup_meta *m, hm_crypt_secret *secret,
			hm_repo_stream **out, hm_error *err);
/* The same, and for a local repository too: partial/<archive>.hmenc (or <archive>), created
 * 0600 with O_EXCL|O_NOFOLLOW and fsync'd at commit (partial: hm_repo_partial's directory;
 * unused for s3, may be NULL there). Aborting a local stream removes its file. 0 or -1. */
int hm_repo_stream_open_in(const hm_repo *r, const char *partial, const hm_backup_meta *m,
			   hm_crypt_secret *secret, hm_repo_stream **out, hm_error *err);
/* The sink (hm_tarout_sink): ctx is the stream. */
int hm_repo_stream_write(void *ctx, const void *data, size_t len, hm_error *err);
/* Complete the object; m gets its stored and encryption fields (as hm_repo_store_archive
 * gives them, which then has nothing left to do). Frees s. 0 or -1. */
int hm_repo_stream_commit(hm_repo_stream *s, hm_backup_meta *m, hm_error *err);
/* Abort the upload; frees s. NULL is fine. */
void hm_repo_stream_abort(hm_repo_stream *s);

/* Is secret the key encrypted backup m needs? 0, or -1 with HM_EXIT_INPUT saying which key
 * (id) or which kind (key file, passphrase) is needed. */
int hm_repo_check_key(const hm_backup_meta *m, hm_crypt_secret *secret, hm_error *err);

/* Does backup m need a key to be read? */
int hm_repo_encrypted(const hm_backup_meta *m);

#endif
