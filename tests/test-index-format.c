/* nbdkit-vdo: the dedupe index's on-disk encodings and layout. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "byte-order.h"
#include "checksum.h"
#include "index-format.h"
#include "status.h"
#include "unit-suites.h"

static void
reseal (uint8_t block[VDO_BLOCK_SIZE])
{
  put_le32 (block, vdo_crc32 (block + 4, VDO_BLOCK_SIZE - 4));
}

/* --- Layout ---------------------------------------------------------- */

START_TEST (test_layout_small)
{
  struct vdo_index_layout layout;
  uint64_t stream;

  /* 254 records: two full blocks of 127; 3 chapters; 5 pages. */
  ck_assert_int_eq (vdo_compute_index_layout (254, 3, 5, &layout),
                    VDO_SUCCESS);
  ck_assert_uint_eq (layout.blocks_per_chapter, 2);
  ck_assert_uint_eq (vdo_index_chapter_block (&layout, 0, 0), 2);
  ck_assert_uint_eq (vdo_index_chapter_block (&layout, 2, 1), 7);
  /* Records, table (3 x (8 + 2 x 4)), bitmap (1 byte), pages. */
  stream = 254 * 32 + 3 * 16 + 1 + 5 * 4096;
  ck_assert_uint_eq (layout.save_stream_bytes, stream);
  ck_assert_uint_eq (layout.save_slot_blocks, 1 + (stream + 4095) / 4096);
  ck_assert_uint_eq (layout.save_slot_start[0], 8);
  ck_assert_uint_eq (layout.save_slot_start[1], 8 + layout.save_slot_blocks);
  ck_assert_uint_eq (layout.total_blocks, 8 + 2 * layout.save_slot_blocks);

  /* One more record needs a third block. */
  ck_assert_int_eq (vdo_compute_index_layout (255, 3, 5, &layout),
                    VDO_SUCCESS);
  ck_assert_uint_eq (layout.blocks_per_chapter, 3);
}
END_TEST

START_TEST (test_layout_rejects_nonsense)
{
  struct vdo_index_layout layout;

  ck_assert_int_eq (vdo_compute_index_layout (0, 3, 5, &layout),
                    VDO_BAD_INDEX_CONFIG);
  ck_assert_int_eq (vdo_compute_index_layout (64, 1, 5, &layout),
                    VDO_BAD_INDEX_CONFIG);
  ck_assert_int_eq (vdo_compute_index_layout (64, 3, 0, &layout),
                    VDO_BAD_INDEX_CONFIG);
  ck_assert_int_eq (vdo_compute_index_layout (1ull << 40, 3, 5, &layout),
                    VDO_BAD_INDEX_CONFIG);
}
END_TEST

START_TEST (test_stream_bytes_partial)
{
  struct vdo_index_layout layout;

  ck_assert_int_eq (vdo_compute_index_layout (127, 4, 17, &layout),
                    VDO_SUCCESS);
  /* 10 records, table 4 x 12, bitmap 3 bytes, 2 pages. */
  ck_assert_uint_eq (vdo_index_save_stream_bytes (&layout, 10, 2),
                     320 + 48 + 3 + 8192);
}
END_TEST

/* --- Super block ------------------------------------------------------ */

static struct vdo_index_super_block
sample_super (void)
{
  struct vdo_index_super_block super = {
    .nonce = 0x0123456789abcdefull,
    .instance_nonce = 0xfedcba9876543210ull,
    .mem = 0xFFFFFF00u,
    .sparse = true,
    .records_per_chapter = 65536,
    .chapters = 10240,
    .dense_chapters = 512,
    .blocks_per_chapter = 517,
    .volume_index_pages = 44000,
    .save_slot_blocks = 50000,
    .total_blocks = 5400000,
  };
  return super;
}

START_TEST (test_super_block_round_trip)
{
  struct vdo_index_super_block super = sample_super (), decoded;
  uint8_t block[VDO_BLOCK_SIZE];

  vdo_encode_index_super_block (&super, block);
  /* Fixed places: version, magic, nonce. */
  ck_assert_uint_eq (get_le32 (block + 4), VDO_INDEX_FORMAT_VERSION);
  ck_assert_mem_eq (block + 8, "VDOIDXSB", 8);
  ck_assert_uint_eq (get_le64 (block + 16), super.nonce);
  ck_assert_uint_eq (get_le32 (block), vdo_crc32 (block + 4, 4092));

  ck_assert_int_eq (vdo_decode_index_super_block (block, &decoded),
                    VDO_SUCCESS);
  ck_assert_uint_eq (decoded.nonce, super.nonce);
  ck_assert_uint_eq (decoded.instance_nonce, super.instance_nonce);
  ck_assert_uint_eq (decoded.mem, super.mem);
  ck_assert (decoded.sparse);
  ck_assert_uint_eq (decoded.records_per_chapter, super.records_per_chapter);
  ck_assert_uint_eq (decoded.chapters, super.chapters);
  ck_assert_uint_eq (decoded.dense_chapters, super.dense_chapters);
  ck_assert_uint_eq (decoded.blocks_per_chapter, super.blocks_per_chapter);
  ck_assert_uint_eq (decoded.volume_index_pages, super.volume_index_pages);
  ck_assert_uint_eq (decoded.save_slot_blocks, super.save_slot_blocks);
  ck_assert_uint_eq (decoded.total_blocks, super.total_blocks);
}
END_TEST

