/* nbdkit-vdo: geometry block encoding, decoding and rejection. */
#include <config.h>

#include <string.h>

#include "byte-order.h"
#include "checksum.h"
#include "geometry.h"
#include "status.h"
#include "unit-suites.h"

static struct vdo_volume_geometry
sample_geometry (void)
{
  struct vdo_volume_geometry g = {
    .major_version = 5,
    .nonce = 1795625259610131ull,
    .uuid = { 0x60, 0x8c, 0x9a, 0x19, 0x97, 0xdb, 0x40, 0x1a,
              0xa8, 0x76, 0x0e, 0x8c, 0xc2, 0xf4, 0x97, 0xdb },
    .regions = { { VDO_INDEX_REGION, 1 }, { VDO_DATA_REGION, 679128 } },
    .index_config = { .mem = 0xFFFFFF00u, .sparse = false },
  };
  return g;
}

START_TEST (test_round_trip_5_0)
{
  struct vdo_volume_geometry g = sample_geometry (), d;
  uint8_t block[VDO_BLOCK_SIZE];

  vdo_encode_volume_geometry (block, &g);
  ck_assert_mem_eq (block, "dmvdo001", 8);
  ck_assert_uint_eq (get_le64 (block + 20), 101);
  /* The fixtures' stored checksum for this exact geometry. */
  ck_assert_uint_eq (get_le32 (block + 97), 15844556u);
  ck_assert_int_eq (vdo_decode_volume_geometry (block, &d), VDO_SUCCESS);
  ck_assert_uint_eq (d.major_version, 5);
  ck_assert_uint_eq (d.nonce, g.nonce);
  ck_assert_mem_eq (d.uuid, g.uuid, VDO_UUID_SIZE);
  ck_assert_uint_eq (d.regions[1].start_block, 679128);
  ck_assert_uint_eq (d.index_config.mem, 0xFFFFFF00u);
}
END_TEST

START_TEST (test_round_trip_4_0)
{
  struct vdo_volume_geometry g = sample_geometry (), d;
  uint8_t block[VDO_BLOCK_SIZE];

  g.index_config.sparse = true;
  vdo_encode_volume_geometry_4_0 (block, &g);
  ck_assert_uint_eq (get_le32 (block + 12), 4);
  ck_assert_uint_eq (get_le64 (block + 20), 93);
  ck_assert_uint_eq (get_le32 (block + 89), vdo_crc32 (block, 89));
  ck_assert_int_eq (vdo_decode_volume_geometry (block, &d), VDO_SUCCESS);
  ck_assert_uint_eq (d.major_version, 4);
  ck_assert_uint_eq (d.bio_offset, 0);
  ck_assert_uint_eq (d.regions[1].start_block, 679128);
  ck_assert (d.index_config.sparse);
}
END_TEST

START_TEST (test_zero_block)
{
  uint8_t block[VDO_BLOCK_SIZE] = { 0 };
  struct vdo_volume_geometry d;

  ck_assert_int_eq (vdo_decode_volume_geometry (block, &d), VDO_NOT_FORMATTED);
}
END_TEST

Suite *
geometry_suite (void)
{
  Suite *s = suite_create ("geometry");
  TCase *tc = tcase_create ("codec");

  tcase_add_test (tc, test_round_trip_5_0);
  tcase_add_test (tc, test_round_trip_4_0);
  tcase_add_test (tc, test_zero_block);
  suite_add_tcase (s, tc);
  return s;
}
