/* nbdkit-vdo: the runtime block map on real volumes: lookups, tree
 * growth, updates, drain, fresh-page protection, errors and read-only
 * mode, and the mappings of the written-clean fixture. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "block-map-test-util.h"
#include "status.h"
#include "unit-suites.h"

#define ENTRIES VDO_BLOCK_MAP_ENTRIES_PER_PAGE
#define ROOTS 60

/* The LBN in slot s of the i-th leaf page of tree r. */
static logical_block_number_t
lbn_in_tree (unsigned int r, uint64_t i, unsigned int s)
{
  return (i * ROOTS + r) * ENTRIES + s;
}

static physical_block_number_t
root_pbn (unsigned int r)
{
  return bm.states.block_map.root_origin + r;
}

static void
check_mapping (logical_block_number_t lbn, physical_block_number_t pbn,
               unsigned int state)
{
  struct vdo_block_map_request request;

  ck_assert_int_eq (bm_lookup (lbn, false, &request), VDO_SUCCESS);
  ck_assert_msg (request.mapping.pbn == pbn && request.mapping.state == state,
                 "LBN %" PRIu64 " maps to (%" PRIu64 ", %u), expected (%"
                 PRIu64 ", %u)", lbn, request.mapping.pbn,
                 request.mapping.state, pbn, state);
}

static void
check_disk_entry (physical_block_number_t page, unsigned int slot,
                  physical_block_number_t pbn, unsigned int state)
{
  uint8_t buffer[VDO_BLOCK_SIZE];
  struct vdo_data_location entry;

  ck_assert_msg (bm_disk_page_is_valid (page, buffer),
                 "page %" PRIu64 " is not valid on disk", page);
  entry = vdo_get_block_map_page_entry (buffer, slot);
  ck_assert_uint_eq (entry.pbn, pbn);
  ck_assert_uint_eq (entry.state, state);
}

/* The pages of a path grown with bm_map, read back from the tree. */
struct grown_path {
  physical_block_number_t pages[VDO_BLOCK_MAP_ROOT_HEIGHT + 1];
};

static void
find_path (logical_block_number_t lbn, struct grown_path *path)
{
  struct vdo_block_map_path slots;
  uint8_t buffer[VDO_BLOCK_SIZE];
  int height;

  /* Only after a drain: the path is read from disk. */
  ck_assert_int_eq (vdo_compute_block_map_path (lbn, ROOTS, &slots),
                    VDO_SUCCESS);
  path->pages[VDO_BLOCK_MAP_ROOT_HEIGHT] = root_pbn (slots.root_index);
  for (height = VDO_BLOCK_MAP_ROOT_HEIGHT; height > 0; height--) {
    struct vdo_data_location entry;

    ck_assert (bm_disk_page_is_valid (path->pages[height], buffer));
    entry = vdo_get_block_map_page_entry (buffer, slots.slots[height]);
    ck_assert_uint_eq (entry.state, VDO_MAPPING_STATE_UNCOMPRESSED);
    path->pages[height - 1] = entry.pbn;
  }
}

START_TEST (test_empty_lookups)
{
  logical_block_number_t last, lbns[6];
  struct vdo_data_location entries[ENTRIES];
  struct vdo_block_map_request request;
  struct vdo_block_map_statistics stats;
  bool present = true;
  size_t i;

  bm_make_map (1, 64);
  last = bm.states.config.logical_blocks - 1;
  lbns[0] = 0;
  lbns[1] = 811;
  lbns[2] = 812;
  lbns[3] = lbn_in_tree (0, 1, 0);
  lbns[4] = lbn_in_tree (5, 1, 5);
  lbns[5] = last;
  for (i = 0; i < 6; i++) {
    ck_assert_int_eq (bm_lookup (lbns[i], false, &request), VDO_SUCCESS);
    ck_assert_uint_eq (request.mapping.state, VDO_MAPPING_STATE_UNMAPPED);
    ck_assert_uint_eq (request.mapping.pbn, 0);
    ck_assert (!request.path_complete);
    ck_assert_uint_eq (request.missing_height, 3);
    ck_assert_uint_eq (request.page_pbn,
                       root_pbn ((lbns[i] / ENTRIES) % ROOTS));
    ck_assert_uint_eq (request.slot, 0);
  }
  ck_assert_int_eq (bm_lookup (last + 1, false, &request), VDO_OUT_OF_RANGE);

  /* Roots 0, 1, 5 and the last LBN's, each read once. */
  stats = bm_stats ();
  ck_assert_uint_eq (stats.tree_pages, 4);
  ck_assert_uint_eq (stats.pages_read, 4);
  ck_assert_uint_eq (stats.dirty_pages, 0);

  ck_assert_int_eq (bm_read_leaf (0, entries, &present), VDO_SUCCESS);
  ck_assert (!present);
  for (i = 0; i < ENTRIES; i++)
    ck_assert_uint_eq (entries[i].state, VDO_MAPPING_STATE_UNMAPPED);

  /* Trimming where nothing exists is a no-op; mapping there is a bug. */
  ck_assert_int_eq (bm_put (5, 0, VDO_MAPPING_STATE_UNMAPPED, 1),
                    VDO_SUCCESS);
  ck_assert_int_eq (bm_put (5, bm_allocate_pbn (),
                            VDO_MAPPING_STATE_UNCOMPRESSED, 1),
                    UDS_BAD_STATE);
  ck_assert (!bm_is_locked (1));

  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  stats = bm_stats ();
  ck_assert_uint_eq (stats.pages_written, 0);
}
END_TEST

