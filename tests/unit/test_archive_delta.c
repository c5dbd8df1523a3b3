/* The pre-copy (common/archive_delta.h): the change decision on crafted stats (including a
 * file rewritten in place, same size, within the tick of its base read), the tree order,
 * the record file, the delta's metadata and whole manifest, and a base + delta + merge round
 * trip on a temp tree whose merged archive extracts to exactly the changed tree. */
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
#include <time.h>
#include <unistd.h>

#include "../../common/archive_delta.h"
#include "../../common/archive_dir.h"
#include "../../common/manifest.h"

#define S 1000000000LL

static hm_pc_stat a_stat(void)
{
	hm_pc_stat s = {.dev = 2049,
			.ino = 1234,
			.size = 8192,
			.mtime_ns = 1000 * S + 5,
			.ctime_ns = 1000 * S + 7,
			.mode = 0100600,
			.uid = 999,
			.gid = 999};
	return s;
}

static void test_rule_unchanged_old_file(void **state)
{
	(void)state;
	hm_pc_stat b = a_stat(), a = b, n = b;
	assert_int_equal(hm_precopy_reusable(&b, &a, &n, 1000 * S + 7 + HM_PRECOPY_MARGIN_NS + 1), 1);
}

static void test_rule_each_field(void **state)
{
	(void)state;
	int64_t t0 = 2000 * S;
	for (int f = 0; f < 8; f++) {
		hm_pc_stat b = a_stat(), n = b;
		switch (f) {
		case 0:
			n.dev++;
			break;
		case 1:
			n.ino++;
			break;
		case 2:
			n.size++;
			break;
		case 3:
			n.mtime_ns++;
			break;
		case 4:
			n.ctime_ns++;
			break;
		case 5:
			n.mode ^= 0040;
			break;
		case 6:
			n.uid++;
			break;
		default:
			n.gid++;
			break;
		}
		assert_int_equal(hm_precopy_reusable(&b, &b, &n, t0), 0); /* changed after the base */
		assert_int_equal(hm_precopy_reusable(&b, &n, &b, t0), 0); /* changed while read */
	}
}

/* (b) of issue 13: a file rewritten in place with the same size in the same timestamp
 * tick as its base read (a 1 s file system: stats before, after and now all agree) is
 * caught by the margin, whatever the tick. */
static void test_rule_same_tick_rewrite(void **state)
{
	(void)state;
	int64_t t0 = 5000 * S + 200000000; /* the pre-copy starts reading at x.2 s */
	hm_pc_stat b = a_stat();
	b.mtime_ns = b.ctime_ns = 5000 * S; /* written at 5000 s (1 s granularity) */
	hm_pc_stat a = b, n = b;	    /* rewritten later in that second: nothing moves */
	assert_int_equal(hm_precopy_reusable(&b, &a, &n, t0), 0);
	b.mtime_ns = b.ctime_ns = n.mtime_ns = n.ctime_ns = a.mtime_ns = a.ctime_ns =
		t0 - HM_PRECOPY_MARGIN_NS;
	assert_int_equal(hm_precopy_reusable(&b, &a, &n, t0), 0); /* exactly at the margin */
	b.ctime_ns = a.ctime_ns = n.ctime_ns = t0 - HM_PRECOPY_MARGIN_NS - 1;
	assert_int_equal(hm_precopy_reusable(&b, &a, &n, t0), 1);
	b.ctime_ns = a.ctime_ns = n.ctime_ns = t0 + S; /* written during the pre-copy */
	assert_int_equal(hm_precopy_reusable(&b, &a, &n, t0), 0);
}

static void test_tree_order(void **state)
{
	(void)state;
	const char *order[] = {".", "a", "a/b", "a/b/c", "a/bc", "a-c", "ab", "b"};
	size_t n = sizeof order / sizeof order[0];
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < n; k++) {
			int c = hm_tree_order_cmp(order[i], order[k]);
			assert_true(i < k ? c < 0 : i > k ? c > 0 : c == 0);
		}
}

