/* The webhook outbox and its functions (schema/functions/webhooks.sql)
 * against the real PostgreSQL at GENQ_DATABASE_URL: a delivery row is
 * written in the transaction of every terminal move (cancel, a step's
 * success, a failure, a requeue that runs out of attempts), at its commit,
 * with the job as it is then; none for a job without webhook_url nor for a
 * move that is not terminal; two connections claim different rows (SKIP
 * LOCKED) and a lapsed claim comes back, fencing its old holder; the
 * backoff schedule and the 24 h deadline on a moved clock (the functions'
 * p_now); replay under the same id; the signing secrets through rotation.
 * Fresh users (w-<pid>-<time>-<n>) for every test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/pg_helpers.h"

#define HOOK "https://hooks.example.com/genq"

static char *submit(const char *user, const char *kind, const char *input, const char *hook) {
  return sql_val("SELECT job->>'id' FROM genq_submit_job($1, $2, $3, $4, NULL, NULL, 3)",
                 P(user, kind, input, hook));
}

static char *claim(const char *job) {
  PGresult *r = sql_on(conn, "SELECT epoch FROM genq_claim_job($1::uuid, 'w1', 60::int)", P(job));
  char *e = PQntuples(r) ? val_keep(PQgetvalue(r, 0, 0)) : NULL;
  PQclear(r);
  return e;
}

static long long rows_of(const char *job) {
  return sql_int("SELECT count(*) FROM webhook_deliveries WHERE job_id = $1", P(job));
}

/* A field of the job's one delivery row. */
static char *delivery(const char *job, const char *expr) {
  char q[512];
  snprintf(q, sizeof q, "SELECT (%s)::text FROM webhook_deliveries WHERE job_id = $1", expr);
  return sql_val(q, P(job));
}

static char *delivery_id(const char *job) {
  return delivery(job, "id");
}

static int group_setup(void **state) {
  return pg_connect(getenv("GENQ_DATABASE_URL"), "w");
}

static int group_teardown(void **state) {
  pg_disconnect();
  return 0;
}

/* ---- the outbox ---- */

static void test_cancel_writes_one_row_at_its_commit_with_the_job_as_committed(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}", HOOK);
  /* rolled back: nothing */
  sql_do("BEGIN", NOP);
  sql_do("SELECT genq_job_cancel($1, $2::uuid)", P(u, job));
  sql_do("ROLLBACK", NOP);
  assert_int_equal(rows_of(job), 0);
  /* committed: the row comes with the commit, not before */
  sql_do("BEGIN", NOP);
  sql_do("SELECT genq_job_cancel($1, $2::uuid)", P(u, job));
  assert_int_equal(rows_of(job), 0); /* deferred to the commit */
  sql_do("COMMIT", NOP);
  assert_int_equal(rows_of(job), 1);
  assert_string_equal(delivery(job, "event"), "job.canceled");
  assert_string_equal(delivery(job, "state"), "pending");
  assert_string_equal(delivery(job, "url"), HOOK);
  assert_string_equal(delivery(job, "user_id"), u);
  assert_string_equal(delivery(job, "payload::jsonb->>'type'"), "job.canceled");
  /* the job as the transaction left it: the hold released after the move */
  assert_string_equal(delivery(job, "payload::jsonb #>> '{data,status}'"), "canceled");
  assert_string_equal(delivery(job, "payload::jsonb #>> '{data,cost,held}'"), "0");
  assert_string_equal(delivery(job, "payload::jsonb #>> '{data,cost,released}'"), "2");
  assert_string_equal(delivery(job, "(payload::jsonb -> 'data') = genq_job_json(job_id)"), "true");
  assert_string_equal(delivery(job, "deadline - created_at"), "1 day");
  /* canceling again moves nothing: no second row */
  sql_do("SELECT genq_job_cancel($1, $2::uuid)", P(u, job));
  assert_int_equal(rows_of(job), 1);
  assert_audit_clean();
}