START_TEST (test_super_block_rejects_damage)
{
  struct vdo_index_super_block super = sample_super (), decoded;
  uint8_t block[VDO_BLOCK_SIZE];

  memset (block, 0, sizeof block);
  ck_assert_int_eq (vdo_decode_index_super_block (block, &decoded),
                    VDO_BAD_MAGIC);

  vdo_encode_index_super_block (&super, block);
  block[4000] ^= 1;
  ck_assert_int_eq (vdo_decode_index_super_block (block, &decoded),
                    VDO_CHECKSUM_MISMATCH);

  vdo_encode_index_super_block (&super, block);
  put_le32 (block + 4, VDO_INDEX_FORMAT_VERSION + 1);
  reseal (block);
  ck_assert_int_eq (vdo_decode_index_super_block (block, &decoded),
                    VDO_UNSUPPORTED_VERSION);

  /* A save header is not a super block. */
  {
    struct vdo_index_save_header header;

    memset (&header, 0, sizeof header);
    vdo_encode_index_save_header (&header, block);
    ck_assert_int_eq (vdo_decode_index_super_block (block, &decoded),
                      VDO_BAD_MAGIC);
  }
}
END_TEST

/* --- Record blocks ---------------------------------------------------- */

static int
compare_records (const void *a, const void *b)
{
  return memcmp (a, b, VDO_CHUNK_NAME_SIZE);
}

static void
random_records (struct vdo_index_record *records, uint32_t count,
                unsigned int seed)
{
  uint32_t i, j;

  srandom (seed);
  for (i = 0; i < count; i++) {
    for (j = 0; j < VDO_CHUNK_NAME_SIZE; j++)
      records[i].name.bytes[j] = (uint8_t) random ();
    for (j = 0; j < VDO_ADVICE_SIZE; j++)
      records[i].advice[j] = (uint8_t) random ();
  }
  qsort (records, count, sizeof records[0], compare_records);
}

START_TEST (test_record_block_round_trip)
{
  struct vdo_index_record records[VDO_INDEX_RECORDS_PER_BLOCK];
  struct vdo_record_block_header header = {
    .instance_nonce = 77, .vcn = 123456789, .block_index = 4,
    .record_count = VDO_INDEX_RECORDS_PER_BLOCK,
  }, decoded;
  uint8_t block[VDO_BLOCK_SIZE], advice[VDO_ADVICE_SIZE];
  uint32_t i;

  random_records (records, VDO_INDEX_RECORDS_PER_BLOCK, 1);
  vdo_encode_record_block (&header, records, block);
  ck_assert_mem_eq (block + 4, "VIRB", 4);
  ck_assert_int_eq (vdo_decode_record_block_header (block, &decoded),
                    VDO_SUCCESS);
  ck_assert_uint_eq (decoded.instance_nonce, 77);
  ck_assert_uint_eq (decoded.vcn, 123456789);
  ck_assert_uint_eq (decoded.block_index, 4);
  ck_assert_uint_eq (decoded.record_count, VDO_INDEX_RECORDS_PER_BLOCK);
  ck_assert_uint_eq (vdo_record_block_count (block),
                     VDO_INDEX_RECORDS_PER_BLOCK);

  for (i = 0; i < VDO_INDEX_RECORDS_PER_BLOCK; i++) {
    ck_assert (vdo_search_record_block (block, VDO_INDEX_RECORDS_PER_BLOCK,
                                        &records[i].name, advice));
    ck_assert_mem_eq (advice, records[i].advice, VDO_ADVICE_SIZE);
  }
}
END_TEST

