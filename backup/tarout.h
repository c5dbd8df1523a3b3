/* A single-pass writer for the outer backup archive: an uncompressed POSIX ustar file
 * whose members may be streamed before their size is known. Each member's 512-byte header
 * is reserved when the member begins and written in place (pwrite) when it ends, so the
 * data is written exactly once and memory stays flat (one fixed write buffer). Sizes of
 * 8 GiB and more use the base-256 size encoding that GNU tar, bsdtar and libarchive read.
 * Every member's SHA-256 is computed while it is written. */
#ifndef HM_TAROUT_H
#define HM_TAROUT_H

#include <stdint.h>
#include <sys/types.h>

#include "../common/digest.h"
#include "../common/error.h"

typedef struct hm_tarout {
	int fd;
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
