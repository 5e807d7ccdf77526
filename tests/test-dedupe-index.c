/* nbdkit-vdo: the dedupe index service on a sparse temporary file:
 * request semantics, chapters on disk, the window, save and load,
 * rebuild after a crash, creation over garbage, read-only mode. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checksum.h"
#include "dedupe-format.h"
#include "dedupe-index.h"
#include "index-format.h"
#include "index-geometry.h"
#include "io-simulator.h"
#include "status.h"
#include "unit-suites.h"
#include "work-queue.h"

/* Small chapters: 2 blocks of 127 records, 16 chapters. */
#define RPC 254
#define CHAPTERS 16
#define REGION_START 1
#define REGION_BLOCKS 2048
#define FILE_BLOCKS (REGION_START + REGION_BLOCKS + 8)

static char test_dir[64];
static char image[128];
static struct vdo_work_queue *answer_queue;

static void
setup (void)
{
  int fd;

  strcpy (test_dir, "/tmp/vdo-dedupe-test-XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (test_dir));
  snprintf (image, sizeof image, "%s/image", test_dir);
  fd = open (image, O_RDWR | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, (off_t) FILE_BLOCKS * VDO_BLOCK_SIZE), 0);
  close (fd);
  ck_assert_int_eq (vdo_make_work_queue ("answerQ", &answer_queue), 0);
  ck_assert_int_eq (vdo_start_work_queue (answer_queue), 0);
}

static void
teardown (void)
{
  vdo_free_work_queue (answer_queue);
  unlink (image);
  rmdir (test_dir);
}

/* --- Helpers ---------------------------------------------------------- */

static struct vdo_io *
open_image (unsigned int flags)
{
  struct vdo_io *io = NULL;

  ck_assert_int_eq (vdo_io_open (image, flags | VDO_IO_BUFFERED, &io), 0);
  ck_assert_int_eq (vdo_io_start (io, 0), 0);
  return io;
}

static struct vdo_dedupe_index_config
small_config (struct vdo_io *io)
{
  struct vdo_dedupe_index_config config = {
    .io = io,
    .region_start = REGION_START,
    .region_blocks = REGION_BLOCKS,
    .mem = VDO_INDEX_MEMORY_256MB,
    .sparse = false,
    .nonce = 0x1122334455667788ull,
    .test_records_per_chapter = RPC,
    .test_chapters_per_volume = CHAPTERS,
  };
  return config;
}

static struct vdo_dedupe_index *
start_index (const struct vdo_dedupe_index_config *config)
{
  struct vdo_dedupe_index *index = NULL;

  ck_assert_int_eq (vdo_make_dedupe_index (config, &index), VDO_SUCCESS);
  ck_assert_int_eq (vdo_start_dedupe_index (index), VDO_SUCCESS);
  return index;
}

static void
name_of (uint64_t n, struct vdo_chunk_name *name)
{
  vdo_murmurhash3_128 (&n, sizeof n, VDO_CHUNK_NAME_SEED, name->bytes);
}

static void
advice_of (uint64_t n, uint8_t advice[VDO_ADVICE_SIZE])
{
  struct vdo_advice a = { .state = 1, .pbn = n + 1000 };

  vdo_encode_advice (&a, advice);
}

struct waited_request {
  struct vdo_index_request request;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
};

static void
request_answered (struct vdo_completion *completion)
{
  struct waited_request *w = completion->parent;

  pthread_mutex_lock (&w->lock);
  w->done = true;
  pthread_cond_signal (&w->cond);
  pthread_mutex_unlock (&w->lock);
}

static void
prepare_request (struct waited_request *w, enum vdo_index_request_type type,
                 uint64_t name, uint64_t advice)
{
  memset (w, 0, sizeof *w);
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->cond, NULL);
  vdo_prepare_completion (&w->request.completion, request_answered,
                          answer_queue, w);
  w->request.type = type;
  name_of (name, &w->request.name);
  advice_of (advice, w->request.new_advice);
}

static void
wait_request (struct waited_request *w)
{
  pthread_mutex_lock (&w->lock);
  while (!w->done)
    pthread_cond_wait (&w->cond, &w->lock);
  pthread_mutex_unlock (&w->lock);
  pthread_mutex_destroy (&w->lock);
  pthread_cond_destroy (&w->cond);
  ck_assert_int_eq (w->request.completion.result, VDO_SUCCESS);
}

