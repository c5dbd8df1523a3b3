/* Streaming writes to S3 with bounded memory. Bytes fill one part buffer; a full buffer
 * becomes a part of a multipart upload (started with the first full part), sent while the
 * next buffer fills, with at most `parallel` parts in flight: memory is (parallel + 1) part
 * buffers whatever the object's size. Parts are 5 MiB (S3's minimum) by default; without a
 * size hint they double every 2000 parts, so that 10000 parts hold about 303 GiB. Every part carries
 * Content-MD5 (the server checks it) and is signed over its SHA-256 (x-amz-content-sha256, also checked).
 * Only commit completes the upload, so nothing is visible before; commit then compares the server's ETag with
 * the MD5-of-MD5s we computed. Any failure, and abort, sends AbortMultipartUpload; an upload cut short by
 * kill -9 stays incomplete (never listed) until hm_storage_sweep aborts it. An object smaller than one part
 * is a single PUT. */
#include "s3_driver.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

typedef struct part_slot {
	unsigned char *data;
	size_t cap; /* bytes allocated at data */
	size_t len;
	int number; /* 0 = not in flight */
	CURL *easy;
	hm_s3_xfer x;
	hm_s3_resp resp;
	char md5_b64[32], sha[65], num[16];
	int attempt;
} part_slot;

typedef struct part_done {
	unsigned char md5[16];
	char etag[80];
} part_done;

struct s3_write {
	hm_storage_writer base;
	s3_storage *st;
	char key[HM_S3_KEY_MAX + 1];
	char name[HM_STORAGE_NAME_MAX + 1];
	unsigned flags;
	size_t part_size; /* of the first parts */
	size_t cur_size;  /* of the part now filling */
	int grow;	  /* no size hint: parts double every HM_S3_GROW_EVERY */
	int nslots;
	part_slot *slots;
	part_slot *fill;
	CURLM *multi;
	char upload_id[1024];
	part_done *parts;
	size_t nparts;
	uint64_t total;
	int failed;
	hm_error ferr;
	s3_write *next;
};

int hm_s3_write_active(const s3_storage *st, const char *upload_id)
{
	for (const s3_write *w = st->active; w; w = w->next)
		if (strcmp(w->upload_id, upload_id) == 0)
			return 1;
	return 0;
}

