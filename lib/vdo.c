/* nbdkit-vdo: loading, starting, saving and stopping a volume. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data-vio.h"
#include "io.h"
#include "logger.h"
#include "page-mappings.h"
#include "repair.h"
#include "status.h"
#include "vdo-internal.h"
#include "volume-layout.h"

/* dm-vdo's pool of requests in flight. */
#define DATA_VIO_POOL_SIZE 2048
#define IO_QUEUE_DEPTH 1024

uint64_t
vdo_logical_bytes (const struct vdo *vdo)
{
  return vdo->states.config.logical_blocks * VDO_BLOCK_SIZE;
}

bool
vdo_is_serving_read_only (const struct vdo *vdo)
{
  return vdo->serving_read_only
         || (vdo->read_only != NULL && vdo_is_read_only (vdo->read_only));
}

/* --- The super block ----------------------------------------------------- */

/* Write the super block with STATE and make it durable (PREFLUSH + FUA).
 * It fits in one sector, so it cannot tear. */
static int
save_super_block (struct vdo *vdo, uint32_t state)
{
  struct vdo_io *io = vdo->device.io;
  physical_block_number_t pbn = vdo_geometry_data_region_start (&vdo->geometry);
  uint8_t *block;
  int r;

  block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (block == NULL)
    return ENOMEM;
  pthread_mutex_lock (&vdo->super_block_lock);
  vdo->states.state = state;
  vdo_encode_super_block (block, &vdo->states);
  r = vdo_io_flush (io);
  if (r == 0)
    r = vdo_io_write_blocks (io, pbn - vdo->device.bio_offset, 1, block);
  if (r == 0)
    r = vdo_io_flush (io);
  pthread_mutex_unlock (&vdo->super_block_lock);
  vdo_io_free_buffer (block);
  return r;
}

/* The first thread to enter read-only mode persists it, as dm-vdo does.
 * journal_start stays as last saved: a lower bound, which is all that
 * recovery asks of it. */
static void
persist_read_only_mode (void *context, int error_code)
{
  struct vdo *vdo = context;
  int r;

  (void) error_code;
  r = save_super_block (vdo, VDO_READ_ONLY_MODE);
  if (r != 0)
    vdo_log_error ("could not record read-only mode in the super block: %s",
                   vdo_status_to_string (r));
  else
    vdo_log_error ("the volume is now read-only; after fixing the cause, run "
                   "'vdoadm force-rebuild %s' and restart",
                   vdo_volume_path (vdo->volume));
}

/* --- Loading (get_ready: no threads) ------------------------------------- */

static int
check_options (struct vdo *vdo)
{
  struct vdo_options *o = &vdo->options;
  block_count_t slabs = vdo_depot_slab_count (&vdo->states.slab_depot);

  if (o->cache_pages == 0)
    o->cache_pages = VDO_BLOCK_MAP_DEFAULT_CACHE_PAGES;
  if (o->single_zone_thread
      && (o->logical_zones > 1 || o->physical_zones > 1 || o->hash_zones > 1)) {
    vdo_log_error ("one zone thread runs one zone of each kind, not %u "
                   "logical, %u physical and %u hash zones", o->logical_zones,
                   o->physical_zones, o->hash_zones);
    return VDO_BAD_CONFIGURATION;
  }
  if (o->logical_zones == 0)
    o->logical_zones = 1;
  if (o->physical_zones == 0)
    o->physical_zones = 1;
  if (o->hash_zones == 0)
    o->hash_zones = 1;
  if (o->hash_zones > VDO_MAX_HASH_ZONES) {
    vdo_log_error ("hash-threads=%u: at most %d hash zones", o->hash_zones,
                   VDO_MAX_HASH_ZONES);
    return VDO_BAD_CONFIGURATION;
  }
  if (o->index_memory == 0)
    o->index_memory = vdo->geometry.index_config.mem;
  if (o->logical_zones > VDO_MAX_LOGICAL_ZONES) {
    vdo_log_error ("logical-threads=%u: at most %d logical zones",
                   o->logical_zones, VDO_MAX_LOGICAL_ZONES);
    return VDO_BAD_CONFIGURATION;
  }
  if (o->physical_zones > VDO_MAX_PHYSICAL_ZONES || o->physical_zones > slabs) {
    vdo_log_error ("physical-threads=%u: at most %d physical zones, and no "
                   "more than the volume's %" PRIu64 " slabs",
                   o->physical_zones, VDO_MAX_PHYSICAL_ZONES, slabs);
    return VDO_BAD_CONFIGURATION;
  }
  return VDO_SUCCESS;
}

