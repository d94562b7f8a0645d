/* A job the relay sent must never stay marked dispatched once the message it
 * sent can no longer get it run (schema/functions/dispatch.sql, leases.sql,
 * steps.sql). Each test forces one interleaving of relay, workers and
 * leases, step by step, against the real PostgreSQL at GENQ_DATABASE_URL and
 * Redis at GENQ_REDIS_URL: the relay's steps are its own statements
 * (genq_undispatched, XADD, genq_mark_dispatched), a worker's are its claim,
 * renewal and requeue, and a lapse is a lease moved into the past. Each ends
 * by asking whether the relay would send the job again: a job it would not
 * send, and no message in Redis for, is never run and holds its credits for
 * good. */
#include "pg_helpers.h"

#include <hiredis/hiredis.h>

#define STREAM "genq:{q}:jobs:storyboard"

static redisContext *rc;

/* ---- the relay's steps ---- */

/* The dispatch generation genq_undispatched answers for job, or NULL when
 * the relay would not send it now. */
static char *relay_would_send(const char *job) {
  PGresult *r =
      sql_on(conn, "SELECT * FROM genq_undispatched(0, 100000) u WHERE u.id = $1", P(job));
  char *gen = PQntuples(r) == 1 ? val_keep(PQgetvalue(r, 0, 2)) : NULL;
  PQclear(r);
  return gen;
}

/* Sends job to Redis as the relay does; returns the message id. */
static char *relay_send(const char *job) {
  redisReply *x = redisCommand(rc, "XADD %s * job %s", STREAM, job);
  assert_non_null(x);
  assert_int_equal(x->type, REDIS_REPLY_STRING);
  char *id = val_keep(x->str);
  freeReplyObject(x);
  return id;
}

static long long relay_mark(const char *job, const char *gen) {
  char ids[64], gens[64];
  snprintf(ids, sizeof ids, "{%s}", job);
  snprintf(gens, sizeof gens, "{%s}", gen);
  return sql_int("SELECT genq_mark_dispatched($1::uuid[], $2::bigint[])", P(ids, gens));
}

/* ---- a worker's steps ---- */

/* genq_claim_job's new epoch, or NULL when the job is not claimable. */
static char *worker_claim(const char *job, const char *worker) {
  PGresult *r = sql_on(conn, "SELECT epoch FROM genq_claim_job($1, $2, 60)", P(job, worker));
  char *e = PQntuples(r) == 1 ? val_keep(PQgetvalue(r, 0, 0)) : NULL;
  PQclear(r);
  return e;
}

/* A worker reads the message, cannot claim the job and drops the message,
 * as worker/fetch.c does. */
static void worker_reads_and_drops(const char *msg, const char *job) {
  redisReply *x = redisCommand(rc, "XRANGE %s %s %s", STREAM, msg, msg);
  assert_non_null(x);
  assert_int_equal(x->type, REDIS_REPLY_ARRAY);
  assert_int_equal(x->elements, 1);
  freeReplyObject(x);
  assert_null(worker_claim(job, "worker-b"));
  x = redisCommand(rc, "XDEL %s %s", STREAM, msg);
  assert_non_null(x);
  assert_int_equal(x->integer, 1);
  freeReplyObject(x);
}

static long long worker_renews(const char *job, const char *epoch) {
  char ids[64], epochs[64];
  snprintf(ids, sizeof ids, "{%s}", job);
  snprintf(epochs, sizeof epochs, "{%s}", epoch);
  return sql_int("SELECT count(*) FROM genq_jobs_renew($1::uuid[], $2::bigint[], 60)",
                 P(ids, epochs));
}

/* The worker holding job stalls (or dies) past its lease. */
static void lease_lapses(const char *job) {
  sql_do("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1", P(job));
}

static char *submit(const char *user) {
  return sql_val("SELECT (job ->> 'id') FROM genq_submit_job($1, 'storyboard', "
                 "'{\"prompt\": \"p\", \"scenes\": 1}', NULL, NULL, NULL, 5)",
                 P(user));
}

/* A submitted job, sent by the relay and claimed by worker A. */
static char *running_job(char **epoch) {
  char *u = new_user();
  grant(u, "10");
  char *job = submit(u);
  char *gen = relay_would_send(job);
  assert_non_null(gen);
  char *msg = relay_send(job);
  assert_int_equal(relay_mark(job, gen), 1);
  assert_null(relay_would_send(job));
  *epoch = worker_claim(job, "worker-a");
  assert_non_null(*epoch);
  redisReply *x = redisCommand(rc, "XDEL %s %s", STREAM, msg);
  freeReplyObject(x);
  return job;
}

/* ---- the interleavings ---- */

/* A worker stalls past its lease; the relay sends the job and marks it; the
 * worker resumes and renews; another worker reads the message, finds the
 * lease fresh and drops it; then the first worker dies. */
