/* nbdkit-vdo: constants of dm-vdo's on-disk format (vdo-format.md 7). */
#ifndef VDO_CONSTANTS_H
#define VDO_CONSTANTS_H

#include <stdint.h>

typedef uint64_t physical_block_number_t;
typedef uint64_t logical_block_number_t;
typedef uint64_t sequence_number_t;
typedef uint64_t block_count_t;
typedef uint64_t nonce_t;

#define VDO_BLOCK_SIZE 4096
#define VDO_SECTOR_SIZE 512
#define VDO_SECTORS_PER_BLOCK (VDO_BLOCK_SIZE / VDO_SECTOR_SIZE)

/* In a mapping, PBN 0 means "all zeros". */
#define VDO_ZERO_BLOCK 0

#define VDO_MAX_PHYSICAL_BLOCKS ((block_count_t) 1 << 36)
#define VDO_MAX_LOGICAL_BLOCKS ((block_count_t) 1 << 40)

#define VDO_MIN_SLAB_BITS 13
#define VDO_MAX_SLAB_BITS 23
#define VDO_DEFAULT_SLAB_BITS 19
#define VDO_MAX_SLABS 8192
#define VDO_MAX_PHYSICAL_ZONES 16
#define VDO_MAX_LOGICAL_ZONES 60
#define VDO_MAX_HASH_ZONES 100

#define VDO_DEFAULT_SLAB_JOURNAL_SIZE 224
#define VDO_DEFAULT_RECOVERY_JOURNAL_SIZE 32768
#define VDO_BLOCK_MAP_ROOT_COUNT 60
#define VDO_BLOCK_MAP_TREE_HEIGHT 5     /* includes the in-memory super-root */
#define VDO_BLOCK_MAP_ENTRIES_PER_PAGE 812
#define VDO_SLAB_SUMMARY_BLOCKS 64
#define VDO_SLAB_SUMMARY_ENTRIES_PER_BLOCK 2048
#define VDO_SLAB_SUMMARY_BLOCKS_PER_ZONE 4

#define VDO_COUNTS_PER_SECTOR 504
#define VDO_COUNTS_PER_BLOCK (VDO_COUNTS_PER_SECTOR * VDO_SECTORS_PER_BLOCK)
#define VDO_MAXIMUM_REFERENCE_COUNT 254
#define VDO_PROVISIONAL_REFERENCE_COUNT 255

#define VDO_MAX_COMPRESSION_SLOTS 14

/* Slab journal entries in a full block that may hold block-map
 * increments; it also fixes the scrubbing threshold (vdo-format.md 4.4). */
#define VDO_SLAB_JOURNAL_FULL_ENTRIES 1299

/* The first recovery journal sequence number of a new volume. */
#define VDO_RECOVERY_JOURNAL_STARTING_SEQUENCE 1

#endif /* VDO_CONSTANTS_H */
