/* nbdkit-vdo: the runtime block map: zones, lookups and updates. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "block-map.h"
#include "logger.h"
#include "status.h"
#include "volume-layout.h"

/* Writes a zone keeps in flight at most, leaf and interior together. */
#define WRITE_VIOS_PER_ZONE 64

struct block_map_zone {
  struct block_map *map;
  unsigned int zone_number;
  struct vdo_work_queue *queue;
  struct vdo_block_map_writer *writer;
  struct vdo_tree_zone *tree;
  struct vdo_page_cache *cache;

  /* Write-back requests from other threads, coalesced. */
  struct vdo_completion write_back;
  atomic_uint_fast64_t write_back_target;
  atomic_bool write_back_scheduled;
};

struct block_map {
  physical_block_number_t root_origin;
  block_count_t root_count;
  block_count_t logical_blocks;
  nonce_t nonce;
  struct slab_depot_state_2_0 depot;
  const struct vdo_block_device *device;
  struct vdo_journal_lock_counter *journal_locks;
  struct vdo_read_only_notifier *read_only;
  unsigned int zone_count;
  struct block_map_zone zones[];
};

static bool
is_data_block (const void *context, physical_block_number_t pbn)
{
  return vdo_is_physical_data_block (context, pbn);
}

static int
check_config (const struct block_map_config *config)
{
  unsigned int z;

  if (config->device == NULL || config->zone_queues == NULL
      || config->journal_locks == NULL || config->read_only == NULL) {
    vdo_log_error ("block map configuration lacks a device, zone queues,"
                   " journal locks or a read-only notifier");
    return UDS_INVALID_ARGUMENT;
  }
  if (config->logical_zone_count == 0
      || config->logical_zone_count > VDO_MAX_LOGICAL_ZONES) {
    vdo_log_error ("block map needs 1 to %d logical zones, not %u",
                   VDO_MAX_LOGICAL_ZONES, config->logical_zone_count);
    return UDS_INVALID_ARGUMENT;
  }
  for (z = 0; z < config->logical_zone_count; z++)
    if (config->zone_queues[z] == NULL) {
      vdo_log_error ("block map logical zone %u has no work queue", z);
      return UDS_INVALID_ARGUMENT;
    }
  if (config->state.root_count == 0) {
    vdo_log_error ("block map has no tree roots");
    return UDS_INVALID_ARGUMENT;
  }
  if (config->logical_blocks == 0
      || config->logical_blocks > VDO_MAX_LOGICAL_BLOCKS) {
    vdo_log_error ("block map logical size %" PRIu64 " is outside 1..%" PRIu64,
                   config->logical_blocks, VDO_MAX_LOGICAL_BLOCKS);
    return UDS_INVALID_ARGUMENT;
  }
  return VDO_SUCCESS;
}

static void write_back_in_zone (struct vdo_completion *completion);

static int
make_zone (struct block_map *map, const struct block_map_config *config,
           unsigned int z, block_count_t cache_pages)
{
  struct block_map_zone *zone = &map->zones[z];
  struct vdo_block_map_writer_config writer_config = {
    .zone_number = z,
    .queue = config->zone_queues[z],
    .device = config->device,
    .journal_locks = config->journal_locks,
    .read_only = config->read_only,
    .write_vios = WRITE_VIOS_PER_ZONE,
  };
  struct vdo_page_cache_config cache_config = {
    .zone_number = z,
    .page_count = cache_pages,
    .nonce = config->nonce,
    .queue = config->zone_queues[z],
    .device = config->device,
    .read_only = config->read_only,
    .overlay = config->overlay,
  };
  struct vdo_tree_zone_config tree_config = {
    .zone_number = z,
    .root_origin = config->state.root_origin,
    .nonce = config->nonce,
    .depot = &map->depot,
    .queue = config->zone_queues[z],
    .device = config->device,
    .read_only = config->read_only,
    .overlay = config->overlay,
  };
  int result;

  zone->map = map;
  zone->zone_number = z;
  zone->queue = config->zone_queues[z];
  atomic_init (&zone->write_back_target, 0);
  atomic_init (&zone->write_back_scheduled, false);
  vdo_prepare_completion (&zone->write_back, write_back_in_zone, zone->queue,
                          zone);
  result = vdo_make_block_map_writer (&writer_config, &zone->writer);
  if (result != VDO_SUCCESS)
    return result;
  cache_config.writer = zone->writer;
  tree_config.writer = zone->writer;
  result = vdo_make_page_cache (&cache_config, &zone->cache);
  if (result != VDO_SUCCESS)
    return result;
  return vdo_make_tree_zone (&tree_config, &zone->tree);
}

