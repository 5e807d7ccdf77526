/* nbdkit-vdo: the runtime block map (vdo-format.md 5; vdo-journals.md 6,
 * 8.1, 8.2, 8.4).
 *
 * The block map is a forest of root_count trees.  Leaf page Q (LBNs
 * Q * 812 .. Q * 812 + 811) belongs to tree Q mod root_count, and tree r
 * to logical zone r mod zone_count, so each zone owns whole trees: their
 * roots and interior pages (block-map-tree.h, kept in memory once read)
 * and their leaf pages (block-map-cache.h, a bounded cache).  A zone's
 * state is touched only on its work queue; other threads reach it by
 * enqueueing a completion there.  Nothing is shared between zones except
 * the journal lock counter and the read-only notifier, which are atomic.
 *
 * Lookups, tree growth and updates are called on the LBN's zone queue
 * and finish the caller's completion (enqueue it) when done.  Dirty pages
 * are written back under cache pressure, when the recovery journal asks
 * (vdo_block_map_write_back_older_than) and on drain, with the ordering
 * and journal locking of block-map-writer.h.  Any I/O error puts the VDO
 * in read-only mode: requests then fail with VDO_READ_ONLY (lookups of
 * pages still readable keep working) and nothing more is written.
 */
#ifndef VDO_BLOCK_MAP_H
#define VDO_BLOCK_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "block-map-cache.h"
#include "block-map-format.h"
#include "block-map-tree.h"
#include "constants.h"
#include "journal-lock.h"
#include "read-only.h"
#include "slab-journal-format.h"
#include "super-block.h"
#include "vio.h"
#include "work-queue.h"

/* The plugin's default cache= size, 128 MiB of pages for the whole map. */
#define VDO_BLOCK_MAP_DEFAULT_CACHE_PAGES 32768

struct block_map;
struct block_map_zone;

struct block_map_config {
  struct block_map_state_2_0 state;     /* as saved in the super block */
  block_count_t logical_blocks;
  nonce_t nonce;
  /* Child PBNs must be data blocks of this depot. */
  struct slab_depot_state_2_0 depot;
  const struct vdo_block_device *device;
  unsigned int logical_zone_count;      /* 1..VDO_MAX_LOGICAL_ZONES */
  struct vdo_work_queue **zone_queues;  /* one per zone, not owned */
  /* Leaf pages for the whole map, split evenly among the zones, at least
   * VDO_PAGE_CACHE_MIN_PAGES each; 0 for the default. */
  block_count_t cache_pages;
  struct vdo_journal_lock_counter *journal_locks;
  struct vdo_read_only_notifier *read_only;
  /* Serving read-only (vdo-journals.md 7.5): the journal's changes,
   * laid over every page loaded, leaf or interior, and never written.
   * Not owned; NULL for none. */
  const struct vdo_page_mappings *overlay;
};

/* Private: one lookup moving through its zone (the tree walk, then the
 * leaf page).  Embedded in requests; never touched by callers. */
struct vdo_block_map_lookup {
  struct vdo_completion completion;
  struct block_map_zone *zone;
  struct vdo_tree_walk walk;
  struct vdo_page_request page_request;
  void (*continuation) (struct vdo_block_map_lookup *lookup, int result);
};

/* A caller-owned lookup of one LBN.  The caller prepares the completion
 * (callback and queue) and sets lbn and allocate; the outputs are valid
 * when the completion runs.  Results: VDO_SUCCESS; VDO_OUT_OF_RANGE for
 * an LBN beyond the logical size; VDO_BAD_MAPPING when the leaf entry is
 * invalid (vdo-format.md 8.5: the mapping then reads as UNMAPPED and the
 * leaf page and slot are still given, so a write may go on treating the
 * old mapping as unmapped) or an interior entry is; VDO_BAD_PAGE for a
 * leaf page found at the wrong PBN; VDO_READ_ONLY after an I/O error. */
