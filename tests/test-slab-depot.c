/* nbdkit-vdo: the runtime slab depot on real volumes: a new load,
 * allocation, reference updates and their slab journal entries, drains
 * and clean reloads, the blocking threshold, recovery journal locks, and
 * read-only mode. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ref-counts-format.h"
#include "slab-depot-test-util.h"
#include "slab-journal-format.h"
#include "status.h"
#include "unit-suites.h"

/* --- NEW load ------------------------------------------------------------ */

START_TEST (test_new_load_writes_default_summary)
{
  struct slab_summary_entry expected, entry;
  struct vdo_slab_depot_statistics stats;
  struct slab_depot_state_2_0 recorded;
  uint8_t *summary = sd_alloc_blocks (VDO_SLAB_SUMMARY_BLOCKS);
  unsigned int block, i;

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);

  expected = vdo_default_slab_summary_entry (sd_slab_config ()->data_blocks,
                                             13);
  ck_assert_uint_eq (expected.fullness_hint, 62);
  sd_read_blocks (sd_summary_origin (), VDO_SLAB_SUMMARY_BLOCKS, summary);
  for (block = 0; block < VDO_SLAB_SUMMARY_BLOCKS; block++)
    for (i = 0; i < VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK; i++) {
      const uint8_t *p = summary + block * VDO_BLOCK_SIZE
                         + VDO_SLAB_SUMMARY_ENTRY_SIZE * i;

      ck_assert_uint_eq (p[0], 0x00);
      ck_assert_uint_eq (p[1], 0x3e);
      entry = vdo_decode_slab_summary_entry (p);
      ck_assert_uint_eq (entry.fullness_hint, expected.fullness_hint);
    }

  vdo_get_slab_depot_statistics (sd.depot, &stats);
  ck_assert_uint_eq (stats.slab_count, sd_slab_count ());
  ck_assert_uint_eq (stats.data_blocks,
                     sd_slab_count () * sd_slab_config ()->data_blocks);
  ck_assert_uint_eq (stats.free_blocks, stats.data_blocks);
  ck_assert_uint_eq (stats.allocated_blocks, 0);

  vdo_record_slab_depot (sd.depot, &recorded);
  ck_assert_uint_eq (recorded.zone_count, 1);
  ck_assert_uint_eq (recorded.first_block, sd.states.slab_depot.first_block);

  ck_assert_int_eq (sd_drain_depot (), VDO_SUCCESS);
  /* Nothing was used: the drain writes nothing. */
  vdo_get_slab_depot_statistics (sd.depot, &stats);
  ck_assert_uint_eq (stats.reference_blocks_written, 0);
  ck_assert_uint_eq (stats.slab_journal_blocks_written, 0);
  sd_stop_env ();
  vdo_io_free_buffer (summary);
  sd_remove_image ();
}
END_TEST

/* --- Allocation ---------------------------------------------------------- */

START_TEST (test_allocate_until_no_space)
{
  unsigned int zone_count = _i;
  block_count_t data_blocks, total, n;
  physical_block_number_t *pbns;
  uint8_t *seen;
  struct vdo_slab_depot_statistics stats;
  unsigned int z, got = 0;

  sd_format_small_volume ();
  sd_start_depot (zone_count, VDO_DEPOT_LOAD_NEW);
  data_blocks = sd_slab_config ()->data_blocks;
  total = sd_slab_count () * data_blocks;
  pbns = calloc (total, sizeof *pbns);
  seen = calloc (total, 1);
  ck_assert_ptr_nonnull (pbns);
  ck_assert_ptr_nonnull (seen);

  for (z = 0; z < zone_count; z++) {
    struct sd_allocation a = { .zone = z, .pbns = pbns + got };

    sd_run_on_zone (z, sd_allocate_on_zone, &a);
    ck_assert_int_eq (a.last_result, VDO_NO_SPACE);
    /* The first slab of the zone, from its first block up. */
    ck_assert_uint_eq (a.pbns[0], vdo_slab_origin (&sd.states.slab_depot, z));
    ck_assert_uint_eq (a.pbns[1], a.pbns[0] + 1);
    got += a.got;
    /* Asking again still finds nothing. */
    a.got = 0;
    sd_run_on_zone (z, sd_allocate_on_zone, &a);
    ck_assert_int_eq (a.last_result, VDO_NO_SPACE);
    ck_assert_uint_eq (a.got, 0);
  }
  ck_assert_uint_eq (got, total);

  for (n = 0; n < total; n++) {
    block_count_t slab, offset;

    ck_assert (vdo_slab_of_pbn (&sd.states.slab_depot, pbns[n], &slab,
                                &offset));
    ck_assert_uint_lt (offset, data_blocks);
    ck_assert_uint_eq (seen[slab * data_blocks + offset], 0);
    seen[slab * data_blocks + offset] = 1;
  }
  ck_assert_uint_eq (sd_count_of (pbns[0]), VDO_PROVISIONAL_REFERENCE_COUNT);
  ck_assert_uint_eq (sd_count_of (pbns[total - 1]),
                     VDO_PROVISIONAL_REFERENCE_COUNT);
  vdo_get_slab_depot_statistics (sd.depot, &stats);
  ck_assert_uint_eq (stats.free_blocks, 0);
  ck_assert_uint_eq (stats.allocated_blocks, total);

  free (pbns);
  free (seen);
  ck_assert_int_eq (sd_drain_depot (), VDO_SUCCESS);
  sd_stop_env ();
  sd_remove_image ();
}
END_TEST

