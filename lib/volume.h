/* nbdkit-vdo: the volume API.
 *
 * This is what the plugin and vdoadm use: open a backing file or block
 * device, read and validate its geometry and super block, format a new
 * volume, change its persisted state, and describe its metadata regions.
 * Callers never touch raw encodings.
 */
#ifndef VDO_VOLUME_H
#define VDO_VOLUME_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "geometry.h"
#include "super-block.h"

struct vdo_io;
struct vdo_volume;

/* Open PATH and load its geometry and super block, validating both as the
 * kernel does (vdo-format.md 8).  Nothing is written.  On error the
 * reason has been logged and *volume is NULL. */
int vdo_volume_open (const char *path, bool writable,
                     struct vdo_volume **volume);
/* The same on an I/O handle already open (a test backend, say), whose
 * path names the volume.  The volume does not take ownership: closing
 * it leaves IO open, for the caller to close after.  WRITABLE on a
 * read-only handle is EROFS. */
int vdo_volume_open_io (struct vdo_io *io, bool writable,
                        struct vdo_volume **volume);
void vdo_volume_close (struct vdo_volume *volume);

const char *vdo_volume_path (const struct vdo_volume *volume);
const struct vdo_volume_geometry *
vdo_volume_get_geometry (const struct vdo_volume *volume);
const struct vdo_component_states *
vdo_volume_get_states (const struct vdo_volume *volume);
/* Size of the backing device in whole 4 KiB blocks. */
block_count_t vdo_volume_device_blocks (const struct vdo_volume *volume);
/* PBN of the super block. */
physical_block_number_t
vdo_volume_super_block_pbn (const struct vdo_volume *volume);
/* The open device, for libvdo's runtime (not for tools). */
struct vdo_io *vdo_volume_get_io (struct vdo_volume *volume);
/* Number of slabs in the depot. */
block_count_t vdo_volume_slab_count (const struct vdo_volume *volume);

/* Persist READ_ONLY_MODE, as vdoreadonly does (any state). */
int vdo_volume_set_read_only (struct vdo_volume *volume);

/* Persist FORCE_REBUILD, as vdoforcerebuild does; the volume must be in
 * READ_ONLY_MODE, or VDO_NOT_READ_ONLY is returned and nothing written. */
int vdo_volume_force_rebuild (struct vdo_volume *volume);

/* What vdoadm format asks for.  Zero values mean "vdoformat's default". */
struct vdo_format_options {
  uint64_t logical_bytes;       /* 0: the computed default */
  unsigned slab_bits;           /* 0: 19 */
  uint32_t index_memory;        /* geometry mem value; 0: 0.25 GB */
  bool sparse_index;
  bool force;                   /* overwrite an existing VDO volume */
  bool have_nonce;              /* reproduce an image: fixed nonce ... */
  nonce_t nonce;
  bool have_uuid;               /* ... and UUID */
  uint8_t uuid[VDO_UUID_SIZE];
};

/* What a successful format produced, for the tool's summary. */
struct vdo_format_result {
  struct vdo_volume_geometry geometry;
  struct vdo_component_states states;
  block_count_t slab_count;
  bool logical_defaulted;
};

/* Format PATH.  Every check (signature, sizes, limits) happens before the
 * first write, so a refused format changes nothing.  Then, like vdoformat,
 * it zeroes block 1, the block map roots and the recovery journal, writes
 * the super block, and writes the geometry block last, so a crash leaves
 * no valid volume behind. */
int vdo_volume_format (const char *path,
                       const struct vdo_format_options *options,
                       struct vdo_format_result *result);

/* Call FN for each metadata region in block order, as vdolistmetadata
 * prints them: first and last PBN inclusive, and a description. */
typedef void (*vdo_region_fn) (void *context, physical_block_number_t first,
                               physical_block_number_t last,
                               const char *description);
void vdo_volume_list_metadata (const struct vdo_volume *volume,
                               vdo_region_fn fn, void *context);

#endif /* VDO_VOLUME_H */
