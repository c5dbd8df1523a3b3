/* backup.json encoding. Strings are copied into fixed fields so that a metadata record is
 * one plain struct (easy to sort, list and rewrite); anything too long is an error, not a
 * silent truncation. */
#include "meta.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hm_meta_init(hm_backup_meta *m)
{
	memset(m, 0, sizeof *m);
	m->verified = -1;
}

const char *hm_time_iso(time_t t, char *buf, size_t bufsz)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

int hm_time_parse(const char *s, time_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return -1;
	*out = timegm(&tm);
	return 0;
}

const hm_backup_member *hm_meta_member(const hm_backup_meta *m, const char *name)
{
	for (int i = 0; i < m->nmembers; i++)
		if (!strcmp(m->members[i].name, name))
			return &m->members[i];
	return NULL;
}

/* Add a string field unless empty. */
static void add_str(json_object *o, const char *key, const char *v)
{
	if (v && v[0])
		json_object_object_add(o, key, json_object_new_string(v));
}

/* Add a time field as ISO text. */
static void add_time(json_object *o, const char *key, time_t t)
{
	char buf[32];
	if (t > 0)
		json_object_object_add(o, key, json_object_new_string(hm_time_iso(t, buf, sizeof buf)));
}

char *hm_meta_encode(const hm_backup_meta *m, int with_status)
{
	json_object *o = json_object_new_object();
	add_str(o, "format", HM_META_FORMAT);
	add_str(o, "id", m->id);
	add_str(o, "kind", m->kind);
	add_str(o, "uuid", m->uuid);
	add_str(o, "label", m->label);
	add_time(o, "start_time", m->start_time);
	add_time(o, "end_time", m->end_time);
	add_str(o, "start_lsn", m->start_lsn);
	add_str(o, "end_lsn", m->end_lsn);
	if (m->timeline)
		json_object_object_add(o, "timeline", json_object_new_int64(m->timeline));
	add_str(o, "system_identifier", m->system_identifier);
	json_object_object_add(o, "pg_version", json_object_new_int(m->pg_version));
	if (m->wal_segment_size)
		json_object_object_add(o, "wal_segment_size", json_object_new_int64(m->wal_segment_size));
	add_str(o, "manifest_checksums", m->manifest_checksums);
	add_str(o, "compression", m->compression);
	add_str(o, "source", m->source);
	json_object_object_add(o, "database_size", json_object_new_int64((int64_t)m->database_size));
	add_str(o, "archive", m->archive);
	if (m->archive_size)
		json_object_object_add(o, "archive_size", json_object_new_int64((int64_t)m->archive_size));
	json_object *arr = json_object_new_array();
	for (int i = 0; i < m->nmembers; i++) {
		json_object *e = json_object_new_object();
		add_str(e, "name", m->members[i].name);
		json_object_object_add(e, "size", json_object_new_int64((int64_t)m->members[i].size));
		add_str(e, "sha256", m->members[i].sha256);
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "members", arr);
	if (m->stored_name[0]) {
		json_object *st = json_object_new_object();
		add_str(st, "name", m->stored_name);
		json_object_object_add(st, "size", json_object_new_int64((int64_t)m->stored_size));
		add_str(st, "sha256", m->stored_sha256);
		json_object_object_add(o, "stored", st);
	}
	if (m->encryption[0]) {
		json_object *en = json_object_new_object();
		add_str(en, "cipher", m->encryption);
		add_str(en, "kdf", m->kdf);
		add_str(en, "key_id", m->key_id);
		json_object_object_add(o, "encryption", en);
	}
	if (with_status) {
		json_object_object_add(o, "verified",
				       m->verified < 0 ? NULL : json_object_new_boolean(m->verified == 1));
		add_time(o, "verified_time", m->verified_time);
		add_str(o, "verify_error", m->verify_error);
	}
	char *out = strdup(
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}

/* Copy string field key into dst (size dstsz); missing is fine unless required. */
static int get_str(json_object *o, const char *key, char *dst, size_t dstsz, int required, const char *what,
		   hm_error *err)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			return hm_error_set(err, HM_EXIT_CORRUPT, "%s: field \"%s\" is missing", what, key);
		dst[0] = '\0';
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: field \"%s\" is not a string", what, key);
	const char *s = json_object_get_string(v);
	if (strlen(s) >= dstsz)
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: field \"%s\" is too long", what, key);
	strcpy(dst, s);
	return 0;
}

/* Integer field (0 when missing). */
static int get_int(json_object *o, const char *key, int64_t *out, const char *what, hm_error *err)
{
	json_object *v;
	*out = 0;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: field \"%s\" is not an integer", what, key);
	*out = json_object_get_int64(v);
	if (*out < 0)
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: field \"%s\" is negative", what, key);
	return 0;
}

