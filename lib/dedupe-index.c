/* nbdkit-vdo: the dedupe index service: requests, chapters and caches
 * on the index thread (dedupe-index.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dedupe-index-internal.h"
#include "index-geometry.h"
#include "logger.h"
#include "status.h"

/* The volume index keeps at most this many candidates per lookup. */
#define MAX_CANDIDATES \
  (sizeof ((struct vdo_index_request *) 0)->candidates / sizeof (uint64_t))

static void lookup (struct vdo_dedupe_index *index,
                    struct vdo_index_request *request);

/* --- Answers ---------------------------------------------------------- */

/* Refresh what only the index thread may read, for the stats. */
static void
refresh_volume_stats_locked (struct vdo_dedupe_index *index)
{
  struct vdo_volume_index_stats vstats;

  vdo_volume_index_get_stats (index->volume_index, &vstats);
  index->stats.entries_indexed = vstats.entries;
  index->stats.evictions = vstats.evictions;
}

static void
count_answer_locked (struct vdo_dedupe_index *index,
                     const struct vdo_index_request *request)
{
  struct vdo_dedupe_index_stats *stats = &index->stats;

  if (request->unanswered) {
    stats->requests_unanswered++;
    return;
  }
  switch (request->type) {
  case VDO_INDEX_POST:
    if (request->found)
      stats->posts_found++;
    else
      stats->posts_not_found++;
    break;
  case VDO_INDEX_QUERY:
    if (request->found)
      stats->queries_found++;
    else
      stats->queries_not_found++;
    break;
  case VDO_INDEX_UPDATE:
    if (request->found)
      stats->updates_found++;
    else
      stats->updates_not_found++;
    break;
  }
}

/* Hand a request back; the caller may reuse it at once, so nothing
 * touches it afterwards. */
static void
complete_request (struct vdo_index_request *request, int result)
{
  request->completion.result = result;
  vdo_enqueue_completion (&request->completion);
}

/* A request that was looked up (counted in in_flight). */
static void
answer (struct vdo_dedupe_index *index, struct vdo_index_request *request,
        int result)
{
  if (result != VDO_SUCCESS) {
    request->found = false;
    request->unanswered = true;
  }
  pthread_mutex_lock (&index->stats_lock);
  count_answer_locked (index, request);
  refresh_volume_stats_locked (index);
  pthread_mutex_unlock (&index->stats_lock);
  index->in_flight--;
  complete_request (request, result);
  vdo_check_index_drained (index);
}

/* A request answered without a lookup (not counted in in_flight). */
static void
answer_unlooked (struct vdo_dedupe_index *index,
                 struct vdo_index_request *request)
{
  request->found = false;
  request->unanswered = true;
  pthread_mutex_lock (&index->stats_lock);
  index->stats.requests_unanswered++;
  pthread_mutex_unlock (&index->stats_lock);
  complete_request (request, VDO_SUCCESS);
}

/* Restart every request on a list (reversing it, which is harmless:
 * requests on one list have no order among themselves). */
static void
restart_requests (struct vdo_dedupe_index *index,
                  struct vdo_index_request *list)
{
  while (list) {
    struct vdo_index_request *request = list;

    list = request->next;
    request->next = NULL;
    lookup (index, request);
  }
}

static void
fail_requests (struct vdo_dedupe_index *index,
               struct vdo_index_request *list, int result)
{
  while (list) {
    struct vdo_index_request *request = list;

    list = request->next;
    request->next = NULL;
    answer (index, request, result);
  }
}

static void
wait_on (struct vdo_index_request **list, struct vdo_index_request *request)
{
  request->next = *list;
  *list = request;
}

/* --- Drain ------------------------------------------------------------ */

static bool
io_is_idle (const struct vdo_dedupe_index *index)
{
  unsigned int i;

  if (index->writer.write.busy || !vdo_index_rebuild_is_idle (index))
    return false;
  for (i = 0; i < VDO_INDEX_BLOCK_CACHE_SLOTS; i++)
    if (index->block_cache[i].read.busy)
      return false;
  for (i = 0; i < VDO_INDEX_SPARSE_CACHE_CHAPTERS; i++)
    if (index->sparse_cache[i].read.busy)
      return false;
  return true;
}

void
vdo_check_index_drained (struct vdo_dedupe_index *index)
{
  struct vdo_sync_completion *waiter = index->drain_waiter;

  if (!index->closing || waiter == NULL || index->in_flight > 0
      || !io_is_idle (index))
    return;
  index->drain_waiter = NULL;
  vdo_finish_completion (&waiter->completion, VDO_SUCCESS);
}

static void
start_drain (struct vdo_completion *completion)
{
  struct vdo_dedupe_index *index = completion->parent;

  index->closing = true;
  /* Finishing it later wakes the waiter. */
  completion->callback = vdo_signal_sync_completion;
  index->drain_waiter = (struct vdo_sync_completion *) completion;
  vdo_check_index_drained (index);
}

