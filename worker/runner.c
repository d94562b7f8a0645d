/* runner.c — the worker's job cycle.
 *
 *   fetch (XREADGROUP) → claim in PostgreSQL (genq_claim_job: status
 *   running, epoch + 1, lease) → XACK+XDEL → run each unfinished step →
 *   genq_step_succeed / genq_job_requeue / genq_job_fail, all fenced by the
 *   epoch → next fetch.
 *
 * PostgreSQL decides who owns a job; Redis only says "look at this job". A
 * message for a job that cannot be claimed (finished, owned by a live
 * worker, not yet due) is dropped: the relay re-sends what still needs to
 * run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"
#include "worker.h"

#define FETCH_BLOCK_MS 2000
#define FETCH_RETRY_MS 500

static void fetch_more(worker *w);

/* ---- the in-flight list ---- */

static wjob *job_new(worker *w, const char *id, const char *kind) {
  wjob *j = calloc(1, sizeof(*j));
  if (!j) return NULL;
  j->w = w;
  snprintf(j->id, sizeof(j->id), "%s", id);
  snprintf(j->kind, sizeof(j->kind), "%s", kind);
  j->next = w->jobs;
  if (w->jobs) w->jobs->prev = j;
  w->jobs = j;
  w->inflight++;
  return j;
}

static void job_finish(wjob *j) {
  worker *w = j->w;
  if (j->prev) j->prev->next = j->next;
  if (j->next) j->next->prev = j->prev;
  if (w->jobs == j) w->jobs = j->next;
  cJSON_Delete(j->input);
  cJSON_Delete(j->steps);
  free(j);
  w->inflight--;
  w->jobs_done++;
  if (w->stopping && w->inflight == 0)
    worker_stop(w); /* everything handed back: finish shutting down */
  else
    fetch_more(w);
}

/* ---- ending a job: fenced writes ---- */

/* The fenced functions answer the job's status after the write, or NULL
 * when the epoch no longer matches (someone else owns the job now). */
static void fenced_write_done(const db_result *r, void *arg) {
  wjob *j = arg;
  j->db_busy = 0;
  if (!r->ok) {
    /* not committed: the lease lapses and the job is picked up again */
    log_error("job write failed", LS("job_id", j->id), LS("error", r->error));
  } else if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
    log_warn("job fenced: another worker owns it now", LS("job_id", j->id), LI("epoch", j->epoch));
  } else if (strcmp(PQgetvalue(r->res, 0, 0), "running") == 0 && !j->lost && j->w->stopping < 2) {
    /* a step committed and more remain */
    cJSON_ReplaceItemInObject((cJSON *)j->step, "status", cJSON_CreateString("succeeded"));
    runner_next_step(j);
    return;
  } else {
    log_info("job left worker", LS("job_id", j->id), LS("status", PQgetvalue(r->res, 0, 0)),
             LI("epoch", j->epoch));
  }
  job_finish(j);
}

static void fenced_write(wjob *j, const char *sql, int n, const char *const *params) {
  j->db_busy = 1;
  if (db_query(j->w->db, sql, n, params, fenced_write_done, j) != 0) {
    j->db_busy = 0;
    log_error("job write not queued", LS("job_id", j->id));
    job_finish(j);
  }
}

static void fail_job(wjob *j, const char *step, const char *code, const char *message) {
  char epoch[24];
  snprintf(epoch, sizeof(epoch), "%lld", j->epoch);
  const char *p[5] = {j->id, epoch, step, code, message};
  log_warn("job failed", LS("job_id", j->id), LS("step", step ? step : ""), LS("code", code),
           LS("message", message));
  fenced_write(j,
               "select case when genq_job_fail($1::uuid, $2::bigint, $3, $4, $5, false) "
               "then 'failed' end",
               5, p);
}

