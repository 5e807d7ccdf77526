/* nbdkit-vdo: replaying slab journals into reference counts. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "physical-zone.h"
#include "slab-scrubber.h"
#include "status.h"

static void scrub_next_slab (struct vdo_slab_scrubber *scrubber);

void
vdo_init_slab_scrubber (struct vdo_slab_scrubber *scrubber,
                        struct vdo_physical_zone *zone)
{
  memset (scrubber, 0, sizeof *scrubber);
  scrubber->zone = zone;
}

void
vdo_uninit_slab_scrubber (struct vdo_slab_scrubber *scrubber)
{
  vdo_io_free_buffer (scrubber->buffer);
  scrubber->buffer = NULL;
}

void
vdo_register_slab_for_scrubbing (struct vdo_slab_scrubber *scrubber,
                                 struct vdo_slab *slab)
{
  slab->status = VDO_SLAB_REQUIRES_SCRUBBING;
  slab->next = NULL;
  if (scrubber->queue_tail != NULL)
    scrubber->queue_tail->next = slab;
  else
    scrubber->queue_head = slab;
  scrubber->queue_tail = slab;
  scrubber->queued++;
}

static struct vdo_slab *
dequeue_slab (struct vdo_slab_scrubber *scrubber)
{
  struct vdo_slab *slab = scrubber->queue_head;

  if (slab == NULL)
    return NULL;
  scrubber->queue_head = slab->next;
  if (scrubber->queue_head == NULL)
    scrubber->queue_tail = NULL;
  slab->next = NULL;
  scrubber->queued--;
  return slab;
}

static void
finish_scrubbing (struct vdo_slab_scrubber *scrubber, int result)
{
  struct vdo_completion *parent = scrubber->parent;

  vdo_io_free_buffer (scrubber->buffer);
  scrubber->buffer = NULL;
  scrubber->current = NULL;
  scrubber->parent = NULL;
  vdo_finish_completion (parent, result);
}

/* An error ends all scrubbing: the volume is read-only and the slabs
 * left keep their status. */
static void
abort_scrubbing (struct vdo_slab_scrubber *scrubber, int result)
{
  vdo_enter_read_only_mode (scrubber->zone->read_only, result);
  while (dequeue_slab (scrubber) != NULL)
    ;
  finish_scrubbing (scrubber, result);
}

static const struct slab_summary_entry *
summary_entry (const struct vdo_slab *slab)
{
  return vdo_get_slab_summary_entry (vdo_slab_summary_of (slab), slab->number);
}

/* --- Replay (4.7 steps 3-5) ---------------------------------------------- */

static int
apply_block_entries (struct vdo_slab *slab, const uint8_t *block,
                     const struct slab_journal_block_header *header,
                     struct journal_point *last_applied)
{
  struct journal_point point = {
    .sequence_number = header->sequence_number,
    .entry_count = 0,
  };
  unsigned int i;

  for (i = 0; i < header->entry_count; i++) {
    struct slab_journal_entry entry = vdo_decode_slab_journal_entry (block, i);
    enum vdo_reference_operation operation =
      !entry.increment ? VDO_DATA_DECREMENT
      : entry.is_block_map ? VDO_BLOCK_MAP_INCREMENT : VDO_DATA_INCREMENT;
    int result;

    point.entry_count = i;
    /* Stricter than the kernel's bound: only data blocks have counts. */
    if (entry.sbn >= slab->counts.data_blocks) {
      vdo_log_error ("slab %u journal entry (%" PRIu64 ", %u) names block %"
                     PRIu32 " beyond the slab's %" PRIu64 " data blocks",
                     slab->number, point.sequence_number, i, entry.sbn,
                     slab->counts.data_blocks);
      return VDO_CORRUPT_JOURNAL;
    }
    result = vdo_replay_reference_change (slab, &point, entry.sbn, operation);
    if (result != VDO_SUCCESS) {
      vdo_log_error ("slab %u journal entry (%" PRIu64 ", %u) could not be"
                     " applied", slab->number, point.sequence_number, i);
      return result;
    }
    *last_applied = point;
  }
  return VDO_SUCCESS;
}

static int
apply_journal (struct vdo_slab_scrubber *scrubber, struct vdo_slab *slab)
{
  struct vdo_slab_journal *journal = &slab->journal;
  sequence_number_t tail = journal->tail;
  struct journal_point loaded_point = slab->counts.slab_journal_point;
  struct journal_point last_applied = loaded_point;
  struct slab_journal_block_header header;
  sequence_number_t head, sequence;

  /* The tail block names the head. */
  vdo_decode_slab_journal_block_header
    (scrubber->buffer
     + vdo_slab_journal_block_offset (tail - 1, journal->size) * VDO_BLOCK_SIZE,
     &header);
  head = header.head;
  if (head == 0 || head >= tail || tail - head > journal->size) {
    vdo_log_error ("slab %u journal head %" PRIu64 " does not fit its tail %"
                   PRIu64, slab->number, head, tail);
    return VDO_CORRUPT_JOURNAL;
  }

  for (sequence = head; sequence < tail; sequence++) {
    const uint8_t *block =
      scrubber->buffer
      + vdo_slab_journal_block_offset (sequence, journal->size)
        * VDO_BLOCK_SIZE;
    enum slab_journal_block_validity validity;
    int result;

    vdo_decode_slab_journal_block_header (block, &header);
    validity = vdo_check_slab_journal_block_header (&header,
                                                    slab->zone->nonce,
                                                    sequence);
    if (validity != VDO_SLAB_JOURNAL_BLOCK_VALID) {
      vdo_log_error ("slab %u journal block %" PRIu64 " is invalid: %s",
                     slab->number, sequence,
                     vdo_slab_journal_block_validity_name (validity));
      return VDO_CORRUPT_JOURNAL;
    }
    result = apply_block_entries (slab, block, &header, &last_applied);
    if (result != VDO_SUCCESS)
      return result;
    if (header.entry_count > 0) {
      last_applied.sequence_number = sequence;
      last_applied.entry_count = header.entry_count - 1;
    }
  }

  /* Counts written after the journal's last entry cannot be. */
  if (vdo_before_journal_point (&last_applied, &loaded_point)) {
    vdo_log_error ("slab %u reference counts claim journal point %" PRIu64
                   ".%u beyond the journal's end", slab->number,
                   loaded_point.sequence_number, loaded_point.entry_count);
    return VDO_CORRUPT_JOURNAL;
  }
  return VDO_SUCCESS;
}

