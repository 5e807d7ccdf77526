/* nbdkit-vdo: recovery journal block encoding and validity rules. */
#include <config.h>

#include <string.h>

#include "byte-order.h"
#include "logger.h"
#include "recovery-journal-format.h"
#include "status.h"

/* Block header offsets: type and count sit before the two counters. */
#define BLOCK_MAP_HEAD_OFFSET 0
#define SLAB_JOURNAL_HEAD_OFFSET 8
#define SEQUENCE_NUMBER_OFFSET 16
#define NONCE_OFFSET 24
#define METADATA_TYPE_OFFSET 32
#define ENTRY_COUNT_OFFSET 33
#define LOGICAL_BLOCKS_USED_OFFSET 35
#define BLOCK_MAP_DATA_BLOCKS_OFFSET 43
#define CHECK_BYTE_OFFSET 51
#define RECOVERY_COUNT_OFFSET 52

/* Entry offsets: the operation/slot word, the page PBN's low 32 bits, then
 * (format 2) the new and old slot values. */
#define ENTRY_WORD_OFFSET 0
#define ENTRY_PAGE_LOW_OFFSET 2
#define ENTRY_MAPPING_OFFSET 6
#define ENTRY_UNMAPPING_OFFSET 11

#define PACKED_LOCATION_SIZE 5

_Static_assert (VDO_RECOVERY_JOURNAL_ENTRIES_PER_SECTOR == 31,
                "format 2 sector capacity");
_Static_assert (VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK == 217,
                "format 2 block capacity");
_Static_assert (VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_SECTOR == 46,
                "format 1 sector capacity");
_Static_assert (VDO_RECOVERY_JOURNAL_1_ENTRIES_IN_LAST_SECTOR == 35,
                "format 1 last sector capacity");
_Static_assert (RECOVERY_COUNT_OFFSET + 1 == VDO_RECOVERY_JOURNAL_HEADER_SIZE,
                "header size");

/* Mappings in entries use the block-map page encoding. */
static void
pack_location (uint8_t *buf, const struct vdo_data_location *location)
{
  vdo_pack_block_map_entry (buf, location->pbn, location->state);
}

static void
unpack_location (const uint8_t *buf, struct vdo_data_location *location)
{
  *location = vdo_unpack_block_map_entry (buf);
}

unsigned int
vdo_recovery_journal_sector_capacity (uint8_t metadata_type,
                                      unsigned int sector)
{
  if (sector < 1 || sector >= VDO_SECTORS_PER_BLOCK)
    return 0;
  switch (metadata_type) {
  case VDO_METADATA_RECOVERY_JOURNAL_2:
    return VDO_RECOVERY_JOURNAL_ENTRIES_PER_SECTOR;
  case VDO_METADATA_RECOVERY_JOURNAL:
    return sector == VDO_SECTORS_PER_BLOCK - 1
           ? VDO_RECOVERY_JOURNAL_1_ENTRIES_IN_LAST_SECTOR
           : VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_SECTOR;
  default:
    return 0;
  }
}

unsigned int
vdo_recovery_journal_block_capacity (uint8_t metadata_type)
{
  switch (metadata_type) {
  case VDO_METADATA_RECOVERY_JOURNAL_2:
    return VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK;
  case VDO_METADATA_RECOVERY_JOURNAL:
    return VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_BLOCK;
  default:
    return 0;
  }
}

size_t
vdo_recovery_journal_entry_offset (uint8_t metadata_type, unsigned int entry)
{
  unsigned int per_sector = VDO_RECOVERY_JOURNAL_ENTRIES_PER_SECTOR;
  size_t entry_size = VDO_RECOVERY_JOURNAL_ENTRY_SIZE;

  if (metadata_type == VDO_METADATA_RECOVERY_JOURNAL) {
    per_sector = VDO_RECOVERY_JOURNAL_1_ENTRIES_PER_SECTOR;
    entry_size = VDO_RECOVERY_JOURNAL_1_ENTRY_SIZE;
  }
  return (size_t) VDO_SECTOR_SIZE * (1 + entry / per_sector)
         + VDO_RECOVERY_JOURNAL_SECTOR_HEADER_SIZE
         + entry_size * (entry % per_sector);
}

void
vdo_encode_recovery_block_header (uint8_t *block,
                                  const struct recovery_block_header *header)
{
  put_le64 (block + BLOCK_MAP_HEAD_OFFSET, header->block_map_head);
  put_le64 (block + SLAB_JOURNAL_HEAD_OFFSET, header->slab_journal_head);
  put_le64 (block + SEQUENCE_NUMBER_OFFSET, header->sequence_number);
  put_le64 (block + NONCE_OFFSET, header->nonce);
  block[METADATA_TYPE_OFFSET] = header->metadata_type;
  put_le16 (block + ENTRY_COUNT_OFFSET, header->entry_count);
  put_le64 (block + LOGICAL_BLOCKS_USED_OFFSET, header->logical_blocks_used);
  put_le64 (block + BLOCK_MAP_DATA_BLOCKS_OFFSET,
            header->block_map_data_blocks);
  block[CHECK_BYTE_OFFSET] = header->check_byte;
  block[RECOVERY_COUNT_OFFSET] = header->recovery_count;
}

