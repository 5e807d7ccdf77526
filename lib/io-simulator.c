/* nbdkit-vdo: the power-cut simulator (see io-simulator.h for the model).
 *
 * Data lives in append-only log files: each write's blocks are copied
 * into the simulator's own log when it is submitted, and two tables map
 * device blocks to log blocks: "initial" (the content the simulator
 * started with) and "current" (the newest completed write).  A crash
 * image is a new simulator whose initial table points into its parent's
 * logs, so making one copies nothing but torn blocks.  One mutex guards
 * the tables, the history and the queue; log reads and writes run
 * outside it, which is safe because log blocks never change once
 * written.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io-simulator.h"
#include "logger.h"

/* Completion point of a write that never completed. */
#define NEVER UINT64_MAX

/* --- Random numbers (splitmix64: tiny, and good enough to shuffle) ---- */

static uint64_t
next_random (uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, bound); bound > 0.  The bias is negligible here. */
static uint64_t
random_below (uint64_t *state, uint64_t bound)
{
  return next_random (state) % bound;
}

/* --- Block tables: device block -> log reference, two levels --------- */

/* A reference names a block of one of a simulator's logs: the log's
 * index in the top bits, the block number plus one below (0: none). */
#define REF_LOG_SHIFT 48
#define REF_BLOCK_MASK ((UINT64_C (1) << REF_LOG_SHIFT) - 1)

static uint64_t
make_ref (unsigned log, uint64_t log_block)
{
  return ((uint64_t) log << REF_LOG_SHIFT) | (log_block + 1);
}

static unsigned
ref_log (uint64_t ref)
{
  return ref >> REF_LOG_SHIFT;
}

static uint64_t
ref_block (uint64_t ref)
{
  return (ref & REF_BLOCK_MASK) - 1;
}

/* Chunks are allocated when first set, so sparse use stays cheap. */
#define CHUNK_BITS 12
#define CHUNK_ENTRIES (UINT64_C (1) << CHUNK_BITS)

struct block_table {
  uint64_t **chunks;
  size_t chunk_count;
};

static int
table_init (struct block_table *t, block_count_t blocks)
{
  t->chunk_count = (blocks + CHUNK_ENTRIES - 1) >> CHUNK_BITS;
  t->chunks = calloc (t->chunk_count ? t->chunk_count : 1, sizeof *t->chunks);
  if (t->chunks == NULL) {
    vdo_log_error ("simulator: out of memory");
    return ENOMEM;
  }
  return 0;
}

static void
table_free (struct block_table *t)
{
  size_t i;

  for (i = 0; t->chunks && i < t->chunk_count; i++)
    free (t->chunks[i]);
  free (t->chunks);
  t->chunks = NULL;
}

static uint64_t
table_get (const struct block_table *t, uint64_t block)
{
  const uint64_t *chunk = t->chunks[block >> CHUNK_BITS];

  return chunk ? chunk[block & (CHUNK_ENTRIES - 1)] : 0;
}

static int
table_set (struct block_table *t, uint64_t block, uint64_t value)
{
  uint64_t **chunk = &t->chunks[block >> CHUNK_BITS];

  if (*chunk == NULL) {
    if (value == 0)
      return 0;
    *chunk = calloc (CHUNK_ENTRIES, sizeof **chunk);
    if (*chunk == NULL) {
      vdo_log_error ("simulator: out of memory");
      return ENOMEM;
    }
  }
  (*chunk)[block & (CHUNK_ENTRIES - 1)] = value;
  return 0;
}

/* The first block at or after *BLOCK with an entry; false if none. */
static bool
table_next (const struct block_table *t, uint64_t *block)
{
  size_t c = *block >> CHUNK_BITS;
  uint64_t i = *block & (CHUNK_ENTRIES - 1);

  for (; c < t->chunk_count; c++, i = 0) {
    const uint64_t *chunk = t->chunks[c];

    for (; chunk != NULL && i < CHUNK_ENTRIES; i++)
      if (chunk[i] != 0) {
        *block = ((uint64_t) c << CHUNK_BITS) | i;
        return true;
      }
  }
  return false;
}

/* --- The simulator ---------------------------------------------------- */

struct sim_write {
  physical_block_number_t block;
  block_count_t count;
  uint64_t data;                /* ref of the first block; the rest follow */
  uint64_t submitted;
  uint64_t completed;           /* NEVER while in flight */
  bool fua;
  bool failed;
};

struct sim_flush {
  uint64_t submitted;
  uint64_t completed;
  bool failed;
};

/* What a request carries for this backend, in its backend_private. */
struct request_state {
  size_t record;                /* index of its write or flush */
  int preset;                   /* complete with this, doing nothing */
  bool has_preset;
};

_Static_assert (sizeof (struct request_state)
                <= sizeof (((struct vdo_io_request *) 0)->backend_private),
                "request_state must fit in vdo_io_request.backend_private");

struct vdo_sim {
  struct vdo_io io;             /* first: the generic layer's view */
  struct vdo_io *lower;
  bool owns_lower;
  struct vdo_sim_options options;
  char *log_dir;

