/* nbdkit-vdo: vdoformat's layout computation and slab arithmetic. */
#include <config.h>

#include <inttypes.h>
#include <string.h>

#include "index-geometry.h"
#include "logger.h"
#include "math-util.h"
#include "status.h"
#include "volume-layout.h"

/* What a NEW volume records. */
static const struct vdo_version volume_version_67_0 = { 67, 0 };
#define GEOMETRY_MAJOR_VERSION 5
#define INDEX_REGION_START 1            /* right after the geometry block */
#define FLAT_PAGE_ORIGIN 1              /* remnants of the old flat block map */
#define FLAT_PAGE_COUNT 0

/* Blocks every layout needs besides the slabs: the super block and the
 * fixed partitions. */
#define SUPER_BLOCK_BLOCKS 1
#define FIXED_PARTITION_BLOCKS (VDO_BLOCK_MAP_PARTITION_BLOCKS \
                                + VDO_RECOVERY_JOURNAL_PARTITION_BLOCKS \
                                + VDO_SLAB_SUMMARY_PARTITION_BLOCKS)

/* The scrubbing threshold keeps room for this many block-map increments
 * after it, whatever the journal size. */
#define SLAB_JOURNAL_RESERVED_ENTRIES 2048

int
vdo_configure_slab (block_count_t slab_blocks,
                    block_count_t slab_journal_blocks,
                    struct slab_config *config)
{
  block_count_t ref_blocks, flushing, blocking, scrubbing, reserved;

  if (slab_journal_blocks >= slab_blocks) {
    vdo_log_error ("a slab journal of %" PRIu64 " blocks leaves no room in "
                   "a slab of %" PRIu64 " blocks",
                   slab_journal_blocks, slab_blocks);
    return VDO_BAD_CONFIGURATION;
  }
  ref_blocks = vdo_div_round_up (slab_blocks - slab_journal_blocks,
                             VDO_COUNTS_PER_BLOCK);
  if (ref_blocks + slab_journal_blocks >= slab_blocks) {
    vdo_log_error ("a slab of %" PRIu64 " blocks has no data blocks left "
                   "after %" PRIu64 " reference count and %" PRIu64
                   " journal blocks",
                   slab_blocks, ref_blocks, slab_journal_blocks);
    return VDO_BAD_CONFIGURATION;
  }

  /* Flush at three quarters full; block new entries 5/7 of the way from
   * there to the end, so successive recoveries still have room; scrub
   * while the reserved entries still fit. */
  flushing = (3 * slab_journal_blocks + 3) / 4;
  blocking = flushing + (slab_journal_blocks - flushing) * 5 / 7;
  reserved = 1 + SLAB_JOURNAL_RESERVED_ENTRIES / VDO_SLAB_JOURNAL_FULL_ENTRIES;
  scrubbing = slab_journal_blocks > reserved
              ? slab_journal_blocks - reserved : blocking;
  if (blocking > scrubbing)
    blocking = scrubbing;

  memset (config, 0, sizeof *config);
  config->slab_blocks = slab_blocks;
  config->data_blocks = slab_blocks - ref_blocks - slab_journal_blocks;
  config->reference_count_blocks = ref_blocks;
  config->slab_journal_blocks = slab_journal_blocks;
  config->slab_journal_flushing_threshold = flushing;
  config->slab_journal_blocking_threshold = blocking;
  config->slab_journal_scrubbing_threshold = scrubbing;
  return VDO_SUCCESS;
}

static int
check_slab_bits (unsigned int slab_bits)
{
  if (slab_bits < VDO_MIN_SLAB_BITS || slab_bits > VDO_MAX_SLAB_BITS) {
    vdo_log_error ("invalid slab bits %u, must be %d-%d",
                   slab_bits, VDO_MIN_SLAB_BITS, VDO_MAX_SLAB_BITS);
    return VDO_BAD_SLAB_SIZE;
  }
  return VDO_SUCCESS;
}

/* Blocks before the slab depot: geometry, index region, super block and
 * block map roots; plus the journal and summary after it. */
