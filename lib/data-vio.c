/* nbdkit-vdo: the data_vio pipeline (vdo-journals.md 8.1, 8.2). */
#include <config.h>

#include <errno.h>
#include <stddef.h>
#include <string.h>


#include "compressed-block-format.h"
#include "data-vio.h"
#include "hash-lock.h"
#include "io.h"
#include "logger.h"
#include "status.h"
#include "vdo-internal.h"

static struct data_vio *
as_data_vio (struct vdo_completion *completion)
{
  return completion->parent;
}

static struct logical_zone *
logical_zone_of (struct data_vio *dv)
{
  return &dv->vdo->logical_zones[dv->logical_zone];
}

static struct vdo_work_queue *
logical_queue (struct data_vio *dv)
{
  return logical_zone_of (dv)->queue;
}

static struct vdo_work_queue *
physical_queue_of (struct data_vio *dv, physical_block_number_t pbn)
{
  return dv->vdo->physical_queues[vdo_physical_zone_of_pbn (dv->vdo->depot,
                                                            pbn)];
}

/* The queue of the zone holding DV's block or reservation. */
static struct vdo_work_queue *
allocation_queue (struct data_vio *dv)
{
  if (dv->reserved)
    return dv->vdo->physical_queues[dv->allocation_zone];
  return physical_queue_of (dv, dv->allocation);
}

/* Continue on QUEUE with CALLBACK. */
static void
hop (struct data_vio *dv, vdo_action_fn callback, struct vdo_work_queue *queue)
{
  vdo_launch_completion (&dv->completion, callback, queue);
}

static bool
is_all_zero (const uint8_t *block)
{
  static const uint8_t zeros[VDO_BLOCK_SIZE];

  return memcmp (block, zeros, VDO_BLOCK_SIZE) == 0;
}

static bool
same_location (struct vdo_data_location a, struct vdo_data_location b)
{
  return a.pbn == b.pbn && a.state == b.state;
}

int
vdo_init_data_vio (struct data_vio *dv, struct vdo *vdo)
{
  memset (dv, 0, sizeof *dv);
  dv->vdo = vdo;
  dv->block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  dv->scratch = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  dv->verify = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (dv->block == NULL || dv->scratch == NULL || dv->verify == NULL) {
    vdo_uninit_data_vio (dv);
    return ENOMEM;
  }
  return 0;
}

void
vdo_uninit_data_vio (struct data_vio *dv)
{
  vdo_io_free_buffer (dv->block);
  vdo_io_free_buffer (dv->scratch);
  vdo_io_free_buffer (dv->verify);
  dv->block = dv->scratch = dv->verify = NULL;
}

/* --- Finishing ---------------------------------------------------------- */

static void release_tree_allocation (struct data_vio *dv);
static void start_allocation (struct data_vio *dv);

static struct data_vio *
data_vio_of_lbn_waiter (struct vdo_lbn_waiter *waiter)
{
  return (struct data_vio *)
    ((char *) waiter - offsetof (struct data_vio, lbn_waiter));
}

/* The LBN lock went to a waiter with others queued behind it: that
 * holder must not wait in the packer for company, as the others would
 * wait with it.  (A waiter asks the holder it meets, in lock_lbn; this
 * is for the holders after that one.) */
static void
mark_contended_lbn_holder (struct data_vio *dv)
{
  struct vdo_lbn_waiter *holder;

  if (dv->vdo->packer == NULL)
    return;
  holder = vdo_lbn_lock_holder (logical_zone_of (dv)->lbn_locks, dv->lbn);
  if (holder != NULL && holder->next != NULL)
    atomic_store (&data_vio_of_lbn_waiter (holder)->packing.release_wanted,
                  true);
}

static void
release_lbn_and_finish (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);
  int result = completion->result;

  /* A failed tree page allocation lets its waiters try for themselves. */
  if (dv->allocating_tree_page)
    release_tree_allocation (dv);
  vdo_release_lbn_lock (logical_zone_of (dv)->lbn_locks, &dv->lbn_waiter);
  mark_contended_lbn_holder (dv);
  vdo_data_vio_done (dv, result);
}

/* Finish on the logical zone, which owns the LBN lock, after leaving
 * any hash lock. */
