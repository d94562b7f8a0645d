/* api/sse.c: one server-sent event as GET /v1/jobs/{id}/events sends it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static void formats_event_data_and_id(void **state) {
  size_t n = 0;
  char *m = api_sse_event("job", "{\"status\":\"queued\"}", 19, 1, &n);
  assert_non_null(m);
  assert_string_equal(m, "event: job\ndata: {\"status\":\"queued\"}\nid: 1\n\n");
  assert_int_equal(n, strlen(m));
  free(m);
}

static void line_breaks_in_data_become_spaces(void **state) {
  static const char json[] = "{\n  \"a\": 1,\r\n  \"b\": \"x\\ny\"\r}";
  size_t n = 0;
  char *m = api_sse_event("job", json, sizeof json - 1, 7, &n);
  assert_non_null(m);
  assert_string_equal(m, "event: job\ndata: {   \"a\": 1,    \"b\": \"x\\ny\" }\nid: 7\n\n");
  free(m);
}

static void empty_data_and_largest_id(void **state) {
  size_t n = 0;
  char *m = api_sse_event("job", "", 0, ULONG_MAX, &n);
  char want[64];
  snprintf(want, sizeof want, "event: job\ndata: \nid: %lu\n\n", ULONG_MAX);
  assert_non_null(m);
  assert_string_equal(m, want);
  assert_int_equal(n, strlen(want));
  free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(formats_event_data_and_id),
      cmocka_unit_test(line_breaks_in_data_become_spaces),
      cmocka_unit_test(empty_data_and_largest_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