START_TEST (test_grow_path_and_put)
{
  logical_block_number_t lbn = lbn_in_tree (0, 3, 7), deep;
  physical_block_number_t pages[4], data = bm_allocate_pbn (), compressed;
  struct vdo_data_location entries[ENTRIES];
  struct vdo_block_map_request request;
  unsigned int height, i;
  bool present;

  bm_make_map (1, 64);
  /* Heights 3, 2, 1, 0, each under the page just installed. */
  for (height = 4; height-- > 0;) {
    ck_assert_int_eq (bm_lookup (lbn, true, &request), VDO_SUCCESS);
    ck_assert (!request.path_complete);
    ck_assert_uint_eq (request.missing_height, height);
    ck_assert_uint_eq (request.page_pbn,
                       height == 3 ? root_pbn (0) : pages[height + 1]);
    ck_assert_uint_eq (request.slot, height == 0 ? 3 : 0);
    ck_assert_uint_eq (request.mapping.state, VDO_MAPPING_STATE_UNMAPPED);
    pages[height] = bm_allocate_pbn ();
    ck_assert_int_eq (bm_install (lbn, height, pages[height], 1),
                      VDO_SUCCESS);
  }
  ck_assert (bm_is_locked (1));
  ck_assert_int_eq (bm_lookup (lbn, true, &request), VDO_SUCCESS);
  ck_assert (request.path_complete);
  ck_assert_uint_eq (request.page_pbn, pages[0]);
  ck_assert_uint_eq (request.slot, 7);
  ck_assert_uint_eq (request.mapping.state, VDO_MAPPING_STATE_UNMAPPED);

  /* A page is installed once only. */
  ck_assert_int_eq (bm_install (lbn, 1, bm_allocate_pbn (), 1), UDS_BAD_STATE);

  ck_assert_int_eq (bm_put (lbn, data, VDO_MAPPING_STATE_UNCOMPRESSED, 2),
                    VDO_SUCCESS);
  ck_assert (bm_is_locked (2));
  check_mapping (lbn, data, VDO_MAPPING_STATE_UNCOMPRESSED);

  /* A zero block, then a compressed fragment; the page keeps its older
   * lock. */
  ck_assert_int_eq (bm_put (lbn + 1, 0, VDO_MAPPING_STATE_UNCOMPRESSED, 3),
                    VDO_SUCCESS);
  compressed = bm_allocate_pbn ();
  ck_assert_int_eq (bm_put (lbn + 2, compressed, vdo_get_state_for_slot (5),
                            4), VDO_SUCCESS);
  ck_assert (bm_is_locked (2));
  ck_assert (!bm_is_locked (3));
  ck_assert (!bm_is_locked (4));
  check_mapping (lbn + 1, 0, VDO_MAPPING_STATE_UNCOMPRESSED);
  check_mapping (lbn + 2, compressed, 7);

  /* Invalid mappings are refused and change nothing. */
  ck_assert_int_eq (bm_put (lbn + 3, 0, vdo_get_state_for_slot (1), 5),
                    VDO_BAD_MAPPING);
  ck_assert_int_eq (bm_put (lbn + 3, 1, VDO_MAPPING_STATE_UNCOMPRESSED, 5),
                    VDO_BAD_MAPPING);
  check_mapping (lbn + 3, 0, VDO_MAPPING_STATE_UNMAPPED);

  /* One range read gives the whole page. */
  ck_assert_int_eq (bm_read_leaf (lbn / ENTRIES, entries, &present),
                    VDO_SUCCESS);
  ck_assert (present);
  for (i = 0; i < ENTRIES; i++) {
    physical_block_number_t pbn = i == 7 ? data : i == 9 ? compressed : 0;
    unsigned int state = i == 7 || i == 8 ? 1 : i == 9 ? 7 : 0;

    ck_assert_uint_eq (entries[i].pbn, pbn);
    ck_assert_uint_eq (entries[i].state, state);
  }

  /* A deep leaf (height-3 slot 1) shares the root and height-3 page. */
  deep = lbn_in_tree (0, (uint64_t) ENTRIES * ENTRIES, 0);
  ck_assert_int_eq (bm_lookup (deep, false, &request), VDO_SUCCESS);
  ck_assert_uint_eq (request.missing_height, 2);
  ck_assert_uint_eq (request.page_pbn, pages[3]);
  ck_assert_uint_eq (request.slot, 1);
  ck_assert_uint_eq (bm_map (deep, data, VDO_MAPPING_STATE_UNCOMPRESSED, 6),
                     3);
  check_mapping (deep, data, VDO_MAPPING_STATE_UNCOMPRESSED);
  check_mapping (lbn, data, VDO_MAPPING_STATE_UNCOMPRESSED);
}
END_TEST

