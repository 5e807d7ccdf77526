/* nbdkit-vdo: metadata and data I/O whose completion continues on a zone
 * thread.
 *
 * A vio pairs an I/O request with a completion: when the I/O finishes,
 * the completion's callback runs on the queue given at submission, with
 * the I/O result in completion.result.  A preflush write first flushes
 * the device, so everything that completed before it is durable before
 * the write lands (dm-vdo's REQ_PREFLUSH); FUA makes the write itself
 * durable before it completes.
 */
#ifndef VDO_VIO_H
#define VDO_VIO_H

#include <stdbool.h>

#include "constants.h"
#include "io.h"
#include "work-queue.h"

/* The backing device as libvdo's modules see it: PBNs are translated by
 * the geometry's bio offset (vdo-format.md 1.6). */
struct vdo_block_device {
  struct vdo_io *io;
  block_count_t bio_offset;
};

struct vdo_vio {
  struct vdo_completion completion;
  struct vdo_io_request request;
  const struct vdo_block_device *device;
  bool preflush;
};

/* Read or write COUNT blocks at PBN from or to BUFFER (aligned, from
 * vdo_io_alloc_buffer), then run CALLBACK on QUEUE.  PARENT is kept in
 * vio->completion.parent. */
void vdo_submit_vio (struct vdo_vio *vio, const struct vdo_block_device *device,
                     enum vdo_io_op op, physical_block_number_t pbn,
                     block_count_t count, void *buffer, bool preflush,
                     bool fua, vdo_action_fn callback,
                     struct vdo_work_queue *queue, void *parent);

/* One block of user data (a data_vio's read or write), which may go
 * through the device's data cache (vdo_io_enable_data_cache). */
void vdo_submit_data_vio (struct vdo_vio *vio,
                          const struct vdo_block_device *device,
                          enum vdo_io_op op, physical_block_number_t pbn,
                          void *buffer, vdo_action_fn callback,
                          struct vdo_work_queue *queue, void *parent);

/* Flush the device, then run CALLBACK on QUEUE. */
void vdo_submit_flush (struct vdo_vio *vio, const struct vdo_block_device *device,
                       vdo_action_fn callback, struct vdo_work_queue *queue,
                       void *parent);

/* The vio whose completion this is. */
static inline struct vdo_vio *
vdo_vio_from_completion (struct vdo_completion *completion)
{
  return (struct vdo_vio *) ((char *) completion
                             - __builtin_offsetof (struct vdo_vio, completion));
}

#endif /* VDO_VIO_H */
