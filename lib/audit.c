/* nbdkit-vdo: offline audit and space accounting of a volume. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "block-map-format.h"
#include "io.h"
#include "logger.h"
#include "ref-counts-format.h"
#include "slab-summary-format.h"
#include "status.h"
#include "volume.h"
#include "volume-layout.h"

/* The walk's count for a block that an interior entry names.  Leaf
 * references stop at VDO_MAXIMUM_REFERENCE_COUNT, below this. */
#define TREE_PAGE_MARK 255

#define NO_CHILD UINT16_MAX

/* The child pages of one interior page, read ahead in as few requests
 * as their PBNs allow.  One of these per height keeps the walk
 * depth-first, in slot order, like vdoaudit's. */
struct child_batch {
  uint8_t *pages;               /* distinct children, in PBN order */
  uint16_t page_of_slot[VDO_BLOCK_MAP_ENTRIES_PER_PAGE];
  struct child {
    physical_block_number_t pbn;
    uint16_t slot;
  } children[VDO_BLOCK_MAP_ENTRIES_PER_PAGE];
};

struct audit {
  struct vdo_io *io;
  block_count_t bio_offset;
  nonce_t nonce;
  const struct vdo_component_states *states;
  const struct slab_depot_state_2_0 *depot;
  block_count_t slab_count;
  block_count_t data_blocks;            /* per slab */

  /* Per slab, the references the walk found for each data block; NULL
   * until the walk reaches the slab. */
  uint8_t **audited;
  struct child_batch *batches[VDO_BLOCK_MAP_ROOT_HEIGHT];

  vdo_audit_report_fn *report;
  void *context;
  struct vdo_audit_result *result;
};

