/* Unit tests of the pure parts of `up` across PostgreSQL majors: the support rule, step
 * names, the directories beside the data directory, the estimate, the list matching of the
 * preflight (extensions, locales), the cross-major fingerprint comparison and the journal
 * fields of the path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../migrate/fingerprint.h"
#include "../../migrate/journal.h"
#include "../../migrate/major.h"
#include "../../migrate/preflight_int.h"

static void test_supported(void **state)
{
	(void)state;
	char why[300];
	assert_int_equal(hm_major_supported(15, 17, why, sizeof why), 1);
	assert_int_equal(hm_major_supported(16, 17, why, sizeof why), 1);
	assert_int_equal(hm_major_supported(13, 17, why, sizeof why), 1);
	assert_int_equal(hm_major_supported(17, 18, why, sizeof why), 1);
	assert_int_equal(hm_major_supported(17, 17, why, sizeof why), 0);
	assert_string_equal(why, "");
	assert_int_equal(hm_major_supported(18, 17, why, sizeof why), 0);
	assert_non_null(strstr(why, "newer"));
	assert_int_equal(hm_major_supported(12, 17, why, sizeof why), 0);
	assert_non_null(strstr(why, "oldest"));
	assert_int_equal(hm_major_supported(15, 16, why, sizeof why), 0);
	assert_non_null(strstr(why, "17, 18"));
	assert_int_equal(hm_major_supported(15, 17, NULL, 0), 1);
	assert_int_equal(hm_major_supported(19, 18, NULL, 0), 0);
}

static void test_steps(void **state)
{
	(void)state;
	for (int i = 0; i < HM_MS__COUNT; i++)
		assert_int_equal(hm_major_step_from_name(hm_major_step_name((hm_major_step)i)), i);
	assert_int_equal(hm_major_step_from_name(""), HM_MS_NONE);
	assert_string_equal(hm_major_step_name(HM_MS_DUMPED), "dumped");
	assert_string_equal(hm_major_step_name(HM_MS_CUTTING_OVER), "cutting-over");
	assert_int_equal(hm_major_step_from_name("bogus"), -1);
	assert_int_equal(hm_major_step_from_name(NULL), -1);
	assert_string_equal(hm_major_step_name((hm_major_step)99), "unknown");
}

static void test_dir_names(void **state)
{
	(void)state;
	char n[64], o[64];
	assert_int_equal(
		hm_major_dir_names("/srv/hive/data/postgres-agent", 15, 17, n, sizeof n, o, sizeof o), 0);
	assert_string_equal(n, "/srv/hive/data/postgres-agent.pg17-new");
	assert_string_equal(o, "/srv/hive/data/postgres-agent.pg15-old");
	assert_int_equal(hm_major_dir_names("/srv/d//", 16, 18, n, sizeof n, o, sizeof o), 0);
	assert_string_equal(n, "/srv/d.pg18-new");
	assert_string_equal(o, "/srv/d.pg16-old");
	assert_int_equal(hm_major_dir_names("/", 15, 17, n, sizeof n, o, sizeof o), -1);
	assert_int_equal(hm_major_dir_names("", 15, 17, n, sizeof n, o, sizeof o), -1);
	assert_int_equal(hm_major_dir_names("/a/very/long/path/that/does/not/fit/in/sixty-four/bytes/at/all",
					    15, 17, n, sizeof n, o, sizeof o),
			 -1);
}

static void test_estimate(void **state)
{
	(void)state;
	assert_true(hm_major_estimate_seconds(0) >= 20.0);
	assert_true(hm_major_estimate_seconds(-5) == hm_major_estimate_seconds(0));
	assert_true(hm_major_estimate_seconds(1e9) > hm_major_estimate_seconds(1e8));
	double gb = hm_major_estimate_seconds(1e9);
	assert_true(gb > 60 && gb < 200);
}

static void test_filter_globals(void **state)
{
	(void)state;
	const char *in =
		"SET client_encoding = 'UTF8';\nCREATE ROLE agent;\nALTER ROLE agent WITH SUPERUSER "
		"LOGIN PASSWORD 'SCRAM-SHA-256$4096:x';\nCREATE ROLE \"Agent\";\nCREATE ROLE agent2;\n"
		"CREATE ROLE agent; -- not exactly\nCREATE ROLE agent;";
	char out[512];
	size_t n = hm_major_filter_globals(in, strlen(in), "agent", out);
	assert_int_equal(n, strlen(out));
	assert_null(strstr(out, "CREATE ROLE agent;\n"));
	assert_non_null(strstr(out, "ALTER ROLE agent WITH SUPERUSER"));
	assert_non_null(strstr(out, "CREATE ROLE \"Agent\";"));
	assert_non_null(strstr(out, "CREATE ROLE agent2;"));
	assert_non_null(strstr(out, "CREATE ROLE agent; -- not exactly"));
	assert_true(out[n - 1] == '\n'); /* the last (unterminated) line was the superuser's */
	n = hm_major_filter_globals(in, strlen(in), "Agent", out);
	assert_null(strstr(out, "\"Agent\""));
	assert_non_null(strstr(out, "CREATE ROLE agent;"));
	n = hm_major_filter_globals("", 0, "agent", out);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
}

