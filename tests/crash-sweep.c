/* nbdkit-vdo: the crash sweep.
 *
 * Formats a small volume, runs a seeded multi-threaded workload through
 * the real runtime (vdo_load .. vdo_stop) on the power-cut simulator,
 * and records for every logical block what each request wrote and when
 * it started and returned, on the simulator's clock.  Then, for each of
 * many crash images made from that history (durable prefixes, random
 * subsets of volatile writes, torn sectors, and separate runs on a
 * device that dies), it starts the runtime on the image, which must
 * recover it, reads every logical block back, stops cleanly and audits.
 *
 * The model: a request is durable once it returned, if it is a discard,
 * a FUA write, or any write under the synchronous write policy; other
 * writes (--async-writes) once a flush that started after they returned
 * has returned.  A block must read back the last request durable before
 * the crash point, or what any later request that had started wrote:
 * the journal keeps one block's changes in order, so recovery leaves one
 * of them.  Requests on one block never overlap: each worker thread owns
 * its own blocks.
 *
 * Determinism: the crash images chosen, the workers' requests and the
 * simulator's completion order are all drawn from --seed; the way the
 * runtime's threads interleave is not, so the history itself varies a
 * little between runs.  Failures print the kind, point and seed of the
 * image; --keep DIR saves each failing image as a file.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "io-simulator.h"
#include "io.h"
#include "logger.h"
#include "status.h"
#include "super-block.h"
#include "vdo.h"
#include "volume.h"

#define BLOCK VDO_BLOCK_SIZE
#define NEVER UINT64_MAX
/* Each worker owns runs of this many logical blocks; no request crosses
 * one, so requests on a block never overlap. */
#define CHUNK_LBNS 8
#define PATTERN_COUNT 16
#define DEDUPE_PATTERN_COUNT 6

enum image_kind { KIND_PREFIX, KIND_SUBSET, KIND_TORN, KIND_EIO, KIND_COUNT };

static const char *const kind_names[KIND_COUNT] = {
  "prefix", "subset", "torn", "eio",
};

struct sweep_options {
  uint64_t images;
  uint64_t seed;
  uint64_t ops;                 /* requests in the main workload */
  uint64_t eio_ops;             /* requests in each dying-device run */
  unsigned threads;
  uint64_t lbns;                /* tracked blocks, in chunks */
  uint64_t spread;              /* LBNs from one chunk to the next */
  uint64_t cache_pages;
  unsigned mix[KIND_COUNT];     /* relative weights */
  bool dedupe_heavy;
  bool dedupe;                  /* the runtime deduplicates */
  bool compression;             /* the runtime compresses; data compresses */
  bool async_writes;            /* VDO_WRITE_POLICY_ASYNC, with FUA writes */
  unsigned jobs;
  unsigned logical_zones, physical_zones;
  bool single_zone_thread;      /* the zones share one thread */
  const char *dir;
  const char *keep_dir;
  bool verbose;
  bool skip_without_recovery;
  unsigned timeout;             /* seconds one image may take */
};

static struct sweep_options opt = {
  .images = 200, .seed = 1, .ops = 3000, .threads = 4, .lbns = 2048,
  .spread = 104, .cache_pages = 16, .timeout = 120,
  .mix = { 35, 30, 30, 5 }, .jobs = 2,
};

/* --- Random numbers and block contents ------------------------------- */

