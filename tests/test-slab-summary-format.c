/* nbdkit-vdo: slab summary entries, blocks, addressing and hints. */
#include <config.h>

#include <string.h>

#include "slab-summary-format.h"
#include "status.h"
#include "test-bytes.h"
#include "unit-suites.h"

/* The written-* fixtures: slab_bits 15, 32535 data blocks per slab. */
#define SLAB_BITS 15
#define DATA_BLOCKS 32535

/* written-clean's summary block 0 (PBN 2097088, zone 0, slabs 0..2047):
 * slab 0 is "02 7e", every other entry the default "00 3f".  Blocks 1..63
 * are all "00 3f", and so is every block of written-dirty's summary (the
 * default table written at the first load, never updated before the
 * crash).  Checked with
 *   dd if=written-clean.img bs=4096 skip=2097088 count=64 | xxd -p */
static void
load_clean_zone_0 (uint8_t block[VDO_BLOCK_SIZE])
{
  unsigned int i;

  for (i = 0; i < VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK; i++) {
    block[2 * i] = 0x00;
    block[2 * i + 1] = 0x3f;
  }
  block[0] = 0x02;
  block[1] = 0x7e;
}

START_TEST (test_fixture_block)
{
  static struct slab_summary_entry entries[VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK];
  struct slab_summary_entry expected_default =
    vdo_default_slab_summary_entry (DATA_BLOCKS, SLAB_BITS);
  uint8_t block[VDO_BLOCK_SIZE], again[VDO_BLOCK_SIZE];
  unsigned int i;

  load_clean_zone_0 (block);
  vdo_decode_slab_summary_block (block, entries);

  /* Slab 0: next journal block at offset 2, so the last written one is
   * offset 1 (its seq 1 block); 282 blocks in use; counts written; clean. */
  ck_assert_uint_eq (entries[0].tail_block_offset, 2);
  ck_assert_uint_eq (vdo_slab_summary_last_block_offset (&entries[0], 224), 1);
  ck_assert_uint_eq (entries[0].fullness_hint, 62);
  ck_assert_uint_eq (entries[0].fullness_hint,
                     vdo_compute_fullness_hint (DATA_BLOCKS - 282, 9));
  ck_assert_uint_eq (vdo_slab_summary_hint_shift (SLAB_BITS), 9);
  ck_assert (entries[0].load_ref_counts);
  ck_assert (!entries[0].is_dirty);
  ck_assert (!vdo_slab_summary_entry_is_blank (&entries[0]));

  for (i = 1; i < VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK; i++) {
    ck_assert_uint_eq (entries[i].tail_block_offset, 0);
    ck_assert_uint_eq (entries[i].fullness_hint, 63);
    ck_assert (!entries[i].load_ref_counts);
    ck_assert (!entries[i].is_dirty);
    ck_assert (vdo_slab_summary_entry_is_blank (&entries[i]));
  }
  ck_assert_uint_eq (expected_default.fullness_hint, entries[1].fullness_hint);

  memset (again, 0xA5, sizeof again);
  vdo_encode_slab_summary_block (again, entries);
  ck_assert_mem_eq (again, block, VDO_BLOCK_SIZE);

  /* The default table is the default entry everywhere. */
  for (i = 0; i < VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK; i++)
    entries[i] = expected_default;
  vdo_encode_slab_summary_block (again, entries);
  block[0] = 0x00;
  block[1] = 0x3f;
  ck_assert_mem_eq (again, block, VDO_BLOCK_SIZE);
}
END_TEST

struct entry_vector {
  uint8_t bytes[2];
  uint8_t tail_block_offset;
  uint8_t fullness_hint;
  bool load_ref_counts;
  bool is_dirty;
};

/* vdo-journals.md 5.2 and 11: after a clean stop, after a rebuild, after
 * recovery, the default; then written-clean's slab 0 and a dirty entry. */
static const struct entry_vector entry_vectors[] = {
  { { 0x02, 0x7f }, 2, 63, true, false },
  { { 0x00, 0x7f }, 0, 63, true, false },
  { { 0x03, 0x7f }, 3, 63, true, false },
  { { 0x00, 0x3f }, 0, 63, false, false },
  { { 0x02, 0x7e }, 2, 62, true, false },
  { { 0xdf, 0xca }, 223, 10, true, true },
  { { 0x01, 0x80 }, 1, 0, false, true },
};

START_TEST (test_entries)
{
  size_t i;

  for (i = 0; i < sizeof entry_vectors / sizeof entry_vectors[0]; i++) {
    const struct entry_vector *v = &entry_vectors[i];
    struct slab_summary_entry entry = vdo_decode_slab_summary_entry (v->bytes);
    uint8_t again[2];

    ck_assert_uint_eq (entry.tail_block_offset, v->tail_block_offset);
    ck_assert_uint_eq (entry.fullness_hint, v->fullness_hint);
    ck_assert (entry.load_ref_counts == v->load_ref_counts);
    ck_assert (entry.is_dirty == v->is_dirty);
    vdo_encode_slab_summary_entry (again, &entry);
    ck_assert_mem_eq (again, v->bytes, 2);
  }
}
END_TEST

