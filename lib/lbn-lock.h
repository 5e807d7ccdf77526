/* nbdkit-vdo: logical block locks, one table per logical zone.
 *
 * Every request on an LBN (read, write, trim) holds the LBN's lock from
 * its block map lookup until its mapping is final, so requests on one
 * block take effect one at a time, in arrival order, and a block
 * referenced by a mapping cannot be freed while a reader holds it.
 * The table belongs to its zone's thread: no locking inside.
 */
#ifndef VDO_LBN_LOCK_H
#define VDO_LBN_LOCK_H

#include <stdbool.h>

#include "constants.h"
#include "work-queue.h"

struct vdo_lbn_lock_table;

/* A request waiting for, or holding, an LBN lock. */
struct vdo_lbn_waiter {
  logical_block_number_t lbn;
  /* Enqueued when the lock is handed to this waiter. */
  struct vdo_completion *completion;
  struct vdo_lbn_waiter *next;
};

int vdo_make_lbn_lock_table (struct vdo_lbn_lock_table **table);
void vdo_free_lbn_lock_table (struct vdo_lbn_lock_table *table);

/* Take the lock of waiter->lbn.  True when taken at once; otherwise the
 * waiter is queued and its completion is enqueued once the lock has been
 * handed to it.  (GLib aborts on allocation failure.) */
bool vdo_acquire_lbn_lock (struct vdo_lbn_lock_table *table,
                           struct vdo_lbn_waiter *waiter);

/* Release the lock held by HOLDER, handing it to the next waiter. */
void vdo_release_lbn_lock (struct vdo_lbn_lock_table *table,
                           struct vdo_lbn_waiter *holder);

/* The request holding the lock of LBN, or NULL. */
struct vdo_lbn_waiter *vdo_lbn_lock_holder (const struct vdo_lbn_lock_table *table,
                                            logical_block_number_t lbn);

/* Number of LBNs locked, for tests and statistics. */
unsigned vdo_lbn_locks_held (const struct vdo_lbn_lock_table *table);

#endif /* VDO_LBN_LOCK_H */
