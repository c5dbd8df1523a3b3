/* Unit tests of the preflight rule engine (hm_preflight_evaluate) as a table of scenarios:
 * facts in, verdict and problem codes out. Plus the helpers around it (version compare,
 * tables, verdict -> exit code, JSON shape). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../common/exitcode.h"
#include "../../migrate/preflight.h"

/* A clean PostgreSQL 17 cluster, shut down, owned by the target uid, plenty of disk. */
static hm_preflight_facts baseline(void)
{
	hm_preflight_facts f;
	memset(&f, 0, sizeof f);
	f.pg_version = 17;
	f.have_control = 1;
	f.control.major = 17;
	f.control.pg_control_version = 1700;
	f.control.catalog_version_no = 202406281u;
	f.control.state = HM_DB_SHUTDOWNED;
	f.control.blcksz = 8192;
	f.control.xlog_blcksz = 8192;
	f.control.xlog_seg_size = 16u << 20;
	f.control.max_align = 8;
	f.control.name_data_len = 64;
	f.control.index_max_keys = 32;
	f.control.toast_max_chunk_size = 1996;
	f.control.loblksize = 2048;
	f.control.relseg_size = 131072;
	f.control.float8_by_val = 1;
	f.control.default_char_signedness = -1;
	f.target_major = 17;
	f.target_catalog = 202406281u;
	snprintf(f.target_pgvector, sizeof f.target_pgvector, "0.8.0");
	f.target_uid = 1000;
	f.have_stat = 1;
	f.data_uid = 1000;
	f.data_mode = 0700;
	f.have_disk = 1;
	f.data_bytes = 1000u << 20;
	f.free_bytes = 50000ull << 20;
	snprintf(f.disk_path, sizeof f.disk_path, "/srv");
	return f;
}

typedef struct scenario {
	const char *name;
	void (*mutate)(hm_preflight_facts *f);
	hm_verdict verdict;
	const char *codes[4]; /* expected problem codes, exactly these (NULL-terminated) */
} scenario;

static const hm_ext_info EXT_SAME[] = {{"hive_agent", "vector", "0.8.0"}, {"hive_agent", "plpgsql", "1.0"}};
static const hm_ext_info EXT_NEWER[] = {{"hive_agent", "vector", "0.8.1"}};
static const hm_ext_info EXT_OLDER[] = {{"hive_agent", "vector", "0.7.4"}, {"other", "vector", "0.8.0"}};

