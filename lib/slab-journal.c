/* nbdkit-vdo: slab journal tail blocks, commits, locks and reaping. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "journal-lock.h"
#include "logger.h"
#include "physical-zone.h"
#include "slab-journal.h"
#include "slab.h"
#include "status.h"

/* One tail block write in flight. */
struct vdo_slab_journal_write {
  struct vdo_vio vio;
  struct vdo_slab *slab;
  sequence_number_t sequence;
  uint8_t *buffer;
  struct vdo_slab_journal_write *next;
};

/* One tail block read at load. */
struct tail_load {
  struct vdo_vio vio;
  struct vdo_slab *slab;
  struct vdo_completion *parent;
  uint8_t *buffer;
};

static void summary_updated (struct vdo_summary_waiter *waiter, int result);

static struct vdo_slab_journal_block_lock *
lock_of (struct vdo_slab_journal *journal, sequence_number_t sequence)
{
  return &journal->locks[sequence % journal->size];
}

static void
initialize_tail_block (struct vdo_slab_journal *journal)
{
  struct slab_journal_block_header *header = &journal->tail_header;

  /* The recovery point carries over: points increase across blocks. */
  header->sequence_number = journal->tail;
  header->entry_count = 0;
  header->has_block_map_increments = false;
  memset (journal->block, 0, VDO_BLOCK_SIZE);
}

static void
initialize_journal_state (struct vdo_slab_journal *journal)
{
  journal->unreapable = journal->head;
  journal->next_commit = journal->tail;
  journal->summarized = journal->last_summarized = journal->tail;
  journal->partial_write_in_progress = false;
  initialize_tail_block (journal);
}

int
vdo_init_slab_journal (struct vdo_slab_journal *journal,
                       const struct slab_config *config, nonce_t nonce)
{
  memset (journal, 0, sizeof *journal);
  journal->size = config->slab_journal_blocks;
  journal->flushing_threshold = config->slab_journal_flushing_threshold;
  journal->blocking_threshold = config->slab_journal_blocking_threshold;
  journal->scrubbing_threshold = config->slab_journal_scrubbing_threshold;
  /* Leave a few blocks between writing everything and blocking. */
  journal->flushing_deadline = journal->flushing_threshold;
  if (journal->blocking_threshold > journal->flushing_threshold + 5)
    journal->flushing_deadline = journal->blocking_threshold - 5;

  journal->locks = calloc (journal->size, sizeof *journal->locks);
  journal->block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (journal->locks == NULL || journal->block == NULL) {
    vdo_uninit_slab_journal (journal);
    vdo_log_error ("cannot allocate a slab journal");
    return ENOMEM;
  }
  journal->tail_header.nonce = nonce;
  journal->tail_header.metadata_type = VDO_METADATA_SLAB_JOURNAL;
  journal->summary_waiter.callback = summary_updated;
  journal->use_locks = true;
  vdo_reset_slab_journal (journal);
  return VDO_SUCCESS;
}

void
vdo_uninit_slab_journal (struct vdo_slab_journal *journal)
{
  free (journal->locks);
  vdo_io_free_buffer (journal->block);
  journal->locks = NULL;
  journal->block = NULL;
}

void
vdo_reset_slab_journal (struct vdo_slab_journal *journal)
{
  journal->head = journal->tail = 1;
  journal->tail_header.recovery_point = (struct journal_point) { 0, 0 };
  memset (journal->locks, 0, journal->size * sizeof *journal->locks);
  initialize_journal_state (journal);
}

void
vdo_reopen_slab_journal (struct vdo_slab_journal *journal)
{
  journal->head = journal->tail;
  memset (journal->locks, 0, journal->size * sizeof *journal->locks);
  initialize_journal_state (journal);
}

/* --- Loading the tail (5.3) --------------------------------------------- */

