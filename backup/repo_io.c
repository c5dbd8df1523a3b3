/* Archive streams between a backup's plain archive and its stored object. Every byte of a
 * stored object is hashed as it passes, so the outer digests in backup.json are checked
 * on each read, with or without the key; the decryptor (common/crypt) hands out only
 * authenticated bytes and fails on any change, cut or extension. Reads land in an
 * unlinked spool file of the private stage: nothing of a bad archive is extracted, since
 * extraction starts only once the whole object was read, authenticated and matched. */
#include "repo_io.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/digest.h"
#include "../common/fsutil.h"
#include "repo_int.h"

#define IOBUF (1u << 20)
#define ENC_SUFFIX ".hmenc"

int hm_repo_encrypted(const hm_backup_meta *m)
{
	return m->encryption[0] != '\0';
}

/* Where stored bytes go: a local file or a storage writer; hashed and counted. */
typedef struct dst {
	int fd;
	const char *disp;
	hm_storage_writer *w;
	hm_sha256 *sha;
	uint64_t size;
	int fault_mid_upload;
} sink_t;

static int write_all(int fd, const void *data, size_t len, const char *disp, hm_error *err)
{
	const unsigned char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hm_error_errno(err, errno, "write", disp);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int dst_write(void *ctx, const void *data, size_t len, hm_error *err)
{
	sink_t *d = ctx;
	hm_sha256_update(d->sha, data, len);
	d->size += len;
	if (d->fault_mid_upload && d->size > (11u << 20))
		raise(SIGKILL); /* test hook (HIVE_BACKUP_FAULT=mid-upload): die like kill -9 */
	if (d->w)
		return hm_storage_write(d->w, data, len, err) == 0 ? 0 : hm_repo_s3_fail(err);
	return write_all(d->fd, data, len, d->disp, err);
}

/* Where stored bytes come from. */
typedef struct src {
	int fd;
	hm_storage_reader *rd;
	char disp[4800];
} source_t;

static int src_open(const hm_repo *r, const char *id, const char *name, source_t *s, hm_error *err)
{
	s->fd = -1;
	s->rd = NULL;
	snprintf(s->disp, sizeof s->disp, "%s/%s/%s", r->path, id, name);
	if (!r->st) {
		s->fd = hm_repo_open_file(r, id, name, O_RDONLY, err);
		if (s->fd < 0)
			err->code = HM_EXIT_VERIFY_FAILED; /* missing, or a symlink: a finding */
		return s->fd < 0 ? -1 : 0;
	}
	char key[300];
	if (snprintf(key, sizeof key, "%s/%s", id, name) >= (int)sizeof key)
		return hm_error_set(err, HM_EXIT_INPUT, "name too long: %s", s->disp);
	int rc = hm_storage_open_read(r->st, key, 0, HM_STORAGE_TO_END, &s->rd, err);
	if (rc == HM_STORAGE_MISSING)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "%s: missing from the repository", name);
	return rc == 0 ? 0 : hm_repo_s3_fail(err);
}