/* Send one request and wait; returns whether it was found, and checks
 * the advice found is that of EXPECT_ADVICE when found. */
static bool
request (struct vdo_dedupe_index *index, enum vdo_index_request_type type,
         uint64_t name, uint64_t advice, uint64_t expect_advice)
{
  struct waited_request w;
  uint8_t expected[VDO_ADVICE_SIZE];

  prepare_request (&w, type, name, advice);
  vdo_submit_index_request (index, &w.request);
  wait_request (&w);
  ck_assert (!w.request.unanswered);
  if (w.request.found) {
    advice_of (expect_advice, expected);
    ck_assert_mem_eq (w.request.old_advice, expected, VDO_ADVICE_SIZE);
  }
  return w.request.found;
}

static bool
post (struct vdo_dedupe_index *index, uint64_t name)
{
  return request (index, VDO_INDEX_POST, name, name, name);
}

static bool
query (struct vdo_dedupe_index *index, uint64_t name)
{
  return request (index, VDO_INDEX_QUERY, name, 0, name);
}

static void
post_new_names (struct vdo_dedupe_index *index, uint64_t first,
                uint64_t count)
{
  uint64_t n;

  for (n = first; n < first + count; n++)
    ck_assert_msg (!post (index, n), "name %lu already known",
                   (unsigned long) n);
}

static struct vdo_dedupe_index_stats
stats_of (struct vdo_dedupe_index *index)
{
  struct vdo_dedupe_index_stats stats;

  vdo_get_dedupe_index_stats (index, &stats);
  return stats;
}

static void
sleep_a_little (void)
{
  struct timespec pause = { .tv_nsec = 1000000 };

  nanosleep (&pause, NULL);
}

/* Chapter writes are asynchronous: wait until COUNT are on disk. */
static void
wait_chapters_written (struct vdo_dedupe_index *index, uint64_t count)
{
  int i;

  for (i = 0; i < 10000 && stats_of (index).chapters_written < count; i++)
    sleep_a_little ();
  ck_assert_uint_ge (stats_of (index).chapters_written, count);
}

static void
wait_rebuilt (struct vdo_dedupe_index *index)
{
  int i;

  for (i = 0; i < 10000 && stats_of (index).rebuilding; i++)
    sleep_a_little ();
  ck_assert (!stats_of (index).rebuilding);
}

static void
read_image_block (block_count_t region_block, uint8_t block[VDO_BLOCK_SIZE])
{
  int fd = open (image, O_RDONLY);

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pread (fd, block, VDO_BLOCK_SIZE,
                           (off_t) (REGION_START + region_block)
                           * VDO_BLOCK_SIZE), VDO_BLOCK_SIZE);
  close (fd);
}

static void
write_image_block (block_count_t region_block,
                   const uint8_t block[VDO_BLOCK_SIZE])
{
  int fd = open (image, O_WRONLY);

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pwrite (fd, block, VDO_BLOCK_SIZE,
                            (off_t) (REGION_START + region_block)
                            * VDO_BLOCK_SIZE), VDO_BLOCK_SIZE);
  close (fd);
}

static struct vdo_index_layout
small_layout (void)
{
  struct vdo_dedupe_index_config config = small_config (NULL);
  struct vdo_index_layout layout;
  block_count_t blocks;

  ck_assert_int_eq (vdo_dedupe_index_region_blocks (&config, &blocks),
                    VDO_SUCCESS);
  /* The layout is a pure function of the sizes; find its page count
   * from the total the index reports. */
  ck_assert_int_eq (vdo_compute_index_layout (RPC, CHAPTERS, 1, &layout),
                    VDO_SUCCESS);
  ck_assert_uint_ge (blocks, layout.total_blocks);
  {
    uint64_t pages = 1;

    while (layout.total_blocks < blocks) {
      pages++;
      ck_assert_int_eq (vdo_compute_index_layout (RPC, CHAPTERS, pages,
                                                  &layout), VDO_SUCCESS);
    }
  }
  ck_assert_uint_eq (layout.total_blocks, blocks);
  return layout;
}

