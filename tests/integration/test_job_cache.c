/* job_cache against the real PostgreSQL at GENQ_DATABASE_URL: what it keeps,
 * and that a notice, a lost subscription, the TTL and the bounds each make
 * the next reader go to the database. "Kept" is observable: a kept job is
 * answered before job_cache_get returns; a read is answered only once the
 * loop runs. Changes are made behind the cache's back on a second
 * connection, committed before the notice, as writers do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/pg_helpers.h"
#include "job_cache.h"

static const char *db_url;

typedef struct {
  int calls, ok;
  char user[128];
  int found;
  int max_attempts; /* from the JSON */
} answer;

static void on_answer(const job_cache_read *r, void *arg) {
  answer *a = arg;
  a->calls++;
  a->ok = r->ok;
  a->found = r->user != NULL;
  if (!r->user) return;
  snprintf(a->user, sizeof a->user, "%s", r->user);
  assert_int_equal(strlen(r->json), r->len);
  cJSON *j = cJSON_ParseWithLength(r->json, r->len);
  assert_non_null(j);
  a->max_attempts = cJSON_GetObjectItem(j, "max_attempts")->valueint;
  cJSON_Delete(j);
}

typedef struct {
  uv_loop_t loop;
  db *d;
  job_cache *c;
} fixture;

static void fx_open(fixture *f, const job_cache_options *o) {
  assert_int_equal(uv_loop_init(&f->loop), 0);
  db_options dbo = {.conninfo = db_url, .pool_size = 2};
  assert_int_equal(db_open(&f->d, &f->loop, &dbo), 0);
  assert_int_equal(job_cache_open(&f->c, &f->loop, f->d, o), 0);
  job_cache_set_live(f->c, 1);
}

static void run_until(fixture *f, const int *flag, int want) {
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  while (*flag < want) {
    assert_true(uv_hrtime() < deadline);
    uv_run(&f->loop, UV_RUN_ONCE);
  }
}

static void closed(void *arg) {
  ++*(int *)arg;
}