struct release_args {
  physical_block_number_t pbn;
  int result;
};

static void
release_on_zone (void *arg)
{
  struct release_args *a = arg;

  a->result = vdo_release_provisional_block (sd.depot, a->pbn);
}

static int
release (physical_block_number_t pbn)
{
  struct release_args a = { .pbn = pbn };

  sd_run_on_zone (vdo_physical_zone_of_pbn (sd.depot, pbn), release_on_zone,
                  &a);
  return a.result;
}

START_TEST (test_provisional_release)
{
  physical_block_number_t pbns[3];
  struct vdo_slab_depot_statistics before, after;

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  vdo_get_slab_depot_statistics (sd.depot, &before);
  sd_allocate (0, 3, pbns);
  vdo_get_slab_depot_statistics (sd.depot, &after);
  ck_assert_uint_eq (after.free_blocks, before.free_blocks - 3);

  ck_assert_int_eq (release (pbns[1]), VDO_SUCCESS);
  ck_assert_uint_eq (sd_count_of (pbns[1]), 0);
  vdo_get_slab_depot_statistics (sd.depot, &after);
  ck_assert_uint_eq (after.free_blocks, before.free_blocks - 2);
  /* Twice is a bug, as is releasing a journaled reference. */
  ck_assert_int_eq (release (pbns[1]), UDS_BAD_STATE);
  ck_assert_int_eq (sd_update_now (pbns[0], VDO_DATA_INCREMENT), VDO_SUCCESS);
  ck_assert_uint_eq (sd_count_of (pbns[0]), 1);
  ck_assert_int_eq (release (pbns[0]), UDS_BAD_STATE);
  ck_assert_int_eq (release (vdo_slab_reference_range
                               (&sd.states.slab_depot, 0).start),
                    VDO_OUT_OF_RANGE);
  ck_assert_int_eq (release (pbns[2]), VDO_SUCCESS);
  /* Released blocks are allocated again first, lowest first, so that
   * blocks written stay side by side. */
  {
    physical_block_number_t again[2];

    sd_allocate (0, 2, again);
    ck_assert_uint_eq (again[0], pbns[1]);
    ck_assert_uint_eq (again[1], pbns[2]);
  }
  ck_assert (!vdo_is_read_only (sd.read_only));
  sd_save_and_stop ();
  sd_remove_image ();
}
END_TEST

/* Reservations (physical-zone.h): a promised block is kept from every
 * other allocation until it is allocated or the promise is given up. */
struct reservation_args {
  unsigned int reserve, cancel, allocate_reserved;
  int reserve_result, allocate_result;
  physical_block_number_t first, last;
};

static void
reservations_on_zone (void *arg)
{
  struct reservation_args *a = arg;
  physical_block_number_t pbn;
  unsigned int i;

  a->reserve_result = VDO_SUCCESS;
  for (i = 0; i < a->reserve && a->reserve_result == VDO_SUCCESS; i++)
    a->reserve_result = vdo_reserve_block (sd.depot, 0);
  for (i = 0; i < a->cancel; i++)
    vdo_cancel_block_reservation (sd.depot, 0);
  for (i = 0; i < a->allocate_reserved; i++) {
    ck_assert_int_eq (vdo_allocate_reserved_block (sd.depot, 0, &pbn),
                      VDO_SUCCESS);
    if (i == 0)
      a->first = pbn;
    a->last = pbn;
  }
  a->allocate_result = vdo_allocate_block (sd.depot, 0, &pbn);
  if (a->allocate_result == VDO_SUCCESS)
    a->last = pbn;
}