static bool
save_slot_is_valid (const struct vdo_index_layout *layout, unsigned int slot)
{
  struct vdo_index_save_header header;
  uint8_t block[VDO_BLOCK_SIZE];

  read_image_block (layout->save_slot_start[slot], block);
  return vdo_decode_index_save_header (block, &header) == VDO_SUCCESS;
}

/* --- Request semantics ----------------------------------------------- */

START_TEST (test_post_then_found)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index;
  struct vdo_dedupe_index_stats stats;

  config.create = true;
  index = start_index (&config);
  ck_assert (!post (index, 1));
  /* A second POST with other advice finds the first and keeps it. */
  ck_assert (request (index, VDO_INDEX_POST, 1, 99, 1));
  ck_assert (request (index, VDO_INDEX_QUERY, 1, 0, 1));
  stats = stats_of (index);
  ck_assert_uint_eq (stats.posts_not_found, 1);
  ck_assert_uint_eq (stats.posts_found, 1);
  ck_assert_uint_eq (stats.queries_found, 1);
  ck_assert_uint_eq (stats.records_per_volume, RPC * CHAPTERS);
  ck_assert_uint_ge (stats.entries_indexed, 1);
  ck_assert_uint_gt (stats.memory_bytes, 0);
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

START_TEST (test_query_does_not_store)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index;

  config.create = true;
  index = start_index (&config);
  ck_assert (!query (index, 7));
  ck_assert (!query (index, 7));
  ck_assert (!post (index, 7));
  ck_assert (query (index, 7));
  ck_assert_uint_eq (stats_of (index).queries_not_found, 2);
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

START_TEST (test_update_overwrites)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index;

  config.create = true;
  index = start_index (&config);
  ck_assert (!post (index, 3));
  ck_assert (request (index, VDO_INDEX_UPDATE, 3, 300, 3));
  ck_assert (request (index, VDO_INDEX_QUERY, 3, 0, 300));
  /* An UPDATE of an unknown name stores it. */
  ck_assert (!request (index, VDO_INDEX_UPDATE, 4, 400, 0));
  ck_assert (request (index, VDO_INDEX_QUERY, 4, 0, 400));

  /* UPDATE of a name in a closed chapter: found there, the new advice
   * goes to the open chapter. */
  post_new_names (index, 1000, 2 * RPC);
  wait_chapters_written (index, 2);
  ck_assert (request (index, VDO_INDEX_UPDATE, 3, 301, 300));
  ck_assert (request (index, VDO_INDEX_QUERY, 3, 0, 301));
  ck_assert_uint_eq (stats_of (index).updates_found, 2);
  ck_assert_uint_eq (stats_of (index).updates_not_found, 1);
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

/* --- Chapters and the window ----------------------------------------- */

START_TEST (test_names_survive_chapter_close)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_index_layout layout = small_layout ();
  struct vdo_record_block_header header;
  struct vdo_dedupe_index *index;
  uint8_t block[VDO_BLOCK_SIZE];
  uint64_t n;

  config.create = true;
  index = start_index (&config);
  post_new_names (index, 0, 3 * RPC + 5);
  wait_chapters_written (index, 3);

  /* Chapter 1 is on disk, in physical chapter 1. */
  read_image_block (vdo_index_chapter_block (&layout, 1, 0), block);
  ck_assert_int_eq (vdo_decode_record_block_header (block, &header),
                    VDO_SUCCESS);
  ck_assert_uint_eq (header.vcn, 1);
  ck_assert_uint_eq (header.record_count, VDO_INDEX_RECORDS_PER_BLOCK);

  for (n = 0; n < 3 * RPC + 5; n++)
    ck_assert_msg (query (index, n), "name %lu lost", (unsigned long) n);
  /* Found names moved to the open chapter (copied, advice kept). */
  ck_assert_uint_ge (stats_of (index).chapters_written, 3);
  ck_assert (query (index, 0));
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

START_TEST (test_window_expiry)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index;

  config.create = true;
  index = start_index (&config);
  /* Name 0 is in chapter 0, name RPC in chapter 1. */
  post_new_names (index, 0, CHAPTERS * RPC - 1);
  wait_chapters_written (index, CHAPTERS - 1);
  /* Chapter 0 is still live while chapter CHAPTERS - 1 is open. */
  ck_assert (query (index, RPC - 2));
  /* That query filled chapter CHAPTERS - 1, which closed: chapter 0 has
   * left the window and chapter 1 is the oldest live one. */
  wait_chapters_written (index, CHAPTERS);
  ck_assert (!query (index, 0));
  ck_assert (!query (index, RPC - 1));
  ck_assert (query (index, RPC));
  ck_assert (query (index, CHAPTERS * RPC - 2));
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