/* An update of the slot a lookup found, without a second walk, behaves
 * as a put: the same journal lock, checks and refusals. */
START_TEST (test_update_found_slot)
{
  logical_block_number_t lbn = lbn_in_tree (1, 2, 5);
  logical_block_number_t absent = lbn_in_tree (1, 3, 0);
  physical_block_number_t first = bm_allocate_pbn (), second;
  struct vdo_block_map_request request, missing;

  bm_make_map (1, 64);
  bm_map (lbn, first, VDO_MAPPING_STATE_UNCOMPRESSED, 1);
  ck_assert_int_eq (bm_lookup (lbn, false, &request), VDO_SUCCESS);
  ck_assert (request.path_complete);
  ck_assert_uint_eq (request.mapping.pbn, first);

  second = bm_allocate_pbn ();
  ck_assert_int_eq (bm_update_found (&request, second,
                                     vdo_get_state_for_slot (3), 7),
                    VDO_SUCCESS);
  check_mapping (lbn, second, vdo_get_state_for_slot (3));
  /* The page was dirtied at 1 already: it keeps that lock only. */
  ck_assert (bm_is_locked (1));
  ck_assert (!bm_is_locked (7));

  /* Invalid mappings are refused and change nothing. */
  ck_assert_int_eq (bm_update_found (&request, 0, vdo_get_state_for_slot (1),
                                     8), VDO_BAD_MAPPING);
  check_mapping (lbn, second, vdo_get_state_for_slot (3));

  /* A lookup that found no leaf gives no slot to update. */
  ck_assert_int_eq (bm_lookup (absent, false, &missing), VDO_SUCCESS);
  ck_assert (!missing.path_complete);
  ck_assert_int_eq (bm_update_found (&missing, first,
                                     VDO_MAPPING_STATE_UNCOMPRESSED, 8),
                    UDS_BAD_STATE);
  check_mapping (absent, 0, VDO_MAPPING_STATE_UNMAPPED);

  /* Unmapping through the found slot. */
  ck_assert_int_eq (bm_update_found (&request, 0, VDO_MAPPING_STATE_UNMAPPED,
                                     9), VDO_SUCCESS);
  check_mapping (lbn, 0, VDO_MAPPING_STATE_UNMAPPED);
}
END_TEST

