/* nbdkit-vdo: VDO's CRC-32 variant, computed by zlib. */
#include <config.h>

#include <zlib.h>

#include "checksum.h"

uint32_t
vdo_crc32 (const uint8_t *buf, size_t len)
{
  return (uint32_t) crc32 (0xFFFFFFFFUL, buf, (uInt) len);
}
