/* nbdkit-vdo: block map page and entry encoding. */
#include <config.h>

#include <inttypes.h>
#include <string.h>

#include "block-map-format.h"
#include "byte-order.h"
#include "logger.h"
#include "status.h"

/* Header field offsets (vdo-format.md 5.3). */
#define VERSION_OFFSET 0
#define NONCE_OFFSET 8
#define PBN_OFFSET 16
#define INITIALIZED_OFFSET 32

bool
vdo_is_valid_location (struct vdo_data_location location)
{
  if (location.pbn == VDO_ZERO_BLOCK)
    return !vdo_is_state_compressed (location.state);
  return location.state != VDO_MAPPING_STATE_UNMAPPED;
}

static bool
is_data_block (physical_block_number_t pbn,
               vdo_data_block_predicate *predicate, const void *context)
{
  return predicate == NULL || predicate (context, pbn);
}

bool
vdo_is_valid_leaf_entry (struct vdo_data_location location,
                         vdo_data_block_predicate *predicate,
                         const void *context)
{
  if (!vdo_is_valid_location (location))
    return false;
  /* Both zero-block forms read as zeros and name no block. */
  if (location.pbn == VDO_ZERO_BLOCK)
    return true;
  return is_data_block (location.pbn, predicate, context);
}

bool
vdo_is_valid_interior_entry (struct vdo_data_location location,
                             vdo_data_block_predicate *predicate,
                             const void *context)
{
  if (location.state == VDO_MAPPING_STATE_UNMAPPED)
    return location.pbn == VDO_ZERO_BLOCK;
  /* Tree pages are never compressed and never the zero block. */
  if (location.state != VDO_MAPPING_STATE_UNCOMPRESSED
      || location.pbn == VDO_ZERO_BLOCK)
    return false;
  return is_data_block (location.pbn, predicate, context);
}

void
vdo_pack_block_map_entry (uint8_t entry[VDO_BLOCK_MAP_ENTRY_SIZE],
                          physical_block_number_t pbn,
                          enum vdo_mapping_state state)
{
  entry[0] = (uint8_t) ((((pbn >> 32) & 0x0F) << 4) | (state & 0x0F));
  put_le32 (entry + 1, (uint32_t) pbn);
}

struct vdo_data_location
vdo_unpack_block_map_entry (const uint8_t entry[VDO_BLOCK_MAP_ENTRY_SIZE])
{
  struct vdo_data_location location = {
    .pbn = ((physical_block_number_t) (entry[0] >> 4) << 32)
           | get_le32 (entry + 1),
    .state = (enum vdo_mapping_state) (entry[0] & 0x0F),
  };
  return location;
}

void
vdo_encode_block_map_page_header
  (uint8_t page[VDO_BLOCK_SIZE],
   const struct vdo_block_map_page_header *header)
{
  memset (page, 0, VDO_BLOCK_MAP_PAGE_HEADER_SIZE);
  vdo_encode_version (page + VERSION_OFFSET, header->version);
  put_le64 (page + NONCE_OFFSET, header->nonce);
  put_le64 (page + PBN_OFFSET, header->pbn);
  page[INITIALIZED_OFFSET] = header->initialized ? 1 : 0;
}

void
vdo_decode_block_map_page_header
  (const uint8_t page[VDO_BLOCK_SIZE],
   struct vdo_block_map_page_header *header)
{
  header->version = vdo_decode_version (page + VERSION_OFFSET);
  header->nonce = get_le64 (page + NONCE_OFFSET);
  header->pbn = get_le64 (page + PBN_OFFSET);
  header->initialized = page[INITIALIZED_OFFSET] != 0;
}

void
vdo_format_block_map_page (uint8_t page[VDO_BLOCK_SIZE], nonce_t nonce,
                           physical_block_number_t pbn, bool initialized)
{
  struct vdo_block_map_page_header header = {
    .version = { VDO_BLOCK_MAP_PAGE_MAJOR_VERSION,
                 VDO_BLOCK_MAP_PAGE_MINOR_VERSION },
    .nonce = nonce,
    .pbn = pbn,
    .initialized = initialized,
  };

  /* All-zero entries are (0, UNMAPPED). */
  memset (page, 0, VDO_BLOCK_SIZE);
  vdo_encode_block_map_page_header (page, &header);
}

void
vdo_set_block_map_page_initialized (uint8_t page[VDO_BLOCK_SIZE],
                                    bool initialized)
{
  page[INITIALIZED_OFFSET] = initialized ? 1 : 0;
}

enum vdo_block_map_page_validity
vdo_validate_block_map_page (const uint8_t page[VDO_BLOCK_SIZE], nonce_t nonce,
                             physical_block_number_t pbn)
{
  struct vdo_block_map_page_header header;

  vdo_decode_block_map_page_header (page, &header);
  if (header.version.major != VDO_BLOCK_MAP_PAGE_MAJOR_VERSION
      || header.version.minor != VDO_BLOCK_MAP_PAGE_MINOR_VERSION
      || !header.initialized || header.nonce != nonce)
    return VDO_BLOCK_MAP_PAGE_INVALID;
  /* Only a page this VDO wrote can be misplaced. */
  if (header.pbn != pbn)
    return VDO_BLOCK_MAP_PAGE_BAD;
  return VDO_BLOCK_MAP_PAGE_VALID;
}

static size_t
entry_offset (unsigned int slot)
{
  return VDO_BLOCK_MAP_PAGE_HEADER_SIZE
         + (size_t) slot * VDO_BLOCK_MAP_ENTRY_SIZE;
}

struct vdo_data_location
vdo_get_block_map_page_entry (const uint8_t page[VDO_BLOCK_SIZE],
                              unsigned int slot)
{
  return vdo_unpack_block_map_entry (page + entry_offset (slot));
}

void
vdo_set_block_map_page_entry (uint8_t page[VDO_BLOCK_SIZE], unsigned int slot,
                              physical_block_number_t pbn,
                              enum vdo_mapping_state state)
{
  vdo_pack_block_map_entry (page + entry_offset (slot), pbn, state);
}

int
vdo_compute_block_map_path (logical_block_number_t lbn,
                            block_count_t root_count,
                            struct vdo_block_map_path *path)
{
  uint64_t index;
  int height;

  if (lbn >= VDO_MAX_LOGICAL_BLOCKS) {
    vdo_log_error ("logical block %" PRIu64 " is beyond the block map's limit"
                   " of %" PRIu64 " blocks", lbn, VDO_MAX_LOGICAL_BLOCKS);
    return VDO_OUT_OF_RANGE;
  }
  if (root_count == 0) {
    vdo_log_error ("block map has no tree roots");
    return UDS_INVALID_ARGUMENT;
  }

  path->page_number = lbn / VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
  path->slots[0] = (uint16_t) (lbn % VDO_BLOCK_MAP_ENTRIES_PER_PAGE);
  /* Consecutive leaf pages go to the trees round-robin. */
  path->root_index = path->page_number % root_count;
  path->leaf_index = path->page_number / root_count;
  index = path->leaf_index;
  for (height = 1; height <= VDO_BLOCK_MAP_ROOT_HEIGHT; height++) {
    path->slots[height] = (uint16_t) (index % VDO_BLOCK_MAP_ENTRIES_PER_PAGE);
    index /= VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
  }
  return VDO_SUCCESS;
}
