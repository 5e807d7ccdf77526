/* nbdkit-vdo: the recovery journal at run time. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "recovery-journal.h"
#include "status.h"

#define ENTRIES_PER_BLOCK VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK
#define ENTRIES_PER_SECTOR VDO_RECOVERY_JOURNAL_ENTRIES_PER_SECTOR

/* A FIFO of requests, linked through their next fields. */
struct request_queue {
  struct vdo_journal_entry_request *first;
  struct vdo_journal_entry_request *last;
};

/* One in-memory journal block: the buffer written for sequence number
 * sequence_number, and the requests riding on it. */
struct journal_block {
  struct recovery_journal *journal;
  uint8_t *data;                        /* what each write sends */
  struct vdo_vio vio;
  struct recovery_block_header header;  /* counters as of the open */
  sequence_number_t sequence_number;
  unsigned int entry_count;             /* assigned so far */
  unsigned int encoded_count;           /* of those, placed in data */
  unsigned int uncommitted_count;       /* assigned, not in a completed write */
  unsigned int entries_in_commit;       /* newly placed by the write in flight */
  bool committing;                      /* a write is in flight */
  bool write_scheduled;                 /* on the journal's write list */
  /* Assigned but not yet in data: they go into the next write. */
  struct request_queue assigned;
  /* In data: released once a write holding them has completed and every
   * earlier block is done. */
  struct request_queue encoded;
  struct journal_block *next;           /* active or free list */
  struct journal_block *next_write;     /* write list */
};

enum journal_state {
  JOURNAL_OPERATING,
  JOURNAL_DRAINING,
  JOURNAL_DRAINED,
};

/* Why a block could not be opened. */
enum open_result {
  BLOCK_OPENED,
  NO_BUFFER,                            /* wait for a write to finish */
  NO_SPACE,                             /* wait for reaping */
  JOURNAL_READ_ONLY,
};

struct recovery_journal {
  /* Fixed at creation. */
  nonce_t nonce;
  uint8_t recovery_count;
  physical_block_number_t origin;
  block_count_t size;
  block_count_t usable_length;
  block_count_t slab_journal_threshold;
  block_count_t block_map_maximum_age;
  const struct vdo_block_device *device;
  struct vdo_work_queue *queue;
  struct vdo_read_only_notifier *read_only;
  struct recovery_journal_hooks hooks;
  struct vdo_journal_lock_counter *locks;

  /* Positions (vdo-journals.md 1.2, 6.2). */
  sequence_number_t tail;               /* next block to open */
  sequence_number_t block_map_head;
  sequence_number_t slab_journal_head;
  /* Where the heads will be once the reaping flush completes. */
  sequence_number_t block_map_reap_head;
  sequence_number_t slab_journal_reap_head;
  sequence_number_t last_write_acknowledged;
  block_count_t logical_blocks_used;
  block_count_t block_map_data_blocks;

  /* Requests not yet assigned, in arrival order. */
  struct request_queue waiting;
  bool waiting_for_space;
  /* Blocks with entries not yet released or not yet full, oldest first;
   * the last one is the active block while it takes entries. */
  struct journal_block *first_active;
  struct journal_block *last_active;
  struct journal_block *active_block;
  struct journal_block *free_blocks;
  /* Full blocks with entries to write once no write is in flight. */
  struct journal_block *first_write;
  struct journal_block *last_write;
  unsigned int writes_in_flight;

  bool reaping;                         /* the reaping flush is in flight */
  struct vdo_vio flush_vio;
  /* One wakeup at a time, however many threads release locks. */
  atomic_bool wakeup_pending;
  struct vdo_completion wakeup;

  enum journal_state state;
  struct vdo_completion *drain_parent;
  bool overflow_logged;

  struct recovery_journal_statistics stats;
  struct journal_block blocks[VDO_RECOVERY_JOURNAL_RESERVED_BLOCKS];
};

static void assign_entries (struct recovery_journal *journal);
static void reap (struct recovery_journal *journal);

/* --- Small helpers ------------------------------------------------------ */

static void
push_request (struct request_queue *queue,
              struct vdo_journal_entry_request *request)
{
  request->next = NULL;
  if (queue->last != NULL)
    queue->last->next = request;
  else
    queue->first = request;
  queue->last = request;
}

static struct vdo_journal_entry_request *
pop_request (struct request_queue *queue)
{
  struct vdo_journal_entry_request *request = queue->first;

  if (request != NULL) {
    queue->first = request->next;
    if (queue->first == NULL)
      queue->last = NULL;
    request->next = NULL;
  }
  return request;
}

