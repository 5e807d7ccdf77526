/* nbdkit-vdo: corrupt geometry and super blocks are each rejected with
 * the right error, and opening them writes nothing. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byte-order.h"
#include "checksum.h"
#include "status.h"
#include "unit-suites.h"
#include "volume.h"

/* A 3 GiB sparse file holds the smallest volume with a 0.25 GB index. */
#define IMAGE_BYTES (3ull << 30)

static char image_dir[] = "/tmp/vdo-validation.XXXXXX";
static char image[64];
static uint64_t super_block_offset;
static uint8_t geometry_block[VDO_BLOCK_SIZE];
static uint8_t super_block[VDO_BLOCK_SIZE];

static void
read_at (uint64_t offset, uint8_t *buf)
{
  int fd = open (image, O_RDONLY);

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pread (fd, buf, VDO_BLOCK_SIZE, offset), VDO_BLOCK_SIZE);
  close (fd);
}

static void
write_at (uint64_t offset, const uint8_t *buf)
{
  int fd = open (image, O_WRONLY);

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pwrite (fd, buf, VDO_BLOCK_SIZE, offset), VDO_BLOCK_SIZE);
  ck_assert_int_eq (fsync (fd), 0);
  close (fd);
}

static void
format_image (void)
{
  struct vdo_format_options options = { .slab_bits = 13 };
  struct vdo_format_result result;
  int fd;

  ck_assert_ptr_nonnull (mkdtemp (image_dir));
  snprintf (image, sizeof image, "%s/volume.img", image_dir);
  fd = open (image, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, IMAGE_BYTES), 0);
  close (fd);
  ck_assert_int_eq (vdo_volume_format (image, &options, &result),
                    VDO_SUCCESS);
  super_block_offset = vdo_geometry_data_region_start (&result.geometry)
                       * (uint64_t) VDO_BLOCK_SIZE;
  read_at (0, geometry_block);
  read_at (super_block_offset, super_block);
}

static void
remove_image (void)
{
  unlink (image);
  rmdir (image_dir);
}

/* Opening, read-only or writable, must fail with EXPECTED and leave the
 * file exactly as it was. */
