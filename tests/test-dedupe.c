/* nbdkit-vdo: inline deduplication through the real write path.
 *
 * A volume on a sparse temporary file, with dedupe on: identical blocks
 * share one data block, also across a clean restart; a block never
 * takes more than 254 references; different data under one name (a
 * forced hash collision) is never shared; and everything reads back and
 * audits clean. */
#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "status.h"
#include "unit-suites.h"
#include "vdo.h"
#include "volume-test-util.h"

#define DEVICE_BYTES (UINT64_C (4) << 30)
#define LOGICAL_BLOCKS 65536

static struct test_volume test_vol;
static uint8_t *block, *readback;

/* Distinct, non-zero contents for each SEED. */
static void
fill_block (uint8_t *buffer, uint64_t seed)
{
  uint64_t i, x = seed * 0x9e3779b97f4a7c15ull + 1;

  for (i = 0; i < VDO_BLOCK_SIZE / 8; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy (buffer + i * 8, &x, 8);
  }
}

static struct vdo *
start_with (bool same_names)
{
  struct vdo_options options = {
    .dedupe = true,
    .test_same_names = same_names,
  };
  struct vdo *vdo;

  ck_assert_int_eq (vdo_load (test_vol.path, &options, &vdo), VDO_SUCCESS);
  ck_assert_int_eq (vdo_start (vdo), VDO_SUCCESS);
  return vdo;
}

static struct vdo *
start (void)
{
  return start_with (false);
}

static uint64_t
allocated (struct vdo *vdo)
{
  struct vdo_statistics stats;

  vdo_get_statistics (vdo, &stats);
  return stats.allocated_blocks;
}

static void
write_seed (struct vdo *vdo, uint64_t lbn, uint64_t seed)
{
  fill_block (block, seed);
  ck_assert_int_eq (vdo_write (vdo, block, VDO_BLOCK_SIZE,
                               lbn * VDO_BLOCK_SIZE, false), 0);
}

static void
check_seed (struct vdo *vdo, uint64_t lbn, uint64_t seed)
{
  fill_block (block, seed);
  ck_assert_int_eq (vdo_read (vdo, readback, VDO_BLOCK_SIZE,
                              lbn * VDO_BLOCK_SIZE), 0);
  ck_assert_msg (memcmp (block, readback, VDO_BLOCK_SIZE) == 0,
                 "LBN %" PRIu64 " does not hold seed %" PRIu64, lbn, seed);
}

static void
stop_and_audit (struct vdo *vdo)
{
  test_volume_stop_and_audit (vdo, test_vol.path);
}

static void
setup (void)
{
  test_volume_create (&test_vol, "dedupe", DEVICE_BYTES, LOGICAL_BLOCKS, 13);
  block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  readback = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
}

static void
teardown (void)
{
  vdo_io_free_buffer (block);
  vdo_io_free_buffer (readback);
  test_volume_remove (&test_vol);
}

/* LBNs 0..N and 400..400+N share one block map leaf, so no tree page is
 * allocated by the second copy: its allocation count is all data. */
START_TEST (test_duplicates_share_blocks)
{
  struct vdo *vdo = start ();
  struct vdo_statistics stats;
  uint64_t i, before, after_first;

  before = allocated (vdo);
  for (i = 0; i < 100; i++)
    write_seed (vdo, i, i + 1);
  after_first = allocated (vdo);
  ck_assert_uint_ge (after_first - before, 100);
  for (i = 0; i < 100; i++)
    write_seed (vdo, 400 + i, i + 1);
  ck_assert_uint_eq (allocated (vdo), after_first);
  vdo_get_statistics (vdo, &stats);
  ck_assert_uint_eq (stats.dedupe_advice_valid, 100);
  for (i = 0; i < 100; i++) {
    check_seed (vdo, i, i + 1);
    check_seed (vdo, 400 + i, i + 1);
  }
  /* Overwriting one copy leaves the other intact. */
  for (i = 0; i < 100; i++)
    write_seed (vdo, i, 1000 + i);
  for (i = 0; i < 100; i++) {
    check_seed (vdo, i, 1000 + i);
    check_seed (vdo, 400 + i, i + 1);
  }
  stop_and_audit (vdo);
}
END_TEST

START_TEST (test_dedupe_survives_restart)
{
  struct vdo *vdo = start ();
  uint64_t i, used;

  for (i = 0; i < 64; i++)
    write_seed (vdo, i, 7000 + i);
  ck_assert_int_eq (vdo_stop (vdo), VDO_SUCCESS);
  vdo_free (vdo);

  vdo = start ();
  used = allocated (vdo);
  for (i = 0; i < 64; i++)
    write_seed (vdo, 500 + i, 7000 + i);
  ck_assert_uint_eq (allocated (vdo), used);
  for (i = 0; i < 64; i++) {
    check_seed (vdo, i, 7000 + i);
    check_seed (vdo, 500 + i, 7000 + i);
  }
  stop_and_audit (vdo);
}
END_TEST

/* 300 copies: 254 references fill the first block, the rest go to a
 * second one. */
START_TEST (test_reference_limit)
{
  struct vdo *vdo = start ();
  struct vdo_statistics stats;
  uint64_t i, before;

  /* The first write into the leaf allocates its tree pages too. */
  write_seed (vdo, 301, 41);
  before = allocated (vdo);
  for (i = 0; i < 300; i++)
    write_seed (vdo, i, 42);
  ck_assert_uint_eq (allocated (vdo) - before, 2);
  vdo_get_statistics (vdo, &stats);
  ck_assert_uint_ge (stats.dedupe_advice_stale, 1);
  for (i = 0; i < 300; i++)
    check_seed (vdo, i, 42);
  stop_and_audit (vdo);
}
END_TEST

/* Every block gets the same name: distinct data must never be shared,
 * whether it meets in a hash lock or through the index's advice. */
START_TEST (test_same_name_different_data)
{
  struct vdo *vdo = start_with (true);
  struct vdo_statistics stats;
  uint64_t i;

  for (i = 0; i < 60; i++)
    write_seed (vdo, i, 100 + i % 20);
  vdo_get_statistics (vdo, &stats);
  ck_assert_uint_ge (stats.dedupe_advice_stale, 1);
  for (i = 0; i < 60; i++)
    check_seed (vdo, i, 100 + i % 20);
  stop_and_audit (vdo);
}
END_TEST

/* After a crash (no clean stop, so no index save), the data is safe;
 * the index may start cold. */
START_TEST (test_crash_keeps_data)
{
  struct vdo *vdo = start ();
  uint64_t i;

  for (i = 0; i < 50; i++)
    write_seed (vdo, i, 300 + i % 10);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  vdo_free (vdo);

  vdo = start ();
  for (i = 0; i < 50; i++)
    check_seed (vdo, i, 300 + i % 10);
  for (i = 0; i < 50; i++)
    write_seed (vdo, 600 + i, 300 + i % 10);
  for (i = 0; i < 50; i++)
    check_seed (vdo, 600 + i, 300 + i % 10);
  stop_and_audit (vdo);
}
END_TEST

Suite *
dedupe_suite (void)
{
  Suite *s = suite_create ("dedupe");
  TCase *tc = tcase_create ("dedupe");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_duplicates_share_blocks);
  tcase_add_test (tc, test_dedupe_survives_restart);
  tcase_add_test (tc, test_reference_limit);
  tcase_add_test (tc, test_same_name_different_data);
  tcase_add_test (tc, test_crash_keeps_data);
  suite_add_tcase (s, tc);
  return s;
}