  /* logs[0] is this simulator's own; an image also reads its parent's
   * logs, as logs[1..], because its initial table points into them. */
  int *logs;
  unsigned log_count;
  uint64_t log_blocks;          /* blocks reserved in logs[0] */

  pthread_mutex_t lock;
  pthread_cond_t changed;       /* queue grew, a request finished, stop */
  struct block_table initial;
  struct block_table current;

  uint64_t clock;
  struct vdo_sim_counts counts;
  uint64_t fail_from;           /* NEVER: not armed */
  int fail_error;
  bool dead;

  struct sim_write *writes;     /* in submission order */
  size_t write_count, write_capacity;
  size_t *completion_order;     /* indices into writes */
  size_t completed_count, completion_capacity;
  struct sim_flush *flushes;
  size_t flush_count, flush_capacity;

  /* Accepted requests that have not started to complete, in submission
   * order, and how many are completing now. */
  struct vdo_io_request **queue;
  size_t queued, queue_capacity;
  size_t running;
  pthread_t thread;
  bool thread_running;
  bool stopping;
  uint64_t random;              /* the completion thread's */
};

static struct vdo_sim *
sim_of (struct vdo_io *io)
{
  return (struct vdo_sim *) io;
}

static struct request_state *
state_of (struct vdo_io_request *request)
{
  return (struct request_state *) request->backend_private.bytes;
}

/* Grow *ARRAY (of *CAPACITY elements of SIZE bytes) to hold one more. */
static int
reserve_one (void **array, size_t *capacity, size_t used, size_t size)
{
  size_t wanted;
  void *p;

  if (used < *capacity)
    return 0;
  wanted = *capacity ? *capacity * 2 : 64;
  p = realloc (*array, wanted * size);
  if (p == NULL) {
    vdo_log_error ("simulator: out of memory");
    return ENOMEM;
  }
  *array = p;
  *capacity = wanted;
  return 0;
}

/* --- Logs ------------------------------------------------------------- */

static int
open_log (const char *dir)
{
  char path[PATH_MAX];
  int fd;

  fd = open (dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0)
    return fd;
  /* Filesystems without O_TMPFILE: a named file, unlinked at once. */
  snprintf (path, sizeof path, "%s/vdo-sim-XXXXXX", dir);
  fd = mkostemp (path, O_CLOEXEC);
  if (fd < 0) {
    int error = errno;

    vdo_log_error ("simulator: cannot create a log file in %s: %s", dir,
                   strerror (error));
    errno = error;
    return -1;
  }
  unlink (path);
  return fd;
}

static int
log_transfer (int fd, bool write, uint64_t log_block, const struct iovec *iov,
              int iovcnt)
{
  off_t offset = (off_t) (log_block * VDO_BLOCK_SIZE);
  size_t want = 0;
  ssize_t n;
  int i, error;

  for (i = 0; i < iovcnt; i++)
    want += iov[i].iov_len;
  do
    n = write ? pwritev (fd, iov, iovcnt, offset)
              : preadv (fd, iov, iovcnt, offset);
  while (n < 0 && errno == EINTR);
  if (n == (ssize_t) want)
    return 0;
  error = n < 0 ? errno : EIO;
  vdo_log_error ("simulator: %s of the log at block %" PRIu64 " failed: %s",
                 write ? "write" : "read", log_block,
                 n < 0 ? strerror (error) : "short transfer");
  return error;
}

static int
read_log_block (struct vdo_sim *sim, uint64_t ref, void *buffer)
{
  struct iovec v = { buffer, VDO_BLOCK_SIZE };

  return log_transfer (sim->logs[ref_log (ref)], false, ref_block (ref), &v, 1);
}

/* The reference a block of the history has in the view of an image made
 * from SIM: its logs sit one place further along. */
static uint64_t
ref_in_image (uint64_t ref)
{
  return make_ref (ref_log (ref) + 1, ref_block (ref));
}

/* --- Reading the simulated device ------------------------------------- */

/* Where BLOCK's content is: a log reference, or 0 for the lower device. */
static uint64_t
lookup_locked (struct vdo_sim *sim, uint64_t block)
{
  uint64_t ref = table_get (&sim->current, block);

  return ref ? ref : table_get (&sim->initial, block);
}

#define READ_RUN 64

/* Read whole blocks as the device holds them now, merging neighbours in
 * one log or on the lower device into single transfers. */
static int
read_blocks (struct vdo_sim *sim, uint64_t block, block_count_t count,
             uint8_t *buffer)
{
  uint64_t refs[READ_RUN];

  while (count > 0) {
    block_count_t n = count < READ_RUN ? count : READ_RUN, i, j;

    pthread_mutex_lock (&sim->lock);
    for (i = 0; i < n; i++)
      refs[i] = lookup_locked (sim, block + i);
    pthread_mutex_unlock (&sim->lock);

    for (i = 0; i < n; i = j) {
      uint8_t *p = buffer + i * VDO_BLOCK_SIZE;
      int r;

      for (j = i + 1; j < n; j++) {
        bool both_lower = refs[i] == 0 && refs[j] == 0;
        bool follows = refs[i] != 0 && refs[j] == refs[i] + (j - i);

        if (!both_lower && !follows)
          break;
      }
      if (refs[i] == 0)
        r = vdo_io_read_blocks (sim->lower, block + i, j - i, p);
      else {
        struct iovec v = { p, (j - i) * VDO_BLOCK_SIZE };

        r = log_transfer (sim->logs[ref_log (refs[i])], false,
                          ref_block (refs[i]), &v, 1);
      }
      if (r != 0)
        return r;
    }
    block += n;
    count -= n;
    buffer += n * VDO_BLOCK_SIZE;
  }
  return 0;
}

