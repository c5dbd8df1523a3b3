/* Directory archives, the reading half: verification and extraction run the same pass
 * (scan). Every data member goes through the archive rule (tree_rule.h) and is compared
 * with the manifest, so what verifies is exactly what extracts. Extraction verifies the
 * whole archive first (a bad archive is refused before anything is written), then runs the
 * pass again writing through tree_writer.h; the archive could change in between, so
 * everything is checked again while writing. The manifest and metadata members are read
 * into memory, so their size is capped by the archive's own size (a few KB of zstd must
 * not claim a manifest of gigabytes) and absolutely. */
#include "archive_dir.h"

#include <archive.h>
#include <archive_entry.h>
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
#include "tree_rule.h"
#include "tree_writer.h"
#include "write_queue.h"

#define MAX_META_ABS (16u << 20)
#define MAX_MANIFEST_ABS (256u << 20)
/* A manifest entry takes at least ~10 bytes of zstd next to a tar header of its own, and
 * a JSON entry is ~200 bytes: 32 x the archive's size (+1 MiB) is far above any real one. */
#define MEMBER_RATIO 32

/* Cap for an in-memory member of an archive of archive_size bytes. */
static size_t member_cap(size_t absolute, uint64_t archive_size)
{
	uint64_t rel = archive_size * MEMBER_RATIO + (1u << 20);
	return rel < absolute ? (size_t)rel : absolute;
}

/* An archive opened for reading from fd (rewound first; any compression libarchive knows,
 * tar formats only). */
static struct archive *open_reader(int fd, const char *path, hm_error *err)
{
	struct archive *a;
	if (lseek(fd, 0, SEEK_SET) != 0) {
		hm_error_errno(err, errno, "rewind", path);
		return NULL;
	}
	if (!(a = archive_read_new())) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, HM_AD_IO_BUF) != ARCHIVE_OK) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\" is unreadable: %s", path,
			     archive_error_string(a) ? archive_error_string(a) : "unknown error");
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Read a whole small member into memory (at most max bytes). */
static int read_member(struct archive *a, struct archive_entry *ae, const char *path, const char *name,
		       size_t max, char **out, size_t *len, hm_error *err)
{
	size_t cap = 65536, n = 0;
	char *buf;
	if (archive_entry_size_is_set(ae) && archive_entry_size(ae) > (la_int64_t)max)
		return hm_error_set(
			err, HM_EXIT_VERIFY_FAILED,
			"archive \"%s\": member %s is too large (%lld bytes, at most %zu for this "
			"archive)",
			path, name, (long long)archive_entry_size(ae), max);
	if (!(buf = malloc(cap + 1)))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				free(buf);
				return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
						    "archive \"%s\": member %s is too large (over %zu bytes)",
						    path, name, max);
			}
			cap = cap * 2 > max ? max : cap * 2;
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

/* SHA-256 hex of a buffer. 0 or -1. */
static int sha_hex(const char *data, size_t len, char hex[65], hm_error *err)
{
	hm_sha256 *h = hm_sha256_new();
	if (!h)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	hm_sha256_update(h, data, len);
	hm_sha256_final_hex(h, hex);
	return 0;
}

/* The normalized manifest path of data member name into rel, or -1 with err set. */
static int data_rel(const char *path, const char *name, char *rel, size_t relsz, hm_error *err)
{
	size_t pl = strlen(HM_AD_DATA_PREFIX);
	char why[512];
	if (strncmp(name, HM_AD_DATA_PREFIX, pl) != 0 || (name[pl] != '\0' && name[pl] != '/'))
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\": unexpected member \"%s\"",
				    path, name);
	if (hm_tree_normalize(name + pl + (name[pl] == '/'), rel, relsz, why, sizeof why) != 0)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\": unsafe member \"%s\": %s",
				    path, name, why);
	return 0;
}

/* Stream the data of the current (regular file) member: hash it, count it, and write it
 * when w is not NULL. Verifying only (q set), the hashing runs on q's thread while this
 * one decompresses; writing, the writes run on the tree writer's thread instead. */
