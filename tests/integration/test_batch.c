/* The worker's batch statements (schema/functions/leases.sql, steps.sql):
 * genq_claim_jobs, genq_steps_begin and genq_steps_succeed answer each job
 * of a batch on its own, fenced by its own epoch, and two batches over the
 * same jobs in opposite orders never deadlock. Against the real PostgreSQL
 * at GENQ_DATABASE_URL; the interleavings are forced with extra connections
 * and explicit row locks. Every test ends with the audit of this run's
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
#include <unistd.h>

#include "integration/pg_helpers.h"

static const char *db_url;

static char *submit(const char *user, const char *kind, const char *input, const char *attempts) {
  return sql_val("SELECT job->>'id' FROM genq_submit_job($1, $2, $3, NULL, NULL, NULL, $4)",
                 P(user, kind, input, attempts));
}

static char *storyboard_job(const char *user) {
  return submit(user, "storyboard", "{\"prompt\":\"p\",\"scenes\":1}", "5");
}

static char *claim(const char *job, const char *worker) {
  PGresult *r = sql_on(conn, "SELECT epoch FROM genq_claim_job($1, $2, 60)", P(job, worker));
  char *e = PQntuples(r) ? val_keep(PQgetvalue(r, 0, 0)) : NULL;
  PQclear(r);
  return e;
}

static char *array2(const char *a, const char *b) {
  char v[256];
  snprintf(v, sizeof v, "{%s,%s}", a, b);
  return val_keep(v);
}

static int group_setup(void **state) {
  (void)state;
  db_url = getenv("GENQ_DATABASE_URL");
  return pg_connect(db_url, "tb");
}

static int group_teardown(void **state) {
  (void)state;
  pg_disconnect();
  return 0;
}

/* ---- two workers' statements, forced into one interleaving ---- */

typedef struct {
  PGconn *c;
  int pid;
  const char *sqlstate; /* "00000" on success */
  int rows;
  char first[64]; /* the first row's first column */
} racer;

static void racer_open(racer *r) {
  memset(r, 0, sizeof(*r));
  r->c = PQconnectdb(db_url);
  assert_int_equal(PQstatus(r->c), CONNECTION_OK);
  r->pid = PQbackendPID(r->c);
}

static void racer_send(racer *r, const char *sql, const char *const *p, int n) {
  assert_int_equal(PQsendQueryParams(r->c, sql, n, NULL, p, NULL, NULL, 0), 1);
}

/* Waits for the statement's end; records its SQLSTATE and rows. */
static void racer_finish(racer *r) {
  PGresult *res;
  r->sqlstate = "00000";
  while ((res = PQgetResult(r->c))) {
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK) {
      r->rows = PQntuples(res);
      if (r->rows) snprintf(r->first, sizeof r->first, "%s", PQgetvalue(res, 0, 0));
    } else if (st != PGRES_COMMAND_OK) {
      const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      r->sqlstate = val_keep(s ? s : "?????");
    }
    PQclear(res);
  }
}

static void racer_close(racer *r) {
  PQfinish(r->c);
}

/* Waits (10 s at most) until both racers' backends wait on a lock. */
static void wait_both_blocked(const racer *a, const racer *b) {
  char pids[64];
  snprintf(pids, sizeof pids, "{%d,%d}", a->pid, b->pid);
  for (int i = 0; i < 1000; i++) {
    if (sql_int("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND pid = ANY($1::int[])",
                P(pids)) == 2)
      return;
    usleep(10000);
  }
  fail_msg("the two batches never both waited on the held rows");
}

/* A third connection holds the rows of jobs a and b; racer x sends sql with
 * px, then racer y with py (each with its arrays in its own order); both
 * block; the holder commits, and both run on. Without one lock order, x
 * would take one row and y the other, each then waiting for the other's. */
static void race_held(const char *job_a, const char *job_b, racer *x, const char *sql_x,
                      const char *const *px, int nx, racer *y, const char *sql_y,
                      const char *const *py, int ny) {
  racer holder;
  racer_open(&holder);
  PQclear(PQexec(holder.c, "BEGIN"));
  const char *ids[1] = {array2(job_a, job_b)};
  PGresult *r = PQexecParams(holder.c, "SELECT id FROM jobs WHERE id = ANY($1::uuid[]) FOR UPDATE",
                             1, NULL, ids, NULL, NULL, 0);
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  assert_int_equal(PQntuples(r), 2);
  PQclear(r);
  racer_open(x);
  racer_open(y);
  racer_send(x, sql_x, px, nx);
  racer_send(y, sql_y, py, ny);
  wait_both_blocked(x, y);
  PQclear(PQexec(holder.c, "COMMIT"));
  racer_finish(x);
  racer_finish(y);
  racer_close(&holder);
  racer_close(x);
  racer_close(y);
}