/* Stop taking requests, let everything in flight finish, and stop the
 * thread.  Afterwards the caller owns the state. */
static void
stop_index (struct vdo_dedupe_index *index)
{
  struct vdo_sync_completion sync;

  pthread_mutex_lock (&index->stats_lock);
  index->submissions_closed = true;
  pthread_mutex_unlock (&index->stats_lock);
  if (!index->started)
    return;

  vdo_init_sync_completion (&sync, index->queue, index);
  sync.completion.callback = start_drain;
  vdo_enqueue_completion (&sync.completion);
  /* start_drain finishes SYNC (its signal step) once idle. */
  vdo_wait_sync_completion (&sync);
  if (!index->shared_queue)
    vdo_free_work_queue (index->queue);
  index->queue = NULL;
  index->started = false;
}

/* --- Record blocks ---------------------------------------------------- */

bool
vdo_index_block_is_valid (const struct vdo_dedupe_index *index,
                          const uint8_t *block, uint64_t vcn,
                          uint32_t block_index)
{
  struct vdo_record_block_header header;

  return vdo_decode_record_block_header (block, &header) == VDO_SUCCESS
         && header.instance_nonce == index->instance_nonce
         && header.vcn == vcn && header.block_index == block_index;
}

/* Search a chapter held in memory as packed blocks (the writing
 * chapter, a sparse cached one). */
static bool
search_chapter_blocks (const struct vdo_dedupe_index *index,
                       const uint8_t *blocks, const uint32_t *prefixes,
                       const struct vdo_chunk_name *name,
                       uint8_t advice[VDO_ADVICE_SIZE])
{
  uint32_t first, last, b;

  vdo_chapter_block_range (prefixes, index->layout.blocks_per_chapter,
                           vdo_chunk_name_prefix (name), &first, &last);
  for (b = first; b <= last; b++) {
    const uint8_t *block = blocks + (size_t) b * VDO_BLOCK_SIZE;

    if (vdo_search_record_block (block, vdo_record_block_count (block), name,
                                 advice))
      return true;
  }
  return false;
}

static void
submit_index_io (struct vdo_dedupe_index *index, struct index_io *io,
                 enum vdo_io_op op, block_count_t region_block,
                 block_count_t count, void *buffer);

/* --- The block cache -------------------------------------------------- */

static struct block_slot *
find_cached_block (struct vdo_dedupe_index *index, block_count_t block)
{
  unsigned int i;

  /* 256 compares cost less than the hashing would save. */
  for (i = 0; i < VDO_INDEX_BLOCK_CACHE_SLOTS; i++)
    if (index->block_cache[i].block == block)
      return &index->block_cache[i];
  return NULL;
}

static struct block_slot *
choose_block_victim (struct vdo_dedupe_index *index)
{
  struct block_slot *victim = NULL;
  unsigned int i;

  for (i = 0; i < VDO_INDEX_BLOCK_CACHE_SLOTS; i++) {
    struct block_slot *slot = &index->block_cache[i];

    if (slot->read.busy)
      continue;
    if (slot->block == VDO_INDEX_NO_BLOCK)
      return slot;
    if (!victim || slot->last_used < victim->last_used)
      victim = slot;
  }
  return victim;
}

/* Requests waiting for a cache slot queue in arrival order. */
static void
wait_for_slot (struct vdo_dedupe_index *index,
               struct vdo_index_request *request)
{
  request->next = NULL;
  if (index->slot_waiters_tail != NULL)
    index->slot_waiters_tail->next = request;
  else
    index->slot_waiters = request;
  index->slot_waiters_tail = request;
}

/* A read finished, so a slot may be free: restart waiting requests,
 * oldest first, while a block slot is, and leave the rest queued.
 * Restarting (or even walking) every waiter on every completion costs
 * work per waiter for each slot freed, which under a deep queue of
 * reads starves the index thread.  Each waiter present on entry is
 * restarted at most once, since one may queue again.  (A request
 * waiting for a sparse chapter slot restarts at the next completion
 * that finds a block slot free: block reads are then in flight, or
 * every block slot is free.) */
static void
restart_slot_waiters (struct vdo_dedupe_index *index)
{
  struct vdo_index_request *last = index->slot_waiters_tail;

  while (index->slot_waiters != NULL && choose_block_victim (index) != NULL) {
    struct vdo_index_request *request = index->slot_waiters;
    bool was_last = request == last;

    index->slot_waiters = request->next;
    if (index->slot_waiters == NULL)
      index->slot_waiters_tail = NULL;
    request->next = NULL;
    lookup (index, request);
    if (was_last)
      break;
  }
}

static void
start_block_read (struct vdo_dedupe_index *index,
                  struct vdo_index_request *request, block_count_t block)
{
  struct block_slot *slot = choose_block_victim (index);

