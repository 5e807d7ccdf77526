/* nbdkit-vdo: work queues, and threads borrowing an idle one. */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "status.h"
#include "unit-suites.h"
#include "work-queue.h"

struct probe {
  struct vdo_completion completion;
  struct vdo_work_queue *queue;
  pthread_t ran_on;
  bool on_queue;                /* vdo_on_work_queue inside the callback */
  int order;
  atomic_int *counter;
};

static void
record_run (struct vdo_completion *completion)
{
  struct probe *p = completion->parent;

  p->ran_on = pthread_self ();
  p->on_queue = vdo_on_work_queue (p->queue);
  p->order = atomic_fetch_add (p->counter, 1);
}

static void
init_probe (struct probe *p, struct vdo_work_queue *q, atomic_int *counter)
{
  p->queue = q;
  p->counter = counter;
  p->order = -1;
  vdo_prepare_completion (&p->completion, record_run, q, p);
}

/* Run a sync completion through the queue, so everything queued before
 * it has run. */
static void
barrier (struct vdo_work_queue *q)
{
  struct vdo_sync_completion sync;

  vdo_init_sync_completion (&sync, q, NULL);
  vdo_enqueue_completion (&sync.completion);
  ck_assert_int_eq (vdo_wait_sync_completion (&sync), VDO_SUCCESS);
}

START_TEST (test_queue_thread_runs_in_order)
{
  struct vdo_work_queue *q;
  struct probe probes[8];
  atomic_int counter = 0;
  int i;

  ck_assert_int_eq (vdo_make_work_queue ("test", &q), 0);
  ck_assert_int_eq (vdo_start_work_queue (q), 0);
  for (i = 0; i < 8; i++) {
    init_probe (&probes[i], q, &counter);
    vdo_enqueue_completion (&probes[i].completion);
  }
  barrier (q);
  for (i = 0; i < 8; i++) {
    ck_assert_int_eq (probes[i].order, i);
    ck_assert (probes[i].on_queue);
    /* Without borrowing, never on the enqueuing thread. */
    ck_assert (!pthread_equal (probes[i].ran_on, pthread_self ()));
  }
  vdo_free_work_queue (q);
}
END_TEST

START_TEST (test_idle_queue_is_borrowed)
{
  struct vdo_work_queue *q;
  struct probe p;
  atomic_int counter = 0;

  ck_assert_int_eq (vdo_make_work_queue ("test", &q), 0);
  ck_assert_int_eq (vdo_start_work_queue (q), 0);
  vdo_allow_queue_borrowing (q);
  barrier (q);                  /* idle from here */
  init_probe (&p, q, &counter);
  vdo_enqueue_completion (&p.completion);
  /* Ran before the enqueue returned, here, as the queue's owner. */
  ck_assert_int_eq (p.order, 0);
  ck_assert (pthread_equal (p.ran_on, pthread_self ()));
  ck_assert (p.on_queue);
  /* And this thread is no queue's thread afterwards. */
  ck_assert (!vdo_on_work_queue (q));
  vdo_free_work_queue (q);
}
END_TEST

/* A callback that queues more work on another borrowable queue: that
 * work must not run nested on the borrowing thread, but on its own. */
struct relay {
  struct vdo_completion completion;
  struct probe *next;
  pthread_t ran_on;
};

static void
relay_run (struct vdo_completion *completion)
{
  struct relay *r = completion->parent;

  r->ran_on = pthread_self ();
  vdo_enqueue_completion (&r->next->completion);
}

START_TEST (test_queue_threads_do_not_borrow)
{
  struct vdo_work_queue *a, *b;
  struct relay r;
  struct probe p;
  atomic_int counter = 0;

  ck_assert_int_eq (vdo_make_work_queue ("a", &a), 0);
  ck_assert_int_eq (vdo_make_work_queue ("b", &b), 0);
  ck_assert_int_eq (vdo_start_work_queue (a), 0);
  ck_assert_int_eq (vdo_start_work_queue (b), 0);
  vdo_allow_queue_borrowing (b);
  init_probe (&p, b, &counter);
  r.next = &p;
  vdo_prepare_completion (&r.completion, relay_run, a, &r);
  vdo_enqueue_completion (&r.completion);
  barrier (a);
  barrier (b);
  ck_assert_int_eq (p.order, 0);
  ck_assert (p.on_queue);
  /* Zone threads hand work on; they never run another zone's. */
  ck_assert (!pthread_equal (p.ran_on, r.ran_on));
  vdo_free_work_queue (a);
  vdo_free_work_queue (b);
}
END_TEST

/* Many threads borrowing and enqueueing at once: every completion runs
 * exactly once, and never two of the queue's at the same time. */
struct hammer {
  struct vdo_work_queue *q;
  atomic_int *running;
  atomic_int *ran;
  atomic_bool *overlap;
};

struct hammer_item {
  struct vdo_completion completion;
  struct hammer *h;
};

static void
hammer_run (struct vdo_completion *completion)
{
  struct hammer_item *item = completion->parent;
  struct hammer *h = item->h;

  if (atomic_fetch_add (h->running, 1) != 0)
    atomic_store (h->overlap, true);
  atomic_fetch_add (h->ran, 1);
  atomic_fetch_sub (h->running, 1);
}

enum { HAMMER_THREADS = 4, HAMMER_ITEMS = 20000 };

static void *
hammer_thread (void *arg)
{
  struct hammer *h = arg;
  struct hammer_item *items = calloc (HAMMER_ITEMS, sizeof *items);
  int i;

  ck_assert_ptr_nonnull (items);
  for (i = 0; i < HAMMER_ITEMS; i++) {
    items[i].h = h;
    vdo_prepare_completion (&items[i].completion, hammer_run, h->q, &items[i]);
    vdo_enqueue_completion (&items[i].completion);
  }
  barrier (h->q);
  free (items);
  return NULL;
}

START_TEST (test_borrowing_keeps_one_owner)
{
  atomic_int running = 0, ran = 0;
  atomic_bool overlap = false;
  struct hammer h = { NULL, &running, &ran, &overlap };
  pthread_t threads[HAMMER_THREADS];
  int i;

  ck_assert_int_eq (vdo_make_work_queue ("hammer", &h.q), 0);
  ck_assert_int_eq (vdo_start_work_queue (h.q), 0);
  vdo_allow_queue_borrowing (h.q);
  for (i = 0; i < HAMMER_THREADS; i++)
    ck_assert_int_eq (pthread_create (&threads[i], NULL, hammer_thread, &h), 0);
  for (i = 0; i < HAMMER_THREADS; i++)
    pthread_join (threads[i], NULL);
  ck_assert_int_eq (atomic_load (&ran), HAMMER_THREADS * HAMMER_ITEMS);
  ck_assert (!atomic_load (&overlap));
  vdo_free_work_queue (h.q);
}
END_TEST

Suite *
work_queue_suite (void)
{
  Suite *s = suite_create ("work-queue");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_queue_thread_runs_in_order);
  tcase_add_test (tc, test_idle_queue_is_borrowed);
  tcase_add_test (tc, test_queue_threads_do_not_borrow);
  tcase_add_test (tc, test_borrowing_keeps_one_owner);
  suite_add_tcase (s, tc);
  return s;
}
