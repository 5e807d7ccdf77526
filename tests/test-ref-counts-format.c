/* nbdkit-vdo: packed reference count blocks. */
#include <config.h>

#include <string.h>

#include "ref-counts-format.h"
#include "status.h"
#include "test-bytes.h"
#include "unit-suites.h"

/* written-clean, PBN 711724: slab 0's first reference block.  Every
 * sector carries commit point (1, 879), the slab journal's last entry.
 * Every byte not listed is zero.  Extracted with
 *   dd if=written-clean.img bs=4096 skip=711724 count=1 | xxd -p */
static const struct test_byte_run ref_block[] = {
  { 0,
    "6f03010000000000" },
  { 8,
    "fefefefe0101010202020202020202020202020202020202"
    "020202020202020202020202020202020202020202020202"
    "020202020202020202020202020202010101010101010101"
    "010101010101010101010101010101010101010101010101"
    "010101010101010101010101010101010101010101010101"
    "010101010101010101010101" },
  { 204,
    "40" },
  { 275,
    "080000000000000010000000000000000800000000000000"
    "080000000000000008000000000000000800000000000000"
    "080000000000000008000000000000000800000000000000"
    "080000000000000008000000000000000800000000000000"
    "080000000000000008000000000000000800000000000000"
    "080101010101010101010101010101010101010101010101"
    "010101010101010101" },
  { 512,
    "6f03010000000000" },
  { 596,
    "fefefefe01010101010101010101010101010101fefefefe" },
  { 636,
    "fefefefe0000000000000008010101010101010101010101"
    "010101010101010101010101010101010101010101010101"
    "010101010101010101010101010101010101010101010101"
    "010101010101010101010101" },
  { 1024,
    "6f03010000000000" },
  { 1536,
    "6f03010000000000" },
  { 2048,
    "6f03010000000000" },
  { 2560,
    "6f03010000000000" },
  { 3072,
    "6f03010000000000" },
  { 3584,
    "6f03010000000000" },
};

static void
load_fixture (uint8_t block[VDO_BLOCK_SIZE])
{
  test_fill_runs (block, VDO_BLOCK_SIZE, ref_block,
                  sizeof ref_block / sizeof ref_block[0]);
}

START_TEST (test_fixture_block)
{
  uint8_t block[VDO_BLOCK_SIZE], again[VDO_BLOCK_SIZE];
  uint8_t counters[VDO_COUNTS_PER_BLOCK];
  struct journal_point points[VDO_SECTORS_PER_BLOCK];
  unsigned int sbn, s, used = 0, tree_pages = 0;

  load_fixture (block);
  vdo_decode_reference_block (block, counters, points);
  for (s = 0; s < VDO_SECTORS_PER_BLOCK; s++) {
    ck_assert_uint_eq (points[s].sequence_number, 1);
    ck_assert_uint_eq (points[s].entry_count, 879);
  }
  ck_assert (!vdo_reference_block_is_torn (points));

  /* The first tree path, single and double references, the block
   * written 64 times, compressed blocks shared by 8 and 16 fragments,
   * and three more tree paths. */
  for (sbn = 0; sbn < 4; sbn++)
    ck_assert_uint_eq (counters[sbn], VDO_MAXIMUM_REFERENCE_COUNT);
  ck_assert_uint_eq (counters[4], 1);
  ck_assert_uint_eq (counters[7], 2);
  ck_assert_uint_eq (counters[62], 2);
  ck_assert_uint_eq (counters[63], 1);
  ck_assert_uint_eq (counters[196], 64);
  ck_assert_uint_eq (counters[267], 8);
  ck_assert_uint_eq (counters[275], 16);
  for (sbn = 580; sbn < 584; sbn++)
    ck_assert_uint_eq (counters[sbn], VDO_MAXIMUM_REFERENCE_COUNT);
  ck_assert_uint_eq (counters[631], 8);

  for (sbn = 0; sbn < VDO_COUNTS_PER_BLOCK; sbn++) {
    if (counters[sbn] != VDO_EMPTY_REFERENCE_COUNT)
      used++;
    if (counters[sbn] == VDO_MAXIMUM_REFERENCE_COUNT)
      tree_pages++;
    ck_assert_uint_ne (counters[sbn], VDO_PROVISIONAL_REFERENCE_COUNT);
  }
  /* 282 blocks in use: the summary's hint 62 = (32535 - 282) >> 9; the
   * 16 tree pages match the slab journal's 16 block-map increments. */
  ck_assert_uint_eq (used, 282);
  ck_assert_uint_eq (tree_pages, 16);

  /* Counters sit where the addressing says. */
  ck_assert_uint_eq (block[vdo_reference_counter_offset (196)], 64);
  ck_assert_uint_eq (vdo_reference_counter_offset (580), 596);
  ck_assert_uint_eq (block[596], VDO_MAXIMUM_REFERENCE_COUNT);

  memset (again, 0xA5, sizeof again);
  vdo_encode_reference_block (again, counters, &points[0]);
  ck_assert_mem_eq (again, block, VDO_BLOCK_SIZE);
  memset (again, 0xA5, sizeof again);
  vdo_encode_reference_block_sectors (again, counters, points);
  ck_assert_mem_eq (again, block, VDO_BLOCK_SIZE);
}
END_TEST

