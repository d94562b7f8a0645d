/* The dead-letter set and operator retry in PostgreSQL
 * (schema/0006_dead_letters.sql, SPEC §5, §6), driven through the same SQL
 * functions the workers and genqctl call, against the real server at
 * GENQ_DATABASE_URL. Every test uses fresh users (d-<pid>-<time>-<n>) and
 * ends by checking that genq_audit() finds nothing wrong with this run's
 * accounts and jobs. */
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

static char *submit(const char *user, const char *kind, const char *input,
                    const char *max_attempts) {
  return sql_val("SELECT job->>'id' FROM genq_submit_job($1, $2, $3, NULL, NULL, NULL, $4)",
                 P(user, kind, input, max_attempts));
}

/* Claims the job the way genq-worker does (three arguments: the default
 * max_reclaims); returns the new epoch, or NULL when not claimable. */
static char *claim(const char *job) {
  PGresult *r = sql_on(conn, "SELECT epoch FROM genq_claim_job($1::uuid, 'w1', 60::int)", P(job));
  char *e = PQntuples(r) ? val_keep(PQgetvalue(r, 0, 0)) : NULL;
  PQclear(r);
  return e;
}

/* The worker's requeue after a retryable error of a step. */
static char *requeue(const char *job, const char *epoch, const char *step) {
  return sql_val("SELECT genq_job_requeue($1::uuid, $2::bigint, 0, 'provider_error', "
                 "'HTTP 500 from the provider', $3)",
                 P(job, epoch, step));
}

static void lapse(const char *job) {
  sql_do("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1", P(job));
}

static int is_dead(const char *job) {
  return sql_int("SELECT count(*) FROM genq_dead_list(NULL, NULL, NULL) WHERE id = $1", P(job)) ==
         1;
}

static long long job_ledger_rows(const char *job) {
  return sql_int("SELECT count(*) FROM ledger WHERE job_id = $1", P(job));
}

/* Drives a fresh job through claim + requeue until its attempts run out. */
static void exhaust(const char *job, const char *step, int attempts) {
  for (int i = 1; i <= attempts; i++) {
    char *e = claim(job);
    assert_non_null(e);
    assert_string_equal(requeue(job, e, step), i < attempts ? "queued" : "failed");
  }
}

static int group_setup(void **state) {
  return pg_connect(getenv("GENQ_DATABASE_URL"), "d");
}

static int group_teardown(void **state) {
  pg_disconnect();
  return 0;
}

/* ---- into the dead-letter set ---- */

static void test_attempts_used_up_on_retryable_errors_land_in_the_dead_set(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}", "3");
  exhaust(job, "image", 3);
  assert_string_equal(job_field(job, "{status}"), "failed");
  assert_non_null(job_field(job, "{dead_at}"));
  assert_true(is_dead(job));
  PGresult *r = sql_on(conn,
                       "SELECT kind, attempt, max_attempts, reclaims, error_code, error_message, "
                       "user_id FROM genq_dead_list('image', now() - interval '1 minute', 100000) "
                       "WHERE id = $1",
                       P(job));
  assert_int_equal(PQntuples(r), 1);
  assert_string_equal(PQgetvalue(r, 0, 0), "image");
  assert_string_equal(PQgetvalue(r, 0, 1), "3");
  assert_string_equal(PQgetvalue(r, 0, 2), "3");
  assert_string_equal(PQgetvalue(r, 0, 3), "0");
  assert_string_equal(PQgetvalue(r, 0, 4), "provider_error");
  assert_string_equal(PQgetvalue(r, 0, 5), "HTTP 500 from the provider");
  assert_string_equal(PQgetvalue(r, 0, 6), u);
  PQclear(r);
  /* the failing step carries the error; everything held went back */
  assert_string_equal(job_field(job, "{steps,0,status}"), "failed");
  assert_int_equal(job_int(job, "{cost,held}"), 0);
  assert_int_equal(job_int(job, "{cost,released}"), 2);
  assert_int_equal(held(u), 0);
  assert_int_equal(balance(u), 10);
  assert_audit_clean();
}

static void test_a_refusal_is_plain_failed_not_dead(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}", "3");
  char *e = claim(job);
  assert_non_null(e);
  assert_string_equal(sql_val("SELECT genq_job_fail($1, $2, 'image', 'content_policy', "
                              "'refused', false)::text",
                              P(job, e)),
                      "failed");
  assert_string_equal(job_field(job, "{status}"), "failed");
  assert_null(job_field(job, "{dead_at}"));
  assert_false(is_dead(job));
  assert_audit_clean();
}

