/* nbdkit-vdo: super block encoding, decoding and validation. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "byte-order.h"
#include "checksum.h"
#include "component-header.h"
#include "logger.h"
#include "status.h"
#include "super-block.h"

/* Byte offsets inside the super block (vdo-format.md 3.2). */
#define SB_UNUSED 20
#define SB_VOLUME_VERSION 24
#define SB_COMPONENT_VERSION 32
#define SB_STATE 40
#define SB_COMPLETE_RECOVERIES 44
#define SB_READ_ONLY_RECOVERIES 52
#define SB_CONFIG 60
#define SB_NONCE 100
#define SB_LAYOUT 108
#define SB_RECOVERY_JOURNAL 245
#define SB_SLAB_DEPOT 289
#define SB_BLOCK_MAP 382
#define SB_CHECKSUM 434

#define PARTITION_RECORD_SIZE 25
#define LAYOUT_PAYLOAD_SIZE 117
#define RECOVERY_JOURNAL_PAYLOAD_SIZE 24
#define SLAB_DEPOT_PAYLOAD_SIZE 73
#define BLOCK_MAP_PAYLOAD_SIZE 32
#define SUPER_BLOCK_PAYLOAD_SIZE 418    /* component data + checksum */

static const struct vdo_version volume_version_67_0 = { 67, 0 };
static const struct vdo_version component_version_41_0 = { 41, 0 };

static const struct vdo_component_header super_block_header_12_0 = {
  VDO_SUPER_BLOCK_ID, { 12, 0 }, SUPER_BLOCK_PAYLOAD_SIZE,
};
static const struct vdo_component_header layout_header_3_0 = {
  VDO_LAYOUT_ID, { 3, 0 }, LAYOUT_PAYLOAD_SIZE,
};
static const struct vdo_component_header recovery_journal_header_7_0 = {
  VDO_RECOVERY_JOURNAL_ID, { 7, 0 }, RECOVERY_JOURNAL_PAYLOAD_SIZE,
};
static const struct vdo_component_header slab_depot_header_2_0 = {
  VDO_SLAB_DEPOT_ID, { 2, 0 }, SLAB_DEPOT_PAYLOAD_SIZE,
};
static const struct vdo_component_header block_map_header_2_0 = {
  VDO_BLOCK_MAP_ID, { 2, 0 }, BLOCK_MAP_PAYLOAD_SIZE,
};

static void
encode_config (uint8_t *p, const struct vdo_config *c)
{
  put_le64 (p, c->logical_blocks);
  put_le64 (p + 8, c->physical_blocks);
  put_le64 (p + 16, c->slab_size);
  put_le64 (p + 24, c->recovery_journal_size);
  put_le64 (p + 32, c->slab_journal_blocks);
}

static void
decode_config (const uint8_t *p, struct vdo_config *c)
{
  c->logical_blocks = get_le64 (p);
  c->physical_blocks = get_le64 (p + 8);
  c->slab_size = get_le64 (p + 16);
  c->recovery_journal_size = get_le64 (p + 24);
  c->slab_journal_blocks = get_le64 (p + 32);
}

static void
encode_layout (uint8_t *p, const struct vdo_layout *layout)
{
  int i;

  vdo_encode_component_header (p, &layout_header_3_0);
  p += VDO_COMPONENT_HEADER_SIZE;
  put_le64 (p, layout->first_free);
  put_le64 (p + 8, layout->last_free);
  p[16] = layout->partition_count;
  p += 17;
  for (i = 0; i < layout->partition_count; i++, p += PARTITION_RECORD_SIZE) {
    const struct vdo_partition *part = &layout->partitions[i];

    p[0] = part->id;
    put_le64 (p + 1, part->offset);
    put_le64 (p + 9, part->base);
    put_le64 (p + 17, part->count);
  }
}

