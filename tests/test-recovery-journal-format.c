/* nbdkit-vdo: recovery journal block encoding and validity rules. */
#include <config.h>

#include <string.h>

#include "byte-order.h"
#include "recovery-journal-format.h"
#include "status.h"
#include "test-bytes.h"
#include "unit-suites.h"

#define NONCE 1795625259610131ull       /* the written-* fixtures */
#define DOC_NONCE 1795625252759381ull   /* vdo-journals.md 11 */
#define JOURNAL_SIZE 32768
#define JOURNAL_ORIGIN 2064320
#define ENTRY_SIZE VDO_RECOVERY_JOURNAL_ENTRY_SIZE
#define ENTRY_1_SIZE VDO_RECOVERY_JOURNAL_1_ENTRY_SIZE
#define MAX_ENTRIES VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK

/* written-dirty, PBN 2064325: recovery journal block seq 5, the partial
 * tail of the journal (36 entries: sector 1 full, 5 in sector 2).  Every
 * byte not listed is zero.  Extracted with
 *   dd if=written-dirty.img bs=4096 skip=2064325 count=1 | xxd -p */
static const struct test_byte_run rj_seq5[] = {
  { 0,
    "01000000000000000100000000000000050000000000000013b0bf951c610600"
    "032400480200000000000010000000000000008000" },
  { 512,
    "80001f"
    "3009185d0a00010000000001455f0a00"
    "3409185d0a00010000000001465f0a00"
    "3809185d0a00010000000001475f0a00"
    "3c09185d0a00010000000001485f0a00"
    "4009185d0a00010000000001495f0a00"
    "4409185d0a000100000000014a5f0a00"
    "4809185d0a000100000000014b5f0a00"
    "4c09185d0a000100000000014c5f0a00"
    "5009185d0a000100000000014d5f0a00"
    "5409185d0a000100000000014e5f0a00"
    "5809185d0a000100000000014f5f0a00"
    "5c09185d0a00010000000001505f0a00"
    "6009185d0a00010000000001515f0a00"
    "6409185d0a00010000000001525f0a00"
    "6809185d0a00010000000001535f0a00"
    "6c09185d0a00010000000001545f0a00"
    "7009185d0a00010000000001555f0a00"
    "7409185d0a00010000000001565f0a00"
    "7809185d0a00010000000001575f0a00"
    "7c09185d0a00010000000001585f0a00"
    "0004185d0a0001cd5f0a0009205e0a00"
    "0404185d0a0001ce5f0a0008205e0a00"
    "0804185d0a0001cf5f0a0007205e0a00"
    "0c04185d0a0001d05f0a0006205e0a00"
    "1004185d0a0001d15f0a0005205e0a00"
    "1404185d0a0001d25f0a0004205e0a00"
    "1804185d0a0001d35f0a0003205e0a00"
    "1c04185d0a0001d45f0a0002205e0a00"
    "0002185d0a000000000000015b5d0a00"
    "0402185d0a00000000000001955d0a00"
    "0802185d0a00000000000001965d0a00" },
  { 1024,
    "800005"
    "0c02185d0a00000000000001975d0a00"
    "1002185d0a00000000000001985d0a00"
    "1402185d0a00000000000001195d0a00"
    "1802185d0a000000000000011a5d0a00"
    "1c02185d0a000000000000011b5d0a00" },
};

/* One entry: raw bytes and what they mean. */
struct entry_vector {
  const char *hex;
  uint8_t operation;
  physical_block_number_t slot_pbn;
  uint16_t slot;
  physical_block_number_t mapping_pbn;
  uint8_t mapping_state;
  physical_block_number_t unmapping_pbn;
  uint8_t unmapping_state;
};

/* vdo-journals.md 1.6, decoded there. */
static const struct entry_vector doc_entries[] = {
  /* A tree-page allocation under root 679129. */
  { "01 00 d9 5c 0a 00 01 15 5d 0a 00 00 00 00 00 00",
    1, 679129, 0, 679189, 1, 0, 0 },
  { "0c 00 18 5d 0a 00 01 19 5d 0a 00 00 00 00 00 00",
    0, 679192, 3, 679193, 1, 0, 0 },
  /* Overwrite of LBN 1. */
  { "04 00 18 5d 0a 00 01 21 5d 0a 00 01 1f 5d 0a 00",
    0, 679192, 1, 679201, 1, 679199, 1 },
  /* Discard of LBN 2. */
  { "08 00 18 5d 0a 00 00 00 00 00 00 01 20 5d 0a 00",
    0, 679192, 2, 0, 0, 679200, 1 },
  /* Zero-block write of LBN 8. */
  { "20 00 18 5d 0a 00 01 00 00 00 00 00 00 00 00 00",
    0, 679192, 8, 0, 1, 0, 0 },
};

