/* nbdkit-vdo: open-addressed map from 64-bit keys to pointers. */
#include <config.h>

#include <stdbool.h>

#include <glib.h>

#include "int-map.h"

struct entry {
  uint64_t key;
  void *value;                  /* NULL: the slot is empty */
};

struct vdo_int_map {
  struct entry *slots;
  size_t mask;                  /* slot count - 1; a power of two */
  unsigned int shift;           /* 64 - log2 (slot count) */
  size_t size;
};

#define MIN_SLOTS 16

/* Fibonacci hashing: LBNs and PBNs come in runs, and multiplying by 2^64
 * over the golden ratio spreads a run over the whole table. */
static inline size_t
home_slot (const struct vdo_int_map *map, uint64_t key)
{
  return (size_t) ((key * UINT64_C (0x9E3779B97F4A7C15)) >> map->shift);
}

static void
set_slots (struct vdo_int_map *map, size_t count)
{
  unsigned int bits = 0;

  while (((size_t) 1 << bits) < count)
    bits++;
  map->slots = g_new0 (struct entry, (size_t) 1 << bits);
  map->mask = ((size_t) 1 << bits) - 1;
  map->shift = 64 - bits;
}

struct vdo_int_map *
vdo_int_map_new (void)
{
  struct vdo_int_map *map = g_new0 (struct vdo_int_map, 1);

  set_slots (map, MIN_SLOTS);
  return map;
}

void
vdo_int_map_free (struct vdo_int_map *map)
{
  if (map == NULL)
    return;
  g_free (map->slots);
  g_free (map);
}

size_t
vdo_int_map_size (const struct vdo_int_map *map)
{
  return map->size;
}

/* The slot holding KEY, or the empty slot that ends its probe. */
static size_t
find_slot (const struct vdo_int_map *map, uint64_t key)
{
  size_t i = home_slot (map, key);

  while (map->slots[i].value != NULL && map->slots[i].key != key)
    i = (i + 1) & map->mask;
  return i;
}

void *
vdo_int_map_get (const struct vdo_int_map *map, uint64_t key)
{
  return map->slots[find_slot (map, key)].value;
}

static void
grow (struct vdo_int_map *map)
{
  struct entry *old = map->slots;
  size_t old_count = map->mask + 1, i;

  set_slots (map, old_count * 2);
  for (i = 0; i < old_count; i++) {
    if (old[i].value != NULL)
      map->slots[find_slot (map, old[i].key)] = old[i];
  }
  g_free (old);
}

void *
vdo_int_map_put (struct vdo_int_map *map, uint64_t key, void *value)
{
  size_t i = find_slot (map, key);
  void *old = map->slots[i].value;

  g_assert (value != NULL);
  if (old != NULL) {
    map->slots[i].value = value;
    return old;
  }
  /* At most half full keeps probes short. */
  if ((map->size + 1) * 2 > map->mask + 1) {
    grow (map);
    i = find_slot (map, key);
  }
  map->slots[i].key = key;
  map->slots[i].value = value;
  map->size++;
  return NULL;
}

/* Is slot I cyclically within (FROM, TO]? */
static inline bool
cyclically_between (size_t from, size_t i, size_t to)
{
  return from <= to ? from < i && i <= to : from < i || i <= to;
}

void *
vdo_int_map_remove (struct vdo_int_map *map, uint64_t key)
{
  size_t hole = find_slot (map, key), j;
  void *value = map->slots[hole].value;

  if (value == NULL)
    return NULL;
  /* Backward shift: pull later entries of the run into the hole unless
   * their home lies after it, so no probe ever crosses an empty slot
   * that used to be full (no tombstones). */
  for (j = (hole + 1) & map->mask; map->slots[j].value != NULL;
       j = (j + 1) & map->mask) {
    if (!cyclically_between (hole, home_slot (map, map->slots[j].key), j)) {
      map->slots[hole] = map->slots[j];
      hole = j;
    }
  }
  map->slots[hole].value = NULL;
  map->size--;
  return value;
}

void *
vdo_int_map_next (const struct vdo_int_map *map, size_t *cursor,
                  uint64_t *key)
{
  while (*cursor <= map->mask) {
    const struct entry *e = &map->slots[(*cursor)++];

    if (e->value != NULL) {
      if (key != NULL)
        *key = e->key;
      return e->value;
    }
  }
  return NULL;
}
