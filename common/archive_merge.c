/* The merge of a pre-copied snapshot (archive_delta.h): the reused members of the base and
 * every member of the delta, in the order of the tree walk, into one ordinary archive. Both
 * inputs are read forward once; nothing is decompressed twice except by the final full
 * verification of the result, which runs before it is renamed into place. */
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

#include "archive_delta.h"
#include "archive_dir_int.h"
#include "digest.h"
#include "fsutil.h"

/* One input archive read forward, positioned on a data member (or at its end). */
typedef struct msrc {
	struct archive *a;
	int fd;
	const char *path;
	struct archive_entry *ae;
	char rel[PATH_MAX];
	int eof;
} msrc;

/* Open path for reading. 0 or -1. */
static int src_open(msrc *s, const char *path, hm_error *err)
{
	memset(s, 0, sizeof *s);
	s->path = path;
	if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return hm_error_errno(err, errno, "open archive", path);
	if (!(s->a = archive_read_new()))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	archive_read_support_filter_all(s->a);
	archive_read_support_format_tar(s->a);
	if (archive_read_open_fd(s->a, s->fd, HM_AD_IO_BUF) != ARCHIVE_OK)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\" is unreadable: %s", path,
				    archive_error_string(s->a) ? archive_error_string(s->a)
							       : "unknown error");
	return 0;
}

static void src_close(msrc *s)
{
	if (s->a)
		archive_read_free(s->a);
	if (s->fd > 0)
		close(s->fd);
	s->a = NULL;
	s->fd = -1;
}

/* Advance to the next data member (metadata and manifest are skipped). 0 or -1. */
static int src_next(msrc *s, hm_error *err)
{
	size_t pl = strlen(HM_AD_DATA_PREFIX);
	for (;;) {
		int r = archive_read_next_header(s->a, &s->ae);
		if (r == ARCHIVE_EOF) {
			s->eof = 1;
			return 0;
		}
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return hm_error_set(
				err, HM_EXIT_VERIFY_FAILED, "archive \"%s\" is damaged: %s", s->path,
				archive_error_string(s->a) ? archive_error_string(s->a) : "read error");
		const char *name = archive_entry_pathname(s->ae);
		if (!name)
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "archive \"%s\": a member has no name", s->path);
		if (!strcmp(name, HM_AD_META_MEMBER) || !strcmp(name, HM_AD_MANIFEST_MEMBER))
			continue;
		if (strncmp(name, HM_AD_DATA_PREFIX, pl) != 0 || (name[pl] && name[pl] != '/'))
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "archive \"%s\": unexpected member \"%s\"", s->path, name);
		snprintf(s->rel, sizeof s->rel, "%s", name[pl] ? name + pl + 1 : ".");
		size_t l = strlen(s->rel);
		while (l > 1 && s->rel[l - 1] == '/')
			s->rel[--l] = '\0'; /* a directory member's trailing slash */
		if (!s->rel[0] || !strcmp(s->rel, "/"))
			snprintf(s->rel, sizeof s->rel, "."); /* "data/": the top directory */
		return 0;
	}
}

/* The merge's state. */
typedef struct merger {
	struct archive *out;
	const char *out_path;
	unsigned char *buf;
	hm_manifest written; /* the merged archive's manifest, in member order */
	hm_progress *progress;
	hm_archive_stats *stats;
	const hm_archive_hooks *hooks; /* file_done after each reused member; throttle_us */
} merger;

/* Copy the current member of s into the output: its header, its data hashed on the way
 * and checked against want (the delta's manifest or the reused record). 0 or -1. */
