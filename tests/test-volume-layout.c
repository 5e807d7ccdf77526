/* nbdkit-vdo: vdoformat's layout, slab configuration and slab arithmetic,
 * checked against the fixtures and vdo-format.md Appendix A. */
#include <config.h>

#include <string.h>

#include "byte-order.h"
#include "index-geometry.h"
#include "status.h"
#include "unit-suites.h"
#include "volume-layout.h"

#define MEM_256MB VDO_INDEX_MEMORY_256MB
#define GIB_BLOCKS(n) ((block_count_t) (n) << 18)

/* What a fresh volume must look like; everything else is implied by the
 * closed forms of vdo-format.md 4.3. */
struct expected_volume {
  const char *name;
  struct vdo_layout_params params;
  physical_block_number_t data_start;
  block_count_t logical_blocks;
  block_count_t slab_count;
  block_count_t data_blocks;
  block_count_t reference_count_blocks;
  physical_block_number_t depot_start;
  block_count_t depot_blocks;
  physical_block_number_t depot_end;    /* last_block */
  physical_block_number_t journal_start;
  physical_block_number_t summary_start;
};

static const struct expected_volume volumes[] = {
  /* fixtures fresh-8g-l20g-s15 and A.1 */
  { "fresh-8g-l20g-s15", { 2097152, 5242880, 15, MEM_256MB, false },
    679128, 5242880, 42, 32535, 9, 679189, 1385131, 2055445,
    2064320, 2097088 },
  /* fixture fresh-8g-l4t-s15: only the logical size differs */
  { "fresh-8g-l4t-s15", { 2097152, 1073741824, 15, MEM_256MB, false },
    679128, 1073741824, 42, 32535, 9, 679189, 1385131, 2055445,
    2064320, 2097088 },
  /* fixture fresh-5g-s13 and A.2: logical size defaulted */
  { "fresh-5g-s13", { 1310720, 0, 13, MEM_256MB, false },
    679128, 580622, 73, 7966, 2, 679189, 598699, 1277205,
    1277888, 1310656 },
  /* fixture fresh-24g-sparse-s16: 100G logical */
  { "fresh-24g-sparse-s16", { 6291456, 26214400, 16, MEM_256MB, true },
    5822252, 26214400, 6, 65295, 17, 5822313, 436311, 6215529,
    6258624, 6291392 },
  /* A.3: 32 GiB, sparse, defaults */
  { "A.3 32g-sparse", { 8388608, 0, 19, MEM_256MB, true },
    5822252, 2092975, 4, 523934, 130, 5822313, 2533463, 7919465,
    8355776, 8388544 },
};