static bool
queue_is_empty (const struct request_queue *queue)
{
  return queue->first == NULL;
}

/* Finish every request of QUEUE, in order. */
static void
finish_requests (struct request_queue *queue, int result)
{
  struct vdo_journal_entry_request *request;

  while ((request = pop_request (queue)) != NULL)
    vdo_finish_completion (&request->completion, result);
}

static bool
is_read_only (const struct recovery_journal *journal)
{
  return vdo_is_read_only (journal->read_only);
}

static sequence_number_t
journal_head (const struct recovery_journal *journal)
{
  return journal->block_map_head < journal->slab_journal_head
    ? journal->block_map_head : journal->slab_journal_head;
}

static bool
is_block_full (const struct journal_block *block)
{
  return block->entry_count == ENTRIES_PER_BLOCK;
}

/* Entries not yet in a completed write, or room for more: later blocks
 * may not be released past such a block. */
static bool
is_block_open (const struct journal_block *block)
{
  return block->uncommitted_count > 0 || !is_block_full (block);
}

block_count_t
vdo_recovery_journal_usable_length (block_count_t size)
{
  block_count_t reserved = size / 4;

  if (reserved > VDO_RECOVERY_JOURNAL_RESERVED_BLOCKS)
    reserved = VDO_RECOVERY_JOURNAL_RESERVED_BLOCKS;
  return size - reserved;
}

/* An entry the on-disk format can hold and recovery will accept
 * (vdo-journals.md 1.7), so a caller's mistake cannot corrupt the
 * journal. */
static bool
is_valid_entry (const struct recovery_journal_entry *entry)
{
  if (entry->operation > VDO_JOURNAL_BLOCK_MAP_REMAPPING
      || entry->slot >= VDO_BLOCK_MAP_ENTRIES_PER_PAGE
      || entry->slot_pbn >= VDO_MAX_PHYSICAL_BLOCKS
      || entry->mapping.pbn >= VDO_MAX_PHYSICAL_BLOCKS
      || entry->unmapping.pbn >= VDO_MAX_PHYSICAL_BLOCKS
      || entry->mapping.state > VDO_MAPPING_STATE_COMPRESSED_MAX
      || entry->unmapping.state > VDO_MAPPING_STATE_COMPRESSED_MAX
      || !vdo_is_valid_location (entry->mapping)
      || !vdo_is_valid_location (entry->unmapping))
    return false;
  if (entry->operation == VDO_JOURNAL_BLOCK_MAP_REMAPPING)
    return entry->mapping.pbn != VDO_ZERO_BLOCK
      && entry->mapping.state == VDO_MAPPING_STATE_UNCOMPRESSED
      && entry->unmapping.pbn == VDO_ZERO_BLOCK
      && entry->unmapping.state == VDO_MAPPING_STATE_UNMAPPED;
  return true;
}

/* --- Read-only mode and draining ---------------------------------------- */

static void
enter_read_only (struct recovery_journal *journal, int error)
{
  vdo_enter_read_only_mode (journal->read_only, error);
}

static void
release_own_lock (struct recovery_journal *journal,
                  sequence_number_t sequence_number)
{
  int result = vdo_release_journal_lock (journal->locks, sequence_number,
                                         VDO_ZONE_TYPE_JOURNAL, 1);

  if (result != VDO_SUCCESS)
    enter_read_only (journal, result);
}

static void
remove_first_active (struct recovery_journal *journal)
{
  struct journal_block *block = journal->first_active;

  journal->first_active = block->next;
  if (journal->first_active == NULL)
    journal->last_active = NULL;
  if (block == journal->active_block)
    journal->active_block = NULL;
  block->next = journal->free_blocks;
  journal->free_blocks = block;
}

/* Release waiters in journal order: each block's written entries once its
 * write is done, stopping at the first block that is still being written
 * or still open (vdo-journals.md 1.9 item 5).  In read-only mode every
 * entry of a block that is not being written fails instead. */
static void
notify_commit_waiters (struct recovery_journal *journal)
{
  bool read_only = is_read_only (journal);
  struct journal_block *block;

  for (block = journal->first_active; block != NULL; block = block->next) {
    if (block->committing)
      return;
    finish_requests (&block->encoded,
                     read_only ? VDO_READ_ONLY : VDO_SUCCESS);
    if (read_only) {
      finish_requests (&block->assigned, VDO_READ_ONLY);
      block->uncommitted_count = 0;
    }
    else if (is_block_open (block))
      return;
  }
}

