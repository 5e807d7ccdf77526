/* nbdkit-vdo: interior block map pages of a logical zone, in memory. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <glib.h>

#include "block-map-tree.h"
#include "int-map.h"
#include "io.h"
#include "logger.h"
#include "status.h"
#include "volume-layout.h"

struct vdo_tree_page {
  struct vdo_dirty_page page;           /* data, PBN, dirty state */
  struct vdo_tree_zone *tree;
  uint8_t height;
  bool loading;
  struct vdo_tree_waiter *waiters, *last_waiter;
  struct vdo_vio vio;
};

/* A missing page some walk is allocating. */
struct claim {
  uint64_t key;
  struct vdo_tree_waiter *waiters, *last_waiter;
};

struct vdo_tree_zone {
  unsigned int zone_number;
  physical_block_number_t root_origin;
  nonce_t nonce;
  const struct slab_depot_state_2_0 *depot;
  struct vdo_work_queue *queue;
  const struct vdo_block_device *device;
  struct vdo_block_map_writer *writer;
  struct vdo_read_only_notifier *read_only;
  const struct vdo_page_mappings *overlay;

  struct vdo_int_map *pages;            /* PBN -> page */
  struct vdo_int_map *claims;           /* claim key -> claim */

  atomic_uint_fast64_t page_count;
  atomic_uint_fast64_t pages_read;
};

static void
count (atomic_uint_fast64_t *counter, int64_t delta)
{
  /* Only the zone thread changes the counters. */
  atomic_store_explicit (counter,
                         atomic_load_explicit (counter, memory_order_relaxed)
                         + (uint64_t) delta, memory_order_relaxed);
}

static bool
is_data_block (const void *context, physical_block_number_t pbn)
{
  return vdo_is_physical_data_block (context, pbn);
}

static void
free_page (struct vdo_tree_page *page)
{
  if (page == NULL)
    return;
  vdo_io_free_buffer (page->page.data);
  g_free (page);
}

static void
destroy_page (struct vdo_tree_page *page)
{
  vdo_forget_dirty_page (page->tree->writer, &page->page);
  free_page (page);
}

int
vdo_make_tree_zone (const struct vdo_tree_zone_config *config,
                    struct vdo_tree_zone **tree_ret)
{
  struct vdo_tree_zone *t = g_new0 (struct vdo_tree_zone, 1);

  t->zone_number = config->zone_number;
  t->root_origin = config->root_origin;
  t->nonce = config->nonce;
  t->depot = config->depot;
  t->queue = config->queue;
  t->device = config->device;
  t->writer = config->writer;
  t->read_only = config->read_only;
  t->overlay = config->overlay;
  t->pages = vdo_int_map_new ();
  t->claims = vdo_int_map_new ();
  atomic_init (&t->page_count, 0);
  atomic_init (&t->pages_read, 0);
  *tree_ret = t;
  return VDO_SUCCESS;
}

void
vdo_free_tree_zone (struct vdo_tree_zone *t)
{
  struct vdo_tree_page *page;
  struct claim *claim;
  size_t cursor = 0;

  if (t == NULL)
    return;
  while ((page = vdo_int_map_next (t->pages, &cursor, NULL)) != NULL)
    destroy_page (page);
  cursor = 0;
  while ((claim = vdo_int_map_next (t->claims, &cursor, NULL)) != NULL)
    g_free (claim);
  vdo_int_map_free (t->pages);
  vdo_int_map_free (t->claims);
  g_free (t);
}

static struct vdo_tree_page *
find_page (struct vdo_tree_zone *t, physical_block_number_t pbn)
{
  return vdo_int_map_get (t->pages, pbn);
}

static struct vdo_tree_page *
new_page (struct vdo_tree_zone *t, physical_block_number_t pbn,
          unsigned int height)
{
  struct vdo_tree_page *page = g_new0 (struct vdo_tree_page, 1);
  uint8_t *data = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);

  if (data == NULL) {
    g_free (page);
    return NULL;
  }
  page->tree = t;
  page->height = height;
  vdo_init_dirty_page (&page->page, data, pbn, true, NULL);
  vdo_int_map_put (t->pages, pbn, page);
  count (&t->page_count, 1);
  return page;
}

