/* nbdkit-vdo: physical zones: slab priorities and block allocation. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "physical-zone.h"
#include "status.h"

static unsigned int
ilog2 (block_count_t value)
{
  return 63 - __builtin_clzll (value);
}

static void run_tail_commits (struct vdo_completion *completion);

int
vdo_init_physical_zone (struct vdo_physical_zone *zone, unsigned int number,
                        struct vdo_work_queue *queue,
                        const struct vdo_block_device *device, nonce_t nonce,
                        const struct slab_config *config,
                        struct vdo_read_only_notifier *read_only,
                        struct vdo_journal_lock_counter *journal_locks,
                        struct vdo_slab_summary_zone *summary,
                        struct vdo_space_claims *claims,
                        unsigned int slab_count)
{
  block_count_t data_blocks = config->data_blocks;

  memset (zone, 0, sizeof *zone);
  zone->number = number;
  zone->queue = queue;
  zone->device = device;
  zone->nonce = nonce;
  zone->slab_config = config;
  zone->read_only = read_only;
  zone->journal_locks = journal_locks;
  zone->summary = summary;
  zone->claims = claims;
  /* Priorities 1 + log2(free) run up to 1 + log2(data_blocks), plus one
   * for the slot reserved for unopened slabs, plus 0 for full slabs. */
  zone->bucket_count = 3 + ilog2 (data_blocks);
  zone->unopened_priority =
    1 + ilog2 (data_blocks >= 2 ? data_blocks * 3 / 4 : 1);
  zone->slabs = calloc (slab_count == 0 ? 1 : slab_count, sizeof *zone->slabs);
  zone->buckets = calloc (zone->bucket_count, sizeof *zone->buckets);
  vdo_init_pbn_lock_table (&zone->pbn_locks);
  if (zone->slabs == NULL || zone->buckets == NULL) {
    vdo_uninit_physical_zone (zone);
    vdo_log_error ("cannot allocate physical zone %u", number);
    return ENOMEM;
  }
  atomic_init (&zone->free_blocks, 0);
  atomic_init (&zone->journal_blocks_written, 0);
  atomic_init (&zone->journal_blocked, 0);
  atomic_init (&zone->reference_blocks_written, 0);
  atomic_init (&zone->commit_request, 0);
  atomic_init (&zone->commit_queued, false);
  vdo_prepare_completion (&zone->commit_action, run_tail_commits, queue, zone);
  vdo_init_slab_scrubber (&zone->scrubber, zone);
  return VDO_SUCCESS;
}

void
vdo_uninit_physical_zone (struct vdo_physical_zone *zone)
{
  vdo_uninit_slab_scrubber (&zone->scrubber);
  vdo_uninit_pbn_lock_table (&zone->pbn_locks);
  free (zone->slabs);
  free (zone->buckets);
  zone->slabs = NULL;
  zone->buckets = NULL;
}

/* --- The priority table ------------------------------------------------- */

/* Full slabs rank lowest; never-used ones just below slabs with three
 * quarters of a slab free, so used slabs are refilled first; the rest by
 * the order of magnitude of their free count. */
static unsigned int
slab_priority (const struct vdo_physical_zone *zone,
               const struct vdo_slab *slab)
{
  block_count_t free_blocks = slab->counts.free_blocks;
  unsigned int priority;

  if (free_blocks == 0)
    return 0;
  if (vdo_slab_journal_is_blank (&slab->journal))
    return zone->unopened_priority;
  priority = 1 + ilog2 (free_blocks);
  return priority < zone->unopened_priority ? priority : priority + 1;
}

static void
enqueue_slab (struct vdo_physical_zone *zone, struct vdo_slab *slab)
{
  struct vdo_slab_bucket *bucket;

  slab->priority = slab_priority (zone, slab);
  bucket = &zone->buckets[slab->priority];
  slab->next = NULL;
  slab->prev = bucket->tail;
  if (bucket->tail != NULL)
    bucket->tail->next = slab;
  else
    bucket->head = slab;
  bucket->tail = slab;
  slab->in_table = true;
  zone->nonempty_buckets |= (uint64_t) 1 << slab->priority;
}

