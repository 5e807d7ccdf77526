/* nbdkit-vdo: reading the recovery journal back for recovery and rebuild
 * (vdo-journals.md 7.3 R2-R5, 7.4 B3), on synthetic journals built with
 * the block encoders; the cases follow the kernel's RecoveryJournal_t2
 * list (vdo-journals.md 10, items 1-15). */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "journal-parser.h"
#include "page-mappings.h"
#include "recovery-journal-format.h"
#include "status.h"
#include "unit-suites.h"

#define NONCE 0x0123456789abcdefull
#define RECOVERY_COUNT 3
#define SIZE 8                          /* journal blocks, as the kernel's */
#define FULL VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK
#define PER_SECTOR VDO_RECOVERY_JOURNAL_ENTRIES_PER_SECTOR
#define FULL_1 VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_BLOCK

/* Four slabs of 1000 blocks from PBN 1000, 900 data blocks each. */
static const struct slab_depot_state_2_0 depot = {
  .slab_config = { .slab_blocks = 1000, .data_blocks = 900 },
  .first_block = 1000,
  .last_block = 5000,
};

static uint8_t *journal;
static struct vdo_journal_parser_config config;
static struct vdo_journal_parse parse;

static void
setup (void)
{
  journal = calloc (SIZE, VDO_BLOCK_SIZE);
  ck_assert_ptr_nonnull (journal);
  config = (struct vdo_journal_parser_config) {
    .nonce = NONCE,
    .recovery_count = RECOVERY_COUNT,
    .journal_size = SIZE,
    .journal_start = 1,
    .physical_blocks = 10000,
    .depot = &depot,
  };
  memset (&parse, 0, sizeof parse);
}

static void
teardown (void)
{
  vdo_free_journal_parse (&parse);
  free (journal);
}

static uint8_t *
block_at (sequence_number_t sequence)
{
  return journal + (sequence % SIZE) * VDO_BLOCK_SIZE;
}

/* Entry k of block seq: a data write naming both in its mapping, so a
 * test can tell which entries were taken.  Slot (seq * 217 + k) of the
 * leaf pages from PBN 3000 on; data PBN 1000 + that number mod 900. */
static struct recovery_journal_entry
make_entry (sequence_number_t sequence, unsigned int k)
{
  uint64_t n = sequence * FULL + k;
  struct recovery_journal_entry entry = {
    .operation = VDO_JOURNAL_DATA_REMAPPING,
    .slot_pbn = 3000 + n / VDO_BLOCK_MAP_ENTRIES_PER_PAGE,
    .slot = n % VDO_BLOCK_MAP_ENTRIES_PER_PAGE,
    .mapping = { 1000 + n % 900, VDO_MAPPING_STATE_UNCOMPRESSED },
    .unmapping = { 0, VDO_MAPPING_STATE_UNMAPPED },
  };

  return entry;
}

static struct recovery_block_header
make_header (sequence_number_t sequence, sequence_number_t head,
             unsigned int count)
{
  struct recovery_block_header header = {
    .block_map_head = head,
    .slab_journal_head = head,
    .sequence_number = sequence,
    .nonce = NONCE,
    .metadata_type = VDO_METADATA_RECOVERY_JOURNAL_2,
    .entry_count = count,
    .logical_blocks_used = 100 * sequence,
    .block_map_data_blocks = 10 * sequence,
    .check_byte = vdo_recovery_journal_check_byte (sequence, SIZE),
    .recovery_count = RECOVERY_COUNT,
  };

  return header;
}

/* A format 2 block of COUNT entries at its place, as the kernel writes
 * it; returns the block for further damage. */
static uint8_t *
write_block_with (const struct recovery_block_header *header,
                  const struct recovery_journal_entry *entries)
{
  uint8_t *block = block_at (header->sequence_number);

  ck_assert_int_eq (vdo_encode_recovery_block (block, header, entries),
                    VDO_SUCCESS);
  return block;
}

static uint8_t *
write_block (sequence_number_t sequence, sequence_number_t head,
             unsigned int count)
{
  struct recovery_journal_entry entries[FULL];
  struct recovery_block_header header = make_header (sequence, head, count);
  unsigned int k;

  for (k = 0; k < count; k++)
    entries[k] = make_entry (sequence, k);
  return write_block_with (&header, entries);
}

