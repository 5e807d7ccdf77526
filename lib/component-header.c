/* nbdkit-vdo: versioned component headers. */
#include <config.h>

#include <inttypes.h>

#include "byte-order.h"
#include "component-header.h"
#include "logger.h"
#include "status.h"

void
vdo_encode_version (uint8_t *buf, struct vdo_version version)
{
  put_le32 (buf, version.major);
  put_le32 (buf + 4, version.minor);
}

struct vdo_version
vdo_decode_version (const uint8_t *buf)
{
  struct vdo_version v = { get_le32 (buf), get_le32 (buf + 4) };
  return v;
}

void
vdo_encode_component_header (uint8_t *buf,
                             const struct vdo_component_header *header)
{
  put_le32 (buf, header->id);
  vdo_encode_version (buf + 4, header->version);
  put_le64 (buf + 12, header->size);
}

void
vdo_decode_component_header (const uint8_t *buf,
                             struct vdo_component_header *header)
{
  header->id = get_le32 (buf);
  header->version = vdo_decode_version (buf + 4);
  header->size = get_le64 (buf + 12);
}

int
vdo_validate_version (struct vdo_version expected, struct vdo_version actual,
                      const char *name)
{
  if (expected.major != actual.major || expected.minor != actual.minor) {
    vdo_log_error ("%s version mismatch: expected %" PRIu32 ".%" PRIu32
                   ", found %" PRIu32 ".%" PRIu32,
                   name, expected.major, expected.minor,
                   actual.major, actual.minor);
    return VDO_UNSUPPORTED_VERSION;
  }
  return VDO_SUCCESS;
}

int
vdo_validate_component_header (const struct vdo_component_header *expected,
                               const struct vdo_component_header *actual,
                               int exact_size, const char *name)
{
  int r;

  if (expected->id != actual->id) {
    vdo_log_error ("%s: component id mismatch: expected %" PRIu32
                   ", found %" PRIu32, name, expected->id, actual->id);
    return VDO_INCORRECT_COMPONENT;
  }
  r = vdo_validate_version (expected->version, actual->version, name);
  if (r != VDO_SUCCESS)
    return r;
  if (exact_size ? actual->size != expected->size
                 : actual->size < expected->size) {
    vdo_log_error ("%s: size mismatch: expected %s%" PRIu64
                   ", found %" PRIu64, name, exact_size ? "" : "at least ",
                   expected->size, actual->size);
    return VDO_UNSUPPORTED_VERSION;
  }
  return VDO_SUCCESS;
}