START_TEST (test_record_block_search_misses)
{
  struct vdo_index_record records[40];
  struct vdo_record_block_header header = { .record_count = 40 };
  struct vdo_chunk_name absent;
  uint8_t block[VDO_BLOCK_SIZE], advice[VDO_ADVICE_SIZE];
  uint32_t i;

  random_records (records, 40, 2);
  vdo_encode_record_block (&header, records, block);
  for (i = 0; i < 40; i++) {
    absent = records[i].name;
    absent.bytes[15] ^= 0x80;
    ck_assert (!vdo_search_record_block (block, 40, &absent, advice));
  }
  memset (&absent, 0, sizeof absent);
  ck_assert (!vdo_search_record_block (block, 40, &absent, advice));
  memset (&absent, 0xff, sizeof absent);
  ck_assert (!vdo_search_record_block (block, 40, &absent, advice));
  /* A count of 0 finds nothing. */
  ck_assert (!vdo_search_record_block (block, 0, &records[0].name, advice));
}
END_TEST

START_TEST (test_record_block_rejects_damage)
{
  struct vdo_index_record records[3];
  struct vdo_record_block_header header = { .vcn = 5, .record_count = 3 },
    decoded;
  uint8_t block[VDO_BLOCK_SIZE];

  random_records (records, 3, 3);
  vdo_encode_record_block (&header, records, block);
  block[VDO_INDEX_BLOCK_HEADER_SIZE + 5] ^= 0x10;
  ck_assert_int_eq (vdo_decode_record_block_header (block, &decoded),
                    VDO_CHECKSUM_MISMATCH);

  memset (block, 0, sizeof block);
  ck_assert_int_eq (vdo_decode_record_block_header (block, &decoded),
                    VDO_BAD_MAGIC);
  ck_assert_uint_eq (vdo_record_block_count (block), 0);

  /* A sealed block whose count runs past its end. */
  vdo_encode_record_block (&header, records, block);
  put_le32 (block + 28, VDO_INDEX_RECORDS_PER_BLOCK + 1);
  reseal (block);
  ck_assert_int_eq (vdo_decode_record_block_header (block, &decoded),
                    UDS_CORRUPT_DATA);
  ck_assert_uint_eq (vdo_record_block_count (block), 0);
}
END_TEST

START_TEST (test_prefix_order_is_name_order)
{
  struct vdo_index_record records[200];
  uint32_t i;

  random_records (records, 200, 4);
  ck_assert_uint_eq (vdo_chunk_name_prefix (&records[0].name),
                     get_le32 ((uint8_t[]) { records[0].name.bytes[3],
                                             records[0].name.bytes[2],
                                             records[0].name.bytes[1],
                                             records[0].name.bytes[0] }));
  for (i = 1; i < 200; i++)
    ck_assert_uint_le (vdo_chunk_name_prefix (&records[i - 1].name),
                       vdo_chunk_name_prefix (&records[i].name));
}
END_TEST

START_TEST (test_block_range)
{
  static const uint32_t prefixes[] = { 0x10, 0x20, 0x20, 0x20, 0x30, 0x40 };
  uint32_t first, last;

  /* Below the first block: block 0 (where it would be). */
  vdo_chapter_block_range (prefixes, 6, 0x05, &first, &last);
  ck_assert_uint_eq (first, 0);
  ck_assert_uint_eq (last, 0);
  /* Strictly inside block 0's range. */
  vdo_chapter_block_range (prefixes, 6, 0x15, &first, &last);
  ck_assert_uint_eq (first, 0);
  ck_assert_uint_eq (last, 0);
  /* Equal to a boundary: the block before it too. */
  vdo_chapter_block_range (prefixes, 6, 0x30, &first, &last);
  ck_assert_uint_eq (first, 3);
  ck_assert_uint_eq (last, 4);
  /* A run of equal prefixes: all of them and the block before. */
  vdo_chapter_block_range (prefixes, 6, 0x20, &first, &last);
  ck_assert_uint_eq (first, 0);
  ck_assert_uint_eq (last, 3);
  /* Past the last start: the last block. */
  vdo_chapter_block_range (prefixes, 6, 0xFFFFFFFFu, &first, &last);
  ck_assert_uint_eq (first, 5);
  ck_assert_uint_eq (last, 5);
  /* Equal to the first block's start. */
  vdo_chapter_block_range (prefixes, 6, 0x10, &first, &last);
  ck_assert_uint_eq (first, 0);
  ck_assert_uint_eq (last, 0);
}
END_TEST

/* Every record of a chapter packed into blocks is found in the range
 * its prefix picks. */