/* ---- tests ---- */

/* One batch of five: a queued job (claimed), a job a live worker holds (left
 * alone), a lapsed job with no attempt left (buried), an id that names no
 * job, and the first job again (claimed once). */
static void test_a_claim_batch_answers_each_job_on_its_own(void **state) {
  (void)state;
  char *u = new_user();
  grant(u, "10");
  char *queued = storyboard_job(u);
  char *held_job = storyboard_job(u);
  assert_string_equal(claim(held_job, "w-live"), "1");
  char *lapsed = submit(u, "storyboard", "{\"prompt\":\"p\",\"scenes\":1}", "1");
  assert_string_equal(claim(lapsed, "w-dead"), "1");
  sql_do("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1", P(lapsed));
  char ids[256];
  snprintf(ids, sizeof ids, "{%s,%s,%s,%s,%s}", queued, held_job, lapsed,
           "00000000-0000-4000-8000-000000000000", queued);
  PGresult *r =
      sql_on(conn, "SELECT id, epoch, attempt FROM genq_claim_jobs($1, 'w-b', 60)", P(ids));
  assert_int_equal(PQntuples(r), 1);
  assert_string_equal(PQgetvalue(r, 0, 0), queued);
  assert_string_equal(PQgetvalue(r, 0, 1), "1");
  assert_string_equal(PQgetvalue(r, 0, 2), "1");
  PQclear(r);
  assert_string_equal(sql_val("SELECT worker_id FROM jobs WHERE id = $1", P(queued)), "w-b");
  assert_string_equal(
      sql_val("SELECT worker_id || ' ' || epoch FROM jobs WHERE id = $1", P(held_job)), "w-live 1");
  assert_string_equal(job_field(lapsed, "{status}"), "failed");
  assert_string_equal(job_field(lapsed, "{error,code}"), "lease_expired");
  assert_non_null(sql_val("SELECT dead_at FROM jobs WHERE id = $1", P(lapsed)));
  /* the held job's and the buried job's epochs: the claim of the first two
   * and the bury's fence */
  assert_int_equal(sql_int("SELECT epoch FROM jobs WHERE id = $1", P(lapsed)), 2);
  assert_int_equal(held(u), 2); /* the buried job released its credit */
  assert_audit_clean();
}

/* One batch of successes: a job at its epoch (succeeds), a job at a stale
 * epoch (NULL, nothing changed), a resend of a success that committed (its
 * status, not NULL), and two steps of one campaign. */
static void test_a_success_batch_answers_each_step_on_its_own(void **state) {
  (void)state;
  char *u = new_user(), *v = new_user();
  grant(u, "100");
  grant(v, "100");
  char *ok = storyboard_job(u), *stale = storyboard_job(v), *done = storyboard_job(u);
  char *camp = submit(v, "campaign", "{\"prompt\":\"p\",\"scenes\":1}", "5");
  char *e_ok = claim(ok, "w"), *e_stale = claim(stale, "w"), *e_done = claim(done, "w");
  char *e_camp = claim(camp, "w");
  assert_non_null(e_ok);
  assert_non_null(e_stale);
  assert_non_null(e_camp);
  const char *one = "SELECT genq_step_succeed($1, $2, 'storyboard', '{\"n\":1}', NULL, NULL)";
  assert_string_equal(sql_val(one, P(done, e_done)), "succeeded");
  char jobs[512], epochs[128];
  snprintf(jobs, sizeof jobs, "{%s,%s,%s,%s,%s}", ok, stale, done, camp, camp);
  snprintf(epochs, sizeof epochs, "{%s,%s,%s,%s,%s}", e_ok, "99", e_done, e_camp, e_camp);
  const char *steps = "{storyboard,storyboard,storyboard,storyboard,video_1}";
  const char *outs = "{\"{\\\"n\\\":1}\",\"{\\\"n\\\":1}\",\"{\\\"n\\\":1}\",\"{}\",\"{}\"}";
  const char *none = "{NULL,NULL,NULL,NULL,NULL}";
  const char *batch = "SELECT ord, status FROM genq_steps_succeed($1::uuid[], $2::bigint[], "
                      "$3::text[], $4::jsonb[], $5::jsonb[], $6::jsonb[]) ORDER BY ord";
  PGresult *r = sql_on(conn, batch, P(jobs, epochs, steps, outs, none, none));
  assert_int_equal(PQntuples(r), 5);
  const char *want[5] = {"succeeded", NULL, "succeeded", "running", "running"};
  for (int i = 0; i < 5; i++) {
    char n[8];
    snprintf(n, sizeof n, "%d", i + 1);
    assert_string_equal(PQgetvalue(r, i, 0), n);
    if (want[i])
      assert_string_equal(PQgetvalue(r, i, 1), want[i]);
    else
      assert_true(PQgetisnull(r, i, 1));
  }
  PQclear(r);
  assert_string_equal(job_field(stale, "{status}"), "running");
  assert_int_equal(job_int(stale, "{cost,captured}"), 0);
  assert_int_equal(job_int(camp, "{cost,captured}"), 11);
  assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE movement = 'capture' AND job_id = "
                           "ANY($1::uuid[])",
                           P(jobs)),
                   4);
  assert_int_equal(balance(u), 98);
  assert_int_equal(balance(v), 89);
  /* an element that raises fails the whole call, which changes nothing */
  char *again = submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":1}", "5");
  char *e_again = claim(again, "w");
  snprintf(jobs, sizeof jobs, "{%s,%s}", again, again);
  snprintf(epochs, sizeof epochs, "{%s,%s}", e_again, e_again);
  assert_string_equal(sql_state(batch, P(jobs, epochs, "{storyboard,no_such_step}",
                                         "{\"{}\",\"{}\"}", "{NULL,NULL}", "{NULL,NULL}")),
                      "22023");
  assert_string_equal(job_field(again, "{status}"), "running");
  assert_int_equal(job_int(again, "{cost,captured}"), 0);
  assert_audit_clean();
}

