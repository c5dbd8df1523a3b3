/* SigV4 as the S3 documentation defines it ("Authenticating Requests: Using the Authorization
 * Header"). S3 differs from other services in two ways that matter here: the path is encoded
 * once (never normalised or double-encoded), and x-amz-content-sha256 is mandatory. */
#include "s3_sign.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "strbuf.h"

static int unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

long hm_s3_uri_encode(const char *in, size_t inlen, int keep_slash, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			if (o + 1 >= outsz)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= outsz)
				return -1;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= outsz)
		return -1;
	out[o] = '\0';
	return (long)o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long hm_s3_uri_decode(const char *in, size_t inlen, int plus_is_space, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < inlen; i++) {
		int c = (unsigned char)in[i];
		if (c == '%') {
			if (i + 2 >= inlen)
				return -1;
			int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		if (c == 0 || o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	if (o >= outsz)
		return -1;
	out[o] = '\0';
	return (long)o;
}

typedef struct enc_pair {
	char *name, *value;
} enc_pair;

static int pair_cmp(const void *a, const void *b)
{
	const enc_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

static char *encode_dup(const char *s)
{
	size_t len = strlen(s);
	char *out = malloc(len * 3 + 1);
	if (out && hm_s3_uri_encode(s, len, 0, out, len * 3 + 1) < 0) {
		free(out);
		return NULL;
	}
	return out;
}

char *hm_s3_canonical_query(const hm_s3_kv *params, size_t n)
{
	enc_pair *p = calloc(n ? n : 1, sizeof *p);
	hm_strbuf b = HM_STRBUF_INIT;
	char *out = NULL;
	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		p[i].name = encode_dup(params[i].name);
		p[i].value = encode_dup(params[i].value ? params[i].value : "");
		if (!p[i].name || !p[i].value)
			goto cleanup;
	}
	qsort(p, n, sizeof *p, pair_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			hm_strbuf_addc(&b, '&');
		hm_strbuf_adds(&b, p[i].name);
		hm_strbuf_addc(&b, '=');
		hm_strbuf_adds(&b, p[i].value);
	}
	out = hm_strbuf_take(&b);
cleanup:
	for (size_t i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
	hm_strbuf_free(&b);
	return out;
}

typedef struct canon_header {
	char name[128];
	const char *value;
} canon_header;

static int header_cmp(const void *a, const void *b)
{
	return strcmp(((const canon_header *)a)->name, ((const canon_header *)b)->name);
}

/* A header value as signed: leading and trailing spaces dropped, inner runs of spaces
 * collapsed to one. */
static void add_trimmed(hm_strbuf *b, const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	int space = 0;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = 1;
			continue;
		}
		if (space)
			hm_strbuf_addc(b, ' ');
		space = 0;
		hm_strbuf_addc(b, *v);
	}
}

char *hm_s3_canonical_request(const hm_s3_sign_request *r, char *signed_headers, size_t shsz)
{
	canon_header *h = calloc(r->nheaders ? r->nheaders : 1, sizeof *h);
	hm_strbuf b = HM_STRBUF_INIT, sh = HM_STRBUF_INIT;
	char *out = NULL;
	if (!h)
		return NULL;
	for (size_t i = 0; i < r->nheaders; i++) {
		size_t len = strlen(r->headers[i].name);
		if (len == 0 || len >= sizeof h[i].name)
			goto cleanup;
		for (size_t j = 0; j <= len; j++)
			h[i].name[j] = (char)tolower((unsigned char)r->headers[i].name[j]);
		h[i].value = r->headers[i].value ? r->headers[i].value : "";
		if (strpbrk(h[i].value, "\r\n"))
			goto cleanup; /* never sign (or send) a header that could split the request */
	}
	qsort(h, r->nheaders, sizeof *h, header_cmp);
	for (size_t i = 1; i < r->nheaders; i++)
		if (strcmp(h[i - 1].name, h[i].name) == 0)
			goto cleanup; /* we never send one header twice */
	hm_strbuf_adds(&b, r->method);
	hm_strbuf_addc(&b, '\n');
	hm_strbuf_adds(&b, r->canonical_uri[0] ? r->canonical_uri : "/");
	hm_strbuf_addc(&b, '\n');
	hm_strbuf_adds(&b, r->canonical_query ? r->canonical_query : "");
	hm_strbuf_addc(&b, '\n');
	for (size_t i = 0; i < r->nheaders; i++) {
		hm_strbuf_adds(&b, h[i].name);
		hm_strbuf_addc(&b, ':');
		add_trimmed(&b, h[i].value);
		hm_strbuf_addc(&b, '\n');
		if (i)
			hm_strbuf_addc(&sh, ';');
		hm_strbuf_adds(&sh, h[i].name);
	}
	hm_strbuf_addc(&b, '\n');
	hm_strbuf_adds(&b, sh.s ? sh.s : "");
	hm_strbuf_addc(&b, '\n');
	hm_strbuf_adds(&b, r->payload_hash);
	if (hm_strbuf_failed(&sh) || hm_strbuf_failed(&b))
		goto cleanup;
	if (signed_headers) {
		if (sh.len >= shsz)
			goto cleanup;
		memcpy(signed_headers, sh.s ? sh.s : "", sh.len + 1);
	}
	out = hm_strbuf_take(&b);
cleanup:
	free(h);
	hm_strbuf_free(&b);
	hm_strbuf_free(&sh);
	return out;
}

void hm_s3_sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

char *hm_s3_string_to_sign(const hm_s3_sign_request *r, const char *canonical_request)
{
	char hash[65];
	hm_strbuf b = HM_STRBUF_INIT;
	if (strlen(r->amz_date) != 16)
		return NULL;
	hm_s3_sha256_hex(canonical_request, strlen(canonical_request), hash);
	hm_strbuf_addf(&b, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", r->amz_date, r->amz_date,
		       r->region, r->service, hash);
	return hm_strbuf_take(&b);
}

static int hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
	unsigned int len = 32;
	return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &len) &&
			       len == 32
		       ? 0
		       : -1;
}