static int src_read(source_t *s, void *buf, size_t len, size_t *got, hm_error *err)
{
	if (s->rd)
		return hm_storage_read(s->rd, buf, len, got, err) == 0 ? 0 : hm_repo_s3_fail(err);
	for (;;) {
		ssize_t n = read(s->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hm_error_errno(err, errno, "read", s->disp);
		*got = (size_t)n;
		return 0;
	}
}

static void src_close(source_t *s)
{
	if (s->rd)
		hm_storage_read_close(s->rd);
	if (s->fd >= 0)
		close(s->fd);
	s->rd = NULL;
	s->fd = -1;
}

int hm_repo_store_archive(const hm_repo *r, const char *partial, hm_backup_meta *m, hm_crypt_secret *secret,
			  hm_error *err)
{
	char plain[4700], out[4800], key[300];
	struct stat st;
	unsigned char *buf = NULL;
	hm_crypt_enc *enc = NULL;
	sink_t d = {.fd = -1, .disp = out};
	int in = -1, rc = -1;
	if ((!r->st && !secret) || m->stored_name[0])
		return 0; /* local plain, or streamed already */
	snprintf(m->stored_name, sizeof m->stored_name, "%s%s", m->archive, secret ? ENC_SUFFIX : "");
	snprintf(plain, sizeof plain, "%s/%s", partial, m->archive);
	if (r->st)
		snprintf(out, sizeof out, "%s/%s/%s", r->path, m->id, m->stored_name);
	else
		snprintf(out, sizeof out, "%s/%s", partial, m->stored_name);
	if ((in = open(plain, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(in, &st) != 0) {
		hm_error_errno(err, errno, "open", plain);
		goto cleanup;
	}
	if (!(buf = malloc(IOBUF)) || !(d.sha = hm_sha256_new())) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if (r->st) {
		const char *f = getenv("HIVE_BACKUP_FAULT");
		d.fault_mid_upload = f && !strcmp(f, "mid-upload");
		snprintf(key, sizeof key, "%s/%s", m->id, m->stored_name);
		if (hm_storage_open_write(r->st, key, 0, (uint64_t)st.st_size, &d.w, err) != 0) {
			d.w = NULL;
			hm_repo_s3_fail(err);
			goto cleanup;
		}
	} else if ((d.fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		hm_error_errno(err, errno, "create", out);
		goto cleanup;
	}
	if (secret && hm_crypt_enc_new(secret, 0, dst_write, &d, &enc, err) != 0)
		goto cleanup;
	for (;;) {
		ssize_t n = read(in, buf, IOBUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			hm_error_errno(err, errno, "read", plain);
			goto cleanup;
		}
		if (n == 0)
			break;
		if (enc ? hm_crypt_enc_write(enc, buf, (size_t)n, err) : dst_write(&d, buf, (size_t)n, err))
			goto cleanup;
	}
	if (enc && hm_crypt_enc_finish(enc, err) != 0)
		goto cleanup;
	if (d.w) {
		hm_storage_writer *w = d.w;
		d.w = NULL;
		if (hm_storage_write_commit(w, NULL, err) != 0) {
			hm_repo_s3_fail(err);
			goto cleanup;
		}
	} else {
		if (fsync(d.fd) != 0 || close(d.fd) != 0) {
			d.fd = -1;
			hm_error_errno(err, errno, "write", out);
			goto cleanup;
		}
		d.fd = -1;
	}
	/* only the stored object stays: no plain copy beside an encrypted one */
	if (unlink(plain) != 0) {
		hm_error_errno(err, errno, "remove", plain);
		goto cleanup;
	}
	m->stored_size = d.size;
	hm_sha256_final_hex(d.sha, m->stored_sha256);
	d.sha = NULL;
	if (secret) {
		const char *kid = hm_crypt_secret_key_id(secret);
		snprintf(m->encryption, sizeof m->encryption, "%s", HM_META_CIPHER);
		snprintf(m->kdf, sizeof m->kdf, "%s", kid[0] ? "key" : "argon2id");
		snprintf(m->key_id, sizeof m->key_id, "%s", kid);
	}
	rc = 0;
cleanup:
	if (rc != 0)
		m->stored_name[0] = '\0';
	hm_crypt_enc_free(enc);
	if (d.w)
		hm_storage_write_abort(d.w);
	if (d.fd >= 0) {
		close(d.fd);
		unlink(out);
	}
	if (d.sha)
		hm_sha256_free(d.sha);
	if (in >= 0)
		close(in);
	free(buf);
	return rc;
}

/* Compare what was read with the stored digests. */
static int check_digests(const hm_backup_meta *m, uint64_t size, hm_sha256 *sha, hm_error *err)
{
	char hex[HM_SHA256_HEX_LEN + 1];
	hm_sha256_final_hex(sha, hex);
	if (size != m->stored_size)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				    "%s: %llu bytes stored, backup.json says %llu (truncated or damaged)",
				    m->stored_name, (unsigned long long)size,
				    (unsigned long long)m->stored_size);
	if (strcmp(hex, m->stored_sha256) != 0)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				    "%s: SHA-256 of the stored object mismatch "
				    "(damaged or tampered)",
				    m->stored_name);
	return 0;
}

/* Read the whole stored object through sink (may be NULL), checking the stored digests. */
static int read_stored(const hm_repo *r, const hm_backup_meta *m, hm_crypt_sink sink, void *ctx,
		       hm_error *err)
{
	source_t s;
	unsigned char *buf = malloc(IOBUF);
	hm_sha256 *sha = hm_sha256_new();
	uint64_t size = 0;
	int rc = -1;
	if (!buf || !sha) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		free(buf);
		if (sha)
			hm_sha256_free(sha);
		return -1;
	}
	if (src_open(r, m->id, m->stored_name, &s, err) != 0)
		goto cleanup;
	for (;;) {
		size_t got;
		if (src_read(&s, buf, IOBUF, &got, err) != 0)
			goto cleanup;
		if (!got)
			break;
		hm_sha256_update(sha, buf, got);
		size += got;
		if (size > m->stored_size) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				     "%s: more than the %llu bytes backup.json records (extended or damaged)",
				     m->stored_name, (unsigned long long)m->stored_size);
			goto cleanup;
		}
		if (sink && sink(ctx, buf, got, err) != 0)
			goto cleanup;
	}
	rc = check_digests(m, size, sha, err);
	sha = NULL;
