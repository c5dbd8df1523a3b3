/* libFuzzer target: the readers of the cross-major path that see bytes from outside: the
 * filter over pg_dumpall's output (role names are the user's), the filter over the schema SQL
 * of pg_restore --section=pre-data (names, comments and bodies are the user's), the list
 * matching of the
 * preflight over an image's extension and `locale -a` listing, and the --locale-map
 * reader. The input is split at the
 * first NUL: a name, then the text. Invariants: the filters never grow their input; the
 * globals filter keeps every line but the superuser's CREATE ROLE, the pre-data filter with
 * nothing to drop gives its input back byte for byte; nothing reads out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../migrate/major.h"
#include "../../migrate/preflight_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t nlen = nul ? (size_t)(nul - data) : (size < 64 ? size : 64);
	if (nlen > 150)
		nlen = 150;
	char name[151];
	memcpy(name, data, nlen);
	name[nlen] = '\0';
	size_t off = nul ? (size_t)(nul - data) + 1 : nlen;
	size_t tlen = size - off;
	char *text = malloc(tlen + 1), *out = malloc(tlen + 1);
	if (!text || !out)
		goto done;
	memcpy(text, data + off, tlen);
	text[tlen] = '\0';
	size_t o = hm_major_filter_globals(text, tlen, name, out);
	if (o > tlen || out[o] != '\0')
		abort();
	for (int create = 0; create < 2; create++) {
		long dropped = -1;
		o = hm_major_filter_predata(text, tlen, create, out, &dropped);
		if (o > tlen || out[o] != '\0' || dropped < 0 || (!create && !dropped && o != tlen))
			abort();
	}
	/* text as a NUL-terminated list (stops at an embedded NUL, as the C string it is) */
	(void)hm_pf_list_has(text, name, 0);
	(void)hm_pf_list_has(text, name, 1);
	char to[64], map[256] = "";
	hm_error err;
	(void)hm_major_locale_map_lookup(text, name, to, sizeof to);
	if (hm_major_locale_map_add(map, sizeof map, name, &err) == 0 &&
	    hm_major_locale_map_lookup(map, "x", to, sizeof to) < 0)
		abort();
	char n1[64], o1[64];
	(void)hm_major_dir_names(name, 15, 17, n1, sizeof n1, o1, sizeof o1);
done:
	free(text);
	free(out);
	return 0;
}
