/* fetch.c — from stream messages to claimed jobs.
 *
 *   XREADGROUP while fewer than `concurrency` jobs are in flight → claim in
 *   PostgreSQL (genq_claim_job: status running, epoch + 1, lease) →
 *   XACK+XDEL → runner_job_run.
 *
 * PostgreSQL decides who owns a job; Redis only says "look at this job". A
 * message for a job that cannot be claimed (finished, owned by a live
 * worker, not yet due) is dropped: the relay re-sends what still needs to
 * run. Messages whose reader died before its claim are reclaimed, and a
 * cancel notice stops the job it names if it runs here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"
#include "worker.h"

#define FETCH_BLOCK_MS 2000
#define FETCH_RETRY_MS 500

typedef struct {
  wjob *j;
  char msg_id[48];
  uint64_t sent_at;
} claim_ctx;

static void claimed(const db_result *r, void *arg) {
  claim_ctx *c = arg;
  wjob *j = c->j;
  worker *w = j->w;
  j->db_busy--;
  if (!r->ok) {
    /* nothing decided: the message stays pending and is reclaimed */
    log_error("claim failed", LS("job_id", j->id), LS("error", r->error));
    free(c);
    runner_job_finish(j);
    return;
  }
  /* PostgreSQL has decided; the message has done its job either way */
  queue_done(w->redis, j->kind, c->msg_id, NULL, NULL);
  uint64_t sent_at = c->sent_at;
  free(c);
  if (PQntuples(r->res) != 1) {
    log_debug("job not claimable, message dropped", LS("job_id", j->id));
    runner_job_finish(j);
    return;
  }
  j->epoch = strtoll(PQgetvalue(r->res, 0, 0), NULL, 10);
  j->lease_until = sent_at + (uint64_t)w->cfg.lease_seconds * 1000;
  snprintf(j->kind, sizeof(j->kind), "%s", PQgetvalue(r->res, 0, 1));
  j->input = cJSON_Parse(PQgetvalue(r->res, 0, 2));
  j->attempt = atoi(PQgetvalue(r->res, 0, 3));
  j->steps = cJSON_Parse(PQgetvalue(r->res, 0, 4));
  stage_compact_steps(j->steps); /* held for as long as the job waits */
  j->uploads = cJSON_Parse(PQgetvalue(r->res, 0, 5));
  runner_job_run(j);
}

static void claim(worker *w, const queue_msg *m) {
  if (!m->job_id) {
    queue_done(w->redis, m->kind, m->msg_id, NULL, NULL); /* malformed: drop */
    return;
  }
  wjob *j = runner_job_new(w, m->job_id, m->kind);
  claim_ctx *c = malloc(sizeof(*c));
  if (!j || !c) {
    free(c);
    if (j) runner_job_finish(j);
    return; /* stays pending; reclaimed later */
  }
  c->j = j;
  snprintf(c->msg_id, sizeof(c->msg_id), "%s", m->msg_id);
  c->sent_at = uv_now(w->loop);
  char lease[16], reclaims[16];
  snprintf(lease, sizeof(lease), "%d", w->cfg.lease_seconds);
  snprintf(reclaims, sizeof(reclaims), "%d", w->cfg.max_reclaims);
  const char *p[4] = {j->id, w->id, lease, reclaims};
  j->db_busy++;
  if (db_query(w->db,
               "select epoch, kind, input, attempt, steps, uploads "
               "from genq_claim_job($1::uuid, $2, $3::int, $4::int)",
               4, p, claimed, c) != 0) {
    free(c);
    j->db_busy--;
    runner_job_finish(j);
  }
}

static void fetch_retry_cb(uv_timer_t *t) {
  fetch_more(t->data);
}