static int
decode_layout (const uint8_t *p, struct vdo_layout *layout)
{
  struct vdo_component_header header;
  bool seen[VDO_PARTITION_COUNT] = { false };
  int i, r;

  vdo_decode_component_header (p, &header);
  r = vdo_validate_component_header (&layout_header_3_0, &header, 0, "layout");
  if (r != VDO_SUCCESS)
    return r;
  p += VDO_COMPONENT_HEADER_SIZE;
  layout->first_free = get_le64 (p);
  layout->last_free = get_le64 (p + 8);
  layout->partition_count = p[16];
  if (layout->partition_count > VDO_PARTITION_COUNT) {
    vdo_log_error ("layout has %u partitions, at most %d are known",
                   layout->partition_count, VDO_PARTITION_COUNT);
    return VDO_UNKNOWN_PARTITION;
  }
  p += 17;
  for (i = 0; i < layout->partition_count; i++, p += PARTITION_RECORD_SIZE) {
    struct vdo_partition *part = &layout->partitions[i];

    part->id = p[0];
    part->offset = get_le64 (p + 1);
    part->base = get_le64 (p + 9);
    part->count = get_le64 (p + 17);
    if (part->id >= VDO_PARTITION_COUNT || seen[part->id]) {
      vdo_log_error ("layout has an unknown or repeated partition id %u",
                     part->id);
      return VDO_UNKNOWN_PARTITION;
    }
    seen[part->id] = true;
  }
  for (i = 0; i < VDO_PARTITION_COUNT; i++)
    if (!seen[i]) {
      vdo_log_error ("layout is missing the %s partition",
                     vdo_partition_name ((uint8_t) i));
      return VDO_UNKNOWN_PARTITION;
    }
  return VDO_SUCCESS;
}

static void
encode_recovery_journal_state (uint8_t *p,
                               const struct recovery_journal_state_7_0 *s)
{
  vdo_encode_component_header (p, &recovery_journal_header_7_0);
  p += VDO_COMPONENT_HEADER_SIZE;
  put_le64 (p, s->journal_start);
  put_le64 (p + 8, s->logical_blocks_used);
  put_le64 (p + 16, s->block_map_data_blocks);
}

static int
decode_recovery_journal_state (const uint8_t *p,
                               struct recovery_journal_state_7_0 *s)
{
  struct vdo_component_header header;
  int r;

  vdo_decode_component_header (p, &header);
  r = vdo_validate_component_header (&recovery_journal_header_7_0, &header, 1,
                                     "recovery journal state");
  if (r != VDO_SUCCESS)
    return r;
  p += VDO_COMPONENT_HEADER_SIZE;
  s->journal_start = get_le64 (p);
  s->logical_blocks_used = get_le64 (p + 8);
  s->block_map_data_blocks = get_le64 (p + 16);
  return VDO_SUCCESS;
}

static void
encode_slab_depot_state (uint8_t *p, const struct slab_depot_state_2_0 *s)
{
  const struct slab_config *c = &s->slab_config;

  vdo_encode_component_header (p, &slab_depot_header_2_0);
  p += VDO_COMPONENT_HEADER_SIZE;
  put_le64 (p, c->slab_blocks);
  put_le64 (p + 8, c->data_blocks);
  put_le64 (p + 16, c->reference_count_blocks);
  put_le64 (p + 24, c->slab_journal_blocks);
  put_le64 (p + 32, c->slab_journal_flushing_threshold);
  put_le64 (p + 40, c->slab_journal_blocking_threshold);
  put_le64 (p + 48, c->slab_journal_scrubbing_threshold);
  put_le64 (p + 56, s->first_block);
  put_le64 (p + 64, s->last_block);
  p[72] = s->zone_count;
}

