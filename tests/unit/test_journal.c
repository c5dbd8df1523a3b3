/* The migration journal: encode/decode round trip, strict decoding, atomic save/load, and
 * the resume state machine (what a new `up` does after each kind of interruption). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../migrate/journal.h"

static void test_names_round_trip(void **state)
{
	(void)state;
	for (int s = 0; s < HM_STEP__COUNT; s++)
		assert_int_equal(hm_step_from_name(hm_step_name((hm_step)s)), s);
	for (int s = 0; s < HM_RB__COUNT; s++)
		assert_int_equal(hm_rb_step_from_name(hm_rb_step_name((hm_rb_step)s)), s);
	for (int s = 0; s < HM_JS__COUNT; s++)
		assert_int_equal(hm_jstatus_from_name(hm_jstatus_name((hm_jstatus)s)), s);
	assert_int_equal(hm_step_from_name("nonsense"), -1);
	assert_int_equal(hm_step_from_name(NULL), -1);
}

static void test_encode_decode(void **state)
{
	(void)state;
	hm_journal a, b;
	hm_error err = {0};
	char *s = NULL;
	hm_journal_init(&a, "agent", "/srv/stack");
	a.step = HM_STEP_CHOWNING;
	a.rb_step = HM_RB_EXTRACTED;
	a.status = HM_JS_ROLLING_BACK;
	a.stopped_at = 1700000000.25;
	a.api_port = 44886;
	a.pg_port = 44532;
	snprintf(a.backup_id, sizeof a.backup_id, "0b8e2f6c-1111-4222-8333-944455556666");
	snprintf(a.archive, sizeof a.archive, "/srv/stack/.hive-migrate/archives/x.tar.zst");
	snprintf(a.failure, sizeof a.failure, "step snapshotted: \"quoted\" \\ text");
	assert_int_equal(hm_journal_encode(&a, &s, &err), 0);
	assert_int_equal(hm_journal_decode(s, "test", &b, &err), 0);
	free(s);
	assert_int_equal(b.step, HM_STEP_CHOWNING);
	assert_int_equal(b.rb_step, HM_RB_EXTRACTED);
	assert_int_equal(b.status, HM_JS_ROLLING_BACK);
	assert_int_equal(b.api_port, 44886);
	assert_int_equal(b.pg_port, 44532);
	assert_true(b.stopped_at > 1700000000.2 && b.stopped_at < 1700000000.3);
	assert_string_equal(b.profile, "agent");
	assert_string_equal(b.backup_id, a.backup_id);
	assert_string_equal(b.archive, a.archive);
	assert_string_equal(b.failure, a.failure);
}

static void test_decode_strict(void **state)
{
	(void)state;
	static const char *bad[] = {
		"", "[]", "{\"version\":2}",
		"{\"version\":1,\"step\":\"flying\",\"status\":\"done\",\"rollback_step\":\"none\"}",
		"{\"version\":1,\"step\":\"done\",\"status\":\"maybe\",\"rollback_step\":\"none\"}",
		/* all names right but the string fields missing */
		"{\"version\":1,\"step\":\"done\",\"status\":\"done\",\"rollback_step\":\"none\"}",
		"{\"version\":1,\"step\":\"done\",\"status\":\"done\"", /* truncated */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		hm_journal j;
		hm_error err = {0};
		assert_int_equal(hm_journal_decode(bad[i], "bad", &j, &err), -1);
		assert_int_equal(err.code, HM_EXIT_CORRUPT);
		assert_non_null(strstr(err.message, "journal \"bad\""));
	}
}

