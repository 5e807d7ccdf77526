/* nbdkit-vdo: reference counts rebuilt from the block map (read-only
 * rebuild).
 *
 * Threads: the tree walk runs on each tree's logical zone thread in turn,
 * and the leaf sweep on logical zone 0's, while every other thread is
 * idle; each step hands over to the next through a work queue, so the
 * depot's counters, though owned by the physical zones, are only ever
 * changed by one thread at a time. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "block-map.h"
#include "logger.h"
#include "page-sweep.h"
#include "rebuild.h"
#include "status.h"
#include "vdo-internal.h"
#include "volume-layout.h"

/* Leaf pages pinned at once during the sweep, at most. */
#define LEAF_WINDOW 256

struct leaf_page {
  uint64_t number;                      /* across the forest */
  physical_block_number_t pbn;
};

struct rebuild {
  struct slab_depot *depot;
  const struct slab_depot_state_2_0 *depot_state;
  physical_block_number_t root_origin;
  block_count_t root_count;
  block_count_t logical_blocks;
  block_count_t leaf_pages;             /* the logical size needs */
  /* The tree being walked, and how many pages it has at each height
   * below the root (0: leaves). */
  block_count_t root_index;
  block_count_t level_pages[VDO_BLOCK_MAP_ROOT_HEIGHT];
  struct leaf_page *leaves;
  size_t leaf_count;
  size_t leaf_capacity;
  int result;
  struct vdo_rebuilt_counts *counts;
};

static const struct vdo_data_location unmapped = {
  .pbn = VDO_ZERO_BLOCK,
  .state = VDO_MAPPING_STATE_UNMAPPED,
};

static bool
is_data_block (const void *context, physical_block_number_t pbn)
{
  return vdo_is_physical_data_block (context, pbn);
}

/* Leaf page Q is in tree Q mod root_count, so tree r gets
 * ceil((leaves - r) / root_count) of them; each height above needs one
 * page per 812 below. */
static void
start_tree (struct rebuild *rebuild, block_count_t root_index)
{
  block_count_t pages = 0;
  unsigned int h;

  if (root_index < rebuild->leaf_pages)
    pages = (rebuild->leaf_pages - root_index + rebuild->root_count - 1)
            / rebuild->root_count;
  rebuild->root_index = root_index;
  for (h = 0; h < VDO_BLOCK_MAP_ROOT_HEIGHT; h++) {
    rebuild->level_pages[h] = pages;
    pages = (pages + VDO_BLOCK_MAP_ENTRIES_PER_PAGE - 1)
            / VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
  }
}

static void
record_leaf (struct rebuild *rebuild, uint64_t leaf_index,
             physical_block_number_t pbn)
{
  if (rebuild->result != VDO_SUCCESS)
    return;
  if (rebuild->leaf_count == rebuild->leaf_capacity) {
    size_t grown = rebuild->leaf_capacity == 0 ? 1024
                   : rebuild->leaf_capacity * 2;
    struct leaf_page *bigger = realloc (rebuild->leaves,
                                        grown * sizeof *bigger);

    if (bigger == NULL) {
      vdo_log_error ("cannot list %zu block map leaf pages", grown);
      rebuild->result = ENOMEM;
      return;
    }
    rebuild->leaves = bigger;
    rebuild->leaf_capacity = grown;
  }
  rebuild->leaves[rebuild->leaf_count].number =
    leaf_index * rebuild->root_count + rebuild->root_index;
  rebuild->leaves[rebuild->leaf_count].pbn = pbn;
  rebuild->leaf_count++;
}

/* Whether the entry of an interior page may stand: a page the logical
 * size needs, a tree page in a slab, and not claimed yet (which claims
 * it). */
static bool
claim_child (struct rebuild *rebuild, unsigned int height,
             uint64_t child_index, struct vdo_data_location entry)
{
  if (!vdo_is_valid_location (entry)
      || child_index >= rebuild->level_pages[height - 1]
      || !vdo_is_valid_interior_entry (entry, is_data_block,
                                       rebuild->depot_state))
    return false;
  return vdo_rebuild_reference_count (rebuild->depot, entry.pbn,
                                      VDO_BLOCK_MAP_INCREMENT)
         == VDO_SUCCESS;
}

/* B7, for each interior page before the walk descends from it: entries
 * unmapped here are not followed. */
static void
visit_tree_page (void *context, struct vdo_tree_zone *tree,
                 struct vdo_tree_page *page, uint64_t page_index)
{
  struct rebuild *rebuild = context;
  unsigned int height = vdo_tree_page_height (page);
  const uint8_t *data = vdo_tree_page_data (page);
  unsigned int slot;

  if (height == VDO_BLOCK_MAP_ROOT_HEIGHT)
    start_tree (rebuild, vdo_tree_page_pbn (page) - rebuild->root_origin);
  for (slot = 0; slot < VDO_BLOCK_MAP_ENTRIES_PER_PAGE; slot++) {
    struct vdo_data_location entry = vdo_get_block_map_page_entry (data,
                                                                   slot);
    uint64_t child = page_index * VDO_BLOCK_MAP_ENTRIES_PER_PAGE + slot;

    if (entry.pbn == VDO_ZERO_BLOCK
        && entry.state == VDO_MAPPING_STATE_UNMAPPED)
      continue;
    if (!claim_child (rebuild, height, child, entry)) {
      vdo_set_tree_page_entry (tree, page, slot, unmapped, 0);
      rebuild->counts->entries_removed++;
      continue;
    }
    rebuild->counts->block_map_data_blocks++;
    if (height == 1)
      record_leaf (rebuild, child, entry.pbn);
  }
}

