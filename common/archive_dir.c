/* Directory archives, the writing half (reading: archive_dir_read.c). Design notes:
 * - each regular file is read exactly once: the same buffer feeds SHA-256 and libarchive,
 *   so the digest in the manifest is of the bytes that went into the archive;
 * - names are bytes: the pax writer runs with hdrcharset=BINARY, so no name is converted
 *   through the locale (cron runs with LANG=C; a name need not be UTF-8 at all);
 * - the source is walked with directory fds (fstatat/openat O_NOFOLLOW, readlinkat), so a
 *   directory swapped for a symlink while the walk runs is archived as the symlink it now
 *   is, never followed into; set-id bits are not archived (restore never creates them);
 * - zstd runs in libarchive's filter with the "threads" option (libarchive >= 3.6 maps it
 *   to ZSTD_c_nbWorkers), and a read-ahead thread (read_queue.h) reads and hashes each file,
 *   so reading, hashing, tar framing and compression all overlap;
 * - the manifest is the last member because digests are only known after streaming; the
 *   metadata is the first so that listing a backup does not decompress the whole archive. */
#include "archive_dir.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive_dir_int.h"
#include "digest.h"
#include "fsutil.h"
#include "manifest.h"
#include "read_queue.h"
#include "tree_rule.h"

#define META_MEMBER HM_AD_META_MEMBER
#define MANIFEST_MEMBER HM_AD_MANIFEST_MEMBER
#define DATA_PREFIX HM_AD_DATA_PREFIX
#define IO_BUF HM_AD_IO_BUF

/* State of one archive being written. */
typedef struct writer {
	struct archive *a;
	const char *archive_path; /* for messages */
	unsigned char *buf;
	hm_rqueue *rq; /* the read-ahead thread, made for the first file */
	hm_manifest manifest;
	hm_progress *progress;
	hm_archive_stats *stats;
	const hm_archive_hooks *hooks; /* the pre-copy's, or NULL */
	/* sink mode (hm_archive_dir_create_sink): where the archive's bytes go */
	hm_archive_sink sink;
	void *sink_ctx;
	uint64_t sink_bytes; /* bytes the sink accepted */
	int sink_failed;     /* the sink refused bytes: its error is sink_err */
	hm_error sink_err;
} writer;

int hm_ad_archive_fail(hm_error *err, struct archive *a, const char *what, const char *path)
{
	int e = archive_errno(a);
	if (e > 0)
		return hm_error_errno(err, e, what, path);
	return hm_error_set(err, HM_EXIT_IO, "cannot %s \"%s\": %s", what, path,
			    archive_error_string(a) ? archive_error_string(a) : "unknown libarchive error");
}

/* A libarchive write failed: the sink's own error when the sink refused the bytes (so an
 * object-store failure keeps its code and message), else libarchive's. Returns -1. */
static int wfail(writer *w, hm_error *err, const char *what, const char *path)
{
	if (w->sink_failed) {
		*err = w->sink_err;
		return -1;
	}
	return hm_ad_archive_fail(err, w->a, what, path);
}

/* Write a whole in-memory member (metadata, manifest). */
static int write_member(writer *w, const char *name, const char *data, size_t len, hm_error *err)
{
	struct archive_entry *e = archive_entry_new();
	int rc = -1;
	if (!e)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, time(NULL), 0);
	if (archive_write_header(w->a, e) != ARCHIVE_OK || w->sink_failed) {
		wfail(w, err, "write archive", w->archive_path);
		goto cleanup;
	}
	if (len && (archive_write_data(w->a, data, len) != (la_ssize_t)len || w->sink_failed)) {
		wfail(w, err, "write archive", w->archive_path);
		goto cleanup;
	}
	rc = 0;
cleanup:
	archive_entry_free(e);
	return rc;
}

/* Archive member name for a manifest path. */
static int member_name(char **out, const char *rel)
{
	if (!strcmp(rel, "."))
		return (*out = strdup(DATA_PREFIX)) ? 0 : -1;
	return asprintf(out, "%s/%s", DATA_PREFIX, rel) < 0 ? -1 : 0;
}

/* Stream a small regular file (open as fd; closed here) into the archive on this thread,
 * hashing as it goes (a hand-off to the read-ahead thread would cost more). */
