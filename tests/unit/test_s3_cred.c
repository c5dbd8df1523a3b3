/* backup/storage/s3_cred.c: the credentials file parser, and the order in which sources are
 * tried (environment, shared file with AWS_PROFILE, the option's file), with files that others
 * can read refused. Runs in a temporary HOME; the environment is reset for each case. */
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

#include "../../backup/storage/s3_cred.h"
#include "../../common/fsutil.h"

static char home[256];

static int parse(const char *text, const char *profile, int bare, hm_s3_credentials *c, hm_error *err)
{
	return hm_s3_credentials_parse(text, strlen(text), profile, bare, "test", c, err);
}

static void test_parse_profiles(void **state)
{
	(void)state;
	hm_s3_credentials c;
	hm_error err;
	const char *f = "# comment\n; another\n\n[default]\naws_access_key_id = AKID1\n"
			"aws_secret_access_key=SECRET1\r\nregion = eu-west-1\n"
			"[ backup ]\n  AWS_ACCESS_KEY_ID =AKID2  \naws_secret_access_key= SECRET2\n"
			"aws_session_token = TOKEN2\n";
	assert_int_equal(parse(f, NULL, 0, &c, &err), 0);
	assert_string_equal(c.access_key, "AKID1");
	assert_string_equal(c.secret_key, "SECRET1");
	assert_string_equal(c.session_token, "");
	assert_int_equal(parse(f, "backup", 0, &c, &err), 0);
	assert_string_equal(c.access_key, "AKID2");
	assert_string_equal(c.secret_key, "SECRET2");
	assert_string_equal(c.session_token, "TOKEN2");
	assert_non_null(strstr(c.source, "[backup]"));
	assert_int_equal(parse(f, "other", 0, &c, &err), 1);
	/* Bare keys (no section) count only where allowed (the option's file). */
	const char *bare = "aws_access_key_id = A\naws_secret_access_key = S\n";
	assert_int_equal(parse(bare, NULL, 0, &c, &err), 1);
	assert_int_equal(parse(bare, NULL, 1, &c, &err), 0);
	assert_string_equal(c.secret_key, "S");
}

static void test_parse_refused(void **state)
{
	(void)state;
	hm_s3_credentials c;
	hm_error err;
	static const char *bad[] = {
		"[default]\naws_access_key_id = A\n",				   /* no secret */
		"[default]\naws_secret_access_key = S\n",			   /* no id */
		"[default]\naws_access_key_id = A B\naws_secret_access_key = S\n", /* space inside */
		"[default]\naws_access_key_id =\naws_secret_access_key = S\n",	   /* empty */
		"[default\naws_access_key_id = A\n",				   /* broken section */
		"[default]\njust some words\n",					   /* neither */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&err, 0, sizeof err);
		if (parse(bad[i], NULL, 0, &c, &err) != -1)
			fail_msg("accepted bad credentials file %zu", i);
		assert_int_equal(err.code, HM_EXIT_INPUT);
		/* The message names the file and the line, never a value. */
		assert_null(strstr(err.message, "A B"));
	}
	char nul[] = "[default]\naws_access_key_id = A\0B\naws_secret_access_key = S\n";
	assert_int_equal(hm_s3_credentials_parse(nul, sizeof nul - 1, NULL, 0, "t", &c, &err), -1);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int reset_env(void **state)
{
	(void)state;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	setenv("HOME", home, 1);
	char path[512];
	snprintf(path, sizeof path, "%s/.aws/credentials", home);
	unlink(path);
	return 0;
}

static void test_env_first(void **state)
{
	(void)state;
	hm_s3_credentials c;
	hm_error err;
	char path[512];
	snprintf(path, sizeof path, "%s/.aws/credentials", home);
	write_file(path, "[default]\naws_access_key_id = FILE\naws_secret_access_key = FS\n", 0600);
	setenv("AWS_ACCESS_KEY_ID", "ENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ES", 1);
	setenv("AWS_SESSION_TOKEN", "ET", 1);
	assert_int_equal(hm_s3_credentials_load(NULL, &c, &err), 0);
	assert_string_equal(c.access_key, "ENV");
	assert_string_equal(c.session_token, "ET");
	assert_string_equal(c.source, "environment");
	/* Half a pair in the environment is a mistake, not a reason to look elsewhere. */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(hm_s3_credentials_load(NULL, &c, &err), -1);
	assert_non_null(strstr(err.message, "AWS_SECRET_ACCESS_KEY is not"));
	hm_s3_credentials_wipe(&c);
	assert_string_equal(c.secret_key, "");
}

