/* nbdkit-vdo: the CRC-32 used by the geometry block and the super block.
 *
 * Reflected CRC-32 (IEEE polynomial) with the register starting at 0 and a
 * final inversion: zlib's crc32() seeded with 0xFFFFFFFF (vdo-format.md 1.4).
 */
#ifndef VDO_CHECKSUM_H
#define VDO_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

uint32_t vdo_crc32 (const uint8_t *buf, size_t len);

/* The CRC of a longer buffer from that of its start: for A then B,
 * vdo_crc32_extend (vdo_crc32 (A), B) == vdo_crc32 (A B). */
uint32_t vdo_crc32_extend (uint32_t crc, const uint8_t *buf, size_t len);

#endif /* VDO_CHECKSUM_H */
