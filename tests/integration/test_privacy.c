/* Privacy rights and retention (schema/functions/privacy.sql,
 * docs/privacy.md) against the real PostgreSQL at GENQ_DATABASE_URL:
 * genq_account_delete cancels every unfinished job as genq_job_cancel does
 * (epoch bumped, steps canceled, hold released), revokes the user's API
 * keys, is idempotent, and from then on submits (alone or in a batch beside
 * another user's) and uploads are refused GQ401; genq_export_page pages
 * every section in key order; genq_account_purge does nothing 29 days after
 * the deletion and, 31 days after, removes every row of the user and hands
 * back the stored objects' keys, nothing of another user; genq_ledger_fold
 * folds rows past 2 years into one carry row per account, whole jobs only,
 * with balances and the audit unchanged; genq_uploads_sweep takes the time.
 * Rows are made old by moving their times back, so that a fold touches this
 * run's accounts only. */
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

static const char *db_url;

static int group_setup(void **state) {
  (void)state;
  db_url = getenv("GENQ_DATABASE_URL");
  return pg_connect(db_url, "tp");
}

static int group_teardown(void **state) {
  (void)state;
  pg_disconnect();
  return 0;
}

#define SB "{\"prompt\":\"p\",\"scenes\":1}"

static char *submit(const char *user) {
  return sql_val(
      "SELECT job->>'id' FROM genq_submit_job($1, 'storyboard', $2, NULL, NULL, NULL, 3)",
      P(user, SB));
}

/* A storyboard job of user that succeeded (its step captured). */
static char *succeeded_job(const char *user) {
  char *job = submit(user);
  char *e = sql_val("SELECT epoch FROM genq_claim_job($1, 'w1', 60)", P(job));
  assert_non_null(e);
  sql_do("SELECT genq_step_begin($1, $2, 'storyboard')", P(job, e));
  assert_string_equal(sql_val("SELECT genq_step_succeed($1, $2, 'storyboard', '{\"n\":1}', "
                              "'{\"storyboard\":{}}', NULL)",
                              P(job, e)),
                      "succeeded");
  return job;
}

static char *add_key(const char *user) {
  return sql_val("INSERT INTO api_keys (id, user_id, name, hash, prefix) VALUES (genq_uuid7(), $1, "
                 "'k', sha256(convert_to($1 || random()::text, 'UTF8')), 'gq_test') "
                 "RETURNING id",
                 P(user));
}

static char *add_upload(const char *user) {
  char *id = sql_val("SELECT genq_uuid7()", NOP);
  char key[64];
  snprintf(key, sizeof key, "uploads/%s", id);
  sql_do("SELECT genq_upload_create($1, $2::uuid, 'image/png', 10, repeat('a', 64), $3)",
         P(user, id, key));
  return id;
}

static void add_asset(const char *user, const char *job, const char *step) {
  sql_do("INSERT INTO assets (id, user_id, job_id, step, kind, content_type, bytes, sha256, "
         "storage_key) SELECT x.id, $1, $2::uuid, $3, 'image', 'image/png', 5, repeat('b', 64), "
         "'assets/' || x.id FROM (SELECT gen_random_uuid() AS id) x",
         P(user, job, step));
}

static long long count_of(const char *table, const char *user) {
  char q[160];
  snprintf(q, sizeof q, "SELECT count(*) FROM %s WHERE user_id = $1", table);
  return sql_int(q, P(user));
}

/* ---- deletion ---- */

