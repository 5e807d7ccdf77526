/* nbdkit-vdo: block map pages, packed entries and LBN paths
 * (vdo-format.md 5).
 *
 * Pure encoding: every function works on caller-supplied 4096-byte
 * buffers and does no I/O.  The forest's page counts live in
 * volume-layout.h.
 */
#ifndef VDO_BLOCK_MAP_FORMAT_H
#define VDO_BLOCK_MAP_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "component-header.h"
#include "constants.h"

#define VDO_BLOCK_MAP_PAGE_MAJOR_VERSION 4
#define VDO_BLOCK_MAP_PAGE_MINOR_VERSION 1
#define VDO_BLOCK_MAP_PAGE_HEADER_SIZE 36
#define VDO_BLOCK_MAP_ENTRY_SIZE 5

/* On disk, leaves are height 0 and roots height 4; the code's tree height
 * of 5 also counts the in-memory super-root. */
#define VDO_BLOCK_MAP_ROOT_HEIGHT (VDO_BLOCK_MAP_TREE_HEIGHT - 1)

/* An entry stores 36 bits of PBN. */
#define VDO_BLOCK_MAP_ENTRY_PBN_BITS 36

enum vdo_mapping_state {
  VDO_MAPPING_STATE_UNMAPPED = 0,
  VDO_MAPPING_STATE_UNCOMPRESSED = 1,
  /* States 2..15 name compression slots 0..13. */
  VDO_MAPPING_STATE_COMPRESSED_BASE = 2,
  VDO_MAPPING_STATE_COMPRESSED_MAX = 15,
};

/* An unpacked block map entry: where a logical block's data lives. */
struct vdo_data_location {
  physical_block_number_t pbn;
  enum vdo_mapping_state state;
};

/* The decoded 36-byte page header.  The unused bytes (24..31, 33..35) are
 * ignored on decode and written as zero. */
struct vdo_block_map_page_header {
  struct vdo_version version;
  nonce_t nonce;
  physical_block_number_t pbn;
  bool initialized;
};

/* How a page read from some PBN may be used (vdo-format.md 5.6). */
enum vdo_block_map_page_validity {
  VDO_BLOCK_MAP_PAGE_VALID,
  /* Never written by this VDO: read it as an all-unmapped page. */
  VDO_BLOCK_MAP_PAGE_INVALID,
  /* A good page stored at the wrong PBN: an error for a leaf. */
  VDO_BLOCK_MAP_PAGE_BAD,
};

/* The entries on the way from a root to an LBN's leaf slot. */
struct vdo_block_map_path {
  uint64_t page_number;         /* leaf page number across the forest */
  uint64_t root_index;          /* the tree, rooted at root_origin + this */
  uint64_t leaf_index;          /* leaf page number inside that tree */
  /* slots[h] is the entry to follow in the page at height h: slots[0] is
   * the leaf slot, slots[VDO_BLOCK_MAP_ROOT_HEIGHT] the root's. */
  uint16_t slots[VDO_BLOCK_MAP_ROOT_HEIGHT + 1];
};

/* Answers whether pbn is a data block of some slab (not reference count
 * or slab journal blocks, not outside the depot).  Never asked about
 * PBN 0. */
typedef bool vdo_data_block_predicate (const void *context,
                                       physical_block_number_t pbn);

/* Mapping states. */

static inline bool
vdo_is_state_compressed (enum vdo_mapping_state state)
{
  return state >= VDO_MAPPING_STATE_COMPRESSED_BASE
         && state <= VDO_MAPPING_STATE_COMPRESSED_MAX;
}

/* The compression slot (0..13) of a compressed state. */
static inline unsigned int
vdo_get_slot_from_state (enum vdo_mapping_state state)
{
  return (unsigned int) state - VDO_MAPPING_STATE_COMPRESSED_BASE;
}

static inline enum vdo_mapping_state
vdo_get_state_for_slot (unsigned int slot)
{
  return (enum vdo_mapping_state) (slot + VDO_MAPPING_STATE_COMPRESSED_BASE);
}

static inline bool
vdo_is_mapped_location (struct vdo_data_location location)
{
  return location.state != VDO_MAPPING_STATE_UNMAPPED;
}

/* Whether the PBN and state agree: PBN 0 is never compressed, and a
 * non-zero PBN is never unmapped. */
bool vdo_is_valid_location (struct vdo_data_location location);

/* Whether a leaf entry may be used: a valid location whose non-zero PBN is
 * a data block.  A NULL predicate skips the data-block test. */
bool vdo_is_valid_leaf_entry (struct vdo_data_location location,
                              vdo_data_block_predicate *is_data_block,
                              const void *context);

/* Whether an interior entry (heights 1..4) may be used: (0, UNMAPPED), or
 * UNCOMPRESSED with a non-zero PBN that is a data block.  Anything else is
 * VDO_BAD_MAPPING for the caller. */
bool vdo_is_valid_interior_entry (struct vdo_data_location location,
                                  vdo_data_block_predicate *is_data_block,
                                  const void *context);

/* Packed 5-byte entries.  PBN bits above 35 are not stored. */

void vdo_pack_block_map_entry (uint8_t entry[VDO_BLOCK_MAP_ENTRY_SIZE],
                               physical_block_number_t pbn,
                               enum vdo_mapping_state state);

struct vdo_data_location
vdo_unpack_block_map_entry (const uint8_t entry[VDO_BLOCK_MAP_ENTRY_SIZE]);

/* Pages. */

void vdo_encode_block_map_page_header
  (uint8_t page[VDO_BLOCK_SIZE],
   const struct vdo_block_map_page_header *header);

void vdo_decode_block_map_page_header
  (const uint8_t page[VDO_BLOCK_SIZE],
   struct vdo_block_map_page_header *header);

/* A new version 4.1 page with every entry unmapped. */
void vdo_format_block_map_page (uint8_t page[VDO_BLOCK_SIZE], nonce_t nonce,
                                physical_block_number_t pbn,
                                bool initialized);

/* Set the initialized flag: a new page goes out first without it, then
 * with it (vdo-format.md 5.7). */
void vdo_set_block_map_page_initialized (uint8_t page[VDO_BLOCK_SIZE],
                                         bool initialized);

/* Classify a page read from PBN pbn of the volume with this nonce.  Does
 * not log: what BAD means depends on the page's height. */
enum vdo_block_map_page_validity
vdo_validate_block_map_page (const uint8_t page[VDO_BLOCK_SIZE], nonce_t nonce,
                             physical_block_number_t pbn);

/* Entry slot (0..811) access in place. */
struct vdo_data_location
vdo_get_block_map_page_entry (const uint8_t page[VDO_BLOCK_SIZE],
                              unsigned int slot);

void vdo_set_block_map_page_entry (uint8_t page[VDO_BLOCK_SIZE],
                                   unsigned int slot,
                                   physical_block_number_t pbn,
                                   enum vdo_mapping_state state);

/* Paths. */

/* Compute the tree and the slot at each height for an LBN.  The caller
 * checks the LBN against the volume's logical size; this rejects only LBNs
 * beyond the format's limit (VDO_OUT_OF_RANGE) and a zero root_count
 * (UDS_INVALID_ARGUMENT). */
int vdo_compute_block_map_path (logical_block_number_t lbn,
                                block_count_t root_count,
                                struct vdo_block_map_path *path);

#endif /* VDO_BLOCK_MAP_FORMAT_H */
