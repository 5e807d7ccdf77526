/* nbdkit-vdo: VDO's CRC-32 variant (vdo-format.md 1.4). */
#include <config.h>

#include <string.h>

#include "checksum.h"
#include "unit-suites.h"

START_TEST (test_check_value)
{
  const char *s = "123456789";

  ck_assert_uint_eq (vdo_crc32 ((const uint8_t *) s, strlen (s)), 0xD202D277u);
}
END_TEST

START_TEST (test_empty_input)
{
  ck_assert_uint_eq (vdo_crc32 ((const uint8_t *) "", 0), 0xFFFFFFFFu);
}
END_TEST

/* The bitwise definition from the format document, as an independent
 * reference for arbitrary data. */
static uint32_t
bitwise_crc (const uint8_t *buf, size_t len)
{
  uint32_t r = 0;
  size_t i;
  int k;

  for (i = 0; i < len; i++) {
    r ^= buf[i];
    for (k = 0; k < 8; k++)
      r = (r >> 1) ^ ((r & 1) ? 0xEDB88320u : 0);
  }
  return r ^ 0xFFFFFFFFu;
}

START_TEST (test_matches_bitwise)
{
  uint8_t buf[1000];
  size_t i;

  for (i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t) (i * 131 + 7);
  for (i = 0; i <= sizeof buf; i += 97)
    ck_assert_uint_eq (vdo_crc32 (buf, i), bitwise_crc (buf, i));
}
END_TEST

START_TEST (test_extend_continues)
{
  uint8_t buf[1000];
  size_t i;

  for (i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t) (i * 77 + 3);
  for (i = 0; i <= sizeof buf; i += 111)
    ck_assert_uint_eq (vdo_crc32_extend (vdo_crc32 (buf, i), buf + i,
                                         sizeof buf - i),
                       bitwise_crc (buf, sizeof buf));
}
END_TEST

Suite *
checksum_suite (void)
{
  Suite *s = suite_create ("checksum");
  TCase *tc = tcase_create ("crc32");

  tcase_add_test (tc, test_check_value);
  tcase_add_test (tc, test_empty_input);
  tcase_add_test (tc, test_matches_bitwise);
  tcase_add_test (tc, test_extend_continues);
  suite_add_tcase (s, tc);
  return s;
}
