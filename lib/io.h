/* nbdkit-vdo: block I/O on the backing file or block device.
 *
 * Everything in libvdo reaches the device through a struct vdo_io.  The
 * operations come from a backend (io-file.c for real files and block
 * devices; a recording or fault-injecting one for tests) behind the
 * vtable at the end of this file, so callers never depend on which one
 * they hold.
 *
 * Units: a "block" is VDO_BLOCK_SIZE (4096) bytes, addressed by its
 * number from the start of the device.  Every read or write must lie
 * within vdo_io_block_count () blocks; past the end is an error (EIO for
 * a read, ENOSPC for a write), never zeros and never growth of the file.
 *
 * Buffers: memory handed to any read or write must be aligned to
 * VDO_IO_ALIGNMENT and cover whole blocks, as O_DIRECT requires; use
 * vdo_io_alloc_buffer.  A misaligned buffer fails with EINVAL in every
 * mode, so a mistake shows up even when O_DIRECT is not in use.
 *
 * Errors: functions return 0 or an errno value, and asynchronous
 * requests report the same through their callback.  The I/O layer logs
 * each failure once (naming the path, the blocks and the cause); callers
 * pass the code on without logging it again.
 *
 * Durability: a completed write may still sit in a volatile cache.  It
 * is durable once a flush submitted (or a vdo_io_flush called) after it
 * completed has itself completed, or, for a request with fua set, as
 * soon as it completes.  Flushes say nothing of writes still in flight.
 *
 * Threads: every function may be called from any thread, concurrently,
 * except vdo_io_open, vdo_io_start and vdo_io_close, which the owner calls
 * once each while no other thread uses the handle.
 */
#ifndef VDO_IO_H
#define VDO_IO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "constants.h"

#define VDO_IO_ALIGNMENT 4096

enum vdo_io_op {
  VDO_IO_READ,
  VDO_IO_WRITE,
  VDO_IO_FLUSH,
};

/* Masks of operations, for vdo_io_inject_error. */
#define VDO_IO_OP_BIT(op) (1u << (op))
#define VDO_IO_ALL_OPS \
  (VDO_IO_OP_BIT (VDO_IO_READ) | VDO_IO_OP_BIT (VDO_IO_WRITE) \
   | VDO_IO_OP_BIT (VDO_IO_FLUSH))

/* Flags for vdo_io_open. */
enum {
  VDO_IO_READ_ONLY = 1u << 0,   /* open O_RDONLY; writes fail with EROFS */
  VDO_IO_BUFFERED = 1u << 1,    /* do not try O_DIRECT */
};

struct vdo_io;

/* --- Opening and properties ------------------------------------------- */

/* Open a regular file or block device (io-file.c).  O_DIRECT is used
 * unless VDO_IO_BUFFERED is given or the filesystem refuses it, in which
 * case I/O goes through the page cache.  Returns 0 or an errno value
 * (ENOENT, EACCES, EISDIR, ENOTBLK for other file types, ...), logged. */
int vdo_io_open (const char *path, unsigned flags, struct vdo_io **io_ret);

/* Drain outstanding requests, stop the completion thread and release the
 * handle.  It does not flush: call vdo_io_flush first if that matters. */
void vdo_io_close (struct vdo_io *io);

const char *vdo_io_path (const struct vdo_io *io);
/* Size in bytes: BLKGETSIZE64 for a block device, st_size for a file. */
uint64_t vdo_io_size (const struct vdo_io *io);
/* Whole blocks on the device; a trailing partial block is unusable. */
block_count_t vdo_io_block_count (const struct vdo_io *io);
bool vdo_io_is_block_device (const struct vdo_io *io);
/* True when I/O bypasses the page cache (O_DIRECT). */
bool vdo_io_is_direct (const struct vdo_io *io);
bool vdo_io_is_read_only (const struct vdo_io *io);

/* --- Buffers ---------------------------------------------------------- */

/* Zeroed memory aligned to VDO_IO_ALIGNMENT, size rounded up to it;
 * NULL (logged) when out of memory.  Release with vdo_io_free_buffer. */
