/* nbdkit-vdo: loading the slab depot from what is on disk: scrubbing
 * dirty slab journals (per-sector commit points included), corrupt
 * journals, the recovery and rebuild hooks, and a volume written by the
 * real dm-vdo code. */
#include <config.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ref-counts-format.h"
#include "slab-depot-test-util.h"
#include "slab-journal-format.h"
#include "status.h"
#include "unit-suites.h"

/* --- Scrubbing ----------------------------------------------------------- */

/* After a clean save of slab 0 with five blocks at count 1 (journal
 * block 1, reference blocks at point (1, 4)), write journal block 2 and
 * a dirty summary entry, as a crash after the block's summary update
 * would leave them.  CORRUPT puts a copy of block 2 in block 1's slot. */
static void
plant_dirty_journal (bool corrupt)
{
  struct vdo_pbn_range journal =
    vdo_slab_journal_range (&sd.states.slab_depot, 0);
  struct slab_journal_block_header header = {
    .head = 1,
    .sequence_number = 2,
    .recovery_point = { 9, 7 },
    .nonce = sd.states.nonce,
    .metadata_type = VDO_METADATA_SLAB_JOURNAL,
    .has_block_map_increments = true,
    .entry_count = 4,
  };
  struct slab_journal_entry entries[4] = {
    { .sbn = 0, .increment = false },
    { .sbn = 1, .increment = true },
    { .sbn = 10, .increment = true, .is_block_map = true },
    { .sbn = 5000, .increment = true },
  };
  uint8_t *block = sd_alloc_blocks (1);
  struct slab_summary_entry entry = {
    .tail_block_offset = 3,
    .fullness_hint = 62,
    .load_ref_counts = true,
    .is_dirty = true,
  };

  ck_assert_int_eq (vdo_encode_slab_journal_block (block, &header, entries),
                    VDO_SUCCESS);
  sd_write_blocks (journal.start + 2, 1, block);
  if (corrupt)
    sd_write_blocks (journal.start + 1, 1, block);
  sd_read_blocks (sd_summary_origin (), 1, block);
  vdo_encode_slab_summary_entry (block + vdo_slab_summary_entry_offset (0),
                                 &entry);
  sd_write_blocks (sd_summary_origin (), 1, block);
  vdo_io_free_buffer (block);
}

/* Tear slab 0's first reference block as a crash during its write would:
 * sector 0 keeps an older write, made after entry (1, 2), when blocks 3
 * and 4 were still provisional. */
static void
tear_reference_block (void)
{
  struct vdo_pbn_range range =
    vdo_slab_reference_range (&sd.states.slab_depot, 0);
  uint8_t *block = sd_alloc_blocks (1);
  uint8_t counters[VDO_COUNTS_PER_BLOCK];
  struct journal_point points[VDO_SECTORS_PER_BLOCK];

  sd_read_blocks (range.start, 1, block);
  vdo_decode_reference_block (block, counters, points);
  ck_assert_uint_eq (points[0].entry_count, 4);
  points[0].entry_count = 2;
  counters[3] = counters[4] = VDO_PROVISIONAL_REFERENCE_COUNT;
  vdo_encode_reference_block_sectors (block, counters, points);
  sd_write_blocks (range.start, 1, block);
  vdo_io_free_buffer (block);
}