static void fx_close(fixture *f) {
  int done = 0;
  job_cache_close(f->c);
  db_close(f->d, closed, &done);
  run_until(f, &done, 1);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Reads job through the cache; returns 1 when it was kept (answered at
 * once), 0 when it was read from the database. */
static int get(fixture *f, const char *job, answer *a) {
  *a = (answer){0};
  assert_int_equal(job_cache_get(f->c, job, on_answer, a), 0);
  int kept = a->calls == 1;
  run_until(f, &a->calls, 1);
  assert_true(a->ok);
  return kept;
}

static char *new_job(const char *user, const char *max_attempts) {
  return sql_val("SELECT job->>'id' FROM genq_submit_job($1, 'storyboard', "
                 "'{\"prompt\": \"p\", \"scenes\": 3}', NULL, NULL, NULL, $2::int)",
                 P(user, max_attempts));
}

static void set_attempts(const char *job, const char *n) {
  sql_do("UPDATE jobs SET max_attempts = $2::int WHERE id = $1", P(job, n));
}

static char *job_of_new_user(void) {
  char *u = new_user();
  grant(u, "10");
  return new_job(u, "5");
}

static void kept_until_a_notice(void **state) {
  fixture f;
  fx_open(&f, NULL);
  char *u = new_user();
  grant(u, "10");
  char *job = new_job(u, "5");
  answer a;
  assert_false(get(&f, job, &a)); /* first read: the database */
  assert_true(a.found);
  assert_string_equal(a.user, u);
  assert_int_equal(a.max_attempts, 5);
  set_attempts(job, "7");
  assert_true(get(&f, job, &a)); /* kept: the change has not been announced */
  assert_int_equal(a.max_attempts, 5);
  job_cache_forget(f.c, job);
  assert_false(get(&f, job, &a)); /* the notice: read again */
  assert_int_equal(a.max_attempts, 7);
  assert_true(get(&f, job, &a));
  assert_int_equal(job_cache_entries(f.c), 1);
  fx_close(&f);
}

static void a_read_overtaken_by_a_notice_is_not_kept(void **state) {
  fixture f;
  fx_open(&f, NULL);
  char *job = job_of_new_user();
  answer first = {0}, after = {0};
  /* the read is on its way when the change commits and its notice comes */
  assert_int_equal(job_cache_get(f.c, job, on_answer, &first), 0);
  set_attempts(job, "8");
  job_cache_forget(f.c, job);
  /* a reader after the notice waits for a read begun after it */
  assert_int_equal(job_cache_get(f.c, job, on_answer, &after), 0);
  assert_int_equal(first.calls + after.calls, 0);
  run_until(&f, &after.calls, 1);
  assert_int_equal(first.calls, 1);
  assert_int_equal(after.max_attempts, 8);
  /* only the second read was kept */
  answer a;
  assert_true(get(&f, job, &a));
  assert_int_equal(a.max_attempts, 8);

  /* the same without a reader after the notice: nothing is kept */
  assert_int_equal(job_cache_get(f.c, job, on_answer, &a), 0); /* kept: answered */
  job_cache_forget(f.c, job);
  answer overtaken = {0};
  assert_int_equal(job_cache_get(f.c, job, on_answer, &overtaken), 0);
  set_attempts(job, "9");
  job_cache_forget(f.c, job);
  run_until(&f, &overtaken.calls, 1);
  assert_false(get(&f, job, &a));
  assert_int_equal(a.max_attempts, 9);
  fx_close(&f);
}

/* The first reader's read is held inside PostgreSQL (after its snapshot,
 * on a lock of job_steps) while the job changes and commits on a third
 * connection, announced to no one; two more readers come. Had they read for
 * themselves they would see the change; sharing the first read, they don't. */
static void readers_of_one_job_share_a_read(void **state) {
  fixture f;
  fx_open(&f, NULL);
  char *job = job_of_new_user();
  PGconn *other = PQconnectdb(db_url);
  assert_int_equal(PQstatus(other), CONNECTION_OK);
  sql_do("BEGIN", NOP);
  sql_do("LOCK TABLE job_steps IN ACCESS EXCLUSIVE MODE", NOP);
  answer a[3] = {0};
  assert_int_equal(job_cache_get(f.c, job, on_answer, &a[0]), 0);
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  for (;;) { /* asked on the other connection: a transaction sees one stats snapshot */
    PGresult *w = sql_on(other,
                         "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                         "AND query LIKE '%genq_job_read%'",
                         NOP);
    int waiting = PQntuples(w);
    PQclear(w);
    if (waiting) break;
    assert_true(uv_hrtime() < deadline);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    uv_sleep(5);
  }
  PQclear(sql_on(other, "UPDATE jobs SET max_attempts = 6 WHERE id = $1", P(job)));
  PQfinish(other);
  for (int i = 1; i < 3; i++)
    assert_int_equal(job_cache_get(f.c, job, on_answer, &a[i]), 0);
  sql_do("ROLLBACK", NOP);
  run_until(&f, &a[2].calls, 1);
  run_until(&f, &a[0].calls, 1);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(a[i].calls, 1);
    assert_int_equal(a[i].max_attempts, 5);
  }
  answer b;
  assert_true(get(&f, job, &b)); /* kept: no notice came */
  assert_int_equal(b.max_attempts, 5);
  job_cache_forget(f.c, job);
  assert_false(get(&f, job, &b));
  assert_int_equal(b.max_attempts, 6);
  fx_close(&f);
}