static void test_shared_then_option(void **state)
{
	(void)state;
	hm_s3_credentials c;
	hm_error err;
	char shared[512], opt[512];
	snprintf(shared, sizeof shared, "%s/.aws/credentials", home);
	snprintf(opt, sizeof opt, "%s/opt-creds", home);
	write_file(opt, "aws_access_key_id = OPT\naws_secret_access_key = OS\n", 0600);
	/* No shared file: the option's file. */
	assert_int_equal(hm_s3_credentials_load(opt, &c, &err), 0);
	assert_string_equal(c.access_key, "OPT");
	/* A shared file comes before it (the order AWS tools use; the option is the fallback). */
	write_file(shared, "[default]\naws_access_key_id = SHARED\naws_secret_access_key = SS\n", 0600);
	assert_int_equal(hm_s3_credentials_load(opt, &c, &err), 0);
	assert_string_equal(c.access_key, "SHARED");
	/* AWS_PROFILE picks the section; absent from the shared file, the option's file is next. */
	setenv("AWS_PROFILE", "backup", 1);
	assert_int_equal(hm_s3_credentials_load(opt, &c, &err), 0);
	assert_string_equal(c.access_key, "OPT");
	assert_int_equal(hm_s3_credentials_load(NULL, &c, &err), -1);
	assert_non_null(strstr(err.message, "AWS_PROFILE"));
	/* AWS_SHARED_CREDENTIALS_FILE names the shared file, which must then exist. */
	unsetenv("AWS_PROFILE");
	setenv("AWS_SHARED_CREDENTIALS_FILE", opt, 1);
	assert_int_equal(hm_s3_credentials_load(NULL, &c, &err), -1); /* bare keys: not a profile */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/creds", 1);
	assert_int_equal(hm_s3_credentials_load(NULL, &c, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
}

static void test_permissions(void **state)
{
	(void)state;
	hm_s3_credentials c;
	hm_error err;
	char shared[512], opt[512];
	snprintf(shared, sizeof shared, "%s/.aws/credentials", home);
	snprintf(opt, sizeof opt, "%s/opt-creds", home);
	write_file(shared, "[default]\naws_access_key_id = SHARED\naws_secret_access_key = SS\n", 0644);
	assert_int_equal(hm_s3_credentials_load(NULL, &c, &err), -1);
	assert_int_equal(err.code, HM_EXIT_PERMISSION);
	assert_non_null(strstr(err.hint, "chmod 600"));
	unlink(shared);
	write_file(opt, "aws_access_key_id = OPT\naws_secret_access_key = OS\n", 0640);
	assert_int_equal(hm_s3_credentials_load(opt, &c, &err), -1);
	assert_int_equal(err.code, HM_EXIT_PERMISSION);
	/* Nothing anywhere: one line saying where to put them. */
	assert_int_equal(hm_s3_credentials_load(NULL, &c, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_non_null(strstr(err.message, "no S3 credentials"));
	assert_int_equal(hm_s3_credentials_load("/nonexistent/file", &c, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
}

static int setup(void **state)
{
	(void)state;
	hm_error err;
	char aws[300];
	snprintf(home, sizeof home, "/tmp/hm-test-cred-XXXXXX");
	if (!mkdtemp(home))
		return -1;
	snprintf(aws, sizeof aws, "%s/.aws", home);
	return hm_mkdir_p(aws, 0700, &err);
}

static int teardown(void **state)
{
	(void)state;
	hm_error err;
	return hm_rmtree(home, &err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_profiles),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test_setup(test_env_first, reset_env),
		cmocka_unit_test_setup(test_shared_then_option, reset_env),
		cmocka_unit_test_setup(test_permissions, reset_env),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
