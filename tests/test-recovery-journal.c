/* nbdkit-vdo: the runtime recovery journal, on a real sparse file with
 * real work queues: durability before completion, ordering, group
 * commit, reaping and locks, space, pressure, errors, drain and save. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "journal-lock.h"
#include "read-only.h"
#include "recovery-journal.h"
#include "status.h"
#include "unit-suites.h"
#include "vio.h"
#include "work-queue.h"

#define ORIGIN 16                       /* first PBN of the journal */
#define NONCE 0x0123456789abcdefull
#define RECOVERIES 259                  /* recovery count byte 3 */
#define INITIAL_LBU 1000000
#define INITIAL_BMDB 500
#define WAIT_SECONDS 120
#define MAX_SUBMITTERS 4
#define HELD_BLOCKS 1024

#define container_of(ptr, type, member) \
  ((type *) ((char *) (ptr) - offsetof (type, member)))

/* --- A tracing I/O backend ------------------------------------------- */

/* Wraps the file backend and records every asynchronous request: its
 * submission, its completion (before the callback) and the callback's
 * return.  Anything the journal enqueues from a callback is thus queued
 * before a test that saw the return enqueues its own query. */
enum trace_kind { TRACE_SUBMIT, TRACE_DONE, TRACE_RETURNED, TRACE_MARK };

struct trace_event {
  enum trace_kind kind;
  enum vdo_io_op op;
  physical_block_number_t block;
  bool fua;
  int result;
  const void *request;                  /* the caller's request */
};

struct trace_io {
  struct vdo_io base;
  struct vdo_io *inner;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  struct trace_event *events;
  size_t count, capacity;
};

struct traced_request {
  struct vdo_io_request inner;
  struct vdo_io_request *outer;
  struct trace_io *trace;
};

static size_t
trace_record (struct trace_io *t, struct trace_event event)
{
  size_t index;

  pthread_mutex_lock (&t->lock);
  if (t->count == t->capacity) {
    t->capacity = t->capacity ? 2 * t->capacity : 1024;
    t->events = realloc (t->events, t->capacity * sizeof *t->events);
    if (t->events == NULL)
      abort ();
  }
  index = t->count;
  t->events[t->count++] = event;
  pthread_cond_broadcast (&t->changed);
  pthread_mutex_unlock (&t->lock);
  return index;
}

static struct trace_io *
trace_of (struct vdo_io *io)
{
  return (struct trace_io *) io;
}

static int
trace_read (struct vdo_io *io, physical_block_number_t block,
            block_count_t count, void *buffer)
{
  return vdo_io_read_blocks (trace_of (io)->inner, block, count, buffer);
}

static int
trace_write (struct vdo_io *io, physical_block_number_t block,
             block_count_t count, const void *buffer)
{
  return vdo_io_write_blocks (trace_of (io)->inner, block, count, buffer);
}

static int
trace_flush (struct vdo_io *io)
{
  return vdo_io_flush (trace_of (io)->inner);
}

static int
trace_start (struct vdo_io *io, unsigned queue_depth)
{
  return vdo_io_start (trace_of (io)->inner, queue_depth);
}

static void
traced_done (struct vdo_io_request *request, int result)
{
  struct traced_request *tr = container_of (request, struct traced_request,
                                            inner);
  struct vdo_io_request *outer = tr->outer;
  struct trace_io *t = tr->trace;
  struct trace_event event = {
    .kind = TRACE_DONE, .op = request->op, .block = request->block,
    .fua = request->fua, .result = result, .request = outer,
  };

  free (tr);
  trace_record (t, event);
  outer->callback (outer, result);
  event.kind = TRACE_RETURNED;
  trace_record (t, event);
}

static struct traced_request *
wrap_request (struct trace_io *t, struct vdo_io_request *outer)
{
  struct traced_request *tr = calloc (1, sizeof *tr);

  if (tr == NULL)
    abort ();
  tr->outer = outer;
  tr->trace = t;
  tr->inner.op = outer->op;
  tr->inner.fua = outer->fua;
  tr->inner.block = outer->block;
  tr->inner.count = outer->count;
  tr->inner.buffer = outer->buffer;
  tr->inner.iov = outer->iov;
  tr->inner.iovcnt = outer->iovcnt;
  tr->inner.callback = traced_done;
  return tr;
}

static void
trace_submit (struct vdo_io *io, struct vdo_io_request *const *requests,
              size_t count)
{
  struct trace_io *t = trace_of (io);
  size_t i;

  for (i = 0; i < count; i++) {
    struct vdo_io_request *r = requests[i];
    struct trace_event event = {
      .kind = TRACE_SUBMIT, .op = r->op, .block = r->block, .fua = r->fua,
      .request = r,
    };

    trace_record (t, event);
    vdo_io_submit_one (t->inner, &wrap_request (t, r)->inner);
  }
}

static void
trace_complete (struct vdo_io *io, struct vdo_io_request *request, int result)
{
  struct trace_io *t = trace_of (io);

  t->inner->ops->complete (t->inner, &wrap_request (t, request)->inner,
                           result);
}

static void
trace_drain (struct vdo_io *io)
{
  vdo_io_drain (trace_of (io)->inner);
}

static void
trace_destroy (struct vdo_io *io)
{
  struct trace_io *t = trace_of (io);

  vdo_io_close (t->inner);
  pthread_cond_destroy (&t->changed);
  pthread_mutex_destroy (&t->lock);
  free (t->events);
  vdo_io_release_base (&t->base);
  free (t);
}

static const struct vdo_io_ops trace_ops = {
  .name = "trace",
  .read = trace_read,
  .write = trace_write,
  .flush = trace_flush,
  .start = trace_start,
  .submit = trace_submit,
  .complete = trace_complete,
  .drain = trace_drain,
  .destroy = trace_destroy,
};

static struct trace_io *
make_trace_io (struct vdo_io *inner)
{
  struct trace_io *t = calloc (1, sizeof *t);

  ck_assert_ptr_nonnull (t);
  ck_assert_int_eq (vdo_io_init_base (&t->base, &trace_ops,
                                      vdo_io_path (inner), vdo_io_size (inner),
                                      false, vdo_io_is_direct (inner), false),
                    0);
  t->inner = inner;
  pthread_mutex_init (&t->lock, NULL);
  pthread_cond_init (&t->changed, NULL);
  return t;
}

/* --- The fixture --------------------------------------------------------- */

struct fixture {
  char path[64];
  struct trace_io *trace;
  struct vdo_block_device device;
  struct vdo_work_queue *journal_queue;
  struct vdo_work_queue *callback_queue;
  struct vdo_work_queue *zone_queue;    /* stands in for the other zones */
  struct vdo_read_only_notifier *read_only;
  struct recovery_journal *journal;
  block_count_t size;
  sequence_number_t start;
  uint8_t *callback_buffer;             /* used on the callback queue only */
  uint8_t *buffer;                      /* used by the test thread only */
  bool drained;

  pthread_mutex_t lock;
  pthread_cond_t cond;
  uint64_t finished;
  uint64_t succeeded;
  uint64_t failed_read_only;
  uint64_t failed_other;
  int last_failure;
  bool hold_locks;                      /* take logical+physical locks */
  bool auto_release;                    /* pressure hooks release them */
  bool check_durable;
  struct journal_point last_point;
  int64_t last_number[MAX_SUBMITTERS];
  char error[512];
  uint32_t held[VDO_ZONE_TYPE_COUNT][HELD_BLOCKS];
  int read_only_error;
  bool drain_done;
  int drain_result;
  uint64_t finished_at_drain;