static uint64_t
next_random (uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t
random_below (uint64_t *state, uint64_t bound)
{
  return bound ? next_random (state) % bound : 0;
}

static uint64_t
mix_seed (uint64_t a, uint64_t b)
{
  uint64_t state = a ^ (b * 0xd1342543de82ef95ull);

  return next_random (&state);
}

/* Key 0 is the zero block; any other key names a block that starts with
 * the key and goes on with a stream drawn from it.  With --compression,
 * most keys repeat a run of that stream, of a length the key picks, so
 * LZ4 fragments of many sizes reach the packer. */
static void
fill_block (uint8_t *block, uint64_t key)
{
  uint64_t *words = (uint64_t *) block, state = key;
  size_t i, run = BLOCK / sizeof *words;

  if (key == 0) {
    memset (block, 0, BLOCK);
    return;
  }
  if (opt.compression && key % 8 != 0)
    run = 2 + (key >> 8) % 300;
  words[0] = key;
  for (i = 1; i < BLOCK / sizeof *words; i++)
    words[i] = i < run ? next_random (&state) : words[i - run];
}

static bool
block_has_key (const uint8_t *block, uint64_t key, uint8_t *scratch)
{
  if (key == 0) {
    static const uint8_t zeros[BLOCK];

    return memcmp (block, zeros, BLOCK) == 0;
  }
  if (memcmp (block, &key, sizeof key) != 0)
    return false;
  fill_block (scratch, key);
  return memcmp (block, scratch, BLOCK) == 0;
}

/* --- Logging: quiet, but keep the last error for failure reports ------ */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_error[512];

static void
log_sink (enum vdo_log_level level, const char *message)
{
  if (opt.verbose)
    fprintf (stderr, "  [libvdo] %s\n", message);
  if (level == VDO_LOG_ERROR) {
    pthread_mutex_lock (&log_lock);
    snprintf (last_error, sizeof last_error, "%s", message);
    pthread_mutex_unlock (&log_lock);
  }
}

static void
take_last_error (char *buffer, size_t size)
{
  pthread_mutex_lock (&log_lock);
  snprintf (buffer, size, "%s", last_error[0] ? last_error : "(none)");
  last_error[0] = '\0';
  pthread_mutex_unlock (&log_lock);
}

/* --- The model -------------------------------------------------------- */

struct lbn_op {
  uint64_t start;               /* clock before the request */
  uint64_t end;                 /* clock after it returned; NEVER: failed */
  uint64_t end_order;           /* stamp order of END (take_stamp) */
  uint64_t durable;             /* from when it survives a crash; NEVER */
  uint64_t key;
  bool sync;                    /* durable when it returns */
};

struct lbn_history {
  struct lbn_op *ops;
  uint32_t count, capacity;
};

/* Only the owning worker appends to a block's history. */
static void
record_op (struct lbn_history *h, uint64_t start, uint64_t end,
           uint64_t end_order, uint64_t key, bool sync)
{
  if (h->count == h->capacity) {
    h->capacity = h->capacity ? h->capacity * 2 : 8;
    h->ops = realloc (h->ops, h->capacity * sizeof *h->ops);
    if (h->ops == NULL) {
      perror ("crash-sweep: realloc");
      exit (EXIT_FAILURE);
    }
  }
  h->ops[h->count++] = (struct lbn_op) {
    .start = start, .end = end, .end_order = end_order,
    .durable = sync ? end : NEVER, .key = key, .sync = sync,
  };
}

/* The keys a block may hold after a crash at POINT: the last one durable
 * before it (0 if none), then those of every later request that had
 * started.  Durability follows request order on a block, so the last
 * durable request is the last one whose durable time has passed.
 * Returns how many, at most MAX. */
static int
allowed_keys (const struct lbn_history *h, uint64_t point, uint64_t *keys,
              int max)
{
  uint32_t i, last = UINT32_MAX;
  int n = 1;

  for (i = 0; i < h->count; i++)
    if (h->ops[i].durable <= point)
      last = i;
  keys[0] = last == UINT32_MAX ? 0 : h->ops[last].key;
  for (i = last == UINT32_MAX ? 0 : last + 1;
       i < h->count && h->ops[i].start < point && n < max; i++)
    keys[n++] = h->ops[i].key;
  return n;
}

static void
print_history (uint64_t lbn, const struct lbn_history *h)
{
  uint32_t i;

  fprintf (stderr, "crash-sweep: history of LBN %" PRIu64 ":\n", lbn);
  for (i = 0; i < h->count; i++)
    fprintf (stderr, "  start %" PRIu64 " end %" PRIu64 " durable %" PRIu64
             " key %016" PRIx64 "%s\n", h->ops[i].start, h->ops[i].end,
             h->ops[i].durable, h->ops[i].key, h->ops[i].sync ? " sync" : "");
}

/* A completed flush makes durable every write that returned before it
 * started. */
struct flush_span {
  uint64_t start, end;
  uint64_t start_order;         /* stamp order of START */
};

static int
compare_flush_starts (const void *a, const void *b)
{
  const struct flush_span *x = a, *y = b;

  return x->start_order < y->start_order ? -1
         : x->start_order > y->start_order;
}

/* Give each asynchronous write the end of the earliest flush that covers
 * it. */
static void
apply_flushes (struct lbn_history *model, uint64_t lbns,
               struct flush_span *flushes, size_t count)
{
  uint64_t *earliest_end = malloc ((count + 1) * sizeof *earliest_end);
  uint64_t lbn;
  size_t k;

  if (earliest_end == NULL) {
    perror ("crash-sweep: malloc");
    exit (EXIT_FAILURE);
  }
  if (count > 0)                /* qsort wants a real array */
    qsort (flushes, count, sizeof *flushes, compare_flush_starts);
  /* earliest_end[k]: the first end among flushes k.. (by start). */
  earliest_end[count] = NEVER;
  for (k = count; k > 0; k--)
    earliest_end[k - 1] = flushes[k - 1].end < earliest_end[k]
                          ? flushes[k - 1].end : earliest_end[k];
  for (lbn = 0; lbn < lbns; lbn++) {
    struct lbn_history *h = &model[lbn];
    uint32_t i;

    for (i = 0; i < h->count; i++) {
      struct lbn_op *op = &h->ops[i];
      size_t lo = 0, hi = count;

      if (op->sync || op->end == NEVER)
        continue;
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (flushes[mid].start_order < op->end_order)
          lo = mid + 1;
        else
          hi = mid;
      }
      op->durable = earliest_end[lo];
    }
  }
  free (earliest_end);
}

/* --- Workloads -------------------------------------------------------- */

/* Tracked block M lives at this LBN: chunks are spread out, so that the
 * block map grows many tree pages and the small cache has to evict. */
static uint64_t
real_lbn (uint64_t m)
{
  return m / CHUNK_LBNS * opt.spread + m % CHUNK_LBNS;
}

static uint64_t
logical_blocks (void)
{
  return real_lbn (opt.lbns - 1) + 1;
}

enum op_type {
  OP_WRITE, OP_PATTERN, OP_ZERO_DATA, OP_TRIM, OP_ZERO, OP_FLUSH, OP_READ,
  OP_TYPES,
};

static const char *const op_names[OP_TYPES] = {
  "write", "repeat", "zero-data", "trim", "zero", "flush", "read",
};

/* Percentages, in enum order. */
static const unsigned normal_mix[OP_TYPES] = { 45, 15, 8, 12, 8, 6, 6 };
static const unsigned dedupe_mix[OP_TYPES] = { 15, 55, 6, 8, 6, 5, 5 };

struct run {
  struct vdo_io *base;
  struct vdo_sim *sim;
  struct vdo *vdo;
  struct lbn_history *model;    /* one per logical block */
  uint64_t seed;
  uint64_t ops_per_worker;
  uint64_t op_counts[OP_TYPES];
  uint64_t failed_requests;
  uint64_t live_failures;
  struct vdo_statistics stats;  /* at the end of the workload */
  bool started;
  struct flush_span *flushes;   /* completed flushes */
  size_t flush_count, flush_capacity;
  uint64_t next_order;          /* take_stamp */
  pthread_mutex_t lock;
};

/* The simulator's clock counts device operations, so a write acknowledged
 * before any I/O can end on the same tick a flush starts on, before or
 * after it.  Stamps add a total order, so a flush covers exactly the
 * writes that returned before it was called. */
struct stamp {
  uint64_t clock, order;
};

static struct stamp
take_stamp (struct run *run)
{
  struct stamp stamp;

  pthread_mutex_lock (&run->lock);
  stamp.clock = vdo_sim_clock (run->sim);
  stamp.order = run->next_order++;
  pthread_mutex_unlock (&run->lock);
  return stamp;
}

struct worker {
  struct run *run;
  unsigned index;
  uint64_t random;
  uint64_t op_counts[OP_TYPES];
  uint8_t *buffer, *scratch;
};

static uint64_t
pattern_key (uint64_t seed, uint64_t which)
{
  return mix_seed (seed, 0x7061747465726e00ull + which) | 1;
}

