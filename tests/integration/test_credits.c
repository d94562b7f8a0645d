/* Credits and the job life cycle in PostgreSQL (schema/, SPEC §5, §6),
 * exercised through the same SQL functions the API and workers call, against
 * the real server at GENQ_DATABASE_URL. Every test uses fresh users
 * (t-<pid>-<n>) and ends by checking genq_audit() finds nothing wrong with
 * this run's accounts and jobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/pg_helpers.h"

static const char *db_url;

/* Submits and returns the job id; fails the test if the submit fails. */
static char *submit_full(const char *user, const char *kind, const char *input, const char *key,
                         const char *hash, const char *max_attempts) {
  return sql_val("SELECT job->>'id' FROM genq_submit_job($1, $2, $3, NULL, $4, $5, $6)",
                 P(user, kind, input, key, hash, max_attempts));
}

static char *submit(const char *user, const char *kind, const char *input) {
  return submit_full(user, kind, input, NULL, NULL, "5");
}

static const char *submit_state(const char *user, const char *kind, const char *input) {
  return sql_state("SELECT * FROM genq_submit_job($1, $2, $3, NULL, NULL, NULL, 5)",
                   P(user, kind, input));
}

/* Claims the job for worker w; returns the new epoch, or NULL when not claimable. */
static char *claim(const char *job, const char *w) {
  PGresult *r = sql_on(conn, "SELECT epoch FROM genq_claim_job($1, $2, 60)", P(job, w));
  char *e = PQntuples(r) ? val_keep(PQgetvalue(r, 0, 0)) : NULL;
  PQclear(r);
  return e;
}

static long long ledger_rows(const char *user, const char *movement) {
  return sql_int("SELECT count(*) FROM ledger WHERE user_id = $1 AND movement = $2",
                 P(user, movement));
}

static int group_setup(void **state) {
  db_url = getenv("GENQ_DATABASE_URL");
  return pg_connect(db_url, "t");
}

static int group_teardown(void **state) {
  pg_disconnect();
  return 0;
}

/* ---- tests ---- */

static void test_grant_is_idempotent_per_key(void **state) {
  char *u = new_user();
  char key_a[128], key_b[128];
  snprintf(key_a, sizeof key_a, "grant-a:%s", u);
  snprintf(key_b, sizeof key_b, "grant-b:%s", u);
  char *c1 = sql_val("SELECT genq_grant($1, 10, $2, 'first')", P(u, key_a));
  assert_string_equal(c1, "{\"debt\": 0, \"held\": 0, \"balance\": 10, \"available\": 10}");
  sql_do("SELECT genq_grant($1, 10, $2, 'again')", P(u, key_a));
  assert_int_equal(balance(u), 10);
  sql_do("SELECT genq_grant($1, 7, $2, 'other key')", P(u, key_b));
  assert_int_equal(balance(u), 17);
  assert_int_equal(ledger_rows(u, "grant"), 2);
  assert_string_equal(sql_state("SELECT genq_grant($1, 0, 'zero', NULL)", P(u)), "22023");
  assert_string_equal(sql_state("SELECT genq_grant($1, -5, 'neg', NULL)", P(u)), "22023");
  assert_int_equal(balance(u), 17);
  assert_audit_clean();
}

static void test_submit_holds_the_full_price(void **state) {
  char *u = new_user();
  grant(u, "25");
  char *job = submit(u, "video", "{\"prompt\":\"a cat\"}");
  assert_int_equal(balance(u), 25);
  assert_int_equal(held(u), 10);
  assert_string_equal(sql_val("SELECT genq_credits($1)->>'available'", P(u)), "15");
  char key[128];
  snprintf(key, sizeof key, "job:%s:hold", job);
  assert_int_equal(sql_int("SELECT held_delta FROM ledger WHERE idem_key = $1 AND job_id = $2 AND "
                           "movement = 'hold' AND balance_delta = 0",
                           P(key, job)),
                   10);
  assert_int_equal(job_int(job, "{cost,price}"), 10);
  assert_int_equal(job_int(job, "{cost,held}"), 10);
  assert_string_equal(job_field(job, "{status}"), "queued");
  assert_string_equal(job_field(job, "{steps,0,status}"), "pending");
  assert_string_equal(job_field(job, "{steps,0,provider}"), "luma");
  assert_int_equal(job_int(job, "{queue_position}"), 1 + sql_int("SELECT count(*) FROM jobs WHERE "
                                                                 "status = 'queued' AND kind = "
                                                                 "'video' AND id < $1",
                                                                 P(job)));
  assert_audit_clean();
}

