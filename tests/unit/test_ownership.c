/* Ownership change with an undo record (migrate/ownership.c): plan, apply, apply again
 * (idempotent, as after a crash), undo; symlinks are changed with lchown, never followed. */
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
	snprintf(p, sizeof p, "%s/data/pgdata/PG_VERSION", dir);
	assert_int_equal(chown(p, 999, 998), 0); /* a different group must come back too */
	snprintf(rec, sizeof rec, "%s/owners.txt", dir);
	snprintf(p, sizeof p, "%s/data", dir);
	assert_int_equal(hm_owner_plan(p, 1000, 1000, rec, &n, &err), 0);
	assert_int_equal(n, 4); /* data, pgdata, PG_VERSION, link */
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

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_plan_apply_undo),
					   cmocka_unit_test(test_undo_live)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
