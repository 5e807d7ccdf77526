/* nbdkit-vdo: decode an image's geometry block and super block, encode
 * them again, and check the bytes are identical (whole 4 KiB blocks).
 * Usage: reencode-metadata IMAGE... */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "geometry.h"
#include "status.h"
#include "super-block.h"

static int
read_block (int fd, uint64_t block, uint8_t *buf)
{
  return pread (fd, buf, VDO_BLOCK_SIZE, block * VDO_BLOCK_SIZE)
         == VDO_BLOCK_SIZE ? 0 : -1;
}

static int
check_image (const char *path)
{
  uint8_t block[VDO_BLOCK_SIZE], encoded[VDO_BLOCK_SIZE];
  struct vdo_volume_geometry geometry;
  struct vdo_component_states states;
  uint64_t super_block;
  int fd, r;

  fd = open (path, O_RDONLY);
  if (fd < 0 || read_block (fd, 0, block) != 0) {
    perror (path);
    return 1;
  }
  r = vdo_decode_volume_geometry (block, &geometry);
  if (r != VDO_SUCCESS) {
    fprintf (stderr, "%s: geometry: %s\n", path, vdo_status_to_string (r));
    return 1;
  }
  vdo_encode_volume_geometry (encoded, &geometry);
  if (memcmp (block, encoded, VDO_BLOCK_SIZE) != 0) {
    fprintf (stderr, "%s: re-encoded geometry block differs\n", path);
    return 1;
  }

  super_block = vdo_geometry_data_region_start (&geometry) - geometry.bio_offset;
  if (read_block (fd, super_block, block) != 0) {
    perror (path);
    return 1;
  }
  r = vdo_decode_super_block (block, &states);
  if (r == VDO_SUCCESS)
    r = vdo_validate_component_states (&states, &geometry, 0);
  if (r != VDO_SUCCESS) {
    fprintf (stderr, "%s: super block: %s\n", path, vdo_status_to_string (r));
    return 1;
  }
  vdo_encode_super_block (encoded, &states);
  if (memcmp (block, encoded, VDO_BLOCK_SIZE) != 0) {
    fprintf (stderr, "%s: re-encoded super block differs\n", path);
    return 1;
  }
  close (fd);
  printf ("%s: geometry and super block (%s) re-encode identically\n",
          path, vdo_state_name (states.state));
  return 0;
}

int
main (int argc, char **argv)
{
  int i, failed = 0;

  for (i = 1; i < argc; i++)
    failed |= check_image (argv[i]);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
