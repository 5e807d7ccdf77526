/* nbdkit-vdo: status code descriptions. */
#include <config.h>

#include <string.h>

#include "status.h"

struct status_text {
  int code;
  const char *name;
  const char *text;
};

static const struct status_text status_texts[] = {
  { VDO_SUCCESS, "VDO_SUCCESS", "Success" },
  { UDS_INVALID_ARGUMENT, "UDS_INVALID_ARGUMENT", "Invalid argument" },
  { UDS_BAD_STATE, "UDS_BAD_STATE", "Bad state" },
  { UDS_ASSERTION_FAILED, "UDS_ASSERTION_FAILED", "Assertion failed" },
  { UDS_CORRUPT_DATA, "UDS_CORRUPT_DATA", "Corrupt data" },
  { VDO_OUT_OF_RANGE, "VDO_OUT_OF_RANGE", "Out of range" },
  { VDO_REF_COUNT_INVALID, "VDO_REF_COUNT_INVALID", "Reference count would become invalid" },
  { VDO_NO_SPACE, "VDO_NO_SPACE", "Out of space" },
  { VDO_BAD_CONFIGURATION, "VDO_BAD_CONFIGURATION", "Bad configuration option" },
  { VDO_BAD_PAGE, "VDO_BAD_PAGE", "Corrupt or incorrect page" },
  { VDO_UNSUPPORTED_VERSION, "VDO_UNSUPPORTED_VERSION", "Unsupported component version" },
  { VDO_INCORRECT_COMPONENT, "VDO_INCORRECT_COMPONENT", "Component id mismatch in decoder" },
  { VDO_PARAMETER_MISMATCH, "VDO_PARAMETER_MISMATCH", "Parameters have conflicting values" },
  { VDO_UNKNOWN_PARTITION, "VDO_UNKNOWN_PARTITION", "No partition exists with a given id" },
  { VDO_CHECKSUM_MISMATCH, "VDO_CHECKSUM_MISMATCH", "A metadata checksum was incorrect" },
  { VDO_READ_ONLY, "VDO_READ_ONLY", "The device is in read-only mode" },
  { VDO_CORRUPT_JOURNAL, "VDO_CORRUPT_JOURNAL", "Recovery journal entries corrupted" },
  { VDO_TOO_MANY_SLABS, "VDO_TOO_MANY_SLABS", "Exceeds maximum number of slabs supported" },
  { VDO_INVALID_FRAGMENT, "VDO_INVALID_FRAGMENT", "Compressed block fragment is invalid" },
  { VDO_BAD_MAPPING, "VDO_BAD_MAPPING", "Invalid page mapping" },
  { VDO_BAD_MAGIC, "VDO_BAD_MAGIC", "Bad magic number" },
  { VDO_BAD_NONCE, "VDO_BAD_NONCE", "Bad nonce" },
  { VDO_NOT_READ_ONLY, "VDO_NOT_READ_ONLY", "The device is not in read-only mode" },
  { VDO_BAD_STATE_VALUE, "VDO_BAD_STATE_VALUE", "Super block state is out of range" },
  { VDO_REGION_OUT_OF_BOUNDS, "VDO_REGION_OUT_OF_BOUNDS", "A region or partition lies outside the device" },
  { VDO_DEVICE_TOO_SMALL, "VDO_DEVICE_TOO_SMALL", "The device is smaller than the volume's physical size" },
  { VDO_BAD_SLAB_SIZE, "VDO_BAD_SLAB_SIZE", "Slab size is not a power of two in range" },
  { VDO_PARTITIONS_INCOMPLETE, "VDO_PARTITIONS_INCOMPLETE", "Partitions do not cover the layout" },
  { VDO_ALREADY_FORMATTED, "VDO_ALREADY_FORMATTED", "The device already holds a VDO volume" },
  { VDO_NOT_FORMATTED, "VDO_NOT_FORMATTED", "The device holds no VDO volume" },
  { VDO_BAD_INDEX_CONFIG, "VDO_BAD_INDEX_CONFIG", "Unsupported index memory setting" },
};

static const struct status_text *
find_status (int status)
{
  size_t i;

  for (i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++)
    if (status_texts[i].code == status)
      return &status_texts[i];
  return NULL;
}

const char *
vdo_status_to_string (int status)
{
  const struct status_text *s = find_status (status);

  if (s)
    return s->text;
  if (status > 0 && status < 1024)
    return strerror (status);
  return "Unknown error";
}

const char *
vdo_status_to_name (int status)
{
  const struct status_text *s = find_status (status);

  return s ? s->name : NULL;
}
