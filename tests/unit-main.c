/* nbdkit-vdo: runs every Check suite in one runner, so a single summary
 * line reports the whole unit test set. */
#include <config.h>

#include <stdlib.h>

#include "logger.h"
#include "unit-suites.h"

static Suite *(*const suites[]) (void) = {
  checksum_suite,
  work_queue_suite,
  int_map_suite,
  geometry_suite,
  index_geometry_suite,
  index_format_suite,
  open_chapter_suite,
  dedupe_index_suite,
  volume_layout_suite,
  block_map_format_suite,
  compressed_block_format_suite,
  recovery_journal_format_suite,
  slab_journal_format_suite,
  ref_counts_format_suite,
  slab_summary_format_suite,
  dedupe_format_suite,
  io_suite,
  io_simulator_suite,
  volume_validation_suite,
  audit_suite,
  recovery_journal_suite,
  journal_parser_suite,
  repair_restart_suite,
  block_map_suite,
  block_map_writeback_suite,
  slab_depot_suite,
  slab_depot_load_suite,
  pbn_lock_suite,
  packer_suite,
  compression_suite,
  volume_index_suite,
  dedupe_suite,
  write_ack_suite,
};

static void
quiet_sink (enum vdo_log_level level, const char *message)
{
  /* Expected rejections log errors; keep the runner's output readable. */
  (void) level;
  (void) message;
}

int
main (void)
{
  SRunner *runner;
  size_t i;
  int failed;

  if (!getenv ("VDO_TEST_VERBOSE"))
    vdo_set_log_sink (quiet_sink);

  runner = srunner_create (NULL);
  for (i = 0; i < sizeof suites / sizeof suites[0]; i++)
    srunner_add_suite (runner, suites[i] ());
  srunner_run_all (runner, CK_NORMAL);
  failed = srunner_ntests_failed (runner);
  srunner_free (runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
