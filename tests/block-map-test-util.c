/* nbdkit-vdo: shared set-up and synchronous wrappers for the block map
 * tests. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <glib.h>

#include "block-map-test-util.h"
#include "status.h"
#include "volume.h"
#include "volume-layout.h"

/* Long enough for a slow sanitizer build; a pass never waits this long. */
#define WAIT_SECONDS 120

#define VOLUME_BYTES (3ull << 30)
#define LOGICAL_BYTES (256ull << 40)

struct bm_fixture bm;

static void
journal_unlocked (void *context, sequence_number_t sequence)
{
  struct bm_fixture *f = context;

  pthread_mutex_lock (&f->unlock_lock);
  f->unlocked[sequence % BM_JOURNAL_SIZE] = true;
  pthread_cond_broadcast (&f->unlock_cond);
  pthread_mutex_unlock (&f->unlock_lock);
}

static void
collect_free_pbns (void)
{
  const struct slab_depot_state_2_0 *depot = &bm.states.slab_depot;
  block_count_t slabs = vdo_depot_slab_count (depot), s, total = 0;

  for (s = 0; s < slabs; s++)
    total += vdo_slab_data_range (depot, s).count;
  bm.free_pbns = calloc (total, sizeof *bm.free_pbns);
  ck_assert_ptr_nonnull (bm.free_pbns);
  for (s = 0; s < slabs; s++) {
    struct vdo_pbn_range range = vdo_slab_data_range (depot, s);
    block_count_t i;

    for (i = 0; i < range.count; i++)
      bm.free_pbns[bm.free_count++] = range.start + i;
  }
  atomic_init (&bm.next_free, 0);
}

static void
open_device (bool read_only)
{
  ck_assert_int_eq (vdo_io_open (bm.path, read_only ? VDO_IO_READ_ONLY : 0,
                                 &bm.io), 0);
  ck_assert_int_eq (vdo_io_start (bm.io, 0), 0);
  bm.device.io = bm.io;
  ck_assert_int_eq (vdo_make_journal_lock_counter (BM_JOURNAL_SIZE,
                                                   journal_unlocked, &bm,
                                                   &bm.locks), 0);
  ck_assert_int_eq (vdo_make_read_only_notifier (false, NULL, NULL,
                                                 &bm.read_only), 0);
  pthread_mutex_init (&bm.unlock_lock, NULL);
  pthread_cond_init (&bm.unlock_cond, NULL);
  collect_free_pbns ();
}

void
bm_setup (void)
{
  struct vdo_format_options options = {
    .logical_bytes = LOGICAL_BYTES,
    .slab_bits = 13,
  };
  struct vdo_format_result result;
  int fd;

  memset (&bm, 0, sizeof bm);
  strcpy (bm.dir, "/tmp/vdo-block-map-test-XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (bm.dir));
  snprintf (bm.path, sizeof bm.path, "%s/volume", bm.dir);
  fd = open (bm.path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, VOLUME_BYTES), 0);
  close (fd);
  ck_assert_int_eq (vdo_volume_format (bm.path, &options, &result),
                    VDO_SUCCESS);
  bm.states = result.states;
  bm.device.bio_offset = result.geometry.bio_offset;
  open_device (false);
}

void
bm_setup_existing (const char *path, bool read_only)
{
  struct vdo_volume *volume;

  memset (&bm, 0, sizeof bm);
  snprintf (bm.path, sizeof bm.path, "%s", path);
  ck_assert_int_eq (vdo_volume_open (path, false, &volume), VDO_SUCCESS);
  bm.states = *vdo_volume_get_states (volume);
  bm.device.bio_offset = vdo_volume_get_geometry (volume)->bio_offset;
  vdo_volume_close (volume);
  open_device (read_only);
}

void
bm_teardown (void)
{
  bm_free_map ();
  if (bm.gate != NULL)
    vdo_io_close (bm.gate);
  if (bm.io != NULL)
    vdo_io_close (bm.io);
  vdo_free_journal_lock_counter (bm.locks);
  vdo_free_read_only_notifier (bm.read_only);
  free (bm.free_pbns);
  if (bm.dir[0]) {
    unlink (bm.path);
    rmdir (bm.dir);
  }
  memset (&bm, 0, sizeof bm);
}

