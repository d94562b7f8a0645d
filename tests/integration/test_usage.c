/* GET /v1/usage's figures (genq_usage, schema/functions/usage.sql),
 * Idempotency-Key expiry after 24 h (genq_submit_jobs, genq_idempotency_sweep)
 * and what a cancel costs (genq_job_cancel), against the real server at
 * GENQ_DATABASE_URL, through the SQL functions the API and workers call.
 * Every test uses fresh users and ends with a clean genq_audit() for this
 * run's accounts and jobs. */
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

#include "integration/pg_helpers.h"

static const char *db_url;

static int group_setup(void **state) {
  db_url = getenv("GENQ_DATABASE_URL");
  return pg_connect(db_url, "u");
}

static int group_teardown(void **state) {
  pg_disconnect();
  return 0;
}

static char *submit(const char *user, const char *kind, const char *input) {
  return sql_val("SELECT job->>'id' FROM genq_submit_job($1, $2, $3, NULL, NULL, NULL, 5)",
                 P(user, kind, input));
}

/* Submits with an Idempotency-Key; returns "<id> <created t|f>". */
static char *submit_key(const char *user, const char *key, const char *hash) {
  PGresult *r = sql_on(conn,
                       "SELECT job->>'id', created FROM genq_submit_job($1, 'image', "
                       "'{\"prompt\":\"p\"}', NULL, $2, $3, 5)",
                       P(user, key, hash));
  char out[80];
  snprintf(out, sizeof out, "%s %s", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  PQclear(r);
  return val_keep(out);
}

static char *claim(const char *job) {
  PGresult *r = sql_on(conn, "SELECT epoch FROM genq_claim_job($1, 'w-u', 60)", P(job));
  char *e = PQntuples(r) ? val_keep(PQgetvalue(r, 0, 0)) : NULL;
  PQclear(r);
  assert_non_null(e);
  return e;
}

static void step_begin(const char *job, const char *epoch, const char *step) {
  assert_string_equal(sql_val("SELECT genq_step_begin($1, $2, $3)", P(job, epoch, step)),
                      "running");
}

static char *step_succeed(const char *job, const char *epoch, const char *step) {
  return sql_val("SELECT genq_step_succeed($1, $2, $3, '{}', NULL, NULL)", P(job, epoch, step));
}

/* Moves the job's timestamps: submitted at created, ended at finished, its
 * capture rows at captured (each NULL = left alone). */
static void when(const char *job, const char *created, const char *finished, const char *captured) {
  if (created) sql_do("UPDATE jobs SET created_at = $2 WHERE id = $1", P(job, created));
  if (finished) sql_do("UPDATE jobs SET finished_at = $2 WHERE id = $1", P(job, finished));
  if (captured)
    sql_do("UPDATE ledger SET created_at = $2 WHERE job_id = $1 AND movement = 'capture'",
           P(job, captured));
}

static long long ledger_count(const char *job, const char *movement) {
  return sql_int("SELECT count(*) FROM ledger WHERE job_id = $1 AND movement = $2",
                 P(job, movement));
}

/* ---- GET /v1/usage ---- */

static void test_usage_per_utc_day_and_kind_from_jobs_and_captures(void **state) {
  char *u = new_user();
  grant(u, "100");
  /* day 1: two images; a succeeds, its capture just after midnight (day 2) */
  char *a = submit(u, "image", "{\"prompt\":\"p\"}");
  char *e = claim(a);
  step_begin(a, e, "image");
  assert_string_equal(step_succeed(a, e, "image"), "succeeded");
  when(a, "2025-03-01 23:30:00+00", "2025-03-02 00:10:00+00", "2025-03-02 00:10:00+00");
  /* b is canceled the day it was submitted */
  char *b = submit(u, "image", "{\"prompt\":\"p\"}");
  assert_string_equal(sql_val("SELECT genq_job_cancel($1, $2)->>'status'", P(u, b)), "canceled");
  when(b, "2025-03-01 08:00:00+00", "2025-03-01 09:00:00+00", NULL);
  /* day 2: a storyboard that succeeds (late in the UTC day: the next day in
   * Auckland, which this session's time zone must not change) */
  char *c = submit(u, "storyboard", "{\"prompt\":\"p\"}");
  e = claim(c);
  step_begin(c, e, "storyboard");
  assert_string_equal(step_succeed(c, e, "storyboard"), "succeeded");
  when(c, "2025-03-02 22:00:00+00", "2025-03-02 23:59:59+00", "2025-03-02 23:59:59+00");
  /* day 3: a campaign canceled after its storyboard and its video's
   * generation: captures 1 then 10 (the cancel's) on day 3 */
  char *m = submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":1}");
  e = claim(m);
  step_begin(m, e, "storyboard");
  assert_string_equal(step_succeed(m, e, "storyboard"), "running");
  step_begin(m, e, "video_1");
  assert_string_equal(sql_val("SELECT genq_step_checkpoint($1, $2, 'video_1', 'gen-u')", P(m, e)),
                      "running");
  assert_string_equal(sql_val("SELECT genq_job_cancel($1, $2)->>'status'", P(u, m)), "canceled");
  when(m, "2025-03-03 10:00:00+00", "2025-03-03 11:00:00+00", "2025-03-03 10:30:00+00");
  /* day 3: a video that fails */
  char *v = submit(u, "video", "{\"prompt\":\"p\"}");
  e = claim(v);
  assert_string_equal(sql_val("SELECT genq_job_fail($1, $2, 'video', 'x', 'x', false)", P(v, e)),
                      "failed");
  when(v, "2025-03-03 12:00:00+00", "2025-03-03 12:01:00+00", NULL);
  /* outside the range: submitted and succeeded the day before */
  char *o = submit(u, "storyboard", "{\"prompt\":\"p\"}");
  e = claim(o);
  step_begin(o, e, "storyboard");
  assert_string_equal(step_succeed(o, e, "storyboard"), "succeeded");
  when(o, "2025-02-28 12:00:00+00", "2025-02-28 13:00:00+00", "2025-02-28 13:00:00+00");
  /* another user's job the same day is not u's */
  char *w = new_user();
  grant(w, "10");
  char *x = submit(w, "image", "{\"prompt\":\"p\"}");
  when(x, "2025-03-01 10:00:00+00", NULL, NULL);

  sql_do("SET TimeZone = 'Pacific/Auckland'", NOP);
  const char *want =
      "{\"from\":\"2025-03-01\",\"to\":\"2025-03-03\",\"days\":["
      "{\"day\":\"2025-03-01\",\"kind\":\"image\",\"submitted\":2,\"succeeded\":0,\"failed\":0,"
      "\"canceled\":1,\"credits_spent\":0},"
      "{\"day\":\"2025-03-02\",\"kind\":\"image\",\"submitted\":0,\"succeeded\":1,\"failed\":0,"
      "\"canceled\":0,\"credits_spent\":2},"
      "{\"day\":\"2025-03-02\",\"kind\":\"storyboard\",\"submitted\":1,\"succeeded\":1,"
      "\"failed\":0,\"canceled\":0,\"credits_spent\":1},"
      "{\"day\":\"2025-03-03\",\"kind\":\"campaign\",\"submitted\":1,\"succeeded\":0,"
      "\"failed\":0,\"canceled\":1,\"credits_spent\":11},"
      "{\"day\":\"2025-03-03\",\"kind\":\"video\",\"submitted\":1,\"succeeded\":0,\"failed\":1,"
      "\"canceled\":0,\"credits_spent\":0}]}";
  const char *q = "SELECT genq_usage($1, $2::date, $3::date)::text";
  assert_string_equal(sql_val(q, P(u, "2025-03-01", "2025-03-03")),
                      sql_val("SELECT $1::jsonb::text", P(want)));
  sql_do("RESET TimeZone", NOP);
  /* one day alone; a range with nothing in it */
  assert_string_equal(sql_val("SELECT genq_usage($1, '2025-02-28', '2025-02-28')->>'days'", P(u)),
                      sql_val("SELECT $1::jsonb::text",
                              P("[{\"day\":\"2025-02-28\",\"kind\":\"storyboard\",\"submitted\":1,"
                                "\"succeeded\":1,\"failed\":0,\"canceled\":0,"
                                "\"credits_spent\":1}]")));
  assert_string_equal(sql_val("SELECT genq_usage($1, '2024-01-01', '2024-12-31')::text", P(u)),
                      "{\"to\": \"2024-12-31\", \"days\": [], \"from\": \"2024-01-01\"}");
  /* w sees only w's */
  assert_string_equal(
      sql_val("SELECT genq_usage($1, '2025-03-01', '2025-03-03') #>> '{days,0,submitted}'", P(w)),
      "1");
  assert_int_equal(
      sql_int("SELECT jsonb_array_length(genq_usage($1, '2025-03-01', '2025-03-03')->'days')",
              P(w)),
      1);
  /* the sums agree with the ledger's captures of the range */
  assert_int_equal(sql_int("SELECT -sum(balance_delta) FROM ledger WHERE user_id = $1 AND "
                           "movement = 'capture' AND created_at >= '2025-03-01' AND "
                           "created_at < '2025-03-04'",
                           P(u)),
                   14);
  assert_audit_clean();
}

