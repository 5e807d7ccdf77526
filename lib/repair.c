/* nbdkit-vdo: crash recovery and read-only rebuild.
 *
 * The steps follow dm-vdo's repair.c, numbered as in vdo-journals.md:
 * R1-R2 / B1-B2 read the journal (read_journal), R3-R5 / B3 parse it
 * (journal-parser.c), R6 / B4 apply the block map changes page by page
 * (apply_block_map_changes), R7 / B5 drain the block map, R8-R9 replay
 * into the slab journals (replay_into_slab_journals) or B6-B9 recount
 * every reference (rebuild.c), and R10 / B10 restart the journal
 * (finish_repair).  The caller then commits with the DIRTY save (R11 /
 * B11) and, after a recovery, scrubs (R12).
 *
 * Everything here runs on the thread that starts the volume, which waits
 * on each step; the steps themselves run on the zone queues.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "io.h"
#include "journal-parser.h"
#include "logger.h"
#include "page-mappings.h"
#include "page-sweep.h"
#include "rebuild.h"
#include "repair.h"
#include "status.h"
#include "vdo-internal.h"

/* Journal blocks read at once. */
#define JOURNAL_READ_CHUNK 256
/* Block map pages pinned at once while changes are applied, at most. */
#define APPLY_WINDOW 256

bool
vdo_state_needs_repair (unsigned int state)
{
  return vdo_state_requires_recovery (state)
         || vdo_state_requires_read_only_rebuild (state);
}

static double
now_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *
volume_path (const struct vdo *vdo)
{
  return vdo_volume_path (vdo->volume);
}

static void
make_parser_config (const struct vdo *vdo,
                    struct vdo_journal_parser_config *config)
{
  const struct vdo_component_states *states = &vdo->states;

  config->nonce = states->nonce;
  config->recovery_count =
    vdo_recovery_journal_recovery_count (states->complete_recoveries);
  config->journal_size = states->config.recovery_journal_size;
  config->journal_start = states->recovery_journal.journal_start;
  config->physical_blocks = states->config.physical_blocks;
  config->depot = &states->slab_depot;
}

/* --- R1-R2: reading the journal ---------------------------------------- */

/* The journal partition in memory, by block index.  Only the blocks the
 * parse needs are read into it; the rest of the mapping is never
 * touched, so it costs no memory. */
struct journal_image {
  uint8_t *buffer;
  size_t bytes;
  block_count_t blocks_read;
};

static void
release_journal_image (struct journal_image *image)
{
  if (image->buffer != NULL)
    munmap (image->buffer, image->bytes);
  image->buffer = NULL;
}

static physical_block_number_t
journal_origin (const struct vdo *vdo)
{
  return vdo_layout_find_partition (&vdo->states.layout,
                                    VDO_RECOVERY_JOURNAL_PARTITION)->offset;
}

static int
read_journal_blocks (struct vdo *vdo, block_count_t index,
                     block_count_t count, uint8_t *buffer)
{
  physical_block_number_t pbn = journal_origin (vdo) + index;

  return vdo_io_read_blocks (vdo->device.io, pbn - vdo->device.bio_offset,
                             count, buffer);
}

/* Pass 1: every block's header, in physical order. */
static int
scan_journal (struct vdo *vdo, const struct vdo_journal_parser_config *config,
              struct vdo_journal_bounds *bounds, struct journal_image *image)
{
  uint8_t *chunk = vdo_io_alloc_buffer (JOURNAL_READ_CHUNK * VDO_BLOCK_SIZE);
  block_count_t index = 0;
  int result = VDO_SUCCESS;

  if (chunk == NULL)
    return ENOMEM;
  vdo_start_journal_scan (config, bounds);
  while (index < config->journal_size && result == VDO_SUCCESS) {
    block_count_t count = config->journal_size - index, i;

    if (count > JOURNAL_READ_CHUNK)
      count = JOURNAL_READ_CHUNK;
    result = read_journal_blocks (vdo, index, count, chunk);
    for (i = 0; i < count && result == VDO_SUCCESS; i++)
      vdo_scan_journal_block (config, bounds, index + i,
                              chunk + i * VDO_BLOCK_SIZE);
    image->blocks_read += count;
    index += count;
  }
  vdo_io_free_buffer (chunk);
  return result;
}

