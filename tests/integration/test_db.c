/* db pool against the PostgreSQL at GENQ_DATABASE_URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db.h"

static const char *db_url(void) {
  const char *u = getenv("GENQ_DATABASE_URL");
  if (!u || !*u) fail_msg("GENQ_DATABASE_URL is not set");
  return u;
}

/* The URL with application_name set, so one pool can find another's backends. */
static void url_with_app(char *out, size_t n, const char *app) {
  const char *u = db_url();
  snprintf(out, n, "%s%sapplication_name=%s", u, strchr(u, '?') ? "&" : "?", app);
}

typedef struct {
  int calls;
  int ok;
  char sqlstate[8];
  char error[512];
  char v0[256]; /* first column of the first row */
  int v0_null;
  int ntuples;
  int order; /* global completion sequence number */
} result;

static int completion_seq;

static void on_result(const db_result *r, void *arg) {
  result *out = arg;
  out->calls++;
  out->ok = r->ok;
  out->order = completion_seq++;
  if (!r->ok) {
    snprintf(out->sqlstate, sizeof out->sqlstate, "%s", r->sqlstate ? r->sqlstate : "");
    snprintf(out->error, sizeof out->error, "%s", r->error ? r->error : "");
    assert_null(r->res);
    return;
  }
  assert_non_null(r->res);
  out->ntuples = PQntuples(r->res);
  if (out->ntuples > 0 && PQnfields(r->res) > 0) {
    out->v0_null = PQgetisnull(r->res, 0, 0);
    snprintf(out->v0, sizeof out->v0, "%s", PQgetvalue(r->res, 0, 0));
  }
}

typedef struct {
  uv_loop_t loop;
  db *d;
  int closed;
  db *extra; /* a second pool a test opened: closed by teardown if the test failed */
  int extra_closed;
} fixture;

