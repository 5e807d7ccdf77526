/* nbdkit-vdo: the slab depot at run time: physical zones, block
 * allocation, reference counts, slab journals and the slab summary
 * (vdo-journals.md 2-8).
 *
 * Threads.  The depot is split into physical zones, each owned by one
 * work queue; slab n belongs to zone n mod zone_count.  Every function
 * below says where it may be called:
 *
 *  - any thread: vdo_physical_zone_of_pbn, vdo_physical_zone_queue,
 *    vdo_load_slab_depot, vdo_drain_slab_depot, vdo_update_reference_count
 *    (it moves itself to the owning zone's queue if called elsewhere),
 *    vdo_commit_oldest_slab_journal_tails, vdo_get_slab_depot_statistics,
 *    vdo_record_slab_depot (when no load or drain runs);
 *  - the zone's own queue: vdo_allocate_block, the block reservations,
 *    vdo_release_provisional_block, vdo_get_reference_count,
 *    vdo_replay_into_slab_depot.
 *
 * Loading, draining and scrubbing run across all zone queues and finish
 * the caller's completion on the queue the caller chose.  Only one of
 * them may run at a time, and no update may be submitted while one
 * does, except that a drain first makes the entries of updates already
 * submitted.
 *
 * Errors.  A metadata I/O error, an impossible reference count change,
 * a corrupt slab journal or slab journal points out of order put the
 * volume in read-only mode (through the read-only notifier): metadata
 * writes stop and waiting and later updates fail with VDO_READ_ONLY.
 */
#ifndef VDO_SLAB_DEPOT_H
#define VDO_SLAB_DEPOT_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "journal-lock.h"
#include "pbn-lock.h"
#include "read-only.h"
#include "ref-counts.h"
#include "slab-journal.h"
#include "super-block.h"
#include "vio.h"
#include "work-queue.h"

struct slab_depot;
struct vdo_slab;

enum vdo_depot_load_type {
  /* A NEW volume (7.2): the summary is not read; the default table is
   * written to all 64 blocks; every slab is empty, its journal blank. */
  VDO_DEPOT_LOAD_NEW,
  /* A CLEAN volume (7.2 C2-C5): read and combine the summary, write it
   * back to all 16 regions, load each slab's journal tail and reference
   * counts, and scrub every slab that needs it before finishing. */
  VDO_DEPOT_LOAD_CLEAN,
  /* Crash recovery's depot load (7.3 R8): as CLEAN, but only the journal
   * tails are read; slabs wait for vdo_replay_into_slab_depot, then
   * vdo_drain_slab_depot_for_recovery, then vdo_scrub_slab_depot. */
  VDO_DEPOT_LOAD_FOR_RECOVERY,
  /* Read-only rebuild's depot load (7.4 B6): the default summary is
   * written, every slab journal region is zeroed, all counts start at 0;
   * the rebuild then calls vdo_rebuild_reference_count and finally
   * vdo_drain_slab_depot_for_rebuild (B9). */
  VDO_DEPOT_LOAD_FOR_REBUILD,
};

struct slab_depot_config {
  struct slab_depot_state_2_0 state;            /* from the super block */
  nonce_t nonce;
  physical_block_number_t summary_origin;       /* the summary partition */
  block_count_t summary_blocks;
  const struct vdo_block_device *device;
  unsigned int zone_count;                      /* physical zones now */
  struct vdo_work_queue **zone_queues;          /* one per zone */
  struct vdo_journal_lock_counter *journal_locks;       /* may be NULL */
  struct vdo_read_only_notifier *read_only;
};

/* Build the depot; nothing is read until it is loaded.  Errors, logged:
 * VDO_BAD_CONFIGURATION (zone count 0, above 16 or above the slab count,
 * a summary partition that is not 64 blocks, no slabs), ENOMEM. */
int vdo_make_slab_depot (const struct slab_depot_config *config,
                         struct slab_depot **depot);
/* Free a depot that is not loading, draining or writing. */
void vdo_free_slab_depot (struct slab_depot *depot);

unsigned int vdo_slab_depot_zone_count (const struct slab_depot *depot);
block_count_t vdo_slab_depot_slab_count (const struct slab_depot *depot);

