/* Submissions in batches (genq_submit_jobs, schema/functions/jobs.sql; the
 * API's side is api/submit_batch.c), against the real server at
 * GENQ_DATABASE_URL: each submission of a batch gets its own answer and
 * nothing of a refused one is written; a user's submissions are taken in
 * batch order against what is still available; an idempotency key used
 * twice in one batch, and by two submits at once (settled under the
 * account's lock); the refusals' order; two batches over the same users in
 * opposite orders, forced to interleave, do not deadlock; a batch calls no
 * SQL function it cannot inline. Every test ends with assert_audit_clean(). */
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

#define BATCH_SQL                                                                                  \
  "SELECT ord, job->>'id', created, err_state, err_message, err_field "                            \
  "FROM genq_submit_jobs($1::jsonb) ORDER BY ord"

/* One submission of a batch, as the API writes it. */
static char *item(const char *user, const char *kind, const char *input, const char *key,
                  const char *hash) {
  char buf[1024];
  char k[300] = "", h[300] = "";
  if (key) snprintf(k, sizeof k, ",\"idempotency_key\":\"%s\"", key);
  if (hash) snprintf(h, sizeof h, ",\"request_hash\":\"%s\"", hash);
  snprintf(buf, sizeof buf, "{\"user\":\"%s\",\"kind\":\"%s\",\"input\":%s,\"max_attempts\":5%s%s}",
           user, kind, input, k, h);
  return val_keep(buf);
}

static PGresult *run_batch_on(PGconn *c, const char *batch) {
  return sql_on(c, BATCH_SQL, P(batch));
}

static long long jobs_of(const char *user) {
  return sql_int("SELECT count(*) FROM jobs WHERE user_id = $1", P(user));
}

/* The answer of a batch sent with PQsendQueryParams on c (which must
 * succeed: what names it in the failure message), once it is done. */
static PGresult *batch_result(PGconn *c, const char *what) {
  PGresult *r, *last = NULL;
  while ((r = PQgetResult(c))) {
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
      fail_msg("%s failed: %s", what, PQresultErrorMessage(r));
    PQclear(last);
    last = r;
  }
  assert_non_null(last);
  return last;
}

static int group_setup(void **state) {
  db_url = getenv("GENQ_DATABASE_URL");
  return pg_connect(db_url, "sb");
}

static int group_teardown(void **state) {
  pg_disconnect();
  return 0;
}

static void assert_created(PGresult *r, int row) {
  assert_false(PQgetisnull(r, row, 1));
  assert_string_equal(PQgetvalue(r, row, 2), "t");
  assert_true(PQgetisnull(r, row, 3));
}

static void assert_refused(PGresult *r, int row, const char *state, const char *field) {
  assert_true(PQgetisnull(r, row, 1));
  assert_string_equal(PQgetvalue(r, row, 3), state);
  if (field)
    assert_string_equal(PQgetvalue(r, row, 5), field);
  else
    assert_true(PQgetisnull(r, row, 5));
}

/* One 402, one 409, one 400 naming its field, others created: each its own
 * answer, and of the refused ones nothing written. */
