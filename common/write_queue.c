/* The write-behind queue (write_queue.h): a ring of HM_WQ_SLOTS slots under one mutex; the
 * caller fills slots at head, the thread writes them at tail. */
#include "write_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct slot {
	int fd; /* write to fd, or when sha is set, hash */
	hm_sha256 *sha;
	size_t len;
	unsigned char *data;
} slot;

struct hm_wqueue {
	pthread_mutex_t mu;
	pthread_cond_t more; /* a slot was filled, or stop */
	pthread_cond_t done; /* a slot was written */
	slot slots[HM_WQ_SLOTS];
	size_t head, count; /* next slot to fill; slots filled and not yet written */
	int error;	    /* errno of the first failed write since the last drain */
	int stop;
	pthread_t thread;
};

/* Write all of len bytes of p to fd; 0 or an errno. */
static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The thread: write filled slots in order until stopped and empty. */
static void *writer_main(void *arg)
{
	hm_wqueue *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->count == 0 && !q->stop)
			pthread_cond_wait(&q->more, &q->mu);
		if (q->count == 0)
			break;
		slot *s = &q->slots[(q->head + HM_WQ_SLOTS - q->count) % HM_WQ_SLOTS];
		int skip = q->error != 0;
		pthread_mutex_unlock(&q->mu);
		int e = 0;
		if (s->sha)
			hm_sha256_update(s->sha, s->data, s->len);
		else if (!skip)
			e = write_all(s->fd, s->data, s->len);
		pthread_mutex_lock(&q->mu);
		if (e && !q->error)
			q->error = e;
		q->count--;
		pthread_cond_broadcast(&q->done);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int hm_wqueue_new(hm_wqueue **out, hm_error *err)
{
	hm_wqueue *q = calloc(1, sizeof *q);
	*out = NULL;
	if (!q)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	for (size_t i = 0; i < HM_WQ_SLOTS; i++)
		if (!(q->slots[i].data = malloc(HM_WQ_SLOT))) {
			for (size_t j = 0; j < i; j++)
				free(q->slots[j].data);
			free(q);
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->more, NULL);
	pthread_cond_init(&q->done, NULL);
	int e = pthread_create(&q->thread, NULL, writer_main, q);
	if (e != 0) {
		pthread_mutex_destroy(&q->mu);
		pthread_cond_destroy(&q->more);
		pthread_cond_destroy(&q->done);
		for (size_t i = 0; i < HM_WQ_SLOTS; i++)
			free(q->slots[i].data);
		free(q);
		return hm_error_errno(err, e, "start a thread", "the restore writer");
	}
	*out = q;
	return 0;
}

/* Queue buf in slot-sized pieces, each for fd or for sha. 0 or the pending errno. */
static int enqueue(hm_wqueue *q, int fd, hm_sha256 *sha, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int e = 0;
	pthread_mutex_lock(&q->mu);
	while (len > 0 && !(e = sha ? 0 : q->error)) {
		while (q->count == HM_WQ_SLOTS)
			pthread_cond_wait(&q->done, &q->mu);
		size_t n = len < HM_WQ_SLOT ? len : HM_WQ_SLOT;
		slot *s = &q->slots[q->head];
		/* the slot at head is free (count < SLOTS) and the thread never touches it: the
		 * copy can run unlocked */
		pthread_mutex_unlock(&q->mu);
		memcpy(s->data, p, n);
		s->fd = fd;
		s->sha = sha;
		s->len = n;
		pthread_mutex_lock(&q->mu);
		q->head = (q->head + 1) % HM_WQ_SLOTS;
		q->count++;
		pthread_cond_signal(&q->more);
		p += n;
		len -= n;
	}
	pthread_mutex_unlock(&q->mu);
	return e;
}

int hm_wqueue_write(hm_wqueue *q, int fd, const void *buf, size_t len)
{
	return enqueue(q, fd, NULL, buf, len);
}

void hm_wqueue_hash(hm_wqueue *q, hm_sha256 *h, const void *buf, size_t len)
{
	(void)enqueue(q, -1, h, buf, len);
}

int hm_wqueue_drain(hm_wqueue *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->count > 0)
		pthread_cond_wait(&q->done, &q->mu);
	int e = q->error;
	q->error = 0;
	pthread_mutex_unlock(&q->mu);
	return e;
}

void hm_wqueue_free(hm_wqueue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->more);
	pthread_cond_destroy(&q->done);
	for (size_t i = 0; i < HM_WQ_SLOTS; i++)
		free(q->slots[i].data);
	free(q);
}