static uint64_t
pick_key (struct worker *w, enum op_type type)
{
  unsigned patterns = opt.dedupe_heavy ? DEDUPE_PATTERN_COUNT : PATTERN_COUNT;

  switch (type) {
  case OP_WRITE:
    return next_random (&w->random) | 1;
  case OP_PATTERN:
    return pattern_key (w->run->seed, random_below (&w->random, patterns));
  default:
    return 0;
  }
}

static enum op_type
pick_type (struct worker *w)
{
  const unsigned *mix = opt.dedupe_heavy ? dedupe_mix : normal_mix;
  uint64_t r = random_below (&w->random, 100);
  int t;

  for (t = 0; t < OP_TYPES - 1; t++) {
    if (r < mix[t])
      return t;
    r -= mix[t];
  }
  return OP_TYPES - 1;
}

/* Read back blocks the worker owns and compare with what it last wrote:
 * the live data path must be right before crashes are worth checking. */
static bool
live_check (struct worker *w, uint64_t lbn, uint64_t count)
{
  struct run *run = w->run;
  uint64_t i;

  if (vdo_read (run->vdo, w->buffer, count * BLOCK,
                real_lbn (lbn) * BLOCK) != 0)
    return false;
  for (i = 0; i < count; i++) {
    const struct lbn_history *h = &run->model[lbn + i];
    uint64_t key = h->count ? h->ops[h->count - 1].key : 0;

    /* An acknowledged asynchronous write that the dying device then
     * failed is lost (its flush fails): reads show what came before. */
    if (opt.async_writes && vdo_is_serving_read_only (run->vdo))
      break;
    if (!block_has_key (w->buffer + i * BLOCK, key, w->scratch)) {
      fprintf (stderr, "crash-sweep: LIVE FAILURE: LBN %" PRIu64 " does not "
               "read back what was last written (key %016" PRIx64 ")\n",
               real_lbn (lbn + i), key);
      pthread_mutex_lock (&run->lock);
      run->live_failures++;
      pthread_mutex_unlock (&run->lock);
    }
  }
  return true;
}

static void
record_flush (struct run *run, struct stamp start, uint64_t end)
{
  pthread_mutex_lock (&run->lock);
  if (run->flush_count == run->flush_capacity) {
    run->flush_capacity = run->flush_capacity ? run->flush_capacity * 2 : 64;
    run->flushes = realloc (run->flushes,
                            run->flush_capacity * sizeof *run->flushes);
    if (run->flushes == NULL) {
      perror ("crash-sweep: realloc");
      exit (EXIT_FAILURE);
    }
  }
  run->flushes[run->flush_count++] = (struct flush_span) {
    .start = start.clock, .end = end, .start_order = start.order,
  };
  pthread_mutex_unlock (&run->lock);
}

static void *
worker_main (void *arg)
{
  struct worker *w = arg;
  struct run *run = w->run;
  uint64_t chunks = opt.lbns / CHUNK_LBNS, mine, n;

  mine = (chunks - w->index + opt.threads - 1) / opt.threads;
  for (n = 0; n < run->ops_per_worker && mine > 0; n++) {
    enum op_type type = pick_type (w);
    uint64_t chunk = w->index + random_below (&w->random, mine) * opt.threads;
    uint64_t offset = random_below (&w->random, CHUNK_LBNS);
    uint64_t count = 1 + random_below (&w->random, type >= OP_TRIM ? 8 : 4);
    uint64_t lbn = chunk * CHUNK_LBNS + offset, keys[8], i;
    struct stamp start, end;
    bool fua = false;
    int r = 0;

    if (count > CHUNK_LBNS - offset)
      count = CHUNK_LBNS - offset;
    w->op_counts[type]++;
    for (i = 0; i < count; i++) {
      keys[i] = pick_key (w, type);
      fill_block (w->buffer + i * BLOCK, keys[i]);
    }
    start = take_stamp (run);
    switch (type) {
    case OP_WRITE: case OP_PATTERN: case OP_ZERO_DATA:
      /* Only asynchronous writes need FUA to be durable at once. */
      fua = opt.async_writes && random_below (&w->random, 8) == 0;
      r = vdo_write (run->vdo, w->buffer, count * BLOCK,
                     real_lbn (lbn) * BLOCK, fua);
      break;
    case OP_TRIM: case OP_ZERO:
      r = vdo_discard (run->vdo, count * BLOCK, real_lbn (lbn) * BLOCK,
                       type == OP_TRIM);
      break;
    case OP_FLUSH:
      r = vdo_flush (run->vdo);
      break;
    case OP_READ:
      if (!live_check (w, lbn, count))
        r = EIO;
      break;
    default:
      break;
    }
    end = take_stamp (run);
    if (r != 0)
      end.clock = NEVER;
    if (type == OP_FLUSH && r == 0)
      record_flush (run, start, end.clock);
    if (type != OP_FLUSH && type != OP_READ)
      for (i = 0; i < count; i++)
        record_op (&run->model[lbn + i], start.clock, end.clock, end.order,
                   keys[i],
                   fua || !opt.async_writes || type == OP_TRIM
                   || type == OP_ZERO);
    if (r != 0) {
      /* Only a dying device should fail a request; stop there, since
       * what follows depends on what the failed one left. */
      pthread_mutex_lock (&run->lock);
      run->failed_requests++;
      pthread_mutex_unlock (&run->lock);
      break;
    }
  }
  return NULL;
}

static int
open_runtime (struct vdo_io *io, struct vdo **vdo)
{
  struct vdo_options options = {
    .cache_pages = opt.cache_pages,
    .logical_zones = opt.logical_zones,
    .physical_zones = opt.physical_zones,
    .single_zone_thread = opt.single_zone_thread,
    .write_policy = opt.async_writes ? VDO_WRITE_POLICY_ASYNC
                                     : VDO_WRITE_POLICY_SYNC,
    .dedupe = opt.dedupe,
    .compression = opt.compression,
    .io = io,
  };
  int r;

  r = vdo_load (NULL, &options, vdo);
  if (r != 0)
    return r;
  r = vdo_start (*vdo);
  if (r != 0) {
    vdo_free (*vdo);
    *vdo = NULL;
  }
  return r;
}

/* Run a workload of OPS requests on a new simulator over BASE, dying at
 * operation FAIL_OP (NEVER: not at all). */
