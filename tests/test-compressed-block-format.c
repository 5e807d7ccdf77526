/* nbdkit-vdo: compressed blocks: the documented LZ4 vectors, every
 * fragment rejection, and a real block of the written-clean fixture. */
#include <config.h>

#include <string.h>

#include <glib.h>

#include "byte-order.h"
#include "compressed-block-format.h"
#include "status.h"
#include "unit-suites.h"

#define HEADER_SIZE VDO_COMPRESSED_BLOCK_HEADER_SIZE
#define DATA_SIZE VDO_COMPRESSED_BLOCK_DATA_SIZE

/* vdo-format.md 6.3: liblz4 1.9.4's LZ4_compress_default of 4096 'A'. */
static const uint8_t a_fragment[26] = {
  0x1F, 0x41, 0x01, 0x00,
  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
  0xF6, 0x50, 0x41, 0x41, 0x41, 0x41, 0x41,
};

/* ... and of "VDO test block " repeated to 4096 bytes. */
static const uint8_t text_fragment[41] = {
  0xFF, 0x00, 0x56, 0x44, 0x4F, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x62,
  0x6C, 0x6F, 0x63, 0x6B, 0x20, 0x0F, 0x00,
  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
  0xE8, 0x50, 0x6F, 0x63, 0x6B, 0x20, 0x56,
};

/* PBN 679464 of written-clean.img (base64, trailing zero bytes dropped):
 * eight 469-byte fragments, slot k holding LBN 271 - k. */
