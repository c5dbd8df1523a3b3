/* The archive rule (common/tree_rule.c), the tree writer (common/tree_writer.c) and the
 * symlink-proof helpers of common/fsutil.c and common/lock.c (issue #8): every refusal of
 * the rule, writing that never leaves its directory, temp files and lock files that are
 * never written through a planted symlink, removal that never follows one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/fsutil.h"
#include "../../common/lock.h"
#include "../../common/tree_rule.h"
#include "../../common/tree_writer.h"

static char base[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static int setup(void **state)
{
	(void)state;
	snprintf(base, sizeof base, "/tmp/hm-test-tree-XXXXXX");
	assert_non_null(mkdtemp(base));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(path, mode);
}

static char *read_text(const char *path)
{
	static char buf[256];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_normalize(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out; /* out NULL: refused */
	} cases[] = {
		{"a", "a"},
		{"./a/b/", "a/b"},
		{"././a", "a"},
		{".", "."},
		{"./", "."},
		{"", "."},
		{"caf\xc3\xa9/\xff\xfe", "caf\xc3\xa9/\xff\xfe"},
		{"../a", NULL},
		{"a/../../b", NULL},
		{"a/..", NULL},
		{"/abs", NULL},
		{"/", NULL},
		{"a//b", NULL},
		{"a/./b", NULL},
	};
	char out[4096], why[512];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = hm_tree_normalize(cases[i].in, out, sizeof out, why, sizeof why);
		if (cases[i].out) {
			assert_int_equal(rc, 0);
			assert_string_equal(out, cases[i].out);
		} else {
			assert_int_equal(rc, -1);
			print_message("refused \"%s\": %s\n", cases[i].in, why);
		}
	}
	/* a component past NAME_MAX, and a path nested too deep */
	char longname[300], deep[2 * HM_TREE_MAX_DEPTH + 10];
	memset(longname, 'x', 256);
	longname[256] = '\0';
	assert_int_equal(hm_tree_normalize(longname, out, sizeof out, why, sizeof why), -1);
	size_t n = 0;
	for (int i = 0; i <= HM_TREE_MAX_DEPTH; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "%sd", i ? "/" : "");
	assert_int_equal(hm_tree_normalize(deep, out, sizeof out, why, sizeof why), -1);
	assert_non_null(strstr(why, "nested"));
}

/* An archive entry of a type, mode and owner. */
static struct archive_entry *entry(unsigned type, unsigned mode, const char *link, const char *hard)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, mode);
	archive_entry_set_uid(e, 999);
	archive_entry_set_gid(e, 999);
	archive_entry_set_mtime(e, 1700000000, 0);
	if (link)
		archive_entry_set_symlink(e, link);
	if (hard)
		archive_entry_set_hardlink(e, hard);
	return e;
}

/* Check path as a member of type/mode against r: 0 or -1, reason printed. */
static int check(hm_tree_rule *r, const char *path, unsigned type, unsigned mode, const char *link,
		 const char *hard, const char *expect)
{
	struct archive_entry *e = entry(type, mode, link, hard);
	hm_tree_item it;
	char why[512] = "";
	int rc = hm_tree_rule_check(r, path, e, &it, why, sizeof why);
	archive_entry_free(e);
	if (rc != 0)
		print_message("%s: %s\n", path, why);
	if (expect)
		assert_non_null(strstr(why, expect));
	return rc;
}

