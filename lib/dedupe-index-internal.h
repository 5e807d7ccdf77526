/* nbdkit-vdo: the dedupe index's state, shared by its modules:
 * dedupe-index.c (requests, chapters, caches), index-save.c (create,
 * save, load) and index-rebuild.c.  Not for other users.
 *
 * Everything here is owned by the index thread once it has started;
 * before that (make) and after the drain (save, free), by the caller.
 * Only the stats are shared, under stats_lock.
 */
#ifndef VDO_DEDUPE_INDEX_INTERNAL_H
#define VDO_DEDUPE_INDEX_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "dedupe-index.h"
#include "index-format.h"
#include "io.h"
#include "open-chapter.h"
#include "volume-index.h"
#include "work-queue.h"

/* Recently read record blocks (8 MiB: four chapters of the default
 * geometry, near UDS's page cache of 14.7 MB for it), and whole sparse
 * chapters (uds-index.md 5.9: UDS caches 7). */
#define VDO_INDEX_BLOCK_CACHE_SLOTS 2048
#define VDO_INDEX_SPARSE_CACHE_CHAPTERS 7

/* One asynchronous read (or write) whose completion continues on the
 * index thread; requests that need its data wait on it. */
struct index_io {
  struct vdo_io_request io;
  struct vdo_completion completion;
  struct vdo_dedupe_index *index;
  struct vdo_index_request *waiters;
  int result;
  bool busy;
  /* The data changed on disk while it was read: discard it. */
  bool stale;
};

/* A cached record block. */
struct block_slot {
  block_count_t block;          /* region block; VDO_INDEX_NO_BLOCK if none */
  uint64_t vcn;                 /* its header's, VDO_INDEX_NO_VCN if invalid */
  uint64_t last_used;
  uint8_t *data;
  struct index_io read;
};

/* A whole sparse chapter, read in one go. */
struct sparse_slot {
  uint64_t vcn;                 /* VDO_INDEX_NO_VCN if empty */
  uint64_t last_used;
  uint8_t *blocks;              /* blocks_per_chapter, invalid ones zeroed */
  struct index_io read;
};

#define VDO_INDEX_NO_BLOCK UINT64_MAX

/* The chapter closed last, searchable in memory until it is on disk. */
struct chapter_writer {
  uint64_t vcn;                 /* VDO_INDEX_NO_VCN when none */
  uint8_t *blocks;
  uint32_t *prefixes;
  struct index_io write;
};

enum rebuild_phase {
  REBUILD_PROBE,                /* first block of each physical chapter */
  REBUILD_REPLAY,               /* whole chapters, oldest to newest */
};

struct index_rebuild {
  enum rebuild_phase phase;
  uint32_t next_physical;
  uint64_t next_vcn, newest_vcn;
  bool any_found;
  uint8_t *buffer;              /* blocks_per_chapter */
  bool *valid;                  /* which of them are good */
  struct vdo_completion step;
  struct index_io read;
  struct timespec started;
  uint64_t chapters_replayed, records_replayed, blocks_skipped;
};

struct vdo_dedupe_index {
  struct vdo_dedupe_index_config config;
  uint64_t records_per_chapter;
  uint32_t chapters;
  uint32_t dense_chapters;
  uint32_t sample_rate;         /* 0 dense */
  struct vdo_index_layout layout;
  uint64_t instance_nonce;
  uint64_t save_sequence;       /* of the save loaded, or 0 */

  struct vdo_volume_index *volume_index;
  struct vdo_open_chapter *open_chapter;
  uint64_t open_vcn;
  /* Per physical chapter: the VCN it holds on disk, and its blocks'
   * first-name prefixes. */
  uint64_t *chapter_vcns;
  uint32_t *prefixes;
  struct chapter_writer writer;

  struct block_slot block_cache[VDO_INDEX_BLOCK_CACHE_SLOTS];
  uint8_t *block_cache_data;
  struct sparse_slot sparse_cache[VDO_INDEX_SPARSE_CACHE_CHAPTERS];
  uint64_t clock;               /* LRU time */

  /* Requests waiting for a free cache slot, or for room in the open
   * chapter while the previous one is still being written. */
  struct vdo_index_request *slot_waiters, *slot_waiters_tail;  /* FIFO */
  struct vdo_index_request *stalled;

  struct vdo_work_queue *queue;
  bool shared_queue;            /* another's: neither started nor freed here */
  bool started;
  bool rebuilding;
  bool closing;                 /* draining: answer everything unanswered */
  unsigned int in_flight;       /* requests being looked up */
  struct vdo_sync_completion *drain_waiter;
  struct index_rebuild rebuild;

  pthread_mutex_t stats_lock;
  struct vdo_dedupe_index_stats stats;
  bool submissions_closed;      /* under stats_lock */
};

/* Whether VCN is in the window, and whether it is a sparse chapter. */
static inline bool
vdo_index_chapter_is_live (const struct vdo_dedupe_index *index, uint64_t vcn)
{
  return vcn <= index->open_vcn && index->open_vcn - vcn < index->chapters;
}

static inline bool
vdo_index_chapter_is_sparse (const struct vdo_dedupe_index *index,
                             uint64_t vcn)
{
  return index->sample_rate != 0 && vcn <= index->open_vcn
         && index->open_vcn - vcn >= index->dense_chapters;
}

static inline uint32_t *
vdo_index_chapter_prefixes (const struct vdo_dedupe_index *index,
                            uint32_t physical)
{
  return index->prefixes
         + (size_t) physical * index->layout.blocks_per_chapter;
}

/* Absolute device block of region block BLOCK. */
static inline physical_block_number_t
vdo_index_device_block (const struct vdo_dedupe_index *index,
                        block_count_t block)
{
  return index->config.region_start + block;
}

/* Check BLOCK (block BLOCK_INDEX of chapter VCN as read from disk): true
 * if it is that block of this index. */
bool vdo_index_block_is_valid (const struct vdo_dedupe_index *index,
                               const uint8_t *block, uint64_t vcn,
                               uint32_t block_index);

/* dedupe-index.c: asynchronous I/O whose CALLBACK (with PARENT) runs
 * on the index thread, io->result holding the I/O result. */
void vdo_init_index_io (struct vdo_dedupe_index *index, struct index_io *io,
                        vdo_action_fn callback, void *parent);
void vdo_submit_index_read (struct vdo_dedupe_index *index,
                            struct index_io *io, block_count_t region_block,
                            block_count_t count, void *buffer);

/* index-save.c: at make, with blocking I/O: create a new index (config
 * create, or no super block of ours), else load the newest valid save
 * and invalidate it on disk, else set rebuilding.  Errors are I/O
 * errors and ENOMEM only. */
int vdo_open_index_region (struct vdo_dedupe_index *index);
/* After the drain: write the open chapter and the volume index to the
 * older save slot. */
int vdo_write_index_save (struct vdo_dedupe_index *index);

/* index-rebuild.c: begin the rebuild on the index thread. */
void vdo_launch_index_rebuild (struct vdo_dedupe_index *index);
/* Whether the rebuild has nothing in flight (for the drain). */
bool vdo_index_rebuild_is_idle (const struct vdo_dedupe_index *index);
/* dedupe-index.c: the drain may have finished. */
void vdo_check_index_drained (struct vdo_dedupe_index *index);

#endif /* VDO_DEDUPE_INDEX_INTERNAL_H */