/* Give back the buffers of blocks that are full and fully committed (or
 * abandoned in read-only mode), dropping the lock each block holds on
 * itself until then (vdo-journals.md 6.1). */
static void
recycle_blocks (struct recovery_journal *journal)
{
  bool read_only = is_read_only (journal);
  struct journal_block *block;

  while ((block = journal->first_active) != NULL) {
    if (block->committing || (!read_only && is_block_open (block)))
      return;
    remove_first_active (journal);
    release_own_lock (journal, block->sequence_number);
  }
}

/* After read-only mode: nothing more is written; every waiter fails, in
 * order, as soon as no earlier write is still in flight. */
static void
fail_all_requests (struct recovery_journal *journal)
{
  struct journal_block *block;

  while ((block = journal->first_write) != NULL) {
    journal->first_write = block->next_write;
    block->write_scheduled = false;
  }
  journal->last_write = NULL;
  notify_commit_waiters (journal);
  recycle_blocks (journal);
  if (journal->first_active == NULL)
    finish_requests (&journal->waiting, VDO_READ_ONLY);
}

static bool
has_outstanding_work (const struct recovery_journal *journal)
{
  const struct journal_block *block;

  if (!queue_is_empty (&journal->waiting) || journal->writes_in_flight > 0
      || journal->reaping)
    return true;
  for (block = journal->first_active; block != NULL; block = block->next)
    if (block->committing || !queue_is_empty (&block->assigned)
        || !queue_is_empty (&block->encoded))
      return true;
  return false;
}

static void
check_for_drain_complete (struct recovery_journal *journal)
{
  struct vdo_completion *parent;

  if (journal->state != JOURNAL_DRAINING || has_outstanding_work (journal))
    return;
  journal->state = JOURNAL_DRAINED;
  parent = journal->drain_parent;
  journal->drain_parent = NULL;
  vdo_finish_completion (parent, is_read_only (journal)
                         ? VDO_READ_ONLY : VDO_SUCCESS);
}

/* --- Pressure ------------------------------------------------------------ */

/* Ask the other zones to release the locks holding a head back
 * (vdo-journals.md 6.2).  Called when a block opens and after each reap
 * attempt, both of which need progress elsewhere to recur. */
static void
check_pressure (struct recovery_journal *journal)
{
  const struct recovery_journal_hooks *hooks = &journal->hooks;

  if (journal->state == JOURNAL_DRAINED || is_read_only (journal))
    return;
  if (hooks->slab_journal_pressure != NULL
      && journal->tail - journal->slab_journal_reap_head
         > journal->slab_journal_threshold) {
    journal->stats.slab_journal_commits_requested++;
    hooks->slab_journal_pressure (hooks->context,
                                  journal->slab_journal_reap_head);
  }
  if (hooks->block_map_pressure != NULL
      && journal->tail - journal->block_map_reap_head
         > journal->block_map_maximum_age) {
    journal->stats.block_map_writes_requested++;
    hooks->block_map_pressure (hooks->context, journal->block_map_reap_head);
  }
}

/* --- Writing blocks ------------------------------------------------------ */

/* Place the block's assigned entries in its buffer after those already
 * there, and refresh the headers (vdo-journals.md 1.3-1.5). */
static void
encode_assigned_entries (struct recovery_journal *journal,
                         struct journal_block *block)
{
  struct recovery_journal_sector_header sector = {
    .check_byte = block->header.check_byte,
    .recovery_count = block->header.recovery_count,
  };
  struct vdo_journal_entry_request *request;
  unsigned int first = block->encoded_count, s, first_sector, last_sector;

  while ((request = pop_request (&block->assigned)) != NULL) {
    size_t offset =
      vdo_recovery_journal_entry_offset (VDO_METADATA_RECOVERY_JOURNAL_2,
                                         block->encoded_count++);

    vdo_encode_recovery_journal_entry (block->data + offset, &request->entry);
    push_request (&block->encoded, request);
  }

  /* Only the sectors that gained entries change their headers. */
  first_sector = first / ENTRIES_PER_SECTOR + 1;
  last_sector = (block->encoded_count - 1) / ENTRIES_PER_SECTOR + 1;
  for (s = first_sector; s <= last_sector; s++) {
    unsigned int before = (s - 1) * ENTRIES_PER_SECTOR;
    unsigned int count = block->encoded_count - before;

    sector.entry_count = count > ENTRIES_PER_SECTOR ? ENTRIES_PER_SECTOR : count;
    vdo_encode_recovery_journal_sector_header (block->data
                                               + s * VDO_SECTOR_SIZE,
                                               &sector);
  }

