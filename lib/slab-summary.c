/* nbdkit-vdo: slab summary regions, their updates and their load. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "slab-summary.h"
#include "status.h"

#define ENTRIES_PER_ZONE VDO_MAX_SLABS

static void launch_block_write (struct vdo_slab_summary_block *block);

int
vdo_make_slab_summary (physical_block_number_t origin,
                       block_count_t summary_blocks,
                       const struct vdo_block_device *device,
                       struct vdo_read_only_notifier *read_only,
                       unsigned int zone_count, struct vdo_work_queue **queues,
                       unsigned int slab_bits, block_count_t data_blocks,
                       struct vdo_slab_summary **summary_ret)
{
  struct vdo_slab_summary *s;
  unsigned int z, b;

  *summary_ret = NULL;
  if (summary_blocks != VDO_SLAB_SUMMARY_BLOCKS) {
    vdo_log_error ("slab summary partition has %" PRIu64 " blocks, expected %d",
                   summary_blocks, VDO_SLAB_SUMMARY_BLOCKS);
    return VDO_BAD_CONFIGURATION;
  }
  if (zone_count == 0 || zone_count > VDO_MAX_PHYSICAL_ZONES) {
    vdo_log_error ("%u physical zones requested; 1 to %d are supported",
                   zone_count, VDO_MAX_PHYSICAL_ZONES);
    return VDO_BAD_CONFIGURATION;
  }

  s = calloc (1, sizeof *s);
  if (s == NULL)
    goto nomem;
  s->origin = origin;
  s->device = device;
  s->read_only = read_only;
  s->zone_count = zone_count;
  s->slab_bits = slab_bits;
  s->hint_shift = vdo_slab_summary_hint_shift (slab_bits);
  s->data_blocks = data_blocks;
  s->entries = calloc ((size_t) VDO_MAX_PHYSICAL_ZONES * ENTRIES_PER_ZONE,
                       sizeof *s->entries);
  if (s->entries == NULL)
    goto nomem;

  for (z = 0; z < VDO_MAX_PHYSICAL_ZONES; z++) {
    struct vdo_slab_summary_zone *zone = &s->zones[z];

    zone->summary = s;
    zone->zone_number = z;
    zone->entries = s->entries + (size_t) z * ENTRIES_PER_ZONE;
    if (z >= zone_count)
      continue;
    zone->queue = queues[z];
    for (b = 0; b < VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE; b++) {
      zone->blocks[b].zone = zone;
      zone->blocks[b].index = b;
      zone->blocks[b].buffer = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
      if (zone->blocks[b].buffer == NULL)
        goto nomem;
    }
  }
  *summary_ret = s;
  return VDO_SUCCESS;

 nomem:
  vdo_free_slab_summary (s);
  vdo_log_error ("cannot allocate the slab summary");
  return ENOMEM;
}

void
vdo_free_slab_summary (struct vdo_slab_summary *s)
{
  unsigned int z, b;

  if (s == NULL)
    return;
  for (z = 0; z < VDO_MAX_PHYSICAL_ZONES; z++)
    for (b = 0; b < VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE; b++)
      vdo_io_free_buffer (s->zones[z].blocks[b].buffer);
  vdo_io_free_buffer (s->load_buffer);
  free (s->entries);
  free (s);
}

uint8_t
vdo_slab_summary_hint (const struct vdo_slab_summary *s,
                       block_count_t free_blocks)
{
  return vdo_compute_fullness_hint (free_blocks, s->hint_shift);
}

block_count_t
vdo_slab_summary_free_from_hint (const struct vdo_slab_summary *s,
                                 uint8_t hint)
{
  return (block_count_t) hint << s->hint_shift;
}

/* --- Load --------------------------------------------------------------- */

static void
finish_load (struct vdo_slab_summary *s, int result)
{
  struct vdo_completion *parent = s->load_parent;

  vdo_io_free_buffer (s->load_buffer);
  s->load_buffer = NULL;
  s->load_parent = NULL;
  vdo_finish_completion (parent, result);
}

