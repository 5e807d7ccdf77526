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
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "status.h"
#include "unit-suites.h"
#include "slab-depot.h"
#include "vdo-internal.h"
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
start_with (bool compression)
{
  struct vdo_options options = {
    .write_policy = VDO_WRITE_POLICY_ASYNC,
    .single_zone_thread = true,
    .compression = compression,
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

/* Writers of requests bigger than the whole data_vio pool (2048), some
 * FUA, so every writer waits on an empty pool at once, again and again:
 * waiters are woken in batches, and each must get its data_vios in the
 * end, with the packer (timed waits) and without it. */
#define POOL_WRITERS 4
#define POOL_REQUEST_BLOCKS 2560
#define POOL_ROUNDS 3

struct pool_writer {
  struct vdo *vdo;
  unsigned int index;
  uint8_t *data;
  int result;
};

static uint64_t
pool_writer_first_lbn (unsigned int writer, unsigned int round)
{
  return ((uint64_t) round * POOL_WRITERS + writer) * POOL_REQUEST_BLOCKS;
}

static void *
pool_writer_run (void *arg)
{
  struct pool_writer *w = arg;
  unsigned int round, i;

  for (round = 0; round < POOL_ROUNDS && w->result == 0; round++) {
    uint64_t first = pool_writer_first_lbn (w->index, round);

    for (i = 0; i < POOL_REQUEST_BLOCKS; i++)
      fill_block (w->data + (size_t) i * VDO_BLOCK_SIZE, first + i, round);
    w->result = vdo_write (w->vdo, w->data,
                           POOL_REQUEST_BLOCKS * VDO_BLOCK_SIZE,
                           first * VDO_BLOCK_SIZE, (w->index + round) % 3 == 0);
  }
  return NULL;
}

START_TEST (test_empty_pool_wakes_every_waiter)
{
  uint8_t *expected = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  uint8_t *back = vdo_io_alloc_buffer (POOL_REQUEST_BLOCKS * VDO_BLOCK_SIZE);
  struct pool_writer writers[POOL_WRITERS];
  pthread_t threads[POOL_WRITERS];
  int compression;
  unsigned int w, round, i;

  for (compression = 0; compression <= 1; compression++) {
    struct vdo *vdo = start_with (compression);

    for (w = 0; w < POOL_WRITERS; w++) {
      writers[w] = (struct pool_writer) {
        .vdo = vdo, .index = w,
        .data = vdo_io_alloc_buffer (POOL_REQUEST_BLOCKS * VDO_BLOCK_SIZE),
      };
      ck_assert_int_eq (pthread_create (&threads[w], NULL, pool_writer_run,
                                        &writers[w]), 0);
    }
    for (w = 0; w < POOL_WRITERS; w++) {
      ck_assert_int_eq (pthread_join (threads[w], NULL), 0);
      ck_assert_int_eq (writers[w].result, 0);
      vdo_io_free_buffer (writers[w].data);
    }
    ck_assert_int_eq (vdo_flush (vdo), 0);
    for (round = 0; round < POOL_ROUNDS; round++)
      for (w = 0; w < POOL_WRITERS; w++) {
        uint64_t first = pool_writer_first_lbn (w, round);

        ck_assert_int_eq (vdo_read (vdo, back,
                                    POOL_REQUEST_BLOCKS * VDO_BLOCK_SIZE,
                                    first * VDO_BLOCK_SIZE), 0);
        for (i = 0; i < POOL_REQUEST_BLOCKS; i++) {
          fill_block (expected, first + i, round);
          ck_assert_msg (memcmp (back + (size_t) i * VDO_BLOCK_SIZE, expected,
                                 VDO_BLOCK_SIZE) == 0,
                         "compression %d: LBN %llu lost", compression,
                         (unsigned long long) (first + i));
        }
      }
    stop_and_audit (vdo);
  }
  vdo_io_free_buffer (expected);
  vdo_io_free_buffer (back);
}
END_TEST

/* Blocks promised to writes in flight are theirs: with every spare
 * block claimed, a write of new data, FUA or not, gets ENOSPC itself
 * (the flush after succeeds), and one block given back is enough for
 * one more.  A write of zeros needs no block. */
START_TEST (test_promised_blocks_are_kept)
{
  struct vdo_options options = {
    .write_policy = VDO_WRITE_POLICY_ASYNC,
    .logical_zones = 2,
    .physical_zones = 2,
  };
  uint8_t *data = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  uint8_t *back = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  struct vdo_statistics stats;
  block_count_t held;
  struct vdo *vdo;

  ck_assert_int_eq (vdo_load (test_vol.path, &options, &vdo), VDO_SUCCESS);
  ck_assert_int_eq (vdo_start (vdo), VDO_SUCCESS);
  vdo_get_statistics (vdo, &stats);
  /* A fresh volume's first write needs tree pages: leave room. */
  held = stats.free_blocks - 8;
  ck_assert (vdo_claim_blocks (vdo->depot, held));
  fill_block (data, 0, 0);
  ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE, 0, false), 0);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  vdo_get_statistics (vdo, &stats);
  ck_assert (vdo_claim_blocks (vdo->depot, stats.free_blocks - held));
  held = stats.free_blocks;
  ck_assert (!vdo_claim_blocks (vdo->depot, 1));

  fill_block (data, 1, 0);
  ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE,
                               VDO_BLOCK_SIZE, false), ENOSPC);
  ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE,
                               VDO_BLOCK_SIZE, true), ENOSPC);
  memset (data, 0, VDO_BLOCK_SIZE);
  ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE,
                               2 * VDO_BLOCK_SIZE, false), 0);
  ck_assert_int_eq (vdo_flush (vdo), 0);

  vdo_return_claimed_blocks (vdo->depot, 1);
  held--;
  fill_block (data, 1, 0);
  ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE,
                               VDO_BLOCK_SIZE, false), 0);
  fill_block (data, 3, 0);
  ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE,
                               3 * VDO_BLOCK_SIZE, false), ENOSPC);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  fill_block (data, 1, 0);
  ck_assert_int_eq (vdo_read (vdo, back, VDO_BLOCK_SIZE, VDO_BLOCK_SIZE), 0);
  ck_assert (memcmp (back, data, VDO_BLOCK_SIZE) == 0);

  /* Everyone else's claims are given back: all blocks are spare again. */
  vdo_return_claimed_blocks (vdo->depot, held);
  vdo_get_statistics (vdo, &stats);
  ck_assert (vdo_claim_blocks (vdo->depot, stats.free_blocks));
  ck_assert (!vdo_claim_blocks (vdo->depot, 1));
  vdo_return_claimed_blocks (vdo->depot, stats.free_blocks);
  stop_and_audit (vdo);
  vdo_io_free_buffer (data);
  vdo_io_free_buffer (back);
}
END_TEST

