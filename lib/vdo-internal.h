/* nbdkit-vdo: the parts of a running VDO that the data path shares.
 * Private to libvdo's vdo.c, data-vio.c and request.c. */
#ifndef VDO_VDO_INTERNAL_H
#define VDO_VDO_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "block-map.h"
#include "dedupe-index.h"
#include "hash-lock.h"
#include "lbn-lock.h"
#include "packer.h"
#include "read-only.h"
#include "recovery-journal.h"
#include "slab-depot.h"
#include "super-block.h"
#include "vdo.h"
#include "vio.h"
#include "volume.h"
#include "work-queue.h"

struct data_vio;

/* Flush generations that may be open at once (vdo.flush_lock). */
enum { VDO_FLUSH_GENERATIONS = 64 };

/* Per logical zone, owned by its thread. */
struct logical_zone {
  unsigned zone_number;
  struct vdo_work_queue *queue;
  struct vdo_lbn_lock_table *lbn_locks;
};

struct vdo {
  struct vdo_options options;
  struct vdo_volume *volume;
  struct vdo_volume_geometry geometry;
  struct vdo_component_states states;   /* as last saved */
  struct vdo_block_device device;
  bool serving_read_only;
  bool started;
  bool started_io;

  unsigned logical_zone_count;
  unsigned physical_zone_count;
  struct logical_zone *logical_zones;
  struct vdo_work_queue **logical_queues;
  struct vdo_work_queue **physical_queues;
  struct vdo_work_queue *journal_queue;
  /* options.single_zone_thread: the one queue behind all the zones'. */
  struct vdo_work_queue *zone_queue;

  /* Deduplication: NULL index when off.  Names are computed on the CPU
   * queue; hash zones own the hash locks. */
  struct vdo_dedupe_index *dedupe_index;
  struct vdo_work_queue *cpu_queue;
  unsigned hash_zone_count;
  struct hash_zone *hash_zones;
  struct vdo_work_queue **hash_queues;
  struct vdo_dedupe_counters dedupe_counters;

  /* Compression: NULL packer when off.  Blocks are compressed on the
   * CPU queue and packed on the packer's. */
  struct vdo_packer *packer;
  struct vdo_work_queue *packer_queue;

  struct vdo_read_only_notifier *read_only;
  struct recovery_journal *journal;
  struct slab_depot *depot;
  struct block_map *block_map;
  /* Serving read-only: the journal's changes the block map lays over
   * its pages (repair.h); NULL for none. */
  struct vdo_page_mappings *overlay;

  /* Super block writes come from the admin path and from whichever
   * thread enters read-only mode. */
  pthread_mutex_t super_block_lock;

  /* The data_vio pool bounds memory and requests in flight. */
  pthread_mutex_t pool_lock;
  pthread_cond_t pool_available;
  struct data_vio *free_data_vios;
  unsigned free_data_vio_count;
  unsigned pool_waiters;        /* requests waiting for a data_vio */
  struct data_vio *all_data_vios;
  unsigned data_vio_count;

  atomic_uint next_allocation_zone;

  /* Asynchronous writes not yet durable, counted by flush generation:
   * a flush closes the current generation and waits for it and every
   * older one to drain. */
  pthread_mutex_t flush_lock;
  pthread_cond_t flush_progress;
  uint64_t write_generation;            /* the open generation */
  uint64_t oldest_generation;           /* the oldest not known drained */
  unsigned pending_writes[VDO_FLUSH_GENERATIONS];
  int async_write_error;                /* fails every later flush */
};

/* Wait until every write acknowledged before the call has finished
 * (request.c).  Stopping needs it too: acknowledged writes may still be
 * moving through the zones after their requests returned. */
void vdo_wait_for_acknowledged_writes (struct vdo *vdo);

/* Map a libvdo status to the errno a client sees. */
int vdo_status_to_errno (int status);

#endif /* VDO_VDO_INTERNAL_H */
