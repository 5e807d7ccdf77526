/* nbdkit-vdo: the in-memory volume index (volume-index.h). */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "unit-suites.h"
#include "volume-index.h"

/* --- Helpers ---------------------------------------------------------- */

static uint64_t
xorshift (uint64_t *s)
{
  uint64_t x = *s;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform names, as MurmurHash names are. */
static void
random_name (uint64_t *s, struct vdo_chunk_name *name)
{
  uint64_t a = xorshift (s), b = xorshift (s);

  memcpy (name->bytes, &a, 8);
  memcpy (name->bytes + 8, &b, 8);
}

static bool
name_is_hook (const struct vdo_chunk_name *name, uint32_t rate)
{
  unsigned int v = (unsigned int) (name->bytes[14] << 8) | name->bytes[15];

  return rate != 0 && v % rate == 0;
}

/* A random name whose hook status is HOOK. */
static void
random_name_hook (uint64_t *s, uint32_t rate, bool hook,
                  struct vdo_chunk_name *name)
{
  do
    random_name (s, name);
  while (name_is_hook (name, rate) != hook);
}

static struct vdo_volume_index *
make_index (uint32_t chapters, uint32_t dense, uint32_t rate, uint64_t rpc)
{
  struct vdo_volume_index_config c = {
    .chapters = chapters,
    .dense_chapters = dense,
    .sample_rate = rate,
    .records_per_chapter = rpc,
  };
  struct vdo_volume_index *index = NULL;

  ck_assert_int_eq (vdo_make_volume_index (&c, &index), VDO_SUCCESS);
  ck_assert_ptr_nonnull (index);
  return index;
}

static void
put_ok (struct vdo_volume_index *index, const struct vdo_chunk_name *name,
        uint64_t vcn, uint64_t from)
{
  ck_assert_int_eq (vdo_volume_index_put (index, name, vcn, from),
                    VDO_SUCCESS);
}

/* Whether a lookup of NAME yields VCN among its candidates; checks the
 * candidates are strictly descending on the way. */
static bool
lookup_has (const struct vdo_volume_index *index,
            const struct vdo_chunk_name *name, uint64_t vcn)
{
  uint64_t vcns[64];
  unsigned int n, i;
  bool found = false;

  n = vdo_volume_index_lookup (index, name, vcns, 64);
  for (i = 0; i < n; i++) {
    if (i > 0)
      ck_assert_uint_gt (vcns[i - 1], vcns[i]);
    if (vcns[i] == vcn)
      found = true;
  }
  return found;
}

static unsigned int
lookup_count (const struct vdo_volume_index *index,
              const struct vdo_chunk_name *name)
{
  uint64_t vcns[64];

  return vdo_volume_index_lookup (index, name, vcns, 64);
}

static uint64_t
entries_of (const struct vdo_volume_index *index)
{
  struct vdo_volume_index_stats st;

  vdo_volume_index_get_stats (index, &st);
  return st.entries;
}

static uint64_t
evictions_of (const struct vdo_volume_index *index)
{
  struct vdo_volume_index_stats st;

  vdo_volume_index_get_stats (index, &st);
  return st.evictions;
}

/* --- Insert and lookup ------------------------------------------------ */

/* The 0.25 dense geometry scaled down: 64 chapters of 1024 records. */
#define SMALL_CHAPTERS 64u
#define SMALL_RPC 1024u

START_TEST (test_insert_all_found)
{
  struct vdo_volume_index *index
    = make_index (SMALL_CHAPTERS, SMALL_CHAPTERS, 0, SMALL_RPC);
  const unsigned int per_chapter = 800;
  unsigned int total = SMALL_CHAPTERS * per_chapter;
  struct vdo_chunk_name *names = calloc (total, sizeof *names);
  uint64_t s = 1;
  unsigned int c, i, misses = 0;

  ck_assert_ptr_nonnull (names);
  for (c = 0; c < SMALL_CHAPTERS; c++) {
    vdo_volume_index_set_open_chapter (index, c);
    ck_assert_uint_eq (vdo_volume_index_open_chapter (index), c);
    for (i = 0; i < per_chapter; i++) {
      random_name (&s, &names[c * per_chapter + i]);
      put_ok (index, &names[c * per_chapter + i], c, VDO_NO_CHAPTER);
    }
  }
  ck_assert_uint_eq (entries_of (index), total);
  ck_assert_uint_eq (evictions_of (index), 0);

  for (i = 0; i < total; i++) {
    if (!lookup_has (index, &names[i], i / per_chapter))
      misses++;
  }
  ck_assert_uint_eq (misses, 0);

  /* MAX bounds the answer. */
  ck_assert_uint_eq (vdo_volume_index_lookup (index, &names[0], NULL, 0), 0);

  free (names);
  vdo_free_volume_index (index);
}
END_TEST

/* Absent names rarely get candidates, even with the index full: the
 * 0.25 GB dense geometry scaled down (64 chapters of 1024 records), and
 * with the real chapter counts, so the real tag widths (13 bits dense,
 * 12 bits and a hook bit sparse) with fewer records per chapter. */
static const struct vdo_volume_index_config fp_configs[] = {
  { SMALL_CHAPTERS, SMALL_CHAPTERS, 0, SMALL_RPC },
  { 1024, 1024, 0, 64 },
  { 10240, 512, 32, 16 },
};

START_TEST (test_false_positive_rate)
{
  const struct vdo_volume_index_config *fc = &fp_configs[_i];
  struct vdo_volume_index *index
    = make_index (fc->chapters, fc->dense_chapters, fc->sample_rate,
                  fc->records_per_chapter);
  struct vdo_chunk_name name;
  uint64_t s = 2;
  unsigned int c, i, hits = 0;

  for (c = 0; c < fc->chapters; c++) {
    vdo_volume_index_set_open_chapter (index, c);
    for (i = 0; i < fc->records_per_chapter; i++) {
      random_name (&s, &name);
      put_ok (index, &name, c, VDO_NO_CHAPTER);
    }
  }
  s = 0xabcdef;
  for (i = 0; i < 100000; i++) {
    random_name (&s, &name);
    if (lookup_count (index, &name) > 0)
      hits++;
  }
  ck_assert_uint_lt (hits, 2000);
  vdo_free_volume_index (index);
}
END_TEST

/* The same name put in several chapters without FROM_VCN: all of them,
 * newest first, each once. */
START_TEST (test_newest_first)
{
  struct vdo_volume_index *index = make_index (16, 16, 0, 64);
  struct vdo_chunk_name name;
  uint64_t s = 3, vcns[8];
  unsigned int n;

  random_name (&s, &name);
  put_ok (index, &name, 0, VDO_NO_CHAPTER);
  vdo_volume_index_set_open_chapter (index, 5);
  put_ok (index, &name, 2, VDO_NO_CHAPTER);
  put_ok (index, &name, 5, VDO_NO_CHAPTER);
  put_ok (index, &name, 5, VDO_NO_CHAPTER);      /* no duplicate */
  ck_assert_uint_eq (entries_of (index), 3);
  n = vdo_volume_index_lookup (index, &name, vcns, 8);
  ck_assert_uint_eq (n, 3);
  ck_assert_uint_eq (vcns[0], 5);
  ck_assert_uint_eq (vcns[1], 2);
  ck_assert_uint_eq (vcns[2], 0);
  n = vdo_volume_index_lookup (index, &name, vcns, 2);
  ck_assert_uint_eq (n, 2);
  ck_assert_uint_eq (vcns[1], 2);

  /* Remove drops just that chapter's entry. */
  vdo_volume_index_remove (index, &name, 2);
  n = vdo_volume_index_lookup (index, &name, vcns, 8);
  ck_assert_uint_eq (n, 2);
  ck_assert_uint_eq (vcns[0], 5);
  ck_assert_uint_eq (vcns[1], 0);
  ck_assert_uint_eq (entries_of (index), 2);

  /* VCNs outside the window. */
  ck_assert_int_eq (vdo_volume_index_put (index, &name, 6, VDO_NO_CHAPTER),
                    UDS_INVALID_ARGUMENT);
  vdo_volume_index_set_open_chapter (index, 20);
  ck_assert_int_eq (vdo_volume_index_put (index, &name, 4, VDO_NO_CHAPTER),
                    UDS_INVALID_ARGUMENT);
  ck_assert_int_eq (vdo_volume_index_put (index, &name, 5, VDO_NO_CHAPTER),
                    VDO_SUCCESS);
  /* Going backwards is ignored. */
  vdo_volume_index_set_open_chapter (index, 19);
  ck_assert_uint_eq (vdo_volume_index_open_chapter (index), 20);
  vdo_free_volume_index (index);
}
END_TEST

/* --- Window ----------------------------------------------------------- */

START_TEST (test_window_expiry)
{
  /* 8 chapters: chapters stored in 4 bits, so VCNs alias every 16. */
  struct vdo_volume_index *index = make_index (8, 8, 0, 64);
  struct vdo_chunk_name names[200];
  uint64_t s = 4;
  unsigned int i, open;

  for (i = 0; i < 200; i++) {
    random_name (&s, &names[i]);
    put_ok (index, &names[i], 0, VDO_NO_CHAPTER);
  }
  for (open = 1; open <= 10 * 16; open++) {
    vdo_volume_index_set_open_chapter (index, open);
    for (i = 0; i < 200; i++) {
      if (open < 8)
        ck_assert (lookup_has (index, &names[i], 0));
      else
        ck_assert_uint_eq (lookup_count (index, &names[i]), 0);
    }
    /* The sweep has dropped them all long before they could alias. */
    if (open >= 15)
      ck_assert_uint_eq (entries_of (index), 0);
  }
  vdo_free_volume_index (index);
}
END_TEST

/* Names put in every chapter while the counter runs far, in steps of
 * one or in random jumps: a name is found while its chapter is in the
 * window and never after. */
static void
run_far (bool jumps)
{
  enum { CHAPTERS = 8, PER_CHAPTER = 30, RUN = 10 * 16 };
  struct vdo_volume_index *index = make_index (CHAPTERS, CHAPTERS, 0, 64);
  /* Names of each chapter, by VCN; only the open ones get puts. */
  static struct vdo_chunk_name names[RUN + 16][PER_CHAPTER];
  static bool used[RUN + 16];
  uint64_t s = jumps ? 5 : 6, open = 0;
  unsigned int i, stale = 0, stale_checks = 0;
  uint64_t c;

  memset (used, 0, sizeof used);
  while (open < RUN) {
    for (i = 0; i < PER_CHAPTER; i++) {
      random_name (&s, &names[open][i]);
      put_ok (index, &names[open][i], open, VDO_NO_CHAPTER);
    }
    used[open] = true;
    open += jumps ? 1 + xorshift (&s) % 12 : 1;
    vdo_volume_index_set_open_chapter (index, open);
    for (c = 0; c <= open && c < RUN + 16; c++) {
      if (!used[c])
        continue;
      for (i = 0; i < PER_CHAPTER; i++) {
        if (open - c < CHAPTERS) {
          ck_assert (lookup_has (index, &names[c][i], c));
        }
        else {
          stale_checks++;
          if (lookup_count (index, &names[c][i]) > 0)
            stale++;
        }
      }
    }
  }
  /* 20-bit tags: a stray tag match is possible, a resurrected chapter
   * would be PER_CHAPTER of them at every check. */
  ck_assert_uint_gt (stale_checks, 1000);
  ck_assert_uint_le (stale, stale_checks / 1000);
  vdo_free_volume_index (index);
}

START_TEST (test_window_run_far_steps)
{
  run_far (false);
}
END_TEST

START_TEST (test_window_run_far_jumps)
{
  run_far (true);
}
END_TEST

/* One jump of the whole window or more expires everything at once. */
START_TEST (test_window_big_jump)
{
  struct vdo_volume_index *index = make_index (8, 8, 0, 64);
  struct vdo_chunk_name names[100];
  uint64_t s = 7;
  unsigned int i;

  for (i = 0; i < 100; i++) {
    random_name (&s, &names[i]);
    put_ok (index, &names[i], 0, VDO_NO_CHAPTER);
  }
  vdo_volume_index_set_open_chapter (index, 7);
  for (i = 0; i < 100; i++)
    ck_assert (lookup_has (index, &names[i], 0));
  vdo_volume_index_set_open_chapter (index, 16 * 3 + 7 + 0);
  for (i = 0; i < 100; i++)
    ck_assert_uint_eq (lookup_count (index, &names[i]), 0);
  ck_assert_uint_eq (entries_of (index), 0);
  vdo_free_volume_index (index);
}
END_TEST

/* Sparse: non-hooks live for the dense chapters, hooks for all. */
START_TEST (test_sparse_expiry)
{
  enum { CHAPTERS = 64, DENSE = 8, RATE = 4, N = 100 };
  struct vdo_volume_index *index = make_index (CHAPTERS, DENSE, RATE, 64);
  struct vdo_chunk_name hooks[N], others[N], late;
  uint64_t s = 8;
  unsigned int i;
  uint64_t open;

  for (i = 0; i < N; i++) {
    random_name_hook (&s, RATE, true, &hooks[i]);
    random_name_hook (&s, RATE, false, &others[i]);
    put_ok (index, &hooks[i], 0, VDO_NO_CHAPTER);
    put_ok (index, &others[i], 0, VDO_NO_CHAPTER);
  }
  for (open = 1; open <= 4 * 128; open++) {
    vdo_volume_index_set_open_chapter (index, open);
    for (i = 0; i < N; i++) {
      if (open < DENSE)
        ck_assert (lookup_has (index, &others[i], 0));
      else
        ck_assert_uint_eq (lookup_count (index, &others[i]), 0);
      if (open < CHAPTERS)
        ck_assert (lookup_has (index, &hooks[i], 0));
      else
        ck_assert_uint_eq (lookup_count (index, &hooks[i]), 0);
    }
  }
  ck_assert_uint_eq (entries_of (index), 0);

  /* A non-hook put into a sparse chapter adds nothing; a hook does. */
  open = vdo_volume_index_open_chapter (index) - DENSE;
  random_name_hook (&s, RATE, false, &late);
  put_ok (index, &late, open, VDO_NO_CHAPTER);
  ck_assert_uint_eq (lookup_count (index, &late), 0);
  ck_assert_uint_eq (entries_of (index), 0);
  random_name_hook (&s, RATE, true, &late);
  put_ok (index, &late, open, VDO_NO_CHAPTER);
  ck_assert (lookup_has (index, &late, open));
  vdo_free_volume_index (index);
}
END_TEST

/* --- Moves and rebuild order ------------------------------------------ */

START_TEST (test_move_from_vcn)
{
  struct vdo_volume_index *index = make_index (16, 16, 0, 64);
  struct vdo_chunk_name a, b, c;
  uint64_t s = 9, vcns[8];
  unsigned int n;

  random_name (&s, &a);
  random_name (&s, &b);
  random_name (&s, &c);
  vdo_volume_index_set_open_chapter (index, 3);
  put_ok (index, &a, 3, VDO_NO_CHAPTER);
  vdo_volume_index_set_open_chapter (index, 10);

  /* Found in chapter 3, written again into 10: moved. */
  put_ok (index, &a, 10, 3);
  n = vdo_volume_index_lookup (index, &a, vcns, 8);
  ck_assert_uint_eq (n, 1);
  ck_assert_uint_eq (vcns[0], 10);
  ck_assert_uint_eq (entries_of (index), 1);

  /* A FROM_VCN with no entry: added. */
  put_ok (index, &b, 10, 4);
  ck_assert (lookup_has (index, &b, 10));
  ck_assert_uint_eq (entries_of (index), 2);

  /* Without FROM_VCN an older entry stays and a new one is added. */
  put_ok (index, &c, 6, VDO_NO_CHAPTER);
  put_ok (index, &c, 9, VDO_NO_CHAPTER);
  n = vdo_volume_index_lookup (index, &c, vcns, 8);
  ck_assert_uint_eq (n, 2);
  ck_assert_uint_eq (vcns[0], 9);
  ck_assert_uint_eq (vcns[1], 6);

  /* Rebuild order: chapter 7 replayed after 9 is in: nothing. */
  put_ok (index, &c, 7, VDO_NO_CHAPTER);
  put_ok (index, &c, 7, 6);
  n = vdo_volume_index_lookup (index, &c, vcns, 8);
  ck_assert_uint_eq (n, 2);
  ck_assert_uint_eq (vcns[0], 9);
  ck_assert_uint_eq (vcns[1], 6);
  ck_assert_uint_eq (entries_of (index), 4);

  /* A move from an expired FROM_VCN adds instead. */
  vdo_volume_index_set_open_chapter (index, 24);
  put_ok (index, &a, 24, 3);
  ck_assert (lookup_has (index, &a, 24));
  ck_assert (lookup_has (index, &a, 10));
  vdo_free_volume_index (index);
}
END_TEST

/* --- Eviction --------------------------------------------------------- */

START_TEST (test_eviction_keeps_newest)
{
  struct vdo_volume_index *index
    = make_index (SMALL_CHAPTERS, SMALL_CHAPTERS, 0, SMALL_RPC);
  unsigned int per_chapter = 2 * SMALL_RPC;
  unsigned int total = SMALL_CHAPTERS * per_chapter, tail = total / 10;
  struct vdo_chunk_name *names = calloc (total, sizeof *names);
  struct vdo_volume_index_stats st;
  uint64_t s = 10;
  unsigned int c, i, found = 0, early = 0;

  ck_assert_ptr_nonnull (names);
  for (c = 0; c < SMALL_CHAPTERS; c++) {
    vdo_volume_index_set_open_chapter (index, c);
    for (i = 0; i < per_chapter; i++) {
      random_name (&s, &names[c * per_chapter + i]);
      put_ok (index, &names[c * per_chapter + i], c, VDO_NO_CHAPTER);
    }
  }
  vdo_volume_index_get_stats (index, &st);
  ck_assert_uint_eq (st.capacity, SMALL_CHAPTERS * SMALL_RPC);
  ck_assert_uint_gt (st.evictions, total - st.capacity * 100 / 90 - 1000);
  /* Every put adds or evicts, but for a rare tag match in the same
   * chapter, which adds nothing. */
  ck_assert_uint_le (st.entries + st.evictions, total);
  ck_assert_uint_ge (st.entries + st.evictions, total - total / 1000);
  ck_assert_uint_le (st.entries, st.capacity * 100 / 90 + 64);

  for (i = total - tail; i < total; i++)
    if (lookup_has (index, &names[i], i / per_chapter))
      found++;
  ck_assert_uint_gt (found, tail * 9 / 10);
  for (i = 0; i < tail; i++)
    if (lookup_has (index, &names[i], i / per_chapter))
      early++;
  ck_assert_uint_lt (early, found / 2);

  free (names);
  vdo_free_volume_index (index);
}
END_TEST

/* A full window at the capacity the table is sized for, through many
 * chapters of turnover: evictions stay rare. */
START_TEST (test_steady_state_at_capacity)
{
  struct vdo_volume_index *index
    = make_index (SMALL_CHAPTERS, SMALL_CHAPTERS, 0, SMALL_RPC);
  struct vdo_chunk_name name;
  uint64_t s = 11;
  unsigned int c, i;

  for (c = 0; c < 4 * SMALL_CHAPTERS; c++) {
    vdo_volume_index_set_open_chapter (index, c);
    for (i = 0; i < SMALL_RPC; i++) {
      random_name (&s, &name);
      put_ok (index, &name, c, VDO_NO_CHAPTER);
    }
  }
  /* Under 1 % of the puts. */
  ck_assert_uint_lt (evictions_of (index), 4 * SMALL_CHAPTERS * SMALL_RPC
                     / 100);
  ck_assert_uint_le (entries_of (index), SMALL_CHAPTERS * SMALL_RPC + 2048);
  vdo_free_volume_index (index);
}
END_TEST

/* --- Memory ----------------------------------------------------------- */

START_TEST (test_memory_per_entry)
{
  static const struct {
    struct vdo_volume_index_config c;
    double max_per_entry;
  } configs[] = {
    { { 1024, 1024, 0, 65536 }, 3.5 },          /* 0.25 dense */
    { { 1024, 1024, 0, 131072 }, 3.5 },         /* 0.5 dense */
    { { 1024, 1024, 0, 262144 }, 3.5 },         /* 1 dense */
    { { 2048, 2048, 0, 262144 }, 3.5 },         /* 2 dense */
    { { 10240, 512, 32, 65536 }, 4.0 },         /* 0.25 sparse */
    { { 10240, 512, 32, 262144 }, 4.0 },        /* 1 sparse */
  };
  unsigned int i;

  for (i = 0; i < sizeof configs / sizeof configs[0]; i++) {
    const struct vdo_volume_index_config *c = &configs[i].c;
    uint64_t bytes = vdo_volume_index_memory_bytes (c);
    uint64_t capacity = (uint64_t) c->dense_chapters * c->records_per_chapter;

    if (c->sample_rate != 0)
      capacity += (uint64_t) (c->chapters - c->dense_chapters)
        * c->records_per_chapter / c->sample_rate;
    ck_assert_uint_gt (bytes, 0);
    ck_assert_uint_eq (bytes % 4096, 0);
    ck_assert ((double) bytes / (double) capacity <= configs[i].max_per_entry);
    /* Within the memory setting the config comes from. */
    ck_assert_uint_le (bytes, (uint64_t) c->records_per_chapter
                       * (c->chapters == 2048 ? 2 : 1) * 4096);
  }
  /* 0.25 GB dense fits 256 MiB. */
  ck_assert_uint_le (vdo_volume_index_memory_bytes (&configs[0].c),
                     256ull << 20);
}
END_TEST

START_TEST (test_bad_config)
{
  static const struct vdo_volume_index_config bad[] = {
    { 1, 1, 0, 64 },              /* one chapter */
    { 16, 8, 0, 64 },             /* dense with fewer dense chapters */
    { 16, 0, 32, 64 },            /* sparse without dense chapters */
    { 16, 17, 32, 64 },           /* more dense chapters than chapters */
    { 16, 16, 0, 0 },             /* no records */
  };
  struct vdo_volume_index *index = NULL;
  unsigned int i;

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_uint_eq (vdo_volume_index_memory_bytes (&bad[i]), 0);
    ck_assert_int_eq (vdo_make_volume_index (&bad[i], &index),
                      UDS_INVALID_ARGUMENT);
  }
}
END_TEST