static void test_dead_list_filters_by_kind_and_since_newest_first(void **state) {
  char *u = new_user();
  grant(u, "30");
  char *older = submit(u, "image", "{\"prompt\":\"p\"}", "1");
  exhaust(older, "image", 1);
  char *newer = submit(u, "image", "{\"prompt\":\"p\"}", "1");
  exhaust(newer, "image", 1);
  char *video = submit(u, "video", "{\"prompt\":\"p\"}", "1");
  exhaust(video, "video", 1);
  sql_do("UPDATE jobs SET dead_at = now() - interval '2 hours' WHERE id = $1", P(older));
  const char *mine =
      "SELECT string_agg(id::text, ',' ORDER BY ord) FROM "
      "genq_dead_list($1, now() - $2::interval, $3::int) WITH ORDINALITY AS d(id, user_id, "
      "kind, attempt, max_attempts, reclaims, retries, error_code, error_message, "
      "dead_at, ord) WHERE user_id = $4";
  char both[128];
  snprintf(both, sizeof both, "%s,%s", newer, older);
  assert_string_equal(sql_val(mine, P("image", NULL, NULL, u)), both);
  assert_string_equal(sql_val(mine, P("image", "1 hour", NULL, u)), newer);
  assert_string_equal(sql_val(mine, P("video", NULL, NULL, u)), video);
  assert_null(sql_val(mine, P("storyboard", NULL, NULL, u)));
  /* newest first over all users: a limit of 1 gives the newest dead job */
  assert_int_equal(sql_int("SELECT count(*) FROM genq_dead_list(NULL, NULL, 1)", NOP), 1);
  assert_audit_clean();
}

static void test_reclaims_past_the_limit_bury_the_job_as_worker_lost(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "video", "{\"prompt\":\"p\"}", "10");
  char *e = claim(job);
  assert_non_null(e);
  assert_string_equal(sql_val("SELECT genq_step_begin($1, $2, 'video')::text", P(job, e)),
                      "running");
  /* three reclaims are allowed by default (the worker's three-argument call) */
  for (int i = 1; i <= 3; i++) {
    lapse(job);
    e = claim(job);
    assert_non_null(e);
    assert_int_equal(sql_int("SELECT reclaims FROM jobs WHERE id = $1", P(job)), i);
  }
  lapse(job);
  assert_null(claim(job));
  assert_string_equal(job_field(job, "{status}"), "failed");
  assert_string_equal(job_field(job, "{error,code}"), "worker_lost");
  assert_string_equal(job_field(job, "{error,retryable}"), "true");
  assert_non_null(strstr(job_field(job, "{error,message}"), "dying with their worker"));
  assert_true(is_dead(job));
  assert_string_equal(job_field(job, "{steps,0,status}"), "canceled");
  assert_int_equal(job_int(job, "{attempt}"), 4);
  /* the lost worker is fenced out; its hold was released */
  assert_null(sql_val("SELECT genq_step_succeed($1, $2, 'video', '{}', NULL, NULL)", P(job, e)));
  assert_int_equal(job_int(job, "{cost,released}"), 10);
  assert_int_equal(held(u), 0);
  assert_int_equal(balance(u), 10);
  assert_audit_clean();
}

static void test_max_reclaims_is_a_parameter(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}", "10");
  const char *q = "SELECT count(*) FROM genq_claim_job($1, 'w2', 60, $2::int)";
  assert_int_equal(sql_int(q, P(job, "0")), 1); /* a first claim is no reclaim */
  lapse(job);
  assert_int_equal(sql_int(q, P(job, "0")), 0);
  assert_string_equal(job_field(job, "{error,code}"), "worker_lost");
  assert_true(is_dead(job));
  assert_string_equal(sql_state(q, P(job, "-1")), "22023");
  assert_audit_clean();
}

static void test_a_reclaim_with_no_attempt_left_is_dead_lease_expired(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}", "1");
  assert_non_null(claim(job));
  lapse(job);
  assert_null(claim(job));
  assert_string_equal(job_field(job, "{status}"), "failed");
  assert_string_equal(job_field(job, "{error,code}"), "lease_expired");
  assert_true(is_dead(job));
  assert_int_equal(held(u), 0);
  assert_audit_clean();
}

