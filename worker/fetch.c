/* fetch.c — from stream messages to claimed jobs.
 *
 *   XREADGROUP while fewer than `concurrency` jobs are in flight → claim
 *   every job it returned in PostgreSQL with one statement (genq_claim_jobs:
 *   status running, epoch + 1, lease) → XACK+XDEL → runner_job_run.
 *
 * PostgreSQL decides who owns a job; Redis only says "look at this job". A
 * message for a job that cannot be claimed (finished, owned by a live
 * worker, not yet due) is dropped: the relay re-sends what still needs to
 * run. Messages whose reader died before its claim are reclaimed, and a
 * cancel notice stops the job it names if it runs here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "queue.h"
#include "uuid.h"
#include "worker.h"

#define FETCH_BLOCK_MS 2000
#define FETCH_RETRY_MS 500
#define CLAIM_MAX 256 /* jobs per claim statement */

/* One claim call: the jobs of the messages one read returned. */
typedef struct {
  worker *w;
  uint64_t sent_at;
  int n;
  struct {
    wjob *j;
    char kind[16];
    char msg_id[48];
  } m[];
} claim_batch;

static void claim_send(claim_batch *c);

/* The batch answered; each message's job is claimed when a row names it. */
static void claimed(const db_result *r, void *arg) {
  claim_batch *c = arg;
  worker *w = c->w;
  for (int i = 0; i < c->n; i++)
    c->m[i].j->db_busy--;
  if (!r->ok && c->n > 1) {
    /* one job may be what failed: claim each on its own */
    log_warn("batch claim failed, claiming one by one", LI("jobs", c->n), LS("error", r->error));
    for (int i = 0; i < c->n; i++) {
      claim_batch *one = malloc(sizeof(*one) + sizeof(one->m[0]));
      if (!one) {
        runner_job_finish(c->m[i].j); /* stays pending; reclaimed later */
        continue;
      }
      one->w = w;
      one->n = 1;
      one->m[0] = c->m[i];
      one->m[0].j->db_busy++;
      claim_send(one);
    }
    free(c);
    return;
  }
  if (!r->ok) {
    /* nothing decided: the message stays pending and is reclaimed */
    log_error("claim failed", LS("job_id", c->m[0].j->id), LS("error", r->error));
    runner_job_finish(c->m[0].j);
    free(c);
    return;
  }
  int rows = PQntuples(r->res);
  char *used = calloc((size_t)(rows ? rows : 1), 1);
  for (int i = 0; i < c->n; i++) {
    wjob *j = c->m[i].j;
    /* PostgreSQL has decided; the message has done its job either way */
    queue_done(w->redis, c->m[i].kind, c->m[i].msg_id, NULL, NULL);
    int row = -1;
    for (int k = 0; used && k < rows && row < 0; k++)
      if (!used[k] && strcasecmp(PQgetvalue(r->res, k, 0), j->id) == 0) row = k;
    if (row < 0) {
      /* a duplicate message of one batch is the second job of that id */
      log_debug("job not claimable, message dropped", LS("job_id", j->id));
      runner_job_finish(j);
      continue;
    }
    used[row] = 1;
    j->epoch = strtoll(PQgetvalue(r->res, row, 1), NULL, 10);
    j->lease_until = c->sent_at + (uint64_t)w->cfg.lease_seconds * 1000;
    snprintf(j->kind, sizeof(j->kind), "%s", PQgetvalue(r->res, row, 2));
    j->input = strdup(PQgetvalue(r->res, row, 3)); /* parsed by the steps that read it */
    j->attempt = atoi(PQgetvalue(r->res, row, 4));
    j->steps = cJSON_Parse(PQgetvalue(r->res, row, 5));
    stage_compact_steps(j->steps); /* held for as long as the job waits */
    j->uploads = cJSON_Parse(PQgetvalue(r->res, row, 6));
    admit_claimed(j);
    metrics_job_claimed(j, strcmp(PQgetvalue(r->res, row, 7), "t") == 0);
    runner_job_run(j);
  }
  free(used);
  free(c);
}

