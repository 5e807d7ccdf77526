/* nbdkit-vdo: slab journal block encoding and journal points. */
#include <config.h>

#include <string.h>

#include "byte-order.h"
#include "slab-journal-format.h"
#include "status.h"
#include "test-bytes.h"
#include "unit-suites.h"

#define NONCE 1795625259610131ull       /* the written-* fixtures */
#define DOC_NONCE 1795625252759381ull   /* vdo-journals.md 11 */

/* written-clean, PBN 711734: slab 0's journal block seq 1 (offset 1 of
 * the journal at 711733), 880 entries with block-map increments; the
 * type bitmap is at 3933.  Every byte not listed is zero.  Extracted with
 *   dd if=written-clean.img bs=4096 skip=711734 count=1 | xxd -p */
static const struct test_byte_run sj_block[] = {
  { 0,
    "01000000000000000100000000000000470005000000000013b0bf951c61060002017003"
    "0000800100800200800300802b00802c00802d00802e0080"
    "2f0080300080310080320080330080340080350080040080"
    "0500800600800700800800800900800a00800b00800c0080"
    "0d00800e00800f0080100080110080120080130080140080"
    "1500801600801700801800801900801a00801b00801c0080"
    "1d00801e00801f0080200080210080220080230080240080"
    "2500802600802700802800802900802a0080360080370080"
    "3800803900803a00803b00803c00803d00803e00803f0080"
    "400080410080420080430080440080450080460080470080"
    "6b00806c00806d00804800804900804a00804b00804c0080"
    "4d00804e00804f0080500080510080520080530080540080"
    "5500805600805700805800805900805a00805b00805c0080"
    "5d00805e00805f0080600080610080620080630080640080"
    "6500806600806700806800806900806a00806e00806f0080"
    "700080710080720080730080740080750080760080770080"
    "7800807900807a00807b00807c00807d00807e00807f0080"
    "800080810080820080830080040080050080060080070080"
    "0800800900800a00800b00800c00800d00800e00800f0080"
    "100080110080120080130080140080150080160080170080"
    "1800801900801a00801b00801c00801d00801e00801f0080"
    "200080210080220080230080240080250080260080270080"
    "2800802900802a00807f0080800080810080820080830080"
    "2b00802c00802d00802e00802f0080300080310080320080"
    "3300803400803500803600803700803800803900803a0080"
    "3b00803c00803d00803e0080c40080c40080c40080c40080"
    "c40080c40080c40080c40080c40080c40080c40080c40080"
    "c40080c40080c40080c40080c40080c40080c40080c40080"
    "c40080c40080c40080c40080c40080c40080c40080c40080"
    "c40080c40080c40080c40080c40080c40080c40080c40080"
    "c40080c40080c40080c40080c40080c40080c40080c40080"
    "c40080c40080c40080c40080c40080c40080c40080c40080"
    "c40080c40080c40080c40080c40080c40080c40080c40080"
    "c40080c40080c40080c400800b01800b01800b01800b0180"
    "0b01800b01800b01800b0180130180130180130180130180"
    "1301801301801301801301801b01801b01801b01801b0180"
    "1b01801b01801b01801b0180230180230180230180230180"
    "2301802301802301802301802b01802b01802b01802b0180"
    "2b01802b01802b01802b0180330180330180330180330180"
    "3301803301803301803301803b01803b01803b01803b0180"
    "3b01803b01803b01803b0180430180430180430180430180"
    "4301804301804301804301804b01804b01804b01804b0180"
    "4b01804b01804b01804b0180530180530180530180530180"
    "5301805301805301805301805b01805b01805b01805b0180"
    "5b01805b01805b01805b0180630180630180630180630180"
    "6301806301806301806301806b01806b01806b01806b0180"
    "6b01806b01806b01806b0180730180730180730180730180"
    "7301807301807301807301807b01807b01807b01807b0180"
    "7b01807b01807b01807b0180830180830180830180830180"
    "830180830180830180830180940180950180960180970180"
    "9801809901809a01809b01809c01809d01809e01809f0180"
    "a00180a10180a20180a30180840180850180860180870180"
    "8801808901808a01808b01808c01808d01808e01808f0180"
    "900180910180920180930180ab0180ac0180ad0180ae0180"
    "af0180b00180b10180a40180a50180a60180a70180a80180"
    "a90180aa0180b20180b30180b40180b50180b60180b70180"
    "b80180b90180ba0180bb0180bc0180bd0180be0180bf0180"
    "c00180c10180c20180c30180c40180c50180c60180c70180"
    "c80180c90180ca0180cb0180cc0180cd0180ce0180cf0180"
    "d00180d10180d20180d30180d40180d50180d60180d70180"
    "d80180d90180da0180db0180dc0180dd0180de0180df0180"
    "e00180e10180e20180e30180e40180e50180e60180e70180"
    "e80180e90180ea0180eb0180ec0180ed0180ee0180ef0180"
    "f00180f10180f20180f30180f40180f50180f60180f70180"
    "f80180f90180fa0180fb0180fc0180fd0180fe0180ff0180"
    "000280010280020280030280040280050280060280070280"
    "0802800902800a02800b02800c02800d02800e02800f0280"
    "100280110280120280130280140280150280160280170280"
    "1802801902801a02801b02801c02801d02801e02801f0280"
    "200280210280220280230280240280250280260280270280"
    "2b02802c02802d02802e02802f0280300280310280320280"
    "3302803402803502803602803702803802803902803a0280"
    "3b02803c02803d02803e02803f0280400280410280420280"
    "4302802802802902802a0280440280450280460280470280"
    "4802804902804a02804b02804c02804d02804e02804f0280"
    "500280510280520280530280540280550280560280570280"
    "5802805902805a02805b02800b01800b01800b0180130180"
    "1301801301801301801301801301801301801301800b0180"
    "0b01800b01800b01800b01806c02806d02806e02806f0280"
    "770280770280770280770280770280770280770280770280"
    "ab0280d70100ac0280d80100ad0280d90100ae0280da0100"
    "af0280db0100780280a40100790280a501007a0280a60100"
    "7b0280a701007c0280a801007d0280a901007e0280aa0100"
    "7f0280ab0100800280ac0100b00280dc0100810280ad0100"
    "b10280dd0100b20280de0100820280ae0100830280af0100"
    "840280b00100b30280df0100b40280e00100850280b10100"
    "860280b20100870280b30100880280b40100890280b50100"
    "8a0280b601008b0280b701008c0280b801008d0280b90100"
    "8e0280ba01008f0280bb0100900280bc0100910280bd0100"
    "920280be0100930280bf0100940280c00100950280c10100"
    "960280c20100970280c30100980280c40100990280c50100"
    "9a0280c601009b0280c701009c0280c801009d0280c90100"
    "9e0280ca01009f0280cb0100a00280cc0100a10280cd0100"
    "a20280ce0100a30280cf0100a40280d00100a50280d10100"
    "a60280d20100a70280d30100a80280d40100a90280d50100"
    "aa0280d60100b50280e10100b60280e20100b70280e30100"
    "e40100ec0100f40100fc01000402000c02001402001c0200"
    "e50100ed0100f50100fd01000502000d02001502001d0200"
    "e60100ee0100f60100fe01000602000e02001602001e0200"
    "e70100ef0100f70100ff01000702000f02001702001f0200"
    "e80100f00100f80100000200080200100200180200200200"
    "e90100f10100f90100010200090200110200190200210200"
    "ea0100f20100fa01000202000a02001202001a0200220200"
    "eb0100f30100fb01000302000b02001302001b0200230200"
    "2402002502002602002702002802002902002a02002b0200"
    "2c02002d02002e02002f0200300200310200320200330200"
    "3402003502003602003702003802003902003a02003b0200"
    "3c02003d02003e02003f0200400200410200420200430200"
    "b802800b0100b902800b0100ba02800b0100bb02800b0100"
    "bc02800b0100bd02800b0100be02800b0100bf02800b0100"
    "7f0000800000810000820000830000040000050000060000" },
  { 3933,
    "0f" },
  { 4005,
    "f000000f00f0" },
};

