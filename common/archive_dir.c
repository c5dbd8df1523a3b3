/* Directory archives. Design notes:
 * - each regular file is read exactly once: the same buffer feeds SHA-256 and libarchive,
 *   so the digest in the manifest is of the bytes that went into the archive;
 * - zstd runs in libarchive's filter with the "threads" option (libarchive >= 3.6 maps it
 *   to ZSTD_c_nbWorkers), so compression overlaps reading and hashing;
 * - the manifest is the last member because digests are only known after streaming; the
 *   metadata is the first so that listing a backup does not decompress the whole archive;
 * - verification re-reads everything and compares with the manifest; extraction verifies
 *   first and then checks every entry again while writing (the archive could change in
 *   between), and fsyncs everything it wrote so a later rename-swap is durable. */
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

#include "digest.h"
#include "fsutil.h"
#include "manifest.h"

#define META_MEMBER "hive-migrate/metadata.json"
#define MANIFEST_MEMBER "hive-migrate/manifest.json"
#define DATA_PREFIX "data"
#define IO_BUF (1 << 20)
#define MAX_META (16u << 20)
#define MAX_MANIFEST (512u << 20)

/* State of one archive being written. */
typedef struct writer {
	struct archive *a;
	const char *archive_path; /* for messages */
	unsigned char *buf;
	hm_manifest manifest;
	hm_progress *progress;
	hm_archive_stats *stats;
} writer;