  if (!slot) {
    wait_for_slot (index, request);
    return;
  }
  slot->block = block;
  slot->vcn = VDO_INDEX_NO_VCN;
  slot->read.stale = false;
  request->next = NULL;
  slot->read.waiters = request;
  submit_index_io (index, &slot->read, VDO_IO_READ, block, 1, slot->data);
}

static void
block_read_done (struct vdo_completion *completion)
{
  struct block_slot *slot = completion->parent;
  struct vdo_dedupe_index *index = slot->read.index;
  struct vdo_index_request *waiters = slot->read.waiters;
  uint32_t bpc = index->layout.blocks_per_chapter;
  block_count_t offset = slot->block - VDO_INDEX_CHAPTER_RING_START;
  struct vdo_record_block_header header;

  slot->read.busy = false;
  slot->read.waiters = NULL;
  slot->last_used = ++index->clock;
  if (slot->read.result != 0 || slot->read.stale) {
    slot->block = VDO_INDEX_NO_BLOCK;
  }
  else if (vdo_decode_record_block_header (slot->data, &header) == VDO_SUCCESS
           && header.instance_nonce == index->instance_nonce
           && header.block_index == offset % bpc
           && header.vcn % index->chapters == offset / bpc) {
    slot->vcn = header.vcn;
  }

  if (slot->read.result != 0)
    fail_requests (index, waiters, slot->read.result);
  else
    restart_requests (index, waiters);
  restart_slot_waiters (index);
  vdo_check_index_drained (index);
}

/* --- The sparse cache ------------------------------------------------- */

static struct sparse_slot *
find_sparse_chapter (struct vdo_dedupe_index *index, uint64_t vcn)
{
  unsigned int i;

  for (i = 0; i < VDO_INDEX_SPARSE_CACHE_CHAPTERS; i++)
    if (index->sparse_cache[i].vcn == vcn)
      return &index->sparse_cache[i];
  return NULL;
}

static void
start_sparse_load (struct vdo_dedupe_index *index,
                   struct vdo_index_request *request, uint64_t vcn)
{
  uint32_t bpc = index->layout.blocks_per_chapter;
  struct sparse_slot *slot = NULL;
  unsigned int i;

  for (i = 0; i < VDO_INDEX_SPARSE_CACHE_CHAPTERS; i++) {
    struct sparse_slot *candidate = &index->sparse_cache[i];

    if (candidate->read.busy)
      continue;
    if (!slot || candidate->vcn == VDO_INDEX_NO_VCN
        || (slot->vcn != VDO_INDEX_NO_VCN
            && candidate->last_used < slot->last_used))
      slot = candidate;
  }
  if (!slot) {
    wait_for_slot (index, request);
    return;
  }
  if (!slot->blocks) {
    slot->blocks = vdo_io_alloc_buffer ((size_t) bpc * VDO_BLOCK_SIZE);
    if (!slot->blocks) {
      answer (index, request, ENOMEM);
      return;
    }
    pthread_mutex_lock (&index->stats_lock);
    index->stats.memory_bytes += (uint64_t) bpc * VDO_BLOCK_SIZE;
    pthread_mutex_unlock (&index->stats_lock);
  }
  slot->vcn = vcn;
  request->next = NULL;
  slot->read.waiters = request;
  submit_index_io (index, &slot->read, VDO_IO_READ,
                   vdo_index_chapter_block (&index->layout,
                                            (uint32_t) (vcn % index->chapters),
                                            0),
                   bpc, slot->blocks);
}

static void
sparse_read_done (struct vdo_completion *completion)
{
  struct sparse_slot *slot = completion->parent;
  struct vdo_dedupe_index *index = slot->read.index;
  struct vdo_index_request *waiters = slot->read.waiters;
  uint32_t b, bpc = index->layout.blocks_per_chapter;

  slot->read.busy = false;
  slot->read.waiters = NULL;
  slot->last_used = ++index->clock;
  if (slot->read.result != 0) {
    slot->vcn = VDO_INDEX_NO_VCN;
    fail_requests (index, waiters, slot->read.result);
  }
  else {
    /* Zeroed blocks read as empty: a torn block just holds nothing. */
    for (b = 0; b < bpc; b++) {
      uint8_t *block = slot->blocks + (size_t) b * VDO_BLOCK_SIZE;

      if (!vdo_index_block_is_valid (index, block, slot->vcn, b))
        memset (block, 0, VDO_BLOCK_SIZE);
    }
    restart_requests (index, waiters);
  }
  restart_slot_waiters (index);
  vdo_check_index_drained (index);
}

/* A non-hook name of a sparse chapter has no volume index entry: look
 * in the chapters cached because their hooks were found. */
