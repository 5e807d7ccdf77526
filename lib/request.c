/* nbdkit-vdo: blocking user requests, split into data_vios.
 *
 * The calling thread (an nbdkit worker) splits a request into 4 KiB
 * blocks, takes data_vios from the pool, launches them into the zones and
 * sleeps until every block has finished, or been acknowledged early.  The pool bounds the memory and
 * the number of blocks in flight, as dm-vdo's 2048 data_vios do.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data-vio.h"
#include "io.h"
#include "logger.h"
#include "read-only.h"
#include "slab-depot.h"
#include "status.h"
#include "vdo-internal.h"

struct vdo_user_request {
  struct vdo *vdo;
  bool discard_unmap;
  bool early_ack;               /* blocks may be acknowledged early */
  bool fua;
  /* Blocks not yet reported, plus the submitter's own reference.  A
   * counter and a semaphore, not a mutex and a condition variable: the
   * submitter is woken once, and never wakes only to find the lock
   * still held by the zone thread that woke it. */
  atomic_uint pending;
  sem_t done;
  atomic_int result;            /* the first error */
};

int
vdo_status_to_errno (int status)
{
  switch (status) {
  case VDO_SUCCESS: return 0;
  case VDO_NO_SPACE: return ENOSPC;
  case VDO_READ_ONLY: return EROFS;
  default:
    return status > 0 && status < 1024 ? status : EIO;
  }
}

/* How long a request may wait on an empty pool before the packer is
 * asked to write everything. */
#define POOL_STALL_NS 10000000

/* Waiters for an empty pool are woken together once this many data_vios
 * are free, not one per data_vio freed: woken one at a time, each
 * nbdkit worker would launch one write and sleep again, a context
 * switch per write just when the zones are the bottleneck. */
#define POOL_WAKE_BATCH 256

/* Wait, under the pool lock, for data_vios to come back.  True if the
 * pool stalled: none came back for a while, and some wait in the
 * packer for company that an empty pool cannot send. */
static bool
wait_for_data_vios (struct vdo *vdo)
{
  struct timespec deadline;

  if (vdo->packer == NULL) {
    pthread_cond_wait (&vdo->pool_available, &vdo->pool_lock);
    return false;
  }
  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_nsec += POOL_STALL_NS;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000;
  }
  return pthread_cond_timedwait (&vdo->pool_available, &vdo->pool_lock,
                                 &deadline) == ETIMEDOUT
         && vdo->free_data_vios == NULL;
}

static struct data_vio *
get_data_vio (struct vdo *vdo)
{
  struct data_vio *dv;

  pthread_mutex_lock (&vdo->pool_lock);
  while (vdo->free_data_vios == NULL) {
    bool stalled;

    vdo->pool_waiters++;
    stalled = wait_for_data_vios (vdo);
    vdo->pool_waiters--;
    if (stalled) {
      /* Those parked in the packer, or waiting for a fragment there,
       * must not wait for more company; a pool merely busy keeps the
       * bins filling.  Not under the lock: the request may run the
       * packer's queue here (a borrowed zone thread), which returns
       * data_vios. */
      pthread_mutex_unlock (&vdo->pool_lock);
      vdo_packer_request_write_all (vdo->packer);
      pthread_mutex_lock (&vdo->pool_lock);
    }
  }
  dv = vdo->free_data_vios;
  vdo->free_data_vios = dv->next;
  vdo->free_data_vio_count--;
  pthread_mutex_unlock (&vdo->pool_lock);
  dv->next = NULL;
  return dv;
}

static void
report_block (struct vdo_user_request *request, int result)
{
  if (result != VDO_SUCCESS) {
    int first = VDO_SUCCESS;

    atomic_compare_exchange_strong (&request->result, &first, result);
  }
  /* The request lives on the submitter's stack: after the last
   * decrement only sem_post may touch it, and glibc's sem_post allows
   * the semaphore's destruction as soon as sem_wait returns. */
  if (atomic_fetch_sub (&request->pending, 1) == 1)
    sem_post (&request->done);
}

/* --- Flush generations (the asynchronous write policy) ------------------- */

static void
track_write (struct data_vio *dv)
{
  struct vdo *vdo = dv->vdo;

  pthread_mutex_lock (&vdo->flush_lock);
  dv->flush_generation = vdo->write_generation;
  vdo->pending_writes[dv->flush_generation % VDO_FLUSH_GENERATIONS]++;
  dv->flush_tracked = true;
  pthread_mutex_unlock (&vdo->flush_lock);
}

