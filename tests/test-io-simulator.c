/* nbdkit-vdo: the power-cut simulator: what reads see, the durable
 * prefixes, random subsets of volatile writes, torn sectors, a dying
 * device, and the difference between a flush and a FUA write. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io-simulator.h"
#include "io.h"
#include "super-block.h"
#include "unit-suites.h"
#include "vdo.h"
#include "volume.h"

#define BLOCK VDO_BLOCK_SIZE
#define SECTOR VDO_SIM_SECTOR_SIZE
#define BASE_BLOCKS 64

/* --- Fixtures --------------------------------------------------------- */

static char test_dir[64];

static void
make_test_dir (void)
{
  strcpy (test_dir, "/tmp/vdo-sim-test-XXXXXX");
  if (!mkdtemp (test_dir)) {
    perror ("mkdtemp");
    abort ();
  }
}

static int
remove_entry (const char *path, const struct stat *st, int type,
              struct FTW *ftw)
{
  (void) st;
  (void) type;
  (void) ftw;
  remove (path);
  return 0;
}

static void
remove_test_dir (void)
{
  if (test_dir[0])
    nftw (test_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  test_dir[0] = '\0';
}

/* The byte every sector of base block I holds. */
static uint8_t
base_byte (uint64_t block)
{
  return (uint8_t) (0x40 + block);
}

/* A file of BASE_BLOCKS blocks, block i all base_byte (i). */
static void
make_base (char *path, const char *name)
{
  uint8_t block[BLOCK];
  uint64_t i;
  int fd;

  snprintf (path, PATH_MAX, "%s/%s", test_dir, name);
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  for (i = 0; i < BASE_BLOCKS; i++) {
    memset (block, base_byte (i), BLOCK);
    ck_assert_int_eq (pwrite (fd, block, BLOCK, i * BLOCK), BLOCK);
  }
  close (fd);
}

static struct vdo_sim *
make_sim (const char *path, bool hold)
{
  struct vdo_sim_options options = { .log_dir = test_dir, .hold = hold };
  struct vdo_sim *sim;

  ck_assert_int_eq (vdo_sim_create_file (path, &options, &sim), 0);
  return sim;
}

/* --- Requests --------------------------------------------------------- */

struct waiter {
  struct vdo_io_request request;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
  int result;
};

static void
waiter_done (struct vdo_io_request *request, int result)
{
  struct waiter *w = request->context;

  pthread_mutex_lock (&w->lock);
  w->done = true;
  w->result = result;
  pthread_cond_signal (&w->cond);
  pthread_mutex_unlock (&w->lock);
}

static void
submit (struct vdo_io *io, struct waiter *w, enum vdo_io_op op,
        uint64_t block, block_count_t count, void *buffer, bool fua)
{
  memset (w, 0, sizeof *w);
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->cond, NULL);
  w->request.op = op;
  w->request.fua = fua;
  w->request.block = block;
  w->request.count = count;
  w->request.buffer = buffer;
  w->request.callback = waiter_done;
  w->request.context = w;
  vdo_io_submit_one (io, &w->request);
}

static int
wait_for (struct waiter *w)
{
  int result;

  pthread_mutex_lock (&w->lock);
  while (!w->done)
    pthread_cond_wait (&w->cond, &w->lock);
  result = w->result;
  pthread_mutex_unlock (&w->lock);
  pthread_cond_destroy (&w->cond);
  pthread_mutex_destroy (&w->lock);
  return result;
}

static int
run (struct vdo_io *io, enum vdo_io_op op, uint64_t block,
     block_count_t count, void *buffer, bool fua)
{
  struct waiter w;

  submit (io, &w, op, block, count, buffer, fua);
  return wait_for (&w);
}

/* Write COUNT blocks of BYTE at BLOCK, synchronously. */
static void
write_byte (struct vdo_io *io, uint64_t block, block_count_t count,
            uint8_t byte)
{
  uint8_t *buffer = vdo_io_alloc_buffer (count * BLOCK);

  memset (buffer, byte, count * BLOCK);
  ck_assert_int_eq (vdo_io_write_blocks (io, block, count, buffer), 0);
  vdo_io_free_buffer (buffer);
}

