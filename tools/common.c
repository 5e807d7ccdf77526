/* nbdkit-vdo: argument and volume helpers shared by vdoadm commands. */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "status.h"
#include "vdoadm.h"
#include "volume.h"

static const struct option disk_options[] = {
  { "json", no_argument, NULL, 'j' },
  { "help", no_argument, NULL, 'h' },
  { NULL, 0, NULL, 0 },
};

/* Parse "[--json] DISK"; returns -1 to continue, or an exit status. */
int
vdoadm_parse_disk_args (int argc, char **argv, const char *command,
                        bool allow_json,
                        bool *json, const char **disk)
{
  int c;

  while ((c = getopt_long (argc, argv, "", disk_options, NULL)) != -1) {
    if (c == 'j' && allow_json)
      *json = true;
    else if (c == 'h') {
      printf ("Usage: %s %s%s DISK\n", vdoadm_program, command,
              allow_json ? " [--json]" : "");
      return EXIT_SUCCESS;
    }
    else
      goto bad;
  }
  if (optind != argc - 1)
    goto bad;
  *disk = argv[optind];
  return -1;

 bad:
  fprintf (stderr, "Usage: %s %s%s DISK\n", vdoadm_program, command,
           allow_json ? " [--json]" : "");
  return EXIT_FAILURE;
}

int
vdoadm_open_volume (const char *disk, bool writable, struct vdo_volume **volume)
{
  int r = vdo_volume_open (disk, writable, volume);

  if (r != VDO_SUCCESS)
    fprintf (stderr, "%s: cannot use %s: %s\n", vdoadm_program, disk,
             vdo_status_to_string (r));
  return r;
}

void
vdoadm_print_json_string (const char *s)
{
  putchar ('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      printf ("\\%c", *s);
    else if ((unsigned char) *s < 0x20)
      printf ("\\u%04x", (unsigned char) *s);
    else
      putchar (*s);
  }
  putchar ('"');
}