static int file_data(struct archive *a, const char *path, const char *rel, unsigned char *buf,
		     hm_tree_writer *w, hm_wqueue *q, hm_progress *progress, hm_manifest_entry *got,
		     hm_error *err)
{
	hm_sha256 *h = hm_sha256_new();
	int rc = -1, queued = 0;
	if (!h)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, HM_AD_IO_BUF);
		if (n < 0) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\": cannot read \"%s\": %s",
				     path, rel, archive_error_string(a));
			goto done;
		}
		if (n == 0)
			break;
		/* past the first slot's worth (small files stay on this thread), in order */
		if (q && (queued || got->size + (uint64_t)n > HM_WQ_SLOT)) {
			queued = 1;
			hm_wqueue_hash(q, h, buf, (size_t)n);
		} else {
			hm_sha256_update(h, buf, (size_t)n);
		}
		got->size += (uint64_t)n;
		hm_progress_add(progress, (uint64_t)n);
		if (w && hm_tree_writer_data(w, buf, (size_t)n, err) != 0)
			goto done;
	}
	rc = 0;
done:
	if (queued)
		(void)hm_wqueue_drain(q); /* h is ours again */
	if (rc == 0)
		hm_sha256_final_hex(h, got->sha256);
	else
		hm_sha256_free(h);
	return rc;
}

/* State of one pass over an archive. */
typedef struct pass {
	struct archive *a;
	const char *path;
	hm_tree_writer *w;	   /* NULL: verify only */
	const hm_manifest *want_m; /* writing: the manifest of the verify pass */
	hm_progress *progress;
	hm_archive_stats *stats;
	hm_tree_rule rule;
	hm_manifest seen; /* every data member read */
	unsigned char *buf;
	hm_wqueue *hashq; /* verifying only: the hashing thread */
} pass;

/* One data member: the rule, its data, and when writing, the manifest's record of it. */
static int data_member(pass *p, struct archive_entry *ae, const char *name, hm_error *err)
{
	char rel[PATH_MAX], why[PATH_MAX + 256];
	hm_tree_item item;
	if (data_rel(p->path, name, rel, sizeof rel, err) != 0)
		return -1;
	if (hm_tree_rule_check(&p->rule, rel, ae, &item, why, sizeof why) != 0)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\": %s", p->path, why);
	hm_manifest_entry got = {0};
	got.path = (char *)item.path;
	got.type = item.type; /* the same letters: f, d, l */
	got.target = (char *)item.target;
	got.mode = item.mode;
	got.uid = item.uid;
	got.gid = item.gid;
	got.mtime = item.mtime;
	const hm_manifest_entry *want = NULL;
	if (p->w) {
		if (!(want = hm_manifest_find(p->want_m, item.path)))
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "\"%s\": in the archive but not in its manifest", item.path);
		if (hm_tree_writer_add(p->w, &item, err) != 0)
			return -1;
	}
	if (got.type == HM_ENTRY_FILE) {
		int fr = file_data(p->a, p->path, item.path, p->buf, p->w, p->hashq, p->progress, &got, err);
		if (p->w && hm_tree_writer_end_file(p->w, err) != 0)
			fr = -1;
		if (fr != 0)
			return -1;
		p->stats->files++;
		p->stats->bytes += got.size;
	}
	if (p->w && hm_manifest_entry_compare(want, &got, err) != 0)
		return -1;
	if (hm_manifest_add(&p->seen, &got, err) != 0)
		return -1;
	p->stats->entries++;
	return 0;
}

/* Once every member was read: what was seen against the manifest, both ways. */
static int against_manifest(const char *path, hm_manifest *seen, const hm_manifest *manifest, hm_error *err)
{
	if (hm_manifest_sort(seen, err) != 0) {
		err->code = HM_EXIT_VERIFY_FAILED;
		return hm_error_prefix(err, "archive \"%s\"", path);
	}
	for (size_t i = 0; i < manifest->count; i++) {
		const hm_manifest_entry *g = hm_manifest_find(seen, manifest->entries[i].path);
		if (!g)
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "archive \"%s\": \"%s\" is in the manifest but missing", path,
					    manifest->entries[i].path);
		if (hm_manifest_entry_compare(&manifest->entries[i], g, err) != 0)
			return hm_error_prefix(err, "archive \"%s\"", path);
	}
	for (size_t i = 0; i < seen->count; i++)
		if (!hm_manifest_find(manifest, seen->entries[i].path))
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "archive \"%s\": \"%s\" is not in the manifest", path,
					    seen->entries[i].path);
	if (!hm_manifest_find(manifest, "."))
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				    "archive \"%s\": the top directory is missing", path);
	return 0;
}

