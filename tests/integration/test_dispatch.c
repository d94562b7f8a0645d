/* Dispatch of committed jobs through Redis Streams (common/relay.c,
 * common/queue.c, docs/queue.md) against the real PostgreSQL at
 * GENQ_DATABASE_URL and Redis at GENQ_REDIS_URL.
 *
 * Jobs are created with the schema's own functions over sync libpq; the
 * relay and the queue run on a uv loop with the async db and rds modules.
 * Every test starts with the storyboard stream and the relay lock deleted,
 * uses fresh users (disp-<pid>-<time>-<n>) and asserts only about its own jobs: the
 * relay may also send other tests' undispatched jobs. Jobs a test created are
 * canceled at the end, so no later relay keeps re-sending them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "integration/pg_helpers.h"
#include "queue.h"
#include "redis.h"
#include "relay.h"

#define KIND "storyboard"
#define STREAM "genq:{q}:jobs:" KIND
#define RELAY_LOCK "genq:{q}:relay-lock"
#define WAIT_S 10 /* bound of every wait: fails only when something never happens */

static const char *db_url, *redis_url;

static const char *dispatched(const char *job) {
  return sql_val("SELECT dispatched::text FROM jobs WHERE id = $1", P(job));
}

/* ---- the fixture: a loop, a db pool, two Redis connections ---- */

#define MAX_ALLOCS 256
#define MAX_JOBS 8

typedef struct {
  uv_loop_t loop;
  uv_timer_t tick; /* wakes the loop, so no UV_RUN_ONCE blocks for long */
  db *d;
  rds *r;  /* commands, the relay, queue_done, queue_reclaim */
  rds *rf; /* blocking XREADGROUP */
  relay *rl;
  int closed;
  char user[96];
  char jobs[MAX_JOBS][40]; /* canceled at teardown */
  int njobs;
  void *allocs[MAX_ALLOCS]; /* callback results: freed after the loop ran dry */
  int nallocs;
} fixture;

/* Callback results live on the heap until teardown, so a failed test that
 * leaves replies outstanding never has them written to a dead stack frame. */
static void *fx_new(fixture *f, size_t size) {
  assert_true(f->nallocs < MAX_ALLOCS);
  void *p = calloc(1, size);
  assert_non_null(p);
  f->allocs[f->nallocs++] = p;
  return p;
}

static void tick_cb(uv_timer_t *t) {
  (void)t;
}

static void run_until(fixture *f, const int *flag, int want, const char *what) {
  uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_S * 1000000000ull;
  while (*flag < want && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  if (*flag < want) fail_msg("waited %d s for %s in vain", WAIT_S, what);
}

/* Runs the loop for about ms (callbacks, relay timers and all). */
static void run_for(fixture *f, unsigned ms) {
  uint64_t until = uv_hrtime() + (uint64_t)ms * 1000000ull;
  while (uv_hrtime() < until)
    uv_run(&f->loop, UV_RUN_ONCE);
}

static void wait_connected(fixture *f, rds *r) {
  uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_S * 1000000000ull;
  while (!rds_connected(r) && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  if (!rds_connected(r)) fail_msg("no Redis connection to %s within %d s", redis_url, WAIT_S);
}

/* ---- Redis replies ---- */

typedef struct {
  int calls;
  int type; /* -1: no reply (err) */
  long long integer;
  char str[256];        /* string/status/error reply, or err */
  size_t elements;      /* array reply */
  const char *want_job; /* XRANGE: count entries with job = want_job */
  int matches;
  long long pending;  /* XPENDING summary: the count */
  char consumer[128]; /* XPENDING extended: the first entry's consumer */
  char pending_id[64];
} rreply;

static int entry_has_job(const redisReply *e, const char *job) {
  if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) return 0;
  const redisReply *fields = e->element[1];
  if (!fields || fields->type != REDIS_REPLY_ARRAY) return 0;
  for (size_t j = 0; j + 1 < fields->elements; j += 2) {
    const redisReply *k = fields->element[j], *v = fields->element[j + 1];
    if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING && !strcmp(k->str, "job") &&
        !strcmp(v->str, job))
      return 1;
  }
  return 0;
}

