/* nbdkit-vdo: shared set-up and synchronous wrappers for the slab depot
 * tests. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "ref-counts-format.h"
#include "slab-depot-test-util.h"
#include "status.h"
#include "volume.h"

/* The smallest volume with a 0.25 GB index, with 8192-block slabs. */
#define SMALL_VOLUME_BYTES (3ull << 30)
/* Generous: only a hang should ever reach it. */
#define WAIT_SECONDS 120
#define RJ_LOCK_SLOTS 8192
#define RJ_ENTRIES_PER_BLOCK 217

/* --- Waiting for completions --------------------------------------------- */

static void
sync_call_done (struct vdo_completion *completion)
{
  struct sd_sync_call *call = (struct sd_sync_call *) completion;

  if (call->fn != NULL)
    call->fn (call->arg);
  pthread_mutex_lock (&call->lock);
  call->result = completion->result;
  call->done = true;
  pthread_cond_broadcast (&call->cond);
  pthread_mutex_unlock (&call->lock);
}

void
sd_sync_call_init (struct sd_sync_call *call, struct vdo_work_queue *queue)
{
  memset (call, 0, sizeof *call);
  pthread_mutex_init (&call->lock, NULL);
  pthread_cond_init (&call->cond, NULL);
  vdo_prepare_completion (&call->completion, sync_call_done, queue, call);
}

static void
wait_until (pthread_mutex_t *lock, pthread_cond_t *cond, bool (*ready) (void *),
            void *arg)
{
  struct timespec deadline;

  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += WAIT_SECONDS;
  pthread_mutex_lock (lock);
  while (!ready (arg))
    if (pthread_cond_timedwait (cond, lock, &deadline) == ETIMEDOUT
        && !ready (arg)) {
      pthread_mutex_unlock (lock);
      ck_abort_msg ("timed out waiting for the slab depot");
    }
  pthread_mutex_unlock (lock);
}

static bool
call_is_done (void *arg)
{
  return ((struct sd_sync_call *) arg)->done;
}

int
sd_sync_call_wait (struct sd_sync_call *call)
{
  wait_until (&call->lock, &call->cond, call_is_done, call);
  pthread_mutex_destroy (&call->lock);
  pthread_cond_destroy (&call->cond);
  return call->result;
}

/* --- The test environment ---------------------------------------------- */

struct sd_fixture sd;

const struct slab_config *
sd_slab_config (void)
{
  return &sd.states.slab_depot.slab_config;
}

block_count_t
sd_slab_count (void)
{
  return vdo_depot_slab_count (&sd.states.slab_depot);
}

void
sd_read_states (void)
{
  struct vdo_volume *volume;

  ck_assert_int_eq (vdo_volume_open (sd.image, false, &volume), VDO_SUCCESS);
  sd.geometry = *vdo_volume_get_geometry (volume);
  sd.states = *vdo_volume_get_states (volume);
  vdo_volume_close (volume);
}

void
sd_make_temp_dir (void)
{
  strcpy (sd.dir, "/tmp/vdo-slab-depot.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (sd.dir));
  snprintf (sd.image, sizeof sd.image, "%s/volume.img", sd.dir);
}

void
sd_format_small_volume (void)
{
  struct vdo_format_options options = { .slab_bits = 13 };
  struct vdo_format_result result;
  int fd;

  sd_make_temp_dir ();
  fd = open (sd.image, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, SMALL_VOLUME_BYTES), 0);
  close (fd);
  ck_assert_int_eq (vdo_volume_format (sd.image, &options, &result),
                    VDO_SUCCESS);
  sd_read_states ();
  sd.rj_point = (struct journal_point) { 1, 0 };
}

void
sd_remove_image (void)
{
  unlink (sd.image);
  rmdir (sd.dir);
}

