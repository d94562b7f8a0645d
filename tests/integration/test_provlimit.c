/* The fleet-wide provider limits' Lua scripts (common/provlimit_lua.h,
 * docs/providers.md) against the real Redis at GENQ_REDIS_URL, each test on
 * a provider name of its own: slots up to the window and never past it, a
 * renewal, a lapsed lease giving its slot back; a 429 halving the window
 * once per pause and pausing it, successes growing it back one step per
 * window up to the max; the breaker opening after K failures, its cool-down,
 * one half-open probe, closing on success, and forced open; the rate
 * bucket; fairness: a free slot goes to the waiting user holding fewer
 * slots per weight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "provlimit_lua.h"
#include "redis.h"

static uv_loop_t loop;
static rds *r;
static char prov[64];
static char k_slots[128], k_state[128], k_wait[128], k_weights[128];

typedef struct {
  int done;
  long long a, b; /* integer, or an array's first two integers */
  char str[64];   /* a string reply */
} reply_t;

static void on_reply(redisReply *rep, const char *err, void *arg) {
  reply_t *o = arg;
  assert_null(err);
  assert_non_null(rep);
  if (rep->type == REDIS_REPLY_ERROR) fail_msg("redis: %s", rep->str);
  if (rep->type == REDIS_REPLY_INTEGER) o->a = rep->integer;
  if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)
    snprintf(o->str, sizeof o->str, "%s", rep->str);
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2) {
    o->a = rep->element[0]->integer;
    o->b = rep->element[1]->integer;
  }
  o->done = 1;
}

static reply_t cmd(int argc, const char **argv) {
  reply_t o = {0};
  assert_int_equal(rds_command_argv(r, on_reply, &o, argc, argv, NULL), 0);
  while (!o.done)
    uv_run(&loop, UV_RUN_ONCE);
  return o;
}

static void use_provider(const char *name) {
  snprintf(prov, sizeof prov, "t%d-%s", (int)getpid(), name);
  snprintf(k_slots, sizeof k_slots, PROVLIMIT_KEY_FMT, prov, "slots");
  snprintf(k_state, sizeof k_state, PROVLIMIT_KEY_FMT, prov, "state");
  snprintf(k_wait, sizeof k_wait, PROVLIMIT_KEY_FMT, prov, "waiting");
  snprintf(k_weights, sizeof k_weights, PROVLIMIT_KEY_FMT, prov, "weights");
  const char *del[] = {"DEL", k_slots, k_state, k_wait, k_weights};
  cmd(5, del);
}

/* acquire MEMBER-of-job USER: 1 granted, else -(wait_ms) - 1 */
static long long acquire_w(const char *job, const char *user, const char *weight, const char *lease,
                           const char *max, const char *rate) {
  char m[128];
  snprintf(m, sizeof m, "%s:video|%s", job, user);
  const char *argv[] = {"EVAL",    PROVLIMIT_ACQUIRE_LUA,
                        "4",       k_slots,
                        k_state,   k_wait,
                        k_weights, m,
                        lease,     max,
                        rate,      user,
                        weight};
  reply_t o = cmd(13, argv);
  return o.a == 1 ? 1 : -o.b - 1;
}

static long long acquire(const char *job, const char *max) {
  return acquire_w(job, "u1", "1", "60000", max, "0");
}

static long long report(const char *job, const char *outcome, const char *ra, const char *max,
                        const char *k, const char *cool, const char *drop) {
  char m[128];
  snprintf(m, sizeof m, "%s:video|u1", job);
  const char *argv[] = {
      "EVAL", PROVLIMIT_REPORT_LUA, "2", k_slots, k_state, m, outcome, ra, max, k, cool, drop};
  return cmd(12, argv).a;
}

static const char *state(const char *field) {
  static reply_t o;
  const char *argv[] = {"HGET", k_state, field};
  o = cmd(3, argv);
  return o.str;
}

static long long in_use(void) {
  const char *argv[] = {"EVAL", PROVLIMIT_SHOW_LUA, "2", k_slots, k_state};
  return cmd(5, argv).b;
}

