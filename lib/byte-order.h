/* nbdkit-vdo: little-endian field access for on-disk encodings.
 *
 * Every VDO structure is packed and little-endian.  These helpers read and
 * write unaligned fields at byte offsets, so encoders never depend on host
 * struct layout.
 */
#ifndef VDO_BYTE_ORDER_H
#define VDO_BYTE_ORDER_H

#include <stdint.h>
#include <string.h>
#include <endian.h>

static inline uint16_t
get_le16 (const uint8_t *p)
{
  uint16_t v;
  memcpy (&v, p, sizeof v);
  return le16toh (v);
}

static inline uint32_t
get_le32 (const uint8_t *p)
{
  uint32_t v;
  memcpy (&v, p, sizeof v);
  return le32toh (v);
}

static inline uint64_t
get_le64 (const uint8_t *p)
{
  uint64_t v;
  memcpy (&v, p, sizeof v);
  return le64toh (v);
}

static inline void
put_le16 (uint8_t *p, uint16_t v)
{
  v = htole16 (v);
  memcpy (p, &v, sizeof v);
}

static inline void
put_le32 (uint8_t *p, uint32_t v)
{
  v = htole32 (v);
  memcpy (p, &v, sizeof v);
}

static inline void
put_le64 (uint8_t *p, uint64_t v)
{
  v = htole64 (v);
  memcpy (p, &v, sizeof v);
}

#endif /* VDO_BYTE_ORDER_H */