START_TEST (test_wraps_the_ring)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index;
  uint64_t total = 3 * CHAPTERS * RPC, n;

  config.create = true;
  index = start_index (&config);
  post_new_names (index, 0, total);
  wait_chapters_written (index, 3 * CHAPTERS);
  /* The newest chapters' names (all but the open chapter's are on
   * disk, in reused physical chapters); nothing older. */
  for (n = total - (CHAPTERS - 1) * RPC; n < total; n += 7)
    ck_assert_msg (query (index, n), "name %lu lost", (unsigned long) n);
  for (n = 0; n < total - CHAPTERS * RPC; n += 97)
    ck_assert (!query (index, n));
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

/* --- Save and load ---------------------------------------------------- */

START_TEST (test_save_and_load)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_index_layout layout = small_layout ();
  struct vdo_dedupe_index *index;
  uint64_t n;

  config.create = true;
  index = start_index (&config);
  post_new_names (index, 0, 2 * RPC + 40);
  ck_assert_int_eq (vdo_save_dedupe_index (index), VDO_SUCCESS);
  vdo_free_dedupe_index (index);
  ck_assert (save_slot_is_valid (&layout, 0) != save_slot_is_valid (&layout,
                                                                    1));

  config.create = false;
  index = start_index (&config);
  ck_assert (!stats_of (index).rebuilding);
  /* Loading invalidated the save before serving. */
  ck_assert (!save_slot_is_valid (&layout, 0));
  ck_assert (!save_slot_is_valid (&layout, 1));
  for (n = 0; n < 2 * RPC + 40; n++)
    ck_assert_msg (query (index, n), "name %lu lost", (unsigned long) n);
  ck_assert (!query (index, 5000));

  /* A second save and load, after more chapters. */
  post_new_names (index, 10000, 3 * RPC);
  ck_assert_int_eq (vdo_save_dedupe_index (index), VDO_SUCCESS);
  vdo_free_dedupe_index (index);
  index = start_index (&config);
  ck_assert (!stats_of (index).rebuilding);
  for (n = 10000; n < 10000 + 3 * RPC; n += 3)
    ck_assert (query (index, n));
  ck_assert (query (index, 1));
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

START_TEST (test_corrupt_save_rebuilds)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_index_layout layout = small_layout ();
  struct vdo_dedupe_index *index;
  uint8_t block[VDO_BLOCK_SIZE];
  unsigned int slot;

  config.create = true;
  index = start_index (&config);
  post_new_names (index, 0, RPC + 10);
  ck_assert_int_eq (vdo_save_dedupe_index (index), VDO_SUCCESS);
  vdo_free_dedupe_index (index);
  slot = save_slot_is_valid (&layout, 0) ? 0 : 1;

  /* Damage the stream (the open chapter's records): the CRC fails. */
  read_image_block (layout.save_slot_start[slot] + 1, block);
  block[17] ^= 0x55;
  write_image_block (layout.save_slot_start[slot] + 1, block);

  config.create = false;
  index = start_index (&config);
  wait_rebuilt (index);
  ck_assert (query (index, 3));         /* from chapter 0, on disk */
  ck_assert (!query (index, RPC + 5));  /* only in the open chapter */
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

/* --- Crash and rebuild ------------------------------------------------ */

START_TEST (test_crash_rebuilds)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index;
  uint64_t n;

  config.create = true;
  index = start_index (&config);
  post_new_names (index, 0, 3 * RPC + 10);
  wait_chapters_written (index, 3);
  vdo_free_dedupe_index (index);        /* no save: a crash */

  config.create = false;
  index = start_index (&config);
  wait_rebuilt (index);
  for (n = 0; n < 3 * RPC; n++)
    ck_assert_msg (query (index, n), "name %lu lost", (unsigned long) n);
  for (n = 3 * RPC; n < 3 * RPC + 10; n++)
    ck_assert (!query (index, n));
  /* New names go to chapter 3 on, not over the chapters replayed. */
  post_new_names (index, 20000, RPC);
  wait_chapters_written (index, 1);
  ck_assert (query (index, 5));
  ck_assert (query (index, 20000));
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