static void m_none(hm_preflight_facts *f)
{
	(void)f;
}
static void m_pg15(hm_preflight_facts *f)
{
	f->pg_version = 15, f->control.major = 15, f->control.pg_control_version = 1300;
	f->control.catalog_version_no = 202209061u;
}
static void m_pg18(hm_preflight_facts *f)
{
	f->pg_version = 18, f->control.major = 18, f->control.pg_control_version = 1800;
	f->control.catalog_version_no = 202506291u;
}
static void m_pg12(hm_preflight_facts *f)
{
	f->pg_version = 12, f->control.major = 12, f->control.pg_control_version = 1201;
	f->control.catalog_version_no = 201909212u;
}
static void m_target18(hm_preflight_facts *f)
{
	f->target_major = 18, f->target_catalog = 202506291u;
	snprintf(f->target_pgvector, sizeof f->target_pgvector, "0.8.7");
}
static void m_catalog(hm_preflight_facts *f)
{
	f->control.catalog_version_no = 202406111u;
}
static void m_pgversion(hm_preflight_facts *f)
{
	f->pg_version = 16;
}
static void m_blcksz(hm_preflight_facts *f)
{
	f->control.blcksz = 16384;
}
static void m_walblk(hm_preflight_facts *f)
{
	f->control.xlog_blcksz = 4096;
}
static void m_walseg(hm_preflight_facts *f)
{
	f->control.xlog_seg_size = 64u << 20;
}
static void m_namelen(hm_preflight_facts *f)
{
	f->control.name_data_len = 128;
}
static void m_crashed(hm_preflight_facts *f)
{
	f->control.state = HM_DB_IN_PRODUCTION;
}
static void m_crash_recovery(hm_preflight_facts *f)
{
	f->control.state = HM_DB_IN_CRASH_RECOVERY;
}
static void m_running(hm_preflight_facts *f)
{
	f->control.state = HM_DB_IN_PRODUCTION, f->server_running = 1, f->postmaster_pid = 42;
}
static void m_running_clean(hm_preflight_facts *f)
{
	f->server_running = 1;
}
static void m_standby(hm_preflight_facts *f)
{
	f->control.state = HM_DB_SHUTDOWNED_IN_RECOVERY;
}
static void m_uid999(hm_preflight_facts *f)
{
	f->data_uid = 999;
}
static void m_uid999_target999(hm_preflight_facts *f)
{
	f->data_uid = 999, f->target_uid = 999;
}
static void m_mode750(hm_preflight_facts *f)
{
	f->data_mode = 0750;
}
static void m_mode755(hm_preflight_facts *f)
{
	f->data_mode = 0755;
}
static void m_tblspc(hm_preflight_facts *f)
{
	f->n_tablespaces_outside = 1;
	snprintf(f->tablespace_outside, sizeof f->tablespace_outside, "16384 -> /mnt/ts");
}
static void m_disk_warn(hm_preflight_facts *f)
{
	f->free_bytes = 500u << 20;
}
static void m_disk_bad(hm_preflight_facts *f)
{
	f->free_bytes = 100u << 20;
}
static void m_disk_edge(hm_preflight_facts *f)
{
	f->free_bytes = f->data_bytes;
}
static void m_nodisk(hm_preflight_facts *f)
{
	f->have_disk = 0, f->free_bytes = 0;
}
static void m_ext_same(hm_preflight_facts *f)
{
	f->extensions = EXT_SAME, f->n_extensions = 2;
}
static void m_ext_newer(hm_preflight_facts *f)
{
	f->extensions = EXT_NEWER, f->n_extensions = 1;
}
static void m_ext_older(hm_preflight_facts *f)
{
	f->extensions = EXT_OLDER, f->n_extensions = 2;
}
static void m_ext_unknown_target(hm_preflight_facts *f)
{
	f->extensions = EXT_NEWER, f->n_extensions = 1, f->target_pgvector[0] = '\0';
}
static void m_no_control(hm_preflight_facts *f)
{
	f->have_control = 0, f->pg_version = 0;
}
static void m_many(hm_preflight_facts *f)
{
	m_pg15(f), m_uid999(f), m_crashed(f);
}
static const hm_ext_info EXT_MISSING[] = {{"hive_agent", "vector", "0.8.0"},
					  {"hive_agent", "postgis", "3.4.2"}};
static void m_major_ext_missing(hm_preflight_facts *f)
{
	m_pg15(f);
	f->extensions = EXT_MISSING, f->n_extensions = 2;
	f->target_extensions = "plpgsql\nvector\npg_trgm\n";
}
static void m_major_ext_newer(hm_preflight_facts *f)
{
	m_pg15(f);
	f->extensions = EXT_NEWER, f->n_extensions = 1;
}
static void m_major_ext_older(hm_preflight_facts *f)
{
	m_pg15(f);
	f->extensions = EXT_OLDER, f->n_extensions = 2; /* updated by the new cluster: no warning */
}
static void m_major_locale(hm_preflight_facts *f)
{
	m_pg15(f);
	snprintf(f->locale_problem, sizeof f->locale_problem,
		 "database \"x\" has LC_COLLATE \"de_DE.UTF-8\"");
}
static void m_major_md5(hm_preflight_facts *f)
{
	m_pg15(f);
	f->n_md5_roles = 2;
	snprintf(f->md5_role, sizeof f->md5_role, "legacy");
}
static void m_major_disk(hm_preflight_facts *f)
{
	m_pg15(f);
	f->free_bytes = f->data_bytes + (f->data_bytes / 2); /* enough for a snapshot, not the copy */
}
static void m_major_tablespace(hm_preflight_facts *f)
{
	m_pg15(f);
	f->n_tablespaces_outside = 1;
	snprintf(f->tablespace_outside, sizeof f->tablespace_outside, "/srv/ts");
}

