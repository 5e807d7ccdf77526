/* nbdkit-vdo: block map entries, pages and LBN paths, checked against the
 * documented examples and against real pages of the written-clean
 * fixture. */
#include <config.h>

#include <string.h>

#include <glib.h>

#include "block-map-format.h"
#include "byte-order.h"
#include "status.h"
#include "unit-suites.h"

/* written-clean: nonce, root_origin and the slab depot from its super
 * block. */
#define WC_NONCE 1795625259610131ull
#define WC_ROOT_ORIGIN 679129
#define WC_DEPOT_FIRST_BLOCK 679189
#define WC_SLAB_COUNT 42
#define WC_SLAB_SIZE 32768
#define WC_SLAB_DATA_BLOCKS 32535

#define ENTRIES VDO_BLOCK_MAP_ENTRIES_PER_PAGE

/* Real tree pages copied from written-clean.img, trailing zero bytes
 * dropped (base64).  Tree 0 is the path root 679129 -> 679189 -> 679190
 * -> 679191 -> leaf 679192; 679771 is the height-1 page of tree 31. */
static const char page_679129[] =
  "BAAAAAEAAAATsL+VHGEGANlcCgAAAAAAAAAAAAAAAAABAAAAARVdCg==";
static const char page_679189[] =
  "BAAAAAEAAAATsL+VHGEGABVdCgAAAAAAAAAAAAAAAAABAAAAARZdCg==";
static const char page_679190[] =
  "BAAAAAEAAAATsL+VHGEGABZdCgAAAAAAAAAAAAAAAAABAAAAARddCg==";
static const char page_679191[] =
  "BAAAAAEAAAATsL+VHGEGABddCgAAAAAAAAAAAAAAAAABAAAAARhdCg==";
static const char page_679771[] =
  "BAAAAAEAAAATsL+VHGEGAFtfCgAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAFcXwo=";