static void unlink_active(s3_write *w)
{
	for (s3_write **p = &w->st->active; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
}

static void free_write(s3_write *w)
{
	for (int i = 0; i < w->nslots; i++) {
		part_slot *s = &w->slots[i];
		if (s->number && s->easy)
			curl_multi_remove_handle(w->multi, s->easy);
		hm_s3_xfer_cleanup(&s->x);
		if (s->easy)
			curl_easy_cleanup(s->easy);
		hm_s3_resp_free(&s->resp);
		free(s->data);
	}
	if (w->multi)
		curl_multi_cleanup(w->multi);
	unlink_active(w);
	free(w->slots);
	free(w->parts);
	free(w);
}

static int fail(s3_write *w, hm_error *err)
{
	if (!w->failed) {
		w->failed = 1;
		w->ferr = *err;
	}
	return -1;
}

static int start_part(s3_write *w, part_slot *s, hm_error *err)
{
	hm_s3_req req = {
		.method = "PUT", .key = w->key, .body = s->data, .body_len = s->len, .payload_hash = s->sha};
	snprintf(s->num, sizeof s->num, "%d", s->number);
	req.query[req.nquery++] = (hm_s3_kv){"partNumber", s->num};
	req.query[req.nquery++] = (hm_s3_kv){"uploadId", w->upload_id};
	req.headers[req.nheaders++] = (hm_s3_kv){"content-md5", s->md5_b64};
	if (hm_s3_xfer_setup(&s->x, &w->st->c, s->easy, &req, &s->resp, NULL, NULL, err) != 0)
		return -1;
	s->resp.attempts = s->attempt;
	if (curl_multi_add_handle(w->multi, s->easy) != CURLM_OK) {
		hm_s3_xfer_cleanup(&s->x);
		return hm_error_set(err, HM_EXIT_INTERNAL, "libcurl: cannot start a transfer");
	}
	return 0;
}

/* A part's transfer ended: record it, retry it or fail the upload. */
static int part_ended(s3_write *w, part_slot *s, CURLcode code, hm_error *err)
{
	curl_multi_remove_handle(w->multi, s->easy);
	hm_s3_xfer_done(&s->x, code);
	hm_s3_xfer_cleanup(&s->x);
	if (code == CURLE_OK && s->resp.status == 200 && s->resp.etag[0]) {
		snprintf(w->parts[s->number - 1].etag, sizeof w->parts[0].etag, "%s", s->resp.etag);
		s->number = 0;
		s->len = 0;
		return hm_s3_lock_tick(w->st, err);
	}
	if (hm_s3_retryable(&s->resp) && s->attempt < w->st->c.max_attempts) {
		hm_s3_backoff(&w->st->c, s->attempt);
		s->attempt++;
		return start_part(w, s, err);
	}
	hm_s3_req req = {.method = "PUT", .key = w->key};
	if (code == CURLE_OK && s->resp.status == 200)
		hm_error_set(err, HM_EXIT_IO, "s3: part %d of %s came back without an ETag", s->number,
			     w->name);
	else
		hm_s3_fail(&w->st->c, &req, &s->resp, err);
	return hm_error_prefix(err, "uploading part %d of %s", s->number, w->name);
}

static int in_flight(const s3_write *w)
{
	int n = 0;
	for (int i = 0; i < w->nslots; i++)
		n += w->slots[i].number != 0;
	return n;
}

/* Drive the transfers until at most `max` parts are in flight. */
static int drain(s3_write *w, int max, hm_error *err)
{
	while (in_flight(w) > max) {
		int running, left;
		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			return hm_error_set(err, HM_EXIT_INTERNAL, "libcurl: the transfer loop failed");
		CURLMsg *m;
		int ended = 0;
		while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
			if (m->msg != CURLMSG_DONE)
				continue;
			for (int i = 0; i < w->nslots; i++)
				if (w->slots[i].number && w->slots[i].easy == m->easy_handle) {
					CURLcode code = m->data.result;
					ended = 1;
					if (part_ended(w, &w->slots[i], code, err) != 0)
						return -1;
					break;
				}
		}
		if (!ended && in_flight(w) > max)
			curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
	}
	return 0;
}

static int initiate(s3_write *w, hm_error *err)
{
	hm_s3_resp resp;
	hm_s3_req req = {.method = "POST", .key = w->key};
	req.query[req.nquery++] = (hm_s3_kv){"uploads", ""};
	hm_s3_resp_init(&resp);
	int rc = hm_s3_request(&w->st->c, &req, &resp, err);
	if (rc == 0 && resp.status != 200)
		rc = hm_s3_fail(&w->st->c, &req, &resp, err);
	if (rc == 0)
		rc = hm_s3_xml_initiate(resp.body.s, resp.body.len, w->upload_id, sizeof w->upload_id, err);
	hm_s3_resp_free(&resp);
	if (rc != 0)
		return hm_error_prefix(err, "starting the upload of %s", w->name);
	w->next = w->st->active;
	w->st->active = w;
	return 0;
}

/* The size of the next part: the first part size, doubled every grow_every (2000) parts
 * unless a size hint chose it (at 5 MiB: 10000 parts hold about 303 GiB), at most
 * HM_S3_MAX_PART. Memory stays (parallel + 1) parts of the current size. */
static size_t next_part_size(const s3_write *w)
{
	size_t sz = w->part_size;
	for (size_t n = w->grow ? w->nparts / w->st->c.grow_every : 0; n && sz < HM_S3_MAX_PART; n--)
		sz *= 2;
	return sz > HM_S3_MAX_PART ? HM_S3_MAX_PART : sz;
}