static void on_rreply(redisReply *r, const char *err, void *arg) {
  rreply *o = arg;
  o->calls++;
  if (!r) {
    o->type = -1;
    snprintf(o->str, sizeof o->str, "%s", err ? err : "");
    return;
  }
  o->type = r->type;
  o->integer = r->integer;
  if (r->str) snprintf(o->str, sizeof o->str, "%.*s", (int)(r->len < 255 ? r->len : 255), r->str);
  if (r->type != REDIS_REPLY_ARRAY) return;
  o->elements = r->elements;
  if (o->want_job)
    for (size_t i = 0; i < r->elements; i++)
      o->matches += entry_has_job(r->element[i], o->want_job);
  if (r->elements >= 1 && r->element[0]->type == REDIS_REPLY_INTEGER)
    o->pending = r->element[0]->integer;
  if (r->elements >= 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
      r->element[0]->elements >= 2 && r->element[0]->element[0]->type == REDIS_REPLY_STRING &&
      r->element[0]->element[1]->type == REDIS_REPLY_STRING) {
    snprintf(o->pending_id, sizeof o->pending_id, "%s", r->element[0]->element[0]->str);
    snprintf(o->consumer, sizeof o->consumer, "%s", r->element[0]->element[1]->str);
  }
}

/* Sends a command on f->r and waits for its reply; fails unless it came. */
#define RCMD(f, o, ...)                                                                            \
  do {                                                                                             \
    if (rds_command((f)->r, on_rreply, (o), __VA_ARGS__) != 0)                                     \
      fail_msg("Redis not connected for %s", #__VA_ARGS__);                                        \
    run_until((f), &(o)->calls, 1, #__VA_ARGS__);                                                  \
    if ((o)->type == -1 || (o)->type == REDIS_REPLY_ERROR)                                         \
      fail_msg("%s: %s", #__VA_ARGS__, (o)->str);                                                  \
  } while (0)

static long long xlen(fixture *f) {
  rreply *o = fx_new(f, sizeof *o);
  RCMD(f, o, "XLEN %s", STREAM);
  return o->integer;
}

static long long xpending(fixture *f) {
  rreply *o = fx_new(f, sizeof *o);
  RCMD(f, o, "XPENDING %s %s", STREAM, QUEUE_GROUP);
  return o->pending;
}

/* The consumer holding the first pending message ("" when none). */
static rreply *xpending_first(fixture *f) {
  rreply *o = fx_new(f, sizeof *o);
  RCMD(f, o, "XPENDING %s %s - + 10", STREAM, QUEUE_GROUP);
  return o;
}

/* Entries of the stream whose job field is job. */
static int stream_count(fixture *f, const char *job) {
  rreply *o = fx_new(f, sizeof *o);
  o->want_job = job;
  RCMD(f, o, "XRANGE %s - +", STREAM);
  return o->matches;
}

/* Polls the stream until an entry for job appears; fails after WAIT_S. */
static void wait_for_entry(fixture *f, const char *job) {
  uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_S * 1000000000ull;
  for (;;) {
    if (stream_count(f, job) > 0) return;
    if (uv_hrtime() >= deadline) fail_msg("job %s never reached %s in %d s", job, STREAM, WAIT_S);
    run_for(f, 50);
  }
}

/* Polls PostgreSQL (running the loop meanwhile) until job is dispatched. */
static void wait_dispatched(fixture *f, const char *job) {
  uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_S * 1000000000ull;
  for (;;) {
    if (!strcmp(dispatched(job), "true")) return;
    if (uv_hrtime() >= deadline) fail_msg("job %s never marked dispatched in %d s", job, WAIT_S);
    run_for(f, 50);
  }
}

/* ---- queue callbacks ---- */

typedef struct {
  int calls;
  int failed;
  char err[256];
} doneres;

static void on_done(const char *err, void *arg) {
  doneres *o = arg;
  o->calls++;
  if (err) {
    o->failed = 1;
    snprintf(o->err, sizeof o->err, "%s", err);
  }
}

#define FETCH_MAX 16
typedef struct {
  int calls;
  int failed;
  char err[256];
  int n;
  struct {
    char kind[32];
    char msg_id[64];
    char job_id[64];
    int job_null;
  } m[FETCH_MAX];
} fetchres;

static void on_fetch(const queue_msg *msgs, int n, const char *err, void *arg) {
  fetchres *o = arg;
  o->calls++;
  if (err) {
    o->failed = 1;
    snprintf(o->err, sizeof o->err, "%s", err);
    return;
  }
  for (int i = 0; i < n && o->n < FETCH_MAX; i++, o->n++) {
    snprintf(o->m[o->n].kind, sizeof o->m[0].kind, "%s", msgs[i].kind ? msgs[i].kind : "");
    snprintf(o->m[o->n].msg_id, sizeof o->m[0].msg_id, "%s", msgs[i].msg_id);
    o->m[o->n].job_null = msgs[i].job_id == NULL;
    snprintf(o->m[o->n].job_id, sizeof o->m[0].job_id, "%s", msgs[i].job_id ? msgs[i].job_id : "");
  }
}

static const char *const kinds[] = {KIND};

/* Creates the group, and waits until Redis did (a PING after it on the same
 * connection), so a fetch on the other connection finds it. */
static void ensure_group(fixture *f) {
  queue_ensure_groups(f->r, kinds, 1);
  rreply *o = fx_new(f, sizeof *o);
  RCMD(f, o, "PING");
}

static void dispatch(fixture *f, const char *job) {
  doneres *o = fx_new(f, sizeof *o);
  assert_int_equal(queue_dispatch(f->r, KIND, job, on_done, o), 0);
  run_until(f, &o->calls, 1, "queue_dispatch");
  if (o->failed) fail_msg("queue_dispatch: %s", o->err);
}

static void done(fixture *f, rds *r, const char *msg_id) {
  doneres *o = fx_new(f, sizeof *o);
  assert_int_equal(queue_done(r, KIND, msg_id, on_done, o), 0);
  run_until(f, &o->calls, 1, "queue_done");
  if (o->failed) fail_msg("queue_done: %s", o->err);
}

/* One XREADGROUP of up to count new messages for consumer on connection r. */
static fetchres *fetch(fixture *f, rds *r, const char *consumer, int count, int block_ms) {
  fetchres *o = fx_new(f, sizeof *o);
  assert_int_equal(queue_fetch(r, consumer, kinds, 1, count, block_ms, on_fetch, o), 0);
  run_until(f, &o->calls, 1, "queue_fetch");
  if (o->failed) fail_msg("queue_fetch: %s", o->err);
  return o;
}

/* Index of the message with that msg_id or job id in o, or -1. */
static int find_msg(const fetchres *o, const char *msg_id, const char *job) {
  for (int i = 0; i < o->n; i++)
    if ((msg_id && !strcmp(o->m[i].msg_id, msg_id)) ||
        (job && !o->m[i].job_null && !strcmp(o->m[i].job_id, job)))
      return i;
  return -1;
}

/* ---- jobs ---- */

static const char *consumer_name(const char *role) {
  char c[128];
  snprintf(c, sizeof c, "%s%s-%d", run_prefix, role, ++user_seq);
  return val_keep(c);
}

/* A committed storyboard job that never reached Redis (dispatched = false). */
static const char *submit(fixture *f) {
  assert_true(f->njobs < MAX_JOBS);
  const char *id = sql_val("SELECT job->>'id' FROM genq_submit_job($1, $2, "
                           "'{\"prompt\":\"a relay test\"}', NULL, NULL, NULL, 5)",
                           P(f->user, KIND));
  assert_non_null(id);
  assert_int_equal(strlen(id), 36);
  snprintf(f->jobs[f->njobs++], sizeof f->jobs[0], "%s", id);
  assert_string_equal(dispatched(id), "false");
  return f->jobs[f->njobs - 1];
}

/* Rows genq_claim_job returns for worker w (1: claimed, 0: not claimable). */
static int claim(const char *job, const char *w) {
  return sql_rows("SELECT epoch FROM genq_claim_job($1, $2, 60)", P(job, w));
}

/* ---- setup / teardown ---- */

static void on_closed(void *arg) {
  ((fixture *)arg)->closed++;
}

static void on_flag(void *arg) {
  (*(int *)arg)++;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  *state = f;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_start(&f->tick, tick_cb, 20, 20);
  db_options o = {.conninfo = db_url, .pool_size = 2};
  assert_int_equal(db_open(&f->d, &f->loop, &o), 0);
  char err[256];
  if (rds_open(&f->r, &f->loop, redis_url, err, sizeof err) != 0) fail_msg("rds_open: %s", err);
  if (rds_open(&f->rf, &f->loop, redis_url, err, sizeof err) != 0) fail_msg("rds_open: %s", err);
  wait_connected(f, f->r);
  wait_connected(f, f->rf);
  rreply *del = fx_new(f, sizeof *del);
  RCMD(f, del, "DEL %s %s", STREAM, RELAY_LOCK);

  snprintf(f->user, sizeof f->user, "%s", new_user());
  grant(f->user, "100");
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->rl) relay_stop(f->rl);
  f->rl = NULL;
  if (rds_connected(f->r) && f->nallocs < MAX_ALLOCS) {
    rreply *del = calloc(1, sizeof *del);
    if (del) {
      f->allocs[f->nallocs++] = del; /* freed only after the loop ran dry */
      if (rds_command(f->r, on_rreply, del, "DEL %s %s", STREAM, RELAY_LOCK) == 0) {
        uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_S * 1000000000ull;
        while (!del->calls && uv_hrtime() < deadline)
          uv_run(&f->loop, UV_RUN_ONCE);
      }
    }
  }
  db_close(f->d, on_closed, f);
  rds_close(f->r, on_closed, f);
  if (f->rf) rds_close(f->rf, on_closed, f);
  uv_close((uv_handle_t *)&f->tick, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  int closed = f->closed, want = f->rf ? 3 : 2, loop_rc = uv_loop_close(&f->loop);
  for (int i = 0; i < f->nallocs; i++)
    free(f->allocs[i]);
  /* leave nothing for a later relay to send */
  for (int i = 0; i < f->njobs; i++)
    sql_do("SELECT genq_job_cancel($1, $2)", P(f->user, f->jobs[i]));
  free(f);
  assert_int_equal(closed, want);
  assert_int_equal(loop_rc, 0);
  return 0;
}

static int group_setup(void **state) {
  return pg_connect(db_url, "disp");
}

static int group_teardown(void **state) {
  pg_disconnect();
  return 0;
}

/* ---- tests ---- */

/* The API committed a job and then Redis was down (or the API died before
 * XADD): the job sits in PostgreSQL with dispatched = false. The relay's
 * periodic scan finds it, sends it, and marks it dispatched. */
static void relay_scan_sends_a_committed_job_that_never_reached_redis(void **state) {
  fixture *f = *state;
  const char *job = submit(f);
  assert_int_equal(stream_count(f, job), 0);
  assert_int_equal(relay_start(&f->rl, &f->loop, f->d, f->r, 100, 0), 0);
  wait_for_entry(f, job);
  wait_dispatched(f, job);
  /* a dispatched job is no longer offered to the scan */
  assert_int_equal(sql_rows("SELECT 1 FROM genq_undispatched(0, 100000) WHERE id = $1", P(job)), 0);
}

/* relay_job, right after the commit: the job is sent and marked without
 * waiting for a scan (the scan's first run is a minute away). */
static void relay_job_sends_now_and_marks_dispatched(void **state) {
  fixture *f = *state;
  const char *job = submit(f);
  assert_int_equal(relay_start(&f->rl, &f->loop, f->d, f->r, 60000, 60000), 0);
  relay_job(f->rl, KIND, job);
  wait_for_entry(f, job);
  wait_dispatched(f, job);
  assert_int_equal(stream_count(f, job), 1);
}

static void queue_round_trip_fetch_done_and_malformed_entry(void **state) {
  fixture *f = *state;
  const char *job = submit(f);
  ensure_group(f);
  dispatch(f, job);
  long long len = xlen(f);
  assert_true(len >= 1);
  const char *worker = consumer_name("w");

  fetchres *got = fetch(f, f->rf, worker, 10, 2000);
  int i = find_msg(got, NULL, job);
  if (i < 0) fail_msg("queue_fetch returned %d messages, none for job %s", got->n, job);
  assert_string_equal(got->m[i].kind, KIND);
  assert_string_equal(got->m[i].job_id, job);
  assert_true(got->m[i].msg_id[0] != '\0');
  assert_int_equal(xpending(f), got->n);

  for (int k = 0; k < got->n; k++)
    done(f, f->r, got->m[k].msg_id);
  assert_int_equal(xpending(f), 0);
  assert_int_equal(xlen(f), len - got->n);
  assert_int_equal(stream_count(f, job), 0);

  /* entries without a proper job field come back with job_id NULL */
  rreply *bad1 = fx_new(f, sizeof *bad1), *bad2 = fx_new(f, sizeof *bad2);
  RCMD(f, bad1, "XADD %s * foo bar", STREAM);
  RCMD(f, bad2, "XADD %s * job not-a-uuid", STREAM);
  assert_int_equal(bad1->type, REDIS_REPLY_STRING);
  assert_int_equal(bad2->type, REDIS_REPLY_STRING);
  len = xlen(f);
  fetchres *bad = fetch(f, f->rf, worker, 10, 2000);
  int b1 = find_msg(bad, bad1->str, NULL), b2 = find_msg(bad, bad2->str, NULL);
  if (b1 < 0 || b2 < 0) fail_msg("malformed entries not fetched (%d messages)", bad->n);
  assert_true(bad->m[b1].job_null);
  assert_true(bad->m[b2].job_null);
  assert_string_equal(bad->m[b1].kind, KIND);
  done(f, f->r, bad1->str);
  done(f, f->r, bad2->str);
  assert_int_equal(xlen(f), len - 2);
  assert_int_equal(xpending(f), bad->n - 2);
}

/* The scan and the immediate path can both send a job: two messages, but
 * PostgreSQL lets only one claim win; the other message is just dropped. */
static void a_job_sent_twice_is_claimed_once(void **state) {
  fixture *f = *state;
  const char *job = submit(f);
  ensure_group(f);
  dispatch(f, job);
  dispatch(f, job);
  assert_int_equal(stream_count(f, job), 2);

  const char *w1 = consumer_name("w"), *w2 = consumer_name("w");
  fetchres *all = fx_new(f, sizeof *all);
  uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_S * 1000000000ull;
  const char *who[FETCH_MAX] = {0};
  while (all->n < 2 && uv_hrtime() < deadline) {
    /* two workers, one message each */
    const char *w = all->n % 2 ? w2 : w1;
    fetchres *o = fetch(f, f->rf, w, 1, 500);
    for (int k = 0; k < o->n && all->n < FETCH_MAX; k++) {
      if (o->m[k].job_null || strcmp(o->m[k].job_id, job) != 0) continue;
      who[all->n] = w;
      all->m[all->n++] = o->m[k];
    }
  }
  if (all->n < 2) fail_msg("fetched %d messages for job %s, want 2", all->n, job);
  assert_string_not_equal(all->m[0].msg_id, all->m[1].msg_id);

  int first = claim(job, who[0]);
  int second = claim(job, who[1]);
  assert_int_equal(first, 1);
  assert_int_equal(second, 0);
  assert_string_equal(sql_val("SELECT epoch::text FROM jobs WHERE id = $1", P(job)), "1");
  assert_string_equal(sql_val("SELECT worker_id FROM jobs WHERE id = $1", P(job)), who[0]);
  /* both messages are acknowledged and deleted whatever the claim said */
  done(f, f->r, all->m[0].msg_id);
  done(f, f->r, all->m[1].msg_id);
  assert_int_equal(stream_count(f, job), 0);
  assert_int_equal(xpending(f), 0);
}

/* A worker read a message and died before claiming: the message stays
 * pending on its consumer; new reads never see it again; XAUTOCLAIM hands it
 * to a live worker, which claims the job. */
static void a_dead_readers_message_is_reclaimed_by_another_consumer(void **state) {
  fixture *f = *state;
  const char *job = submit(f);
  ensure_group(f);
  dispatch(f, job);
  const char *dead = consumer_name("dead"), *live = consumer_name("live");

  rds *doomed;
  char err[256];
  if (rds_open(&doomed, &f->loop, redis_url, err, sizeof err) != 0) fail_msg("rds_open: %s", err);
  wait_connected(f, doomed);
  fetchres *read = fetch(f, doomed, dead, 10, 2000);
  int i = find_msg(read, NULL, job);
  if (i < 0) fail_msg("the doomed worker did not get job %s", job);
  char msg_id[64];
  snprintf(msg_id, sizeof msg_id, "%s", read->m[i].msg_id);
  /* it dies: connection gone, nothing acknowledged */
  int *gone = fx_new(f, sizeof *gone);
  rds_close(doomed, on_flag, gone);
  run_until(f, gone, 1, "the doomed connection to close");

  assert_int_equal(xpending(f), 1);
  rreply *p = xpending_first(f);
  assert_string_equal(p->pending_id, msg_id);
  assert_string_equal(p->consumer, dead);
  /* a new read by a live worker does not see it: only reclaiming does */
  fetchres *nothing = fetch(f, f->rf, live, 10, 200);
  assert_int_equal(find_msg(nothing, msg_id, NULL), -1);

  fetchres *re = fx_new(f, sizeof *re);
  assert_int_equal(queue_reclaim(f->r, live, KIND, 0, 10, on_fetch, re), 0);
  run_until(f, &re->calls, 1, "queue_reclaim");
  if (re->failed) fail_msg("queue_reclaim: %s", re->err);
  int k = find_msg(re, msg_id, NULL);
  if (k < 0) fail_msg("queue_reclaim returned %d messages, not %s", re->n, msg_id);
  assert_string_equal(re->m[k].job_id, job);
  assert_string_equal(re->m[k].kind, KIND);
  p = xpending_first(f);
  assert_string_equal(p->pending_id, msg_id);
  assert_string_equal(p->consumer, live);

  assert_int_equal(claim(job, live), 1);
  done(f, f->r, msg_id);
  assert_int_equal(xpending(f), 0);
  assert_int_equal(stream_count(f, job), 0);
}

int main(void) {
  db_url = getenv("GENQ_DATABASE_URL");
  redis_url = getenv("GENQ_REDIS_URL");
  if (!db_url || !*db_url || !redis_url || !*redis_url) {
    fprintf(stderr, "GENQ_DATABASE_URL and GENQ_REDIS_URL must be set: integration tests need a "
                    "real PostgreSQL and Redis\n");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(relay_scan_sends_a_committed_job_that_never_reached_redis,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(relay_job_sends_now_and_marks_dispatched, setup, teardown),
      cmocka_unit_test_setup_teardown(queue_round_trip_fetch_done_and_malformed_entry, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_job_sent_twice_is_claimed_once, setup, teardown),
      cmocka_unit_test_setup_teardown(a_dead_readers_message_is_reclaimed_by_another_consumer,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
