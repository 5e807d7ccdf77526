/* nbdkit-vdo: a slab's reference counters in memory (vdo-journals.md 3).
 *
 * One byte per data block, with the transitions of 3.1 (255 is the
 * in-memory "provisionally allocated" state), per reference block the
 * number of non-zero counters (so searches skip full blocks), whether it
 * is dirty or being written, and the slab journal block whose reaping
 * its unwritten changes forbid (4.6).  A reference block is written with
 * PREFLUSH, every sector carrying the slab's latest applied slab journal
 * point; when the last dirty block of a slab is written, the slab's
 * summary entry becomes clean.
 *
 * Everything here runs on the slab's zone queue.
 */
#ifndef VDO_REF_COUNTS_H
#define VDO_REF_COUNTS_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "slab-journal-format.h"
#include "slab-summary.h"
#include "work-queue.h"

struct vdo_slab;

/* What a slab journal entry, and so a counter change, does. */
enum vdo_reference_operation {
  VDO_DATA_INCREMENT,           /* a new mapping to a data block */
  VDO_DATA_DECREMENT,           /* a mapping removed */
  VDO_BLOCK_MAP_INCREMENT,      /* a tree page allocated: 255 -> 254 */
};

struct vdo_reference_block {
  uint16_t allocated;           /* counters that are not 0 (255 included) */
  bool dirty;                   /* changed since its last write started */
  bool writing;
  bool queued;                  /* on the slab's dirty list */
  /* Slab journal block the unwritten changes depend on (0: none), and
   * the one the write in flight will release. */
  sequence_number_t journal_lock;
  sequence_number_t writing_lock;
  /* What each sector was accurate to when loaded (scrubbing skips
   * entries at or before it, 4.7). */
  struct journal_point commit_points[VDO_SECTORS_PER_BLOCK];
  struct vdo_reference_block *next_dirty;
};

struct vdo_ref_counts {
  uint8_t *counters;            /* data_blocks of them */
  block_count_t data_blocks;
  block_count_t free_blocks;    /* counters that are 0 */
  unsigned int block_count;     /* reference blocks used */
  struct vdo_reference_block *blocks;
  /* Dirty blocks not being written, oldest first. */
  struct vdo_reference_block *dirty_head, *dirty_tail;
  unsigned int dirty_count;
  unsigned int writes_in_flight;
  /* Latest slab journal point applied to any counter. */
  struct journal_point slab_journal_point;
  /* Where the next free-block search starts. */
  block_count_t search_cursor;
  /* The "slab is clean" summary update. */
  struct vdo_summary_waiter clean_waiter;
  bool clean_update_in_flight;
  bool clean_update_wanted;
};

int vdo_init_ref_counts (struct vdo_ref_counts *counts,
                         block_count_t data_blocks);
void vdo_uninit_ref_counts (struct vdo_ref_counts *counts);

/* Every counter 0, nothing dirty, no points: a slab whose reference
 * blocks were never written. */
void vdo_reset_ref_counts (struct vdo_ref_counts *counts);

static inline uint8_t
vdo_ref_count_at (const struct vdo_ref_counts *counts, uint32_t sbn)
{
  return counts->counters[sbn];
}

/* Apply OPERATION to the counter of SBN, as journaled at SJ_POINT (NULL
 * or an invalid point: not journaled).  NORMAL is false during scrubbing
 * and rebuild, where a block-map increment goes 0 -> 254.  On success the
 * reference block is dirty and, for a journaled change, holds a lock on
 * the slab journal block of SJ_POINT unless it already held an older
 * one.  VDO_REF_COUNT_INVALID, logged, for an impossible transition
 * (3.1); nothing changes then. */
int vdo_adjust_reference_count (struct vdo_slab *slab, uint32_t sbn,
                                enum vdo_reference_operation operation,
                                const struct journal_point *sj_point,
                                bool normal);

/* Scrubbing: apply a slab journal entry at ENTRY_POINT unless the sector
 * holding its counter was already written at or after that point. */
int vdo_replay_reference_change (struct vdo_slab *slab,
                                 const struct journal_point *entry_point,
                                 uint32_t sbn,
                                 enum vdo_reference_operation operation);

/* Allocation: find a free counter at or after the search cursor and make
 * it provisional (0 -> 255).  False when none is left before the end of
 * the slab; the caller reopens the slab to search from the start. */
bool vdo_allocate_reference (struct vdo_slab *slab, uint32_t *sbn);
void vdo_reset_search_cursor (struct vdo_ref_counts *counts);

/* 255 -> 0 for an allocation that was never journaled.  UDS_BAD_STATE,
 * logged, if the counter is not provisional. */
int vdo_release_provisional_reference (struct vdo_slab *slab, uint32_t sbn);

/* Dirty every reference block.  With a LOCK, each block not already
 * holding one takes a lock on that slab journal block; returns how many
 * did, for the journal's lock count. */
unsigned int vdo_dirty_all_reference_blocks (struct vdo_slab *slab,
                                             sequence_number_t lock);

/* Launch writes of up to COUNT dirty blocks (UINT_MAX: all), oldest
 * first.  Nothing is written in read-only mode. */
void vdo_save_dirty_reference_blocks (struct vdo_slab *slab,
                                      unsigned int count);

/* Read the slab's used reference blocks and unpack them (3.4): stored
 * 255 becomes 0, each sector's commit point is kept, the slab's journal
 * point is the latest of them.  PARENT is finished on the slab's zone
 * queue with the result. */
void vdo_load_reference_counts (struct vdo_slab *slab,
                                struct vdo_completion *parent);

/* Ask for the summary entry to say clean, reference blocks to load, when
 * nothing is dirty or writing (again after an update in flight). */
void vdo_request_clean_summary (struct vdo_slab *slab);

/* Whether any block is dirty, being written, or the clean summary update
 * is outstanding. */
static inline bool
vdo_ref_counts_are_busy (const struct vdo_ref_counts *counts)
{
  return counts->writes_in_flight > 0 || counts->clean_update_in_flight;
}

#endif /* VDO_REF_COUNTS_H */