static const scenario SCENARIOS[] = {
	{"clean 17 -> 17", m_none, HM_VERDICT_COMPATIBLE, {NULL}},
	{"15 -> 17", m_pg15, HM_VERDICT_WARNINGS, {"major-upgrade", NULL}},
	{"17 -> 18", m_target18, HM_VERDICT_WARNINGS, {"major-upgrade", NULL}},
	{"18 -> 17 (newer)", m_pg18, HM_VERDICT_INCOMPATIBLE, {"major-mismatch", NULL}},
	{"12 -> 17 (too old)", m_pg12, HM_VERDICT_INCOMPATIBLE, {"major-mismatch", NULL}},
	{"15 -> 17, extension missing",
	 m_major_ext_missing,
	 HM_VERDICT_INCOMPATIBLE,
	 {"major-upgrade", "extension-missing", NULL}},
	{"15 -> 17, pgvector newer",
	 m_major_ext_newer,
	 HM_VERDICT_INCOMPATIBLE,
	 {"major-upgrade", "extension-newer", NULL}},
	{"15 -> 17, pgvector older", m_major_ext_older, HM_VERDICT_WARNINGS, {"major-upgrade", NULL}},
	{"15 -> 17, locale",
	 m_major_locale,
	 HM_VERDICT_INCOMPATIBLE,
	 {"major-upgrade", "locale-missing", NULL}},
	{"15 -> 17, md5", m_major_md5, HM_VERDICT_WARNINGS, {"major-upgrade", "md5-passwords", NULL}},
	{"15 -> 17, disk", m_major_disk, HM_VERDICT_INCOMPATIBLE, {"major-upgrade", "low-disk-major", NULL}},
	{"15 -> 17, tablespace",
	 m_major_tablespace,
	 HM_VERDICT_INCOMPATIBLE,
	 {"major-upgrade", "tablespace-outside", NULL}},
	{"17 beta catalog", m_catalog, HM_VERDICT_INCOMPATIBLE, {"catalog-mismatch", NULL}},
	{"PG_VERSION disagrees", m_pgversion, HM_VERDICT_ERROR, {"pg-version-mismatch", NULL}},
	{"block size", m_blcksz, HM_VERDICT_INCOMPATIBLE, {"block-size", NULL}},
	{"WAL block size", m_walblk, HM_VERDICT_INCOMPATIBLE, {"wal-block-size", NULL}},
	{"WAL segment size", m_walseg, HM_VERDICT_INCOMPATIBLE, {"wal-segment-size", NULL}},
	{"namedatalen", m_namelen, HM_VERDICT_INCOMPATIBLE, {"build-option", NULL}},
	{"crashed", m_crashed, HM_VERDICT_INCOMPATIBLE, {"crashed", NULL}},
	{"in crash recovery, no server", m_crash_recovery, HM_VERDICT_INCOMPATIBLE, {"crashed", NULL}},
	{"server running", m_running, HM_VERDICT_WARNINGS, {"server-running", NULL}},
	{"server running, state still clean", m_running_clean, HM_VERDICT_COMPATIBLE, {NULL}},
	{"standby", m_standby, HM_VERDICT_WARNINGS, {"standby", NULL}},
	{"split uid 999", m_uid999, HM_VERDICT_WARNINGS, {"owner-uid", NULL}},
	{"uid 999 target 999", m_uid999_target999, HM_VERDICT_COMPATIBLE, {NULL}},
	{"mode 0750", m_mode750, HM_VERDICT_COMPATIBLE, {NULL}},
	{"mode 0755", m_mode755, HM_VERDICT_WARNINGS, {"mode", NULL}},
	{"tablespace outside", m_tblspc, HM_VERDICT_INCOMPATIBLE, {"tablespace-outside", NULL}},
	{"disk below size", m_disk_warn, HM_VERDICT_WARNINGS, {"low-disk", NULL}},
	{"disk below a quarter", m_disk_bad, HM_VERDICT_INCOMPATIBLE, {"low-disk", NULL}},
	{"disk exactly size", m_disk_edge, HM_VERDICT_COMPATIBLE, {NULL}},
	{"disk unknown", m_nodisk, HM_VERDICT_COMPATIBLE, {NULL}},
	{"pgvector same", m_ext_same, HM_VERDICT_COMPATIBLE, {NULL}},
	{"pgvector newer", m_ext_newer, HM_VERDICT_INCOMPATIBLE, {"extension-newer", NULL}},
	{"pgvector older", m_ext_older, HM_VERDICT_WARNINGS, {"extension-older", NULL}},
	{"pgvector, target unknown", m_ext_unknown_target, HM_VERDICT_COMPATIBLE, {NULL}},
	{"no control data", m_no_control, HM_VERDICT_COMPATIBLE, {NULL}},
	{"several at once", m_many, HM_VERDICT_INCOMPATIBLE, {"major-upgrade", "crashed", NULL}},
};