static void test_slots_never_past_the_window(void **st) {
  (void)st;
  use_provider("slots");
  assert_int_equal(acquire("j1", "3"), 1);
  assert_int_equal(acquire("j2", "3"), 1);
  assert_int_equal(acquire("j3", "3"), 1);
  assert_int_equal(acquire("j4", "3"), -1); /* full: wait 0, ask again */
  assert_int_equal(acquire("j1", "3"), 1);  /* a holder asking again renews its own */
  assert_int_equal(in_use(), 3);
  const char *zrem[] = {"ZREM", k_slots, "j2:video|u1"};
  cmd(3, zrem);
  assert_int_equal(acquire("j4", "3"), 1);
  assert_int_equal(acquire("j5", "3"), -1);
  /* a lapsed lease (a dead worker's slot) comes back by itself */
  use_provider("lapse");
  assert_int_equal(acquire_w("d1", "u1", "1", "150", "1", "0"), 1);
  assert_int_equal(acquire("d2", "1"), -1);
  /* renewed: still held after the first lease would have lapsed */
  const char *renew[] = {"EVAL", PROVLIMIT_RENEW_LUA, "1", k_slots, "400", "d1:video|u1"};
  assert_int_equal(cmd(6, renew).a, 1);
  usleep(200 * 1000);
  assert_int_equal(acquire("d2", "1"), -1);
  usleep(300 * 1000);
  assert_int_equal(acquire("d2", "1"), 1);
  /* a renewal does not take a lapsed slot back */
  const char *renew2[] = {"EVAL", PROVLIMIT_RENEW_LUA, "1", k_slots, "60000", "d1:video|u1"};
  cmd(6, renew2);
  assert_int_equal(in_use(), 1);
}

static void test_window_adapts(void **st) {
  (void)st;
  use_provider("aimd");
  for (int i = 0; i < 4; i++) {
    char j[8];
    snprintf(j, sizeof j, "a%d", i);
    assert_int_equal(acquire(j, "8"), 1);
  }
  /* a 429: the window halves and pauses; a second 429 of the same pause
   * does not halve it again; the limited member's slot is dropped */
  assert_int_equal(report("a0", "limited", "300", "8", "0", "1000", "1"), 4);
  assert_int_equal(report("a1", "limited", "300", "8", "0", "1000", "1"), 4);
  assert_string_equal(state("limited"), "2");
  assert_int_equal(in_use(), 2);
  long long w = acquire("b1", "8");
  assert_true(w < -1 && -w - 1 <= 300); /* paused: the wait until its end */
  usleep(320 * 1000);
  /* window 4, 2 held: 2 more */
  assert_int_equal(acquire("b1", "8"), 1);
  assert_int_equal(acquire("b2", "8"), 1);
  assert_int_equal(acquire("b3", "8"), -1);
  /* additive increase: one step after a window's worth of successes */
  for (int i = 0; i < 3; i++)
    assert_int_equal(report("b1", "ok", "0", "8", "0", "1000", "0"), 4);
  assert_int_equal(report("b1", "ok", "0", "8", "0", "1000", "0"), 5);
  for (int i = 0; i < 100; i++)
    report("b1", "ok", "0", "8", "0", "1000", "0");
  assert_string_equal(state("window"), "8"); /* never past the max */
  /* a lower max (configuration changed) caps it at once */
  assert_int_equal(acquire("b2", "2"), 1);
  assert_string_equal(state("window"), "2");
}

static void test_breaker(void **st) {
  (void)st;
  use_provider("breaker");
  assert_int_equal(acquire("p1", "0"), 1);
  report("p1", "failed", "0", "0", "3", "300", "0");
  report("p1", "failed", "0", "0", "3", "300", "0");
  assert_string_equal(state("breaker"), "");
  report("p1", "ok", "0", "0", "3", "300", "0"); /* a success resets the count */
  for (int i = 0; i < 3; i++)
    report("p1", "failed", "0", "0", "3", "300", "0");
  assert_string_equal(state("breaker"), "open");
  long long w = acquire("p2", "0");
  assert_true(w < -1 && -w - 1 <= 300);
  usleep(320 * 1000);
  /* half-open: one probe, the others wait */
  assert_int_equal(acquire("p2", "0"), 1);
  assert_string_equal(state("breaker"), "half_open");
  assert_true(acquire("p3", "0") < -1);
  /* the probe fails: open again */
  report("p2", "failed", "0", "0", "3", "300", "0");
  assert_string_equal(state("breaker"), "open");
  usleep(320 * 1000);
  assert_int_equal(acquire("p3", "0"), 1);
  report("p3", "ok", "0", "0", "3", "300", "0");
  assert_string_equal(state("breaker"), "closed");
  assert_int_equal(acquire("p4", "0"), 1);
  /* forced open (genqctl providers open) holds whatever the answers */
  const char *hset[] = {"HSET", k_state, "breaker", "forced_open"};
  cmd(4, hset);
  report("p4", "ok", "0", "0", "3", "300", "0");
  assert_string_equal(state("breaker"), "forced_open");
  assert_true(acquire("p5", "0") < -1);
}

