/* nbdkit-vdo: vdoadm dump and vdoadm list. */
#include <config.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "index-geometry.h"
#include "status.h"
#include "vdoadm.h"
#include "volume.h"

static void
print_json (const struct vdo_volume *volume)
{
  const struct vdo_volume_geometry *g = vdo_volume_get_geometry (volume);
  const struct vdo_component_states *s = vdo_volume_get_states (volume);
  const struct slab_config *sc = &s->slab_depot.slab_config;
  char uuid[37], memory[VDO_INDEX_MEMORY_TEXT_SIZE];
  int i;

  uuid_unparse_lower (g->uuid, uuid);
  vdo_format_index_memory (g->index_config.mem, memory);
  printf ("{\n  \"disk\": ");
  vdoadm_print_json_string (vdo_volume_path (volume));
  printf (",\n  \"device_blocks\": %" PRIu64 ",\n",
          vdo_volume_device_blocks (volume));
  printf ("  \"geometry\": {\n"
          "    \"version\": \"%" PRIu32 ".0\",\n"
          "    \"nonce\": %" PRIu64 ",\n"
          "    \"uuid\": \"%s\",\n"
          "    \"bio_offset\": %" PRIu64 ",\n"
          "    \"index_region\": { \"start\": %" PRIu64 ", \"blocks\": %" PRIu64 " },\n"
          "    \"data_region\": { \"start\": %" PRIu64 " },\n"
          "    \"index_memory\": \"%s\",\n"
          "    \"index_memory_raw\": %" PRIu32 ",\n"
          "    \"sparse_index\": %s\n  },\n",
          g->major_version, g->nonce, uuid, g->bio_offset,
          g->regions[VDO_INDEX_REGION].start_block,
          vdo_geometry_index_region_blocks (g),
          g->regions[VDO_DATA_REGION].start_block, memory,
          g->index_config.mem, g->index_config.sparse ? "true" : "false");
  printf ("  \"super_block\": {\n"
          "    \"pbn\": %" PRIu64 ",\n"
          "    \"volume_version\": \"%" PRIu32 ".%" PRIu32 "\",\n"
          "    \"state\": \"%s\",\n"
          "    \"state_value\": %" PRIu32 ",\n"
          "    \"complete_recoveries\": %" PRIu64 ",\n"
          "    \"read_only_recoveries\": %" PRIu64 ",\n"
          "    \"nonce\": %" PRIu64 "\n  },\n",
          vdo_volume_super_block_pbn (volume),
          s->volume_version.major, s->volume_version.minor,
          vdo_state_name (s->state), s->state, s->complete_recoveries,
          s->read_only_recoveries, s->nonce);
  printf ("  \"config\": {\n"
          "    \"logical_blocks\": %" PRIu64 ",\n"
          "    \"physical_blocks\": %" PRIu64 ",\n"
          "    \"slab_size\": %" PRIu64 ",\n"
          "    \"recovery_journal_size\": %" PRIu64 ",\n"
          "    \"slab_journal_blocks\": %" PRIu64 "\n  },\n",
          s->config.logical_blocks, s->config.physical_blocks,
          s->config.slab_size, s->config.recovery_journal_size,
          s->config.slab_journal_blocks);
  printf ("  \"layout\": {\n"
          "    \"first_free\": %" PRIu64 ",\n"
          "    \"last_free\": %" PRIu64 ",\n"
          "    \"partitions\": [\n",
          s->layout.first_free, s->layout.last_free);
  for (i = 0; i < s->layout.partition_count; i++) {
    const struct vdo_partition *p = &s->layout.partitions[i];

    printf ("      { \"id\": %u, \"name\": \"%s\", \"offset\": %" PRIu64
            ", \"count\": %" PRIu64 " }%s\n", p->id,
            vdo_partition_name (p->id), p->offset, p->count,
            i + 1 < s->layout.partition_count ? "," : "");
  }
  printf ("    ]\n  },\n");
  printf ("  \"recovery_journal\": {\n"
          "    \"journal_start\": %" PRIu64 ",\n"
          "    \"logical_blocks_used\": %" PRIu64 ",\n"
          "    \"block_map_data_blocks\": %" PRIu64 "\n  },\n",
          s->recovery_journal.journal_start,
          s->recovery_journal.logical_blocks_used,
          s->recovery_journal.block_map_data_blocks);
  printf ("  \"slab_depot\": {\n"
          "    \"slab_blocks\": %" PRIu64 ",\n"
          "    \"data_blocks\": %" PRIu64 ",\n"
          "    \"reference_count_blocks\": %" PRIu64 ",\n"
          "    \"slab_journal_blocks\": %" PRIu64 ",\n"
          "    \"slab_journal_flushing_threshold\": %" PRIu64 ",\n"
          "    \"slab_journal_blocking_threshold\": %" PRIu64 ",\n"
          "    \"slab_journal_scrubbing_threshold\": %" PRIu64 ",\n"
          "    \"first_block\": %" PRIu64 ",\n"
          "    \"last_block\": %" PRIu64 ",\n"
          "    \"slab_count\": %" PRIu64 ",\n"
          "    \"zone_count\": %u\n  },\n",
          sc->slab_blocks, sc->data_blocks, sc->reference_count_blocks,
          sc->slab_journal_blocks, sc->slab_journal_flushing_threshold,
          sc->slab_journal_blocking_threshold,
          sc->slab_journal_scrubbing_threshold, s->slab_depot.first_block,
          s->slab_depot.last_block, vdo_volume_slab_count (volume),
          s->slab_depot.zone_count);
  printf ("  \"block_map\": {\n"
          "    \"root_origin\": %" PRIu64 ",\n"
          "    \"root_count\": %" PRIu64 ",\n"
          "    \"flat_page_origin\": %" PRIu64 ",\n"
          "    \"flat_page_count\": %" PRIu64 "\n  }\n}\n",
          s->block_map.root_origin, s->block_map.root_count,
          s->block_map.flat_page_origin, s->block_map.flat_page_count);
}