static int
decode_slab_depot_state (const uint8_t *p, struct slab_depot_state_2_0 *s)
{
  struct vdo_component_header header;
  struct slab_config *c = &s->slab_config;
  int r;

  vdo_decode_component_header (p, &header);
  r = vdo_validate_component_header (&slab_depot_header_2_0, &header, 1,
                                     "slab depot state");
  if (r != VDO_SUCCESS)
    return r;
  p += VDO_COMPONENT_HEADER_SIZE;
  c->slab_blocks = get_le64 (p);
  c->data_blocks = get_le64 (p + 8);
  c->reference_count_blocks = get_le64 (p + 16);
  c->slab_journal_blocks = get_le64 (p + 24);
  c->slab_journal_flushing_threshold = get_le64 (p + 32);
  c->slab_journal_blocking_threshold = get_le64 (p + 40);
  c->slab_journal_scrubbing_threshold = get_le64 (p + 48);
  s->first_block = get_le64 (p + 56);
  s->last_block = get_le64 (p + 64);
  s->zone_count = p[72];
  return VDO_SUCCESS;
}

static void
encode_block_map_state (uint8_t *p, const struct block_map_state_2_0 *s)
{
  vdo_encode_component_header (p, &block_map_header_2_0);
  p += VDO_COMPONENT_HEADER_SIZE;
  put_le64 (p, s->flat_page_origin);
  put_le64 (p + 8, s->flat_page_count);
  put_le64 (p + 16, s->root_origin);
  put_le64 (p + 24, s->root_count);
}

static int
decode_block_map_state (const uint8_t *p, struct block_map_state_2_0 *s)
{
  struct vdo_component_header header;
  int r;

  vdo_decode_component_header (p, &header);
  r = vdo_validate_component_header (&block_map_header_2_0, &header, 1,
                                     "block map state");
  if (r != VDO_SUCCESS)
    return r;
  p += VDO_COMPONENT_HEADER_SIZE;
  s->flat_page_origin = get_le64 (p);
  s->flat_page_count = get_le64 (p + 8);
  s->root_origin = get_le64 (p + 16);
  s->root_count = get_le64 (p + 24);
  /* Remnants of the removed flat block map; loaders insist on them. */
  if (s->flat_page_origin != 1 || s->flat_page_count != 0) {
    vdo_log_error ("block map state has flat page origin %" PRIu64
                   " and count %" PRIu64 ", expected 1 and 0",
                   s->flat_page_origin, s->flat_page_count);
    return UDS_ASSERTION_FAILED;
  }
  return VDO_SUCCESS;
}

void
vdo_encode_super_block (uint8_t block[VDO_BLOCK_SIZE],
                        const struct vdo_component_states *s)
{
  memset (block, 0, VDO_BLOCK_SIZE);
  vdo_encode_component_header (block, &super_block_header_12_0);
  put_le32 (block + SB_UNUSED, s->unused);
  vdo_encode_version (block + SB_VOLUME_VERSION, s->volume_version);
  vdo_encode_version (block + SB_COMPONENT_VERSION, component_version_41_0);
  put_le32 (block + SB_STATE, s->state);
  put_le64 (block + SB_COMPLETE_RECOVERIES, s->complete_recoveries);
  put_le64 (block + SB_READ_ONLY_RECOVERIES, s->read_only_recoveries);
  encode_config (block + SB_CONFIG, &s->config);
  put_le64 (block + SB_NONCE, s->nonce);
  encode_layout (block + SB_LAYOUT, &s->layout);
  encode_recovery_journal_state (block + SB_RECOVERY_JOURNAL,
                                 &s->recovery_journal);
  encode_slab_depot_state (block + SB_SLAB_DEPOT, &s->slab_depot);
  encode_block_map_state (block + SB_BLOCK_MAP, &s->block_map);
  put_le32 (block + SB_CHECKSUM, vdo_crc32 (block, SB_CHECKSUM));
}

int
vdo_decode_super_block (const uint8_t block[VDO_BLOCK_SIZE],
                        struct vdo_component_states *s)
{
  struct vdo_component_header header;
  uint32_t stored, computed;
  int r;