  atomic_ulong slab_pressure_calls;
  atomic_ulong block_map_pressure_calls;
};

struct test_request {
  struct vdo_journal_entry_request request;
  struct fixture *f;
  unsigned int number;                  /* position in its submitter's order */
  unsigned int submitter;
  int result;
  bool done;
};

static struct fixture fixture;

static void
record_error (struct fixture *f, const char *fmt, ...)
{
  va_list args;

  pthread_mutex_lock (&f->lock);
  if (f->error[0] == '\0') {
    va_start (args, fmt);
    vsnprintf (f->error, sizeof f->error, fmt, args);
    va_end (args);
  }
  pthread_mutex_unlock (&f->lock);
}

static void
assert_no_error (struct fixture *f)
{
  pthread_mutex_lock (&f->lock);
  ck_assert_msg (f->error[0] == '\0', "%s", f->error);
  pthread_mutex_unlock (&f->lock);
}

static struct timespec
deadline (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  ts.tv_sec += WAIT_SECONDS;
  return ts;
}

/* Wait, under f->lock, for CONDITION; fail the test after the timeout. */
#define WAIT_FOR(f, condition)                                          \
  do {                                                                  \
    struct timespec until_ = deadline ();                               \
    int timed_out_ = 0;                                                 \
    pthread_mutex_lock (&(f)->lock);                                    \
    while (!(condition) && !timed_out_)                                 \
      timed_out_ = pthread_cond_timedwait (&(f)->cond, &(f)->lock,     \
                                           &until_) == ETIMEDOUT;       \
    timed_out_ = !(condition);                                          \
    pthread_mutex_unlock (&(f)->lock);                                  \
    ck_assert_msg (!timed_out_, "timed out waiting for %s", #condition); \
  } while (0)

static void
signal_fixture (struct fixture *f)
{
  pthread_cond_broadcast (&f->cond);
}

/* Run FN on the journal thread and wait for it. */
struct journal_call {
  struct vdo_completion completion;
  struct fixture *f;
  void (*fn) (struct fixture *f, void *arg);
  void *arg;
  bool done;
};

static void
journal_call_run (struct vdo_completion *completion)
{
  struct journal_call *call = container_of (completion, struct journal_call,
                                            completion);

  call->fn (call->f, call->arg);
  pthread_mutex_lock (&call->f->lock);
  call->done = true;
  signal_fixture (call->f);
  pthread_mutex_unlock (&call->f->lock);
}

static void
run_on_journal (struct fixture *f, void (*fn) (struct fixture *, void *),
                void *arg)
{
  struct journal_call call = { .f = f, .fn = fn, .arg = arg };

  vdo_prepare_completion (&call.completion, journal_call_run,
                          f->journal_queue, NULL);
  vdo_enqueue_completion (&call.completion);
  WAIT_FOR (f, call.done);
}

struct snapshot {
  sequence_number_t tail, block_map_head, slab_journal_head;
  block_count_t logical_blocks_used, block_map_data_blocks;
  struct recovery_journal_statistics stats;
  struct recovery_journal_state_7_0 recorded;
};

static void
take_snapshot (struct fixture *f, void *arg)
{
  struct snapshot *s = arg;

  s->tail = vdo_recovery_journal_tail (f->journal);
  s->block_map_head = vdo_recovery_journal_block_map_head (f->journal);
  s->slab_journal_head = vdo_recovery_journal_slab_journal_head (f->journal);
  s->logical_blocks_used =
    vdo_recovery_journal_logical_blocks_used (f->journal);
  s->block_map_data_blocks =
    vdo_recovery_journal_block_map_data_blocks (f->journal);
  vdo_get_recovery_journal_statistics (f->journal, &s->stats);
  vdo_record_recovery_journal (f->journal, &s->recorded);
}

static struct snapshot
snapshot (struct fixture *f)
{
  struct snapshot s;

  run_on_journal (f, take_snapshot, &s);
  return s;
}

/* --- Entries ------------------------------------------------------------- */

/* A varied, deterministic entry for each number: data remappings of all
 * kinds (new, overwrite, discard, zero block, compressed) and some tree
 * page allocations. */
static struct recovery_journal_entry
make_entry (unsigned int n)
{
  struct recovery_journal_entry e = { 0 };

  e.slot = n % VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
  if (n % 50 == 49) {
    e.operation = VDO_JOURNAL_BLOCK_MAP_REMAPPING;
    e.slot_pbn = 500 + n % 7;
    e.mapping = (struct vdo_data_location) { 4000000 + n,
                                             VDO_MAPPING_STATE_UNCOMPRESSED };
    return e;
  }
  e.operation = VDO_JOURNAL_DATA_REMAPPING;
  e.slot_pbn = 100000 + n / VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
  switch (n % 10) {
  case 3:
    e.mapping = (struct vdo_data_location) { 0, VDO_MAPPING_STATE_UNMAPPED };
    break;
  case 4:
    e.mapping = (struct vdo_data_location) { 0, VDO_MAPPING_STATE_UNCOMPRESSED };
    break;
  case 5:
    e.mapping = (struct vdo_data_location)
      { 5000000 + n, VDO_MAPPING_STATE_COMPRESSED_BASE + n % 14 };
    break;
  default:
    e.mapping = (struct vdo_data_location) { 2000000 + n,
                                             VDO_MAPPING_STATE_UNCOMPRESSED };
  }
  if (n % 3 != 0)
    e.unmapping = (struct vdo_data_location) { 3000000 + n,
                                               VDO_MAPPING_STATE_UNCOMPRESSED };
  return e;
}

/* The counters after applying entries 0..count-1 (vdo-journals.md 1.7). */
static void
model_counters (unsigned int count, block_count_t *lbu, block_count_t *bmdb)
{
  unsigned int n;

  *lbu = INITIAL_LBU;
  *bmdb = INITIAL_BMDB;
  for (n = 0; n < count; n++) {
    struct recovery_journal_entry e = make_entry (n);

    if (e.operation == VDO_JOURNAL_BLOCK_MAP_REMAPPING)
      (*bmdb)++;
    else
      *lbu += (e.mapping.state != VDO_MAPPING_STATE_UNMAPPED)
        - (e.unmapping.state != VDO_MAPPING_STATE_UNMAPPED);
  }
}

static bool
same_entry (const struct recovery_journal_entry *a,
            const struct recovery_journal_entry *b)
{
  return a->operation == b->operation && a->slot_pbn == b->slot_pbn
    && a->slot == b->slot && a->mapping.pbn == b->mapping.pbn
    && a->mapping.state == b->mapping.state
    && a->unmapping.pbn == b->unmapping.pbn
    && a->unmapping.state == b->unmapping.state;
}

static uint8_t
expected_check_byte (struct fixture *f, sequence_number_t seq)
{
  return 0x80 | ((seq / f->size) & 0x7F);
}

static physical_block_number_t
block_pbn (struct fixture *f, sequence_number_t seq)
{
  return ORIGIN + seq % f->size;
}

/* On the callback queue: is the entry in the block on disk right now? */
static void
check_entry_on_disk (struct fixture *f, struct test_request *r)
{
  struct journal_point point = r->request.recovery_point;
  struct recovery_block_header header;
  struct recovery_journal_sector_header sector;
  struct recovery_journal_entry entry;
  unsigned int s = 1 + point.entry_count / 31;
  const uint8_t *sector_data;
  int rc;

  rc = vdo_io_read_blocks (&f->trace->base,
                           block_pbn (f, point.sequence_number), 1,
                           f->callback_buffer);
  if (rc != 0) {
    record_error (f, "read back failed: %d", rc);
    return;
  }
  vdo_decode_recovery_block_header (f->callback_buffer, &header);
  sector_data = f->callback_buffer + s * VDO_SECTOR_SIZE;
  vdo_decode_recovery_journal_sector_header (sector_data, &sector);
  vdo_decode_recovery_journal_entry
    (f->callback_buffer
     + vdo_recovery_journal_entry_offset (VDO_METADATA_RECOVERY_JOURNAL_2,
                                          point.entry_count), &entry);
  if (header.sequence_number != point.sequence_number
      || header.nonce != NONCE
      || header.metadata_type != VDO_METADATA_RECOVERY_JOURNAL_2
      || header.entry_count <= point.entry_count
      || header.check_byte != expected_check_byte (f, point.sequence_number)
      || header.recovery_count != RECOVERIES % 256
      || !vdo_is_valid_recovery_journal_sector (&header, &sector, s)
      || sector.entry_count <= point.entry_count % 31
      || !same_entry (&entry, &r->request.entry))
    record_error (f, "entry (%llu, %u) not durable when its completion ran:"
                  " block seq %llu, %u entries, sector %u holds %u",
                  (unsigned long long) point.sequence_number,
                  point.entry_count,
                  (unsigned long long) header.sequence_number,
                  header.entry_count, s, sector.entry_count);
}

static bool
point_before (struct journal_point a, struct journal_point b)
{
  return a.sequence_number < b.sequence_number
    || (a.sequence_number == b.sequence_number
        && a.entry_count < b.entry_count);
}

/* The requester's side: check, take the effects' locks, let go of the
 * entry's journal lock, count. */
static void
request_done (struct vdo_completion *completion)
{
  struct test_request *r = container_of (completion, struct test_request,
                                         request.completion);
  struct fixture *f = r->f;
  struct journal_point point = r->request.recovery_point;
  struct vdo_journal_lock_counter *locks =
    vdo_recovery_journal_lock_counter (f->journal);
  int result = completion->result;

  if (result == VDO_SUCCESS && f->check_durable)
    check_entry_on_disk (f, r);

  pthread_mutex_lock (&f->lock);
  if (point.sequence_number != 0) {
    if (!point_before (f->last_point, point) && f->error[0] == '\0')
      snprintf (f->error, sizeof f->error, "completion (%llu, %u) after "
                "(%llu, %u)", (unsigned long long) point.sequence_number,
                point.entry_count,
                (unsigned long long) f->last_point.sequence_number,
                f->last_point.entry_count);
    f->last_point = point;
    if (result == VDO_SUCCESS && f->hold_locks) {
      size_t index = point.sequence_number - f->start;

      if (index >= HELD_BLOCKS)
        abort ();
      vdo_acquire_journal_lock (locks, point.sequence_number,
                                VDO_ZONE_TYPE_LOGICAL, 1);
      vdo_acquire_journal_lock (locks, point.sequence_number,
                                VDO_ZONE_TYPE_PHYSICAL, 1);
      f->held[VDO_ZONE_TYPE_LOGICAL][index]++;
      f->held[VDO_ZONE_TYPE_PHYSICAL][index]++;
    }
  }
  if ((int64_t) r->number <= f->last_number[r->submitter]
      && f->error[0] == '\0')
    snprintf (f->error, sizeof f->error, "submitter %u: request %u finished"
              " after %lld", r->submitter, r->number,
              (long long) f->last_number[r->submitter]);
  f->last_number[r->submitter] = r->number;
  pthread_mutex_unlock (&f->lock);

  /* Only now that the effects hold their own locks. */
  if (point.sequence_number != 0
      && vdo_release_journal_lock (locks, point.sequence_number,
                                   VDO_ZONE_TYPE_JOURNAL, 1) != VDO_SUCCESS)
    record_error (f, "journal lock of %llu not held",
                  (unsigned long long) point.sequence_number);

  pthread_mutex_lock (&f->lock);
  r->result = result;
  r->done = true;
  f->finished++;
  if (result == VDO_SUCCESS)
    f->succeeded++;
  else if (result == VDO_READ_ONLY)
    f->failed_read_only++;
  else {
    f->failed_other++;
    f->last_failure = result;
  }
  signal_fixture (f);
  pthread_mutex_unlock (&f->lock);
}

/* Release every held lock of TYPE on blocks up to THROUGH. */
static void
release_held (struct fixture *f, enum vdo_zone_type type,
              sequence_number_t through)
{
  struct vdo_journal_lock_counter *locks =
    vdo_recovery_journal_lock_counter (f->journal);
  size_t i;

  pthread_mutex_lock (&f->lock);
  for (i = 0; i < HELD_BLOCKS && f->start + i <= through; i++)
    if (f->held[type][i] > 0) {
      if (vdo_release_journal_lock (locks, f->start + i, type,
                                    f->held[type][i]) != VDO_SUCCESS
          && f->error[0] == '\0')
        snprintf (f->error, sizeof f->error, "cannot release held lock");
      f->held[type][i] = 0;
    }
  pthread_mutex_unlock (&f->lock);
}

struct release_work {
  struct vdo_completion completion;
  struct fixture *f;
  enum vdo_zone_type type;
  sequence_number_t through;
};

static void
run_release_work (struct vdo_completion *completion)
{
  struct release_work *w = container_of (completion, struct release_work,
                                         completion);

  release_held (w->f, w->type, w->through);
  free (w);
}

/* The hooks only enqueue, as the contract asks. */
static void
queue_release (struct fixture *f, enum vdo_zone_type type,
               sequence_number_t through)
{
  struct release_work *w = calloc (1, sizeof *w);

  if (w == NULL)
    abort ();
  w->f = f;
  w->type = type;
  w->through = through;
  vdo_prepare_completion (&w->completion, run_release_work, f->zone_queue,
                          NULL);
  vdo_enqueue_completion (&w->completion);
}

static void
slab_pressure (void *context, sequence_number_t oldest)
{
  struct fixture *f = context;

  atomic_fetch_add (&f->slab_pressure_calls, 1);
  if (f->auto_release)
    queue_release (f, VDO_ZONE_TYPE_PHYSICAL, oldest);
}

static void
block_map_pressure (void *context, sequence_number_t oldest)
{
  struct fixture *f = context;

  atomic_fetch_add (&f->block_map_pressure_calls, 1);
  if (f->auto_release)
    queue_release (f, VDO_ZONE_TYPE_LOGICAL, oldest);
}

static void
read_only_entered (void *context, int error)
{
  struct fixture *f = context;

  pthread_mutex_lock (&f->lock);
  f->read_only_error = error;
  signal_fixture (f);
  pthread_mutex_unlock (&f->lock);
}

static void
drain_done (struct vdo_completion *completion)
{
  struct fixture *f = completion->parent;

  pthread_mutex_lock (&f->lock);
  f->drain_done = true;
  f->drain_result = completion->result;
  f->finished_at_drain = f->finished;
  signal_fixture (f);
  pthread_mutex_unlock (&f->lock);
}

static struct recovery_journal_config
base_config (struct fixture *f, block_count_t size, sequence_number_t start)
{
  struct recovery_journal_config config = {
    .nonce = NONCE,
    .complete_recoveries = RECOVERIES,
    .state = { start, INITIAL_LBU, INITIAL_BMDB },
    .origin = ORIGIN,
    .size = size,
    .device = &f->device,
    .queue = f->journal_queue,
    .read_only = f->read_only,
    .hooks = { slab_pressure, block_map_pressure, f },
  };
  return config;
}

static struct fixture *
start_fixture (block_count_t size, sequence_number_t start)
{
  struct fixture *f = &fixture;
  struct recovery_journal_config config;
  struct vdo_io *inner;
  int fd;

  memset (f, 0, sizeof *f);
  pthread_mutex_init (&f->lock, NULL);
  pthread_cond_init (&f->cond, NULL);
  atomic_init (&f->slab_pressure_calls, 0);
  atomic_init (&f->block_map_pressure_calls, 0);
  for (fd = 0; fd < MAX_SUBMITTERS; fd++)
    f->last_number[fd] = -1;
  f->size = size;
  f->start = start;
  f->check_durable = true;

  strcpy (f->path, "/tmp/vdo-rj-test-XXXXXX");
  fd = mkstemp (f->path);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, (ORIGIN + size + 4) * VDO_BLOCK_SIZE), 0);
  close (fd);
  ck_assert_int_eq (vdo_io_open (f->path, 0, &inner), 0);
  /* The open handle is all we need; nothing is left behind on failure. */
  unlink (f->path);
  f->trace = make_trace_io (inner);
  ck_assert_int_eq (vdo_io_start (&f->trace->base, 0), 0);
  f->device.io = &f->trace->base;
  f->device.bio_offset = 0;

  ck_assert_int_eq (vdo_make_work_queue ("journal", &f->journal_queue), 0);
  ck_assert_int_eq (vdo_make_work_queue ("callbacks", &f->callback_queue), 0);
  ck_assert_int_eq (vdo_make_work_queue ("zones", &f->zone_queue), 0);
  ck_assert_int_eq (vdo_start_work_queue (f->journal_queue), 0);
  ck_assert_int_eq (vdo_start_work_queue (f->callback_queue), 0);
  ck_assert_int_eq (vdo_start_work_queue (f->zone_queue), 0);
  ck_assert_int_eq (vdo_make_read_only_notifier (false, read_only_entered, f,
                                                 &f->read_only), 0);
  f->callback_buffer = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  f->buffer = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  ck_assert_ptr_nonnull (f->callback_buffer);
  ck_assert_ptr_nonnull (f->buffer);

  config = base_config (f, size, start);
  ck_assert_int_eq (vdo_make_recovery_journal (&config, &f->journal),
                    VDO_SUCCESS);
  return f;
}

