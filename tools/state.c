/* nbdkit-vdo: vdoadm read-only and vdoadm force-rebuild, the persisted
 * state changes of vdoreadonly and vdoforcerebuild. */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "status.h"
#include "vdoadm.h"
#include "volume.h"

static int
change_state (int argc, char **argv, const char *command,
              int (*change) (struct vdo_volume *), const char *done)
{
  struct vdo_volume *volume;
  const char *disk = NULL;
  bool json = false;
  int r;

  r = vdoadm_parse_disk_args (argc, argv, command, false, &json, &disk);
  if (r >= 0)
    return r;
  r = vdoadm_open_volume (disk, true, &volume);
  if (r != VDO_SUCCESS)
    return vdoadm_exit_status (r);
  r = change (volume);
  if (r != VDO_SUCCESS)
    fprintf (stderr, "%s: %s on %s failed: %s\n", vdoadm_program, command,
             disk, vdo_status_to_string (r));
  else
    printf ("%s: %s\n", disk, done);
  vdo_volume_close (volume);
  return vdoadm_exit_status (r);
}

int
vdoadm_read_only (int argc, char **argv)
{
  return change_state (argc, argv, "read-only", vdo_volume_set_read_only,
                       "the volume is now in read-only mode");
}

int
vdoadm_force_rebuild (int argc, char **argv)
{
  return change_state (argc, argv, "force-rebuild", vdo_volume_force_rebuild,
                       "the volume will rebuild its metadata at the next start");
}