void
vdo_decode_recovery_block_header (const uint8_t *block,
                                  struct recovery_block_header *header)
{
  header->block_map_head = get_le64 (block + BLOCK_MAP_HEAD_OFFSET);
  header->slab_journal_head = get_le64 (block + SLAB_JOURNAL_HEAD_OFFSET);
  header->sequence_number = get_le64 (block + SEQUENCE_NUMBER_OFFSET);
  header->nonce = get_le64 (block + NONCE_OFFSET);
  header->metadata_type = block[METADATA_TYPE_OFFSET];
  header->entry_count = get_le16 (block + ENTRY_COUNT_OFFSET);
  header->logical_blocks_used = get_le64 (block + LOGICAL_BLOCKS_USED_OFFSET);
  header->block_map_data_blocks =
    get_le64 (block + BLOCK_MAP_DATA_BLOCKS_OFFSET);
  header->check_byte = block[CHECK_BYTE_OFFSET];
  header->recovery_count = block[RECOVERY_COUNT_OFFSET];
}

void
vdo_encode_recovery_journal_sector_header
  (uint8_t *sector, const struct recovery_journal_sector_header *header)
{
  sector[0] = header->check_byte;
  sector[1] = header->recovery_count;
  sector[2] = header->entry_count;
}

void
vdo_decode_recovery_journal_sector_header
  (const uint8_t *sector, struct recovery_journal_sector_header *header)
{
  header->check_byte = sector[0];
  header->recovery_count = sector[1];
  header->entry_count = sector[2];
}

/* The first 6 bytes are common to both formats: operation in bits 0-1,
 * slot in bits 2-11, page PBN bits 32-35 in bits 12-15, then the page
 * PBN's low 32 bits. */
static void
encode_entry_slot (uint8_t *buf, const struct recovery_journal_entry *entry)
{
  uint16_t word = (entry->operation & 0x3)
                  | ((entry->slot & 0x3FF) << 2)
                  | (((entry->slot_pbn >> 32) & 0x0F) << 12);

  put_le16 (buf + ENTRY_WORD_OFFSET, word);
  put_le32 (buf + ENTRY_PAGE_LOW_OFFSET, entry->slot_pbn & 0xFFFFFFFF);
}

static void
decode_entry_slot (const uint8_t *buf, struct recovery_journal_entry *entry)
{
  uint16_t word = get_le16 (buf + ENTRY_WORD_OFFSET);

  entry->operation = word & 0x3;
  entry->slot = (word >> 2) & 0x3FF;
  entry->slot_pbn = ((physical_block_number_t) (word >> 12) << 32)
                    | get_le32 (buf + ENTRY_PAGE_LOW_OFFSET);
}

void
vdo_encode_recovery_journal_entry (uint8_t *buf,
                                   const struct recovery_journal_entry *entry)
{
  encode_entry_slot (buf, entry);
  pack_location (buf + ENTRY_MAPPING_OFFSET, &entry->mapping);
  pack_location (buf + ENTRY_UNMAPPING_OFFSET, &entry->unmapping);
}

void
vdo_decode_recovery_journal_entry (const uint8_t *buf,
                                   struct recovery_journal_entry *entry)
{
  decode_entry_slot (buf, entry);
  unpack_location (buf + ENTRY_MAPPING_OFFSET, &entry->mapping);
  unpack_location (buf + ENTRY_UNMAPPING_OFFSET, &entry->unmapping);
}

void
vdo_encode_recovery_journal_entry_1 (uint8_t *buf,
                                     const struct recovery_journal_entry *entry)
{
  encode_entry_slot (buf, entry);
  pack_location (buf + ENTRY_MAPPING_OFFSET, &entry->mapping);
}

void
vdo_decode_recovery_journal_entry_1 (const uint8_t *buf,
                                     struct recovery_journal_entry *entry)
{
  decode_entry_slot (buf, entry);
  unpack_location (buf + ENTRY_MAPPING_OFFSET, &entry->mapping);
  entry->unmapping.pbn = VDO_ZERO_BLOCK;
  entry->unmapping.state = 0;
}

bool
vdo_convert_recovery_journal_entry_1 (const struct recovery_journal_entry *old,
                                      struct recovery_journal_entry *entry)
{
  uint8_t operation;

  if (old->operation == VDO_JOURNAL_DATA_INCREMENT)
    operation = VDO_JOURNAL_DATA_REMAPPING;
  else if (old->operation == VDO_JOURNAL_BLOCK_MAP_INCREMENT)
    operation = VDO_JOURNAL_BLOCK_MAP_REMAPPING;
  else
    return false;