static int write_small_file(writer *w, int fd, const char *abspath, const struct stat *st, char *hex,
			    hm_error *err)
{
	uint64_t total = 0;
	hm_sha256 *h = NULL;
	if (!(h = hm_sha256_new())) {
		close(fd);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	}
	for (;;) {
		ssize_t n = read(fd, w->buf, IO_BUF);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			hm_error_errno(err, errno, "read", abspath);
			goto fail;
		}
		if (n == 0)
			break;
		if (total + (uint64_t)n > (uint64_t)st->st_size) {
			hm_error_set(err, HM_EXIT_IO, "\"%s\" grew while being archived", abspath);
			hm_error_hint(err, "stop whatever writes to the directory and retry");
			goto fail;
		}
		hm_sha256_update(h, w->buf, (size_t)n);
		if (archive_write_data(w->a, w->buf, (size_t)n) != n || w->sink_failed) {
			wfail(w, err, "write archive", w->archive_path);
			goto fail;
		}
		total += (uint64_t)n;
		hm_progress_add(w->progress, (uint64_t)n);
	}
	if (total != (uint64_t)st->st_size) {
		hm_error_set(err, HM_EXIT_IO, "\"%s\" shrank while being archived", abspath);
		hm_error_hint(err, "stop whatever writes to the directory and retry");
		goto fail;
	}
	close(fd);
	hm_sha256_final_hex(h, hex);
	return 0;
fail:
	close(fd);
	hm_sha256_free(h);
	return -1;
}

/* Stream one regular file (open as fd; closed here) into the archive. The read-ahead
 * thread reads it (at most one byte past its size, to see it grow) and hashes each chunk
 * before this thread writes that same chunk into the archive. */
static int write_file_data(writer *w, int fd, const char *abspath, const struct stat *st, char *hex,
			   hm_error *err)
{
	uint64_t total = 0;
	int rc = -1;
	if (st->st_size < (off_t)HM_RQ_SLOT)
		return write_small_file(w, fd, abspath, st, hex, err);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (!w->rq && hm_rqueue_new(&w->rq, err) != 0) {
		close(fd);
		return -1;
	}
	if (hm_rqueue_begin(w->rq, fd, (uint64_t)st->st_size + 1, err) != 0) {
		close(fd);
		return -1;
	}
	for (;;) {
		const unsigned char *data;
		size_t n;
		int e = hm_rqueue_next(w->rq, &data, &n);
		if (e != 0) {
			hm_error_errno(err, e, "read", abspath);
			goto done;
		}
		if (n == 0)
			break;
		if (total + n > (uint64_t)st->st_size) {
			hm_error_set(err, HM_EXIT_IO, "\"%s\" grew while being archived", abspath);
			hm_error_hint(err, "stop whatever writes to the directory and retry");
			goto done;
		}
		la_ssize_t wr = archive_write_data(w->a, data, n);
		hm_rqueue_release(w->rq);
		if (wr != (la_ssize_t)n || w->sink_failed) {
			wfail(w, err, "write archive", w->archive_path);
			goto done;
		}
		total += n;
		hm_progress_add(w->progress, n);
	}
	if (total != (uint64_t)st->st_size) {
		hm_error_set(err, HM_EXIT_IO, "\"%s\" shrank while being archived", abspath);
		hm_error_hint(err, "stop whatever writes to the directory and retry");
		goto done;
	}
	rc = 0;
done:
	if (hm_rqueue_end(w->rq, rc == 0 ? hex : NULL) != 0 && rc == 0)
		rc = hm_error_set(err, HM_EXIT_INTERNAL, "\"%s\": no digest after reading", abspath);
	close(fd);
	return rc;
}

/* Live mode (hooks->live): stream a regular file open as fd (not closed here) that a
 * server may be writing, exactly st->st_size bytes: a file that shrinks is zero-padded, one
 * that grows is cut, and either is reported *torn (its bytes are then never trusted:
 * archive_delta.h). The digest is of the bytes archived. */
