/* nbdkit-vdo: block map page write-back, per logical zone. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "block-map-format.h"
#include "block-map-writer.h"
#include "io.h"
#include "logger.h"
#include "status.h"

/* One page write in flight, with the copy it writes. */
struct page_write {
  struct vdo_vio vio;
  struct vdo_block_map_writer *writer;
  uint8_t *buffer;
  struct vdo_dirty_page *page;
  /* The lock this copy's updates hold, released when it is on disk. */
  sequence_number_t lock;
  /* The copy goes out with initialized = 1: no second write follows. */
  bool final;
  struct page_write *next_free;
};

struct vdo_block_map_writer {
  unsigned int zone_number;
  struct vdo_work_queue *queue;
  const struct vdo_block_device *device;
  struct vdo_journal_lock_counter *journal_locks;
  struct vdo_read_only_notifier *read_only;

  /* Dirty pages not yet queued, oldest lock first (no lock counts as
   * oldest), so write-back by age takes a prefix. */
  struct vdo_list_head dirty;
  /* Pages chosen for writing, in the order chosen. */
  struct vdo_list_head pending;

  /* Updates get the current generation; a flush issued now covers every
   * generation up to the current one.  A queued page may be written once
   * a flush covering its generation has completed. */
  uint64_t generation;
  uint64_t flush_target;
  uint64_t flushed_generation;
  uint64_t newest_queued_generation;
  bool flushing;
  struct vdo_vio flush_vio;

  struct page_write *writes;
  unsigned int write_count;
  struct page_write *free_writes;
  unsigned int writes_in_flight;

  GSList *drain_waiters;
  bool kicking;
  bool kick_again;

  atomic_uint_fast64_t dirty_pages;
  atomic_uint_fast64_t pages_written;
  atomic_uint_fast64_t flushes;
};

static void kick (struct vdo_block_map_writer *writer);

static void
count (atomic_uint_fast64_t *counter, int64_t delta)
{
  /* Only the zone thread changes the counters; others just read them. */
  atomic_store_explicit (counter,
                         atomic_load_explicit (counter, memory_order_relaxed)
                         + (uint64_t) delta, memory_order_relaxed);
}

int
vdo_make_block_map_writer (const struct vdo_block_map_writer_config *config,
                           struct vdo_block_map_writer **writer_ret)
{
  struct vdo_block_map_writer *w;
  unsigned int i;

  *writer_ret = NULL;
  w = calloc (1, sizeof *w);
  if (w == NULL)
    goto no_memory;
  w->zone_number = config->zone_number;
  w->queue = config->queue;
  w->device = config->device;
  w->journal_locks = config->journal_locks;
  w->read_only = config->read_only;
  vdo_list_init (&w->dirty);
  vdo_list_init (&w->pending);
  w->generation = 1;
  w->write_count = config->write_vios > 0 ? config->write_vios : 1;
  w->writes = calloc (w->write_count, sizeof *w->writes);
  if (w->writes == NULL)
    goto no_memory;
  for (i = 0; i < w->write_count; i++) {
    struct page_write *write = &w->writes[i];

    write->writer = w;
    write->buffer = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
    if (write->buffer == NULL)
      goto no_memory;
    write->next_free = w->free_writes;
    w->free_writes = write;
  }
  atomic_init (&w->dirty_pages, 0);
  atomic_init (&w->pages_written, 0);
  atomic_init (&w->flushes, 0);
  *writer_ret = w;
  return VDO_SUCCESS;

 no_memory:
  vdo_log_error ("cannot allocate the block map writer of logical zone %u",
                 config->zone_number);
  vdo_free_block_map_writer (w);
  return ENOMEM;
}

void
vdo_free_block_map_writer (struct vdo_block_map_writer *w)
{
  unsigned int i;

  if (w == NULL)
    return;
  if (w->writes != NULL)
    for (i = 0; i < w->write_count; i++)
      vdo_io_free_buffer (w->writes[i].buffer);
  free (w->writes);
  g_slist_free (w->drain_waiters);
  free (w);
}

void
vdo_init_dirty_page (struct vdo_dirty_page *page, uint8_t *data,
                     physical_block_number_t pbn, bool fresh,
                     vdo_page_written_fn written)
{
  memset (page, 0, sizeof *page);
  page->data = data;
  page->pbn = pbn;
  page->fresh = fresh;
  page->written = written;
  vdo_list_init (&page->link);
}

static bool
is_read_only (const struct vdo_block_map_writer *w)
{
  return vdo_is_read_only (w->read_only);
}

static void
release_lock (struct vdo_block_map_writer *w, sequence_number_t block)
{
  int result = vdo_release_journal_lock (w->journal_locks, block,
                                         VDO_ZONE_TYPE_LOGICAL, 1);

  /* The counter logged the imbalance; the locks can no longer be
   * trusted to protect the journal. */
  if (result != VDO_SUCCESS)
    vdo_enter_read_only_mode (w->read_only, result);
}

