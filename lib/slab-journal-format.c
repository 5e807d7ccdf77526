/* nbdkit-vdo: slab journal block encoding and journal points. */
#include <config.h>

#include <string.h>

#include "byte-order.h"
#include "logger.h"
#include "slab-journal-format.h"
#include "status.h"

/* Header offsets: the nonce follows the recovery point. */
#define HEAD_OFFSET 0
#define SEQUENCE_NUMBER_OFFSET 8
#define RECOVERY_POINT_OFFSET 16
#define NONCE_OFFSET 24
#define METADATA_TYPE_OFFSET 32
#define HAS_BLOCK_MAP_INCREMENTS_OFFSET 33
#define ENTRY_COUNT_OFFSET 34

_Static_assert (ENTRY_COUNT_OFFSET + 2 == VDO_SLAB_JOURNAL_HEADER_SIZE,
                "header size");
_Static_assert (VDO_SLAB_JOURNAL_ENTRIES_PER_BLOCK == 1353,
                "data-only block capacity");
_Static_assert (VDO_SLAB_JOURNAL_FULL_ENTRIES
                == VDO_SLAB_JOURNAL_PAYLOAD_SIZE * 8 / 25,
                "each block-map-capable entry costs 3 bytes and 1 bit");
_Static_assert (VDO_SLAB_JOURNAL_ENTRY_TYPES_SIZE == 163, "bitmap size");
_Static_assert (VDO_SLAB_JOURNAL_ENTRY_TYPES_OFFSET == 3933, "bitmap offset");
_Static_assert (VDO_SLAB_JOURNAL_ENTRY_TYPES_OFFSET
                + VDO_SLAB_JOURNAL_ENTRY_TYPES_SIZE <= VDO_BLOCK_SIZE,
                "bitmap fits");

void
vdo_encode_journal_point (uint8_t *buf, const struct journal_point *point)
{
  put_le64 (buf, vdo_pack_journal_point (point));
}

struct journal_point
vdo_decode_journal_point (const uint8_t *buf)
{
  return vdo_unpack_journal_point (get_le64 (buf));
}

void
vdo_advance_journal_point (struct journal_point *point,
                           uint16_t entries_per_block)
{
  point->entry_count++;
  if (point->entry_count == entries_per_block) {
    point->sequence_number++;
    point->entry_count = 0;
  }
}

struct journal_point
vdo_expand_journal_point (const struct journal_point *recovery_point,
                          bool increment)
{
  struct journal_point expanded = {
    .sequence_number = recovery_point->sequence_number,
    .entry_count = recovery_point->entry_count * 2 + (increment ? 0 : 1),
  };
  return expanded;
}

void
vdo_encode_slab_journal_block_header
  (uint8_t *block, const struct slab_journal_block_header *header)
{
  put_le64 (block + HEAD_OFFSET, header->head);
  put_le64 (block + SEQUENCE_NUMBER_OFFSET, header->sequence_number);
  vdo_encode_journal_point (block + RECOVERY_POINT_OFFSET,
                            &header->recovery_point);
  put_le64 (block + NONCE_OFFSET, header->nonce);
  block[METADATA_TYPE_OFFSET] = header->metadata_type;
  block[HAS_BLOCK_MAP_INCREMENTS_OFFSET] =
    header->has_block_map_increments ? 1 : 0;
  put_le16 (block + ENTRY_COUNT_OFFSET, header->entry_count);
}

void
vdo_decode_slab_journal_block_header
  (const uint8_t *block, struct slab_journal_block_header *header)
{
  header->head = get_le64 (block + HEAD_OFFSET);
  header->sequence_number = get_le64 (block + SEQUENCE_NUMBER_OFFSET);
  header->recovery_point =
    vdo_decode_journal_point (block + RECOVERY_POINT_OFFSET);
  header->nonce = get_le64 (block + NONCE_OFFSET);
  header->metadata_type = block[METADATA_TYPE_OFFSET];
  header->has_block_map_increments =
    block[HAS_BLOCK_MAP_INCREMENTS_OFFSET] != 0;
  header->entry_count = get_le16 (block + ENTRY_COUNT_OFFSET);
}

void
vdo_pack_slab_journal_entry (uint8_t *buf, uint32_t sbn, bool increment)
{
  buf[0] = sbn & 0xFF;
  buf[1] = (sbn >> 8) & 0xFF;
  buf[2] = ((sbn >> 16) & 0x7F) | (increment ? 0x80 : 0);
}

struct slab_journal_entry
vdo_unpack_slab_journal_entry (const uint8_t *buf)
{
  struct slab_journal_entry entry = {
    .sbn = buf[0] | ((uint32_t) buf[1] << 8)
           | ((uint32_t) (buf[2] & 0x7F) << 16),
    .increment = (buf[2] & 0x80) != 0,
    .is_block_map = false,
  };
  return entry;
}

static size_t
entry_offset (unsigned int index)
{
  return VDO_SLAB_JOURNAL_HEADER_SIZE
         + (size_t) VDO_SLAB_JOURNAL_ENTRY_SIZE * index;
}

