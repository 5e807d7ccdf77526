/* nbdkit-vdo: opening, validating and formatting volumes. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <uuid/uuid.h>

#include "index-geometry.h"
#include "io.h"
#include "logger.h"
#include "status.h"
#include "super-block.h"
#include "volume.h"
#include "volume-layout.h"

struct vdo_volume {
  char *path;
  struct vdo_io *io;
  bool owns_io;                 /* false when opened by vdo_volume_open_io */
  block_count_t device_blocks;
  struct vdo_volume_geometry geometry;
  struct vdo_component_states states;
};

/* Every PBN is relative to the geometry's bio offset (vdo-format.md 1.6). */
static uint64_t
device_block (const struct vdo_volume_geometry *g, physical_block_number_t pbn)
{
  return pbn - g->bio_offset;
}

static int
read_block (struct vdo_io *io, uint64_t block, uint8_t **buffer)
{
  int r;

  *buffer = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (*buffer == NULL)
    return ENOMEM;
  r = vdo_io_read_blocks (io, block, 1, *buffer);
  if (r != 0) {
    vdo_io_free_buffer (*buffer);
    *buffer = NULL;
  }
  return r;
}

static int
load_geometry (struct vdo_volume *v)
{
  uint8_t *block;
  int r;

  if (v->device_blocks == 0) {
    vdo_log_error ("%s is smaller than one 4 KiB block: not a VDO volume",
                   v->path);
    return VDO_NOT_FORMATTED;
  }
  r = read_block (v->io, 0, &block);
  if (r != 0)
    return r;
  r = vdo_decode_volume_geometry (block, &v->geometry);
  vdo_io_free_buffer (block);
  return r;
}

static int
load_super_block (struct vdo_volume *v)
{
  physical_block_number_t pbn = vdo_geometry_data_region_start (&v->geometry);
  uint8_t *block;
  int r;

  /* Check the region before reading it: a corrupt geometry must give a
   * clear error, not a read past the end of the device. */
  if (pbn < v->geometry.bio_offset || pbn - v->geometry.bio_offset == 0
      || device_block (&v->geometry, pbn) >= v->device_blocks) {
    vdo_log_error ("the geometry puts the super block at block %" PRIu64
                   ", outside the device's %" PRIu64 " blocks",
                   pbn, v->device_blocks);
    return VDO_REGION_OUT_OF_BOUNDS;
  }
  r = read_block (v->io, device_block (&v->geometry, pbn), &block);
  if (r != 0)
    return r;
  r = vdo_decode_super_block (block, &v->states);
  vdo_io_free_buffer (block);
  if (r != VDO_SUCCESS)
    return r;
  return vdo_validate_component_states (&v->states, &v->geometry,
                                        v->device_blocks);
}

/* Load and check the geometry and super block of V, whose io is set. */
static int
load_volume (struct vdo_volume *v)
{
  int r;

  v->device_blocks = vdo_io_block_count (v->io);
  r = load_geometry (v);
  if (r == VDO_SUCCESS)
    r = load_super_block (v);
  return r;
}

int
vdo_volume_open (const char *path, bool writable, struct vdo_volume **volume)
{
  struct vdo_volume *v;
  int r;

  *volume = NULL;
  v = calloc (1, sizeof *v);
  if (v == NULL || (v->path = strdup (path)) == NULL) {
    free (v);
    return ENOMEM;
  }
  r = vdo_io_open (path, writable ? 0 : VDO_IO_READ_ONLY,
                   &v->io);
  if (r != 0)
    goto fail;
  v->owns_io = true;
  r = load_volume (v);
  if (r != VDO_SUCCESS)
    goto fail;
  *volume = v;
  return VDO_SUCCESS;

 fail:
  vdo_volume_close (v);
  return r;
}

int
vdo_volume_open_io (struct vdo_io *io, bool writable,
                    struct vdo_volume **volume)
{
  struct vdo_volume *v;
  int r;

  *volume = NULL;
  if (writable && vdo_io_is_read_only (io)) {
    vdo_log_error ("%s: cannot open the volume for writing: the device was "
                   "opened read-only", vdo_io_path (io));
    return EROFS;
  }
  v = calloc (1, sizeof *v);
  if (v == NULL || (v->path = strdup (vdo_io_path (io))) == NULL) {
    free (v);
    return ENOMEM;
  }
  v->io = io;
  r = load_volume (v);
  if (r != VDO_SUCCESS) {
    vdo_volume_close (v);
    return r;
  }
  *volume = v;
  return VDO_SUCCESS;
}

