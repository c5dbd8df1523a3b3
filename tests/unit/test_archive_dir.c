/* Round trip of common/archive_dir on a temp tree (long paths, symlinks, empty files,
 * modes, owners) and a table of corruptions that verification must catch, naming the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <locale.h>
#include <sys/sysmacros.h>

#include "../../common/archive_dir.h"
#include "../../common/digest.h"
#include "../../common/manifest.h"

#define META "{\"backup_id\":\"test\",\"kind\":\"unit\"}"

static char base[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_tree(const char *p)
{
	nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
	chmod(path, mode);
}

/* A tree with everything the format must keep. */
static void make_tree(const char *src)
{
	char p[2048], longdir[1024];
	assert_int_equal(mkdir(src, 0750), 0);
	snprintf(p, sizeof p, "%s/pgdata", src);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/pgdata/PG_VERSION", src);
	write_text(p, "17\n", 0600);
	snprintf(p, sizeof p, "%s/pgdata/empty", src);
	write_text(p, "", 0640);
	snprintf(p, sizeof p, "%s/pgdata/exec.sh", src);
	write_text(p, "#!/bin/sh\n", 0755);
	/* > 100 chars, then > 255 chars of path */
	snprintf(longdir, sizeof longdir, "%s/pgdata/%s", src,
		 "a_directory_name_that_is_quite_long_to_push_the_path_beyond_one_hundred_characters_"
		 "xxxxxxxxxxxxxxxxxxx");
	assert_int_equal(mkdir(longdir, 0755), 0);
	snprintf(p, sizeof p, "%s/%s", longdir,
		 "another_very_long_file_name_so_that_the_whole_relative_path_passes_two_hundred_and_fifty_"
		 "five_characters_"
		 "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
	write_text(p, "long path content\n", 0644);
	snprintf(p, sizeof p, "%s/pgdata/link", src);
	assert_int_equal(symlink("PG_VERSION", p), 0);
	snprintf(p, sizeof p, "%s/pgdata/dangling", src);
	assert_int_equal(symlink("/nonexistent/target/of/a/symlink", p), 0);
	/* a bigger file spanning several read buffers */
	snprintf(p, sizeof p, "%s/pgdata/big", src);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	char *buf = malloc(1 << 20);
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < (1 << 20); j++)
			buf[j] = (char)((j * 31 + i) ^ (j >> 7));
		assert_int_equal(write(fd, buf, 1 << 20), 1 << 20);
	}
	free(buf);
	close(fd);
	if (geteuid() == 0) {
		snprintf(p, sizeof p, "%s/pgdata/PG_VERSION", src);
		assert_int_equal(lchown(p, 999, 998), 0);
		snprintf(p, sizeof p, "%s/pgdata/link", src);
		assert_int_equal(lchown(p, 999, 999), 0);
		snprintf(p, sizeof p, "%s/pgdata", src);
		assert_int_equal(chown(p, 999, 999), 0);
	}
}

static int setup(void **state)
{
	(void)state;
	snprintf(base, sizeof base, "/tmp/hm-test-archive-XXXXXX");
	assert_non_null(mkdtemp(base));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_tree(base);
	return 0;
}

/* Compare two trees by re-archiving: the manifests must be equal apart from nothing. */
static void compare_trees(const char *a, const char *b)
{
	char cmd[1024];
	/* stat of every entry: path, type, mode, owner, size, mtime, symlink target; plus content digests */
	snprintf(
		cmd, sizeof cmd,
		"cd '%s' && find . -exec stat -c '%%n %%F %%a %%u %%g %%s %%Y %%N' {} + | sort > ../a.lst && "
		"find . -type f -exec sha256sum {} + | sort > ../a.sum && "
		"cd '%s' && find . -exec stat -c '%%n %%F %%a %%u %%g %%s %%Y %%N' {} + | sort > ../b.lst && "
		"find . -type f -exec sha256sum {} + | sort > ../b.sum && "
		"cd .. && cmp a.lst b.lst && cmp a.sum b.sum",
		a, b);
	assert_int_equal(system(cmd), 0);
}