cleanup:
	src_close(&s);
	if (sha)
		hm_sha256_free(sha);
	free(buf);
	return rc;
}

int hm_repo_check_stored(const hm_repo *r, const hm_backup_meta *m, hm_error *err)
{
	if (!m->stored_name[0])
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "backup %s records no stored digest", m->id);
	return read_stored(r, m, NULL, NULL, err);
}

/* The spool: plain bytes into an unlinked file. */
typedef struct spool {
	int fd;
	const char *disp;
} spool;

static int spool_write(void *ctx, const void *data, size_t len, hm_error *err)
{
	spool *s = ctx;
	return write_all(s->fd, data, len, s->disp, err);
}

typedef struct dec_ctx {
	hm_crypt_dec *dec;
} dec_ctx;

static int dec_sink(void *ctx, const void *data, size_t len, hm_error *err)
{
	dec_ctx *d = ctx;
	return hm_crypt_dec_write(d->dec, data, len, err);
}

/* An encrypted backup and a key: refuse another key before reading anything. */
int hm_repo_check_key(const hm_backup_meta *m, hm_crypt_secret *secret, hm_error *err)
{
	if (!secret) {
		hm_error_set(err, HM_EXIT_INPUT, "backup %s is encrypted%s%s and no key was given", m->id,
			     m->key_id[0] ? " with key id " : " with a passphrase", m->key_id);
		return hm_error_hint(err, "name it with %s FILE",
				     strcmp(m->kdf, "argon2id") ? "--encrypt-key-file"
								: "--encrypt-passphrase-file");
	}
	const char *kid = hm_crypt_secret_key_id(secret);
	if (!strcmp(m->kdf, "argon2id") != !kid[0]) {
		hm_error_set(err, HM_EXIT_INPUT, "backup %s was encrypted with a %s, not a %s", m->id,
			     kid[0] ? "passphrase" : "key file", kid[0] ? "key file" : "passphrase");
		return hm_error_hint(err, "use %s",
				     kid[0] ? "--encrypt-passphrase-file" : "--encrypt-key-file");
	}
	if (kid[0] && strcmp(kid, m->key_id) != 0) {
		hm_error_set(err, HM_EXIT_INPUT,
			     "wrong key for backup %s: it needs key id %s, the key file has %s", m->id,
			     m->key_id, kid);
		return hm_error_hint(err, "name the key file this backup was made with");
	}
	return 0;
}

int hm_repo_open_archive(const hm_repo *r, const hm_backup_meta *m, hm_crypt_secret *secret, hm_error *err)
{
	static unsigned seq;
	char name[64], disp[4200];
	dec_ctx dc = {NULL};
	if (!m->stored_name[0]) {
		if (r->st)
			return hm_error_set(err, HM_EXIT_CORRUPT, "backup %s records no stored object",
					    m->id);
		return hm_repo_open_file(r, m->id, m->archive, O_RDONLY, err);
	}
	if (hm_repo_encrypted(m) && hm_repo_check_key(m, secret, err) != 0)
		return -1;
	int sfd = hm_repo_stage_fd(r, err);
	if (sfd < 0)
		return -1;
	snprintf(name, sizeof name, "spool-%u", seq++);
	snprintf(disp, sizeof disp, "%s/%s", r->stage, name);
	spool sp = {openat(sfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), disp};
	if (sp.fd < 0)
		return hm_error_errno(err, errno, "create", disp);
	unlinkat(sfd, name, 0); /* private to this process, gone with it */
	int rc;
	if (hm_repo_encrypted(m)) {
		rc = hm_crypt_dec_new(secret, spool_write, &sp, &dc.dec, err);
		if (rc == 0)
			rc = read_stored(r, m, dec_sink, &dc, err);
		if (rc == 0)
			rc = hm_crypt_dec_finish(dc.dec, err);
		hm_crypt_dec_free(dc.dec);
		if (rc != 0 && err->code == HM_EXIT_INPUT && m->key_id[0]) {
			/* the key matched backup.json's key id, so the stream's header was altered */
			err->code = HM_EXIT_CORRUPT;
		}
		if (rc != 0 && err->code == HM_EXIT_CORRUPT)
			hm_error_prefix(err, "backup %s: %s does not decrypt%s", m->id, m->stored_name,
					strcmp(m->kdf, "argon2id") ? ""
								   : " (a wrong passphrase, or damaged)");
	} else {
		rc = read_stored(r, m, spool_write, &sp, err);
	}
	if (rc == 0 && lseek(sp.fd, 0, SEEK_SET) != 0)
		rc = hm_error_errno(err, errno, "rewind", disp);
	if (rc != 0) {
		close(sp.fd);
		return -1;
	}
	return sp.fd;
}

