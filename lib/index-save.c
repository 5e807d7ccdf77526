/* nbdkit-vdo: creating, saving and loading the dedupe index region.
 *
 * All blocking I/O, run while no index thread touches the state: at
 * make, and at save after the drain.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "byte-order.h"
#include "checksum.h"
#include "dedupe-index-internal.h"
#include "logger.h"
#include "status.h"

/* Saves move through a 1 MiB buffer. */
#define STREAM_CHUNK_BLOCKS 256

static int
write_region_block (struct vdo_dedupe_index *index, block_count_t block,
                    const uint8_t *data)
{
  return vdo_io_write_blocks (index->config.io,
                              vdo_index_device_block (index, block), 1, data);
}

static int
read_region_block (struct vdo_dedupe_index *index, block_count_t block,
                   uint8_t *data)
{
  return vdo_io_read_blocks (index->config.io,
                             vdo_index_device_block (index, block), 1, data);
}

static int
random_nonce (uint64_t *nonce)
{
  ssize_t n = getrandom (nonce, sizeof *nonce, 0);

  if (n != (ssize_t) sizeof *nonce) {
    vdo_log_error ("dedupe index: no random numbers for a nonce: %s",
                   n < 0 ? strerror (errno) : "short read");
    return n < 0 ? errno : EIO;
  }
  return VDO_SUCCESS;
}

static void
describe_super (const struct vdo_dedupe_index *index,
                struct vdo_index_super_block *super)
{
  *super = (struct vdo_index_super_block) {
    .nonce = index->config.nonce,
    .instance_nonce = index->instance_nonce,
    .mem = index->config.mem,
    .sparse = index->config.sparse,
    .records_per_chapter = index->records_per_chapter,
    .chapters = index->chapters,
    .dense_chapters = index->dense_chapters,
    .blocks_per_chapter = index->layout.blocks_per_chapter,
    .volume_index_pages = index->layout.volume_index_pages,
    .save_slot_blocks = index->layout.save_slot_blocks,
    .total_blocks = index->layout.total_blocks,
  };
}

/* Why block 1 is not this volume's index of this configuration, or
 * NULL if it is. */
static const char *
super_block_mismatch (const struct vdo_dedupe_index *index,
                      const uint8_t *block, uint64_t *instance_nonce)
{
  struct vdo_index_super_block expected, found;

  switch (vdo_decode_index_super_block (block, &found)) {
  case VDO_SUCCESS:
    break;
  case VDO_BAD_MAGIC:
    return "no index super block";
  case VDO_CHECKSUM_MISMATCH:
    return "the super block's checksum is wrong";
  default:
    return "the super block has an unsupported version";
  }
  describe_super (index, &expected);
  if (found.nonce != expected.nonce)
    return "the super block belongs to another volume";
  if (found.mem != expected.mem || found.sparse != expected.sparse
      || found.records_per_chapter != expected.records_per_chapter
      || found.chapters != expected.chapters
      || found.dense_chapters != expected.dense_chapters
      || found.blocks_per_chapter != expected.blocks_per_chapter
      || found.volume_index_pages != expected.volume_index_pages
      || found.save_slot_blocks != expected.save_slot_blocks
      || found.total_blocks != expected.total_blocks)
    return "the super block describes another configuration";
  *instance_nonce = found.instance_nonce;
  return NULL;
}

/* Region block 0 zeroed (no UDS super block for the kernel to find),
 * our super block, both save slots empty. */
