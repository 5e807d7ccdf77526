/* nbdkit-vdo: the dedupe index's on-disk encodings and layout. */
#include <config.h>

#include <inttypes.h>
#include <string.h>

#include "byte-order.h"
#include "checksum.h"
#include "index-format.h"
#include "math-util.h"
#include "logger.h"
#include "status.h"

/* Every block: CRC-32 of bytes 4.. at offset 0, then a magic. */
#define CRC_OFFSET 0
#define CRC_COVERED_OFFSET 4

static const uint8_t super_magic[8] = "VDOIDXSB";
static const uint8_t save_magic[8] = "VDOIDXSV";
static const uint8_t record_magic[4] = "VIRB";

/* Super block and save header fields. */
enum {
  SB_VERSION = 4,
  SB_MAGIC = 8,
  SB_NONCE = 16,
  SB_INSTANCE = 24,
  SB_MEM = 32,
  SB_FLAGS = 36,
  SB_RECORDS_PER_CHAPTER = 40,
  SB_CHAPTERS = 48,
  SB_DENSE_CHAPTERS = 52,
  SB_BLOCKS_PER_CHAPTER = 56,
  SB_VOLUME_INDEX_PAGES = 64,
  SB_SAVE_SLOT_BLOCKS = 72,
  SB_TOTAL_BLOCKS = 80,
};
#define SB_FLAG_SPARSE 1u

enum {
  SV_VERSION = 4,
  SV_MAGIC = 8,
  SV_NONCE = 16,
  SV_INSTANCE = 24,
  SV_SEQUENCE = 32,
  SV_TIMESTAMP = 40,
  SV_RECORDS_PER_CHAPTER = 48,
  SV_CHAPTERS = 56,
  SV_STREAM_CRC = 60,
  SV_VOLUME_INDEX_PAGES = 64,
  SV_OPEN_VCN = 72,
  SV_OPEN_RECORDS = 80,
  SV_SAVED_PAGES = 88,
  SV_STREAM_BYTES = 96,
  SV_STATE = 128,
};

enum {
  RB_MAGIC = 4,
  RB_INSTANCE = 8,
  RB_VCN = 16,
  RB_BLOCK_INDEX = 24,
  RB_COUNT = 28,
};

_Static_assert (VDO_INDEX_RECORDS_PER_BLOCK == 127, "32-byte header");
_Static_assert (SV_STATE + VDO_VOLUME_INDEX_STATE_SIZE <= VDO_BLOCK_SIZE,
                "the state fits the save header");

/* Sizes far beyond any UDS geometry are rejected, so no product below
 * can overflow. */
#define MAX_RECORDS_PER_CHAPTER (1ull << 28)
#define MAX_CHAPTERS (1u << 24)
#define MAX_VOLUME_INDEX_PAGES (1ull << 32)

static void
seal_block (uint8_t block[VDO_BLOCK_SIZE])
{
  put_le32 (block + CRC_OFFSET,
            vdo_crc32 (block + CRC_COVERED_OFFSET,
                       VDO_BLOCK_SIZE - CRC_COVERED_OFFSET));
}

static bool
block_crc_matches (const uint8_t block[VDO_BLOCK_SIZE])
{
  return get_le32 (block + CRC_OFFSET)
         == vdo_crc32 (block + CRC_COVERED_OFFSET,
                       VDO_BLOCK_SIZE - CRC_COVERED_OFFSET);
}

uint64_t
vdo_index_save_stream_bytes (const struct vdo_index_layout *layout,
                             uint64_t open_records, uint64_t saved_pages)
{
  uint64_t table = (uint64_t) layout->chapters
                   * (8 + 4 * (uint64_t) layout->blocks_per_chapter);

  return open_records * VDO_INDEX_RECORD_SIZE + table
         + vdo_div_round_up (layout->volume_index_pages, 8)
         + saved_pages * VDO_BLOCK_SIZE;
}

