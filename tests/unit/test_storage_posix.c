/* backup/storage with the posix driver: the storage contract on a temporary directory.
 * Atomic writes (nothing visible before commit, nothing left after abort), exclusive
 * create, ranges, listing, removal, sweeping partials, the lock, name checks, and refusing
 * to follow a symlink planted inside the repository. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../backup/storage/storage.h"
#include "../../common/fsutil.h"

static char root[64], repo[128];

static hm_storage *open_repo(void)
{
	hm_storage *st;
	hm_error err;
	hm_storage_options o;
	memset(&o, 0, sizeof o);
	o.create = 1;
	if (hm_storage_open(repo, &o, &st, &err) != 0)
		fail_msg("%s", err.message);
	assert_string_equal(hm_storage_driver_name(st), "posix");
	return st;
}

static int reset(void **state)
{
	(void)state;
	hm_error err;
	hm_rmtree(repo, &err);
	return 0;
}

typedef struct names {
	int n;
	char v[16][256];
} names;

static int collect(void *ctx, const hm_storage_info *i, hm_error *err)
{
	(void)err;
	names *s = ctx;
	if (s->n < 16)
		snprintf(s->v[s->n++], 256, "%s%s", i->name, i->is_dir ? "/" : "");
	return 0;
}

static int has(const names *s, const char *n)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], n))
			return 1;
	return 0;
}

static void test_put_get(void **state)
{
	(void)state;
	hm_storage *st = open_repo();
	hm_error err;
	char *data;
	size_t len;
	struct stat sb;
	assert_int_equal(hm_storage_put(st, "b1/backup.json", "{\"a\":1}", 7, 0, &err), 0);
	assert_int_equal(hm_storage_get(st, "b1/backup.json", 100, &data, &len, &err), 0);
	assert_int_equal(len, 7);
	assert_string_equal(data, "{\"a\":1}");
	free(data);
	assert_int_equal(hm_storage_get(st, "b1/backup.json", 3, &data, &len, &err), -1); /* over max */
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
	char path[256];
	snprintf(path, sizeof path, "%s/b1", repo);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof path, "%s/b1/backup.json", repo);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	hm_storage_info info;
	assert_int_equal(hm_storage_stat(st, "b1/backup.json", &info, &err), 0);
	assert_int_equal(info.size, 7);
	assert_int_equal(hm_storage_stat(st, "b1/none", &info, &err), HM_STORAGE_MISSING);
	assert_int_equal(err.code, HM_EXIT_NOT_FOUND);
	assert_int_equal(hm_storage_stat(st, "b1", &info, &err), HM_STORAGE_MISSING); /* a dir is no object */
	hm_storage_reader *r;
	assert_int_equal(hm_storage_open_read(st, "nope/x", 0, HM_STORAGE_TO_END, &r, &err),
			 HM_STORAGE_MISSING);
	/* Overwrite replaces the whole object. */
	assert_int_equal(hm_storage_put(st, "b1/backup.json", "{}", 2, 0, &err), 0);
	assert_int_equal(hm_storage_get(st, "b1/backup.json", 100, &data, &len, &err), 0);
	assert_string_equal(data, "{}");
	free(data);
	hm_storage_close(st);
}

static void test_atomic_write(void **state)
{
	(void)state;
	hm_storage *st = open_repo();
	hm_storage_writer *w;
	hm_error err;
	names s = {0};
	hm_storage_info info;
	assert_int_equal(hm_storage_open_write(st, "b2/data.tar", 0, 0, &w, &err), 0);
	assert_int_equal(hm_storage_write(w, "partial", 7, &err), 0);
	/* Not visible before commit, and not a partial to sweep while its writer lives. */
	assert_int_equal(hm_storage_list(st, "b2", 0, collect, &s, &err), 0);
	assert_int_equal(s.n, 0);
	size_t count = 9;
	assert_int_equal(hm_storage_sweep(st, "", 0, NULL, NULL, &count, &err), 0);
	assert_int_equal(count, 0);
	assert_int_equal(hm_storage_write(w, " and more", 9, &err), 0);
	assert_int_equal(hm_storage_write_commit(w, &info, &err), 0);
	assert_int_equal(info.size, 16);
	assert_int_equal(hm_storage_list(st, "b2", 0, collect, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0], "data.tar");
	/* Abort leaves nothing, not even the temporary file. */
	assert_int_equal(hm_storage_open_write(st, "b2/other", 0, 0, &w, &err), 0);
	assert_int_equal(hm_storage_write(w, "x", 1, &err), 0);
	hm_storage_write_abort(w);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "test $(ls -A %s/b2 | wc -l) = 1", repo);
	assert_int_equal(system(cmd), 0);
	hm_storage_close(st);
}

