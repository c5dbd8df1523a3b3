/* The shared repository options (backup/repo_cli.c): every option lands in its field, bad
 * values are refused, unknown options are left to the command, and the two key options
 * exclude each other. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../backup/repo_cli.h"

static void options_land_in_their_fields(void **state)
{
	(void)state;
	hm_repo_cli c;
	memset(&c, 0, sizeof c);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_ENDPOINT, "https://s3.example.net"), 1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_REGION, "eu-west-1"), 1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_URI_STYLE, "path"), 1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_CA_FILE, "/etc/ca.pem"), 1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_CREDENTIALS_FILE, "/etc/creds"), 1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_LOCK_TTL, "30"), 1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_KEY_FILE, "/etc/key"), 1);
	assert_string_equal(c.conn.s3.endpoint, "https://s3.example.net");
	assert_string_equal(c.conn.s3.region, "eu-west-1");
	assert_int_equal(c.conn.s3.style, HM_S3_STYLE_PATH);
	assert_string_equal(c.conn.s3.ca_file, "/etc/ca.pem");
	assert_string_equal(c.conn.s3.credentials_file, "/etc/creds");
	assert_int_equal(c.conn.s3.lock_ttl_s, 30);
	assert_string_equal(c.key_file, "/etc/key");
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_URI_STYLE, "host"), 1);
	assert_int_equal(c.conn.s3.style, HM_S3_STYLE_HOST);
	/* not ours */
	assert_int_equal(hm_repo_cli_option(&c, 'r', "x"), 0);
}

static void bad_values_are_refused(void **state)
{
	(void)state;
	hm_repo_cli c;
	memset(&c, 0, sizeof c);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_URI_STYLE, "virtual"), -1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_LOCK_TTL, "9"), -1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_LOCK_TTL, "86401"), -1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_LOCK_TTL, "60s"), -1);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_LOCK_TTL, ""), -1);
	assert_int_equal(c.conn.s3.lock_ttl_s, 0);
}

/* --s3-part-size: units, bounds (5 MiB .. the driver's 512 MiB), junk refused. */
static void part_sizes(void **state)
{
	(void)state;
	size_t v = 0;
	assert_int_equal(hm_repo_cli_part_size("5MiB", &v), 0);
	assert_int_equal(v, 5u << 20);
	assert_int_equal(hm_repo_cli_part_size("64M", &v), 0);
	assert_int_equal(v, 64u << 20);
	assert_int_equal(hm_repo_cli_part_size("6291456", &v), 0);
	assert_int_equal(v, 6u << 20);
	assert_int_equal(hm_repo_cli_part_size("512MiB", &v), 0);
	assert_int_equal(hm_repo_cli_part_size("1K", &v), -1);
	assert_int_equal(hm_repo_cli_part_size("4MiB", &v), -1);
	assert_int_equal(hm_repo_cli_part_size("1GiB", &v), -1);
	assert_int_equal(hm_repo_cli_part_size("5GiB", &v), -1);
	assert_int_equal(hm_repo_cli_part_size("99999999999999999999G", &v), -1);
	assert_int_equal(hm_repo_cli_part_size("-5MiB", &v), -1);
	assert_int_equal(hm_repo_cli_part_size("8 MiB", &v), -1);
	assert_int_equal(hm_repo_cli_part_size("8XB", &v), -1);
	assert_int_equal(hm_repo_cli_part_size("", &v), -1);
	hm_repo_cli c;
	memset(&c, 0, sizeof c);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_PART_SIZE, "8MiB"), 1);
	assert_int_equal(c.conn.s3.part_size, 8u << 20);
	assert_int_equal(hm_repo_cli_option(&c, HM_REPO_OPT_S3_PART_SIZE, "1MiB"), -1);
}

static void secrets(void **state)
{
	(void)state;
	hm_repo_cli c;
	hm_crypt_secret *s = (hm_crypt_secret *)&c;
	hm_error err;
	memset(&c, 0, sizeof c);
	assert_int_equal(hm_repo_cli_secret(&c, &s, &err), 0);
	assert_null(s);
	c.key_file = "/nonexistent/key";
	c.passphrase_file = "/nonexistent/pass";
	assert_int_equal(hm_repo_cli_secret(&c, &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_USAGE);
	c.passphrase_file = NULL;
	assert_int_equal(hm_repo_cli_secret(&c, &s, &err), -1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options_land_in_their_fields),
		cmocka_unit_test(bad_values_are_refused),
		cmocka_unit_test(part_sizes),
		cmocka_unit_test(secrets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