/* Pass 2: the blocks first..last, each at its index. */
static int
load_journal_range (struct vdo *vdo,
                    const struct vdo_journal_parser_config *config,
                    sequence_number_t first, sequence_number_t last,
                    struct journal_image *image)
{
  block_count_t size = config->journal_size;
  block_count_t remaining = last - first + 1;
  block_count_t index = vdo_recovery_journal_block_index (first, size);

  image->bytes = size * VDO_BLOCK_SIZE;
  image->buffer = mmap (NULL, image->bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (image->buffer == MAP_FAILED) {
    image->buffer = NULL;
    vdo_log_error ("cannot map %" PRIu64 " blocks for the recovery journal",
                   size);
    return ENOMEM;
  }
  if (remaining > size)
    remaining = size;
  while (remaining > 0) {
    block_count_t count = size - index;
    int result;

    if (count > remaining)
      count = remaining;
    if (count > JOURNAL_READ_CHUNK)
      count = JOURNAL_READ_CHUNK;
    result = read_journal_blocks (vdo, index, count,
                                  image->buffer + index * VDO_BLOCK_SIZE);
    if (result != VDO_SUCCESS)
      return result;
    image->blocks_read += count;
    remaining -= count;
    index = (index + count) % size;
  }
  return VDO_SUCCESS;
}

static int
read_journal (struct vdo *vdo, const struct vdo_journal_parser_config *config,
              bool rebuild, struct vdo_journal_bounds *bounds,
              struct journal_image *image)
{
  sequence_number_t first, last;
  double started = now_seconds ();
  int result;

  memset (image, 0, sizeof *image);
  result = scan_journal (vdo, config, bounds, image);
  if (result == VDO_SUCCESS
      && vdo_journal_parse_range (config, bounds, rebuild, &first, &last))
    result = load_journal_range (vdo, config, first, last, image);
  if (result != VDO_SUCCESS) {
    release_journal_image (image);
    vdo_log_error ("cannot read the recovery journal of %s",
                   volume_path (vdo));
    return result;
  }
  if (bounds->found)
    vdo_log_info ("%s: read %" PRIu64 " recovery journal blocks in %.3f s:"
                  " the highest is block %" PRIu64 " (journal start %"
                  PRIu64 "), block map head %" PRIu64 ", slab journal head %"
                  PRIu64, volume_path (vdo), image->blocks_read,
                  now_seconds () - started, bounds->highest_tail,
                  config->journal_start, bounds->block_map_head,
                  bounds->slab_journal_head);
  else
    vdo_log_info ("%s: read %" PRIu64 " recovery journal blocks in %.3f s:"
                  " none is newer than the journal start %" PRIu64,
                  volume_path (vdo), image->blocks_read,
                  now_seconds () - started, config->journal_start);
  return VDO_SUCCESS;
}

/* R1-R5 or B1-B3, logged. */
static int
load_and_parse_journal (struct vdo *vdo,
                        const struct vdo_journal_parser_config *config,
                        bool rebuild, struct journal_image *image,
                        struct vdo_journal_parse *parse)
{
  struct vdo_journal_bounds bounds;
  int result = read_journal (vdo, config, rebuild, &bounds, image);

  memset (parse, 0, sizeof *parse);
  if (result != VDO_SUCCESS)
    return result;
  if (rebuild)
    result = vdo_parse_journal_for_rebuild (config, &bounds, image->buffer,
                                            parse);
  else
    result = vdo_parse_journal_for_recovery (config, &bounds, image->buffer,
                                             parse);
  if (result != VDO_SUCCESS || !bounds.found)
    return result;
  if (rebuild)
    vdo_log_info ("%s: %" PRIu64 " valid journal entries from block %"
                  PRIu64 " to %" PRIu64 ", %" PRIu64 " invalid ones dropped",
                  volume_path (vdo), parse->entry_count, parse->head,
                  parse->tail, parse->dropped_entries);
  else
    vdo_log_info ("%s: the journal is usable from block %" PRIu64 " to %"
                  PRIu64 ": %" PRIu64 " entries", volume_path (vdo),
                  parse->head, parse->tail, parse->entry_count);
  return VDO_SUCCESS;
}

/* --- R6-R7 / B4-B5: the block map -------------------------------------- */

struct change_sweep {
  const struct vdo_page_mappings *changes;
};

static physical_block_number_t
changed_page_pbn (void *context, size_t index)
{
  struct change_sweep *sweep = context;

  return vdo_page_mappings_pbn (sweep->changes, index);
}

/* Store the page's final values; no journal lock: the drain that follows
 * writes them, and the old journal stays valid until the commit. */
static int
apply_page_changes (void *context, struct vdo_page_cache *cache,
                    struct vdo_cache_page *page, size_t index)
{
  struct change_sweep *sweep = context;
  const struct vdo_journal_mapping *slots;
  size_t count, i;