/* The index lives in the volume's index region; a NEW volume's region
 * holds nothing of ours yet. */
static int
make_dedupe_index (struct vdo *vdo)
{
  const struct vdo_volume_region *region =
    &vdo->geometry.regions[VDO_INDEX_REGION];
  struct vdo_dedupe_index_config config = {
    .io = vdo->device.io,
    .region_start = region->start_block - vdo->device.bio_offset,
    .region_blocks = vdo_geometry_index_region_blocks (&vdo->geometry),
    .mem = vdo->options.index_memory,
    .sparse = vdo->geometry.index_config.sparse,
    .nonce = vdo->geometry.nonce,
    .create = vdo->states.state == VDO_NEW,
  };

  return vdo_make_dedupe_index (&config, &vdo->dedupe_index);
}

int
vdo_load (const char *path, const struct vdo_options *options,
          struct vdo **vdo_ret)
{
  struct vdo *vdo;
  uint32_t state;
  int r;

  *vdo_ret = NULL;
  vdo = calloc (1, sizeof *vdo);
  if (vdo == NULL)
    return ENOMEM;
  vdo->options = *options;
  pthread_mutex_init (&vdo->super_block_lock, NULL);
  pthread_mutex_init (&vdo->pool_lock, NULL);
  pthread_cond_init (&vdo->pool_available, NULL);
  pthread_mutex_init (&vdo->flush_lock, NULL);
  pthread_cond_init (&vdo->flush_progress, NULL);

  if (options->io != NULL)
    r = vdo_volume_open_io (options->io, !options->read_only, &vdo->volume);
  else
    r = vdo_volume_open (path, !options->read_only, &vdo->volume);
  if (r != VDO_SUCCESS)
    goto fail;
  path = vdo_volume_path (vdo->volume);
  vdo->geometry = *vdo_volume_get_geometry (vdo->volume);
  vdo->states = *vdo_volume_get_states (vdo->volume);
  vdo->device.io = vdo_volume_get_io (vdo->volume);
  if (options->data_cache) {
    r = vdo_io_enable_data_cache (vdo->device.io);
    if (r != 0 && r != ENOTSUP)
      goto fail;
  }
  vdo->device.bio_offset = vdo->geometry.bio_offset;
  r = check_options (vdo);
  if (r != VDO_SUCCESS)
    goto fail;

  state = vdo->states.state;
  vdo->serving_read_only = options->read_only;
  if (state == VDO_READ_ONLY_MODE) {
    vdo_log_warning ("%s is in read-only mode (an earlier error was "
                     "unrecoverable): serving it read-only; 'vdoadm "
                     "force-rebuild %s' makes it writable again", path, path);
    vdo->serving_read_only = true;
  }
  else if (vdo_state_needs_repair (state) && options->read_only)
    vdo_log_warning ("%s is in state %s and needs %s, which writes: serving "
                     "it read-only as its journal says, without repairing "
                     "it", path, vdo_state_name (state),
                     vdo_state_requires_recovery (state)
                     ? "crash recovery" : "a read-only rebuild");
  /* Last, so a refused start has written nothing; before any fork, so
   * a bad index setting stops nbdkit at once. */
  if (options->dedupe && !vdo->serving_read_only) {
    r = make_dedupe_index (vdo);
    if (r != VDO_SUCCESS)
      goto fail;
  }
  *vdo_ret = vdo;
  return VDO_SUCCESS;

 fail:
  vdo_free (vdo);
  return r;
}

/* --- Starting (after_fork) ----------------------------------------------- */

