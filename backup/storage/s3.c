/* The S3 driver: names map to keys under the URL's prefix ("s3://b/p" + "x/y" = key "p/x/y").
 * Opening checks access with one small list request so that the common mistakes (wrong
 * keys, missing bucket, skewed clock, wrong region) fail at once with one line. Lists use
 * ListObjectsV2 with encoding-type=url (keys with any bytes survive the XML) and follow
 * continuation tokens; removal is the multi-object delete; sweeping lists the incomplete
 * multipart uploads and aborts them. */
#include "s3_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

void hm_s3_content_md5(const void *data, size_t len, unsigned char md5[16], char b64[32])
{
	unsigned char md[16];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_md5(), NULL);
	if (md5)
		memcpy(md5, md, 16);
	EVP_EncodeBlock((unsigned char *)b64, md, 16);
}

static s3_storage *S(hm_storage *st)
{
	return (s3_storage *)st;
}

static int s3_stat(hm_storage *base, const char *name, hm_storage_info *out, hm_error *err)
{
	s3_storage *st = S(base);
	char key[HM_S3_KEY_MAX + 1];
	hm_s3_resp resp;
	int rc = -1;
	if (hm_s3_key(&st->c, name, 0, key, sizeof key, err) != 0)
		return -1;
	hm_s3_req req = {.method = "HEAD", .key = key};
	hm_s3_resp_init(&resp);
	if (hm_s3_request(&st->c, &req, &resp, err) != 0)
		goto cleanup;
	if (resp.status == 404) {
		hm_error_set(err, HM_EXIT_NOT_FOUND, "no such object \"%s\" in %s", name, base->location);
		rc = HM_STORAGE_MISSING;
		goto cleanup;
	}
	if (resp.status != 200 || !resp.has_length) {
		hm_s3_fail(&st->c, &req, &resp, err);
		goto cleanup;
	}
	snprintf(out->name, sizeof out->name, "%s", name);
	out->size = resp.content_length;
	snprintf(out->etag, sizeof out->etag, "%s", resp.etag);
	if (hm_s3_parse_http_date(resp.last_modified, &out->mtime) != 0)
		out->mtime = 0;
	rc = 0;
cleanup:
	hm_s3_resp_free(&resp);
	return rc;
}

typedef struct list_ctx {
	s3_storage *st;
	size_t strip; /* bytes of the key before the listed names */
	hm_storage_list_cb cb;
	void *ctx;
	unsigned long seen;
} list_ctx;

static int list_entry(void *ud, const hm_s3_object *o, hm_error *err)
{
	list_ctx *lc = ud;
	hm_storage_info info;
	hm_error ignored;
	size_t kl = strlen(o->key);
	if (kl <= lc->strip)
		return 0;
	memset(&info, 0, sizeof info);
	size_t nl = kl - lc->strip;
	if (o->is_prefix) {
		nl--; /* the delimiter */
		info.is_dir = 1;
	} else if (o->key[kl - 1] == '/') {
		return 0; /* a "folder" marker some tools create: not an object of ours */
	}
	if (nl == 0 || nl > HM_STORAGE_NAME_MAX)
		return 0;
	memcpy(info.name, o->key + lc->strip, nl);
	info.name[nl] = '\0';
	if (hm_storage_name_check(info.name, &ignored) != 0)
		return 0; /* a name we could not have written: not part of the repository */
	info.size = o->size;
	info.mtime = o->mtime;
	snprintf(info.etag, sizeof info.etag, "%s", o->etag);
	lc->seen++;
	return lc->cb(lc->ctx, &info, err);
}

