/* Backup metadata (backup.json): what a backup is, where it came from, the digests of its
 * archive members, and (only in the repository's copy) its verification status. Encoded as
 * JSON with json-c. Never holds a password. */
#ifndef HM_META_H
#define HM_META_H

#include <stdint.h>
#include <time.h>

#include "../common/digest.h"
#include "../common/error.h"

#define HM_META_FORMAT "hive-migrate-backup/1"
#define HM_META_MAX_MEMBERS 64
#define HM_META_CIPHER "xchacha20poly1305-secretstream"
#define HM_META_SEALED "backup.json.hmenc" /* encrypted full metadata of an encrypted backup */

typedef struct hm_backup_member {
	char name[100];
	uint64_t size;
	char sha256[HM_SHA256_HEX_LEN + 1];
} hm_backup_member;

typedef struct hm_backup_meta {
	char id[64];   /* YYYYMMDDTHHMMSS.mmmZ-<8 hex>: sorts by time */
	char kind[16]; /* "online" | "offline" */
	char uuid[40];
	char label[96];
	time_t start_time, end_time;
	char start_lsn[32], end_lsn[32]; /* online only */
	uint32_t timeline;
	char system_identifier[32];
	int pg_version; /* server_version_num (online) or major * 10000 (offline) */
	uint32_t wal_segment_size;
	char manifest_checksums[16];
	char compression[32];
	char source[512];	/* "host:port user" or the data directory; no secrets */
	uint64_t database_size; /* bytes of the data directory (server estimate / files) */
	char archive[64];	/* file name of the archive inside the backup directory */
	uint64_t archive_size;
	hm_backup_member members[HM_META_MAX_MEMBERS];
	int nmembers;
	/* How the archive is stored, when that differs from the plain archive (an encrypted
	 * backup, or any backup in an object store): the object's name inside the backup's
	 * directory, its size and SHA-256 as stored. These are the "outer digests" that can
	 * be checked without the key. stored_name "" = the archive itself, unrecorded. */
	char stored_name[64];
	uint64_t stored_size;
	char stored_sha256[HM_SHA256_HEX_LEN + 1];
	/* Encryption at rest (common/crypt.h); encryption "" = none. */
	char encryption[40]; /* HM_META_CIPHER */
	char kdf[16];	     /* "key" (a key file) or "argon2id" (a passphrase file) */
	char key_id[40];     /* hex of the key's id (key files); "" for a passphrase */
	/* Repository copy only: */
	int broken;   /* listed, but its backup.json cannot be read (reason in verify_error) */
	int verified; /* -1 never verified, 0 failed, 1 intact */
	time_t verified_time;
	char verify_error[512];
} hm_backup_meta;

/* Blank metadata (verified = -1). */
void hm_meta_init(hm_backup_meta *m);

/* Encode as JSON (malloc'd text). with_status adds verified/verified_time/verify_error. */
char *hm_meta_encode(const hm_backup_meta *m, int with_status);

/* The repository's readable copy: for an encrypted backup, only what list, status, prune
 * and a keyless verify need (id, kind, times, version, sizes, the stored object's digests,
 * the encryption fields, the status); the facts about the data (source, label, LSNs,
 * system identifier, members and their digests, database size) stay in the sealed copy
 * (HM_META_SEALED) and inside the encrypted archive. Plain backups: hm_meta_encode. */
char *hm_meta_encode_public(const hm_backup_meta *m, int with_status);

/* Decode JSON text; `what` names the source in errors (HM_EXIT_CORRUPT). 0 or -1. */
int hm_meta_decode(const char *json, const char *what, hm_backup_meta *m, hm_error *err);

/* Find a member by name, or NULL. */
const hm_backup_member *hm_meta_member(const hm_backup_meta *m, const char *name);

/* ISO 8601 UTC ("2026-11-27T00:15:00Z") into buf (>= 21 bytes). */
const char *hm_time_iso(time_t t, char *buf, size_t bufsz);

/* Parse ISO 8601 UTC as written by hm_time_iso. 0 or -1. */
int hm_time_parse(const char *s, time_t *out);

#endif