static void test_insufficient_credits_is_gq402_and_creates_nothing(void **state) {
  char *u = new_user();
  grant(u, "9");
  assert_string_equal(submit_state(u, "video", "{\"prompt\":\"p\"}"), "GQ402");
  assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE user_id = $1", P(u)), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE user_id = $1", P(u)), 1);
  assert_int_equal(held(u), 0);
  assert_int_equal(balance(u), 9);
  /* a user genq has never seen has 0 credits */
  char *v = new_user();
  assert_string_equal(submit_state(v, "storyboard", "{\"prompt\":\"p\"}"), "GQ402");
  assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE user_id = $1", P(v)), 0);
  assert_audit_clean();
}

static void test_step_succeed_captures_exactly_once(void **state) {
  char *u = new_user();
  grant(u, "100");
  char *job = submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":1}");
  assert_int_equal(held(u), 19);
  char *e = claim(job, "w1");
  assert_non_null(e);
  assert_string_equal(sql_val("SELECT genq_step_begin($1, $2, 'storyboard')", P(job, e)),
                      "running");
  const char *succeed =
      "SELECT genq_step_succeed($1, $2, $3, '{\"n\":1}', '{\"storyboard\":{}}', NULL)";
  assert_string_equal(sql_val(succeed, P(job, e, "storyboard")), "running");
  assert_string_equal(sql_val(succeed, P(job, e, "storyboard")), "running");
  assert_int_equal(balance(u), 99);
  assert_int_equal(held(u), 18);
  assert_int_equal(ledger_rows(u, "capture"), 1);
  assert_int_equal(job_int(job, "{cost,captured}"), 1);
  assert_int_equal(job_int(job, "{cost,held}"), 18);
  assert_string_equal(sql_val(succeed, P(job, e, "video_1")), "running");
  assert_string_equal(sql_val(succeed, P(job, e, "lipsync")), "succeeded");
  assert_int_equal(balance(u), 81);
  assert_int_equal(held(u), 0);
  assert_int_equal(ledger_rows(u, "capture"), 3);
  assert_int_equal(job_int(job, "{cost,captured}"), 19);
  assert_non_null(job_field(job, "{finished_at}"));
  assert_string_equal(job_field(job, "{output,storyboard}"), "{}");
  /* the job is terminal now: a late duplicate is recognised as the commit it
   * repeats and charges nothing */
  assert_string_equal(sql_val(succeed, P(job, e, "lipsync")), "succeeded");
  assert_int_equal(balance(u), 81);
  assert_audit_clean();
}

/* The last step's success commits (capture, asset row, job succeeded) but
 * its answer is lost; the worker sends the same statement again. The resend
 * must recognise its own committed result: NULL would tell the worker it was
 * fenced out, and it would delete the stored bytes the asset row points at.
 * Another owner's success (a different asset) stays fenced out. */