/* An empty page in memory, never valid on disk. */
static void
format_empty_page (struct vdo_tree_page *page)
{
  vdo_format_block_map_page (page->page.data, page->tree->nonce,
                             page->page.pbn, false);
  vdo_init_dirty_page (&page->page, page->page.data, page->page.pbn, true,
                       NULL);
}

static void
add_waiter (struct vdo_tree_waiter **head, struct vdo_tree_waiter **tail,
            struct vdo_tree_waiter *waiter)
{
  waiter->next = NULL;
  waiter->completion->result = VDO_SUCCESS;
  if (*tail != NULL)
    (*tail)->next = waiter;
  else
    *head = waiter;
  *tail = waiter;
}

static void
wake_waiters (struct vdo_tree_waiter *waiter, int result)
{
  while (waiter != NULL) {
    struct vdo_tree_waiter *next = waiter->next;

    vdo_finish_completion (waiter->completion, result);
    waiter = next;
  }
}

static void
page_loaded (struct vdo_completion *completion)
{
  struct vdo_tree_page *page = completion->parent;
  struct vdo_tree_zone *t = page->tree;
  struct vdo_tree_waiter *waiters = page->waiters;
  struct vdo_block_map_page_header header;

  page->waiters = page->last_waiter = NULL;
  if (completion->result != VDO_SUCCESS) {
    vdo_enter_read_only_mode (t->read_only, completion->result);
    /* Forget the page, so a later walk may try the read again. */
    vdo_int_map_remove (t->pages, page->page.pbn);
    destroy_page (page);
    count (&t->page_count, -1);
    wake_waiters (waiters, VDO_READ_ONLY);
    return;
  }

  switch (vdo_validate_block_map_page (page->page.data, t->nonce,
                                       page->page.pbn)) {
  case VDO_BLOCK_MAP_PAGE_VALID:
    vdo_init_dirty_page (&page->page, page->page.data, page->page.pbn, false,
                         NULL);
    break;
  case VDO_BLOCK_MAP_PAGE_BAD:
    vdo_decode_block_map_page_header (page->page.data, &header);
    vdo_log_error ("block map tree page %" PRIu64 " (height %u) holds the"
                   " page of PBN %" PRIu64 " instead; using it as empty",
                   page->page.pbn, page->height, header.pbn);
    format_empty_page (page);
    break;
  case VDO_BLOCK_MAP_PAGE_INVALID:
    format_empty_page (page);
    break;
  }
  /* Interior pages stay in memory, so once is enough. */
  if (t->overlay != NULL)
    vdo_overlay_page_mappings (t->overlay, page->page.pbn, page->page.data);
  page->loading = false;
  wake_waiters (waiters, VDO_SUCCESS);
}

/* The page at pbn, which should have this height, if it is in memory;
 * otherwise start reading it (or join the read) and queue the waiter. */
static int
get_page (struct vdo_tree_zone *t, physical_block_number_t pbn,
          unsigned int height, struct vdo_tree_waiter *waiter,
          struct vdo_tree_page **page_ret)
{
  struct vdo_tree_page *page = find_page (t, pbn);

  *page_ret = NULL;
  if (page != NULL) {
    if (page->loading) {
      add_waiter (&page->waiters, &page->last_waiter, waiter);
      return VDO_SUCCESS;
    }
    if (page->height != height) {
      vdo_log_error ("block map tree page %" PRIu64 " is reached at height %u"
                     " and at height %u", pbn, page->height, height);
      vdo_enter_read_only_mode (t->read_only, VDO_BAD_PAGE);
      return VDO_BAD_PAGE;
    }
    *page_ret = page;
    return VDO_SUCCESS;
  }

  page = new_page (t, pbn, height);
  if (page == NULL) {
    vdo_log_error ("cannot allocate block map tree page %" PRIu64, pbn);
    return ENOMEM;
  }
  page->loading = true;
  add_waiter (&page->waiters, &page->last_waiter, waiter);
  count (&t->pages_read, 1);
  vdo_submit_vio (&page->vio, t->device, VDO_IO_READ, pbn, 1, page->page.data,
                  false, false, page_loaded, t->queue, page);
  return VDO_SUCCESS;
}

