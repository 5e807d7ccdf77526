/* nbdkit-vdo: the bounded leaf page cache of a logical zone. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <glib.h>

#include "block-map-cache.h"
#include "int-map.h"
#include "io.h"
#include "logger.h"
#include "status.h"

enum cache_page_state {
  PAGE_FREE,
  PAGE_INCOMING,                        /* being read */
  PAGE_PRESENT,
};

struct vdo_cache_page {
  struct vdo_dirty_page page;           /* data, PBN, dirty state */
  struct vdo_page_cache *cache;
  enum cache_page_state state;
  unsigned int busy;                    /* pins */
  /* Written to make room: clean afterwards, it goes first. */
  bool evicting;
  /* The read's error counts as an empty page (rebuild). */
  bool empty_on_read_error;
  /* Requests waiting for the read. */
  struct vdo_page_request *waiters, *last_waiter;
  struct vdo_vio vio;
  /* Unpinned pages: on the free, clean or dirty list. */
  struct vdo_list_head lru;
};

struct vdo_page_cache {
  unsigned int zone_number;
  block_count_t page_count;
  nonce_t nonce;
  struct vdo_work_queue *queue;
  const struct vdo_block_device *device;
  struct vdo_block_map_writer *writer;
  struct vdo_read_only_notifier *read_only;
  const struct vdo_page_mappings *overlay;

  struct vdo_cache_page *pages;
  uint8_t *buffers;
  struct vdo_int_map *page_map;         /* PBN -> page */
  GHashTable *fresh_pbns;               /* allocated leaves not yet loaded */

  struct vdo_list_head free_pages;
  /* Unpinned, clean and idle: least recently used first. */
  struct vdo_list_head clean_pages;
  /* Unpinned but dirty or being written. */
  struct vdo_list_head dirty_pages;

  /* Misses waiting for a buffer, in arrival order. */
  struct vdo_page_request *free_waiters, *last_free_waiter;
  unsigned int free_waiter_count;

  atomic_uint_fast64_t pages_cached;
  atomic_uint_fast64_t pages_read;
  atomic_uint_fast64_t hits;
  atomic_uint_fast64_t misses;
};

static void
count (atomic_uint_fast64_t *counter, int64_t delta)
{
  /* Only the zone thread changes the counters. */
  atomic_store_explicit (counter,
                         atomic_load_explicit (counter, memory_order_relaxed)
                         + (uint64_t) delta, memory_order_relaxed);
}

static struct vdo_cache_page *
page_of_lru (struct vdo_list_head *link)
{
  return vdo_list_item (link, struct vdo_cache_page, lru);
}

static struct vdo_cache_page *
cache_page_of (struct vdo_dirty_page *page)
{
  return vdo_list_item (page, struct vdo_cache_page, page);
}

int
vdo_make_page_cache (const struct vdo_page_cache_config *config,
                     struct vdo_page_cache **cache_ret)
{
  struct vdo_page_cache *c;
  block_count_t i;

  *cache_ret = NULL;
  if (config->page_count < VDO_PAGE_CACHE_MIN_PAGES) {
    vdo_log_error ("block map cache of logical zone %u has %" PRIu64
                   " pages; at least %d are needed", config->zone_number,
                   config->page_count, VDO_PAGE_CACHE_MIN_PAGES);
    return UDS_INVALID_ARGUMENT;
  }
  c = calloc (1, sizeof *c);
  if (c == NULL)
    goto no_memory;
  c->zone_number = config->zone_number;
  c->page_count = config->page_count;
  c->nonce = config->nonce;
  c->queue = config->queue;
  c->device = config->device;
  c->writer = config->writer;
  c->read_only = config->read_only;
  c->overlay = config->overlay;
  vdo_list_init (&c->free_pages);
  vdo_list_init (&c->clean_pages);
  vdo_list_init (&c->dirty_pages);
  c->page_map = vdo_int_map_new ();
  c->fresh_pbns = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                         NULL);
  c->pages = calloc (c->page_count, sizeof *c->pages);
  if (c->pages == NULL)
    goto no_memory;
  /* Anonymous memory is aligned for direct I/O and only takes RAM once a
   * page is used, so a large cache= costs nothing until it fills. */
  c->buffers = mmap (NULL, c->page_count * VDO_BLOCK_SIZE,
                     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                     0);
  if (c->buffers == MAP_FAILED) {
    c->buffers = NULL;
    goto no_memory;
  }
  for (i = 0; i < c->page_count; i++) {
    struct vdo_cache_page *cp = &c->pages[i];

    cp->cache = c;
    cp->state = PAGE_FREE;
    vdo_init_dirty_page (&cp->page, c->buffers + i * VDO_BLOCK_SIZE, 0,
                         false, NULL);
    vdo_list_init (&cp->lru);
    vdo_list_add_tail (&c->free_pages, &cp->lru);
  }
  atomic_init (&c->pages_cached, 0);
  atomic_init (&c->pages_read, 0);
  atomic_init (&c->hits, 0);
  atomic_init (&c->misses, 0);
  *cache_ret = c;
  return VDO_SUCCESS;

 no_memory:
  vdo_log_error ("cannot allocate the %" PRIu64 "-page block map cache of"
                 " logical zone %u", config->page_count, config->zone_number);
  vdo_free_page_cache (c);
  return ENOMEM;
}

