/* Storage behind one interface: a repository lives in a posix directory or under an S3
 * bucket prefix, and the code above (backup, verify, restore, prune, copy) sees only names,
 * streams and a lock. One driver per backend (posix.c, s3.c) fills in hm_storage_driver.
 *
 * The model is the intersection of what both backends can promise:
 *  - names are relative, '/'-separated, validated here (no "", ".", "..", leading '/',
 *    control bytes or backslash; at most HM_STORAGE_NAME_MAX bytes);
 *  - a write is invisible until its commit, and then appears whole (posix: temp file +
 *    fsync + rename + directory fsync; s3: single PUT or a multipart upload completed only at
 *    commit). An aborted or killed write leaves at most a "partial" that list never shows
 *    and hm_storage_sweep removes;
 *  - there is no rename of directories (object stores have none): consistency above this
 *    layer comes from the order of writes (a backup's metadata object last) and removes
 *    (its metadata object first). docs/backup.md, "Object storage", has the design.
 * Every function returns HM_STORAGE_OK (0) or a non-zero code with err set. */
#ifndef HM_STORAGE_H
#define HM_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../../common/error.h"
#include "s3.h"

#define HM_STORAGE_NAME_MAX 1024
#define HM_STORAGE_TO_END UINT64_MAX

enum {
	HM_STORAGE_OK = 0,
	HM_STORAGE_ERROR = -1,
	HM_STORAGE_MISSING = 1, /* no such object (err: HM_EXIT_NOT_FOUND) */
	HM_STORAGE_EXISTS = 2,	/* exclusive write: the name exists already (err: HM_EXIT_INPUT) */
};

/* Write flags. */
#define HM_STORAGE_EXCLUSIVE 0x1u /* commit only if the name does not exist (s3: If-None-Match) */

/* List flags. */
#define HM_STORAGE_RECURSIVE 0x1u /* every object below dir; else one level, dirs included */

typedef struct hm_storage hm_storage;
typedef struct hm_storage_reader hm_storage_reader;
typedef struct hm_storage_writer hm_storage_writer;
typedef struct hm_storage_lock hm_storage_lock;

typedef struct hm_storage_info {
	char name[HM_STORAGE_NAME_MAX + 1]; /* list: relative to the listed dir; stat: as asked */
	int is_dir;			    /* one-level list only (s3: a common prefix) */
	uint64_t size;
	time_t mtime;  /* posix: local clock; s3: the server's Last-Modified */
	char etag[80]; /* s3: the ETag without quotes; posix: "" */
} hm_storage_info;

typedef struct hm_storage_options {
	int create;	  /* posix: create the directory (0700) when missing; s3: skip the access check of
			   * open (the bucket may not exist yet: hm_s3_bucket_create) */
	hm_s3_options s3; /* used for s3:// locations; zero = defaults */
} hm_storage_options;

/* Is location an object-store URL (s3://...)? */
int hm_storage_is_url(const char *location);

/* Open a location: a directory path (posix) or s3://BUCKET[/PREFIX]. For s3 this checks the
 * credentials and the bucket with one request, so a wrong key, a missing bucket or a skewed
 * clock fail here with one clear line. opt may be NULL. */
int hm_storage_open(const char *location, const hm_storage_options *opt, hm_storage **out, hm_error *err);

/* Close (aborts nothing: every reader and writer must be closed first). NULL is fine. */
void hm_storage_close(hm_storage *st);

/* For messages: "/srv/backups" or "s3://bucket/prefix"; and the driver's name. */
const char *hm_storage_location(const hm_storage *st);
const char *hm_storage_driver_name(const hm_storage *st);

/* Check a name (0 valid, -1 with err naming the problem). */
int hm_storage_name_check(const char *name, hm_error *err);

/* --- reading ------------------------------------------------------------------------- */
/* Stream bytes [offset, offset + length) of an object (length HM_STORAGE_TO_END: to its
 * end). HM_STORAGE_MISSING when it does not exist. */
int hm_storage_open_read(hm_storage *st, const char *name, uint64_t offset, uint64_t length,
			 hm_storage_reader **out, hm_error *err);
/* Up to len bytes into buf; *got = 0 only at the end, after the full range was delivered
 * (a short object is an error, never a silent end). */
int hm_storage_read(hm_storage_reader *r, void *buf, size_t len, size_t *got, hm_error *err);
/* The whole object's size (known once open). */
uint64_t hm_storage_read_object_size(const hm_storage_reader *r);
void hm_storage_read_close(hm_storage_reader *r);

/* A small object into a malloc'd NUL-terminated buffer; refuses objects over max bytes. */
int hm_storage_get(hm_storage *st, const char *name, size_t max, char **out, size_t *len, hm_error *err);

/* --- writing ------------------------------------------------------------------------- */
/* Start writing name. size_hint (0 = unknown) lets s3 pick a part size that fits the
 * 10000-part limit; memory stays bounded either way. */
int hm_storage_open_write(hm_storage *st, const char *name, unsigned flags, uint64_t size_hint,
			  hm_storage_writer **out, hm_error *err);
int hm_storage_write(hm_storage_writer *w, const void *data, size_t len, hm_error *err);
/* Make the object visible, whole and durable; info (may be NULL) gets its size and ETag.
 * Frees w whatever the outcome (a failed commit aborts). HM_STORAGE_EXISTS for an exclusive
 * write whose name exists. */
int hm_storage_write_commit(hm_storage_writer *w, hm_storage_info *info, hm_error *err);
/* Discard: nothing becomes visible; frees w. NULL is fine. */
void hm_storage_write_abort(hm_storage_writer *w);