static int
check_entry (struct vdo_tree_zone *t, const struct vdo_tree_page *page,
             unsigned int slot, struct vdo_data_location entry)
{
  if (vdo_is_valid_interior_entry (entry, is_data_block, t->depot))
    return VDO_SUCCESS;
  vdo_log_error ("block map tree page %" PRIu64 " (height %u) slot %u holds"
                 " an invalid entry: PBN %" PRIu64 ", state %u",
                 page->page.pbn, page->height, slot, entry.pbn, entry.state);
  vdo_enter_read_only_mode (t->read_only, VDO_BAD_MAPPING);
  return VDO_BAD_MAPPING;
}

static uint64_t
claim_key (physical_block_number_t parent_pbn, unsigned int slot)
{
  /* PBNs have 36 bits and slots 10. */
  return (parent_pbn << 10) | slot;
}

static struct claim *
find_claim (struct vdo_tree_zone *t, physical_block_number_t parent_pbn,
            unsigned int slot)
{
  uint64_t key = claim_key (parent_pbn, slot);

  return vdo_int_map_get (t->claims, key);
}

int
vdo_walk_tree (struct vdo_tree_zone *t, struct vdo_tree_walk *walk)
{
  physical_block_number_t pbn = t->root_origin + walk->path.root_index;
  unsigned int height = VDO_BLOCK_MAP_ROOT_HEIGHT;

  walk->claimed = false;
  for (;;) {
    struct vdo_tree_page *page;
    struct vdo_data_location entry;
    unsigned int slot = walk->path.slots[height];
    int result = get_page (t, pbn, height, &walk->waiter, &page);

    if (result != VDO_SUCCESS)
      return result;
    if (page == NULL) {
      walk->status = VDO_TREE_WALK_WAITING;
      return VDO_SUCCESS;
    }
    entry = vdo_get_block_map_page_entry (page->page.data, slot);
    result = check_entry (t, page, slot, entry);
    if (result != VDO_SUCCESS)
      return result;

    if (!vdo_is_mapped_location (entry)) {
      struct claim *claim = find_claim (t, pbn, slot);
      /* Read-only: nothing will be allocated, so nobody need wait. */
      bool claiming = walk->claim && !vdo_is_read_only (t->read_only);

      walk->height = height - 1;
      walk->pbn = pbn;
      walk->slot = slot;
      if (claiming && claim != NULL) {
        add_waiter (&claim->waiters, &claim->last_waiter, &walk->waiter);
        walk->status = VDO_TREE_WALK_WAITING;
        return VDO_SUCCESS;
      }
      if (claiming) {
        claim = g_new0 (struct claim, 1);
        claim->key = claim_key (pbn, slot);
        vdo_int_map_put (t->claims, claim->key, claim);
        walk->claimed = true;
      }
      walk->status = VDO_TREE_WALK_MISSING;
      return VDO_SUCCESS;
    }
    if (height == 1) {
      walk->pbn = entry.pbn;
      walk->slot = walk->path.slots[0];
      walk->status = VDO_TREE_WALK_FOUND_LEAF;
      return VDO_SUCCESS;
    }
    pbn = entry.pbn;
    height--;
  }
}

void
vdo_abandon_tree_page (struct vdo_tree_zone *t,
                       physical_block_number_t parent_pbn, unsigned int slot)
{
  struct claim *claim = find_claim (t, parent_pbn, slot);
  struct vdo_tree_waiter *waiters;

  if (claim == NULL)
    return;
  waiters = claim->waiters;
  vdo_int_map_remove (t->claims, claim->key);
  g_free (claim);
  wake_waiters (waiters, VDO_SUCCESS);
}

