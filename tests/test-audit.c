/* nbdkit-vdo: the offline audit and stats on a small volume whose block
 * map, reference counts and summary are written here, first consistent
 * and then with one thing wrong at a time. */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "block-map-format.h"
#include "ref-counts-format.h"
#include "slab-summary-format.h"
#include "status.h"
#include "unit-suites.h"
#include "volume.h"
#include "volume-layout.h"

/* The smallest volume with a 0.25 GB index, in 8192-block slabs. */
#define IMAGE_BYTES (3ull << 30)
#define SLAB_BITS 13

static char image_dir[] = "/tmp/vdo-audit.XXXXXX";
static char image[64];

/* The formatted volume, as opened before any test changed it. */
static struct vdo_component_states base_states;
static physical_block_number_t super_block_pbn;

/* Where the test tree lives: tree 0 only, pages in slab 0.  The leaves
 * are not in slot order, and two of them are adjacent, so the batched
 * reads must sort and split the runs. */
static physical_block_number_t origin0, origin1;
#define H3 (origin0 + 10)
#define H2 (origin0 + 11)
#define H1 (origin0 + 12)
#define LEAF_A (origin0 + 20)   /* height-1 slot 0: LBNs 0..811 */
#define LEAF_B (origin0 + 14)   /* slot 1: leaf page 60 */
#define LEAF_C (origin0 + 15)   /* slot 2: leaf page 120 */
#define DATA_X (origin0 + 100)  /* two LBNs (dedupe) */
#define DATA_Z (origin0 + 101)  /* a compressed block, two fragments */
#define DATA_Y (origin0 + 102)
#define DATA_S1 (origin1 + 7)   /* in slab 1 */
#define MAPPED_LBNS 7
#define TREE_PAGES 6

static void
write_blocks (physical_block_number_t pbn, const uint8_t *buf,
              block_count_t count)
{
  int fd = open (image, O_WRONLY);

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pwrite (fd, buf, count * VDO_BLOCK_SIZE,
                            (off_t) pbn * VDO_BLOCK_SIZE),
                    (ssize_t) (count * VDO_BLOCK_SIZE));
  close (fd);
}

static void
format_image (void)
{
  struct vdo_format_options options = { .slab_bits = SLAB_BITS };
  struct vdo_format_result result;
  struct vdo_volume *volume;
  int fd;

  ck_assert_ptr_nonnull (mkdtemp (image_dir));
  snprintf (image, sizeof image, "%s/volume.img", image_dir);
  fd = open (image, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, IMAGE_BYTES), 0);
  close (fd);
  ck_assert_int_eq (vdo_volume_format (image, &options, &result),
                    VDO_SUCCESS);
  ck_assert_int_eq (vdo_volume_open (image, false, &volume), VDO_SUCCESS);
  base_states = *vdo_volume_get_states (volume);
  super_block_pbn = vdo_volume_super_block_pbn (volume);
  vdo_volume_close (volume);
  origin0 = vdo_slab_origin (&base_states.slab_depot, 0);
  origin1 = vdo_slab_origin (&base_states.slab_depot, 1);
}

static void
remove_image (void)
{
  unlink (image);
  rmdir (image_dir);
}

/* What a test may change before the volume is written. */
struct scenario {
  struct vdo_component_states states;
  uint8_t roots[VDO_BLOCK_MAP_ROOT_COUNT][VDO_BLOCK_SIZE];
  uint8_t h3[VDO_BLOCK_SIZE], h2[VDO_BLOCK_SIZE], h1[VDO_BLOCK_SIZE];
  uint8_t leaf_a[VDO_BLOCK_SIZE], leaf_b[VDO_BLOCK_SIZE];
  uint8_t leaf_c[VDO_BLOCK_SIZE];
  uint8_t counts0[2 * VDO_COUNTS_PER_BLOCK];   /* slab 0, by sbn */
  uint8_t counts1[2 * VDO_COUNTS_PER_BLOCK];
  struct slab_summary_entry summary[VDO_SLAB_SUMMARY_BLOCKS
                                    * VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK];
};

static struct scenario sc;