static int write_live_file(writer *w, int fd, const char *abspath, const struct stat *st, char *hex,
			   int *torn, hm_error *err)
{
	uint64_t total = 0, size = (uint64_t)st->st_size;
	hm_sha256 *h = hm_sha256_new();
	*torn = 0;
	if (!h)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	while (total < size) {
		size_t want = size - total < IO_BUF ? (size_t)(size - total) : IO_BUF;
		ssize_t n = *torn ? 0 : read(fd, w->buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			hm_error_errno(err, errno, "read", abspath);
			goto fail;
		}
		if (n == 0) { /* shrank: pad to the size in the member's header */
			*torn = 1;
			memset(w->buf, 0, want);
			n = (ssize_t)want;
		}
		hm_sha256_update(h, w->buf, (size_t)n);
		if (archive_write_data(w->a, w->buf, (size_t)n) != n || w->sink_failed) {
			wfail(w, err, "write archive", w->archive_path);
			goto fail;
		}
		total += (uint64_t)n;
		hm_progress_add(w->progress, (uint64_t)n);
		if (w->hooks->throttle_us > 0)
			usleep((useconds_t)w->hooks->throttle_us);
	}
	char one;
	if (!*torn && read(fd, &one, 1) > 0)
		*torn = 1; /* grew */
	hm_sha256_final_hex(h, hex);
	return 0;
fail:
	hm_sha256_free(h);
	return -1;
}

/* A regular file's data in live mode, and the pre-copy's record of it (file_done). */
static int write_live_member(writer *w, int fd, const char *abspath, const char *rel, const struct stat *st,
			     char *hex, hm_error *err)
{
	int torn = 0;
	struct stat after;
	if (write_live_file(w, fd, abspath, st, hex, &torn, err) != 0)
		return -1;
	if (fstat(fd, &after) != 0)
		return hm_error_errno(err, errno, "stat", abspath);
	if (w->hooks->file_done && w->hooks->file_done(w->hooks->ctx, rel, st, &after, hex, torn, err) != 0)
		return -1;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the directory open as fd, sorted bytewise (deterministic archives, whatever the
 * locale). *names is malloc'd (free each and the array). The count, or -1. */
static int list_dir(int fd, const char *abspath, char ***names, hm_error *err)
{
	int dfd = dup(fd), n = 0, cap = 0;
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	char **v = NULL;
	*names = NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return hm_error_errno(err, errno, "list directory", abspath);
	}
	rewinddir(d);
	errno = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL; errno = 0) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nv = realloc(v, (size_t)cap * sizeof *nv);
			if (!nv)
				goto oom;
			v = nv;
		}
		if (!(v[n] = strdup(e->d_name)))
			goto oom;
		n++;
	}
	if (errno) {
		int e = errno;
		closedir(d);
		for (int i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return hm_error_errno(err, e, "list directory", abspath);
	}
	closedir(d);
	if (n > 1)
		qsort(v, (size_t)n, sizeof *v, cmp_name);
	*names = v;
	return n;
oom:
	closedir(d);
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
}

/* Archive entry name (inside the directory open as dirfd; AT_FDCWD and the source path
 * for the top), whose manifest path is rel, and for a directory everything below it. */