static void test_a_begin_batch_fences_each_step_by_its_own_epoch(void **state) {
  (void)state;
  char *u = new_user();
  grant(u, "10");
  char *a = storyboard_job(u), *b = storyboard_job(u);
  char *ea = claim(a, "w"), *eb = claim(b, "w");
  assert_non_null(eb);
  char epochs[64];
  snprintf(epochs, sizeof epochs, "{%s,%s}", ea, "7");
  PGresult *r = sql_on(conn,
                       "SELECT ord, status FROM genq_steps_begin($1::uuid[], $2::bigint[], "
                       "'{storyboard,storyboard}') ORDER BY ord",
                       P(array2(a, b), epochs));
  assert_int_equal(PQntuples(r), 2);
  assert_string_equal(PQgetvalue(r, 0, 1), "running");
  assert_true(PQgetisnull(r, 1, 1));
  PQclear(r);
  assert_int_equal(sql_int("SELECT attempt FROM job_steps WHERE job_id = $1", P(a)), 1);
  assert_int_equal(sql_int("SELECT attempt FROM job_steps WHERE job_id = $1", P(b)), 0);
  assert_audit_clean();
}

/* A step named twice in one batch begins once (one attempt counted), and
 * both elements answer 'running'. */
static void test_a_step_named_twice_in_a_begin_batch_begins_once(void **state) {
  (void)state;
  char *u = new_user();
  grant(u, "10");
  char *a = storyboard_job(u);
  char *ea = claim(a, "w");
  assert_non_null(ea);
  PGresult *r = sql_on(conn,
                       "SELECT ord, status FROM genq_steps_begin($1::uuid[], $2::bigint[], "
                       "'{storyboard,storyboard}') ORDER BY ord",
                       P(array2(a, a), array2(ea, ea)));
  assert_int_equal(PQntuples(r), 2);
  assert_string_equal(PQgetvalue(r, 0, 1), "running");
  assert_string_equal(PQgetvalue(r, 1, 1), "running");
  PQclear(r);
  assert_int_equal(sql_int("SELECT attempt FROM job_steps WHERE job_id = $1", P(a)), 1);
  assert_audit_clean();
}

/* A step named twice in one success batch is captured once, by the first;
 * both answer the job's status after them. Two steps of one job in one
 * batch answer in order: the job ends with the second. */