int
vdo_compute_index_layout (uint64_t records_per_chapter, uint32_t chapters,
                          uint64_t volume_index_pages,
                          struct vdo_index_layout *layout)
{
  block_count_t ring_blocks;

  if (records_per_chapter == 0 || records_per_chapter > MAX_RECORDS_PER_CHAPTER
      || chapters < 2 || chapters > MAX_CHAPTERS || volume_index_pages == 0
      || volume_index_pages > MAX_VOLUME_INDEX_PAGES) {
    vdo_log_error ("dedupe index of %" PRIu32 " chapters of %" PRIu64
                   " records and %" PRIu64 " volume index pages is out of "
                   "range", chapters, records_per_chapter,
                   volume_index_pages);
    return VDO_BAD_INDEX_CONFIG;
  }

  memset (layout, 0, sizeof *layout);
  layout->records_per_chapter = records_per_chapter;
  layout->chapters = chapters;
  layout->blocks_per_chapter =
    (uint32_t) vdo_div_round_up (records_per_chapter, VDO_INDEX_RECORDS_PER_BLOCK);
  layout->volume_index_pages = volume_index_pages;
  layout->save_stream_bytes =
    vdo_index_save_stream_bytes (layout, records_per_chapter,
                                 volume_index_pages);
  layout->save_slot_blocks =
    1 + vdo_div_round_up (layout->save_stream_bytes, VDO_BLOCK_SIZE);

  ring_blocks = (block_count_t) chapters * layout->blocks_per_chapter;
  layout->save_slot_start[0] = VDO_INDEX_CHAPTER_RING_START + ring_blocks;
  layout->save_slot_start[1] = layout->save_slot_start[0]
                               + layout->save_slot_blocks;
  layout->total_blocks = layout->save_slot_start[1]
                         + layout->save_slot_blocks;
  return VDO_SUCCESS;
}

/* --- Super block ---------------------------------------------------- */

void
vdo_encode_index_super_block (const struct vdo_index_super_block *super,
                              uint8_t block[VDO_BLOCK_SIZE])
{
  memset (block, 0, VDO_BLOCK_SIZE);
  put_le32 (block + SB_VERSION, VDO_INDEX_FORMAT_VERSION);
  memcpy (block + SB_MAGIC, super_magic, sizeof super_magic);
  put_le64 (block + SB_NONCE, super->nonce);
  put_le64 (block + SB_INSTANCE, super->instance_nonce);
  put_le32 (block + SB_MEM, super->mem);
  put_le32 (block + SB_FLAGS, super->sparse ? SB_FLAG_SPARSE : 0);
  put_le64 (block + SB_RECORDS_PER_CHAPTER, super->records_per_chapter);
  put_le32 (block + SB_CHAPTERS, super->chapters);
  put_le32 (block + SB_DENSE_CHAPTERS, super->dense_chapters);
  put_le32 (block + SB_BLOCKS_PER_CHAPTER, super->blocks_per_chapter);
  put_le64 (block + SB_VOLUME_INDEX_PAGES, super->volume_index_pages);
  put_le64 (block + SB_SAVE_SLOT_BLOCKS, super->save_slot_blocks);
  put_le64 (block + SB_TOTAL_BLOCKS, super->total_blocks);
  seal_block (block);
}

int
vdo_decode_index_super_block (const uint8_t block[VDO_BLOCK_SIZE],
                              struct vdo_index_super_block *super)
{
  if (memcmp (block + SB_MAGIC, super_magic, sizeof super_magic) != 0)
    return VDO_BAD_MAGIC;
  if (!block_crc_matches (block))
    return VDO_CHECKSUM_MISMATCH;
  if (get_le32 (block + SB_VERSION) != VDO_INDEX_FORMAT_VERSION)
    return VDO_UNSUPPORTED_VERSION;

