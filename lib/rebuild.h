/* nbdkit-vdo: reference counts rebuilt from the block map, for a
 * read-only rebuild (vdo-journals.md 7.4 B7-B8).
 *
 * Every tree is walked from its root; each entry the walk meets claims
 * its block (tree pages 254, data blocks one reference each), and entries
 * that cannot be right are unmapped instead: invalid locations, pages
 * beyond what the logical size needs, blocks outside the slabs' data,
 * and blocks already claimed past what their count allows.  Then every
 * leaf page is read, a bounded number at a time, and its entries are
 * counted the same way.
 */
#ifndef VDO_REBUILD_H
#define VDO_REBUILD_H

#include <stdint.h>

#include "constants.h"

struct vdo;

struct vdo_rebuilt_counts {
  block_count_t logical_blocks_used;    /* mapped leaf entries */
  block_count_t block_map_data_blocks;  /* tree pages below the roots */
  uint64_t leaf_pages;                  /* leaf pages found */
  uint64_t entries_removed;             /* unmapped as unusable */
};

/* B7-B8, once the depot was loaded for rebuild (all counts 0) and the
 * journal's changes are in the block map; changed pages are left dirty
 * for the next drain.  The counters are then the slab depot's, as it
 * must be saved.  Blocks the calling thread, which is not a zone thread.
 * Errors: VDO_READ_ONLY or a page error, ENOMEM (logged). */
int vdo_rebuild_reference_counts (struct vdo *vdo,
                                  struct vdo_rebuilt_counts *counts);

#endif /* VDO_REBUILD_H */
