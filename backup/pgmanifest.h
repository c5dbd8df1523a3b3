/* PostgreSQL's backup_manifest (versions 1 and 2): the list of files with sizes and
 * checksums, the WAL ranges, and the Manifest-Checksum over the manifest itself.
 * Format: src/backend/backup/backup_manifest.c and src/common/parse_manifest.c. */
#ifndef HM_PGMANIFEST_H
#define HM_PGMANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

typedef enum hm_pgm_alg { HM_PGM_NONE, HM_PGM_CRC32C, HM_PGM_SHA256, HM_PGM_OTHER } hm_pgm_alg;

typedef struct hm_pgm_file {
	char *path;
	uint64_t size;
	hm_pgm_alg alg;
	char checksum[129]; /* lower-case hex as in the manifest, "" if none */
	int seen;	    /* set by the caller while checking */
} hm_pgm_file;

typedef struct hm_pgm_range {
	uint32_t tli;
	uint64_t start, end;
} hm_pgm_range;

typedef struct hm_pgm {
	int version;
	char system_identifier[32]; /* version 2 only; "" otherwise */
	hm_pgm_file *files;	    /* sorted by path */
	size_t nfiles;
	hm_pgm_range *ranges;
	size_t nranges;
} hm_pgm;

/* Check the Manifest-Checksum of buf (the whole manifest): the SHA-256 of every byte up to
 * the start of the line holding "Manifest-Checksum". 0 if it matches, else -1 with
 * HM_EXIT_VERIFY_FAILED (or HM_EXIT_CORRUPT when the line is missing) naming `what`. */
int hm_pgm_check_checksum(const char *buf, size_t len, const char *what, hm_error *err);

/* Parse a manifest (checksum checked first). Paths in Encoded-Path are hex-decoded.
 * 0 or -1 (HM_EXIT_CORRUPT / HM_EXIT_VERIFY_FAILED). */
int hm_pgm_parse(const char *buf, size_t len, const char *what, hm_pgm *out, hm_error *err);

/* The same without the Manifest-Checksum check (for the fuzz target, which cannot forge
 * SHA-256: every other check of the parser still runs). */
int hm_pgm_parse_body(const char *buf, size_t len, const char *what, hm_pgm *out, hm_error *err);

/* The file entry for path, or NULL. */
hm_pgm_file *hm_pgm_find(const hm_pgm *m, const char *path);

/* Name of an algorithm as the manifest writes it. */
const char *hm_pgm_alg_name(hm_pgm_alg alg);

void hm_pgm_free(hm_pgm *m);

#endif