/* ---- retry ---- */

/* A one-scene campaign (storyboard 1 + video 10 + lip-sync 8 = 19) whose
 * storyboard succeeded and whose video ran out of attempts: retried, it
 * holds the 18 it had not captured, and finishes capturing exactly 19. */
static void test_retry_holds_price_minus_captured_and_keeps_succeeded_steps(void **state) {
  char u[96], job[40]; /* copies: many queries follow, the value slots rotate */
  snprintf(u, sizeof u, "%s", new_user());
  grant(u, "20");
  snprintf(job, sizeof job, "%s", submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":1}", "1"));
  char *e = claim(job);
  assert_non_null(e);
  assert_string_equal(sql_val("SELECT genq_step_succeed($1, $2, 'storyboard', '{\"title\":\"t\"}', "
                              "'{\"storyboard\":{\"title\":\"t\"}}', NULL)",
                              P(job, e)),
                      "running");
  assert_string_equal(sql_val("SELECT genq_step_begin($1, $2, 'video_1')::text", P(job, e)),
                      "running");
  assert_string_equal(
      sql_val("SELECT genq_step_checkpoint($1, $2, 'video_1', 'gen-v')::text", P(job, e)),
      "running");
  assert_string_equal(requeue(job, e, "video_1"), "failed");
  assert_true(is_dead(job));
  assert_int_equal(job_int(job, "{cost,captured}"), 1);
  assert_int_equal(job_int(job, "{cost,released}"), 18);
  assert_int_equal(balance(u), 19);
  assert_int_equal(held(u), 0);
  long long rows = job_ledger_rows(job);
  long long old_epoch = sql_int("SELECT epoch FROM jobs WHERE id = $1", P(job));

  char *after = sql_val("SELECT genq_job_retry($1, NULL)::text", P(job));
  assert_non_null(strstr(after, "\"status\": \"queued\""));
  assert_string_equal(job_field(job, "{status}"), "queued");
  assert_null(job_field(job, "{dead_at}"));
  assert_false(is_dead(job));
  assert_int_equal(job_int(job, "{attempt}"), 0);
  assert_int_equal(job_int(job, "{max_attempts}"), 1);
  assert_int_equal(sql_int("SELECT epoch FROM jobs WHERE id = $1", P(job)), old_epoch + 1);
  assert_string_equal(job_field(job, "{error,code}"), "provider_error"); /* the last error */
  assert_int_equal(job_int(job, "{cost,held}"), 18);
  assert_int_equal(job_int(job, "{cost,captured}"), 1);
  assert_int_equal(job_int(job, "{cost,released}"), 0);
  assert_int_equal(held(u), 18);
  assert_int_equal(balance(u), 19);
  /* exactly one new ledger row: the hold of retry 1 */
  assert_int_equal(job_ledger_rows(job), rows + 1);
  char key[96];
  snprintf(key, sizeof key, "job:%s:hold:retry:1", job);
  assert_string_equal(
      sql_val("SELECT movement || ' ' || balance_delta || ' ' || held_delta FROM ledger "
              "WHERE idem_key = $1 AND job_id = $2 AND user_id = $3",
              P(key, job, u)),
      "hold 0 18");
  /* steps: the storyboard stays succeeded, the failed video starts afresh */
  assert_string_equal(job_field(job, "{steps,0,status}"), "succeeded");
  assert_string_equal(job_field(job, "{steps,1,status}"), "pending");
  assert_null(job_field(job, "{steps,1,provider_ref}"));
  assert_null(job_field(job, "{steps,1,error}"));
  assert_string_equal(job_field(job, "{steps,2,status}"), "pending");
  assert_string_equal(job_field(job, "{output,storyboard,title}"), "t");
  /* the relay sends it: due now, not dispatched */
  assert_int_equal(
      sql_int("SELECT count(*) FROM genq_undispatched(0, 100000) WHERE id = $1", P(job)), 1);
  assert_audit_clean();

  /* the retried run succeeds and captures the rest, nothing twice */
  e = claim(job);
  assert_non_null(e);
  assert_int_equal(job_int(job, "{attempt}"), 1);
  assert_string_equal(
      sql_val("SELECT genq_step_succeed($1, $2, 'video_1', '{}', NULL, NULL)", P(job, e)),
      "running");
  assert_string_equal(
      sql_val("SELECT genq_step_succeed($1, $2, 'lipsync', '{}', NULL, NULL)", P(job, e)),
      "succeeded");
  assert_int_equal(job_int(job, "{cost,captured}"), 19);
  assert_int_equal(job_int(job, "{cost,held}"), 0);
  assert_int_equal(job_int(job, "{cost,released}"), 0);
  assert_null(job_field(job, "{error}"));
  assert_int_equal(balance(u), 1);
  assert_int_equal(held(u), 0);
  assert_audit_clean();
  /* a succeeded job cannot be retried */
  assert_string_equal(sql_state("SELECT genq_job_retry($1, NULL)", P(job)), "GQ409");
}