/* A format 1 block: same header and sectors, 11-byte entries, each
 * remapping as an increment, every third one a decrement. */
static uint8_t *
write_block_1 (sequence_number_t sequence, sequence_number_t head,
               unsigned int count)
{
  struct recovery_block_header header = make_header (sequence, head, count);
  uint8_t *block = block_at (sequence);
  unsigned int k, s, first = 0;

  header.metadata_type = VDO_METADATA_RECOVERY_JOURNAL;
  memset (block, 0, VDO_BLOCK_SIZE);
  vdo_encode_recovery_block_header (block, &header);
  for (s = 1; s < VDO_SECTORS_PER_BLOCK && first < count; s++) {
    unsigned int capacity = vdo_recovery_journal_sector_capacity
                              (VDO_METADATA_RECOVERY_JOURNAL, s);
    struct recovery_journal_sector_header sector = {
      .check_byte = header.check_byte,
      .recovery_count = header.recovery_count,
      .entry_count = count - first < capacity ? count - first : capacity,
    };

    vdo_encode_recovery_journal_sector_header (block + s * VDO_SECTOR_SIZE,
                                               &sector);
    first += sector.entry_count;
  }
  for (k = 0; k < count; k++) {
    struct recovery_journal_entry entry = make_entry (sequence, k);

    entry.operation = k % 3 == 2 ? VDO_JOURNAL_DATA_DECREMENT
                      : VDO_JOURNAL_DATA_INCREMENT;
    vdo_encode_recovery_journal_entry_1
      (block + vdo_recovery_journal_entry_offset
                 (VDO_METADATA_RECOVERY_JOURNAL, k), &entry);
  }
  return block;
}

static void
scan (struct vdo_journal_bounds *bounds)
{
  block_count_t i;

  vdo_start_journal_scan (&config, bounds);
  for (i = 0; i < SIZE; i++)
    vdo_scan_journal_block (&config, bounds, i, journal + i * VDO_BLOCK_SIZE);
}

static int
recover (void)
{
  struct vdo_journal_bounds bounds;

  scan (&bounds);
  return vdo_parse_journal_for_recovery (&config, &bounds, journal, &parse);
}

static int
rebuild (void)
{
  struct vdo_journal_bounds bounds;

  scan (&bounds);
  return vdo_parse_journal_for_rebuild (&config, &bounds, journal, &parse);
}

/* The mappings are exactly entries [0, count) of each listed block, in
 * order.  Blocks are given as (sequence, count) pairs, ended by 0. */
static void
expect_mappings (const unsigned int *blocks)
{
  size_t at = 0;

  for (; blocks[0] != 0; blocks += 2) {
    unsigned int k;

    for (k = 0; k < blocks[1]; k++, at++) {
      struct recovery_journal_entry entry = make_entry (blocks[0], k);

      ck_assert_uint_lt (at, parse.mapping_count);
      ck_assert_uint_eq (parse.mappings[at].page_pbn, entry.slot_pbn);
      ck_assert_uint_eq (parse.mappings[at].slot, entry.slot);
      ck_assert_uint_eq (parse.mappings[at].pbn, entry.mapping.pbn);
      ck_assert_uint_eq (parse.mappings[at].serial, at);
    }
  }
  ck_assert_uint_eq (parse.mapping_count, at);
}

static void
set_sector (uint8_t *block, unsigned int sector, int check_byte,
            int recovery_count, int entry_count)
{
  uint8_t *header = block + sector * VDO_SECTOR_SIZE;

  if (check_byte >= 0)
    header[0] = check_byte;
  if (recovery_count >= 0)
    header[1] = recovery_count;
  if (entry_count >= 0)
    header[2] = entry_count;
}

/* --- R2 ----------------------------------------------------------------- */

