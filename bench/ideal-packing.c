/* nbdkit-vdo bench: ideal-packing, the floor bench/compression.sh
 * compares VDO's data_blocks_used with.
 *
 * Reads files block by block (4 KiB; a short tail is padded with zeros,
 * as a write of it would be) and skips all-zero blocks, which VDO maps to
 * the zero block.  With --unique, a block whose exact content an earlier
 * block had is skipped too (SHA-256, then a byte comparison against that
 * earlier block read again, so a collision cannot merge two blocks).
 * Each remaining block is compressed with vdo_compress_block, the
 * plugin's own keep rule: a block it refuses is stored whole.  The kept
 * fragments are packed first fit in arrival order into bins of
 * VDO_COMPRESSED_BLOCK_DATA_SIZE bytes and at most
 * VDO_MAX_COMPRESSION_SLOTS fragments; a bin left with one fragment
 * counts as an uncompressed block, as VDO never writes a one-fragment
 * compressed block.  First fit over all fragments at once is what a
 * packer with unlimited bins and no deadline would do, so VDO's packer
 * can only come close to it.
 *
 *   ideal-packing [--unique] [--json] FILE...
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "compressed-block-format.h"
#include "constants.h"

static const char *program = "ideal-packing";

struct counts {
  uint64_t blocks;          /* every block read */
  uint64_t zero;            /* all zero: no physical block */
  uint64_t unique;          /* non-zero and not skipped as a duplicate */
  uint64_t fragments;       /* unique blocks that compress */
  uint64_t incompressible;  /* unique blocks stored whole */
  uint64_t compressed;      /* bins of two or more fragments */
  uint64_t single;          /* bins of one: stored uncompressed */
};

/* Where a block was first seen, to compare a hash match byte for byte. */
struct location {
  int fd;
  off_t offset;
};

static void
die (const char *what, const char *name)
{
  fprintf (stderr, "%s: %s: %s\n", program, name, what);
  exit (1);
}

static bool
is_zero (const uint8_t *block)
{
  for (size_t i = 0; i < VDO_BLOCK_SIZE; i++)
    if (block[i] != 0)
      return false;
  return true;
}

/* Fill block from fd at offset, zero-padding a short tail; false at EOF. */
static bool
read_block (int fd, off_t offset, uint8_t *block, const char *name)
{
  size_t got = 0;

  while (got < VDO_BLOCK_SIZE) {
    ssize_t r = pread (fd, block + got, VDO_BLOCK_SIZE - got, offset + got);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      die (strerror (errno), name);
    }
    if (r == 0)
      break;
    got += r;
  }
  memset (block + got, 0, VDO_BLOCK_SIZE - got);
  return got > 0;
}

/* True if an identical block was seen before; else remembers this one. */
static bool
seen_before (GHashTable *seen, const uint8_t *block, int fd, off_t offset,
             const char *name)
{
  uint8_t digest[32];
  gsize length = sizeof digest;
  GChecksum *sum = g_checksum_new (G_CHECKSUM_SHA256);

  g_checksum_update (sum, block, VDO_BLOCK_SIZE);
  g_checksum_get_digest (sum, digest, &length);
  g_checksum_free (sum);

  GBytes *key = g_bytes_new (digest, length);
  struct location *where = g_hash_table_lookup (seen, key);
  if (where != NULL) {
    uint8_t earlier[VDO_BLOCK_SIZE];
    read_block (where->fd, where->offset, earlier, name);
    g_bytes_unref (key);
    if (memcmp (earlier, block, VDO_BLOCK_SIZE) == 0)
      return true;
    /* A SHA-256 collision: count the block as unique, unremembered. */
    return false;
  }
  where = g_new (struct location, 1);
  where->fd = fd;
  where->offset = offset;
  g_hash_table_insert (seen, key, where);
  return false;
}

/* First fit needs the first bin with room; a max tree over the bins'
 * free bytes finds it in O(log n), where a scan would take hours on a
 * few GiB.  A bin with all its slots used gets -1: nothing fits. */
struct bins {
  size_t leaves;     /* a power of two, at least the fragment count */
  int *room;         /* tree: room[1] is the root, leaves from room[leaves] */
  uint8_t *slots;    /* fragments in each bin */
  size_t used;       /* bins opened so far */
};

static void
set_room (struct bins *bins, size_t bin, int room)
{
  size_t i = bins->leaves + bin;

  bins->room[i] = room;
  for (i /= 2; i >= 1; i /= 2) {
    int l = bins->room[2 * i], r = bins->room[2 * i + 1];
    bins->room[i] = l > r ? l : r;
  }
}