static void test_a_batch_with_mixed_outcomes_answers_each_on_its_own(void **state) {
  char *rich = new_user(), *poor = new_user(), *keyed = new_user(), *odd = new_user();
  grant(rich, "100");
  grant(poor, "1");
  grant(keyed, "10");
  grant(odd, "10");
  /* keyed used key k1 before, with another body */
  assert_non_null(sql_val("SELECT job->>'id' FROM genq_submit_job($1, 'storyboard', "
                          "'{\"prompt\":\"a\"}', NULL, 'k1', 'h-first', 5)",
                          P(keyed)));
  char batch[8192];
  snprintf(batch, sizeof batch, "[%s,%s,%s,%s,%s,%s]",
           item(rich, "storyboard", "{\"prompt\":\"one\"}", NULL, "h1"),
           item(poor, "video", "{\"prompt\":\"too dear\"}", NULL, "h2"),
           item(keyed, "storyboard", "{\"prompt\":\"b\"}", "k1", "h-other"),
           item(odd, "lipsync",
                "{\"image_upload_id\":\"00000000-0000-0000-0000-000000000000\","
                "\"audio_upload_id\":\"00000000-0000-0000-0000-000000000001\"}",
                NULL, "h4"),
           item(poor, "storyboard", "{\"prompt\":\"fits\"}", NULL, "h5"),
           item(rich, "image", "{\"prompt\":\"two\"}", NULL, "h6"));
  PGresult *r = run_batch_on(conn, batch);
  assert_int_equal(PQntuples(r), 6);
  for (int i = 0; i < 6; i++)
    assert_int_equal(atoi(PQgetvalue(r, i, 0)), i + 1);
  assert_created(r, 0);
  assert_refused(r, 1, "GQ402", NULL);
  assert_refused(r, 2, "GQ409", NULL);
  assert_refused(r, 3, "GQ400", "input.image_upload_id");
  assert_non_null(strstr(PQgetvalue(r, 3, 4), "input.image_upload_id"));
  assert_created(r, 4); /* after its own 402, poor's storyboard still fits */
  assert_created(r, 5);
  PQclear(r);

  assert_int_equal(jobs_of(rich), 2);
  assert_int_equal(held(rich), 3);
  assert_int_equal(jobs_of(poor), 1);
  assert_int_equal(held(poor), 1);
  assert_int_equal(jobs_of(keyed), 1);
  assert_int_equal(held(keyed), 1);
  assert_int_equal(jobs_of(odd), 0);
  assert_int_equal(held(odd), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM job_uploads ju JOIN jobs j ON j.id = ju.job_id "
                           "WHERE j.user_id = $1",
                           P(odd)),
                   0);
  assert_audit_clean();
}

/* Within a user, submissions are taken in batch order, each against what
 * the ones before it left: the one that does not fit is 402, the rest go. */
static void test_one_users_submissions_are_taken_in_order_against_what_is_left(void **state) {
  char *u = new_user();
  grant(u, "13");
  char batch[8192];
  snprintf(batch, sizeof batch, "[%s,%s,%s,%s,%s]",
           item(u, "video", "{\"prompt\":\"1\"}", NULL, NULL),       /* 10: 3 left */
           item(u, "image", "{\"prompt\":\"2\"}", NULL, NULL),       /* 2: 1 left */
           item(u, "image", "{\"prompt\":\"3\"}", NULL, NULL),       /* 402 */
           item(u, "storyboard", "{\"prompt\":\"4\"}", NULL, NULL),  /* 1: 0 left */
           item(u, "storyboard", "{\"prompt\":\"5\"}", NULL, NULL)); /* 402 */
  PGresult *r = run_batch_on(conn, batch);
  assert_int_equal(PQntuples(r), 5);
  assert_created(r, 0);
  assert_created(r, 1);
  assert_refused(r, 2, "GQ402", NULL);
  assert_created(r, 3);
  assert_refused(r, 4, "GQ402", NULL);
  PQclear(r);
  assert_int_equal(balance(u), 13);
  assert_int_equal(held(u), 13);
  assert_int_equal(jobs_of(u), 3);
  assert_int_equal(
      sql_int("SELECT count(*) FROM ledger WHERE user_id = $1 AND movement = 'hold'", P(u)), 3);
  assert_audit_clean();
}

/* The same key twice in one batch: the second is a replay of the first, or
 * 409 when its body differs; a key whose first use was refused is free. */
static void test_an_idempotency_key_twice_in_one_batch(void **state) {
  char *u = new_user(), *v = new_user();
  grant(u, "10");
  grant(v, "1");
  char batch[8192];
  snprintf(batch, sizeof batch, "[%s,%s,%s,%s,%s,%s]",
           item(u, "storyboard", "{\"prompt\":\"a\"}", "same", "ha"),
           item(u, "storyboard", "{\"prompt\":\"a\"}", "same", "ha"),
           item(u, "storyboard", "{\"prompt\":\"b\"}", "same", "hb"),
           item(v, "image", "{\"prompt\":\"dear\"}", "same", "hc"), /* 402: nothing kept */
           item(v, "storyboard", "{\"prompt\":\"cheap\"}", "same", "hd"),
           item(v, "storyboard", "{\"prompt\":\"cheap\"}", "same", "hd"));
  PGresult *r = run_batch_on(conn, batch);
  assert_int_equal(PQntuples(r), 6);
  assert_created(r, 0);
  assert_string_equal(PQgetvalue(r, 1, 2), "f");
  assert_string_equal(PQgetvalue(r, 1, 1), PQgetvalue(r, 0, 1));
  assert_refused(r, 2, "GQ409", NULL);
  assert_refused(r, 3, "GQ402", NULL);
  assert_created(r, 4);
  assert_string_equal(PQgetvalue(r, 5, 2), "f");
  assert_string_equal(PQgetvalue(r, 5, 1), PQgetvalue(r, 4, 1));
  char *first = val_keep(PQgetvalue(r, 0, 1));
  PQclear(r);
  assert_int_equal(jobs_of(u), 1);
  assert_int_equal(held(u), 1);
  assert_int_equal(jobs_of(v), 1);
  assert_int_equal(held(v), 1);
  /* and the next batch replays the committed one */
  snprintf(batch, sizeof batch, "[%s]", item(u, "storyboard", "{\"prompt\":\"a\"}", "same", "ha"));
  r = run_batch_on(conn, batch);
  assert_string_equal(PQgetvalue(r, 0, 1), first);
  assert_string_equal(PQgetvalue(r, 0, 2), "f");
  PQclear(r);
  assert_audit_clean();
}

