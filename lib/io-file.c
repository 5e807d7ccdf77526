/* nbdkit-vdo: the I/O backend for regular files and block devices.
 *
 * Synchronous calls use pread/pwrite/fdatasync.  Requests go to the
 * kernel through libaio; every iocb signals one eventfd, which the
 * completion thread polls, so the same wakeup also serves requests this
 * file completes itself (rejections, io_submit failures) and shutdown.
 * Requests beyond the kernel queue's depth wait in a list that whoever
 * next finds room (a submitter or the completion thread) drains.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libaio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io.h"
#include "logger.h"

#define DEFAULT_QUEUE_DEPTH 512
#define MAX_QUEUE_DEPTH 65536
/* Events reaped, and iocbs submitted, per system call. */
#define REAP_BATCH 64
#define SUBMIT_BATCH 64
/* After io_submit says EAGAIN with nothing in flight, no completion
 * will come to prompt a retry, so the completion thread polls. */
#define RETRY_MS 1
/* The kernel moves at most about 2 GiB per call; stay well below. */
#define MAX_TRANSFER (1u << 30)
/* Adjacent requests one iocb may carry, and its iovec entries. */
#define MERGE_REQUESTS 64
#define MERGE_IOVECS 256

/* Adjacent requests submitted together, carried by the first one's
 * iocb: one system call's work in the kernel instead of one each. */
struct merged_transfer {
  unsigned count;
  struct vdo_io_request *requests[MERGE_REQUESTS];
  struct iovec iov[MERGE_IOVECS];
};

/* What a request carries for this backend, in its backend_private. */
struct request_state {
  struct iocb iocb;
  struct vdo_io_request *next;  /* in the waiting or finished list */
  uint64_t expected;            /* bytes a full transfer moves */
  int result;                   /* for requests finished without the kernel */
  struct merged_transfer *merged;       /* when it carries others too */
};

_Static_assert (sizeof (struct request_state)
                <= sizeof (((struct vdo_io_request *) 0)->backend_private),
                "request_state must fit in vdo_io_request.backend_private");
_Static_assert (_Alignof (struct request_state) <= _Alignof (max_align_t),
                "request_state is over-aligned for backend_private");

struct request_list {
  struct vdo_io_request *head;
  struct vdo_io_request *tail;
};

struct file_io {
  struct vdo_io io;             /* first: the generic layer's view */
  int fd;
  int data_fd;                  /* cached requests: fd, or a buffered one */

  /* Set up by file_start. */
  io_context_t aio;
  int wake_fd;
  pthread_t thread;
  bool thread_running;
  unsigned depth;

  pthread_mutex_t lock;
  pthread_cond_t idle;          /* outstanding dropped to zero */
  unsigned in_kernel;           /* iocbs submitted and not yet reaped */
  uint64_t outstanding;         /* accepted; callback not yet returned */
  struct request_list waiting;  /* for room in the kernel queue */
  struct request_list finished; /* completed here; callbacks due */
  bool stopping;
};

static struct file_io *
file_of (struct vdo_io *io)
{
  return (struct file_io *) io;
}

static struct request_state *
state_of (struct vdo_io_request *request)
{
  return (struct request_state *) request->backend_private.bytes;
}

static const char *
op_name (enum vdo_io_op op)
{
  return op == VDO_IO_READ ? "read" : op == VDO_IO_WRITE ? "write" : "flush";
}

static void
list_append (struct request_list *list, struct vdo_io_request *request)
{
  state_of (request)->next = NULL;
  if (list->tail)
    state_of (list->tail)->next = request;
  else
    list->head = request;
  list->tail = request;
}

static struct vdo_io_request *
list_pop (struct request_list *list)
{
  struct vdo_io_request *request = list->head;

  if (request) {
    list->head = state_of (request)->next;
    if (!list->head)
      list->tail = NULL;
  }
  return request;
}

/* Puts REQUESTS back at the front, keeping their order. */
static void
list_push_front (struct request_list *list,
                 struct vdo_io_request *const *requests, size_t count)
{
  while (count > 0) {
    struct vdo_io_request *request = requests[--count];

    state_of (request)->next = list->head;
    list->head = request;
    if (!list->tail)
      list->tail = request;
  }
}

