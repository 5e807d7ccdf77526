/* nbdkit-vdo: a thread that runs queued completions in order. */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "status.h"
#include "work-queue.h"

struct vdo_work_queue {
  char *name;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct vdo_completion *head, *tail;
  bool started;
  bool stopping;
  /* Some thread is running the queue's completions: its own thread, or
   * a thread that found it idle and ran it in place (below).  Only one
   * thread at a time, so the zone's state keeps a single owner. */
  bool running;
  bool allow_borrowing;
  pthread_t thread;
  void (*batch_begin) (void *context);
  void (*batch_end) (void *context);
  void *batch_context;
};

/* The queue the current thread runs, if any. */
static __thread const struct vdo_work_queue *current_queue;

/* How many completions a borrowing thread runs before it hands the rest
 * to the queue's own thread, so an nbdkit worker is not kept long. */
enum { BORROW_LIMIT = 64 };

int
vdo_make_work_queue (const char *name, struct vdo_work_queue **queue_ret)
{
  struct vdo_work_queue *q = calloc (1, sizeof *q);

  *queue_ret = NULL;
  if (q == NULL || (q->name = strdup (name)) == NULL) {
    free (q);
    vdo_log_error ("cannot allocate work queue %s", name);
    return ENOMEM;
  }
  pthread_mutex_init (&q->lock, NULL);
  pthread_cond_init (&q->wake, NULL);
  *queue_ret = q;
  return 0;
}

static struct vdo_completion *
dequeue_all (struct vdo_work_queue *q)
{
  struct vdo_completion *list = q->head;

  q->head = q->tail = NULL;
  return list;
}

/* With the lock held and q->running set: run batches until the queue is
 * empty or LIMIT completions have run.  Returns with the lock held. */
static void
run_batches (struct vdo_work_queue *q, unsigned int limit)
{
  unsigned int ran = 0;

  while (q->head != NULL && ran < limit) {
    /* Take the whole batch, so producers rarely meet the lock held. */
    struct vdo_completion *list = dequeue_all (q);

    pthread_mutex_unlock (&q->lock);
    if (q->batch_begin != NULL)
      q->batch_begin (q->batch_context);
    while (list != NULL) {
      struct vdo_completion *c = list;

      list = c->next;
      c->next = NULL;
      c->callback (c);
      ran++;
    }
    if (q->batch_end != NULL)
      q->batch_end (q->batch_context);
    pthread_mutex_lock (&q->lock);
  }
}

static void *
run_queue (void *arg)
{
  struct vdo_work_queue *q = arg;

  current_queue = q;
  pthread_mutex_lock (&q->lock);
  for (;;) {
    while ((q->head == NULL || q->running) && !(q->stopping && !q->running))
      pthread_cond_wait (&q->wake, &q->lock);
    if (q->head == NULL)
      break;
    q->running = true;
    run_batches (q, UINT32_MAX);
    q->running = false;
  }
  pthread_mutex_unlock (&q->lock);
  return NULL;
}

/* Context switches are what this data path pays most for, so a thread
 * that is not a zone thread (an nbdkit worker, an I/O completion thread)
 * and finds the queue idle runs the work itself instead of waking the
 * queue's thread.  Called with the lock held and C just queued; returns
 * with the lock released. */
static void
borrow_queue (struct vdo_work_queue *q)
{
  q->running = true;
  current_queue = q;
  run_batches (q, BORROW_LIMIT);
  current_queue = NULL;
  q->running = false;
  /* Leftovers, or a stop waiting for us, go to the queue's thread. */
  if (q->head != NULL || q->stopping)
    pthread_cond_signal (&q->wake);
  pthread_mutex_unlock (&q->lock);
}

int
vdo_start_work_queue (struct vdo_work_queue *q)
{
  char thread_name[16];
  int r = pthread_create (&q->thread, NULL, run_queue, q);

  if (r != 0) {
    vdo_log_error ("cannot start thread for %s: %s", q->name, strerror (r));
    return r;
  }
  /* Named after its queue (vdo-zones, vdo-hash0 ...), so top and perf
   * can tell the volume's threads apart. */
  snprintf (thread_name, sizeof thread_name, "%s", q->name);
  pthread_setname_np (q->thread, thread_name);
  q->started = true;
  return 0;
}