/* Turn the last libarchive error of a writer into an hm_error (ENOSPC -> NO_SPACE). */
static int archive_fail(hm_error *err, struct archive *a, const char *what, const char *path)
{
	int e = archive_errno(a);
	if (e > 0)
		return hm_error_errno(err, e, what, path);
	return hm_error_set(err, HM_EXIT_IO, "cannot %s \"%s\": %s", what, path,
			    archive_error_string(a) ? archive_error_string(a) : "unknown libarchive error");
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
	if (archive_write_header(w->a, e) != ARCHIVE_OK) {
		archive_fail(err, w->a, "write archive", w->archive_path);
		goto cleanup;
	}
	if (len && archive_write_data(w->a, data, len) != (la_ssize_t)len) {
		archive_fail(err, w->a, "write archive", w->archive_path);
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

/* Stream one regular file into the archive, hashing as it goes. */
static int write_file_data(writer *w, const char *abspath, const struct stat *st, char *hex, hm_error *err)
{
	int fd = open(abspath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t total = 0;
	hm_sha256 *h = NULL;
	if (fd < 0)
		return hm_error_errno(err, errno, "open", abspath);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
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
		if (archive_write_data(w->a, w->buf, (size_t)n) != n) {
			archive_fail(err, w->a, "write archive", w->archive_path);
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

/* Archive one entry (rel is its manifest path) and, for directories, everything below it
 * in name order (deterministic archives). */
static int walk(writer *w, const char *abspath, const char *rel, hm_error *err)
{
	struct stat st;
	struct archive_entry *e = NULL;
	char *name = NULL, *target = NULL;
	struct dirent **list = NULL;
	int n = 0, rc = -1;
	hm_manifest_entry me = {0};

	if (lstat(abspath, &st) != 0)
		return hm_error_errno(err, errno, "stat", abspath);
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
	me.path = (char *)rel;
	me.mode = st.st_mode & 07777;
	me.uid = st.st_uid;
	me.gid = st.st_gid;
	me.mtime = st.st_mtim.tv_sec;
	me.size = me.type == HM_ENTRY_FILE ? (uint64_t)st.st_size : 0;

	if (member_name(&name, rel) != 0 || !(e = archive_entry_new())) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	archive_entry_set_pathname(e, name);
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
		if ((len = readlink(abspath, target, cap)) < 0 || (size_t)len >= cap) {
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
	if (archive_write_header(w->a, e) != ARCHIVE_OK) {
		archive_fail(err, w->a, "write archive", w->archive_path);
		goto cleanup;
	}
	if (me.type == HM_ENTRY_FILE) {
		if (write_file_data(w, abspath, &st, me.sha256, err) != 0)
			goto cleanup;
		w->stats->files++;
		w->stats->bytes += me.size;
	}
	if (hm_manifest_add(&w->manifest, &me, err) != 0)
		goto cleanup;
	w->stats->entries++;

	if (me.type == HM_ENTRY_DIR) {
		n = scandir(abspath, &list, NULL, alphasort);
		if (n < 0) {
			hm_error_errno(err, errno, "list directory", abspath);
			goto cleanup;
		}
		for (int i = 0; i < n; i++) {
			const char *d = list[i]->d_name;
			char *cabs = NULL, *crel = NULL;
			if (!strcmp(d, ".") || !strcmp(d, ".."))
				continue;
			if (asprintf(&cabs, "%s/%s", abspath, d) < 0)
				cabs = NULL;
			if (asprintf(&crel, "%s/%s", rel, d) < 0)
				crel = NULL;
			int r = cabs && crel ? walk(w, cabs, !strcmp(rel, ".") ? d : crel, err)
					     : hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			free(cabs);
			free(crel);
			if (r != 0)
				goto cleanup;
		}
	}
	rc = 0;
cleanup:
	if (list) {
		for (int i = 0; i < n; i++)
			free(list[i]);
		free(list);
	}
	archive_entry_free(e);
	free(name);
	free(target);
	return rc;
}

int hm_archive_dir_create(const char *srcdir, const char *archive_path, const hm_archive_opts *opts,
			  hm_archive_stats *stats, hm_error *err)
{
	hm_archive_stats local = {0};
	writer w = {0};
	char partial[PATH_MAX], threads[16], level[16];
	char *manifest_json = NULL;
	size_t manifest_len = 0;
	int fd = -1, rc = -1, created = 0;
	double t0 = hm_progress_now();
	struct stat st;

	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	hm_manifest_init(&w.manifest);
	w.stats = stats;
	w.progress = opts->progress;
	w.archive_path = archive_path;
	if (!opts->metadata_json)
		return hm_error_set(err, HM_EXIT_INTERNAL, "archive metadata missing");
	if (stat(srcdir, &st) != 0)
		return hm_error_errno(err, errno, "stat", srcdir);
	if (!S_ISDIR(st.st_mode))
		return hm_error_set(err, HM_EXIT_INPUT, "\"%s\" is not a directory", srcdir);
	if (access(archive_path, F_OK) == 0)
		return hm_error_set(err, HM_EXIT_INPUT, "archive \"%s\" already exists", archive_path);
	if (snprintf(partial, sizeof partial, "%s.partial", archive_path) >= (int)sizeof partial)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", archive_path);
	if (hm_manifest_set_metadata(&w.manifest, opts->metadata_json, err) != 0)
		goto cleanup;
	unlink(partial); /* a leftover of a killed run: never a finished archive */
	fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		hm_error_errno(err, errno, "create", partial);
		goto cleanup;
	}
	created = 1;
	if (!(w.buf = malloc(IO_BUF)) || !(w.a = archive_write_new())) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	snprintf(level, sizeof level, "%d", opts->zstd_level > 0 ? opts->zstd_level : 1);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(threads, sizeof threads, "%d",
		 opts->zstd_threads > 0 ? opts->zstd_threads : (ncpu > 0 ? (int)ncpu : 1));
	if (archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(w.a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(w.a, "zstd", "compression-level", level) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w.a, 1 << 16) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w.a, 1) != ARCHIVE_OK) {
		archive_fail(err, w.a, "set up archive", archive_path);
		goto cleanup;
	}
	/* "threads" exists from libarchive 3.6; older versions compress on one thread. */
	(void)archive_write_set_filter_option(w.a, "zstd", "threads", threads);
	if (archive_write_open_fd(w.a, fd) != ARCHIVE_OK) {
		archive_fail(err, w.a, "open archive", partial);
		goto cleanup;
	}
	if (write_member(&w, META_MEMBER, opts->metadata_json, strlen(opts->metadata_json), err) != 0)
		goto cleanup;
	if (walk(&w, srcdir, ".", err) != 0)
		goto cleanup;
	if (hm_manifest_encode(&w.manifest, &manifest_json, &manifest_len, err) != 0)
		goto cleanup;
	if (write_member(&w, MANIFEST_MEMBER, manifest_json, manifest_len, err) != 0)
		goto cleanup;
	{
		hm_sha256 *h = hm_sha256_new();
		if (!h) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto cleanup;
		}
		hm_sha256_update(h, manifest_json, manifest_len);
		hm_sha256_final_hex(h, stats->manifest_sha256);
	}
	if (archive_write_close(w.a) != ARCHIVE_OK) {
		archive_fail(err, w.a, "write archive", partial);
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
	free(w.buf);
	free(manifest_json);
	hm_manifest_free(&w.manifest);
	if (rc != 0)
		hm_error_prefix(err, "snapshot of \"%s\" into \"%s\" failed", srcdir, archive_path);
	return rc;
}

/* ---- reading ---- */

/* Open an archive for reading (any compression libarchive knows, tar formats only). */
static struct archive *open_reader(const char *path, hm_error *err)
{
	struct archive *a = archive_read_new();
	if (!a) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (access(path, R_OK) != 0) {
		hm_error_errno(err, errno, "open archive", path);
		archive_read_free(a);
		return NULL;
	}
	if (archive_read_open_filename(a, path, IO_BUF) != ARCHIVE_OK) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\" is unreadable: %s", path,
			     archive_error_string(a) ? archive_error_string(a) : "unknown error");
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Read a whole small member into memory. */
static int read_member(struct archive *a, const char *path, const char *name, size_t max, char **out,
		       size_t *len, hm_error *err)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				free(buf);
				return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
						    "archive \"%s\": member %s is too large", path, name);
			}
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			}
			buf = nb;
		}
		la_ssize_t r = archive_read_data(a, buf + n, cap - n);
		if (r < 0) {
			free(buf);
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\": cannot read %s: %s",
					    path, name, archive_error_string(a));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Relative manifest path of a data member, or NULL if the name is outside data/ or unsafe
 * (absolute, "..", empty or "." components). */