struct vdo_block_map_request {
  struct vdo_completion completion;
  logical_block_number_t lbn;
  /* The caller will allocate a missing tree page: it gets the claim on
   * it, and other allocating lookups needing that page wait until it
   * calls vdo_block_map_install_tree_page or
   * vdo_block_map_abandon_tree_page, which it must do whatever happens
   * (read-only mode included) once it got path_complete false.  In
   * read-only mode nothing is claimed.  Readers leave this false. */
  bool allocate;

  /* Outputs. */
  struct vdo_data_location mapping;     /* UNMAPPED if any page is absent */
  /* True: page_pbn and slot are the leaf page and the LBN's slot in it.
   * False: the page at missing_height (0..3) does not exist; page_pbn and
   * slot are its parent and the parent's slot that will point at it. */
  bool path_complete;
  uint8_t missing_height;
  physical_block_number_t page_pbn;
  uint16_t slot;

  /* Private: the lookup, then an update of the slot it found. */
  struct vdo_block_map_lookup lookup;
  struct vdo_completion *update_parent;
  struct vdo_data_location update_mapping;
  sequence_number_t update_block;
};

/* Statistics of the whole map; any thread. */
struct vdo_block_map_statistics {
  uint64_t cache_pages;                 /* leaf page capacity */
  uint64_t pages_cached;                /* leaf pages held */
  uint64_t tree_pages;                  /* interior pages in memory */
  uint64_t dirty_pages;                 /* leaf and interior */
  uint64_t pages_read;                  /* leaf and interior */
  uint64_t pages_written;               /* write I/Os; fresh pages count 2 */
  uint64_t flushes;                     /* device flushes before batches */
  uint64_t cache_hits;
  uint64_t cache_misses;
};

/* --- Creation ---------------------------------------------------------- */

/* Nothing is read until the first lookup.  Errors, logged:
 * UDS_INVALID_ARGUMENT for a bad configuration, ENOMEM. */
int vdo_make_block_map (const struct block_map_config *config,
                        struct block_map **map);

/* Free the map.  It must be quiescent: no request in progress and no I/O
 * in flight (drain it first, or wait for a drain that failed read-only).
 * Dirty pages are dropped without releasing their journal locks. */
void vdo_free_block_map (struct block_map *map);

/* --- Zones (any thread) ------------------------------------------------ */

unsigned int vdo_logical_zone_of_lbn (const struct block_map *map,
                                      logical_block_number_t lbn);
struct vdo_work_queue *vdo_block_map_zone_queue (const struct block_map *map,
                                                 unsigned int zone);
unsigned int vdo_block_map_zone_count (const struct block_map *map);
block_count_t vdo_block_map_logical_blocks (const struct block_map *map);

/* --- The data path (on the LBN's zone queue) --------------------------- */

/* Look up request->lbn, reading pages as needed. */
void vdo_block_map_find_slot (struct block_map *map,
                              struct vdo_block_map_request *request);

/* After the caller allocated new_pbn for the missing page at height
 * (0..3) on lbn's path and committed its BLOCK_MAP_REMAPPING journal
 * entry at recovery_point: point the parent at it, the parent dirty under
 * a LOGICAL lock on that journal block, and format the new page in
 * memory (version 4.1, this nonce, its PBN, initialized 0; a leaf is
 * formatted when first loaded, without reading).  Releases the caller's
 * claim, even on failure (VDO_READ_ONLY, or errors logged as in
 * vdo_install_tree_page).  The path above must have just been looked
 * up. */
void vdo_block_map_install_tree_page (struct block_map *map,
                                      logical_block_number_t lbn,
                                      unsigned int height,
                                      physical_block_number_t new_pbn,
                                      struct journal_point recovery_point,
                                      struct vdo_completion *completion);

/* Release the claim a lookup with allocate got, without installing (the
 * allocation failed).  Waiting lookups retry.  Synchronous. */
void vdo_block_map_abandon_tree_page
  (struct block_map *map, const struct vdo_block_map_request *request);

