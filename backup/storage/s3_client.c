/* The S3 HTTP client. Every request is signed just before it is sent (a retry signs again
 * with a fresh clock), carries x-amz-content-sha256 with the body's real hash, never follows
 * a redirect (a signature is valid for one host), and verifies TLS unless told otherwise.
 * Headers holding secrets are built here and never printed: curl's verbose mode stays off. */
#include "s3_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static int dns_label_ok(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > 63 || b[0] == '-' || b[n - 1] == '-')
		return 0;
	for (const char *p = b; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
			return 0;
	return 1;
}

static int is_ip_literal(const char *h)
{
	if (h[0] == '[')
		return 1;
	for (const char *p = h; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return 0;
	return 1;
}

static int parse_endpoint(hm_s3_client *c, const char *ep, hm_error *err)
{
	const char *p = ep;
	if (strncmp(p, "https://", 8) == 0) {
		strcpy(c->scheme, "https");
		p += 8;
	} else if (strncmp(p, "http://", 7) == 0) {
		strcpy(c->scheme, "http");
		p += 7;
	} else if (strstr(p, "://")) {
		return hm_error_set(err, HM_EXIT_USAGE,
				    "S3 endpoint \"%s\": only http:// and https:// are supported", ep);
	} else {
		strcpy(c->scheme, "https");
	}
	const char *end = p + strcspn(p, "/");
	if (*end && strcmp(end, "/") != 0)
		return hm_error_set(err, HM_EXIT_USAGE,
				    "S3 endpoint \"%s\" has a path; give only scheme://host[:port]", ep);
	const char *hend;
	if (*p == '[') {
		hend = memchr(p, ']', (size_t)(end - p));
		if (!hend)
			return hm_error_set(err, HM_EXIT_USAGE,
					    "S3 endpoint \"%s\": unterminated IPv6 address", ep);
		hend++;
	} else {
		hend = p + strcspn(p, ":/");
	}
	size_t hl = (size_t)(hend - p);
	if (hl == 0 || hl >= sizeof c->host || memchr(p, '@', (size_t)(end - p)))
		return hm_error_set(err, HM_EXIT_USAGE, "S3 endpoint \"%s\": no valid host", ep);
	memcpy(c->host, p, hl);
	c->host[hl] = '\0';
	for (const char *q = c->host; *q; q++)
		if (!(isalnum((unsigned char)*q) || strchr(".-[]:", *q)))
			return hm_error_set(err, HM_EXIT_USAGE, "S3 endpoint \"%s\": invalid host name", ep);
	c->port = 0;
	if (*hend == ':') {
		char *e;
		long port = strtol(hend + 1, &e, 10);
		if (e != end || port < 1 || port > 65535)
			return hm_error_set(err, HM_EXIT_USAGE, "S3 endpoint \"%s\": invalid port", ep);
		c->port = (int)port;
	} else if (hend != end) {
		return hm_error_set(err, HM_EXIT_USAGE, "S3 endpoint \"%s\": invalid host", ep);
	}
	return 0;
}

static int parse_url(hm_s3_client *c, const char *url, hm_error *err)
{
	if (strncmp(url, "s3://", 5) != 0)
		return hm_error_set(err, HM_EXIT_USAGE, "\"%s\" is not an s3:// location", url);
	const char *b = url + 5, *slash = strchr(b, '/');
	size_t bl = slash ? (size_t)(slash - b) : strlen(b);
	if (bl < 3 || bl > 63)
		return hm_error_set(err, HM_EXIT_USAGE, "\"%s\": a bucket name has 3 to 63 characters", url);
	for (size_t i = 0; i < bl; i++)
		if (!(isalnum((unsigned char)b[i]) || b[i] == '.' || b[i] == '-' || b[i] == '_'))
			return hm_error_set(err, HM_EXIT_USAGE,
					    "\"%s\": invalid character in the bucket name", url);
	memcpy(c->bucket, b, bl);
	c->bucket[bl] = '\0';
	c->prefix[0] = '\0';
	if (slash) {
		const char *p = slash + 1;
		size_t pl = strlen(p);
		while (pl && p[pl - 1] == '/')
			pl--;
		if (pl >= sizeof c->prefix - 200)
			return hm_error_set(err, HM_EXIT_USAGE, "\"%s\": the prefix is too long", url);
		memcpy(c->prefix, p, pl);
		c->prefix[pl] = '\0';
		if (pl && hm_storage_name_check(c->prefix, err) != 0)
			return hm_error_prefix(err, "in \"%s\"", url);
	}
	return 0;
}

int hm_s3_client_init(hm_s3_client *c, const char *url, const hm_s3_options *opt, hm_error *err)
{
	static const hm_s3_options defaults;
	if (!opt)
		opt = &defaults;
	memset(c, 0, sizeof *c);
	if (parse_url(c, url, err) != 0)
		return -1;
	const char *region = opt->region;
	if (!region || !*region)
		region = getenv("AWS_REGION");
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (!region || !*region)
		region = "us-east-1";
	if (strlen(region) >= sizeof c->region ||
	    strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(region))
		return hm_error_set(err, HM_EXIT_USAGE, "invalid S3 region \"%s\"", region);
	strcpy(c->region, region);
	if (opt->endpoint && *opt->endpoint) {
		if (parse_endpoint(c, opt->endpoint, err) != 0)
			return -1;
	} else {
		strcpy(c->scheme, "https");
		snprintf(c->host, sizeof c->host, "s3.%s.amazonaws.com", c->region);
	}
	switch (opt->style) {
	case HM_S3_STYLE_PATH:
		c->host_style = 0;
		break;
	case HM_S3_STYLE_HOST:
		if (is_ip_literal(c->host))
			return hm_error_set(err, HM_EXIT_USAGE,
					    "virtual-host addressing needs a DNS name, and the endpoint is "
					    "an IP address");
		c->host_style = 1;
		break;
	default:
		c->host_style = !is_ip_literal(c->host) && dns_label_ok(c->bucket);
	}
	if (c->port)
		snprintf(c->endpoint, sizeof c->endpoint, "%s://%s:%d", c->scheme, c->host, c->port);
	else
		snprintf(c->endpoint, sizeof c->endpoint, "%s://%s", c->scheme, c->host);
	c->verify_tls = !opt->no_verify_tls;
	if (opt->ca_file &&
	    snprintf(c->ca_file, sizeof c->ca_file, "%s", opt->ca_file) >= (int)sizeof c->ca_file)
		return hm_error_set(err, HM_EXIT_USAGE, "the CA file path is too long");
	c->max_attempts = opt->max_attempts > 0 ? opt->max_attempts : 5;
	c->connect_timeout_s = opt->connect_timeout_s > 0 ? opt->connect_timeout_s : 10;
	c->stall_timeout_s = opt->stall_timeout_s > 0 ? opt->stall_timeout_s : 60;
	c->clock_offset_s = opt->clock_offset_s;
	c->part_size = opt->part_size ? opt->part_size : HM_S3_DEFAULT_PART;
	if (c->part_size < HM_S3_MIN_PART || c->part_size > HM_S3_MAX_PART)
		return hm_error_set(err, HM_EXIT_USAGE, "the S3 part size must be between 5 MiB and 512 MiB");
	c->parallel = opt->parallel > 0 ? opt->parallel : 2;
	c->grow_every = opt->grow_every ? opt->grow_every : HM_S3_GROW_EVERY;
	if (c->parallel > 16)
		return hm_error_set(err, HM_EXIT_USAGE, "at most 16 S3 parts in flight");
	c->etag_quoted = -1;
	c->lock_ttl_s = opt->lock_ttl_s ? opt->lock_ttl_s : 600;
	if (c->lock_ttl_s < 10 || c->lock_ttl_s > 86400)
		return hm_error_set(err, HM_EXIT_USAGE, "the S3 lock lease must be between 10 s and one day");
	c->list_page = opt->list_page ? opt->list_page : 1000;
	if (c->list_page > 1000)
		return hm_error_set(err, HM_EXIT_USAGE, "S3 lists at most 1000 keys a page");
	if (hm_s3_credentials_load(opt->credentials_file, &c->cred, err) != 0)
		return -1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return hm_error_set(err, HM_EXIT_INTERNAL, "libcurl failed to initialise");
	c->share = curl_share_init();
	c->easy = curl_easy_init();
	if (!c->share || !c->easy) {
		hm_s3_client_free(c);
		return hm_error_set(err, HM_EXIT_INTERNAL, "out of memory (libcurl)");
	}
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return 0;
}

void hm_s3_client_free(hm_s3_client *c)
{
	if (c->easy)
		curl_easy_cleanup(c->easy);
	if (c->share) {
		curl_share_cleanup(c->share);
		curl_global_cleanup();
	}
	c->easy = NULL;
	c->share = NULL;
	hm_s3_credentials_wipe(&c->cred);
}

int hm_s3_key(const hm_s3_client *c, const char *name, int dir, char *out, size_t sz, hm_error *err)
{
	int n;
	if (!*name)
		n = snprintf(out, sz, "%s%s", c->prefix, c->prefix[0] && dir ? "/" : "");
	else
		n = snprintf(out, sz, "%s%s%s%s", c->prefix, c->prefix[0] ? "/" : "", name, dir ? "/" : "");
	if (n < 0 || (size_t)n >= sz || (size_t)n > HM_S3_KEY_MAX)
		return hm_error_set(err, HM_EXIT_INPUT, "s3: the key for \"%s\" is longer than %d bytes",
				    name, HM_S3_KEY_MAX);
	return 0;
}

const char *hm_s3_name(const hm_s3_client *c, const char *key)
{
	size_t pl = strlen(c->prefix);
	if (!pl)
		return key;
	if (strncmp(key, c->prefix, pl) != 0 || key[pl] != '/')
		return NULL;
	return key + pl + 1;
}

const char *hm_s3_url_of(const hm_s3_client *c, const char *key, char *out, size_t sz)
{
	snprintf(out, sz, "s3://%s/%s", c->bucket, key ? key : "");
	return out;
}

const char *hm_s3_if_match(const hm_s3_client *c, const char *etag, int alt, char *buf, size_t sz)
{
	int quoted = c->etag_quoted < 0 ? 0 : c->etag_quoted; /* bare first: radosgw needs it */
	if (alt)
		quoted = !quoted;
	snprintf(buf, sz, quoted ? "\"%s\"" : "%s", etag);
	return buf;
}

void hm_s3_if_match_ok(hm_s3_client *c, int alt)
{
	int quoted = c->etag_quoted < 0 ? 0 : c->etag_quoted;
	c->etag_quoted = alt ? !quoted : quoted;
}

time_t hm_s3_now(const hm_s3_client *c)
{
	return time(NULL) + c->clock_offset_s;
}

void hm_s3_resp_init(hm_s3_resp *r)
{
	memset(r, 0, sizeof *r);
}

void hm_s3_resp_reset(hm_s3_resp *r)
{
	hm_strbuf b = r->body;
	int attempts = r->attempts;
	if (b.s)
		b.s[0] = '\0';
	b.len = 0;
	b.failed = 0;
	memset(r, 0, sizeof *r);
	r->body = b;
	r->attempts = attempts;
}

void hm_s3_resp_free(hm_s3_resp *r)
{
	hm_strbuf_free(&r->body);
	memset(r, 0, sizeof *r);
}

/* --- transfer set-up ------------------------------------------------------------------ */
static void copy_value(char *dst, size_t dstsz, const char *v, size_t len)
{
	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
		len--;
	if (len >= dstsz)
		len = dstsz - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

int hm_s3_parse_header(hm_s3_resp *r, const char *data, size_t len)
{
	if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n'))
		return 2;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue, say): forget the headers of the last one. */
		r->etag[0] = r->date[0] = r->last_modified[0] = r->content_range[0] = '\0';
		r->has_length = 0;
		return 1;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon)
		return 0;
	size_t nl = (size_t)(colon - data);
	const char *v = colon + 1;
	size_t vl = len - nl - 1;
	if (nl == 4 && strncasecmp(data, "etag", 4) == 0) {
		copy_value(r->etag, sizeof r->etag, v, vl);
		size_t l = strlen(r->etag);
		if (l >= 2 && r->etag[0] == '"' && r->etag[l - 1] == '"') {
			memmove(r->etag, r->etag + 1, l - 2);
			r->etag[l - 2] = '\0';
		}
		for (char *p = r->etag; *p; p++)
			if ((unsigned char)*p < 0x21 || *p == '"' || *p == 0x7f)
				*p = '?'; /* it goes back into If-Match headers and XML: keep it tame */
	} else if (nl == 4 && strncasecmp(data, "date", 4) == 0) {
		copy_value(r->date, sizeof r->date, v, vl);
	} else if (nl == 13 && strncasecmp(data, "last-modified", 13) == 0) {
		copy_value(r->last_modified, sizeof r->last_modified, v, vl);
	} else if (nl == 13 && strncasecmp(data, "content-range", 13) == 0) {
		copy_value(r->content_range, sizeof r->content_range, v, vl);
	} else if (nl == 14 && strncasecmp(data, "content-length", 14) == 0) {
		char buf[32];
		copy_value(buf, sizeof buf, v, vl);
		uint64_t cl = 0;
		size_t i = 0;
		for (; buf[i] >= '0' && buf[i] <= '9' && i < 20; i++) {
			unsigned d = (unsigned)(buf[i] - '0');
			if (cl > (UINT64_MAX - d) / 10)
				break;
			cl = cl * 10 + d;
		}
		if (i > 0 && buf[i] == '\0') {
			r->content_length = cl;
			r->has_length = 1;
		}
	}
	return 0;
}