/* Entries of written-dirty's journal, decoded by hand. */
static const struct entry_vector fixture_entries[] = {
  /* seq 1 entries 0..4: the first tree path, then LBN 44. */
  { "0100d95c0a0001155d0a000000000000", 1, 679129, 0, 679189, 1, 0, 0 },
  { "0100155d0a0001165d0a000000000000", 1, 679189, 0, 679190, 1, 0, 0 },
  { "0100165d0a0001175d0a000000000000", 1, 679190, 0, 679191, 1, 0, 0 },
  { "0100175d0a0001185d0a000000000000", 1, 679191, 0, 679192, 1, 0, 0 },
  { "b000185d0a0001405d0a000000000000", 0, 679192, 44, 679232, 1, 0, 0 },
  /* seq 1 entry 216, the last of a full block: a zero-block write. */
  { "5003185d0a0001000000000000000000", 0, 679192, 212, 0, 1, 0, 0 },
  /* seq 4: tree pages at slots 20, 107 and 61 (slot bits 6..9 used). */
  { "51005b5f0a00015c5f0a000000000000", 1, 679771, 20, 679772, 1, 0, 0 },
  { "ad016f5f0a0001705f0a000000000000", 1, 679791, 107, 679792, 1, 0, 0 },
  { "f500835f0a0001845f0a000000000000", 1, 679811, 61, 679812, 1, 0, 0 },
  /* seq 4: a compressed fragment (slot 7 of PBN 679820) mapped. */
  { "7407845f0a00098c5f0a000000000000", 0, 679812, 477, 679820, 9, 0, 0 },
  /* seq 4: an overwrite. */
  { "5c07185d0a0001a45f0a0001d05e0a00", 0, 679192, 471, 679844, 1, 679632, 1 },
};

static void
check_entry_vector (const struct entry_vector *v)
{
  uint8_t raw[ENTRY_SIZE], again[ENTRY_SIZE];
  struct recovery_journal_entry entry;

  ck_assert_uint_eq (test_hex_to_bytes (v->hex, raw, sizeof raw), sizeof raw);
  vdo_decode_recovery_journal_entry (raw, &entry);
  ck_assert_uint_eq (entry.operation, v->operation);
  ck_assert_uint_eq (entry.slot_pbn, v->slot_pbn);
  ck_assert_uint_eq (entry.slot, v->slot);
  ck_assert_uint_eq (entry.mapping.pbn, v->mapping_pbn);
  ck_assert_uint_eq (entry.mapping.state, v->mapping_state);
  ck_assert_uint_eq (entry.unmapping.pbn, v->unmapping_pbn);
  ck_assert_uint_eq (entry.unmapping.state, v->unmapping_state);
  ck_assert (vdo_is_valid_location (entry.mapping));
  ck_assert (vdo_is_valid_location (entry.unmapping));

  memset (again, 0xA5, sizeof again);
  vdo_encode_recovery_journal_entry (again, &entry);
  ck_assert_mem_eq (again, raw, sizeof raw);
}

START_TEST (test_doc_entries)
{
  size_t i;

  for (i = 0; i < sizeof doc_entries / sizeof doc_entries[0]; i++)
    check_entry_vector (&doc_entries[i]);
}
END_TEST

START_TEST (test_fixture_entries)
{
  size_t i;

  for (i = 0; i < sizeof fixture_entries / sizeof fixture_entries[0]; i++)
    check_entry_vector (&fixture_entries[i]);
}
END_TEST

/* The doc's last example is cut short after the mapping; the slot word
 * packs slot 428 = 0x1ac across both bytes. */
START_TEST (test_doc_entry_slot_bits)
{
  uint8_t raw[ENTRY_SIZE] = { 0 };
  struct recovery_journal_entry entry;

  test_hex_to_bytes ("b0 06 25 5d 0a 00 01 26 5d 0a 00", raw, sizeof raw);
  vdo_decode_recovery_journal_entry (raw, &entry);
  ck_assert_uint_eq (get_le16 (raw), 0x06b0);
  ck_assert_uint_eq (entry.operation, VDO_JOURNAL_DATA_REMAPPING);
  ck_assert_uint_eq (entry.slot, 428);
  ck_assert_uint_eq (entry.slot, 1000000 % VDO_BLOCK_MAP_ENTRIES_PER_PAGE);
  ck_assert_uint_eq (entry.slot_pbn, 679205);
  ck_assert_uint_eq (entry.mapping.pbn, 679206);
  ck_assert_uint_eq (entry.mapping.state, 1);
}
END_TEST

/* High PBN nibbles: page PBN bits 32..35 sit in the word's top nibble,
 * mapping PBN bits 32..35 in the high nibble of its first byte. */