START_TEST (test_empty_journal)
{
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert (!parse.bounds.found);
  ck_assert_uint_eq (parse.bounds.highest_tail, 1);
  ck_assert_uint_eq (parse.mapping_count, 0);
  ck_assert (!parse.have_counters);
  ck_assert_int_eq (rebuild (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.mapping_count, 0);
}
END_TEST

/* Only blocks of this volume and this recovery epoch, at their own
 * index, count; journal_start bounds the highest from below. */
START_TEST (test_scan_rules)
{
  struct vdo_journal_bounds bounds;
  struct recovery_block_header header = make_header (6, 6, 5);
  struct recovery_journal_entry entries[5] = { { 0 } };

  write_block (1, 1, FULL);
  write_block (2, 1, 10);
  /* Wrong nonce, stale recovery count, wrong position: all newer. */
  header.nonce = NONCE + 1;
  write_block_with (&header, entries);
  header = make_header (7, 7, 5);
  header.recovery_count = RECOVERY_COUNT - 1;
  write_block_with (&header, entries);
  header = make_header (12, 12, 5);
  vdo_encode_recovery_block (block_at (3), &header, entries);
  scan (&bounds);
  ck_assert (bounds.found);
  ck_assert_uint_eq (bounds.highest_tail, 2);
  ck_assert_uint_eq (bounds.block_map_head, 1);

  /* The super block says the journal starts past every valid block. */
  config.journal_start = 3;
  scan (&bounds);
  ck_assert (!bounds.found);
  ck_assert_uint_eq (bounds.highest_tail, 3);
}
END_TEST

/* --- R3-R5 -------------------------------------------------------------- */

/* Item 1: no holes, not wrapped, ending in a partial block. */
START_TEST (test_no_holes)
{
  static const unsigned int want[] = { 1, FULL, 2, FULL, 3, FULL, 4, 50, 0 };
  struct journal_point point = { 1, 0 }, at;
  struct recovery_journal_entry entry;
  uint64_t walked = 0;
  unsigned int k;

  write_block (1, 1, FULL);
  write_block (2, 1, FULL);
  write_block (3, 1, FULL);
  write_block (4, 1, 50);
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.bounds.highest_tail, 4);
  ck_assert_uint_eq (parse.head, 1);
  ck_assert_uint_eq (parse.tail, 4);
  ck_assert_uint_eq (parse.end.sequence_number, 4);
  ck_assert_uint_eq (parse.end.entry_count, 50);
  ck_assert_uint_eq (parse.entry_count, 3 * FULL + 50);
  expect_mappings (want);
  /* R5: the tail block's counters plus its own entries, all new. */
  ck_assert (parse.have_counters);
  ck_assert_uint_eq (parse.logical_blocks_used, 400 + 50);
  ck_assert_uint_eq (parse.block_map_data_blocks, 40);

  /* The walk for the slab journals visits the same entries in order,
   * each with its own point. */
  while (vdo_next_journal_entry (&config, &parse, journal, &point, &entry,
                                 &at)) {
    struct recovery_journal_entry expected
      = make_entry (at.sequence_number, at.entry_count);

    ck_assert_uint_eq (entry.mapping.pbn, expected.mapping.pbn);
    ck_assert_uint_eq (at.sequence_number, 1 + walked / FULL);
    ck_assert_uint_eq (at.entry_count, walked % FULL);
    walked++;
  }
  ck_assert_uint_eq (walked, parse.entry_count);
  for (k = 0; k < 3; k++)
    ck_assert (!vdo_next_journal_entry (&config, &parse, journal, &point,
                                        &entry, NULL));
}
END_TEST

/* Item 2: a wrapped journal ending in a partial block; blocks behind
 * the heads are not applied, nor is a block with a bad nonce there. */
START_TEST (test_wrapped)
{
  static const unsigned int want[] = {
    9, FULL, 10, FULL, 11, FULL, 12, FULL, 13, 7, 0
  };
  struct recovery_block_header header = make_header (8, 6, FULL);
  struct recovery_journal_entry entries[FULL] = { { 0 } };

  write_block (6, 5, FULL);
  write_block (7, 6, FULL);
  header.nonce = 42;
  write_block_with (&header, entries);
  write_block (9, 9, FULL);
  write_block (10, 9, FULL);
  write_block (11, 9, FULL);
  write_block (12, 9, FULL);
  write_block (13, 9, 7);
  config.journal_start = 6;
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.bounds.highest_tail, 13);
  ck_assert_uint_eq (parse.bounds.block_map_head, 9);
  ck_assert_uint_eq (parse.tail, 13);
  expect_mappings (want);
  ck_assert_uint_eq (parse.logical_blocks_used, 1300 + 7);
}
END_TEST

