/* libFuzzer target: the three-way merge of the settings files a live rollback reads from a
 * data directory (migrate/rollback_settings.c). Input: base, after and now separated by NUL
 * bytes, the first byte choosing pg_hba.conf (odd) or postgresql.conf syntax. The merge must
 * never crash, and must be idempotent: merging its own output again as "now" puts nothing
 * more back and returns it unchanged. Seeds:
 * fuzz_settings_merge.seeds/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../migrate/rollback_settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	int hba = data[0] & 1;
	char *buf = malloc(size + 2);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	buf[size] = '\0';
	const char *parts[3] = {buf, NULL, NULL};
	size_t len = size - 1, off = strlen(buf);
	for (int i = 1; i < 3 && off < len; i++) {
		parts[i] = buf + off + 1;
		off += 1 + strlen(parts[i]);
	}
	char *out = NULL, *again = NULL;
	int rev = 0, rev2 = 0;
	if (hm_settings_merge(parts[0], parts[1], parts[2], hba, &out, &rev) == 0) {
		if (!out)
			abort();
		/* idempotent: the merged text has nothing of the unified container's left to put back */
		if (hm_settings_merge(parts[0], parts[1], out, hba, &again, &rev2) == 0 &&
		    (!again || rev2 != 0 || strcmp(again, out) != 0))
			abort();
	}
	free(out);
	free(again);
	free(buf);
	return 0;
}