/* A real 0.25 GB dense index: made without touching its 217 MiB. */
START_TEST (test_quarter_gb_lazy)
{
  struct vdo_volume_index *index = make_index (1024, 1024, 0, 65536);
  struct vdo_volume_index_stats st;
  struct vdo_chunk_name name;
  uint64_t s = 12, seed, n, nonempty = 0;
  unsigned int i;

  vdo_volume_index_get_stats (index, &st);
  ck_assert_uint_eq (st.capacity, 1024u * 65536);
  ck_assert_uint_le (st.memory_bytes, 256ull << 20);
  ck_assert_uint_eq (vdo_volume_index_page_count (index) * 4096,
                     st.memory_bytes);
  seed = s;
  for (i = 0; i < 5000; i++) {
    random_name (&s, &name);
    put_ok (index, &name, 0, VDO_NO_CHAPTER);
  }
  vdo_volume_index_set_open_chapter (index, 100);
  s = seed;
  for (i = 0; i < 5000; i++) {
    random_name (&s, &name);
    ck_assert (lookup_has (index, &name, 0));
  }
  for (n = 0; n < vdo_volume_index_page_count (index); n++)
    if (!vdo_volume_index_page_is_empty (index, n))
      nonempty++;
  ck_assert_uint_le (nonempty, 5000);
  ck_assert_uint_ge (nonempty, 4000);
  vdo_free_volume_index (index);
}
END_TEST

