/* nbdkit-vdo: the dedupe index's open chapter. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "index-format.h"
#include "open-chapter.h"
#include "status.h"
#include "unit-suites.h"

static void
make_name (struct vdo_chunk_name *name, uint32_t n)
{
  uint32_t i;

  /* Spread like hashes, but reproducible from N. */
  for (i = 0; i < VDO_CHUNK_NAME_SIZE; i++)
    name->bytes[i] = (uint8_t) ((n * 2654435761u) >> ((i % 4) * 8))
                     ^ (uint8_t) (i * 17 + n);
}

static void
make_advice (uint8_t advice[VDO_ADVICE_SIZE], uint32_t n)
{
  memset (advice, 0, VDO_ADVICE_SIZE);
  advice[0] = 2;
  advice[1] = 1;
  memcpy (advice + 2, &n, sizeof n);
}

START_TEST (test_put_and_find)
{
  struct vdo_open_chapter *chapter;
  struct vdo_chunk_name name;
  uint8_t advice[VDO_ADVICE_SIZE], found[VDO_ADVICE_SIZE];
  uint32_t i;

  ck_assert_int_eq (vdo_make_open_chapter (1000, &chapter), VDO_SUCCESS);
  for (i = 0; i < 1000; i++) {
    make_name (&name, i);
    make_advice (advice, i);
    ck_assert_int_eq (vdo_open_chapter_put (chapter, &name, advice, false),
                      VDO_OPEN_CHAPTER_ADDED);
  }
  ck_assert (vdo_open_chapter_is_full (chapter));
  ck_assert_uint_eq (vdo_open_chapter_size (chapter), 1000);
  for (i = 0; i < 1000; i++) {
    make_name (&name, i);
    make_advice (advice, i);
    ck_assert (vdo_open_chapter_find (chapter, &name, found));
    ck_assert_mem_eq (found, advice, VDO_ADVICE_SIZE);
    ck_assert_mem_eq (vdo_open_chapter_record (chapter, i)->name.bytes,
                      name.bytes, VDO_CHUNK_NAME_SIZE);
  }
  make_name (&name, 5000);
  ck_assert (!vdo_open_chapter_find (chapter, &name, found));
  ck_assert_int_eq (vdo_open_chapter_put (chapter, &name, advice, false),
                    VDO_OPEN_CHAPTER_FULL);
  ck_assert (!vdo_open_chapter_find (chapter, &name, found));

  vdo_reset_open_chapter (chapter);
  ck_assert_uint_eq (vdo_open_chapter_size (chapter), 0);
  make_name (&name, 3);
  ck_assert (!vdo_open_chapter_find (chapter, &name, found));
  vdo_free_open_chapter (chapter);
}
END_TEST

START_TEST (test_overwrite_or_keep)
{
  struct vdo_open_chapter *chapter;
  struct vdo_chunk_name name;
  uint8_t first[VDO_ADVICE_SIZE], second[VDO_ADVICE_SIZE];
  uint8_t found[VDO_ADVICE_SIZE];

  ck_assert_int_eq (vdo_make_open_chapter (4, &chapter), VDO_SUCCESS);
  make_name (&name, 42);
  make_advice (first, 1);
  make_advice (second, 2);
  ck_assert_int_eq (vdo_open_chapter_put (chapter, &name, first, false),
                    VDO_OPEN_CHAPTER_ADDED);
  ck_assert_int_eq (vdo_open_chapter_put (chapter, &name, second, false),
                    VDO_OPEN_CHAPTER_PRESENT);
  ck_assert (vdo_open_chapter_find (chapter, &name, found));
  ck_assert_mem_eq (found, first, VDO_ADVICE_SIZE);
  ck_assert_int_eq (vdo_open_chapter_put (chapter, &name, second, true),
                    VDO_OPEN_CHAPTER_PRESENT);
  ck_assert (vdo_open_chapter_find (chapter, &name, found));
  ck_assert_mem_eq (found, second, VDO_ADVICE_SIZE);
  ck_assert_uint_eq (vdo_open_chapter_size (chapter), 1);
  vdo_free_open_chapter (chapter);
}
END_TEST

