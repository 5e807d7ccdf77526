/* nbdkit-vdo: the volume index, in memory (volume-index.h).
 *
 * Layout.  The table is an array of 64-byte buckets in an anonymous
 * private mapping (page aligned, zeroed lazily by the kernel, a whole
 * number of VDO_BLOCK_SIZE pages).  Byte 0 of a bucket is its entry
 * count; entries are ENTRY_BITS-wide bit fields packed little-endian
 * from bit 8 of the bucket, slot i at bits [8 + i*w, 8 + (i+1)*w).
 * Slots [0, count) are in use, in no particular order; every other bit
 * of the bucket is zero.
 *
 * An entry is, from its low bits up: the chapter (VCN mod
 * 2^chapter_bits), then in a sparse index one hook bit, then the tag.
 * chapter_bits = bits_per(chapters - 1) + 1: the spare bit leaves at
 * least `chapters` chapters of headroom between an entry expiring and
 * its stored chapter aliasing a live one, which the sweep uses.
 *
 * Width.  entry_bits = max(24, chapter_bits + hook_bits + 12): 24 bits
 * (21 slots) while that leaves a tag of at least 12 bits, otherwise
 * just wide enough for a 12-bit tag (a sparse index with 10240
 * chapters: 15 + 1 + 12 = 28 bits, 18 slots).  Sizing the buckets for
 * a 90 % load then costs 64 / (slots * 0.9) bytes an entry: 3.39 at 24
 * bits, 3.95 at 28 bits.
 *
 * Name bits.  Byte 0 picks the hash zone and is not used.  Bytes 1-4
 * and 8-11 (BE u32 each) pick the two candidate buckets by
 * multiply-shift; the tag is the low tag_bits of bytes 5-7 and 12-13.
 * Bytes 14-15 decide the hook status (as vdo_chunk_name_is_hook).
 *
 * Sweep.  Let P = 2^chapter_bits - chapters and W = max(1, P / 2).
 * Opening chapters advances in steps of at most W chapters, each
 * sweeping ceil(step * buckets / W) buckets from a cycling cursor, so
 * any W chapters of advance visit every bucket.  An entry that expires
 * (real age reaches its limit, at most `chapters`) is therefore visited
 * by a sweep before its real age reaches chapters + 2W - 1 < 2^chapter_bits:
 * no stored chapter ever aliases a live one.  An advance of `chapters`
 * or more expires everything, and just clears the table.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "byte-order.h"
#include "checksum.h"
#include "logger.h"
#include "math-util.h"
#include "status.h"
#include "volume-index.h"

#define BUCKET_BYTES 64u
#define BUCKETS_PER_PAGE (VDO_BLOCK_SIZE / BUCKET_BYTES)
/* Bits for entries: all of a bucket but its count byte. */
#define BUCKET_ENTRY_BITS ((BUCKET_BYTES - 1) * 8u)
#define MIN_ENTRY_BITS 24u
#define MIN_TAG_BITS 12u
#define MAX_SLOTS (BUCKET_ENTRY_BITS / MIN_ENTRY_BITS)
/* Buckets are sized for this load, in percent. */
#define TARGET_LOAD_PERCENT 90u

/* Limits keeping every computation in range: stored chapters in at most
 * 25 bits (entries at most 38 bits, in a u64), bucket numbers below
 * 2^32 (the multiply-shift uses 32 name bits). */
#define MAX_CHAPTERS (1u << 24)
#define MAX_BUCKETS UINT32_MAX

#define STATE_MAGIC "VDOVIDX1"
#define STATE_MAGIC_SIZE 8
#define STATE_VERSION 1u
#define STATE_CRC_OFFSET (VDO_VOLUME_INDEX_STATE_SIZE - 4)

/* Where an age is kept when a name has no such entry. */
#define NO_AGE UINT64_MAX

struct geometry {
  unsigned int chapter_bits;
  unsigned int hook_bits;       /* 1 in a sparse index, else 0 */
  unsigned int tag_bits;
  unsigned int entry_bits;
  unsigned int slots;
  uint64_t capacity;
  uint64_t buckets;
  uint64_t table_bytes;
};

struct vdo_volume_index {
  struct vdo_volume_index_config config;
  struct geometry g;
  bool sparse;
  uint64_t chapter_mask;
  uint64_t entry_mask;
  uint64_t sweep_window;        /* W above */

