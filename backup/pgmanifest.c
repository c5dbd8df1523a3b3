/* backup_manifest reader. The checksum rule mirrors verify_manifest_checksum() in
 * src/common/parse_manifest.c: SHA-256 over everything before the final line, which holds
 * "Manifest-Checksum" and the hex digest. */
#include "pgmanifest.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/digest.h"
#include "basebackup.h"

const char *hm_pgm_alg_name(hm_pgm_alg alg)
{
	switch (alg) {
	case HM_PGM_NONE:
		return "NONE";
	case HM_PGM_CRC32C:
		return "CRC32C";
	case HM_PGM_SHA256:
		return "SHA256";
	default:
		return "other";
	}
}

int hm_pgm_check_checksum(const char *buf, size_t len, const char *what, hm_error *err)
{
	static const char key[] = "\"Manifest-Checksum\"";
	const char *hit = NULL;
	for (const char *p = buf; (p = memmem(p, len - (size_t)(p - buf), key, sizeof key - 1)) != NULL; p++)
		hit = p;
	if (!hit)
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: no Manifest-Checksum line", what);
	const char *line = hit;
	while (line > buf && line[-1] != '\n')
		line--;
	const char *q = memchr(hit + sizeof key - 1, '"', len - (size_t)(hit + sizeof key - 1 - buf));
	if (!q || (size_t)(buf + len - q) < 1 + HM_SHA256_HEX_LEN + 1 || q[1 + HM_SHA256_HEX_LEN] != '"')
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: malformed Manifest-Checksum line", what);
	hm_sha256 *ctx = hm_sha256_new();
	char hex[HM_SHA256_HEX_LEN + 1];
	if (!ctx)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_sha256_update(ctx, buf, (size_t)(line - buf));
	hm_sha256_final_hex(ctx, hex);
	if (strncasecmp(hex, q + 1, HM_SHA256_HEX_LEN) != 0)
		return hm_error_set(
			err, HM_EXIT_VERIFY_FAILED,
			"%s: Manifest-Checksum mismatch (manifest says %.64s, content hashes to %s)", what,
			q + 1, hex);
	return 0;
}

/* Decode hex into a malloc'd NUL-terminated string (Encoded-Path). */
static char *hex_decode(const char *hex)
{
	size_t n = strlen(hex);
	if (n % 2)
		return NULL;
	char *out = malloc(n / 2 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1 || v == 0) {
			free(out);
			return NULL;
		}
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	return out;
}

/* Order files by path. */
static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const hm_pgm_file *)a)->path, ((const hm_pgm_file *)b)->path);
}

hm_pgm_file *hm_pgm_find(const hm_pgm *m, const char *path)
{
	hm_pgm_file key = {.path = (char *)path};
	return bsearch(&key, m->files, m->nfiles, sizeof key, cmp_file);
}

void hm_pgm_free(hm_pgm *m)
{
	for (size_t i = 0; i < m->nfiles; i++)
		free(m->files[i].path);
	free(m->files);
	free(m->ranges);
	memset(m, 0, sizeof *m);
}