static void
dequeue_slab (struct vdo_physical_zone *zone, struct vdo_slab *slab)
{
  struct vdo_slab_bucket *bucket = &zone->buckets[slab->priority];

  if (slab->prev != NULL)
    slab->prev->next = slab->next;
  else
    bucket->head = slab->next;
  if (slab->next != NULL)
    slab->next->prev = slab->prev;
  else
    bucket->tail = slab->prev;
  slab->prev = slab->next = NULL;
  slab->in_table = false;
  if (bucket->head == NULL)
    zone->nonempty_buckets &= ~((uint64_t) 1 << slab->priority);
}

static struct vdo_slab *
dequeue_highest (struct vdo_physical_zone *zone)
{
  struct vdo_slab *slab;

  if (zone->nonempty_buckets == 0)
    return NULL;
  slab = zone->buckets[63 - __builtin_clzll (zone->nonempty_buckets)].head;
  dequeue_slab (zone, slab);
  return slab;
}

void
vdo_make_slab_allocatable (struct vdo_physical_zone *zone,
                           struct vdo_slab *slab)
{
  atomic_fetch_add_explicit (&zone->free_blocks, slab->counts.free_blocks,
                             memory_order_relaxed);
  vdo_add_spare_space (zone->claims, slab->counts.free_blocks);
  enqueue_slab (zone, slab);
}

void
vdo_remove_slab_from_table (struct vdo_physical_zone *zone,
                            struct vdo_slab *slab)
{
  if (zone->open_slab == slab)
    zone->open_slab = NULL;
  else if (slab->in_table)
    dequeue_slab (zone, slab);
  else
    return;
  atomic_fetch_sub_explicit (&zone->free_blocks, slab->counts.free_blocks,
                             memory_order_relaxed);
  vdo_add_spare_space (zone->claims, -(int_fast64_t) slab->counts.free_blocks);
}

void
vdo_adjust_zone_free_blocks (struct vdo_physical_zone *zone,
                             struct vdo_slab *slab, int delta)
{
  /* Unsigned wrap-around subtracts. */
  atomic_fetch_add_explicit (&zone->free_blocks,
                             (uint_fast64_t) (int64_t) delta,
                             memory_order_relaxed);
  vdo_add_spare_space (zone->claims, delta);
  /* The open slab is ranked again when it is put back. */
  if (!slab->in_table || slab_priority (zone, slab) == slab->priority)
    return;
  dequeue_slab (zone, slab);
  enqueue_slab (zone, slab);
}

/* --- Allocation --------------------------------------------------------- */

static void
open_slab (struct vdo_physical_zone *zone, struct vdo_slab *slab)
{
  vdo_reset_search_cursor (&slab->counts);
  /* A slab never used has never had its reference blocks written: they
   * must all reach the disk before the summary may say "load them". */
  if (vdo_slab_journal_is_blank (&slab->journal))
    vdo_dirty_all_reference_blocks (slab, 0);
  zone->open_slab = slab;
}

static int
allocate_free_block (struct vdo_physical_zone *zone,
                     physical_block_number_t *pbn)
{
  struct vdo_slab *slab = zone->open_slab;
  uint32_t sbn;

  if (slab != NULL) {
    if (vdo_allocate_reference (slab, &sbn)) {
      *pbn = slab->origin + sbn;
      return VDO_SUCCESS;
    }
    /* Exhausted up to its end; back in the table, ranked anew (it may
     * come straight back and be searched from the start). */
    zone->open_slab = NULL;
    enqueue_slab (zone, slab);
  }
  slab = dequeue_highest (zone);
  if (slab == NULL)
    return VDO_NO_SPACE;
  open_slab (zone, slab);
  if (vdo_allocate_reference (slab, &sbn)) {
    *pbn = slab->origin + sbn;
    return VDO_SUCCESS;
  }
  return VDO_NO_SPACE;
}

/* Taking a block lowered the spare count with the free count; the
 * caller's claim already had, so give that back. */
static int
spend_claim (struct vdo_physical_zone *zone, int result)
{
  if (result == VDO_SUCCESS)
    vdo_add_spare_space (zone->claims, 1);
  return result;
}