static void test_a_renewal_after_a_resend_leaves_the_job_sendable(void **state) {
  char *e1;
  char *job = running_job(&e1);
  lease_lapses(job);
  char *gen = relay_would_send(job);
  assert_non_null(gen);
  char *msg = relay_send(job);
  assert_int_equal(relay_mark(job, gen), 1);
  assert_int_equal(worker_renews(job, e1), 1);
  worker_reads_and_drops(msg, job);
  lease_lapses(job); /* the first worker dies */
  assert_non_null(relay_would_send(job));
  assert_non_null(worker_claim(job, "worker-c"));
}

/* The relay sends a lapsed job; its stalled owner then requeues it with a
 * delay; the relay's mark arrives; the message is dropped because the job
 * is not due yet. */
static void test_a_requeue_after_a_resend_is_not_hidden_by_its_mark(void **state) {
  char *e1;
  char *job = running_job(&e1);
  lease_lapses(job);
  char *gen = relay_would_send(job);
  assert_non_null(gen);
  char *msg = relay_send(job);
  assert_string_equal(
      sql_val("SELECT genq_job_requeue($1, $2, 60000, 'http_503', 'later')", P(job, e1)), "queued");
  assert_int_equal(relay_mark(job, gen), 0);
  worker_reads_and_drops(msg, job);
  sql_do("UPDATE jobs SET next_attempt_at = now() - interval '1 second' WHERE id = $1", P(job));
  assert_non_null(relay_would_send(job));
  assert_non_null(worker_claim(job, "worker-c"));
}

/* The same with a hand-back (a worker shutting down) instead of a requeue:
 * the job is due at once, and the mark that arrives late must not hide it. */
static void test_a_handback_after_a_resend_is_not_hidden_by_its_mark(void **state) {
  char *e1;
  char *job = running_job(&e1);
  lease_lapses(job);
  char *gen = relay_would_send(job);
  assert_non_null(gen);
  relay_send(job);
  assert_string_equal(sql_val("SELECT genq_job_handback($1, $2)", P(job, e1)), "queued");
  assert_int_equal(relay_mark(job, gen), 0);
  assert_non_null(relay_would_send(job));
}

/* A mark that arrives after the worker renewed and then lapsed again names
 * a message sent for an earlier lapse, which a worker may have dropped while
 * the lease was fresh: it must not hide the new lapse. */
static void test_a_late_mark_does_not_hide_a_later_lapse(void **state) {
  char *e1;
  char *job = running_job(&e1);
  lease_lapses(job);
  char *gen = relay_would_send(job);
  assert_non_null(gen);
  char *msg = relay_send(job);
  assert_int_equal(worker_renews(job, e1), 1);
  worker_reads_and_drops(msg, job);
  lease_lapses(job);
  assert_int_equal(relay_mark(job, gen), 0);
  assert_non_null(relay_would_send(job));
}

/* The ordinary path still marks: a lapsed job sent and marked is not sent
 * again until something changes, and a claim of it works. */
static void test_a_resend_of_a_lapsed_job_is_marked_once(void **state) {
  char *e1;
  char *job = running_job(&e1);
  lease_lapses(job);
  char *gen = relay_would_send(job);
  assert_non_null(gen);
  relay_send(job);
  assert_int_equal(relay_mark(job, gen), 1);
  assert_null(relay_would_send(job));
  char *e2 = worker_claim(job, "worker-b");
  assert_non_null(e2);
  assert_true(atoll(e2) > atoll(e1));
}

static int group_setup(void **state) {
  const char *rurl = getenv("GENQ_REDIS_URL");
  char host[256] = "127.0.0.1";
  int port = 6379, db = 0;
  if (!rurl || sscanf(rurl, "redis://%255[^:]:%d/%d", host, &port, &db) < 2) {
    fprintf(stderr, "GENQ_REDIS_URL must be redis://host:port[/db]: integration tests need a "
                    "real Redis\n");
    return -1;
  }
  rc = redisConnect(host, port);
  if (!rc || rc->err) {
    fprintf(stderr, "cannot connect to Redis at %s\n", rurl);
    return -1;
  }
  freeReplyObject(redisCommand(rc, "SELECT %d", db));
  return pg_connect(getenv("GENQ_DATABASE_URL"), "r");
}

/* The jobs of this run are canceled, so that no relay keeps sending them. */
static int group_teardown(void **state) {
  char like[80];
  snprintf(like, sizeof like, "%s%%", run_prefix);
  PQclear(PQexecParams(conn,
                       "SELECT genq_job_cancel(user_id, id) FROM jobs WHERE user_id LIKE $1 "
                       "AND status IN ('queued', 'running')",
                       1, NULL, (const char *const[]){like}, NULL, NULL, 0));
  pg_disconnect();
  redisFree(rc);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_renewal_after_a_resend_leaves_the_job_sendable),
      cmocka_unit_test(test_a_requeue_after_a_resend_is_not_hidden_by_its_mark),
      cmocka_unit_test(test_a_handback_after_a_resend_is_not_hidden_by_its_mark),
      cmocka_unit_test(test_a_late_mark_does_not_hide_a_later_lapse),
      cmocka_unit_test(test_a_resend_of_a_lapsed_job_is_marked_once),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