struct slab_journal_entry
vdo_decode_slab_journal_entry (const uint8_t block[VDO_BLOCK_SIZE],
                               unsigned int index)
{
  struct slab_journal_entry entry =
    vdo_unpack_slab_journal_entry (block + entry_offset (index));

  /* Past the full-entries limit the bytes are bitmap, not entries, so
   * only the first 1299 can carry a type bit. */
  if (block[HAS_BLOCK_MAP_INCREMENTS_OFFSET] != 0
      && index < VDO_SLAB_JOURNAL_FULL_ENTRIES) {
    const uint8_t *types = block + VDO_SLAB_JOURNAL_ENTRY_TYPES_OFFSET;

    entry.is_block_map = (types[index / 8] >> (index % 8)) & 1;
  }
  return entry;
}

int
vdo_encode_slab_journal_block (uint8_t block[VDO_BLOCK_SIZE],
                               const struct slab_journal_block_header *header,
                               const struct slab_journal_entry *entries)
{
  unsigned int capacity =
    vdo_slab_journal_entries_per_block (header->has_block_map_increments);
  uint8_t *types = block + VDO_SLAB_JOURNAL_ENTRY_TYPES_OFFSET;
  unsigned int i;

  if (header->entry_count > capacity) {
    vdo_log_error ("cannot encode %u slab journal entries: at most %u fit",
                   header->entry_count, capacity);
    return UDS_INVALID_ARGUMENT;
  }
  for (i = 0; i < header->entry_count; i++) {
    if (!entries[i].is_block_map)
      continue;
    if (!header->has_block_map_increments || !entries[i].increment) {
      vdo_log_error ("slab journal entry %u is a block-map %s in a block %s"
                     " block-map increments", i,
                     entries[i].increment ? "increment" : "decrement",
                     header->has_block_map_increments ? "with" : "without");
      return UDS_INVALID_ARGUMENT;
    }
  }

  memset (block, 0, VDO_BLOCK_SIZE);
  vdo_encode_slab_journal_block_header (block, header);
  for (i = 0; i < header->entry_count; i++) {
    vdo_pack_slab_journal_entry (block + entry_offset (i), entries[i].sbn,
                                 entries[i].increment);
    if (entries[i].is_block_map)
      types[i / 8] |= 1 << (i % 8);
  }
  return VDO_SUCCESS;
}

unsigned int
vdo_decode_slab_journal_block (const uint8_t block[VDO_BLOCK_SIZE],
                               struct slab_journal_block_header *header,
                               struct slab_journal_entry *entries)
{
  unsigned int count, i;

  vdo_decode_slab_journal_block_header (block, header);
  count = vdo_slab_journal_entries_per_block (header->has_block_map_increments);
  if (header->entry_count < count)
    count = header->entry_count;
  for (i = 0; i < count; i++)
    entries[i] = vdo_decode_slab_journal_entry (block, i);
  return count;
}

enum slab_journal_block_validity
vdo_check_slab_journal_block_header
  (const struct slab_journal_block_header *header, nonce_t nonce,
   sequence_number_t sequence)
{
  if (header->nonce != nonce)
    return VDO_SLAB_JOURNAL_BLOCK_BAD_NONCE;
  if (header->metadata_type != VDO_METADATA_SLAB_JOURNAL)
    return VDO_SLAB_JOURNAL_BLOCK_BAD_METADATA_TYPE;
  if (header->sequence_number != sequence)
    return VDO_SLAB_JOURNAL_BLOCK_WRONG_SEQUENCE;
  if (header->entry_count
      > vdo_slab_journal_entries_per_block (header->has_block_map_increments))
    return VDO_SLAB_JOURNAL_BLOCK_TOO_MANY_ENTRIES;
  return VDO_SLAB_JOURNAL_BLOCK_VALID;
}

const char *
vdo_slab_journal_block_validity_name
  (enum slab_journal_block_validity validity)
{
  switch (validity) {
  case VDO_SLAB_JOURNAL_BLOCK_VALID:
    return "valid";
  case VDO_SLAB_JOURNAL_BLOCK_BAD_NONCE:
    return "wrong nonce";
  case VDO_SLAB_JOURNAL_BLOCK_BAD_METADATA_TYPE:
    return "not a slab journal block";
  case VDO_SLAB_JOURNAL_BLOCK_WRONG_SEQUENCE:
    return "wrong sequence number";
  case VDO_SLAB_JOURNAL_BLOCK_TOO_MANY_ENTRIES:
    return "too many entries";
  }
  return "unknown";
}

bool
vdo_is_slab_journal_block_of_volume
  (const struct slab_journal_block_header *header, nonce_t nonce)
{
  return header->metadata_type == VDO_METADATA_SLAB_JOURNAL
         && header->nonce == nonce;
}

int
vdo_validate_slab_journal_block_header
  (const struct slab_journal_block_header *header, nonce_t nonce,
   sequence_number_t sequence)
{
  if (vdo_check_slab_journal_block_header (header, nonce, sequence)
      != VDO_SLAB_JOURNAL_BLOCK_VALID)
    return VDO_CORRUPT_JOURNAL;
  return VDO_SUCCESS;
}