static void nothing_kept_while_notices_may_be_lost(void **state) {
  fixture f;
  fx_open(&f, NULL);
  char *job = job_of_new_user();
  answer a;
  assert_false(get(&f, job, &a));
  assert_true(get(&f, job, &a));
  job_cache_set_live(f.c, 0); /* the subscription went down */
  assert_false(get(&f, job, &a));
  assert_false(get(&f, job, &a));
  assert_int_equal(job_cache_entries(f.c), 0);
  /* back: a read that began while down is not kept either */
  answer down = {0};
  assert_int_equal(job_cache_get(f.c, job, on_answer, &down), 0);
  job_cache_set_live(f.c, 1);
  run_until(&f, &down.calls, 1);
  assert_false(get(&f, job, &a));
  assert_true(get(&f, job, &a));
  /* subscribed again: what was kept is dropped */
  job_cache_set_live(f.c, 1);
  assert_false(get(&f, job, &a));
  fx_close(&f);
}

static void missing_jobs_are_not_kept(void **state) {
  fixture f;
  fx_open(&f, NULL);
  answer a;
  const char *nobody = "00000000-0000-7000-8000-000000000000";
  assert_false(get(&f, nobody, &a));
  assert_false(a.found);
  assert_false(get(&f, nobody, &a));
  assert_int_equal(job_cache_entries(f.c), 0);
  fx_close(&f);
}

static void bounded_by_entries_and_ttl(void **state) {
  fixture f;
  job_cache_options o = {.max_entries = 2, .ttl_ms = 200};
  fx_open(&f, &o);
  char *j1 = job_of_new_user(), *j2 = job_of_new_user(), *j3 = job_of_new_user();
  answer a;
  assert_false(get(&f, j1, &a));
  assert_false(get(&f, j2, &a));
  assert_true(get(&f, j1, &a));  /* j1 is now the most recent */
  assert_false(get(&f, j3, &a)); /* evicts j2, the least recently read */
  assert_int_equal(job_cache_entries(f.c), 2);
  assert_true(get(&f, j1, &a));
  assert_true(get(&f, j3, &a));
  assert_false(get(&f, j2, &a));
  /* older than the TTL: read again */
  uv_sleep(250);
  uv_update_time(&f.loop);
  assert_false(get(&f, j3, &a));
  assert_true(get(&f, j3, &a));
  fx_close(&f);
}

static void bounded_by_bytes(void **state) {
  fixture f;
  /* a job's JSON is ~600 bytes: one fits under an eighth of 8 KiB, three
   * do not fit in it together */
  job_cache_options o = {.max_bytes = 8192};
  fx_open(&f, &o);
  char *jobs[16];
  answer a;
  for (int i = 0; i < 16; i++) {
    jobs[i] = job_of_new_user();
    assert_false(get(&f, jobs[i], &a));
    assert_true(job_cache_bytes(f.c) <= 8192);
  }
  assert_true(job_cache_entries(f.c) < 16);
  assert_true(job_cache_entries(f.c) >= 1);
  assert_true(get(&f, jobs[15], &a));
  assert_false(get(&f, jobs[0], &a));
  fx_close(&f);
}

static void closing_with_a_read_on_its_way_answers_it(void **state) {
  fixture f;
  fx_open(&f, NULL);
  char *job = job_of_new_user();
  answer a = {0};
  assert_int_equal(job_cache_get(f.c, job, on_answer, &a), 0);
  job_cache_close(f.c);
  int done = 0;
  db_close(f.d, closed, &done);
  run_until(&f, &done, 1);
  assert_int_equal(a.calls, 1); /* answered (found, or failed by the close) */
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

static int group_setup(void **state) {
  db_url = getenv("GENQ_DATABASE_URL");
  return pg_connect(db_url, "jcache");
}

static int group_teardown(void **state) {
  pg_disconnect();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kept_until_a_notice),
      cmocka_unit_test(a_read_overtaken_by_a_notice_is_not_kept),
      cmocka_unit_test(readers_of_one_job_share_a_read),
      cmocka_unit_test(nothing_kept_while_notices_may_be_lost),
      cmocka_unit_test(missing_jobs_are_not_kept),
      cmocka_unit_test(bounded_by_entries_and_ttl),
      cmocka_unit_test(bounded_by_bytes),
      cmocka_unit_test(closing_with_a_read_on_its_way_answers_it),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
