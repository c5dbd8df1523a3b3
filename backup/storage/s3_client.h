/* The S3 driver's HTTP client (internal to backup/storage): where requests go (endpoint,
 * bucket, addressing style), how they are signed, sent through libcurl, retried with backoff,
 * and how a failed response becomes one clear error line. The driver (s3.c, s3_read.c,
 * s3_write.c, s3_lock.c) builds on it. */
#ifndef HM_S3_CLIENT_H
#define HM_S3_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>

#include "../../common/error.h"
#include "s3.h"
#include "s3_cred.h"
#include "s3_sign.h"
#include "s3_xml.h"
#include "storage.h"
#include "strbuf.h"

typedef struct hm_s3_client {
	char scheme[8]; /* "https" or "http" */
	char host[256]; /* endpoint host (IPv6 literals with brackets) */
	int port;	/* 0: the scheme's default */
	char bucket[64];
	char prefix[HM_STORAGE_NAME_MAX + 1]; /* "" or "a/b" (no leading or trailing '/') */
	int host_style;			      /* 1: bucket.host, 0: host/bucket */
	char region[64];
	hm_s3_credentials cred;
	int verify_tls;
	char ca_file[4096];
	int max_attempts;
	long connect_timeout_s, stall_timeout_s, clock_offset_s;
	size_t part_size;
	int parallel;
	unsigned grow_every;
	unsigned lock_ttl_s;
	unsigned list_page;
	int etag_quoted; /* If-Match form the server matches: -1 not known yet, 0 bare, 1 quoted */
	CURLSH *share;	 /* connections, DNS and TLS sessions shared by every handle below */
	CURL *easy;	 /* for one-at-a-time requests */
	hm_s3_stats stats;
	char endpoint[300]; /* for messages: "https://host:port" */
} hm_s3_client;

#define HM_S3_MAX_QUERY 8
#define HM_S3_MAX_HEADERS 8

typedef struct hm_s3_req {
	const char *method; /* GET HEAD PUT POST DELETE */
	const char *key;    /* the full object key, or NULL for a bucket request */
	hm_s3_kv query[HM_S3_MAX_QUERY];
	size_t nquery;
	hm_s3_kv headers[HM_S3_MAX_HEADERS]; /* extra headers, all signed */
	size_t nheaders;
	const void *body;
	size_t body_len;
	const char *payload_hash; /* hex SHA-256 of body when already known, else computed */
} hm_s3_req;

typedef struct hm_s3_resp {
	long status;
	char etag[128]; /* without quotes */
	char date[64];
	char last_modified[64];
	char content_range[128];
	uint64_t content_length;
	int has_length;
	int headers_done; /* the final (non-1xx) response's headers are all in */
	hm_strbuf body;	  /* capped at HM_S3_XML_MAX */
	int body_overflow;
	hm_s3_error_doc edoc; /* when status >= 300 and the body is an <Error> */
	CURLcode curl_code;
	char curl_error[CURL_ERROR_SIZE];
	int attempts;
} hm_s3_resp;

/* A transfer being set up or running on an easy handle. sink (may be NULL: into resp->body)
 * receives body bytes of a successful (< 300) response and may return CURL_WRITEFUNC_PAUSE. */
typedef size_t (*hm_s3_sink)(void *ctx, const char *data, size_t len);
typedef struct hm_s3_xfer {
	hm_s3_client *c;
	CURL *easy;
	struct curl_slist *headers;
	char *url;
	const unsigned char *body;
	size_t body_len, body_off;
	hm_s3_resp *resp;
	hm_s3_sink sink;
	void *sink_ctx;
} hm_s3_xfer;

/* Client from a parsed s3:// URL and options (credentials loaded here). 0 or -1. */
int hm_s3_client_init(hm_s3_client *c, const char *url, const hm_s3_options *opt, hm_error *err);
void hm_s3_client_free(hm_s3_client *c);

/* The full key of a storage name ("" = the prefix itself, with a trailing '/' when dir). */
int hm_s3_key(const hm_s3_client *c, const char *name, int dir, char *out, size_t sz, hm_error *err);
/* The storage name of a full key (it must be under the prefix), or NULL. */
const char *hm_s3_name(const hm_s3_client *c, const char *key);

void hm_s3_resp_init(hm_s3_resp *r);
void hm_s3_resp_reset(hm_s3_resp *r);
void hm_s3_resp_free(hm_s3_resp *r);

/* Set up easy for req (signed now, with the current clock). x must stay alive until the
 * transfer ends; hm_s3_xfer_cleanup frees what setup allocated. 0 or -1. */
int hm_s3_xfer_setup(hm_s3_xfer *x, hm_s3_client *c, CURL *easy, const hm_s3_req *req, hm_s3_resp *resp,
		     hm_s3_sink sink, void *sink_ctx, hm_error *err);
void hm_s3_xfer_cleanup(hm_s3_xfer *x);
/* After a transfer ended with code: record it in the response, parse an error body. */
void hm_s3_xfer_done(hm_s3_xfer *x, CURLcode code);

/* One response header line (as curl hands it over, CRLF included) into r: 0 a header (the
 * ones we use are kept, bounded and checked), 1 a status line (earlier headers forgotten),
 * 2 the blank line that ends the headers. Untrusted bytes: fuzzed. */
int hm_s3_parse_header(hm_s3_resp *r, const char *line, size_t len);
/* "bytes FIRST-LAST/TOTAL" strictly (LAST < TOTAL). 0 or -1. */
int hm_s3_parse_content_range(const char *s, uint64_t *first, uint64_t *last, uint64_t *total);

/* Is this outcome worth another attempt (5xx, 429, timeouts, resets, refused)? */
int hm_s3_retryable(const hm_s3_resp *resp);
/* Sleep before attempt number `attempt` (1-based retry count): 0.2 s doubling to 8 s, jittered. */
void hm_s3_backoff(hm_s3_client *c, int attempt);

/* One request, retried as hm_s3_retryable says up to max_attempts. 0 when a response came
 * back (any status: check it), -1 when the transport failed on every attempt (err set). */
int hm_s3_request(hm_s3_client *c, const hm_s3_req *req, hm_s3_resp *resp, hm_error *err);

/* Turn a response with an unexpected status (or a transport failure) into one error line
 * naming the operation, the object and the fix. Returns -1. */
int hm_s3_fail(hm_s3_client *c, const hm_s3_req *req, const hm_s3_resp *resp, hm_error *err);

/* "s3://bucket/key" of a full key (or of the bucket when key is NULL) into out. */
const char *hm_s3_url_of(const hm_s3_client *c, const char *key, char *out, size_t sz);

/* The If-Match value for etag: quoted as RFC 9110 says, or bare as radosgw compares it.
 * alt asks for the other form than the one known (or guessed) to work; hm_s3_if_match_ok
 * records which form a server accepted. */
const char *hm_s3_if_match(const hm_s3_client *c, const char *etag, int alt, char *buf, size_t sz);
void hm_s3_if_match_ok(hm_s3_client *c, int alt);

/* The signing clock: now plus the test offset. */
time_t hm_s3_now(const hm_s3_client *c);

#endif
