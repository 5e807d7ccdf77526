/* nbdkit-vdo: the Check suites run by tests/unit-tests.
 * Each module's tests live in their own test-*.c file and export one
 * suite constructor, listed here and in unit-main.c. */
#ifndef VDO_UNIT_SUITES_H
#define VDO_UNIT_SUITES_H

#include <check.h>

Suite *checksum_suite (void);
Suite *work_queue_suite (void);
Suite *int_map_suite (void);
Suite *dedupe_suite (void);
Suite *write_ack_suite (void);
Suite *pbn_lock_suite (void);
Suite *packer_suite (void);
Suite *compression_suite (void);
Suite *geometry_suite (void);
Suite *index_geometry_suite (void);
Suite *index_format_suite (void);
Suite *open_chapter_suite (void);
Suite *dedupe_index_suite (void);
Suite *volume_layout_suite (void);
Suite *block_map_format_suite (void);
Suite *compressed_block_format_suite (void);
Suite *recovery_journal_format_suite (void);
Suite *slab_journal_format_suite (void);
Suite *ref_counts_format_suite (void);
Suite *slab_summary_format_suite (void);
Suite *dedupe_format_suite (void);
Suite *io_suite (void);
Suite *io_simulator_suite (void);
Suite *volume_validation_suite (void);
Suite *audit_suite (void);
Suite *block_map_suite (void);
Suite *block_map_writeback_suite (void);
Suite *recovery_journal_suite (void);
Suite *journal_parser_suite (void);
Suite *repair_restart_suite (void);
Suite *slab_depot_suite (void);
Suite *slab_depot_load_suite (void);
Suite *volume_index_suite (void);

#endif /* VDO_UNIT_SUITES_H */