static void
call_drain (struct fixture *f, void *arg)
{
  vdo_drain_recovery_journal (f->journal, arg);
}

static int
drain (struct fixture *f)
{
  struct vdo_completion parent;

  pthread_mutex_lock (&f->lock);
  f->drain_done = false;
  pthread_mutex_unlock (&f->lock);
  vdo_prepare_completion (&parent, drain_done, f->callback_queue, f);
  run_on_journal (f, call_drain, &parent);
  WAIT_FOR (f, f->drain_done);
  f->drained = true;
  return f->drain_result;
}

static void
stop_fixture (struct fixture *f)
{
  if (!f->drained)
    drain (f);
  /* Zones first: their releases may still wake the (drained) journal. */
  vdo_free_work_queue (f->zone_queue);
  vdo_free_work_queue (f->callback_queue);
  vdo_free_work_queue (f->journal_queue);
  vdo_free_recovery_journal (f->journal);
  vdo_io_close (&f->trace->base);
  vdo_free_read_only_notifier (f->read_only);
  vdo_io_free_buffer (f->callback_buffer);
  vdo_io_free_buffer (f->buffer);
  pthread_cond_destroy (&f->cond);
  pthread_mutex_destroy (&f->lock);
}

static struct test_request *
make_requests (struct fixture *f, unsigned int count, unsigned int first)
{
  struct test_request *requests = calloc (count, sizeof *requests);
  unsigned int i;

  ck_assert_ptr_nonnull (requests);
  for (i = 0; i < count; i++) {
    struct test_request *r = &requests[i];

    r->f = f;
    r->number = first + i;
    r->request.entry = make_entry (first + i);
    vdo_prepare_completion (&r->request.completion, request_done,
                            f->callback_queue, NULL);
  }
  return requests;
}