void
vdo_free_work_queue (struct vdo_work_queue *q)
{
  if (q == NULL)
    return;
  if (q->started) {
    pthread_mutex_lock (&q->lock);
    q->stopping = true;
    pthread_cond_signal (&q->wake);
    pthread_mutex_unlock (&q->lock);
    pthread_join (q->thread, NULL);
  }
  pthread_cond_destroy (&q->wake);
  pthread_mutex_destroy (&q->lock);
  free (q->name);
  free (q);
}

void
vdo_set_work_queue_batch_hooks (struct vdo_work_queue *q,
                                void (*begin) (void *context),
                                void (*end) (void *context), void *context)
{
  q->batch_begin = begin;
  q->batch_end = end;
  q->batch_context = context;
}

const char *
vdo_work_queue_name (const struct vdo_work_queue *q)
{
  return q->name;
}

bool
vdo_on_work_queue (const struct vdo_work_queue *q)
{
  return current_queue == q;
}

void
vdo_prepare_completion (struct vdo_completion *c, vdo_action_fn callback,
                        struct vdo_work_queue *queue, void *parent)
{
  c->callback = callback;
  c->queue = queue;
  c->result = VDO_SUCCESS;
  c->parent = parent;
  c->next = NULL;
}

void
vdo_enqueue_completion (struct vdo_completion *c)
{
  struct vdo_work_queue *q = c->queue;
  bool was_empty;

  c->next = NULL;
  pthread_mutex_lock (&q->lock);
  was_empty = q->head == NULL;
  if (q->tail)
    q->tail->next = c;
  else
    q->head = c;
  q->tail = c;
  if (q->running) {
    /* Whoever runs the queue takes this before it stops. */
    pthread_mutex_unlock (&q->lock);
    return;
  }
  if (q->allow_borrowing && q->started && !q->stopping
      && current_queue == NULL) {
    borrow_queue (q);
    return;
  }
  if (was_empty)
    pthread_cond_signal (&q->wake);
  pthread_mutex_unlock (&q->lock);
}

void
vdo_allow_queue_borrowing (struct vdo_work_queue *q)
{
  pthread_mutex_lock (&q->lock);
  q->allow_borrowing = true;
  pthread_mutex_unlock (&q->lock);
}

void
vdo_launch_completion (struct vdo_completion *c, vdo_action_fn callback,
                       struct vdo_work_queue *queue)
{
  c->callback = callback;
  c->queue = queue;
  vdo_enqueue_completion (c);
}

void
vdo_set_completion_result (struct vdo_completion *c, int result)
{
  if (c->result == VDO_SUCCESS)
    c->result = result;
}

void
vdo_finish_completion (struct vdo_completion *c, int result)
{
  vdo_set_completion_result (c, result);
  vdo_enqueue_completion (c);
}

void
vdo_init_sync_completion (struct vdo_sync_completion *sync,
                          struct vdo_work_queue *queue, void *parent)
{
  vdo_prepare_completion (&sync->completion, vdo_signal_sync_completion,
                          queue, parent);
  pthread_mutex_init (&sync->lock, NULL);
  pthread_cond_init (&sync->cond, NULL);
  sync->done = false;
}

void
vdo_signal_sync_completion (struct vdo_completion *completion)
{
  struct vdo_sync_completion *sync = (struct vdo_sync_completion *)
    ((char *) completion - __builtin_offsetof (struct vdo_sync_completion,
                                               completion));

  pthread_mutex_lock (&sync->lock);
  sync->done = true;
  pthread_cond_signal (&sync->cond);
  pthread_mutex_unlock (&sync->lock);
}

int
vdo_wait_sync_completion (struct vdo_sync_completion *sync)
{
  pthread_mutex_lock (&sync->lock);
  while (!sync->done)
    pthread_cond_wait (&sync->cond, &sync->lock);
  pthread_mutex_unlock (&sync->lock);
  pthread_cond_destroy (&sync->cond);
  pthread_mutex_destroy (&sync->lock);
  return sync->completion.result;
}
