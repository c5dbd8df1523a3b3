/* Manifest encode/decode (common/manifest.c): round trip, strict decoding of damaged
 * manifests, lookup, and the entry comparison that names what differs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/manifest.h"

#define HEXA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void build(hm_manifest *m)
{
	hm_error err = {0};
	hm_manifest_init(m);
	assert_int_equal(hm_manifest_set_metadata(m, "{\"backup_id\":\"x\",\"n\":1}", &err), 0);
	hm_manifest_entry d = {
		.path = ".", .type = HM_ENTRY_DIR, .mode = 0700, .uid = 999, .gid = 999, .mtime = 5};
	hm_manifest_entry f = {.path = "pgdata/PG_VERSION",
			       .type = HM_ENTRY_FILE,
			       .size = 3,
			       .mode = 0600,
			       .uid = 999,
			       .gid = 999,
			       .mtime = 1700000000,
			       .sha256 = HEXA};
	hm_manifest_entry l = {.path = "pgdata/link",
			       .type = HM_ENTRY_SYMLINK,
			       .mode = 0777,
			       .uid = 0,
			       .gid = 0,
			       .mtime = 7,
			       .target = "../elsewhere with space"};
	assert_int_equal(hm_manifest_add(m, &f, &err), 0);
	assert_int_equal(hm_manifest_add(m, &d, &err), 0);
	assert_int_equal(hm_manifest_add(m, &l, &err), 0);
}

static void test_round_trip(void **state)
{
	(void)state;
	hm_manifest a, b;
	hm_error err = {0};
	char *json = NULL;
	size_t len = 0;
	build(&a);
	assert_int_equal(hm_manifest_encode(&a, &json, &len, &err), 0);
	assert_int_equal(strlen(json), len);
	assert_int_equal(hm_manifest_decode(json, len, "t", &b, &err), 0);
	assert_int_equal(b.count, 3);
	assert_string_equal(b.metadata_sha256, a.metadata_sha256);
	assert_non_null(strstr(b.metadata_json, "backup_id"));
	const hm_manifest_entry *f = hm_manifest_find(&b, "pgdata/PG_VERSION");
	assert_non_null(f);
	assert_int_equal(f->size, 3);
	assert_int_equal(f->mode, 0600);
	assert_int_equal(f->uid, 999);
	assert_int_equal(f->mtime, 1700000000);
	assert_string_equal(f->sha256, HEXA);
	const hm_manifest_entry *l = hm_manifest_find(&b, "pgdata/link");
	assert_non_null(l);
	assert_string_equal(l->target, "../elsewhere with space");
	assert_null(hm_manifest_find(&b, "pgdata/missing"));
	/* every entry of a equals its decoded twin */
	for (size_t i = 0; i < a.count; i++)
		assert_int_equal(hm_manifest_entry_compare(&a.entries[i],
							   hm_manifest_find(&b, a.entries[i].path), &err),
				 0);
	free(json);
	hm_manifest_free(&a);
	hm_manifest_free(&b);
}

static void test_decode_damaged(void **state)
{
	(void)state;
	static const struct {
		const char *json, *expect;
	} cases[] = {
		{"not json", "not valid JSON"},
		{"{\"format\":\"other/1\",\"files\":[]}", "unknown format"},
		{"{\"format\":\"hive-migrate-archive/1\"}", "no file list"},
		{"{\"format\":\"hive-migrate-archive/1\",\"files\":[{\"path\":\"a\"}]}", "malformed"},
		{"{\"format\":\"hive-migrate-archive/"
		 "1\",\"files\":[{\"path\":\"a\",\"type\":\"file\",\"size\":1,"
		 "\"mode\":420,\"uid\":0,\"gid\":0,\"mtime\":0,\"sha256\":\"xyz\"}]}",
		 "malformed"},
		{"{\"format\":\"hive-migrate-archive/"
		 "1\",\"files\":[{\"path\":\"a\",\"type\":\"fifo\",\"size\":0,"
		 "\"mode\":420,\"uid\":0,\"gid\":0,\"mtime\":0}]}",
		 "malformed"},
		{"{\"format\":\"hive-migrate-archive/"
		 "1\",\"files\":[{\"path\":\"a\",\"type\":\"dir\",\"size\":0,"
		 "\"mode\":99999,\"uid\":0,\"gid\":0,\"mtime\":0}]}",
		 "malformed"},
		{"{\"format\":\"hive-migrate-archive/"
		 "1\",\"files\":[{\"path\":\"a\",\"type\":\"dir\",\"size\":0,"
		 "\"mode\":493,\"uid\":0,\"gid\":0,\"mtime\":0},{\"path\":\"a\",\"type\":\"dir\",\"size\":0,"
		 "\"mode\":493,\"uid\":0,\"gid\":0,\"mtime\":0}]}",
		 "duplicate"},
		{"{\"format\":\"hive-migrate-archive/1\",\"metadata\":{},\"files\":[]}", "metadata digest"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		hm_manifest m;
		hm_error err = {0};
		assert_int_equal(hm_manifest_decode(cases[i].json, strlen(cases[i].json), "arch", &m, &err),
				 -1);
		assert_int_equal(err.code, HM_EXIT_CORRUPT);
		print_message("%s -> %s\n", cases[i].expect, err.message);
		assert_non_null(strstr(err.message, cases[i].expect));
		assert_int_equal(m.count, 0);
	}
}

static void test_compare_names_field(void **state)
{
	(void)state;
	hm_manifest_entry want = {.path = "f",
				  .type = HM_ENTRY_FILE,
				  .size = 3,
				  .mode = 0600,
				  .uid = 1,
				  .gid = 1,
				  .mtime = 9,
				  .sha256 = HEXA};
	static const struct {
		const char *field;
	} fields[] = {{"type"}, {"size"}, {"sha256"}, {"mode"}, {"owner"}, {"mtime"}};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		hm_manifest_entry got = want;
		hm_error err = {0};
		switch (i) {
		case 0:
			got.type = HM_ENTRY_DIR;
			break;
		case 1:
			got.size = 4;
			break;
		case 2:
			got.sha256[0] = 'b';
			break;
		case 3:
			got.mode = 0644;
			break;
		case 4:
			got.uid = 2;
			break;
		case 5:
			got.mtime = 10;
			break;
		}
		assert_int_equal(hm_manifest_entry_compare(&want, &got, &err), -1);
		assert_int_equal(err.code, HM_EXIT_VERIFY_FAILED);
		assert_non_null(strstr(err.message, "\"f\""));
		assert_non_null(strstr(err.message, fields[i].field));
	}
}

static void test_metadata_must_be_object(void **state)
{
	(void)state;
	hm_manifest m;
	hm_error err = {0};
	hm_manifest_init(&m);
	assert_int_equal(hm_manifest_set_metadata(&m, "[1,2]", &err), -1);
	assert_int_equal(hm_manifest_set_metadata(&m, "{\"a\":", &err), -1);
	hm_manifest_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_decode_damaged),
		cmocka_unit_test(test_compare_names_field),
		cmocka_unit_test(test_metadata_must_be_object),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