static void test_usage_range_is_checked(void **state) {
  char *u = new_user();
  const char *q = "SELECT genq_usage($1, $2::date, $3::date)";
  assert_string_equal(sql_state(q, P(u, "2025-03-02", "2025-03-01")), "22023");
  assert_string_equal(sql_state(q, P(u, "2024-01-01", "2025-01-01")), "22023"); /* 367 days */
  assert_string_equal(sql_state(q, P(u, "2024-01-01", "2024-12-31")), "00000"); /* 366 */
  assert_string_equal(sql_state(q, P(u, NULL, "2024-12-31")), "22023");
  assert_string_equal(sql_state(q, P(u, "2024-02-30", "2024-03-01")), "22008");
}

/* ---- Idempotency-Key expiry ---- */

static char *first_word(const char *s) {
  char out[64];
  snprintf(out, sizeof out, "%.*s", (int)strcspn(s, " "), s);
  return val_keep(out);
}

static void test_a_key_expires_24_hours_after_its_job(void **state) {
  char *u = new_user();
  grant(u, "20");
  /* 23 h old: the same body replays, another is 409 */
  char *j1 = first_word(submit_key(u, "k-young", "h1"));
  sql_do("UPDATE jobs SET created_at = now() - interval '23 hours' WHERE id = $1", P(j1));
  char *again = submit_key(u, "k-young", "h1");
  assert_string_equal(first_word(again), j1);
  assert_string_equal(again + strlen(j1) + 1, "f");
  assert_string_equal(sql_state("SELECT * FROM genq_submit_job($1, 'image', '{\"prompt\":\"p\"}', "
                                "NULL, 'k-young', 'h2', 5)",
                                P(u)),
                      "GQ409");
  /* 25 h old and never swept: the key makes a new job (whatever the body) */
  char *j2 = first_word(submit_key(u, "k-old", "h1"));
  sql_do("UPDATE jobs SET created_at = now() - interval '25 hours' WHERE id = $1", P(j2));
  char *fresh = submit_key(u, "k-old", "h2");
  char *j3 = first_word(fresh);
  assert_string_not_equal(j3, j2);
  assert_string_equal(fresh + strlen(j3) + 1, "t");
  assert_null(sql_val("SELECT idempotency_key FROM jobs WHERE id = $1", P(j2)));
  assert_string_equal(sql_val("SELECT idempotency_key FROM jobs WHERE id = $1", P(j3)), "k-old");
  /* and the new job now answers the key */
  char *replay = submit_key(u, "k-old", "h2");
  assert_string_equal(first_word(replay), j3);
  assert_string_equal(replay + strlen(j3) + 1, "f");
  assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE user_id = $1", P(u)), 3);
  assert_int_equal(held(u), 6);
  assert_audit_clean();
}

