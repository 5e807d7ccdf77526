/* nbdkit-vdo: locks on recovery journal blocks.
 *
 * A recovery journal block may be reused (and the journal heads move past
 * it) only when nothing still depends on it (vdo-journals.md 6): no entry
 * of it is waiting to reach the block map in memory (journal zone), no
 * dirty block map page holds an update from it (logical zones), and no
 * uncommitted or unsummarized slab journal block holds an entry from it
 * (physical zones).  Each holder counts its references here; counts are
 * atomic, so zone threads take and release them without a shared lock.
 * When a count of a block reaches zero the journal is told, so it can
 * try to reap.
 */
#ifndef VDO_JOURNAL_LOCK_H
#define VDO_JOURNAL_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"

enum vdo_zone_type {
  VDO_ZONE_TYPE_JOURNAL = 0,
  VDO_ZONE_TYPE_LOGICAL = 1,
  VDO_ZONE_TYPE_PHYSICAL = 2,
  VDO_ZONE_TYPE_COUNT = 3,
};

struct vdo_journal_lock_counter;

/* Called (from any thread) when a block's count for some zone type drops
 * to zero. */
typedef void (*vdo_journal_unlocked_fn) (void *context,
                                         sequence_number_t sequence_number);

/* One slot per journal block: sequence number s uses slot s mod
 * journal_size. */
int vdo_make_journal_lock_counter (block_count_t journal_size,
                                   vdo_journal_unlocked_fn unlocked,
                                   void *context,
                                   struct vdo_journal_lock_counter **counter);
void vdo_free_journal_lock_counter (struct vdo_journal_lock_counter *counter);

/* Take or drop COUNT references on journal block SEQUENCE_NUMBER for a
 * zone type.  Any thread.  Dropping below zero is a bug, logged, and
 * returns UDS_BAD_STATE (the caller should enter read-only mode). */
void vdo_acquire_journal_lock (struct vdo_journal_lock_counter *counter,
                               sequence_number_t sequence_number,
                               enum vdo_zone_type type, uint32_t count);
int vdo_release_journal_lock (struct vdo_journal_lock_counter *counter,
                              sequence_number_t sequence_number,
                              enum vdo_zone_type type, uint32_t count);

bool vdo_is_journal_block_locked (const struct vdo_journal_lock_counter *counter,
                                  sequence_number_t sequence_number,
                                  enum vdo_zone_type type);

#endif /* VDO_JOURNAL_LOCK_H */
