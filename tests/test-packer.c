/* nbdkit-vdo: the packer (packer.h): where fragments go, when bins are
 * written, and how densely they pack. */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compressed-block-format.h"
#include "constants.h"
#include "packer.h"
#include "status.h"
#include "unit-suites.h"
#include "work-queue.h"

#define MAX_ITEMS 4096

/* What the packer emitted, in order. */
struct recorder {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned batches;             /* blocks written compressed */
  unsigned lone;                /* items handed back alone */
  unsigned items_out;
  unsigned last_count;
  struct vdo_packer_item *last_first;
};

static struct recorder rec;
static uint64_t fake_now;

static uint64_t
fake_clock (void)
{
  return fake_now;
}

/* Check a written batch: slots in list order, the block holds each
 * fragment byte for byte. */
static void
record (void *context, struct vdo_packer_item *first, unsigned int count)
{
  struct vdo_packer_item *item;
  unsigned int slot = 0;

  (void) context;
  if (count >= 2)
    for (item = first; item != NULL; item = item->next_in_batch, slot++) {
      size_t offset, size;

      ck_assert_uint_eq (item->slot, slot);
      ck_assert_int_eq (vdo_locate_compressed_fragment (first->block, slot,
                                                        &offset, &size),
                        VDO_SUCCESS);
      ck_assert_uint_eq (size, item->size);
      ck_assert (memcmp (first->block + offset, item->fragment, size) == 0);
    }
  else
    ck_assert_ptr_null (first->next_in_batch);
  if (count >= 2)
    ck_assert_uint_eq (slot, count);
  pthread_mutex_lock (&rec.lock);
  if (count >= 2)
    rec.batches++;
  else
    rec.lone++;
  rec.items_out += count;
  rec.last_count = count;
  rec.last_first = first;
  pthread_cond_broadcast (&rec.cond);
  pthread_mutex_unlock (&rec.lock);
}

/* Items with fragment bytes that tell them apart, and a block each. */
struct test_item {
  struct vdo_packer_item item;
  uint8_t fragment[VDO_MAX_COMPRESSED_FRAGMENT_SIZE];
  uint8_t block[VDO_BLOCK_SIZE];
};

static struct test_item *items;

static struct vdo_packer_item *
make_item (unsigned int n, unsigned int size, uint64_t generation)
{
  struct test_item *t = &items[n];

  memset (t->fragment, (int) (n * 7 + 1), size);
  memset (&t->item, 0, sizeof t->item);
  t->item.fragment = t->fragment;
  t->item.size = size;
  t->item.block = t->block;
  t->item.generation = generation;
  t->item.owner = t;
  atomic_init (&t->item.release_wanted, false);
  return &t->item;
}

static struct vdo_packer *
make_test_packer (unsigned int bins)
{
  struct vdo_packer_config config = {
    .bins = bins, .max_wait_us = 1000, .waited_on_wait_us = 10,
    .emit = record, .clock = fake_clock,
  };
  struct vdo_packer *packer;

  ck_assert_int_eq (vdo_make_packer (&config, &packer), 0);
  return packer;
}

static void
setup (void)
{
  memset (&rec, 0, sizeof rec);
  pthread_mutex_init (&rec.lock, NULL);
  pthread_cond_init (&rec.cond, NULL);
  items = calloc (MAX_ITEMS, sizeof *items);
  ck_assert_ptr_nonnull (items);
  fake_now = 1000000;
}

static void
teardown (void)
{
  free (items);
  pthread_cond_destroy (&rec.cond);
  pthread_mutex_destroy (&rec.lock);
}

