/* The usage limits (schema/functions/limits.sql, docs/limits.md) against the
 * real PostgreSQL at GENQ_DATABASE_URL and the real Redis at GENQ_REDIS_URL:
 * genq_submit_jobs refuses GQ429 beyond the plan's unfinished jobs and
 * submission token bucket, writing nothing of the refused; two submits or
 * two uploads racing for the last unit get it once (forced interleavings:
 * a third connection holds the row both wait on); genq_upload_create counts
 * uploads per UTC day; genq_limits_set names the field it refuses; the
 * per-address refusal bucket's Lua script (api/limits_lua.h) takes burst
 * tokens, then answers the milliseconds until one. Each test uses plans and
 * users of its own and ends with this run's audit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "../../api/limits_lua.h"
#include "integration/pg_helpers.h"
#include "redis.h"

static const char *db_url;

static int group_setup(void **state) {
  (void)state;
  db_url = getenv("GENQ_DATABASE_URL");
  return pg_connect(db_url, "tl");
}

static int group_teardown(void **state) {
  (void)state;
  pg_disconnect();
  return 0;
}

/* A plan of this run, made with genq_limits_set: name-<pid>, limits given
 * as field=value pairs, every other limit 0 (none). */
static char *plan_with(const char *name, const char *const *fv, int n) {
  char plan[32];
  snprintf(plan, sizeof plan, "%s-%d", name, (int)(getpid() % 100000));
  static const char *const fields[] = {"max_unfinished_jobs", "submit_per_minute", "submit_burst",
                                       "upload_bytes_per_day", "uploads_per_day"};
  for (int i = 0; i < 5; i++)
    sql_do("SELECT genq_limits_set($1, $2, '0')", P(plan, fields[i]));
  for (int i = 0; i + 1 < n; i += 2)
    sql_do("SELECT genq_limits_set($1, $2, $3)", P(plan, fv[i], fv[i + 1]));
  return val_keep(plan);
}

/* A new user with credits on plan. */
static char *user_on(const char *plan, const char *credits) {
  char *u = new_user();
  grant(u, credits);
  sql_do("SELECT genq_limits_user_plan($1, $2)", P(u, plan));
  return u;
}

/* A batch of n storyboard submissions of user, the i-th with idempotency
 * key key-i when key is given. */
static char *batch_of(const char *user, int n, const char *key) {
  static char b[8192];
  size_t o = 0;
  o += (size_t)snprintf(b + o, sizeof b - o, "[");
  for (int i = 0; i < n; i++) {
    char k[96] = "";
    if (key) snprintf(k, sizeof k, ",\"idempotency_key\":\"%s-%d\",\"request_hash\":\"h\"", key, i);
    o += (size_t)snprintf(b + o, sizeof b - o,
                          "%s{\"user\":\"%s\",\"kind\":\"storyboard\",\"input\":{\"prompt\":\"p\","
                          "\"scenes\":1},\"max_attempts\":3%s}",
                          i ? "," : "", user, k);
  }
  snprintf(b + o, sizeof b - o, "]");
  return val_keep(b);
}

/* How many submissions of the batch answered each way. */
typedef struct {
  int created, replayed, limited, other;
  char field[64]; /* the first GQ429's err_field */
} outcome;

static outcome run_batch(PGconn *c, const char *batch) {
  outcome o = {0};
  PGresult *r =
      sql_on(c, "SELECT created, err_state, err_field FROM genq_submit_jobs($1::jsonb)", P(batch));
  for (int i = 0; i < PQntuples(r); i++) {
    const char *st = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);
    if (!st && strcmp(PQgetvalue(r, i, 0), "t") == 0) {
      o.created++;
    } else if (!st) {
      o.replayed++;
    } else if (strcmp(st, "GQ429") == 0) {
      if (!o.limited++) snprintf(o.field, sizeof o.field, "%s", PQgetvalue(r, i, 2));
    } else {
      o.other++;
    }
  }
  PQclear(r);
  return o;
}

static long long jobs_of(const char *user) {
  return sql_int("SELECT count(*) FROM jobs WHERE user_id = $1", P(user));
}

/* ---- unfinished jobs ---- */

