/* backup/storage/s3_xml.c: the readers of what an S3 server answers. Documents shaped like
 * those AWS documents and radosgw sends, then hostile and broken ones: every one must be
 * refused with an error, never half-read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../backup/storage/s3_xml.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

typedef struct seen {
	int n;
	char keys[8][256];
	uint64_t sizes[8];
	char etags[8][80];
	int prefix[8];
	time_t mtime[8];
} seen;

static int collect(void *ctx, const hm_s3_object *o, hm_error *err)
{
	(void)err;
	seen *s = ctx;
	if (s->n < 8) {
		snprintf(s->keys[s->n], sizeof s->keys[0], "%s", o->key);
		s->sizes[s->n] = o->size;
		snprintf(s->etags[s->n], sizeof s->etags[0], "%s", o->etag);
		s->prefix[s->n] = o->is_prefix;
		s->mtime[s->n] = o->mtime;
	}
	s->n++;
	return 0;
}

static int list(const char *doc, int url, seen *s, int *trunc, char *token, hm_error *err)
{
	memset(s, 0, sizeof *s);
	return hm_s3_xml_list(doc, strlen(doc), url, collect, s, trunc, token, 256, err);
}

static void test_list_page(void **state)
{
	(void)state;
	const char *doc =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult " NS ">"
		"<Name>b</Name><Prefix>repo%2F</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>"
		"<IsTruncated>true</IsTruncated><NextContinuationToken>1/tok+en==</NextContinuationToken>"
		"<Contents><Key>repo/a%20b.tar</Key><LastModified>2026-11-27T00:15:19.123Z</LastModified>"
		"<ETag>&quot;0123abcd-3&quot;</ETag><Size>17179869184</Size><StorageClass>STANDARD</"
		"StorageClass>"
		"</Contents>"
		"<Contents><Key>repo/%C3%BC</Key><LastModified>2026-11-27T00:15:20Z</LastModified>"
		"<Size>0</Size></Contents>"
		"<CommonPrefixes><Prefix>repo/2026%2B1/</Prefix></CommonPrefixes>"
		"</ListBucketResult>";
	seen s;
	int trunc = 0;
	char token[256];
	hm_error err;
	assert_int_equal(list(doc, 1, &s, &trunc, token, &err), 0);
	assert_int_equal(trunc, 1);
	assert_string_equal(token, "1/tok+en==");
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "repo/a b.tar");
	assert_true(s.sizes[0] == 17179869184ULL);
	assert_string_equal(s.etags[0], "0123abcd-3");
	assert_int_equal(s.mtime[0], 1795738519);
	assert_string_equal(s.keys[1], "repo/\xc3\xbc");
	assert_int_equal(s.prefix[2], 1);
	assert_string_equal(s.keys[2], "repo/2026+1/");
	/* Not url-encoded: keys are taken as they are ("+" stays). */
	assert_int_equal(list(doc, 0, &s, &trunc, token, &err), 0);
	assert_string_equal(s.keys[0], "repo/a%20b.tar");
}

static void test_list_last_page(void **state)
{
	(void)state;
	seen s;
	int trunc = 1;
	char token[256] = "x";
	hm_error err;
	assert_int_equal(list("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>", 1, &s,
			      &trunc, token, &err),
			 0);
	assert_int_equal(trunc, 0);
	assert_string_equal(token, "");
	assert_int_equal(s.n, 0);
}

static void test_list_refused(void **state)
{
	(void)state;
	static const char *bad[] = {
		/* truncated without a token: a client would loop forever */
		"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
		"<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>",
		"<ListBucketResult></ListBucketResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key>"
		"<LastModified>2026-01-01T00:00:00Z</LastModified><Size>-1</Size></Contents></"
		"ListBucketResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key>"
		"<LastModified>2026-01-01T00:00:00Z</LastModified><Size>99999999999999999999</Size></"
		"Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key><Size>1</Size></"
		"Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key></Key>"
		"<LastModified>2026-01-01T00:00:00Z</LastModified><Size>1</Size></Contents></"
		"ListBucketResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a%00b</Key>"
		"<LastModified>2026-01-01T00:00:00Z</LastModified><Size>1</Size></Contents></"
		"ListBucketResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a<b/></Key>"
		"<LastModified>2026-01-01T00:00:00Z</LastModified><Size>1</Size></Contents></"
		"ListBucketResult>",
		/* a DOCTYPE at all (the billion-laughs family), and external entities */
		"<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b "
		"\"&a;&a;&a;&a;&a;&a;\">]>"
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>&b;</Key></Contents></"
		"ListBucketResult>",
		"<?xml version=\"1.0\"?><!DOCTYPE l SYSTEM \"file:///etc/passwd\"><ListBucketResult>"
		"<IsTruncated>false</IsTruncated></ListBucketResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>&undefined;</Key></"
		"Contents>"
		"</ListBucketResult>",
		"<Error><Code>AccessDenied</Code></Error>",
		"<ListBucketResult><IsTruncated>false</IsTruncated>",
		"not xml at all",
		"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		seen s;
		int trunc;
		char token[256];
		hm_error err;
		memset(&err, 0, sizeof err);
		if (list(bad[i], 1, &s, &trunc, token, &err) != -1)
			fail_msg("accepted bad document %zu", i);
		assert_int_equal(err.code, HM_EXIT_IO);
		assert_true(strlen(err.message) > 0);
	}
}