int
vdo_make_block_map (const struct block_map_config *config,
                    struct block_map **map_ret)
{
  struct block_map *map;
  block_count_t cache_pages;
  unsigned int z;
  int result;

  *map_ret = NULL;
  result = check_config (config);
  if (result != VDO_SUCCESS)
    return result;
  map = calloc (1, sizeof *map
                + config->logical_zone_count * sizeof map->zones[0]);
  if (map == NULL) {
    vdo_log_error ("cannot allocate the block map");
    return ENOMEM;
  }
  map->root_origin = config->state.root_origin;
  map->root_count = config->state.root_count;
  map->logical_blocks = config->logical_blocks;
  map->nonce = config->nonce;
  map->depot = config->depot;
  map->device = config->device;
  map->journal_locks = config->journal_locks;
  map->read_only = config->read_only;
  map->zone_count = config->logical_zone_count;

  cache_pages = config->cache_pages > 0 ? config->cache_pages
                : VDO_BLOCK_MAP_DEFAULT_CACHE_PAGES;
  cache_pages /= map->zone_count;
  if (cache_pages < VDO_PAGE_CACHE_MIN_PAGES)
    cache_pages = VDO_PAGE_CACHE_MIN_PAGES;
  for (z = 0; z < map->zone_count; z++) {
    result = make_zone (map, config, z, cache_pages);
    if (result != VDO_SUCCESS) {
      vdo_free_block_map (map);
      return result;
    }
  }
  *map_ret = map;
  return VDO_SUCCESS;
}

void
vdo_free_block_map (struct block_map *map)
{
  unsigned int z;

  if (map == NULL)
    return;
  for (z = 0; z < map->zone_count; z++) {
    struct block_map_zone *zone = &map->zones[z];

    /* The pages first: they leave the writer's lists as they go. */
    vdo_free_tree_zone (zone->tree);
    vdo_free_page_cache (zone->cache);
    vdo_free_block_map_writer (zone->writer);
  }
  free (map);
}

/* --- Zones ------------------------------------------------------------- */

unsigned int
vdo_block_map_zone_of_tree (const struct block_map *map,
                            block_count_t root_index)
{
  return (unsigned int) (root_index % map->zone_count);
}

unsigned int
vdo_logical_zone_of_lbn (const struct block_map *map,
                         logical_block_number_t lbn)
{
  block_count_t page = lbn / VDO_BLOCK_MAP_ENTRIES_PER_PAGE;

  return vdo_block_map_zone_of_tree (map, page % map->root_count);
}

struct vdo_work_queue *
vdo_block_map_zone_queue (const struct block_map *map, unsigned int zone)
{
  return map->zones[zone].queue;
}

unsigned int
vdo_block_map_zone_count (const struct block_map *map)
{
  return map->zone_count;
}

block_count_t
vdo_block_map_logical_blocks (const struct block_map *map)
{
  return map->logical_blocks;
}

struct vdo_page_cache *
vdo_block_map_zone_cache (struct block_map *map, unsigned int zone)
{
  return map->zones[zone].cache;
}

struct vdo_tree_zone *
vdo_block_map_zone_tree (struct block_map *map, unsigned int zone)
{
  return map->zones[zone].tree;
}

/* The zone of an LBN, checked against the logical size; each public
 * entry point must also run on that zone's thread. */