START_TEST (test_scrub_replays_dirty_journal)
{
  physical_block_number_t pbns[5];
  physical_block_number_t origin;
  struct slab_summary_entry summary;
  struct journal_point points[2][VDO_SECTORS_PER_BLOCK];
  struct sd_journal_state state = { .slab = 0 };
  uint8_t *stored = malloc (8192);
  block_count_t data_blocks;
  unsigned int i;

  sd_format_small_volume ();
  data_blocks = sd_slab_config ()->data_blocks;
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  sd_allocate (0, 5, pbns);
  for (i = 0; i < 5; i++)
    ck_assert_int_eq (sd_update_now (pbns[i], VDO_DATA_INCREMENT), VDO_SUCCESS);
  sd_save_and_stop ();

  sd_start_env (1);
  plant_dirty_journal (false);
  tear_reference_block ();
  sd_stop_env ();

  sd_start_depot (1, VDO_DEPOT_LOAD_CLEAN);
  origin = vdo_slab_origin (&sd.states.slab_depot, 0);
  /* Block 1's entries were in the counts already (commit point (1, 4)),
   * except in the torn sector, which replays (1, 3) and (1, 4); then
   * block 2 applies, its block-map entry from 0 to 254. */
  ck_assert_uint_eq (sd_count_of (origin + 0), 0);
  ck_assert_uint_eq (sd_count_of (origin + 1), 2);
  for (i = 2; i < 5; i++)
    ck_assert_uint_eq (sd_count_of (origin + i), 1);
  ck_assert_uint_eq (sd_count_of (origin + 10), VDO_MAXIMUM_REFERENCE_COUNT);
  ck_assert_uint_eq (sd_count_of (origin + 5000), 1);
  sd_run_on_zone (0, sd_get_journal_state, &state);
  ck_assert_int_eq (state.status, VDO_SLAB_REBUILT);
  ck_assert_uint_eq (state.tail, 3);
  ck_assert_uint_eq (state.head, 3);

  /* The scrubber wrote both reference blocks and marked the slab
   * clean. */
  summary = sd_read_summary_entry (0, 1);
  ck_assert (!summary.is_dirty);
  ck_assert (summary.load_ref_counts);
  ck_assert_uint_eq (summary.tail_block_offset, 3);
  sd_read_reference_blocks (0, stored, points);
  ck_assert_uint_eq (stored[0], 0);
  ck_assert_uint_eq (stored[1], 2);
  ck_assert_uint_eq (stored[10], VDO_MAXIMUM_REFERENCE_COUNT);
  ck_assert_uint_eq (stored[5000], 1);
  ck_assert_uint_eq (points[0][0].sequence_number, 2);
  ck_assert_uint_eq (points[0][0].entry_count, 3);
  ck_assert_uint_eq (points[1][7].sequence_number, 2);
  ck_assert_uint_eq (sd_count_of (origin + data_blocks - 1), 0);
  sd_stop_env ();

  /* Loading again changes nothing. */
  sd_start_depot (1, VDO_DEPOT_LOAD_CLEAN);
  ck_assert_uint_eq (sd_count_of (origin + 1), 2);
  ck_assert_uint_eq (sd_count_of (origin + 10), VDO_MAXIMUM_REFERENCE_COUNT);
  sd_stop_env ();
  free (stored);
  sd_remove_image ();
}
END_TEST

START_TEST (test_scrub_rejects_corrupt_journal)
{
  physical_block_number_t pbn;

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  sd_allocate (0, 1, &pbn);
  ck_assert_int_eq (sd_update_now (pbn, VDO_DATA_INCREMENT), VDO_SUCCESS);
  sd_save_and_stop ();

  sd_start_env (1);
  plant_dirty_journal (true);
  sd_stop_env ();

  sd_start_env (1);
  ck_assert_int_eq (sd_make_depot (), VDO_SUCCESS);
  ck_assert_int_eq (sd_load_depot (VDO_DEPOT_LOAD_CLEAN), VDO_CORRUPT_JOURNAL);
  ck_assert (vdo_is_read_only (sd.read_only));
  sd_stop_env ();
  sd_remove_image ();
}
END_TEST

/* --- Recovery and rebuild hooks ----------------------------------------- */

static int
drain_for (void (*drain_fn) (struct slab_depot *, struct vdo_completion *))
{
  struct sd_sync_call call;

  sd_sync_call_init (&call, sd.test_queue);
  drain_fn (sd.depot, &call.completion);
  return sd_sync_call_wait (&call);
}

struct replay_args {
  physical_block_number_t pbn;
  enum vdo_reference_operation operation;
  struct journal_point point;
  int result;
};

