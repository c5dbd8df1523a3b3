/* Manifest encode/decode. The decoder is strict on purpose: a manifest is the only thing
 * that says what a good archive holds, so anything unexpected in it is corruption. */
#include "manifest.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

void hm_manifest_init(hm_manifest *m)
{
	memset(m, 0, sizeof *m);
}

/* Free the strings of one entry. */
static void entry_free(hm_manifest_entry *e)
{
	free(e->path);
	free(e->target);
	e->path = e->target = NULL;
}

void hm_manifest_free(hm_manifest *m)
{
	for (size_t i = 0; i < m->count; i++)
		entry_free(&m->entries[i]);
	free(m->entries);
	free(m->metadata_json);
	hm_manifest_init(m);
}

const char *hm_manifest_type_name(char type)
{
	switch (type) {
	case HM_ENTRY_FILE:
		return "file";
	case HM_ENTRY_DIR:
		return "dir";
	case HM_ENTRY_SYMLINK:
		return "symlink";
	default:
		return "unknown";
	}
}

/* Inverse of hm_manifest_type_name; 0 when unknown. */
static char type_from_name(const char *s)
{
	if (!strcmp(s, "file"))
		return HM_ENTRY_FILE;
	if (!strcmp(s, "dir"))
		return HM_ENTRY_DIR;
	if (!strcmp(s, "symlink"))
		return HM_ENTRY_SYMLINK;
	return 0;
}

int hm_manifest_add(hm_manifest *m, const hm_manifest_entry *e, hm_error *err)
{
	if (m->count == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 256;
		hm_manifest_entry *n = realloc(m->entries, ncap * sizeof *n);
		if (!n)
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory building a manifest");
		m->entries = n;
		m->cap = ncap;
	}
	hm_manifest_entry *d = &m->entries[m->count];
	*d = *e;
	d->path = strdup(e->path);
	d->target = e->target ? strdup(e->target) : NULL;
	if (!d->path || (e->target && !d->target)) {
		entry_free(d);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory building a manifest");
	}
	m->count++;
	m->sorted = 0;
	return 0;
}

int hm_manifest_set_metadata(hm_manifest *m, const char *json, hm_error *err)
{
	json_object *o = json_tokener_parse(json);
	int ok = o && json_object_is_type(o, json_type_object);
	json_object_put(o);
	if (!ok)
		return hm_error_set(err, HM_EXIT_INTERNAL, "archive metadata is not a JSON object");
	char *copy = strdup(json);
	hm_sha256 *h = hm_sha256_new();
	if (!copy || !h) {
		free(copy);
		hm_sha256_free(h);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	free(m->metadata_json);
	m->metadata_json = copy;
	hm_sha256_update(h, json, strlen(json));
	hm_sha256_final_hex(h, m->metadata_sha256);
	return 0;
}

/* Is s valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)? JSON
 * text must be; names that are not go into "path_hex" / "target_hex" instead. */
static int utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p, n, cp;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3, cp = c & 0x07;
		else
			return 0;
		for (unsigned i = 1; i <= n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		p += n + 1;
	}
	return 1;
}

/* Add a byte string as key (valid UTF-8) or as key_hex (lower-case hex of its bytes). */
static int put_name(json_object *o, const char *key, const char *v)
{
	if (utf8_valid(v))
		return json_object_object_add(o, key, json_object_new_string(v));
	size_t n = strlen(v);
	char *hex = malloc(2 * n + 1), k[32];
	if (!hex)
		return -1;
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)v[i]);
	snprintf(k, sizeof k, "%s_hex", key);
	int rc = json_object_object_add(o, k, json_object_new_string(hex));
	free(hex);
	return rc;
}

/* The byte string of key or key_hex (exactly one of them) into a malloc'd *out. 0, or -1
 * when missing, both, or malformed hex. */
static int get_name(json_object *o, const char *key, char **out)
{
	json_object *v, *h;
	char k[32];
	snprintf(k, sizeof k, "%s_hex", key);
	int has_v = json_object_object_get_ex(o, key, &v), has_h = json_object_object_get_ex(o, k, &h);
	*out = NULL;
	if (has_v == has_h)
		return -1;
	if (has_v) {
		if (!json_object_is_type(v, json_type_string))
			return -1;
		*out = strdup(json_object_get_string(v));
		return *out ? 0 : -1;
	}
	if (!json_object_is_type(h, json_type_string))
		return -1;
	const char *x = json_object_get_string(h);
	size_t n = strlen(x);
	if (n % 2 || !(*out = malloc(n / 2 + 1)))
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned hi, lo;
		char a = x[2 * i], b = x[2 * i + 1];
		hi = a >= '0' && a <= '9'   ? (unsigned)(a - '0')
		     : a >= 'a' && a <= 'f' ? (unsigned)(a - 'a' + 10)
					    : 16;
		lo = b >= '0' && b <= '9'   ? (unsigned)(b - '0')
		     : b >= 'a' && b <= 'f' ? (unsigned)(b - 'a' + 10)
					    : 16;
		if (hi > 15 || lo > 15 || (hi == 0 && lo == 0)) {
			free(*out);
			*out = NULL;
			return -1;
		}
		(*out)[i] = (char)(hi << 4 | lo);
	}
	(*out)[n / 2] = '\0';
	return 0;
}

