/* The read-ahead queue (read_queue.h): a ring of HM_RQ_SLOTS slots under one mutex; the
 * thread fills slots at head, the caller takes them at tail. */
#include "read_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hm_rqueue {
	pthread_mutex_t mu;
	pthread_cond_t work; /* a file began, a slot was released, or stop */
	pthread_cond_t data; /* a slot was filled, or the file ended */
	unsigned char *slots[HM_RQ_SLOTS];
	size_t lens[HM_RQ_SLOTS];
	size_t head, count; /* next slot to fill; filled slots not yet released */
	int taken;	    /* the caller holds the slot at tail */
	int fd;		    /* the file being read, -1 none */
	uint64_t left;	    /* bytes still to read (limit) */
	int eof, error;	    /* the file ended (after the filled slots); errno of a failed read */
	int reading;	    /* the thread is inside read() or hashing, unlocked */
	int cancel, stop;
	hm_sha256 *sha;
	pthread_t thread;
};

/* Fill one slot from q->fd (called unlocked with the slot owned by the thread): its length,
 * 0 at the end, -errno on error. */
static ssize_t fill(int fd, unsigned char *buf, size_t want)
{
	size_t got = 0;
	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* The thread: while a file is open and a slot is free, read and hash into it. */
static void *reader_main(void *arg)
{
	hm_rqueue *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->stop && (q->fd < 0 || q->eof || q->error || q->cancel || q->count == HM_RQ_SLOTS))
			pthread_cond_wait(&q->work, &q->mu);
		if (q->stop)
			break;
		size_t i = q->head;
		int fd = q->fd;
		size_t want = q->left < HM_RQ_SLOT ? (size_t)q->left : HM_RQ_SLOT;
		q->reading = 1;
		pthread_mutex_unlock(&q->mu);
		ssize_t n = want ? fill(fd, q->slots[i], want) : 0;
		if (n > 0)
			hm_sha256_update(q->sha, q->slots[i], (size_t)n);
		pthread_mutex_lock(&q->mu);
		q->reading = 0;
		if (n < 0)
			q->error = (int)-n;
		else if (n == 0)
			q->eof = 1;
		else {
			q->lens[i] = (size_t)n;
			q->head = (q->head + 1) % HM_RQ_SLOTS;
			q->count++;
			q->left -= (uint64_t)n;
			if ((size_t)n < want)
				q->eof = 1; /* a short read ends the file (fill reads until EOF) */
		}
		pthread_cond_broadcast(&q->data);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int hm_rqueue_new(hm_rqueue **out, hm_error *err)
{
	hm_rqueue *q = calloc(1, sizeof *q);
	*out = NULL;
	if (!q)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	q->fd = -1;
	for (size_t i = 0; i < HM_RQ_SLOTS; i++)
		if (!(q->slots[i] = malloc(HM_RQ_SLOT))) {
			for (size_t j = 0; j < i; j++)
				free(q->slots[j]);
			free(q);
			return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->data, NULL);
	int e = pthread_create(&q->thread, NULL, reader_main, q);
	if (e != 0) {
		pthread_mutex_destroy(&q->mu);
		pthread_cond_destroy(&q->work);
		pthread_cond_destroy(&q->data);
		for (size_t i = 0; i < HM_RQ_SLOTS; i++)
			free(q->slots[i]);
		free(q);
		return hm_error_errno(err, e, "start a thread", "the archive reader");
	}
	*out = q;
	return 0;
}

int hm_rqueue_begin(hm_rqueue *q, int fd, uint64_t limit, hm_error *err)
{
	hm_sha256 *sha = hm_sha256_new();
	if (!sha)
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
	pthread_mutex_lock(&q->mu);
	q->sha = sha;
	q->fd = fd;
	q->left = limit;
	q->head = q->count = 0;
	q->taken = q->eof = q->error = q->cancel = 0;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int hm_rqueue_next(hm_rqueue *q, const unsigned char **data, size_t *len)
{
	int e = 0;
	pthread_mutex_lock(&q->mu);
	while (q->count == 0 && !q->eof && !q->error)
		pthread_cond_wait(&q->data, &q->mu);
	*data = NULL;
	*len = 0;
	if (q->count > 0) {
		size_t tail = (q->head + HM_RQ_SLOTS - q->count) % HM_RQ_SLOTS;
		*data = q->slots[tail];
		*len = q->lens[tail];
		q->taken = 1;
	} else if (q->error) {
		e = q->error;
	}
	pthread_mutex_unlock(&q->mu);
	return e;
}

void hm_rqueue_release(hm_rqueue *q)
{
	pthread_mutex_lock(&q->mu);
	if (q->taken) {
		q->taken = 0;
		q->count--;
		pthread_cond_signal(&q->work);
	}
	pthread_mutex_unlock(&q->mu);
}

int hm_rqueue_end(hm_rqueue *q, char hex[HM_SHA256_HEX_LEN + 1])
{
	pthread_mutex_lock(&q->mu);
	q->cancel = 1;
	while (q->reading)
		pthread_cond_wait(&q->data, &q->mu);
	int complete = q->eof && !q->error && q->count == 0;
	hm_sha256 *sha = q->sha;
	q->sha = NULL;
	q->fd = -1;
	q->count = 0;
	q->taken = 0;
	pthread_mutex_unlock(&q->mu);
	if (hex && complete && sha) {
		hm_sha256_final_hex(sha, hex); /* frees it */
		return 0;
	}
	hm_sha256_free(sha);
	return -1;
}

void hm_rqueue_free(hm_rqueue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	hm_sha256_free(q->sha);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->data);
	for (size_t i = 0; i < HM_RQ_SLOTS; i++)
		free(q->slots[i]);
	free(q);
}