static void
replay_on_zone (void *arg)
{
  struct replay_args *a = arg;

  /* No recovery journal point: a rebuild's count. */
  if (a->point.sequence_number == 0)
    a->result = vdo_rebuild_reference_count (sd.depot, a->pbn, a->operation);
  else
    a->result = vdo_replay_into_slab_depot (sd.depot, a->pbn, a->operation,
                                            &a->point);
}

static int
replay (physical_block_number_t pbn, enum vdo_reference_operation operation,
        struct journal_point point)
{
  struct replay_args a = { pbn, operation, point, 0 };

  sd_run_on_zone (vdo_physical_zone_of_pbn (sd.depot, pbn), replay_on_zone, &a);
  return a.result;
}

START_TEST (test_recovery_replay_then_scrub)
{
  physical_block_number_t pbns[3], origin;
  struct sd_journal_state state = { .slab = 0 };
  struct slab_summary_entry summary;
  unsigned int i;

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  sd_allocate (0, 3, pbns);
  for (i = 0; i < 3; i++)
    ck_assert_int_eq (sd_update_now (pbns[i], VDO_DATA_INCREMENT), VDO_SUCCESS);
  sd_save_and_stop ();
  origin = vdo_slab_origin (&sd.states.slab_depot, 0);

  /* The recovery journal holds the three increments again, then two more
   * entries the crash lost from the slab journal. */
  sd_start_depot (1, VDO_DEPOT_LOAD_FOR_RECOVERY);
  sd_run_on_zone (0, sd_get_journal_state, &state);
  ck_assert_int_eq (state.status, VDO_SLAB_REPLAYING);
  for (i = 0; i < 3; i++)
    ck_assert_int_eq (replay (pbns[i], VDO_DATA_INCREMENT,
                              (struct journal_point) { 1, i }), VDO_SUCCESS);
  ck_assert_int_eq (replay (origin + 3, VDO_DATA_INCREMENT,
                            (struct journal_point) { 1, 3 }), VDO_SUCCESS);
  ck_assert_int_eq (replay (pbns[0], VDO_DATA_DECREMENT,
                            (struct journal_point) { 1, 3 }), VDO_SUCCESS);
  /* No counter changed while replaying. */
  ck_assert_uint_eq (sd_count_of (origin + 3), 0);
  ck_assert_int_eq (drain_for (vdo_drain_slab_depot_for_recovery),
                    VDO_SUCCESS);
  summary = sd_read_summary_entry (0, 1);
  ck_assert (summary.is_dirty);
  ck_assert_uint_eq (summary.tail_block_offset, 3);
  {
    struct vdo_pbn_range journal =
      vdo_slab_journal_range (&sd.states.slab_depot, 0);
    uint8_t *block = sd_alloc_blocks (1);
    struct slab_journal_block_header header;
    struct slab_journal_entry entries[VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK];

    sd_read_blocks (journal.start + 2, 1, block);
    ck_assert_uint_eq (vdo_decode_slab_journal_block (block, &header, entries),
                       2);
    ck_assert_uint_eq (header.sequence_number, 2);
    ck_assert_uint_eq (header.recovery_point.sequence_number, 1);
    ck_assert_uint_eq (header.recovery_point.entry_count, 7);
    ck_assert_uint_eq (entries[0].sbn, 3);
    ck_assert (entries[0].increment);
    ck_assert (!entries[1].increment);
    vdo_io_free_buffer (block);
  }

  /* Scrubbing applies them and opens the slabs. */
  {
    struct sd_sync_call call;

    sd_sync_call_init (&call, sd.test_queue);
    vdo_scrub_slab_depot (sd.depot, &call.completion);
    ck_assert_int_eq (sd_sync_call_wait (&call), VDO_SUCCESS);
  }
  ck_assert_uint_eq (sd_count_of (pbns[0]), 0);
  ck_assert_uint_eq (sd_count_of (pbns[1]), 1);
  ck_assert_uint_eq (sd_count_of (origin + 3), 1);
  summary = sd_read_summary_entry (0, 1);
  ck_assert (!summary.is_dirty);
  sd.rj_point = (struct journal_point) { 2, 0 };
  ck_assert_int_eq (sd_update_now (pbns[1], VDO_DATA_INCREMENT), VDO_SUCCESS);
  ck_assert_uint_eq (sd_count_of (pbns[1]), 2);
  sd_save_and_stop ();
  sd_remove_image ();
}
END_TEST