static void test_exclusive(void **state)
{
	(void)state;
	hm_storage *st = open_repo();
	hm_error err;
	char *data;
	size_t len;
	assert_int_equal(hm_storage_put(st, "meta", "one", 3, HM_STORAGE_EXCLUSIVE, &err), 0);
	assert_int_equal(hm_storage_put(st, "meta", "two", 3, HM_STORAGE_EXCLUSIVE, &err), HM_STORAGE_EXISTS);
	assert_int_equal(hm_storage_get(st, "meta", 10, &data, &len, &err), 0);
	assert_string_equal(data, "one");
	free(data);
	hm_storage_close(st);
}

static void test_ranges(void **state)
{
	(void)state;
	hm_storage *st = open_repo();
	hm_error err;
	hm_storage_reader *r;
	char buf[16];
	size_t got;
	assert_int_equal(hm_storage_put(st, "obj", "0123456789", 10, 0, &err), 0);
	assert_int_equal(hm_storage_open_read(st, "obj", 3, 4, &r, &err), 0);
	assert_int_equal(hm_storage_read_object_size(r), 10);
	assert_int_equal(hm_storage_read(r, buf, sizeof buf, &got, &err), 0);
	assert_int_equal(got, 4);
	assert_memory_equal(buf, "3456", 4);
	assert_int_equal(hm_storage_read(r, buf, sizeof buf, &got, &err), 0);
	assert_int_equal(got, 0);
	hm_storage_read_close(r);
	assert_int_equal(hm_storage_open_read(st, "obj", 8, HM_STORAGE_TO_END, &r, &err), 0);
	assert_int_equal(hm_storage_read(r, buf, sizeof buf, &got, &err), 0);
	assert_int_equal(got, 2);
	hm_storage_read_close(r);
	assert_int_equal(hm_storage_open_read(st, "obj", 10, HM_STORAGE_TO_END, &r, &err),
			 0); /* empty tail */
	assert_int_equal(hm_storage_read(r, buf, sizeof buf, &got, &err), 0);
	assert_int_equal(got, 0);
	hm_storage_read_close(r);
	assert_int_equal(hm_storage_open_read(st, "obj", 11, HM_STORAGE_TO_END, &r, &err), -1);
	assert_int_equal(hm_storage_open_read(st, "obj", 5, 6, &r, &err), -1);
	assert_int_equal(hm_storage_open_read(st, "obj", UINT64_MAX - 1, 5, &r, &err), -1);
	hm_storage_close(st);
}