/* Parse one Files[] entry into f. */
static int parse_file(json_object *e, hm_pgm_file *f, const char *what, hm_error *err)
{
	json_object *v;
	memset(f, 0, sizeof *f);
	if (!json_object_is_type(e, json_type_object))
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: a Files entry is not an object", what);
	if (json_object_object_get_ex(e, "Path", &v) && json_object_is_type(v, json_type_string))
		f->path = strdup(json_object_get_string(v));
	else if (json_object_object_get_ex(e, "Encoded-Path", &v) && json_object_is_type(v, json_type_string))
		f->path = hex_decode(json_object_get_string(v));
	if (!f->path)
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: a Files entry has no valid Path", what);
	if (!json_object_object_get_ex(e, "Size", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: \"%s\" has no valid Size", what, f->path);
	f->size = (uint64_t)json_object_get_int64(v);
	f->alg = HM_PGM_NONE;
	if (json_object_object_get_ex(e, "Checksum-Algorithm", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return hm_error_set(err, HM_EXIT_CORRUPT,
					    "%s: \"%s\" has no valid Checksum-Algorithm", what, f->path);
		const char *a = json_object_get_string(v);
		f->alg = !strcmp(a, "CRC32C")	? HM_PGM_CRC32C
			 : !strcmp(a, "SHA256") ? HM_PGM_SHA256
			 : !strcmp(a, "NONE")	? HM_PGM_NONE
						: HM_PGM_OTHER;
		if (!json_object_object_get_ex(e, "Checksum", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    strlen(json_object_get_string(v)) >= sizeof f->checksum)
			return hm_error_set(err, HM_EXIT_CORRUPT, "%s: \"%s\" has no valid Checksum", what,
					    f->path);
		snprintf(f->checksum, sizeof f->checksum, "%s", json_object_get_string(v));
		for (char *p = f->checksum; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
	}
	return 0;
}

/* Parse one WAL-Ranges entry into rg. */
static int parse_range(json_object *e, hm_pgm_range *rg, const char *what, hm_error *err)
{
	json_object *t, *s, *x;
	if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "Timeline", &t) ||
	    !json_object_is_type(t, json_type_int) || json_object_get_int64(t) < 1 ||
	    json_object_get_int64(t) > 0xFFFFFFFFll || !json_object_object_get_ex(e, "Start-LSN", &s) ||
	    !json_object_is_type(s, json_type_string) || !json_object_object_get_ex(e, "End-LSN", &x) ||
	    !json_object_is_type(x, json_type_string) ||
	    hm_lsn_parse(json_object_get_string(s), &rg->start) != 0 ||
	    hm_lsn_parse(json_object_get_string(x), &rg->end) != 0)
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: malformed WAL-Ranges entry", what);
	if (rg->end < rg->start)
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: a WAL-Ranges entry ends before it starts",
				    what);
	rg->tli = (uint32_t)json_object_get_int64(t);
	return 0;
}

int hm_pgm_parse(const char *buf, size_t len, const char *what, hm_pgm *out, hm_error *err)
{
	memset(out, 0, sizeof *out);
	if (hm_pgm_check_checksum(buf, len, what, err) != 0)
		return -1;
	return hm_pgm_parse_body(buf, len, what, out, err);
}

int hm_pgm_parse_body(const char *buf, size_t len, const char *what, hm_pgm *out, hm_error *err)
{
	json_object *o = NULL, *v;
	int rc = -1;
	memset(out, 0, sizeof *out);
	if (len > INT32_MAX)
		return hm_error_set(err, HM_EXIT_CORRUPT, "%s: too large", what);
	json_tokener *tok = json_tokener_new_ex(64);
	if (!tok)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	o = json_tokener_parse_ex(tok, buf, (int)len);
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object)) {
		hm_error_set(err, HM_EXIT_CORRUPT, "%s: not a JSON object", what);
		goto cleanup;
	}
	if (!json_object_object_get_ex(o, "PostgreSQL-Backup-Manifest-Version", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int(v) < 1 ||
	    json_object_get_int(v) > 2) {
		hm_error_set(err, HM_EXIT_CORRUPT, "%s: unknown PostgreSQL-Backup-Manifest-Version", what);
		goto cleanup;
	}
	out->version = json_object_get_int(v);
	if (json_object_object_get_ex(o, "System-Identifier", &v)) {
		if (!json_object_is_type(v, json_type_int)) {
			hm_error_set(err, HM_EXIT_CORRUPT, "%s: System-Identifier is not a number", what);
			goto cleanup;
		}
		snprintf(out->system_identifier, sizeof out->system_identifier, "%llu",
			 (unsigned long long)json_object_get_uint64(v));
	}
	json_object *files;
	if (!json_object_object_get_ex(o, "Files", &files) || !json_object_is_type(files, json_type_array)) {
		hm_error_set(err, HM_EXIT_CORRUPT, "%s: no Files list", what);
		goto cleanup;
	}
	size_t n = json_object_array_length(files);
	out->files = calloc(n ? n : 1, sizeof *out->files);
	if (!out->files) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		int r = parse_file(json_object_array_get_idx(files, i), &out->files[i], what, err);
		out->nfiles = i + 1;
		if (r != 0)
			goto cleanup;
	}
	qsort(out->files, out->nfiles, sizeof *out->files, cmp_file);
	for (size_t i = 1; i < out->nfiles; i++)
		if (!strcmp(out->files[i].path, out->files[i - 1].path)) {
			hm_error_set(err, HM_EXIT_CORRUPT, "%s: \"%s\" listed twice", what,
				     out->files[i].path);
			goto cleanup;
		}
	json_object *ranges;
	if (!json_object_object_get_ex(o, "WAL-Ranges", &ranges) ||
	    !json_object_is_type(ranges, json_type_array)) {
		hm_error_set(err, HM_EXIT_CORRUPT, "%s: no WAL-Ranges list", what);
		goto cleanup;
	}
	n = json_object_array_length(ranges);
	out->ranges = calloc(n ? n : 1, sizeof *out->ranges);
	if (!out->ranges) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if (n == 0) {
		hm_error_set(
			err, HM_EXIT_CORRUPT,
			"%s: WAL-Ranges is empty (a base backup always needs the WAL from its start to its "
			"end)",
			what);
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		if (parse_range(json_object_array_get_idx(ranges, i), &out->ranges[i], what, err) != 0)
			goto cleanup;
		out->nranges++;
	}
	rc = 0;
cleanup:
	json_object_put(o);
	if (rc != 0)
		hm_pgm_free(out);
	return rc;
}