int hm_s3_parse_content_range(const char *s, uint64_t *first, uint64_t *last, uint64_t *total)
{
	uint64_t v[3] = {0, 0, 0};
	const char *p = s;
	static const char seps[] = "-/";
	if (strncmp(p, "bytes ", 6) != 0)
		return -1;
	p += 6;
	for (int k = 0; k < 3; k++) {
		int digits = 0;
		for (; *p >= '0' && *p <= '9'; p++, digits++) {
			unsigned d = (unsigned)(*p - '0');
			if (digits >= 20 || v[k] > (UINT64_MAX - d) / 10)
				return -1;
			v[k] = v[k] * 10 + d;
		}
		if (!digits)
			return -1;
		if (k < 2 && *p++ != seps[k])
			return -1;
	}
	if (*p || v[1] < v[0] || v[1] >= v[2])
		return -1;
	*first = v[0];
	*last = v[1];
	*total = v[2];
	return 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	hm_s3_xfer *x = ud;
	size_t len = size * n;
	if (hm_s3_parse_header(x->resp, data, len) == 2) {
		long status = 0;
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200)
			x->resp->headers_done = 1;
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	hm_s3_xfer *x = ud;
	size_t len = size * n;
	long status = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 300 && x->sink)
		return x->sink(x->sink_ctx, data, len);
	if (x->resp->body.len + len > HM_S3_XML_MAX) {
		x->resp->body_overflow = 1;
		return len; /* keep reading, drop the rest: the status still tells what happened */
	}
	hm_strbuf_add(&x->resp->body, data, len);
	x->c->stats.bytes_down += len;
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	hm_s3_xfer *x = ud;
	size_t len = size * n, left = x->body_len - x->body_off;
	if (len > left)
		len = left;
	memcpy(buf, x->body + x->body_off, len);
	x->body_off += len;
	x->c->stats.bytes_up += len;
	return len;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
	hm_s3_xfer *x = ud;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->body_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static int add_header(hm_s3_xfer *x, const char *name, const char *value)
{
	char line[8192];
	if (snprintf(line, sizeof line, "%s: %s", name, value) >= (int)sizeof line)
		return -1;
	struct curl_slist *l = curl_slist_append(x->headers, line);
	OPENSSL_cleanse(line, sizeof line);
	if (!l)
		return -1;
	x->headers = l;
	return 0;
}