static void report (struct audit *a, enum vdo_audit_check check,
                    const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

static void
report (struct audit *a, enum vdo_audit_check check, const char *fmt, ...)
{
  char message[256];
  va_list args;

  if (a->report == NULL)
    return;
  va_start (args, fmt);
  vsnprintf (message, sizeof message, fmt, args);
  va_end (args);
  a->report (a->context, check, message);
}

/* PBNs count from the geometry's bio offset (vdo-format.md 1.6). */
static int
read_pbns (struct audit *a, physical_block_number_t pbn, block_count_t count,
           void *buffer)
{
  if (pbn < a->bio_offset) {
    vdo_log_error ("PBN %" PRIu64 " lies before the volume's bio offset %"
                   PRIu64, pbn, a->bio_offset);
    return VDO_OUT_OF_RANGE;
  }
  return vdo_io_read_blocks (a->io, pbn - a->bio_offset, count, buffer);
}

/* The walk's counter for a data block, allocating the slab's array on
 * first use. */
static int
audited_counter (struct audit *a, block_count_t slab, block_count_t sbn,
                 uint8_t **counter)
{
  if (a->audited[slab] == NULL) {
    a->audited[slab] = calloc (a->data_blocks, 1);
    if (a->audited[slab] == NULL) {
      vdo_log_error ("cannot allocate %" PRIu64 " reference counters for "
                     "slab %" PRIu64, a->data_blocks, slab);
      return ENOMEM;
    }
  }
  *counter = &a->audited[slab][sbn];
  return VDO_SUCCESS;
}

static bool
is_slab_data_block (const struct audit *a, physical_block_number_t pbn)
{
  return pbn != VDO_ZERO_BLOCK && vdo_is_physical_data_block (a->depot, pbn);
}

static void
report_entry (struct audit *a, enum vdo_audit_check check,
              physical_block_number_t page_pbn, unsigned int slot,
              unsigned int height, struct vdo_data_location location,
              const char *problem)
{
  a->result->mapping_errors++;
  report (a, check, "block map page %" PRIu64 " slot %u (height %u) -> PBN %"
          PRIu64 " (state %u): %s", page_pbn, slot, height, location.pbn,
          (unsigned int) location.state, problem);
}

/* Check one entry (A1..A8) and record the reference it makes. */
static int
audit_entry (struct audit *a, physical_block_number_t page_pbn,
             unsigned int slot, unsigned int height,
             struct vdo_data_location location)
{
  block_count_t slab = 0, sbn = 0;
  uint8_t *counter;
  const char *invalid = NULL;
  int r;

  if (location.state == VDO_MAPPING_STATE_UNMAPPED) {
    if (location.pbn == VDO_ZERO_BLOCK)
      return VDO_SUCCESS;
    invalid = "unmapped but names a physical block";
  }
  else if (vdo_is_state_compressed (location.state)
           && location.pbn == VDO_ZERO_BLOCK)
    invalid = "compressed but names no physical block";
  else {
    if (height == 0) {
      a->result->logical_blocks_used++;
      /* A written zero block references nothing. */
      if (location.pbn == VDO_ZERO_BLOCK)
        return VDO_SUCCESS;
    }
    if (!vdo_slab_of_pbn (a->depot, location.pbn, &slab, &sbn))
      invalid = "outside the slab depot";
    else if (sbn >= a->data_blocks)
      invalid = "a slab metadata block (reference counts or slab journal)";
  }
  if (invalid != NULL) {
    report_entry (a, VDO_AUDIT_INVALID_MAPPING, page_pbn, slot, height,
                  location, invalid);
    a->result->aborted = true;
    return VDO_BAD_MAPPING;
  }

  r = audited_counter (a, slab, sbn, &counter);
  if (r != VDO_SUCCESS)
    return r;
  if (height > 0) {
    if (*counter != 0)
      report_entry (a, VDO_AUDIT_REUSED_TREE_PAGE, page_pbn, slot, height,
                    location, "tree page already referenced");
    if (vdo_is_state_compressed (location.state))
      report_entry (a, VDO_AUDIT_COMPRESSED_TREE_PAGE, page_pbn, slot, height,
                    location, "tree page in a compressed state");
    if (*counter != TREE_PAGE_MARK)
      a->result->tree_pages++;
    *counter = TREE_PAGE_MARK;
  }
  else if (*counter == TREE_PAGE_MARK)
    report_entry (a, VDO_AUDIT_BAD_LEAF_REFERENCE, page_pbn, slot, height,
                  location, "data mapped to a block map tree page");
  else if (*counter == VDO_MAXIMUM_REFERENCE_COUNT)
    report_entry (a, VDO_AUDIT_BAD_LEAF_REFERENCE, page_pbn, slot, height,
                  location, "more than 254 references to one block");
  else
    (*counter)++;
  return VDO_SUCCESS;
}

static int
compare_children (const void *x, const void *y)
{
  const struct child *cx = x, *cy = y;

  return cx->pbn < cy->pbn ? -1 : cx->pbn > cy->pbn;
}

/* Read the pages an interior page points to, each run of consecutive
 * PBNs in one request.  Only slab data blocks are read; the walk stops
 * at any other mapped PBN before it would need the page. */
static int
read_children (struct audit *a, const uint8_t *page, unsigned int height)
{
  struct child_batch *batch = a->batches[height - 1];
  block_count_t count = 0, distinct = 0, run_first = 0;
  physical_block_number_t run_pbn = 0;
  unsigned int slot;
  block_count_t i;
  int r;

  if (batch == NULL) {
    batch = calloc (1, sizeof *batch);
    if (batch == NULL
        || (batch->pages = vdo_io_alloc_buffer
              ((size_t) VDO_BLOCK_MAP_ENTRIES_PER_PAGE * VDO_BLOCK_SIZE))
           == NULL) {
      free (batch);
      return ENOMEM;
    }
    a->batches[height - 1] = batch;
  }

  for (slot = 0; slot < VDO_BLOCK_MAP_ENTRIES_PER_PAGE; slot++) {
    struct vdo_data_location location =
      vdo_get_block_map_page_entry (page, slot);

    batch->page_of_slot[slot] = NO_CHILD;
    if (location.state != VDO_MAPPING_STATE_UNMAPPED
        && is_slab_data_block (a, location.pbn)) {
      batch->children[count].pbn = location.pbn;
      batch->children[count].slot = slot;
      count++;
    }
  }
  qsort (batch->children, count, sizeof batch->children[0], compare_children);

  for (i = 0; i < count; i++) {
    const struct child *c = &batch->children[i];

    /* A page named twice (A6) is read once. */
    if (i > 0 && c->pbn == batch->children[i - 1].pbn) {
      batch->page_of_slot[c->slot] = distinct - 1;
      continue;
    }
    if (distinct > run_first && c->pbn != run_pbn + (distinct - run_first)) {
      r = read_pbns (a, run_pbn, distinct - run_first,
                     batch->pages + (size_t) VDO_BLOCK_SIZE * run_first);
      if (r != 0)
        return r;
      run_first = distinct;
    }
    if (distinct == run_first)
      run_pbn = c->pbn;
    batch->page_of_slot[c->slot] = distinct++;
  }
  if (distinct > run_first)
    return read_pbns (a, run_pbn, distinct - run_first,
                      batch->pages + (size_t) VDO_BLOCK_SIZE * run_first);
  return VDO_SUCCESS;
}

/* Audit a page read from pbn and, depth first, everything below it. */
static int
audit_page (struct audit *a, const uint8_t *page, physical_block_number_t pbn,
            unsigned int height)
{
  enum vdo_block_map_page_validity validity =
    vdo_validate_block_map_page (page, a->nonce, pbn);
  struct child_batch *batch = NULL;
  unsigned int slot;
  int r;

  if (validity == VDO_BLOCK_MAP_PAGE_BAD) {
    struct vdo_block_map_page_header header;

    vdo_decode_block_map_page_header (page, &header);
    a->result->misplaced_pages++;
    report (a, VDO_AUDIT_MISPLACED_PAGE, "block map page at PBN %" PRIu64
            " (height %u) belongs at PBN %" PRIu64 "; read as empty",
            pbn, height, header.pbn);
  }
  /* Never written by this volume: an empty page, as the kernel reads it. */
  if (validity != VDO_BLOCK_MAP_PAGE_VALID)
    return VDO_SUCCESS;

  if (height > 0) {
    r = read_children (a, page, height);
    if (r != VDO_SUCCESS)
      return r;
    batch = a->batches[height - 1];
  }
  for (slot = 0; slot < VDO_BLOCK_MAP_ENTRIES_PER_PAGE; slot++) {
    struct vdo_data_location location =
      vdo_get_block_map_page_entry (page, slot);

    r = audit_entry (a, pbn, slot, height, location);
    if (r != VDO_SUCCESS)
      return r;
    if (batch != NULL && batch->page_of_slot[slot] != NO_CHILD) {
      r = audit_page (a, batch->pages + (size_t) VDO_BLOCK_SIZE
                      * batch->page_of_slot[slot], location.pbn, height - 1);
      if (r != VDO_SUCCESS)
        return r;
    }
  }
  return VDO_SUCCESS;
}

static int
walk_block_map (struct audit *a)
{
  const struct block_map_state_2_0 *map = &a->states->block_map;
  uint8_t *roots;
  block_count_t root;
  int result;

  roots = vdo_io_alloc_buffer ((size_t) map->root_count * VDO_BLOCK_SIZE);
  if (roots == NULL)
    return ENOMEM;
  result = read_pbns (a, map->root_origin, map->root_count, roots);
  for (root = 0; result == VDO_SUCCESS && root < map->root_count; root++)
    result = audit_page (a, roots + (size_t) VDO_BLOCK_SIZE * root,
                         map->root_origin + root, VDO_BLOCK_MAP_ROOT_HEIGHT);
  vdo_io_free_buffer (roots);
  return result;
}

/* The whole summary partition, or NULL in *summary when it was never
 * written (zone count 0). */
static int
read_slab_summary (struct audit *a, uint8_t **summary)
{
  const struct vdo_partition *partition =
    vdo_layout_find_partition (&a->states->layout, VDO_SLAB_SUMMARY_PARTITION);
  unsigned int zone_count = a->depot->zone_count;
  int r;

  *summary = NULL;
  if (zone_count == 0) {
    a->result->summary_unwritten = true;
    /* A new volume simply has none yet; anything else lost it. */
    if (a->states->state != VDO_NEW)
      vdo_log_warning ("the slab summary was never written (depot zone "
                       "count 0): every slab is taken as unused and free "
                       "space hints are not checked");
    return VDO_SUCCESS;
  }
  if (zone_count > VDO_MAX_PHYSICAL_ZONES) {
    vdo_log_error ("the super block records %u physical zones, more than "
                   "the %d the slab summary has room for", zone_count,
                   VDO_MAX_PHYSICAL_ZONES);
    return UDS_CORRUPT_DATA;
  }
  if (partition == NULL || partition->count < VDO_SLAB_SUMMARY_BLOCKS) {
    vdo_log_error ("the layout has no slab summary of %d blocks",
                   VDO_SLAB_SUMMARY_BLOCKS);
    return UDS_CORRUPT_DATA;
  }
  *summary = vdo_io_alloc_buffer ((size_t) VDO_SLAB_SUMMARY_BLOCKS
                                  * VDO_BLOCK_SIZE);
  if (*summary == NULL)
    return ENOMEM;
  r = read_pbns (a, partition->offset, VDO_SLAB_SUMMARY_BLOCKS, *summary);
  if (r != 0) {
    vdo_io_free_buffer (*summary);
    *summary = NULL;
  }
  return r;
}

/* The authoritative entry: from the region of zone slab mod zone_count
 * (A10). */
static struct slab_summary_entry
summary_entry (const struct audit *a, const uint8_t *summary,
               block_count_t slab)
{
  unsigned int zone =
    vdo_slab_summary_zone_for_slab (slab, a->depot->zone_count);

  return vdo_decode_slab_summary_entry
    (summary + (size_t) VDO_BLOCK_SIZE
     * vdo_slab_summary_block_for_slab (zone, slab)
     + vdo_slab_summary_entry_offset (slab));
}

/* Reference count errors of one slab, for its summary line. */
struct slab_errors {
  uint64_t count;
  block_count_t first_sbn;
  block_count_t last_sbn;
};

static void
report_count (struct audit *a, struct slab_errors *errors, block_count_t slab,
              block_count_t sbn, uint8_t audited, uint8_t stored,
              bool pristine)
{
  physical_block_number_t pbn = vdo_slab_origin (a->depot, slab) + sbn;

  if (errors->count == 0)
    errors->first_sbn = sbn;
  errors->last_sbn = sbn;
  errors->count++;
  a->result->reference_count_errors++;
  if (audited == TREE_PAGE_MARK)
    report (a, VDO_AUDIT_REFERENCE_COUNT, "PBN %" PRIu64 " is a block map "
            "tree page but slab %" PRIu64 " stores %u%s (expected 254)",
            pbn, slab, stored, pristine ? " (never written)" : "");
  else
    report (a, VDO_AUDIT_REFERENCE_COUNT, "PBN %" PRIu64 ": the block map "
            "has %u reference%s but slab %" PRIu64 " stores %u%s", pbn,
            audited, audited == 1 ? "" : "s", slab, stored,
            pristine ? " (never written)" : "");
}

/* Compare one stored counter with the walk's (A12); returns whether the
 * block counts as allocated for the hint check. */
static bool
compare_counter (struct audit *a, struct slab_errors *errors,
                 block_count_t slab, block_count_t sbn, uint8_t audited,
                 uint8_t stored)
{
  /* Tree pages are stored as 254; a count of 1 is also accepted. */
  if (audited == TREE_PAGE_MARK) {
    if (stored == 1 || stored == VDO_MAXIMUM_REFERENCE_COUNT)
      return true;
    report_count (a, errors, slab, sbn, audited, stored, false);
    return false;
  }
  if (audited != stored) {
    /* A provisional count that was written out is free. */
    if (audited == 0 && stored == VDO_PROVISIONAL_REFERENCE_COUNT)
      return false;
    report_count (a, errors, slab, sbn, audited, stored, false);
  }
  return stored != 0;
}

/* Compare one slab's stored counts with the walk's (A11, A12), add to
 * the space figures, and return the free count for the hint check. */
static int
verify_slab (struct audit *a, block_count_t slab,
             const struct slab_summary_entry *entry, uint8_t *ref_blocks,
             struct slab_errors *errors, block_count_t *free_blocks)
{
  const uint8_t *audited = a->audited[slab];
  block_count_t used_blocks = vdo_reference_blocks_used (a->data_blocks);
  block_count_t allocated = 0, b, i, sbn;
  int r;

  if (!entry->load_ref_counts) {
    /* Never written: every stored count is 0. */
    for (sbn = 0; audited != NULL && sbn < a->data_blocks; sbn++)
      if (audited[sbn] != 0)
        report_count (a, errors, slab, sbn, audited[sbn], 0, true);
    *free_blocks = a->data_blocks;
    return VDO_SUCCESS;
  }

  r = read_pbns (a, vdo_slab_reference_range (a->depot, slab).start,
                 used_blocks, ref_blocks);
  if (r != 0)
    return r;
  for (b = 0, sbn = 0; b < used_blocks; b++) {
    uint8_t counters[VDO_COUNTS_PER_BLOCK];
    struct journal_point points[VDO_SECTORS_PER_BLOCK];

    vdo_decode_reference_block (ref_blocks + (size_t) VDO_BLOCK_SIZE * b,
                                counters, points);
    for (i = 0; i < VDO_COUNTS_PER_BLOCK && sbn < a->data_blocks; i++, sbn++) {
      uint8_t stored = counters[i];
      uint8_t walked = audited != NULL ? audited[sbn] : 0;
      bool loaded_in_use = vdo_reference_count_from_disk (stored) != 0;

      if (compare_counter (a, errors, slab, sbn, walked, stored))
        allocated++;
      if (loaded_in_use) {
        a->result->allocated_blocks++;
        if (walked != TREE_PAGE_MARK)
          a->result->data_blocks_used++;
      }
    }
  }
  *free_blocks = a->data_blocks - allocated;
  return VDO_SUCCESS;
}

/* A13: the hint h stands for about h << shift free blocks, give or take
 * one step. */
static void
check_hint (struct audit *a, block_count_t slab,
            const struct slab_summary_entry *entry, block_count_t free_blocks)
{
  unsigned int slab_bits = __builtin_ctzll (a->depot->slab_config.slab_blocks);
  unsigned int shift = vdo_slab_summary_hint_shift (slab_bits);
  block_count_t step = (block_count_t) 1 << shift;
  block_count_t hinted = (block_count_t) entry->fullness_hint << shift;
  block_count_t low = (hinted > step ? hinted : step) - step;

  if (free_blocks >= low && free_blocks < hinted + step)
    return;
  a->result->hint_errors++;
  report (a, VDO_AUDIT_FREE_HINT, "slab %" PRIu64 ": the summary hint %u "
          "says about %" PRIu64 " free blocks, but %" PRIu64 " are free",
          slab, entry->fullness_hint, hinted, free_blocks);
}

static int
verify_reference_counts (struct audit *a)
{
  block_count_t used_blocks = vdo_reference_blocks_used (a->data_blocks);
  uint8_t *summary = NULL, *ref_blocks = NULL;
  block_count_t slab;
  int r;

  if (used_blocks > a->depot->slab_config.reference_count_blocks) {
    vdo_log_error ("slabs of %" PRIu64 " data blocks need %" PRIu64
                   " reference blocks, but have only %" PRIu64,
                   a->data_blocks, used_blocks,
                   a->depot->slab_config.reference_count_blocks);
    return UDS_CORRUPT_DATA;
  }
  r = read_slab_summary (a, &summary);
  if (r != VDO_SUCCESS)
    return r;
  ref_blocks = vdo_io_alloc_buffer ((size_t) used_blocks * VDO_BLOCK_SIZE);
  if (ref_blocks == NULL) {
    vdo_io_free_buffer (summary);
    return ENOMEM;
  }

  for (slab = 0; slab < a->slab_count; slab++) {
    struct slab_summary_entry entry = { 0 };
    struct slab_errors errors = { 0 };
    block_count_t free_blocks;

    if (summary != NULL)
      entry = summary_entry (a, summary, slab);
    r = verify_slab (a, slab, &entry, ref_blocks, &errors, &free_blocks);
    if (r != VDO_SUCCESS)
      break;
    if (summary != NULL)
      check_hint (a, slab, &entry, free_blocks);
    if (errors.count > 0) {
      a->result->error_slabs++;
      report (a, VDO_AUDIT_SLAB_ERRORS, "slab %" PRIu64 " at PBN %" PRIu64
              " has %" PRIu64 " reference count error%s in SBN range [%"
              PRIu64 " .. %" PRIu64 "]", slab,
              vdo_slab_origin (a->depot, slab), errors.count,
              errors.count == 1 ? "" : "s", errors.first_sbn,
              errors.last_sbn);
    }
    /* Done with this slab's walk counts. */
    free (a->audited[slab]);
    a->audited[slab] = NULL;
  }
  vdo_io_free_buffer (ref_blocks);
  vdo_io_free_buffer (summary);
  return r;
}

int
vdo_audit_volume (struct vdo_volume *volume, vdo_audit_report_fn *report_fn,
                  void *context, struct vdo_audit_result *result)
{
  const struct vdo_component_states *states = vdo_volume_get_states (volume);
  struct audit a = {
    .io = vdo_volume_get_io (volume),
    .bio_offset = vdo_volume_get_geometry (volume)->bio_offset,
    .nonce = states->nonce,
    .states = states,
    .depot = &states->slab_depot,
    .slab_count = vdo_volume_slab_count (volume),
    .data_blocks = states->slab_depot.slab_config.data_blocks,
    .report = report_fn,
    .context = context,
    .result = result,
  };
  block_count_t slab;
  int h, r;

  memset (result, 0, sizeof *result);
  result->saved_logical_blocks_used = states->recovery_journal.logical_blocks_used;
  result->saved_tree_pages = states->recovery_journal.block_map_data_blocks;
  result->slab_data_blocks = a.slab_count * a.data_blocks;

  a.audited = calloc (a.slab_count > 0 ? a.slab_count : 1,
                      sizeof a.audited[0]);
  if (a.audited == NULL)
    return ENOMEM;
  r = walk_block_map (&a);
  for (h = 0; h < VDO_BLOCK_MAP_ROOT_HEIGHT; h++) {
    if (a.batches[h] != NULL)
      vdo_io_free_buffer (a.batches[h]->pages);
    free (a.batches[h]);
  }
  if (r == VDO_SUCCESS) {
    if (result->logical_blocks_used != result->saved_logical_blocks_used)
      report (&a, VDO_AUDIT_LOGICAL_COUNT, "the super block records %"
              PRIu64 " logical blocks used, the block map maps %" PRIu64,
              result->saved_logical_blocks_used,
              result->logical_blocks_used);
    r = verify_reference_counts (&a);
  }
  for (slab = 0; slab < a.slab_count; slab++)
    free (a.audited[slab]);
  free (a.audited);
  return r;
}

bool
vdo_audit_passed (const struct vdo_audit_result *result)
{
  return !result->aborted
         && result->logical_blocks_used == result->saved_logical_blocks_used
         && result->misplaced_pages == 0 && result->mapping_errors == 0
         && result->reference_count_errors == 0 && result->hint_errors == 0;
}

void
vdo_compute_volume_stats (const struct vdo_component_states *states,
                          const struct vdo_audit_result *audit,
                          struct vdo_volume_stats *stats)
{
  block_count_t used;

  memset (stats, 0, sizeof *stats);
  stats->logical_blocks = states->config.logical_blocks;
  stats->logical_blocks_used = states->recovery_journal.logical_blocks_used;
  stats->logical_blocks_mapped = audit->logical_blocks_used;
  stats->physical_blocks = states->config.physical_blocks;
  stats->data_blocks_used = audit->data_blocks_used;
  stats->block_map_blocks = audit->tree_pages;
  /* As the kernel's vdo_get_physical_blocks_overhead: the blocks outside
   * slab data, plus the tree pages allocated from it. */
  stats->overhead_blocks_used = stats->physical_blocks
                                - audit->slab_data_blocks + audit->tree_pages;
  stats->free_blocks = audit->slab_data_blocks - audit->allocated_blocks;

  used = stats->data_blocks_used + stats->overhead_blocks_used;
  stats->kib_total = stats->physical_blocks * (VDO_BLOCK_SIZE / 1024);
  stats->kib_used = used * (VDO_BLOCK_SIZE / 1024);
  stats->kib_available = used <= stats->physical_blocks
                         ? (stats->physical_blocks - used)
                           * (VDO_BLOCK_SIZE / 1024) : 0;
  stats->used_percent = stats->physical_blocks == 0 ? 0
    : (int) (100.0 * used / stats->physical_blocks + 0.5);
  /* vdostats: the share of used logical blocks that needed no block of
   * their own, truncated. */
  if (stats->logical_blocks_used == 0)
    stats->saving_percent = 0;
  else if (stats->data_blocks_used > stats->logical_blocks_used)
    stats->saving_percent = -1;
  else
    stats->saving_percent =
      (int) (100.0 * (stats->logical_blocks_used - stats->data_blocks_used)
             / stats->logical_blocks_used);
}