static int
read_iov (struct vdo_sim *sim, uint64_t block, const struct iovec *iov,
          int iovcnt)
{
  int i, r;

  for (i = 0; i < iovcnt; i++) {
    block_count_t n = iov[i].iov_len / VDO_BLOCK_SIZE;

    if ((r = read_blocks (sim, block, n, iov[i].iov_base)) != 0)
      return r;
    block += n;
  }
  return 0;
}

/* --- Recording the history -------------------------------------------- */

/* Count an operation against fail_from; true if it must fail. */
static bool
count_operation_locked (struct vdo_sim *sim)
{
  uint64_t number = sim->counts.operations++;

  if (!sim->dead && number >= sim->fail_from) {
    sim->dead = true;
    vdo_log_debug ("%s: the simulated device dies at operation %" PRIu64,
                   sim->io.path, number);
  }
  if (sim->dead)
    sim->counts.failed++;
  return sim->dead;
}

/* Record a write and copy its data into the log.  Returns 0 with its
 * index in *RECORD, or an errno value. */
static int
begin_write (struct vdo_sim *sim, uint64_t block, block_count_t count,
             bool fua, const struct iovec *iov, int iovcnt, size_t *record)
{
  struct sim_write *w;
  uint64_t log_block;
  int r;

  pthread_mutex_lock (&sim->lock);
  if (count_operation_locked (sim)) {
    pthread_mutex_unlock (&sim->lock);
    return sim->fail_error;
  }
  r = reserve_one ((void **) &sim->writes, &sim->write_capacity,
                   sim->write_count, sizeof *sim->writes);
  if (r != 0) {
    pthread_mutex_unlock (&sim->lock);
    return r;
  }
  log_block = sim->log_blocks;
  sim->log_blocks += count;
  *record = sim->write_count++;
  w = &sim->writes[*record];
  w->block = block;
  w->count = count;
  w->data = make_ref (0, log_block);
  w->submitted = sim->clock++;
  w->completed = NEVER;
  w->fua = fua;
  w->failed = false;
  pthread_mutex_unlock (&sim->lock);

  r = log_transfer (sim->logs[0], true, log_block, iov, iovcnt);
  if (r != 0) {
    pthread_mutex_lock (&sim->lock);
    sim->writes[*record].failed = true;
    pthread_mutex_unlock (&sim->lock);
  }
  return r;
}

/* Complete a write: it becomes what reads see, unless the device died. */
static int
finish_write_locked (struct vdo_sim *sim, size_t record)
{
  struct sim_write *w = &sim->writes[record];
  block_count_t i;
  int r;

  if (w->failed)
    return EIO;
  if (sim->dead) {
    w->failed = true;
    sim->counts.failed++;
    return sim->fail_error;
  }
  r = reserve_one ((void **) &sim->completion_order,
                   &sim->completion_capacity, sim->completed_count,
                   sizeof *sim->completion_order);
  for (i = 0; r == 0 && i < w->count; i++)
    r = table_set (&sim->current, w->block + i, w->data + i);
  if (r != 0) {
    w->failed = true;
    return r;
  }
  sim->completion_order[sim->completed_count++] = record;
  w->completed = sim->clock++;
  sim->counts.writes++;
  sim->counts.fua_writes += w->fua;
  sim->counts.blocks_written += w->count;
  return 0;
}

static int
begin_flush_locked (struct vdo_sim *sim, size_t *record)
{
  int r;

  if (count_operation_locked (sim))
    return sim->fail_error;
  r = reserve_one ((void **) &sim->flushes, &sim->flush_capacity,
                   sim->flush_count, sizeof *sim->flushes);
  if (r != 0)
    return r;
  *record = sim->flush_count++;
  sim->flushes[*record].submitted = sim->clock++;
  sim->flushes[*record].completed = NEVER;
  sim->flushes[*record].failed = false;
  return 0;
}

static int
finish_flush_locked (struct vdo_sim *sim, size_t record)
{
  if (sim->dead) {
    sim->flushes[record].failed = true;
    sim->counts.failed++;
    return sim->fail_error;
  }
  sim->flushes[record].completed = sim->clock++;
  sim->counts.flushes++;
  return 0;
}

/* --- Synchronous operations ------------------------------------------- */

static int
sim_read (struct vdo_io *io, physical_block_number_t block,
          block_count_t count, void *buffer)
{
  struct vdo_sim *sim = sim_of (io);
  bool failed;

  pthread_mutex_lock (&sim->lock);
  failed = count_operation_locked (sim);
  pthread_mutex_unlock (&sim->lock);
  return failed ? sim->fail_error : read_blocks (sim, block, count, buffer);
}