static void
check_volume (const struct expected_volume *e)
{
  const physical_block_number_t root_origin = e->data_start + 1;
  struct vdo_volume_geometry g;
  struct vdo_component_states s;
  const struct vdo_layout *l = &s.layout;
  const struct slab_config *c = &s.slab_depot.slab_config;
  static const uint8_t zero_uuid[VDO_UUID_SIZE];

  memset (&g, 0xAA, sizeof g);
  memset (&s, 0xAA, sizeof s);
  ck_assert_int_eq (vdo_compute_volume_layout (&e->params, &g, &s),
                    VDO_SUCCESS);

  /* Geometry: everything but nonce and UUID, which stay zero. */
  ck_assert_uint_eq (g.major_version, 5);
  ck_assert_uint_eq (g.unused, 0);
  ck_assert_uint_eq (g.nonce, 0);
  ck_assert_mem_eq (g.uuid, zero_uuid, VDO_UUID_SIZE);
  ck_assert_uint_eq (g.bio_offset, 0);
  ck_assert_uint_eq (g.regions[0].id, VDO_INDEX_REGION);
  ck_assert_uint_eq (g.regions[0].start_block, 1);
  ck_assert_uint_eq (g.regions[1].id, VDO_DATA_REGION);
  ck_assert_uint_eq (g.regions[1].start_block, e->data_start);
  ck_assert_uint_eq (g.index_config.mem, e->params.index_memory);
  ck_assert_uint_eq (g.index_config.unused, 0);
  ck_assert (g.index_config.sparse == e->params.sparse_index);

  /* VDO component. */
  ck_assert_uint_eq (s.unused, 0);
  ck_assert_uint_eq (s.volume_version.major, 67);
  ck_assert_uint_eq (s.volume_version.minor, 0);
  ck_assert_uint_eq (s.state, VDO_NEW);
  ck_assert_uint_eq (s.complete_recoveries, 0);
  ck_assert_uint_eq (s.read_only_recoveries, 0);
  ck_assert_uint_eq (s.config.logical_blocks, e->logical_blocks);
  ck_assert_uint_eq (s.config.physical_blocks, e->params.physical_blocks);
  ck_assert_uint_eq (s.config.slab_size, 1u << e->params.slab_bits);
  ck_assert_uint_eq (s.config.recovery_journal_size, 32768);
  ck_assert_uint_eq (s.config.slab_journal_blocks, 224);
  ck_assert_uint_eq (s.nonce, 0);

  /* Layout, in vdoformat's record order 1, 2, 3, 0. */
  ck_assert_uint_eq (l->first_free, e->journal_start);
  ck_assert_uint_eq (l->last_free, e->journal_start);
  ck_assert_uint_eq (l->partition_count, 4);
  ck_assert_uint_eq (l->partitions[0].id, VDO_SLAB_DEPOT_PARTITION);
  ck_assert_uint_eq (l->partitions[0].offset, e->depot_start);
  ck_assert_uint_eq (l->partitions[0].base, 0);
  ck_assert_uint_eq (l->partitions[0].count, e->depot_blocks);
  ck_assert_uint_eq (l->partitions[1].id, VDO_RECOVERY_JOURNAL_PARTITION);
  ck_assert_uint_eq (l->partitions[1].offset, e->journal_start);
  ck_assert_uint_eq (l->partitions[1].base, 0);
  ck_assert_uint_eq (l->partitions[1].count, 32768);
  ck_assert_uint_eq (l->partitions[2].id, VDO_SLAB_SUMMARY_PARTITION);
  ck_assert_uint_eq (l->partitions[2].offset, e->summary_start);
  ck_assert_uint_eq (l->partitions[2].base, 0);
  ck_assert_uint_eq (l->partitions[2].count, 64);
  ck_assert_uint_eq (l->partitions[3].id, VDO_BLOCK_MAP_PARTITION);
  ck_assert_uint_eq (l->partitions[3].offset, root_origin);
  ck_assert_uint_eq (l->partitions[3].base, 0);
  ck_assert_uint_eq (l->partitions[3].count, 60);
  /* The partitions cover the layout exactly (vdo-format.md 8.3). */
  ck_assert_uint_eq (root_origin + e->depot_blocks + 32768 + 64 + 60,
                     e->params.physical_blocks);

  /* Recovery journal. */
  ck_assert_uint_eq (s.recovery_journal.journal_start, 1);
  ck_assert_uint_eq (s.recovery_journal.logical_blocks_used, 0);
  ck_assert_uint_eq (s.recovery_journal.block_map_data_blocks, 0);

  /* Slab depot. */
  ck_assert_uint_eq (c->slab_blocks, 1u << e->params.slab_bits);
  ck_assert_uint_eq (c->data_blocks, e->data_blocks);
  ck_assert_uint_eq (c->reference_count_blocks, e->reference_count_blocks);
  ck_assert_uint_eq (c->slab_journal_blocks, 224);
  ck_assert_uint_eq (c->slab_journal_flushing_threshold, 168);
  ck_assert_uint_eq (c->slab_journal_blocking_threshold, 208);
  ck_assert_uint_eq (c->slab_journal_scrubbing_threshold, 222);
  ck_assert_uint_eq (s.slab_depot.first_block, e->depot_start);
  ck_assert_uint_eq (s.slab_depot.last_block, e->depot_end);
  ck_assert_uint_eq (s.slab_depot.zone_count, 0);
  ck_assert_uint_eq (vdo_depot_slab_count (&s.slab_depot), e->slab_count);

  /* Block map. */
  ck_assert_uint_eq (s.block_map.flat_page_origin, 1);
  ck_assert_uint_eq (s.block_map.flat_page_count, 0);
  ck_assert_uint_eq (s.block_map.root_origin, root_origin);
  ck_assert_uint_eq (s.block_map.root_count, 60);
}

