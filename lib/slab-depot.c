/* nbdkit-vdo: the slab depot: zones, loads, drains and the public entry
 * points. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "physical-zone.h"
#include "slab-depot.h"
#include "slab-summary.h"
#include "slab.h"
#include "status.h"
#include "volume-layout.h"

/* Journal tails read at once per zone during a load. */
#define TAIL_LOADS_IN_FLIGHT 8

struct slab_depot {
  struct slab_depot_state_2_0 state;
  nonce_t nonce;
  const struct vdo_block_device *device;
  struct vdo_read_only_notifier *read_only;
  unsigned int zone_count;
  block_count_t slab_count;
  unsigned int slab_bits;
  struct vdo_slab_summary *summary;
  struct vdo_slab *slabs;
  struct vdo_physical_zone zones[VDO_MAX_PHYSICAL_ZONES];
  struct vdo_space_claims claims;

  /* The load, drain or scrub running across the zones. */
  enum vdo_depot_load_type load_type;
  enum vdo_slab_drain_mode drain_mode;
  struct vdo_completion *parent;
  struct vdo_completion summary_loaded;
  atomic_uint zones_pending;
  atomic_int first_error;
};

static struct slab_depot *
depot_of_zone (struct vdo_physical_zone *zone)
{
  return zone->zone_action.parent;
}

static struct vdo_physical_zone *
zone_of_action (struct vdo_completion *completion)
{
  return (struct vdo_physical_zone *)
    ((char *) completion
     - __builtin_offsetof (struct vdo_physical_zone, zone_action));
}

static struct vdo_slab *
slab_of_action (struct vdo_completion *completion)
{
  return (struct vdo_slab *)
    ((char *) completion - __builtin_offsetof (struct vdo_slab, action));
}

/* --- Making and freeing ------------------------------------------------- */

static int
check_config (const struct slab_depot_config *config, block_count_t slab_count)
{
  block_count_t slab_blocks = config->state.slab_config.slab_blocks;

  if (slab_blocks == 0 || (slab_blocks & (slab_blocks - 1)) != 0) {
    vdo_log_error ("slab size %" PRIu64 " is not a power of two", slab_blocks);
    return VDO_BAD_CONFIGURATION;
  }
  if (slab_count == 0) {
    vdo_log_error ("the slab depot holds no slab");
    return VDO_BAD_CONFIGURATION;
  }
  if (config->zone_count == 0 || config->zone_count > VDO_MAX_PHYSICAL_ZONES
      || config->zone_count > slab_count) {
    vdo_log_error ("%u physical zones requested for %" PRIu64 " slabs; 1 to"
                   " %d, and no more than the slabs, are supported",
                   config->zone_count, slab_count, VDO_MAX_PHYSICAL_ZONES);
    return VDO_BAD_CONFIGURATION;
  }
  return VDO_SUCCESS;
}

int
vdo_make_slab_depot (const struct slab_depot_config *config,
                     struct slab_depot **depot_ret)
{
  const struct slab_config *slab_config = &config->state.slab_config;
  block_count_t slab_count = vdo_depot_slab_count (&config->state);
  struct slab_depot *depot;
  block_count_t n;
  unsigned int z;
  int result;

  *depot_ret = NULL;
  result = check_config (config, slab_count);
  if (result != VDO_SUCCESS)
    return result;

  depot = calloc (1, sizeof *depot);
  if (depot == NULL) {
    vdo_log_error ("cannot allocate the slab depot");
    return ENOMEM;
  }
  depot->state = config->state;
  depot->nonce = config->nonce;
  depot->device = config->device;
  depot->read_only = config->read_only;
  depot->zone_count = config->zone_count;
  depot->slab_count = slab_count;
  depot->slab_bits = __builtin_ctzll (slab_config->slab_blocks);
  vdo_init_space_claims (&depot->claims);

  result = vdo_make_slab_summary (config->summary_origin,
                                  config->summary_blocks, config->device,
                                  config->read_only, config->zone_count,
                                  config->zone_queues, depot->slab_bits,
                                  slab_config->data_blocks, &depot->summary);
  if (result != VDO_SUCCESS)
    goto fail;

