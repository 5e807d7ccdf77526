/* nbdkit-vdo: packed reference count blocks (vdo-journals.md 3).
 *
 * A slab keeps one counter byte per data block.  On disk the counters are
 * packed 4032 to a block: each of the 8 sectors holds an 8-byte commit
 * point (the slab journal point the sector is accurate to) and 504
 * counters.  There is no checksum; a torn write shows only as sectors
 * with different commit points, and each sector's own point is what
 * scrubbing uses.
 */
#ifndef VDO_REF_COUNTS_FORMAT_H
#define VDO_REF_COUNTS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"
#include "slab-journal-format.h"

/* The commit point in front of each sector's counters. */
#define VDO_REFERENCE_SECTOR_HEADER_SIZE 8

/* Counter values; VDO_MAXIMUM_REFERENCE_COUNT (254, also every block-map
 * tree page) and VDO_PROVISIONAL_REFERENCE_COUNT (255) are in
 * constants.h. */
#define VDO_EMPTY_REFERENCE_COUNT 0

/* What a counter value means. */
enum vdo_reference_status {
  VDO_REFERENCE_FREE,           /* 0 */
  VDO_REFERENCE_SINGLE,         /* 1 */
  VDO_REFERENCE_SHARED,         /* 2..254 */
  VDO_REFERENCE_PROVISIONAL,    /* 255: allocated but not yet referenced */
};

static inline enum vdo_reference_status
vdo_reference_count_status (uint8_t count)
{
  if (count == VDO_EMPTY_REFERENCE_COUNT)
    return VDO_REFERENCE_FREE;
  if (count == 1)
    return VDO_REFERENCE_SINGLE;
  if (count == VDO_PROVISIONAL_REFERENCE_COUNT)
    return VDO_REFERENCE_PROVISIONAL;
  return VDO_REFERENCE_SHARED;
}

/* Provisional is never durable state: a stored 255 loads as free. */
static inline uint8_t
vdo_reference_count_from_disk (uint8_t stored)
{
  return stored == VDO_PROVISIONAL_REFERENCE_COUNT
         ? VDO_EMPTY_REFERENCE_COUNT : stored;
}

/* Where the counter of slab block number sbn is: reference block (0 is
 * the first after the slab's data blocks), sector within it, and byte
 * offset within that block. */
static inline block_count_t
vdo_reference_block_index (uint32_t sbn)
{
  return sbn / VDO_COUNTS_PER_BLOCK;
}

static inline unsigned int
vdo_reference_sector_index (uint32_t sbn)
{
  return (sbn % VDO_COUNTS_PER_BLOCK) / VDO_COUNTS_PER_SECTOR;
}

static inline size_t
vdo_reference_counter_offset (uint32_t sbn)
{
  return (size_t) VDO_SECTOR_SIZE * vdo_reference_sector_index (sbn)
         + VDO_REFERENCE_SECTOR_HEADER_SIZE + sbn % VDO_COUNTS_PER_SECTOR;
}

/* Reference blocks the kernel uses for this many data blocks (for
 * slab_bits >= 20 one fewer than the slab reserves). */
static inline block_count_t
vdo_reference_blocks_used (block_count_t data_blocks)
{
  return (data_blocks + VDO_COUNTS_PER_BLOCK - 1) / VDO_COUNTS_PER_BLOCK;
}

/* Encode a block from 4032 counters (in sbn order) as the kernel writes
 * it: every sector gets the same commit point, the slab's latest applied
 * slab journal point. */
void vdo_encode_reference_block
  (uint8_t block[VDO_BLOCK_SIZE], const uint8_t counters[VDO_COUNTS_PER_BLOCK],
   const struct journal_point *commit_point);

/* The same with one commit point per sector, to reproduce a block as
 * read (a torn one included). */
void vdo_encode_reference_block_sectors
  (uint8_t block[VDO_BLOCK_SIZE], const uint8_t counters[VDO_COUNTS_PER_BLOCK],
   const struct journal_point commit_points[VDO_SECTORS_PER_BLOCK]);

/* Decode the counters exactly as stored (255 stays 255) and each
 * sector's commit point. */
void vdo_decode_reference_block
  (const uint8_t block[VDO_BLOCK_SIZE], uint8_t counters[VDO_COUNTS_PER_BLOCK],
   struct journal_point commit_points[VDO_SECTORS_PER_BLOCK]);

/* Whether the sectors disagree on their commit point, the sign of a torn
 * write. */
bool vdo_reference_block_is_torn
  (const struct journal_point commit_points[VDO_SECTORS_PER_BLOCK]);

#endif /* VDO_REF_COUNTS_FORMAT_H */
