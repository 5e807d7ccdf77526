/* nbdkit-vdo: the Check suites run by tests/unit-tests.
 * Each module's tests live in their own test-*.c file and export one
 * suite constructor, listed here and in unit-main.c. */
#ifndef VDO_UNIT_SUITES_H
#define VDO_UNIT_SUITES_H

#include <check.h>

Suite *checksum_suite (void);
Suite *geometry_suite (void);

#endif /* VDO_UNIT_SUITES_H */