static int copy_member(merger *g, msrc *s, const hm_manifest_entry *want, hm_error *err)
{
	struct archive_entry *e = archive_entry_clone(s->ae);
	hm_sha256 *h = NULL;
	uint64_t size = 0;
	int rc = -1, isreg = archive_entry_filetype(s->ae) == AE_IFREG;
	if (!e || (isreg && !(h = hm_sha256_new()))) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if ((want->type == HM_ENTRY_FILE) != isreg) {
		hm_error_set(err, HM_EXIT_VERIFY_FAILED,
			     "archive \"%s\": \"%s\" is not of the manifest's type", s->path, s->rel);
		goto cleanup;
	}
	if (archive_write_header(g->out, e) != ARCHIVE_OK) {
		hm_ad_archive_fail(err, g->out, "write archive", g->out_path);
		goto cleanup;
	}
	for (; isreg;) {
		la_ssize_t n = archive_read_data(s->a, g->buf, HM_AD_IO_BUF);
		if (n < 0) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED, "archive \"%s\": cannot read \"%s\": %s",
				     s->path, s->rel, archive_error_string(s->a));
			goto cleanup;
		}
		if (n == 0)
			break;
		hm_sha256_update(h, g->buf, (size_t)n);
		if (archive_write_data(g->out, g->buf, (size_t)n) != n) {
			hm_ad_archive_fail(err, g->out, "write archive", g->out_path);
			goto cleanup;
		}
		size += (uint64_t)n;
		hm_progress_add(g->progress, (uint64_t)n);
		if (g->hooks && g->hooks->throttle_us > 0)
			usleep((useconds_t)g->hooks->throttle_us);
	}
	if (isreg) {
		char hex[65];
		hm_sha256_final_hex(h, hex);
		h = NULL;
		if (size != want->size || strcmp(hex, want->sha256) != 0) {
			hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				     "archive \"%s\": \"%s\" is not the copy the pre-copy recorded", s->path,
				     s->rel);
			hm_error_hint(err,
				      "run `up` again with --no-precopy, or restore from another backup");
			goto cleanup;
		}
		g->stats->files++;
		g->stats->bytes += size;
	}
	if (hm_manifest_add(&g->written, want, err) != 0)
		goto cleanup;
	g->stats->entries++;
	if (isreg && g->hooks && g->hooks->file_done &&
	    g->hooks->file_done(g->hooks->ctx, s->rel, NULL, NULL, want->sha256, 0, err) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	hm_sha256_free(h);
	archive_entry_free(e);
	return rc;
}

/* Interleave the base's reused members and the delta's members in tree order. 0 or -1. */
static int merge_members(merger *g, msrc *base, msrc *delta, const hm_manifest *dm, const hm_manifest *reused,
			 hm_error *err)
{
	size_t taken = 0;
	if (src_next(base, err) != 0 || src_next(delta, err) != 0)
		return -1;
	for (;;) {
		const hm_manifest_entry *bw = NULL, *dw;
		while (!base->eof && !(bw = hm_manifest_find(reused, base->rel)))
			if (src_next(base, err) != 0)
				return -1;
		if (base->eof && delta->eof)
			break;
		if (!base->eof && (delta->eof || hm_tree_order_cmp(base->rel, delta->rel) < 0)) {
			if (copy_member(g, base, bw, err) != 0 || src_next(base, err) != 0)
				return -1;
			taken++;
			continue;
		}
		if (!(dw = hm_manifest_find(dm, delta->rel)))
			return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
					    "archive \"%s\": \"%s\" is not in its manifest", delta->path,
					    delta->rel);
		if (copy_member(g, delta, dw, err) != 0 || src_next(delta, err) != 0)
			return -1;
	}
	if (taken != reused->count)
		return hm_error_set(err, HM_EXIT_VERIFY_FAILED,
				    "the base \"%s\" lacks %zu of the files the delta reuses from it",
				    base->path, reused->count - taken);
	return 0;
}

/* The merged archive's metadata member, then the members, then its manifest. 0 or -1. */
static int write_merged(merger *g, msrc *base, msrc *delta, const char *meta, const hm_manifest *dm,
			const hm_manifest *reused, hm_error *err)
{
	char *mj = NULL;
	size_t mlen = 0;
	int rc = -1;
	const char *names[2] = {HM_AD_META_MEMBER, HM_AD_MANIFEST_MEMBER};
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			if (merge_members(g, base, delta, dm, reused, err) != 0 ||
			    hm_manifest_set_metadata(&g->written, meta, err) != 0 ||
			    hm_manifest_encode(&g->written, &mj, &mlen, err) != 0)
				goto cleanup;
		}
		const char *data = pass ? mj : meta;
		size_t len = pass ? mlen : strlen(meta);
		struct archive_entry *e = archive_entry_new();
		if (!e) {
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto cleanup;
		}
		archive_entry_set_pathname(e, names[pass]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0600);
		archive_entry_set_size(e, (la_int64_t)len);
		archive_entry_set_mtime(e, time(NULL), 0);
		int ok = archive_write_header(g->out, e) == ARCHIVE_OK &&
			 archive_write_data(g->out, data, len) == (la_ssize_t)len;
		archive_entry_free(e);
		if (!ok) {
			hm_ad_archive_fail(err, g->out, "write archive", g->out_path);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	free(mj);
	return rc;
}