static int
sim_write (struct vdo_io *io, physical_block_number_t block,
           block_count_t count, const void *buffer)
{
  struct vdo_sim *sim = sim_of (io);
  struct iovec v = { (void *) buffer, count * VDO_BLOCK_SIZE };
  size_t record;
  int r;

  r = begin_write (sim, block, count, false, &v, 1, &record);
  if (r != 0)
    return r;
  pthread_mutex_lock (&sim->lock);
  r = finish_write_locked (sim, record);
  pthread_mutex_unlock (&sim->lock);
  return r;
}

static int
sim_flush (struct vdo_io *io)
{
  struct vdo_sim *sim = sim_of (io);
  size_t record;
  int r;

  pthread_mutex_lock (&sim->lock);
  r = begin_flush_locked (sim, &record);
  if (r == 0)
    r = finish_flush_locked (sim, record);
  pthread_mutex_unlock (&sim->lock);
  return r;
}

/* --- Asynchronous requests -------------------------------------------- */

/* Queue REQUEST for the completion thread.  Called with the lock held. */
static void
enqueue_locked (struct vdo_sim *sim, struct vdo_io_request *request)
{
  /* Out of memory here would strand the request: complete it in place,
   * which at worst runs its callback on the submitter's thread. */
  if (reserve_one ((void **) &sim->queue, &sim->queue_capacity, sim->queued,
                   sizeof *sim->queue) != 0) {
    pthread_mutex_unlock (&sim->lock);
    request->callback (request, ENOMEM);
    pthread_mutex_lock (&sim->lock);
    return;
  }
  sim->queue[sim->queued++] = request;
  pthread_cond_broadcast (&sim->changed);
}

static void
preset_result (struct vdo_io_request *request, int result)
{
  state_of (request)->has_preset = true;
  state_of (request)->preset = result;
}

static void
accept_request (struct vdo_sim *sim, struct vdo_io_request *request)
{
  struct request_state *s = state_of (request);
  struct iovec single;
  int r = 0;

  s->has_preset = false;
  switch (request->op) {
  case VDO_IO_WRITE:
    single.iov_base = request->buffer;
    single.iov_len = request->count * VDO_BLOCK_SIZE;
    r = begin_write (sim, request->block, request->count, request->fua,
                     request->iov ? request->iov : &single,
                     request->iov ? request->iovcnt : 1, &s->record);
    break;
  case VDO_IO_FLUSH:
    pthread_mutex_lock (&sim->lock);
    r = begin_flush_locked (sim, &s->record);
    pthread_mutex_unlock (&sim->lock);
    break;
  case VDO_IO_READ:
    pthread_mutex_lock (&sim->lock);
    if (count_operation_locked (sim))
      r = sim->fail_error;
    pthread_mutex_unlock (&sim->lock);
    break;
  }
  if (r != 0)
    preset_result (request, r);
  pthread_mutex_lock (&sim->lock);
  enqueue_locked (sim, request);
  pthread_mutex_unlock (&sim->lock);
}

static void
sim_submit (struct vdo_io *io, struct vdo_io_request *const *requests,
            size_t count)
{
  size_t i;

  for (i = 0; i < count; i++)
    accept_request (sim_of (io), requests[i]);
}

static void
sim_complete (struct vdo_io *io, struct vdo_io_request *request, int result)
{
  struct vdo_sim *sim = sim_of (io);

  preset_result (request, result);
  pthread_mutex_lock (&sim->lock);
  enqueue_locked (sim, request);
  pthread_mutex_unlock (&sim->lock);
}

/* Take the request at INDEX off the queue, carry it out and run its
 * callback.  Called with the lock held; returns with it held. */
static void
run_request_locked (struct vdo_sim *sim, size_t index)
{
  struct vdo_io_request *request = sim->queue[index];
  struct request_state *s = state_of (request);
  int result;

  memmove (&sim->queue[index], &sim->queue[index + 1],
           (sim->queued - index - 1) * sizeof *sim->queue);
  sim->queued--;
  sim->running++;

  if (s->has_preset)
    result = s->preset;
  else if (request->op == VDO_IO_WRITE)
    result = finish_write_locked (sim, s->record);
  else if (request->op == VDO_IO_FLUSH)
    result = finish_flush_locked (sim, s->record);
  else if (sim->dead) {
    sim->counts.failed++;
    result = sim->fail_error;
  }
  else {
    pthread_mutex_unlock (&sim->lock);
    result = request->iov
      ? read_iov (sim, request->block, request->iov, request->iovcnt)
      : read_blocks (sim, request->block, request->count, request->buffer);
    pthread_mutex_lock (&sim->lock);
  }
  pthread_mutex_unlock (&sim->lock);
  request->callback (request, result);
  pthread_mutex_lock (&sim->lock);
  sim->running--;
  pthread_cond_broadcast (&sim->changed);
}

static void *
completion_thread (void *arg)
{
  struct vdo_sim *sim = arg;

  pthread_mutex_lock (&sim->lock);
  for (;;) {
    size_t index = 0;

    while (!sim->stopping && (sim->queued == 0 || sim->options.hold))
      pthread_cond_wait (&sim->changed, &sim->lock);
    if (sim->stopping && (sim->queued == 0 || sim->options.hold))
      break;
    if (sim->options.reorder)
      index = random_below (&sim->random, sim->queued);
    run_request_locked (sim, index);
  }
  pthread_mutex_unlock (&sim->lock);
  return NULL;
}