static const char block_679464[] =
  "AQAAAAAAAADVAdUB1QHVAdUB1QHVAdUBAAAAAAAAAAAAAAAA8B1WRE8gZml4dHVyZSBjb21w"
  "cmVzc2libGUgYmxvY2sgMDAwMDIwMTUgbGluZQ4AHwoxABwfMTEAHR8yMQAdHzMxAB0fNDEA"
  "HR81MQAdHzYxAB0fNzEAHR84MQAdHzkxABwvMTAxAB0P6gEdHzHqAR0fMeoBHR8x6gEdHzHq"
  "AR0fMeoBHR8x6gEdHzHqAR0fMeoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fMuoBHR8y"
  "6gEdHzLqAR0fMuoBHR8y6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0f"
  "M+oBHR8z6gEdHzPqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEd"
  "HzTqAR0fNOoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoB"
  "HR816gEdHzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzbq"
  "AR0fN+oBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fN+oBHR84"
  "6gEdHzjqAR0fOOoBB1AgYmxvY/AdVkRPIGZpeHR1cmUgY29tcHJlc3NpYmxlIGJsb2NrIDAw"
  "MDAyMDE0IGxpbmUOAB8KMQAcHzExAB0fMjEAHR8zMQAdHzQxAB0fNTEAHR82MQAdHzcxAB0f"
  "ODEAHR85MQAcLzEwMQAdD+oBHR8x6gEdHzHqAR0fMeoBHR8x6gEdHzHqAR0fMeoBHR8x6gEd"
  "HzHqAR0fMuoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fMuoB"
  "HR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzTq"
  "AR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNeoBHR81"
  "6gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoBHR826gEdHzbqAR0f"
  "NuoBHR826gEdHzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzfqAR0fN+oBHR836gEd"
  "HzfqAR0fN+oBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fOOoBHR846gEdHzjqAQdQIGJs"
  "b2PwHVZETyBmaXh0dXJlIGNvbXByZXNzaWJsZSBibG9jayAwMDAwMjAxMyBsaW5lDgAfCjEA"
  "HB8xMQAdHzIxAB0fMzEAHR80MQAdHzUxAB0fNjEAHR83MQAdHzgxAB0fOTEAHC8xMDEAHQ/q"
  "AR0fMeoBHR8x6gEdHzHqAR0fMeoBHR8x6gEdHzHqAR0fMeoBHR8x6gEdHzLqAR0fMuoBHR8y"
  "6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fM+oBHR8z6gEdHzPqAR0f"
  "M+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR806gEdHzTqAR0fNOoBHR806gEd"
  "HzTqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoB"
  "HR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzbq"
  "AR0fNuoBHR826gEdHzbqAR0fNuoBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fN+oBHR83"
  "6gEdHzfqAR0fN+oBHR836gEdHzjqAR0fOOoBHR846gEHUCBibG9j8B1WRE8gZml4dHVyZSBj"
  "b21wcmVzc2libGUgYmxvY2sgMDAwMDIwMTIgbGluZQ4AHwoxABwfMTEAHR8yMQAdHzMxAB0f"
  "NDEAHR81MQAdHzYxAB0fNzEAHR84MQAdHzkxABwvMTAxAB0P6gEdHzHqAR0fMeoBHR8x6gEd"
  "HzHqAR0fMeoBHR8x6gEdHzHqAR0fMeoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fMuoB"
  "HR8y6gEdHzLqAR0fMuoBHR8y6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPq"
  "AR0fM+oBHR8z6gEdHzPqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNOoBHR80"
  "6gEdHzTqAR0fNOoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0f"
  "NeoBHR816gEdHzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEd"
  "HzbqAR0fN+oBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fN+oB"
  "HR846gEdHzjqAR0fOOoBB1AgYmxvY/AdVkRPIGZpeHR1cmUgY29tcHJlc3NpYmxlIGJsb2Nr"
  "IDAwMDAyMDExIGxpbmUOAB8KMQAcHzExAB0fMjEAHR8zMQAdHzQxAB0fNTEAHR82MQAdHzcx"
  "AB0fODEAHR85MQAcLzEwMQAdD+oBHR8x6gEdHzHqAR0fMeoBHR8x6gEdHzHqAR0fMeoBHR8x"
  "6gEdHzHqAR0fMuoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0f"
  "MuoBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEd"
  "HzTqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNeoB"
  "HR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoBHR826gEdHzbq"
  "AR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzfqAR0fN+oBHR83"
  "6gEdHzfqAR0fN+oBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fOOoBHR846gEdHzjqAQdQ"
  "IGJsb2PwHVZETyBmaXh0dXJlIGNvbXByZXNzaWJsZSBibG9jayAwMDAwMjAxMCBsaW5lDgAf"
  "CjEAHB8xMQAdHzIxAB0fMzEAHR80MQAdHzUxAB0fNjEAHR83MQAdHzgxAB0fOTEAHC8xMDEA"
  "HQ/qAR0fMeoBHR8x6gEdHzHqAR0fMeoBHR8x6gEdHzHqAR0fMeoBHR8x6gEdHzLqAR0fMuoB"
  "HR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fM+oBHR8z6gEdHzPq"
  "AR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR806gEdHzTqAR0fNOoBHR80"
  "6gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzXqAR0fNeoBHR816gEdHzXqAR0f"
  "NeoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEd"
  "HzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fN+oB"
  "HR836gEdHzfqAR0fN+oBHR836gEdHzjqAR0fOOoBHR846gEHUCBibG9j8B1WRE8gZml4dHVy"
  "ZSBjb21wcmVzc2libGUgYmxvY2sgMDAwMDIwMDkgbGluZQ4AHwoxABwfMTEAHR8yMQAdHzMx"
  "AB0fNDEAHR81MQAdHzYxAB0fNzEAHR84MQAdHzkxABwvMTAxAB0P6gEdHzHqAR0fMeoBHR8x"
  "6gEdHzHqAR0fMeoBHR8x6gEdHzHqAR0fMeoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0f"
  "MuoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEd"
  "HzPqAR0fM+oBHR8z6gEdHzPqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNOoB"
  "HR806gEdHzTqAR0fNOoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoBHR816gEdHzXq"
  "AR0fNeoBHR816gEdHzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR82"
  "6gEdHzbqAR0fN+oBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0f"
  "N+oBHR846gEdHzjqAR0fOOoBB1AgYmxvY/AdVkRPIGZpeHR1cmUgY29tcHJlc3NpYmxlIGJs"
  "b2NrIDAwMDAyMDA4IGxpbmUOAB8KMQAcHzExAB0fMjEAHR8zMQAdHzQxAB0fNTEAHR82MQAd"
  "HzcxAB0fODEAHR85MQAcLzEwMQAdD+oBHR8x6gEdHzHqAR0fMeoBHR8x6gEdHzHqAR0fMeoB"
  "HR8x6gEdHzHqAR0fMuoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLqAR0fMuoBHR8y6gEdHzLq"
  "AR0fMuoBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z6gEdHzPqAR0fM+oBHR8z"
  "6gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzTqAR0fNOoBHR806gEdHzTqAR0f"
  "NeoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoBHR816gEdHzXqAR0fNeoBHR826gEd"
  "HzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzbqAR0fNuoBHR826gEdHzfqAR0fN+oB"
  "HR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fN+oBHR836gEdHzfqAR0fOOoBHR846gEdHzjq"
  "AQdQIGJsb2M=";