static int walk(writer *w, int dirfd, const char *name, const char *abspath, const char *rel, int depth,
		hm_error *err)
{
	struct stat st;
	struct archive_entry *e = NULL;
	char *mname = NULL, *target = NULL, **names = NULL;
	int n = 0, rc = -1, fd = -1;
	hm_manifest_entry me = {0};

	int live = w->hooks && w->hooks->live;
	if (fstatat(dirfd, name, &st, dirfd == AT_FDCWD ? 0 : AT_SYMLINK_NOFOLLOW) != 0)
		return live && errno == ENOENT && depth > 0 ? 0 : hm_error_errno(err, errno, "stat", abspath);
	if (live && depth > 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
		return 0; /* a special file: the delta after the stop decides */
	if (S_ISREG(st.st_mode))
		me.type = HM_ENTRY_FILE;
	else if (S_ISDIR(st.st_mode))
		me.type = HM_ENTRY_DIR;
	else if (S_ISLNK(st.st_mode))
		me.type = HM_ENTRY_SYMLINK;
	else
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is a special file (socket, fifo or device)",
				    abspath),
		       hm_error_hint(err, "stop the server using the directory before archiving it");
	if (depth > HM_TREE_MAX_DEPTH)
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is nested deeper than %d directories",
				    abspath, HM_TREE_MAX_DEPTH);
	if (me.type != HM_ENTRY_SYMLINK) {
		/* the entry itself, never through a symlink swapped in since the stat */
		/* O_NONBLOCK: a FIFO swapped in since the stat must not block the open */
		fd = openat(dirfd, name,
			    O_RDONLY | O_CLOEXEC | O_NONBLOCK | (me.type == HM_ENTRY_DIR ? O_DIRECTORY : 0) |
				    (dirfd == AT_FDCWD ? 0 : O_NOFOLLOW));
		struct stat fst;
		if (fd < 0 && live && depth > 0 && (errno == ENOENT || errno == ELOOP || errno == ENOTDIR))
			return 0; /* gone or replaced since the stat: the delta decides */
		if (fd < 0 || fstat(fd, &fst) != 0)
			return hm_error_errno(err, errno, "open", abspath);
		if (live && (fst.st_mode & S_IFMT) == (st.st_mode & S_IFMT))
			st = fst; /* the inode that is read is the one recorded */
		if (fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
			if (live) {
				close(fd);
				return 0;
			}
			close(fd);
			return hm_error_set(err, HM_EXIT_IO, "\"%s\" changed while being archived", abspath),
			       hm_error_hint(err, "stop whatever writes to the directory and retry");
		}
	}
	if (me.type == HM_ENTRY_FILE && w->hooks && w->hooks->skip_file) {
		int sk = w->hooks->skip_file(w->hooks->ctx, rel, &st, err);
		if (sk != 0) {
			close(fd);
			return sk > 0 ? 0 : -1; /* left out: reused from the base */
		}
	}
	me.path = (char *)rel;
	/* no set-id bits: restore never creates them, so archiving them would not round-trip */
	me.mode = st.st_mode & (me.type == HM_ENTRY_DIR ? 01777 : 0777);
	me.uid = st.st_uid;
	me.gid = st.st_gid;
	me.mtime = st.st_mtim.tv_sec;
	me.size = me.type == HM_ENTRY_FILE ? (uint64_t)st.st_size : 0;

	if (member_name(&mname, rel) != 0 || !(e = archive_entry_new())) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	archive_entry_set_pathname(e, mname);
	archive_entry_set_uid(e, st.st_uid);
	archive_entry_set_gid(e, st.st_gid);
	archive_entry_set_perm(e, me.mode);
	archive_entry_set_mtime(e, st.st_mtim.tv_sec, 0);
	if (me.type == HM_ENTRY_SYMLINK) {
		size_t cap = (size_t)st.st_size + 1 > 256 ? (size_t)st.st_size + 1 : 256;
		ssize_t len;
		if (!(target = malloc(cap + 1))) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto cleanup;
		}
		if ((len = readlinkat(dirfd, name, target, cap)) < 0 || (size_t)len >= cap) {
			hm_error_errno(err, len < 0 ? errno : ENAMETOOLONG, "read symlink", abspath);
			goto cleanup;
		}
		target[len] = '\0';
		me.target = target;
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, target);
		archive_entry_set_size(e, 0);
	} else if (me.type == HM_ENTRY_DIR) {
		archive_entry_set_filetype(e, AE_IFDIR);
		archive_entry_set_size(e, 0);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, st.st_size);
	}
	if (archive_write_header(w->a, e) != ARCHIVE_OK || w->sink_failed) {
		wfail(w, err, "write archive", w->archive_path);
		goto cleanup;
	}
	if (me.type == HM_ENTRY_FILE) {
		if (live) {
			if (write_live_member(w, fd, abspath, rel, &st, me.sha256, err) != 0)
				goto cleanup;
		} else {
			int ffd = fd;
			fd = -1;
			if (write_file_data(w, ffd, abspath, &st, me.sha256, err) != 0)
				goto cleanup;
		}
		w->stats->files++;
		w->stats->bytes += me.size;
	}
	if (hm_manifest_add(&w->manifest, &me, err) != 0)
		goto cleanup;
	w->stats->entries++;

	if (me.type == HM_ENTRY_DIR) {
		if ((n = list_dir(fd, abspath, &names, err)) < 0) {
			n = 0;
			goto cleanup;
		}
		for (int i = 0; i < n; i++) {
			char *cabs = NULL, *crel = NULL;
			if (asprintf(&cabs, "%s/%s", abspath, names[i]) < 0)
				cabs = NULL;
			if (asprintf(&crel, "%s/%s", rel, names[i]) < 0)
				crel = NULL;
			int r = cabs && crel ? walk(w, fd, names[i], cabs,
						    !strcmp(rel, ".") ? names[i] : crel, depth + 1, err)
					     : hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			free(cabs);
			free(crel);
			if (r != 0)
				goto cleanup;
		}
	}
	rc = 0;
cleanup:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (fd >= 0)
		close(fd);
	archive_entry_free(e);
	free(mname);
	free(target);
	return rc;
}

static int setup_archive(writer *w, const hm_archive_opts *opts, hm_error *err);

