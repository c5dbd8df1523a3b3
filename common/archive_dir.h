/* Snapshot of a directory tree into one archive file (pax tar + zstd, libarchive), with a
 * manifest of every entry, and the reverse: full verification and extraction into a new
 * directory. Used by `hive-migrate up` / `rollback` (the migration snapshot) and by
 * `hive-migrate backup --offline` / `backups verify|restore`.
 *
 * Archive layout (members in this order):
 *   hive-migrate/metadata.json   the caller's metadata JSON object, verbatim (no secrets!)
 *   data/<relpath>               every entry under the source directory ("data" itself is
 *                                the source directory: its mode/owner/mtime are kept)
 *   hive-migrate/manifest.json   written last: {"format":"hive-migrate-archive/1",
 *                                "metadata":{...caller's object...},
 *                                "metadata_sha256":"..", "files":[...]} (see manifest.h)
 * Every data entry (dir, regular file, symlink) keeps path (any length: pax; any bytes, not
 * only UTF-8: hdrcharset=BINARY), mode (without set-id bits), uid, gid, mtime; regular
 * files carry a SHA-256 computed while streaming them (each file is read once).
 * The archive is written to "<path>.partial" (0600), fsync'd, renamed into place and the
 * directory fsync'd; on any failure the partial file is removed and nothing is left behind.
 *
 * Errors: hm_error codes HM_EXIT_NO_SPACE (disk full), HM_EXIT_IO, HM_EXIT_INPUT (source or
 * archive missing), HM_EXIT_PERMISSION, HM_EXIT_VERIFY_FAILED (verification or extraction
 * found any problem in the archive: mismatch, missing/extra file, truncated or unreadable
 * data, bad manifest; the message names the archive and the first bad file). */
#ifndef HM_ARCHIVE_DIR_H
#define HM_ARCHIVE_DIR_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"
#include "progress.h"

/* Hooks of the pre-copy (common/archive_delta.h, issue 13); NULL in hm_archive_opts for a
 * plain archive. live: the tree is read while a server writes to it: an entry that vanishes
 * or is a special file is left out, a regular file is archived at the size of its first
 * fstat (zero-padded if it shrinks, cut if it grows) and reported torn, and file_done gets
 * the fstat of the open file before and after its data was read. skip_file (when set) is
 * asked before a regular file's member is written: 1 leaves it out of the archive and its
 * manifest (the caller accounts for it), 0 archives it, -1 fails. throttle_us: a pause
 * after each chunk read in live mode (a test hook that widens the pre-copy's window). */
typedef struct hm_archive_hooks {
	void *ctx;
	int live;
	int throttle_us;
	int (*skip_file)(void *ctx, const char *rel, const struct stat *st, hm_error *err);
	int (*file_done)(void *ctx, const char *rel, const struct stat *before, const struct stat *after,
			 const char *sha256, int torn, hm_error *err);
} hm_archive_hooks;

/* Options for hm_archive_dir_create. Zero-initialise, then set what you need. */
typedef struct hm_archive_opts {
	const char *metadata_json;     /* required: a JSON object (text) stored in the archive */
	int zstd_level;		       /* 0 = default (1) */
	int zstd_threads;	       /* 0 = number of online CPUs; 1 = single-threaded */
	hm_progress *progress;	       /* optional: fed with bytes read from the source */
	const hm_archive_hooks *hooks; /* optional: the pre-copy's (above) */
} hm_archive_opts;

/* What was archived / verified / extracted. */
typedef struct hm_archive_stats {
	uint64_t entries;	  /* data entries (dirs + files + symlinks) */
	uint64_t files;		  /* regular files */
	uint64_t bytes;		  /* regular-file bytes (uncompressed) */
	uint64_t archive_bytes;	  /* size of the archive file */
	double seconds;		  /* wall time of the operation */
	char manifest_sha256[65]; /* SHA-256 (hex) of the manifest member */
} hm_archive_stats;

/* Archive directory srcdir into archive_path (which must not exist yet). Special files
 * (sockets, fifos, devices) are refused; a file changing size while read is an error.
 * stats may be NULL. 0 or -1 with err set. */