/* The sha256 of LBN 271 - k, from written-clean.expected.txt. */
static const char *const block_679464_sha256[] = {
  "d386c9174a06512acffc45bb8de6405bbcce551e1f970ebf8f7b9f66914de589",
  "daf94bc8a3c5d2f5d9aaf87b1aa78349f2af31c47992220b7de4b551e12bf66f",
  "e06841ecdb29d483db66ae2d90f9fcd7423a97960fcd6cf0871318134a55d484",
  "7ea9b63cc2eacdc7eccce1afd9cfa9aed591f009f8656f3e310f8b6ce304dff1",
  "3b76670c47b6277e070271b0583c6f97ca1052f6b93fb848d5db5de5ccd0fc23",
  "1cc3c5e07b1683b238c3b1aa38baf1dda1aa6b4290ba0e08212b9d3ef58d3fb8",
  "e55dc613a5949bc04a7af1dc92fd69b827dcd35c023a5d71b1c60d9088ad6375",
  "d555dd5d93789619a817eef4a21ec7b95533c36f2503b69a5890f44ab41e67a1",
};

static void
fill_a (uint8_t data[VDO_BLOCK_SIZE])
{
  memset (data, 'A', VDO_BLOCK_SIZE);
}

static void
fill_text (uint8_t data[VDO_BLOCK_SIZE])
{
  static const char text[] = "VDO test block ";
  size_t i;

  for (i = 0; i < VDO_BLOCK_SIZE; i++)
    data[i] = (uint8_t) text[i % (sizeof text - 1)];
}

/* Data LZ4 cannot shrink (xorshift64). */
static void
fill_random (uint8_t data[VDO_BLOCK_SIZE])
{
  uint64_t x = 0x9E3779B97F4A7C15ull;
  size_t i;

  for (i = 0; i < VDO_BLOCK_SIZE; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    data[i] = (uint8_t) (x >> 24);
  }
}

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

/* The two-fragment block of vdo-format.md 6.3. */
static void
build_two_fragment_block (uint8_t block[VDO_BLOCK_SIZE])
{
  struct vdo_compressed_fragment fragments[] = {
    { a_fragment, sizeof a_fragment },
    { text_fragment, sizeof text_fragment },
  };

  ck_assert_int_eq (vdo_build_compressed_block (block, fragments, 2),
                    VDO_SUCCESS);
}

/* A valid block with the given slot sizes; the data is left zero. */
static void
block_with_sizes (uint8_t block[VDO_BLOCK_SIZE], const uint16_t *sizes,
                  unsigned int count)
{
  unsigned int i;

  memset (block, 0, VDO_BLOCK_SIZE);
  put_le32 (block, 1);
  for (i = 0; i < count; i++)
    put_le16 (block + 8 + 2 * i, sizes[i]);
}

static int
locate (const uint8_t *block, unsigned int slot, size_t *offset, size_t *size)
{
  return vdo_locate_compressed_fragment (block, slot, offset, size);
}