static void test_list_remove(void **state)
{
	(void)state;
	hm_storage *st = open_repo();
	hm_error err;
	names s = {0};
	assert_int_equal(hm_storage_put(st, "a/1", "x", 1, 0, &err), 0);
	assert_int_equal(hm_storage_put(st, "a/sub/2", "x", 1, 0, &err), 0);
	assert_int_equal(hm_storage_put(st, "b", "x", 1, 0, &err), 0);
	assert_int_equal(hm_storage_list(st, "", 0, collect, &s, &err), 0);
	assert_int_equal(s.n, 2);
	assert_true(has(&s, "a/") && has(&s, "b"));
	memset(&s, 0, sizeof s);
	assert_int_equal(hm_storage_list(st, "", HM_STORAGE_RECURSIVE, collect, &s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_true(has(&s, "a/1") && has(&s, "a/sub/2") && has(&s, "b"));
	memset(&s, 0, sizeof s);
	assert_int_equal(hm_storage_list(st, "a", HM_STORAGE_RECURSIVE, collect, &s, &err), 0);
	assert_true(s.n == 2 && has(&s, "1") && has(&s, "sub/2"));
	memset(&s, 0, sizeof s);
	assert_int_equal(hm_storage_list(st, "missing", 0, collect, &s, &err), 0);
	assert_int_equal(s.n, 0);
	const char *rm[] = {"b", "never-was"};
	assert_int_equal(hm_storage_remove(st, rm, 2, &err), 0);
	assert_int_equal(hm_storage_remove_dir(st, "a", &err), 0);
	assert_int_equal(hm_storage_remove_dir(st, "a", &err), 0); /* gone: fine */
	memset(&s, 0, sizeof s);
	assert_int_equal(hm_storage_list(st, "", HM_STORAGE_RECURSIVE, collect, &s, &err), 0);
	assert_int_equal(s.n, 0);
	hm_storage_close(st);
}

static void partial(void *ctx, const char *name, time_t started)
{
	(void)started;
	snprintf(ctx, 256, "%s", name);
}

static void test_sweep(void **state)
{
	(void)state;
	hm_storage *st = open_repo();
	hm_error err;
	char path[256], seen[256] = "";
	size_t count;
	assert_int_equal(hm_storage_put(st, "id/keep", "x", 1, 0, &err), 0);
	/* What a run killed during a write leaves behind. */
	snprintf(path, sizeof path, "%s/id/.hm-tmp.0123456789abcdef", repo);
	FILE *f = fopen(path, "w");
	fputs("half", f);
	fclose(f);
	names s = {0};
	assert_int_equal(hm_storage_list(st, "id", 0, collect, &s, &err), 0);
	assert_true(s.n == 1 && has(&s, "keep"));
	assert_int_equal(hm_storage_sweep(st, "", 1, partial, seen, &count, &err), 0);
	assert_int_equal(count, 1);
	assert_string_equal(seen, "id/.hm-tmp.0123456789abcdef");
	assert_int_equal(access(path, F_OK), 0); /* dry run */
	assert_int_equal(hm_storage_sweep(st, "id", 0, NULL, NULL, &count, &err), 0);
	assert_int_equal(count, 1);
	assert_int_equal(access(path, F_OK), -1);
	hm_storage_info info;
	assert_int_equal(hm_storage_stat(st, "id/keep", &info, &err), 0);
	hm_storage_close(st);
}

static void test_lock(void **state)
{
	(void)state;
	hm_storage *a = open_repo(), *b = open_repo();
	hm_storage_lock *l, *l2;
	hm_error err;
	assert_int_equal(hm_storage_lock_acquire(a, ".lock", "backup test", &l, &err), 0);
	assert_int_equal(hm_storage_lock_check(l, &err), 0);
	assert_int_equal(hm_storage_lock_acquire(b, ".lock", "second", &l2, &err), -1);
	assert_int_equal(err.code, HM_EXIT_LOCKED);
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	assert_non_null(strstr(err.message, pid));
	assert_non_null(strstr(err.message, "backup test"));
	hm_storage_lock_release(l);
	assert_int_equal(hm_storage_lock_acquire(b, ".lock", "second", &l2, &err), 0);
	hm_storage_lock_release(l2);
	hm_storage_close(a);
	hm_storage_close(b);
}

static void test_names(void **state)
{
	(void)state;
	hm_storage *st = open_repo();
	hm_error err;
	static const char *bad[] = {"",	  "/abs",	 "a/../b", "..",   ".",	   "a//b",
				    "a/", "x/.hm-tmp.1", "a\\b",   "a\nb", "a/./b"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (hm_storage_put(st, bad[i], "x", 1, 0, &err) == 0)
			fail_msg("accepted name \"%s\"", bad[i]);
		assert_int_equal(err.code, HM_EXIT_INPUT);
	}
	char longname[HM_STORAGE_NAME_MAX + 2];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(hm_storage_name_check(longname, &err), -1);
	assert_int_equal(hm_storage_name_check("20261127T001500.123Z-1a2b3c4d/backup.json", &err), 0);
	assert_int_equal(hm_storage_name_check(".lock", &err), 0);
	hm_storage_close(st);
}

static void test_symlinks_refused(void **state)
{
	(void)state;
	hm_storage *st = open_repo();
	hm_error err;
	char link[256], target[256], path[300];
	snprintf(target, sizeof target, "%s/outside", root);
	mkdir(target, 0700);
	snprintf(link, sizeof link, "%s/planted", repo);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(hm_storage_put(st, "planted/x", "x", 1, 0, &err), -1);
	assert_non_null(strstr(err.message, "symlink"));
	snprintf(path, sizeof path, "%s/x", target);
	assert_int_equal(access(path, F_OK), -1); /* nothing written outside */
	snprintf(link, sizeof link, "%s/file-link", repo);
	snprintf(path, sizeof path, "/etc/hostname");
	assert_int_equal(symlink(path, link), 0);
	hm_storage_reader *r;
	assert_int_equal(hm_storage_open_read(st, "file-link", 0, HM_STORAGE_TO_END, &r, &err), -1);
	names s = {0};
	assert_int_equal(hm_storage_list(st, "", HM_STORAGE_RECURSIVE, collect, &s, &err), 0);
	assert_int_equal(s.n, 0); /* symlinks are not objects */
	hm_storage_close(st);
}

static void test_open_errors(void **state)
{
	(void)state;
	hm_storage *st;
	hm_error err;
	assert_int_equal(hm_storage_open("/nonexistent/repo", NULL, &st, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_int_equal(hm_storage_open("gs://bucket", NULL, &st, &err), -1);
	assert_int_equal(err.code, HM_EXIT_USAGE);
	assert_true(hm_storage_is_url("s3://b/p"));
	assert_false(hm_storage_is_url("/srv/s3:/x"));
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof root, "/tmp/hm-test-storage-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	snprintf(repo, sizeof repo, "%s/repo", root);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hm_error err;
	return hm_rmtree(root, &err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_put_get, reset),
		cmocka_unit_test_setup(test_atomic_write, reset),
		cmocka_unit_test_setup(test_exclusive, reset),
		cmocka_unit_test_setup(test_ranges, reset),
		cmocka_unit_test_setup(test_list_remove, reset),
		cmocka_unit_test_setup(test_sweep, reset),
		cmocka_unit_test_setup(test_lock, reset),
		cmocka_unit_test_setup(test_names, reset),
		cmocka_unit_test_setup(test_symlinks_refused, reset),
		cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