static void test_scenarios(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof SCENARIOS / sizeof SCENARIOS[0]; i++) {
		const scenario *s = &SCENARIOS[i];
		hm_preflight_facts f = baseline();
		hm_preflight_report r;
		memset(&r, 0, sizeof r);
		s->mutate(&f);
		assert_int_equal(hm_preflight_evaluate(&f, &r), 0);
		size_t want = 0;
		while (s->codes[want])
			want++;
		if (r.verdict != s->verdict || r.n_problems != want) {
			for (size_t k = 0; k < r.n_problems; k++)
				print_message("  got %s: %s\n", r.problems[k].code, r.problems[k].message);
			fail_msg("scenario \"%s\": verdict %s with %zu problems, want %s with %zu", s->name,
				 hm_verdict_name(r.verdict), r.n_problems, hm_verdict_name(s->verdict), want);
		}
		for (size_t k = 0; k < want; k++) {
			const hm_problem *p = hm_preflight_find(&r, s->codes[k]);
			if (!p)
				fail_msg("scenario \"%s\": no problem %s", s->name, s->codes[k]);
			assert_true(p->message[0]);
			assert_true(p->hint[0]); /* every problem says what to do */
		}
		hm_preflight_report_free(&r);
	}
}

/* The messages carry what the user needs: the ways forward, the uid change, the fix. */
static void test_messages(void **state)
{
	(void)state;
	hm_preflight_facts f = baseline();
	hm_preflight_report r;
	memset(&r, 0, sizeof r);
	m_pg18(&f);
	m_crashed(&f);
	assert_int_equal(hm_preflight_evaluate(&f, &r), 0);
	const hm_problem *p = hm_preflight_find(&r, "major-mismatch");
	assert_non_null(p);
	assert_non_null(strstr(p->message, "newer than the target"));
	assert_non_null(strstr(p->hint, "hive-unified:18"));
	hm_preflight_report_free(&r);
	f = baseline();
	m_pg12(&f);
	assert_int_equal(hm_preflight_evaluate(&f, &r), 0);
	p = hm_preflight_find(&r, "major-mismatch");
	assert_non_null(p);
	assert_non_null(strstr(p->message, "major upgrade needed"));
	assert_non_null(strstr(p->message, "oldest major"));
	assert_non_null(strstr(p->hint, "pg_dumpall"));
	hm_preflight_report_free(&r);
	f = baseline();
	m_pg15(&f);
	assert_int_equal(hm_preflight_evaluate(&f, &r), 0);
	p = hm_preflight_find(&r, "major-upgrade");
	assert_non_null(p);
	assert_int_equal(p->severity, HM_SEV_WARNING);
	assert_non_null(strstr(p->message, "PostgreSQL 15"));
	assert_non_null(strstr(p->message, "estimated downtime"));
	hm_preflight_report_free(&r);
	f = baseline();
	m_uid999(&f);
	m_crashed(&f);
	assert_int_equal(hm_preflight_evaluate(&f, &r), 0);
	p = hm_preflight_find(&r, "owner-uid");
	assert_non_null(strstr(p->message, "999 -> 1000"));
	assert_int_equal(p->severity, HM_SEV_WARNING);
	p = hm_preflight_find(&r, "crashed");
	assert_non_null(strstr(p->hint, "docker compose stop -t 30"));
	assert_non_null(strstr(p->message, "in production"));
	hm_preflight_report_free(&r);
}