START_TEST (test_fresh_volume)
{
  check_volume (&volumes[_i]);
}
END_TEST

/* Appendix A: with the recorded nonce and UUID, the encoded blocks carry
 * exactly the checksums vdoformat wrote, so every encoded byte matches. */
START_TEST (test_appendix_checksums)
{
  static const struct {
    struct vdo_layout_params params;
    nonce_t nonce;
    uint8_t uuid[VDO_UUID_SIZE];
    uint32_t geometry_crc, super_block_crc;
  } rows[] = {
    { { 2097152, 5242880, 15, MEM_256MB, false }, 1795625283424473ull,
      { 0xb4, 0x61, 0x95, 0x2d, 0x25, 0xcd, 0x4d, 0xb9,
        0x87, 0x98, 0x11, 0x59, 0x7e, 0x9b, 0xb5, 0xf3 },
      0x489843B8u, 0x64D4C037u },
    { { 1310720, 0, 13, MEM_256MB, false }, 1795625283541913ull,
      { 0x6f, 0xeb, 0x61, 0xc7, 0xdf, 0xa6, 0x44, 0x80,
        0x94, 0xed, 0xe1, 0x05, 0x45, 0x7d, 0x1f, 0x48 },
      0x74702CC7u, 0xF64B89AAu },
    { { 8388608, 0, 19, MEM_256MB, true }, 1795625294092244ull,
      { 0x51, 0xa8, 0x2a, 0x00, 0x74, 0x27, 0x49, 0xd8,
        0x9b, 0xd3, 0xda, 0xfd, 0xef, 0x3e, 0x89, 0x0f },
      0x965A8070u, 0x1DF44340u },
  };
  struct vdo_volume_geometry g;
  struct vdo_component_states s;
  uint8_t block[VDO_BLOCK_SIZE];
  size_t i;

  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    ck_assert_int_eq (vdo_compute_volume_layout (&rows[i].params, &g, &s),
                      VDO_SUCCESS);
    g.nonce = rows[i].nonce;
    memcpy (g.uuid, rows[i].uuid, VDO_UUID_SIZE);
    s.nonce = rows[i].nonce;
    vdo_encode_volume_geometry (block, &g);
    ck_assert_uint_eq (get_le32 (block + 97), rows[i].geometry_crc);
    vdo_encode_super_block (block, &s);
    ck_assert_uint_eq (get_le32 (block + 434), rows[i].super_block_crc);
  }
}
END_TEST

/* Appendix B.1: other index sizes, default logical sizes. */
START_TEST (test_other_index_sizes)
{
  static const struct {
    struct vdo_layout_params params;
    physical_block_number_t data_start;
    block_count_t logical;
  } rows[] = {
    { { GIB_BLOCKS (8), 0, 19, VDO_INDEX_MEMORY_512MB, false }, 1366400, 523108 },
    { { GIB_BLOCKS (16), 0, 19, 1, false }, 2732748, 1046397 },
    { { GIB_BLOCKS (16), 0, 19, VDO_INDEX_MEMORY_768MB, false }, 2053670, 0 },
  };
  struct vdo_volume_geometry g;
  struct vdo_component_states s;
  size_t i;

  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    ck_assert_int_eq (vdo_compute_volume_layout (&rows[i].params, &g, &s),
                      VDO_SUCCESS);
    ck_assert_uint_eq (g.regions[1].start_block, rows[i].data_start);
    ck_assert_uint_eq (g.index_config.mem, rows[i].params.index_memory);
    if (rows[i].logical)
      ck_assert_uint_eq (s.config.logical_blocks, rows[i].logical);
  }
}
END_TEST

