/* common/prom.c and prom_process.c: the text exposition format 0.0.4 —
 * HELP and TYPE lines, label values and HELP text escaped, numbers,
 * histograms written cumulative up to +Inf with _sum and _count, the
 * buffer's ceiling, the bounded status slots, and the process series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prom.h"

/* The buffer's text (owned by the test until freed). */
static char *take(prom_buf *b) {
  size_t len;
  char *s = prom_buf_take(b, &len);
  assert_non_null(s);
  assert_int_equal(strlen(s), len);
  return s;
}

static void family_lines_come_first_with_help_escaped(void **state) {
  prom_buf b;
  prom_buf_init(&b, 1 << 16);
  prom_family(&b, "genq_x_total", "counter", "a \\ back\nslash");
  prom_sample_u64(&b, "genq_x_total", NULL, 7);
  char *s = take(&b);
  assert_string_equal(s, "# HELP genq_x_total a \\\\ back\\nslash\n"
                         "# TYPE genq_x_total counter\n"
                         "genq_x_total 7\n");
  free(s);
}

static void label_values_are_escaped(void **state) {
  prom_buf b;
  prom_buf_init(&b, 1 << 16);
  const char *const labels[] = {"path", "C:\\dir", "q", "say \"hi\"", "nl", "a\nb", NULL};
  prom_sample(&b, "genq_y", labels, 1);
  char *s = take(&b);
  assert_string_equal(s, "genq_y{path=\"C:\\\\dir\",q=\"say \\\"hi\\\"\",nl=\"a\\nb\"} 1\n");
  free(s);
}

static void values_are_written_as_the_format_reads_them(void **state) {
  prom_buf b;
  prom_buf_init(&b, 1 << 16);
  prom_sample(&b, "a", NULL, 0.1);
  prom_sample(&b, "b", NULL, 3);
  prom_sample(&b, "c", NULL, -2.5);
  prom_sample(&b, "d", NULL, NAN);
  prom_sample(&b, "e", NULL, INFINITY);
  prom_sample(&b, "f", NULL, -INFINITY);
  prom_sample(&b, "g", NULL, 1.0 / 3.0);
  prom_sample_u64(&b, "h", NULL, UINT64_MAX);
  char *s = take(&b);
  assert_string_equal(s, "a 0.1\nb 3\nc -2.5\nd NaN\ne +Inf\nf -Inf\ng 0.3333333333333333\n"
                         "h 18446744073709551615\n");
  /* the fraction reads back exactly */
  assert_true(strtod(strstr(s, "g ") + 2, NULL) == 1.0 / 3.0);
  free(s);
}

static const double bounds[] = {0.1, 1, 10};
static const prom_buckets bk = {bounds, 3};

static void histogram_buckets_are_cumulative_up_to_inf(void **state) {
  prom_hist h = {0};
  prom_hist_observe(&h, &bk, 0.025);
  prom_hist_observe(&h, &bk, 0.1); /* on a bound: in that bucket (le) */
  prom_hist_observe(&h, &bk, 0.5);
  prom_hist_observe(&h, &bk, 20); /* above every bound: only +Inf */
  prom_hist_observe(&h, &bk, 2.25);
  assert_int_equal(prom_hist_count(&h, &bk), 5);
  prom_buf b;
  prom_buf_init(&b, 1 << 16);
  prom_family(&b, "genq_d_seconds", "histogram", "d");
  const char *const labels[] = {"kind", "video", NULL};
  prom_histogram(&b, "genq_d_seconds", labels, &bk, &h);
  char *s = take(&b);
  assert_string_equal(s, "# HELP genq_d_seconds d\n"
                         "# TYPE genq_d_seconds histogram\n"
                         "genq_d_seconds_bucket{kind=\"video\",le=\"0.1\"} 2\n"
                         "genq_d_seconds_bucket{kind=\"video\",le=\"1\"} 3\n"
                         "genq_d_seconds_bucket{kind=\"video\",le=\"10\"} 4\n"
                         "genq_d_seconds_bucket{kind=\"video\",le=\"+Inf\"} 5\n"
                         "genq_d_seconds_sum{kind=\"video\"} 22.875\n"
                         "genq_d_seconds_count{kind=\"video\"} 5\n");
  free(s);
}

