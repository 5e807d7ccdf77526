/* nbdkit-vdo: the dedupe index's own on-disk format (dedupe-index.h).
 *
 * Pure functions over bytes.  The index region, in blocks from its
 * start:
 *
 *   0        never written, except zeroed when an index is created, so
 *            the kernel's UDS finds no super block there and creates
 *            its own index (uds-index.md 4.1, 8)
 *   1        this index's super block
 *   2 ..     the chapter ring: chapters x blocks_per_chapter record
 *            blocks; chapter VCN lives in physical chapter VCN mod
 *            chapters
 *   then     save slot 0, then save slot 1, save_slot_blocks each
 *
 * Every block starts with the CRC-32 (checksum.h) of the rest of the
 * block, then a magic, so a torn or foreign block never decodes.
 *
 * A record block holds up to VDO_INDEX_RECORDS_PER_BLOCK records of a
 * closed chapter, sorted by name (memcmp order) across the chapter.
 *
 * A save slot is a header block followed by one stream of bytes whose
 * CRC the header holds: the open chapter's records (32 bytes each), the
 * chapter table (per physical chapter: its VCN as u64, or
 * VDO_INDEX_NO_VCN, then the first-name prefix of each of its blocks as
 * u32), a bitmap of the volume index pages saved (bit N of byte N / 8),
 * and those pages in order.  Integers are little-endian.  The header is
 * written last: a slot whose header does not decode holds no save.
 */
#ifndef VDO_INDEX_FORMAT_H
#define VDO_INDEX_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"
#include "dedupe-format.h"
#include "volume-index.h"

#define VDO_INDEX_FORMAT_VERSION 1
#define VDO_INDEX_RECORD_SIZE (VDO_CHUNK_NAME_SIZE + VDO_ADVICE_SIZE)
#define VDO_INDEX_BLOCK_HEADER_SIZE 32
#define VDO_INDEX_RECORDS_PER_BLOCK \
  ((VDO_BLOCK_SIZE - VDO_INDEX_BLOCK_HEADER_SIZE) / VDO_INDEX_RECORD_SIZE)
#define VDO_INDEX_SAVE_SLOTS 2
#define VDO_INDEX_NO_VCN UINT64_MAX

/* Region blocks of the fixed parts. */
#define VDO_INDEX_UDS_BLOCK 0
#define VDO_INDEX_SUPER_BLOCK 1
#define VDO_INDEX_CHAPTER_RING_START 2

struct vdo_index_record {
  struct vdo_chunk_name name;
  uint8_t advice[VDO_ADVICE_SIZE];
};

/* Where everything lives, in blocks from the region start. */
struct vdo_index_layout {
  uint64_t records_per_chapter;
  uint32_t chapters;
  uint32_t blocks_per_chapter;
  uint64_t volume_index_pages;
  block_count_t save_slot_start[VDO_INDEX_SAVE_SLOTS];
  block_count_t save_slot_blocks;
  /* Bytes of a full save's stream (the slot's blocks after its header). */
  uint64_t save_stream_bytes;
  block_count_t total_blocks;
};

/* Lay out an index of CHAPTERS chapters of RECORDS_PER_CHAPTER records
 * whose volume index saves as VOLUME_INDEX_PAGES pages at most.
 * VDO_BAD_INDEX_CONFIG (logged) when a size is zero or absurd. */
int vdo_compute_index_layout (uint64_t records_per_chapter, uint32_t chapters,
                              uint64_t volume_index_pages,
                              struct vdo_index_layout *layout);

/* The region block of block BLOCK of physical chapter CHAPTER. */
static inline block_count_t
vdo_index_chapter_block (const struct vdo_index_layout *layout,
                         uint32_t chapter, uint32_t block)
{
  return VDO_INDEX_CHAPTER_RING_START
         + (block_count_t) chapter * layout->blocks_per_chapter + block;
}

/* --- Super block ---------------------------------------------------- */

struct vdo_index_super_block {
  nonce_t nonce;                /* the VDO's */
  uint64_t instance_nonce;      /* random, new at every create */
  uint32_t mem;
  bool sparse;
  uint64_t records_per_chapter;
  uint32_t chapters;
  uint32_t dense_chapters;
  uint32_t blocks_per_chapter;
  uint64_t volume_index_pages;
  block_count_t save_slot_blocks;
  block_count_t total_blocks;
};

