/* S3 response documents on libxml2. Element names are matched by local name (S3 puts its
 * elements in the 2006-03-01 namespace; some servers omit it). libxml2 is told not to touch
 * the network, not to load or validate DTDs and not to substitute entities; a document that
 * has a DOCTYPE at all is refused, which leaves only the predefined entities and character
 * references, decoded by the parser. */
#include "s3_xml.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3_sign.h"

static xmlDocPtr parse(const char *body, size_t len, const char *root, xmlNodePtr *rootp, hm_error *err)
{
	if (len == 0 || len > HM_S3_XML_MAX) {
		hm_error_set(err, HM_EXIT_IO, "s3: the server sent a %s response of %zu bytes", root, len);
		return NULL;
	}
	xmlDocPtr doc =
		xmlReadMemory(body, (int)len, "s3-response", NULL,
			      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	if (!doc) {
		hm_error_set(err, HM_EXIT_IO, "s3: the server's %s response is not well-formed XML", root);
		return NULL;
	}
	if (doc->intSubset || doc->extSubset) {
		xmlFreeDoc(doc);
		hm_error_set(err, HM_EXIT_IO, "s3: the server's %s response has a DOCTYPE (refused)", root);
		return NULL;
	}
	xmlNodePtr r = xmlDocGetRootElement(doc);
	if (!r || strcmp((const char *)r->name, root) != 0) {
		xmlFreeDoc(doc);
		hm_error_set(err, HM_EXIT_IO, "s3: expected a %s document from the server", root);
		return NULL;
	}
	*rootp = r;
	return doc;
}

static int is_elem(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr n = parent->children; n; n = n->next)
		if (is_elem(n, name))
			return n;
	return NULL;
}

/* The text of an element into out (at most max bytes): 0, or -1 if it is longer or holds
 * child elements (S3's leaf elements never do). */
static int text(xmlNodePtr n, char *out, size_t max)
{
	size_t o = 0;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
			return -1;
		size_t l = c->content ? strlen((const char *)c->content) : 0;
		if (o + l >= max)
			return -1;
		memcpy(out + o, c->content, l);
		o += l;
	}
	out[o] = '\0';
	return 0;
}

static int child_text(xmlNodePtr parent, const char *name, char *out, size_t max)
{
	xmlNodePtr n = child(parent, name);
	return n ? text(n, out, max) : -1;
}

static void strip_quotes(char *s)
{
	size_t l = strlen(s);
	if (l >= 2 && s[0] == '"' && s[l - 1] == '"') {
		memmove(s, s + 1, l - 2);
		s[l - 2] = '\0';
	}
}

/* Printable for messages: control bytes become '?'. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s || strlen(s) > 20)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (strcmp(s, "true") == 0)
		*out = 1;
	else if (strcmp(s, "false") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* A key as listed: decoded when url_encoded, never empty, no NUL. */
static int key_text(xmlNodePtr n, int url_encoded, char *out, size_t max)
{
	char raw[3 * HM_S3_KEY_MAX + 1];
	if (text(n, raw, sizeof raw) != 0)
		return -1;
	if (!url_encoded) {
		if (strlen(raw) >= max)
			return -1;
		strcpy(out, raw);
	} else if (hm_s3_uri_decode(raw, strlen(raw), 1, out, max) < 0) {
		return -1;
	}
	return out[0] ? 0 : -1;
}

int hm_s3_xml_error(const char *body, size_t len, hm_s3_error_doc *out)
{
	hm_error ignored;
	xmlNodePtr r;
	out->code[0] = out->message[0] = '\0';
	xmlDocPtr doc = parse(body, len, "Error", &r, &ignored);
	if (!doc)
		return -1;
	int rc = child_text(r, "Code", out->code, sizeof out->code);
	if (rc == 0 && !out->code[0])
		rc = -1;
	if (rc == 0 && child_text(r, "Message", out->message, sizeof out->message) != 0)
		out->message[0] = '\0';
	sanitize(out->code);
	sanitize(out->message);
	xmlFreeDoc(doc);
	return rc;
}

