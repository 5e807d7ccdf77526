/* nbdkit-vdo: visiting many block map pages through one zone's cache, a
 * bounded number at a time (vdo-journals.md 7.3 R6, 7.4 B8).
 *
 * Repair touches pages by the thousand; holding them all would take as
 * much memory as the map.  A sweep keeps at most `window` pages pinned:
 * each is requested from the cache, visited on the zone's thread once
 * ready, and released, and the next one is requested in its place.
 * Pages the visitor changed are dirty in the cache, which writes them
 * back under pressure or when the block map is drained.
 */
#ifndef VDO_PAGE_SWEEP_H
#define VDO_PAGE_SWEEP_H

#include <stdbool.h>
#include <stddef.h>

#include "block-map-cache.h"
#include "constants.h"
#include "work-queue.h"

/* The PBN of page INDEX (0 .. page_count - 1). */
typedef physical_block_number_t (*vdo_sweep_pbn_fn) (void *context,
                                                     size_t index);

/* Visit page INDEX, pinned, on the zone's thread.  Change slots only
 * through vdo_set_cache_page_entry.  An error stops the sweep. */
typedef int (*vdo_sweep_visit_fn) (void *context,
                                   struct vdo_page_cache *cache,
                                   struct vdo_cache_page *page,
                                   size_t index);

struct vdo_page_sweep_config {
  struct vdo_page_cache *cache;
  struct vdo_work_queue *queue;         /* the cache's zone thread */
  size_t page_count;
  /* Pages pinned at once: at least 1, and at most half the cache so
   * that dirty pages can be evicted meanwhile. */
  unsigned int window;
  /* Rebuild (7.4 B4): a page that cannot be read is an empty one. */
  bool empty_on_read_error;
  vdo_sweep_pbn_fn pbn_of;
  vdo_sweep_visit_fn visit;
  void *context;
};

/* Visit every page, blocking the calling thread (never a zone thread)
 * until done.  Returns VDO_SUCCESS or the first error: the visitor's or
 * the cache's (VDO_READ_ONLY, VDO_BAD_PAGE); ENOMEM, logged. */
int vdo_sweep_pages (const struct vdo_page_sweep_config *config);

/* A window for a sweep through CACHE: half its pages, at most LIMIT. */
unsigned int vdo_sweep_window (const struct vdo_page_cache *cache,
                               unsigned int limit);

#endif /* VDO_PAGE_SWEEP_H */
