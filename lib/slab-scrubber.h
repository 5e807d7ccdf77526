/* nbdkit-vdo: rebuilding a slab's counters from its journal
 * (vdo-journals.md 4.7).
 *
 * Each physical zone has one scrubber and scrubs its queued slabs one at
 * a time, on the zone's queue.  A slab is queued with its journal tail
 * loaded and its reference blocks loaded if the summary says so.  For a
 * slab whose summary entry is dirty the scrubber reads the whole journal
 * region, checks every block from the head named by the tail block to
 * the tail, and applies each entry whose counter's sector was written
 * before the entry's slab journal point.  Then the dirty reference
 * blocks are written (all of them if they were never written), the
 * summary entry becomes clean, and the journal is reopened empty.
 */
#ifndef VDO_SLAB_SCRUBBER_H
#define VDO_SLAB_SCRUBBER_H

#include <stdint.h>

#include "slab.h"
#include "vio.h"
#include "work-queue.h"

struct vdo_slab_scrubber {
  struct vdo_physical_zone *zone;
  struct vdo_slab *queue_head, *queue_tail;     /* linked by slab->next */
  unsigned int queued;
  struct vdo_slab *current;
  uint8_t *buffer;                              /* the journal region */
  struct vdo_vio vio;
  struct vdo_completion *parent;
  int result;
};

void vdo_init_slab_scrubber (struct vdo_slab_scrubber *scrubber,
                             struct vdo_physical_zone *zone);
void vdo_uninit_slab_scrubber (struct vdo_slab_scrubber *scrubber);

/* Queue a loaded slab (status VDO_SLAB_REQUIRES_SCRUBBING). */
void vdo_register_slab_for_scrubbing (struct vdo_slab_scrubber *scrubber,
                                      struct vdo_slab *slab);

/* On the zone queue: scrub every queued slab, leaving each
 * VDO_SLAB_REBUILT (not yet in the allocation table: the caller decides).
 * PARENT is finished with VDO_SUCCESS, or the first error (the volume is
 * then read-only; VDO_CORRUPT_JOURNAL for a bad journal block or entry,
 * VDO_REF_COUNT_INVALID for an impossible change). */
void vdo_scrub_slabs (struct vdo_slab_scrubber *scrubber,
                      struct vdo_completion *parent);

#endif /* VDO_SLAB_SCRUBBER_H */
