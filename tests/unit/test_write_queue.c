/* The write-behind queue (common/write_queue.c): bytes land in order across slot
 * boundaries and fds, a failed write is reported once and stops later writes. */
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

#include "../../common/write_queue.h"

/* Everything read back from fd (rewound), into buf (at most cap); its length. */
static size_t read_back(FILE *f, unsigned char *buf, size_t cap)
{
	rewind(f);
	return fread(buf, 1, cap, f);
}

/* Two files fed alternately, with writes larger than a slot: each gets its bytes in order. */
static void test_order(void **state)
{
	(void)state;
	hm_error err = {0};
	hm_wqueue *q;
	size_t n = 3 * HM_WQ_SLOT + 12345;
	unsigned char *src = malloc(n), *got = malloc(n + 1);
	FILE *a = tmpfile(), *b = tmpfile();
	assert_non_null(src);
	assert_non_null(got);
	assert_non_null(a);
	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 7 + i / 251);
	assert_int_equal(hm_wqueue_new(&q, &err), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(hm_wqueue_write(q, fileno(a), src, n), 0);
		assert_int_equal(hm_wqueue_write(q, fileno(b), src, 100), 0);
		assert_int_equal(hm_wqueue_write(q, fileno(b), src + 100, n - 100), 0);
		assert_int_equal(hm_wqueue_drain(q), 0);
		assert_int_equal(read_back(a, got, n + 1), n);
		assert_memory_equal(got, src, n);
		assert_int_equal(read_back(b, got, n + 1), n);
		assert_memory_equal(got, src, n);
		assert_int_equal(ftruncate(fileno(a), 0), 0);
		assert_int_equal(ftruncate(fileno(b), 0), 0);
		assert_int_equal(lseek(fileno(a), 0, SEEK_SET), 0);
		assert_int_equal(lseek(fileno(b), 0, SEEK_SET), 0);
	}
	hm_wqueue_free(q);
	fclose(a);
	fclose(b);
	free(src);
	free(got);
}

/* A write to a bad fd: its errno from drain (or an early write), then the queue works again. */
static void test_error(void **state)
{
	(void)state;
	hm_error err = {0};
	hm_wqueue *q;
	static unsigned char buf[4096];
	FILE *a = tmpfile();
	assert_non_null(a);
	assert_int_equal(hm_wqueue_new(&q, &err), 0);
	int e = 0;
	for (int i = 0; i < 50 && !e; i++)
		e = hm_wqueue_write(q, 999, buf, sizeof buf);
	int d = hm_wqueue_drain(q);
	assert_int_equal(e ? e : d, EBADF);
	assert_int_equal(hm_wqueue_drain(q), 0);
	assert_int_equal(hm_wqueue_write(q, fileno(a), "ok", 2), 0);
	assert_int_equal(hm_wqueue_drain(q), 0);
	unsigned char got[8];
	assert_int_equal(read_back(a, got, sizeof got), 2);
	hm_wqueue_free(q);
	hm_wqueue_free(NULL);
	fclose(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