/* An early-acknowledged write has finished, its mapping in the block
 * map and its journal entry durable (or it failed). */
static void
untrack_write (struct data_vio *dv)
{
  struct vdo *vdo = dv->vdo;

  if (!dv->flush_tracked)
    return;
  dv->flush_tracked = false;
  pthread_mutex_lock (&vdo->flush_lock);
  if (--vdo->pending_writes[dv->flush_generation % VDO_FLUSH_GENERATIONS] == 0)
    pthread_cond_broadcast (&vdo->flush_progress);
  pthread_mutex_unlock (&vdo->flush_lock);
}

/* Close the open generation and wait until it and all older ones have
 * drained: every write acknowledged before the call has finished.  A
 * flush needs that for durability; page-at-a-time discards and extents,
 * which read leaf pages without taking LBN locks, to see those writes'
 * mappings. */
void
vdo_wait_for_acknowledged_writes (struct vdo *vdo)
{
  uint64_t closing;

  pthread_mutex_lock (&vdo->flush_lock);
  /* The counters are a ring: wait for a slot before opening another. */
  while (vdo->write_generation + 1 - vdo->oldest_generation
         >= VDO_FLUSH_GENERATIONS)
    pthread_cond_wait (&vdo->flush_progress, &vdo->flush_lock);
  closing = vdo->write_generation++;
  /* Writes of the closing generation may be parked in the packer.  Not
   * under the lock: the request may run the packer's queue here (a
   * borrowed zone thread), and writes finishing take the lock. */
  if (vdo->packer != NULL) {
    pthread_mutex_unlock (&vdo->flush_lock);
    vdo_packer_request_flush (vdo->packer, closing + 1);
    pthread_mutex_lock (&vdo->flush_lock);
  }
  while (vdo->oldest_generation <= closing) {
    if (vdo->pending_writes[vdo->oldest_generation % VDO_FLUSH_GENERATIONS] > 0)
      pthread_cond_wait (&vdo->flush_progress, &vdo->flush_lock);
    else {
      vdo->oldest_generation++;
      pthread_cond_broadcast (&vdo->flush_progress);
    }
  }
  pthread_mutex_unlock (&vdo->flush_lock);
}

/* The error of an acknowledged write that failed.  It stays: the data
 * is lost and the volume read-only, so no later flush may succeed, from
 * any client. */
static int
async_write_error (struct vdo *vdo)
{
  int result;

  pthread_mutex_lock (&vdo->flush_lock);
  result = vdo->async_write_error;
  pthread_mutex_unlock (&vdo->flush_lock);
  return result;
}

void
vdo_acknowledge_data_vio (struct data_vio *dv)
{
  if (!dv->early_ack || dv->acknowledged)
    return;
  dv->acknowledged = true;
  report_block (dv->request, VDO_SUCCESS);
}

void
vdo_data_vio_done (struct data_vio *dv, int result)
{
  struct vdo_user_request *request = dv->request;
  struct vdo *vdo = dv->vdo;
  bool acknowledged = dv->acknowledged;

  /* What it was promised and did not take is spare again. */
  if (dv->promised_blocks > 0 || dv->holds_claim)
    vdo_return_claimed_blocks (vdo->depot,
                               dv->promised_blocks + dv->holds_claim);
  dv->promised_blocks = 0;
  dv->holds_claim = false;

  if (acknowledged && result != VDO_SUCCESS) {
    /* Too late for the request: the next flush says it. */
    pthread_mutex_lock (&vdo->flush_lock);
    if (vdo->async_write_error == VDO_SUCCESS)
      vdo->async_write_error = result;
    pthread_mutex_unlock (&vdo->flush_lock);
  }
  untrack_write (dv);
  dv->request = NULL;

  pthread_mutex_lock (&vdo->pool_lock);
  dv->next = vdo->free_data_vios;
  vdo->free_data_vios = dv;
  /* A waiter is also woken when the pool is whole again, so a volume
   * with fewer data_vios than the batch, or a last few requests, never
   * wait for company. */
  if (++vdo->free_data_vio_count >= POOL_WAKE_BATCH
      || vdo->free_data_vio_count == vdo->data_vio_count) {
    if (vdo->pool_waiters > 0)
      pthread_cond_broadcast (&vdo->pool_available);
  }
  pthread_mutex_unlock (&vdo->pool_lock);

  if (!acknowledged)
    report_block (request, result);
}