static void
page (uint8_t *buf, physical_block_number_t pbn)
{
  vdo_format_block_map_page (buf, base_states.nonce, pbn, true);
}

/* A consistent volume: the tree above, counts to match, hints to match,
 * and a clean super block that records it. */
static void
build_consistent (void)
{
  block_count_t data_blocks = base_states.slab_depot.slab_config.data_blocks;
  block_count_t slabs = vdo_depot_slab_count (&base_states.slab_depot);
  unsigned int shift = vdo_slab_summary_hint_shift (SLAB_BITS);
  block_count_t s;
  int r;

  memset (&sc, 0, sizeof sc);
  sc.states = base_states;
  sc.states.state = VDO_CLEAN;
  sc.states.slab_depot.zone_count = 1;
  sc.states.recovery_journal.logical_blocks_used = MAPPED_LBNS;
  sc.states.recovery_journal.block_map_data_blocks = TREE_PAGES;

  for (r = 0; r < VDO_BLOCK_MAP_ROOT_COUNT; r++)
    page (sc.roots[r], base_states.block_map.root_origin + r);
  vdo_set_block_map_page_entry (sc.roots[0], 0, H3,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  page (sc.h3, H3);
  vdo_set_block_map_page_entry (sc.h3, 0, H2, VDO_MAPPING_STATE_UNCOMPRESSED);
  page (sc.h2, H2);
  vdo_set_block_map_page_entry (sc.h2, 0, H1, VDO_MAPPING_STATE_UNCOMPRESSED);
  page (sc.h1, H1);
  vdo_set_block_map_page_entry (sc.h1, 0, LEAF_A,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  vdo_set_block_map_page_entry (sc.h1, 1, LEAF_B,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  vdo_set_block_map_page_entry (sc.h1, 2, LEAF_C,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  page (sc.leaf_a, LEAF_A);
  vdo_set_block_map_page_entry (sc.leaf_a, 0, DATA_X,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  vdo_set_block_map_page_entry (sc.leaf_a, 1, DATA_X,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  /* A written zero block: a used LBN that references nothing. */
  vdo_set_block_map_page_entry (sc.leaf_a, 2, VDO_ZERO_BLOCK,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  vdo_set_block_map_page_entry (sc.leaf_a, 3, DATA_Z,
                                vdo_get_state_for_slot (0));
  vdo_set_block_map_page_entry (sc.leaf_a, 4, DATA_Z,
                                vdo_get_state_for_slot (1));
  page (sc.leaf_b, LEAF_B);
  vdo_set_block_map_page_entry (sc.leaf_b, 0, DATA_Y,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  page (sc.leaf_c, LEAF_C);
  vdo_set_block_map_page_entry (sc.leaf_c, 5, DATA_S1,
                                VDO_MAPPING_STATE_UNCOMPRESSED);

  sc.counts0[H3 - origin0] = VDO_MAXIMUM_REFERENCE_COUNT;
  sc.counts0[H2 - origin0] = VDO_MAXIMUM_REFERENCE_COUNT;
  /* vdoaudit accepts 1 for a tree page too. */
  sc.counts0[H1 - origin0] = 1;
  sc.counts0[LEAF_A - origin0] = VDO_MAXIMUM_REFERENCE_COUNT;
  sc.counts0[LEAF_B - origin0] = VDO_MAXIMUM_REFERENCE_COUNT;
  sc.counts0[LEAF_C - origin0] = VDO_MAXIMUM_REFERENCE_COUNT;
  sc.counts0[DATA_X - origin0] = 2;
  sc.counts0[DATA_Z - origin0] = 2;
  sc.counts0[DATA_Y - origin0] = 1;
  sc.counts1[DATA_S1 - origin1] = 1;

  for (s = 0; s < slabs; s++)
    sc.summary[s] = vdo_default_slab_summary_entry (data_blocks, SLAB_BITS);
  sc.summary[0].load_ref_counts = true;
  sc.summary[0].tail_block_offset = 1;
  sc.summary[0].fullness_hint = vdo_compute_fullness_hint (data_blocks - 9,
                                                           shift);
  sc.summary[1].load_ref_counts = true;
  sc.summary[1].tail_block_offset = 1;
  sc.summary[1].fullness_hint = vdo_compute_fullness_hint (data_blocks - 1,
                                                           shift);
}

static void
write_reference_blocks (block_count_t slab, const uint8_t *counts)
{
  struct vdo_pbn_range range =
    vdo_slab_reference_range (&base_states.slab_depot, slab);
  struct journal_point point = { .sequence_number = 1, .entry_count = 3 };
  uint8_t block[VDO_BLOCK_SIZE];
  block_count_t b;

  ck_assert_uint_eq (range.count, 2);
  for (b = 0; b < range.count; b++) {
    vdo_encode_reference_block (block, counts + b * VDO_COUNTS_PER_BLOCK,
                                &point);
    write_blocks (range.start + b, block, 1);
  }
}

static void
write_scenario (void)
{
  const struct vdo_partition *summary =
    vdo_layout_find_partition (&base_states.layout,
                               VDO_SLAB_SUMMARY_PARTITION);
  static uint8_t summary_blocks[VDO_SLAB_SUMMARY_BLOCKS][VDO_BLOCK_SIZE];
  uint8_t block[VDO_BLOCK_SIZE];
  int b;

  write_blocks (base_states.block_map.root_origin, sc.roots[0],
                VDO_BLOCK_MAP_ROOT_COUNT);
  write_blocks (H3, sc.h3, 1);
  write_blocks (H2, sc.h2, 1);
  write_blocks (H1, sc.h1, 1);
  write_blocks (LEAF_A, sc.leaf_a, 1);
  write_blocks (LEAF_B, sc.leaf_b, 1);
  write_blocks (LEAF_C, sc.leaf_c, 1);
  write_reference_blocks (0, sc.counts0);
  write_reference_blocks (1, sc.counts1);
  /* Zone 0's region is the only one read with one zone. */
  for (b = 0; b < VDO_SLAB_SUMMARY_BLOCKS; b++)
    vdo_encode_slab_summary_block
      (summary_blocks[b],
       sc.summary + (b % VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE)
                    * VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK);
  write_blocks (summary->offset, summary_blocks[0], VDO_SLAB_SUMMARY_BLOCKS);
  vdo_encode_super_block (block, &sc.states);
  write_blocks (super_block_pbn, block, 1);
}

/* Reports received, by kind. */
static unsigned int reports[VDO_AUDIT_FREE_HINT + 1];

static void
count_report (void *context, enum vdo_audit_check check, const char *message)
{
  (void) context;
  (void) message;
  reports[check]++;
}

static int
run_audit (struct vdo_audit_result *result)
{
  struct vdo_volume *volume;
  int r;

  write_scenario ();
  memset (reports, 0, sizeof reports);
  ck_assert_int_eq (vdo_volume_open (image, false, &volume), VDO_SUCCESS);
  r = vdo_audit_volume (volume, count_report, NULL, result);
  vdo_volume_close (volume);
  return r;
}

START_TEST (test_consistent)
{
  block_count_t data_blocks = base_states.slab_depot.slab_config.data_blocks;
  block_count_t slabs = vdo_depot_slab_count (&base_states.slab_depot);
  struct vdo_audit_result result;
  struct vdo_volume_stats stats;
  unsigned int i;

  build_consistent ();
  ck_assert_int_eq (run_audit (&result), VDO_SUCCESS);
  ck_assert (vdo_audit_passed (&result));
  for (i = 0; i <= VDO_AUDIT_FREE_HINT; i++)
    ck_assert_uint_eq (reports[i], 0);
  ck_assert (!result.aborted);
  ck_assert (!result.summary_unwritten);
  ck_assert_uint_eq (result.logical_blocks_used, MAPPED_LBNS);
  ck_assert_uint_eq (result.tree_pages, TREE_PAGES);
  ck_assert_uint_eq (result.slab_data_blocks, slabs * data_blocks);
  ck_assert_uint_eq (result.allocated_blocks, TREE_PAGES + 4);
  ck_assert_uint_eq (result.data_blocks_used, 4);

  vdo_compute_volume_stats (&sc.states, &result, &stats);
  ck_assert_uint_eq (stats.logical_blocks_used, MAPPED_LBNS);
  ck_assert_uint_eq (stats.logical_blocks_mapped, MAPPED_LBNS);
  ck_assert_uint_eq (stats.data_blocks_used, 4);
  ck_assert_uint_eq (stats.block_map_blocks, TREE_PAGES);
  ck_assert_uint_eq (stats.overhead_blocks_used,
                     sc.states.config.physical_blocks - slabs * data_blocks
                     + TREE_PAGES);
  ck_assert_uint_eq (stats.free_blocks, slabs * data_blocks - 10);
  ck_assert_uint_eq (stats.kib_total, sc.states.config.physical_blocks * 4);
  ck_assert_uint_eq (stats.kib_used + stats.kib_available, stats.kib_total);
  /* (7 - 4) / 7 = 42.9%, truncated as vdostats does. */
  ck_assert_int_eq (stats.saving_percent, 42);
}
END_TEST

START_TEST (test_new_volume_is_empty)
{
  struct vdo_audit_result result;
  struct vdo_volume *volume;

  /* Zeroed roots and a never-written summary: nothing in use. */
  build_consistent ();
  sc.states = base_states;
  memset (sc.roots, 0, sizeof sc.roots);
  write_scenario ();
  ck_assert_int_eq (vdo_volume_open (image, false, &volume), VDO_SUCCESS);
  ck_assert_int_eq (vdo_audit_volume (volume, NULL, NULL, &result),
                    VDO_SUCCESS);
  vdo_volume_close (volume);
  ck_assert (result.summary_unwritten);
  ck_assert (vdo_audit_passed (&result));
  ck_assert_uint_eq (result.logical_blocks_used, 0);
  ck_assert_uint_eq (result.tree_pages, 0);
  ck_assert_uint_eq (result.allocated_blocks, 0);
}
END_TEST

START_TEST (test_reused_tree_page)
{
  struct vdo_audit_result result;

  /* A second height-1 slot naming LEAF_B: its page is walked twice. */
  build_consistent ();
  vdo_set_block_map_page_entry (sc.h1, 7, LEAF_B,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  ck_assert_int_eq (run_audit (&result), VDO_SUCCESS);
  ck_assert_uint_eq (reports[VDO_AUDIT_REUSED_TREE_PAGE], 1);
  ck_assert_uint_eq (result.tree_pages, TREE_PAGES);
  ck_assert_uint_eq (result.logical_blocks_used, MAPPED_LBNS + 1);
  ck_assert_uint_eq (reports[VDO_AUDIT_LOGICAL_COUNT], 1);
  ck_assert_uint_eq (result.reference_count_errors, 1);   /* DATA_Y */
  ck_assert_uint_eq (result.error_slabs, 1);
  ck_assert_uint_eq (reports[VDO_AUDIT_SLAB_ERRORS], 1);
  ck_assert (!vdo_audit_passed (&result));
}
END_TEST

START_TEST (test_compressed_interior_entry)
{
  struct vdo_audit_result result;

  /* Reported, and the walk still goes below it, as vdoaudit's does. */
  build_consistent ();
  vdo_set_block_map_page_entry (sc.h2, 0, H1, vdo_get_state_for_slot (3));
  ck_assert_int_eq (run_audit (&result), VDO_SUCCESS);
  ck_assert_uint_eq (reports[VDO_AUDIT_COMPRESSED_TREE_PAGE], 1);
  ck_assert_uint_eq (result.mapping_errors, 1);
  ck_assert_uint_eq (result.logical_blocks_used, MAPPED_LBNS);
  ck_assert_uint_eq (result.reference_count_errors, 0);
  ck_assert (!vdo_audit_passed (&result));
}
END_TEST

START_TEST (test_leaf_names_tree_page)
{
  struct vdo_audit_result result;

  build_consistent ();
  vdo_set_block_map_page_entry (sc.leaf_b, 1, H2,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  sc.states.recovery_journal.logical_blocks_used++;
  ck_assert_int_eq (run_audit (&result), VDO_SUCCESS);
  ck_assert_uint_eq (reports[VDO_AUDIT_BAD_LEAF_REFERENCE], 1);
  ck_assert_uint_eq (result.reference_count_errors, 0);
  ck_assert (!vdo_audit_passed (&result));
}
END_TEST

/* Each of these stops the walk (A1, A2, A4, A5). */
START_TEST (test_invalid_mapping_stops)
{
  struct vdo_audit_result result;
  physical_block_number_t reference_block =
    vdo_slab_reference_range (&base_states.slab_depot, 0).start;

  build_consistent ();
  switch (_i) {
  case 0:
    vdo_set_block_map_page_entry (sc.leaf_a, 9, DATA_Y,
                                  VDO_MAPPING_STATE_UNMAPPED);
    break;
  case 1:
    vdo_set_block_map_page_entry (sc.leaf_a, 9, VDO_ZERO_BLOCK,
                                  vdo_get_state_for_slot (2));
    break;
  case 2:
    /* Inside the index region, before the depot. */
    vdo_set_block_map_page_entry (sc.leaf_a, 9, 5,
                                  VDO_MAPPING_STATE_UNCOMPRESSED);
    break;
  case 3:
    vdo_set_block_map_page_entry (sc.leaf_a, 9, reference_block,
                                  VDO_MAPPING_STATE_UNCOMPRESSED);
    break;
  default:
    /* An interior entry to the zero block is outside the slabs. */
    vdo_set_block_map_page_entry (sc.h1, 9, VDO_ZERO_BLOCK,
                                  VDO_MAPPING_STATE_UNCOMPRESSED);
    break;
  }
  ck_assert_int_eq (run_audit (&result), VDO_BAD_MAPPING);
  ck_assert (result.aborted);
  ck_assert_uint_eq (reports[VDO_AUDIT_INVALID_MAPPING], 1);
  ck_assert_uint_eq (reports[VDO_AUDIT_REFERENCE_COUNT], 0);
  ck_assert (!vdo_audit_passed (&result));
}
END_TEST

START_TEST (test_stored_counts)
{
  struct vdo_audit_result result;

  build_consistent ();
  /* A provisional count on a free block is free; a wrong tree page count
   * and a wrong data count are errors; so is a count in a slab whose
   * summary says nothing was ever written, where stored counts are 0. */
  sc.counts0[3000] = VDO_PROVISIONAL_REFERENCE_COUNT;
  sc.counts0[H2 - origin0] = 7;
  sc.counts0[DATA_X - origin0] = 1;
  sc.summary[1].load_ref_counts = false;
  sc.summary[1].fullness_hint = vdo_compute_fullness_hint
    (base_states.slab_depot.slab_config.data_blocks,
     vdo_slab_summary_hint_shift (SLAB_BITS));
  ck_assert_int_eq (run_audit (&result), VDO_SUCCESS);
  ck_assert_uint_eq (result.reference_count_errors, 3);
  ck_assert_uint_eq (result.error_slabs, 2);
  ck_assert_uint_eq (result.hint_errors, 0);
  /* As the kernel loads them: 255 is free, and slab 1 is not loaded. */
  ck_assert_uint_eq (result.allocated_blocks, TREE_PAGES + 3);
  ck_assert_uint_eq (result.data_blocks_used, 3);
  ck_assert (!vdo_audit_passed (&result));
}
END_TEST

START_TEST (test_fullness_hints)
{
  block_count_t data_blocks = base_states.slab_depot.slab_config.data_blocks;
  struct vdo_audit_result result;

  /* Hint h allows h << 7 - 128 <= free < h << 7 + 128 free blocks: for
   * slab 0's 7957 free blocks, 62 and 63. */
  build_consistent ();
  sc.summary[0].fullness_hint = (data_blocks - 9 + 128) >> 7;
  sc.summary[1].fullness_hint = (data_blocks - 1) >> 7;
  ck_assert_int_eq (run_audit (&result), VDO_SUCCESS);
  ck_assert_uint_eq (result.hint_errors, 0);

  sc.summary[0].fullness_hint = ((data_blocks - 9) >> 7) - 1;
  sc.summary[2].fullness_hint = 3;
  ck_assert_int_eq (run_audit (&result), VDO_SUCCESS);
  ck_assert_uint_eq (result.hint_errors, 2);
  ck_assert_uint_eq (reports[VDO_AUDIT_FREE_HINT], 2);
  ck_assert (!vdo_audit_passed (&result));
}
END_TEST

START_TEST (test_misplaced_and_unwritten_pages)
{
  struct vdo_audit_result result;

  /* LEAF_C claims another PBN: read as empty, with a report.  LEAF_B was
   * never initialized: silently empty.  Both stay tree pages. */
  build_consistent ();
  page (sc.leaf_c, LEAF_C + 1000);
  vdo_set_block_map_page_entry (sc.leaf_c, 5, DATA_S1,
                                VDO_MAPPING_STATE_UNCOMPRESSED);
  vdo_set_block_map_page_initialized (sc.leaf_b, false);
  ck_assert_int_eq (run_audit (&result), VDO_SUCCESS);
  ck_assert_uint_eq (reports[VDO_AUDIT_MISPLACED_PAGE], 1);
  ck_assert_uint_eq (result.misplaced_pages, 1);
  ck_assert_uint_eq (result.tree_pages, TREE_PAGES);
  ck_assert_uint_eq (result.logical_blocks_used, MAPPED_LBNS - 2);
  ck_assert_uint_eq (result.reference_count_errors, 2);
  ck_assert (!vdo_audit_passed (&result));
}
END_TEST

START_TEST (test_stats_percentages)
{
  struct vdo_component_states states = base_states;
  struct vdo_audit_result audit = { 0 };
  struct vdo_volume_stats stats;

  audit.slab_data_blocks = 1000;
  states.config.physical_blocks = 2000;
  states.recovery_journal.logical_blocks_used = 0;
  vdo_compute_volume_stats (&states, &audit, &stats);
  ck_assert_int_eq (stats.saving_percent, 0);
  ck_assert_int_eq (stats.used_percent, 50);
  ck_assert_uint_eq (stats.kib_available, 4000);

  /* More blocks hold data than LBNs are used: not a saving. */
  audit.data_blocks_used = 11;
  audit.allocated_blocks = 11;
  states.recovery_journal.logical_blocks_used = 10;
  vdo_compute_volume_stats (&states, &audit, &stats);
  ck_assert_int_eq (stats.saving_percent, -1);

  /* 1011 of 2000 used rounds to 51%; 2 of 3 saved truncates to 66%. */
  audit.data_blocks_used = 1;
  states.recovery_journal.logical_blocks_used = 3;
  vdo_compute_volume_stats (&states, &audit, &stats);
  ck_assert_int_eq (stats.used_percent, 50);
  ck_assert_int_eq (stats.saving_percent, 66);
  audit.data_blocks_used = 11;
  states.recovery_journal.logical_blocks_used = 1000;
  vdo_compute_volume_stats (&states, &audit, &stats);
  ck_assert_int_eq (stats.used_percent, 51);
  ck_assert_int_eq (stats.saving_percent, 98);
}
END_TEST

Suite *
audit_suite (void)
{
  Suite *s = suite_create ("audit");
  TCase *tc = tcase_create ("planted metadata");

  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, format_image, remove_image);
  tcase_add_test (tc, test_consistent);
  tcase_add_test (tc, test_new_volume_is_empty);
  tcase_add_test (tc, test_reused_tree_page);
  tcase_add_test (tc, test_compressed_interior_entry);
  tcase_add_test (tc, test_leaf_names_tree_page);
  tcase_add_loop_test (tc, test_invalid_mapping_stops, 0, 5);
  tcase_add_test (tc, test_stored_counts);
  tcase_add_test (tc, test_fullness_hints);
  tcase_add_test (tc, test_misplaced_and_unwritten_pages);
  tcase_add_test (tc, test_stats_percentages);
  suite_add_tcase (s, tc);
  return s;
}
