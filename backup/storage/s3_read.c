/* Streaming reads from S3: one GET per read stream, its body pulled through a bounded buffer.
 * libcurl pushes data; when the buffer is full the write callback pauses the transfer, and
 * each hm_storage_read drains the buffer and lets curl continue. Memory is the 1 MiB buffer
 * whatever the object's size. A transfer that breaks (reset, timeout, 5xx) resumes from the
 * next byte with a Range request bound to the first response's ETag (If-Match), so a changed
 * object is an error, never a splice of two versions. */
#include "s3_driver.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUF (1024 * 1024)
#define RETRY 100 /* internal: try the request again (not an HM_STORAGE_ code) */

typedef struct s3_read {
	hm_storage_reader base;
	s3_storage *st;
	char key[HM_S3_KEY_MAX + 1];
	char name[HM_STORAGE_NAME_MAX + 1];
	uint64_t start, end; /* the range asked for: [start, end) */
	uint64_t pos;	     /* next byte to arrive from the network */
	uint64_t req_pos;    /* where the current request started (bytes may arrive before its
			      * headers are checked) */
	CURLM *multi;
	CURL *easy;
	hm_s3_xfer x;
	hm_s3_resp resp;
	int in_multi, done, paused, overflow;
	CURLcode code;
	unsigned char *buf;
	size_t head, tail;
	char etag[128];
	char range[64], ifmatch[140];
	int attempt;
	int ifmatch_alt; /* the other If-Match form is being tried */
} s3_read;

