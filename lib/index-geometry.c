/* nbdkit-vdo: UDS index geometry and index region size. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "index-geometry.h"
#include "logger.h"
#include "math-util.h"
#include "status.h"

/* Chapters per GB of index memory, and record pages per chapter: 64 per
 * quarter GB up to 256 from 1 GB on. */
#define CHAPTERS_PER_GB 1024u
#define SMALL_RECORD_PAGES 64u
#define FULL_RECORD_PAGES 256u

/* A sparse index has ten times the chapters, 95 % of them sparse. */
#define SPARSE_CHAPTER_FACTOR 10u

/* Chapter index pages: a 20-byte header, then a 19-bit start offset per
 * delta list (uds-index.md 5.2.2). */
#define DELTA_PAGE_HEADER_BYTES 20u
#define DELTA_LIST_OFFSET_BITS 19u

/* Volume index: on average one delta list per 256 records, but at least
 * one list per zone pair so no zone is ever left without lists. */
#define RECORDS_PER_DELTA_LIST 256u
#define MIN_DELTA_LISTS (VDO_UDS_MAX_ZONES * VDO_UDS_MAX_ZONES)
/* Lazily expired entries take about four chapters per 1024 (at least two). */
#define CHAPTERS_PER_INVALID_CHAPTER 256u
#define MIN_INVALID_CHAPTERS 2u
#define DELTA_ZONE_ALIGNMENT 65536u

/* What a volume-index save reserves (uds-index.md 5.6.4). */
#define SUB_INDEX_HEADER_BYTES 40u      /* "MI5-0005" header */
#define DELTA_INDEX_HEADER_BYTES 40u    /* "DI-00002" header */
#define FLUSH_CHAPTER_BYTES 8u          /* one u64 per list */
#define LIST_SAVE_RESERVE_BYTES 9u      /* 8-byte list info + 1, per list */
#define SPARSE_HEADER_BYTES 12u         /* "MI6-0001" + sample rate */
#define GUARD_LIST_BYTES 8u

/* The other parts of a save slot (uds-index.md 3.3). */
#define PAGE_MAP_HEADER_BYTES 16u       /* "ALBIPM02" + last update */
#define PAGE_MAP_ENTRY_BYTES 2u
#define OPEN_CHAPTER_HEADER_BYTES 14u   /* "ALBOC" "02.00" + count */
#define SAVE_SLOT_COUNT 2u
#define LAYOUT_BLOCKS 3u                /* header, config, seal */
#define VOLUME_HEADER_PAGES 1u

#define UDS_BLOCK_SIZE 4096u

struct vdo_delta_coding
vdo_compute_delta_coding (uint32_t mean_delta)
{
  struct vdo_delta_coding coding;

  /* incr_keys is round(ln 2 * mean_delta) in integers: 836158 / 1206321
   * approximates ln 2, and the UDS code relies on this exact fraction. */
  coding.incr_keys = (uint32_t) ((836158ull * mean_delta + 603160ull)
                                 / 1206321ull);
  coding.min_bits = vdo_bits_per ((uint64_t) coding.incr_keys + 1);
  coding.min_keys = (1u << coding.min_bits) - coding.incr_keys;
  return coding;
}

uint64_t
vdo_delta_zone_memory_bytes (uint64_t memory_bytes, unsigned int zone_count)
{
  uint64_t share = memory_bytes / (zone_count ? zone_count : 1);

  return vdo_div_round_up (share, DELTA_ZONE_ALIGNMENT) * DELTA_ZONE_ALIGNMENT;
}

/* Expected bits of a full delta index: each entry has its payload and a
 * delta of about min_bits + 1.5 bits. */
static uint64_t
delta_index_bits (uint64_t entries, uint32_t mean_delta, uint32_t payload_bits)
{
  struct vdo_delta_coding coding = vdo_compute_delta_coding (mean_delta);

  return entries * (payload_bits + coding.min_bits + 1) + entries / 2;
}

