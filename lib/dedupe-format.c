/* nbdkit-vdo: chunk names and dedupe advice (uds-index.md 1, 2).
 *
 * MurmurHash3 x64-128 is written from Appleby's published algorithm.
 * Every read goes through get_le64 (memcpy plus le64toh), so the hash
 * is the same on any host and any alignment, and compiles to plain
 * loads on little-endian machines.
 */
#include <config.h>

#include <string.h>

#include "byte-order.h"
#include "dedupe-format.h"

#define MURMUR_C1 UINT64_C (0x87c37b91114253d5)
#define MURMUR_C2 UINT64_C (0x4cf5ad432745937f)

static inline uint64_t
rotl64 (uint64_t x, unsigned int r)
{
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t
fmix64 (uint64_t k)
{
  k ^= k >> 33;
  k *= UINT64_C (0xff51afd7ed558ccd);
  k ^= k >> 33;
  k *= UINT64_C (0xc4ceb9fe1a85ec53);
  k ^= k >> 33;
  return k;
}

/* The lane-1 and lane-2 premixes of a block's (or the tail's) k1, k2. */
static inline uint64_t
mix_k1 (uint64_t k1)
{
  k1 *= MURMUR_C1;
  k1 = rotl64 (k1, 31);
  k1 *= MURMUR_C2;
  return k1;
}

static inline uint64_t
mix_k2 (uint64_t k2)
{
  k2 *= MURMUR_C2;
  k2 = rotl64 (k2, 33);
  k2 *= MURMUR_C1;
  return k2;
}

/* Inline so that vdo_compute_chunk_name gets a copy specialised for a
 * constant length of 4096 (no tail code, a loop of known count). */
static inline void
murmurhash3_128 (const uint8_t *data, size_t len, uint32_t seed,
                 uint8_t out[16])
{
  size_t nblocks = len / 16;
  size_t rest = len % 16;
  uint64_t h1 = seed;
  uint64_t h2 = seed;
  size_t i;

  for (i = 0; i < nblocks; i++) {
    const uint8_t *p = data + i * 16;
    uint64_t k1 = get_le64 (p);
    uint64_t k2 = get_le64 (p + 8);

    h1 ^= mix_k1 (k1);
    h1 = rotl64 (h1, 27);
    h1 += h2;
    h1 = h1 * 5 + 0x52dce729;

    h2 ^= mix_k2 (k2);
    h2 = rotl64 (h2, 31);
    h2 += h1;
    h2 = h2 * 5 + 0x38495ab5;
  }

  if (rest > 0) {
    /* The reference assembles the tail bytes little-endian into k1
     * (bytes 0-7) and k2 (bytes 8-14) and mixes each lane that got at
     * least one byte; zero-padding the tail to 16 bytes and reading it
     * like a block gives the same k1 and k2. */
    uint8_t tail[16] = { 0 };

    memcpy (tail, data + nblocks * 16, rest);
    if (rest > 8)
      h2 ^= mix_k2 (get_le64 (tail + 8));
    h1 ^= mix_k1 (get_le64 (tail));
  }

  /* The reference takes len as an int; for any length it can hash the
   * zero-extended size_t gives the same bits. */
  h1 ^= (uint64_t) len;
  h2 ^= (uint64_t) len;
  h1 += h2;
  h2 += h1;
  h1 = fmix64 (h1);
  h2 = fmix64 (h2);
  h1 += h2;
  h2 += h1;

  put_le64 (out, h1);
  put_le64 (out + 8, h2);
}

void
vdo_murmurhash3_128 (const void *data, size_t len, uint32_t seed,
                     uint8_t out[16])
{
  murmurhash3_128 (data, len, seed, out);
}

void
vdo_compute_chunk_name (const uint8_t block[VDO_BLOCK_SIZE],
                        struct vdo_chunk_name *name)
{
  murmurhash3_128 (block, VDO_BLOCK_SIZE, VDO_CHUNK_NAME_SEED, name->bytes);
}

unsigned int
vdo_hash_zone_of_name (const struct vdo_chunk_name *name,
                       unsigned int zone_count)
{
  return (unsigned int) (((uint32_t) name->bytes[0] * zone_count) >> 8);
}

bool
vdo_chunk_name_is_hook (const struct vdo_chunk_name *name,
                        uint32_t sample_rate)
{
  uint32_t value;

  if (sample_rate == 0)
    return false;
  value = (uint32_t) name->bytes[14] << 8 | name->bytes[15];
  return value % sample_rate == 0;
}

void
vdo_encode_advice (const struct vdo_advice *advice,
                   uint8_t record[VDO_ADVICE_SIZE])
{
  memset (record, 0, VDO_ADVICE_SIZE);
  record[0] = VDO_ADVICE_VERSION;
  record[1] = advice->state;
  put_le64 (record + 2, advice->pbn);
}

bool
vdo_decode_advice (const uint8_t record[VDO_ADVICE_SIZE],
                   struct vdo_advice *advice)
{
  uint8_t state;
  physical_block_number_t pbn;

  if (record[0] != VDO_ADVICE_VERSION)
    return false;
  state = record[1];
  pbn = get_le64 (record + 2);
  /* dm-vdo rejects only the unmapped state and the zero block here; a
   * state above 15 passes, as there, and fails later when the slot is
   * read.  Bytes 10-15 are not looked at. */
  if (state == 0 || pbn == 0)
    return false;
  advice->state = state;
  advice->pbn = pbn;
  return true;
}
