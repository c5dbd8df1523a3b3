/* Readers of the XML documents an S3 server returns. Those bytes are untrusted input: they are
 * parsed with libxml2 without network access, DTDs or entity expansion (a document with a
 * DOCTYPE is refused), sizes are bounded, numbers and dates are checked strictly, and a
 * required element that is missing is an error, never a default. Fuzzed by
 * tests/fuzz/fuzz_s3_xml.c. */
#ifndef HM_S3_XML_H
#define HM_S3_XML_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../../common/error.h"

#define HM_S3_XML_MAX (16u * 1024 * 1024) /* the largest response body we parse */
#define HM_S3_KEY_MAX 1024		  /* S3's own limit on key length, in bytes */

typedef struct hm_s3_error_doc {
	char code[64];	   /* "NoSuchBucket", "SignatureDoesNotMatch", ... */
	char message[512]; /* the server's text, control characters replaced */
} hm_s3_error_doc;

/* An <Error> document: 0 and out filled; -1 when body is not one. */
int hm_s3_xml_error(const char *body, size_t len, hm_s3_error_doc *out);

typedef struct hm_s3_object {
	const char *key; /* decoded when the listing was url-encoded */
	uint64_t size;
	time_t mtime;
	const char *etag; /* without quotes */
	int is_prefix;	  /* a CommonPrefixes entry (key is the prefix, ending in the delimiter) */
} hm_s3_object;
typedef int (*hm_s3_object_cb)(void *ctx, const hm_s3_object *o, hm_error *err);

/* A ListObjectsV2 page (ListBucketResult). url_encoded: the request had encoding-type=url.
 * *truncated and next_token (the NextContinuationToken, "" when not truncated). */
int hm_s3_xml_list(const char *body, size_t len, int url_encoded, hm_s3_object_cb cb, void *ctx,
		   int *truncated, char *next_token, size_t tokensz, hm_error *err);

/* InitiateMultipartUploadResult: the UploadId. */
int hm_s3_xml_initiate(const char *body, size_t len, char *upload_id, size_t sz, hm_error *err);

/* CompleteMultipartUploadResult: the ETag (without quotes). A 200 response may carry an
 * <Error> instead (S3 reports late failures that way): -1 with edoc (may be NULL) filled. */
int hm_s3_xml_complete(const char *body, size_t len, char *etag, size_t sz, hm_s3_error_doc *edoc,
		       hm_error *err);

/* DeleteResult of a multi-object delete (quiet mode lists only failures): *nerrors and the
 * first failure as "KEY: CODE MESSAGE". */
int hm_s3_xml_delete(const char *body, size_t len, size_t *nerrors, char *first, size_t firstsz,
		     hm_error *err);

typedef struct hm_s3_upload {
	const char *key;
	const char *upload_id;
	time_t initiated;
} hm_s3_upload;
typedef int (*hm_s3_upload_cb)(void *ctx, const hm_s3_upload *u, hm_error *err);

/* A ListMultipartUploads page: each upload, *truncated and the next markers. */
int hm_s3_xml_uploads(const char *body, size_t len, int url_encoded, hm_s3_upload_cb cb, void *ctx,
		      int *truncated, char *next_key, size_t keysz, char *next_upload, size_t uploadsz,
		      hm_error *err);

/* Dates as S3 writes them: ISO 8601 in XML ("2009-10-12T17:50:30.000Z") and the HTTP date
 * of headers ("Sun, 06 Nov 1994 08:49:37 GMT"). 0 or -1. */
int hm_s3_parse_iso8601(const char *s, time_t *out);
int hm_s3_parse_http_date(const char *s, time_t *out);

#endif