static const char page_679192[] =
  "BAAAAAEAAAATsL+VHGEGABhdCgAAAAAAAAAAAAAAAAABAAAAAZRdCgABlV0KAAGWXQoAAZdd"
  "CgABmF0KAAEZXQoAARpdCgABG10KAAEcXQoAAR1dCgABHl0KAAEfXQoAASBdCgABIV0KAAEi"
  "XQoAASNdCgABJF0KAAElXQoAASZdCgABJ10KAAEoXQoAASldCgABKl0KAAErXQoAASxdCgAB"
  "LV0KAAEuXQoAAS9dCgABMF0KAAExXQoAATJdCgABM10KAAE0XQoAATVdCgABNl0KAAE3XQoA"
  "AThdCgABOV0KAAE6XQoAATtdCgABPF0KAAE9XQoAAT5dCgABP10KAAFAXQoAAUFdCgABQl0K"
  "AAFDXQoAAURdCgABRV0KAAFGXQoAAUddCgABSF0KAAFJXQoAAUpdCgABS10KAAFMXQoAAU1d"
  "CgABTl0KAAFPXQoAAVBdCgABUV0KAAFSXQoAAVNdCgABVF0KAAFVXQoAAVZdCgABV10KAAFY"
  "XQoAAVldCgABWl0KAAFbXQoAAVxdCgABXV0KAAFeXQoAAV9dCgABYF0KAAFhXQoAAWJdCgAB"
  "Y10KAAFkXQoAAWVdCgABZl0KAAFnXQoAAWhdCgABaV0KAAFqXQoAAWtdCgABbF0KAAFtXQoA"
  "AW5dCgABb10KAAFwXQoAAXFdCgABcl0KAAFzXQoAAXRdCgABdV0KAAF2XQoAAXddCgABeF0K"
  "AAF5XQoAAXpdCgABe10KAAF8XQoAAX1dCgABfl0KAAF/XQoAAYBdCgABgV0KAAGCXQoAAYNd"
  "CgABhF0KAAGFXQoAAYZdCgABh10KAAGIXQoAAYldCgABil0KAAGLXQoAAYxdCgABjV0KAAGO"
  "XQoAAY9dCgABkF0KAAGRXQoAAZJdCgABk10KAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  "AAAAAAAAAAAAAAAAAAABHF0KAAEdXQoAAR5dCgABH10KAAEgXQoAASFdCgABIl0KAAEjXQoA"
  "ASRdCgABJV0KAAEmXQoAASddCgABKF0KAAEpXQoAASpdCgABK10KAAEsXQoAAS1dCgABLl0K"
  "AAEvXQoAATBdCgABMV0KAAEyXQoAATNdCgABNF0KAAE1XQoAATZdCgABN10KAAE4XQoAATld"
  "CgABOl0KAAE7XQoAATxdCgABPV0KAAE+XQoAAT9dCgABQF0KAAFBXQoAAUJdCgABQ10KAAFE"
  "XQoAAUVdCgABRl0KAAFHXQoAAUhdCgABSV0KAAFKXQoAAUtdCgABTF0KAAFNXQoAAU5dCgAB"
  "T10KAAFQXQoAAVFdCgABUl0KAAFTXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoA"
  "AdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0K"
  "AAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdld"
  "CgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZ"
  "XQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB"
  "2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoAAdldCgAB2V0KAAHZXQoA"
  "AdldCgAB2V0KAAHZXQoAAdldCgABzV8KAAHOXwoAAc9fCgAB0F8KAAHRXwoAAdJfCgAB018K"
  "AAHUXwoACSheCgAIKF4KAAcoXgoABiheCgAFKF4KAAQoXgoAAyheCgACKF4KAAkwXgoACDBe"
  "CgAHMF4KAAYwXgoABTBeCgAEMF4KAAMwXgoAAjBeCgAJOF4KAAg4XgoABzheCgAGOF4KAAU4"
  "XgoABDheCgADOF4KAAI4XgoACUBeCgAIQF4KAAdAXgoABkBeCgAFQF4KAARAXgoAA0BeCgAC"
  "QF4KAAlIXgoACEheCgAHSF4KAAZIXgoABUheCgAESF4KAANIXgoAAkheCgAJUF4KAAhQXgoA"
  "B1BeCgAGUF4KAAVQXgoABFBeCgADUF4KAAJQXgoACVheCgAIWF4KAAdYXgoABlheCgAFWF4K"
  "AARYXgoAA1heCgACWF4KAAlgXgoACGBeCgAHYF4KAAZgXgoABWBeCgAEYF4KAANgXgoAAmBe"
  "CgAJaF4KAAhoXgoAB2heCgAGaF4KAAVoXgoABGheCgADaF4KAAJoXgoACXBeCgAIcF4KAAdw"
  "XgoABnBeCgAFcF4KAARwXgoAA3BeCgACcF4KAAl4XgoACHheCgAHeF4KAAZ4XgoABXheCgAE"
  "eF4KAAN4XgoAAnheCgAJgF4KAAiAXgoAB4BeCgAGgF4KAAWAXgoABIBeCgADgF4KAAKAXgoA"
  "CYheCgAIiF4KAAeIXgoABoheCgAFiF4KAASIXgoAA4heCgACiF4KAAmQXgoACJBeCgAHkF4K"
  "AAaQXgoABZBeCgAEkF4KAAOQXgoAApBeCgAJmF4KAAiYXgoAB5heCgAGmF4KAAWYXgoABJhe"
  "CgADmF4KAAKYXgoAAZleCgABml4KAAGbXgoAAZxeCgABnV4KAAGeXgoAAZ9eCgABoF4KAAGh"
  "XgoAAaJeCgABo14KAAGkXgoAAaVeCgABpl4KAAGnXgoAAaheCgABqV4KAAGqXgoAAateCgAB"
  "rF4KAAGtXgoAAa5eCgABr14KAAGwXgoAAbFeCgABsl4KAAGzXgoAAbReCgABtV4KAAG2XgoA"
  "AbdeCgABuF4KAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAA"
  "AAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAA"
  "AAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEA"
  "AAAAAQAAAAABjV8KAAGOXwoAAY9fCgABkF8KAAGRXwoAAZJfCgABk18KAAGUXwoAAZVfCgAB"
  "ll8KAAGXXwoAAZhfCgABmV8KAAGaXwoAAZtfCgABnF8KAAGdXwoAAZ5fCgABn18KAAGgXwoA"
  "AaFfCgABol8KAAGjXwoAAaRfCgABpV8KAAGmXwoAAadfCgABqF8KAAGpXwoAAapfCgABq18K"
  "AAGsXwoAAa1fCgABrl8KAAGvXwoAAbBfCgABsV8KAAGyXwoAAbNfCgABtF8KAAG1XwoAAbZf"
  "CgABt18KAAG4XwoAAblfCgABul8KAAG7XwoAAbxfCgABvV8KAAG+XwoAAb9fCgABwF8KAAHB"
  "XwoAAcJfCgABw18KAAHEXwoAAcVfCgABxl8KAAHHXwoAAchfCgAByV8KAAHKXwoAActfCgAB"
  "zF8KAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  "AQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAA"
  "AAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAA"
  "AAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAABAAAAAAEAAAAAAQAAAAAB";

struct real_page {
  physical_block_number_t pbn;
  int height;
  const char *base64;
};

