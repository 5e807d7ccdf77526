/* nbdkit-vdo bench: make-full-journal, the crashed volume that
 * bench/recovery.sh times the recovery of.
 *
 * It takes a freshly formatted volume and starts and stops it once
 * through the real runtime, so that the block map roots and the slab
 * summary are written as the first load writes them.  Then it writes
 * what a crash would leave behind after a random-write workload had
 * filled the whole recovery journal while nothing else reached the disk:
 * every journal block from the journal start on, each full (217 format 2
 * entries), both heads at the journal start, and the super block DIRTY.
 * Block map tree pages, slab journals and reference counts stay as that
 * first start left them (never written), as in the kernel's written-dirty
 * fixture.  Data blocks are not written either: neither recovery nor the
 * audit reads them.
 *
 * The workload, drawn from --seed: LBNs picked at random below --lbns;
 * mostly writes of a new block, one in 64 a discard and one in 64 a
 * zero-block write.  Each entry carries the increment of its new block
 * and the decrement of the block it replaces, so the reference counts
 * that recovery rebuilds from them match the final block map.  Tree
 * pages are allocated and journaled top-down the first time an LBN
 * under them is mapped, as dm-vdo does.  Free blocks are handed out
 * first-in first-out, taking the slabs round-robin, so every slab
 * journal takes a similar share of the replay; each must stay below its
 * blocking threshold, which a live journal never passes (checked).
 *
 * Prints "key: value" lines: what recovery must find.
 *
 *   make-full-journal [--seed N] [--lbns N] IMAGE
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block-map-format.h"
#include "io.h"
#include "logger.h"
#include "recovery-journal-format.h"
#include "status.h"
#include "super-block.h"
#include "vdo.h"
#include "volume-layout.h"
#include "volume.h"

#define ENTRIES_PER_BLOCK VDO_RECOVERY_JOURNAL_ENTRIES_PER_BLOCK
#define ENTRIES_PER_PAGE VDO_BLOCK_MAP_ENTRIES_PER_PAGE
/* Journal blocks written at once. */
#define CHUNK_BLOCKS 256
/* One operation in ODD_ONE_OUT is a discard, one a zero-block write. */
#define ODD_ONE_OUT 64
/* Interior heights 1..3; the roots (4) exist from the first start. */
#define INTERIOR_HEIGHTS (VDO_BLOCK_MAP_ROOT_HEIGHT - 1)

static const char *program = "make-full-journal";

/* Returned once the reason has been printed, so main adds nothing. */
#define REPORTED (-1)

/* Free data blocks, oldest freed first. */
struct free_ring {
  physical_block_number_t *pbns;
  size_t size;
  size_t head;
  size_t count;
};

struct generator {
  struct vdo_volume *volume;
  struct vdo_io *io;
  struct vdo_component_states states;
  physical_block_number_t bio_offset;
  physical_block_number_t journal_origin;
  block_count_t journal_size;
  uint8_t recovery_count;
  sequence_number_t first_sequence;

  /* The block being filled, and the counters as of its opening. */
  struct recovery_journal_entry entries[ENTRIES_PER_BLOCK];
  unsigned int entry_count;
  block_count_t opened_logical_blocks_used;
  block_count_t opened_block_map_data_blocks;

  /* Encoded blocks waiting to be written, from chunk_index on. */
  uint8_t *chunk;
  unsigned int chunk_blocks;
  block_count_t chunk_index;
  block_count_t blocks_written;
  bool full;

  /* Counters as recovery computes them (R5). */
  block_count_t logical_blocks_used;
  block_count_t block_map_data_blocks;

  /* The workload's view of the volume. */
  uint64_t lbns;
  struct vdo_data_location *lbn_map;
  physical_block_number_t *leaf_pbns;   /* by leaf page number */
  physical_block_number_t *interior[INTERIOR_HEIGHTS];
  uint64_t interior_per_tree[INTERIOR_HEIGHTS];
  struct free_ring free;
  uint64_t *slab_journal_entries;       /* by slab */
  block_count_t slab_count;
  uint64_t rng;

  uint64_t writes, discards, zero_writes, tree_pages;
};