/* A wrapped journal whose last block is full: the end is that block's
 * end, not the next block's start. */
START_TEST (test_wrapped_full_tail)
{
  static const unsigned int want[] = { 14, FULL, 15, FULL, 0 };

  write_block (14, 14, FULL);
  write_block (15, 14, FULL);
  config.journal_start = 14;
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.tail, 15);
  ck_assert_uint_eq (parse.end.sequence_number, 15);
  ck_assert_uint_eq (parse.end.entry_count, FULL);
  expect_mappings (want);
}
END_TEST

/* Item 3: a hole exactly at the head: nothing is applied. */
START_TEST (test_hole_at_head)
{
  struct recovery_block_header header = make_header (3, 3, FULL);
  struct recovery_journal_entry entries[FULL] = { { 0 } };

  header.nonce = NONCE ^ 1;
  write_block_with (&header, entries);
  write_block (4, 3, FULL);
  write_block (5, 3, 20);
  config.journal_start = 3;
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.bounds.highest_tail, 5);
  ck_assert_uint_eq (parse.mapping_count, 0);
  ck_assert_uint_eq (parse.entry_count, 0);
  ck_assert (!parse.have_counters);
}
END_TEST

/* Item 4: a stale recovery count mid-journal: a hole; nothing after it
 * is used even though it is valid. */
START_TEST (test_stale_recovery_count)
{
  static const unsigned int want[] = { 1, FULL, 2, FULL, 0 };
  uint8_t *block;

  write_block (1, 1, FULL);
  write_block (2, 1, FULL);
  block = write_block (3, 1, FULL);
  block[52] = RECOVERY_COUNT + 1;
  write_block (4, 1, FULL);
  write_block (5, 1, 3);
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.bounds.highest_tail, 5);
  ck_assert_uint_eq (parse.tail, 2);
  ck_assert_uint_eq (parse.end.sequence_number, 3);
  ck_assert_uint_eq (parse.end.entry_count, 0);
  expect_mappings (want);
  /* Counted from block 2's header, with all of block 2's entries. */
  ck_assert_uint_eq (parse.logical_blocks_used, 200 + FULL);
}
END_TEST

/* Item 5: just before the tail of a wrapped journal, a block from an
 * older lap (valid, but the wrong sequence number) ends the journal. */
START_TEST (test_old_lap_hole)
{
  static const unsigned int want[] = { 9, FULL, 10, FULL, 11, FULL, 0 };

  write_block (9, 9, FULL);
  write_block (10, 9, FULL);
  write_block (11, 9, FULL);
  write_block (4, 1, FULL);     /* index 4: seq 12 never landed */
  write_block (13, 9, FULL);
  write_block (14, 9, 5);
  config.journal_start = 9;
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.bounds.highest_tail, 14);
  ck_assert_uint_eq (parse.tail, 11);
  expect_mappings (want);
}
END_TEST

/* Item 6: the head block only partly written, then a hole: only its
 * valid part is applied. */
START_TEST (test_partial_head_then_hole)
{
  static const unsigned int want[] = { 3, 40, 0 };

  write_block (3, 3, 40);
  write_block (5, 3, FULL);
  config.journal_start = 3;
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.tail, 3);
  expect_mappings (want);
}
END_TEST

/* Items 7-8: a sector of a full block that never landed (bad check byte,
 * bad recovery count): the sectors before it count, the journal ends. */
START_TEST (test_bad_sector)
{
  static const unsigned int want[] = { 1, FULL, 2, 2 * PER_SECTOR, 0 };
  int kind;

  for (kind = 0; kind < 2; kind++) {
    uint8_t *block;

    vdo_free_journal_parse (&parse);
    memset (journal, 0, SIZE * VDO_BLOCK_SIZE);
    write_block (1, 1, FULL);
    block = write_block (2, 1, FULL);
    if (kind == 0)
      set_sector (block, 3, 0x00, -1, -1);
    else
      set_sector (block, 3, -1, RECOVERY_COUNT + 7, -1);
    write_block (3, 1, FULL);
    ck_assert_int_eq (recover (), VDO_SUCCESS);
    ck_assert_uint_eq (parse.tail, 2);
    ck_assert_uint_eq (parse.end.entry_count, 2 * PER_SECTOR);
    expect_mappings (want);
  }
}
END_TEST

