/* nbdkit-vdo: a hash map from 64-bit keys (LBNs, PBNs) to pointers.
 *
 * The data path looks up several such keys per block: the LBN lock, the
 * tree pages on the way down, the leaf in the block map cache.  A GLib
 * table keeps each key in the caller's structure and compares through
 * two pointers, so a lookup misses the cache two or three times.  Here
 * keys and values sit side by side in one open-addressed array (linear
 * probing, at most half full), so a lookup usually reads one cache line.
 *
 * Values must not be NULL: NULL means "absent".  Like GLib, growing aborts
 * when memory runs out.  No locking: a map belongs to its zone's thread.
 */
#ifndef VDO_INT_MAP_H
#define VDO_INT_MAP_H

#include <stddef.h>
#include <stdint.h>

struct vdo_int_map;

/* An empty map; it grows as entries are put. */
struct vdo_int_map *vdo_int_map_new (void);
void vdo_int_map_free (struct vdo_int_map *map);

size_t vdo_int_map_size (const struct vdo_int_map *map);

/* The value of KEY, or NULL. */
void *vdo_int_map_get (const struct vdo_int_map *map, uint64_t key);

/* Map KEY to VALUE (not NULL), replacing any value it had; returns the
 * value replaced, or NULL. */
void *vdo_int_map_put (struct vdo_int_map *map, uint64_t key, void *value);

/* Remove KEY; returns its value, or NULL if it was absent. */
void *vdo_int_map_remove (struct vdo_int_map *map, uint64_t key);

/* Visit every entry: start with *CURSOR = 0, and each call returns the
 * next value (setting *KEY if KEY is not NULL), or NULL at the end.  The
 * map must not change during a visit. */
void *vdo_int_map_next (const struct vdo_int_map *map, size_t *cursor,
                        uint64_t *key);

#endif /* VDO_INT_MAP_H */