int hm_ad_setup_writer(struct archive *a, const hm_archive_opts *opts, const char *path, hm_error *err)
{
	writer w = {.a = a, .archive_path = path};
	return setup_archive(&w, opts, err);
}

/* Formats and filters of a new archive (pax, binary names, zstd at opts' level with its
 * threads, 64 KiB blocks, no padding of the last one). 0 or -1. */
static int setup_archive(writer *w, const hm_archive_opts *opts, hm_error *err)
{
	char threads[16], level[16];
	snprintf(level, sizeof level, "%d", opts->zstd_level > 0 ? opts->zstd_level : 1);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(threads, sizeof threads, "%d",
		 opts->zstd_threads > 0 ? opts->zstd_threads : (ncpu > 0 ? (int)ncpu : 1));
	if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
	    archive_write_set_format_option(w->a, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(w->a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(w->a, "zstd", "compression-level", level) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w->a, 1 << 16) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK)
		return hm_ad_archive_fail(err, w->a, "set up archive", w->archive_path);
	/* "threads" exists from libarchive 3.6; older versions compress on one thread. */
	(void)archive_write_set_filter_option(w->a, "zstd", "threads", threads);
	return 0;
}

/* Every member of an opened archive: the metadata, the tree of srcdir, the manifest (its
 * digest into w->stats). *manifest_json (malloc'd) is the caller's to free. 0 or -1. */
static int write_members(writer *w, const char *srcdir, const hm_archive_opts *opts, char **manifest_json,
			 hm_error *err)
{
	size_t manifest_len = 0;
	if (write_member(w, META_MEMBER, opts->metadata_json, strlen(opts->metadata_json), err) != 0)
		return -1;
	if (walk(w, AT_FDCWD, srcdir, srcdir, ".", 0, err) != 0)
		return -1;
	if (hm_manifest_encode(&w->manifest, manifest_json, &manifest_len, err) != 0)
		return -1;
	if (write_member(w, MANIFEST_MEMBER, *manifest_json, manifest_len, err) != 0)
		return -1;
	hm_sha256 *h = hm_sha256_new();
	if (!h)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_sha256_update(h, *manifest_json, manifest_len);
	hm_sha256_final_hex(h, w->stats->manifest_sha256);
	return 0;
}

/* Check the arguments shared by both forms and start the writer; archive_path (NULL in
 * sink mode) must not exist yet. 0 or -1. */
static int begin_create(writer *w, const char *srcdir, const char *archive_path, const char *display,
			const hm_archive_opts *opts, hm_archive_stats *stats, hm_error *err)
{
	struct stat st;
	memset(stats, 0, sizeof *stats);
	hm_manifest_init(&w->manifest);
	w->stats = stats;
	w->hooks = opts->hooks;
	w->progress = opts->progress;
	w->archive_path = display;
	if (!opts->metadata_json)
		return hm_error_set(err, HM_EXIT_INTERNAL, "archive metadata missing");
	if (archive_path && lstat(archive_path, &st) == 0)
		return hm_error_set(err, HM_EXIT_INPUT, "archive \"%s\" already exists", archive_path);
	if (stat(srcdir, &st) != 0)
		return hm_error_errno(err, errno, "stat", srcdir);
	if (!S_ISDIR(st.st_mode))
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is not a directory", srcdir);
	return 0;
}

int hm_archive_dir_create(const char *srcdir, const char *archive_path, const hm_archive_opts *opts,
			  hm_archive_stats *stats, hm_error *err)
{
	hm_archive_stats local = {0};
	writer w = {0};
	char partial[PATH_MAX];
	char *manifest_json = NULL;
	int fd = -1, rc = -1, created = 0;
	double t0 = hm_progress_now();
	struct stat st;

	if (!stats)
		stats = &local;
	if (begin_create(&w, srcdir, archive_path, archive_path, opts, stats, err) != 0)
		return -1;
	if (snprintf(partial, sizeof partial, "%s.partial", archive_path) >= (int)sizeof partial)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", archive_path);
	if (hm_manifest_set_metadata(&w.manifest, opts->metadata_json, err) != 0)
		goto cleanup;
	unlink(partial); /* a leftover of a killed run: never a finished archive */
	fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		hm_error_errno(err, errno, "create", partial);
		goto cleanup;
	}
	created = 1;
	if (!(w.buf = malloc(IO_BUF)) || !(w.a = archive_write_new())) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if (setup_archive(&w, opts, err) != 0)
		goto cleanup;
	if (archive_write_open_fd(w.a, fd) != ARCHIVE_OK) {
		hm_ad_archive_fail(err, w.a, "open archive", partial);
		goto cleanup;
	}
	if (write_members(&w, srcdir, opts, &manifest_json, err) != 0)
		goto cleanup;
	if (archive_write_close(w.a) != ARCHIVE_OK) {
		hm_ad_archive_fail(err, w.a, "write archive", partial);
		goto cleanup;
	}
	if (fsync(fd) != 0) {
		hm_error_errno(err, errno, "fsync", partial);
		goto cleanup;
	}
	if (fstat(fd, &st) == 0)
		stats->archive_bytes = (uint64_t)st.st_size;
	if (close(fd) != 0) {
		fd = -1;
		hm_error_errno(err, errno, "close", partial);
		goto cleanup;
	}
	fd = -1;
	if (rename(partial, archive_path) != 0) {
		hm_error_errno(err, errno, "rename into place", archive_path);
		goto cleanup;
	}
	created = 0;
	if (hm_fsync_parent(archive_path, err) != 0)
		goto cleanup;
	stats->seconds = hm_progress_now() - t0;
	rc = 0;