START_TEST (test_reservations)
{
  struct vdo_slab_depot_statistics stats;
  struct reservation_args a = { 0 };
  block_count_t free_blocks;

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  vdo_get_slab_depot_statistics (sd.depot, &stats);
  free_blocks = stats.free_blocks;

  /* Every free block promised: one more promise, or a plain
   * allocation, finds no space. */
  a.reserve = free_blocks + 1;
  sd_run_on_zone (0, reservations_on_zone, &a);
  ck_assert_int_eq (a.reserve_result, VDO_NO_SPACE);
  ck_assert_int_eq (a.allocate_result, VDO_NO_SPACE);
  vdo_get_slab_depot_statistics (sd.depot, &stats);
  ck_assert_uint_eq (stats.free_blocks, free_blocks);

  /* One promise given up: that block can be allocated, and only it. */
  a = (struct reservation_args) { .cancel = 1 };
  sd_run_on_zone (0, reservations_on_zone, &a);
  ck_assert_int_eq (a.allocate_result, VDO_SUCCESS);
  a = (struct reservation_args) { 0 };
  sd_run_on_zone (0, reservations_on_zone, &a);
  ck_assert_int_eq (a.allocate_result, VDO_NO_SPACE);

  /* Every other promise kept, in order, with the blocks after the one
   * allocated plainly: all of the zone's blocks are then used. */
  a = (struct reservation_args) { .allocate_reserved = free_blocks - 1 };
  sd_run_on_zone (0, reservations_on_zone, &a);
  ck_assert_int_eq (a.allocate_result, VDO_NO_SPACE);
  ck_assert_uint_eq (sd_count_of (a.first), VDO_PROVISIONAL_REFERENCE_COUNT);
  ck_assert_uint_eq (sd_count_of (a.last), VDO_PROVISIONAL_REFERENCE_COUNT);
  vdo_get_slab_depot_statistics (sd.depot, &stats);
  ck_assert_uint_eq (stats.free_blocks, 0);

  /* A released block is free again for anyone. */
  ck_assert_int_eq (release (a.last), VDO_SUCCESS);
  a = (struct reservation_args) { .reserve = 1, .cancel = 1 };
  sd_run_on_zone (0, reservations_on_zone, &a);
  ck_assert_int_eq (a.reserve_result, VDO_SUCCESS);
  ck_assert_int_eq (a.allocate_result, VDO_SUCCESS);

  ck_assert (!vdo_is_read_only (sd.read_only));
  ck_assert_int_eq (sd_drain_depot (), VDO_SUCCESS);
  sd_stop_env ();
  sd_remove_image ();
}
END_TEST

/* Claims (space-claims.h): exactly the free blocks not claimed are
 * spare, whatever allocates, reserves, releases or gives back. */
static void
assert_spare (block_count_t spare)
{
  ck_assert_msg (vdo_claim_blocks (sd.depot, spare), "fewer than %llu spare",
                 (unsigned long long) spare);
  ck_assert_msg (!vdo_claim_blocks (sd.depot, 1), "more than %llu spare",
                 (unsigned long long) spare);
  vdo_return_claimed_blocks (sd.depot, spare);
}

START_TEST (test_claims)
{
  struct vdo_slab_depot_statistics stats;
  struct reservation_args a = { 0 };
  physical_block_number_t pbns[3];
  block_count_t free_blocks;

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  vdo_get_slab_depot_statistics (sd.depot, &stats);
  free_blocks = stats.free_blocks;
  assert_spare (free_blocks);

  /* Blocks taken with claims: the claims were the drop. */
  ck_assert (vdo_claim_blocks (sd.depot, 3));
  assert_spare (free_blocks - 3);
  sd_allocate (0, 3, pbns);
  assert_spare (free_blocks - 3);
  /* A block given back is spare again. */
  ck_assert_int_eq (release (pbns[1]), VDO_SUCCESS);
  assert_spare (free_blocks - 2);

  /* A reservation holds its claim; cancelled, gives it back; kept,
   * spends it.  (Each run ends with a plain allocation: one claim more,
   * its block released after.) */
  ck_assert (vdo_claim_blocks (sd.depot, 3));
  a = (struct reservation_args) { .reserve = 2, .cancel = 1 };
  sd_run_on_zone (0, reservations_on_zone, &a);
  ck_assert_int_eq (a.reserve_result, VDO_SUCCESS);
  ck_assert_int_eq (a.allocate_result, VDO_SUCCESS);
  ck_assert_int_eq (release (a.last), VDO_SUCCESS);
  assert_spare (free_blocks - 3);
  ck_assert (vdo_claim_blocks (sd.depot, 1));
  a = (struct reservation_args) { .allocate_reserved = 1 };
  sd_run_on_zone (0, reservations_on_zone, &a);
  ck_assert_int_eq (a.allocate_result, VDO_SUCCESS);
  ck_assert_int_eq (release (a.last), VDO_SUCCESS);
  assert_spare (free_blocks - 3);
  vdo_get_slab_depot_statistics (sd.depot, &stats);
  ck_assert_uint_eq (stats.free_blocks, free_blocks - 3);

  ck_assert (!vdo_is_read_only (sd.read_only));
  ck_assert_int_eq (sd_drain_depot (), VDO_SUCCESS);
  sd_stop_env ();
  sd_remove_image ();
}
END_TEST