/* A batch of zone work submits its I/O together (vdo_io_plug). */
static void
plug_device (void *context)
{
  struct vdo *vdo = context;

  vdo_io_plug (vdo->device.io);
}

static void
unplug_device (void *context)
{
  (void) context;
  vdo_io_unplug ();
}

/* A new started queue NAME for zone work. */
static int
start_zone_queue (struct vdo *vdo, const char *name,
                  struct vdo_work_queue **queue)
{
  int r = vdo_make_work_queue (name, queue);

  if (r != 0)
    return r;
  vdo_set_work_queue_batch_hooks (*queue, plug_device, unplug_device, vdo);
  return vdo_start_work_queue (*queue);
}

/* A new started queue NAME, or the shared zone queue. */
static int
make_zone_queue (struct vdo *vdo, const char *name,
                 struct vdo_work_queue **queue)
{
  if (vdo->zone_queue != NULL) {
    *queue = vdo->zone_queue;
    return 0;
  }
  return start_zone_queue (vdo, name, queue);
}

static int
make_dedupe_queues (struct vdo *vdo)
{
  char name[32];
  unsigned i;
  int r;

  vdo->hash_zone_count = vdo->options.hash_zones;
  vdo->hash_zones = calloc (vdo->hash_zone_count, sizeof *vdo->hash_zones);
  vdo->hash_queues = calloc (vdo->hash_zone_count, sizeof *vdo->hash_queues);
  if (vdo->hash_zones == NULL || vdo->hash_queues == NULL)
    return ENOMEM;
  for (i = 0; i < vdo->hash_zone_count; i++) {
    snprintf (name, sizeof name, "vdo-hash%u", i);
    r = make_zone_queue (vdo, name, &vdo->hash_queues[i]);
    if (r == 0)
      r = vdo_init_hash_zone (&vdo->hash_zones[i], i, vdo->hash_queues[i]);
    if (r != 0)
      return r;
  }
  return 0;
}

/* The packer's thread and its timer. */
static int
make_packer (struct vdo *vdo)
{
  struct vdo_packer_config config = {
    .max_wait_us = vdo->options.packer_wait_us,
    .waited_on_wait_us = vdo->options.packer_waited_on_wait_us,
    .emit = vdo_data_vio_packed,
    .context = vdo,
  };
  int r;

  r = make_zone_queue (vdo, "vdo-packer", &vdo->packer_queue);
  if (r != 0)
    return r;
  config.queue = vdo->packer_queue;
  return vdo_make_packer (&config, &vdo->packer);
}

static bool
compressing (const struct vdo *vdo)
{
  return vdo->options.compression && !vdo->serving_read_only;
}