static bool
search_sparse_cache (struct vdo_dedupe_index *index,
                     const struct vdo_chunk_name *name,
                     uint8_t advice[VDO_ADVICE_SIZE])
{
  unsigned int i;

  for (i = 0; i < VDO_INDEX_SPARSE_CACHE_CHAPTERS; i++) {
    struct sparse_slot *slot = &index->sparse_cache[i];
    uint32_t physical;

    if (slot->vcn == VDO_INDEX_NO_VCN || slot->read.busy
        || !vdo_index_chapter_is_live (index, slot->vcn))
      continue;
    physical = (uint32_t) (slot->vcn % index->chapters);
    if (index->chapter_vcns[physical] != slot->vcn)
      continue;
    if (search_chapter_blocks (index, slot->blocks,
                               vdo_index_chapter_prefixes (index, physical),
                               name, advice)) {
      slot->last_used = ++index->clock;
      return true;
    }
  }
  return false;
}

/* --- Chapters --------------------------------------------------------- */

static void
close_open_chapter (struct vdo_dedupe_index *index)
{
  uint64_t vcn = index->open_vcn;
  uint32_t physical = (uint32_t) (vcn % index->chapters);
  uint32_t bpc = index->layout.blocks_per_chapter;
  block_count_t first = vdo_index_chapter_block (&index->layout, physical, 0);
  unsigned int i;

  /* The physical chapter's old contents expired a chapter ago; forget
   * them before they are overwritten. */
  index->chapter_vcns[physical] = VDO_INDEX_NO_VCN;
  for (i = 0; i < VDO_INDEX_BLOCK_CACHE_SLOTS; i++) {
    struct block_slot *slot = &index->block_cache[i];

    if (slot->block < first || slot->block >= first + bpc)
      continue;
    if (slot->read.busy)
      slot->read.stale = true;
    else
      slot->block = VDO_INDEX_NO_BLOCK;
  }
  for (i = 0; i < VDO_INDEX_SPARSE_CACHE_CHAPTERS; i++) {
    struct sparse_slot *slot = &index->sparse_cache[i];

    if (!slot->read.busy && slot->vcn != VDO_INDEX_NO_VCN
        && slot->vcn % index->chapters == physical)
      slot->vcn = VDO_INDEX_NO_VCN;
  }

  vdo_close_open_chapter (index->open_chapter, index->instance_nonce, vcn,
                          bpc, index->writer.blocks, index->writer.prefixes);
  index->writer.vcn = vcn;
  index->open_vcn = vcn + 1;
  vdo_volume_index_set_open_chapter (index->volume_index, index->open_vcn);

  /* Read-only: the chapter stays in memory until the next one replaces
   * it, and is then lost. */
  if (index->config.read_only)
    return;
  submit_index_io (index, &index->writer.write, VDO_IO_WRITE, first, bpc,
                   index->writer.blocks);
}

static void
maybe_close_open_chapter (struct vdo_dedupe_index *index)
{
  if (vdo_open_chapter_is_full (index->open_chapter)
      && !index->writer.write.busy)
    close_open_chapter (index);
}

static void
chapter_written (struct vdo_completion *completion)
{
  struct vdo_dedupe_index *index = completion->parent;
  struct chapter_writer *writer = &index->writer;
  struct vdo_index_request *stalled = index->stalled;
  uint32_t physical = (uint32_t) (writer->vcn % index->chapters);

  writer->write.busy = false;
  if (writer->write.result == 0) {
    index->chapter_vcns[physical] = writer->vcn;
    memcpy (vdo_index_chapter_prefixes (index, physical), writer->prefixes,
            (size_t) index->layout.blocks_per_chapter
            * sizeof *writer->prefixes);
    writer->vcn = VDO_INDEX_NO_VCN;
    pthread_mutex_lock (&index->stats_lock);
    index->stats.chapters_written++;
    pthread_mutex_unlock (&index->stats_lock);
  }
  else {
    vdo_log_error ("dedupe index: chapter %" PRIu64 " could not be written "
                   "(%s); its names stay in memory until the next chapter "
                   "closes", writer->vcn,
                   vdo_status_to_string (writer->write.result));
  }

  index->stalled = NULL;
  maybe_close_open_chapter (index);
  restart_requests (index, stalled);
  vdo_check_index_drained (index);
}

/* --- Requests --------------------------------------------------------- */

/* Put the record into the open chapter (the newest) and point the
 * volume index there. */