/* The zone owning PBN (0 for PBNs outside the slabs), and a zone's
 * queue. */
unsigned int vdo_physical_zone_of_pbn (const struct slab_depot *depot,
                                       physical_block_number_t pbn);
struct vdo_work_queue *vdo_physical_zone_queue (const struct slab_depot *depot,
                                                unsigned int zone);

/* Load (once per depot); PARENT is finished with VDO_SUCCESS or the
 * first error. */
void vdo_load_slab_depot (struct slab_depot *depot,
                          enum vdo_depot_load_type type,
                          struct vdo_completion *parent);

/* Claims on free blocks (space-claims.h), any thread.  Claim COUNT
 * blocks, all or none: false when fewer are free and not claimed by
 * others.  Every allocation and reservation spends one claim; claims
 * not spent are given back. */
bool vdo_claim_blocks (struct slab_depot *depot, block_count_t count);
/* Claim COUNT blocks only if KEEP more stay spare. */
bool vdo_promise_blocks (struct slab_depot *depot, block_count_t count,
                         block_count_t keep);
void vdo_return_claimed_blocks (struct slab_depot *depot,
                                block_count_t count);

/* Allocate a block in ZONE (counter 0 -> 255), spending a claim.
 * VDO_NO_SPACE when the zone has none (the claim is kept: try the other
 * zones), VDO_READ_ONLY. */
int vdo_allocate_block (struct slab_depot *depot, unsigned int zone,
                        physical_block_number_t *pbn);

/* Reservations of one block in ZONE, for a write that allocates later
 * (physical-zone.h): reserve with a claim, then allocate it (spending
 * the claim) or cancel it (giving the claim back). */
int vdo_reserve_block (struct slab_depot *depot, unsigned int zone);
void vdo_cancel_block_reservation (struct slab_depot *depot,
                                   unsigned int zone);
int vdo_allocate_reserved_block (struct slab_depot *depot, unsigned int zone,
                                 physical_block_number_t *pbn);

/* 255 -> 0 for an allocation that was never journaled.  VDO_OUT_OF_RANGE
 * for a PBN that is no slab data block, UDS_BAD_STATE if the counter is
 * not provisional; both logged. */
int vdo_release_provisional_block (struct slab_depot *depot,
                                   physical_block_number_t pbn);

/* Journal a reference count change in the slab's journal, then apply it
 * (3.1), and finish UPDATE's completion: VDO_SUCCESS,
 * VDO_REF_COUNT_INVALID (the volume is now read-only), VDO_READ_ONLY,
 * VDO_OUT_OF_RANGE (not a slab data block; read-only too), or
 * UDS_BAD_STATE (the slab is not loaded, or points out of order).
 * Updates of one slab must come in recovery journal order: increment
 * (expanded 2k) before decrement (2k + 1) of the same entry.  Waits, in
 * order, while the slab journal is at its blocking threshold or a partial
 * tail block is being committed. */
void vdo_update_reference_count (struct slab_depot *depot,
                                 struct vdo_reference_update *update);

/* Any thread: commit every slab journal tail block that locks a
 * recovery journal block at or before RECOVERY_BLOCK (4.5). */
void vdo_commit_oldest_slab_journal_tails (struct slab_depot *depot,
                                           sequence_number_t recovery_block);

/* Clean save (8.4): make the entries of updates already submitted,
 * commit every slab journal tail, write every dirty reference block of
 * loaded slabs, and leave their summary entries clean.  PARENT gets
 * VDO_SUCCESS or VDO_READ_ONLY.  The depot stays usable. */
void vdo_drain_slab_depot (struct slab_depot *depot,
                           struct vdo_completion *parent);

/* The depot state for the super block; zone_count is the current one. */
void vdo_record_slab_depot (const struct slab_depot *depot,
                            struct slab_depot_state_2_0 *state);

struct vdo_slab_depot_statistics {
  block_count_t slab_count;
  block_count_t data_blocks;            /* slab_count * data blocks per slab */
  block_count_t free_blocks;            /* counters at 0 in loaded slabs */
  block_count_t allocated_blocks;       /* data_blocks - free_blocks */
  uint64_t slab_journal_blocks_written;
  uint64_t slab_journal_blocked;        /* times entries had to wait */
  uint64_t reference_blocks_written;
};

