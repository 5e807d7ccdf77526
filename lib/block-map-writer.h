/* nbdkit-vdo: writing block map pages back to disk (vdo-journals.md 6.3
 * item 7, 8.1).
 *
 * Every block map page held in memory, leaf or interior, embeds a struct
 * vdo_dirty_page.  Each logical zone has one writer, which tracks the
 * pages holding updates not yet on disk and, for each, the oldest
 * recovery journal block those updates came from: the page holds a
 * LOGICAL lock on that block until a write containing the update has
 * completed in its final form, so the journal cannot be reaped past an
 * update that is only in memory.
 *
 * Writes follow dm-vdo's ordering rules:
 *  - every batch of page writes goes out after a device flush;
 *  - a page that was not valid on disk is written twice, first with
 *    initialized = 0, then, once that completed, with initialized = 1 and
 *    PREFLUSH, so a torn first write reads back as an empty page;
 *  - a write goes out from a copy of the page, so the page stays usable
 *    while it is in flight; updates made meanwhile leave the page dirty
 *    again, under their own lock, for a later write;
 *  - after any I/O error the zone enters read-only mode and writes nothing
 *    more.
 *
 * A writer and its pages belong to the zone's thread.
 */
#ifndef VDO_BLOCK_MAP_WRITER_H
#define VDO_BLOCK_MAP_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"
#include "journal-lock.h"
#include "read-only.h"
#include "vio.h"
#include "work-queue.h"

/* A circular doubly-linked list, embedded in the listed objects. */
struct vdo_list_head {
  struct vdo_list_head *prev, *next;
};

#define vdo_list_item(link, type, member) \
  ((type *) ((char *) (link) - offsetof (type, member)))

static inline void
vdo_list_init (struct vdo_list_head *head)
{
  head->prev = head->next = head;
}

static inline bool
vdo_list_is_empty (const struct vdo_list_head *head)
{
  return head->next == head;
}

static inline void
vdo_list_insert_after (struct vdo_list_head *position,
                       struct vdo_list_head *link)
{
  link->prev = position;
  link->next = position->next;
  position->next->prev = link;
  position->next = link;
}

static inline void
vdo_list_add_tail (struct vdo_list_head *head, struct vdo_list_head *link)
{
  vdo_list_insert_after (head->prev, link);
}

static inline void
vdo_list_add_head (struct vdo_list_head *head, struct vdo_list_head *link)
{
  vdo_list_insert_after (head, link);
}

/* Unlink; the link is left pointing at itself, so removing twice is
 * harmless. */
static inline void
vdo_list_remove (struct vdo_list_head *link)
{
  link->prev->next = link->next;
  link->next->prev = link->prev;
  vdo_list_init (link);
}

struct vdo_dirty_page;

/* Called on the zone thread after each write of the page ended, whether
 * it succeeded or not, and when read-only mode drops a queued page
 * unwritten, so the owner may reuse or evict it. */
typedef void (*vdo_page_written_fn) (struct vdo_dirty_page *page);

struct vdo_dirty_page {
  uint8_t *data;                        /* the page, VDO_BLOCK_SIZE bytes */
  physical_block_number_t pbn;
  /* Not valid on disk: the next write goes out twice. */
  bool fresh;
  /* Holds updates that no write has taken yet. */
  bool dirty;
  /* Waiting in the write queue. */
  bool queued;
  /* A write of an earlier copy is in flight. */
  bool writing;
  /* The oldest recovery journal block with an update in this page that no
   * write has taken; the page holds a LOGICAL lock on it.  0: none. */
  sequence_number_t recovery_lock;
  /* The writer generation of the last update (which flush covers it). */
  uint64_t generation;
  /* On the writer's dirty list (ordered by lock) or its write queue. */
  struct vdo_list_head link;
  vdo_page_written_fn written;
};

struct vdo_block_map_writer;

struct vdo_block_map_writer_config {
  unsigned int zone_number;             /* for messages */
  struct vdo_work_queue *queue;
  const struct vdo_block_device *device;
  struct vdo_journal_lock_counter *journal_locks;
  struct vdo_read_only_notifier *read_only;
  unsigned int write_vios;              /* writes in flight at most */
};

/* What a writer has done, readable from any thread. */
struct vdo_block_map_writer_stats {
  uint64_t dirty_pages;
  uint64_t pages_written;               /* write I/Os, both halves counted */
  uint64_t flushes;
};

int vdo_make_block_map_writer
  (const struct vdo_block_map_writer_config *config,
   struct vdo_block_map_writer **writer);
/* The zone must be idle: no write or flush in flight. */
void vdo_free_block_map_writer (struct vdo_block_map_writer *writer);

/* Set up a page that was read from disk (fresh when it was not valid
 * there) or formatted in memory.  It starts clean. */
void vdo_init_dirty_page (struct vdo_dirty_page *page, uint8_t *data,
                          physical_block_number_t pbn, bool fresh,
                          vdo_page_written_fn written);

/* Record an update just made to the page's data for recovery journal
 * block recovery_block (0: an update that holds no journal lock, as
 * recovery makes).  Takes the LOGICAL lock before returning when the page
 * had none, or only a newer one. */
void vdo_note_page_update (struct vdo_block_map_writer *writer,
                           struct vdo_dirty_page *page,
                           sequence_number_t recovery_block);

/* Queue a dirty page for writing now (cache pressure). */
void vdo_write_dirty_page (struct vdo_block_map_writer *writer,
                           struct vdo_dirty_page *page);

/* Queue every dirty page whose lock is on block recovery_block or older. */
void vdo_write_pages_older_than (struct vdo_block_map_writer *writer,
                                 sequence_number_t recovery_block);

/* Write every dirty page, including those dirtied meanwhile, and finish
 * COMPLETION once nothing is dirty or in flight: VDO_SUCCESS, or
 * VDO_READ_ONLY if writing stopped. */
void vdo_drain_block_map_writer (struct vdo_block_map_writer *writer,
                                 struct vdo_completion *completion);

/* Whether the page may be dropped from memory: clean, nothing in flight. */
static inline bool
vdo_is_page_idle (const struct vdo_dirty_page *page)
{
  return !page->dirty && !page->queued && !page->writing;
}

/* Drop a page from the writer's lists when its owner frees it without
 * writing it (teardown after read-only mode). */
void vdo_forget_dirty_page (struct vdo_block_map_writer *writer,
                            struct vdo_dirty_page *page);

void vdo_get_block_map_writer_stats (const struct vdo_block_map_writer *writer,
                                     struct vdo_block_map_writer_stats *stats);

#endif /* VDO_BLOCK_MAP_WRITER_H */
