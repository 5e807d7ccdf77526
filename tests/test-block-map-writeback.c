/* nbdkit-vdo: block map write-back: eviction from a tiny cache, writing
 * back by journal age, reopening a drained map, three zones growing trees
 * concurrently, read-only mode failing a miss that waits for an eviction,
 * and the forest traversal rebuild will use. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "block-map-test-util.h"
#include "status.h"
#include "unit-suites.h"

#define ENTRIES VDO_BLOCK_MAP_ENTRIES_PER_PAGE
#define ROOTS 60

static logical_block_number_t
lbn_in_tree (unsigned int r, uint64_t i, unsigned int s)
{
  return (i * ROOTS + r) * ENTRIES + s;
}

static void
check_mapping (logical_block_number_t lbn, physical_block_number_t pbn,
               unsigned int state)
{
  struct vdo_block_map_request request;

  ck_assert_int_eq (bm_lookup (lbn, false, &request), VDO_SUCCESS);
  ck_assert_msg (request.mapping.pbn == pbn && request.mapping.state == state,
                 "LBN %" PRIu64 " maps to (%" PRIu64 ", %u), expected (%"
                 PRIu64 ", %u)", lbn, request.mapping.pbn,
                 request.mapping.state, pbn, state);
}

static physical_block_number_t
leaf_of (logical_block_number_t lbn)
{
  struct vdo_block_map_request request;

  ck_assert_int_eq (bm_lookup (lbn, false, &request), VDO_SUCCESS);
  ck_assert (request.path_complete);
  return request.page_pbn;
}

START_TEST (test_tiny_cache_eviction)
{
  enum { LEAVES = 50 };
  physical_block_number_t data[LEAVES];
  struct vdo_block_map_statistics stats;
  sequence_number_t sequence = 1;
  unsigned int i;

  bm_make_map (1, 4);
  ck_assert_uint_eq (bm_stats ().cache_pages, 4);
  for (i = 0; i < LEAVES; i++) {
    data[i] = bm_allocate_pbn ();
    bm_map (lbn_in_tree (0, i, i), data[i], VDO_MAPPING_STATE_UNCOMPRESSED,
            sequence);
    sequence += 2;
  }
  /* Making room wrote dirty leaves before any drain. */
  stats = bm_stats ();
  ck_assert_uint_le (stats.pages_cached, 4);
  ck_assert_uint_gt (stats.pages_written, 0);
  ck_assert_uint_le (stats.dirty_pages, 4 + 4);

  /* Evicted leaves come back from disk with their mappings. */
  for (i = 0; i < LEAVES; i++)
    check_mapping (lbn_in_tree (0, i, i), data[i],
                   VDO_MAPPING_STATE_UNCOMPRESSED);
  stats = bm_stats ();
  ck_assert_uint_ge (stats.pages_read, LEAVES - 4);
  ck_assert_uint_ge (stats.cache_misses, LEAVES);

  /* Updating evicted leaves again, in a different order. */
  for (i = LEAVES; i-- > 0;)
    ck_assert_int_eq (bm_put (lbn_in_tree (0, i, i + 1), data[i],
                              VDO_MAPPING_STATE_UNCOMPRESSED, sequence++),
                      VDO_SUCCESS);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  for (i = 1; i < sequence; i++)
    ck_assert (!bm_is_locked (i));
  for (i = 0; i < LEAVES; i++) {
    check_mapping (lbn_in_tree (0, i, i), data[i],
                   VDO_MAPPING_STATE_UNCOMPRESSED);
    check_mapping (lbn_in_tree (0, i, i + 1), data[i],
                   VDO_MAPPING_STATE_UNCOMPRESSED);
  }
  ck_assert_uint_le (bm_stats ().pages_cached, 4);
}
END_TEST

/* Updates through slots found earlier, whose leaves the tiny cache has
 * evicted since: each comes back from disk by the PBN the lookup gave. */