  uint8_t *table;
  /* Nonempty buckets in each page of the table: saves, restores and
   * the sweep skip empty pages without touching (faulting in) them. */
  uint16_t *page_used;

  uint64_t open_chapter;
  uint64_t cursor;              /* next bucket the sweep visits */
  uint64_t entries;
  uint64_t evictions;
  uint64_t saved_entries;       /* from the decoded state, for a check */
};

/* A bucket, unpacked. */
struct bucket {
  unsigned int count;
  uint64_t e[MAX_SLOTS];
};

/* What a name selects. */
struct name_key {
  uint64_t bucket[2];           /* distinct */
  uint64_t key;                 /* the entry bits above the chapter */
  bool hook;
};

static bool
config_valid (const struct vdo_volume_index_config *c)
{
  if (c->chapters < 2 || c->chapters > MAX_CHAPTERS
      || c->records_per_chapter == 0
      || c->records_per_chapter > ((uint64_t) 1 << 32))
    return false;
  if (c->sample_rate == 0)
    return c->dense_chapters == c->chapters;
  return c->dense_chapters >= 1 && c->dense_chapters <= c->chapters;
}

static bool
compute_geometry (const struct vdo_volume_index_config *c,
                  struct geometry *g)
{
  uint64_t per_bucket_x100;

  if (!config_valid (c))
    return false;

  g->chapter_bits = vdo_bits_per (c->chapters - 1) + 1;
  g->hook_bits = c->sample_rate != 0 ? 1 : 0;
  g->entry_bits = g->chapter_bits + g->hook_bits + MIN_TAG_BITS;
  if (g->entry_bits < MIN_ENTRY_BITS)
    g->entry_bits = MIN_ENTRY_BITS;
  g->tag_bits = g->entry_bits - g->chapter_bits - g->hook_bits;
  g->slots = BUCKET_ENTRY_BITS / g->entry_bits;

  g->capacity = (uint64_t) c->dense_chapters * c->records_per_chapter;
  if (c->sample_rate != 0)
    g->capacity += (uint64_t) (c->chapters - c->dense_chapters)
      * c->records_per_chapter / c->sample_rate;

  /* ceil(capacity / (slots * 0.90)), at least two buckets so a name's
   * two candidates can differ. */
  per_bucket_x100 = (uint64_t) g->slots * TARGET_LOAD_PERCENT;
  g->buckets = (g->capacity * 100 + per_bucket_x100 - 1) / per_bucket_x100;
  if (g->buckets < 2)
    g->buckets = 2;
  if (g->buckets > MAX_BUCKETS)
    return false;
  g->table_bytes = (g->buckets * BUCKET_BYTES + VDO_BLOCK_SIZE - 1)
    / VDO_BLOCK_SIZE * VDO_BLOCK_SIZE;
  return true;
}

uint64_t
vdo_volume_index_memory_bytes (const struct vdo_volume_index_config *config)
{
  struct geometry g;

  return compute_geometry (config, &g) ? g.table_bytes : 0;
}

int
vdo_make_volume_index (const struct vdo_volume_index_config *config,
                       struct vdo_volume_index **index_ret)
{
  struct vdo_volume_index *index;
  struct geometry g;
  uint64_t period;
  void *table;

  if (!compute_geometry (config, &g)) {
    vdo_log_error ("volume index: unsupported configuration (chapters %"
                   PRIu32 ", dense chapters %" PRIu32 ", sample rate %"
                   PRIu32 ", records per chapter %" PRIu64 ")",
                   config->chapters, config->dense_chapters,
                   config->sample_rate, config->records_per_chapter);
    return UDS_INVALID_ARGUMENT;
  }
  if (g.table_bytes > SIZE_MAX) {
    vdo_log_error ("volume index: %" PRIu64 " bytes do not fit in memory",
                   g.table_bytes);
    return ENOMEM;
  }