static void test_unfinished_jobs_cap_a_batch(void **state) {
  (void)state;
  char *plan = plan_with("unf", P("max_unfinished_jobs", "3"));
  char *u = user_on(plan, "100");
  outcome o = run_batch(conn, batch_of(u, 5, NULL));
  assert_int_equal(o.created, 3);
  assert_int_equal(o.limited, 2);
  assert_string_equal(o.field, "too_many_unfinished_jobs/5");
  assert_int_equal(jobs_of(u), 3);
  assert_int_equal(held(u), 3);
  assert_int_equal(
      sql_int("SELECT count(*) FROM ledger WHERE user_id = $1 AND movement = 'hold'", P(u)), 3);
  /* at the cap: a whole batch is refused */
  o = run_batch(conn, batch_of(u, 2, NULL));
  assert_int_equal(o.created, 0);
  assert_int_equal(o.limited, 2);
  /* a finished job frees its place */
  sql_do("SELECT genq_job_cancel($1, j.id) FROM jobs j WHERE j.user_id = $1 "
         "ORDER BY j.id LIMIT 1",
         P(u));
  o = run_batch(conn, batch_of(u, 2, NULL));
  assert_int_equal(o.created, 1);
  assert_int_equal(o.limited, 1);
  /* the limit raised by an operator holds at once */
  sql_do("SELECT genq_limits_set($1, 'max_unfinished_jobs', '5')", P(plan));
  o = run_batch(conn, batch_of(u, 3, NULL));
  assert_int_equal(o.created, 2);
  assert_int_equal(o.limited, 1);
  assert_audit_clean();
}

static void test_insufficient_credits_take_no_place(void **state) {
  (void)state;
  char *plan = plan_with("cred", P("max_unfinished_jobs", "3"));
  char *u = user_on(plan, "2");
  /* 2 credits: 2 created, then 402 (not counted), then the cap is not hit */
  outcome o = run_batch(conn, batch_of(u, 3, NULL));
  assert_int_equal(o.created, 2);
  assert_int_equal(o.other, 1);
  assert_int_equal(o.limited, 0);
  grant(u, "5");
  o = run_batch(conn, batch_of(u, 2, NULL));
  assert_int_equal(o.created, 1);
  assert_int_equal(o.limited, 1);
  assert_audit_clean();
}

/* ---- two submits racing for the last place ---- */

typedef struct {
  PGconn *c;
  int pid;
} racer;

static void racer_open(racer *r) {
  r->c = PQconnectdb(db_url);
  assert_int_equal(PQstatus(r->c), CONNECTION_OK);
  r->pid = PQbackendPID(r->c);
}

static void wait_blocked(const racer *a, const racer *b) {
  char pids[64];
  snprintf(pids, sizeof pids, "{%d,%d}", a->pid, b->pid);
  for (int i = 0; i < 1000; i++) {
    if (sql_int("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND pid = ANY($1::int[])",
                P(pids)) == 2)
      return;
    usleep(10000);
  }
  fail_msg("the two racers never both waited on the held row");
}

/* The results of a racer's statement: created + 1000 * limited for a
 * submit, or 1 done / 0 GQ429 for an upload. */
static int racer_submit_result(racer *r) {
  PGresult *res;
  int created = 0, limited = 0;
  while ((res = PQgetResult(r->c))) {
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
      for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 1))
          created++;
        else if (strcmp(PQgetvalue(res, i, 1), "GQ429") == 0)
          limited++;
      }
    } else {
      fail_msg("racer failed: %s", PQresultErrorMessage(res));
    }
    PQclear(res);
  }
  return created + 1000 * limited;
}

static void test_racing_submits_share_the_last_place(void **state) {
  (void)state;
  char *plan = plan_with("race", P("max_unfinished_jobs", "2"));
  char *u = user_on(plan, "100");
  assert_int_equal(run_batch(conn, batch_of(u, 1, NULL)).created, 1);
  /* a third connection holds the account row both submits lock */
  racer holder, x, y;
  racer_open(&holder);
  racer_open(&x);
  racer_open(&y);
  PQclear(PQexec(holder.c, "BEGIN"));
  const char *pu[1] = {u};
  PQclear(PQexecParams(holder.c, "SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE", 1, NULL,
                       pu, NULL, NULL, 0));
  const char *sql = "SELECT created, err_state FROM genq_submit_jobs($1::jsonb)";
  const char *bx[1] = {batch_of(u, 1, NULL)};
  const char *by[1] = {batch_of(u, 1, NULL)};
  assert_int_equal(PQsendQueryParams(x.c, sql, 1, NULL, bx, NULL, NULL, 0), 1);
  assert_int_equal(PQsendQueryParams(y.c, sql, 1, NULL, by, NULL, NULL, 0), 1);
  wait_blocked(&x, &y);
  PQclear(PQexec(holder.c, "COMMIT"));
  int rx = racer_submit_result(&x), ry = racer_submit_result(&y);
  assert_int_equal(rx + ry, 1 + 1000); /* one created, one GQ429 */
  assert_int_equal(jobs_of(u), 2);
  PQfinish(holder.c);
  PQfinish(x.c);
  PQfinish(y.c);
  assert_audit_clean();
}

