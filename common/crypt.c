/* Streaming authenticated encryption on libsodium's secretstream. Why this construction: it
 * is libsodium's own answer to "encrypt a stream in chunks" (a per-chunk nonce that advances,
 * a FINAL tag on the last chunk), so reordering, dropping and truncation are detected by the
 * library, not by our bookkeeping; what remains ours is the header (key id, KDF parameters)
 * and refusing bytes after the end. The header is bound to every chunk as additional data,
 * so changing any of its fields (chunk size, key id, salt) breaks the first chunk. */
#include "crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define MAGIC "HMCRYPT" /* 7 bytes + NUL = 8 */
#define KEYID_CONTEXT "hive-migrate key id"
#define FILE_MAX 1024

struct hm_crypt_secret {
	int kdf;
	unsigned char key[HM_CRYPT_KEY_BYTES];
	unsigned char key_id[16];
	char key_id_hex[33];
	char pass[FILE_MAX + 1];
	size_t passlen;
	/* The last key derived from the passphrase, so that reading many objects that share a
	 * salt costs one Argon2id run. */
	int derived;
	unsigned char dsalt[16];
	uint64_t dops, dmem;
	unsigned char dkey[HM_CRYPT_KEY_BYTES];
};

static int init_sodium(hm_error *err)
{
	if (sodium_init() < 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "libsodium failed to initialise");
	return 0;
}

static void key_id(const unsigned char key[HM_CRYPT_KEY_BYTES], unsigned char id[16])
{
	crypto_generichash(id, 16, key, HM_CRYPT_KEY_BYTES, (const unsigned char *)KEYID_CONTEXT,
			   sizeof KEYID_CONTEXT - 1);
}

void hm_crypt_key_id_hex(const unsigned char id[16], char out[33])
{
	sodium_bin2hex(out, 33, id, 16);
}

static hm_crypt_secret *secret_new(hm_error *err)
{
	if (init_sodium(err) != 0)
		return NULL;
	hm_crypt_secret *s = sodium_malloc(sizeof *s);
	if (!s) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory (guarded key memory)");
		return NULL;
	}
	sodium_memzero(s, sizeof *s);
	return s;
}

void hm_crypt_secret_free(hm_crypt_secret *s)
{
	if (s)
		sodium_free(s); /* wipes */
}

const char *hm_crypt_secret_key_id(const hm_crypt_secret *s)
{
	return s->kdf == HM_CRYPT_KDF_RAW ? s->key_id_hex : "";
}

int hm_crypt_secret_from_key(const unsigned char key[HM_CRYPT_KEY_BYTES], hm_crypt_secret **out,
			     hm_error *err)
{
	hm_crypt_secret *s = secret_new(err);
	if (!s)
		return -1;
	s->kdf = HM_CRYPT_KDF_RAW;
	memcpy(s->key, key, HM_CRYPT_KEY_BYTES);
	key_id(s->key, s->key_id);
	hm_crypt_key_id_hex(s->key_id, s->key_id_hex);
	*out = s;
	return 0;
}

int hm_crypt_secret_from_passphrase(const char *pass, size_t len, hm_crypt_secret **out, hm_error *err)
{
	if (len < 8 || len > FILE_MAX)
		return hm_error_set(err, HM_EXIT_INPUT, "a passphrase must have 8 to %d bytes (it has %zu)",
				    FILE_MAX, len);
	hm_crypt_secret *s = secret_new(err);
	if (!s)
		return -1;
	s->kdf = HM_CRYPT_KDF_ARGON2ID;
	memcpy(s->pass, pass, len);
	s->passlen = len;
	*out = s;
	return 0;
}