static void
quiet_sink (enum vdo_log_level level, const char *message)
{
  if (level <= VDO_LOG_WARNING)
    fprintf (stderr, "%s: %s\n", program, message);
}

/* xorshift64*: reproducible from the seed alone. */
static uint64_t
next_random (struct generator *g)
{
  g->rng ^= g->rng >> 12;
  g->rng ^= g->rng << 25;
  g->rng ^= g->rng >> 27;
  return g->rng * UINT64_C (2685821657736338717);
}

static physical_block_number_t
take_free_block (struct generator *g)
{
  physical_block_number_t pbn;

  if (g->free.count == 0)
    return VDO_ZERO_BLOCK;
  pbn = g->free.pbns[g->free.head];
  g->free.head = (g->free.head + 1) % g->free.size;
  g->free.count--;
  return pbn;
}

static void
give_back_block (struct generator *g, physical_block_number_t pbn)
{
  g->free.pbns[(g->free.head + g->free.count) % g->free.size] = pbn;
  g->free.count++;
}

/* --- Writing the journal ------------------------------------------------ */

static int
write_chunk (struct generator *g)
{
  int r;

  if (g->chunk_blocks == 0)
    return VDO_SUCCESS;
  r = vdo_io_write_blocks (g->io, g->journal_origin + g->chunk_index
                                  - g->bio_offset,
                           g->chunk_blocks, g->chunk);
  g->chunk_index = (g->chunk_index + g->chunk_blocks) % g->journal_size;
  g->chunk_blocks = 0;
  return r;
}

/* Encode the full block as the kernel's last write of it would read. */
static int
commit_block (struct generator *g)
{
  sequence_number_t sequence = g->first_sequence + g->blocks_written;
  struct recovery_block_header header = {
    .block_map_head = g->first_sequence,
    .slab_journal_head = g->first_sequence,
    .sequence_number = sequence,
    .nonce = g->states.nonce,
    .metadata_type = VDO_METADATA_RECOVERY_JOURNAL_2,
    .entry_count = g->entry_count,
    .logical_blocks_used = g->opened_logical_blocks_used,
    .block_map_data_blocks = g->opened_block_map_data_blocks,
    .check_byte = vdo_recovery_journal_check_byte (sequence, g->journal_size),
    .recovery_count = g->recovery_count,
  };
  int r;

  r = vdo_encode_recovery_block (g->chunk + g->chunk_blocks * VDO_BLOCK_SIZE,
                                 &header, g->entries);
  if (r != VDO_SUCCESS)
    return r;
  g->chunk_blocks++;
  g->blocks_written++;
  g->entry_count = 0;
  g->full = g->blocks_written == g->journal_size;
  /* A chunk is contiguous on disk: write it before the index wraps. */
  if (g->full || g->chunk_blocks == CHUNK_BLOCKS
      || (g->chunk_index + g->chunk_blocks) % g->journal_size == 0)
    return write_chunk (g);
  return VDO_SUCCESS;
}

static void
count_slab_journal_entry (struct generator *g, physical_block_number_t pbn)
{
  block_count_t slab, offset;

  if (pbn != VDO_ZERO_BLOCK
      && vdo_slab_of_pbn (&g->states.slab_depot, pbn, &slab, &offset))
    g->slab_journal_entries[slab]++;
}

/* Journal one entry; the caller checks g->full first. */
static int
journal_entry (struct generator *g, const struct recovery_journal_entry *entry)
{
  if (g->entry_count == 0) {
    g->opened_logical_blocks_used = g->logical_blocks_used;
    g->opened_block_map_data_blocks = g->block_map_data_blocks;
  }
  g->entries[g->entry_count++] = *entry;
  if (entry->operation == VDO_JOURNAL_BLOCK_MAP_REMAPPING)
    g->block_map_data_blocks++;
  else {
    g->logical_blocks_used += vdo_is_mapped_location (entry->mapping);
    g->logical_blocks_used -= vdo_is_mapped_location (entry->unmapping);
  }
  count_slab_journal_entry (g, entry->mapping.pbn);
  count_slab_journal_entry (g, entry->unmapping.pbn);
  if (g->entry_count == ENTRIES_PER_BLOCK)
    return commit_block (g);
  return VDO_SUCCESS;
}

