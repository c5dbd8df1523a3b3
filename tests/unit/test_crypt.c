/* common/crypt.c: streaming authenticated encryption. Round trips of every size around the
 * chunk boundaries through both decryption APIs, then every way the ciphertext can be wrong:
 * wrong key or passphrase, a flipped byte anywhere (header or chunk), chunks reordered or
 * dropped, the stream truncated or extended. Each must fail with a clear error, and no byte
 * of an unauthenticated chunk may reach the output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/crypt.h"
#include "../../common/fsutil.h"

#define CHUNK 1024u
#define CT_CHUNK (CHUNK + HM_CRYPT_ABYTES)

typedef struct buf {
	unsigned char *p;
	size_t len, cap;
} buf;

static int to_buf(void *ctx, const void *data, size_t len, hm_error *err)
{
	(void)err;
	buf *b = ctx;
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static hm_crypt_secret *raw_key(unsigned char fill)
{
	unsigned char k[HM_CRYPT_KEY_BYTES];
	hm_crypt_secret *s;
	hm_error err;
	memset(k, fill, sizeof k);
	assert_int_equal(hm_crypt_secret_from_key(k, &s, &err), 0);
	return s;
}

static unsigned char *pattern(size_t n)
{
	unsigned char *p = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 131 + (i >> 8));
	return p;
}

/* Encrypt in uneven writes (7, 1000, 1, ... bytes). */
static buf encrypt(hm_crypt_secret *s, const unsigned char *in, size_t n, uint32_t chunk)
{
	buf out = {0};
	hm_crypt_enc *e;
	hm_error err;
	static const size_t steps[] = {7, 1000, 1, 4096, 3};
	assert_int_equal(hm_crypt_enc_new(s, chunk, to_buf, &out, &e, &err), 0);
	for (size_t off = 0, i = 0; off < n; i++) {
		size_t k = steps[i % 5] < n - off ? steps[i % 5] : n - off;
		assert_int_equal(hm_crypt_enc_write(e, in + off, k, &err), 0);
		off += k;
	}
	assert_int_equal(hm_crypt_enc_finish(e, &err), 0);
	hm_crypt_enc_free(e);
	return out;
}

/* Push decryption in uneven writes: 0 and the plaintext, or -1 with err and what came out
 * before the failure. */
static int decrypt(hm_crypt_secret *s, const buf *ct, buf *pt, hm_error *err)
{
	hm_crypt_dec *d;
	memset(pt, 0, sizeof *pt);
	if (hm_crypt_dec_new(s, to_buf, pt, &d, err) != 0)
		return -1;
	int rc = 0;
	for (size_t off = 0; off < ct->len && rc == 0;) {
		size_t k = 333 < ct->len - off ? 333 : ct->len - off;
		rc = hm_crypt_dec_write(d, ct->p + off, k, err);
		off += k;
	}
	if (rc == 0)
		rc = hm_crypt_dec_finish(d, err);
	hm_crypt_dec_free(d);
	return rc;
}

typedef struct src {
	const buf *b;
	size_t off;
} src;

static int from_buf(void *ctx, void *out, size_t len, size_t *got, hm_error *err)
{
	(void)err;
	src *s = ctx;
	size_t n = s->b->len - s->off;
	if (n > len)
		n = len;
	if (n > 500)
		n = 500; /* a source that gives less than asked */
	memcpy(out, s->b->p + s->off, n);
	s->off += n;
	*got = n;
	return 0;
}

static int read_all(hm_crypt_secret *s, const buf *ct, buf *pt, hm_error *err)
{
	hm_crypt_reader *r;
	src sc = {ct, 0};
	unsigned char tmp[700];
	memset(pt, 0, sizeof *pt);
	if (hm_crypt_reader_new(s, from_buf, &sc, &r, err) != 0)
		return -1;
	for (;;) {
		size_t got;
		if (hm_crypt_reader_read(r, tmp, sizeof tmp, &got, err) != 0) {
			hm_crypt_reader_free(r);
			return -1;
		}
		if (!got)
			break;
		to_buf(pt, tmp, got, err);
	}
	hm_crypt_reader_free(r);
	return 0;
}