/* The fixtures' vdolistmetadata slab lines, first and last slab. */
START_TEST (test_slab_ranges)
{
  static const struct {
    size_t volume;
    block_count_t slab;
    physical_block_number_t refs_first, refs_last, journal_first, journal_last;
  } rows[] = {
    { 0, 0, 711724, 711732, 711733, 711956 },
    { 0, 1, 744492, 744500, 744501, 744724 },
    { 0, 41, 2055212, 2055220, 2055221, 2055444 },
    { 2, 0, 687155, 687156, 687157, 687380 },
    { 2, 1, 695347, 695348, 695349, 695572 },
    { 2, 72, 1276979, 1276980, 1276981, 1277204 },
    { 3, 0, 5887608, 5887624, 5887625, 5887848 },
    { 3, 5, 6215288, 6215304, 6215305, 6215528 },
    { 4, 0, 6346247, 6346376, 6346377, 6346600 },
  };
  struct vdo_volume_geometry g;
  struct vdo_component_states s;
  struct vdo_pbn_range r;
  block_count_t count;
  size_t i;

  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const struct expected_volume *e = &volumes[rows[i].volume];

    ck_assert_int_eq (vdo_compute_volume_layout (&e->params, &g, &s),
                      VDO_SUCCESS);
    r = vdo_slab_data_range (&s.slab_depot, rows[i].slab);
    ck_assert_uint_eq (r.start, vdo_slab_origin (&s.slab_depot, rows[i].slab));
    ck_assert_uint_eq (r.count, e->data_blocks);
    r = vdo_slab_reference_range (&s.slab_depot, rows[i].slab);
    ck_assert_uint_eq (r.start, rows[i].refs_first);
    ck_assert_uint_eq (r.start + r.count - 1, rows[i].refs_last);
    r = vdo_slab_journal_range (&s.slab_depot, rows[i].slab);
    ck_assert_uint_eq (r.start, rows[i].journal_first);
    ck_assert_uint_eq (r.start + r.count - 1, rows[i].journal_last);

    /* No slab past the last one. */
    count = vdo_depot_slab_count (&s.slab_depot);
    r = vdo_slab_journal_range (&s.slab_depot, count);
    ck_assert_uint_eq (r.start, 0);
    ck_assert_uint_eq (r.count, 0);
    r = vdo_slab_reference_range (&s.slab_depot, count);
    ck_assert_uint_eq (r.count, 0);
    r = vdo_slab_data_range (&s.slab_depot, count);
    ck_assert_uint_eq (r.count, 0);
  }
}
END_TEST

START_TEST (test_data_blocks)
{
  static const struct {
    physical_block_number_t pbn;
    bool data;
  } rows[] = {
    { 0, true },                /* the zero block */
    { 1, false },               /* index */
    { 679128, false },          /* super block */
    { 679188, false },          /* last root */
    { 679189, true },           /* slab 0, first data block */
    { 711723, true },           /* slab 0, last data block */
    { 711724, false },          /* slab 0, reference counts */
    { 711956, false },          /* slab 0, last journal block */
    { 711957, true },           /* slab 1 origin */
    { 2055211, true },          /* slab 41, last data block */
    { 2055212, false },
    { 2055444, false },
    { 2055445, false },         /* unused tail */
    { 2064319, false },
    { 2064320, false },         /* recovery journal */
    { 2097151, false },         /* slab summary */
    { 2097152, false },         /* past the device */
  };
  struct vdo_volume_geometry g;
  struct vdo_component_states s;
  block_count_t slab = 99, offset = 99;
  size_t i;

  ck_assert_int_eq (vdo_compute_volume_layout (&volumes[0].params, &g, &s),
                    VDO_SUCCESS);
  for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
    ck_assert_msg (vdo_is_physical_data_block (&s.slab_depot, rows[i].pbn)
                   == rows[i].data, "PBN %llu", (unsigned long long) rows[i].pbn);

  ck_assert_uint_eq (vdo_slab_origin (&s.slab_depot, 1), 711957);
  ck_assert (vdo_slab_of_pbn (&s.slab_depot, 711957, &slab, &offset));
  ck_assert_uint_eq (slab, 1);
  ck_assert_uint_eq (offset, 0);
  ck_assert (vdo_slab_of_pbn (&s.slab_depot, 2055444, &slab, &offset));
  ck_assert_uint_eq (slab, 41);
  ck_assert_uint_eq (offset, 32767);
  ck_assert (!vdo_slab_of_pbn (&s.slab_depot, 2055445, &slab, &offset));
  ck_assert (!vdo_slab_of_pbn (&s.slab_depot, 679188, &slab, &offset));
  /* PBN 0 is data but in no slab. */
  ck_assert (!vdo_slab_of_pbn (&s.slab_depot, 0, &slab, &offset));

  /* A depot without slabs has no data blocks but the zero block. */
  s.slab_depot.last_block = s.slab_depot.first_block;
  ck_assert_uint_eq (vdo_depot_slab_count (&s.slab_depot), 0);
  ck_assert (!vdo_is_physical_data_block (&s.slab_depot, 679189));
  ck_assert (vdo_is_physical_data_block (&s.slab_depot, 0));
}
END_TEST

