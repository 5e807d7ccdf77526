/* nbdkit-vdo: a slab's journal at run time (vdo-journals.md 4, 6).
 *
 * Every reference count change is first an entry in the slab's journal:
 * entries are appended to an in-memory tail block in the order of their
 * (expanded, strictly increasing) recovery journal points; the block is
 * written with a plain WRITE when full, when the recovery journal needs
 * the lock it holds, or on drain, and becomes authoritative once the
 * slab summary, written with PREFLUSH after the block write completed,
 * points past it.  Blocks are never rewritten: the tail moves on.
 *
 * Locks (4.6): a block may be reaped (its slot reused) only once it is
 * committed and summarized and every reference block whose changes it
 * carries has been written; the head advances over such blocks after a
 * device flush.  While the journal holds blocking_threshold blocks, new
 * entries wait and dirty reference blocks are written; from the flushing
 * threshold on, a growing share of them is written as each block starts.
 * The first entry of each block takes a physical-zone lock on the
 * recovery journal block of that entry, released when the block is
 * summarized.
 *
 * Everything here runs on the slab's zone queue.
 */
#ifndef VDO_SLAB_JOURNAL_H
#define VDO_SLAB_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "ref-counts.h"
#include "slab-journal-format.h"
#include "slab-summary.h"
#include "super-block.h"
#include "vio.h"
#include "work-queue.h"

struct vdo_slab;
struct vdo_slab_journal_write;

/* A reference count change requested by the data path.  The caller owns
 * it and prepares its completion (callback and queue); it is finished
 * with the result once the change is journaled and applied. */
struct vdo_reference_update {
  struct vdo_completion completion;
  physical_block_number_t pbn;
  enum vdo_reference_operation operation;
  /* The recovery journal entry it comes from: block sequence number and
   * entry index within the block (not expanded). */
  struct journal_point recovery_point;

  /* Private. */
  struct vdo_slab *slab;
  vdo_action_fn caller_callback;
  struct vdo_work_queue *caller_queue;
  struct vdo_reference_update *next;
};

struct vdo_slab_journal_block_lock {
  uint32_t count;                       /* see 4.6; 0 lets it be reaped */
  sequence_number_t recovery_start;     /* RJ block locked; 0: none */
};

struct vdo_slab_journal {
  block_count_t size;
  block_count_t flushing_threshold;
  block_count_t flushing_deadline;
  block_count_t blocking_threshold;
  block_count_t scrubbing_threshold;

  sequence_number_t head;               /* oldest block still needed */
  sequence_number_t unreapable;         /* head after the reap in flight */
  sequence_number_t tail;               /* the block being assembled */
  sequence_number_t next_commit;        /* oldest block not yet written */
  sequence_number_t summarized;         /* summary update in flight covers */
  sequence_number_t last_summarized;    /* summary on disk covers */

  struct vdo_slab_journal_block_lock *locks;    /* by seq mod size */

  uint8_t *block;                       /* the tail block being assembled */
  struct slab_journal_block_header tail_header;

  /* Updates waiting to make entries, in arrival order. */
  struct vdo_reference_update *waiters_head, *waiters_tail;
  unsigned int waiter_count;

  /* Block writes in flight, in submission order. */
  struct vdo_slab_journal_write *writes;
  unsigned int writes_in_flight;

  /* Whether locks are counted (not while replaying for recovery). */
  bool use_locks;
  /* No entries until a partial block's summary update is done. */
  bool partial_write_in_progress;
  bool updating_summary;
  bool adding_entries;
  bool reaping;

  /* The RJ block the tail block locks (0: the tail is empty), and the
   * zone's list of journals so locked, oldest lock first. */
  sequence_number_t recovery_lock;
  struct vdo_slab_journal *dirty_prev, *dirty_next;
  bool on_dirty_list;

  struct vdo_vio flush_vio;
  struct vdo_summary_waiter summary_waiter;
};

int vdo_init_slab_journal (struct vdo_slab_journal *journal,
                           const struct slab_config *config, nonce_t nonce);
void vdo_uninit_slab_journal (struct vdo_slab_journal *journal);

/* A journal that was never written: head = tail = 1. */
void vdo_reset_slab_journal (struct vdo_slab_journal *journal);

/* Never had an entry (tail 1, empty tail block). */
static inline bool
vdo_slab_journal_is_blank (const struct vdo_slab_journal *journal)
{
  return journal->tail == 1 && journal->tail_header.entry_count == 0;
}

static inline block_count_t
vdo_slab_journal_length (const struct vdo_slab_journal *journal)
{
  return journal->tail - journal->head;
}

/* Load the tail as the slab summary names it (5.3): unless the entry is
 * blank, read the block before the recorded offset; a block of this
 * volume sets tail = its seq + 1, head = its head if the entry is dirty
 * (else the tail), and the last recovery point.  PARENT is finished on
 * the zone queue with the read's result. */
void vdo_load_slab_journal_tail (struct vdo_slab *slab,
                                 struct vdo_completion *parent);

/* Empty the journal logically (head = tail) after scrubbing or a clean
 * load; numbering continues. */
void vdo_reopen_slab_journal (struct vdo_slab_journal *journal);

/* Queue an update and make whatever entries can be made now. */
void vdo_slab_journal_enqueue (struct vdo_slab *slab,
                               struct vdo_reference_update *update);
void vdo_slab_journal_add_entries (struct vdo_slab *slab);

/* Write the tail block if it has entries. */
void vdo_commit_slab_journal_tail (struct vdo_slab *slab);

/* Take COUNT references on journal block SEQUENCE (while locks are
 * used). */
void vdo_acquire_slab_journal_lock (struct vdo_slab *slab,
                                    sequence_number_t sequence,
                                    uint32_t count);

/* Drop COUNT references on journal block SEQUENCE (0: none); a count
 * reaching zero may let the head advance. */
void vdo_release_slab_journal_lock (struct vdo_slab *slab,
                                    sequence_number_t sequence,
                                    uint32_t count);

/* Hand an update back to its caller with RESULT. */
void vdo_finish_reference_update (struct vdo_reference_update *update,
                                  int result);

/* Fail every waiting update with RESULT (read-only mode). */
void vdo_fail_slab_journal_waiters (struct vdo_slab *slab, int result);

/* Whether writes, a summary update or a reap are in flight. */
static inline bool
vdo_slab_journal_is_busy (const struct vdo_slab_journal *journal)
{
  return journal->writes_in_flight > 0 || journal->updating_summary
         || journal->reaping;
}

/* Recovery replay (vdo-journals.md 7.3 R9), for the recovery driver, on
 * a slab loaded with VDO_DEPOT_LOAD_FOR_RECOVERY: append the entry for
 * one half of recovery journal entry RECOVERY_POINT (unexpanded) unless
 * the journal already holds a point at or after its expanded point.  No
 * locks are taken and no counter changes; a full tail block is written
 * at once (the tail moves on, so there is never anything to wait for).
 * Returns VDO_SUCCESS, or VDO_READ_ONLY. */
int vdo_replay_into_slab_journal (struct vdo_slab *slab, uint32_t sbn,
                                  enum vdo_reference_operation operation,
                                  const struct journal_point *recovery_point);

#endif /* VDO_SLAB_JOURNAL_H */