/* A write acknowledged at launch is promised five blocks, in case its
 * LBN needs tree pages.  Once its lookup finds the path whole, all but
 * its data block must be spare again, though the write itself waits in
 * the packer for company: otherwise, near a full volume, other writes
 * would get ENOSPC with blocks free. */
START_TEST (test_unneeded_promise_is_returned)
{
  struct vdo_options options = {
    .write_policy = VDO_WRITE_POLICY_ASYNC,
    .single_zone_thread = true,
    .compression = true,
    /* The lone fragment waits until the flush. */
    .packer_wait_us = UINT64_C (600) * 1000 * 1000,
  };
  uint8_t *data = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  uint8_t *back = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  struct vdo_statistics stats;
  block_count_t spare, held;
  struct vdo *vdo;
  unsigned int waited;

  ck_assert_int_eq (vdo_load (test_vol.path, &options, &vdo), VDO_SUCCESS);
  ck_assert_int_eq (vdo_start (vdo), VDO_SUCCESS);
  /* LBN 0's tree path, allocated; LBN 1 shares it. */
  memset (data, 'a', VDO_BLOCK_SIZE);
  ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE, 0, false), 0);
  ck_assert_int_eq (vdo_flush (vdo), 0);

  /* Leave just enough spare for a promise (request.c keeps five blocks
   * per data_vio spare), and two more. */
  vdo_get_statistics (vdo, &stats);
  spare = (block_count_t) vdo->data_vio_count * 5 + 5 + 2;
  held = stats.free_blocks - spare;
  ck_assert (vdo_claim_blocks (vdo->depot, held));

  memset (data, 'b', VDO_BLOCK_SIZE);
  ck_assert_int_eq (vdo_write (vdo, data, VDO_BLOCK_SIZE, VDO_BLOCK_SIZE,
                               false), 0);
  /* Acknowledged at launch; wait until it reaches the packer. */
  for (waited = 0; waited < 10000; waited++) {
    vdo_get_statistics (vdo, &stats);
    if (stats.compressed_fragments_in_packer == 1)
      break;
    usleep (1000);
  }
  ck_assert_uint_eq (stats.compressed_fragments_in_packer, 1);
  /* It holds one block (its reservation); the other four are spare. */
  ck_assert (vdo_claim_blocks (vdo->depot, spare - 1));
  ck_assert (!vdo_claim_blocks (vdo->depot, 1));
  vdo_return_claimed_blocks (vdo->depot, held + spare - 1);

  ck_assert_int_eq (vdo_flush (vdo), 0);
  ck_assert_int_eq (vdo_read (vdo, back, VDO_BLOCK_SIZE, VDO_BLOCK_SIZE), 0);
  ck_assert (memcmp (back, data, VDO_BLOCK_SIZE) == 0);
  stop_and_audit (vdo);
  vdo_io_free_buffer (data);
  vdo_io_free_buffer (back);
}
END_TEST