  for (z = 0; z < depot->zone_count; z++) {
    unsigned int zone_slabs = (slab_count - z + depot->zone_count - 1)
                              / depot->zone_count;

    result = vdo_init_physical_zone (&depot->zones[z], z,
                                     config->zone_queues[z], config->device,
                                     config->nonce, &depot->state.slab_config,
                                     config->read_only, config->journal_locks,
                                     vdo_slab_summary_zone (depot->summary, z),
                                     &depot->claims, zone_slabs);
    if (result != VDO_SUCCESS)
      goto fail;
    vdo_prepare_completion (&depot->zones[z].zone_action, NULL,
                            config->zone_queues[z], depot);
  }

  depot->slabs = calloc (slab_count, sizeof *depot->slabs);
  if (depot->slabs == NULL) {
    vdo_log_error ("cannot allocate %" PRIu64 " slabs", slab_count);
    result = ENOMEM;
    goto fail;
  }
  for (n = 0; n < slab_count; n++) {
    struct vdo_physical_zone *zone = &depot->zones[n % depot->zone_count];
    struct vdo_slab *slab = &depot->slabs[n];

    result = vdo_init_slab (slab, zone, n, vdo_slab_origin (&depot->state, n),
                            &depot->state.slab_config, config->nonce);
    if (result != VDO_SUCCESS)
      goto fail;
    zone->slabs[zone->slab_count++] = slab;
  }
  *depot_ret = depot;
  return VDO_SUCCESS;

 fail:
  vdo_free_slab_depot (depot);
  return result;
}

void
vdo_free_slab_depot (struct slab_depot *depot)
{
  block_count_t n;
  unsigned int z;

  if (depot == NULL)
    return;
  if (depot->slabs != NULL)
    for (n = 0; n < depot->slab_count; n++)
      vdo_uninit_slab (&depot->slabs[n]);
  free (depot->slabs);
  for (z = 0; z < depot->zone_count; z++)
    vdo_uninit_physical_zone (&depot->zones[z]);
  vdo_free_slab_summary (depot->summary);
  free (depot);
}

unsigned int
vdo_slab_depot_zone_count (const struct slab_depot *depot)
{
  return depot->zone_count;
}

block_count_t
vdo_slab_depot_slab_count (const struct slab_depot *depot)
{
  return depot->slab_count;
}

struct vdo_slab *
vdo_get_slab (struct slab_depot *depot, block_count_t n)
{
  return n < depot->slab_count ? &depot->slabs[n] : NULL;
}

/* The slab holding data block PBN, or NULL. */
static struct vdo_slab *
slab_of_data_block (const struct slab_depot *depot,
                    physical_block_number_t pbn)
{
  block_count_t slab, offset;

  if (!vdo_slab_of_pbn (&depot->state, pbn, &slab, &offset)
      || offset >= depot->state.slab_config.data_blocks)
    return NULL;
  return &depot->slabs[slab];
}

unsigned int
vdo_physical_zone_of_pbn (const struct slab_depot *depot,
                          physical_block_number_t pbn)
{
  block_count_t slab, offset;

  if (!vdo_slab_of_pbn (&depot->state, pbn, &slab, &offset))
    return 0;
  return slab % depot->zone_count;
}

struct vdo_work_queue *
vdo_physical_zone_queue (const struct slab_depot *depot, unsigned int zone)
{
  return depot->zones[zone].queue;
}

/* --- Work across the zones ---------------------------------------------- */

static void
start_zone_actions (struct slab_depot *depot, vdo_action_fn action,
                    struct vdo_completion *parent)
{
  unsigned int z;

  depot->parent = parent;
  atomic_store (&depot->zones_pending, depot->zone_count);
  atomic_store (&depot->first_error, VDO_SUCCESS);
  for (z = 0; z < depot->zone_count; z++) {
    struct vdo_physical_zone *zone = &depot->zones[z];

    zone->result = VDO_SUCCESS;
    vdo_prepare_completion (&zone->zone_action, action, zone->queue, depot);
    vdo_enqueue_completion (&zone->zone_action);
  }
}

static void
zone_finished (struct vdo_physical_zone *zone, int result)
{
  struct slab_depot *depot = depot_of_zone (zone);
  int expected = VDO_SUCCESS;

  if (result != VDO_SUCCESS)
    atomic_compare_exchange_strong (&depot->first_error, &expected, result);
  if (atomic_fetch_sub (&depot->zones_pending, 1) == 1)
    vdo_finish_completion (depot->parent, atomic_load (&depot->first_error));
}