/* Item 9: a short sector (a torn rewrite): its entries count, later
 * sectors do not, and the journal ends. */
START_TEST (test_short_sector)
{
  static const unsigned int want[] = { 1, FULL, 2, PER_SECTOR + 10, 0 };
  uint8_t *block;

  write_block (1, 1, FULL);
  block = write_block (2, 1, FULL);
  set_sector (block, 2, -1, -1, 10);
  write_block (3, 1, FULL);
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.tail, 2);
  expect_mappings (want);
}
END_TEST

/* Item 10: the header's count is below what the sectors hold (its
 * sector was not rewritten): only entry_count entries count. */
START_TEST (test_short_header_count)
{
  static const unsigned int want[] = { 1, FULL, 2, 40, 0 };
  uint8_t *block;

  write_block (1, 1, FULL);
  block = write_block (2, 1, FULL);
  block[33] = 40;
  block[34] = 0;
  write_block (3, 1, FULL);
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.tail, 2);
  expect_mappings (want);
}
END_TEST

/* Item 11: a format 1 block inside a format 2 journal. */
START_TEST (test_mixed_formats)
{
  write_block (1, 1, FULL);
  write_block_1 (2, 1, FULL_1);
  write_block (3, 1, 5);
  ck_assert_int_eq (recover (), VDO_CORRUPT_JOURNAL);
  ck_assert_uint_eq (parse.mapping_count, 0);
  ck_assert_ptr_null (parse.mappings);

  /* And the other way round. */
  memset (journal, 0, SIZE * VDO_BLOCK_SIZE);
  write_block_1 (1, 1, FULL_1);
  write_block (2, 1, 5);
  ck_assert_int_eq (recover (), VDO_CORRUPT_JOURNAL);
}
END_TEST

/* Item 12: an old-format journal: recovery refuses it, rebuild reads it,
 * turning increments into remappings and dropping decrements. */
START_TEST (test_format_1)
{
  unsigned int k;
  size_t at = 0;

  write_block_1 (1, 1, FULL_1);
  write_block_1 (2, 1, 20);
  ck_assert_int_eq (recover (), VDO_UNSUPPORTED_VERSION);
  ck_assert_uint_eq (parse.mapping_count, 0);

  ck_assert_int_eq (rebuild (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.format, VDO_METADATA_RECOVERY_JOURNAL);
  for (k = 0; k < FULL_1 + 20; k++) {
    sequence_number_t sequence = k < FULL_1 ? 1 : 2;
    unsigned int index = k < FULL_1 ? k : k - FULL_1;
    struct recovery_journal_entry entry = make_entry (sequence, index);

    if (index % 3 == 2)
      continue;
    ck_assert_uint_lt (at, parse.mapping_count);
    ck_assert_uint_eq (parse.mappings[at].slot, entry.slot);
    ck_assert_uint_eq (parse.mappings[at].pbn, entry.mapping.pbn);
    at++;
  }
  ck_assert_uint_eq (parse.mapping_count, at);
}
END_TEST

/* Item 13: an old-format block at the wrong position is just a hole. */
START_TEST (test_format_1_misplaced)
{
  static const unsigned int want[] = { 1, FULL, 2, FULL, 0 };

  write_block (1, 1, FULL);
  write_block (2, 1, FULL);
  write_block_1 (3 + SIZE + 1, 1, FULL_1);
  memmove (block_at (3), block_at (4), VDO_BLOCK_SIZE);
  memset (block_at (4), 0, VDO_BLOCK_SIZE);
  write_block (4, 1, FULL);
  write_block (5, 1, 9);
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.bounds.highest_tail, 5);
  ck_assert_uint_eq (parse.tail, 2);
  expect_mappings (want);
}
END_TEST

/* Heads beyond the usable end: the journal contradicts itself. */
static void
write_block_with_heads (sequence_number_t sequence,
                        sequence_number_t block_map_head,
                        sequence_number_t slab_journal_head,
                        unsigned int count)
{
  struct recovery_block_header header = make_header (sequence, 0, count);
  struct recovery_journal_entry entries[FULL];
  unsigned int k;

  header.block_map_head = block_map_head;
  header.slab_journal_head = slab_journal_head;
  for (k = 0; k < count; k++)
    entries[k] = make_entry (sequence, k);
  write_block_with (&header, entries);
}

