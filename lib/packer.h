/* nbdkit-vdo: the packer: LZ4 fragments waiting to share a compressed
 * block (vdo-format.md 6).
 *
 * Fragments wait in bins, each bin one compressed block in the making
 * (at most 14 fragments, VDO_COMPRESSED_BLOCK_DATA_SIZE bytes).  A new
 * fragment goes to the fullest bin it fits in; when none has room, the
 * fullest bin of two or more fragments is written and the fragment
 * starts it over, or, when every bin holds one, the largest of those
 * fragments and the new one is written alone.  A bin is
 * written when it is full (14 fragments or no byte left), when a flush
 * needs one of its fragments, when its oldest fragment has waited too
 * long, or when the data path runs short of requests (pressure).  A bin
 * that holds a single fragment is never written compressed: that
 * fragment is handed back to be written as it is, as the kernel does.
 *
 * The owner of the fragments (the data path) learns of each written bin
 * through its emit function: a batch of two or more, whose first item
 * carries the compressed block built in its own buffer, or a lone item.
 *
 * Threads.  The bins belong to the packer's work queue: vdo_packer_add,
 * vdo_packer_flush, vdo_packer_write_all and vdo_packer_expire run only
 * there (or, in tests without a queue, on the caller's one thread).
 * The vdo_packer_request_* functions and the statistics may be called
 * from any thread; they enqueue work on the packer's queue.  A timer
 * thread, started with the packer when it has a queue, enqueues the
 * expiry of bins whose deadline has passed.
 */
#ifndef VDO_PACKER_H
#define VDO_PACKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "work-queue.h"

/* Flush generation of a fragment that no flush waits for. */
#define VDO_PACKER_NO_GENERATION UINT64_MAX

struct packer_bin;

/* One fragment, embedded in its owner (a data_vio). */
struct vdo_packer_item {
  /* Set by the owner before vdo_packer_add. */
  const uint8_t *fragment;      /* LZ4 data, 1..MAX_COMPRESSED_FRAGMENT_SIZE */
  uint16_t size;
  uint8_t *block;               /* one block: where the compressed block is
                                 * built if this item's batch is written by
                                 * it */
  uint64_t generation;          /* flush generation, or NO_GENERATION */
  bool waited_on;               /* its writer waits for it: short wait */
  void *owner;
  /* Another request waits for this one (vdo_packer_request_release):
   * it must not wait in a bin.  Cleared by the owner when it is reused,
   * and only ever set while the item may still reach the packer. */
  atomic_bool release_wanted;
  /* Set by the packer: the slot in the written block, the next item of
   * the batch. */
  unsigned int slot;
  struct vdo_packer_item *next_in_batch;
  /* The packer's own. */
  uint64_t deadline;
};

/* A bin was written: COUNT items linked by next_in_batch from FIRST.
 * COUNT >= 2: FIRST->block holds the compressed block, item k of the
 * list in slot k.  COUNT == 1: the item must be written uncompressed.
 * Runs on the packer's thread; the items belong to the owner again. */
typedef void (*vdo_packer_emit_fn) (void *context,
                                    struct vdo_packer_item *first,
                                    unsigned int count);

struct vdo_packer_config {
  unsigned int bins;            /* 0: 16, dm-vdo's default */
  /* The longest a fragment waits, in microseconds: acknowledged ones,
   * and ones whose writer waits (0 for either: a default). */
  uint64_t max_wait_us;
  uint64_t waited_on_wait_us;
  vdo_packer_emit_fn emit;
  void *context;
  /* The packer's thread; NULL for single-threaded use (tests), without
   * the timer and the request functions. */
  struct vdo_work_queue *queue;
  /* Nanoseconds, monotonic; NULL: CLOCK_MONOTONIC.  Only without a
   * queue, since the timer sleeps on the real clock. */
  uint64_t (*clock) (void);
};

enum {
  VDO_PACKER_DEFAULT_BINS = 16,
  /* Flushes, requests on the same LBN and a short pool take fragments
   * out sooner; this bounds the rest (a hash lock's waiters, above all)
   * while leaving slow writers time to fill a block. */
  VDO_PACKER_DEFAULT_MAX_WAIT_US = 500000,
  VDO_PACKER_DEFAULT_WAITED_ON_WAIT_US = 1000,
};

struct vdo_packer;

/* Make a packer, and start its timer thread if it has a queue (so call
 * it after forking).  0 or an errno value, logged. */
int vdo_make_packer (const struct vdo_packer_config *config,
                     struct vdo_packer **packer);
/* Stop the timer thread, before the packer's queue is stopped (it
 * queues work there).  Accepts NULL. */
void vdo_stop_packer_timer (struct vdo_packer *packer);
/* Stop the timer and free the packer, which must hold no fragment;
 * call it after the queue has stopped.  Accepts NULL. */
void vdo_free_packer (struct vdo_packer *packer);

/* --- On the packer's thread --------------------------------------------- */

/* Place ITEM in a bin; bins may be written (emitted) on the way, ITEM's
 * own among them. */
void vdo_packer_add (struct vdo_packer *packer, struct vdo_packer_item *item);

/* Write every bin that holds a fragment of a generation below BELOW;
 * fragments of such generations that arrive later wait no longer than
 * those whose writer waits. */
void vdo_packer_flush (struct vdo_packer *packer, uint64_t below);

/* Write every bin that holds anything. */
void vdo_packer_write_all (struct vdo_packer *packer);

/* Write every bin whose deadline has passed. */
void vdo_packer_expire (struct vdo_packer *packer);

/* --- Any thread ----------------------------------------------------------- */

/* Ask for vdo_packer_flush (BELOW) on the packer's thread.  Requests
 * coalesce; a request made after a fragment was added is honoured after
 * the add. */
void vdo_packer_request_flush (struct vdo_packer *packer, uint64_t below);

/* Ask for vdo_packer_write_all on the packer's thread, if it holds any
 * fragment (pressure: requests are running out). */
void vdo_packer_request_write_all (struct vdo_packer *packer);

/* Another request waits for ITEM's owner: write ITEM's bin if it is in
 * one, and do not keep ITEM if it arrives later. */
void vdo_packer_request_release (struct vdo_packer *packer,
                                 struct vdo_packer_item *item);

struct vdo_packer_statistics {
  uint64_t compressed_fragments_written;
  uint64_t compressed_blocks_written;
  uint64_t compressed_fragments_in_packer;
  uint64_t lone_fragments;      /* handed back to be written as they are */
};

void vdo_get_packer_statistics (const struct vdo_packer *packer,
                                struct vdo_packer_statistics *stats);

#endif /* VDO_PACKER_H */