static void
wake_completion_thread (struct file_io *f)
{
  uint64_t one = 1;

  /* The counter cannot realistically overflow, so only EINTR matters. */
  while (write (f->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
    ;
}

/* Called with the lock held. */
static void
release_outstanding (struct file_io *f, uint64_t count)
{
  f->outstanding -= count;
  if (f->outstanding == 0)
    pthread_cond_broadcast (&f->idle);
}

/* --- Synchronous calls ------------------------------------------------ */

static int
transfer (struct file_io *f, enum vdo_io_op op, physical_block_number_t block,
          block_count_t count, void *buffer)
{
  uint64_t offset = block * VDO_BLOCK_SIZE;
  uint64_t remaining = count * VDO_BLOCK_SIZE;
  char *p = buffer;

  while (remaining > 0) {
    size_t want = remaining < MAX_TRANSFER ? remaining : MAX_TRANSFER;
    ssize_t n = op == VDO_IO_WRITE
      ? pwrite (f->fd, p, want, offset)
      : pread (f->fd, p, want, offset);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int error = n < 0 ? errno : EIO;

      vdo_log_error ("%s: %s of %" PRIu64 " blocks at block %" PRIu64
                     " failed at byte offset %" PRIu64 ": %s", f->io.path,
                     op_name (op), count, block, offset,
                     n < 0 ? strerror (error) : "unexpected end of device");
      return error;
    }
    p += n;
    offset += n;
    remaining -= n;
  }
  return 0;
}

static int
file_read (struct vdo_io *io, physical_block_number_t block,
           block_count_t count, void *buffer)
{
  return transfer (file_of (io), VDO_IO_READ, block, count, buffer);
}

static int
file_write (struct vdo_io *io, physical_block_number_t block,
            block_count_t count, const void *buffer)
{
  /* transfer only reads from the buffer when writing. */
  return transfer (file_of (io), VDO_IO_WRITE, block, count, (void *) buffer);
}

static int
file_flush (struct vdo_io *io)
{
  struct file_io *f = file_of (io);
  int r;

  while ((r = fdatasync (f->fd)) != 0 && errno == EINTR)
    ;
  if (r != 0) {
    r = errno;
    vdo_log_error ("%s: flush failed: %s", io->path, strerror (r));
  }
  return r;
}

/* --- Submission ------------------------------------------------------- */

static void
prepare_iocb (struct file_io *f, struct vdo_io_request *request)
{
  struct request_state *s = state_of (request);
  long long offset = (long long) (request->block * VDO_BLOCK_SIZE);
  size_t bytes = request->count * VDO_BLOCK_SIZE;

  int fd = request->cached ? f->data_fd : f->fd;

  s->merged = NULL;
  switch (request->op) {
  case VDO_IO_READ:
    if (request->iov)
      io_prep_preadv (&s->iocb, fd, request->iov, request->iovcnt, offset);
    else
      io_prep_pread (&s->iocb, fd, request->buffer, bytes, offset);
    s->expected = bytes;
    break;
  case VDO_IO_WRITE:
    if (request->iov)
      io_prep_pwritev (&s->iocb, fd, request->iov, request->iovcnt, offset);
    else
      io_prep_pwrite (&s->iocb, fd, request->buffer, bytes, offset);
    /* The kernel then syncs (or writes with FUA) before completing. */
    if (request->fua)
      s->iocb.aio_rw_flags = RWF_DSYNC;
    s->expected = bytes;
    break;
  case VDO_IO_FLUSH:
    /* Runs fdatasync in the kernel once submitted, so it covers every
     * write completed before then. */
    io_prep_fdsync (&s->iocb, f->fd);
    s->expected = 0;
    break;
  }
  io_set_eventfd (&s->iocb, f->wake_fd);
  s->iocb.data = request;
  s->next = NULL;
  s->result = 0;
}

/* Completes REQUEST with ERROR from the completion thread.  Called with
 * the lock held; the caller wakes the thread. */
static void
finish_locked (struct file_io *f, struct vdo_io_request *request, int error)
{
  state_of (request)->result = error;
  list_append (&f->finished, request);
}

/* Gives the kernel BATCH, which already counts in in_kernel.  Returns
 * false when the kernel had no room and the rest went back to wait. */
static bool
submit_to_kernel (struct file_io *f, struct vdo_io_request **batch,
                  struct iocb **iocbs, size_t count)
{
  size_t done = 0;

  while (done < count) {
    int r = io_submit (f->aio, count - done, iocbs + done);

    if (r > 0) {
      done += r;
      continue;
    }
    if (r == -EINTR)
      continue;
    if (r == -EAGAIN || r == 0) {
      pthread_mutex_lock (&f->lock);
      f->in_kernel -= count - done;
      list_push_front (&f->waiting, batch + done, count - done);
      pthread_mutex_unlock (&f->lock);
      wake_completion_thread (f);
      return false;
    }
    /* The first remaining iocb was refused; the rest may still go. */
    vdo_log_error ("%s: cannot submit %s of %" PRIu64 " blocks at block %"
                   PRIu64 ": %s", f->io.path, op_name (batch[done]->op),
                   batch[done]->count, batch[done]->block, strerror (-r));
    pthread_mutex_lock (&f->lock);
    f->in_kernel--;
    finish_locked (f, batch[done], -r);
    pthread_mutex_unlock (&f->lock);
    wake_completion_thread (f);
    done++;
  }
  return true;
}

/* Moves waiting requests into the kernel while it has room. */
static void
submit_waiting (struct file_io *f)
{
  struct vdo_io_request *batch[SUBMIT_BATCH];
  struct iocb *iocbs[SUBMIT_BATCH];

  for (;;) {
    size_t count = 0;

    pthread_mutex_lock (&f->lock);
    while (count < SUBMIT_BATCH && f->in_kernel < f->depth
           && f->waiting.head) {
      batch[count] = list_pop (&f->waiting);
      iocbs[count] = &state_of (batch[count])->iocb;
      count++;
      f->in_kernel++;
    }
    pthread_mutex_unlock (&f->lock);
    if (count == 0 || !submit_to_kernel (f, batch, iocbs, count))
      return;
  }
}

static int
iovec_count (const struct vdo_io_request *request)
{
  return request->iov ? request->iovcnt : 1;
}

/* Can NEXT continue the transfer that ends with PREV?  FUA requests
 * stay alone, as each must complete only once durable. */
static bool
can_merge (const struct vdo_io_request *prev, const struct vdo_io_request *next)
{
  return next->op == prev->op && next->op != VDO_IO_FLUSH
         && next->cached == prev->cached && !prev->fua && !next->fua
         && prev->block + prev->count == next->block;
}

/* How many of REQUESTS, from the first, one iocb can carry. */
static size_t
mergeable_run (struct vdo_io_request *const *requests, size_t count)
{
  uint64_t bytes = requests[0]->count * VDO_BLOCK_SIZE;
  int iovcnt = iovec_count (requests[0]);
  size_t n = 1;

  while (n < count && n < MERGE_REQUESTS
         && can_merge (requests[n - 1], requests[n])
         && iovcnt + iovec_count (requests[n]) <= MERGE_IOVECS
         && bytes + requests[n]->count * VDO_BLOCK_SIZE <= MAX_TRANSFER) {
    bytes += requests[n]->count * VDO_BLOCK_SIZE;
    iovcnt += iovec_count (requests[n]);
    n++;
  }
  return n;
}

/* Gather the buffers of a mergeable run into IOV (MERGE_IOVECS long);
 * returns the entries used and sets *BYTES to the run's size. */
static int
gather_run (struct vdo_io_request *const *requests, size_t count,
            struct iovec *iov, uint64_t *bytes)
{
  int iovcnt = 0;
  size_t i;

  *bytes = 0;
  for (i = 0; i < count; i++) {
    const struct vdo_io_request *r = requests[i];

    if (r->iov) {
      memcpy (iov + iovcnt, r->iov, r->iovcnt * sizeof *r->iov);
      iovcnt += r->iovcnt;
    }
    else
      iov[iovcnt++] = (struct iovec) { r->buffer, r->count * VDO_BLOCK_SIZE };
    *bytes += r->count * VDO_BLOCK_SIZE;
  }
  return iovcnt;
}

/* Prepare the first of REQUESTS (COUNT > 1, a mergeable run) to carry
 * them all.  False, with nothing changed, when out of memory. */
static bool
prepare_merged_iocb (struct file_io *f, struct vdo_io_request *const *requests,
                     size_t count)
{
  struct merged_transfer *m = malloc (sizeof *m);
  struct vdo_io_request *first = requests[0];
  struct request_state *s = state_of (first);
  long long offset = (long long) (first->block * VDO_BLOCK_SIZE);
  int fd = first->cached ? f->data_fd : f->fd;
  uint64_t bytes;
  int iovcnt;

  if (m == NULL)
    return false;
  m->count = count;
  memcpy (m->requests, requests, count * sizeof *requests);
  iovcnt = gather_run (requests, count, m->iov, &bytes);
  if (first->op == VDO_IO_READ)
    io_prep_preadv (&s->iocb, fd, m->iov, iovcnt, offset);
  else
    io_prep_pwritev (&s->iocb, fd, m->iov, iovcnt, offset);
  io_set_eventfd (&s->iocb, f->wake_fd);
  s->iocb.data = first;
  s->next = NULL;
  s->result = 0;
  s->expected = bytes;
  s->merged = m;
  return true;
}

/* Run the callbacks of REQUEST and of any it carried, with RESULT.
 * Returns how many ran. */
static uint64_t
run_callbacks (struct vdo_io_request *request, int result)
{
  struct merged_transfer *m = state_of (request)->merged;
  uint64_t count;
  unsigned i;

  if (m == NULL) {
    request->callback (request, result);
    return 1;
  }
  /* Each callback may reuse its request, the first one's state too. */
  state_of (request)->merged = NULL;
  for (i = 0; i < m->count; i++)
    m->requests[i]->callback (m->requests[i], result);
  count = m->count;
  free (m);
  return count;
}

static void
file_submit (struct vdo_io *io, struct vdo_io_request *const *requests,
             size_t count)
{
  struct file_io *f = file_of (io);
  struct vdo_io_request *carriers[count];
  size_t i, n, carried = 0;

  for (i = 0; i < count; i += n) {
    n = mergeable_run (requests + i, count - i);
    if (n > 1 && prepare_merged_iocb (f, requests + i, n)) {
      carriers[carried++] = requests[i];
      continue;
    }
    n = 1;
    prepare_iocb (f, requests[i]);
    carriers[carried++] = requests[i];
  }
  /* Queue behind earlier waiters, so none of them starves. */
  pthread_mutex_lock (&f->lock);
  f->outstanding += count;
  for (i = 0; i < carried; i++)
    list_append (&f->waiting, carriers[i]);
  pthread_mutex_unlock (&f->lock);
  submit_waiting (f);
}

/* Cached data goes through the page cache on its own descriptor, where
 * the kernel's AIO would copy it synchronously inside io_submit. */
static bool
goes_in_place (const struct file_io *f, const struct vdo_io_request *request)
{
  return request->cached && request->op != VDO_IO_FLUSH && !request->fua
         && (f->data_fd != f->fd || !f->io.direct);
}

/* Move a run of adjacent cached requests with one preadv2 or pwritev
 * and run their callbacks here.  A read that would wait for the device
 * (RWF_NOWAIT) is not done: false, and the caller gives it to the
 * kernel's AIO instead, so the zone thread never waits for a disk. */
static bool
transfer_run_in_place (struct file_io *f,
                       struct vdo_io_request *const *requests, size_t count)
{
  struct iovec iov[MERGE_IOVECS];
  bool read = requests[0]->op == VDO_IO_READ;
  off_t offset = (off_t) (requests[0]->block * VDO_BLOCK_SIZE);
  uint64_t bytes;
  int iovcnt = gather_run (requests, count, iov, &bytes), result = 0;
  ssize_t n;
  size_t i;

  /* Counted in flight like the kernel's, so vdo_io_drain waits for it. */
  pthread_mutex_lock (&f->lock);
  f->outstanding += count;
  pthread_mutex_unlock (&f->lock);
  do
    n = read ? preadv2 (f->data_fd, iov, iovcnt, offset, RWF_NOWAIT)
             : pwritev (f->data_fd, iov, iovcnt, offset);
  while (n < 0 && errno == EINTR);
  /* Not all in the page cache (or no RWF_NOWAIT here): the kernel's
   * AIO reads it, short reads and errors included. */
  if (read && (n < 0 || (uint64_t) n != bytes)) {
    pthread_mutex_lock (&f->lock);
    release_outstanding (f, count);
    pthread_mutex_unlock (&f->lock);
    return false;
  }
  if (n < 0 || (uint64_t) n != bytes) {
    result = n < 0 ? errno : EIO;
    vdo_log_error ("%s: write of %" PRIu64 " blocks at block %" PRIu64
                   " failed: %s", f->io.path, bytes / VDO_BLOCK_SIZE,
                   requests[0]->block,
                   n < 0 ? strerror (result) : "short write");
  }
  for (i = 0; i < count; i++)
    requests[i]->callback (requests[i], result);
  pthread_mutex_lock (&f->lock);
  release_outstanding (f, count);
  pthread_mutex_unlock (&f->lock);
  return true;
}

/* From vdo_io_unplug: cached data in place, the rest to the kernel. */
static void
file_submit_unplugged (struct vdo_io *io,
                       struct vdo_io_request *const *requests, size_t count)
{
  struct file_io *f = file_of (io);
  struct vdo_io_request *to_kernel[count];
  size_t i, k, n, queued = 0;

  for (i = 0; i < count; i += n) {
    n = 1;
    if (!goes_in_place (f, requests[i])) {
      to_kernel[queued++] = requests[i];
      continue;
    }
    while (i + n < count && goes_in_place (f, requests[i + n]))
      n++;
    n = mergeable_run (requests + i, n);
    if (!transfer_run_in_place (f, requests + i, n))
      for (k = 0; k < n; k++)
        to_kernel[queued++] = requests[i + k];
  }
  if (queued > 0)
    file_submit (io, to_kernel, queued);
}

static void
file_complete (struct vdo_io *io, struct vdo_io_request *request, int result)
{
  struct file_io *f = file_of (io);

  state_of (request)->merged = NULL;
  pthread_mutex_lock (&f->lock);
  f->outstanding++;
  finish_locked (f, request, result);
  pthread_mutex_unlock (&f->lock);
  wake_completion_thread (f);
}

/* --- Completion ------------------------------------------------------- */

/* Returns how many requests completed. */
static uint64_t
complete_event (struct file_io *f, const struct io_event *event)
{
  struct vdo_io_request *request = event->data;
  struct request_state *s = state_of (request);
  long res = (long) event->res;
  int result = 0;

  if (res < 0) {
    result = (int) -res;
    if (request->op == VDO_IO_FLUSH)
      vdo_log_error ("%s: flush failed: %s", f->io.path, strerror (result));
    else
      vdo_log_error ("%s: %s of %" PRIu64 " blocks at block %" PRIu64
                     " failed: %s", f->io.path, op_name (request->op),
                     s->expected / VDO_BLOCK_SIZE, request->block,
                     strerror (result));
  }
  else if ((uint64_t) res != s->expected) {
    result = EIO;
    vdo_log_error ("%s: short %s at block %" PRIu64 ": %ld of %" PRIu64
                   " bytes", f->io.path, op_name (request->op),
                   request->block, res, s->expected);
  }
  return run_callbacks (request, result);
}

static void
reap_kernel_events (struct file_io *f)
{
  struct io_event events[REAP_BATCH];
  struct timespec no_wait = { 0, 0 };
  uint64_t completed;
  int count, i;

  for (;;) {
    count = io_getevents (f->aio, 0, REAP_BATCH, events, &no_wait);
    if (count == -EINTR)
      continue;
    if (count < 0) {
      vdo_log_error ("%s: io_getevents failed: %s", f->io.path,
                     strerror (-count));
      return;
    }
    if (count == 0)
      return;

    pthread_mutex_lock (&f->lock);
    f->in_kernel -= count;
    pthread_mutex_unlock (&f->lock);
    /* Refill the kernel queue before running callbacks, so the device
     * stays busy while they do. */
    submit_waiting (f);
    completed = 0;
    for (i = 0; i < count; i++)
      completed += complete_event (f, &events[i]);
    pthread_mutex_lock (&f->lock);
    release_outstanding (f, completed);
    pthread_mutex_unlock (&f->lock);
    /* A full batch may have left more behind. */
    if (count < REAP_BATCH)
      return;
  }
}

static void
run_finished (struct file_io *f)
{
  struct vdo_io_request *request, *next;
  struct request_list list;
  uint64_t count = 0;

  pthread_mutex_lock (&f->lock);
  list = f->finished;
  f->finished.head = f->finished.tail = NULL;
  pthread_mutex_unlock (&f->lock);

  for (request = list.head; request; request = next) {
    /* The callback may reuse the request, state and all. */
    next = state_of (request)->next;
    count += run_callbacks (request, state_of (request)->result);
  }
  if (count > 0) {
    pthread_mutex_lock (&f->lock);
    release_outstanding (f, count);
    pthread_mutex_unlock (&f->lock);
  }
}

static void
wait_for_work (struct file_io *f)
{
  struct pollfd pfd = { .fd = f->wake_fd, .events = POLLIN };
  uint64_t counter;
  int timeout;

  pthread_mutex_lock (&f->lock);
  timeout = f->waiting.head && f->in_kernel == 0 ? RETRY_MS : -1;
  pthread_mutex_unlock (&f->lock);
  if (poll (&pfd, 1, timeout) < 0 && errno != EINTR)
    vdo_log_error ("%s: poll on the completion eventfd failed: %s",
                   f->io.path, strerror (errno));
  /* Reset the counter; what it announced is picked up after this, so
   * no wakeup is lost.  EAGAIN just means the poll timed out. */
  if (read (f->wake_fd, &counter, sizeof counter) < 0
      && errno != EAGAIN && errno != EINTR)
    vdo_log_error ("%s: reading the completion eventfd failed: %s",
                   f->io.path, strerror (errno));
}

static void *
completion_thread (void *arg)
{
  struct file_io *f = arg;
  bool stop;

  do {
    wait_for_work (f);
    reap_kernel_events (f);
    run_finished (f);
    submit_waiting (f);
    pthread_mutex_lock (&f->lock);
    stop = f->stopping && f->outstanding == 0;
    pthread_mutex_unlock (&f->lock);
  } while (!stop);
  return NULL;
}

static int
file_start (struct vdo_io *io, unsigned queue_depth)
{
  struct file_io *f = file_of (io);
  sigset_t all, old;
  int r;

  if (queue_depth == 0)
    queue_depth = DEFAULT_QUEUE_DEPTH;
  if (queue_depth > MAX_QUEUE_DEPTH)
    queue_depth = MAX_QUEUE_DEPTH;

  memset (&f->aio, 0, sizeof f->aio);
  r = io_setup (queue_depth, &f->aio);
  if (r < 0) {
    vdo_log_error ("%s: io_setup for %u requests failed: %s%s", io->path,
                   queue_depth, strerror (-r),
                   r == -EAGAIN ? " (is fs.aio-max-nr too low?)" : "");
    f->aio = NULL;
    return -r;
  }
  f->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (f->wake_fd < 0) {
    r = errno;
    vdo_log_error ("%s: eventfd failed: %s", io->path, strerror (r));
    goto fail;
  }
  f->depth = queue_depth;

  /* Signals belong to the embedding program's own threads. */
  sigfillset (&all);
  pthread_sigmask (SIG_BLOCK, &all, &old);
  r = pthread_create (&f->thread, NULL, completion_thread, f);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (r != 0) {
    vdo_log_error ("%s: cannot start the I/O completion thread: %s",
                   io->path, strerror (r));
    goto fail;
  }
  pthread_setname_np (f->thread, "vdo-io-done");
  f->thread_running = true;
  return 0;

 fail:
  if (f->wake_fd >= 0)
    close (f->wake_fd);
  f->wake_fd = -1;
  io_destroy (f->aio);
  f->aio = NULL;
  return r;
}

static void
file_drain (struct vdo_io *io)
{
  struct file_io *f = file_of (io);

  if (f->thread_running && pthread_equal (pthread_self (), f->thread)) {
    vdo_log_error ("%s: vdo_io_drain called from an I/O callback; "
                   "it would wait for itself", io->path);
    return;
  }
  pthread_mutex_lock (&f->lock);
  while (f->outstanding > 0)
    pthread_cond_wait (&f->idle, &f->lock);
  pthread_mutex_unlock (&f->lock);
}

static void
file_destroy (struct vdo_io *io)
{
  struct file_io *f = file_of (io);

  if (f->thread_running) {
    pthread_mutex_lock (&f->lock);
    f->stopping = true;
    pthread_mutex_unlock (&f->lock);
    wake_completion_thread (f);
    pthread_join (f->thread, NULL);
  }
  if (f->aio)
    io_destroy (f->aio);
  if (f->wake_fd >= 0)
    close (f->wake_fd);
  if (f->data_fd != f->fd)
    close (f->data_fd);
  if (close (f->fd) != 0)
    vdo_log_warning ("%s: close failed: %s", io->path, strerror (errno));
  pthread_cond_destroy (&f->idle);
  pthread_mutex_destroy (&f->lock);
  vdo_io_release_base (io);
  free (f);
}

static int
file_enable_data_cache (struct vdo_io *io)
{
  struct file_io *f = file_of (io);
  int fd;

  if (!io->direct || f->data_fd != f->fd)
    return 0;                   /* everything is cached already */
  fd = open (io->path, io->read_only ? O_RDONLY : O_RDWR);
  if (fd < 0) {
    int r = errno;

    vdo_log_error ("cannot open %s for cached data: %s", io->path,
                   strerror (r));
    return r;
  }
  f->data_fd = fd;
  return 0;
}

static const struct vdo_io_ops file_ops = {
  .name = "file",
  .read = file_read,
  .write = file_write,
  .flush = file_flush,
  .start = file_start,
  .submit = file_submit,
  .submit_unplugged = file_submit_unplugged,
  .complete = file_complete,
  .drain = file_drain,
  .enable_data_cache = file_enable_data_cache,
  .destroy = file_destroy,
};

/* --- Opening ---------------------------------------------------------- */

static int
check_file_type (const char *path, const struct stat *st)
{
  if (S_ISREG (st->st_mode) || S_ISBLK (st->st_mode))
    return 0;
  if (S_ISDIR (st->st_mode)) {
    vdo_log_error ("cannot open %s: %s", path, strerror (EISDIR));
    return EISDIR;
  }
  vdo_log_error ("cannot open %s: neither a regular file nor a block device",
                 path);
  return ENOTBLK;
}

static int
device_size (const char *path, int fd, const struct stat *st, uint64_t *size)
{
  if (!S_ISBLK (st->st_mode)) {
    *size = st->st_size;
    return 0;
  }
  if (ioctl (fd, BLKGETSIZE64, size) != 0) {
    int error = errno;

    vdo_log_error ("%s: cannot get the block device size: %s", path,
                   strerror (error));
    return error;
  }
  return 0;
}

int
vdo_io_open (const char *path, unsigned flags, struct vdo_io **io_ret)
{
  bool read_only = (flags & VDO_IO_READ_ONLY) != 0;
  bool direct = (flags & VDO_IO_BUFFERED) == 0;
  int access = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  struct file_io *f;
  struct stat st;
  uint64_t size;
  int fd = -1, r;

  *io_ret = NULL;
  /* Look before opening: opening a FIFO would block. */
  if (stat (path, &st) != 0) {
    r = errno;
    vdo_log_error ("cannot open %s: %s", path, strerror (r));
    return r;
  }
  if ((r = check_file_type (path, &st)) != 0)
    return r;

  if (direct) {
    fd = open (path, access | O_DIRECT);
    /* EINVAL is how a filesystem without direct I/O (ramfs, some FUSE)
     * refuses it; buffered I/O still works there. */
    if (fd < 0 && errno == EINVAL) {
      vdo_log_debug ("%s: O_DIRECT not supported; using buffered I/O", path);
      direct = false;
    }
  }
  if (!direct)
    fd = open (path, access);
  if (fd < 0) {
    r = errno;
    vdo_log_error ("cannot open %s: %s", path, strerror (r));
    return r;
  }

  /* The path may have changed between stat and open. */
  if (fstat (fd, &st) != 0) {
    r = errno;
    vdo_log_error ("cannot stat %s: %s", path, strerror (r));
    goto fail;
  }
  if ((r = check_file_type (path, &st)) != 0
      || (r = device_size (path, fd, &st, &size)) != 0)
    goto fail;

  f = calloc (1, sizeof *f);
  if (!f) {
    r = ENOMEM;
    vdo_log_error ("%s: out of memory", path);
    goto fail;
  }
  r = vdo_io_init_base (&f->io, &file_ops, path, size, S_ISBLK (st.st_mode),
                        direct, read_only);
  if (r != 0) {
    free (f);
    goto fail;
  }
  f->fd = fd;
  f->data_fd = fd;
  f->wake_fd = -1;
  pthread_mutex_init (&f->lock, NULL);
  pthread_cond_init (&f->idle, NULL);
  vdo_log_debug ("%s: opened %s, %" PRIu64 " bytes, %s%s", path,
                 S_ISBLK (st.st_mode) ? "block device" : "file", size,
                 direct ? "O_DIRECT" : "buffered",
                 read_only ? ", read-only" : "");
  *io_ret = &f->io;
  return 0;

 fail:
  close (fd);
  return r;
}
