/* rds against the Redis at GENQ_REDIS_URL (its db number; keys prefixed
 * with this process's pid and deleted at the end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis.h"

static const char *redis_url(void) {
  const char *u = getenv("GENQ_REDIS_URL");
  if (!u || !*u) fail_msg("GENQ_REDIS_URL is not set");
  return u;
}

typedef struct {
  int calls;
  int type;
  long long integer;
  char str[256];
  size_t len;
  char err[128];
} reply;

static void on_reply(redisReply *r, const char *err, void *arg) {
  reply *out = arg;
  out->calls++;
  if (!r) {
    out->type = -1;
    snprintf(out->err, sizeof out->err, "%s", err ? err : "");
    return;
  }
  assert_null(err);
  out->type = r->type;
  out->integer = r->integer;
  if (r->str) {
    out->len = r->len < sizeof out->str ? r->len : sizeof out->str;
    memcpy(out->str, r->str, out->len);
  }
}

typedef struct {
  uv_loop_t loop;
  rds *r;
  int connects;
  int closed;
  char prefix[64];
} fixture;

static void on_connect(rds *r, void *arg) {
  fixture *f = arg;
  f->connects++;
}

static void run_until(fixture *f, const int *flag, int want) {
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  while (*flag < want && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(*flag >= want);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  uv_loop_init(&f->loop);
  char err[128];
  if (rds_open(&f->r, &f->loop, redis_url(), err, sizeof err) != 0) fail_msg("rds_open: %s", err);
  rds_on_connect(f->r, on_connect, f);
  snprintf(f->prefix, sizeof f->prefix, "genq-test-rds:%d:", (int)getpid());
  *state = f;
  run_until(f, &f->connects, 1);
  assert_true(rds_connected(f->r));
  return 0;
}

static void on_closed(void *arg) {
  ((fixture *)arg)->closed++;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->r) {
    reply d = {0};
    if (rds_connected(f->r)) {
      rds_command(f->r, on_reply, &d, "DEL %sa %sbin %snum", f->prefix, f->prefix, f->prefix);
      run_until(f, &d.calls, 1);
    }
    rds_close(f->r, on_closed, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->closed, 1);
  }
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void set_then_get_returns_value(void **state) {
  fixture *f = *state;
  reply s = {0}, g = {0};
  assert_int_equal(rds_command(f->r, on_reply, &s, "SET %sa %s", f->prefix, "hello"), 0);
  assert_int_equal(rds_command(f->r, on_reply, &g, "GET %sa", f->prefix), 0);
  run_until(f, &g.calls, 1);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.type, REDIS_REPLY_STATUS);
  assert_int_equal(g.type, REDIS_REPLY_STRING);
  assert_int_equal(g.len, 5);
  assert_memory_equal(g.str, "hello", 5);
}

static void argv_command_is_binary_safe(void **state) {
  fixture *f = *state;
  char key[80];
  snprintf(key, sizeof key, "%sbin", f->prefix);
  const char val[] = {'a', 0, 'b', '\r', '\n', (char)0xff, ' ', 'z'};
  const char *argv[] = {"SET", key, val};
  size_t lens[] = {3, strlen(key), sizeof val};
  reply s = {0}, g = {0};
  assert_int_equal(rds_command_argv(f->r, on_reply, &s, 3, argv, lens), 0);
  const char *gargv[] = {"GET", key};
  size_t glens[] = {3, strlen(key)};
  assert_int_equal(rds_command_argv(f->r, on_reply, &g, 2, gargv, glens), 0);
  run_until(f, &g.calls, 1);
  assert_int_equal(g.type, REDIS_REPLY_STRING);
  assert_int_equal(g.len, sizeof val);
  assert_memory_equal(g.str, val, sizeof val);
}

static void error_reply_is_delivered_as_reply_error(void **state) {
  fixture *f = *state;
  reply s = {0}, e = {0};
  rds_command(f->r, on_reply, &s, "SET %snum notanumber", f->prefix);
  assert_int_equal(rds_command(f->r, on_reply, &e, "INCR %snum", f->prefix), 0);
  run_until(f, &e.calls, 1);
  assert_int_equal(e.type, REDIS_REPLY_ERROR);
  assert_non_null(strstr(e.str, "not an integer"));
  assert_string_equal(e.err, "");
}

static void selects_the_db_of_the_url(void **state) {
  fixture *f = *state;
  reply c = {0};
  rds_command(f->r, on_reply, &c, "CLIENT INFO");
  run_until(f, &c.calls, 1);
  const char *u = redis_url();
  const char *slash = strrchr(u + 8, '/');
  char want[32];
  snprintf(want, sizeof want, " db=%s ", slash ? slash + 1 : "0");
  assert_int_equal(c.type, REDIS_REPLY_STRING);
  c.str[c.len < sizeof c.str ? c.len : sizeof c.str - 1] = '\0';
  assert_non_null(strstr(c.str, want));
}

static void bad_urls_are_rejected_with_a_message(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rds *r = NULL;
  char err[128] = "";
  assert_int_equal(rds_open(&r, &loop, "http://127.0.0.1:6379", err, sizeof err), -1);
  assert_null(r);
  assert_non_null(strstr(err, "scheme"));
  err[0] = '\0';
  assert_int_equal(rds_open(&r, &loop, "redis://127.0.0.1:99999/0", err, sizeof err), -1);
  assert_non_null(strstr(err, "port"));
  err[0] = '\0';
  assert_int_equal(rds_open(&r, &loop, "redis://127.0.0.1:abc", err, sizeof err), -1);
  assert_non_null(strstr(err, "port"));
  err[0] = '\0';
  assert_int_equal(rds_open(&r, &loop, "redis://127.0.0.1:6379/x", err, sizeof err), -1);
  assert_non_null(strstr(err, "db"));
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void stop_loop(uv_timer_t *t) {
  uv_stop(t->loop);
}

static void command_when_not_connected_returns_minus_one(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rds *r = NULL;
  char err[128];
  /* port 1: nothing listens; it keeps retrying with backoff */
  assert_int_equal(rds_open(&r, &loop, "redis://:secret@127.0.0.1:1/3", err, sizeof err), 0);
  reply x = {0};
  assert_int_equal(rds_command(r, on_reply, &x, "PING"), -1);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, stop_loop, 350, 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* a few failed attempts */
  assert_false(rds_connected(r));
  assert_int_equal(x.calls, 0);
  uv_close((uv_handle_t *)&t, NULL);
  rds_close(r, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Sentinel mode with no Sentinel up: every round fails fast, nothing is
 * connected, commands are refused, and rds_close frees everything (ASan). */
static void sentinel_url_without_sentinels_keeps_asking(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rds *r = NULL;
  char err[128];
  assert_int_equal(
      rds_open(&r, &loop, "redis-sentinel://127.0.0.1:1,127.0.0.1:2/genq/3", err, sizeof err), 0);
  reply x = {0};
  assert_int_equal(rds_command(r, on_reply, &x, "PING"), -1);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, stop_loop, 350, 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* a few rounds over both */
  assert_false(rds_connected(r));
  assert_int_equal(x.calls, 0);
  uv_close((uv_handle_t *)&t, NULL);
  rds_close(r, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A Sentinel URL whose "Sentinel" is a plain Redis (it answers the SENTINEL
 * command with an error): refused, skipped, never connected. */
static void sentinel_that_is_not_one_is_skipped(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *u = redis_url();
  const char *hp = strstr(u, "://") + 3;
  char url[256];
  snprintf(url, sizeof url, "redis-sentinel://%.*s/genq", (int)strcspn(hp, "/"), hp);
  rds *r = NULL;
  char err[128];
  assert_int_equal(rds_open(&r, &loop, url, err, sizeof err), 0);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, stop_loop, 400, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_false(rds_connected(r));
  uv_close((uv_handle_t *)&t, NULL);
  rds_close(r, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void reconnects_after_client_kill(void **state) {
  fixture *f = *state;
  reply id = {0};
  rds_command(f->r, on_reply, &id, "CLIENT ID");
  run_until(f, &id.calls, 1);
  assert_int_equal(id.type, REDIS_REPLY_INTEGER);

  /* a second connection kills the first */
  rds *killer;
  char err[128];
  assert_int_equal(rds_open(&killer, &f->loop, redis_url(), err, sizeof err), 0);
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (!rds_connected(killer) && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(rds_connected(killer));

  /* a command pending on the victim when it dies gets reply NULL and err */
  reply pending = {0};
  assert_int_equal(rds_command(f->r, on_reply, &pending, "BLPOP %snever 5", f->prefix), 0);
  reply k = {0};
  rds_command(killer, on_reply, &k, "CLIENT KILL ID %lld", id.integer);
  run_until(f, &k.calls, 1);
  assert_int_equal(k.type, REDIS_REPLY_INTEGER);
  assert_int_equal(k.integer, 1);
  run_until(f, &pending.calls, 1);
  assert_int_equal(pending.type, -1);
  assert_string_not_equal(pending.err, "");

  run_until(f, &f->connects, 2);
  assert_true(rds_connected(f->r));
  reply s = {0}, g = {0};
  assert_int_equal(rds_command(f->r, on_reply, &s, "SET %sa %s", f->prefix, "again"), 0);
  assert_int_equal(rds_command(f->r, on_reply, &g, "GET %sa", f->prefix), 0);
  run_until(f, &g.calls, 1);
  assert_memory_equal(g.str, "again", 5);

  rds_close(killer, NULL, NULL);
}

static void close_fails_pending_commands_with_closed(void **state) {
  fixture *f = *state;
  reply b = {0};
  assert_int_equal(rds_command(f->r, on_reply, &b, "BLPOP %snever 5", f->prefix), 0);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  rds_close(f->r, on_closed, f);
  f->r = NULL;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.type, -1);
  assert_string_equal(b.err, "closed");
  assert_int_equal(f->closed, 1);
}

/* ---- pub/sub ---- */

typedef struct {
  int n;
  int confirmed; /* the subscription's confirmations (msg NULL) */
  char channel[128];
  char msg[256];
  size_t len;
} inbox;

static void on_message(const char *channel, const char *msg, size_t len, void *arg) {
  inbox *in = arg;
  if (!msg) {
    assert_int_equal(len, 0);
    in->confirmed++;
    return;
  }
  in->n++;
  snprintf(in->channel, sizeof in->channel, "%s", channel);
  in->len = len < sizeof in->msg ? len : sizeof in->msg;
  memcpy(in->msg, msg, in->len);
}

typedef struct {
  int calls;
  long long n;
} numsub;

static void on_numsub(redisReply *r, const char *err, void *arg) {
  numsub *out = arg;
  out->calls++;
  out->n = -1;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
      r->element[1]->type == REDIS_REPLY_INTEGER)
    out->n = r->element[1]->integer;
}

/* Polls PUBSUB NUMSUB on f->r until channel has `want` subscribers. */
static void wait_subscribers(fixture *f, const char *channel, long long want) {
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  for (;;) {
    numsub ns = {0};
    assert_int_equal(rds_command(f->r, on_numsub, &ns, "PUBSUB NUMSUB %s", channel), 0);
    run_until(f, &ns.calls, 1);
    if (ns.n == want) return;
    assert_true(uv_hrtime() < deadline);
    uv_sleep(10);
  }
}

typedef struct {
  rds *r;
  int connects;
  int downs;
  int closed;
} subscriber;

static void sub_connected(rds *r, void *arg) {
  ((subscriber *)arg)->connects++;
}

static void sub_down(rds *r, void *arg) {
  ((subscriber *)arg)->downs++;
}

static void sub_closed(void *arg) {
  ((subscriber *)arg)->closed++;
}

static void sub_open(fixture *f, subscriber *s) {
  char err[128];
  if (rds_open(&s->r, &f->loop, redis_url(), err, sizeof err) != 0) fail_msg("rds_open: %s", err);
  rds_on_connect(s->r, sub_connected, s);
  rds_on_down(s->r, sub_down, s);
}

static void sub_close(fixture *f, subscriber *s) {
  rds_close(s->r, sub_closed, s);
  run_until(f, &s->closed, 1);
}

static void publish(fixture *f, const char *channel, const char *msg, size_t len, long long want) {
  const char *argv[] = {"PUBLISH", channel, msg};
  size_t lens[] = {7, strlen(channel), len};
  reply p = {0};
  assert_int_equal(rds_command_argv(f->r, on_reply, &p, 3, argv, lens), 0);
  run_until(f, &p.calls, 1);
  assert_int_equal(p.type, REDIS_REPLY_INTEGER);
  assert_int_equal(p.integer, want);
}

static void subscribe_delivers_published_messages(void **state) {
  fixture *f = *state;
  char chan[96], other[96];
  snprintf(chan, sizeof chan, "%schan", f->prefix);
  snprintf(other, sizeof other, "%sother", f->prefix);
  subscriber s = {0};
  inbox in = {0}, in_other = {0};
  sub_open(f, &s);
  /* before the connection is up: sent once it is */
  assert_int_equal(rds_subscribe(s.r, chan, on_message, &in), 0);
  assert_int_equal(rds_subscribe(s.r, other, on_message, &in_other), 0);
  wait_subscribers(f, chan, 1);
  wait_subscribers(f, other, 1);
  assert_int_equal(s.connects, 1);
  run_until(f, &in.confirmed, 1);
  run_until(f, &in_other.confirmed, 1);

  const char payload[] = {'j', 0, 'o', '\r', '\n', 'b'};
  publish(f, chan, payload, sizeof payload, 1);
  run_until(f, &in.n, 1);
  assert_string_equal(in.channel, chan);
  assert_int_equal(in.len, sizeof payload);
  assert_memory_equal(in.msg, payload, sizeof payload);
  publish(f, other, "x", 1, 1);
  run_until(f, &in_other.n, 1);
  assert_int_equal(in.n, 1);
  assert_string_equal(in_other.channel, other);

  /* a subscriber connection carries nothing else */
  reply x = {0};
  assert_int_equal(rds_command(s.r, on_reply, &x, "PING"), -1);

  sub_close(f, &s);
  wait_subscribers(f, chan, 0);
  assert_int_equal(x.calls, 0);
}

static void subscription_returns_after_client_kill(void **state) {
  fixture *f = *state;
  char chan[96];
  snprintf(chan, sizeof chan, "%skill", f->prefix);
  subscriber s = {0};
  inbox in = {0};
  sub_open(f, &s);
  run_until(f, &s.connects, 1);
  /* while up: sent at once */
  assert_int_equal(rds_subscribe(s.r, chan, on_message, &in), 0);
  wait_subscribers(f, chan, 1);
  run_until(f, &in.confirmed, 1);
  publish(f, chan, "one", 3, 1);
  run_until(f, &in.n, 1);
  assert_int_equal(s.downs, 0);

  reply k = {0};
  rds_command(f->r, on_reply, &k, "CLIENT KILL TYPE pubsub");
  run_until(f, &k.calls, 1);
  assert_int_equal(k.type, REDIS_REPLY_INTEGER);
  assert_true(k.integer >= 1);

  run_until(f, &s.connects, 2); /* reconnected by itself... */
  assert_int_equal(s.downs, 1); /* (and said it was down) */
  wait_subscribers(f, chan, 1); /* ...and subscribed again, and said so */
  run_until(f, &in.confirmed, 2);
  publish(f, chan, "two", 3, 1);
  run_until(f, &in.n, 2);
  assert_int_equal(in.len, 3);
  assert_memory_equal(in.msg, "two", 3);
  sub_close(f, &s);
  assert_int_equal(s.downs, 1); /* closing is not going down */
}

int main(void) {
  const char *url = getenv("GENQ_REDIS_URL");
  if (!url || !*url) {
    fprintf(stderr, "GENQ_REDIS_URL is not set: integration tests need it\n");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(set_then_get_returns_value, setup, teardown),
      cmocka_unit_test_setup_teardown(argv_command_is_binary_safe, setup, teardown),
      cmocka_unit_test_setup_teardown(error_reply_is_delivered_as_reply_error, setup, teardown),
      cmocka_unit_test_setup_teardown(selects_the_db_of_the_url, setup, teardown),
      cmocka_unit_test(bad_urls_are_rejected_with_a_message),
      cmocka_unit_test(sentinel_url_without_sentinels_keeps_asking),
      cmocka_unit_test(sentinel_that_is_not_one_is_skipped),
      cmocka_unit_test(command_when_not_connected_returns_minus_one),
      cmocka_unit_test_setup_teardown(reconnects_after_client_kill, setup, teardown),
      cmocka_unit_test_setup_teardown(close_fails_pending_commands_with_closed, setup, teardown),
      cmocka_unit_test_setup_teardown(subscribe_delivers_published_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(subscription_returns_after_client_kill, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