void
sd_start_env (unsigned int zone_count)
{
  unsigned int z;

  ck_assert_int_eq (vdo_io_open (sd.image, 0, &sd.io), 0);
  ck_assert_int_eq (vdo_io_start (sd.io, 0), 0);
  sd.device = (struct vdo_block_device) {
    .io = sd.io,
    .bio_offset = sd.geometry.bio_offset,
  };
  sd.zone_count = zone_count;
  for (z = 0; z < zone_count; z++) {
    char name[32];

    snprintf (name, sizeof name, "physical%u", z);
    ck_assert_int_eq (vdo_make_work_queue (name, &sd.zone_queues[z]), 0);
    ck_assert_int_eq (vdo_start_work_queue (sd.zone_queues[z]), 0);
  }
  ck_assert_int_eq (vdo_make_work_queue ("test", &sd.test_queue), 0);
  ck_assert_int_eq (vdo_start_work_queue (sd.test_queue), 0);
  ck_assert_int_eq (vdo_make_journal_lock_counter (RJ_LOCK_SLOTS, NULL, NULL,
                                                   &sd.rj_locks), 0);
  ck_assert_int_eq (vdo_make_read_only_notifier (false, NULL, NULL,
                                                 &sd.read_only), 0);
}

int
sd_make_depot (void)
{
  const struct vdo_partition *summary =
    vdo_layout_find_partition (&sd.states.layout, VDO_SLAB_SUMMARY_PARTITION);
  struct slab_depot_config config = {
    .state = sd.states.slab_depot,
    .nonce = sd.states.nonce,
    .summary_origin = summary->offset,
    .summary_blocks = summary->count,
    .device = &sd.device,
    .zone_count = sd.zone_count,
    .zone_queues = sd.zone_queues,
    .journal_locks = sd.rj_locks,
    .read_only = sd.read_only,
  };

  return vdo_make_slab_depot (&config, &sd.depot);
}

void
sd_stop_env (void)
{
  unsigned int z;

  /* Nothing may still be running: every test waits for its work. */
  vdo_io_drain (sd.io);
  for (z = 0; z < sd.zone_count; z++)
    vdo_free_work_queue (sd.zone_queues[z]);
  vdo_free_work_queue (sd.test_queue);
  vdo_io_drain (sd.io);
  vdo_free_slab_depot (sd.depot);
  sd.depot = NULL;
  vdo_free_journal_lock_counter (sd.rj_locks);
  vdo_free_read_only_notifier (sd.read_only);
  vdo_io_close (sd.io);
}

int
sd_load_depot (enum vdo_depot_load_type type)
{
  struct sd_sync_call call;

  sd_sync_call_init (&call, sd.test_queue);
  vdo_load_slab_depot (sd.depot, type, &call.completion);
  return sd_sync_call_wait (&call);
}

int
sd_drain_depot (void)
{
  struct sd_sync_call call;

  sd_sync_call_init (&call, sd.test_queue);
  vdo_drain_slab_depot (sd.depot, &call.completion);
  return sd_sync_call_wait (&call);
}

/* Start a fresh environment with a loaded depot. */
void
sd_start_depot (unsigned int zone_count, enum vdo_depot_load_type type)
{
  sd_start_env (zone_count);
  ck_assert_int_eq (sd_make_depot (), VDO_SUCCESS);
  ck_assert_int_eq (sd_load_depot (type), VDO_SUCCESS);
}

/* Drain, record the depot in the states as a clean save would, stop. */
void
sd_save_and_stop (void)
{
  ck_assert_int_eq (sd_drain_depot (), VDO_SUCCESS);
  vdo_record_slab_depot (sd.depot, &sd.states.slab_depot);
  sd_stop_env ();
}

void
sd_run_on_zone (unsigned int zone, void (*fn) (void *), void *arg)
{
  struct sd_sync_call call;

  sd_sync_call_init (&call, sd.zone_queues[zone]);
  call.fn = fn;
  call.arg = arg;
  vdo_enqueue_completion (&call.completion);
  ck_assert_int_eq (sd_sync_call_wait (&call), VDO_SUCCESS);
}

void
sd_read_blocks (physical_block_number_t pbn, block_count_t count,
                uint8_t *buffer)
{
  ck_assert_int_eq (vdo_io_read_blocks (sd.io, pbn - sd.geometry.bio_offset,
                                        count, buffer), 0);
}

void
sd_write_blocks (physical_block_number_t pbn, block_count_t count,
              const uint8_t *buffer)
{
  ck_assert_int_eq (vdo_io_write_blocks (sd.io, pbn - sd.geometry.bio_offset,
                                         count, buffer), 0);
}

uint8_t *
sd_alloc_blocks (block_count_t count)
{
  uint8_t *buffer = vdo_io_alloc_buffer (count * VDO_BLOCK_SIZE);

  ck_assert_ptr_nonnull (buffer);
  return buffer;
}

