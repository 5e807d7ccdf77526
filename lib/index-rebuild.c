/* nbdkit-vdo: rebuilding the dedupe index from the chapters on disk.
 *
 * Runs on the index thread one read at a time, so requests (answered
 * at once as unanswered meanwhile) never wait behind it: first the
 * first block of every physical chapter, to find the newest VCN; then
 * every chapter of the window, oldest to newest, each name put into the
 * volume index with its chapter (uds-index.md 5.8).  Blocks that are
 * torn, foreign or of another VCN are skipped.  It only reads, so a
 * read-only index rebuilds too.
 */
#include <config.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dedupe-index-internal.h"
#include "logger.h"
#include "status.h"

static void rebuild_step (struct vdo_completion *completion);

bool
vdo_index_rebuild_is_idle (const struct vdo_dedupe_index *index)
{
  return !index->rebuild.read.busy;
}

static double
seconds_since (const struct timespec *start)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return (double) (now.tv_sec - start->tv_sec)
         + (double) (now.tv_nsec - start->tv_nsec) / 1e9;
}

static void
finish_rebuild (struct vdo_dedupe_index *index)
{
  struct index_rebuild *rebuild = &index->rebuild;
  struct vdo_volume_index_stats vstats;

  index->rebuilding = false;
  vdo_volume_index_get_stats (index->volume_index, &vstats);
  pthread_mutex_lock (&index->stats_lock);
  index->stats.rebuilding = false;
  index->stats.entries_indexed = vstats.entries;
  pthread_mutex_unlock (&index->stats_lock);
  vdo_log_info ("dedupe index: rebuild done in %.3f s: %" PRIu64
                " chapters and %" PRIu64 " records replayed, %" PRIu64
                " bad blocks skipped; the open chapter is %" PRIu64,
                seconds_since (&rebuild->started),
                rebuild->chapters_replayed, rebuild->records_replayed,
                rebuild->blocks_skipped, index->open_vcn);
}

static void
probe_done (struct vdo_dedupe_index *index)
{
  struct index_rebuild *rebuild = &index->rebuild;
  struct vdo_record_block_header header;
  uint32_t physical = rebuild->next_physical++;

  if (vdo_decode_record_block_header (rebuild->buffer, &header) == VDO_SUCCESS
      && header.instance_nonce == index->instance_nonce
      && header.block_index == 0 && header.vcn % index->chapters == physical
      && header.vcn < VDO_INDEX_NO_VCN - index->chapters
      && (!rebuild->any_found || header.vcn > rebuild->newest_vcn)) {
    rebuild->newest_vcn = header.vcn;
    rebuild->any_found = true;
  }
  if (rebuild->next_physical < index->chapters)
    return;

  if (!rebuild->any_found) {
    finish_rebuild (index);
    return;
  }
  /* The physical chapter after the newest is the open one's: whatever
   * it holds has left the window. */
  index->open_vcn = rebuild->newest_vcn + 1;
  vdo_volume_index_set_open_chapter (index->volume_index, index->open_vcn);
  rebuild->next_vcn = index->open_vcn >= index->chapters
                      ? index->open_vcn - index->chapters + 1 : 0;
  rebuild->phase = REBUILD_REPLAY;
}

static void
replay_done (struct vdo_dedupe_index *index)
{
  struct index_rebuild *rebuild = &index->rebuild;
  uint64_t vcn = rebuild->next_vcn++;
  uint32_t physical = (uint32_t) (vcn % index->chapters);
  uint32_t *prefixes = vdo_index_chapter_prefixes (index, physical);
  bool sparse = vdo_index_chapter_is_sparse (index, vcn);
  uint32_t bpc = index->layout.blocks_per_chapter;
  uint32_t b, i, valid_blocks = 0, next = UINT32_MAX;
  bool *valid = rebuild->valid;

  for (b = 0; b < bpc; b++) {
    const uint8_t *block = rebuild->buffer + (size_t) b * VDO_BLOCK_SIZE;
    uint32_t count;

    valid[b] = vdo_index_block_is_valid (index, block, vcn, b);
    if (!valid[b]) {
      rebuild->blocks_skipped++;
      continue;
    }
    valid_blocks++;
    count = vdo_record_block_count (block);
    prefixes[b] = count > 0
                  ? vdo_chunk_name_prefix ((const struct vdo_chunk_name *)
                                           vdo_record_block_record (block, 0))
                  : UINT32_MAX;
    for (i = 0; i < count; i++) {
      const struct vdo_chunk_name *name =
        (const struct vdo_chunk_name *) vdo_record_block_record (block, i);

      /* Old chapters of a sparse index keep only their hooks. */
      if (sparse && !vdo_chunk_name_is_hook (name, index->sample_rate))
        continue;
      vdo_volume_index_put (index->volume_index, name, vcn, VDO_NO_CHAPTER);
      rebuild->records_replayed++;
    }
  }
  /* A bad block takes the next good block's prefix: prefixes stay in
   * order and names of the good block before it still map there. */
  for (b = bpc; b-- > 0;) {
    if (valid[b])
      next = prefixes[b];
    else
      prefixes[b] = next;
  }
  if (valid_blocks > 0) {
    index->chapter_vcns[physical] = vcn;
    rebuild->chapters_replayed++;
  }
  else {
    /* Never written in this index, or wholly torn. */
    rebuild->blocks_skipped -= index->layout.blocks_per_chapter;
  }
}

