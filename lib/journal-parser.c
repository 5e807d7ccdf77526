/* nbdkit-vdo: reading the recovery journal back (recovery and rebuild). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "journal-parser.h"
#include "logger.h"
#include "status.h"
#include "volume-layout.h"

static const uint8_t *
block_of (const struct vdo_journal_parser_config *config,
          const uint8_t *buffer, sequence_number_t sequence)
{
  return buffer + vdo_recovery_journal_block_index (sequence,
                                                    config->journal_size)
                  * VDO_BLOCK_SIZE;
}

static void
header_of (const struct vdo_journal_parser_config *config,
           const uint8_t *buffer, sequence_number_t sequence,
           struct recovery_block_header *header)
{
  vdo_decode_recovery_block_header (block_of (config, buffer, sequence),
                                    header);
}

static bool
is_exact (const struct vdo_journal_parser_config *config,
          const struct recovery_block_header *header,
          sequence_number_t sequence)
{
  return vdo_is_exact_recovery_block (header, config->nonce,
                                      config->recovery_count, sequence);
}

static void
sector_of (const uint8_t *block, unsigned int sector,
           struct recovery_journal_sector_header *header)
{
  vdo_decode_recovery_journal_sector_header (block + sector * VDO_SECTOR_SIZE,
                                             header);
}

static sequence_number_t
min_sequence (sequence_number_t a, sequence_number_t b)
{
  return a < b ? a : b;
}

/* --- R2: the highest block and the heads ------------------------------ */

void
vdo_start_journal_scan (const struct vdo_journal_parser_config *config,
                        struct vdo_journal_bounds *bounds)
{
  memset (bounds, 0, sizeof *bounds);
  bounds->highest_tail = config->journal_start;
}

void
vdo_scan_journal_block (const struct vdo_journal_parser_config *config,
                        struct vdo_journal_bounds *bounds, block_count_t index,
                        const uint8_t block[VDO_BLOCK_SIZE])
{
  struct recovery_block_header header;

  vdo_decode_recovery_block_header (block, &header);
  if (!vdo_is_valid_recovery_block (&header, config->nonce,
                                    config->recovery_count)
      || !vdo_is_recovery_block_in_place (&header, config->journal_size,
                                          index))
    return;
  if (header.sequence_number >= bounds->highest_tail) {
    bounds->found = true;
    bounds->highest_tail = header.sequence_number;
  }
  /* As the kernel does: heads count only from the first block found in
   * physical order; they grow with the sequence number anyway. */
  if (!bounds->found)
    return;
  if (header.block_map_head > bounds->block_map_head)
    bounds->block_map_head = header.block_map_head;
  if (header.slab_journal_head > bounds->slab_journal_head)
    bounds->slab_journal_head = header.slab_journal_head;
}

/* The oldest block worth reading: none more than a journal's length
 * behind the highest can still be in place. */
static sequence_number_t
clamp_to_journal (const struct vdo_journal_parser_config *config,
                  sequence_number_t first, sequence_number_t highest)
{
  if (highest >= config->journal_size
      && first < highest - config->journal_size + 1)
    return highest - config->journal_size + 1;
  return first;
}

bool
vdo_journal_parse_range (const struct vdo_journal_parser_config *config,
                         const struct vdo_journal_bounds *bounds,
                         bool rebuild, sequence_number_t *first,
                         sequence_number_t *last)
{
  sequence_number_t start;

  *first = *last = 0;
  if (!bounds->found)
    return false;
  start = rebuild ? bounds->block_map_head
          : min_sequence (bounds->block_map_head, bounds->slab_journal_head);
  if (start > bounds->highest_tail)
    return false;
  *first = clamp_to_journal (config, start, bounds->highest_tail);
  *last = bounds->highest_tail;
  return true;
}

/* --- Entries ----------------------------------------------------------- */

static bool
is_data_block (const struct vdo_journal_parser_config *config,
               physical_block_number_t pbn)
{
  return vdo_is_physical_data_block (config->depot, pbn);
}

int
vdo_check_journal_entry (const struct vdo_journal_parser_config *config,
                         const struct recovery_journal_entry *entry)
{
  if (entry->slot_pbn >= config->physical_blocks
      || entry->slot >= VDO_BLOCK_MAP_ENTRIES_PER_PAGE
      || !vdo_is_valid_location (entry->mapping)
      || !vdo_is_valid_location (entry->unmapping)
      || !is_data_block (config, entry->mapping.pbn)
      || !is_data_block (config, entry->unmapping.pbn))
    return VDO_CORRUPT_JOURNAL;
  /* A tree page is a new, uncompressed, real block in an empty slot. */
  if (entry->operation == VDO_JOURNAL_BLOCK_MAP_REMAPPING
      && (vdo_is_state_compressed (entry->mapping.state)
          || entry->mapping.pbn == VDO_ZERO_BLOCK
          || entry->unmapping.state != VDO_MAPPING_STATE_UNMAPPED
          || entry->unmapping.pbn != VDO_ZERO_BLOCK))
    return VDO_CORRUPT_JOURNAL;
  return VDO_SUCCESS;
}

