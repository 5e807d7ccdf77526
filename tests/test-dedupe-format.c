/* nbdkit-vdo: chunk names and dedupe advice (uds-index.md 1, 2). */
#include <config.h>

#include <string.h>

#include "dedupe-format.h"
#include "test-bytes.h"
#include "unit-suites.h"

static void
assert_bytes_hex (const uint8_t *got, size_t len, const char *hex)
{
  uint8_t want[64];
  size_t n = test_hex_to_bytes (hex, want, sizeof want);

  ck_assert_uint_eq (n, len);
  ck_assert_mem_eq (got, want, len);
}

static void
assert_block_name (const uint8_t *block, const char *hex)
{
  struct vdo_chunk_name name;

  vdo_compute_chunk_name (block, &name);
  assert_bytes_hex (name.bytes, sizeof name.bytes, hex);
}

/* §1.2 test vectors. */

START_TEST (test_vector_all_ones)
{
  static uint8_t block[VDO_BLOCK_SIZE];

  memset (block, 0x01, sizeof block);
  assert_block_name (block, "f467da83815ffa93a1d423e8537f097e");
}
END_TEST

START_TEST (test_vector_mod_251)
{
  static uint8_t block[VDO_BLOCK_SIZE];
  size_t i;

  for (i = 0; i < sizeof block; i++)
    block[i] = (uint8_t) (i % 251);
  assert_block_name (block, "f3d3111e630ff18c8894a24ce01a9e93");
}
END_TEST

START_TEST (test_vector_abc_block)
{
  static uint8_t block[VDO_BLOCK_SIZE];

  memset (block, 0, sizeof block);
  memcpy (block, "abc", 3);
  assert_block_name (block, "d95cb1e8063baa21b7b25f756873dca8");
}
END_TEST

START_TEST (test_vector_zero_block)
{
  static uint8_t block[VDO_BLOCK_SIZE];

  memset (block, 0, sizeof block);
  assert_block_name (block, "81a3ec86657ee7844a63fd811c8008b7");
}
END_TEST

START_TEST (test_vector_abc_len3_seed0)
{
  uint8_t out[16];

  vdo_murmurhash3_128 ("abc", 3, 0, out);
  assert_bytes_hex (out, sizeof out, "6778ad3f3f3f96b4522dca264174a23b");
}
END_TEST

START_TEST (test_empty_seed0)
{
  /* With no data and seed 0 every step keeps h1 = h2 = 0. */
  uint8_t out[16];
  static const uint8_t zero[16];

  vdo_murmurhash3_128 ("", 0, 0, out);
  ck_assert_mem_eq (out, zero, sizeof out);
}
END_TEST

/* The reference algorithm transcribed literally, byte by byte, as a
 * second implementation to compare tail handling against for every
 * length not a multiple of 16. */
static uint64_t
ref_rotl (uint64_t x, int r)
{
  return (x << r) | (x >> (64 - r));
}