static void
finish_data_vio (struct data_vio *dv, int result)
{
  dv->completion.result = result;
  if (dv->hash_lock != NULL) {
    vdo_leave_hash_lock (dv);
    return;
  }
  hop (dv, release_lbn_and_finish, logical_queue (dv));
}

void
vdo_data_vio_finish_after_dedupe (struct data_vio *dv)
{
  hop (dv, release_lbn_and_finish, logical_queue (dv));
}

/* Errors after the journal entry was assigned must drop its lock. */
static void
release_journal_entry_lock (struct data_vio *dv)
{
  struct journal_point *point = &dv->journal_request.recovery_point;

  if (point->sequence_number == 0)
    return;
  vdo_release_journal_lock (vdo_recovery_journal_lock_counter (dv->vdo->journal),
                            point->sequence_number, VDO_ZONE_TYPE_JOURNAL, 1);
  point->sequence_number = 0;
}

/* On DV's allocation zone: give back its block or reservation. */
static void
release_allocation (struct data_vio *dv)
{
  if (dv->reserved)
    vdo_cancel_block_reservation (dv->vdo->depot, dv->allocation_zone);
  else
    vdo_release_provisional_block (dv->vdo->depot, dv->allocation);
  dv->reserved = false;
  dv->allocation = 0;
}

static void
fail_after_allocation (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);

  release_allocation (dv);
  finish_data_vio (dv, completion->result);
}

static void fail_data_vio (struct data_vio *dv, int result);

/* On the compressed block's zone: the increment this data_vio claimed
 * will not come. */
static void
fail_after_compressed_write (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);

  vdo_unpin_block (dv->vdo->depot, dv->compressed_pin);
  dv->compressed_pin = NULL;
  fail_data_vio (dv, completion->result);
}

static void
fail_data_vio (struct data_vio *dv, int result)
{
  release_journal_entry_lock (dv);
  if (dv->compressed_pin != NULL) {
    dv->completion.result = result;
    hop (dv, fail_after_compressed_write,
         physical_queue_of (dv, dv->compressed_pin->pbn));
    return;
  }
  if (dv->allocation != 0 || dv->reserved) {
    dv->completion.result = result;
    hop (dv, fail_after_allocation, allocation_queue (dv));
    return;
  }
  finish_data_vio (dv, result);
}

/* --- Block map update: the last step of a change ------------------------- */

static void tree_page_done (struct data_vio *dv);

static void
mapping_updated (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);
  int result = completion->result;

  /* The page now holds its own journal lock: ours can go. */
  release_journal_entry_lock (dv);
  if (result != VDO_SUCCESS) {
    finish_data_vio (dv, result);
    return;
  }
  if (dv->allocating_tree_page) {
    tree_page_done (dv);
    return;
  }
  finish_data_vio (dv, VDO_SUCCESS);
}

static void
update_block_map (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);

  vdo_prepare_completion (&dv->completion, mapping_updated, logical_queue (dv),
                          dv);
  if (dv->allocating_tree_page)
    vdo_block_map_install_tree_page (dv->vdo->block_map, dv->lbn,
                                     dv->map_request.missing_height,
                                     dv->journal_request.entry.mapping.pbn,
                                     dv->journal_request.recovery_point,
                                     &dv->completion);
  else
    /* The LBN lock held since find_mapping keeps its slot where it was. */
    vdo_block_map_update_found_slot (dv->vdo->block_map, &dv->map_request,
                                     dv->new_mapping,
                                     dv->journal_request.recovery_point,
                                     &dv->completion);
}

/* --- Reference counts ---------------------------------------------------- */

/* On whichever physical zone finished last: all updates are done. */
static void
reference_update_finished (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;
  int expected = VDO_SUCCESS;

  if (completion->result != VDO_SUCCESS)
    atomic_compare_exchange_strong (&dv->update_result, &expected,
                                    completion->result);
  if (atomic_fetch_sub (&dv->pending_updates, 1) != 1)
    return;
  if (atomic_load (&dv->update_result) != VDO_SUCCESS) {
    /* The depot has entered read-only mode. */
    fail_data_vio (dv, atomic_load (&dv->update_result));
    return;
  }
  hop (dv, update_block_map, logical_queue (dv));
}

/* On the compressed block's zone, its increment applied: the block no
 * longer needs this fragment's pin. */
static void
fragment_increment_finished (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;

  vdo_unpin_block (dv->vdo->depot, dv->compressed_pin);
  dv->compressed_pin = NULL;
  reference_update_finished (completion);
}