void
vdo_free_page_cache (struct vdo_page_cache *c)
{
  block_count_t i;

  if (c == NULL)
    return;
  if (c->pages != NULL && c->writer != NULL)
    for (i = 0; i < c->page_count; i++)
      vdo_forget_dirty_page (c->writer, &c->pages[i].page);
  vdo_int_map_free (c->page_map);
  if (c->fresh_pbns != NULL)
    g_hash_table_destroy (c->fresh_pbns);
  if (c->buffers != NULL)
    munmap (c->buffers, c->page_count * VDO_BLOCK_SIZE);
  free (c->pages);
  free (c);
}

static struct vdo_cache_page *
find_page (struct vdo_page_cache *c, physical_block_number_t pbn)
{
  return vdo_int_map_get (c->page_map, pbn);
}

/* Put an unpinned page on the list that says what it can be used for. */
static void
place_unpinned (struct vdo_cache_page *cp)
{
  struct vdo_page_cache *c = cp->cache;

  vdo_list_remove (&cp->lru);
  if (!vdo_is_page_idle (&cp->page))
    vdo_list_add_tail (&c->dirty_pages, &cp->lru);
  else if (cp->evicting)
    vdo_list_add_head (&c->clean_pages, &cp->lru);
  else
    vdo_list_add_tail (&c->clean_pages, &cp->lru);
  if (vdo_is_page_idle (&cp->page))
    cp->evicting = false;
}

static void
pin (struct vdo_cache_page *cp)
{
  if (cp->busy++ == 0)
    vdo_list_remove (&cp->lru);
}

static void
complete_request (struct vdo_page_request *request, struct vdo_cache_page *cp,
                  int result)
{
  request->page = NULL;
  if (result == VDO_SUCCESS) {
    pin (cp);
    request->page = cp;
  }
  vdo_finish_completion (&request->completion, result);
}

/* A free buffer, taking the least recently used clean page if needed. */
static struct vdo_cache_page *
take_free_page (struct vdo_page_cache *c)
{
  struct vdo_cache_page *cp;

  if (!vdo_list_is_empty (&c->free_pages)) {
    cp = page_of_lru (c->free_pages.next);
    vdo_list_remove (&cp->lru);
    return cp;
  }
  if (vdo_list_is_empty (&c->clean_pages))
    return NULL;
  cp = page_of_lru (c->clean_pages.next);
  vdo_list_remove (&cp->lru);
  vdo_int_map_remove (c->page_map, cp->page.pbn);
  cp->state = PAGE_FREE;
  count (&c->pages_cached, -1);
  return cp;
}

/* Start writing the oldest dirty pages so that enough will become clean
 * for the requests waiting for a buffer. */
static void
schedule_evictions (struct vdo_page_cache *c)
{
  struct vdo_list_head *link;
  unsigned int upcoming = 0;

  for (link = c->dirty_pages.next;
       link != &c->dirty_pages && upcoming < c->free_waiter_count;
       link = link->next) {
    struct vdo_cache_page *cp = page_of_lru (link);

    /* Unpinned pages cannot change, so each will end up clean. */
    upcoming++;
    if (cp->page.queued || cp->page.writing)
      continue;
    cp->evicting = true;
    vdo_write_dirty_page (c->writer, &cp->page);
  }
}

static void
add_waiter (struct vdo_page_request **head, struct vdo_page_request **tail,
            struct vdo_page_request *request)
{
  request->next = NULL;
  if (*tail != NULL)
    (*tail)->next = request;
  else
    *head = request;
  *tail = request;
}

static void page_written (struct vdo_dirty_page *page);
static void page_loaded (struct vdo_completion *completion);