static void test_a_resent_step_success_recognises_its_own_commit(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}");
  char *e = claim(job, "w1");
  assert_non_null(e);
  assert_string_equal(sql_val("SELECT genq_step_begin($1, $2, 'image')", P(job, e)), "running");
  const char *asset = "{\"id\": \"6f1c1a9e-0000-4000-8000-000000000001\", \"kind\": \"image\", "
                      "\"content_type\": \"image/png\", \"bytes\": 3, \"sha256\": "
                      "\"0000000000000000000000000000000000000000000000000000000000000000\", "
                      "\"storage_key\": \"assets/one\"}";
  char *id = val_keep(job);
  /* a fresh asset id per run of the test: the row is unique */
  char *aid = sql_val("SELECT gen_random_uuid()::text", NOP);
  char *a1 =
      sql_val("SELECT jsonb_set($1::jsonb, '{id}', to_jsonb($2::text))::text", P(asset, aid));
  const char *succeed = "SELECT genq_step_succeed($1, $2, 'image', '{}', NULL, $3::jsonb)";
  assert_string_equal(sql_val(succeed, P(id, e, a1)), "succeeded");
  char *again = sql_val(succeed, P(id, e, a1)); /* the resend */
  assert_non_null(again);
  assert_string_equal(again, "succeeded");
  assert_int_equal(job_int(job, "{cost,captured}"), 2);
  assert_int_equal(sql_int("SELECT count(*) FROM assets WHERE job_id = $1", P(id)), 1);
  assert_int_equal(ledger_rows(u, "capture"), 1);
  /* a success with another asset (another owner's bytes) is fenced out */
  char *bid = sql_val("SELECT gen_random_uuid()::text", NOP);
  char *a2 =
      sql_val("SELECT jsonb_set($1::jsonb, '{id}', to_jsonb($2::text))::text", P(asset, bid));
  assert_null(sql_val(succeed, P(id, e, a2)));
  assert_int_equal(sql_int("SELECT count(*) FROM assets WHERE job_id = $1", P(id)), 1);
  /* a step without an asset: the same output is recognised, another is not */
  char *job2 = submit(u, "storyboard", "{\"prompt\":\"p\"}");
  char *e2 = claim(job2, "w1");
  assert_non_null(e2);
  sql_do("SELECT genq_step_begin($1, $2, 'storyboard')", P(job2, e2));
  const char *sb = "SELECT genq_step_succeed($1, $2, 'storyboard', $3::jsonb, NULL, NULL)";
  assert_string_equal(sql_val(sb, P(job2, e2, "{\"title\": \"t\"}")), "succeeded");
  again = sql_val(sb, P(job2, e2, "{\"title\": \"t\"}"));
  assert_non_null(again);
  assert_string_equal(again, "succeeded");
  assert_null(sql_val(sb, P(job2, e2, "{\"title\": \"other\"}")));
  assert_audit_clean();
}

static void test_fail_releases_what_is_held(void **state) {
  char *u = new_user();
  grant(u, "30");
  char *job = submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":2}"); /* 1 + 20 + 8 */
  char *e = claim(job, "w1");
  assert_non_null(e);
  sql_do("SELECT genq_step_succeed($1, $2, 'storyboard', '{}', NULL, NULL)", P(job, e));
  sql_do("SELECT genq_step_begin($1, $2, 'video_1')", P(job, e));
  assert_string_equal(sql_val("SELECT genq_job_fail($1, $2, 'video_1', 'content_policy', "
                              "'refused', false)",
                              P(job, e)),
                      "failed");
  assert_string_equal(job_field(job, "{status}"), "failed");
  assert_string_equal(job_field(job, "{error,code}"), "content_policy");
  assert_string_equal(job_field(job, "{error,retryable}"), "false");
  assert_string_equal(job_field(job, "{steps,1,status}"), "failed");
  assert_string_equal(job_field(job, "{steps,1,error,code}"), "content_policy");
  assert_string_equal(job_field(job, "{steps,2,status}"), "canceled");
  assert_int_equal(job_int(job, "{cost,held}"), 0);
  assert_int_equal(job_int(job, "{cost,captured}"), 1);
  assert_int_equal(job_int(job, "{cost,released}"), 28);
  assert_int_equal(balance(u), 29);
  assert_int_equal(held(u), 0);
  assert_int_equal(ledger_rows(u, "release"), 1);
  /* failing again is fenced (the job is no longer running) */
  assert_null(sql_val("SELECT genq_job_fail($1, $2, NULL, 'x', 'y', false)", P(job, e)));
  assert_int_equal(ledger_rows(u, "release"), 1);
  assert_audit_clean();
}

