/* nbdkit-vdo: reference counters, their blocks and their writes. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "physical-zone.h"
#include "ref-counts-format.h"
#include "ref-counts.h"
#include "slab.h"
#include "status.h"

/* One reference block write in flight. */
struct reference_write {
  struct vdo_vio vio;
  struct vdo_slab *slab;
  struct vdo_reference_block *block;
  uint8_t *buffer;
};

/* One load of a slab's reference blocks. */
struct reference_load {
  struct vdo_vio vio;
  struct vdo_slab *slab;
  struct vdo_completion *parent;
  uint8_t *buffer;
};

static void clean_summary_updated (struct vdo_summary_waiter *waiter,
                                   int result);

int
vdo_init_ref_counts (struct vdo_ref_counts *counts, block_count_t data_blocks)
{
  memset (counts, 0, sizeof *counts);
  counts->data_blocks = data_blocks;
  counts->block_count = vdo_reference_blocks_used (data_blocks);
  /* Whole blocks, so the last one packs with zeros past data_blocks. */
  counts->counters = calloc ((size_t) counts->block_count,
                             VDO_COUNTS_PER_BLOCK);
  counts->blocks = calloc (counts->block_count, sizeof *counts->blocks);
  if (counts->counters == NULL || counts->blocks == NULL) {
    vdo_uninit_ref_counts (counts);
    vdo_log_error ("cannot allocate reference counters");
    return ENOMEM;
  }
  counts->free_blocks = data_blocks;
  counts->clean_waiter.callback = clean_summary_updated;
  return VDO_SUCCESS;
}

void
vdo_uninit_ref_counts (struct vdo_ref_counts *counts)
{
  free (counts->counters);
  free (counts->blocks);
  counts->counters = NULL;
  counts->blocks = NULL;
}

void
vdo_reset_ref_counts (struct vdo_ref_counts *counts)
{
  memset (counts->counters, 0,
          (size_t) counts->block_count * VDO_COUNTS_PER_BLOCK);
  memset (counts->blocks, 0, counts->block_count * sizeof *counts->blocks);
  counts->dirty_head = counts->dirty_tail = NULL;
  counts->dirty_count = 0;
  counts->free_blocks = counts->data_blocks;
  counts->slab_journal_point = (struct journal_point) { 0, 0 };
  counts->search_cursor = 0;
}

/* --- Dirty blocks ------------------------------------------------------- */

static void
enqueue_dirty (struct vdo_ref_counts *counts, struct vdo_reference_block *block)
{
  block->queued = true;
  block->next_dirty = NULL;
  if (counts->dirty_tail != NULL)
    counts->dirty_tail->next_dirty = block;
  else
    counts->dirty_head = block;
  counts->dirty_tail = block;
  counts->dirty_count++;
}

static struct vdo_reference_block *
dequeue_dirty (struct vdo_ref_counts *counts)
{
  struct vdo_reference_block *block = counts->dirty_head;

  if (block == NULL)
    return NULL;
  counts->dirty_head = block->next_dirty;
  if (counts->dirty_head == NULL)
    counts->dirty_tail = NULL;
  block->next_dirty = NULL;
  block->queued = false;
  counts->dirty_count--;
  return block;
}

/* A block being written is queued again when its write completes. */
static void
dirty_block (struct vdo_ref_counts *counts, struct vdo_reference_block *block)
{
  if (block->dirty)
    return;
  block->dirty = true;
  if (!block->writing)
    enqueue_dirty (counts, block);
}

unsigned int
vdo_dirty_all_reference_blocks (struct vdo_slab *slab, sequence_number_t lock)
{
  struct vdo_ref_counts *counts = &slab->counts;
  unsigned int i, locked = 0;

  for (i = 0; i < counts->block_count; i++) {
    struct vdo_reference_block *block = &counts->blocks[i];

    if (lock != 0 && block->journal_lock == 0) {
      block->journal_lock = lock;
      locked++;
    }
    dirty_block (counts, block);
  }
  return locked;
}