static struct vdo_dirty_page *
page_of (struct vdo_list_head *link)
{
  return vdo_list_item (link, struct vdo_dirty_page, link);
}

static void
insert_dirty (struct vdo_block_map_writer *w, struct vdo_dirty_page *page)
{
  struct vdo_list_head *position = w->dirty.prev;

  /* Locks mostly grow, so the walk from the tail is usually empty. */
  while (position != &w->dirty
         && page_of (position)->recovery_lock > page->recovery_lock)
    position = position->prev;
  vdo_list_insert_after (position, &page->link);
}

static void
queue_page (struct vdo_block_map_writer *w, struct vdo_dirty_page *page)
{
  if (!page->dirty || page->queued)
    return;
  vdo_list_remove (&page->link);
  vdo_list_add_tail (&w->pending, &page->link);
  page->queued = true;
  if (page->generation > w->newest_queued_generation)
    w->newest_queued_generation = page->generation;
}

static void
queue_all_dirty (struct vdo_block_map_writer *w)
{
  while (!vdo_list_is_empty (&w->dirty))
    queue_page (w, page_of (w->dirty.next));
}

void
vdo_note_page_update (struct vdo_block_map_writer *w,
                      struct vdo_dirty_page *page,
                      sequence_number_t recovery_block)
{
  bool reposition = false;

  page->generation = w->generation;
  if (!page->dirty) {
    page->dirty = true;
    count (&w->dirty_pages, 1);
    reposition = true;
  }
  if (recovery_block != 0
      && (page->recovery_lock == 0 || recovery_block < page->recovery_lock)) {
    /* The new lock is taken before the old one goes, so the journal never
     * sees the page unprotected. */
    vdo_acquire_journal_lock (w->journal_locks, recovery_block,
                              VDO_ZONE_TYPE_LOGICAL, 1);
    if (page->recovery_lock != 0)
      release_lock (w, page->recovery_lock);
    page->recovery_lock = recovery_block;
    reposition = true;
  }
  if (page->queued) {
    w->newest_queued_generation = w->generation;
    return;
  }
  if (reposition) {
    vdo_list_remove (&page->link);
    insert_dirty (w, page);
  }
  if (w->drain_waiters != NULL) {
    queue_page (w, page);
    kick (w);
  }
}

void
vdo_write_dirty_page (struct vdo_block_map_writer *w,
                      struct vdo_dirty_page *page)
{
  queue_page (w, page);
  kick (w);
}

void
vdo_write_pages_older_than (struct vdo_block_map_writer *w,
                            sequence_number_t recovery_block)
{
  while (!vdo_list_is_empty (&w->dirty)
         && page_of (w->dirty.next)->recovery_lock <= recovery_block)
    queue_page (w, page_of (w->dirty.next));
  kick (w);
}

void
vdo_drain_block_map_writer (struct vdo_block_map_writer *w,
                            struct vdo_completion *completion)
{
  w->drain_waiters = g_slist_append (w->drain_waiters, completion);
  kick (w);
}

void
vdo_forget_dirty_page (struct vdo_block_map_writer *w,
                       struct vdo_dirty_page *page)
{
  if (page->dirty)
    count (&w->dirty_pages, -1);
  vdo_list_remove (&page->link);
  page->dirty = false;
  page->queued = false;
}

void
vdo_get_block_map_writer_stats (const struct vdo_block_map_writer *w,
                                struct vdo_block_map_writer_stats *stats)
{
  stats->dirty_pages = atomic_load_explicit (&w->dirty_pages,
                                             memory_order_relaxed);
  stats->pages_written = atomic_load_explicit (&w->pages_written,
                                               memory_order_relaxed);
  stats->flushes = atomic_load_explicit (&w->flushes, memory_order_relaxed);
}

/* Put a page whose write did not complete back among the dirty pages,
 * taking back the lock its copy held. */
static void
restore_page (struct vdo_block_map_writer *w, struct vdo_dirty_page *page,
              sequence_number_t lock)
{
  if (!page->dirty) {
    page->dirty = true;
    count (&w->dirty_pages, 1);
  }
  if (lock != 0) {
    if (page->recovery_lock == 0)
      page->recovery_lock = lock;
    else if (lock < page->recovery_lock) {
      release_lock (w, page->recovery_lock);
      page->recovery_lock = lock;
    }
    else
      release_lock (w, lock);
  }
  if (!page->queued) {
    vdo_list_remove (&page->link);
    insert_dirty (w, page);
  }
}

static void
finish_write (struct page_write *write, bool succeeded)
{
  struct vdo_block_map_writer *w = write->writer;
  struct vdo_dirty_page *page = write->page;

  page->writing = false;
  if (succeeded) {
    if (page->fresh) {
      page->fresh = false;
      vdo_set_block_map_page_initialized (page->data, true);
    }
    if (write->lock != 0)
      release_lock (w, write->lock);
  }
  else
    restore_page (w, page, write->lock);

  write->page = NULL;
  write->next_free = w->free_writes;
  w->free_writes = write;
  w->writes_in_flight--;
  if (page->written != NULL)
    page->written (page);
  kick (w);
}

