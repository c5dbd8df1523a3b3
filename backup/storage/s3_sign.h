/* AWS Signature Version 4 for S3 requests (the Authorization header), on libcrypto's
 * SHA-256 and HMAC. Pure functions: no clock, no network; tests check them against AWS's
 * published examples. Why our own and not curl's --aws-sigv4: curl 7.88 sends no
 * x-amz-content-sha256 and does not sort query parameters (shared notes, object-storage.md). */
#ifndef HM_S3_SIGN_H
#define HM_S3_SIGN_H

#include <stddef.h>
#include <time.h>

typedef struct hm_s3_kv {
	const char *name;
	const char *value; /* NULL is read as "" */
} hm_s3_kv;

#define HM_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct hm_s3_sign_request {
	const char *method;
	const char *canonical_uri;   /* the encoded path as sent: "/bucket/a%20b" ("/" at least) */
	const char *canonical_query; /* from hm_s3_canonical_query ("" when none) */
	const hm_s3_kv *headers;     /* every header to sign, host and x-amz-* included */
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;	  /* "YYYYMMDDTHHMMSSZ" (its first 8 characters are the scope date) */
	const char *region;
	const char *service; /* "s3" */
	const char *access_key;
	const char *secret_key;
} hm_s3_sign_request;

/* Percent-encode in as SigV4 wants (RFC 3986 unreserved characters kept, everything else
 * %XX upper case; '/' kept when keep_slash). Length written, or -1 if out is too small. */
long hm_s3_uri_encode(const char *in, size_t inlen, int keep_slash, char *out, size_t outsz);

/* Decode %XX sequences (for keys listed with encoding-type=url; '+' is a space there).
 * Length written, or -1 on a bad sequence, a NUL byte or too small a buffer. */
long hm_s3_uri_decode(const char *in, size_t inlen, int plus_is_space, char *out, size_t outsz);

/* The canonical query string: names and values encoded, sorted by name then value, joined
 * as "a=1&b=&c=3". malloc'd, or NULL when out of memory. It is also the query to send. */
char *hm_s3_canonical_query(const hm_s3_kv *params, size_t n);

/* The canonical request (malloc'd; NULL: out of memory or a bad header) and, when
 * signed_headers is not NULL, the ';'-joined lower-case names signed. */
char *hm_s3_canonical_request(const hm_s3_sign_request *r, char *signed_headers, size_t shsz);

/* The string to sign for a canonical request (malloc'd or NULL). */
char *hm_s3_string_to_sign(const hm_s3_sign_request *r, const char *canonical_request);

/* The value of the Authorization header ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=...,Signature=..."); 0, or -1 (out of memory, too small, bad input). */
int hm_s3_sign(const hm_s3_sign_request *r, char *authorization, size_t sz);

/* "YYYYMMDDTHHMMSSZ" for t (UTC). */
void hm_s3_amz_date(time_t t, char out[17]);

/* Hex SHA-256 of data. */
void hm_s3_sha256_hex(const void *data, size_t len, char out[65]);

#endif