static void test_delete_cancels_releases_and_refuses(void **state) {
  (void)state;
  char *u = new_user(), *other = new_user();
  grant(u, "100");
  grant(other, "100");
  char *queued = submit(u), *running = submit(u), *done = succeeded_job(u);
  char *e = sql_val("SELECT epoch FROM genq_claim_job($1, 'w1', 60)", P(running));
  assert_non_null(e);
  sql_do("SELECT genq_step_begin($1, $2, 'storyboard')", P(running, e));
  char *key = add_key(u);
  assert_int_equal(held(u), 2);

  char *r = sql_val("SELECT genq_account_delete($1)", P(u));
  assert_int_equal(sql_int("SELECT jsonb_array_length($1::jsonb -> 'canceled')", P(r)), 2);
  assert_string_equal(sql_val("SELECT $1::jsonb ->> 'keys_revoked'", P(r)), "1");
  assert_string_equal(sql_val("SELECT (($1::jsonb ->> 'purge_after')::timestamptz - "
                              "($1::jsonb ->> 'deleted_at')::timestamptz)::text",
                              P(r)),
                      "30 days");
  /* each as genq_job_cancel does it */
  const char *jobs[] = {queued, running};
  for (int i = 0; i < 2; i++) {
    assert_string_equal(job_field(jobs[i], "{status}"), "canceled");
    assert_int_equal(job_int(jobs[i], "{cost,held}"), 0);
    assert_int_equal(job_int(jobs[i], "{cost,released}"), 1);
    assert_string_equal(job_field(jobs[i], "{steps,0,status}"), "canceled");
  }
  assert_true(sql_int("SELECT epoch FROM jobs WHERE id = $1", P(running)) > atoll(e));
  assert_string_equal(job_field(done, "{status}"), "succeeded");
  assert_int_equal(held(u), 0);
  assert_int_equal(balance(u), 99);
  assert_non_null(sql_val("SELECT revoked_at FROM api_keys WHERE id = $1", P(key)));
  assert_audit_clean();

  /* again: the same answer, nothing changed */
  long long rows = count_of("ledger", u);
  char *again = sql_val("SELECT genq_account_delete($1)", P(u));
  assert_string_equal(sql_val("SELECT $1::jsonb ->> 'deleted_at'", P(again)),
                      sql_val("SELECT $1::jsonb ->> 'deleted_at'", P(r)));
  assert_string_equal(sql_val("SELECT $1::jsonb -> 'canceled'", P(again)), "[]");
  assert_string_equal(sql_val("SELECT $1::jsonb ->> 'keys_revoked'", P(again)), "0");
  assert_int_equal(count_of("ledger", u), rows);

  /* no new work */
  assert_string_equal(
      sql_state("SELECT * FROM genq_submit_job($1, 'storyboard', $2, NULL, NULL, NULL, 3)",
                P(u, SB)),
      "GQ401");
  char batch[512];
  snprintf(batch, sizeof batch,
           "[{\"user\":\"%s\",\"kind\":\"storyboard\",\"input\":" SB ",\"max_attempts\":3},"
           "{\"user\":\"%s\",\"kind\":\"storyboard\",\"input\":" SB ",\"max_attempts\":3}]",
           u, other);
  PGresult *b =
      sql_on(conn, "SELECT err_state, job->>'id' FROM genq_submit_jobs($1) ORDER BY ord", P(batch));
  assert_int_equal(PQntuples(b), 2);
  assert_string_equal(PQgetvalue(b, 0, 0), "GQ401");
  assert_true(PQgetisnull(b, 1, 0));
  assert_false(PQgetisnull(b, 1, 1));
  PQclear(b);
  assert_string_equal(
      sql_state("SELECT genq_upload_create($1, genq_uuid7(), 'image/png', 10, repeat('a', 64), "
                "'uploads/x')",
                P(u)),
      "GQ401");
  assert_int_equal(count_of("jobs", u), 3);
  assert_int_equal(count_of("uploads", u), 0);
  assert_int_equal(held(u), 0);
  assert_audit_clean();
}

/* ---- export ---- */