START_TEST (test_compress_vectors)
{
  uint8_t data[VDO_BLOCK_SIZE], fragment[VDO_MAX_COMPRESSED_FRAGMENT_SIZE];

  fill_a (data);
  ck_assert_uint_eq (vdo_compress_block (data, fragment), sizeof a_fragment);
  ck_assert_mem_eq (fragment, a_fragment, sizeof a_fragment);

  fill_text (data);
  ck_assert_uint_eq (vdo_compress_block (data, fragment),
                     sizeof text_fragment);
  ck_assert_mem_eq (fragment, text_fragment, sizeof text_fragment);

  /* Too big to share a block: stored uncompressed. */
  fill_random (data);
  ck_assert_uint_eq (vdo_compress_block (data, fragment), 0);
}
END_TEST

START_TEST (test_decompress_vectors)
{
  uint8_t want[VDO_BLOCK_SIZE], data[VDO_BLOCK_SIZE];

  fill_a (want);
  ck_assert_int_eq (vdo_decompress_fragment (a_fragment, sizeof a_fragment,
                                             data),
                    VDO_SUCCESS);
  ck_assert_mem_eq (data, want, VDO_BLOCK_SIZE);

  fill_text (want);
  ck_assert_int_eq (vdo_decompress_fragment (text_fragment,
                                             sizeof text_fragment, data),
                    VDO_SUCCESS);
  ck_assert_mem_eq (data, want, VDO_BLOCK_SIZE);
}
END_TEST

START_TEST (test_compress_round_trip)
{
  uint8_t data[VDO_BLOCK_SIZE], back[VDO_BLOCK_SIZE];
  uint8_t fragment[VDO_MAX_COMPRESSED_FRAGMENT_SIZE];
  size_t size, i;

  /* Half random, half constant: compressible, but not by much. */
  fill_random (data);
  memset (data + VDO_BLOCK_SIZE / 2, 0x33, VDO_BLOCK_SIZE / 2);
  size = vdo_compress_block (data, fragment);
  ck_assert_uint_gt (size, VDO_BLOCK_SIZE / 2);
  ck_assert_uint_le (size, VDO_MAX_COMPRESSED_FRAGMENT_SIZE);
  ck_assert_int_eq (vdo_decompress_fragment (fragment, size, back),
                    VDO_SUCCESS);
  ck_assert_mem_eq (back, data, VDO_BLOCK_SIZE);

  for (i = 0; i < VDO_BLOCK_SIZE; i++)
    data[i] = (uint8_t) (i / 64);
  size = vdo_compress_block (data, fragment);
  ck_assert_uint_gt (size, 0);
  ck_assert_int_eq (vdo_decompress_fragment (fragment, size, back),
                    VDO_SUCCESS);
  ck_assert_mem_eq (back, data, VDO_BLOCK_SIZE);
}
END_TEST