static void test_round_trips(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17, 100000};
	hm_crypt_secret *s = raw_key(1);
	hm_error err;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		unsigned char *p = pattern(n);
		buf ct = encrypt(s, p, n, CHUNK), pt, pt2;
		/* header + ceil chunks (an exact multiple ends with a full FINAL chunk; empty input
		 * is one empty FINAL chunk) */
		size_t chunks = n ? (n + CHUNK - 1) / CHUNK : 1;
		assert_int_equal(ct.len, HM_CRYPT_HEADER_BYTES + n + chunks * HM_CRYPT_ABYTES);
		assert_int_equal(decrypt(s, &ct, &pt, &err), 0);
		assert_int_equal(pt.len, n);
		assert_true(n == 0 || memcmp(pt.p, p, n) == 0);
		assert_int_equal(read_all(s, &ct, &pt2, &err), 0);
		assert_int_equal(pt2.len, n);
		assert_true(n == 0 || memcmp(pt2.p, p, n) == 0);
		free(p);
		free(ct.p);
		free(pt.p);
		free(pt2.p);
	}
	/* Two encryptions of the same data differ (a fresh nonce each time). */
	unsigned char *p = pattern(100);
	buf a = encrypt(s, p, 100, 0), b = encrypt(s, p, 100, 0);
	assert_int_equal(a.len, b.len);
	assert_memory_not_equal(a.p + 72, b.p + 72, a.len - 72);
	free(a.p);
	free(b.p);
	free(p);
	hm_crypt_secret_free(s);
}

static void test_buffers_and_default_chunk(void **state)
{
	(void)state;
	hm_crypt_secret *s = raw_key(2);
	hm_error err;
	unsigned char *p = pattern(200000), *ct, *pt;
	size_t ctlen, ptlen;
	assert_int_equal(hm_crypt_encrypt_buffer(s, p, 200000, &ct, &ctlen, &err), 0);
	hm_crypt_header h;
	assert_int_equal(hm_crypt_header_parse(ct, ctlen, &h, &err), 0);
	assert_int_equal(h.chunk_size, HM_CRYPT_DEFAULT_CHUNK);
	assert_int_equal(h.kdf, HM_CRYPT_KDF_RAW);
	char hex[33];
	hm_crypt_key_id_hex(h.key_id, hex);
	assert_string_equal(hex, hm_crypt_secret_key_id(s));
	assert_int_equal(hm_crypt_decrypt_buffer(s, ct, ctlen, &pt, &ptlen, &err), 0);
	assert_int_equal(ptlen, 200000);
	assert_memory_equal(pt, p, 200000);
	free(p);
	free(ct);
	free(pt);
	hm_crypt_secret_free(s);
}

static void expect_fail(hm_crypt_secret *s, const buf *ct, size_t max_out, const char *words, hm_exit code)
{
	buf pt;
	hm_error err;
	memset(&err, 0, sizeof err);
	assert_int_equal(decrypt(s, ct, &pt, &err), -1);
	assert_int_equal(err.code, code);
	if (words && !strstr(err.message, words))
		fail_msg("\"%s\" does not say \"%s\"", err.message, words);
	/* Only chunks that authenticated reached the output. */
	assert_true(pt.len <= max_out);
	free(pt.p);
	assert_int_equal(read_all(s, ct, &pt, &err), -1);
	assert_int_equal(err.code, code);
	free(pt.p);
}

static void expect_corrupt(hm_crypt_secret *s, const buf *ct, size_t max_out, const char *words)
{
	expect_fail(s, ct, max_out, words, HM_EXIT_CORRUPT);
}