static void
store (struct vdo_dedupe_index *index, struct vdo_index_request *request,
       const uint8_t advice[VDO_ADVICE_SIZE], uint64_t from_vcn)
{
  enum vdo_open_chapter_put_result put;

  /* A chapter loaded full (or left full by a failed write) closes now. */
  maybe_close_open_chapter (index);
  put = vdo_open_chapter_put (index->open_chapter, &request->name, advice,
                              request->type == VDO_INDEX_UPDATE);
  if (put == VDO_OPEN_CHAPTER_FULL) {
    /* The previous chapter is still being written; retry afterwards. */
    wait_on (&index->stalled, request);
    return;
  }
  if (put == VDO_OPEN_CHAPTER_ADDED) {
    int result = vdo_volume_index_put (index->volume_index, &request->name,
                                       index->open_vcn, from_vcn);

    if (result != VDO_SUCCESS)
      vdo_log_debug ("dedupe index: volume index put failed: %s",
                     vdo_status_to_string (result));
  }
  maybe_close_open_chapter (index);
  answer (index, request, VDO_SUCCESS);
}

static void
found (struct vdo_dedupe_index *index, struct vdo_index_request *request,
       uint64_t from_vcn, const uint8_t advice[VDO_ADVICE_SIZE])
{
  request->found = true;
  memcpy (request->old_advice, advice, VDO_ADVICE_SIZE);
  store (index, request,
         request->type == VDO_INDEX_UPDATE ? request->new_advice : advice,
         from_vcn);
}

static void
not_found (struct vdo_dedupe_index *index, struct vdo_index_request *request)
{
  if (request->type == VDO_INDEX_QUERY)
    answer (index, request, VDO_SUCCESS);
  else
    store (index, request, request->new_advice, VDO_NO_CHAPTER);
}

/* Search one closed chapter on disk (through the caches).  Returns
 * true when the request has been dealt with (found, or now waiting for
 * a read); false when NAME is not in the chapter. */
static bool
search_closed_chapter (struct vdo_dedupe_index *index,
                       struct vdo_index_request *request, uint64_t vcn)
{
  uint32_t physical = (uint32_t) (vcn % index->chapters);
  uint32_t first, last, b;
  uint8_t advice[VDO_ADVICE_SIZE];

  if (vdo_index_chapter_is_sparse (index, vcn)) {
    struct sparse_slot *slot = find_sparse_chapter (index, vcn);

    if (!slot) {
      start_sparse_load (index, request, vcn);
      return true;
    }
    if (slot->read.busy) {
      wait_on (&slot->read.waiters, request);
      return true;
    }
    slot->last_used = ++index->clock;
    if (!search_chapter_blocks (index, slot->blocks,
                                vdo_index_chapter_prefixes (index, physical),
                                &request->name, advice))
      return false;
    found (index, request, vcn, advice);
    return true;
  }

  vdo_chapter_block_range (vdo_index_chapter_prefixes (index, physical),
                           index->layout.blocks_per_chapter,
                           vdo_chunk_name_prefix (&request->name),
                           &first, &last);
  for (b = first; b <= last; b++) {
    block_count_t block = vdo_index_chapter_block (&index->layout, physical,
                                                   b);
    struct block_slot *slot = find_cached_block (index, block);

    if (!slot) {
      start_block_read (index, request, block);
      return true;
    }
    if (slot->read.busy) {
      wait_on (&slot->read.waiters, request);
      return true;
    }
    slot->last_used = ++index->clock;
    /* A torn or foreign block holds nothing of this chapter. */
    if (slot->vcn == vcn
        && vdo_search_record_block (slot->data,
                                    vdo_record_block_count (slot->data),
                                    &request->name, advice)) {
      found (index, request, vcn, advice);
      return true;
    }
  }
  return false;
}

/* Look a request up from the start: after any wait, too, since chapters
 * may have closed meanwhile; the block waited for is cached by then. */
static void
lookup (struct vdo_dedupe_index *index, struct vdo_index_request *request)
{
  uint8_t advice[VDO_ADVICE_SIZE];
  unsigned int i;

  request->found = false;
  if (vdo_open_chapter_find (index->open_chapter, &request->name, advice)) {
    request->found = true;
    memcpy (request->old_advice, advice, VDO_ADVICE_SIZE);
    if (request->type == VDO_INDEX_UPDATE)
      vdo_open_chapter_put (index->open_chapter, &request->name,
                            request->new_advice, true);
    answer (index, request, VDO_SUCCESS);
    return;
  }
  if (index->writer.vcn != VDO_INDEX_NO_VCN
      && search_chapter_blocks (index, index->writer.blocks,
                                index->writer.prefixes, &request->name,
                                advice)) {
    found (index, request, index->writer.vcn, advice);
    return;
  }

  request->candidate_count =
    vdo_volume_index_lookup (index->volume_index, &request->name,
                             request->candidates, MAX_CANDIDATES);
  for (i = 0; i < request->candidate_count; i++) {
    uint64_t vcn = request->candidates[i];

    request->next_candidate = i;
    if (vcn == index->open_vcn || vcn == index->writer.vcn
        || !vdo_index_chapter_is_live (index, vcn)
        || index->chapter_vcns[vcn % index->chapters] != vcn)
      continue;
    if (search_closed_chapter (index, request, vcn))
      return;
  }

  if (index->sample_rate != 0
      && !vdo_chunk_name_is_hook (&request->name, index->sample_rate)
      && search_sparse_cache (index, &request->name, advice)) {
    found (index, request, VDO_NO_CHAPTER, advice);
    return;
  }
  not_found (index, request);
}