static void test_requeue_waits_then_fails_after_max_attempts(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit_full(u, "image", "{\"prompt\":\"p\"}", NULL, NULL, "2");
  char *e1 = claim(job, "w1");
  assert_non_null(e1);
  assert_string_equal(
      sql_val("SELECT genq_job_requeue($1, $2, 60000, 'http_503', 'try later')", P(job, e1)),
      "queued");
  /* the mark of the first dispatch (epoch 0) arriving late must not hide the
   * requeued job from the relay */
  assert_int_equal(
      sql_int("SELECT genq_mark_dispatched(ARRAY[$1::uuid], ARRAY[0::bigint])", P(job)), 0);
  assert_string_equal(job_field(job, "{status}"), "queued");
  assert_string_equal(job_field(job, "{error,code}"), "http_503");
  assert_non_null(job_field(job, "{next_attempt_at}"));
  assert_string_equal(sql_val("SELECT dispatched::text FROM jobs WHERE id = $1", P(job)), "false");
  assert_int_equal(held(u), 2);
  /* not due yet: not claimable, not offered for dispatch */
  assert_null(claim(job, "w2"));
  assert_int_equal(
      sql_int("SELECT count(*) FROM genq_undispatched(0, 100000) WHERE id = $1", P(job)), 0);
  sql_do("UPDATE jobs SET next_attempt_at = now() - interval '1 second' WHERE id = $1", P(job));
  assert_int_equal(
      sql_int("SELECT count(*) FROM genq_undispatched(0, 100000) WHERE id = $1", P(job)), 1);
  char *e2 = claim(job, "w2");
  assert_non_null(e2);
  assert_int_equal(job_int(job, "{attempt}"), 2);
  /* the old epoch cannot requeue any more */
  assert_null(sql_val("SELECT genq_job_requeue($1, $2, 0, 'x', 'y')", P(job, e1)));
  assert_string_equal(
      sql_val("SELECT genq_job_requeue($1, $2, 0, 'http_503', 'still down')", P(job, e2)),
      "failed");
  assert_string_equal(job_field(job, "{status}"), "failed");
  assert_string_equal(job_field(job, "{error,retryable}"), "true");
  assert_string_equal(job_field(job, "{error,message}"), "still down");
  assert_int_equal(job_int(job, "{cost,released}"), 2);
  assert_int_equal(held(u), 0);
  assert_int_equal(balance(u), 10);
  assert_audit_clean();
}

static void test_stale_epoch_is_fenced_after_reclaim(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "video", "{\"prompt\":\"p\"}");
  char *e1 = claim(job, "w1");
  assert_non_null(e1);
  assert_null(claim(job, "w2")); /* the lease is live */
  assert_string_equal(sql_val("SELECT genq_step_begin($1, $2, 'video')", P(job, e1)), "running");
  assert_string_equal(sql_val("SELECT genq_step_checkpoint($1, $2, 'video', 'gen-1')", P(job, e1)),
                      "running");
  sql_do("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1", P(job));
  /* the relay re-sends a lapsed job once, not on every scan */
  const char *undispatched = "SELECT count(*) FROM genq_undispatched(0, 100000) WHERE id = $1";
  assert_int_equal(sql_int(undispatched, P(job)), 1);
  assert_int_equal(
      sql_int("SELECT genq_mark_dispatched(ARRAY[$1::uuid], ARRAY[$2::bigint])", P(job, e1)), 1);
  assert_int_equal(sql_int(undispatched, P(job)), 0);
  /* a lapsed lease does not let the old owner start new work */
  assert_null(sql_val("SELECT genq_step_begin($1, $2, 'video')", P(job, e1)));
  PGresult *r = sql_on(conn,
                       "SELECT epoch, steps->0->>'provider_ref' FROM genq_claim_job($1, "
                       "'w2', 60)",
                       P(job));
  assert_int_equal(PQntuples(r), 1);
  char *e2 = val_keep(PQgetvalue(r, 0, 0));
  assert_string_equal(PQgetvalue(r, 0, 1), "gen-1"); /* resumes the checkpoint */
  PQclear(r);
  assert_int_equal(atoll(e2), atoll(e1) + 1);
  assert_int_equal(sql_int(undispatched, P(job)), 0); /* owned again, lease live */

  assert_null(
      sql_val("SELECT genq_step_succeed($1, $2, 'video', '{}', '{\"x\":1}', NULL)", P(job, e1)));
  assert_null(sql_val("SELECT genq_job_heartbeat($1, $2, 60)", P(job, e1)));
  assert_null(sql_val("SELECT genq_step_checkpoint($1, $2, 'video', 'gen-2')", P(job, e1)));
  assert_null(sql_val("SELECT genq_job_fail($1, $2, 'video', 'x', 'y', false)", P(job, e1)));
  assert_null(sql_val("SELECT genq_job_requeue($1, $2, 0, 'x', 'y')", P(job, e1)));
  assert_string_equal(job_field(job, "{status}"), "running");
  assert_string_equal(job_field(job, "{steps,0,status}"), "running");
  assert_string_equal(job_field(job, "{steps,0,provider_ref}"), "gen-1");
  assert_null(job_field(job, "{output,x}")); /* the fenced write merged nothing */
  assert_int_equal(balance(u), 10);
  assert_int_equal(held(u), 10);
  assert_int_equal(ledger_rows(u, "capture"), 0);

  assert_string_equal(sql_val("SELECT genq_job_heartbeat($1, $2, 60)", P(job, e2)), "running");
  assert_string_equal(
      sql_val("SELECT genq_step_succeed($1, $2, 'video', '{}', NULL, NULL)", P(job, e2)),
      "succeeded");
  assert_int_equal(balance(u), 0);
  assert_int_equal(held(u), 0);
  assert_audit_clean();
}

