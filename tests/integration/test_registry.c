/* The worker registry (common/registry.h) against the Redis at
 * GENQ_REDIS_URL: beats, listing, ageing out, commands through the key and
 * the channel, the clean leave. Ids carry this process's pid; every key the
 * tests touch is theirs and is deleted at the end. Other workers may share
 * the set: the tests look only at their own ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

typedef struct {
  uv_loop_t loop;
  rds *r, *sub;
  int connects, sub_connects, closed;
  char ids[6][64];
} fixture;

static void on_connect(rds *r, void *arg) {
  fixture *f = arg;
  if (r == f->r)
    f->connects++;
  else
    f->sub_connects++;
}

static void run_until(fixture *f, const int *flag, int want) {
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  while (*flag < want && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(*flag >= want);
}

static void tick(uv_timer_t *t) {
  (*(int *)t->data)++;
}

/* Runs the loop for ms. */
static void run_for(fixture *f, int ms) {
  uv_timer_t t;
  int fired = 0;
  uv_timer_init(&f->loop, &t);
  t.data = &fired;
  uv_timer_start(&t, tick, (uint64_t)ms, 0);
  run_until(f, &fired, 1);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static const char *redis_url(void) {
  const char *u = getenv("GENQ_REDIS_URL");
  if (!u || !*u) fail_msg("GENQ_REDIS_URL is not set");
  return u;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  uv_loop_init(&f->loop);
  char err[128];
  if (rds_open(&f->r, &f->loop, redis_url(), err, sizeof err) != 0) fail_msg("rds_open: %s", err);
  rds_on_connect(f->r, on_connect, f);
  for (int i = 0; i < 6; i++)
    snprintf(f->ids[i], sizeof f->ids[i], "test-registry:%d:%c", (int)getpid(), 'a' + i);
  *state = f;
  run_until(f, &f->connects, 1);
  return 0;
}

typedef struct {
  int calls;
  long long integer;
  int type;
} reply;

static void on_reply(redisReply *r, const char *err, void *arg) {
  reply *out = arg;
  out->calls++;
  out->type = r ? r->type : -1;
  out->integer = r ? r->integer : 0;
}

/* A command's integer reply (EXISTS, ZSCORE's nil as -1). */
static long long cmd_int(fixture *f, const char *fmt, const char *a, const char *b) {
  reply x = {0};
  assert_int_equal(rds_command(f->r, on_reply, &x, fmt, a, b), 0);
  run_until(f, &x.calls, 1);
  if (x.type == REDIS_REPLY_NIL) return -1;
  assert_int_equal(x.type, REDIS_REPLY_INTEGER);
  return x.integer;
}

static void on_closed(void *arg) {
  ((fixture *)arg)->closed++;
}

static int teardown(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 6; i++) {
    reply d = {0};
    assert_int_equal(rds_command(f->r, on_reply, &d, "DEL %s%s %s%s", REGISTRY_RECORD_PREFIX,
                                 f->ids[i], REGISTRY_COMMAND_PREFIX, f->ids[i]),
                     0);
    run_until(f, &d.calls, 1);
    reply z = {0};
    rds_command(f->r, on_reply, &z, "ZREM %s %s", REGISTRY_WORKERS_KEY, f->ids[i]);
    run_until(f, &z.calls, 1);
  }
  rds_close(f->r, on_closed, f);
  if (f->sub) rds_close(f->sub, on_closed, f);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->closed, f->sub ? 2 : 1);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* ---- beats ---- */

typedef struct {
  int calls;
  long long now;
  registry_cmd cmd;
  char err[128];
} beat_reply;

static void on_beat(long long now_ms, registry_cmd cmd, const char *err, void *arg) {
  beat_reply *b = arg;
  b->calls++;
  b->now = now_ms;
  b->cmd = cmd;
  snprintf(b->err, sizeof b->err, "%s", err ? err : "");
}

static beat_reply beat(fixture *f, const char *id, const char *record, long ttl_ms) {
  beat_reply b = {0};
  assert_int_equal(registry_beat(f->r, id, record, ttl_ms, on_beat, &b), 0);
  run_until(f, &b.calls, 1);
  assert_string_equal(b.err, "");
  assert_true(b.now > 1700000000000LL); /* the server's clock, in ms */
  return b;
}

