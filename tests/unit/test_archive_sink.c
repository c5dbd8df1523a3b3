/* hm_archive_dir_create_sink (common/archive_dir): the streamed form of the directory
 * archive gives an archive that verifies like the file form (same manifest), in blocks of
 * at most 64 KiB, and a sink that refuses bytes stops it with the sink's own error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/archive_dir.h"

#define META "{\"backup_id\":\"test\",\"kind\":\"unit\"}"

static char base[256];

/* nftw callback: remove one entry (depth first). */
static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

/* A fresh temp directory for each test. */
static int setup(void **state)
{
	(void)state;
	snprintf(base, sizeof base, "/tmp/hm-test-archive-sink-XXXXXX");
	assert_non_null(mkdtemp(base));
	return 0;
}

/* Remove the test's temp directory. */
static int teardown(void **state)
{
	(void)state;
	nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* Write len bytes of a pattern (incompressible enough to span many blocks) to path. */
static void write_pattern(const char *path, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	unsigned char *buf = malloc(len ? len : 1);
	assert_non_null(buf);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	free(buf);
	close(fd);
}

/* src: a directory, a 3 MiB file, an empty file and a symlink. */
static void make_tree(const char *src)
{
	char p[600];
	assert_int_equal(mkdir(src, 0700), 0);
	snprintf(p, sizeof p, "%s/base", src);
	assert_int_equal(mkdir(p, 0750), 0);
	snprintf(p, sizeof p, "%s/base/big", src);
	write_pattern(p, 3u << 20, 0600);
	snprintf(p, sizeof p, "%s/empty", src);
	write_pattern(p, 0, 0640);
	snprintf(p, sizeof p, "%s/link", src);
	assert_int_equal(symlink("base/big", p), 0);
}

/* A sink into a file that records the block sizes, and can refuse after fail_after bytes. */
typedef struct file_sink {
	int fd;
	uint64_t bytes;
	size_t calls, max_len, calls_after_fail;
	uint64_t fail_after; /* 0: never */
	int failed;
} file_sink;

/* The sink: append to the file, or refuse once fail_after bytes went through. */
static int to_file(void *ctx, const void *data, size_t len, hm_error *err)
{
	file_sink *s = ctx;
	if (s->failed) {
		s->calls_after_fail++;
		return hm_error_set(err, HM_EXIT_STORAGE, "boom again");
	}
	if (s->fail_after && s->bytes + len > s->fail_after) {
		s->failed = 1;
		return hm_error_set(err, HM_EXIT_STORAGE, "object store said boom");
	}
	s->calls++;
	if (len > s->max_len)
		s->max_len = len;
	assert_int_equal(write(s->fd, data, len), (ssize_t)len);
	s->bytes += len;
	return 0;
}

/* The streamed archive verifies, has the file form's manifest and stats, and went out in
 * blocks of at most 64 KiB. */
static void test_sink_matches_file_form(void **state)
{
	(void)state;
	char src[300], file_arc[300], sink_arc[300];
	hm_archive_stats fst, sst, vst;
	hm_error err = {0};
	snprintf(src, sizeof src, "%s/src", base);
	snprintf(file_arc, sizeof file_arc, "%s/file.tar.zst", base);
	snprintf(sink_arc, sizeof sink_arc, "%s/sink.tar.zst", base);
	make_tree(src);
	hm_archive_opts o = {.metadata_json = META, .zstd_level = 1};
	assert_int_equal(hm_archive_dir_create(src, file_arc, &o, &fst, &err), 0);

	file_sink s = {.fd = open(sink_arc, O_WRONLY | O_CREAT | O_EXCL, 0600)};
	assert_true(s.fd >= 0);
	assert_int_equal(hm_archive_dir_create_sink(src, to_file, &s, "the test sink", &o, &sst, &err), 0);
	close(s.fd);
	assert_true(s.calls > 1);
	assert_true(s.max_len <= (64u << 10));
	assert_int_equal(sst.archive_bytes, s.bytes);
	assert_int_equal(sst.entries, fst.entries);
	assert_int_equal(sst.files, fst.files);
	assert_int_equal(sst.bytes, fst.bytes);
	assert_string_equal(sst.manifest_sha256, fst.manifest_sha256);

	memset(&vst, 0, sizeof vst);
	assert_int_equal(hm_archive_verify(sink_arc, NULL, &vst, &err), 0);
	assert_int_equal(vst.files, fst.files);
	assert_int_equal(vst.bytes, 3u << 20);
	assert_string_equal(vst.manifest_sha256, fst.manifest_sha256);
	/* and it extracts to the same tree as the file form does */
	char out[300], big[400];
	struct stat st;
	snprintf(out, sizeof out, "%s/out", base);
	assert_int_equal(hm_archive_extract(sink_arc, out, NULL, NULL, &err), 0);
	snprintf(big, sizeof big, "%s/base/big", out);
	assert_int_equal(stat(big, &st), 0);
	assert_int_equal(st.st_size, 3u << 20);
}

/* A sink that refuses bytes: the archive fails with the sink's code and message, and the
 * sink is not called again (nothing more of a failed archive goes out). */
static void test_sink_error_is_carried_up(void **state)
{
	(void)state;
	char src[300], arc[300];
	hm_error err = {0};
	snprintf(src, sizeof src, "%s/src", base);
	snprintf(arc, sizeof arc, "%s/part.tar.zst", base);
	make_tree(src);
	hm_archive_opts o = {.metadata_json = META, .zstd_level = 1, .zstd_threads = 1};
	file_sink s = {.fd = open(arc, O_WRONLY | O_CREAT | O_EXCL, 0600), .fail_after = 200u << 10};
	assert_true(s.fd >= 0);
	assert_int_equal(hm_archive_dir_create_sink(src, to_file, &s, "s3://b/p/x", &o, NULL, &err), -1);
	close(s.fd);
	print_message("sink failure: %s\n", err.message);
	assert_int_equal(err.code, HM_EXIT_STORAGE);
	assert_non_null(strstr(err.message, "object store said boom"));
	assert_non_null(strstr(err.message, "s3://b/p/x"));
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.calls_after_fail, 0);
	assert_true(s.bytes <= (200u << 10));
}

/* A missing source or no metadata: refused before the sink sees a byte. */
static void test_refused_before_any_byte(void **state)
{
	(void)state;
	char src[300];
	hm_error err = {0};
	file_sink s = {.fd = -1};
	snprintf(src, sizeof src, "%s/missing", base);
	hm_archive_opts o = {.metadata_json = META};
	assert_int_equal(hm_archive_dir_create_sink(src, to_file, &s, "sink", &o, NULL, &err), -1);
	assert_int_equal(s.calls, 0);
	snprintf(src, sizeof src, "%s", base);
	hm_archive_opts none = {0};
	assert_int_equal(hm_archive_dir_create_sink(src, to_file, &s, "sink", &none, NULL, &err), -1);
	assert_non_null(strstr(err.message, "metadata missing"));
	assert_int_equal(s.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sink_matches_file_form, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_error_is_carried_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_before_any_byte, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