/* The byte BLOCK holds throughout, or -1 if its bytes differ. */
static int
block_byte (struct vdo_io *io, uint64_t block)
{
  uint8_t *buffer = vdo_io_alloc_buffer (BLOCK);
  int byte = -1, i;

  ck_assert_int_eq (vdo_io_read_blocks (io, block, 1, buffer), 0);
  for (i = 1; i < BLOCK && buffer[i] == buffer[0]; i++)
    ;
  if (i == BLOCK)
    byte = buffer[0];
  vdo_io_free_buffer (buffer);
  return byte;
}

/* The byte of BLOCK in the image of a crash at POINT. */
static int
image_byte (struct vdo_sim *sim, enum vdo_sim_crash_kind kind, uint64_t point,
            uint64_t seed, uint64_t block)
{
  struct vdo_sim_crash crash = { kind, point, seed };
  struct vdo_sim *image;
  int byte;

  ck_assert_int_eq (vdo_sim_open_crash (sim, &crash, NULL, &image, NULL), 0);
  byte = block_byte (vdo_sim_io (image), block);
  vdo_sim_close (image);
  return byte;
}

/* --- Tests ------------------------------------------------------------ */

START_TEST (test_reads_and_lower)
{
  char path[PATH_MAX];
  struct vdo_sim *sim;
  struct vdo_io *io, *lower;
  uint8_t *buffer = vdo_io_alloc_buffer (4 * BLOCK);
  struct vdo_sim_counts counts;

  make_base (path, "reads");
  sim = make_sim (path, false);
  io = vdo_sim_io (sim);
  ck_assert_uint_eq (vdo_io_block_count (io), BASE_BLOCKS);
  ck_assert_int_eq (block_byte (io, 3), base_byte (3));
  write_byte (io, 3, 2, 0xa1);
  ck_assert_int_eq (block_byte (io, 3), 0xa1);
  ck_assert_int_eq (block_byte (io, 4), 0xa1);
  ck_assert_int_eq (block_byte (io, 5), base_byte (5));

  /* Asynchronous reads merge log and lower blocks alike. */
  ck_assert_int_eq (vdo_io_start (io, 0), 0);
  ck_assert_int_eq (run (io, VDO_IO_READ, 2, 4, buffer, false), 0);
  ck_assert_int_eq (buffer[0], base_byte (2));
  ck_assert_int_eq (buffer[BLOCK], 0xa1);
  ck_assert_int_eq (buffer[3 * BLOCK + 17], base_byte (5));
  vdo_sim_get_counts (sim, &counts);
  ck_assert_uint_eq (counts.writes, 1);
  ck_assert_uint_eq (counts.blocks_written, 2);
  vdo_sim_close (sim);

  /* The file underneath never changed. */
  ck_assert_int_eq (vdo_io_open (path, VDO_IO_BUFFERED, &lower), 0);
  ck_assert_int_eq (block_byte (lower, 3), base_byte (3));
  vdo_io_close (lower);
  vdo_io_free_buffer (buffer);
}
END_TEST

START_TEST (test_prefix_images)
{
  char path[PATH_MAX];
  struct vdo_sim *sim;
  struct vdo_io *io;
  uint8_t *buffer = vdo_io_alloc_buffer (BLOCK);
  uint64_t points[8], few[2];
  size_t n;

  make_base (path, "prefix");
  sim = make_sim (path, false);
  io = vdo_sim_io (sim);
  ck_assert_int_eq (vdo_io_start (io, 0), 0);
  write_byte (io, 1, 1, 0xa1);
  ck_assert_int_eq (vdo_io_flush (io), 0);
  memset (buffer, 0xb2, BLOCK);
  ck_assert_int_eq (run (io, VDO_IO_WRITE, 2, 1, buffer, true), 0);
  write_byte (io, 3, 1, 0xc3);
  write_byte (io, 1, 1, 0xd4);
  ck_assert_int_eq (run (io, VDO_IO_FLUSH, 0, 0, NULL, false), 0);
  write_byte (io, 4, 1, 0xe5);

  /* Boundaries: the first flush, the FUA write, the second flush. */
  n = vdo_sim_boundaries (sim, points, 8);
  ck_assert_uint_eq (n, 3);
  ck_assert_uint_lt (points[0], points[1]);
  ck_assert_uint_lt (points[1], points[2]);
  ck_assert_uint_le (points[2], vdo_sim_clock (sim));

  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, 0, 1, 1),
                    base_byte (1));
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, points[0] - 1, 1,
                                1), base_byte (1));
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, points[0], 1, 1),
                    0xa1);
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, points[0], 1, 2),
                    base_byte (2));
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, points[1], 1, 2),
                    0xb2);
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, points[1], 1, 3),
                    base_byte (3));
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, points[2], 1, 1),
                    0xd4);
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, points[2], 1, 3),
                    0xc3);
  /* The last write was never flushed. */
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE,
                                vdo_sim_clock (sim), 1, 4), base_byte (4));
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE,
                                vdo_sim_clock (sim), 1, 1), 0xd4);

  /* Sampling keeps the ends. */
  ck_assert_uint_eq (vdo_sim_boundaries (sim, few, 2), 3);
  ck_assert_uint_eq (few[0], points[0]);
  ck_assert_uint_eq (few[1], points[2]);
  vdo_sim_close (sim);
  vdo_io_free_buffer (buffer);
}
END_TEST

