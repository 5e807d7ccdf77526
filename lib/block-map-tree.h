/* nbdkit-vdo: the interior pages of the block map trees a logical zone
 * owns (vdo-format.md 5.1, 5.2, 5.6, 5.7).
 *
 * Roots (height 4, at root_origin + tree) and interior pages (heights
 * 3..1) are read on first use and then stay in memory, indexed by PBN, so
 * memory grows with the pages that exist and are used, never with the
 * logical size.  Leaves live in the zone's page cache instead.
 *
 * A walk follows an LBN's path from its root to the PBN of its leaf page,
 * or to the first missing page.  Pages not in memory are read, and the
 * walk waits; concurrent walks share one read.  A walk that means to
 * allocate a missing page claims it, and later walks that need the same
 * page wait until the claim holder installs it (or gives up), so one
 * missing page is never allocated twice.
 *
 * Pages read from disk that are INVALID (5.6) are formatted in memory as
 * empty pages never valid on disk; BAD ones are logged and treated the
 * same way, as the kernel does for interior pages.  A read error enters
 * read-only mode.  An entry that is not a valid interior entry (5.5)
 * fails the walk with VDO_BAD_MAPPING and enters read-only mode.
 *
 * Everything runs on the zone's thread.
 */
#ifndef VDO_BLOCK_MAP_TREE_H
#define VDO_BLOCK_MAP_TREE_H

#include <stdbool.h>
#include <stdint.h>

#include "block-map-format.h"
#include "block-map-writer.h"
#include "constants.h"
#include "page-mappings.h"
#include "read-only.h"
#include "super-block.h"
#include "vio.h"
#include "work-queue.h"

struct vdo_tree_zone;
struct vdo_tree_page;

/* Someone waiting for a page read or for a claimed page.  When the wait
 * ends the completion is enqueued, with VDO_SUCCESS (walk again) or the
 * error that ended it. */
struct vdo_tree_waiter {
  struct vdo_completion *completion;
  struct vdo_tree_waiter *next;
};

enum vdo_tree_walk_status {
  /* The leaf page exists: pbn is the leaf page, slot path.slots[0]. */
  VDO_TREE_WALK_FOUND_LEAF,
  /* The page at height is missing: pbn and slot name the parent's entry
   * that will point at it. */
  VDO_TREE_WALK_MISSING,
  /* The waiter is queued; walk again when its completion runs. */
  VDO_TREE_WALK_WAITING,
};

struct vdo_tree_walk {
  /* Inputs. */
  struct vdo_block_map_path path;
  /* Claim a missing page for allocation (or wait for its claimer);
   * without it, or in read-only mode, a missing page is just reported. */
  bool claim;
  struct vdo_tree_waiter waiter;        /* completion set by the walker */

  /* Outputs. */
  enum vdo_tree_walk_status status;
  uint8_t height;                       /* of the missing page */
  physical_block_number_t pbn;
  uint16_t slot;
  bool claimed;                         /* the caller now holds the claim */
};

struct vdo_tree_zone_config {
  unsigned int zone_number;             /* for messages */
  physical_block_number_t root_origin;
  nonce_t nonce;
  const struct slab_depot_state_2_0 *depot;   /* for valid child PBNs */
  struct vdo_work_queue *queue;
  const struct vdo_block_device *device;
  struct vdo_block_map_writer *writer;
  struct vdo_read_only_notifier *read_only;
  /* Serving read-only: journal changes laid over every page as it is
   * read (NULL: none). */
  const struct vdo_page_mappings *overlay;
};

/* Readable from any thread. */
struct vdo_tree_zone_stats {
  uint64_t pages;                       /* interior pages in memory */
  uint64_t pages_read;
};

int vdo_make_tree_zone (const struct vdo_tree_zone_config *config,
                        struct vdo_tree_zone **tree);
/* No read or write may be in flight. */
void vdo_free_tree_zone (struct vdo_tree_zone *tree);

/* Walk from the root of path.root_index.  Returns VDO_SUCCESS with
 * walk->status set, or an error (VDO_BAD_MAPPING, VDO_BAD_PAGE for a page
 * met at the wrong height, ENOMEM). */
int vdo_walk_tree (struct vdo_tree_zone *tree, struct vdo_tree_walk *walk);

/* Point the parent of the missing page at height (0..3) on PATH at
 * new_pbn, marking the parent dirty for journal block recovery_block, and
 * format the new interior page in memory (a leaf is left to the cache).
 * Releases the claim on that page, if any, waking its waiters, even when
 * it fails.  The pages above must be in memory (a walk has just reached
 * them).  Errors: VDO_READ_ONLY; logged: UDS_BAD_STATE when the path is
 * not in memory or the page already exists, VDO_BAD_MAPPING when new_pbn
 * is not a data block. */
int vdo_install_tree_page (struct vdo_tree_zone *tree,
                           const struct vdo_block_map_path *path,
                           unsigned int height,
                           physical_block_number_t new_pbn,
                           sequence_number_t recovery_block);

/* Give up a claim without installing (allocation failed); waiters walk
 * again. */
void vdo_abandon_tree_page (struct vdo_tree_zone *tree,
                            physical_block_number_t parent_pbn,
                            unsigned int slot);

/* Tree page access, for the visitors below. */
physical_block_number_t vdo_tree_page_pbn (const struct vdo_tree_page *page);
unsigned int vdo_tree_page_height (const struct vdo_tree_page *page);
const uint8_t *vdo_tree_page_data (const struct vdo_tree_page *page);
/* Set an entry and mark the page dirty for recovery_block (0: no journal
 * lock, as rebuild makes). */
void vdo_set_tree_page_entry (struct vdo_tree_zone *tree,
                              struct vdo_tree_page *page, unsigned int slot,
                              struct vdo_data_location location,
                              sequence_number_t recovery_block);

/* Called for each interior page a traversal reaches, before the walk
 * descends into its children; it may change entries (those it unmaps are
 * not descended into).  page_index numbers the page among the pages of
 * its height in its tree. */
typedef void (*vdo_tree_page_visitor) (void *context,
                                       struct vdo_tree_zone *tree,
                                       struct vdo_tree_page *page,
                                       uint64_t page_index);

/* Visit every interior page of tree root_index, root first, depth first,
 * loading pages as needed (vdo-journals.md 7.4 B7).  Children are
 * followed only through valid interior entries; height 1 pages are
 * visited but leaves are not read.  COMPLETION is finished when done, with
 * the first error. */
void vdo_traverse_tree (struct vdo_tree_zone *tree, block_count_t root_index,
                        vdo_tree_page_visitor visitor, void *context,
                        struct vdo_completion *completion);

void vdo_get_tree_zone_stats (const struct vdo_tree_zone *tree,
                              struct vdo_tree_zone_stats *stats);

#endif /* VDO_BLOCK_MAP_TREE_H */
