/* worker/backoff.c: a job's retry delay (exponential, full jitter, capped,
 * Retry-After honoured within the cap) and a step's poll schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker.h"

static genq_config cfg(void) {
  genq_config c = {0};
  c.retry_base_ms = 2000;
  c.retry_cap_ms = 600000;
  c.poll_interval_ms = 2000;
  c.poll_max_interval_ms = 15000;
  return c;
}

static void retry_grows_exponentially(void **state) {
  genq_config c = cfg();
  assert_int_equal(backoff_retry_ms(&c, 1, 0, 2000), 2000);
  assert_int_equal(backoff_retry_ms(&c, 2, 0, 4000), 4000);
  assert_int_equal(backoff_retry_ms(&c, 3, 0, 8000), 8000);
  assert_int_equal(backoff_retry_ms(&c, 6, 0, 64000), 64000);
  /* one past the ceiling wraps to 0: the draw is rnd % (ceiling + 1) */
  assert_int_equal(backoff_retry_ms(&c, 1, 0, 2001), 0);
  assert_int_equal(backoff_retry_ms(&c, 3, 0, 8001), 0);
  assert_int_equal(backoff_retry_ms(&c, 4, 0, 16000), 16000);
  assert_int_equal(backoff_retry_ms(&c, 4, 0, 16001), 0);
  /* attempt 0 or below: the base */
  assert_int_equal(backoff_retry_ms(&c, 0, 0, 2000), 2000);
}

static void retry_is_full_jitter(void **state) {
  genq_config c = cfg();
  assert_int_equal(backoff_retry_ms(&c, 5, 0, 0), 0);
  int low = 0, high = 0;
  for (uint64_t r = 0; r < 100000; r++) {
    long d = backoff_retry_ms(&c, 5, 0, r * 2654435761u);
    assert_in_range(d, 0, 32000);
    low += d < 16000;
    high += d >= 16000;
  }
  /* spread over the whole range, not clustered near the ceiling */
  assert_true(low > 40000 && high > 40000);
}

static void retry_is_capped(void **state) {
  genq_config c = cfg();
  assert_int_equal(backoff_retry_ms(&c, 9, 0, 512000), 512000);
  assert_int_equal(backoff_retry_ms(&c, 9, 0, 512001), 0);
  assert_int_equal(backoff_retry_ms(&c, 10, 0, 600000), 600000);
  assert_int_equal(backoff_retry_ms(&c, 10, 0, 600001), 0);
  /* a huge attempt neither overflows nor passes the cap */
  assert_int_equal(backoff_retry_ms(&c, 1000000, 0, 600000), 600000);
  assert_int_equal(backoff_retry_ms(&c, 1000000, 0, UINT64_MAX), (long)(UINT64_MAX % 600001));
  /* a base above the cap is cut to the cap */
  c.retry_base_ms = 900000;
  assert_int_equal(backoff_retry_ms(&c, 1, 0, 600000), 600000);
}

static void retry_honours_retry_after(void **state) {
  genq_config c = cfg();
  /* at least what the provider asked for */
  assert_int_equal(backoff_retry_ms(&c, 1, 30000, 0), 30000);
  assert_int_equal(backoff_retry_ms(&c, 1, 30000, 2000), 30000);
  /* a longer draw wins */
  assert_int_equal(backoff_retry_ms(&c, 6, 30000, 50000), 50000);
  /* none asked (0 or negative): the draw alone */
  assert_int_equal(backoff_retry_ms(&c, 1, 0, 1500), 1500);
  assert_int_equal(backoff_retry_ms(&c, 1, -1, 1500), 1500);
}

static void retry_after_is_capped(void **state) {
  genq_config c = cfg();
  assert_int_equal(backoff_retry_ms(&c, 1, 3600000, 0), 600000);
  assert_int_equal(backoff_retry_ms(&c, 1, 600000, 0), 600000);
  assert_int_equal(backoff_retry_ms(&c, 1, 599999, 0), 599999);
}

/* rnd % 1000 == 500 is the middle of the jitter: the schedule itself */
#define MID 500

static void poll_grows_by_half_up_to_the_max(void **state) {
  genq_config c = cfg();
  assert_int_equal(backoff_poll_ms(&c, 0, 0, MID), 2000);
  assert_int_equal(backoff_poll_ms(&c, 1, 0, MID), 3000);
  assert_int_equal(backoff_poll_ms(&c, 2, 0, MID), 4500);
  assert_int_equal(backoff_poll_ms(&c, 3, 0, MID), 6750);
  assert_int_equal(backoff_poll_ms(&c, 4, 0, MID), 10125);
  assert_int_equal(backoff_poll_ms(&c, 5, 0, MID), 15000); /* 15187.5 capped */
  assert_int_equal(backoff_poll_ms(&c, 1000000, 0, MID), 15000);
}

/* With callbacks, Luma's fallback polls keep growing to their own cap. */
static void poll_with_its_own_cap_grows_past_the_default_one(void **state) {
  genq_config c = cfg();
  assert_int_equal(backoff_poll_cap_ms(&c, 60000, 0, 0, MID), 2000);
  assert_int_equal(backoff_poll_cap_ms(&c, 60000, 5, 0, MID), 15187);
  assert_int_equal(backoff_poll_cap_ms(&c, 60000, 8, 0, MID), 51257);
  assert_int_equal(backoff_poll_cap_ms(&c, 60000, 9, 0, MID), 60000);
  assert_int_equal(backoff_poll_cap_ms(&c, 60000, 1000000, 0, MID), 60000);
  assert_int_equal(backoff_poll_cap_ms(&c, 15000, 7, 0, MID), backoff_poll_ms(&c, 7, 0, MID));
}

static void poll_jitter_is_ten_percent(void **state) {
  genq_config c = cfg();
  assert_int_equal(backoff_poll_ms(&c, 0, 0, 0), 1800);
  assert_int_equal(backoff_poll_ms(&c, 0, 0, 999), 2199);
  assert_int_equal(backoff_poll_ms(&c, 0, 0, 1000), 1800); /* rnd % 1000 */
  assert_int_equal(backoff_poll_ms(&c, 9, 0, 0), 13500);
  for (uint64_t r = 0; r < 5000; r++)
    assert_in_range(backoff_poll_ms(&c, 9, 0, r * 0x9e3779b97f4a7c15ULL), 13500, 16500);
}

static void poll_waits_for_retry_after_within_the_cap(void **state) {
  genq_config c = cfg();
  /* longer than the schedule: exactly what was asked, no jitter */
  assert_int_equal(backoff_poll_ms(&c, 0, 30000, 0), 30000);
  assert_int_equal(backoff_poll_ms(&c, 0, 30000, 999), 30000);
  /* shorter: the schedule */
  assert_int_equal(backoff_poll_ms(&c, 3, 1000, MID), 6750);
  /* capped by GENQ_RETRY_CAP_MS */
  assert_int_equal(backoff_poll_ms(&c, 0, 3600000, MID), 600000);
  c.retry_cap_ms = 20000;
  assert_int_equal(backoff_poll_ms(&c, 0, 3600000, MID), 20000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(retry_grows_exponentially),
      cmocka_unit_test(poll_with_its_own_cap_grows_past_the_default_one),
      cmocka_unit_test(retry_is_full_jitter),
      cmocka_unit_test(retry_is_capped),
      cmocka_unit_test(retry_honours_retry_after),
      cmocka_unit_test(retry_after_is_capped),
      cmocka_unit_test(poll_grows_by_half_up_to_the_max),
      cmocka_unit_test(poll_jitter_is_ten_percent),
      cmocka_unit_test(poll_waits_for_retry_after_within_the_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