/* A new user's account is created with the batch (sign-up grant included),
 * bad arguments refuse only their own submission. */
static void test_new_users_and_bad_arguments_in_a_batch(void **state) {
  char *u = new_user(), *w = new_user();
  char batch[8192];
  snprintf(batch, sizeof batch,
           "[%s,{\"user\":\"%s\",\"kind\":\"storyboard\",\"input\":[],\"max_attempts\":5},"
           "{\"user\":\"%s\",\"kind\":\"storyboard\",\"input\":{},\"max_attempts\":0},"
           "{\"user\":\"\",\"kind\":\"storyboard\",\"input\":{},\"max_attempts\":5},%s,%s]",
           item(u, "storyboard", "{\"prompt\":\"a\"}", NULL, NULL), w, w,
           item(w, "podcast", "{}", NULL, NULL),
           item(w, "campaign", "{\"scenes\":1e30}", NULL, NULL));
  /* a sign-up grant only this transaction sees (other tests share the database) */
  sql_do("BEGIN", NOP);
  char *was = sql_val("SELECT value FROM settings WHERE key = 'signup_grant'", NOP);
  sql_do("UPDATE settings SET value = '5' WHERE key = 'signup_grant'", NOP);
  PGresult *r = run_batch_on(conn, batch);
  sql_do("UPDATE settings SET value = $1 WHERE key = 'signup_grant'", P(was));
  sql_do("COMMIT", NOP);
  assert_int_equal(PQntuples(r), 6);
  assert_created(r, 0);
  for (int i = 1; i < 6; i++)
    assert_refused(r, i, "22023", NULL);
  PQclear(r);
  assert_int_equal(balance(u), 5);
  assert_int_equal(held(u), 1);
  assert_int_equal(balance(w), 5); /* its account exists, with its grant */
  assert_int_equal(jobs_of(w), 0);
  assert_audit_clean();
}

/* Two batches over the same users, listed in opposite orders, forced to
 * interleave: a third connection holds one account's lock while both
 * batches start; each batch locks its accounts in user_id order, so both
 * wait on that one row and neither holds the other's. Let go, both finish
 * (a deadlock would fail one with 40P01). */