static const struct real_page real_pages[] = {
  { 679129, 4, page_679129 },
  { 679189, 3, page_679189 },
  { 679190, 2, page_679190 },
  { 679191, 1, page_679191 },
  { 679192, 0, page_679192 },
  { 679771, 1, page_679771 },
};

/* Leaf 679192 as written-clean.dumpblockmap.txt lists it, in runs: slot
 * first + k maps to pbn + k * pbn_step with state + k * state_step.  The
 * slots not listed (128..135, 512..575 and 608..811) are unmapped. */
struct entry_run {
  unsigned int first;
  unsigned int count;
  physical_block_number_t pbn;
  int pbn_step;
  int state;
  int state_step;
};

static const struct entry_run leaf_679192_runs[] = {
  { 0, 5, 679316, 1, 1, 0 },
  { 5, 123, 679193, 1, 1, 0 },
  { 136, 56, 679196, 1, 1, 0 },
  { 192, 64, 679385, 0, 1, 0 },
  { 256, 8, 679885, 1, 1, 0 },
  { 264, 8, 679464, 0, 9, -1 },
  { 272, 8, 679472, 0, 9, -1 },
  { 280, 8, 679480, 0, 9, -1 },
  { 288, 8, 679488, 0, 9, -1 },
  { 296, 8, 679496, 0, 9, -1 },
  { 304, 8, 679504, 0, 9, -1 },
  { 312, 8, 679512, 0, 9, -1 },
  { 320, 8, 679520, 0, 9, -1 },
  { 328, 8, 679528, 0, 9, -1 },
  { 336, 8, 679536, 0, 9, -1 },
  { 344, 8, 679544, 0, 9, -1 },
  { 352, 8, 679552, 0, 9, -1 },
  { 360, 8, 679560, 0, 9, -1 },
  { 368, 8, 679568, 0, 9, -1 },
  { 376, 8, 679576, 0, 9, -1 },
  { 384, 32, 679577, 1, 1, 0 },
  { 416, 32, 0, 0, 1, 0 },
  { 448, 64, 679821, 1, 1, 0 },
  { 576, 32, 0, 0, 1, 0 },
};

static void
load_block (uint8_t block[VDO_BLOCK_SIZE], const char *base64)
{
  gsize len;
  guchar *bytes = g_base64_decode (base64, &len);

  ck_assert_uint_le (len, VDO_BLOCK_SIZE);
  memset (block, 0, VDO_BLOCK_SIZE);
  memcpy (block, bytes, len);
  g_free (bytes);
}

static const struct real_page *
find_real_page (physical_block_number_t pbn)
{
  size_t i;

  for (i = 0; i < G_N_ELEMENTS (real_pages); i++)
    if (real_pages[i].pbn == pbn)
      return &real_pages[i];
  return NULL;
}

/* written-clean's slab data blocks: each slab starts with its data blocks,
 * followed by reference counts and slab journal. */
static bool
wc_is_data_block (const void *context, physical_block_number_t pbn)
{
  physical_block_number_t end = WC_DEPOT_FIRST_BLOCK
    + (physical_block_number_t) WC_SLAB_COUNT * WC_SLAB_SIZE;

  ck_assert_uint_ne (pbn, 0);
  if (pbn < WC_DEPOT_FIRST_BLOCK || pbn >= end)
    return false;
  return (pbn - WC_DEPOT_FIRST_BLOCK) % WC_SLAB_SIZE < WC_SLAB_DATA_BLOCKS;
}

static struct vdo_data_location
location (physical_block_number_t pbn, unsigned int state)
{
  struct vdo_data_location l = { pbn, (enum vdo_mapping_state) state };
  return l;
}

START_TEST (test_entry_examples)
{
  static const uint8_t compressed[5] = { 0x35, 0x34, 0x12, 0x00, 0x00 };
  static const uint8_t mapped[5] = { 0x01, 0xC4, 0xAE, 0x0A, 0x00 };
  uint8_t entry[VDO_BLOCK_MAP_ENTRY_SIZE];
  struct vdo_data_location l;

  vdo_pack_block_map_entry (entry, 0x300001234ull, 5);
  ck_assert_mem_eq (entry, compressed, 5);
  l = vdo_unpack_block_map_entry (compressed);
  ck_assert_uint_eq (l.pbn, 0x300001234ull);
  ck_assert_uint_eq (l.state, 5);

  vdo_pack_block_map_entry (entry, 700100, VDO_MAPPING_STATE_UNCOMPRESSED);
  ck_assert_mem_eq (entry, mapped, 5);
  l = vdo_unpack_block_map_entry (mapped);
  ck_assert_uint_eq (l.pbn, 700100);
  ck_assert_uint_eq (l.state, VDO_MAPPING_STATE_UNCOMPRESSED);
}
END_TEST