  block->header.block_map_head = journal->block_map_head;
  block->header.slab_journal_head = journal->slab_journal_head;
  block->header.entry_count = block->encoded_count;
  vdo_encode_recovery_block_header (block->data, &block->header);
  block->entries_in_commit = block->encoded_count - first;
}

static void complete_write (struct vdo_completion *completion);

/* Write the whole block with every entry so far.  The preflush makes the
 * data the entries point at durable first; FUA makes the entries durable
 * before anyone acts on them (vdo-journals.md 8.1 W6). */
static void
write_block (struct recovery_journal *journal, struct journal_block *block)
{
  if (block->committing || queue_is_empty (&block->assigned)
      || is_read_only (journal))
    return;
  encode_assigned_entries (journal, block);
  block->committing = true;
  journal->writes_in_flight++;
  journal->stats.blocks_written++;
  journal->stats.entries_written += block->entries_in_commit;
  vdo_submit_vio (&block->vio, journal->device, VDO_IO_WRITE,
                  vdo_recovery_journal_block_pbn (journal->origin,
                                                  journal->size,
                                                  block->sequence_number),
                  1, block->data, true, true, complete_write, journal->queue,
                  block);
}

/* Group commit (vdo-journals.md 1.9 item 3): while any write is in flight
 * entries accumulate; then every full block goes out at once, and the
 * partial active block only if nothing else did. */
static void
write_blocks (struct recovery_journal *journal)
{
  struct journal_block *block;

  if (journal->writes_in_flight > 0)
    return;
  while ((block = journal->first_write) != NULL) {
    journal->first_write = block->next_write;
    if (journal->first_write == NULL)
      journal->last_write = NULL;
    block->write_scheduled = false;
    write_block (journal, block);
  }
  if (journal->writes_in_flight == 0 && journal->active_block != NULL)
    write_block (journal, journal->active_block);
}

/* Queue a full block for the next batch, unless it is being written (its
 * completion queues it again if entries arrived meanwhile). */
static void
schedule_block_write (struct recovery_journal *journal,
                      struct journal_block *block)
{
  if (block->committing || block->write_scheduled)
    return;
  block->write_scheduled = true;
  block->next_write = NULL;
  if (journal->last_write != NULL)
    journal->last_write->next_write = block;
  else
    journal->first_write = block;
  journal->last_write = block;
}

static void
complete_write (struct vdo_completion *completion)
{
  struct journal_block *block = completion->parent;
  struct recovery_journal *journal = block->journal;
  bool acknowledged = false;

  journal->writes_in_flight--;
  block->committing = false;
  journal->stats.blocks_committed++;
  journal->stats.entries_committed += block->entries_in_commit;
  block->uncommitted_count -= block->entries_in_commit;
  block->entries_in_commit = 0;

  /* The I/O layer has logged the failure; read-only mode stops all
   * further journal writes. */
  if (completion->result != VDO_SUCCESS)
    enter_read_only (journal, completion->result);
  else if (block->sequence_number > journal->last_write_acknowledged) {
    journal->last_write_acknowledged = block->sequence_number;
    acknowledged = true;
  }

  if (is_read_only (journal)) {
    fail_all_requests (journal);
    check_for_drain_complete (journal);
    return;
  }

  notify_commit_waiters (journal);
  if (!queue_is_empty (&block->assigned) && is_block_full (block))
    schedule_block_write (journal, block);
  recycle_blocks (journal);
  /* Freed buffers may let waiting entries in. */
  assign_entries (journal);
  /* Reaping stops below the last acknowledged write, so a newer one may
   * let heads move without any lock being released. */
  if (acknowledged)
    reap (journal);
  check_for_drain_complete (journal);
}

/* --- Assigning entries --------------------------------------------------- */

/* Start the block for sequence number tail, if a buffer is free and the
 * journal has room: tail may not pass the head by more than the usable
 * length (vdo-journals.md 1.9 item 6). */