/* Send the fill buffer as the next part; with more, take a free buffer for what follows. */
static int submit(s3_write *w, int more, hm_error *err)
{
	part_slot *s = w->fill;
	if (!w->upload_id[0] && initiate(w, err) != 0)
		return -1;
	if (w->nparts >= HM_S3_MAX_PARTS)
		return hm_error_set(err, HM_EXIT_INPUT,
				    "s3: %s is larger than %d parts (the last of %zu MiB); give a size hint "
				    "or a larger part size (--s3-part-size)",
				    w->name, HM_S3_MAX_PARTS, w->cur_size >> 20);
	/* At most `parallel` parts in flight: wait for one to finish before starting this one. */
	if (drain(w, w->nslots - 2, err) != 0)
		return -1;
	s->number = (int)++w->nparts;
	s->attempt = 1;
	hm_s3_content_md5(s->data, s->len, w->parts[s->number - 1].md5, s->md5_b64);
	hm_s3_sha256_hex(s->data, s->len, s->sha);
	if (start_part(w, s, err) != 0) {
		s->number = 0;
		return -1;
	}
	unsigned n = (unsigned)in_flight(w);
	if (n > w->st->c.stats.parts_max_in_flight)
		w->st->c.stats.parts_max_in_flight = n;
	w->fill = NULL;
	if (!more)
		return 0;
	for (int i = 0; i < w->nslots; i++)
		if (!w->slots[i].number) {
			w->fill = &w->slots[i];
			break;
		}
	w->cur_size = next_part_size(w);
	if (w->fill->cap < w->cur_size) {
		free(w->fill->data);
		w->fill->cap = 0;
		if (!(w->fill->data = malloc(w->cur_size)))
			return hm_error_set(err, HM_EXIT_INTERNAL,
					    "out of memory (an upload buffer of %zu MiB)", w->cur_size >> 20);
		w->fill->cap = w->cur_size;
	}
	if (!w->fill->easy && !(w->fill->easy = curl_easy_init()))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory (libcurl)");
	w->fill->len = 0;
	return 0;
}

static int s3_write_write(hm_storage_writer *base, const void *data, size_t len, hm_error *err)
{
	s3_write *w = (s3_write *)base;
	const unsigned char *p = data;
	if (w->failed) {
		*err = w->ferr;
		return -1;
	}
	while (len) {
		if (w->fill->len == w->cur_size && submit(w, 1, err) != 0)
			return fail(w, err);
		size_t n = w->cur_size - w->fill->len;
		if (n > len)
			n = len;
		memcpy(w->fill->data + w->fill->len, p, n);
		w->fill->len += n;
		w->total += n;
		p += n;
		len -= n;
	}
	return 0;
}

static void abort_upload(s3_write *w)
{
	hm_error ignored;
	hm_s3_resp resp;
	if (!w->upload_id[0])
		return;
	for (int i = 0; i < w->nslots; i++)
		if (w->slots[i].number) {
			curl_multi_remove_handle(w->multi, w->slots[i].easy);
			hm_s3_xfer_cleanup(&w->slots[i].x);
			w->slots[i].number = 0;
		}
	hm_s3_req req = {.method = "DELETE", .key = w->key};
	req.query[req.nquery++] = (hm_s3_kv){"uploadId", w->upload_id};
	hm_s3_resp_init(&resp);
	/* Best effort: an upload we could not abort is left for hm_storage_sweep. */
	hm_s3_request(&w->st->c, &req, &resp, &ignored);
	hm_s3_resp_free(&resp);
	w->upload_id[0] = '\0';
}

static void s3_write_abort(hm_storage_writer *base)
{
	s3_write *w = (s3_write *)base;
	abort_upload(w);
	free_write(w);
}