void
vdo_volume_close (struct vdo_volume *v)
{
  if (v == NULL)
    return;
  if (v->io && v->owns_io)
    vdo_io_close (v->io);
  free (v->path);
  free (v);
}

const char *
vdo_volume_path (const struct vdo_volume *v)
{
  return v->path;
}

const struct vdo_volume_geometry *
vdo_volume_get_geometry (const struct vdo_volume *v)
{
  return &v->geometry;
}

const struct vdo_component_states *
vdo_volume_get_states (const struct vdo_volume *v)
{
  return &v->states;
}

block_count_t
vdo_volume_device_blocks (const struct vdo_volume *v)
{
  return v->device_blocks;
}

physical_block_number_t
vdo_volume_super_block_pbn (const struct vdo_volume *v)
{
  return vdo_geometry_data_region_start (&v->geometry);
}

struct vdo_io *
vdo_volume_get_io (struct vdo_volume *v)
{
  return v->io;
}

block_count_t
vdo_volume_slab_count (const struct vdo_volume *v)
{
  return vdo_depot_slab_count (&v->states.slab_depot);
}

/* Write the super block and make it durable.  The encoding fits in one
 * 512-byte sector, so the write cannot tear. */
static int
save_super_block (struct vdo_io *io, const struct vdo_volume_geometry *g,
                  const struct vdo_component_states *states)
{
  uint8_t *block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  int r;

  if (block == NULL)
    return ENOMEM;
  vdo_encode_super_block (block, states);
  r = vdo_io_write_blocks (io, device_block (g, vdo_geometry_data_region_start (g)),
                           1, block);
  if (r == 0)
    r = vdo_io_flush (io);
  vdo_io_free_buffer (block);
  return r;
}

/* The real tools decode the partition records by prepending each to a
 * list and encode the list in order, so every load and save they make
 * reverses the record order.  Do the same, so the super blocks written
 * by read-only and force-rebuild equal theirs byte for byte. */
static void
reverse_partition_order (struct vdo_layout *layout)
{
  int i, j;

  for (i = 0, j = layout->partition_count - 1; i < j; i++, j--) {
    struct vdo_partition tmp = layout->partitions[i];

    layout->partitions[i] = layout->partitions[j];
    layout->partitions[j] = tmp;
  }
}

static int
change_state (struct vdo_volume *v, uint32_t state)
{
  struct vdo_component_states states = v->states;
  int r;

  states.state = state;
  reverse_partition_order (&states.layout);
  r = save_super_block (v->io, &v->geometry, &states);
  if (r == 0)
    v->states = states;
  return r;
}

int
vdo_volume_set_read_only (struct vdo_volume *v)
{
  return change_state (v, VDO_READ_ONLY_MODE);
}

int
vdo_volume_force_rebuild (struct vdo_volume *v)
{
  if (v->states.state != VDO_READ_ONLY_MODE) {
    vdo_log_error ("%s is in state %s, not READ_ONLY_MODE: only a read-only "
                   "volume can be forced to rebuild", v->path,
                   vdo_state_name (v->states.state));
    return VDO_NOT_READ_ONLY;
  }
  return change_state (v, VDO_FORCE_REBUILD);
}

static nonce_t
current_time_nonce (void)
{
  struct timeval tv;

  gettimeofday (&tv, NULL);
  return (nonce_t) tv.tv_sec * 1000000 + (nonce_t) tv.tv_usec;
}

/* A device that already holds a VDO geometry block (the signature blkid
 * reports) is refused unless forced. */
static int
check_existing_volume (struct vdo_io *io, const char *path, bool force)
{
  uint8_t *block;
  int r;

  r = read_block (io, 0, &block);
  if (r != 0)
    return r;
  r = memcmp (block, VDO_GEOMETRY_MAGIC, VDO_GEOMETRY_MAGIC_SIZE) == 0
      ? VDO_ALREADY_FORMATTED : VDO_SUCCESS;
  vdo_io_free_buffer (block);
  if (r != VDO_SUCCESS) {
    if (force) {
      vdo_log_info ("overwriting the existing VDO volume on %s", path);
      return VDO_SUCCESS;
    }
    vdo_log_error ("%s already holds a VDO volume; use --force to format "
                   "over it", path);
  }
  return r;
}