/* Read a secret file into buf (at most FILE_MAX bytes), refusing one that others can read. */
static int read_secret_file(const char *path, const char *what, unsigned char *buf, size_t *len,
			    hm_error *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return hm_error_errno(err, errno, what, path);
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return hm_error_errno(err, e, "stat", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is not a regular file", path);
	}
	if ((st.st_mode & 077) != 0 || (st.st_uid != geteuid() && st.st_uid != 0)) {
		close(fd);
		hm_error_set(err, HM_EXIT_PERMISSION,
			     "\"%s\" is readable or writable by others (mode %04o, owner %u): refused", path,
			     (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return hm_error_hint(err, "chmod 600 \"%s\" (and make it yours)", path);
	}
	size_t off = 0;
	for (;;) {
		ssize_t n = read(fd, buf + off, FILE_MAX + 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return hm_error_errno(err, e, "read", path);
		}
		if (n == 0)
			break;
		off += (size_t)n;
		if (off > FILE_MAX) {
			close(fd);
			return hm_error_set(err, HM_EXIT_INPUT,
					    "\"%s\" is larger than %d bytes: not a key or passphrase file",
					    path, FILE_MAX);
		}
	}
	close(fd);
	*len = off;
	return 0;
}

int hm_crypt_secret_from_key_file(const char *path, hm_crypt_secret **out, hm_error *err)
{
	unsigned char *buf, key[HM_CRYPT_KEY_BYTES];
	size_t len = 0, klen = 0;
	int rc = -1;
	if (init_sodium(err) != 0)
		return -1;
	if (!(buf = sodium_malloc(FILE_MAX + 1)))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory (guarded key memory)");
	if (read_secret_file(path, "open the key file", buf, &len, err) != 0)
		goto cleanup;
	size_t hexlen = len;
	if (hexlen && buf[hexlen - 1] == '\n')
		hexlen--;
	if (hexlen && buf[hexlen - 1] == '\r')
		hexlen--;
	if (len == HM_CRYPT_KEY_BYTES) {
		memcpy(key, buf, HM_CRYPT_KEY_BYTES);
	} else if (hexlen == 2 * HM_CRYPT_KEY_BYTES &&
		   sodium_hex2bin(key, sizeof key, (const char *)buf, hexlen, NULL, &klen, NULL) == 0 &&
		   klen == HM_CRYPT_KEY_BYTES) {
		/* hex */
	} else {
		hm_error_set(err, HM_EXIT_INPUT,
			     "the key file \"%s\" holds %zu bytes: a key is 32 raw bytes or 64 hex digits",
			     path, len);
		hm_error_hint(err, "make one with: (umask 077; head -c 32 /dev/urandom > \"%s\")", path);
		goto cleanup;
	}
	rc = hm_crypt_secret_from_key(key, out, err);
cleanup:
	sodium_memzero(key, sizeof key);
	sodium_free(buf);
	return rc;
}

int hm_crypt_secret_from_passphrase_file(const char *path, hm_crypt_secret **out, hm_error *err)
{
	unsigned char *buf;
	size_t len = 0;
	int rc = -1;
	if (init_sodium(err) != 0)
		return -1;
	if (!(buf = sodium_malloc(FILE_MAX + 1)))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory (guarded key memory)");
	if (read_secret_file(path, "open the passphrase file", buf, &len, err) == 0) {
		if (len && buf[len - 1] == '\n')
			len--;
		if (len && buf[len - 1] == '\r')
			len--;
		if (memchr(buf, '\0', len))
			hm_error_set(err, HM_EXIT_INPUT, "the passphrase file \"%s\" holds a NUL byte", path);
		else if ((rc = hm_crypt_secret_from_passphrase((const char *)buf, len, out, err)) != 0)
			hm_error_prefix(err, "passphrase file \"%s\"", path);
	}
	sodium_free(buf);
	return rc;
}

/* --- header ---------------------------------------------------------------------------- */
static void put_be32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int is_zero(const unsigned char *p, size_t n)
{
	unsigned char acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

int hm_crypt_header_parse(const unsigned char *buf, size_t len, hm_crypt_header *h, hm_error *err)
{
	memset(h, 0, sizeof *h);
	if (len < HM_CRYPT_HEADER_BYTES)
		return hm_error_set(err, HM_EXIT_CORRUPT,
				    "encrypted data: %zu bytes, shorter than its header (truncated)", len);
	if (memcmp(buf, MAGIC, 8) != 0)
		return hm_error_set(err, HM_EXIT_CORRUPT,
				    "not hive-migrate encrypted data (no HMCRYPT header)");
	h->version = buf[8];
	h->kdf = buf[9];
	if (h->version != 1)
		return hm_error_set(err, HM_EXIT_CORRUPT,
				    "encrypted data of format version %d: this hive-migrate reads version 1",
				    h->version);
	if (buf[10] || buf[11] || !is_zero(buf + 64, 8))
		return hm_error_set(err, HM_EXIT_CORRUPT,
				    "encrypted data: reserved header bytes are not zero");
	h->chunk_size = (uint32_t)get_be(buf + 12, 4);
	if (h->chunk_size < HM_CRYPT_MIN_CHUNK || h->chunk_size > HM_CRYPT_MAX_CHUNK)
		return hm_error_set(err, HM_EXIT_CORRUPT, "encrypted data: chunk size %u out of bounds",
				    h->chunk_size);
	memcpy(h->key_id, buf + 16, 16);
	memcpy(h->salt, buf + 32, 16);
	h->opslimit = get_be(buf + 48, 8);
	h->memlimit = get_be(buf + 56, 8);
	memcpy(h->stream, buf + 72, 24);
	if (h->kdf == HM_CRYPT_KDF_RAW) {
		if (!is_zero(h->salt, 16) || h->opslimit || h->memlimit)
			return hm_error_set(err, HM_EXIT_CORRUPT,
					    "encrypted data: key-derivation fields set for a raw key");
	} else if (h->kdf == HM_CRYPT_KDF_ARGON2ID) {
		if (h->opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
		    h->opslimit > HM_CRYPT_MAX_OPSLIMIT ||
		    h->memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN || h->memlimit > HM_CRYPT_MAX_MEMLIMIT)
			return hm_error_set(
				err, HM_EXIT_CORRUPT,
				"encrypted data: Argon2id parameters out of bounds (ops %llu, memory %llu)",
				(unsigned long long)h->opslimit, (unsigned long long)h->memlimit);
	} else {
		return hm_error_set(err, HM_EXIT_CORRUPT, "encrypted data: unknown key source %d", h->kdf);
	}
	return 0;
}

/* The stream key for a header: the raw key, or the passphrase through Argon2id with the
 * header's salt and parameters. Checks the key id. */
static int stream_key(hm_crypt_secret *s, const hm_crypt_header *h, unsigned char key[HM_CRYPT_KEY_BYTES],
		      hm_error *err)
{
	unsigned char id[16];
	char want[33], have[33];
	if (h->kdf != s->kdf) {
		hm_error_set(err, HM_EXIT_INPUT, "the data was encrypted with a %s, and a %s was given",
			     h->kdf == HM_CRYPT_KDF_RAW ? "key file" : "passphrase",
			     s->kdf == HM_CRYPT_KDF_RAW ? "key file" : "passphrase");
		return hm_error_hint(err, "give the %s it was encrypted with",
				     h->kdf == HM_CRYPT_KDF_RAW ? "key file" : "passphrase file");
	}
	if (s->kdf == HM_CRYPT_KDF_RAW) {
		memcpy(key, s->key, HM_CRYPT_KEY_BYTES);
	} else if (s->derived && memcmp(s->dsalt, h->salt, 16) == 0 && s->dops == h->opslimit &&
		   s->dmem == h->memlimit) {
		memcpy(key, s->dkey, HM_CRYPT_KEY_BYTES);
	} else {
		if (crypto_pwhash(key, HM_CRYPT_KEY_BYTES, s->pass, s->passlen, h->salt, h->opslimit,
				  (size_t)h->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
			return hm_error_set(err, HM_EXIT_INTERNAL,
					    "out of memory deriving the key (Argon2id, %llu MiB)",
					    (unsigned long long)(h->memlimit >> 20));
		memcpy(s->dkey, key, HM_CRYPT_KEY_BYTES);
		memcpy(s->dsalt, h->salt, 16);
		s->dops = h->opslimit;
		s->dmem = h->memlimit;
		s->derived = 1;
	}
	key_id(key, id);
	if (sodium_memcmp(id, h->key_id, 16) != 0) {
		sodium_memzero(key, HM_CRYPT_KEY_BYTES);
		hm_crypt_key_id_hex(h->key_id, want);
		hm_crypt_key_id_hex(id, have);
		if (s->kdf == HM_CRYPT_KDF_RAW) {
			hm_error_set(err, HM_EXIT_INPUT,
				     "wrong key: the data was encrypted with key %.16s, the key file holds "
				     "key %.16s "
				     "(or the header was altered)",
				     want, have);
			return hm_error_hint(err, "give the key file the backup was made with");
		}
		hm_error_set(
			err, HM_EXIT_INPUT,
			"wrong passphrase: it does not derive the key the data was encrypted with (%.16s)",
			want);
		return hm_error_hint(err, "give the passphrase file the backup was made with");
	}
	return 0;
}

/* --- encryption ------------------------------------------------------------------------ */
struct hm_crypt_enc {
	crypto_secretstream_xchacha20poly1305_state st;
	unsigned char header[HM_CRYPT_HEADER_BYTES];
	uint32_t chunk;
	unsigned char *pbuf, *cbuf;
	size_t plen;
	hm_crypt_sink sink;
	void *ctx;
	int finished, failed;
};

void hm_crypt_enc_free(hm_crypt_enc *e)
{
	if (!e)
		return;
	if (e->pbuf) {
		sodium_memzero(e->pbuf, e->chunk);
		free(e->pbuf);
	}
	free(e->cbuf);
	sodium_free(e);
}

int hm_crypt_enc_new(hm_crypt_secret *s, uint32_t chunk_size, hm_crypt_sink sink, void *ctx,
		     hm_crypt_enc **out, hm_error *err)
{
	unsigned char key[HM_CRYPT_KEY_BYTES];
	hm_crypt_header h;
	*out = NULL;
	if (init_sodium(err) != 0)
		return -1;
	if (!chunk_size)
		chunk_size = HM_CRYPT_DEFAULT_CHUNK;
	if (chunk_size < HM_CRYPT_MIN_CHUNK || chunk_size > HM_CRYPT_MAX_CHUNK)
		return hm_error_set(err, HM_EXIT_INTERNAL, "encryption chunk size %u out of bounds",
				    chunk_size);
	hm_crypt_enc *e = sodium_malloc(sizeof *e);
	if (!e)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory (guarded key memory)");
	memset(e, 0, sizeof *e);
	e->chunk = chunk_size;
	e->sink = sink;
	e->ctx = ctx;
	e->pbuf = malloc(chunk_size);
	e->cbuf = malloc((size_t)chunk_size + HM_CRYPT_ABYTES);
	if (!e->pbuf || !e->cbuf) {
		hm_crypt_enc_free(e);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	memset(&h, 0, sizeof h);
	h.kdf = s->kdf;
	if (s->kdf == HM_CRYPT_KDF_ARGON2ID) {
		randombytes_buf(h.salt, sizeof h.salt);
		h.opslimit = HM_CRYPT_OPSLIMIT;
		h.memlimit = HM_CRYPT_MEMLIMIT;
		/* Derive through the same path as reading, so the cache is filled too. */
		s->derived = 0;
		if (crypto_pwhash(key, sizeof key, s->pass, s->passlen, h.salt, h.opslimit,
				  (size_t)h.memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
			hm_crypt_enc_free(e);
			return hm_error_set(err, HM_EXIT_INTERNAL,
					    "out of memory deriving the key (Argon2id)");
		}
		memcpy(s->dkey, key, sizeof key);
		memcpy(s->dsalt, h.salt, 16);
		s->dops = h.opslimit;
		s->dmem = h.memlimit;
		s->derived = 1;
	} else {
		memcpy(key, s->key, sizeof key);
	}
	key_id(key, h.key_id);
	memcpy(e->header, MAGIC, 8);
	e->header[8] = 1;
	e->header[9] = (unsigned char)h.kdf;
	put_be32(e->header + 12, chunk_size);
	memcpy(e->header + 16, h.key_id, 16);
	memcpy(e->header + 32, h.salt, 16);
	put_be64(e->header + 48, h.opslimit);
	put_be64(e->header + 56, h.memlimit);
	crypto_secretstream_xchacha20poly1305_init_push(&e->st, e->header + 72, key);
	sodium_memzero(key, sizeof key);
	if (sink(ctx, e->header, sizeof e->header, err) != 0) {
		hm_crypt_enc_free(e);
		return -1;
	}
	*out = e;
	return 0;
}

static int push(hm_crypt_enc *e, unsigned char tag, hm_error *err)
{
	unsigned long long clen = 0;
	crypto_secretstream_xchacha20poly1305_push(&e->st, e->cbuf, &clen, e->pbuf, e->plen, e->header,
						   sizeof e->header, tag);
	e->plen = 0;
	if (e->sink(e->ctx, e->cbuf, (size_t)clen, err) != 0) {
		e->failed = 1;
		return -1;
	}
	return 0;
}

int hm_crypt_enc_write(hm_crypt_enc *e, const void *data, size_t len, hm_error *err)
{
	const unsigned char *p = data;
	if (e->failed || e->finished)
		return hm_error_set(err, HM_EXIT_INTERNAL, "write to a finished or failed encryption stream");
	while (len) {
		/* A full buffer is pushed only once more data arrives: the last chunk must carry
		 * the FINAL tag, and only finish knows which one that is. */
		if (e->plen == e->chunk &&
		    push(e, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, err) != 0)
			return -1;
		size_t n = e->chunk - e->plen;
		if (n > len)
			n = len;
		memcpy(e->pbuf + e->plen, p, n);
		e->plen += n;
		p += n;
		len -= n;
	}
	return 0;
}

int hm_crypt_enc_finish(hm_crypt_enc *e, hm_error *err)
{
	if (e->failed || e->finished)
		return hm_error_set(err, HM_EXIT_INTERNAL,
				    "finish of a finished or failed encryption stream");
	if (push(e, crypto_secretstream_xchacha20poly1305_TAG_FINAL, err) != 0)
		return -1;
	e->finished = 1;
	return 0;
}

/* --- decryption ------------------------------------------------------------------------ */
struct hm_crypt_dec {
	crypto_secretstream_xchacha20poly1305_state st;
	hm_crypt_secret *secret;
	unsigned char header[HM_CRYPT_HEADER_BYTES];
	size_t hlen;
	uint32_t chunk;
	unsigned char *cbuf, *pbuf;
	size_t clen;
	uint64_t nchunk;
	int started, final, failed;
	hm_crypt_sink sink;
	void *ctx;
};

void hm_crypt_dec_free(hm_crypt_dec *d)
{
	if (!d)
		return;
	if (d->pbuf) {
		sodium_memzero(d->pbuf, d->chunk);
		free(d->pbuf);
	}
	free(d->cbuf);
	sodium_free(d);
}

int hm_crypt_dec_new(hm_crypt_secret *s, hm_crypt_sink sink, void *ctx, hm_crypt_dec **out, hm_error *err)
{
	*out = NULL;
	if (init_sodium(err) != 0)
		return -1;
	hm_crypt_dec *d = sodium_malloc(sizeof *d);
	if (!d)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory (guarded key memory)");
	memset(d, 0, sizeof *d);
	d->secret = s;
	d->sink = sink;
	d->ctx = ctx;
	*out = d;
	return 0;
}

static int dec_fail(hm_crypt_dec *d)
{
	d->failed = 1;
	return -1;
}

static int start(hm_crypt_dec *d, hm_error *err)
{
	hm_crypt_header h;
	unsigned char key[HM_CRYPT_KEY_BYTES];
	if (hm_crypt_header_parse(d->header, d->hlen, &h, err) != 0 ||
	    stream_key(d->secret, &h, key, err) != 0)
		return dec_fail(d);
	int bad = crypto_secretstream_xchacha20poly1305_init_pull(&d->st, h.stream, key) != 0;
	sodium_memzero(key, sizeof key);
	if (bad) {
		hm_error_set(err, HM_EXIT_CORRUPT, "encrypted data: invalid stream header");
		return dec_fail(d);
	}
	d->chunk = h.chunk_size;
	d->cbuf = malloc((size_t)d->chunk + HM_CRYPT_ABYTES);
	d->pbuf = malloc(d->chunk);
	if (!d->cbuf || !d->pbuf) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		return dec_fail(d);
	}
	d->started = 1;
	return 0;
}

static int pull(hm_crypt_dec *d, hm_error *err)
{
	unsigned long long mlen = 0;
	unsigned char tag = 0;
	if (d->clen < HM_CRYPT_ABYTES) {
		hm_error_set(err, HM_EXIT_CORRUPT, "encrypted data is truncated: chunk %llu is cut short",
			     (unsigned long long)d->nchunk + 1);
		return dec_fail(d);
	}
	if (crypto_secretstream_xchacha20poly1305_pull(&d->st, d->pbuf, &mlen, &tag, d->cbuf, d->clen,
						       d->header, sizeof d->header) != 0) {
		hm_error_set(err, HM_EXIT_CORRUPT,
			     "encrypted data failed authentication at chunk %llu (byte %llu): tampered, "
			     "reordered or cut",
			     (unsigned long long)d->nchunk + 1,
			     (unsigned long long)(HM_CRYPT_HEADER_BYTES +
						  d->nchunk * (d->chunk + HM_CRYPT_ABYTES)));
		return dec_fail(d);
	}
	d->clen = 0;
	d->nchunk++;
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		d->final = 1;
	} else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
		hm_error_set(err, HM_EXIT_CORRUPT, "encrypted data: unexpected tag %u at chunk %llu", tag,
			     (unsigned long long)d->nchunk);
		return dec_fail(d);
	}
	if (mlen && d->sink(d->ctx, d->pbuf, (size_t)mlen, err) != 0)
		return dec_fail(d);
	return 0;
}

int hm_crypt_dec_write(hm_crypt_dec *d, const void *data, size_t len, hm_error *err)
{
	const unsigned char *p = data;
	if (d->failed)
		return hm_error_set(err, HM_EXIT_INTERNAL, "write to a failed decryption stream");
	while (len) {
		if (!d->started) {
			size_t n = HM_CRYPT_HEADER_BYTES - d->hlen;
			if (n > len)
				n = len;
			memcpy(d->header + d->hlen, p, n);
			d->hlen += n;
			p += n;
			len -= n;
			if (d->hlen == HM_CRYPT_HEADER_BYTES && start(d, err) != 0)
				return -1;
			continue;
		}
		if (d->final) {
			hm_error_set(err, HM_EXIT_CORRUPT,
				     "encrypted data has bytes after its final chunk (extended)");
			return dec_fail(d);
		}
		size_t room = d->chunk + HM_CRYPT_ABYTES - d->clen;
		size_t n = room < len ? room : len;
		memcpy(d->cbuf + d->clen, p, n);
		d->clen += n;
		p += n;
		len -= n;
		if (d->clen == d->chunk + HM_CRYPT_ABYTES && pull(d, err) != 0)
			return -1;
	}
	return 0;
}

int hm_crypt_dec_finish(hm_crypt_dec *d, hm_error *err)
{
	if (d->failed)
		return hm_error_set(err, HM_EXIT_INTERNAL, "finish of a failed decryption stream");
	if (!d->started) {
		hm_error_set(err, HM_EXIT_CORRUPT,
			     "encrypted data is truncated: %zu bytes, shorter than its header", d->hlen);
		return dec_fail(d);
	}
	if (!d->final && d->clen && pull(d, err) != 0)
		return -1;
	if (!d->final) {
		hm_error_set(err, HM_EXIT_CORRUPT,
			     "encrypted data is truncated: it ends after chunk %llu without its final chunk",
			     (unsigned long long)d->nchunk);
		return dec_fail(d);
	}
	return 0;
}

/* --- pull reader ----------------------------------------------------------------------- */
struct hm_crypt_reader {
	hm_crypt_dec *dec;
	hm_crypt_source src;
	void *ctx;
	unsigned char *out;
	size_t out_len, out_off, out_cap;
	unsigned char in[4096];
	int eof;
};

static int reader_sink(void *ctx, const void *data, size_t len, hm_error *err)
{
	hm_crypt_reader *r = ctx;
	if (r->out_len + len > r->out_cap) {
		size_t cap = r->out_len + len;
		unsigned char *p = realloc(r->out, cap);
		if (!p)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		r->out = p;
		r->out_cap = cap;
	}
	memcpy(r->out + r->out_len, data, len);
	r->out_len += len;
	return 0;
}

int hm_crypt_reader_new(hm_crypt_secret *s, hm_crypt_source src, void *ctx, hm_crypt_reader **out,
			hm_error *err)
{
	hm_crypt_reader *r = calloc(1, sizeof *r);
	*out = NULL;
	if (!r)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	if (hm_crypt_dec_new(s, reader_sink, r, &r->dec, err) != 0) {
		free(r);
		return -1;
	}
	r->src = src;
	r->ctx = ctx;
	*out = r;
	return 0;
}

int hm_crypt_reader_read(hm_crypt_reader *r, void *buf, size_t len, size_t *got, hm_error *err)
{
	*got = 0;
	while (r->out_off == r->out_len) {
		if (r->eof)
			return 0;
		r->out_off = r->out_len = 0;
		size_t n = 0;
		/* Small reads: a write completes at most a few chunks, so the output buffer stays
		 * near one chunk's size. */
		if (r->src(r->ctx, r->in, sizeof r->in, &n, err) != 0)
			return -1;
		if (n == 0) {
			if (hm_crypt_dec_finish(r->dec, err) != 0)
				return -1;
			r->eof = 1;
			continue;
		}
		if (hm_crypt_dec_write(r->dec, r->in, n, err) != 0)
			return -1;
	}
	size_t n = r->out_len - r->out_off;
	if (n > len)
		n = len;
	memcpy(buf, r->out + r->out_off, n);
	r->out_off += n;
	*got = n;
	return 0;
}

void hm_crypt_reader_free(hm_crypt_reader *r)
{
	if (!r)
		return;
	hm_crypt_dec_free(r->dec);
	if (r->out) {
		sodium_memzero(r->out, r->out_cap);
		free(r->out);
	}
	free(r);
}

/* --- whole buffers --------------------------------------------------------------------- */
typedef struct membuf {
	unsigned char *p;
	size_t len, cap;
} membuf;

static int membuf_sink(void *ctx, const void *data, size_t len, hm_error *err)
{
	membuf *m = ctx;
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 256;
		while (cap < m->len + len)
			cap *= 2;
		unsigned char *p = realloc(m->p, cap);
		if (!p)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, data, len);
	m->len += len;
	return 0;
}

int hm_crypt_encrypt_buffer(hm_crypt_secret *s, const void *in, size_t len, unsigned char **out,
			    size_t *outlen, hm_error *err)
{
	membuf m = {NULL, 0, 0};
	hm_crypt_enc *e;
	int rc = -1;
	if (hm_crypt_enc_new(s, 0, membuf_sink, &m, &e, err) != 0)
		goto cleanup;
	if (hm_crypt_enc_write(e, in, len, err) == 0 && hm_crypt_enc_finish(e, err) == 0)
		rc = 0;
	hm_crypt_enc_free(e);
cleanup:
	if (rc != 0) {
		free(m.p);
		m.p = NULL;
		m.len = 0;
	}
	*out = m.p;
	*outlen = m.len;
	return rc;
}

int hm_crypt_decrypt_buffer(hm_crypt_secret *s, const void *in, size_t len, unsigned char **out,
			    size_t *outlen, hm_error *err)
{
	membuf m = {NULL, 0, 0};
	hm_crypt_dec *d;
	int rc = -1;
	if (hm_crypt_dec_new(s, membuf_sink, &m, &d, err) != 0)
		goto cleanup;
	if (hm_crypt_dec_write(d, in, len, err) == 0 && hm_crypt_dec_finish(d, err) == 0)
		rc = 0;
	hm_crypt_dec_free(d);
cleanup:
	if (rc != 0) {
		if (m.p)
			sodium_memzero(m.p, m.cap);
		free(m.p);
		m.p = NULL;
		m.len = 0;
	}
	*out = m.p;
	*outlen = m.len;
	return rc;
}