static int
make_queues (struct vdo *vdo)
{
  char name[32];
  unsigned i;
  int r;

  vdo->logical_zone_count = vdo->options.logical_zones;
  vdo->physical_zone_count = vdo->options.physical_zones;
  if (vdo->options.single_zone_thread) {
    r = start_zone_queue (vdo, "vdo-zones", &vdo->zone_queue);
    if (r != 0)
      return r;
  }
  vdo->logical_zones = calloc (vdo->logical_zone_count,
                               sizeof *vdo->logical_zones);
  vdo->logical_queues = calloc (vdo->logical_zone_count,
                                sizeof *vdo->logical_queues);
  vdo->physical_queues = calloc (vdo->physical_zone_count,
                                 sizeof *vdo->physical_queues);
  if (!vdo->logical_zones || !vdo->logical_queues || !vdo->physical_queues)
    return ENOMEM;
  for (i = 0; i < vdo->logical_zone_count; i++) {
    snprintf (name, sizeof name, "vdo-logical%u", i);
    r = make_zone_queue (vdo, name, &vdo->logical_queues[i]);
    if (r == 0)
      r = vdo_make_lbn_lock_table (&vdo->logical_zones[i].lbn_locks);
    if (r != 0)
      return r;
    vdo->logical_zones[i].zone_number = i;
    vdo->logical_zones[i].queue = vdo->logical_queues[i];
  }
  for (i = 0; i < vdo->physical_zone_count; i++) {
    snprintf (name, sizeof name, "vdo-physical%u", i);
    r = make_zone_queue (vdo, name, &vdo->physical_queues[i]);
    if (r != 0)
      return r;
  }
  if (vdo->dedupe_index != NULL) {
    r = make_dedupe_queues (vdo);
    if (r != 0)
      return r;
  }
  /* Names and LZ4 fragments are computed here.  With one zone thread,
   * a hop to another thread and back costs more than LZ4 does. */
  if (vdo->dedupe_index != NULL || compressing (vdo)) {
    r = make_zone_queue (vdo, "vdo-cpu", &vdo->cpu_queue);
    if (r != 0)
      return r;
  }
  if (vdo->dedupe_index != NULL && vdo->zone_queue != NULL)
    vdo_dedupe_index_share_queue (vdo->dedupe_index, vdo->zone_queue);
  if (compressing (vdo)) {
    r = make_packer (vdo);
    if (r != 0)
      return r;
  }
  r = make_zone_queue (vdo, "vdo-journal", &vdo->journal_queue);
  if (r != 0)
    return r;
  /* Zone callbacks never block, and nothing enqueues to a zone while
   * holding a lock its callbacks take, so idle zones may be borrowed. */
  for (i = 0; i < vdo->logical_zone_count; i++)
    vdo_allow_queue_borrowing (vdo->logical_queues[i]);
  for (i = 0; i < vdo->physical_zone_count; i++)
    vdo_allow_queue_borrowing (vdo->physical_queues[i]);
  for (i = 0; i < vdo->hash_zone_count; i++)
    vdo_allow_queue_borrowing (vdo->hash_queues[i]);
  vdo_allow_queue_borrowing (vdo->journal_queue);
  return 0;
}

static void
slab_journal_pressure (void *context, sequence_number_t oldest)
{
  struct vdo *vdo = context;

  if (vdo->depot != NULL)
    vdo_commit_oldest_slab_journal_tails (vdo->depot, oldest);
}

static void
block_map_pressure (void *context, sequence_number_t oldest)
{
  struct vdo *vdo = context;

  vdo_block_map_write_back_older_than (vdo->block_map, oldest);
}

static int
make_block_map (struct vdo *vdo)
{
  const struct vdo_component_states *s = &vdo->states;
  struct block_map_config bm = { 0 };

  bm.state = s->block_map;
  bm.logical_blocks = s->config.logical_blocks;
  bm.nonce = s->nonce;
  bm.depot = s->slab_depot;
  bm.device = &vdo->device;
  bm.logical_zone_count = vdo->logical_zone_count;
  bm.zone_queues = vdo->logical_queues;
  bm.cache_pages = vdo->options.cache_pages;
  bm.journal_locks = vdo_recovery_journal_lock_counter (vdo->journal);
  bm.read_only = vdo->read_only;
  bm.overlay = vdo->overlay;
  return vdo_make_block_map (&bm, &vdo->block_map);
}

static int
make_components (struct vdo *vdo)
{
  const struct vdo_component_states *s = &vdo->states;
  const struct vdo_partition *journal, *summary;
  struct recovery_journal_config rj = { 0 };
  struct slab_depot_config sd = { 0 };
  int r;

  journal = vdo_layout_find_partition (&s->layout, VDO_RECOVERY_JOURNAL_PARTITION);
  rj.nonce = s->nonce;
  rj.complete_recoveries = s->complete_recoveries;
  rj.state = s->recovery_journal;
  rj.origin = journal->offset;
  rj.size = s->config.recovery_journal_size;
  rj.device = &vdo->device;
  rj.queue = vdo->journal_queue;
  rj.read_only = vdo->read_only;
  rj.hooks.slab_journal_pressure = slab_journal_pressure;
  rj.hooks.block_map_pressure = block_map_pressure;
  rj.hooks.context = vdo;
  r = vdo_make_recovery_journal (&rj, &vdo->journal);
  if (r != VDO_SUCCESS)
    return r;

  r = make_block_map (vdo);
  if (r != VDO_SUCCESS || vdo->serving_read_only)
    return r;

  summary = vdo_layout_find_partition (&s->layout, VDO_SLAB_SUMMARY_PARTITION);
  sd.state = s->slab_depot;
  sd.nonce = s->nonce;
  sd.summary_origin = summary->offset;
  sd.summary_blocks = summary->count;
  sd.device = &vdo->device;
  sd.zone_count = vdo->physical_zone_count;
  sd.zone_queues = vdo->physical_queues;
  sd.journal_locks = vdo_recovery_journal_lock_counter (vdo->journal);
  sd.read_only = vdo->read_only;
  return vdo_make_slab_depot (&sd, &vdo->depot);
}

