/* The manifest of a directory archive (see archive_dir.h): one record per entry of the
 * archived tree, plus the caller's metadata object. Encoded as JSON (json-c):
 *   {"format":"hive-migrate-archive/1", "metadata":{...}, "metadata_sha256":"hex",
 *    "files":[{"path":"pgdata/PG_VERSION","type":"file","size":3,"mode":384,"uid":999,
 *              "gid":999,"mtime":1700000000,"sha256":"hex"},
 *             {"path":"pgdata","type":"dir",...}, {"path":"x","type":"symlink","target":"y",...}]}
 * "path" is relative to the archived directory; "." is the directory itself. Names are
 * bytes: a path or target that is not valid UTF-8 is written as "path_hex" / "target_hex"
 * (lower-case hex of its bytes) instead, so the manifest stays valid JSON. */
#ifndef HM_MANIFEST_H
#define HM_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define HM_MANIFEST_FORMAT "hive-migrate-archive/1"

typedef enum hm_manifest_type {
	HM_ENTRY_FILE = 'f',
	HM_ENTRY_DIR = 'd',
	HM_ENTRY_SYMLINK = 'l'
} hm_manifest_type;

typedef struct hm_manifest_entry {
	char *path;    /* relative path ("." = top directory) */
	char type;     /* hm_manifest_type */
	uint64_t size; /* regular files: bytes; else 0 */
	uint32_t mode; /* permission bits (mode & 07777) */
	uint32_t uid, gid;
	int64_t mtime;	 /* seconds */
	char sha256[65]; /* regular files: hex digest; else "" */
	char *target;	 /* symlinks: target; else NULL */
} hm_manifest_entry;

typedef struct hm_manifest {
	char *metadata_json;	  /* the caller's metadata object as JSON text (may be NULL) */
	char metadata_sha256[65]; /* digest of the metadata member text, "" if none */
	hm_manifest_entry *entries;
	size_t count, cap;
	int sorted; /* entries sorted by path (hm_manifest_sort) */
} hm_manifest;

/* Empty manifest. */
void hm_manifest_init(hm_manifest *m);

/* Append a copy of e (strings duplicated). 0 or -1 (out of memory). */
int hm_manifest_add(hm_manifest *m, const hm_manifest_entry *e, hm_error *err);

/* Set the metadata text (copied; must be a JSON object) and its digest. 0 or -1. */
int hm_manifest_set_metadata(hm_manifest *m, const char *json, hm_error *err);

/* Encode to JSON text (*out malloc'd, NUL-terminated; *len its length). 0 or -1. */
int hm_manifest_encode(const hm_manifest *m, char **out, size_t *len, hm_error *err);

/* Decode JSON text into m (initialised by this call). Any missing or ill-typed field, an
 * unknown format, a duplicate path or a bad digest string is HM_EXIT_CORRUPT naming `what`.
 * 0 or -1 (m is then empty). */
int hm_manifest_decode(const char *json, size_t len, const char *what, hm_manifest *m, hm_error *err);

/* Sort entries by path so hm_manifest_find works; -1 with HM_EXIT_CORRUPT on duplicates. */
int hm_manifest_sort(hm_manifest *m, hm_error *err);

/* Entry with this path in a sorted manifest, or NULL. */
const hm_manifest_entry *hm_manifest_find(const hm_manifest *m, const char *path);

/* Compare an entry found in an archive (or on disk) with the manifest's record: 0 if equal,
 * else -1 with HM_EXIT_VERIFY_FAILED and a message naming the path and the field. */
int hm_manifest_entry_compare(const hm_manifest_entry *want, const hm_manifest_entry *got, hm_error *err);

/* Name of an entry type ("file", "dir", "symlink"). */
const char *hm_manifest_type_name(char type);

/* Free everything m owns and leave it empty. */
void hm_manifest_free(hm_manifest *m);

#endif