static void
log_bad_entry (const struct journal_point *point,
               const struct recovery_journal_entry *entry)
{
  vdo_log_error ("recovery journal block %" PRIu64 " entry %u is corrupt: "
                 "operation %u on block map page %" PRIu64 " slot %u, from "
                 "PBN %" PRIu64 " (state %u) to PBN %" PRIu64 " (state %u)",
                 point->sequence_number, point->entry_count,
                 entry->operation, entry->slot_pbn, entry->slot,
                 entry->unmapping.pbn, entry->unmapping.state,
                 entry->mapping.pbn, entry->mapping.state);
}

/* Decode entry INDEX of a block of FORMAT; false for a format 1
 * decrement, which carries nothing to replay. */
static bool
decode_entry (const uint8_t *block, uint8_t format, unsigned int index,
              struct recovery_journal_entry *entry)
{
  const uint8_t *packed = block + vdo_recovery_journal_entry_offset (format,
                                                                     index);
  struct recovery_journal_entry old;

  if (format == VDO_METADATA_RECOVERY_JOURNAL_2) {
    vdo_decode_recovery_journal_entry (packed, entry);
    return true;
  }
  vdo_decode_recovery_journal_entry_1 (packed, &old);
  return vdo_convert_recovery_journal_entry_1 (&old, entry);
}

static unsigned int
entries_in_block (const struct vdo_journal_parse *parse,
                  sequence_number_t sequence)
{
  if (sequence == parse->end.sequence_number)
    return parse->end.entry_count;
  return vdo_recovery_journal_block_capacity (parse->format);
}

bool
vdo_next_journal_entry (const struct vdo_journal_parser_config *config,
                        const struct vdo_journal_parse *parse,
                        const uint8_t *buffer, struct journal_point *point,
                        struct recovery_journal_entry *entry,
                        struct journal_point *at)
{
  while (vdo_before_journal_point (point, &parse->end)) {
    if (point->entry_count < entries_in_block (parse,
                                               point->sequence_number)) {
      decode_entry (block_of (config, buffer, point->sequence_number),
                    parse->format, point->entry_count, entry);
      if (at != NULL)
        *at = *point;
      point->entry_count++;
      return true;
    }
    point->sequence_number++;
    point->entry_count = 0;
  }
  return false;
}

static int
append_mapping (struct vdo_journal_parse *parse, size_t *capacity,
                const struct recovery_journal_entry *entry)
{
  struct vdo_journal_mapping *mapping;

  if (parse->mapping_count == *capacity) {
    size_t grown = *capacity == 0 ? 4096 : *capacity * 2;
    struct vdo_journal_mapping *bigger = realloc (parse->mappings,
                                                  grown * sizeof *bigger);

    if (bigger == NULL) {
      vdo_log_error ("cannot allocate %zu journal mappings", grown);
      return ENOMEM;
    }
    parse->mappings = bigger;
    *capacity = grown;
  }
  mapping = &parse->mappings[parse->mapping_count];
  mapping->page_pbn = entry->slot_pbn;
  mapping->slot = entry->slot;
  mapping->pbn = entry->mapping.pbn;
  mapping->state = entry->mapping.state;
  mapping->serial = (uint32_t) parse->mapping_count;
  parse->mapping_count++;
  return VDO_SUCCESS;
}

static void
start_parse (const struct vdo_journal_bounds *bounds,
             struct vdo_journal_parse *parse)
{
  memset (parse, 0, sizeof *parse);
  parse->bounds = *bounds;
  parse->head = parse->tail = bounds->highest_tail;
  parse->end.sequence_number = bounds->highest_tail;
}

void
vdo_free_journal_parse (struct vdo_journal_parse *parse)
{
  free (parse->mappings);
  parse->mappings = NULL;
  parse->mapping_count = 0;
}

/* --- Recovery (R3-R5) -------------------------------------------------- */

static int
check_heads (const struct vdo_journal_parse *parse)
{
  const struct vdo_journal_bounds *bounds = &parse->bounds;

  if (bounds->block_map_head <= parse->tail
      && bounds->slab_journal_head <= parse->tail)
    return VDO_SUCCESS;
  vdo_log_error ("recovery journal heads are beyond its usable end: block "
                 "map head %" PRIu64 ", slab journal head %" PRIu64
                 ", last usable block %" PRIu64, bounds->block_map_head,
                 bounds->slab_journal_head, parse->tail);
  return VDO_CORRUPT_JOURNAL;
}