/* --- The workload -------------------------------------------------------- */

/* The tree page at HEIGHT (0: the leaf) on PATH: where its PBN is kept. */
static physical_block_number_t *
tree_page_slot (struct generator *g, const struct vdo_block_map_path *path,
                unsigned int height)
{
  uint64_t index = path->leaf_index;
  unsigned int h;

  if (height == 0)
    return &g->leaf_pbns[path->page_number];
  for (h = 0; h < height; h++)
    index /= ENTRIES_PER_PAGE;
  return &g->interior[height - 1][path->root_index
                                  * g->interior_per_tree[height - 1] + index];
}

/* Allocate and journal the missing tree pages above the LBN's slot, top
 * down, each as a remapping of its parent's entry.  *LEAF is 0 if the
 * journal filled up first. */
static int
ensure_leaf (struct generator *g, logical_block_number_t lbn,
             physical_block_number_t *leaf)
{
  struct vdo_block_map_path path;
  physical_block_number_t parent;
  int height, r;

  *leaf = g->leaf_pbns[lbn / ENTRIES_PER_PAGE];
  if (*leaf != VDO_ZERO_BLOCK)
    return VDO_SUCCESS;
  r = vdo_compute_block_map_path (lbn, g->states.block_map.root_count, &path);
  if (r != VDO_SUCCESS)
    return r;
  parent = g->states.block_map.root_origin + path.root_index;
  for (height = VDO_BLOCK_MAP_ROOT_HEIGHT - 1; height >= 0; height--) {
    physical_block_number_t *page = tree_page_slot (g, &path, height);
    struct recovery_journal_entry entry = {
      .operation = VDO_JOURNAL_BLOCK_MAP_REMAPPING,
      .slot_pbn = parent,
      .slot = path.slots[height + 1],
      .unmapping = { VDO_ZERO_BLOCK, VDO_MAPPING_STATE_UNMAPPED },
    };

    if (*page == VDO_ZERO_BLOCK) {
      if (g->full)
        return VDO_SUCCESS;
      entry.mapping.pbn = take_free_block (g);
      entry.mapping.state = VDO_MAPPING_STATE_UNCOMPRESSED;
      if (entry.mapping.pbn == VDO_ZERO_BLOCK)
        return VDO_NO_SPACE;
      r = journal_entry (g, &entry);
      if (r != VDO_SUCCESS)
        return r;
      *page = entry.mapping.pbn;
      g->tree_pages++;
    }
    parent = *page;
  }
  *leaf = parent;
  return VDO_SUCCESS;
}

enum request_kind { REQUEST_WRITE, REQUEST_DISCARD, REQUEST_ZERO };

/* One request on a random LBN: one data remapping, after any tree pages
 * it needs. */
static int
run_one_request (struct generator *g)
{
  uint64_t random = next_random (g);
  logical_block_number_t lbn = random % g->lbns;
  unsigned int pick = (random >> 40) % ODD_ONE_OUT;
  struct vdo_data_location old = g->lbn_map[lbn];
  enum request_kind kind = REQUEST_WRITE;
  struct recovery_journal_entry entry = {
    .operation = VDO_JOURNAL_DATA_REMAPPING,
    .slot = lbn % ENTRIES_PER_PAGE,
    .mapping = { VDO_ZERO_BLOCK, VDO_MAPPING_STATE_UNMAPPED },
    .unmapping = old,
  };
  int r;

  /* Only what changes a mapping is journaled: a discard of an unmapped
   * LBN or a zero write over zeros becomes a write. */
  if (pick == 0 && vdo_is_mapped_location (old))
    kind = REQUEST_DISCARD;
  else if (pick == 1 && (old.pbn != VDO_ZERO_BLOCK
                         || !vdo_is_mapped_location (old)))
    kind = REQUEST_ZERO;

  r = ensure_leaf (g, lbn, &entry.slot_pbn);
  if (r != VDO_SUCCESS || g->full)
    return r;
  if (kind == REQUEST_ZERO)
    entry.mapping.state = VDO_MAPPING_STATE_UNCOMPRESSED;
  else if (kind == REQUEST_WRITE) {
    entry.mapping.pbn = take_free_block (g);
    entry.mapping.state = VDO_MAPPING_STATE_UNCOMPRESSED;
    if (entry.mapping.pbn == VDO_ZERO_BLOCK)
      return VDO_NO_SPACE;
  }
  r = journal_entry (g, &entry);
  if (r != VDO_SUCCESS)
    return r;
  g->lbn_map[lbn] = entry.mapping;
  /* Its count drops to 0: free for a later write. */
  if (old.pbn != VDO_ZERO_BLOCK)
    give_back_block (g, old.pbn);
  g->writes += kind == REQUEST_WRITE;
  g->discards += kind == REQUEST_DISCARD;
  g->zero_writes += kind == REQUEST_ZERO;
  return VDO_SUCCESS;
}

