/* The pre-copy's records and decision, the delta's metadata, and the merge of base + delta
 * into one ordinary archive (archive_delta.h). */
#include "archive_delta.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_dir_int.h"
#include "digest.h"
#include "fsutil.h"

#define RECORDS_FORMAT "hive-migrate-precopy/1"

void hm_pc_stat_from(hm_pc_stat *out, const struct stat *st)
{
	memset(out, 0, sizeof *out);
	out->dev = (uint64_t)st->st_dev;
	out->ino = (uint64_t)st->st_ino;
	out->size = (uint64_t)st->st_size;
	out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	out->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
	out->mode = (uint32_t)st->st_mode;
	out->uid = (uint32_t)st->st_uid;
	out->gid = (uint32_t)st->st_gid;
}

int hm_pc_stat_equal(const hm_pc_stat *a, const hm_pc_stat *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns && a->mode == b->mode && a->uid == b->uid && a->gid == b->gid;
}

int hm_precopy_reusable(const hm_pc_stat *before, const hm_pc_stat *after, const hm_pc_stat *now,
			int64_t t0_ns)
{
	if (!hm_pc_stat_equal(before, after) || !hm_pc_stat_equal(before, now))
		return 0;
	return before->ctime_ns < t0_ns - HM_PRECOPY_MARGIN_NS;
}

void hm_pc_records_init(hm_pc_records *r, int64_t t0_ns)
{
	memset(r, 0, sizeof *r);
	r->t0_ns = t0_ns;
}

void hm_pc_records_free(hm_pc_records *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].path);
	free(r->v);
	hm_pc_records_init(r, 0);
}

int hm_pc_records_add(hm_pc_records *r, const char *path, const hm_pc_stat *before, const hm_pc_stat *after,
		      const char *sha256, int torn, hm_error *err)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		hm_pc_record *nv = realloc(r->v, cap * sizeof *nv);
		if (!nv)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		r->v = nv;
		r->cap = cap;
	}
	hm_pc_record *e = &r->v[r->n];
	memset(e, 0, sizeof *e);
	if (!(e->path = strdup(path)))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	e->st = *before;
	e->torn = torn || !hm_pc_stat_equal(before, after);
	snprintf(e->sha256, sizeof e->sha256, "%s", sha256);
	r->n++;
	r->sorted = 0;
	return 0;
}

/* Records by path (bytewise). */
static int cmp_record(const void *a, const void *b)
{
	return strcmp(((const hm_pc_record *)a)->path, ((const hm_pc_record *)b)->path);
}

const hm_pc_record *hm_pc_records_find(hm_pc_records *r, const char *path)
{
	hm_pc_record key = {.path = (char *)path};
	if (!r->n)
		return NULL;
	if (!r->sorted) {
		qsort(r->v, r->n, sizeof *r->v, cmp_record);
		r->sorted = 1;
	}
	return bsearch(&key, r->v, r->n, sizeof *r->v, cmp_record);
}

int hm_pc_records_check(hm_pc_records *r, const hm_manifest *base, hm_error *err)
{
	for (size_t i = 0; i < r->n; i++) {
		const hm_manifest_entry *e = hm_manifest_find(base, r->v[i].path);
		if (!e || e->type != HM_ENTRY_FILE || e->size != r->v[i].st.size ||
		    strcmp(e->sha256, r->v[i].sha256) != 0)
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "the pre-copy's record of \"%s\" is not the base archive's",
					    r->v[i].path);
	}
	return 0;
}

/* Percent-encode the bytes of a path that would break a line of the record file. */
static int put_path(FILE *f, const char *p)
{
	for (const unsigned char *c = (const unsigned char *)p; *c; c++)
		if (*c <= 0x20 || *c == '%' || *c >= 0x7f) {
			if (fprintf(f, "%%%02x", *c) < 0)
				return -1;
		} else if (fputc(*c, f) == EOF) {
			return -1;
		}
	return 0;
}