static void test_records_roundtrip(void **state)
{
	(void)state;
	hm_pc_records r, d;
	hm_error err = {0};
	hm_pc_stat b = a_stat(), a = b;
	char *text = NULL, sha[65] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	size_t len = 0;
	hm_pc_records_init(&r, 777 * S);
	assert_int_equal(hm_pc_records_add(&r, "base/1/16384", &b, &a, sha, 0, &err), 0);
	a.size++;
	assert_int_equal(hm_pc_records_add(&r, "odd name %\n\x01\xff", &b, &a, sha, 0, &err), 0);
	assert_int_equal(hm_pc_records_add(&r, "torn", &b, &b, sha, 1, &err), 0);
	assert_int_equal(hm_pc_records_encode(&r, &text, &len, &err), 0);
	assert_int_equal(hm_pc_records_decode(text, len, "t", &d, &err), 0);
	assert_int_equal(d.n, 3);
	assert_true(d.t0_ns == 777 * S);
	const hm_pc_record *e = hm_pc_records_find(&d, "odd name %\n\x01\xff");
	assert_non_null(e);
	assert_int_equal(e->torn, 1); /* before != after */
	assert_true(hm_pc_stat_equal(&e->st, &b));
	assert_int_equal(hm_pc_records_find(&d, "base/1/16384")->torn, 0);
	assert_int_equal(hm_pc_records_find(&d, "torn")->torn, 1);
	assert_null(hm_pc_records_find(&d, "nope"));
	hm_pc_records_free(&d);
	text[len - 2] = '\0'; /* a line cut short: the count no longer matches, or the line */
	assert_int_equal(hm_pc_records_decode(text, strlen(text) - 3, "t", &d, &err), -1);
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
	assert_int_equal(hm_pc_records_decode("garbage", 7, "t", &d, &err), -1);
	free(text);
	hm_pc_records_free(&r);
}

static hm_manifest_entry file_entry(const char *path, const char *sha)
{
	hm_manifest_entry e = {
		.path = (char *)path, .type = HM_ENTRY_FILE, .size = 3, .mode = 0600, .mtime = 1};
	snprintf(e.sha256, sizeof e.sha256, "%s", sha);
	return e;
}

static void test_delta_manifest_logic(void **state)
{
	(void)state;
	const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	hm_manifest delta, reused, full, r2;
	hm_error err = {0};
	char *meta = NULL, *snap = NULL;
	hm_manifest_init(&delta);
	hm_manifest_init(&reused);
	hm_manifest_entry top = {.path = ".", .type = HM_ENTRY_DIR, .mode = 0700};
	hm_manifest_entry f1 = file_entry("pgdata/a", sha), f2 = file_entry("pgdata/b", sha);
	hm_manifest_entry dir = {.path = "pgdata", .type = HM_ENTRY_DIR, .mode = 0700};
	assert_int_equal(hm_manifest_add(&delta, &top, &err), 0);
	assert_int_equal(hm_manifest_add(&delta, &dir, &err), 0);
	assert_int_equal(hm_manifest_add(&delta, &f1, &err), 0);
	assert_int_equal(hm_manifest_add(&reused, &f2, &err), 0);
	assert_int_equal(hm_delta_full_manifest(&delta, &reused, &full, &err), 0);
	assert_int_equal(full.count, 4);
	assert_non_null(hm_manifest_find(&full, "pgdata/b"));
	hm_manifest_free(&full);
	/* through the delta's metadata and back */
	assert_int_equal(hm_delta_metadata("{\"backup_id\":\"x\"}", "x.base.tar.zst", &reused, &meta, &err),
			 0);
	assert_int_equal(hm_delta_metadata_parse(meta, "t", &snap, &r2, &err), 0);
	assert_string_equal(snap, "{\"backup_id\":\"x\"}");
	assert_int_equal(r2.count, 1);
	assert_string_equal(hm_manifest_find(&r2, "pgdata/b")->sha256, sha);
	hm_manifest_free(&r2);
	free(snap);
	assert_int_equal(hm_delta_metadata_parse("{\"backup_id\":\"x\"}", "t", &snap, &r2, &err), -1);
	/* an entry in both parts, a reused directory, no top directory: refused */
	assert_int_equal(hm_manifest_add(&reused, &f1, &err), 0);
	assert_int_equal(hm_delta_full_manifest(&delta, &reused, &full, &err), -1);
	assert_int_equal(err.code, HM_EXIT_VERIFY_FAILED);
	hm_manifest_free(&reused);
	hm_manifest_init(&reused);
	assert_int_equal(hm_manifest_add(&reused, &dir, &err), 0);
	assert_int_equal(hm_delta_full_manifest(&delta, &reused, &full, &err), -1);
	hm_manifest_free(&reused);
	hm_manifest_init(&reused);
	hm_manifest_free(&delta);
	hm_manifest_init(&delta);
	assert_int_equal(hm_manifest_add(&delta, &f1, &err), 0);
	assert_int_equal(hm_delta_full_manifest(&delta, &reused, &full, &err), -1);
	hm_manifest_free(&delta);
	free(meta);
}