static void requeue_job(wjob *j, long delay_ms, const char *code, const char *message) {
  char epoch[24], delay[24];
  snprintf(epoch, sizeof(epoch), "%lld", j->epoch);
  snprintf(delay, sizeof(delay), "%ld", delay_ms);
  const char *p[5] = {j->id, epoch, delay, code, message};
  log_info("job retry scheduled", LS("job_id", j->id), LI("attempt", j->attempt),
           LI("delay_ms", delay_ms), LS("code", code));
  fenced_write(j, "select genq_job_requeue($1::uuid, $2::bigint, $3::int, $4, $5)", 5, p);
}

void runner_step_done(wjob *j, const step_result *r) {
  j->xfer = 0;
  const char *step = cJSON_GetObjectItemCaseSensitive(j->step, "name")->valuestring;
  if (j->lost || j->w->stopping > 1) {
    job_finish(j);
    return;
  }
  if (!r->ok) {
    if (r->retryable) {
      requeue_job(j, lease_retry_delay_ms(&j->w->cfg, j->attempt, r->retry_after_ms), r->code,
                  r->message);
    } else {
      fail_job(j, step, r->code, r->message);
    }
    return;
  }
  char epoch[24];
  snprintf(epoch, sizeof(epoch), "%lld", j->epoch);
  char *out = cJSON_PrintUnformatted(r->output);
  char *job_out = r->job_output ? cJSON_PrintUnformatted(r->job_output) : NULL;
  if (!out) {
    free(job_out);
    fail_job(j, step, "internal", "out of memory");
    return;
  }
  const char *p[5] = {j->id, epoch, step, out, job_out};
  log_info("step succeeded", LS("job_id", j->id), LS("step", step));
  fenced_write(j, "select genq_step_succeed($1::uuid, $2::bigint, $3, $4::jsonb, $5::jsonb)", 5, p);
  free(out);
  free(job_out);
}

/* ---- running steps ---- */

typedef struct {
  const char *step_kind;
  int (*run)(wjob *j);
} step_executor;

static const step_executor executors[] = {
    {"storyboard", step_storyboard_run},
};

static void step_begun(const db_result *r, void *arg) {
  wjob *j = arg;
  j->db_busy = 0;
  if (!r->ok || PQntuples(r->res) != 1 || strcmp(PQgetvalue(r->res, 0, 0), "t") != 0) {
    if (!r->ok)
      log_error("step begin failed", LS("job_id", j->id), LS("error", r->error));
    else
      log_warn("job fenced at step begin", LS("job_id", j->id), LI("epoch", j->epoch));
    job_finish(j);
    return;
  }
  const char *sk = cJSON_GetObjectItemCaseSensitive(j->step, "step_kind")->valuestring;
  for (size_t i = 0; i < sizeof(executors) / sizeof(executors[0]); i++) {
    if (strcmp(executors[i].step_kind, sk) == 0) {
      if (executors[i].run(j) != 0) {
        step_result fail = {.ok = 0,
                            .retryable = 1,
                            .code = "internal",
                            .message = "could not start the provider call"};
        runner_step_done(j, &fail);
      }
      return;
    }
  }
  fail_job(j, cJSON_GetObjectItemCaseSensitive(j->step, "name")->valuestring, "unsupported",
           "this worker has no executor for the step");
}

void runner_next_step(wjob *j) {
  const cJSON *s;
  j->step = NULL;
  cJSON_ArrayForEach(s, j->steps) {
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(s, "status");
    if (!cJSON_IsString(st) || strcmp(st->valuestring, "succeeded") != 0) {
      j->step = s;
      break;
    }
  }
  if (!j->step) {
    job_finish(j); /* the last step's commit finished the job */
    return;
  }
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(j->step, "name");
  const cJSON *sk = cJSON_GetObjectItemCaseSensitive(j->step, "step_kind");
  if (!cJSON_IsString(name) || !cJSON_IsString(sk)) {
    log_error("job has a malformed step", LS("job_id", j->id));
    job_finish(j);
    return;
  }
  char epoch[24];
  snprintf(epoch, sizeof(epoch), "%lld", j->epoch);
  const char *p[3] = {j->id, epoch, name->valuestring};
  j->db_busy = 1;
  if (db_query(j->w->db, "select genq_step_begin($1::uuid, $2::bigint, $3)", 3, p, step_begun, j) !=
      0) {
    j->db_busy = 0;
    job_finish(j);
  }
}