static int
compute_overhead_blocks (uint32_t index_memory, bool sparse_index,
                         block_count_t *blocks)
{
  block_count_t index_blocks;
  int result = vdo_compute_index_blocks (index_memory, sparse_index,
                                         &index_blocks);

  if (result != VDO_SUCCESS)
    return result;
  *blocks = INDEX_REGION_START + index_blocks + SUPER_BLOCK_BLOCKS
            + FIXED_PARTITION_BLOCKS;
  return VDO_SUCCESS;
}

int
vdo_compute_minimum_physical_blocks (uint32_t index_memory,
                                     bool sparse_index,
                                     unsigned int slab_bits,
                                     block_count_t *blocks)
{
  block_count_t overhead;
  int result = check_slab_bits (slab_bits);

  if (result == VDO_SUCCESS)
    result = compute_overhead_blocks (index_memory, sparse_index, &overhead);
  if (result != VDO_SUCCESS)
    return result;
  *blocks = overhead + ((block_count_t) 1 << slab_bits);
  return VDO_SUCCESS;
}

int
vdo_compute_maximum_physical_blocks (uint32_t index_memory,
                                     bool sparse_index,
                                     unsigned int slab_bits,
                                     block_count_t *blocks)
{
  block_count_t overhead, maximum;
  int result = check_slab_bits (slab_bits);

  if (result == VDO_SUCCESS)
    result = compute_overhead_blocks (index_memory, sparse_index, &overhead);
  if (result != VDO_SUCCESS)
    return result;
  /* The unused tail after the last slab must stay short of a slab. */
  maximum = overhead + ((block_count_t) (VDO_MAX_SLABS + 1) << slab_bits) - 1;
  *blocks = maximum < VDO_MAX_PHYSICAL_BLOCKS
            ? maximum : VDO_MAX_PHYSICAL_BLOCKS;
  return VDO_SUCCESS;
}

void
vdo_compute_forest_size (block_count_t logical_blocks,
                         struct vdo_forest_size *forest)
{
  block_count_t level;
  int h;

  memset (forest, 0, sizeof *forest);
  forest->leaf_pages = vdo_div_round_up (logical_blocks,
                                     VDO_BLOCK_MAP_ENTRIES_PER_PAGE);
  if (forest->leaf_pages == 0)
    forest->leaf_pages = 1;
  /* Leaf pages go to the trees round-robin. */
  forest->leaf_pages_per_tree = vdo_div_round_up (forest->leaf_pages,
                                              VDO_BLOCK_MAP_ROOT_COUNT);
  level = forest->leaf_pages_per_tree;
  for (h = 0; h < VDO_BLOCK_MAP_TREE_HEIGHT; h++) {
    level = vdo_div_round_up (level, VDO_BLOCK_MAP_ENTRIES_PER_PAGE);
    forest->levels[h] = level;
  }
  /* Roots live in the block map partition and super-roots only in
   * memory, so neither comes out of the slabs. */
  for (h = 0; h < VDO_BLOCK_MAP_TREE_HEIGHT - 2; h++)
    forest->interior_pages += VDO_BLOCK_MAP_ROOT_COUNT * forest->levels[h];
}

block_count_t
vdo_compute_default_logical_blocks (block_count_t data_blocks)
{
  struct vdo_forest_size forest;
  block_count_t leaves;

  /* The interior estimate maps all data blocks; the leaves only what is
   * left after it, as vdoformat counts them. */
  vdo_compute_forest_size (data_blocks, &forest);
  if (forest.interior_pages >= data_blocks)
    return 0;
  leaves = vdo_div_round_up (data_blocks - forest.interior_pages,
                         VDO_BLOCK_MAP_ENTRIES_PER_PAGE);
  if (forest.interior_pages + leaves >= data_blocks)
    return 0;
  return data_blocks - forest.interior_pages - leaves;
}

static void
set_partition (struct vdo_partition *partition, uint8_t id,
               physical_block_number_t offset, block_count_t count)
{
  partition->id = id;
  partition->offset = offset;
  partition->base = 0;
  partition->count = count;
}

int
vdo_compute_volume_layout (const struct vdo_layout_params *params,
                           struct vdo_volume_geometry *geometry,
                           struct vdo_component_states *states)
{
  block_count_t physical = params->physical_blocks;
  block_count_t index_blocks, slab_blocks, slab_count, logical;
  physical_block_number_t data_start, root_origin, depot_start;
  physical_block_number_t journal_start = 0, summary_start = 0;
  struct slab_config slab;
  struct vdo_layout *layout;
  int result;

