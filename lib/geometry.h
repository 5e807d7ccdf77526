/* nbdkit-vdo: the geometry block, PBN 0 (vdo-format.md 2). */
#ifndef VDO_GEOMETRY_H
#define VDO_GEOMETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"

#define VDO_GEOMETRY_MAGIC "dmvdo001"
#define VDO_GEOMETRY_MAGIC_SIZE 8
#define VDO_GEOMETRY_SIZE_5_0 101
#define VDO_GEOMETRY_SIZE_4_0 93
#define VDO_UUID_SIZE 16

enum vdo_volume_region_id {
  VDO_INDEX_REGION = 0,
  VDO_DATA_REGION = 1,
  VDO_VOLUME_REGION_COUNT = 2,
};

struct vdo_volume_region {
  uint32_t id;
  physical_block_number_t start_block;
};

/* The UDS index settings.  mem holds a signed value: -256, -512, -768 for
 * 0.25/0.5/0.75 GB, or a whole number of GB (vdo-format.md 2.4). */
struct vdo_index_config {
  uint32_t mem;
  uint32_t unused;
  bool sparse;
};

struct vdo_volume_geometry {
  uint32_t major_version;       /* 4 or 5, as decoded; encoding writes 5.0 */
  uint32_t unused;              /* the old release version */
  nonce_t nonce;
  uint8_t uuid[VDO_UUID_SIZE];
  block_count_t bio_offset;
  struct vdo_volume_region regions[VDO_VOLUME_REGION_COUNT];
  struct vdo_index_config index_config;
};

/* Encode geometry 5.0 into a whole 4096-byte block (the rest zeroed). */
void vdo_encode_volume_geometry (uint8_t block[VDO_BLOCK_SIZE],
                                 const struct vdo_volume_geometry *geometry);

/* Encode in the old 4.0 layout, which has no bio_offset (for tests and
 * conversions; nothing here writes it to a volume). */
void vdo_encode_volume_geometry_4_0 (uint8_t block[VDO_BLOCK_SIZE],
                                     const struct vdo_volume_geometry *geometry);

/* Decode and validate a geometry block, version 4.0 or 5.0.  Returns
 * VDO_NOT_FORMATTED for an all-zero block, VDO_BAD_MAGIC,
 * VDO_INCORRECT_COMPONENT, VDO_UNSUPPORTED_VERSION or
 * VDO_CHECKSUM_MISMATCH, logging the reason. */
int vdo_decode_volume_geometry (const uint8_t block[VDO_BLOCK_SIZE],
                                struct vdo_volume_geometry *geometry);

/* Region helpers: the data region starts at the super block. */
static inline physical_block_number_t
vdo_geometry_data_region_start (const struct vdo_volume_geometry *g)
{
  return g->regions[VDO_DATA_REGION].start_block;
}

static inline block_count_t
vdo_geometry_index_region_blocks (const struct vdo_volume_geometry *g)
{
  return g->regions[VDO_DATA_REGION].start_block
         - g->regions[VDO_INDEX_REGION].start_block;
}

#endif /* VDO_GEOMETRY_H */