/* Open the destination of a copy: s3 <id>/<name>, or partial/<name> (O_EXCL, 0600). */
static int dst_open(const hm_repo *r, const char *partial, const hm_backup_meta *m, const char *name,
		    uint64_t size_hint, sink_t *d, char *disp, size_t dispsz, hm_error *err)
{
	char key[300];
	if (r->st) {
		snprintf(disp, dispsz, "%s/%s/%s", r->path, m->id, name);
		snprintf(key, sizeof key, "%s/%s", m->id, name);
		if (hm_storage_open_write(r->st, key, 0, size_hint, &d->w, err) != 0) {
			d->w = NULL;
			return hm_repo_s3_fail(err);
		}
		return 0;
	}
	snprintf(disp, dispsz, "%s/%s", partial, name);
	if ((d->fd = open(disp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		return hm_error_errno(err, errno, "create", disp);
	return 0;
}

/* Make the destination durable and visible to hm_repo_commit; frees the writer. */
static int dst_finish(sink_t *d, hm_error *err)
{
	if (d->w) {
		hm_storage_writer *w = d->w;
		d->w = NULL;
		return hm_storage_write_commit(w, NULL, err) == 0 ? 0 : hm_repo_s3_fail(err);
	}
	int rc = fsync(d->fd) != 0 || close(d->fd) != 0;
	d->fd = -1;
	return rc ? hm_error_errno(err, errno, "write", d->disp) : 0;
}

int hm_repo_copy_stored(const hm_repo *src, const hm_repo *dst, const char *partial, hm_backup_meta *m,
			hm_error *err)
{
	char disp[4800], name[64];
	snprintf(name, sizeof name, "%s", m->stored_name[0] ? m->stored_name : m->archive);
	uint64_t hint = m->stored_name[0] ? m->stored_size : m->archive_size;
	sink_t d = {.fd = -1, .disp = disp};
	int rc = -1;
	if (!(d.sha = hm_sha256_new()))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	if (dst_open(dst, partial, m, name, hint, &d, disp, sizeof disp, err) != 0)
		goto cleanup;
	if (m->stored_name[0]) {
		if (read_stored(src, m, dst_write, &d, err) != 0)
			goto cleanup;
	} else {
		/* a plain local backup: its archive as it is (verified just before) */
		source_t s;
		unsigned char *buf = malloc(IOBUF);
		if (!buf) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto cleanup;
		}
		int r = src_open(src, m->id, m->archive, &s, err);
		for (size_t got = 1; r == 0;) {
			if ((r = src_read(&s, buf, IOBUF, &got, err)) != 0 || got == 0)
				break;
			r = dst_write(&d, buf, got, err);
		}
		src_close(&s);
		free(buf);
		if (r != 0)
			goto cleanup;
	}
	if (dst_finish(&d, err) != 0)
		goto cleanup;
	snprintf(m->stored_name, sizeof m->stored_name, "%s", name);
	m->stored_size = d.size;
	hm_sha256_final_hex(d.sha, m->stored_sha256);
	d.sha = NULL;
	rc = 0;
cleanup:
	if (d.w)
		hm_storage_write_abort(d.w);
	if (d.fd >= 0) {
		close(d.fd);
		unlink(disp);
	}
	if (d.sha)
		hm_sha256_free(d.sha);
	return rc;
}

int hm_repo_check_partial(const hm_repo *dst, const char *partial, const hm_backup_meta *m, hm_error *err)
{
	if (dst->st)
		return hm_repo_check_stored(dst, m, err);
	char path[4800], hex[HM_SHA256_HEX_LEN + 1];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", partial, m->stored_name);
	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "%s: missing after the copy", path);
	if (hm_sha256_file(path, hex, err) != 0)
		return -1;
	if ((uint64_t)st.st_size != m->stored_size || strcmp(hex, m->stored_sha256) != 0)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "%s: the copy differs from what was read",
				    path);
	return 0;
}