static void
summary_written (struct vdo_completion *completion)
{
  struct vdo_slab_summary *s = completion->parent;
  int result = completion->result;

  if (result != VDO_SUCCESS) {
    vdo_log_error ("cannot write the slab summary: %s",
                   vdo_status_to_string (result));
    vdo_enter_read_only_mode (s->read_only, result);
  }
  finish_load (s, result);
}

/* Every region gets the combined table of region 0, as the kernel writes
 * it at load, so a later load with any zone count finds it. */
static void
write_all_regions (struct vdo_slab_summary *s)
{
  unsigned int z, b;

  for (z = 1; z < VDO_MAX_PHYSICAL_ZONES; z++)
    memcpy (s->zones[z].entries, s->zones[0].entries,
            ENTRIES_PER_ZONE * sizeof *s->entries);
  for (z = 0; z < VDO_MAX_PHYSICAL_ZONES; z++)
    for (b = 0; b < VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE; b++) {
      block_count_t index = vdo_slab_summary_zone_first_block (z) + b;

      vdo_encode_slab_summary_block
        (s->load_buffer + index * VDO_BLOCK_SIZE,
         s->zones[z].entries + (size_t) b * VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK);
    }
  if (vdo_is_read_only (s->read_only)) {
    finish_load (s, VDO_READ_ONLY);
    return;
  }
  vdo_submit_vio (&s->load_vio, s->device, VDO_IO_WRITE, s->origin,
                  VDO_SLAB_SUMMARY_BLOCKS, s->load_buffer, false, false,
                  summary_written, s->load_parent->queue, s);
}

static void
summary_read (struct vdo_completion *completion)
{
  struct vdo_slab_summary *s = completion->parent;
  unsigned int slab;

  if (completion->result != VDO_SUCCESS) {
    vdo_log_error ("cannot read the slab summary: %s",
                   vdo_status_to_string (completion->result));
    vdo_enter_read_only_mode (s->read_only, completion->result);
    finish_load (s, completion->result);
    return;
  }
  for (slab = 0; slab < ENTRIES_PER_ZONE; slab++) {
    unsigned int zone =
      vdo_slab_summary_zone_for_slab (slab, s->old_zone_count);
    const uint8_t *block =
      s->load_buffer
      + vdo_slab_summary_block_for_slab (zone, slab) * VDO_BLOCK_SIZE;

    s->zones[0].entries[slab] =
      vdo_decode_slab_summary_entry (block
                                     + vdo_slab_summary_entry_offset (slab));
  }
  write_all_regions (s);
}

void
vdo_load_slab_summary (struct vdo_slab_summary *s, bool use_defaults,
                       unsigned int old_zone_count,
                       struct vdo_completion *parent)
{
  unsigned int slab;

  s->load_parent = parent;
  s->old_zone_count = old_zone_count;
  s->load_buffer = vdo_io_alloc_buffer ((size_t) VDO_SLAB_SUMMARY_BLOCKS
                                        * VDO_BLOCK_SIZE);
  if (s->load_buffer == NULL) {
    s->load_parent = NULL;
    vdo_finish_completion (parent, ENOMEM);
    return;
  }

  if (use_defaults || old_zone_count == 0) {
    struct slab_summary_entry entry =
      vdo_default_slab_summary_entry (s->data_blocks, s->slab_bits);

    for (slab = 0; slab < ENTRIES_PER_ZONE; slab++)
      s->zones[0].entries[slab] = entry;
    write_all_regions (s);
    return;
  }
  if (old_zone_count > VDO_MAX_PHYSICAL_ZONES) {
    vdo_log_error ("the super block records %u physical zones; at most %d"
                   " exist", old_zone_count, VDO_MAX_PHYSICAL_ZONES);
    finish_load (s, VDO_BAD_CONFIGURATION);
    return;
  }
  vdo_submit_vio (&s->load_vio, s->device, VDO_IO_READ, s->origin,
                  VDO_SLAB_SUMMARY_BLOCKS, s->load_buffer, false, false,
                  summary_read, parent->queue, s);
}