static void test_every_worker_path_to_a_terminal_state_writes_its_row(void **state) {
  char *u = new_user();
  grant(u, "50");
  /* success */
  char *ok = submit(u, "storyboard", "{\"prompt\":\"p\"}", HOOK);
  char *e = claim(ok);
  assert_int_equal(rows_of(ok), 0); /* queued → running is not terminal */
  sql_do("SELECT genq_step_begin($1, $2, 'storyboard')", P(ok, e));
  assert_string_equal(
      sql_val("SELECT genq_step_succeed($1, $2, 'storyboard', '{}', '{\"storyboard\":{}}', NULL)",
              P(ok, e)),
      "succeeded");
  assert_int_equal(rows_of(ok), 1);
  assert_string_equal(delivery(ok, "event"), "job.succeeded");
  assert_string_equal(delivery(ok, "payload::jsonb #>> '{data,cost,captured}'"), "1");
  /* a failure */
  char *bad = submit(u, "storyboard", "{\"prompt\":\"p\"}", HOOK);
  e = claim(bad);
  assert_string_equal(
      sql_val("SELECT genq_job_fail($1, $2, NULL, 'content_policy', 'refused', false)", P(bad, e)),
      "failed");
  assert_int_equal(rows_of(bad), 1);
  assert_string_equal(delivery(bad, "event"), "job.failed");
  assert_string_equal(delivery(bad, "payload::jsonb #>> '{data,error,code}'"), "content_policy");
  /* retryable errors until the attempts run out: one row, at the last */
  char *dead = submit(u, "image", "{\"prompt\":\"p\"}", HOOK);
  for (int i = 1; i <= 3; i++) {
    e = claim(dead);
    assert_non_null(e);
    sql_val("SELECT genq_job_requeue($1::uuid, $2::bigint, 0, 'provider_error', 'HTTP 500', "
            "'image')",
            P(dead, e));
    assert_int_equal(rows_of(dead), i < 3 ? 0 : 1);
  }
  assert_string_equal(delivery(dead, "event"), "job.failed");
  assert_non_null(delivery(dead, "payload::jsonb #>> '{data,dead_at}'"));
  assert_audit_clean();
}

static void test_no_row_without_webhook_url(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "storyboard", "{\"prompt\":\"p\"}", NULL);
  char *e = claim(job);
  sql_do("SELECT genq_step_begin($1, $2, 'storyboard')", P(job, e));
  sql_do("SELECT genq_step_succeed($1, $2, 'storyboard', '{}', '{\"storyboard\":{}}', NULL)",
         P(job, e));
  char *job2 = submit(u, "image", "{\"prompt\":\"p\"}", NULL);
  sql_do("SELECT genq_job_cancel($1, $2::uuid)", P(u, job2));
  assert_int_equal(rows_of(job), 0);
  assert_int_equal(rows_of(job2), 0);
}

/* ---- claims ---- */

/* n canceled jobs of a fresh user with a webhook, their delivery ids in ids */
static char *make_deliveries(int n, char **ids) {
  char *u = new_user();
  grant(u, "100");
  for (int i = 0; i < n; i++) {
    char *job = submit(u, "image", "{\"prompt\":\"p\"}", HOOK);
    sql_do("SELECT genq_job_cancel($1, $2::uuid)", P(u, job));
    ids[i] = delivery_id(job);
  }
  return u;
}

/* Moves the user's deliveries far into the past, so that they are due
 * before anything else other tests left pending. */
static void due_first(const char *user) {
  sql_do("UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01' WHERE user_id = $1",
         P(user));
}

static void test_two_connections_claim_different_rows(void **state) {
  char *ids[2];
  char *u = make_deliveries(2, ids);
  due_first(u);
  PGconn *c2 = PQconnectdb(getenv("GENQ_DATABASE_URL"));
  assert_int_equal(PQstatus(c2), CONNECTION_OK);
  sql_do("BEGIN", NOP);
  char *first = sql_val("SELECT id FROM genq_webhooks_claim('w1', 1, 60)", NOP);
  assert_true(strcmp(first, ids[0]) == 0 || strcmp(first, ids[1]) == 0);
  /* the other connection skips the row locked by the open claim */
  PGresult *r = sql_on(c2, "SELECT id FROM genq_webhooks_claim('w2', 1, 60)", NULL, 0);
  assert_int_equal(PQntuples(r), 1);
  assert_string_not_equal(PQgetvalue(r, 0, 0), first);
  assert_true(strcmp(PQgetvalue(r, 0, 0), ids[0]) == 0 || strcmp(PQgetvalue(r, 0, 0), ids[1]) == 0);
  PQclear(r);
  sql_do("COMMIT", NOP);
  PQfinish(c2);
  /* both held now: nothing of this user is due */
  assert_int_equal(
      sql_int("SELECT count(*) FROM genq_webhooks_claim('w3', 100, 60) WHERE user_id = $1", P(u)),
      0);
}