/* Slabs that are ready go into the allocation table. */
static void
open_rebuilt_slabs (struct vdo_physical_zone *zone)
{
  unsigned int i;

  for (i = 0; i < zone->slab_count; i++) {
    struct vdo_slab *slab = zone->slabs[i];

    if (slab->status == VDO_SLAB_REBUILT && !slab->in_table
        && zone->open_slab != slab)
      vdo_make_slab_allocatable (zone, slab);
  }
}

static void
zone_scrubbed (struct vdo_completion *completion)
{
  struct vdo_physical_zone *zone = completion->parent;

  if (completion->result == VDO_SUCCESS)
    open_rebuilt_slabs (zone);
  zone_finished (zone, completion->result);
}

static void
scrub_zone (struct vdo_physical_zone *zone)
{
  vdo_prepare_completion (&zone->scrub_done, zone_scrubbed, zone->queue, zone);
  vdo_scrub_slabs (&zone->scrubber, &zone->scrub_done);
}

/* What a slab needs once its tail is known (5.3): a clean slab whose
 * counts were never written is empty and usable; any other goes to the
 * scrubber, which loads its counts and replays a dirty journal. */
static void
classify_slab (struct vdo_physical_zone *zone, struct vdo_slab *slab)
{
  const struct slab_summary_entry *entry =
    vdo_get_slab_summary_entry (zone->summary, slab->number);

  slab->journal.use_locks = true;
  if (!entry->is_dirty && !entry->load_ref_counts) {
    vdo_reset_ref_counts (&slab->counts);
    slab->status = VDO_SLAB_REBUILT;
    return;
  }
  vdo_register_slab_for_scrubbing (&zone->scrubber, slab);
}

/* --- Loading ------------------------------------------------------------ */

static void
make_slab_empty (struct vdo_slab *slab)
{
  vdo_reset_ref_counts (&slab->counts);
  vdo_reset_slab_journal (&slab->journal);
  slab->journal.use_locks = true;
  slab->status = VDO_SLAB_REBUILT;
}

static void launch_tail_loads (struct vdo_physical_zone *zone);

static void
tail_loaded (struct vdo_completion *completion)
{
  struct vdo_slab *slab = slab_of_action (completion);
  struct vdo_physical_zone *zone = completion->parent;
  struct slab_depot *depot = depot_of_zone (zone);

  if (completion->result != VDO_SUCCESS) {
    if (zone->result == VDO_SUCCESS)
      zone->result = completion->result;
  }
  else if (depot->load_type == VDO_DEPOT_LOAD_FOR_RECOVERY) {
    /* Replay appends entries only; counts come with scrubbing. */
    vdo_reset_ref_counts (&slab->counts);
    slab->journal.use_locks = false;
    slab->status = VDO_SLAB_REPLAYING;
  }
  else {
    classify_slab (zone, slab);
  }
  zone->slabs_busy--;
  launch_tail_loads (zone);
}

static void
tails_loaded (struct vdo_physical_zone *zone)
{
  struct slab_depot *depot = depot_of_zone (zone);

  if (zone->result != VDO_SUCCESS) {
    vdo_enter_read_only_mode (zone->read_only, zone->result);
    zone_finished (zone, zone->result);
    return;
  }
  if (depot->load_type == VDO_DEPOT_LOAD_FOR_RECOVERY) {
    zone_finished (zone, VDO_SUCCESS);
    return;
  }
  scrub_zone (zone);
}

static void
launch_tail_loads (struct vdo_physical_zone *zone)
{
  while (zone->slabs_busy < TAIL_LOADS_IN_FLIGHT
         && zone->next_slab < zone->slab_count) {
    struct vdo_slab *slab = zone->slabs[zone->next_slab++];

    zone->slabs_busy++;
    slab->status = VDO_SLAB_UNLOADED;
    vdo_prepare_completion (&slab->action, tail_loaded, zone->queue, zone);
    vdo_load_slab_journal_tail (slab, &slab->action);
  }
  if (zone->slabs_busy == 0 && zone->next_slab == zone->slab_count)
    tails_loaded (zone);
}

/* A rebuild starts every slab journal over: stale blocks must never be
 * taken for current ones (7.4 B6). */
static int
zero_slab_journal (struct slab_depot *depot, struct vdo_slab *slab)
{
  int result = vdo_io_zero_blocks (depot->device->io,
                                   slab->journal_origin
                                   - depot->device->bio_offset,
                                   slab->journal.size);

  if (result != 0) {
    vdo_log_error ("cannot zero the journal of slab %u", slab->number);
    vdo_enter_read_only_mode (depot->read_only, result);
  }
  return result;
}