static void test_round_trip(void **state)
{
	(void)state;
	char src[512], arc[512], dst[512];
	hm_error err = {0};
	hm_archive_stats st;
	hm_archive_opts o = {.metadata_json = META};
	snprintf(src, sizeof src, "%s/src", base);
	snprintf(arc, sizeof arc, "%s/snap.tar.zst", base);
	snprintf(dst, sizeof dst, "%s/dst", base);
	make_tree(src);
	assert_int_equal(hm_archive_dir_create(src, arc, &o, &st, &err), 0);
	assert_true(st.files >= 5);
	assert_true(st.bytes >= 3u << 20);
	struct stat s;
	assert_int_equal(stat(arc, &s), 0);
	assert_int_equal(s.st_mode & 0777, 0600);
	/* a second create onto the same path is refused */
	assert_int_not_equal(hm_archive_dir_create(src, arc, &o, NULL, &err), 0);
	assert_int_equal(hm_archive_verify(arc, NULL, &st, &err), 0);
	char *meta = NULL;
	assert_int_equal(hm_archive_read_metadata(arc, &meta, &err), 0);
	assert_string_equal(meta, META);
	free(meta);
	assert_int_equal(hm_archive_extract(arc, dst, NULL, &st, &err), 0);
	compare_trees(src, dst);
	/* extracting onto an existing directory is refused */
	assert_int_not_equal(hm_archive_extract(arc, dst, NULL, NULL, &err), 0);
	assert_int_equal(err.code, HM_EXIT_INPUT);
}

/* ---- corruption table: rewrite the archive member by member with one change ---- */

typedef enum { C_DROP, C_EXTRA, C_FLIP, C_MANIFEST, C_TRUNCATE, C_TRUNC_MID } corruption;

typedef struct corrupt_case {
	const char *name;
	corruption kind;
	const char *target; /* member whose change is expected in the message */
	const char *expect; /* substring of the error message */
} corrupt_case;

/* Copy archive in -> out applying the corruption to member "target". */
static void rewrite(const char *in, const char *out, const corrupt_case *c)
{
	struct archive *r = archive_read_new(), *w = archive_write_new();
	struct archive_entry *e;
	archive_read_support_filter_all(r);
	archive_read_support_format_tar(r);
	assert_int_equal(archive_read_open_filename(r, in, 65536), ARCHIVE_OK);
	archive_write_set_format_pax_restricted(w);
	archive_write_add_filter_zstd(w);
	assert_int_equal(archive_write_open_filename(w, out), ARCHIVE_OK);
	while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		int hit = c->target && !strcmp(name, c->target);
		size_t sz = (size_t)archive_entry_size(e);
		char *data = malloc(sz + 1);
		assert_int_equal(archive_read_data(r, data, sz), (la_ssize_t)sz);
		if (hit && c->kind == C_DROP) {
			free(data);
			continue;
		}
		if (hit && c->kind == C_FLIP && sz)
			data[sz / 2] ^= 0x01;
		if (hit && c->kind == C_MANIFEST) {
			free(data);
			data = strdup("{\"format\":\"hive-migrate-archive/1\",\"files\":[{\"path\":1}]}");
			sz = strlen(data);
			archive_entry_set_size(e, (la_int64_t)sz);
		}
		if (!strcmp(name, "hive-migrate/manifest.json") && c->kind == C_EXTRA) {
			struct archive_entry *x = archive_entry_new();
			archive_entry_set_pathname(x, "data/pgdata/intruder");
			archive_entry_set_filetype(x, AE_IFREG);
			archive_entry_set_perm(x, 0600);
			archive_entry_set_size(x, 3);
			archive_write_header(w, x);
			archive_write_data(w, "bad", 3);
			archive_entry_free(x);
		}
		assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
		if (sz)
			assert_int_equal(archive_write_data(w, data, sz), (la_ssize_t)sz);
		free(data);
	}
	archive_read_free(r);
	archive_write_free(w);
	if (c->kind == C_TRUNCATE || c->kind == C_TRUNC_MID) {
		struct stat s;
		assert_int_equal(stat(out, &s), 0);
		assert_int_equal(truncate(out, c->kind == C_TRUNCATE ? s.st_size - 200 : s.st_size / 2), 0);
	}
}

