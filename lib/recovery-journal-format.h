/* nbdkit-vdo: recovery journal block encoding (vdo-journals.md 1).
 *
 * A journal block is 8 sectors: sector 0 holds the 53-byte block header,
 * sectors 1..7 each start with a 3-byte sector header followed by packed
 * entries.  Format 2 (metadata type 3) is what current kernels write; the
 * old format 1 (type 1) is decoded for reading old journals only.
 *
 * Everything here is a pure function over byte buffers: the rules a
 * reader applies to decide which blocks and sectors to trust are the
 * predicates at the end; which entries to replay is left to recovery.
 */
#ifndef VDO_RECOVERY_JOURNAL_FORMAT_H
#define VDO_RECOVERY_JOURNAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block-map-format.h"
#include "constants.h"

/* Metadata type codes stored in the block header. */
enum {
  VDO_METADATA_RECOVERY_JOURNAL = 1,    /* format 1, read only */
  VDO_METADATA_RECOVERY_JOURNAL_2 = 3,  /* format 2, written */
};

#define VDO_RECOVERY_JOURNAL_HEADER_SIZE 53
#define VDO_RECOVERY_JOURNAL_SECTOR_HEADER_SIZE 3

/* Format 2: 16-byte entries, 31 per sector, sectors 1..7 used. */
#define VDO_RECOVERY_JOURNAL_ENTRY_SIZE 16
#define VDO_RECOVERY_JOURNAL_ENTRIES_PER_SECTOR                         \
  ((VDO_SECTOR_SIZE - VDO_RECOVERY_JOURNAL_SECTOR_HEADER_SIZE)          \
   / VDO_RECOVERY_JOURNAL_ENTRY_SIZE)
#define VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK                          \
  (VDO_RECOVERY_JOURNAL_ENTRIES_PER_SECTOR * (VDO_SECTORS_PER_BLOCK - 1))

/* Format 1: 11-byte entries, 46 per sector but only 311 per block, so
 * sector 7 holds at most 35. */
#define VDO_RECOVERY_JOURNAL_1_ENTRY_SIZE 11
#define VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_SECTOR                       \
  ((VDO_SECTOR_SIZE - VDO_RECOVERY_JOURNAL_SECTOR_HEADER_SIZE)          \
   / VDO_RECOVERY_JOURNAL_1_ENTRY_SIZE)
#define VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_BLOCK 311
#define VDO_RECOVERY_JOURNAL_1_ENTRIES_IN_LAST_SECTOR                   \
  (VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_BLOCK                             \
   % VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_SECTOR)

/* Format 2 operations (vdo-journals.md 1.7). */
enum vdo_journal_operation {
  VDO_JOURNAL_DATA_REMAPPING = 0,
  VDO_JOURNAL_BLOCK_MAP_REMAPPING = 1,
};

/* Format 1 operations: each entry was half of a remapping. */
enum vdo_journal_operation_1 {
  VDO_JOURNAL_DATA_DECREMENT = 0,
  VDO_JOURNAL_DATA_INCREMENT = 1,
  VDO_JOURNAL_BLOCK_MAP_DECREMENT = 2,
  VDO_JOURNAL_BLOCK_MAP_INCREMENT = 3,
};

/* The block header in its logical order; the on-disk order differs. */
struct recovery_block_header {
  sequence_number_t block_map_head;
  sequence_number_t slab_journal_head;
  sequence_number_t sequence_number;
  nonce_t nonce;
  uint8_t metadata_type;
  uint16_t entry_count;
  block_count_t logical_blocks_used;    /* as of when the block was opened */
  block_count_t block_map_data_blocks;  /* likewise */
  uint8_t check_byte;
  uint8_t recovery_count;
};

struct recovery_journal_sector_header {
  uint8_t check_byte;
  uint8_t recovery_count;
  uint8_t entry_count;
};

/* One decoded entry.  For format 1, operation is an
 * enum vdo_journal_operation_1, the single stored location is in
 * mapping, and unmapping is (0, unmapped). */
struct recovery_journal_entry {
  uint8_t operation;
  physical_block_number_t slot_pbn;     /* the block-map page */
  uint16_t slot;                        /* the entry within that page */
  struct vdo_data_location mapping;     /* packed as in block-map pages */
  struct vdo_data_location unmapping;
};

/* Sequence numbers to blocks (vdo-journals.md 1.2).  journal_size must be
 * a power of two. */
static inline block_count_t
vdo_recovery_journal_block_index (sequence_number_t sequence,
                                  block_count_t journal_size)
{
  return sequence & (journal_size - 1);
}

static inline physical_block_number_t
vdo_recovery_journal_block_pbn (physical_block_number_t journal_origin,
                                block_count_t journal_size,
                                sequence_number_t sequence)
{
  return journal_origin + vdo_recovery_journal_block_index (sequence,
                                                            journal_size);
}

/* The top bit is always set so a zeroed sector never matches; the low 7
 * bits count laps around the journal. */
static inline uint8_t
vdo_recovery_journal_check_byte (sequence_number_t sequence,
                                 block_count_t journal_size)
{
  return 0x80 | ((sequence / journal_size) & 0x7F);
}

