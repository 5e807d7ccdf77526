/* nbdkit-vdo: UDS index geometry, index region sizes, memory parsing. */
#include <config.h>

#include <string.h>

#include "index-geometry.h"
#include "status.h"
#include "unit-suites.h"

/* vdo-format.md 4.2 (every row; the first four and sparse 0.25 were
 * confirmed by vdoformat) and uds-index.md 3.4. */
static const struct {
  uint32_t mem;
  bool sparse;
  uint32_t chapters;
  uint32_t sparse_chapters;
  uint32_t index_pages;
  uint64_t volume_blocks;
  uint64_t volume_index_blocks;
  uint64_t page_map_blocks;
  uint64_t open_chapter_blocks;
  uint64_t save_blocks;
  uint64_t index_blocks;
} table_rows[] = {
  { 0xFFFFFF00u, false, 1024, 0, 6, 573448, 52321, 3, 513, 52838, 679127 },
  { 0xFFFFFE00u, false, 1024, 0, 13, 1155080, 104625, 7, 1025, 105658, 1366399 },
  { 0xFFFFFD00u, false, 1024, 0, 20, 1736712, 156929, 10, 1537, 158477, 2053669 },
  { 1, false, 1024, 0, 26, 2310152, 209233, 13, 2049, 211296, 2732747 },
  { 2, false, 2048, 0, 26, 4620296, 435889, 26, 2049, 437965, 5496229 },
  { 4, false, 4096, 0, 26, 9240584, 906609, 51, 2049, 908710, 11058007 },
  { 0xFFFFFF00u, true, 10240, 9728, 6, 5734408, 43380, 26, 513, 43920, 5822251 },
  { 0xFFFFFE00u, true, 10240, 9728, 13, 11550728, 86727, 61, 1025, 87814, 11726359 },
  { 0xFFFFFD00u, true, 10240, 9728, 20, 17367048, 130074, 96, 1537, 131708, 17630467 },
  { 1, true, 10240, 9728, 26, 23101448, 173421, 126, 2049, 175597, 23452645 },
};

START_TEST (test_table_row)
{
  struct vdo_index_geometry g;
  block_count_t blocks = 0;

  ck_assert_int_eq (vdo_compute_index_geometry (table_rows[_i].mem,
                                                table_rows[_i].sparse, &g),
                    VDO_SUCCESS);
  ck_assert_uint_eq (g.chapters_per_volume, table_rows[_i].chapters);
  ck_assert_uint_eq (g.sparse_chapters_per_volume,
                     table_rows[_i].sparse_chapters);
  ck_assert_uint_eq (g.index_pages_per_chapter, table_rows[_i].index_pages);
  ck_assert_uint_eq (g.volume_blocks, table_rows[_i].volume_blocks);
  ck_assert_uint_eq (g.volume_index_blocks,
                     table_rows[_i].volume_index_blocks);
  ck_assert_uint_eq (g.page_map_blocks, table_rows[_i].page_map_blocks);
  ck_assert_uint_eq (g.open_chapter_blocks,
                     table_rows[_i].open_chapter_blocks);
  ck_assert_uint_eq (g.save_blocks, table_rows[_i].save_blocks);
  ck_assert_uint_eq (g.index_blocks, table_rows[_i].index_blocks);

  ck_assert_int_eq (vdo_compute_index_blocks (table_rows[_i].mem,
                                              table_rows[_i].sparse, &blocks),
                    VDO_SUCCESS);
  ck_assert_uint_eq (blocks, table_rows[_i].index_blocks);
}
END_TEST

/* vdo-format.md 4.2 "More totals". */
static const struct {
  uint32_t gb;
  bool sparse;
  uint64_t index_blocks;
} more_totals[] = {
  { 3, false, 8294557 },
  { 8, false, 22251355 },
  { 16, false, 44777475 },
  { 32, false, 90108723 },
  { 64, false, 181329075 },
  { 256, false, 734230515 },
  { 1024, false, 2972616243ull },
  { 2, true, 46928887 },
  { 3, true, 70416617 },
  { 4, true, 93909179 },
  { 8, true, 187925411 },
  { 16, true, 376068883 },
  { 32, true, 752578163 },
  { 64, true, 1506041331 },
  { 256, true, 6031266195ull },
  { 1024, true, 24153506003ull },
};

START_TEST (test_more_totals)
{
  block_count_t blocks = 0;

  ck_assert_int_eq (vdo_compute_index_blocks (more_totals[_i].gb,
                                              more_totals[_i].sparse, &blocks),
                    VDO_SUCCESS);
  ck_assert_uint_eq (blocks, more_totals[_i].index_blocks);
}
END_TEST