START_TEST (test_update_found_after_eviction)
{
  enum { LEAVES = 12 };
  struct vdo_block_map_request requests[LEAVES];
  physical_block_number_t data[LEAVES];
  sequence_number_t sequence = 1;
  uint64_t reads;
  unsigned int i;

  bm_make_map (1, 4);
  for (i = 0; i < LEAVES; i++) {
    bm_map (lbn_in_tree (0, i, i), bm_allocate_pbn (),
            VDO_MAPPING_STATE_UNCOMPRESSED, sequence);
    sequence += 2;
  }
  for (i = 0; i < LEAVES; i++)
    ck_assert_int_eq (bm_lookup (lbn_in_tree (0, i, i), false, &requests[i]),
                      VDO_SUCCESS);
  reads = bm_stats ().pages_read;
  for (i = LEAVES; i-- > 0;) {
    data[i] = bm_allocate_pbn ();
    ck_assert_int_eq (bm_update_found (&requests[i], data[i],
                                       vdo_get_state_for_slot (i),
                                       sequence++), VDO_SUCCESS);
  }
  /* The last four looked up were still cached; the rest were read. */
  ck_assert_uint_ge (bm_stats ().pages_read - reads, LEAVES - 4);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  for (i = 1; i < sequence; i++)
    ck_assert (!bm_is_locked (i));
  for (i = 0; i < LEAVES; i++)
    check_mapping (lbn_in_tree (0, i, i), data[i], vdo_get_state_for_slot (i));
}
END_TEST

START_TEST (test_write_back_older_than)
{
  logical_block_number_t a = lbn_in_tree (0, 0, 0), b = lbn_in_tree (0, 1, 0);
  logical_block_number_t c = lbn_in_tree (0, 2, 0);
  physical_block_number_t data = bm_allocate_pbn ();
  physical_block_number_t leaf_a, leaf_b, leaf_c;
  uint8_t buffer[VDO_BLOCK_SIZE];
  struct vdo_block_map_request request;

  bm_make_map (1, 64);
  /* The path and leaf A under journal block 1, A's mapping under 10. */
  ck_assert_uint_eq (bm_grow (a, 1), 4);
  ck_assert_int_eq (bm_put (a, data, VDO_MAPPING_STATE_UNCOMPRESSED, 10),
                    VDO_SUCCESS);
  /* Leaves B and C hang from the same height-1 page, which keeps its lock
   * on block 1. */
  ck_assert_int_eq (bm_lookup (b, true, &request), VDO_SUCCESS);
  ck_assert_int_eq (bm_install (b, 0, bm_allocate_pbn (), 11), VDO_SUCCESS);
  ck_assert_int_eq (bm_put (b, data, VDO_MAPPING_STATE_UNCOMPRESSED, 20),
                    VDO_SUCCESS);
  ck_assert_int_eq (bm_lookup (c, true, &request), VDO_SUCCESS);
  ck_assert_int_eq (bm_install (c, 0, bm_allocate_pbn (), 21), VDO_SUCCESS);
  ck_assert_int_eq (bm_put (c, data, VDO_MAPPING_STATE_UNCOMPRESSED, 30),
                    VDO_SUCCESS);
  ck_assert (bm_is_locked (1));
  ck_assert (!bm_is_locked (11));
  ck_assert (!bm_is_locked (21));
  ck_assert_uint_eq (bm_stats ().dirty_pages, 7);
  leaf_a = leaf_of (a);
  leaf_b = leaf_of (b);
  leaf_c = leaf_of (c);

  vdo_block_map_write_back_older_than (bm.map, 20);
  bm_wait_unlocked (1);
  bm_wait_unlocked (10);
  bm_wait_unlocked (20);
  /* Exactly the six old pages went out, each twice (all were new). */
  ck_assert_uint_eq (bm_stats ().dirty_pages, 1);
  ck_assert_uint_eq (bm_stats ().pages_written, 12);
  ck_assert (bm_is_locked (30));
  ck_assert (bm_disk_page_is_valid (leaf_a, buffer));
  ck_assert (bm_disk_page_is_valid (leaf_b, buffer));
  ck_assert (!bm_disk_page_is_valid (leaf_c, buffer));

  vdo_block_map_write_back_older_than (bm.map, 30);
  bm_wait_unlocked (30);
  ck_assert (bm_disk_page_is_valid (leaf_c, buffer));
  ck_assert_uint_eq (bm_stats ().dirty_pages, 0);
  ck_assert_uint_eq (bm_stats ().pages_written, 14);
}
END_TEST