START_TEST (test_full_bins_are_written)
{
  struct vdo_packer *packer = make_test_packer (4);
  struct vdo_packer_statistics stats;
  unsigned int i;

  /* Fourteen small fragments fill the slots of one block. */
  for (i = 0; i < 13; i++)
    vdo_packer_add (packer, make_item (i, 100, VDO_PACKER_NO_GENERATION));
  ck_assert_uint_eq (rec.batches, 0);
  vdo_get_packer_statistics (packer, &stats);
  ck_assert_uint_eq (stats.compressed_fragments_in_packer, 13);
  vdo_packer_add (packer, make_item (13, 100, VDO_PACKER_NO_GENERATION));
  ck_assert_uint_eq (rec.batches, 1);
  ck_assert_uint_eq (rec.last_count, 14);
  ck_assert_ptr_eq (rec.last_first, &items[0].item);

  /* Two fragments that fill the data area exactly. */
  vdo_packer_add (packer, make_item (20, 3000, VDO_PACKER_NO_GENERATION));
  vdo_packer_add (packer, make_item (21, VDO_COMPRESSED_BLOCK_DATA_SIZE - 3000,
                                     VDO_PACKER_NO_GENERATION));
  ck_assert_uint_eq (rec.batches, 2);
  ck_assert_uint_eq (rec.last_count, 2);
  vdo_get_packer_statistics (packer, &stats);
  ck_assert_uint_eq (stats.compressed_fragments_written, 16);
  ck_assert_uint_eq (stats.compressed_blocks_written, 2);
  ck_assert_uint_eq (stats.compressed_fragments_in_packer, 0);
  vdo_free_packer (packer);
}
END_TEST

START_TEST (test_best_fit_and_overflow)
{
  struct vdo_packer *packer = make_test_packer (2);

  /* Two bins: 3000 and 2000 bytes in them. */
  vdo_packer_add (packer, make_item (0, 3000, VDO_PACKER_NO_GENERATION));
  vdo_packer_add (packer, make_item (1, 2000, VDO_PACKER_NO_GENERATION));
  /* 1000 bytes fit both; the fuller bin (3000) takes them. */
  vdo_packer_add (packer, make_item (2, 1000, VDO_PACKER_NO_GENERATION));
  ck_assert_uint_eq (rec.items_out, 0);
  /* 2500 fit neither: the fullest bin of two (4000 used) goes, and
   * the fragment starts it over. */
  vdo_packer_add (packer, make_item (3, 2500, VDO_PACKER_NO_GENERATION));
  ck_assert_uint_eq (rec.batches, 1);
  ck_assert_uint_eq (rec.last_count, 2);
  ck_assert_ptr_eq (rec.last_first, &items[0].item);
  ck_assert_ptr_eq (items[0].item.next_in_batch, &items[2].item);
  /* Everything else leaves in bins of one: written uncompressed. */
  vdo_packer_write_all (packer);
  ck_assert_uint_eq (rec.batches, 1);
  ck_assert_uint_eq (rec.lone, 2);
  ck_assert_uint_eq (rec.items_out, 4);
  vdo_free_packer (packer);
}
END_TEST

START_TEST (test_overflow_of_single_fragments)
{
  struct vdo_packer *packer = make_test_packer (2);

  vdo_packer_add (packer, make_item (0, 3000, VDO_PACKER_NO_GENERATION));
  vdo_packer_add (packer, make_item (1, 2000, VDO_PACKER_NO_GENERATION));
  /* Fits neither, and both bins hold one: the largest of the three
   * fragments, the new one, goes alone. */
  vdo_packer_add (packer, make_item (2, 3500, VDO_PACKER_NO_GENERATION));
  ck_assert_uint_eq (rec.lone, 1);
  ck_assert_ptr_eq (rec.last_first, &items[2].item);
  /* Smaller than the 3000: that one goes alone instead, and 2500 takes
   * its bin. */
  vdo_packer_add (packer, make_item (3, 2500, VDO_PACKER_NO_GENERATION));
  ck_assert_uint_eq (rec.lone, 2);
  ck_assert_ptr_eq (rec.last_first, &items[0].item);
  /* 1500 pairs with the 2500. */
  vdo_packer_add (packer, make_item (4, 1500, VDO_PACKER_NO_GENERATION));
  vdo_packer_write_all (packer);
  ck_assert_uint_eq (rec.batches, 1);
  ck_assert_uint_eq (rec.lone, 3);
  ck_assert_uint_eq (rec.items_out, 5);
  vdo_free_packer (packer);
}
END_TEST

