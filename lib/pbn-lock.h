/* nbdkit-vdo: pins on data blocks that deduplication is about to share.
 *
 * Between verifying that a block holds a write's data and applying that
 * write's reference increment, the block must not be freed and handed
 * to another write: the increment would then map the LBN to someone
 * else's data.  A pin (dm-vdo's PBN read lock) prevents it: while a
 * block is pinned, a decrement that would free it leaves it provisional
 * instead (still allocated, count 0 in all but name), and the last
 * unpin frees it if nobody took a reference meanwhile.
 *
 * A pin also bounds how many increments may be promised against the
 * block, so its count never passes VDO_MAXIMUM_REFERENCE_COUNT: each
 * sharer claims one first, and a sharer that finds none left writes a
 * new copy (dm-vdo's "rollover").
 *
 * The table belongs to a physical zone: pin, unpin and lookups run on
 * its queue.  Claims come from a hash zone thread, so they are atomic.
 */
#ifndef VDO_PBN_LOCK_H
#define VDO_PBN_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>

#include "constants.h"

struct vdo_pbn_lock {
  physical_block_number_t pbn;
  unsigned int holders;
  unsigned int increment_limit;
  atomic_uint increments_claimed;
  /* A decrement under the pin left the block provisional. */
  bool holds_provisional;
};

struct vdo_int_map;

/* The pins of one physical zone, by PBN. */
struct vdo_pbn_lock_table {
  struct vdo_int_map *locks;    /* pbn -> struct vdo_pbn_lock */
};

int vdo_init_pbn_lock_table (struct vdo_pbn_lock_table *table);
void vdo_uninit_pbn_lock_table (struct vdo_pbn_lock_table *table);

struct vdo_pbn_lock *vdo_find_pbn_lock (const struct vdo_pbn_lock_table *table,
                                        physical_block_number_t pbn);

/* Pin PBN, whose counter is COUNT: 1..253 for a block found by advice,
 * or provisional (255) for a write's own new block, whose own increment
 * is still to come.  Another holder's pin is shared.  Returns the lock,
 * or NULL when the block cannot be shared (free, full, or provisional
 * without NEW_BLOCK). */
struct vdo_pbn_lock *vdo_pin_pbn (struct vdo_pbn_lock_table *table,
                                  physical_block_number_t pbn,
                                  uint8_t count, bool new_block);

/* Pin a write's own new block (provisional) that HOLDERS writes will
 * each reference once, as the fragments of a compressed block do: one
 * holder and one claimed increment for each.  The pin owns the
 * provisional reference: its last holder frees the block unless an
 * increment took it.  NULL when the block is not provisional or is
 * pinned already. */
struct vdo_pbn_lock *vdo_pin_new_shared_pbn (struct vdo_pbn_lock_table *table,
                                             physical_block_number_t pbn,
                                             uint8_t count,
                                             unsigned int holders);

/* Drop one holder.  True when it was the last and the block is left
 * provisional by a decrement under the pin: the caller frees it. */
bool vdo_unpin_pbn (struct vdo_pbn_lock_table *table,
                    struct vdo_pbn_lock *lock);

/* Claim one increment against the pin (any thread); false when the
 * block may take no more references. */
bool vdo_claim_pbn_increment (struct vdo_pbn_lock *lock);

#endif /* VDO_PBN_LOCK_H */
