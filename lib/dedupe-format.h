/* nbdkit-vdo: chunk names and dedupe advice (uds-index.md 1, 2).
 *
 * Pure functions over bytes.  A chunk name is MurmurHash3 x64-128 of a
 * whole 4 KiB block with VDO's seed, stored in VDO's byte order; the
 * advice record is the 16 bytes VDO hands the index with every name:
 * version, mapping state and PBN.
 */
#ifndef VDO_DEDUPE_FORMAT_H
#define VDO_DEDUPE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

#define VDO_CHUNK_NAME_SIZE 16
#define VDO_ADVICE_SIZE 16
#define VDO_CHUNK_NAME_SEED 0x62ea60beu
#define VDO_ADVICE_VERSION 2

struct vdo_chunk_name {
  uint8_t bytes[VDO_CHUNK_NAME_SIZE];
};

/* Where a block's data lives, as advice says: the mapping state
 * (1 = uncompressed, 2..15 = fragment state - 2 of a compressed block)
 * and the PBN. */
struct vdo_advice {
  uint8_t state;
  physical_block_number_t pbn;
};

/* MurmurHash3_x64_128 of LEN bytes with SEED: lanes read as
 * little-endian u64 whatever the host, h1 then h2 stored little-endian
 * in OUT. */
void vdo_murmurhash3_128 (const void *data, size_t len, uint32_t seed,
                          uint8_t out[16]);

/* The name of a 4096-byte block. */
void vdo_compute_chunk_name (const uint8_t block[VDO_BLOCK_SIZE],
                             struct vdo_chunk_name *name);

/* The hash zone of a name, as dm-vdo picks it: (byte 0 * zones) >> 8,
 * so always below ZONE_COUNT (for a ZONE_COUNT of at least 1). */
unsigned int vdo_hash_zone_of_name (const struct vdo_chunk_name *name,
                                    unsigned int zone_count);

/* Whether a name is a sparse index "hook": BE u16 of bytes 14-15 is a
 * multiple of SAMPLE_RATE (never, for a rate of 0). */
bool vdo_chunk_name_is_hook (const struct vdo_chunk_name *name,
                             uint32_t sample_rate);

/* Advice record, version 2: byte 0 version, byte 1 state, bytes 2-9 PBN
 * little-endian, bytes 10-15 zero. */
void vdo_encode_advice (const struct vdo_advice *advice,
                        uint8_t record[VDO_ADVICE_SIZE]);

/* Decode a record as dm-vdo does: false for another version, state 0
 * or PBN 0, leaving *ADVICE untouched; bytes 10-15 are ignored and a
 * state above 15 is accepted (as in dm-vdo).  The caller still checks
 * the PBN lies in a slab. */
bool vdo_decode_advice (const uint8_t record[VDO_ADVICE_SIZE],
                        struct vdo_advice *advice);

#endif /* VDO_DEDUPE_FORMAT_H */