  memset (s, 0, sizeof *s);
  vdo_decode_component_header (block, &header);
  if (header.id != VDO_SUPER_BLOCK_ID) {
    vdo_log_error ("super block has component id %" PRIu32 ", expected %d",
                   header.id, VDO_SUPER_BLOCK_ID);
    return VDO_INCORRECT_COMPONENT;
  }
  r = vdo_validate_version (super_block_header_12_0.version, header.version,
                            "super block");
  if (r != VDO_SUCCESS)
    return r;
  /* The checksum always sits at 434; the size need only fit before it. */
  if (header.size < 4 || header.size > SUPER_BLOCK_PAYLOAD_SIZE) {
    vdo_log_error ("super block payload size %" PRIu64
                   " is outside 4..%d", header.size, SUPER_BLOCK_PAYLOAD_SIZE);
    return VDO_UNSUPPORTED_VERSION;
  }
  stored = get_le32 (block + SB_CHECKSUM);
  computed = vdo_crc32 (block, SB_CHECKSUM);
  if (stored != computed) {
    vdo_log_error ("super block checksum mismatch: stored 0x%08" PRIx32
                   ", computed 0x%08" PRIx32, stored, computed);
    return VDO_CHECKSUM_MISMATCH;
  }

  s->unused = get_le32 (block + SB_UNUSED);
  s->volume_version = vdo_decode_version (block + SB_VOLUME_VERSION);
  r = vdo_validate_version (volume_version_67_0, s->volume_version,
                            "volume");
  if (r != VDO_SUCCESS)
    return r;
  r = vdo_validate_version (component_version_41_0,
                            vdo_decode_version (block + SB_COMPONENT_VERSION),
                            "VDO component");
  if (r != VDO_SUCCESS)
    return r;

  s->state = get_le32 (block + SB_STATE);
  s->complete_recoveries = get_le64 (block + SB_COMPLETE_RECOVERIES);
  s->read_only_recoveries = get_le64 (block + SB_READ_ONLY_RECOVERIES);
  decode_config (block + SB_CONFIG, &s->config);
  s->nonce = get_le64 (block + SB_NONCE);

  r = decode_layout (block + SB_LAYOUT, &s->layout);
  if (r == VDO_SUCCESS)
    r = decode_recovery_journal_state (block + SB_RECOVERY_JOURNAL,
                                       &s->recovery_journal);
  if (r == VDO_SUCCESS)
    r = decode_slab_depot_state (block + SB_SLAB_DEPOT, &s->slab_depot);
  if (r == VDO_SUCCESS)
    r = decode_block_map_state (block + SB_BLOCK_MAP, &s->block_map);
  return r;
}

static bool
is_power_of_two (uint64_t n)
{
  return n != 0 && (n & (n - 1)) == 0;
}

int
vdo_validate_config (const struct vdo_config *c, block_count_t device_blocks)
{
  if (!is_power_of_two (c->slab_size)
      || c->slab_size > ((block_count_t) 1 << VDO_MAX_SLAB_BITS)) {
    vdo_log_error ("slab size %" PRIu64 " is not a power of two of at most 2^%d",
                   c->slab_size, VDO_MAX_SLAB_BITS);
    return VDO_BAD_SLAB_SIZE;
  }
  if (c->slab_journal_blocks < 2 || c->slab_journal_blocks > c->slab_size) {
    vdo_log_error ("slab journal of %" PRIu64 " blocks does not fit slabs of %"
                   PRIu64 " blocks", c->slab_journal_blocks, c->slab_size);
    return UDS_ASSERTION_FAILED;
  }
  if (c->physical_blocks == 0) {
    vdo_log_error ("physical size is zero");
    return UDS_ASSERTION_FAILED;
  }
  if (c->physical_blocks > VDO_MAX_PHYSICAL_BLOCKS) {
    vdo_log_error ("physical size %" PRIu64 " blocks exceeds the maximum %"
                   PRIu64, c->physical_blocks, VDO_MAX_PHYSICAL_BLOCKS);
    return VDO_OUT_OF_RANGE;
  }
  if (c->logical_blocks > VDO_MAX_LOGICAL_BLOCKS) {
    vdo_log_error ("logical size %" PRIu64 " blocks exceeds the maximum %"
                   PRIu64, c->logical_blocks, VDO_MAX_LOGICAL_BLOCKS);
    return UDS_ASSERTION_FAILED;
  }
  if (!is_power_of_two (c->recovery_journal_size)) {
    vdo_log_error ("recovery journal size %" PRIu64
                   " is not a power of two", c->recovery_journal_size);
    return UDS_ASSERTION_FAILED;
  }
  if (device_blocks != 0 && device_blocks < c->physical_blocks) {
    vdo_log_error ("the device has %" PRIu64 " blocks, but the volume's "
                   "physical size is %" PRIu64 " blocks: the device is too "
                   "small (truncated?)", device_blocks, c->physical_blocks);
    return VDO_DEVICE_TOO_SMALL;
  }
  return VDO_SUCCESS;
}