static int
create_index (struct vdo_dedupe_index *index, const char *why)
{
  struct vdo_index_super_block super;
  uint8_t *block;
  int result;

  result = random_nonce (&index->instance_nonce);
  if (result != VDO_SUCCESS)
    return result;
  if (index->config.read_only) {
    vdo_log_info ("dedupe index: %s; read-only, so starting empty in "
                  "memory without writing the region", why);
    return VDO_SUCCESS;
  }

  block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (!block)
    return ENOMEM;
  result = write_region_block (index, VDO_INDEX_UDS_BLOCK, block);
  if (result == VDO_SUCCESS)
    result = write_region_block (index, index->layout.save_slot_start[0],
                                 block);
  if (result == VDO_SUCCESS)
    result = write_region_block (index, index->layout.save_slot_start[1],
                                 block);
  if (result == VDO_SUCCESS) {
    describe_super (index, &super);
    vdo_encode_index_super_block (&super, block);
    result = write_region_block (index, VDO_INDEX_SUPER_BLOCK, block);
  }
  if (result == VDO_SUCCESS)
    result = vdo_io_flush (index->config.io);
  vdo_io_free_buffer (block);
  if (result == VDO_SUCCESS)
    vdo_log_info ("dedupe index: %s; created a new empty index (%" PRIu32
                  " chapters of %" PRIu64 " records, %" PRIu64 " blocks)",
                  why, index->chapters, index->records_per_chapter,
                  index->layout.total_blocks);
  return result;
}

/* --- Save streams ----------------------------------------------------- */

/* A save slot's stream, written or read through a buffer in chunks,
 * its CRC kept as it goes. */
struct stream {
  struct vdo_dedupe_index *index;
  uint8_t *buffer;
  size_t used;                  /* bytes in the buffer (writing) */
  size_t filled, consumed;      /* bytes read in, taken out (reading) */
  block_count_t next_block;     /* region block of the next chunk */
  uint64_t left;                /* bytes still to read from disk */
  uint32_t crc;
  uint64_t bytes;
  int result;
};

static int
open_stream (struct stream *stream, struct vdo_dedupe_index *index,
             unsigned int slot, uint64_t bytes_to_read)
{
  memset (stream, 0, sizeof *stream);
  stream->index = index;
  stream->next_block = index->layout.save_slot_start[slot] + 1;
  stream->left = bytes_to_read;
  stream->crc = vdo_crc32 ((const uint8_t *) "", 0);
  stream->buffer = vdo_io_alloc_buffer ((size_t) STREAM_CHUNK_BLOCKS
                                        * VDO_BLOCK_SIZE);
  return stream->buffer ? VDO_SUCCESS : ENOMEM;
}

static void
close_stream (struct stream *stream)
{
  vdo_io_free_buffer (stream->buffer);
  stream->buffer = NULL;
}

static void
write_chunk (struct stream *stream)
{
  block_count_t blocks = (stream->used + VDO_BLOCK_SIZE - 1) / VDO_BLOCK_SIZE;

  if (stream->result != VDO_SUCCESS || blocks == 0) {
    /* After a failed write the rest is dropped: the save has failed. */
    stream->used = 0;
    return;
  }
  /* Zero padding after the stream's end; not part of its CRC. */
  memset (stream->buffer + stream->used, 0,
          blocks * VDO_BLOCK_SIZE - stream->used);
  stream->result = vdo_io_write_blocks (stream->index->config.io,
                                        vdo_index_device_block
                                          (stream->index, stream->next_block),
                                        blocks, stream->buffer);
  stream->next_block += blocks;
  stream->used = 0;
}

static void
stream_put (struct stream *stream, const void *data, size_t size)
{
  const uint8_t *bytes = data;
  size_t capacity = (size_t) STREAM_CHUNK_BLOCKS * VDO_BLOCK_SIZE;

  if (stream->result != VDO_SUCCESS)
    return;
  stream->crc = vdo_crc32_extend (stream->crc, bytes, size);
  stream->bytes += size;
  while (size > 0) {
    size_t n = capacity - stream->used;

    if (n > size)
      n = size;
    memcpy (stream->buffer + stream->used, bytes, n);
    stream->used += n;
    bytes += n;
    size -= n;
    if (stream->used == capacity)
      write_chunk (stream);
  }
}

static void
stream_put_le64 (struct stream *stream, uint64_t value)
{
  uint8_t bytes[8];

  put_le64 (bytes, value);
  stream_put (stream, bytes, sizeof bytes);
}

static void
stream_put_le32 (struct stream *stream, uint32_t value)
{
  uint8_t bytes[4];

  put_le32 (bytes, value);
  stream_put (stream, bytes, sizeof bytes);
}

/* Take SIZE bytes; false (with stream->result set) past the end or on
 * an I/O error. */