/* vdo-journals.md 11.3: slab 0's first journal block, complete. */
static const struct test_byte_run doc_block[] = {
  { 0,
    "01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00"
    "26 00 01 00 00 00 00 00 55 27 57 95 1c 61 06 00"
    "02 01 14 00 00 00 80 01 00 80 02 00 80 03 00 80"
    "04 00 80 05 00 80 06 00 80 07 00 80 08 00 80 09"
    "00 80 0a 00 80 0b 00 80 0c 00 80 0a 00 00 0b 00"
    "00 0d 00 80 0e 00 80 0f 00 80 10 00 80 11 00 80" },
  { 0xf5d, "0f 80 07" },
};

static void
decode_all (const uint8_t block[VDO_BLOCK_SIZE],
            struct slab_journal_block_header *header,
            struct slab_journal_entry *entries)
{
  unsigned int count = vdo_decode_slab_journal_block (block, header, entries);

  ck_assert_uint_eq (count, header->entry_count);
}

static void
check_round_trip (const uint8_t block[VDO_BLOCK_SIZE],
                  const struct slab_journal_block_header *header,
                  const struct slab_journal_entry *entries)
{
  uint8_t again[VDO_BLOCK_SIZE];

  memset (again, 0xA5, sizeof again);
  ck_assert_int_eq (vdo_encode_slab_journal_block (again, header, entries),
                    VDO_SUCCESS);
  ck_assert_mem_eq (again, block, VDO_BLOCK_SIZE);
}