static void
init_request (struct vdo_user_request *request, struct vdo *vdo)
{
  request->vdo = vdo;
  sem_init (&request->done, 0, 0);
  atomic_init (&request->pending, 1);   /* the submitter's own reference */
  atomic_init (&request->result, VDO_SUCCESS);
  request->early_ack = false;
  request->fua = false;
}

/* Drop the submitter's reference and wait for every block. */
static int
wait_request (struct vdo_user_request *request)
{
  int result;

  if (atomic_fetch_sub (&request->pending, 1) != 1)
    while (sem_wait (&request->done) != 0)
      ;                         /* EINTR */
  result = atomic_load (&request->result);
  sem_destroy (&request->done);
  return vdo_status_to_errno (result);
}

/* The most blocks one write may allocate: its data block, and a block
 * map page for each tree level its LBN may still be missing. */
#define MAX_BLOCKS_PER_WRITE VDO_BLOCK_MAP_TREE_HEIGHT

/* May an asynchronous write of a whole block be acknowledged as soon as
 * it is launched, before it reaches the zones?  Its data is copied and
 * its reads will queue behind it, so only the outcome is unknown: it
 * fails only if the volume goes read-only, which fails the next flush,
 * or if it finds no space.  So the volume must be writable, and the
 * most the write may allocate promised to it (space-claims.h): no other
 * write can take those blocks.
 *
 * Most writes take one block of the five, and a write without a spare
 * block gets ENOSPC though others' promises may be mostly unused.  So
 * promises stop while what every data_vio could be promised is still
 * spare: by the time the volume is full, those made before have been
 * settled, and a nearly full volume answers each write only once it has
 * its block, so ENOSPC reaches the client that wrote. */
static bool
promise_blocks_at_launch (struct data_vio *dv)
{
  struct vdo *vdo = dv->vdo;

  if (vdo_is_read_only (vdo->read_only)
      || !vdo_promise_blocks (vdo->depot, MAX_BLOCKS_PER_WRITE,
                              (block_count_t) vdo->data_vio_count
                              * MAX_BLOCKS_PER_WRITE))
    return false;
  dv->promised_blocks = MAX_BLOCKS_PER_WRITE;
  return true;
}

static void
launch_block (struct vdo_user_request *request, enum data_vio_operation op,
              logical_block_number_t lbn, uint32_t offset, uint32_t length,
              void *user_data)
{
  struct vdo *vdo = request->vdo;
  struct data_vio *dv = get_data_vio (vdo);

  dv->request = request;
  dv->operation = op;
  dv->lbn = lbn;
  dv->offset = offset;
  dv->length = length;
  dv->user_data = user_data;
  dv->is_zero = false;
  dv->early_ack = request->early_ack;
  dv->fua = request->fua;
  dv->acknowledged = false;
  dv->flush_tracked = false;
  dv->promised_blocks = 0;
  /* Counted before it can be acknowledged, so a flush after the
   * acknowledgement waits for it. */
  if (dv->early_ack)
    track_write (dv);
  /* Decided before the launch, which may finish the data_vio. */
  if (dv->early_ack && length == VDO_BLOCK_SIZE
      && promise_blocks_at_launch (dv))
    dv->acknowledged = true;
  else
    atomic_fetch_add (&request->pending, 1);
  vdo_launch_data_vio (dv);
}

static int
check_range (struct vdo *vdo, uint32_t count, uint64_t offset)
{
  if (offset > vdo_logical_bytes (vdo) || count > vdo_logical_bytes (vdo) - offset)
    return EINVAL;
  return 0;
}

/* Split [offset, offset+count) into blocks, each with its part. */
static int
run_blocks (struct vdo *vdo, enum data_vio_operation op, void *buf,
            uint32_t count, uint64_t offset, bool early_ack, bool fua)
{
  struct vdo_user_request request;
  uint8_t *p = buf;
  int r = check_range (vdo, count, offset);

  if (r != 0)
    return r;
  init_request (&request, vdo);
  request.early_ack = early_ack;
  request.fua = fua;
  while (count > 0) {
    uint32_t in_block = offset % VDO_BLOCK_SIZE;
    uint32_t n = VDO_BLOCK_SIZE - in_block;

    if (n > count)
      n = count;
    launch_block (&request, op, offset / VDO_BLOCK_SIZE, in_block, n, p);
    if (p)
      p += n;
    offset += n;
    count -= n;
  }
  return wait_request (&request);
}

int
vdo_read (struct vdo *vdo, void *buf, uint32_t count, uint64_t offset)
{
  return run_blocks (vdo, DATA_VIO_READ, buf, count, offset, false, false);
}