static void test_idempotency_key_same_body_same_job_other_body_gq409(void **state) {
  char *u = new_user();
  grant(u, "10");
  const char *in = "{\"prompt\":\"p\"}";
  const char *q = "SELECT job->>'id', created FROM genq_submit_job($1, 'image', $2, NULL, 'k1', "
                  "$3, 5)";
  PGresult *r = sql_on(conn, q, P(u, in, "hash-1"));
  char *id1 = val_keep(PQgetvalue(r, 0, 0));
  assert_string_equal(PQgetvalue(r, 0, 1), "t");
  PQclear(r);
  r = sql_on(conn, q, P(u, in, "hash-1"));
  assert_string_equal(PQgetvalue(r, 0, 0), id1);
  assert_string_equal(PQgetvalue(r, 0, 1), "f");
  PQclear(r);
  assert_int_equal(held(u), 2);
  assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE user_id = $1", P(u)), 1);
  assert_string_equal(sql_state(q, P(u, in, "hash-2")), "GQ409");
  /* the same key belongs to each user separately */
  char *v = new_user();
  grant(v, "10");
  r = sql_on(conn, q, P(v, in, "hash-2"));
  assert_string_not_equal(PQgetvalue(r, 0, 0), id1);
  assert_string_equal(PQgetvalue(r, 0, 1), "t");
  PQclear(r);
  assert_int_equal(held(u), 2);
  assert_audit_clean();
}

static void test_campaign_of_three_scenes_costs_1_plus_30_plus_8(void **state) {
  assert_int_equal(
      sql_int("SELECT sum(price) FROM genq_plan_steps('campaign', '{\"scenes\":3}')", NOP), 39);
  assert_string_equal(sql_val("SELECT string_agg(name || ':' || provider, ',' ORDER BY idx) FROM "
                              "genq_plan_steps('campaign', '{\"scenes\":3}')",
                              NOP),
                      "storyboard:openai,video_1:luma,video_2:luma,video_3:luma,lipsync:hedra");
  assert_string_equal(sql_state("SELECT * FROM genq_plan_steps('campaign', '{\"scenes\":0}')", NOP),
                      "22023");
  assert_string_equal(sql_state("SELECT * FROM genq_plan_steps('podcast', '{}')", NOP), "22023");
  char *u = new_user();
  grant(u, "39");
  char *job = submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":3}");
  assert_int_equal(job_int(job, "{cost,price}"), 39);
  assert_int_equal(held(u), 39);
  assert_int_equal(sql_int("SELECT count(*) FROM job_steps WHERE job_id = $1", P(job)), 5);
  assert_audit_clean();
}

/* ---- two connections racing ---- */

typedef struct {
  pthread_barrier_t *start;
  const char *sql;
  const char *params[4];
  int nparams;
  char sqlstate[6];
  int rows;
} racer;

static void *race_run(void *arg) {
  racer *r = arg;
  PGconn *c = PQconnectdb(db_url);
  pthread_barrier_wait(r->start);
  PGresult *res = PQexecParams(c, r->sql, r->nparams, NULL, r->params, NULL, NULL, 0);
  const char *s =
      PQresultStatus(res) == PGRES_TUPLES_OK ? "00000" : PQresultErrorField(res, PG_DIAG_SQLSTATE);
  snprintf(r->sqlstate, sizeof r->sqlstate, "%s", s ? s : "?????");
  r->rows = PQntuples(res);
  PQclear(res);
  PQfinish(c);
  return NULL;
}

