/* nbdkit-vdo: a sparse VDO volume in a temporary directory for the
 * Check suites that run the whole volume (dedupe, compression, write
 * acknowledgement), and the audit they end with. */
#ifndef VDO_VOLUME_TEST_UTIL_H
#define VDO_VOLUME_TEST_UTIL_H

#include <stdint.h>

#include "vdo.h"

struct test_volume {
  char directory[64];
  char path[96];
};

/* Format a sparse DEVICE_BYTES file in a new directory named after
 * NAME, with LOGICAL_BLOCKS and 2^SLAB_BITS-block slabs. */
void test_volume_create (struct test_volume *volume, const char *name,
                         uint64_t device_bytes, uint64_t logical_blocks,
                         unsigned int slab_bits);

/* Delete the file and its directory. */
void test_volume_remove (struct test_volume *volume);

/* Flush, stop cleanly and free VDO, then audit PATH: it must pass. */
void test_volume_stop_and_audit (struct vdo *vdo, const char *path);

/* Audit PATH, which no vdo has open: it must pass. */
void test_volume_audit (const char *path);

#endif /* VDO_VOLUME_TEST_UTIL_H */