/* vdo-journals.md 2 (every row) and vdo-format.md 4.4. */
START_TEST (test_slab_config_rows)
{
  static const struct {
    unsigned int bits;
    block_count_t reference_count_blocks, data_blocks;
  } rows[] = {
    { 13, 2, 7966 },
    { 14, 5, 16155 },
    { 15, 9, 32535 },
    { 16, 17, 65295 },
    { 17, 33, 130815 },
    { 18, 65, 261855 },
    { 19, 130, 523934 },
    { 20, 261, 1048091 },
    { 21, 521, 2096407 },
    { 22, 1041, 4193039 },
    { 23, 2081, 8386303 },
  };
  struct slab_config c;
  size_t i;

  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    memset (&c, 0xAA, sizeof c);
    ck_assert_int_eq (vdo_configure_slab ((block_count_t) 1 << rows[i].bits,
                                          224, &c), VDO_SUCCESS);
    ck_assert_uint_eq (c.slab_blocks, (block_count_t) 1 << rows[i].bits);
    ck_assert_uint_eq (c.reference_count_blocks,
                       rows[i].reference_count_blocks);
    ck_assert_uint_eq (c.data_blocks, rows[i].data_blocks);
    ck_assert_uint_eq (c.slab_journal_blocks, 224);
    ck_assert_uint_eq (c.slab_journal_flushing_threshold, 168);
    ck_assert_uint_eq (c.slab_journal_blocking_threshold, 208);
    ck_assert_uint_eq (c.slab_journal_scrubbing_threshold, 222);
  }
}
END_TEST

START_TEST (test_slab_config_limits)
{
  struct slab_config c;

  /* The journal alone fills the slab. */
  ck_assert_int_eq (vdo_configure_slab (224, 224, &c), VDO_BAD_CONFIGURATION);
  ck_assert_int_eq (vdo_configure_slab (100, 224, &c), VDO_BAD_CONFIGURATION);
  ck_assert_int_eq (vdo_configure_slab (0, 224, &c), VDO_BAD_CONFIGURATION);
  /* One reference block and the journal fill it. */
  ck_assert_int_eq (vdo_configure_slab (225, 224, &c), VDO_BAD_CONFIGURATION);
  /* One data block is enough. */
  ck_assert_int_eq (vdo_configure_slab (226, 224, &c), VDO_SUCCESS);
  ck_assert_uint_eq (c.data_blocks, 1);
  ck_assert_uint_eq (c.reference_count_blocks, 1);

  /* A short journal: the blocking threshold drops to the scrubbing one. */
  ck_assert_int_eq (vdo_configure_slab (8192, 8, &c), VDO_SUCCESS);
  ck_assert_uint_eq (c.slab_journal_flushing_threshold, 6);
  ck_assert_uint_eq (c.slab_journal_scrubbing_threshold, 6);
  ck_assert_uint_eq (c.slab_journal_blocking_threshold, 6);
  /* Too short to keep the reserve: scrub at the blocking threshold. */
  ck_assert_int_eq (vdo_configure_slab (8192, 2, &c), VDO_SUCCESS);
  ck_assert_uint_eq (c.slab_journal_flushing_threshold, 2);
  ck_assert_uint_eq (c.slab_journal_blocking_threshold, 2);
  ck_assert_uint_eq (c.slab_journal_scrubbing_threshold, 2);
}
END_TEST