static int
run_workload (struct run *run, struct vdo_io *base, uint64_t seed,
              uint64_t ops, uint64_t fail_op)
{
  struct vdo_sim_options sim_options = {
    .log_dir = opt.dir, .reorder = true, .seed = seed,
  };
  struct worker *workers;
  pthread_t *threads;
  unsigned i;
  int r, t;

  memset (run, 0, sizeof *run);
  pthread_mutex_init (&run->lock, NULL);
  run->base = base;
  run->seed = seed;
  run->ops_per_worker = ops / opt.threads;
  run->model = calloc (opt.lbns, sizeof *run->model);
  workers = calloc (opt.threads, sizeof *workers);
  threads = calloc (opt.threads, sizeof *threads);
  if (!run->model || !workers || !threads) {
    perror ("crash-sweep: calloc");
    exit (EXIT_FAILURE);
  }
  r = vdo_sim_create (base, &sim_options, &run->sim);
  if (r != 0)
    goto out;
  if (fail_op != NEVER)
    vdo_sim_fail_from (run->sim, fail_op, EIO);
  r = open_runtime (vdo_sim_io (run->sim), &run->vdo);
  if (r != 0) {
    /* Only a dying device may stop the start. */
    if (fail_op != NEVER)
      r = 0;
    goto out;
  }
  run->started = true;
  for (i = 0; i < opt.threads; i++) {
    workers[i].run = run;
    workers[i].index = i;
    workers[i].random = mix_seed (seed, i + 1);
    workers[i].buffer = vdo_io_alloc_buffer (CHUNK_LBNS * BLOCK);
    workers[i].scratch = vdo_io_alloc_buffer (BLOCK);
    t = pthread_create (&threads[i], NULL, worker_main, &workers[i]);
    if (t != 0) {
      fprintf (stderr, "crash-sweep: pthread_create: %s\n", strerror (t));
      exit (EXIT_FAILURE);
    }
  }
  for (i = 0; i < opt.threads; i++) {
    int k;

    pthread_join (threads[i], NULL);
    for (k = 0; k < OP_TYPES; k++)
      run->op_counts[k] += workers[i].op_counts[k];
    vdo_io_free_buffer (workers[i].buffer);
    vdo_io_free_buffer (workers[i].scratch);
  }
  apply_flushes (run->model, opt.lbns, run->flushes, run->flush_count);
  vdo_get_statistics (run->vdo, &run->stats);
  r = vdo_stop (run->vdo);
  if (fail_op != NEVER)
    r = 0;
  vdo_free (run->vdo);
  run->vdo = NULL;

 out:
  free (workers);
  free (threads);
  return r;
}

static void
free_run (struct run *run)
{
  uint64_t i;

  for (i = 0; run->model && i < opt.lbns; i++)
    free (run->model[i].ops);
  free (run->model);
  free (run->flushes);
  vdo_sim_close (run->sim);
  pthread_mutex_destroy (&run->lock);
}

/* --- Checking one crash image ----------------------------------------- */

struct image_spec {
  enum image_kind kind;
  struct vdo_sim_crash crash;   /* for eio: kind and seed of the image */
  uint64_t fail_op;             /* eio only */
};

struct tally {
  uint64_t tested[KIND_COUNT];
  uint64_t failed[KIND_COUNT];
  uint64_t refused_dirty;       /* recovery missing: DIRTY refused */
  uint64_t recovered;           /* images that needed recovery */
  uint64_t torn_blocks, kept_writes, volatile_writes, eio_failed_requests;
  uint64_t eio_live_failures;
  uint64_t kept_files;
};

static pthread_mutex_t tally_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tally tally;

static int
copy_sparse (const char *from, const char *to)
{
  int in = open (from, O_RDONLY), out = -1, r = -1;
  struct stat st;
  off_t data = 0, hole;

  if (in < 0 || fstat (in, &st) != 0)
    goto done;
  out = open (to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0 || ftruncate (out, st.st_size) != 0)
    goto done;
  while ((data = lseek (in, data, SEEK_DATA)) >= 0) {
    hole = lseek (in, data, SEEK_HOLE);
    while (data < hole) {
      off_t in_offset = data, out_offset = data;
      ssize_t n = copy_file_range (in, &in_offset, out, &out_offset,
                                   hole - data, 0);

      if (n <= 0)
        goto done;
      data += n;
    }
  }
  r = 0;
 done:
  if (in >= 0)
    close (in);
  if (out >= 0)
    close (out);
  return r;
}

static const char *base_path;

static void
keep_image (struct run *run, enum image_kind kind,
            const struct vdo_sim_crash *crash, uint64_t number)
{
  char path[PATH_MAX];
  struct vdo_io *target;

  snprintf (path, sizeof path, "%s/crash-%" PRIu64 "-%s-%" PRIu64 "-%"
            PRIu64 ".img", opt.keep_dir, number, kind_names[kind],
            crash->point, crash->seed);
  if (copy_sparse (base_path, path) != 0
      || vdo_io_open (path, VDO_IO_BUFFERED, &target) != 0) {
    fprintf (stderr, "crash-sweep: cannot save %s\n", path);
    return;
  }
  if (vdo_sim_write_crash (run->sim, crash, target, NULL) == 0)
    fprintf (stderr, "crash-sweep:   saved as %s\n", path);
  vdo_io_close (target);
  pthread_mutex_lock (&tally_lock);
  tally.kept_files++;
  pthread_mutex_unlock (&tally_lock);
}