static void test_each_retry_holds_and_releases_under_keys_of_its_own(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}", "2");
  exhaust(job, "image", 2);
  for (int n = 1; n <= 2; n++) {
    sql_do("SELECT genq_job_retry($1, 1)", P(job));
    assert_int_equal(job_int(job, "{max_attempts}"), 1);
    assert_int_equal(held(u), 2);
    exhaust(job, "image", 1); /* dead again after its one attempt */
    assert_true(is_dead(job));
    assert_int_equal(job_int(job, "{attempt}"), 1); /* the counter restarted */
    assert_int_equal(held(u), 0);
    assert_audit_clean();
  }
  PGresult *r = sql_on(conn,
                       "SELECT string_agg(replace(idem_key, 'job:' || job_id || ':', ''), ' ' "
                       "ORDER BY id) FROM ledger WHERE job_id = $1",
                       P(job));
  assert_string_equal(PQgetvalue(r, 0, 0),
                      "hold release hold:retry:1 release:retry:1 hold:retry:2 release:retry:2");
  PQclear(r);
  assert_int_equal(balance(u), 10);
  assert_string_equal(sql_state("SELECT genq_job_retry($1, 0)", P(job)), "22023");
  assert_string_equal(sql_state("SELECT genq_job_retry($1, 101)", P(job)), "22023");
}

static void test_retry_without_enough_credits_is_gq402_and_changes_nothing(void **state) {
  char *u = new_user();
  grant(u, "2");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}", "1");
  exhaust(job, "image", 1);
  char *other = submit(u, "image", "{\"prompt\":\"p\"}", "1"); /* holds the last 2 credits */
  char *before = sql_val("SELECT to_jsonb(j)::text FROM jobs j WHERE id = $1", P(job));
  char *steps = sql_val("SELECT jsonb_agg(to_jsonb(s) ORDER BY idx)::text FROM job_steps s "
                        "WHERE job_id = $1",
                        P(job));
  long long rows = sql_int("SELECT count(*) FROM ledger WHERE user_id = $1", P(u));
  assert_string_equal(sql_state("SELECT genq_job_retry($1, NULL)", P(job)), "GQ402");
  assert_string_equal(sql_val("SELECT to_jsonb(j)::text FROM jobs j WHERE id = $1", P(job)),
                      before);
  assert_string_equal(sql_val("SELECT jsonb_agg(to_jsonb(s) ORDER BY idx)::text FROM job_steps s "
                              "WHERE job_id = $1",
                              P(job)),
                      steps);
  assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE user_id = $1", P(u)), rows);
  assert_int_equal(held(u), 2);
  assert_true(is_dead(job));
  assert_audit_clean();
  /* once the other job gives its credits back, the retry goes through */
  sql_do("SELECT genq_job_cancel($1, $2)", P(u, other));
  assert_string_equal(sql_val("SELECT genq_job_retry($1, NULL)->>'status'", P(job)), "queued");
  assert_int_equal(held(u), 2);
  assert_audit_clean();
}

