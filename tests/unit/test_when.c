/* common/when.c: the shapes of an operator's instants (genqctl's T, the
 * admin API's since). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "when.h"

static void rfc3339_accepts_utc_offsets_and_fractions(void **state) {
  assert_true(when_is_rfc3339("2025-01-31T08:00:00Z"));
  assert_true(when_is_rfc3339("2025-01-31t08:00:00z"));
  assert_true(when_is_rfc3339("2025-01-31 08:00:00.123456+02:00"));
  assert_true(when_is_rfc3339("2025-12-31T23:59:60-11:30"));
}

static void rfc3339_refuses_other_shapes(void **state) {
  assert_false(when_is_rfc3339(""));
  assert_false(when_is_rfc3339("yesterday"));
  assert_false(when_is_rfc3339("2025-01-31"));
  assert_false(when_is_rfc3339("2025-01-31T08:00:00"));   /* no zone */
  assert_false(when_is_rfc3339("2025-13-31T08:00:00Z"));  /* month */
  assert_false(when_is_rfc3339("2025-01-31T24:00:00Z"));  /* hour */
  assert_false(when_is_rfc3339("2025-01-31T08:00:00.Z")); /* empty fraction */
  assert_false(when_is_rfc3339("2025-01-31T08:00:00+0200"));
  assert_false(when_is_rfc3339("2025-01-31T08:00:00Z; drop table jobs"));
}

static void durations_are_whole_seconds(void **state) {
  char out[24];
  assert_int_equal(when_parse_duration("90s", out, sizeof out), 0);
  assert_string_equal(out, "90");
  assert_int_equal(when_parse_duration("1h30m", out, sizeof out), 0);
  assert_string_equal(out, "5400");
  assert_int_equal(when_parse_duration("2d", out, sizeof out), 0);
  assert_string_equal(out, "172800");
  assert_int_equal(when_parse_duration("1w", out, sizeof out), 0);
  assert_string_equal(out, "604800");
}

static void durations_refuse_junk_and_huge(void **state) {
  char out[24] = "unchanged";
  assert_int_equal(when_parse_duration("", out, sizeof out), -1);
  assert_int_equal(when_parse_duration("10", out, sizeof out), -1);  /* no unit */
  assert_int_equal(when_parse_duration("h", out, sizeof out), -1);   /* no digits */
  assert_int_equal(when_parse_duration("10y", out, sizeof out), -1); /* unknown unit */
  assert_int_equal(when_parse_duration("-5m", out, sizeof out), -1);
  assert_int_equal(when_parse_duration("99999999999s", out, sizeof out), -1); /* 11 digits */
  assert_int_equal(when_parse_duration("6000w", out, sizeof out), -1);        /* > 100 years */
  assert_string_equal(out, "unchanged");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rfc3339_accepts_utc_offsets_and_fractions),
      cmocka_unit_test(rfc3339_refuses_other_shapes),
      cmocka_unit_test(durations_are_whole_seconds),
      cmocka_unit_test(durations_refuse_junk_and_huge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