/* --- Counter transitions (3.1) ------------------------------------------ */

static struct vdo_reference_block *
block_of (struct vdo_ref_counts *counts, uint32_t sbn)
{
  return &counts->blocks[sbn / VDO_COUNTS_PER_BLOCK];
}

static const char *
operation_name (enum vdo_reference_operation operation)
{
  switch (operation) {
  case VDO_DATA_INCREMENT: return "data increment";
  case VDO_DATA_DECREMENT: return "data decrement";
  case VDO_BLOCK_MAP_INCREMENT: return "block map increment";
  }
  return "unknown operation";
}

static void
count_allocation (struct vdo_slab *slab, struct vdo_reference_block *block,
                  int delta)
{
  block->allocated += delta;
  slab->counts.free_blocks -= delta;
  /* Only usable slabs count toward the zone; others join when made
   * allocatable. */
  if (slab->status == VDO_SLAB_REBUILT)
    vdo_adjust_zone_free_blocks (slab->zone, slab, -delta);
}

static int
change_counter (struct vdo_slab *slab, uint32_t sbn,
                enum vdo_reference_operation operation, bool normal)
{
  struct vdo_ref_counts *counts = &slab->counts;
  struct vdo_reference_block *block = block_of (counts, sbn);
  uint8_t *counter = &counts->counters[sbn];
  uint8_t old = *counter;

  switch (operation) {
  case VDO_DATA_INCREMENT:
    if (old == VDO_EMPTY_REFERENCE_COUNT) {
      *counter = 1;
      count_allocation (slab, block, 1);
      return VDO_SUCCESS;
    }
    if (old == VDO_PROVISIONAL_REFERENCE_COUNT) {
      *counter = 1;
      return VDO_SUCCESS;
    }
    if (old < VDO_MAXIMUM_REFERENCE_COUNT) {
      *counter = old + 1;
      return VDO_SUCCESS;
    }
    break;

  case VDO_DATA_DECREMENT:
    if (old == 1 && normal) {
      struct vdo_pbn_lock *pin =
        vdo_find_pbn_lock (&slab->zone->pbn_locks, slab->origin + sbn);

      /* A sharer verified this block and its increment is coming: keep
       * the block from being allocated until the pin goes. */
      if (pin != NULL) {
        *counter = VDO_PROVISIONAL_REFERENCE_COUNT;
        pin->holds_provisional = true;
        return VDO_SUCCESS;
      }
    }
    if (old == 1 || old == VDO_PROVISIONAL_REFERENCE_COUNT) {
      *counter = VDO_EMPTY_REFERENCE_COUNT;
      count_allocation (slab, block, -1);
      return VDO_SUCCESS;
    }
    if (old != VDO_EMPTY_REFERENCE_COUNT) {
      *counter = old - 1;
      return VDO_SUCCESS;
    }
    break;

  case VDO_BLOCK_MAP_INCREMENT:
    /* Tree pages go straight to the maximum, so nothing dedupes against
     * them; in operation they were allocated first, in replay not. */
    if (normal && old == VDO_PROVISIONAL_REFERENCE_COUNT) {
      *counter = VDO_MAXIMUM_REFERENCE_COUNT;
      return VDO_SUCCESS;
    }
    if (!normal && old == VDO_EMPTY_REFERENCE_COUNT) {
      *counter = VDO_MAXIMUM_REFERENCE_COUNT;
      count_allocation (slab, block, 1);
      return VDO_SUCCESS;
    }
    break;
  }
  vdo_log_error ("slab %u block %" PRIu32 ": %s of a block with count %u is"
                 " invalid", slab->number, sbn, operation_name (operation),
                 old);
  return VDO_REF_COUNT_INVALID;
}