int hm_s3_xfer_setup(hm_s3_xfer *x, hm_s3_client *c, CURL *easy, const hm_s3_req *req, hm_s3_resp *resp,
		     hm_s3_sink sink, void *sink_ctx, hm_error *err)
{
	char host[400], date[17], hash[65], auth[1024];
	hm_s3_kv h[HM_S3_MAX_HEADERS + 4];
	size_t nh = 0;
	hm_strbuf path = HM_STRBUF_INIT, url = HM_STRBUF_INIT;
	char *query = NULL;
	int rc = -1;
	memset(x, 0, sizeof *x);
	x->c = c;
	x->easy = easy;
	x->resp = resp;
	x->sink = sink;
	x->sink_ctx = sink_ctx;
	x->body = req->body;
	x->body_len = req->body_len;
	hm_s3_resp_reset(resp);
	if (req->nheaders > HM_S3_MAX_HEADERS || req->nquery > HM_S3_MAX_QUERY)
		return hm_error_set(err, HM_EXIT_INTERNAL,
				    "s3: too many headers or parameters in one request");

	/* Where it goes: host (with the bucket for virtual-host style) and the encoded path. */
	if (c->host_style)
		snprintf(host, sizeof host, "%s.%s", c->bucket, c->host);
	else
		snprintf(host, sizeof host, "%s", c->host);
	if (c->port)
		snprintf(host + strlen(host), sizeof host - strlen(host), ":%d", c->port);
	hm_strbuf_addc(&path, '/');
	if (!c->host_style) {
		hm_strbuf_adds(&path, c->bucket);
		if (req->key)
			hm_strbuf_addc(&path, '/');
	}
	if (req->key) {
		size_t kl = strlen(req->key);
		char *enc = malloc(kl * 3 + 1);
		if (!enc || hm_s3_uri_encode(req->key, kl, 1, enc, kl * 3 + 1) < 0) {
			free(enc);
			hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
			goto cleanup;
		}
		hm_strbuf_adds(&path, enc);
		free(enc);
	}
	query = hm_s3_canonical_query(req->query, req->nquery);
	hm_strbuf_addf(&url, "%s://%s%s%s%s", c->scheme, host, path.s ? path.s : "/",
		       query && *query ? "?" : "", query ? query : "");
	if (!query || hm_strbuf_failed(&path) || hm_strbuf_failed(&url)) {
		hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
		goto cleanup;
	}
	x->url = hm_strbuf_take(&url);

	/* What it says: every header we send is signed. */
	hm_s3_amz_date(hm_s3_now(c), date);
	if (req->payload_hash)
		snprintf(hash, sizeof hash, "%s", req->payload_hash);
	else
		hm_s3_sha256_hex(req->body ? req->body : "", req->body_len, hash);
	h[nh++] = (hm_s3_kv){"host", host};
	h[nh++] = (hm_s3_kv){"x-amz-date", date};
	h[nh++] = (hm_s3_kv){"x-amz-content-sha256", hash};
	if (c->cred.session_token[0])
		h[nh++] = (hm_s3_kv){"x-amz-security-token", c->cred.session_token};
	for (size_t i = 0; i < req->nheaders; i++)
		h[nh++] = req->headers[i];
	hm_s3_sign_request sr = {
		req->method,	   path.s, query, h, nh, hash, date, c->region, "s3", c->cred.access_key,
		c->cred.secret_key};
	if (hm_s3_sign(&sr, auth, sizeof auth) != 0) {
		hm_error_set(err, HM_EXIT_INTERNAL,
			     "s3: cannot sign the request (a header too long or malformed)");
		goto cleanup;
	}
	for (size_t i = 0; i < nh; i++)
		if (add_header(x, h[i].name, h[i].value) != 0)
			goto oom;
	if (add_header(x, "Authorization", auth) != 0 ||
	    !(x->headers = curl_slist_append(x->headers, "Expect:")) ||
	    !(x->headers = curl_slist_append(x->headers, "Accept:")))
		goto oom;
	if (strcmp(req->method, "POST") == 0 &&
	    !(x->headers = curl_slist_append(x->headers, "Content-Type:")))
		goto oom;

	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_URL, x->url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(easy, CURLOPT_SHARE, c->share);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, c->stall_timeout_s);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, c->verify_tls ? 1L : 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, c->verify_tls ? 2L : 0L);
	if (c->ca_file[0])
		curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, resp->curl_error);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "PUT") == 0) {
		curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(easy, CURLOPT_READDATA, x);
		curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(easy, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
	} else if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		c->stats.bytes_up += req->body_len;
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
	}
	c->stats.requests++;
	rc = 0;
	goto cleanup;