START_TEST (test_close_packs_sorted_blocks)
{
  enum { CAPACITY = 300 };
  const uint32_t block_count = (CAPACITY + VDO_INDEX_RECORDS_PER_BLOCK - 1)
                               / VDO_INDEX_RECORDS_PER_BLOCK;
  struct vdo_open_chapter *chapter;
  struct vdo_chunk_name name;
  uint8_t *blocks;
  uint32_t prefixes[3];
  uint8_t advice[VDO_ADVICE_SIZE], found[VDO_ADVICE_SIZE];
  uint32_t i, b, total = 0;

  ck_assert_uint_eq (block_count, 3);
  blocks = malloc ((size_t) block_count * VDO_BLOCK_SIZE);
  ck_assert_ptr_nonnull (blocks);
  ck_assert_int_eq (vdo_make_open_chapter (CAPACITY, &chapter), VDO_SUCCESS);
  for (i = 0; i < CAPACITY; i++) {
    make_name (&name, i);
    make_advice (advice, i);
    vdo_open_chapter_put (chapter, &name, advice, false);
  }
  vdo_close_open_chapter (chapter, 99, 7, block_count, blocks, prefixes);
  ck_assert_uint_eq (vdo_open_chapter_size (chapter), 0);

  for (b = 0; b < block_count; b++) {
    const uint8_t *block = blocks + (size_t) b * VDO_BLOCK_SIZE;
    struct vdo_record_block_header header;

    ck_assert_int_eq (vdo_decode_record_block_header (block, &header),
                      VDO_SUCCESS);
    ck_assert_uint_eq (header.instance_nonce, 99);
    ck_assert_uint_eq (header.vcn, 7);
    ck_assert_uint_eq (header.block_index, b);
    total += header.record_count;
    for (i = 1; i < header.record_count; i++)
      ck_assert_int_lt (memcmp (vdo_record_block_record (block, i - 1),
                                vdo_record_block_record (block, i),
                                VDO_CHUNK_NAME_SIZE), 0);
    if (b > 0)
      ck_assert_uint_le (prefixes[b - 1], prefixes[b]);
  }
  ck_assert_uint_eq (total, CAPACITY);

  for (i = 0; i < CAPACITY; i++) {
    uint32_t first, last;
    bool hit = false;

    make_name (&name, i);
    make_advice (advice, i);
    vdo_chapter_block_range (prefixes, block_count,
                             vdo_chunk_name_prefix (&name), &first, &last);
    for (b = first; b <= last && !hit; b++) {
      const uint8_t *block = blocks + (size_t) b * VDO_BLOCK_SIZE;

      hit = vdo_search_record_block (block, vdo_record_block_count (block),
                                     &name, found);
    }
    ck_assert (hit);
    ck_assert_mem_eq (found, advice, VDO_ADVICE_SIZE);
  }

  /* The emptied chapter takes a new chapter's worth. */
  for (i = 0; i < CAPACITY; i++) {
    make_name (&name, i + 1000);
    ck_assert_int_eq (vdo_open_chapter_put (chapter, &name, advice, false),
                      VDO_OPEN_CHAPTER_ADDED);
  }
  vdo_free_open_chapter (chapter);
  free (blocks);
}
END_TEST

START_TEST (test_close_partial_chapter)
{
  struct vdo_open_chapter *chapter;
  struct vdo_chunk_name name;
  uint8_t *blocks;
  uint32_t prefixes[2];
  uint8_t advice[VDO_ADVICE_SIZE];

  blocks = malloc (2 * VDO_BLOCK_SIZE);
  ck_assert_ptr_nonnull (blocks);
  ck_assert_int_eq (vdo_make_open_chapter (200, &chapter), VDO_SUCCESS);
  make_name (&name, 1);
  make_advice (advice, 1);
  vdo_open_chapter_put (chapter, &name, advice, false);
  vdo_close_open_chapter (chapter, 1, 2, 2, blocks, prefixes);
  ck_assert_uint_eq (vdo_record_block_count (blocks), 1);
  ck_assert_uint_eq (prefixes[0], vdo_chunk_name_prefix (&name));
  ck_assert_uint_eq (vdo_record_block_count (blocks + VDO_BLOCK_SIZE), 0);
  ck_assert_uint_eq (prefixes[1], UINT32_MAX);
  vdo_free_open_chapter (chapter);
  free (blocks);
}
END_TEST

START_TEST (test_rejects_bad_capacity)
{
  struct vdo_open_chapter *chapter;

  ck_assert_int_eq (vdo_make_open_chapter (0, &chapter),
                    UDS_INVALID_ARGUMENT);
  ck_assert_int_eq (vdo_make_open_chapter (1ull << 40, &chapter),
                    UDS_INVALID_ARGUMENT);
}
END_TEST

Suite *
open_chapter_suite (void)
{
  Suite *s = suite_create ("open_chapter");
  TCase *tc = tcase_create ("open_chapter");

  tcase_add_test (tc, test_put_and_find);
  tcase_add_test (tc, test_overwrite_or_keep);
  tcase_add_test (tc, test_close_packs_sorted_blocks);
  tcase_add_test (tc, test_close_partial_chapter);
  tcase_add_test (tc, test_rejects_bad_capacity);
  suite_add_tcase (s, tc);
  return s;
}
