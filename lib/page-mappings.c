/* nbdkit-vdo: block map changes from the recovery journal, by page. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "block-map-format.h"
#include "logger.h"
#include "page-mappings.h"
#include "status.h"

struct page_index {
  physical_block_number_t pbn;
  size_t first;                         /* its first slot change */
};

struct vdo_page_mappings {
  struct vdo_journal_mapping *slots;
  size_t slot_count;
  struct page_index *pages;             /* page_count + 1, the last a bound */
  size_t page_count;
};

static int
compare_mappings (const void *a, const void *b)
{
  const struct vdo_journal_mapping *x = a, *y = b;

  if (x->page_pbn != y->page_pbn)
    return x->page_pbn < y->page_pbn ? -1 : 1;
  if (x->slot != y->slot)
    return x->slot < y->slot ? -1 : 1;
  if (x->serial != y->serial)
    return x->serial < y->serial ? -1 : 1;
  return 0;
}

/* Keep the last change of each slot: it is the value replay leaves. */
static size_t
keep_last_changes (struct vdo_journal_mapping *mappings, size_t count)
{
  size_t kept = 0, i;

  for (i = 0; i < count; i++) {
    if (kept > 0 && mappings[kept - 1].page_pbn == mappings[i].page_pbn
        && mappings[kept - 1].slot == mappings[i].slot)
      kept--;
    mappings[kept++] = mappings[i];
  }
  return kept;
}

static int
index_pages (struct vdo_page_mappings *set)
{
  size_t pages = 0, i;

  for (i = 0; i < set->slot_count; i++)
    if (i == 0 || set->slots[i].page_pbn != set->slots[i - 1].page_pbn)
      pages++;
  set->pages = malloc ((pages + 1) * sizeof *set->pages);
  if (set->pages == NULL)
    return ENOMEM;
  set->page_count = 0;
  for (i = 0; i < set->slot_count; i++) {
    if (i > 0 && set->slots[i].page_pbn == set->slots[i - 1].page_pbn)
      continue;
    set->pages[set->page_count].pbn = set->slots[i].page_pbn;
    set->pages[set->page_count].first = i;
    set->page_count++;
  }
  set->pages[set->page_count].pbn = 0;
  set->pages[set->page_count].first = set->slot_count;
  return VDO_SUCCESS;
}

int
vdo_make_page_mappings (struct vdo_journal_mapping *mappings, size_t count,
                        struct vdo_page_mappings **result)
{
  struct vdo_page_mappings *set = calloc (1, sizeof *set);

  *result = NULL;
  if (set == NULL) {
    free (mappings);
    vdo_log_error ("cannot index the journal's block map changes");
    return ENOMEM;
  }
  if (count > 0)
    qsort (mappings, count, sizeof *mappings, compare_mappings);
  set->slots = mappings;
  set->slot_count = keep_last_changes (mappings, count);
  if (index_pages (set) != VDO_SUCCESS) {
    vdo_free_page_mappings (set);
    vdo_log_error ("cannot index the journal's block map changes");
    return ENOMEM;
  }
  *result = set;
  return VDO_SUCCESS;
}

void
vdo_free_page_mappings (struct vdo_page_mappings *set)
{
  if (set == NULL)
    return;
  free (set->slots);
  free (set->pages);
  free (set);
}

size_t
vdo_page_mappings_page_count (const struct vdo_page_mappings *set)
{
  return set->page_count;
}

size_t
vdo_page_mappings_slot_count (const struct vdo_page_mappings *set)
{
  return set->slot_count;
}

physical_block_number_t
vdo_page_mappings_pbn (const struct vdo_page_mappings *set, size_t index)
{
  return set->pages[index].pbn;
}

const struct vdo_journal_mapping *
vdo_page_mappings_slots (const struct vdo_page_mappings *set, size_t index,
                         size_t *count)
{
  *count = set->pages[index + 1].first - set->pages[index].first;
  return &set->slots[set->pages[index].first];
}

/* Binary search among the pages; page_count when absent. */
static size_t
find_page (const struct vdo_page_mappings *set, physical_block_number_t pbn)
{
  size_t low = 0, high = set->page_count;

  while (low < high) {
    size_t middle = low + (high - low) / 2;

    if (set->pages[middle].pbn < pbn)
      low = middle + 1;
    else
      high = middle;
  }
  if (low < set->page_count && set->pages[low].pbn == pbn)
    return low;
  return set->page_count;
}

unsigned int
vdo_overlay_page_mappings (const struct vdo_page_mappings *set,
                           physical_block_number_t pbn,
                           uint8_t data[VDO_BLOCK_SIZE])
{
  size_t index = find_page (set, pbn), count, i;
  const struct vdo_journal_mapping *slots;

  if (index == set->page_count)
    return 0;
  slots = vdo_page_mappings_slots (set, index, &count);
  for (i = 0; i < count; i++)
    vdo_set_block_map_page_entry (data, slots[i].slot, slots[i].pbn,
                                  slots[i].state);
  return (unsigned int) count;
}
