/* common/prom_cache.c on a real libuv loop: a scrape waits for the read it
 * starts; scrapes within max_age share one read; a failed read keeps the
 * last text and says so; a read that hangs lets its scrapes go after
 * wait_ms; waiters beyond the cap go at once; closing with a read in
 * flight frees the cache only once that read ends (ASan watches). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_cache.h"

typedef struct {
  uv_loop_t loop;
  uv_timer_t answer; /* a read's answer, after delay_ms */
  prom_cache *c;
  int reads; /* read calls */
  int fail;  /* the next reads fail */
  int hang;  /* the next read never answers by itself */
  int sync;  /* answer inside read */
  unsigned delay_ms;
  int ready; /* ready callbacks run */
  uint64_t ready_at;
} fx;

static void answer(fx *f) {
  if (f->fail) {
    prom_cache_done(f->c, NULL, 0);
    return;
  }
  char *t = malloc(64);
  int n = snprintf(t, 64, "genq_t_value %d\n", f->reads);
  prom_cache_done(f->c, t, (size_t)n);
}

static void answer_cb(uv_timer_t *t) {
  answer(t->data);
}

static void read_fn(prom_cache *c, void *arg) {
  fx *f = arg;
  (void)c;
  f->reads++;
  if (f->sync) {
    answer(f);
  } else if (!f->hang) {
    uv_timer_start(&f->answer, answer_cb, f->delay_ms, 0);
  }
}