/* [start, start + count) must lie inside [low, high). */
static int
check_extent (const char *what, uint64_t start, uint64_t count,
              uint64_t low, uint64_t high)
{
  if (start < low || start > high || count > high - start) {
    vdo_log_error ("%s (blocks %" PRIu64 "..+%" PRIu64 ") lies outside "
                   "%" PRIu64 "..%" PRIu64, what, start, count, low, high);
    return VDO_REGION_OUT_OF_BOUNDS;
  }
  return VDO_SUCCESS;
}

int
vdo_validate_component_states (const struct vdo_component_states *s,
                               const struct vdo_volume_geometry *g,
                               block_count_t device_blocks)
{
  const struct slab_depot_state_2_0 *depot = &s->slab_depot;
  physical_block_number_t layout_start;
  block_count_t physical = s->config.physical_blocks, covered;
  const struct vdo_partition *part;
  int i, r;

  if (s->nonce != g->nonce) {
    vdo_log_error ("super block nonce %" PRIu64 " does not match the "
                   "geometry nonce %" PRIu64, s->nonce, g->nonce);
    return VDO_BAD_NONCE;
  }
  if (s->state >= VDO_STATE_COUNT) {
    vdo_log_error ("super block state %" PRIu32 " is out of range (0..%d)",
                   s->state, VDO_STATE_COUNT - 1);
    return VDO_BAD_STATE_VALUE;
  }
  r = vdo_validate_config (&s->config, device_blocks);
  if (r != VDO_SUCCESS)
    return r;

  /* The index region starts right after the geometry block, and the
   * data region (super block first) must lie inside the volume. */
  r = check_extent ("the index region", g->regions[VDO_INDEX_REGION].start_block,
                    vdo_geometry_index_region_blocks (g), 1, physical);
  if (r == VDO_SUCCESS
      && g->regions[VDO_DATA_REGION].start_block
         < g->regions[VDO_INDEX_REGION].start_block)
    r = VDO_REGION_OUT_OF_BOUNDS;
  if (r == VDO_SUCCESS && g->bio_offset > g->regions[VDO_DATA_REGION].start_block)
    r = VDO_REGION_OUT_OF_BOUNDS;
  if (r != VDO_SUCCESS) {
    vdo_log_error ("geometry regions are inconsistent with the volume size");
    return r;
  }

  layout_start = vdo_geometry_data_region_start (g) + 1;
  covered = 0;
  for (i = 0; i < s->layout.partition_count; i++) {
    char what[64];

    part = &s->layout.partitions[i];
    snprintf (what, sizeof what, "the %s partition",
              vdo_partition_name (part->id));
    r = check_extent (what, part->offset, part->count, layout_start, physical);
    if (r != VDO_SUCCESS)
      return r;
    covered += part->count;
  }
  if (layout_start + covered != physical) {
    vdo_log_error ("partitions cover %" PRIu64 " blocks from block %" PRIu64
                   ", but the physical size is %" PRIu64 " blocks",
                   covered, layout_start, physical);
    return VDO_PARTITIONS_INCOMPLETE;
  }

  /* The depot's own copy of the slab size drives its arithmetic. */
  if (!is_power_of_two (depot->slab_config.slab_blocks)
      || depot->slab_config.slab_blocks != s->config.slab_size) {
    vdo_log_error ("slab depot slab size %" PRIu64 " is not a power of two "
                   "equal to the configured %" PRIu64,
                   depot->slab_config.slab_blocks, s->config.slab_size);
    return VDO_BAD_SLAB_SIZE;
  }
  if (depot->slab_config.data_blocks == 0
      || depot->slab_config.data_blocks
         + depot->slab_config.reference_count_blocks
         + depot->slab_config.slab_journal_blocks
         != depot->slab_config.slab_blocks) {
    vdo_log_error ("slab configuration does not add up to the slab size");
    return VDO_BAD_CONFIGURATION;
  }
  if (depot->zone_count > VDO_MAX_PHYSICAL_ZONES) {
    vdo_log_error ("slab depot zone count %u exceeds %d",
                   depot->zone_count, VDO_MAX_PHYSICAL_ZONES);
    return UDS_CORRUPT_DATA;
  }
  part = vdo_layout_find_partition (&s->layout, VDO_SLAB_DEPOT_PARTITION);
  if (depot->last_block < depot->first_block
      || (depot->last_block - depot->first_block)
         % depot->slab_config.slab_blocks != 0
      || (depot->last_block - depot->first_block)
         / depot->slab_config.slab_blocks > VDO_MAX_SLABS) {
    vdo_log_error ("slab depot range %" PRIu64 "..%" PRIu64
                   " is not a whole number of at most %d slabs",
                   depot->first_block, depot->last_block, VDO_MAX_SLABS);
    return VDO_BAD_CONFIGURATION;
  }
  r = check_extent ("the slab depot's slabs", depot->first_block,
                    depot->last_block - depot->first_block,
                    part->offset, part->offset + part->count);
  if (r != VDO_SUCCESS)
    return r;

  part = vdo_layout_find_partition (&s->layout, VDO_BLOCK_MAP_PARTITION);
  r = check_extent ("the block map roots", s->block_map.root_origin,
                    s->block_map.root_count, part->offset,
                    part->offset + part->count);
  if (r != VDO_SUCCESS)
    return r;
  if (s->block_map.root_count == 0) {
    vdo_log_error ("block map has no roots");
    return VDO_BAD_CONFIGURATION;
  }

  part = vdo_layout_find_partition (&s->layout, VDO_RECOVERY_JOURNAL_PARTITION);
  if (part->count != s->config.recovery_journal_size) {
    vdo_log_error ("recovery journal partition has %" PRIu64 " blocks, but "
                   "the configured journal size is %" PRIu64,
                   part->count, s->config.recovery_journal_size);
    return VDO_BAD_CONFIGURATION;
  }
  return VDO_SUCCESS;
}