START_TEST (test_subset_images)
{
  char path[PATH_MAX];
  struct vdo_sim *sim;
  struct vdo_io *io;
  uint8_t *buffer = vdo_io_alloc_buffer (BLOCK);
  bool seen[4][2] = { { false } };
  uint64_t seed, end;

  make_base (path, "subset");
  sim = make_sim (path, false);
  io = vdo_sim_io (sim);
  ck_assert_int_eq (vdo_io_start (io, 0), 0);
  write_byte (io, 5, 1, 0x51);
  ck_assert_int_eq (vdo_io_flush (io), 0);
  /* Volatile from here: 5 overwritten, 6 and 7 new, 8 written then
   * overwritten by a FUA write that makes the old data unreachable. */
  write_byte (io, 5, 1, 0x52);
  write_byte (io, 6, 2, 0x61);
  write_byte (io, 8, 1, 0x81);
  memset (buffer, 0x82, BLOCK);
  ck_assert_int_eq (run (io, VDO_IO_WRITE, 8, 1, buffer, true), 0);
  end = vdo_sim_clock (sim);

  for (seed = 1; seed <= 200; seed++) {
    struct vdo_sim_crash crash = { VDO_SIM_CRASH_SUBSET, end, seed };
    struct vdo_sim_crash_info info, again;
    struct vdo_sim *image;
    struct vdo_io *view;
    int b5, b6, b7;

    ck_assert_int_eq (vdo_sim_open_crash (sim, &crash, NULL, &image, &info),
                      0);
    view = vdo_sim_io (image);
    b5 = block_byte (view, 5);
    b6 = block_byte (view, 6);
    b7 = block_byte (view, 7);
    ck_assert (b5 == 0x51 || b5 == 0x52);
    ck_assert (b6 == base_byte (6) || b6 == 0x61);
    /* One write: both of its blocks, or neither. */
    ck_assert_int_eq (b6 == 0x61, b7 == 0x61);
    ck_assert_int_eq (block_byte (view, 8), 0x82);
    ck_assert_int_eq (block_byte (view, 9), base_byte (9));
    ck_assert_uint_eq (info.durable_writes, 2);
    ck_assert_uint_eq (info.volatile_writes, 3);
    ck_assert_uint_eq (info.torn_blocks, 0);
    seen[0][b5 == 0x52] = true;
    seen[1][b6 == 0x61] = true;
    vdo_sim_close (image);

    /* The same seed gives the same image. */
    ck_assert_int_eq (vdo_sim_open_crash (sim, &crash, NULL, &image, &again),
                      0);
    ck_assert_mem_eq (&info, &again, sizeof info);
    ck_assert_int_eq (block_byte (vdo_sim_io (image), 5), b5);
    ck_assert_int_eq (block_byte (vdo_sim_io (image), 6), b6);
    vdo_sim_close (image);
  }
  ck_assert (seen[0][0] && seen[0][1] && seen[1][0] && seen[1][1]);
  vdo_sim_close (sim);
  vdo_io_free_buffer (buffer);
}
END_TEST