static void ready_cb(void *arg) {
  fx *f = arg;
  f->ready++;
  f->ready_at = uv_now(&f->loop);
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->answer);
  f->answer.data = f;
  f->delay_ms = 20;
  prom_cache_opts o = {.name = "genq_t",
                       .what = "the test source",
                       .max_age_ms = 200,
                       .wait_ms = 300,
                       .read = read_fn,
                       .arg = f};
  assert_int_equal(prom_cache_new(&f->c, &f->loop, &o), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  if (f->c) prom_cache_close(f->c);
  uv_close((uv_handle_t *)&f->answer, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* Runs the loop until ready ran n times in all (or 2 s passed). */
static void run_until_ready(fx *f, int n) {
  uint64_t t0 = uv_now(&f->loop);
  while (f->ready < n && uv_now(&f->loop) - t0 < 2000) {
    uv_run(&f->loop, UV_RUN_ONCE);
    uv_update_time(&f->loop);
  }
}

static void nothing(uv_timer_t *t) {
  (void)t;
}

static void sleep_loop(fx *f, unsigned ms) {
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  uv_timer_start(&t, nothing, ms, 0);
  while (uv_is_active((uv_handle_t *)&t))
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static char *text_of(fx *f) {
  prom_buf b;
  prom_buf_init(&b, 1 << 16);
  prom_cache_write(f->c, &b);
  size_t len;
  char *s = prom_buf_take(&b, &len);
  assert_non_null(s);
  return s;
}

static void a_scrape_waits_for_its_read_and_later_ones_share_it(void **state) {
  fx *f = *state;
  prom_cache_get(f->c, ready_cb, f);
  assert_int_equal(f->ready, 0);     /* waiting for the read */
  prom_cache_get(f->c, ready_cb, f); /* joins it */
  assert_int_equal(f->reads, 1);
  run_until_ready(f, 2);
  assert_int_equal(f->ready, 2);
  /* fresh: at once, no read */
  prom_cache_get(f->c, ready_cb, f);
  assert_int_equal(f->ready, 3);
  assert_int_equal(f->reads, 1);
  char *s = text_of(f);
  assert_non_null(strstr(s, "genq_t_value 1\n"));
  assert_non_null(strstr(s, "# TYPE genq_t_up gauge\ngenq_t_up 1\n"));
  assert_non_null(strstr(s, "genq_t_reads_total 1\n"));
  assert_non_null(strstr(s, "genq_t_read_errors_total 0\n"));
  assert_non_null(strstr(s, "# TYPE genq_t_age_seconds gauge\n"));
  free(s);
  /* past max_age: a new read */
  sleep_loop(f, 220);
  prom_cache_get(f->c, ready_cb, f);
  run_until_ready(f, 4);
  assert_int_equal(f->reads, 2);
  s = text_of(f);
  assert_non_null(strstr(s, "genq_t_value 2\n"));
  free(s);
}

static void a_failed_read_keeps_the_last_text_and_is_not_repeated_at_once(void **state) {
  fx *f = *state;
  f->sync = 1;
  prom_cache_get(f->c, ready_cb, f); /* answered inside read: ready at once */
  assert_int_equal(f->ready, 1);
  sleep_loop(f, 220);
  f->fail = 1;
  prom_cache_get(f->c, ready_cb, f);
  assert_int_equal(f->ready, 2);
  assert_int_equal(f->reads, 2);
  /* within max_age of the failure: answered at once, not read again */
  prom_cache_get(f->c, ready_cb, f);
  assert_int_equal(f->ready, 3);
  assert_int_equal(f->reads, 2);
  char *s = text_of(f);
  assert_non_null(strstr(s, "genq_t_value 1\n")); /* what it knew */
  assert_non_null(strstr(s, "genq_t_up 0\n"));
  assert_non_null(strstr(s, "genq_t_read_errors_total 1\n"));
  free(s);
  /* after max_age it is read again, and comes back */
  sleep_loop(f, 220);
  f->fail = 0;
  prom_cache_get(f->c, ready_cb, f);
  assert_int_equal(f->reads, 3);
  s = text_of(f);
  assert_non_null(strstr(s, "genq_t_value 3\n"));
  assert_non_null(strstr(s, "genq_t_up 1\n"));
  free(s);
}

static void a_hung_read_lets_its_scrapes_go_after_wait_ms(void **state) {
  fx *f = *state;
  f->hang = 1;
  uint64_t t0 = uv_now(&f->loop);
  prom_cache_get(f->c, ready_cb, f);
  run_until_ready(f, 1);
  assert_int_equal(f->ready, 1);
  assert_in_range(f->ready_at - t0, 290, 1000);
  char *s = text_of(f);
  assert_null(strstr(s, "genq_t_value"));       /* nothing known yet */
  assert_null(strstr(s, "genq_t_age_seconds")); /* no age before a first read */
  assert_non_null(strstr(s, "genq_t_up 0\n"));
  free(s);
  /* still in flight: a scrape joins it (no second read) and waits again */
  prom_cache_get(f->c, ready_cb, f);
  assert_int_equal(f->reads, 1);
  answer(f); /* the read ends at last */
  assert_int_equal(f->ready, 2);
}

static void waiters_past_the_cap_go_at_once(void **state) {
  fx *f = *state;
  for (int i = 0; i < PROM_CACHE_WAITERS + 3; i++)
    prom_cache_get(f->c, ready_cb, f);
  assert_int_equal(f->ready, 3);
  assert_int_equal(f->reads, 1);
  run_until_ready(f, PROM_CACHE_WAITERS + 3);
  assert_int_equal(f->ready, PROM_CACHE_WAITERS + 3);
}

static void closing_answers_waiters_and_outlives_the_read_in_flight(void **state) {
  fx *f = *state;
  f->hang = 1;
  prom_cache_get(f->c, ready_cb, f);
  prom_cache_get(f->c, ready_cb, f);
  prom_cache_close(f->c);
  assert_int_equal(f->ready, 2);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* its timer closes; the read still holds it */
  answer(f);                       /* the late answer frees it (ASan: no use after free) */
  f->c = NULL;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_scrape_waits_for_its_read_and_later_ones_share_it, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_failed_read_keeps_the_last_text_and_is_not_repeated_at_once,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(a_hung_read_lets_its_scrapes_go_after_wait_ms, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(waiters_past_the_cap_go_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(closing_answers_waiters_and_outlives_the_read_in_flight,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