static struct vdo_index_request *
request_of_work (struct vdo_completion *completion)
{
  return (struct vdo_index_request *)
    ((char *) completion - offsetof (struct vdo_index_request, index_work));
}

static void
handle_request (struct vdo_completion *completion)
{
  struct vdo_dedupe_index *index = completion->parent;
  struct vdo_index_request *request = request_of_work (completion);

  request->found = false;
  request->unanswered = false;
  request->next = NULL;
  memset (request->old_advice, 0, VDO_ADVICE_SIZE);
  /* Never make a request wait for a rebuild: answer it as not found. */
  if (index->closing || index->rebuilding) {
    answer_unlooked (index, request);
    return;
  }
  index->in_flight++;
  lookup (index, request);
}

void
vdo_submit_index_request (struct vdo_dedupe_index *index,
                          struct vdo_index_request *request)
{
  pthread_mutex_lock (&index->stats_lock);
  if (index->submissions_closed || !index->started) {
    index->stats.requests_unanswered++;
    pthread_mutex_unlock (&index->stats_lock);
    request->found = false;
    request->unanswered = true;
    complete_request (request, VDO_SUCCESS);
    return;
  }
  vdo_prepare_completion (&request->index_work, handle_request, index->queue,
                          index);
  /* Under the lock, so stop_index never misses a request. */
  vdo_enqueue_completion (&request->index_work);
  pthread_mutex_unlock (&index->stats_lock);
}

/* --- Asynchronous I/O ------------------------------------------------- */

/* Completion thread: hand the result to the index thread. */
static void
index_io_done (struct vdo_io_request *io, int result)
{
  struct index_io *index_io = io->context;

  index_io->result = result;
  vdo_enqueue_completion (&index_io->completion);
}

static void
init_index_io (struct vdo_dedupe_index *index, struct index_io *io,
               vdo_action_fn callback, void *parent)
{
  memset (io, 0, sizeof *io);
  io->index = index;
  vdo_prepare_completion (&io->completion, callback, index->queue, parent);
}

static void
submit_index_io (struct vdo_dedupe_index *index, struct index_io *io,
                 enum vdo_io_op op, block_count_t region_block,
                 block_count_t count, void *buffer)
{
  memset (&io->io, 0, sizeof io->io);
  io->io.op = op;
  io->io.block = vdo_index_device_block (index, region_block);
  io->io.count = count;
  io->io.buffer = buffer;
  io->io.callback = index_io_done;
  io->io.context = io;
  /* The queue may have been shared since the io was prepared. */
  io->completion.queue = index->queue;
  io->busy = true;
  io->result = 0;
  vdo_io_submit_one (index->config.io, &io->io);
}

/* For index-rebuild.c, which drives its own reads the same way. */
void
vdo_submit_index_read (struct vdo_dedupe_index *index, struct index_io *io,
                       block_count_t region_block, block_count_t count,
                       void *buffer)
{
  submit_index_io (index, io, VDO_IO_READ, region_block, count, buffer);
}

void
vdo_init_index_io (struct vdo_dedupe_index *index, struct index_io *io,
                   vdo_action_fn callback, void *parent)
{
  init_index_io (index, io, callback, parent);
}

/* --- Making and freeing ----------------------------------------------- */

/* The sizes of an index for CONFIG: chapters from the UDS geometry (or
 * the test overrides), the volume index for them, and the layout. */
struct index_dimensions {
  uint64_t records_per_chapter;
  uint32_t chapters;
  uint32_t dense_chapters;
  uint32_t sample_rate;
  struct vdo_volume_index_config volume_index;
  struct vdo_index_layout layout;
};

static int
compute_dimensions (const struct vdo_dedupe_index_config *config,
                    struct index_dimensions *d)
{
  struct vdo_index_geometry geometry;
  uint64_t table_bytes;
  int result;

  result = vdo_compute_index_geometry (config->mem, config->sparse,
                                       &geometry);
  if (result != VDO_SUCCESS)
    return result;

  d->records_per_chapter = config->test_records_per_chapter != 0
                           ? config->test_records_per_chapter
                           : geometry.records_per_chapter;
  d->chapters = config->test_chapters_per_volume != 0
                ? config->test_chapters_per_volume
                : geometry.chapters_per_volume;
  d->dense_chapters = d->chapters;
  d->sample_rate = 0;
  if (config->sparse) {
    d->sample_rate = geometry.sparse_sample_rate;
    d->dense_chapters = config->test_dense_chapters != 0
                        ? config->test_dense_chapters
                        : geometry.dense_chapters_per_volume;
  }