START_TEST (test_rebuild_load_and_drain)
{
  physical_block_number_t origin;
  struct vdo_pbn_range journal;
  struct slab_summary_entry summary;
  struct journal_point points[2][VDO_SECTORS_PER_BLOCK];
  uint8_t *block = sd_alloc_blocks (1);
  uint8_t *stored = malloc (8192);
  physical_block_number_t pbns[2];

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  sd_allocate (0, 2, pbns);
  ck_assert_int_eq (sd_update_now (pbns[0], VDO_DATA_INCREMENT), VDO_SUCCESS);
  ck_assert_int_eq (sd_update_now (pbns[1], VDO_BLOCK_MAP_INCREMENT),
                    VDO_SUCCESS);
  sd_save_and_stop ();
  origin = vdo_slab_origin (&sd.states.slab_depot, 0);
  journal = vdo_slab_journal_range (&sd.states.slab_depot, 0);

  sd_start_depot (1, VDO_DEPOT_LOAD_FOR_REBUILD);
  /* Journals zeroed, counts zero, default summary. */
  sd_read_blocks (journal.start + 1, 1, block);
  ck_assert_uint_eq (block[8], 0);
  ck_assert_uint_eq (sd_count_of (pbns[0]), 0);
  summary = sd_read_summary_entry (0, 1);
  ck_assert (!summary.load_ref_counts);
  /* The tree walk and the leaves, as the rebuild would find them. */
  ck_assert_int_eq (replay (origin + 7, VDO_BLOCK_MAP_INCREMENT,
                            (struct journal_point) { 0, 0 }), VDO_SUCCESS);
  ck_assert_int_eq (replay (origin + 7, VDO_BLOCK_MAP_INCREMENT,
                            (struct journal_point) { 0, 0 }),
                    VDO_REF_COUNT_INVALID);
  ck_assert_int_eq (replay (origin + 8, VDO_DATA_INCREMENT,
                            (struct journal_point) { 0, 0 }), VDO_SUCCESS);
  ck_assert_int_eq (replay (origin + 8, VDO_DATA_INCREMENT,
                            (struct journal_point) { 0, 0 }), VDO_SUCCESS);
  ck_assert (!vdo_is_read_only (sd.read_only));
  ck_assert_int_eq (drain_for (vdo_drain_slab_depot_for_rebuild), VDO_SUCCESS);

  summary = sd_read_summary_entry (0, 1);
  ck_assert (summary.load_ref_counts);
  ck_assert (!summary.is_dirty);
  ck_assert_uint_eq (summary.tail_block_offset, 0);
  sd_read_reference_blocks (0, stored, points);
  ck_assert_uint_eq (stored[7], VDO_MAXIMUM_REFERENCE_COUNT);
  ck_assert_uint_eq (stored[8], 2);
  ck_assert_uint_eq (stored[0], 0);
  ck_assert_uint_eq (points[0][0].sequence_number, 0);
  ck_assert_uint_eq (points[1][7].sequence_number, 0);
  /* Untouched slabs keep the default entry. */
  summary = sd_read_summary_entry (1, 1);
  ck_assert (!summary.load_ref_counts);
  vdo_record_slab_depot (sd.depot, &sd.states.slab_depot);
  sd_stop_env ();

  sd_start_depot (1, VDO_DEPOT_LOAD_CLEAN);
  ck_assert_uint_eq (sd_count_of (origin + 7), VDO_MAXIMUM_REFERENCE_COUNT);
  ck_assert_uint_eq (sd_count_of (origin + 8), 2);
  sd_stop_env ();
  vdo_io_free_buffer (block);
  free (stored);
  sd_remove_image ();
}
END_TEST

/* --- A volume written by dm-vdo ------------------------------------------ */

static const char *
fixtures_dir (void)
{
  const char *dir = getenv ("VDO_FIXTURES");

  return dir != NULL && dir[0] ? dir : "/work/shared/fixtures";
}