static void
print_text (const struct vdo_volume *volume)
{
  const struct vdo_volume_geometry *g = vdo_volume_get_geometry (volume);
  const struct vdo_component_states *s = vdo_volume_get_states (volume);
  const struct slab_config *sc = &s->slab_depot.slab_config;
  char uuid[37], memory[VDO_INDEX_MEMORY_TEXT_SIZE];
  int i;

  uuid_unparse_lower (g->uuid, uuid);
  vdo_format_index_memory (g->index_config.mem, memory);
  printf ("Disk: %s (%" PRIu64 " blocks of %d bytes)\n\n",
          vdo_volume_path (volume), vdo_volume_device_blocks (volume),
          VDO_BLOCK_SIZE);
  printf ("Geometry block (version %" PRIu32 ".0)\n", g->major_version);
  printf ("  nonce:              %" PRIu64 "\n", g->nonce);
  printf ("  UUID:               %s\n", uuid);
  printf ("  bio offset:         %" PRIu64 "\n", g->bio_offset);
  printf ("  index region:       start %" PRIu64 ", %" PRIu64 " blocks\n",
          g->regions[VDO_INDEX_REGION].start_block,
          vdo_geometry_index_region_blocks (g));
  printf ("  data region:        start %" PRIu64 "\n",
          g->regions[VDO_DATA_REGION].start_block);
  printf ("  index memory:       %s GB, %s\n", memory,
          g->index_config.sparse ? "sparse" : "dense");
  printf ("\nSuper block (PBN %" PRIu64 ", volume version %" PRIu32 ".%" PRIu32 ")\n",
          vdo_volume_super_block_pbn (volume), s->volume_version.major,
          s->volume_version.minor);
  printf ("  state:              %s (%" PRIu32 ")\n",
          vdo_state_name (s->state), s->state);
  printf ("  complete recoveries:  %" PRIu64 "\n", s->complete_recoveries);
  printf ("  read-only recoveries: %" PRIu64 "\n", s->read_only_recoveries);
  printf ("\nConfig\n");
  printf ("  logical blocks:     %" PRIu64 "\n", s->config.logical_blocks);
  printf ("  physical blocks:    %" PRIu64 "\n", s->config.physical_blocks);
  printf ("  slab size:          %" PRIu64 " blocks\n", s->config.slab_size);
  printf ("  recovery journal:   %" PRIu64 " blocks\n",
          s->config.recovery_journal_size);
  printf ("  slab journal:       %" PRIu64 " blocks\n",
          s->config.slab_journal_blocks);
  printf ("\nLayout (first free %" PRIu64 ", last free %" PRIu64 ")\n",
          s->layout.first_free, s->layout.last_free);
  for (i = 0; i < s->layout.partition_count; i++) {
    const struct vdo_partition *p = &s->layout.partitions[i];

    printf ("  %-17s id %u: blocks %" PRIu64 " .. %" PRIu64 " (%" PRIu64 ")\n",
            vdo_partition_name (p->id), p->id, p->offset,
            p->offset + p->count - 1, p->count);
  }
  printf ("\nRecovery journal\n");
  printf ("  journal start:      %" PRIu64 "\n", s->recovery_journal.journal_start);
  printf ("  logical blocks used: %" PRIu64 "\n",
          s->recovery_journal.logical_blocks_used);
  printf ("  block map blocks:   %" PRIu64 "\n",
          s->recovery_journal.block_map_data_blocks);
  printf ("\nSlab depot\n");
  printf ("  slabs:              %" PRIu64 " (blocks %" PRIu64 " .. %" PRIu64 ")\n",
          vdo_volume_slab_count (volume), s->slab_depot.first_block,
          s->slab_depot.last_block - 1);
  printf ("  per slab:           %" PRIu64 " data, %" PRIu64
          " reference count, %" PRIu64 " journal blocks\n",
          sc->data_blocks, sc->reference_count_blocks, sc->slab_journal_blocks);
  printf ("  journal thresholds: flushing %" PRIu64 ", blocking %" PRIu64
          ", scrubbing %" PRIu64 "\n", sc->slab_journal_flushing_threshold,
          sc->slab_journal_blocking_threshold,
          sc->slab_journal_scrubbing_threshold);
  printf ("  zone count:         %u\n", s->slab_depot.zone_count);
  printf ("\nBlock map\n");
  printf ("  roots:              %" PRIu64 " at %" PRIu64 "\n",
          s->block_map.root_count, s->block_map.root_origin);
}

