/* Ownership change with an undo record (migrate/ownership.c): plan, apply, apply again
 * (idempotent, as after a crash), undo; symlinks are changed with lchown, never followed;
 * the live undo keeps the owner of entries that already had the unified owner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../migrate/ownership.h"

static void owner_is(const char *p, uid_t u, gid_t g)
{
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_uid, u);
	assert_int_equal(st.st_gid, g);
}

static void test_plan_apply_undo(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	char dir[] = "/tmp/hm-test-owner-XXXXXX", p[512], rec[512], outside[512], link[512], cmd[600];
	hm_error err = {0};
	long n = 0;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof p, "%s/data", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/data/pgdata", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/data/pgdata/PG_VERSION", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(outside, sizeof outside, "%s/outside", dir);
	close(open(outside, O_CREAT | O_WRONLY, 0600));
	snprintf(link, sizeof link, "%s/data/pgdata/link", dir);
	assert_int_equal(symlink(outside, link), 0);
	snprintf(cmd, sizeof cmd, "chown -hR 999:999 %s/data && chown 5:5 %s", dir, outside);
	assert_int_equal(system(cmd), 0);
	/* a name starting with a blank, beside one without: each keeps its own owner */
	char blank[512], plain[512];
	snprintf(blank, sizeof blank, "%s/data/ x", dir);
	snprintf(plain, sizeof plain, "%s/data/x", dir);
	close(open(blank, O_CREAT | O_WRONLY, 0600));
	close(open(plain, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(chown(blank, 998, 998), 0);
	assert_int_equal(chown(plain, 1000, 1000), 0);
	snprintf(p, sizeof p, "%s/data/pgdata/PG_VERSION", dir);
	assert_int_equal(chown(p, 999, 998), 0); /* a different group must come back too */
	snprintf(rec, sizeof rec, "%s/owners.txt", dir);
	snprintf(p, sizeof p, "%s/data", dir);
	assert_int_equal(hm_owner_plan(p, 1000, 1000, rec, &n, &err), 0);
	assert_int_equal(n, 5); /* data, pgdata, PG_VERSION, link, " x" */
	assert_int_equal(hm_owner_apply(p, rec, 1000, 1000, &err), 0);
	assert_int_equal(hm_owner_apply(p, rec, 1000, 1000, &err), 0); /* again: idempotent */
	owner_is(p, 1000, 1000);
	owner_is(link, 1000, 1000);
	owner_is(outside, 5, 5); /* the symlink's target is not touched */
	assert_int_equal(hm_owner_undo(p, rec, &err), 0);
	owner_is(p, 999, 999);
	owner_is(link, 999, 999);
	char f[512];
	snprintf(f, sizeof f, "%s/data/pgdata/PG_VERSION", dir);
	owner_is(f, 999, 998);
	owner_is(blank, 998, 998);
	owner_is(plain, 1000, 1000); /* never listed: untouched by apply and undo */
	assert_int_equal(unlink(blank), 0);
	assert_int_equal(unlink(plain), 0);
	/* a second plan after the change lists nothing left to do */
	assert_int_equal(hm_owner_plan(p, 999, 999, rec, &n, &err), 0);
	assert_int_equal(n, 1); /* only PG_VERSION (group 998) */
	/* a damaged record is an error */
	FILE *fp = fopen(rec, "w");
	fputs("garbage\n", fp);
	fclose(fp);
	assert_int_equal(hm_owner_undo(p, rec, &err), -1);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Live rollback: the record comes back, and what was created under the unified owner since
 * gets the owner the record gives pgdata; an empty record (split ran as 1000) changes nothing. */
static void test_undo_live(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	char dir[] = "/tmp/hm-test-owner-live-XXXXXX", data[512], pg[512], p[512], rec[512], cmd[700];
	hm_error err = {0};
	long n = 0, fresh = -1;
	assert_non_null(mkdtemp(dir));
	snprintf(data, sizeof data, "%s/data", dir);
	snprintf(pg, sizeof pg, "%s/data/pgdata", dir);
	assert_int_equal(mkdir(data, 0700), 0);
	assert_int_equal(mkdir(pg, 0700), 0);
	snprintf(p, sizeof p, "%s/PG_VERSION", pg);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(cmd, sizeof cmd, "chown -hR 999:999 %s && chown 0:0 %s", data, data);
	assert_int_equal(system(cmd), 0);
	snprintf(rec, sizeof rec, "%s/owners.txt", dir);
	assert_int_equal(hm_owner_plan(data, 1000, 1000, rec, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(hm_owner_apply(data, rec, 1000, 1000, &err), 0);
	/* the unified container creates a directory and a file */
	snprintf(p, sizeof p, "%s/base", pg);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(chown(p, 1000, 1000), 0);
	snprintf(p, sizeof p, "%s/base/16384", pg);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(chown(p, 1000, 1000), 0);
	assert_int_equal(hm_owner_undo_live(data, rec, pg, 1000, 1000, &fresh, &err), 0);
	assert_int_equal(fresh, 2);
	owner_is(data, 0, 0);
	owner_is(pg, 999, 999);
	owner_is(p, 999, 999);
	/* again: nothing left (idempotent, as after a kill -9) */
	assert_int_equal(hm_owner_undo_live(data, rec, pg, 1000, 1000, &fresh, &err), 0);
	assert_int_equal(fresh, 0);
	/* a stack that ran as 1000: empty record, new files stay 1000 */
	snprintf(cmd, sizeof cmd, "chown -hR 1000:1000 %s", data);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(hm_owner_plan(data, 1000, 1000, rec, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(hm_owner_undo_live(data, rec, pg, 1000, 1000, &fresh, &err), 0);
	assert_int_equal(fresh, 0);
	owner_is(p, 1000, 1000);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Create an empty file p owned by u:g. */
static void make_file(const char *p, uid_t u, gid_t g)
{
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(lchown(p, u, g), 0);
}

/* The contents of a small file (static buffer). */
static const char *slurp(const char *p)
{
	static char buf[8192];
	FILE *fp = fopen(p, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Live rollback with the same-owner list: entries that were already owned by the unified
 * owner before the migration, in a stack of another owner, keep it; new entries (and one the
 * unified container replaced by a new file at the same path) get the split stack's owner; a
 * record without the list (an older hive-migrate) gives them all the split stack's owner. */
static void test_undo_live_keeps_same_owner(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	char dir[] = "/tmp/hm-test-owner-same-XXXXXX", data[512], pg[512], rec[512], same[600], cmd[700];
	char keep[512], lead[512], kdir[512], kchild[512], repl[512], fresh_f[512], tmp[512];
	hm_error err = {0};
	long n = 0, fresh = -1;
	struct stat st;
	assert_non_null(mkdtemp(dir));
	snprintf(data, sizeof data, "%s/data", dir);
	snprintf(pg, sizeof pg, "%s/data/pgdata", dir);
	assert_int_equal(mkdir(data, 0700), 0);
	assert_int_equal(mkdir(pg, 0700), 0);
	assert_int_equal(chown(data, 0, 0), 0);
	assert_int_equal(chown(pg, 999, 999), 0);
	snprintf(tmp, sizeof tmp, "%s/PG_VERSION", pg);
	make_file(tmp, 999, 999);
	snprintf(keep, sizeof keep, "%s/hm_keep_marker", pg);
	make_file(keep, 1000, 1000);
	snprintf(lead, sizeof lead, "%s/ lead blank", pg); /* a name starting with a blank */
	make_file(lead, 1000, 1000);
	snprintf(kdir, sizeof kdir, "%s/kdir", pg);
	assert_int_equal(mkdir(kdir, 0700), 0);
	assert_int_equal(chown(kdir, 1000, 1000), 0);
	snprintf(kchild, sizeof kchild, "%s/kdir/child", pg);
	make_file(kchild, 999, 999);
	snprintf(repl, sizeof repl, "%s/replaced", pg);
	make_file(repl, 1000, 1000);
	snprintf(rec, sizeof rec, "%s/owners.txt", dir);
	snprintf(same, sizeof same, "%s%s", rec, HM_OWNER_SAME_SUFFIX);
	assert_int_equal(hm_owner_plan(data, 1000, 1000, rec, &n, &err), 0);
	assert_int_equal(n, 4); /* data, pgdata, PG_VERSION, kdir/child */
	/* the list: 0600, the four entries already owned by 1000:1000 and nothing else */
	assert_int_equal(lstat(same, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	const char *txt = slurp(same);
	assert_non_null(strstr(txt, " pgdata/hm_keep_marker\n"));
	assert_non_null(strstr(txt, " pgdata/ lead blank\n"));
	assert_non_null(strstr(txt, " pgdata/kdir\n"));
	assert_non_null(strstr(txt, " pgdata/replaced\n"));
	assert_null(strstr(txt, "PG_VERSION"));
	assert_null(strstr(txt, "child"));
	int lines = 0;
	for (const char *c = txt; *c; c++)
		lines += *c == '\n';
	assert_int_equal(lines, 4);
	assert_int_equal(hm_owner_apply(data, rec, 1000, 1000, &err), 0);
	/* the unified container creates a file and replaces one (a new inode at the same path) */
	snprintf(fresh_f, sizeof fresh_f, "%s/new", pg);
	make_file(fresh_f, 1000, 1000);
	snprintf(tmp, sizeof tmp, "%s/replaced.tmp", pg);
	make_file(tmp, 1000, 1000);
	assert_int_equal(rename(tmp, repl), 0);
	assert_int_equal(hm_owner_undo_live(data, rec, pg, 1000, 1000, &fresh, &err), 0);
	assert_int_equal(fresh, 2); /* new, replaced */
	owner_is(data, 0, 0);
	owner_is(pg, 999, 999);
	owner_is(kchild, 999, 999);
	owner_is(keep, 1000, 1000);
	owner_is(lead, 1000, 1000);
	owner_is(kdir, 1000, 1000);
	owner_is(fresh_f, 999, 999);
	owner_is(repl, 999, 999);
	/* again: nothing left to change */
	assert_int_equal(hm_owner_undo_live(data, rec, pg, 1000, 1000, &fresh, &err), 0);
	assert_int_equal(fresh, 0);
	owner_is(keep, 1000, 1000);
	/* a record from an older hive-migrate (no list): every 1000:1000 entry is taken for new */
	assert_int_equal(unlink(same), 0);
	assert_int_equal(hm_owner_undo_live(data, rec, pg, 1000, 1000, &fresh, &err), 0);
	assert_int_equal(fresh, 3); /* hm_keep_marker, " lead blank", kdir */
	owner_is(keep, 999, 999);
	owner_is(lead, 999, 999);
	owner_is(kdir, 999, 999);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A damaged same-owner list is an error, and nothing is given the split stack's owner. */
static void test_undo_live_damaged_same(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	char dir[] = "/tmp/hm-test-owner-samebad-XXXXXX", data[512], pg[512], rec[512], same[600], p[512],
	     cmd[700];
	static const char *bad[] = {"garbage\n", "12\n", "12 \n", "x12 pgdata\n", "-1 pgdata\n"};
	hm_error err = {0};
	long n = 0, fresh = -1;
	assert_non_null(mkdtemp(dir));
	snprintf(data, sizeof data, "%s/data", dir);
	snprintf(pg, sizeof pg, "%s/data/pgdata", dir);
	assert_int_equal(mkdir(data, 0700), 0);
	assert_int_equal(mkdir(pg, 0700), 0);
	snprintf(cmd, sizeof cmd, "chown -hR 999:999 %s", data);
	assert_int_equal(system(cmd), 0);
	snprintf(rec, sizeof rec, "%s/owners.txt", dir);
	snprintf(same, sizeof same, "%s%s", rec, HM_OWNER_SAME_SUFFIX);
	assert_int_equal(hm_owner_plan(data, 1000, 1000, rec, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(slurp(same), ""); /* nothing was 1000:1000 */
	assert_int_equal(hm_owner_apply(data, rec, 1000, 1000, &err), 0);
	snprintf(p, sizeof p, "%s/new", pg);
	make_file(p, 1000, 1000);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		FILE *fp = fopen(same, "w");
		assert_non_null(fp);
		fputs(bad[i], fp);
		fclose(fp);
		assert_int_equal(hm_owner_undo_live(data, rec, pg, 1000, 1000, &fresh, &err), -1);
		assert_int_equal(fresh, 0);
		owner_is(p, 1000, 1000);
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_plan_apply_undo),
					   cmocka_unit_test(test_undo_live),
					   cmocka_unit_test(test_undo_live_keeps_same_owner),
					   cmocka_unit_test(test_undo_live_damaged_same)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