static void
launch_reference_update (struct data_vio *dv, struct vdo_reference_update *update,
                         physical_block_number_t pbn,
                         enum vdo_reference_operation operation)
{
  bool fragment = operation == VDO_DATA_INCREMENT && dv->compressed_pin != NULL;

  vdo_prepare_completion (&update->completion,
                          fragment ? fragment_increment_finished
                                   : reference_update_finished,
                          physical_queue_of (dv, pbn), dv);
  update->pbn = pbn;
  update->operation = operation;
  update->recovery_point = dv->journal_request.recovery_point;
  vdo_update_reference_count (dv->vdo->depot, update);
}

/* --- Journal ------------------------------------------------------------- */

/* On the journal thread, in commit order: the entry is durable.  Launch
 * its reference changes from here, increment first, so each slab sees
 * them in journal order. */
static void
journal_committed (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);
  struct vdo_data_location old = dv->old_mapping;
  physical_block_number_t increment = 0;
  enum vdo_reference_operation increment_op = VDO_DATA_INCREMENT;
  bool decrement;

  if (completion->result != VDO_SUCCESS) {
    fail_data_vio (dv, completion->result);
    return;
  }
  if (dv->allocating_tree_page) {
    increment = dv->allocation;
    increment_op = VDO_BLOCK_MAP_INCREMENT;
  }
  else if (dv->new_mapping.pbn != VDO_ZERO_BLOCK)
    increment = dv->new_mapping.pbn;
  decrement = !dv->allocating_tree_page && old.pbn != VDO_ZERO_BLOCK
              && vdo_is_mapped_location (old);

  /* The increment turns the provisional reference into a real one. */
  dv->allocation = 0;
  atomic_store (&dv->update_result, VDO_SUCCESS);
  atomic_store (&dv->pending_updates, (increment != 0) + decrement);
  if (increment == 0 && !decrement) {
    hop (dv, update_block_map, logical_queue (dv));
    return;
  }
  if (increment != 0)
    launch_reference_update (dv, &dv->reference_updates[0], increment,
                             increment_op);
  if (decrement)
    launch_reference_update (dv, &dv->reference_updates[1], old.pbn,
                             VDO_DATA_DECREMENT);
}

static void
add_journal_entry (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);
  struct vdo_journal_entry_request *request = &dv->journal_request;
  struct recovery_journal_entry *entry = &request->entry;

  if (dv->allocating_tree_page) {
    entry->operation = VDO_JOURNAL_BLOCK_MAP_REMAPPING;
    entry->slot_pbn = dv->map_request.page_pbn;
    entry->slot = dv->map_request.slot;
    entry->mapping.pbn = dv->allocation;
    entry->mapping.state = VDO_MAPPING_STATE_UNCOMPRESSED;
    entry->unmapping.pbn = VDO_ZERO_BLOCK;
    entry->unmapping.state = VDO_MAPPING_STATE_UNMAPPED;
  }
  else {
    entry->operation = VDO_JOURNAL_DATA_REMAPPING;
    entry->slot_pbn = dv->map_request.page_pbn;
    entry->slot = dv->map_request.slot;
    entry->mapping = dv->new_mapping;
    entry->unmapping = dv->old_mapping;
  }
  request->recovery_point.sequence_number = 0;
  request->recovery_point.entry_count = 0;
  /* Committed entries come back on the journal thread, in order. */
  vdo_prepare_completion (&request->completion, journal_committed,
                          dv->vdo->journal_queue, dv);
  vdo_recovery_journal_add_entry (dv->vdo->journal, request);
}

/* --- Allocation and the data write -------------------------------------- */

static void data_written (struct vdo_completion *completion);
static void allocate_block (struct vdo_completion *completion);

static void
write_data (struct data_vio *dv)
{
  vdo_submit_data_vio (&dv->vio, &dv->vdo->device, VDO_IO_WRITE,
                       dv->allocation, dv->block, data_written,
                       dv->vdo->journal_queue, dv);
}

/* The data is on disk where new_mapping says. */
static void
block_written (struct data_vio *dv)
{
  if (dv->is_lock_agent) {
    /* Its hash lock may share the block from now on. */
    vdo_hash_lock_block_written (dv);
    return;
  }
  vdo_data_vio_continue_to_journal (dv);
}