static int put_single(s3_write *w, hm_storage_info *info, hm_error *err)
{
	part_slot *s = w->fill;
	char md5[32], sha[65];
	hm_s3_resp resp;
	hm_s3_content_md5(s->data, s->len, NULL, md5);
	hm_s3_sha256_hex(s->data, s->len, sha);
	hm_s3_req req = {
		.method = "PUT", .key = w->key, .body = s->data, .body_len = s->len, .payload_hash = sha};
	req.headers[req.nheaders++] = (hm_s3_kv){"content-md5", md5};
	if (w->flags & HM_STORAGE_EXCLUSIVE)
		req.headers[req.nheaders++] = (hm_s3_kv){"if-none-match", "*"};
	hm_s3_resp_init(&resp);
	int rc = hm_s3_request(&w->st->c, &req, &resp, err);
	if (rc == 0 && resp.status == 412) {
		hm_error_set(err, HM_EXIT_INPUT, "\"%s\" exists already in %s", w->name,
			     w->st->base.location);
		rc = HM_STORAGE_EXISTS;
	} else if (rc == 0 && resp.status != 200) {
		rc = hm_s3_fail(&w->st->c, &req, &resp, err);
	} else if (rc == 0 && info) {
		snprintf(info->etag, sizeof info->etag, "%s", resp.etag);
	}
	hm_s3_resp_free(&resp);
	return rc;
}

/* The ETag S3 gives a multipart object: hex MD5 of the parts' MD5s, "-", the part count. */
static void expected_etag(const s3_write *w, char *out, size_t sz)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[16];
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
	for (size_t i = 0; i < w->nparts; i++)
		EVP_DigestUpdate(ctx, w->parts[i].md5, 16);
	EVP_DigestFinal_ex(ctx, md, &n);
	EVP_MD_CTX_free(ctx);
	char h[33];
	for (int i = 0; i < 16; i++) {
		h[2 * i] = hex[md[i] >> 4];
		h[2 * i + 1] = hex[md[i] & 15];
	}
	h[32] = '\0';
	snprintf(out, sz, "%s-%zu", h, w->nparts);
}