START_TEST (test_doc_block)
{
  static struct slab_journal_entry entries[VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK];
  struct slab_journal_block_header header;
  uint8_t block[VDO_BLOCK_SIZE];
  unsigned int i;

  TEST_FILL_RUNS (block, doc_block);
  decode_all (block, &header, entries);
  ck_assert_uint_eq (header.head, 1);
  ck_assert_uint_eq (header.sequence_number, 1);
  ck_assert_uint_eq (header.recovery_point.sequence_number, 1);
  ck_assert_uint_eq (header.recovery_point.entry_count, 38);
  ck_assert_uint_eq (header.nonce, DOC_NONCE);
  ck_assert_uint_eq (header.metadata_type, VDO_METADATA_SLAB_JOURNAL);
  ck_assert (header.has_block_map_increments);
  ck_assert_uint_eq (header.entry_count, 20);

  /* sbn 0-3 tree pages, 4-12 data, decrements of 10 and 11, 13-16 tree
   * pages, 17 data. */
  for (i = 0; i < 20; i++) {
    uint32_t sbn = i < 13 ? i : i < 15 ? i - 3 : i - 2;
    bool tree = i < 4 || (i >= 15 && i <= 18);

    ck_assert_uint_eq (entries[i].sbn, sbn);
    ck_assert (entries[i].increment == !(i == 13 || i == 14));
    ck_assert (entries[i].is_block_map == tree);
  }
  /* The recovery point (1, 38) is the increment half of RJ entry 19. */
  {
    struct journal_point rj = { 1, 19 };
    struct journal_point expanded = vdo_expand_journal_point (&rj, true);

    ck_assert (vdo_equal_journal_points (&expanded, &header.recovery_point));
  }
  check_round_trip (block, &header, entries);
}
END_TEST

/* vdo-journals.md 11.5: the header of a block written by replay. */
START_TEST (test_doc_replayed_header)
{
  uint8_t block[VDO_BLOCK_SIZE] = { 0 }, again[VDO_BLOCK_SIZE] = { 0 };
  struct slab_journal_block_header header;
  struct slab_journal_entry entry;

  test_hex_to_bytes ("02 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00"
                     "51 00 02 00 00 00 00 00 55 27 57 95 1c 61 06 00"
                     "02 00 2a 00 0a 00 80 0b 00 80 12 00 80 13 00 80",
                     block, sizeof block);
  vdo_decode_slab_journal_block_header (block, &header);
  ck_assert_uint_eq (header.head, 2);
  ck_assert_uint_eq (header.sequence_number, 2);
  ck_assert_uint_eq (header.recovery_point.sequence_number, 2);
  ck_assert_uint_eq (header.recovery_point.entry_count, 81);
  ck_assert (!header.has_block_map_increments);
  ck_assert_uint_eq (header.entry_count, 42);
  ck_assert_int_eq (vdo_check_slab_journal_block_header (&header, DOC_NONCE, 2),
                    VDO_SLAB_JOURNAL_BLOCK_VALID);
  entry = vdo_decode_slab_journal_entry (block, 0);
  ck_assert_uint_eq (entry.sbn, 10);
  ck_assert (entry.increment);
  ck_assert (!entry.is_block_map);
  entry = vdo_decode_slab_journal_entry (block, 3);
  ck_assert_uint_eq (entry.sbn, 19);

  vdo_encode_slab_journal_block_header (again, &header);
  ck_assert_mem_eq (again, block, VDO_SLAB_JOURNAL_HEADER_SIZE);
}
END_TEST

