/* nbdkit-vdo: the recovery journal at run time (vdo-journals.md 1, 6, 8).
 *
 * Every block-map change is journaled here, durably and in order, before
 * it takes effect.  A requester hands in one entry; the journal assigns
 * it the next slot of the active block (its recovery point), batches
 * entries into whole-block writes issued with PREFLUSH + FUA, and finishes
 * the request's completion once the entry and every entry before it are
 * durable.  Only then may the requester apply the change (slab journal
 * entries, block map page update).
 *
 * Sequence numbers: block s lives at index s mod size of the partition.
 * "tail" is the sequence number of the next block to open, so every block
 * ever written in this load is below it.  The two heads are the oldest
 * blocks whose entries may still be missing from the on-disk block map
 * (block_map_head) and from summarized slab journals (slab_journal_head);
 * they advance ("reaping") only over blocks nothing holds a lock on, and
 * only after a device flush, and are stamped into later block headers.
 *
 * Threads: unless marked "any thread", every function runs on the
 * journal's work queue.  Other zones reach it by enqueueing a completion
 * there.  I/O completions hop back to that queue by themselves.
 */
#ifndef VDO_RECOVERY_JOURNAL_H
#define VDO_RECOVERY_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "journal-lock.h"
#include "read-only.h"
#include "recovery-journal-format.h"
#include "slab-journal-format.h"
#include "super-block.h"
#include "vio.h"
#include "work-queue.h"

/* Blocks never used for entries, so a new write cannot overwrite a block
 * recovery could still take for the head: enough for dm-vdo's 2048
 * requests in flight, plus two (vdo-journals.md 0.1).  It is also the
 * number of block buffers the journal keeps in memory. */
#define VDO_RECOVERY_JOURNAL_RESERVED_BLOCKS                            \
  (2048 / VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK + 2)

/* Slab journal points keep 48 bits of sequence number, so the tail must
 * stay below this; reaching it puts the VDO in read-only mode. */
#define VDO_RECOVERY_JOURNAL_SEQUENCE_LIMIT ((sequence_number_t) 1 << 48)

/* Called on the journal thread when the journal needs locks released;
 * the callee must only enqueue work.  OLDEST_LOCKED is the oldest block
 * the head is stuck on: the callee should get every lock of its kind on
 * that block (and preferably on later ones) released.  Calls repeat while
 * the pressure lasts, each time a block opens or locks are released. */
typedef void (*vdo_journal_pressure_fn) (void *context,
                                         sequence_number_t oldest_locked);

struct recovery_journal_hooks {
  /* The slab journal head is more than 2/3 of the journal behind the
   * tail: commit the slab journal tail blocks holding physical-zone
   * locks on OLDEST_LOCKED. */
  vdo_journal_pressure_fn slab_journal_pressure;
  /* The block map head is more than the maximum age behind the tail:
   * write the dirty block map pages holding logical-zone locks on
   * OLDEST_LOCKED. */
  vdo_journal_pressure_fn block_map_pressure;
  void *context;
};

struct recovery_journal_config {
  nonce_t nonce;
  uint64_t complete_recoveries;         /* recovery count = this mod 256 */
  struct recovery_journal_state_7_0 state;      /* from the super block */
  physical_block_number_t origin;       /* first PBN of the partition */
  block_count_t size;                   /* blocks, a power of two */
  /* How far (in blocks) the block map head may lag the tail before
   * block_map_pressure is called; 0 for the default, half the usable
   * length.  At most half the usable length, so pressure starts well
   * before the journal is full. */
  block_count_t block_map_maximum_age;
  const struct vdo_block_device *device;
  struct vdo_work_queue *queue;         /* the journal thread */
  struct vdo_read_only_notifier *read_only;
  struct recovery_journal_hooks hooks;
};

/* One entry to journal.  The requester embeds this in its own request
 * object and owns it until the completion runs. */
struct vdo_journal_entry_request {
  /* Prepared by the requester (callback, queue, parent); the journal
   * finishes it with VDO_SUCCESS once the entry is durable, or with an
   * error: VDO_READ_ONLY after an I/O error or in read-only mode,
   * UDS_BAD_STATE while drained, UDS_INVALID_ARGUMENT for an entry that
   * cannot be encoded. */
  struct vdo_completion completion;
  struct recovery_journal_entry entry;  /* in */
  /* Out, set at assignment: the block and the entry index in it
   * (0..216).  Whenever its sequence number is non-zero, whatever the
   * result, the requester holds one VDO_ZONE_TYPE_JOURNAL lock on that
   * block and must release it (vdo_release_journal_lock) once the
   * entry's effects hold locks of their own, or on failure. */
  struct journal_point recovery_point;
  struct vdo_journal_entry_request *next;       /* the journal's */
};