static enum open_result
open_block (struct recovery_journal *journal)
{
  struct journal_block *block = journal->free_blocks;
  sequence_number_t sequence_number = journal->tail;

  if (block == NULL)
    return NO_BUFFER;
  if (sequence_number + 1 - journal_head (journal) > journal->usable_length)
    return NO_SPACE;
  if (sequence_number + 1 >= VDO_RECOVERY_JOURNAL_SEQUENCE_LIMIT) {
    if (!journal->overflow_logged)
      vdo_log_error ("recovery journal sequence number %" PRIu64
                     " would reach the 2^48 limit", sequence_number + 1);
    journal->overflow_logged = true;
    enter_read_only (journal, VDO_OUT_OF_RANGE);
    return JOURNAL_READ_ONLY;
  }

  journal->free_blocks = block->next;
  block->next = NULL;
  block->sequence_number = sequence_number;
  block->entry_count = 0;
  block->encoded_count = 0;
  block->uncommitted_count = 0;
  block->entries_in_commit = 0;
  block->committing = false;
  block->write_scheduled = false;
  block->assigned = (struct request_queue) { NULL, NULL };
  block->encoded = (struct request_queue) { NULL, NULL };
  /* Counters as of the open: recovery adds this block's entries to them
   * (vdo-journals.md 1.4, 7.3 R5). */
  block->header = (struct recovery_block_header) {
    .sequence_number = sequence_number,
    .nonce = journal->nonce,
    .metadata_type = VDO_METADATA_RECOVERY_JOURNAL_2,
    .logical_blocks_used = journal->logical_blocks_used,
    .block_map_data_blocks = journal->block_map_data_blocks,
    .check_byte = vdo_recovery_journal_check_byte (sequence_number,
                                                   journal->size),
    .recovery_count = journal->recovery_count,
  };
  memset (block->data, 0, VDO_BLOCK_SIZE);

  /* The block may not be reaped before it is fully committed. */
  vdo_acquire_journal_lock (journal->locks, sequence_number,
                            VDO_ZONE_TYPE_JOURNAL, 1);
  if (journal->last_active != NULL)
    journal->last_active->next = block;
  else
    journal->first_active = block;
  journal->last_active = block;
  journal->active_block = block;
  journal->tail = sequence_number + 1;
  journal->stats.blocks_started++;
  check_pressure (journal);
  return BLOCK_OPENED;
}

static void
update_counters (struct recovery_journal *journal,
                 const struct recovery_journal_entry *entry)
{
  if (entry->operation == VDO_JOURNAL_BLOCK_MAP_REMAPPING) {
    journal->block_map_data_blocks++;
    return;
  }
  if (vdo_is_mapped_location (entry->mapping))
    journal->logical_blocks_used++;
  if (vdo_is_mapped_location (entry->unmapping))
    journal->logical_blocks_used--;
}

static void
assign_entry (struct recovery_journal *journal, struct journal_block *block,
              struct vdo_journal_entry_request *request)
{
  request->recovery_point = (struct journal_point) {
    .sequence_number = block->sequence_number,
    .entry_count = block->entry_count,
  };
  block->entry_count++;
  block->uncommitted_count++;
  update_counters (journal, &request->entry);
  /* Held for the requester until its effects hold locks of their own. */
  vdo_acquire_journal_lock (journal->locks, block->sequence_number,
                            VDO_ZONE_TYPE_JOURNAL, 1);
  push_request (&block->assigned, request);
  journal->stats.entries_started++;
  if (is_block_full (block))
    schedule_block_write (journal, block);
}

/* Assign waiting requests, in order, as far as space allows, then write
 * what the policy says. */
static void
assign_entries (struct recovery_journal *journal)
{
  while (!queue_is_empty (&journal->waiting) && !is_read_only (journal)) {
    struct journal_block *block = journal->active_block;

    if (block == NULL || is_block_full (block)) {
      enum open_result result = open_block (journal);

      if (result == NO_SPACE && !journal->waiting_for_space) {
        /* Reaping will resume us; make sure someone releases locks. */
        journal->waiting_for_space = true;
        journal->stats.disk_full++;
        check_pressure (journal);
      }
      if (result != BLOCK_OPENED)
        break;
      journal->waiting_for_space = false;
      block = journal->active_block;
    }
    assign_entry (journal, block, pop_request (&journal->waiting));
  }

  if (is_read_only (journal))
    fail_all_requests (journal);
  else
    write_blocks (journal);
}

void
vdo_recovery_journal_add_entry (struct recovery_journal *journal,
                                struct vdo_journal_entry_request *request)
{
  request->recovery_point = (struct journal_point) { 0, 0 };
  request->completion.result = VDO_SUCCESS;
  if (journal->state != JOURNAL_OPERATING) {
    vdo_log_error ("recovery journal entry refused: the journal is %s",
                   journal->state == JOURNAL_DRAINING
                   ? "draining" : "drained");
    vdo_finish_completion (&request->completion, UDS_BAD_STATE);
    return;
  }
  if (!is_valid_entry (&request->entry)) {
    vdo_log_error ("invalid recovery journal entry: operation %u, page %"
                   PRIu64 " slot %u, mapping (%" PRIu64 ", %d), unmapping (%"
                   PRIu64 ", %d)", request->entry.operation,
                   request->entry.slot_pbn, request->entry.slot,
                   request->entry.mapping.pbn, request->entry.mapping.state,
                   request->entry.unmapping.pbn,
                   request->entry.unmapping.state);
    vdo_finish_completion (&request->completion, UDS_INVALID_ARGUMENT);
    return;
  }
  /* Even failures go through the queue, to keep completions in order. */
  push_request (&journal->waiting, request);
  assign_entries (journal);
}