START_TEST (test_drain_writes_pages)
{
  logical_block_number_t lbn = lbn_in_tree (0, 3, 7);
  physical_block_number_t data = bm_allocate_pbn ();
  struct vdo_block_map_statistics stats;
  struct vdo_block_map_path slots;
  struct grown_path path;
  uint8_t buffer[VDO_BLOCK_SIZE];
  int height;

  bm_make_map (1, 64);
  ck_assert_uint_eq (bm_map (lbn, data, VDO_MAPPING_STATE_UNCOMPRESSED, 1),
                     4);
  ck_assert_int_eq (bm_put (lbn + 1, 0, VDO_MAPPING_STATE_UNCOMPRESSED, 3),
                    VDO_SUCCESS);
  stats = bm_stats ();
  ck_assert_uint_eq (stats.dirty_pages, 5);
  ck_assert_uint_eq (stats.pages_written, 0);

  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  stats = bm_stats ();
  ck_assert_uint_eq (stats.dirty_pages, 0);
  /* All five pages were new: each written twice. */
  ck_assert_uint_eq (stats.pages_written, 10);
  ck_assert_uint_ge (stats.flushes, 1);
  ck_assert (!bm_is_locked (1));
  ck_assert (!bm_is_locked (2));
  ck_assert (!bm_is_locked (3));

  /* Every page decodes: version 4.1, initialized, nonce, its own PBN. */
  find_path (lbn, &path);
  ck_assert_int_eq (vdo_compute_block_map_path (lbn, ROOTS, &slots),
                    VDO_SUCCESS);
  for (height = VDO_BLOCK_MAP_ROOT_HEIGHT; height >= 0; height--) {
    struct vdo_block_map_page_header header;

    ck_assert (bm_disk_page_is_valid (path.pages[height], buffer));
    vdo_decode_block_map_page_header (buffer, &header);
    ck_assert_uint_eq (header.version.major, 4);
    ck_assert_uint_eq (header.version.minor, 1);
    ck_assert (header.initialized);
    ck_assert_uint_eq (header.nonce, bm.states.nonce);
    ck_assert_uint_eq (header.pbn, path.pages[height]);
    ck_assert (bm_is_data_block (path.pages[height]) == (height < 4));
  }
  check_disk_entry (path.pages[0], 7, data, VDO_MAPPING_STATE_UNCOMPRESSED);
  check_disk_entry (path.pages[0], 8, 0, VDO_MAPPING_STATE_UNCOMPRESSED);
  check_disk_entry (path.pages[0], 9, 0, VDO_MAPPING_STATE_UNMAPPED);
  check_disk_entry (path.pages[1], 3, path.pages[0],
                    VDO_MAPPING_STATE_UNCOMPRESSED);

  /* A page valid on disk is written once from now on. */
  ck_assert_int_eq (bm_put (lbn + 1, data, VDO_MAPPING_STATE_UNCOMPRESSED, 4),
                    VDO_SUCCESS);
  ck_assert (bm_is_locked (4));
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  ck_assert_uint_eq (bm_stats ().pages_written, 11);
  ck_assert (!bm_is_locked (4));
  check_disk_entry (path.pages[0], 8, data, VDO_MAPPING_STATE_UNCOMPRESSED);
}
END_TEST