static void race(racer *rs, int n) {
  pthread_barrier_t b;
  pthread_t t[8];
  pthread_barrier_init(&b, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) {
    rs[i].start = &b;
    assert_int_equal(pthread_create(&t[i], NULL, race_run, &rs[i]), 0);
  }
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&b);
}

static void test_two_connections_racing_for_the_last_credits_one_wins(void **state) {
  for (int round = 0; round < 5; round++) {
    char *u = new_user();
    grant(u, "10");
    racer rs[2];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 2; i++) {
      rs[i].sql = "SELECT * FROM genq_submit_job($1, 'video', '{\"prompt\":\"p\"}', NULL, NULL, "
                  "NULL, 5)";
      rs[i].params[0] = u;
      rs[i].nparams = 1;
    }
    race(rs, 2);
    int ok = !strcmp(rs[0].sqlstate, "00000") + !strcmp(rs[1].sqlstate, "00000");
    int poor = !strcmp(rs[0].sqlstate, "GQ402") + !strcmp(rs[1].sqlstate, "GQ402");
    assert_int_equal(ok, 1);
    assert_int_equal(poor, 1);
    assert_int_equal(balance(u), 10);
    assert_int_equal(held(u), 10);
    assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE user_id = $1", P(u)), 1);
  }
  assert_audit_clean();
}

static void test_two_workers_claiming_one_job_one_wins(void **state) {
  char *u = new_user();
  grant(u, "10");
  for (int round = 0; round < 5; round++) {
    char *job = submit(u, "storyboard", "{\"prompt\":\"p\"}");
    racer rs[2];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 2; i++) {
      rs[i].sql = "SELECT * FROM genq_claim_job($1, $2, 60)";
      rs[i].params[0] = job;
      rs[i].params[1] = i ? "w-b" : "w-a";
      rs[i].nparams = 2;
    }
    race(rs, 2);
    assert_string_equal(rs[0].sqlstate, "00000");
    assert_string_equal(rs[1].sqlstate, "00000");
    assert_int_equal(rs[0].rows + rs[1].rows, 1);
    assert_int_equal(sql_int("SELECT epoch FROM jobs WHERE id = $1", P(job)), 1);
  }
  assert_audit_clean();
}

/* A failed job's checkpointed generation is handed out for deletion once,
 * a minute after the job ended; a succeeded step's never. (A canceled
 * job's is charged and kept: test_usage.c.) */
static void test_refs_of_ended_jobs_are_released_once(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "video", "{\"prompt\":\"p\"}");
  char *e = claim(job, "w1");
  assert_non_null(e);
  assert_string_equal(sql_val("SELECT genq_step_begin($1, $2, 'video')", P(job, e)), "running");
  assert_string_equal(sql_val("SELECT genq_step_checkpoint($1, $2, 'video', 'gen-r')", P(job, e)),
                      "running");
  const char *mine = "SELECT count(*) FROM genq_refs_to_release(NULL, 100000) WHERE job_id = $1";
  assert_int_equal(sql_int(mine, P(job)), 0); /* running: its worker still needs it */
  assert_string_equal(sql_val("SELECT genq_job_fail($1, $2, 'video', 'x', 'x', false)", P(job, e)),
                      "failed");
  assert_int_equal(sql_int(mine, P(job)), 0); /* just ended: its worker deletes it first */
  sql_do("UPDATE jobs SET finished_at = now() - interval '2 minutes' WHERE id = $1", P(job));
  assert_string_equal(
      sql_val("SELECT provider_ref FROM genq_refs_to_release(NULL, 100000) WHERE job_id = $1",
              P(job)),
      "gen-r");
  assert_int_equal(sql_int(mine, P(job)), 0); /* handed out once */

  /* the worker that ends a job asks for that job's at once */
  grant(u, "10");
  char *job2 = submit(u, "video", "{\"prompt\":\"p\"}");
  char *e2 = claim(job2, "w1");
  assert_non_null(e2);
  assert_string_equal(sql_val("SELECT genq_step_begin($1, $2, 'video')", P(job2, e2)), "running");
  assert_string_equal(sql_val("SELECT genq_step_checkpoint($1, $2, 'video', 'gen-s')", P(job2, e2)),
                      "running");
  const char *by_job =
      "SELECT count(*) FROM genq_refs_to_release($1, 100) WHERE provider_ref = 'gen-s'";
  assert_int_equal(sql_int(by_job, P(job2)), 0); /* still running */
  assert_string_equal(sql_val("SELECT genq_job_fail($1, $2, NULL, 'x', 'x', false)", P(job2, e2)),
                      "failed");
  assert_int_equal(sql_int(by_job, P(job2)), 1); /* at once, no minute's wait */
  assert_int_equal(sql_int(by_job, P(job2)), 0); /* and once */
  assert_audit_clean();
}