START_TEST (test_entry_high_bits)
{
  struct recovery_journal_entry entry = {
    .operation = VDO_JOURNAL_BLOCK_MAP_REMAPPING,
    .slot_pbn = 0xF00000001ull,
    .slot = 811,
    .mapping = { 0x300001234ull, 5 },
    .unmapping = { 700100, 1 },
  }, decoded;
  uint8_t raw[ENTRY_SIZE], expected[ENTRY_SIZE];

  vdo_encode_recovery_journal_entry (raw, &entry);
  /* word = 1 | 811 << 2 | 0xF << 12 = 0xFCAD; the 5-byte entries are
   * vdo-format.md 5.4's examples. */
  test_hex_to_bytes ("ad fc 01 00 00 00 35 34 12 00 00 01 c4 ae 0a 00",
                     expected, sizeof expected);
  ck_assert_mem_eq (raw, expected, sizeof raw);
  vdo_decode_recovery_journal_entry (raw, &decoded);
  ck_assert_uint_eq (decoded.operation, entry.operation);
  ck_assert_uint_eq (decoded.slot_pbn, entry.slot_pbn);
  ck_assert_uint_eq (decoded.slot, entry.slot);
  ck_assert_uint_eq (decoded.mapping.pbn, entry.mapping.pbn);
  ck_assert_uint_eq (decoded.mapping.state, entry.mapping.state);
  ck_assert_uint_eq (decoded.unmapping.pbn, entry.unmapping.pbn);
  ck_assert_uint_eq (decoded.unmapping.state, entry.unmapping.state);
}
END_TEST

/* vdo-journals.md 11.3: the first block of a volume, decoded there. */
START_TEST (test_doc_block_header)
{
  uint8_t block[VDO_BLOCK_SIZE] = { 0 }, again[VDO_BLOCK_SIZE] = { 0 };
  struct recovery_block_header header;
  struct recovery_journal_sector_header sector;

  test_hex_to_bytes ("01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00"
                     "01 00 00 00 00 00 00 00 55 27 57 95 1c 61 06 00"
                     "03 14 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
                     "00 00 00 80 00", block, sizeof block);
  test_hex_to_bytes ("80 00 14", block + 512, 3);
  vdo_decode_recovery_block_header (block, &header);
  ck_assert_uint_eq (header.block_map_head, 1);
  ck_assert_uint_eq (header.slab_journal_head, 1);
  ck_assert_uint_eq (header.sequence_number, 1);
  ck_assert_uint_eq (header.nonce, DOC_NONCE);
  ck_assert_uint_eq (header.metadata_type, VDO_METADATA_RECOVERY_JOURNAL_2);
  ck_assert_uint_eq (header.entry_count, 20);
  ck_assert_uint_eq (header.logical_blocks_used, 0);
  ck_assert_uint_eq (header.block_map_data_blocks, 0);
  ck_assert_uint_eq (header.check_byte, 0x80);
  ck_assert_uint_eq (header.recovery_count, 0);
  ck_assert (vdo_is_exact_recovery_block (&header, DOC_NONCE, 0, 1));
  ck_assert_uint_eq (header.check_byte,
                     vdo_recovery_journal_check_byte (1, JOURNAL_SIZE));

  vdo_decode_recovery_journal_sector_header (block + 512, &sector);
  ck_assert_uint_eq (sector.entry_count, 20);
  ck_assert (vdo_is_valid_recovery_journal_sector (&header, &sector, 1));

  vdo_encode_recovery_block_header (again, &header);
  ck_assert_mem_eq (again, block, VDO_RECOVERY_JOURNAL_HEADER_SIZE);
}
END_TEST

static void
load_seq5 (uint8_t block[VDO_BLOCK_SIZE])
{
  test_fill_runs (block, VDO_BLOCK_SIZE, rj_seq5,
                  sizeof rj_seq5 / sizeof rj_seq5[0]);
}