static int
write_new_volume (struct vdo_io *io, const struct vdo_volume_geometry *g,
                  const struct vdo_component_states *states)
{
  const struct vdo_partition *roots, *journal;
  uint8_t *block;
  int r;

  roots = vdo_layout_find_partition (&states->layout, VDO_BLOCK_MAP_PARTITION);
  journal = vdo_layout_find_partition (&states->layout,
                                       VDO_RECOVERY_JOURNAL_PARTITION);

  /* The same blocks vdoformat writes: block 1 so that no old index is
   * found, the geometry (invalid until the end), the block map roots and
   * the recovery journal; then the super block, and the geometry last. */
  r = vdo_io_zero_blocks (io, device_block (g, g->regions[VDO_INDEX_REGION].start_block), 1);
  if (r == 0)
    r = vdo_io_zero_blocks (io, 0, 1);
  if (r == 0)
    r = vdo_io_zero_blocks (io, device_block (g, roots->offset), roots->count);
  if (r == 0)
    r = vdo_io_zero_blocks (io, device_block (g, journal->offset), journal->count);
  if (r == 0)
    r = vdo_io_flush (io);
  if (r == 0)
    r = save_super_block (io, g, states);
  if (r != 0)
    return r;

  block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (block == NULL)
    return ENOMEM;
  vdo_encode_volume_geometry (block, g);
  r = vdo_io_write_blocks (io, 0, 1, block);
  if (r == 0)
    r = vdo_io_flush (io);
  vdo_io_free_buffer (block);
  return r;
}

int
vdo_volume_format (const char *path, const struct vdo_format_options *options,
                   struct vdo_format_result *result)
{
  struct vdo_layout_params params = { 0 };
  struct vdo_io *io;
  int r;

  memset (result, 0, sizeof *result);
  r = vdo_io_open (path, 0, &io);
  if (r != 0)
    return r;

  params.physical_blocks = vdo_io_block_count (io);
  params.logical_blocks = options->logical_bytes / VDO_BLOCK_SIZE;
  params.slab_bits = options->slab_bits ? options->slab_bits
                                        : VDO_DEFAULT_SLAB_BITS;
  params.index_memory = options->index_memory ? options->index_memory
                                              : VDO_INDEX_MEMORY_DEFAULT;
  params.sparse_index = options->sparse_index;

  /* Like vdoformat: the signature check comes first. */
  r = check_existing_volume (io, path, options->force);
  if (r == VDO_SUCCESS)
    r = vdo_compute_volume_layout (&params, &result->geometry, &result->states);
  if (r != VDO_SUCCESS)
    goto out;

  result->geometry.nonce = options->have_nonce ? options->nonce
                                               : current_time_nonce ();
  result->states.nonce = result->geometry.nonce;
  if (options->have_uuid)
    memcpy (result->geometry.uuid, options->uuid, VDO_UUID_SIZE);
  else
    uuid_generate (result->geometry.uuid);
  result->slab_count = vdo_depot_slab_count (&result->states.slab_depot);
  result->logical_defaulted = options->logical_bytes == 0;

  /* The I/O layer has logged any write failure. */
  r = write_new_volume (io, &result->geometry, &result->states);

 out:
  vdo_io_close (io);
  return r;
}

void
vdo_volume_list_metadata (const struct vdo_volume *v, vdo_region_fn fn,
                          void *context)
{
  const struct vdo_component_states *s = &v->states;
  const struct vdo_volume_geometry *g = &v->geometry;
  const struct vdo_partition *p;
  block_count_t slab, slabs = vdo_volume_slab_count (v);
  physical_block_number_t super_block = vdo_geometry_data_region_start (g);
  char what[64];

  fn (context, 0, 0, "geometry block");
  fn (context, g->regions[VDO_INDEX_REGION].start_block, super_block - 1,
      "index");
  fn (context, super_block, super_block, "super block");
  fn (context, s->block_map.root_origin,
      s->block_map.root_origin + s->block_map.root_count - 1,
      "block map tree roots");
  for (slab = 0; slab < slabs; slab++) {
    struct vdo_pbn_range refs, journal;

    refs = vdo_slab_reference_range (&s->slab_depot, slab);
    journal = vdo_slab_journal_range (&s->slab_depot, slab);
    snprintf (what, sizeof what, "slab %" PRIu64 " reference blocks", slab);
    fn (context, refs.start, refs.start + refs.count - 1, what);
    snprintf (what, sizeof what, "slab %" PRIu64 " journal", slab);
    fn (context, journal.start, journal.start + journal.count - 1, what);
  }
  p = vdo_layout_find_partition (&s->layout, VDO_RECOVERY_JOURNAL_PARTITION);
  fn (context, p->offset, p->offset + p->count - 1, "recovery journal");
  p = vdo_layout_find_partition (&s->layout, VDO_SLAB_SUMMARY_PARTITION);
  fn (context, p->offset, p->offset + p->count - 1, "slab summary");
}