int hm_archive_dir_create(const char *srcdir, const char *archive_path, const hm_archive_opts *opts,
			  hm_archive_stats *stats, hm_error *err);

/* Where a streamed archive goes (hm_archive_dir_create_sink): 0, or -1 with err set. */
typedef int (*hm_archive_sink)(void *ctx, const void *data, size_t len, hm_error *err);

/* The same archive as hm_archive_dir_create, but no file: its bytes go to sink in order as
 * they are produced (blocks of 64 KiB, the last one shorter), for a destination that
 * cannot seek or should not hold a local copy (an object store, an encryptor). Memory is
 * bounded (one read buffer, libarchive's block, zstd's window and jobs, the manifest).
 * Nothing is written before the first block and there is no rename: the caller makes the
 * result visible only once this returned 0, and discards it otherwise (after a failure
 * nothing more goes to the sink). A sink's error is returned as it is (code and message,
 * prefixed); display names the destination in messages. stats->archive_bytes is what
 * the sink accepted. stats may be NULL. 0 or -1 with err set. */
int hm_archive_dir_create_sink(const char *srcdir, hm_archive_sink sink, void *ctx, const char *display,
			       const hm_archive_opts *opts, hm_archive_stats *stats, hm_error *err);

/* Read the whole archive: decompress every member, recompute every digest, apply the
 * archive rule (tree_rule.h: no hard links, devices, set-id bits, paths outside, members
 * below symlinks...) and compare entry by entry with the manifest (missing, extra, size,
 * digest, type, mode, owner, mtime, symlink target, metadata digest). The manifest and
 * metadata members are capped in size relative to the archive's size. progress and stats
 * may be NULL. 0, or -1 with HM_EXIT_VERIFY_FAILED naming the first bad file
 * (HM_EXIT_INPUT if it cannot be opened). */
int hm_archive_verify(const char *archive_path, hm_progress *progress, hm_archive_stats *stats,
		      hm_error *err);

/* hm_archive_verify, and the verified manifest into *out (hm_manifest_free it; manifest.h).
 * 0 or -1 (*out then empty). */
struct hm_manifest;
int hm_archive_verify_manifest(const char *archive_path, hm_progress *progress, hm_archive_stats *stats,
			       struct hm_manifest *out, hm_error *err);

/* The same on an open archive (read from its start; not closed); path names it. */
int hm_archive_verify_fd(int fd, const char *path, hm_progress *progress, hm_archive_stats *stats,
			 hm_error *err);

/* Only the metadata member (cheap: stops after the first member). *json is malloc'd text.
 * 0 or -1. */
int hm_archive_read_metadata(const char *archive_path, char **json, hm_error *err);

/* Owner override for extraction (backups restore --owner). */
typedef struct hm_extract_opts {
	int set_owner;
	uid_t uid;
	gid_t gid;
} hm_extract_opts;

/* Extract into destdir, which must NOT exist (its parent must). Verifies the whole archive
 * first (a bad archive is refused before anything is written), then creates destdir (0700
 * until the end, then the archived mode/owner/mtime of the top directory) with
 * common/tree_writer: everything by *at() calls under directory fds, never through a
 * symlink, so a less privileged user who can write destdir's parent cannot redirect it.
 * Every entry is checked against the manifest again while writing; owners are restored
 * exactly when running as root; the file system is synced before returning. On failure
 * everything created is removed again. 0 or -1. */
int hm_archive_extract(const char *archive_path, const char *destdir, hm_progress *progress,
		       hm_archive_stats *stats, hm_error *err);

/* The same from an open archive into name inside the directory open as parentfd (destdir:
 * its path, for messages); o may be NULL. *created (when not NULL) gets the new
 * directory's stat, whose dev/ino identify it before the caller renames it. 0 or -1. */
int hm_archive_extract_at(int fd, const char *archive_path, int parentfd, const char *name,
			  const char *destdir, const hm_extract_opts *o, hm_progress *progress,
			  hm_archive_stats *stats, struct stat *created, hm_error *err);

#endif