static void test_cancel_releases_the_hold_and_fences_the_worker(void **state) {
  char *u = new_user();
  grant(u, "30");
  char *queued = submit(u, "video", "{\"prompt\":\"p\"}");
  char *running = submit(u, "video", "{\"prompt\":\"p\"}");
  assert_int_equal(held(u), 20);
  char *other = new_user();
  assert_null(sql_val("SELECT genq_job_cancel($1, $2)", P(other, queued)));
  assert_string_equal(job_field(queued, "{status}"), "queued");

  assert_string_equal(sql_val("SELECT genq_job_cancel($1, $2)->>'status'", P(u, queued)),
                      "canceled");
  assert_int_equal(job_int(queued, "{cost,released}"), 10);
  assert_string_equal(job_field(queued, "{steps,0,status}"), "canceled");
  assert_int_equal(held(u), 10);

  char *e = claim(running, "w1");
  assert_non_null(e);
  assert_string_equal(sql_val("SELECT genq_job_cancel($1, $2)->>'status'", P(u, running)),
                      "canceled");
  assert_null(
      sql_val("SELECT genq_step_succeed($1, $2, 'video', '{}', NULL, NULL)", P(running, e)));
  assert_int_equal(held(u), 0);
  assert_int_equal(balance(u), 30);
  assert_int_equal(ledger_rows(u, "release"), 2);
  /* canceling a terminal job returns it unchanged */
  char *before = sql_val("SELECT genq_job_json($1)::text", P(running));
  assert_string_equal(sql_val("SELECT genq_job_cancel($1, $2)::text", P(u, running)), before);
  assert_int_equal(ledger_rows(u, "release"), 2);
  /* and it is invisible to other users */
  assert_int_equal(
      sql_rows("SELECT 1 FROM genq_job_read($1) WHERE user_id = $2", P(running, other)), 0);
  assert_string_equal(sql_val("SELECT user_id FROM genq_job_read($1)", P(running)), u);
  assert_audit_clean();
}

/* queue_position from the kind's arrival and departure counters
 * (schema/0012_queue_counts.sql), not a count of the queue: each job that
 * leaves moves the ones behind it up, a job queued again goes to the back.
 * Other tests' queued image jobs may be ahead: positions are relative. */
static void test_queue_position_moves_up_as_jobs_ahead_leave(void **state) {
  char *u = new_user();
  grant(u, "30");
  char *a = submit(u, "image", "{\"prompt\":\"a\"}");
  char *b = submit(u, "image", "{\"prompt\":\"b\"}");
  char *c = submit(u, "image", "{\"prompt\":\"c\"}");
  long long pa = job_int(a, "{queue_position}");
  assert_true(pa >= 1);
  assert_int_equal(job_int(b, "{queue_position}"), pa + 1);
  assert_int_equal(job_int(c, "{queue_position}"), pa + 2);
  char *e = claim(a, "w-position");
  assert_non_null(e);
  assert_null(job_field(a, "{queue_position}"));
  assert_int_equal(job_int(b, "{queue_position}"), pa);
  assert_int_equal(job_int(c, "{queue_position}"), pa + 1);
  /* handed back: queued again, behind c */
  assert_string_equal(sql_val("SELECT genq_job_handback($1, $2)", P(a, e)), "queued");
  assert_int_equal(job_int(a, "{queue_position}"), pa + 2);
  assert_non_null(sql_val("SELECT genq_job_cancel($1, $2)::text", P(u, b)));
  assert_int_equal(job_int(c, "{queue_position}"), pa);
  assert_int_equal(job_int(a, "{queue_position}"), pa + 1);
  assert_audit_clean();
}

