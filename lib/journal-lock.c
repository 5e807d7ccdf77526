/* nbdkit-vdo: atomic reference counts on recovery journal blocks. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "journal-lock.h"
#include "logger.h"
#include "status.h"

struct vdo_journal_lock_counter {
  block_count_t size;
  vdo_journal_unlocked_fn unlocked;
  void *context;
  atomic_uint *counts;          /* [slot * VDO_ZONE_TYPE_COUNT + type] */
};

int
vdo_make_journal_lock_counter (block_count_t size,
                               vdo_journal_unlocked_fn unlocked, void *context,
                               struct vdo_journal_lock_counter **counter_ret)
{
  struct vdo_journal_lock_counter *c = calloc (1, sizeof *c);
  block_count_t i;

  *counter_ret = NULL;
  if (c == NULL
      || (c->counts = calloc (size * VDO_ZONE_TYPE_COUNT,
                              sizeof *c->counts)) == NULL) {
    free (c);
    vdo_log_error ("cannot allocate journal lock counters");
    return ENOMEM;
  }
  for (i = 0; i < size * VDO_ZONE_TYPE_COUNT; i++)
    atomic_init (&c->counts[i], 0);
  c->size = size;
  c->unlocked = unlocked;
  c->context = context;
  *counter_ret = c;
  return 0;
}

void
vdo_free_journal_lock_counter (struct vdo_journal_lock_counter *c)
{
  if (c == NULL)
    return;
  free (c->counts);
  free (c);
}

static atomic_uint *
count_of (const struct vdo_journal_lock_counter *c, sequence_number_t seq,
          enum vdo_zone_type type)
{
  return &c->counts[(seq % c->size) * VDO_ZONE_TYPE_COUNT + type];
}

void
vdo_acquire_journal_lock (struct vdo_journal_lock_counter *c,
                          sequence_number_t seq, enum vdo_zone_type type,
                          uint32_t count)
{
  atomic_fetch_add_explicit (count_of (c, seq, type), count,
                             memory_order_relaxed);
}

int
vdo_release_journal_lock (struct vdo_journal_lock_counter *c,
                          sequence_number_t seq, enum vdo_zone_type type,
                          uint32_t count)
{
  unsigned old;

  old = atomic_fetch_sub_explicit (count_of (c, seq, type), count,
                                   memory_order_acq_rel);
  if (old < count) {
    vdo_log_error ("journal block %" PRIu64 " lock of zone type %d released "
                   "%" PRIu32 " times with only %u held", seq, type, count, old);
    atomic_fetch_add (count_of (c, seq, type), count);
    return UDS_BAD_STATE;
  }
  if (old == count && c->unlocked)
    c->unlocked (c->context, seq);
  return VDO_SUCCESS;
}

bool
vdo_is_journal_block_locked (const struct vdo_journal_lock_counter *c,
                             sequence_number_t seq, enum vdo_zone_type type)
{
  return atomic_load_explicit (count_of (c, seq, type),
                               memory_order_acquire) != 0;
}