static void test_corruptions(void **state)
{
	(void)state;
	static const corrupt_case cases[] = {
		{"missing file", C_DROP, "data/pgdata/PG_VERSION", "pgdata/PG_VERSION"},
		{"extra file", C_EXTRA, NULL, "pgdata/intruder"},
		{"flipped byte", C_FLIP, "data/pgdata/big", "pgdata/big"},
		{"flipped byte in empty-adjacent file", C_FLIP, "data/pgdata/exec.sh", "pgdata/exec.sh"},
		{"bad manifest", C_MANIFEST, "hive-migrate/manifest.json", "manifest"},
		{"missing manifest", C_DROP, "hive-migrate/manifest.json", "no manifest"},
		{"metadata changed", C_FLIP, "hive-migrate/metadata.json", "metadata"},
		{"truncated at the end", C_TRUNCATE, NULL, ""},
		{"truncated in the middle", C_TRUNC_MID, NULL, ""},
	};
	char src[512], arc[512], bad[512], dst[512];
	hm_error err = {0};
	hm_archive_opts o = {.metadata_json = META};
	snprintf(src, sizeof src, "%s/src", base);
	snprintf(arc, sizeof arc, "%s/good.tar.zst", base);
	make_tree(src);
	assert_int_equal(hm_archive_dir_create(src, arc, &o, NULL, &err), 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const corrupt_case *c = &cases[i];
		snprintf(bad, sizeof bad, "%s/bad%zu.tar.zst", base, i);
		snprintf(dst, sizeof dst, "%s/dst%zu", base, i);
		rewrite(arc, bad, c);
		memset(&err, 0, sizeof err);
		int rc = hm_archive_verify(bad, NULL, NULL, &err);
		print_message("case %s: %s\n", c->name, err.message);
		assert_int_not_equal(rc, 0);
		assert_int_equal(err.code, HM_EXIT_VERIFY_FAILED);
		assert_non_null(strstr(err.message, c->expect));
		/* extraction refuses and leaves nothing behind */
		assert_int_not_equal(hm_archive_extract(bad, dst, NULL, NULL, &err), 0);
		assert_int_equal(access(dst, F_OK), -1);
	}
}

static void test_special_file_refused(void **state)
{
	(void)state;
	char src[512], p[600], arc[512];
	hm_error err = {0};
	hm_archive_opts o = {.metadata_json = META};
	snprintf(src, sizeof src, "%s/fifo", base);
	snprintf(arc, sizeof arc, "%s/fifo.tar.zst", base);
	assert_int_equal(mkdir(src, 0700), 0);
	snprintf(p, sizeof p, "%s/pipe", src);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_not_equal(hm_archive_dir_create(src, arc, &o, NULL, &err), 0);
	assert_non_null(strstr(err.message, "special file"));
	/* no partial or final archive is left */
	assert_int_equal(access(arc, F_OK), -1);
	snprintf(p, sizeof p, "%s.partial", arc);
	assert_int_equal(access(p, F_OK), -1);
}

/* Set-id bits are not archived: restore never creates them (issue #8, finding 2). */
static void test_setid_not_archived(void **state)
{
	(void)state;
	char src[512], arc[512], dst[512], p[700];
	hm_error err = {0};
	hm_archive_opts o = {.metadata_json = META};
	struct stat st;
	snprintf(src, sizeof src, "%s/setid", base);
	snprintf(arc, sizeof arc, "%s/setid.tar.zst", base);
	snprintf(dst, sizeof dst, "%s/setid-out", base);
	assert_int_equal(mkdir(src, 0700), 0);
	snprintf(p, sizeof p, "%s/tool", src);
	write_text(p, "#!/bin/sh\n", 06755);
	snprintf(p, sizeof p, "%s/shared", src);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(chmod(p, 03775), 0);
	assert_int_equal(hm_archive_dir_create(src, arc, &o, NULL, &err), 0);
	assert_int_equal(hm_archive_extract(arc, dst, NULL, NULL, &err), 0);
	snprintf(p, sizeof p, "%s/tool", dst);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	snprintf(p, sizeof p, "%s/shared", dst);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01775); /* the sticky bit stays on directories */
}

/* Names are bytes (issue #9, part 4): UTF-8, not UTF-8, long, symlink targets, under any
 * locale the process may have. */