static void
assert_rejected (int expected)
{
  struct stat st;
  bool has_super_block;

  uint8_t g_before[VDO_BLOCK_SIZE], s_before[VDO_BLOCK_SIZE];
  uint8_t g_after[VDO_BLOCK_SIZE], s_after[VDO_BLOCK_SIZE];
  struct stat before, after;
  struct vdo_volume *volume;
  int writable;

  ck_assert_int_eq (stat (image, &st), 0);
  has_super_block = (uint64_t) st.st_size > super_block_offset;
  read_at (0, g_before);
  if (has_super_block)
    read_at (super_block_offset, s_before);
  ck_assert_int_eq (stat (image, &before), 0);
  for (writable = 0; writable <= 1; writable++) {
    int r = vdo_volume_open (image, writable, &volume);

    ck_assert_msg (r == expected, "expected %s, got %s (%d)",
                   vdo_status_to_name (expected),
                   vdo_status_to_name (r) ? vdo_status_to_name (r)
                                          : vdo_status_to_string (r), r);
    ck_assert_ptr_null (volume);
  }
  ck_assert_int_eq (stat (image, &after), 0);
  ck_assert_int_eq (before.st_mtim.tv_sec, after.st_mtim.tv_sec);
  ck_assert_int_eq (before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
  ck_assert_int_eq (before.st_size, after.st_size);
  read_at (0, g_after);
  ck_assert_mem_eq (g_before, g_after, VDO_BLOCK_SIZE);
  if (has_super_block) {
    read_at (super_block_offset, s_after);
    ck_assert_mem_eq (s_before, s_after, VDO_BLOCK_SIZE);
  }
}

enum target { GEOMETRY, SUPER_BLOCK };
enum edit { SET8, SET32, SET64, ADD64, FLIP };

struct variant {
  const char *name;
  enum target target;
  size_t offset;
  enum edit edit;
  uint64_t value;
  bool fix_checksum;    /* recompute the CRC so a later check is reached */
  int expected;
};

#define SB_PARTITION(n) (145 + 25 * (n))

static const struct variant variants[] = {
  { "geometry bad magic", GEOMETRY, 0, SET8, 'X', true, VDO_BAD_MAGIC },
  { "geometry magic digit", GEOMETRY, 7, SET8, '2', true, VDO_BAD_MAGIC },
  { "geometry nonce bit", GEOMETRY, 32, FLIP, 0x01, false, VDO_CHECKSUM_MISMATCH },
  { "geometry uuid bit", GEOMETRY, 45, FLIP, 0x80, false, VDO_CHECKSUM_MISMATCH },
  { "geometry region bit", GEOMETRY, 80, FLIP, 0x04, false, VDO_CHECKSUM_MISMATCH },
  { "geometry sparse bit", GEOMETRY, 96, FLIP, 0x01, false, VDO_CHECKSUM_MISMATCH },
  { "geometry checksum bit", GEOMETRY, 99, FLIP, 0x10, false, VDO_CHECKSUM_MISMATCH },
  { "geometry component id", GEOMETRY, 8, SET32, 4, true, VDO_INCORRECT_COMPONENT },
  { "geometry major 6", GEOMETRY, 12, SET32, 6, true, VDO_UNSUPPORTED_VERSION },
  { "geometry major 3", GEOMETRY, 12, SET32, 3, true, VDO_UNSUPPORTED_VERSION },
  { "geometry minor 1", GEOMETRY, 16, SET32, 1, true, VDO_UNSUPPORTED_VERSION },
  { "geometry size 100", GEOMETRY, 20, SET64, 100, true, VDO_UNSUPPORTED_VERSION },
  { "geometry major 4 size 101", GEOMETRY, 12, SET32, 4, true, VDO_UNSUPPORTED_VERSION },
  { "geometry data region beyond device", GEOMETRY, 80, SET64, 1ull << 40, true,
    VDO_REGION_OUT_OF_BOUNDS },
  { "geometry nonce differs", GEOMETRY, 32, ADD64, 1, true, VDO_BAD_NONCE },
  { "super block state bit", SUPER_BLOCK, 40, FLIP, 0x02, false, VDO_CHECKSUM_MISMATCH },
  { "super block config bit", SUPER_BLOCK, 61, FLIP, 0x01, false, VDO_CHECKSUM_MISMATCH },
  { "super block partition bit", SUPER_BLOCK, SB_PARTITION (2) + 3, FLIP, 0x40, false,
    VDO_CHECKSUM_MISMATCH },
  { "super block checksum bit", SUPER_BLOCK, 435, FLIP, 0x01, false, VDO_CHECKSUM_MISMATCH },
  { "super block component id", SUPER_BLOCK, 0, SET32, 1, true, VDO_INCORRECT_COMPONENT },
  { "super block major 13", SUPER_BLOCK, 4, SET32, 13, true, VDO_UNSUPPORTED_VERSION },
  { "super block minor 1", SUPER_BLOCK, 8, SET32, 1, true, VDO_UNSUPPORTED_VERSION },
  { "super block size 419", SUPER_BLOCK, 12, SET64, 419, true, VDO_UNSUPPORTED_VERSION },
  { "volume version 68", SUPER_BLOCK, 24, SET32, 68, true, VDO_UNSUPPORTED_VERSION },
  { "component version 42", SUPER_BLOCK, 32, SET32, 42, true, VDO_UNSUPPORTED_VERSION },
  { "layout id", SUPER_BLOCK, 108, SET32, 2, true, VDO_INCORRECT_COMPONENT },
  { "layout major 4", SUPER_BLOCK, 112, SET32, 4, true, VDO_UNSUPPORTED_VERSION },
  { "recovery journal state major 8", SUPER_BLOCK, 249, SET32, 8, true,
    VDO_UNSUPPORTED_VERSION },
  { "recovery journal state size 25", SUPER_BLOCK, 257, SET64, 25, true,
    VDO_UNSUPPORTED_VERSION },
  { "slab depot state major 3", SUPER_BLOCK, 293, SET32, 3, true, VDO_UNSUPPORTED_VERSION },
  { "block map state id", SUPER_BLOCK, 382, SET32, 3, true, VDO_INCORRECT_COMPONENT },
  { "block map state minor 1", SUPER_BLOCK, 390, SET32, 1, true, VDO_UNSUPPORTED_VERSION },
  { "flat page origin 2", SUPER_BLOCK, 402, SET64, 2, true, UDS_ASSERTION_FAILED },
  { "state 8", SUPER_BLOCK, 40, SET32, 8, true, VDO_BAD_STATE_VALUE },
  { "state 0xffffffff", SUPER_BLOCK, 40, SET32, 0xffffffff, true, VDO_BAD_STATE_VALUE },
  { "super block nonce differs", SUPER_BLOCK, 100, ADD64, 1, true, VDO_BAD_NONCE },
  { "partition count 5", SUPER_BLOCK, 144, SET8, 5, true, VDO_UNKNOWN_PARTITION },
  { "partition count 3", SUPER_BLOCK, 144, SET8, 3, true, VDO_UNKNOWN_PARTITION },
  { "partition id repeated", SUPER_BLOCK, SB_PARTITION (1), SET8, 1, true,
    VDO_UNKNOWN_PARTITION },
  { "partition id unknown", SUPER_BLOCK, SB_PARTITION (0), SET8, 7, true,
    VDO_UNKNOWN_PARTITION },
  { "partition beyond device", SUPER_BLOCK, SB_PARTITION (1) + 1, SET64, 1ull << 33, true,
    VDO_REGION_OUT_OF_BOUNDS },
  { "partition count short", SUPER_BLOCK, SB_PARTITION (0) + 17, ADD64, (uint64_t) -1, true,
    VDO_PARTITIONS_INCOMPLETE },
  { "physical size beyond device", SUPER_BLOCK, 68, ADD64, 4096, true,
    VDO_DEVICE_TOO_SMALL },
  { "physical size above maximum", SUPER_BLOCK, 68, SET64, (1ull << 36) + 1, true,
    VDO_OUT_OF_RANGE },
  { "slab size not a power of two", SUPER_BLOCK, 76, SET64, 8191, true,
    VDO_BAD_SLAB_SIZE },
  { "slab size zero", SUPER_BLOCK, 76, SET64, 0, true, VDO_BAD_SLAB_SIZE },
  { "slab size 2^24", SUPER_BLOCK, 76, SET64, 1ull << 24, true, VDO_BAD_SLAB_SIZE },
  { "depot slab size not a power of two", SUPER_BLOCK, 309, SET64, 8000, true,
    VDO_BAD_SLAB_SIZE },
  { "recovery journal size 1000", SUPER_BLOCK, 84, SET64, 1000, true,
    UDS_ASSERTION_FAILED },
  { "logical size above maximum", SUPER_BLOCK, 60, SET64, (1ull << 40) + 1, true,
    UDS_ASSERTION_FAILED },
  { "depot zone count 17", SUPER_BLOCK, 381, SET8, 17, true, UDS_CORRUPT_DATA },
};

static void
apply_edit (uint8_t *block, const struct variant *v)
{
  uint8_t *p = block + v->offset;

  switch (v->edit) {
  case SET8: *p = (uint8_t) v->value; break;
  case SET32: put_le32 (p, (uint32_t) v->value); break;
  case SET64: put_le64 (p, v->value); break;
  case ADD64: put_le64 (p, get_le64 (p) + v->value); break;
  case FLIP: *p ^= (uint8_t) v->value; break;
  }
  if (v->fix_checksum) {
    if (v->target == GEOMETRY)
      put_le32 (block + 97, vdo_crc32 (block, 97));
    else
      put_le32 (block + 434, vdo_crc32 (block, 434));
  }
}

START_TEST (test_pristine_image_opens)
{
  struct vdo_volume *volume;

  ck_assert_int_eq (vdo_volume_open (image, false, &volume), VDO_SUCCESS);
  ck_assert_uint_eq (vdo_volume_get_states (volume)->state, 1 /* NEW */);
  vdo_volume_close (volume);
}
END_TEST

START_TEST (test_corrupt_variant)
{
  const struct variant *v = &variants[_i];
  uint8_t block[VDO_BLOCK_SIZE];
  uint64_t offset = v->target == GEOMETRY ? 0 : super_block_offset;

  memcpy (block, v->target == GEOMETRY ? geometry_block : super_block,
          VDO_BLOCK_SIZE);
  apply_edit (block, v);
  write_at (offset, block);
  if (getenv ("VDO_TEST_VERBOSE"))
    fprintf (stderr, "variant: %s\n", v->name);
  assert_rejected (v->expected);
  write_at (offset, v->target == GEOMETRY ? geometry_block : super_block);
}
END_TEST

START_TEST (test_zero_geometry)
{
  uint8_t zero[VDO_BLOCK_SIZE] = { 0 };

  write_at (0, zero);
  assert_rejected (VDO_NOT_FORMATTED);
  write_at (0, geometry_block);
}
END_TEST

START_TEST (test_truncated_device)
{
  ck_assert_int_eq (truncate (image, IMAGE_BYTES - 16 * VDO_BLOCK_SIZE), 0);
  assert_rejected (VDO_DEVICE_TOO_SMALL);
  ck_assert_int_eq (truncate (image, IMAGE_BYTES), 0);
}
END_TEST

START_TEST (test_truncated_before_super_block)
{
  ck_assert_int_eq (truncate (image, super_block_offset), 0);
  assert_rejected (VDO_REGION_OUT_OF_BOUNDS);
  ck_assert_int_eq (truncate (image, IMAGE_BYTES), 0);
  write_at (super_block_offset, super_block);
}
END_TEST

START_TEST (test_missing_file)
{
  struct vdo_volume *volume;

  ck_assert_int_eq (vdo_volume_open ("/nonexistent/vdo.img", false, &volume),
                    ENOENT);
  ck_assert_ptr_null (volume);
}
END_TEST

Suite *
volume_validation_suite (void)
{
  Suite *s = suite_create ("volume validation");
  TCase *tc = tcase_create ("corrupt metadata");

  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, format_image, remove_image);
  tcase_add_test (tc, test_pristine_image_opens);
  tcase_add_loop_test (tc, test_corrupt_variant, 0,
                       sizeof variants / sizeof variants[0]);
  tcase_add_test (tc, test_zero_geometry);
  tcase_add_test (tc, test_truncated_device);
  tcase_add_test (tc, test_truncated_before_super_block);
  tcase_add_test (tc, test_missing_file);
  suite_add_tcase (s, tc);
  return s;
}