static void test_rate(void **st) {
  (void)st;
  use_provider("rate");
  /* 60 a minute: burst 6, then one a second */
  for (int i = 0; i < 6; i++) {
    char j[8];
    snprintf(j, sizeof j, "r%d", i);
    assert_int_equal(acquire_w(j, "u1", "1", "60000", "0", "60"), 1);
  }
  long long w = acquire_w("rx", "u1", "1", "60000", "0", "60");
  assert_true(w < -1 && -w - 1 <= 1000);
  usleep(1100 * 1000);
  assert_int_equal(acquire_w("rx", "u1", "1", "60000", "0", "60"), 1);
}

static void test_fairness(void **st) {
  (void)st;
  use_provider("fair");
  /* A holds both slots; A and B both wait */
  assert_int_equal(acquire_w("a1", "A", "1", "60000", "2", "0"), 1);
  assert_int_equal(acquire_w("a2", "A", "1", "60000", "2", "0"), 1);
  assert_int_equal(acquire_w("a3", "A", "1", "60000", "2", "0"), -1);
  assert_int_equal(acquire_w("b1", "B", "1", "60000", "2", "0"), -1);
  const char *zrem[] = {"ZREM", k_slots, "a1:video|A"};
  cmd(3, zrem);
  /* the free slot is B's turn (0 held per weight against A's 1) */
  assert_int_equal(acquire_w("a3", "A", "1", "60000", "2", "0"), -1);
  assert_int_equal(acquire_w("b1", "B", "1", "60000", "2", "0"), 1);
  /* B, granted, left the waiting set: A takes the next free one */
  const char *zrem2[] = {"ZREM", k_slots, "a2:video|A"};
  cmd(3, zrem2);
  assert_int_equal(acquire_w("a3", "A", "1", "60000", "2", "0"), 1);
  /* weights: slots held are counted per weight (C of weight 3, D of 1) */
  use_provider("weights");
  assert_int_equal(acquire_w("c1", "C", "3", "60000", "3", "0"), 1);
  assert_int_equal(acquire_w("c2", "C", "3", "60000", "3", "0"), 1);
  assert_int_equal(acquire_w("d1", "D", "1", "60000", "3", "0"), 1);
  assert_int_equal(acquire_w("c3", "C", "3", "60000", "3", "0"), -1);
  assert_int_equal(acquire_w("d2", "D", "1", "60000", "3", "0"), -1);
  const char *zrem3[] = {"ZREM", k_slots, "d1:video|D"};
  cmd(3, zrem3);
  /* D now 0/1 = 0 against C's 2/3: D first */
  assert_int_equal(acquire_w("c3", "C", "3", "60000", "3", "0"), -1);
  assert_int_equal(acquire_w("d2", "D", "1", "60000", "3", "0"), 1);
}

static int setup(void **st) {
  (void)st;
  const char *url = getenv("GENQ_REDIS_URL");
  if (!url || !*url) {
    fprintf(stderr, "GENQ_REDIS_URL is not set\n");
    return -1;
  }
  uv_loop_init(&loop);
  char err[256];
  if (rds_open(&r, &loop, url, err, sizeof err) != 0) return -1;
  for (int i = 0; i < 500 && !rds_connected(r); i++)
    uv_run(&loop, UV_RUN_NOWAIT), usleep(10000);
  return rds_connected(r) ? 0 : -1;
}

static int teardown(void **st) {
  (void)st;
  const char *names[] = {"slots", "lapse", "aimd", "breaker", "rate", "fair", "weights"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    use_provider(names[i]);
  rds_close(r, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slots_never_past_the_window),
      cmocka_unit_test(test_window_adapts),
      cmocka_unit_test(test_breaker),
      cmocka_unit_test(test_rate),
      cmocka_unit_test(test_fairness),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
