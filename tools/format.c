/* nbdkit-vdo: vdoadm format. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "index-geometry.h"
#include "status.h"
#include "vdoadm.h"
#include "volume.h"

static void
format_usage (FILE *fp)
{
  fprintf (fp,
           "Usage: %s format [--logical-size=SIZE] [--slab-bits=N]\n"
           "                 [--index-memory=GB] [--sparse-index] [--force] DISK\n"
           "\n"
           "  --logical-size=SIZE  exported size; suffix B, K, M, G, T or P,\n"
           "                       no suffix means MiB (default: fits the disk)\n"
           "  --slab-bits=N        slab size 2^N blocks, 13..23 (default 19)\n"
           "  --index-memory=GB    dedupe index memory: 0.25, 0.5, 0.75 or\n"
           "                       1..1024 (default 0.25)\n"
           "  --sparse-index       use a sparse index (10 times the window)\n"
           "  --force              overwrite an existing VDO volume\n",
           vdoadm_program);
}

enum {
  OPT_NONCE = 256,
  OPT_UUID,
};

static const struct option format_options[] = {
  { "logical-size", required_argument, NULL, 'l' },
  { "slab-bits", required_argument, NULL, 's' },
  { "index-memory", required_argument, NULL, 'm' },
  { "uds-memory-size", required_argument, NULL, 'm' },
  { "sparse-index", no_argument, NULL, 'S' },
  { "uds-sparse", no_argument, NULL, 'S' },
  { "force", no_argument, NULL, 'f' },
  { "help", no_argument, NULL, 'h' },
  /* For reproducing a reference image byte for byte (tests). */
  { "nonce", required_argument, NULL, OPT_NONCE },
  { "uuid", required_argument, NULL, OPT_UUID },
  { NULL, 0, NULL, 0 },
};

static void
print_summary (const struct vdo_format_result *result, unsigned slab_bits)
{
  const struct vdo_config *config = &result->states.config;
  uint64_t slab_bytes = config->slab_size * VDO_BLOCK_SIZE;

  if (result->logical_defaulted)
    printf ("Logical blocks defaulted to %" PRIu64 " blocks.\n",
            config->logical_blocks);
  printf ("The VDO volume can address ");
  vdoadm_print_readable_size (result->slab_count * slab_bytes);
  printf (" in %" PRIu64 " data slab%s", result->slab_count,
          result->slab_count != 1 ? "s" : "");
  if (result->slab_count > 1) {
    printf (", each ");
    vdoadm_print_readable_size (slab_bytes);
  }
  printf (".\n");
  if (result->slab_count < VDO_MAX_SLABS) {
    printf ("It can grow to address at most ");
    vdoadm_print_readable_size (VDO_MAX_SLABS * slab_bytes);
    printf (" of physical storage in %d slabs.\n", VDO_MAX_SLABS);
    if (slab_bits < VDO_MAX_SLAB_BITS)
      printf ("If a larger maximum size might be needed, use bigger slabs.\n");
  }
  else {
    printf ("The volume has the maximum number of slabs and so cannot grow.\n");
    if (slab_bits < VDO_MAX_SLAB_BITS)
      printf ("Consider using larger slabs to allow the volume to grow.\n");
  }
}

int
vdoadm_format (int argc, char **argv)
{
  struct vdo_format_options options = { 0 };
  struct vdo_format_result result;
  char *end;
  int c, r;

  while ((c = getopt_long (argc, argv, "", format_options, NULL)) != -1) {
    switch (c) {
    case 'l':
      r = vdoadm_parse_size (optarg, &options.logical_bytes);
      if (r != 0) {
        fprintf (stderr, "%s: invalid logical size '%s': a number with an "
                 "optional B, K, M, G, T or P suffix\n", vdoadm_program, optarg);
        return EXIT_FAILURE;
      }
      if (options.logical_bytes % VDO_BLOCK_SIZE != 0) {
        fprintf (stderr, "%s: logical size must be a multiple of block size %d\n",
                 vdoadm_program, VDO_BLOCK_SIZE);
        return EXIT_FAILURE;
      }
      break;
    case 's': {
      unsigned long bits;

      errno = 0;
      bits = strtoul (optarg, &end, 10);
      if (errno || end == optarg || *end || bits < VDO_MIN_SLAB_BITS
          || bits > VDO_MAX_SLAB_BITS) {
        fprintf (stderr, "%s: invalid slab bits, must be %d-%d\n",
                 vdoadm_program, VDO_MIN_SLAB_BITS, VDO_MAX_SLAB_BITS);
        return EXIT_FAILURE;
      }
      options.slab_bits = (unsigned) bits;
      break;
    }
    case 'm':
      /* The parser explains a rejection. */
      if (vdo_parse_index_memory (optarg, &options.index_memory) != VDO_SUCCESS)
        return EXIT_FAILURE;
      break;
    case 'S':
      options.sparse_index = true;
      break;
    case 'f':
      options.force = true;
      break;
    case OPT_NONCE:
      errno = 0;
      options.nonce = strtoull (optarg, &end, 0);
      if (errno || end == optarg || *end) {
        fprintf (stderr, "%s: invalid nonce '%s'\n", vdoadm_program, optarg);
        return EXIT_FAILURE;
      }
      options.have_nonce = true;
      break;
    case OPT_UUID:
      if (uuid_parse (optarg, options.uuid) != 0) {
        fprintf (stderr, "%s: invalid UUID '%s'\n", vdoadm_program, optarg);
        return EXIT_FAILURE;
      }
      options.have_uuid = true;
      break;
    case 'h':
      format_usage (stdout);
      return EXIT_SUCCESS;
    default:
      format_usage (stderr);
      return EXIT_FAILURE;
    }
  }
  if (optind != argc - 1) {
    format_usage (stderr);
    return EXIT_FAILURE;
  }

  r = vdo_volume_format (argv[optind], &options, &result);
  if (r != VDO_SUCCESS) {
    fprintf (stderr, "%s: formatting %s failed: %s\n", vdoadm_program,
             argv[optind], vdo_status_to_string (r));
    return vdoadm_exit_status (r);
  }
  print_summary (&result, options.slab_bits ? options.slab_bits
                                            : VDO_DEFAULT_SLAB_BITS);
  return EXIT_SUCCESS;
}