static void submit_write (struct page_write *write, bool preflush);

static void
write_done (struct vdo_completion *completion)
{
  struct page_write *write = completion->parent;
  struct vdo_block_map_writer *w = write->writer;
  int result = completion->result;

  if (result != VDO_SUCCESS) {
    vdo_enter_read_only_mode (w->read_only, result);
    finish_write (write, false);
    return;
  }
  if (!write->final) {
    /* The uninitialized copy is on disk; now the real one, after a flush
     * so it can only land once the first is durable. */
    if (is_read_only (w)) {
      finish_write (write, false);
      return;
    }
    write->final = true;
    vdo_set_block_map_page_initialized (write->buffer, true);
    submit_write (write, true);
    return;
  }
  finish_write (write, true);
}

static void
submit_write (struct page_write *write, bool preflush)
{
  struct vdo_block_map_writer *w = write->writer;

  count (&w->pages_written, 1);
  vdo_submit_vio (&write->vio, w->device, VDO_IO_WRITE, write->page->pbn, 1,
                  write->buffer, preflush, false, write_done, w->queue, write);
}

static void
start_write (struct vdo_block_map_writer *w, struct vdo_dirty_page *page)
{
  struct page_write *write = w->free_writes;

  w->free_writes = write->next_free;
  w->writes_in_flight++;

  vdo_list_remove (&page->link);
  page->queued = false;
  /* This copy takes the page's updates and their lock; later updates
   * dirty the page again. */
  write->page = page;
  write->lock = page->recovery_lock;
  page->recovery_lock = 0;
  page->dirty = false;
  count (&w->dirty_pages, -1);
  page->writing = true;

  memcpy (write->buffer, page->data, VDO_BLOCK_SIZE);
  write->final = !page->fresh;
  vdo_set_block_map_page_initialized (write->buffer, write->final);
  submit_write (write, false);
}

static void
flush_done (struct vdo_completion *completion)
{
  struct vdo_block_map_writer *w = completion->parent;

  w->flushing = false;
  if (completion->result != VDO_SUCCESS)
    vdo_enter_read_only_mode (w->read_only, completion->result);
  else
    w->flushed_generation = w->flush_target;
  kick (w);
}

static void
start_flush (struct vdo_block_map_writer *w)
{
  w->flushing = true;
  w->flush_target = w->generation++;
  count (&w->flushes, 1);
  vdo_submit_flush (&w->flush_vio, w->device, flush_done, w->queue, w);
}

static void
submit_ready_pages (struct vdo_block_map_writer *w)
{
  struct vdo_list_head *link, *next;

  for (link = w->pending.next; link != &w->pending && w->free_writes != NULL;
       link = next) {
    struct vdo_dirty_page *page = page_of (link);

    next = link->next;
    /* One write of a page at a time, or they could land out of order. */
    if (page->writing || page->generation > w->flushed_generation)
      continue;
    start_write (w, page);
  }
  if (!w->flushing && !vdo_list_is_empty (&w->pending)
      && w->newest_queued_generation > w->flushed_generation)
    start_flush (w);
}

/* Read-only: nothing more is written; queued pages stay dirty.  Their
 * owners hear that the pages are idle again, so whoever waits for one
 * (a cache miss waiting for an eviction) learns the volume is read-only
 * instead of waiting forever. */
static void
abandon_pending (struct vdo_block_map_writer *w)
{
  while (!vdo_list_is_empty (&w->pending)) {
    struct vdo_dirty_page *page = page_of (w->pending.next);

    vdo_list_remove (&page->link);
    page->queued = false;
    insert_dirty (w, page);
    if (page->written != NULL)
      page->written (page);
  }
}

static void
check_for_drain_complete (struct vdo_block_map_writer *w)
{
  GSList *waiters, *item;
  int result;

  if (w->drain_waiters == NULL || w->writes_in_flight > 0 || w->flushing)
    return;
  if (is_read_only (w))
    result = VDO_READ_ONLY;
  else if (!vdo_list_is_empty (&w->pending) || !vdo_list_is_empty (&w->dirty))
    return;
  else
    result = VDO_SUCCESS;

  waiters = w->drain_waiters;
  w->drain_waiters = NULL;
  for (item = waiters; item != NULL; item = item->next)
    vdo_finish_completion (item->data, result);
  g_slist_free (waiters);
}

static void
kick (struct vdo_block_map_writer *w)
{
  /* Page callbacks may queue more pages while we are here. */
  if (w->kicking) {
    w->kick_again = true;
    return;
  }
  w->kicking = true;
  do {
    w->kick_again = false;
    if (is_read_only (w))
      abandon_pending (w);
    else {
      if (w->drain_waiters != NULL)
        queue_all_dirty (w);
      submit_ready_pages (w);
    }
    check_for_drain_complete (w);
  } while (w->kick_again);
  w->kicking = false;
}