static void test_export_pages(void **state) {
  (void)state;
  char *u = new_user(), *other = new_user();
  grant(u, "100");
  grant(other, "100");
  for (int i = 0; i < 5; i++)
    submit(u);
  submit(other);
  add_key(u);
  char *after = NULL;
  int pages = 0, total = 0;
  char last[64] = "";
  for (;;) {
    PGresult *r =
        sql_on(conn, "SELECT chunk, next, n FROM genq_export_page($1, 'jobs', $2, 2)", P(u, after));
    assert_int_equal(PQntuples(r), 1);
    int n = atoi(PQgetvalue(r, 0, 2));
    if (n == 0) {
      assert_true(PQgetisnull(r, 0, 0));
      PQclear(r);
      break;
    }
    char *chunk = val_keep(PQgetvalue(r, 0, 0));
    after = val_keep(PQgetvalue(r, 0, 1));
    PQclear(r);
    pages++;
    total += n;
    assert_true(n <= 2);
    /* the chunk is n job objects of the user, in id order, the last = next */
    char arr[VAL_MAX];
    snprintf(arr, sizeof arr, "[%s]", chunk);
    assert_int_equal(sql_int("SELECT jsonb_array_length($1::jsonb)", P(arr)), n);
    assert_int_equal(sql_int("SELECT count(*) FROM jsonb_array_elements($1::jsonb) j "
                             "JOIN jobs x ON x.id = (j ->> 'id')::uuid AND x.user_id = $2",
                             P(arr, u)),
                     n);
    assert_string_equal(sql_val("SELECT $1::jsonb -> -1 ->> 'id'", P(arr)), after);
    assert_true(strcmp(after, last) > 0);
    snprintf(last, sizeof last, "%s", after);
  }
  assert_int_equal(pages, 3);
  assert_int_equal(total, 5);
  long long rows = count_of("ledger", u);
  assert_int_equal(sql_int("SELECT n FROM genq_export_page($1, 'ledger', NULL, 1000)", P(u)), rows);
  char *keys = sql_val("SELECT chunk FROM genq_export_page($1, 'api_keys', NULL, 10)", P(u));
  assert_non_null(strstr(keys, "\"prefix\": \"gq_test\""));
  assert_null(strstr(keys, "hash"));
  assert_string_equal(sql_state("SELECT * FROM genq_export_page($1, 'secrets', NULL, 10)", P(u)),
                      "22023");
  char *acct = sql_val("SELECT genq_export_account($1)", P(u));
  assert_int_equal(sql_int("SELECT ($1::jsonb ->> 'held')::int", P(acct)), 5);
  assert_string_equal(sql_val("SELECT $1::jsonb ->> 'user_id'", P(acct)), u);
}

/* ---- the purge ---- */

/* Calls genq_account_purge at now + days until it has nothing left;
 * returns the keys it handed back for user, space-separated and sorted. */
static char *purge_all(const char *days, const char *user) {
  static char keys[8192];
  keys[0] = 0;
  for (int calls = 0; calls < 1000; calls++) {
    PGresult *r = sql_on(conn,
                         "SELECT user_id, what, storage_key FROM genq_account_purge(now() + "
                         "make_interval(days => $1::int), 2)",
                         P(days));
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
      if (strcmp(PQgetvalue(r, i, 0), user) == 0 && !PQgetisnull(r, i, 2)) {
        strncat(keys, PQgetvalue(r, i, 2), sizeof keys - strlen(keys) - 2);
        strcat(keys, " ");
      }
    PQclear(r);
    if (n == 0) break;
  }
  return sql_val("SELECT coalesce(string_agg(k, ' ' ORDER BY k), '') FROM "
                 "unnest(string_to_array(trim($1), ' ')) k",
                 P(keys));
}

/* Every table the purge empties, counted for user. */
static long long user_rows(const char *user) {
  static const char *const tables[] = {"jobs",
                                       "uploads",
                                       "assets",
                                       "api_keys",
                                       "webhook_secrets",
                                       "submit_buckets",
                                       "upload_days",
                                       "stripe_customers",
                                       "stripe_subscriptions",
                                       "webhook_deliveries"};
  long long n = sql_int("SELECT count(*) FROM job_steps s JOIN jobs j ON j.id = s.job_id "
                        "WHERE j.user_id = $1",
                        P(user));
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
    n += count_of(tables[i], user);
  return n;
}