void
bm_make_map (unsigned int zones, block_count_t cache_pages)
{
  struct block_map_config config = {
    .state = bm.states.block_map,
    .logical_blocks = bm.states.config.logical_blocks,
    .nonce = bm.states.nonce,
    .depot = bm.states.slab_depot,
    .device = &bm.device,
    .logical_zone_count = zones,
    .zone_queues = bm.queues,
    .cache_pages = cache_pages,
    .journal_locks = bm.locks,
    .read_only = bm.read_only,
  };
  unsigned int z;

  ck_assert_uint_le (zones, BM_MAX_ZONES);
  for (z = 0; z < zones; z++) {
    char name[32];

    snprintf (name, sizeof name, "logical%u", z);
    ck_assert_int_eq (vdo_make_work_queue (name, &bm.queues[z]), 0);
    ck_assert_int_eq (vdo_start_work_queue (bm.queues[z]), 0);
  }
  bm.zone_count = zones;
  ck_assert_int_eq (vdo_make_block_map (&config, &bm.map), VDO_SUCCESS);
}

void
bm_free_map (void)
{
  unsigned int z;

  /* The threads go first: nothing may run on them while the map goes. */
  for (z = 0; z < bm.zone_count; z++) {
    vdo_free_work_queue (bm.queues[z]);
    bm.queues[z] = NULL;
  }
  bm.zone_count = 0;
  vdo_free_block_map (bm.map);
  bm.map = NULL;
}

physical_block_number_t
bm_allocate_pbn (void)
{
  size_t i = atomic_fetch_add (&bm.next_free, 1);

  ck_assert_uint_lt (i, bm.free_count);
  return bm.free_pbns[i];
}

bool
bm_is_data_block (physical_block_number_t pbn)
{
  return pbn != 0 && vdo_is_physical_data_block (&bm.states.slab_depot, pbn);
}

/* --- A gate for writes ------------------------------------------------- */

/* An I/O backend that hands everything to the real one, except that it
 * can hold asynchronous writes back. */
struct gate_io {
  struct vdo_io base;
  struct vdo_io *inner;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  bool closed;
  bool hold_flushes;
  GPtrArray *held;
};

static struct gate_io *
gate_of (struct vdo_io *io)
{
  return (struct gate_io *) io;
}

static int
gate_read (struct vdo_io *io, physical_block_number_t block,
           block_count_t count, void *buffer)
{
  return vdo_io_read_blocks (gate_of (io)->inner, block, count, buffer);
}

static int
gate_write (struct vdo_io *io, physical_block_number_t block,
            block_count_t count, const void *buffer)
{
  return vdo_io_write_blocks (gate_of (io)->inner, block, count, buffer);
}

static int
gate_flush (struct vdo_io *io)
{
  return vdo_io_flush (gate_of (io)->inner);
}

static int
gate_start (struct vdo_io *io, unsigned queue_depth)
{
  return 0;
}

static void
gate_submit (struct vdo_io *io, struct vdo_io_request *const *requests,
             size_t count)
{
  struct gate_io *gate = gate_of (io);
  size_t i;

  for (i = 0; i < count; i++) {
    pthread_mutex_lock (&gate->lock);
    if (gate->closed && (requests[i]->op == VDO_IO_WRITE
                         || (gate->hold_flushes
                             && requests[i]->op == VDO_IO_FLUSH))) {
      g_ptr_array_add (gate->held, requests[i]);
      pthread_cond_broadcast (&gate->changed);
      pthread_mutex_unlock (&gate->lock);
      continue;
    }
    pthread_mutex_unlock (&gate->lock);
    vdo_io_submit_one (gate->inner, requests[i]);
  }
}

static void
gate_complete (struct vdo_io *io, struct vdo_io_request *request, int result)
{
  struct vdo_io *inner = gate_of (io)->inner;

  inner->ops->complete (inner, request, result);
}

static void
gate_drain (struct vdo_io *io)
{
  vdo_io_drain (gate_of (io)->inner);
}

static void
gate_destroy (struct vdo_io *io)
{
  struct gate_io *gate = gate_of (io);

  g_ptr_array_free (gate->held, true);
  pthread_mutex_destroy (&gate->lock);
  pthread_cond_destroy (&gate->changed);
  vdo_io_release_base (io);
  free (gate);
}