static void test_version_cmp(void **state)
{
	(void)state;
	assert_int_equal(hm_preflight_version_cmp("0.8.0", "0.8.0"), 0);
	assert_true(hm_preflight_version_cmp("0.8.0", "0.8.7") < 0);
	assert_true(hm_preflight_version_cmp("0.8.7", "0.8.0") > 0);
	assert_true(hm_preflight_version_cmp("0.10.0", "0.9.9") > 0);
	assert_true(hm_preflight_version_cmp("0.8", "0.8.1") < 0);
	assert_int_equal(hm_preflight_version_cmp("0.8", "0.8.0"), 0);
	assert_true(hm_preflight_version_cmp("1.0", "0.99") > 0);
}

static void test_tables(void **state)
{
	(void)state;
	assert_int_equal(hm_preflight_catalog_for_major(17), 202406281u);
	assert_int_equal(hm_preflight_catalog_for_major(18), 202506291u);
	assert_int_equal(hm_preflight_catalog_for_major(12), 0);
	assert_string_equal(hm_preflight_pgvector_for_major(17), "0.8.0");
	assert_string_equal(hm_preflight_pgvector_for_major(18), "0.8.7");
	assert_string_equal(hm_preflight_pgvector_for_major(15), "");
	assert_int_equal(hm_preflight_verdict_exit(HM_VERDICT_COMPATIBLE), 0);
	assert_int_equal(hm_preflight_verdict_exit(HM_VERDICT_WARNINGS), HM_EXIT_CHECK_WARNINGS);
	assert_int_equal(hm_preflight_verdict_exit(HM_VERDICT_INCOMPATIBLE), 11);
	assert_int_equal(hm_preflight_verdict_exit(HM_VERDICT_ERROR), 12);
	assert_string_equal(hm_verdict_name(HM_VERDICT_WARNINGS), "warnings");
	assert_string_equal(hm_severity_name(HM_SEV_INCOMPATIBLE), "incompatible");
}

/* JSON: verdict, problems with code/severity/message/hint, control with every field. */
static void test_json_shape(void **state)
{
	(void)state;
	hm_preflight_report r;
	memset(&r, 0, sizeof r);
	r.facts = baseline();
	r.facts.control.system_identifier = 7712637528026718222ull;
	m_uid999(&r.facts);
	assert_int_equal(hm_preflight_evaluate(&r.facts, &r), 0);
	json_object *j = hm_preflight_report_json(&r), *v, *c, *p;
	assert_true(json_object_object_get_ex(j, "verdict", &v));
	assert_string_equal(json_object_get_string(v), "warnings");
	assert_true(json_object_object_get_ex(j, "problems", &p));
	assert_int_equal(json_object_array_length(p), 1);
	json_object *p0 = json_object_array_get_idx(p, 0);
	const char *keys[] = {"code", "severity", "message", "hint"};
	for (size_t i = 0; i < 4; i++)
		assert_true(json_object_object_get_ex(p0, keys[i], &v));
	assert_true(json_object_object_get_ex(j, "control", &c));
	const char *fields[] = {"system_identifier",
				"pg_control_version",
				"catalog_version_no",
				"state",
				"state_name",
				"blcksz",
				"xlog_blcksz",
				"xlog_seg_size",
				"data_checksum_version",
				"max_align",
				"name_data_len",
				"index_max_keys",
				"toast_max_chunk_size",
				"loblksize",
				"float8_by_val",
				"relseg_size",
				"default_char_signedness"};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (!json_object_object_get_ex(c, fields[i], &v))
			fail_msg("control.%s missing", fields[i]);
	json_object_object_get_ex(c, "system_identifier", &v);
	assert_string_equal(json_object_get_string(v), "7712637528026718222");
	assert_true(json_object_object_get_ex(j, "target", &v));
	assert_true(json_object_object_get_ex(j, "pg_version", &v));
	json_object_put(j);
	hm_preflight_report_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenarios),   cmocka_unit_test(test_messages),
		cmocka_unit_test(test_version_cmp), cmocka_unit_test(test_tables),
		cmocka_unit_test(test_json_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
