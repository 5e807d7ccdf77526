/* nbdkit-vdo: the dedupe index's open chapter. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "byte-order.h"
#include "logger.h"
#include "open-chapter.h"
#include "status.h"

#define MAX_CAPACITY (1ull << 28)
/* Fibonacci hashing spreads even structured names over the table. */
#define HASH_MULTIPLIER 0x9E3779B97F4A7C15ull

struct vdo_open_chapter {
  uint64_t capacity;
  uint64_t size;
  /* Hash slots hold a record's index + 1; 0 is empty.  At least twice
   * the capacity, so probe runs stay short. */
  uint32_t *slots;
  unsigned int slot_bits;
  struct vdo_index_record *records;
};

int
vdo_make_open_chapter (uint64_t capacity,
                       struct vdo_open_chapter **chapter_ret)
{
  struct vdo_open_chapter *chapter;

  if (capacity == 0 || capacity > MAX_CAPACITY)
    return UDS_INVALID_ARGUMENT;

  chapter = calloc (1, sizeof *chapter);
  if (!chapter) {
    vdo_log_error ("cannot allocate an open chapter");
    return ENOMEM;
  }
  chapter->capacity = capacity;
  chapter->slot_bits = 1;
  while ((1ull << chapter->slot_bits) < 2 * capacity)
    chapter->slot_bits++;
  chapter->slots = calloc ((size_t) 1 << chapter->slot_bits,
                           sizeof *chapter->slots);
  chapter->records = calloc (capacity, sizeof *chapter->records);
  if (!chapter->slots || !chapter->records) {
    vdo_log_error ("cannot allocate an open chapter of %" PRIu64 " records",
                   capacity);
    vdo_free_open_chapter (chapter);
    return ENOMEM;
  }
  *chapter_ret = chapter;
  return VDO_SUCCESS;
}

void
vdo_free_open_chapter (struct vdo_open_chapter *chapter)
{
  if (!chapter)
    return;
  free (chapter->slots);
  free (chapter->records);
  free (chapter);
}

void
vdo_reset_open_chapter (struct vdo_open_chapter *chapter)
{
  memset (chapter->slots, 0,
          ((size_t) 1 << chapter->slot_bits) * sizeof *chapter->slots);
  chapter->size = 0;
}

uint64_t
vdo_open_chapter_size (const struct vdo_open_chapter *chapter)
{
  return chapter->size;
}

uint64_t
vdo_open_chapter_capacity (const struct vdo_open_chapter *chapter)
{
  return chapter->capacity;
}

bool
vdo_open_chapter_is_full (const struct vdo_open_chapter *chapter)
{
  return chapter->size >= chapter->capacity;
}

uint64_t
vdo_open_chapter_memory_bytes (const struct vdo_open_chapter *chapter)
{
  return sizeof *chapter
         + ((uint64_t) 1 << chapter->slot_bits) * sizeof *chapter->slots
         + chapter->capacity * sizeof *chapter->records;
}

/* The slot holding NAME, or the empty slot where it would go. */
static uint32_t *
find_slot (const struct vdo_open_chapter *chapter,
           const struct vdo_chunk_name *name)
{
  uint64_t mask = ((uint64_t) 1 << chapter->slot_bits) - 1;
  uint64_t hash = (get_le64 (name->bytes) ^ get_le64 (name->bytes + 8))
                  * HASH_MULTIPLIER;
  uint64_t slot = hash >> (64 - chapter->slot_bits);

  /* Never full (twice the capacity), so the probe ends. */
  for (;; slot = (slot + 1) & mask) {
    uint32_t entry = chapter->slots[slot];

    if (entry == 0
        || memcmp (chapter->records[entry - 1].name.bytes, name->bytes,
                   VDO_CHUNK_NAME_SIZE) == 0)
      return &chapter->slots[slot];
  }
}

bool
vdo_open_chapter_find (const struct vdo_open_chapter *chapter,
                       const struct vdo_chunk_name *name,
                       uint8_t advice[VDO_ADVICE_SIZE])
{
  uint32_t entry = *find_slot (chapter, name);

  if (entry == 0)
    return false;
  memcpy (advice, chapter->records[entry - 1].advice, VDO_ADVICE_SIZE);
  return true;
}

enum vdo_open_chapter_put_result
vdo_open_chapter_put (struct vdo_open_chapter *chapter,
                      const struct vdo_chunk_name *name,
                      const uint8_t advice[VDO_ADVICE_SIZE], bool overwrite)
{
  uint32_t *slot = find_slot (chapter, name);
  struct vdo_index_record *record;

  if (*slot != 0) {
    if (overwrite)
      memcpy (chapter->records[*slot - 1].advice, advice, VDO_ADVICE_SIZE);
    return VDO_OPEN_CHAPTER_PRESENT;
  }
  if (vdo_open_chapter_is_full (chapter))
    return VDO_OPEN_CHAPTER_FULL;

  record = &chapter->records[chapter->size++];
  record->name = *name;
  memcpy (record->advice, advice, VDO_ADVICE_SIZE);
  *slot = (uint32_t) chapter->size;
  return VDO_OPEN_CHAPTER_ADDED;
}

const struct vdo_index_record *
vdo_open_chapter_record (const struct vdo_open_chapter *chapter, uint64_t i)
{
  return &chapter->records[i];
}

static int
compare_names (const void *a, const void *b)
{
  return memcmp (a, b, VDO_CHUNK_NAME_SIZE);
}

void
vdo_close_open_chapter (struct vdo_open_chapter *chapter,
                        uint64_t instance_nonce, uint64_t vcn,
                        uint32_t block_count, uint8_t *blocks,
                        uint32_t *prefixes)
{
  uint64_t start = 0;
  uint32_t b;

  /* Sorting in place breaks the hash slots, which the reset clears. */
  qsort (chapter->records, chapter->size, sizeof *chapter->records,
         compare_names);
  for (b = 0; b < block_count; b++) {
    uint64_t left = chapter->size - start;
    struct vdo_record_block_header header = {
      .instance_nonce = instance_nonce,
      .vcn = vcn,
      .block_index = b,
      .record_count = left < VDO_INDEX_RECORDS_PER_BLOCK
                      ? (uint32_t) left : VDO_INDEX_RECORDS_PER_BLOCK,
    };

    vdo_encode_record_block (&header, chapter->records + start,
                             blocks + (size_t) b * VDO_BLOCK_SIZE);
    prefixes[b] = header.record_count > 0
                  ? vdo_chunk_name_prefix (&chapter->records[start].name)
                  : UINT32_MAX;
    start += header.record_count;
  }
  vdo_reset_open_chapter (chapter);
}
