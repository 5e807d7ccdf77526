/* nbdkit-vdo: the per-block request that moves through the zones.
 *
 * A data_vio carries one 4 KiB logical block through dm-vdo's write
 * pipeline: lock the LBN and find its mapping (logical zone), allocate a
 * block (physical zone), write the data, journal the remapping (journal
 * zone), apply the reference count changes (physical zones of the new and
 * old blocks), update the block map page (logical zone), and release the
 * LBN.  Reads lock the LBN, find the mapping and read (and decompress) the
 * block.  Each step runs on the thread that owns its state; no step holds
 * a lock shared between zones.
 */
#ifndef VDO_DATA_VIO_H
#define VDO_DATA_VIO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "block-map.h"
#include "block-map-format.h"
#include "constants.h"
#include "dedupe-format.h"
#include "lbn-lock.h"
#include "packer.h"
#include "pbn-lock.h"
#include "recovery-journal.h"
#include "slab-depot.h"
#include "vio.h"
#include "work-queue.h"

struct vdo;

enum data_vio_operation {
  DATA_VIO_READ,
  DATA_VIO_WRITE,
  DATA_VIO_TRIM,                /* unmap */
  DATA_VIO_ZERO,                /* map to the zero block if mapped */
};

/* The user-level request a data_vio reports to (request.c). */
struct vdo_user_request;
struct data_vio;
/* The data_vio's last step, on its logical zone thread: report RESULT to
 * its request (unless acknowledged early) and return it to the pool. */
void vdo_data_vio_done (struct data_vio *data_vio, int result);
/* An asynchronous write has its block and its data: report success to
 * the request now.  The request and the user's buffer are gone after. */
void vdo_acknowledge_data_vio (struct data_vio *data_vio);


struct data_vio {
  struct vdo_completion completion;
  struct vdo *vdo;
  struct vdo_user_request *request;
  enum data_vio_operation operation;
  logical_block_number_t lbn;
  unsigned logical_zone;

  /* The part of the block the user reads or writes: offset and length in
   * bytes, and the user's memory.  A partial write is merged into the
   * block read under the LBN lock. */
  uint32_t offset, length;
  void *user_data;
  bool is_zero;
  /* Asynchronous write policy: may be acknowledged before it is durable
   * (not FUA), has been, and is counted in flush generation. */
  bool early_ack;
  bool fua;                     /* durable before it returns: not packed */
  bool acknowledged;
  bool flush_tracked;
  uint64_t flush_generation;

  uint8_t *block;               /* aligned, one block */
  /* Aligned, for compressed reads, and for the data's LZ4 fragment
   * while it is packed. */
  uint8_t *scratch;
  /* Without dedupe, a whole block is compressed into scratch when it is
   * launched, on the submitting thread; precompressed_size is then the
   * fragment's, 0 if it does not compress. */
  bool precompressed;
  size_t precompressed_size;

  struct vdo_lbn_waiter lbn_waiter;
  struct vdo_block_map_request map_request;
  struct vdo_data_location old_mapping;
  struct vdo_data_location new_mapping;

  /* Allocation of a data block or a tree page.  A precompressed
   * fragment only reserves a block in allocation_zone (reserved): the
   * packer's block is allocated when it is written, so compressed
   * blocks land side by side, in the order they are written. */
  bool allocating_tree_page;
  bool reserved;
  physical_block_number_t allocation;
  unsigned allocation_zone;
  unsigned zones_tried;
  /* Claims on free blocks (space-claims.h): blocks promised when it was
   * acknowledged at launch and not yet claimed, and whether it holds a
   * claim it has not yet spent on a block. */
  unsigned promised_blocks;
  bool holds_claim;

  /* Deduplication (hash-lock.c): the data's name and zone, the hash
   * lock held, and links in its member and waiter lists. */
  struct vdo_chunk_name name;
  unsigned hash_zone;
  bool named;                   /* name and hash_zone are its block's */
  struct hash_lock *hash_lock;
  bool is_lock_agent;           /* writes the block the lock shares */
  struct data_vio *lock_next;
  struct data_vio *wait_next;
  /* Aligned: a decompressed candidate while verifying advice, then the
   * compressed block if this data_vio writes its bin's. */
  uint8_t *verify;

  /* Compression (packer.h): the fragment in the packer, and once a
   * compressed block holding it is written, the pin on that block that
   * keeps it from being freed before this data_vio's increment. */
  struct vdo_packer_item packing;
  struct vdo_pbn_lock *compressed_pin;
  unsigned batch_count;         /* fragments in the batch it writes */

  struct vdo_journal_entry_request journal_request;
  /* The increment and decrement of one entry are launched together from
   * the journal thread, in commit order, so every slab journal receives
   * entries in recovery journal order; both must finish. */
  struct vdo_reference_update reference_updates[2];
  atomic_int pending_updates;
  atomic_int update_result;
  struct vdo_vio vio;
  struct data_vio *next;        /* pool and wait lists */
};

/* Continuations for the dedupe path (hash-lock.c), from a hash zone. */
/* Write the data to the data_vio's own block (VDO_NO_SPACE without
 * one), compressed with others' if it compresses well enough and
 * compression is on, then journal it. */
void vdo_data_vio_write_block (struct data_vio *data_vio);
/* Map the LBN to DUPLICATE, whose increment is claimed, giving back the
 * data_vio's own block. */
void vdo_data_vio_share_block (struct data_vio *data_vio,
                               struct vdo_data_location duplicate);
/* A lock agent's block is written (new_mapping says where, maybe a
 * compressed slot): journal its mapping. */
void vdo_data_vio_continue_to_journal (struct data_vio *data_vio);
/* The hash lock is left: finish on the logical zone. */
void vdo_data_vio_finish_after_dedupe (struct data_vio *data_vio);

/* Allocate the pool's buffers for one data_vio. */
int vdo_init_data_vio (struct data_vio *data_vio, struct vdo *vdo);
void vdo_uninit_data_vio (struct data_vio *data_vio);

/* The packer's emit function (packer.h), on the packer's thread: write
 * the compressed block of a batch of data_vios, or one data_vio's data
 * uncompressed. */
void vdo_data_vio_packed (void *vdo, struct vdo_packer_item *first,
                          unsigned count);

/* Start a prepared data_vio (operation, lbn, offset, length, user_data,
 * request, is_zero set).  Any thread. */
void vdo_launch_data_vio (struct data_vio *data_vio);

#endif /* VDO_DATA_VIO_H */