  result = check_slab_bits (params->slab_bits);
  if (result != VDO_SUCCESS)
    return result;
  if (physical > VDO_MAX_PHYSICAL_BLOCKS) {
    vdo_log_error ("physical size %" PRIu64 " blocks exceeds the maximum "
                   "(%" PRIu64 ")", physical, VDO_MAX_PHYSICAL_BLOCKS);
    return VDO_OUT_OF_RANGE;
  }
  if (params->logical_blocks > VDO_MAX_LOGICAL_BLOCKS) {
    vdo_log_error ("logical size %" PRIu64 " blocks exceeds the maximum "
                   "(%" PRIu64 ")", params->logical_blocks,
                   VDO_MAX_LOGICAL_BLOCKS);
    return VDO_OUT_OF_RANGE;
  }
  result = vdo_compute_index_blocks (params->index_memory,
                                     params->sparse_index, &index_blocks);
  if (result != VDO_SUCCESS)
    return result;
  slab_blocks = (block_count_t) 1 << params->slab_bits;
  result = vdo_configure_slab (slab_blocks, VDO_DEFAULT_SLAB_JOURNAL_SIZE,
                               &slab);
  if (result != VDO_SUCCESS)
    return result;

  /* The layout runs from the block after the super block to the end of
   * the device: roots at its start, summary and journal at its end, and
   * the depot in between, holding whole slabs only. */
  data_start = INDEX_REGION_START + index_blocks;
  root_origin = data_start + SUPER_BLOCK_BLOCKS;
  depot_start = root_origin + VDO_BLOCK_MAP_PARTITION_BLOCKS;
  slab_count = 0;
  if (root_origin + FIXED_PARTITION_BLOCKS <= physical) {
    summary_start = physical - VDO_SLAB_SUMMARY_PARTITION_BLOCKS;
    journal_start = summary_start - VDO_RECOVERY_JOURNAL_PARTITION_BLOCKS;
    slab_count = (journal_start - depot_start) >> params->slab_bits;
  }
  if (slab_count == 0) {
    block_count_t minimum = root_origin + FIXED_PARTITION_BLOCKS + slab_blocks;

    /* vdoformat's words, so scripts written for it keep working. */
    vdo_log_error ("%" PRIu64 " physical blocks cannot hold one slab; "
                   "Minimum required size for VDO volume: %" PRIu64 " bytes",
                   physical, minimum * VDO_BLOCK_SIZE);
    return VDO_NO_SPACE;
  }
  if (slab_count > VDO_MAX_SLABS) {
    vdo_log_error ("%" PRIu64 " physical blocks make %" PRIu64 " slabs of "
                   "%" PRIu64 " blocks, more than the maximum of %d",
                   physical, slab_count, slab_blocks, VDO_MAX_SLABS);
    return VDO_TOO_MANY_SLABS;
  }

  logical = params->logical_blocks;
  if (logical == 0)
    logical = vdo_compute_default_logical_blocks (slab_count
                                                  * slab.data_blocks);

  memset (geometry, 0, sizeof *geometry);
  geometry->major_version = GEOMETRY_MAJOR_VERSION;
  geometry->regions[VDO_INDEX_REGION].id = VDO_INDEX_REGION;
  geometry->regions[VDO_INDEX_REGION].start_block = INDEX_REGION_START;
  geometry->regions[VDO_DATA_REGION].id = VDO_DATA_REGION;
  geometry->regions[VDO_DATA_REGION].start_block = data_start;
  geometry->index_config.mem = params->index_memory;
  geometry->index_config.sparse = params->sparse_index;

  memset (states, 0, sizeof *states);
  states->volume_version = volume_version_67_0;
  states->state = VDO_NEW;
  states->config.logical_blocks = logical;
  states->config.physical_blocks = physical;
  states->config.slab_size = slab_blocks;
  states->config.recovery_journal_size = VDO_RECOVERY_JOURNAL_PARTITION_BLOCKS;
  states->config.slab_journal_blocks = VDO_DEFAULT_SLAB_JOURNAL_SIZE;