/* On the reservation's zone: turn DV's reservation into its block.  A
 * failure leaves acknowledged data nowhere to go: read-only. */
static int
allocate_reserved_block (struct data_vio *dv)
{
  int r;

  dv->reserved = false;
  r = vdo_allocate_reserved_block (dv->vdo->depot, dv->allocation_zone,
                                   &dv->allocation);
  if (r != VDO_SUCCESS) {
    dv->allocation = 0;
    vdo_log_error ("LBN %llu: no block for its reservation: %s",
                   (unsigned long long) dv->lbn, vdo_status_to_string (r));
    vdo_enter_read_only_mode (dv->vdo->read_only, r);
  }
  return r;
}

static void
allocate_reserved_and_write (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);
  int r = allocate_reserved_block (dv);

  if (r != VDO_SUCCESS) {
    fail_data_vio (dv, r);
    return;
  }
  write_data (dv);
}

static void
write_uncompressed (struct data_vio *dv)
{
  if (dv->reserved) {
    hop (dv, allocate_reserved_and_write, allocation_queue (dv));
    return;
  }
  write_data (dv);
}

static void
data_written (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;

  /* vio completions carry the vio's result; move it to ours. */
  if (completion->result != 0) {
    vdo_enter_read_only_mode (dv->vdo->read_only, completion->result);
    fail_data_vio (dv, completion->result);
    return;
  }
  dv->new_mapping.pbn = dv->allocation;
  dv->new_mapping.state = VDO_MAPPING_STATE_UNCOMPRESSED;
  block_written (dv);
}

void
vdo_data_vio_continue_to_journal (struct data_vio *dv)
{
  if (vdo_on_work_queue (dv->vdo->journal_queue)) {
    add_journal_entry (&dv->completion);
    return;
  }
  hop (dv, add_journal_entry, dv->vdo->journal_queue);
}

/* --- Compression (vdo-format.md 6) ------------------------------------- */

static struct data_vio *
owner_of (struct vdo_packer_item *item)
{
  return item->owner;
}

/* On a fragment's own zone: the compressed block holds its data, so its
 * own block or reservation goes back. */
static void
release_packed_allocation (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);

  release_allocation (dv);
  block_written (dv);
}

/* On the compressed block's zone. */
static void
compressed_block_written (struct vdo_completion *completion)
{
  struct data_vio *agent = completion->parent;
  struct vdo_pbn_lock *pin = agent->compressed_pin;
  struct vdo_packer_item *item = &agent->packing;
  int result = completion->result;

  if (result != 0) {
    unsigned i;

    vdo_enter_read_only_mode (agent->vdo->read_only, result);
    /* No fragment will take a reference: the last unpin frees the
     * block. */
    for (i = 0; i < agent->batch_count; i++)
      vdo_unpin_block (agent->vdo->depot, pin);
  }
  while (item != NULL) {
    struct vdo_packer_item *next = item->next_in_batch;
    struct data_vio *dv = owner_of (item);

    item->next_in_batch = NULL;
    if (result != 0) {
      dv->compressed_pin = NULL;
      fail_data_vio (dv, result);
    }
    else {
      dv->new_mapping = (struct vdo_data_location) {
        pin->pbn, vdo_get_state_for_slot (item->slot)
      };
      if (dv->allocation != 0 || dv->reserved)
        hop (dv, release_packed_allocation, allocation_queue (dv));
      else
        block_written (dv);
    }
    item = next;
  }
}

static void
fail_batch (struct data_vio *agent, int result)
{
  struct vdo_packer_item *item = &agent->packing;

  while (item != NULL) {
    struct vdo_packer_item *next = item->next_in_batch;

    item->next_in_batch = NULL;
    fail_data_vio (owner_of (item), result);
    item = next;
  }
}

/* On the zone of the agent's block or reservation: pin the block for
 * every fragment, then write the compressed block there. */