START_TEST (test_two_fragment_block)
{
  static const uint8_t start[14] = {
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x1A, 0x00, 0x29, 0x00, 0x00, 0x00,
  };
  uint8_t block[VDO_BLOCK_SIZE], want[VDO_BLOCK_SIZE], data[VDO_BLOCK_SIZE];
  struct vdo_compressed_block_header h;
  size_t offset, size, i;

  memset (block, 0xEE, sizeof block);
  build_two_fragment_block (block);
  ck_assert_mem_eq (block, start, sizeof start);
  for (i = 12; i < HEADER_SIZE; i++)
    ck_assert_uint_eq (block[i], 0);
  ck_assert_mem_eq (block + 36, a_fragment, sizeof a_fragment);
  ck_assert_mem_eq (block + 62, text_fragment, sizeof text_fragment);
  for (i = 62 + sizeof text_fragment; i < VDO_BLOCK_SIZE; i++)
    ck_assert_uint_eq (block[i], 0);

  vdo_decode_compressed_block_header (block, &h);
  ck_assert_uint_eq (h.version.major, 1);
  ck_assert_uint_eq (h.version.minor, 0);
  ck_assert_uint_eq (h.sizes[0], 26);
  ck_assert_uint_eq (h.sizes[1], 41);
  for (i = 2; i < VDO_MAX_COMPRESSION_SLOTS; i++)
    ck_assert_uint_eq (h.sizes[i], 0);

  ck_assert_int_eq (locate (block, 0, &offset, &size), VDO_SUCCESS);
  ck_assert_uint_eq (offset, 36);
  ck_assert_uint_eq (size, 26);
  ck_assert_int_eq (locate (block, 1, &offset, &size), VDO_SUCCESS);
  ck_assert_uint_eq (offset, 62);
  ck_assert_uint_eq (size, 41);

  fill_text (want);
  ck_assert_int_eq (vdo_read_compressed_fragment (block, 1, data),
                    VDO_SUCCESS);
  ck_assert_mem_eq (data, want, VDO_BLOCK_SIZE);
  fill_a (want);
  ck_assert_int_eq (vdo_read_compressed_fragment (block, 0, data),
                    VDO_SUCCESS);
  ck_assert_mem_eq (data, want, VDO_BLOCK_SIZE);

  /* Bytes after the last fragment are not the reader's business. */
  memset (block + 62 + sizeof text_fragment, 0x77,
          VDO_BLOCK_SIZE - 62 - sizeof text_fragment);
  ck_assert_int_eq (vdo_read_compressed_fragment (block, 1, data),
                    VDO_SUCCESS);
  fill_text (want);
  ck_assert_mem_eq (data, want, VDO_BLOCK_SIZE);
}
END_TEST

START_TEST (test_header_round_trip)
{
  struct vdo_compressed_block_header h = { .version = { 1, 0 } }, d;
  uint8_t block[VDO_BLOCK_SIZE];
  int i;

  for (i = 0; i < VDO_MAX_COMPRESSION_SLOTS; i++)
    h.sizes[i] = (uint16_t) (0x0101 * (i + 1));
  memset (block, 0xEE, sizeof block);
  vdo_encode_compressed_block_header (block, &h);
  ck_assert_uint_eq (get_le32 (block), 1);
  ck_assert_uint_eq (get_le32 (block + 4), 0);
  ck_assert_uint_eq (get_le16 (block + 8), 0x0101);
  ck_assert_uint_eq (get_le16 (block + 34), 0x0E0E);
  ck_assert_uint_eq (block[HEADER_SIZE], 0xEE);
  vdo_decode_compressed_block_header (block, &d);
  ck_assert_mem_eq (&d, &h, sizeof h);
}
END_TEST