/* Put a small object name of backup id: s3 <id>/<name>, or partial/<name> (0600). */
static int put_small(const hm_repo *r, const char *partial, const char *id, const char *name,
		     const void *data, size_t len, hm_error *err)
{
	char key[300];
	if (r->st) {
		snprintf(key, sizeof key, "%s/%s", id, name);
		return hm_storage_put(r->st, key, data, len, 0, err) == 0 ? 0 : hm_repo_s3_fail(err);
	}
	snprintf(key, sizeof key, "%s/%s", partial, name);
	return hm_write_file_atomic(key, data, len, 0600, err);
}

/* Get a small object name of backup id as it is listed (local: REPO/<id>/<name>). */
static int get_small(const hm_repo *r, const char *id, const char *name, char **out, size_t *len,
		     hm_error *err)
{
	char key[300];
	*out = NULL;
	if (r->st) {
		snprintf(key, sizeof key, "%s/%s", id, name);
		int rc = hm_storage_get(r->st, key, HM_REPO_META_MAX * 2, out, len, err);
		if (rc == HM_STORAGE_MISSING)
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "%s/%s: missing from the repository",
					    id, name);
		return rc == 0 ? 0 : hm_repo_s3_fail(err);
	}
	snprintf(key, sizeof key, "%s/%s/%s", r->path, id, name);
	int fd = hm_repo_open_file(r, id, name, O_RDONLY, err);
	if (fd < 0) {
		err->code = HM_EXIT_VERIFY_FAILED;
		return -1;
	}
	int rc = hm_read_fd(fd, key, HM_REPO_META_MAX * 2, out, len, err);
	close(fd);
	return rc;
}

int hm_repo_seal_meta(const hm_repo *r, const char *partial, const hm_backup_meta *m, hm_crypt_secret *secret,
		      hm_error *err)
{
	unsigned char *enc = NULL;
	size_t enclen;
	char *j = hm_meta_encode(m, 0);
	if (!j)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	int rc = hm_crypt_encrypt_buffer(secret, j, strlen(j), &enc, &enclen, err);
	explicit_bzero(j, strlen(j));
	free(j);
	if (rc == 0)
		rc = put_small(r, partial, m->id, HM_META_SEALED, enc, enclen, err);
	free(enc);
	return rc;
}

int hm_repo_unseal_meta(const hm_repo *r, const hm_backup_meta *m, hm_crypt_secret *secret,
			hm_backup_meta *out, hm_error *err)
{
	char *text = NULL, what[200];
	unsigned char *plain = NULL;
	size_t len, plen;
	int rc = -1;
	if (get_small(r, m->id, HM_META_SEALED, &text, &len, err) != 0)
		return -1;
	if (hm_crypt_decrypt_buffer(secret, text, len, &plain, &plen, err) != 0) {
		hm_error_prefix(err, "%s/%s", m->id, HM_META_SEALED);
		goto cleanup;
	}
	char *z = realloc(plain, plen + 1);
	if (!z) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	plain = (unsigned char *)z;
	plain[plen] = '\0';
	snprintf(what, sizeof what, "%s/%s", m->id, HM_META_SEALED);
	if (hm_meta_decode((char *)plain, what, out, err) != 0)
		goto cleanup;
	if (strcmp(out->id, m->id) != 0 || strcmp(out->stored_sha256, m->stored_sha256) != 0 ||
	    out->stored_size != m->stored_size || strcmp(out->stored_name, m->stored_name) != 0) {
		hm_error_set(err, HM_EXIT_CORRUPT, "%s: names another backup or archive than backup.json",
			     what);
		goto cleanup;
	}
	out->verified = m->verified;
	out->verified_time = m->verified_time;
	snprintf(out->verify_error, sizeof out->verify_error, "%s", m->verify_error);
	rc = 0;
cleanup:
	if (plain) {
		explicit_bzero(plain, plen);
		free(plain);
	}
	free(text);
	return rc;
}

