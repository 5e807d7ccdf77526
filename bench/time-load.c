/* nbdkit-vdo bench: time-load, one start-up of a volume timed.
 *
 * It runs what the plugin runs, with the plugin's default options:
 * vdo_load (get_ready), vdo_start (after_fork: crash recovery of a
 * DIRTY volume, or the read-only rebuild of a FORCE_REBUILD one, and the
 * scrubbing after a recovery, all happen here, before serving), then
 * vdo_stop (the clean save at exit).  It prints each step's wall time,
 * libvdo's messages stamped with the time since the start, the super
 * block before and after, and the process's peak RSS.  --count-extents
 * also counts, while serving, the logical blocks that read as data, as
 * the zero block, and as holes.
 *
 *   time-load [--count-extents] IMAGE
 */
#include <config.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "logger.h"
#include "status.h"
#include "super-block.h"
#include "vdo.h"
#include "volume.h"

/* vdo_extents takes at most 4 GiB at once. */
#define EXTENT_STEP (UINT64_C (1) << 30)

static const char *program = "time-load";
static double started;

static double
now_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
stamped_sink (enum vdo_log_level level, const char *message)
{
  if (level > VDO_LOG_INFO)
    return;
  printf ("  [%8.3f s] %s%s\n", now_seconds () - started,
          level == VDO_LOG_ERROR ? "error: "
          : level == VDO_LOG_WARNING ? "warning: " : "", message);
  fflush (stdout);
}

static int
print_super_block (const char *when, const char *path)
{
  const struct vdo_component_states *s;
  struct vdo_volume *volume;
  int r = vdo_volume_open (path, false, &volume);

  if (r != VDO_SUCCESS)
    return r;
  s = vdo_volume_get_states (volume);
  printf ("state %s: %s\n", when, vdo_state_name (s->state));
  printf ("logical blocks used %s: %" PRIu64 "\n", when,
          s->recovery_journal.logical_blocks_used);
  printf ("block map data blocks %s: %" PRIu64 "\n", when,
          s->recovery_journal.block_map_data_blocks);
  printf ("journal start %s: %" PRIu64 "\n", when,
          s->recovery_journal.journal_start);
  printf ("complete recoveries %s: %" PRIu64 "\n", when,
          s->complete_recoveries);
  vdo_volume_close (volume);
  return VDO_SUCCESS;
}

struct extent_counts {
  uint64_t blocks[3];           /* by enum vdo_extent_type */
};

static int
count_extent (void *context, uint64_t offset, uint64_t length,
              enum vdo_extent_type type)
{
  struct extent_counts *counts = context;

  (void) offset;
  if ((unsigned int) type < 3)
    counts->blocks[type] += length / 4096;
  return 0;
}

static int
count_extents (struct vdo *vdo)
{
  struct extent_counts counts = { { 0 } };
  uint64_t size = vdo_logical_bytes (vdo), offset;
  double begin = now_seconds ();
  int r = 0;

  for (offset = 0; offset < size && r == 0; offset += EXTENT_STEP) {
    uint64_t count = size - offset < EXTENT_STEP ? size - offset
                                                 : EXTENT_STEP;

    r = vdo_extents (vdo, (uint32_t) count, offset, count_extent, &counts);
  }
  if (r != 0) {
    fprintf (stderr, "%s: cannot list the extents: %s\n", program,
             vdo_status_to_string (r));
    return r;
  }
  printf ("data lbns: %" PRIu64 "\n", counts.blocks[VDO_EXTENT_DATA]);
  printf ("zero lbns: %" PRIu64 "\n", counts.blocks[VDO_EXTENT_ZERO]);
  printf ("unmapped lbns: %" PRIu64 "\n", counts.blocks[VDO_EXTENT_HOLE_ZERO]);
  printf ("extents listed in: %.3f s\n", now_seconds () - begin);
  return 0;
}

/* Load, start, optionally count, stop: the plugin's life without
 * clients.  Returns 0 or the first error (already printed). */
static int
run (const char *path, bool extents)
{
  struct vdo_options options = { 0 };
  struct vdo *vdo = NULL;
  double t0, t1, t2, stopping;
  int r;

  t0 = now_seconds ();
  r = vdo_load (path, &options, &vdo);
  t1 = now_seconds ();
  if (r == VDO_SUCCESS)
    printf ("vdo_load: %.3f s\n", t1 - t0);
  if (r == VDO_SUCCESS)
    r = vdo_start (vdo);
  t2 = now_seconds ();
  if (r == VDO_SUCCESS)
    printf ("vdo_start: %.3f s\n", t2 - t1);
  if (r == VDO_SUCCESS && extents)
    r = count_extents (vdo);
  stopping = now_seconds ();
  if (r == VDO_SUCCESS)
    r = vdo_stop (vdo);
  if (r == VDO_SUCCESS)
    printf ("vdo_stop: %.3f s\n", now_seconds () - stopping);
  vdo_free (vdo);
  if (r != VDO_SUCCESS)
    fprintf (stderr, "%s: starting %s failed: %s\n", program, path,
             vdo_status_to_string (r));
  return r;
}

int
main (int argc, char **argv)
{
  static const struct option long_options[] = {
    { "count-extents", no_argument, NULL, 'e' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct rusage usage;
  bool extents = false;
  const char *path;
  int c, r;

  started = now_seconds ();
  vdo_set_log_sink (stamped_sink);
  while ((c = getopt_long (argc, argv, "", long_options, NULL)) != -1) {
    if (c == 'e')
      extents = true;
    else if (c == 'h') {
      printf ("Usage: %s [--count-extents] IMAGE\n", program);
      return EXIT_SUCCESS;
    }
    else
      goto usage;
  }
  if (optind != argc - 1)
    goto usage;
  path = argv[optind];

  r = print_super_block ("before", path);
  if (r == VDO_SUCCESS)
    r = run (path, extents);
  if (r == VDO_SUCCESS)
    r = print_super_block ("after", path);
  getrusage (RUSAGE_SELF, &usage);
  printf ("peak RSS: %.1f MiB\n", usage.ru_maxrss / 1024.0);
  return r == VDO_SUCCESS ? EXIT_SUCCESS : EXIT_FAILURE;

 usage:
  fprintf (stderr, "Usage: %s [--count-extents] IMAGE\n", program);
  return EXIT_FAILURE;
}
