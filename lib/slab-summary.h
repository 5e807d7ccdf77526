/* nbdkit-vdo: the slab summary at run time (vdo-journals.md 5).
 *
 * The summary keeps one entry per slab: where its journal tail is, how
 * full it is, whether its reference blocks must be loaded and whether
 * its journal may hold entries not yet in those blocks.  Each physical
 * zone owns its own region of the partition (4 blocks); an entry update
 * changes the zone's in-memory copy and rewrites the whole block holding
 * it with PREFLUSH, so the slab journal block or reference blocks the
 * entry describes are durable before the entry is (8.1).
 *
 * Threads: a zone region and its writes belong to the zone's queue.
 * Loading runs on whatever queue the caller names, before the zones
 * start working.
 */
#ifndef VDO_SLAB_SUMMARY_H
#define VDO_SLAB_SUMMARY_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "read-only.h"
#include "slab-summary-format.h"
#include "vio.h"
#include "work-queue.h"

struct vdo_summary_waiter;

/* Called on the zone's queue once the write carrying an update has
 * finished: VDO_SUCCESS, VDO_READ_ONLY, or the I/O error. */
typedef void (*vdo_summary_callback) (struct vdo_summary_waiter *waiter,
                                      int result);

/* Embed one in whatever waits for an update. */
struct vdo_summary_waiter {
  vdo_summary_callback callback;
  struct vdo_summary_waiter *next;
};

struct vdo_slab_summary_zone;

/* One 4 KiB block of a zone's region and its write. */
struct vdo_slab_summary_block {
  struct vdo_slab_summary_zone *zone;
  unsigned int index;                   /* within the zone's region */
  bool writing;
  uint8_t *buffer;
  struct vdo_vio vio;
  /* Waiting for the write in flight; and for the next one. */
  struct vdo_summary_waiter *current_waiters;
  struct vdo_summary_waiter *next_waiters;
};

struct vdo_slab_summary;

struct vdo_slab_summary_zone {
  struct vdo_slab_summary *summary;
  unsigned int zone_number;
  struct vdo_work_queue *queue;
  struct slab_summary_entry *entries;   /* VDO_MAX_SLABS, by slab number */
  struct vdo_slab_summary_block blocks[VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE];
};

struct vdo_slab_summary {
  physical_block_number_t origin;       /* first block of the partition */
  const struct vdo_block_device *device;
  struct vdo_read_only_notifier *read_only;
  unsigned int zone_count;              /* zones that update regions now */
  unsigned int hint_shift;
  block_count_t data_blocks;            /* per slab, for the default entry */
  unsigned int slab_bits;
  /* VDO_MAX_PHYSICAL_ZONES regions of VDO_MAX_SLABS entries. */
  struct slab_summary_entry *entries;
  struct vdo_slab_summary_zone zones[VDO_MAX_PHYSICAL_ZONES];

  /* Loading. */
  uint8_t *load_buffer;
  struct vdo_vio load_vio;
  struct vdo_completion *load_parent;
  unsigned int old_zone_count;
};

/* Make a summary for ZONE_COUNT zones whose regions are written on
 * QUEUES[z].  SUMMARY_BLOCKS must be the partition's 64 blocks.  Errors:
 * VDO_BAD_CONFIGURATION, ENOMEM; logged. */
int vdo_make_slab_summary (physical_block_number_t origin,
                           block_count_t summary_blocks,
                           const struct vdo_block_device *device,
                           struct vdo_read_only_notifier *read_only,
                           unsigned int zone_count,
                           struct vdo_work_queue **queues,
                           unsigned int slab_bits, block_count_t data_blocks,
                           struct vdo_slab_summary **summary);
void vdo_free_slab_summary (struct vdo_slab_summary *summary);

/* Load (vdo-journals.md 7.2 C2): with USE_DEFAULTS (a new volume, a
 * rebuild, or a recorded zone count of 0) every entry becomes the default
 * entry without reading anything; otherwise read all 64 blocks and take
 * slab n from region n mod OLD_ZONE_COUNT.  Then the combined table is
 * copied to every region and all 64 blocks are written.  PARENT is
 * finished (from the I/O path, on its own queue) with the result. */
void vdo_load_slab_summary (struct vdo_slab_summary *summary,
                            bool use_defaults, unsigned int old_zone_count,
                            struct vdo_completion *parent);

/* The zone's region; and its current entry for a slab. */
static inline struct vdo_slab_summary_zone *
vdo_slab_summary_zone (struct vdo_slab_summary *summary, unsigned int zone)
{
  return &summary->zones[zone];
}

static inline const struct slab_summary_entry *
vdo_get_slab_summary_entry (const struct vdo_slab_summary_zone *zone,
                            unsigned int slab)
{
  return &zone->entries[slab];
}

/* The hint an entry gets for FREE_BLOCKS free blocks, and the free count
 * an entry's hint stands for (used while a slab's counts are unknown). */
uint8_t vdo_slab_summary_hint (const struct vdo_slab_summary *summary,
                               block_count_t free_blocks);
block_count_t vdo_slab_summary_free_from_hint
  (const struct vdo_slab_summary *summary, uint8_t hint);

/* On the zone's queue: change the slab's entry (load_ref_counts is
 * sticky: it is ORed in) and write the block holding it with PREFLUSH;
 * WAITER's callback runs once a write that includes this change is
 * done.  In read-only mode nothing is written and the callback runs
 * from the zone's queue with VDO_READ_ONLY. */
void vdo_update_slab_summary_entry (struct vdo_slab_summary_zone *zone,
                                    struct vdo_summary_waiter *waiter,
                                    unsigned int slab,
                                    uint8_t tail_block_offset,
                                    bool load_ref_counts, bool is_dirty,
                                    block_count_t free_blocks);

/* Whether a zone has summary writes in flight or queued. */
bool vdo_slab_summary_zone_is_busy (const struct vdo_slab_summary_zone *zone);

#endif /* VDO_SLAB_SUMMARY_H */
