/* nbdkit-vdo: VDO's CRC-32 variant, computed by zlib. */
#include <config.h>

#include <zlib.h>

#include "checksum.h"

uint32_t
vdo_crc32 (const uint8_t *buf, size_t len)
{
  return (uint32_t) crc32 (0xFFFFFFFFUL, buf, (uInt) len);
}

uint32_t
vdo_crc32_extend (uint32_t crc, const uint8_t *buf, size_t len)
{
  /* zlib's register carries over: its crc32 (crc, ...) continues. */
  return (uint32_t) crc32 (crc, buf, (uInt) len);
}
