/* The pre-copy of a snapshot (issue 13): a base archive read while the server runs, a delta
 * archive after its clean stop, and their merge into one ordinary archive (archive_dir.h).
 *
 * The base (ID.base.tar.zst) is an ordinary archive of the live directory (archive_dir.h's
 * live hooks): every regular file is archived with its digest, and a record of it (the
 * fstat of the open file before and after its data was read, and whether it was torn) goes
 * to the record file (ID.base.stat), saved once the base verified, its digest in the
 * journal. After the stop, a file's base copy is reused only when hm_precopy_reusable says
 * so (below); every other file, and every directory and symlink, goes into the delta
 * (ID.delta.tar.zst), an ordinary archive whose manifest lists what it holds and whose
 * metadata lists what is reused from the base:
 *   {"kind":"migration-snapshot-delta", "snapshot":{the snapshot's metadata},
 *    "base":"ID.base.tar.zst", "reused":{a manifest (manifest.h) of the reused files}}
 * The delta manifest plus "reused" is the manifest of the whole stopped tree. The merge
 * streams the reused base members and the delta members, in the order of the tree walk,
 * into ID.tar.zst (the snapshot's metadata, the whole manifest), comparing every reused
 * member's digest with the record as it goes, then verifies the result in full. */
#ifndef HM_ARCHIVE_DELTA_H
#define HM_ARCHIVE_DELTA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "archive_dir.h"
#include "error.h"
#include "manifest.h"

/* A base copy whose inode changed status (ctime) less than this before the pre-copy
 * started reading is never reused: a write in the same timestamp tick as the recorded
 * ctime would leave it unchanged (docs/migration.md, "The pre-copy"). */
#define HM_PRECOPY_MARGIN_NS 2000000000LL

/* What the decision compares of a stat. */
typedef struct hm_pc_stat {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	uint32_t mode, uid, gid;
} hm_pc_stat;

/* The fields of st. */
void hm_pc_stat_from(hm_pc_stat *out, const struct stat *st);

/* 1 when two records are identical in every field, else 0. */
int hm_pc_stat_equal(const hm_pc_stat *a, const hm_pc_stat *b);

/* The change decision (pure): 1 when the base copy read between the stats before and
 * after is exactly the file whose stat is now, 0 when the file must go into the delta.
 * Reused only if before == after == now (dev, ino, size, mtime ns, ctime ns, mode, uid,
 * gid) and before's ctime is older than t0_ns - HM_PRECOPY_MARGIN_NS, t0_ns being the
 * wall-clock time at which the pre-copy started reading. */
int hm_precopy_reusable(const hm_pc_stat *before, const hm_pc_stat *after, const hm_pc_stat *now,
			int64_t t0_ns);

/* One regular file of the base. torn: its data may not be the file's at any instant
 * (before != after, or its size changed while read): never reused. */
typedef struct hm_pc_record {
	char *path;
	hm_pc_stat st; /* before reading */
	int torn;
	char sha256[65];
} hm_pc_record;

typedef struct hm_pc_records {
	int64_t t0_ns;
	hm_pc_record *v;
	size_t n, cap;
	int sorted;
} hm_pc_records;

void hm_pc_records_init(hm_pc_records *r, int64_t t0_ns);
void hm_pc_records_free(hm_pc_records *r);

/* Record a file read for the base (torn is also set when before != after). 0 or -1. */
int hm_pc_records_add(hm_pc_records *r, const char *path, const hm_pc_stat *before, const hm_pc_stat *after,
		      const char *sha256, int torn, hm_error *err);

/* The record of path, or NULL (sorts r on first use). */
const hm_pc_record *hm_pc_records_find(hm_pc_records *r, const char *path);

/* Every record against the verified base's manifest: the same size and digest, else
 * HM_EXIT_VERIFY_FAILED naming the path. 0 or -1. */
int hm_pc_records_check(hm_pc_records *r, const hm_manifest *base, hm_error *err);

/* Text form (pure): encode into *out (malloc'd), decode (strict: HM_EXIT_CORRUPT naming
 * what). 0 or -1. */
int hm_pc_records_encode(const hm_pc_records *r, char **out, size_t *len, hm_error *err);
int hm_pc_records_decode(const char *text, size_t len, const char *what, hm_pc_records *r, hm_error *err);

/* Save to path atomically (0600); sha256 gets the digest of the text. Load: the text's
 * digest must be want_sha256 (the journal's), else HM_EXIT_VERIFY_FAILED. 0 or -1. */
int hm_pc_records_save(const hm_pc_records *r, const char *path, char sha256[65], hm_error *err);
int hm_pc_records_load(const char *path, const char *want_sha256, hm_pc_records *r, hm_error *err);

/* Order of the tree walk (archive_dir.c): "." first, a directory before what it holds,
 * names of one directory bytewise. <0, 0, >0. */
int hm_tree_order_cmp(const char *a, const char *b);

/* The delta's metadata (above) from the snapshot's metadata text and the reused entries.
 * *out malloc'd. 0 or -1. */
int hm_delta_metadata(const char *snapshot_meta, const char *base_name, const hm_manifest *reused, char **out,
		      hm_error *err);

/* Its inverse: *snapshot_meta (malloc'd) and reused (sorted). 0, or -1 HM_EXIT_CORRUPT. */
int hm_delta_metadata_parse(const char *json, const char *what, char **snapshot_meta, hm_manifest *reused,
			    hm_error *err);

/* The whole tree's manifest from the delta's manifest and the reused entries: every path
 * in one of them only, else HM_EXIT_VERIFY_FAILED. *out is sorted. 0 or -1. */
int hm_delta_full_manifest(const hm_manifest *delta, const hm_manifest *reused, hm_manifest *out,
			   hm_error *err);

/* Merge base + delta into out (must not exist; written to out.partial, fsync'd, renamed,
 * then verified in full). stats describe the merged archive. 0 or -1 (nothing left). */
int hm_archive_merge(const char *base, const char *delta, const char *out, const hm_archive_opts *opts,
		     hm_archive_stats *stats, hm_error *err);

#endif