static bool
request_is_done (struct waited_request *w)
{
  bool done;

  pthread_mutex_lock (&w->lock);
  done = w->done;
  pthread_mutex_unlock (&w->lock);
  return done;
}

/* A QUERY whose block reads the simulator holds until released. */
static bool
query_held (struct vdo_dedupe_index *index, struct vdo_sim *sim,
            uint64_t name)
{
  struct waited_request w;
  int i;

  prepare_request (&w, VDO_INDEX_QUERY, name, 0);
  vdo_submit_index_request (index, &w.request);
  for (i = 0; i < 100000 && !request_is_done (&w); i++)
    if (!vdo_sim_release (sim, 0))
      sleep_a_little ();
  wait_request (&w);
  ck_assert (!w.request.unanswered);
  return w.request.found;
}

/* Requests during a rebuild are answered at once, unanswered.  The
 * rebuild's reads are held by the simulator until released. */
START_TEST (test_requests_during_rebuild)
{
  struct vdo_sim_options options = { .hold = true };
  struct vdo_io *io = open_image (0), *held;
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index;
  struct vdo_sim *sim;
  struct waited_request w;
  int i;

  config.create = true;
  index = start_index (&config);
  post_new_names (index, 0, 2 * RPC);
  wait_chapters_written (index, 2);
  vdo_free_dedupe_index (index);
  vdo_io_close (io);

  ck_assert_int_eq (vdo_sim_create_file (image, &options, &sim), 0);
  held = vdo_sim_io (sim);
  ck_assert_int_eq (vdo_io_start (held, 0), 0);
  config = small_config (held);
  index = start_index (&config);
  ck_assert (stats_of (index).rebuilding);

  prepare_request (&w, VDO_INDEX_QUERY, 1, 0);
  vdo_submit_index_request (index, &w.request);
  wait_request (&w);
  ck_assert (w.request.unanswered);
  ck_assert (!w.request.found);
  ck_assert_uint_eq (stats_of (index).requests_unanswered, 1);

  for (i = 0; i < 100000 && stats_of (index).rebuilding; i++)
    if (!vdo_sim_release (sim, 0))
      sleep_a_little ();
  ck_assert (!stats_of (index).rebuilding);
  ck_assert (query_held (index, sim, 1));
  ck_assert (query_held (index, sim, 2 * RPC - 1));
  vdo_free_dedupe_index (index);
  vdo_sim_close (sim);
}
END_TEST

START_TEST (test_rebuild_skips_corrupt_block)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_index_layout layout = small_layout ();
  struct vdo_dedupe_index *index;
  uint8_t block[VDO_BLOCK_SIZE], advice[VDO_ADVICE_SIZE];
  unsigned int in_bad = 0, in_good = 0;
  uint64_t n;

  config.create = true;
  index = start_index (&config);
  post_new_names (index, 0, 3 * RPC);
  wait_chapters_written (index, 3);
  vdo_free_dedupe_index (index);

  /* Tear block 1 of chapter 1; remember who lived there. */
  read_image_block (vdo_index_chapter_block (&layout, 1, 1), block);
  block[VDO_BLOCK_SIZE - 1] ^= 0xFF;
  write_image_block (vdo_index_chapter_block (&layout, 1, 1), block);

  config.create = false;
  index = start_index (&config);
  wait_rebuilt (index);
  for (n = 0; n < 3 * RPC; n++) {
    struct vdo_chunk_name name;
    bool in_torn_block;

    name_of (n, &name);
    in_torn_block = vdo_search_record_block (block, vdo_record_block_count
                                                      (block),
                                             &name, advice);
    if (in_torn_block) {
      in_bad++;
      ck_assert (!query (index, n));
    }
    else {
      in_good++;
      ck_assert_msg (query (index, n), "name %lu lost", (unsigned long) n);
    }
  }
  ck_assert_uint_eq (in_bad, RPC - VDO_INDEX_RECORDS_PER_BLOCK);
  ck_assert_uint_eq (in_good, 3 * RPC - in_bad);
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

/* --- Sparse ----------------------------------------------------------- */