START_TEST (test_heads_beyond_tail)
{
  /* Block 4 says the block map holds everything before it, but the
   * journal ends at the hole at 3. */
  write_block (1, 1, FULL);
  write_block (2, 1, FULL);
  write_block_with_heads (4, 4, 1, 3);
  ck_assert_int_eq (recover (), VDO_CORRUPT_JOURNAL);
  ck_assert_uint_eq (parse.mapping_count, 0);

  /* The same with no entries at all. */
  memset (journal, 0, SIZE * VDO_BLOCK_SIZE);
  write_block_with_heads (4, 6, 4, 0);
  write_block_with_heads (5, 6, 4, 0);
  config.journal_start = 4;
  ck_assert_int_eq (recover (), VDO_CORRUPT_JOURNAL);

  /* A head above every block: only a corrupt header says so. */
  memset (journal, 0, SIZE * VDO_BLOCK_SIZE);
  write_block_with_heads (4, 9, 9, 5);
  ck_assert_int_eq (recover (), VDO_CORRUPT_JOURNAL);
}
END_TEST

/* Block map and slab journal heads apart: mappings from the block map
 * head, counters and the walk from wherever asked. */
START_TEST (test_heads_apart)
{
  static const unsigned int want[] = { 3, FULL, 4, 12, 0 };

  write_block (2, 2, FULL);
  write_block (3, 2, FULL);
  write_block_with_heads (4, 3, 2, 12);
  config.journal_start = 2;
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.head, 2);
  ck_assert_uint_eq (parse.entry_count, 2 * FULL + 12);
  expect_mappings (want);
}
END_TEST

/* Item 14: entries out of bounds fail recovery; rebuild drops them. */
START_TEST (test_entries_out_of_bounds)
{
  struct recovery_journal_entry entries[FULL];
  struct recovery_block_header header = make_header (1, 1, 10);
  unsigned int k, bad;

  for (bad = 0; bad < 6; bad++) {
    vdo_free_journal_parse (&parse);
    memset (journal, 0, SIZE * VDO_BLOCK_SIZE);
    for (k = 0; k < 10; k++)
      entries[k] = make_entry (1, k);
    switch (bad) {
    case 0:                     /* page beyond the device */
      entries[4].slot_pbn = 10000;
      break;
    case 1:                     /* slot beyond a page */
      entries[4].slot = VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
      break;
    case 2:                     /* a slab's metadata, not data */
      entries[4].mapping.pbn = 1950;
      break;
    case 3:                     /* unmapped, yet naming a block */
      entries[4].unmapping = (struct vdo_data_location) { 1500, 0 };
      break;
    case 4:                     /* a compressed tree page */
      entries[4].operation = VDO_JOURNAL_BLOCK_MAP_REMAPPING;
      entries[4].mapping.state = 5;
      break;
    case 5:                     /* a tree page that replaces one */
      entries[4].operation = VDO_JOURNAL_BLOCK_MAP_REMAPPING;
      entries[4].unmapping = (struct vdo_data_location) { 1500, 1 };
      break;
    }
    write_block_with (&header, entries);
    ck_assert_int_eq (recover (), VDO_CORRUPT_JOURNAL);
    ck_assert_uint_eq (parse.mapping_count, 0);
    ck_assert_int_eq (rebuild (), VDO_SUCCESS);
    ck_assert_uint_eq (parse.mapping_count, 9);
    ck_assert_uint_eq (parse.dropped_entries, 1);
    ck_assert_uint_eq (parse.mappings[4].pbn, entries[5].mapping.pbn);
  }
}
END_TEST

/* Item 15: rebuild takes every valid block from the block map head to
 * the highest, holes and short blocks notwithstanding, and within a
 * block counts invalid sectors toward the header's count. */