static void
write_compressed_block (struct vdo_completion *completion)
{
  struct data_vio *agent = as_data_vio (completion);
  struct vdo *vdo = agent->vdo;
  physical_block_number_t pbn;
  struct vdo_packer_item *item;
  struct vdo_pbn_lock *pin;

  if (vdo_is_read_only (vdo->read_only)) {
    fail_batch (agent, VDO_READ_ONLY);
    return;
  }
  if (agent->reserved) {
    int r = allocate_reserved_block (agent);

    if (r != VDO_SUCCESS) {
      fail_batch (agent, r);
      return;
    }
  }
  pbn = agent->allocation;
  pin = vdo_pin_compressed_block (vdo->depot, pbn, agent->batch_count);
  if (pin == NULL) {
    vdo_log_error ("cannot pin PBN %llu for a compressed block",
                   (unsigned long long) pbn);
    vdo_enter_read_only_mode (vdo->read_only, UDS_BAD_STATE);
    fail_batch (agent, UDS_BAD_STATE);
    return;
  }
  /* The pin owns the block's provisional reference from here on. */
  agent->allocation = 0;
  for (item = &agent->packing; item != NULL; item = item->next_in_batch)
    owner_of (item)->compressed_pin = pin;
  vdo_submit_data_vio (&agent->vio, &vdo->device, VDO_IO_WRITE, pbn,
                       agent->verify, compressed_block_written,
                       physical_queue_of (agent, pbn), agent);
}

void
vdo_data_vio_packed (void *context, struct vdo_packer_item *first,
                     unsigned count)
{
  struct data_vio *agent = owner_of (first);

  (void) context;
  if (count == 1) {
    /* A block of one fragment saves nothing. */
    write_uncompressed (agent);
    return;
  }
  agent->batch_count = count;
  hop (agent, write_compressed_block, allocation_queue (agent));
}

static void
pack_data (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);

  vdo_packer_add (dv->vdo->packer, &dv->packing);
}

/* On a CPU queue: keep the LZ4 fragment only by the kernel's rule. */
static void
compress_data (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);
  struct vdo_packer_item *item = &dv->packing;
  size_t size = dv->precompressed ? dv->precompressed_size
                                  : vdo_compress_block (dv->block, dv->scratch);

  if (size == 0) {
    write_uncompressed (dv);
    return;
  }
  item->fragment = dv->scratch;
  item->size = size;
  item->block = dv->verify;
  item->owner = dv;
  /* Only an early-acknowledged write is counted in a flush generation;
   * any other has its writer waiting, so it waits briefly. */
  item->generation = dv->flush_tracked ? dv->flush_generation
                                       : VDO_PACKER_NO_GENERATION;
  item->waited_on = !dv->acknowledged;
  hop (dv, pack_data, dv->vdo->packer_queue);
}

void
vdo_data_vio_write_block (struct data_vio *dv)
{
  if (dv->allocation == 0 && !dv->reserved) {
    /* Nothing to share and no room for a copy. */
    fail_data_vio (dv, VDO_NO_SPACE);
    return;
  }
  /* A FUA write goes straight to disk, as in dm-vdo. */
  if (dv->vdo->packer != NULL && !dv->fua) {
    if (dv->precompressed)
      compress_data (&dv->completion);
    else
      hop (dv, compress_data, dv->vdo->cpu_queue);
    return;
  }
  write_data (dv);
}

static void
release_allocation_and_journal (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);

  vdo_release_provisional_block (dv->vdo->depot, dv->allocation);
  dv->allocation = 0;
  hop (dv, add_journal_entry, dv->vdo->journal_queue);
}

void
vdo_data_vio_share_block (struct data_vio *dv,
                          struct vdo_data_location duplicate)
{
  dv->new_mapping = duplicate;
  if (dv->allocation != 0) {
    hop (dv, release_allocation_and_journal,
         physical_queue_of (dv, dv->allocation));
    return;
  }
  hop (dv, add_journal_entry, dv->vdo->journal_queue);
}

/* Before its first try at a zone, claim the block: from what was
 * promised to DV, else from the spare blocks.  VDO_NO_SPACE when none
 * is spare. */
static int
claim_block (struct data_vio *dv)
{
  if (dv->holds_claim)
    return VDO_SUCCESS;
  if (dv->promised_blocks > 0)
    dv->promised_blocks--;
  else if (!vdo_claim_blocks (dv->vdo->depot, 1))
    return VDO_NO_SPACE;
  dv->holds_claim = true;
  return VDO_SUCCESS;
}