/* --- Updates ------------------------------------------------------------ */

static void
notify_waiters (struct vdo_summary_waiter *list, int result)
{
  while (list != NULL) {
    struct vdo_summary_waiter *waiter = list;

    list = waiter->next;
    waiter->next = NULL;
    waiter->callback (waiter, result);
  }
}

static void
block_write_done (struct vdo_completion *completion)
{
  struct vdo_slab_summary_block *block = completion->parent;
  struct vdo_slab_summary *s = block->zone->summary;
  struct vdo_summary_waiter *done = block->current_waiters;
  int result = completion->result;

  if (result != VDO_SUCCESS && result != VDO_READ_ONLY) {
    vdo_log_error ("cannot write slab summary block %u of zone %u: %s",
                   block->index, block->zone->zone_number,
                   vdo_status_to_string (result));
    vdo_enter_read_only_mode (s->read_only, result);
    result = VDO_READ_ONLY;
  }
  block->current_waiters = NULL;
  block->writing = false;
  /* Updates made during this write get the next one, started before the
   * callbacks run so they see a consistent state. */
  if (block->next_waiters != NULL) {
    block->current_waiters = block->next_waiters;
    block->next_waiters = NULL;
    launch_block_write (block);
  }
  notify_waiters (done, result);
}

static void
launch_block_write (struct vdo_slab_summary_block *block)
{
  struct vdo_slab_summary_zone *zone = block->zone;
  struct vdo_slab_summary *s = zone->summary;
  const struct slab_summary_entry *entries =
    zone->entries + (size_t) block->index * VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK;

  block->writing = true;
  if (vdo_is_read_only (s->read_only)) {
    /* No write: fail the waiters from the queue, never from inside the
     * caller's own stack. */
    vdo_prepare_completion (&block->vio.completion, block_write_done,
                            zone->queue, block);
    vdo_finish_completion (&block->vio.completion, VDO_READ_ONLY);
    return;
  }
  vdo_encode_slab_summary_block (block->buffer, entries);
  /* PREFLUSH: what the entries point at must be durable first. */
  vdo_submit_vio (&block->vio, s->device, VDO_IO_WRITE,
                  s->origin + vdo_slab_summary_zone_first_block
                                (zone->zone_number) + block->index,
                  1, block->buffer, true, false, block_write_done,
                  zone->queue, block);
}

static void
append_waiter (struct vdo_summary_waiter **list,
               struct vdo_summary_waiter *waiter)
{
  waiter->next = NULL;
  while (*list != NULL)
    list = &(*list)->next;
  *list = waiter;
}

void
vdo_update_slab_summary_entry (struct vdo_slab_summary_zone *zone,
                               struct vdo_summary_waiter *waiter,
                               unsigned int slab, uint8_t tail_block_offset,
                               bool load_ref_counts, bool is_dirty,
                               block_count_t free_blocks)
{
  struct vdo_slab_summary_block *block =
    &zone->blocks[slab / VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK];
  struct slab_summary_entry *entry = &zone->entries[slab];

  entry->tail_block_offset = tail_block_offset;
  entry->load_ref_counts = entry->load_ref_counts || load_ref_counts;
  entry->is_dirty = is_dirty;
  entry->fullness_hint = vdo_slab_summary_hint (zone->summary, free_blocks);

  if (block->writing) {
    append_waiter (&block->next_waiters, waiter);
    return;
  }
  append_waiter (&block->current_waiters, waiter);
  launch_block_write (block);
}

bool
vdo_slab_summary_zone_is_busy (const struct vdo_slab_summary_zone *zone)
{
  unsigned int b;

  for (b = 0; b < VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE; b++)
    if (zone->blocks[b].writing)
      return true;
  return false;
}