/* --- Pins (pbn-lock.h) --------------------------------------------------- */

struct pin_args {
  physical_block_number_t pbn;
  bool new_block;
  struct vdo_pbn_lock *lock;
};

static void
pin_on_zone (void *arg)
{
  struct pin_args *a = arg;

  a->lock = vdo_pin_block (sd.depot, a->pbn, a->new_block);
}

static void
unpin_on_zone (void *arg)
{
  struct pin_args *a = arg;

  vdo_unpin_block (sd.depot, a->lock);
}

static struct vdo_pbn_lock *
pin (physical_block_number_t pbn, bool new_block)
{
  struct pin_args a = { .pbn = pbn, .new_block = new_block };

  sd_run_on_zone (vdo_physical_zone_of_pbn (sd.depot, pbn), pin_on_zone, &a);
  return a.lock;
}

static void
unpin (struct vdo_pbn_lock *lock)
{
  struct pin_args a = { .pbn = lock->pbn, .lock = lock };

  sd_run_on_zone (vdo_physical_zone_of_pbn (sd.depot, a.pbn), unpin_on_zone,
                  &a);
}

/* A block losing its last reference while pinned stays allocated until
 * the pin goes; an increment meanwhile keeps it. */
START_TEST (test_pin_keeps_block_allocated)
{
  physical_block_number_t pbns[3];
  struct vdo_slab_depot_statistics before, after;
  struct vdo_pbn_lock *lock;

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  sd_allocate (0, 3, pbns);
  /* Provisional blocks are only pinned by their own writer. */
  ck_assert_ptr_null (pin (pbns[0], false));
  ck_assert_int_eq (sd_update_now (pbns[0], VDO_DATA_INCREMENT), VDO_SUCCESS);
  ck_assert_int_eq (sd_update_now (pbns[1], VDO_DATA_INCREMENT), VDO_SUCCESS);
  vdo_get_slab_depot_statistics (sd.depot, &before);

  lock = pin (pbns[0], false);
  ck_assert_ptr_nonnull (lock);
  ck_assert_uint_eq (lock->increment_limit, VDO_MAXIMUM_REFERENCE_COUNT - 1);
  ck_assert_int_eq (sd_update_now (pbns[0], VDO_DATA_DECREMENT), VDO_SUCCESS);
  ck_assert_uint_eq (sd_count_of (pbns[0]), VDO_PROVISIONAL_REFERENCE_COUNT);
  vdo_get_slab_depot_statistics (sd.depot, &after);
  ck_assert_uint_eq (after.free_blocks, before.free_blocks);
  unpin (lock);
  ck_assert_uint_eq (sd_count_of (pbns[0]), 0);
  vdo_get_slab_depot_statistics (sd.depot, &after);
  ck_assert_uint_eq (after.free_blocks, before.free_blocks + 1);

  /* The sharer's increment lands before the pin goes: it stays. */
  lock = pin (pbns[1], false);
  ck_assert_ptr_nonnull (lock);
  ck_assert_int_eq (sd_update_now (pbns[1], VDO_DATA_DECREMENT), VDO_SUCCESS);
  ck_assert_int_eq (sd_update_now (pbns[1], VDO_DATA_INCREMENT), VDO_SUCCESS);
  unpin (lock);
  ck_assert_uint_eq (sd_count_of (pbns[1]), 1);

  /* The writer's own block, pinned before its increment. */
  lock = pin (pbns[2], true);
  ck_assert_ptr_nonnull (lock);
  ck_assert_int_eq (sd_update_now (pbns[2], VDO_DATA_INCREMENT), VDO_SUCCESS);
  unpin (lock);
  ck_assert_uint_eq (sd_count_of (pbns[2]), 1);
  ck_assert (!vdo_is_read_only (sd.read_only));
  sd_save_and_stop ();
  sd_remove_image ();
}
END_TEST

/* --- Updates, their journal entries, and a clean reload ------------------ */

/* What one slab's journal should say, entry by entry. */
struct expected_entry {
  uint32_t sbn;
  bool increment;
  bool is_block_map;
  struct journal_point expanded;
};