/* Count BLOCK's sectors that hold NEW, and check the rest hold OLD. */
static int
new_sectors (struct vdo_io *io, uint64_t block, uint8_t old, uint8_t new)
{
  uint8_t *buffer = vdo_io_alloc_buffer (BLOCK);
  int s, i, count = 0;

  ck_assert_int_eq (vdo_io_read_blocks (io, block, 1, buffer), 0);
  for (s = 0; s < VDO_SIM_SECTORS_PER_BLOCK; s++) {
    uint8_t first = buffer[s * SECTOR];

    /* Sectors never tear inside.  (Asserting per byte would be slow.) */
    for (i = 1; i < SECTOR && buffer[s * SECTOR + i] == first; i++)
      ;
    ck_assert_msg (i == SECTOR && (first == old || first == new),
                   "block %d sector %d holds 0x%02x, not all the same or "
                   "neither 0x%02x nor 0x%02x", (int) block, s, first, old,
                   new);
    count += first == new;
  }
  vdo_io_free_buffer (buffer);
  return count;
}

START_TEST (test_torn_writes)
{
  char path[PATH_MAX];
  struct vdo_sim *sim;
  struct vdo_io *io;
  uint64_t seed, end, mixed_images = 0;

  make_base (path, "torn");
  sim = make_sim (path, false);
  io = vdo_sim_io (sim);
  write_byte (io, 10, 1, 0xa0);
  write_byte (io, 12, 3, 0xb0);
  end = vdo_sim_clock (sim);

  for (seed = 1; seed <= 100; seed++) {
    struct vdo_sim_crash crash = { VDO_SIM_CRASH_TORN, end, seed };
    struct vdo_sim_crash_info info;
    struct vdo_sim *image;
    uint64_t block, mixed = 0;

    ck_assert_int_eq (vdo_sim_open_crash (sim, &crash, NULL, &image, &info),
                      0);
    ck_assert_uint_eq (info.volatile_writes, 2);
    ck_assert_uint_ge (info.torn_blocks, 1);
    for (block = 10; block < 15; block++) {
      uint8_t new = block == 10 ? 0xa0 : 0xb0;
      int count;

      if (block == 11)
        continue;
      count = new_sectors (vdo_sim_io (image), block, base_byte (block), new);
      mixed += count > 0 && count < VDO_SIM_SECTORS_PER_BLOCK;
    }
    ck_assert_uint_eq (mixed, info.torn_blocks);
    ck_assert_int_eq (block_byte (vdo_sim_io (image), 11), base_byte (11));
    mixed_images += mixed > 1;
    vdo_sim_close (image);
  }
  /* More than one torn block in an image happens too. */
  ck_assert_uint_gt (mixed_images, 0);
  vdo_sim_close (sim);
}
END_TEST

START_TEST (test_eio_mode)
{
  char path[PATH_MAX];
  struct vdo_sim *sim;
  struct vdo_io *io;
  struct vdo_sim_counts counts;
  uint8_t *buffer = vdo_io_alloc_buffer (BLOCK);
  struct waiter queued, flush;
  uint64_t seed, first;

  make_base (path, "eio");
  sim = make_sim (path, true);
  io = vdo_sim_io (sim);
  ck_assert_int_eq (vdo_io_start (io, 0), 0);
  vdo_sim_get_counts (sim, &counts);
  first = counts.operations;
  /* Three operations succeed; the fourth kills the device. */
  vdo_sim_fail_from (sim, first + 3, 0);
  write_byte (io, 20, 1, 0x20);
  ck_assert_int_eq (vdo_io_flush (io), 0);
  memset (buffer, 0x21, BLOCK);
  submit (io, &queued, VDO_IO_WRITE, 21, 1, buffer, true);
  ck_assert_uint_eq (vdo_sim_pending (sim), 1);
  submit (io, &flush, VDO_IO_FLUSH, 0, 0, NULL, false);
  /* The write was queued before the device died, and fails anyway. */
  ck_assert (vdo_sim_release (sim, 0));
  ck_assert_int_eq (wait_for (&queued), EIO);
  ck_assert (vdo_sim_release (sim, 0));
  ck_assert_int_eq (wait_for (&flush), EIO);
  ck_assert (!vdo_sim_release (sim, 0));
  ck_assert_int_eq (vdo_io_read_blocks (io, 20, 1, buffer), EIO);
  ck_assert_int_eq (vdo_io_write_blocks (io, 22, 1, buffer), EIO);
  ck_assert_int_eq (vdo_io_flush (io), EIO);
  vdo_sim_get_counts (sim, &counts);
  ck_assert_uint_eq (counts.operations, first + 7);
  ck_assert_uint_eq (counts.failed, 5);

  /* What the dead device kept: the flushed write, never the others. */
  for (seed = 1; seed <= 20; seed++) {
    uint64_t end = vdo_sim_clock (sim);

    ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_SUBSET, end, seed, 20),
                      0x20);
    ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_TORN, end, seed, 21),
                      base_byte (21));
    ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_SUBSET, end, seed, 22),
                      base_byte (22));
  }
  vdo_sim_close (sim);
  vdo_io_free_buffer (buffer);
}
END_TEST