static bool
stream_get (struct stream *stream, void *data, size_t size)
{
  uint8_t *bytes = data;
  size_t capacity = (size_t) STREAM_CHUNK_BLOCKS * VDO_BLOCK_SIZE;

  while (size > 0) {
    size_t n;

    if (stream->result != VDO_SUCCESS)
      return false;
    if (stream->consumed == stream->filled) {
      size_t want = stream->left < capacity ? (size_t) stream->left
                                            : capacity;
      block_count_t blocks = (want + VDO_BLOCK_SIZE - 1) / VDO_BLOCK_SIZE;

      if (want == 0) {
        stream->result = UDS_CORRUPT_DATA;
        return false;
      }
      stream->result = vdo_io_read_blocks (stream->index->config.io,
                                           vdo_index_device_block
                                             (stream->index,
                                              stream->next_block),
                                           blocks, stream->buffer);
      stream->next_block += blocks;
      stream->left -= want;
      stream->filled = want;
      stream->consumed = 0;
      continue;
    }
    n = stream->filled - stream->consumed;
    if (n > size)
      n = size;
    memcpy (bytes, stream->buffer + stream->consumed, n);
    stream->crc = vdo_crc32_extend (stream->crc, bytes, n);
    stream->consumed += n;
    stream->bytes += n;
    bytes += n;
    size -= n;
  }
  return true;
}

static uint64_t
stream_get_le64 (struct stream *stream)
{
  uint8_t bytes[8] = { 0 };

  stream_get (stream, bytes, sizeof bytes);
  return get_le64 (bytes);
}

static uint32_t
stream_get_le32 (struct stream *stream)
{
  uint8_t bytes[4] = { 0 };

  stream_get (stream, bytes, sizeof bytes);
  return get_le32 (bytes);
}

/* --- Slot headers ----------------------------------------------------- */

/* Read both slot headers; VALID[i] tells which hold a save of this
 * index that fits its layout. */
static int
read_slot_headers (struct vdo_dedupe_index *index,
                   struct vdo_index_save_header headers[VDO_INDEX_SAVE_SLOTS],
                   bool valid[VDO_INDEX_SAVE_SLOTS])
{
  const struct vdo_index_layout *layout = &index->layout;
  uint8_t *block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  unsigned int i;
  int result = VDO_SUCCESS;

  if (!block)
    return ENOMEM;
  for (i = 0; i < VDO_INDEX_SAVE_SLOTS; i++) {
    struct vdo_index_save_header *h = &headers[i];

    valid[i] = false;
    result = read_region_block (index, layout->save_slot_start[i], block);
    if (result != VDO_SUCCESS)
      break;
    if (vdo_decode_index_save_header (block, h) != VDO_SUCCESS)
      continue;
    valid[i] = h->nonce == index->config.nonce
               && h->instance_nonce == index->instance_nonce
               && h->records_per_chapter == layout->records_per_chapter
               && h->chapters == layout->chapters
               && h->volume_index_pages == layout->volume_index_pages
               && h->open_records < layout->records_per_chapter
               && h->saved_pages <= layout->volume_index_pages
               && h->stream_bytes
                  == vdo_index_save_stream_bytes (layout, h->open_records,
                                                  h->saved_pages);
  }
  vdo_io_free_buffer (block);
  return result;
}

static int
invalidate_slot (struct vdo_dedupe_index *index, unsigned int slot)
{
  uint8_t *block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  int result;

  if (!block)
    return ENOMEM;
  result = write_region_block (index, index->layout.save_slot_start[slot],
                               block);
  if (result == VDO_SUCCESS)
    result = vdo_io_flush (index->config.io);
  vdo_io_free_buffer (block);
  return result;
}

/* --- Saving ----------------------------------------------------------- */

