/* nbdkit-vdo: offline audit and space accounting of a volume
 * (vdo-journals.md 9): what vdoaudit checks and what vdostats reports,
 * computed from the metadata on disk.
 *
 * One pass walks every block map tree down from its root, counting the
 * mapped leaf entries and the references each slab data block should
 * have; a second pass reads each slab's reference blocks and summary
 * entry and compares.  Nothing is written, and the volume need not be
 * clean: a dirty one is audited as it was last saved.
 *
 * Memory: one byte per data block of each slab the block map refers to
 * (allocated when the walk first reaches the slab, released once the slab
 * is compared), so at most one byte per data block of the volume; plus
 * the slab summary (256 KiB), one slab's reference blocks (at most 8.2
 * MiB), and up to 812 pages per tree level for batched page reads.
 */
#ifndef VDO_AUDIT_H
#define VDO_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "super-block.h"

struct vdo_volume;

/* What a report is about; A1..A13 are the invariants of
 * vdo-journals.md 9. */
enum vdo_audit_check {
  /* A valid tree page stored at another PBN; the walk ignores it. */
  VDO_AUDIT_MISPLACED_PAGE,
  /* A1, A2, A4, A5: an entry no volume can hold.  The walk stops. */
  VDO_AUDIT_INVALID_MAPPING,
  /* A6: a tree page that something else already refers to. */
  VDO_AUDIT_REUSED_TREE_PAGE,
  /* A7: an interior entry in a compressed state. */
  VDO_AUDIT_COMPRESSED_TREE_PAGE,
  /* A8: a leaf entry naming a tree page, or a 255th reference. */
  VDO_AUDIT_BAD_LEAF_REFERENCE,
  /* A9: the super block's logical_blocks_used differs from the walk. */
  VDO_AUDIT_LOGICAL_COUNT,
  /* A11, A12: a stored reference count differs from the walk. */
  VDO_AUDIT_REFERENCE_COUNT,
  /* One line per slab with reference count errors: how many, where. */
  VDO_AUDIT_SLAB_ERRORS,
  /* A13: a slab summary fullness hint far from the free count. */
  VDO_AUDIT_FREE_HINT,
};

/* Receives each problem as one line of text, as it is found. */
typedef void vdo_audit_report_fn (void *context, enum vdo_audit_check check,
                                  const char *message);

struct vdo_audit_result {
  /* The walk stopped at an invalid mapping; the counts below the
   * mapping counters are then incomplete or zero. */
  bool aborted;
  /* The depot zone count is 0: the summary was never written, so every
   * slab is taken as never used and hints are not checked. */
  bool summary_unwritten;

  block_count_t logical_blocks_used;        /* mapped leaf entries (A3) */
  block_count_t saved_logical_blocks_used;  /* the super block's */
  block_count_t tree_pages;                 /* distinct pages below roots */
  block_count_t saved_tree_pages;           /* block_map_data_blocks */

  /* From the stored reference counts, as the kernel loads them (255 is
   * free).  data_blocks_used leaves out blocks the walk found to be tree
   * pages. */
  block_count_t slab_data_blocks;           /* all slabs */
  block_count_t allocated_blocks;
  block_count_t data_blocks_used;

  /* Problems, by kind. */
  uint64_t misplaced_pages;
  uint64_t mapping_errors;                  /* A1..A8 */
  uint64_t reference_count_errors;          /* A11, A12 */
  block_count_t error_slabs;
  block_count_t hint_errors;                /* A13 */
};

/* Walk the block map and compare it with the reference counts, the
 * super block and the slab summary, reporting each problem through
 * REPORT (which may be NULL).  Returns VDO_SUCCESS once everything was
 * compared, whatever the outcome (see vdo_audit_passed);
 * VDO_BAD_MAPPING if the walk stopped at an invalid entry, as vdoaudit
 * does; UDS_CORRUPT_DATA for a depot zone count above 16; otherwise an
 * I/O or memory error, logged. */
int vdo_audit_volume (struct vdo_volume *volume, vdo_audit_report_fn *report,
                      void *context, struct vdo_audit_result *result);

/* Whether everything matched: the logical block count, every reference
 * count and hint, and no mapping or page problem at all.  vdoaudit
 * itself lets A6..A8 and misplaced pages pass. */
bool vdo_audit_passed (const struct vdo_audit_result *result);

/* vdostats' space figures, from the super block and an audit. */
struct vdo_volume_stats {
  block_count_t logical_blocks;             /* config */
  block_count_t logical_blocks_used;        /* the super block's */
  block_count_t logical_blocks_mapped;      /* the walk's, a cross-check */
  block_count_t physical_blocks;            /* config */
  block_count_t data_blocks_used;
  /* Blocks that can never hold data (everything but slab data blocks)
   * plus the block map tree pages, as the kernel counts them. */
  block_count_t overhead_blocks_used;
  block_count_t block_map_blocks;           /* tree pages found */
  block_count_t free_blocks;                /* slab data blocks at 0 */
  uint64_t kib_total;                       /* "1K-blocks" */
  uint64_t kib_used;
  uint64_t kib_available;
  int used_percent;                         /* rounded */
  /* Truncated like vdostats; 0 with nothing used, -1 (N/A) when more
   * blocks hold data than logical blocks are used. */
  int saving_percent;
};

void vdo_compute_volume_stats (const struct vdo_component_states *states,
                               const struct vdo_audit_result *audit,
                               struct vdo_volume_stats *stats);

#endif /* VDO_AUDIT_H */