/* --- The per-slab steps -------------------------------------------------- */

static void
slab_saved (struct vdo_completion *completion)
{
  struct vdo_slab_scrubber *scrubber = completion->parent;
  struct vdo_slab *slab = scrubber->current;

  if (completion->result != VDO_SUCCESS) {
    abort_scrubbing (scrubber, completion->result);
    return;
  }
  /* Everything in the journal is now in the written counts. */
  vdo_reopen_slab_journal (&slab->journal);
  slab->status = VDO_SLAB_REBUILT;
  scrubber->current = NULL;
  scrub_next_slab (scrubber);
}

static void
save_slab (struct vdo_slab_scrubber *scrubber, struct vdo_slab *slab)
{
  vdo_prepare_completion (&slab->action, slab_saved, scrubber->zone->queue,
                          scrubber);
  vdo_start_slab_drain (slab, VDO_SLAB_DRAIN_SCRUBBED, &slab->action);
}

static void
journal_read (struct vdo_completion *completion)
{
  struct vdo_slab_scrubber *scrubber = completion->parent;
  struct vdo_slab *slab = scrubber->current;
  int result = completion->result;

  if (result != VDO_SUCCESS) {
    vdo_log_error ("cannot read the journal of slab %u: %s", slab->number,
                   vdo_status_to_string (result));
    abort_scrubbing (scrubber, result);
    return;
  }
  result = apply_journal (scrubber, slab);
  if (result != VDO_SUCCESS) {
    abort_scrubbing (scrubber, result);
    return;
  }
  /* Counts never written before must all be written now. */
  if (!summary_entry (slab)->load_ref_counts)
    vdo_dirty_all_reference_blocks (slab, 0);
  save_slab (scrubber, slab);
}

static void
replay_journal (struct vdo_slab_scrubber *scrubber, struct vdo_slab *slab)
{
  block_count_t size = slab->journal.size;

  /* A dirty entry whose tail block could not be found has nothing to
   * replay: the counts stand as loaded. */
  if (slab->journal.tail <= 1) {
    save_slab (scrubber, slab);
    return;
  }
  if (scrubber->buffer == NULL) {
    scrubber->buffer = vdo_io_alloc_buffer (size * VDO_BLOCK_SIZE);
    if (scrubber->buffer == NULL) {
      abort_scrubbing (scrubber, ENOMEM);
      return;
    }
  }
  vdo_submit_vio (&scrubber->vio, vdo_slab_device (slab), VDO_IO_READ,
                  slab->journal_origin, size, scrubber->buffer, false, false,
                  journal_read, scrubber->zone->queue, scrubber);
}

static void
counts_loaded (struct vdo_completion *completion)
{
  struct vdo_slab_scrubber *scrubber = completion->parent;
  struct vdo_slab *slab = scrubber->current;

  if (completion->result != VDO_SUCCESS) {
    abort_scrubbing (scrubber, completion->result);
    return;
  }
  if (summary_entry (slab)->is_dirty)
    replay_journal (scrubber, slab);
  else
    save_slab (scrubber, slab);
}

static void
scrub_next_slab (struct vdo_slab_scrubber *scrubber)
{
  struct vdo_slab *slab;

  if (vdo_is_read_only (scrubber->zone->read_only)) {
    abort_scrubbing (scrubber, VDO_READ_ONLY);
    return;
  }
  slab = dequeue_slab (scrubber);
  if (slab == NULL) {
    finish_scrubbing (scrubber, VDO_SUCCESS);
    return;
  }
  scrubber->current = slab;
  vdo_reset_ref_counts (&slab->counts);
  /* Counts never written are all zero: nothing to read. */
  if (summary_entry (slab)->load_ref_counts) {
    vdo_prepare_completion (&slab->action, counts_loaded,
                            scrubber->zone->queue, scrubber);
    vdo_load_reference_counts (slab, &slab->action);
    return;
  }
  vdo_prepare_completion (&slab->action, counts_loaded, scrubber->zone->queue,
                          scrubber);
  counts_loaded (&slab->action);
}

void
vdo_scrub_slabs (struct vdo_slab_scrubber *scrubber,
                 struct vdo_completion *parent)
{
  scrubber->parent = parent;
  scrub_next_slab (scrubber);
}