static void claim_send(claim_batch *c) {
  worker *w = c->w;
  const char *ids[CLAIM_MAX];
  for (int i = 0; i < c->n; i++)
    ids[i] = c->m[i].j->id;
  char *arr = db_array_literal(ids, c->n);
  char lease[16], reclaims[16];
  snprintf(lease, sizeof(lease), "%d", w->cfg.lease_seconds);
  snprintf(reclaims, sizeof(reclaims), "%d", w->cfg.max_reclaims);
  const char *p[4] = {arr, w->id, lease, reclaims};
  c->sent_at = uv_now(w->loop);
  if (!arr || db_query(w->db,
                       "select id, epoch, kind, input, attempt, steps, uploads, reclaimed "
                       "from genq_claim_jobs($1::uuid[], $2, $3::int, $4::int)",
                       4, p, claimed, c) != 0) {
    for (int i = 0; i < c->n; i++) {
      c->m[i].j->db_busy--;
      runner_job_finish(c->m[i].j); /* stays pending; reclaimed later */
    }
    free(c);
  }
  free(arr);
}

/* A job that waited for its first step's slot (admit.c) holds it now. */
static void claim_one(wjob *j, const char *msg_id) {
  claim_batch *c = malloc(sizeof(*c) + sizeof(c->m[0]));
  if (!c) {
    runner_job_finish(j); /* stays pending; reclaimed later */
    return;
  }
  c->w = j->w;
  c->n = 1;
  c->m[0].j = j;
  snprintf(c->m[0].kind, sizeof(c->m[0].kind), "%s", j->kind);
  snprintf(c->m[0].msg_id, sizeof(c->m[0].msg_id), "%s", msg_id);
  j->db_busy++;
  claim_send(c);
}

/* Claims the jobs of msgs with one statement (genq_claim_jobs) per
 * CLAIM_MAX of them; a job whose first step's provider is limited first
 * waits for its slot, still queued (admit.c). */
static void claim(worker *w, const queue_msg *msgs, int n) {
  for (; n > CLAIM_MAX; msgs += CLAIM_MAX, n -= CLAIM_MAX)
    claim(w, msgs, CLAIM_MAX);
  claim_batch *c = malloc(sizeof(*c) + (size_t)(n ? n : 1) * sizeof(c->m[0]));
  if (!c) return; /* stays pending; reclaimed later */
  c->w = w;
  c->n = 0;
  for (int i = 0; i < n; i++) {
    const queue_msg *m = &msgs[i];
    if (!genq_is_uuid(m->job_id)) {
      queue_done(w->redis, m->kind, m->msg_id, NULL, NULL); /* malformed: drop */
      continue;
    }
    if (admit_holds(w, m->job_id, m->kind, m->msg_id)) continue;
    wjob *j = runner_job_new(w, m->job_id, m->kind);
    if (!j) continue; /* stays pending; reclaimed later */
    if (admit_take(w, j, m->msg_id, claim_one)) continue;
    c->m[c->n].j = j;
    snprintf(c->m[c->n].kind, sizeof(c->m[c->n].kind), "%s", m->kind);
    snprintf(c->m[c->n].msg_id, sizeof(c->m[c->n].msg_id), "%s", m->msg_id);
    j->db_busy++;
    c->n++;
  }
  admit_flush(w);
  if (c->n == 0) {
    free(c);
    return;
  }
  claim_send(c);
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
  claim(w, msgs, n);
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
  w->metrics.stream_reclaims += (uint64_t)n;
  claim(w, msgs, n);
}

static void reclaim_cb(uv_timer_t *t) {
  worker *w = t->data;
  if (w->state != WORKER_RUNNING || db_connected(w->db) == 0) return;
  for (int i = 0; i < w->nkinds; i++)
    queue_reclaim(w->redis, w->id, w->kinds[i], 30000, 64, reclaimed, w);
}

/* The in-flight job a notice (a job id) names, or NULL: not a job id, not
 * here, or past the shutdown grace. */
static wjob *noticed_job(worker *w, const char *msg, size_t len) {
  char id[37];
  if (len != 36 || worker_past_grace(w)) return NULL;
  memcpy(id, msg, 36);
  id[36] = '\0';
  return runner_job_find(w, id);
}

/* A cancel committed by the API: stop that job now if it is here. */
static void on_cancel(const char *channel, const char *msg, size_t len, void *arg) {
  (void)channel;
  worker *w = arg;
  wjob *j = noticed_job(w, msg, len);
  if (j) {
    log_info("job canceled: stopping it", LS("job_id", j->id));
    runner_job_lost(j);
  } else if (len == 36) {
    char id[37];
    memcpy(id, msg, 36);
    id[36] = '\0';
    admit_cancel(w, id); /* waiting for its slot here, unclaimed */
  }
}

/* A provider's callback reached genq-api for this job: poll its waiting
 * steps now (runner_job_wake bounds how often). Most notices are for jobs
 * other workers hold. */
static void on_wakeup(const char *channel, const char *msg, size_t len, void *arg) {
  (void)channel;
  wjob *j = noticed_job(arg, msg, len);
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
