/* nbdkit-vdo: test vectors as hex text.
 *
 * Real metadata blocks are mostly zeros, so tests embed only their
 * non-zero stretches: runs of hex text at byte offsets, laid over a
 * zeroed block.  Whitespace in the text is ignored, so excerpts can be
 * pasted from a hex dump.
 */
#ifndef VDO_TEST_BYTES_H
#define VDO_TEST_BYTES_H

#include <check.h>
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct test_byte_run {
  size_t offset;
  const char *hex;
};

static inline int
test_hex_digit (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decode hex text into out (at most max bytes); returns the byte count.
 * A malformed vector fails the running test. */
static inline size_t
test_hex_to_bytes (const char *hex, uint8_t *out, size_t max)
{
  size_t n = 0;

  while (*hex) {
    int high, low;

    if (isspace ((unsigned char) *hex)) {
      hex++;
      continue;
    }
    high = test_hex_digit (hex[0]);
    low = hex[1] ? test_hex_digit (hex[1]) : -1;
    ck_assert_msg (high >= 0 && low >= 0, "bad hex in test vector");
    ck_assert_msg (n < max, "test vector too long");
    out[n++] = (uint8_t) (high << 4 | low);
    hex += 2;
  }
  return n;
}

/* Build a block of 'size' bytes from runs over zeros. */
static inline void
test_fill_runs (uint8_t *block, size_t size,
                const struct test_byte_run *runs, size_t count)
{
  size_t i;

  memset (block, 0, size);
  for (i = 0; i < count; i++) {
    ck_assert_msg (runs[i].offset < size, "run outside the block");
    test_hex_to_bytes (runs[i].hex, block + runs[i].offset,
                       size - runs[i].offset);
  }
}

#define TEST_FILL_RUNS(block, runs)                                     \
  test_fill_runs ((block), sizeof (block), (runs),                      \
                  sizeof (runs) / sizeof ((runs)[0]))

#endif /* VDO_TEST_BYTES_H */