/* Restore the image once into a cache other runs reuse, then work on a
 * sparse copy: loading writes the summary. */
static bool
copy_written_clean (void)
{
  char compressed[PATH_MAX], cache[128], partial[160];
  char command[2 * PATH_MAX];
  struct stat st;

  snprintf (compressed, sizeof compressed, "%s/written-clean.img.zst",
            fixtures_dir ());
  if (stat (compressed, &st) != 0)
    return false;
  snprintf (cache, sizeof cache, "/tmp/vdo-test-cache-%u/written-clean.img",
            (unsigned int) getuid ());
  if (stat (cache, &st) != 0) {
    snprintf (command, sizeof command, "mkdir -p \"$(dirname '%s')\"", cache);
    ck_assert_int_eq (system (command), 0);
    snprintf (partial, sizeof partial, "%s.%d", cache, (int) getpid ());
    snprintf (command, sizeof command,
              "zstd -q -d --sparse '%s' -o '%s' && mv '%s' '%s'",
              compressed, partial, partial, cache);
    if (system (command) != 0) {
      unlink (partial);
      ck_abort_msg ("cannot restore %s", compressed);
    }
  }
  sd_make_temp_dir ();
  snprintf (command, sizeof command, "cp --sparse=always '%s' '%s'", cache,
            sd.image);
  ck_assert_int_eq (system (command), 0);
  return true;
}

/* Counts vdoaudit expects, from vdodumpblockmap's listing: tree pages
 * 254, data blocks one per leaf mapping. */
static void
expected_fixture_counts (uint8_t *expected)
{
  char path[PATH_MAX], line[256];
  FILE *listing;
  block_count_t data_blocks = sd_slab_config ()->data_blocks;
  unsigned int lines = 0;

  snprintf (path, sizeof path, "%s/written-clean.dumpblockmap.txt",
            fixtures_dir ());
  listing = fopen (path, "r");
  ck_assert_ptr_nonnull (listing);
  while (fgets (line, sizeof line, listing) != NULL) {
    unsigned long long page, slot, height, target;
    block_count_t slab, offset;

    if (sscanf (line, "PBN %llu slot %llu height %llu -> PBN %llu", &page,
                &slot, &height, &target) != 4)
      continue;
    lines++;
    if (target == 0)
      continue;
    ck_assert (vdo_slab_of_pbn (&sd.states.slab_depot, target, &slab,
                                &offset));
    ck_assert_uint_lt (offset, data_blocks);
    if (height > 0)
      expected[slab * data_blocks + offset] = VDO_MAXIMUM_REFERENCE_COUNT;
    else
      expected[slab * data_blocks + offset]++;
  }
  fclose (listing);
  ck_assert_uint_eq (lines, 592);
}

