/* nbdkit-vdo: the dedupe index's open chapter: the newest records, in
 * memory, until there are a chapter's worth (dedupe-index.h).
 *
 * A name maps to its advice through an open-addressing hash table, so
 * a lookup costs O(1) whatever the chapter's size.  Closing sorts the
 * records by name and packs them into record blocks (index-format.h)
 * ready to be written, then empties the chapter for reuse.
 *
 * Pure memory; one thread owns it.
 */
#ifndef VDO_OPEN_CHAPTER_H
#define VDO_OPEN_CHAPTER_H

#include <stdbool.h>
#include <stdint.h>

#include "dedupe-format.h"
#include "index-format.h"

struct vdo_open_chapter;

/* An empty chapter for CAPACITY records (1 .. 2^28); ENOMEM (logged) or
 * UDS_INVALID_ARGUMENT. */
int vdo_make_open_chapter (uint64_t capacity,
                           struct vdo_open_chapter **chapter_ret);
void vdo_free_open_chapter (struct vdo_open_chapter *chapter);

void vdo_reset_open_chapter (struct vdo_open_chapter *chapter);
uint64_t vdo_open_chapter_size (const struct vdo_open_chapter *chapter);
uint64_t vdo_open_chapter_capacity (const struct vdo_open_chapter *chapter);
bool vdo_open_chapter_is_full (const struct vdo_open_chapter *chapter);
uint64_t vdo_open_chapter_memory_bytes (const struct vdo_open_chapter *chapter);

/* Copy NAME's advice out if NAME is here. */
bool vdo_open_chapter_find (const struct vdo_open_chapter *chapter,
                            const struct vdo_chunk_name *name,
                            uint8_t advice[VDO_ADVICE_SIZE]);

enum vdo_open_chapter_put_result {
  VDO_OPEN_CHAPTER_ADDED,       /* a new record */
  VDO_OPEN_CHAPTER_PRESENT,     /* already here (advice replaced if asked) */
  VDO_OPEN_CHAPTER_FULL,        /* absent and no room: nothing done */
};

/* Store NAME with ADVICE; a record already here keeps its advice unless
 * OVERWRITE. */
enum vdo_open_chapter_put_result
vdo_open_chapter_put (struct vdo_open_chapter *chapter,
                      const struct vdo_chunk_name *name,
                      const uint8_t advice[VDO_ADVICE_SIZE], bool overwrite);

/* Record I (0 .. size - 1) in the order they were added, for saving. */
const struct vdo_index_record *
vdo_open_chapter_record (const struct vdo_open_chapter *chapter, uint64_t i);

/* Sort the records and pack them into BLOCK_COUNT record blocks (enough
 * for the capacity) at BLOCKS, stamped with INSTANCE_NONCE and VCN;
 * PREFIXES gets each block's first-name prefix (blocks left empty get
 * UINT32_MAX, so they sort last).  The chapter is then empty. */
void vdo_close_open_chapter (struct vdo_open_chapter *chapter,
                             uint64_t instance_nonce, uint64_t vcn,
                             uint32_t block_count, uint8_t *blocks,
                             uint32_t *prefixes);

#endif /* VDO_OPEN_CHAPTER_H */
