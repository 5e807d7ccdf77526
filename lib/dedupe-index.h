/* nbdkit-vdo: the dedupe index: a persistent, memory-bounded map from
 * chunk names to advice, kept in the volume's index region.
 *
 * It plays UDS's part for VDO (uds-index.md 2.3, 5): it remembers the
 * most recent names, so recently written data dedups and old data ages
 * out first.  Records (name + 16-byte advice) go into an open chapter
 * in memory; a full chapter is sorted by name and written to a ring of
 * chapters in the index region, and the oldest chapter is reused.  The
 * volume index (volume-index.h) says which chapter holds a name; the
 * record itself is read from that chapter on disk (through a small
 * cache).  Sizes follow the UDS geometry of the volume's index config
 * (index-geometry.h): the same chapters and records per chapter, so it
 * remembers as many blocks as UDS would, in the same memory.
 *
 * Advice is only a hint: callers verify every byte before sharing.
 *
 * On disk (all inside the region, never outside it): block 0 of the
 * region stays zero, so the kernel's UDS finds no index there and
 * creates its own over ours (uds-index.md 4.1, 8); block 1 is this
 * index's super block; then the chapter ring and two save slots.  A
 * clean shutdown saves the open chapter and the volume index; a start
 * loads the newest valid save.  Without one (a crash, a new volume, a
 * region the kernel rewrote) the index is rebuilt in the background
 * from the chapters on disk, or created empty, and the log says which;
 * requests meanwhile are answered at once, as not found.
 *
 * Threads: one index thread (a work queue, its own or a shared one)
 * owns everything.  Requests may be submitted from any thread; each
 * one's completion is enqueued when it is answered.
 */
#ifndef VDO_DEDUPE_INDEX_H
#define VDO_DEDUPE_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "constants.h"
#include "dedupe-format.h"
#include "io.h"
#include "work-queue.h"

enum vdo_index_request_type {
  VDO_INDEX_QUERY,      /* return the advice; the record becomes newest */
  VDO_INDEX_POST,       /* QUERY, and store NEW_ADVICE if not found */
  VDO_INDEX_UPDATE,     /* store NEW_ADVICE, found or not */
};

struct vdo_index_request {
  /* The caller's: prepared (vdo_prepare_completion) before submitting;
   * it is enqueued once the answer is in.  completion.result is
   * VDO_SUCCESS, or an error when the index could not be consulted
   * (the write then goes on without dedupe). */
  struct vdo_completion completion;
  enum vdo_index_request_type type;
  struct vdo_chunk_name name;
  uint8_t new_advice[VDO_ADVICE_SIZE];

  /* The answer. */
  bool found;
  uint8_t old_advice[VDO_ADVICE_SIZE];
  /* Not looked up: the index was rebuilding, closed or overloaded. */
  bool unanswered;

  /* The index's, from submission to completion. */
  struct vdo_completion index_work;
  uint64_t candidates[4];
  unsigned int candidate_count;
  unsigned int next_candidate;
  struct vdo_index_request *next;
};

struct vdo_dedupe_index_config {
  struct vdo_io *io;
  /* The index region in absolute device blocks (geometry index region
   * plus the bio offset). */
  physical_block_number_t region_start;
  block_count_t region_blocks;
  uint32_t mem;                 /* geometry index_config.mem */
  bool sparse;
  nonce_t nonce;                /* the VDO nonce */
  /* The VDO is NEW: ignore whatever the region holds. */
  bool create;
  /* Serve lookups but never write the region.  A full chapter then
   * stays in memory only until the next one replaces it. */
  bool read_only;

  /* For tests only; 0 takes the value from the geometry.  Small
   * chapters let tests close, wrap and rebuild chapters with few names;
   * the layout (and the region size it needs) shrinks with them. */
  uint32_t test_records_per_chapter;
  uint32_t test_chapters_per_volume;
  uint32_t test_dense_chapters;         /* sparse only */
};

struct vdo_dedupe_index_stats {
  uint64_t entries_indexed;     /* live volume index entries */
  uint64_t memory_bytes;        /* volume index + caches */
  uint64_t records_per_volume;  /* names the window can hold */
  uint64_t posts_found, posts_not_found;
  uint64_t queries_found, queries_not_found;
  uint64_t updates_found, updates_not_found;
  uint64_t requests_unanswered;
  uint64_t chapters_written;
  uint64_t evictions;           /* names dropped before their chapter expired */
  bool rebuilding;
};

struct vdo_dedupe_index;

/* The blocks an index for CONFIG needs in its region (only mem, sparse
 * and the test fields are used).  VDO_BAD_INDEX_CONFIG, logged, for an
 * unsupported configuration. */
int vdo_dedupe_index_region_blocks (const struct vdo_dedupe_index_config *config,
                                    block_count_t *blocks);

/* Validate the config against the region (everything must fit in
 * region_blocks, or VDO_BAD_INDEX_CONFIG, logged), allocate memory, and
 * load the newest valid save or decide to rebuild or create.  Blocking
 * I/O; call before vdo_start_dedupe_index.  A save that exists but
 * cannot be used is logged and the index rebuilt; only configuration
 * errors, I/O errors and ENOMEM fail. */
int vdo_make_dedupe_index (const struct vdo_dedupe_index_config *config,
                           struct vdo_dedupe_index **index_ret);

/* Start the index thread (after any fork); a pending rebuild runs on
 * it in slices between requests.  The region's IO must be started. */
int vdo_start_dedupe_index (struct vdo_dedupe_index *index);

/* Before the start: run on QUEUE, started and stopped by its owner, and
 * not on a thread of the index's own.  With one thread for every zone,
 * this saves two thread switches per lookup. */
void vdo_dedupe_index_share_queue (struct vdo_dedupe_index *index,
                                   struct vdo_work_queue *queue);

/* Submit a request (any thread, after start). */
void vdo_submit_index_request (struct vdo_dedupe_index *index,
                               struct vdo_index_request *request);

/* Answer everything in flight, write the open chapter's records and the
 * volume index to a save slot, flush, and stop the thread.  The index
 * answers nothing after it.  Skipped (and VDO_SUCCESS) for a read-only
 * index.  Errors are logged; the next start then rebuilds. */
int vdo_save_dedupe_index (struct vdo_dedupe_index *index);

/* Stop without saving (a crash, as far as the disk knows) and free.
 * Accepts NULL. */
void vdo_free_dedupe_index (struct vdo_dedupe_index *index);

void vdo_get_dedupe_index_stats (struct vdo_dedupe_index *index,
                                 struct vdo_dedupe_index_stats *stats);

#endif /* VDO_DEDUPE_INDEX_H */