void vdo_encode_index_super_block (const struct vdo_index_super_block *super,
                                   uint8_t block[VDO_BLOCK_SIZE]);
/* VDO_BAD_MAGIC, VDO_CHECKSUM_MISMATCH or VDO_UNSUPPORTED_VERSION for a
 * block that is not a super block of this format; not logged. */
int vdo_decode_index_super_block (const uint8_t block[VDO_BLOCK_SIZE],
                                  struct vdo_index_super_block *super);

/* --- Record blocks -------------------------------------------------- */

struct vdo_record_block_header {
  uint64_t instance_nonce;
  uint64_t vcn;
  uint32_t block_index;         /* within its chapter */
  uint32_t record_count;
};

/* Encode HEADER and its record_count RECORDS (already sorted); the rest
 * of the block is zero. */
void vdo_encode_record_block (const struct vdo_record_block_header *header,
                              const struct vdo_index_record *records,
                              uint8_t block[VDO_BLOCK_SIZE]);
/* VDO_BAD_MAGIC, VDO_CHECKSUM_MISMATCH, or UDS_CORRUPT_DATA for a count
 * out of range; not logged. */
int vdo_decode_record_block_header (const uint8_t block[VDO_BLOCK_SIZE],
                                    struct vdo_record_block_header *header);

/* The record count field as stored, unchecked: for blocks already
 * validated (or zeroed, which reads as empty). */
uint32_t vdo_record_block_count (const uint8_t block[VDO_BLOCK_SIZE]);

/* Record I of a block. */
static inline const uint8_t *
vdo_record_block_record (const uint8_t *block, uint32_t i)
{
  return block + VDO_INDEX_BLOCK_HEADER_SIZE
         + (size_t) i * VDO_INDEX_RECORD_SIZE;
}

/* Binary search a block's COUNT sorted records for NAME; copies the
 * advice and returns true when found. */
bool vdo_search_record_block (const uint8_t *block, uint32_t count,
                              const struct vdo_chunk_name *name,
                              uint8_t advice[VDO_ADVICE_SIZE]);

/* The big-endian u32 of a name's first bytes: the order of prefixes is
 * the memcmp order of names. */
uint32_t vdo_chunk_name_prefix (const struct vdo_chunk_name *name);

/* Given the first-name prefixes of a chapter's COUNT blocks
 * (non-decreasing), the blocks [*first, *last] that may hold a name
 * with PREFIX: normally one, two when a neighbour starts with it too. */
void vdo_chapter_block_range (const uint32_t *prefixes, uint32_t count,
                              uint32_t prefix, uint32_t *first,
                              uint32_t *last);

/* --- Save slots ----------------------------------------------------- */

struct vdo_index_save_header {
  nonce_t nonce;
  uint64_t instance_nonce;
  uint64_t sequence;            /* the newer of two slots has the higher */
  uint64_t timestamp;           /* seconds since the epoch, for the log */
  uint64_t records_per_chapter;
  uint32_t chapters;
  uint64_t volume_index_pages;
  uint64_t open_vcn;
  uint64_t open_records;
  uint64_t saved_pages;         /* pages present in the bitmap */
  uint64_t stream_bytes;
  uint32_t stream_crc;          /* vdo_crc32 of the stream */
  uint8_t volume_index_state[VDO_VOLUME_INDEX_STATE_SIZE];
};

void vdo_encode_index_save_header (const struct vdo_index_save_header *header,
                                   uint8_t block[VDO_BLOCK_SIZE]);
/* As vdo_decode_index_super_block; an invalidated (zeroed) slot header
 * is VDO_CHECKSUM_MISMATCH. */
int vdo_decode_index_save_header (const uint8_t block[VDO_BLOCK_SIZE],
                                  struct vdo_index_save_header *header);

/* Bytes of a save's stream holding OPEN_RECORDS records and SAVED_PAGES
 * volume index pages. */
uint64_t vdo_index_save_stream_bytes (const struct vdo_index_layout *layout,
                                      uint64_t open_records,
                                      uint64_t saved_pages);

#endif /* VDO_INDEX_FORMAT_H */