static size_t sink(void *ud, const char *data, size_t len)
{
	s3_read *r = ud;
	if (len > r->end - r->pos) {
		r->overflow = 1;
		return 0; /* more than asked for: abort the transfer */
	}
	if (READ_BUF - r->tail < len && r->head) {
		memmove(r->buf, r->buf + r->head, r->tail - r->head);
		r->tail -= r->head;
		r->head = 0;
	}
	if (READ_BUF - r->tail < len) {
		r->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	memcpy(r->buf + r->tail, data, len);
	r->tail += len;
	r->pos += len;
	r->st->c.stats.bytes_down += len;
	return len;
}

static void stop_transfer(s3_read *r)
{
	if (r->in_multi)
		curl_multi_remove_handle(r->multi, r->easy);
	r->in_multi = 0;
	hm_s3_xfer_cleanup(&r->x);
}

/* Start (or resume at r->pos) the GET. */
static int start_transfer(s3_read *r, hm_error *err)
{
	hm_s3_req req = {.method = "GET", .key = r->key};
	int ranged = r->pos != 0 || r->end != UINT64_MAX;
	r->req_pos = r->pos;
	if (ranged) {
		if (r->end == UINT64_MAX)
			snprintf(r->range, sizeof r->range, "bytes=%" PRIu64 "-", r->pos);
		else
			snprintf(r->range, sizeof r->range, "bytes=%" PRIu64 "-%" PRIu64, r->pos, r->end - 1);
		req.headers[req.nheaders++] = (hm_s3_kv){"range", r->range};
	}
	if (r->etag[0]) {
		hm_s3_if_match(&r->st->c, r->etag, r->ifmatch_alt, r->ifmatch, sizeof r->ifmatch);
		req.headers[req.nheaders++] = (hm_s3_kv){"if-match", r->ifmatch};
	}
	if (hm_s3_xfer_setup(&r->x, &r->st->c, r->easy, &req, &r->resp, sink, r, err) != 0)
		return -1;
	r->resp.attempts = r->attempt;
	r->done = r->paused = 0;
	if (curl_multi_add_handle(r->multi, r->easy) != CURLM_OK) {
		hm_s3_xfer_cleanup(&r->x);
		return hm_error_set(err, HM_EXIT_INTERNAL, "libcurl: cannot start a transfer");
	}
	r->in_multi = 1;
	return 0;
}

/* Let curl work once: move data, notice the end of the transfer. */
static int pump(s3_read *r, int wait, hm_error *err)
{
	int running = 0, left;
	if (r->paused && r->tail - r->head < READ_BUF / 2) {
		r->paused = 0;
		curl_easy_pause(r->easy, CURLPAUSE_CONT);
	}
	if (curl_multi_perform(r->multi, &running) != CURLM_OK)
		return hm_error_set(err, HM_EXIT_INTERNAL, "libcurl: the transfer loop failed");
	CURLMsg *m;
	while ((m = curl_multi_info_read(r->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE && m->easy_handle == r->easy) {
			r->done = 1;
			r->code = m->data.result;
		}
	if (!r->done && wait && !r->paused)
		curl_multi_poll(r->multi, NULL, 0, 1000, NULL);
	return 0;
}

static int fail_read(s3_read *r, hm_error *err)
{
	hm_s3_req req = {.method = "GET", .key = r->key};
	return hm_s3_fail(&r->st->c, &req, &r->resp, err);
}

/* The response's first bytes are in: check status and range, learn the object's size.
 * Returns 0, HM_STORAGE_MISSING, RETRY or -1. */
static int check_headers(s3_read *r, hm_error *err)
{
	long status = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200 || status == 206) {
		int ranged = r->range[0] != '\0' && (r->req_pos != 0 || r->end != UINT64_MAX);
		if (status == 200 && ranged)
			return hm_error_set(err, HM_EXIT_IO, "s3: %s ignored the Range header for %s",
					    r->st->c.endpoint, r->name);
		uint64_t total;
		if (status == 206) {
			uint64_t a, b, t;
			if (hm_s3_parse_content_range(r->resp.content_range, &a, &b, &t) != 0 ||
			    a != r->req_pos)
				return hm_error_set(err, HM_EXIT_IO, "s3: bad Content-Range \"%.60s\" for %s",
						    r->resp.content_range, r->name);
			total = t;
			if (r->end != UINT64_MAX && r->end > t) /* S3 clips a range at the object's end */
				return hm_error_set(err, HM_EXIT_INPUT,
						    "read of \"%s\" to byte %" PRIu64
						    ": it has only %" PRIu64,
						    r->name, r->end, t);
			if (r->end != UINT64_MAX && b + 1 != r->end)
				return hm_error_set(err, HM_EXIT_IO,
						    "s3: the server sent a different range of %s", r->name);
		} else {
			if (!r->resp.has_length)
				return hm_error_set(err, HM_EXIT_IO, "s3: no Content-Length for %s", r->name);
			total = r->resp.content_length;
		}
		if (r->etag[0] && strcmp(r->etag, r->resp.etag) != 0)
			return hm_error_set(err, HM_EXIT_CORRUPT, "s3: %s changed while it was read",
					    r->name);
		if (r->etag[0] && r->st->c.etag_quoted < 0)
			hm_s3_if_match_ok(&r->st->c, r->ifmatch_alt);
		snprintf(r->etag, sizeof r->etag, "%s", r->resp.etag);
		r->base.object_size = total;
		if (r->end == UINT64_MAX)
			r->end = total;
		return 0;
	}
	/* An error: let the (small) body arrive, then say what it was. */
	while (!r->done)
		if (pump(r, 1, err) != 0)
			return -1;
	hm_s3_xfer_done(&r->x, r->code);
	if (r->resp.status == 404 && strcmp(r->resp.edoc.code, "NoSuchBucket") != 0) {
		hm_error_set(err, HM_EXIT_NOT_FOUND, "no such object \"%s\" in %s", r->name,
			     r->st->base.location);
		return HM_STORAGE_MISSING;
	}
	if (r->resp.status == 412) {
		if (r->st->c.etag_quoted < 0 && !r->ifmatch_alt) {
			r->ifmatch_alt = 1; /* perhaps only the form of the ETag did not match */
			return RETRY;
		}
		return hm_error_set(err, HM_EXIT_CORRUPT, "s3: %s changed while it was read", r->name);
	}
	if (hm_s3_retryable(&r->resp) && r->attempt < r->st->c.max_attempts)
		return RETRY;
	return fail_read(r, err);
}

/* Start a transfer and wait until its headers (or its end) arrived. */
static int begin(s3_read *r, hm_error *err)
{
	for (;;) {
		r->attempt++;
		if (start_transfer(r, err) != 0)
			return -1;
		while (!r->resp.headers_done && !r->done)
			if (pump(r, 1, err) != 0)
				return -1;
		int rc;
		if (r->resp.headers_done) {
			rc = check_headers(r, err);
		} else {
			hm_s3_xfer_done(&r->x, r->code); /* ended before any response: a transport error */
			rc = hm_s3_retryable(&r->resp) && r->attempt < r->st->c.max_attempts
				     ? RETRY
				     : fail_read(r, err);
		}
		if (rc != RETRY) {
			if (rc != 0)
				stop_transfer(r);
			return rc;
		}
		stop_transfer(r);
		hm_s3_backoff(&r->st->c, r->attempt);
	}
}

static int s3_read_read(hm_storage_reader *base, void *buf, size_t len, size_t *got, hm_error *err)
{
	s3_read *r = (s3_read *)base;
	if (hm_s3_lock_tick(r->st, err) != 0)
		return -1; /* a long verify or copy keeps the repository lock alive */
	while (r->head == r->tail) {
		r->head = r->tail = 0; /* drained: the whole buffer is free for what comes */
		if (!r->done) {
			if (pump(r, 1, err) != 0)
				return -1;
			continue;
		}
		if (r->pos == r->end && r->code == CURLE_OK)
			return 0; /* everything asked for has arrived */
		if (r->overflow)
			return hm_error_set(err, HM_EXIT_IO, "s3: the server sent more of %s than asked for",
					    r->name);
		/* The transfer ended early: resume from the next byte if attempts are left. */
		hm_s3_xfer_done(&r->x, r->code);
		if (r->code == CURLE_OK) {
			r->resp.curl_code = CURLE_PARTIAL_FILE;
			snprintf(r->resp.curl_error, sizeof r->resp.curl_error,
				 "the body ended at byte %" PRIu64 " of %" PRIu64, r->pos, r->end);
		}
		if (!hm_s3_retryable(&r->resp) || r->attempt >= r->st->c.max_attempts) {
			fail_read(r, err);
			return hm_error_prefix(err, "reading %s at byte %" PRIu64, r->name, r->pos);
		}
		stop_transfer(r);
		hm_s3_backoff(&r->st->c, r->attempt);
		int rc = begin(r, err);
		if (rc != 0)
			return -1;
	}
	size_t n = r->tail - r->head;
	if (n > len)
		n = len;
	memcpy(buf, r->buf + r->head, n);
	r->head += n;
	*got = n;
	return 0;
}

static void s3_read_close(hm_storage_reader *base)
{
	s3_read *r = (s3_read *)base;
	stop_transfer(r);
	if (r->easy)
		curl_easy_cleanup(r->easy);
	if (r->multi)
		curl_multi_cleanup(r->multi);
	hm_s3_resp_free(&r->resp);
	free(r->buf);
	free(r);
}

static const hm_storage_reader_ops s3_read_ops = {s3_read_read, s3_read_close};

int hm_s3_open_read(hm_storage *base, const char *name, uint64_t offset, uint64_t length,
		    hm_storage_reader **out, hm_error *err)
{
	s3_storage *st = (s3_storage *)base;
	s3_read *r = calloc(1, sizeof *r);
	int rc = -1;
	if (!r)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	r->base.ops = &s3_read_ops;
	r->st = st;
	hm_s3_resp_init(&r->resp);
	snprintf(r->name, sizeof r->name, "%s", name);
	if (hm_s3_key(&st->c, name, 0, r->key, sizeof r->key, err) != 0)
		goto fail;
	if (length == 0 || (length == HM_STORAGE_TO_END && offset > 0)) {
		/* Nothing to fetch, or a range whose end we must know: ask for the size first
		 * (a Range past the end is an error on S3, an empty object has no byte 0). */
		hm_storage_info info;
		rc = base->drv->stat(base, name, &info, err);
		if (rc != 0)
			goto fail;
		rc = -1;
		if (offset > info.size) {
			hm_error_set(err, HM_EXIT_INPUT,
				     "read of \"%s\" from byte %" PRIu64 ": it has only %" PRIu64, name,
				     offset, info.size);
			goto fail;
		}
		r->base.object_size = info.size;
		snprintf(r->etag, sizeof r->etag, "%s", info.etag);
		if (length == HM_STORAGE_TO_END)
			length = info.size - offset;
	}
	r->start = r->pos = offset;
	r->end = length == HM_STORAGE_TO_END ? UINT64_MAX : offset + length;
	if (r->end == r->pos) {
		r->done = 1;
		r->code = CURLE_OK;
		*out = &r->base;
		return 0;
	}
	r->buf = malloc(READ_BUF);
	r->multi = curl_multi_init();
	r->easy = curl_easy_init();
	if (!r->buf || !r->multi || !r->easy) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto fail;
	}
	rc = begin(r, err);
	if (rc != 0)
		goto fail;
	if (r->end != UINT64_MAX && r->end > r->base.object_size) {
		hm_error_set(err, HM_EXIT_INPUT, "read of \"%s\" to byte %" PRIu64 ": it has only %" PRIu64,
			     name, r->end, r->base.object_size);
		rc = -1;
		goto fail;
	}
	*out = &r->base;
	return 0;
fail:
	s3_read_close(&r->base);
	return rc;
}