/* --- Setting up ---------------------------------------------------------- */

/* The first start of a NEW volume, through the runtime the plugin uses:
 * it formats the block map roots and writes the slab summary, then saves
 * the volume CLEAN. */
static int
start_once (const char *path)
{
  struct vdo_options options = { 0 };
  struct vdo_volume *volume;
  struct vdo *vdo;
  uint32_t state;
  int r;

  r = vdo_volume_open (path, false, &volume);
  if (r != VDO_SUCCESS)
    return r;
  state = vdo_volume_get_states (volume)->state;
  vdo_volume_close (volume);
  if (state != VDO_NEW) {
    fprintf (stderr, "%s: %s is in state %s, not freshly formatted\n",
             program, path, vdo_state_name (state));
    return REPORTED;
  }
  r = vdo_load (path, &options, &vdo);
  if (r != VDO_SUCCESS)
    return r;
  r = vdo_start (vdo);
  if (r == VDO_SUCCESS)
    r = vdo_stop (vdo);
  vdo_free (vdo);
  return r;
}

static uint64_t
divide_up (uint64_t n, uint64_t d)
{
  return (n + d - 1) / d;
}

static int
make_workload (struct generator *g)
{
  const struct slab_depot_state_2_0 *depot = &g->states.slab_depot;
  block_count_t data_blocks = depot->slab_config.data_blocks;
  block_count_t roots = g->states.block_map.root_count;
  uint64_t pages = divide_up (g->lbns, ENTRIES_PER_PAGE);
  uint64_t per_tree = divide_up (pages, roots), k;
  block_count_t s;
  unsigned int h;

  g->lbn_map = calloc (g->lbns, sizeof *g->lbn_map);
  g->leaf_pbns = calloc (pages, sizeof *g->leaf_pbns);
  for (h = 0; h < INTERIOR_HEIGHTS; h++) {
    per_tree = divide_up (per_tree, ENTRIES_PER_PAGE);
    g->interior_per_tree[h] = per_tree;
    g->interior[h] = calloc (roots * per_tree, sizeof *g->interior[h]);
    if (g->interior[h] == NULL)
      return ENOMEM;
  }
  g->slab_count = vdo_depot_slab_count (depot);
  g->slab_journal_entries = calloc (g->slab_count,
                                    sizeof *g->slab_journal_entries);
  g->free.size = g->slab_count * data_blocks;
  g->free.pbns = malloc (g->free.size * sizeof *g->free.pbns);
  g->chunk = vdo_io_alloc_buffer (CHUNK_BLOCKS * VDO_BLOCK_SIZE);
  if (g->lbn_map == NULL || g->leaf_pbns == NULL
      || g->slab_journal_entries == NULL || g->free.pbns == NULL
      || g->chunk == NULL)
    return ENOMEM;
  /* Every slab in turn, so the replay spreads over all slab journals. */
  for (k = 0; k < data_blocks; k++)
    for (s = 0; s < g->slab_count; s++)
      g->free.pbns[g->free.count++] = vdo_slab_data_range (depot, s).start + k;
  return VDO_SUCCESS;
}