/* Add an int64 field. */
static void put_int(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

int hm_manifest_encode(const hm_manifest *m, char **out, size_t *len, hm_error *err)
{
	int rc = -1;
	json_object *root = json_object_new_object();
	json_object *files = json_object_new_array();
	if (!root || !files)
		goto oom;
	json_object_object_add(root, "format", json_object_new_string(HM_MANIFEST_FORMAT));
	if (m->metadata_json) {
		json_object *meta = json_tokener_parse(m->metadata_json);
		if (!meta)
			goto oom;
		json_object_object_add(root, "metadata", meta);
		json_object_object_add(root, "metadata_sha256", json_object_new_string(m->metadata_sha256));
	}
	for (size_t i = 0; i < m->count; i++) {
		const hm_manifest_entry *e = &m->entries[i];
		json_object *f = json_object_new_object();
		if (!f)
			goto oom;
		if (put_name(f, "path", e->path) != 0)
			goto oom;
		json_object_object_add(f, "type", json_object_new_string(hm_manifest_type_name(e->type)));
		put_int(f, "size", (int64_t)e->size);
		put_int(f, "mode", e->mode);
		put_int(f, "uid", e->uid);
		put_int(f, "gid", e->gid);
		put_int(f, "mtime", e->mtime);
		if (e->type == HM_ENTRY_FILE)
			json_object_object_add(f, "sha256", json_object_new_string(e->sha256));
		if (e->type == HM_ENTRY_SYMLINK && put_name(f, "target", e->target ? e->target : "") != 0)
			goto oom;
		json_object_array_add(files, f);
	}
	json_object_object_add(root, "files", files);
	files = NULL;
	size_t n = 0;
	const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &n);
	if (!s || !(*out = malloc(n + 1)))
		goto oom;
	memcpy(*out, s, n + 1);
	if (len)
		*len = n;
	rc = 0;
	goto cleanup;
oom:
	hm_error_set(err, HM_EXIT_INTERNAL, "out of memory encoding a manifest");
cleanup:
	json_object_put(files);
	json_object_put(root);
	return rc;
}

/* Is s a 64-char lower-case hex string? */
static int is_hex64(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

/* Fetch a required field of a given type. */
static json_object *field(json_object *o, const char *k, json_type t)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
		return NULL;
	return v;
}

