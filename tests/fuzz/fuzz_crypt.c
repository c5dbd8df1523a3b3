/* libFuzzer target: the decryptor (common/crypt.c). Mode 0 feeds the input as ciphertext to
 * both decryption APIs with a fixed key: it must fail cleanly (forging a chunk is not
 * something a fuzzer finds). Mode 1 encrypts the input with a small chunk size, then
 * changes the ciphertext as the next bytes say (flip a byte, cut, append, swap two chunks):
 * an unchanged stream must decrypt to the input, a changed one must be refused, with no
 * byte of a refused chunk delivered. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/crypt.h"

typedef struct buf {
	unsigned char *p;
	size_t len, cap;
} buf;

static int to_buf(void *ctx, const void *data, size_t len, hm_error *err)
{
	(void)err;
	buf *b = ctx;
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2 + 64;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

typedef struct src {
	const unsigned char *p;
	size_t len, off;
} src;

static int from_src(void *ctx, void *out, size_t len, size_t *got, hm_error *err)
{
	(void)err;
	src *s = ctx;
	size_t n = s->len - s->off < len ? s->len - s->off : len;
	if (n > 777)
		n = 777;
	memcpy(out, s->p + s->off, n);
	s->off += n;
	*got = n;
	return 0;
}

static int decrypt_push(hm_crypt_secret *k, const unsigned char *p, size_t n, buf *out)
{
	hm_crypt_dec *d;
	hm_error err;
	if (hm_crypt_dec_new(k, to_buf, out, &d, &err) != 0)
		abort();
	int rc = hm_crypt_dec_write(d, p, n, &err);
	if (rc == 0)
		rc = hm_crypt_dec_finish(d, &err);
	hm_crypt_dec_free(d);
	return rc;
}

static int decrypt_pull(hm_crypt_secret *k, const unsigned char *p, size_t n, buf *out)
{
	hm_crypt_reader *r;
	hm_error err;
	src s = {p, n, 0};
	unsigned char tmp[513];
	if (hm_crypt_reader_new(k, from_src, &s, &r, &err) != 0)
		abort();
	int rc;
	for (;;) {
		size_t got;
		rc = hm_crypt_reader_read(r, tmp, sizeof tmp, &got, &err);
		if (rc != 0 || got == 0)
			break;
		to_buf(out, tmp, got, &err);
	}
	hm_crypt_reader_free(r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static hm_crypt_secret *key;
	hm_error err;
	if (!key) {
		unsigned char k[HM_CRYPT_KEY_BYTES];
		memset(k, 0x5a, sizeof k);
		if (hm_crypt_secret_from_key(k, &key, &err) != 0)
			abort();
	}
	if (size < 1)
		return 0;
	buf out = {0}, out2 = {0}, ct = {0};
	if ((data[0] & 1) == 0) {
		if (decrypt_push(key, data + 1, size - 1, &out) == 0 ||
		    decrypt_pull(key, data + 1, size - 1, &out2) == 0)
			abort(); /* an unforgeable stream accepted */
		goto done;
	}
	/* Mode 1: [1][mutation][pos lo][pos hi][plaintext...] */
	if (size < 4)
		return 0;
	const unsigned char *pt = data + 4;
	size_t ptlen = size - 4;
	hm_crypt_enc *e;
	if (hm_crypt_enc_new(key, HM_CRYPT_MIN_CHUNK, to_buf, &ct, &e, &err) != 0 ||
	    hm_crypt_enc_write(e, pt, ptlen, &err) != 0 || hm_crypt_enc_finish(e, &err) != 0)
		abort();
	hm_crypt_enc_free(e);
	size_t pos = ((size_t)data[2] | (size_t)data[3] << 8) % ct.len;
	size_t chunk = HM_CRYPT_MIN_CHUNK + HM_CRYPT_ABYTES;
	int changed = 1;
	switch (data[1] % 5) {
	case 0:
		changed = 0;
		break;
	case 1:
		ct.p[pos] ^= (unsigned char)(data[1] | 1);
		break;
	case 2:
		ct.len = pos; /* cut */
		break;
	case 3: {
		unsigned char z = data[1];
		to_buf(&ct, &z, 1, &err); /* extended */
		break;
	}
	default: {
		size_t n = (ct.len - HM_CRYPT_HEADER_BYTES) / chunk;
		if (n < 2) {
			changed = 0;
			break;
		}
		size_t a = HM_CRYPT_HEADER_BYTES, b = HM_CRYPT_HEADER_BYTES + chunk;
		unsigned char *tmp = malloc(chunk);
		memcpy(tmp, ct.p + a, chunk);
		memmove(ct.p + a, ct.p + b, chunk);
		memcpy(ct.p + b, tmp, chunk);
		free(tmp);
	}
	}
	int rc1 = decrypt_push(key, ct.p, ct.len, &out), rc2 = decrypt_pull(key, ct.p, ct.len, &out2);
	if (!changed) {
		if (rc1 != 0 || rc2 != 0 || out.len != ptlen || out2.len != ptlen ||
		    (ptlen && (memcmp(out.p, pt, ptlen) != 0 || memcmp(out2.p, pt, ptlen) != 0)))
			abort();
	} else {
		if (rc1 == 0 || rc2 == 0)
			abort();
		/* What came out before the refusal is a prefix of the input, in whole chunks. */
		if (out.len > ptlen || (out.len && memcmp(out.p, pt, out.len) != 0) ||
		    out.len % HM_CRYPT_MIN_CHUNK)
			abort();
	}
done:
	free(out.p);
	free(out2.p);
	free(ct.p);
	return 0;
}