struct batch {
  struct test_request *requests;
  unsigned int count;
  bool drain_after;
  struct vdo_completion *drain_parent;
};

static void
add_batch (struct fixture *f, void *arg)
{
  struct batch *b = arg;
  unsigned int i;

  for (i = 0; i < b->count; i++)
    vdo_recovery_journal_add_entry (f->journal, &b->requests[i].request);
  if (b->drain_after)
    vdo_drain_recovery_journal (f->journal, b->drain_parent);
}

/* Add COUNT requests in one go on the journal thread, so they arrive
 * together, as a burst from many zones would. */
static void
submit_batch (struct fixture *f, struct test_request *requests,
              unsigned int count)
{
  struct batch b = { requests, count, false, NULL };

  run_on_journal (f, add_batch, &b);
}

static void
read_block (struct fixture *f, sequence_number_t seq, uint8_t *buffer)
{
  ck_assert_int_eq (vdo_io_read_blocks (&f->trace->base, block_pbn (f, seq),
                                        1, buffer), 0);
}

/* Check a block written from a single batch: entries FIRST..FIRST+COUNT-1
 * in order, header, sectors and counters as of the open. */
static void
verify_block (struct fixture *f, sequence_number_t seq, unsigned int first,
              unsigned int count, struct recovery_block_header *header_out)
{
  struct recovery_block_header header;
  block_count_t lbu, bmdb;
  unsigned int s, i, started = (count + 30) / 31;

  read_block (f, seq, f->buffer);
  vdo_decode_recovery_block_header (f->buffer, &header);
  model_counters (first, &lbu, &bmdb);
  ck_assert_uint_eq (header.sequence_number, seq);
  ck_assert_uint_eq (header.nonce, NONCE);
  ck_assert_uint_eq (header.metadata_type, 3);
  ck_assert_uint_eq (header.entry_count, count);
  ck_assert_uint_eq (header.logical_blocks_used, lbu);
  ck_assert_uint_eq (header.block_map_data_blocks, bmdb);
  ck_assert_uint_eq (header.check_byte, expected_check_byte (f, seq));
  ck_assert_uint_eq (header.recovery_count, RECOVERIES % 256);
  ck_assert_uint_le (header.block_map_head, seq);
  ck_assert_uint_le (header.slab_journal_head, seq);
  ck_assert_uint_ge (header.block_map_head, f->start);
  ck_assert_uint_ge (header.slab_journal_head, f->start);
  for (i = 53; i < VDO_SECTOR_SIZE; i++)
    ck_assert_uint_eq (f->buffer[i], 0);
  for (s = 1; s < VDO_SECTORS_PER_BLOCK; s++) {
    const uint8_t *sector = f->buffer + s * VDO_SECTOR_SIZE;
    struct recovery_journal_sector_header sh;

    if (s > started) {
      for (i = 0; i < VDO_SECTOR_SIZE; i++)
        ck_assert_uint_eq (sector[i], 0);
      continue;
    }
    vdo_decode_recovery_journal_sector_header (sector, &sh);
    ck_assert (vdo_is_valid_recovery_journal_sector (&header, &sh, s));
    ck_assert_uint_eq (sh.entry_count,
                       s < started || count % 31 == 0 ? 31 : count % 31);
  }
  for (i = 0; i < count; i++) {
    struct recovery_journal_entry entry, want = make_entry (first + i);

    vdo_decode_recovery_journal_entry
      (f->buffer + vdo_recovery_journal_entry_offset (3, i), &entry);
    ck_assert_msg (same_entry (&entry, &want), "block %llu entry %u",
                   (unsigned long long) seq, i);
  }
  if (header_out != NULL)
    *header_out = header;
}