static void test_a_lapsed_claim_comes_back_and_fences_its_old_holder(void **state) {
  char *ids[1];
  char *u = make_deliveries(1, ids);
  due_first(u);
  PGresult *r = sql_on(conn,
                       "SELECT id, attempt, webhook_id FROM genq_webhooks_claim('w1', 1, 60)"
                       " WHERE user_id = $1",
                       P(u));
  assert_int_equal(PQntuples(r), 1);
  assert_string_equal(PQgetvalue(r, 0, 1), "1");
  char *msg = val_keep(PQgetvalue(r, 0, 2));
  PQclear(r);
  char want[64];
  snprintf(want, sizeof want, "msg_%s", ids[0]);
  for (char *p = want, *q = want; (*q = *p); p++)
    q += *p != '-';
  assert_string_equal(msg, want);
  /* 61 s later its lease has lapsed: another worker takes it, attempt 2 */
  char *attempt = sql_val("SELECT attempt FROM genq_webhooks_claim('w2', 100, 60,"
                          " now() + interval '61 seconds') WHERE user_id = $1",
                          P(u));
  assert_string_equal(attempt, "2");
  /* the first holder's answer is fenced out */
  assert_null(
      sql_val("SELECT genq_webhook_record($1, 1, 'delivered', 204, NULL, 5000)", P(ids[0])));
  assert_string_equal(
      sql_val("SELECT genq_webhook_record($1, 2, 'delivered', 204, NULL, 5000)", P(ids[0])),
      "delivered");
  assert_string_equal(sql_val("SELECT state FROM webhook_deliveries WHERE id = $1", P(ids[0])),
                      "delivered");
  /* a hand-back of a claim no longer held changes nothing */
  assert_string_equal(sql_val("SELECT genq_webhook_release($1, 2)", P(ids[0])), "f");
}

/* ---- backoff and the deadline ---- */

static void test_backoff_schedule(void **state) {
  const char *want[] = {"5000", "30000", "120000", "600000", "1800000", "3600000", "3600000"};
  for (int i = 0; i < 7; i++) {
    char n[8];
    snprintf(n, sizeof n, "%d", i + 1);
    assert_string_equal(sql_val("SELECT genq_webhook_backoff_ms($1, 5000)", P(n)), want[i]);
  }
}

static void test_retries_back_off_then_fail_past_the_deadline(void **state) {
  char *ids[1];
  char *u = make_deliveries(1, ids);
  due_first(u);
  sql_do("SELECT 1 FROM genq_webhooks_claim('w1', 1, 60) WHERE user_id = $1", P(u));
  /* an hour into its day of retries */
  char *t0 = sql_val("SELECT created_at + interval '1 hour' FROM webhook_deliveries WHERE id = $1",
                     P(ids[0]));
  /* a failed attempt: pending again 5 s ± 20% later */
  assert_string_equal(sql_val("SELECT genq_webhook_record($1, 1, 'retry', 503, 'HTTP 503', 5000,"
                              " $2)",
                              P(ids[0], t0)),
                      "pending");
  char *delay = sql_val("SELECT extract(epoch from next_attempt_at - $2::timestamptz)"
                        " FROM webhook_deliveries WHERE id = $1",
                        P(ids[0], t0));
  assert_true(atof(delay) >= 4.0 && atof(delay) <= 6.0);
  assert_string_equal(
      sql_val("SELECT last_status || ' ' || last_error FROM webhook_deliveries WHERE id = $1",
              P(ids[0])),
      "503 HTTP 503");
  /* not due before its time, due after */
  assert_int_equal(sql_int("SELECT count(*) FROM genq_webhooks_claim('w1', 100, 60,"
                           " $2::timestamptz + interval '3 seconds') WHERE user_id = $1",
                           P(u, t0)),
                   0);
  /* a clock moved to just before the deadline: the next wait passes it */
  sql_do("UPDATE webhook_deliveries SET next_attempt_at = deadline - interval '1 minute',"
         " attempts = 10 WHERE id = $1",
         P(ids[0]));
  char *at = sql_val(
      "SELECT deadline - interval '30 seconds' FROM webhook_deliveries WHERE id = $1", P(ids[0]));
  assert_string_equal(sql_val("SELECT attempt FROM genq_webhooks_claim('w1', 100, 60, $2)"
                              " WHERE user_id = $1",
                              P(u, at)),
                      "11");
  assert_string_equal(sql_val("SELECT genq_webhook_record($1, 11, 'retry', NULL, 'timeout', 5000,"
                              " $2)",
                              P(ids[0], at)),
                      "failed");
  /* 410 stops at once; a refused address is refused */
  char *more[2];
  char *u2 = make_deliveries(2, more);
  due_first(u2);
  sql_do("SELECT 1 FROM genq_webhooks_claim('w1', 2, 60) WHERE user_id = $1", P(u2));
  assert_string_equal(
      sql_val("SELECT genq_webhook_record($1, 1, 'gone', 410, 'gone', 5000)", P(more[0])),
      "failed");
  assert_string_equal(
      sql_val("SELECT genq_webhook_record($1, 1, 'refused', NULL, 'loopback', 5000)", P(more[1])),
      "refused");
  assert_string_equal(
      sql_state("SELECT genq_webhook_record($1, 1, 'maybe', NULL, NULL, 5000)", P(more[1])),
      "22023");
}