/* R3: walk from the head while blocks are exact, full and untorn.
 * Returns the total number of usable entries, or -1 (logged) when the
 * formats are mixed. */
static int64_t
find_usable_end (const struct vdo_journal_parser_config *config,
                 const uint8_t *buffer, struct vdo_journal_parse *parse)
{
  struct recovery_block_header header;
  sequence_number_t i;
  int64_t total = 0;

  header_of (config, buffer, parse->head, &header);
  parse->format = header.metadata_type;
  for (i = parse->head; i <= parse->bounds.highest_tail; i++) {
    const uint8_t *block = block_of (config, buffer, i);
    unsigned int remaining, used = 0, s;

    parse->tail = i;
    parse->end.sequence_number = i;
    parse->end.entry_count = 0;
    header_of (config, buffer, i, &header);
    if (!is_exact (config, &header, i))
      break;
    if (header.metadata_type != parse->format) {
      vdo_log_error ("recovery journal block %" PRIu64 " is in format %u, "
                     "but the journal from block %" PRIu64 " is in format %u",
                     i, header.metadata_type, parse->head, parse->format);
      return -1;
    }
    remaining = header.entry_count;
    for (s = 1; s < VDO_SECTORS_PER_BLOCK; s++) {
      struct recovery_journal_sector_header sector;
      unsigned int capacity = vdo_recovery_journal_sector_capacity
                                (parse->format, s);
      unsigned int n;

      sector_of (block, s, &sector);
      /* A torn write: this sector never landed. */
      if (!vdo_is_valid_recovery_journal_sector (&header, &sector, s))
        break;
      n = sector.entry_count < remaining ? sector.entry_count : remaining;
      if (n > 0) {
        parse->end.entry_count = used + n;
        remaining -= n;
        total += n;
      }
      used += capacity;
      /* A short sector ends the block. */
      if (n < capacity || remaining == 0)
        break;
    }
    /* A partial or torn block ends the journal. */
    if (header.entry_count != vdo_recovery_journal_block_capacity
                                (parse->format)
        || remaining > 0)
      break;
  }
  return total;
}

/* Every usable entry must be in bounds; from the head, so neither the
 * block map nor the slab journals are touched before a bad one shows. */
static int
check_usable_entries (const struct vdo_journal_parser_config *config,
                      const uint8_t *buffer,
                      const struct vdo_journal_parse *parse)
{
  struct journal_point point = { parse->head, 0 }, at;
  struct recovery_journal_entry entry;

  while (vdo_next_journal_entry (config, parse, buffer, &point, &entry,
                                 &at)) {
    if (vdo_check_journal_entry (config, &entry) != VDO_SUCCESS) {
      log_bad_entry (&at, &entry);
      return VDO_CORRUPT_JOURNAL;
    }
  }
  return VDO_SUCCESS;
}

/* R4: the block map changes from the block map head on. */
static int
extract_recovery_mappings (const struct vdo_journal_parser_config *config,
                           const uint8_t *buffer,
                           struct vdo_journal_parse *parse)
{
  struct journal_point point = { parse->bounds.block_map_head, 0 };
  struct recovery_journal_entry entry;
  size_t capacity = 0;
  int result;

  while (vdo_next_journal_entry (config, parse, buffer, &point, &entry,
                                 NULL)) {
    result = append_mapping (parse, &capacity, &entry);
    if (result != VDO_SUCCESS)
      return result;
  }
  return VDO_SUCCESS;
}

/* R5: the counters as of the end, from the last block's header on. */
static void
compute_counters (const struct vdo_journal_parser_config *config,
                  const uint8_t *buffer, struct vdo_journal_parse *parse)
{
  struct recovery_block_header header;
  struct journal_point point = { parse->tail, 0 };
  struct recovery_journal_entry entry;

  header_of (config, buffer, parse->tail, &header);
  parse->logical_blocks_used = header.logical_blocks_used;
  parse->block_map_data_blocks = header.block_map_data_blocks;
  while (vdo_next_journal_entry (config, parse, buffer, &point, &entry,
                                 NULL)) {
    if (entry.operation == VDO_JOURNAL_BLOCK_MAP_REMAPPING) {
      parse->block_map_data_blocks++;
      continue;
    }
    if (vdo_is_mapped_location (entry.mapping))
      parse->logical_blocks_used++;
    if (vdo_is_mapped_location (entry.unmapping))
      parse->logical_blocks_used--;
  }
  parse->have_counters = true;
}