/* ---- listing ---- */

typedef struct {
  int calls;
  long long now;
  cJSON *list;
  char err[128];
} list_reply;

static void on_list(const cJSON *workers, long long now_ms, const char *err, void *arg) {
  list_reply *l = arg;
  l->calls++;
  l->now = now_ms;
  l->list = workers ? cJSON_Duplicate(workers, 1) : NULL;
  snprintf(l->err, sizeof l->err, "%s", err ? err : "");
}

static cJSON *list(fixture *f, long long *now) {
  list_reply l = {0};
  assert_int_equal(registry_list(f->r, on_list, &l), 0);
  run_until(f, &l.calls, 1);
  assert_string_equal(l.err, "");
  assert_non_null(l.list);
  if (now) *now = l.now;
  return l.list;
}

static const cJSON *find(const cJSON *list, const char *id) {
  const cJSON *w;
  cJSON_ArrayForEach(w, list) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(w, "id"));
    if (s && strcmp(s, id) == 0) return w;
  }
  return NULL;
}

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItem(o, k);
  assert_true(cJSON_IsNumber(v));
  return v->valuedouble;
}

static void beat_then_list_shows_the_record_with_its_age(void **state) {
  fixture *f = *state;
  beat_reply b0 = beat(f, f->ids[0], "{\"kinds\":[\"image\",\"video\"],\"concurrency\":3}", 10000);
  assert_int_equal(b0.cmd, REGISTRY_CMD_NONE);
  beat(f, f->ids[1], "{\"kinds\":[\"storyboard\"],\"concurrency\":8,\"id\":\"forged\"}", 10000);
  run_for(f, 120);
  long long now;
  cJSON *l = list(f, &now);
  const cJSON *a = find(l, f->ids[0]), *b = find(l, f->ids[1]);
  assert_non_null(a);
  assert_non_null(b);
  assert_null(find(l, "forged")); /* the set's id is the one shown */
  assert_int_equal((int)num(a, "concurrency"), 3);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "kinds"), 1)->valuestring, "video");
  assert_int_equal((int)num(b, "concurrency"), 8);
  assert_true(num(a, "last_beat_ms") == (double)b0.now);
  double age = num(a, "last_beat_age_ms");
  assert_true(age >= 100 && age < 5000);
  assert_true(now >= b0.now + 100);
  /* sorted by id */
  int ia = -1, ib = -1, i = 0;
  const cJSON *w;
  cJSON_ArrayForEach(w, l) {
    if (w == a) ia = i;
    if (w == b) ib = i;
    i++;
  }
  assert_true(ia < ib);
  cJSON_Delete(l);

  /* a second beat moves the last beat on */
  beat_reply b1 = beat(f, f->ids[0], "{\"kinds\":[\"image\"],\"concurrency\":4}", 10000);
  l = list(f, NULL);
  a = find(l, f->ids[0]);
  assert_true(num(a, "last_beat_ms") == (double)b1.now);
  assert_int_equal((int)num(a, "concurrency"), 4);
  assert_true(num(a, "last_beat_age_ms") < 1000);
  cJSON_Delete(l);
}

static void a_record_not_renewed_ages_out_and_leaves_the_set(void **state) {
  fixture *f = *state;
  beat(f, f->ids[2], "{\"concurrency\":1}", 300);
  beat(f, f->ids[3], "{\"concurrency\":2}", 10000);
  cJSON *l = list(f, NULL);
  assert_non_null(find(l, f->ids[2]));
  cJSON_Delete(l);
  run_for(f, 500);
  l = list(f, NULL);
  assert_null(find(l, f->ids[2]));
  assert_non_null(find(l, f->ids[3]));
  cJSON_Delete(l);
  /* the listing dropped its id from the set; the live one stays */
  assert_int_equal(cmd_int(f, "ZSCORE %s %s", REGISTRY_WORKERS_KEY, f->ids[2]), -1);
  reply z = {0};
  rds_command(f->r, on_reply, &z, "ZSCORE %s %s", REGISTRY_WORKERS_KEY, f->ids[3]);
  run_until(f, &z.calls, 1);
  assert_int_equal(z.type, REDIS_REPLY_STRING);
  /* a worker that was only paused comes back with its next beat */
  beat(f, f->ids[2], "{\"concurrency\":1}", 10000);
  l = list(f, NULL);
  assert_non_null(find(l, f->ids[2]));
  cJSON_Delete(l);
}