static int
sim_start (struct vdo_io *io, unsigned queue_depth)
{
  struct vdo_sim *sim = sim_of (io);
  sigset_t all, old;
  int r;

  (void) queue_depth;
  /* Signals belong to the embedding program's own threads. */
  sigfillset (&all);
  pthread_sigmask (SIG_BLOCK, &all, &old);
  r = pthread_create (&sim->thread, NULL, completion_thread, sim);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (r != 0) {
    vdo_log_error ("%s: cannot start the completion thread: %s", io->path,
                   strerror (r));
    return r;
  }
  sim->thread_running = true;
  return 0;
}

static void
sim_drain (struct vdo_io *io)
{
  struct vdo_sim *sim = sim_of (io);

  if (sim->thread_running && pthread_equal (pthread_self (), sim->thread)) {
    vdo_log_error ("%s: vdo_io_drain called from an I/O callback; it would "
                   "wait for itself", io->path);
    return;
  }
  pthread_mutex_lock (&sim->lock);
  while (sim->queued > 0 || sim->running > 0)
    pthread_cond_wait (&sim->changed, &sim->lock);
  pthread_mutex_unlock (&sim->lock);
}

static void
sim_destroy (struct vdo_io *io)
{
  struct vdo_sim *sim = sim_of (io);

  if (sim->thread_running) {
    pthread_mutex_lock (&sim->lock);
    sim->stopping = true;
    pthread_cond_broadcast (&sim->changed);
    pthread_mutex_unlock (&sim->lock);
    pthread_join (sim->thread, NULL);
  }
  if (sim->logs && sim->logs[0] >= 0)
    close (sim->logs[0]);
  free (sim->logs);
  table_free (&sim->initial);
  table_free (&sim->current);
  free (sim->writes);
  free (sim->completion_order);
  free (sim->flushes);
  free (sim->queue);
  free (sim->log_dir);
  pthread_cond_destroy (&sim->changed);
  pthread_mutex_destroy (&sim->lock);
  if (sim->owns_lower)
    vdo_io_close (sim->lower);
  vdo_io_release_base (io);
  free (sim);
}

static const struct vdo_io_ops sim_ops = {
  .name = "simulator",
  .read = sim_read,
  .write = sim_write,
  .flush = sim_flush,
  .start = sim_start,
  .submit = sim_submit,
  .complete = sim_complete,
  .drain = sim_drain,
  .destroy = sim_destroy,
};

/* --- Creating and closing --------------------------------------------- */

/* A simulator over LOWER that also reads PARENT's logs (if any). */
static int
new_sim (struct vdo_io *lower, const struct vdo_sim_options *options,
         const char *what, const struct vdo_sim *parent, struct vdo_sim **ret)
{
  static const struct vdo_sim_options defaults;
  const char *dir;
  char path[PATH_MAX];
  struct vdo_sim *sim;
  unsigned i;
  int r;

  *ret = NULL;
  if (options == NULL)
    options = &defaults;
  dir = options->log_dir;
  if (dir == NULL)
    dir = getenv ("TMPDIR");
  if (dir == NULL || *dir == '\0')
    dir = "/tmp";

  sim = calloc (1, sizeof *sim);
  if (sim == NULL) {
    vdo_log_error ("simulator: out of memory");
    return ENOMEM;
  }
  snprintf (path, sizeof path, "%s (%s)", vdo_io_path (lower), what);
  r = vdo_io_init_base (&sim->io, &sim_ops, path, vdo_io_size (lower), false,
                        false, options->read_only);
  if (r != 0) {
    free (sim);
    return r;
  }
  pthread_mutex_init (&sim->lock, NULL);
  pthread_cond_init (&sim->changed, NULL);
  sim->lower = lower;
  sim->options = *options;
  sim->options.log_dir = NULL;
  sim->fail_from = NEVER;
  sim->fail_error = EIO;
  sim->random = options->seed;
  sim->log_count = 1 + (parent ? parent->log_count : 0);
  sim->log_dir = strdup (dir);
  sim->logs = calloc (sim->log_count, sizeof *sim->logs);
  if (sim->log_dir == NULL || sim->logs == NULL) {
    vdo_log_error ("simulator: out of memory");
    r = ENOMEM;
    goto fail;
  }
  sim->logs[0] = -1;
  for (i = 1; i < sim->log_count; i++)
    sim->logs[i] = parent->logs[i - 1];
  if (sim->log_count > (1u << (64 - REF_LOG_SHIFT)) - 1) {
    vdo_log_error ("simulator: images nested too deeply");
    r = EINVAL;
    goto fail;
  }
  sim->logs[0] = open_log (dir);
  if (sim->logs[0] < 0) {
    r = errno;
    goto fail;
  }
  r = table_init (&sim->initial, vdo_io_block_count (lower));
  if (r == 0)
    r = table_init (&sim->current, vdo_io_block_count (lower));
  if (r != 0)
    goto fail;
  *ret = sim;
  return 0;

 fail:
  sim_destroy (&sim->io);
  return r;
}

