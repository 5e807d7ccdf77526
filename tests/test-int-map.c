/* nbdkit-vdo: the 64-bit key map (int-map.h), checked against GLib's
 * hash table as a model. */
#include <config.h>

#include <stdint.h>

#include <glib.h>

#include "int-map.h"
#include "unit-suites.h"

/* A value made from a key: odd, so never NULL. */
static uintptr_t
value_of (uint64_t key)
{
  return (uintptr_t) (key * 2 + 1);
}

/* How many ways MAP differs from MODEL: a missing or wrong entry, an
 * extra one, a wrong size.  (Counted, not asserted one by one: each Check
 * assertion costs a system call, and the loops below make millions.) */
static unsigned int
differences (struct vdo_int_map *map, GHashTable *model)
{
  GHashTableIter iter;
  gpointer k, v;
  size_t cursor = 0, seen = 0;
  unsigned int wrong = 0;
  uint64_t key;
  void *value;

  wrong += vdo_int_map_size (map) != g_hash_table_size (model);
  g_hash_table_iter_init (&iter, model);
  while (g_hash_table_iter_next (&iter, &k, &v))
    wrong += vdo_int_map_get (map, *(uint64_t *) k) != v;
  while ((value = vdo_int_map_next (map, &cursor, &key)) != NULL) {
    wrong += g_hash_table_lookup (model, &key) != value;
    seen++;
  }
  wrong += seen != g_hash_table_size (model);
  return wrong;
}

START_TEST (test_put_get_remove)
{
  struct vdo_int_map *map = vdo_int_map_new ();

  ck_assert_ptr_null (vdo_int_map_get (map, 7));
  ck_assert_ptr_null (vdo_int_map_put (map, 7, (void *) value_of (7)));
  ck_assert_ptr_eq (vdo_int_map_get (map, 7), (void *) value_of (7));
  /* Replacing returns the old value and keeps the size. */
  ck_assert_ptr_eq (vdo_int_map_put (map, 7, (void *) value_of (8)),
                    (void *) value_of (7));
  ck_assert_uint_eq (vdo_int_map_size (map), 1);
  /* Key 0 and the largest key are ordinary keys. */
  vdo_int_map_put (map, 0, (void *) value_of (0));
  vdo_int_map_put (map, UINT64_MAX, (void *) value_of (1));
  ck_assert_ptr_eq (vdo_int_map_get (map, 0), (void *) value_of (0));
  ck_assert_ptr_eq (vdo_int_map_get (map, UINT64_MAX), (void *) value_of (1));
  ck_assert_ptr_eq (vdo_int_map_remove (map, 7), (void *) value_of (8));
  ck_assert_ptr_null (vdo_int_map_remove (map, 7));
  ck_assert_ptr_null (vdo_int_map_get (map, 7));
  ck_assert_uint_eq (vdo_int_map_size (map), 2);
  vdo_int_map_free (map);
}
END_TEST

/* Random puts and removes over a small key space (long probe runs that
 * wrap around the table's end, and removals from their middles), and
 * over runs of consecutive keys, as LBNs and PBNs come. */
static void
random_operations (uint64_t key_space, uint64_t stride, unsigned int seed)
{
  struct vdo_int_map *map = vdo_int_map_new ();
  GHashTable *model = g_hash_table_new_full (g_int64_hash, g_int64_equal,
                                             g_free, NULL);
  GRand *rand = g_rand_new_with_seed (seed);
  unsigned int i, wrong = 0;

  for (i = 0; i < 200000; i++) {
    uint64_t key = (uint64_t) g_rand_int_range (rand, 0, (gint32) key_space)
                   * stride;
    void *expected = g_hash_table_lookup (model, &key);

    /* Lean towards puts at first, so the map grows, then balance. */
    if (g_rand_int_range (rand, 0, 100) < (i < 50000 ? 70 : 50)) {
      uint64_t *k = g_new (uint64_t, 1);
      void *value = (void *) value_of (key + i);

      *k = key;
      wrong += vdo_int_map_put (map, key, value) != expected;
      g_hash_table_replace (model, k, value);
    }
    else {
      wrong += vdo_int_map_remove (map, key) != expected;
      g_hash_table_remove (model, &key);
    }
    wrong += vdo_int_map_get (map, key) != g_hash_table_lookup (model, &key);
    if (i % 10000 == 0)
      wrong += differences (map, model);
  }
  wrong += differences (map, model);
  ck_assert_uint_eq (wrong, 0);
  /* Emptied in random order, it is empty. */
  while (g_hash_table_size (model) > 0) {
    GHashTableIter iter;
    gpointer k;

    g_hash_table_iter_init (&iter, model);
    g_hash_table_iter_next (&iter, &k, NULL);
    ck_assert_ptr_nonnull (vdo_int_map_remove (map, *(uint64_t *) k));
    g_hash_table_iter_remove (&iter);
  }
  ck_assert_uint_eq (differences (map, model), 0);
  g_rand_free (rand);
  g_hash_table_destroy (model);
  vdo_int_map_free (map);
}

START_TEST (test_random_small_key_space)
{
  random_operations (300, 1, 1);
}
END_TEST

/* Many small maps, each of up to 15 random keys in 32 slots: in some,
 * runs of colliding keys wrap past the last slot, and removals must
 * shift entries back across the end. */
START_TEST (test_runs_that_wrap)
{
  GRand *rand = g_rand_new_with_seed (4);
  unsigned int round, i, wrong = 0;

  for (round = 0; round < 400; round++) {
    struct vdo_int_map *map = vdo_int_map_new ();
    GHashTable *model = g_hash_table_new (g_int64_hash, g_int64_equal);
    uint64_t pool[15];

    for (i = 0; i < 15; i++)
      pool[i] = (uint64_t) g_rand_int (rand) << 32 | g_rand_int (rand);
    for (i = 0; i < 500; i++) {
      uint64_t *key = &pool[g_rand_int_range (rand, 0, 15)];
      void *expected = g_hash_table_lookup (model, key);

      if (g_rand_boolean (rand)) {
        wrong += vdo_int_map_put (map, *key, (void *) value_of (*key))
                 != expected;
        g_hash_table_insert (model, key, (void *) value_of (*key));
      }
      else {
        wrong += vdo_int_map_remove (map, *key) != expected;
        g_hash_table_remove (model, key);
      }
      wrong += differences (map, model);
    }
    ck_assert_msg (wrong == 0, "round %u: %u differences", round, wrong);
    g_hash_table_destroy (model);
    vdo_int_map_free (map);
  }
  g_rand_free (rand);
}
END_TEST

START_TEST (test_random_consecutive_runs)
{
  random_operations (5000, 1, 2);
}
END_TEST

START_TEST (test_random_spread_keys)
{
  /* Multiples of a large power of two: the hash must still spread them. */
  random_operations (3000, UINT64_C (1) << 40, 3);
}
END_TEST

Suite *
int_map_suite (void)
{
  Suite *s = suite_create ("int_map");
  TCase *tc = tcase_create ("int_map");

  tcase_add_test (tc, test_put_get_remove);
  tcase_add_test (tc, test_random_small_key_space);
  tcase_add_test (tc, test_runs_that_wrap);
  tcase_add_test (tc, test_random_consecutive_runs);
  tcase_add_test (tc, test_random_spread_keys);
  suite_add_tcase (s, tc);
  return s;
}