START_TEST (test_build_limits)
{
  struct vdo_compressed_fragment fragments[VDO_MAX_COMPRESSION_SLOTS + 1];
  static uint8_t big[VDO_COMPRESSED_BLOCK_DATA_SIZE];
  uint8_t block[VDO_BLOCK_SIZE], copy[VDO_BLOCK_SIZE];
  size_t offset, size;
  unsigned int i;

  for (i = 0; i <= VDO_MAX_COMPRESSION_SLOTS; i++) {
    fragments[i].data = a_fragment;
    fragments[i].size = sizeof a_fragment;
  }

  /* Fourteen fragments fill every slot, in order. */
  ck_assert_int_eq (vdo_build_compressed_block (block, fragments, 14),
                    VDO_SUCCESS);
  for (i = 0; i < VDO_MAX_COMPRESSION_SLOTS; i++) {
    ck_assert_int_eq (locate (block, i, &offset, &size), VDO_SUCCESS);
    ck_assert_uint_eq (offset, HEADER_SIZE + 26 * i);
    ck_assert_uint_eq (size, 26);
  }

  /* One fragment is readable, though VDO never writes such a block. */
  ck_assert_int_eq (vdo_build_compressed_block (block, fragments, 1),
                    VDO_SUCCESS);
  ck_assert_uint_eq (get_le16 (block + 10), 0);

  /* Refusals leave the block alone. */
  memset (block, 0xEE, sizeof block);
  memcpy (copy, block, sizeof block);
  ck_assert_int_eq (vdo_build_compressed_block (block, fragments, 15),
                    UDS_INVALID_ARGUMENT);
  ck_assert_int_eq (vdo_build_compressed_block (block, fragments, 0),
                    UDS_INVALID_ARGUMENT);
  fragments[1].size = 0;
  ck_assert_int_eq (vdo_build_compressed_block (block, fragments, 2),
                    UDS_INVALID_ARGUMENT);

  /* The largest fragment, then the largest total. */
  fragments[0].data = big;
  fragments[0].size = VDO_MAX_COMPRESSED_FRAGMENT_SIZE + 1;
  fragments[1].size = 1;
  ck_assert_int_eq (vdo_build_compressed_block (block, fragments, 2),
                    UDS_INVALID_ARGUMENT);
  fragments[0].size = VDO_MAX_COMPRESSED_FRAGMENT_SIZE;
  fragments[1].size = 2;
  ck_assert_int_eq (vdo_build_compressed_block (block, fragments, 2),
                    UDS_INVALID_ARGUMENT);
  ck_assert_mem_eq (block, copy, VDO_BLOCK_SIZE);

  fragments[1].size = 1;
  ck_assert_int_eq (vdo_build_compressed_block (block, fragments, 2),
                    VDO_SUCCESS);
  ck_assert_int_eq (locate (block, 1, &offset, &size), VDO_SUCCESS);
  ck_assert_uint_eq (offset, VDO_BLOCK_SIZE - 1);
  ck_assert_uint_eq (size, 1);
  ck_assert_uint_eq (block[VDO_BLOCK_SIZE - 1], 0x1F);
}
END_TEST

/* vdo-format.md 6.2 rule 1. */
START_TEST (test_reject_version)
{
  uint8_t block[VDO_BLOCK_SIZE], data[VDO_BLOCK_SIZE];
  size_t offset, size;

  build_two_fragment_block (block);
  put_le32 (block + 4, 1);
  ck_assert_int_eq (locate (block, 0, &offset, &size), VDO_INVALID_FRAGMENT);
  ck_assert_int_eq (vdo_read_compressed_fragment (block, 1, data),
                    VDO_INVALID_FRAGMENT);
  put_le32 (block + 4, 0);
  put_le32 (block, 2);
  ck_assert_int_eq (locate (block, 0, &offset, &size), VDO_INVALID_FRAGMENT);
  put_le32 (block, 0);
  ck_assert_int_eq (locate (block, 0, &offset, &size), VDO_INVALID_FRAGMENT);
  put_le32 (block, 1);
  ck_assert_int_eq (locate (block, 0, &offset, &size), VDO_SUCCESS);
}
END_TEST

/* Only slots 0..13 exist (mapping states 2..15). */
START_TEST (test_reject_slot)
{
  uint8_t block[VDO_BLOCK_SIZE], data[VDO_BLOCK_SIZE];
  size_t offset, size;

  build_two_fragment_block (block);
  ck_assert_int_eq (locate (block, 13, &offset, &size), VDO_SUCCESS);
  ck_assert_int_eq (locate (block, 14, &offset, &size), VDO_INVALID_FRAGMENT);
  ck_assert_int_eq (vdo_read_compressed_fragment (block, 255, data),
                    VDO_INVALID_FRAGMENT);
}
END_TEST