static void test_two_batches_over_the_same_users_in_opposite_orders_do_not_deadlock(void **state) {
  char *a = new_user(), *b = new_user();
  grant(a, "10");
  grant(b, "10");
  PGconn *holder = PQconnectdb(db_url), *c1 = PQconnectdb(db_url), *c2 = PQconnectdb(db_url);
  assert_int_equal(PQstatus(holder), CONNECTION_OK);
  assert_int_equal(PQstatus(c1), CONNECTION_OK);
  assert_int_equal(PQstatus(c2), CONNECTION_OK);
  PQclear(sql_on(holder, "BEGIN", NOP));
  /* a < b: both batches would lock a first */
  PQclear(sql_on(holder, "SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE", P(a)));

  char ab[4096], ba[4096];
  snprintf(ab, sizeof ab, "[%s,%s]", item(a, "storyboard", "{\"prompt\":\"1\"}", NULL, NULL),
           item(b, "storyboard", "{\"prompt\":\"2\"}", NULL, NULL));
  snprintf(ba, sizeof ba, "[%s,%s]", item(b, "storyboard", "{\"prompt\":\"3\"}", NULL, NULL),
           item(a, "storyboard", "{\"prompt\":\"4\"}", NULL, NULL));
  const char *p1[1] = {ab}, *p2[1] = {ba};
  assert_int_equal(PQsendQueryParams(c1, BATCH_SQL, 1, NULL, p1, NULL, NULL, 0), 1);
  assert_int_equal(PQsendQueryParams(c2, BATCH_SQL, 1, NULL, p2, NULL, NULL, 0), 1);
  /* both are blocked, on a's row: the first behind the holder, the second
   * behind the first */
  const char *waiting = "SELECT count(DISTINCT l.pid) FROM pg_locks l WHERE NOT l.granted "
                        "AND l.pid IN ($1, $2)";
  char p1s[16], p2s[16];
  snprintf(p1s, sizeof p1s, "%d", PQbackendPID(c1));
  snprintf(p2s, sizeof p2s, "%d", PQbackendPID(c2));
  for (int i = 0; i < 250 && sql_int(waiting, P(p1s, p2s)) < 2; i++)
    usleep(20000);
  assert_int_equal(sql_int(waiting, P(p1s, p2s)), 2);
  PQclear(sql_on(holder, "COMMIT", NOP));

  PGconn *cs[2] = {c1, c2};
  for (int i = 0; i < 2; i++) {
    PGresult *last = batch_result(cs[i], i == 0 ? "batch 1" : "batch 2");
    assert_int_equal(PQntuples(last), 2);
    assert_created(last, 0);
    assert_created(last, 1);
    PQclear(last);
  }
  PQfinish(holder);
  PQfinish(c1);
  PQfinish(c2);
  assert_int_equal(held(a), 2);
  assert_int_equal(held(b), 2);
  assert_audit_clean();
}

/* Two submits of one user with one idempotency key, the second sent while
 * the first's transaction is still open: the key is looked up under the
 * account's lock, so the second waits for the first's commit and replays
 * its job (looked up before the lock, it would find nothing, insert, and
 * fail its whole batch on the unique key). */
static void test_concurrent_submits_with_one_key_replay_the_first(void **state) {
  char *u = new_user();
  grant(u, "10");
  PGconn *c1 = PQconnectdb(db_url), *c2 = PQconnectdb(db_url);
  assert_int_equal(PQstatus(c1), CONNECTION_OK);
  assert_int_equal(PQstatus(c2), CONNECTION_OK);
  char batch[4096];
  snprintf(batch, sizeof batch, "[%s]",
           item(u, "storyboard", "{\"prompt\":\"once\"}", "one-key", "h1"));
  PQclear(sql_on(c1, "BEGIN", NOP));
  PGresult *r = run_batch_on(c1, batch);
  assert_created(r, 0);
  char *first = val_keep(PQgetvalue(r, 0, 1));
  PQclear(r);

  const char *p[1] = {batch};
  assert_int_equal(PQsendQueryParams(c2, BATCH_SQL, 1, NULL, p, NULL, NULL, 0), 1);
  char pid[16];
  snprintf(pid, sizeof pid, "%d", PQbackendPID(c2));
  const char *waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = $1";
  for (int i = 0; i < 250 && sql_int(waiting, P(pid)) < 1; i++)
    usleep(20000);
  assert_int_equal(sql_int(waiting, P(pid)), 1); /* behind c1's account lock */
  PQclear(sql_on(c1, "COMMIT", NOP));

  PGresult *last = batch_result(c2, "the second submit");
  assert_string_equal(PQgetvalue(last, 0, 1), first);
  assert_string_equal(PQgetvalue(last, 0, 2), "f");
  PQclear(last);
  PQfinish(c1);
  PQfinish(c2);
  assert_int_equal(jobs_of(u), 1);
  assert_int_equal(held(u), 1);
  assert_audit_clean();
}

/* The checks run in their documented order although the plan and the
 * uploads are checked before the account is locked and the key after: a
 * key reused with another request is GQ409 even when that request's plan
 * or upload is refused, and a replay is answered as the replay. */