START_TEST (test_entry_limits)
{
  static const uint8_t all_ones[5] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
  static const uint8_t zeros[5] = { 0 };
  uint8_t entry[VDO_BLOCK_MAP_ENTRY_SIZE];
  struct vdo_data_location l;

  vdo_pack_block_map_entry (entry, VDO_MAX_PHYSICAL_BLOCKS - 1, 15);
  ck_assert_mem_eq (entry, all_ones, 5);
  l = vdo_unpack_block_map_entry (entry);
  ck_assert_uint_eq (l.pbn, VDO_MAX_PHYSICAL_BLOCKS - 1);
  ck_assert_uint_eq (l.state, 15);

  vdo_pack_block_map_entry (entry, 0, VDO_MAPPING_STATE_UNMAPPED);
  ck_assert_mem_eq (entry, zeros, 5);

  /* Only 36 bits of PBN fit. */
  vdo_pack_block_map_entry (entry, VDO_MAX_PHYSICAL_BLOCKS + 7, 1);
  l = vdo_unpack_block_map_entry (entry);
  ck_assert_uint_eq (l.pbn, 7);
  ck_assert_uint_eq (l.state, 1);
}
END_TEST

START_TEST (test_mapping_states)
{
  unsigned int state;

  ck_assert (!vdo_is_state_compressed (VDO_MAPPING_STATE_UNMAPPED));
  ck_assert (!vdo_is_state_compressed (VDO_MAPPING_STATE_UNCOMPRESSED));
  for (state = 2; state <= 15; state++) {
    enum vdo_mapping_state s = (enum vdo_mapping_state) state;

    ck_assert (vdo_is_state_compressed (s));
    ck_assert_uint_eq (vdo_get_slot_from_state (s), state - 2);
    ck_assert_uint_eq (vdo_get_state_for_slot (state - 2), state);
  }
  ck_assert (!vdo_is_mapped_location (location (0, 0)));
  ck_assert (vdo_is_mapped_location (location (0, 1)));
  ck_assert (vdo_is_mapped_location (location (5, 9)));
}
END_TEST

START_TEST (test_location_validity)
{
  unsigned int state;

  ck_assert (vdo_is_valid_location (location (0, 0)));
  ck_assert (vdo_is_valid_location (location (0, 1)));
  ck_assert (!vdo_is_valid_location (location (679316, 0)));
  ck_assert (vdo_is_valid_location (location (679316, 1)));
  for (state = 2; state <= 15; state++) {
    ck_assert (!vdo_is_valid_location (location (0, state)));
    ck_assert (vdo_is_valid_location (location (679464, state)));
  }
}
END_TEST

/* Entry checks against written-clean's depot. */
static bool
leaf_ok (physical_block_number_t pbn, unsigned int state)
{
  return vdo_is_valid_leaf_entry (location (pbn, state), wc_is_data_block,
                                  NULL);
}

static bool
interior_ok (physical_block_number_t pbn, unsigned int state)
{
  return vdo_is_valid_interior_entry (location (pbn, state), wc_is_data_block,
                                      NULL);
}

START_TEST (test_leaf_entries)
{
  /* The zero block in both forms, and data blocks in any mapped state. */
  ck_assert (leaf_ok (0, 0));
  ck_assert (leaf_ok (0, 1));
  ck_assert (leaf_ok (679316, 1));
  ck_assert (leaf_ok (679464, 9));

  ck_assert (!leaf_ok (0, 2));
  ck_assert (!leaf_ok (679316, 0));
  /* A root, a reference count block, and a PBN past the depot. */
  ck_assert (!leaf_ok (679129, 1));
  ck_assert (!leaf_ok (WC_DEPOT_FIRST_BLOCK + WC_SLAB_DATA_BLOCKS, 1));
  ck_assert (!leaf_ok (2055445, 3));

  /* Without a predicate only the PBN and state are checked. */
  ck_assert (vdo_is_valid_leaf_entry (location (679129, 1), NULL, NULL));
  ck_assert (!vdo_is_valid_leaf_entry (location (0, 15), NULL, NULL));
}
END_TEST