/* vdo-journals.md 11.3 and 11.7: the start of a reference block, before
 * and after a read-only rebuild (which leaves commit point 0). */
START_TEST (test_doc_blocks)
{
  uint8_t block[VDO_BLOCK_SIZE] = { 0 };
  uint8_t counters[VDO_COUNTS_PER_BLOCK];
  struct journal_point points[VDO_SECTORS_PER_BLOCK];
  unsigned int sbn;

  test_hex_to_bytes ("13 00 01 00 00 00 00 00 fe fe fe fe 01 01 01 01"
                     "01 01 00 00 01 fe fe fe fe 01 00 00 00 00 00 00",
                     block, 32);
  test_hex_to_bytes ("13 00 01 00 00 00 00 00", block + 512, 8);
  vdo_decode_reference_block (block, counters, points);
  ck_assert_uint_eq (points[0].sequence_number, 1);
  ck_assert_uint_eq (points[0].entry_count, 19);
  ck_assert_uint_eq (points[1].entry_count, 19);
  for (sbn = 0; sbn < 18; sbn++) {
    uint8_t expected = (sbn < 4 || (sbn >= 13 && sbn <= 16)) ? 254
                       : (sbn == 10 || sbn == 11) ? 0 : 1;
    ck_assert_uint_eq (counters[sbn], expected);
  }
  ck_assert_uint_eq (counters[504], 0);

  memset (block, 0, sizeof block);
  test_hex_to_bytes ("00 00 00 00 00 00 00 00 fe fe fe fe 00 01 01 01",
                     block, 16);
  vdo_decode_reference_block (block, counters, points);
  ck_assert (!vdo_is_valid_journal_point (&points[0]));
  ck_assert_uint_eq (counters[3], 254);
  ck_assert_uint_eq (counters[4], 0);
  ck_assert_uint_eq (counters[5], 1);
}
END_TEST

/* A torn write: sectors 1 and 7 kept older contents.  Each sector's own
 * point survives decoding, and the block re-encodes as read. */
START_TEST (test_torn_block)
{
  static uint8_t counters[VDO_COUNTS_PER_BLOCK], decoded[VDO_COUNTS_PER_BLOCK];
  struct journal_point points[VDO_SECTORS_PER_BLOCK], out[VDO_SECTORS_PER_BLOCK];
  uint8_t block[VDO_BLOCK_SIZE], again[VDO_BLOCK_SIZE];
  unsigned int i, s;

  for (i = 0; i < VDO_COUNTS_PER_BLOCK; i++)
    counters[i] = i % 256;
  for (s = 0; s < VDO_SECTORS_PER_BLOCK; s++) {
    points[s].sequence_number = (s == 1 || s == 7) ? 3 : 4;
    points[s].entry_count = (s == 1 || s == 7) ? 1352 : 17;
  }
  vdo_encode_reference_block_sectors (block, counters, points);
  ck_assert_mem_eq (block, "\x11\x00\x04\x00\x00\x00\x00\x00", 8);
  ck_assert_mem_eq (block + 512, "\x48\x05\x03\x00\x00\x00\x00\x00", 8);
  ck_assert_uint_eq (block[8], 0);
  ck_assert_uint_eq (block[511], 503 % 256);
  ck_assert_uint_eq (block[520], 504 % 256);

  vdo_decode_reference_block (block, decoded, out);
  ck_assert_mem_eq (decoded, counters, sizeof counters);
  ck_assert (vdo_reference_block_is_torn (out));
  for (s = 0; s < VDO_SECTORS_PER_BLOCK; s++)
    ck_assert (vdo_equal_journal_points (&out[s], &points[s]));
  ck_assert (vdo_before_journal_point (&out[1], &out[0]));

  vdo_encode_reference_block_sectors (again, decoded, out);
  ck_assert_mem_eq (again, block, VDO_BLOCK_SIZE);

  /* A uniform block is not torn; any one stale sector makes it so. */
  vdo_encode_reference_block (block, counters, &points[0]);
  vdo_decode_reference_block (block, decoded, out);
  ck_assert (!vdo_reference_block_is_torn (out));
  for (s = 1; s < VDO_SECTORS_PER_BLOCK; s++) {
    out[s].entry_count--;
    ck_assert (vdo_reference_block_is_torn (out));
    out[s].entry_count++;
  }
}
END_TEST

