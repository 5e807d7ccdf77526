/* nbdkit-vdo: how vdoformat lays out a volume (vdo-format.md 4), and the
 * slab and block-map arithmetic everything reading a volume shares.
 *
 * Pure computation: nothing here reads or writes a device.
 */
#ifndef VDO_VOLUME_LAYOUT_H
#define VDO_VOLUME_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "geometry.h"
#include "super-block.h"

/* Fixed partitions vdoformat places around the slab depot. */
#define VDO_BLOCK_MAP_PARTITION_BLOCKS VDO_BLOCK_MAP_ROOT_COUNT
#define VDO_SLAB_SUMMARY_PARTITION_BLOCKS VDO_SLAB_SUMMARY_BLOCKS
#define VDO_RECOVERY_JOURNAL_PARTITION_BLOCKS VDO_DEFAULT_RECOVERY_JOURNAL_SIZE

/* What a volume is formatted from. */
struct vdo_layout_params {
  block_count_t physical_blocks;        /* the whole device, in 4 KiB blocks */
  block_count_t logical_blocks;         /* 0: vdoformat's default (4.6) */
  unsigned int slab_bits;               /* 13..23 */
  uint32_t index_memory;                /* geometry mem value */
  bool sparse_index;
};

/* A run of PBNs. */
struct vdo_pbn_range {
  physical_block_number_t start;
  block_count_t count;
};

/* Block map forest pages for a logical size (vdo-format.md 5.9).  levels[h]
 * is the page count per tree at height h + 1 (1 = just above the leaves,
 * 4 = the root, 5 = the in-memory super-root). */
struct vdo_forest_size {
  block_count_t leaf_pages;             /* all trees, at least 1 */
  block_count_t leaf_pages_per_tree;
  block_count_t levels[VDO_BLOCK_MAP_TREE_HEIGHT];
  block_count_t interior_pages;         /* heights 1..3 of all trees */
};

/* Derive a slab's layout from its size and journal size (4.4).  Returns
 * VDO_BAD_CONFIGURATION, logged, when the journal, or the journal and the
 * reference counts, leave no data blocks. */
int vdo_configure_slab (block_count_t slab_blocks,
                        block_count_t slab_journal_blocks,
                        struct slab_config *config);

/* Compute everything vdoformat writes (4.3-4.6): the geometry block, less
 * nonce and UUID, and the super block state of a NEW volume, less the
 * nonce.  Errors, each logged: VDO_BAD_SLAB_SIZE for slab bits outside
 * 13..23, VDO_OUT_OF_RANGE for more than 2^36 physical or 2^40 logical
 * blocks, VDO_BAD_INDEX_CONFIG, VDO_NO_SPACE when not even one slab fits
 * (see vdo_compute_minimum_physical_blocks), VDO_TOO_MANY_SLABS beyond
 * 8192 slabs. */
int vdo_compute_volume_layout (const struct vdo_layout_params *params,
                               struct vdo_volume_geometry *geometry,
                               struct vdo_component_states *states);

/* The smallest device, in blocks, that holds one slab with this index
 * (4.7), for "Minimum required size for VDO volume". */
int vdo_compute_minimum_physical_blocks (uint32_t index_memory,
                                         bool sparse_index,
                                         unsigned int slab_bits,
                                         block_count_t *blocks);

/* The largest device, in blocks, that formats: 8192 slabs plus an unused
 * tail of less than one slab, capped at 2^36 blocks. */
int vdo_compute_maximum_physical_blocks (uint32_t index_memory,
                                         bool sparse_index,
                                         unsigned int slab_bits,
                                         block_count_t *blocks);

/* vdoformat's default logical size for data_blocks usable data blocks
 * (slab count times data blocks per slab): what remains after the block
 * map pages needed to map it (4.6). */
block_count_t vdo_compute_default_logical_blocks (block_count_t data_blocks);

/* Forest page counts for logical_blocks (5.9). */
void vdo_compute_forest_size (block_count_t logical_blocks,
                              struct vdo_forest_size *forest);

/* Slab depot arithmetic on a recorded depot state (4.4). */
block_count_t vdo_depot_slab_count (const struct slab_depot_state_2_0 *depot);
physical_block_number_t
vdo_slab_origin (const struct slab_depot_state_2_0 *depot, block_count_t slab);

/* Whether pbn may hold data, a compressed block or a tree page: the zero
 * block, or a block in the data part of a slab. */
bool vdo_is_physical_data_block (const struct slab_depot_state_2_0 *depot,
                                 physical_block_number_t pbn);

/* The slab holding pbn and the offset inside it; false outside the
 * slabs. */
bool vdo_slab_of_pbn (const struct slab_depot_state_2_0 *depot,
                      physical_block_number_t pbn,
                      block_count_t *slab, block_count_t *offset);

/* The parts of slab n: data, reference count blocks, slab journal.  An
 * empty range for a slab the depot does not have. */
struct vdo_pbn_range
vdo_slab_data_range (const struct slab_depot_state_2_0 *depot,
                     block_count_t slab);
struct vdo_pbn_range
vdo_slab_reference_range (const struct slab_depot_state_2_0 *depot,
                          block_count_t slab);
struct vdo_pbn_range
vdo_slab_journal_range (const struct slab_depot_state_2_0 *depot,
                        block_count_t slab);

#endif /* VDO_VOLUME_LAYOUT_H */