int
vdo_adjust_reference_count (struct vdo_slab *slab, uint32_t sbn,
                            enum vdo_reference_operation operation,
                            const struct journal_point *sj_point, bool normal)
{
  struct vdo_ref_counts *counts = &slab->counts;
  struct vdo_reference_block *block = block_of (counts, sbn);
  int result = change_counter (slab, sbn, operation, normal);

  if (result != VDO_SUCCESS)
    return result;
  if (sj_point != NULL && vdo_is_valid_journal_point (sj_point)) {
    counts->slab_journal_point = *sj_point;
    /* The first journaled change since the block was last clean pins
     * its journal block until the block is written (4.6); later ones
     * are covered by that older lock. */
    if (slab->journal.use_locks
        && (!block->dirty || block->journal_lock == 0)) {
      block->journal_lock = sj_point->sequence_number;
      vdo_acquire_slab_journal_lock (slab, sj_point->sequence_number, 1);
    }
  }
  dirty_block (counts, block);
  return VDO_SUCCESS;
}

int
vdo_replay_reference_change (struct vdo_slab *slab,
                             const struct journal_point *entry_point,
                             uint32_t sbn,
                             enum vdo_reference_operation operation)
{
  struct vdo_ref_counts *counts = &slab->counts;
  struct vdo_reference_block *block = block_of (counts, sbn);
  unsigned int sector = vdo_reference_sector_index (sbn);
  int result;

  /* Each sector says how far it is accurate, so a torn write only
   * replays what its stale sectors missed. */
  if (!vdo_before_journal_point (&block->commit_points[sector], entry_point))
    return VDO_SUCCESS;
  result = change_counter (slab, sbn, operation, false);
  if (result != VDO_SUCCESS)
    return result;
  counts->slab_journal_point = *entry_point;
  dirty_block (counts, block);
  return VDO_SUCCESS;
}

/* --- Allocation --------------------------------------------------------- */

void
vdo_reset_search_cursor (struct vdo_ref_counts *counts)
{
  counts->search_cursor = 0;
}

bool
vdo_allocate_reference (struct vdo_slab *slab, uint32_t *sbn)
{
  struct vdo_ref_counts *counts = &slab->counts;
  block_count_t cursor = counts->search_cursor;

  while (cursor < counts->data_blocks) {
    block_count_t index = cursor / VDO_COUNTS_PER_BLOCK;
    block_count_t start = index * VDO_COUNTS_PER_BLOCK;
    block_count_t end = start + VDO_COUNTS_PER_BLOCK;
    struct vdo_reference_block *block = &counts->blocks[index];

    if (end > counts->data_blocks)
      end = counts->data_blocks;
    /* Full blocks are skipped without looking at their counters. */
    if (block->allocated < end - start) {
      const uint8_t *found = memchr (counts->counters + cursor,
                                     VDO_EMPTY_REFERENCE_COUNT, end - cursor);

      if (found != NULL) {
        block_count_t free_index = found - counts->counters;

        counts->counters[free_index] = VDO_PROVISIONAL_REFERENCE_COUNT;
        count_allocation (slab, block, 1);
        counts->search_cursor = free_index + 1;
        *sbn = free_index;
        return true;
      }
    }
    cursor = end;
  }
  counts->search_cursor = counts->data_blocks;
  return false;
}

int
vdo_release_provisional_reference (struct vdo_slab *slab, uint32_t sbn)
{
  struct vdo_ref_counts *counts = &slab->counts;

  if (counts->counters[sbn] != VDO_PROVISIONAL_REFERENCE_COUNT) {
    vdo_log_error ("slab %u block %" PRIu32 ": releasing a provisional"
                   " reference of a block with count %u", slab->number, sbn,
                   counts->counters[sbn]);
    return UDS_BAD_STATE;
  }
  /* Nothing to write: on disk 255 already reads as free. */
  counts->counters[sbn] = VDO_EMPTY_REFERENCE_COUNT;
  count_allocation (slab, block_of (counts, sbn), -1);
  /* The next allocation takes it back.  Packed and deduplicated writes
   * give their blocks back this way, every other block when two
   * fragments share one; left behind the cursor, those holes would make
   * the blocks actually written every other one, so that no two are
   * adjacent and the device sees only 4 KiB writes. */
  if (sbn < counts->search_cursor)
    counts->search_cursor = sbn;
  return VDO_SUCCESS;
}