START_TEST (test_interior_entries)
{
  unsigned int state;

  ck_assert (interior_ok (0, 0));
  ck_assert (interior_ok (679189, 1));

  ck_assert (!interior_ok (0, 1));
  ck_assert (!interior_ok (679189, 0));
  for (state = 2; state <= 15; state++) {
    ck_assert (!interior_ok (679189, state));
    ck_assert (!vdo_is_valid_interior_entry (location (679189, state),
                                             NULL, NULL));
  }
  /* A root is no data block. */
  ck_assert (!interior_ok (679129, 1));
  ck_assert (vdo_is_valid_interior_entry (location (679129, 1), NULL, NULL));
}
END_TEST

START_TEST (test_header_round_trip)
{
  struct vdo_block_map_page_header h = {
    .version = { 4, 1 },
    .nonce = WC_NONCE,
    .pbn = 0x123456789ull,
    .initialized = true,
  }, d;
  uint8_t page[VDO_BLOCK_SIZE];

  memset (page, 0xAA, sizeof page);
  vdo_encode_block_map_page_header (page, &h);
  ck_assert_uint_eq (get_le32 (page), 4);
  ck_assert_uint_eq (get_le32 (page + 4), 1);
  ck_assert_uint_eq (get_le64 (page + 8), WC_NONCE);
  ck_assert_uint_eq (get_le64 (page + 16), 0x123456789ull);
  ck_assert_uint_eq (get_le64 (page + 24), 0);
  ck_assert_uint_eq (page[32], 1);
  ck_assert_uint_eq (page[33], 0);
  ck_assert_uint_eq (get_le16 (page + 34), 0);
  /* The entries are not the header's business. */
  ck_assert_uint_eq (page[36], 0xAA);

  vdo_decode_block_map_page_header (page, &d);
  ck_assert_uint_eq (d.version.major, 4);
  ck_assert_uint_eq (d.version.minor, 1);
  ck_assert_uint_eq (d.nonce, WC_NONCE);
  ck_assert_uint_eq (d.pbn, 0x123456789ull);
  ck_assert (d.initialized);
}
END_TEST

START_TEST (test_format_page)
{
  struct vdo_block_map_page_header h;
  uint8_t page[VDO_BLOCK_SIZE];
  unsigned int slot;

  memset (page, 0xAA, sizeof page);
  vdo_format_block_map_page (page, WC_NONCE, 700003, false);
  vdo_decode_block_map_page_header (page, &h);
  ck_assert_uint_eq (h.version.major, 4);
  ck_assert_uint_eq (h.version.minor, 1);
  ck_assert_uint_eq (h.nonce, WC_NONCE);
  ck_assert_uint_eq (h.pbn, 700003);
  ck_assert (!h.initialized);
  for (slot = 0; slot < ENTRIES; slot++) {
    struct vdo_data_location l = vdo_get_block_map_page_entry (page, slot);
    ck_assert_uint_eq (l.pbn, 0);
    ck_assert_uint_eq (l.state, VDO_MAPPING_STATE_UNMAPPED);
  }

  /* The first write of a new page reads back as empty. */
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_INVALID);
  vdo_set_block_map_page_initialized (page, true);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_VALID);

  vdo_format_block_map_page (page, WC_NONCE, 700003, true);
  ck_assert_uint_eq (page[32], 1);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_VALID);
}
END_TEST

START_TEST (test_page_entries)
{
  uint8_t page[VDO_BLOCK_SIZE];
  struct vdo_data_location l;

  /* The hand-made leaf of vdo-format.md B.3, slots 300..303. */
  vdo_format_block_map_page (page, WC_NONCE, 700003, true);
  vdo_set_block_map_page_entry (page, 300, 0x300001234ull, 5);
  vdo_set_block_map_page_entry (page, 301, 700100, 1);
  vdo_set_block_map_page_entry (page, 302, 0, 1);
  vdo_set_block_map_page_entry (page, 811, 679464, 15);
  ck_assert_uint_eq (page[36 + 5 * 300], 0x35);
  ck_assert_uint_eq (get_le32 (page + 36 + 5 * 301 + 1), 700100);
  ck_assert_uint_eq (page[36 + 5 * 302], 0x01);
  ck_assert_uint_eq (page[VDO_BLOCK_SIZE - 5], 0x0F);

  l = vdo_get_block_map_page_entry (page, 300);
  ck_assert_uint_eq (l.pbn, 0x300001234ull);
  ck_assert_uint_eq (vdo_get_slot_from_state (l.state), 3);
  l = vdo_get_block_map_page_entry (page, 302);
  ck_assert_uint_eq (l.pbn, 0);
  ck_assert_uint_eq (l.state, VDO_MAPPING_STATE_UNCOMPRESSED);
  l = vdo_get_block_map_page_entry (page, 303);
  ck_assert (!vdo_is_mapped_location (l));
  l = vdo_get_block_map_page_entry (page, 811);
  ck_assert_uint_eq (l.pbn, 679464);
  ck_assert_uint_eq (l.state, 15);
}
END_TEST