/* Pages a closed chapter's index needs: the expected bits plus the list
 * offsets, over a page less one offset and one average list, which is
 * what packing whole lists can waste per page. */
static uint32_t
chapter_index_pages (const struct vdo_index_geometry *g)
{
  uint64_t bits = delta_index_bits (g->records_per_chapter,
                                    VDO_UDS_CHAPTER_MEAN_DELTA,
                                    g->chapter_payload_bits);
  uint64_t bits_per_list = bits / g->delta_lists_per_chapter;
  uint64_t page_bits;

  bits += (uint64_t) g->delta_lists_per_chapter * DELTA_LIST_OFFSET_BITS;
  page_bits = (VDO_UDS_BYTES_PER_PAGE - DELTA_PAGE_HEADER_BYTES) * 8
              - DELTA_LIST_OFFSET_BITS - bits_per_list;
  return (uint32_t) vdo_div_round_up (bits, page_bits);
}

static void
compute_sub_index (uint64_t records_per_chapter, uint32_t chapters,
                   struct vdo_volume_sub_index_params *p)
{
  uint64_t lists, chapters_held, expected_bytes;

  memset (p, 0, sizeof *p);
  p->records_per_chapter = records_per_chapter;
  p->chapters = chapters;
  lists = records_per_chapter * chapters / RECORDS_PER_DELTA_LIST;
  p->list_count = (uint32_t) (lists > MIN_DELTA_LISTS ? lists : MIN_DELTA_LISTS);
  p->address_bits = vdo_bits_per ((uint64_t) VDO_UDS_VOLUME_INDEX_MEAN_DELTA
                              * RECORDS_PER_DELTA_LIST - 1);
  p->chapter_bits = vdo_bits_per (chapters - 1);

  /* Room for entries of expired chapters not yet purged. */
  chapters_held = chapters + (chapters / CHAPTERS_PER_INVALID_CHAPTER
                              > MIN_INVALID_CHAPTERS
                              ? chapters / CHAPTERS_PER_INVALID_CHAPTER
                              : MIN_INVALID_CHAPTERS);
  p->mean_delta = (uint32_t) (((uint64_t) p->list_count << p->address_bits)
                              / (records_per_chapter * chapters_held));
  p->chapter_size_bits = delta_index_bits (records_per_chapter,
                                           p->mean_delta, p->chapter_bits);
  expected_bytes = p->chapter_size_bits * chapters_held / 8;
  p->memory_bytes = expected_bytes * 106 / 100;
  p->target_free_bytes = expected_bytes / 20;

  /* A save reserves one zone's worth of memory: one zone needs at least
   * as much as any split. */
  p->save_bytes = SUB_INDEX_HEADER_BYTES
                  + (uint64_t) p->list_count * FLUSH_CHAPTER_BYTES
                  + DELTA_INDEX_HEADER_BYTES
                  + (uint64_t) p->list_count * LIST_SAVE_RESERVE_BYTES
                  + vdo_delta_zone_memory_bytes (p->memory_bytes, 1);
}

/* Map mem to its base chapter count and record pages per chapter. */
static bool
decode_memory (uint32_t mem, uint32_t *base_chapters, uint32_t *record_pages)
{
  switch (mem) {
  case VDO_INDEX_MEMORY_256MB:
    *record_pages = SMALL_RECORD_PAGES;
    break;
  case VDO_INDEX_MEMORY_512MB:
    *record_pages = 2 * SMALL_RECORD_PAGES;
    break;
  case VDO_INDEX_MEMORY_768MB:
    *record_pages = 3 * SMALL_RECORD_PAGES;
    break;
  default:
    if (mem < 1 || mem > VDO_INDEX_MEMORY_MAX_GB)
      return false;
    *base_chapters = mem * CHAPTERS_PER_GB;
    *record_pages = FULL_RECORD_PAGES;
    return true;
  }
  *base_chapters = CHAPTERS_PER_GB;
  return true;
}