static int
layout_result (block_count_t physical, block_count_t logical,
               unsigned int bits, uint32_t mem, bool sparse,
               block_count_t *slabs)
{
  struct vdo_layout_params p = { physical, logical, bits, mem, sparse };
  struct vdo_volume_geometry g;
  struct vdo_component_states s;
  int result = vdo_compute_volume_layout (&p, &g, &s);

  if (result == VDO_SUCCESS && slabs != NULL)
    *slabs = vdo_depot_slab_count (&s.slab_depot);
  return result;
}

/* vdo-format.md 4.7, A.3, B.5 and the fresh-16g-sparse-s16 note. */
START_TEST (test_minimum_size)
{
  static const struct {
    uint32_t mem;
    bool sparse;
    unsigned int bits;
    block_count_t minimum;
  } rows[] = {
    { MEM_256MB, false, 13, 720213 },
    { MEM_256MB, false, 19, 1236309 },
    { MEM_256MB, true, 13, 5863337 },
    { MEM_256MB, true, 16, 24251109376ull / 4096 },
    { MEM_256MB, true, 19, 6379433 },
  };
  block_count_t blocks = 0, slabs = 0;
  size_t i;

  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    ck_assert_int_eq (vdo_compute_minimum_physical_blocks (rows[i].mem,
                                                           rows[i].sparse,
                                                           rows[i].bits,
                                                           &blocks),
                      VDO_SUCCESS);
    ck_assert_uint_eq (blocks, rows[i].minimum);
    ck_assert_int_eq (layout_result (blocks, 0, rows[i].bits, rows[i].mem,
                                     rows[i].sparse, &slabs), VDO_SUCCESS);
    ck_assert_uint_eq (slabs, 1);
    ck_assert_int_eq (layout_result (blocks - 1, 0, rows[i].bits, rows[i].mem,
                                     rows[i].sparse, NULL), VDO_NO_SPACE);
  }
  ck_assert_uint_eq (6379433ull * 4096, 26130157568ull);

  /* Far too small, down to nothing: never an underflow. */
  ck_assert_int_eq (layout_result (679127 + 32894, 0, 13, MEM_256MB, false,
                                   NULL), VDO_NO_SPACE);
  ck_assert_int_eq (layout_result (679127 + 32893, 0, 13, MEM_256MB, false,
                                   NULL), VDO_NO_SPACE);
  ck_assert_int_eq (layout_result (1000, 0, 13, MEM_256MB, false, NULL),
                    VDO_NO_SPACE);
  ck_assert_int_eq (layout_result (0, 0, 13, MEM_256MB, false, NULL),
                    VDO_NO_SPACE);
  /* A 16 GiB sparse format fails (A.3, the fixtures' README). */
  ck_assert_int_eq (layout_result (GIB_BLOCKS (16), 0, 19, MEM_256MB, true,
                                   NULL), VDO_NO_SPACE);
  ck_assert_int_eq (layout_result (GIB_BLOCKS (16), 25600 * 1024, 16,
                                   MEM_256MB, true, NULL), VDO_NO_SPACE);

  ck_assert_int_eq (vdo_compute_minimum_physical_blocks (MEM_256MB, false, 12,
                                                         &blocks),
                    VDO_BAD_SLAB_SIZE);
  ck_assert_int_eq (vdo_compute_minimum_physical_blocks (0, false, 13,
                                                         &blocks),
                    VDO_BAD_INDEX_CONFIG);
}
END_TEST