static int
make_data_vio_pool (struct vdo *vdo)
{
  unsigned i;

  vdo->all_data_vios = calloc (DATA_VIO_POOL_SIZE, sizeof (struct data_vio));
  if (vdo->all_data_vios == NULL)
    return ENOMEM;
  for (i = 0; i < DATA_VIO_POOL_SIZE; i++) {
    struct data_vio *dv = &vdo->all_data_vios[i];
    int r = vdo_init_data_vio (dv, vdo);

    if (r != 0)
      return r;
    vdo->data_vio_count++;
    dv->next = vdo->free_data_vios;
    vdo->free_data_vios = dv;
    vdo->free_data_vio_count++;
  }
  return 0;
}

/* Record what the running components say into vdo->states. */
static void
record_states (struct vdo *vdo)
{
  vdo_record_recovery_journal (vdo->journal, &vdo->states.recovery_journal);
  if (vdo->depot != NULL)
    vdo_record_slab_depot (vdo->depot, &vdo->states.slab_depot);
}

static int
load_depot (struct vdo *vdo)
{
  struct vdo_sync_completion sync;

  vdo_init_sync_completion (&sync, vdo->physical_queues[0], vdo);
  vdo_load_slab_depot (vdo->depot,
                       vdo->states.state == VDO_NEW ? VDO_DEPOT_LOAD_NEW
                                                    : VDO_DEPOT_LOAD_CLEAN,
                       &sync.completion);
  return vdo_wait_sync_completion (&sync);
}

/* Repair (vdo-journals.md 7.3, 7.4) up to its commit point.  The block
 * map it used is replaced by a fresh one, so that no page it cached in
 * logical zone 0 on behalf of another zone outlives it. */
static int
repair (struct vdo *vdo)
{
  int r = vdo_repair (vdo);

  if (r != VDO_SUCCESS)
    return r;
  vdo_free_block_map (vdo->block_map);
  vdo->block_map = NULL;
  return make_block_map (vdo);
}

/* A volume served read-only may have acknowledged writes only its
 * journal holds (read-only mode entered before the block map was
 * written, or a crash): read them, to lay them over the pages loaded. */
static bool
journal_may_hold_writes (const struct vdo *vdo)
{
  uint32_t state = vdo->states.state;

  return vdo->serving_read_only
         && (state == VDO_READ_ONLY_MODE || vdo_state_needs_repair (state));
}