START_TEST (test_flush_generations)
{
  struct vdo_packer *packer = make_test_packer (4);

  vdo_packer_add (packer, make_item (0, 1000, 5));
  vdo_packer_add (packer, make_item (1, 1000, 5));
  vdo_packer_add (packer, make_item (2, 3500, 7));
  ck_assert_uint_eq (rec.items_out, 0);
  /* A flush of generations below 6 takes the bin holding 0 and 1. */
  vdo_packer_flush (packer, 6);
  ck_assert_uint_eq (rec.batches, 1);
  ck_assert_uint_eq (rec.last_count, 2);
  /* A late arrival of an old generation waits only briefly (10 us
   * here), and takes its bin with it. */
  vdo_packer_add (packer, make_item (3, 500, 5));
  ck_assert_uint_eq (rec.batches, 1);
  fake_now += 10000;
  vdo_packer_expire (packer);
  ck_assert_uint_eq (rec.batches, 2);
  ck_assert_uint_eq (rec.last_count, 2);
  ck_assert_ptr_eq (rec.last_first, &items[2].item);
  /* Newer generations and writes no flush waits for stay. */
  vdo_packer_add (packer, make_item (4, 500, 6));
  vdo_packer_add (packer, make_item (5, 500, VDO_PACKER_NO_GENERATION));
  ck_assert_uint_eq (rec.items_out, 4);
  vdo_packer_flush (packer, 7);
  ck_assert_uint_eq (rec.items_out, 6);
  vdo_free_packer (packer);
}
END_TEST

START_TEST (test_deadlines)
{
  struct vdo_packer *packer = make_test_packer (4);
  struct vdo_packer_item *waited;

  /* Acknowledged fragments wait max_wait (1 ms here). */
  vdo_packer_add (packer, make_item (0, 3000, VDO_PACKER_NO_GENERATION));
  fake_now += 500000;
  vdo_packer_add (packer, make_item (1, 3000, VDO_PACKER_NO_GENERATION));
  vdo_packer_expire (packer);
  ck_assert_uint_eq (rec.items_out, 0);
  fake_now += 500000;
  vdo_packer_expire (packer);
  ck_assert_uint_eq (rec.lone, 1);
  ck_assert_ptr_eq (rec.last_first, &items[0].item);
  /* A fragment whose writer waits has a short deadline (10 us), and it
   * takes its bin with it. */
  vdo_packer_add (packer, make_item (2, 500, VDO_PACKER_NO_GENERATION));
  waited = make_item (3, 500, VDO_PACKER_NO_GENERATION);
  waited->waited_on = true;
  vdo_packer_add (packer, waited);
  fake_now += 10000;
  vdo_packer_expire (packer);
  ck_assert_uint_eq (rec.batches, 1);
  ck_assert_uint_eq (rec.last_count, 3);
  ck_assert_uint_eq (rec.items_out, 4);
  vdo_free_packer (packer);
}
END_TEST

START_TEST (test_release_wanted)
{
  struct vdo_packer *packer = make_test_packer (4);
  struct vdo_packer_item *wanted;

  vdo_packer_add (packer, make_item (0, 1000, VDO_PACKER_NO_GENERATION));
  wanted = make_item (1, 1000, VDO_PACKER_NO_GENERATION);
  atomic_store (&wanted->release_wanted, true);
  /* Another request waits for it: its bin goes at once. */
  vdo_packer_add (packer, wanted);
  ck_assert_uint_eq (rec.batches, 1);
  ck_assert_uint_eq (rec.last_count, 2);
  vdo_free_packer (packer);
}
END_TEST

/* --- Density: against first fit with unlimited bins ------------------- */

static unsigned int
ideal_first_fit (const unsigned int *sizes, unsigned int n)
{
  unsigned int *free_space = calloc (n, sizeof *free_space);
  unsigned int *slots = calloc (n, sizeof *slots);
  unsigned int bins = 0, i, b;

  ck_assert_ptr_nonnull (free_space);
  ck_assert_ptr_nonnull (slots);
  for (i = 0; i < n; i++) {
    for (b = 0; b < bins; b++)
      if (free_space[b] >= sizes[i] && slots[b] < VDO_MAX_COMPRESSION_SLOTS)
        break;
    if (b == bins) {
      free_space[bins] = VDO_COMPRESSED_BLOCK_DATA_SIZE;
      slots[bins++] = 0;
    }
    free_space[b] -= sizes[i];
    slots[b]++;
  }
  free (free_space);
  free (slots);
  return bins;
}