/* The first name below LIMIT from START that is (or is not) a hook. */
static uint64_t
find_name (uint64_t start, uint64_t limit, bool hook)
{
  uint64_t n;

  for (n = start; n < limit; n++) {
    struct vdo_chunk_name name;

    name_of (n, &name);
    if (vdo_chunk_name_is_hook (&name, VDO_UDS_SPARSE_SAMPLE_RATE) == hook)
      return n;
  }
  ck_abort_msg ("no such name");
  return 0;
}

START_TEST (test_sparse_cache)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index;
  uint64_t hook, other, dense;

  config.sparse = true;
  config.test_dense_chapters = 4;
  config.create = true;
  index = start_index (&config);
  /* Chapters 0..5 closed, 6 open: 0..2 are sparse. */
  post_new_names (index, 0, 6 * RPC);
  wait_chapters_written (index, 6);
  hook = find_name (0, RPC, true);
  other = find_name (0, RPC, false);
  dense = find_name (4 * RPC, 5 * RPC, false);

  /* A non-hook of a sparse chapter has no volume index entry. */
  ck_assert (!query (index, other));
  ck_assert (query (index, dense));
  /* A hook is found, and brings its chapter into the sparse cache,
   * where the non-hook names are then found too. */
  ck_assert (query (index, hook));
  ck_assert (query (index, other));
  ck_assert (query (index, find_name (other + 1, RPC, false)));

  /* After a crash, a rebuild keeps only hooks of sparse chapters. */
  vdo_free_dedupe_index (index);
  config.create = false;
  index = start_index (&config);
  wait_rebuilt (index);
  ck_assert (query (index, dense));
  ck_assert (!query (index, find_name (other + 1, RPC, false)));
  ck_assert (query (index, find_name (hook + 1, RPC, true)));
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

/* --- Creation and read-only ------------------------------------------- */

START_TEST (test_create_over_garbage)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_index_super_block super;
  uint8_t block[VDO_BLOCK_SIZE];
  struct vdo_dedupe_index *index;
  block_count_t b;
  size_t i;

  srandom (11);
  for (b = 0; b < 64; b++) {
    for (i = 0; i < VDO_BLOCK_SIZE; i++)
      block[i] = (uint8_t) random ();
    write_image_block (b, block);
  }
  index = start_index (&config);
  ck_assert (!stats_of (index).rebuilding);
  ck_assert (!query (index, 1));
  ck_assert (!post (index, 1));
  ck_assert (query (index, 1));
  vdo_free_dedupe_index (index);

  read_image_block (0, block);
  for (i = 0; i < VDO_BLOCK_SIZE; i++)
    ck_assert_uint_eq (block[i], 0);
  read_image_block (1, block);
  ck_assert_int_eq (vdo_decode_index_super_block (block, &super),
                    VDO_SUCCESS);
  ck_assert_uint_eq (super.nonce, config.nonce);

  /* Another volume's index (other nonce) is not ours: created anew. */
  config.nonce++;
  index = start_index (&config);
  ck_assert (!stats_of (index).rebuilding);
  ck_assert (!query (index, 1));
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

static uint32_t
image_crc (void)
{
  static uint8_t buffer[1 << 16];
  int fd = open (image, O_RDONLY);
  uint32_t crc = 0;
  ssize_t n;

  ck_assert_int_ge (fd, 0);
  while ((n = read (fd, buffer, sizeof buffer)) > 0)
    crc = vdo_crc32_extend (crc, buffer, (size_t) n);
  close (fd);
  return crc;
}

START_TEST (test_read_only_writes_nothing)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index;
  uint32_t before;

  config.create = true;
  index = start_index (&config);
  post_new_names (index, 0, 2 * RPC + 3);
  wait_chapters_written (index, 2);
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
  before = image_crc ();

  /* Crashed: a read-only start rebuilds (reading only), serves, and
   * keeps new names in memory, even past a chapter's worth. */
  io = open_image (VDO_IO_READ_ONLY);
  config = small_config (io);
  config.read_only = true;
  index = start_index (&config);
  wait_rebuilt (index);
  ck_assert (query (index, 1));
  post_new_names (index, 50000, 2 * RPC + 1);
  ck_assert (query (index, 50000 + 2 * RPC));
  ck_assert_uint_eq (stats_of (index).chapters_written, 0);
  ck_assert_int_eq (vdo_save_dedupe_index (index), VDO_SUCCESS);
  vdo_free_dedupe_index (index);

  /* Read-only over a region with no index: empty, in memory. */
  config.nonce++;
  index = start_index (&config);
  ck_assert (!post (index, 1));
  ck_assert (query (index, 1));
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
  ck_assert_uint_eq (image_crc (), before);
}
END_TEST