static void
tail_block_read (struct vdo_completion *completion)
{
  struct tail_load *load = completion->parent;
  struct vdo_slab *slab = load->slab;
  struct vdo_slab_journal *journal = &slab->journal;
  struct vdo_completion *parent = load->parent;
  int result = completion->result;

  if (result != VDO_SUCCESS) {
    vdo_log_error ("cannot read the slab journal tail of slab %u: %s",
                   slab->number, vdo_status_to_string (result));
  }
  else {
    const struct slab_summary_entry *entry =
      vdo_get_slab_summary_entry (vdo_slab_summary_of (slab), slab->number);
    struct slab_journal_block_header header;

    vdo_decode_slab_journal_block_header (load->buffer, &header);
    /* Anything else means the journal was never written there: it stays
     * blank, as the kernel leaves it. */
    if (vdo_is_slab_journal_block_of_volume (&header,
                                             journal->tail_header.nonce)) {
      journal->tail = header.sequence_number + 1;
      /* A clean journal holds nothing the counts lack. */
      journal->head = entry->is_dirty ? header.head : journal->tail;
      journal->tail_header.recovery_point = header.recovery_point;
      initialize_journal_state (journal);
    }
  }
  vdo_io_free_buffer (load->buffer);
  free (load);
  vdo_finish_completion (parent, result);
}

void
vdo_load_slab_journal_tail (struct vdo_slab *slab,
                            struct vdo_completion *parent)
{
  struct vdo_slab_journal *journal = &slab->journal;
  const struct slab_summary_entry *entry =
    vdo_get_slab_summary_entry (vdo_slab_summary_of (slab), slab->number);
  struct tail_load *load;

  vdo_reset_slab_journal (journal);
  if (vdo_slab_summary_entry_is_blank (entry)) {
    vdo_finish_completion (parent, VDO_SUCCESS);
    return;
  }
  load = calloc (1, sizeof *load);
  if (load != NULL)
    load->buffer = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (load == NULL || load->buffer == NULL) {
    free (load);
    vdo_log_error ("cannot allocate a slab journal tail read");
    vdo_finish_completion (parent, ENOMEM);
    return;
  }
  load->slab = slab;
  load->parent = parent;
  vdo_submit_vio (&load->vio, vdo_slab_device (slab), VDO_IO_READ,
                  slab->journal_origin
                  + vdo_slab_summary_last_block_offset (entry, journal->size),
                  1, load->buffer, false, false, tail_block_read,
                  vdo_slab_queue (slab), load);
}

/* --- Locks and reaping (4.6) -------------------------------------------- */

static void reap (struct vdo_slab *slab);

void
vdo_acquire_slab_journal_lock (struct vdo_slab *slab,
                               sequence_number_t sequence, uint32_t count)
{
  struct vdo_slab_journal *journal = &slab->journal;

  if (sequence != 0 && journal->use_locks)
    lock_of (journal, sequence)->count += count;
}

void
vdo_release_slab_journal_lock (struct vdo_slab *slab,
                               sequence_number_t sequence, uint32_t count)
{
  struct vdo_slab_journal *journal = &slab->journal;
  struct vdo_slab_journal_block_lock *lock;

  if (sequence == 0 || !journal->use_locks)
    return;
  lock = lock_of (journal, sequence);
  if (lock->count < count) {
    vdo_log_error ("slab %u journal block %" PRIu64 ": releasing %" PRIu32
                   " locks with only %" PRIu32 " held", slab->number,
                   sequence, count, lock->count);
    vdo_slab_enter_read_only (slab, UDS_BAD_STATE);
    return;
  }
  lock->count -= count;
  if (lock->count == 0)
    reap (slab);
}

static void
reap_flushed (struct vdo_completion *completion)
{
  struct vdo_slab *slab = completion->parent;
  struct vdo_slab_journal *journal = &slab->journal;

  journal->reaping = false;
  if (completion->result != VDO_SUCCESS) {
    vdo_log_error ("cannot flush before reaping the journal of slab %u: %s",
                   slab->number, vdo_status_to_string (completion->result));
    vdo_slab_enter_read_only (slab, completion->result);
  }
  else {
    journal->head = journal->unreapable;
    reap (slab);
  }
  vdo_check_slab_progress (slab);
}