/* Every journal write is PREFLUSH + FUA: the request's previous event is
 * its successful preflush. */
static unsigned int
check_writes_preflushed (struct fixture *f, size_t from)
{
  struct trace_io *t = f->trace;
  unsigned int writes = 0;
  size_t i, j;

  pthread_mutex_lock (&t->lock);
  for (i = from; i < t->count; i++) {
    const struct trace_event *e = &t->events[i];

    if (e->kind != TRACE_SUBMIT || e->op != VDO_IO_WRITE)
      continue;
    writes++;
    ck_assert (e->fua);
    ck_assert_uint_ge (e->block, ORIGIN);
    ck_assert_uint_lt (e->block, ORIGIN + f->size);
    for (j = i; j-- > 0;)
      if (t->events[j].request == e->request)
        break;
    ck_assert_msg (j < i && t->events[j].kind == TRACE_DONE
                   && t->events[j].op == VDO_IO_FLUSH
                   && t->events[j].result == 0,
                   "write %zu was not preceded by its preflush", i);
  }
  pthread_mutex_unlock (&t->lock);
  return writes;
}

static size_t
trace_mark (struct fixture *f)
{
  struct trace_event mark = { .kind = TRACE_MARK };

  return trace_record (f->trace, mark);
}

static unsigned int
count_events (struct fixture *f, size_t from, enum trace_kind kind,
              enum vdo_io_op op)
{
  struct trace_io *t = f->trace;
  unsigned int n = 0;
  size_t i;

  pthread_mutex_lock (&t->lock);
  for (i = from; i < t->count; i++)
    if (t->events[i].kind == kind && t->events[i].op == op)
      n++;
  pthread_mutex_unlock (&t->lock);
  return n;
}

/* The index of the first event at or after FROM of this kind and op,
 * waiting for it. */
static size_t
wait_for_event (struct fixture *f, size_t from, enum trace_kind kind,
                enum vdo_io_op op)
{
  struct trace_io *t = f->trace;
  struct timespec until = deadline ();
  size_t i = from;

  pthread_mutex_lock (&t->lock);
  for (;;) {
    for (; i < t->count; i++)
      if (t->events[i].kind == kind && t->events[i].op == op) {
        pthread_mutex_unlock (&t->lock);
        return i;
      }
    if (pthread_cond_timedwait (&t->changed, &t->lock, &until) == ETIMEDOUT) {
      pthread_mutex_unlock (&t->lock);
      ck_abort_msg ("timed out waiting for an I/O event");
    }
  }
}

/* Wait until the heads reach at least these values; they only move when
 * a reaping flush completes, so look after each flush returns. */
static struct snapshot
wait_for_heads (struct fixture *f, size_t from, sequence_number_t block_map,
                sequence_number_t slab_journal)
{
  size_t i = from;

  for (;;) {
    struct snapshot s = snapshot (f);

    if (s.block_map_head >= block_map && s.slab_journal_head >= slab_journal)
      return s;
    i = wait_for_event (f, i, TRACE_RETURNED, VDO_IO_FLUSH) + 1;
  }
}

/* --- Tests --------------------------------------------------------------- */

START_TEST (test_entries_durable_and_encoded)
{
  struct fixture *f = start_fixture (64, 1);
  struct test_request *r = make_requests (f, 500, 0);
  struct snapshot s;
  block_count_t lbu, bmdb;
  unsigned int i;

  submit_batch (f, r, 500);
  WAIT_FOR (f, f->finished == 500);
  assert_no_error (f);
  ck_assert_uint_eq (f->succeeded, 500);
  for (i = 0; i < 500; i++) {
    ck_assert_uint_eq (r[i].request.recovery_point.sequence_number,
                       1 + i / 217);
    ck_assert_uint_eq (r[i].request.recovery_point.entry_count, i % 217);
  }
  verify_block (f, 1, 0, 217, NULL);
  verify_block (f, 2, 217, 217, NULL);
  verify_block (f, 3, 434, 66, NULL);
  /* Block 0 of the partition was never used: seq starts at 1. */
  read_block (f, 64, f->buffer);
  for (i = 0; i < VDO_BLOCK_SIZE; i++)
    ck_assert_uint_eq (f->buffer[i], 0);

  s = snapshot (f);
  model_counters (500, &lbu, &bmdb);
  ck_assert_uint_eq (s.tail, 4);
  ck_assert_uint_eq (s.logical_blocks_used, lbu);
  ck_assert_uint_eq (s.block_map_data_blocks, bmdb);
  ck_assert_uint_eq (s.stats.entries_started, 500);
  ck_assert_uint_eq (s.stats.entries_written, 500);
  ck_assert_uint_eq (s.stats.entries_committed, 500);
  ck_assert_uint_eq (s.stats.blocks_started, 3);
  ck_assert_uint_eq (s.stats.blocks_written,
                     check_writes_preflushed (f, 0));
  stop_fixture (f);
  free (r);
}
END_TEST

/* One burst of 1000 entries: the first goes out alone, the rest gather
 * while it is in flight and leave as one batch of full blocks, then the
 * partial tail block (vdo-journals.md 1.9). */
START_TEST (test_group_commit)
{
  struct fixture *f = start_fixture (64, 1);
  struct test_request *r = make_requests (f, 1000, 0);
  struct snapshot s;

  submit_batch (f, r, 1000);
  WAIT_FOR (f, f->finished == 1000);
  assert_no_error (f);
  ck_assert_uint_eq (f->succeeded, 1000);
  s = snapshot (f);
  ck_assert_uint_eq (s.stats.blocks_started, 5);
  ck_assert_uint_eq (s.stats.blocks_written, 6);
  ck_assert_uint_eq (s.stats.blocks_committed, 6);
  ck_assert_uint_eq (s.stats.entries_written, 1000);
  ck_assert_uint_eq (check_writes_preflushed (f, 0), 6);
  verify_block (f, 1, 0, 217, NULL);
  verify_block (f, 4, 651, 217, NULL);
  verify_block (f, 5, 868, 132, NULL);
  stop_fixture (f);
  free (r);
}
END_TEST

START_TEST (test_partial_block_rewritten)
{
  struct fixture *f = start_fixture (64, 7);
  struct test_request *r = make_requests (f, 40, 0);
  size_t mark;
  struct trace_io *t;
  size_t i;
  unsigned int writes = 0;

  submit_batch (f, r, 1);
  WAIT_FOR (f, f->finished == 1);
  verify_block (f, 7, 0, 1, NULL);
  submit_batch (f, r + 1, 2);
  WAIT_FOR (f, f->finished == 3);
  verify_block (f, 7, 0, 3, NULL);
  /* Into a second sector. */
  mark = trace_mark (f);
  submit_batch (f, r + 3, 37);
  WAIT_FOR (f, f->finished == 40);
  assert_no_error (f);
  verify_block (f, 7, 0, 40, NULL);
  ck_assert_uint_eq (r[39].request.recovery_point.sequence_number, 7);
  ck_assert_uint_eq (r[39].request.recovery_point.entry_count, 39);
  /* Every write went to the same block. */
  t = f->trace;
  pthread_mutex_lock (&t->lock);
  for (i = 0; i < t->count; i++)
    if (t->events[i].kind == TRACE_SUBMIT && t->events[i].op == VDO_IO_WRITE) {
      ck_assert_uint_eq (t->events[i].block, ORIGIN + 7);
      writes++;
    }
  pthread_mutex_unlock (&t->lock);
  ck_assert_uint_ge (writes, 3);
  ck_assert_uint_ge (count_events (f, mark, TRACE_SUBMIT, VDO_IO_WRITE), 1);
  check_writes_preflushed (f, 0);
  stop_fixture (f);
  free (r);
}
END_TEST