static void names_round_trip(const char *locale)
{
	char src[512], arc[512], dst[512], p[2048];
	hm_error err = {0};
	hm_archive_opts o = {.metadata_json = META};
	static const char *names[] = {"caf\xc3\xa9.txt", "\xf0\x9f\x90\x9d bee", "bad\xff\xfe.bin",
				      "latin1-caf\xe9", "tab\tnew\nline"};
	if (!setlocale(LC_ALL, locale)) {
		print_message("locale %s is not installed: skipped\n", locale);
		return;
	}
	snprintf(src, sizeof src, "%s/names-%s", base, locale);
	snprintf(arc, sizeof arc, "%s/names-%s.tar.zst", base, locale);
	snprintf(dst, sizeof dst, "%s/names-%s-out", base, locale);
	assert_int_equal(mkdir(src, 0700), 0);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", src, names[i]);
		write_text(p, names[i], 0600);
	}
	snprintf(p, sizeof p, "%s/r\xc3\xa9pertoire-\xff", src);
	assert_int_equal(mkdir(p, 0700), 0);
	char longp[1400];
	size_t n = (size_t)snprintf(longp, sizeof longp, "%s", p);
	for (int i = 0; i < 4; i++) {
		n += (size_t)snprintf(longp + n, sizeof longp - n, "/%0200d", i);
		assert_int_equal(mkdir(longp, 0700), 0);
	}
	snprintf(longp + n, sizeof longp - n, "/%s", names[2]);
	write_text(longp, "deep", 0600);
	snprintf(p, sizeof p, "%s/link-caf\xc3\xa9", src);
	assert_int_equal(symlink(names[0], p), 0);
	snprintf(p, sizeof p, "%s/link-bad", src);
	assert_int_equal(symlink("bad\xff\xfe.bin", p), 0);
	assert_int_equal(hm_archive_dir_create(src, arc, &o, NULL, &err), 0);
	assert_int_equal(hm_archive_verify(arc, NULL, NULL, &err), 0);
	assert_int_equal(hm_archive_extract(arc, dst, NULL, NULL, &err), 0);
	compare_trees(src, dst);
	setlocale(LC_ALL, "C");
}

static void test_names_are_bytes(void **state)
{
	(void)state;
	names_round_trip("C");
	names_round_trip("C.UTF-8");
}

/* ---- hostile archives (issue #8): consistent manifests, refused by the rule ---- */

typedef struct craft_entry {
	const char *name; /* member name ("data", "data/...") */
	unsigned type;	  /* AE_IF* */
	unsigned mode;
	const char *data, *target, *hardlink;
	const char *mpath; /* manifest path (NULL: name without "data/") */
} craft_entry;

/* Write an archive_dir archive of these members whose manifest agrees with them (padded
 * with pad spaces). */
static void craft(const char *arc, const craft_entry *ce, size_t n, size_t pad)
{
	struct archive *w = archive_write_new();
	hm_manifest m;
	hm_error err = {0};
	hm_manifest_init(&m);
	assert_int_equal(hm_manifest_set_metadata(&m, META, &err), 0);
	archive_write_set_format_pax_restricted(w);
	archive_write_set_format_option(w, "pax", "hdrcharset", "BINARY");
	archive_write_add_filter_zstd(w);
	assert_int_equal(archive_write_open_filename(w, arc), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "hive-migrate/metadata.json");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)strlen(META));
	archive_write_header(w, e);
	archive_write_data(w, META, strlen(META));
	for (size_t i = 0; i < n; i++) {
		const char *d = ce[i].data ? ce[i].data : "";
		hm_manifest_entry me = {0};
		archive_entry_clear(e);
		archive_entry_set_pathname(e, ce[i].name);
		archive_entry_set_filetype(e, ce[i].type);
		archive_entry_set_perm(e, ce[i].mode);
		archive_entry_set_mtime(e, 1700000000, 0);
		archive_entry_set_size(e, ce[i].type == AE_IFREG ? (la_int64_t)strlen(d) : 0);
		if (ce[i].target)
			archive_entry_set_symlink(e, ce[i].target);
		if (ce[i].hardlink)
			archive_entry_set_hardlink(e, ce[i].hardlink);
		if (ce[i].type == AE_IFCHR)
			archive_entry_set_rdev(e, makedev(1, 3));
		assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
		if (ce[i].type == AE_IFREG && d[0])
			archive_write_data(w, d, strlen(d));
		me.path = (char *)(ce[i].mpath			 ? ce[i].mpath
				   : !strcmp(ce[i].name, "data") ? "."
								 : ce[i].name + 5);
		me.type = ce[i].type == AE_IFDIR   ? HM_ENTRY_DIR
			  : ce[i].type == AE_IFLNK ? HM_ENTRY_SYMLINK
						   : HM_ENTRY_FILE;
		me.mode = ce[i].mode;
		me.mtime = 1700000000;
		me.size = me.type == HM_ENTRY_FILE ? strlen(d) : 0;
		me.target = (char *)ce[i].target;
		if (me.type == HM_ENTRY_FILE) {
			hm_sha256 *h = hm_sha256_new();
			hm_sha256_update(h, d, strlen(d));
			hm_sha256_final_hex(h, me.sha256);
		}
		assert_int_equal(hm_manifest_add(&m, &me, &err), 0);
	}
	char *json = NULL;
	size_t len = 0;
	assert_int_equal(hm_manifest_encode(&m, &json, &len, &err), 0);
	char *padded = malloc(len + pad + 1);
	memcpy(padded, json, len - 1);
	memset(padded + len - 1, ' ', pad);
	padded[len - 1 + pad] = '}';
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "hive-migrate/manifest.json");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)(len + pad));
	archive_write_header(w, e);
	archive_write_data(w, padded, len + pad);
	archive_entry_free(e);
	archive_write_free(w);
	free(json);
	free(padded);
	hm_manifest_free(&m);
}