static void
reap (struct vdo_slab *slab)
{
  struct vdo_slab_journal *journal = &slab->journal;
  bool advanced = false;

  if (journal->reaping || slab->status != VDO_SLAB_REBUILT
      || vdo_slab_is_read_only (slab))
    return;
  /* Stop at the first block still referenced, or at the tail. */
  while (journal->unreapable < journal->tail
         && lock_of (journal, journal->unreapable)->count == 0) {
    journal->unreapable++;
    advanced = true;
  }
  if (!advanced)
    return;
  /* The reference block writes that released these blocks must be
   * durable before their slots can be overwritten. */
  journal->reaping = true;
  vdo_submit_flush (&journal->flush_vio, vdo_slab_device (slab), reap_flushed,
                    vdo_slab_queue (slab), slab);
}

/* --- Committing the tail (4.5) ------------------------------------------ */

static bool
tail_block_is_full (const struct vdo_slab_journal *journal)
{
  const struct slab_journal_block_header *header = &journal->tail_header;

  return header->entry_count
         == vdo_slab_journal_entries_per_block
              (header->has_block_map_increments);
}

static void
update_tail_block_location (struct vdo_slab *slab)
{
  struct vdo_slab_journal *journal = &slab->journal;
  struct vdo_slab_summary_zone *summary = vdo_slab_summary_of (slab);
  const struct slab_summary_entry *entry;
  block_count_t free_blocks;

  if (journal->updating_summary || vdo_slab_is_read_only (slab)
      || journal->last_summarized >= journal->next_commit)
    return;
  entry = vdo_get_slab_summary_entry (summary, slab->number);
  /* Until a slab's counts are rebuilt its free count is the hint's. */
  free_blocks = slab->status == VDO_SLAB_REBUILT
                ? slab->counts.free_blocks
                : vdo_slab_summary_free_from_hint (summary->summary,
                                                   entry->fullness_hint);
  journal->summarized = journal->next_commit;
  journal->updating_summary = true;
  /* Reaping past block 1 means every reference block has been written
   * once, so from then on they must be loaded. */
  vdo_update_slab_summary_entry (summary, &journal->summary_waiter,
                                 slab->number,
                                 journal->summarized % journal->size,
                                 journal->head > 1, true, free_blocks);
}

static void
summary_updated (struct vdo_summary_waiter *waiter, int result)
{
  struct vdo_slab_journal *journal =
    (struct vdo_slab_journal *) ((char *) waiter
                                 - __builtin_offsetof (struct vdo_slab_journal,
                                                       summary_waiter));
  struct vdo_slab *slab = vdo_slab_of_journal (journal);
  struct vdo_journal_lock_counter *recovery_locks = slab->zone->journal_locks;
  sequence_number_t sequence;

  journal->updating_summary = false;
  if (result != VDO_SUCCESS) {
    vdo_slab_enter_read_only (slab, result);
    vdo_check_slab_progress (slab);
    return;
  }
  if (journal->partial_write_in_progress
      && journal->summarized == journal->tail)
    journal->partial_write_in_progress = false;

  /* These blocks are now durable and reachable: release what they held
   * on the recovery journal and their own commit lock. */
  for (sequence = journal->last_summarized; sequence < journal->summarized;
       sequence++) {
    struct vdo_slab_journal_block_lock *lock = lock_of (journal, sequence);

    if (lock->recovery_start != 0) {
      if (recovery_locks != NULL
          && vdo_release_journal_lock (recovery_locks, lock->recovery_start,
                                       VDO_ZONE_TYPE_PHYSICAL, 1)
             != VDO_SUCCESS)
        vdo_slab_enter_read_only (slab, UDS_BAD_STATE);
      lock->recovery_start = 0;
    }
    vdo_release_slab_journal_lock (slab, sequence, 1);
  }
  journal->last_summarized = journal->summarized;
  reap (slab);
  update_tail_block_location (slab);
  vdo_check_slab_progress (slab);
}