oom:
	hm_error_set(err, HM_EXIT_INTERNAL, "out of memory");
cleanup:
	OPENSSL_cleanse(auth, sizeof auth);
	hm_strbuf_free(&path);
	hm_strbuf_free(&url);
	free(query);
	if (rc != 0)
		hm_s3_xfer_cleanup(x);
	return rc;
}

void hm_s3_xfer_cleanup(hm_s3_xfer *x)
{
	if (x->headers) {
		/* The list holds the signature and possibly a session token. */
		for (struct curl_slist *l = x->headers; l; l = l->next)
			OPENSSL_cleanse(l->data, strlen(l->data));
		curl_slist_free_all(x->headers);
	}
	x->headers = NULL;
	free(x->url);
	x->url = NULL;
}

void hm_s3_xfer_done(hm_s3_xfer *x, CURLcode code)
{
	hm_s3_resp *r = x->resp;
	r->curl_code = code;
	r->status = 0;
	if (code == CURLE_OK)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (code != CURLE_OK && !r->curl_error[0])
		snprintf(r->curl_error, sizeof r->curl_error, "%s", curl_easy_strerror(code));
	if (r->status >= 300 && r->body.len && !r->body_overflow)
		hm_s3_xml_error(r->body.s, r->body.len, &r->edoc);
}