static void
place (struct bins *bins, size_t size)
{
  size_t i = 1;

  if (bins->room[1] < (int) size) {
    /* No open bin has room: open the next one (the leaves were sized for
     * a bin per fragment, so one is always left). */
    size_t bin = bins->used++;
    bins->slots[bin] = 1;
    set_room (bins, bin, VDO_COMPRESSED_BLOCK_DATA_SIZE - (int) size);
    return;
  }
  while (i < bins->leaves)
    i = bins->room[2 * i] >= (int) size ? 2 * i : 2 * i + 1;
  size_t bin = i - bins->leaves;
  bins->slots[bin]++;
  set_room (bins, bin,
            bins->slots[bin] == VDO_MAX_COMPRESSION_SLOTS
            ? -1 : bins->room[i] - (int) size);
}

static void
pack (const uint16_t *sizes, size_t count, struct counts *c)
{
  struct bins bins = { .leaves = 1 };

  while (bins.leaves < count)
    bins.leaves *= 2;
  bins.room = g_new (int, 2 * bins.leaves);
  for (size_t i = 0; i < 2 * bins.leaves; i++)
    bins.room[i] = -1;   /* unopened bins take nothing */
  bins.slots = g_new0 (uint8_t, bins.leaves);

  for (size_t i = 0; i < count; i++)
    place (&bins, sizes[i]);
  for (size_t b = 0; b < bins.used; b++) {
    if (bins.slots[b] == 1)
      c->single++;
    else
      c->compressed++;
  }
  g_free (bins.room);
  g_free (bins.slots);
}

static void
usage (void)
{
  fprintf (stderr, "usage: %s [--unique] [--json] FILE...\n", program);
  exit (2);
}

int
main (int argc, char **argv)
{
  static const struct option options[] = {
    { "unique", no_argument, NULL, 'u' },
    { "json", no_argument, NULL, 'j' },
    { NULL, 0, NULL, 0 },
  };
  bool unique = false, json = false;
  int opt;

  while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 'u': unique = true; break;
    case 'j': json = true; break;
    default: usage ();
    }
  }
  if (optind == argc)
    usage ();

  struct counts c = { 0 };
  GHashTable *seen = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                            (GDestroyNotify) g_bytes_unref,
                                            g_free);
  GArray *sizes = g_array_new (FALSE, FALSE, sizeof (uint16_t));
  uint8_t block[VDO_BLOCK_SIZE];
  uint8_t fragment[VDO_MAX_COMPRESSED_FRAGMENT_SIZE];

  for (int a = optind; a < argc; a++) {
    const char *name = argv[a];
    /* Kept open to the end: --unique reads earlier blocks again. */
    int fd = open (name, O_RDONLY);
    if (fd < 0)
      die (strerror (errno), name);
    for (off_t offset = 0; read_block (fd, offset, block, name);
         offset += VDO_BLOCK_SIZE) {
      c.blocks++;
      if (is_zero (block)) {
        c.zero++;
        continue;
      }
      if (unique && seen_before (seen, block, fd, offset, name))
        continue;
      c.unique++;
      size_t size = vdo_compress_block (block, fragment);
      if (size == 0) {
        c.incompressible++;
        continue;
      }
      uint16_t s = size;
      g_array_append_val (sizes, s);
      c.fragments++;
    }
  }

  pack ((const uint16_t *) sizes->data, sizes->len, &c);
  uint64_t physical = c.incompressible + c.single + c.compressed;

  if (json) {
    printf ("{\"blocks\": %" PRIu64 ", \"zero\": %" PRIu64
            ", \"unique\": %" PRIu64 ", \"fragments\": %" PRIu64
            ", \"incompressible\": %" PRIu64
            ", \"single_fragment_bins\": %" PRIu64
            ", \"compressed_blocks\": %" PRIu64
            ", \"physical_blocks\": %" PRIu64 "}\n",
            c.blocks, c.zero, c.unique, c.fragments, c.incompressible,
            c.single, c.compressed, physical);
  } else {
    printf ("blocks:                      %" PRIu64 "\n", c.blocks);
    printf ("zero blocks:                 %" PRIu64 "\n", c.zero);
    printf ("%-29s%" PRIu64 "\n",
            unique ? "unique non-zero blocks:" : "non-zero blocks:", c.unique);
    printf ("compressible fragments:      %" PRIu64 "\n", c.fragments);
    printf ("incompressible blocks:       %" PRIu64 "\n", c.incompressible);
    printf ("single-fragment bins:        %" PRIu64 "\n", c.single);
    printf ("ideal compressed blocks:     %" PRIu64 "\n", c.compressed);
    printf ("ideal physical blocks:       %" PRIu64 "\n", physical);
  }
  g_array_free (sizes, TRUE);
  g_hash_table_destroy (seen);
  return 0;
}
