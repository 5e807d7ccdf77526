/* nbdkit-vdo: the packer (packer.h). */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compressed-block-format.h"
#include "logger.h"
#include "packer.h"
#include "status.h"

#define NO_DEADLINE UINT64_MAX

struct packer_bin {
  struct vdo_packer_item *items[VDO_MAX_COMPRESSION_SLOTS];
  unsigned int count;
  unsigned int free_space;      /* bytes left in the data area */
  uint64_t oldest_generation;   /* of the items, or NO_GENERATION */
  uint64_t deadline;            /* the earliest item's, or NO_DEADLINE */
};

struct vdo_packer {
  struct vdo_packer_config config;
  uint64_t max_wait_ns, waited_on_wait_ns;
  struct packer_bin *bins;
  unsigned int bin_count;
  /* Fragments of generations below this are not kept (vdo_packer_flush). */
  uint64_t flush_below;

  /* Requests from other threads: the highest BELOW asked for, whether a
   * write of everything is wanted, and whether the work that serves
   * them is queued. */
  atomic_uint_fast64_t requested_below;
  atomic_bool write_all_wanted;
  atomic_bool release_wanted;   /* some item's release_wanted was set */
  atomic_bool kick_queued;
  struct vdo_completion kick;

  /* The timer: sleeps until timer_deadline, then queues an expiry. */
  pthread_t timer;
  bool timer_started;
  bool timer_stopping;
  pthread_mutex_t timer_lock;
  pthread_cond_t timer_cond;
  uint64_t timer_deadline;
  atomic_bool expire_queued;
  struct vdo_completion expire;

  atomic_uint_fast64_t fragments_written;
  atomic_uint_fast64_t blocks_written;
  atomic_uint_fast64_t fragments_in_packer;
  atomic_uint_fast64_t lone_fragments;
};

static uint64_t
monotonic_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static uint64_t
now_ns (const struct vdo_packer *packer)
{
  return packer->config.clock != NULL ? packer->config.clock ()
                                      : monotonic_ns ();
}

static void
add_counter (atomic_uint_fast64_t *counter, int64_t delta)
{
  atomic_fetch_add_explicit (counter, (uint_fast64_t) delta,
                             memory_order_relaxed);
}

static void
reset_bin (struct packer_bin *bin)
{
  bin->count = 0;
  bin->free_space = VDO_COMPRESSED_BLOCK_DATA_SIZE;
  bin->oldest_generation = VDO_PACKER_NO_GENERATION;
  bin->deadline = NO_DEADLINE;
}

/* --- Writing a bin --------------------------------------------------------- */

/* Hand the bin's items to the owner: built into a compressed block when
 * there are two or more, alone otherwise.  The bin is empty after. */
static void
write_bin (struct vdo_packer *packer, struct packer_bin *bin)
{
  struct vdo_compressed_fragment fragments[VDO_MAX_COMPRESSION_SLOTS];
  unsigned int count = bin->count, i;
  struct vdo_packer_item *first;
  int r;

  if (count == 0)
    return;
  for (i = 0; i < count; i++) {
    struct vdo_packer_item *item = bin->items[i];

    item->slot = i;
    item->next_in_batch = i + 1 < count ? bin->items[i + 1] : NULL;
    fragments[i] = (struct vdo_compressed_fragment) {
      item->fragment, item->size
    };
  }
  first = bin->items[0];
  reset_bin (bin);
  add_counter (&packer->fragments_in_packer, -(int64_t) count);
  if (count == 1) {
    add_counter (&packer->lone_fragments, 1);
    packer->config.emit (packer->config.context, first, 1);
    return;
  }
  /* Bins only ever take what fits, so this cannot fail. */
  r = vdo_build_compressed_block (first->block, fragments, count);
  if (r != VDO_SUCCESS) {
    vdo_log_error ("packer: a bin of %u fragments does not build (%s); "
                   "writing them uncompressed", count,
                   vdo_status_to_string (r));
    while (first != NULL) {
      struct vdo_packer_item *next = first->next_in_batch;

      first->next_in_batch = NULL;
      packer->config.emit (packer->config.context, first, 1);
      first = next;
    }
    return;
  }
  add_counter (&packer->fragments_written, count);
  add_counter (&packer->blocks_written, 1);
  packer->config.emit (packer->config.context, first, count);
}