START_TEST (test_page_classification)
{
  uint8_t good[VDO_BLOCK_SIZE], page[VDO_BLOCK_SIZE];

  vdo_format_block_map_page (good, WC_NONCE, 700003, true);
  vdo_set_block_map_page_entry (good, 300, 700100, 1);
  ck_assert_int_eq (vdo_validate_block_map_page (good, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_VALID);

  /* Wrong versions, including the old 4.0. */
  memcpy (page, good, sizeof page);
  put_le32 (page + 4, 0);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_INVALID);
  put_le32 (page + 4, 2);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_INVALID);
  memcpy (page, good, sizeof page);
  put_le32 (page, 5);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_INVALID);

  /* Not initialized. */
  memcpy (page, good, sizeof page);
  page[32] = 0;
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_INVALID);

  /* Another volume's page. */
  ck_assert_int_eq (vdo_validate_block_map_page (good, WC_NONCE + 1, 700003),
                    VDO_BLOCK_MAP_PAGE_INVALID);

  /* A good page in the wrong place, as vdo-format.md B.3's "Expected page
   * 700003 but got page 123". */
  memcpy (page, good, sizeof page);
  put_le64 (page + 16, 123);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_BAD);
  ck_assert_int_eq (vdo_validate_block_map_page (good, WC_NONCE, 123),
                    VDO_BLOCK_MAP_PAGE_BAD);

  /* INVALID wins over BAD. */
  page[32] = 0;
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_INVALID);
  ck_assert_int_eq (vdo_validate_block_map_page (good, WC_NONCE + 1, 123),
                    VDO_BLOCK_MAP_PAGE_INVALID);

  /* The unused bytes are ignored. */
  memcpy (page, good, sizeof page);
  memset (page + 24, 0x5A, 8);
  memset (page + 33, 0xA5, 3);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, 700003),
                    VDO_BLOCK_MAP_PAGE_VALID);

  /* A freshly zeroed root is an empty tree. */
  memset (page, 0, sizeof page);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE,
                                                 WC_ROOT_ORIGIN),
                    VDO_BLOCK_MAP_PAGE_INVALID);
}
END_TEST

START_TEST (test_path_worked_example)
{
  struct vdo_block_map_path path;

  ck_assert_int_eq (vdo_compute_block_map_path (96646901224ull,
                                                VDO_BLOCK_MAP_ROOT_COUNT,
                                                &path),
                    VDO_SUCCESS);
  ck_assert_uint_eq (path.page_number, 119023277);
  ck_assert_uint_eq (path.root_index, 17);
  ck_assert_uint_eq (path.leaf_index, 1983721);
  ck_assert_uint_eq (path.slots[0], 300);
  ck_assert_uint_eq (path.slots[1], 5);
  ck_assert_uint_eq (path.slots[2], 7);
  ck_assert_uint_eq (path.slots[3], 3);
  ck_assert_uint_eq (path.slots[4], 0);
  /* Its root on the 4P volume. */
  ck_assert_uint_eq (679129 + path.root_index, 679146);
}
END_TEST

START_TEST (test_path_limits)
{
  struct vdo_block_map_path path;

  ck_assert_int_eq (vdo_compute_block_map_path (0, 60, &path), VDO_SUCCESS);
  ck_assert_uint_eq (path.page_number, 0);
  ck_assert_uint_eq (path.root_index, 0);
  ck_assert_uint_eq (path.slots[0], 0);

  /* 812 LBNs share a leaf; the next leaf goes to the next tree. */
  ck_assert_int_eq (vdo_compute_block_map_path (811, 60, &path), VDO_SUCCESS);
  ck_assert_uint_eq (path.root_index, 0);
  ck_assert_uint_eq (path.slots[0], 811);
  ck_assert_int_eq (vdo_compute_block_map_path (812, 60, &path), VDO_SUCCESS);
  ck_assert_uint_eq (path.root_index, 1);
  ck_assert_uint_eq (path.leaf_index, 0);
  ck_assert_uint_eq (path.slots[0], 0);
  ck_assert_int_eq (vdo_compute_block_map_path (812 * 60, 60, &path),
                    VDO_SUCCESS);
  ck_assert_uint_eq (path.root_index, 0);
  ck_assert_uint_eq (path.leaf_index, 1);
  ck_assert_uint_eq (path.slots[1], 1);

  /* The last LBN the format allows only ever uses root entry 0. */
  ck_assert_int_eq (vdo_compute_block_map_path (VDO_MAX_LOGICAL_BLOCKS - 1, 60,
                                                &path),
                    VDO_SUCCESS);
  ck_assert_uint_eq (path.slots[4], 0);
  ck_assert_uint_le (path.slots[3], 34);
  ck_assert_uint_eq (path.leaf_index * 60 + path.root_index, path.page_number);

  ck_assert_int_eq (vdo_compute_block_map_path (VDO_MAX_LOGICAL_BLOCKS, 60,
                                                &path),
                    VDO_OUT_OF_RANGE);
  ck_assert_int_eq (vdo_compute_block_map_path (5, 0, &path),
                    UDS_INVALID_ARGUMENT);
}
END_TEST