/* The delta verified in full, its manifest (sorted), the snapshot's metadata and the
 * reused entries. 0 or -1. */
static int load_delta(const char *delta, hm_manifest *dm, char **meta, hm_manifest *reused, hm_error *err)
{
	hm_archive_stats st;
	*meta = NULL;
	hm_manifest_init(reused);
	if (hm_archive_verify_manifest(delta, NULL, &st, dm, err) != 0)
		return -1;
	if (hm_manifest_sort(dm, err) != 0 || !dm->metadata_json ||
	    hm_delta_metadata_parse(dm->metadata_json, delta, meta, reused, err) != 0) {
		if (!err->message[0])
			hm_error_set(err, HM_EXIT_VERIFY_FAILED, "the delta \"%s\" has no metadata", delta);
		return -1;
	}
	hm_manifest full;
	if (hm_delta_full_manifest(dm, reused, &full, err) != 0)
		return -1;
	hm_manifest_free(&full);
	return 0;
}

int hm_archive_merge(const char *base, const char *delta, const char *out, const hm_archive_opts *opts,
		     hm_archive_stats *stats, hm_error *err)
{
	hm_archive_stats local = {0}, vst;
	merger g = {0};
	msrc b = {.fd = -1}, d = {.fd = -1};
	hm_manifest dm, reused;
	char partial[PATH_MAX], *meta = NULL;
	int fd = -1, rc = -1, created = 0;
	double t0 = hm_progress_now();
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	hm_manifest_init(&dm);
	hm_manifest_init(&reused);
	hm_manifest_init(&g.written);
	g.out_path = out;
	g.stats = stats;
	g.progress = opts ? opts->progress : NULL;
	g.hooks = opts ? opts->hooks : NULL;
	if (snprintf(partial, sizeof partial, "%s.partial", out) >= (int)sizeof partial)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", out);
	if (load_delta(delta, &dm, &meta, &reused, err) != 0 || src_open(&b, base, err) != 0 ||
	    src_open(&d, delta, err) != 0)
		goto cleanup;
	unlink(partial); /* a leftover of a killed merge */
	if ((fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		hm_error_errno(err, errno, "create", partial);
		goto cleanup;
	}
	created = 1;
	hm_archive_opts dflt = {.zstd_level = 1};
	if (!(g.buf = malloc(HM_AD_IO_BUF)) || !(g.out = archive_write_new())) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	if (hm_ad_setup_writer(g.out, opts ? opts : &dflt, partial, err) != 0)
		goto cleanup;
	if (archive_write_open_fd(g.out, fd) != ARCHIVE_OK) {
		hm_ad_archive_fail(err, g.out, "open archive", partial);
		goto cleanup;
	}
	if (write_merged(&g, &b, &d, meta, &dm, &reused, err) != 0)
		goto cleanup;
	if (archive_write_close(g.out) != ARCHIVE_OK) {
		hm_ad_archive_fail(err, g.out, "write archive", partial);
		goto cleanup;
	}
	if (fsync(fd) != 0) {
		hm_error_errno(err, errno, "fsync", partial);
		goto cleanup;
	}
	if (hm_archive_verify(partial, NULL, &vst, err) != 0)
		goto cleanup;
	if (rename(partial, out) != 0) {
		hm_error_errno(err, errno, "rename into place", out);
		goto cleanup;
	}
	created = 0;
	if (hm_fsync_parent(out, err) != 0)
		goto cleanup;
	snprintf(stats->manifest_sha256, sizeof stats->manifest_sha256, "%s", vst.manifest_sha256);
	stats->archive_bytes = vst.archive_bytes;
	stats->seconds = hm_progress_now() - t0;
	rc = 0;
cleanup:
	if (g.out)
		archive_write_free(g.out);
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(partial);
	src_close(&b);
	src_close(&d);
	free(g.buf);
	free(meta);
	hm_manifest_free(&dm);
	hm_manifest_free(&reused);
	hm_manifest_free(&g.written);
	if (rc != 0)
		hm_error_prefix(err, "merging \"%s\" and \"%s\" into \"%s\" failed", base, delta, out);
	return rc;
}