static void
add_expected (struct expected_entry *list, unsigned int *count,
              physical_block_number_t pbn, enum vdo_reference_operation op,
              struct journal_point rj)
{
  list[*count] = (struct expected_entry) {
    .sbn = pbn - vdo_slab_origin (&sd.states.slab_depot, 0),
    .increment = op != VDO_DATA_DECREMENT,
    .is_block_map = op == VDO_BLOCK_MAP_INCREMENT,
    .expanded = vdo_expand_journal_point (&rj, op != VDO_DATA_DECREMENT),
  };
  (*count)++;
}

START_TEST (test_updates_journaled_and_reloaded)
{
  enum { PER_ZONE = 10 };
  physical_block_number_t pbns[2][PER_ZONE];
  struct expected_entry expected[64];
  unsigned int expected_count = 0, first_block_count, z, i;
  struct sd_test_update updates[64];
  struct sd_update_batch batch;
  unsigned int submitted = 0;
  struct journal_point rj;
  struct sd_snapshot saved, loaded;
  uint8_t *block = sd_alloc_blocks (1);
  struct slab_journal_block_header header;
  struct slab_journal_entry entries[VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK];
  struct slab_summary_entry summary;
  uint8_t *stored = malloc (8192);
  struct journal_point points[2][VDO_SECTORS_PER_BLOCK];
  uint8_t *region0 = sd_alloc_blocks (VDO_SLAB_SUMMARY_BLOCKS);

  sd_format_small_volume ();
  sd_start_depot (2, VDO_DEPOT_LOAD_NEW);
  for (z = 0; z < 2; z++)
    sd_allocate (z, PER_ZONE, pbns[z]);
  sd_batch_init (&batch);

  /* The same workload in both zones; slab 0's entries are checked on
   * disk. */
  for (z = 0; z < 2; z++) {
    sd.rj_point = (struct journal_point) { 1, 0 };
    for (i = 0; i < PER_ZONE; i++) {
      enum vdo_reference_operation op =
        i == 0 ? VDO_BLOCK_MAP_INCREMENT : VDO_DATA_INCREMENT;

      rj = sd_next_rj_point ();
      sd_submit_update (&batch, &updates[submitted++], pbns[z][i], op, rj);
      if (z == 0)
        add_expected (expected, &expected_count, pbns[z][i], op, rj);
    }
  }
  sd_batch_wait (&batch);
  for (i = 0; i < submitted; i++)
    ck_assert_int_eq (updates[i].result, VDO_SUCCESS);
  ck_assert (sd_any_rj_block_locked (1));

  /* Force slab journal commits, as recovery journal pressure would; the
   * next entries start a second block. */
  first_block_count = expected_count;
  vdo_commit_oldest_slab_journal_tails (sd.depot, 1);

  for (z = 0; z < 2; z++) {
    sd.rj_point = (struct journal_point) { 2, 0 };
    /* 1 -> 3 -> 2 */
    for (i = 0; i < 3; i++) {
      enum vdo_reference_operation op =
        i < 2 ? VDO_DATA_INCREMENT : VDO_DATA_DECREMENT;

      rj = sd_next_rj_point ();
      sd_submit_update (&batch, &updates[submitted++], pbns[z][1], op, rj);
      if (z == 0)
        add_expected (expected, &expected_count, pbns[z][1], op, rj);
    }
    /* 1 -> 0: freed. */
    rj = sd_next_rj_point ();
    sd_submit_update (&batch, &updates[submitted++], pbns[z][2],
                   VDO_DATA_DECREMENT, rj);
    if (z == 0)
      add_expected (expected, &expected_count, pbns[z][2], VDO_DATA_DECREMENT,
                    rj);
    /* An overwrite: both halves of one recovery journal entry. */
    rj = sd_next_rj_point ();
    sd_submit_update (&batch, &updates[submitted++], pbns[z][3],
                   VDO_DATA_INCREMENT, rj);
    sd_submit_update (&batch, &updates[submitted++], pbns[z][4],
                   VDO_DATA_DECREMENT, rj);
    if (z == 0) {
      add_expected (expected, &expected_count, pbns[z][3], VDO_DATA_INCREMENT,
                    rj);
      add_expected (expected, &expected_count, pbns[z][4], VDO_DATA_DECREMENT,
                    rj);
    }
  }
  sd_batch_wait (&batch);
  for (i = 0; i < submitted; i++)
    ck_assert_int_eq (updates[i].result, VDO_SUCCESS);

  for (z = 0; z < 2; z++) {
    ck_assert_uint_eq (sd_count_of (pbns[z][0]), VDO_MAXIMUM_REFERENCE_COUNT);
    ck_assert_uint_eq (sd_count_of (pbns[z][1]), 2);
    ck_assert_uint_eq (sd_count_of (pbns[z][2]), 0);
    ck_assert_uint_eq (sd_count_of (pbns[z][3]), 2);
    ck_assert_uint_eq (sd_count_of (pbns[z][4]), 0);
    ck_assert_uint_eq (sd_count_of (pbns[z][5]), 1);
  }
  ck_assert (sd_any_rj_block_locked (2));

  ck_assert_int_eq (sd_drain_depot (), VDO_SUCCESS);
  ck_assert (!sd_any_rj_block_locked (3));
  ck_assert (!vdo_is_read_only (sd.read_only));
  sd_take_snapshot (&saved);
  vdo_record_slab_depot (sd.depot, &sd.states.slab_depot);
  ck_assert_uint_eq (sd.states.slab_depot.zone_count, 2);
  sd_stop_env ();

  /* On disk: slab 0's journal blocks 1 and 2 hold exactly the entries,
   * with strictly increasing points and the block-map bitmap. */
  sd_start_env (1);
  {
    struct vdo_pbn_range journal =
      vdo_slab_journal_range (&sd.states.slab_depot, 0);
    unsigned int e = 0;
    sequence_number_t seq;
    struct journal_point last = { 0, 0 };

    for (seq = 1; seq <= 2; seq++) {
      unsigned int n;

      sd_read_blocks (journal.start + seq, 1, block);
      n = vdo_decode_slab_journal_block (block, &header, entries);
      ck_assert_int_eq (vdo_validate_slab_journal_block_header
                          (&header, sd.states.nonce, seq), VDO_SUCCESS);
      ck_assert_uint_eq (header.head, 1);
      ck_assert_uint_eq (n, seq == 1 ? first_block_count
                            : expected_count - first_block_count);
      ck_assert_int_eq (header.has_block_map_increments, seq == 1);
      for (i = 0; i < n; i++, e++) {
        ck_assert_uint_eq (entries[i].sbn, expected[e].sbn);
        ck_assert_int_eq (entries[i].increment, expected[e].increment);
        ck_assert_int_eq (entries[i].is_block_map, expected[e].is_block_map);
        ck_assert (vdo_before_journal_point (&last, &expected[e].expanded));
        last = expected[e].expanded;
      }
      ck_assert (vdo_equal_journal_points (&header.recovery_point, &last));
    }
    ck_assert_uint_eq (e, expected_count);
    /* The overwrite's halves: 2k then 2k + 1. */
    ck_assert_uint_eq (expected[e - 1].expanded.entry_count,
                       expected[e - 2].expanded.entry_count + 1);

    summary = sd_read_summary_entry (0, 2);
    ck_assert_uint_eq (summary.tail_block_offset, 3);
    ck_assert (summary.load_ref_counts);
    ck_assert (!summary.is_dirty);
    ck_assert_uint_eq (summary.fullness_hint,
                       vdo_compute_fullness_hint
                         (saved.free_blocks[0],
                          vdo_slab_summary_hint_shift (13)));

    /* Every sector of both reference blocks carries the last entry's
     * slab journal point. */
    sd_read_reference_blocks (0, stored, points);
    ck_assert_mem_eq (stored, saved.counts, sd_slab_config ()->data_blocks);
    for (i = 0; i < VDO_SECTORS_PER_BLOCK; i++) {
      ck_assert_uint_eq (points[0][i].sequence_number, 2);
      ck_assert_uint_eq (points[0][i].entry_count,
                         expected_count - first_block_count - 1);
      ck_assert (vdo_equal_journal_points (&points[1][i], &points[0][i]));
    }
  }
  sd_stop_env ();

  /* A clean load with another zone count reproduces every counter. */
  sd_start_depot (1, VDO_DEPOT_LOAD_CLEAN);
  sd_take_snapshot (&loaded);
  sd_assert_same_counts (&saved, &loaded);
  ck_assert_uint_eq (loaded.tails[0], 3);
  ck_assert_uint_eq (loaded.heads[0], 3);
  /* The load wrote the combined table to every region. */
  sd_read_blocks (sd_summary_origin (), VDO_SLAB_SUMMARY_BLOCKS, region0);
  for (z = 1; z < VDO_MAX_PHYSICAL_ZONES; z++)
    ck_assert_mem_eq (region0, region0 + z * 4 * VDO_BLOCK_SIZE,
                      4 * VDO_BLOCK_SIZE);
  summary = vdo_decode_slab_summary_entry (region0);
  ck_assert_uint_eq (summary.tail_block_offset, 3);
  ck_assert (summary.load_ref_counts);

  /* New entries continue the numbering after the reload. */
  sd.rj_point = (struct journal_point) { 5, 0 };
  ck_assert_int_eq (sd_update_now (pbns[0][5], VDO_DATA_INCREMENT),
                    VDO_SUCCESS);
  ck_assert_uint_eq (sd_count_of (pbns[0][5]), 2);
  sd_save_and_stop ();
  sd_start_env (1);
  {
    struct vdo_pbn_range journal =
      vdo_slab_journal_range (&sd.states.slab_depot, 0);

    sd_read_blocks (journal.start + 3, 1, block);
    vdo_decode_slab_journal_block_header (block, &header);
    ck_assert_uint_eq (header.sequence_number, 3);
    ck_assert_uint_eq (header.head, 3);
    ck_assert_uint_eq (header.entry_count, 1);
  }
  sd_stop_env ();

  sd_free_snapshot (&saved);
  sd_free_snapshot (&loaded);
  free (stored);
  vdo_io_free_buffer (block);
  vdo_io_free_buffer (region0);
  sd_remove_image ();
}
END_TEST

