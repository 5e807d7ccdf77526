/* nbdkit-vdo: when asynchronous writes are acknowledged.
 *
 * Under the asynchronous policy a whole-block write is acknowledged as
 * soon as it is launched, while the volume has room for every write in
 * flight.  Acknowledged data must then be visible to any later read,
 * and must never fail for want of space: on a volume filled to the
 * brim the client sees ENOSPC on the write itself, and the flush after
 * it still succeeds with everything acknowledged intact. */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "status.h"
#include "unit-suites.h"
#include "vdo.h"
#include "volume-test-util.h"

/* Nine slabs of 8192 blocks beside a dense 0.25 GB index. */
#define DEVICE_BYTES (UINT64_C (3) << 30)
#define LOGICAL_BLOCKS 262144
/* Blocks per request while filling: 1 MiB. */
#define CHUNK 256

static struct test_volume test_vol;

/* Unique, incompressible contents for each (lbn, generation). */
static void
fill_block (uint8_t *block, uint64_t lbn, uint64_t generation)
{
  uint64_t x = (lbn * 0x9e3779b97f4a7c15ull) ^ (generation + 1) * 0xbf58476d1ce4e5b9ull;
  size_t i;

  for (i = 0; i < VDO_BLOCK_SIZE; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy (block + i, &x, 8);
  }
}

static struct vdo *
start (void)
{
  struct vdo_options options = {
    .write_policy = VDO_WRITE_POLICY_ASYNC,
    .single_zone_thread = true,
  };
  struct vdo *vdo;

  ck_assert_int_eq (vdo_load (test_vol.path, &options, &vdo), VDO_SUCCESS);
  ck_assert_int_eq (vdo_start (vdo), VDO_SUCCESS);
  return vdo;
}

static void
stop_and_audit (struct vdo *vdo)
{
  test_volume_stop_and_audit (vdo, test_vol.path);
}

static void
setup (void)
{
  test_volume_create (&test_vol, "write-ack", DEVICE_BYTES, LOGICAL_BLOCKS, 13);
}

static void
teardown (void)
{
  test_volume_remove (&test_vol);
}

/* Rewrites of one LBN and writes of many, each read back at once: an
 * acknowledged write is seen by the next read, though it may still be
 * on its way through the zones. */
START_TEST (test_reads_see_acknowledged_writes)
{
  uint8_t *data = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  uint8_t *back = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  struct vdo *vdo = start ();
  uint64_t i;

  for (i = 0; i < 300; i++) {
    fill_block (data, 7, i);
    ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE,
                                 7 * VDO_BLOCK_SIZE, false), 0);
    ck_assert_int_eq (vdo_read (vdo, back, VDO_BLOCK_SIZE,
                                7 * VDO_BLOCK_SIZE), 0);
    ck_assert_msg (memcmp (back, data, VDO_BLOCK_SIZE) == 0,
                   "rewrite %llu of LBN 7 not seen", (unsigned long long) i);
  }
  for (i = 0; i < 2000; i++) {
    fill_block (data, 1000 + i, 0);
    ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE,
                                 (1000 + i) * VDO_BLOCK_SIZE, false), 0);
  }
  for (i = 0; i < 2000; i++) {
    fill_block (data, 1000 + i, 0);
    ck_assert_int_eq (vdo_read (vdo, back, VDO_BLOCK_SIZE,
                                (1000 + i) * VDO_BLOCK_SIZE), 0);
    ck_assert_msg (memcmp (back, data, VDO_BLOCK_SIZE) == 0,
                   "LBN %llu not seen", (unsigned long long) (1000 + i));
  }
  ck_assert_int_eq (vdo_flush (vdo), 0);
  stop_and_audit (vdo);
  vdo_io_free_buffer (data);
  vdo_io_free_buffer (back);
}
END_TEST

/* Fill with unique data until a write fails: it must fail with ENOSPC
 * itself, and nothing acknowledged before it may be lost. */
START_TEST (test_full_volume_fails_the_write_not_the_flush)
{
  uint8_t *data = vdo_io_alloc_buffer (CHUNK * VDO_BLOCK_SIZE);
  struct vdo *vdo = start ();
  uint64_t chunk, filled = 0, i;
  int r = 0;

  for (chunk = 0; chunk < LOGICAL_BLOCKS / CHUNK; chunk++) {
    for (i = 0; i < CHUNK; i++)
      fill_block (data + i * VDO_BLOCK_SIZE, chunk * CHUNK + i, 0);
    r = vdo_write (vdo, data, CHUNK * VDO_BLOCK_SIZE,
                   chunk * CHUNK * VDO_BLOCK_SIZE, false);
    if (r != 0)
      break;
    filled++;
  }
  ck_assert_int_eq (r, ENOSPC);
  /* Nine slabs' worth, less the block map's pages. */
  ck_assert_uint_gt (filled * CHUNK, 60000);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  for (chunk = 0; chunk < filled; chunk++) {
    uint8_t *expected = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);

    ck_assert_int_eq (vdo_read (vdo, data, CHUNK * VDO_BLOCK_SIZE,
                                chunk * CHUNK * VDO_BLOCK_SIZE), 0);
    for (i = 0; i < CHUNK; i++) {
      fill_block (expected, chunk * CHUNK + i, 0);
      ck_assert_msg (memcmp (data + i * VDO_BLOCK_SIZE, expected,
                             VDO_BLOCK_SIZE) == 0,
                     "acknowledged LBN %llu lost",
                     (unsigned long long) (chunk * CHUNK + i));
    }
    vdo_io_free_buffer (expected);
  }
  stop_and_audit (vdo);
  vdo_io_free_buffer (data);
}
END_TEST

Suite *
write_ack_suite (void)
{
  Suite *s = suite_create ("write_ack");
  TCase *tc = tcase_create ("write_ack");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 180);
  tcase_add_test (tc, test_reads_see_acknowledged_writes);
  tcase_add_test (tc, test_full_volume_fails_the_write_not_the_flush);
  suite_add_tcase (s, tc);
  return s;
}