int hm_pc_records_encode(const hm_pc_records *r, char **out, size_t *len, hm_error *err)
{
	FILE *f = open_memstream(out, len);
	int bad = 0;
	if (!f)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	bad |= fprintf(f, "%s %" PRId64 " %zu\n", RECORDS_FORMAT, r->t0_ns, r->n) < 0;
	for (size_t i = 0; i < r->n && !bad; i++) {
		const hm_pc_record *e = &r->v[i];
		bad |= fprintf(f,
			       "%s %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %u %u %u ",
			       e->sha256, e->torn, e->st.dev, e->st.ino, e->st.size, e->st.mtime_ns,
			       e->st.ctime_ns, e->st.mode, e->st.uid, e->st.gid) < 0;
		bad |= put_path(f, e->path) != 0 || fputc('\n', f) == EOF;
	}
	if (fclose(f) != 0 || bad) {
		free(*out);
		*out = NULL;
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	return 0;
}

/* Decode a percent-encoded path in place. 0 or -1. */
static int unescape(char *p)
{
	char *o = p;
	for (; *p; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		unsigned v;
		if (sscanf(p + 1, "%2x", &v) != 1 || v == 0 || !p[1] || !p[2])
			return -1;
		*o++ = (char)v;
		p += 2;
	}
	*o = '\0';
	return 0;
}

int hm_pc_records_decode(const char *text, size_t len, const char *what, hm_pc_records *r, hm_error *err)
{
	char *copy = strndup(text, len), *save = NULL, *line;
	size_t count = 0;
	int64_t t0 = 0;
	hm_pc_records_init(r, 0);
	if (!copy)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	line = strtok_r(copy, "\n", &save);
	char fmt[32];
	if (!line || sscanf(line, "%31s %" SCNd64 " %zu", fmt, &t0, &count) != 3 ||
	    strcmp(fmt, RECORDS_FORMAT) != 0)
		goto bad;
	r->t0_ns = t0;
	while ((line = strtok_r(NULL, "\n", &save))) {
		hm_pc_record e = {0};
		hm_pc_stat st = {0};
		int pos = 0;
		if (sscanf(line,
			   "%64s %d %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64 " %u %u %u %n",
			   e.sha256, &e.torn, &st.dev, &st.ino, &st.size, &st.mtime_ns, &st.ctime_ns,
			   &st.mode, &st.uid, &st.gid, &pos) != 10 ||
		    strlen(e.sha256) != 64 || !line[pos] || unescape(line + pos) != 0)
			goto bad;
		if (hm_pc_records_add(r, line + pos, &st, &st, e.sha256, e.torn, err) != 0)
			goto fail;
	}
	if (r->n != count)
		goto bad;
	free(copy);
	return 0;
bad:
	hm_error_set(err, HM_EXIT_CORRUPT, "the pre-copy record \"%s\" is damaged", what);
	hm_error_hint(err, "run `up` again: it takes the whole snapshot after the stop");
fail:
	free(copy);
	hm_pc_records_free(r);
	return -1;
}

/* SHA-256 hex of a buffer. */
static int sha_of(const char *data, size_t len, char hex[65], hm_error *err)
{
	hm_sha256 *h = hm_sha256_new();
	if (!h)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_sha256_update(h, data, len);
	hm_sha256_final_hex(h, hex);
	return 0;
}

int hm_pc_records_save(const hm_pc_records *r, const char *path, char sha256[65], hm_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc = -1;
	if (hm_pc_records_encode(r, &text, &len, err) != 0)
		return -1;
	if (sha_of(text, len, sha256, err) == 0 && hm_write_file_atomic(path, text, len, 0600, err) == 0)
		rc = 0;
	free(text);
	return rc;
}

int hm_pc_records_load(const char *path, const char *want_sha256, hm_pc_records *r, hm_error *err)
{
	char *text = NULL, hex[65];
	size_t len = 0;
	int rc = -1;
	hm_pc_records_init(r, 0);
	if (hm_read_file(path, (size_t)1 << 30, &text, &len, err) != 0)
		return -1;
	if (sha_of(text, len, hex, err) != 0)
		goto cleanup;
	if (strcmp(hex, want_sha256) != 0) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED,
			     "the pre-copy record \"%s\" is not the one the journal recorded", path);
		hm_error_hint(err, "run `up` again: it takes the whole snapshot after the stop");
		goto cleanup;
	}
	rc = hm_pc_records_decode(text, len, path, r, err);