/* Compare every logical block with the model at POINT. */
static bool
check_contents (struct run *run, struct vdo *vdo, uint64_t point,
                char *why, size_t size)
{
  uint8_t *buffer = vdo_io_alloc_buffer (CHUNK_LBNS * BLOCK);
  uint8_t *scratch = vdo_io_alloc_buffer (BLOCK);
  uint64_t lbn, i, bad = 0;
  bool ok = true;
  int r;

  for (lbn = 0; ok && lbn < opt.lbns; lbn += CHUNK_LBNS) {
    uint64_t n = CHUNK_LBNS;

    r = vdo_read (vdo, buffer, n * BLOCK, real_lbn (lbn) * BLOCK);
    if (r != 0) {
      snprintf (why, size, "reading LBNs %" PRIu64 "..%" PRIu64 " failed: %s",
                real_lbn (lbn), real_lbn (lbn) + n - 1, strerror (r));
      ok = false;
      break;
    }
    for (i = 0; i < n; i++) {
      uint64_t keys[64], got;
      int k, count = allowed_keys (&run->model[lbn + i], point, keys, 64);

      for (k = 0; k < count; k++)
        if (block_has_key (buffer + i * BLOCK, keys[k], scratch))
          break;
      if (k < count)
        continue;
      if (bad++ == 0) {
        memcpy (&got, buffer + i * BLOCK, sizeof got);
        if (opt.verbose)
          print_history (real_lbn (lbn + i), &run->model[lbn + i]);
        if (count > 1)
          snprintf (why, size, "LBN %" PRIu64 " holds %016" PRIx64 "..., "
                    "expected key %016" PRIx64 " or one of %d later",
                    real_lbn (lbn + i), got, keys[0], count - 1);
        else
          snprintf (why, size, "LBN %" PRIu64 " holds %016" PRIx64 "..., "
                    "expected key %016" PRIx64, real_lbn (lbn + i), got,
                    keys[0]);
      }
    }
  }
  if (bad > 1) {
    size_t used = strlen (why);

    snprintf (why + used, size - used, " (and %" PRIu64 " more LBNs)",
              bad - 1);
  }
  vdo_io_free_buffer (buffer);
  vdo_io_free_buffer (scratch);
  return ok && bad == 0;
}

static bool
audit_image (struct vdo_io *io, char *why, size_t size)
{
  struct vdo_audit_result result;
  struct vdo_volume *volume;
  uint32_t state;
  int r;

  r = vdo_volume_open_io (io, false, &volume);
  if (r != 0) {
    snprintf (why, size, "reopening for the audit failed: %s",
              vdo_status_to_string (r));
    return false;
  }
  state = vdo_volume_get_states (volume)->state;
  r = vdo_audit_volume (volume, NULL, NULL, &result);
  vdo_volume_close (volume);
  if (state != VDO_CLEAN) {
    snprintf (why, size, "state %s after a clean stop",
              vdo_state_name (state));
    return false;
  }
  if (r != VDO_SUCCESS || !vdo_audit_passed (&result)) {
    snprintf (why, size, "audit failed (%s): %" PRIu64 " mapping, %" PRIu64
              " reference count, %" PRIu64 " hint errors; logical blocks "
              "used %" PRIu64 " counted, %" PRIu64 " saved",
              vdo_status_to_string (r), result.mapping_errors,
              result.reference_count_errors, (uint64_t) result.hint_errors,
              (uint64_t) result.logical_blocks_used,
              (uint64_t) result.saved_logical_blocks_used);
    return false;
  }
  return true;
}

/* True if IMAGE holds a volume that needs recovery. */
static bool
needs_recovery (struct vdo_io *io)
{
  struct vdo_volume *volume;
  bool dirty;

  if (vdo_volume_open_io (io, false, &volume) != 0)
    return false;
  dirty = vdo_state_requires_recovery (vdo_volume_get_states (volume)->state);
  vdo_volume_close (volume);
  return dirty;
}

/* Recover the image of CRASH, check it, stop, audit.  Returns true if it
 * passed; else WHY says what failed.  *REFUSED: the load refused it as
 * needing recovery. */
static bool
check_crash (struct run *run, const struct vdo_sim_crash *crash,
             struct vdo_sim_crash_info *info, bool *refused, char *why,
             size_t size)
{
  struct vdo_sim *image;
  struct vdo *vdo = NULL;
  char error[512];
  bool ok = false, dirty;
  int r;

  *refused = false;
  r = vdo_sim_open_crash (run->sim, crash, NULL, &image, info);
  if (r != 0) {
    snprintf (why, size, "making the image failed: %s", strerror (r));
    return false;
  }
  dirty = needs_recovery (vdo_sim_io (image));
  if (dirty) {
    pthread_mutex_lock (&tally_lock);
    tally.recovered++;
    pthread_mutex_unlock (&tally_lock);
  }
  r = open_runtime (vdo_sim_io (image), &vdo);
  if (r != 0) {
    take_last_error (error, sizeof error);
    *refused = r == UDS_BAD_STATE && dirty;
    snprintf (why, size, "starting (recovery) failed: %s; last error: %s",
              vdo_status_to_string (r), error);
    goto out;
  }
  if (vdo_is_serving_read_only (vdo)) {
    snprintf (why, size, "the recovered volume serves read-only");
    vdo_stop (vdo);
    goto out;
  }
  if (!check_contents (run, vdo, crash->point, why, size)) {
    vdo_stop (vdo);
    goto out;
  }
  r = vdo_stop (vdo);
  if (r != 0) {
    snprintf (why, size, "the clean stop failed: %s",
              vdo_status_to_string (r));
    goto out;
  }
  vdo_free (vdo);
  vdo = NULL;
  ok = audit_image (vdo_sim_io (image), why, size);

 out:
  vdo_free (vdo);
  vdo_sim_close (image);
  return ok;
}

static struct run main_run;
static struct image_spec *specs;
static uint64_t next_spec;
static struct vdo_io *base_io;

static void
check_spec (uint64_t number)
{
  const struct image_spec *spec = &specs[number];
  struct vdo_sim_crash crash = spec->crash;
  struct vdo_sim_crash_info info = { 0 };
  struct run eio_run, *run = &main_run;
  bool ok, refused = false;
  char why[1024] = "";

  if (spec->kind == KIND_EIO) {
    run = &eio_run;
    if (run_workload (run, base_io, mix_seed (crash.seed, number),
                      opt.eio_ops, spec->fail_op) != 0) {
      snprintf (why, sizeof why, "setting up the dying-device run "
                "failed");
      ok = false;
      goto report;
    }
    crash.point = vdo_sim_clock (run->sim);
  }
  ok = check_crash (run, &crash, &info, &refused, why, sizeof why);

 report:
  pthread_mutex_lock (&tally_lock);
  tally.tested[spec->kind]++;
  tally.torn_blocks += info.torn_blocks;
  tally.kept_writes += info.kept_writes;
  tally.volatile_writes += info.volatile_writes;
  if (spec->kind == KIND_EIO) {
    tally.eio_failed_requests += run->failed_requests;
    tally.eio_live_failures += run->live_failures;
  }
  if (!ok) {
    tally.failed[spec->kind]++;
    tally.refused_dirty += refused;
  }
  pthread_mutex_unlock (&tally_lock);
  if (!ok && (!refused || opt.verbose || !opt.skip_without_recovery))
    fprintf (stderr, "crash-sweep: FAIL image %" PRIu64 " (%s, point %"
             PRIu64 ", seed %" PRIu64 "%s): %s\n", number,
             kind_names[spec->kind], crash.point, crash.seed,
             spec->kind == KIND_EIO ? ", dying device" : "", why);
  if (!ok && opt.keep_dir && !refused)
    keep_image (run, spec->kind, &crash, number);
  if (run != &main_run)
    free_run (run);
}