static const char *data_rel(const char *name)
{
	size_t pl = strlen(DATA_PREFIX);
	if (!strcmp(name, DATA_PREFIX) || !strcmp(name, DATA_PREFIX "/"))
		return ".";
	if (strncmp(name, DATA_PREFIX "/", pl + 1) != 0)
		return NULL;
	const char *rel = name + pl + 1;
	if (!*rel)
		return NULL;
	for (const char *p = rel; *p;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return NULL;
		if (!slash)
			break;
		p = slash + 1;
	}
	return rel;
}

/* An extraction target (NULL when only verifying). */
typedef struct extractor {
	const char *destdir;
	const hm_manifest *manifest; /* from the verify pass: the parent checks use it */
} extractor;

/* Create one entry on disk below destdir; for files, data is streamed by the caller. */
static int make_dir_entry(const extractor *x, const char *rel, char *abspath, size_t abssz, hm_error *err)
{
	if (!strcmp(rel, "."))
		snprintf(abspath, abssz, "%s", x->destdir);
	else if (snprintf(abspath, abssz, "%s/%s", x->destdir, rel) >= (int)abssz)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s/%s\"", x->destdir, rel);
	/* Refuse anything whose parent is not a directory of this archive: no writing through
	 * a symlink planted by an earlier entry. */
	if (strcmp(rel, ".") != 0) {
		char parent[PATH_MAX];
		snprintf(parent, sizeof parent, "%s", rel);
		char *slash = strrchr(parent, '/');
		const hm_manifest_entry *pe =
			hm_manifest_find(x->manifest, slash ? (*slash = '\0', parent) : ".");
		if (!pe || pe->type != HM_ENTRY_DIR)
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "\"%s\": parent is not a directory of the archive", rel);
	}
	return 0;
}