static void an_empty_histogram_without_labels_still_has_every_line(void **state) {
  prom_hist h = {0};
  prom_buf b;
  prom_buf_init(&b, 1 << 16);
  prom_histogram(&b, "h", NULL, &bk, &h);
  char *s = take(&b);
  assert_string_equal(s, "h_bucket{le=\"0.1\"} 0\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"10\"} 0\n"
                         "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
  free(s);
}

static void a_buffer_past_its_ceiling_fails_and_gives_nothing(void **state) {
  prom_buf b;
  prom_buf_init(&b, 64);
  for (int i = 0; i < 10; i++)
    prom_sample_u64(&b, "genq_a_rather_long_metric_name", NULL, (uint64_t)i);
  assert_true(b.failed);
  size_t len = 99;
  assert_null(prom_buf_take(&b, &len));
  assert_int_equal(len, 0);
  /* taken: empty, and usable again */
  prom_sample_u64(&b, "x", NULL, 1);
  char *s = take(&b);
  assert_string_equal(s, "x 1\n");
  free(s);
  /* nothing written: an empty text, not NULL */
  s = take(&b);
  assert_string_equal(s, "");
  free(s);
}

static void status_codes_fall_into_a_bounded_set_of_slots(void **state) {
  assert_string_equal(prom_status_label(prom_status_slot(200)), "200");
  assert_string_equal(prom_status_label(prom_status_slot(404)), "404");
  assert_string_equal(prom_status_label(prom_status_slot(429)), "429");
  assert_string_equal(prom_status_label(prom_status_slot(503)), "503");
  assert_string_equal(prom_status_label(prom_status_slot(418)), "4xx");
  assert_string_equal(prom_status_label(prom_status_slot(599)), "5xx");
  assert_string_equal(prom_status_label(prom_status_slot(103)), "1xx");
  assert_string_equal(prom_status_label(prom_status_slot(0)), "other");
  assert_string_equal(prom_status_label(prom_status_slot(600)), "other");
  assert_string_equal(prom_status_label(prom_status_slot(-1)), "other");
  /* every status lands in a slot, and no two slots share a label */
  for (int st = -5; st < 1000; st++) {
    int slot = prom_status_slot(st);
    assert_in_range(slot, 0, PROM_STATUS_SLOTS - 1);
  }
  for (int a = 0; a < PROM_STATUS_SLOTS; a++)
    for (int b = a + 1; b < PROM_STATUS_SLOTS; b++)
      if (strcmp(prom_status_label(a), "other") != 0)
        assert_string_not_equal(prom_status_label(a), prom_status_label(b));
}

/* The value of the sample named exactly name (at a line start), or -1. */
static double sample_of(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, name, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

static void process_series_describe_this_process(void **state) {
  prom_buf b;
  prom_buf_init(&b, 1 << 16);
  prom_write_process(&b);
  char *s = take(&b);
  assert_non_null(strstr(s, "# TYPE process_cpu_seconds_total counter\n"));
  assert_non_null(strstr(s, "# TYPE process_resident_memory_bytes gauge\n"));
  assert_true(sample_of(s, "process_resident_memory_bytes") > 1e5);
  assert_true(sample_of(s, "process_virtual_memory_bytes") >=
              sample_of(s, "process_resident_memory_bytes"));
  assert_true(sample_of(s, "process_cpu_seconds_total") >= 0);
  assert_true(sample_of(s, "process_open_fds") >= 3); /* stdin, stdout, stderr */
  assert_true(sample_of(s, "process_max_fds") >= sample_of(s, "process_open_fds"));
  /* started within the last hour (and not in the future) */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double started = sample_of(s, "process_start_time_seconds");
  assert_true(started > (double)now.tv_sec - 3600 && started <= (double)now.tv_sec + 1);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(family_lines_come_first_with_help_escaped),
      cmocka_unit_test(label_values_are_escaped),
      cmocka_unit_test(values_are_written_as_the_format_reads_them),
      cmocka_unit_test(histogram_buckets_are_cumulative_up_to_inf),
      cmocka_unit_test(an_empty_histogram_without_labels_still_has_every_line),
      cmocka_unit_test(a_buffer_past_its_ceiling_fails_and_gives_nothing),
      cmocka_unit_test(status_codes_fall_into_a_bounded_set_of_slots),
      cmocka_unit_test(process_series_describe_this_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