/* The in-memory page at height on PATH, if every page above it is. */
static struct vdo_tree_page *
find_page_on_path (struct vdo_tree_zone *t,
                   const struct vdo_block_map_path *path, unsigned int height)
{
  physical_block_number_t pbn = t->root_origin + path->root_index;
  unsigned int h;

  for (h = VDO_BLOCK_MAP_ROOT_HEIGHT; ; h--) {
    struct vdo_tree_page *page = find_page (t, pbn);
    struct vdo_data_location entry;

    if (page == NULL || page->loading || page->height != h)
      return NULL;
    if (h == height)
      return page;
    entry = vdo_get_block_map_page_entry (page->page.data, path->slots[h]);
    if (!vdo_is_mapped_location (entry))
      return NULL;
    pbn = entry.pbn;
  }
}

int
vdo_install_tree_page (struct vdo_tree_zone *t,
                       const struct vdo_block_map_path *path,
                       unsigned int height, physical_block_number_t new_pbn,
                       sequence_number_t recovery_block)
{
  struct vdo_tree_page *parent = find_page_on_path (t, path, height + 1);
  unsigned int slot = path->slots[height + 1];
  struct vdo_data_location location = {
    .pbn = new_pbn,
    .state = VDO_MAPPING_STATE_UNCOMPRESSED,
  };
  int result = VDO_SUCCESS;

  if (parent == NULL) {
    vdo_log_error ("cannot install block map page %" PRIu64 " at height %u"
                   " of tree %" PRIu64 ": its parent is not in memory",
                   new_pbn, height, path->root_index);
    return UDS_BAD_STATE;
  }
  /* Whatever happens, the claim goes, so no lookup waits forever. */
  if (vdo_is_read_only (t->read_only))
    result = VDO_READ_ONLY;
  else if (new_pbn == VDO_ZERO_BLOCK
      || !vdo_is_physical_data_block (t->depot, new_pbn)) {
    vdo_log_error ("cannot install block map page at PBN %" PRIu64
                   ": not a data block", new_pbn);
    result = VDO_BAD_MAPPING;
  }
  else if (vdo_is_mapped_location
           (vdo_get_block_map_page_entry (parent->page.data, slot))
           || (height > 0 && find_page (t, new_pbn) != NULL)) {
    vdo_log_error ("cannot install block map page %" PRIu64 " at height %u"
                   " under page %" PRIu64 " slot %u: a page is already there",
                   new_pbn, height, parent->page.pbn, slot);
    result = UDS_BAD_STATE;
  }
  else {
    vdo_set_tree_page_entry (t, parent, slot, location, recovery_block);
    if (height > 0) {
      struct vdo_tree_page *child = new_page (t, new_pbn, height);

      if (child == NULL) {
        vdo_log_error ("cannot allocate block map tree page %" PRIu64,
                       new_pbn);
        result = vdo_enter_read_only_mode (t->read_only, ENOMEM);
      }
      else
        format_empty_page (child);
    }
  }
  vdo_abandon_tree_page (t, parent->page.pbn, slot);
  return result;
}

physical_block_number_t
vdo_tree_page_pbn (const struct vdo_tree_page *page)
{
  return page->page.pbn;
}

unsigned int
vdo_tree_page_height (const struct vdo_tree_page *page)
{
  return page->height;
}

const uint8_t *
vdo_tree_page_data (const struct vdo_tree_page *page)
{
  return page->page.data;
}

void
vdo_set_tree_page_entry (struct vdo_tree_zone *t, struct vdo_tree_page *page,
                         unsigned int slot, struct vdo_data_location location,
                         sequence_number_t recovery_block)
{
  vdo_set_block_map_page_entry (page->page.data, slot, location.pbn,
                                location.state);
  vdo_note_page_update (t->writer, &page->page, recovery_block);
}

void
vdo_get_tree_zone_stats (const struct vdo_tree_zone *t,
                         struct vdo_tree_zone_stats *stats)
{
  stats->pages = atomic_load_explicit (&t->page_count, memory_order_relaxed);
  stats->pages_read = atomic_load_explicit (&t->pages_read,
                                            memory_order_relaxed);
}

/* --- Traversal -------------------------------------------------------- */

struct traversal_level {
  struct vdo_tree_page *page;
  uint64_t page_index;
  unsigned int next_slot;
};