static void
check_disk_entry (physical_block_number_t page, unsigned int slot,
                  physical_block_number_t pbn, unsigned int state)
{
  uint8_t buffer[VDO_BLOCK_SIZE];
  struct vdo_data_location entry;

  ck_assert (bm_disk_page_is_valid (page, buffer));
  entry = vdo_get_block_map_page_entry (buffer, slot);
  ck_assert_uint_eq (entry.pbn, pbn);
  ck_assert_uint_eq (entry.state, state);
}

START_TEST (test_update_during_write)
{
  logical_block_number_t lbn = lbn_in_tree (4, 0, 10);
  logical_block_number_t fresh = lbn_in_tree (4, 1, 10);
  physical_block_number_t one = bm_allocate_pbn (), two = bm_allocate_pbn ();
  physical_block_number_t leaf, fresh_leaf;
  uint64_t written;
  uint8_t buffer[VDO_BLOCK_SIZE];

  bm_use_gate ();
  bm_make_map (1, 64);
  bm_map (lbn, one, VDO_MAPPING_STATE_UNCOMPRESSED, 1);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  leaf = leaf_of (lbn);
  written = bm_stats ().pages_written;

  /* A page valid on disk: its write is held while another update comes. */
  ck_assert_int_eq (bm_put (lbn, two, VDO_MAPPING_STATE_UNCOMPRESSED, 3),
                    VDO_SUCCESS);
  bm_close_gate ();
  vdo_block_map_write_back_older_than (bm.map, 3);
  bm_wait_held_writes (1);
  ck_assert_int_eq (bm_put (lbn + 1, two, VDO_MAPPING_STATE_UNCOMPRESSED, 4),
                    VDO_SUCCESS);
  ck_assert (bm_is_locked (3));
  ck_assert (bm_is_locked (4));
  ck_assert_uint_eq (bm_stats ().dirty_pages, 1);
  bm_open_gate ();
  bm_wait_unlocked (3);
  /* The write took only the first update; the page stays dirty for the
   * second, under its own lock. */
  ck_assert (bm_is_locked (4));
  ck_assert_uint_eq (bm_stats ().dirty_pages, 1);
  ck_assert_uint_eq (bm_stats ().pages_written, written + 1);
  check_disk_entry (leaf, 10, two, VDO_MAPPING_STATE_UNCOMPRESSED);
  check_disk_entry (leaf, 11, 0, VDO_MAPPING_STATE_UNMAPPED);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  ck_assert (!bm_is_locked (4));
  check_disk_entry (leaf, 11, two, VDO_MAPPING_STATE_UNCOMPRESSED);
  written = bm_stats ().pages_written;

  /* A new leaf: its first write (initialized = 0) is held while it is
   * updated again; the second write still follows, and the page, valid
   * on disk at last, needs one more write for the new update. */
  ck_assert_uint_eq (bm_grow (fresh, 5), 1);
  fresh_leaf = leaf_of (fresh);
  ck_assert_int_eq (bm_put (fresh, one, VDO_MAPPING_STATE_UNCOMPRESSED, 6),
                    VDO_SUCCESS);
  bm_close_gate ();
  vdo_block_map_write_back_older_than (bm.map, 6);
  /* The height-1 parent (lock 5) and the new leaf's first write. */
  bm_wait_held_writes (2);
  ck_assert_int_eq (bm_put (fresh + 1, two, VDO_MAPPING_STATE_UNCOMPRESSED,
                            7), VDO_SUCCESS);
  bm_read_block (fresh_leaf, buffer);
  ck_assert_int_ne (vdo_validate_block_map_page (buffer, bm.states.nonce,
                                                 fresh_leaf),
                    VDO_BLOCK_MAP_PAGE_VALID);
  bm_open_gate ();
  bm_wait_unlocked (5);
  bm_wait_unlocked (6);
  ck_assert (bm_is_locked (7));
  ck_assert_uint_eq (bm_stats ().pages_written, written + 3);
  check_disk_entry (fresh_leaf, 10, one, VDO_MAPPING_STATE_UNCOMPRESSED);
  check_disk_entry (fresh_leaf, 11, 0, VDO_MAPPING_STATE_UNMAPPED);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  ck_assert_uint_eq (bm_stats ().pages_written, written + 4);
  ck_assert (!bm_is_locked (7));
  check_disk_entry (fresh_leaf, 11, two, VDO_MAPPING_STATE_UNCOMPRESSED);
}
END_TEST