/* --- base + delta + merge on a temp tree --- */

static char dir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void put(const char *rel, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/src/%s", dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int file_done(void *ctx, const char *rel, const struct stat *before, const struct stat *after,
		     const char *sha256, int torn, hm_error *err)
{
	hm_pc_stat b, a;
	hm_pc_stat_from(&b, before);
	hm_pc_stat_from(&a, after);
	return hm_pc_records_add(ctx, rel, &b, &a, sha256, torn, err);
}

typedef struct dctx {
	hm_pc_records *rec;
	hm_manifest *reused;
} dctx;

static int skip_file(void *ctx, const char *rel, const struct stat *st, hm_error *err)
{
	(void)st, (void)err;
	return hm_manifest_find(((dctx *)ctx)->reused, rel) != NULL;
}

static void test_base_delta_merge(void **state)
{
	(void)state;
	char src[300], base[300], delta[300], out[300], restored[300], p[512], *dmeta = NULL;
	hm_error err = {0};
	hm_archive_stats st;
	hm_pc_records rec;
	hm_manifest reused, bm;
	snprintf(dir, sizeof dir, "/tmp/hm-delta-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(src, sizeof src, "%s/src", dir);
	snprintf(base, sizeof base, "%s/x.base.tar.zst", dir);
	snprintf(delta, sizeof delta, "%s/x.delta.tar.zst", dir);
	snprintf(out, sizeof out, "%s/x.tar.zst", dir);
	snprintf(restored, sizeof restored, "%s/restored", dir);
	assert_int_equal(mkdir(src, 0700), 0);
	snprintf(p, sizeof p, "%s/sub", src);
	assert_int_equal(mkdir(p, 0700), 0);
	put("keep", "kept as it was");
	put("sub/keep2", "also kept");
	put("sub/inplace", "AAAA");
	put("gone", "deleted after the base");
	/* the base, read live; t0 in the future so that the untouched files qualify */
	hm_pc_records_init(&rec, (int64_t)time(NULL) * S + 100 * S);
	hm_archive_hooks bh = {.ctx = &rec, .live = 1, .file_done = file_done};
	hm_archive_opts bo = {.metadata_json = "{\"kind\":\"b\"}", .zstd_threads = 1, .hooks = &bh};
	assert_int_equal(hm_archive_dir_create(src, base, &bo, &st, &err), 0);
	assert_int_equal(rec.n, 4);
	assert_int_equal(hm_archive_verify_manifest(base, NULL, &st, &bm, &err), 0);
	assert_int_equal(hm_pc_records_check(&rec, &bm, &err), 0);
	hm_manifest_free(&bm);
	/* the changes: same size in place, new, deleted */
	put("sub/inplace", "BBBB");
	put("sub/new", "new after the base");
	snprintf(p, sizeof p, "%s/gone", src);
	unlink(p);
	/* the decision */
	hm_manifest_init(&reused);
	for (size_t i = 0; i < rec.n; i++) {
		struct stat s;
		hm_pc_stat now;
		snprintf(p, sizeof p, "%s/%s", src, rec.v[i].path);
		if (lstat(p, &s) != 0)
			continue;
		hm_pc_stat_from(&now, &s);
		if (rec.v[i].torn || !hm_precopy_reusable(&rec.v[i].st, &rec.v[i].st, &now, rec.t0_ns))
			continue;
		hm_manifest_entry e = {.path = rec.v[i].path,
				       .type = HM_ENTRY_FILE,
				       .size = (uint64_t)s.st_size,
				       .mode = s.st_mode & 0777,
				       .uid = s.st_uid,
				       .gid = s.st_gid,
				       .mtime = s.st_mtim.tv_sec};
		snprintf(e.sha256, sizeof e.sha256, "%s", rec.v[i].sha256);
		assert_int_equal(hm_manifest_add(&reused, &e, &err), 0);
	}
	assert_int_equal(hm_manifest_sort(&reused, &err), 0);
	assert_int_equal(reused.count, 2); /* keep, sub/keep2: not the one rewritten in place */
	assert_null(hm_manifest_find(&reused, "sub/inplace"));
	assert_int_equal(hm_delta_metadata("{\"kind\":\"snap\"}", "x.base.tar.zst", &reused, &dmeta, &err),
			 0);
	dctx dc = {&rec, &reused};
	hm_archive_hooks dh = {.ctx = &dc, .skip_file = skip_file};
	hm_archive_opts dopt = {.metadata_json = dmeta, .zstd_threads = 1, .hooks = &dh};
	assert_int_equal(hm_archive_dir_create(src, delta, &dopt, &st, &err), 0);
	assert_int_equal(st.files, 2); /* sub/inplace, sub/new */
	assert_int_equal(hm_archive_verify(delta, NULL, &st, &err), 0);
	/* the merge: one ordinary archive, extracting to the tree as it is now */
	hm_archive_opts mo = {.zstd_threads = 1};
	int mrc = hm_archive_merge(base, delta, out, &mo, &st, &err);
	if (mrc)
		fprintf(stderr, "merge: %s\n", err.message);
	assert_int_equal(mrc, 0);
	assert_int_equal(st.files, 4);
	assert_int_equal(hm_archive_extract(out, restored, NULL, &st, &err), 0);
	char buf[64] = "";
	snprintf(p, sizeof p, "%s/sub/inplace", restored);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, "BBBB");
	snprintf(p, sizeof p, "%s/gone", restored);
	assert_int_not_equal(access(p, F_OK), 0);
	snprintf(p, sizeof p, "%s/keep", restored);
	assert_int_equal(access(p, F_OK), 0);
	/* a damaged base is refused by the merge, which leaves nothing */
	unlink(out);
	int fd = open(base, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 40), 0);
	close(fd);
	assert_int_equal(hm_archive_merge(base, delta, out, &mo, &st, &err), -1);
	assert_int_not_equal(access(out, F_OK), 0);
	free(dmeta);
	hm_manifest_free(&reused);
	hm_pc_records_free(&rec);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_unchanged_old_file), cmocka_unit_test(test_rule_each_field),
		cmocka_unit_test(test_rule_same_tick_rewrite),	cmocka_unit_test(test_tree_order),
		cmocka_unit_test(test_records_roundtrip),	cmocka_unit_test(test_delta_manifest_logic),
		cmocka_unit_test(test_base_delta_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
