/* nbdkit-vdo: a physical zone: the slabs one thread owns, and block
 * allocation from them.
 *
 * Zone z owns slabs z, z + zone_count, ...; their counters, journals and
 * its own slab summary region.  All of it is touched only on the zone's
 * queue, so nothing on the data path takes a lock.  Only the free block
 * count is also read from other threads (statistics), as an atomic.
 *
 * Allocation follows dm-vdo's policy: one slab at a time is open and
 * gives out blocks in increasing order; when it runs out, the slab with
 * the highest priority is opened next.  Priorities come from the free
 * count (log2), with never-used slabs ranked just below slabs that still
 * have three quarters of a slab free, so used slabs are refilled before
 * fresh ones are touched.  Finding a slab is O(1) (a bucket per priority
 * and a bitmap of non-empty buckets); finding a block skips full
 * reference blocks by their counts.
 */
#ifndef VDO_PHYSICAL_ZONE_H
#define VDO_PHYSICAL_ZONE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "journal-lock.h"
#include "pbn-lock.h"
#include "read-only.h"
#include "slab-scrubber.h"
#include "slab-summary.h"
#include "slab.h"
#include "space-claims.h"
#include "super-block.h"
#include "vio.h"
#include "work-queue.h"

struct vdo_slab_bucket {
  struct vdo_slab *head, *tail;
};

struct vdo_physical_zone {
  unsigned int number;
  struct vdo_work_queue *queue;
  const struct vdo_block_device *device;
  nonce_t nonce;
  const struct slab_config *slab_config;
  struct vdo_read_only_notifier *read_only;
  struct vdo_journal_lock_counter *journal_locks;       /* may be NULL */
  struct vdo_slab_summary_zone *summary;
  struct vdo_space_claims *claims;              /* the depot's, shared */

  struct vdo_slab **slabs;                      /* this zone's, ascending */
  unsigned int slab_count;

  /* Allocation. */
  struct vdo_slab *open_slab;
  struct vdo_slab_bucket *buckets;
  unsigned int bucket_count;
  uint64_t nonempty_buckets;                    /* bit p: bucket p */
  unsigned int unopened_priority;
  atomic_uint_fast64_t free_blocks;             /* in rebuilt slabs */
  /* Free blocks promised to writes that will allocate later (packed
   * fragments): other allocations may not take them. */
  block_count_t reserved_blocks;

  /* Statistics, written on the zone queue, read anywhere. */
  atomic_uint_fast64_t journal_blocks_written;
  atomic_uint_fast64_t journal_blocked;         /* entries held back */
  atomic_uint_fast64_t reference_blocks_written;

  /* Slab journals whose tail block locks an RJ block, oldest first. */
  struct vdo_slab_journal *dirty_head, *dirty_tail;

  /* Tail commits the recovery journal asks for (any thread). */
  struct vdo_completion commit_action;
  atomic_uint_fast64_t commit_request;
  atomic_bool commit_queued;

  struct vdo_slab_scrubber scrubber;

  /* Blocks deduplication is sharing (pbn-lock.h). */
  struct vdo_pbn_lock_table pbn_locks;

  /* Load and drain bookkeeping, owned by slab-depot.c. */
  struct vdo_completion zone_action;
  struct vdo_completion scrub_done;
  unsigned int next_slab;
  unsigned int slabs_busy;
  int result;
};

int vdo_init_physical_zone (struct vdo_physical_zone *zone,
                            unsigned int number, struct vdo_work_queue *queue,
                            const struct vdo_block_device *device,
                            nonce_t nonce, const struct slab_config *config,
                            struct vdo_read_only_notifier *read_only,
                            struct vdo_journal_lock_counter *journal_locks,
                            struct vdo_slab_summary_zone *summary,
                            struct vdo_space_claims *claims,
                            unsigned int slab_count);
void vdo_uninit_physical_zone (struct vdo_physical_zone *zone);

/* Put a rebuilt slab in the allocation table and count its free blocks,
 * or take it out. */
void vdo_make_slab_allocatable (struct vdo_physical_zone *zone,
                                struct vdo_slab *slab);
void vdo_remove_slab_from_table (struct vdo_physical_zone *zone,
                                 struct vdo_slab *slab);

/* A rebuilt slab's free count changed by DELTA: keep the zone's count
 * and the slab's priority in step. */
void vdo_adjust_zone_free_blocks (struct vdo_physical_zone *zone,
                                  struct vdo_slab *slab, int delta);

/* Allocate one block (counter 0 -> 255), spending a claim the caller
 * holds (space-claims.h).  VDO_NO_SPACE when the zone has no free block
 * that is not reserved (the claim is kept: try the other zones),
 * VDO_READ_ONLY in read-only mode. */
int vdo_zone_allocate_block (struct vdo_physical_zone *zone,
                             physical_block_number_t *pbn);

/* Promise one free block of this zone without choosing it, for a claim
 * the caller holds, which the reservation then holds: VDO_NO_SPACE when
 * every free block is taken or promised, VDO_READ_ONLY.  The promise is
 * kept by vdo_zone_allocate_reserved_block or given up, with its claim,
 * by vdo_zone_cancel_reservation. */
int vdo_zone_reserve_block (struct vdo_physical_zone *zone);
void vdo_zone_cancel_reservation (struct vdo_physical_zone *zone);
/* Allocate the block a reservation promised.  Fails only in read-only
 * mode, or when slabs left the table since (the caller's error). */
int vdo_zone_allocate_reserved_block (struct vdo_physical_zone *zone,
                                      physical_block_number_t *pbn);

/* The zone's list of journals holding RJ locks. */
void vdo_mark_slab_journal_dirty (struct vdo_physical_zone *zone,
                                  struct vdo_slab_journal *journal,
                                  sequence_number_t recovery_lock);
void vdo_mark_slab_journal_clean (struct vdo_physical_zone *zone,
                                  struct vdo_slab_journal *journal);

/* Any thread: have the zone commit every tail block locking a recovery
 * journal block at or before RECOVERY_BLOCK. */
void vdo_request_zone_tail_commits (struct vdo_physical_zone *zone,
                                    sequence_number_t recovery_block);

static inline void
vdo_count_zone_event (atomic_uint_fast64_t *counter)
{
  atomic_fetch_add_explicit (counter, 1, memory_order_relaxed);
}

static inline block_count_t
vdo_zone_free_blocks (const struct vdo_physical_zone *zone)
{
  return atomic_load_explicit (&zone->free_blocks, memory_order_relaxed);
}

#endif /* VDO_PHYSICAL_ZONE_H */
