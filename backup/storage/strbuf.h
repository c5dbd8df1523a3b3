/* A growable NUL-terminated byte buffer for building requests (canonical strings, XML
 * bodies). Allocation failure is sticky: check hm_strbuf_failed() once at the end. */
#ifndef HM_STRBUF_H
#define HM_STRBUF_H

#include <stddef.h>

typedef struct hm_strbuf {
	char *s;
	size_t len, cap;
	int failed;
} hm_strbuf;

#define HM_STRBUF_INIT                                                                                       \
	{                                                                                                    \
		NULL, 0, 0, 0                                                                                \
	}

void hm_strbuf_add(hm_strbuf *b, const void *data, size_t len);
void hm_strbuf_adds(hm_strbuf *b, const char *s);
void hm_strbuf_addc(hm_strbuf *b, char c);
void hm_strbuf_addf(hm_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* XML character data: & < > " ' escaped. */
void hm_strbuf_add_xml(hm_strbuf *b, const char *s);
int hm_strbuf_failed(const hm_strbuf *b);
/* Hand over the string (caller frees; "" when empty) or NULL after a failure. */
char *hm_strbuf_take(hm_strbuf *b);
void hm_strbuf_free(hm_strbuf *b);

#endif