START_TEST (test_fresh_page_double_write)
{
  logical_block_number_t first = lbn_in_tree (0, 0, 0);
  logical_block_number_t second = lbn_in_tree (0, 1, 0);
  physical_block_number_t data = bm_allocate_pbn (), leaf;
  struct vdo_block_map_page_header header;
  struct vdo_block_map_request request;
  uint8_t buffer[VDO_BLOCK_SIZE];
  struct grown_path path;

  bm_make_map (1, 64);
  bm_map (first, data, VDO_MAPPING_STATE_UNCOMPRESSED, 1);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  find_path (first, &path);

  /* A second leaf under the same height-1 page. */
  ck_assert_int_eq (bm_lookup (second, true, &request), VDO_SUCCESS);
  ck_assert_uint_eq (request.missing_height, 0);
  ck_assert_uint_eq (request.page_pbn, path.pages[1]);
  leaf = bm_allocate_pbn ();
  ck_assert_int_eq (bm_install (second, 0, leaf, 3), VDO_SUCCESS);
  ck_assert_int_eq (bm_put (second, data, VDO_MAPPING_STATE_UNCOMPRESSED, 4),
                    VDO_SUCCESS);

  /* The parent's write and the new leaf's first write succeed; the leaf's
   * second write (initialized = 1) fails. */
  vdo_io_inject_error (bm.io, VDO_IO_OP_BIT (VDO_IO_WRITE), 2, EIO);
  ck_assert_int_eq (bm_drain (), VDO_READ_ONLY);
  vdo_io_inject_error (bm.io, 0, 0, 0);
  ck_assert (vdo_is_read_only (bm.read_only));

  check_disk_entry (path.pages[1], 1, leaf, VDO_MAPPING_STATE_UNCOMPRESSED);
  bm_read_block (leaf, buffer);
  vdo_decode_block_map_page_header (buffer, &header);
  ck_assert (!header.initialized);
  ck_assert_uint_eq (header.pbn, leaf);
  ck_assert_uint_eq (header.nonce, bm.states.nonce);
  ck_assert_int_eq (vdo_validate_block_map_page (buffer, bm.states.nonce,
                                                 leaf),
                    VDO_BLOCK_MAP_PAGE_INVALID);
  /* The parent's lock went with its write; the leaf keeps its own. */
  ck_assert (!bm_is_locked (3));
  ck_assert (bm_is_locked (4));

  /* Reopened, the half-written leaf reads as empty. */
  bm_free_map ();
  vdo_free_read_only_notifier (bm.read_only);
  ck_assert_int_eq (vdo_make_read_only_notifier (false, NULL, NULL,
                                                 &bm.read_only), 0);
  bm_make_map (1, 64);
  ck_assert_int_eq (bm_lookup (second, false, &request), VDO_SUCCESS);
  ck_assert (request.path_complete);
  ck_assert_uint_eq (request.page_pbn, leaf);
  ck_assert_uint_eq (request.mapping.state, VDO_MAPPING_STATE_UNMAPPED);
  check_mapping (first, data, VDO_MAPPING_STATE_UNCOMPRESSED);
}
END_TEST

START_TEST (test_write_error_read_only)
{
  logical_block_number_t lbn = lbn_in_tree (2, 0, 1);
  physical_block_number_t data = bm_allocate_pbn ();
  struct vdo_block_map_request request;
  uint8_t buffer[VDO_BLOCK_SIZE];

  bm_make_map (1, 64);
  bm_map (lbn, data, VDO_MAPPING_STATE_UNCOMPRESSED, 1);
  ck_assert_int_eq (bm_lookup (lbn, false, &request), VDO_SUCCESS);

  vdo_io_inject_error (bm.io, VDO_IO_OP_BIT (VDO_IO_WRITE), 0, EIO);
  ck_assert_int_eq (bm_drain (), VDO_READ_ONLY);
  ck_assert (vdo_is_read_only (bm.read_only));
  vdo_io_inject_error (bm.io, 0, 0, 0);

  /* Nothing was written, the locks stay, updates are refused, and pages
   * in memory still answer lookups. */
  ck_assert (!bm_disk_page_is_valid (request.page_pbn, buffer));
  ck_assert (!bm_disk_page_is_valid (root_pbn (2), buffer));
  ck_assert (bm_is_locked (1));
  ck_assert (bm_is_locked (2));
  ck_assert_int_eq (bm_put (lbn, data, VDO_MAPPING_STATE_UNCOMPRESSED, 3),
                    VDO_READ_ONLY);
  ck_assert_int_eq (bm_update_found (&request, data,
                                     VDO_MAPPING_STATE_UNCOMPRESSED, 3),
                    VDO_READ_ONLY);
  ck_assert_int_eq (bm_install (lbn_in_tree (2, 1, 0), 0, bm_allocate_pbn (),
                                3), VDO_READ_ONLY);
  check_mapping (lbn, data, VDO_MAPPING_STATE_UNCOMPRESSED);
  ck_assert_int_eq (bm_drain (), VDO_READ_ONLY);
  ck_assert_uint_eq (bm_stats ().dirty_pages, 5);
}
END_TEST

START_TEST (test_read_error_read_only)
{
  struct vdo_block_map_request request;

  bm_make_map (1, 64);
  vdo_io_inject_error (bm.io, VDO_IO_OP_BIT (VDO_IO_READ), 0, EIO);
  ck_assert_int_eq (bm_lookup (0, false, &request), VDO_READ_ONLY);
  ck_assert (vdo_is_read_only (bm.read_only));
  vdo_io_inject_error (bm.io, 0, 0, 0);
  /* The failed page was forgotten: reads work again. */
  ck_assert_int_eq (bm_lookup (0, false, &request), VDO_SUCCESS);
  ck_assert_uint_eq (request.missing_height, 3);
}
END_TEST