void *vdo_io_alloc_buffer (size_t size);
void vdo_io_free_buffer (void *buffer);

/* --- Synchronous I/O -------------------------------------------------- */

/* These work before vdo_io_start (and so before fork), and alongside
 * asynchronous requests, with no ordering between the two. */

int vdo_io_read_blocks (struct vdo_io *io, physical_block_number_t block,
                        block_count_t count, void *buffer);
int vdo_io_write_blocks (struct vdo_io *io, physical_block_number_t block,
                         block_count_t count, const void *buffer);
/* Make every write completed so far durable (fdatasync). */
int vdo_io_flush (struct vdo_io *io);
/* Write zeros over the range, in large chunks; never punches holes, so
 * the blocks are allocated just as vdoformat leaves them. */
int vdo_io_zero_blocks (struct vdo_io *io, physical_block_number_t block,
                        block_count_t count);

/* --- Asynchronous I/O ------------------------------------------------- */

struct vdo_io_request;

/* RESULT is 0 or an errno value; a short transfer is EIO.  The request
 * belongs to the caller again as soon as the callback starts, so the
 * callback may free or resubmit it.  Callbacks run on the completion
 * thread, except that a backend may write cached requests of a plug in
 * place, from vdo_io_unplug (vdo_io_plug).  They may submit new requests
 * but must not block for long, and must not call vdo_io_drain or
 * vdo_io_close. */
typedef void (*vdo_io_callback) (struct vdo_io_request *request, int result);

struct vdo_io_request {
  enum vdo_io_op op;
  /* On a write: complete only once the data is durable. */
  bool fua;
  /* User data, which may go through the page cache when the device's
   * data cache is on (vdo_io_enable_data_cache). */
  bool cached;
  /* Reads and writes: the first block and how many (1 to 262144, i.e.
   * up to 1 GiB); unused by a flush. */
  physical_block_number_t block;
  block_count_t count;
  /* The data: either one buffer of count blocks, or an iovec whose
   * entries are aligned, whole blocks and add up to count blocks.  Both
   * must stay valid until the callback. */
  void *buffer;
  const struct iovec *iov;
  int iovcnt;
  vdo_io_callback callback;
  void *context;                /* the caller's; untouched */

  /* The backend's, from submission until the callback. */
  union {
    max_align_t align;
    unsigned char bytes[128];
  } backend_private;
};

/* Start the completion thread, sized for QUEUE_DEPTH requests in the
 * kernel at once (0 for a default); more than that wait in a queue.
 * Call it once, after any fork: neither the thread nor the kernel's AIO
 * context survive one.  Returns 0, an errno value, or UDS_BAD_STATE if
 * already started. */
int vdo_io_start (struct vdo_io *io, unsigned queue_depth);

/* Submit requests; each one's callback runs exactly once, always on the
 * completion thread, even when the request is rejected up front.
 * Requests in flight together have no defined order among themselves.
 * A flush completes after every write that completed before the flush
 * was submitted is durable; it says nothing of writes still in flight.
 * Submitting before vdo_io_start is a bug: the callbacks then run at
 * once, on the caller's thread, with EINVAL. */
void vdo_io_submit (struct vdo_io *io, struct vdo_io_request *const *requests,
                    size_t count);
void vdo_io_submit_one (struct vdo_io *io, struct vdo_io_request *request);

/* Until vdo_io_unplug, this thread's submissions to IO are held and then
 * handed to the backend together, which may merge adjacent transfers
 * into one.  A thread running a batch of zone work plugs, so a batch of
 * data writes (which the allocator places side by side) costs one
 * system call, not one per block.  Plugging another device unplugs the
 * first.  The plugging thread must not wait for a held request.  Cached
 * writes (the data cache's page-cache writes, which the kernel's AIO
 * would make synchronously anyway) may be written in place, their
 * callbacks run by vdo_io_unplug: that spares the completion thread a
 * wakeup per batch. */