  /* vdoformat's record order; the partition allocator's free range ends
   * up empty, at the journal. */
  layout = &states->layout;
  layout->first_free = journal_start;
  layout->last_free = journal_start;
  layout->partition_count = VDO_PARTITION_COUNT;
  set_partition (&layout->partitions[0], VDO_SLAB_DEPOT_PARTITION,
                 depot_start, journal_start - depot_start);
  set_partition (&layout->partitions[1], VDO_RECOVERY_JOURNAL_PARTITION,
                 journal_start, VDO_RECOVERY_JOURNAL_PARTITION_BLOCKS);
  set_partition (&layout->partitions[2], VDO_SLAB_SUMMARY_PARTITION,
                 summary_start, VDO_SLAB_SUMMARY_PARTITION_BLOCKS);
  set_partition (&layout->partitions[3], VDO_BLOCK_MAP_PARTITION,
                 root_origin, VDO_BLOCK_MAP_PARTITION_BLOCKS);

  states->recovery_journal.journal_start
    = VDO_RECOVERY_JOURNAL_STARTING_SEQUENCE;

  states->slab_depot.slab_config = slab;
  states->slab_depot.first_block = depot_start;
  states->slab_depot.last_block = depot_start + slab_count * slab_blocks;

  states->block_map.flat_page_origin = FLAT_PAGE_ORIGIN;
  states->block_map.flat_page_count = FLAT_PAGE_COUNT;
  states->block_map.root_origin = root_origin;
  states->block_map.root_count = VDO_BLOCK_MAP_ROOT_COUNT;
  return VDO_SUCCESS;
}

block_count_t
vdo_depot_slab_count (const struct slab_depot_state_2_0 *depot)
{
  block_count_t slab_blocks = depot->slab_config.slab_blocks;

  if (slab_blocks == 0 || depot->last_block < depot->first_block)
    return 0;
  return (depot->last_block - depot->first_block) / slab_blocks;
}

physical_block_number_t
vdo_slab_origin (const struct slab_depot_state_2_0 *depot, block_count_t slab)
{
  return depot->first_block + slab * depot->slab_config.slab_blocks;
}

bool
vdo_slab_of_pbn (const struct slab_depot_state_2_0 *depot,
                 physical_block_number_t pbn,
                 block_count_t *slab, block_count_t *offset)
{
  block_count_t slab_blocks = depot->slab_config.slab_blocks;
  block_count_t count = vdo_depot_slab_count (depot);

  /* Only whole slabs count, even if last_block were misaligned. */
  if (count == 0 || pbn < depot->first_block
      || pbn >= vdo_slab_origin (depot, count))
    return false;
  *slab = (pbn - depot->first_block) / slab_blocks;
  *offset = (pbn - depot->first_block) % slab_blocks;
  return true;
}

bool
vdo_is_physical_data_block (const struct slab_depot_state_2_0 *depot,
                            physical_block_number_t pbn)
{
  block_count_t slab, offset;

  if (pbn == VDO_ZERO_BLOCK)
    return true;
  return vdo_slab_of_pbn (depot, pbn, &slab, &offset)
         && offset < depot->slab_config.data_blocks;
}

/* Part of slab n starting skip blocks after its origin. */
static struct vdo_pbn_range
slab_part (const struct slab_depot_state_2_0 *depot, block_count_t slab,
           block_count_t skip, block_count_t count)
{
  struct vdo_pbn_range range = { 0, 0 };

  if (slab < vdo_depot_slab_count (depot)) {
    range.start = vdo_slab_origin (depot, slab) + skip;
    range.count = count;
  }
  return range;
}

struct vdo_pbn_range
vdo_slab_data_range (const struct slab_depot_state_2_0 *depot,
                     block_count_t slab)
{
  const struct slab_config *c = &depot->slab_config;

  return slab_part (depot, slab, 0, c->data_blocks);
}

struct vdo_pbn_range
vdo_slab_reference_range (const struct slab_depot_state_2_0 *depot,
                          block_count_t slab)
{
  const struct slab_config *c = &depot->slab_config;

  return slab_part (depot, slab, c->data_blocks, c->reference_count_blocks);
}

struct vdo_pbn_range
vdo_slab_journal_range (const struct slab_depot_state_2_0 *depot,
                        block_count_t slab)
{
  const struct slab_config *c = &depot->slab_config;

  return slab_part (depot, slab, c->data_blocks + c->reference_count_blocks,
                    c->slab_journal_blocks);
}
