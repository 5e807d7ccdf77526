/* nbdkit-vdo: vdoadm stats, vdostats' space figures computed offline. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "audit.h"
#include "status.h"
#include "vdoadm.h"
#include "volume.h"

/* Wide enough for the longest label, as vdostats --verbose aligns. */
#define LABEL_WIDTH 24

/* Only a walk that cannot finish matters here; 'vdoadm audit' is the
 * place for every other problem. */
static void
print_fatal (void *context, enum vdo_audit_check check, const char *message)
{
  (void) context;
  if (check == VDO_AUDIT_INVALID_MAPPING)
    fprintf (stderr, "%s: %s\n", vdoadm_program, message);
}

static void
print_field (const char *label, uint64_t value)
{
  printf ("  %-*s : %" PRIu64 "\n", LABEL_WIDTH, label, value);
}

static void
print_percent (const char *label, int value)
{
  if (value < 0)
    printf ("  %-*s : N/A\n", LABEL_WIDTH, label);
  else
    printf ("  %-*s : %d\n", LABEL_WIDTH, label, value);
}

static void
print_text (const char *disk, const struct vdo_volume_stats *s)
{
  printf ("%s :\n", disk);
  print_field ("block size", VDO_BLOCK_SIZE);
  print_field ("logical blocks", s->logical_blocks);
  print_field ("logical blocks used", s->logical_blocks_used);
  print_field ("logical blocks mapped", s->logical_blocks_mapped);
  print_field ("physical blocks", s->physical_blocks);
  print_field ("data blocks used", s->data_blocks_used);
  print_field ("overhead blocks used", s->overhead_blocks_used);
  print_field ("block map blocks", s->block_map_blocks);
  print_field ("free blocks", s->free_blocks);
  print_field ("1K-blocks", s->kib_total);
  print_field ("1K-blocks used", s->kib_used);
  print_field ("1K-blocks available", s->kib_available);
  print_percent ("used percent", s->used_percent);
  print_percent ("saving percent", s->saving_percent);
}

static void
print_json (const char *disk, const char *state,
            const struct vdo_volume_stats *s)
{
  printf ("{\n  \"disk\": ");
  vdoadm_print_json_string (disk);
  printf (",\n  \"state\": \"%s\",\n", state);
  printf ("  \"block_size\": %d,\n", VDO_BLOCK_SIZE);
  printf ("  \"logical_blocks\": %" PRIu64 ",\n", s->logical_blocks);
  printf ("  \"logical_blocks_used\": %" PRIu64 ",\n", s->logical_blocks_used);
  printf ("  \"logical_blocks_mapped\": %" PRIu64 ",\n",
          s->logical_blocks_mapped);
  printf ("  \"physical_blocks\": %" PRIu64 ",\n", s->physical_blocks);
  printf ("  \"data_blocks_used\": %" PRIu64 ",\n", s->data_blocks_used);
  printf ("  \"overhead_blocks_used\": %" PRIu64 ",\n",
          s->overhead_blocks_used);
  printf ("  \"block_map_blocks\": %" PRIu64 ",\n", s->block_map_blocks);
  printf ("  \"free_blocks\": %" PRIu64 ",\n", s->free_blocks);
  printf ("  \"1k_blocks\": %" PRIu64 ",\n", s->kib_total);
  printf ("  \"1k_blocks_used\": %" PRIu64 ",\n", s->kib_used);
  printf ("  \"1k_blocks_available\": %" PRIu64 ",\n", s->kib_available);
  printf ("  \"used_percent\": %d,\n", s->used_percent);
  if (s->saving_percent < 0)
    printf ("  \"saving_percent\": null\n}\n");
  else
    printf ("  \"saving_percent\": %d\n}\n", s->saving_percent);
}

int
vdoadm_stats (int argc, char **argv)
{
  const struct vdo_component_states *states;
  struct vdo_audit_result result;
  struct vdo_volume_stats stats;
  struct vdo_volume *volume;
  const char *disk = NULL;
  bool json = false;
  int r;

  r = vdoadm_parse_disk_args (argc, argv, "stats", true, &json, &disk);
  if (r >= 0)
    return r;
  r = vdoadm_open_volume (disk, false, &volume);
  if (r != VDO_SUCCESS)
    return vdoadm_exit_status (r);
  states = vdo_volume_get_states (volume);
  r = vdo_audit_volume (volume, print_fatal, NULL, &result);
  if (r != VDO_SUCCESS) {
    fprintf (stderr, "%s: cannot compute the statistics of %s: %s\n",
             vdoadm_program, disk, vdo_status_to_string (r));
    vdo_volume_close (volume);
    return vdoadm_exit_status (r);
  }

  if (states->state != VDO_CLEAN && states->state != VDO_NEW)
    fprintf (stderr, "%s: warning: the volume was not cleanly shut down "
             "(state %s): these are the figures of its last saved "
             "metadata\n", vdoadm_program, vdo_state_name (states->state));
  if (!vdo_audit_passed (&result))
    fprintf (stderr, "%s: warning: the block map and the reference counts "
             "disagree; run '%s audit %s'\n", vdoadm_program, vdoadm_program,
             disk);
  vdo_compute_volume_stats (states, &result, &stats);
  if (json)
    print_json (disk, vdo_state_name (states->state), &stats);
  else
    print_text (disk, &stats);
  vdo_volume_close (volume);
  return EXIT_SUCCESS;
}