/* --- Writing ------------------------------------------------------------ */

static void
clean_summary_updated (struct vdo_summary_waiter *waiter, int result)
{
  struct vdo_ref_counts *counts =
    (struct vdo_ref_counts *) ((char *) waiter
                               - __builtin_offsetof (struct vdo_ref_counts,
                                                     clean_waiter));
  struct vdo_slab *slab = vdo_slab_of_counts (counts);

  counts->clean_update_in_flight = false;
  if (result != VDO_SUCCESS) {
    vdo_slab_enter_read_only (slab, result);
  }
  else if (counts->clean_update_wanted) {
    counts->clean_update_wanted = false;
    if (counts->writes_in_flight == 0 && counts->dirty_count == 0)
      vdo_request_clean_summary (slab);
  }
  vdo_check_slab_progress (slab);
}

void
vdo_request_clean_summary (struct vdo_slab *slab)
{
  struct vdo_ref_counts *counts = &slab->counts;
  struct vdo_slab_summary_zone *summary = vdo_slab_summary_of (slab);
  const struct slab_summary_entry *entry =
    vdo_get_slab_summary_entry (summary, slab->number);

  if (counts->clean_update_in_flight) {
    counts->clean_update_wanted = true;
    return;
  }
  /* Even in read-only mode the summary answers (with VDO_READ_ONLY), so
   * a drain waiting for this always hears back. */
  counts->clean_update_in_flight = true;
  /* Every entry the journal holds is now in written blocks. */
  vdo_update_slab_summary_entry (summary, &counts->clean_waiter, slab->number,
                                 entry->tail_block_offset, true, false,
                                 counts->free_blocks);
}

static void
reference_block_written (struct vdo_completion *completion)
{
  struct reference_write *write = completion->parent;
  struct vdo_slab *slab = write->slab;
  struct vdo_ref_counts *counts = &slab->counts;
  struct vdo_reference_block *block = write->block;
  sequence_number_t lock = block->writing_lock;
  int result = completion->result;

  vdo_io_free_buffer (write->buffer);
  free (write);
  counts->writes_in_flight--;
  block->writing = false;
  block->writing_lock = 0;

  if (result != VDO_SUCCESS) {
    vdo_log_error ("cannot write reference block %u of slab %u: %s",
                   (unsigned int) (block - counts->blocks), slab->number,
                   vdo_status_to_string (result));
    vdo_slab_enter_read_only (slab, result);
    vdo_check_slab_progress (slab);
    return;
  }

  vdo_count_zone_event (&slab->zone->reference_blocks_written);
  vdo_release_slab_journal_lock (slab, lock, 1);
  if (!vdo_slab_is_read_only (slab)) {
    if (block->dirty)
      enqueue_dirty (counts, block);
    else if (counts->writes_in_flight == 0 && counts->dirty_count == 0)
      vdo_request_clean_summary (slab);
  }
  vdo_check_slab_progress (slab);
}

static void
launch_block_write (struct vdo_slab *slab, struct vdo_reference_block *block)
{
  struct vdo_ref_counts *counts = &slab->counts;
  unsigned int index = block - counts->blocks;
  struct reference_write *write = calloc (1, sizeof *write);

  if (write != NULL)
    write->buffer = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (write == NULL || write->buffer == NULL) {
    free (write);
    vdo_log_error ("cannot allocate a reference block write");
    vdo_slab_enter_read_only (slab, ENOMEM);
    return;
  }
  write->slab = slab;
  write->block = block;

  /* Changes from now on need another write, and another lock. */
  block->writing_lock = block->journal_lock;
  block->journal_lock = 0;
  block->dirty = false;
  block->writing = true;
  counts->writes_in_flight++;
  vdo_encode_reference_block (write->buffer,
                              counts->counters
                              + (size_t) index * VDO_COUNTS_PER_BLOCK,
                              &counts->slab_journal_point);
  /* PREFLUSH: the journal entries these counts reflect must be durable
   * before the counts are. */
  vdo_submit_vio (&write->vio, vdo_slab_device (slab), VDO_IO_WRITE,
                  slab->reference_origin + index, 1, write->buffer, true,
                  false, reference_block_written, vdo_slab_queue (slab), write);
}