static void test_a_step_named_twice_in_a_success_batch_is_captured_once(void **state) {
  (void)state;
  char *u = new_user();
  grant(u, "100");
  char *a = storyboard_job(u);
  char *ea = claim(a, "w");
  char *camp = submit(u, "campaign", "{\"prompt\":\"p\",\"scenes\":1}", "5");
  char *ec = claim(camp, "w");
  assert_non_null(ea);
  assert_non_null(ec);
  int steps = sql_int("SELECT count(*) FROM job_steps WHERE job_id = $1", P(camp));
  assert_true(steps >= 2);
  /* every campaign step but the last two succeeds on its own first */
  PGresult *left =
      sql_on(conn, "SELECT name FROM job_steps WHERE job_id = $1 ORDER BY idx", P(camp));
  for (int i = 0; i < steps - 2; i++)
    assert_string_equal(sql_val("SELECT genq_step_succeed($1, $2, $3, '{}', NULL, NULL)",
                                P(camp, ec, PQgetvalue(left, i, 0))),
                        "running");
  char jobs[512], epochs[128], names[256];
  snprintf(jobs, sizeof jobs, "{%s,%s,%s,%s}", a, a, camp, camp);
  snprintf(epochs, sizeof epochs, "{%s,%s,%s,%s}", ea, ea, ec, ec);
  snprintf(names, sizeof names, "{storyboard,storyboard,%s,%s}", PQgetvalue(left, steps - 2, 0),
           PQgetvalue(left, steps - 1, 0));
  PQclear(left);
  const char *outs = "{\"{\\\"n\\\":1}\",\"{\\\"n\\\":1}\",\"{}\",\"{}\"}";
  const char *none = "{NULL,NULL,NULL,NULL}";
  PGresult *r = sql_on(conn,
                       "SELECT ord, status FROM genq_steps_succeed($1::uuid[], $2::bigint[], "
                       "$3::text[], $4::jsonb[], $5::jsonb[], $6::jsonb[]) ORDER BY ord",
                       P(jobs, epochs, names, outs, none, none));
  assert_int_equal(PQntuples(r), 4);
  const char *want[4] = {"succeeded", "succeeded", "running", "succeeded"};
  for (int i = 0; i < 4; i++)
    assert_string_equal(PQgetvalue(r, i, 1), want[i]);
  PQclear(r);
  assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE movement = 'capture' AND job_id = "
                           "$1",
                           P(a)),
                   1);
  assert_string_equal(job_field(a, "{status}"), "succeeded");
  assert_string_equal(job_field(camp, "{status}"), "succeeded");
  assert_int_equal(held(u), 0);
  assert_audit_clean();
}

/* Two workers read the same two messages in opposite orders and claim them
 * in one batch each, while a third transaction holds both rows. */
static void test_two_claim_batches_in_opposite_orders_do_not_deadlock(void **state) {
  (void)state;
  char *u = new_user();
  grant(u, "10");
  char *a = storyboard_job(u), *b = storyboard_job(u);
  racer x, y;
  const char *sql = "SELECT id FROM genq_claim_jobs($1::uuid[], $2, 60)";
  race_held(a, b, &x, sql, P(array2(b, a), "w-x"), &y, sql, P(array2(a, b), "w-y"));
  assert_string_equal(x.sqlstate, "00000");
  assert_string_equal(y.sqlstate, "00000");
  assert_int_equal(x.rows + y.rows, 2); /* each job claimed once */
  assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND epoch = 1 "
                           "AND status = 'running'",
                           P(array2(a, b))),
                   2);
  assert_audit_clean();
}

/* Two success batches over the same two jobs of two users, in opposite
 * orders (a resend crossing the first send): both accounts are written by
 * both, and neither waits on the other in a circle; each capture happens
 * once and the resend recognises it. */
static void test_two_success_batches_in_opposite_orders_do_not_deadlock(void **state) {
  (void)state;
  char *u = new_user(), *v = new_user();
  grant(u, "10");
  grant(v, "10");
  char *a = storyboard_job(u), *b = storyboard_job(v);
  char *ea = claim(a, "w"), *eb = claim(b, "w");
  racer x, y;
  const char *sql = "SELECT count(*) FILTER (WHERE status = 'succeeded') FROM "
                    "genq_steps_succeed($1::uuid[], $2::bigint[], '{storyboard,storyboard}', "
                    "'{\"{}\",\"{}\"}', '{NULL,NULL}', '{NULL,NULL}')";
  race_held(a, b, &x, sql, P(array2(b, a), array2(eb, ea)), &y, sql,
            P(array2(a, b), array2(ea, eb)));
  assert_string_equal(x.sqlstate, "00000");
  assert_string_equal(y.sqlstate, "00000");
  assert_string_equal(x.first, "2");
  assert_string_equal(y.first, "2");
  assert_int_equal(balance(u), 9);
  assert_int_equal(balance(v), 9);
  assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE movement = 'capture' AND job_id = "
                           "ANY($1::uuid[])",
                           P(array2(a, b))),
                   2);
  assert_audit_clean();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_claim_batch_answers_each_job_on_its_own),
      cmocka_unit_test(test_a_success_batch_answers_each_step_on_its_own),
      cmocka_unit_test(test_a_begin_batch_fences_each_step_by_its_own_epoch),
      cmocka_unit_test(test_a_step_named_twice_in_a_begin_batch_begins_once),
      cmocka_unit_test(test_a_step_named_twice_in_a_success_batch_is_captured_once),
      cmocka_unit_test(test_two_claim_batches_in_opposite_orders_do_not_deadlock),
      cmocka_unit_test(test_two_success_batches_in_opposite_orders_do_not_deadlock),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