void vdo_io_plug (struct vdo_io *io);
void vdo_io_unplug (void);

/* Wait until no request is in flight and every callback has returned,
 * including those of requests that callbacks submit meanwhile. */
void vdo_io_drain (struct vdo_io *io);

/* --- Fault injection, for tests --------------------------------------- */

/* From now on the first AFTER operations whose op is in OP_MASK succeed
 * and every later one fails with ERROR (logged as injected), as though
 * the device had died.  Synchronous calls, each zeroing chunk and each
 * asynchronous request count as one operation; a FUA write counts as a
 * write.  OP_MASK 0 turns injection off. */
void vdo_io_inject_error (struct vdo_io *io, unsigned op_mask,
                          uint64_t after, int error);

/* The same, but only COUNT operations fail (0: all of them); then the
 * device works again, like a transient fault. */
void vdo_io_inject_errors (struct vdo_io *io, unsigned op_mask,
                           uint64_t after, uint64_t count, int error);

/* --- For backends ----------------------------------------------------- */

/* The generic layer (io.c) validates every request (range, alignment,
 * read-only, injected errors) before it reaches these, so a backend only
 * moves data.  Block ranges and buffers it receives are always valid. */
struct vdo_io_ops {
  const char *name;
  /* Synchronous transfers of whole blocks; return 0 or errno, logged. */
  int (*read) (struct vdo_io *io, physical_block_number_t block,
               block_count_t count, void *buffer);
  int (*write) (struct vdo_io *io, physical_block_number_t block,
                block_count_t count, const void *buffer);
  int (*flush) (struct vdo_io *io);
  /* Start completing requests (see vdo_io_start). */
  int (*start) (struct vdo_io *io, unsigned queue_depth);
  /* Carry out requests and call each callback on the completion thread. */
  void (*submit) (struct vdo_io *io, struct vdo_io_request *const *requests,
                  size_t count);
  /* Optional: submit for vdo_io_unplug, which may also carry out cached
   * writes in place, calling their callbacks before it returns. */
  void (*submit_unplugged) (struct vdo_io *io,
                            struct vdo_io_request *const *requests,
                            size_t count);
  /* Complete REQUEST with RESULT on the completion thread, without I/O. */
  void (*complete) (struct vdo_io *io, struct vdo_io_request *request,
                    int result);
  void (*drain) (struct vdo_io *io);
  /* Optional: see vdo_io_enable_data_cache. */
  int (*enable_data_cache) (struct vdo_io *io);
  /* Stop threads (nothing is in flight) and free everything, calling
   * vdo_io_release_base. */
  void (*destroy) (struct vdo_io *io);
};

/* Let requests marked cached go through the kernel's page cache, as
 * nbdkit's file plugin does, while metadata stays O_DIRECT.  Re-reads
 * then cost no device I/O and writes are absorbed until a flush;
 * durability is unchanged, since a flush (fdatasync) covers the whole
 * file whichever descriptor wrote it.  Returns 0, or ENOTSUP when the
 * backend has no such cache (everything is then uncached as before), or
 * an errno value, logged. */
int vdo_io_enable_data_cache (struct vdo_io *io);

/* The common part, embedded first in each backend's own structure.
 * Callers use the accessor functions instead. */
struct vdo_io {
  const struct vdo_io_ops *ops;
  char *path;
  uint64_t size;
  bool block_device;
  bool direct;
  bool read_only;
  bool started;                 /* set by vdo_io_start */

  pthread_mutex_t inject_lock;
  unsigned inject_mask;
  uint64_t inject_after;
  uint64_t inject_count;        /* failures left; 0: unlimited */
  int inject_error;
};

/* Fill in the common part; returns 0 or ENOMEM (logged). */
int vdo_io_init_base (struct vdo_io *io, const struct vdo_io_ops *ops,
                      const char *path, uint64_t size, bool block_device,
                      bool direct, bool read_only);
void vdo_io_release_base (struct vdo_io *io);

#endif /* VDO_IO_H */