static void test_the_sweep_clears_only_expired_keys_in_batches(void **state) {
  char *u = new_user();
  grant(u, "20");
  char *a = first_word(submit_key(u, "s-a", "h"));
  char *b = first_word(submit_key(u, "s-b", "h"));
  char *c = first_word(submit_key(u, "s-c", "h"));
  /* a long time ago, so that no other job's key is older than these */
  when(a, "2001-01-01 00:00:00+00", NULL, NULL);
  when(b, "2001-01-01 12:00:00+00", NULL, NULL);
  when(c, "2001-01-02 06:00:00+00", NULL, NULL);
  const char *sweep = "SELECT genq_idempotency_sweep('2001-01-02 12:00:00+00', $1)";
  assert_int_equal(sql_int(sweep, P("1")), 1); /* bounded: the oldest first */
  assert_null(sql_val("SELECT idempotency_key FROM jobs WHERE id = $1", P(a)));
  assert_string_equal(sql_val("SELECT idempotency_key FROM jobs WHERE id = $1", P(b)), "s-b");
  assert_int_equal(sql_int(sweep, P("100")), 1); /* b: exactly 24 h old at p_now */
  assert_int_equal(sql_int(sweep, P("100")), 0);
  assert_null(sql_val("SELECT request_hash FROM jobs WHERE id = $1", P(b)));
  assert_string_equal(sql_val("SELECT idempotency_key FROM jobs WHERE id = $1", P(c)), "s-c");
  /* a cleared key frees its slot: the same key makes a new job */
  char *n = submit_key(u, "s-a", "h");
  assert_string_not_equal(first_word(n), a);
  assert_string_equal(n + strlen(first_word(n)) + 1, "t");
  assert_audit_clean();
}