static void
free_workload (struct generator *g)
{
  unsigned int h;

  free (g->lbn_map);
  free (g->leaf_pbns);
  for (h = 0; h < INTERIOR_HEIGHTS; h++)
    free (g->interior[h]);
  free (g->slab_journal_entries);
  free (g->free.pbns);
  vdo_io_free_buffer (g->chunk);
}

static int
open_volume (struct generator *g, const char *path)
{
  int r;

  r = vdo_volume_open (path, true, &g->volume);
  if (r != VDO_SUCCESS)
    return r;
  g->states = *vdo_volume_get_states (g->volume);
  g->io = vdo_volume_get_io (g->volume);
  g->bio_offset = vdo_volume_get_geometry (g->volume)->bio_offset;
  g->journal_origin = vdo_layout_find_partition
                        (&g->states.layout,
                         VDO_RECOVERY_JOURNAL_PARTITION)->offset;
  g->journal_size = g->states.config.recovery_journal_size;
  g->recovery_count = vdo_recovery_journal_recovery_count
                        (g->states.complete_recoveries);
  g->first_sequence = g->states.recovery_journal.journal_start;
  g->chunk_index = vdo_recovery_journal_block_index (g->first_sequence,
                                                     g->journal_size);
  g->logical_blocks_used = g->states.recovery_journal.logical_blocks_used;
  g->block_map_data_blocks = g->states.recovery_journal.block_map_data_blocks;
  /* The free list assumes nothing is mapped yet. */
  if (g->states.state != VDO_CLEAN || g->logical_blocks_used != 0
      || g->block_map_data_blocks != 0) {
    fprintf (stderr, "%s: %s should be CLEAN and empty after its first "
             "start, but is %s with %" PRIu64 " logical blocks used\n",
             program, path, vdo_state_name (g->states.state),
             g->logical_blocks_used);
    return REPORTED;
  }
  return VDO_SUCCESS;
}

/* A live slab journal never reaches its blocking threshold; the replay
 * must not need more.  Blocks are counted at the smaller capacity of
 * blocks holding tree page increments. */
static int
check_slab_journals (struct generator *g, uint64_t *most)
{
  block_count_t limit = g->states.slab_depot.slab_config
                          .slab_journal_blocking_threshold;
  block_count_t s;

  *most = 0;
  for (s = 0; s < g->slab_count; s++)
    if (g->slab_journal_entries[s] > *most)
      *most = g->slab_journal_entries[s];
  if (divide_up (*most, VDO_SLAB_JOURNAL_FULL_ENTRIES) >= limit) {
    fprintf (stderr, "%s: a slab journal would need %" PRIu64 " entries, "
             "over its blocking threshold of %" PRIu64 " blocks: use more "
             "slabs (a larger device or smaller slabs)\n", program, *most,
             limit);
    return REPORTED;
  }
  return VDO_SUCCESS;
}

/* The crash point: DIRTY, with the journal start the last load recorded,
 * written after the journal is durable. */
static int
mark_dirty (struct generator *g)
{
  uint8_t *block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  physical_block_number_t pbn = vdo_volume_super_block_pbn (g->volume);
  int r;

  if (block == NULL)
    return ENOMEM;
  g->states.state = VDO_DIRTY;
  vdo_encode_super_block (block, &g->states);
  r = vdo_io_flush (g->io);
  if (r == 0)
    r = vdo_io_write_blocks (g->io, pbn - g->bio_offset, 1, block);
  if (r == 0)
    r = vdo_io_flush (g->io);
  vdo_io_free_buffer (block);
  return r;
}

