/* libFuzzer target: the archive manifest decoder (common/manifest.c) must reject any input
 * cleanly, never crash or leak; what it accepts must encode and decode again to the same
 * entries. Seeds: fuzz_manifest.seeds/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hm_manifest m, again;
	hm_error err;
	char *json = NULL;
	size_t len = 0;
	if (hm_manifest_decode((const char *)data, size, "fuzz", &m, &err) != 0)
		return 0;
	if (hm_manifest_encode(&m, &json, &len, &err) == 0) {
		if (hm_manifest_decode(json, len, "fuzz-again", &again, &err) != 0)
			abort(); /* what we wrote we must read */
		if (again.count != m.count)
			abort();
		for (size_t i = 0; i < m.count; i++)
			if (hm_manifest_entry_compare(&m.entries[i],
						      hm_manifest_find(&again, m.entries[i].path), &err) != 0)
				abort();
		hm_manifest_free(&again);
		free(json);
	}
	for (size_t i = 0; i < m.count; i++)
		(void)hm_manifest_find(&m, m.entries[i].path);
	hm_manifest_free(&m);
	return 0;
}