/* --- The blocking threshold --------------------------------------------- */

START_TEST (test_blocking_threshold_reaps)
{
  enum { BLOCKS = 64, UPDATES = 900, PER_COMMIT = 3 };
  physical_block_number_t pbns[BLOCKS];
  struct sd_test_update *updates = calloc (UPDATES, sizeof *updates);
  struct sd_update_batch batch;
  struct vdo_slab_depot_statistics stats;
  struct sd_journal_state state = { .slab = 0 };
  struct sd_snapshot saved, loaded;
  unsigned int i;

  sd_format_small_volume ();
  /* Thresholds this low make a few hundred entries cross them many
   * times; flushing at the blocking threshold leaves only the blocking
   * path to write reference blocks. */
  sd.states.slab_depot.slab_config.slab_journal_flushing_threshold = 8;
  sd.states.slab_depot.slab_config.slab_journal_blocking_threshold = 8;
  sd.states.slab_depot.slab_config.slab_journal_scrubbing_threshold = 10;
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  sd_allocate (0, BLOCKS, pbns);

  sd_batch_init (&batch);
  for (i = 0; i < UPDATES; i++) {
    sd_submit_update (&batch, &updates[i], pbns[i % BLOCKS], VDO_DATA_INCREMENT,
                   sd_next_rj_point ());
    /* Recovery journal pressure cuts the journal into small blocks: one
     * per group of updates, so it wraps its region. */
    if (i % PER_COMMIT == PER_COMMIT - 1) {
      sd_batch_wait (&batch);
      vdo_commit_oldest_slab_journal_tails (sd.depot,
                                            sd.rj_point.sequence_number);
    }
  }
  sd_batch_wait (&batch);
  for (i = 0; i < UPDATES; i++)
    ck_assert_int_eq (updates[i].result, VDO_SUCCESS);

  vdo_get_slab_depot_statistics (sd.depot, &stats);
  ck_assert_uint_gt (stats.slab_journal_blocked, 0);
  ck_assert_uint_gt (stats.reference_blocks_written, 0);
  sd_run_on_zone (0, sd_get_journal_state, &state);
  /* The journal wrapped its 224-block region, so it was reaped. */
  ck_assert_uint_gt (state.tail, sd_slab_config ()->slab_journal_blocks);
  ck_assert_uint_gt (state.head, state.tail - 9);
  for (i = 0; i < BLOCKS; i++)
    ck_assert_uint_eq (sd_count_of (pbns[i]),
                       UPDATES / BLOCKS + (i < UPDATES % BLOCKS ? 1 : 0));

  ck_assert_int_eq (sd_drain_depot (), VDO_SUCCESS);
  ck_assert (!sd_any_rj_block_locked (sd.rj_point.sequence_number));
  sd_take_snapshot (&saved);
  vdo_record_slab_depot (sd.depot, &sd.states.slab_depot);
  sd_stop_env ();

  sd_start_depot (1, VDO_DEPOT_LOAD_CLEAN);
  sd_take_snapshot (&loaded);
  sd_assert_same_counts (&saved, &loaded);
  sd_stop_env ();
  sd_free_snapshot (&saved);
  sd_free_snapshot (&loaded);
  free (updates);
  sd_remove_image ();
}
END_TEST

