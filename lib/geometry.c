/* nbdkit-vdo: geometry block encoding and decoding. */
#include <config.h>

#include <inttypes.h>
#include <string.h>

#include "byte-order.h"
#include "checksum.h"
#include "component-header.h"
#include "geometry.h"
#include "logger.h"
#include "status.h"

/* Offsets shared by both versions. */
#define MAGIC_OFFSET 0
#define HEADER_OFFSET 8
#define UNUSED_OFFSET 28
#define NONCE_OFFSET 32
#define UUID_OFFSET 40
#define BIO_OFFSET_OFFSET 56

/* 4.0 lacks the 8-byte bio_offset, so everything after the UUID moves. */
static size_t
after_uuid_offset (uint32_t major)
{
  return major >= 5 ? 64 : 56;
}

static void
encode_geometry (uint8_t *block, const struct vdo_volume_geometry *g,
                 uint32_t major)
{
  size_t size = major >= 5 ? VDO_GEOMETRY_SIZE_5_0 : VDO_GEOMETRY_SIZE_4_0;
  struct vdo_component_header header = {
    .id = VDO_GEOMETRY_BLOCK_ID,
    .version = { major, 0 },
    .size = size,
  };
  uint8_t *p;
  int i;

  memset (block, 0, VDO_BLOCK_SIZE);
  memcpy (block + MAGIC_OFFSET, VDO_GEOMETRY_MAGIC, VDO_GEOMETRY_MAGIC_SIZE);
  vdo_encode_component_header (block + HEADER_OFFSET, &header);
  put_le32 (block + UNUSED_OFFSET, g->unused);
  put_le64 (block + NONCE_OFFSET, g->nonce);
  memcpy (block + UUID_OFFSET, g->uuid, VDO_UUID_SIZE);
  if (major >= 5)
    put_le64 (block + BIO_OFFSET_OFFSET, g->bio_offset);
  p = block + after_uuid_offset (major);
  for (i = 0; i < VDO_VOLUME_REGION_COUNT; i++, p += 12) {
    put_le32 (p, g->regions[i].id);
    put_le64 (p + 4, g->regions[i].start_block);
  }
  put_le32 (p, g->index_config.mem);
  put_le32 (p + 4, g->index_config.unused);
  p[8] = g->index_config.sparse ? 1 : 0;
  put_le32 (block + size - 4, vdo_crc32 (block, size - 4));
}

void
vdo_encode_volume_geometry (uint8_t block[VDO_BLOCK_SIZE],
                            const struct vdo_volume_geometry *geometry)
{
  encode_geometry (block, geometry, 5);
}

void
vdo_encode_volume_geometry_4_0 (uint8_t block[VDO_BLOCK_SIZE],
                                const struct vdo_volume_geometry *geometry)
{
  encode_geometry (block, geometry, 4);
}

static bool
is_all_zero (const uint8_t *buf, size_t len)
{
  size_t i;

  for (i = 0; i < len; i++)
    if (buf[i])
      return false;
  return true;
}

int
vdo_decode_volume_geometry (const uint8_t block[VDO_BLOCK_SIZE],
                            struct vdo_volume_geometry *g)
{
  struct vdo_component_header header;
  uint32_t stored, computed;
  const uint8_t *p;
  size_t size;
  int i;

  if (is_all_zero (block, VDO_BLOCK_SIZE)) {
    vdo_log_error ("geometry block is all zeros: the device holds no VDO volume");
    return VDO_NOT_FORMATTED;
  }
  if (memcmp (block + MAGIC_OFFSET, VDO_GEOMETRY_MAGIC,
              VDO_GEOMETRY_MAGIC_SIZE) != 0) {
    vdo_log_error ("geometry block has bad magic: not a VDO volume");
    return VDO_BAD_MAGIC;
  }

  vdo_decode_component_header (block + HEADER_OFFSET, &header);
  if (header.id != VDO_GEOMETRY_BLOCK_ID) {
    vdo_log_error ("geometry block has component id %" PRIu32 ", expected %d",
                   header.id, VDO_GEOMETRY_BLOCK_ID);
    return VDO_INCORRECT_COMPONENT;
  }
  /* Old majors must be exactly 4.0, newer ones exactly 5.0. */
  if (header.version.major <= 4) {
    if (header.version.major != 4 || header.version.minor != 0
        || header.size != VDO_GEOMETRY_SIZE_4_0)
      goto unsupported;
  }
  else if (header.version.major != 5 || header.version.minor != 0
           || header.size != VDO_GEOMETRY_SIZE_5_0)
    goto unsupported;

  size = header.size;
  stored = get_le32 (block + size - 4);
  computed = vdo_crc32 (block, size - 4);
  if (stored != computed) {
    vdo_log_error ("geometry block checksum mismatch: stored 0x%08" PRIx32
                   ", computed 0x%08" PRIx32, stored, computed);
    return VDO_CHECKSUM_MISMATCH;
  }

  memset (g, 0, sizeof *g);
  g->major_version = header.version.major;
  g->unused = get_le32 (block + UNUSED_OFFSET);
  g->nonce = get_le64 (block + NONCE_OFFSET);
  memcpy (g->uuid, block + UUID_OFFSET, VDO_UUID_SIZE);
  g->bio_offset = g->major_version >= 5 ? get_le64 (block + BIO_OFFSET_OFFSET) : 0;
  p = block + after_uuid_offset (g->major_version);
  for (i = 0; i < VDO_VOLUME_REGION_COUNT; i++, p += 12) {
    g->regions[i].id = get_le32 (p);
    g->regions[i].start_block = get_le64 (p + 4);
  }
  g->index_config.mem = get_le32 (p);
  g->index_config.unused = get_le32 (p + 4);
  g->index_config.sparse = p[8] != 0;
  return VDO_SUCCESS;

 unsupported:
  vdo_log_error ("geometry block version %" PRIu32 ".%" PRIu32 " (size %" PRIu64
                 ") is not supported: expected 5.0 (size 101) or 4.0 (size 93)",
                 header.version.major, header.version.minor, header.size);
  return VDO_UNSUPPORTED_VERSION;
}