/* uds-index.md 3.4 and the chapter-index parameters below it. */
START_TEST (test_chapter_parameters)
{
  static const struct {
    uint32_t mem;
    uint32_t record_pages, payload_bits, delta_lists;
    uint64_t records_per_chapter, records_per_volume;
  } rows[] = {
    { 0xFFFFFF00u, 64, 6, 1024, 65536, 67108864 },
    { 0xFFFFFE00u, 128, 7, 2048, 131072, 134217728 },
    { 0xFFFFFD00u, 192, 8, 4096, 196608, 201326592 },
    { 1, 256, 8, 4096, 262144, 268435456 },
    { 2, 256, 8, 4096, 262144, 536870912 },
  };
  struct vdo_index_geometry g;
  size_t i;

  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    ck_assert_int_eq (vdo_compute_index_geometry (rows[i].mem, false, &g),
                      VDO_SUCCESS);
    ck_assert_uint_eq (g.record_pages_per_chapter, rows[i].record_pages);
    ck_assert_uint_eq (g.pages_per_chapter,
                       rows[i].record_pages + g.index_pages_per_chapter);
    ck_assert_uint_eq (g.chapter_payload_bits, rows[i].payload_bits);
    ck_assert_uint_eq (g.delta_lists_per_chapter, rows[i].delta_lists);
    ck_assert_uint_eq (g.chapter_address_bits, 22);
    ck_assert_uint_eq (g.records_per_chapter, rows[i].records_per_chapter);
    ck_assert_uint_eq (g.records_per_volume, rows[i].records_per_volume);
    ck_assert_uint_eq (g.sparse_sample_rate, 0);
    ck_assert_uint_eq (g.hook.list_count, 0);
  }

  /* Sparse: 10x the chapters, of which 512 stay dense. */
  ck_assert_int_eq (vdo_compute_index_geometry (1, true, &g), VDO_SUCCESS);
  ck_assert_uint_eq (g.records_per_volume, 2684354560ull);
  ck_assert_uint_eq (g.dense_chapters_per_volume, 512);
  ck_assert_uint_eq (g.sparse_sample_rate, 32);
}
END_TEST

/* uds-index.md 5.6.2 and 5.3: volume-index sub-indexes and delta codes. */
START_TEST (test_volume_index_parameters)
{
  static const struct {
    uint32_t mem;
    bool sparse;
    uint32_t lists, chapter_bits;
    uint64_t zone_memory;
    uint32_t hook_lists, hook_chapter_bits;
    uint64_t hook_zone_memory;
  } rows[] = {
    { 0xFFFFFF00u, false, 262144, 10, 209780736, 0, 0, 0 },
    { 0xFFFFFE00u, false, 524288, 10, 419561472, 0, 0, 0 },
    { 0xFFFFFD00u, false, 786432, 10, 629342208, 0, 0, 0 },
    { 1, false, 1048576, 10, 839122944, 0, 0, 0 },
    { 2, false, 2097152, 11, 1749680128, 0, 0, 0 },
    { 0xFFFFFF00u, true, 126976, 9, 97320960, 81920, 14, 76742656 },
    { 1, true, 507904, 9, 389152768, 327680, 14, 306905088 },
  };
  struct vdo_index_geometry g;
  struct vdo_delta_coding coding;
  size_t i;

  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    ck_assert_int_eq (vdo_compute_index_geometry (rows[i].mem, rows[i].sparse,
                                                  &g), VDO_SUCCESS);
    ck_assert_uint_eq (g.non_hook.list_count, rows[i].lists);
    ck_assert_uint_eq (g.non_hook.chapter_bits, rows[i].chapter_bits);
    ck_assert_uint_eq (g.non_hook.address_bits, 20);
    ck_assert_uint_eq (g.non_hook.mean_delta, 4080);
    ck_assert_uint_eq (vdo_delta_zone_memory_bytes (g.non_hook.memory_bytes, 1),
                       rows[i].zone_memory);
    ck_assert_uint_eq (g.hook.list_count, rows[i].hook_lists);
    ck_assert_uint_eq (g.hook.chapter_bits, rows[i].hook_chapter_bits);
    if (rows[i].sparse) {
      ck_assert_uint_eq (g.hook.mean_delta, 4080);
      ck_assert_uint_eq (vdo_delta_zone_memory_bytes (g.hook.memory_bytes, 1),
                         rows[i].hook_zone_memory);
    }
  }

  coding = vdo_compute_delta_coding (4080);
  ck_assert_uint_eq (coding.min_bits, 12);
  ck_assert_uint_eq (coding.min_keys, 1268);
  ck_assert_uint_eq (coding.incr_keys, 2828);
  coding = vdo_compute_delta_coding (VDO_UDS_CHAPTER_MEAN_DELTA);
  ck_assert_uint_eq (coding.min_bits, 16);
  ck_assert_uint_eq (coding.min_keys, 20110);
  ck_assert_uint_eq (coding.incr_keys, 45426);

  /* The even share (rounded down) then rounds up to 64 KiB. */
  ck_assert_uint_eq (vdo_delta_zone_memory_bytes (65536 * 4 + 3, 4), 65536);
  ck_assert_uint_eq (vdo_delta_zone_memory_bytes (65536 * 4 + 4, 4),
                     2 * 65536);
}
END_TEST

