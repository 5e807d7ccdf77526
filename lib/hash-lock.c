/* nbdkit-vdo: hash zones and hash locks (hash-lock.h). */
#include <config.h>

#include <errno.h>
#include <string.h>

#include <glib.h>

#include "compressed-block-format.h"
#include "data-vio.h"
#include "dedupe-format.h"
#include "dedupe-index.h"
#include "hash-lock.h"
#include "logger.h"
#include "slab-depot.h"
#include "status.h"
#include "vdo-internal.h"

enum hash_lock_state {
  LOCK_QUERYING,        /* the agent asked the index */
  LOCK_VERIFYING,       /* the agent pins and reads the advised block */
  LOCK_WRITING,         /* the agent writes a block of its own */
  LOCK_WRITTEN,         /* the agent's block is written, not yet pinned */
  LOCK_PINNING,         /* pinning the agent's block for the others */
  LOCK_DEDUPING,        /* the pinned block holds the data: share it */
  LOCK_BYPASS,          /* nothing to share: members write their own */
};

struct hash_lock {
  struct vdo_chunk_name name;   /* the table's key */
  struct hash_zone *zone;
  struct vdo *vdo;
  enum hash_lock_state state;
  struct data_vio *agent;       /* NULL once it has left */
  struct data_vio *members;     /* linked by lock_next */
  unsigned int member_count;
  struct data_vio *waiters_head, *waiters_tail;  /* by wait_next */

  struct vdo_data_location duplicate;
  struct vdo_pbn_lock *pin;           /* on duplicate, when sharing */
  struct vdo_pbn_lock *advice_pin;    /* on the advised block, verifying */
  struct vdo_index_request request;
  bool index_busy;
  bool update_wanted;           /* the index's advice was stale */
  bool pinning;
  bool in_table;
  /* Pinning the agent's block, and unpinning when the lock goes. */
  struct vdo_completion work;
};

/* --- Zones ----------------------------------------------------------------- */

static guint
hash_name (gconstpointer key)
{
  guint value;

  /* Names are uniform: any four bytes not used to pick the zone do. */
  memcpy (&value, (const uint8_t *) key + 4, sizeof value);
  return value;
}

static gboolean
names_equal (gconstpointer a, gconstpointer b)
{
  return memcmp (a, b, VDO_CHUNK_NAME_SIZE) == 0;
}

int
vdo_init_hash_zone (struct hash_zone *zone, unsigned int number,
                    struct vdo_work_queue *queue)
{
  zone->number = number;
  zone->queue = queue;
  zone->locks = g_hash_table_new (hash_name, names_equal);
  return VDO_SUCCESS;
}

void
vdo_uninit_hash_zone (struct hash_zone *zone)
{
  if (zone->locks != NULL)
    g_hash_table_destroy (zone->locks);
  zone->locks = NULL;
}

static void
count (atomic_uint_fast64_t *counter)
{
  atomic_fetch_add_explicit (counter, 1, memory_order_relaxed);
}

static struct vdo_work_queue *
physical_queue_of (struct vdo *vdo, physical_block_number_t pbn)
{
  return vdo->physical_queues[vdo_physical_zone_of_pbn (vdo->depot, pbn)];
}

static void
hop (struct data_vio *dv, vdo_action_fn callback, struct vdo_work_queue *queue)
{
  vdo_launch_completion (&dv->completion, callback, queue);
}

/* --- Members and waiters ------------------------------------------------- */

static void
add_member (struct hash_lock *lock, struct data_vio *dv)
{
  dv->hash_lock = lock;
  dv->lock_next = lock->members;
  lock->members = dv;
  lock->member_count++;
}

static void
remove_member (struct hash_lock *lock, struct data_vio *dv)
{
  struct data_vio **link = &lock->members;

  while (*link != dv)
    link = &(*link)->lock_next;
  *link = dv->lock_next;
  dv->lock_next = NULL;
  lock->member_count--;
  dv->hash_lock = NULL;
}

static void
add_waiter (struct hash_lock *lock, struct data_vio *dv)
{
  dv->wait_next = NULL;
  if (lock->waiters_tail != NULL)
    lock->waiters_tail->wait_next = dv;
  else
    lock->waiters_head = dv;
  lock->waiters_tail = dv;
}

static struct data_vio *
take_waiters (struct hash_lock *lock)
{
  struct data_vio *head = lock->waiters_head;

  lock->waiters_head = lock->waiters_tail = NULL;
  return head;
}