  index = calloc (1, sizeof *index);
  if (index != NULL) {
    index->page_used = calloc (g.table_bytes / VDO_BLOCK_SIZE,
                               sizeof *index->page_used);
    if (index->page_used == NULL) {
      free (index);
      index = NULL;
    }
  }
  if (index == NULL) {
    vdo_log_error ("volume index: out of memory");
    return ENOMEM;
  }
  table = mmap (NULL, (size_t) g.table_bytes, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (table == MAP_FAILED) {
    vdo_log_error ("volume index: cannot map %" PRIu64 " bytes: %s",
                   g.table_bytes, strerror (errno));
    free (index->page_used);
    free (index);
    return ENOMEM;
  }

  /* Names land in random buckets: with small pages nearly every new
   * name faults a page in and misses the TLB.  Huge pages, where the
   * kernel gives them, cut both by 512. */
  (void) madvise (table, (size_t) g.table_bytes, MADV_HUGEPAGE);

  index->config = *config;
  index->g = g;
  index->sparse = config->sample_rate != 0;
  index->chapter_mask = ((uint64_t) 1 << g.chapter_bits) - 1;
  index->entry_mask = ((uint64_t) 1 << g.entry_bits) - 1;
  period = ((uint64_t) 1 << g.chapter_bits) - config->chapters;
  index->sweep_window = period / 2 > 0 ? period / 2 : 1;
  index->table = table;
  *index_ret = index;
  return VDO_SUCCESS;
}

void
vdo_free_volume_index (struct vdo_volume_index *index)
{
  if (index == NULL)
    return;
  munmap (index->table, (size_t) index->g.table_bytes);
  free (index->page_used);
  free (index);
}

/* --- Buckets ---------------------------------------------------------- */

static inline uint8_t *
bucket_bytes (const struct vdo_volume_index *index, uint64_t b)
{
  return index->table + b * BUCKET_BYTES;
}

static void
unpack_bucket (const struct vdo_volume_index *index, const uint8_t *p,
               struct bucket *bucket)
{
  uint64_t words[BUCKET_BYTES / 8];
  unsigned int w = index->g.entry_bits;
  unsigned int i;