static void test_tampered(void **state)
{
	(void)state;
	hm_crypt_secret *s = raw_key(3);
	unsigned char *p = pattern(4 * CHUNK + 10);
	buf ct = encrypt(s, p, 4 * CHUNK + 10, CHUNK);
	/* Every header field, a byte in the first, a middle and the last chunk, and a tag. */
	static const size_t at[] = {0, 8, 9, 13, 20, 40, 60, 80, 95, 96, 200, 96 + 2 * CT_CHUNK + 5};
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		buf t = {malloc(ct.len), ct.len, ct.len};
		memcpy(t.p, ct.p, ct.len);
		t.p[at[i]] ^= 0x40;
		size_t before = at[i] < HM_CRYPT_HEADER_BYTES
					? 0
					: (at[i] - HM_CRYPT_HEADER_BYTES) / CT_CHUNK * CHUNK;
		if (at[i] >= 16 && at[i] < 32) /* the key id: indistinguishable from a wrong key */
			expect_fail(s, &t, 0, "wrong key", HM_EXIT_INPUT);
		else
			expect_corrupt(s, &t, before, NULL);
		free(t.p);
	}
	buf t = {malloc(ct.len), ct.len, ct.len};
	memcpy(t.p, ct.p, ct.len);
	t.p[ct.len - 1] ^= 1; /* the final chunk's MAC */
	expect_corrupt(s, &t, 4 * CHUNK, "authentication");
	free(t.p);
	free(ct.p);
	free(p);
	hm_crypt_secret_free(s);
}

static void test_reordered_and_dropped(void **state)
{
	(void)state;
	hm_crypt_secret *s = raw_key(4);
	unsigned char *p = pattern(4 * CHUNK + 10);
	buf ct = encrypt(s, p, 4 * CHUNK + 10, CHUNK);
	/* Swap chunks 2 and 3. */
	buf t = {malloc(ct.len), ct.len, ct.len};
	memcpy(t.p, ct.p, ct.len);
	memcpy(t.p + HM_CRYPT_HEADER_BYTES + CT_CHUNK, ct.p + HM_CRYPT_HEADER_BYTES + 2 * CT_CHUNK, CT_CHUNK);
	memcpy(t.p + HM_CRYPT_HEADER_BYTES + 2 * CT_CHUNK, ct.p + HM_CRYPT_HEADER_BYTES + CT_CHUNK, CT_CHUNK);
	expect_corrupt(s, &t, CHUNK, "chunk 2");
	/* Drop chunk 2. */
	t.len = ct.len - CT_CHUNK;
	memcpy(t.p, ct.p, HM_CRYPT_HEADER_BYTES + CT_CHUNK);
	memcpy(t.p + HM_CRYPT_HEADER_BYTES + CT_CHUNK, ct.p + HM_CRYPT_HEADER_BYTES + 2 * CT_CHUNK,
	       ct.len - HM_CRYPT_HEADER_BYTES - 2 * CT_CHUNK);
	expect_corrupt(s, &t, CHUNK, "chunk 2");
	/* The stream of another encryption under the same key, spliced in: fails too. */
	buf other = encrypt(s, p, 4 * CHUNK + 10, CHUNK);
	memcpy(t.p, ct.p, ct.len);
	t.len = ct.len;
	memcpy(t.p + HM_CRYPT_HEADER_BYTES + CT_CHUNK, other.p + HM_CRYPT_HEADER_BYTES + CT_CHUNK, CT_CHUNK);
	expect_corrupt(s, &t, CHUNK, NULL);
	free(other.p);
	free(t.p);
	free(ct.p);
	free(p);
	hm_crypt_secret_free(s);
}