START_TEST (test_fixture_block)
{
  static struct slab_journal_entry entries[VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK];
  struct slab_journal_block_header header;
  struct journal_point last_rj_entry = { 5, 35 }, expanded;
  uint8_t block[VDO_BLOCK_SIZE];
  unsigned int i, decrements = 0, tree_pages = 0;

  TEST_FILL_RUNS (block, sj_block);
  decode_all (block, &header, entries);
  ck_assert_uint_eq (header.head, 1);
  ck_assert_uint_eq (header.sequence_number, 1);
  ck_assert_uint_eq (header.nonce, NONCE);
  ck_assert_uint_eq (header.metadata_type, VDO_METADATA_SLAB_JOURNAL);
  ck_assert (header.has_block_map_increments);
  ck_assert_uint_eq (header.entry_count, 880);
  ck_assert_int_eq (vdo_validate_slab_journal_block_header (&header, NONCE, 1),
                    VDO_SUCCESS);
  ck_assert (vdo_is_slab_journal_block_of_volume (&header, NONCE));
  /* Seq 1 lives at offset 1 of the 224-block journal: PBN 711734. */
  ck_assert_uint_eq (711733 + vdo_slab_journal_block_offset (1, 224), 711734);

  /* The last entry came from the decrement half of the recovery
   * journal's last entry, seq 5 entry 35 (a discard). */
  ck_assert_uint_eq (header.recovery_point.sequence_number, 5);
  ck_assert_uint_eq (header.recovery_point.entry_count, 71);
  expanded = vdo_expand_journal_point (&last_rj_entry, false);
  ck_assert (vdo_equal_journal_points (&expanded, &header.recovery_point));

  /* The first tree path (sbn 0..3), then data. */
  for (i = 0; i < 4; i++) {
    ck_assert_uint_eq (entries[i].sbn, i);
    ck_assert (entries[i].increment && entries[i].is_block_map);
  }
  ck_assert_uint_eq (entries[4].sbn, 43);
  ck_assert (entries[4].increment && !entries[4].is_block_map);
  ck_assert_uint_eq (entries[15].sbn, 4);

  for (i = 0; i < header.entry_count; i++) {
    if (!entries[i].increment)
      decrements++;
    if (entries[i].is_block_map) {
      tree_pages++;
      ck_assert (entries[i].increment);
      ck_assert (i < 4 || (i >= 580 && i < 584) || (i >= 600 && i < 604)
                 || (i >= 620 && i < 624));
    }
  }
  ck_assert_uint_eq (decrements, 176);
  ck_assert_uint_eq (tree_pages, 16);

  check_round_trip (block, &header, entries);
}
END_TEST

START_TEST (test_constants)
{
  ck_assert_uint_eq (VDO_SLAB_JOURNAL_HEADER_SIZE, 36);
  ck_assert_uint_eq (VDO_SLAB_JOURNAL_PAYLOAD_SIZE, 4060);
  ck_assert_uint_eq (VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK, 1353);
  ck_assert_uint_eq (VDO_SLAB_JOURNAL_FULL_ENTRIES, 1299);
  ck_assert_uint_eq (VDO_SLAB_JOURNAL_ENTRY_TYPES_SIZE, 163);
  ck_assert_uint_eq (VDO_SLAB_JOURNAL_ENTRY_TYPES_OFFSET, 3933);
  ck_assert_uint_eq (vdo_slab_journal_entries_per_block (false), 1353);
  ck_assert_uint_eq (vdo_slab_journal_entries_per_block (true), 1299);

  /* 224 is not a power of two; offset 0 is first used by seq 224. */
  ck_assert_uint_eq (vdo_slab_journal_block_offset (223, 224), 223);
  ck_assert_uint_eq (vdo_slab_journal_block_offset (224, 224), 0);
  ck_assert_uint_eq (vdo_slab_journal_block_offset (450, 224), 2);
}
END_TEST