const struct vdo_partition *
vdo_layout_find_partition (const struct vdo_layout *layout, uint8_t id)
{
  int i;

  for (i = 0; i < layout->partition_count; i++)
    if (layout->partitions[i].id == id)
      return &layout->partitions[i];
  return NULL;
}

const char *
vdo_state_name (uint32_t state)
{
  static const char *const names[VDO_STATE_COUNT] = {
    "DIRTY", "NEW", "CLEAN", "READ_ONLY_MODE", "FORCE_REBUILD",
    "RECOVERING", "REPLAYING", "REBUILD_FOR_UPGRADE",
  };

  return state < VDO_STATE_COUNT ? names[state] : "INVALID";
}

const char *
vdo_partition_name (uint8_t id)
{
  switch (id) {
  case VDO_BLOCK_MAP_PARTITION: return "block map";
  case VDO_SLAB_DEPOT_PARTITION: return "slab depot";
  case VDO_RECOVERY_JOURNAL_PARTITION: return "recovery journal";
  case VDO_SLAB_SUMMARY_PARTITION: return "slab summary";
  default: return "unknown";
  }
}

bool
vdo_state_requires_recovery (uint32_t state)
{
  return state == VDO_DIRTY || state == VDO_RECOVERING
         || state == VDO_REPLAYING;
}

bool
vdo_state_requires_read_only_rebuild (uint32_t state)
{
  return state == VDO_FORCE_REBUILD || state == VDO_REBUILD_FOR_UPGRADE;
}