  bucket->count = p[0];
  if (bucket->count == 0)
    return;
  for (i = 0; i < BUCKET_BYTES / 8; i++)
    words[i] = get_le64 (p + 8 * i);
  for (i = 0; i < bucket->count; i++) {
    unsigned int bit = 8 + i * w;
    unsigned int word = bit / 64, shift = bit % 64;
    uint64_t v = words[word] >> shift;

    if (shift + w > 64)
      v |= words[word + 1] << (64 - shift);
    bucket->e[i] = v & index->entry_mask;
  }
}

static void
pack_bucket (const struct vdo_volume_index *index, const struct bucket *bucket,
             uint8_t *p)
{
  uint64_t words[BUCKET_BYTES / 8] = { 0 };
  unsigned int w = index->g.entry_bits;
  unsigned int i;

  words[0] = bucket->count;
  for (i = 0; i < bucket->count; i++) {
    unsigned int bit = 8 + i * w;
    unsigned int word = bit / 64, shift = bit % 64;

    words[word] |= bucket->e[i] << shift;
    if (shift + w > 64)
      words[word + 1] |= bucket->e[i] >> (64 - shift);
  }
  for (i = 0; i < BUCKET_BYTES / 8; i++)
    put_le64 (p + 8 * i, words[i]);
}

/* Pack BUCKET into bucket B, keeping the page's count of nonempty
 * buckets. */
static void
store_bucket (struct vdo_volume_index *index, uint64_t b,
              const struct bucket *bucket)
{
  uint8_t *p = bucket_bytes (index, b);
  bool was_used = p[0] != 0, used = bucket->count != 0;

  pack_bucket (index, bucket, p);
  if (was_used != used) {
    uint16_t *count = &index->page_used[b / BUCKETS_PER_PAGE];

    *count = used ? *count + 1 : *count - 1;
  }
}

/* Chapters since the entry's chapter, for the current open chapter. */
static inline uint64_t
entry_age (const struct vdo_volume_index *index, uint64_t entry)
{
  return (index->open_chapter - entry) & index->chapter_mask;
}

/* How many chapters an entry of this hook status stays live. */
static inline uint64_t
live_limit (const struct vdo_volume_index *index, bool hook)
{
  return (!index->sparse || hook) ? index->config.chapters
    : index->config.dense_chapters;
}

static inline bool
entry_live (const struct vdo_volume_index *index, uint64_t entry)
{
  bool hook = index->sparse && ((entry >> index->g.chapter_bits) & 1);

  return entry_age (index, entry) < live_limit (index, hook);
}

/* Drop expired entries; true if any went. */
static bool
purge_bucket (struct vdo_volume_index *index, struct bucket *bucket)
{
  unsigned int i = 0;
  bool changed = false;

  while (i < bucket->count) {
    if (entry_live (index, bucket->e[i])) {
      i++;
      continue;
    }
    bucket->e[i] = bucket->e[--bucket->count];
    index->entries--;
    changed = true;
  }
  return changed;
}

static void
sweep (struct vdo_volume_index *index, uint64_t n)
{
  struct bucket bucket;

  if (n > index->g.buckets)
    n = index->g.buckets;
  while (n > 0) {
    uint64_t step = 1;

    if (index->page_used[index->cursor / BUCKETS_PER_PAGE] == 0) {
      /* Skip the rest of an empty page at once. */
      step = BUCKETS_PER_PAGE - index->cursor % BUCKETS_PER_PAGE;
      if (step > n)
        step = n;
      if (step > index->g.buckets - index->cursor)
        step = index->g.buckets - index->cursor;
    }
    else if (bucket_bytes (index, index->cursor)[0] != 0) {
      unpack_bucket (index, bucket_bytes (index, index->cursor), &bucket);
      if (purge_bucket (index, &bucket))
        store_bucket (index, index->cursor, &bucket);
    }
    n -= step;
    index->cursor += step;
    if (index->cursor == index->g.buckets)
      index->cursor = 0;
  }
}

/* Zero the whole table, giving its memory back. */
static void
clear_table (struct vdo_volume_index *index)
{
  if (madvise (index->table, (size_t) index->g.table_bytes,
               MADV_DONTNEED) != 0)
    memset (index->table, 0, (size_t) index->g.table_bytes);
  memset (index->page_used, 0, vdo_volume_index_page_count (index)
                               * sizeof *index->page_used);
  index->entries = 0;
}

/* --- Names ------------------------------------------------------------ */

static inline bool
is_hook (const struct vdo_chunk_name *name, uint32_t sample_rate)
{
  uint16_t v = (uint16_t) ((name->bytes[14] << 8) | name->bytes[15]);

  return sample_rate != 0 && v % sample_rate == 0;
}

static void
name_key_of (const struct vdo_volume_index *index,
             const struct vdo_chunk_name *name, struct name_key *k)
{
  const uint8_t *b = name->bytes;
  uint64_t sel1 = ((uint64_t) b[1] << 24) | ((uint64_t) b[2] << 16)
    | ((uint64_t) b[3] << 8) | b[4];
  uint64_t sel2 = ((uint64_t) b[8] << 24) | ((uint64_t) b[9] << 16)
    | ((uint64_t) b[10] << 8) | b[11];
  uint64_t tag_source = ((uint64_t) b[5] << 32) | ((uint64_t) b[6] << 24)
    | ((uint64_t) b[7] << 16) | ((uint64_t) b[12] << 8) | b[13];
  uint64_t tag = tag_source & (((uint64_t) 1 << index->g.tag_bits) - 1);

  k->bucket[0] = (sel1 * index->g.buckets) >> 32;
  k->bucket[1] = (sel2 * index->g.buckets) >> 32;
  if (k->bucket[1] == k->bucket[0])
    k->bucket[1] = (k->bucket[0] + 1) % index->g.buckets;
  k->hook = is_hook (name, index->config.sample_rate);
  k->key = (tag << index->g.hook_bits) | (k->hook ? 1 : 0);
}

static inline bool
entry_matches (const struct vdo_volume_index *index, uint64_t entry,
               const struct name_key *k)
{
  return (entry >> index->g.chapter_bits) == k->key;
}

/* --- Chapters --------------------------------------------------------- */

void
vdo_volume_index_set_open_chapter (struct vdo_volume_index *index,
                                   uint64_t vcn)
{
  uint64_t w = index->sweep_window;

  if (vcn <= index->open_chapter)
    return;
  if (vcn - index->open_chapter >= index->config.chapters) {
    /* Every stored chapter is at most the old open one: all expire. */
    clear_table (index);
    index->open_chapter = vcn;
    return;
  }
  while (index->open_chapter < vcn) {
    uint64_t step = vcn - index->open_chapter;

    if (step > w)
      step = w;
    index->open_chapter += step;
    sweep (index, (step * index->g.buckets + w - 1) / w);
  }
}

uint64_t
vdo_volume_index_open_chapter (const struct vdo_volume_index *index)
{
  return index->open_chapter;
}

/* --- Lookup and update ------------------------------------------------ */

unsigned int
vdo_volume_index_lookup (const struct vdo_volume_index *index,
                         const struct vdo_chunk_name *name,
                         uint64_t *vcns, unsigned int max)
{
  uint64_t ages[2 * MAX_SLOTS];
  unsigned int found = 0, out = 0;
  struct name_key k;
  unsigned int i, j;
  uint64_t limit;

  name_key_of (index, name, &k);
  limit = live_limit (index, k.hook);
  for (i = 0; i < 2; i++) {
    struct bucket bucket;

    unpack_bucket (index, bucket_bytes (index, k.bucket[i]), &bucket);
    for (j = 0; j < bucket.count; j++) {
      uint64_t age, e = bucket.e[j];
      unsigned int pos;

      if (!entry_matches (index, e, &k))
        continue;
      age = entry_age (index, e);
      if (age >= limit || age > index->open_chapter)
        continue;
      /* Insertion into ages[], ascending (newest first). */
      for (pos = found; pos > 0 && ages[pos - 1] > age; pos--)
        ages[pos] = ages[pos - 1];
      ages[pos] = age;
      found++;
    }
  }
  for (i = 0; i < found && out < max; i++) {
    if (i > 0 && ages[i] == ages[i - 1])
      continue;
    vcns[out++] = index->open_chapter - ages[i];
  }
  return out;
}

int
vdo_volume_index_put (struct vdo_volume_index *index,
                      const struct vdo_chunk_name *name, uint64_t vcn,
                      uint64_t from_vcn)
{
  struct bucket buckets[2];
  bool dirty[2] = { false, false };
  struct name_key k;
  uint64_t age, from_age = NO_AGE, limit, oldest_age = 0;
  int from_b = -1, oldest_b = -1;
  unsigned int from_slot = 0, oldest_slot = 0;
  unsigned int i, j;
  int target;

  if (vcn > index->open_chapter
      || index->open_chapter - vcn >= index->config.chapters)
    return UDS_INVALID_ARGUMENT;

  name_key_of (index, name, &k);
  limit = live_limit (index, k.hook);
  age = index->open_chapter - vcn;
  if (age >= limit)
    return VDO_SUCCESS;         /* a non-hook name in a sparse chapter */
  if (from_vcn != VDO_NO_CHAPTER && from_vcn <= index->open_chapter
      && index->open_chapter - from_vcn < limit)
    from_age = index->open_chapter - from_vcn;

  for (i = 0; i < 2; i++) {
    unpack_bucket (index, bucket_bytes (index, k.bucket[i]), &buckets[i]);
    dirty[i] = purge_bucket (index, &buckets[i]);
    for (j = 0; j < buckets[i].count; j++) {
      uint64_t e = buckets[i].e[j], a = entry_age (index, e);

      if (oldest_b < 0 || a > oldest_age) {
        oldest_b = (int) i;
        oldest_slot = j;
        oldest_age = a;
      }
      if (!entry_matches (index, e, &k))
        continue;
      if (a <= age) {
        /* Newer than VCN, or VCN itself: nothing to add. */
        goto done;
      }
      if (a == from_age && from_b < 0) {
        from_b = (int) i;
        from_slot = j;
      }
    }
  }

  if (from_b >= 0) {
    buckets[from_b].e[from_slot] = (k.key << index->g.chapter_bits)
      | (vcn & index->chapter_mask);
    dirty[from_b] = true;
    goto done;
  }

  target = buckets[1].count < buckets[0].count ? 1 : 0;
  if (buckets[target].count < index->g.slots) {
    buckets[target].e[buckets[target].count++]
      = (k.key << index->g.chapter_bits) | (vcn & index->chapter_mask);
    dirty[target] = true;
    index->entries++;
    goto done;
  }

  /* Both full of live entries: one of them, or the new one, goes. */
  index->evictions++;
  if (oldest_age > age) {
    buckets[oldest_b].e[oldest_slot]
      = (k.key << index->g.chapter_bits) | (vcn & index->chapter_mask);
    dirty[oldest_b] = true;
  }

done:
  for (i = 0; i < 2; i++)
    if (dirty[i])
      store_bucket (index, k.bucket[i], &buckets[i]);
  return VDO_SUCCESS;
}

void
vdo_volume_index_remove (struct vdo_volume_index *index,
                         const struct vdo_chunk_name *name, uint64_t vcn)
{
  struct name_key k;
  uint64_t want;
  unsigned int i, j;

  name_key_of (index, name, &k);
  want = (k.key << index->g.chapter_bits) | (vcn & index->chapter_mask);
  for (i = 0; i < 2; i++) {
    struct bucket bucket;
    uint8_t *p = bucket_bytes (index, k.bucket[i]);
    bool dirty;

    unpack_bucket (index, p, &bucket);
    dirty = purge_bucket (index, &bucket);
    for (j = 0; j < bucket.count;) {
      if (bucket.e[j] != want) {
        j++;
        continue;
      }
      bucket.e[j] = bucket.e[--bucket.count];
      index->entries--;
      dirty = true;
    }
    if (dirty)
      store_bucket (index, k.bucket[i], &bucket);
  }
}

void
vdo_volume_index_get_stats (const struct vdo_volume_index *index,
                            struct vdo_volume_index_stats *stats)
{
  stats->entries = index->entries;
  stats->capacity = index->g.capacity;
  stats->evictions = index->evictions;
  stats->memory_bytes = index->g.table_bytes;
}

/* --- Saving ----------------------------------------------------------- */

uint64_t
vdo_volume_index_page_count (const struct vdo_volume_index *index)
{
  return index->g.table_bytes / VDO_BLOCK_SIZE;
}

const uint8_t *
vdo_volume_index_page (const struct vdo_volume_index *index, uint64_t n)
{
  if (n >= vdo_volume_index_page_count (index))
    return NULL;
  return index->table + n * VDO_BLOCK_SIZE;
}

bool
vdo_volume_index_page_is_empty (const struct vdo_volume_index *index,
                                uint64_t n)
{
  return n >= vdo_volume_index_page_count (index) || index->page_used[n] == 0;
}

static void
encode_config (const struct vdo_volume_index_config *c, uint8_t *state)
{
  put_le32 (state + 12, c->chapters);
  put_le32 (state + 16, c->dense_chapters);
  put_le32 (state + 20, c->sample_rate);
  put_le64 (state + 24, c->records_per_chapter);
}

/* State record, little-endian:
 *    0  magic "VDOVIDX1"      8
 *    8  version (1)           u32
 *   12  chapters              u32
 *   16  dense_chapters        u32
 *   20  sample_rate           u32
 *   24  records_per_chapter   u64
 *   32  open chapter          u64
 *   40  sweep cursor          u32
 *   44  entries               u64
 *   52  evictions             u64
 *   60  CRC-32 of bytes 0-59  u32
 */
void
vdo_volume_index_encode_state (const struct vdo_volume_index *index,
                               uint8_t state[VDO_VOLUME_INDEX_STATE_SIZE])
{
  memset (state, 0, VDO_VOLUME_INDEX_STATE_SIZE);
  memcpy (state, STATE_MAGIC, STATE_MAGIC_SIZE);
  put_le32 (state + 8, STATE_VERSION);
  encode_config (&index->config, state);
  put_le64 (state + 32, index->open_chapter);
  put_le32 (state + 40, (uint32_t) index->cursor);
  put_le64 (state + 44, index->entries);
  put_le64 (state + 52, index->evictions);
  put_le32 (state + STATE_CRC_OFFSET, vdo_crc32 (state, STATE_CRC_OFFSET));
}

int
vdo_volume_index_decode_state (struct vdo_volume_index *index,
                               const uint8_t state[VDO_VOLUME_INDEX_STATE_SIZE])
{
  uint8_t mine[VDO_VOLUME_INDEX_STATE_SIZE] = { 0 };
  uint32_t version;
  uint64_t cursor, entries;

  if (memcmp (state, STATE_MAGIC, STATE_MAGIC_SIZE) != 0) {
    vdo_log_error ("volume index state: bad magic");
    return UDS_CORRUPT_DATA;
  }
  if (get_le32 (state + STATE_CRC_OFFSET)
      != vdo_crc32 (state, STATE_CRC_OFFSET)) {
    vdo_log_error ("volume index state: checksum mismatch");
    return UDS_CORRUPT_DATA;
  }
  version = get_le32 (state + 8);
  if (version != STATE_VERSION) {
    vdo_log_error ("volume index state: unsupported version %" PRIu32,
                   version);
    return UDS_CORRUPT_DATA;
  }
  encode_config (&index->config, mine);
  if (memcmp (state + 12, mine + 12, 20) != 0) {
    vdo_log_error ("volume index state: saved with chapters %" PRIu32
                   ", dense chapters %" PRIu32 ", sample rate %" PRIu32
                   ", records per chapter %" PRIu64
                   ", not this index's configuration",
                   get_le32 (state + 12), get_le32 (state + 16),
                   get_le32 (state + 20), get_le64 (state + 24));
    return UDS_CORRUPT_DATA;
  }
  cursor = get_le32 (state + 40);
  entries = get_le64 (state + 44);
  if (cursor >= index->g.buckets
      || entries > index->g.buckets * index->g.slots) {
    vdo_log_error ("volume index state: cursor %" PRIu64 " or entry count %"
                   PRIu64 " out of range", cursor, entries);
    return UDS_CORRUPT_DATA;
  }

  clear_table (index);
  index->open_chapter = get_le64 (state + 32);
  index->cursor = cursor;
  index->saved_entries = entries;
  index->evictions = get_le64 (state + 52);
  return VDO_SUCCESS;
}

void
vdo_volume_index_restore_page (struct vdo_volume_index *index,
                               uint64_t n, const uint8_t *page)
{
  static const uint8_t zero[BUCKET_BYTES];
  unsigned int b, used = 0;

  if (n >= vdo_volume_index_page_count (index))
    return;
  memcpy (index->table + n * VDO_BLOCK_SIZE, page, VDO_BLOCK_SIZE);
  /* Any nonzero byte counts, so finish_restore checks the bucket. */
  for (b = 0; b < BUCKETS_PER_PAGE; b++)
    used += memcmp (page + b * BUCKET_BYTES, zero, BUCKET_BYTES) != 0;
  index->page_used[n] = (uint16_t) used;
}

static void
reset_empty (struct vdo_volume_index *index)
{
  clear_table (index);
  index->open_chapter = 0;
  index->cursor = 0;
  index->evictions = 0;
  index->saved_entries = 0;
}

int
vdo_volume_index_finish_restore (struct vdo_volume_index *index)
{
  static const uint8_t zero[BUCKET_BYTES];
  uint64_t b, total = 0, all = index->g.table_bytes / BUCKET_BYTES;

  /* The table was cleared before the restore: only restored pages
   * with something in them need a look. */
  for (b = 0; b < all; b++) {
    const uint8_t *p = bucket_bytes (index, b);
    struct bucket bucket;
    uint8_t repacked[BUCKET_BYTES];

    if (index->page_used[b / BUCKETS_PER_PAGE] == 0) {
      b += BUCKETS_PER_PAGE - 1 - b % BUCKETS_PER_PAGE;
      continue;
    }
    if (p[0] == 0) {
      if (memcmp (p, zero, BUCKET_BYTES) == 0)
        continue;
    }
    else if (b < index->g.buckets && p[0] <= index->g.slots) {
      /* Well formed iff it packs back the same: no stray bits. */
      unpack_bucket (index, p, &bucket);
      pack_bucket (index, &bucket, repacked);
      if (memcmp (p, repacked, BUCKET_BYTES) == 0) {
        total += bucket.count;
        continue;
      }
    }
    vdo_log_error ("volume index: bucket %" PRIu64 " is malformed"
                   " (count %u of %u slots)", b, p[0], index->g.slots);
    reset_empty (index);
    return UDS_CORRUPT_DATA;
  }
  if (total != index->saved_entries) {
    vdo_log_error ("volume index: %" PRIu64 " entries restored, %" PRIu64
                   " saved", total, index->saved_entries);
    reset_empty (index);
    return UDS_CORRUPT_DATA;
  }
  index->entries = total;
  return VDO_SUCCESS;
}