static int stop_after_one(void *ctx, const hm_s3_object *o, hm_error *err)
{
	(void)o;
	(*(int *)ctx)++;
	return hm_error_set(err, HM_EXIT_INPUT, "stop");
}

static void test_list_callback_stops(void **state)
{
	(void)state;
	const char *doc = "<ListBucketResult><IsTruncated>false</IsTruncated>"
			  "<Contents><Key>a</Key><LastModified>2026-01-01T00:00:00Z</LastModified><Size>1</"
			  "Size></Contents>"
			  "<Contents><Key>b</Key><LastModified>2026-01-01T00:00:00Z</LastModified><Size>1</"
			  "Size></Contents>"
			  "</ListBucketResult>";
	int calls = 0, trunc;
	char token[16];
	hm_error err;
	assert_int_equal(hm_s3_xml_list(doc, strlen(doc), 0, stop_after_one, &calls, &trunc, token,
					sizeof token, &err),
			 -1);
	assert_int_equal(calls, 1);
	assert_int_equal(err.code, HM_EXIT_INPUT);
}

static void test_error_doc(void **state)
{
	(void)state;
	hm_s3_error_doc e;
	const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>RequestTimeTooSkewed</Code>"
			  "<Message>The difference\t is too large.</Message><RequestId>x</RequestId></Error>";
	assert_int_equal(hm_s3_xml_error(doc, strlen(doc), &e), 0);
	assert_string_equal(e.code, "RequestTimeTooSkewed");
	assert_string_equal(e.message, "The difference? is too large.");
	assert_int_equal(hm_s3_xml_error("<Error></Error>", 15, &e), -1);
	assert_int_equal(hm_s3_xml_error("<Other/>", 8, &e), -1);
	assert_int_equal(hm_s3_xml_error("junk", 4, &e), -1);
}

static void test_multipart_docs(void **state)
{
	(void)state;
	char id[128], etag[128];
	hm_error err;
	hm_s3_error_doc e;
	const char *init = "<InitiateMultipartUploadResult " NS "><Bucket>b</Bucket><Key>k</Key>"
			   "<UploadId>2~abc.DEF_1</UploadId></InitiateMultipartUploadResult>";
	assert_int_equal(hm_s3_xml_initiate(init, strlen(init), id, sizeof id, &err), 0);
	assert_string_equal(id, "2~abc.DEF_1");
	const char *noid =
		"<InitiateMultipartUploadResult><UploadId></UploadId></InitiateMultipartUploadResult>";
	assert_int_equal(hm_s3_xml_initiate(noid, strlen(noid), id, sizeof id, &err), -1);
	const char *done = "<CompleteMultipartUploadResult><Location>x</"
			   "Location><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
			   "</CompleteMultipartUploadResult>";
	assert_int_equal(hm_s3_xml_complete(done, strlen(done), etag, sizeof etag, &e, &err), 0);
	assert_string_equal(etag, "3858f62230ac3c915f300c664312c11f-9");
	/* S3 may answer 200 and put the failure in the body. */
	const char *late = "<Error><Code>InternalError</Code><Message>We encountered an internal "
			   "error.</Message></Error>";
	memset(&e, 0, sizeof e);
	assert_int_equal(hm_s3_xml_complete(late, strlen(late), etag, sizeof etag, &e, &err), -1);
	assert_string_equal(e.code, "InternalError");
	assert_non_null(strstr(err.message, "InternalError"));
}