int
vdo_parse_journal_for_recovery (const struct vdo_journal_parser_config *config,
                                const struct vdo_journal_bounds *bounds,
                                const uint8_t *buffer,
                                struct vdo_journal_parse *parse)
{
  int64_t total;
  int result;

  start_parse (bounds, parse);
  if (!bounds->found)
    return VDO_SUCCESS;
  parse->head = min_sequence (bounds->block_map_head,
                              bounds->slab_journal_head);
  /* Only a corrupt header puts a head above the highest block. */
  if (parse->head > bounds->highest_tail) {
    parse->tail = bounds->highest_tail;
    return check_heads (parse);
  }
  total = find_usable_end (config, buffer, parse);
  if (total < 0)
    return VDO_CORRUPT_JOURNAL;
  if (total == 0)
    return check_heads (parse);
  /* Not logged: the caller knows what to do instead. */
  if (parse->format == VDO_METADATA_RECOVERY_JOURNAL)
    return VDO_UNSUPPORTED_VERSION;
  /* Nothing usable in the last block looked at: the tail is the one
   * before it. */
  if (parse->end.entry_count == 0)
    parse->tail--;
  result = check_heads (parse);
  if (result != VDO_SUCCESS)
    return result;
  parse->entry_count = (uint64_t) total;
  result = check_usable_entries (config, buffer, parse);
  if (result == VDO_SUCCESS)
    result = extract_recovery_mappings (config, buffer, parse);
  if (result != VDO_SUCCESS) {
    vdo_free_journal_parse (parse);
    return result;
  }
  compute_counters (config, buffer, parse);
  return VDO_SUCCESS;
}

/* --- Rebuild (B3) ------------------------------------------------------ */

static int
extract_block_for_rebuild (const struct vdo_journal_parser_config *config,
                           const uint8_t *buffer, sequence_number_t sequence,
                           struct vdo_journal_parse *parse,
                           size_t *mapping_capacity)
{
  const uint8_t *block = block_of (config, buffer, sequence);
  struct recovery_block_header header;
  unsigned int budget, first = 0, s;

  header_of (config, buffer, sequence, &header);
  if (!is_exact (config, &header, sequence)
      || header.metadata_type != parse->format)
    return VDO_SUCCESS;
  budget = vdo_recovery_journal_block_capacity (parse->format);
  if (header.entry_count < budget)
    budget = header.entry_count;
  for (s = 1; s < VDO_SECTORS_PER_BLOCK; s++) {
    struct recovery_journal_sector_header sector;
    unsigned int capacity = vdo_recovery_journal_sector_capacity
                              (parse->format, s);
    unsigned int quota = budget < capacity ? budget : capacity;
    unsigned int take, k;

    sector_of (block, s, &sector);
    /* The header's count rules, and a sector counts as full toward it
     * even when it is not valid. */
    if (vdo_is_valid_recovery_journal_sector (&header, &sector, s)) {
      take = sector.entry_count < quota ? sector.entry_count : quota;
      for (k = 0; k < take; k++) {
        struct recovery_journal_entry entry;
        int result;

        if (!decode_entry (block, parse->format, first + k, &entry))
          continue;
        if (vdo_check_journal_entry (config, &entry) != VDO_SUCCESS) {
          parse->dropped_entries++;
          continue;
        }
        parse->entry_count++;
        result = append_mapping (parse, mapping_capacity, &entry);
        if (result != VDO_SUCCESS)
          return result;
      }
    }
    budget -= quota;
    first += capacity;
  }
  return VDO_SUCCESS;
}

int
vdo_parse_journal_for_rebuild (const struct vdo_journal_parser_config *config,
                               const struct vdo_journal_bounds *bounds,
                               const uint8_t *buffer,
                               struct vdo_journal_parse *parse)
{
  struct recovery_block_header header;
  sequence_number_t first, last, i;
  size_t capacity = 0;
  int result;

  start_parse (bounds, parse);
  if (!vdo_journal_parse_range (config, bounds, true, &first, &last))
    return VDO_SUCCESS;
  /* The format of the newest block decides; others are skipped. */
  header_of (config, buffer, bounds->highest_tail, &header);
  parse->format = header.metadata_type;
  parse->head = first;
  for (i = first < 1 ? 1 : first; i <= last; i++) {
    result = extract_block_for_rebuild (config, buffer, i, parse, &capacity);
    if (result != VDO_SUCCESS) {
      vdo_free_journal_parse (parse);
      return result;
    }
  }
  parse->tail = last;
  return VDO_SUCCESS;
}