START_TEST (test_load_written_clean_fixture)
{
  unsigned int zone_count = _i;
  struct sd_snapshot loaded;
  struct vdo_slab_depot_statistics stats;
  struct sd_journal_state state = { .slab = 0 };
  block_count_t data_blocks, n, i, allocated = 0;
  unsigned int shift = vdo_slab_summary_hint_shift (15);
  uint8_t *expected, *stored;
  uint8_t *summary = sd_alloc_blocks (VDO_SLAB_SUMMARY_BLOCKS);

  if (!copy_written_clean ()) {
    fprintf (stderr, "test-slab-depot: %s/written-clean.img.zst is absent;"
             " skipping the fixture load\n", fixtures_dir ());
    vdo_io_free_buffer (summary);
    return;
  }
  sd_read_states ();
  ck_assert_uint_eq (sd.states.state, VDO_CLEAN);
  ck_assert_uint_eq (sd.states.nonce, 1795625259610131ull);
  ck_assert_uint_eq (sd.states.slab_depot.first_block, 679189);
  ck_assert_uint_eq (sd.states.slab_depot.zone_count, 1);
  ck_assert_uint_eq (sd_slab_count (), 42);
  ck_assert_uint_eq (sd_summary_origin (), 2097088);
  data_blocks = sd_slab_config ()->data_blocks;
  ck_assert_uint_eq (data_blocks, 32535);

  sd_start_depot (zone_count, VDO_DEPOT_LOAD_CLEAN);
  ck_assert (!vdo_is_read_only (sd.read_only));
  sd_take_snapshot (&loaded);

  /* Slab 0's journal ends at block 1 (summary offset 2), clean. */
  sd_run_on_zone (0, sd_get_journal_state, &state);
  ck_assert_uint_eq (state.tail, 2);
  ck_assert_uint_eq (state.head, 2);

  /* vdoaudit's verdict on the block map, counter by counter. */
  expected = calloc (sd_slab_count (), data_blocks);
  stored = malloc (data_blocks);
  ck_assert_ptr_nonnull (expected);
  expected_fixture_counts (expected);
  ck_assert_mem_eq (loaded.counts, expected, sd_slab_count () * data_blocks);

  sd_read_blocks (sd_summary_origin (), VDO_SLAB_SUMMARY_BLOCKS, summary);
  for (n = 1; n < VDO_MAX_PHYSICAL_ZONES; n++)
    ck_assert_mem_eq (summary, summary + n * 4 * VDO_BLOCK_SIZE,
                      4 * VDO_BLOCK_SIZE);
  for (n = 0; n < sd_slab_count (); n++) {
    struct slab_summary_entry entry =
      vdo_decode_slab_summary_entry (summary
                                     + vdo_slab_summary_entry_offset (n));
    const uint8_t *counts = loaded.counts + n * data_blocks;
    block_count_t used = 0, free_blocks, h = entry.fullness_hint;
    block_count_t unit = (block_count_t) 1 << shift;

    for (i = 0; i < data_blocks; i++)
      used += counts[i] != 0;
    allocated += used;
    free_blocks = data_blocks - used;
    ck_assert_uint_eq (loaded.free_blocks[n], free_blocks);
    if (!entry.load_ref_counts) {
      /* A11 */
      ck_assert_uint_eq (used, 0);
    }
    else {
      /* A12: the stored counts are what was loaded. */
      sd_read_reference_blocks (n, stored, NULL);
      ck_assert_mem_eq (stored, counts, data_blocks);
    }
    /* A13 */
    ck_assert_uint_le ((h << shift > unit ? h << shift : unit) - unit,
                       free_blocks);
    ck_assert_uint_lt (free_blocks, (h << shift) + unit);
  }
  ck_assert_uint_gt (allocated, 0);
  vdo_get_slab_depot_statistics (sd.depot, &stats);
  ck_assert_uint_eq (stats.allocated_blocks, allocated);
  ck_assert_uint_eq (stats.free_blocks,
                     sd_slab_count () * data_blocks - allocated);

  /* A clean save of an untouched depot writes no slab metadata. */
  ck_assert_int_eq (sd_drain_depot (), VDO_SUCCESS);
  vdo_get_slab_depot_statistics (sd.depot, &stats);
  ck_assert_uint_eq (stats.reference_blocks_written, 0);
  ck_assert_uint_eq (stats.slab_journal_blocks_written, 0);
  sd_stop_env ();

  sd_free_snapshot (&loaded);
  free (expected);
  free (stored);
  vdo_io_free_buffer (summary);
  sd_remove_image ();
}
END_TEST

Suite *
slab_depot_load_suite (void)
{
  Suite *s = suite_create ("slab-depot-load");
  TCase *tc = tcase_create ("load");

  /* Real files, real threads and fdatasync: allow for slow disks. */
  tcase_set_timeout (tc, 600);
  tcase_add_test (tc, test_scrub_replays_dirty_journal);
  tcase_add_test (tc, test_scrub_rejects_corrupt_journal);
  tcase_add_test (tc, test_recovery_replay_then_scrub);
  tcase_add_test (tc, test_rebuild_load_and_drain);
  tcase_add_loop_test (tc, test_load_written_clean_fixture, 1, 3);
  suite_add_tcase (s, tc);
  return s;
}
