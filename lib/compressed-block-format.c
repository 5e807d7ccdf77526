/* nbdkit-vdo: compressed block encoding and LZ4 fragments. */
#include <config.h>

#include <string.h>

#include <lz4.h>

#include "byte-order.h"
#include "compressed-block-format.h"
#include "logger.h"
#include "status.h"

#define VERSION_OFFSET 0
#define SIZES_OFFSET VDO_VERSION_NUMBER_SIZE

void
vdo_encode_compressed_block_header
  (uint8_t block[VDO_BLOCK_SIZE],
   const struct vdo_compressed_block_header *header)
{
  int i;

  vdo_encode_version (block + VERSION_OFFSET, header->version);
  for (i = 0; i < VDO_MAX_COMPRESSION_SLOTS; i++)
    put_le16 (block + SIZES_OFFSET + 2 * i, header->sizes[i]);
}

void
vdo_decode_compressed_block_header
  (const uint8_t block[VDO_BLOCK_SIZE],
   struct vdo_compressed_block_header *header)
{
  int i;

  header->version = vdo_decode_version (block + VERSION_OFFSET);
  for (i = 0; i < VDO_MAX_COMPRESSION_SLOTS; i++)
    header->sizes[i] = get_le16 (block + SIZES_OFFSET + 2 * i);
}

int
vdo_build_compressed_block
  (uint8_t block[VDO_BLOCK_SIZE],
   const struct vdo_compressed_fragment *fragments, unsigned int count)
{
  struct vdo_compressed_block_header header = {
    .version = { VDO_COMPRESSED_BLOCK_MAJOR_VERSION,
                 VDO_COMPRESSED_BLOCK_MINOR_VERSION },
  };
  size_t used = 0;
  unsigned int i;

  if (count == 0 || count > VDO_MAX_COMPRESSION_SLOTS) {
    vdo_log_error ("a compressed block holds 1 to %d fragments, not %u",
                   VDO_MAX_COMPRESSION_SLOTS, count);
    return UDS_INVALID_ARGUMENT;
  }
  /* Check everything before writing, so a refusal leaves block alone. */
  for (i = 0; i < count; i++) {
    if (fragments[i].size == 0
        || fragments[i].size > VDO_MAX_COMPRESSED_FRAGMENT_SIZE) {
      vdo_log_error ("compressed fragment %u has size %zu, outside 1..%d",
                     i, fragments[i].size, VDO_MAX_COMPRESSED_FRAGMENT_SIZE);
      return UDS_INVALID_ARGUMENT;
    }
    used += fragments[i].size;
    header.sizes[i] = (uint16_t) fragments[i].size;
  }
  if (used > VDO_COMPRESSED_BLOCK_DATA_SIZE) {
    vdo_log_error ("compressed fragments total %zu bytes, more than the %d"
                   " a block holds", used, VDO_COMPRESSED_BLOCK_DATA_SIZE);
    return UDS_INVALID_ARGUMENT;
  }

  memset (block, 0, VDO_BLOCK_SIZE);
  vdo_encode_compressed_block_header (block, &header);
  used = VDO_COMPRESSED_BLOCK_HEADER_SIZE;
  for (i = 0; i < count; i++) {
    memcpy (block + used, fragments[i].data, fragments[i].size);
    used += fragments[i].size;
  }
  return VDO_SUCCESS;
}

int
vdo_locate_compressed_fragment (const uint8_t block[VDO_BLOCK_SIZE],
                                unsigned int slot, size_t *offset,
                                size_t *size)
{
  struct vdo_compressed_block_header header;
  /* The kernel sums in 16 bits, so a sum past 65535 wraps and may pass
   * the check below; matching it keeps the same blocks readable. */
  uint16_t start = 0;
  unsigned int i;

  if (slot >= VDO_MAX_COMPRESSION_SLOTS)
    return VDO_INVALID_FRAGMENT;
  vdo_decode_compressed_block_header (block, &header);
  if (header.version.major != VDO_COMPRESSED_BLOCK_MAJOR_VERSION
      || header.version.minor != VDO_COMPRESSED_BLOCK_MINOR_VERSION)
    return VDO_INVALID_FRAGMENT;

  for (i = 0; i < slot; i++) {
    start = (uint16_t) (start + header.sizes[i]);
    if (start >= VDO_COMPRESSED_BLOCK_DATA_SIZE)
      return VDO_INVALID_FRAGMENT;
  }
  if ((size_t) start + header.sizes[slot] > VDO_COMPRESSED_BLOCK_DATA_SIZE)
    return VDO_INVALID_FRAGMENT;

  *offset = VDO_COMPRESSED_BLOCK_HEADER_SIZE + start;
  *size = header.sizes[slot];
  return VDO_SUCCESS;
}

int
vdo_decompress_fragment (const uint8_t *fragment, size_t size,
                         uint8_t data[VDO_BLOCK_SIZE])
{
  int result;

  /* No fragment read from a block can be larger. */
  if (size > VDO_COMPRESSED_BLOCK_DATA_SIZE)
    return VDO_INVALID_FRAGMENT;
  result = LZ4_decompress_safe ((const char *) fragment, (char *) data,
                                (int) size, VDO_BLOCK_SIZE);
  /* A short result means a corrupt fragment, not a short block. */
  if (result != VDO_BLOCK_SIZE)
    return VDO_INVALID_FRAGMENT;
  return VDO_SUCCESS;
}

int
vdo_read_compressed_fragment (const uint8_t block[VDO_BLOCK_SIZE],
                              unsigned int slot, uint8_t data[VDO_BLOCK_SIZE])
{
  size_t offset, size;
  int result;

  result = vdo_locate_compressed_fragment (block, slot, &offset, &size);
  if (result != VDO_SUCCESS)
    return result;
  return vdo_decompress_fragment (block + offset, size, data);
}

size_t
vdo_compress_block (const uint8_t data[VDO_BLOCK_SIZE],
                    uint8_t fragment[VDO_MAX_COMPRESSED_FRAGMENT_SIZE])
{
  int size;

  /* The output limit makes LZ4 give up (return 0) on anything that would
   * not leave room for a second fragment. */
  size = LZ4_compress_default ((const char *) data, (char *) fragment,
                               VDO_BLOCK_SIZE,
                               VDO_MAX_COMPRESSED_FRAGMENT_SIZE);
  if (size <= 0 || size > VDO_MAX_COMPRESSED_FRAGMENT_SIZE)
    return 0;
  return (size_t) size;
}