START_TEST (test_misplaced_pages)
{
  logical_block_number_t lbn = lbn_in_tree (1, 0, 0);
  physical_block_number_t data = bm_allocate_pbn ();
  struct vdo_block_map_request request;
  struct grown_path path;
  uint8_t *page = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);

  bm_make_map (1, 64);
  bm_map (lbn, data, VDO_MAPPING_STATE_UNCOMPRESSED, 1);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  find_path (lbn, &path);
  bm_free_map ();

  /* A valid leaf page stored at the wrong PBN is an error... */
  vdo_format_block_map_page (page, bm.states.nonce, path.pages[0] + 1, true);
  ck_assert_int_eq (vdo_io_write_blocks (bm.io, path.pages[0], 1, page), 0);
  bm_make_map (1, 64);
  ck_assert_int_eq (bm_lookup (lbn, false, &request), VDO_BAD_PAGE);
  ck_assert (vdo_is_read_only (bm.read_only));
  bm_free_map ();

  /* ... while a misplaced interior page reads as empty. */
  vdo_free_read_only_notifier (bm.read_only);
  ck_assert_int_eq (vdo_make_read_only_notifier (false, NULL, NULL,
                                                 &bm.read_only), 0);
  vdo_format_block_map_page (page, bm.states.nonce, path.pages[1] + 1, true);
  ck_assert_int_eq (vdo_io_write_blocks (bm.io, path.pages[1], 1, page), 0);
  bm_make_map (1, 64);
  ck_assert_int_eq (bm_lookup (lbn, false, &request), VDO_SUCCESS);
  ck_assert (!request.path_complete);
  ck_assert_uint_eq (request.missing_height, 0);
  ck_assert_uint_eq (request.page_pbn, path.pages[1]);
  ck_assert (!vdo_is_read_only (bm.read_only));
  vdo_io_free_buffer (page);
}
END_TEST

START_TEST (test_invalid_entries)
{
  logical_block_number_t lbn = lbn_in_tree (3, 0, 4);
  physical_block_number_t data = bm_allocate_pbn ();
  struct vdo_data_location entries[ENTRIES];
  struct vdo_block_map_request request;
  struct grown_path path;
  uint8_t *page = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  bool present;

  bm_make_map (1, 64);
  bm_map (lbn, data, VDO_MAPPING_STATE_UNCOMPRESSED, 1);
  bm_map (lbn + 1, data, VDO_MAPPING_STATE_UNCOMPRESSED, 3);
  ck_assert_int_eq (bm_drain (), VDO_SUCCESS);
  find_path (lbn, &path);
  bm_free_map ();

  /* A leaf entry naming a block outside the slabs' data. */
  ck_assert_int_eq (vdo_io_read_blocks (bm.io, path.pages[0], 1, page), 0);
  vdo_set_block_map_page_entry (page, 4, 1, VDO_MAPPING_STATE_UNCOMPRESSED);
  ck_assert_int_eq (vdo_io_write_blocks (bm.io, path.pages[0], 1, page), 0);
  bm_make_map (1, 64);
  ck_assert_int_eq (bm_lookup (lbn, false, &request), VDO_BAD_MAPPING);
  ck_assert_uint_eq (request.mapping.state, VDO_MAPPING_STATE_UNMAPPED);
  /* A write may go on: the slot is still reported. */
  ck_assert (request.path_complete);
  ck_assert_uint_eq (request.page_pbn, path.pages[0]);
  ck_assert_uint_eq (request.slot, 4);
  ck_assert_int_eq (bm_read_leaf (lbn / ENTRIES, entries, &present),
                    VDO_BAD_MAPPING);
  ck_assert (present);
  ck_assert_uint_eq (entries[4].state, VDO_MAPPING_STATE_UNMAPPED);
  ck_assert_uint_eq (entries[5].pbn, data);
  check_mapping (lbn + 1, data, VDO_MAPPING_STATE_UNCOMPRESSED);
  ck_assert (!vdo_is_read_only (bm.read_only));
  bm_free_map ();

  /* An interior entry in a compressed state. */
  ck_assert_int_eq (vdo_io_read_blocks (bm.io, path.pages[2], 1, page), 0);
  vdo_set_block_map_page_entry (page, 0, path.pages[1],
                                vdo_get_state_for_slot (0));
  ck_assert_int_eq (vdo_io_write_blocks (bm.io, path.pages[2], 1, page), 0);
  bm_make_map (1, 64);
  ck_assert_int_eq (bm_lookup (lbn, false, &request), VDO_BAD_MAPPING);
  ck_assert (vdo_is_read_only (bm.read_only));
  vdo_io_free_buffer (page);
}
END_TEST