/* Time field as ISO text (0 when missing). */
static int get_time(json_object *o, const char *key, time_t *out, int required, const char *what,
		    hm_error *err)
{
	char buf[40];
	*out = 0;
	if (get_str(o, key, buf, sizeof buf, required, what, err) != 0)
		return -1;
	if (buf[0] && hm_time_parse(buf, out) != 0)
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: field \"%s\" is not a UTC time", what, key);
	return 0;
}

/* Is s a lowercase SHA-256 hex digest? */
static int is_sha_hex(const char *s)
{
	return strlen(s) == HM_SHA256_HEX_LEN && strspn(s, "0123456789abcdef") == HM_SHA256_HEX_LEN;
}

/* "stored" and "encryption": how the archive is kept (both optional). */
static int decode_storage(json_object *o, const char *what, hm_backup_meta *m, hm_error *err)
{
	json_object *st, *en;
	int64_t v;
	if (json_object_object_get_ex(o, "stored", &st) && !json_object_is_type(st, json_type_null)) {
		if (!json_object_is_type(st, json_type_object))
			return hm_error_set(err, HM_EXIT_CORRUPT, "%s: \"stored\" is not an object", what);
		if (get_str(st, "name", m->stored_name, sizeof m->stored_name, 1, what, err) ||
		    get_str(st, "sha256", m->stored_sha256, sizeof m->stored_sha256, 1, what, err) ||
		    get_int(st, "size", &v, what, err))
			return -1;
		m->stored_size = (uint64_t)v;
		if (!m->stored_name[0] || strchr(m->stored_name, '/') || m->stored_name[0] == '.')
			return hm_error_set(err, HM_EXIT_CORRUPT, "%s: unsafe stored name \"%s\"", what,
					    m->stored_name);
		if (!is_sha_hex(m->stored_sha256))
			return hm_error_set(err, HM_EXIT_CORRUPT, "%s: \"stored\" has a malformed sha256",
					    what);
	}
	if (json_object_object_get_ex(o, "encryption", &en) && !json_object_is_type(en, json_type_null)) {
		if (!json_object_is_type(en, json_type_object))
			return hm_error_set(err, HM_EXIT_CORRUPT, "%s: \"encryption\" is not an object",
					    what);
		if (get_str(en, "cipher", m->encryption, sizeof m->encryption, 1, what, err) ||
		    get_str(en, "kdf", m->kdf, sizeof m->kdf, 1, what, err) ||
		    get_str(en, "key_id", m->key_id, sizeof m->key_id, 0, what, err))
			return -1;
		if (strcmp(m->encryption, HM_META_CIPHER) != 0)
			return hm_error_set(err, HM_EXIT_CORRUPT, "%s: unknown cipher \"%s\"", what,
					    m->encryption);
		if (strcmp(m->kdf, "key") != 0 && strcmp(m->kdf, "argon2id") != 0)
			return hm_error_set(err, HM_EXIT_CORRUPT, "%s: unknown key derivation \"%s\"", what,
					    m->kdf);
		if (!m->stored_name[0])
			return hm_error_set(err, HM_EXIT_CORRUPT,
					    "%s: an encrypted backup without \"stored\"", what);
	}
	return 0;
}