static void test_save_load(void **state)
{
	(void)state;
	char dir[] = "/tmp/hm-test-journal-XXXXXX", path[256];
	hm_journal a, b;
	hm_error err = {0};
	struct stat st;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(hm_journal_path(dir, "genie", path, sizeof path, &err), 0);
	assert_non_null(strstr(path, "journal-genie.json"));
	assert_int_equal(hm_journal_load(path, &b, &err), 1); /* none yet */
	hm_journal_init(&a, "genie", dir);
	a.step = HM_STEP_SNAPSHOTTED;
	assert_int_equal(hm_journal_save(path, &a, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(hm_journal_load(path, &b, &err), 0);
	assert_int_equal(b.step, HM_STEP_SNAPSHOTTED);
	/* a damaged journal is an error, not "no journal" */
	FILE *f = fopen(path, "w");
	fputs("{\"version\":1,", f);
	fclose(f);
	assert_int_equal(hm_journal_load(path, &b, &err), -1);
	unlink(path);
	rmdir(dir);
}

/* The resume state machine as a table: (status, step) -> action. */
static void test_resume_table(void **state)
{
	(void)state;
	static const struct {
		hm_jstatus status;
		hm_step step;
		hm_resume want;
	} cases[] = {
		{HM_JS_IN_PROGRESS, HM_STEP_START, HM_RESUME_RESTART},
		{HM_JS_IN_PROGRESS, HM_STEP_FINGERPRINTED, HM_RESUME_RESTART},
		{HM_JS_IN_PROGRESS, HM_STEP_STOPPING, HM_RESUME_CONTINUE},
		{HM_JS_IN_PROGRESS, HM_STEP_STOPPED, HM_RESUME_CONTINUE},
		{HM_JS_IN_PROGRESS, HM_STEP_SNAPSHOTTED, HM_RESUME_CONTINUE},
		{HM_JS_IN_PROGRESS, HM_STEP_CHOWNING, HM_RESUME_CONTINUE},
		{HM_JS_IN_PROGRESS, HM_STEP_CHOWNED, HM_RESUME_CONTINUE},
		{HM_JS_IN_PROGRESS, HM_STEP_UNIFIED_STARTING, HM_RESUME_CONTINUE},
		{HM_JS_IN_PROGRESS, HM_STEP_VERIFIED, HM_RESUME_CONTINUE},
		{HM_JS_IN_PROGRESS, HM_STEP_DONE, HM_RESUME_ALREADY_DONE},
		{HM_JS_DONE, HM_STEP_DONE, HM_RESUME_ALREADY_DONE},
		{HM_JS_ROLLING_BACK, HM_STEP_CHOWNED, HM_RESUME_NEED_ROLLBACK},
		{HM_JS_ROLLBACK_FAILED, HM_STEP_VERIFIED, HM_RESUME_NEED_ROLLBACK},
		{HM_JS_ROLLED_BACK, HM_STEP_SNAPSHOTTED, HM_RESUME_FRESH},
		{HM_JS_ROLLED_BACK, HM_STEP_DONE, HM_RESUME_FRESH},
	};
	assert_int_equal(hm_journal_resume_action(NULL), HM_RESUME_FRESH);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		hm_journal j;
		hm_journal_init(&j, "agent", "/s");
		j.status = cases[i].status;
		j.step = cases[i].step;
		print_message("status %s step %s\n", hm_jstatus_name(j.status), hm_step_name(j.step));
		assert_int_equal(hm_journal_resume_action(&j), cases[i].want);
	}
}

/* Rollback restores the snapshot exactly when the unified container may have written. */
static void test_needs_restore(void **state)
{
	(void)state;
	hm_journal j;
	hm_journal_init(&j, "agent", "/s");
	for (int s = 0; s < HM_STEP__COUNT; s++) {
		j.step = (hm_step)s;
		assert_int_equal(hm_journal_needs_restore(&j), s >= HM_STEP_UNIFIED_STARTING);
	}
}

/* Issue 11's fields round-trip; a journal without them (older) decodes with defaults; bad
 * values are refused. */
static void test_rollback_fields(void **state)
{
	(void)state;
	hm_journal a, b;
	hm_error err = {0};
	char *s = NULL;
	for (int i = 0; i < HM_RBM__COUNT; i++)
		assert_int_equal(hm_rb_mode_from_name(hm_rb_mode_name((hm_rb_mode)i)), i);
	for (int i = 0; i < HM_LIVE__COUNT; i++)
		assert_int_equal(hm_live_step_from_name(hm_live_step_name((hm_live_step)i)), i);
	hm_journal_init(&a, "genie", "/srv/s");
	a.status = HM_JS_ROLLING_BACK;
	a.rb_mode = HM_RBM_LIVE;
	a.live_step = HM_LIVE_OWNERS_RESTORED;
	a.safety_done = 1;
	a.cross_major = 1;
	snprintf(a.safety_archive, sizeof a.safety_archive,
		 "/srv/s/.hive-migrate/archives/rollback-safety-x.tar.zst");
	snprintf(a.unified_fingerprint_file, sizeof a.unified_fingerprint_file, "/srv/s/fp-unified.json");
	snprintf(a.unified_stop_state, sizeof a.unified_stop_state, "in production");
	snprintf(a.settings_dir, sizeof a.settings_dir, "/srv/s/.hive-migrate/settings-genie");
	assert_int_equal(hm_journal_encode(&a, &s, &err), 0);
	/* names, not numbers, in the file */
	assert_non_null(strstr(s, "\"rollback_mode\""));
	assert_non_null(strstr(s, "\"owners-restored\""));
	assert_non_null(strstr(s, "\"cross_major\""));
	assert_int_equal(hm_journal_decode(s, "t", &b, &err), 0);
	free(s);
	assert_int_equal(b.rb_mode, HM_RBM_LIVE);
	assert_int_equal(b.live_step, HM_LIVE_OWNERS_RESTORED);
	assert_int_equal(b.safety_done, 1);
	assert_int_equal(b.cross_major, 1);
	assert_string_equal(b.safety_archive, a.safety_archive);
	assert_string_equal(b.unified_fingerprint_file, a.unified_fingerprint_file);
	assert_string_equal(b.unified_stop_state, "in production");
	assert_string_equal(b.settings_dir, a.settings_dir);

	/* a journal written before these keys existed */
	const char *old = "{\"version\":1,\"step\":\"done\",\"status\":\"done\",\"rollback_step\":\"none\","
			  "\"profile\":\"agent\",\"stack_dir\":\"/s\",\"backup_id\":\"\",\"archive\":\"\","
			  "\"manifest_sha256\":\"\",\"data_dir\":\"/d\",\"pgdata\":\"/d/pgdata\","
			  "\"fingerprint_file\":\"\",\"chown_file\":\"\",\"env_file\":\"\","
			  "\"template_file\":\"\",\"unified_project\":\"\",\"unified_container\":\"u\","
			  "\"image\":\"\",\"restore_dir\":\"\",\"displaced_dir\":\"\",\"failure\":\"\"}";
	assert_int_equal(hm_journal_decode(old, "old", &b, &err), 0);
	assert_int_equal(b.rb_mode, HM_RBM_NONE);
	assert_int_equal(b.live_step, HM_LIVE_NONE);
	assert_int_equal(b.cross_major, 0);
	assert_int_equal(b.safety_done, 0);
	assert_string_equal(b.settings_dir, "");
	assert_int_equal(hm_journal_rollback_mode(&b, 0), HM_RBM_LIVE);

	/* strict when present */
	char bad[4096];
	snprintf(bad, sizeof bad, "%.*s,\"rollback_mode\":\"sideways\"}", (int)strlen(old) - 1, old);
	assert_int_equal(hm_journal_decode(bad, "bad", &b, &err), -1);
	assert_int_equal(err.code, HM_EXIT_CORRUPT);
	snprintf(bad, sizeof bad, "%.*s,\"live_step\":7}", (int)strlen(old) - 1, old);
	assert_int_equal(hm_journal_decode(bad, "bad", &b, &err), -1);
}

/* The snapshot in an object store (issue 12): location and non-secret options round-trip;
 * a journal without them has a local snapshot. */
static void test_snapshot_repo_fields(void **state)
{
	(void)state;
	hm_journal a, b;
	hm_error err = {0};
	char *s = NULL;
	hm_journal_init(&a, "agent", "/srv/s");
	snprintf(a.snapshot_repo, sizeof a.snapshot_repo, "s3://hive-backups/migration");
	snprintf(a.backup_id, sizeof a.backup_id, "20261203T171532.301Z-4bd89bd6");
	snprintf(a.archive, sizeof a.archive, "s3://hive-backups/migration/%s/data.tar.zst", a.backup_id);
	snprintf(a.snapshot_s3_endpoint, sizeof a.snapshot_s3_endpoint, "https://s3.example.net:8443");
	snprintf(a.snapshot_s3_region, sizeof a.snapshot_s3_region, "eu-west-1");
	snprintf(a.snapshot_s3_uri_style, sizeof a.snapshot_s3_uri_style, "path");
	snprintf(a.snapshot_s3_ca_file, sizeof a.snapshot_s3_ca_file, "/etc/hive/ca.pem");
	assert_int_equal(hm_journal_encode(&a, &s, &err), 0);
	assert_int_equal(hm_journal_decode(s, "t", &b, &err), 0);
	free(s);
	assert_string_equal(b.snapshot_repo, a.snapshot_repo);
	assert_string_equal(b.backup_id, a.backup_id);
	assert_string_equal(b.archive, a.archive);
	assert_string_equal(b.snapshot_s3_endpoint, a.snapshot_s3_endpoint);
	assert_string_equal(b.snapshot_s3_region, "eu-west-1");
	assert_string_equal(b.snapshot_s3_uri_style, "path");
	assert_string_equal(b.snapshot_s3_ca_file, "/etc/hive/ca.pem");
	const char *old = "{\"version\":1,\"step\":\"done\",\"status\":\"done\",\"rollback_step\":\"none\","
			  "\"profile\":\"agent\",\"stack_dir\":\"/s\",\"backup_id\":\"\",\"archive\":\"/a\","
			  "\"manifest_sha256\":\"\",\"data_dir\":\"/d\",\"pgdata\":\"/d/pgdata\","
			  "\"fingerprint_file\":\"\",\"chown_file\":\"\",\"env_file\":\"\","
			  "\"template_file\":\"\",\"unified_project\":\"\",\"unified_container\":\"u\","
			  "\"image\":\"\",\"restore_dir\":\"\",\"displaced_dir\":\"\",\"failure\":\"\"}";
	assert_int_equal(hm_journal_decode(old, "old", &b, &err), 0);
	assert_string_equal(b.snapshot_repo, "");
	assert_string_equal(b.snapshot_s3_endpoint, "");
}

/* Which rollback runs, by journal state and --to-snapshot. */
static void test_rollback_mode(void **state)
{
	(void)state;
	hm_journal j;
	hm_journal_init(&j, "agent", "/s");
	/* during or right after a failed up: today's rollback */
	j.status = HM_JS_IN_PROGRESS;
	j.step = HM_STEP_VERIFIED;
	assert_int_equal(hm_journal_rollback_mode(&j, 0), HM_RBM_NONE);
	assert_int_equal(hm_journal_rollback_mode(&j, 1), HM_RBM_NONE);
	/* after a completed migration: live by default */
	j.status = HM_JS_DONE;
	j.step = HM_STEP_DONE;
	assert_int_equal(hm_journal_rollback_mode(&j, 0), HM_RBM_LIVE);
	assert_int_equal(hm_journal_rollback_mode(&j, 1), HM_RBM_SNAPSHOT);
	/* cross-major: never live */
	j.cross_major = 1;
	assert_int_equal(hm_journal_rollback_mode(&j, 0), HM_RBM_SNAPSHOT);
	j.cross_major = 0;
	/* resumes keep their mode; a live one may still become a snapshot one */
	j.status = HM_JS_ROLLING_BACK;
	j.rb_mode = HM_RBM_LIVE;
	assert_int_equal(hm_journal_rollback_mode(&j, 0), HM_RBM_LIVE);
	assert_int_equal(hm_journal_rollback_mode(&j, 1), HM_RBM_SNAPSHOT);
	j.status = HM_JS_ROLLBACK_FAILED;
	j.rb_mode = HM_RBM_SNAPSHOT;
	assert_int_equal(hm_journal_rollback_mode(&j, 0), HM_RBM_SNAPSHOT);
	j.rb_mode = HM_RBM_NONE; /* an automatic rollback of up that failed */
	assert_int_equal(hm_journal_rollback_mode(&j, 0), HM_RBM_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_round_trip),     cmocka_unit_test(test_encode_decode),
		cmocka_unit_test(test_decode_strict),	     cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_resume_table),	     cmocka_unit_test(test_needs_restore),
		cmocka_unit_test(test_rollback_fields),	     cmocka_unit_test(test_rollback_mode),
		cmocka_unit_test(test_snapshot_repo_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