/* --- The timer ------------------------------------------------------------ */

static uint64_t
earliest_deadline (const struct vdo_packer *packer)
{
  uint64_t earliest = NO_DEADLINE;
  unsigned int i;

  for (i = 0; i < packer->bin_count; i++)
    if (packer->bins[i].deadline < earliest)
      earliest = packer->bins[i].deadline;
  return earliest;
}

/* After any change to the bins: tell the timer when to wake next. */
static void
update_timer (struct vdo_packer *packer)
{
  uint64_t deadline;

  if (!packer->timer_started)
    return;
  deadline = earliest_deadline (packer);
  pthread_mutex_lock (&packer->timer_lock);
  if (deadline != packer->timer_deadline) {
    bool sooner = deadline < packer->timer_deadline;

    packer->timer_deadline = deadline;
    if (sooner)
      pthread_cond_signal (&packer->timer_cond);
  }
  pthread_mutex_unlock (&packer->timer_lock);
}

static void
run_expire (struct vdo_completion *completion)
{
  struct vdo_packer *packer = completion->parent;

  atomic_store (&packer->expire_queued, false);
  vdo_packer_expire (packer);
}

static void *
timer_thread (void *arg)
{
  struct vdo_packer *packer = arg;

  pthread_mutex_lock (&packer->timer_lock);
  while (!packer->timer_stopping) {
    uint64_t deadline = packer->timer_deadline, now;

    if (deadline == NO_DEADLINE) {
      pthread_cond_wait (&packer->timer_cond, &packer->timer_lock);
      continue;
    }
    now = monotonic_ns ();
    if (now < deadline) {
      struct timespec ts = {
        .tv_sec = deadline / 1000000000u,
        .tv_nsec = deadline % 1000000000u,
      };

      pthread_cond_timedwait (&packer->timer_cond, &packer->timer_lock, &ts);
      continue;
    }
    /* The packer thread sets the next deadline when it has expired
     * the bins. */
    packer->timer_deadline = NO_DEADLINE;
    pthread_mutex_unlock (&packer->timer_lock);
    if (!atomic_exchange (&packer->expire_queued, true))
      vdo_launch_completion (&packer->expire, run_expire,
                             packer->config.queue);
    pthread_mutex_lock (&packer->timer_lock);
  }
  pthread_mutex_unlock (&packer->timer_lock);
  return NULL;
}

static int
start_timer (struct vdo_packer *packer)
{
  pthread_condattr_t attr;
  int r;

  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&packer->timer_cond, &attr);
  pthread_condattr_destroy (&attr);
  pthread_mutex_init (&packer->timer_lock, NULL);
  packer->timer_deadline = NO_DEADLINE;
  r = pthread_create (&packer->timer, NULL, timer_thread, packer);
  if (r != 0) {
    vdo_log_error ("packer: cannot start its timer thread: %s", strerror (r));
    pthread_cond_destroy (&packer->timer_cond);
    pthread_mutex_destroy (&packer->timer_lock);
    return r;
  }
  pthread_setname_np (packer->timer, "vdo-packer-tmr");
  packer->timer_started = true;
  return 0;
}

/* --- Making and freeing ---------------------------------------------------- */

int
vdo_make_packer (const struct vdo_packer_config *config,
                 struct vdo_packer **packer_ret)
{
  struct vdo_packer *packer = calloc (1, sizeof *packer);
  unsigned int i;
  int r;

