/* nbdkit-vdo: compressed blocks and their LZ4 fragments (vdo-format.md 6).
 *
 * Pure encoding over caller-supplied buffers; LZ4 comes from liblz4.
 */
#ifndef VDO_COMPRESSED_BLOCK_FORMAT_H
#define VDO_COMPRESSED_BLOCK_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "component-header.h"
#include "constants.h"

#define VDO_COMPRESSED_BLOCK_MAJOR_VERSION 1
#define VDO_COMPRESSED_BLOCK_MINOR_VERSION 0
#define VDO_COMPRESSED_BLOCK_HEADER_SIZE \
  (VDO_VERSION_NUMBER_SIZE + 2 * VDO_MAX_COMPRESSION_SLOTS)
#define VDO_COMPRESSED_BLOCK_DATA_SIZE \
  (VDO_BLOCK_SIZE - VDO_COMPRESSED_BLOCK_HEADER_SIZE)

/* One byte short of the data area, so every block holds at least two
 * fragments. */
#define VDO_MAX_COMPRESSED_FRAGMENT_SIZE (VDO_COMPRESSED_BLOCK_DATA_SIZE - 1)

struct vdo_compressed_block_header {
  struct vdo_version version;
  uint16_t sizes[VDO_MAX_COMPRESSION_SLOTS];   /* 0 for unused slots */
};

/* A fragment to pack: LZ4 block data of 1..VDO_MAX_COMPRESSED_FRAGMENT_SIZE
 * bytes. */
struct vdo_compressed_fragment {
  const uint8_t *data;
  size_t size;
};

void vdo_encode_compressed_block_header
  (uint8_t block[VDO_BLOCK_SIZE],
   const struct vdo_compressed_block_header *header);

void vdo_decode_compressed_block_header
  (const uint8_t block[VDO_BLOCK_SIZE],
   struct vdo_compressed_block_header *header);

/* Build a version 1.0 block holding fragments[i] in slot i, concatenated
 * from the start of the data area; unused slots and the tail are zeroed.
 * Rejects no fragments, more than 14, an empty or oversized fragment, or a
 * total beyond the data area with UDS_INVALID_ARGUMENT.  The format reads
 * a single-fragment block, but VDO writes only blocks of two or more:
 * that choice is the packer's. */
int vdo_build_compressed_block
  (uint8_t block[VDO_BLOCK_SIZE],
   const struct vdo_compressed_fragment *fragments, unsigned int count);

/* Find the fragment in slot (0..13) of a block read from disk, with
 * exactly the kernel's rejections (vdo-format.md 6.2); all of them are
 * VDO_INVALID_FRAGMENT.  The offset is from the start of the block.  Does
 * not log: the caller knows the PBN. */
int vdo_locate_compressed_fragment (const uint8_t block[VDO_BLOCK_SIZE],
                                    unsigned int slot, size_t *offset,
                                    size_t *size);

/* Decompress an LZ4 block fragment; it must expand to exactly one block,
 * else VDO_INVALID_FRAGMENT. */
int vdo_decompress_fragment (const uint8_t *fragment, size_t size,
                             uint8_t data[VDO_BLOCK_SIZE]);

/* Locate and decompress in one step. */
int vdo_read_compressed_fragment (const uint8_t block[VDO_BLOCK_SIZE],
                                  unsigned int slot,
                                  uint8_t data[VDO_BLOCK_SIZE]);

/* Compress a block the way the kernel decides to keep it: returns the
 * fragment size (1..VDO_MAX_COMPRESSED_FRAGMENT_SIZE) written to fragment,
 * or 0 if the block does not compress enough and must be stored as is. */
size_t vdo_compress_block (const uint8_t data[VDO_BLOCK_SIZE],
                           uint8_t fragment[VDO_MAX_COMPRESSED_FRAGMENT_SIZE]);

#endif /* VDO_COMPRESSED_BLOCK_FORMAT_H */