static void test_illegal_transition_raises_gq500(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "storyboard", "{\"prompt\":\"p\"}");
  assert_string_equal(sql_state("UPDATE jobs SET status = 'succeeded' WHERE id = $1", P(job)),
                      "GQ500");
  char *e = claim(job, "w1");
  sql_do("SELECT genq_step_succeed($1, $2, 'storyboard', '{}', NULL, NULL)", P(job, e));
  assert_string_equal(job_field(job, "{status}"), "succeeded");
  assert_string_equal(sql_state("UPDATE jobs SET status = 'running' WHERE id = $1", P(job)),
                      "GQ500");
  assert_string_equal(sql_state("UPDATE jobs SET status = 'queued' WHERE id = $1", P(job)),
                      "GQ500");
  assert_string_equal(job_field(job, "{status}"), "succeeded");
  assert_audit_clean();
}

static void test_jobs_list_pages_newest_first(void **state) {
  char *u = new_user();
  grant(u, "10");
  char ids[5][40];
  for (int i = 0; i < 5; i++)
    snprintf(ids[i], sizeof ids[i], "%s", submit(u, "storyboard", "{\"prompt\":\"p\"}"));
  char *cursor = NULL;
  int seen = 0, pages = 0;
  do {
    PGresult *r =
        sql_on(conn,
               "WITH l AS (SELECT genq_jobs_list($1, NULL, NULL, 2, $2::uuid) AS v) "
               "SELECT e->>'id', l.v->>'next_cursor' FROM l, jsonb_array_elements(l.v->'data') e",
               P(u, cursor));
    pages++;
    assert_true(PQntuples(r) >= 1 && PQntuples(r) <= 2);
    for (int i = 0; i < PQntuples(r); i++, seen++) {
      assert_true(seen < 5);
      assert_string_equal(PQgetvalue(r, i, 0), ids[4 - seen]);
    }
    cursor = PQgetisnull(r, 0, 1) ? NULL : val_keep(PQgetvalue(r, 0, 1));
    PQclear(r);
  } while (cursor && pages < 10);
  assert_int_equal(pages, 3);
  assert_int_equal(seen, 5);
  assert_int_equal(sql_int("SELECT jsonb_array_length(genq_jobs_list($1, 'queued', 'storyboard', "
                           "500, NULL)->'data')",
                           P(u)),
                   5);
  assert_int_equal(sql_int("SELECT jsonb_array_length(genq_jobs_list($1, 'failed', NULL, 10, "
                           "NULL)->'data')",
                           P(u)),
                   0);
  assert_audit_clean();
}

static void test_audit_reports_a_balance_that_disagrees_with_the_ledger(void **state) {
  char *u = new_user();
  grant(u, "5");
  sql_do("BEGIN", NOP);
  sql_do("UPDATE accounts SET balance = balance + 1 WHERE user_id = $1", P(u));
  char *check = sql_val("SELECT check_name FROM genq_audit() WHERE subject = $1", P(u));
  sql_do("ROLLBACK", NOP);
  assert_string_equal(check, "balance_vs_ledger");
  assert_audit_clean();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grant_is_idempotent_per_key),
      cmocka_unit_test(test_submit_holds_the_full_price),
      cmocka_unit_test(test_insufficient_credits_is_gq402_and_creates_nothing),
      cmocka_unit_test(test_step_succeed_captures_exactly_once),
      cmocka_unit_test(test_a_resent_step_success_recognises_its_own_commit),
      cmocka_unit_test(test_fail_releases_what_is_held),
      cmocka_unit_test(test_requeue_waits_then_fails_after_max_attempts),
      cmocka_unit_test(test_stale_epoch_is_fenced_after_reclaim),
      cmocka_unit_test(test_idempotency_key_same_body_same_job_other_body_gq409),
      cmocka_unit_test(test_campaign_of_three_scenes_costs_1_plus_30_plus_8),
      cmocka_unit_test(test_two_connections_racing_for_the_last_credits_one_wins),
      cmocka_unit_test(test_two_workers_claiming_one_job_one_wins),
      cmocka_unit_test(test_cancel_releases_the_hold_and_fences_the_worker),
      cmocka_unit_test(test_refs_of_ended_jobs_are_released_once),
      cmocka_unit_test(test_illegal_transition_raises_gq500),
      cmocka_unit_test(test_queue_position_moves_up_as_jobs_ahead_leave),
      cmocka_unit_test(test_jobs_list_pages_newest_first),
      cmocka_unit_test(test_audit_reports_a_balance_that_disagrees_with_the_ledger),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