/* ---- the submission token bucket ---- */

static void test_token_bucket(void **state) {
  (void)state;
  char *plan = plan_with("rate", P("submit_per_minute", "60", "submit_burst", "3"));
  char *u = user_on(plan, "100");
  outcome o = run_batch(conn, batch_of(u, 5, "k1"));
  assert_int_equal(o.created, 3);
  assert_int_equal(o.limited, 2);
  assert_string_equal(o.field, "submit_rate_limited/1"); /* one token a second */
  assert_int_equal(jobs_of(u), 3);
  /* a replay of an accepted key is answered again, bucket empty or not */
  o = run_batch(conn, batch_of(u, 1, "k1"));
  assert_int_equal(o.replayed, 1);
  assert_int_equal(o.limited, 0);
  /* 2.5 s of refill (the bucket's clock moved back): 2 tokens */
  sql_do("UPDATE submit_buckets SET at = at - interval '2.5 s' WHERE user_id = $1", P(u));
  o = run_batch(conn, batch_of(u, 3, NULL));
  assert_int_equal(o.created, 2);
  assert_int_equal(o.limited, 1);
  /* half a token left: Retry-After rounds up to the whole second */
  char *tokens =
      sql_val("SELECT round(tokens::numeric, 1) FROM submit_buckets WHERE user_id = $1", P(u));
  assert_string_equal(tokens, "0.5");
  /* the bucket never fills beyond its burst */
  sql_do("UPDATE submit_buckets SET at = at - interval '1 hour' WHERE user_id = $1", P(u));
  o = run_batch(conn, batch_of(u, 5, NULL));
  assert_int_equal(o.created, 3);
  assert_int_equal(o.limited, 2);
  /* no rate limit: no bucket row is written */
  char *free_plan = plan_with("norate", NULL, 0);
  char *v = user_on(free_plan, "100");
  assert_int_equal(run_batch(conn, batch_of(v, 20, NULL)).created, 20);
  assert_int_equal(sql_int("SELECT count(*) FROM submit_buckets WHERE user_id = $1", P(v)), 0);
  assert_audit_clean();
}

static void test_retry_after_matches_the_refill(void **state) {
  (void)state;
  /* 6 a minute: one token every 10 s */
  char *plan = plan_with("slow", P("submit_per_minute", "6", "submit_burst", "1"));
  char *u = user_on(plan, "100");
  outcome o = run_batch(conn, batch_of(u, 2, NULL));
  assert_int_equal(o.created, 1);
  assert_string_equal(o.field, "submit_rate_limited/10");
  sql_do("UPDATE submit_buckets SET at = at - interval '4 s' WHERE user_id = $1", P(u));
  o = run_batch(conn, batch_of(u, 1, NULL));
  assert_string_equal(o.field, "submit_rate_limited/6");
  assert_audit_clean();
}

/* ---- uploads per UTC day ---- */

static const char *upload(PGconn *c, const char *user, const char *bytes) {
  char id[40];
  snprintf(id, sizeof id, "%s", sql_val("SELECT gen_random_uuid()::text", NOP)); /* any id */
  char key[64];
  snprintf(key, sizeof key, "uploads/%s", id);
  PGresult *r = PQexecParams(
      c, "SELECT genq_upload_create($1, $2::uuid, 'image/png', $3::bigint, repeat('0', 64), $4)", 4,
      NULL, (const char *const[]){user, id, bytes, key}, NULL, NULL, 0);
  const char *st = "00000";
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *col = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
    st = val_keep(s ? s : "?????");
    if (strcmp(st, "GQ429") == 0) assert_non_null(strstr(col ? col : "", "upload_limit_reached/"));
  }
  PQclear(r);
  return st;
}