static void test_index_memory(void **state)
{
	(void)state;
	assert_int_equal(hm_major_index_memory_mb(0), 256); /* unknown: the floor */
	assert_int_equal(hm_major_index_memory_mb(512ull << 20), 256);
	assert_int_equal(hm_major_index_memory_mb(4ull << 30), 1024);
	assert_int_equal(hm_major_index_memory_mb(64ull << 30), 2048); /* the cap */
}

static void test_filter_predata(void **state)
{
	(void)state;
	const char *in = "\\restrict K\n"
			 "CREATE DATABASE hj WITH TEMPLATE = template0 ENCODING = 'UTF8';\n"
			 "ALTER DATABASE hj OWNER TO agent;\n"
			 "\\connect hj\n"
			 "CREATE DATABASE inside_a_body;\n"
			 "ALTER TABLE ONLY s.t ALTER COLUMN a SET (pg_attver=26966912);\n"
			 "ALTER TABLE ONLY s.t ALTER COLUMN b SET (n_distinct=5, pg_attver=1);\n"
			 "ALTER TABLE ONLY s.t ALTER COLUMN c SET (pg_attver=1, n_distinct=-1);\n"
			 "ALTER TABLE ONLY s.t ALTER COLUMN d SET (pg_attver=x1);\n"
			 "ALTER TABLE ONLY s.t ALTER COLUMN e SET (n_distinct=2);\n"
			 "SELECT 'ALTER COLUMN x SET (pg_attver=1);';\n"
			 "ALTER TABLE ONLY s.t ALTER COLUMN f SET (pg_attver=7);";
	char out[1024];
	long dropped = 0;
	size_t n = hm_major_filter_predata(in, strlen(in), 1, out, &dropped);
	assert_int_equal(n, strlen(out));
	assert_int_equal(dropped, 4);
	assert_null(strstr(out, "CREATE DATABASE hj"));
	assert_non_null(strstr(out, "CREATE DATABASE inside_a_body;\n")); /* after \\connect: kept */
	assert_non_null(strstr(out, "ALTER DATABASE hj OWNER TO agent;\n\\connect hj\n"));
	assert_null(strstr(out, "COLUMN a "));
	assert_non_null(strstr(out, "ALTER COLUMN b SET (n_distinct=5);\n"));
	assert_non_null(strstr(out, "ALTER COLUMN c SET (n_distinct=-1);\n"));
	assert_non_null(strstr(out, "ALTER COLUMN d SET (pg_attver=x1);\n")); /* not digits: kept */
	assert_non_null(strstr(out, "ALTER COLUMN e SET (n_distinct=2);\n"));
	assert_non_null(strstr(out, "SELECT 'ALTER COLUMN x SET (pg_attver=1);';\n"));
	assert_null(strstr(out, "COLUMN f "));
	assert_true(out[n - 1] == '\n'); /* the last (unterminated) line was dropped */
	/* without drop_create the CREATE DATABASE stays, byte for byte */
	n = hm_major_filter_predata(in, strlen(in), 0, out, &dropped);
	assert_non_null(strstr(out, "CREATE DATABASE hj WITH TEMPLATE = template0 ENCODING = 'UTF8';\n"));
	assert_int_equal(dropped, 4);
	/* nothing to change: the same bytes, empty lines included (a function body keeps them) */
	const char *plain =
		"CREATE TABLE t (a int);\n\n\nALTER TABLE ONLY t ALTER COLUMN a SET (n_distinct=1);\n\n";
	n = hm_major_filter_predata(plain, strlen(plain), 0, out, &dropped);
	assert_int_equal(dropped, 0);
	assert_string_equal(out, plain);
	n = hm_major_filter_predata("", 0, 1, out, &dropped);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
}

