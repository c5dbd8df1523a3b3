/* A single-pass writer for the outer backup archive: an uncompressed POSIX ustar file
 * whose members may be streamed before their size is known. Each member's 512-byte header
 * is reserved when the member begins and written in place (pwrite) when it ends, so the
 * data is written exactly once and memory stays flat (one fixed write buffer). Sizes of
 * 8 GiB and more use the base-256 size encoding that GNU tar, bsdtar and libarchive read.
 * Every member's SHA-256 is computed while it is written. */
#ifndef HM_TAROUT_H
#define HM_TAROUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/digest.h"
#include "../common/error.h"

/* Where a streamed archive goes (stream mode): 0, or -1 with err set. */
typedef int (*hm_tarout_sink)(void *ctx, const void *data, size_t len, hm_error *err);

typedef struct hm_tarout {
	int fd;
	hm_tarout_sink sink; /* stream mode (no fd): members go out in chunks, see below */
	void *sink_ctx;
	size_t chunk; /* stream mode: bytes of member data per tar entry */
	int emitted;  /* stream mode: entries written for the current member */
	char path[4096];
	uint64_t off;	    /* bytes handed to the writer so far (file offset of the next byte) */
	unsigned char *buf; /* write buffer */
	size_t buflen;	    /* bytes pending in buf */
	uint64_t flushed;   /* file offset up to which buf has been written */
	int in_member;
	char name[100];
	uint64_t hdr_off; /* file offset of the current member's header */
	uint64_t size;	  /* bytes of the current member so far */
	hm_sha256 *sha;
	time_t mtime;
} hm_tarout;

/* Create path (must not exist; mode 0600) for writing. 0 or -1. */
int hm_tarout_open(hm_tarout *t, const char *path, hm_error *err);

/* Stream mode, for a destination that cannot seek (an object store): a member of unknown
 * size goes out as consecutive tar entries of the same name, each holding up to chunk
 * bytes (buffered: memory is one chunk), the last one shorter (an empty member is one
 * empty entry). A tar reader sees the same name several times; the member is their
 * concatenation in order (`tar -xOf backup.tar base.tar.zst` gives it whole; verify.c
 * reads it so). Sizes, digests and the end blocks are as in file mode. 0 or -1. */
int hm_tarout_open_stream(hm_tarout *t, hm_tarout_sink sink, void *ctx, size_t chunk, hm_error *err);

/* Start a member named name (< 100 bytes, no '/' at the end). 0 or -1. */
int hm_tarout_begin(hm_tarout *t, const char *name, hm_error *err);

/* Append data to the current member. 0 or -1. */
int hm_tarout_write(hm_tarout *t, const void *data, size_t len, hm_error *err);

/* Finish the current member: pad, write its header in place. Its size and SHA-256 (hex)
 * are returned in *size and sha256 (either may be NULL). 0 or -1. */
int hm_tarout_end(hm_tarout *t, uint64_t *size, char sha256[HM_SHA256_HEX_LEN + 1], hm_error *err);

/* Convenience: a whole member from memory. */
int hm_tarout_add(hm_tarout *t, const char *name, const void *data, size_t len,
		  char sha256[HM_SHA256_HEX_LEN + 1], hm_error *err);

/* Write the end-of-archive marker, fsync and close. *total gets the file size. 0 or -1. */
int hm_tarout_close(hm_tarout *t, uint64_t *total, hm_error *err);

/* Close without finishing (error paths); the caller removes the file. */
void hm_tarout_abort(hm_tarout *t);

/* Fill a 512-byte ustar header for a regular file (exposed for unit tests). 0 or -1 if the
 * name does not fit. */
int hm_tar_header(unsigned char hdr[512], const char *name, uint64_t size, mode_t mode, time_t mtime);

#endif