START_TEST (test_fullness_hints)
{
  struct slab_summary_entry entry;
  uint8_t raw[2];

  ck_assert_uint_eq (vdo_slab_summary_hint_shift (13), 7);
  ck_assert_uint_eq (vdo_slab_summary_hint_shift (15), 9);
  ck_assert_uint_eq (vdo_slab_summary_hint_shift (23), 17);
  ck_assert_uint_eq (vdo_slab_summary_hint_shift (6), 0);
  ck_assert_uint_eq (vdo_slab_summary_hint_shift (2), 0);

  /* 0 only when full; at least 1 otherwise. */
  ck_assert_uint_eq (vdo_compute_fullness_hint (0, 9), 0);
  ck_assert_uint_eq (vdo_compute_fullness_hint (1, 9), 1);
  ck_assert_uint_eq (vdo_compute_fullness_hint (1023, 9), 1);
  ck_assert_uint_eq (vdo_compute_fullness_hint (1024, 9), 2);
  ck_assert_uint_eq (vdo_compute_fullness_hint (32519, 9), 63);
  ck_assert_uint_eq (vdo_compute_fullness_hint (5, 0), 5);
  /* Never more than the 6 bits hold. */
  ck_assert_uint_eq (vdo_compute_fullness_hint (1u << 20, 9), 63);

  /* Empty-slab hints per slab size (vdo-journals.md 2's table). */
  entry = vdo_default_slab_summary_entry (7966, 13);
  ck_assert_uint_eq (entry.fullness_hint, 62);
  entry = vdo_default_slab_summary_entry (16155, 14);
  ck_assert_uint_eq (entry.fullness_hint, 63);
  entry = vdo_default_slab_summary_entry (523934, 19);
  ck_assert_uint_eq (entry.fullness_hint, 63);
  entry = vdo_default_slab_summary_entry (8386303, 23);
  ck_assert_uint_eq (entry.fullness_hint, 63);

  entry = vdo_default_slab_summary_entry (7966, 13);
  vdo_encode_slab_summary_entry (raw, &entry);
  ck_assert_mem_eq (raw, "\x00\x3e", 2);
  entry = vdo_default_slab_summary_entry (DATA_BLOCKS, SLAB_BITS);
  vdo_encode_slab_summary_entry (raw, &entry);
  ck_assert_mem_eq (raw, "\x00\x3f", 2);
}
END_TEST

START_TEST (test_addressing)
{
  ck_assert_uint_eq (VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK, 2048);
  ck_assert_uint_eq (VDO_SLAB_SUMMARY_BLOCKS, 64);

  ck_assert_uint_eq (vdo_slab_summary_zone_first_block (0), 0);
  ck_assert_uint_eq (vdo_slab_summary_zone_first_block (1), 4);
  ck_assert_uint_eq (vdo_slab_summary_zone_first_block (15), 60);

  ck_assert_uint_eq (vdo_slab_summary_block_for_slab (0, 0), 0);
  ck_assert_uint_eq (vdo_slab_summary_block_for_slab (0, 41), 0);
  ck_assert_uint_eq (vdo_slab_summary_block_for_slab (1, 2048), 5);
  ck_assert_uint_eq (vdo_slab_summary_block_for_slab (3, 5000), 14);
  ck_assert_uint_eq (vdo_slab_summary_block_for_slab (15, 8191), 63);
  ck_assert_uint_eq (vdo_slab_summary_entry_index (5000), 904);
  ck_assert_uint_eq (vdo_slab_summary_entry_offset (5000), 1808);
  ck_assert_uint_eq (vdo_slab_summary_entry_offset (8191), 4094);

  /* Slab n's authoritative entry is in zone n mod zone_count. */
  ck_assert_uint_eq (vdo_slab_summary_zone_for_slab (5, 1), 0);
  ck_assert_uint_eq (vdo_slab_summary_zone_for_slab (5, 4), 1);
  ck_assert_uint_eq (vdo_slab_summary_zone_for_slab (47, 16), 15);
}
END_TEST

START_TEST (test_tail_offsets)
{
  struct slab_summary_entry entry = { .tail_block_offset = 0 };

  /* A stored 0 after wrapping means the last block written is the last
   * one of the journal. */
  entry.load_ref_counts = true;
  ck_assert_uint_eq (vdo_slab_summary_last_block_offset (&entry, 224), 223);
  ck_assert (!vdo_slab_summary_entry_is_blank (&entry));
  entry.tail_block_offset = 3;
  ck_assert_uint_eq (vdo_slab_summary_last_block_offset (&entry, 224), 2);
  entry.load_ref_counts = false;
  ck_assert (!vdo_slab_summary_entry_is_blank (&entry));
}
END_TEST

Suite *
slab_summary_format_suite (void)
{
  Suite *s = suite_create ("slab-summary-format");
  TCase *tc = tcase_create ("codec");

  tcase_add_test (tc, test_fixture_block);
  tcase_add_test (tc, test_entries);
  tcase_add_test (tc, test_fullness_hints);
  tcase_add_test (tc, test_addressing);
  tcase_add_test (tc, test_tail_offsets);
  suite_add_tcase (s, tc);
  return s;
}