/* Map DV to the lock's block if it may take one more reference;
 * otherwise the block is full and DV writes a copy of its own. */
static void
share_or_write (struct hash_lock *lock, struct data_vio *dv)
{
  if (vdo_claim_pbn_increment (lock->pin)) {
    if (dv != lock->agent)
      count (&lock->vdo->dedupe_counters.concurrent_matches);
    vdo_data_vio_share_block (dv, lock->duplicate);
    return;
  }
  count (&lock->vdo->dedupe_counters.rollovers);
  vdo_data_vio_write_block (dv);
}

/* Release every waiter: to share the pinned block, or to write. */
static void
release_waiters (struct hash_lock *lock)
{
  struct data_vio *dv = take_waiters (lock);

  while (dv != NULL) {
    struct data_vio *next = dv->wait_next;

    dv->wait_next = NULL;
    if (lock->state == LOCK_DEDUPING)
      share_or_write (lock, dv);
    else
      vdo_data_vio_write_block (dv);
    dv = next;
  }
}

static void
bypass (struct hash_lock *lock)
{
  lock->state = LOCK_BYPASS;
  release_waiters (lock);
}

/* --- Ending a lock --------------------------------------------------------- */

static void
unpin_next (struct vdo_completion *completion)
{
  struct hash_lock *lock = completion->parent;
  struct vdo_pbn_lock **pin = lock->pin != NULL ? &lock->pin
                                                : &lock->advice_pin;

  vdo_unpin_block (lock->vdo->depot, *pin);
  *pin = NULL;
  if (lock->advice_pin != NULL) {
    vdo_launch_completion (completion, unpin_next,
                           physical_queue_of (lock->vdo,
                                              lock->advice_pin->pbn));
    return;
  }
  g_free (lock);
}

/* The lock leaves the table once nobody holds it, so later writes of
 * the name start a lock of their own; it goes once nothing is in flight
 * for it, and its pins are dropped on their zones after that. */
static void
maybe_end_lock (struct hash_lock *lock)
{
  struct vdo_pbn_lock *pin;

  if (lock->member_count > 0 || lock->pinning)
    return;
  if (lock->in_table) {
    g_hash_table_remove (lock->zone->locks, &lock->name);
    lock->in_table = false;
  }
  if (lock->index_busy)
    return;
  pin = lock->pin != NULL ? lock->pin : lock->advice_pin;
  if (pin == NULL) {
    g_free (lock);
    return;
  }
  vdo_prepare_completion (&lock->work, unpin_next,
                          physical_queue_of (lock->vdo, pin->pbn), lock);
  vdo_enqueue_completion (&lock->work);
}

/* --- The agent's own block ------------------------------------------------- */

static void
index_updated (struct vdo_completion *completion)
{
  struct hash_lock *lock = completion->parent;

  lock->index_busy = false;
  maybe_end_lock (lock);
}

/* The index's advice was stale (or it knew the name elsewhere): point
 * it at the block the agent wrote. */
static void
send_update (struct hash_lock *lock)
{
  struct vdo_index_request *request = &lock->request;
  struct vdo_advice advice = {
    .state = lock->duplicate.state,
    .pbn = lock->duplicate.pbn,
  };

  request->type = VDO_INDEX_UPDATE;
  vdo_encode_advice (&advice, request->new_advice);
  vdo_prepare_completion (&request->completion, index_updated,
                          lock->zone->queue, lock);
  lock->index_busy = true;
  vdo_submit_index_request (lock->vdo->dedupe_index, request);
}

static void
agent_block_pinned (struct vdo_completion *completion)
{
  struct hash_lock *lock = completion->parent;

  lock->pinning = false;
  if (lock->pin == NULL)
    bypass (lock);
  else {
    lock->state = LOCK_DEDUPING;
    release_waiters (lock);
  }
  maybe_end_lock (lock);
}

static void
pin_agent_block (struct vdo_completion *completion)
{
  struct hash_lock *lock = completion->parent;

  lock->pin = vdo_pin_block (lock->vdo->depot, lock->duplicate.pbn, true);
  vdo_launch_completion (completion, agent_block_pinned, lock->zone->queue);
}

/* Someone waits for the agent's block.  The agent is still a member, so
 * its block cannot have been freed; the pin is queued on the block's
 * zone before anything that could free it later. */