/* Rule 2: a running sum of the earlier sizes reaching the data size. */
START_TEST (test_reject_partial_sum)
{
  uint8_t block[VDO_BLOCK_SIZE];
  size_t offset, size;

  {
    static const uint16_t sizes[] = { 4060, 26 };
    block_with_sizes (block, sizes, 2);
    /* Slot 0 itself exactly fills the data area: no sum is taken. */
    ck_assert_int_eq (locate (block, 0, &offset, &size), VDO_SUCCESS);
    ck_assert_uint_eq (size, 4060);
    ck_assert_int_eq (locate (block, 1, &offset, &size), VDO_INVALID_FRAGMENT);
  }
  {
    static const uint16_t sizes[] = { 2000, 2060, 0, 5 };
    block_with_sizes (block, sizes, 4);
    ck_assert_int_eq (locate (block, 1, &offset, &size), VDO_SUCCESS);
    /* Rejected at the first sum of 4060, however the rest looks. */
    ck_assert_int_eq (locate (block, 2, &offset, &size), VDO_INVALID_FRAGMENT);
    ck_assert_int_eq (locate (block, 3, &offset, &size), VDO_INVALID_FRAGMENT);
  }
  {
    static const uint16_t sizes[] = { 2000, 2059, 1 };
    block_with_sizes (block, sizes, 3);
    ck_assert_int_eq (locate (block, 2, &offset, &size), VDO_SUCCESS);
    ck_assert_uint_eq (offset, HEADER_SIZE + 4059);
    ck_assert_uint_eq (size, 1);
  }
  {
    /* Sizes after the slot are never looked at. */
    static const uint16_t sizes[] = { 26, 41, 65535, 65535 };
    block_with_sizes (block, sizes, 4);
    ck_assert_int_eq (locate (block, 1, &offset, &size), VDO_SUCCESS);
    ck_assert_uint_eq (offset, 62);
  }
  {
    /* The kernel sums in 16 bits: 100 + 65500 wraps to 64 and passes. */
    static const uint16_t sizes[] = { 100, 65500, 26 };
    block_with_sizes (block, sizes, 3);
    ck_assert_int_eq (locate (block, 1, &offset, &size), VDO_INVALID_FRAGMENT);
    ck_assert_int_eq (locate (block, 2, &offset, &size), VDO_SUCCESS);
    ck_assert_uint_eq (offset, HEADER_SIZE + 64);
    ck_assert_uint_eq (size, 26);
  }
}
END_TEST

/* Rule 3: the fragment must end inside the data area. */
START_TEST (test_reject_fragment_end)
{
  uint8_t block[VDO_BLOCK_SIZE];
  size_t offset, size;

  {
    static const uint16_t sizes[] = { 26, 4035 };
    block_with_sizes (block, sizes, 2);
    ck_assert_int_eq (locate (block, 1, &offset, &size), VDO_INVALID_FRAGMENT);
  }
  {
    static const uint16_t sizes[] = { 26, 4034 };
    block_with_sizes (block, sizes, 2);
    ck_assert_int_eq (locate (block, 1, &offset, &size), VDO_SUCCESS);
    ck_assert_uint_eq (offset + size, VDO_BLOCK_SIZE);
  }
  {
    static const uint16_t sizes[] = { 4061 };
    block_with_sizes (block, sizes, 1);
    ck_assert_int_eq (locate (block, 0, &offset, &size), VDO_INVALID_FRAGMENT);
  }
  {
    static const uint16_t sizes[] = { 65535 };
    block_with_sizes (block, sizes, 1);
    ck_assert_int_eq (locate (block, 0, &offset, &size), VDO_INVALID_FRAGMENT);
  }
}
END_TEST