static void test_delete_result(void **state)
{
	(void)state;
	size_t n;
	char first[256];
	hm_error err;
	const char *ok = "<DeleteResult " NS "></DeleteResult>";
	assert_int_equal(hm_s3_xml_delete(ok, strlen(ok), &n, first, sizeof first, &err), 0);
	assert_int_equal(n, 0);
	const char *some =
		"<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied</Code>"
		"<Message>Access "
		"Denied</Message></Error><Error><Key>c</Key><Code>InternalError</Code></Error>"
		"</DeleteResult>";
	assert_int_equal(hm_s3_xml_delete(some, strlen(some), &n, first, sizeof first, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(first, "b: AccessDenied Access Denied");
	assert_int_equal(hm_s3_xml_delete("<Nope/>", 7, &n, first, sizeof first, &err), -1);
}

typedef struct ups {
	int n;
	char key[64], id[64];
	time_t t;
} ups;

static int collect_upload(void *ctx, const hm_s3_upload *u, hm_error *err)
{
	(void)err;
	ups *s = ctx;
	if (!s->n++) {
		snprintf(s->key, sizeof s->key, "%s", u->key);
		snprintf(s->id, sizeof s->id, "%s", u->upload_id);
		s->t = u->initiated;
	}
	return 0;
}

static void test_uploads(void **state)
{
	(void)state;
	ups s = {0};
	int trunc;
	char nk[64], nu[64];
	hm_error err;
	const char *doc =
		"<ListMultipartUploadsResult " NS "><Bucket>b</Bucket><IsTruncated>true</IsTruncated>"
		"<NextKeyMarker>p%2Fk</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
		"<Upload><Key>p/a%20b</Key><UploadId>u1</UploadId><Initiated>2026-12-01T10:00:00.000Z</"
		"Initiated>"
		"</Upload><Upload><Key>p/k</Key><UploadId>u2</UploadId><Initiated>2026-12-01T10:00:01Z</"
		"Initiated>"
		"</Upload></ListMultipartUploadsResult>";
	assert_int_equal(hm_s3_xml_uploads(doc, strlen(doc), 1, collect_upload, &s, &trunc, nk, sizeof nk, nu,
					   sizeof nu, &err),
			 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.key, "p/a b");
	assert_string_equal(s.id, "u1");
	assert_int_equal(trunc, 1);
	assert_string_equal(nk, "p/k");
	assert_string_equal(nu, "u2");
	const char *noid =
		"<ListMultipartUploadsResult><IsTruncated>false</IsTruncated><Upload><Key>k</Key>"
		"<Initiated>2026-12-01T10:00:00Z</Initiated></Upload></ListMultipartUploadsResult>";
	assert_int_equal(hm_s3_xml_uploads(noid, strlen(noid), 0, collect_upload, &s, &trunc, nk, sizeof nk,
					   nu, sizeof nu, &err),
			 -1);
}

static void test_dates(void **state)
{
	(void)state;
	time_t t;
	assert_int_equal(hm_s3_parse_iso8601("2026-11-27T00:15:19.000Z", &t), 0);
	assert_int_equal(t, 1795738519);
	assert_int_equal(hm_s3_parse_iso8601("2026-11-27T00:15:19Z", &t), 0);
	assert_int_equal(t, 1795738519);
	static const char *bad_iso[] = {"2026-11-27T00:15:19",	     "2026-11-27 00:15:19Z",
					"2026-13-27T00:15:19Z",	     "2026-11-27T00:15:19.Z",
					"2026-11-27T00:15:19+01:00", "x026-11-27T00:15:19Z",
					"1969-12-31T23:59:59Z",	     ""};
	for (size_t i = 0; i < sizeof bad_iso / sizeof bad_iso[0]; i++)
		if (hm_s3_parse_iso8601(bad_iso[i], &t) == 0)
			fail_msg("accepted %s", bad_iso[i]);
	assert_int_equal(hm_s3_parse_http_date("Fri, 27 Nov 2026 00:15:19 GMT", &t), 0);
	assert_int_equal(t, 1795738519);
	static const char *bad_http[] = {"Fri, 27 Nov 2026 00:15:19 UTC",  "Fri, 27 Foo 2026 00:15:19 GMT",
					 "Xyz, 27 Nov 2026 00:15:19 GMT",  "Fri, 7 Nov 2026 00:15:19 GMT",
					 "Friday, 27-Nov-26 00:15:19 GMT", ""};
	for (size_t i = 0; i < sizeof bad_http / sizeof bad_http[0]; i++)
		if (hm_s3_parse_http_date(bad_http[i], &t) == 0)
			fail_msg("accepted %s", bad_http[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_page),     cmocka_unit_test(test_list_last_page),
		cmocka_unit_test(test_list_refused),  cmocka_unit_test(test_list_callback_stops),
		cmocka_unit_test(test_error_doc),     cmocka_unit_test(test_multipart_docs),
		cmocka_unit_test(test_delete_result), cmocka_unit_test(test_uploads),
		cmocka_unit_test(test_dates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
