/* nbdkit-vdo: status codes.
 *
 * Errors travel as int return codes.  Values below 1024 are errno values;
 * 1024.. are the UDS codes and 1464.. the VDO codes, numbered as in dm-vdo
 * so messages and exit statuses match the real tools.  Codes from 1600 on
 * are this project's own, for rejections dm-vdo folds into a generic code.
 */
#ifndef VDO_STATUS_H
#define VDO_STATUS_H

enum {
  VDO_SUCCESS = 0,

  UDS_INVALID_ARGUMENT = 1025,
  UDS_BAD_STATE = 1026,
  UDS_ASSERTION_FAILED = 1028,
  UDS_CORRUPT_DATA = 1034,

  VDO_OUT_OF_RANGE = 1465,
  VDO_REF_COUNT_INVALID = 1466,
  VDO_NO_SPACE = 1467,
  VDO_BAD_CONFIGURATION = 1468,
  VDO_BAD_PAGE = 1470,
  VDO_UNSUPPORTED_VERSION = 1471,
  VDO_INCORRECT_COMPONENT = 1472,
  VDO_PARAMETER_MISMATCH = 1473,
  VDO_UNKNOWN_PARTITION = 1474,
  VDO_CHECKSUM_MISMATCH = 1477,
  VDO_READ_ONLY = 1479,
  VDO_CORRUPT_JOURNAL = 1481,
  VDO_TOO_MANY_SLABS = 1482,
  VDO_INVALID_FRAGMENT = 1483,
  VDO_BAD_MAPPING = 1485,
  VDO_BAD_MAGIC = 1487,
  VDO_BAD_NONCE = 1488,
  VDO_NOT_READ_ONLY = 1492,

  /* This project's own. */
  VDO_BAD_STATE_VALUE = 1600,     /* super block state outside 0..7 */
  VDO_REGION_OUT_OF_BOUNDS,       /* a region or partition outside the device */
  VDO_DEVICE_TOO_SMALL,           /* device smaller than the recorded size */
  VDO_BAD_SLAB_SIZE,              /* slab size zero, too big, or not a power of two */
  VDO_PARTITIONS_INCOMPLETE,      /* partitions do not cover the layout */
  VDO_ALREADY_FORMATTED,          /* format refused without --force */
  VDO_NOT_FORMATTED,              /* geometry block all zero */
  VDO_BAD_INDEX_CONFIG,           /* UDS memory setting not supported */
  VDO_STATUS_LAST,
};

/* A short, fixed description of a status code (errno values included). */
const char *vdo_status_to_string (int status);

/* The symbolic name, e.g. "VDO_BAD_MAGIC", or NULL for errno values. */
const char *vdo_status_to_name (int status);

#endif /* VDO_STATUS_H */