START_TEST (test_fixture_block)
{
  uint8_t block[VDO_BLOCK_SIZE], again[VDO_BLOCK_SIZE];
  struct recovery_journal_entry entries[MAX_ENTRIES];
  struct recovery_block_header header;
  struct recovery_journal_sector_header sector;
  unsigned int e, s, total = 0;

  load_seq5 (block);
  vdo_decode_recovery_block_header (block, &header);
  ck_assert_uint_eq (header.block_map_head, 1);
  ck_assert_uint_eq (header.slab_journal_head, 1);
  ck_assert_uint_eq (header.sequence_number, 5);
  ck_assert_uint_eq (header.nonce, NONCE);
  ck_assert_uint_eq (header.metadata_type, VDO_METADATA_RECOVERY_JOURNAL_2);
  ck_assert_uint_eq (header.entry_count, 36);
  ck_assert_uint_eq (header.logical_blocks_used, 584);
  ck_assert_uint_eq (header.block_map_data_blocks, 16);
  ck_assert_uint_eq (header.check_byte, 0x80);
  ck_assert_uint_eq (header.recovery_count, 0);

  ck_assert_int_eq (vdo_check_recovery_block_header (&header, NONCE, 0),
                    VDO_RECOVERY_BLOCK_VALID);
  ck_assert (vdo_is_exact_recovery_block (&header, NONCE, 0, 5));
  ck_assert (vdo_is_recovery_block_in_place (&header, JOURNAL_SIZE, 5));
  ck_assert_uint_eq (vdo_recovery_journal_block_pbn (JOURNAL_ORIGIN, JOURNAL_SIZE,
                                                     header.sequence_number),
                     2064325);
  ck_assert_uint_eq (header.check_byte,
                     vdo_recovery_journal_check_byte (5, JOURNAL_SIZE));

  /* Sectors 1 and 2 were started; the rest are zero and invalid. */
  for (s = 1; s < VDO_SECTORS_PER_BLOCK; s++) {
    vdo_decode_recovery_journal_sector_header (block + VDO_SECTOR_SIZE * s,
                                               &sector);
    if (s <= 2) {
      ck_assert (vdo_is_valid_recovery_journal_sector (&header, &sector, s));
      ck_assert_uint_eq (sector.check_byte, 0x80);
      ck_assert_uint_eq (sector.recovery_count, 0);
      total += sector.entry_count;
    }
    else
      ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &sector, s));
  }
  ck_assert_uint_eq (total, header.entry_count);

  for (e = 0; e < header.entry_count; e++)
    vdo_decode_recovery_journal_entry
      (block + vdo_recovery_journal_entry_offset (header.metadata_type, e),
       &entries[e]);

  /* Entry 0: LBN 588's leaf slot overwritten by a zero block. */
  ck_assert_uint_eq (entries[0].operation, VDO_JOURNAL_DATA_REMAPPING);
  ck_assert_uint_eq (entries[0].slot_pbn, 679192);
  ck_assert_uint_eq (entries[0].slot, 588);
  ck_assert_uint_eq (entries[0].mapping.pbn, 0);
  ck_assert_uint_eq (entries[0].mapping.state, 1);
  ck_assert_uint_eq (entries[0].unmapping.pbn, 679749);
  ck_assert_uint_eq (entries[0].unmapping.state, 1);
  /* Entry 20: a compressed fragment (state 9 = slot 7) replaced. */
  ck_assert_uint_eq (entries[20].slot, 256);
  ck_assert_uint_eq (entries[20].mapping.pbn, 679885);
  ck_assert_uint_eq (entries[20].unmapping.pbn, 679456);
  ck_assert_uint_eq (entries[20].unmapping.state, 9);
  ck_assert_uint_eq (entries[27].unmapping.state, 2);
  /* Entry 28: a discard, to (0, unmapped). */
  ck_assert_uint_eq (entries[28].slot, 128);
  ck_assert_uint_eq (entries[28].mapping.pbn, 0);
  ck_assert_uint_eq (entries[28].mapping.state, 0);
  ck_assert_uint_eq (entries[28].unmapping.pbn, 679259);
  /* Entry 31 is the first of sector 2; 35 the last of the block. */
  ck_assert_uint_eq (vdo_recovery_journal_entry_offset (3, 31), 1024 + 3);
  ck_assert_uint_eq (entries[31].slot, 131);
  ck_assert_uint_eq (entries[31].unmapping.pbn, 679319);
  ck_assert_uint_eq (entries[35].slot, 135);
  ck_assert_uint_eq (entries[35].unmapping.pbn, 679195);
  for (e = 0; e < header.entry_count; e++) {
    ck_assert (vdo_is_valid_location (entries[e].mapping));
    ck_assert (vdo_is_valid_location (entries[e].unmapping));
  }

  /* The writer's encoding reproduces the kernel's block exactly. */
  memset (again, 0xA5, sizeof again);
  ck_assert_int_eq (vdo_encode_recovery_block (again, &header, entries),
                    VDO_SUCCESS);
  ck_assert_mem_eq (again, block, VDO_BLOCK_SIZE);
}
END_TEST