/* What each job is doing, for the watchdog: a hang must fail the sweep
 * with the image's particulars, not stall make check. */
struct job_state {
  uint64_t number;              /* NEVER when idle */
  struct timespec since;
};

static struct job_state *job_states;
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;

static void *
job_main (void *arg)
{
  struct job_state *state = arg;

  for (;;) {
    uint64_t number = __atomic_fetch_add (&next_spec, 1, __ATOMIC_RELAXED);

    pthread_mutex_lock (&job_lock);
    state->number = number < opt.images ? number : NEVER;
    clock_gettime (CLOCK_MONOTONIC, &state->since);
    pthread_mutex_unlock (&job_lock);
    if (number >= opt.images)
      return NULL;
    check_spec (number);
  }
}

static double seconds_since (const struct timespec *start);

/* Where every thread is stuck, if gdb is there to say it: a hang in CI
 * should be diagnosable from its log. */
static void
print_thread_stacks (void)
{
  char command[256];

  snprintf (command, sizeof command,
            "command -v gdb > /dev/null && gdb -p %ld -batch -nx "
            "-ex 'thread apply all bt' < /dev/null 1>&2 2> /dev/null",
            (long) getpid ());
  if (system (command) != 0)
    fprintf (stderr, "crash-sweep: (no thread stacks: gdb is missing or "
             "failed)\n");
}

static void
main_workload_hung (int signal_number)
{
  static const char message[] =
    "crash-sweep: HANG: the main workload has run too long; giving up\n";

  (void) signal_number;
  if (write (STDERR_FILENO, message, sizeof message - 1) < 0)
    _exit (EXIT_FAILURE);
  print_thread_stacks ();
  _exit (EXIT_FAILURE);
}

static void *
watchdog_main (void *arg)
{
  (void) arg;
  for (;;) {
    unsigned i;

    sleep (1);
    pthread_mutex_lock (&job_lock);
    for (i = 0; i < opt.jobs; i++) {
      const struct job_state *j = &job_states[i];
      const struct image_spec *spec;

      if (j->number == NEVER || seconds_since (&j->since) < opt.timeout)
        continue;
      spec = &specs[j->number];
      fprintf (stderr, "crash-sweep: HANG: image %" PRIu64 " (%s, seed %"
               PRIu64, j->number, kind_names[spec->kind], spec->crash.seed);
      if (spec->kind == KIND_EIO)
        fprintf (stderr, ", device dying at operation %" PRIu64,
                 spec->fail_op);
      else
        fprintf (stderr, ", point %" PRIu64, spec->crash.point);
      fprintf (stderr, ") has run for %u s; giving up\n", opt.timeout);
      print_thread_stacks ();
      _exit (EXIT_FAILURE);
    }
    pthread_mutex_unlock (&job_lock);
  }
  return NULL;
}

/* --- Setup ------------------------------------------------------------ */

#define DEVICE_BYTES (UINT64_C (3) << 30)

static int
make_base (const char *path)
{
  struct vdo_format_options format = {
    .logical_bytes = logical_blocks () * BLOCK, .slab_bits = 13,
    .force = true,
    .have_nonce = true, .nonce = 0x5eed0000 + opt.seed,
  };
  struct vdo_format_result result;
  struct vdo_options options = { .cache_pages = opt.cache_pages };
  struct vdo *vdo;
  int fd, r;

  fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate (fd, DEVICE_BYTES) != 0) {
    perror (path);
    return errno;
  }
  close (fd);
  r = vdo_volume_format (path, &format, &result);
  /* Start and stop once, so the sweep begins from a CLEAN volume. */
  if (r == 0)
    r = vdo_load (path, &options, &vdo);
  if (r == 0) {
    r = vdo_start (vdo);
    if (r == 0)
      r = vdo_stop (vdo);
    vdo_free (vdo);
  }
  if (r != 0)
    fprintf (stderr, "crash-sweep: preparing %s failed: %s\n", path,
             vdo_status_to_string (r));
  return r;
}

/* Choose each image's kind, point and seed. */
static void
plan_images (void)
{
  uint64_t random = mix_seed (opt.seed, 0x706c616e), clock, i, n_points;
  uint64_t *points, prefix_total = 0, prefix_seen = 0, weight = 0, sample;
  struct vdo_sim_counts counts;
  unsigned k;

  for (k = 0; k < KIND_COUNT; k++)
    weight += opt.mix[k];
  specs = calloc (opt.images + 1, sizeof *specs);
  for (i = 0; i < opt.images; i++) {
    uint64_t r = random_below (&random, weight);

    for (k = 0; k + 1 < KIND_COUNT && r >= opt.mix[k]; k++)
      r -= opt.mix[k];
    specs[i].kind = k;
    prefix_total += k == KIND_PREFIX;
  }
  clock = vdo_sim_clock (main_run.sim);
  vdo_sim_get_counts (main_run.sim, &counts);
  /* An even sample of the boundaries, at least one per prefix image. */
  sample = prefix_total > 4096 ? prefix_total : 4096;
  points = calloc (sample, sizeof *points);
  n_points = vdo_sim_boundaries (main_run.sim, points, sample);
  if (n_points > sample)
    n_points = sample;
  for (i = 0; i < opt.images; i++) {
    struct image_spec *s = &specs[i];

    s->crash.seed = mix_seed (opt.seed, i + 1);
    switch (s->kind) {
    case KIND_PREFIX:
      s->crash.kind = VDO_SIM_CRASH_DURABLE;
      /* Spread over the boundaries; repeat them if there are few. */
      s->crash.point = n_points ? points[prefix_seen++ % n_points] : clock;
      break;
    case KIND_SUBSET:
    case KIND_TORN:
      s->crash.kind = s->kind == KIND_SUBSET ? VDO_SIM_CRASH_SUBSET
                                              : VDO_SIM_CRASH_TORN;
      /* Half just before a flush or FUA write completes, where the
       * most writes are volatile; half anywhere. */
      if (n_points > 0 && random_below (&random, 2) == 0)
        s->crash.point = points[random_below (&random, n_points)] - 1;
      else
        s->crash.point = random_below (&random, clock + 1);
      break;
    default:
      s->crash.kind = random_below (&random, 2) ? VDO_SIM_CRASH_TORN
                                                : VDO_SIM_CRASH_SUBSET;
      /* Die somewhere in a run about eio_ops/ops the main one's size. */
      s->fail_op = random_below (&random, counts.operations * opt.eio_ops
                                          / (opt.ops ? opt.ops : 1) + 1);
      break;
    }
  }
  free (points);
}