/* page_is_empty answers from counts kept beside the table: they must
 * agree with the bytes. */
static void
check_page_counts (const struct vdo_volume_index *index)
{
  static const uint8_t zero[4096];
  uint64_t n;

  for (n = 0; n < vdo_volume_index_page_count (index); n++)
    ck_assert_int_eq (vdo_volume_index_page_is_empty (index, n),
                      memcmp (vdo_volume_index_page (index, n), zero,
                              4096) == 0);
}

START_TEST (test_page_counts_follow_contents)
{
  enum { CHAPTERS = 16, RPC = 512 };
  struct vdo_volume_index *index = make_index (CHAPTERS, CHAPTERS, 0, RPC);
  struct vdo_chunk_name name;
  uint64_t s = 21, seed = 21;
  unsigned int c, i;

  check_page_counts (index);
  for (c = 0; c < 2 * CHAPTERS; c++) {
    vdo_volume_index_set_open_chapter (index, c);
    for (i = 0; i < RPC; i++) {
      random_name (&s, &name);
      put_ok (index, &name, c, VDO_NO_CHAPTER);
    }
    check_page_counts (index);
  }
  /* Removing the latest chapter's names empties some buckets. */
  s = seed;
  for (c = 0; c < 2 * CHAPTERS; c++)
    for (i = 0; i < RPC; i++) {
      random_name (&s, &name);
      if (c == 2 * CHAPTERS - 1)
        vdo_volume_index_remove (index, &name, c);
    }
  check_page_counts (index);
  /* The sweep expires everything a chapter at a time. */
  for (c = 2 * CHAPTERS; c < 5 * CHAPTERS; c++) {
    vdo_volume_index_set_open_chapter (index, c);
    check_page_counts (index);
  }
  ck_assert_uint_eq (entries_of (index), 0);
  vdo_free_volume_index (index);
}
END_TEST