/* After the caller's DATA_REMAPPING entry committed at recovery_point:
 * store the mapping in lbn's leaf slot.  The page is dirty under a
 * LOGICAL lock on the oldest journal block it has an unwritten update
 * from; that lock is held before the completion is finished, so the
 * caller may then release its own entry lock.  Errors: VDO_OUT_OF_RANGE,
 * VDO_BAD_MAPPING for an invalid mapping, UDS_BAD_STATE (logged) when a
 * mapped value is put where the leaf page does not exist, VDO_READ_ONLY.
 * Putting UNMAPPED where there is no leaf page does nothing. */
void vdo_block_map_put_mapping (struct block_map *map,
                                logical_block_number_t lbn,
                                struct vdo_data_location mapping,
                                struct journal_point recovery_point,
                                struct vdo_completion *completion);

/* vdo_block_map_put_mapping for the slot REQUEST found, without walking
 * the tree again (tree pages never move): the caller's find_slot gave
 * path_complete, and it has held request->lbn since.  Uses REQUEST's
 * private part until COMPLETION is finished.  Errors as for put_mapping;
 * UDS_BAD_STATE (logged) if the lookup found no leaf. */
void vdo_block_map_update_found_slot (struct block_map *map,
                                      struct vdo_block_map_request *request,
                                      struct vdo_data_location mapping,
                                      struct journal_point recovery_point,
                                      struct vdo_completion *completion);

/* Read all 812 entries of leaf page leaf_page_number (LBNs
 * leaf_page_number * 812 ...) with one lookup, on that page's zone queue
 * (the zone of its first LBN).  *present is false, and every entry
 * UNMAPPED, when the page does not exist.  Entries past the logical size
 * read as UNMAPPED; invalid entries too, and the result is then
 * VDO_BAD_MAPPING with every output still filled in. */
void vdo_block_map_read_leaf (struct block_map *map,
                              uint64_t leaf_page_number,
                              struct vdo_data_location
                              out[VDO_BLOCK_MAP_ENTRIES_PER_PAGE],
                              bool *present,
                              struct vdo_completion *completion);

/* --- Write-back (any thread) ------------------------------------------- */

/* Start writing every dirty page, leaf or interior, in every zone, whose
 * lock is on journal block recovery_block or older.  Returns at once;
 * the journal learns of progress through its lock counter. */
void vdo_block_map_write_back_older_than (struct block_map *map,
                                          sequence_number_t recovery_block);

/* Write every dirty page of every zone and finish COMPLETION when all are
 * on disk (VDO_SUCCESS) or writing stopped (VDO_READ_ONLY).  Callers stop
 * sending requests first, as for a clean save (vdo-journals.md 8.4). */
void vdo_drain_block_map (struct block_map *map,
                          struct vdo_completion *completion);

void vdo_get_block_map_statistics (const struct block_map *map,
                                   struct vdo_block_map_statistics *stats);

/* --- For recovery and rebuild (vdo-journals.md 7.3 R6-R7, 7.4 B4-B8) --- */

/* A zone's leaf page cache, to load any block map page by PBN and set
 * its slots directly (vdo_get_cache_page, vdo_set_cache_page_entry with
 * no journal lock); on that zone's queue.  Recovery, which runs before
 * the map serves requests, may use zone 0 for every page: pages it loads
 * are written by the next drain (R7) like any other. */
struct vdo_page_cache *vdo_block_map_zone_cache (struct block_map *map,
                                                 unsigned int zone);

/* A zone's interior pages (vdo_set_tree_page_entry). */
struct vdo_tree_zone *vdo_block_map_zone_tree (struct block_map *map,
                                               unsigned int zone);

/* The zone that owns tree root_index. */
unsigned int vdo_block_map_zone_of_tree (const struct block_map *map,
                                         block_count_t root_index);

/* Visit every interior page of every tree (B7), one tree at a time, each
 * on its zone's queue; see vdo_traverse_tree.  Any thread.  COMPLETION
 * is finished when done, with the first error. */
void vdo_traverse_block_map_forest (struct block_map *map,
                                    vdo_tree_page_visitor visitor,
                                    void *context,
                                    struct vdo_completion *completion);

#endif /* VDO_BLOCK_MAP_H */
