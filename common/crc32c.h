/* CRC-32C (Castagnoli), as PostgreSQL computes it for pg_control and backup_manifest
 * file checksums (INIT_CRC32C / COMP_CRC32C / FIN_CRC32C). */
#ifndef HM_CRC32C_H
#define HM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Start value of a running CRC-32C. */
#define HM_CRC32C_INIT 0xFFFFFFFFu

/* Feed len bytes into a running CRC (start with HM_CRC32C_INIT). */
uint32_t hm_crc32c_update(uint32_t crc, const void *data, size_t len);

/* Finish a running CRC (final XOR). */
static inline uint32_t hm_crc32c_final(uint32_t crc)
{
	return crc ^ 0xFFFFFFFFu;
}

/* Hex as backup_manifest writes it: the 4 bytes of the final value in little-endian order
 * (PostgreSQL memcpy's the uint32 on a little-endian host), so 0x12345678 -> "78563412". */
void hm_crc32c_hex(uint32_t final_crc, char hex[9]);

/* One-shot CRC-32C of a buffer, as PostgreSQL computes it for pg_control. */
uint32_t hm_crc32c(const void *data, size_t len);

#endif