static void
tail_block_written (struct vdo_completion *completion)
{
  struct vdo_slab_journal_write *write = completion->parent;
  struct vdo_slab *slab = write->slab;
  struct vdo_slab_journal *journal = &slab->journal;
  struct vdo_slab_journal_write **link;
  int result = completion->result;

  for (link = &journal->writes; *link != write; link = &(*link)->next)
    ;
  *link = write->next;
  journal->writes_in_flight--;
  if (result != VDO_SUCCESS) {
    vdo_log_error ("cannot write slab journal block %" PRIu64 " of slab %u:"
                   " %s", write->sequence, slab->number,
                   vdo_status_to_string (result));
    vdo_slab_enter_read_only (slab, result);
  }
  vdo_io_free_buffer (write->buffer);
  free (write);
  if (result == VDO_SUCCESS) {
    vdo_count_zone_event (&slab->zone->journal_blocks_written);
    /* Writes may finish out of order; the summary may only point past
     * the oldest one still in flight. */
    journal->next_commit = journal->writes != NULL ? journal->writes->sequence
                                                   : journal->tail;
    update_tail_block_location (slab);
  }
  vdo_check_slab_progress (slab);
}

void
vdo_commit_slab_journal_tail (struct vdo_slab *slab)
{
  struct vdo_slab_journal *journal = &slab->journal;
  struct slab_journal_block_header *header = &journal->tail_header;
  struct vdo_slab_journal_write *write, **link;

  if (header->entry_count == 0 || vdo_slab_is_read_only (slab))
    return;
  write = calloc (1, sizeof *write);
  if (write != NULL)
    write->buffer = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (write == NULL || write->buffer == NULL) {
    free (write);
    vdo_log_error ("cannot allocate a slab journal block write");
    vdo_slab_enter_read_only (slab, ENOMEM);
    return;
  }
  vdo_mark_slab_journal_clean (slab->zone, journal);

  header->head = journal->head;
  vdo_encode_slab_journal_block_header (journal->block, header);
  memcpy (write->buffer, journal->block, VDO_BLOCK_SIZE);
  write->slab = slab;
  write->sequence = header->sequence_number;
  for (link = &journal->writes; *link != NULL; link = &(*link)->next)
    ;
  *link = write;
  journal->writes_in_flight++;
  /* Entries made after a partial block must wait until the summary
   * covers it. */
  journal->partial_write_in_progress = !tail_block_is_full (journal);

  /* Plain write: the block counts only once the summary, written with
   * PREFLUSH after this completes, points past it. */
  vdo_submit_vio (&write->vio, vdo_slab_device (slab), VDO_IO_WRITE,
                  slab->journal_origin
                  + vdo_slab_journal_block_offset (write->sequence,
                                                   journal->size),
                  1, write->buffer, false, false, tail_block_written,
                  vdo_slab_queue (slab), write);
  journal->tail++;
  initialize_tail_block (journal);
}

/* --- Making entries ----------------------------------------------------- */

void
vdo_finish_reference_update (struct vdo_reference_update *update, int result)
{
  update->completion.callback = update->caller_callback;
  update->completion.queue = update->caller_queue;
  vdo_finish_completion (&update->completion, result);
}

void
vdo_slab_journal_enqueue (struct vdo_slab *slab,
                          struct vdo_reference_update *update)
{
  struct vdo_slab_journal *journal = &slab->journal;

  update->next = NULL;
  if (journal->waiters_tail != NULL)
    journal->waiters_tail->next = update;
  else
    journal->waiters_head = update;
  journal->waiters_tail = update;
  journal->waiter_count++;
}

static struct vdo_reference_update *
dequeue_waiter (struct vdo_slab_journal *journal)
{
  struct vdo_reference_update *update = journal->waiters_head;

  journal->waiters_head = update->next;
  if (journal->waiters_head == NULL)
    journal->waiters_tail = NULL;
  update->next = NULL;
  journal->waiter_count--;
  return update;
}