START_TEST (test_block_range_finds_every_record)
{
  enum { COUNT = 1000, BLOCKS = (COUNT + VDO_INDEX_RECORDS_PER_BLOCK - 1)
                                / VDO_INDEX_RECORDS_PER_BLOCK };
  static struct vdo_index_record records[COUNT];
  static uint8_t blocks[BLOCKS][VDO_BLOCK_SIZE];
  uint32_t prefixes[BLOCKS];
  uint8_t advice[VDO_ADVICE_SIZE];
  uint32_t b, i;

  random_records (records, COUNT, 5);
  /* Crowd some names onto one prefix across a block boundary. */
  for (i = 120; i < 140; i++)
    memcpy (records[i].name.bytes, records[120].name.bytes, 4);
  qsort (records, COUNT, sizeof records[0], compare_records);
  for (b = 0; b < BLOCKS; b++) {
    uint32_t start = b * VDO_INDEX_RECORDS_PER_BLOCK;
    struct vdo_record_block_header header = {
      .block_index = b,
      .record_count = COUNT - start < VDO_INDEX_RECORDS_PER_BLOCK
                      ? COUNT - start : VDO_INDEX_RECORDS_PER_BLOCK,
    };

    vdo_encode_record_block (&header, records + start, blocks[b]);
    prefixes[b] = vdo_chunk_name_prefix (&records[start].name);
  }
  for (i = 0; i < COUNT; i++) {
    uint32_t first, last;
    bool found = false;

    vdo_chapter_block_range (prefixes, BLOCKS,
                             vdo_chunk_name_prefix (&records[i].name),
                             &first, &last);
    ck_assert_uint_le (last - first, 1);
    for (b = first; b <= last && !found; b++)
      found = vdo_search_record_block (blocks[b],
                                       vdo_record_block_count (blocks[b]),
                                       &records[i].name, advice);
    ck_assert (found);
    ck_assert_mem_eq (advice, records[i].advice, VDO_ADVICE_SIZE);
  }
}
END_TEST

/* --- Save header ------------------------------------------------------ */

START_TEST (test_save_header_round_trip)
{
  struct vdo_index_save_header header = {
    .nonce = 1, .instance_nonce = 2, .sequence = 3, .timestamp = 4,
    .records_per_chapter = 5, .chapters = 6, .volume_index_pages = 7,
    .open_vcn = 8, .open_records = 9, .saved_pages = 10,
    .stream_bytes = 11, .stream_crc = 0xdeadbeef,
  }, decoded;
  uint8_t block[VDO_BLOCK_SIZE];
  unsigned int i;

  for (i = 0; i < VDO_VOLUME_INDEX_STATE_SIZE; i++)
    header.volume_index_state[i] = (uint8_t) (i * 3 + 1);
  vdo_encode_index_save_header (&header, block);
  ck_assert_mem_eq (block + 8, "VDOIDXSV", 8);
  ck_assert_int_eq (vdo_decode_index_save_header (block, &decoded),
                    VDO_SUCCESS);
  ck_assert_uint_eq (decoded.nonce, 1);
  ck_assert_uint_eq (decoded.instance_nonce, 2);
  ck_assert_uint_eq (decoded.sequence, 3);
  ck_assert_uint_eq (decoded.timestamp, 4);
  ck_assert_uint_eq (decoded.records_per_chapter, 5);
  ck_assert_uint_eq (decoded.chapters, 6);
  ck_assert_uint_eq (decoded.volume_index_pages, 7);
  ck_assert_uint_eq (decoded.open_vcn, 8);
  ck_assert_uint_eq (decoded.open_records, 9);
  ck_assert_uint_eq (decoded.saved_pages, 10);
  ck_assert_uint_eq (decoded.stream_bytes, 11);
  ck_assert_uint_eq (decoded.stream_crc, 0xdeadbeef);
  ck_assert_mem_eq (decoded.volume_index_state, header.volume_index_state,
                    VDO_VOLUME_INDEX_STATE_SIZE);

  /* An invalidated slot. */
  memset (block, 0, sizeof block);
  ck_assert_int_ne (vdo_decode_index_save_header (block, &decoded),
                    VDO_SUCCESS);
  vdo_encode_index_save_header (&header, block);
  block[200] ^= 4;
  ck_assert_int_eq (vdo_decode_index_save_header (block, &decoded),
                    VDO_CHECKSUM_MISMATCH);
}
END_TEST

Suite *
index_format_suite (void)
{
  Suite *s = suite_create ("index_format");
  TCase *tc = tcase_create ("encodings");

  tcase_add_test (tc, test_layout_small);
  tcase_add_test (tc, test_layout_rejects_nonsense);
  tcase_add_test (tc, test_stream_bytes_partial);
  tcase_add_test (tc, test_super_block_round_trip);
  tcase_add_test (tc, test_super_block_rejects_damage);
  tcase_add_test (tc, test_record_block_round_trip);
  tcase_add_test (tc, test_record_block_search_misses);
  tcase_add_test (tc, test_record_block_rejects_damage);
  tcase_add_test (tc, test_prefix_order_is_name_order);
  tcase_add_test (tc, test_block_range);
  tcase_add_test (tc, test_block_range_finds_every_record);
  tcase_add_test (tc, test_save_header_round_trip);
  suite_add_tcase (s, tc);
  return s;
}