static void test_only_a_failed_job_can_be_retried(void **state) {
  char *u = new_user();
  grant(u, "10");
  const char *retry = "SELECT genq_job_retry($1, NULL)";
  char *queued = submit(u, "image", "{\"prompt\":\"p\"}", "1");
  assert_string_equal(sql_state(retry, P(queued)), "GQ409");
  assert_non_null(claim(queued));
  assert_string_equal(sql_state(retry, P(queued)), "GQ409"); /* running */
  sql_do("SELECT genq_job_cancel($1, $2)", P(u, queued));
  assert_string_equal(sql_state(retry, P(queued)), "GQ409"); /* canceled */
  assert_string_equal(job_field(queued, "{status}"), "canceled");
  assert_string_equal(sql_state(retry, P("01a2194f-39aa-7f8d-a5b2-121d8227cfe8")), "GQ404");
  /* a plain failure (not dead) can be retried too */
  char *refused = submit(u, "image", "{\"prompt\":\"p\"}", "1");
  char *e = claim(refused);
  sql_do("SELECT genq_job_fail($1, $2, 'image', 'content_policy', 'refused', false)",
         P(refused, e));
  assert_string_equal(sql_val("SELECT genq_job_retry($1, NULL)->>'status'", P(refused)), "queued");
  assert_int_equal(held(u), 2);
  assert_audit_clean();
}

static void test_failed_stays_terminal_outside_genq_job_retry(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}", "1");
  exhaust(job, "image", 1);
  const char *move = "UPDATE jobs SET status = 'queued', dead_at = NULL WHERE id = $1";
  /* a fresh session, where genq.retry_job was never set (NULL, not '') */
  PGconn *mine = conn;
  conn = PQconnectdb(getenv("GENQ_DATABASE_URL"));
  assert_int_equal(PQstatus(conn), CONNECTION_OK);
  assert_null(sql_val("SELECT current_setting('genq.retry_job', true)", NOP));
  const char *fresh = sql_state(move, P(job));
  PQfinish(conn);
  conn = mine;
  assert_string_equal(fresh, "GQ500");
  /* and one where a retry ran before (the setting reverted to '') */
  sql_do("SELECT genq_job_retry($1, NULL)", P(job));
  exhaust(job, "image", 1);
  assert_string_equal(sql_state(move, P(job)), "GQ500");
  /* the exception names one job: another job's retry does not open it */
  sql_do("BEGIN", NOP);
  sql_do("SELECT set_config('genq.retry_job', '01a2194f-39aa-7f8d-a5b2-121d8227cfe8', true)", NOP);
  const char *st = sql_state(move, P(job));
  sql_do("ROLLBACK", NOP);
  assert_string_equal(st, "GQ500");
  assert_string_equal(job_field(job, "{status}"), "failed");
  assert_audit_clean();
}

/* A lip-sync job of a new user (20 credits) with max_attempts attempts, its
 * uploads stored, claimed (*epoch), its step begun and checkpointed with
 * Hedra job hedra-1; audio gets the audio upload's id. */
static char *lipsync_with_a_hedra_job(const char *u, const char *max_attempts, char **epoch,
                                      char audio[40]) {
  grant(u, "20");
  char ids[2][40];
  for (int i = 0; i < 2; i++) {
    snprintf(ids[i], sizeof ids[i], "%s", sql_val("SELECT gen_random_uuid()::text", NOP));
    sql_do("SELECT genq_upload_create($1, $2::uuid, $3, 100, repeat('a', 64), 'k/' || $2)",
           P(u, ids[i], i ? "audio/mpeg" : "image/png"));
  }
  memcpy(audio, ids[1], 40);
  char in[256];
  snprintf(in, sizeof in, "{\"image_upload_id\":\"%s\",\"audio_upload_id\":\"%s\"}", ids[0],
           ids[1]);
  char *job = submit(u, "lipsync", in, max_attempts);
  char *e = claim(job);
  assert_non_null(e);
  sql_do("SELECT genq_step_begin($1, $2, 'lipsync')", P(job, e));
  sql_do("SELECT genq_step_checkpoint($1, $2, 'lipsync', 'hedra-1')", P(job, e));
  *epoch = e;
  return job;
}

/* A lip-sync whose job failed while its Hedra job was running (a worker's
 * lease lapsed past its attempts, another step failed, ...): Hedra has no
 * cancel, so nothing deletes its generation and the ref must not be marked
 * released; the retry then resumes it under the same idempotency key
 * instead of paying Hedra for a new one. */
static void test_lipsync_retry_resumes_a_hedra_job_nothing_deleted(void **state) {
  char *u = new_user(), *e, audio[40];
  char *job = lipsync_with_a_hedra_job(u, "1", &e, audio);
  assert_string_equal(
      sql_val("SELECT genq_job_fail($1, $2, NULL, 'worker_lost', 'gone', true)", P(job, e)),
      "failed");
  assert_string_equal(job_field(job, "{steps,0,status}"), "canceled");
  assert_int_equal(sql_int("SELECT count(*) FROM genq_refs_to_release($1, 100)", P(job)), 0);
  assert_string_equal(
      sql_val("SELECT genq_job_retry($1, NULL)->'steps'->0->>'provider_ref'", P(job)), "hedra-1");
  assert_audit_clean();
}