void
vdo_fail_slab_journal_waiters (struct vdo_slab *slab, int result)
{
  struct vdo_slab_journal *journal = &slab->journal;

  while (journal->waiters_head != NULL)
    vdo_finish_reference_update (dequeue_waiter (journal), result);
}

/* From the flushing threshold on, write a share of the dirty reference
 * blocks that grows toward all of them at the deadline. */
static void
reclaim_journal_space (struct vdo_slab *slab)
{
  struct vdo_slab_journal *journal = &slab->journal;
  block_count_t length = vdo_slab_journal_length (journal);
  unsigned int count = slab->counts.dirty_count;

  if (length < journal->flushing_threshold || count == 0)
    return;
  if (length < journal->flushing_deadline) {
    count /= journal->flushing_deadline - length + 1;
    if (count == 0)
      count = 1;
  }
  vdo_save_dirty_reference_blocks (slab, count);
}

static void
encode_entry (struct vdo_slab_journal *journal, uint32_t sbn,
              enum vdo_reference_operation operation)
{
  struct slab_journal_block_header *header = &journal->tail_header;
  unsigned int index = header->entry_count;

  if (operation == VDO_BLOCK_MAP_INCREMENT) {
    uint8_t *types = journal->block + VDO_SLAB_JOURNAL_ENTRY_TYPES_OFFSET;

    if (!header->has_block_map_increments) {
      memset (types, 0, VDO_SLAB_JOURNAL_ENTRY_TYPES_SIZE);
      header->has_block_map_increments = true;
    }
    types[index / 8] |= 1 << (index % 8);
  }
  vdo_pack_slab_journal_entry (journal->block + VDO_SLAB_JOURNAL_HEADER_SIZE
                               + VDO_SLAB_JOURNAL_ENTRY_SIZE * index,
                               sbn, operation != VDO_DATA_DECREMENT);
  header->entry_count++;
}

/* Room for this entry in the tail block: block-map entries need the
 * smaller, bitmap-carrying capacity. */
static bool
entry_fits (const struct vdo_slab_journal *journal,
            enum vdo_reference_operation operation)
{
  const struct slab_journal_block_header *header = &journal->tail_header;

  if (operation == VDO_BLOCK_MAP_INCREMENT || header->has_block_map_increments)
    return header->entry_count < VDO_SLAB_JOURNAL_FULL_ENTRIES;
  return header->entry_count < VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK;
}

static int
add_entry (struct vdo_slab *slab, struct vdo_reference_update *update)
{
  struct vdo_slab_journal *journal = &slab->journal;
  struct slab_journal_block_header *header = &journal->tail_header;
  bool increment = update->operation != VDO_DATA_DECREMENT;
  struct journal_point expanded =
    vdo_expand_journal_point (&update->recovery_point, increment);
  struct journal_point sj_point = {
    .sequence_number = header->sequence_number,
    .entry_count = header->entry_count,
  };
  uint32_t sbn = update->pbn - slab->origin;
  int result;

  /* Replay relies on points increasing within each slab journal. */
  if (!vdo_before_journal_point (&header->recovery_point, &expanded)) {
    vdo_log_error ("slab %u: recovery journal point %" PRIu64 ".%u is not"
                   " after the journal's last point %" PRIu64 ".%u",
                   slab->number, expanded.sequence_number,
                   expanded.entry_count,
                   header->recovery_point.sequence_number,
                   header->recovery_point.entry_count);
    vdo_slab_enter_read_only (slab, UDS_BAD_STATE);
    return UDS_BAD_STATE;
  }

  if (header->entry_count == 0 && journal->use_locks) {
    sequence_number_t recovery_block = update->recovery_point.sequence_number;

    /* The block pins the RJ block of its first entry until it is
     * committed and summarized. */
    lock_of (journal, header->sequence_number)->recovery_start = recovery_block;
    if (slab->zone->journal_locks != NULL)
      vdo_acquire_journal_lock (slab->zone->journal_locks, recovery_block,
                                VDO_ZONE_TYPE_PHYSICAL, 1);
    vdo_mark_slab_journal_dirty (slab->zone, journal, recovery_block);
    reclaim_journal_space (slab);
  }

  encode_entry (journal, sbn, update->operation);
  header->recovery_point = expanded;

  result = VDO_SUCCESS;
  if (slab->status == VDO_SLAB_REBUILT) {
    result = vdo_adjust_reference_count (slab, sbn, update->operation,
                                         &sj_point, true);
    if (result != VDO_SUCCESS)
      vdo_slab_enter_read_only (slab, result);
  }
  if (tail_block_is_full (journal))
    vdo_commit_slab_journal_tail (slab);
  return result;
}

