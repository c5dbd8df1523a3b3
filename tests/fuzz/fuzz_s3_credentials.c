/* libFuzzer target: the AWS credentials file parser (backup/storage/s3_cred.c). The first
 * byte picks the profile and whether bare keys count; what it accepts must be two non-empty
 * printable values. Seeds: fuzz_s3_credentials.seeds/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../backup/storage/s3_cred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *profiles[] = {NULL, "default", "backup", "a b"};
	hm_s3_credentials c;
	hm_error err;
	if (size < 1)
		return 0;
	int rc = hm_s3_credentials_parse((const char *)data + 1, size - 1, profiles[data[0] & 3], data[0] & 4,
					 "fuzz", &c, &err);
	if (rc == 0) {
		if (!c.access_key[0] || !c.secret_key[0])
			abort();
		for (const char *p = c.secret_key; *p; p++)
			if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
				abort();
	}
	hm_s3_credentials_wipe(&c);
	return 0;
}