START_TEST (test_entry_packing)
{
  uint8_t raw[VDO_SLAB_JOURNAL_ENTRY_SIZE];
  struct slab_journal_entry entry;

  /* vdo-journals.md 4.2's examples. */
  vdo_pack_slab_journal_entry (raw, 0, true);
  ck_assert_mem_eq (raw, "\x00\x00\x80", 3);
  vdo_pack_slab_journal_entry (raw, 10, false);
  ck_assert_mem_eq (raw, "\x0a\x00\x00", 3);

  /* All 23 bits. */
  vdo_pack_slab_journal_entry (raw, VDO_SLAB_JOURNAL_MAX_SBN, false);
  ck_assert_mem_eq (raw, "\xff\xff\x7f", 3);
  entry = vdo_unpack_slab_journal_entry (raw);
  ck_assert_uint_eq (entry.sbn, VDO_SLAB_JOURNAL_MAX_SBN);
  ck_assert (!entry.increment);
  vdo_pack_slab_journal_entry (raw, 0x123456, true);
  ck_assert_mem_eq (raw, "\x56\x34\x92", 3);
  entry = vdo_unpack_slab_journal_entry (raw);
  ck_assert_uint_eq (entry.sbn, 0x123456);
  ck_assert (entry.increment);
  ck_assert (!entry.is_block_map);
}
END_TEST

static struct slab_journal_block_header
synthetic_header (bool has_block_map_increments, uint16_t entry_count)
{
  struct slab_journal_block_header header = {
    .head = 7,
    .sequence_number = 300,
    .recovery_point = { 123456, 433 },
    .nonce = NONCE,
    .metadata_type = VDO_METADATA_SLAB_JOURNAL,
    .has_block_map_increments = has_block_map_increments,
    .entry_count = entry_count,
  };
  return header;
}

START_TEST (test_full_blocks)
{
  static struct slab_journal_entry entries[VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK];
  static struct slab_journal_entry decoded[VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK];
  struct slab_journal_block_header header = synthetic_header (false, 1353), d;
  uint8_t block[VDO_BLOCK_SIZE];
  unsigned int i;

  /* A data-only block fills bytes 36..4094; byte 4095 is unused. */
  for (i = 0; i < 1353; i++) {
    entries[i].sbn = (i * 6151u) % (1u << 23);
    entries[i].increment = i % 3 != 0;
    entries[i].is_block_map = false;
  }
  ck_assert_int_eq (vdo_encode_slab_journal_block (block, &header, entries),
                    VDO_SUCCESS);
  ck_assert_uint_eq (block[4095], 0);
  ck_assert_uint_eq (vdo_decode_slab_journal_block (block, &d, decoded), 1353);
  ck_assert_uint_eq (d.sequence_number, 300);
  ck_assert_uint_eq (d.recovery_point.sequence_number, 123456);
  ck_assert_uint_eq (d.recovery_point.entry_count, 433);
  for (i = 0; i < 1353; i++) {
    ck_assert_uint_eq (decoded[i].sbn, entries[i].sbn);
    ck_assert (decoded[i].increment == entries[i].increment);
    ck_assert (!decoded[i].is_block_map);
  }
  check_round_trip (block, &d, decoded);

  /* A full block with block-map increments: 1299 entries then the bitmap. */
  header = synthetic_header (true, 1299);
  for (i = 0; i < 1299; i++) {
    entries[i].is_block_map = i % 5 == 0;
    entries[i].increment = entries[i].is_block_map || i % 2;
  }
  ck_assert_int_eq (vdo_encode_slab_journal_block (block, &header, entries),
                    VDO_SUCCESS);
  ck_assert_uint_eq (block[3933], 0x21);        /* entries 0 and 5 */
  ck_assert_uint_eq (block[3933 + 161], 0x84);  /* entries 1290, 1295 */
  ck_assert_uint_eq (block[3933 + 162], 0);
  ck_assert_uint_eq (vdo_decode_slab_journal_block (block, &d, decoded), 1299);
  for (i = 0; i < 1299; i++) {
    ck_assert_uint_eq (decoded[i].sbn, entries[i].sbn);
    ck_assert (decoded[i].increment == entries[i].increment);
    ck_assert (decoded[i].is_block_map == entries[i].is_block_map);
  }
  check_round_trip (block, &d, decoded);

  /* Bytes past entry 1298 are the bitmap, never a type bit of their own. */
  ck_assert (!vdo_decode_slab_journal_entry (block, 1299).is_block_map);

  /* A header claiming more than fits decodes only what fits. */
  block[34] = 0xFF;
  block[35] = 0xFF;
  ck_assert_uint_eq (vdo_decode_slab_journal_block (block, &d, decoded), 1299);
}
END_TEST