int
vdo_start (struct vdo *vdo)
{
  bool repairing = !vdo->serving_read_only
                   && vdo_state_needs_repair (vdo->states.state);
  bool recovering = repairing
                    && vdo_state_requires_recovery (vdo->states.state);
  int r;

  r = vdo_io_start (vdo->device.io, IO_QUEUE_DEPTH);
  vdo->started_io = r == 0;
  if (r == 0)
    r = make_queues (vdo);
  if (r == 0)
    r = vdo_make_read_only_notifier (vdo->serving_read_only,
                                     vdo->serving_read_only
                                     ? NULL : persist_read_only_mode,
                                     vdo, &vdo->read_only);
  if (r == 0 && journal_may_hold_writes (vdo))
    r = vdo_read_journal_overlay (vdo, &vdo->overlay);
  if (r == 0)
    r = make_components (vdo);
  if (r == 0)
    r = make_data_vio_pool (vdo);
  if (r != 0)
    return r;

  if (!vdo->serving_read_only) {
    r = repairing ? repair (vdo) : load_depot (vdo);
    if (r != VDO_SUCCESS) {
      if (!repairing)
        vdo_log_error ("loading the slab depot of %s failed",
                       vdo_volume_path (vdo->volume));
      return r;
    }
    /* A repair's errors may have put the volume in read-only mode. */
    if (vdo_is_read_only (vdo->read_only))
      return VDO_READ_ONLY;
    /* From here until a clean save the volume is DIRTY: a crash leaves
     * the journal to replay.  After a repair this is its commit point
     * (7.3 R11): the new recovery count makes the old journal stale. */
    record_states (vdo);
    r = save_super_block (vdo, VDO_DIRTY);
    if (r != 0)
      return r;
    if (recovering) {
      r = vdo_scrub_after_recovery (vdo);
      if (r != VDO_SUCCESS)
        return r;
    }
  }
  if (vdo->options.inject_ops != 0) {
    unsigned ops = vdo->options.inject_ops, mask = 0;

    mask |= (ops & VDO_INJECT_READ) ? VDO_IO_OP_BIT (VDO_IO_READ) : 0;
    mask |= (ops & VDO_INJECT_WRITE) ? VDO_IO_OP_BIT (VDO_IO_WRITE) : 0;
    mask |= (ops & VDO_INJECT_FLUSH) ? VDO_IO_OP_BIT (VDO_IO_FLUSH) : 0;
    vdo_io_inject_errors (vdo->device.io, mask, vdo->options.inject_after,
                          vdo->options.inject_count, EIO);
  }
  if (vdo->dedupe_index != NULL) {
    r = vdo_start_dedupe_index (vdo->dedupe_index);
    if (r != 0)
      return r;
  }
  vdo->started = true;
  vdo_log_info ("%s: serving %" PRIu64 " logical blocks%s",
                vdo_volume_path (vdo->volume),
                vdo->states.config.logical_blocks,
                vdo->serving_read_only ? " read-only" : "");
  return VDO_SUCCESS;
}

static uint64_t
load_counter (atomic_uint_fast64_t *counter)
{
  return atomic_load_explicit (counter, memory_order_relaxed);
}

void
vdo_get_statistics (struct vdo *vdo, struct vdo_statistics *stats)
{
  struct vdo_slab_depot_statistics depot;
  struct vdo_dedupe_counters *c = &vdo->dedupe_counters;

  memset (stats, 0, sizeof *stats);
  if (vdo->depot != NULL) {
    vdo_get_slab_depot_statistics (vdo->depot, &depot);
    stats->data_blocks = depot.data_blocks;
    stats->allocated_blocks = depot.allocated_blocks;
    stats->free_blocks = depot.free_blocks;
  }
  stats->dedupe_enabled = vdo->dedupe_index != NULL;
  if (vdo->packer != NULL) {
    struct vdo_packer_statistics packer;

    vdo_get_packer_statistics (vdo->packer, &packer);
    stats->compression_enabled = true;
    stats->compressed_fragments_written = packer.compressed_fragments_written;
    stats->compressed_blocks_written = packer.compressed_blocks_written;
    stats->compressed_fragments_in_packer =
      packer.compressed_fragments_in_packer;
  }
  stats->dedupe_advice_valid = load_counter (&c->advice_valid);
  stats->dedupe_advice_stale = load_counter (&c->advice_stale);
  stats->dedupe_advice_timeouts = load_counter (&c->advice_timeouts);
  stats->concurrent_data_matches = load_counter (&c->concurrent_matches);
  stats->concurrent_hash_collisions = load_counter (&c->hash_collisions);
  stats->dedupe_rollovers = load_counter (&c->rollovers);
  if (vdo->dedupe_index != NULL) {
    struct vdo_dedupe_index_stats index;

    vdo_get_dedupe_index_stats (vdo->dedupe_index, &index);
    stats->index_entries = index.entries_indexed;
    stats->index_memory_bytes = index.memory_bytes;
    stats->index_records_per_volume = index.records_per_volume;
    stats->index_posts_found = index.posts_found;
    stats->index_posts_not_found = index.posts_not_found;
    stats->index_queries_found = index.queries_found;
    stats->index_queries_not_found = index.queries_not_found;
    stats->index_updates_found = index.updates_found;
    stats->index_updates_not_found = index.updates_not_found;
    stats->index_chapters_written = index.chapters_written;
    stats->index_rebuilding = index.rebuilding;
  }
}

