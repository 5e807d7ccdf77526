/* nbdkit-vdo: the volume index, in memory: for each remembered chunk
 * name, the newest chapter that holds its record.
 *
 * This is the part of the dedupe index that bounds its memory, playing
 * the role of UDS's volume index (uds-index.md 5.6) with a different
 * structure: a table of 64-byte buckets of small fixed-width entries.
 * An entry is a tag (name bits not used to pick buckets) and the
 * chapter's virtual chapter number (VCN) modulo 2^chapter_bits; each
 * name has two candidate buckets and goes to the less full one.  An
 * entry costs about 3.4 bytes (dense) or 4 bytes (sparse), so a table
 * sized for UDS's record count fits UDS's memory setting (uds-index.md
 * 6.2: 3.25 bytes per record).
 *
 * A lookup returns only candidates: a tag match is not proof, the
 * caller confirms the full name in the chapter's records.
 *
 * Window: chapters [open - chapters + 1, open] are live.  In a sparse
 * index, names that are not hooks (dedupe-format.h) are live only in
 * the newest dense_chapters chapters; hooks in all of them.  Expired
 * entries are dropped lazily and by an incremental sweep, so a stored
 * VCN is never mistaken for a later one after the counter wraps.  When
 * both of a name's buckets are full of live entries, the entry of the
 * oldest chapter among them is evicted (counted): old names age out
 * first.
 *
 * Pure memory: no I/O, no threads, no locks.  One thread owns it.
 */
#ifndef VDO_VOLUME_INDEX_H
#define VDO_VOLUME_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dedupe-format.h"

struct vdo_volume_index_config {
  uint32_t chapters;            /* the window, in chapters (>= 2) */
  uint32_t dense_chapters;      /* == chapters for a dense index */
  uint32_t sample_rate;         /* 0 dense, 32 sparse */
  uint64_t records_per_chapter;
};

struct vdo_volume_index_stats {
  uint64_t entries;             /* live or not yet swept */
  uint64_t capacity;            /* entries the table was sized for */
  uint64_t evictions;           /* live entries dropped for room */
  uint64_t memory_bytes;        /* the table */
};

struct vdo_volume_index;

/* Bytes the table takes for CONFIG, so the caller can check a memory
 * budget and size a save before making it. */
uint64_t vdo_volume_index_memory_bytes
  (const struct vdo_volume_index_config *config);

/* An empty index whose open chapter is VCN 0.  The table's memory is
 * an anonymous mapping the kernel zeroes lazily, so RSS grows as it
 * fills.  ENOMEM (logged) or UDS_INVALID_ARGUMENT (logged) for a config
 * out of range; vdo_volume_index_memory_bytes returns 0 for those. */
int vdo_make_volume_index (const struct vdo_volume_index_config *config,
                           struct vdo_volume_index **index_ret);
void vdo_free_volume_index (struct vdo_volume_index *index);

/* Make VCN the open chapter (>= the current one).  Chapters that leave
 * the window expire; a bounded slice of the table is swept per call. */
void vdo_volume_index_set_open_chapter (struct vdo_volume_index *index,
                                        uint64_t vcn);
uint64_t vdo_volume_index_open_chapter (const struct vdo_volume_index *index);

/* Live chapters whose entries match NAME's tag in its buckets, newest
 * first and each once, at most MAX of them; returns how many.  Changes
 * nothing (expired entries are skipped, not purged).  At most 42
 * candidates exist, but in practice one or two. */
unsigned int vdo_volume_index_lookup (const struct vdo_volume_index *index,
                                      const struct vdo_chunk_name *name,
                                      uint64_t *vcns, unsigned int max);

/* Record that NAME's record is now in chapter VCN (normally the open
 * one, or an older live one while rebuilding).  If FROM_VCN is live and
 * an entry with NAME's tag and FROM_VCN exists (the caller found NAME's
 * record in that chapter), that entry is moved; otherwise an entry is
 * added.  An entry with NAME's tag and a chapter newer than VCN, or VCN
 * itself, is left alone and nothing is added (a rebuild replaying old
 * chapters; a lookup already yields VCN).  A non-hook name of a sparse
 * index with VCN older than the dense chapters adds nothing either.
 * Returns VDO_SUCCESS, or UDS_INVALID_ARGUMENT for a VCN outside the
 * window. */
/* FROM_VCN for "no earlier chapter". */
#define VDO_NO_CHAPTER UINT64_MAX
int vdo_volume_index_put (struct vdo_volume_index *index,
                          const struct vdo_chunk_name *name, uint64_t vcn,
                          uint64_t from_vcn);

/* Drop the entry with NAME's tag and chapter VCN, if any: the caller
 * found the candidate was not NAME's after all and NAME has no record
 * there; used only to discard entries known to be useless. */
void vdo_volume_index_remove (struct vdo_volume_index *index,
                              const struct vdo_chunk_name *name,
                              uint64_t vcn);

void vdo_volume_index_get_stats (const struct vdo_volume_index *index,
                                 struct vdo_volume_index_stats *stats);

/* --- Saving --------------------------------------------------------- */

/* The table is saved as its raw pages, VDO_BLOCK_SIZE each, plus a small
 * state record; pages that are all zero need not be written, since a
 * restored table starts zeroed. */
uint64_t vdo_volume_index_page_count (const struct vdo_volume_index *index);
/* Page N of the table (VDO_BLOCK_SIZE bytes), for writing; the pointer
 * stays valid until the index changes. */
const uint8_t *vdo_volume_index_page (const struct vdo_volume_index *index,
                                      uint64_t n);
/* True when page N holds only zero bytes. */
bool vdo_volume_index_page_is_empty (const struct vdo_volume_index *index,
                                     uint64_t n);

#define VDO_VOLUME_INDEX_STATE_SIZE 64
/* Everything else a restore needs (open chapter, sweep position, counts,
 * the config it was made with), as bytes. */
void vdo_volume_index_encode_state (const struct vdo_volume_index *index,
                                    uint8_t state[VDO_VOLUME_INDEX_STATE_SIZE]);
/* Restore into an index made with the same config: first the state
 * (UDS_CORRUPT_DATA, logged, if it is malformed or from another config;
 * on success the table is cleared), then each saved page with
 * vdo_volume_index_restore_page. */
int vdo_volume_index_decode_state (struct vdo_volume_index *index,
                                   const uint8_t state[VDO_VOLUME_INDEX_STATE_SIZE]);
void vdo_volume_index_restore_page (struct vdo_volume_index *index,
                                    uint64_t n, const uint8_t *page);
/* After the pages are in: recount entries and check every bucket is
 * well formed and the count matches the state's; UDS_CORRUPT_DATA,
 * logged, if not, and the index is left empty at open chapter 0. */
int vdo_volume_index_finish_restore (struct vdo_volume_index *index);

#endif /* VDO_VOLUME_INDEX_H */