  *packer_ret = NULL;
  if (packer == NULL)
    return ENOMEM;
  packer->config = *config;
  packer->bin_count = config->bins != 0 ? config->bins
                                        : VDO_PACKER_DEFAULT_BINS;
  packer->max_wait_ns = 1000 * (config->max_wait_us != 0
                                ? config->max_wait_us
                                : VDO_PACKER_DEFAULT_MAX_WAIT_US);
  packer->waited_on_wait_ns = 1000 * (config->waited_on_wait_us != 0
                                      ? config->waited_on_wait_us
                                      : VDO_PACKER_DEFAULT_WAITED_ON_WAIT_US);
  packer->bins = calloc (packer->bin_count, sizeof *packer->bins);
  if (packer->bins == NULL) {
    free (packer);
    return ENOMEM;
  }
  for (i = 0; i < packer->bin_count; i++)
    reset_bin (&packer->bins[i]);
  packer->flush_below = 0;
  atomic_init (&packer->requested_below, 0);
  vdo_prepare_completion (&packer->kick, NULL, config->queue, packer);
  vdo_prepare_completion (&packer->expire, NULL, config->queue, packer);
  if (config->queue != NULL) {
    r = start_timer (packer);
    if (r != 0) {
      free (packer->bins);
      free (packer);
      return r;
    }
  }
  *packer_ret = packer;
  return 0;
}

void
vdo_stop_packer_timer (struct vdo_packer *packer)
{
  if (packer == NULL || !packer->timer_started)
    return;
  pthread_mutex_lock (&packer->timer_lock);
  packer->timer_stopping = true;
  pthread_cond_signal (&packer->timer_cond);
  pthread_mutex_unlock (&packer->timer_lock);
  pthread_join (packer->timer, NULL);
  pthread_cond_destroy (&packer->timer_cond);
  pthread_mutex_destroy (&packer->timer_lock);
  packer->timer_started = false;
}

void
vdo_free_packer (struct vdo_packer *packer)
{
  unsigned int i;

  if (packer == NULL)
    return;
  vdo_stop_packer_timer (packer);
  for (i = 0; i < packer->bin_count; i++)
    if (packer->bins[i].count != 0)
      vdo_log_error ("packer freed with %u fragments in a bin",
                     packer->bins[i].count);
  free (packer->bins);
  free (packer);
}

/* --- Placing fragments ----------------------------------------------------- */

/* The fullest bin with room for SIZE bytes and a slot, else NULL. */
static struct packer_bin *
best_fit (struct vdo_packer *packer, unsigned int size)
{
  struct packer_bin *best = NULL;
  unsigned int i;

  for (i = 0; i < packer->bin_count; i++) {
    struct packer_bin *bin = &packer->bins[i];

    if (bin->count < VDO_MAX_COMPRESSION_SLOTS && bin->free_space >= size
        && (best == NULL || bin->free_space < best->free_space))
      best = bin;
  }
  return best;
}

/* Nothing has room for SIZE bytes: the bin to write so the fragment
 * can start it over, or NULL to write the fragment alone.  The fullest
 * bin of two or more wastes the least.  When every bin holds one
 * fragment, one fragment goes alone either way: the largest, which is
 * the hardest to pair, of those and the new one. */
static struct packer_bin *
bin_to_overflow (struct vdo_packer *packer, unsigned int size)
{
  struct packer_bin *fullest = NULL, *largest_single = NULL;
  unsigned int i;

  for (i = 0; i < packer->bin_count; i++) {
    struct packer_bin *bin = &packer->bins[i];

    if (bin->count >= 2) {
      if (fullest == NULL || bin->free_space < fullest->free_space)
        fullest = bin;
    }
    else if (largest_single == NULL
             || bin->free_space < largest_single->free_space)
      largest_single = bin;
  }
  if (fullest != NULL)
    return fullest;
  if (VDO_COMPRESSED_BLOCK_DATA_SIZE - largest_single->free_space > size)
    return largest_single;
  return NULL;
}

void
vdo_packer_add (struct vdo_packer *packer, struct vdo_packer_item *item)
{
  struct packer_bin *bin = best_fit (packer, item->size);

  add_counter (&packer->fragments_in_packer, 1);
  item->next_in_batch = NULL;
  /* A flush already waits for an old generation's fragment: it may
   * wait only briefly for company (the flushed writes still on their
   * way arrive in a burst), as one whose writer waits. */
  item->deadline = now_ns (packer)
                   + (item->waited_on || item->generation < packer->flush_below
                      ? packer->waited_on_wait_ns : packer->max_wait_ns);
  if (bin == NULL) {
    bin = bin_to_overflow (packer, item->size);
    if (bin == NULL) {
      add_counter (&packer->fragments_in_packer, -1);
      add_counter (&packer->lone_fragments, 1);
      packer->config.emit (packer->config.context, item, 1);
      return;
    }
    write_bin (packer, bin);
  }
  bin->items[bin->count++] = item;
  bin->free_space -= item->size;
  if (item->generation < bin->oldest_generation)
    bin->oldest_generation = item->generation;
  if (item->deadline < bin->deadline)
    bin->deadline = item->deadline;
  /* Full, or holding what another request waits for: write it now. */
  if (bin->count == VDO_MAX_COMPRESSION_SLOTS || bin->free_space == 0
      || atomic_load (&item->release_wanted))
    write_bin (packer, bin);
  update_timer (packer);
}