static void test_rule(void **state)
{
	(void)state;
	hm_tree_rule r;
	hm_tree_rule_init(&r);
	assert_int_equal(check(&r, ".", AE_IFDIR, 0700, NULL, NULL, NULL), 0);
	assert_int_equal(check(&r, ".", AE_IFDIR, 0700, NULL, NULL, "twice"), -1);
	assert_int_equal(check(&r, "f", AE_IFREG, 0600, NULL, NULL, NULL), 0);
	assert_int_equal(check(&r, "hl", AE_IFREG, 0600, NULL, "f", "hard link"), -1);
	assert_int_equal(check(&r, "hl2", AE_IFREG, 0600, NULL, "/etc/shadow", "hard link"), -1);
	assert_int_equal(check(&r, "c", AE_IFCHR, 0666, NULL, NULL, "character device"), -1);
	assert_int_equal(check(&r, "b", AE_IFBLK, 0666, NULL, NULL, "block device"), -1);
	assert_int_equal(check(&r, "p", AE_IFIFO, 0600, NULL, NULL, "FIFO"), -1);
	assert_int_equal(check(&r, "s", AE_IFSOCK, 0600, NULL, NULL, "socket"), -1);
	assert_int_equal(check(&r, "suid", AE_IFREG, 04755, NULL, NULL, "setuid"), -1);
	assert_int_equal(check(&r, "sgid", AE_IFDIR, 02755, NULL, NULL, "setgid"), -1);
	assert_int_equal(check(&r, "sticky", AE_IFDIR, 01777, NULL, NULL, NULL), 0);
	assert_int_equal(check(&r, "f", AE_IFREG, 0600, NULL, NULL, "twice"), -1);
	assert_int_equal(check(&r, "l", AE_IFLNK, 0777, "/etc", NULL, NULL), 0);
	assert_int_equal(check(&r, "l/x", AE_IFREG, 0600, NULL, NULL, "symlink"), -1);
	assert_int_equal(check(&r, "f/x", AE_IFREG, 0600, NULL, NULL, "file"), -1);
	assert_int_equal(check(&r, "empty", AE_IFLNK, 0777, "", NULL, "without a target"), -1);
	/* a directory created for its first child may be listed after it, as a directory only */
	assert_int_equal(check(&r, "a/b/c", AE_IFREG, 0600, NULL, NULL, NULL), 0);
	assert_int_equal(check(&r, "a/b", AE_IFDIR, 0750, NULL, NULL, NULL), 0);
	assert_int_equal(check(&r, "a", AE_IFLNK, 0777, "/tmp", NULL, "after members"), -1);
	assert_int_equal(check(&r, "a/b", AE_IFDIR, 0750, NULL, NULL, "twice"), -1);
	hm_tree_rule_free(&r);

	/* "." must be a directory; an owner of -1 would mean "unchanged" to chown */
	hm_tree_rule_init(&r);
	assert_int_equal(check(&r, ".", AE_IFLNK, 0777, "/", NULL, "not a directory"), -1);
	struct archive_entry *e = entry(AE_IFREG, 0600, NULL, NULL);
	archive_entry_set_uid(e, 0xFFFFFFFFll);
	hm_tree_item it;
	char why[256];
	assert_int_equal(hm_tree_rule_check(&r, "x", e, &it, why, sizeof why), -1);
	assert_non_null(strstr(why, "owner"));
	archive_entry_free(e);
	hm_tree_rule_free(&r);

	/* many members: the table grows and still finds every one */
	hm_tree_rule_init(&r);
	char p[64];
	for (int i = 0; i < 5000; i++) {
		snprintf(p, sizeof p, "d%d/f%d", i % 50, i);
		assert_int_equal(check(&r, p, AE_IFREG, 0600, NULL, NULL, NULL), 0);
	}
	assert_int_equal(check(&r, "d7/f7", AE_IFREG, 0600, NULL, NULL, "twice"), -1);
	hm_tree_rule_free(&r);
}

static hm_tree_item item(const char *path, char type, unsigned mode, const char *target)
{
	hm_tree_item it = {
		.path = path, .type = type, .mode = mode, .uid = 4321, .gid = 4322, .mtime = 1700000000};
	it.target = target;
	return it;
}