static void test_truncated_and_extended(void **state)
{
	(void)state;
	hm_crypt_secret *s = raw_key(5);
	unsigned char *p = pattern(3 * CHUNK);
	buf ct = encrypt(s, p, 3 * CHUNK, CHUNK); /* three full chunks, the last one FINAL */
	buf t = {malloc(ct.len + 2 * CT_CHUNK), 0, ct.len + 2 * CT_CHUNK};
	/* At a chunk boundary: the FINAL chunk is missing. */
	memcpy(t.p, ct.p, ct.len);
	t.len = ct.len - CT_CHUNK;
	expect_corrupt(s, &t, 2 * CHUNK, "truncated");
	/* Inside a chunk, inside a MAC, inside the header, and nothing at all. */
	static const size_t cut[] = {HM_CRYPT_HEADER_BYTES + CT_CHUNK + 100, HM_CRYPT_HEADER_BYTES + 10,
				     HM_CRYPT_HEADER_BYTES, 50, 0};
	for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
		t.len = cut[i];
		expect_corrupt(s, &t, CHUNK, NULL);
	}
	/* Extended: one byte more, and a whole chunk replayed after the end. */
	t.len = ct.len;
	t.p[t.len++] = 0;
	expect_corrupt(s, &t, 3 * CHUNK, "after its final chunk");
	t.len = ct.len;
	memcpy(t.p + ct.len, ct.p + ct.len - CT_CHUNK, CT_CHUNK);
	t.len += CT_CHUNK;
	expect_corrupt(s, &t, 3 * CHUNK, "after its final chunk");
	free(t.p);
	free(ct.p);
	free(p);
	hm_crypt_secret_free(s);
}

static void test_wrong_key(void **state)
{
	(void)state;
	hm_crypt_secret *s = raw_key(6), *other = raw_key(7);
	unsigned char *p = pattern(5000);
	buf ct = encrypt(s, p, 5000, CHUNK), pt;
	hm_error err;
	assert_int_equal(decrypt(other, &ct, &pt, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "wrong key"));
	assert_int_equal(pt.len, 0); /* refused before any chunk */
	free(pt.p);
	free(ct.p);
	free(p);
	hm_crypt_secret_free(s);
	hm_crypt_secret_free(other);
}

static void test_passphrase(void **state)
{
	(void)state;
	hm_crypt_secret *s, *wrong, *key = raw_key(8);
	hm_error err;
	assert_int_equal(hm_crypt_secret_from_passphrase("correct horse battery", 21, &s, &err), 0);
	assert_int_equal(hm_crypt_secret_from_passphrase("short", 5, &wrong, &err), -1);
	assert_int_equal(hm_crypt_secret_from_passphrase("incorrect horse battery", 23, &wrong, &err), 0);
	unsigned char *p = pattern(3000);
	buf ct = encrypt(s, p, 3000, CHUNK), pt;
	hm_crypt_header h;
	assert_int_equal(hm_crypt_header_parse(ct.p, ct.len, &h, &err), 0);
	assert_int_equal(h.kdf, HM_CRYPT_KDF_ARGON2ID);
	assert_int_equal(h.opslimit, HM_CRYPT_OPSLIMIT);
	assert_int_equal(h.memlimit, HM_CRYPT_MEMLIMIT);
	assert_int_equal(decrypt(s, &ct, &pt, &err), 0); /* the derived key is cached: no second run */
	assert_int_equal(pt.len, 3000);
	assert_memory_equal(pt.p, p, 3000);
	free(pt.p);
	assert_int_equal(decrypt(wrong, &ct, &pt, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "wrong passphrase"));
	free(pt.p);
	/* A key file for a passphrase backup (and the reverse) is named as such. */
	assert_int_equal(decrypt(key, &ct, &pt, &err), -1);
	assert_non_null(strstr(err.message, "encrypted with a passphrase"));
	free(pt.p);
	free(ct.p);
	free(p);
	hm_crypt_secret_free(s);
	hm_crypt_secret_free(wrong);
	hm_crypt_secret_free(key);
}