/* vdo-format.md 4.7 and B.5. */
START_TEST (test_maximum_slabs)
{
  struct vdo_layout_params p = { 67829076, 0, 13, MEM_256MB, false };
  struct vdo_volume_geometry g;
  struct vdo_component_states s;
  block_count_t blocks = 0;

  ck_assert_int_eq (vdo_compute_volume_layout (&p, &g, &s), VDO_SUCCESS);
  ck_assert_uint_eq (vdo_depot_slab_count (&s.slab_depot), 8192);
  ck_assert_uint_eq (s.slab_depot.last_block, 67788053);
  ck_assert_int_eq (layout_result (67829077, 0, 13, MEM_256MB, false, NULL),
                    VDO_TOO_MANY_SLABS);
  /* 300 GiB with 32 MiB slabs. */
  ck_assert_int_eq (layout_result (GIB_BLOCKS (300), 0, 13, MEM_256MB, false,
                                   NULL), VDO_TOO_MANY_SLABS);

  ck_assert_int_eq (vdo_compute_maximum_physical_blocks (MEM_256MB, false, 13,
                                                         &blocks),
                    VDO_SUCCESS);
  ck_assert_uint_eq (blocks, 67829076);
  /* With 8 GiB slabs the 2^36-block limit comes first. */
  ck_assert_int_eq (vdo_compute_maximum_physical_blocks (MEM_256MB, false, 23,
                                                         &blocks),
                    VDO_SUCCESS);
  ck_assert_uint_eq (blocks, VDO_MAX_PHYSICAL_BLOCKS);
}
END_TEST

START_TEST (test_limits)
{
  block_count_t slabs = 0;

  /* Slab bits 13..23 only (B.5). */
  ck_assert_int_eq (layout_result (GIB_BLOCKS (8), 0, 12, MEM_256MB, false,
                                   NULL), VDO_BAD_SLAB_SIZE);
  ck_assert_int_eq (layout_result (GIB_BLOCKS (8), 0, 24, MEM_256MB, false,
                                   NULL), VDO_BAD_SLAB_SIZE);
  ck_assert_int_eq (layout_result (GIB_BLOCKS (8), 0, 0, MEM_256MB, false,
                                   NULL), VDO_BAD_SLAB_SIZE);

  /* Physical size up to 2^36 blocks. */
  ck_assert_int_eq (layout_result (VDO_MAX_PHYSICAL_BLOCKS, 0, 23, MEM_256MB,
                                   false, &slabs), VDO_SUCCESS);
  ck_assert_uint_eq (slabs, 8191);
  ck_assert_int_eq (layout_result (VDO_MAX_PHYSICAL_BLOCKS + 1, 0, 23,
                                   MEM_256MB, false, NULL), VDO_OUT_OF_RANGE);

  /* Logical size up to 2^40 blocks (4P accepted, 5P refused: B.5). */
  ck_assert_int_eq (layout_result (GIB_BLOCKS (8), VDO_MAX_LOGICAL_BLOCKS, 15,
                                   MEM_256MB, false, NULL), VDO_SUCCESS);
  ck_assert_int_eq (layout_result (GIB_BLOCKS (8), VDO_MAX_LOGICAL_BLOCKS + 1,
                                   15, MEM_256MB, false, NULL),
                    VDO_OUT_OF_RANGE);

  /* Index settings the index library refuses. */
  ck_assert_int_eq (layout_result (GIB_BLOCKS (8), 0, 15, 0, false, NULL),
                    VDO_BAD_INDEX_CONFIG);
  ck_assert_int_eq (layout_result (GIB_BLOCKS (8), 0, 15, 0xFFFFFB00u, false,
                                   NULL), VDO_BAD_INDEX_CONFIG);
}
END_TEST