static const struct vdo_io_ops gate_ops = {
  .name = "gate",
  .read = gate_read,
  .write = gate_write,
  .flush = gate_flush,
  .start = gate_start,
  .submit = gate_submit,
  .complete = gate_complete,
  .drain = gate_drain,
  .destroy = gate_destroy,
};

void
bm_use_gate (void)
{
  struct gate_io *gate = calloc (1, sizeof *gate);

  ck_assert_ptr_nonnull (gate);
  ck_assert_int_eq (vdo_io_init_base (&gate->base, &gate_ops, bm.path,
                                      vdo_io_size (bm.io), false, false,
                                      false), 0);
  gate->inner = bm.io;
  pthread_mutex_init (&gate->lock, NULL);
  pthread_cond_init (&gate->changed, NULL);
  gate->held = g_ptr_array_new ();
  ck_assert_int_eq (vdo_io_start (&gate->base, 0), 0);
  bm.gate = &gate->base;
  bm.device.io = bm.gate;
}

void
bm_hold_flushes (void)
{
  struct gate_io *gate = gate_of (bm.gate);

  pthread_mutex_lock (&gate->lock);
  gate->hold_flushes = true;
  pthread_mutex_unlock (&gate->lock);
}

void
bm_close_gate (void)
{
  struct gate_io *gate = gate_of (bm.gate);

  pthread_mutex_lock (&gate->lock);
  gate->closed = true;
  pthread_mutex_unlock (&gate->lock);
}

void
bm_wait_held_writes (unsigned int count)
{
  struct gate_io *gate = gate_of (bm.gate);
  struct timespec when;

  clock_gettime (CLOCK_REALTIME, &when);
  when.tv_sec += WAIT_SECONDS;
  pthread_mutex_lock (&gate->lock);
  while (gate->held->len < count)
    if (pthread_cond_timedwait (&gate->changed, &gate->lock, &when)
        == ETIMEDOUT)
      break;
  ck_assert_msg (gate->held->len >= count, "only %u writes were held",
                 gate->held->len);
  pthread_mutex_unlock (&gate->lock);
}

void
bm_open_gate (void)
{
  struct gate_io *gate = gate_of (bm.gate);
  GPtrArray *held;
  guint i;

  pthread_mutex_lock (&gate->lock);
  gate->closed = false;
  held = gate->held;
  gate->held = g_ptr_array_new ();
  pthread_mutex_unlock (&gate->lock);
  for (i = 0; i < held->len; i++)
    vdo_io_submit_one (gate->inner, g_ptr_array_index (held, i));
  g_ptr_array_free (held, true);
}

/* --- Waiting ----------------------------------------------------------- */

static void
sync_done (struct vdo_completion *completion)
{
  struct bm_sync *sync = completion->parent;

  pthread_mutex_lock (&sync->lock);
  sync->result = completion->result;
  sync->done = true;
  pthread_cond_broadcast (&sync->cond);
  pthread_mutex_unlock (&sync->lock);
}

void
bm_sync_init (struct bm_sync *sync, struct vdo_work_queue *queue)
{
  pthread_mutex_init (&sync->lock, NULL);
  pthread_cond_init (&sync->cond, NULL);
  sync->done = false;
  sync->result = -1;
  vdo_prepare_completion (&sync->completion, sync_done, queue, sync);
}

static void
deadline (struct timespec *when)
{
  clock_gettime (CLOCK_REALTIME, when);
  when->tv_sec += WAIT_SECONDS;
}

int
bm_sync_wait (struct bm_sync *sync)
{
  struct timespec when;
  int result;

  deadline (&when);
  pthread_mutex_lock (&sync->lock);
  while (!sync->done)
    if (pthread_cond_timedwait (&sync->cond, &sync->lock, &when) == ETIMEDOUT)
      break;
  ck_assert_msg (sync->done, "timed out waiting for a block map operation");
  result = sync->result;
  pthread_mutex_unlock (&sync->lock);
  return result;
}

bool
bm_sync_done (struct bm_sync *sync)
{
  bool done;

  pthread_mutex_lock (&sync->lock);
  done = sync->done;
  pthread_mutex_unlock (&sync->lock);
  return done;
}

/* --- Calls on a zone thread -------------------------------------------- */