int
vdo_write (struct vdo *vdo, const void *buf, uint32_t count, uint64_t offset,
           bool fua)
{
  if (vdo_is_serving_read_only (vdo))
    return EROFS;
  /* Writes only read from the buffer. */
  return run_blocks (vdo, DATA_VIO_WRITE, (void *) buf, count, offset,
                     !fua && vdo->options.write_policy == VDO_WRITE_POLICY_ASYNC,
                     fua);
}

int
vdo_flush (struct vdo *vdo)
{
  int result;

  /* Once their journal entries are durable (written with FUA after a
   * flush), so are the writes.  One that failed after it was
   * acknowledged, as when the volume went read-only, fails the flush. */
  vdo_wait_for_acknowledged_writes (vdo);
  result = async_write_error (vdo);
  if (result != VDO_SUCCESS)
    return vdo_status_to_errno (result);
  if (vdo_is_serving_read_only (vdo))
    return 0;
  /* A device flush covers anything the page cache still holds in the
   * buffered fallback. */
  return vdo_io_flush (vdo->device.io);
}

/* --- Page-at-a-time operations: discard and extents ---------------------- */

/* One leaf page's entries, read on the page's zone thread for a caller
 * thread waiting on it. */
struct leaf_read {
  struct vdo_sync_completion sync;
  struct vdo *vdo;
  uint64_t page;
  struct vdo_data_location entries[VDO_BLOCK_MAP_ENTRIES_PER_PAGE];
  bool present;
};

static void
start_leaf_read (struct vdo_completion *completion)
{
  struct leaf_read *read = completion->parent;

  /* The block map finishes the same completion, now aimed at the waiter. */
  completion->callback = vdo_signal_sync_completion;
  vdo_block_map_read_leaf (read->vdo->block_map, read->page, read->entries,
                           &read->present, completion);
}

static int
read_leaf (struct vdo *vdo, uint64_t page, struct leaf_read *read)
{
  logical_block_number_t first = page * VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
  struct vdo_work_queue *queue;

  queue = vdo_block_map_zone_queue (vdo->block_map,
                                    vdo_logical_zone_of_lbn (vdo->block_map,
                                                             first));
  read->vdo = vdo;
  read->page = page;
  vdo_init_sync_completion (&read->sync, queue, read);
  vdo_launch_completion (&read->sync.completion, start_leaf_read, queue);
  return vdo_wait_sync_completion (&read->sync);
}

/* Walk [offset, offset + count) a leaf page at a time, calling FN with
 * the page's entries and the LBN range it covers.  Unaligned edges are
 * the caller's business. */
typedef int (*leaf_fn) (struct vdo *vdo, void *context, struct leaf_read *read,
                        logical_block_number_t first,
                        logical_block_number_t end);

static int
for_each_leaf (struct vdo *vdo, logical_block_number_t first,
               logical_block_number_t end, leaf_fn fn, void *context)
{
  struct leaf_read *read = malloc (sizeof *read);
  int r = 0;

  if (read == NULL)
    return ENOMEM;
  while (first < end && r == 0) {
    uint64_t page = first / VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
    logical_block_number_t page_end = (page + 1) * VDO_BLOCK_MAP_ENTRIES_PER_PAGE;

    if (page_end > end)
      page_end = end;
    r = read_leaf (vdo, page, read);
    if (r == VDO_SUCCESS)
      r = fn (vdo, context, read, first, page_end);
    r = vdo_status_to_errno (r);
    first = page_end;
  }
  free (read);
  return r;
}

/* Launch a block operation on every LBN of the page whose mapping it
 * would change: unmapped LBNs cost nothing, and missing pages cost one
 * lookup for 812 blocks (dm-vdo/kvdo#64). */
static int
discard_leaf (struct vdo *vdo, void *context, struct leaf_read *read,
              logical_block_number_t first, logical_block_number_t end)
{
  struct vdo_user_request *request = context;
  bool unmap = request->discard_unmap;
  logical_block_number_t lbn;

  if (!read->present)
    return 0;
  for (lbn = first; lbn < end; lbn++) {
    struct vdo_data_location m =
      read->entries[lbn % VDO_BLOCK_MAP_ENTRIES_PER_PAGE];

    if (!vdo_is_mapped_location (m))
      continue;
    if (!unmap && m.pbn == VDO_ZERO_BLOCK)
      continue;
    launch_block (request, unmap ? DATA_VIO_TRIM : DATA_VIO_ZERO, lbn, 0,
                  VDO_BLOCK_SIZE, NULL);
  }
  return 0;
}

