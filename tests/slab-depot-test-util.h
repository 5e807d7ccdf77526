/* nbdkit-vdo: shared set-up and synchronous wrappers for the slab depot
 * tests.
 *
 * Each test formats a real sparse volume (or copies a fixture), runs the
 * depot on real work queues and waits for its completions on condition
 * variables with a generous timeout: no sleep decides a result.
 */
#ifndef VDO_SLAB_DEPOT_TEST_UTIL_H
#define VDO_SLAB_DEPOT_TEST_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "io.h"
#include "journal-lock.h"
#include "read-only.h"
#include "slab-depot.h"
#include "slab-summary-format.h"
#include "slab.h"
#include "super-block.h"
#include "volume-layout.h"
#include "work-queue.h"

#define MAX_TEST_ZONES 4

struct sd_sync_call {
  struct vdo_completion completion;     /* first: the callback casts */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
  int result;
  void (*fn) (void *arg);
  void *arg;
};

struct sd_allocation {
  unsigned int zone;
  unsigned int wanted;                  /* 0: until it fails */
  physical_block_number_t *pbns;        /* may be NULL */
  unsigned int got;
  int last_result;
};

struct sd_update_batch {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned int pending;
};

struct sd_test_update {
  struct vdo_reference_update update;   /* first: the callback casts */
  struct sd_update_batch *batch;
  int result;
};

struct sd_snapshot {
  uint8_t *counts;                      /* slab count * data blocks */
  block_count_t *free_blocks;
  sequence_number_t *heads, *tails;
};

struct sd_journal_state {
  block_count_t slab;
  sequence_number_t head, tail;
  enum vdo_slab_status status;
};

/* The environment of the running test (each runs in its own process). */
struct sd_fixture {
  char dir[64];
  char image[128];
  struct vdo_volume_geometry geometry;
  struct vdo_component_states states;
  struct vdo_io *io;
  struct vdo_block_device device;
  unsigned int zone_count;
  struct vdo_work_queue *zone_queues[MAX_TEST_ZONES];
  struct vdo_work_queue *test_queue;
  struct vdo_journal_lock_counter *rj_locks;
  struct vdo_read_only_notifier *read_only;
  struct slab_depot *depot;
  struct journal_point rj_point;        /* the next recovery journal entry */
};

extern struct sd_fixture sd;

/* Completions the test thread waits for. */
void sd_sync_call_init (struct sd_sync_call *call,
                        struct vdo_work_queue *queue);
int sd_sync_call_wait (struct sd_sync_call *call);

const struct slab_config *sd_slab_config (void);
block_count_t sd_slab_count (void);

/* Volumes: a 3 GiB volume with 8192-block slabs in a new temporary
 * directory; or just the directory, and the states of sd.image. */
void sd_format_small_volume (void);
void sd_make_temp_dir (void);
void sd_read_states (void);
void sd_remove_image (void);

/* Threads, I/O, locks and the depot. */
void sd_start_env (unsigned int zone_count);
int sd_make_depot (void);
void sd_stop_env (void);
int sd_load_depot (enum vdo_depot_load_type type);
int sd_drain_depot (void);
/* sd_start_env, sd_make_depot and a successful load of TYPE. */
void sd_start_depot (unsigned int zone_count, enum vdo_depot_load_type type);
/* Drain, record the depot in sd.states as a clean save would, stop. */
void sd_save_and_stop (void);

/* Run FN (ARG) on a zone's queue and wait for it. */
void sd_run_on_zone (unsigned int zone, void (*fn) (void *), void *arg);

/* Synchronous block I/O on the volume, by PBN. */
void sd_read_blocks (physical_block_number_t pbn, block_count_t count,
                     uint8_t *buffer);
void sd_write_blocks (physical_block_number_t pbn, block_count_t count,
                      const uint8_t *buffer);
uint8_t *sd_alloc_blocks (block_count_t count);
physical_block_number_t sd_summary_origin (void);
/* A slab's authoritative summary entry on disk. */
struct slab_summary_entry sd_read_summary_entry (unsigned int slab,
                                                 unsigned int zone_count);
/* A slab's stored counters (255 read as 0) and, if POINTS, each
 * reference block's sector commit points. */
void sd_read_reference_blocks
  (block_count_t slab, uint8_t *counts,
   struct journal_point (*points)[VDO_SECTORS_PER_BLOCK]);

/* Allocation on a zone's queue: sd_allocate_on_zone takes a struct
 * sd_allocation; sd_allocate wants exactly COUNT blocks. */
void sd_allocate_on_zone (void *arg);
void sd_allocate (unsigned int zone, unsigned int count,
                  physical_block_number_t *pbns);
/* The in-memory counter of PBN. */
uint8_t sd_count_of (physical_block_number_t pbn);

/* Reference updates, each with the next recovery journal point unless
 * given one. */
void sd_batch_init (struct sd_update_batch *batch);
void sd_batch_wait (struct sd_update_batch *batch);
struct journal_point sd_next_rj_point (void);
void sd_submit_update (struct sd_update_batch *batch,
                       struct sd_test_update *update,
                       physical_block_number_t pbn,
                       enum vdo_reference_operation operation,
                       struct journal_point rj_point);
int sd_update_now (physical_block_number_t pbn,
                   enum vdo_reference_operation operation);
/* Whether a recovery journal block up to LAST holds a physical lock. */
bool sd_any_rj_block_locked (sequence_number_t last);

/* Every counter, free count and journal head and tail of every slab. */
void sd_take_snapshot (struct sd_snapshot *snapshot);
void sd_free_snapshot (struct sd_snapshot *snapshot);
void sd_assert_same_counts (const struct sd_snapshot *a,
                            const struct sd_snapshot *b);

/* On the zone queue: fill in a struct sd_journal_state for its slab. */
void sd_get_journal_state (void *arg);

#endif /* VDO_SLAB_DEPOT_TEST_UTIL_H */
