/* nbdkit-vdo: small integer helpers the size computations share. */
#ifndef VDO_MATH_UTIL_H
#define VDO_MATH_UTIL_H

#include <stdint.h>

/* n / d rounded up, without overflow for any n. */
static inline uint64_t
vdo_div_round_up (uint64_t n, uint64_t d)
{
  return n / d + (n % d != 0);
}

/* Bits needed to write n, counting 0 as one bit (UDS's bits_per). */
static inline unsigned int
vdo_bits_per (uint64_t n)
{
  unsigned int bits = 1;

  while (n >>= 1)
    bits++;
  return bits;
}

#endif /* VDO_MATH_UTIL_H */