static void test_writer(void **state)
{
	(void)state;
	char p[600];
	hm_error err = {0};
	hm_tree_writer *w;
	struct stat st;
	int pfd = open(base, O_RDONLY | O_DIRECTORY);
	assert_true(pfd >= 0);
	assert_int_equal(hm_tree_writer_new(&w, pfd, "out", "out", NULL, &err), 0);
	hm_tree_item it = item(".", 'd', 0750, NULL);
	assert_int_equal(hm_tree_writer_add(w, &it, &err), 0);
	it = item("sub/deeper/f", 'f', 0640, NULL); /* parents created on the way */
	assert_int_equal(hm_tree_writer_add(w, &it, &err), 0);
	assert_int_equal(hm_tree_writer_data(w, "hello\n", 6, &err), 0);
	assert_int_equal(hm_tree_writer_end_file(w, &err), 0);
	it = item("sub", 'd', 01770, NULL); /* listed after its child */
	assert_int_equal(hm_tree_writer_add(w, &it, &err), 0);
	it = item("sub/link", 'l', 0777, "/etc/passwd");
	assert_int_equal(hm_tree_writer_add(w, &it, &err), 0);
	it = item("caf\xc3\xa9-\xff", 'f', 0600, NULL);
	assert_int_equal(hm_tree_writer_add(w, &it, &err), 0);
	assert_int_equal(hm_tree_writer_end_file(w, &err), 0);
	assert_int_equal(hm_tree_writer_finish(w, &err), 0);
	hm_tree_writer_free(w);
	snprintf(p, sizeof p, "%s/out/sub/deeper/f", base);
	assert_string_equal(read_text(p), "hello\n");
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	if (geteuid() == 0)
		assert_int_equal(st.st_uid, 4321);
	assert_int_equal(st.st_mtime, 1700000000);
	snprintf(p, sizeof p, "%s/out/sub", base);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777,
			 01770); /* the listed attributes, not the 0700 it was made with */
	snprintf(p, sizeof p, "%s/out", base);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	snprintf(p, sizeof p, "%s/out/caf\xc3\xa9-\xff", base);
	assert_int_equal(access(p, F_OK), 0);

	/* an existing name is refused, and is not touched */
	assert_int_equal(hm_tree_writer_new(&w, pfd, "out", "out", NULL, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	/* so is a symlink planted at the name: never written through */
	snprintf(p, sizeof p, "%s/victim", base);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/planted", base);
	assert_int_equal(symlink("victim", p), 0);
	assert_int_equal(hm_tree_writer_new(&w, pfd, "planted", "planted", NULL, &err), -1);

	/* owner override for every entry; abort removes everything created */
	hm_tree_owner o = {1, 111, 112};
	assert_int_equal(hm_tree_writer_new(&w, pfd, "gone", "gone", &o, &err), 0);
	it = item("x/y", 'f', 0600, NULL);
	assert_int_equal(hm_tree_writer_add(w, &it, &err), 0);
	assert_int_equal(hm_tree_writer_end_file(w, &err), 0);
	snprintf(p, sizeof p, "%s/gone/x/y", base);
	assert_int_equal(lstat(p, &st), 0);
	if (geteuid() == 0)
		assert_int_equal(st.st_uid, 111);
	hm_tree_writer_abort(w);
	snprintf(p, sizeof p, "%s/gone", base);
	assert_int_equal(access(p, F_OK), -1);
	/* a file where a directory is needed: an error, nothing written elsewhere */
	assert_int_equal(hm_tree_writer_new(&w, pfd, "clash", "clash", NULL, &err), 0);
	it = item("f", 'f', 0600, NULL);
	assert_int_equal(hm_tree_writer_add(w, &it, &err), 0);
	assert_int_equal(hm_tree_writer_end_file(w, &err), 0);
	it = item("f/g", 'f', 0600, NULL);
	assert_int_equal(hm_tree_writer_add(w, &it, &err), -1);
	hm_tree_writer_abort(w);
	snprintf(p, sizeof p, "%s/victim", base);
	DIR *d = opendir(p);
	int n = 0;
	for (struct dirent *de; (de = readdir(d)) != NULL;)
		n++;
	closedir(d);
	assert_int_equal(n, 2);
	close(pfd);
}

/* Finding 3: a symlink planted at the temp file's name is never written through. */
static void test_atomic_write_never_follows(void **state)
{
	(void)state;
	char victim[512], target[512], tmp[600];
	hm_error err = {0};
	snprintf(victim, sizeof victim, "%s/victim", base);
	write_text(victim, "precious\n", 0644);
	snprintf(target, sizeof target, "%s/backup_manifest", base);
	/* both the old name (path.tmp.PID) and the current one (.name.tmp.PID) */
	snprintf(tmp, sizeof tmp, "%s/backup_manifest.tmp.%ld", base, (long)getpid());
	assert_int_equal(symlink(victim, tmp), 0);
	snprintf(tmp, sizeof tmp, "%s/.backup_manifest.tmp.%ld", base, (long)getpid());
	assert_int_equal(symlink(victim, tmp), 0);
	assert_int_equal(hm_write_file_atomic(target, "new\n", 4, 0600, &err), 0);
	assert_string_equal(read_text(victim), "precious\n");
	assert_string_equal(read_text(target), "new\n");
	struct stat st;
	assert_int_equal(lstat(target, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	/* a symlink at the final name is replaced, not written through */
	assert_int_equal(unlink(target), 0);
	assert_int_equal(symlink(victim, target), 0);
	assert_int_equal(hm_write_file_atomic(target, "newer\n", 6, 0600, &err), 0);
	assert_string_equal(read_text(victim), "precious\n");
	assert_int_equal(lstat(target, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

/* Removal never follows a symlink inside the tree, nor one at the top. */
static void test_rmtree_never_follows(void **state)
{
	(void)state;
	char v[512], t[512], p[700];
	hm_error err = {0};
	snprintf(v, sizeof v, "%s/keep", base);
	assert_int_equal(mkdir(v, 0700), 0);
	snprintf(p, sizeof p, "%s/file", v);
	write_text(p, "keep\n", 0600);
	snprintf(t, sizeof t, "%s/tree", base);
	assert_int_equal(mkdir(t, 0700), 0);
	snprintf(p, sizeof p, "%s/a", t);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/a/link", t);
	assert_int_equal(symlink(v, p), 0);
	snprintf(p, sizeof p, "%s/a/ro", t);
	assert_int_equal(mkdir(p, 0500), 0);
	assert_int_equal(hm_rmtree(t, &err), 0);
	assert_int_equal(access(t, F_OK), -1);
	snprintf(p, sizeof p, "%s/file", v);
	assert_string_equal(read_text(p), "keep\n");
	snprintf(t, sizeof t, "%s/toplink", base);
	assert_int_equal(symlink(v, t), 0);
	assert_int_equal(hm_rmtree(t, &err), 0);
	assert_string_equal(read_text(p), "keep\n");
	assert_int_equal(hm_rmtree("/nonexistent/hm-test", &err), 0);
}

/* Finding 4: private directories and lock files. */
static void test_private_and_locks(void **state)
{
	(void)state;
	char d[512], l[600], v[600];
	hm_error err = {0};
	hm_lock a, b;
	snprintf(d, sizeof d, "%s/state", base);
	assert_int_equal(hm_private_dir(d, "state directory", &err), 0); /* created 0700 */
	assert_int_equal(chmod(d, 0777), 0);
	assert_int_equal(hm_private_dir(d, "state directory", &err), -1);
	assert_int_equal(err.code, HM_EXIT_PERMISSION);
	assert_non_null(strstr(err.hint, "chmod 700"));
	assert_int_equal(chmod(d, 0755), 0);
	assert_int_equal(hm_private_dir(d, "state directory", &err), 0);
	snprintf(l, sizeof l, "%s/link", base);
	assert_int_equal(symlink(d, l), 0);
	assert_int_equal(hm_private_dir(l, "state directory", &err), -1);
	assert_non_null(strstr(err.message, "symlink"));
	if (geteuid() == 0) {
		assert_int_equal(chown(d, 65534, 65534), 0);
		assert_int_equal(hm_private_dir(d, "state directory", &err), -1);
		assert_non_null(strstr(err.message, "belongs to uid 65534"));
		assert_int_equal(chown(d, 0, 0), 0);
	}
	/* a lock file that is a symlink is refused, its target untouched */
	snprintf(v, sizeof v, "%s/victim", base);
	write_text(v, "precious\n", 0644);
	snprintf(l, sizeof l, "%s/lock", d);
	assert_int_equal(symlink(v, l), 0);
	assert_int_equal(hm_lock_acquire(&a, l, &err), -1);
	assert_int_equal(err.code, HM_EXIT_PERMISSION);
	assert_string_equal(read_text(v), "precious\n");
	assert_int_equal(unlink(l), 0);
	/* shared locks share; an exclusive one waits for none */
	int dfd = open(d, O_RDONLY | O_DIRECTORY);
	assert_int_equal(hm_lock_acquire_at(&a, dfd, "lock", l, 1, &err), 0);
	assert_int_equal(hm_lock_acquire_at(&b, dfd, "lock", l, 1, &err), 0);
	hm_lock_release(&b);
	assert_int_equal(hm_lock_acquire_at(&b, dfd, "lock", l, 0, &err), -1);
	assert_int_equal(err.code, HM_EXIT_LOCKED);
	hm_lock_release(&a);
	assert_int_equal(hm_lock_acquire_at(&b, dfd, "lock", l, 0, &err), 0);
	hm_lock_release(&b);
	close(dfd);
}

/* Finding 12: a password file others may read is refused (and its content not read). */
static void test_secret_file(void **state)
{
	(void)state;
	char p[512], *s = NULL;
	hm_error err = {0};
	snprintf(p, sizeof p, "%s/pw", base);
	write_text(p, "secret\nsecond line\n", 0644);
	assert_int_equal(hm_read_secret_file(p, 4096, &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_PERMISSION);
	assert_null(s);
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(hm_read_secret_file(p, 4096, &s, &err), 0);
	assert_string_equal(s, "secret");
	free(s);
}

/* Finding 5 (rollback's DATA_DIR.hive-restore): the checked rename refuses a symlink. */
static void test_rename_checked(void **state)
{
	(void)state;
	char a[512], b[512], v[512];
	hm_error err = {0};
	snprintf(v, sizeof v, "%s/theirs", base);
	assert_int_equal(mkdir(v, 0777), 0);
	snprintf(a, sizeof a, "%s/pgdata.hive-restore", base);
	snprintf(b, sizeof b, "%s/pgdata", base);
	assert_int_equal(symlink(v, a), 0);
	assert_int_equal(hm_rename_dir_checked(a, b, &err), -1);
	assert_int_equal(access(b, F_OK), -1);
	assert_int_equal(unlink(a), 0);
	assert_int_equal(mkdir(a, 0700), 0);
	assert_int_equal(hm_rename_dir_checked(a, b, &err), 0);
	struct stat st;
	assert_int_equal(lstat(b, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_rule),
		cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_write_never_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rmtree_never_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_and_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_checked, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