int
vdo_sim_create (struct vdo_io *lower, const struct vdo_sim_options *options,
                struct vdo_sim **sim)
{
  return new_sim (lower, options, "simulated", NULL, sim);
}

int
vdo_sim_create_file (const char *path, const struct vdo_sim_options *options,
                     struct vdo_sim **sim)
{
  struct vdo_io *lower;
  int r;

  *sim = NULL;
  r = vdo_io_open (path, VDO_IO_READ_ONLY | VDO_IO_BUFFERED, &lower);
  if (r != 0)
    return r;
  r = vdo_sim_create (lower, options, sim);
  if (r != 0) {
    vdo_io_close (lower);
    return r;
  }
  (*sim)->owns_lower = true;
  return 0;
}

struct vdo_io *
vdo_sim_io (struct vdo_sim *sim)
{
  return &sim->io;
}

void
vdo_sim_close (struct vdo_sim *sim)
{
  if (sim != NULL)
    vdo_io_close (&sim->io);
}

/* --- The history, for callers ----------------------------------------- */

uint64_t
vdo_sim_clock (struct vdo_sim *sim)
{
  uint64_t clock;

  pthread_mutex_lock (&sim->lock);
  clock = sim->clock;
  pthread_mutex_unlock (&sim->lock);
  return clock;
}

void
vdo_sim_get_counts (struct vdo_sim *sim, struct vdo_sim_counts *counts)
{
  pthread_mutex_lock (&sim->lock);
  *counts = sim->counts;
  pthread_mutex_unlock (&sim->lock);
}

static int
compare_points (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

  return x < y ? -1 : x > y;
}

size_t
vdo_sim_boundaries (struct vdo_sim *sim, uint64_t *points, size_t max)
{
  uint64_t *all;
  size_t count = 0, distinct = 0, i;

  pthread_mutex_lock (&sim->lock);
  all = malloc ((sim->flush_count + sim->completed_count + 1) * sizeof *all);
  if (all == NULL) {
    pthread_mutex_unlock (&sim->lock);
    vdo_log_error ("simulator: out of memory");
    return 0;
  }
  for (i = 0; i < sim->flush_count; i++)
    if (sim->flushes[i].completed != NEVER)
      all[count++] = sim->flushes[i].completed + 1;
  for (i = 0; i < sim->completed_count; i++) {
    const struct sim_write *w = &sim->writes[sim->completion_order[i]];

    if (w->fua)
      all[count++] = w->completed + 1;
  }
  pthread_mutex_unlock (&sim->lock);

  qsort (all, count, sizeof *all, compare_points);
  for (i = 0; i < count; i++)
    if (distinct == 0 || all[distinct - 1] != all[i])
      all[distinct++] = all[i];
  if (distinct <= max) {
    if (distinct > 0)
      memcpy (points, all, distinct * sizeof *all);
  }
  else if (max == 1)
    points[0] = all[distinct - 1];
  else
    for (i = 0; i < max; i++)
      points[i] = all[i * (distinct - 1) / (max - 1)];
  free (all);
  return distinct;
}

void
vdo_sim_fail_from (struct vdo_sim *sim, uint64_t op, int error)
{
  pthread_mutex_lock (&sim->lock);
  sim->fail_from = op;
  sim->fail_error = error != 0 ? error : EIO;
  if (op <= sim->counts.operations)
    sim->fail_from = sim->counts.operations;
  pthread_mutex_unlock (&sim->lock);
}

size_t
vdo_sim_pending (struct vdo_sim *sim)
{
  size_t queued;

  pthread_mutex_lock (&sim->lock);
  queued = sim->queued;
  pthread_mutex_unlock (&sim->lock);
  return queued;
}

bool
vdo_sim_release (struct vdo_sim *sim, size_t index)
{
  bool found;

  pthread_mutex_lock (&sim->lock);
  found = index < sim->queued;
  if (found)
    run_request_locked (sim, index);
  pthread_mutex_unlock (&sim->lock);
  return found;
}

/* --- Building crash images -------------------------------------------- */

/* The volatile writes a crash point may keep, and the image's random
 * stream. */
struct crash_builder {
  struct vdo_sim *sim;          /* the history */
  struct vdo_sim *image;
  const struct vdo_sim_crash *crash;
  struct vdo_sim_crash_info *info;
  uint64_t random;
  /* Per block, one more than the submission point of the last durable
   * write applied to it. */
  struct block_table durable_since;
  size_t *candidates;
  size_t candidate_count;
  uint8_t *old_block, *new_block;
};

static int
copy_initial (struct crash_builder *b)
{
  uint64_t block = 0;
  int r = 0;

  while (r == 0 && table_next (&b->sim->initial, &block)) {
    r = table_set (&b->image->initial, block,
                   ref_in_image (table_get (&b->sim->initial, block)));
    block++;
  }
  return r;
}

static bool
is_durable (const struct sim_write *w, uint64_t frontier)
{
  return w->fua || w->completed < frontier;
}

/* The newest flush submission point whose flush completed before the
 * crash: writes that completed before it are durable. */