  *entry = *old;
  entry->operation = operation;
  entry->unmapping.pbn = VDO_ZERO_BLOCK;
  entry->unmapping.state = 0;
  return true;
}

int
vdo_encode_recovery_block (uint8_t block[VDO_BLOCK_SIZE],
                           const struct recovery_block_header *header,
                           const struct recovery_journal_entry *entries)
{
  struct recovery_journal_sector_header sector = {
    .check_byte = header->check_byte,
    .recovery_count = header->recovery_count,
  };
  unsigned int per_sector = VDO_RECOVERY_JOURNAL_ENTRIES_PER_SECTOR;
  unsigned int sectors, s, e;

  if (header->metadata_type != VDO_METADATA_RECOVERY_JOURNAL_2
      || header->entry_count > VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK) {
    vdo_log_error ("cannot encode a recovery journal block of type %u"
                   " with %u entries", header->metadata_type,
                   header->entry_count);
    return UDS_INVALID_ARGUMENT;
  }

  memset (block, 0, VDO_BLOCK_SIZE);
  vdo_encode_recovery_block_header (block, header);

  /* A sector is started only when the previous one is full; an opened
   * block always has sector 1 started. */
  sectors = (header->entry_count + per_sector - 1) / per_sector;
  if (sectors == 0)
    sectors = 1;
  for (s = 0; s < sectors; s++) {
    unsigned int first = s * per_sector;
    unsigned int count = header->entry_count - first;

    if (count > per_sector)
      count = per_sector;
    sector.entry_count = count;
    vdo_encode_recovery_journal_sector_header
      (block + VDO_SECTOR_SIZE * (s + 1), &sector);
    for (e = first; e < first + count; e++)
      vdo_encode_recovery_journal_entry
        (block + vdo_recovery_journal_entry_offset (header->metadata_type, e),
         &entries[e]);
  }
  return VDO_SUCCESS;
}

enum recovery_block_validity
vdo_check_recovery_block_header (const struct recovery_block_header *header,
                                 nonce_t nonce, uint8_t recovery_count)
{
  unsigned int capacity;

  if (header->nonce != nonce)
    return VDO_RECOVERY_BLOCK_BAD_NONCE;
  if (header->recovery_count != recovery_count)
    return VDO_RECOVERY_BLOCK_BAD_RECOVERY_COUNT;
  capacity = vdo_recovery_journal_block_capacity (header->metadata_type);
  if (capacity == 0)
    return VDO_RECOVERY_BLOCK_BAD_METADATA_TYPE;
  if (header->entry_count > capacity)
    return VDO_RECOVERY_BLOCK_TOO_MANY_ENTRIES;
  return VDO_RECOVERY_BLOCK_VALID;
}

const char *
vdo_recovery_block_validity_name (enum recovery_block_validity validity)
{
  switch (validity) {
  case VDO_RECOVERY_BLOCK_VALID:
    return "valid";
  case VDO_RECOVERY_BLOCK_BAD_NONCE:
    return "wrong nonce";
  case VDO_RECOVERY_BLOCK_BAD_RECOVERY_COUNT:
    return "wrong recovery count";
  case VDO_RECOVERY_BLOCK_BAD_METADATA_TYPE:
    return "not a recovery journal block";
  case VDO_RECOVERY_BLOCK_TOO_MANY_ENTRIES:
    return "too many entries";
  }
  return "unknown";
}

bool
vdo_is_valid_recovery_block (const struct recovery_block_header *header,
                             nonce_t nonce, uint8_t recovery_count)
{
  return vdo_check_recovery_block_header (header, nonce, recovery_count)
         == VDO_RECOVERY_BLOCK_VALID;
}

bool
vdo_is_exact_recovery_block (const struct recovery_block_header *header,
                             nonce_t nonce, uint8_t recovery_count,
                             sequence_number_t sequence)
{
  return header->sequence_number == sequence
         && vdo_is_valid_recovery_block (header, nonce, recovery_count);
}

bool
vdo_is_recovery_block_in_place (const struct recovery_block_header *header,
                                block_count_t journal_size,
                                block_count_t index)
{
  return vdo_recovery_journal_block_index (header->sequence_number,
                                           journal_size) == index;
}

bool
vdo_is_valid_recovery_journal_sector
  (const struct recovery_block_header *header,
   const struct recovery_journal_sector_header *sector,
   unsigned int sector_number)
{
  unsigned int capacity;

  /* Comparing with the header, not a recomputed check byte, catches
   * sectors left over from an older lap or recovery epoch. */
  if (sector->check_byte != header->check_byte
      || sector->recovery_count != header->recovery_count)
    return false;
  capacity = vdo_recovery_journal_sector_capacity (header->metadata_type,
                                                   sector_number);
  return capacity > 0 && sector->entry_count <= capacity;
}