#define ORDER_PER_THREAD 1250

struct submitter {
  struct fixture *f;
  struct test_request *requests;
  unsigned int index;
};

static void
submit_from_journal_thread (struct vdo_completion *completion)
{
  struct test_request *r = container_of (completion, struct test_request,
                                         request.completion);

  /* The hop is the requester's business; then the real completion. */
  vdo_prepare_completion (completion, request_done, r->f->callback_queue,
                          NULL);
  vdo_recovery_journal_add_entry (r->f->journal, &r->request);
}

static void *
submitter_thread (void *arg)
{
  struct submitter *s = arg;
  unsigned int i;

  for (i = 0; i < ORDER_PER_THREAD; i++) {
    struct test_request *r = &s->requests[i];

    r->submitter = s->index;
    vdo_prepare_completion (&r->request.completion,
                            submit_from_journal_thread, s->f->journal_queue,
                            NULL);
    vdo_enqueue_completion (&r->request.completion);
  }
  return NULL;
}

START_TEST (test_order_across_threads)
{
  struct fixture *f = start_fixture (64, 1);
  struct submitter s[MAX_SUBMITTERS];
  pthread_t threads[MAX_SUBMITTERS];
  unsigned int k, total = MAX_SUBMITTERS * ORDER_PER_THREAD;
  struct test_request *r = make_requests (f, total, 0);
  struct snapshot snap;
  block_count_t lbu, bmdb;

  for (k = 0; k < MAX_SUBMITTERS; k++) {
    s[k].f = f;
    s[k].requests = r + k * ORDER_PER_THREAD;
    s[k].index = k;
    ck_assert_int_eq (pthread_create (&threads[k], NULL, submitter_thread,
                                      &s[k]), 0);
  }
  for (k = 0; k < MAX_SUBMITTERS; k++)
    pthread_join (threads[k], NULL);
  WAIT_FOR (f, f->finished == total);
  assert_no_error (f);
  ck_assert_uint_eq (f->succeeded, total);
  snap = snapshot (f);
  model_counters (total, &lbu, &bmdb);
  ck_assert_uint_eq (snap.logical_blocks_used, lbu);
  ck_assert_uint_eq (snap.block_map_data_blocks, bmdb);
  ck_assert_uint_eq (snap.tail, 1 + (total + 216) / 217);
  ck_assert_uint_eq (snap.stats.entries_committed, total);
  /* Far fewer writes than entries: commits are batched. */
  ck_assert_uint_lt (snap.stats.blocks_written, total / 4);
  check_writes_preflushed (f, 0);
  stop_fixture (f);
  free (r);
}
END_TEST

START_TEST (test_heads_follow_locks)
{
  struct fixture *f = start_fixture (64, 1);
  struct test_request *r = make_requests (f, 700, 0);
  struct recovery_block_header header;
  struct snapshot s;
  size_t mark;

  f->hold_locks = true;
  submit_batch (f, r, 651);
  WAIT_FOR (f, f->finished == 651);
  submit_batch (f, r + 651, 1);
  WAIT_FOR (f, f->finished == 652);
  assert_no_error (f);
  s = snapshot (f);
  ck_assert_uint_eq (s.tail, 5);
  ck_assert_uint_eq (s.block_map_head, 1);
  ck_assert_uint_eq (s.slab_journal_head, 1);
  verify_block (f, 4, 651, 1, &header);
  ck_assert_uint_eq (header.block_map_head, 1);
  ck_assert_uint_eq (header.slab_journal_head, 1);

  /* Block map pages of blocks 1 and 2 written: only that head moves, and
   * only through a flush; nothing is written to the journal meanwhile. */
  mark = trace_mark (f);
  release_held (f, VDO_ZONE_TYPE_LOGICAL, 2);
  s = wait_for_heads (f, mark, 3, 1);
  ck_assert_uint_eq (s.block_map_head, 3);
  ck_assert_uint_eq (s.slab_journal_head, 1);
  ck_assert_uint_ge (count_events (f, mark, TRACE_DONE, VDO_IO_FLUSH), 1);
  ck_assert_uint_eq (count_events (f, mark, TRACE_SUBMIT, VDO_IO_WRITE), 0);
  ck_assert_uint_ge (s.stats.heads_advanced, 1);

  /* The next write stamps the new heads. */
  submit_batch (f, r + 652, 1);
  WAIT_FOR (f, f->finished == 653);
  verify_block (f, 4, 651, 2, &header);
  ck_assert_uint_eq (header.block_map_head, 3);
  ck_assert_uint_eq (header.slab_journal_head, 1);

  /* Slab journals of blocks 1..3 summarized, pages of 3 written: both
   * heads reach block 4, the partial block that still holds itself. */
  mark = trace_mark (f);
  release_held (f, VDO_ZONE_TYPE_PHYSICAL, 3);
  release_held (f, VDO_ZONE_TYPE_LOGICAL, 3);
  s = wait_for_heads (f, mark, 4, 4);
  ck_assert_uint_eq (s.block_map_head, 4);
  ck_assert_uint_eq (s.slab_journal_head, 4);
  ck_assert_uint_ge (count_events (f, mark, TRACE_DONE, VDO_IO_FLUSH), 1);
  submit_batch (f, r + 653, 47);
  WAIT_FOR (f, f->finished == 700);
  assert_no_error (f);
  verify_block (f, 4, 651, 49, &header);
  ck_assert_uint_eq (header.block_map_head, 4);
  ck_assert_uint_eq (header.slab_journal_head, 4);
  /* Block 4 is partial and locked, so the heads stay there. */
  release_held (f, VDO_ZONE_TYPE_PHYSICAL, 4);
  release_held (f, VDO_ZONE_TYPE_LOGICAL, 4);
  s = snapshot (f);
  ck_assert_uint_eq (s.block_map_head, 4);
  stop_fixture (f);
  free (r);
}
END_TEST

START_TEST (test_failed_flush_keeps_heads)
{
  struct fixture *f = start_fixture (64, 1);
  struct test_request *r = make_requests (f, 300, 0);
  struct snapshot s;
  size_t mark;

  f->hold_locks = true;
  submit_batch (f, r, 300);
  WAIT_FOR (f, f->finished == 300);
  assert_no_error (f);
  mark = trace_mark (f);
  vdo_io_inject_error (f->trace->inner, VDO_IO_OP_BIT (VDO_IO_FLUSH), 0, EIO);
  release_held (f, VDO_ZONE_TYPE_LOGICAL, 2);
  release_held (f, VDO_ZONE_TYPE_PHYSICAL, 2);
  WAIT_FOR (f, f->read_only_error != 0);
  ck_assert_int_eq (f->read_only_error, EIO);
  s = snapshot (f);
  ck_assert_uint_eq (s.block_map_head, 1);
  ck_assert_uint_eq (s.slab_journal_head, 1);
  ck_assert_uint_eq (s.stats.heads_advanced, 0);
  /* A read-only save records the head. */
  ck_assert_uint_eq (s.recorded.journal_start, 1);
  ck_assert_uint_eq (count_events (f, mark, TRACE_SUBMIT, VDO_IO_WRITE), 0);
  ck_assert_int_eq (drain (f), VDO_READ_ONLY);
  vdo_io_inject_error (f->trace->inner, 0, 0, 0);
  stop_fixture (f);
  free (r);
}
END_TEST