static void test_a_reused_key_wins_over_a_refused_plan_or_upload(void **state) {
  char *u = new_user();
  grant(u, "10");
  char batch[8192];
  snprintf(batch, sizeof batch, "[%s]", item(u, "storyboard", "{\"prompt\":\"a\"}", "k", "h1"));
  PGresult *r = run_batch_on(conn, batch);
  assert_created(r, 0);
  PQclear(r);
  snprintf(batch, sizeof batch, "[%s,%s,%s]", item(u, "podcast", "{}", "k", "h2"),
           item(u, "lipsync", "{\"image_upload_id\":\"x\"}", "k", "h3"),
           item(u, "lipsync", "{\"image_upload_id\":\"x\"}", "k2", "h4"));
  r = run_batch_on(conn, batch);
  assert_int_equal(PQntuples(r), 3);
  assert_refused(r, 0, "GQ409", NULL);
  assert_refused(r, 1, "GQ409", NULL);
  assert_refused(r, 2, "GQ400", "input.image_upload_id"); /* a new key: its own refusal */
  PQclear(r);
  assert_int_equal(jobs_of(u), 1);
  assert_int_equal(held(u), 1);
  assert_audit_clean();
}

/* A batch numbers its queued jobs itself, each kind's in batch order right
 * after the jobs of that kind already queued (one count of arrivals per
 * kind), and the next arrival of the kind, a single submit, comes after
 * them. Kinds of their own (image, video) so that other tests' jobs do not
 * move the figures. */
static void test_a_batch_numbers_its_jobs_in_the_queue(void **state) {
  char *u = new_user();
  grant(u, "100");
  char batch[8192];
  snprintf(batch, sizeof batch, "[%s,%s,%s,%s,%s]",
           item(u, "image", "{\"prompt\":\"1\"}", NULL, NULL),
           item(u, "video", "{\"prompt\":\"2\"}", NULL, NULL),
           item(u, "image", "{\"prompt\":\"3\"}", NULL, NULL),
           item(u, "podcast", "{}", NULL, NULL), /* refused: no number */
           item(u, "image", "{\"prompt\":\"4\"}", NULL, NULL));
  sql_do("BEGIN", NOP); /* the counters as this transaction leaves them */
  long long before = sql_int("SELECT coalesce(sum(arrivals), 0) - coalesce(sum(departures), 0) "
                             "FROM queue_counts WHERE kind = 'image'",
                             NOP);
  PGresult *r = sql_on(conn,
                       "SELECT ord, (job->>'queue_position')::bigint, job->>'kind' "
                       "FROM genq_submit_jobs($1::jsonb) WHERE job IS NOT NULL ORDER BY ord",
                       P(batch));
  assert_int_equal(PQntuples(r), 4);
  assert_int_equal(atoll(PQgetvalue(r, 0, 1)), before + 1);
  assert_int_equal(atoll(PQgetvalue(r, 2, 1)), before + 2);
  assert_int_equal(atoll(PQgetvalue(r, 3, 1)), before + 3);
  assert_string_equal(PQgetvalue(r, 1, 2), "video");
  PQclear(r);
  r = sql_on(conn,
             "SELECT (job->>'queue_position')::bigint FROM genq_submit_job($1, 'image', "
             "'{\"prompt\":\"5\"}', NULL, NULL, NULL, 5)",
             P(u));
  assert_int_equal(atoll(PQgetvalue(r, 0, 0)), before + 4);
  PQclear(r);
  sql_do("ROLLBACK", NOP);
  assert_int_equal(jobs_of(u), 0);
}

/* genq_submit_job is the batch of one: its refusal is raised with the
 * SQLSTATE and the field. */
static void test_the_single_submit_raises_its_refusal(void **state) {
  char *u = new_user();
  grant(u, "1");
  const char *params[1] = {u};
  PGresult *r = PQexecParams(conn,
                             "SELECT * FROM genq_submit_job($1, 'lipsync', "
                             "'{\"image_upload_id\":\"x\"}', NULL, NULL, NULL, 5)",
                             1, NULL, params, NULL, NULL, 0);
  assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
  assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "GQ400");
  assert_string_equal(PQresultErrorField(r, PG_DIAG_COLUMN_NAME), "input.image_upload_id");
  PQclear(r);
  assert_string_equal(
      sql_state("SELECT * FROM genq_submit_job($1, 'video', '{}', NULL, NULL, NULL, 5)", P(u)),
      "GQ402");
  assert_int_equal(jobs_of(u), 0);
  assert_audit_clean();
}

/* The functions this session has called and not yet flushed to the
 * statistics, with the counts (track_functions = all counts SQL ones too):
 * funcid, name, language, calls. Within one transaction nothing is flushed,
 * so two readings give what ran between them. */
static PGresult *calls_pending(PGconn *c) {
  return sql_on(c,
                "SELECT f.funcid::text, p.proname, l.lanname, f.calls "
                "FROM pg_stat_xact_user_functions f JOIN pg_proc p ON p.oid = f.funcid "
                "JOIN pg_language l ON l.oid = p.prolang",
                NOP);
}

