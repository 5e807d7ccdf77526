/* nbdkit-vdo: the backend-independent half of block I/O: validation,
 * error injection, buffers and the synchronous helpers. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "logger.h"
#include "status.h"

/* Zeroing writes this many blocks per call: large enough to stream,
 * small enough to allocate without a second thought. */
#define ZERO_CHUNK_BLOCKS 256

/* The largest single request: 1 GiB, below what one system call moves. */
#define MAX_REQUEST_BLOCKS ((block_count_t) 1 << 18)

/* vdo_io_submit hands requests to the backend in groups of this size. */
#define SUBMIT_GROUP 64

static const char *
op_name (enum vdo_io_op op)
{
  switch (op) {
  case VDO_IO_READ: return "read";
  case VDO_IO_WRITE: return "write";
  case VDO_IO_FLUSH: return "flush";
  }
  return "unknown operation";
}

int
vdo_io_init_base (struct vdo_io *io, const struct vdo_io_ops *ops,
                  const char *path, uint64_t size, bool block_device,
                  bool direct, bool read_only)
{
  memset (io, 0, sizeof *io);
  io->path = strdup (path);
  if (!io->path) {
    vdo_log_error ("%s: out of memory", path);
    return ENOMEM;
  }
  io->ops = ops;
  io->size = size;
  io->block_device = block_device;
  io->direct = direct;
  io->read_only = read_only;
  pthread_mutex_init (&io->inject_lock, NULL);
  return 0;
}

void
vdo_io_release_base (struct vdo_io *io)
{
  pthread_mutex_destroy (&io->inject_lock);
  free (io->path);
  io->path = NULL;
}

const char *
vdo_io_path (const struct vdo_io *io)
{
  return io->path;
}

uint64_t
vdo_io_size (const struct vdo_io *io)
{
  return io->size;
}

block_count_t
vdo_io_block_count (const struct vdo_io *io)
{
  return io->size / VDO_BLOCK_SIZE;
}

bool
vdo_io_is_block_device (const struct vdo_io *io)
{
  return io->block_device;
}

bool
vdo_io_is_direct (const struct vdo_io *io)
{
  return io->direct;
}

bool
vdo_io_is_read_only (const struct vdo_io *io)
{
  return io->read_only;
}

void *
vdo_io_alloc_buffer (size_t size)
{
  size_t rounded;
  void *buffer;
  int r;

  if (size == 0)
    size = 1;
  if (size > SIZE_MAX - (VDO_IO_ALIGNMENT - 1)) {
    vdo_log_error ("cannot allocate an I/O buffer of %zu bytes", size);
    return NULL;
  }
  rounded = (size + VDO_IO_ALIGNMENT - 1) & ~(size_t) (VDO_IO_ALIGNMENT - 1);
  r = posix_memalign (&buffer, VDO_IO_ALIGNMENT, rounded);
  if (r != 0) {
    vdo_log_error ("cannot allocate an I/O buffer of %zu bytes: %s",
                   rounded, strerror (r));
    return NULL;
  }
  memset (buffer, 0, rounded);
  return buffer;
}

void
vdo_io_free_buffer (void *buffer)
{
  free (buffer);
}

static bool
is_aligned (const void *p)
{
  return ((uintptr_t) p & (VDO_IO_ALIGNMENT - 1)) == 0;
}

/* Past the end fails the way the kernel fails at the end of a block
 * device, so callers see the same codes from every backend. */
static int
check_range (const struct vdo_io *io, enum vdo_io_op op,
             physical_block_number_t block, block_count_t count)
{
  block_count_t blocks = vdo_io_block_count (io);

  if (count <= blocks && block <= blocks - count)
    return 0;
  vdo_log_error ("%s: %s of %" PRIu64 " blocks at block %" PRIu64
                 " is past the end of the device (%" PRIu64 " blocks)",
                 io->path, op_name (op), count, block, blocks);
  return op == VDO_IO_READ ? EIO : ENOSPC;
}

static int
check_writable (const struct vdo_io *io)
{
  if (!io->read_only)
    return 0;
  vdo_log_error ("%s: cannot write: the device was opened read-only",
                 io->path);
  return EROFS;
}

static int
check_buffer (const struct vdo_io *io, enum vdo_io_op op, const void *buffer)
{
  if (buffer && is_aligned (buffer))
    return 0;
  vdo_log_error ("%s: %s buffer %p is not aligned to %d bytes",
                 io->path, op_name (op), buffer, VDO_IO_ALIGNMENT);
  return EINVAL;
}