START_TEST (test_full_journal_waits)
{
  /* 64 blocks, 11 reserved: 53 usable. */
  struct fixture *f = start_fixture (64, 1);
  unsigned int fit = 53 * 217, total = fit + 100;
  struct test_request *r = make_requests (f, total, 0);
  struct snapshot s;
  unsigned int i;

  ck_assert_uint_eq (vdo_recovery_journal_usable_length (64), 53);
  ck_assert_uint_eq (vdo_recovery_journal_usable_length (32768), 32757);
  f->hold_locks = true;
  f->check_durable = false;
  submit_batch (f, r, total);
  WAIT_FOR (f, f->finished == fit);
  s = snapshot (f);
  /* The rest are waiting, not lost or failed. */
  ck_assert_uint_eq (s.stats.entries_started, fit);
  ck_assert_uint_eq (s.tail, 54);
  ck_assert_uint_eq (s.stats.disk_full, 1);
  pthread_mutex_lock (&f->lock);
  ck_assert_uint_eq (f->finished, fit);
  pthread_mutex_unlock (&f->lock);
  for (i = fit; i < total; i++)
    ck_assert (!r[i].done);
  ck_assert_uint_gt (atomic_load (&f->slab_pressure_calls), 0);
  ck_assert_uint_gt (atomic_load (&f->block_map_pressure_calls), 0);

  release_held (f, VDO_ZONE_TYPE_LOGICAL, 1000);
  release_held (f, VDO_ZONE_TYPE_PHYSICAL, 1000);
  WAIT_FOR (f, f->finished == total);
  assert_no_error (f);
  ck_assert_uint_eq (f->succeeded, total);
  s = snapshot (f);
  ck_assert_uint_eq (s.tail, 55);
  ck_assert_uint_gt (s.block_map_head, 1);
  ck_assert_uint_gt (s.slab_journal_head, 1);
  /* Block 54 sits at index 54 and carries the new heads. */
  verify_block (f, 54, fit, 100, NULL);
  verify_block (f, 53, fit - 217, 217, NULL);
  stop_fixture (f);
  free (r);
}
END_TEST

/* The pressure hooks alone keep a small journal going through several
 * laps, and the check byte changes with each lap. */
START_TEST (test_pressure_and_wrap)
{
  struct fixture *f = start_fixture (64, 1);
  unsigned int total = 217 * 64 * 3, i;
  struct test_request *r = make_requests (f, total, 0);
  struct snapshot s;
  sequence_number_t last;

  f->hold_locks = true;
  f->auto_release = true;
  submit_batch (f, r, total);
  WAIT_FOR (f, f->finished == total);
  assert_no_error (f);
  ck_assert_uint_eq (f->succeeded, total);
  s = snapshot (f);
  last = s.tail - 1;
  ck_assert_uint_eq (last, 192);
  ck_assert_uint_gt (s.stats.slab_journal_commits_requested, 0);
  ck_assert_uint_gt (s.stats.block_map_writes_requested, 0);
  ck_assert_uint_gt (s.stats.heads_advanced, 0);
  ck_assert_uint_gt (s.block_map_head, 64);
  /* Every index holds the newest block of its lap. */
  for (i = 0; i < 64; i++) {
    sequence_number_t seq = last - (last - i) % 64;
    struct recovery_block_header header;

    verify_block (f, seq, (seq - 1) * 217, 217, &header);
    ck_assert_uint_eq (header.check_byte, 0x80 | (seq / 64));
  }
  check_writes_preflushed (f, 0);
  stop_fixture (f);
  free (r);
}
END_TEST

START_TEST (test_write_error_read_only)
{
  struct fixture *f = start_fixture (64, 1);
  struct test_request *r = make_requests (f, 311, 0);
  struct recovery_block_header header;
  struct snapshot s;
  size_t mark, failed_write;
  unsigned int i;

  submit_batch (f, r, 10);
  WAIT_FOR (f, f->finished == 10);
  ck_assert_uint_eq (f->succeeded, 10);

  vdo_io_inject_error (f->trace->inner, VDO_IO_OP_BIT (VDO_IO_WRITE), 0, EIO);
  mark = trace_mark (f);
  submit_batch (f, r + 10, 300);
  WAIT_FOR (f, f->finished == 310);
  assert_no_error (f);
  ck_assert_uint_eq (f->succeeded, 10);
  ck_assert_uint_eq (f->failed_read_only, 300);
  ck_assert_int_eq (f->read_only_error, EIO);
  for (i = 10; i < 310; i++)
    ck_assert_int_eq (r[i].result, VDO_READ_ONLY);

  /* Later entries fail at once; nothing more reaches the journal. */
  failed_write = wait_for_event (f, mark, TRACE_DONE, VDO_IO_WRITE);
  submit_batch (f, r + 310, 1);
  WAIT_FOR (f, f->finished == 311);
  ck_assert_int_eq (r[310].result, VDO_READ_ONLY);
  ck_assert_uint_eq (r[310].request.recovery_point.sequence_number, 0);
  ck_assert_uint_eq (count_events (f, failed_write, TRACE_SUBMIT,
                                   VDO_IO_WRITE), 0);
  ck_assert_uint_eq (count_events (f, mark, TRACE_SUBMIT, VDO_IO_WRITE), 1);
  ck_assert_int_eq (drain (f), VDO_READ_ONLY);
  vdo_io_inject_error (f->trace->inner, 0, 0, 0);
  verify_block (f, 1, 0, 10, &header);
  read_block (f, 2, f->buffer);
  for (i = 0; i < VDO_BLOCK_SIZE; i++)
    ck_assert_uint_eq (f->buffer[i], 0);
  s = snapshot (f);
  ck_assert_uint_eq (s.recorded.journal_start, 1);
  stop_fixture (f);
  free (r);
}
END_TEST

struct resume_call {
  bool saved;
  int result;
};

static void
call_resume (struct fixture *f, void *arg)
{
  struct resume_call *call = arg;

  call->result = vdo_resume_recovery_journal (f->journal, call->saved);
}

static int
resume (struct fixture *f, bool saved)
{
  struct resume_call call = { saved, -1 };

  run_on_journal (f, call_resume, &call);
  if (call.result == VDO_SUCCESS)
    f->drained = false;
  return call.result;
}