/* Read (and when w != NULL, write) every member. Verifying, the manifest found at the end
 * is compared with what was seen; writing (want_m = the manifest of the verify pass), every
 * member is also compared with it as it is written. *out_manifest (when not NULL) gets the
 * archive's manifest. */
static int scan(int fd, const char *path, hm_tree_writer *w, const hm_manifest *want_m, hm_progress *progress,
		hm_archive_stats *stats, hm_manifest *out_manifest, hm_error *err)
{
	pass p;
	memset(&p, 0, sizeof p);
	p.a = open_reader(fd, path, err);
	p.path = path;
	p.w = w;
	p.want_m = want_m;
	p.progress = progress;
	p.stats = stats;
	struct archive_entry *ae;
	hm_manifest manifest;
	char *meta = NULL, *mjson = NULL, meta_hex[65] = "";
	size_t meta_len = 0, mlen = 0;
	int rc = -1, have_manifest = 0, r;
	double t0 = hm_progress_now();
	struct stat ast;

	hm_manifest_init(&p.seen);
	hm_manifest_init(&manifest);
	hm_tree_rule_init(&p.rule);
	if (!p.a)
		return -1;
	memset(stats, 0, sizeof *stats);
	if (fstat(fd, &ast) != 0) {
		hm_error_errno(err, errno, "stat", path);
		goto cleanup;
	}
	if (!(p.buf = malloc(HM_AD_IO_BUF))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if (!w && hm_wqueue_new(&p.hashq, err) != 0)
		goto cleanup;
	/* ARCHIVE_WARN: e.g. a pax name that is not UTF-8 and not marked BINARY; the name is
	 * then kept as the bytes it is, which is what we want */
	while ((r = archive_read_next_header(p.a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
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
		if (!strcmp(name, HM_AD_META_MEMBER)) {
			if (meta || p.seen.count) {
				hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					     "archive \"%s\": metadata out of place", path);
				goto cleanup;
			}
			if (read_member(p.a, ae, path, name, member_cap(MAX_META_ABS, (uint64_t)ast.st_size),
					&meta, &meta_len, err) != 0 ||
			    sha_hex(meta, meta_len, meta_hex, err) != 0)
				goto cleanup;
		} else if (!strcmp(name, HM_AD_MANIFEST_MEMBER)) {
			if (read_member(p.a, ae, path, name,
					member_cap(MAX_MANIFEST_ABS, (uint64_t)ast.st_size), &mjson, &mlen,
					err) != 0 ||
			    sha_hex(mjson, mlen, stats->manifest_sha256, err) != 0)
				goto cleanup;
			if (hm_manifest_decode(mjson, mlen, path, &manifest, err) != 0) {
				err->code = HM_EXIT_VERIFY_FAILED;
				goto cleanup;
			}
			have_manifest = 1;
		} else if (data_member(&p, ae, name, err) != 0) {
			goto cleanup;
		}
	}
	if (r != ARCHIVE_EOF) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\" is truncated or damaged: %s", path,
			     archive_error_string(p.a) ? archive_error_string(p.a) : "read error");
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
	if (against_manifest(path, &p.seen, &manifest, err) != 0)
		goto cleanup;
	if (w && hm_tree_writer_finish(w, err) != 0)
		goto cleanup;
	stats->seconds = hm_progress_now() - t0;
	stats->archive_bytes = (uint64_t)ast.st_size;
	if (out_manifest) {
		*out_manifest = manifest;
		hm_manifest_init(&manifest);
	}
	rc = 0;
cleanup:
	hm_wqueue_free(p.hashq);
	archive_read_free(p.a);
	free(p.buf);
	free(meta);
	free(mjson);
	hm_tree_rule_free(&p.rule);
	hm_manifest_free(&p.seen);
	hm_manifest_free(&manifest);
	return rc;
}

/* Open an archive file for reading. The fd, or -1. */
static int open_archive(const char *path, hm_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hm_error_errno(err, errno, "open archive", path);
	return fd;
}

int hm_archive_verify_fd(int fd, const char *path, hm_progress *progress, hm_archive_stats *stats,
			 hm_error *err)
{
	hm_archive_stats local;
	return scan(fd, path, NULL, NULL, progress, stats ? stats : &local, NULL, err);
}

int hm_archive_verify(const char *archive_path, hm_progress *progress, hm_archive_stats *stats, hm_error *err)
{
	int fd = open_archive(archive_path, err);
	if (fd < 0)
		return -1;
	int rc = hm_archive_verify_fd(fd, archive_path, progress, stats, err);
	close(fd);
	return rc;
}

int hm_archive_verify_manifest(const char *archive_path, hm_progress *progress, hm_archive_stats *stats,
			       hm_manifest *out, hm_error *err)
{
	hm_archive_stats local;
	hm_manifest_init(out);
	int fd = open_archive(archive_path, err);
	if (fd < 0)
		return -1;
	int rc = scan(fd, archive_path, NULL, NULL, progress, stats ? stats : &local, out, err);
	close(fd);
	return rc;
}

int hm_archive_read_metadata(const char *archive_path, char **json, hm_error *err)
{
	struct archive_entry *ae;
	struct archive *a;
	struct stat st;
	size_t len;
	int rc = -1, fd = open_archive(archive_path, err);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0) {
		hm_error_errno(err, errno, "stat", archive_path);
		close(fd);
		return -1;
	}
	if (!(a = open_reader(fd, archive_path, err))) {
		close(fd);
		return -1;
	}
	if (archive_read_next_header(a, &ae) != ARCHIVE_OK || !archive_entry_pathname(ae) ||
	    strcmp(archive_entry_pathname(ae), HM_AD_META_MEMBER) != 0)
		hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\" does not start with its metadata",
			     archive_path);
	else
		rc = read_member(a, ae, archive_path, HM_AD_META_MEMBER,
				 member_cap(MAX_META_ABS, (uint64_t)st.st_size), json, &len, err);
	archive_read_free(a);
	close(fd);
	return rc;
}

