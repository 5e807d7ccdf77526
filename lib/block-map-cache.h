/* nbdkit-vdo: the block map's leaf page cache, one per logical zone.
 *
 * A fixed number of 4 KiB page buffers, indexed by PBN.  Requests pin a
 * page while they use it; unpinned pages form LRU lists.  A miss takes a
 * free buffer, or evicts the least recently used clean page; when only
 * dirty pages are left, the oldest are written (through the zone's
 * writer) and the request waits until one of them is clean.  When every
 * page is pinned or in flight, requests wait in arrival order.  Memory is
 * bounded by the page count, whatever the logical size.
 *
 * Pages read from disk are classified as vdo-format.md 5.6 says: a valid
 * page is used as is; an INVALID one (never written by this VDO) is
 * formatted in memory as an empty page that was never valid on disk, so
 * its first write goes out twice; a BAD one (a good page at the wrong
 * PBN) fails the request with VDO_BAD_PAGE and puts the VDO in read-only
 * mode.  A read error also enters read-only mode; its waiters get
 * VDO_READ_ONLY.
 *
 * The cache does not know what a page is for: the block map keeps leaf
 * pages here, and recovery may load any block map page by PBN and set its
 * slots directly (vdo-journals.md 7.3 R6).  Everything runs on the zone's
 * thread.
 */
#ifndef VDO_BLOCK_MAP_CACHE_H
#define VDO_BLOCK_MAP_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "block-map-format.h"
#include "block-map-writer.h"
#include "constants.h"
#include "page-mappings.h"
#include "read-only.h"
#include "vio.h"
#include "work-queue.h"

/* Fewer pages could leave a zone unable to make progress while requests
 * hold pins. */
#define VDO_PAGE_CACHE_MIN_PAGES 4

struct vdo_page_cache;
struct vdo_cache_page;

/* A request to pin the page at PBN.  The requester prepares the
 * completion (callback on the zone's queue) and owns the request until
 * the completion runs or vdo_get_cache_page returns true. */
struct vdo_page_request {
  struct vdo_completion completion;
  physical_block_number_t pbn;
  /* Rebuild (vdo-journals.md 7.4 B4): a page that cannot be read counts
   * as never written instead of failing. */
  bool empty_on_read_error;
  /* Output: the pinned page, when the result is VDO_SUCCESS. */
  struct vdo_cache_page *page;
  /* Private: the queue the request waits in. */
  struct vdo_page_request *next;
};

struct vdo_page_cache_config {
  unsigned int zone_number;             /* for messages */
  block_count_t page_count;             /* at least VDO_PAGE_CACHE_MIN_PAGES */
  nonce_t nonce;
  struct vdo_work_queue *queue;
  const struct vdo_block_device *device;
  struct vdo_block_map_writer *writer;
  struct vdo_read_only_notifier *read_only;
  /* Serving read-only: journal changes laid over every page as it is
   * loaded, never written (NULL: none). */
  const struct vdo_page_mappings *overlay;
};

/* Readable from any thread. */
struct vdo_page_cache_stats {
  uint64_t page_count;                  /* capacity */
  uint64_t pages_cached;                /* holding a page */
  uint64_t pages_read;
  uint64_t hits;
  uint64_t misses;
};

int vdo_make_page_cache (const struct vdo_page_cache_config *config,
                         struct vdo_page_cache **cache);
/* The cache must be idle: no read in flight, no page pinned, no writes in
 * flight in its writer. */
void vdo_free_page_cache (struct vdo_page_cache *cache);

/* Pin the page at request->pbn.  Returns true when it was ready at once
 * (request->page is set and the completion is left alone); otherwise the
 * completion is enqueued once the page is pinned, or with an error. */
bool vdo_get_cache_page (struct vdo_page_cache *cache,
                         struct vdo_page_request *request);

/* Unpin a page; it must not be used afterwards. */
void vdo_release_cache_page (struct vdo_page_cache *cache,
                             struct vdo_cache_page *page);

/* A pinned page's contents: read freely; change only through
 * vdo_set_cache_page_entry, or change and then call
 * vdo_note_cache_page_update. */
uint8_t *vdo_cache_page_data (struct vdo_cache_page *page);
physical_block_number_t vdo_cache_page_pbn (const struct vdo_cache_page *page);

/* Store a slot of a pinned page and mark it dirty for journal block
 * recovery_block (0: no journal lock, as in recovery). */
void vdo_set_cache_page_entry (struct vdo_page_cache *cache,
                               struct vdo_cache_page *page, unsigned int slot,
                               struct vdo_data_location location,
                               sequence_number_t recovery_block);

/* Mark a pinned page dirty after changing its data directly. */
void vdo_note_cache_page_update (struct vdo_page_cache *cache,
                                 struct vdo_cache_page *page,
                                 sequence_number_t recovery_block);

/* A leaf page has just been allocated at pbn: its next load formats it in
 * memory instead of reading whatever the block held. */
void vdo_expect_fresh_cache_page (struct vdo_page_cache *cache,
                                  physical_block_number_t pbn);

void vdo_get_page_cache_stats (const struct vdo_page_cache *cache,
                               struct vdo_page_cache_stats *stats);

#endif /* VDO_BLOCK_MAP_CACHE_H */