/* ---- commands ---- */

typedef struct {
  int calls, found;
  char err[128];
} send_reply;

static void on_sent(int found, const char *err, void *arg) {
  send_reply *s = arg;
  s->calls++;
  s->found = found;
  snprintf(s->err, sizeof s->err, "%s", err ? err : "");
}

static int send_cmd(fixture *f, const char *id, registry_cmd cmd) {
  send_reply s = {0};
  assert_int_equal(registry_send(f->r, id, cmd, on_sent, &s), 0);
  run_until(f, &s.calls, 1);
  assert_string_equal(s.err, "");
  return s.found;
}

static void a_command_is_taken_once_by_the_next_beat(void **state) {
  fixture *f = *state;
  beat(f, f->ids[0], "{}", 10000);
  assert_int_equal(send_cmd(f, f->ids[0], REGISTRY_CMD_QUIET), 1);
  char key[160];
  snprintf(key, sizeof key, "%s%s", REGISTRY_COMMAND_PREFIX, f->ids[0]);
  long long pttl = cmd_int(f, "PTTL %s%s", key, "");
  assert_true(pttl > 0 && pttl <= REGISTRY_COMMAND_TTL_MS);
  assert_int_equal(beat(f, f->ids[0], "{}", 10000).cmd, REGISTRY_CMD_QUIET);
  assert_int_equal(beat(f, f->ids[0], "{}", 10000).cmd, REGISTRY_CMD_NONE);
  /* the latest command is the one waiting */
  assert_int_equal(send_cmd(f, f->ids[0], REGISTRY_CMD_QUIET), 1);
  assert_int_equal(send_cmd(f, f->ids[0], REGISTRY_CMD_STOP), 1);
  assert_int_equal(beat(f, f->ids[0], "{}", 10000).cmd, REGISTRY_CMD_STOP);
}

static void a_command_to_no_live_worker_sends_nothing(void **state) {
  fixture *f = *state;
  assert_int_equal(send_cmd(f, f->ids[4], REGISTRY_CMD_STOP), 0);
  assert_int_equal(cmd_int(f, "EXISTS %s%s", REGISTRY_COMMAND_PREFIX, f->ids[4]), 0);
  /* one that aged out is no longer live either */
  beat(f, f->ids[4], "{}", 200);
  run_for(f, 350);
  assert_int_equal(send_cmd(f, f->ids[4], REGISTRY_CMD_QUIET), 0);
  assert_int_equal(cmd_int(f, "EXISTS %s%s", REGISTRY_COMMAND_PREFIX, f->ids[4]), 0);
}

typedef struct {
  int confirmed, n;
  char msg[256];
  size_t len;
} inbox;

static void on_message(const char *channel, const char *msg, size_t len, void *arg) {
  inbox *in = arg;
  if (!msg) {
    in->confirmed++;
    return;
  }
  assert_string_equal(channel, REGISTRY_CONTROL_CHANNEL);
  in->n++;
  in->len = len < sizeof in->msg - 1 ? len : sizeof in->msg - 1;
  memcpy(in->msg, msg, in->len);
  in->msg[in->len] = '\0';
}