int hm_meta_decode(const char *json, const char *what, hm_backup_meta *m, hm_error *err)
{
	char fmt[64];
	int64_t v;
	int rc = -1;
	hm_meta_init(m);
	json_object *o = json_tokener_parse(json);
	if (!o || !json_object_is_type(o, json_type_object)) {
		hm_error_set(err, HM_EXIT_CORRUPT, "%s: not a JSON object", what);
		goto cleanup;
	}
	if (get_str(o, "format", fmt, sizeof fmt, 1, what, err) != 0)
		goto cleanup;
	if (strcmp(fmt, HM_META_FORMAT) != 0) {
		hm_error_set(err, HM_EXIT_CORRUPT, "%s: unknown format \"%s\"", what, fmt);
		goto cleanup;
	}
	if (get_str(o, "id", m->id, sizeof m->id, 1, what, err) ||
	    get_str(o, "kind", m->kind, sizeof m->kind, 1, what, err) ||
	    get_str(o, "uuid", m->uuid, sizeof m->uuid, 0, what, err) ||
	    get_str(o, "label", m->label, sizeof m->label, 0, what, err) ||
	    get_time(o, "start_time", &m->start_time, 1, what, err) ||
	    get_time(o, "end_time", &m->end_time, 0, what, err) ||
	    get_str(o, "start_lsn", m->start_lsn, sizeof m->start_lsn, 0, what, err) ||
	    get_str(o, "end_lsn", m->end_lsn, sizeof m->end_lsn, 0, what, err) ||
	    get_str(o, "system_identifier", m->system_identifier, sizeof m->system_identifier, 0, what,
		    err) ||
	    get_str(o, "manifest_checksums", m->manifest_checksums, sizeof m->manifest_checksums, 0, what,
		    err) ||
	    get_str(o, "compression", m->compression, sizeof m->compression, 0, what, err) ||
	    get_str(o, "source", m->source, sizeof m->source, 0, what, err) ||
	    get_str(o, "archive", m->archive, sizeof m->archive, 1, what, err) ||
	    get_str(o, "verify_error", m->verify_error, sizeof m->verify_error, 0, what, err) ||
	    get_time(o, "verified_time", &m->verified_time, 0, what, err))
		goto cleanup;
	if (strcmp(m->kind, "online") != 0 && strcmp(m->kind, "offline") != 0) {
		hm_error_set(err, HM_EXIT_CORRUPT, "%s: unknown kind \"%s\"", what, m->kind);
		goto cleanup;
	}
	if (strchr(m->archive, '/') || m->archive[0] == '.') {
		hm_error_set(err, HM_EXIT_CORRUPT, "%s: unsafe archive name \"%s\"", what, m->archive);
		goto cleanup;
	}
	if (get_int(o, "timeline", &v, what, err))
		goto cleanup;
	m->timeline = (uint32_t)v;
	if (get_int(o, "pg_version", &v, what, err))
		goto cleanup;
	m->pg_version = (int)v;
	if (get_int(o, "wal_segment_size", &v, what, err))
		goto cleanup;
	m->wal_segment_size = (uint32_t)v;
	if (get_int(o, "database_size", &v, what, err))
		goto cleanup;
	m->database_size = (uint64_t)v;
	if (get_int(o, "archive_size", &v, what, err))
		goto cleanup;
	m->archive_size = (uint64_t)v;
	json_object *ver;
	if (json_object_object_get_ex(o, "verified", &ver) && !json_object_is_type(ver, json_type_null)) {
		if (!json_object_is_type(ver, json_type_boolean)) {
			hm_error_set(err, HM_EXIT_CORRUPT, "%s: field \"verified\" is not a boolean", what);
			goto cleanup;
		}
		m->verified = json_object_get_boolean(ver) ? 1 : 0;
	}
	json_object *arr;
	if (json_object_object_get_ex(o, "members", &arr)) {
		if (!json_object_is_type(arr, json_type_array) ||
		    json_object_array_length(arr) > HM_META_MAX_MEMBERS) {
			hm_error_set(err, HM_EXIT_CORRUPT, "%s: \"members\" is not a list of at most %d",
				     what, HM_META_MAX_MEMBERS);
			goto cleanup;
		}
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);
			hm_backup_member *mem = &m->members[m->nmembers];
			if (!json_object_is_type(e, json_type_object) ||
			    get_str(e, "name", mem->name, sizeof mem->name, 1, what, err) ||
			    get_str(e, "sha256", mem->sha256, sizeof mem->sha256, 1, what, err) ||
			    get_int(e, "size", &v, what, err)) {
				if (!json_object_is_type(e, json_type_object))
					hm_error_set(err, HM_EXIT_CORRUPT, "%s: a member is not an object",
						     what);
				goto cleanup;
			}
			if (strlen(mem->sha256) != HM_SHA256_HEX_LEN ||
			    strspn(mem->sha256, "0123456789abcdef") != HM_SHA256_HEX_LEN) {
				hm_error_set(err, HM_EXIT_CORRUPT, "%s: member \"%s\" has a malformed sha256",
					     what, mem->name);
				goto cleanup;
			}
			mem->size = (uint64_t)v;
			m->nmembers++;
		}
	}
	if (decode_storage(o, what, m, err) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	json_object_put(o);
	if (rc != 0)
		hm_meta_init(m);
	return rc;
}

char *hm_meta_encode_public(const hm_backup_meta *m, int with_status)
{
	if (!m->encryption[0])
		return hm_meta_encode(m, with_status);
	hm_backup_meta *p = malloc(sizeof *p);
	if (!p)
		return NULL;
	*p = *m;
	p->label[0] = p->start_lsn[0] = p->end_lsn[0] = p->system_identifier[0] = p->source[0] = '\0';
	p->manifest_checksums[0] = '\0';
	p->timeline = 0;
	p->wal_segment_size = 0;
	p->database_size = 0;
	p->nmembers = 0;
	char *out = hm_meta_encode(p, with_status);
	free(p);
	return out;
}