static int
check_iov (const struct vdo_io *io, const struct vdo_io_request *request)
{
  uint64_t total = 0;
  int i;

  if (request->iovcnt <= 0 || request->iovcnt > IOV_MAX) {
    vdo_log_error ("%s: %s with %d iovec entries (1 to %d allowed)",
                   io->path, op_name (request->op), request->iovcnt, IOV_MAX);
    return EINVAL;
  }
  for (i = 0; i < request->iovcnt; i++) {
    const struct iovec *v = &request->iov[i];

    if (!is_aligned (v->iov_base) || v->iov_len == 0
        || v->iov_len % VDO_BLOCK_SIZE != 0) {
      vdo_log_error ("%s: %s iovec entry %d (%p, %zu bytes) is not an "
                     "aligned run of whole blocks", io->path,
                     op_name (request->op), i, v->iov_base, v->iov_len);
      return EINVAL;
    }
    total += v->iov_len;
  }
  if (total != request->count * VDO_BLOCK_SIZE) {
    vdo_log_error ("%s: %s iovec holds %" PRIu64 " bytes for %" PRIu64
                   " blocks", io->path, op_name (request->op), total,
                   request->count);
    return EINVAL;
  }
  return 0;
}

static int
check_request (const struct vdo_io *io, const struct vdo_io_request *request)
{
  int r;

  if (request->op == VDO_IO_FLUSH)
    return 0;
  if (request->op != VDO_IO_READ && request->op != VDO_IO_WRITE) {
    vdo_log_error ("%s: invalid I/O operation %d", io->path,
                   (int) request->op);
    return EINVAL;
  }
  if (request->count == 0 || request->count > MAX_REQUEST_BLOCKS) {
    vdo_log_error ("%s: %s of %" PRIu64 " blocks at block %" PRIu64
                   ": a request moves 1 to %" PRIu64 " blocks", io->path,
                   op_name (request->op), request->count, request->block,
                   MAX_REQUEST_BLOCKS);
    return EINVAL;
  }
  if (request->op == VDO_IO_WRITE && (r = check_writable (io)) != 0)
    return r;
  if ((r = check_range (io, request->op, request->block, request->count)) != 0)
    return r;
  if (request->buffer && request->iov) {
    vdo_log_error ("%s: %s request has both a buffer and an iovec",
                   io->path, op_name (request->op));
    return EINVAL;
  }
  if (request->iov)
    return check_iov (io, request);
  return check_buffer (io, request->op, request->buffer);
}

/* Counts one operation against the armed injection, if any. */
static int
injected_error (struct vdo_io *io, enum vdo_io_op op)
{
  unsigned bit = VDO_IO_OP_BIT (op);
  int error = 0;

  /* Unarmed is the usual case; it costs one load. */
  if ((__atomic_load_n (&io->inject_mask, __ATOMIC_ACQUIRE) & bit) == 0)
    return 0;
  pthread_mutex_lock (&io->inject_lock);
  if (__atomic_load_n (&io->inject_mask, __ATOMIC_RELAXED) & bit) {
    if (io->inject_after > 0)
      io->inject_after--;
    else {
      error = io->inject_error;
      /* A limited burst of failures disarms itself when spent. */
      if (io->inject_count > 0 && --io->inject_count == 0)
        __atomic_store_n (&io->inject_mask, 0, __ATOMIC_RELEASE);
    }
  }
  pthread_mutex_unlock (&io->inject_lock);
  if (error)
    vdo_log_error ("%s: injected %s error: %s", io->path, op_name (op),
                   strerror (error));
  return error;
}

void
vdo_io_inject_error (struct vdo_io *io, unsigned op_mask, uint64_t after,
                     int error)
{
  vdo_io_inject_errors (io, op_mask, after, 0, error);
}

void
vdo_io_inject_errors (struct vdo_io *io, unsigned op_mask, uint64_t after,
                      uint64_t count, int error)
{
  pthread_mutex_lock (&io->inject_lock);
  io->inject_after = after;
  io->inject_count = count;
  io->inject_error = error != 0 ? error : EIO;
  __atomic_store_n (&io->inject_mask, op_mask & VDO_IO_ALL_OPS,
                    __ATOMIC_RELEASE);
  pthread_mutex_unlock (&io->inject_lock);
}

int
vdo_io_read_blocks (struct vdo_io *io, physical_block_number_t block,
                    block_count_t count, void *buffer)
{
  int r;

  if (count == 0)
    return 0;
  if ((r = check_range (io, VDO_IO_READ, block, count)) != 0
      || (r = check_buffer (io, VDO_IO_READ, buffer)) != 0
      || (r = injected_error (io, VDO_IO_READ)) != 0)
    return r;
  return io->ops->read (io, block, count, buffer);
}

int
vdo_io_write_blocks (struct vdo_io *io, physical_block_number_t block,
                     block_count_t count, const void *buffer)
{
  int r;

  if (count == 0)
    return 0;
  if ((r = check_writable (io)) != 0
      || (r = check_range (io, VDO_IO_WRITE, block, count)) != 0
      || (r = check_buffer (io, VDO_IO_WRITE, buffer)) != 0
      || (r = injected_error (io, VDO_IO_WRITE)) != 0)
    return r;
  return io->ops->write (io, block, count, buffer);
}

