/* nbdkit-vdo: repair is restart-safe (vdo-journals.md 7.3 "Restart
 * safety").
 *
 * On the power-cut simulator: a volume takes a workload and crashes
 * (the image at a point before its clean stop), so it needs recovery; a
 * recovery (or, after vdoadm's read-only + force-rebuild, a read-only
 * rebuild) then runs on that image and stops cleanly.  Crash images are
 * taken all along the repair's own history -- at every flush or FUA
 * boundary, with and without a share of its volatile writes, some torn
 * -- and each must be repaired again: every block reads back as the
 * workload left it, the clean stop works and the audit passes. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "io-simulator.h"
#include "io.h"
#include "status.h"
#include "unit-suites.h"
#include "vdo.h"
#include "volume.h"

#define DEVICE_BYTES (UINT64_C (3) << 30)
#define LOGICAL_BLOCKS 65536
#define CACHE_PAGES 16                  /* small: repair must evict */
#define WRITES 600
#define SPAN 40000                      /* LBNs written, over 50 leaves */
/* Boundaries of a repair's history to crash at (an even sample of its
 * two hundred or so), and at every third one also crash halfway to the
 * next with volatile writes kept, whole or torn.  make check-crash sets
 * VDO_REPAIR_CRASH_POINTS to take them all. */
#define POINTS 16
#define MAX_POINTS 4096

#define TEMPLATE "/tmp/vdo-repair-restart.XXXXXX"

static char directory[sizeof TEMPLATE];
static char path[sizeof TEMPLATE + 16];
/* What each LBN holds: 0 for zeros, else the version written; and
 * whether the workload touched it. */
static uint16_t *versions;
static bool *touched;

static void
fill_block (uint8_t *block, uint64_t lbn, uint16_t version)
{
  uint64_t i;

  for (i = 0; i < VDO_BLOCK_SIZE / 8; i++) {
    uint64_t word = (lbn << 24) ^ ((uint64_t) version << 12) ^ i;

    memcpy (block + i * 8, &word, 8);
  }
}

static struct vdo *
start (struct vdo_io *io)
{
  struct vdo_options options = {
    .cache_pages = CACHE_PAGES,
    .io = io,
  };
  struct vdo *vdo;

  ck_assert_int_eq (vdo_load (NULL, &options, &vdo), VDO_SUCCESS);
  ck_assert_int_eq (vdo_start (vdo), VDO_SUCCESS);
  ck_assert (!vdo_is_serving_read_only (vdo));
  return vdo;
}

static void
setup (void)
{
  struct vdo_format_options format = {
    .logical_bytes = (uint64_t) LOGICAL_BLOCKS * VDO_BLOCK_SIZE,
    .slab_bits = 13,
    .force = true,
    .have_nonce = true,
    .nonce = 0x7e57ab1e,
  };
  struct vdo_format_result result;
  struct vdo_options options = { .cache_pages = CACHE_PAGES };
  struct vdo *vdo;
  int fd;

  memcpy (directory, TEMPLATE, sizeof TEMPLATE);
  ck_assert_ptr_nonnull (mkdtemp (directory));
  snprintf (path, sizeof path, "%s/volume", directory);
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, DEVICE_BYTES), 0);
  close (fd);
  ck_assert_int_eq (vdo_volume_format (path, &format, &result), VDO_SUCCESS);
  /* One clean start first, as a volume in use would have had. */
  ck_assert_int_eq (vdo_load (path, &options, &vdo), VDO_SUCCESS);
  ck_assert_int_eq (vdo_start (vdo), VDO_SUCCESS);
  ck_assert_int_eq (vdo_stop (vdo), VDO_SUCCESS);
  vdo_free (vdo);
  versions = calloc (SPAN, sizeof *versions);
  touched = calloc (SPAN, sizeof *touched);
  ck_assert_ptr_nonnull (versions);
  ck_assert_ptr_nonnull (touched);
}

static void
teardown (void)
{
  free (versions);
  free (touched);
  unlink (path);
  rmdir (directory);
}

