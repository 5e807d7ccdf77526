/* nbdkit-vdo: change one counter in an image's super block, through
 * libvdo's decoder and encoder so the checksum stays right, to make
 * inconsistent volumes for the audit tests.
 * Usage: patch-super-block IMAGE logical-blocks-used|block-map-data-blocks N */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "geometry.h"
#include "status.h"
#include "super-block.h"

static int
transfer_block (int fd, uint64_t block, uint8_t *buf, bool writing)
{
  off_t offset = (off_t) block * VDO_BLOCK_SIZE;
  ssize_t n = writing ? pwrite (fd, buf, VDO_BLOCK_SIZE, offset)
                    : pread (fd, buf, VDO_BLOCK_SIZE, offset);

  return n == VDO_BLOCK_SIZE ? 0 : -1;
}

int
main (int argc, char **argv)
{
  uint8_t block[VDO_BLOCK_SIZE];
  struct vdo_volume_geometry geometry;
  struct vdo_component_states states;
  block_count_t *field;
  uint64_t super_block, value;
  char *end;
  int fd, r;

  if (argc != 4) {
    fprintf (stderr, "Usage: %s IMAGE logical-blocks-used|"
             "block-map-data-blocks N\n", argv[0]);
    return EXIT_FAILURE;
  }
  errno = 0;
  value = strtoull (argv[3], &end, 0);
  if (errno || end == argv[3] || *end) {
    fprintf (stderr, "%s: invalid number '%s'\n", argv[0], argv[3]);
    return EXIT_FAILURE;
  }

  fd = open (argv[1], O_RDWR);
  if (fd < 0 || transfer_block (fd, 0, block, false) != 0) {
    perror (argv[1]);
    return EXIT_FAILURE;
  }
  r = vdo_decode_volume_geometry (block, &geometry);
  super_block = vdo_geometry_data_region_start (&geometry) - geometry.bio_offset;
  if (r != VDO_SUCCESS || transfer_block (fd, super_block, block, false) != 0
      || (r = vdo_decode_super_block (block, &states)) != VDO_SUCCESS) {
    fprintf (stderr, "%s: cannot decode: %s\n", argv[1],
             r != VDO_SUCCESS ? vdo_status_to_string (r) : strerror (errno));
    return EXIT_FAILURE;
  }

  if (strcmp (argv[2], "logical-blocks-used") == 0)
    field = &states.recovery_journal.logical_blocks_used;
  else if (strcmp (argv[2], "block-map-data-blocks") == 0)
    field = &states.recovery_journal.block_map_data_blocks;
  else {
    fprintf (stderr, "%s: unknown field '%s'\n", argv[0], argv[2]);
    return EXIT_FAILURE;
  }
  *field = value;
  vdo_encode_super_block (block, &states);
  if (transfer_block (fd, super_block, block, true) != 0 || close (fd) != 0) {
    perror (argv[1]);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