void
vdo_packer_flush (struct vdo_packer *packer, uint64_t below)
{
  unsigned int i;

  if (below > packer->flush_below)
    packer->flush_below = below;
  for (i = 0; i < packer->bin_count; i++)
    if (packer->bins[i].oldest_generation < packer->flush_below)
      write_bin (packer, &packer->bins[i]);
  update_timer (packer);
}

void
vdo_packer_write_all (struct vdo_packer *packer)
{
  unsigned int i;

  for (i = 0; i < packer->bin_count; i++)
    write_bin (packer, &packer->bins[i]);
  update_timer (packer);
}

void
vdo_packer_expire (struct vdo_packer *packer)
{
  uint64_t now = now_ns (packer);
  unsigned int i;

  for (i = 0; i < packer->bin_count; i++)
    if (packer->bins[i].deadline <= now)
      write_bin (packer, &packer->bins[i]);
  update_timer (packer);
}

/* --- Requests from other threads ------------------------------------------ */

static void
write_wanted_bins (struct vdo_packer *packer)
{
  unsigned int i, k;

  for (i = 0; i < packer->bin_count; i++) {
    struct packer_bin *bin = &packer->bins[i];

    for (k = 0; k < bin->count; k++)
      if (atomic_load (&bin->items[k]->release_wanted)) {
        write_bin (packer, bin);
        break;
      }
  }
}

static void
run_kick (struct vdo_completion *completion)
{
  struct vdo_packer *packer = completion->parent;

  /* Cleared first: a request made from here on queues another kick. */
  atomic_store (&packer->kick_queued, false);
  if (atomic_exchange (&packer->write_all_wanted, false))
    vdo_packer_write_all (packer);
  if (atomic_exchange (&packer->release_wanted, false))
    write_wanted_bins (packer);
  vdo_packer_flush (packer, atomic_load (&packer->requested_below));
}

static void
queue_kick (struct vdo_packer *packer)
{
  if (!atomic_exchange (&packer->kick_queued, true))
    vdo_launch_completion (&packer->kick, run_kick, packer->config.queue);
}

void
vdo_packer_request_flush (struct vdo_packer *packer, uint64_t below)
{
  uint_fast64_t old = atomic_load (&packer->requested_below);

  while (old < below
         && !atomic_compare_exchange_weak (&packer->requested_below, &old,
                                           below))
    ;
  queue_kick (packer);
}

void
vdo_packer_request_write_all (struct vdo_packer *packer)
{
  if (atomic_load_explicit (&packer->fragments_in_packer,
                            memory_order_relaxed) == 0)
    return;
  atomic_store (&packer->write_all_wanted, true);
  queue_kick (packer);
}

void
vdo_packer_request_release (struct vdo_packer *packer,
                            struct vdo_packer_item *item)
{
  atomic_store (&item->release_wanted, true);
  atomic_store (&packer->release_wanted, true);
  queue_kick (packer);
}

void
vdo_get_packer_statistics (const struct vdo_packer *packer,
                           struct vdo_packer_statistics *stats)
{
  struct vdo_packer *p = (struct vdo_packer *) packer;

  stats->compressed_fragments_written =
    atomic_load_explicit (&p->fragments_written, memory_order_relaxed);
  stats->compressed_blocks_written =
    atomic_load_explicit (&p->blocks_written, memory_order_relaxed);
  stats->compressed_fragments_in_packer =
    atomic_load_explicit (&p->fragments_in_packer, memory_order_relaxed);
  stats->lone_fragments =
    atomic_load_explicit (&p->lone_fragments, memory_order_relaxed);
}