/* ---- claiming ---- */

typedef struct {
  wjob *j;
  char msg_id[48];
} claim_ctx;

static void claimed(const db_result *r, void *arg) {
  claim_ctx *c = arg;
  wjob *j = c->j;
  worker *w = j->w;
  j->db_busy = 0;
  /* PostgreSQL has decided; the message has done its job either way */
  queue_done(w->redis, j->kind, c->msg_id, NULL, NULL);
  free(c);
  if (!r->ok) {
    log_error("claim failed", LS("job_id", j->id), LS("error", r->error));
    job_finish(j);
    return;
  }
  if (PQntuples(r->res) != 1) {
    log_debug("job not claimable, message dropped", LS("job_id", j->id));
    job_finish(j);
    return;
  }
  j->epoch = strtoll(PQgetvalue(r->res, 0, 0), NULL, 10);
  snprintf(j->kind, sizeof(j->kind), "%s", PQgetvalue(r->res, 0, 1));
  j->input = cJSON_Parse(PQgetvalue(r->res, 0, 2));
  j->attempt = atoi(PQgetvalue(r->res, 0, 3));
  j->max_attempts = atoi(PQgetvalue(r->res, 0, 4));
  j->steps = cJSON_Parse(PQgetvalue(r->res, 0, 5));
  if (!j->input || !cJSON_IsArray(j->steps)) {
    fail_job(j, NULL, "internal", "job record is malformed");
    return;
  }
  log_info("job claimed", LS("job_id", j->id), LS("kind", j->kind), LI("epoch", j->epoch),
           LI("attempt", j->attempt));
  runner_next_step(j);
}

static void claim(worker *w, const queue_msg *m) {
  if (!m->job_id) {
    queue_done(w->redis, m->kind, m->msg_id, NULL, NULL); /* malformed: drop */
    return;
  }
  wjob *j = job_new(w, m->job_id, m->kind);
  claim_ctx *c = malloc(sizeof(*c));
  if (!j || !c) {
    free(c);
    if (j) job_finish(j);
    return; /* stays pending; reclaimed later */
  }
  c->j = j;
  snprintf(c->msg_id, sizeof(c->msg_id), "%s", m->msg_id);
  char lease[16];
  snprintf(lease, sizeof(lease), "%d", w->cfg.lease_seconds);
  const char *p[3] = {j->id, w->id, lease};
  j->db_busy = 1;
  if (db_query(w->db,
               "select epoch, kind, input, attempt, max_attempts, steps "
               "from genq_claim_job($1::uuid, $2, $3::int)",
               3, p, claimed, c) != 0) {
    free(c);
    j->db_busy = 0;
    job_finish(j);
  }
}

/* ---- fetching ---- */

static void fetch_retry_cb(uv_timer_t *t) {
  fetch_more(t->data);
}

static void fetched(const queue_msg *msgs, int n, const char *err, void *arg) {
  worker *w = arg;
  w->fetching = 0;
  if (w->stopping) return; /* unclaimed messages stay pending for a live worker */
  if (err) {
    log_warn("fetch failed", LS("error", err));
    uv_timer_start(&w->fetch_timer, fetch_retry_cb, FETCH_RETRY_MS, 0);
    return;
  }
  for (int i = 0; i < n; i++)
    claim(w, &msgs[i]);
  fetch_more(w);
}

