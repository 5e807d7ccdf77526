/* nbdkit-vdo: pins on blocks being shared by deduplication. */
#include <config.h>

#include <stdlib.h>

#include <glib.h>

#include "int-map.h"
#include "pbn-lock.h"
#include "status.h"

int
vdo_init_pbn_lock_table (struct vdo_pbn_lock_table *table)
{
  table->locks = vdo_int_map_new ();
  return VDO_SUCCESS;
}

void
vdo_uninit_pbn_lock_table (struct vdo_pbn_lock_table *table)
{
  struct vdo_pbn_lock *lock;
  size_t cursor = 0;

  if (table->locks == NULL)
    return;
  while ((lock = vdo_int_map_next (table->locks, &cursor, NULL)) != NULL)
    g_free (lock);
  vdo_int_map_free (table->locks);
  table->locks = NULL;
}

struct vdo_pbn_lock *
vdo_find_pbn_lock (const struct vdo_pbn_lock_table *table,
                   physical_block_number_t pbn)
{
  /* Most zones pin nothing most of the time: skip the hash. */
  if (vdo_int_map_size (table->locks) == 0)
    return NULL;
  return vdo_int_map_get (table->locks, pbn);
}

struct vdo_pbn_lock *
vdo_pin_pbn (struct vdo_pbn_lock_table *table, physical_block_number_t pbn,
             uint8_t count, bool new_block)
{
  struct vdo_pbn_lock *lock = vdo_find_pbn_lock (table, pbn);
  unsigned int limit;

  if (lock != NULL) {
    lock->holders++;
    return lock;
  }
  if (count == VDO_PROVISIONAL_REFERENCE_COUNT) {
    /* Only the writer of a new block may pin it before its increment;
     * any other provisional block is being written with other data. */
    if (!new_block)
      return NULL;
    limit = VDO_MAXIMUM_REFERENCE_COUNT - 1;
  }
  else if (count == 0 || count >= VDO_MAXIMUM_REFERENCE_COUNT)
    return NULL;
  else
    limit = VDO_MAXIMUM_REFERENCE_COUNT - count;

  lock = g_new0 (struct vdo_pbn_lock, 1);
  lock->pbn = pbn;
  lock->holders = 1;
  lock->increment_limit = limit;
  atomic_init (&lock->increments_claimed, 0);
  vdo_int_map_put (table->locks, pbn, lock);
  return lock;
}

struct vdo_pbn_lock *
vdo_pin_new_shared_pbn (struct vdo_pbn_lock_table *table,
                        physical_block_number_t pbn, uint8_t count,
                        unsigned int holders)
{
  struct vdo_pbn_lock *lock;

  if (count != VDO_PROVISIONAL_REFERENCE_COUNT || holders == 0
      || holders >= VDO_MAXIMUM_REFERENCE_COUNT
      || vdo_find_pbn_lock (table, pbn) != NULL)
    return NULL;
  lock = vdo_pin_pbn (table, pbn, count, true);
  lock->holders = holders;
  atomic_store (&lock->increments_claimed, holders);
  lock->holds_provisional = true;
  return lock;
}

bool
vdo_unpin_pbn (struct vdo_pbn_lock_table *table, struct vdo_pbn_lock *lock)
{
  bool free_block;

  if (--lock->holders > 0)
    return false;
  free_block = lock->holds_provisional;
  vdo_int_map_remove (table->locks, lock->pbn);
  g_free (lock);
  return free_block;
}

bool
vdo_claim_pbn_increment (struct vdo_pbn_lock *lock)
{
  unsigned int claimed = atomic_load (&lock->increments_claimed);

  while (claimed < lock->increment_limit)
    if (atomic_compare_exchange_weak (&lock->increments_claimed, &claimed,
                                      claimed + 1))
      return true;
  return false;
}