int
vdo_zone_allocate_block (struct vdo_physical_zone *zone,
                         physical_block_number_t *pbn)
{
  if (vdo_is_read_only (zone->read_only))
    return VDO_READ_ONLY;
  if (vdo_zone_free_blocks (zone) <= zone->reserved_blocks)
    return VDO_NO_SPACE;
  return spend_claim (zone, allocate_free_block (zone, pbn));
}

int
vdo_zone_reserve_block (struct vdo_physical_zone *zone)
{
  if (vdo_is_read_only (zone->read_only))
    return VDO_READ_ONLY;
  if (vdo_zone_free_blocks (zone) <= zone->reserved_blocks)
    return VDO_NO_SPACE;
  zone->reserved_blocks++;
  return VDO_SUCCESS;
}

void
vdo_zone_cancel_reservation (struct vdo_physical_zone *zone)
{
  zone->reserved_blocks--;
  vdo_add_spare_space (zone->claims, 1);
}

int
vdo_zone_allocate_reserved_block (struct vdo_physical_zone *zone,
                                  physical_block_number_t *pbn)
{
  int result;

  zone->reserved_blocks--;
  if (vdo_is_read_only (zone->read_only))
    result = VDO_READ_ONLY;
  else
    result = allocate_free_block (zone, pbn);
  /* Spent, or given back with the reservation. */
  vdo_add_spare_space (zone->claims, 1);
  return result;
}

/* --- Tail commits for the recovery journal (4.5) ------------------------ */

void
vdo_mark_slab_journal_dirty (struct vdo_physical_zone *zone,
                             struct vdo_slab_journal *journal,
                             sequence_number_t recovery_lock)
{
  struct vdo_slab_journal *after = zone->dirty_tail;

  journal->recovery_lock = recovery_lock;
  /* Usually the newest lock: found at once from the tail. */
  while (after != NULL && after->recovery_lock > recovery_lock)
    after = after->dirty_prev;
  journal->dirty_prev = after;
  journal->dirty_next = after != NULL ? after->dirty_next : zone->dirty_head;
  if (journal->dirty_next != NULL)
    journal->dirty_next->dirty_prev = journal;
  else
    zone->dirty_tail = journal;
  if (after != NULL)
    after->dirty_next = journal;
  else
    zone->dirty_head = journal;
  journal->on_dirty_list = true;
}

void
vdo_mark_slab_journal_clean (struct vdo_physical_zone *zone,
                             struct vdo_slab_journal *journal)
{
  journal->recovery_lock = 0;
  if (!journal->on_dirty_list)
    return;
  if (journal->dirty_prev != NULL)
    journal->dirty_prev->dirty_next = journal->dirty_next;
  else
    zone->dirty_head = journal->dirty_next;
  if (journal->dirty_next != NULL)
    journal->dirty_next->dirty_prev = journal->dirty_prev;
  else
    zone->dirty_tail = journal->dirty_prev;
  journal->dirty_prev = journal->dirty_next = NULL;
  journal->on_dirty_list = false;
}

static void
run_tail_commits (struct vdo_completion *completion)
{
  struct vdo_physical_zone *zone = completion->parent;
  sequence_number_t block;

  /* A request arriving from now on queues this again. */
  atomic_store (&zone->commit_queued, false);
  block = atomic_load (&zone->commit_request);
  while (zone->dirty_head != NULL && zone->dirty_head->recovery_lock <= block
         && !vdo_is_read_only (zone->read_only)) {
    struct vdo_slab_journal *journal = zone->dirty_head;

    vdo_commit_slab_journal_tail (vdo_slab_of_journal (journal));
    if (journal->on_dirty_list)
      break;
  }
}

void
vdo_request_zone_tail_commits (struct vdo_physical_zone *zone,
                               sequence_number_t recovery_block)
{
  uint_fast64_t old = atomic_load (&zone->commit_request);

  while (old < recovery_block
         && !atomic_compare_exchange_weak (&zone->commit_request, &old,
                                           recovery_block))
    ;
  if (!atomic_exchange (&zone->commit_queued, true))
    vdo_enqueue_completion (&zone->commit_action);
}