START_TEST (test_capacities)
{
  ck_assert_uint_eq (VDO_RECOVERY_JOURNAL_ENTRIES_PER_SECTOR, 31);
  ck_assert_uint_eq (VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK, 217);
  ck_assert_uint_eq (VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_SECTOR, 46);
  ck_assert_uint_eq (VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_BLOCK, 311);
  ck_assert_uint_eq (VDO_RECOVERY_JOURNAL_1_ENTRIES_IN_LAST_SECTOR, 35);

  ck_assert_uint_eq (vdo_recovery_journal_block_capacity (3), 217);
  ck_assert_uint_eq (vdo_recovery_journal_block_capacity (1), 311);
  ck_assert_uint_eq (vdo_recovery_journal_block_capacity (2), 0);
  ck_assert_uint_eq (vdo_recovery_journal_sector_capacity (3, 0), 0);
  ck_assert_uint_eq (vdo_recovery_journal_sector_capacity (3, 1), 31);
  ck_assert_uint_eq (vdo_recovery_journal_sector_capacity (3, 7), 31);
  ck_assert_uint_eq (vdo_recovery_journal_sector_capacity (3, 8), 0);
  ck_assert_uint_eq (vdo_recovery_journal_sector_capacity (1, 6), 46);
  ck_assert_uint_eq (vdo_recovery_journal_sector_capacity (1, 7), 35);

  /* Format 2: entry e is in sector 1 + e / 31, slot e mod 31. */
  ck_assert_uint_eq (vdo_recovery_journal_entry_offset (3, 0), 515);
  ck_assert_uint_eq (vdo_recovery_journal_entry_offset (3, 30), 515 + 30 * 16);
  ck_assert_uint_eq (vdo_recovery_journal_entry_offset (3, 216),
                     7 * 512 + 3 + 30 * 16);
  ck_assert_uint_le (vdo_recovery_journal_entry_offset (3, 216) + 16,
                     7 * 512 + 499);
  /* Format 1: 46 to a sector, 11 bytes each. */
  ck_assert_uint_eq (vdo_recovery_journal_entry_offset (1, 45), 512 + 3 + 45 * 11);
  ck_assert_uint_eq (vdo_recovery_journal_entry_offset (1, 46), 1024 + 3);
  ck_assert_uint_eq (vdo_recovery_journal_entry_offset (1, 310),
                     7 * 512 + 3 + 34 * 11);
}
END_TEST

START_TEST (test_sequence_mapping)
{
  /* The first block ever written is index 1; index 0 waits for seq = size. */
  const block_count_t size = JOURNAL_SIZE;

  ck_assert_uint_eq (vdo_recovery_journal_block_index (1, size), 1);
  ck_assert_uint_eq (vdo_recovery_journal_block_index (size, size), 0);
  ck_assert_uint_eq (vdo_recovery_journal_block_index (size + 5, size), 5);
  ck_assert_uint_eq (vdo_recovery_journal_block_pbn (JOURNAL_ORIGIN, size, 1),
                     2064321);
  ck_assert_uint_eq (vdo_recovery_journal_block_pbn (JOURNAL_ORIGIN, size,
                                                     2 * size - 1),
                     2097087);
  ck_assert_uint_eq (vdo_recovery_journal_block_index (13, 8), 5);

  /* Check bytes: 0x80 on the first lap, then the lap count in 7 bits. */
  ck_assert_uint_eq (vdo_recovery_journal_check_byte (1, size), 0x80);
  ck_assert_uint_eq (vdo_recovery_journal_check_byte (size - 1, size), 0x80);
  ck_assert_uint_eq (vdo_recovery_journal_check_byte (size + 5, size), 0x81);
  ck_assert_uint_eq (vdo_recovery_journal_check_byte (127 * size, size), 0xFF);
  ck_assert_uint_eq (vdo_recovery_journal_check_byte (128 * size, size), 0x80);

  ck_assert_uint_eq (vdo_recovery_journal_recovery_count (0), 0);
  ck_assert_uint_eq (vdo_recovery_journal_recovery_count (1), 1);
  ck_assert_uint_eq (vdo_recovery_journal_recovery_count (257), 1);
}
END_TEST