static void
print_results (struct generator *g, uint64_t most)
{
  uint64_t data_lbns = 0, zero_lbns = 0, slab_entries = 0, k;

  for (k = 0; k < g->slab_count; k++)
    slab_entries += g->slab_journal_entries[k];
  for (k = 0; k < g->lbns; k++) {
    if (g->lbn_map[k].pbn != VDO_ZERO_BLOCK)
      data_lbns++;
    else if (vdo_is_mapped_location (g->lbn_map[k]))
      zero_lbns++;
  }
  printf ("journal blocks: %" PRIu64 "\n", g->blocks_written);
  printf ("journal sequence: %" PRIu64 " to %" PRIu64 "\n",
          g->first_sequence, g->first_sequence + g->blocks_written - 1);
  printf ("journal entries: %" PRIu64 "\n",
          g->blocks_written * ENTRIES_PER_BLOCK);
  printf ("writes: %" PRIu64 "\n", g->writes);
  printf ("discards: %" PRIu64 "\n", g->discards);
  printf ("zero writes: %" PRIu64 "\n", g->zero_writes);
  printf ("tree pages: %" PRIu64 "\n", g->tree_pages);
  printf ("logical blocks used: %" PRIu64 "\n", g->logical_blocks_used);
  printf ("block map data blocks: %" PRIu64 "\n", g->block_map_data_blocks);
  printf ("data lbns: %" PRIu64 "\n", data_lbns);
  printf ("zero lbns: %" PRIu64 "\n", zero_lbns);
  printf ("slabs: %" PRIu64 "\n", g->slab_count);
  printf ("slab journal entries: %" PRIu64 "\n", slab_entries);
  printf ("most slab journal entries: %" PRIu64 "\n", most);
}

static int
parse_number (const char *option, const char *text, uint64_t *value)
{
  char *end;

  errno = 0;
  *value = strtoull (text, &end, 0);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
    fprintf (stderr, "%s: %s: invalid number '%s'\n", program, option, text);
    return -1;
  }
  return 0;
}

static int
generate (struct generator *g, const char *path, uint64_t lbns)
{
  uint64_t most;
  int r;

  r = start_once (path);
  if (r == VDO_SUCCESS)
    r = open_volume (g, path);
  if (r != VDO_SUCCESS)
    return r;
  g->lbns = lbns == 0 ? g->states.config.logical_blocks : lbns;
  if (g->lbns > g->states.config.logical_blocks) {
    fprintf (stderr, "%s: --lbns %" PRIu64 " is more than the volume's %"
             PRIu64 " logical blocks\n", program, g->lbns,
             g->states.config.logical_blocks);
    return REPORTED;
  }
  r = make_workload (g);
  while (r == VDO_SUCCESS && !g->full)
    r = run_one_request (g);
  if (r == VDO_NO_SPACE) {
    fprintf (stderr, "%s: the volume ran out of free blocks: use fewer "
             "LBNs or a larger device\n", program);
    r = REPORTED;
  }
  if (r == VDO_SUCCESS)
    r = check_slab_journals (g, &most);
  if (r == VDO_SUCCESS)
    r = mark_dirty (g);
  if (r == VDO_SUCCESS)
    print_results (g, most);
  return r;
}

int
main (int argc, char **argv)
{
  static const struct option long_options[] = {
    { "seed", required_argument, NULL, 's' },
    { "lbns", required_argument, NULL, 'l' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct generator g = { 0 };
  uint64_t seed = 1, lbns = 0;
  int c, r;

  vdo_set_log_sink (quiet_sink);
  while ((c = getopt_long (argc, argv, "", long_options, NULL)) != -1) {
    if (c == 's' || c == 'l') {
      if (parse_number (c == 's' ? "--seed" : "--lbns", optarg,
                        c == 's' ? &seed : &lbns) != 0)
        return EXIT_FAILURE;
      continue;
    }
    if (c == 'h') {
      printf ("Usage: %s [--seed N] [--lbns N] IMAGE\n", program);
      return EXIT_SUCCESS;
    }
    goto usage;
  }
  if (optind != argc - 1)
    goto usage;
  /* xorshift must not start at 0. */
  g.rng = seed * UINT64_C (0x9E3779B97F4A7C15) + 1;
  if (g.rng == 0)
    g.rng = 1;

  r = generate (&g, argv[optind], lbns);
  free_workload (&g);
  if (g.volume != NULL)
    vdo_volume_close (g.volume);
  if (r != VDO_SUCCESS) {
    if (r != REPORTED)
      fprintf (stderr, "%s: cannot fill the journal of %s: %s\n", program,
               argv[optind], vdo_status_to_string (r));
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;

 usage:
  fprintf (stderr, "Usage: %s [--seed N] [--lbns N] IMAGE\n", program);
  return EXIT_FAILURE;
}
