/* nbdkit-vdo: reading the recovery journal back, for crash recovery and
 * read-only rebuild (vdo-journals.md 1.8, 1.10, 7.3 R2-R5, 7.4 B2-B3).
 *
 * Pure functions over journal blocks already in memory: no I/O and no
 * threads, so every rule can be tested on synthetic blocks.  A reader
 * goes through the journal partition twice:
 *
 *  1. every block, in physical order, through vdo_scan_journal_block
 *     (R2): the highest valid block and the two heads;
 *  2. the blocks vdo_journal_parse_range names, placed in a buffer of the
 *     whole partition at their index (sequence number mod journal size),
 *     through vdo_parse_journal_for_recovery (R3-R5) or
 *     vdo_parse_journal_for_rebuild (B3).  Blocks outside the range are
 *     never looked at, so the rest of the buffer may stay untouched.
 *
 * The result says where the usable journal ends and lists the block map
 * changes to replay, each numbered in journal order.
 */
#ifndef VDO_JOURNAL_PARSER_H
#define VDO_JOURNAL_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"
#include "recovery-journal-format.h"
#include "slab-journal-format.h"
#include "super-block.h"

struct vdo_journal_parser_config {
  nonce_t nonce;
  uint8_t recovery_count;               /* complete_recoveries mod 256 */
  block_count_t journal_size;           /* blocks, a power of two */
  /* The super block's journal_start: a lower bound for the highest
   * block, so older blocks are never taken for the tail. */
  sequence_number_t journal_start;
  /* Entry bounds (1.7): page PBNs below physical_blocks, mapped PBNs
   * data blocks of this depot. */
  block_count_t physical_blocks;
  const struct slab_depot_state_2_0 *depot;
};

/* What the scan of every block header found (R2). */
struct vdo_journal_bounds {
  bool found;                   /* a valid block at or after journal_start */
  sequence_number_t highest_tail;
  sequence_number_t block_map_head;
  sequence_number_t slab_journal_head;
};

void vdo_start_journal_scan (const struct vdo_journal_parser_config *config,
                             struct vdo_journal_bounds *bounds);

/* Feed block INDEX of the partition (only its header is read).  Blocks
 * must come in index order, 0 first. */
void vdo_scan_journal_block (const struct vdo_journal_parser_config *config,
                             struct vdo_journal_bounds *bounds,
                             block_count_t index,
                             const uint8_t block[VDO_BLOCK_SIZE]);

/* The sequence numbers the parse reads, first..last inclusive (at most a
 * journal's length); false when there is nothing to read. */
bool vdo_journal_parse_range (const struct vdo_journal_parser_config *config,
                              const struct vdo_journal_bounds *bounds,
                              bool rebuild, sequence_number_t *first,
                              sequence_number_t *last);

/* One change of a block map slot, numbered in journal order. */
struct vdo_journal_mapping {
  physical_block_number_t page_pbn;     /* the block map page */
  physical_block_number_t pbn;          /* the new value of the slot */
  uint32_t serial;
  uint16_t slot;
  uint8_t state;                        /* enum vdo_mapping_state */
};

struct vdo_journal_parse {
  struct vdo_journal_bounds bounds;
  uint8_t format;                       /* metadata type of the blocks used */
  /* Recovery: the usable journal is every entry from (head, 0) up to,
   * not including, end; tail is its last block with entries (or the
   * block before end's).  Every block before end's is full. */
  sequence_number_t head;
  sequence_number_t tail;
  struct journal_point end;
  uint64_t entry_count;                 /* usable entries from head */
  /* Recovery with entries: the counters as of end (R5); otherwise the
   * super block's stand. */
  bool have_counters;
  block_count_t logical_blocks_used;
  block_count_t block_map_data_blocks;
  /* R4 (from block_map_head) or B3; malloc'd. */
  struct vdo_journal_mapping *mappings;
  size_t mapping_count;
  uint64_t dropped_entries;             /* rebuild: invalid, skipped */
};

/* R3-R5 over BUFFER (journal_size blocks, by index).  Errors, logged:
 * VDO_CORRUPT_JOURNAL (heads beyond the tail, formats mixed, an entry
 * out of bounds), ENOMEM; and, not logged, VDO_UNSUPPORTED_VERSION (a
 * format 1 journal, which only rebuild reads).  On error PARSE holds
 * nothing to free. */
int vdo_parse_journal_for_recovery
  (const struct vdo_journal_parser_config *config,
   const struct vdo_journal_bounds *bounds, const uint8_t *buffer,
   struct vdo_journal_parse *parse);

/* B3: every valid entry of every exact block from block_map_head to the
 * highest block, holes and short blocks notwithstanding; invalid entries
 * are dropped.  Only ENOMEM fails. */
int vdo_parse_journal_for_rebuild
  (const struct vdo_journal_parser_config *config,
   const struct vdo_journal_bounds *bounds, const uint8_t *buffer,
   struct vdo_journal_parse *parse);

void vdo_free_journal_parse (struct vdo_journal_parse *parse);

/* Walk a recovery parse's usable journal: decode the next entry at or
 * after *POINT (start at (sequence, 0) for any sequence from head on),
 * give its own point in *AT (unless NULL: sequence number and index in
 * its block) and move *POINT past it.  False once *POINT reaches the
 * end. */
bool vdo_next_journal_entry (const struct vdo_journal_parser_config *config,
                             const struct vdo_journal_parse *parse,
                             const uint8_t *buffer,
                             struct journal_point *point,
                             struct recovery_journal_entry *entry,
                             struct journal_point *at);

/* The rules of 1.7 for one entry: VDO_SUCCESS or VDO_CORRUPT_JOURNAL
 * (not logged). */
int vdo_check_journal_entry (const struct vdo_journal_parser_config *config,
                             const struct recovery_journal_entry *entry);

#endif /* VDO_JOURNAL_PARSER_H */