/* Apply owner, mode and mtime to a created entry (directories: done at the end). */
static int apply_attrs(const char *abspath, const hm_manifest_entry *e, int fd, hm_error *err)
{
	struct timespec ts[2] = {{e->mtime, 0}, {e->mtime, 0}};
	if (e->type == HM_ENTRY_SYMLINK) {
		if (lchown(abspath, e->uid, e->gid) != 0)
			return hm_error_errno(err, errno, "change owner of", abspath);
		if (utimensat(AT_FDCWD, abspath, ts, AT_SYMLINK_NOFOLLOW) != 0)
			return hm_error_errno(err, errno, "set mtime of", abspath);
		return 0;
	}
	if (fd >= 0) {
		if (fchown(fd, e->uid, e->gid) != 0)
			return hm_error_errno(err, errno, "change owner of", abspath);
		if (fchmod(fd, e->mode) != 0)
			return hm_error_errno(err, errno, "chmod", abspath);
		if (futimens(fd, ts) != 0)
			return hm_error_errno(err, errno, "set mtime of", abspath);
		return 0;
	}
	if (lchown(abspath, e->uid, e->gid) != 0)
		return hm_error_errno(err, errno, "change owner of", abspath);
	if (chmod(abspath, e->mode) != 0)
		return hm_error_errno(err, errno, "chmod", abspath);
	if (utimensat(AT_FDCWD, abspath, ts, AT_SYMLINK_NOFOLLOW) != 0)
		return hm_error_errno(err, errno, "set mtime of", abspath);
	return 0;
}

/* Read (and when x != NULL, extract) every member; compare with the manifest at the end
 * (or, when extracting, with x->manifest entry by entry as well). *out_manifest gets the
 * archive's manifest when not NULL. */
