/* nbdkit-vdo: the super block and its component states (vdo-format.md 3).
 *
 * The super block is the first block of the data region.  Its 438 encoded
 * bytes hold the VDO component (state, counters, config), the partition
 * layout and the saved states of the recovery journal, slab depot and
 * block map, followed by a CRC-32.
 */
#ifndef VDO_SUPER_BLOCK_H
#define VDO_SUPER_BLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "component-header.h"
#include "constants.h"
#include "geometry.h"

#define VDO_SUPER_BLOCK_ENCODED_SIZE 438
#define VDO_PARTITION_COUNT 4

enum vdo_state {
  VDO_DIRTY = 0,
  VDO_NEW = 1,
  VDO_CLEAN = 2,
  VDO_READ_ONLY_MODE = 3,
  VDO_FORCE_REBUILD = 4,
  VDO_RECOVERING = 5,
  VDO_REPLAYING = 6,
  VDO_REBUILD_FOR_UPGRADE = 7,
  VDO_STATE_COUNT = 8,
};

enum vdo_partition_id {
  VDO_BLOCK_MAP_PARTITION = 0,
  VDO_SLAB_DEPOT_PARTITION = 1,
  VDO_RECOVERY_JOURNAL_PARTITION = 2,
  VDO_SLAB_SUMMARY_PARTITION = 3,
};

struct vdo_config {
  block_count_t logical_blocks;
  block_count_t physical_blocks;
  block_count_t slab_size;
  block_count_t recovery_journal_size;
  block_count_t slab_journal_blocks;
};

struct vdo_partition {
  uint8_t id;
  physical_block_number_t offset;
  physical_block_number_t base;   /* obsolete; kept to re-encode as read */
  block_count_t count;
};

/* The layout keeps partitions in their on-disk record order, which is not
 * canonical (vdoformat writes 1, 2, 3, 0; each tool load+save reverses it);
 * vdo_layout_find_partition looks them up by id. */
struct vdo_layout {
  physical_block_number_t first_free;
  physical_block_number_t last_free;
  uint8_t partition_count;
  struct vdo_partition partitions[VDO_PARTITION_COUNT];
};

struct recovery_journal_state_7_0 {
  sequence_number_t journal_start;
  block_count_t logical_blocks_used;
  block_count_t block_map_data_blocks;
};

struct slab_config {
  block_count_t slab_blocks;
  block_count_t data_blocks;
  block_count_t reference_count_blocks;
  block_count_t slab_journal_blocks;
  block_count_t slab_journal_flushing_threshold;
  block_count_t slab_journal_blocking_threshold;
  block_count_t slab_journal_scrubbing_threshold;
};

struct slab_depot_state_2_0 {
  struct slab_config slab_config;
  physical_block_number_t first_block;
  physical_block_number_t last_block;
  uint8_t zone_count;
};

struct block_map_state_2_0 {
  physical_block_number_t flat_page_origin;
  block_count_t flat_page_count;
  physical_block_number_t root_origin;
  block_count_t root_count;
};

/* Everything the super block records. */
struct vdo_component_states {
  uint32_t unused;                /* copy of the geometry's unused field */
  struct vdo_version volume_version;
  uint32_t state;                 /* enum vdo_state, as stored */
  uint64_t complete_recoveries;
  uint64_t read_only_recoveries;
  struct vdo_config config;
  nonce_t nonce;
  struct vdo_layout layout;
  struct recovery_journal_state_7_0 recovery_journal;
  struct slab_depot_state_2_0 slab_depot;
  struct block_map_state_2_0 block_map;
};

/* Encode the whole 4096-byte super block (438 bytes, then zeros). */
void vdo_encode_super_block (uint8_t block[VDO_BLOCK_SIZE],
                             const struct vdo_component_states *states);

/* Decode the super block: header, checksum and every component header,
 * in dm-vdo's order of checks.  Does not check the configuration against
 * the geometry or the device; see vdo_validate_component_states. */
int vdo_decode_super_block (const uint8_t block[VDO_BLOCK_SIZE],
                            struct vdo_component_states *states);

/* Validate decoded states against the geometry and the device size in
 * blocks, as the kernel does at load (vdo-format.md 8.3, 8.4), plus this
 * project's stricter checks: state in range, partitions inside the
 * device.  device_blocks of 0 skips the device checks. */
int vdo_validate_component_states (const struct vdo_component_states *states,
                                   const struct vdo_volume_geometry *geometry,
                                   block_count_t device_blocks);

/* Validate a configuration alone (vdo_validate_config). */
int vdo_validate_config (const struct vdo_config *config,
                         block_count_t device_blocks);

const struct vdo_partition *
vdo_layout_find_partition (const struct vdo_layout *layout, uint8_t id);

const char *vdo_state_name (uint32_t state);
const char *vdo_partition_name (uint8_t id);

/* Whether a state needs journal replay, or a read-only rebuild. */
bool vdo_state_requires_recovery (uint32_t state);
bool vdo_state_requires_read_only_rebuild (uint32_t state);

#endif /* VDO_SUPER_BLOCK_H */