/* --- Save and restore ------------------------------------------------- */

struct saved {
  uint8_t state[VDO_VOLUME_INDEX_STATE_SIZE];
  uint64_t pages;
  uint64_t *numbers;
  uint8_t *data;
  uint64_t count;
};

static void
save (const struct vdo_volume_index *index, struct saved *sv)
{
  uint64_t n;

  vdo_volume_index_encode_state (index, sv->state);
  sv->pages = vdo_volume_index_page_count (index);
  sv->numbers = calloc (sv->pages, sizeof *sv->numbers);
  sv->data = calloc (sv->pages, 4096);
  ck_assert_ptr_nonnull (sv->numbers);
  ck_assert_ptr_nonnull (sv->data);
  sv->count = 0;
  for (n = 0; n < sv->pages; n++) {
    if (vdo_volume_index_page_is_empty (index, n))
      continue;
    sv->numbers[sv->count] = n;
    memcpy (sv->data + sv->count * 4096, vdo_volume_index_page (index, n),
            4096);
    sv->count++;
  }
}

static int
restore (struct vdo_volume_index *index, const struct saved *sv)
{
  uint64_t i;
  int result = vdo_volume_index_decode_state (index, sv->state);

  if (result != VDO_SUCCESS)
    return result;
  for (i = 0; i < sv->count; i++)
    vdo_volume_index_restore_page (index, sv->numbers[i],
                                   sv->data + i * 4096);
  return vdo_volume_index_finish_restore (index);
}