struct zone_call {
  struct vdo_completion launch;
  void (*action) (struct zone_call *call);
  struct bm_sync done;
  struct vdo_block_map_request *request;
  logical_block_number_t lbn;
  unsigned int height;
  struct vdo_data_location location;
  sequence_number_t sequence;
  uint64_t leaf_page;
  struct vdo_data_location *entries;
  bool *present;
};

static void
run_call (struct vdo_completion *completion)
{
  struct zone_call *call = completion->parent;

  call->action (call);
}

static int
call_on_zone (struct zone_call *call, unsigned int zone)
{
  struct vdo_work_queue *queue = vdo_block_map_zone_queue (bm.map, zone);

  bm_sync_init (&call->done, queue);
  vdo_prepare_completion (&call->launch, run_call, queue, call);
  vdo_enqueue_completion (&call->launch);
  return bm_sync_wait (&call->done);
}

static void
lookup_action (struct zone_call *call)
{
  vdo_block_map_find_slot (bm.map, call->request);
}

static void
request_done (struct vdo_completion *completion)
{
  struct zone_call *call = completion->parent;

  call->done.completion.result = completion->result;
  sync_done (&call->done.completion);
}

int
bm_lookup (logical_block_number_t lbn, bool allocate,
           struct vdo_block_map_request *request)
{
  struct zone_call call = { .action = lookup_action, .request = request };
  unsigned int zone = lbn < vdo_block_map_logical_blocks (bm.map)
                      ? vdo_logical_zone_of_lbn (bm.map, lbn) : 0;

  memset (request, 0, sizeof *request);
  request->lbn = lbn;
  request->allocate = allocate;
  vdo_prepare_completion (&request->completion, request_done,
                          vdo_block_map_zone_queue (bm.map, zone), &call);
  return call_on_zone (&call, zone);
}

static struct journal_point
point (sequence_number_t sequence)
{
  struct journal_point p = { .sequence_number = sequence, .entry_count = 0 };

  return p;
}

static void
install_action (struct zone_call *call)
{
  vdo_block_map_install_tree_page (bm.map, call->lbn, call->height,
                                   call->location.pbn, point (call->sequence),
                                   &call->done.completion);
}

int
bm_install (logical_block_number_t lbn, unsigned int height,
            physical_block_number_t pbn, sequence_number_t sequence)
{
  struct zone_call call = {
    .action = install_action,
    .lbn = lbn,
    .height = height,
    .location = { .pbn = pbn, .state = VDO_MAPPING_STATE_UNCOMPRESSED },
    .sequence = sequence,
  };

  return call_on_zone (&call, vdo_logical_zone_of_lbn (bm.map, lbn));
}

static void
put_action (struct zone_call *call)
{
  vdo_block_map_put_mapping (bm.map, call->lbn, call->location,
                             point (call->sequence), &call->done.completion);
}

int
bm_put (logical_block_number_t lbn, physical_block_number_t pbn,
        enum vdo_mapping_state state, sequence_number_t sequence)
{
  struct zone_call call = {
    .action = put_action,
    .lbn = lbn,
    .location = { .pbn = pbn, .state = state },
    .sequence = sequence,
  };
  unsigned int zone = lbn < vdo_block_map_logical_blocks (bm.map)
                      ? vdo_logical_zone_of_lbn (bm.map, lbn) : 0;

  return call_on_zone (&call, zone);
}

static void
update_found_action (struct zone_call *call)
{
  vdo_block_map_update_found_slot (bm.map, call->request, call->location,
                                   point (call->sequence),
                                   &call->done.completion);
}

int
bm_update_found (struct vdo_block_map_request *request,
                 physical_block_number_t pbn, enum vdo_mapping_state state,
                 sequence_number_t sequence)
{
  struct zone_call call = {
    .action = update_found_action,
    .request = request,
    .location = { .pbn = pbn, .state = state },
    .sequence = sequence,
  };

  return call_on_zone (&call, vdo_logical_zone_of_lbn (bm.map, request->lbn));
}

static void
read_leaf_action (struct zone_call *call)
{
  vdo_block_map_read_leaf (bm.map, call->leaf_page, call->entries,
                           call->present, &call->done.completion);
}