static void
start_pinning (struct hash_lock *lock)
{
  lock->state = LOCK_PINNING;
  lock->pinning = true;
  vdo_prepare_completion (&lock->work, pin_agent_block,
                          physical_queue_of (lock->vdo, lock->duplicate.pbn),
                          lock);
  vdo_enqueue_completion (&lock->work);
}

static void
agent_block_written (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;
  struct hash_lock *lock = dv->hash_lock;

  lock->duplicate = dv->new_mapping;
  /* The agent POSTed its own block, which compression gave back: the
   * index must name the fragment instead. */
  if (vdo_is_state_compressed (dv->new_mapping.state))
    lock->update_wanted = true;
  if (lock->update_wanted && !lock->index_busy)
    send_update (lock);
  if (lock->waiters_head != NULL)
    start_pinning (lock);
  else
    lock->state = LOCK_WRITTEN;
  vdo_data_vio_continue_to_journal (dv);
}

void
vdo_hash_lock_block_written (struct data_vio *dv)
{
  hop (dv, agent_block_written, dv->hash_lock->zone->queue);
}

/* No usable advice: the agent writes its own block, or, with none
 * (the volume is full), nobody can. */
static void
agent_writes (struct hash_lock *lock)
{
  struct data_vio *agent = lock->agent;

  if (agent->allocation == 0) {
    bypass (lock);
    vdo_data_vio_write_block (agent);
    return;
  }
  lock->state = LOCK_WRITING;
  agent->is_lock_agent = true;
  vdo_data_vio_write_block (agent);
}

/* --- Verifying advice ------------------------------------------------------ */

static void
advice_is_stale (struct hash_lock *lock)
{
  count (&lock->vdo->dedupe_counters.advice_stale);
  lock->update_wanted = true;
  agent_writes (lock);
}

static void
advice_unusable (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;

  advice_is_stale (dv->hash_lock);
}

static void
advice_read (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;
  struct hash_lock *lock = dv->hash_lock;
  const uint8_t *data = dv->scratch;

  if (completion->result != 0) {
    vdo_log_warning ("cannot read PBN %llu to verify dedupe advice: %s",
                     (unsigned long long) lock->duplicate.pbn,
                     strerror (completion->result));
    advice_is_stale (lock);
    return;
  }
  if (vdo_is_state_compressed (lock->duplicate.state)) {
    if (vdo_read_compressed_fragment
          (dv->scratch, vdo_get_slot_from_state (lock->duplicate.state),
           dv->verify) != VDO_SUCCESS) {
      advice_is_stale (lock);
      return;
    }
    data = dv->verify;
  }
  /* A name is no proof: only the same bytes are shared. */
  if (memcmp (data, dv->block, VDO_BLOCK_SIZE) != 0) {
    advice_is_stale (lock);
    return;
  }
  count (&lock->vdo->dedupe_counters.advice_valid);
  lock->pin = lock->advice_pin;
  lock->advice_pin = NULL;
  lock->state = LOCK_DEDUPING;
  share_or_write (lock, dv);
  release_waiters (lock);
}

/* On the advised block's zone: pin it, so it stays what we read, then
 * read it. */
static void
pin_advice (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;
  struct hash_lock *lock = dv->hash_lock;
  struct vdo *vdo = dv->vdo;

  lock->advice_pin = vdo_pin_block (vdo->depot, lock->duplicate.pbn, false);
  if (lock->advice_pin == NULL) {
    hop (dv, advice_unusable, lock->zone->queue);
    return;
  }
  vdo_submit_data_vio (&dv->vio, &vdo->device, VDO_IO_READ,
                       lock->duplicate.pbn, dv->scratch, advice_read,
                       lock->zone->queue, dv);
}

static void
query_answered (struct vdo_completion *completion)
{
  struct hash_lock *lock = completion->parent;
  struct vdo_index_request *request = &lock->request;
  struct vdo_advice advice;

  lock->index_busy = false;
  if (completion->result != VDO_SUCCESS || request->unanswered) {
    count (&lock->vdo->dedupe_counters.advice_timeouts);
    agent_writes (lock);
    return;
  }
  if (!request->found) {
    agent_writes (lock);
    return;
  }
  if (!vdo_decode_advice (request->old_advice, &advice)) {
    advice_is_stale (lock);
    return;
  }
  lock->state = LOCK_VERIFYING;
  lock->duplicate = (struct vdo_data_location) { advice.pbn, advice.state };
  hop (lock->agent, pin_advice, physical_queue_of (lock->vdo, advice.pbn));
}

/* The agent POSTs its new block as the name's advice (the index keeps
 * older advice if it has some), or only QUERYs without one. */
