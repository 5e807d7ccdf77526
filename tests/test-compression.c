/* nbdkit-vdo: compression through the real write path.
 *
 * A volume on a sparse temporary file, with compression on: compressible
 * blocks pack densely (within 10% of first fit over the same LZ4
 * fragments), read back, and audit clean, also after a clean restart
 * and after a crash; dedupe shares compressed fragments; a compressed
 * block is freed with its last fragment; FUA writes are not packed, and
 * writes whose writer waits do not wait long; what a burst of writes
 * stores lands side by side. */
#include <config.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compressed-block-format.h"
#include "io.h"
#include "status.h"
#include "unit-suites.h"
#include "vdo.h"
#include "volume.h"
#include "volume-layout.h"
#include "volume-test-util.h"

#define DEVICE_BYTES (UINT64_C (4) << 30)
#define LOGICAL_BLOCKS 65536
/* Blocks written at once: enough to keep many bins busy. */
#define BATCH 64

static struct test_volume test_vol;
static uint8_t *buffer, *readback;

static uint64_t
next (uint64_t *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* A block of SEED: a run of random bytes repeated to the end, so LZ4
 * shrinks it to about the run.  Every seventh seed does not compress. */
static void
fill_block (uint8_t *block, uint64_t seed)
{
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  size_t run = seed % 7 == 3 ? VDO_BLOCK_SIZE : 32 + next (&x) % 2200, i;

  for (i = 0; i < run && i < VDO_BLOCK_SIZE; i++)
    block[i] = (uint8_t) next (&x);
  for (; i < VDO_BLOCK_SIZE; i++)
    block[i] = block[i - run];
  /* Never all zeros. */
  block[0] |= 1;
}

static struct vdo *
start_with (bool dedupe, enum vdo_write_policy policy)
{
  struct vdo_options options = {
    .dedupe = dedupe,
    .compression = true,
    .write_policy = policy,
    /* Bins leave full or on flushes, not on time, however slowly a
     * sanitizer build runs: density is the packer's alone.  (The
     * synchronous policy's short wait stays.) */
    .packer_wait_us = 60000000,
  };
  struct vdo *vdo;

  ck_assert_int_eq (vdo_load (test_vol.path, &options, &vdo), VDO_SUCCESS);
  ck_assert_int_eq (vdo_start (vdo), VDO_SUCCESS);
  return vdo;
}

static struct vdo *
start (void)
{
  return start_with (false, VDO_WRITE_POLICY_ASYNC);
}

static struct vdo_statistics
stats_of (struct vdo *vdo)
{
  struct vdo_statistics stats;

  vdo_get_statistics (vdo, &stats);
  return stats;
}

/* Write seeds first .. first+count-1 to LBNs lbn.., BATCH at a time. */
static void
write_seeds (struct vdo *vdo, uint64_t lbn, uint64_t first, uint64_t count)
{
  uint8_t *data = vdo_io_alloc_buffer (BATCH * VDO_BLOCK_SIZE);
  uint64_t done = 0;

  ck_assert_ptr_nonnull (data);
  while (done < count) {
    uint64_t n = count - done < BATCH ? count - done : BATCH, i;

    for (i = 0; i < n; i++)
      fill_block (data + i * VDO_BLOCK_SIZE, first + done + i);
    ck_assert_int_eq (vdo_write (vdo, data, n * VDO_BLOCK_SIZE,
                                 (lbn + done) * VDO_BLOCK_SIZE, false), 0);
    done += n;
  }
  vdo_io_free_buffer (data);
}

static void
check_seeds (struct vdo *vdo, uint64_t lbn, uint64_t first, uint64_t count)
{
  uint64_t i;

  for (i = 0; i < count; i++) {
    fill_block (buffer, first + i);
    ck_assert_int_eq (vdo_read (vdo, readback, VDO_BLOCK_SIZE,
                                (lbn + i) * VDO_BLOCK_SIZE), 0);
    ck_assert_msg (memcmp (buffer, readback, VDO_BLOCK_SIZE) == 0,
                   "LBN %" PRIu64 " does not hold seed %" PRIu64, lbn + i,
                   first + i);
  }
}

/* Map LBNs to the zero block: their tree pages get allocated, so later
 * allocation counts are data alone. */
static void
grow_tree (struct vdo *vdo, uint64_t lbn, uint64_t count)
{
  uint8_t *zeros = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  uint64_t i;

  memset (zeros, 0, VDO_BLOCK_SIZE);
  for (i = 0; i < count; i += 812)
    ck_assert_int_eq (vdo_write (vdo, zeros, VDO_BLOCK_SIZE,
                                 (lbn + i) * VDO_BLOCK_SIZE, true), 0);
  vdo_io_free_buffer (zeros);
}

static void
stop_and_audit (struct vdo *vdo)
{
  test_volume_stop_and_audit (vdo, test_vol.path);
}

/* Blocks first fit needs for these seeds' fragments, in order, with no
 * limit on open bins; blocks that do not compress take one each. */
static uint64_t
ideal_blocks (uint64_t first, uint64_t count)
{
  unsigned int *free_space = calloc (count, sizeof *free_space);
  unsigned int *slots = calloc (count, sizeof *slots);
  uint8_t *fragment = malloc (VDO_MAX_COMPRESSED_FRAGMENT_SIZE);
  uint64_t bins = 0, whole = 0, i, b;

  ck_assert (free_space != NULL && slots != NULL && fragment != NULL);
  for (i = 0; i < count; i++) {
    size_t size;

    fill_block (buffer, first + i);
    size = vdo_compress_block (buffer, fragment);
    if (size == 0) {
      whole++;
      continue;
    }
    for (b = 0; b < bins; b++)
      if (free_space[b] >= size && slots[b] < VDO_MAX_COMPRESSION_SLOTS)
        break;
    if (b == bins) {
      free_space[bins] = VDO_COMPRESSED_BLOCK_DATA_SIZE;
      slots[bins++] = 0;
    }
    free_space[b] -= size;
    slots[b]++;
  }
  free (free_space);
  free (slots);
  free (fragment);
  return bins + whole;
}

static void
setup (void)
{
  test_volume_create (&test_vol, "compression", DEVICE_BYTES, LOGICAL_BLOCKS,
                      13);
  buffer = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  readback = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
}

static void
teardown (void)
{
  vdo_io_free_buffer (buffer);
  vdo_io_free_buffer (readback);
  test_volume_remove (&test_vol);
}

#define COUNT 3000

START_TEST (test_packs_densely_and_reads_back)
{
  struct vdo *vdo = start ();
  struct vdo_statistics s;
  uint64_t before, used, ideal;

  grow_tree (vdo, 0, COUNT);
  before = stats_of (vdo).allocated_blocks;
  write_seeds (vdo, 0, 1, COUNT);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  s = stats_of (vdo);
  used = s.allocated_blocks - before;
  ideal = ideal_blocks (1, COUNT);
  ck_assert_msg (used * 10 <= ideal * 11,
                 "%" PRIu64 " blocks used, first fit needs %" PRIu64, used,
                 ideal);
  ck_assert_uint_gt (s.compressed_blocks_written, 0);
  ck_assert_uint_ge (s.compressed_fragments_written,
                     2 * s.compressed_blocks_written);
  ck_assert_uint_eq (s.compressed_fragments_in_packer, 0);
  check_seeds (vdo, 0, 1, COUNT);
  stop_and_audit (vdo);

  /* After a clean restart. */
  vdo = start ();
  check_seeds (vdo, 0, 1, COUNT);
  ck_assert_uint_eq (stats_of (vdo).allocated_blocks, s.allocated_blocks);
  stop_and_audit (vdo);
}
END_TEST

/* The blocks written in one slab's data part, which must be a single
 * run from its first block: a hole means a block was allocated and
 * given back while later ones were written. */
static uint64_t
written_run (int fd, physical_block_number_t origin, block_count_t blocks)
{
  off_t start = (off_t) origin * VDO_BLOCK_SIZE;
  off_t end = (off_t) (origin + blocks) * VDO_BLOCK_SIZE;
  off_t data = lseek (fd, start, SEEK_DATA), hole, more;

  if (data < 0 || data >= end)
    return 0;
  ck_assert_msg (data == start, "slab at PBN %" PRIu64 " written from "
                 "PBN %lld on", origin, (long long) (data / VDO_BLOCK_SIZE));
  hole = lseek (fd, data, SEEK_HOLE);
  ck_assert_int_ge (hole, data);
  if (hole >= end)
    return blocks;
  more = lseek (fd, hole, SEEK_DATA);
  ck_assert_msg (more < 0 || more >= end, "hole at PBN %lld before "
                 "blocks written at PBN %lld",
                 (long long) (hole / VDO_BLOCK_SIZE),
                 (long long) (more / VDO_BLOCK_SIZE));
  return (hole - start) / VDO_BLOCK_SIZE;
}

/* Fragments only reserve a block, and the packer allocates one when it
 * writes a bin: compressed blocks and uncompressed ones are written
 * side by side, with no block left unwritten between them.  (When every
 * fragment allocated at launch, every other block went back after
 * packing.) */
START_TEST (test_written_blocks_side_by_side)
{
  struct vdo *vdo = start ();
  struct vdo_statistics s;
  const struct slab_depot_state_2_0 *depot;
  struct vdo_volume *volume;
  uint64_t written = 0;
  block_count_t slab;
  int fd;

  grow_tree (vdo, 0, COUNT);
  write_seeds (vdo, 0, 1, COUNT);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  s = stats_of (vdo);
  ck_assert_uint_gt (s.compressed_blocks_written, 0);
  stop_and_audit (vdo);

  ck_assert_int_eq (vdo_volume_open (test_vol.path, false, &volume),
                    VDO_SUCCESS);
  depot = &vdo_volume_get_states (volume)->slab_depot;
  fd = open (test_vol.path, O_RDONLY);
  ck_assert_int_ge (fd, 0);
  for (slab = 0; slab < vdo_volume_slab_count (volume); slab++)
    written += written_run (fd, vdo_slab_origin (depot, slab),
                            depot->slab_config.data_blocks);
  close (fd);
  vdo_volume_close (volume);
  /* Data, compressed blocks and tree pages: every block in use. */
  ck_assert_uint_eq (written, s.allocated_blocks);
}
END_TEST

/* Overwriting every fragment frees the compressed blocks; partial
 * overwrites of compressed blocks merge with the old data. */
START_TEST (test_last_fragment_frees_the_block)
{
  struct vdo *vdo = start ();
  uint64_t before, i;
  uint8_t *zeros;

  grow_tree (vdo, 0, 700);
  before = stats_of (vdo).allocated_blocks;
  write_seeds (vdo, 0, 10, 700);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  ck_assert_uint_gt (stats_of (vdo).allocated_blocks, before);
  /* Half of them overwritten: the data is still there for the rest. */
  write_seeds (vdo, 0, 5000, 350);
  check_seeds (vdo, 0, 5000, 350);
  check_seeds (vdo, 350, 360, 350);
  /* A partial write into a compressed block's LBN. */
  fill_block (buffer, 360);
  memset (buffer + 100, 0xab, 200);
  ck_assert_int_eq (vdo_write (vdo, buffer + 100, 200,
                               350 * VDO_BLOCK_SIZE + 100, false), 0);
  ck_assert_int_eq (vdo_read (vdo, readback, VDO_BLOCK_SIZE,
                              350 * VDO_BLOCK_SIZE), 0);
  ck_assert (memcmp (buffer, readback, VDO_BLOCK_SIZE) == 0);
  /* All of them trimmed: nothing but the tree is left. */
  ck_assert_int_eq (vdo_discard (vdo, 700 * VDO_BLOCK_SIZE, 0, true), 0);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  ck_assert_uint_eq (stats_of (vdo).allocated_blocks, before);
  zeros = calloc (1, VDO_BLOCK_SIZE);
  for (i = 0; i < 700; i += 97) {
    ck_assert_int_eq (vdo_read (vdo, readback, VDO_BLOCK_SIZE,
                                i * VDO_BLOCK_SIZE), 0);
    ck_assert (memcmp (zeros, readback, VDO_BLOCK_SIZE) == 0);
  }
  free (zeros);
  stop_and_audit (vdo);
}
END_TEST

/* Duplicates of compressed data map to the fragment: no new blocks. */
START_TEST (test_dedupe_shares_fragments)
{
  struct vdo *vdo = start_with (true, VDO_WRITE_POLICY_ASYNC);
  struct vdo_statistics s;
  uint64_t before, after_first;

  grow_tree (vdo, 0, 2000);
  before = stats_of (vdo).allocated_blocks;
  write_seeds (vdo, 0, 1, 600);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  after_first = stats_of (vdo).allocated_blocks;
  ck_assert_uint_gt (after_first, before);
  ck_assert_uint_gt (stats_of (vdo).compressed_blocks_written, 0);
  write_seeds (vdo, 1000, 1, 600);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  s = stats_of (vdo);
  ck_assert_uint_eq (s.allocated_blocks, after_first);
  ck_assert_uint_ge (s.dedupe_advice_valid, 600);
  check_seeds (vdo, 0, 1, 600);
  check_seeds (vdo, 1000, 1, 600);
  stop_and_audit (vdo);

  /* The index names the fragments after a restart too. */
  vdo = start_with (true, VDO_WRITE_POLICY_ASYNC);
  write_seeds (vdo, 1700, 1, 200);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  ck_assert_uint_eq (stats_of (vdo).allocated_blocks, after_first);
  check_seeds (vdo, 1700, 1, 200);
  /* Overwriting one copy keeps the other's fragments. */
  write_seeds (vdo, 0, 9000, 600);
  check_seeds (vdo, 1000, 1, 600);
  check_seeds (vdo, 0, 9000, 600);
  stop_and_audit (vdo);
}
END_TEST

/* Flushed compressed data survives a crash: recovery replays the
 * journal's fragment mappings and their references. */
START_TEST (test_recovery)
{
  struct vdo *vdo = start ();
  uint64_t allocated;

  write_seeds (vdo, 0, 100, 1500);
  write_seeds (vdo, 200, 3000, 300);
  ck_assert_int_eq (vdo_flush (vdo), 0);
  allocated = stats_of (vdo).allocated_blocks;
  /* No clean stop: the volume stays DIRTY. */
  vdo_free (vdo);

  vdo = start ();
  check_seeds (vdo, 0, 100, 200);
  check_seeds (vdo, 200, 3000, 300);
  check_seeds (vdo, 500, 600, 1000);
  ck_assert_uint_eq (stats_of (vdo).allocated_blocks, allocated);
  stop_and_audit (vdo);
}
END_TEST

START_TEST (test_fua_and_waiting_writers)
{
  struct vdo *vdo = start ();
  struct timespec t0, t1;
  uint64_t i;
  double seconds;

  /* FUA writes are never packed. */
  for (i = 0; i < 20; i++) {
    fill_block (buffer, 50 + i);
    ck_assert_int_eq (vdo_write (vdo, buffer, VDO_BLOCK_SIZE,
                                 i * VDO_BLOCK_SIZE, true), 0);
  }
  ck_assert_uint_eq (stats_of (vdo).compressed_fragments_written, 0);
  check_seeds (vdo, 0, 50, 20);
  /* Rewriting a block parked in the packer releases it at once. */
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (i = 0; i < 20; i++) {
    fill_block (buffer, 70 + i);
    ck_assert_int_eq (vdo_write (vdo, buffer, VDO_BLOCK_SIZE,
                                 30 * VDO_BLOCK_SIZE, false), 0);
  }
  check_seeds (vdo, 30, 89, 1);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  /* Twenty waits for the timer would take twenty minutes. */
  ck_assert_msg (seconds < 0.8, "rewrites took %.3f s", seconds);
  stop_and_audit (vdo);

  /* Under the synchronous policy, a write's fragment waits 1 ms, not
   * 50, for company. */
  vdo = start_with (false, VDO_WRITE_POLICY_SYNC);
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (i = 0; i < 20; i++) {
    fill_block (buffer, 200 + i);
    ck_assert_int_eq (vdo_write (vdo, buffer, VDO_BLOCK_SIZE,
                                 (100 + i) * VDO_BLOCK_SIZE, false), 0);
  }
  clock_gettime (CLOCK_MONOTONIC, &t1);
  seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  ck_assert_msg (seconds < 0.8, "synchronous writes took %.3f s", seconds);
  check_seeds (vdo, 100, 200, 20);
  write_seeds (vdo, 200, 300, 500);
  check_seeds (vdo, 200, 300, 500);
  ck_assert_uint_gt (stats_of (vdo).compressed_blocks_written, 0);
  stop_and_audit (vdo);
}
END_TEST

/* A FUA write of data whose hash lock agent is parked in the packer
 * takes the agent out: it does not wait for the timer (a minute here). */
START_TEST (test_fua_duplicate_of_a_parked_write)
{
  struct vdo *vdo = start_with (true, VDO_WRITE_POLICY_ASYNC);
  struct timespec t0, t1;
  double seconds;
  uint64_t i;

  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (i = 0; i < 10; i++) {
    fill_block (buffer, 400 + i);
    ck_assert_int_eq (vdo_write (vdo, buffer, VDO_BLOCK_SIZE,
                                 i * VDO_BLOCK_SIZE, false), 0);
    ck_assert_int_eq (vdo_write (vdo, buffer, VDO_BLOCK_SIZE,
                                 (100 + i) * VDO_BLOCK_SIZE, true), 0);
  }
  clock_gettime (CLOCK_MONOTONIC, &t1);
  seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  ck_assert_msg (seconds < 20, "FUA duplicates took %.3f s", seconds);
  check_seeds (vdo, 0, 400, 10);
  check_seeds (vdo, 100, 400, 10);
  stop_and_audit (vdo);
}
END_TEST

Suite *
compression_suite (void)
{
  Suite *s = suite_create ("compression");
  TCase *tc = tcase_create ("compression");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_packs_densely_and_reads_back);
  tcase_add_test (tc, test_last_fragment_frees_the_block);
  tcase_add_test (tc, test_written_blocks_side_by_side);
  tcase_add_test (tc, test_dedupe_shares_fragments);
  tcase_add_test (tc, test_recovery);
  tcase_add_test (tc, test_fua_and_waiting_writers);
  tcase_add_test (tc, test_fua_duplicate_of_a_parked_write);
  suite_add_tcase (s, tc);
  return s;
}
