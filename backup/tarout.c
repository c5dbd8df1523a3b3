/* Why a hand-written ustar writer and not libarchive here: libarchive must know a member's
 * size when it writes the header, and the server's compressed archives arrive as a stream
 * of unknown length. Reserving the header and patching it afterwards keeps the backup a
 * single sequential pass (no spool file, no second copy), which is what lets it keep pace
 * with pg_basebackup. Reading is always done with libarchive. */
#include "tarout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TAROUT_BUFSZ (1u << 20)

/* Write n bytes at offset with pwrite, retrying on short writes. */
static int pwrite_all(int fd, const void *data, size_t n, uint64_t off)
{
	const char *p = data;
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Flush the write buffer to the file. */
static int flush_buf(hm_tarout *t, hm_error *err)
{
	if (t->buflen == 0)
		return 0;
	if (pwrite_all(t->fd, t->buf, t->buflen, t->flushed) != 0)
		return hm_error_errno(err, errno, "write", t->path);
	t->flushed += t->buflen;
	t->buflen = 0;
	return 0;
}

/* Append raw bytes (header, data or padding) through the buffer. */
static int put(hm_tarout *t, const void *data, size_t len, hm_error *err)
{
	const char *p = data;
	if (t->buflen + len > TAROUT_BUFSZ) {
		if (flush_buf(t, err) != 0)
			return -1;
		if (len >= TAROUT_BUFSZ) { /* large chunk: straight to the file */
			if (pwrite_all(t->fd, p, len, t->flushed) != 0)
				return hm_error_errno(err, errno, "write", t->path);
			t->flushed += len;
			t->off += len;
			return 0;
		}
	}
	memcpy(t->buf + t->buflen, p, len);
	t->buflen += len;
	t->off += len;
	return 0;
}

/* Octal field of width w (w-1 digits and a NUL); -1 if the value does not fit. */
static int octal(unsigned char *f, size_t w, uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof tmp, "%0*llo", (int)(w - 1), (unsigned long long)v);
	if (n < 0 || (size_t)n > w - 1)
		return -1;
	memcpy(f, tmp, w - 1);
	f[w - 1] = '\0';
	return 0;
}