/* Things of every kind the purge removes. */
static void populate(const char *u) {
  grant(u, "100");
  for (int i = 0; i < 3; i++)
    add_asset(u, succeeded_job(u), "storyboard");
  add_upload(u);
  char *swept = add_upload(u);
  sql_do("UPDATE uploads SET deleted_at = now() WHERE id = $1", P(swept)); /* bytes gone */
  add_key(u);
  sql_do("INSERT INTO webhook_secrets (user_id, key_id, sealed) VALUES ($1, 'k1', 's')", P(u));
  sql_do("INSERT INTO submit_buckets (user_id, tokens, at) VALUES ($1, 1, now()) "
         "ON CONFLICT (user_id) DO NOTHING",
         P(u));
  sql_do("INSERT INTO stripe_customers (customer_id, user_id) VALUES ('cus_' || $1, $1)", P(u));
  sql_do("INSERT INTO stripe_subscriptions (subscription_id, user_id, status) "
         "VALUES ('sub_' || $1, $1, 'active')",
         P(u));
}

static void test_purge_after_30_days(void **state) {
  (void)state;
  char *u = new_user(), *other = new_user();
  populate(u);
  populate(other);
  sql_do("SELECT genq_account_delete($1)", P(u));
  long long mine = user_rows(u), theirs = user_rows(other);
  assert_true(mine > 10);

  assert_string_equal(purge_all("29", u), "");
  assert_int_equal(user_rows(u), mine);
  assert_null(sql_val("SELECT purged_at FROM accounts WHERE user_id = $1", P(u)));

  /* 31 days on: the assets' keys and the one upload still stored */
  char *want =
      sql_val("SELECT string_agg(k, ' ' ORDER BY k) FROM ("
              "SELECT storage_key AS k FROM assets WHERE user_id = $1 UNION ALL "
              "SELECT storage_key FROM uploads WHERE user_id = $1 AND deleted_at IS NULL) x",
              P(u));
  assert_string_equal(purge_all("31", u), want);
  assert_int_equal(user_rows(u), 0);
  assert_non_null(sql_val("SELECT purged_at FROM accounts WHERE user_id = $1", P(u)));
  assert_non_null(sql_val("SELECT deleted_at FROM accounts WHERE user_id = $1", P(u)));
  assert_true(count_of("ledger", u) > 0); /* kept 2 years */
  assert_int_equal(user_rows(other), theirs);
  assert_null(sql_val("SELECT deleted_at FROM accounts WHERE user_id = $1", P(other)));
  /* the tombstone stays refused; a purge again finds nothing */
  assert_string_equal(
      sql_state("SELECT * FROM genq_submit_job($1, 'storyboard', $2, NULL, NULL, NULL, 3)",
                P(u, SB)),
      "GQ401");
  assert_string_equal(purge_all("31", u), "");
  assert_audit_clean();
}

/* ---- the ledger fold ---- */

static long long ledger_sum(const char *user, const char *col) {
  char q[128];
  snprintf(q, sizeof q, "SELECT coalesce(sum(%s), 0) FROM ledger WHERE user_id = $1", col);
  return sql_int(q, P(user));
}

