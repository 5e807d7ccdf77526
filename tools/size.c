/* nbdkit-vdo: vdoformat's size syntax and its human-readable sizes. */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "vdoadm.h"

int
vdoadm_parse_size (const char *text, uint64_t *bytes)
{
  unsigned shift;
  uint64_t value;
  char *end;

  if (!isdigit ((unsigned char) text[0]))
    return EINVAL;
  errno = 0;
  value = strtoull (text, &end, 10);
  if (errno != 0)
    return ERANGE;

  switch (toupper ((unsigned char) *end)) {
  case '\0': shift = 20; end--; break;     /* no suffix: MiB, as vdoformat */
  case 'B': shift = 0; break;
  case 'K': shift = 10; break;
  case 'M': shift = 20; break;
  case 'G': shift = 30; break;
  case 'T': shift = 40; break;
  case 'P': shift = 50; break;
  default: return EINVAL;
  }
  if (end[1] != '\0')
    return EINVAL;
  if (value > (UINT64_MAX >> shift))
    return ERANGE;
  *bytes = value << shift;
  return 0;
}

void
vdoadm_print_readable_size (uint64_t bytes)
{
  static const char *const units[] = { "B", "KB", "MB", "GB", "TB", "PB", "EB" };
  double value = (double) bytes;
  unsigned unit = 0;

  while (value >= 1024 && unit + 1 < sizeof units / sizeof units[0]) {
    value /= 1024;
    unit++;
  }
  printf ("%.2f %s", value, units[unit]);
}
