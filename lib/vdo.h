/* nbdkit-vdo: a running VDO volume.
 *
 * vdo_load opens and checks a volume without starting any thread (the
 * nbdkit plugin calls it from get_ready, before forking).  vdo_start
 * starts the zone threads, loads the slab depot (first recovering a
 * volume that was not saved cleanly, or rebuilding one left in
 * FORCE_REBUILD: repair.h), marks the volume DIRTY and serves
 * (after_fork).  vdo_stop drains every zone and saves the volume
 * CLEAN.  Between start and stop, the request functions may be
 * called from any number of threads at once; each blocks until its
 * request is complete and durable as promised.
 */
#ifndef VDO_VDO_H
#define VDO_VDO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

struct vdo;
struct vdo_io;

enum {
  VDO_INJECT_READ = 1 << 0,
  VDO_INJECT_WRITE = 1 << 1,
  VDO_INJECT_FLUSH = 1 << 2,
};

/* When a write that is not FUA is acknowledged, as dm-vdo's write
 * policies: SYNC once its journal entry is durable; ASYNC once it has a
 * block (so a full volume still reports ENOSPC) and its data is copied,
 * with durability promised only by a later flush, as for a disk with a
 * volatile write cache.  FUA writes, trims and zeroes always wait. */
enum vdo_write_policy {
  VDO_WRITE_POLICY_SYNC = 0,
  VDO_WRITE_POLICY_ASYNC,
};

struct vdo_options {
  size_t cache_pages;           /* block map cache; 0: 32768 (128 MiB) */
  enum vdo_write_policy write_policy;
  /* User data through the kernel's page cache (vdo_io_enable_data_cache);
   * metadata is O_DIRECT either way. */
  bool data_cache;
  /* Inline deduplication, with an index of index_memory (a geometry
   * mem value; 0: the volume's own) in the volume's index region. */
  bool dedupe;
  uint32_t index_memory;
  unsigned hash_zones;          /* 0: 1 */
  /* LZ4 compression of blocks that do not deduplicate, packed up to 14
   * to a block (packer.h). */
  bool compression;
  /* Test hooks: the longest a fragment waits in the packer, in
   * microseconds, when its write was acknowledged and when its writer
   * waits (0: the defaults, 500 ms and 1 ms). */
  uint64_t packer_wait_us;
  uint64_t packer_waited_on_wait_us;
  /* Test hook: every block gets the same name, so different data
   * collides in the hash locks and the index. */
  bool test_same_names;
  unsigned logical_zones;       /* 0: 1 */
  unsigned physical_zones;      /* 0: 1 */
  /* One thread runs the journal and every logical, physical and hash
   * zone (one of each), as dm-vdo does when its logical, physical and
   * hash thread counts are all 0: on few cores, fewer thread switches
   * per request beat parallel zones. */
  bool single_zone_thread;
  bool read_only;               /* serve read-only, write nothing */
  /* Test hook: once serving, operations in inject_ops (VDO_INJECT_*)
   * fail with EIO after inject_after of them, inject_count times (0:
   * forever). */
  unsigned inject_ops;
  uint64_t inject_after;
  uint64_t inject_count;
  /* Test hook: serve this device (a simulator, say) instead of opening
   * the path, which may then be NULL.  It stays the caller's: vdo_free
   * leaves it open, and vdo_start starts it, so it serves one start. */
  struct vdo_io *io;
};

int vdo_load (const char *path, const struct vdo_options *options,
              struct vdo **vdo);
int vdo_start (struct vdo *vdo);
/* Drain and save CLEAN (unless read-only); then stop the threads. */
int vdo_stop (struct vdo *vdo);
void vdo_free (struct vdo *vdo);

uint64_t vdo_logical_bytes (const struct vdo *vdo);
/* True when writes are refused: requested, persisted, or entered. */
bool vdo_is_serving_read_only (const struct vdo *vdo);

/* Requests.  Return 0 or an errno value (EIO, ENOSPC, EROFS, EINVAL). */
int vdo_read (struct vdo *vdo, void *buf, uint32_t count, uint64_t offset);
/* Durable when it returns if FUA or under VDO_WRITE_POLICY_SYNC;
 * otherwise once a later vdo_flush returns. */
int vdo_write (struct vdo *vdo, const void *buf, uint32_t count,
               uint64_t offset, bool fua);
/* Every write acknowledged before the call is durable when it returns 0.
 * An asynchronous write that failed after its acknowledgement makes the
 * next flush fail. */
int vdo_flush (struct vdo *vdo);
/* Unmap (trim) or map to the zero block (zero without trim); both cost
 * per block map page plus per block that was mapped. */
int vdo_discard (struct vdo *vdo, uint32_t count, uint64_t offset,
                 bool unmap);

/* What a running volume counts (vdostats' names where they exist).
 * Any thread; exact only when idle. */
struct vdo_statistics {
  uint64_t data_blocks;                 /* usable blocks in slabs */
  uint64_t allocated_blocks;            /* data blocks and tree pages */
  uint64_t free_blocks;
  bool dedupe_enabled;
  uint64_t dedupe_advice_valid;
  uint64_t dedupe_advice_stale;
  uint64_t dedupe_advice_timeouts;      /* the index did not answer */
  uint64_t concurrent_data_matches;
  uint64_t concurrent_hash_collisions;
  uint64_t dedupe_rollovers;            /* a block full: wrote a copy */
  uint64_t index_entries;
  uint64_t index_memory_bytes;
  uint64_t index_records_per_volume;
  uint64_t index_posts_found, index_posts_not_found;
  uint64_t index_queries_found, index_queries_not_found;
  uint64_t index_updates_found, index_updates_not_found;
  uint64_t index_chapters_written;
  bool index_rebuilding;
  bool compression_enabled;
  uint64_t compressed_fragments_written;
  uint64_t compressed_blocks_written;
  uint64_t compressed_fragments_in_packer;
};
void vdo_get_statistics (struct vdo *vdo, struct vdo_statistics *stats);

enum vdo_extent_type {
  VDO_EXTENT_DATA = 0,
  VDO_EXTENT_ZERO = 1,          /* reads as zeros (the zero block) */
  VDO_EXTENT_HOLE_ZERO = 2,     /* unmapped: a hole that reads as zeros */
};
typedef int (*vdo_extent_fn) (void *context, uint64_t offset,
                              uint64_t length, enum vdo_extent_type type);
/* Describe [offset, offset+count) in runs of one type, in order. */
int vdo_extents (struct vdo *vdo, uint32_t count, uint64_t offset,
                 vdo_extent_fn fn, void *context);

#endif /* VDO_VDO_H */
