/* backup/storage/s3_sign.c against AWS's published Signature V4 examples: the four S3
 * examples of "Signature Calculations for the Authorization Header: Transferring Payload in a
 * Single Chunk" (GET object with Range, PUT object, GET ?lifecycle, GET ?max-keys=2&prefix=J;
 * access key AKIAIOSFODNN7EXAMPLE, 2013-05-24) and "get-vanilla" of the SigV4 test suite
 * (service "service", 2015-08-30). Intermediate strings are checked too, so a failure says
 * which step went wrong. Then the canonicalisation rules the examples do not cover. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../backup/storage/s3_sign.h"

#define S3_KEY "AKIAIOSFODNN7EXAMPLE"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY HM_S3_EMPTY_SHA256

static void check(const hm_s3_sign_request *r, const char *canonical, const char *sts_hash, const char *auth)
{
	char sh[256], out[1024], hash[65];
	char *c = hm_s3_canonical_request(r, sh, sizeof sh);
	assert_non_null(c);
	if (canonical)
		assert_string_equal(c, canonical);
	char *sts = hm_s3_string_to_sign(r, c);
	assert_non_null(sts);
	/* The last line of the string to sign is the canonical request's hash; the examples
	 * publish it. */
	const char *last = strrchr(sts, '\n');
	assert_non_null(last);
	hm_s3_sha256_hex(c, strlen(c), hash);
	assert_string_equal(last + 1, hash);
	if (sts_hash)
		assert_string_equal(hash, sts_hash);
	assert_int_equal(hm_s3_sign(r, out, sizeof out), 0);
	assert_string_equal(out, auth);
	free(c);
	free(sts);
}