/* Two connections submit one expired key at once. The first clears the old
 * job's key and makes the new job inside its open transaction; the second
 * is made to wait on that (seen waiting on a lock in pg_stat_activity), and
 * once the first commits it answers the first's new job: one job made. */
static void test_two_connections_racing_an_expired_key_make_one_job(void **state) {
  char *u = new_user();
  grant(u, "20");
  char *old = first_word(submit_key(u, "r-k", "h"));
  sql_do("UPDATE jobs SET created_at = now() - interval '25 hours' WHERE id = $1", P(old));
  PGconn *c1 = PQconnectdb(db_url), *c2 = PQconnectdb(db_url);
  assert_int_equal(PQstatus(c1), CONNECTION_OK);
  assert_int_equal(PQstatus(c2), CONNECTION_OK);
  const char *q = "SELECT job->>'id', created FROM genq_submit_job($1, 'image', "
                  "'{\"prompt\":\"p\"}', NULL, 'r-k', 'h', 5)";
  PQclear(sql_on(c1, "BEGIN", NULL, 0));
  PGresult *r1 = sql_on(c1, q, P(u));
  char *id1 = val_keep(PQgetvalue(r1, 0, 0));
  assert_string_equal(PQgetvalue(r1, 0, 1), "t");
  PQclear(r1);
  char pid2[16];
  snprintf(pid2, sizeof pid2, "%d", PQbackendPID(c2));
  const char *const p2[1] = {u};
  assert_int_equal(PQsendQueryParams(c2, q, 1, NULL, p2, NULL, NULL, 0), 1);
  int waiting = 0;
  for (int i = 0; i < 1000 && !waiting; i++) { /* up to 10 s for it to reach the lock */
    char *w = sql_val(
        "SELECT coalesce(wait_event_type, '') FROM pg_stat_activity WHERE pid = $1::int", P(pid2));
    waiting = !strcmp(w, "Lock");
    if (!waiting) usleep(10000);
  }
  assert_true(waiting);
  PQclear(sql_on(c1, "COMMIT", NULL, 0));
  PGresult *r2 = PQgetResult(c2);
  assert_int_equal(PQresultStatus(r2), PGRES_TUPLES_OK);
  assert_string_equal(PQgetvalue(r2, 0, 0), id1);
  assert_string_equal(PQgetvalue(r2, 0, 1), "f");
  PQclear(r2);
  assert_null(PQgetResult(c2));
  PQfinish(c1);
  PQfinish(c2);
  assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE user_id = $1", P(u)), 2);
  assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE user_id = $1 AND idempotency_key = "
                           "'r-k'",
                           P(u)),
                   1);
  assert_int_equal(held(u), 4);
  assert_audit_clean();
}

/* ---- what a cancel costs ---- */