int hm_manifest_decode(const char *json, size_t len, const char *what, hm_manifest *m, hm_error *err)
{
	hm_manifest_init(m);
	json_tokener *tok = json_tokener_new();
	json_object *root = NULL, *v, *files;
	size_t i = 0;
	int rc = -1;
	if (!tok)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	root = json_tokener_parse_ex(tok, json, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_object)) {
		hm_error_set(err, HM_EXIT_CORRUPT, "manifest in \"%s\" is not valid JSON", what);
		goto cleanup;
	}
	if (!(v = field(root, "format", json_type_string)) ||
	    strcmp(json_object_get_string(v), HM_MANIFEST_FORMAT) != 0) {
		hm_error_set(err, HM_EXIT_CORRUPT, "manifest in \"%s\" has an unknown format", what);
		goto cleanup;
	}
	if ((v = field(root, "metadata", json_type_object))) {
		json_object *d = field(root, "metadata_sha256", json_type_string);
		if (!d || !is_hex64(json_object_get_string(d))) {
			hm_error_set(err, HM_EXIT_CORRUPT, "manifest in \"%s\" lacks a metadata digest",
				     what);
			goto cleanup;
		}
		m->metadata_json = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		snprintf(m->metadata_sha256, sizeof m->metadata_sha256, "%s", json_object_get_string(d));
	}
	if (!(files = field(root, "files", json_type_array))) {
		hm_error_set(err, HM_EXIT_CORRUPT, "manifest in \"%s\" has no file list", what);
		goto cleanup;
	}
	for (i = 0; i < json_object_array_length(files); i++) {
		json_object *f = json_object_array_get_idx(files, i);
		json_object *t = field(f, "type", json_type_string);
		json_object *sz = field(f, "size", json_type_int), *mo = field(f, "mode", json_type_int);
		json_object *u = field(f, "uid", json_type_int), *g = field(f, "gid", json_type_int);
		json_object *mt = field(f, "mtime", json_type_int);
		hm_manifest_entry e = {0};
		char *path = NULL, *target = NULL;
		if (!t || !sz || !mo || !u || !g || !mt ||
		    !(e.type = type_from_name(json_object_get_string(t))) || get_name(f, "path", &path) != 0)
			goto bad_entry;
		e.path = path;
		if (!e.path[0] || json_object_get_int64(sz) < 0 || json_object_get_int64(mo) < 0 ||
		    json_object_get_int64(mo) > 07777 || json_object_get_int64(u) < 0 ||
		    json_object_get_int64(u) >= 0xFFFFFFFFll || json_object_get_int64(g) < 0 ||
		    json_object_get_int64(g) >= 0xFFFFFFFFll) {
			free(path);
			goto bad_entry;
		}
		e.size = (uint64_t)json_object_get_int64(sz);
		e.mode = (uint32_t)json_object_get_int64(mo);
		e.uid = (uint32_t)json_object_get_int64(u);
		e.gid = (uint32_t)json_object_get_int64(g);
		e.mtime = json_object_get_int64(mt);
		if (e.type == HM_ENTRY_FILE) {
			json_object *d = field(f, "sha256", json_type_string);
			if (!d || !is_hex64(json_object_get_string(d))) {
				free(path);
				goto bad_entry;
			}
			snprintf(e.sha256, sizeof e.sha256, "%s", json_object_get_string(d));
		}
		if (e.type == HM_ENTRY_SYMLINK) {
			if (get_name(f, "target", &target) != 0) {
				free(path);
				goto bad_entry;
			}
			e.target = target;
		}
		int ar = hm_manifest_add(m, &e, err);
		free(path);
		free(target);
		if (ar != 0)
			goto cleanup;
	}
	if (hm_manifest_sort(m, err) != 0) {
		hm_error_prefix(err, "manifest in \"%s\"", what);
		goto cleanup;
	}
	rc = 0;
	goto cleanup;
bad_entry:
	hm_error_set(err, HM_EXIT_CORRUPT, "manifest in \"%s\": entry %zu is malformed", what, i);
cleanup:
	json_object_put(root);
	json_tokener_free(tok);
	if (rc != 0)
		hm_manifest_free(m);
	return rc;
}

/* qsort comparator on path. */
static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const hm_manifest_entry *)a)->path, ((const hm_manifest_entry *)b)->path);
}

int hm_manifest_sort(hm_manifest *m, hm_error *err)
{
	if (m->count)
		qsort(m->entries, m->count, sizeof *m->entries, cmp_entry);
	for (size_t i = 1; i < m->count; i++)
		if (!strcmp(m->entries[i - 1].path, m->entries[i].path))
			return hm_error_set(err, HM_EXIT_CORRUPT, "duplicate path \"%s\"",
					    m->entries[i].path);
	m->sorted = 1;
	return 0;
}

const hm_manifest_entry *hm_manifest_find(const hm_manifest *m, const char *path)
{
	hm_manifest_entry key = {.path = (char *)path};
	if (!m->count)
		return NULL;
	return bsearch(&key, m->entries, m->count, sizeof *m->entries, cmp_entry);
}

int hm_manifest_entry_compare(const hm_manifest_entry *want, const hm_manifest_entry *got, hm_error *err)
{
	const char *p = want->path;
	if (want->type != got->type)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "\"%s\": type is %s, manifest says %s", p,
				    hm_manifest_type_name(got->type), hm_manifest_type_name(want->type));
	if (want->type == HM_ENTRY_FILE && want->size != got->size)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "\"%s\": size is %llu, manifest says %llu", p,
				    (unsigned long long)got->size, (unsigned long long)want->size);
	if (want->type == HM_ENTRY_FILE && strcmp(want->sha256, got->sha256) != 0)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "\"%s\": sha256 differs from the manifest",
				    p);
	if (want->type != HM_ENTRY_SYMLINK && want->mode != got->mode)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "\"%s\": mode is %04o, manifest says %04o", p,
				    got->mode, want->mode);
	if (want->uid != got->uid || want->gid != got->gid)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "\"%s\": owner is %u:%u, manifest says %u:%u",
				    p, got->uid, got->gid, want->uid, want->gid);
	if (want->mtime != got->mtime)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "\"%s\": mtime is %lld, manifest says %lld",
				    p, (long long)got->mtime, (long long)want->mtime);
	if (want->type == HM_ENTRY_SYMLINK &&
	    strcmp(want->target ? want->target : "", got->target ? got->target : "") != 0)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				    "\"%s\": symlink target differs from the manifest", p);
	return 0;
}