START_TEST (test_path_written_clean)
{
  struct vdo_block_map_path path;

  /* "PBN 679160 slot 0 height 4 ... 679771 slot 20 height 1". */
  ck_assert_int_eq (vdo_compute_block_map_path (1000000, 60, &path),
                    VDO_SUCCESS);
  ck_assert_uint_eq (WC_ROOT_ORIGIN + path.root_index, 679160);
  ck_assert_uint_eq (path.slots[4], 0);
  ck_assert_uint_eq (path.slots[3], 0);
  ck_assert_uint_eq (path.slots[2], 0);
  ck_assert_uint_eq (path.slots[1], 20);
  ck_assert_uint_eq (path.slots[0], 428);

  /* The last logical block: "PBN 679165 ... 679791 slot 107 height 1". */
  ck_assert_int_eq (vdo_compute_block_map_path (5242879, 60, &path),
                    VDO_SUCCESS);
  ck_assert_uint_eq (WC_ROOT_ORIGIN + path.root_index, 679165);
  ck_assert_uint_eq (path.slots[1], 107);
  ck_assert_uint_eq (path.slots[0], 607);
}
END_TEST

/* Check that a real page is valid where it was read and nowhere else. */
static void
check_real_page_validity (const uint8_t *page, physical_block_number_t pbn)
{
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, pbn),
                    VDO_BLOCK_MAP_PAGE_VALID);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, pbn + 1),
                    VDO_BLOCK_MAP_PAGE_BAD);
  ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE ^ 1, pbn),
                    VDO_BLOCK_MAP_PAGE_INVALID);
}

START_TEST (test_real_root_page)
{
  uint8_t page[VDO_BLOCK_SIZE];
  struct vdo_block_map_page_header h;
  unsigned int slot;

  load_block (page, page_679129);
  vdo_decode_block_map_page_header (page, &h);
  ck_assert_uint_eq (h.pbn, WC_ROOT_ORIGIN);
  ck_assert (h.initialized);
  check_real_page_validity (page, WC_ROOT_ORIGIN);

  /* "PBN 679129 slot 0 height 4 -> PBN 679189 (compression state 1)". */
  for (slot = 0; slot < ENTRIES; slot++) {
    struct vdo_data_location l = vdo_get_block_map_page_entry (page, slot);
    ck_assert (vdo_is_valid_interior_entry (l, wc_is_data_block, NULL));
    ck_assert_uint_eq (l.pbn, slot == 0 ? 679189 : 0);
    ck_assert_uint_eq (l.state, slot == 0 ? 1 : 0);
  }
}
END_TEST

START_TEST (test_real_interior_page)
{
  uint8_t page[VDO_BLOCK_SIZE];
  unsigned int slot;

  load_block (page, page_679771);
  check_real_page_validity (page, 679771);

  /* "PBN 679771 slot 20 height 1 -> PBN 679772 (compression state 1)". */
  for (slot = 0; slot < ENTRIES; slot++) {
    struct vdo_data_location l = vdo_get_block_map_page_entry (page, slot);
    ck_assert (vdo_is_valid_interior_entry (l, wc_is_data_block, NULL));
    ck_assert_uint_eq (l.pbn, slot == 20 ? 679772 : 0);
    ck_assert_uint_eq (l.state, slot == 20 ? 1 : 0);
  }
}
END_TEST

/* The expected mapping of a slot of leaf 679192. */
static struct vdo_data_location
expected_leaf_entry (unsigned int slot)
{
  size_t i;

  for (i = 0; i < G_N_ELEMENTS (leaf_679192_runs); i++) {
    const struct entry_run *run = &leaf_679192_runs[i];

    if (slot >= run->first && slot < run->first + run->count) {
      int k = (int) (slot - run->first);
      physical_block_number_t pbn = run->pbn + (uint64_t) (run->pbn_step * k);

      return location (pbn, (unsigned int) (run->state + run->state_step * k));
    }
  }
  return location (0, 0);
}