int
bm_read_leaf (uint64_t leaf_page,
              struct vdo_data_location out[VDO_BLOCK_MAP_ENTRIES_PER_PAGE],
              bool *present)
{
  struct zone_call call = {
    .action = read_leaf_action,
    .leaf_page = leaf_page,
    .entries = out,
    .present = present,
  };

  return call_on_zone (&call, vdo_logical_zone_of_lbn
                       (bm.map, leaf_page * VDO_BLOCK_MAP_ENTRIES_PER_PAGE));
}

static void
abandon_action (struct zone_call *call)
{
  vdo_block_map_abandon_tree_page (bm.map, call->request);
  vdo_finish_completion (&call->done.completion, VDO_SUCCESS);
}

void
bm_abandon (const struct vdo_block_map_request *request)
{
  struct zone_call call = {
    .action = abandon_action,
    .request = (struct vdo_block_map_request *) request,
  };

  ck_assert_int_eq (call_on_zone (&call, vdo_logical_zone_of_lbn
                                  (bm.map, request->lbn)), VDO_SUCCESS);
}

int
bm_drain (void)
{
  struct bm_sync sync;

  bm_sync_init (&sync, vdo_block_map_zone_queue (bm.map, 0));
  vdo_drain_block_map (bm.map, &sync.completion);
  return bm_sync_wait (&sync);
}

static void
nothing (struct zone_call *call)
{
  vdo_finish_completion (&call->done.completion, VDO_SUCCESS);
}

void
bm_barrier (unsigned int zone)
{
  struct zone_call call = { .action = nothing };

  ck_assert_int_eq (call_on_zone (&call, zone), VDO_SUCCESS);
}

unsigned int
bm_grow (logical_block_number_t lbn, sequence_number_t sequence)
{
  struct vdo_block_map_request request;
  unsigned int installed = 0;

  for (;;) {
    ck_assert_int_eq (bm_lookup (lbn, true, &request), VDO_SUCCESS);
    if (request.path_complete)
      return installed;
    ck_assert_int_eq (bm_install (lbn, request.missing_height,
                                  bm_allocate_pbn (), sequence), VDO_SUCCESS);
    installed++;
  }
}

unsigned int
bm_map (logical_block_number_t lbn, physical_block_number_t pbn,
        enum vdo_mapping_state state, sequence_number_t sequence)
{
  unsigned int installed = bm_grow (lbn, sequence);

  ck_assert_int_eq (bm_put (lbn, pbn, state,
                            installed > 0 ? sequence + 1 : sequence),
                    VDO_SUCCESS);
  return installed;
}

/* --- The volume on disk ------------------------------------------------ */

void
bm_read_block (physical_block_number_t pbn, uint8_t *buffer)
{
  uint8_t *aligned = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);

  ck_assert_ptr_nonnull (aligned);
  ck_assert_int_eq (vdo_io_read_blocks (bm.io, pbn - bm.device.bio_offset, 1,
                                        aligned), 0);
  memcpy (buffer, aligned, VDO_BLOCK_SIZE);
  vdo_io_free_buffer (aligned);
}

bool
bm_disk_page_is_valid (physical_block_number_t pbn, uint8_t *buffer)
{
  bm_read_block (pbn, buffer);
  return vdo_validate_block_map_page (buffer, bm.states.nonce, pbn)
         == VDO_BLOCK_MAP_PAGE_VALID;
}

bool
bm_is_locked (sequence_number_t sequence)
{
  return vdo_is_journal_block_locked (bm.locks, sequence,
                                      VDO_ZONE_TYPE_LOGICAL);
}

void
bm_wait_unlocked (sequence_number_t sequence)
{
  struct timespec when;

  deadline (&when);
  pthread_mutex_lock (&bm.unlock_lock);
  while (bm_is_locked (sequence))
    if (pthread_cond_timedwait (&bm.unlock_cond, &bm.unlock_lock, &when)
        == ETIMEDOUT)
      break;
  pthread_mutex_unlock (&bm.unlock_lock);
  ck_assert_msg (!bm_is_locked (sequence),
                 "journal block %" PRIu64 " is still locked", sequence);
}

struct vdo_block_map_statistics
bm_stats (void)
{
  struct vdo_block_map_statistics stats;

  vdo_get_block_map_statistics (bm.map, &stats);
  return stats;
}