/* The recovery count byte written in every block of one load. */
static inline uint8_t
vdo_recovery_journal_recovery_count (uint64_t complete_recoveries)
{
  return complete_recoveries & 0xFF;
}

/* Entries a sector (1..7) of this format can hold; 0 for sector 0, an
 * out-of-range sector or an unknown metadata type. */
unsigned int vdo_recovery_journal_sector_capacity (uint8_t metadata_type,
                                                   unsigned int sector);

/* Entries a whole block of this format can hold (0 if unknown). */
unsigned int vdo_recovery_journal_block_capacity (uint8_t metadata_type);

/* Byte offset, within the block, of entry 'entry' (0-based, in journal
 * order) of a block of this format.  Entries fill sector 1 first.  The
 * entry must be below the block capacity. */
size_t vdo_recovery_journal_entry_offset (uint8_t metadata_type,
                                          unsigned int entry);

/* Header codec: the first 53 bytes of a block. */
void vdo_encode_recovery_block_header
  (uint8_t *block, const struct recovery_block_header *header);
void vdo_decode_recovery_block_header
  (const uint8_t *block, struct recovery_block_header *header);

/* Sector header codec: the first 3 bytes of a sector. */
void vdo_encode_recovery_journal_sector_header
  (uint8_t *sector, const struct recovery_journal_sector_header *header);
void vdo_decode_recovery_journal_sector_header
  (const uint8_t *sector, struct recovery_journal_sector_header *header);

/* Format 2 entry codec (16 bytes).  Fields wider than their on-disk
 * width (operation 2 bits, slot 10, PBNs 36, states 4) are truncated. */
void vdo_encode_recovery_journal_entry
  (uint8_t *buf, const struct recovery_journal_entry *entry);
void vdo_decode_recovery_journal_entry
  (const uint8_t *buf, struct recovery_journal_entry *entry);

/* Format 1 entry codec (11 bytes): the operation word, the page PBN and
 * the mapping; unmapping is ignored when encoding. */
void vdo_encode_recovery_journal_entry_1
  (uint8_t *buf, const struct recovery_journal_entry *entry);
void vdo_decode_recovery_journal_entry_1
  (const uint8_t *buf, struct recovery_journal_entry *entry);

/* Turn a decoded format 1 entry into its format 2 meaning: increments
 * become remappings from (0, unmapped); decrements have no format 2
 * equivalent and return false (a reader skips them). */
bool vdo_convert_recovery_journal_entry_1
  (const struct recovery_journal_entry *old,
   struct recovery_journal_entry *entry);

/* Format a whole format 2 block as the kernel writes it: zeros, then the
 * header, then header->entry_count entries packed sector by sector, each
 * started sector carrying the header's check byte and recovery count.
 * Sector 1 is always started.  Returns UDS_INVALID_ARGUMENT if the header
 * is not format 2 or holds more entries than a block. */
int vdo_encode_recovery_block (uint8_t block[VDO_BLOCK_SIZE],
                               const struct recovery_block_header *header,
                               const struct recovery_journal_entry *entries);

/* Validity of a block header for the current volume, in the order the
 * reader checks (vdo-journals.md 1.8). */
enum recovery_block_validity {
  VDO_RECOVERY_BLOCK_VALID = 0,
  VDO_RECOVERY_BLOCK_BAD_NONCE,           /* another volume, or never written */
  VDO_RECOVERY_BLOCK_BAD_RECOVERY_COUNT,  /* written before the last recovery */
  VDO_RECOVERY_BLOCK_BAD_METADATA_TYPE,   /* neither format 1 nor 2 */
  VDO_RECOVERY_BLOCK_TOO_MANY_ENTRIES,    /* more than the format holds */
};

enum recovery_block_validity
vdo_check_recovery_block_header (const struct recovery_block_header *header,
                                 nonce_t nonce, uint8_t recovery_count);

const char *
vdo_recovery_block_validity_name (enum recovery_block_validity validity);

/* A valid block: right nonce and recovery count, format 1 or 2, and no
 * more entries than the format allows.  Both formats are accepted, as the
 * kernel's reader does; which format is acceptable is the caller's call. */
bool vdo_is_valid_recovery_block (const struct recovery_block_header *header,
                                  nonce_t nonce, uint8_t recovery_count);

/* A valid block holding exactly this sequence number. */
bool vdo_is_exact_recovery_block (const struct recovery_block_header *header,
                                  nonce_t nonce, uint8_t recovery_count,
                                  sequence_number_t sequence);

/* Whether the header's sequence number belongs at this block index; a
 * valid block found elsewhere is ignored. */
bool vdo_is_recovery_block_in_place (const struct recovery_block_header *header,
                                     block_count_t journal_size,
                                     block_count_t index);

/* A valid sector (1..7) of a block: same check byte and recovery count as
 * the block header, and no more entries than the sector can hold. */
bool vdo_is_valid_recovery_journal_sector
  (const struct recovery_block_header *header,
   const struct recovery_journal_sector_header *sector,
   unsigned int sector_number);

#endif /* VDO_RECOVERY_JOURNAL_FORMAT_H */