static uint64_t
durable_frontier (const struct vdo_sim *sim, uint64_t point)
{
  uint64_t frontier = 0;
  size_t i;

  for (i = 0; i < sim->flush_count; i++) {
    const struct sim_flush *f = &sim->flushes[i];

    if (f->completed < point && f->submitted > frontier)
      frontier = f->submitted;
  }
  return frontier;
}

static int
apply_durable (struct crash_builder *b, uint64_t frontier)
{
  const struct vdo_sim *sim = b->sim;
  uint64_t point = b->crash->point;
  size_t i;
  int r = 0;

  for (i = 0; r == 0 && i < sim->completed_count; i++) {
    const struct sim_write *w = &sim->writes[sim->completion_order[i]];
    block_count_t k;

    if (w->completed >= point)
      break;
    if (!is_durable (w, frontier))
      continue;
    b->info->durable_writes++;
    for (k = 0; r == 0 && k < w->count; k++) {
      r = table_set (&b->image->initial, w->block + k,
                     ref_in_image (w->data + k));
      if (r == 0)
        r = table_set (&b->durable_since, w->block + k, w->submitted + 1);
    }
  }
  return r;
}

/* Volatile writes: completed but not durable, or in flight, at the
 * point; never those that failed. */
static int
collect_volatile (struct crash_builder *b, uint64_t frontier)
{
  const struct vdo_sim *sim = b->sim;
  uint64_t point = b->crash->point;
  size_t i;

  b->candidates = malloc ((sim->write_count + 1) * sizeof *b->candidates);
  if (b->candidates == NULL) {
    vdo_log_error ("simulator: out of memory");
    return ENOMEM;
  }
  for (i = 0; i < sim->write_count; i++) {
    const struct sim_write *w = &sim->writes[i];

    if (w->submitted >= point)
      break;
    if (w->failed)
      continue;
    if (w->completed >= point || !is_durable (w, frontier))
      b->candidates[b->candidate_count++] = i;
  }
  b->info->volatile_writes = b->candidate_count;
  return 0;
}

/* Keep the sectors of the history's block REF whose bits are set in
 * MASK, over what the image holds so far at BLOCK. */
static int
tear_block (struct crash_builder *b, uint64_t block, uint64_t ref,
            unsigned mask)
{
  struct vdo_sim *image = b->image;
  struct iovec v = { b->old_block, VDO_BLOCK_SIZE };
  uint64_t log_block;
  unsigned s;
  int r;

  r = read_blocks (image, block, 1, b->old_block);
  if (r == 0)
    r = read_log_block (b->sim, ref, b->new_block);
  if (r != 0)
    return r;
  for (s = 0; s < VDO_SIM_SECTORS_PER_BLOCK; s++)
    if (mask & (1u << s))
      memcpy (b->old_block + s * VDO_SIM_SECTOR_SIZE,
              b->new_block + s * VDO_SIM_SECTOR_SIZE, VDO_SIM_SECTOR_SIZE);
  log_block = image->log_blocks++;
  r = log_transfer (image->logs[0], true, log_block, &v, 1);
  if (r == 0)
    r = table_set (&image->initial, block, make_ref (0, log_block));
  b->info->torn_blocks++;
  return r;
}

#define ALL_SECTORS ((1u << VDO_SIM_SECTORS_PER_BLOCK) - 1)

/* Apply one kept volatile write, whole or torn.  MUST_TEAR: make its
 * first block that a durable write has not overridden a real tear. */
static int
apply_volatile (struct crash_builder *b, const struct sim_write *w,
                bool torn, bool must_tear)
{
  block_count_t k;
  int r = 0;

  for (k = 0; r == 0 && k < w->count; k++) {
    uint64_t block = w->block + k;
    uint64_t since = table_get (&b->durable_since, block);
    unsigned mask = ALL_SECTORS;

    if (since != 0 && w->completed < since - 1) {
      b->info->superseded_blocks++;
      continue;
    }
    if (torn) {
      mask = random_below (&b->random, ALL_SECTORS + 1);
      if (must_tear) {
        mask = 1 + random_below (&b->random, ALL_SECTORS - 1);
        must_tear = false;
      }
    }
    if (mask == ALL_SECTORS)
      r = table_set (&b->image->initial, block, ref_in_image (w->data + k));
    else if (mask != 0)
      r = tear_block (b, block, w->data + k, mask);
  }
  return r;
}

static int
apply_kept (struct crash_builder *b)
{
  const struct vdo_sim *sim = b->sim;
  bool tearing = b->crash->kind == VDO_SIM_CRASH_TORN;
  bool torn_yet = false;
  uint64_t keep_per_mille;
  size_t i;
  int r = 0;

  /* Shuffle, so kept writes land in any order. */
  for (i = b->candidate_count; i > 1; i--) {
    size_t j = random_below (&b->random, i), t = b->candidates[i - 1];

    b->candidates[i - 1] = b->candidates[j];
    b->candidates[j] = t;
  }
  keep_per_mille = random_below (&b->random, 1001);
  for (i = 0; r == 0 && i < b->candidate_count; i++) {
    const struct sim_write *w = &sim->writes[b->candidates[i]];
    bool keep = random_below (&b->random, 1000) < keep_per_mille;
    bool torn = tearing && (!torn_yet || random_below (&b->random, 2) == 0);

    /* A torn image tears at least one write. */
    if (!keep && !(tearing && !torn_yet))
      continue;
    b->info->kept_writes++;
    r = apply_volatile (b, w, torn, torn && !torn_yet);
    torn_yet = torn_yet || torn;
  }
  return r;
}