int hm_s3_retryable(const hm_s3_resp *r)
{
	switch (r->curl_code) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
	if (r->status >= 500 || r->status == 429 || r->status == 408)
		return 1;
	/* S3's "your socket was not read from in time" and throttling arrive as 400/503 codes. */
	return r->status == 400 &&
	       (strcmp(r->edoc.code, "RequestTimeout") == 0 || strcmp(r->edoc.code, "SlowDown") == 0);
}

void hm_s3_backoff(hm_s3_client *c, int attempt)
{
	unsigned char rnd = 0;
	long ms = 200;
	for (int i = 1; i < attempt && ms < 8000; i++)
		ms *= 2;
	if (ms > 8000)
		ms = 8000;
	if (RAND_bytes(&rnd, 1) != 1)
		rnd = 128;
	ms = ms / 2 + (ms / 2) * rnd / 255; /* jitter: between half and all of it */
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	c->stats.retries++;
}

int hm_s3_request(hm_s3_client *c, const hm_s3_req *req, hm_s3_resp *resp, hm_error *err)
{
	hm_s3_xfer x;
	for (int attempt = 1;; attempt++) {
		if (hm_s3_xfer_setup(&x, c, c->easy, req, resp, NULL, NULL, err) != 0)
			return -1;
		resp->attempts = attempt;
		CURLcode code = curl_easy_perform(c->easy);
		hm_s3_xfer_done(&x, code);
		hm_s3_xfer_cleanup(&x);
		if (!hm_s3_retryable(resp) || attempt >= c->max_attempts)
			break;
		hm_s3_backoff(c, attempt);
	}
	if (resp->curl_code != CURLE_OK)
		return hm_s3_fail(c, req, resp, err);
	return 0;
}

