/* nbdkit-vdo: vdoadm, the administration tool for VDO volumes. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "status.h"
#include "vdoadm.h"

const char *vdoadm_program = "vdoadm";

struct subcommand {
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
};

static const struct subcommand subcommands[] = {
  { "format", vdoadm_format, "create a VDO volume on a file or block device" },
  { "dump", vdoadm_dump, "print the geometry, super block and layout" },
  { "list", vdoadm_list, "list the metadata regions as block ranges" },
  { "read-only", vdoadm_read_only, "put a volume into read-only mode" },
  { "force-rebuild", vdoadm_force_rebuild,
    "make a read-only volume rebuild its metadata at the next start" },
  { "audit", vdoadm_audit,
    "check the block map against the reference counts, as vdoaudit" },
  { "stats", vdoadm_stats, "print vdostats' space figures, computed offline" },
};

static void
usage (FILE *fp)
{
  size_t i;

  fprintf (fp, "Usage: %s COMMAND [OPTIONS] DISK\n\nCommands:\n",
           vdoadm_program);
  for (i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
    fprintf (fp, "  %-14s %s\n", subcommands[i].name, subcommands[i].summary);
  fprintf (fp, "\nRun '%s COMMAND --help' for a command's options; "
           "see vdoadm(8).\n", vdoadm_program);
}

static void
tool_sink (enum vdo_log_level level, const char *message)
{
  if (level == VDO_LOG_DEBUG && !getenv ("VDOADM_DEBUG"))
    return;
  fprintf (stderr, "%s: %s%s\n", vdoadm_program,
           level == VDO_LOG_WARNING ? "warning: " : "", message);
}

int
vdoadm_exit_status (int status)
{
  int code;

  if (status == VDO_SUCCESS)
    return EXIT_SUCCESS;
  code = status & 0xff;
  return code ? code : EXIT_FAILURE;
}

int
main (int argc, char **argv)
{
  size_t i;

  vdo_set_log_sink (tool_sink);
  if (argc < 2) {
    usage (stderr);
    return EXIT_FAILURE;
  }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    usage (stdout);
    return EXIT_SUCCESS;
  }
  if (strcmp (argv[1], "--version") == 0) {
    printf ("%s %s\n", vdoadm_program, PACKAGE_VERSION);
    return EXIT_SUCCESS;
  }
  for (i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
    if (strcmp (argv[1], subcommands[i].name) == 0)
      return subcommands[i].run (argc - 1, argv + 1);

  fprintf (stderr, "%s: unknown command '%s'\n", vdoadm_program, argv[1]);
  usage (stderr);
  return EXIT_FAILURE;
}