/* --- Read-only mode ----------------------------------------------------- */

START_TEST (test_io_error_enters_read_only)
{
  enum { WAITERS = 5 };
  physical_block_number_t pbns[WAITERS + 2];
  struct sd_test_update updates[WAITERS];
  struct sd_update_batch batch;
  struct sd_allocation a = { .zone = 0, .wanted = 1 };
  unsigned int i;

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  sd_allocate (0, WAITERS + 2, pbns);
  ck_assert_int_eq (sd_update_now (pbns[0], VDO_DATA_INCREMENT), VDO_SUCCESS);

  /* The device dies: the forced partial commit fails, and the updates
   * waiting behind it fail with it. */
  vdo_io_inject_error (sd.io, VDO_IO_OP_BIT (VDO_IO_WRITE)
                              | VDO_IO_OP_BIT (VDO_IO_FLUSH), 0, EIO);
  vdo_commit_oldest_slab_journal_tails (sd.depot, UINT64_MAX);
  sd_batch_init (&batch);
  for (i = 0; i < WAITERS; i++)
    sd_submit_update (&batch, &updates[i], pbns[i + 1], VDO_DATA_INCREMENT,
                   sd_next_rj_point ());
  sd_batch_wait (&batch);
  for (i = 0; i < WAITERS; i++)
    ck_assert_int_eq (updates[i].result, VDO_READ_ONLY);
  ck_assert (vdo_is_read_only (sd.read_only));
  ck_assert_int_eq (vdo_read_only_error (sd.read_only), EIO);

  ck_assert_int_eq (sd_update_now (pbns[WAITERS + 1], VDO_DATA_INCREMENT),
                    VDO_READ_ONLY);
  sd_run_on_zone (0, sd_allocate_on_zone, &a);
  ck_assert_int_eq (a.last_result, VDO_READ_ONLY);
  ck_assert_int_eq (sd_drain_depot (), VDO_READ_ONLY);
  vdo_io_inject_error (sd.io, 0, 0, 0);
  sd_stop_env ();
  sd_remove_image ();
}
END_TEST