static void
rebuild_read_done (struct vdo_completion *completion)
{
  struct vdo_dedupe_index *index = completion->parent;
  struct index_rebuild *rebuild = &index->rebuild;

  rebuild->read.busy = false;
  if (rebuild->read.result != 0) {
    vdo_log_error ("dedupe index: rebuild stopped by a read error (%s); "
                   "the index keeps what was replayed",
                   vdo_status_to_string (rebuild->read.result));
    finish_rebuild (index);
    vdo_check_index_drained (index);
    return;
  }
  if (rebuild->phase == REBUILD_PROBE)
    probe_done (index);
  else
    replay_done (index);
  if (index->rebuilding)
    rebuild_step (&rebuild->step);
  vdo_check_index_drained (index);
}

static void
rebuild_step (struct vdo_completion *completion)
{
  struct vdo_dedupe_index *index = completion->parent;
  struct index_rebuild *rebuild = &index->rebuild;

  if (index->closing) {
    vdo_log_info ("dedupe index: rebuild interrupted by shutdown after %.3f "
                  "s; the next start rebuilds again",
                  seconds_since (&rebuild->started));
    vdo_check_index_drained (index);
    return;
  }
  if (rebuild->phase == REBUILD_PROBE) {
    vdo_submit_index_read (index, &rebuild->read,
                           vdo_index_chapter_block (&index->layout,
                                                    rebuild->next_physical,
                                                    0),
                           1, rebuild->buffer);
    return;
  }
  if (rebuild->next_vcn < index->open_vcn) {
    vdo_submit_index_read (index, &rebuild->read,
                           vdo_index_chapter_block
                             (&index->layout,
                              (uint32_t) (rebuild->next_vcn
                                          % index->chapters), 0),
                           index->layout.blocks_per_chapter, rebuild->buffer);
    return;
  }
  finish_rebuild (index);
}

void
vdo_launch_index_rebuild (struct vdo_dedupe_index *index)
{
  struct index_rebuild *rebuild = &index->rebuild;

  memset (rebuild, 0, sizeof *rebuild);
  rebuild->phase = REBUILD_PROBE;
  clock_gettime (CLOCK_MONOTONIC, &rebuild->started);
  rebuild->buffer = vdo_io_alloc_buffer ((size_t) index->layout
                                         .blocks_per_chapter * VDO_BLOCK_SIZE);
  rebuild->valid = calloc (index->layout.blocks_per_chapter,
                           sizeof *rebuild->valid);
  if (!rebuild->buffer || !rebuild->valid) {
    vdo_log_error ("dedupe index: no memory to rebuild; starting empty");
    finish_rebuild (index);
    return;
  }
  vdo_init_index_io (index, &rebuild->read, rebuild_read_done, index);
  vdo_prepare_completion (&rebuild->step, rebuild_step, index->queue, index);
  pthread_mutex_lock (&index->stats_lock);
  index->stats.rebuilding = true;
  pthread_mutex_unlock (&index->stats_lock);
  vdo_log_info ("dedupe index: rebuild started: %" PRIu32 " chapters of %"
                PRIu32 " blocks", index->chapters,
                index->layout.blocks_per_chapter);
  vdo_enqueue_completion (&rebuild->step);
}