START_TEST (test_fua_and_flush)
{
  char path[PATH_MAX];
  struct vdo_sim *sim;
  struct vdo_io *io;
  uint8_t *plain = vdo_io_alloc_buffer (BLOCK);
  uint8_t *fua = vdo_io_alloc_buffer (BLOCK);
  struct waiter write, early_flush, late_flush, fua_write;
  uint64_t point, seed;
  bool seen_in_flight = false;

  make_base (path, "fua");
  sim = make_sim (path, true);
  io = vdo_sim_io (sim);
  ck_assert_int_eq (vdo_io_start (io, 0), 0);

  /* A flush submitted while a write is in flight says nothing of it,
   * even when the write completes first. */
  memset (plain, 0x30, BLOCK);
  submit (io, &write, VDO_IO_WRITE, 30, 1, plain, false);
  submit (io, &early_flush, VDO_IO_FLUSH, 0, 0, NULL, false);
  ck_assert (vdo_sim_release (sim, 0));
  ck_assert_int_eq (wait_for (&write), 0);
  ck_assert (vdo_sim_release (sim, 0));
  ck_assert_int_eq (wait_for (&early_flush), 0);
  ck_assert_int_eq (block_byte (io, 30), 0x30);
  point = vdo_sim_clock (sim);
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, point, 1, 30),
                    base_byte (30));

  /* A flush submitted after it completed makes it durable. */
  submit (io, &late_flush, VDO_IO_FLUSH, 0, 0, NULL, false);
  point = vdo_sim_clock (sim);
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, point, 1, 30),
                    base_byte (30));
  ck_assert (vdo_sim_release (sim, 0));
  ck_assert_int_eq (wait_for (&late_flush), 0);
  point = vdo_sim_clock (sim);
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, point, 1, 30),
                    0x30);

  /* A FUA write is durable when it completes, with no flush; while in
   * flight it is only volatile. */
  memset (fua, 0x31, BLOCK);
  submit (io, &fua_write, VDO_IO_WRITE, 31, 1, fua, true);
  point = vdo_sim_clock (sim);
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, point, 1, 31),
                    base_byte (31));
  for (seed = 1; seed <= 50; seed++)
    seen_in_flight |= image_byte (sim, VDO_SIM_CRASH_SUBSET, point, seed, 31)
                      == 0x31;
  ck_assert (seen_in_flight);
  ck_assert (vdo_sim_release (sim, 0));
  ck_assert_int_eq (wait_for (&fua_write), 0);
  point = vdo_sim_clock (sim);
  ck_assert_int_eq (image_byte (sim, VDO_SIM_CRASH_DURABLE, point, 1, 31),
                    0x31);
  vdo_sim_close (sim);
  vdo_io_free_buffer (plain);
  vdo_io_free_buffer (fua);
}
END_TEST

START_TEST (test_write_to_target)
{
  char path[PATH_MAX], copy[PATH_MAX];
  struct vdo_sim_crash crash = { VDO_SIM_CRASH_TORN, 0, 7 };
  struct vdo_sim_crash_info info;
  struct vdo_sim *sim, *image;
  struct vdo_io *io, *target;
  uint64_t block;

  make_base (path, "target-base");
  make_base (copy, "target");
  sim = make_sim (path, false);
  io = vdo_sim_io (sim);
  write_byte (io, 40, 4, 0x40);
  ck_assert_int_eq (vdo_io_flush (io), 0);
  write_byte (io, 41, 2, 0x41);
  write_byte (io, 50, 1, 0x50);
  crash.point = vdo_sim_clock (sim);

  ck_assert_int_eq (vdo_io_open (copy, VDO_IO_BUFFERED, &target), 0);
  ck_assert_int_eq (vdo_sim_write_crash (sim, &crash, target, &info), 0);
  ck_assert_int_eq (vdo_sim_open_crash (sim, &crash, NULL, &image, NULL), 0);
  for (block = 0; block < BASE_BLOCKS; block++) {
    uint8_t *a = vdo_io_alloc_buffer (BLOCK), *b = vdo_io_alloc_buffer (BLOCK);

    ck_assert_int_eq (vdo_io_read_blocks (target, block, 1, a), 0);
    ck_assert_int_eq (vdo_io_read_blocks (vdo_sim_io (image), block, 1, b), 0);
    ck_assert_mem_eq (a, b, BLOCK);
    vdo_io_free_buffer (a);
    vdo_io_free_buffer (b);
  }
  ck_assert_int_eq (block_byte (target, 40), 0x40);
  vdo_sim_close (image);

  ck_assert_int_eq (vdo_sim_restore_lower (sim, target), 0);
  for (block = 0; block < BASE_BLOCKS; block++)
    ck_assert_int_eq (block_byte (target, block), base_byte (block));
  vdo_io_close (target);
  vdo_sim_close (sim);
}
END_TEST