  memset (super, 0, sizeof *super);
  super->nonce = get_le64 (block + SB_NONCE);
  super->instance_nonce = get_le64 (block + SB_INSTANCE);
  super->mem = get_le32 (block + SB_MEM);
  super->sparse = (get_le32 (block + SB_FLAGS) & SB_FLAG_SPARSE) != 0;
  super->records_per_chapter = get_le64 (block + SB_RECORDS_PER_CHAPTER);
  super->chapters = get_le32 (block + SB_CHAPTERS);
  super->dense_chapters = get_le32 (block + SB_DENSE_CHAPTERS);
  super->blocks_per_chapter = get_le32 (block + SB_BLOCKS_PER_CHAPTER);
  super->volume_index_pages = get_le64 (block + SB_VOLUME_INDEX_PAGES);
  super->save_slot_blocks = get_le64 (block + SB_SAVE_SLOT_BLOCKS);
  super->total_blocks = get_le64 (block + SB_TOTAL_BLOCKS);
  return VDO_SUCCESS;
}

/* --- Record blocks -------------------------------------------------- */

void
vdo_encode_record_block (const struct vdo_record_block_header *header,
                         const struct vdo_index_record *records,
                         uint8_t block[VDO_BLOCK_SIZE])
{
  uint32_t i;

  memset (block, 0, VDO_BLOCK_SIZE);
  memcpy (block + RB_MAGIC, record_magic, sizeof record_magic);
  put_le64 (block + RB_INSTANCE, header->instance_nonce);
  put_le64 (block + RB_VCN, header->vcn);
  put_le32 (block + RB_BLOCK_INDEX, header->block_index);
  put_le32 (block + RB_COUNT, header->record_count);
  for (i = 0; i < header->record_count; i++) {
    uint8_t *record = block + VDO_INDEX_BLOCK_HEADER_SIZE
                      + (size_t) i * VDO_INDEX_RECORD_SIZE;

    memcpy (record, records[i].name.bytes, VDO_CHUNK_NAME_SIZE);
    memcpy (record + VDO_CHUNK_NAME_SIZE, records[i].advice, VDO_ADVICE_SIZE);
  }
  seal_block (block);
}

int
vdo_decode_record_block_header (const uint8_t block[VDO_BLOCK_SIZE],
                                struct vdo_record_block_header *header)
{
  if (memcmp (block + RB_MAGIC, record_magic, sizeof record_magic) != 0)
    return VDO_BAD_MAGIC;
  if (!block_crc_matches (block))
    return VDO_CHECKSUM_MISMATCH;

  header->instance_nonce = get_le64 (block + RB_INSTANCE);
  header->vcn = get_le64 (block + RB_VCN);
  header->block_index = get_le32 (block + RB_BLOCK_INDEX);
  header->record_count = get_le32 (block + RB_COUNT);
  if (header->record_count > VDO_INDEX_RECORDS_PER_BLOCK)
    return UDS_CORRUPT_DATA;
  return VDO_SUCCESS;
}

uint32_t
vdo_record_block_count (const uint8_t block[VDO_BLOCK_SIZE])
{
  uint32_t count = get_le32 (block + RB_COUNT);

  /* Never trust it past the block's end, validated or not. */
  return count <= VDO_INDEX_RECORDS_PER_BLOCK ? count : 0;
}

bool
vdo_search_record_block (const uint8_t *block, uint32_t count,
                         const struct vdo_chunk_name *name,
                         uint8_t advice[VDO_ADVICE_SIZE])
{
  uint32_t low = 0, high = count;

  while (low < high) {
    uint32_t middle = low + (high - low) / 2;
    const uint8_t *record = vdo_record_block_record (block, middle);
    int order = memcmp (name->bytes, record, VDO_CHUNK_NAME_SIZE);

    if (order == 0) {
      memcpy (advice, record + VDO_CHUNK_NAME_SIZE, VDO_ADVICE_SIZE);
      return true;
    }
    if (order < 0)
      high = middle;
    else
      low = middle + 1;
  }
  return false;
}

uint32_t
vdo_chunk_name_prefix (const struct vdo_chunk_name *name)
{
  return (uint32_t) name->bytes[0] << 24 | (uint32_t) name->bytes[1] << 16
         | (uint32_t) name->bytes[2] << 8 | name->bytes[3];
}

