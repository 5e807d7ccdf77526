/* nbdkit-vdo: hash zones and hash locks: inline deduplication on the
 * write path (dm-vdo's dedupe.c, uds-index.md 2.3).
 *
 * A full block is named where it arrives; a partial one, once merged,
 * on the CPU thread.  After a write has its block (or found none: a
 * full volume can still dedupe), it goes to the hash zone its name
 * selects.  There every concurrent write of one name
 * shares a hash lock.  The first, the agent, asks the index for advice
 * (POST with its new block, QUERY without one).  Advice is used only
 * after the block it names is pinned (pbn-lock.h) and read back equal
 * byte for byte; anything else is stale, and the agent writes its own
 * block and tells the index (UPDATE).  Either way, once the lock has a
 * pinned block with the data, every member maps to it, each claiming
 * one reference first; when the block is full, members write copies of
 * their own.  A member whose data differs from the lock's (two blocks
 * with one name) never joins it: it writes its own block.
 *
 * A hash zone's locks are touched only on its thread.
 */
#ifndef VDO_HASH_LOCK_H
#define VDO_HASH_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "work-queue.h"

struct data_vio;
struct vdo;

struct hash_zone {
  unsigned int number;
  struct vdo_work_queue *queue;
  void *locks;                  /* GHashTable: name -> struct hash_lock */
};

/* Counters of the dedupe path (vdostats' names), any thread. */
struct vdo_dedupe_counters {
  atomic_uint_fast64_t advice_valid;       /* advice verified and used */
  atomic_uint_fast64_t advice_stale;       /* advice that did not verify */
  atomic_uint_fast64_t advice_timeouts;    /* the index did not answer */
  atomic_uint_fast64_t concurrent_matches; /* shared a lock's block */
  atomic_uint_fast64_t hash_collisions;    /* same name, other data */
  atomic_uint_fast64_t rollovers;          /* block full: wrote a copy */
};

int vdo_init_hash_zone (struct hash_zone *zone, unsigned int number,
                        struct vdo_work_queue *queue);
void vdo_uninit_hash_zone (struct hash_zone *zone);

/* Name a full block's data where it arrives, on the submitting thread
 * (off the zone threads, and on every CPU the clients use), saving the
 * trip to the CPU queue. */
void vdo_name_data_vio (struct data_vio *data_vio);

/* The write has its data in its block and, unless the volume is full,
 * its allocation: name it (unless named already) and deduplicate.  It continues with
 * vdo_data_vio_write_block or vdo_data_vio_share_block (data-vio.h). */
void vdo_dedupe_data_vio (struct data_vio *data_vio);

/* The agent's own block is written: let the lock share it, then go on
 * to the journal. */
void vdo_hash_lock_block_written (struct data_vio *data_vio);

/* At the end of a write that holds a hash lock: leave it, then finish
 * (vdo_data_vio_finish_after_dedupe). */
void vdo_leave_hash_lock (struct data_vio *data_vio);

#endif /* VDO_HASH_LOCK_H */