static struct vdo_sim_options
sim_options (uint64_t seed)
{
  struct vdo_sim_options options = {
    .log_dir = directory,
    .reorder = true,
    .seed = seed,
  };

  return options;
}

/* Writes, overwrites and discards, then a crash: the image at the last
 * point before the clean stop, which needs recovery. */
static struct vdo_sim *
crashed_volume (struct vdo_sim **base)
{
  struct vdo_sim_options options = sim_options (1);
  uint8_t *block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  struct vdo_sim_crash crash = { VDO_SIM_CRASH_DURABLE, 0, 1 };
  struct vdo_sim *image;
  struct vdo *vdo;
  unsigned int i;

  ck_assert_int_eq (vdo_sim_create_file (path, &options, base), 0);
  vdo = start (vdo_sim_io (*base));
  for (i = 0; i < WRITES; i++) {
    uint64_t lbn = (uint64_t) i * 4099 % SPAN;

    touched[lbn] = true;
    if (i % 10 == 9 && versions[lbn] != 0) {
      ck_assert_int_eq (vdo_discard (vdo, VDO_BLOCK_SIZE, lbn * VDO_BLOCK_SIZE,
                                     true), 0);
      versions[lbn] = 0;
      continue;
    }
    versions[lbn]++;
    fill_block (block, lbn, versions[lbn]);
    ck_assert_int_eq (vdo_write (vdo, block, VDO_BLOCK_SIZE,
                                 lbn * VDO_BLOCK_SIZE, false), 0);
  }
  /* Every request returned, so all of it is durable here. */
  crash.point = vdo_sim_clock (*base);
  ck_assert_int_eq (vdo_stop (vdo), VDO_SUCCESS);
  vdo_free (vdo);
  vdo_io_free_buffer (block);
  options = sim_options (2);
  ck_assert_int_eq (vdo_sim_open_crash (*base, &crash, &options, &image,
                                        NULL), 0);
  return image;
}

static uint32_t
state_of (struct vdo_io *io)
{
  struct vdo_volume *volume;
  uint32_t state;

  ck_assert_int_eq (vdo_volume_open_io (io, false, &volume), VDO_SUCCESS);
  state = vdo_volume_get_states (volume)->state;
  vdo_volume_close (volume);
  return state;
}

static void
force_rebuild (struct vdo_io *io)
{
  struct vdo_volume *volume;

  ck_assert_int_eq (vdo_volume_open_io (io, true, &volume), VDO_SUCCESS);
  ck_assert_int_eq (vdo_volume_set_read_only (volume), VDO_SUCCESS);
  ck_assert_int_eq (vdo_volume_force_rebuild (volume), VDO_SUCCESS);
  vdo_volume_close (volume);
}

/* Repair IO's volume, read every block back, stop, audit. */
static void
repair_and_check (struct vdo_io *io, const char *what)
{
  uint8_t *block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  uint8_t *expected = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  struct vdo_audit_result result;
  struct vdo_volume *volume;
  struct vdo *vdo = start (io);
  uint64_t lbn;

  /* The LBNs the workload touched, and the ones after them. */
  for (lbn = 0; lbn < SPAN; lbn++) {
    if (!touched[lbn] && (lbn == 0 || !touched[lbn - 1]))
      continue;
    ck_assert_int_eq (vdo_read (vdo, block, VDO_BLOCK_SIZE,
                                lbn * VDO_BLOCK_SIZE), 0);
    if (versions[lbn] == 0)
      memset (expected, 0, VDO_BLOCK_SIZE);
    else
      fill_block (expected, lbn, versions[lbn]);
    ck_assert_msg (memcmp (block, expected, VDO_BLOCK_SIZE) == 0,
                   "%s: LBN %" PRIu64 " reads back wrong", what, lbn);
  }
  ck_assert_int_eq (vdo_stop (vdo), VDO_SUCCESS);
  vdo_free (vdo);
  ck_assert_int_eq (vdo_volume_open_io (io, false, &volume), VDO_SUCCESS);
  ck_assert_uint_eq (vdo_volume_get_states (volume)->state, VDO_CLEAN);
  ck_assert_int_eq (vdo_audit_volume (volume, NULL, NULL, &result),
                    VDO_SUCCESS);
  ck_assert_msg (vdo_audit_passed (&result), "%s: the audit failed", what);
  vdo_volume_close (volume);
  vdo_io_free_buffer (block);
  vdo_io_free_buffer (expected);
}