static void
load_zone (struct vdo_completion *completion)
{
  struct vdo_physical_zone *zone = zone_of_action (completion);
  struct slab_depot *depot = depot_of_zone (zone);
  unsigned int i;
  int result = VDO_SUCCESS;

  zone->open_slab = NULL;
  if (depot->load_type == VDO_DEPOT_LOAD_NEW
      || depot->load_type == VDO_DEPOT_LOAD_FOR_REBUILD) {
    for (i = 0; i < zone->slab_count && result == VDO_SUCCESS; i++) {
      if (depot->load_type == VDO_DEPOT_LOAD_FOR_REBUILD)
        result = zero_slab_journal (depot, zone->slabs[i]);
      make_slab_empty (zone->slabs[i]);
    }
    if (result == VDO_SUCCESS)
      open_rebuilt_slabs (zone);
    zone_finished (zone, result);
    return;
  }
  zone->next_slab = 0;
  zone->slabs_busy = 0;
  launch_tail_loads (zone);
}

static void
summary_loaded (struct vdo_completion *completion)
{
  struct slab_depot *depot = completion->parent;

  if (completion->result != VDO_SUCCESS) {
    vdo_finish_completion (depot->parent, completion->result);
    return;
  }
  start_zone_actions (depot, load_zone, depot->parent);
}

void
vdo_load_slab_depot (struct slab_depot *depot, enum vdo_depot_load_type type,
                     struct vdo_completion *parent)
{
  bool use_defaults = type == VDO_DEPOT_LOAD_NEW
                      || type == VDO_DEPOT_LOAD_FOR_REBUILD;

  depot->load_type = type;
  depot->parent = parent;
  vdo_prepare_completion (&depot->summary_loaded, summary_loaded,
                          parent->queue, depot);
  vdo_load_slab_summary (depot->summary, use_defaults,
                         depot->state.zone_count, &depot->summary_loaded);
}

/* --- Scrubbing after recovery ------------------------------------------- */

static void
scrub_zone_action (struct vdo_completion *completion)
{
  struct vdo_physical_zone *zone = zone_of_action (completion);
  unsigned int i;

  for (i = 0; i < zone->slab_count; i++)
    if (zone->slabs[i]->status == VDO_SLAB_REPLAYING)
      classify_slab (zone, zone->slabs[i]);
  scrub_zone (zone);
}

void
vdo_scrub_slab_depot (struct slab_depot *depot, struct vdo_completion *parent)
{
  start_zone_actions (depot, scrub_zone_action, parent);
}

/* --- Draining ----------------------------------------------------------- */

static void
slab_drain_done (struct vdo_physical_zone *zone, int result)
{
  if (result != VDO_SUCCESS && zone->result == VDO_SUCCESS)
    zone->result = result;
  if (--zone->slabs_busy == 0)
    zone_finished (zone, zone->result);
}

static void
slab_drained (struct vdo_completion *completion)
{
  slab_drain_done (completion->parent, completion->result);
}

static void
drain_zone (struct vdo_completion *completion)
{
  struct vdo_physical_zone *zone = zone_of_action (completion);
  struct slab_depot *depot = depot_of_zone (zone);
  unsigned int i;

  /* One extra count, so no slab finishing early ends the zone. */
  zone->slabs_busy = 1;
  for (i = 0; i < zone->slab_count; i++) {
    struct vdo_slab *slab = zone->slabs[i];

    zone->slabs_busy++;
    vdo_prepare_completion (&slab->action, slab_drained, zone->queue, zone);
    vdo_start_slab_drain (slab, depot->drain_mode, &slab->action);
  }
  slab_drain_done (zone, VDO_SUCCESS);
}

static void
drain (struct slab_depot *depot, enum vdo_slab_drain_mode mode,
       struct vdo_completion *parent)
{
  depot->drain_mode = mode;
  start_zone_actions (depot, drain_zone, parent);
}

void
vdo_drain_slab_depot (struct slab_depot *depot, struct vdo_completion *parent)
{
  drain (depot, VDO_SLAB_DRAIN_SAVE, parent);
}

void
vdo_drain_slab_depot_for_recovery (struct slab_depot *depot,
                                   struct vdo_completion *parent)
{
  drain (depot, VDO_SLAB_DRAIN_RECOVERY, parent);
}

void
vdo_drain_slab_depot_for_rebuild (struct slab_depot *depot,
                                  struct vdo_completion *parent)
{
  drain (depot, VDO_SLAB_DRAIN_REBUILD, parent);
}

