/* libFuzzer target: everything the S3 driver reads from a server. The first byte picks the
 * reader (the XML documents of backup/storage/s3_xml.c, a response header line, the
 * Content-Range value, the two date formats); the rest is the server's bytes. Each must
 * refuse bad input cleanly; what a list reader accepts must be a usable key (non-empty, no
 * NUL, at most 1024 bytes). Seeds: fuzz_s3_response.seeds/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../backup/storage/s3_client.h"
#include "../../backup/storage/s3_xml.h"

static int check_object(void *ctx, const hm_s3_object *o, hm_error *err)
{
	(void)ctx;
	(void)err;
	size_t n = strlen(o->key);
	if (n == 0 || n > HM_S3_KEY_MAX)
		abort();
	return 0;
}

static int check_upload(void *ctx, const hm_s3_upload *u, hm_error *err)
{
	(void)ctx;
	(void)err;
	if (!u->key[0] || !u->upload_id[0])
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hm_error err;
	char a[2048], b[1024];
	int trunc;
	if (size < 1)
		return 0;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	switch (data[0] % 9) {
	case 0:
		if (hm_s3_xml_list(body, len, data[0] & 0x10, check_object, NULL, &trunc, a, sizeof a,
				   &err) == 0 &&
		    trunc && !a[0])
			abort(); /* truncated must come with a token */
		break;
	case 1: {
		hm_s3_error_doc e;
		hm_s3_xml_error(body, len, &e);
		break;
	}
	case 2:
		hm_s3_xml_initiate(body, len, a, sizeof a, &err);
		break;
	case 3: {
		hm_s3_error_doc e;
		hm_s3_xml_complete(body, len, a, sizeof a, &e, &err);
		break;
	}
	case 4: {
		size_t n;
		hm_s3_xml_delete(body, len, &n, a, sizeof a, &err);
		break;
	}
	case 5:
		hm_s3_xml_uploads(body, len, data[0] & 0x10, check_upload, NULL, &trunc, a, sizeof a, b,
				  sizeof b, &err);
		break;
	case 6: {
		hm_s3_resp r;
		hm_s3_resp_init(&r);
		hm_s3_parse_header(&r, body, len);
		if (strlen(r.etag) >= sizeof r.etag || strchr(r.etag, '"'))
			abort();
		hm_s3_resp_free(&r);
		break;
	}
	default: {
		char *s = malloc(len + 1);
		memcpy(s, body, len);
		s[len] = '\0';
		uint64_t f, l, t;
		time_t when;
		if (hm_s3_parse_content_range(s, &f, &l, &t) == 0 && (l < f || l >= t))
			abort();
		hm_s3_parse_iso8601(s, &when);
		hm_s3_parse_http_date(s, &when);
		free(s);
	}
	}
	return 0;
}