START_TEST (test_real_leaf_page)
{
  uint8_t page[VDO_BLOCK_SIZE];
  unsigned int slot, mapped = 0;

  load_block (page, page_679192);
  check_real_page_validity (page, 679192);

  for (slot = 0; slot < ENTRIES; slot++) {
    struct vdo_data_location want = expected_leaf_entry (slot);
    struct vdo_data_location l = vdo_get_block_map_page_entry (page, slot);

    ck_assert_msg (l.pbn == want.pbn && l.state == want.state,
                   "slot %u: (%" G_GUINT64_FORMAT ", %u), expected (%"
                   G_GUINT64_FORMAT ", %u)", slot, l.pbn, l.state,
                   want.pbn, want.state);
    ck_assert (vdo_is_valid_leaf_entry (l, wc_is_data_block, NULL));
    if (vdo_is_mapped_location (l))
      mapped++;
  }
  /* The dump lists 536 entries for this page. */
  ck_assert_uint_eq (mapped, 536);
}
END_TEST

/* Walk written-clean's tree 0 from its root to the leaf entry of lbn, the
 * way a reader does. */
static struct vdo_data_location
walk_tree (logical_block_number_t lbn)
{
  struct vdo_block_map_path path;
  physical_block_number_t pbn;
  uint8_t page[VDO_BLOCK_SIZE];
  struct vdo_data_location l;
  int height;

  ck_assert_int_eq (vdo_compute_block_map_path (lbn, 60, &path), VDO_SUCCESS);
  pbn = WC_ROOT_ORIGIN + path.root_index;
  for (height = VDO_BLOCK_MAP_ROOT_HEIGHT; ; height--) {
    const struct real_page *real = find_real_page (pbn);

    ck_assert_ptr_nonnull (real);
    ck_assert_int_eq (real->height, height);
    load_block (page, real->base64);
    ck_assert_int_eq (vdo_validate_block_map_page (page, WC_NONCE, pbn),
                      VDO_BLOCK_MAP_PAGE_VALID);
    l = vdo_get_block_map_page_entry (page, path.slots[height]);
    if (height == 0)
      return l;
    ck_assert (vdo_is_valid_interior_entry (l, wc_is_data_block, NULL));
    ck_assert (vdo_is_mapped_location (l));
    pbn = l.pbn;
  }
}

START_TEST (test_real_tree_walk)
{
  /* From written-clean.expected.txt. */
  static const struct {
    logical_block_number_t lbn;
    physical_block_number_t pbn;
    unsigned int state;
  } cases[] = {
    { 0, 679316, 1 },           /* mapped 679316 */
    { 5, 679193, 1 },           /* mapped 679193 */
    { 128, 0, 0 },              /* unmapped 0 */
    { 192, 679385, 1 },         /* mapped 679385 */
    { 264, 679464, 9 },         /* compressed 679464 slot 7 */
    { 271, 679464, 2 },         /* compressed 679464 slot 0 */
    { 416, 0, 1 },              /* mapped 0 */
    { 811, 0, 0 },              /* never written */
  };
  size_t i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    struct vdo_data_location l = walk_tree (cases[i].lbn);

    ck_assert_uint_eq (l.pbn, cases[i].pbn);
    ck_assert_uint_eq (l.state, cases[i].state);
  }
}
END_TEST

Suite *
block_map_format_suite (void)
{
  Suite *s = suite_create ("block-map-format");
  TCase *entries = tcase_create ("entries");
  TCase *pages = tcase_create ("pages");
  TCase *paths = tcase_create ("paths");
  TCase *real = tcase_create ("written-clean");

  tcase_add_test (entries, test_entry_examples);
  tcase_add_test (entries, test_entry_limits);
  tcase_add_test (entries, test_mapping_states);
  tcase_add_test (entries, test_location_validity);
  tcase_add_test (entries, test_leaf_entries);
  tcase_add_test (entries, test_interior_entries);
  suite_add_tcase (s, entries);

  tcase_add_test (pages, test_header_round_trip);
  tcase_add_test (pages, test_format_page);
  tcase_add_test (pages, test_page_entries);
  tcase_add_test (pages, test_page_classification);
  suite_add_tcase (s, pages);

  tcase_add_test (paths, test_path_worked_example);
  tcase_add_test (paths, test_path_limits);
  tcase_add_test (paths, test_path_written_clean);
  suite_add_tcase (s, paths);

  tcase_add_test (real, test_real_root_page);
  tcase_add_test (real, test_real_interior_page);
  tcase_add_test (real, test_real_leaf_page);
  tcase_add_test (real, test_real_tree_walk);
  suite_add_tcase (s, real);
  return s;
}