static void test_ledger_fold_after_2_years(void **state) {
  (void)state;
  char *u = new_user(), *other = new_user();
  grant(u, "100");
  grant(u, "50");
  grant(other, "30");
  char *a = succeeded_job(u), *b = succeeded_job(u);
  char *canceled = submit(u);
  sql_do("SELECT genq_job_cancel($1, $2)", P(u, canceled));
  char *queued = submit(u);      /* unfinished: its hold stays */
  char *late = succeeded_job(u); /* its capture is recent: the whole job stays */
  /* 2 years and a day ago, all but late's capture (and other's rows) */
  sql_do("UPDATE ledger SET created_at = created_at - interval '2 years 1 day' "
         "WHERE user_id = $1 AND NOT (job_id = $2 AND movement = 'capture')",
         P(u, late));
  sql_do("UPDATE jobs SET created_at = created_at - interval '2 years 1 day', "
         "finished_at = finished_at - interval '2 years 1 day' WHERE user_id = $1 AND id <> $2",
         P(u, late));
  long long bal = balance(u), hld = held(u), before = count_of("ledger", u);
  long long other_rows = count_of("ledger", other);
  assert_int_equal(bal, 147);
  assert_int_equal(hld, 1);

  long long folded = 0, n;
  int calls = 0;
  while ((n = sql_int("SELECT genq_ledger_fold(now(), 3)", NOP)) > 0 && calls++ < 1000)
    folded += n;
  /* grants 2, a and b 2 rows each (hold, capture), canceled 2 (hold, release) */
  assert_true(folded >= 8);
  assert_int_equal(
      sql_int("SELECT count(*) FROM ledger WHERE user_id = $1 AND movement = 'carry'", P(u)), 1);
  assert_int_equal(count_of("ledger", u), before - 8 + 1);
  assert_int_equal(
      sql_int("SELECT count(*) FROM ledger WHERE job_id = ANY(ARRAY[$1, $2, $3]::uuid[])",
              P(a, b, canceled)),
      0);
  assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE job_id = $1", P(queued)), 1);
  assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE job_id = $1", P(late)), 2);
  assert_int_equal(balance(u), bal);
  assert_int_equal(held(u), hld);
  assert_int_equal(ledger_sum(u, "balance_delta"), bal);
  assert_int_equal(ledger_sum(u, "held_delta"), hld);
  assert_int_equal(ledger_sum(u, "debt_delta"), 0);
  assert_int_equal(count_of("ledger", other), other_rows);
  assert_non_null(sql_val("SELECT ledger_carried_before FROM accounts WHERE user_id = $1", P(u)));
  assert_audit_clean();
  /* a later fold adds to the one carry row */
  sql_do("SELECT genq_job_cancel($1, $2)", P(u, queued));
  sql_do("UPDATE ledger SET created_at = created_at - interval '2 years 1 day' "
         "WHERE job_id = $1 AND movement = 'release'",
         P(queued));
  sql_do("UPDATE jobs SET finished_at = finished_at - interval '2 years 1 day' WHERE id = $1",
         P(queued));
  while (sql_int("SELECT genq_ledger_fold(now(), 3)", NOP) > 0 && calls++ < 1000) {
  }
  assert_int_equal(
      sql_int("SELECT count(*) FROM ledger WHERE user_id = $1 AND movement = 'carry'", P(u)), 1);
  assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE job_id = $1", P(queued)), 0);
  assert_int_equal(ledger_sum(u, "balance_delta"), balance(u));
  assert_int_equal(held(u), 0);
  assert_audit_clean();
  /* the audit still catches a folded job that disagrees with its steps */
  sql_do("UPDATE job_steps SET captured = 0 WHERE job_id = $1", P(a));
  assert_true(sql_int("SELECT count(*) FROM genq_audit() WHERE subject = $1", P(a)) > 0);
  sql_do("UPDATE job_steps SET captured = price WHERE job_id = $1", P(a));
  assert_audit_clean();
}

/* ---- uploads: the sweep takes the time ---- */

static void test_uploads_sweep_takes_the_time(void **state) {
  (void)state;
  char *u = new_user();
  char *up = add_upload(u);
  const char *q = "SELECT count(*) FROM genq_uploads_sweep(now() + make_interval(hours => "
                  "$1::int), 1000) s WHERE s.id = $2::uuid";
  assert_int_equal(sql_int(q, P("23", up)), 0);
  assert_null(sql_val("SELECT deleted_at FROM uploads WHERE id = $1", P(up)));
  long long got = 0;
  for (int i = 0; i < 100 && !got; i++)
    got = sql_int(q, P("25", up));
  assert_int_equal(got, 1);
  assert_non_null(sql_val("SELECT deleted_at FROM uploads WHERE id = $1", P(up)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_delete_cancels_releases_and_refuses),
      cmocka_unit_test(test_export_pages),
      cmocka_unit_test(test_purge_after_30_days),
      cmocka_unit_test(test_ledger_fold_after_2_years),
      cmocka_unit_test(test_uploads_sweep_takes_the_time),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
