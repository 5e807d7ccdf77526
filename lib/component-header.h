/* nbdkit-vdo: the 20-byte versioned component header (vdo-format.md 1.2). */
#ifndef VDO_COMPONENT_HEADER_H
#define VDO_COMPONENT_HEADER_H

#include <stdint.h>

#define VDO_COMPONENT_HEADER_SIZE 20
#define VDO_VERSION_NUMBER_SIZE 8

enum vdo_component_id {
  VDO_SUPER_BLOCK_ID = 0,
  VDO_LAYOUT_ID = 1,
  VDO_RECOVERY_JOURNAL_ID = 2,
  VDO_SLAB_DEPOT_ID = 3,
  VDO_BLOCK_MAP_ID = 4,
  VDO_GEOMETRY_BLOCK_ID = 5,
};

struct vdo_version {
  uint32_t major;
  uint32_t minor;
};

struct vdo_component_header {
  uint32_t id;
  struct vdo_version version;
  uint64_t size;
};

void vdo_encode_version (uint8_t *buf, struct vdo_version version);
struct vdo_version vdo_decode_version (const uint8_t *buf);

void vdo_encode_component_header (uint8_t *buf,
                                  const struct vdo_component_header *header);
void vdo_decode_component_header (const uint8_t *buf,
                                  struct vdo_component_header *header);

/* Check a decoded header against the expected one, as dm-vdo does: the id
 * must match (VDO_INCORRECT_COMPONENT), the version exactly
 * (VDO_UNSUPPORTED_VERSION), and the size exactly, or at least, when
 * exact_size is false (VDO_UNSUPPORTED_VERSION).  Logs the mismatch,
 * naming the component.
 */
int vdo_validate_component_header (const struct vdo_component_header *expected,
                                   const struct vdo_component_header *actual,
                                   int exact_size, const char *name);

/* Check an un-headered version number exactly. */
int vdo_validate_version (struct vdo_version expected,
                          struct vdo_version actual, const char *name);

#endif /* VDO_COMPONENT_HEADER_H */