START_TEST (test_unsupported_memory)
{
  static const uint32_t bad[] = {
    0, 1025, 2000, 0xFFFFFC00u, 0xFFFFFFFFu, 0x80000000u,
    /* The reduced settings of LVM-converted volumes. */
    0xFFFFFB00u, 0xFFFFFA00u, 0xFFFFF900u, 0x1001, 0x1400,
  };
  struct vdo_index_geometry g;
  block_count_t blocks = 42;
  char text[VDO_INDEX_MEMORY_TEXT_SIZE];
  size_t i;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert (!vdo_index_memory_is_supported (bad[i]));
    ck_assert_int_eq (vdo_compute_index_geometry (bad[i], false, &g),
                      VDO_BAD_INDEX_CONFIG);
    ck_assert_int_eq (vdo_compute_index_blocks (bad[i], true, &blocks),
                      VDO_BAD_INDEX_CONFIG);
    ck_assert_int_eq (vdo_format_index_memory (bad[i], text),
                      VDO_BAD_INDEX_CONFIG);
  }
  ck_assert_uint_eq (blocks, 42);

  /* The formatter still leaves the raw signed value. */
  ck_assert_int_eq (vdo_format_index_memory (0xFFFFFB00u, text),
                    VDO_BAD_INDEX_CONFIG);
  ck_assert_str_eq (text, "-1280");
  ck_assert_int_eq (vdo_format_index_memory (0x80000000u, text),
                    VDO_BAD_INDEX_CONFIG);
  ck_assert_str_eq (text, "-2147483648");
  ck_assert_int_eq (vdo_format_index_memory (0x1001, text),
                    VDO_BAD_INDEX_CONFIG);
  ck_assert_str_eq (text, "4097");

  ck_assert (vdo_index_memory_is_supported (VDO_INDEX_MEMORY_DEFAULT));
  ck_assert (vdo_index_memory_is_supported (1024));
}
END_TEST

START_TEST (test_parse_accepts)
{
  static const struct {
    const char *text;
    uint32_t mem;
    const char *canonical;
  } good[] = {
    { "0.25", 0xFFFFFF00u, "0.25" },
    { "0.5", 0xFFFFFE00u, "0.5" },
    { "0.50", 0xFFFFFE00u, "0.5" },
    { "0.75", 0xFFFFFD00u, "0.75" },
    { "1", 1, "1" },
    { "2", 2, "2" },
    { "10", 10, "10" },
    { "999", 999, "999" },
    { "1024", 1024, "1024" },
  };
  char text[VDO_INDEX_MEMORY_TEXT_SIZE];
  uint32_t mem;
  size_t i;

  for (i = 0; i < sizeof good / sizeof good[0]; i++) {
    mem = 0;
    ck_assert_int_eq (vdo_parse_index_memory (good[i].text, &mem),
                      VDO_SUCCESS);
    ck_assert_uint_eq (mem, good[i].mem);
    ck_assert_int_eq (vdo_format_index_memory (mem, text), VDO_SUCCESS);
    ck_assert_str_eq (text, good[i].canonical);
  }

  /* Every whole size round-trips. */
  for (i = 1; i <= VDO_INDEX_MEMORY_MAX_GB; i++) {
    ck_assert_int_eq (vdo_format_index_memory ((uint32_t) i, text),
                      VDO_SUCCESS);
    ck_assert_int_eq (vdo_parse_index_memory (text, &mem), VDO_SUCCESS);
    ck_assert_uint_eq (mem, i);
  }
}
END_TEST

START_TEST (test_parse_rejects)
{
  static const char *const bad[] = {
    "", "0", "00", "0.0", "0.3", "0.2", "0.250", "0.7", ".25", "0,25",
    "1025", "2000", "99999999999999999999", "abc", "1G", "1.0", "1.5",
    "-1", "+1", " 1", "1 ", "01", "0x10", "0.5 ", "-256",
  };
  uint32_t mem = 7;
  size_t i;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg (vdo_parse_index_memory (bad[i], &mem)
                   == VDO_BAD_INDEX_CONFIG, "accepted \"%s\"", bad[i]);
  ck_assert_int_eq (vdo_parse_index_memory (NULL, &mem), VDO_BAD_INDEX_CONFIG);
  ck_assert_uint_eq (mem, 7);
}
END_TEST

Suite *
index_geometry_suite (void)
{
  Suite *s = suite_create ("index-geometry");
  TCase *sizes = tcase_create ("sizes");
  TCase *params = tcase_create ("parameters");
  TCase *text = tcase_create ("text");

  tcase_add_loop_test (sizes, test_table_row, 0,
                       sizeof table_rows / sizeof table_rows[0]);
  tcase_add_loop_test (sizes, test_more_totals, 0,
                       sizeof more_totals / sizeof more_totals[0]);
  tcase_add_test (params, test_chapter_parameters);
  tcase_add_test (params, test_volume_index_parameters);
  tcase_add_test (params, test_unsupported_memory);
  tcase_add_test (text, test_parse_accepts);
  tcase_add_test (text, test_parse_rejects);
  suite_add_tcase (s, sizes);
  suite_add_tcase (s, params);
  suite_add_tcase (s, text);
  return s;
}