static int scan(const char *path, const extractor *x, hm_progress *progress, hm_archive_stats *stats,
		hm_manifest *out_manifest, hm_error *err)
{
	struct archive *a = open_reader(path, err);
	struct archive_entry *ae;
	hm_manifest seen, manifest;
	char *meta = NULL, *mjson = NULL;
	char meta_hex[65] = "";
	size_t meta_len = 0, mlen = 0;
	unsigned char *buf = NULL;
	int rc = -1, have_manifest = 0, r;
	char abspath[PATH_MAX];
	double t0 = hm_progress_now();

	hm_manifest_init(&seen);
	hm_manifest_init(&manifest);
	if (!a)
		return -1;
	memset(stats, 0, sizeof *stats);
	if (!(buf = malloc(IO_BUF))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(ae);
		if (!name) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\": a member has no name",
				     path);
			goto cleanup;
		}
		if (have_manifest) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				     "archive \"%s\": extra member \"%s\" after the manifest", path, name);
			goto cleanup;
		}
		if (!strcmp(name, META_MEMBER)) {
			if (meta || seen.count) {
				hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					     "archive \"%s\": metadata out of place", path);
				goto cleanup;
			}
			if (read_member(a, path, name, MAX_META, &meta, &meta_len, err) != 0)
				goto cleanup;
			hm_sha256 *h = hm_sha256_new();
			if (!h) {
				hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
				goto cleanup;
			}
			hm_sha256_update(h, meta, meta_len);
			hm_sha256_final_hex(h, meta_hex);
			continue;
		}
		if (!strcmp(name, MANIFEST_MEMBER)) {
			if (read_member(a, path, name, MAX_MANIFEST, &mjson, &mlen, err) != 0)
				goto cleanup;
			hm_sha256 *mh = hm_sha256_new();
			if (!mh) {
				hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
				goto cleanup;
			}
			hm_sha256_update(mh, mjson, mlen);
			hm_sha256_final_hex(mh, stats->manifest_sha256);
			if (hm_manifest_decode(mjson, mlen, path, &manifest, err) != 0) {
				err->code = HM_EXIT_VERIFY_FAILED;
				goto cleanup;
			}
			have_manifest = 1;
			continue;
		}
		char namebuf[PATH_MAX];
		if (snprintf(namebuf, sizeof namebuf, "%s", name) >= (int)sizeof namebuf) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\": member name too long",
				     path);
			goto cleanup;
		}
		for (size_t nl = strlen(namebuf); nl > 1 && namebuf[nl - 1] == '/'; nl--)
			namebuf[nl - 1] = '\0'; /* tar readers report directories as "dir/" */
		const char *rel = data_rel(namebuf);
		if (!rel) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				     "archive \"%s\": unexpected or unsafe member \"%s\"", path, name);
			goto cleanup;
		}
		hm_manifest_entry got = {0};
		got.path = (char *)rel;
		switch (archive_entry_filetype(ae)) {
		case AE_IFREG:
			got.type = HM_ENTRY_FILE;
			break;
		case AE_IFDIR:
			got.type = HM_ENTRY_DIR;
			break;
		case AE_IFLNK:
			got.type = HM_ENTRY_SYMLINK;
			got.target = (char *)archive_entry_symlink(ae);
			break;
		default:
			hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				     "archive \"%s\": \"%s\" has an unsupported type", path, rel);
			goto cleanup;
		}
		got.mode = archive_entry_perm(ae) & 07777;
		got.uid = (uint32_t)archive_entry_uid(ae);
		got.gid = (uint32_t)archive_entry_gid(ae);
		got.mtime = archive_entry_mtime(ae);

		const hm_manifest_entry *want = NULL;
		int fd = -1;
		if (x) {
			want = hm_manifest_find(x->manifest, rel);
			if (!want) {
				hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					     "\"%s\": in the archive but not in its manifest", rel);
				goto cleanup;
			}
			if (make_dir_entry(x, rel, abspath, sizeof abspath, err) != 0)
				goto cleanup;
			if (got.type == HM_ENTRY_DIR) {
				if (strcmp(rel, ".") != 0 && mkdir(abspath, 0700) != 0) {
					hm_error_errno(err, errno, "create directory", abspath);
					goto cleanup;
				}
			} else if (got.type == HM_ENTRY_SYMLINK) {
				if (symlink(got.target ? got.target : "", abspath) != 0) {
					hm_error_errno(err, errno, "create symlink", abspath);
					goto cleanup;
				}
			} else {
				fd = open(abspath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
					  0600);
				if (fd < 0) {
					hm_error_errno(err, errno, "create", abspath);
					goto cleanup;
				}
			}
		}
		if (got.type == HM_ENTRY_FILE) {
			hm_sha256 *h = hm_sha256_new();
			if (!h) {
				if (fd >= 0)
					close(fd);
				hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
				goto cleanup;
			}
			for (;;) {
				la_ssize_t n = archive_read_data(a, buf, IO_BUF);
				if (n < 0) {
					hm_error_set(err, HM_EXIT_VERIFY_FAILED,
						     "archive \"%s\": cannot read \"%s\": %s", path, rel,
						     archive_error_string(a));
					hm_sha256_free(h);
					if (fd >= 0)
						close(fd);
					goto cleanup;
				}
				if (n == 0)
					break;
				hm_sha256_update(h, buf, (size_t)n);
				got.size += (uint64_t)n;
				hm_progress_add(progress, (uint64_t)n);
				for (la_ssize_t off = 0; fd >= 0 && off < n;) {
					ssize_t w = write(fd, buf + off, (size_t)(n - off));
					if (w < 0 && errno == EINTR)
						continue;
					if (w < 0) {
						hm_error_errno(err, errno, "write", abspath);
						hm_sha256_free(h);
						close(fd);
						goto cleanup;
					}
					off += w;
				}
			}
			hm_sha256_final_hex(h, got.sha256);
			stats->files++;
			stats->bytes += got.size;
		}
		if (x) {
			int bad = hm_manifest_entry_compare(want, &got, err) != 0;
			if (!bad && got.type != HM_ENTRY_DIR && apply_attrs(abspath, want, fd, err) != 0)
				bad = 1;
			if (!bad && fd >= 0 && fsync(fd) != 0)
				bad = hm_error_errno(err, errno, "fsync", abspath);
			if (fd >= 0 && close(fd) != 0 && !bad)
				bad = hm_error_errno(err, errno, "close", abspath);
			if (bad)
				goto cleanup;
		}
		if (hm_manifest_add(&seen, &got, err) != 0)
			goto cleanup;
		stats->entries++;
	}
	if (r != ARCHIVE_EOF) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\" is truncated or damaged: %s", path,
			     archive_error_string(a) ? archive_error_string(a) : "read error");
		goto cleanup;
	}
	if (!have_manifest) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\" has no manifest (truncated?)", path);
		goto cleanup;
	}
	if (!meta || !manifest.metadata_json || strcmp(meta_hex, manifest.metadata_sha256) != 0) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED,
			     "archive \"%s\": metadata missing or not the one in the manifest", path);
		goto cleanup;
	}
	if (hm_manifest_sort(&seen, err) != 0) {
		err->code = HM_EXIT_VERIFY_FAILED;
		hm_error_prefix(err, "archive \"%s\"", path);
		goto cleanup;
	}
	for (size_t i = 0; i < manifest.count; i++) {
		const hm_manifest_entry *g = hm_manifest_find(&seen, manifest.entries[i].path);
		if (!g) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				     "archive \"%s\": \"%s\" is in the manifest but missing", path,
				     manifest.entries[i].path);
			goto cleanup;
		}
		if (hm_manifest_entry_compare(&manifest.entries[i], g, err) != 0) {
			hm_error_prefix(err, "archive \"%s\"", path);
			goto cleanup;
		}
	}
	for (size_t i = 0; i < seen.count; i++)
		if (!hm_manifest_find(&manifest, seen.entries[i].path)) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				     "archive \"%s\": \"%s\" is not in the manifest", path,
				     seen.entries[i].path);
			goto cleanup;
		}
	if (!hm_manifest_find(&manifest, ".")) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\": the top directory is missing",
			     path);
		goto cleanup;
	}
	if (x) {
		/* Directories last, deepest first: their mtimes would change as children appear. */
		for (size_t i = seen.count; i-- > 0;) {
			const hm_manifest_entry *d = &seen.entries[i];
			if (d->type != HM_ENTRY_DIR)
				continue;
			if (make_dir_entry(x, d->path, abspath, sizeof abspath, err) != 0 ||
			    apply_attrs(abspath, hm_manifest_find(&manifest, d->path), -1, err) != 0 ||
			    hm_fsync_dir(abspath, err) != 0)
				goto cleanup;
		}
		if (hm_fsync_parent(x->destdir, err) != 0)
			goto cleanup;
	}
	stats->seconds = hm_progress_now() - t0;
	if (out_manifest) {
		*out_manifest = manifest;
		hm_manifest_init(&manifest);
	}
	rc = 0;