static int
get_zone (struct block_map *map, logical_block_number_t lbn,
          const char *what, struct block_map_zone **zone_ret)
{
  struct block_map_zone *zone;

  *zone_ret = NULL;
  if (lbn >= map->logical_blocks) {
    vdo_log_error ("block map %s of logical block %" PRIu64 " beyond the"
                   " logical size of %" PRIu64 " blocks", what, lbn,
                   map->logical_blocks);
    return VDO_OUT_OF_RANGE;
  }
  zone = &map->zones[vdo_logical_zone_of_lbn (map, lbn)];
  if (!vdo_on_work_queue (zone->queue)) {
    vdo_log_error ("block map %s of logical block %" PRIu64 " called off"
                   " the thread of logical zone %u", what, lbn,
                   zone->zone_number);
    return UDS_BAD_STATE;
  }
  *zone_ret = zone;
  return VDO_SUCCESS;
}

static void
compute_path (const struct block_map *map, logical_block_number_t lbn,
              struct vdo_block_map_path *path)
{
  /* Cannot fail: the LBN is below the logical size, root_count > 0. */
  vdo_compute_block_map_path (lbn, map->root_count, path);
}

/* --- Lookups ----------------------------------------------------------- */

static void run_walk (struct vdo_block_map_lookup *lookup);

static void
walk_again (struct vdo_completion *completion)
{
  struct vdo_block_map_lookup *lookup = completion->parent;

  if (completion->result != VDO_SUCCESS)
    lookup->continuation (lookup, completion->result);
  else
    run_walk (lookup);
}

static void
leaf_page_ready (struct vdo_completion *completion)
{
  struct vdo_block_map_lookup *lookup = completion->parent;

  lookup->continuation (lookup, completion->result);
}

/* Pin the leaf page at lookup->walk.pbn; the continuation runs when it
 * is in the cache, now or after a read. */
static void
pin_leaf (struct vdo_block_map_lookup *lookup)
{
  struct block_map_zone *zone = lookup->zone;
  struct vdo_page_request *request = &lookup->page_request;

  vdo_prepare_completion (&request->completion, leaf_page_ready, zone->queue,
                          lookup);
  request->pbn = lookup->walk.pbn;
  request->empty_on_read_error = false;
  if (vdo_get_cache_page (zone->cache, request))
    lookup->continuation (lookup, VDO_SUCCESS);
}

/* Walk the tree, then pin the leaf page if it exists; the continuation
 * runs with the walk's status, and the pinned page when it was found. */
static void
run_walk (struct vdo_block_map_lookup *lookup)
{
  int result = vdo_walk_tree (lookup->zone->tree, &lookup->walk);

  if (result != VDO_SUCCESS) {
    lookup->continuation (lookup, result);
    return;
  }
  switch (lookup->walk.status) {
  case VDO_TREE_WALK_WAITING:
    return;
  case VDO_TREE_WALK_MISSING:
    lookup->continuation (lookup, VDO_SUCCESS);
    return;
  case VDO_TREE_WALK_FOUND_LEAF:
    break;
  }
  pin_leaf (lookup);
}

static void
start_lookup (struct block_map_zone *zone, struct vdo_block_map_lookup *lookup,
              logical_block_number_t lbn, bool claim,
              void (*continuation) (struct vdo_block_map_lookup *, int))
{
  lookup->zone = zone;
  lookup->continuation = continuation;
  compute_path (zone->map, lbn, &lookup->walk.path);
  lookup->walk.claim = claim;
  vdo_prepare_completion (&lookup->completion, walk_again, zone->queue,
                          lookup);
  lookup->walk.waiter.completion = &lookup->completion;
  run_walk (lookup);
}

static bool
found_leaf (const struct vdo_block_map_lookup *lookup, int result)
{
  return result == VDO_SUCCESS
         && lookup->walk.status == VDO_TREE_WALK_FOUND_LEAF;
}

static void
release_leaf (struct vdo_block_map_lookup *lookup)
{
  vdo_release_cache_page (lookup->zone->cache, lookup->page_request.page);
  lookup->page_request.page = NULL;
}

static struct vdo_block_map_request *
request_of (struct vdo_block_map_lookup *lookup)
{
  return (struct vdo_block_map_request *)
    ((char *) lookup - offsetof (struct vdo_block_map_request, lookup));
}