int hm_tar_header(unsigned char hdr[512], const char *name, uint64_t size, mode_t mode, time_t mtime)
{
	size_t nl = strlen(name);
	if (nl == 0 || nl >= 100)
		return -1;
	memset(hdr, 0, 512);
	memcpy(hdr, name, nl);
	octal(hdr + 100, 8, mode & 07777);
	octal(hdr + 108, 8, (uint64_t)getuid() & 07777777);
	octal(hdr + 116, 8, (uint64_t)getgid() & 07777777);
	if (octal(hdr + 124, 12, size) != 0) {
		/* base-256: high bit of the first byte set, big-endian value in the rest */
		hdr[124] = 0x80;
		for (int i = 0; i < 8; i++)
			hdr[135 - i] = (unsigned char)(size >> (8 * i));
	}
	octal(hdr + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
	hdr[156] = '0';
	memcpy(hdr + 257, "ustar", 6);
	memcpy(hdr + 263, "00", 2);
	memset(hdr + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += hdr[i];
	snprintf((char *)hdr + 148, 8, "%06o", sum);
	hdr[155] = ' ';
	return 0;
}

int hm_tarout_open(hm_tarout *t, const char *path, hm_error *err)
{
	memset(t, 0, sizeof *t);
	t->fd = -1;
	if (snprintf(t->path, sizeof t->path, "%s", path) >= (int)sizeof t->path)
		return hm_error_set(err, HM_EXIT_INPUT, "path too long: \"%s\"", path);
	t->buf = malloc(TAROUT_BUFSZ);
	if (!t->buf)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	t->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (t->fd < 0) {
		free(t->buf);
		t->buf = NULL;
		return hm_error_errno(err, errno, "create", path);
	}
	t->mtime = time(NULL);
	return 0;
}

int hm_tarout_open_stream(hm_tarout *t, hm_tarout_sink sink, void *ctx, size_t chunk, hm_error *err)
{
	memset(t, 0, sizeof *t);
	t->fd = -1;
	if (chunk < 512 || chunk % 512)
		return hm_error_set(err, HM_EXIT_INTERNAL, "tar chunk size %zu is not a multiple of 512",
				    chunk);
	if (!(t->buf = malloc(chunk)))
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	t->sink = sink;
	t->sink_ctx = ctx;
	t->chunk = chunk;
	snprintf(t->path, sizeof t->path, "(stream)");
	t->mtime = time(NULL);
	return 0;
}

/* Stream mode: one entry with the buffered data of the current member (padded). */
static int emit_chunk(hm_tarout *t, hm_error *err)
{
	static const unsigned char zero[512];
	unsigned char hdr[512];
	size_t pad = (512 - t->buflen % 512) % 512;
	hm_tar_header(hdr, t->name, t->buflen, 0600, t->mtime);
	if (t->sink(t->sink_ctx, hdr, sizeof hdr, err) != 0 ||
	    (t->buflen && t->sink(t->sink_ctx, t->buf, t->buflen, err) != 0) ||
	    (pad && t->sink(t->sink_ctx, zero, pad, err) != 0))
		return -1;
	t->off += sizeof hdr + t->buflen + pad;
	t->buflen = 0;
	t->emitted++;
	return 0;
}

int hm_tarout_begin(hm_tarout *t, const char *name, hm_error *err)
{
	static const unsigned char zero[512];
	if (t->in_member)
		return hm_error_set(err, HM_EXIT_INTERNAL, "tar member \"%s\" still open", t->name);
	if (strlen(name) == 0 || strlen(name) >= sizeof t->name)
		return hm_error_set(err, HM_EXIT_INTERNAL, "tar member name \"%s\" too long", name);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->sha = hm_sha256_new();
	if (!t->sha)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	t->hdr_off = t->off;
	t->size = 0;
	t->in_member = 1;
	if (t->sink) {
		t->emitted = 0;
		return 0;
	}
	return put(t, zero, sizeof zero, err); /* placeholder, written in hm_tarout_end */
}

int hm_tarout_write(hm_tarout *t, const void *data, size_t len, hm_error *err)
{
	if (!t->in_member)
		return hm_error_set(err, HM_EXIT_INTERNAL, "tar write outside a member");
	hm_sha256_update(t->sha, data, len);
	t->size += len;
	if (!t->sink)
		return put(t, data, len, err);
	const char *p = data;
	while (len > 0) {
		size_t n = t->chunk - t->buflen < len ? t->chunk - t->buflen : len;
		memcpy(t->buf + t->buflen, p, n);
		t->buflen += n;
		p += n;
		len -= n;
		if (t->buflen == t->chunk && emit_chunk(t, err) != 0)
			return -1;
	}
	return 0;
}

int hm_tarout_end(hm_tarout *t, uint64_t *size, char sha256[HM_SHA256_HEX_LEN + 1], hm_error *err)
{
	static const unsigned char zero[512];
	unsigned char hdr[512];
	char hex[HM_SHA256_HEX_LEN + 1];
	if (!t->in_member)
		return hm_error_set(err, HM_EXIT_INTERNAL, "no tar member open");
	if (t->sink) {
		if ((t->buflen || !t->emitted) && emit_chunk(t, err) != 0)
			return -1;
		goto done;
	}
	size_t pad = (size_t)((512 - t->size % 512) % 512);
	if (pad && put(t, zero, pad, err) != 0)
		return -1;
	hm_tar_header(hdr, t->name, t->size, 0600, t->mtime);
	if (t->hdr_off >= t->flushed) { /* header still in the buffer */
		memcpy(t->buf + (t->hdr_off - t->flushed), hdr, sizeof hdr);
	} else if (pwrite_all(t->fd, hdr, sizeof hdr, t->hdr_off) != 0) {
		return hm_error_errno(err, errno, "write", t->path);
	}
done:
	hm_sha256_final_hex(t->sha, hex);
	t->sha = NULL;
	t->in_member = 0;
	if (size)
		*size = t->size;
	if (sha256)
		memcpy(sha256, hex, sizeof hex);
	return 0;
}

int hm_tarout_add(hm_tarout *t, const char *name, const void *data, size_t len,
		  char sha256[HM_SHA256_HEX_LEN + 1], hm_error *err)
{
	if (hm_tarout_begin(t, name, err) != 0 || hm_tarout_write(t, data, len, err) != 0)
		return -1;
	return hm_tarout_end(t, NULL, sha256, err);
}

int hm_tarout_close(hm_tarout *t, uint64_t *total, hm_error *err)
{
	static const unsigned char zero[1024];
	int rc = -1;
	if (t->in_member) {
		hm_error_set(err, HM_EXIT_INTERNAL, "tar member \"%s\" still open", t->name);
		goto cleanup;
	}
	if (t->sink) {
		if (t->sink(t->sink_ctx, zero, sizeof zero, err) != 0)
			goto cleanup;
		t->off += sizeof zero;
		if (total)
			*total = t->off;
		rc = 0;
		goto cleanup;
	}
	if (put(t, zero, sizeof zero, err) != 0 || flush_buf(t, err) != 0)
		goto cleanup;
	if (fsync(t->fd) != 0) {
		hm_error_errno(err, errno, "fsync", t->path);
		goto cleanup;
	}
	if (close(t->fd) != 0) {
		t->fd = -1;
		hm_error_errno(err, errno, "close", t->path);
		goto cleanup;
	}
	t->fd = -1;
	if (total)
		*total = t->off;
	rc = 0;
cleanup:
	hm_tarout_abort(t);
	return rc;
}

void hm_tarout_abort(hm_tarout *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	hm_sha256_free(t->sha);
	t->sha = NULL;
	free(t->buf);
	t->buf = NULL;
}
