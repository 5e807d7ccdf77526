/* nbdkit-vdo: claims on free blocks, across every physical zone.
 *
 * A write acknowledged before it has its blocks must find them: it was
 * promised the most it may allocate when it was acknowledged.  Any
 * other allocation claims one spare block first.  So no write takes a
 * block promised to another, whatever order the zones run them in.
 *
 * spare = free blocks - promised (not yet claimed) - claimed (not yet
 * taken).  A claim or promise lowers it; a freed block, a claim given
 * back or an unused promise raises it; taking a claimed block leaves it
 * as it is (the free count and the claims drop together). */
#ifndef VDO_SPACE_CLAIMS_H
#define VDO_SPACE_CLAIMS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vdo_space_claims {
  atomic_int_fast64_t spare;
};

static inline void
vdo_init_space_claims (struct vdo_space_claims *claims)
{
  atomic_init (&claims->spare, 0);
}

/* Take COUNT spare blocks, all or none, leaving at least KEEP spare:
 * false when fewer than COUNT + KEEP are spare. */
static inline bool
vdo_claim_space (struct vdo_space_claims *claims, int_fast64_t count,
                 int_fast64_t keep)
{
  int_fast64_t spare = atomic_load_explicit (&claims->spare,
                                             memory_order_relaxed);

  while (spare >= count + keep)
    if (atomic_compare_exchange_weak_explicit (&claims->spare, &spare,
                                               spare - count,
                                               memory_order_relaxed,
                                               memory_order_relaxed))
      return true;
  return false;
}

/* Free blocks joined or left the spare ones (negative: left). */
static inline void
vdo_add_spare_space (struct vdo_space_claims *claims, int_fast64_t count)
{
  atomic_fetch_add_explicit (&claims->spare, count, memory_order_relaxed);
}

#endif /* VDO_SPACE_CLAIMS_H */