static void test_a_cancel_captures_the_steps_whose_generation_was_created(void **state) {
  char *u = new_user();
  grant(u, "50");
  char *m = submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":1}"); /* 1 + 10 + 8 */
  char *e = claim(m);
  step_begin(m, e, "storyboard");
  assert_string_equal(step_succeed(m, e, "storyboard"), "running");
  step_begin(m, e, "video_1");
  assert_string_equal(sql_val("SELECT genq_step_checkpoint($1, $2, 'video_1', 'gen-c')", P(m, e)),
                      "running");
  /* the lip-sync step never started: no provider_ref */
  assert_string_equal(sql_val("SELECT genq_job_cancel($1, $2)->>'status'", P(u, m)), "canceled");
  assert_int_equal(job_int(m, "{cost,price}"), 19);
  assert_int_equal(job_int(m, "{cost,captured}"), 11);
  assert_int_equal(job_int(m, "{cost,released}"), 8);
  assert_int_equal(job_int(m, "{cost,held}"), 0);
  assert_int_equal(
      sql_int("SELECT captured FROM job_steps WHERE job_id = $1 AND name = 'video_1'", P(m)), 10);
  assert_int_equal(
      sql_int("SELECT captured FROM job_steps WHERE job_id = $1 AND name = 'lipsync'", P(m)), 0);
  assert_string_equal(job_field(m, "{steps,1,status}"), "canceled");
  assert_int_equal(
      sql_int("SELECT count(*) FROM ledger WHERE idem_key = 'job:' || $1 || ':capture:video_1'",
              P(m)),
      1);
  assert_int_equal(balance(u), 39);
  assert_int_equal(held(u), 0);
  /* the worker's own success of that step comes later: fenced, nothing moves */
  assert_null(step_succeed(m, e, "video_1"));
  assert_int_equal(ledger_count(m, "capture"), 2);
  assert_int_equal(ledger_count(m, "release"), 1);
  /* a second cancel changes nothing */
  assert_string_equal(sql_val("SELECT genq_job_cancel($1, $2)->>'status'", P(u, m)), "canceled");
  assert_int_equal(ledger_count(m, "capture"), 2);
  assert_int_equal(balance(u), 39);
  /* paid for, so not deleted at Luma: neither its worker nor the sweep gets it */
  assert_int_equal(sql_int("SELECT count(*) FROM genq_refs_to_release($1, 100)", P(m)), 0);
  sql_do("UPDATE jobs SET finished_at = now() - interval '2 minutes' WHERE id = $1", P(m));
  assert_int_equal(
      sql_int("SELECT count(*) FROM genq_refs_to_release(NULL, 100000) WHERE job_id = $1", P(m)),
      0);
  assert_audit_clean();
}

/* A job requeued with a checkpointed Hedra job (a worker died while it ran)
 * and canceled while queued pays for that step too; a step without a ref is
 * released. */
static void test_a_queued_job_with_a_created_generation_pays_for_it(void **state) {
  char *u = new_user();
  grant(u, "50");
  char *m = submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":1}");
  char *e = claim(m);
  step_begin(m, e, "lipsync");
  assert_string_equal(sql_val("SELECT genq_step_checkpoint($1, $2, 'lipsync', 'hedra-q')", P(m, e)),
                      "running");
  assert_string_equal(
      sql_val("SELECT genq_job_requeue($1, $2, 0, 'provider_unavailable', 'x')", P(m, e)),
      "queued");
  assert_string_equal(sql_val("SELECT genq_job_cancel($1, $2)->>'status'", P(u, m)), "canceled");
  assert_int_equal(job_int(m, "{cost,captured}"), 8);
  assert_int_equal(job_int(m, "{cost,released}"), 11);
  assert_int_equal(balance(u), 42);
  assert_int_equal(held(u), 0);
  /* a job with no generation created pays nothing */
  char *v = submit(u, "video", "{\"prompt\":\"p\"}");
  e = claim(v);
  step_begin(v, e, "video");
  assert_string_equal(sql_val("SELECT genq_job_cancel($1, $2)->>'status'", P(u, v)), "canceled");
  assert_int_equal(job_int(v, "{cost,captured}"), 0);
  assert_int_equal(job_int(v, "{cost,released}"), 10);
  assert_int_equal(balance(u), 42);
  assert_audit_clean();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_usage_per_utc_day_and_kind_from_jobs_and_captures),
      cmocka_unit_test(test_usage_range_is_checked),
      cmocka_unit_test(test_a_key_expires_24_hours_after_its_job),
      cmocka_unit_test(test_the_sweep_clears_only_expired_keys_in_batches),
      cmocka_unit_test(test_two_connections_racing_an_expired_key_make_one_job),
      cmocka_unit_test(test_a_cancel_captures_the_steps_whose_generation_was_created),
      cmocka_unit_test(test_a_queued_job_with_a_created_generation_pays_for_it),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