/* --- Saving and stopping ------------------------------------------------- */

static void
log_dedupe_statistics (struct vdo *vdo)
{
  struct vdo_statistics s;

  vdo_get_statistics (vdo, &s);
  vdo_log_info ("%s: dedupe advice valid %" PRIu64 ", stale %" PRIu64
                ", timed out %" PRIu64 "; concurrent data matches %" PRIu64
                ", hash collisions %" PRIu64 ", full blocks %" PRIu64
                "; index entries %" PRIu64 " of %" PRIu64,
                vdo_volume_path (vdo->volume), s.dedupe_advice_valid,
                s.dedupe_advice_stale, s.dedupe_advice_timeouts,
                s.concurrent_data_matches, s.concurrent_hash_collisions,
                s.dedupe_rollovers, s.index_entries,
                s.index_records_per_volume);
}

static void
log_compression_statistics (struct vdo *vdo)
{
  struct vdo_statistics s;

  vdo_get_statistics (vdo, &s);
  vdo_log_info ("%s: compressed fragments written %" PRIu64 " in %" PRIu64
                " blocks; fragments in the packer %" PRIu64,
                vdo_volume_path (vdo->volume), s.compressed_fragments_written,
                s.compressed_blocks_written,
                s.compressed_fragments_in_packer);
}

static int
wait_drain (struct vdo *vdo, struct vdo_work_queue *queue,
            void (*drain) (struct vdo *vdo, struct vdo_completion *parent))
{
  struct vdo_sync_completion sync;

  vdo_init_sync_completion (&sync, queue, vdo);
  drain (vdo, &sync.completion);
  return vdo_wait_sync_completion (&sync);
}

static void
start_journal_drain (struct vdo_completion *completion)
{
  struct vdo *vdo = completion->parent;

  completion->callback = vdo_signal_sync_completion;
  vdo_drain_recovery_journal (vdo->journal, completion);
}

static void
drain_block_map (struct vdo *vdo, struct vdo_completion *parent)
{
  vdo_drain_block_map (vdo->block_map, parent);
}

static void
drain_depot (struct vdo *vdo, struct vdo_completion *parent)
{
  vdo_drain_slab_depot (vdo->depot, parent);
}

/* Clean save, in dm-vdo's order (vdo-journals.md 8.4): the block map,
 * the journal, the slab depot, then the super block, CLEAN. */
static int
save_clean (struct vdo *vdo)
{
  struct vdo_sync_completion sync;
  int r;

  r = wait_drain (vdo, vdo->logical_queues[0], drain_block_map);
  if (r == VDO_SUCCESS) {
    vdo_init_sync_completion (&sync, vdo->journal_queue, vdo);
    vdo_launch_completion (&sync.completion, start_journal_drain,
                           vdo->journal_queue);
    r = vdo_wait_sync_completion (&sync);
  }
  if (r == VDO_SUCCESS)
    r = wait_drain (vdo, vdo->physical_queues[0], drain_depot);
  if (r != VDO_SUCCESS)
    return r;
  record_states (vdo);
  return save_super_block (vdo, VDO_CLEAN);
}