/* A deterministic spread of LBNs over the trees and the logical space. */
static logical_block_number_t
spread_lbn (unsigned int i)
{
  static const uint64_t leaf_indexes[] = { 0, 1, 7, 811, 812, 5000, 659344 };
  uint64_t leaf = leaf_indexes[i % G_N_ELEMENTS (leaf_indexes)];

  /* Distinct for i < 420, with room for two neighbours in the page. */
  return lbn_in_tree ((i * 7) % ROOTS, leaf, (i * 13) % (ENTRIES - 12));
}

START_TEST (test_reopen_after_drain)
{
  enum { COUNT = 300 };
  GHashTable *expected = g_hash_table_new_full (g_int64_hash, g_int64_equal,
                                                g_free, g_free);
  sequence_number_t sequence = 1;
  GHashTableIter iter;
  gpointer key, value;
  unsigned int i;

  bm_make_map (1, 32);
  for (i = 0; i < COUNT; i++) {
    logical_block_number_t *lbn = g_new (logical_block_number_t, 1);
    struct vdo_data_location *mapping = g_new (struct vdo_data_location, 1);

    *lbn = spread_lbn (i);
    mapping->pbn = i % 5 == 0 ? 0 : bm_allocate_pbn ();
    mapping->state = i % 5 == 0 ? VDO_MAPPING_STATE_UNCOMPRESSED
                     : (enum vdo_mapping_state) (1 + i % 15);
    bm_map (*lbn, mapping->pbn, mapping->state, sequence);
    sequence += 2;
    g_hash_table_replace (expected, lbn, mapping);
  }
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  for (i = 1; i < sequence; i++)
    ck_assert (!bm_is_locked (i));
  bm_free_map ();

  bm_make_map (1, 16);
  g_hash_table_iter_init (&iter, expected);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    const struct vdo_data_location *mapping = value;

    check_mapping (*(logical_block_number_t *) key, mapping->pbn,
                   mapping->state);
  }
  check_mapping (lbn_in_tree (59, 3, 3), 0, VDO_MAPPING_STATE_UNMAPPED);
  ck_assert_uint_eq (bm_stats ().pages_written, 0);
  g_hash_table_destroy (expected);
}
END_TEST

/* --- Three zones at once ---------------------------------------------- */

enum { CONCURRENT_WRITES = 900 };

struct concurrent_run {
  atomic_ulong next_sequence;
  atomic_uint finished;
  atomic_int first_error;
  struct bm_sync all_done;
};

/* One simulated write on its zone: look up, install missing pages, put. */
struct zone_write {
  struct vdo_block_map_request request;
  struct vdo_completion step;
  struct concurrent_run *run;
  struct vdo_data_location mapping;
};

static void looked_up (struct vdo_completion *completion);

static sequence_number_t
next_sequence (struct concurrent_run *run)
{
  return atomic_fetch_add (&run->next_sequence, 1);
}

static void
finish_write (struct zone_write *write, int result)
{
  struct concurrent_run *run = write->run;
  int expected = VDO_SUCCESS;

  if (result != VDO_SUCCESS)
    atomic_compare_exchange_strong (&run->first_error, &expected, result);
  if (atomic_fetch_add (&run->finished, 1) + 1 == CONCURRENT_WRITES)
    vdo_finish_completion (&run->all_done.completion, VDO_SUCCESS);
}

static void
look_up (struct vdo_completion *completion)
{
  struct zone_write *write = completion->parent;

  vdo_prepare_completion (&write->request.completion, looked_up,
                          completion->queue, write);
  vdo_block_map_find_slot (bm.map, &write->request);
}

static void
put_done (struct vdo_completion *completion)
{
  finish_write (completion->parent, completion->result);
}