/* A Hedra job that failed or is gone is forgotten (a checkpoint of no ref):
 * its id becomes the step's retry_key (the next submit's key names it), and
 * a second forget keeps it. Fenced like any checkpoint. */
static void test_a_forgotten_provider_job_becomes_the_retry_key(void **state) {
  char *u = new_user(), *e, audio[40];
  char *job = lipsync_with_a_hedra_job(u, "3", &e, audio);
  assert_string_equal(sql_val("SELECT genq_step_checkpoint($1, $2, 'lipsync', NULL)", P(job, e)),
                      "running");
  const char *q = "SELECT coalesce(provider_ref, '-') || ' ' || coalesce(retry_key, '-') FROM "
                  "job_steps WHERE job_id = $1";
  assert_string_equal(sql_val(q, P(job)), "- hedra-1");
  assert_string_equal(sql_val("SELECT genq_step_checkpoint($1, $2, 'lipsync', NULL)", P(job, e)),
                      "running");
  assert_string_equal(sql_val(q, P(job)), "- hedra-1");
  char stale[24];
  snprintf(stale, sizeof stale, "%lld", atoll(e) - 1);
  sql_do("SELECT genq_step_checkpoint($1, $2, 'lipsync', 'hedra-2')", P(job, e));
  assert_null(sql_val("SELECT genq_step_checkpoint($1, $2, 'lipsync', NULL)", P(job, stale)));
  assert_string_equal(sql_val(q, P(job)), "hedra-2 hedra-1");
  assert_string_equal(job_field(job, "{steps,0,provider_ref}"), "hedra-2");
  assert_audit_clean();
}

/* A lip-sync whose Hedra generation failed: the retry gives its step a
 * fresh idempotency key (no ref, retry_key r1); with an input upload gone, the
 * retry is refused (GQ410) and changes nothing. */
static void test_lipsync_retry_fresh_key_and_refused_when_an_upload_is_gone(void **state) {
  char *u = new_user(), *e, audio[40];
  char *job = lipsync_with_a_hedra_job(u, "1", &e, audio);
  assert_string_equal(requeue(job, e, "lipsync"), "failed");
  sql_do("SELECT genq_job_retry($1, NULL)", P(job));
  assert_string_equal(sql_val("SELECT coalesce(provider_ref, '-') || ' ' || retry_key FROM "
                              "job_steps WHERE job_id = $1",
                              P(job)),
                      "- r1");
  exhaust(job, "lipsync", 1);
  sql_do("UPDATE uploads SET deleted_at = now() WHERE id = $1::uuid", P(audio));
  long long rows = job_ledger_rows(job);
  assert_string_equal(sql_state("SELECT genq_job_retry($1, NULL)", P(job)), "GQ410");
  assert_int_equal(job_ledger_rows(job), rows);
  assert_true(is_dead(job));
  assert_int_equal(held(u), 0);
  assert_audit_clean();
}

/* ---- the audit ---- */

static void test_audit_checks_each_job_against_its_ledger_rows(void **state) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u, "image", "{\"prompt\":\"p\"}", "1");
  char key[96];
  snprintf(key, sizeof key, "job:%s:hold", job);
  sql_do("BEGIN", NOP);
  /* the account still agrees with the ledger and the jobs; the job does not */
  sql_do("UPDATE ledger SET held_delta = held_delta + 1 WHERE idem_key = $1", P(key));
  sql_do("UPDATE ledger SET held_delta = held_delta - 1 WHERE id = (SELECT min(id) FROM ledger "
         "WHERE user_id = $1)",
         P(u));
  char *check = sql_val("SELECT string_agg(check_name, ',' ORDER BY check_name) FROM genq_audit() "
                        "WHERE subject IN ($1, $2)",
                        P(job, u));
  sql_do("ROLLBACK", NOP);
  /* the grant row that took the held delta has the wrong shape, too */
  assert_string_equal(check, "job_vs_ledger,ledger_row_shape");
  assert_audit_clean();
}

/* The audit's verdict on u and job after changes made in a transaction that
 * is rolled back: the checks that failed, comma-separated, or "clean". */