cleanup:
	archive_read_free(a);
	free(buf);
	free(meta);
	free(mjson);
	hm_manifest_free(&seen);
	hm_manifest_free(&manifest);
	return rc;
}

int hm_archive_verify(const char *archive_path, hm_progress *progress, hm_archive_stats *stats, hm_error *err)
{
	hm_archive_stats local;
	struct stat st;
	if (!stats)
		stats = &local;
	if (scan(archive_path, NULL, progress, stats, NULL, err) != 0)
		return -1;
	if (stat(archive_path, &st) == 0)
		stats->archive_bytes = (uint64_t)st.st_size;
	return 0;
}

int hm_archive_read_metadata(const char *archive_path, char **json, hm_error *err)
{
	struct archive *a = open_reader(archive_path, err);
	struct archive_entry *ae;
	size_t len;
	int rc = -1;
	if (!a)
		return -1;
	if (archive_read_next_header(a, &ae) != ARCHIVE_OK || !archive_entry_pathname(ae) ||
	    strcmp(archive_entry_pathname(ae), META_MEMBER) != 0)
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\" does not start with its metadata",
			     archive_path);
	else
		rc = read_member(a, archive_path, META_MEMBER, MAX_META, json, &len, err);
	archive_read_free(a);
	return rc;
}

int hm_archive_extract(const char *archive_path, const char *destdir, hm_progress *progress,
		       hm_archive_stats *stats, hm_error *err)
{
	hm_archive_stats local;
	hm_manifest manifest;
	extractor x = {destdir, &manifest};
	int rc;
	if (!stats)
		stats = &local;
	hm_manifest_init(&manifest);
	if (access(destdir, F_OK) == 0)
		return hm_error_set(err, HM_EXIT_INPUT, "cannot extract into \"%s\": it already exists",
				    destdir);
	if (scan(archive_path, NULL, NULL, stats, &manifest, err) != 0)
		return -1;
	if (mkdir(destdir, 0700) != 0) {
		hm_manifest_free(&manifest);
		return hm_error_errno(err, errno, "create directory", destdir);
	}
	rc = scan(archive_path, &x, progress, stats, NULL, err);
	if (rc != 0) { /* only what this call created is below destdir */
		hm_error ignored;
		hm_rmtree(destdir, &ignored);
	}
	hm_manifest_free(&manifest);
	return rc;
}