static void
finish_find_slot (struct vdo_block_map_lookup *lookup, int result)
{
  struct vdo_block_map_request *request = request_of (lookup);
  struct block_map *map = lookup->zone->map;
  struct vdo_tree_walk *walk = &lookup->walk;

  if (result == VDO_SUCCESS) {
    request->path_complete = walk->status == VDO_TREE_WALK_FOUND_LEAF;
    request->missing_height = request->path_complete ? 0 : walk->height;
    request->page_pbn = walk->pbn;
    request->slot = walk->slot;
  }
  if (found_leaf (lookup, result)) {
    struct vdo_data_location entry
      = vdo_get_block_map_page_entry (vdo_cache_page_data
                                      (lookup->page_request.page),
                                      walk->slot);

    release_leaf (lookup);
    if (vdo_is_valid_leaf_entry (entry, is_data_block, &map->depot))
      request->mapping = entry;
    else {
      vdo_log_error ("logical block %" PRIu64 " has an invalid mapping in"
                     " block map page %" PRIu64 ": PBN %" PRIu64
                     ", state %u", request->lbn, walk->pbn, entry.pbn,
                     entry.state);
      result = VDO_BAD_MAPPING;
    }
  }
  vdo_finish_completion (&request->completion, result);
}

void
vdo_block_map_find_slot (struct block_map *map,
                         struct vdo_block_map_request *request)
{
  struct block_map_zone *zone;
  int result = get_zone (map, request->lbn, "lookup", &zone);

  request->completion.result = VDO_SUCCESS;
  request->mapping.pbn = VDO_ZERO_BLOCK;
  request->mapping.state = VDO_MAPPING_STATE_UNMAPPED;
  request->path_complete = false;
  request->missing_height = 0;
  request->page_pbn = 0;
  request->slot = 0;
  if (result != VDO_SUCCESS) {
    vdo_finish_completion (&request->completion, result);
    return;
  }
  start_lookup (zone, &request->lookup, request->lbn, request->allocate,
                finish_find_slot);
}

void
vdo_block_map_abandon_tree_page (struct block_map *map,
                                 const struct vdo_block_map_request *request)
{
  struct block_map_zone *zone;

  if (request->path_complete
      || get_zone (map, request->lbn, "abandon", &zone) != VDO_SUCCESS)
    return;
  vdo_abandon_tree_page (zone->tree, request->page_pbn, request->slot);
}

void
vdo_block_map_install_tree_page (struct block_map *map,
                                 logical_block_number_t lbn,
                                 unsigned int height,
                                 physical_block_number_t new_pbn,
                                 struct journal_point recovery_point,
                                 struct vdo_completion *completion)
{
  struct vdo_block_map_path path;
  struct block_map_zone *zone;
  int result = get_zone (map, lbn, "tree page installation", &zone);

  completion->result = VDO_SUCCESS;
  if (result == VDO_SUCCESS && height >= VDO_BLOCK_MAP_ROOT_HEIGHT) {
    vdo_log_error ("block map pages are installed at heights 0 to %d, not"
                   " %u", VDO_BLOCK_MAP_ROOT_HEIGHT - 1, height);
    result = UDS_INVALID_ARGUMENT;
  }
  if (result == VDO_SUCCESS) {
    compute_path (map, lbn, &path);
    result = vdo_install_tree_page (zone->tree, &path, height, new_pbn,
                                    recovery_point.sequence_number);
  }
  /* A new leaf is formatted when first loaded, not read. */
  if (result == VDO_SUCCESS && height == 0)
    vdo_expect_fresh_cache_page (zone->cache, new_pbn);
  vdo_finish_completion (completion, result);
}

/* An update or range read that needed pages it had to wait for. */
struct map_operation {
  struct vdo_block_map_lookup lookup;
  struct vdo_completion *parent;
  logical_block_number_t lbn;
  struct vdo_data_location mapping;
  sequence_number_t recovery_block;
  struct vdo_data_location *entries;
  bool *present;
};

static struct map_operation *
operation_of (struct vdo_block_map_lookup *lookup)
{
  return (struct map_operation *) lookup;
}

static void
finish_operation (struct map_operation *operation, int result)
{
  vdo_finish_completion (operation->parent, result);
  g_free (operation);
}

/* Store MAPPING in the slot a lookup for LBN ended at, if it found the
 * leaf; returns the update's result. */