static void
write_stream (struct vdo_dedupe_index *index, struct stream *stream,
              uint64_t *saved_pages)
{
  uint64_t pages = vdo_volume_index_page_count (index->volume_index);
  uint64_t bitmap_bytes = (index->layout.volume_index_pages + 7) / 8;
  uint32_t bpc = index->layout.blocks_per_chapter;
  uint64_t i, n;
  uint8_t *bitmap;
  uint32_t c, b;

  for (i = 0; i < vdo_open_chapter_size (index->open_chapter); i++) {
    const struct vdo_index_record *record =
      vdo_open_chapter_record (index->open_chapter, i);

    stream_put (stream, record->name.bytes, VDO_CHUNK_NAME_SIZE);
    stream_put (stream, record->advice, VDO_ADVICE_SIZE);
  }

  for (c = 0; c < index->chapters; c++) {
    const uint32_t *prefixes = vdo_index_chapter_prefixes (index, c);

    stream_put_le64 (stream, index->chapter_vcns[c]);
    for (b = 0; b < bpc; b++)
      stream_put_le32 (stream, prefixes[b]);
  }

  /* Only pages holding entries: a new or lightly used index saves
   * little. */
  bitmap = calloc (bitmap_bytes, 1);
  if (!bitmap) {
    stream->result = ENOMEM;
    return;
  }
  *saved_pages = 0;
  for (n = 0; n < pages; n++)
    if (!vdo_volume_index_page_is_empty (index->volume_index, n)) {
      bitmap[n / 8] |= (uint8_t) (1u << (n % 8));
      (*saved_pages)++;
    }
  stream_put (stream, bitmap, bitmap_bytes);
  for (n = 0; n < pages && stream->result == VDO_SUCCESS; n++)
    if (bitmap[n / 8] & (1u << (n % 8)))
      stream_put (stream, vdo_volume_index_page (index->volume_index, n),
                  VDO_BLOCK_SIZE);
  free (bitmap);
  write_chunk (stream);
}

int
vdo_write_index_save (struct vdo_dedupe_index *index)
{
  struct vdo_index_save_header headers[VDO_INDEX_SAVE_SLOTS], header;
  bool valid[VDO_INDEX_SAVE_SLOTS];
  struct timespec started, ended;
  struct stream stream;
  uint64_t saved_pages = 0, sequence = index->save_sequence;
  unsigned int slot, i;
  uint8_t *block;
  int result;

  clock_gettime (CLOCK_MONOTONIC, &started);
  result = read_slot_headers (index, headers, valid);
  if (result != VDO_SUCCESS)
    goto failed;
  /* Overwrite an empty slot, else the older save. */
  slot = 0;
  for (i = 0; i < VDO_INDEX_SAVE_SLOTS; i++)
    if (valid[i] && headers[i].sequence > sequence)
      sequence = headers[i].sequence;
  if (valid[0] && (!valid[1] || headers[1].sequence < headers[0].sequence))
    slot = 1;

  /* First make the slot unloadable, so a save cut short never looks
   * whole. */
  result = invalidate_slot (index, slot);
  if (result != VDO_SUCCESS)
    goto failed;
  result = open_stream (&stream, index, slot, 0);
  if (result != VDO_SUCCESS)
    goto failed;
  write_stream (index, &stream, &saved_pages);
  result = stream.result;
  close_stream (&stream);
  if (result == VDO_SUCCESS)
    result = vdo_io_flush (index->config.io);
  if (result != VDO_SUCCESS)
    goto failed;

  header = (struct vdo_index_save_header) {
    .nonce = index->config.nonce,
    .instance_nonce = index->instance_nonce,
    .sequence = sequence + 1,
    .timestamp = (uint64_t) time (NULL),
    .records_per_chapter = index->layout.records_per_chapter,
    .chapters = index->layout.chapters,
    .volume_index_pages = index->layout.volume_index_pages,
    .open_vcn = index->open_vcn,
    .open_records = vdo_open_chapter_size (index->open_chapter),
    .saved_pages = saved_pages,
    .stream_bytes = stream.bytes,
    .stream_crc = stream.crc,
  };
  vdo_volume_index_encode_state (index->volume_index,
                                 header.volume_index_state);
  block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (!block) {
    result = ENOMEM;
    goto failed;
  }
  vdo_encode_index_save_header (&header, block);
  result = write_region_block (index, index->layout.save_slot_start[slot],
                               block);
  vdo_io_free_buffer (block);
  if (result == VDO_SUCCESS)
    result = vdo_io_flush (index->config.io);
  if (result != VDO_SUCCESS)
    goto failed;

  index->save_sequence = header.sequence;
  clock_gettime (CLOCK_MONOTONIC, &ended);
  vdo_log_info ("dedupe index saved to slot %u: open chapter %" PRIu64
                " with %" PRIu64 " records, %" PRIu64 " of %" PRIu64
                " volume index pages, %.3f s", slot, header.open_vcn,
                header.open_records, saved_pages,
                index->layout.volume_index_pages,
                (double) (ended.tv_sec - started.tv_sec)
                + (double) (ended.tv_nsec - started.tv_nsec) / 1e9);
  return VDO_SUCCESS;

failed:
  vdo_log_error ("dedupe index: save failed (%s); the next start rebuilds",
                 vdo_status_to_string (result));
  return result;
}