  d->volume_index = (struct vdo_volume_index_config) {
    .chapters = d->chapters,
    .dense_chapters = d->dense_chapters,
    .sample_rate = d->sample_rate,
    .records_per_chapter = d->records_per_chapter,
  };
  table_bytes = vdo_volume_index_memory_bytes (&d->volume_index);
  if (table_bytes == 0) {
    vdo_log_error ("dedupe index: no volume index for %" PRIu32
                   " chapters (%" PRIu32 " dense) of %" PRIu64 " records",
                   d->chapters, d->dense_chapters, d->records_per_chapter);
    return VDO_BAD_INDEX_CONFIG;
  }
  return vdo_compute_index_layout (d->records_per_chapter, d->chapters,
                                   (table_bytes + VDO_BLOCK_SIZE - 1)
                                   / VDO_BLOCK_SIZE, &d->layout);
}

int
vdo_dedupe_index_region_blocks (const struct vdo_dedupe_index_config *config,
                                block_count_t *blocks)
{
  struct index_dimensions d;
  int result = compute_dimensions (config, &d);

  if (result == VDO_SUCCESS)
    *blocks = d.layout.total_blocks;
  return result;
}

static int
compute_sizes (struct vdo_dedupe_index *index)
{
  const struct vdo_dedupe_index_config *config = &index->config;
  struct index_dimensions d;
  int result;

  result = compute_dimensions (config, &d);
  if (result != VDO_SUCCESS)
    return result;
  index->records_per_chapter = d.records_per_chapter;
  index->chapters = d.chapters;
  index->dense_chapters = d.dense_chapters;
  index->sample_rate = d.sample_rate;
  index->layout = d.layout;
  if (index->layout.total_blocks > config->region_blocks) {
    vdo_log_error ("dedupe index needs %" PRIu64 " blocks but the index "
                   "region has %" PRIu64, index->layout.total_blocks,
                   config->region_blocks);
    return VDO_BAD_INDEX_CONFIG;
  }
  if (config->region_start + config->region_blocks
      > vdo_io_block_count (config->io)) {
    vdo_log_error ("dedupe index region (blocks %" PRIu64 "..%" PRIu64
                   ") lies beyond the end of %s", config->region_start,
                   config->region_start + config->region_blocks - 1,
                   vdo_io_path (config->io));
    return VDO_REGION_OUT_OF_BOUNDS;
  }

  result = vdo_make_volume_index (&d.volume_index, &index->volume_index);
  if (result != VDO_SUCCESS)
    return result;
  if (vdo_volume_index_page_count (index->volume_index)
      > index->layout.volume_index_pages) {
    vdo_log_error ("dedupe index: the volume index has more pages than "
                   "its memory size implies");
    return UDS_ASSERTION_FAILED;
  }
  return VDO_SUCCESS;
}

static int
allocate_index (struct vdo_dedupe_index *index)
{
  uint32_t bpc = index->layout.blocks_per_chapter;
  size_t prefix_count = (size_t) index->chapters * bpc;
  unsigned int i;
  int result;

  result = vdo_make_open_chapter (index->records_per_chapter,
                                  &index->open_chapter);
  if (result != VDO_SUCCESS)
    return result;
  index->chapter_vcns = malloc (index->chapters
                                * sizeof *index->chapter_vcns);
  index->prefixes = calloc (prefix_count, sizeof *index->prefixes);
  index->writer.prefixes = calloc (bpc, sizeof *index->writer.prefixes);
  index->writer.blocks = vdo_io_alloc_buffer ((size_t) bpc * VDO_BLOCK_SIZE);
  index->block_cache_data =
    vdo_io_alloc_buffer ((size_t) VDO_INDEX_BLOCK_CACHE_SLOTS
                         * VDO_BLOCK_SIZE);
  if (!index->chapter_vcns || !index->prefixes || !index->writer.prefixes
      || !index->writer.blocks || !index->block_cache_data) {
    vdo_log_error ("dedupe index: out of memory");
    return ENOMEM;
  }
  for (i = 0; i < index->chapters; i++)
    index->chapter_vcns[i] = VDO_INDEX_NO_VCN;

  result = vdo_make_work_queue ("vdo-dedupe", &index->queue);
  if (result != 0)
    return result;
  index->writer.vcn = VDO_INDEX_NO_VCN;
  init_index_io (index, &index->writer.write, chapter_written, index);
  for (i = 0; i < VDO_INDEX_BLOCK_CACHE_SLOTS; i++) {
    struct block_slot *slot = &index->block_cache[i];

    slot->block = VDO_INDEX_NO_BLOCK;
    slot->vcn = VDO_INDEX_NO_VCN;
    slot->data = index->block_cache_data + (size_t) i * VDO_BLOCK_SIZE;
    init_index_io (index, &slot->read, block_read_done, slot);
  }
  for (i = 0; i < VDO_INDEX_SPARSE_CACHE_CHAPTERS; i++) {
    struct sparse_slot *slot = &index->sparse_cache[i];

    slot->vcn = VDO_INDEX_NO_VCN;
    init_index_io (index, &slot->read, sparse_read_done, slot);
  }
  return VDO_SUCCESS;
}