static void
allocate_block (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);
  struct vdo *vdo = dv->vdo;
  /* A fragment the packer will place needs only the promise of a block
   * (data-vio.h). */
  bool reserve = dv->precompressed && dv->precompressed_size > 0
                 && !dv->allocating_tree_page;
  int r;

  if (vdo_is_read_only (vdo->read_only)) {
    fail_data_vio (dv, VDO_READ_ONLY);
    return;
  }
  r = claim_block (dv);
  if (r == VDO_SUCCESS)
    r = reserve ? vdo_reserve_block (vdo->depot, dv->allocation_zone)
                : vdo_allocate_block (vdo->depot, dv->allocation_zone,
                                      &dv->allocation);
  /* A claim promises a free block in some zone; one that is freed in a
   * zone already tried may take a second round to find. */
  if (r == VDO_NO_SPACE && dv->holds_claim
      && ++dv->zones_tried < 2 * vdo->physical_zone_count) {
    dv->allocation_zone = (dv->allocation_zone + 1) % vdo->physical_zone_count;
    hop (dv, allocate_block, vdo->physical_queues[dv->allocation_zone]);
    return;
  }
  if (dv->holds_claim) {
    /* Spent on the block or the reservation, or given back. */
    if (r != VDO_SUCCESS)
      vdo_return_claimed_blocks (vdo->depot, 1);
    dv->holds_claim = false;
  }
  if (r != VDO_SUCCESS) {
    dv->allocation = 0;
    /* A full volume can still store data it already holds. */
    if (r == VDO_NO_SPACE && vdo->dedupe_index != NULL
        && !dv->allocating_tree_page) {
      vdo_dedupe_data_vio (dv);
      return;
    }
    fail_data_vio (dv, r);
    return;
  }
  dv->reserved = reserve;
  if (dv->allocating_tree_page) {
    /* A tree page is formatted in memory; nothing to write yet. */
    hop (dv, add_journal_entry, vdo->journal_queue);
    return;
  }
  /* The block is ours and the data copied: an asynchronous write can be
   * acknowledged now, as dm-vdo does.  A flush waits for it to finish. */
  vdo_acknowledge_data_vio (dv);
  if (vdo->dedupe_index != NULL) {
    vdo_dedupe_data_vio (dv);
    return;
  }
  vdo_data_vio_write_block (dv);
}

static void
start_allocation (struct data_vio *dv)
{
  struct vdo *vdo = dv->vdo;

  dv->zones_tried = 0;
  dv->allocation_zone = atomic_fetch_add (&vdo->next_allocation_zone, 1)
                        % vdo->physical_zone_count;
  hop (dv, allocate_block, vdo->physical_queues[dv->allocation_zone]);
}

/* --- Tree pages (vdo-journals.md 8.2) ------------------------------------ */

static void find_mapping (struct vdo_completion *completion);

/* The lookup claimed the missing page for us (other writers needing it
 * wait in the block map): allocate it like a data block. */
static void
allocate_tree_page (struct data_vio *dv)
{
  dv->allocating_tree_page = true;
  start_allocation (dv);
}

/* On the logical zone: give up the claim, so waiting lookups retry. */
static void
release_tree_allocation (struct data_vio *dv)
{
  vdo_block_map_abandon_tree_page (dv->vdo->block_map, &dv->map_request);
  dv->allocating_tree_page = false;
}

/* The tree grew (the install released the claim): look the LBN up
 * again, on the same thread. */
static void
tree_page_done (struct data_vio *dv)
{
  dv->allocating_tree_page = false;
  dv->allocation = 0;
  find_mapping (&dv->completion);
}

/* --- Writes, trims and zeroes -------------------------------------------- */

static void
prepare_change (struct data_vio *dv)
{
  if (dv->operation == DATA_VIO_WRITE && !dv->is_zero) {
    start_allocation (dv);
    return;
  }
  if (same_location (dv->new_mapping, dv->old_mapping)) {
    finish_data_vio (dv, VDO_SUCCESS);
    return;
  }
  /* A write of zeros needs no block; only its journal entry is due. */
  if (dv->operation == DATA_VIO_WRITE)
    vdo_acknowledge_data_vio (dv);
  hop (dv, add_journal_entry, dv->vdo->journal_queue);
}

static void
merge_partial_write (struct data_vio *dv)
{
  memcpy (dv->block + dv->offset, dv->user_data, dv->length);
  dv->is_zero = is_all_zero (dv->block);
  if (dv->is_zero)
    dv->new_mapping = (struct vdo_data_location) {
      VDO_ZERO_BLOCK, VDO_MAPPING_STATE_UNCOMPRESSED
    };
  prepare_change (dv);
}