static void
free_saved (struct saved *sv)
{
  free (sv->numbers);
  free (sv->data);
}

static bool
same_answers (const struct vdo_volume_index *x,
              const struct vdo_volume_index *y,
              const struct vdo_chunk_name *name)
{
  uint64_t a[64], b[64];
  unsigned int n = vdo_volume_index_lookup (x, name, a, 64);

  return n == vdo_volume_index_lookup (y, name, b, 64)
    && memcmp (a, b, n * sizeof a[0]) == 0;
}

START_TEST (test_save_restore)
{
  enum { CHAPTERS = 32, RPC = 256, PUTS = 2 * RPC };
  struct vdo_volume_index *index = make_index (CHAPTERS, 4, 8, RPC);
  struct vdo_volume_index *copy = make_index (CHAPTERS, 4, 8, RPC);
  struct vdo_volume_index_stats st1, st2;
  struct vdo_chunk_name name;
  struct saved sv;
  uint64_t s = 13, seed = 13;
  unsigned int c, i;

  /* Over-fill so evictions are part of the state. */
  for (c = 0; c < 3 * CHAPTERS + 5; c++) {
    vdo_volume_index_set_open_chapter (index, c);
    for (i = 0; i < PUTS; i++) {
      random_name (&s, &name);
      put_ok (index, &name, c, VDO_NO_CHAPTER);
    }
  }
  ck_assert_uint_gt (evictions_of (index), 0);
  save (index, &sv);
  ck_assert_uint_gt (sv.count, 0);
  ck_assert_uint_le (sv.count, sv.pages);
  ck_assert_int_eq (restore (copy, &sv), VDO_SUCCESS);
  check_page_counts (copy);

  vdo_volume_index_get_stats (index, &st1);
  vdo_volume_index_get_stats (copy, &st2);
  ck_assert_mem_eq (&st1, &st2, sizeof st1);
  ck_assert_uint_eq (vdo_volume_index_open_chapter (copy),
                     vdo_volume_index_open_chapter (index));

  /* Same answers now, and after both carry on. */
  s = seed;
  for (i = 0; i < (3 * CHAPTERS + 5) * PUTS; i++) {
    random_name (&s, &name);
    ck_assert (same_answers (index, copy, &name));
  }
  for (c = 3 * CHAPTERS + 5; c < 3 * CHAPTERS + 45; c++) {
    vdo_volume_index_set_open_chapter (index, c);
    vdo_volume_index_set_open_chapter (copy, c);
    for (i = 0; i < PUTS; i++) {
      random_name (&s, &name);
      put_ok (index, &name, c, VDO_NO_CHAPTER);
      put_ok (copy, &name, c, VDO_NO_CHAPTER);
    }
  }
  vdo_volume_index_get_stats (index, &st1);
  vdo_volume_index_get_stats (copy, &st2);
  ck_assert_mem_eq (&st1, &st2, sizeof st1);
  s = seed;
  for (i = 0; i < (3 * CHAPTERS + 45) * PUTS; i++) {
    random_name (&s, &name);
    ck_assert (same_answers (index, copy, &name));
  }
  for (i = 0; i < vdo_volume_index_page_count (index); i++)
    ck_assert_mem_eq (vdo_volume_index_page (index, i),
                      vdo_volume_index_page (copy, i), 4096);

  free_saved (&sv);
  vdo_free_volume_index (copy);
  vdo_free_volume_index (index);
}
END_TEST