/* Rule 4: the fragment must expand to exactly one block. */
START_TEST (test_reject_decompressed_size)
{
  uint8_t block[VDO_BLOCK_SIZE], data[VDO_BLOCK_SIZE];
  uint8_t fragment[sizeof a_fragment];
  struct vdo_compressed_fragment one = { fragment, sizeof fragment };

  /* One byte short: match length 4089. */
  memcpy (fragment, a_fragment, sizeof fragment);
  fragment[19] = 0xF5;
  ck_assert_int_eq (vdo_decompress_fragment (fragment, sizeof fragment, data),
                    VDO_INVALID_FRAGMENT);
  ck_assert_int_eq (vdo_build_compressed_block (block, &one, 1), VDO_SUCCESS);
  ck_assert_int_eq (vdo_read_compressed_fragment (block, 0, data),
                    VDO_INVALID_FRAGMENT);

  /* One byte long: does not fit the output block. */
  fragment[19] = 0xF7;
  ck_assert_int_eq (vdo_decompress_fragment (fragment, sizeof fragment, data),
                    VDO_INVALID_FRAGMENT);

  /* Truncated, and empty. */
  ck_assert_int_eq (vdo_decompress_fragment (a_fragment, 20, data),
                    VDO_INVALID_FRAGMENT);
  ck_assert_int_eq (vdo_decompress_fragment (a_fragment, 0, data),
                    VDO_INVALID_FRAGMENT);

  /* An unused slot locates as empty, then fails to decompress. */
  build_two_fragment_block (block);
  ck_assert_int_eq (vdo_read_compressed_fragment (block, 2, data),
                    VDO_INVALID_FRAGMENT);

  /* Garbage where a fragment should be. */
  {
    static const uint16_t sizes[] = { 100 };
    block_with_sizes (block, sizes, 1);
    memset (block + HEADER_SIZE, 0xFF, 100);
    ck_assert_int_eq (vdo_read_compressed_fragment (block, 0, data),
                      VDO_INVALID_FRAGMENT);
  }
}
END_TEST

START_TEST (test_real_block)
{
  uint8_t block[VDO_BLOCK_SIZE], data[VDO_BLOCK_SIZE];
  struct vdo_compressed_block_header h;
  size_t offset, size;
  unsigned int slot;

  load_block (block, block_679464);
  vdo_decode_compressed_block_header (block, &h);
  ck_assert_uint_eq (h.version.major, 1);
  ck_assert_uint_eq (h.version.minor, 0);

  for (slot = 0; slot < 8; slot++) {
    gchar *sha256;

    ck_assert_uint_eq (h.sizes[slot], 469);
    ck_assert_int_eq (locate (block, slot, &offset, &size), VDO_SUCCESS);
    ck_assert_uint_eq (offset, HEADER_SIZE + 469 * slot);
    ck_assert_uint_eq (size, 469);
    ck_assert_int_eq (vdo_read_compressed_fragment (block, slot, data),
                      VDO_SUCCESS);
    sha256 = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data,
                                          VDO_BLOCK_SIZE);
    ck_assert_str_eq (sha256, block_679464_sha256[slot]);
    g_free (sha256);
  }

  /* Slots 8..13 are unused. */
  for (slot = 8; slot < VDO_MAX_COMPRESSION_SLOTS; slot++) {
    ck_assert_uint_eq (h.sizes[slot], 0);
    ck_assert_int_eq (vdo_read_compressed_fragment (block, slot, data),
                      VDO_INVALID_FRAGMENT);
  }
}
END_TEST

Suite *
compressed_block_format_suite (void)
{
  Suite *s = suite_create ("compressed-block-format");
  TCase *lz4 = tcase_create ("lz4");
  TCase *blocks = tcase_create ("blocks");
  TCase *rejects = tcase_create ("rejections");
  TCase *real = tcase_create ("written-clean");

  tcase_add_test (lz4, test_compress_vectors);
  tcase_add_test (lz4, test_decompress_vectors);
  tcase_add_test (lz4, test_compress_round_trip);
  suite_add_tcase (s, lz4);

  tcase_add_test (blocks, test_two_fragment_block);
  tcase_add_test (blocks, test_header_round_trip);
  tcase_add_test (blocks, test_build_limits);
  suite_add_tcase (s, blocks);

  tcase_add_test (rejects, test_reject_version);
  tcase_add_test (rejects, test_reject_slot);
  tcase_add_test (rejects, test_reject_partial_sum);
  tcase_add_test (rejects, test_reject_fragment_end);
  tcase_add_test (rejects, test_reject_decompressed_size);
  suite_add_tcase (s, rejects);

  tcase_add_test (real, test_real_block);
  suite_add_tcase (s, real);
  return s;
}