/* Images of images: recovery's own writes can be crash-tested too. */
START_TEST (test_nested_images)
{
  char path[PATH_MAX];
  struct vdo_sim_crash crash = { VDO_SIM_CRASH_DURABLE, 0, 1 };
  struct vdo_sim *sim, *image, *again;
  struct vdo_io *view;

  make_base (path, "nested");
  sim = make_sim (path, false);
  write_byte (vdo_sim_io (sim), 2, 1, 0x02);
  ck_assert_int_eq (vdo_io_flush (vdo_sim_io (sim)), 0);
  crash.point = vdo_sim_clock (sim);
  ck_assert_int_eq (vdo_sim_open_crash (sim, &crash, NULL, &image, NULL), 0);
  view = vdo_sim_io (image);
  ck_assert_uint_eq (vdo_sim_clock (image), 0);
  write_byte (view, 3, 1, 0x03);
  ck_assert_int_eq (vdo_io_flush (view), 0);
  write_byte (view, 2, 1, 0x22);

  crash.point = vdo_sim_clock (image);
  ck_assert_int_eq (vdo_sim_open_crash (image, &crash, NULL, &again, NULL), 0);
  ck_assert_int_eq (block_byte (vdo_sim_io (again), 2), 0x02);
  ck_assert_int_eq (block_byte (vdo_sim_io (again), 3), 0x03);
  ck_assert_int_eq (block_byte (vdo_sim_io (again), 4), base_byte (4));
  vdo_sim_close (again);
  crash.point = 0;
  ck_assert_int_eq (vdo_sim_open_crash (image, &crash, NULL, &again, NULL), 0);
  ck_assert_int_eq (block_byte (vdo_sim_io (again), 2), 0x02);
  ck_assert_int_eq (block_byte (vdo_sim_io (again), 3), base_byte (3));
  vdo_sim_close (again);
  crash.point = vdo_sim_clock (image) + 1;
  ck_assert_int_eq (vdo_sim_open_crash (image, &crash, NULL, &again, NULL),
                    EINVAL);
  vdo_sim_close (image);
  vdo_sim_close (sim);
}
END_TEST

#define REORDER_REQUESTS 64

/* Reordered completion still completes everything, and reads see it. */
START_TEST (test_reorder)
{
  char path[PATH_MAX];
  struct vdo_sim_options options = {
    .log_dir = test_dir, .reorder = true, .seed = 99,
  };
  struct waiter *w = calloc (REORDER_REQUESTS, sizeof *w);
  uint8_t *buffer = vdo_io_alloc_buffer (REORDER_REQUESTS * BLOCK);
  struct vdo_sim *sim;
  struct vdo_io *io;
  int i;

  make_base (path, "reorder");
  ck_assert_int_eq (vdo_sim_create_file (path, &options, &sim), 0);
  io = vdo_sim_io (sim);
  ck_assert_int_eq (vdo_io_start (io, 0), 0);
  for (i = 0; i < REORDER_REQUESTS; i++) {
    memset (buffer + i * BLOCK, i, BLOCK);
    submit (io, &w[i], VDO_IO_WRITE, i, 1, buffer + i * BLOCK, i % 2 == 0);
  }
  for (i = 0; i < REORDER_REQUESTS; i++)
    ck_assert_int_eq (wait_for (&w[i]), 0);
  vdo_io_drain (io);
  for (i = 0; i < REORDER_REQUESTS; i++)
    ck_assert_int_eq (block_byte (io, i), i);
  vdo_sim_close (sim);
  vdo_io_free_buffer (buffer);
  free (w);
}
END_TEST