static void fetched(const queue_msg *msgs, int n, const char *err, void *arg) {
  worker *w = arg;
  w->fetching = 0;
  if (worker_stopping(w)) return; /* unclaimed messages stay pending for a live worker */
  if (w->state == WORKER_QUIET) {
    /* read by the fetch that was waiting when the worker went quiet: put
     * them back for another worker (XADD before XACK+XDEL on the same
     * connection: a crash in between leaves a duplicate, never a loss) */
    for (int i = 0; i < n; i++) {
      if (msgs[i].job_id) queue_dispatch(w->redis, msgs[i].kind, msgs[i].job_id, NULL, NULL);
      queue_done(w->redis, msgs[i].kind, msgs[i].msg_id, NULL, NULL);
    }
    return;
  }
  if (err) {
    log_warn("fetch failed", LS("error", err));
    uv_timer_start(&w->fetch_timer, fetch_retry_cb, FETCH_RETRY_MS, 0);
    return;
  }
  for (int i = 0; i < n; i++)
    claim(w, &msgs[i]);
  fetch_more(w);
}

void fetch_more(worker *w) {
  if (w->state != WORKER_RUNNING || w->fetching || w->inflight >= w->concurrency) return;
  if (uv_is_active((uv_handle_t *)&w->fetch_timer)) return;
  if (db_connected(w->db) == 0) {
    /* PostgreSQL is away: a job read now could not be claimed; wait */
    uv_timer_start(&w->fetch_timer, fetch_retry_cb, FETCH_RETRY_MS, 0);
    return;
  }
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
  if (err || worker_stopping(w)) return;
  for (int i = 0; i < n; i++)
    claim(w, &msgs[i]);
}

static void reclaim_cb(uv_timer_t *t) {
  worker *w = t->data;
  if (w->state != WORKER_RUNNING || db_connected(w->db) == 0) return;
  for (int i = 0; i < w->nkinds; i++)
    queue_reclaim(w->redis, w->id, w->kinds[i], 30000, 64, reclaimed, w);
}

/* A cancel committed by the API: stop that job now if it is here. Cancels
 * are rare; a scan of the in-flight list is enough. */
static void on_cancel(const char *channel, const char *msg, size_t len, void *arg) {
  (void)channel;
  worker *w = arg;
  char id[37];
  if (len != 36 || worker_past_grace(w)) return;
  memcpy(id, msg, 36);
  id[36] = '\0';
  wjob *j = runner_job_find(w, id);
  if (j) {
    log_info("job canceled: stopping it", LS("job_id", j->id));
    runner_job_lost(j);
  }
}

/* A provider's callback reached genq-api for this job: poll its waiting
 * steps now (runner_job_wake bounds how often). Most notices are for jobs
 * other workers hold. */
static void on_wakeup(const char *channel, const char *msg, size_t len, void *arg) {
  (void)channel;
  worker *w = arg;
  char id[37];
  if (len != 36 || worker_past_grace(w)) return;
  memcpy(id, msg, 36);
  id[36] = '\0';
  wjob *j = runner_job_find(w, id);
  if (j) runner_job_wake(j);
}

static void on_connect(rds *r, void *arg) {
  (void)r;
  worker *w = arg;
  queue_ensure_groups(w->redis, w->kinds, w->nkinds);
}

void fetch_start(worker *w) {
  uv_timer_init(w->loop, &w->fetch_timer);
  uv_timer_init(w->loop, &w->reclaim_timer);
  w->fetch_timer.data = w->reclaim_timer.data = w;
  rds_on_connect(w->redis, on_connect, w);
  if (rds_subscribe(w->redis_sub, QUEUE_CANCEL_CHANNEL, on_cancel, w) != 0)
    log_warn("no cancel subscription: cancels reach this worker with the lease renewal", LOG_END);
  if (w->cfg.callback_url && rds_subscribe(w->redis_sub, QUEUE_WAKEUP_CHANNEL, on_wakeup, w) != 0)
    log_warn("no wake-up subscription: callbacks do not wake steps, polls still run", LOG_END);
  uv_timer_start(&w->reclaim_timer, reclaim_cb, 10000, 10000);
  /* the first fetch waits for Redis (the timer path) */
  uv_timer_start(&w->fetch_timer, fetch_retry_cb, 100, 0);
}