static char *audit_after(const char *u, const char *job, const char *const *sql, int n) {
  sql_do("BEGIN", NOP);
  for (int i = 0; i < n; i++)
    sql_do(sql[i], P(job, u));
  char *check = sql_val("SELECT string_agg(DISTINCT check_name, ',' ORDER BY check_name) FROM "
                        "genq_audit() WHERE subject IN ($1, $2)",
                        P(job, u));
  sql_do("ROLLBACK", NOP);
  return check ? check : "clean";
}

/* Violations that kept every account total and every job total in step:
 * a hold or release row that moved a balance (the account moved to match),
 * an adjustment on a job, a step whose captured disagrees with its own
 * capture row, and a ledger row whose job is gone. */
static void test_audit_checks_every_ledger_row_of_every_job(void **state) {
  char *u = new_user();
  grant(u, "30");
  char *job = submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":1}", "1");
  char *e = claim(job);
  assert_non_null(e);
  sql_do("SELECT genq_step_begin($1, $2, 'storyboard')", P(job, e));
  sql_do("SELECT genq_step_succeed($1, $2, 'storyboard', '{}', NULL, NULL)", P(job, e));
  assert_audit_clean();

  const char *hold_moved_balance[] = {
      "UPDATE ledger SET balance_delta = 1 WHERE idem_key = 'job:' || $1 || ':hold' "
      "AND $2::text IS NOT NULL",
      "UPDATE accounts SET balance = balance + 1 WHERE user_id = $2 AND $1::text IS NOT NULL"};
  assert_string_equal(audit_after(u, job, hold_moved_balance, 2), "job_vs_ledger,ledger_row_shape");

  const char *adjusted[] = {
      "INSERT INTO ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key) "
      "VALUES ($2, $1::uuid, 'adjust', 5, 0, 'test-adjust:' || $1::text)",
      "UPDATE accounts SET balance = balance + 5 WHERE user_id = $2 AND $1::text IS NOT NULL"};
  assert_string_equal(audit_after(u, job, adjusted, 2), "job_vs_ledger,ledger_row_shape");

  /* the job's captured still equals its steps' sum, and its capture rows' */
  const char *step_moved[] = {
      "UPDATE job_steps SET captured = 0 WHERE job_id = $1 AND name = 'storyboard' "
      "AND $2::text IS NOT NULL",
      "UPDATE job_steps SET captured = 1 WHERE job_id = $1 AND name = 'video_1' "
      "AND $2::text IS NOT NULL"};
  assert_string_equal(audit_after(u, job, step_moved, 2), "step_vs_ledger");

  const char *job_gone[] = {
      "INSERT INTO ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key) "
      "VALUES ($2, gen_random_uuid(), 'hold', 0, 0, 'test-gone:' || $1)"};
  assert_string_equal(audit_after(u, job, job_gone, 1), "ledger_job_missing");
  assert_audit_clean();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_attempts_used_up_on_retryable_errors_land_in_the_dead_set),
      cmocka_unit_test(test_a_refusal_is_plain_failed_not_dead),
      cmocka_unit_test(test_dead_list_filters_by_kind_and_since_newest_first),
      cmocka_unit_test(test_reclaims_past_the_limit_bury_the_job_as_worker_lost),
      cmocka_unit_test(test_max_reclaims_is_a_parameter),
      cmocka_unit_test(test_a_reclaim_with_no_attempt_left_is_dead_lease_expired),
      cmocka_unit_test(test_retry_holds_price_minus_captured_and_keeps_succeeded_steps),
      cmocka_unit_test(test_each_retry_holds_and_releases_under_keys_of_its_own),
      cmocka_unit_test(test_retry_without_enough_credits_is_gq402_and_changes_nothing),
      cmocka_unit_test(test_only_a_failed_job_can_be_retried),
      cmocka_unit_test(test_failed_stays_terminal_outside_genq_job_retry),
      cmocka_unit_test(test_lipsync_retry_fresh_key_and_refused_when_an_upload_is_gone),
      cmocka_unit_test(test_lipsync_retry_resumes_a_hedra_job_nothing_deleted),
      cmocka_unit_test(test_a_forgotten_provider_job_becomes_the_retry_key),
      cmocka_unit_test(test_audit_checks_each_job_against_its_ledger_rows),
      cmocka_unit_test(test_audit_checks_every_ledger_row_of_every_job),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