static void run_until(fixture *f, const int *flag, int want, int seconds) {
  uint64_t deadline = uv_hrtime() + (uint64_t)seconds * 1000000000ull;
  while (*flag < want && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(*flag >= want);
}

static void on_closed(void *arg) {
  (*(int *)arg)++;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  uv_loop_init(&f->loop);
  db_options o = {.conninfo = db_url(), .pool_size = 2};
  if (db_open(&f->d, &f->loop, &o) != 0) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->extra) db_close(f->extra, on_closed, &f->extra_closed);
  if (f->d) db_close(f->d, on_closed, &f->closed);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  if (f->d) assert_int_equal(f->closed, 1);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void query_with_params_and_null_params(void **state) {
  fixture *f = *state;
  result a = {0}, b = {0}, c = {0};
  const char *p[] = {"20", "22"};
  assert_int_equal(db_query(f->d, "select $1::int + $2::int", 2, p, on_result, &a), 0);
  const char *pn[] = {NULL, "x"};
  assert_int_equal(
      db_query(f->d, "select $1::text is null, coalesce($1::text, $2)", 2, pn, on_result, &b), 0);
  assert_int_equal(db_query(f->d, "select null::text", 0, NULL, on_result, &c), 0);
  run_until(f, &a.calls, 1, 10);
  run_until(f, &b.calls, 1, 10);
  run_until(f, &c.calls, 1, 10);
  assert_true(a.ok);
  assert_string_equal(a.v0, "42");
  assert_true(b.ok);
  assert_string_equal(b.v0, "t");
  assert_true(c.ok);
  assert_int_equal(c.v0_null, 1);
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (db_connected(f->d) < 2 && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(db_connected(f->d), 2);
}

static void command_without_rows_succeeds(void **state) {
  fixture *f = *state;
  result a = {0}, b = {0};
  db_query(f->d, "create temp table if not exists t_h2 (x int)", 0, NULL, on_result, &a);
  run_until(f, &a.calls, 1, 10);
  assert_true(a.ok);
  assert_int_equal(a.ntuples, 0);
  db_query(f->d, "select 'it''s $1 literally'", 0, NULL, on_result, &b);
  run_until(f, &b.calls, 1, 10);
  assert_string_equal(b.v0, "it's $1 literally");
}

static void sql_error_reports_sqlstate(void **state) {
  fixture *f = *state;
  result a = {0}, b = {0}, after = {0};
  db_query(f->d, "select 1/0", 0, NULL, on_result, &a);
  db_query(f->d, "select * from no_such_table_h2", 0, NULL, on_result, &b);
  db_query(f->d, "select 7", 0, NULL, on_result, &after);
  run_until(f, &after.calls, 1, 10);
  run_until(f, &a.calls, 1, 10);
  run_until(f, &b.calls, 1, 10);
  assert_false(a.ok);
  assert_string_equal(a.sqlstate, "22012");
  assert_non_null(strstr(a.error, "division by zero"));
  assert_true(a.error[strlen(a.error) - 1] != '\n');
  assert_false(b.ok);
  assert_string_equal(b.sqlstate, "42P01");
  assert_true(after.ok);
  assert_string_equal(after.v0, "7");
}

static void two_hundred_queries_on_two_connections_complete_in_order(void **state) {
  fixture *f = *state;
  enum { N = 200 };
  result *r = calloc(N, sizeof *r);
  completion_seq = 0;
  char nums[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(nums[i], sizeof nums[i], "%d", i);
    const char *p[] = {nums[i]};
    assert_int_equal(db_query(f->d, "select $1::int * 2", 1, p, on_result, &r[i]), 0);
  }
  int done = 0;
  uint64_t deadline = uv_hrtime() + 30000000000ull;
  while (done < N && uv_hrtime() < deadline) {
    uv_run(&f->loop, UV_RUN_ONCE);
    done = 0;
    for (int i = 0; i < N; i++)
      done += r[i].calls;
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_true(r[i].ok);
    char want[16];
    snprintf(want, sizeof want, "%d", i * 2);
    assert_string_equal(r[i].v0, want);
    /* FIFO dispatch on 2 connections: statement i starts only after i-1
     * others finished, so at least i-1 completions come before it. */
    assert_true(r[i].order >= i - 1);
  }
  free(r);
}

static void full_queue_rejects(void **state) {
  fixture *f = *state;
  db_close(f->d, on_closed, &f->closed);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  f->d = NULL;
  db_options o = {.conninfo = db_url(), .pool_size = 1, .max_queue = 3};
  db *d;
  assert_int_equal(db_open(&d, &f->loop, &o), 0);
  result r[4] = {{0}};
  for (int i = 0; i < 3; i++)
    assert_int_equal(db_query(d, "select 1", 0, NULL, on_result, &r[i]), 0);
  assert_int_equal(db_query(d, "select 1", 0, NULL, on_result, &r[3]), -1);
  run_until(f, &r[2].calls, 1, 10);
  assert_true(r[0].ok && r[1].ok && r[2].ok);
  assert_int_equal(r[3].calls, 0);
  int closed = 0;
  db_close(d, on_closed, &closed);
  assert_int_equal(db_query(d, "select 1", 0, NULL, on_result, &r[3]), -1);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
}

static void reconnects_after_backend_is_terminated(void **state) {
  fixture *f = *state;
  char url[512];
  url_with_app(url, sizeof url, "genq-test-victim");
  db_options o = {.conninfo = url, .pool_size = 2};
  db *victim;
  assert_int_equal(db_open(&victim, &f->loop, &o), 0);
  result warm[2] = {{0}};
  db_query(victim, "select 1", 0, NULL, on_result, &warm[0]);
  db_query(victim, "select 1", 0, NULL, on_result, &warm[1]);
  run_until(f, &warm[1].calls, 1, 10);
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (db_connected(victim) < 2 && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(db_connected(victim), 2);

  /* one victim connection is mid-statement when the kill lands */
  result sleeping = {0}, kill = {0};
  db_query(victim, "select pg_sleep(5)", 0, NULL, on_result, &sleeping);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  db_query(f->d,
           "select count(pg_terminate_backend(pid)) from pg_stat_activity "
           "where application_name = 'genq-test-victim'",
           0, NULL, on_result, &kill);
  run_until(f, &kill.calls, 1, 10);
  assert_true(kill.ok);
  assert_string_equal(kill.v0, "2");
  run_until(f, &sleeping.calls, 1, 10);
  assert_false(sleeping.ok);
  assert_true(strcmp(sleeping.sqlstate, "08006") == 0 || strcmp(sleeping.sqlstate, "57P01") == 0);

  /* both come back and work */
  deadline = uv_hrtime() + 10000000000ull;
  while (db_connected(victim) < 2 && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(db_connected(victim), 2);
  result after[4] = {{0}};
  for (int i = 0; i < 4; i++)
    db_query(victim, "select 'back'", 0, NULL, on_result, &after[i]);
  for (int i = 0; i < 4; i++) {
    run_until(f, &after[i].calls, 1, 10);
    assert_true(after[i].ok);
    assert_string_equal(after[i].v0, "back");
  }
  int closed = 0;
  db_close(victim, on_closed, &closed);
  run_until(f, &closed, 1, 10);
}

static void closed_port_fails_queued_queries_with_08001(void **state) {
  fixture *f = *state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  char url[128];
  snprintf(url, sizeof url, "postgresql://postgres:not-logged@127.0.0.1:%d/x", ntohs(a.sin_port));
  db_options o = {.conninfo = url, .pool_size = 2, .queue_timeout_ms = 300};
  db *d;
  assert_int_equal(db_open(&d, &f->loop, &o), 0);
  f->extra = d;
  result r[3] = {{0}};
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < 3; i++)
    assert_int_equal(db_query(d, "select 1", 0, NULL, on_result, &r[i]), 0);
  run_until(f, &r[2].calls, 1, 5);
  double ms = (double)(uv_hrtime() - t0) / 1e6;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_false(r[i].ok);
    assert_string_equal(r[i].sqlstate, "08001");
  }
  assert_true(ms >= 290); /* not before the timeout (and, above, not never) */
  assert_int_equal(db_connected(d), 0);
  f->extra = NULL;
  int closed = 0;
  db_close(d, on_closed, &closed);
  run_until(f, &closed, 1, 5);
}

static void close_cancels_queued_and_finishes_running(void **state) {
  fixture *f = *state;
  result run[2] = {{0}}, queued[3] = {{0}};
  db_query(f->d, "select pg_sleep(0.2), 'done'", 0, NULL, on_result, &run[0]);
  db_query(f->d, "select pg_sleep(0.2), 'done'", 0, NULL, on_result, &run[1]);
  for (int i = 0; i < 3; i++)
    db_query(f->d, "select 1", 0, NULL, on_result, &queued[i]);
  /* make sure both connections are up and busy */
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (db_connected(f->d) < 2 && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  db_close(f->d, on_closed, &f->closed);
  f->d = NULL;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(queued[i].calls, 1);
    assert_string_equal(queued[i].sqlstate, "57014");
  }
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->closed, 1);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(run[i].calls, 1);
    assert_true(run[i].ok);
  }
}

int main(void) {
  const char *url = getenv("GENQ_DATABASE_URL");
  if (!url || !*url) {
    fprintf(stderr, "GENQ_DATABASE_URL is not set: integration tests need it\n");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(query_with_params_and_null_params, setup, teardown),
      cmocka_unit_test_setup_teardown(command_without_rows_succeeds, setup, teardown),
      cmocka_unit_test_setup_teardown(sql_error_reports_sqlstate, setup, teardown),
      cmocka_unit_test_setup_teardown(two_hundred_queries_on_two_connections_complete_in_order,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(full_queue_rejects, setup, teardown),
      cmocka_unit_test_setup_teardown(reconnects_after_backend_is_terminated, setup, teardown),
      cmocka_unit_test_setup_teardown(closed_port_fails_queued_queries_with_08001, setup, teardown),
      cmocka_unit_test_setup_teardown(close_cancels_queued_and_finishes_running, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