int
vdoadm_dump (int argc, char **argv)
{
  struct vdo_volume *volume;
  const char *disk = NULL;
  bool json = false;
  int r;

  r = vdoadm_parse_disk_args (argc, argv, "dump", true, &json, &disk);
  if (r >= 0)
    return r;
  r = vdoadm_open_volume (disk, false, &volume);
  if (r != VDO_SUCCESS)
    return vdoadm_exit_status (r);
  if (json)
    print_json (volume);
  else
    print_text (volume);
  vdo_volume_close (volume);
  return EXIT_SUCCESS;
}

static void
print_region (void *context, physical_block_number_t first,
              physical_block_number_t last, const char *description)
{
  (void) context;
  printf ("%" PRIu64 " .. %" PRIu64 ": %s\n", first, last, description);
}

int
vdoadm_list (int argc, char **argv)
{
  struct vdo_volume *volume;
  const char *disk = NULL;
  bool json = false;
  int r;

  r = vdoadm_parse_disk_args (argc, argv, "list", false, &json, &disk);
  if (r >= 0)
    return r;
  r = vdoadm_open_volume (disk, false, &volume);
  if (r != VDO_SUCCESS)
    return vdoadm_exit_status (r);
  vdo_volume_list_metadata (volume, print_region, NULL);
  vdo_volume_close (volume);
  return EXIT_SUCCESS;
}