physical_block_number_t
sd_summary_origin (void)
{
  return vdo_layout_find_partition (&sd.states.layout,
                                    VDO_SLAB_SUMMARY_PARTITION)->offset;
}

/* The authoritative entry of a slab, read from disk. */
struct slab_summary_entry
sd_read_summary_entry (unsigned int slab, unsigned int zone_count)
{
  uint8_t *block = sd_alloc_blocks (1);
  struct slab_summary_entry entry;
  unsigned int zone = vdo_slab_summary_zone_for_slab (slab, zone_count);

  sd_read_blocks (sd_summary_origin ()
                  + vdo_slab_summary_block_for_slab (zone, slab), 1, block);
  entry = vdo_decode_slab_summary_entry
            (block + vdo_slab_summary_entry_offset (slab));
  vdo_io_free_buffer (block);
  return entry;
}

/* --- Allocation and updates -------------------------------------------- */

void
sd_allocate_on_zone (void *arg)
{
  struct sd_allocation *a = arg;

  for (;;) {
    physical_block_number_t pbn;
    int result = vdo_allocate_block (sd.depot, a->zone, &pbn);

    a->last_result = result;
    if (result != VDO_SUCCESS)
      return;
    if (a->pbns != NULL)
      a->pbns[a->got] = pbn;
    a->got++;
    if (a->wanted != 0 && a->got == a->wanted)
      return;
  }
}

void
sd_allocate (unsigned int zone, unsigned int count,
          physical_block_number_t *pbns)
{
  struct sd_allocation a = { .zone = zone, .wanted = count, .pbns = pbns };

  sd_run_on_zone (zone, sd_allocate_on_zone, &a);
  ck_assert_int_eq (a.got, count);
}

struct count_query {
  physical_block_number_t pbn;
  uint8_t count;
  int result;
};

static void
query_count (void *arg)
{
  struct count_query *q = arg;

  q->result = vdo_get_reference_count (sd.depot, q->pbn, &q->count);
}

uint8_t
sd_count_of (physical_block_number_t pbn)
{
  struct count_query q = { .pbn = pbn };

  sd_run_on_zone (vdo_physical_zone_of_pbn (sd.depot, pbn), query_count, &q);
  ck_assert_int_eq (q.result, VDO_SUCCESS);
  return q.count;
}

void
sd_batch_init (struct sd_update_batch *batch)
{
  pthread_mutex_init (&batch->lock, NULL);
  pthread_cond_init (&batch->cond, NULL);
  batch->pending = 0;
}

static void
update_done (struct vdo_completion *completion)
{
  struct sd_test_update *update = (struct sd_test_update *) completion;
  struct sd_update_batch *batch = update->batch;

  update->result = completion->result;
  pthread_mutex_lock (&batch->lock);
  batch->pending--;
  pthread_cond_broadcast (&batch->cond);
  pthread_mutex_unlock (&batch->lock);
}

static bool
batch_is_done (void *arg)
{
  return ((struct sd_update_batch *) arg)->pending == 0;
}

void
sd_batch_wait (struct sd_update_batch *batch)
{
  wait_until (&batch->lock, &batch->cond, batch_is_done, batch);
}

struct journal_point
sd_next_rj_point (void)
{
  struct journal_point point = sd.rj_point;

  if (++sd.rj_point.entry_count == RJ_ENTRIES_PER_BLOCK) {
    sd.rj_point.sequence_number++;
    sd.rj_point.entry_count = 0;
  }
  return point;
}

void
sd_submit_update (struct sd_update_batch *batch, struct sd_test_update *update,
               physical_block_number_t pbn,
               enum vdo_reference_operation operation,
               struct journal_point rj_point)
{
  memset (update, 0, sizeof *update);
  update->batch = batch;
  vdo_prepare_completion (&update->update.completion, update_done,
                          sd.test_queue, update);
  update->update.pbn = pbn;
  update->update.operation = operation;
  update->update.recovery_point = rj_point;
  pthread_mutex_lock (&batch->lock);
  batch->pending++;
  pthread_mutex_unlock (&batch->lock);
  vdo_update_reference_count (sd.depot, &update->update);
}

/* One update, waited for. */
int
sd_update_now (physical_block_number_t pbn,
            enum vdo_reference_operation operation)
{
  struct sd_update_batch batch;
  struct sd_test_update update;

