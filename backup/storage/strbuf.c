/* Growable buffer: doubles its capacity, always keeps a NUL after the data. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(hm_strbuf *b, size_t more)
{
	if (b->failed)
		return -1;
	if (more > ((size_t)-1) / 2 - b->len) {
		b->failed = 1;
		return -1;
	}
	if (b->len + more + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s) {
		b->failed = 1;
		return -1;
	}
	b->s = s;
	b->cap = cap;
	return 0;
}

void hm_strbuf_add(hm_strbuf *b, const void *data, size_t len)
{
	if (reserve(b, len) != 0)
		return;
	if (len)
		memcpy(b->s + b->len, data, len);
	b->len += len;
	b->s[b->len] = '\0';
}

void hm_strbuf_adds(hm_strbuf *b, const char *s)
{
	hm_strbuf_add(b, s, strlen(s));
}

void hm_strbuf_addc(hm_strbuf *b, char c)
{
	hm_strbuf_add(b, &c, 1);
}

void hm_strbuf_addf(hm_strbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if (reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void hm_strbuf_add_xml(hm_strbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			hm_strbuf_adds(b, "&amp;");
			break;
		case '<':
			hm_strbuf_adds(b, "&lt;");
			break;
		case '>':
			hm_strbuf_adds(b, "&gt;");
			break;
		case '"':
			hm_strbuf_adds(b, "&quot;");
			break;
		case '\'':
			hm_strbuf_adds(b, "&apos;");
			break;
		default:
			hm_strbuf_addc(b, *s);
		}
	}
}

int hm_strbuf_failed(const hm_strbuf *b)
{
	return b->failed;
}

char *hm_strbuf_take(hm_strbuf *b)
{
	if (b->failed) {
		hm_strbuf_free(b);
		return NULL;
	}
	char *s = b->s ? b->s : strdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void hm_strbuf_free(hm_strbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}