/* --- Reads --------------------------------------------------------------- */

static void
copy_to_user (struct data_vio *dv)
{
  memcpy (dv->user_data, dv->block + dv->offset, dv->length);
}

static void
block_read (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;
  int result = completion->result;

  if (result != 0) {
    finish_data_vio (dv, result);
    return;
  }
  if (vdo_is_state_compressed (dv->old_mapping.state)) {
    /* The block read is the compressed block; extract our fragment. */
    unsigned slot = vdo_get_slot_from_state (dv->old_mapping.state);

    result = vdo_read_compressed_fragment (dv->scratch, slot, dv->block);
    if (result != VDO_SUCCESS) {
      vdo_log_error ("LBN %llu: compressed fragment at PBN %llu is invalid",
                     (unsigned long long) dv->lbn,
                     (unsigned long long) dv->old_mapping.pbn);
      finish_data_vio (dv, result);
      return;
    }
  }
  if (dv->operation == DATA_VIO_READ) {
    copy_to_user (dv);
    finish_data_vio (dv, VDO_SUCCESS);
    return;
  }
  merge_partial_write (dv);
}

/* Read the block the LBN maps to (decompressing a fragment) into
 * dv->block; the zero block and unmapped LBNs read as zeros. */
static void
read_mapped_block (struct data_vio *dv)
{
  struct vdo_data_location m = dv->old_mapping;

  if (!vdo_is_mapped_location (m) || m.pbn == VDO_ZERO_BLOCK) {
    memset (dv->block, 0, VDO_BLOCK_SIZE);
    if (dv->operation == DATA_VIO_READ) {
      copy_to_user (dv);
      finish_data_vio (dv, VDO_SUCCESS);
    }
    else
      merge_partial_write (dv);
    return;
  }
  vdo_submit_data_vio (&dv->vio, &dv->vdo->device, VDO_IO_READ, m.pbn,
                       vdo_is_state_compressed (m.state) ? dv->scratch
                                                         : dv->block,
                       block_read, logical_queue (dv), dv);
}

/* --- Lookup -------------------------------------------------------------- */

/* The launch promised a write the most it might allocate: tree pages as
 * well as its data block.  Once its tree path is whole it needs at most
 * the data block (none for zeros), so the rest is spare again at once,
 * not when the write finishes, which may be a while for a fragment
 * waiting in the packer.  Near a full volume, such idle promises would
 * give other writes ENOSPC while blocks are free. */
static void
return_unneeded_promise (struct data_vio *dv)
{
  unsigned int needed = dv->is_zero ? 0 : 1;

  if (dv->promised_blocks > needed) {
    vdo_return_claimed_blocks (dv->vdo->depot, dv->promised_blocks - needed);
    dv->promised_blocks = needed;
  }
}

static void
mapping_found (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);
  struct vdo_block_map_request *map = &dv->map_request;

  if (completion->result == VDO_BAD_MAPPING && map->path_complete
      && dv->operation != DATA_VIO_READ) {
    /* An invalid leaf entry is replaced, its old value treated as
     * unmapped (vdo-format.md 8.5). */
    vdo_log_warning ("LBN %llu: replacing an invalid block map entry",
                     (unsigned long long) dv->lbn);
    completion->result = VDO_SUCCESS;
  }
  if (completion->result != VDO_SUCCESS) {
    finish_data_vio (dv, completion->result);
    return;
  }
  dv->old_mapping = map->mapping;

  switch (dv->operation) {
  case DATA_VIO_READ:
    read_mapped_block (dv);
    return;

  case DATA_VIO_TRIM:
  case DATA_VIO_ZERO:
    /* An LBN whose tree path is missing is unmapped already. */
    if (!map->path_complete) {
      finish_data_vio (dv, VDO_SUCCESS);
      return;
    }
    if (dv->operation == DATA_VIO_TRIM)
      dv->new_mapping = (struct vdo_data_location) {
        VDO_ZERO_BLOCK, VDO_MAPPING_STATE_UNMAPPED
      };
    else if (vdo_is_mapped_location (dv->old_mapping))
      dv->new_mapping = (struct vdo_data_location) {
        VDO_ZERO_BLOCK, VDO_MAPPING_STATE_UNCOMPRESSED
      };
    else
      dv->new_mapping = dv->old_mapping;
    prepare_change (dv);
    return;

  case DATA_VIO_WRITE:
    if (vdo_is_read_only (dv->vdo->read_only)) {
      /* Give up a claim on a missing tree page, or its waiters hang. */
      if (!map->path_complete)
        vdo_block_map_abandon_tree_page (dv->vdo->block_map, map);
      finish_data_vio (dv, VDO_READ_ONLY);
      return;
    }
    if (!map->path_complete) {
      allocate_tree_page (dv);
      return;
    }
    return_unneeded_promise (dv);
    if (dv->length < VDO_BLOCK_SIZE) {
      read_mapped_block (dv);
      return;
    }
    if (dv->is_zero)
      dv->new_mapping = (struct vdo_data_location) {
        VDO_ZERO_BLOCK, VDO_MAPPING_STATE_UNCOMPRESSED
      };
    prepare_change (dv);
    return;
  }
}