static int
store_mapping (struct vdo_block_map_lookup *lookup, int result,
               logical_block_number_t lbn, struct vdo_data_location mapping,
               sequence_number_t recovery_block)
{
  struct block_map_zone *zone = lookup->zone;

  if (found_leaf (lookup, result)) {
    if (vdo_is_read_only (zone->map->read_only))
      result = VDO_READ_ONLY;
    else
      vdo_set_cache_page_entry (zone->cache, lookup->page_request.page,
                                lookup->walk.slot, mapping, recovery_block);
    release_leaf (lookup);
  }
  else if (result == VDO_SUCCESS && vdo_is_mapped_location (mapping)) {
    vdo_log_error ("cannot map logical block %" PRIu64 ": its block map page"
                   " at height %u does not exist", lbn, lookup->walk.height);
    result = UDS_BAD_STATE;
  }
  return result;
}

static void
finish_put_mapping (struct vdo_block_map_lookup *lookup, int result)
{
  struct map_operation *operation = operation_of (lookup);

  finish_operation (operation,
                    store_mapping (lookup, result, operation->lbn,
                                   operation->mapping,
                                   operation->recovery_block));
}

/* The checks every update makes before it looks for its slot. */
static int
check_update (struct block_map *map, logical_block_number_t lbn,
              struct vdo_data_location mapping, struct block_map_zone **zone)
{
  int result = get_zone (map, lbn, "update", zone);

  if (result == VDO_SUCCESS
      && !vdo_is_valid_leaf_entry (mapping, is_data_block, &map->depot)) {
    vdo_log_error ("cannot map logical block %" PRIu64 " to PBN %" PRIu64
                   " in state %u: not a valid mapping", lbn, mapping.pbn,
                   mapping.state);
    result = VDO_BAD_MAPPING;
  }
  if (result == VDO_SUCCESS && vdo_is_read_only (map->read_only))
    result = VDO_READ_ONLY;
  return result;
}

void
vdo_block_map_put_mapping (struct block_map *map, logical_block_number_t lbn,
                           struct vdo_data_location mapping,
                           struct journal_point recovery_point,
                           struct vdo_completion *completion)
{
  struct map_operation *operation;
  struct block_map_zone *zone;
  int result = check_update (map, lbn, mapping, &zone);

  completion->result = VDO_SUCCESS;
  if (result != VDO_SUCCESS) {
    vdo_finish_completion (completion, result);
    return;
  }
  operation = g_new0 (struct map_operation, 1);
  operation->parent = completion;
  operation->lbn = lbn;
  operation->mapping = mapping;
  operation->recovery_block = recovery_point.sequence_number;
  start_lookup (zone, &operation->lookup, lbn, false, finish_put_mapping);
}

static void
finish_update_found_slot (struct vdo_block_map_lookup *lookup, int result)
{
  struct vdo_block_map_request *request = request_of (lookup);

  vdo_finish_completion (request->update_parent,
                         store_mapping (lookup, result, request->lbn,
                                        request->update_mapping,
                                        request->update_block));
}

void
vdo_block_map_update_found_slot (struct block_map *map,
                                 struct vdo_block_map_request *request,
                                 struct vdo_data_location mapping,
                                 struct journal_point recovery_point,
                                 struct vdo_completion *completion)
{
  struct vdo_block_map_lookup *lookup = &request->lookup;
  struct block_map_zone *zone;
  int result = check_update (map, request->lbn, mapping, &zone);

  completion->result = VDO_SUCCESS;
  if (result == VDO_SUCCESS && !request->path_complete) {
    vdo_log_error ("cannot update logical block %" PRIu64 " in place: its"
                   " lookup found no leaf page", request->lbn);
    result = UDS_BAD_STATE;
  }
  if (result != VDO_SUCCESS) {
    vdo_finish_completion (completion, result);
    return;
  }
  request->update_parent = completion;
  request->update_mapping = mapping;
  request->update_block = recovery_point.sequence_number;
  /* Where the lookup ended, as if the walk had just found it. */
  lookup->zone = zone;
  lookup->continuation = finish_update_found_slot;
  lookup->walk.status = VDO_TREE_WALK_FOUND_LEAF;
  lookup->walk.pbn = request->page_pbn;
  lookup->walk.slot = request->slot;
  pin_leaf (lookup);
}