START_TEST (test_encode_rejects)
{
  static struct slab_journal_entry entries[VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK];
  struct slab_journal_block_header header = synthetic_header (false, 1354);
  uint8_t block[VDO_BLOCK_SIZE];

  ck_assert_int_eq (vdo_encode_slab_journal_block (block, &header, entries),
                    UDS_INVALID_ARGUMENT);
  header = synthetic_header (true, 1300);
  ck_assert_int_eq (vdo_encode_slab_journal_block (block, &header, entries),
                    UDS_INVALID_ARGUMENT);

  /* A tree-page entry needs the flag, and is always an increment. */
  header = synthetic_header (false, 3);
  entries[2].is_block_map = true;
  entries[2].increment = true;
  ck_assert_int_eq (vdo_encode_slab_journal_block (block, &header, entries),
                    UDS_INVALID_ARGUMENT);
  header.has_block_map_increments = true;
  ck_assert_int_eq (vdo_encode_slab_journal_block (block, &header, entries),
                    VDO_SUCCESS);
  entries[2].increment = false;
  ck_assert_int_eq (vdo_encode_slab_journal_block (block, &header, entries),
                    UDS_INVALID_ARGUMENT);
}
END_TEST

START_TEST (test_block_validity)
{
  struct slab_journal_block_header good = synthetic_header (true, 1299), bad;

  ck_assert_int_eq (vdo_check_slab_journal_block_header (&good, NONCE, 300),
                    VDO_SLAB_JOURNAL_BLOCK_VALID);

  ck_assert_int_eq (vdo_check_slab_journal_block_header (&good, DOC_NONCE, 300),
                    VDO_SLAB_JOURNAL_BLOCK_BAD_NONCE);
  ck_assert (!vdo_is_slab_journal_block_of_volume (&good, DOC_NONCE));

  bad = good;
  bad.metadata_type = 3;
  ck_assert_int_eq (vdo_check_slab_journal_block_header (&bad, NONCE, 300),
                    VDO_SLAB_JOURNAL_BLOCK_BAD_METADATA_TYPE);
  ck_assert (!vdo_is_slab_journal_block_of_volume (&bad, NONCE));
  bad.metadata_type = 0;
  ck_assert_int_eq (vdo_validate_slab_journal_block_header (&bad, NONCE, 300),
                    VDO_CORRUPT_JOURNAL);

  /* An older lap's block at the same offset. */
  ck_assert_int_eq (vdo_check_slab_journal_block_header (&good, NONCE, 300 + 224),
                    VDO_SLAB_JOURNAL_BLOCK_WRONG_SEQUENCE);
  ck_assert_int_eq (vdo_validate_slab_journal_block_header (&good, NONCE, 76),
                    VDO_CORRUPT_JOURNAL);

  bad = good;
  bad.entry_count = 1300;
  ck_assert_int_eq (vdo_check_slab_journal_block_header (&bad, NONCE, 300),
                    VDO_SLAB_JOURNAL_BLOCK_TOO_MANY_ENTRIES);
  bad.has_block_map_increments = false;
  ck_assert_int_eq (vdo_check_slab_journal_block_header (&bad, NONCE, 300),
                    VDO_SLAB_JOURNAL_BLOCK_VALID);
  bad.entry_count = 1353;
  ck_assert_int_eq (vdo_validate_slab_journal_block_header (&bad, NONCE, 300),
                    VDO_SUCCESS);
  bad.entry_count = 1354;
  ck_assert_int_eq (vdo_validate_slab_journal_block_header (&bad, NONCE, 300),
                    VDO_CORRUPT_JOURNAL);

  ck_assert_str_eq (vdo_slab_journal_block_validity_name
                    (VDO_SLAB_JOURNAL_BLOCK_WRONG_SEQUENCE),
                    "wrong sequence number");
}
END_TEST