/* vdo-format.md 4.6 and B.1. */
START_TEST (test_default_logical)
{
  ck_assert_uint_eq (vdo_compute_default_logical_blocks (73 * 7966), 580622);
  ck_assert_uint_eq (vdo_compute_default_logical_blocks (4 * 523934),
                     2092975);
  ck_assert_uint_eq (vdo_compute_default_logical_blocks (7966), 7776);
  ck_assert_uint_eq (vdo_compute_default_logical_blocks (523934), 523108);
  ck_assert_uint_eq (vdo_compute_default_logical_blocks (2 * 523934),
                     1046397);
  /* Nothing left to map: no negative sizes. */
  ck_assert_uint_eq (vdo_compute_default_logical_blocks (0), 0);
  ck_assert_uint_eq (vdo_compute_default_logical_blocks (180), 0);
  ck_assert_uint_eq (vdo_compute_default_logical_blocks (181), 0);
  ck_assert_uint_eq (vdo_compute_default_logical_blocks (182), 1);

  /* One 8192-block slab formats with 7776 logical blocks (4.6). */
  {
    struct vdo_layout_params p = { 720213, 0, 13, MEM_256MB, false };
    struct vdo_volume_geometry g;
    struct vdo_component_states s;

    ck_assert_int_eq (vdo_compute_volume_layout (&p, &g, &s), VDO_SUCCESS);
    ck_assert_uint_eq (s.config.logical_blocks, 7776);
  }
}
END_TEST

/* vdo-format.md 5.9 and the 4.6 example. */
START_TEST (test_forest_size)
{
  struct vdo_forest_size f;

  vdo_compute_forest_size (VDO_MAX_LOGICAL_BLOCKS, &f);
  ck_assert_uint_eq (f.leaf_pages, 1354078360);
  ck_assert_uint_eq (f.leaf_pages_per_tree, 22567973);
  ck_assert_uint_eq (f.levels[0], 27794);
  ck_assert_uint_eq (f.levels[1], 35);
  ck_assert_uint_eq (f.levels[2], 1);
  ck_assert_uint_eq (f.levels[3], 1);
  ck_assert_uint_eq (f.levels[4], 1);
  ck_assert_uint_eq (f.interior_pages, 60 * (27794 + 35 + 1));

  vdo_compute_forest_size (581518, &f);
  ck_assert_uint_eq (f.leaf_pages, 717);
  ck_assert_uint_eq (f.leaf_pages_per_tree, 12);
  ck_assert_uint_eq (f.interior_pages, 180);

  /* Even an empty map has a leaf page. */
  vdo_compute_forest_size (0, &f);
  ck_assert_uint_eq (f.leaf_pages, 1);
  ck_assert_uint_eq (f.leaf_pages_per_tree, 1);
  ck_assert_uint_eq (f.levels[0], 1);
  ck_assert_uint_eq (f.interior_pages, 180);

  /* 60 full leaves fill one per tree; one more LBN starts a second. */
  vdo_compute_forest_size (812 * 60, &f);
  ck_assert_uint_eq (f.leaf_pages, 60);
  ck_assert_uint_eq (f.leaf_pages_per_tree, 1);
  vdo_compute_forest_size (812 * 60 + 1, &f);
  ck_assert_uint_eq (f.leaf_pages, 61);
  ck_assert_uint_eq (f.leaf_pages_per_tree, 2);
}
END_TEST

Suite *
volume_layout_suite (void)
{
  Suite *s = suite_create ("volume-layout");
  TCase *layout = tcase_create ("layout");
  TCase *slabs = tcase_create ("slabs");
  TCase *limits = tcase_create ("limits");
  TCase *logical = tcase_create ("logical");

  tcase_add_loop_test (layout, test_fresh_volume, 0,
                       sizeof volumes / sizeof volumes[0]);
  tcase_add_test (layout, test_appendix_checksums);
  tcase_add_test (layout, test_other_index_sizes);
  tcase_add_test (slabs, test_slab_ranges);
  tcase_add_test (slabs, test_data_blocks);
  tcase_add_test (slabs, test_slab_config_rows);
  tcase_add_test (slabs, test_slab_config_limits);
  tcase_add_test (limits, test_minimum_size);
  tcase_add_test (limits, test_maximum_slabs);
  tcase_add_test (limits, test_limits);
  tcase_add_test (logical, test_default_logical);
  tcase_add_test (logical, test_forest_size);
  suite_add_tcase (s, layout);
  suite_add_tcase (s, slabs);
  suite_add_tcase (s, limits);
  suite_add_tcase (s, logical);
  return s;
}