int
vdo_discard (struct vdo *vdo, uint32_t count, uint64_t offset, bool unmap)
{
  static const uint8_t zeros[VDO_BLOCK_SIZE];
  struct vdo_user_request request;
  uint64_t end = offset + count;
  uint64_t first, last, head_end, tail_start;
  int r, r2;

  if (vdo_is_serving_read_only (vdo))
    return EROFS;
  r = check_range (vdo, count, offset);
  if (r == 0) {
    /* An earlier write that failed after its acknowledgement may still
     * be in the journal, its mapping never applied: the leaf pages would
     * not show it, and recovery would bring it back over this discard. */
    vdo_wait_for_acknowledged_writes (vdo);
    r = vdo_status_to_errno (async_write_error (vdo));
  }
  if (r != 0)
    return r;

  /* Partial blocks at the edges are writes of zeros; each edge piece is
   * shorter than a block. */
  first = (offset + VDO_BLOCK_SIZE - 1) / VDO_BLOCK_SIZE;
  last = end / VDO_BLOCK_SIZE;
  head_end = first * VDO_BLOCK_SIZE < end ? first * VDO_BLOCK_SIZE : end;
  tail_start = last * VDO_BLOCK_SIZE > head_end ? last * VDO_BLOCK_SIZE : head_end;
  r = 0;
  if (head_end > offset)
    r = run_blocks (vdo, DATA_VIO_WRITE, (void *) zeros, head_end - offset,
                    offset, false, false);
  if (r == 0 && end > tail_start)
    r = run_blocks (vdo, DATA_VIO_WRITE, (void *) zeros, end - tail_start,
                    tail_start, false, false);
  if (r != 0 || last <= first)
    return r;

  init_request (&request, vdo);
  request.discard_unmap = unmap;
  r = for_each_leaf (vdo, first, last, discard_leaf, &request);
  r2 = wait_request (&request);
  return r ? r : r2;
}

struct extent_walk {
  vdo_extent_fn fn;
  void *context;
  uint64_t run_start;
  uint64_t run_length;
  enum vdo_extent_type run_type;
};

static int
add_extent (struct extent_walk *walk, uint64_t start, uint64_t length,
            enum vdo_extent_type type)
{
  int r = 0;

  if (walk->run_length > 0 && walk->run_type == type
      && walk->run_start + walk->run_length == start) {
    walk->run_length += length;
    return 0;
  }
  if (walk->run_length > 0)
    r = walk->fn (walk->context, walk->run_start, walk->run_length,
                  walk->run_type);
  walk->run_start = start;
  walk->run_length = length;
  walk->run_type = type;
  return r;
}

static enum vdo_extent_type
extent_type_of (struct vdo_data_location m)
{
  if (!vdo_is_mapped_location (m))
    return VDO_EXTENT_HOLE_ZERO;
  if (m.pbn == VDO_ZERO_BLOCK)
    return VDO_EXTENT_ZERO;
  return VDO_EXTENT_DATA;
}

static int
extents_of_leaf (struct vdo *vdo, void *context, struct leaf_read *read,
                 logical_block_number_t first, logical_block_number_t end)
{
  struct extent_walk *walk = context;
  logical_block_number_t lbn;
  int r = 0;

  for (lbn = first; lbn < end && r == 0; lbn++)
    r = add_extent (walk, lbn * VDO_BLOCK_SIZE, VDO_BLOCK_SIZE,
                    extent_type_of (read->entries[lbn % VDO_BLOCK_MAP_ENTRIES_PER_PAGE]));
  return r;
}

int
vdo_extents (struct vdo *vdo, uint32_t count, uint64_t offset,
             vdo_extent_fn fn, void *context)
{
  struct extent_walk walk = { .fn = fn, .context = context };
  uint64_t first, end;
  int r;

  r = check_range (vdo, count, offset);
  if (r != 0 || count == 0)
    return r;
  vdo_wait_for_acknowledged_writes (vdo);
  first = offset / VDO_BLOCK_SIZE;
  end = (offset + count + VDO_BLOCK_SIZE - 1) / VDO_BLOCK_SIZE;
  r = for_each_leaf (vdo, first, end, extents_of_leaf, &walk);
  if (r == 0 && walk.run_length > 0)
    r = fn (context, walk.run_start, walk.run_length, walk.run_type);
  return r;
}
