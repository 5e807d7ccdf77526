/* nbdkit-vdo: visiting many block map pages through one zone's cache. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "logger.h"
#include "page-sweep.h"
#include "status.h"

struct page_sweep;

struct sweep_slot {
  struct vdo_page_request request;
  struct page_sweep *sweep;
  size_t index;
  struct sweep_slot *next_free;
};

struct page_sweep {
  struct vdo_page_sweep_config config;
  struct vdo_completion start;
  struct vdo_sync_completion done;
  struct sweep_slot *slots;
  struct sweep_slot *free_slots;
  size_t next;                          /* the next page to request */
  unsigned int outstanding;             /* requests the cache still owes */
  int result;
};

static void
free_slot (struct page_sweep *sweep, struct sweep_slot *slot)
{
  slot->next_free = sweep->free_slots;
  sweep->free_slots = slot;
}

static void
visit (struct page_sweep *sweep, struct sweep_slot *slot)
{
  const struct vdo_page_sweep_config *config = &sweep->config;
  struct vdo_cache_page *page = slot->request.page;

  if (sweep->result == VDO_SUCCESS)
    sweep->result = config->visit (config->context, config->cache, page,
                                   slot->index);
  vdo_release_cache_page (config->cache, page);
  free_slot (sweep, slot);
}

static void page_ready (struct vdo_completion *completion);

/* Request pages while there are free slots; pages already in the cache
 * are visited at once, in the loop, so hits never recurse.  The sweep
 * ends when nothing is left to request or an error stopped it, and no
 * request is outstanding. */
static void
fill_window (struct page_sweep *sweep)
{
  const struct vdo_page_sweep_config *config = &sweep->config;

  while (sweep->result == VDO_SUCCESS && sweep->next < config->page_count
         && sweep->free_slots != NULL) {
    struct sweep_slot *slot = sweep->free_slots;

    sweep->free_slots = slot->next_free;
    slot->index = sweep->next++;
    vdo_prepare_completion (&slot->request.completion, page_ready,
                            config->queue, slot);
    slot->request.pbn = config->pbn_of (config->context, slot->index);
    slot->request.empty_on_read_error = config->empty_on_read_error;
    if (vdo_get_cache_page (config->cache, &slot->request))
      visit (sweep, slot);
    else
      sweep->outstanding++;
  }
  if (sweep->outstanding == 0)
    vdo_finish_completion (&sweep->done.completion, sweep->result);
}

static void
page_ready (struct vdo_completion *completion)
{
  struct sweep_slot *slot = completion->parent;
  struct page_sweep *sweep = slot->sweep;

  sweep->outstanding--;
  if (completion->result != VDO_SUCCESS) {
    if (sweep->result == VDO_SUCCESS)
      sweep->result = completion->result;
    free_slot (sweep, slot);
  }
  else
    visit (sweep, slot);
  fill_window (sweep);
}

static void
start_sweep (struct vdo_completion *completion)
{
  fill_window (completion->parent);
}

int
vdo_sweep_pages (const struct vdo_page_sweep_config *config)
{
  struct page_sweep *sweep;
  unsigned int window = config->window > 0 ? config->window : 1;
  unsigned int i;
  int result;

  if (config->page_count == 0)
    return VDO_SUCCESS;
  sweep = calloc (1, sizeof *sweep);
  if (sweep != NULL)
    sweep->slots = calloc (window, sizeof *sweep->slots);
  if (sweep == NULL || sweep->slots == NULL) {
    vdo_log_error ("cannot allocate a sweep of %u block map pages", window);
    free (sweep);
    return ENOMEM;
  }
  sweep->config = *config;
  for (i = 0; i < window; i++) {
    sweep->slots[i].sweep = sweep;
    free_slot (sweep, &sweep->slots[i]);
  }
  vdo_init_sync_completion (&sweep->done, config->queue, sweep);
  vdo_prepare_completion (&sweep->start, start_sweep, config->queue, sweep);
  vdo_enqueue_completion (&sweep->start);
  result = vdo_wait_sync_completion (&sweep->done);
  free (sweep->slots);
  free (sweep);
  return result;
}

unsigned int
vdo_sweep_window (const struct vdo_page_cache *cache, unsigned int limit)
{
  struct vdo_page_cache_stats stats;
  uint64_t half;

  vdo_get_page_cache_stats (cache, &stats);
  half = stats.page_count / 2;
  if (half > limit)
    half = limit;
  return half > 0 ? (unsigned int) half : 1;
}