/* --- Reaping ------------------------------------------------------------- */

static bool
is_locked (const struct recovery_journal *journal,
           sequence_number_t sequence_number, enum vdo_zone_type type)
{
  /* The journal-zone count first: a requester takes its other locks
   * before releasing that one, so seeing it released means seeing them. */
  return vdo_is_journal_block_locked (journal->locks, sequence_number,
                                      VDO_ZONE_TYPE_JOURNAL)
    || vdo_is_journal_block_locked (journal->locks, sequence_number, type);
}

static void
finish_reaping (struct vdo_completion *completion)
{
  struct recovery_journal *journal = completion->parent;

  journal->reaping = false;
  if (completion->result != VDO_SUCCESS)
    enter_read_only (journal, completion->result);
  if (is_read_only (journal)) {
    fail_all_requests (journal);
    check_for_drain_complete (journal);
    return;
  }

  /* The flush made durable whatever released the locks (block map pages,
   * slab summary updates), so the new heads are true now. */
  journal->block_map_head = journal->block_map_reap_head;
  journal->slab_journal_head = journal->slab_journal_reap_head;
  journal->stats.heads_advanced++;
  assign_entries (journal);
  /* More locks may have gone while the flush was out. */
  reap (journal);
  check_pressure (journal);
  check_for_drain_complete (journal);
}

/* Move the reap heads over every acknowledged block nothing holds, and
 * adopt them after a flush (vdo-journals.md 6.2). */
static void
reap (struct recovery_journal *journal)
{
  sequence_number_t limit = journal->last_write_acknowledged;

  if (journal->reaping || journal->state == JOURNAL_DRAINED
      || is_read_only (journal))
    return;
  while (journal->block_map_reap_head < limit
         && !is_locked (journal, journal->block_map_reap_head,
                        VDO_ZONE_TYPE_LOGICAL))
    journal->block_map_reap_head++;
  while (journal->slab_journal_reap_head < limit
         && !is_locked (journal, journal->slab_journal_reap_head,
                        VDO_ZONE_TYPE_PHYSICAL))
    journal->slab_journal_reap_head++;
  if (journal->block_map_reap_head == journal->block_map_head
      && journal->slab_journal_reap_head == journal->slab_journal_head)
    return;
  journal->reaping = true;
  vdo_submit_flush (&journal->flush_vio, journal->device, finish_reaping,
                    journal->queue, journal);
}

/* On the journal thread, for each burst of lock releases (or a read-only
 * notification). */
static void
wake_journal (struct vdo_completion *completion)
{
  struct recovery_journal *journal = completion->parent;

  /* Cleared first, so releases from now on wake us again. */
  atomic_store (&journal->wakeup_pending, false);
  if (is_read_only (journal)) {
    fail_all_requests (journal);
    check_for_drain_complete (journal);
    return;
  }
  reap (journal);
  check_pressure (journal);
}

/* Any thread. */
static void
request_wakeup (struct recovery_journal *journal)
{
  if (!atomic_exchange (&journal->wakeup_pending, true))
    vdo_enqueue_completion (&journal->wakeup);
}

static void
journal_unlocked (void *context, sequence_number_t sequence_number)
{
  (void) sequence_number;
  request_wakeup (context);
}

void
vdo_recovery_journal_notify_read_only (struct recovery_journal *journal)
{
  request_wakeup (journal);
}

/* --- Life cycle ---------------------------------------------------------- */