/* --- Options ---------------------------------------------------------- */

static void
usage (FILE *out)
{
  fprintf (out,
"usage: crash-sweep [OPTION]...\n"
"  --images N        crash images to test (200)\n"
"  --seed N          seed for everything chosen (1)\n"
"  --ops N           requests in the workload (3000)\n"
"  --eio-ops N       requests in each dying-device run (ops/4)\n"
"  --threads N       workload threads (4)\n"
"  --lbns N          logical blocks used, a multiple of %d (2048)\n"
"  --spread N        LBNs from one run of those to the next (104)\n"
"  --cache-pages N   block map cache of the runtime (16)\n"
"  --mix P,S,T,E     weights of prefix, subset, torn, eio images (35,30,30,5)\n"
"  --dedupe-heavy    mostly repeated data\n"
"  --dedupe          the runtime deduplicates (the index in the simulator)\n"
"  --async-writes    the asynchronous write policy, with some FUA writes\n"
"  --compression     compressible data, and the runtime compresses it\n"
"  --jobs N          images checked at once (2)\n"
"  --logical-zones N, --physical-zones N   runtime zones (1)\n"
"  --single-zone-thread   one thread runs the journal and all zones\n"
"  --dir DIR         scratch directory ($TMPDIR or /tmp)\n"
"  --keep DIR        save failing images there\n"
"  --skip-without-recovery   exit 77 if the only failures are DIRTY\n"
"                    images refused because recovery is missing\n"
"  --timeout N       seconds one image may take before the sweep fails (120)\n"
"  --verbose         show libvdo's messages\n", CHUNK_LBNS);
}

static uint64_t
number_arg (const char *name, const char *text)
{
  char *end;
  unsigned long long v;

  errno = 0;
  v = strtoull (text, &end, 0);
  if (errno != 0 || *end != '\0' || end == text) {
    fprintf (stderr, "crash-sweep: --%s: not a number: %s\n", name, text);
    exit (2);
  }
  return v;
}

static void
parse_options (int argc, char **argv)
{
  static const struct option longs[] = {
    { "images", 1, NULL, 'n' }, { "seed", 1, NULL, 's' },
    { "ops", 1, NULL, 'o' }, { "eio-ops", 1, NULL, 'e' },
    { "threads", 1, NULL, 't' }, { "lbns", 1, NULL, 'l' },
    { "spread", 1, NULL, 'p' }, { "cache-pages", 1, NULL, 'c' },
    { "mix", 1, NULL, 'm' }, { "dedupe-heavy", 0, NULL, 'D' },
    { "jobs", 1, NULL, 'j' }, { "logical-zones", 1, NULL, 'L' },
    { "physical-zones", 1, NULL, 'P' }, { "dir", 1, NULL, 'd' },
    { "keep", 1, NULL, 'k' }, { "skip-without-recovery", 0, NULL, 'S' },
    { "verbose", 0, NULL, 'v' }, { "help", 0, NULL, 'h' },
    { "timeout", 1, NULL, 'T' }, { "async-writes", 0, NULL, 'A' },
    { "dedupe", 0, NULL, 'E' }, { "single-zone-thread", 0, NULL, 'Z' },
    { "compression", 0, NULL, 'C' },
    { NULL, 0, NULL, 0 },
  };
  bool eio_set = false;
  int c;

  while ((c = getopt_long (argc, argv, "", longs, NULL)) != -1) {
    const char *name = "";
    int i;

    for (i = 0; longs[i].name; i++)
      if (longs[i].val == c)
        name = longs[i].name;
    switch (c) {
    case 'n': opt.images = number_arg (name, optarg); break;
    case 's': opt.seed = number_arg (name, optarg); break;
    case 'o': opt.ops = number_arg (name, optarg); break;
    case 'e': opt.eio_ops = number_arg (name, optarg); eio_set = true; break;
    case 't': opt.threads = number_arg (name, optarg); break;
    case 'l': opt.lbns = number_arg (name, optarg); break;
    case 'p': opt.spread = number_arg (name, optarg); break;
    case 'c': opt.cache_pages = number_arg (name, optarg); break;
    case 'j': opt.jobs = number_arg (name, optarg); break;
    case 'L': opt.logical_zones = number_arg (name, optarg); break;
    case 'P': opt.physical_zones = number_arg (name, optarg); break;
    case 'd': opt.dir = optarg; break;
    case 'k': opt.keep_dir = optarg; break;
    case 'D': opt.dedupe_heavy = true; break;
    case 'A': opt.async_writes = true; break;
    case 'E': opt.dedupe = true; break;
    case 'Z': opt.single_zone_thread = true; break;
    case 'C': opt.compression = true; break;
    case 'S': opt.skip_without_recovery = true; break;
    case 'v': opt.verbose = true; break;
    case 'T': opt.timeout = number_arg (name, optarg); break;
    case 'm':
      if (sscanf (optarg, "%u,%u,%u,%u", &opt.mix[0], &opt.mix[1],
                  &opt.mix[2], &opt.mix[3]) != 4
          || opt.mix[0] + opt.mix[1] + opt.mix[2] + opt.mix[3] == 0) {
        fprintf (stderr, "crash-sweep: --mix wants four weights, not all "
                 "zero: %s\n", optarg);
        exit (2);
      }
      break;
    case 'h': usage (stdout); exit (0);
    default: usage (stderr); exit (2);
    }
  }
  if (optind != argc || opt.threads == 0 || opt.jobs == 0
      || opt.lbns < CHUNK_LBNS * opt.threads || opt.lbns % CHUNK_LBNS != 0
      || opt.spread < CHUNK_LBNS) {
    fprintf (stderr, "crash-sweep: bad arguments: threads and jobs must be "
             "positive, lbns a multiple of %d with a run per thread, and "
             "spread at least %d\n", CHUNK_LBNS, CHUNK_LBNS);
    exit (2);
  }
  if (!eio_set)
    opt.eio_ops = opt.ops / 4;
  if (opt.dir == NULL)
    opt.dir = getenv ("TMPDIR") && *getenv ("TMPDIR") ? getenv ("TMPDIR")
                                                       : "/tmp";
}

