/* nbdkit-vdo: one slab of the depot (vdo-journals.md 2): its reference
 * counters, its journal, and the state that ties them together.
 *
 * A slab belongs to physical zone (number mod zone count) and is touched
 * only on that zone's queue.  Its background work (journal block writes,
 * summary updates, reference block writes, reaping flushes) completes
 * there too; each completion calls vdo_check_slab_progress, which lets
 * waiting updates proceed and advances a drain.
 */
#ifndef VDO_SLAB_H
#define VDO_SLAB_H

#include <stdbool.h>

#include "constants.h"
#include "ref-counts.h"
#include "slab-journal.h"
#include "work-queue.h"

struct vdo_physical_zone;

enum vdo_slab_status {
  VDO_SLAB_UNLOADED,            /* nothing read yet */
  VDO_SLAB_REQUIRES_SCRUBBING,  /* counts not yet rebuilt from the journal */
  VDO_SLAB_REPLAYING,           /* recovery appends entries, no counts */
  VDO_SLAB_REBUILT,             /* counts exact: usable */
};

/* What a drain finishes. */
enum vdo_slab_drain_mode {
  VDO_SLAB_NOT_DRAINING,
  /* Clean save (8.4): commit the tail, then (if rebuilt) write every
   * dirty reference block and leave the summary entry clean. */
  VDO_SLAB_DRAIN_SAVE,
  /* After scrubbing (4.7 step 6): write dirty reference blocks and leave
   * the summary entry clean. */
  VDO_SLAB_DRAIN_SCRUBBED,
  /* After recovery replay (7.3 R9): commit the tail only. */
  VDO_SLAB_DRAIN_RECOVERY,
  /* After a read-only rebuild (7.4 B9): write every reference block of a
   * slab with any reference and leave the summary entry clean. */
  VDO_SLAB_DRAIN_REBUILD,
};

struct vdo_slab {
  struct vdo_physical_zone *zone;
  unsigned int number;
  physical_block_number_t origin;               /* first data block */
  physical_block_number_t reference_origin;     /* first reference block */
  physical_block_number_t journal_origin;
  enum vdo_slab_status status;

  struct vdo_ref_counts counts;
  struct vdo_slab_journal journal;

  /* Allocation: the zone's priority table (or a load or scrub list). */
  unsigned int priority;
  struct vdo_slab *prev, *next;
  bool in_table;

  /* Load, scrub and drain steps report here; the zone sets its
   * callback. */
  struct vdo_completion action;

  enum vdo_slab_drain_mode drain_mode;
  struct vdo_completion *drain_parent;
};

int vdo_init_slab (struct vdo_slab *slab, struct vdo_physical_zone *zone,
                   unsigned int number, physical_block_number_t origin,
                   const struct slab_config *config, nonce_t nonce);
void vdo_uninit_slab (struct vdo_slab *slab);

static inline struct vdo_slab *
vdo_slab_of_counts (struct vdo_ref_counts *counts)
{
  return (struct vdo_slab *) ((char *) counts
                              - __builtin_offsetof (struct vdo_slab, counts));
}

static inline struct vdo_slab *
vdo_slab_of_journal (struct vdo_slab_journal *journal)
{
  return (struct vdo_slab *) ((char *) journal
                              - __builtin_offsetof (struct vdo_slab, journal));
}

/* Start a drain; PARENT is finished on the zone queue (VDO_SUCCESS or
 * VDO_READ_ONLY) once everything MODE asks for is written. */
void vdo_start_slab_drain (struct vdo_slab *slab,
                           enum vdo_slab_drain_mode mode,
                           struct vdo_completion *parent);

/* Called after every piece of a slab's background work completes. */
void vdo_check_slab_progress (struct vdo_slab *slab);

/* Shorthands for the zone's shared pieces. */
bool vdo_slab_is_read_only (const struct vdo_slab *slab);
int vdo_slab_enter_read_only (const struct vdo_slab *slab, int error);
struct vdo_slab_summary_zone *vdo_slab_summary_of (const struct vdo_slab *slab);
const struct vdo_block_device *vdo_slab_device (const struct vdo_slab *slab);
struct vdo_work_queue *vdo_slab_queue (const struct vdo_slab *slab);

#endif /* VDO_SLAB_H */