void
vdo_slab_journal_add_entries (struct vdo_slab *slab)
{
  struct vdo_slab_journal *journal = &slab->journal;

  /* Finishing an update never calls back in, but a commit or a write
   * launched from here might in a future change: stay safe. */
  if (journal->adding_entries)
    return;
  journal->adding_entries = true;
  while (journal->waiters_head != NULL) {
    struct slab_journal_block_header *header = &journal->tail_header;
    struct vdo_reference_update *update = journal->waiters_head;

    if (vdo_slab_is_read_only (slab)) {
      vdo_fail_slab_journal_waiters (slab, VDO_READ_ONLY);
      break;
    }
    if (journal->partial_write_in_progress)
      break;
    if (!entry_fits (journal, update->operation)) {
      vdo_commit_slab_journal_tail (slab);
      continue;
    }
    /* Over the blocking threshold: write reference blocks so the head
     * can move; their completions call back here. */
    if (vdo_slab_journal_length (journal) >= journal->blocking_threshold) {
      vdo_count_zone_event (&slab->zone->journal_blocked);
      vdo_save_dirty_reference_blocks (slab, UINT_MAX);
      break;
    }

    if (header->entry_count == 0 && journal->use_locks) {
      struct vdo_slab_journal_block_lock *lock =
        lock_of (journal, header->sequence_number);

      /* Its slot still holds an unreaped block: the on-disk journal is
       * full (only possible if blocking >= size). */
      if (lock->count > 0) {
        vdo_save_dirty_reference_blocks (slab, UINT_MAX);
        break;
      }
      /* Held until the block is committed and summarized. */
      lock->count = 1;
      /* The slab's first entry ever: reference blocks were never
       * written, so each must be written once before block 1 can go. */
      if (header->sequence_number == 1)
        lock->count += vdo_dirty_all_reference_blocks (slab, 1);
    }
    vdo_finish_reference_update (dequeue_waiter (journal),
                                 add_entry (slab, update));
  }
  journal->adding_entries = false;
}

/* --- Recovery replay ---------------------------------------------------- */

int
vdo_replay_into_slab_journal (struct vdo_slab *slab, uint32_t sbn,
                              enum vdo_reference_operation operation,
                              const struct journal_point *recovery_point)
{
  struct vdo_slab_journal *journal = &slab->journal;
  struct slab_journal_block_header *header = &journal->tail_header;
  struct journal_point expanded =
    vdo_expand_journal_point (recovery_point,
                              operation != VDO_DATA_DECREMENT);

  if (vdo_slab_is_read_only (slab))
    return VDO_READ_ONLY;
  /* Already in the journal before the crash. */
  if (!vdo_before_journal_point (&header->recovery_point, &expanded))
    return VDO_SUCCESS;
  if (!entry_fits (journal, operation))
    vdo_commit_slab_journal_tail (slab);
  /* The head must have been reaped before the crash: the blocking
   * threshold keeps a live journal shorter than its region. */
  if (vdo_slab_journal_length (journal) >= journal->size) {
    journal->head++;
    journal->unreapable++;
  }
  encode_entry (journal, sbn, operation);
  header->recovery_point = expanded;
  if (tail_block_is_full (journal))
    vdo_commit_slab_journal_tail (slab);
  return vdo_slab_is_read_only (slab) ? VDO_READ_ONLY : VDO_SUCCESS;
}
