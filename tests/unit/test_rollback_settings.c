/* The settings merge of a live rollback (migrate/rollback_settings.c): the unified
 * container's own changes are put back, the user's are kept; and the save/restore of the
 * files in a data directory. Also the to-snapshot report's fingerprint difference
 * (migrate/rollback_report.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/fsutil.h"
#include "../../migrate/rollback_report.h"
#include "../../migrate/rollback_settings.h"

/* merge and compare with want (and the number of settings put back) */
static void check(const char *base, const char *after, const char *now, int hba, const char *want,
		  int want_reverted)
{
	char *out = NULL;
	int reverted = -1;
	assert_int_equal(hm_settings_merge(base, after, now, hba, &out, &reverted), 0);
	assert_non_null(out);
	assert_string_equal(out, want);
	assert_int_equal(reverted, want_reverted);
	free(out);
}

static void test_conf_nothing_changed(void **state)
{
	(void)state;
	const char *t = "# comment\nshared_buffers = 128MB\nwork_mem = '4MB'  # tuned\n";
	check(t, t, t, 0, t, 0);
	check(NULL, NULL, NULL, 0, "", 0);
}

static void test_conf_user_changes_kept(void **state)
{
	(void)state;
	const char *base = "shared_buffers = 128MB\n";
	/* the user's ALTER SYSTEM on the unified container (after == base) */
	const char *now = "shared_buffers = 128MB\nwork_mem = '7MB'\n";
	check(base, base, now, 0, now, 0);
}

static void test_conf_unified_changes_reverted(void **state)
{
	(void)state;
	const char *base = "# Do not edit\nshared_buffers = 128MB\nmax_connections = 100\n";
	const char *after =
		"# Do not edit\nshared_buffers = 256MB\nmax_connections = 100\nwal_level = 'replica'\n";
	/* unchanged since: everything the unified container did goes */
	check(base, after, after, 0, base, 2);
	/* the user changed max_connections since, and added a comment: both kept */
	const char *now = "# Do not edit\n# mine\nshared_buffers = 256MB\nmax_connections = 200\n"
			  "wal_level = 'replica'\n";
	check(base, after, now, 0, "# Do not edit\n# mine\nshared_buffers = 128MB\nmax_connections = 200\n",
	      2);
	/* the user changed a setting the unified container had changed: the user's value wins */
	const char *now2 = "# Do not edit\nshared_buffers = 512MB\nmax_connections = 100\n";
	check(base, after, now2, 0, now2, 0);
}

static void test_conf_spelling_and_removal(void **state)
{
	(void)state;
	/* the same setting spelt differently is the same value */
	check("Work_Mem='4MB'\n", "work_mem = '4MB' # same\n", "work_mem = '4MB' # same\n", 0,
	      "work_mem = '4MB' # same\n", 0);
	/* removed by the unified container and not re-added: comes back at the end */
	check("a = 1\nb = 2\n", "a = 1\n", "a = 1\nc = 3\n", 0, "a = 1\nc = 3\nb = 2\n", 1);
	/* removed by the user after the unified container changed it: stays removed */
	check("a = 1\nb = 2\n", "a = 1\nb = 5\n", "a = 1\n", 0, "a = 1\n", 0);
	/* duplicates: the last line of a name counts, all of them go when reverted */
	check("a = 1\n", "a = 1\na = 9\n", "a = 1\na = 9\n", 0, "a = 1\n", 1);
	/* a '#' inside quotes is part of the value */
	check("p = 'x#y'\n", "p = 'x#z'\n", "p = 'x#z'\n", 0, "p = 'x#y'\n", 1);
	/* include lines are each their own key */
	check("include 'a.conf'\n", "include 'a.conf'\ninclude 'b.conf'\n",
	      "include 'a.conf'\ninclude 'b.conf'\n", 0, "include 'a.conf'\n", 1);
}

static void test_hba(void **state)
{
	(void)state;
	const char *base = "# TYPE DATABASE USER ADDRESS METHOD\nlocal all all trust\nhost all all all md5\n";
	/* the unified container adds a rule and drops one; the user adds one since */
	const char *after = "# TYPE DATABASE USER ADDRESS METHOD\nlocal all all trust\n"
			    "host all all 10.0.0.0/8 trust\n";
	const char *now = "# TYPE DATABASE USER ADDRESS METHOD\nlocal   all  all   trust\n"
			  "host all all 10.0.0.0/8 trust\nhost mine mine 192.0.2.1/32 scram-sha-256\n";
	check(base, after, now, 1,
	      "# TYPE DATABASE USER ADDRESS METHOD\nlocal   all  all   trust\n"
	      "host mine mine 192.0.2.1/32 scram-sha-256\nhost all all all md5\n",
	      2);
	/* whitespace and comments do not make a rule different */
	check("host all all all md5\n", "host  all all all md5 # x\n", "host  all all all md5 # x\n", 1,
	      "host  all all all md5 # x\n", 0);
	/* no newline at the end of the file */
	check("local all all trust", "local all all trust\nhost x x x trust",
	      "local all all trust\nhost x x x trust", 1, "local all all trust\n", 1);
}

/* Write text into dir/name. */
static void put(const char *dir, const char *name, const char *text)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *get(const char *dir, const char *name)
{
	char p[4096], *buf = NULL;
	size_t len;
	hm_error err = {0};
	snprintf(p, sizeof p, "%s/%s", dir, name);
	if (hm_read_file(p, 1 << 20, &buf, &len, &err) != 0)
		return NULL;
	return buf;
}