/* Blocks free for allocation now, from any thread: a snapshot, which
 * never counts slabs still being scrubbed. */
block_count_t vdo_slab_depot_free_blocks (const struct slab_depot *depot);

/* Any thread: relaxed atomic reads, exact only when the zones are idle. */
void vdo_get_slab_depot_statistics (const struct slab_depot *depot,
                                    struct vdo_slab_depot_statistics *stats);

/* Zone queue of PBN: pin a block that deduplication will share
 * (pbn-lock.h); NEW_BLOCK for a write's own provisional block.  NULL
 * when it cannot be shared: not a data block of a loaded slab, free,
 * full, or provisional for someone else. */
struct vdo_pbn_lock *vdo_pin_block (struct slab_depot *depot,
                                    physical_block_number_t pbn,
                                    bool new_block);
/* Zone queue of PBN, a write's own new block: pin it for the HOLDERS
 * fragments of the compressed block about to be written there
 * (vdo_pin_new_shared_pbn).  NULL when it cannot be: not a provisional
 * data block of a loaded, writable slab. */
struct vdo_pbn_lock *vdo_pin_compressed_block (struct slab_depot *depot,
                                               physical_block_number_t pbn,
                                               unsigned int holders);
/* Zone queue of the pinned PBN: drop the pin, freeing a block that lost
 * its last reference while pinned and gained none. */
void vdo_unpin_block (struct slab_depot *depot, struct vdo_pbn_lock *lock);

/* Zone queue: the in-memory counter of a slab data block (255 for a
 * provisional one).  VDO_OUT_OF_RANGE for other PBNs. */
int vdo_get_reference_count (const struct slab_depot *depot,
                             physical_block_number_t pbn, uint8_t *count);

/* For recovery, rebuild and tests: slab N (any thread; touch it only on
 * its zone's queue). */
struct vdo_slab *vdo_get_slab (struct slab_depot *depot, block_count_t n);

/* --- Hooks for crash recovery (7.3 R9, R12) ----------------------------- */

/* Zone queue, after VDO_DEPOT_LOAD_FOR_RECOVERY: append one half of a
 * recovery journal entry to the slab journal of PBN unless the slab's
 * journal already holds it (see vdo_replay_into_slab_journal).  No
 * locks, no counter changes.  VDO_OUT_OF_RANGE for a PBN that is no slab
 * data block, VDO_READ_ONLY. */
int vdo_replay_into_slab_depot (struct slab_depot *depot,
                                physical_block_number_t pbn,
                                enum vdo_reference_operation operation,
                                const struct journal_point *recovery_point);

/* After replay: commit every tail block and summarize it (dirty); no
 * reference block is written. */
void vdo_drain_slab_depot_for_recovery (struct slab_depot *depot,
                                        struct vdo_completion *parent);

/* After that (and after the super block commit): scrub every slab whose
 * summary entry is dirty or has counts to load, then open all slabs for
 * allocation. */
void vdo_scrub_slab_depot (struct slab_depot *depot,
                           struct vdo_completion *parent);

/* --- Hooks for read-only rebuild (7.4 B7-B9) ---------------------------- */

/* Zone queue, after VDO_DEPOT_LOAD_FOR_REBUILD: apply an increment with
 * the rebuild rules (block-map increment 0 -> 254), no journal entry.
 * VDO_REF_COUNT_INVALID (logged; not read-only: the rebuild unmaps the
 * entry), VDO_OUT_OF_RANGE. */
int vdo_rebuild_reference_count (struct slab_depot *depot,
                                 physical_block_number_t pbn,
                                 enum vdo_reference_operation operation);

/* B9: write every reference block of every slab with any reference (all
 * commit points 0) and set each summary entry to offset 0, clean,
 * counts to load, hint from the free count. */
void vdo_drain_slab_depot_for_rebuild (struct slab_depot *depot,
                                       struct vdo_completion *parent);

#endif /* VDO_SLAB_DEPOT_H */
