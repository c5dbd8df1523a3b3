/* The read-ahead queue (common/read_queue.c): chunks arrive in order and complete, the
 * digest is that of the bytes handed over, the limit stops reading, a bad fd is an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/digest.h"
#include "../../common/read_queue.h"

/* Read fd through q (limit bytes at most) into got; the byte count, or -errno. */
static long drain(hm_rqueue *q, int fd, uint64_t limit, unsigned char *got, char hex[65], int *end)
{
	hm_error err = {0};
	long total = 0;
	assert_int_equal(hm_rqueue_begin(q, fd, limit, &err), 0);
	for (;;) {
		const unsigned char *d;
		size_t n;
		int e = hm_rqueue_next(q, &d, &n);
		if (e) {
			*end = hm_rqueue_end(q, hex);
			return -e;
		}
		if (!n)
			break;
		memcpy(got + total, d, n);
		total += (long)n;
		hm_rqueue_release(q);
	}
	*end = hm_rqueue_end(q, hex);
	return total;
}

static void test_read_in_order(void **state)
{
	(void)state;
	hm_error err = {0};
	hm_rqueue *q;
	size_t n = 5 * HM_RQ_SLOT + 4321;
	unsigned char *src = malloc(n), *got = malloc(n + HM_RQ_SLOT);
	char hex[65], want[65];
	int end;
	FILE *f = tmpfile();
	assert_non_null(src);
	assert_non_null(got);
	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 13 + i / 997);
	assert_int_equal(fwrite(src, 1, n, f), n);
	fflush(f);
	assert_int_equal(hm_sha256_fd(fileno(f), "f", want, &err), 0);
	assert_int_equal(hm_rqueue_new(&q, &err), 0);
	for (int round = 0; round < 2; round++) { /* the queue is reused file after file */
		assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
		assert_int_equal(drain(q, fileno(f), (uint64_t)n + 1, got, hex, &end), (long)n);
		assert_int_equal(end, 0);
		assert_memory_equal(got, src, n);
		assert_string_equal(hex, want);
	}
	/* a limit below the size: only that much, and no digest claimed for the whole */
	assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
	assert_int_equal(drain(q, fileno(f), HM_RQ_SLOT + 10, got, hex, &end), HM_RQ_SLOT + 10);
	assert_memory_equal(got, src, HM_RQ_SLOT + 10);
	/* stopping early, before the end, is fine */
	assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
	assert_int_equal(hm_rqueue_begin(q, fileno(f), (uint64_t)n + 1, &err), 0);
	assert_int_equal(hm_rqueue_end(q, hex), -1);
	/* a bad fd */
	assert_int_equal(drain(q, 999, 100, got, hex, &end), -EBADF);
	assert_int_equal(end, -1);
	hm_rqueue_free(q);
	hm_rqueue_free(NULL);
	fclose(f);
	free(src);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