static void test_locale_map(void **state)
{
	(void)state;
	char map[64] = "", out[32];
	hm_error err = {0};
	assert_int_equal(hm_major_locale_map_add(map, sizeof map, "en_US.UTF-8=C.UTF-8", &err), 0);
	assert_int_equal(hm_major_locale_map_add(map, sizeof map, "de_DE.utf8=C", &err), 0);
	assert_string_equal(map, "en_US.UTF-8=C.UTF-8\nde_DE.utf8=C\n");
	assert_int_equal(hm_major_locale_map_lookup(map, "en_US.utf8", out, sizeof out), 1);
	assert_string_equal(out, "C.UTF-8");
	assert_int_equal(hm_major_locale_map_lookup(map, "de_DE.UTF-8", out, sizeof out), 1);
	assert_string_equal(out, "C");
	assert_int_equal(hm_major_locale_map_lookup(map, "fr_FR.UTF-8", out, sizeof out), 0);
	assert_int_equal(hm_major_locale_map_lookup(NULL, "fr_FR.UTF-8", out, sizeof out), 0);
	const char *bad[] = {"", "=", "a=", "=b", "a=b=c", "a b=c", "a=b'", "a=\"b\"", "a\\=b", "a=b\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(hm_major_locale_map_add(map, sizeof map, bad[i], &err), -1);
		assert_int_equal(err.code, HM_EXIT_USAGE);
	}
	/* full */
	assert_int_equal(hm_major_locale_map_add(map, sizeof map, "xx_XX.UTF-8=yy_YY.UTF-8-long-name", &err),
			 -1);
	assert_true(hm_major_locale_same("C.UTF-8", "C.utf8"));
	assert_false(hm_major_locale_same("C.UTF-8", "en_US.UTF-8"));
}

static void test_fail_point(void **state)
{
	(void)state;
	hm_error err = {0};
	unsetenv("HIVE_MIGRATE_FAIL");
	unsetenv("HIVE_MIGRATE_PAUSE");
	assert_int_equal(hm_major_fail_point("major:after:dump", &err), 0);
	setenv("HIVE_MIGRATE_FAIL", "major:after:dump", 1);
	assert_int_equal(hm_major_fail_point("major:after:init", &err), 0);
	assert_int_equal(hm_major_fail_point("major:after:dump", &err), -1);
	assert_non_null(strstr(err.message, "major:after:dump"));
	unsetenv("HIVE_MIGRATE_FAIL");
}

static void test_lists(void **state)
{
	(void)state;
	const char *ext = "plpgsql\nvector\npg_trgm";
	assert_true(hm_pf_list_has(ext, "vector", 0));
	assert_true(hm_pf_list_has(ext, "pg_trgm", 0));
	assert_false(hm_pf_list_has(ext, "postgis", 0));
	assert_false(hm_pf_list_has(ext, "vec", 0));
	assert_false(hm_pf_list_has(NULL, "vector", 0));
	assert_false(hm_pf_list_has("", "vector", 0));
	const char *loc = "C\nC.utf8\nPOSIX\nen_US.utf8\n";
	assert_true(hm_pf_list_has(loc, "C.UTF-8", 1));
	assert_true(hm_pf_list_has(loc, "en_US.UTF-8", 1));
	assert_true(hm_pf_list_has(loc, "en_US.utf8", 1));
	assert_false(hm_pf_list_has(loc, "de_DE.UTF-8", 1));
	assert_false(hm_pf_list_has(loc, "en_us.utf8", 1)); /* the language part is case-sensitive */
	char longline[600];
	memset(longline, 'a', sizeof longline - 1);
	longline[sizeof longline - 1] = '\0';
	assert_false(hm_pf_list_has(longline, "aaaa", 0));
}