static double
seconds_since (const struct timespec *start)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

int
main (int argc, char **argv)
{
  char dir[PATH_MAX], path[PATH_MAX];
  struct vdo_sim_counts counts;
  struct timespec started;
  pthread_t *jobs, watchdog;
  uint64_t failures = 0, boundaries;
  unsigned i;
  int r, k;

  parse_options (argc, argv);
  vdo_set_log_sink (log_sink);
  clock_gettime (CLOCK_MONOTONIC, &started);
  if (snprintf (dir, sizeof dir, "%s/crash-sweep-XXXXXX", opt.dir)
      >= (int) sizeof dir - 16 || mkdtemp (dir) == NULL) {
    perror (dir);
    return EXIT_FAILURE;
  }
  if (snprintf (path, sizeof path, "%s/base.img", dir) >= (int) sizeof path) {
    fprintf (stderr, "crash-sweep: %s: path too long\n", dir);
    return EXIT_FAILURE;
  }
  base_path = path;
  r = make_base (path);
  if (r == 0)
    r = vdo_io_open (path, VDO_IO_READ_ONLY | VDO_IO_BUFFERED, &base_io);
  if (r == 0) {
    /* The watchdog starts with the images: a hang here is the alarm's. */
    signal (SIGALRM, main_workload_hung);
    alarm (opt.timeout);
    r = run_workload (&main_run, base_io, opt.seed, opt.ops, NEVER);
    alarm (0);
  }
  if (r != 0) {
    fprintf (stderr, "crash-sweep: the workload failed: %s\n",
             vdo_status_to_string (r));
    goto out;
  }
  vdo_sim_get_counts (main_run.sim, &counts);
  boundaries = vdo_sim_boundaries (main_run.sim, NULL, 0);
  printf ("crash-sweep: seed %" PRIu64 ", %" PRIu64 " requests on %u threads "
          "over %" PRIu64 " of %" PRIu64 " LBNs%s%s%s (", opt.seed, opt.ops,
          opt.threads, opt.lbns, logical_blocks (),
          opt.dedupe_heavy ? ", duplicate-heavy" : "",
          opt.dedupe ? ", deduplicating" : "",
          opt.compression ? ", compressing" : "");
  for (k = 0; k < OP_TYPES; k++)
    printf ("%s%s %" PRIu64, k ? ", " : "", op_names[k],
            main_run.op_counts[k]);
  printf (")\ncrash-sweep: history: %" PRIu64 " writes (%" PRIu64 " FUA, %"
          PRIu64 " blocks), %" PRIu64 " flushes, %" PRIu64 " events, %"
          PRIu64 " flush/FUA boundaries; %.1f s\n", counts.writes,
          counts.fua_writes, counts.blocks_written, counts.flushes,
          vdo_sim_clock (main_run.sim), boundaries, seconds_since (&started));
  if (opt.compression)
    printf ("crash-sweep: %" PRIu64 " compressed fragments in %" PRIu64
            " compressed blocks\n",
            main_run.stats.compressed_fragments_written,
            main_run.stats.compressed_blocks_written);
  fflush (stdout);
  if (main_run.live_failures > 0 || main_run.failed_requests > 0) {
    fprintf (stderr, "crash-sweep: the workload itself went wrong: %" PRIu64
             " failed requests, %" PRIu64 " blocks read back wrong\n",
             main_run.failed_requests, main_run.live_failures);
    r = EIO;
    goto out;
  }

  plan_images ();
  jobs = calloc (opt.jobs, sizeof *jobs);
  job_states = calloc (opt.jobs, sizeof *job_states);
  for (i = 0; i < opt.jobs; i++) {
    job_states[i].number = NEVER;
    pthread_create (&jobs[i], NULL, job_main, &job_states[i]);
  }
  pthread_create (&watchdog, NULL, watchdog_main, NULL);
  pthread_detach (watchdog);
  for (i = 0; i < opt.jobs; i++)
    pthread_join (jobs[i], NULL);
  free (jobs);

  printf ("crash-sweep: images tested: %" PRIu64, opt.images);
  for (k = 0; k < KIND_COUNT; k++)
    printf ("%s %s %" PRIu64, k ? "," : " (", kind_names[k], tally.tested[k]);
  for (k = 0; k < KIND_COUNT; k++)
    failures += tally.failed[k];
  printf ("); failures: %" PRIu64, failures);
  for (k = 0; k < KIND_COUNT; k++)
    printf ("%s %s %" PRIu64, k ? "," : " (", kind_names[k], tally.failed[k]);
  printf (")\ncrash-sweep: %" PRIu64 " images needed recovery; volatile "
          "writes %" PRIu64 ", kept %" PRIu64 ", torn blocks %" PRIu64
          ", requests failed by dying devices %" PRIu64 "; %.1f s\n",
          tally.recovered, tally.volatile_writes, tally.kept_writes,
          tally.torn_blocks, tally.eio_failed_requests,
          seconds_since (&started));
  if (tally.eio_live_failures > 0) {
    printf ("crash-sweep: %" PRIu64 " blocks read back wrong during "
            "dying-device runs\n", tally.eio_live_failures);
    failures++;
  }
  r = failures == 0 ? 0 : EIO;
  if (failures > 0 && opt.skip_without_recovery
      && tally.refused_dirty == failures) {
    printf ("crash-sweep: SKIP: every failure was a DIRTY image refused "
            "(%" PRIu64 "): crash recovery is not available yet\n",
            tally.refused_dirty);
    r = 77;
  }

 out:
  free_run (&main_run);
  free (specs);
  if (base_io)
    vdo_io_close (base_io);
  unlink (path);
  rmdir (dir);
  if (r == 77)
    return 77;
  return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
