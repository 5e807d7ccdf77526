/* nbdkit-vdo: vdoadm audit, the checks of vdoaudit. */
#include <config.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "audit.h"
#include "status.h"
#include "vdoadm.h"
#include "volume.h"

/* Problems printed without --verbose; the rest are only counted. */
#define PROBLEMS_SHOWN 20

static const struct option audit_options[] = {
  { "verbose", no_argument, NULL, 'v' },
  { "help", no_argument, NULL, 'h' },
  { NULL, 0, NULL, 0 },
};

struct printer {
  bool verbose;
  uint64_t shown;
  uint64_t hidden;
};

static void
print_problem (void *context, enum vdo_audit_check check, const char *message)
{
  struct printer *p = context;

  /* The closing lines give the logical block count, as vdoaudit's do. */
  if (check == VDO_AUDIT_LOGICAL_COUNT)
    return;
  /* One line per slab at most, and it says where the hidden ones are. */
  if (check == VDO_AUDIT_SLAB_ERRORS) {
    printf ("%s\n", message);
    return;
  }
  if (p->verbose || p->shown < PROBLEMS_SHOWN) {
    printf ("%s\n", message);
    p->shown++;
  }
  else
    p->hidden++;
}

static const char *
plural (uint64_t count)
{
  return count == 1 ? "" : "s";
}

static void
print_counts (const char *disk, const struct vdo_audit_result *result)
{
  printf ("Audit of %s:\n", disk);
  if (result->aborted) {
    printf ("  the walk stopped after %" PRIu64 " logical blocks and %" PRIu64
            " tree pages\n", result->logical_blocks_used, result->tree_pages);
    return;
  }
  printf ("  logical blocks used:    %" PRIu64 " (super block: %" PRIu64 ")\n",
          result->logical_blocks_used, result->saved_logical_blocks_used);
  printf ("  block map tree pages:   %" PRIu64 " (super block: %" PRIu64 ")\n",
          result->tree_pages, result->saved_tree_pages);
  printf ("  data blocks allocated:  %" PRIu64 " of %" PRIu64 "\n",
          result->allocated_blocks, result->slab_data_blocks);
  printf ("  block mapping errors:   %" PRIu64 "\n", result->mapping_errors);
  printf ("  misplaced tree pages:   %" PRIu64 "\n", result->misplaced_pages);
  printf ("  reference count errors: %" PRIu64 " in %" PRIu64 " slab%s\n",
          result->reference_count_errors, result->error_slabs,
          plural (result->error_slabs));
  printf ("  free space hint errors: %" PRIu64 "\n", result->hint_errors);
}

/* The closing line of a failed audit: what did not match. */
static void
print_failure (const struct vdo_audit_result *result)
{
  uint64_t mapping = result->mapping_errors + result->misplaced_pages;
  const char *separator = "";

  printf ("Audit failed:");
  if (result->logical_blocks_used != result->saved_logical_blocks_used) {
    printf (" logical block count mismatch");
    separator = ",";
  }
  if (mapping > 0) {
    printf ("%s %" PRIu64 " block mapping error%s", separator, mapping,
            plural (mapping));
    separator = ",";
  }
  if (result->reference_count_errors > 0) {
    printf ("%s %" PRIu64 " reference count error%s in %" PRIu64 " slab%s",
            separator, result->reference_count_errors,
            plural (result->reference_count_errors), result->error_slabs,
            plural (result->error_slabs));
    separator = ",";
  }
  if (result->hint_errors > 0)
    printf ("%s %" PRIu64 " free space hint error%s", separator,
            result->hint_errors, plural (result->hint_errors));
  printf (".\n");
}

int
vdoadm_audit (int argc, char **argv)
{
  struct printer printer = { 0 };
  struct vdo_audit_result result;
  const struct vdo_component_states *states;
  struct vdo_volume *volume;
  const char *disk;
  int c, r;

  while ((c = getopt_long (argc, argv, "", audit_options, NULL)) != -1) {
    if (c == 'v')
      printer.verbose = true;
    else if (c == 'h') {
      printf ("Usage: %s audit [--verbose] DISK\n", vdoadm_program);
      return EXIT_SUCCESS;
    }
    else
      goto usage;
  }
  if (optind != argc - 1)
    goto usage;
  disk = argv[optind];

  r = vdoadm_open_volume (disk, false, &volume);
  if (r != VDO_SUCCESS)
    return vdoadm_exit_status (r);
  states = vdo_volume_get_states (volume);
  /* vdoaudit's preconditions, and its messages. */
  if (states->state == VDO_NEW) {
    fprintf (stderr, "%s: The VDO volume is newly formatted and has no "
             "auditable state\n", vdoadm_program);
    vdo_volume_close (volume);
    return EXIT_FAILURE;
  }
  if (states->state != VDO_CLEAN)
    fprintf (stderr, "%s: WARNING: The VDO was not cleanly shut down (it has "
             "state '%s')\n", vdoadm_program, vdo_state_name (states->state));

  r = vdo_audit_volume (volume, print_problem, &printer, &result);
  vdo_volume_close (volume);
  if (r != VDO_SUCCESS && r != VDO_BAD_MAPPING) {
    fprintf (stderr, "%s: cannot audit %s: %s\n", vdoadm_program, disk,
             vdo_status_to_string (r));
    return vdoadm_exit_status (r);
  }
  if (printer.hidden > 0)
    printf ("... and %" PRIu64 " more problem%s (use --verbose to see all)\n",
            printer.hidden, plural (printer.hidden));
  print_counts (disk, &result);
  if (result.aborted) {
    printf ("Audit aborted: the block map holds an invalid mapping.\n");
    return EXIT_FAILURE;
  }

  if (result.logical_blocks_used == result.saved_logical_blocks_used)
    printf ("Logical block count matched at %" PRIu64 "\n",
            result.saved_logical_blocks_used);
  else
    printf ("Logical block count mismatch! Expected %" PRIu64 ", got %"
            PRIu64 "\n", result.saved_logical_blocks_used,
            result.logical_blocks_used);
  if (vdo_audit_passed (&result)) {
    printf ("All pbn references matched.\n");
    return EXIT_SUCCESS;
  }
  print_failure (&result);
  return EXIT_FAILURE;

 usage:
  fprintf (stderr, "Usage: %s audit [--verbose] DISK\n", vdoadm_program);
  return EXIT_FAILURE;
}