static void
finish_read_leaf (struct vdo_block_map_lookup *lookup, int result)
{
  struct map_operation *operation = operation_of (lookup);
  struct block_map *map = lookup->zone->map;
  unsigned int slot, invalid = 0;

  *operation->present = found_leaf (lookup, result);
  for (slot = 0; slot < VDO_BLOCK_MAP_ENTRIES_PER_PAGE; slot++) {
    struct vdo_data_location entry = {
      .pbn = VDO_ZERO_BLOCK,
      .state = VDO_MAPPING_STATE_UNMAPPED,
    };

    if (*operation->present && operation->lbn + slot < map->logical_blocks) {
      entry = vdo_get_block_map_page_entry (vdo_cache_page_data
                                            (lookup->page_request.page),
                                            slot);
      if (!vdo_is_valid_leaf_entry (entry, is_data_block, &map->depot)) {
        invalid++;
        entry.pbn = VDO_ZERO_BLOCK;
        entry.state = VDO_MAPPING_STATE_UNMAPPED;
      }
    }
    operation->entries[slot] = entry;
  }
  if (*operation->present)
    release_leaf (lookup);
  if (invalid > 0) {
    vdo_log_error ("block map page %" PRIu64 " holds %u invalid mappings",
                   lookup->walk.pbn, invalid);
    result = VDO_BAD_MAPPING;
  }
  finish_operation (operation, result);
}

void
vdo_block_map_read_leaf (struct block_map *map, uint64_t leaf_page_number,
                         struct vdo_data_location
                         out[VDO_BLOCK_MAP_ENTRIES_PER_PAGE],
                         bool *present, struct vdo_completion *completion)
{
  logical_block_number_t lbn = map->logical_blocks;
  struct map_operation *operation;
  struct block_map_zone *zone;
  int result;

  completion->result = VDO_SUCCESS;
  *present = false;
  /* A page past the end is refused below, without overflowing. */
  if (leaf_page_number <= map->logical_blocks / VDO_BLOCK_MAP_ENTRIES_PER_PAGE)
    lbn = leaf_page_number * VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
  result = get_zone (map, lbn, "leaf read", &zone);
  if (result != VDO_SUCCESS) {
    vdo_finish_completion (completion, result);
    return;
  }
  operation = g_new0 (struct map_operation, 1);
  operation->parent = completion;
  operation->lbn = lbn;
  operation->entries = out;
  operation->present = present;
  start_lookup (zone, &operation->lookup, lbn, false, finish_read_leaf);
}

/* --- Write-back -------------------------------------------------------- */

static void
write_back_in_zone (struct vdo_completion *completion)
{
  struct block_map_zone *zone = completion->parent;

  /* Cleared before reading the target, so a later request reschedules. */
  atomic_store (&zone->write_back_scheduled, false);
  vdo_write_pages_older_than (zone->writer,
                              atomic_load (&zone->write_back_target));
}

void
vdo_block_map_write_back_older_than (struct block_map *map,
                                     sequence_number_t recovery_block)
{
  unsigned int z;

  for (z = 0; z < map->zone_count; z++) {
    struct block_map_zone *zone = &map->zones[z];
    uint_fast64_t target = atomic_load (&zone->write_back_target);

    while (target < recovery_block
           && !atomic_compare_exchange_weak (&zone->write_back_target,
                                             &target, recovery_block))
      ;
    if (!atomic_exchange (&zone->write_back_scheduled, true))
      vdo_enqueue_completion (&zone->write_back);
  }
}

/* A drain of every zone. */
struct map_drain {
  struct vdo_completion *parent;
  struct block_map *map;
  atomic_uint remaining;
  atomic_int result;
  struct vdo_completion zones[];
};

static void
zone_drained (struct vdo_completion *completion)
{
  struct map_drain *drain = completion->parent;
  int expected = VDO_SUCCESS;

  if (completion->result != VDO_SUCCESS)
    atomic_compare_exchange_strong (&drain->result, &expected,
                                    completion->result);
  if (atomic_fetch_sub (&drain->remaining, 1) == 1) {
    vdo_finish_completion (drain->parent, atomic_load (&drain->result));
    g_free (drain);
  }
}

