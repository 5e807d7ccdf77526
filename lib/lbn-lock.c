/* nbdkit-vdo: per-zone LBN locks with FIFO hand-over. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include <glib.h>

#include "int-map.h"
#include "lbn-lock.h"

/* The holder is the head of the queue; waiters follow in order. */
struct lbn_lock {
  struct vdo_lbn_waiter *head, *tail;
};

struct vdo_lbn_lock_table {
  struct vdo_int_map *locks;    /* LBN -> struct lbn_lock */
  GSList *free_locks;           /* recycled, to keep the hot path cheap */
};

int
vdo_make_lbn_lock_table (struct vdo_lbn_lock_table **table_ret)
{
  struct vdo_lbn_lock_table *t = g_new0 (struct vdo_lbn_lock_table, 1);

  t->locks = vdo_int_map_new ();
  *table_ret = t;
  return 0;
}

void
vdo_free_lbn_lock_table (struct vdo_lbn_lock_table *t)
{
  struct lbn_lock *lock;
  size_t cursor = 0;

  if (t == NULL)
    return;
  while ((lock = vdo_int_map_next (t->locks, &cursor, NULL)) != NULL)
    g_free (lock);
  vdo_int_map_free (t->locks);
  g_slist_free_full (t->free_locks, g_free);
  g_free (t);
}

bool
vdo_acquire_lbn_lock (struct vdo_lbn_lock_table *t, struct vdo_lbn_waiter *w)
{
  struct lbn_lock *lock = vdo_int_map_get (t->locks, w->lbn);

  w->next = NULL;
  if (lock != NULL) {
    lock->tail->next = w;
    lock->tail = w;
    return false;
  }
  if (t->free_locks != NULL) {
    lock = t->free_locks->data;
    t->free_locks = g_slist_delete_link (t->free_locks, t->free_locks);
  }
  else
    lock = g_new (struct lbn_lock, 1);
  lock->head = lock->tail = w;
  vdo_int_map_put (t->locks, w->lbn, lock);
  return true;
}

void
vdo_release_lbn_lock (struct vdo_lbn_lock_table *t,
                      struct vdo_lbn_waiter *holder)
{
  struct lbn_lock *lock = vdo_int_map_get (t->locks, holder->lbn);
  struct vdo_lbn_waiter *next;

  g_assert (lock != NULL && lock->head == holder);
  next = holder->next;
  holder->next = NULL;
  if (next == NULL) {
    vdo_int_map_remove (t->locks, holder->lbn);
    t->free_locks = g_slist_prepend (t->free_locks, lock);
    return;
  }
  lock->head = next;
  vdo_enqueue_completion (next->completion);
}

struct vdo_lbn_waiter *
vdo_lbn_lock_holder (const struct vdo_lbn_lock_table *t,
                     logical_block_number_t lbn)
{
  struct lbn_lock *lock = vdo_int_map_get (t->locks, lbn);

  return lock != NULL ? lock->head : NULL;
}

unsigned
vdo_lbn_locks_held (const struct vdo_lbn_lock_table *t)
{
  return vdo_int_map_size (t->locks);
}