static int
build_image (struct vdo_sim *sim, const struct vdo_sim_crash *crash,
             struct vdo_sim *image, struct vdo_sim_crash_info *info)
{
  struct crash_builder b = {
    .sim = sim, .image = image, .crash = crash, .info = info,
    .random = crash->seed ^ 0x6c8e9cf570932bd5ull,
  };
  uint64_t frontier;
  int r;

  memset (info, 0, sizeof *info);
  b.old_block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  b.new_block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (b.old_block == NULL || b.new_block == NULL) {
    r = ENOMEM;
    goto out;
  }
  r = table_init (&b.durable_since, vdo_io_block_count (&sim->io));
  if (r != 0)
    goto out;

  pthread_mutex_lock (&sim->lock);
  if (crash->point > sim->clock) {
    vdo_log_error ("%s: crash point %" PRIu64 " is past the history's end, %"
                   PRIu64, sim->io.path, crash->point, sim->clock);
    r = EINVAL;
  }
  frontier = durable_frontier (sim, crash->point);
  if (r == 0)
    r = copy_initial (&b);
  if (r == 0)
    r = apply_durable (&b, frontier);
  if (r == 0)
    r = collect_volatile (&b, frontier);
  if (r == 0 && crash->kind != VDO_SIM_CRASH_DURABLE)
    r = apply_kept (&b);
  pthread_mutex_unlock (&sim->lock);

 out:
  table_free (&b.durable_since);
  free (b.candidates);
  vdo_io_free_buffer (b.old_block);
  vdo_io_free_buffer (b.new_block);
  return r;
}

int
vdo_sim_open_crash (struct vdo_sim *sim, const struct vdo_sim_crash *crash,
                    const struct vdo_sim_options *options,
                    struct vdo_sim **image, struct vdo_sim_crash_info *info)
{
  struct vdo_sim_options defaults = { .log_dir = sim->log_dir };
  struct vdo_sim_crash_info ignored;
  int r;

  if (options == NULL)
    options = &defaults;
  r = new_sim (sim->lower, options, "crash image", sim, image);
  if (r != 0)
    return r;
  r = build_image (sim, crash, *image, info ? info : &ignored);
  if (r != 0) {
    vdo_sim_close (*image);
    *image = NULL;
  }
  return r;
}

#define COPY_RUN 256

/* Copy to TARGET, from SOURCE (a simulator's view, or the lower device
 * when FROM_LOWER), every block that has an entry in TABLE. */
static int
copy_table_blocks (struct vdo_sim *source, bool from_lower,
                   const struct block_table *table, struct vdo_io *target)
{
  uint8_t *buffer = vdo_io_alloc_buffer (COPY_RUN * VDO_BLOCK_SIZE);
  uint64_t block = 0;
  int r = 0;

  if (buffer == NULL)
    return ENOMEM;
  while (r == 0 && table_next (table, &block)) {
    block_count_t n = 1;

    while (n < COPY_RUN && ((block + n) >> CHUNK_BITS) < table->chunk_count
           && table_get (table, block + n) != 0)
      n++;
    r = from_lower ? vdo_io_read_blocks (source->lower, block, n, buffer)
                   : read_blocks (source, block, n, buffer);
    if (r == 0)
      r = vdo_io_write_blocks (target, block, n, buffer);
    block += n;
  }
  vdo_io_free_buffer (buffer);
  return r;
}

int
vdo_sim_write_crash (struct vdo_sim *sim, const struct vdo_sim_crash *crash,
                     struct vdo_io *target, struct vdo_sim_crash_info *info)
{
  struct vdo_sim *image;
  int r;

  r = vdo_sim_open_crash (sim, crash, NULL, &image, info);
  if (r != 0)
    return r;
  r = copy_table_blocks (image, false, &image->initial, target);
  if (r == 0)
    r = vdo_io_flush (target);
  vdo_sim_close (image);
  return r;
}

int
vdo_sim_restore_lower (struct vdo_sim *sim, struct vdo_io *target)
{
  struct block_table touched;
  uint64_t block = 0;
  size_t i;
  int r;

  r = table_init (&touched, vdo_io_block_count (&sim->io));
  if (r != 0)
    return r;
  pthread_mutex_lock (&sim->lock);
  while (r == 0 && table_next (&sim->initial, &block))
    r = table_set (&touched, block++, 1);
  for (i = 0; r == 0 && i < sim->write_count; i++) {
    const struct sim_write *w = &sim->writes[i];
    block_count_t k;

    for (k = 0; r == 0 && k < w->count; k++)
      r = table_set (&touched, w->block + k, 1);
  }
  pthread_mutex_unlock (&sim->lock);
  if (r == 0)
    r = copy_table_blocks (sim, true, &touched, target);
  if (r == 0)
    r = vdo_io_flush (target);
  table_free (&touched);
  return r;
}