static void test_save_restore(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/hm-settings-XXXXXX", pgdata[4096], sdir[4096], report[512];
	hm_error err = {0};
	int n = -1;
	assert_non_null(mkdtemp(tmpl));
	snprintf(pgdata, sizeof pgdata, "%s/pgdata", tmpl);
	snprintf(sdir, sizeof sdir, "%s/settings", tmpl);
	assert_int_equal(mkdir(pgdata, 0700), 0);
	put(pgdata, "pg_hba.conf", "local all all trust\n");
	put(pgdata, "postgresql.conf", "shared_buffers = 128MB\n");
	chmod(strcat(strcpy(report, pgdata), "/postgresql.conf"), 0640);
	/* no postgresql.auto.conf at first */
	assert_int_equal(hm_settings_save_stage(pgdata, sdir, "before", &err), 0);
	/* without an "after" copy nothing is changed */
	assert_int_equal(hm_settings_restore(pgdata, sdir, &n, report, sizeof report, &err), 0);
	assert_int_equal(n, 0);
	/* the unified container changes postgresql.conf and writes an auto.conf at its start */
	put(pgdata, "postgresql.conf", "shared_buffers = 1GB\n");
	put(pgdata, "postgresql.auto.conf", "# Do not edit\nfoo = 'bar'\n");
	assert_int_equal(hm_settings_save_stage(pgdata, sdir, "after", &err), 0);
	/* the user adds a rule since */
	put(pgdata, "pg_hba.conf", "local all all trust\nhost a a 192.0.2.0/24 md5\n");
	assert_int_equal(hm_settings_restore(pgdata, sdir, &n, report, sizeof report, &err), 0);
	assert_int_equal(n, 2);
	assert_non_null(strstr(report, "postgresql.conf"));
	char *t = get(pgdata, "postgresql.conf");
	assert_string_equal(t, "shared_buffers = 128MB\n");
	free(t);
	t = get(pgdata, "postgresql.auto.conf");
	assert_string_equal(t, "# Do not edit\n");
	free(t);
	t = get(pgdata, "pg_hba.conf");
	assert_string_equal(t, "local all all trust\nhost a a 192.0.2.0/24 md5\n");
	free(t);
	struct stat st;
	char p[4096];
	snprintf(p, sizeof p, "%s/postgresql.conf", pgdata);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640); /* the mode of the file it replaced */
	/* again: nothing left to put back (idempotent) */
	assert_int_equal(hm_settings_restore(pgdata, sdir, &n, report, sizeof report, &err), 0);
	assert_int_equal(n, 0);
	/* a NUL byte: not a settings file */
	snprintf(p, sizeof p, "%s/pg_hba.conf", pgdata);
	FILE *f = fopen(p, "w");
	fwrite("a\0b\n", 1, 4, f);
	fclose(f);
	assert_int_equal(hm_settings_restore(pgdata, sdir, &n, report, sizeof report, &err), -1);
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
	assert_int_equal(hm_rmtree(tmpl, &err), 0);
}

static void test_fingerprint_diff(void **state)
{
	(void)state;
	json_object *before = json_tokener_parse(
		"{\"databases\":{\"hive_agent\":{\"tables\":{"
		"\"agno.sessions\":{\"rows\":3,\"digest\":\"1\"},"
		"\"agno.memories\":{\"rows\":5,\"digest\":\"2\"},"
		"\"hive.gone\":{\"rows\":4,\"digest\":\"3\"}},\"extensions\":{}},"
		"\"old_db\":{\"tables\":{\"t\":{\"rows\":2,\"digest\":\"9\"}},\"extensions\":{}}}}");
	json_object *now =
		json_tokener_parse("{\"databases\":{\"hive_agent\":{\"tables\":{"
				   "\"agno.sessions\":{\"rows\":3,\"digest\":\"1\"},"
				   "\"agno.memories\":{\"rows\":5,\"digest\":\"22\"},"
				   "\"public.new\":{\"rows\":7,\"digest\":\"4\"}},\"extensions\":{}}}}");
	json_object *d = hm_rb_fingerprint_diff(before, now);
	assert_non_null(d);
	assert_int_equal(json_object_array_length(d), 4);
	const char *want[4][3] = {{"agno.memories", "changed", "5"},
				  {"hive.gone", "dropped", "4"},
				  {"public.new", "new", "-1"},
				  {"", "dropped database", "2"}};
	for (int i = 0; i < 4; i++) {
		json_object *e = json_object_array_get_idx(d, (size_t)i), *v;
		json_object_object_get_ex(e, "table", &v);
		assert_string_equal(json_object_get_string(v), want[i][0]);
		json_object_object_get_ex(e, "change", &v);
		assert_string_equal(json_object_get_string(v), want[i][1]);
		json_object_object_get_ex(e, "rows_before", &v);
		assert_int_equal(json_object_get_int64(v), atoi(want[i][2]));
	}
	FILE *f = fopen("/dev/null", "w");
	hm_rb_diff_print(d, f);
	fclose(f);
	json_object_put(d);
	/* equal fingerprints: nothing */
	d = hm_rb_fingerprint_diff(now, now);
	assert_int_equal(json_object_array_length(d), 0);
	json_object_put(d);
	/* garbage in: no crash, nothing */
	json_object *junk = json_tokener_parse("{\"databases\":[1,2]}");
	d = hm_rb_fingerprint_diff(junk, NULL);
	assert_non_null(d);
	json_object_put(d);
	json_object_put(junk);
	json_object_put(before);
	json_object_put(now);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_nothing_changed),
		cmocka_unit_test(test_conf_user_changes_kept),
		cmocka_unit_test(test_conf_unified_changes_reverted),
		cmocka_unit_test(test_conf_spelling_and_removal),
		cmocka_unit_test(test_hba),
		cmocka_unit_test(test_save_restore),
		cmocka_unit_test(test_fingerprint_diff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