static void test_hostile_archives(void **state)
{
	(void)state;
	static const craft_entry top = {"data", AE_IFDIR, 0700, NULL, NULL, NULL, NULL};
	static const struct {
		const char *name, *expect;
		craft_entry e[3];
		size_t n;
	} cases[] = {
		{"hard link", "hard link", {{"data/h", AE_IFREG, 0600, NULL, NULL, "/etc/passwd", NULL}}, 1},
		{"char device",
		 "character device",
		 {{"data/null", AE_IFCHR, 0666, NULL, NULL, NULL, NULL}},
		 1},
		{"fifo", "FIFO", {{"data/fifo", AE_IFIFO, 0600, NULL, NULL, NULL, NULL}}, 1},
		{"setuid", "setuid", {{"data/sh", AE_IFREG, 04755, "#!/bin/sh", NULL, NULL, NULL}}, 1},
		{"below a symlink",
		 "symlink",
		 {{"data/l", AE_IFLNK, 0777, NULL, "/tmp", NULL, NULL},
		  {"data/l/x", AE_IFREG, 0600, "x", NULL, NULL, NULL}},
		 2},
		{"dot dot", "..", {{"data/../escape", AE_IFREG, 0600, "x", NULL, NULL, "escape"}}, 1},
		{"absolute",
		 "unexpected member",
		 {{"/data/escape", AE_IFREG, 0600, "x", NULL, NULL, "escape"}},
		 1},
		{"twice",
		 "twice",
		 {{"data/a", AE_IFREG, 0600, "x", NULL, NULL, NULL},
		  {"data/a", AE_IFLNK, 0777, NULL, "/etc", NULL, "a2"}},
		 2},
	};
	char arc[512], dst[512];
	hm_error err = {0};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		craft_entry all[4] = {top};
		memcpy(all + 1, cases[i].e, cases[i].n * sizeof all[0]);
		snprintf(arc, sizeof arc, "%s/hostile%zu.tar.zst", base, i);
		snprintf(dst, sizeof dst, "%s/hostile%zu-out", base, i);
		craft(arc, all, cases[i].n + 1, 0);
		memset(&err, 0, sizeof err);
		assert_int_equal(hm_archive_verify(arc, NULL, NULL, &err), -1);
		print_message("case %s: %s\n", cases[i].name, err.message);
		assert_int_equal(err.code, HM_EXIT_VERIFY_FAILED);
		assert_non_null(strstr(err.message, cases[i].expect));
		assert_int_equal(hm_archive_extract(arc, dst, NULL, NULL, &err), -1);
		assert_int_equal(access(dst, F_OK), -1);
	}
	/* "." must be a directory */
	craft_entry dotfile = {"data", AE_IFREG, 0600, "x", NULL, NULL, NULL};
	snprintf(arc, sizeof arc, "%s/dotfile.tar.zst", base);
	craft(arc, &dotfile, 1, 0);
	assert_int_equal(hm_archive_verify(arc, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.message, "not a directory"));
	/* the same archive with nothing hostile verifies: the cases above fail on the rule */
	craft_entry fine[2] = {top, {"data/f", AE_IFREG, 0600, "x", NULL, NULL, NULL}};
	snprintf(arc, sizeof arc, "%s/fine.tar.zst", base);
	craft(arc, fine, 2, 0);
	assert_int_equal(hm_archive_verify(arc, NULL, NULL, &err), 0);
	/* finding 11: a few KB of archive cannot claim a manifest of 64 MB */
	snprintf(arc, sizeof arc, "%s/bigmanifest.tar.zst", base);
	craft(arc, fine, 2, 64u << 20);
	struct stat st;
	assert_int_equal(stat(arc, &st), 0);
	assert_true(st.st_size < (64 << 10));
	assert_int_equal(hm_archive_verify(arc, NULL, NULL, &err), -1);
	print_message("big manifest: %s\n", err.message);
	assert_non_null(strstr(err.message, "too large"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corruptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_special_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setid_not_archived, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_are_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_archives, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