int hm_archive_extract_at(int fd, const char *archive_path, int parentfd, const char *name,
			  const char *destdir, const hm_extract_opts *o, hm_progress *progress,
			  hm_archive_stats *stats, struct stat *created, hm_error *err)
{
	hm_archive_stats local;
	hm_manifest manifest;
	hm_tree_writer *w = NULL;
	hm_tree_owner owner = {0};
	if (!stats)
		stats = &local;
	if (o && o->set_owner) {
		owner.set = 1;
		owner.uid = o->uid;
		owner.gid = o->gid;
	}
	if (scan(fd, archive_path, NULL, NULL, NULL, stats, &manifest, err) != 0)
		return -1;
	if (hm_tree_writer_new(&w, parentfd, name, destdir, &owner, err) != 0) {
		hm_manifest_free(&manifest);
		return -1;
	}
	int rc = scan(fd, archive_path, w, &manifest, progress, stats, NULL, err);
	hm_manifest_free(&manifest);
	if (rc != 0) {
		hm_tree_writer_abort(w); /* only what this call created is below destdir */
		return -1;
	}
	if (created)
		*created = *hm_tree_writer_root_stat(w);
	hm_tree_writer_free(w);
	return 0;
}

int hm_archive_extract(const char *archive_path, const char *destdir, hm_progress *progress,
		       hm_archive_stats *stats, hm_error *err)
{
	char dir[PATH_MAX], base[NAME_MAX + 1];
	int fd, pfd, rc;
	if (hm_path_split(destdir, dir, sizeof dir, base, sizeof base, err) != 0)
		return -1;
	if ((fd = open_archive(archive_path, err)) < 0)
		return -1;
	if ((pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		close(fd);
		return hm_error_errno(err, errno, "open directory", dir);
	}
	rc = hm_archive_extract_at(fd, archive_path, pfd, base, destdir, NULL, progress, stats, NULL, err);
	if (rc == 0 && fsync(pfd) != 0)
		rc = hm_error_errno(err, errno, "fsync directory", dir);
	close(pfd);
	close(fd);
	return rc;
}