cleanup:
	free(text);
	return rc;
}

int hm_tree_order_cmp(const char *a, const char *b)
{
	int ra = !strcmp(a, "."), rb = !strcmp(b, ".");
	if (ra || rb)
		return rb - ra;
	for (;;) {
		size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
		int c = memcmp(a, b, la < lb ? la : lb);
		if (c)
			return c;
		if (la != lb)
			return la < lb ? -1 : 1;
		if (!a[la] || !b[lb])
			return (a[la] ? 1 : 0) - (b[lb] ? 1 : 0);
		a += la + 1;
		b += lb + 1;
	}
}

int hm_delta_metadata(const char *snapshot_meta, const char *base_name, const hm_manifest *reused, char **out,
		      hm_error *err)
{
	char *rj = NULL;
	size_t rlen = 0;
	int rc = -1;
	json_object *o = json_object_new_object(), *snap = json_tokener_parse(snapshot_meta), *r = NULL;
	if (!o || !snap) {
		hm_error_set(err, HM_EXIT_INTERNAL, "the snapshot's metadata is not a JSON object");
		goto cleanup;
	}
	if (hm_manifest_encode(reused, &rj, &rlen, err) != 0)
		goto cleanup;
	if (!(r = json_tokener_parse(rj))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	json_object_object_add(o, "kind", json_object_new_string("migration-snapshot-delta"));
	json_object_object_add(o, "snapshot", snap);
	snap = NULL;
	json_object_object_add(o, "base", json_object_new_string(base_name));
	json_object_object_add(o, "reused", r);
	const char *s =
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s || !(*out = strdup(s))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	rc = 0;
cleanup:
	json_object_put(o);
	json_object_put(snap);
	free(rj);
	return rc;
}

int hm_delta_metadata_parse(const char *json, const char *what, char **snapshot_meta, hm_manifest *reused,
			    hm_error *err)
{
	json_object *o = json_tokener_parse(json), *k, *snap, *r;
	int rc = -1;
	*snapshot_meta = NULL;
	hm_manifest_init(reused);
	if (!o || !json_object_object_get_ex(o, "kind", &k) ||
	    strcmp(json_object_get_string(k), "migration-snapshot-delta") != 0 ||
	    !json_object_object_get_ex(o, "snapshot", &snap) ||
	    !json_object_is_type(snap, json_type_object) || !json_object_object_get_ex(o, "reused", &r) ||
	    !json_object_is_type(r, json_type_object)) {
		hm_error_set(err, HM_EXIT_CORRUPT, "\"%s\" is not the delta of a pre-copied snapshot", what);
		goto cleanup;
	}
	const char *rs = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
	if (hm_manifest_decode(rs, strlen(rs), what, reused, err) != 0 || hm_manifest_sort(reused, err) != 0)
		goto cleanup;
	const char *ss =
		json_object_to_json_string_ext(snap, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!(*snapshot_meta = strdup(ss))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc != 0)
		hm_manifest_free(reused);
	json_object_put(o);
	return rc;
}

int hm_delta_full_manifest(const hm_manifest *delta, const hm_manifest *reused, hm_manifest *out,
			   hm_error *err)
{
	hm_manifest_init(out);
	for (size_t i = 0; i < reused->count; i++)
		if (reused->entries[i].type != HM_ENTRY_FILE)
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "the delta reuses \"%s\", which is not a regular file",
					    reused->entries[i].path);
	for (size_t i = 0; i < delta->count; i++)
		if (hm_manifest_add(out, &delta->entries[i], err) != 0)
			goto fail;
	for (size_t i = 0; i < reused->count; i++)
		if (hm_manifest_add(out, &reused->entries[i], err) != 0)
			goto fail;
	if (hm_manifest_sort(out, err) != 0) {
		err->code = HM_EXIT_VERIFY_FAILED;
		hm_error_prefix(err, "the delta and the base both hold an entry");
		goto fail;
	}
	if (!hm_manifest_find(out, ".")) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "the delta lacks the top directory");
		goto fail;
	}
	return 0;
fail:
	hm_manifest_free(out);
	return -1;
}