/* --- Sizes ------------------------------------------------------------ */

START_TEST (test_layout_fits_standard_configs)
{
  static const uint32_t mems[] = {
    VDO_INDEX_MEMORY_256MB, VDO_INDEX_MEMORY_512MB, VDO_INDEX_MEMORY_768MB,
    1, 2, 3, 4,
  };
  unsigned int i, sparse;

  for (i = 0; i < sizeof mems / sizeof mems[0]; i++)
    for (sparse = 0; sparse < 2; sparse++) {
      struct vdo_dedupe_index_config config = {
        .mem = mems[i], .sparse = sparse != 0,
      };
      block_count_t needed, region;

      ck_assert_int_eq (vdo_dedupe_index_region_blocks (&config, &needed),
                        VDO_SUCCESS);
      ck_assert_int_eq (vdo_compute_index_blocks (mems[i], sparse != 0,
                                                  &region), VDO_SUCCESS);
      ck_assert_msg (needed <= region, "mem %d sparse %u: %lu > %lu blocks",
                     (int) mems[i], sparse, (unsigned long) needed,
                     (unsigned long) region);
    }
}
END_TEST

/* At the real 0.25 GB geometry, a save of a nearly empty index writes
 * a few of the volume index's 50 000-odd pages, and loads back. */
START_TEST (test_save_writes_only_used_pages)
{
  struct vdo_dedupe_index_config config = {
    .mem = VDO_INDEX_MEMORY_256MB, .nonce = 5, .create = true,
    .region_start = REGION_START,
  };
  struct vdo_index_save_header header;
  struct vdo_index_layout layout;
  struct vdo_dedupe_index *index;
  struct vdo_index_geometry geometry;
  uint8_t block[VDO_BLOCK_SIZE];
  struct vdo_io *io;
  unsigned int slot;
  int fd;

  ck_assert_int_eq (vdo_compute_index_geometry (config.mem, false,
                                                &geometry), VDO_SUCCESS);
  config.region_blocks = geometry.index_blocks;
  fd = open (image, O_RDWR);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, (off_t) (REGION_START
                                            + geometry.index_blocks)
                                   * VDO_BLOCK_SIZE), 0);
  close (fd);

  io = open_image (0);
  config.io = io;
  index = start_index (&config);
  post_new_names (index, 0, 10);
  ck_assert_int_eq (vdo_save_dedupe_index (index), VDO_SUCCESS);
  vdo_free_dedupe_index (index);

  ck_assert_int_eq (vdo_compute_index_layout (geometry.records_per_chapter,
                                              geometry.chapters_per_volume, 1,
                                              &layout), VDO_SUCCESS);
  /* Slot 0 starts after the ring, whatever the page count. */
  read_image_block (layout.save_slot_start[0], block);
  ck_assert_int_eq (vdo_decode_index_save_header (block, &header),
                    VDO_SUCCESS);
  ck_assert_uint_gt (header.volume_index_pages, 50000);
  ck_assert_uint_ge (header.saved_pages, 1);
  ck_assert_uint_le (header.saved_pages, 20);
  ck_assert_uint_eq (header.open_records, 10);
  slot = 0;

  config.create = false;
  index = start_index (&config);
  ck_assert (!stats_of (index).rebuilding);
  ck_assert (query (index, 9));
  ck_assert (!query (index, 10));
  vdo_free_dedupe_index (index);
  read_image_block (layout.save_slot_start[slot], block);
  ck_assert_int_ne (vdo_decode_index_save_header (block, &header),
                    VDO_SUCCESS);
  vdo_io_close (io);
}
END_TEST

/* A device that dies during a save, at any of its first writes: the
 * save fails and returns.  The full geometry's stream spans several
 * write chunks (its chapter prefixes alone are 2 MiB). */