bool
vdo_index_memory_is_supported (uint32_t mem)
{
  uint32_t chapters, pages;

  return decode_memory (mem, &chapters, &pages);
}

/* The reduced settings of LVM-converted volumes (one chapter fewer). */
static bool
is_reduced_memory (uint32_t mem)
{
  int32_t value = (int32_t) mem;

  return value == -1280 || value == -1536 || value == -1792
         || (mem > 0x1000 && mem <= 0x1000 + VDO_INDEX_MEMORY_MAX_GB);
}

static int
reject_memory (uint32_t mem)
{
  if (is_reduced_memory (mem))
    vdo_log_error ("index memory setting 0x%08" PRIx32 " is a reduced "
                   "(LVM-converted) index, which is not supported", mem);
  else
    vdo_log_error ("index memory setting 0x%08" PRIx32 " (%" PRId32 ") is "
                   "not 0.25, 0.5, 0.75 or 1..1024 GB",
                   mem, (int32_t) mem);
  return VDO_BAD_INDEX_CONFIG;
}

int
vdo_compute_index_geometry (uint32_t mem, bool sparse,
                            struct vdo_index_geometry *g)
{
  uint32_t base_chapters, record_pages;
  uint64_t vi_bytes;

  if (!decode_memory (mem, &base_chapters, &record_pages))
    return reject_memory (mem);

  memset (g, 0, sizeof *g);
  g->mem = mem;
  g->sparse = sparse;
  g->record_pages_per_chapter = record_pages;
  g->records_per_chapter = (uint64_t) record_pages * VDO_UDS_RECORDS_PER_PAGE;
  if (sparse) {
    g->chapters_per_volume = base_chapters * SPARSE_CHAPTER_FACTOR;
    g->sparse_chapters_per_volume = (uint32_t) ((uint64_t) base_chapters
                                                * 19 / 2);
    g->sparse_sample_rate = VDO_UDS_SPARSE_SAMPLE_RATE;
  }
  else
    g->chapters_per_volume = base_chapters;
  g->dense_chapters_per_volume = g->chapters_per_volume
                                 - g->sparse_chapters_per_volume;
  g->records_per_volume = g->records_per_chapter * g->chapters_per_volume;

  g->chapter_payload_bits = vdo_bits_per (record_pages - 1);
  /* At least 64 records per list, hence the OR with 077. */
  g->chapter_delta_list_bits = vdo_bits_per ((g->records_per_chapter - 1) | 077)
                               - 6;
  g->delta_lists_per_chapter = 1u << g->chapter_delta_list_bits;
  g->chapter_address_bits = vdo_bits_per (VDO_UDS_CHAPTER_MEAN_DELTA - 1)
                            - g->chapter_delta_list_bits
                            + vdo_bits_per (g->records_per_chapter - 1);
  g->index_pages_per_chapter = chapter_index_pages (g);
  g->pages_per_chapter = g->index_pages_per_chapter + record_pages;
  g->pages_per_volume = (uint64_t) g->pages_per_chapter
                        * g->chapters_per_volume;

  if (sparse) {
    uint64_t hook_records = g->records_per_chapter / g->sparse_sample_rate;

    compute_sub_index (g->records_per_chapter - hook_records,
                       g->dense_chapters_per_volume, &g->non_hook);
    compute_sub_index (hook_records, g->chapters_per_volume, &g->hook);
    vi_bytes = SPARSE_HEADER_BYTES + g->non_hook.save_bytes
               + g->hook.save_bytes;
  }
  else {
    compute_sub_index (g->records_per_chapter, g->chapters_per_volume,
                       &g->non_hook);
    vi_bytes = g->non_hook.save_bytes;
  }

