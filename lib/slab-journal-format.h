/* nbdkit-vdo: slab journal block encoding and journal points
 * (vdo-journals.md 4).
 *
 * Each slab journal block is a 36-byte header followed by 3-byte entries.
 * A block that holds block-map (tree page) increments keeps at most 1299
 * entries and a bitmap at offset 3933 marking which entries those are; a
 * data-only block holds up to 1353 entries.
 *
 * Journal points also live here: a slab journal header records the
 * (expanded) recovery journal point of its last entry, and reference
 * blocks record slab journal points as their commit points.
 */
#ifndef VDO_SLAB_JOURNAL_FORMAT_H
#define VDO_SLAB_JOURNAL_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"

/* The metadata type code of a slab journal block. */
enum {
  VDO_METADATA_SLAB_JOURNAL = 2,
};

#define VDO_SLAB_JOURNAL_HEADER_SIZE 36
#define VDO_SLAB_JOURNAL_PAYLOAD_SIZE                                   \
  (VDO_BLOCK_SIZE - VDO_SLAB_JOURNAL_HEADER_SIZE)
#define VDO_SLAB_JOURNAL_ENTRY_SIZE 3
/* Data-only blocks. */
#define VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK                              \
  (VDO_SLAB_JOURNAL_PAYLOAD_SIZE / VDO_SLAB_JOURNAL_ENTRY_SIZE)
/* Blocks with block-map increments hold VDO_SLAB_JOURNAL_FULL_ENTRIES
 * (constants.h) entries, then one type bit per entry. */
#define VDO_SLAB_JOURNAL_ENTRY_TYPES_SIZE                               \
  ((VDO_SLAB_JOURNAL_FULL_ENTRIES - 1) / 8 + 1)
#define VDO_SLAB_JOURNAL_ENTRY_TYPES_OFFSET                             \
  (VDO_SLAB_JOURNAL_HEADER_SIZE                                         \
   + VDO_SLAB_JOURNAL_ENTRY_SIZE * VDO_SLAB_JOURNAL_FULL_ENTRIES)

/* Slab block numbers are 23 bits on disk. */
#define VDO_SLAB_JOURNAL_MAX_SBN ((1u << 23) - 1)

/* A position in a journal: a block's sequence number and an entry index
 * within it.  Packed as (sequence << 16) | entry, keeping 48 bits of the
 * sequence number. */
struct journal_point {
  sequence_number_t sequence_number;
  uint16_t entry_count;
};

static inline uint64_t
vdo_pack_journal_point (const struct journal_point *point)
{
  return (point->sequence_number << 16) | point->entry_count;
}

static inline struct journal_point
vdo_unpack_journal_point (uint64_t packed)
{
  struct journal_point point = {
    .sequence_number = packed >> 16,
    .entry_count = packed & 0xFFFF,
  };
  return point;
}

/* The 8-byte little-endian form used on disk. */
void vdo_encode_journal_point (uint8_t *buf, const struct journal_point *point);
struct journal_point vdo_decode_journal_point (const uint8_t *buf);

/* Sequence numbers start at 1, so (0, x) means "no point". */
static inline bool
vdo_is_valid_journal_point (const struct journal_point *point)
{
  return point->sequence_number > 0;
}

static inline bool
vdo_before_journal_point (const struct journal_point *first,
                          const struct journal_point *second)
{
  return first->sequence_number < second->sequence_number
         || (first->sequence_number == second->sequence_number
             && first->entry_count < second->entry_count);
}

static inline bool
vdo_equal_journal_points (const struct journal_point *first,
                          const struct journal_point *second)
{
  return first->sequence_number == second->sequence_number
         && first->entry_count == second->entry_count;
}

/* Step to the next entry, moving to the next block after
 * entries_per_block entries. */
void vdo_advance_journal_point (struct journal_point *point,
                                uint16_t entries_per_block);

/* The point a slab journal records for one half of a recovery journal
 * entry: index * 2 for the increment, index * 2 + 1 for the decrement, so
 * both halves of one entry get distinct, increasing points. */
struct journal_point
vdo_expand_journal_point (const struct journal_point *recovery_point,
                          bool increment);