static void
looked_up (struct vdo_completion *completion)
{
  struct zone_write *write = completion->parent;
  struct journal_point point = {
    .sequence_number = next_sequence (write->run),
  };

  if (completion->result != VDO_SUCCESS) {
    finish_write (write, completion->result);
    return;
  }
  if (!write->request.path_complete) {
    vdo_prepare_completion (&write->step, look_up, completion->queue, write);
    vdo_block_map_install_tree_page (bm.map, write->request.lbn,
                                     write->request.missing_height,
                                     bm_allocate_pbn (), point, &write->step);
    return;
  }
  vdo_prepare_completion (&write->step, put_done, completion->queue, write);
  vdo_block_map_put_mapping (bm.map, write->request.lbn, write->mapping,
                             point, &write->step);
}

static void
check_all (const struct zone_write *writes)
{
  unsigned int i;

  for (i = 0; i < CONCURRENT_WRITES; i++)
    check_mapping (writes[i].request.lbn, writes[i].mapping.pbn,
                   writes[i].mapping.state);
}

START_TEST (test_three_zones_concurrently)
{
  struct zone_write *writes = g_new0 (struct zone_write, CONCURRENT_WRITES);
  struct concurrent_run run;
  struct vdo_block_map_statistics stats;
  sequence_number_t s;
  unsigned int i;

  bm_make_map (3, 3 * 8);
  atomic_init (&run.next_sequence, 1);
  atomic_init (&run.finished, 0);
  atomic_init (&run.first_error, VDO_SUCCESS);
  bm_sync_init (&run.all_done, vdo_block_map_zone_queue (bm.map, 0));

  /* Runs of neighbouring LBNs share leaves (and so claims) across the
   * trees of all three zones. */
  for (i = 0; i < CONCURRENT_WRITES; i++) {
    struct zone_write *write = &writes[i];
    unsigned int zone;

    write->run = &run;
    write->request.lbn = spread_lbn (i / 3) + i % 3;
    write->request.allocate = true;
    write->mapping.pbn = bm_allocate_pbn ();
    write->mapping.state = VDO_MAPPING_STATE_UNCOMPRESSED;
    zone = vdo_logical_zone_of_lbn (bm.map, write->request.lbn);
    vdo_prepare_completion (&write->step, look_up,
                            vdo_block_map_zone_queue (bm.map, zone), write);
  }
  for (i = 0; i < CONCURRENT_WRITES; i++) {
    vdo_enqueue_completion (&writes[i].step);
    /* The journal pushing meanwhile. */
    if (i % 100 == 99)
      vdo_block_map_write_back_older_than (bm.map, atomic_load
                                           (&run.next_sequence) / 2);
  }
  ck_assert_int_eq (bm_sync_wait (&run.all_done), VDO_SUCCESS);
  ck_assert_int_eq (atomic_load (&run.first_error), VDO_SUCCESS);

  stats = bm_stats ();
  ck_assert_uint_eq (stats.cache_pages, 24);
  ck_assert_uint_le (stats.pages_cached, 24);
  check_all (writes);

  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  for (s = 1; s < atomic_load (&run.next_sequence); s++)
    ck_assert (!bm_is_locked (s));
  ck_assert_uint_eq (bm_stats ().dirty_pages, 0);

  bm_free_map ();
  bm_make_map (3, 3 * 8);
  check_all (writes);
  g_free (writes);
}
END_TEST

/* --- Read-only mode while a miss waits for an eviction ---------------- */

/* A lookup started on the zone thread and waited for separately, so the
 * test can act while the lookup is stuck. */
struct queued_lookup {
  struct vdo_completion launch;
  struct vdo_block_map_request request;
  struct bm_sync done;
};

static void
queued_lookup_finished (struct vdo_completion *completion)
{
  struct queued_lookup *lookup = completion->parent;

  vdo_finish_completion (&lookup->done.completion, completion->result);
}

static void
run_queued_lookup (struct vdo_completion *completion)
{
  struct queued_lookup *lookup = completion->parent;

  vdo_block_map_find_slot (bm.map, &lookup->request);
}