START_TEST (test_block_validity)
{
  uint8_t block[VDO_BLOCK_SIZE];
  struct recovery_block_header good, bad;

  load_seq5 (block);
  vdo_decode_recovery_block_header (block, &good);

  /* Another volume's nonce, or a never-written (zero) block. */
  ck_assert_int_eq (vdo_check_recovery_block_header (&good, NONCE + 1, 0),
                    VDO_RECOVERY_BLOCK_BAD_NONCE);
  ck_assert (!vdo_is_valid_recovery_block (&good, DOC_NONCE, 0));
  memset (block, 0, sizeof block);
  vdo_decode_recovery_block_header (block, &bad);
  ck_assert_int_eq (vdo_check_recovery_block_header (&bad, NONCE, 0),
                    VDO_RECOVERY_BLOCK_BAD_NONCE);

  /* Written before a recovery: the current count is 1. */
  ck_assert_int_eq (vdo_check_recovery_block_header (&good, NONCE, 1),
                    VDO_RECOVERY_BLOCK_BAD_RECOVERY_COUNT);
  ck_assert (!vdo_is_exact_recovery_block (&good, NONCE, 1, 5));
  bad = good;
  bad.recovery_count = 1;
  ck_assert (!vdo_is_valid_recovery_block (&bad, NONCE, 0));

  /* Metadata types: 3 and 1 are journal blocks, 2 (slab journal) and 0
   * are not. */
  bad = good;
  bad.metadata_type = 2;
  ck_assert_int_eq (vdo_check_recovery_block_header (&bad, NONCE, 0),
                    VDO_RECOVERY_BLOCK_BAD_METADATA_TYPE);
  bad.metadata_type = 0;
  ck_assert (!vdo_is_valid_recovery_block (&bad, NONCE, 0));
  bad.metadata_type = VDO_METADATA_RECOVERY_JOURNAL;
  ck_assert (vdo_is_valid_recovery_block (&bad, NONCE, 0));

  /* Entry counts: 217 for format 2, 311 for format 1. */
  bad = good;
  bad.entry_count = 217;
  ck_assert (vdo_is_valid_recovery_block (&bad, NONCE, 0));
  bad.entry_count = 218;
  ck_assert_int_eq (vdo_check_recovery_block_header (&bad, NONCE, 0),
                    VDO_RECOVERY_BLOCK_TOO_MANY_ENTRIES);
  bad.metadata_type = VDO_METADATA_RECOVERY_JOURNAL;
  ck_assert (vdo_is_valid_recovery_block (&bad, NONCE, 0));
  bad.entry_count = 311;
  ck_assert (vdo_is_valid_recovery_block (&bad, NONCE, 0));
  bad.entry_count = 312;
  ck_assert_int_eq (vdo_check_recovery_block_header (&bad, NONCE, 0),
                    VDO_RECOVERY_BLOCK_TOO_MANY_ENTRIES);

  /* Exactness and position: seq 5 is neither seq 4 nor at index 6; an
   * older lap's seq 5 - size is not exact for seq 5 either. */
  ck_assert (!vdo_is_exact_recovery_block (&good, NONCE, 0, 4));
  ck_assert (!vdo_is_recovery_block_in_place (&good, JOURNAL_SIZE, 6));
  ck_assert (vdo_is_recovery_block_in_place (&good, JOURNAL_SIZE, 5));
  ck_assert (!vdo_is_exact_recovery_block (&good, NONCE, 0, JOURNAL_SIZE + 5));

  ck_assert_str_eq (vdo_recovery_block_validity_name (VDO_RECOVERY_BLOCK_BAD_NONCE),
                    "wrong nonce");
  ck_assert_ptr_nonnull (vdo_recovery_block_validity_name
                         (VDO_RECOVERY_BLOCK_TOO_MANY_ENTRIES));
}
END_TEST

START_TEST (test_sector_validity)
{
  uint8_t block[VDO_BLOCK_SIZE];
  struct recovery_block_header header;
  struct recovery_journal_sector_header good, bad;

  load_seq5 (block);
  vdo_decode_recovery_block_header (block, &header);
  vdo_decode_recovery_journal_sector_header (block + 512, &good);
  ck_assert (vdo_is_valid_recovery_journal_sector (&header, &good, 1));

  /* A sector that never landed (zeros) or is from another lap. */
  bad = good;
  bad.check_byte = 0;
  ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &bad, 1));
  bad.check_byte = 0x81;
  ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &bad, 1));

  /* A sector from before a recovery. */
  bad = good;
  bad.recovery_count = 1;
  ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &bad, 1));

  /* Entry counts. */
  bad = good;
  bad.entry_count = 32;
  ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &bad, 1));
  bad.entry_count = 0;
  ck_assert (vdo_is_valid_recovery_journal_sector (&header, &bad, 1));

  /* Sector numbers outside 1..7 hold no entries. */
  ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &good, 0));
  ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &good, 8));

  /* Format 1: 46 per sector, 35 in sector 7. */
  header.metadata_type = VDO_METADATA_RECOVERY_JOURNAL;
  bad = good;
  bad.entry_count = 46;
  ck_assert (vdo_is_valid_recovery_journal_sector (&header, &bad, 6));
  ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &bad, 7));
  bad.entry_count = 47;
  ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &bad, 6));
  bad.entry_count = 35;
  ck_assert (vdo_is_valid_recovery_journal_sector (&header, &bad, 7));
  bad.entry_count = 36;
  ck_assert (!vdo_is_valid_recovery_journal_sector (&header, &bad, 7));
}
END_TEST