struct traversal {
  struct vdo_completion completion;     /* resumes after a page read */
  struct vdo_tree_zone *tree;
  vdo_tree_page_visitor visitor;
  void *context;
  struct vdo_completion *parent;
  struct vdo_tree_waiter waiter;
  unsigned int height;                  /* of the current page */
  /* The page being read: the root at first, then a child. */
  physical_block_number_t next_pbn;
  struct traversal_level levels[VDO_BLOCK_MAP_ROOT_HEIGHT + 1];
};

static void
finish_traversal (struct traversal *traversal, int result)
{
  vdo_finish_completion (traversal->parent, result);
  g_free (traversal);
}

/* Enter the page at next_pbn, one below the current height (or the root),
 * if it is in memory.  False: waiting for it, or failed. */
static bool
enter_next_page (struct traversal *traversal, unsigned int height)
{
  struct vdo_tree_page *page;
  struct traversal_level *level = &traversal->levels[height];
  int result = get_page (traversal->tree, traversal->next_pbn, height,
                         &traversal->waiter, &page);

  if (result != VDO_SUCCESS) {
    finish_traversal (traversal, result);
    return false;
  }
  if (page == NULL)
    return false;
  if (height < VDO_BLOCK_MAP_ROOT_HEIGHT) {
    struct traversal_level *above = &traversal->levels[height + 1];

    level->page_index = above->page_index * VDO_BLOCK_MAP_ENTRIES_PER_PAGE
                        + above->next_slot - 1;
  }
  else
    level->page_index = 0;
  level->page = page;
  level->next_slot = 0;
  traversal->height = height;
  traversal->visitor (traversal->context, traversal->tree, page,
                      level->page_index);
  return true;
}

static void
continue_traversal (struct traversal *traversal)
{
  struct vdo_tree_zone *t = traversal->tree;

  for (;;) {
    unsigned int height = traversal->height;
    struct traversal_level *level = &traversal->levels[height];
    struct vdo_data_location entry;
    unsigned int slot;

    /* Height 1 pages point at leaves, which are not read. */
    if (height == 1 || level->next_slot == VDO_BLOCK_MAP_ENTRIES_PER_PAGE) {
      if (height == VDO_BLOCK_MAP_ROOT_HEIGHT) {
        finish_traversal (traversal, VDO_SUCCESS);
        return;
      }
      traversal->height++;
      continue;
    }
    slot = level->next_slot++;
    entry = vdo_get_block_map_page_entry (level->page->page.data, slot);
    if (!vdo_is_mapped_location (entry)
        || !vdo_is_valid_interior_entry (entry, is_data_block, t->depot))
      continue;
    traversal->next_pbn = entry.pbn;
    if (!enter_next_page (traversal, height - 1))
      return;
  }
}

static void
traversal_page_loaded (struct vdo_completion *completion)
{
  struct traversal *traversal = completion->parent;
  unsigned int height = traversal->levels[VDO_BLOCK_MAP_ROOT_HEIGHT].page
                        == NULL ? VDO_BLOCK_MAP_ROOT_HEIGHT
                        : traversal->height - 1;

  if (completion->result != VDO_SUCCESS) {
    finish_traversal (traversal, completion->result);
    return;
  }
  if (enter_next_page (traversal, height))
    continue_traversal (traversal);
}

void
vdo_traverse_tree (struct vdo_tree_zone *t, block_count_t root_index,
                   vdo_tree_page_visitor visitor, void *context,
                   struct vdo_completion *completion)
{
  struct traversal *traversal = g_new0 (struct traversal, 1);

  traversal->tree = t;
  traversal->visitor = visitor;
  traversal->context = context;
  traversal->parent = completion;
  vdo_prepare_completion (&traversal->completion, traversal_page_loaded,
                          t->queue, traversal);
  traversal->waiter.completion = &traversal->completion;
  traversal->height = VDO_BLOCK_MAP_ROOT_HEIGHT;
  traversal->next_pbn = t->root_origin + root_index;
  if (enter_next_page (traversal, VDO_BLOCK_MAP_ROOT_HEIGHT))
    continue_traversal (traversal);
}