/* An empty page that was never valid on disk. */
static void
format_empty_page (struct vdo_cache_page *cp)
{
  struct vdo_page_cache *c = cp->cache;

  vdo_format_block_map_page (cp->page.data, c->nonce, cp->page.pbn, false);
  vdo_init_dirty_page (&cp->page, cp->page.data, cp->page.pbn, true,
                       page_written);
}

/* Give a free buffer to the page REQUEST wants.  True when the page is
 * ready at once (a freshly allocated leaf), pinned for the request. */
static bool
load_page (struct vdo_page_cache *c, struct vdo_cache_page *cp,
           struct vdo_page_request *request)
{
  physical_block_number_t pbn = request->pbn;

  cp->page.pbn = pbn;
  cp->busy = 0;
  cp->evicting = false;
  cp->waiters = cp->last_waiter = NULL;
  vdo_int_map_put (c->page_map, pbn, cp);
  count (&c->pages_cached, 1);
  if (g_hash_table_remove (c->fresh_pbns, &pbn)) {
    cp->state = PAGE_PRESENT;
    format_empty_page (cp);
    pin (cp);
    request->page = cp;
    return true;
  }
  cp->state = PAGE_INCOMING;
  cp->empty_on_read_error = request->empty_on_read_error;
  add_waiter (&cp->waiters, &cp->last_waiter, request);
  count (&c->pages_read, 1);
  vdo_submit_vio (&cp->vio, c->device, VDO_IO_READ, pbn, 1, cp->page.data,
                  false, false, page_loaded, c->queue, cp);
  return false;
}

/* Hand buffers to waiting misses, in order, while there are any. */
static void
serve_free_waiters (struct vdo_page_cache *c)
{
  while (c->free_waiters != NULL) {
    struct vdo_page_request *request = c->free_waiters;
    struct vdo_cache_page *cp = find_page (c, request->pbn);

    if (cp == NULL) {
      cp = take_free_page (c);
      if (cp == NULL) {
        if (vdo_is_read_only (c->read_only))
          break;
        schedule_evictions (c);
        return;
      }
    }
    c->free_waiters = request->next;
    if (c->free_waiters == NULL)
      c->last_free_waiter = NULL;
    c->free_waiter_count--;
    if (cp->state == PAGE_FREE) {
      if (load_page (c, cp, request))
        vdo_finish_completion (&request->completion, VDO_SUCCESS);
    }
    else if (cp->state == PAGE_INCOMING)
      add_waiter (&cp->waiters, &cp->last_waiter, request);
    else
      complete_request (request, cp, VDO_SUCCESS);
  }

  /* Read-only: dirty pages will never be written, so nothing frees up. */
  while (c->free_waiters != NULL) {
    struct vdo_page_request *request = c->free_waiters;

    c->free_waiters = request->next;
    c->free_waiter_count--;
    complete_request (request, NULL, VDO_READ_ONLY);
  }
  c->last_free_waiter = NULL;
}

static void
page_written (struct vdo_dirty_page *page)
{
  struct vdo_cache_page *cp = cache_page_of (page);

  if (cp->busy == 0 && cp->state == PAGE_PRESENT)
    place_unpinned (cp);
  serve_free_waiters (cp->cache);
}

static void
fail_load (struct vdo_cache_page *cp, int result)
{
  struct vdo_page_cache *c = cp->cache;
  struct vdo_page_request *request = cp->waiters;

  vdo_int_map_remove (c->page_map, cp->page.pbn);
  count (&c->pages_cached, -1);
  cp->state = PAGE_FREE;
  cp->waiters = cp->last_waiter = NULL;
  vdo_list_add_head (&c->free_pages, &cp->lru);
  while (request != NULL) {
    struct vdo_page_request *next = request->next;

    complete_request (request, NULL, result);
    request = next;
  }
  serve_free_waiters (c);
}