  g->volume_blocks = (g->pages_per_volume + VOLUME_HEADER_PAGES)
                     * (VDO_UDS_BYTES_PER_PAGE / UDS_BLOCK_SIZE);
  /* The save may be split into up to 16 zone regions, each rounding up:
   * one spare block per zone. */
  g->volume_index_blocks = vdo_div_round_up (vi_bytes + GUARD_LIST_BYTES,
                                         UDS_BLOCK_SIZE)
                           + VDO_UDS_MAX_ZONES;
  g->page_map_blocks = vdo_div_round_up (PAGE_MAP_HEADER_BYTES
                                     + PAGE_MAP_ENTRY_BYTES
                                     * (uint64_t) g->chapters_per_volume
                                     * (g->index_pages_per_chapter - 1),
                                     UDS_BLOCK_SIZE);
  g->open_chapter_blocks = vdo_div_round_up (OPEN_CHAPTER_HEADER_BYTES
                                         + VDO_UDS_RECORD_SIZE
                                         * g->records_per_chapter,
                                         UDS_BLOCK_SIZE);
  g->save_blocks = 1 + g->volume_index_blocks + g->page_map_blocks
                   + g->open_chapter_blocks;
  g->index_blocks = LAYOUT_BLOCKS + g->volume_blocks
                    + SAVE_SLOT_COUNT * g->save_blocks;
  return VDO_SUCCESS;
}

int
vdo_compute_index_blocks (uint32_t mem, bool sparse, block_count_t *blocks)
{
  struct vdo_index_geometry g;
  int result = vdo_compute_index_geometry (mem, sparse, &g);

  if (result != VDO_SUCCESS)
    return result;
  *blocks = g.index_blocks;
  return VDO_SUCCESS;
}

int
vdo_parse_index_memory (const char *text, uint32_t *mem)
{
  static const struct {
    const char *text;
    uint32_t mem;
  } fractions[] = {
    { "0.25", VDO_INDEX_MEMORY_256MB },
    { "0.5", VDO_INDEX_MEMORY_512MB },
    { "0.50", VDO_INDEX_MEMORY_512MB },
    { "0.75", VDO_INDEX_MEMORY_768MB },
  };
  uint32_t value = 0;
  const char *p;
  size_t i;

  if (text == NULL)
    text = "";
  for (i = 0; i < sizeof fractions / sizeof fractions[0]; i++) {
    if (strcmp (text, fractions[i].text) == 0) {
      *mem = fractions[i].mem;
      return VDO_SUCCESS;
    }
  }

  /* A whole number of GB; stop early so long input cannot overflow. */
  if (text[0] >= '1' && text[0] <= '9') {
    for (p = text; *p >= '0' && *p <= '9'
         && value <= VDO_INDEX_MEMORY_MAX_GB; p++)
      value = value * 10 + (uint32_t) (*p - '0');
    if (*p == '\0' && value <= VDO_INDEX_MEMORY_MAX_GB) {
      *mem = value;
      return VDO_SUCCESS;
    }
  }

  vdo_log_error ("invalid index memory size \"%s\": use 0.25, 0.5, 0.75 "
                 "or a whole number of GB from 1 to %u",
                 text, VDO_INDEX_MEMORY_MAX_GB);
  return VDO_BAD_INDEX_CONFIG;
}

int
vdo_format_index_memory (uint32_t mem, char buf[VDO_INDEX_MEMORY_TEXT_SIZE])
{
  switch (mem) {
  case VDO_INDEX_MEMORY_256MB:
    strcpy (buf, "0.25");
    return VDO_SUCCESS;
  case VDO_INDEX_MEMORY_512MB:
    strcpy (buf, "0.5");
    return VDO_SUCCESS;
  case VDO_INDEX_MEMORY_768MB:
    strcpy (buf, "0.75");
    return VDO_SUCCESS;
  default:
    /* Always leave text, so a dump of a foreign volume shows something. */
    snprintf (buf, VDO_INDEX_MEMORY_TEXT_SIZE, "%" PRId32, (int32_t) mem);
    if (!vdo_index_memory_is_supported (mem))
      return reject_memory (mem);
    return VDO_SUCCESS;
  }
}