int hm_s3_parse_iso8601(const char *s, time_t *out)
{
	int Y, M, D, h, m, sec, n = 0;
	struct tm tm;
	if (strlen(s) < 20 || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 ||
	    n != 19)
		return -1;
	for (int i = 0; i < 19; i++)
		if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && !isdigit((unsigned char)s[i]))
			return -1;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (strcmp(p, "Z") != 0)
		return -1;
	if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*out = timegm(&tm);
	return 0;
}

int hm_s3_parse_http_date(const char *s, time_t *out)
{
	static const char *mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	char wd[4], mon[4];
	int D, Y, h, m, sec, n = 0, M = -1, ok = 0;
	struct tm tm;
	/* IMF-fixdate only, the one format HTTP/1.1 servers must send. */
	if (strlen(s) != 29 ||
	    sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d GMT%n", wd, &D, mon, &Y, &h, &m, &sec, &n) != 7 ||
	    n != 29)
		return -1;
	for (int i = 0; i < 7; i++)
		ok |= strcmp(wd, days[i]) == 0;
	for (int i = 0; i < 12; i++)
		if (strcmp(mon, mons[i]) == 0)
			M = i;
	if (!ok || M < 0 || Y < 1970 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 ||
	    !isdigit((unsigned char)s[5]) || !isdigit((unsigned char)s[6]))
		return -1;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = Y - 1900;
	tm.tm_mon = M;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*out = timegm(&tm);
	return 0;
}

static int bad(hm_error *err, const char *doc, const char *what)
{
	return hm_error_set(err, HM_EXIT_IO, "s3: the server's %s response has %s", doc, what);
}

int hm_s3_xml_list(const char *body, size_t len, int url_encoded, hm_s3_object_cb cb, void *ctx,
		   int *truncated, char *next_token, size_t tokensz, hm_error *err)
{
	static const char *D = "ListBucketResult";
	char key[HM_S3_KEY_MAX + 1], buf[128], etag[128];
	xmlNodePtr r;
	int rc = -1;
	xmlDocPtr doc = parse(body, len, D, &r, err);
	if (!doc)
		return -1;
	if (child_text(r, "IsTruncated", buf, sizeof buf) != 0 || parse_bool(buf, truncated) != 0) {
		bad(err, D, "no valid IsTruncated");
		goto cleanup;
	}
	next_token[0] = '\0';
	if (*truncated) {
		if (child_text(r, "NextContinuationToken", next_token, tokensz) != 0 || !next_token[0]) {
			bad(err, D, "IsTruncated without a valid NextContinuationToken");
			goto cleanup;
		}
	}
	for (xmlNodePtr n = r->children; n; n = n->next) {
		hm_s3_object o = {key, 0, 0, etag, 0};
		if (is_elem(n, "Contents")) {
			xmlNodePtr k = child(n, "Key");
			if (!k || key_text(k, url_encoded, key, sizeof key) != 0) {
				bad(err, D, "an entry without a valid Key");
				goto cleanup;
			}
			if (child_text(n, "Size", buf, sizeof buf) != 0 || parse_u64(buf, &o.size) != 0) {
				bad(err, D, "an entry without a valid Size");
				goto cleanup;
			}
			if (child_text(n, "LastModified", buf, sizeof buf) != 0 ||
			    hm_s3_parse_iso8601(buf, &o.mtime) != 0) {
				bad(err, D, "an entry without a valid LastModified");
				goto cleanup;
			}
			if (child_text(n, "ETag", etag, sizeof etag) != 0)
				etag[0] = '\0';
			strip_quotes(etag);
		} else if (is_elem(n, "CommonPrefixes")) {
			xmlNodePtr k = child(n, "Prefix");
			if (!k || key_text(k, url_encoded, key, sizeof key) != 0) {
				bad(err, D, "a common prefix without a valid Prefix");
				goto cleanup;
			}
			etag[0] = '\0';
			o.is_prefix = 1;
		} else {
			continue;
		}
		if (cb(ctx, &o, err) != 0)
			goto cleanup;
	}
	rc = 0;
cleanup:
	xmlFreeDoc(doc);
	return rc;
}

int hm_s3_xml_initiate(const char *body, size_t len, char *upload_id, size_t sz, hm_error *err)
{
	xmlNodePtr r;
	xmlDocPtr doc = parse(body, len, "InitiateMultipartUploadResult", &r, err);
	if (!doc)
		return -1;
	int rc = 0;
	if (child_text(r, "UploadId", upload_id, sz) != 0 || !upload_id[0])
		rc = bad(err, "InitiateMultipartUploadResult", "no valid UploadId");
	xmlFreeDoc(doc);
	return rc;
}