int
vdo_stop (struct vdo *vdo)
{
  int r = VDO_SUCCESS;

  if (!vdo->started)
    return VDO_SUCCESS;
  vdo_wait_for_acknowledged_writes (vdo);
  if (vdo->dedupe_index != NULL)
    log_dedupe_statistics (vdo);
  if (vdo->packer != NULL)
    log_compression_statistics (vdo);
  if (vdo->dedupe_index != NULL
      && vdo_save_dedupe_index (vdo->dedupe_index) != VDO_SUCCESS)
    vdo_log_warning ("%s: the dedupe index was not saved; it will be "
                     "rebuilt at the next start",
                     vdo_volume_path (vdo->volume));
  if (!vdo_is_serving_read_only (vdo)) {
    r = save_clean (vdo);
    if (r != VDO_SUCCESS)
      vdo_log_error ("saving %s failed: %s; it will be recovered at the "
                     "next start", vdo_volume_path (vdo->volume),
                     vdo_status_to_string (r));
    else
      vdo_log_info ("%s: saved cleanly", vdo_volume_path (vdo->volume));
  }
  vdo->started = false;
  return r;
}

void
vdo_free (struct vdo *vdo)
{
  unsigned i;

  if (vdo == NULL)
    return;
  /* Nothing may free what acknowledged writes still use. */
  if (vdo->started_io)
    vdo_wait_for_acknowledged_writes (vdo);
  /* I/O in flight finishes onto the queues, so drain it while they run;
   * then stop the queues (running what is left, which may issue a last
   * I/O), and drain again: nothing may run while the components go. */
  if (vdo->device.io && vdo->started_io)
    vdo_io_drain (vdo->device.io);
  /* The index answers onto the hash zones, which enqueue onto the
   * other zones: stop them in that order. */
  vdo_free_dedupe_index (vdo->dedupe_index);
  vdo->dedupe_index = NULL;
  if (vdo->zone_queue != NULL) {
    /* The packer's timer enqueues onto the zones. */
    vdo_stop_packer_timer (vdo->packer);
    vdo_free_work_queue (vdo->zone_queue);
    vdo_free_packer (vdo->packer);
    vdo->packer = NULL;
  }
  else {
    for (i = 0; vdo->hash_queues && i < vdo->hash_zone_count; i++)
      vdo_free_work_queue (vdo->hash_queues[i]);
    vdo_free_work_queue (vdo->cpu_queue);
    /* The timer queues work on the packer's queue; the queue's work
     * uses the packer. */
    vdo_stop_packer_timer (vdo->packer);
    vdo_free_work_queue (vdo->packer_queue);
    vdo_free_packer (vdo->packer);
    vdo->packer = NULL;
    for (i = 0; vdo->logical_queues && i < vdo->logical_zone_count; i++)
      vdo_free_work_queue (vdo->logical_queues[i]);
    for (i = 0; vdo->physical_queues && i < vdo->physical_zone_count; i++)
      vdo_free_work_queue (vdo->physical_queues[i]);
    vdo_free_work_queue (vdo->journal_queue);
  }
  if (vdo->device.io && vdo->started_io)
    vdo_io_drain (vdo->device.io);
  vdo_free_slab_depot (vdo->depot);
  vdo_free_block_map (vdo->block_map);
  vdo_free_page_mappings (vdo->overlay);
  vdo_free_recovery_journal (vdo->journal);
  vdo_free_read_only_notifier (vdo->read_only);
  for (i = 0; vdo->logical_zones && i < vdo->logical_zone_count; i++)
    vdo_free_lbn_lock_table (vdo->logical_zones[i].lbn_locks);
  for (i = 0; i < vdo->data_vio_count; i++)
    vdo_uninit_data_vio (&vdo->all_data_vios[i]);
  free (vdo->all_data_vios);
  for (i = 0; vdo->hash_zones && i < vdo->hash_zone_count; i++)
    vdo_uninit_hash_zone (&vdo->hash_zones[i]);
  free (vdo->hash_zones);
  free (vdo->hash_queues);
  free (vdo->logical_zones);
  free (vdo->logical_queues);
  free (vdo->physical_queues);
  vdo_volume_close (vdo->volume);
  pthread_cond_destroy (&vdo->pool_available);
  pthread_mutex_destroy (&vdo->pool_lock);
  pthread_cond_destroy (&vdo->flush_progress);
  pthread_mutex_destroy (&vdo->flush_lock);
  pthread_mutex_destroy (&vdo->super_block_lock);
  free (vdo);
}
