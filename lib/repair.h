/* nbdkit-vdo: crash recovery and read-only rebuild (vdo-journals.md 7.3,
 * 7.4), as dm-vdo's repair.c does them, and the journal overlay of a
 * volume served read-only (7.5).
 *
 * Recovery (DIRTY, RECOVERING, REPLAYING) replays the usable journal
 * into the block map and the slab journals; rebuild (FORCE_REBUILD,
 * REBUILD_FOR_UPGRADE) replays what it can into the block map, then
 * recounts every reference from the block map.  Both are restart-safe:
 * nothing they write before the super block's DIRTY save (the commit
 * point) stops the same repair from running again from the same journal.
 */
#ifndef VDO_REPAIR_H
#define VDO_REPAIR_H

#include <stdbool.h>

struct vdo;
struct vdo_page_mappings;

/* Whether the volume's recorded state needs vdo_repair before it may be
 * written.  After a recovery (vdo_state_requires_recovery), the DIRTY
 * save is followed by vdo_scrub_after_recovery. */
bool vdo_state_needs_repair (unsigned int state);

/* Steps R1-R10 or B0-B10, from vdo_start: the zone queues run, and the
 * journal, block map and depot are made but not loaded or used.  On
 * success the block map was drained (the caller replaces it, so no page
 * the repair cached lingers), the depot is loaded, the journal restarts
 * after the highest block found, and vdo->states holds what the DIRTY
 * save must record (recovery counts, journal start, counters).  On an
 * error the volume is put in read-only mode, persisted, except for
 * VDO_UNSUPPORTED_VERSION (a format 1 journal: the state is left as it
 * was).  Every outcome is logged. */
int vdo_repair (struct vdo *vdo);

/* R12, after the DIRTY save that committed a recovery: scrub the slabs
 * the replay left dirty and open them for allocation. */
int vdo_scrub_after_recovery (struct vdo *vdo);

/* For a volume served read-only whose journal may hold acknowledged
 * writes the block map lacks (READ_ONLY_MODE, or a repair state with the
 * read-only option): parse the journal as recovery would (as rebuild for
 * a rebuild state or an old-format journal), writing nothing, and give
 * the block map changes to lay over every page loaded; *overlay is NULL
 * when there are none, or when the journal cannot be trusted (logged:
 * the on-disk map is served as is).  Called before the block map is
 * made; only ENOMEM and I/O errors fail. */
int vdo_read_journal_overlay (struct vdo *vdo,
                              struct vdo_page_mappings **overlay);

#endif /* VDO_REPAIR_H */