/* --- Loading ---------------------------------------------------------- */

/* Read a save into the (empty) index.  UDS_CORRUPT_DATA, with *WHY set,
 * for a save that cannot be used; I/O errors and ENOMEM as they come. */
static int
read_save (struct vdo_dedupe_index *index, unsigned int slot,
           const struct vdo_index_save_header *header, const char **why)
{
  const struct vdo_index_layout *layout = &index->layout;
  uint64_t pages = vdo_volume_index_page_count (index->volume_index);
  uint64_t bitmap_bytes = (layout->volume_index_pages + 7) / 8;
  uint32_t bpc = layout->blocks_per_chapter;
  uint8_t *bitmap = NULL, *page = NULL;
  struct stream stream;
  uint64_t i, n, present = 0;
  uint32_t c, b;
  int result;

  result = open_stream (&stream, index, slot, header->stream_bytes);
  if (result != VDO_SUCCESS)
    return result;
  index->open_vcn = header->open_vcn;

  *why = "it is cut short";
  for (i = 0; i < header->open_records; i++) {
    struct vdo_index_record record;

    if (!stream_get (&stream, record.name.bytes, VDO_CHUNK_NAME_SIZE)
        || !stream_get (&stream, record.advice, VDO_ADVICE_SIZE))
      break;
    vdo_open_chapter_put (index->open_chapter, &record.name, record.advice,
                          false);
  }

  for (c = 0; c < index->chapters && stream.result == VDO_SUCCESS; c++) {
    uint64_t vcn = stream_get_le64 (&stream);
    uint32_t *prefixes = vdo_index_chapter_prefixes (index, c);

    if (vcn != VDO_INDEX_NO_VCN
        && (vcn % index->chapters != c || vcn >= index->open_vcn
            || !vdo_index_chapter_is_live (index, vcn))) {
      *why = "a chapter in the chapter table is outside the window";
      stream.result = UDS_CORRUPT_DATA;
    }
    index->chapter_vcns[c] = vcn;
    for (b = 0; b < bpc; b++)
      prefixes[b] = stream_get_le32 (&stream);
  }

  if (stream.result == VDO_SUCCESS) {
    *why = "the volume index state does not fit";
    stream.result = vdo_volume_index_decode_state (index->volume_index,
                                                   header->volume_index_state);
    if (stream.result == VDO_SUCCESS
        && vdo_volume_index_open_chapter (index->volume_index)
           != index->open_vcn)
      stream.result = UDS_CORRUPT_DATA;
  }

  bitmap = calloc (bitmap_bytes, 1);
  page = malloc (VDO_BLOCK_SIZE);
  if (!bitmap || !page)
    stream.result = ENOMEM;
  if (stream.result == VDO_SUCCESS
      && stream_get (&stream, bitmap, bitmap_bytes)) {
    *why = "the page bitmap does not match the header";
    for (n = 0; n < layout->volume_index_pages; n++)
      if (bitmap[n / 8] & (1u << (n % 8)))
        present++;
    if (present != header->saved_pages)
      stream.result = UDS_CORRUPT_DATA;
    for (n = pages; n < layout->volume_index_pages; n++)
      if (bitmap[n / 8] & (1u << (n % 8)))
        stream.result = UDS_CORRUPT_DATA;
  }
  for (n = 0; n < pages && stream.result == VDO_SUCCESS; n++)
    if ((bitmap[n / 8] & (1u << (n % 8))) && stream_get (&stream, page,
                                                         VDO_BLOCK_SIZE))
      vdo_volume_index_restore_page (index->volume_index, n, page);
  free (bitmap);
  free (page);

  result = stream.result;
  if (result == VDO_SUCCESS && (stream.bytes != header->stream_bytes
                                || stream.crc != header->stream_crc)) {
    *why = "its checksum is wrong";
    result = UDS_CORRUPT_DATA;
  }
  if (result == VDO_SUCCESS) {
    *why = "the volume index is malformed";
    result = vdo_volume_index_finish_restore (index->volume_index);
  }
  close_stream (&stream);
  return result;
}