static int s3_list(hm_storage *base, const char *dir, unsigned flags, hm_storage_list_cb cb, void *ctx,
		   hm_error *err)
{
	s3_storage *st = S(base);
	char prefix[HM_S3_KEY_MAX + 2], token[2048] = "", prev[2048] = "", maxkeys[16];
	hm_s3_resp resp;
	int rc = -1;
	if (hm_s3_key(&st->c, dir, 1, prefix, sizeof prefix, err) != 0)
		return -1;
	list_ctx lc = {st, strlen(prefix), cb, ctx, 0};
	snprintf(maxkeys, sizeof maxkeys, "%u", st->c.list_page);
	hm_s3_resp_init(&resp);
	for (unsigned long page = 0;; page++) {
		hm_s3_req req = {.method = "GET", .key = NULL};
		req.query[req.nquery++] = (hm_s3_kv){"list-type", "2"};
		req.query[req.nquery++] = (hm_s3_kv){"prefix", prefix};
		req.query[req.nquery++] = (hm_s3_kv){"encoding-type", "url"};
		req.query[req.nquery++] = (hm_s3_kv){"max-keys", maxkeys};
		if (!(flags & HM_STORAGE_RECURSIVE))
			req.query[req.nquery++] = (hm_s3_kv){"delimiter", "/"};
		if (token[0])
			req.query[req.nquery++] = (hm_s3_kv){"continuation-token", token};
		if (hm_s3_request(&st->c, &req, &resp, err) != 0)
			goto cleanup;
		if (resp.status != 200) {
			hm_s3_fail(&st->c, &req, &resp, err);
			goto cleanup;
		}
		int truncated = 0;
		snprintf(prev, sizeof prev, "%s", token);
		if (hm_s3_xml_list(resp.body.s, resp.body.len, 1, list_entry, &lc, &truncated, token,
				   sizeof token, err) != 0)
			goto cleanup;
		if (!truncated)
			break;
		if (strcmp(prev, token) == 0 || page > 10000000) {
			hm_error_set(err, HM_EXIT_IO,
				     "s3: listing %s does not advance (the same continuation token twice)",
				     base->location);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	hm_s3_resp_free(&resp);
	return rc;
}

/* One multi-object delete of up to 1000 full keys. */
static int delete_batch(s3_storage *st, char **keys, size_t n, hm_error *err)
{
	hm_strbuf body = HM_STRBUF_INIT;
	hm_s3_resp resp;
	char md5[32], first[HM_S3_KEY_MAX + 400];
	size_t nerr = 0;
	int rc = -1;
	hm_strbuf_adds(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++) {
		hm_strbuf_adds(&body, "<Object><Key>");
		hm_strbuf_add_xml(&body, keys[i]);
		hm_strbuf_adds(&body, "</Key></Object>");
	}
	hm_strbuf_adds(&body, "</Delete>");
	if (hm_strbuf_failed(&body)) {
		hm_strbuf_free(&body);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	hm_s3_content_md5(body.s, body.len, NULL, md5);
	hm_s3_req req = {.method = "POST", .key = NULL, .body = body.s, .body_len = body.len};
	req.query[req.nquery++] = (hm_s3_kv){"delete", ""};
	req.headers[req.nheaders++] = (hm_s3_kv){"content-md5", md5};
	req.headers[req.nheaders++] = (hm_s3_kv){"content-type", "application/xml"};
	hm_s3_resp_init(&resp);
	if (hm_s3_request(&st->c, &req, &resp, err) != 0)
		goto cleanup;
	if (resp.status != 200) {
		hm_s3_fail(&st->c, &req, &resp, err);
		goto cleanup;
	}
	if (hm_s3_xml_delete(resp.body.s, resp.body.len, &nerr, first, sizeof first, err) != 0)
		goto cleanup;
	if (nerr) {
		hm_error_set(err, HM_EXIT_IO, "s3: %zu of %zu objects in %s could not be removed; first: %s",
			     nerr, n, st->base.location, first);
		goto cleanup;
	}
	rc = 0;
cleanup:
	hm_s3_resp_free(&resp);
	hm_strbuf_free(&body);
	return rc;
}

typedef struct batch {
	char *keys[1000];
	size_t n;
} batch;

static void batch_free(batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->keys[i]);
	b->n = 0;
}

static int batch_add(s3_storage *st, batch *b, const char *key, hm_error *err)
{
	if (!(b->keys[b->n] = strdup(key)))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	if (++b->n == 1000) {
		int rc = delete_batch(st, b->keys, b->n, err);
		batch_free(b);
		return rc;
	}
	return 0;
}

static int s3_remove(hm_storage *base, const char *const *names, size_t n, hm_error *err)
{
	s3_storage *st = S(base);
	batch *b = calloc(1, sizeof *b);
	char key[HM_S3_KEY_MAX + 1];
	int rc = -1;
	if (!b)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (hm_s3_key(&st->c, names[i], 0, key, sizeof key, err) != 0 ||
		    batch_add(st, b, key, err) != 0)
			goto cleanup;
	rc = b->n ? delete_batch(st, b->keys, b->n, err) : 0;
cleanup:
	batch_free(b);
	free(b);
	return rc;
}

typedef struct rmdir_ctx {
	s3_storage *st;
	batch *b;
	const char *dir;
} rmdir_ctx;

static int rmdir_entry(void *ud, const hm_storage_info *info, hm_error *err)
{
	rmdir_ctx *rc = ud;
	char name[HM_STORAGE_NAME_MAX * 2 + 2], key[HM_S3_KEY_MAX + 1];
	snprintf(name, sizeof name, "%s%s%s", rc->dir, *rc->dir ? "/" : "", info->name);
	if (hm_s3_key(&rc->st->c, name, 0, key, sizeof key, err) != 0)
		return -1;
	return batch_add(rc->st, rc->b, key, err);
}

static int s3_remove_dir(hm_storage *base, const char *dir, hm_error *err)
{
	s3_storage *st = S(base);
	batch *b = calloc(1, sizeof *b);
	if (!b)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	rmdir_ctx rc = {st, b, dir};
	int r = s3_list(base, dir, HM_STORAGE_RECURSIVE, rmdir_entry, &rc, err);
	if (r == 0 && b->n)
		r = delete_batch(st, b->keys, b->n, err);
	batch_free(b);
	free(b);
	return r;
}

typedef struct sweep_ctx {
	s3_storage *st;
	int dry_run;
	hm_storage_partial_cb cb;
	void *ctx;
	size_t *count;
} sweep_ctx;

static int abort_upload(s3_storage *st, const char *key, const char *upload_id, hm_error *err)
{
	hm_s3_resp resp;
	hm_s3_req req = {.method = "DELETE", .key = key};
	req.query[req.nquery++] = (hm_s3_kv){"uploadId", upload_id};
	hm_s3_resp_init(&resp);
	int rc = hm_s3_request(&st->c, &req, &resp, err);
	if (rc == 0 && resp.status != 204 && resp.status != 200 &&
	    strcmp(resp.edoc.code, "NoSuchUpload") != 0)
		rc = hm_s3_fail(&st->c, &req, &resp, err);
	hm_s3_resp_free(&resp);
	return rc;
}

static int sweep_upload(void *ud, const hm_s3_upload *u, hm_error *err)
{
	sweep_ctx *sc = ud;
	const char *name = hm_s3_name(&sc->st->c, u->key);
	if (!name || hm_s3_write_active(sc->st, u->upload_id))
		return 0;
	if (sc->cb)
		sc->cb(sc->ctx, name, u->initiated);
	(*sc->count)++;
	return sc->dry_run ? 0 : abort_upload(sc->st, u->key, u->upload_id, err);
}

static int s3_sweep(hm_storage *base, const char *dir, int dry_run, hm_storage_partial_cb cb, void *ctx,
		    size_t *count, hm_error *err)
{
	s3_storage *st = S(base);
	char prefix[HM_S3_KEY_MAX + 2], kmark[HM_S3_KEY_MAX + 1] = "", umark[1024] = "";
	hm_s3_resp resp;
	int rc = -1;
	sweep_ctx sc = {st, dry_run, cb, ctx, count};
	if (hm_s3_key(&st->c, dir, 1, prefix, sizeof prefix, err) != 0)
		return -1;
	hm_s3_resp_init(&resp);
	for (unsigned long page = 0; page < 1000000; page++) {
		hm_s3_req req = {.method = "GET", .key = NULL};
		req.query[req.nquery++] = (hm_s3_kv){"uploads", ""};
		req.query[req.nquery++] = (hm_s3_kv){"prefix", prefix};
		req.query[req.nquery++] = (hm_s3_kv){"encoding-type", "url"};
		if (kmark[0]) {
			req.query[req.nquery++] = (hm_s3_kv){"key-marker", kmark};
			req.query[req.nquery++] = (hm_s3_kv){"upload-id-marker", umark};
		}
		if (hm_s3_request(&st->c, &req, &resp, err) != 0)
			goto cleanup;
		if (resp.status != 200) {
			hm_s3_fail(&st->c, &req, &resp, err);
			goto cleanup;
		}
		int truncated = 0;
		char pk[sizeof kmark], pu[sizeof umark];
		snprintf(pk, sizeof pk, "%s", kmark);
		snprintf(pu, sizeof pu, "%s", umark);
		if (hm_s3_xml_uploads(resp.body.s, resp.body.len, 1, sweep_upload, &sc, &truncated, kmark,
				      sizeof kmark, umark, sizeof umark, err) != 0)
			goto cleanup;
		if (!truncated) {
			rc = 0;
			goto cleanup;
		}
		if (strcmp(pk, kmark) == 0 && strcmp(pu, umark) == 0) {
			hm_error_set(err, HM_EXIT_IO, "s3: listing the uploads of %s does not advance",
				     base->location);
			goto cleanup;
		}
	}
	hm_error_set(err, HM_EXIT_IO, "s3: too many pages of uploads in %s", base->location);
cleanup:
	hm_s3_resp_free(&resp);
	return rc;
}

static void s3_close(hm_storage *base)
{
	s3_storage *st = S(base);
	hm_s3_client_free(&st->c);
	free(st);
}

static const hm_storage_driver s3_driver = {
	"s3",
	hm_s3_open_read,
	hm_s3_open_write,
	s3_stat,
	s3_list,
	s3_remove,
	s3_remove_dir,
	s3_sweep,
	hm_s3_lock_acquire,
	hm_s3_lock_check,
	hm_s3_lock_release,
	s3_close,
};

/* One cheap request that needs the credentials, the bucket and a sane clock. */
static int probe(s3_storage *st, hm_error *err)
{
	char prefix[HM_S3_KEY_MAX + 2];
	hm_s3_resp resp;
	if (hm_s3_key(&st->c, "", 1, prefix, sizeof prefix, err) != 0)
		return -1;
	hm_s3_req req = {.method = "GET", .key = NULL};
	req.query[req.nquery++] = (hm_s3_kv){"list-type", "2"};
	req.query[req.nquery++] = (hm_s3_kv){"prefix", prefix};
	req.query[req.nquery++] = (hm_s3_kv){"max-keys", "1"};
	hm_s3_resp_init(&resp);
	int rc = hm_s3_request(&st->c, &req, &resp, err);
	if (rc == 0 && resp.status != 200)
		rc = hm_s3_fail(&st->c, &req, &resp, err);
	hm_s3_resp_free(&resp);
	return rc;
}

static int open_common(const char *url, const hm_storage_options *opt, int check, hm_storage **out,
		       hm_error *err)
{
	s3_storage *st = calloc(1, sizeof *st);
	if (!st)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	st->base.drv = &s3_driver;
	if (hm_s3_client_init(&st->c, url, &opt->s3, err) != 0) {
		hm_s3_client_free(&st->c);
		free(st);
		return -1;
	}
	snprintf(st->base.location, sizeof st->base.location, "s3://%s%s%s", st->c.bucket,
		 st->c.prefix[0] ? "/" : "", st->c.prefix);
	if (check && probe(st, err) != 0) {
		s3_close(&st->base);
		return -1;
	}
	*out = &st->base;
	return 0;
}

int hm_storage_s3_open(const char *url, const hm_storage_options *opt, hm_storage **out, hm_error *err)
{
	/* opt->create asks only for a handle without the probe (the bucket may not exist yet:
	 * hm_s3_bucket_create comes next). */
	return open_common(url, opt, !opt->create, out, err);
}

static int bucket_request(hm_storage *base, const char *method, hm_error *err)
{
	s3_storage *st = S(base);
	hm_strbuf body = HM_STRBUF_INIT;
	hm_s3_resp resp;
	if (strcmp(method, "PUT") == 0 && strcmp(st->c.region, "us-east-1") != 0)
		hm_strbuf_addf(&body,
			       "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			       "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
			       st->c.region);
	hm_s3_req req = {.method = method, .key = NULL, .body = body.s, .body_len = body.len};
	hm_s3_resp_init(&resp);
	int rc = hm_s3_request(&st->c, &req, &resp, err);
	if (rc == 0 && resp.status != 200 && resp.status != 204 &&
	    strcmp(resp.edoc.code, "BucketAlreadyOwnedByYou") != 0)
		rc = hm_s3_fail(&st->c, &req, &resp, err);
	hm_s3_resp_free(&resp);
	hm_strbuf_free(&body);
	return rc;
}

int hm_s3_bucket_create(hm_storage *st, hm_error *err)
{
	if (strcmp(st->drv->name, "s3") != 0)
		return hm_error_set(err, HM_EXIT_USAGE, "%s is not an s3 location", st->location);
	return bucket_request(st, "PUT", err);
}

int hm_s3_bucket_delete(hm_storage *st, hm_error *err)
{
	if (strcmp(st->drv->name, "s3") != 0)
		return hm_error_set(err, HM_EXIT_USAGE, "%s is not an s3 location", st->location);
	return bucket_request(st, "DELETE", err);
}

void hm_s3_get_stats(const hm_storage *st, hm_s3_stats *out)
{
	memset(out, 0, sizeof *out);
	if (strcmp(st->drv->name, "s3") == 0)
		*out = ((const s3_storage *)st)->c.stats;
}