START_TEST (test_invalid_transition_enters_read_only)
{
  physical_block_number_t pbn;

  sd_format_small_volume ();
  sd_start_depot (2, VDO_DEPOT_LOAD_NEW);
  sd_allocate (1, 1, &pbn);
  /* A decrement of a free block is impossible. */
  ck_assert_int_eq (sd_update_now (pbn + 1, VDO_DATA_DECREMENT),
                    VDO_REF_COUNT_INVALID);
  ck_assert (vdo_is_read_only (sd.read_only));
  ck_assert_int_eq (sd_update_now (pbn, VDO_DATA_INCREMENT), VDO_READ_ONLY);
  ck_assert_int_eq (sd_drain_depot (), VDO_READ_ONLY);
  sd_stop_env ();
  sd_remove_image ();
}
END_TEST

START_TEST (test_out_of_order_points_enter_read_only)
{
  physical_block_number_t pbns[2];
  struct journal_point late = { 3, 0 };

  sd_format_small_volume ();
  sd_start_depot (1, VDO_DEPOT_LOAD_NEW);
  sd_allocate (0, 2, pbns);
  sd.rj_point = late;
  ck_assert_int_eq (sd_update_now (pbns[0], VDO_DATA_INCREMENT), VDO_SUCCESS);
  sd.rj_point = (struct journal_point) { 2, 5 };
  ck_assert_int_eq (sd_update_now (pbns[1], VDO_DATA_INCREMENT), UDS_BAD_STATE);
  ck_assert (vdo_is_read_only (sd.read_only));
  ck_assert_int_eq (sd_drain_depot (), VDO_READ_ONLY);
  sd_stop_env ();
  sd_remove_image ();
}
END_TEST

Suite *
slab_depot_suite (void)
{
  Suite *s = suite_create ("slab-depot");
  TCase *tc = tcase_create ("depot");

  /* Real files, real threads and fdatasync: allow for slow disks. */
  tcase_set_timeout (tc, 600);
  tcase_add_test (tc, test_new_load_writes_default_summary);
  tcase_add_loop_test (tc, test_allocate_until_no_space, 1, 3);
  tcase_add_test (tc, test_provisional_release);
  tcase_add_test (tc, test_reservations);
  tcase_add_test (tc, test_claims);
  tcase_add_test (tc, test_pin_keeps_block_allocated);
  tcase_add_test (tc, test_updates_journaled_and_reloaded);
  tcase_add_test (tc, test_blocking_threshold_reaps);
  tcase_add_test (tc, test_io_error_enters_read_only);
  tcase_add_test (tc, test_invalid_transition_enters_read_only);
  tcase_add_test (tc, test_out_of_order_points_enter_read_only);
  suite_add_tcase (s, tc);
  return s;
}