/* A small object in one call (open, write, commit). */
int hm_storage_put(hm_storage *st, const char *name, const void *data, size_t len, unsigned flags,
		   hm_error *err);

/* --- names ---------------------------------------------------------------------------- */
/* HM_STORAGE_MISSING when absent. */
int hm_storage_stat(hm_storage *st, const char *name, hm_storage_info *out, hm_error *err);

/* Called for each entry; return non-zero (with err set) to stop the listing with that code. */
typedef int (*hm_storage_list_cb)(void *ctx, const hm_storage_info *info, hm_error *err);
/* Entries under dir ("" = the root). Committed objects only: partial writes never appear.
 * Order is unspecified. A missing dir lists nothing. */
int hm_storage_list(hm_storage *st, const char *dir, unsigned flags, hm_storage_list_cb cb, void *ctx,
		    hm_error *err);

/* Remove objects (missing ones are not an error). s3: multi-object delete, 1000 a request. */
int hm_storage_remove(hm_storage *st, const char *const *names, size_t n, hm_error *err);
/* Remove everything under dir. */
int hm_storage_remove_dir(hm_storage *st, const char *dir, hm_error *err);

/* Partial writes under dir left by killed or failed runs (posix: temp files; s3: incomplete
 * multipart uploads), other than this handle's own: each is reported to cb (may be NULL)
 * and, unless dry_run, removed (s3: aborted). *count (may be NULL) gets how many. Call it
 * holding the repository lock. */
typedef void (*hm_storage_partial_cb)(void *ctx, const char *name, time_t started);
int hm_storage_sweep(hm_storage *st, const char *dir, int dry_run, hm_storage_partial_cb cb, void *ctx,
		     size_t *count, hm_error *err);

/* --- the lock ------------------------------------------------------------------------- */
/* An exclusive lock named name (e.g. ".lock") for one run, across hosts. owner is shown to
 * whoever finds it held ("backup on host H, pid P"). Held elsewhere: HM_EXIT_LOCKED naming
 * the holder. posix: flock on a file (the kernel releases it when the holder dies). s3: a
 * lease object created with If-None-Match: *, renewed by compare-and-swap (If-Match) while
 * the run works, taken over only once expired by the server's clock. */
int hm_storage_lock_acquire(hm_storage *st, const char *name, const char *owner, hm_storage_lock **out,
			    hm_error *err);
/* Before a commit point (e.g. writing a backup's metadata): confirm the lock is still ours
 * (s3: renews the lease; HM_EXIT_LOCKED when it was lost). */
int hm_storage_lock_check(hm_storage_lock *l, hm_error *err);
/* Release and free. NULL is fine. */
void hm_storage_lock_release(hm_storage_lock *l);

/* --- for drivers ---------------------------------------------------------------------- */
/* Names reaching a driver are validated; dir is "" or a valid name. */
typedef struct hm_storage_driver {
	const char *name;
	int (*open_read)(hm_storage *st, const char *name, uint64_t offset, uint64_t length,
			 hm_storage_reader **out, hm_error *err);
	int (*open_write)(hm_storage *st, const char *name, unsigned flags, uint64_t size_hint,
			  hm_storage_writer **out, hm_error *err);
	int (*stat)(hm_storage *st, const char *name, hm_storage_info *out, hm_error *err);
	int (*list)(hm_storage *st, const char *dir, unsigned flags, hm_storage_list_cb cb, void *ctx,
		    hm_error *err);
	int (*remove)(hm_storage *st, const char *const *names, size_t n, hm_error *err);
	int (*remove_dir)(hm_storage *st, const char *dir, hm_error *err);
	int (*sweep)(hm_storage *st, const char *dir, int dry_run, hm_storage_partial_cb cb, void *ctx,
		     size_t *count, hm_error *err);
	int (*lock_acquire)(hm_storage *st, const char *name, const char *owner, hm_storage_lock **out,
			    hm_error *err);
	int (*lock_check)(hm_storage_lock *l, hm_error *err);
	void (*lock_release)(hm_storage_lock *l);
	void (*close)(hm_storage *st);
} hm_storage_driver;

typedef struct hm_storage_reader_ops {
	int (*read)(hm_storage_reader *r, void *buf, size_t len, size_t *got, hm_error *err);
	void (*close)(hm_storage_reader *r);
} hm_storage_reader_ops;

typedef struct hm_storage_writer_ops {
	int (*write)(hm_storage_writer *w, const void *data, size_t len, hm_error *err);
	int (*commit)(hm_storage_writer *w, hm_storage_info *info, hm_error *err); /* frees w */
	void (*abort)(hm_storage_writer *w);					   /* frees w */
} hm_storage_writer_ops;

/* The first member of every driver's handle, reader and writer. */
struct hm_storage {
	const hm_storage_driver *drv;
	char location[HM_STORAGE_NAME_MAX + 64];
};
struct hm_storage_reader {
	const hm_storage_reader_ops *ops;
	uint64_t object_size;
};
struct hm_storage_writer {
	const hm_storage_writer_ops *ops;
};
struct hm_storage_lock {
	hm_storage *st;
};

/* Driver constructors (hm_storage_open picks one). */
int hm_storage_posix_open(const char *path, const hm_storage_options *opt, hm_storage **out, hm_error *err);
int hm_storage_s3_open(const char *url, const hm_storage_options *opt, hm_storage **out, hm_error *err);

#endif