void
vdo_save_dirty_reference_blocks (struct vdo_slab *slab, unsigned int count)
{
  struct vdo_ref_counts *counts = &slab->counts;

  while (count-- > 0 && counts->dirty_head != NULL) {
    if (vdo_slab_is_read_only (slab))
      return;
    launch_block_write (slab, dequeue_dirty (counts));
  }
}

/* --- Loading (3.4) ------------------------------------------------------ */

static void
unpack_block (struct vdo_slab *slab, unsigned int index, const uint8_t *data)
{
  struct vdo_ref_counts *counts = &slab->counts;
  struct vdo_reference_block *block = &counts->blocks[index];
  uint8_t *counters = counts->counters + (size_t) index * VDO_COUNTS_PER_BLOCK;
  block_count_t first = (block_count_t) index * VDO_COUNTS_PER_BLOCK;
  unsigned int i, sector;

  vdo_decode_reference_block (data, counters, block->commit_points);
  for (sector = 0; sector < VDO_SECTORS_PER_BLOCK; sector++)
    if (vdo_before_journal_point (&counts->slab_journal_point,
                                  &block->commit_points[sector]))
      counts->slab_journal_point = block->commit_points[sector];
  if (vdo_reference_block_is_torn (block->commit_points))
    vdo_log_warning ("slab %u reference block %u was torn: its sectors have"
                     " different commit points", slab->number, index);

  block->allocated = 0;
  for (i = 0; i < VDO_COUNTS_PER_BLOCK; i++) {
    /* Provisional is never durable; counters past the data are unused. */
    if (first + i >= counts->data_blocks)
      counters[i] = VDO_EMPTY_REFERENCE_COUNT;
    else
      counters[i] = vdo_reference_count_from_disk (counters[i]);
    if (counters[i] != VDO_EMPTY_REFERENCE_COUNT)
      block->allocated++;
  }
  counts->free_blocks -= block->allocated;
}

static void
reference_blocks_read (struct vdo_completion *completion)
{
  struct reference_load *load = completion->parent;
  struct vdo_slab *slab = load->slab;
  struct vdo_ref_counts *counts = &slab->counts;
  struct vdo_completion *parent = load->parent;
  int result = completion->result;
  unsigned int i;

  if (result != VDO_SUCCESS) {
    vdo_log_error ("cannot read the reference blocks of slab %u: %s",
                   slab->number, vdo_status_to_string (result));
  }
  else {
    vdo_reset_ref_counts (counts);
    for (i = 0; i < counts->block_count; i++)
      unpack_block (slab, i, load->buffer + (size_t) i * VDO_BLOCK_SIZE);
  }
  vdo_io_free_buffer (load->buffer);
  free (load);
  vdo_finish_completion (parent, result);
}

void
vdo_load_reference_counts (struct vdo_slab *slab, struct vdo_completion *parent)
{
  struct vdo_ref_counts *counts = &slab->counts;
  struct reference_load *load = calloc (1, sizeof *load);

  if (load != NULL)
    load->buffer = vdo_io_alloc_buffer ((size_t) counts->block_count
                                        * VDO_BLOCK_SIZE);
  if (load == NULL || load->buffer == NULL) {
    free (load);
    vdo_log_error ("cannot allocate a buffer for slab %u's reference blocks",
                   slab->number);
    vdo_finish_completion (parent, ENOMEM);
    return;
  }
  load->slab = slab;
  load->parent = parent;
  /* The used reference blocks are contiguous: one read. */
  vdo_submit_vio (&load->vio, vdo_slab_device (slab), VDO_IO_READ,
                  slab->reference_origin, counts->block_count, load->buffer,
                  false, false, reference_blocks_read, vdo_slab_queue (slab),
                  load);
}