static void fetch_more(worker *w) {
  if (w->stopping || w->fetching || w->inflight >= w->concurrency) return;
  if (uv_is_active((uv_handle_t *)&w->fetch_timer)) return;
  if (queue_fetch(w->redis_fetch, w->id, w->kinds, w->nkinds, w->concurrency - w->inflight,
                  FETCH_BLOCK_MS, fetched, w) == 0) {
    w->fetching = 1;
  } else {
    /* Redis is down: try again shortly, without spinning */
    uv_timer_start(&w->fetch_timer, fetch_retry_cb, FETCH_RETRY_MS, 0);
  }
}

/* Messages whose reader died between XREADGROUP and the claim. */
static void reclaimed(const queue_msg *msgs, int n, const char *err, void *arg) {
  worker *w = arg;
  if (err || w->stopping) return;
  for (int i = 0; i < n; i++)
    claim(w, &msgs[i]);
}

static void reclaim_cb(uv_timer_t *t) {
  worker *w = t->data;
  if (w->stopping) return;
  for (int i = 0; i < w->nkinds; i++)
    queue_reclaim(w->redis, w->id, w->kinds[i], 30000, 64, reclaimed, w);
}

static void on_connect(rds *r, void *arg) {
  (void)r;
  worker *w = arg;
  queue_ensure_groups(w->redis, w->kinds, w->nkinds);
}

int worker_start(worker *w) {
  uv_timer_init(w->loop, &w->fetch_timer);
  uv_timer_init(w->loop, &w->reclaim_timer);
  uv_timer_init(w->loop, &w->grace_timer);
  w->fetch_timer.data = w->reclaim_timer.data = w->grace_timer.data = w;
  rds_on_connect(w->redis, on_connect, w);
  uv_timer_start(&w->reclaim_timer, reclaim_cb, 10000, 10000);
  lease_start(w);
  /* the first fetch waits for Redis (the timer path) */
  uv_timer_start(&w->fetch_timer, fetch_retry_cb, 100, 0);
  return 0;
}

/* ---- shutdown ----
 * stopping: 0 running; 1 draining (no new jobs; in-flight ones finish);
 * 2 grace over (provider calls aborted, nothing more committed: the leases
 * hand the jobs to another worker); 3 closing handles. */

static void close_all(worker *w) {
  w->stopping = 3;
  log_info("stopped", LI("jobs_done", (long long)w->jobs_done));
  uv_close((uv_handle_t *)&w->fetch_timer, NULL);
  uv_close((uv_handle_t *)&w->reclaim_timer, NULL);
  uv_close((uv_handle_t *)&w->grace_timer, NULL);
  uv_close((uv_handle_t *)&w->heartbeat_timer, NULL);
  if (w->http) httpc_close(w->http);
  w->http = NULL;
  relay_stop(w->relay);
  db_close(w->db, NULL, NULL);
  rds_close(w->redis, NULL, NULL);
  rds_close(w->redis_fetch, NULL, NULL);
}

static void grace_over(uv_timer_t *t) {
  worker *w = t->data;
  log_warn("grace period over: leaving unfinished jobs to their leases",
           LI("in_flight", w->inflight));
  w->stopping = 2;
  for (wjob *j = w->jobs; j; j = j->next)
    j->lost = 1;
  httpc *h = w->http;
  w->http = NULL;
  if (h) httpc_close(h); /* each transfer's callback runs and finishes its job */
  for (wjob *j = w->jobs, *next; j; j = next) {
    next = j->next;
    if (!j->db_busy) job_finish(j); /* may close_all when it was the last */
  }
}

void worker_stop(worker *w) {
  if (w->stopping == 3) return;
  if (!w->stopping) {
    w->stopping = 1;
    log_info("stopping: taking no new jobs", LI("in_flight", w->inflight));
    uv_timer_stop(&w->fetch_timer);
    uv_timer_stop(&w->reclaim_timer);
    uv_timer_start(&w->grace_timer, grace_over, (uint64_t)w->cfg.shutdown_grace_ms, 0);
  }
  if (w->inflight == 0) close_all(w);
}