static int
check_config (const struct recovery_journal_config *config)
{
  const struct vdo_block_device *device = config->device;
  block_count_t size = config->size, blocks, usable;

  if (device == NULL || config->queue == NULL || config->read_only == NULL) {
    vdo_log_error ("recovery journal needs a device, a queue and a"
                   " read-only notifier");
    return VDO_BAD_CONFIGURATION;
  }
  if (size < 2 || (size & (size - 1)) != 0) {
    vdo_log_error ("recovery journal size %" PRIu64 " is not a power of two"
                   " of at least 2", size);
    return VDO_BAD_CONFIGURATION;
  }
  usable = vdo_recovery_journal_usable_length (size);
  if (config->block_map_maximum_age > usable / 2) {
    vdo_log_error ("block map maximum age %" PRIu64 " is more than half the"
                   " usable recovery journal length %" PRIu64,
                   config->block_map_maximum_age, usable);
    return VDO_BAD_CONFIGURATION;
  }
  if (config->state.journal_start == 0) {
    vdo_log_error ("recovery journal start 0 is invalid: sequence numbers"
                   " start at 1");
    return VDO_BAD_CONFIGURATION;
  }
  blocks = vdo_io_block_count (device->io);
  if (config->origin < device->bio_offset
      || config->origin - device->bio_offset > blocks
      || size > blocks - (config->origin - device->bio_offset)) {
    vdo_log_error ("recovery journal blocks %" PRIu64 "..%" PRIu64
                   " are outside the device", config->origin,
                   config->origin + size - 1);
    return VDO_REGION_OUT_OF_BOUNDS;
  }
  return VDO_SUCCESS;
}

int
vdo_make_recovery_journal (const struct recovery_journal_config *config,
                           struct recovery_journal **journal_ret)
{
  struct recovery_journal *journal;
  sequence_number_t start = config->state.journal_start;
  block_count_t usable;
  int result, i;

  *journal_ret = NULL;
  result = check_config (config);
  if (result != VDO_SUCCESS)
    return result;

  journal = calloc (1, sizeof *journal);
  if (journal == NULL) {
    vdo_log_error ("cannot allocate the recovery journal");
    return ENOMEM;
  }
  for (i = 0; i < VDO_RECOVERY_JOURNAL_RESERVED_BLOCKS; i++) {
    struct journal_block *block = &journal->blocks[i];

    block->journal = journal;
    block->data = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
    if (block->data == NULL) {
      vdo_free_recovery_journal (journal);
      return ENOMEM;
    }
    block->next = journal->free_blocks;
    journal->free_blocks = block;
  }
  result = vdo_make_journal_lock_counter (config->size, journal_unlocked,
                                          journal, &journal->locks);
  if (result != 0) {
    vdo_free_recovery_journal (journal);
    return result;
  }

  usable = vdo_recovery_journal_usable_length (config->size);
  journal->nonce = config->nonce;
  journal->recovery_count =
    vdo_recovery_journal_recovery_count (config->complete_recoveries);
  journal->origin = config->origin;
  journal->size = config->size;
  journal->usable_length = usable;
  journal->slab_journal_threshold = config->size * 2 / 3;
  journal->block_map_maximum_age = config->block_map_maximum_age != 0
    ? config->block_map_maximum_age : usable / 2;
  journal->device = config->device;
  journal->queue = config->queue;
  journal->read_only = config->read_only;
  journal->hooks = config->hooks;

  /* A clean load (vdo-journals.md 7.2 C1): the first block written is
   * journal_start, and nothing before it is needed. */
  journal->tail = start;
  journal->block_map_head = start;
  journal->slab_journal_head = start;
  journal->block_map_reap_head = start;
  journal->slab_journal_reap_head = start;
  journal->last_write_acknowledged = start;
  journal->logical_blocks_used = config->state.logical_blocks_used;
  journal->block_map_data_blocks = config->state.block_map_data_blocks;
  journal->state = JOURNAL_OPERATING;
  atomic_init (&journal->wakeup_pending, false);
  vdo_prepare_completion (&journal->wakeup, wake_journal, journal->queue,
                          journal);

  if (start >= VDO_RECOVERY_JOURNAL_SEQUENCE_LIMIT) {
    vdo_log_error ("recovery journal start %" PRIu64
                   " is beyond the 2^48 limit", start);
    journal->overflow_logged = true;
    enter_read_only (journal, VDO_OUT_OF_RANGE);
  }
  *journal_ret = journal;
  return VDO_SUCCESS;
}