int hm_s3_xml_complete(const char *body, size_t len, char *etag, size_t sz, hm_s3_error_doc *edoc,
		       hm_error *err)
{
	hm_s3_error_doc e;
	xmlNodePtr r;
	if (hm_s3_xml_error(body, len, &e) == 0) {
		if (edoc)
			*edoc = e;
		return hm_error_set(err, HM_EXIT_IO, "s3: completing the upload failed: %s %s", e.code,
				    e.message);
	}
	xmlDocPtr doc = parse(body, len, "CompleteMultipartUploadResult", &r, err);
	if (!doc)
		return -1;
	int rc = 0;
	if (child_text(r, "ETag", etag, sz) != 0 || !etag[0])
		rc = bad(err, "CompleteMultipartUploadResult", "no valid ETag");
	else
		strip_quotes(etag);
	xmlFreeDoc(doc);
	return rc;
}

int hm_s3_xml_delete(const char *body, size_t len, size_t *nerrors, char *first, size_t firstsz,
		     hm_error *err)
{
	xmlNodePtr r;
	xmlDocPtr doc = parse(body, len, "DeleteResult", &r, err);
	if (!doc)
		return -1;
	*nerrors = 0;
	if (firstsz)
		first[0] = '\0';
	for (xmlNodePtr n = r->children; n; n = n->next) {
		if (!is_elem(n, "Error"))
			continue;
		char key[HM_S3_KEY_MAX + 1] = "", code[64] = "", msg[256] = "";
		if (child_text(n, "Key", key, sizeof key) != 0)
			strcpy(key, "?");
		if (child_text(n, "Code", code, sizeof code) != 0)
			strcpy(code, "?");
		if (child_text(n, "Message", msg, sizeof msg) != 0)
			msg[0] = '\0';
		if ((*nerrors)++ == 0 && firstsz) {
			snprintf(first, firstsz, "%s: %s %s", key, code, msg);
			sanitize(first);
		}
	}
	xmlFreeDoc(doc);
	return 0;
}

int hm_s3_xml_uploads(const char *body, size_t len, int url_encoded, hm_s3_upload_cb cb, void *ctx,
		      int *truncated, char *next_key, size_t keysz, char *next_upload, size_t uploadsz,
		      hm_error *err)
{
	static const char *D = "ListMultipartUploadsResult";
	char key[HM_S3_KEY_MAX + 1], id[1024], buf[128];
	xmlNodePtr r;
	int rc = -1;
	xmlDocPtr doc = parse(body, len, D, &r, err);
	if (!doc)
		return -1;
	if (child_text(r, "IsTruncated", buf, sizeof buf) != 0 || parse_bool(buf, truncated) != 0) {
		bad(err, D, "no valid IsTruncated");
		goto cleanup;
	}
	next_key[0] = next_upload[0] = '\0';
	if (*truncated) {
		xmlNodePtr k = child(r, "NextKeyMarker");
		if (!k || key_text(k, url_encoded, next_key, keysz) != 0 ||
		    child_text(r, "NextUploadIdMarker", next_upload, uploadsz) != 0) {
			bad(err, D, "IsTruncated without valid next markers");
			goto cleanup;
		}
	}
	for (xmlNodePtr n = r->children; n; n = n->next) {
		if (!is_elem(n, "Upload"))
			continue;
		hm_s3_upload u = {key, id, 0};
		xmlNodePtr k = child(n, "Key");
		if (!k || key_text(k, url_encoded, key, sizeof key) != 0 ||
		    child_text(n, "UploadId", id, sizeof id) != 0 || !id[0]) {
			bad(err, D, "an upload without a valid Key and UploadId");
			goto cleanup;
		}
		if (child_text(n, "Initiated", buf, sizeof buf) != 0 ||
		    hm_s3_parse_iso8601(buf, &u.initiated) != 0) {
			bad(err, D, "an upload without a valid Initiated time");
			goto cleanup;
		}
		if (cb(ctx, &u, err) != 0)
			goto cleanup;
	}
	rc = 0;
cleanup:
	xmlFreeDoc(doc);
	return rc;
}