START_TEST (test_save_on_dying_device)
{
  struct vdo_dedupe_index_config config = {
    .mem = VDO_INDEX_MEMORY_256MB, .nonce = 6, .create = true,
    .region_start = REGION_START,
  };
  struct vdo_index_geometry geometry;
  unsigned int k;
  int fd;

  ck_assert_int_eq (vdo_compute_index_geometry (config.mem, false,
                                                &geometry), VDO_SUCCESS);
  config.region_blocks = geometry.index_blocks;
  fd = open (image, O_RDWR);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, (off_t) (REGION_START
                                            + geometry.index_blocks)
                                   * VDO_BLOCK_SIZE), 0);
  close (fd);

  /* Operations of a save: two header reads, the invalidation and its
   * flush, then the stream's chunks. */
  for (k = 2; k <= 7; k++) {
    struct vdo_sim_options options = { 0 };
    struct vdo_dedupe_index *index;
    struct vdo_sim_counts counts;
    struct vdo_sim *sim;

    ck_assert_int_eq (vdo_sim_create_file (image, &options, &sim), 0);
    ck_assert_int_eq (vdo_io_start (vdo_sim_io (sim), 0), 0);
    config.io = vdo_sim_io (sim);
    index = start_index (&config);
    post_new_names (index, 0, 300);
    vdo_sim_get_counts (sim, &counts);
    vdo_sim_fail_from (sim, counts.operations + k, EIO);
    ck_assert_int_ne (vdo_save_dedupe_index (index), VDO_SUCCESS);
    vdo_free_dedupe_index (index);
    vdo_sim_get_counts (sim, &counts);
    ck_assert_uint_ge (counts.failed, 1);
    vdo_sim_close (sim);
  }
}
END_TEST

START_TEST (test_region_too_small)
{
  struct vdo_io *io = open_image (0);
  struct vdo_dedupe_index_config config = small_config (io);
  struct vdo_dedupe_index *index = NULL;
  block_count_t needed;

  ck_assert_int_eq (vdo_dedupe_index_region_blocks (&config, &needed),
                    VDO_SUCCESS);
  config.region_blocks = needed - 1;
  ck_assert_int_eq (vdo_make_dedupe_index (&config, &index),
                    VDO_BAD_INDEX_CONFIG);
  config.region_blocks = needed;
  config.create = true;
  ck_assert_int_eq (vdo_make_dedupe_index (&config, &index), VDO_SUCCESS);
  vdo_free_dedupe_index (index);
  vdo_io_close (io);
}
END_TEST

Suite *
dedupe_index_suite (void)
{
  Suite *s = suite_create ("dedupe_index");
  TCase *requests = tcase_create ("requests");
  TCase *chapters = tcase_create ("chapters");
  TCase *persistence = tcase_create ("persistence");
  TCase *sizes = tcase_create ("sizes");

  tcase_add_checked_fixture (requests, setup, teardown);
  tcase_add_test (requests, test_post_then_found);
  tcase_add_test (requests, test_query_does_not_store);
  tcase_add_test (requests, test_update_overwrites);
  suite_add_tcase (s, requests);

  tcase_add_checked_fixture (chapters, setup, teardown);
  tcase_add_test (chapters, test_names_survive_chapter_close);
  tcase_add_test (chapters, test_window_expiry);
  tcase_add_test (chapters, test_wraps_the_ring);
  tcase_add_test (chapters, test_sparse_cache);
  suite_add_tcase (s, chapters);

  tcase_add_checked_fixture (persistence, setup, teardown);
  tcase_add_test (persistence, test_save_and_load);
  tcase_add_test (persistence, test_corrupt_save_rebuilds);
  tcase_add_test (persistence, test_crash_rebuilds);
  tcase_add_test (persistence, test_requests_during_rebuild);
  tcase_add_test (persistence, test_rebuild_skips_corrupt_block);
  tcase_add_test (persistence, test_create_over_garbage);
  tcase_add_test (persistence, test_read_only_writes_nothing);
  suite_add_tcase (s, persistence);

  tcase_add_checked_fixture (sizes, setup, teardown);
  /* Full-size indexes: each start maps a 216 MiB table, slow under
   * sanitizers or on a busy machine. */
  tcase_set_timeout (sizes, 120);
  tcase_add_test (sizes, test_layout_fits_standard_configs);
  tcase_add_test (sizes, test_region_too_small);
  tcase_add_test (sizes, test_save_writes_only_used_pages);
  tcase_add_test (sizes, test_save_on_dying_device);
  suite_add_tcase (s, sizes);
  return s;
}