static uint64_t
ref_fmix (uint64_t k)
{
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

static void
ref_murmur (const uint8_t *data, int len, uint32_t seed, uint8_t out[16])
{
  const uint64_t c1 = 0x87c37b91114253d5ULL;
  const uint64_t c2 = 0x4cf5ad432745937fULL;
  uint64_t h1 = seed, h2 = seed, k1, k2;
  int nblocks = len / 16, i, j;
  const uint8_t *tail;

  for (i = 0; i < nblocks; i++) {
    k1 = k2 = 0;
    for (j = 7; j >= 0; j--) {
      k1 = k1 << 8 | data[i * 16 + j];
      k2 = k2 << 8 | data[i * 16 + 8 + j];
    }
    k1 *= c1; k1 = ref_rotl (k1, 31); k1 *= c2; h1 ^= k1;
    h1 = ref_rotl (h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
    k2 *= c2; k2 = ref_rotl (k2, 33); k2 *= c1; h2 ^= k2;
    h2 = ref_rotl (h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
  }
  tail = data + nblocks * 16;
  k1 = k2 = 0;
  for (j = (len & 15) - 1; j >= 8; j--)
    k2 ^= (uint64_t) tail[j] << ((j - 8) * 8);
  if ((len & 15) > 8) {
    k2 *= c2; k2 = ref_rotl (k2, 33); k2 *= c1; h2 ^= k2;
  }
  for (j = ((len & 15) > 8 ? 8 : (len & 15)) - 1; j >= 0; j--)
    k1 ^= (uint64_t) tail[j] << (j * 8);
  if ((len & 15) > 0) {
    k1 *= c1; k1 = ref_rotl (k1, 31); k1 *= c2; h1 ^= k1;
  }
  h1 ^= (uint64_t) len; h2 ^= (uint64_t) len;
  h1 += h2; h2 += h1;
  h1 = ref_fmix (h1); h2 = ref_fmix (h2);
  h1 += h2; h2 += h1;
  for (j = 0; j < 8; j++) {
    out[j] = (uint8_t) (h1 >> (j * 8));
    out[8 + j] = (uint8_t) (h2 >> (j * 8));
  }
}

START_TEST (test_tails_match_reference)
{
  uint8_t data[80], got[16], want[16];
  int len;

  for (len = 0; len < (int) sizeof data; len++)
    data[len] = (uint8_t) (len * 37 + 11);
  for (len = 0; len <= (int) sizeof data; len++) {
    vdo_murmurhash3_128 (data, (size_t) len, 0x62ea60be, got);
    ref_murmur (data, len, 0x62ea60be, want);
    ck_assert_msg (memcmp (got, want, 16) == 0, "length %d differs", len);
  }
  /* The reference also reproduces the published vectors. */
  ref_murmur ((const uint8_t *) "abc", 3, 0, want);
  assert_bytes_hex (want, sizeof want, "6778ad3f3f3f96b4522dca264174a23b");
}
END_TEST

START_TEST (test_unaligned_buffer)
{
  static _Alignas (16) uint8_t aligned[VDO_BLOCK_SIZE];
  static _Alignas (16) uint8_t shifted[VDO_BLOCK_SIZE + 16];
  struct vdo_chunk_name want, got;
  uint8_t want_short[16], got_short[16];
  size_t i, offset;

  for (i = 0; i < sizeof aligned; i++)
    aligned[i] = (uint8_t) (i * 131 + 7);
  vdo_compute_chunk_name (aligned, &want);
  vdo_murmurhash3_128 (aligned, 45, 7, want_short);
  for (offset = 1; offset < 16; offset++) {
    memset (shifted, 0xa5, sizeof shifted);
    memcpy (shifted + offset, aligned, sizeof aligned);
    vdo_compute_chunk_name (shifted + offset, &got);
    ck_assert_mem_eq (got.bytes, want.bytes, sizeof want.bytes);
    vdo_murmurhash3_128 (shifted + offset, 45, 7, got_short);
    ck_assert_mem_eq (got_short, want_short, sizeof want_short);
  }
}
END_TEST

START_TEST (test_seed_is_used)
{
  static uint8_t block[VDO_BLOCK_SIZE];
  struct vdo_chunk_name name;
  uint8_t out[16];

  memset (block, 0x01, sizeof block);
  vdo_compute_chunk_name (block, &name);
  vdo_murmurhash3_128 (block, sizeof block, VDO_CHUNK_NAME_SEED, out);
  ck_assert_mem_eq (out, name.bytes, sizeof out);
  vdo_murmurhash3_128 (block, sizeof block, 0, out);
  ck_assert_mem_ne (out, name.bytes, sizeof out);
}
END_TEST

/* §1.3 hash zones: zone = (byte 0 * zones) >> 8. */

static unsigned int
zone_of (uint8_t byte0, unsigned int zones)
{
  struct vdo_chunk_name name;

  /* Other bytes must not matter. */
  memset (&name, 0xff, sizeof name);
  name.bytes[0] = byte0;
  return vdo_hash_zone_of_name (&name, zones);
}

START_TEST (test_zone_selection)
{
  static const struct {
    uint8_t byte0;
    unsigned int zones, want;
  } cases[] = {
    { 0x00, 1, 0 }, { 0x7f, 1, 0 }, { 0xff, 1, 0 },
    { 0x00, 2, 0 }, { 0x7f, 2, 0 }, { 0x80, 2, 1 }, { 0xff, 2, 1 },
    { 0x00, 3, 0 }, { 0x55, 3, 0 }, { 0x56, 3, 1 }, { 0xaa, 3, 1 },
    { 0xab, 3, 2 }, { 0xff, 3, 2 },
    { 0x00, 16, 0 }, { 0x0f, 16, 0 }, { 0x10, 16, 1 }, { 0x7f, 16, 7 },
    { 0xf4, 16, 15 }, { 0xff, 16, 15 },
  };
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
    ck_assert_msg (zone_of (cases[i].byte0, cases[i].zones) == cases[i].want,
                   "byte0 0x%02x with %u zones: got %u, want %u",
                   cases[i].byte0, cases[i].zones,
                   zone_of (cases[i].byte0, cases[i].zones), cases[i].want);
}
END_TEST

START_TEST (test_zone_of_real_names)
{
  static uint8_t block[VDO_BLOCK_SIZE];
  struct vdo_chunk_name name;

  /* Name f467... of the all-0x01 block: byte 0 = 0xf4 = 244. */
  memset (block, 0x01, sizeof block);
  vdo_compute_chunk_name (block, &name);
  ck_assert_uint_eq (vdo_hash_zone_of_name (&name, 1), 0);
  ck_assert_uint_eq (vdo_hash_zone_of_name (&name, 2), 1);
  ck_assert_uint_eq (vdo_hash_zone_of_name (&name, 3), 2);
  ck_assert_uint_eq (vdo_hash_zone_of_name (&name, 16), 15);

  /* Name 81a3... of the zero block: byte 0 = 0x81 = 129. */
  memset (block, 0, sizeof block);
  vdo_compute_chunk_name (block, &name);
  ck_assert_uint_eq (vdo_hash_zone_of_name (&name, 1), 0);
  ck_assert_uint_eq (vdo_hash_zone_of_name (&name, 2), 1);
  ck_assert_uint_eq (vdo_hash_zone_of_name (&name, 3), 1);
  ck_assert_uint_eq (vdo_hash_zone_of_name (&name, 16), 8);
}
END_TEST

START_TEST (test_zone_always_in_range)
{
  unsigned int zones, b;

  for (zones = 1; zones <= 16; zones++)
    for (b = 0; b < 256; b++)
      ck_assert_uint_lt (zone_of ((uint8_t) b, zones), zones);
}
END_TEST

/* §1.3 hooks: BE u16 of bytes 14-15 mod sample rate == 0. */

static bool
hook_of (uint8_t b14, uint8_t b15, uint32_t rate)
{
  struct vdo_chunk_name name;

  memset (&name, 0x5a, sizeof name);
  name.bytes[14] = b14;
  name.bytes[15] = b15;
  return vdo_chunk_name_is_hook (&name, rate);
}

START_TEST (test_hook_rate_32)
{
  ck_assert (hook_of (0x00, 0x00, 32));
  ck_assert (hook_of (0x00, 0x20, 32));
  ck_assert (hook_of (0x01, 0x00, 32));      /* 256 */
  ck_assert (hook_of (0xff, 0xe0, 32));      /* 65504 */
  ck_assert (!hook_of (0x00, 0x01, 32));     /* BE 1 (LE would be 256) */
  ck_assert (!hook_of (0x00, 0x1f, 32));
  ck_assert (!hook_of (0x00, 0x21, 32));
  ck_assert (!hook_of (0xff, 0xff, 32));
  ck_assert (!hook_of (0x20, 0x10, 32));     /* 0x2010 = 8208 */
}
END_TEST

START_TEST (test_hook_rate_0)
{
  unsigned int v;

  for (v = 0; v < 0x10000; v += 0x111)
    ck_assert (!hook_of ((uint8_t) (v >> 8), (uint8_t) v, 0));
  ck_assert (!hook_of (0, 0, 0));
}
END_TEST

START_TEST (test_hook_real_name)
{
  static uint8_t block[VDO_BLOCK_SIZE];
  struct vdo_chunk_name name;

  /* f467...097e: 0x097e = 2430 = 75 * 32 + 30, and 2430 = 2 * 1215. */
  memset (block, 0x01, sizeof block);
  vdo_compute_chunk_name (block, &name);
  ck_assert (!vdo_chunk_name_is_hook (&name, 32));
  ck_assert (vdo_chunk_name_is_hook (&name, 2));
  ck_assert (vdo_chunk_name_is_hook (&name, 1));
}
END_TEST

/* §2.1, §2.2 advice. */

START_TEST (test_advice_example_bytes)
{
  struct vdo_advice advice = { .state = 1, .pbn = 0x0f4243 };
  uint8_t record[VDO_ADVICE_SIZE];
  struct vdo_advice back;

  memset (record, 0xee, sizeof record);
  vdo_encode_advice (&advice, record);
  assert_bytes_hex (record, sizeof record,
                    "0201 4342 0f00 0000 0000 0000 0000 0000");

  ck_assert (vdo_decode_advice (record, &back));
  ck_assert_uint_eq (back.state, 1);
  ck_assert_uint_eq (back.pbn, 0x0f4243);
}
END_TEST

START_TEST (test_advice_round_trip)
{
  static const physical_block_number_t pbns[] = {
    1, 2, 0xff, 0x100, 0x0f4243, 0xffffffffULL, 0x100000000ULL,
    0x0123456789abcdefULL, UINT64_MAX,
  };
  unsigned int state;
  size_t i;

  for (state = 1; state <= 15; state++)
    for (i = 0; i < sizeof pbns / sizeof pbns[0]; i++) {
      struct vdo_advice advice = { .state = (uint8_t) state, .pbn = pbns[i] };
      struct vdo_advice back = { 0, 0 };
      uint8_t record[VDO_ADVICE_SIZE];
      static const uint8_t zero6[6];

      vdo_encode_advice (&advice, record);
      ck_assert_uint_eq (record[0], VDO_ADVICE_VERSION);
      ck_assert_mem_eq (record + 10, zero6, sizeof zero6);
      ck_assert (vdo_decode_advice (record, &back));
      ck_assert_uint_eq (back.state, state);
      ck_assert_uint_eq (back.pbn, pbns[i]);
    }
}
END_TEST

static void
assert_rejected (const char *hex)
{
  uint8_t record[VDO_ADVICE_SIZE];
  struct vdo_advice advice = { .state = 0x77, .pbn = 0x1234 };

  ck_assert_uint_eq (test_hex_to_bytes (hex, record, sizeof record),
                     sizeof record);
  ck_assert_msg (!vdo_decode_advice (record, &advice), "accepted %s", hex);
  /* A rejected record leaves the output alone. */
  ck_assert_uint_eq (advice.state, 0x77);
  ck_assert_uint_eq (advice.pbn, 0x1234);
}

START_TEST (test_advice_rejections)
{
  /* Versions other than 2. */
  assert_rejected ("0001 4342 0f00 0000 0000 0000 0000 0000");
  assert_rejected ("0101 4342 0f00 0000 0000 0000 0000 0000");
  assert_rejected ("0301 4342 0f00 0000 0000 0000 0000 0000");
  assert_rejected ("ff01 4342 0f00 0000 0000 0000 0000 0000");
  /* State 0 (unmapped). */
  assert_rejected ("0200 4342 0f00 0000 0000 0000 0000 0000");
  /* PBN 0 (the zero block), with and without junk after it. */
  assert_rejected ("0201 0000 0000 0000 0000 0000 0000 0000");
  assert_rejected ("0205 0000 0000 0000 0000 ffff ffff ffff");
  /* Everything zero, as an unwritten record. */
  assert_rejected ("0000 0000 0000 0000 0000 0000 0000 0000");
}
END_TEST

START_TEST (test_advice_accepted_as_dm_vdo_does)
{
  uint8_t record[VDO_ADVICE_SIZE];
  struct vdo_advice advice;

  /* Bytes 10-15 are not looked at. */
  test_hex_to_bytes ("0201 4342 0f00 0000 0000 ffff ffff ffff",
                     record, sizeof record);
  ck_assert (vdo_decode_advice (record, &advice));
  ck_assert_uint_eq (advice.state, 1);
  ck_assert_uint_eq (advice.pbn, 0x0f4243);

  /* Compressed states, and (as in dm-vdo) states beyond slot 13. */
  test_hex_to_bytes ("020f 0100 0000 0000 0080 0000 0000 0000",
                     record, sizeof record);
  ck_assert (vdo_decode_advice (record, &advice));
  ck_assert_uint_eq (advice.state, 15);
  ck_assert_uint_eq (advice.pbn, 0x8000000000000001ULL);
  record[1] = 16;
  ck_assert (vdo_decode_advice (record, &advice));
  ck_assert_uint_eq (advice.state, 16);
}
END_TEST

Suite *
dedupe_format_suite (void)
{
  Suite *s = suite_create ("dedupe_format");
  TCase *tc = tcase_create ("names");
  TCase *zones = tcase_create ("zones_and_hooks");
  TCase *advice = tcase_create ("advice");

  tcase_add_test (tc, test_vector_all_ones);
  tcase_add_test (tc, test_vector_mod_251);
  tcase_add_test (tc, test_vector_abc_block);
  tcase_add_test (tc, test_vector_zero_block);
  tcase_add_test (tc, test_vector_abc_len3_seed0);
  tcase_add_test (tc, test_empty_seed0);
  tcase_add_test (tc, test_tails_match_reference);
  tcase_add_test (tc, test_unaligned_buffer);
  tcase_add_test (tc, test_seed_is_used);
  suite_add_tcase (s, tc);

  tcase_add_test (zones, test_zone_selection);
  tcase_add_test (zones, test_zone_of_real_names);
  tcase_add_test (zones, test_zone_always_in_range);
  tcase_add_test (zones, test_hook_rate_32);
  tcase_add_test (zones, test_hook_rate_0);
  tcase_add_test (zones, test_hook_real_name);
  suite_add_tcase (s, zones);

  tcase_add_test (advice, test_advice_example_bytes);
  tcase_add_test (advice, test_advice_round_trip);
  tcase_add_test (advice, test_advice_rejections);
  tcase_add_test (advice, test_advice_accepted_as_dm_vdo_does);
  suite_add_tcase (s, advice);
  return s;
}
