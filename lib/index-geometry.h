/* nbdkit-vdo: the UDS index geometry and the size of the index region
 * (uds-index.md 3, vdo-format.md 4.2).
 *
 * The geometry block stores only the memory setting and the sparse flag;
 * everything else (chapters, pages, volume-index parameters, the size of
 * each region of the index) is derived from those two values here, with
 * the same integer arithmetic as the UDS library, so vdoformat's index
 * region size comes out exactly.
 */
#ifndef VDO_INDEX_GEOMETRY_H
#define VDO_INDEX_GEOMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

/* index_config.mem values (vdo-format.md 2.4): signed -256, -512, -768
 * for the fractional sizes, otherwise a whole number of GB. */
#define VDO_INDEX_MEMORY_256MB 0xFFFFFF00u
#define VDO_INDEX_MEMORY_512MB 0xFFFFFE00u
#define VDO_INDEX_MEMORY_768MB 0xFFFFFD00u
#define VDO_INDEX_MEMORY_MAX_GB 1024u
#define VDO_INDEX_MEMORY_DEFAULT VDO_INDEX_MEMORY_256MB

/* Room for any text vdo_format_index_memory writes, down to the signed
 * raw value "-2147483648", and its NUL. */
#define VDO_INDEX_MEMORY_TEXT_SIZE 12

/* Fixed UDS parameters (uds-index.md 3.2). */
#define VDO_UDS_RECORD_SIZE 32                  /* 16-byte name + 16-byte data */
#define VDO_UDS_BYTES_PER_PAGE 32768
#define VDO_UDS_RECORDS_PER_PAGE (VDO_UDS_BYTES_PER_PAGE / VDO_UDS_RECORD_SIZE)
#define VDO_UDS_CHAPTER_MEAN_DELTA (1u << 16)
#define VDO_UDS_VOLUME_INDEX_MEAN_DELTA 4096u
#define VDO_UDS_SPARSE_SAMPLE_RATE 32u
#define VDO_UDS_MAX_ZONES 16u

/* The Huffman code of a delta index (uds-index.md 5.3): deltas below
 * min_keys take min_bits bits, each further incr_keys one bit more. */
struct vdo_delta_coding {
  uint32_t min_bits;
  uint32_t min_keys;
  uint32_t incr_keys;
};

/* One sub-index of the volume index (uds-index.md 5.6.2).  A dense index
 * has one; a sparse one splits into the non-hook sub-index (all other
 * names, dense chapters only) and the hook sub-index (sampled names, every
 * chapter). */
struct vdo_volume_sub_index_params {
  uint64_t records_per_chapter;
  uint32_t chapters;            /* chapters this sub-index covers */
  uint32_t list_count;
  uint32_t address_bits;
  uint32_t chapter_bits;
  uint32_t mean_delta;
  uint64_t chapter_size_bits;   /* expected bits of one full chapter */
  uint64_t memory_bytes;        /* delta memory: 106 % of a full index */
  uint64_t target_free_bytes;   /* 5 % of a full index */
  uint64_t save_bytes;          /* the sub-index's share of a save */
};

struct vdo_index_geometry {
  uint32_t mem;
  bool sparse;

  /* Chapters and records (uds-index.md 3.2). */
  uint32_t record_pages_per_chapter;
  uint32_t index_pages_per_chapter;
  uint32_t pages_per_chapter;
  uint32_t chapters_per_volume;
  uint32_t sparse_chapters_per_volume;
  uint32_t dense_chapters_per_volume;
  uint64_t records_per_chapter;
  uint64_t records_per_volume;
  uint64_t pages_per_volume;    /* not counting the header page */

  /* The chapter index. */
  uint32_t chapter_payload_bits;
  uint32_t chapter_delta_list_bits;
  uint32_t delta_lists_per_chapter;
  uint32_t chapter_address_bits;

  /* The volume index: a dense index uses non_hook only (hook is zero). */
  uint32_t sparse_sample_rate;  /* 0 when dense */
  struct vdo_volume_sub_index_params non_hook;
  struct vdo_volume_sub_index_params hook;

  /* The index region in 4 KiB blocks (uds-index.md 3.3): three layout
   * blocks, the volume, and two save slots. */
  block_count_t volume_blocks;
  block_count_t volume_index_blocks;
  block_count_t page_map_blocks;
  block_count_t open_chapter_blocks;
  block_count_t save_blocks;
  block_count_t index_blocks;
};

/* Whether vdoformat accepts mem (0.25, 0.5, 0.75 or 1..1024 GB).  The
 * reduced values of LVM-converted volumes are not supported. */
bool vdo_index_memory_is_supported (uint32_t mem);

/* Derive the whole index geometry.  Returns VDO_BAD_INDEX_CONFIG, logged,
 * for an unsupported mem. */
int vdo_compute_index_geometry (uint32_t mem, bool sparse,
                                struct vdo_index_geometry *geometry);

/* The size of the index region in 4 KiB blocks: the data region starts
 * at 1 + *blocks.  VDO_BAD_INDEX_CONFIG as above. */
int vdo_compute_index_blocks (uint32_t mem, bool sparse,
                              block_count_t *blocks);

/* Parse a --uds-memory-size argument: "0.25", "0.5", "0.50", "0.75", or
 * a decimal 1..1024 without sign, spaces or leading zeros.  Anything
 * else is VDO_BAD_INDEX_CONFIG, logged. */
int vdo_parse_index_memory (const char *text, uint32_t *mem);

/* The canonical text of mem ("0.25", "0.5", "0.75", "1".."1024") in buf.
 * For an unsupported mem, buf gets the raw signed value (e.g. "-1280")
 * and the result is VDO_BAD_INDEX_CONFIG, logged. */
int vdo_format_index_memory (uint32_t mem,
                             char buf[VDO_INDEX_MEMORY_TEXT_SIZE]);

/* The delta code for a mean delta (uds-index.md 5.3). */
struct vdo_delta_coding vdo_compute_delta_coding (uint32_t mean_delta);

/* Bytes of delta memory each of zone_count zones gets: an even share
 * rounded up to 64 KiB. */
uint64_t vdo_delta_zone_memory_bytes (uint64_t memory_bytes,
                                      unsigned int zone_count);

#endif /* VDO_INDEX_GEOMETRY_H */
