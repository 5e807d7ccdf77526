/* nbdkit-vdo: helpers for the block map tests: a freshly formatted
 * volume in a sparse temporary file, real zone threads, a journal lock
 * counter standing in for the recovery journal, and synchronous wrappers
 * that run the block map's zone-thread calls and wait for them. */
#ifndef VDO_BLOCK_MAP_TEST_UTIL_H
#define VDO_BLOCK_MAP_TEST_UTIL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "block-map.h"
#include "io.h"
#include "journal-lock.h"
#include "read-only.h"
#include "super-block.h"
#include "vio.h"
#include "work-queue.h"

#define BM_MAX_ZONES 3
/* Journal blocks the lock counter tracks; tests use smaller sequence
 * numbers, so no two share a slot. */
#define BM_JOURNAL_SIZE 8192

/* One test's world.  Check forks each test, so a global is private. */
struct bm_fixture {
  char dir[64];
  char path[PATH_MAX];
  struct vdo_component_states states;
  struct vdo_io *io;
  struct vdo_io *gate;                  /* see bm_use_gate */
  struct vdo_block_device device;
  unsigned int zone_count;
  struct vdo_work_queue *queues[BM_MAX_ZONES];
  struct vdo_journal_lock_counter *locks;
  struct vdo_read_only_notifier *read_only;
  struct block_map *map;

  /* Free data blocks handed out as tree pages and data. */
  physical_block_number_t *free_pbns;
  size_t free_count;
  atomic_size_t next_free;

  /* Journal blocks whose locks all went away, from the counter. */
  pthread_mutex_t unlock_lock;
  pthread_cond_t unlock_cond;
  bool unlocked[BM_JOURNAL_SIZE];
};

extern struct bm_fixture bm;

/* Format a 3 GiB sparse volume (slab bits 13, 256 TiB logical), open it
 * for asynchronous I/O, and make the lock counter and read-only
 * notifier.  bm_teardown undoes everything, the map included. */
void bm_setup (void);
void bm_teardown (void);

/* Open an existing volume (the fixture image) instead; read_only opens
 * the file without write access. */
void bm_setup_existing (const char *path, bool read_only);

/* Start zone threads and make the map with cache_pages pages in all. */
void bm_make_map (unsigned int zones, block_count_t cache_pages);
/* Free the map and stop the threads (the volume stays open). */
void bm_free_map (void);

/* Route the map's I/O through a gate that can hold asynchronous writes
 * (call before bm_make_map).  Reads always pass; flushes too, unless
 * bm_hold_flushes was called. */
void bm_use_gate (void);
/* From now on the closed gate holds flushes as well, so pages the writer
 * queued behind a flush stay queued. */
void bm_hold_flushes (void);
void bm_close_gate (void);
/* Wait until COUNT writes (and held flushes) are held. */
void bm_wait_held_writes (unsigned int count);
/* Let held writes and flushes, and all later ones, through. */
void bm_open_gate (void);

/* A free data block. */
physical_block_number_t bm_allocate_pbn (void);
bool bm_is_data_block (physical_block_number_t pbn);

/* Waiting for a completion on another thread. */
struct bm_sync {
  struct vdo_completion completion;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
  int result;
};

void bm_sync_init (struct bm_sync *sync, struct vdo_work_queue *queue);
/* Wait (generously) for the completion, then return its result. */
int bm_sync_wait (struct bm_sync *sync);
/* Whether it has run yet, without waiting. */
bool bm_sync_done (struct bm_sync *sync);

/* Zone-thread calls, run on the LBN's zone and waited for. */
int bm_lookup (logical_block_number_t lbn, bool allocate,
               struct vdo_block_map_request *request);
int bm_install (logical_block_number_t lbn, unsigned int height,
                physical_block_number_t pbn, sequence_number_t sequence);
int bm_put (logical_block_number_t lbn, physical_block_number_t pbn,
            enum vdo_mapping_state state, sequence_number_t sequence);
/* vdo_block_map_update_found_slot for the slot REQUEST (from bm_lookup)
 * found. */
int bm_update_found (struct vdo_block_map_request *request,
                     physical_block_number_t pbn,
                     enum vdo_mapping_state state,
                     sequence_number_t sequence);
int bm_read_leaf (uint64_t leaf_page,
                  struct vdo_data_location out[VDO_BLOCK_MAP_ENTRIES_PER_PAGE],
                  bool *present);
/* vdo_block_map_abandon_tree_page, on the request's zone. */
void bm_abandon (const struct vdo_block_map_request *request);
int bm_drain (void);
/* Run nothing on the zone, so everything queued before has run. */
void bm_barrier (unsigned int zone);

/* Allocate and install every missing page on lbn's path, each under
 * journal block sequence; returns how many. */
unsigned int bm_grow (logical_block_number_t lbn, sequence_number_t sequence);

/* bm_grow, then put the mapping (journal block sequence + 1
 * if any page was installed, else sequence).  Returns the number of
 * pages installed. */
unsigned int bm_map (logical_block_number_t lbn, physical_block_number_t pbn,
                     enum vdo_mapping_state state, sequence_number_t sequence);

/* Read a block of the volume straight from the file. */
void bm_read_block (physical_block_number_t pbn, uint8_t *buffer);
/* The page on disk at pbn, if it is a valid page there. */
bool bm_disk_page_is_valid (physical_block_number_t pbn, uint8_t *buffer);

bool bm_is_locked (sequence_number_t sequence);
/* Wait until every LOGICAL lock on the journal block went away. */
void bm_wait_unlocked (sequence_number_t sequence);

struct vdo_block_map_statistics bm_stats (void);

#endif /* VDO_BLOCK_MAP_TEST_UTIL_H */