static void
start_queued_lookup (struct queued_lookup *lookup, logical_block_number_t lbn)
{
  struct vdo_work_queue *queue
    = vdo_block_map_zone_queue (bm.map, vdo_logical_zone_of_lbn (bm.map, lbn));

  memset (lookup, 0, sizeof *lookup);
  lookup->request.lbn = lbn;
  vdo_prepare_completion (&lookup->request.completion, queued_lookup_finished,
                          queue, lookup);
  bm_sync_init (&lookup->done, queue);
  vdo_prepare_completion (&lookup->launch, run_queued_lookup, queue, lookup);
  vdo_enqueue_completion (&lookup->launch);
}

START_TEST (test_read_only_fails_eviction_waiter)
{
  enum { LEAVES = 5 };
  physical_block_number_t data = bm_allocate_pbn ();
  struct vdo_block_map_statistics before, after;
  struct queued_lookup lookup;
  unsigned int i;

  bm_use_gate ();
  bm_hold_flushes ();
  bm_make_map (1, 4);
  for (i = 0; i < LEAVES; i++)
    bm_map (lbn_in_tree (0, i, 0), data, VDO_MAPPING_STATE_UNCOMPRESSED,
            1 + 2 * i);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  /* Leaves 1..4 fill the cache and are dirty again, under a generation
   * no flush covers yet; leaf 0 is only on disk. */
  for (i = 1; i < LEAVES; i++)
    ck_assert_int_eq (bm_put (lbn_in_tree (0, i, 1), data,
                              VDO_MAPPING_STATE_UNCOMPRESSED, 20 + i),
                      VDO_SUCCESS);
  before = bm_stats ();
  ck_assert_uint_eq (before.pages_cached, 4);
  ck_assert_uint_eq (before.dirty_pages, 4);

  /* The miss on leaf 0 queues an eviction, which must wait for a flush;
   * the gate holds that flush, so the page stays queued, not written. */
  bm_close_gate ();
  start_queued_lookup (&lookup, lbn_in_tree (0, 0, 0));
  bm_wait_held_writes (1);
  bm_barrier (0);
  ck_assert (!bm_sync_done (&lookup.done));
  ck_assert_uint_eq (bm_stats ().pages_written, before.pages_written);
  ck_assert_uint_eq (bm_stats ().flushes, before.flushes + 1);

  /* The flush's completion kicks the writer, which now drops the queued
   * page; the waiting miss must hear of it rather than wait forever. */
  vdo_enter_read_only_mode (bm.read_only, VDO_READ_ONLY);
  bm_open_gate ();
  ck_assert_int_eq (bm_sync_wait (&lookup.done), VDO_READ_ONLY);

  /* Nothing was written, and the cached pages still serve hits. */
  after = bm_stats ();
  ck_assert_uint_eq (after.pages_written, before.pages_written);
  ck_assert_uint_eq (after.dirty_pages, 4);
  check_mapping (lbn_in_tree (0, 1, 1), data, VDO_MAPPING_STATE_UNCOMPRESSED);
  ck_assert_int_eq (bm_drain (), VDO_READ_ONLY);
}
END_TEST

/* --- Forest traversal ------------------------------------------------- */

struct traversal_counts {
  pthread_mutex_t lock;
  unsigned int pages[VDO_BLOCK_MAP_ROOT_HEIGHT + 1];
  unsigned int leaf_pointers;
  bool unmapped_one;
  bool saw_second_height_2_page;
  bool saw_its_height_1_page;
};

static void
count_page (void *context, struct vdo_tree_zone *tree,
            struct vdo_tree_page *page, uint64_t page_index)
{
  struct traversal_counts *counts = context;
  unsigned int height = vdo_tree_page_height (page), slot;

  pthread_mutex_lock (&counts->lock);
  counts->pages[height]++;
  /* A deep path at height-3 slot 1: the second height-2 page of its tree,
   * and the 813th height-1 page. */
  if (height == 2 && page_index == 1)
    counts->saw_second_height_2_page = true;
  if (height == 1 && page_index == ENTRIES)
    counts->saw_its_height_1_page = true;
  if (height == 1)
    for (slot = 0; slot < ENTRIES; slot++)
      counts->leaf_pointers += vdo_is_mapped_location
        (vdo_get_block_map_page_entry (vdo_tree_page_data (page), slot));
  /* Cut one subtree off, as rebuild does with entries it rejects. */
  if (height == 3 && !counts->unmapped_one
      && vdo_is_mapped_location (vdo_get_block_map_page_entry
                                 (vdo_tree_page_data (page), 1))) {
    struct vdo_data_location unmapped = { 0, VDO_MAPPING_STATE_UNMAPPED };

    vdo_set_tree_page_entry (tree, page, 1, unmapped, 0);
    counts->unmapped_one = true;
  }
  pthread_mutex_unlock (&counts->lock);
}