/* --- errors ---------------------------------------------------------------------------- */
static const char *code_of(const hm_s3_resp *r)
{
	return r->edoc.code[0] ? r->edoc.code : "";
}

int hm_s3_fail(hm_s3_client *c, const hm_s3_req *req, const hm_s3_resp *r, hm_error *err)
{
	char where[HM_S3_KEY_MAX + 100], tries[48] = "";
	const char *code = code_of(r);
	hm_s3_url_of(c, req->key, where, sizeof where);
	if (r->attempts > 1)
		snprintf(tries, sizeof tries, " (after %d attempts)", r->attempts);
	if (r->curl_code != CURLE_OK) {
		switch (r->curl_code) {
		case CURLE_PEER_FAILED_VERIFICATION:
			hm_error_set(err, HM_EXIT_PERMISSION,
				     "s3: the TLS certificate of %s is not trusted: %s", c->endpoint,
				     r->curl_error);
			return hm_error_hint(
				err, "for a private CA, name its certificate with the CA-file option");
		case CURLE_SSL_CACERT_BADFILE:
			return hm_error_set(err, HM_EXIT_INPUT, "s3: cannot read the CA file \"%s\": %s",
					    c->ca_file, r->curl_error);
		default:
			hm_error_set(err, HM_EXIT_IO, "s3: %s %s: cannot reach %s: %s%s", req->method, where,
				     c->endpoint, r->curl_error, tries);
			return hm_error_hint(err, "check the endpoint, the network and that the server runs");
		}
	}
	if (strcmp(code, "InvalidAccessKeyId") == 0) {
		hm_error_set(err, HM_EXIT_PERMISSION,
			     "s3: %s does not know the access key from %s (InvalidAccessKeyId)", c->endpoint,
			     c->cred.source);
		return hm_error_hint(err, "check AWS_ACCESS_KEY_ID or the credentials file");
	}
	if (strcmp(code, "SignatureDoesNotMatch") == 0) {
		hm_error_set(
			err, HM_EXIT_PERMISSION,
			"s3: %s refused the signature: the secret key from %s does not match the access key "
			"(SignatureDoesNotMatch)",
			c->endpoint, c->cred.source);
		return hm_error_hint(err, "check AWS_SECRET_ACCESS_KEY or the credentials file");
	}
	if (strcmp(code, "RequestTimeTooSkewed") == 0) {
		time_t server;
		if (r->date[0] && hm_s3_parse_http_date(r->date, &server) == 0)
			hm_error_set(err, HM_EXIT_IO,
				     "s3: this machine's clock is %+lld s off the clock of %s "
				     "(RequestTimeTooSkewed)",
				     (long long)(hm_s3_now(c) - server), c->endpoint);
		else
			hm_error_set(err, HM_EXIT_IO,
				     "s3: this machine's clock is too far off the clock of %s "
				     "(RequestTimeTooSkewed)",
				     c->endpoint);
		return hm_error_hint(err, "synchronise the clock (NTP, chrony or systemd-timesyncd)");
	}
	if (strcmp(code, "NoSuchBucket") == 0 || (r->status == 404 && !req->key && !code[0])) {
		hm_error_set(err, HM_EXIT_INPUT, "s3: the bucket \"%s\" does not exist at %s (NoSuchBucket)",
			     c->bucket, c->endpoint);
		return hm_error_hint(
			err, "create it first, or check the bucket name, the endpoint and the region");
	}
	if (strcmp(code, "NoSuchKey") == 0 || (r->status == 404 && !code[0]))
		return hm_error_set(err, HM_EXIT_NOT_FOUND, "s3: no object %s", where);
	if (strcmp(code, "AuthorizationHeaderMalformed") == 0 || strcmp(code, "PermanentRedirect") == 0 ||
	    r->status == 301 || r->status == 307) {
		hm_error_set(err, HM_EXIT_INPUT,
			     "s3: %s answers that the bucket \"%s\" is not in region %s (%s)", c->endpoint,
			     c->bucket, c->region, code[0] ? code : "redirect");
		return hm_error_hint(err, "set the bucket's region (AWS_REGION or the region option)");
	}
	if (r->status == 403) {
		hm_error_set(err, HM_EXIT_PERMISSION, "s3: %s %s: access denied (%s%s%s)", req->method, where,
			     code[0] ? code : "403", r->edoc.message[0] ? ": " : "", r->edoc.message);
		return hm_error_hint(
			err, "the key from %s needs list, read, write and delete rights on the bucket",
			c->cred.source);
	}
	if (r->status >= 500 || r->status == 429) {
		hm_error_set(err, HM_EXIT_IO, "s3: %s %s failed: HTTP %ld %s%s", req->method, where,
			     r->status, code[0] ? code : "", tries);
		return hm_error_hint(err, "the server is overloaded or failing; try again later");
	}
	return hm_error_set(err, HM_EXIT_IO, "s3: %s %s: unexpected HTTP %ld %s%s%s", req->method, where,
			    r->status, code, r->edoc.message[0] ? ": " : "", r->edoc.message);
}