START_TEST (test_format_1_entries)
{
  struct recovery_journal_entry entry = {
    .operation = VDO_JOURNAL_DATA_INCREMENT,
    .slot_pbn = 0x900001234ull,
    .slot = 811,
    .mapping = { 0x300001234ull, 5 },
    .unmapping = { 77, 1 },     /* not stored by format 1 */
  }, decoded, converted;
  uint8_t raw[ENTRY_1_SIZE + 1], expected[ENTRY_1_SIZE];

  memset (raw, 0xEE, sizeof raw);
  vdo_encode_recovery_journal_entry_1 (raw, &entry);
  test_hex_to_bytes ("ad 9c 34 12 00 00 35 34 12 00 00", expected, sizeof expected);
  ck_assert_mem_eq (raw, expected, sizeof expected);
  ck_assert_uint_eq (raw[ENTRY_1_SIZE], 0xEE);

  vdo_decode_recovery_journal_entry_1 (raw, &decoded);
  ck_assert_uint_eq (decoded.operation, VDO_JOURNAL_DATA_INCREMENT);
  ck_assert_uint_eq (decoded.slot_pbn, 0x900001234ull);
  ck_assert_uint_eq (decoded.slot, 811);
  ck_assert_uint_eq (decoded.mapping.pbn, 0x300001234ull);
  ck_assert_uint_eq (decoded.mapping.state, 5);
  ck_assert_uint_eq (decoded.unmapping.pbn, 0);
  ck_assert_uint_eq (decoded.unmapping.state, 0);

  /* Increments become remappings from (0, unmapped)... */
  ck_assert (vdo_convert_recovery_journal_entry_1 (&decoded, &converted));
  ck_assert_uint_eq (converted.operation, VDO_JOURNAL_DATA_REMAPPING);
  ck_assert_uint_eq (converted.slot_pbn, decoded.slot_pbn);
  ck_assert_uint_eq (converted.mapping.pbn, decoded.mapping.pbn);
  ck_assert_uint_eq (converted.unmapping.pbn, 0);
  decoded.operation = VDO_JOURNAL_BLOCK_MAP_INCREMENT;
  ck_assert (vdo_convert_recovery_journal_entry_1 (&decoded, &converted));
  ck_assert_uint_eq (converted.operation, VDO_JOURNAL_BLOCK_MAP_REMAPPING);

  /* ...and decrements are skipped. */
  decoded.operation = VDO_JOURNAL_DATA_DECREMENT;
  ck_assert (!vdo_convert_recovery_journal_entry_1 (&decoded, &converted));
  decoded.operation = VDO_JOURNAL_BLOCK_MAP_DECREMENT;
  ck_assert (!vdo_convert_recovery_journal_entry_1 (&decoded, &converted));
}
END_TEST

static struct recovery_block_header
synthetic_header (uint16_t entry_count)
{
  struct recovery_block_header header = {
    .block_map_head = 30,
    .slab_journal_head = 29,
    .sequence_number = JOURNAL_SIZE + 40,
    .nonce = NONCE,
    .metadata_type = VDO_METADATA_RECOVERY_JOURNAL_2,
    .entry_count = entry_count,
    .logical_blocks_used = 123456789,
    .block_map_data_blocks = 4242,
    .check_byte = vdo_recovery_journal_check_byte (JOURNAL_SIZE + 40, JOURNAL_SIZE),
    .recovery_count = 3,
  };
  return header;
}

START_TEST (test_full_block_round_trip)
{
  static struct recovery_journal_entry entries[MAX_ENTRIES];
  struct recovery_block_header header = synthetic_header (217), decoded;
  struct recovery_journal_sector_header sector;
  uint8_t block[VDO_BLOCK_SIZE];
  unsigned int e, s;

  for (e = 0; e < 217; e++) {
    entries[e].operation = e % 2;
    entries[e].slot_pbn = 0x100000000ull * (e % 16) + 1000 + e;
    entries[e].slot = (e * 7) % VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
    entries[e].mapping.pbn = 5000 + e;
    entries[e].mapping.state = 1 + e % 15;
    entries[e].unmapping.pbn = e % 3 ? 6000 + e : 0;
    entries[e].unmapping.state = e % 3 ? 1 : 0;
  }
  ck_assert_int_eq (vdo_encode_recovery_block (block, &header, entries),
                    VDO_SUCCESS);

  vdo_decode_recovery_block_header (block, &decoded);
  ck_assert_uint_eq (decoded.block_map_head, 30);
  ck_assert_uint_eq (decoded.slab_journal_head, 29);
  ck_assert_uint_eq (decoded.sequence_number, JOURNAL_SIZE + 40);
  ck_assert_uint_eq (decoded.nonce, NONCE);
  ck_assert_uint_eq (decoded.metadata_type, VDO_METADATA_RECOVERY_JOURNAL_2);
  ck_assert_uint_eq (decoded.entry_count, 217);
  ck_assert_uint_eq (decoded.logical_blocks_used, 123456789);
  ck_assert_uint_eq (decoded.block_map_data_blocks, 4242);
  ck_assert_uint_eq (decoded.recovery_count, 3);
  ck_assert_uint_eq (block[51], 0x81);
  ck_assert (vdo_is_exact_recovery_block (&decoded, NONCE, 3, JOURNAL_SIZE + 40));
  ck_assert (vdo_is_recovery_block_in_place (&decoded, JOURNAL_SIZE, 40));
  for (e = 53; e < 512; e++)
    ck_assert_uint_eq (block[e], 0);
  for (s = 1; s < VDO_SECTORS_PER_BLOCK; s++) {
    vdo_decode_recovery_journal_sector_header (block + 512 * s, &sector);
    ck_assert_uint_eq (sector.check_byte, 0x81);
    ck_assert_uint_eq (sector.recovery_count, 3);
    ck_assert_uint_eq (sector.entry_count, 31);
    ck_assert (vdo_is_valid_recovery_journal_sector (&decoded, &sector, s));
    /* The 13 bytes after the entries stay zero. */
    for (e = 499; e < 512; e++)
      ck_assert_uint_eq (block[512 * s + e], 0);
  }
  for (e = 0; e < 217; e++) {
    struct recovery_journal_entry d;

    vdo_decode_recovery_journal_entry
      (block + vdo_recovery_journal_entry_offset (3, e), &d);
    ck_assert_uint_eq (d.operation, entries[e].operation);
    ck_assert_uint_eq (d.slot_pbn, entries[e].slot_pbn);
    ck_assert_uint_eq (d.slot, entries[e].slot);
    ck_assert_uint_eq (d.mapping.pbn, entries[e].mapping.pbn);
    ck_assert_uint_eq (d.mapping.state, entries[e].mapping.state);
    ck_assert_uint_eq (d.unmapping.pbn, entries[e].unmapping.pbn);
    ck_assert_uint_eq (d.unmapping.state, entries[e].unmapping.state);
  }
}
END_TEST