static void
page_loaded (struct vdo_completion *completion)
{
  struct vdo_cache_page *cp = completion->parent;
  struct vdo_page_cache *c = cp->cache;
  struct vdo_page_request *request;
  int result = completion->result;

  if (result != VDO_SUCCESS && !cp->empty_on_read_error) {
    vdo_enter_read_only_mode (c->read_only, result);
    fail_load (cp, VDO_READ_ONLY);
    return;
  }
  if (result != VDO_SUCCESS)
    format_empty_page (cp);
  else {
    enum vdo_block_map_page_validity validity
      = vdo_validate_block_map_page (cp->page.data, c->nonce, cp->page.pbn);
    struct vdo_block_map_page_header header;

    switch (validity) {
    case VDO_BLOCK_MAP_PAGE_VALID:
      vdo_init_dirty_page (&cp->page, cp->page.data, cp->page.pbn, false,
                           page_written);
      break;
    case VDO_BLOCK_MAP_PAGE_INVALID:
      format_empty_page (cp);
      break;
    case VDO_BLOCK_MAP_PAGE_BAD:
      vdo_decode_block_map_page_header (cp->page.data, &header);
      vdo_log_error ("block map page %" PRIu64 " holds the page of PBN %"
                     PRIu64 " instead", cp->page.pbn, header.pbn);
      vdo_enter_read_only_mode (c->read_only, VDO_BAD_PAGE);
      fail_load (cp, VDO_BAD_PAGE);
      return;
    }
  }
  /* Applied at every load, so an evicted page comes back the same; the
   * page stays clean, as nothing may be written. */
  if (c->overlay != NULL)
    vdo_overlay_page_mappings (c->overlay, cp->page.pbn, cp->page.data);
  cp->state = PAGE_PRESENT;
  request = cp->waiters;
  cp->waiters = cp->last_waiter = NULL;
  while (request != NULL) {
    struct vdo_page_request *next = request->next;

    complete_request (request, cp, VDO_SUCCESS);
    request = next;
  }
  if (cp->busy == 0)
    place_unpinned (cp);
}

bool
vdo_get_cache_page (struct vdo_page_cache *c, struct vdo_page_request *request)
{
  struct vdo_cache_page *cp = find_page (c, request->pbn);

  request->page = NULL;
  if (cp != NULL) {
    count (&c->hits, 1);
    if (cp->state == PAGE_INCOMING) {
      add_waiter (&cp->waiters, &cp->last_waiter, request);
      return false;
    }
    pin (cp);
    request->page = cp;
    return true;
  }

  count (&c->misses, 1);
  /* Misses take buffers in arrival order. */
  if (c->free_waiters == NULL) {
    cp = take_free_page (c);
    if (cp != NULL)
      return load_page (c, cp, request);
  }
  if (vdo_is_read_only (c->read_only)) {
    complete_request (request, NULL, VDO_READ_ONLY);
    return false;
  }
  add_waiter (&c->free_waiters, &c->last_free_waiter, request);
  c->free_waiter_count++;
  schedule_evictions (c);
  return false;
}

void
vdo_release_cache_page (struct vdo_page_cache *c, struct vdo_cache_page *cp)
{
  if (--cp->busy > 0)
    return;
  place_unpinned (cp);
  if (c->free_waiters != NULL)
    serve_free_waiters (c);
}

uint8_t *
vdo_cache_page_data (struct vdo_cache_page *cp)
{
  return cp->page.data;
}

physical_block_number_t
vdo_cache_page_pbn (const struct vdo_cache_page *cp)
{
  return cp->page.pbn;
}

void
vdo_set_cache_page_entry (struct vdo_page_cache *c, struct vdo_cache_page *cp,
                          unsigned int slot, struct vdo_data_location location,
                          sequence_number_t recovery_block)
{
  vdo_set_block_map_page_entry (cp->page.data, slot, location.pbn,
                                location.state);
  vdo_note_page_update (c->writer, &cp->page, recovery_block);
}

void
vdo_note_cache_page_update (struct vdo_page_cache *c,
                            struct vdo_cache_page *cp,
                            sequence_number_t recovery_block)
{
  vdo_note_page_update (c->writer, &cp->page, recovery_block);
}

void
vdo_expect_fresh_cache_page (struct vdo_page_cache *c,
                             physical_block_number_t pbn)
{
  physical_block_number_t *key;

  if (find_page (c, pbn) != NULL)
    return;
  key = g_new (physical_block_number_t, 1);
  *key = pbn;
  g_hash_table_add (c->fresh_pbns, key);
}

void
vdo_get_page_cache_stats (const struct vdo_page_cache *c,
                          struct vdo_page_cache_stats *stats)
{
  stats->page_count = c->page_count;
  stats->pages_cached = atomic_load_explicit (&c->pages_cached,
                                              memory_order_relaxed);
  stats->pages_read = atomic_load_explicit (&c->pages_read,
                                            memory_order_relaxed);
  stats->hits = atomic_load_explicit (&c->hits, memory_order_relaxed);
  stats->misses = atomic_load_explicit (&c->misses, memory_order_relaxed);
}
