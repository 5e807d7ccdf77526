/* nbdkit-vdo: slab summary encoding and fullness hints. */
#include <config.h>

#include "slab-summary-format.h"

#define HINT_MASK VDO_SLAB_SUMMARY_MAX_FULLNESS_HINT
#define LOAD_REF_COUNTS_BIT 0x40
#define IS_DIRTY_BIT 0x80

_Static_assert (VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK * VDO_SLAB_SUMMARY_ENTRY_SIZE
                == VDO_BLOCK_SIZE, "entries fill a block");
_Static_assert (VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE
                * VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK == VDO_MAX_SLABS,
                "a zone region covers every slab");
_Static_assert (VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE * VDO_MAX_PHYSICAL_ZONES
                == VDO_SLAB_SUMMARY_BLOCKS, "the partition holds every zone");

void
vdo_encode_slab_summary_entry (uint8_t *buf,
                               const struct slab_summary_entry *entry)
{
  buf[0] = entry->tail_block_offset;
  buf[1] = (entry->fullness_hint & HINT_MASK)
           | (entry->load_ref_counts ? LOAD_REF_COUNTS_BIT : 0)
           | (entry->is_dirty ? IS_DIRTY_BIT : 0);
}

struct slab_summary_entry
vdo_decode_slab_summary_entry (const uint8_t *buf)
{
  struct slab_summary_entry entry = {
    .tail_block_offset = buf[0],
    .fullness_hint = buf[1] & HINT_MASK,
    .load_ref_counts = (buf[1] & LOAD_REF_COUNTS_BIT) != 0,
    .is_dirty = (buf[1] & IS_DIRTY_BIT) != 0,
  };
  return entry;
}

void
vdo_encode_slab_summary_block
  (uint8_t block[VDO_BLOCK_SIZE],
   const struct slab_summary_entry entries[VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK])
{
  unsigned int i;

  for (i = 0; i < VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK; i++)
    vdo_encode_slab_summary_entry (block + VDO_SLAB_SUMMARY_ENTRY_SIZE * i,
                                   &entries[i]);
}

void
vdo_decode_slab_summary_block
  (const uint8_t block[VDO_BLOCK_SIZE],
   struct slab_summary_entry entries[VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK])
{
  unsigned int i;

  for (i = 0; i < VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK; i++)
    entries[i] =
      vdo_decode_slab_summary_entry (block + VDO_SLAB_SUMMARY_ENTRY_SIZE * i);
}

unsigned int
vdo_slab_summary_hint_shift (unsigned int slab_bits)
{
  return slab_bits > VDO_SLAB_SUMMARY_FULLNESS_HINT_BITS
         ? slab_bits - VDO_SLAB_SUMMARY_FULLNESS_HINT_BITS : 0;
}

uint8_t
vdo_compute_fullness_hint (block_count_t free_blocks, unsigned int hint_shift)
{
  block_count_t hint;

  if (free_blocks == 0)
    return 0;
  hint = free_blocks >> hint_shift;
  if (hint == 0)
    return 1;
  /* A slab's free count is below 2^slab_bits, so this only guards
   * against a caller passing more than a slab's worth. */
  if (hint > HINT_MASK)
    return HINT_MASK;
  return hint;
}

struct slab_summary_entry
vdo_default_slab_summary_entry (block_count_t data_blocks,
                                unsigned int slab_bits)
{
  struct slab_summary_entry entry = {
    .tail_block_offset = 0,
    .fullness_hint =
      vdo_compute_fullness_hint (data_blocks,
                                 vdo_slab_summary_hint_shift (slab_bits)),
    .load_ref_counts = false,
    .is_dirty = false,
  };
  return entry;
}