/* Two allocating lookups of one missing page: the second waits for the
 * first's installation. */
struct claim_call {
  struct vdo_completion launch;
  struct vdo_block_map_request first, second;
  struct bm_sync first_done, second_done;
};

static void
launch_both (struct vdo_completion *completion)
{
  struct claim_call *call = completion->parent;

  vdo_block_map_find_slot (bm.map, &call->first);
  vdo_block_map_find_slot (bm.map, &call->second);
}

static void
claim_request_done (struct vdo_completion *completion)
{
  struct bm_sync *sync = completion->parent;

  sync->completion.result = completion->result;
  sync->completion.callback (&sync->completion);
}

static void
prepare_claim_request (struct vdo_block_map_request *request,
                       struct bm_sync *sync, logical_block_number_t lbn)
{
  struct vdo_work_queue *queue = vdo_block_map_zone_queue (bm.map, 0);

  bm_sync_init (sync, queue);
  memset (request, 0, sizeof *request);
  request->lbn = lbn;
  request->allocate = true;
  vdo_prepare_completion (&request->completion, claim_request_done, queue,
                          sync);
}

START_TEST (test_allocation_claims)
{
  struct claim_call call;
  struct vdo_block_map_request request;
  physical_block_number_t page = bm_allocate_pbn ();

  bm_make_map (1, 64);
  /* Load the root first, so both walks below run without waiting. */
  ck_assert_int_eq (bm_lookup (0, false, &request), VDO_SUCCESS);

  prepare_claim_request (&call.first, &call.first_done, 0);
  prepare_claim_request (&call.second, &call.second_done, 1);
  vdo_prepare_completion (&call.launch, launch_both,
                          vdo_block_map_zone_queue (bm.map, 0), &call);
  vdo_enqueue_completion (&call.launch);
  ck_assert_int_eq (bm_sync_wait (&call.first_done), VDO_SUCCESS);
  ck_assert_uint_eq (call.first.missing_height, 3);
  bm_barrier (0);
  ck_assert (!bm_sync_done (&call.second_done));

  /* A reader is not held up by the claim. */
  ck_assert_int_eq (bm_lookup (2, false, &request), VDO_SUCCESS);
  ck_assert_uint_eq (request.missing_height, 3);

  ck_assert_int_eq (bm_install (0, 3, page, 1), VDO_SUCCESS);
  ck_assert_int_eq (bm_sync_wait (&call.second_done), VDO_SUCCESS);
  ck_assert_uint_eq (call.second.missing_height, 2);
  ck_assert_uint_eq (call.second.page_pbn, page);

  /* An abandoned claim passes to the next allocating lookup. */
  bm_abandon (&call.second);
  ck_assert_int_eq (bm_lookup (3, true, &request), VDO_SUCCESS);
  ck_assert_uint_eq (request.missing_height, 2);
}
END_TEST

/* --- The written-clean fixture ---------------------------------------- */

static const char *
fixtures_dir (void)
{
  const char *dir = getenv ("VDO_FIXTURES");

  return dir != NULL && dir[0] ? dir : "/work/shared/fixtures";
}

/* Restore the image once, into a cache later runs reuse; the file
 * appears under its name only once complete. */
static bool
restore_written_clean (char *image, size_t size)
{
  gchar *compressed, *partial, *command;
  struct stat st;
  int status;

  compressed = g_strdup_printf ("%s/written-clean.img.zst", fixtures_dir ());
  if (stat (compressed, &st) != 0) {
    g_free (compressed);
    return false;
  }
  snprintf (image, size, "/tmp/vdo-test-cache-%u/written-clean.img",
            (unsigned int) getuid ());
  if (stat (image, &st) == 0) {
    g_free (compressed);
    return true;
  }
  partial = g_strdup_printf ("%s.%d", image, (int) getpid ());
  command = g_strdup_printf ("mkdir -p \"$(dirname '%s')\" && zstd -q -d"
                             " --sparse '%s' -o '%s' && mv '%s' '%s'",
                             image, compressed, partial, partial, image);
  status = system (command);
  if (status != 0)
    unlink (partial);
  ck_assert_msg (status == 0, "cannot restore %s", compressed);
  g_free (command);
  g_free (partial);
  g_free (compressed);
  return true;
}