  slots = vdo_page_mappings_slots (sweep->changes, index, &count);
  for (i = 0; i < count; i++) {
    struct vdo_data_location location = {
      .pbn = slots[i].pbn,
      .state = slots[i].state,
    };

    vdo_set_cache_page_entry (cache, page, slots[i].slot, location, 0);
  }
  return VDO_SUCCESS;
}

static int
drain_block_map (struct vdo *vdo)
{
  struct vdo_sync_completion sync;

  vdo_init_sync_completion (&sync, vdo->logical_queues[0], vdo);
  vdo_drain_block_map (vdo->block_map, &sync.completion);
  return vdo_wait_sync_completion (&sync);
}

/* R6 (B4), then R7 (B5).  Every page goes through logical zone 0's cache,
 * roots and interior pages too, since they are changed by PBN. */
static int
apply_block_map_changes (struct vdo *vdo, struct vdo_journal_parse *parse,
                         bool rebuild)
{
  struct vdo_page_cache *cache = vdo_block_map_zone_cache (vdo->block_map,
                                                           0);
  struct change_sweep changes;
  struct vdo_page_sweep_config sweep = {
    .cache = cache,
    .queue = vdo->logical_queues[0],
    .window = vdo_sweep_window (cache, APPLY_WINDOW),
    .empty_on_read_error = rebuild,
    .pbn_of = changed_page_pbn,
    .visit = apply_page_changes,
    .context = &changes,
  };
  struct vdo_page_mappings *set;
  size_t mapping_count = parse->mapping_count;
  double started = now_seconds ();
  int result;

  result = vdo_make_page_mappings (parse->mappings, mapping_count, &set);
  parse->mappings = NULL;
  parse->mapping_count = 0;
  if (result != VDO_SUCCESS)
    return result;
  changes.changes = set;
  sweep.page_count = vdo_page_mappings_page_count (set);
  vdo_log_info ("%s: replaying %zu journal entries into the block map: %zu"
                " slots of %zu pages", volume_path (vdo), mapping_count,
                vdo_page_mappings_slot_count (set), sweep.page_count);
  result = vdo_sweep_pages (&sweep);
  vdo_free_page_mappings (set);
  if (result == VDO_SUCCESS)
    result = drain_block_map (vdo);
  if (result == VDO_SUCCESS)
    vdo_log_info ("%s: block map pages replayed and written in %.3f s",
                  volume_path (vdo), now_seconds () - started);
  return result;
}

/* --- R8-R9: the slab journals ----------------------------------------- */

typedef void (*depot_action) (struct slab_depot *depot,
                              struct vdo_completion *parent);

static int
run_depot_action (struct vdo *vdo, depot_action action)
{
  struct vdo_sync_completion sync;

  vdo_init_sync_completion (&sync, vdo->physical_queues[0], vdo);
  action (vdo->depot, &sync.completion);
  return vdo_wait_sync_completion (&sync);
}

static int
load_depot (struct vdo *vdo, enum vdo_depot_load_type type)
{
  struct vdo_sync_completion sync;

  vdo_init_sync_completion (&sync, vdo->physical_queues[0], vdo);
  vdo_load_slab_depot (vdo->depot, type, &sync.completion);
  return vdo_wait_sync_completion (&sync);
}

struct slab_replay {
  const struct vdo_journal_parser_config *config;
  const struct vdo_journal_parse *parse;
  const uint8_t *buffer;
  struct slab_depot *depot;
  atomic_uint pending;
  atomic_int result;
  atomic_uint_fast64_t entries;
  struct vdo_sync_completion done;
};

struct zone_replay {
  struct vdo_completion completion;
  struct slab_replay *replay;
  unsigned int zone;
  uint64_t entries;
};

/* One half of an entry, if it names a block of this zone. */
static int
replay_half (struct zone_replay *zone, physical_block_number_t pbn,
             enum vdo_reference_operation operation,
             const struct journal_point *point)
{
  struct slab_depot *depot = zone->replay->depot;
  int result;

  if (pbn == VDO_ZERO_BLOCK
      || vdo_physical_zone_of_pbn (depot, pbn) != zone->zone)
    return VDO_SUCCESS;
  result = vdo_replay_into_slab_depot (depot, pbn, operation, point);
  if (result == VDO_SUCCESS)
    zone->entries++;
  return result;
}

/* R9 for one physical zone, on its thread: each entry from the slab
 * journal head, increment half first (as numbered when journaled); the
 * slab journals skip what they already hold. */
static void
replay_zone (struct vdo_completion *completion)
{
  struct zone_replay *zone = completion->parent;
  struct slab_replay *replay = zone->replay;
  struct journal_point point = {
    .sequence_number = replay->parse->bounds.slab_journal_head,
    .entry_count = 0,
  }, at;
  struct recovery_journal_entry entry;
  int result = VDO_SUCCESS, expected = VDO_SUCCESS;

  while (result == VDO_SUCCESS
         && vdo_next_journal_entry (replay->config, replay->parse,
                                    replay->buffer, &point, &entry, &at)) {
    if (entry.operation == VDO_JOURNAL_BLOCK_MAP_REMAPPING) {
      result = replay_half (zone, entry.mapping.pbn, VDO_BLOCK_MAP_INCREMENT,
                            &at);
      continue;
    }
    result = replay_half (zone, entry.mapping.pbn, VDO_DATA_INCREMENT, &at);
    if (result == VDO_SUCCESS)
      result = replay_half (zone, entry.unmapping.pbn, VDO_DATA_DECREMENT,
                            &at);
  }
  atomic_fetch_add (&replay->entries, zone->entries);
  if (result != VDO_SUCCESS)
    atomic_compare_exchange_strong (&replay->result, &expected, result);
  if (atomic_fetch_sub (&replay->pending, 1) == 1)
    vdo_finish_completion (&replay->done.completion,
                           atomic_load (&replay->result));
}

static int
replay_into_slab_journals (struct vdo *vdo,
                           const struct vdo_journal_parser_config *config,
                           const struct vdo_journal_parse *parse,
                           const uint8_t *buffer)
{
  unsigned int zone_count = vdo_slab_depot_zone_count (vdo->depot), z;
  struct slab_replay replay = {
    .config = config,
    .parse = parse,
    .buffer = buffer,
    .depot = vdo->depot,
  };
  struct zone_replay *zones;
  int result;

  if (parse->entry_count == 0)
    return VDO_SUCCESS;
  zones = calloc (zone_count, sizeof *zones);
  if (zones == NULL)
    return ENOMEM;
  atomic_init (&replay.pending, zone_count);
  atomic_init (&replay.result, VDO_SUCCESS);
  atomic_init (&replay.entries, 0);
  vdo_init_sync_completion (&replay.done, vdo->physical_queues[0], &replay);
  for (z = 0; z < zone_count; z++) {
    zones[z].replay = &replay;
    zones[z].zone = z;
    vdo_prepare_completion (&zones[z].completion, replay_zone,
                            vdo_physical_zone_queue (vdo->depot, z),
                            &zones[z]);
  }
  for (z = 0; z < zone_count; z++)
    vdo_enqueue_completion (&zones[z].completion);
  result = vdo_wait_sync_completion (&replay.done);
  free (zones);
  if (result == VDO_SUCCESS)
    vdo_log_info ("%s: replayed %" PRIu64 " journal entries into slab "
                  "journals", volume_path (vdo),
                  (uint64_t) atomic_load (&replay.entries));
  return result;
}

/* R8-R9, with the drain that commits the replayed slab journal blocks
 * (their summary entries dirty, for R12). */
static int
recover_slab_journals (struct vdo *vdo,
                       const struct vdo_journal_parser_config *config,
                       const struct vdo_journal_parse *parse,
                       const uint8_t *buffer)
{
  int result = load_depot (vdo, VDO_DEPOT_LOAD_FOR_RECOVERY);

  if (result == VDO_SUCCESS)
    result = replay_into_slab_journals (vdo, config, parse, buffer);
  if (result == VDO_SUCCESS)
    result = run_depot_action (vdo, vdo_drain_slab_depot_for_recovery);
  return result;
}

/* B6-B9. */
static int
rebuild_reference_counts (struct vdo *vdo, struct vdo_rebuilt_counts *counts)
{
  int result = load_depot (vdo, VDO_DEPOT_LOAD_FOR_REBUILD);

  if (result == VDO_SUCCESS)
    result = vdo_rebuild_reference_counts (vdo, counts);
  if (result == VDO_SUCCESS) {
    vdo_log_info ("%s: rebuilt reference counts: %" PRIu64 " logical blocks"
                  " used, %" PRIu64 " block map tree pages, %" PRIu64
                  " leaf pages; %" PRIu64 " unusable entries removed",
                  volume_path (vdo), counts->logical_blocks_used,
                  counts->block_map_data_blocks, counts->leaf_pages,
                  counts->entries_removed);
    result = drain_block_map (vdo);
  }
  if (result == VDO_SUCCESS)
    result = run_depot_action (vdo, vdo_drain_slab_depot_for_rebuild);
  return result;
}

/* --- R10 / B10 --------------------------------------------------------- */

/* The states the DIRTY save will record, and the journal to match: a new
 * recovery count, so every block written before reads as stale, and a
 * start past the highest block, so no sequence number is used twice. */
static int
finish_repair (struct vdo *vdo, const struct vdo_journal_parse *parse,
               bool counters_known, block_count_t logical_blocks_used,
               block_count_t block_map_data_blocks)
{
  struct vdo_component_states next = vdo->states;
  struct recovery_journal_state_7_0 *journal = &next.recovery_journal;
  int result;

  if (vdo->states.state != VDO_REBUILD_FOR_UPGRADE)
    next.complete_recoveries++;
  if (vdo->states.state == VDO_FORCE_REBUILD)
    next.read_only_recoveries++;
  journal->journal_start = parse->bounds.highest_tail + 1;
  if (counters_known) {
    journal->logical_blocks_used = logical_blocks_used;
    journal->block_map_data_blocks = block_map_data_blocks;
  }
  result = vdo_restart_recovery_journal (vdo->journal,
                                         next.complete_recoveries, journal);
  if (result != VDO_SUCCESS)
    return result;
  /* Whoever saves the super block next (the commit, or read-only mode)
   * records these. */
  pthread_mutex_lock (&vdo->super_block_lock);
  vdo->states = next;
  pthread_mutex_unlock (&vdo->super_block_lock);
  return VDO_SUCCESS;
}

/* --- The whole ---------------------------------------------------------- */

static void
log_repair_start (const struct vdo *vdo)
{
  switch (vdo->states.state) {
  case VDO_FORCE_REBUILD:
    vdo_log_warning ("%s: read-only rebuild: rebuilding the reference counts"
                     " to leave read-only mode", volume_path (vdo));
    break;
  case VDO_REBUILD_FOR_UPGRADE:
    vdo_log_warning ("%s: rebuilding the reference counts for an upgrade",
                     volume_path (vdo));
    break;
  default:
    vdo_log_warning ("%s was not shut down cleanly (state %s): recovering it"
                     " from its journal", volume_path (vdo),
                     vdo_state_name (vdo->states.state));
    break;
  }
}

static int
recover (struct vdo *vdo, const struct vdo_journal_parser_config *config)
{
  struct journal_image image;
  struct vdo_journal_parse parse;
  int result;

  result = load_and_parse_journal (vdo, config, false, &image, &parse);
  if (result == VDO_SUCCESS)
    result = apply_block_map_changes (vdo, &parse, false);
  if (result == VDO_SUCCESS)
    result = recover_slab_journals (vdo, config, &parse, image.buffer);
  release_journal_image (&image);
  if (result == VDO_SUCCESS)
    result = finish_repair (vdo, &parse, parse.have_counters,
                            parse.logical_blocks_used,
                            parse.block_map_data_blocks);
  vdo_free_journal_parse (&parse);
  return result;
}

static int
rebuild (struct vdo *vdo, const struct vdo_journal_parser_config *config)
{
  struct journal_image image;
  struct vdo_journal_parse parse;
  struct vdo_rebuilt_counts counts;
  int result;

  result = load_and_parse_journal (vdo, config, true, &image, &parse);
  release_journal_image (&image);
  if (result == VDO_SUCCESS)
    result = apply_block_map_changes (vdo, &parse, true);
  if (result == VDO_SUCCESS)
    result = rebuild_reference_counts (vdo, &counts);
  if (result == VDO_SUCCESS)
    result = finish_repair (vdo, &parse, true, counts.logical_blocks_used,
                            counts.block_map_data_blocks);
  vdo_free_journal_parse (&parse);
  return result;
}

int
vdo_repair (struct vdo *vdo)
{
  bool rebuilding = vdo_state_requires_read_only_rebuild (vdo->states.state);
  struct vdo_journal_parser_config config;
  double started = now_seconds ();
  int result;

  log_repair_start (vdo);
  make_parser_config (vdo, &config);
  result = rebuilding ? rebuild (vdo, &config) : recover (vdo, &config);
  if (result == VDO_UNSUPPORTED_VERSION) {
    vdo_log_error ("%s cannot be recovered: its recovery journal is in the "
                   "old format 1, which only a read-only rebuild reads: run "
                   "'vdoadm read-only %s', then 'vdoadm force-rebuild %s', "
                   "and start it again", volume_path (vdo),
                   volume_path (vdo), volume_path (vdo));
    return result;
  }
  if (result != VDO_SUCCESS) {
    vdo_log_error ("%s of %s failed: %s", rebuilding ? "read-only rebuild"
                   : "recovery", volume_path (vdo),
                   vdo_status_to_string (result));
    vdo_enter_read_only_mode (vdo->read_only, result);
    return result;
  }
  vdo_log_info ("%s: %s complete in %.3f s: %" PRIu64 " logical blocks "
                "used, %" PRIu64 " block map tree pages; the journal "
                "restarts at block %" PRIu64 " with recovery count %u",
                volume_path (vdo), rebuilding ? "read-only rebuild"
                : "recovery", now_seconds () - started,
                vdo->states.recovery_journal.logical_blocks_used,
                vdo->states.recovery_journal.block_map_data_blocks,
                vdo->states.recovery_journal.journal_start,
                vdo_recovery_journal_recovery_count
                  (vdo->states.complete_recoveries));
  return VDO_SUCCESS;
}

int
vdo_scrub_after_recovery (struct vdo *vdo)
{
  double started = now_seconds ();
  int result = run_depot_action (vdo, vdo_scrub_slab_depot);

  if (result != VDO_SUCCESS) {
    vdo_log_error ("scrubbing the slabs of %s after recovery failed: %s",
                   volume_path (vdo), vdo_status_to_string (result));
    vdo_enter_read_only_mode (vdo->read_only, result);
    return result;
  }
  vdo_log_info ("%s: slabs scrubbed in %.3f s", volume_path (vdo),
                now_seconds () - started);
  return VDO_SUCCESS;
}

/* --- Read-only serving ------------------------------------------------- */

int
vdo_read_journal_overlay (struct vdo *vdo, struct vdo_page_mappings **overlay)
{
  bool rebuilding = vdo_state_requires_read_only_rebuild (vdo->states.state);
  struct vdo_journal_parser_config config;
  struct vdo_journal_bounds bounds;
  struct vdo_journal_parse parse;
  struct journal_image image;
  size_t entries;
  int result;

  *overlay = NULL;
  make_parser_config (vdo, &config);
  /* Recovery's range covers rebuild's, so one read serves both. */
  result = read_journal (vdo, &config, false, &bounds, &image);
  if (result != VDO_SUCCESS)
    return result;
  result = rebuilding
    ? vdo_parse_journal_for_rebuild (&config, &bounds, image.buffer, &parse)
    : vdo_parse_journal_for_recovery (&config, &bounds, image.buffer, &parse);
  /* An old-format journal can still be read by rebuild's rules. */
  if (result == VDO_UNSUPPORTED_VERSION)
    result = vdo_parse_journal_for_rebuild (&config, &bounds, image.buffer,
                                            &parse);
  release_journal_image (&image);
  if (result == VDO_CORRUPT_JOURNAL) {
    vdo_log_warning ("%s: the recovery journal cannot be trusted; serving "
                     "the block map as it is on disk", volume_path (vdo));
    return VDO_SUCCESS;
  }
  if (result != VDO_SUCCESS)
    return result;
  entries = parse.mapping_count;
  if (entries == 0) {
    vdo_free_journal_parse (&parse);
    vdo_log_info ("%s: the journal holds nothing the block map lacks",
                  volume_path (vdo));
    return VDO_SUCCESS;
  }
  result = vdo_make_page_mappings (parse.mappings, entries, overlay);
  parse.mappings = NULL;
  vdo_free_journal_parse (&parse);
  if (result != VDO_SUCCESS)
    return result;
  vdo_log_info ("%s: serving read-only with %zu journal entries (blocks %"
                PRIu64 " to %" PRIu64 ") laid over %zu block map pages in "
                "memory; nothing is written", volume_path (vdo), entries,
                parse.bounds.block_map_head, parse.tail,
                vdo_page_mappings_page_count (*overlay));
  return VDO_SUCCESS;
}