cleanup:
	if (w.a)
		archive_write_free(w.a); /* also closes the archive if still open */
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(partial);
	hm_rqueue_free(w.rq);
	free(w.buf);
	free(manifest_json);
	hm_manifest_free(&w.manifest);
	if (rc != 0)
		hm_error_prefix(err, "snapshot of \"%s\" into \"%s\" failed", srcdir, archive_path);
	return rc;
}

/* libarchive's write callback in sink mode: hand the block to the sink. A refusal keeps
 * the sink's error for wfail, and this block and every later one are dropped while
 * libarchive is told they were written: every caller checks sink_failed after each
 * archive_write_* call. Failing the write instead would leave libarchive 3.6's zstd filter
 * unable to close the client stage, leaking its buffer on archive_write_free. */
static la_ssize_t sink_write_cb(struct archive *a, void *client, const void *buf, size_t len)
{
	writer *w = client;
	(void)a;
	(void)buf;
	if (w->sink_failed)
		return (la_ssize_t)len;
	if (w->sink(w->sink_ctx, buf, len, &w->sink_err) != 0) {
		w->sink_failed = 1;
		return (la_ssize_t)len;
	}
	w->sink_bytes += len;
	return (la_ssize_t)len;
}

int hm_archive_dir_create_sink(const char *srcdir, hm_archive_sink sink, void *ctx, const char *display,
			       const hm_archive_opts *opts, hm_archive_stats *stats, hm_error *err)
{
	hm_archive_stats local = {0};
	writer w = {0};
	char *manifest_json = NULL;
	int rc = -1;
	double t0 = hm_progress_now();

	if (!stats)
		stats = &local;
	hm_manifest_init(&w.manifest);
	w.sink = sink;
	w.sink_ctx = ctx;
	if (begin_create(&w, srcdir, NULL, display, opts, stats, err) != 0)
		goto cleanup;
	if (hm_manifest_set_metadata(&w.manifest, opts->metadata_json, err) != 0)
		goto cleanup;
	if (!(w.buf = malloc(IO_BUF)) || !(w.a = archive_write_new())) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if (setup_archive(&w, opts, err) != 0)
		goto cleanup;
	if (archive_write_open2(w.a, &w, NULL, sink_write_cb, NULL, NULL) != ARCHIVE_OK || w.sink_failed) {
		wfail(&w, err, "open archive", display);
		goto cleanup;
	}
	if (write_members(&w, srcdir, opts, &manifest_json, err) != 0)
		goto cleanup;
	/* the last block (and zstd's end of frame) go to the sink here */
	if (archive_write_close(w.a) != ARCHIVE_OK || w.sink_failed) {
		wfail(&w, err, "write archive", display);
		goto cleanup;
	}
	stats->archive_bytes = w.sink_bytes;
	stats->seconds = hm_progress_now() - t0;
	rc = 0;
cleanup:
	if (rc != 0)
		w.sink_failed = 1; /* nothing more of a failed archive goes to the sink */
	if (w.a)
		archive_write_free(w.a);
	hm_rqueue_free(w.rq);
	free(w.buf);
	free(manifest_json);
	hm_manifest_free(&w.manifest);
	if (rc != 0)
		hm_error_prefix(err, "archive of \"%s\" into %s failed", srcdir, display);
	return rc;
}
