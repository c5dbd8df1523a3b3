/* The repository lock on S3: a lease object. S3 has no flock and no process that notices a
 * dead holder, so the lock is an object whose every change is a compare-and-swap:
 *   acquire  PUT If-None-Match: *           (create only if absent)
 *   renew    PUT If-Match: <our ETag>       (only while it is still ours)
 *   take     PUT If-Match: <expired ETag>   (replace a lease nobody renewed for its TTL)
 *   release  DELETE, after a HEAD shows our ETag
 * Expiry is judged on the server's clock alone (its Date against the object's Last-Modified),
 * so skew between the hosts sharing a bucket does not matter. Because the body carries a
 * random token, every write changes the ETag, and two runs racing for an expired lease cannot
 * both win. What it does not protect against: a holder paused longer than the TTL (its next
 * renewal fails and it stops before its commit point, but a write already in flight lands),
 * and a server that ignores conditional headers (acquire checks that and refuses). */
#include "s3_driver.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/rand.h>

#define LOCK_MAX 4096

struct s3_lock {
	hm_storage_lock base;
	char key[HM_S3_KEY_MAX + 1];
	char name[HM_STORAGE_NAME_MAX + 1];
	char etag[128];
	char token[33];
	char owner[400];
	time_t acquired;
	struct timespec renewed; /* CLOCK_MONOTONIC */
};

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static char *lock_body(s3_storage *st, s3_lock *l)
{
	char host[256] = "?", when[32];
	struct tm tm;
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	gmtime_r(&l->acquired, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "format", json_object_new_string("hive-migrate-lock/1"));
	json_object_object_add(o, "token", json_object_new_string(l->token));
	json_object_object_add(o, "owner", json_object_new_string(l->owner));
	json_object_object_add(o, "host", json_object_new_string(host));
	json_object_object_add(o, "pid", json_object_new_int64((int64_t)getpid()));
	json_object_object_add(o, "acquired", json_object_new_string(when));
	json_object_object_add(o, "ttl", json_object_new_int64(st->c.lock_ttl_s));
	/* A fresh value every write, so the ETag changes even when nothing else does. */
	unsigned char rnd[8];
	char nonce[17];
	RAND_bytes(rnd, sizeof rnd);
	for (int i = 0; i < 8; i++)
		snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
	json_object_object_add(o, "nonce", json_object_new_string(nonce));
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

/* PUT the lock body with one condition header. 0 (etag_out updated), 1 precondition failed
 * (or 404 for If-Match: gone), -1 error. */
static int put_lock(s3_storage *st, s3_lock *l, const char *cond_name, const char *cond_value, char *etag_out,
		    size_t etagsz, hm_error *err)
{
	char md5[32], sha[65];
	hm_s3_resp resp;
	char *body = lock_body(st, l);
	if (!body)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	size_t len = strlen(body);
	hm_s3_content_md5(body, len, NULL, md5);
	hm_s3_sha256_hex(body, len, sha);
	hm_s3_req req = {.method = "PUT", .key = l->key, .body = body, .body_len = len, .payload_hash = sha};
	req.headers[req.nheaders++] = (hm_s3_kv){"content-md5", md5};
	req.headers[req.nheaders++] = (hm_s3_kv){"content-type", "application/json"};
	req.headers[req.nheaders++] = (hm_s3_kv){cond_name, cond_value};
	hm_s3_resp_init(&resp);
	int rc = hm_s3_request(&st->c, &req, &resp, err);
	if (rc == 0) {
		if (resp.status == 200 && resp.etag[0]) {
			snprintf(etag_out, etagsz, "%s", resp.etag);
		} else if (resp.status == 412 || resp.status == 409 ||
			   (resp.status == 404 && strcmp(cond_name, "if-match") == 0)) {
			rc = 1;
		} else {
			rc = hm_s3_fail(&st->c, &req, &resp, err);
		}
	}
	hm_s3_resp_free(&resp);
	free(body);
	return rc;
}

/* PUT If-Match etag: in the form the server is known to match, or both forms while that
 * is not known (a 412 in one form only means "try the other"). 0, 1 precondition failed,
 * -1 error. */
static int put_lock_if_match(s3_storage *st, s3_lock *l, const char *etag, hm_error *err)
{
	char cond[140];
	int tries = st->c.etag_quoted < 0 ? 2 : 1;
	for (int alt = 0; alt < tries; alt++) {
		hm_s3_if_match(&st->c, etag, alt, cond, sizeof cond);
		int rc = put_lock(st, l, "if-match", cond, l->etag, sizeof l->etag, err);
		if (rc == 0)
			hm_s3_if_match_ok(&st->c, alt);
		if (rc != 1)
			return rc;
	}
	return 1;
}

typedef struct holder {
	char etag[128];
	char owner[400], host[256];
	long long pid;
	long long ttl;
	long long age; /* seconds since its last renewal, by the server's clock */
} holder;

/* Read the current lock object. 0, 1 when it is gone, -1 error. */
static int read_holder(s3_storage *st, s3_lock *l, holder *h, hm_error *err)
{
	hm_s3_resp resp;
	hm_s3_req req = {.method = "GET", .key = l->key};
	memset(h, 0, sizeof *h);
	hm_s3_resp_init(&resp);
	int rc = hm_s3_request(&st->c, &req, &resp, err);
	if (rc != 0)
		goto cleanup;
	if (resp.status == 404) {
		rc = 1;
		goto cleanup;
	}
	if (resp.status != 200) {
		rc = hm_s3_fail(&st->c, &req, &resp, err);
		goto cleanup;
	}
	time_t now, mod;
	if (hm_s3_parse_http_date(resp.date, &now) != 0 ||
	    hm_s3_parse_http_date(resp.last_modified, &mod) != 0) {
		rc = hm_error_set(err, HM_EXIT_IO, "s3: no valid Date and Last-Modified for the lock %s/%s",
				  st->base.location, l->name);
		goto cleanup;
	}
	snprintf(h->etag, sizeof h->etag, "%s", resp.etag);
	h->age = (long long)(now - mod);
	h->ttl = st->c.lock_ttl_s;
	/* The body is another host's writing: read it leniently, bound what we use. */
	json_object *o = resp.body.len < LOCK_MAX ? json_tokener_parse(resp.body.s ? resp.body.s : "") : NULL;
	json_object *v;
	if (o && json_object_is_type(o, json_type_object)) {
		if (json_object_object_get_ex(o, "owner", &v) && json_object_is_type(v, json_type_string))
			snprintf(h->owner, sizeof h->owner, "%s", json_object_get_string(v));
		if (json_object_object_get_ex(o, "host", &v) && json_object_is_type(v, json_type_string))
			snprintf(h->host, sizeof h->host, "%s", json_object_get_string(v));
		if (json_object_object_get_ex(o, "pid", &v) && json_object_is_type(v, json_type_int))
			h->pid = json_object_get_int64(v);
		if (json_object_object_get_ex(o, "ttl", &v) && json_object_is_type(v, json_type_int)) {
			long long t = json_object_get_int64(v);
			if (t >= 10 && t <= 86400)
				h->ttl = t; /* the holder's own lease, if sane */
		}
	}
	if (o)
		json_object_put(o);
	for (char *p = h->owner; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	for (char *p = h->host; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
cleanup:
	hm_s3_resp_free(&resp);
	return rc;
}

static int locked(s3_storage *st, s3_lock *l, const holder *h, hm_error *err)
{
	hm_error_set(err, HM_EXIT_LOCKED,
		     "another run holds the lock %s/%s: %s (host %s, pid %lld), renewed %lld s ago, expires "
		     "in %lld s",
		     st->base.location, l->name, h->owner[0] ? h->owner : "unknown",
		     h->host[0] ? h->host : "?", h->pid, h->age, h->ttl - h->age > 0 ? h->ttl - h->age : 0);
	return hm_error_hint(err, "wait for it to finish; the lock of a run that died expires after %lld s",
			     h->ttl);
}

int hm_s3_lock_acquire(hm_storage *base, const char *name, const char *owner, hm_storage_lock **out,
		       hm_error *err)
{
	s3_storage *st = (s3_storage *)base;
	unsigned char rnd[16];
	char again[128];
	holder h;
	int slot = -1;
	for (int i = HM_S3_MAX_HELD - 1; i >= 0; i--) {
		if (!st->held[i])
			slot = i;
		else if (strcmp(st->held[i]->name, name) == 0)
			return hm_error_set(err, HM_EXIT_INTERNAL, "s3: this handle holds %s already", name);
	}
	if (slot < 0)
		return hm_error_set(err, HM_EXIT_INTERNAL, "s3: this handle holds %d locks already",
				    HM_S3_MAX_HELD);
	s3_lock *l = calloc(1, sizeof *l);
	if (!l)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	l->base.st = base;
	snprintf(l->name, sizeof l->name, "%s", name);
	snprintf(l->owner, sizeof l->owner, "%s", owner);
	l->acquired = time(NULL);
	RAND_bytes(rnd, sizeof rnd);
	for (int i = 0; i < 16; i++)
		snprintf(l->token + 2 * i, 3, "%02x", rnd[i]);
	if (hm_s3_key(&st->c, name, 0, l->key, sizeof l->key, err) != 0)
		goto fail;
	for (int round = 0; round < 3; round++) {
		int rc = put_lock(st, l, "if-none-match", "*", l->etag, sizeof l->etag, err);
		if (rc < 0)
			goto fail;
		if (rc == 0) {
			/* A server that ignores If-None-Match would let a second run in: check that
			 * it refuses to create what now exists. */
			rc = put_lock(st, l, "if-none-match", "*", again, sizeof again, err);
			if (rc < 0)
				goto fail;
			if (rc == 0) {
				hm_error_set(err, HM_EXIT_INPUT,
					     "s3: %s ignores conditional writes (If-None-Match), so the "
					     "repository lock "
					     "cannot be exclusive",
					     st->c.endpoint);
				hm_error_hint(
					err,
					"use a server with conditional writes (AWS S3, Ceph radosgw, MinIO)");
				const char *names[] = {name};
				hm_error ignored;
				base->drv->remove(base, names, 1, &ignored);
				goto fail;
			}
			goto got;
		}
		rc = read_holder(st, l, &h, err);
		if (rc < 0)
			goto fail;
		if (rc == 1)
			continue; /* released meanwhile: try to create it again */
		if (h.age <= h.ttl) {
			locked(st, l, &h, err);
			goto fail;
		}
		/* Expired: take it over by compare-and-swap on the ETag we saw. */
		rc = put_lock_if_match(st, l, h.etag, err);
		if (rc < 0)
			goto fail;
		if (rc == 0)
			goto got;
		/* Someone else took or renewed it first: look again. */
	}
	hm_error_set(err, HM_EXIT_LOCKED, "the lock %s/%s keeps changing hands; another run is taking it",
		     base->location, name);
	goto fail;
got:
	clock_gettime(CLOCK_MONOTONIC, &l->renewed);
	st->held[slot] = l;
	*out = &l->base;
	return 0;
fail:
	free(l);
	return -1;
}

static int renew(s3_storage *st, s3_lock *l, hm_error *err)
{
	char mine[128];
	snprintf(mine, sizeof mine, "%s", l->etag);
	int rc = put_lock_if_match(st, l, mine, err);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		hm_error_set(err, HM_EXIT_LOCKED,
			     "lost the lock %s/%s: another run took it over after it expired (this run was "
			     "stalled "
			     "for more than %u s)",
			     st->base.location, l->name, st->c.lock_ttl_s);
		return hm_error_hint(
			err, "nothing was committed after the loss; run again once the other run ends");
	}
	clock_gettime(CLOCK_MONOTONIC, &l->renewed);
	return 0;
}

int hm_s3_lock_check(hm_storage_lock *base, hm_error *err)
{
	s3_lock *l = (s3_lock *)base;
	return renew((s3_storage *)base->st, l, err);
}

int hm_s3_lock_tick(s3_storage *st, hm_error *err)
{
	for (int i = 0; i < HM_S3_MAX_HELD; i++) {
		s3_lock *l = st->held[i];
		if (l && since(&l->renewed) >= st->c.lock_ttl_s / 3.0 && renew(st, l, err) != 0)
			return -1;
	}
	return 0;
}

void hm_s3_lock_release(hm_storage_lock *base)
{
	s3_lock *l = (s3_lock *)base;
	s3_storage *st = (s3_storage *)base->st;
	hm_error ignored;
	hm_storage_info info;
	/* Delete only what is still ours (If-Match too, where the server honours it). */
	if (st->base.drv->stat(&st->base, l->name, &info, &ignored) == 0 && strcmp(info.etag, l->etag) == 0) {
		char cond[140];
		hm_s3_resp resp;
		hm_s3_if_match(&st->c, l->etag, 0, cond, sizeof cond);
		hm_s3_req req = {.method = "DELETE", .key = l->key};
		req.headers[req.nheaders++] = (hm_s3_kv){"if-match", cond};
		hm_s3_resp_init(&resp);
		hm_s3_request(&st->c, &req, &resp, &ignored);
		hm_s3_resp_free(&resp);
	}
	for (int i = 0; i < HM_S3_MAX_HELD; i++)
		if (st->held[i] == l)
			st->held[i] = NULL;
	free(l);
}