void
vdo_record_slab_depot (const struct slab_depot *depot,
                       struct slab_depot_state_2_0 *state)
{
  *state = depot->state;
  state->zone_count = depot->zone_count;
}

/* --- The data path ------------------------------------------------------ */

bool
vdo_claim_blocks (struct slab_depot *depot, block_count_t count)
{
  return vdo_claim_space (&depot->claims, (int_fast64_t) count, 0);
}

bool
vdo_promise_blocks (struct slab_depot *depot, block_count_t count,
                    block_count_t keep)
{
  return vdo_claim_space (&depot->claims, (int_fast64_t) count,
                          (int_fast64_t) keep);
}

void
vdo_return_claimed_blocks (struct slab_depot *depot, block_count_t count)
{
  vdo_add_spare_space (&depot->claims, (int_fast64_t) count);
}

int
vdo_allocate_block (struct slab_depot *depot, unsigned int zone,
                    physical_block_number_t *pbn)
{
  return vdo_zone_allocate_block (&depot->zones[zone], pbn);
}

int
vdo_reserve_block (struct slab_depot *depot, unsigned int zone)
{
  return vdo_zone_reserve_block (&depot->zones[zone]);
}

void
vdo_cancel_block_reservation (struct slab_depot *depot, unsigned int zone)
{
  vdo_zone_cancel_reservation (&depot->zones[zone]);
}

int
vdo_allocate_reserved_block (struct slab_depot *depot, unsigned int zone,
                             physical_block_number_t *pbn)
{
  return vdo_zone_allocate_reserved_block (&depot->zones[zone], pbn);
}

int
vdo_release_provisional_block (struct slab_depot *depot,
                               physical_block_number_t pbn)
{
  struct vdo_slab *slab = slab_of_data_block (depot, pbn);

  if (slab == NULL) {
    vdo_log_error ("cannot release PBN %" PRIu64 ": not a slab data block",
                   pbn);
    return VDO_OUT_OF_RANGE;
  }
  return vdo_release_provisional_reference (slab, pbn - slab->origin);
}

struct vdo_pbn_lock *
vdo_pin_block (struct slab_depot *depot, physical_block_number_t pbn,
               bool new_block)
{
  struct vdo_slab *slab = slab_of_data_block (depot, pbn);

  if (slab == NULL || slab->status != VDO_SLAB_REBUILT
      || vdo_slab_is_read_only (slab))
    return NULL;
  return vdo_pin_pbn (&slab->zone->pbn_locks, pbn,
                      vdo_ref_count_at (&slab->counts, pbn - slab->origin),
                      new_block);
}

struct vdo_pbn_lock *
vdo_pin_compressed_block (struct slab_depot *depot,
                          physical_block_number_t pbn, unsigned int holders)
{
  struct vdo_slab *slab = slab_of_data_block (depot, pbn);

  if (slab == NULL || slab->status != VDO_SLAB_REBUILT
      || vdo_slab_is_read_only (slab))
    return NULL;
  return vdo_pin_new_shared_pbn (&slab->zone->pbn_locks, pbn,
                                 vdo_ref_count_at (&slab->counts,
                                                   pbn - slab->origin),
                                 holders);
}

void
vdo_unpin_block (struct slab_depot *depot, struct vdo_pbn_lock *lock)
{
  physical_block_number_t pbn = lock->pbn;
  struct vdo_slab *slab = slab_of_data_block (depot, pbn);

  if (!vdo_unpin_pbn (&slab->zone->pbn_locks, lock))
    return;
  /* Freed under the pin and not shared after all: free it now. */
  if (vdo_ref_count_at (&slab->counts, pbn - slab->origin)
      == VDO_PROVISIONAL_REFERENCE_COUNT)
    vdo_release_provisional_reference (slab, pbn - slab->origin);
}

static void
start_update (struct vdo_reference_update *update)
{
  struct vdo_slab *slab = update->slab;

  if (vdo_slab_is_read_only (slab)) {
    vdo_finish_reference_update (update, VDO_READ_ONLY);
    return;
  }
  if (slab->status != VDO_SLAB_REBUILT) {
    vdo_log_error ("reference update for PBN %" PRIu64 " in slab %u, which"
                   " is not loaded", update->pbn, slab->number);
    vdo_finish_reference_update (update, UDS_BAD_STATE);
    return;
  }
  vdo_slab_journal_enqueue (slab, update);
  vdo_slab_journal_add_entries (slab);
}