static void
check_density (unsigned int min_size, unsigned int max_size, uint64_t seed)
{
  struct vdo_packer *packer = make_test_packer (0);
  unsigned int sizes[MAX_ITEMS], i, ideal, used;
  uint64_t x = seed;

  rec.batches = rec.lone = rec.items_out = 0;
  for (i = 0; i < MAX_ITEMS; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    sizes[i] = min_size + (unsigned int) ((x >> 33) % (max_size - min_size + 1));
    vdo_packer_add (packer, make_item (i, sizes[i], VDO_PACKER_NO_GENERATION));
  }
  vdo_packer_write_all (packer);
  ck_assert_uint_eq (rec.items_out, MAX_ITEMS);
  ideal = ideal_first_fit (sizes, MAX_ITEMS);
  used = rec.batches + rec.lone;
  ck_assert_msg (used * 10 <= ideal * 11,
                 "sizes %u..%u: %u blocks, first fit needs %u", min_size,
                 max_size, used, ideal);
  vdo_free_packer (packer);
}

START_TEST (test_density)
{
  check_density (100, 3000, 1);
  check_density (1000, 2100, 2);
  check_density (200, 600, 3);
  check_density (1500, 2500, 4);
}
END_TEST

/* --- On a real queue, with the timer ----------------------------------- */

struct add_work {
  struct vdo_completion completion;
  struct vdo_packer *packer;
  struct vdo_packer_item *item;
};

static void
run_add (struct vdo_completion *completion)
{
  struct add_work *work = (struct add_work *) completion;

  vdo_packer_add (work->packer, work->item);
}

static bool
wait_for_items (unsigned int count, unsigned int seconds)
{
  struct timespec deadline;
  bool ok;

  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += seconds;
  pthread_mutex_lock (&rec.lock);
  while (rec.items_out < count
         && pthread_cond_timedwait (&rec.cond, &rec.lock, &deadline) == 0)
    ;
  ok = rec.items_out >= count;
  pthread_mutex_unlock (&rec.lock);
  return ok;
}

START_TEST (test_timer_and_requests)
{
  struct vdo_work_queue *queue;
  struct vdo_packer *packer;
  struct vdo_packer_config config = {
    .max_wait_us = 20000, .emit = record,
  };
  struct add_work work[4];
  unsigned int i;

  ck_assert_int_eq (vdo_make_work_queue ("test-packer", &queue), 0);
  ck_assert_int_eq (vdo_start_work_queue (queue), 0);
  config.queue = queue;
  ck_assert_int_eq (vdo_make_packer (&config, &packer), 0);

  /* The timer writes a bin whose fragments waited 20 ms. */
  for (i = 0; i < 2; i++) {
    work[i].packer = packer;
    work[i].item = make_item (i, 1000, VDO_PACKER_NO_GENERATION);
    vdo_launch_completion (&work[i].completion, run_add, queue);
  }
  ck_assert (wait_for_items (2, 10));
  ck_assert_uint_eq (rec.batches, 1);

  /* With the timer stopped, a flush request writes what its
   * generations hold. */
  vdo_stop_packer_timer (packer);
  for (i = 2; i < 4; i++) {
    work[i].packer = packer;
    work[i].item = make_item (i, 1000, 3);
    vdo_launch_completion (&work[i].completion, run_add, queue);
  }
  vdo_packer_request_flush (packer, 4);
  ck_assert (wait_for_items (4, 10));
  ck_assert_uint_eq (rec.batches, 2);

  /* A release request for an item in a bin. */
  work[0].item = make_item (10, 1000, VDO_PACKER_NO_GENERATION);
  vdo_launch_completion (&work[0].completion, run_add, queue);
  vdo_packer_request_release (packer, work[0].item);
  ck_assert (wait_for_items (5, 10));
  ck_assert_uint_eq (rec.lone, 1);

  vdo_free_work_queue (queue);
  vdo_free_packer (packer);
}
END_TEST

Suite *
packer_suite (void)
{
  Suite *s = suite_create ("packer");
  TCase *tc = tcase_create ("packer");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_full_bins_are_written);
  tcase_add_test (tc, test_best_fit_and_overflow);
  tcase_add_test (tc, test_overflow_of_single_fragments);
  tcase_add_test (tc, test_flush_generations);
  tcase_add_test (tc, test_deadlines);
  tcase_add_test (tc, test_release_wanted);
  tcase_add_test (tc, test_density);
  tcase_add_test (tc, test_timer_and_requests);
  suite_add_tcase (s, tc);
  return s;
}
