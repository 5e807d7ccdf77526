/* nbdkit-vdo: block map changes from the recovery journal, by page
 * (vdo-journals.md 7.3 R6, 7.4 B4, 7.5).
 *
 * The mappings a journal parse extracted, sorted by (page, slot, serial)
 * and reduced to the last change of each slot: applying them page by
 * page leaves every page as replaying the journal in order would.  The
 * set is immutable once made, so any number of zone threads may read it
 * at once: recovery applies it one page at a time through the block map
 * cache, and a read-only volume overlays it on every page it loads.
 */
#ifndef VDO_PAGE_MAPPINGS_H
#define VDO_PAGE_MAPPINGS_H

#include <stddef.h>
#include <stdint.h>

#include "constants.h"
#include "journal-parser.h"

struct vdo_page_mappings;

/* Sort and reduce MAPPINGS (COUNT of them, malloc'd), taking the array
 * over whatever happens.  ENOMEM, logged. */
int vdo_make_page_mappings (struct vdo_journal_mapping *mappings,
                            size_t count, struct vdo_page_mappings **result);
void vdo_free_page_mappings (struct vdo_page_mappings *set);

/* Distinct pages, and slots changed across them. */
size_t vdo_page_mappings_page_count (const struct vdo_page_mappings *set);
size_t vdo_page_mappings_slot_count (const struct vdo_page_mappings *set);

/* Page number INDEX (0 .. page count - 1) in PBN order: its PBN, and its
 * slot changes, in slot order. */
physical_block_number_t
vdo_page_mappings_pbn (const struct vdo_page_mappings *set, size_t index);
const struct vdo_journal_mapping *
vdo_page_mappings_slots (const struct vdo_page_mappings *set, size_t index,
                         size_t *count);

/* Set, in the page held in DATA, every slot the page at PBN has a change
 * for; returns how many.  Any thread. */
unsigned int vdo_overlay_page_mappings (const struct vdo_page_mappings *set,
                                        physical_block_number_t pbn,
                                        uint8_t data[VDO_BLOCK_SIZE]);

#endif /* VDO_PAGE_MAPPINGS_H */
