/* nbdkit-vdo: pins on blocks that deduplication shares (pbn-lock.h). */
#include <config.h>

#include "constants.h"
#include "pbn-lock.h"
#include "unit-suites.h"

START_TEST (test_pin_rules)
{
  struct vdo_pbn_lock_table table;

  vdo_init_pbn_lock_table (&table);
  /* Free, full, and someone else's provisional blocks cannot be shared. */
  ck_assert_ptr_null (vdo_pin_pbn (&table, 10, 0, false));
  ck_assert_ptr_null (vdo_pin_pbn (&table, 10, VDO_MAXIMUM_REFERENCE_COUNT,
                                   false));
  ck_assert_ptr_null (vdo_pin_pbn (&table, 10,
                                   VDO_PROVISIONAL_REFERENCE_COUNT, false));
  ck_assert_ptr_null (vdo_find_pbn_lock (&table, 10));
  /* A write's own new block can, before its own increment. */
  struct vdo_pbn_lock *own = vdo_pin_pbn (&table, 11,
                                          VDO_PROVISIONAL_REFERENCE_COUNT,
                                          true);
  ck_assert_ptr_nonnull (own);
  ck_assert_uint_eq (own->increment_limit, VDO_MAXIMUM_REFERENCE_COUNT - 1);
  ck_assert_ptr_eq (vdo_find_pbn_lock (&table, 11), own);
  ck_assert (!vdo_unpin_pbn (&table, own));
  ck_assert_ptr_null (vdo_find_pbn_lock (&table, 11));
  vdo_uninit_pbn_lock_table (&table);
}
END_TEST

START_TEST (test_claims_stop_at_the_maximum)
{
  struct vdo_pbn_lock_table table;
  struct vdo_pbn_lock *lock;
  unsigned int claims = 0;

  vdo_init_pbn_lock_table (&table);
  lock = vdo_pin_pbn (&table, 5, 250, false);
  ck_assert_ptr_nonnull (lock);
  while (vdo_claim_pbn_increment (lock))
    claims++;
  ck_assert_uint_eq (claims, VDO_MAXIMUM_REFERENCE_COUNT - 250);
  ck_assert (!vdo_claim_pbn_increment (lock));
  vdo_unpin_pbn (&table, lock);
  vdo_uninit_pbn_lock_table (&table);
}
END_TEST

START_TEST (test_shared_pin_and_provisional)
{
  struct vdo_pbn_lock_table table;
  struct vdo_pbn_lock *first, *second;

  vdo_init_pbn_lock_table (&table);
  first = vdo_pin_pbn (&table, 7, 1, false);
  second = vdo_pin_pbn (&table, 7, 1, false);
  ck_assert_ptr_eq (first, second);
  ck_assert_uint_eq (first->holders, 2);
  /* A decrement under the pin left the block provisional: only the
   * last unpin says to free it. */
  first->holds_provisional = true;
  ck_assert (!vdo_unpin_pbn (&table, first));
  ck_assert_ptr_eq (vdo_find_pbn_lock (&table, 7), second);
  ck_assert (vdo_unpin_pbn (&table, second));
  ck_assert_ptr_null (vdo_find_pbn_lock (&table, 7));
  vdo_uninit_pbn_lock_table (&table);
}
END_TEST

START_TEST (test_compressed_block_pin)
{
  struct vdo_pbn_lock_table table;
  struct vdo_pbn_lock *lock, *sharer;
  unsigned int claims = 0;

  vdo_init_pbn_lock_table (&table);
  /* Only a provisional block, not yet pinned, for at least one holder. */
  ck_assert_ptr_null (vdo_pin_new_shared_pbn (&table, 3, 1, 2));
  ck_assert_ptr_null (vdo_pin_new_shared_pbn
                        (&table, 3, VDO_PROVISIONAL_REFERENCE_COUNT, 0));
  lock = vdo_pin_new_shared_pbn (&table, 3, VDO_PROVISIONAL_REFERENCE_COUNT,
                                 14);
  ck_assert_ptr_nonnull (lock);
  ck_assert_uint_eq (lock->holders, 14);
  ck_assert (lock->holds_provisional);
  ck_assert_ptr_null (vdo_pin_new_shared_pbn
                        (&table, 3, VDO_PROVISIONAL_REFERENCE_COUNT, 2));
  /* The fragments' increments are claimed already: dedupe sharers get
   * what is left of 254. */
  sharer = vdo_pin_pbn (&table, 3, VDO_PROVISIONAL_REFERENCE_COUNT, true);
  ck_assert_ptr_eq (sharer, lock);
  while (vdo_claim_pbn_increment (lock))
    claims++;
  ck_assert_uint_eq (claims, VDO_MAXIMUM_REFERENCE_COUNT - 1 - 14);
  /* Every holder but the last keeps it; the last owns the provisional
   * reference. */
  for (unsigned int i = 0; i < 14; i++)
    ck_assert (!vdo_unpin_pbn (&table, lock));
  ck_assert (vdo_unpin_pbn (&table, lock));
  ck_assert_ptr_null (vdo_find_pbn_lock (&table, 3));
  vdo_uninit_pbn_lock_table (&table);
}
END_TEST

Suite *
pbn_lock_suite (void)
{
  Suite *s = suite_create ("pbn_lock");
  TCase *tc = tcase_create ("pbn_lock");

  tcase_add_test (tc, test_pin_rules);
  tcase_add_test (tc, test_claims_stop_at_the_maximum);
  tcase_add_test (tc, test_shared_pin_and_provisional);
  tcase_add_test (tc, test_compressed_block_pin);
  suite_add_tcase (s, tc);
  return s;
}