static void
check_fixture_mappings (const char *expected_path)
{
  FILE *expected = fopen (expected_path, "r");
  char line[512];
  unsigned int checked = 0, mapped = 0;

  ck_assert_ptr_nonnull (expected);
  while (fgets (line, sizeof line, expected) != NULL) {
    unsigned long long lbn, pbn, slot;
    char kind[64], sha[80], how[32];
    int fields;
    unsigned int state;

    if (line[0] == '#' || line[0] == '\n')
      continue;
    fields = sscanf (line, "%llu %63s %79s %31s %llu slot %llu", &lbn, kind,
                     sha, how, &pbn, &slot);
    ck_assert_int_ge (fields, 5);
    if (strcmp (how, "unmapped") == 0)
      state = VDO_MAPPING_STATE_UNMAPPED;
    else if (strcmp (how, "mapped") == 0)
      state = VDO_MAPPING_STATE_UNCOMPRESSED;
    else {
      ck_assert_str_eq (how, "compressed");
      ck_assert_int_eq (fields, 6);
      state = vdo_get_state_for_slot (slot);
    }
    check_mapping (lbn, pbn, state);
    checked++;
    mapped += state != VDO_MAPPING_STATE_UNMAPPED;
  }
  fclose (expected);
  ck_assert_uint_eq (checked, 654);
  ck_assert_uint_gt (mapped, 500);
}

START_TEST (test_written_clean_fixture)
{
  char image[PATH_MAX], expected[PATH_MAX];
  struct vdo_data_location entries[ENTRIES];
  bool present;
  unsigned int zones;

  if (!restore_written_clean (image, sizeof image)) {
    fprintf (stderr, "skipping the written-clean test: no %s\n",
             fixtures_dir ());
    return;
  }
  snprintf (expected, sizeof expected, "%s/written-clean.expected.txt",
            fixtures_dir ());
  bm_setup_existing (image, true);
  ck_assert_uint_eq (bm.states.nonce, 1795625259610131ull);
  /* One zone with a cache too small for the pages, then three. */
  for (zones = 1; zones <= 3; zones += 2) {
    bm_make_map (zones, zones == 1 ? 4 : 48);
    check_fixture_mappings (expected);
    ck_assert_int_eq (bm_read_leaf (0, entries, &present), VDO_SUCCESS);
    ck_assert (present);
    ck_assert_uint_eq (entries[0].pbn, 679316);
    ck_assert_uint_eq (entries[416].pbn, 0);
    ck_assert_uint_eq (entries[416].state, VDO_MAPPING_STATE_UNCOMPRESSED);
    ck_assert_uint_eq (bm_stats ().pages_written, 0);
    bm_free_map ();
  }
  ck_assert (!vdo_is_read_only (bm.read_only));
}
END_TEST

Suite *
block_map_suite (void)
{
  Suite *s = suite_create ("block-map");
  TCase *basic = tcase_create ("lookups-and-updates");
  TCase *errors = tcase_create ("errors");
  TCase *fixture = tcase_create ("written-clean");

  tcase_add_checked_fixture (basic, bm_setup, bm_teardown);
  tcase_set_timeout (basic, 300);
  tcase_add_test (basic, test_empty_lookups);
  tcase_add_test (basic, test_grow_path_and_put);
  tcase_add_test (basic, test_update_found_slot);
  tcase_add_test (basic, test_drain_writes_pages);
  tcase_add_test (basic, test_allocation_claims);
  suite_add_tcase (s, basic);

  tcase_add_checked_fixture (errors, bm_setup, bm_teardown);
  tcase_set_timeout (errors, 300);
  tcase_add_test (errors, test_fresh_page_double_write);
  tcase_add_test (errors, test_write_error_read_only);
  tcase_add_test (errors, test_read_error_read_only);
  tcase_add_test (errors, test_misplaced_pages);
  tcase_add_test (errors, test_invalid_entries);
  suite_add_tcase (s, errors);

  tcase_add_checked_fixture (fixture, NULL, bm_teardown);
  tcase_set_timeout (fixture, 300);
  tcase_add_test (fixture, test_written_clean_fixture);
  suite_add_tcase (s, fixture);
  return s;
}