int
vdo_io_enable_data_cache (struct vdo_io *io)
{
  if (io->ops->enable_data_cache == NULL)
    return ENOTSUP;
  return io->ops->enable_data_cache (io);
}

int
vdo_io_flush (struct vdo_io *io)
{
  int r = injected_error (io, VDO_IO_FLUSH);

  return r != 0 ? r : io->ops->flush (io);
}

int
vdo_io_zero_blocks (struct vdo_io *io, physical_block_number_t block,
                    block_count_t count)
{
  block_count_t chunk = count < ZERO_CHUNK_BLOCKS ? count : ZERO_CHUNK_BLOCKS;
  void *zeros;
  int r;

  if (count == 0)
    return 0;
  if ((r = check_writable (io)) != 0
      || (r = check_range (io, VDO_IO_WRITE, block, count)) != 0)
    return r;
  zeros = vdo_io_alloc_buffer (chunk * VDO_BLOCK_SIZE);
  if (!zeros)
    return ENOMEM;
  while (count > 0) {
    block_count_t n = count < chunk ? count : chunk;

    if ((r = injected_error (io, VDO_IO_WRITE)) != 0
        || (r = io->ops->write (io, block, n, zeros)) != 0)
      break;
    block += n;
    count -= n;
  }
  vdo_io_free_buffer (zeros);
  return r;
}

int
vdo_io_start (struct vdo_io *io, unsigned queue_depth)
{
  int r;

  if (io->started) {
    vdo_log_error ("%s: asynchronous I/O is already started", io->path);
    return UDS_BAD_STATE;
  }
  r = io->ops->start (io, queue_depth);
  if (r == 0)
    __atomic_store_n (&io->started, true, __ATOMIC_RELEASE);
  return r;
}

/* Requests a thread holds while it has a device plugged. */
#define PLUG_CAPACITY 256

static __thread struct {
  struct vdo_io *io;
  size_t count;
  struct vdo_io_request *requests[PLUG_CAPACITY];
} plug;

/* Hand what the plug holds to the backend, in groups.  The plug is
 * emptied first: callbacks run in place may submit again. */
static void
submit_plugged (struct vdo_io *io)
{
  struct vdo_io_request *held[PLUG_CAPACITY];
  size_t count = plug.count, i, n;

  memcpy (held, plug.requests, count * sizeof held[0]);
  plug.count = 0;
  for (i = 0; i < count; i += n) {
    n = count - i < SUBMIT_GROUP ? count - i : SUBMIT_GROUP;
    if (io->ops->submit_unplugged != NULL)
      io->ops->submit_unplugged (io, held + i, n);
    else
      io->ops->submit (io, held + i, n);
  }
}

void
vdo_io_plug (struct vdo_io *io)
{
  if (plug.io != io)
    vdo_io_unplug ();
  plug.io = io;
}

void
vdo_io_unplug (void)
{
  struct vdo_io *io = plug.io;

  /* Unplugged before the submission: callbacks run in place submit
   * straight to the backend. */
  plug.io = NULL;
  if (io != NULL && plug.count > 0)
    submit_plugged (io);
}

void
vdo_io_submit (struct vdo_io *io, struct vdo_io_request *const *requests,
               size_t count)
{
  struct vdo_io_request *group[SUBMIT_GROUP];
  size_t grouped = 0, i;
  bool plugged = plug.io == io;

  if (!__atomic_load_n (&io->started, __ATOMIC_ACQUIRE)) {
    vdo_log_error ("%s: asynchronous I/O submitted before vdo_io_start",
                   io->path);
    for (i = 0; i < count; i++)
      requests[i]->callback (requests[i], EINVAL);
    return;
  }

  for (i = 0; i < count; i++) {
    struct vdo_io_request *request = requests[i];
    int r = check_request (io, request);

    if (r == 0)
      r = injected_error (io, request->op);
    if (r != 0) {
      io->ops->complete (io, request, r);
      continue;
    }
    if (plugged) {
      if (plug.count == PLUG_CAPACITY)
        submit_plugged (io);
      plug.requests[plug.count++] = request;
      continue;
    }
    group[grouped++] = request;
    if (grouped == SUBMIT_GROUP) {
      io->ops->submit (io, group, grouped);
      grouped = 0;
    }
  }
  if (grouped > 0)
    io->ops->submit (io, group, grouped);
}

void
vdo_io_submit_one (struct vdo_io *io, struct vdo_io_request *request)
{
  vdo_io_submit (io, &request, 1);
}

void
vdo_io_drain (struct vdo_io *io)
{
  if (__atomic_load_n (&io->started, __ATOMIC_ACQUIRE))
    io->ops->drain (io);
}

void
vdo_io_close (struct vdo_io *io)
{
  if (!io)
    return;
  vdo_io_drain (io);
  io->ops->destroy (io);
}