START_TEST (test_rebuild_through_holes)
{
  uint8_t *block;

  write_block (1, 1, FULL);     /* before the block map head */
  write_block (2, 2, FULL);
  write_block (3, 2, 30);       /* short block: no end for rebuild */
  block = write_block (4, 2, FULL);
  block[52] = 0;                /* stale: skipped */
  write_block (5, 2, FULL);
  block = write_block (6, 2, FULL);
  set_sector (block, 3, 0x11, -1, -1);
  set_sector (block, 5, -1, -1, 200);
  set_sector (block, 6, 0, 0, 0);
  set_sector (block, 7, 0, 0, 0);
  block = write_block (7, 2, FULL);
  set_sector (block, 1, -1, -1, 4);
  memset (block + 2 * VDO_SECTOR_SIZE, 0, 6 * VDO_SECTOR_SIZE);
  ck_assert_int_eq (rebuild (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.bounds.highest_tail, 7);
  /* Block 6: sectors 1, 2 and 4; sector 3 bad, 5 over capacity. */
  ck_assert_uint_eq (parse.mapping_count, FULL + 30 + FULL + 3 * PER_SECTOR
                     + 4);
  ck_assert_uint_eq (parse.mappings[0].pbn, make_entry (2, 0).mapping.pbn);
  ck_assert_uint_eq (parse.mappings[FULL + 30].pbn,
                     make_entry (5, 0).mapping.pbn);
  /* Block 6's third taken sector is its fourth. */
  ck_assert_uint_eq (parse.mappings[2 * FULL + 30 + 2 * PER_SECTOR].pbn,
                     make_entry (6, 3 * PER_SECTOR).mapping.pbn);
}
END_TEST

/* Rebuild with nothing valid, or a valid block whose sectors are all
 * bad: nothing applied, and no error. */
START_TEST (test_rebuild_nothing)
{
  uint8_t *block;
  unsigned int s;

  ck_assert_int_eq (rebuild (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.mapping_count, 0);
  block = write_block (1, 1, FULL);
  for (s = 1; s < VDO_SECTORS_PER_BLOCK; s++)
    set_sector (block, s, 0x7f, -1, -1);
  ck_assert_int_eq (rebuild (), VDO_SUCCESS);
  ck_assert (parse.bounds.found);
  ck_assert_uint_eq (parse.mapping_count, 0);
}
END_TEST

/* Rebuild uses the format of the highest block and skips others. */
START_TEST (test_rebuild_mixed_formats)
{
  write_block_1 (1, 1, 30);
  write_block (2, 1, 12);
  ck_assert_int_eq (rebuild (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.format, VDO_METADATA_RECOVERY_JOURNAL_2);
  ck_assert_uint_eq (parse.mapping_count, 12);
}
END_TEST

/* Tree page allocations and unmappings in the counters (R5). */
START_TEST (test_counters)
{
  struct recovery_block_header header = make_header (1, 1, 4);
  struct recovery_journal_entry entries[4];

  entries[0] = make_entry (1, 0);                   /* +1 */
  entries[1] = make_entry (1, 1);
  entries[1].operation = VDO_JOURNAL_BLOCK_MAP_REMAPPING;   /* tree page */
  entries[2] = make_entry (1, 2);
  entries[2].mapping = (struct vdo_data_location) { 0, 0 };
  entries[2].unmapping = (struct vdo_data_location) { 1200, 1 };  /* -1 */
  entries[3] = make_entry (1, 3);
  entries[3].mapping = (struct vdo_data_location) { 0, 1 };       /* zero */
  entries[3].unmapping = (struct vdo_data_location) { 1201, 7 };  /* +0 */
  write_block_with (&header, entries);
  ck_assert_int_eq (recover (), VDO_SUCCESS);
  ck_assert_uint_eq (parse.logical_blocks_used, 100 + 1 - 1 + 0);
  ck_assert_uint_eq (parse.block_map_data_blocks, 10 + 1);
}
END_TEST

/* --- Page mappings ------------------------------------------------------ */

static struct vdo_journal_mapping *
mappings_of (const struct vdo_journal_mapping *list, size_t count)
{
  struct vdo_journal_mapping *copy = malloc (count * sizeof *copy);

  ck_assert_ptr_nonnull (copy);
  memcpy (copy, list, count * sizeof *copy);
  return copy;
}

/* Sorted by page and slot; the last change of a slot wins. */
START_TEST (test_page_mappings)
{
  static const struct vdo_journal_mapping list[] = {
    { 3001, 1100, 0, 5, 1 },
    { 3000, 1101, 1, 7, 1 },
    { 3001, 1102, 2, 5, 1 },
    { 3000, 0, 3, 2, 0 },
    { 3001, 1103, 4, 5, 3 },
    { 3000, 1104, 5, 7, 1 },
  };
  struct vdo_page_mappings *set;
  const struct vdo_journal_mapping *slots;
  uint8_t page[VDO_BLOCK_SIZE];
  struct vdo_data_location location;
  size_t count;

  ck_assert_int_eq (vdo_make_page_mappings (mappings_of (list, 6), 6, &set),
                    VDO_SUCCESS);
  ck_assert_uint_eq (vdo_page_mappings_page_count (set), 2);
  ck_assert_uint_eq (vdo_page_mappings_slot_count (set), 3);
  ck_assert_uint_eq (vdo_page_mappings_pbn (set, 0), 3000);
  slots = vdo_page_mappings_slots (set, 0, &count);
  ck_assert_uint_eq (count, 2);
  ck_assert_uint_eq (slots[0].slot, 2);
  ck_assert_uint_eq (slots[1].slot, 7);
  ck_assert_uint_eq (slots[1].pbn, 1104);
  slots = vdo_page_mappings_slots (set, 1, &count);
  ck_assert_uint_eq (count, 1);
  ck_assert_uint_eq (slots[0].pbn, 1103);
  ck_assert_uint_eq (slots[0].state, 3);

  /* The overlay sets those slots only, and only on those pages. */
  vdo_format_block_map_page (page, NONCE, 3001, true);
  vdo_set_block_map_page_entry (page, 6, 1500, 1);
  ck_assert_uint_eq (vdo_overlay_page_mappings (set, 3001, page), 1);
  location = vdo_get_block_map_page_entry (page, 5);
  ck_assert_uint_eq (location.pbn, 1103);
  ck_assert_uint_eq (location.state, 3);
  ck_assert_uint_eq (vdo_get_block_map_page_entry (page, 6).pbn, 1500);
  ck_assert_uint_eq (vdo_overlay_page_mappings (set, 3002, page), 0);
  ck_assert_uint_eq (vdo_overlay_page_mappings (set, 2999, page), 0);
  vdo_free_page_mappings (set);

  ck_assert_int_eq (vdo_make_page_mappings (NULL, 0, &set), VDO_SUCCESS);
  ck_assert_uint_eq (vdo_page_mappings_page_count (set), 0);
  ck_assert_uint_eq (vdo_overlay_page_mappings (set, 3000, page), 0);
  vdo_free_page_mappings (set);
}
END_TEST

Suite *
journal_parser_suite (void)
{
  Suite *s = suite_create ("journal_parser");
  TCase *tc = tcase_create ("recovery");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_empty_journal);
  tcase_add_test (tc, test_scan_rules);
  tcase_add_test (tc, test_no_holes);
  tcase_add_test (tc, test_wrapped);
  tcase_add_test (tc, test_wrapped_full_tail);
  tcase_add_test (tc, test_hole_at_head);
  tcase_add_test (tc, test_stale_recovery_count);
  tcase_add_test (tc, test_old_lap_hole);
  tcase_add_test (tc, test_partial_head_then_hole);
  tcase_add_test (tc, test_bad_sector);
  tcase_add_test (tc, test_short_sector);
  tcase_add_test (tc, test_short_header_count);
  tcase_add_test (tc, test_mixed_formats);
  tcase_add_test (tc, test_format_1);
  tcase_add_test (tc, test_format_1_misplaced);
  tcase_add_test (tc, test_heads_beyond_tail);
  tcase_add_test (tc, test_heads_apart);
  tcase_add_test (tc, test_entries_out_of_bounds);
  tcase_add_test (tc, test_counters);
  suite_add_tcase (s, tc);

  tc = tcase_create ("rebuild");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_rebuild_through_holes);
  tcase_add_test (tc, test_rebuild_nothing);
  tcase_add_test (tc, test_rebuild_mixed_formats);
  suite_add_tcase (s, tc);

  tc = tcase_create ("page_mappings");
  tcase_add_test (tc, test_page_mappings);
  suite_add_tcase (s, tc);
  return s;
}