static void test_uploads_per_day(void **state) {
  (void)state;
  char *plan = plan_with("up", P("uploads_per_day", "2", "upload_bytes_per_day", "1000"));
  char *u = user_on(plan, "1");
  assert_string_equal(upload(conn, u, "400"), "00000");
  assert_string_equal(upload(conn, u, "700"), "GQ429"); /* 1100 bytes > 1000 */
  assert_string_equal(upload(conn, u, "600"), "00000"); /* exactly 1000 */
  assert_string_equal(upload(conn, u, "1"), "GQ429");   /* a third upload */
  assert_int_equal(sql_int("SELECT count(*) FROM uploads WHERE user_id = $1", P(u)), 2);
  assert_string_equal(sql_val("SELECT bytes || '/' || uploads FROM upload_days WHERE user_id = $1 "
                              "AND day = (now() at time zone 'utc')::date",
                              P(u)),
                      "1000/2");
  /* the check before storing agrees */
  assert_non_null(sql_val("SELECT (genq_limits_upload_refusal($1, 1))[1]", P(u)));
  /* larger than a whole day's bytes: refused even on a new day */
  char *v = user_on(plan, "1");
  assert_string_equal(upload(conn, v, "1001"), "GQ429");
  assert_null(sql_val("SELECT (genq_limits_upload_refusal($1, 1000))[1]", P(v)));
  assert_int_equal(sql_int("SELECT count(*) FROM upload_days WHERE user_id = $1", P(v)), 0);
  /* yesterday's uploads do not count today */
  sql_do("UPDATE upload_days SET day = day - 1 WHERE user_id = $1", P(u));
  assert_string_equal(upload(conn, u, "1000"), "00000");
  /* Retry-After: the seconds until UTC midnight */
  long long secs = sql_int("SELECT genq_limits_upload_retry()", NOP);
  long long want = sql_int("SELECT ceil(extract(epoch from (date_trunc('day', now() at time zone "
                           "'utc') + interval '1 day') at time zone 'utc' - now()))::int",
                           NOP);
  assert_true(secs >= 1 && secs <= 86400 && llabs(secs - want) <= 2);
}

static void test_racing_uploads_share_the_last_one(void **state) {
  (void)state;
  char *plan = plan_with("upr", P("uploads_per_day", "2"));
  char *u = user_on(plan, "1");
  assert_string_equal(upload(conn, u, "10"), "00000");
  racer holder, x, y;
  racer_open(&holder);
  racer_open(&x);
  racer_open(&y);
  /* a third connection holds the day's row both uploads update */
  PQclear(PQexec(holder.c, "BEGIN"));
  const char *pu[1] = {u};
  PGresult *r = PQexecParams(holder.c, "SELECT 1 FROM upload_days WHERE user_id = $1 FOR UPDATE", 1,
                             NULL, pu, NULL, NULL, 0);
  assert_int_equal(PQntuples(r), 1);
  PQclear(r);
  const char *sql =
      "SELECT genq_upload_create($1, gen_random_uuid(), 'image/png', 10, repeat('0', 64), "
      "'uploads/' || gen_random_uuid())";
  assert_int_equal(PQsendQueryParams(x.c, sql, 1, NULL, pu, NULL, NULL, 0), 1);
  assert_int_equal(PQsendQueryParams(y.c, sql, 1, NULL, pu, NULL, NULL, 0), 1);
  wait_blocked(&x, &y);
  PQclear(PQexec(holder.c, "COMMIT"));
  int ok = 0, limited = 0;
  racer *rs[2] = {&x, &y};
  for (int i = 0; i < 2; i++) {
    PGresult *res;
    while ((res = PQgetResult(rs[i]->c))) {
      if (PQresultStatus(res) == PGRES_TUPLES_OK)
        ok++;
      else if (strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "GQ429") == 0)
        limited++;
      PQclear(res);
    }
  }
  assert_int_equal(ok, 1);
  assert_int_equal(limited, 1);
  assert_int_equal(sql_int("SELECT count(*) FROM uploads WHERE user_id = $1", P(u)), 2);
  PQfinish(holder.c);
  PQfinish(x.c);
  PQfinish(y.c);
}

/* ---- operators' changes ---- */