  sd_batch_init (&batch);
  sd_submit_update (&batch, &update, pbn, operation, sd_next_rj_point ());
  sd_batch_wait (&batch);
  return update.result;
}

/* Whether any recovery journal block up to LAST holds a physical lock. */
bool
sd_any_rj_block_locked (sequence_number_t last)
{
  sequence_number_t seq;

  for (seq = 1; seq <= last; seq++)
    if (vdo_is_journal_block_locked (sd.rj_locks, seq,
                                     VDO_ZONE_TYPE_PHYSICAL))
      return true;
  return false;
}

/* A copy of every counter of every slab, taken on the zone threads. */
struct sd_snapshot_args {
  struct sd_snapshot *snapshot;
  block_count_t slab;
};

static void
snapshot_slab (void *arg)
{
  struct sd_snapshot_args *a = arg;
  struct vdo_slab *slab = vdo_get_slab (sd.depot, a->slab);
  block_count_t data_blocks = sd_slab_config ()->data_blocks;

  memcpy (a->snapshot->counts + a->slab * data_blocks, slab->counts.counters,
          data_blocks);
  a->snapshot->free_blocks[a->slab] = slab->counts.free_blocks;
  a->snapshot->heads[a->slab] = slab->journal.head;
  a->snapshot->tails[a->slab] = slab->journal.tail;
}

void
sd_take_snapshot (struct sd_snapshot *snapshot)
{
  block_count_t n, slabs = sd_slab_count ();

  snapshot->counts = malloc (slabs * sd_slab_config ()->data_blocks);
  snapshot->free_blocks = calloc (slabs, sizeof *snapshot->free_blocks);
  snapshot->heads = calloc (slabs, sizeof *snapshot->heads);
  snapshot->tails = calloc (slabs, sizeof *snapshot->tails);
  ck_assert_ptr_nonnull (snapshot->counts);
  for (n = 0; n < slabs; n++) {
    struct sd_snapshot_args a = { snapshot, n };

    sd_run_on_zone (n % sd.zone_count, snapshot_slab, &a);
  }
}

void
sd_free_snapshot (struct sd_snapshot *snapshot)
{
  free (snapshot->counts);
  free (snapshot->free_blocks);
  free (snapshot->heads);
  free (snapshot->tails);
}

void
sd_assert_same_counts (const struct sd_snapshot *a, const struct sd_snapshot *b)
{
  block_count_t n, slabs = sd_slab_count ();
  block_count_t data_blocks = sd_slab_config ()->data_blocks;

  for (n = 0; n < slabs; n++) {
    ck_assert_mem_eq (a->counts + n * data_blocks, b->counts + n * data_blocks,
                      data_blocks);
    ck_assert_uint_eq (a->free_blocks[n], b->free_blocks[n]);
  }
}

/* The stored counters of a slab (255 read as 0), and each block's
 * sector commit points. */
void
sd_read_reference_blocks (block_count_t slab, uint8_t *counts,
                       struct journal_point (*points)[VDO_SECTORS_PER_BLOCK])
{
  struct vdo_pbn_range range =
    vdo_slab_reference_range (&sd.states.slab_depot, slab);
  block_count_t used =
    vdo_reference_blocks_used (sd_slab_config ()->data_blocks);
  uint8_t *buffer = sd_alloc_blocks (used);
  uint8_t *all = malloc (used * VDO_COUNTS_PER_BLOCK);
  struct journal_point scratch[VDO_SECTORS_PER_BLOCK];
  block_count_t i;

  ck_assert_ptr_nonnull (all);
  sd_read_blocks (range.start, used, buffer);
  for (i = 0; i < used; i++)
    vdo_decode_reference_block (buffer + i * VDO_BLOCK_SIZE,
                                all + i * VDO_COUNTS_PER_BLOCK,
                                points != NULL ? points[i] : scratch);
  for (i = 0; i < sd_slab_config ()->data_blocks; i++)
    counts[i] = vdo_reference_count_from_disk (all[i]);
  free (all);
  vdo_io_free_buffer (buffer);
}


void
sd_get_journal_state (void *arg)
{
  struct sd_journal_state *s = arg;
  struct vdo_slab *slab = vdo_get_slab (sd.depot, s->slab);

  s->head = slab->journal.head;
  s->tail = slab->journal.tail;
  s->status = slab->status;
}