static int
walk_trees (struct vdo *vdo, struct rebuild *rebuild)
{
  struct vdo_sync_completion sync;
  int result;

  vdo_init_sync_completion (&sync, vdo->logical_queues[0], rebuild);
  vdo_traverse_block_map_forest (vdo->block_map, visit_tree_page, rebuild,
                                 &sync.completion);
  result = vdo_wait_sync_completion (&sync);
  return result != VDO_SUCCESS ? result : rebuild->result;
}

/* --- B8: the leaves ---------------------------------------------------- */

static int
compare_leaves (const void *a, const void *b)
{
  const struct leaf_page *x = a, *y = b;

  if (x->pbn != y->pbn)
    return x->pbn < y->pbn ? -1 : 1;
  return 0;
}

static physical_block_number_t
leaf_pbn (void *context, size_t index)
{
  struct rebuild *rebuild = context;

  return rebuild->leaves[index].pbn;
}

/* Whether a leaf entry may stand, claiming its block if so. */
static bool
claim_mapping (struct rebuild *rebuild, struct vdo_data_location entry)
{
  if (!vdo_is_valid_location (entry))
    return false;
  if (entry.pbn == VDO_ZERO_BLOCK)
    return true;
  if (!vdo_is_physical_data_block (rebuild->depot_state, entry.pbn))
    return false;
  /* Fails for a tree page and for a sharer past the maximum count. */
  return vdo_rebuild_reference_count (rebuild->depot, entry.pbn,
                                      VDO_DATA_INCREMENT) == VDO_SUCCESS;
}

static int
visit_leaf (void *context, struct vdo_page_cache *cache,
            struct vdo_cache_page *page, size_t index)
{
  struct rebuild *rebuild = context;
  const struct leaf_page *leaf = &rebuild->leaves[index];
  uint8_t *data = vdo_cache_page_data (page);
  struct vdo_block_map_page_header header;
  unsigned int end = VDO_BLOCK_MAP_ENTRIES_PER_PAGE, slot;

  vdo_decode_block_map_page_header (data, &header);
  if (!header.initialized)
    return VDO_SUCCESS;
  /* The last page covers the logical space only in part. */
  if (leaf->number == rebuild->leaf_pages - 1
      && rebuild->logical_blocks % VDO_BLOCK_MAP_ENTRIES_PER_PAGE != 0)
    end = rebuild->logical_blocks % VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
  for (slot = 0; slot < VDO_BLOCK_MAP_ENTRIES_PER_PAGE; slot++) {
    struct vdo_data_location entry = vdo_get_block_map_page_entry (data,
                                                                   slot);

    if (entry.pbn == VDO_ZERO_BLOCK
        && entry.state == VDO_MAPPING_STATE_UNMAPPED)
      continue;
    if (slot < end && claim_mapping (rebuild, entry)) {
      rebuild->counts->logical_blocks_used++;
      continue;
    }
    vdo_set_cache_page_entry (cache, page, slot, unmapped, 0);
    rebuild->counts->entries_removed++;
  }
  return VDO_SUCCESS;
}

static int
sweep_leaves (struct vdo *vdo, struct rebuild *rebuild)
{
  struct vdo_page_cache *cache = vdo_block_map_zone_cache (vdo->block_map,
                                                           0);
  struct vdo_page_sweep_config sweep = {
    .cache = cache,
    .queue = vdo->logical_queues[0],
    .page_count = rebuild->leaf_count,
    .window = vdo_sweep_window (cache, LEAF_WINDOW),
    .empty_on_read_error = true,
    .pbn_of = leaf_pbn,
    .visit = visit_leaf,
    .context = rebuild,
  };

  /* In disk order, for the reads' sake. */
  if (rebuild->leaf_count > 0)
    qsort (rebuild->leaves, rebuild->leaf_count, sizeof *rebuild->leaves,
           compare_leaves);
  return vdo_sweep_pages (&sweep);
}

int
vdo_rebuild_reference_counts (struct vdo *vdo,
                              struct vdo_rebuilt_counts *counts)
{
  const struct vdo_component_states *states = &vdo->states;
  struct vdo_forest_size forest;
  struct rebuild rebuild = {
    .depot = vdo->depot,
    .depot_state = &states->slab_depot,
    .root_origin = states->block_map.root_origin,
    .root_count = states->block_map.root_count,
    .logical_blocks = states->config.logical_blocks,
    .result = VDO_SUCCESS,
    .counts = counts,
  };
  int result;

  *counts = (struct vdo_rebuilt_counts) { 0 };
  vdo_compute_forest_size (rebuild.logical_blocks, &forest);
  rebuild.leaf_pages = forest.leaf_pages;
  result = walk_trees (vdo, &rebuild);
  if (result == VDO_SUCCESS) {
    counts->leaf_pages = rebuild.leaf_count;
    result = sweep_leaves (vdo, &rebuild);
  }
  free (rebuild.leaves);
  return result;
}