static void
start_query (struct hash_lock *lock)
{
  struct data_vio *agent = lock->agent;
  struct vdo_index_request *request = &lock->request;
  struct vdo_advice advice = {
    .state = VDO_MAPPING_STATE_UNCOMPRESSED,
    .pbn = agent->allocation,
  };

  lock->state = LOCK_QUERYING;
  request->type = agent->allocation != 0 ? VDO_INDEX_POST : VDO_INDEX_QUERY;
  request->name = lock->name;
  vdo_encode_advice (&advice, request->new_advice);
  vdo_prepare_completion (&request->completion, query_answered,
                          lock->zone->queue, lock);
  lock->index_busy = true;
  vdo_submit_index_request (lock->vdo->dedupe_index, request);
}

/* --- Joining and leaving ----------------------------------------------- */

static void
acquire_lock (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;
  struct vdo *vdo = dv->vdo;
  struct hash_zone *zone = &vdo->hash_zones[dv->hash_zone];
  struct hash_lock *lock = g_hash_table_lookup (zone->locks, &dv->name);

  dv->is_lock_agent = false;
  if (lock == NULL) {
    lock = g_new0 (struct hash_lock, 1);
    lock->name = dv->name;
    lock->zone = zone;
    lock->vdo = vdo;
    g_hash_table_insert (zone->locks, &lock->name, lock);
    lock->in_table = true;
    add_member (lock, dv);
    lock->agent = dv;
    start_query (lock);
    return;
  }
  /* Members all hold the same bytes (a lock in the table has one);
   * different bytes under one name are a hash collision and must not
   * share anything. */
  if (memcmp (lock->members->block, dv->block, VDO_BLOCK_SIZE) != 0) {
    count (&vdo->dedupe_counters.hash_collisions);
    dv->hash_lock = NULL;
    vdo_data_vio_write_block (dv);
    return;
  }
  add_member (lock, dv);
  switch (lock->state) {
  case LOCK_DEDUPING:
    share_or_write (lock, dv);
    return;
  case LOCK_BYPASS:
    vdo_data_vio_write_block (dv);
    return;
  case LOCK_WRITTEN:
    add_waiter (lock, dv);
    start_pinning (lock);
    return;
  case LOCK_QUERYING:
  case LOCK_VERIFYING:
  case LOCK_WRITING:
    /* A writer that waits (FUA, or the synchronous policy) must not
     * wait for the agent's fragment to find company in the packer. */
    if (!dv->acknowledged && vdo->packer != NULL && lock->agent != NULL)
      vdo_packer_request_release (vdo->packer, &lock->agent->packing);
    add_waiter (lock, dv);
    return;
  case LOCK_PINNING:
    add_waiter (lock, dv);
    return;
  }
}

void
vdo_name_data_vio (struct data_vio *dv)
{
  struct vdo *vdo = dv->vdo;

  if (vdo->options.test_same_names)
    memset (&dv->name, 0x5a, sizeof dv->name);
  else
    vdo_compute_chunk_name (dv->block, &dv->name);
  dv->hash_zone = vdo_hash_zone_of_name (&dv->name, vdo->hash_zone_count);
  dv->named = true;
}

static void
name_data (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;

  vdo_name_data_vio (dv);
  hop (dv, acquire_lock, dv->vdo->hash_zones[dv->hash_zone].queue);
}

void
vdo_dedupe_data_vio (struct data_vio *dv)
{
  if (dv->named) {
    hop (dv, acquire_lock, dv->vdo->hash_zones[dv->hash_zone].queue);
    return;
  }
  hop (dv, name_data, dv->vdo->cpu_queue);
}

static void
leave_lock (struct vdo_completion *completion)
{
  struct data_vio *dv = completion->parent;
  struct hash_lock *lock = dv->hash_lock;

  remove_member (lock, dv);
  if (lock->agent == dv) {
    lock->agent = NULL;
    /* An agent that leaves before its block could be pinned failed, or
     * nobody wanted its block: without it, the block may go. */
    if (lock->state != LOCK_DEDUPING && lock->state != LOCK_PINNING
        && lock->state != LOCK_BYPASS)
      bypass (lock);
  }
  maybe_end_lock (lock);
  vdo_data_vio_finish_after_dedupe (dv);
}

void
vdo_leave_hash_lock (struct data_vio *dv)
{
  hop (dv, leave_lock, dv->hash_lock->zone->queue);
}