/* A batch calls no SQL-language function that PostgreSQL could not inline:
 * such a body is parsed and planned at every call (PostgreSQL 15), which
 * cost every batch 0.45 ms of 2.4 when the limits' state and save were SQL
 * functions (docs/schema.md). The second batch of the connection is the one
 * counted (the first plans the statements, and folding an immutable
 * function into a plan runs it once, as genq_idempotency_window's two),
 * and it takes every branch: a user whose plan limits submissions and one
 * whose plan does not, an Idempotency-Key, uploads checked. */
static void test_a_batch_calls_no_sql_function_it_cannot_inline(void **state) {
  char *free_user = new_user(), *unlimited = new_user();
  grant(free_user, "100");
  grant(unlimited, "100");
  sql_do("SELECT genq_limits_user_plan($1, 'unlimited')", P(unlimited));
  PGconn *c = PQconnectdb(db_url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  char batch[8192];
  PGresult *before = NULL;
  for (int round = 1; round <= 2; round++) {
    char key[32];
    snprintf(key, sizeof key, "inline-%d", round);
    snprintf(batch, sizeof batch, "[%s,%s,%s]",
             item(free_user, "storyboard", "{\"prompt\":\"a\"}", key, "h1"),
             item(unlimited, "storyboard", "{\"prompt\":\"b\"}", NULL, "h2"),
             item(free_user, "lipsync",
                  "{\"image_upload_id\":\"00000000-0000-0000-0000-000000000000\","
                  "\"audio_upload_id\":\"00000000-0000-0000-0000-000000000001\"}",
                  NULL, "h3"));
    if (round == 2) {
      PQclear(sql_on(c, "BEGIN", NOP));
      PQclear(sql_on(c, "SET LOCAL track_functions = 'all'", NOP));
      before = calls_pending(c);
    }
    PGresult *r = run_batch_on(c, batch);
    assert_int_equal(PQntuples(r), 3);
    assert_created(r, 0);
    assert_created(r, 1);
    assert_refused(r, 2, "GQ400", "input.image_upload_id");
    PQclear(r);
  }
  PGresult *after = calls_pending(c);
  int counted = 0, limits_saved = 0;
  for (int i = 0; i < PQntuples(after); i++) {
    long long calls = atoll(PQgetvalue(after, i, 3));
    for (int j = 0; j < PQntuples(before); j++)
      if (strcmp(PQgetvalue(before, j, 0), PQgetvalue(after, i, 0)) == 0)
        calls -= atoll(PQgetvalue(before, j, 3));
    const char *name = PQgetvalue(after, i, 1);
    if (calls > 0 && strcmp(PQgetvalue(after, i, 2), "sql") == 0)
      fail_msg("%s is a SQL function called %lld times, not inlined", name, calls);
    if (strcmp(name, "genq_submit_jobs") == 0) counted = (int)calls;
    if (strcmp(name, "genq_limits_submit_save") == 0) limits_saved = (int)calls;
  }
  PQclear(before);
  PQclear(after);
  assert_int_equal(counted, 1);      /* the counting is on */
  assert_int_equal(limits_saved, 1); /* the free plan's bucket was taken from */
  PQclear(sql_on(c, "COMMIT", NOP));
  PQfinish(c);
  assert_int_equal(jobs_of(free_user), 2);
  assert_int_equal(jobs_of(unlimited), 2);
  assert_audit_clean();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_batch_with_mixed_outcomes_answers_each_on_its_own),
      cmocka_unit_test(test_one_users_submissions_are_taken_in_order_against_what_is_left),
      cmocka_unit_test(test_an_idempotency_key_twice_in_one_batch),
      cmocka_unit_test(test_new_users_and_bad_arguments_in_a_batch),
      cmocka_unit_test(test_two_batches_over_the_same_users_in_opposite_orders_do_not_deadlock),
      cmocka_unit_test(test_concurrent_submits_with_one_key_replay_the_first),
      cmocka_unit_test(test_a_reused_key_wins_over_a_refused_plan_or_upload),
      cmocka_unit_test(test_a_batch_numbers_its_jobs_in_the_queue),
      cmocka_unit_test(test_the_single_submit_raises_its_refusal),
      cmocka_unit_test(test_a_batch_calls_no_sql_function_it_cannot_inline),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