static void
update_on_zone (struct vdo_completion *completion)
{
  start_update ((struct vdo_reference_update *) completion);
}

void
vdo_update_reference_count (struct slab_depot *depot,
                            struct vdo_reference_update *update)
{
  struct vdo_slab *slab = slab_of_data_block (depot, update->pbn);

  update->caller_callback = update->completion.callback;
  update->caller_queue = update->completion.queue;
  if (slab == NULL) {
    vdo_log_error ("reference update for PBN %" PRIu64 ", which is not a"
                   " slab data block", update->pbn);
    vdo_enter_read_only_mode (depot->read_only, VDO_OUT_OF_RANGE);
    vdo_finish_reference_update (update, VDO_OUT_OF_RANGE);
    return;
  }
  update->slab = slab;
  if (vdo_on_work_queue (slab->zone->queue)) {
    start_update (update);
    return;
  }
  vdo_launch_completion (&update->completion, update_on_zone,
                         slab->zone->queue);
}

void
vdo_commit_oldest_slab_journal_tails (struct slab_depot *depot,
                                      sequence_number_t recovery_block)
{
  unsigned int z;

  for (z = 0; z < depot->zone_count; z++)
    vdo_request_zone_tail_commits (&depot->zones[z], recovery_block);
}

block_count_t
vdo_slab_depot_free_blocks (const struct slab_depot *depot)
{
  block_count_t free_blocks = 0;
  unsigned int z;

  for (z = 0; z < depot->zone_count; z++)
    free_blocks += vdo_zone_free_blocks (&depot->zones[z]);
  return free_blocks;
}

void
vdo_get_slab_depot_statistics (const struct slab_depot *depot,
                               struct vdo_slab_depot_statistics *stats)
{
  unsigned int z;

  stats->slab_count = depot->slab_count;
  stats->data_blocks = depot->slab_count
                       * depot->state.slab_config.data_blocks;
  stats->slab_journal_blocks_written = 0;
  stats->slab_journal_blocked = 0;
  stats->reference_blocks_written = 0;
  for (z = 0; z < depot->zone_count; z++) {
    const struct vdo_physical_zone *zone = &depot->zones[z];

    stats->slab_journal_blocks_written +=
      atomic_load_explicit (&zone->journal_blocks_written,
                            memory_order_relaxed);
    stats->slab_journal_blocked +=
      atomic_load_explicit (&zone->journal_blocked, memory_order_relaxed);
    stats->reference_blocks_written +=
      atomic_load_explicit (&zone->reference_blocks_written,
                            memory_order_relaxed);
  }
  stats->free_blocks = vdo_slab_depot_free_blocks (depot);
  stats->allocated_blocks = stats->data_blocks - stats->free_blocks;
}

int
vdo_get_reference_count (const struct slab_depot *depot,
                         physical_block_number_t pbn, uint8_t *count)
{
  struct vdo_slab *slab = slab_of_data_block (depot, pbn);

  if (slab == NULL)
    return VDO_OUT_OF_RANGE;
  *count = vdo_ref_count_at (&slab->counts, pbn - slab->origin);
  return VDO_SUCCESS;
}

/* --- Recovery and rebuild hooks ----------------------------------------- */

int
vdo_replay_into_slab_depot (struct slab_depot *depot,
                            physical_block_number_t pbn,
                            enum vdo_reference_operation operation,
                            const struct journal_point *recovery_point)
{
  struct vdo_slab *slab = slab_of_data_block (depot, pbn);

  if (slab == NULL) {
    vdo_log_error ("cannot replay an entry for PBN %" PRIu64 ": not a slab"
                   " data block", pbn);
    return VDO_OUT_OF_RANGE;
  }
  if (slab->status != VDO_SLAB_REPLAYING) {
    vdo_log_error ("slab %u was not loaded for recovery", slab->number);
    return UDS_BAD_STATE;
  }
  return vdo_replay_into_slab_journal (slab, pbn - slab->origin, operation,
                                       recovery_point);
}

int
vdo_rebuild_reference_count (struct slab_depot *depot,
                             physical_block_number_t pbn,
                             enum vdo_reference_operation operation)
{
  struct vdo_slab *slab = slab_of_data_block (depot, pbn);

  if (slab == NULL)
    return VDO_OUT_OF_RANGE;
  return vdo_adjust_reference_count (slab, pbn - slab->origin, operation,
                                     NULL, false);
}