void
vdo_chapter_block_range (const uint32_t *prefixes, uint32_t count,
                         uint32_t prefix, uint32_t *first, uint32_t *last)
{
  uint32_t low = 0, high = count;

  /* *last: the last block whose first name's prefix is <= PREFIX; a name
   * sorts at or after that block's start and before the next's. */
  while (low < high) {
    uint32_t middle = low + (high - low) / 2;

    if (prefixes[middle] <= prefix)
      low = middle + 1;
    else
      high = middle;
  }
  *last = low == 0 ? 0 : low - 1;

  /* *first: back over blocks that start with PREFIX itself, whose
   * predecessor may end with the same prefix. */
  *first = *last;
  while (*first > 0 && prefixes[*first] == prefix)
    (*first)--;
}

/* --- Save slots ----------------------------------------------------- */

void
vdo_encode_index_save_header (const struct vdo_index_save_header *header,
                              uint8_t block[VDO_BLOCK_SIZE])
{
  memset (block, 0, VDO_BLOCK_SIZE);
  put_le32 (block + SV_VERSION, VDO_INDEX_FORMAT_VERSION);
  memcpy (block + SV_MAGIC, save_magic, sizeof save_magic);
  put_le64 (block + SV_NONCE, header->nonce);
  put_le64 (block + SV_INSTANCE, header->instance_nonce);
  put_le64 (block + SV_SEQUENCE, header->sequence);
  put_le64 (block + SV_TIMESTAMP, header->timestamp);
  put_le64 (block + SV_RECORDS_PER_CHAPTER, header->records_per_chapter);
  put_le32 (block + SV_CHAPTERS, header->chapters);
  put_le32 (block + SV_STREAM_CRC, header->stream_crc);
  put_le64 (block + SV_VOLUME_INDEX_PAGES, header->volume_index_pages);
  put_le64 (block + SV_OPEN_VCN, header->open_vcn);
  put_le64 (block + SV_OPEN_RECORDS, header->open_records);
  put_le64 (block + SV_SAVED_PAGES, header->saved_pages);
  put_le64 (block + SV_STREAM_BYTES, header->stream_bytes);
  memcpy (block + SV_STATE, header->volume_index_state,
          VDO_VOLUME_INDEX_STATE_SIZE);
  seal_block (block);
}

int
vdo_decode_index_save_header (const uint8_t block[VDO_BLOCK_SIZE],
                              struct vdo_index_save_header *header)
{
  if (memcmp (block + SV_MAGIC, save_magic, sizeof save_magic) != 0)
    return VDO_BAD_MAGIC;
  if (!block_crc_matches (block))
    return VDO_CHECKSUM_MISMATCH;
  if (get_le32 (block + SV_VERSION) != VDO_INDEX_FORMAT_VERSION)
    return VDO_UNSUPPORTED_VERSION;

  memset (header, 0, sizeof *header);
  header->nonce = get_le64 (block + SV_NONCE);
  header->instance_nonce = get_le64 (block + SV_INSTANCE);
  header->sequence = get_le64 (block + SV_SEQUENCE);
  header->timestamp = get_le64 (block + SV_TIMESTAMP);
  header->records_per_chapter = get_le64 (block + SV_RECORDS_PER_CHAPTER);
  header->chapters = get_le32 (block + SV_CHAPTERS);
  header->stream_crc = get_le32 (block + SV_STREAM_CRC);
  header->volume_index_pages = get_le64 (block + SV_VOLUME_INDEX_PAGES);
  header->open_vcn = get_le64 (block + SV_OPEN_VCN);
  header->open_records = get_le64 (block + SV_OPEN_RECORDS);
  header->saved_pages = get_le64 (block + SV_SAVED_PAGES);
  header->stream_bytes = get_le64 (block + SV_STREAM_BYTES);
  memcpy (header->volume_index_state, block + SV_STATE,
          VDO_VOLUME_INDEX_STATE_SIZE);
  return VDO_SUCCESS;
}