static int complete(s3_write *w, hm_storage_info *info, hm_error *err)
{
	hm_strbuf body = HM_STRBUF_INIT;
	hm_s3_resp resp;
	char etag[128], want[64];
	int rc = -1;
	hm_strbuf_adds(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (size_t i = 0; i < w->nparts; i++) {
		hm_strbuf_addf(&body, "<Part><PartNumber>%zu</PartNumber><ETag>\"", i + 1);
		hm_strbuf_add_xml(&body, w->parts[i].etag);
		hm_strbuf_adds(&body, "\"</ETag></Part>");
	}
	hm_strbuf_adds(&body, "</CompleteMultipartUpload>");
	if (hm_strbuf_failed(&body))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_s3_req req = {.method = "POST", .key = w->key, .body = body.s, .body_len = body.len};
	req.query[req.nquery++] = (hm_s3_kv){"uploadId", w->upload_id};
	req.headers[req.nheaders++] = (hm_s3_kv){"content-type", "application/xml"};
	if (w->flags & HM_STORAGE_EXCLUSIVE)
		req.headers[req.nheaders++] = (hm_s3_kv){"if-none-match", "*"};
	expected_etag(w, want, sizeof want);
	hm_s3_resp_init(&resp);
	if (hm_s3_request(&w->st->c, &req, &resp, err) != 0)
		goto cleanup;
	if (resp.status == 412) {
		hm_error_set(err, HM_EXIT_INPUT, "\"%s\" exists already in %s", w->name,
			     w->st->base.location);
		rc = HM_STORAGE_EXISTS;
		goto cleanup;
	}
	if (resp.status == 404 && strcmp(resp.edoc.code, "NoSuchUpload") == 0 && resp.attempts > 1) {
		/* An earlier attempt may have completed it and lost only the answer: look. */
		hm_storage_info now;
		if (w->st->base.drv->stat(&w->st->base, w->name, &now, err) == 0 &&
		    strcmp(now.etag, want) == 0) {
			snprintf(etag, sizeof etag, "%s", now.etag);
			goto done;
		}
	}
	if (resp.status != 200) {
		hm_s3_fail(&w->st->c, &req, &resp, err);
		goto cleanup;
	}
	if (hm_s3_xml_complete(resp.body.s, resp.body.len, etag, sizeof etag, NULL, err) != 0)
		goto cleanup;
done:
	/* Servers that use another ETag scheme (encryption at rest, some S3 clones) give a
	 * different form; only the md5-of-md5s form can be checked. */
	if (strchr(etag, '-') && strcmp(etag, want) != 0) {
		hm_error_set(
			err, HM_EXIT_CORRUPT,
			"s3: the server assembled %s with ETag %s, but the parts sent make %s: removed it",
			w->name, etag, want);
		hm_error ignored;
		const char *names[] = {w->name};
		w->st->base.drv->remove(&w->st->base, names, 1, &ignored);
		goto cleanup;
	}
	w->upload_id[0] = '\0'; /* done: nothing to abort */
	if (info)
		snprintf(info->etag, sizeof info->etag, "%s", etag);
	rc = 0;
cleanup:
	hm_s3_resp_free(&resp);
	hm_strbuf_free(&body);
	return rc;
}

static int s3_write_commit(hm_storage_writer *base, hm_storage_info *info, hm_error *err)
{
	s3_write *w = (s3_write *)base;
	int rc = -1;
	if (info) {
		memset(info, 0, sizeof *info);
		snprintf(info->name, sizeof info->name, "%s", w->name);
	}
	if (w->failed) {
		*err = w->ferr;
		goto cleanup;
	}
	if (!w->upload_id[0]) {
		rc = put_single(w, info, err);
	} else {
		if (w->fill && w->fill->len && submit(w, 0, err) != 0)
			goto cleanup;
		if (drain(w, 0, err) != 0)
			goto cleanup;
		rc = complete(w, info, err);
	}
	if (rc == 0 && info) {
		info->size = w->total;
		info->mtime = time(NULL);
	}
cleanup:
	if (rc != 0)
		abort_upload(w);
	free_write(w);
	return rc;
}

static const hm_storage_writer_ops s3_write_ops = {s3_write_write, s3_write_commit, s3_write_abort};

int hm_s3_open_write(hm_storage *base, const char *name, unsigned flags, uint64_t size_hint,
		     hm_storage_writer **out, hm_error *err)
{
	s3_storage *st = (s3_storage *)base;
	s3_write *w = calloc(1, sizeof *w);
	if (!w)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	w->base.ops = &s3_write_ops;
	w->st = st;
	w->flags = flags;
	snprintf(w->name, sizeof w->name, "%s", name);
	w->part_size = st->c.part_size;
	w->grow = !size_hint;
	/* With a size hint, parts big enough that the object fits in 10000 of them (with room
	 * for a hint that is 50% low), rounded up to a MiB. */
	if (size_hint) {
		uint64_t need = size_hint / (HM_S3_MAX_PARTS * 2 / 3) + 1;
		need = (need + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
		if (need > w->part_size)
			w->part_size = need > HM_S3_MAX_PART ? HM_S3_MAX_PART : (size_t)need;
	}
	w->cur_size = w->part_size;
	/* Buffers are malloc'd at full size but only touched as far as filled, so a small
	 * object costs its own size in memory, not a part's. */
	w->slots = calloc((size_t)st->c.parallel + 1, sizeof *w->slots);
	if (w->slots)
		w->nslots = st->c.parallel + 1;
	w->parts = calloc(HM_S3_MAX_PARTS, sizeof *w->parts);
	w->multi = curl_multi_init();
	if (hm_s3_key(&st->c, name, 0, w->key, sizeof w->key, err) != 0) {
		free_write(w);
		return -1;
	}
	if (!w->slots || !w->parts || !w->multi || !(w->slots[0].data = malloc(w->part_size)) ||
	    !(w->slots[0].easy = curl_easy_init())) {
		free_write(w);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory (upload buffers)");
	}
	w->slots[0].cap = w->part_size;
	w->fill = &w->slots[0];
	*out = &w->base;
	return 0;
}
