/* common/rand.c: one generator, seeded once, never stuck. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rand.h"

static void draws_vary_and_spread(void **state) {
  uint64_t prev = genq_rand64();
  int same = 0, buckets[16] = {0};
  for (int i = 0; i < 16000; i++) {
    uint64_t x = genq_rand64();
    same += x == prev;
    buckets[x % 16]++;
    prev = x;
  }
  assert_int_equal(same, 0);
  for (int b = 0; b < 16; b++)
    assert_in_range(buckets[b], 700, 1300);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(draws_vary_and_spread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