int
vdo_restart_recovery_journal (struct recovery_journal *journal,
                              uint64_t complete_recoveries,
                              const struct recovery_journal_state_7_0 *state)
{
  sequence_number_t start = state->journal_start;

  if (journal->first_active != NULL || journal->stats.entries_started > 0) {
    vdo_log_error ("the recovery journal cannot restart after taking "
                   "entries");
    return UDS_BAD_STATE;
  }
  journal->recovery_count =
    vdo_recovery_journal_recovery_count (complete_recoveries);
  journal->tail = start;
  journal->block_map_head = start;
  journal->slab_journal_head = start;
  journal->block_map_reap_head = start;
  journal->slab_journal_reap_head = start;
  journal->last_write_acknowledged = start;
  journal->logical_blocks_used = state->logical_blocks_used;
  journal->block_map_data_blocks = state->block_map_data_blocks;
  if (start >= VDO_RECOVERY_JOURNAL_SEQUENCE_LIMIT
      && !journal->overflow_logged) {
    vdo_log_error ("recovery journal start %" PRIu64
                   " is beyond the 2^48 limit", start);
    journal->overflow_logged = true;
    enter_read_only (journal, VDO_OUT_OF_RANGE);
  }
  return VDO_SUCCESS;
}

void
vdo_free_recovery_journal (struct recovery_journal *journal)
{
  int i;

  if (journal == NULL)
    return;
  if (journal->writes_in_flight > 0 || journal->reaping)
    vdo_log_error ("recovery journal freed with I/O in flight");
  else if (has_outstanding_work (journal))
    vdo_log_warning ("recovery journal freed with entries outstanding");
  vdo_free_journal_lock_counter (journal->locks);
  for (i = 0; i < VDO_RECOVERY_JOURNAL_RESERVED_BLOCKS; i++)
    vdo_io_free_buffer (journal->blocks[i].data);
  free (journal);
}

struct vdo_journal_lock_counter *
vdo_recovery_journal_lock_counter (struct recovery_journal *journal)
{
  return journal->locks;
}

void
vdo_drain_recovery_journal (struct recovery_journal *journal,
                            struct vdo_completion *parent)
{
  if (journal->state != JOURNAL_OPERATING) {
    vdo_log_error ("recovery journal is already %s",
                   journal->state == JOURNAL_DRAINING
                   ? "draining" : "drained");
    vdo_finish_completion (parent, UDS_BAD_STATE);
    return;
  }
  journal->state = JOURNAL_DRAINING;
  journal->drain_parent = parent;
  if (is_read_only (journal))
    fail_all_requests (journal);
  else
    write_blocks (journal);
  check_for_drain_complete (journal);
}

int
vdo_resume_recovery_journal (struct recovery_journal *journal, bool saved)
{
  if (journal->state != JOURNAL_DRAINED) {
    vdo_log_error ("recovery journal resumed without being drained");
    return UDS_BAD_STATE;
  }
  if (is_read_only (journal))
    return VDO_READ_ONLY;
  journal->state = JOURNAL_OPERATING;
  if (saved) {
    /* Everything journaled is in the saved block map and depot: leave the
     * partial block behind (journal_start was recorded past it) and
     * start over at the tail, as a load would. */
    while (journal->first_active != NULL) {
      sequence_number_t sequence_number =
        journal->first_active->sequence_number;

      remove_first_active (journal);
      release_own_lock (journal, sequence_number);
    }
    journal->block_map_head = journal->tail;
    journal->slab_journal_head = journal->tail;
    journal->block_map_reap_head = journal->tail;
    journal->slab_journal_reap_head = journal->tail;
    journal->last_write_acknowledged = journal->tail;
  }
  /* Lock releases while drained did not reap. */
  reap (journal);
  return VDO_SUCCESS;
}

void
vdo_record_recovery_journal (const struct recovery_journal *journal,
                             struct recovery_journal_state_7_0 *state)
{
  state->journal_start =
    journal->state == JOURNAL_DRAINED && !is_read_only (journal)
    ? journal->tail : journal_head (journal);
  state->logical_blocks_used = journal->logical_blocks_used;
  state->block_map_data_blocks = journal->block_map_data_blocks;
}

sequence_number_t
vdo_recovery_journal_tail (const struct recovery_journal *journal)
{
  return journal->tail;
}

sequence_number_t
vdo_recovery_journal_block_map_head (const struct recovery_journal *journal)
{
  return journal->block_map_head;
}

sequence_number_t
vdo_recovery_journal_slab_journal_head (const struct recovery_journal *journal)
{
  return journal->slab_journal_head;
}

block_count_t
vdo_recovery_journal_logical_blocks_used (const struct recovery_journal *journal)
{
  return journal->logical_blocks_used;
}

block_count_t
vdo_recovery_journal_block_map_data_blocks (const struct recovery_journal *journal)
{
  return journal->block_map_data_blocks;
}

void
vdo_get_recovery_journal_statistics (const struct recovery_journal *journal,
                                     struct recovery_journal_statistics *stats)
{
  *stats = journal->stats;
}