static uint64_t
memory_bytes (const struct vdo_dedupe_index *index)
{
  struct vdo_volume_index_stats vstats;
  uint64_t bpc = index->layout.blocks_per_chapter, bytes;
  unsigned int i;

  vdo_volume_index_get_stats (index->volume_index, &vstats);
  bytes = vstats.memory_bytes
          + vdo_open_chapter_memory_bytes (index->open_chapter)
          + index->chapters * (sizeof (uint64_t) + bpc * sizeof (uint32_t))
          + bpc * (VDO_BLOCK_SIZE + sizeof (uint32_t))
          + (uint64_t) VDO_INDEX_BLOCK_CACHE_SLOTS * VDO_BLOCK_SIZE;
  for (i = 0; i < VDO_INDEX_SPARSE_CACHE_CHAPTERS; i++)
    if (index->sparse_cache[i].blocks)
      bytes += bpc * VDO_BLOCK_SIZE;
  return bytes;
}

static void
free_index_memory (struct vdo_dedupe_index *index)
{
  unsigned int i;

  if (!index->shared_queue)
    vdo_free_work_queue (index->queue);
  vdo_free_volume_index (index->volume_index);
  vdo_free_open_chapter (index->open_chapter);
  free (index->chapter_vcns);
  free (index->prefixes);
  free (index->writer.prefixes);
  vdo_io_free_buffer (index->writer.blocks);
  vdo_io_free_buffer (index->block_cache_data);
  for (i = 0; i < VDO_INDEX_SPARSE_CACHE_CHAPTERS; i++)
    vdo_io_free_buffer (index->sparse_cache[i].blocks);
  vdo_io_free_buffer (index->rebuild.buffer);
  free (index->rebuild.valid);
  pthread_mutex_destroy (&index->stats_lock);
  free (index);
}

int
vdo_make_dedupe_index (const struct vdo_dedupe_index_config *config,
                       struct vdo_dedupe_index **index_ret)
{
  struct vdo_dedupe_index *index;
  int result;

  index = calloc (1, sizeof *index);
  if (!index) {
    vdo_log_error ("dedupe index: out of memory");
    return ENOMEM;
  }
  index->config = *config;
  pthread_mutex_init (&index->stats_lock, NULL);

  result = compute_sizes (index);
  if (result == VDO_SUCCESS)
    result = allocate_index (index);
  if (result == VDO_SUCCESS)
    result = vdo_open_index_region (index);
  if (result != VDO_SUCCESS) {
    free_index_memory (index);
    return result;
  }

  index->stats.records_per_volume = index->records_per_chapter
                                    * index->chapters;
  index->stats.memory_bytes = memory_bytes (index);
  index->stats.rebuilding = index->rebuilding;
  refresh_volume_stats_locked (index);
  *index_ret = index;
  return VDO_SUCCESS;
}

int
vdo_start_dedupe_index (struct vdo_dedupe_index *index)
{
  int result;

  if (index->started)
    return UDS_BAD_STATE;
  result = index->shared_queue ? 0 : vdo_start_work_queue (index->queue);
  if (result != 0)
    return result;
  pthread_mutex_lock (&index->stats_lock);
  index->started = true;
  pthread_mutex_unlock (&index->stats_lock);
  if (index->rebuilding)
    vdo_launch_index_rebuild (index);
  return VDO_SUCCESS;
}

void
vdo_dedupe_index_share_queue (struct vdo_dedupe_index *index,
                              struct vdo_work_queue *queue)
{
  if (!index->shared_queue)
    vdo_free_work_queue (index->queue);
  index->queue = queue;
  index->shared_queue = true;
}

int
vdo_save_dedupe_index (struct vdo_dedupe_index *index)
{
  stop_index (index);
  if (index->config.read_only)
    return VDO_SUCCESS;
  if (index->rebuilding) {
    vdo_log_warning ("dedupe index: not saved, its rebuild had not "
                     "finished; the next start rebuilds again");
    return VDO_SUCCESS;
  }
  return vdo_write_index_save (index);
}

void
vdo_free_dedupe_index (struct vdo_dedupe_index *index)
{
  if (!index)
    return;
  stop_index (index);
  free_index_memory (index);
}

void
vdo_get_dedupe_index_stats (struct vdo_dedupe_index *index,
                            struct vdo_dedupe_index_stats *stats)
{
  pthread_mutex_lock (&index->stats_lock);
  *stats = index->stats;
  pthread_mutex_unlock (&index->stats_lock);
}
