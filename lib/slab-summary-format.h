/* nbdkit-vdo: slab summary encoding (vdo-journals.md 5).
 *
 * The summary partition is 64 blocks: 16 zone regions of 4 blocks, each
 * region holding a 2-byte entry for every possible slab (8192).  Only the
 * region of zone (slab mod zone_count) is authoritative for a slab; a
 * zone_count of 0 in the super block means the summary was never written
 * and must not be read.
 */
#ifndef VDO_SLAB_SUMMARY_FORMAT_H
#define VDO_SLAB_SUMMARY_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

#define VDO_SLAB_SUMMARY_ENTRY_SIZE 2
#define VDO_SLAB_SUMMARY_FULLNESS_HINT_BITS 6
#define VDO_SLAB_SUMMARY_MAX_FULLNESS_HINT                              \
  ((1 << VDO_SLAB_SUMMARY_FULLNESS_HINT_BITS) - 1)

struct slab_summary_entry {
  /* The slab journal tail mod the journal size: the offset of the next
   * block to be written, not the last written one. */
  uint8_t tail_block_offset;
  uint8_t fullness_hint;        /* 0: nothing free; else ~free >> hint_shift */
  bool load_ref_counts;         /* reference blocks were written; sticky */
  bool is_dirty;                /* journal may hold unapplied entries */
};

void vdo_encode_slab_summary_entry (uint8_t *buf,
                                    const struct slab_summary_entry *entry);
struct slab_summary_entry vdo_decode_slab_summary_entry (const uint8_t *buf);

/* Whole summary blocks of VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK entries. */
void vdo_encode_slab_summary_block
  (uint8_t block[VDO_BLOCK_SIZE],
   const struct slab_summary_entry entries[VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK]);
void vdo_decode_slab_summary_block
  (const uint8_t block[VDO_BLOCK_SIZE],
   struct slab_summary_entry entries[VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK]);

/* Addressing, in blocks from the start of the summary partition. */
static inline block_count_t
vdo_slab_summary_zone_first_block (unsigned int zone)
{
  return (block_count_t) VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE * zone;
}

static inline block_count_t
vdo_slab_summary_block_for_slab (unsigned int zone, unsigned int slab)
{
  return vdo_slab_summary_zone_first_block (zone)
         + slab / VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK;
}

/* The entry's index within its block, and its byte offset there. */
static inline unsigned int
vdo_slab_summary_entry_index (unsigned int slab)
{
  return slab % VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK;
}

static inline size_t
vdo_slab_summary_entry_offset (unsigned int slab)
{
  return (size_t) VDO_SLAB_SUMMARY_ENTRY_SIZE
         * vdo_slab_summary_entry_index (slab);
}

/* The zone whose region holds the slab's authoritative entry.
 * zone_count must not be 0. */
static inline unsigned int
vdo_slab_summary_zone_for_slab (unsigned int slab, unsigned int zone_count)
{
  return slab % zone_count;
}

/* slab_bits - 6, so a whole slab's free count fits the 6-bit hint. */
unsigned int vdo_slab_summary_hint_shift (unsigned int slab_bits);

/* 0 only when nothing is free; otherwise free >> hint_shift, at least 1. */
uint8_t vdo_compute_fullness_hint (block_count_t free_blocks,
                                   unsigned int hint_shift);

/* The entry written at the first load of a new volume and by a read-only
 * rebuild: offset 0, hint for an empty slab, clean, nothing to load. */
struct slab_summary_entry
vdo_default_slab_summary_entry (block_count_t data_blocks,
                                unsigned int slab_bits);

/* The offset of the last slab journal block written, from the stored
 * next-block offset (journal_blocks is the slab journal size). */
static inline block_count_t
vdo_slab_summary_last_block_offset (const struct slab_summary_entry *entry,
                                    block_count_t journal_blocks)
{
  return entry->tail_block_offset == 0 ? journal_blocks - 1
                                       : entry->tail_block_offset - 1u;
}

/* Whether the entry says the slab journal was never written (offset 0 and
 * no reference blocks to load): tail = head = 1, all counters zero. */
static inline bool
vdo_slab_summary_entry_is_blank (const struct slab_summary_entry *entry)
{
  return entry->tail_block_offset == 0 && !entry->load_ref_counts;
}

#endif /* VDO_SLAB_SUMMARY_FORMAT_H */
