/* nbdkit-vdo: packed reference count blocks. */
#include <config.h>

#include <string.h>

#include "ref-counts-format.h"

_Static_assert (VDO_REFERENCE_SECTOR_HEADER_SIZE + VDO_COUNTS_PER_SECTOR
                == VDO_SECTOR_SIZE, "a sector is a commit point and counters");

void
vdo_encode_reference_block_sectors
  (uint8_t block[VDO_BLOCK_SIZE], const uint8_t counters[VDO_COUNTS_PER_BLOCK],
   const struct journal_point commit_points[VDO_SECTORS_PER_BLOCK])
{
  unsigned int s;

  for (s = 0; s < VDO_SECTORS_PER_BLOCK; s++) {
    uint8_t *sector = block + VDO_SECTOR_SIZE * s;

    vdo_encode_journal_point (sector, &commit_points[s]);
    memcpy (sector + VDO_REFERENCE_SECTOR_HEADER_SIZE,
            counters + VDO_COUNTS_PER_SECTOR * s, VDO_COUNTS_PER_SECTOR);
  }
}

void
vdo_encode_reference_block
  (uint8_t block[VDO_BLOCK_SIZE], const uint8_t counters[VDO_COUNTS_PER_BLOCK],
   const struct journal_point *commit_point)
{
  struct journal_point points[VDO_SECTORS_PER_BLOCK];
  unsigned int s;

  for (s = 0; s < VDO_SECTORS_PER_BLOCK; s++)
    points[s] = *commit_point;
  vdo_encode_reference_block_sectors (block, counters, points);
}

void
vdo_decode_reference_block
  (const uint8_t block[VDO_BLOCK_SIZE], uint8_t counters[VDO_COUNTS_PER_BLOCK],
   struct journal_point commit_points[VDO_SECTORS_PER_BLOCK])
{
  unsigned int s;

  for (s = 0; s < VDO_SECTORS_PER_BLOCK; s++) {
    const uint8_t *sector = block + VDO_SECTOR_SIZE * s;

    commit_points[s] = vdo_decode_journal_point (sector);
    memcpy (counters + VDO_COUNTS_PER_SECTOR * s,
            sector + VDO_REFERENCE_SECTOR_HEADER_SIZE, VDO_COUNTS_PER_SECTOR);
  }
}

bool
vdo_reference_block_is_torn
  (const struct journal_point commit_points[VDO_SECTORS_PER_BLOCK])
{
  unsigned int s;

  for (s = 1; s < VDO_SECTORS_PER_BLOCK; s++)
    if (!vdo_equal_journal_points (&commit_points[0], &commit_points[s]))
      return true;
  return false;
}