START_TEST (test_addressing)
{
  ck_assert_uint_eq (VDO_COUNTS_PER_SECTOR, 504);
  ck_assert_uint_eq (VDO_COUNTS_PER_BLOCK, 4032);

  ck_assert_uint_eq (vdo_reference_block_index (0), 0);
  ck_assert_uint_eq (vdo_reference_sector_index (0), 0);
  ck_assert_uint_eq (vdo_reference_counter_offset (0), 8);
  ck_assert_uint_eq (vdo_reference_counter_offset (503), 511);
  ck_assert_uint_eq (vdo_reference_sector_index (504), 1);
  ck_assert_uint_eq (vdo_reference_counter_offset (504), 520);
  ck_assert_uint_eq (vdo_reference_sector_index (4031), 7);
  ck_assert_uint_eq (vdo_reference_counter_offset (4031), 4095);
  ck_assert_uint_eq (vdo_reference_block_index (4032), 1);
  ck_assert_uint_eq (vdo_reference_counter_offset (4032), 8);
  /* The last data block of a slab_bits 15 slab (32535 data blocks). */
  ck_assert_uint_eq (vdo_reference_block_index (32534), 8);
  ck_assert_uint_eq (vdo_reference_sector_index (32534), 0);
  ck_assert_uint_eq (vdo_reference_counter_offset (32534), 8 + 278);

  /* Blocks used (vdo-journals.md 2): 2, 9, 260 for slab_bits 13, 15, 20. */
  ck_assert_uint_eq (vdo_reference_blocks_used (7966), 2);
  ck_assert_uint_eq (vdo_reference_blocks_used (32535), 9);
  ck_assert_uint_eq (vdo_reference_blocks_used (1048091), 260);
  ck_assert_uint_eq (vdo_reference_blocks_used (4032), 1);
  ck_assert_uint_eq (vdo_reference_blocks_used (4033), 2);
}
END_TEST

START_TEST (test_counter_values)
{
  ck_assert_int_eq (vdo_reference_count_status (0), VDO_REFERENCE_FREE);
  ck_assert_int_eq (vdo_reference_count_status (1), VDO_REFERENCE_SINGLE);
  ck_assert_int_eq (vdo_reference_count_status (2), VDO_REFERENCE_SHARED);
  ck_assert_int_eq (vdo_reference_count_status (253), VDO_REFERENCE_SHARED);
  ck_assert_int_eq (vdo_reference_count_status (VDO_MAXIMUM_REFERENCE_COUNT),
                    VDO_REFERENCE_SHARED);
  ck_assert_int_eq (vdo_reference_count_status (VDO_PROVISIONAL_REFERENCE_COUNT),
                    VDO_REFERENCE_PROVISIONAL);

  /* Provisional is never durable: 255 on disk loads as free. */
  ck_assert_uint_eq (vdo_reference_count_from_disk (255), 0);
  ck_assert_uint_eq (vdo_reference_count_from_disk (254), 254);
  ck_assert_uint_eq (vdo_reference_count_from_disk (1), 1);
  ck_assert_uint_eq (vdo_reference_count_from_disk (0), 0);
}
END_TEST

Suite *
ref_counts_format_suite (void)
{
  Suite *s = suite_create ("ref-counts-format");
  TCase *tc = tcase_create ("codec");

  tcase_add_test (tc, test_fixture_block);
  tcase_add_test (tc, test_doc_blocks);
  tcase_add_test (tc, test_torn_block);
  tcase_add_test (tc, test_addressing);
  tcase_add_test (tc, test_counter_values);
  suite_add_tcase (s, tc);
  return s;
}