/* Writers racing to the brim, some of their requests FUA: a FUA write
 * takes its blocks as it goes, so it must not take those promised to
 * writes already acknowledged.  Each writer stops at its first ENOSPC;
 * the flush after must succeed and every acknowledged block read back,
 * with zones of each kind on threads of their own. */
#define RACE_WRITERS 8
#define RACE_REQUEST_BLOCKS 32
#define RACE_RANGE_BLOCKS (LOGICAL_BLOCKS / RACE_WRITERS)

struct race_writer {
  struct vdo *vdo;
  unsigned int index;
  uint64_t written;             /* requests acknowledged */
  int result;                   /* of the first that failed */
};

static void *
race_writer_run (void *arg)
{
  struct race_writer *w = arg;
  uint8_t *data = vdo_io_alloc_buffer (RACE_REQUEST_BLOCKS * VDO_BLOCK_SIZE);
  uint64_t first, i;

  for (;;) {
    first = (uint64_t) w->index * RACE_RANGE_BLOCKS
            + w->written * RACE_REQUEST_BLOCKS;
    if ((w->written + 1) * RACE_REQUEST_BLOCKS > RACE_RANGE_BLOCKS)
      break;
    for (i = 0; i < RACE_REQUEST_BLOCKS; i++)
      fill_block (data + i * VDO_BLOCK_SIZE, first + i, 0);
    w->result = vdo_write (w->vdo, data,
                           RACE_REQUEST_BLOCKS * VDO_BLOCK_SIZE,
                           first * VDO_BLOCK_SIZE,
                           (w->index + w->written) % 3 == 0);
    if (w->result != 0)
      break;
    w->written++;
  }
  vdo_io_free_buffer (data);
  return NULL;
}

START_TEST (test_fua_writers_leave_acknowledged_blocks)
{
  struct vdo_options options = {
    .write_policy = VDO_WRITE_POLICY_ASYNC,
    .logical_zones = 2,
    .physical_zones = 2,
  };
  uint8_t *back = vdo_io_alloc_buffer (RACE_REQUEST_BLOCKS * VDO_BLOCK_SIZE);
  uint8_t *expected = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  struct race_writer writers[RACE_WRITERS];
  pthread_t threads[RACE_WRITERS];
  struct vdo *vdo;
  uint64_t request, i;
  unsigned int w;

  ck_assert_int_eq (vdo_load (test_vol.path, &options, &vdo), VDO_SUCCESS);
  ck_assert_int_eq (vdo_start (vdo), VDO_SUCCESS);
  for (w = 0; w < RACE_WRITERS; w++) {
    writers[w] = (struct race_writer) { .vdo = vdo, .index = w };
    ck_assert_int_eq (pthread_create (&threads[w], NULL, race_writer_run,
                                      &writers[w]), 0);
  }
  for (w = 0; w < RACE_WRITERS; w++) {
    ck_assert_int_eq (pthread_join (threads[w], NULL), 0);
    ck_assert_int_eq (writers[w].result, ENOSPC);
  }
  ck_assert_int_eq (vdo_flush (vdo), 0);
  for (w = 0; w < RACE_WRITERS; w++)
    for (request = 0; request < writers[w].written; request++) {
      uint64_t first = (uint64_t) w * RACE_RANGE_BLOCKS
                       + request * RACE_REQUEST_BLOCKS;

      ck_assert_int_eq (vdo_read (vdo, back,
                                  RACE_REQUEST_BLOCKS * VDO_BLOCK_SIZE,
                                  first * VDO_BLOCK_SIZE), 0);
      for (i = 0; i < RACE_REQUEST_BLOCKS; i++) {
        fill_block (expected, first + i, 0);
        ck_assert_msg (memcmp (back + i * VDO_BLOCK_SIZE, expected,
                               VDO_BLOCK_SIZE) == 0,
                       "acknowledged LBN %llu lost",
                       (unsigned long long) (first + i));
      }
    }
  stop_and_audit (vdo);
  vdo_io_free_buffer (back);
  vdo_io_free_buffer (expected);
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
  tcase_add_test (tc, test_empty_pool_wakes_every_waiter);
  tcase_add_test (tc, test_promised_blocks_are_kept);
  tcase_add_test (tc, test_unneeded_promise_is_returned);
  tcase_add_test (tc, test_fua_writers_leave_acknowledged_blocks);
  suite_add_tcase (s, tc);
  return s;
}