static void a_command_is_published_on_the_control_channel(void **state) {
  fixture *f = *state;
  char err[128];
  assert_int_equal(rds_open(&f->sub, &f->loop, redis_url(), err, sizeof err), 0);
  inbox in = {0};
  assert_int_equal(rds_subscribe(f->sub, REGISTRY_CONTROL_CHANNEL, on_message, &in), 0);
  run_until(f, &in.confirmed, 1);
  beat(f, f->ids[5], "{}", 10000);
  assert_int_equal(send_cmd(f, f->ids[5], REGISTRY_CMD_STOP), 1);
  /* other tests' workers may publish too: wait for ours */
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (registry_control_for(in.msg, in.len, f->ids[5]) == REGISTRY_CMD_NONE &&
         uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(registry_control_for(in.msg, in.len, f->ids[5]), REGISTRY_CMD_STOP);
  assert_int_equal(registry_control_for(in.msg, in.len, f->ids[4]), REGISTRY_CMD_NONE);
}

static void leave_removes_record_beat_and_command(void **state) {
  fixture *f = *state;
  beat(f, f->ids[1], "{}", 10000);
  assert_int_equal(send_cmd(f, f->ids[1], REGISTRY_CMD_QUIET), 1);
  assert_int_equal(registry_leave(f->r, f->ids[1]), 0);
  cJSON *l = list(f, NULL);
  assert_null(find(l, f->ids[1]));
  cJSON_Delete(l);
  assert_int_equal(cmd_int(f, "EXISTS %s%s", REGISTRY_RECORD_PREFIX, f->ids[1]), 0);
  assert_int_equal(cmd_int(f, "EXISTS %s%s", REGISTRY_COMMAND_PREFIX, f->ids[1]), 0);
  assert_int_equal(cmd_int(f, "ZSCORE %s %s", REGISTRY_WORKERS_KEY, f->ids[1]), -1);
}

static void bad_ids_and_arguments_are_refused(void **state) {
  fixture *f = *state;
  beat_reply b = {0};
  assert_int_equal(registry_beat(f->r, "has space", "{}", 1000, on_beat, &b), -1);
  assert_int_equal(registry_beat(f->r, "", "{}", 1000, on_beat, &b), -1);
  assert_int_equal(registry_beat(f->r, f->ids[0], "{}", 0, on_beat, &b), -1);
  send_reply s = {0};
  assert_int_equal(registry_send(f->r, f->ids[0], REGISTRY_CMD_NONE, on_sent, &s), -1);
  assert_int_equal(b.calls + s.calls, 0);
}

/* ---- the pure parts ---- */

static void commands_and_ids_parse(void **state) {
  (void)state;
  assert_int_equal(registry_cmd_parse("quiet", 5), REGISTRY_CMD_QUIET);
  assert_int_equal(registry_cmd_parse("stop", 4), REGISTRY_CMD_STOP);
  assert_int_equal(registry_cmd_parse("sto", 3), REGISTRY_CMD_NONE);
  assert_int_equal(registry_cmd_parse("stopp", 5), REGISTRY_CMD_NONE);
  assert_int_equal(registry_cmd_parse(NULL, 0), REGISTRY_CMD_NONE);
  assert_string_equal(registry_cmd_name(REGISTRY_CMD_QUIET), "quiet");
  assert_string_equal(registry_cmd_name((registry_cmd)42), "");
  const char m[] = "h:1:ab stop";
  assert_int_equal(registry_control_for(m, strlen(m), "h:1:ab"), REGISTRY_CMD_STOP);
  assert_int_equal(registry_control_for(m, strlen(m), "h:1:a"), REGISTRY_CMD_NONE);
  assert_int_equal(registry_control_for(m, strlen(m), "h:1:abc"), REGISTRY_CMD_NONE);
  assert_int_equal(registry_control_for("h:1:ab ", 7, "h:1:ab"), REGISTRY_CMD_NONE);
  assert_int_equal(registry_control_for("h:1:ab", 6, "h:1:ab"), REGISTRY_CMD_NONE);
  assert_int_equal(registry_control_for(m, strlen(m), ""), REGISTRY_CMD_NONE);
  assert_true(registry_id_ok("host:123:abcdef"));
  assert_false(registry_id_ok(""));
  assert_false(registry_id_ok("a b"));
  assert_false(registry_id_ok("a\nb"));
  char big[REGISTRY_ID_MAX + 1];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_false(registry_id_ok(big));
  big[REGISTRY_ID_MAX - 1] = '\0';
  assert_true(registry_id_ok(big));
}

int main(void) {
  const char *url = getenv("GENQ_REDIS_URL");
  if (!url || !*url) {
    fprintf(stderr, "GENQ_REDIS_URL is not set: integration tests need it\n");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(commands_and_ids_parse),
      cmocka_unit_test_setup_teardown(beat_then_list_shows_the_record_with_its_age, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_record_not_renewed_ages_out_and_leaves_the_set, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_command_is_taken_once_by_the_next_beat, setup, teardown),
      cmocka_unit_test_setup_teardown(a_command_to_no_live_worker_sends_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(a_command_is_published_on_the_control_channel, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(leave_removes_record_beat_and_command, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_ids_and_arguments_are_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