/* The runtime runs on a simulator, and a crash image of its history
 * holds what it acknowledged; the file underneath stays as formatted. */
START_TEST (test_runtime_on_simulator)
{
  struct vdo_format_options format = {
    .logical_bytes = 64 * BLOCK, .slab_bits = 13,
  };
  struct vdo_format_result formatted;
  struct vdo_options options = { .cache_pages = 16 };
  struct vdo_sim_crash crash = { VDO_SIM_CRASH_DURABLE, 0, 1 };
  char path[PATH_MAX];
  struct vdo_sim *sim, *image;
  struct vdo_volume *volume;
  struct vdo *vdo;
  uint8_t *data = vdo_io_alloc_buffer (2 * BLOCK);
  uint8_t *back = vdo_io_alloc_buffer (2 * BLOCK);
  int fd;

  snprintf (path, sizeof path, "%s/volume", test_dir);
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, (off_t) 3 << 30), 0);
  close (fd);
  ck_assert_int_eq (vdo_volume_format (path, &format, &formatted), 0);
  sim = make_sim (path, false);

  /* The volume leaves the device it was given open. */
  ck_assert_int_eq (vdo_volume_open_io (vdo_sim_io (sim), true, &volume), 0);
  ck_assert_int_eq (vdo_volume_get_states (volume)->state, VDO_NEW);
  vdo_volume_close (volume);
  ck_assert_int_eq (block_byte (vdo_sim_io (sim), 1), 0);

  options.io = vdo_sim_io (sim);
  ck_assert_int_eq (vdo_load (NULL, &options, &vdo), 0);
  ck_assert_int_eq (vdo_start (vdo), 0);
  memset (data, 0x5a, 2 * BLOCK);
  ck_assert_int_eq (vdo_write (vdo, data, 2 * BLOCK, 10 * BLOCK, false), 0);
  crash.point = vdo_sim_clock (sim);
  ck_assert_int_eq (vdo_stop (vdo), 0);
  vdo_free (vdo);

  /* Crash right after the write returned: the image needs recovery and
   * reads the data back. */
  ck_assert_int_eq (vdo_sim_open_crash (sim, &crash, NULL, &image, NULL), 0);
  ck_assert_int_eq (vdo_volume_open_io (vdo_sim_io (image), false, &volume),
                    0);
  ck_assert (vdo_state_requires_recovery (vdo_volume_get_states (volume)
                                          ->state));
  vdo_volume_close (volume);
  options.io = vdo_sim_io (image);
  ck_assert_int_eq (vdo_load (NULL, &options, &vdo), 0);
  ck_assert_int_eq (vdo_start (vdo), 0);
  ck_assert_int_eq (vdo_read (vdo, back, 2 * BLOCK, 10 * BLOCK), 0);
  ck_assert_mem_eq (back, data, 2 * BLOCK);
  ck_assert_int_eq (vdo_stop (vdo), 0);
  vdo_free (vdo);
  vdo_sim_close (image);
  vdo_sim_close (sim);

  ck_assert_int_eq (vdo_volume_open (path, false, &volume), 0);
  ck_assert_int_eq (vdo_volume_get_states (volume)->state, VDO_NEW);
  vdo_volume_close (volume);
  vdo_io_free_buffer (data);
  vdo_io_free_buffer (back);
}
END_TEST

Suite *
io_simulator_suite (void)
{
  Suite *s = suite_create ("io_simulator");
  TCase *tc = tcase_create ("simulator");

  tcase_set_timeout (tc, 60);
  tcase_add_unchecked_fixture (tc, make_test_dir, remove_test_dir);
  tcase_add_test (tc, test_reads_and_lower);
  tcase_add_test (tc, test_prefix_images);
  tcase_add_test (tc, test_subset_images);
  tcase_add_test (tc, test_torn_writes);
  tcase_add_test (tc, test_eio_mode);
  tcase_add_test (tc, test_fua_and_flush);
  tcase_add_test (tc, test_write_to_target);
  tcase_add_test (tc, test_nested_images);
  tcase_add_test (tc, test_reorder);
  tcase_add_test (tc, test_runtime_on_simulator);
  suite_add_tcase (s, tc);
  return s;
}
