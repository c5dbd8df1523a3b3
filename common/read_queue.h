/* A read-ahead queue: one background thread reads a file sequentially into a few fixed
 * slots (HM_RQ_SLOTS x HM_RQ_SLOT bytes) and feeds each slot to SHA-256 before handing it
 * over, so reading and hashing overlap what the caller does with the bytes (compressing
 * them into an archive). The digest is of exactly the bytes handed over, in order. One
 * file at a time: begin, then next/release until a zero length, then end. */
#ifndef HM_READ_QUEUE_H
#define HM_READ_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"

#define HM_RQ_SLOTS 4
#define HM_RQ_SLOT (1u << 20)

typedef struct hm_rqueue hm_rqueue;

/* A new queue with its thread running. 0 or -1 (err set). */
int hm_rqueue_new(hm_rqueue **out, hm_error *err);

/* Start reading fd (from its current offset) until end of file or limit bytes, whichever
 * comes first. 0 or -1 (err set). */
int hm_rqueue_begin(hm_rqueue *q, int fd, uint64_t limit, hm_error *err);

/* The next chunk in order (*len 0 at the end). Returns 0, or the errno of a failed read
 * (the file's reading stops; still call hm_rqueue_end). The chunk stays valid until
 * hm_rqueue_release. */
int hm_rqueue_next(hm_rqueue *q, const unsigned char **data, size_t *len);
void hm_rqueue_release(hm_rqueue *q);

/* Stop reading (waits for the thread to leave the fd) and, when hex is not NULL and the
 * file was read to its end without error, its SHA-256 in hex. The caller closes fd.
 * 0 when hex was written, -1 when not. */
int hm_rqueue_end(hm_rqueue *q, char hex[HM_SHA256_HEX_LEN + 1]);

/* Stop the thread and free (NULL is fine). */
void hm_rqueue_free(hm_rqueue *q);

#endif