static void test_limits_set_names_the_field(void **state) {
  (void)state;
  char *plan = plan_with("set", NULL, 0);
  const char *q = "SELECT genq_limits_set($1, $2, $3)";
  struct {
    const char *field, *value, *column;
  } bad[] = {
      {"max_jobs", "1", "max_jobs"},
      {"submit_burst", "-1", "submit_burst"},
      {"submit_burst", "1.5", "submit_burst"},
      {"submit_burst", "2147483648", "submit_burst"},
      {"uploads_per_day", "", "uploads_per_day"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    PGresult *r = PQexecParams(
        conn, q, 3, NULL, (const char *const[]){plan, bad[i].field, bad[i].value}, NULL, NULL, 0);
    assert_int_not_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22023");
    assert_string_equal(PQresultErrorField(r, PG_DIAG_COLUMN_NAME), bad[i].column);
    PQclear(r);
  }
  assert_string_equal(sql_state(q, P("Bad Plan", "submit_burst", "1")), "22023");
  /* nothing changed */
  assert_int_equal(sql_int("SELECT submit_burst FROM plans WHERE plan = $1", P(plan)), 0);
  /* bytes may be larger than an int */
  sql_do(q, P(plan, "upload_bytes_per_day", "5000000000"));
  assert_int_equal(sql_int("SELECT upload_bytes_per_day FROM plans WHERE plan = $1", P(plan)),
                   5000000000LL);
  /* a user's plan: only one that exists */
  char *u = new_user();
  assert_string_equal(sql_state("SELECT genq_limits_user_plan($1, 'no-such-plan')", P(u)), "22023");
  assert_string_equal(sql_val("SELECT genq_limits_user_plan($1, $2)", P(u, plan)), "free");
  assert_string_equal(sql_val("SELECT genq_limits_usage($1)->>'plan'", P(u)), plan);
}

/* ---- the per-address bucket's script, in Redis ---- */

typedef struct {
  int done;
  long long v;
} lua_reply;

static void on_lua(redisReply *r, const char *err, void *arg) {
  lua_reply *o = arg;
  assert_null(err);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  o->v = r->integer;
  o->done = 1;
}

static long long take(uv_loop_t *loop, rds *r, const char *key, const char *rate,
                      const char *burst) {
  lua_reply o = {0};
  const char *argv[] = {"EVAL", API_IP_BUCKET_LUA, "1", key, rate, burst};
  assert_int_equal(rds_command_argv(r, on_lua, &o, 6, argv, NULL), 0);
  while (!o.done)
    uv_run(loop, UV_RUN_ONCE);
  return o.v;
}

static void on_up(rds *r, void *arg) {
  (void)r;
  *(int *)arg = 1;
}

static void test_ip_bucket_script(void **state) {
  (void)state;
  const char *url = getenv("GENQ_REDIS_URL");
  if (!url || !*url) fail_msg("GENQ_REDIS_URL is not set");
  uv_loop_t loop;
  uv_loop_init(&loop);
  rds *r;
  char err[256];
  assert_int_equal(rds_open(&r, &loop, url, err, sizeof err), 0);
  int up = 0;
  rds_on_connect(r, on_up, &up);
  for (int i = 0; i < 500 && !rds_connected(r); i++)
    uv_run(&loop, UV_RUN_NOWAIT), usleep(10000);
  assert_true(rds_connected(r));
  char key[96];
  snprintf(key, sizeof key, "genq:ip-refusals:test-%d", (int)getpid());
  /* burst 3 at 60 a minute: 3 tokens, then about 1000 ms until one */
  for (int i = 0; i < 3; i++)
    assert_int_equal(take(&loop, r, key, "60", "3"), 0);
  long long wait_ms = take(&loop, r, key, "60", "3");
  assert_true(wait_ms > 900 && wait_ms <= 1000);
  /* refused takes leave the bucket as it was */
  assert_true(take(&loop, r, key, "60", "3") > 0);
  usleep(1050 * 1000);
  assert_int_equal(take(&loop, r, key, "60", "3"), 0);
  assert_true(take(&loop, r, key, "60", "3") > 0);
  const char *del[] = {"DEL", key};
  rds_command_argv(r, NULL, NULL, 2, del, NULL);
  rds_close(r, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unfinished_jobs_cap_a_batch),
      cmocka_unit_test(test_insufficient_credits_take_no_place),
      cmocka_unit_test(test_racing_submits_share_the_last_place),
      cmocka_unit_test(test_token_bucket),
      cmocka_unit_test(test_retry_after_matches_the_refill),
      cmocka_unit_test(test_uploads_per_day),
      cmocka_unit_test(test_racing_uploads_share_the_last_one),
      cmocka_unit_test(test_limits_set_names_the_field),
      cmocka_unit_test(test_ip_bucket_script),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