/* Event counts for vdostats; never reset. */
struct recovery_journal_statistics {
  uint64_t disk_full;           /* times entries had to wait for space */
  uint64_t slab_journal_commits_requested;      /* slab pressure calls */
  uint64_t block_map_writes_requested;          /* block map pressure calls */
  uint64_t entries_started;     /* assigned to a block */
  uint64_t entries_written;     /* first included in an issued write */
  uint64_t entries_committed;   /* first included in a completed write */
  uint64_t blocks_started;      /* blocks opened */
  uint64_t blocks_written;      /* block writes issued (rewrites count) */
  uint64_t blocks_committed;    /* block writes completed */
  uint64_t heads_advanced;      /* reaps adopted after their flush */
};

struct recovery_journal;

/* Blocks of a journal of SIZE blocks that may hold entries at once. */
block_count_t vdo_recovery_journal_usable_length (block_count_t size);

/* Make a journal that starts writing at config->state.journal_start, with
 * both heads there too (a clean load: nothing is read).  Any thread;
 * nothing runs until entries arrive.  Returns VDO_SUCCESS,
 * VDO_BAD_CONFIGURATION, VDO_REGION_OUT_OF_BOUNDS or ENOMEM, logged. */
int vdo_make_recovery_journal (const struct recovery_journal_config *config,
                               struct recovery_journal **journal);

/* After a repair (vdo-journals.md 7.3 R10, 7.4 B10), before any entry
 * was added: start over at state->journal_start with both heads there,
 * the repaired counters, and the recovery count of COMPLETE_RECOVERIES,
 * so every block written before the repair reads as stale.  Any thread.
 * UDS_BAD_STATE (logged) once entries were added. */
int vdo_restart_recovery_journal
  (struct recovery_journal *journal, uint64_t complete_recoveries,
   const struct recovery_journal_state_7_0 *state);

/* Free a journal with no I/O in flight (drained, or never used) whose
 * queue has run everything enqueued for it, and whose locks nobody will
 * release any more (the lock counter goes with it).  Any thread.  Accepts
 * NULL. */
void vdo_free_recovery_journal (struct recovery_journal *journal);

/* The lock counter of the journal's blocks, for every zone.  Any thread. */
struct vdo_journal_lock_counter *
vdo_recovery_journal_lock_counter (struct recovery_journal *journal);

/* Journal REQUEST->entry (see struct vdo_journal_entry_request).  Entries
 * are assigned in arrival order, and completions finished in that order. */
void vdo_recovery_journal_add_entry (struct recovery_journal *journal,
                                     struct vdo_journal_entry_request *request);

/* Stop taking entries (later ones fail with UDS_BAD_STATE), write every
 * outstanding entry, and finish PARENT once every accepted entry's
 * completion has been finished and no I/O is in flight: VDO_SUCCESS, or
 * VDO_READ_ONLY in read-only mode.  A second drain fails PARENT with
 * UDS_BAD_STATE. */
void vdo_drain_recovery_journal (struct recovery_journal *journal,
                                 struct vdo_completion *parent);

/* Take entries again after a drain.  SAVED says the block map and slab
 * depot were saved too and the super block was written with
 * vdo_record_recovery_journal's journal_start: the partly filled block is
 * then left behind and both heads restart at the tail, as after a load.
 * Otherwise journaling continues where it stopped.  Returns VDO_SUCCESS,
 * VDO_READ_ONLY, or UDS_BAD_STATE if not drained. */
int vdo_resume_recovery_journal (struct recovery_journal *journal, bool saved);

/* The state to save in the super block.  Once drained (and not read-only)
 * journal_start is the tail, above every block written, so the next load
 * starts on a fresh block; otherwise it is the head,
 * min (block_map_head, slab_journal_head), the oldest block recovery
 * needs (the read-only and dirty saves). */
void vdo_record_recovery_journal (const struct recovery_journal *journal,
                                  struct recovery_journal_state_7_0 *state);

/* Make the journal notice read-only mode entered elsewhere and fail its
 * waiting requests.  Any thread. */
void vdo_recovery_journal_notify_read_only (struct recovery_journal *journal);

sequence_number_t
vdo_recovery_journal_tail (const struct recovery_journal *journal);
sequence_number_t
vdo_recovery_journal_block_map_head (const struct recovery_journal *journal);
sequence_number_t
vdo_recovery_journal_slab_journal_head (const struct recovery_journal *journal);
/* As of the last assignment (vdo-journals.md 1.7). */
block_count_t
vdo_recovery_journal_logical_blocks_used (const struct recovery_journal *journal);
block_count_t
vdo_recovery_journal_block_map_data_blocks (const struct recovery_journal *journal);

void vdo_get_recovery_journal_statistics
  (const struct recovery_journal *journal,
   struct recovery_journal_statistics *stats);

#endif /* VDO_RECOVERY_JOURNAL_H */