START_TEST (test_forest_traversal)
{
  struct traversal_counts counts = { .unmapped_one = false };
  physical_block_number_t data = bm_allocate_pbn ();
  struct bm_sync sync;
  unsigned int i;

  pthread_mutex_init (&counts.lock, NULL);
  bm_make_map (3, 24);
  /* Trees 0..9 get one leaf each; tree 0 also a second leaf under the
   * same height-1 page; trees 0 and 1 a deep one under a second height-2
   * page. */
  for (i = 0; i < 10; i++)
    bm_map (lbn_in_tree (i, 0, 0), data, VDO_MAPPING_STATE_UNCOMPRESSED,
            1 + 2 * i);
  bm_map (lbn_in_tree (0, 1, 0), data, VDO_MAPPING_STATE_UNCOMPRESSED, 30);
  bm_map (lbn_in_tree (0, (uint64_t) ENTRIES * ENTRIES, 0), data,
          VDO_MAPPING_STATE_UNCOMPRESSED, 40);
  bm_map (lbn_in_tree (1, (uint64_t) ENTRIES * ENTRIES, 0), data,
          VDO_MAPPING_STATE_UNCOMPRESSED, 50);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  bm_free_map ();

  /* From disk, in a fresh map. */
  bm_make_map (3, 24);
  bm_sync_init (&sync, vdo_block_map_zone_queue (bm.map, 0));
  vdo_traverse_block_map_forest (bm.map, count_page, &counts,
                                 &sync.completion);
  ck_assert_int_eq (bm_sync_wait (&sync), VDO_SUCCESS);
  ck_assert_uint_eq (counts.pages[4], ROOTS);
  ck_assert_uint_eq (counts.pages[3], 10);
  /* Tree 0's deep height-2 page was cut off before the walk reached it;
   * tree 1's was visited. */
  ck_assert (counts.unmapped_one);
  ck_assert_uint_eq (counts.pages[2], 11);
  ck_assert_uint_eq (counts.pages[1], 11);
  ck_assert_uint_eq (counts.leaf_pointers, 12);
  ck_assert (counts.saw_second_height_2_page);
  ck_assert (counts.saw_its_height_1_page);
  ck_assert_uint_eq (bm_stats ().dirty_pages, 1);
  ck_assert (!bm_is_locked (1));
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  check_mapping (lbn_in_tree (0, (uint64_t) ENTRIES * ENTRIES, 0), 0,
                 VDO_MAPPING_STATE_UNMAPPED);
  check_mapping (lbn_in_tree (1, (uint64_t) ENTRIES * ENTRIES, 0), data,
                 VDO_MAPPING_STATE_UNCOMPRESSED);
  check_mapping (lbn_in_tree (0, 1, 0), data, VDO_MAPPING_STATE_UNCOMPRESSED);
}
END_TEST

Suite *
block_map_writeback_suite (void)
{
  Suite *s = suite_create ("block-map-writeback");
  TCase *tc = tcase_create ("write-back");

  tcase_add_checked_fixture (tc, bm_setup, bm_teardown);
  tcase_set_timeout (tc, 600);
  tcase_add_test (tc, test_tiny_cache_eviction);
  tcase_add_test (tc, test_update_found_after_eviction);
  tcase_add_test (tc, test_write_back_older_than);
  tcase_add_test (tc, test_update_during_write);
  tcase_add_test (tc, test_reopen_after_drain);
  tcase_add_test (tc, test_three_zones_concurrently);
  tcase_add_test (tc, test_read_only_fails_eviction_waiter);
  tcase_add_test (tc, test_forest_traversal);
  suite_add_tcase (s, tc);
  return s;
}