START_TEST (test_drain_record_resume)
{
  struct fixture *f = start_fixture (64, 1000);
  struct test_request *r = make_requests (f, 302, 0);
  struct test_request *refused = make_requests (f, 1, 0);
  struct vdo_completion parent;
  struct batch b = { r, 300, true, &parent };
  struct recovery_block_header header;
  struct snapshot s;
  block_count_t lbu, bmdb;
  sequence_number_t seq;

  /* Drain right behind a burst: it waits for all of it. */
  vdo_prepare_completion (&parent, drain_done, f->callback_queue, f);
  run_on_journal (f, add_batch, &b);
  WAIT_FOR (f, f->drain_done);
  f->drained = true;
  ck_assert_int_eq (f->drain_result, VDO_SUCCESS);
  ck_assert_uint_eq (f->finished_at_drain, 300);
  assert_no_error (f);
  ck_assert_uint_eq (f->succeeded, 300);
  verify_block (f, 1000, 0, 217, NULL);
  verify_block (f, 1001, 217, 83, NULL);

  s = snapshot (f);
  model_counters (300, &lbu, &bmdb);
  ck_assert_uint_eq (s.tail, 1002);
  ck_assert_uint_eq (s.recorded.journal_start, 1002);
  ck_assert_uint_eq (s.recorded.logical_blocks_used, lbu);
  ck_assert_uint_eq (s.recorded.block_map_data_blocks, bmdb);
  /* Above every block on disk, so the next load starts on a fresh one. */
  for (seq = 0; seq < 64; seq++) {
    read_block (f, seq, f->buffer);
    vdo_decode_recovery_block_header (f->buffer, &header);
    if (header.nonce == NONCE)
      ck_assert_uint_lt (header.sequence_number, s.recorded.journal_start);
  }

  /* Drained: refused, and a second drain too. */
  refused[0].submitter = 1;
  submit_batch (f, refused, 1);
  WAIT_FOR (f, f->finished == 301);
  ck_assert_int_eq (refused[0].result, UDS_BAD_STATE);
  ck_assert_uint_eq (refused[0].request.recovery_point.sequence_number, 0);
  ck_assert_int_eq (drain (f), UDS_BAD_STATE);

  /* A suspend without a save continues the partial block. */
  ck_assert_int_eq (resume (f, false), VDO_SUCCESS);
  ck_assert_int_eq (resume (f, false), UDS_BAD_STATE);
  submit_batch (f, r + 300, 1);
  WAIT_FOR (f, f->finished == 302);
  ck_assert_uint_eq (r[300].request.recovery_point.sequence_number, 1001);
  ck_assert_uint_eq (r[300].request.recovery_point.entry_count, 83);
  verify_block (f, 1001, 217, 84, NULL);

  /* After a save the next entry opens the recorded start, with both
   * heads there. */
  ck_assert_int_eq (drain (f), VDO_SUCCESS);
  s = snapshot (f);
  ck_assert_uint_eq (s.recorded.journal_start, 1002);
  ck_assert_int_eq (resume (f, true), VDO_SUCCESS);
  submit_batch (f, r + 301, 1);
  WAIT_FOR (f, f->finished == 303);
  assert_no_error (f);
  ck_assert_uint_eq (r[301].request.recovery_point.sequence_number, 1002);
  ck_assert_uint_eq (r[301].request.recovery_point.entry_count, 0);
  verify_block (f, 1002, 301, 1, &header);
  ck_assert_uint_eq (header.block_map_head, 1002);
  ck_assert_uint_eq (header.slab_journal_head, 1002);
  s = snapshot (f);
  /* Not drained: a save now would record the head. */
  ck_assert_uint_eq (s.recorded.journal_start, 1002);
  ck_assert_uint_eq (s.tail, 1003);
  stop_fixture (f);
  free (refused);
  free (r);
}
END_TEST

/* Near the 2^48 limit: the last blocks get check byte 0xff, and the block
 * that would take the tail to 2^48 puts the journal in read-only mode. */
START_TEST (test_sequence_limit)
{
  sequence_number_t start = VDO_RECOVERY_JOURNAL_SEQUENCE_LIMIT - 3;
  struct fixture *f = start_fixture (64, start);
  struct test_request *r = make_requests (f, 435, 0);
  struct recovery_block_header header;

  submit_batch (f, r, 434);
  WAIT_FOR (f, f->finished == 434);
  assert_no_error (f);
  ck_assert_uint_eq (f->succeeded, 434);
  verify_block (f, start, 0, 217, &header);
  ck_assert_uint_eq (header.check_byte, 0xff);
  verify_block (f, start + 1, 217, 217, &header);
  ck_assert_uint_eq (header.check_byte, 0xff);
  submit_batch (f, r + 434, 1);
  WAIT_FOR (f, f->finished == 435);
  ck_assert_int_eq (r[434].result, VDO_READ_ONLY);
  ck_assert_int_eq (f->read_only_error, VDO_OUT_OF_RANGE);
  ck_assert_uint_eq (snapshot (f).tail, start + 2);
  stop_fixture (f);
  free (r);
}
END_TEST

START_TEST (test_invalid_entry_and_config)
{
  struct fixture *f = start_fixture (64, 1);
  struct test_request *r = make_requests (f, 2, 0);
  struct recovery_journal_config config;
  struct recovery_journal *journal;

  r[0].request.entry.slot = VDO_BLOCK_MAP_ENTRIES_PER_PAGE;
  r[1].request.entry.operation = VDO_JOURNAL_BLOCK_MAP_REMAPPING;
  r[1].request.entry.unmapping.state = VDO_MAPPING_STATE_UNCOMPRESSED;
  r[1].request.entry.unmapping.pbn = 77;
  submit_batch (f, r, 2);
  WAIT_FOR (f, f->finished == 2);
  ck_assert_uint_eq (f->failed_other, 2);
  ck_assert_int_eq (r[0].result, UDS_INVALID_ARGUMENT);
  ck_assert_int_eq (r[1].result, UDS_INVALID_ARGUMENT);
  ck_assert_uint_eq (snapshot (f).tail, 1);

  config = base_config (f, 48, 1);
  ck_assert_int_eq (vdo_make_recovery_journal (&config, &journal),
                    VDO_BAD_CONFIGURATION);
  config = base_config (f, 64, 0);
  ck_assert_int_eq (vdo_make_recovery_journal (&config, &journal),
                    VDO_BAD_CONFIGURATION);
  config = base_config (f, 64, 1);
  config.block_map_maximum_age = 27;
  ck_assert_int_eq (vdo_make_recovery_journal (&config, &journal),
                    VDO_BAD_CONFIGURATION);
  config.block_map_maximum_age = 26;
  ck_assert_int_eq (vdo_make_recovery_journal (&config, &journal),
                    VDO_SUCCESS);
  vdo_free_recovery_journal (journal);
  config = base_config (f, 128, 1);
  ck_assert_int_eq (vdo_make_recovery_journal (&config, &journal),
                    VDO_REGION_OUT_OF_BOUNDS);
  ck_assert_ptr_null (journal);
  stop_fixture (f);
  free (r);
}
END_TEST

Suite *
recovery_journal_suite (void)
{
  Suite *s = suite_create ("recovery-journal");
  TCase *tc = tcase_create ("runtime");

  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_entries_durable_and_encoded);
  tcase_add_test (tc, test_group_commit);
  tcase_add_test (tc, test_partial_block_rewritten);
  tcase_add_test (tc, test_order_across_threads);
  tcase_add_test (tc, test_heads_follow_locks);
  tcase_add_test (tc, test_failed_flush_keeps_heads);
  tcase_add_test (tc, test_full_journal_waits);
  tcase_add_test (tc, test_pressure_and_wrap);
  tcase_add_test (tc, test_write_error_read_only);
  tcase_add_test (tc, test_drain_record_resume);
  tcase_add_test (tc, test_sequence_limit);
  tcase_add_test (tc, test_invalid_entry_and_config);
  suite_add_tcase (s, tc);
  return s;
}