/* Back to an empty index at VCN 0, for a rebuild. */
static void
reset_index (struct vdo_dedupe_index *index)
{
  uint32_t c;

  vdo_reset_open_chapter (index->open_chapter);
  for (c = 0; c < index->chapters; c++)
    index->chapter_vcns[c] = VDO_INDEX_NO_VCN;
  memset (index->prefixes, 0, (size_t) index->chapters
                              * index->layout.blocks_per_chapter
                              * sizeof *index->prefixes);
  index->open_vcn = 0;
}

int
vdo_open_index_region (struct vdo_dedupe_index *index)
{
  struct vdo_index_save_header headers[VDO_INDEX_SAVE_SLOTS];
  bool valid[VDO_INDEX_SAVE_SLOTS];
  const char *mismatch, *why = NULL;
  struct vdo_volume_index_config vconfig;
  unsigned int slot;
  uint8_t *block;
  int result;

  if (index->config.create)
    return create_index (index, "the volume is new");

  block = vdo_io_alloc_buffer (VDO_BLOCK_SIZE);
  if (!block)
    return ENOMEM;
  result = read_region_block (index, VDO_INDEX_SUPER_BLOCK, block);
  mismatch = super_block_mismatch (index, block, &index->instance_nonce);
  vdo_io_free_buffer (block);
  if (result != VDO_SUCCESS)
    return result;
  if (mismatch)
    return create_index (index, mismatch);

  result = read_slot_headers (index, headers, valid);
  if (result != VDO_SUCCESS)
    return result;
  if (!valid[0] && !valid[1]) {
    vdo_log_info ("dedupe index: no clean save; rebuilding it from the "
                  "chapters on disk");
    index->rebuilding = true;
    return VDO_SUCCESS;
  }
  slot = valid[0] && (!valid[1] || headers[0].sequence > headers[1].sequence)
         ? 0 : 1;
  index->save_sequence = headers[slot].sequence;

  result = read_save (index, slot, &headers[slot], &why);
  if (result == UDS_CORRUPT_DATA) {
    vdo_log_warning ("dedupe index: the save in slot %u cannot be used (%s);"
                     " rebuilding from the chapters on disk", slot, why);
    /* Start from a clean volume index: the failed restore may have
     * left anything in it. */
    vdo_free_volume_index (index->volume_index);
    index->volume_index = NULL;
    vconfig = (struct vdo_volume_index_config) {
      .chapters = index->chapters,
      .dense_chapters = index->dense_chapters,
      .sample_rate = index->sample_rate,
      .records_per_chapter = index->records_per_chapter,
    };
    result = vdo_make_volume_index (&vconfig, &index->volume_index);
    if (result != VDO_SUCCESS)
      return result;
    reset_index (index);
    index->rebuilding = true;
    return VDO_SUCCESS;
  }
  if (result != VDO_SUCCESS)
    return result;

  /* A crash from here on must not find this save again: the index will
   * change and the save would be stale. */
  if (!index->config.read_only) {
    result = invalidate_slot (index, slot);
    if (result != VDO_SUCCESS)
      return result;
  }
  vdo_log_info ("dedupe index: loaded the save in slot %u (open chapter %"
                PRIu64 " with %" PRIu64 " records, %" PRIu64
                " volume index pages)", slot, headers[slot].open_vcn,
                headers[slot].open_records, headers[slot].saved_pages);
  return VDO_SUCCESS;
}