START_TEST (test_journal_points)
{
  uint8_t raw[8];
  struct journal_point point = { 2, 81 }, other;

  /* vdo-journals.md 4.3 and 3.2: (2, 81) and (1, 19). */
  vdo_encode_journal_point (raw, &point);
  ck_assert_mem_eq (raw, "\x51\x00\x02\x00\x00\x00\x00\x00", 8);
  memcpy (raw, "\x13\x00\x01\x00\x00\x00\x00\x00", 8);
  other = vdo_decode_journal_point (raw);
  ck_assert_uint_eq (other.sequence_number, 1);
  ck_assert_uint_eq (other.entry_count, 19);
  ck_assert_uint_eq (vdo_pack_journal_point (&other), 0x10013);

  ck_assert (vdo_before_journal_point (&other, &point));
  ck_assert (!vdo_before_journal_point (&point, &other));
  ck_assert (!vdo_before_journal_point (&point, &point));
  other.sequence_number = 2;
  other.entry_count = 80;
  ck_assert (vdo_before_journal_point (&other, &point));
  ck_assert (!vdo_equal_journal_points (&other, &point));
  other.entry_count = 81;
  ck_assert (vdo_equal_journal_points (&other, &point));

  /* Both halves of RJ entry 40 (vdo-journals.md 4.3). */
  other.entry_count = 40;
  point = vdo_expand_journal_point (&other, true);
  ck_assert_uint_eq (point.entry_count, 80);
  point = vdo_expand_journal_point (&other, false);
  ck_assert_uint_eq (point.entry_count, 81);

  /* Only 48 bits of the sequence number survive packing. */
  point.sequence_number = (1ull << 48) + 3;
  point.entry_count = 7;
  other = vdo_unpack_journal_point (vdo_pack_journal_point (&point));
  ck_assert_uint_eq (other.sequence_number, 3);
  ck_assert_uint_eq (other.entry_count, 7);

  /* Points advance through a block and on to the next. */
  point.sequence_number = 9;
  point.entry_count = 1351;
  vdo_advance_journal_point (&point, 1353);
  ck_assert_uint_eq (point.sequence_number, 9);
  ck_assert_uint_eq (point.entry_count, 1352);
  vdo_advance_journal_point (&point, 1353);
  ck_assert_uint_eq (point.sequence_number, 10);
  ck_assert_uint_eq (point.entry_count, 0);

  ck_assert (vdo_is_valid_journal_point (&point));
  point.sequence_number = 0;
  ck_assert (!vdo_is_valid_journal_point (&point));
}
END_TEST

Suite *
slab_journal_format_suite (void)
{
  Suite *s = suite_create ("slab-journal-format");
  TCase *tc = tcase_create ("codec");

  tcase_add_test (tc, test_doc_block);
  tcase_add_test (tc, test_doc_replayed_header);
  tcase_add_test (tc, test_fixture_block);
  tcase_add_test (tc, test_constants);
  tcase_add_test (tc, test_entry_packing);
  tcase_add_test (tc, test_full_blocks);
  tcase_add_test (tc, test_encode_rejects);
  tcase_add_test (tc, test_journal_points);
  suite_add_tcase (s, tc);

  tc = tcase_create ("validity");
  tcase_add_test (tc, test_block_validity);
  suite_add_tcase (s, tc);
  return s;
}