static void test_header_bounds(void **state)
{
	(void)state;
	hm_crypt_secret *s;
	hm_error err;
	hm_crypt_header h;
	assert_int_equal(hm_crypt_secret_from_passphrase("a passphrase", 12, &s, &err), 0);
	/* A hand-made passphrase header asking for 4 GiB of Argon2id memory is refused
	 * before anything is derived (an attacker's denial of service). */
	unsigned char hdr[HM_CRYPT_HEADER_BYTES];
	memset(hdr, 0, sizeof hdr);
	memcpy(hdr, "HMCRYPT", 8);
	hdr[8] = 1;
	hdr[9] = HM_CRYPT_KDF_ARGON2ID;
	hdr[14] = 4; /* chunk 1024 */
	hdr[55] = 3;
	hdr[59] = 1; /* memlimit 2^32 */
	assert_int_equal(hm_crypt_header_parse(hdr, sizeof hdr, &h, &err), -1);
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
	buf ct = {hdr, sizeof hdr, sizeof hdr}, pt;
	assert_int_equal(decrypt(s, &ct, &pt, &err), -1);
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
	free(pt.p);
	hdr[59] = 0;
	hdr[8] = 2; /* a future version */
	assert_int_equal(hm_crypt_header_parse(hdr, sizeof hdr, &h, &err), -1);
	assert_non_null(strstr(err.message, "version 2"));
	hdr[8] = 1;
	hdr[14] = 0xff; /* chunk size out of bounds */
	hdr[13] = 0xff;
	assert_int_equal(hm_crypt_header_parse(hdr, sizeof hdr, &h, &err), -1);
	assert_int_equal(hm_crypt_header_parse((const unsigned char *)"HMCRYPT", 8, &h, &err), -1);
	assert_int_equal(
		hm_crypt_header_parse(
			(const unsigned char *)"plain text, not encrypted at all. plain text, "
					       "not encrypted at all. plain text, not encrypted at all.",
			96, &h, &err),
		-1);
	assert_non_null(strstr(err.message, "HMCRYPT"));
	hm_crypt_secret_free(s);
}

static char dir[64];

static void write_file(const char *name, const void *data, size_t len, mode_t mode, char *path)
{
	snprintf(path, 128, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fwrite(data, 1, len, f);
	fclose(f);
	chmod(path, mode);
}

static void test_key_files(void **state)
{
	(void)state;
	char path[128];
	hm_crypt_secret *s, *t;
	hm_error err;
	unsigned char raw[32];
	for (int i = 0; i < 32; i++)
		raw[i] = (unsigned char)(i * 7 + 1);
	write_file("raw", raw, 32, 0600, path);
	assert_int_equal(hm_crypt_secret_from_key_file(path, &s, &err), 0);
	char hex[66];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02X", raw[i]);
	hex[64] = '\n';
	write_file("hex", hex, 65, 0400, path);
	assert_int_equal(hm_crypt_secret_from_key_file(path, &t, &err), 0);
	assert_string_equal(hm_crypt_secret_key_id(s), hm_crypt_secret_key_id(t)); /* the same key */
	hm_crypt_secret_free(t);
	hm_crypt_secret_free(s);
	write_file("short", raw, 31, 0600, path);
	assert_int_equal(hm_crypt_secret_from_key_file(path, &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "32 raw bytes or 64 hex digits"));
	hex[3] = 'g';
	write_file("badhex", hex, 65, 0600, path);
	assert_int_equal(hm_crypt_secret_from_key_file(path, &s, &err), -1);
	write_file("open", raw, 32, 0644, path);
	assert_int_equal(hm_crypt_secret_from_key_file(path, &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_PERMISSION);
	assert_int_equal(hm_crypt_secret_from_key_file("/nonexistent/key", &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	/* Passphrase files: one trailing newline is not part of it; too short is refused. */
	write_file("pass", "a fine passphrase\n", 18, 0600, path);
	assert_int_equal(hm_crypt_secret_from_passphrase_file(path, &s, &err), 0);
	hm_crypt_secret_free(s);
	write_file("weak", "abc\n", 4, 0600, path);
	assert_int_equal(hm_crypt_secret_from_passphrase_file(path, &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	write_file("wide", "a fine passphrase\n", 18, 0660, path);
	assert_int_equal(hm_crypt_secret_from_passphrase_file(path, &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_PERMISSION);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/hm-test-crypt-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	hm_error err;
	return hm_rmtree(dir, &err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_buffers_and_default_chunk),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_reordered_and_dropped),
		cmocka_unit_test(test_truncated_and_extended),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_passphrase),
		cmocka_unit_test(test_header_bounds),
		cmocka_unit_test(test_key_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
