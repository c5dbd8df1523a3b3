/* A write-behind queue: one background thread writes (or hashes) the buffers handed to
 * it, in order, so the caller (decompressing an archive) and the write system calls or
 * SHA-256 run on two cores at once. Buffers are copied into a few fixed slots (HM_WQ_SLOTS x HM_WQ_SLOT
 * bytes, the only memory it takes); a full queue makes the caller wait. The first failed
 * write is kept and reported by the next call; later writes to that fd are skipped. The
 * caller must drain before it uses or closes an fd it queued writes for. */
#ifndef HM_WRITE_QUEUE_H
#define HM_WRITE_QUEUE_H

#include <stddef.h>

#include "digest.h"
#include "error.h"

#define HM_WQ_SLOTS 4
#define HM_WQ_SLOT (1u << 20)

typedef struct hm_wqueue hm_wqueue;

/* A new queue with its thread running. 0 or -1 (err set). */
int hm_wqueue_new(hm_wqueue **out, hm_error *err);

/* Queue len bytes of buf for fd (copied; waits for a free slot). Returns 0, or the errno of
 * a write that failed since the last drain (nothing more is queued then). */
int hm_wqueue_write(hm_wqueue *q, int fd, const void *buf, size_t len);

/* Queue len bytes of buf to be fed to h (copied; waits for a free slot). h must not be
 * used by the caller before the next drain. */
void hm_wqueue_hash(hm_wqueue *q, hm_sha256 *h, const void *buf, size_t len);

/* Wait until every queued write is done. Returns 0, or the errno of the first write that
 * failed since the last drain (and forgets it). */
int hm_wqueue_drain(hm_wqueue *q);

/* Drain, stop the thread and free (NULL is fine). */
void hm_wqueue_free(hm_wqueue *q);

#endif