struct slab_journal_block_header {
  sequence_number_t head;               /* oldest block still needed */
  sequence_number_t sequence_number;
  struct journal_point recovery_point;  /* expanded point of the last entry */
  nonce_t nonce;
  uint8_t metadata_type;
  bool has_block_map_increments;
  uint16_t entry_count;
};

struct slab_journal_entry {
  uint32_t sbn;         /* data block offset within the slab */
  bool increment;
  bool is_block_map;    /* a tree-page increment (only with increment) */
};

/* The maximum entry count of a block of either kind. */
static inline unsigned int
vdo_slab_journal_entries_per_block (bool has_block_map_increments)
{
  return has_block_map_increments ? VDO_SLAB_JOURNAL_FULL_ENTRIES
                                  : VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK;
}

/* Where the block with this sequence number lives in the slab's journal
 * region (the size need not be a power of two). */
static inline block_count_t
vdo_slab_journal_block_offset (sequence_number_t sequence,
                               block_count_t journal_blocks)
{
  return sequence % journal_blocks;
}

/* Header codec: the first 36 bytes of a block. */
void vdo_encode_slab_journal_block_header
  (uint8_t *block, const struct slab_journal_block_header *header);
void vdo_decode_slab_journal_block_header
  (const uint8_t *block, struct slab_journal_block_header *header);

/* One packed 3-byte entry: sbn bits 0..22, increment in the top bit.  The
 * block-map flag is not part of it. */
void vdo_pack_slab_journal_entry (uint8_t *buf, uint32_t sbn, bool increment);
struct slab_journal_entry vdo_unpack_slab_journal_entry (const uint8_t *buf);

/* Entry 'index' of a whole block, with its block-map flag taken from the
 * type bitmap when the header (byte 33) says the block has one. */
struct slab_journal_entry
vdo_decode_slab_journal_entry (const uint8_t block[VDO_BLOCK_SIZE],
                               unsigned int index);

/* Encode a whole block: zeros, the header, header->entry_count entries
 * and, when header->has_block_map_increments is set, the type bitmap.
 * Returns UDS_INVALID_ARGUMENT when the count exceeds the block's
 * capacity, a block-map entry appears in a block without the flag, or a
 * block-map entry is a decrement. */
int vdo_encode_slab_journal_block
  (uint8_t block[VDO_BLOCK_SIZE], const struct slab_journal_block_header *header,
   const struct slab_journal_entry *entries);

/* Decode a whole block: the header and min(entry_count, capacity)
 * entries into entries[] (room for VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK).
 * Returns the number of entries decoded.  No validation. */
unsigned int vdo_decode_slab_journal_block
  (const uint8_t block[VDO_BLOCK_SIZE], struct slab_journal_block_header *header,
   struct slab_journal_entry *entries);

/* Why a block is unusable for replay, in the order checked
 * (vdo-journals.md 4.7 step 4). */
enum slab_journal_block_validity {
  VDO_SLAB_JOURNAL_BLOCK_VALID = 0,
  VDO_SLAB_JOURNAL_BLOCK_BAD_NONCE,
  VDO_SLAB_JOURNAL_BLOCK_BAD_METADATA_TYPE,
  VDO_SLAB_JOURNAL_BLOCK_WRONG_SEQUENCE,
  VDO_SLAB_JOURNAL_BLOCK_TOO_MANY_ENTRIES,
};

enum slab_journal_block_validity
vdo_check_slab_journal_block_header
  (const struct slab_journal_block_header *header, nonce_t nonce,
   sequence_number_t sequence);

const char *vdo_slab_journal_block_validity_name
  (enum slab_journal_block_validity validity);

/* The test applied to the tail block named by the slab summary at load:
 * a slab journal block of this volume (type 2, matching nonce). */
bool vdo_is_slab_journal_block_of_volume
  (const struct slab_journal_block_header *header, nonce_t nonce);

/* The full replay test: VDO_SUCCESS, or VDO_CORRUPT_JOURNAL when the
 * block is not this volume's block 'sequence' or has too many entries. */
int vdo_validate_slab_journal_block_header
  (const struct slab_journal_block_header *header, nonce_t nonce,
   sequence_number_t sequence);

#endif /* VDO_SLAB_JOURNAL_FORMAT_H */