static void test_get_object_range(void **state)
{
	(void)state;
	hm_s3_kv h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
			{"Range", "bytes=0-9"},
			{"x-amz-content-sha256", EMPTY},
			{"x-amz-date", "20130524T000000Z"}};
	hm_s3_sign_request r = {"GET",	     "/test.txt", "",	  h,	    4, EMPTY, "20130524T000000Z",
				"us-east-1", "s3",	  S3_KEY, S3_SECRET};
	check(&r,
	      "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
	      "x-amz-content-sha256:" EMPTY "\nx-amz-date:20130524T000000Z\n\n"
	      "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY,
	      "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
	      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
	      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_put_object(void **state)
{
	(void)state;
	const char *body = "Welcome to Amazon S3.";
	char hash[65], uri[64];
	hm_s3_sha256_hex(body, strlen(body), hash);
	assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	/* The key "test$file.text" encodes '$' as the example's canonical URI shows. */
	assert_int_equal(hm_s3_uri_encode("/test$file.text", 15, 1, uri, sizeof uri), 17);
	assert_string_equal(uri, "/test%24file.text");
	hm_s3_kv h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
			{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
			{"x-amz-date", "20130524T000000Z"},
			{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
			{"x-amz-content-sha256", hash}};
	hm_s3_sign_request r = {"PUT",	     uri,  "",	   h,	     5, hash, "20130524T000000Z",
				"us-east-1", "s3", S3_KEY, S3_SECRET};
	check(&r,
	      "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 "
	      "GMT\nhost:examplebucket.s3.amazonaws.com\n"
	      "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
	      "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
	      "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
	      "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	      "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
	      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	      "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
	      "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_get_lifecycle(void **state)
{
	(void)state;
	hm_s3_kv q[] = {{"lifecycle", NULL}};
	char *query = hm_s3_canonical_query(q, 1);
	assert_string_equal(query, "lifecycle=");
	hm_s3_kv h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
			{"x-amz-date", "20130524T000000Z"},
			{"x-amz-content-sha256", EMPTY}};
	hm_s3_sign_request r = {"GET",	     "/",  query,  h,	     3, EMPTY, "20130524T000000Z",
				"us-east-1", "s3", S3_KEY, S3_SECRET};
	check(&r, NULL, "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
	      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	      "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	      "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	free(query);
}

static void test_list_objects(void **state)
{
	(void)state;
	/* Given in the wrong order: the canonical query sorts them. */
	hm_s3_kv q[] = {{"prefix", "J"}, {"max-keys", "2"}};
	char *query = hm_s3_canonical_query(q, 2);
	assert_string_equal(query, "max-keys=2&prefix=J");
	hm_s3_kv h[] = {{"x-amz-date", "20130524T000000Z"},
			{"x-amz-content-sha256", EMPTY},
			{"Host", "examplebucket.s3.amazonaws.com"}};
	hm_s3_sign_request r = {"GET",	     "/",  query,  h,	     3, EMPTY, "20130524T000000Z",
				"us-east-1", "s3", S3_KEY, S3_SECRET};
	check(&r, NULL, "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
	      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	      "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	      "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	free(query);
}

static void test_suite_get_vanilla(void **state)
{
	(void)state;
	hm_s3_kv h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
	hm_s3_sign_request r = {"GET",
				"/",
				"",
				h,
				2,
				EMPTY,
				"20150830T123600Z",
				"us-east-1",
				"service",
				"AKIDEXAMPLE",
				"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
	check(&r,
	      "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY,
	      NULL,
	      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,"
	      "SignedHeaders=host;x-amz-date,Signature="
	      "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_query_rules(void **state)
{
	(void)state;
	/* Sorted by encoded name, then value; everything but unreserved characters encoded
	 * (a continuation token holds '/', '+' and '='; a prefix holds '/'). */
	hm_s3_kv q[] = {{"prefix", "repo/2026 x"},
			{"continuation-token", "1/a+b=="},
			{"list-type", "2"},
			{"uploads", ""},
			{"a", "2"},
			{"a", "1"},
			{"encoding-type", "url"},
			{"t", "~-_."}};
	char *s = hm_s3_canonical_query(q, sizeof q / sizeof q[0]);
	assert_string_equal(s, "a=1&a=2&continuation-token=1%2Fa%2Bb%3D%3D&encoding-type=url&list-type=2&"
			       "prefix=repo%2F2026%20x&t=~-_.&uploads=");
	free(s);
	s = hm_s3_canonical_query(NULL, 0);
	assert_string_equal(s, "");
	free(s);
}

static void test_uri_encode(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(hm_s3_uri_encode("a b/\xc3\xbc", 6, 1, out, sizeof out), 12);
	assert_string_equal(out, "a%20b/%C3%BC");
	assert_true(hm_s3_uri_encode("a/b", 3, 0, out, sizeof out) > 0);
	assert_string_equal(out, "a%2Fb");
	/* Too small a buffer is refused, never truncated. */
	assert_int_equal(hm_s3_uri_encode("abc", 3, 1, out, 3), -1);
	assert_int_equal(hm_s3_uri_encode("%", 1, 1, out, 3), -1);
	assert_int_equal(hm_s3_uri_encode("%", 1, 1, out, 4), 3);
}

static void test_uri_decode(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(hm_s3_uri_decode("a%2Fb+c%c3%bc", 13, 1, out, sizeof out), 7);
	assert_string_equal(out, "a/b c\xc3\xbc");
	assert_int_equal(hm_s3_uri_decode("a+b", 3, 0, out, sizeof out), 3);
	assert_string_equal(out, "a+b");
	assert_int_equal(hm_s3_uri_decode("%4", 2, 1, out, sizeof out), -1);
	assert_int_equal(hm_s3_uri_decode("%zz", 3, 1, out, sizeof out), -1);
	assert_int_equal(hm_s3_uri_decode("a%00", 4, 1, out, sizeof out), -1);
	assert_int_equal(hm_s3_uri_decode("abcd", 4, 1, out, 4), -1);
}

static void test_headers(void **state)
{
	(void)state;
	char sh[128];
	/* Values trimmed and inner runs of spaces collapsed; names lower-cased and sorted. */
	hm_s3_kv h[] = {{"X-Amz-Meta-B", "  two   words  "}, {"Host", "h"}};
	hm_s3_sign_request r = {"GET", "/", "", h, 2, EMPTY, "20130524T000000Z", "us-east-1", "s3", "k", "s"};
	char *c = hm_s3_canonical_request(&r, sh, sizeof sh);
	assert_non_null(c);
	assert_string_equal(c, "GET\n/\n\nhost:h\nx-amz-meta-b:two words\n\nhost;x-amz-meta-b\n" EMPTY);
	assert_string_equal(sh, "host;x-amz-meta-b");
	free(c);
	/* A value that could split the request, and a header given twice, are refused. */
	hm_s3_kv bad[] = {{"Host", "h\r\nX-Evil: 1"}};
	r.headers = bad;
	r.nheaders = 1;
	assert_null(hm_s3_canonical_request(&r, sh, sizeof sh));
	hm_s3_kv dup[] = {{"Host", "a"}, {"host", "b"}};
	r.headers = dup;
	r.nheaders = 2;
	assert_null(hm_s3_canonical_request(&r, sh, sizeof sh));
	char auth[64];
	r.headers = h;
	r.nheaders = 2;
	assert_int_equal(hm_s3_sign(&r, auth, sizeof auth), -1); /* too small: refused */
}

static void test_amz_date(void **state)
{
	(void)state;
	char d[17];
	hm_s3_amz_date(1369353600, d); /* 2013-05-24 00:00:00 UTC */
	assert_string_equal(d, "20130524T000000Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_object_range),  cmocka_unit_test(test_put_object),
		cmocka_unit_test(test_get_lifecycle),	  cmocka_unit_test(test_list_objects),
		cmocka_unit_test(test_suite_get_vanilla), cmocka_unit_test(test_query_rules),
		cmocka_unit_test(test_uri_encode),	  cmocka_unit_test(test_uri_decode),
		cmocka_unit_test(test_headers),		  cmocka_unit_test(test_amz_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