static void
drain_zone (struct vdo_completion *completion)
{
  struct map_drain *drain = completion->parent;
  struct block_map_zone *zone = &drain->map->zones[completion
                                                   - drain->zones];

  completion->callback = zone_drained;
  vdo_drain_block_map_writer (zone->writer, completion);
}

void
vdo_drain_block_map (struct block_map *map, struct vdo_completion *completion)
{
  struct map_drain *drain = g_malloc0 (sizeof *drain + map->zone_count
                                       * sizeof drain->zones[0]);
  unsigned int z;

  completion->result = VDO_SUCCESS;
  drain->parent = completion;
  drain->map = map;
  atomic_init (&drain->remaining, map->zone_count);
  atomic_init (&drain->result, VDO_SUCCESS);
  for (z = 0; z < map->zone_count; z++)
    vdo_prepare_completion (&drain->zones[z], drain_zone, map->zones[z].queue,
                            drain);
  /* Launch only once every completion is ready: the last zone to finish
   * frees the drain. */
  for (z = 0; z < map->zone_count; z++)
    vdo_enqueue_completion (&drain->zones[z]);
}

void
vdo_get_block_map_statistics (const struct block_map *map,
                              struct vdo_block_map_statistics *stats)
{
  unsigned int z;

  memset (stats, 0, sizeof *stats);
  for (z = 0; z < map->zone_count; z++) {
    const struct block_map_zone *zone = &map->zones[z];
    struct vdo_block_map_writer_stats writer;
    struct vdo_page_cache_stats cache;
    struct vdo_tree_zone_stats tree;

    vdo_get_block_map_writer_stats (zone->writer, &writer);
    vdo_get_page_cache_stats (zone->cache, &cache);
    vdo_get_tree_zone_stats (zone->tree, &tree);
    stats->cache_pages += cache.page_count;
    stats->pages_cached += cache.pages_cached;
    stats->tree_pages += tree.pages;
    stats->dirty_pages += writer.dirty_pages;
    stats->pages_read += cache.pages_read + tree.pages_read;
    stats->pages_written += writer.pages_written;
    stats->flushes += writer.flushes;
    stats->cache_hits += cache.hits;
    stats->cache_misses += cache.misses;
  }
}

/* --- Forest traversal -------------------------------------------------- */

struct forest_traversal {
  struct vdo_completion completion;
  struct block_map *map;
  vdo_tree_page_visitor visitor;
  void *context;
  struct vdo_completion *parent;
  block_count_t root_index;
};

static void traverse_next_tree (struct vdo_completion *completion);

static void
tree_traversed (struct vdo_completion *completion)
{
  struct forest_traversal *traversal = completion->parent;
  struct block_map *map = traversal->map;

  if (completion->result != VDO_SUCCESS
      || ++traversal->root_index == map->root_count) {
    vdo_finish_completion (traversal->parent, completion->result);
    g_free (traversal);
    return;
  }
  vdo_launch_completion (completion, traverse_next_tree,
                         map->zones[vdo_block_map_zone_of_tree
                                    (map, traversal->root_index)].queue);
}

static void
traverse_next_tree (struct vdo_completion *completion)
{
  struct forest_traversal *traversal = completion->parent;
  struct block_map *map = traversal->map;
  struct block_map_zone *zone
    = &map->zones[vdo_block_map_zone_of_tree (map, traversal->root_index)];

  completion->callback = tree_traversed;
  vdo_traverse_tree (zone->tree, traversal->root_index, traversal->visitor,
                     traversal->context, completion);
}

void
vdo_traverse_block_map_forest (struct block_map *map,
                               vdo_tree_page_visitor visitor, void *context,
                               struct vdo_completion *completion)
{
  struct forest_traversal *traversal = g_new0 (struct forest_traversal, 1);

  completion->result = VDO_SUCCESS;
  traversal->map = map;
  traversal->visitor = visitor;
  traversal->context = context;
  traversal->parent = completion;
  vdo_prepare_completion (&traversal->completion, traverse_next_tree,
                          map->zones[0].queue, traversal);
  vdo_enqueue_completion (&traversal->completion);
}
