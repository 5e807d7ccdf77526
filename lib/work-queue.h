/* nbdkit-vdo: zone threads and the completions that move between them.
 *
 * libvdo stands in for dm-vdo's zone threads with work queues: each queue
 * is one thread that runs completions in FIFO order.  A zone's state is
 * touched only by its own thread, so the data path needs no global lock;
 * a request moves to another zone by enqueueing its completion on that
 * zone's queue.  Enqueueing is safe from any thread, including I/O
 * completion threads.
 */
#ifndef VDO_WORK_QUEUE_H
#define VDO_WORK_QUEUE_H

#include <pthread.h>
#include <stdbool.h>

struct vdo_work_queue;
struct vdo_completion;

typedef void (*vdo_action_fn) (struct vdo_completion *completion);

/* A unit of work: a callback to run on a queue.  Embed it in the object
 * that moves (a request, a metadata write) and recover the container in
 * the callback with container_of-style arithmetic (vdo_completion_parent
 * if the parent pointer is used instead). */
struct vdo_completion {
  vdo_action_fn callback;
  struct vdo_work_queue *queue;   /* where callback runs */
  int result;                     /* VDO_SUCCESS or an error code */
  void *parent;                   /* the owner's, untouched here */
  struct vdo_completion *next;    /* queue link, owned by the queue */
};

/* Create a queue whose thread is started later (the nbdkit plugin must
 * start threads only after it forks).  Returns 0 or an errno value. */
int vdo_make_work_queue (const char *name, struct vdo_work_queue **queue);

/* Start the queue's thread.  Returns 0 or an errno value, logged. */
int vdo_start_work_queue (struct vdo_work_queue *queue);

/* Run everything queued so far and anything it enqueues, then stop and
 * join the thread; then free the queue.  Must not be called from the
 * queue's own thread.  Accepts NULL. */
void vdo_free_work_queue (struct vdo_work_queue *queue);

/* Let threads that are not queue threads run QUEUE's work in place when
 * they find it idle, instead of waking its thread.  Only for queues
 * whose callbacks never block and are not run while the enqueuer holds
 * a lock they take. */
void vdo_allow_queue_borrowing (struct vdo_work_queue *queue);

/* Before the start: run BEGIN before, and END after, each batch of
 * QUEUE's completions, on the thread that runs the batch (the queue's
 * own, or a borrower), e.g. to plug and unplug the device. */
void vdo_set_work_queue_batch_hooks (struct vdo_work_queue *queue,
                                     void (*begin) (void *context),
                                     void (*end) (void *context),
                                     void *context);

const char *vdo_work_queue_name (const struct vdo_work_queue *queue);

/* Whether the calling thread is QUEUE's thread, for assertions. */
bool vdo_on_work_queue (const struct vdo_work_queue *queue);

/* Prepare a completion to run CALLBACK on QUEUE. */
void vdo_prepare_completion (struct vdo_completion *completion,
                             vdo_action_fn callback,
                             struct vdo_work_queue *queue, void *parent);

/* Queue the completion's callback on its queue (any thread). */
void vdo_enqueue_completion (struct vdo_completion *completion);

/* Set the callback and queue, then enqueue: "continue on that thread". */
void vdo_launch_completion (struct vdo_completion *completion,
                            vdo_action_fn callback,
                            struct vdo_work_queue *queue);

/* Record RESULT (keeping an earlier error) and enqueue the callback. */
void vdo_finish_completion (struct vdo_completion *completion, int result);

/* Keep the first error: set RESULT unless an error is already recorded. */
void vdo_set_completion_result (struct vdo_completion *completion, int result);

/* A completion a non-queue thread (an nbdkit worker, the admin path)
 * waits on: prepare it, hand it to an asynchronous operation, wait. */
struct vdo_sync_completion {
  struct vdo_completion completion;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
};

/* Prepare SYNC so that finishing it (on QUEUE) wakes the waiter. */
void vdo_init_sync_completion (struct vdo_sync_completion *sync,
                               struct vdo_work_queue *queue, void *parent);
/* The callback that wakes the waiter, for operations that first run a
 * step of their own on the completion. */
void vdo_signal_sync_completion (struct vdo_completion *completion);
/* Wait until finished; return its result.  SYNC may be reused after
 * another vdo_init_sync_completion. */
int vdo_wait_sync_completion (struct vdo_sync_completion *sync);

#endif /* VDO_WORK_QUEUE_H */