int hm_repo_copy_sealed(const hm_repo *src, const hm_repo *dst, const char *partial, const hm_backup_meta *m,
			hm_error *err)
{
	char *data;
	size_t len;
	if (get_small(src, m->id, HM_META_SEALED, &data, &len, err) != 0)
		return -1;
	int rc = put_small(dst, partial, m->id, HM_META_SEALED, data, len, err);
	free(data);
	return rc;
}

struct hm_repo_stream {
	sink_t d;
	hm_crypt_enc *enc;
	hm_crypt_secret *secret;
	char name[64];
	char disp[4800];
};

int hm_repo_streams(const hm_repo *r)
{
	return r->st != NULL;
}

int hm_repo_stream_open(const hm_repo *r, const hm_backup_meta *m, hm_crypt_secret *secret,
			hm_repo_stream **out, hm_error *err)
{
	return hm_repo_stream_open_in(r, NULL, m, secret, out, err);
}

int hm_repo_stream_open_in(const hm_repo *r, const char *partial, const hm_backup_meta *m,
			   hm_crypt_secret *secret, hm_repo_stream **out, hm_error *err)
{
	hm_repo_stream *s = calloc(1, sizeof *s);
	*out = NULL;
	if (!s || !(s->d.sha = hm_sha256_new())) {
		free(s);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	const char *f = getenv("HIVE_BACKUP_FAULT");
	s->d.fault_mid_upload = f && !strcmp(f, "mid-upload");
	s->d.fd = -1;
	s->d.disp = s->disp;
	s->secret = secret;
	snprintf(s->name, sizeof s->name, "%s%s", m->archive, secret ? ENC_SUFFIX : "");
	/* an unknown size: the driver's 5 MiB parts, doubling every 2000 (10000 hold 303 GiB) */
	if (!r->st && !partial) {
		hm_repo_stream_abort(s);
		return hm_error_set(err, HM_EXIT_INTERNAL, "a local stream needs the partial directory");
	}
	if (dst_open(r, partial, m, s->name, 0, &s->d, s->disp, sizeof s->disp, err) != 0 ||
	    (secret && hm_crypt_enc_new(secret, 0, dst_write, &s->d, &s->enc, err) != 0)) {
		hm_repo_stream_abort(s);
		return -1;
	}
	*out = s;
	return 0;
}

int hm_repo_stream_write(void *ctx, const void *data, size_t len, hm_error *err)
{
	hm_repo_stream *s = ctx;
	return s->enc ? hm_crypt_enc_write(s->enc, data, len, err) : dst_write(&s->d, data, len, err);
}

int hm_repo_stream_commit(hm_repo_stream *s, hm_backup_meta *m, hm_error *err)
{
	if ((s->enc && hm_crypt_enc_finish(s->enc, err) != 0) || dst_finish(&s->d, err) != 0) {
		hm_repo_stream_abort(s);
		return -1;
	}
	snprintf(m->stored_name, sizeof m->stored_name, "%s", s->name);
	m->stored_size = s->d.size;
	hm_sha256_final_hex(s->d.sha, m->stored_sha256);
	s->d.sha = NULL;
	if (s->secret) {
		const char *kid = hm_crypt_secret_key_id(s->secret);
		snprintf(m->encryption, sizeof m->encryption, "%s", HM_META_CIPHER);
		snprintf(m->kdf, sizeof m->kdf, "%s", kid[0] ? "key" : "argon2id");
		snprintf(m->key_id, sizeof m->key_id, "%s", kid);
	}
	hm_repo_stream_abort(s);
	return 0;
}

void hm_repo_stream_abort(hm_repo_stream *s)
{
	if (!s)
		return;
	hm_crypt_enc_free(s->enc);
	if (s->d.w)
		hm_storage_write_abort(s->d.w);
	if (s->d.fd >= 0) { /* a local stream not finished: nothing of it stays */
		close(s->d.fd);
		unlink(s->disp);
	}
	if (s->d.sha)
		hm_sha256_free(s->d.sha);
	free(s);
}