START_TEST (test_restore_rejects_corruption)
{
  struct vdo_volume_index *index = make_index (16, 16, 0, 256);
  struct vdo_volume_index *copy = make_index (16, 16, 0, 256);
  struct vdo_volume_index *other = make_index (16, 16, 0, 512);
  struct vdo_chunk_name name;
  struct saved sv, sv_other;
  uint8_t keep[VDO_VOLUME_INDEX_STATE_SIZE];
  uint64_t s = 14;
  unsigned int i;

  for (i = 0; i < 2000; i++) {
    random_name (&s, &name);
    put_ok (index, &name, 0, VDO_NO_CHAPTER);
  }
  save (index, &sv);
  save (other, &sv_other);
  ck_assert_uint_gt (sv.count, 2);
  memcpy (keep, sv.state, sizeof keep);

  /* A flipped state byte: checksum. */
  sv.state[33] ^= 1;
  ck_assert_int_eq (restore (copy, &sv), UDS_CORRUPT_DATA);
  memcpy (sv.state, keep, sizeof keep);
  /* Bad magic. */
  sv.state[0] ^= 1;
  ck_assert_int_eq (restore (copy, &sv), UDS_CORRUPT_DATA);
  memcpy (sv.state, keep, sizeof keep);
  /* Another config's state, well formed. */
  ck_assert_int_eq (vdo_volume_index_decode_state (copy, sv_other.state),
                    UDS_CORRUPT_DATA);

  /* A bucket count beyond the slots. */
  ck_assert_uint_ne (sv.data[0], 0);
  sv.data[0] = 200;
  ck_assert_int_eq (restore (copy, &sv), UDS_CORRUPT_DATA);
  ck_assert_uint_eq (entries_of (copy), 0);
  ck_assert_uint_eq (vdo_volume_index_open_chapter (copy), 0);
  /* Fewer entries than counted: a nonzero slot beyond the count. */
  memcpy (sv.data, vdo_volume_index_page (index, sv.numbers[0]), 4096);
  sv.data[0]--;
  ck_assert_int_eq (restore (copy, &sv), UDS_CORRUPT_DATA);
  memcpy (sv.data, vdo_volume_index_page (index, sv.numbers[0]), 4096);
  /* A nonempty page left out: the entry count does not add up. */
  sv.count--;
  ck_assert_int_eq (restore (copy, &sv), UDS_CORRUPT_DATA);
  sv.count++;

  /* And the intact save still restores. */
  ck_assert_int_eq (restore (copy, &sv), VDO_SUCCESS);
  ck_assert_uint_eq (entries_of (copy), 2000);

  free_saved (&sv);
  free_saved (&sv_other);
  vdo_free_volume_index (other);
  vdo_free_volume_index (copy);
  vdo_free_volume_index (index);
}
END_TEST

Suite *
volume_index_suite (void)
{
  Suite *s = suite_create ("volume_index");
  TCase *tc = tcase_create ("core");

  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_insert_all_found);
  tcase_add_loop_test (tc, test_false_positive_rate, 0,
                       sizeof fp_configs / sizeof fp_configs[0]);
  tcase_add_test (tc, test_newest_first);
  tcase_add_test (tc, test_window_expiry);
  tcase_add_test (tc, test_window_run_far_steps);
  tcase_add_test (tc, test_window_run_far_jumps);
  tcase_add_test (tc, test_window_big_jump);
  tcase_add_test (tc, test_sparse_expiry);
  tcase_add_test (tc, test_move_from_vcn);
  tcase_add_test (tc, test_eviction_keeps_newest);
  tcase_add_test (tc, test_steady_state_at_capacity);
  tcase_add_test (tc, test_memory_per_entry);
  tcase_add_test (tc, test_bad_config);
  tcase_add_test (tc, test_quarter_gb_lazy);
  tcase_add_test (tc, test_page_counts_follow_contents);
  tcase_add_test (tc, test_save_restore);
  tcase_add_test (tc, test_restore_rejects_corruption);
  suite_add_tcase (s, tc);
  return s;
}