static void
find_mapping (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);
  struct vdo_block_map_request *map = &dv->map_request;

  vdo_prepare_completion (&map->completion, mapping_found, logical_queue (dv),
                          dv);
  map->lbn = dv->lbn;
  /* Writes claim a missing tree page so they can allocate it. */
  map->allocate = dv->operation == DATA_VIO_WRITE;
  vdo_block_map_find_slot (dv->vdo->block_map, map);
}

static void
lock_lbn (struct vdo_completion *completion)
{
  struct data_vio *dv = as_data_vio (completion);

  dv->lbn_waiter.lbn = dv->lbn;
  dv->lbn_waiter.completion = &dv->completion;
  /* When the lock is handed over later, the completion runs
   * find_mapping on this zone. */
  dv->completion.callback = find_mapping;
  if (vdo_acquire_lbn_lock (logical_zone_of (dv)->lbn_locks, &dv->lbn_waiter)) {
    find_mapping (completion);
    return;
  }
  /* The holder may be waiting in the packer, which need not keep it.
   * It holds the lock until it finishes on this thread, so it is still
   * a live data_vio here. */
  if (dv->vdo->packer != NULL) {
    struct vdo_lbn_waiter *holder =
      vdo_lbn_lock_holder (logical_zone_of (dv)->lbn_locks, dv->lbn);

    vdo_packer_request_release (dv->vdo->packer,
                                &data_vio_of_lbn_waiter (holder)->packing);
  }
}

void
vdo_launch_data_vio (struct data_vio *dv)
{
  struct vdo *vdo = dv->vdo;

  dv->logical_zone = vdo_logical_zone_of_lbn (vdo->block_map, dv->lbn);
  dv->allocating_tree_page = false;
  dv->reserved = false;
  dv->holds_claim = false;
  dv->allocation = 0;
  dv->hash_lock = NULL;
  dv->is_lock_agent = false;
  dv->compressed_pin = NULL;
  atomic_store (&dv->packing.release_wanted, false);
  dv->lock_next = dv->wait_next = NULL;
  dv->named = false;
  dv->precompressed = false;
  dv->journal_request.recovery_point.sequence_number = 0;
  dv->old_mapping = dv->new_mapping = (struct vdo_data_location) {
    VDO_ZERO_BLOCK, VDO_MAPPING_STATE_UNMAPPED
  };
  if (dv->operation == DATA_VIO_WRITE && dv->length == VDO_BLOCK_SIZE) {
    memcpy (dv->block, dv->user_data, VDO_BLOCK_SIZE);
    dv->is_zero = is_all_zero (dv->block);
    if (!dv->is_zero && vdo->dedupe_index != NULL)
      vdo_name_data_vio (dv);
    /* Without dedupe every such block is compressed, and scratch is
     * free until then: do it here, in parallel with the zones.  (With
     * dedupe, most duplicates never need it, and verifying advice uses
     * scratch.) */
    else if (!dv->is_zero && vdo->packer != NULL && !dv->fua) {
      dv->precompressed_size = vdo_compress_block (dv->block, dv->scratch);
      dv->precompressed = true;
    }
  }
  vdo_prepare_completion (&dv->completion, lock_lbn, logical_queue (dv), dv);
  vdo_enqueue_completion (&dv->completion);
}
