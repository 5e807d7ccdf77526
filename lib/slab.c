/* nbdkit-vdo: a slab's setup, and its drains. */
#include <config.h>

#include <limits.h>
#include <string.h>

#include "physical-zone.h"
#include "slab.h"
#include "status.h"

int
vdo_init_slab (struct vdo_slab *slab, struct vdo_physical_zone *zone,
               unsigned int number, physical_block_number_t origin,
               const struct slab_config *config, nonce_t nonce)
{
  int result;

  memset (slab, 0, sizeof *slab);
  slab->zone = zone;
  slab->number = number;
  slab->origin = origin;
  slab->reference_origin = origin + config->data_blocks;
  slab->journal_origin = slab->reference_origin
                         + config->reference_count_blocks;
  slab->status = VDO_SLAB_UNLOADED;
  result = vdo_init_ref_counts (&slab->counts, config->data_blocks);
  if (result != VDO_SUCCESS)
    return result;
  result = vdo_init_slab_journal (&slab->journal, config, nonce);
  if (result != VDO_SUCCESS) {
    vdo_uninit_ref_counts (&slab->counts);
    return result;
  }
  return VDO_SUCCESS;
}

void
vdo_uninit_slab (struct vdo_slab *slab)
{
  vdo_uninit_slab_journal (&slab->journal);
  vdo_uninit_ref_counts (&slab->counts);
}

bool
vdo_slab_is_read_only (const struct vdo_slab *slab)
{
  return vdo_is_read_only (slab->zone->read_only);
}

int
vdo_slab_enter_read_only (const struct vdo_slab *slab, int error)
{
  return vdo_enter_read_only_mode (slab->zone->read_only, error);
}

struct vdo_slab_summary_zone *
vdo_slab_summary_of (const struct vdo_slab *slab)
{
  return slab->zone->summary;
}

const struct vdo_block_device *
vdo_slab_device (const struct vdo_slab *slab)
{
  return slab->zone->device;
}

struct vdo_work_queue *
vdo_slab_queue (const struct vdo_slab *slab)
{
  return slab->zone->queue;
}

/* --- Drains ------------------------------------------------------------- */

static bool
io_in_flight (const struct vdo_slab *slab)
{
  return vdo_slab_journal_is_busy (&slab->journal)
         || vdo_ref_counts_are_busy (&slab->counts);
}

/* Whether the summary entry must still change for a clean slab: it says
 * dirty, or its hint no longer matches the counts. */
static bool
summary_is_stale (const struct vdo_slab *slab)
{
  struct vdo_slab_summary_zone *summary = vdo_slab_summary_of (slab);
  const struct slab_summary_entry *entry =
    vdo_get_slab_summary_entry (summary, slab->number);

  if (entry->is_dirty)
    return true;
  return entry->load_ref_counts
         && entry->fullness_hint
            != vdo_slab_summary_hint (summary->summary,
                                      slab->counts.free_blocks);
}

static void
finish_drain (struct vdo_slab *slab, int result)
{
  struct vdo_completion *parent = slab->drain_parent;

  slab->drain_mode = VDO_SLAB_NOT_DRAINING;
  slab->drain_parent = NULL;
  vdo_finish_completion (parent, result);
}

/* One step at a time: each write started here completes through
 * vdo_check_slab_progress, which comes back for the next step.  A step
 * that started nothing (read-only mode arrived meanwhile) is followed at
 * once by the next check, so a drain never waits for nothing. */
static void
continue_drain (struct vdo_slab *slab)
{
  struct vdo_slab_journal *journal = &slab->journal;
  struct vdo_ref_counts *counts = &slab->counts;
  enum vdo_slab_drain_mode mode = slab->drain_mode;

  for (;;) {
    if (vdo_slab_is_read_only (slab)) {
      vdo_fail_slab_journal_waiters (slab, VDO_READ_ONLY);
      if (!io_in_flight (slab))
        finish_drain (slab, VDO_READ_ONLY);
      return;
    }
    /* Updates still queued make entries first. */
    if (journal->waiters_head != NULL)
      return;
    if ((mode == VDO_SLAB_DRAIN_SAVE || mode == VDO_SLAB_DRAIN_RECOVERY)
        && journal->tail_header.entry_count > 0) {
      vdo_commit_slab_journal_tail (slab);
    }
    /* The journal's summary update must land before the clean one, or
     * it would leave the entry dirty. */
    else if (vdo_slab_journal_is_busy (journal)) {
      return;
    }
    else if (mode == VDO_SLAB_DRAIN_RECOVERY
             || (mode == VDO_SLAB_DRAIN_SAVE
                 && slab->status != VDO_SLAB_REBUILT)) {
      finish_drain (slab, VDO_SUCCESS);
      return;
    }
    else if (counts->writes_in_flight > 0 || counts->clean_update_in_flight) {
      return;
    }
    else if (counts->dirty_count > 0) {
      vdo_save_dirty_reference_blocks (slab, UINT_MAX);
    }
    else if (summary_is_stale (slab)) {
      vdo_request_clean_summary (slab);
    }
    else {
      finish_drain (slab, VDO_SUCCESS);
      return;
    }
    if (io_in_flight (slab))
      return;
  }
}

void
vdo_start_slab_drain (struct vdo_slab *slab, enum vdo_slab_drain_mode mode,
                      struct vdo_completion *parent)
{
  slab->drain_mode = mode;
  slab->drain_parent = parent;
  if (mode == VDO_SLAB_DRAIN_REBUILD) {
    const struct slab_summary_entry *entry =
      vdo_get_slab_summary_entry (vdo_slab_summary_of (slab), slab->number);

    if (entry->load_ref_counts
        || slab->counts.free_blocks != slab->counts.data_blocks)
      vdo_dirty_all_reference_blocks (slab, 0);
  }
  continue_drain (slab);
}

void
vdo_check_slab_progress (struct vdo_slab *slab)
{
  vdo_slab_journal_add_entries (slab);
  if (slab->drain_mode != VDO_SLAB_NOT_DRAINING)
    continue_drain (slab);
}
