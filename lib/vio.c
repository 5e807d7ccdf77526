/* nbdkit-vdo: I/O requests that continue on zone threads. */
#include <config.h>

#include "vio.h"

static struct vdo_vio *
vio_from_request (struct vdo_io_request *request)
{
  return request->context;
}

static void
vio_done (struct vdo_io_request *request, int result)
{
  struct vdo_vio *vio = vio_from_request (request);

  /* Runs on the I/O completion thread: hop back to the zone's queue. */
  vdo_finish_completion (&vio->completion, result);
}

static void
preflush_done (struct vdo_io_request *request, int result)
{
  struct vdo_vio *vio = vio_from_request (request);

  vio->preflush = false;
  if (result != 0) {
    vdo_finish_completion (&vio->completion, result);
    return;
  }
  /* The flush has made every earlier write durable; now the write. */
  request->op = VDO_IO_WRITE;
  request->callback = vio_done;
  vdo_io_submit_one (vio->device->io, request);
}

static void
submit_vio (struct vdo_vio *vio, const struct vdo_block_device *device,
            enum vdo_io_op op, physical_block_number_t pbn,
            block_count_t count, void *buffer, bool preflush, bool fua,
            vdo_action_fn callback, struct vdo_work_queue *queue,
            void *parent, bool cached)
{
  struct vdo_io_request *request = &vio->request;

  request->cached = cached;
  vdo_prepare_completion (&vio->completion, callback, queue, parent);
  vio->device = device;
  vio->preflush = preflush && op == VDO_IO_WRITE;
  request->block = pbn - device->bio_offset;
  request->count = count;
  request->buffer = buffer;
  request->iov = NULL;
  request->iovcnt = 0;
  request->fua = fua;
  request->context = vio;
  if (vio->preflush) {
    request->op = VDO_IO_FLUSH;
    request->callback = preflush_done;
  }
  else {
    request->op = op;
    request->callback = vio_done;
  }
  vdo_io_submit_one (device->io, request);
}

void
vdo_submit_vio (struct vdo_vio *vio, const struct vdo_block_device *device,
                enum vdo_io_op op, physical_block_number_t pbn,
                block_count_t count, void *buffer, bool preflush, bool fua,
                vdo_action_fn callback, struct vdo_work_queue *queue,
                void *parent)
{
  submit_vio (vio, device, op, pbn, count, buffer, preflush, fua, callback,
              queue, parent, false);
}

void
vdo_submit_data_vio (struct vdo_vio *vio, const struct vdo_block_device *device,
                     enum vdo_io_op op, physical_block_number_t pbn,
                     void *buffer, vdo_action_fn callback,
                     struct vdo_work_queue *queue, void *parent)
{
  submit_vio (vio, device, op, pbn, 1, buffer, false, false, callback, queue,
              parent, true);
}

void
vdo_submit_flush (struct vdo_vio *vio, const struct vdo_block_device *device,
                  vdo_action_fn callback, struct vdo_work_queue *queue,
                  void *parent)
{
  struct vdo_io_request *request = &vio->request;

  vdo_prepare_completion (&vio->completion, callback, queue, parent);
  vio->device = device;
  vio->preflush = false;
  request->cached = false;
  request->op = VDO_IO_FLUSH;
  request->block = 0;
  request->count = 0;
  request->buffer = NULL;
  request->iov = NULL;
  request->iovcnt = 0;
  request->fua = false;
  request->context = vio;
  request->callback = vio_done;
  vdo_io_submit_one (device->io, request);
}