int hm_s3_sign(const hm_s3_sign_request *r, char *authorization, size_t sz)
{
	static const char hex[] = "0123456789abcdef";
	char signed_headers[1024], date[9], sig[65];
	char *canon = NULL, *sts = NULL;
	unsigned char k[32], kr[32];
	char secret[256];
	int rc = -1;
	if (strlen(r->amz_date) != 16 || strlen(r->secret_key) + 5 > sizeof secret)
		return -1;
	canon = hm_s3_canonical_request(r, signed_headers, sizeof signed_headers);
	if (!canon)
		goto cleanup;
	sts = hm_s3_string_to_sign(r, canon);
	if (!sts)
		goto cleanup;
	memcpy(date, r->amz_date, 8);
	date[8] = '\0';
	snprintf(secret, sizeof secret, "AWS4%s", r->secret_key);
	if (hmac(secret, strlen(secret), date, k) || hmac(k, 32, r->region, kr) ||
	    hmac(kr, 32, r->service, k) || hmac(k, 32, "aws4_request", kr) || hmac(kr, 32, sts, k))
		goto cleanup;
	for (int i = 0; i < 32; i++) {
		sig[2 * i] = hex[k[i] >> 4];
		sig[2 * i + 1] = hex[k[i] & 15];
	}
	sig[64] = '\0';
	int n = snprintf(authorization, sz,
			 "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request,SignedHeaders=%s,Signature=%s",
			 r->access_key, date, r->region, r->service, signed_headers, sig);
	rc = (n > 0 && (size_t)n < sz) ? 0 : -1;
cleanup:
	OPENSSL_cleanse(secret, sizeof secret);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(kr, sizeof kr);
	free(canon);
	free(sts);
	return rc;
}

void hm_s3_amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