static void test_replay_keeps_the_id_and_starts_over(void **state) {
  char *ids[1];
  char *u = make_deliveries(1, ids);
  due_first(u);
  sql_do("SELECT 1 FROM genq_webhooks_claim('w1', 1, 60) WHERE user_id = $1", P(u));
  assert_string_equal(sql_state("SELECT genq_webhook_replay($1)", P(ids[0])), "GQ409");
  sql_do("SELECT genq_webhook_record($1, 1, 'refused', NULL, 'loopback', 5000)", P(ids[0]));
  char *j = sql_val("SELECT genq_webhook_replay($1)::text", P(ids[0]));
  assert_non_null(strstr(j, "\"state\": \"pending\""));
  assert_non_null(strstr(j, "\"attempts\": 0"));
  assert_string_equal(sql_val("SELECT (genq_webhook_replay($1) ->> 'id')", P(ids[0])), ids[0]);
  assert_string_equal(sql_state("SELECT genq_webhook_replay(gen_random_uuid())", NOP), "GQ404");
  assert_string_equal(sql_val("SELECT count(*) FROM genq_webhooks_claim('w1', 100, 60)"
                              " WHERE user_id = $1",
                              P(u)),
                      "1");
}

/* ---- secrets ---- */

static void test_secrets_ensure_and_rotate(void **state) {
  char *u = new_user();
  grant(u, "1");
  assert_string_equal(
      sql_val("SELECT array_to_string(genq_webhook_signing_secrets($1), ' ')", P(u)), "");
  assert_string_equal(
      sql_val("SELECT array_to_string(genq_webhook_secret_ensure($1, 'k1', 'AAAA'), ' ')", P(u)),
      "k1:AAAA");
  /* a second first store loses */
  assert_string_equal(
      sql_val("SELECT array_to_string(genq_webhook_secret_ensure($1, 'k1', 'BBBB'), ' ')", P(u)),
      "k1:AAAA");
  /* rotate with an hour of grace: both sign, newest first; only the new after the hour */
  assert_non_null(sql_val("SELECT genq_webhook_secret_rotate($1, 'k1', 'CCCC', 3600)", P(u)));
  assert_string_equal(
      sql_val("SELECT array_to_string(genq_webhook_signing_secrets($1), ' ')", P(u)),
      "k1:CCCC k1:AAAA");
  assert_string_equal(sql_val("SELECT array_to_string(genq_webhook_signing_secrets($1,"
                              " now() + interval '2 hours'), ' ')",
                              P(u)),
                      "k1:CCCC");
  /* without grace, every old one stops now */
  assert_non_null(sql_val("SELECT genq_webhook_secret_rotate($1, 'k1', 'DDDD', 0)", P(u)));
  assert_string_equal(
      sql_val("SELECT array_to_string(genq_webhook_signing_secrets($1), ' ')", P(u)), "k1:DDDD");
  assert_string_equal(
      sql_state("SELECT genq_webhook_secret_rotate('nobody-at-all-xyz', 'k1', 'E', 0)", NOP),
      "GQ404");
  /* rekey: rows under another key, resealed once */
  char *id =
      sql_val("SELECT id FROM webhook_secrets WHERE user_id = $1 AND expires_at IS NULL", P(u));
  assert_int_equal(sql_int("SELECT count(*) FROM genq_webhook_secrets_to_rekey('k2')"
                           " WHERE user_id = $1",
                           P(u)),
                   sql_int("SELECT count(*) FROM webhook_secrets WHERE user_id = $1", P(u)));
  assert_string_equal(sql_val("SELECT genq_webhook_secret_reseal($1, 'k1', 'k2', 'FFFF')", P(id)),
                      "t");
  assert_string_equal(sql_val("SELECT genq_webhook_secret_reseal($1, 'k1', 'k2', 'GGGG')", P(id)),
                      "f");
  assert_string_equal(
      sql_val("SELECT array_to_string(genq_webhook_signing_secrets($1), ' ')", P(u)), "k2:FFFF");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cancel_writes_one_row_at_its_commit_with_the_job_as_committed),
      cmocka_unit_test(test_every_worker_path_to_a_terminal_state_writes_its_row),
      cmocka_unit_test(test_no_row_without_webhook_url),
      cmocka_unit_test(test_two_connections_claim_different_rows),
      cmocka_unit_test(test_a_lapsed_claim_comes_back_and_fences_its_old_holder),
      cmocka_unit_test(test_backoff_schedule),
      cmocka_unit_test(test_retries_back_off_then_fail_past_the_deadline),
      cmocka_unit_test(test_replay_keeps_the_id_and_starts_over),
      cmocka_unit_test(test_secrets_ensure_and_rotate),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