static json_object *fp(const char *vector_version, const char *digest)
{
	char buf[512];
	snprintf(buf, sizeof buf,
		 "{\"databases\":{\"hive_agent\":{\"tables\":{\"agno.kb\":{\"rows\":3,\"digest\":\"%s\"}},"
		 "\"extensions\":{\"vector\":\"%s\",\"plpgsql\":\"1.0\"}}},\"total_rows\":3}",
		 digest, vector_version);
	return json_tokener_parse(buf);
}

static void test_fingerprint_cross_major(void **state)
{
	(void)state;
	hm_error err = {0};
	json_object *a = fp("0.7.4", "-12"), *b = fp("0.8.0", "-12"), *c = fp("0.8.0", "-13"),
		    *d = fp("0.7.0", "-12");
	assert_int_equal(hm_fingerprint_compare(a, b, &err), -1); /* same major: versions must match */
	assert_int_equal(hm_fingerprint_compare_ex(a, b, HM_FP_CROSS_MAJOR, &err), 0);
	assert_int_equal(hm_fingerprint_compare_ex(a, c, HM_FP_CROSS_MAJOR, &err), -1);
	assert_non_null(strstr(err.message, "digest"));
	assert_int_equal(hm_fingerprint_compare_ex(a, d, HM_FP_CROSS_MAJOR, &err), -1); /* never older */
	assert_int_equal(hm_fingerprint_compare_ex(b, b, 0, &err), 0);
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	json_object_put(d);
}

static void test_journal_fields(void **state)
{
	(void)state;
	hm_journal j, k;
	hm_error err = {0};
	char *s = NULL;
	hm_journal_init(&j, "agent", "/srv/hive");
	j.cross_major = 1;
	j.old_major = 15;
	snprintf(j.major_step, sizeof j.major_step, "dumped");
	snprintf(j.new_data_dir, sizeof j.new_data_dir, "/srv/hive/data/postgres-agent.pg17-new");
	snprintf(j.old_data_dir, sizeof j.old_data_dir, "/srv/hive/data/postgres-agent.pg15-old");
	snprintf(j.dump_dir, sizeof j.dump_dir, "/srv/hive/.hive-migrate/dump-agent");
	assert_int_equal(hm_journal_encode(&j, &s, &err), 0);
	assert_non_null(strstr(s, "\"cross_major\""));
	assert_int_equal(hm_journal_decode(s, "t", &k, &err), 0);
	assert_int_equal(k.cross_major, 1);
	assert_int_equal(k.old_major, 15);
	assert_string_equal(k.major_step, "dumped");
	assert_string_equal(k.old_data_dir, j.old_data_dir);
	assert_string_equal(k.new_data_dir, j.new_data_dir);
	assert_string_equal(k.dump_dir, j.dump_dir);
	free(s);
	/* a journal without them (same major, or written before): defaults */
	hm_journal_init(&j, "agent", "/srv/hive");
	assert_int_equal(hm_journal_encode(&j, &s, &err), 0);
	char *p = strstr(s, "\"cross_major\"");
	assert_non_null(p);
	memcpy(p, "\"xross_major\"", 13);
	assert_int_equal(hm_journal_decode(s, "t", &k, &err), 0);
	assert_int_equal(k.cross_major, 0);
	assert_string_equal(k.major_step, "");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_supported),
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_dir_names),
		cmocka_unit_test(test_estimate),
		cmocka_unit_test(test_fail_point),
		cmocka_unit_test(test_filter_globals),
		cmocka_unit_test(test_locale_map),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_filter_predata),
		cmocka_unit_test(test_index_memory),
		cmocka_unit_test(test_fingerprint_cross_major),
		cmocka_unit_test(test_journal_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
