/* CRC-32C with the SSE 4.2 crc32 instruction where the CPU has it (the fast path matters:
 * verify runs it over every byte of a backup), and a bitwise fallback elsewhere. */
#include "crc32c.h"

#include <stdio.h>
#include <string.h>

/* Reflected polynomial 0x1EDC6F41. */
#define CRC32C_POLY 0x82F63B78u

/* Portable bit-at-a-time CRC-32C. */
static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (CRC32C_POLY & (0u - (crc & 1u)));
	}
	return crc;
}

#if defined(__x86_64__)
/* Hardware CRC-32C, 8 bytes per instruction. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}
#endif

uint32_t hm_crc32c_update(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_hw(crc, data, len);
#endif
	return crc32c_sw(crc, data, len);
}

void hm_crc32c_hex(uint32_t final_crc, char hex[9])
{
	snprintf(hex, 9, "%02x%02x%02x%02x", final_crc & 0xff, (final_crc >> 8) & 0xff,
		 (final_crc >> 16) & 0xff, (final_crc >> 24) & 0xff);
}

uint32_t hm_crc32c(const void *data, size_t len)
{
	return hm_crc32c_final(hm_crc32c_update(HM_CRC32C_INIT, data, len));
}