/* Sectors are started one at a time: only when the previous is full. */
START_TEST (test_partial_blocks)
{
  static struct recovery_journal_entry entries[MAX_ENTRIES];
  struct recovery_block_header header = synthetic_header (0);
  uint8_t block[VDO_BLOCK_SIZE];

  /* An opened, empty block has sector 1 started. */
  ck_assert_int_eq (vdo_encode_recovery_block (block, &header, entries),
                    VDO_SUCCESS);
  ck_assert_uint_eq (block[512], 0x81);
  ck_assert_uint_eq (block[513], 3);
  ck_assert_uint_eq (block[514], 0);
  ck_assert_uint_eq (block[1024], 0);

  header.entry_count = 31;
  ck_assert_int_eq (vdo_encode_recovery_block (block, &header, entries),
                    VDO_SUCCESS);
  ck_assert_uint_eq (block[514], 31);
  ck_assert_uint_eq (block[1024], 0);

  header.entry_count = 32;
  ck_assert_int_eq (vdo_encode_recovery_block (block, &header, entries),
                    VDO_SUCCESS);
  ck_assert_uint_eq (block[514], 31);
  ck_assert_uint_eq (block[1024], 0x81);
  ck_assert_uint_eq (block[1026], 1);
  ck_assert_uint_eq (block[1536], 0);

  /* Only format 2 blocks of at most 217 entries are written. */
  header.entry_count = 218;
  ck_assert_int_eq (vdo_encode_recovery_block (block, &header, entries),
                    UDS_INVALID_ARGUMENT);
  header.entry_count = 10;
  header.metadata_type = VDO_METADATA_RECOVERY_JOURNAL;
  ck_assert_int_eq (vdo_encode_recovery_block (block, &header, entries),
                    UDS_INVALID_ARGUMENT);
}
END_TEST

START_TEST (test_location_validity)
{
  struct vdo_data_location unmapped = { 0, 0 }, zero = { 0, 1 };
  struct vdo_data_location compressed_zero = { 0, 2 };
  struct vdo_data_location unmapped_pbn = { 679193, 0 };
  struct vdo_data_location mapped = { 679193, 1 };
  struct vdo_data_location fragment = { 679456, 15 };

  ck_assert (vdo_is_valid_location (unmapped));
  ck_assert (vdo_is_valid_location (zero));
  ck_assert (!vdo_is_valid_location (compressed_zero));
  ck_assert (!vdo_is_valid_location (unmapped_pbn));
  ck_assert (vdo_is_valid_location (mapped));
  ck_assert (vdo_is_valid_location (fragment));
}
END_TEST

Suite *
recovery_journal_format_suite (void)
{
  Suite *s = suite_create ("recovery-journal-format");
  TCase *tc = tcase_create ("codec");

  tcase_add_test (tc, test_doc_entries);
  tcase_add_test (tc, test_fixture_entries);
  tcase_add_test (tc, test_doc_entry_slot_bits);
  tcase_add_test (tc, test_entry_high_bits);
  tcase_add_test (tc, test_doc_block_header);
  tcase_add_test (tc, test_fixture_block);
  tcase_add_test (tc, test_capacities);
  tcase_add_test (tc, test_sequence_mapping);
  tcase_add_test (tc, test_format_1_entries);
  tcase_add_test (tc, test_full_block_round_trip);
  tcase_add_test (tc, test_partial_blocks);
  suite_add_tcase (s, tc);

  tc = tcase_create ("validity");
  tcase_add_test (tc, test_block_validity);
  tcase_add_test (tc, test_sector_validity);
  tcase_add_test (tc, test_location_validity);
  suite_add_tcase (s, tc);
  return s;
}