/* Repair IMAGE once on a simulator of its own, then crash that repair at
 * points all along its history, and repair each crash image again. */
static void
crash_during_repair (struct vdo_sim *image, uint32_t state)
{
  static const enum vdo_sim_crash_kind kinds[] = {
    VDO_SIM_CRASH_DURABLE, VDO_SIM_CRASH_SUBSET, VDO_SIM_CRASH_TORN,
  };
  struct vdo_sim_options options = sim_options (3);
  struct vdo_sim *repair;
  struct vdo_sim_crash_info info;
  const char *wanted = getenv ("VDO_REPAIR_CRASH_POINTS");
  size_t max = wanted != NULL ? strtoul (wanted, NULL, 10) : POINTS;
  uint64_t *points;
  size_t count, i;
  unsigned int volatile_kept = 0;

  if (max < 2 || max > MAX_POINTS)
    max = max < 2 ? 2 : MAX_POINTS;
  points = calloc (max, sizeof *points);
  ck_assert_ptr_nonnull (points);

  {
    struct vdo_sim_crash all = { VDO_SIM_CRASH_DURABLE,
                                 vdo_sim_clock (image), 3 };

    ck_assert_int_eq (vdo_sim_open_crash (image, &all, &options, &repair,
                                          NULL), 0);
  }
  ck_assert_uint_eq (state_of (vdo_sim_io (repair)), state);
  repair_and_check (vdo_sim_io (repair), "the first repair");
  count = vdo_sim_boundaries (repair, points, max);
  ck_assert_uint_gt (count, 4);
  if (count > max)
    count = max;
  for (i = 0; i < count; i++) {
    unsigned int k;

    for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
      /* Between boundaries too, where writes are still volatile. */
      uint64_t point = k == 0 || i == 0 ? points[i]
                       : (points[i - 1] + points[i]) / 2;

      if (k > 0 && i % 3 != 1)
        continue;
      struct vdo_sim_crash crash = { kinds[k], point, 100 * i + k };
      struct vdo_sim *again;
      char what[96];

      snprintf (what, sizeof what, "a crash of kind %u at point %" PRIu64
                " of %" PRIu64, k, point, vdo_sim_clock (repair));
      ck_assert_int_eq (vdo_sim_open_crash (repair, &crash, NULL, &again,
                                            &info), 0);
      volatile_kept += info.kept_writes;
      repair_and_check (vdo_sim_io (again), what);
      vdo_sim_close (again);
    }
  }
  /* The sweep did crash with writes in flight, not only at boundaries. */
  ck_assert_uint_gt (volatile_kept, 0);
  vdo_sim_close (repair);
  free (points);
}

START_TEST (test_crash_during_recovery)
{
  struct vdo_sim *base, *image = crashed_volume (&base);

  crash_during_repair (image, VDO_DIRTY);
  vdo_sim_close (image);
  vdo_sim_close (base);
}
END_TEST

START_TEST (test_crash_during_rebuild)
{
  struct vdo_sim *base, *image = crashed_volume (&base);

  /* The block map lacks what only the journal holds; rebuild takes it
   * from there too. */
  force_rebuild (vdo_sim_io (image));
  crash_during_repair (image, VDO_FORCE_REBUILD);
  vdo_sim_close (image);
  vdo_sim_close (base);
}
END_TEST

Suite *
repair_restart_suite (void)
{
  Suite *s = suite_create ("repair_restart");
  TCase *tc = tcase_create ("crashes");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 600);
  tcase_add_test (tc, test_crash_during_recovery);
  tcase_add_test (tc, test_crash_during_rebuild);
  suite_add_tcase (s, tc);
  return s;
}
