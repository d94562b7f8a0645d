/* runner.c — a claimed job's run: each unfinished stage in turn, its steps
 * at once (an executor per step kind), each step's success committed by
 * genq_step_succeed; then the run's last word — genq_job_requeue,
 * genq_job_fail or, past the shutdown grace, genq_job_handback — all fenced
 * by the job's epoch (job_stmt.c). A job that is no longer this worker's
 * (reclaimed, canceled) commits nothing more and just leaves. Step begins
 * and successes are group-committed with other jobs' (batch.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"
#include "rand.h"
#include "worker.h"

/* ---- the in-flight list ---- */

/* The failure a run can always record: when even a wfail cannot be had, the
 * job ends as a retryable internal failure. Never freed, never written. */
static wfail fail_no_memory = {.retryable = 1, .code = "internal", .message = "out of memory"};

/* FNV-1a of a job id. */
static size_t id_hash(const char *id) {
  uint64_t h = 1469598103934665603ULL;
  for (; *id; id++)
    h = (h ^ (unsigned char)*id) * 1099511628211ULL;
  return (size_t)h;
}

/* The index of jobs by id, one bucket per job the worker may hold (rounded
 * up to a power of two): 8 bytes a slot. Without it, lookups scan. */
static void index_init(worker *w) {
  size_t n = 64;
  while (n < (size_t)w->concurrency && n < ((size_t)1 << 20))
    n *= 2;
  w->jobs_by_id = calloc(n, sizeof(wjob *));
  w->jobs_mask = w->jobs_by_id ? n - 1 : 0;
}

/* Claimed here and still ours: a duplicate message's entry (epoch 0 until
 * its claim is refused) or a lost job may share the id. */
static int runs_here(const wjob *j, const char *id) {
  return j->epoch && !j->lost && strcmp(j->id, id) == 0;
}

wjob *runner_job_find(worker *w, const char *id) {
  if (!w->jobs_by_id) {
    for (wjob *j = w->jobs; j; j = j->next)
      if (runs_here(j, id)) return j;
    return NULL;
  }
  for (wjob *j = w->jobs_by_id[id_hash(id) & w->jobs_mask]; j; j = j->hnext)
    if (runs_here(j, id)) return j;
  return NULL;
}

wjob *runner_job_lookup(worker *w, const char *id) {
  wjob *j = w->jobs_by_id ? w->jobs_by_id[id_hash(id) & w->jobs_mask] : w->jobs;
  for (; j; j = w->jobs_by_id ? j->hnext : j->next)
    if (strcmp(j->id, id) == 0) return j;
  return NULL;
}

void runner_free(worker *w) {
  free(w->jobs_by_id);
  w->jobs_by_id = NULL;
}

wjob *runner_job_new(worker *w, const char *id, const char *kind) {
  wjob *j = calloc(1, sizeof(*j));
  if (!j) return NULL;
  j->w = w;
  snprintf(j->id, sizeof(j->id), "%s", id);
  snprintf(j->kind, sizeof(j->kind), "%s", kind);
  j->next = w->jobs;
  if (w->jobs) w->jobs->prev = j;
  w->jobs = j;
  if (!w->jobs_by_id) index_init(w);
  if (w->jobs_by_id) {
    wjob **b = &w->jobs_by_id[id_hash(j->id) & w->jobs_mask];
    j->hnext = *b;
    *b = j;
  }
  w->inflight++;
  return j;
}

void runner_job_finish(wjob *j) {
  worker *w = j->w;
  if (j->epoch) metrics_job_left(j); /* a run of it was ours */
  if (w->job_ended) w->job_ended(j);
  if (j->prev) j->prev->next = j->next;
  if (j->next) j->next->prev = j->prev;
  if (w->jobs == j) w->jobs = j->next;
  if (w->jobs_by_id) {
    for (wjob **pp = &w->jobs_by_id[id_hash(j->id) & w->jobs_mask]; *pp; pp = &(*pp)->hnext) {
      if (*pp == j) {
        *pp = j->hnext;
        break;
      }
    }
  }
  free(j->input);
  cJSON_Delete(j->steps);
  cJSON_Delete(j->uploads);
  free(j->user);
  if (j->fail != &fail_no_memory) free(j->fail);
  free(j);
  w->inflight--;
  w->jobs_done++;
  w->job_left(w);
}

static void job_changed(const wjob *j) {
  queue_publish_change(j->w->redis, j->id); /* event streams re-read the job */
}

/* ---- the run's last word ---- */

static void job_maybe_end(wjob *j);

/* The final write of a run answers the job's status after it, or NULL when
 * the epoch no longer matches (someone else owns the job now). */
static void final_write_done(const db_result *r, void *arg) {
  wjob *j = arg;
  j->db_busy--;
  if (!r->ok) {
    /* not committed: the lease lapses and the job is picked up again */
    log_error("job write failed", LS("job_id", j->id), LS("error", r->error));
    j->outcome = JOB_OUT_LOST;
  } else if (!db_fenced_ok(r)) {
    log_warn("job fenced: another worker owns it now", LS("job_id", j->id), LI("epoch", j->epoch));
    j->outcome = JOB_OUT_LOST;
  } else {
    const char *st = PQgetvalue(r->res, 0, 0);
    if (j->outcome == JOB_OUT_RETRY && strcmp(st, "failed") == 0) j->outcome = JOB_OUT_DEAD;
    log_info("job left worker", LS("job_id", j->id), LS("status", st), LI("epoch", j->epoch));
    job_changed(j);
    if (strcmp(st, "failed") == 0) cleanup_release_provider_work(j->w, j->id);
  }
  runner_job_finish(j);
}

/* outcome: what the run ends as once the write commits (a retry may
 * answer that no attempt is left: dead). */
static void final_write(wjob *j, job_outcome outcome, const char *sql, int n,
                        const char *const *params) {
  state_job_set(j, JOB_ENDING_FINAL_WRITE);
  j->outcome = (uint8_t)outcome;
  j->db_busy++;
  if (job_stmt_query(j, sql, n, params, final_write_done, j) != 0) {
    j->db_busy--;
    j->outcome = JOB_OUT_LOST;
    log_error("job write not queued", LS("job_id", j->id));
    runner_job_finish(j);
  }
}

static void fail_job(wjob *j) {
  const wfail *f = j->fail;
  const char *p[3] = {f->step[0] ? f->step : NULL, f->code, f->message};
  log_warn("job failed", LS("job_id", j->id), LS("step", f->step), LS("code", f->code),
           LS("message", f->message));
  final_write(j, JOB_OUT_FAILED, "select genq_job_fail($1::uuid, $2::bigint, $3, $4, $5, false)", 3,
              p);
}

static void requeue_job(wjob *j) {
  const wfail *f = j->fail;
  char delay[24];
  long d = backoff_retry_ms(&j->w->cfg, j->attempt, f->delay_ms, genq_rand64());
  snprintf(delay, sizeof(delay), "%ld", d);
  const char *p[4] = {delay, f->code, f->message, f->step};
  log_info("job retry scheduled", LS("job_id", j->id), LI("attempt", j->attempt), LI("delay_ms", d),
           LS("code", f->code));
  final_write(j, JOB_OUT_RETRY,
              "select genq_job_requeue($1::uuid, $2::bigint, $3::int, $4, $5, $6)", 4, p);
}

/* ---- stopping steps ---- */

static void abort_step(wstep *s) {
  if (s->aborted) return;
  s->aborted = 1;
  worker *w = s->j->w;
  if (s->xfer && w->http) {
    /* its callback reports; a create that may already be paid for is let
     * answer, so that its generation is recorded (and resumed or deleted) */
    if (!s->paid_xfer) httpc_cancel(w->http, s->xfer);
  } else if (uv_is_active((uv_handle_t *)&s->timer)) {
    uv_timer_stop(&s->timer);
    runner_step_stopped(s);
  }
  /* a statement or storage operation in flight reports when it returns */
}

static void abort_steps(wjob *j) {
  for (wstep *s = j->running, *next; s; s = next) {
    next = s->next;
    abort_step(s); /* may free s */
  }
}

void runner_job_lost(wjob *j) {
  if (j->lost) return;
  j->lost = 1;
  abort_steps(j);
  /* canceled (not reclaimed): what still runs at the provider is waste */
  if (!worker_past_grace(j->w)) cleanup_release_provider_work(j->w, j->id);
}

void runner_grace_over(worker *w) {
  /* every step stops (polls stop, downloads abort; a create in flight is
   * let answer so its generation is checkpointed); then each job is handed
   * back (genq_job_handback: queued again at once, the attempt not used),
   * and the next worker resumes its checkpoints */
  for (wjob *j = w->jobs, *next; j; j = next) {
    next = j->next;
    abort_steps(j);
    job_maybe_end(j); /* may finish j, and stop the worker when it was the last */
  }
}

static void start_stage(wjob *j);

/* Once nothing about the job is outstanding: the run's last word (fail,
 * requeue, hand back), the next stage, or leaving. */
static void job_maybe_end(wjob *j) {
  if (j->nrunning > 0 || j->db_busy > 0 || j->ending == JOB_ENDING_FINAL_WRITE) return;
  if (j->ending == JOB_ENDING_WHEN_IDLE || j->lost || j->epoch == 0) {
    runner_job_finish(j);
  } else if (j->fail) {
    if (j->fail->retryable)
      requeue_job(j);
    else
      fail_job(j);
  } else if (j->w->state == WORKER_GRACE_OVER) {
    final_write(j, JOB_OUT_HANDED_BACK, "select genq_job_handback($1::uuid, $2::bigint)", 0, NULL);
  } else {
    start_stage(j);
  }
}

/* ---- a step's end ---- */

/* A step's ref before it has one (wstep.ref is never NULL). */
static char no_ref[1];

/* Replaces s->ref by a copy of ref (NULL: none); -1 when out of memory. */
static int step_set_ref(wstep *s, const char *ref) {
  char *copy = no_ref;
  if (ref && *ref && !(copy = strdup(ref))) return -1;
  if (s->ref != no_ref) free(s->ref);
  s->ref = copy;
  return 0;
}

static void step_closed(uv_handle_t *h) {
  wstep *s = h->data;
  wjob *j = s->j;
  step_set_ref(s, NULL);
  free(s->buf);
  free(s->asset_key);
  free(s);
  j->nrunning--; /* counted until here, so the job outlives its steps */
  job_maybe_end(j);
}

/* Unlinks s from its job and frees it (after its timer closed). */
static void step_end(wstep *s) {
  wjob *j = s->j;
  metrics_step_ended(s);
  if (j->w->step_ended) j->w->step_ended(s);
  for (wstep **pp = &j->running; *pp; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  uv_close((uv_handle_t *)&s->timer, step_closed);
}

static void note_failure(wjob *j, const wstep *s, const step_result *r) {
  wfail *f = j->fail;
  /* a non-retryable failure wins over a retryable one */
  if (f && (!f->retryable || r->retryable)) {
    if (f != &fail_no_memory && r->retryable && r->retry_after_ms > f->delay_ms)
      f->delay_ms = r->retry_after_ms;
    return;
  }
  if (!f || f == &fail_no_memory) f = malloc(sizeof(*f));
  if (!f) {
    j->fail = &fail_no_memory;
    abort_steps(j);
    return;
  }
  j->fail = f;
  f->retryable = r->retryable;
  f->delay_ms = r->retry_after_ms;
  snprintf(f->step, sizeof(f->step), "%s", s ? s->name : "");
  snprintf(f->code, sizeof(f->code), "%s", r->code ? r->code : "internal");
  snprintf(f->message, sizeof(f->message), "%s", r->message ? r->message : "");
  if (!r->retryable) abort_steps(j); /* nothing else of this job is worth paying for */
}

/* An internal (retryable) failure of s, or of the job when s is NULL; ends s. */
static void internal_failure(wjob *j, wstep *s, const char *message) {
  step_result f = {.ok = 0, .retryable = 1, .code = "internal", .message = message};
  note_failure(j, s, &f);
  if (s) step_end(s);
}

static void step_succeeded(const db_result *r, void *arg) {
  wstep *s = arg;
  wjob *j = s->j;
  if (!r->ok) {
    log_error("step write failed", LS("job_id", j->id), LS("step", s->name), LS("error", r->error));
    internal_failure(j, s, "database error");
    return;
  }
  if (!db_fenced_ok(r)) {
    /* NULL: no asset row has this asset's id (a resend of a success that
     * committed answers the job's status instead), so the bytes are ours
     * alone and nobody will ever read them */
    log_warn("job fenced at step commit", LS("job_id", j->id), LI("epoch", j->epoch));
    cleanup_drop_asset_bytes(j->w, s->asset_key);
    runner_job_lost(j);
  } else {
    stage_step_set(s->step, "status", cJSON_CreateString("succeeded"));
    s->outcome = STEP_OUT_SUCCEEDED;
    job_changed(j);
    if (strcmp(PQgetvalue(r->res, 0, 0), "succeeded") == 0) {
      state_job_set(j, JOB_ENDING_WHEN_IDLE); /* the commit finished the job */
      j->outcome = JOB_OUT_SUCCEEDED;
      log_info("job succeeded", LS("job_id", j->id));
    }
  }
  step_end(s);
}

int runner_step_should_stop(const wstep *s) {
  return s->aborted || s->j->lost || worker_past_grace(s->j->w);
}

void runner_step_stopped(wstep *s) {
  step_result r = {.ok = 0, .retryable = 1, .code = "aborted", .message = "step stopped"};
  runner_step_done(s, &r);
}

static const char *asset_key(const step_result *r) {
  return r->asset ? cJSON_GetStringValue(cJSON_GetObjectItem(r->asset, "storage_key")) : NULL;
}

void runner_step_done(wstep *s, const step_result *r) {
  wjob *j = s->j;
  s->xfer = 0;
  if (s->reported) return;
  s->reported = 1;
  if (runner_step_should_stop(s) && !(r->ok && !j->lost)) {
    log_info("step stopped", LS("job_id", j->id), LS("step", s->name));
    cleanup_drop_asset_bytes(j->w, asset_key(r));
    step_end(s);
    return;
  }
  if (!r->ok) {
    log_info("step failed", LS("job_id", j->id), LS("step", s->name), LS("code", r->code),
             LI("retryable", r->retryable), LS("message", r->message));
    s->outcome = STEP_OUT_FAILED;
    note_failure(j, s, r);
    step_end(s);
    return;
  }
  char *out = cJSON_PrintUnformatted(r->output);
  char *job_out = r->job_output ? cJSON_PrintUnformatted(r->job_output) : NULL;
  char *asset = r->asset ? cJSON_PrintUnformatted(r->asset) : NULL;
  if (out) {
    /* later steps of this run read it from here */
    stage_step_set(s->step, "output", cJSON_Duplicate(r->output, 1));
  }
  const char *key = asset_key(r);
  s->asset_key = key ? strdup(key) : NULL;
  const char *p[4] = {s->name, out, job_out, asset};
  log_info("step succeeded", LS("job_id", j->id), LS("step", s->name));
  if (!out || batch_query(j, BATCH_STEP_SUCCEED, 4, p, step_succeeded, s) != 0)
    internal_failure(j, s, "step not recorded");
  free(out);
  free(job_out);
  free(asset);
}

/* ---- checkpoints, polls, progress ---- */

typedef struct {
  wstep *s;
  void (*cb)(wstep *s, int ok);
} ckpt_ctx;

static void checkpointed(const db_result *r, void *arg) {
  ckpt_ctx *c = arg;
  wstep *s = c->s;
  int ok = db_fenced_ok(r);
  if (!r->ok)
    log_error("checkpoint failed", LS("job_id", s->j->id), LS("step", s->name),
              LS("error", r->error));
  else if (!ok)
    log_warn("job fenced at checkpoint", LS("job_id", s->j->id), LS("step", s->name));
  void (*cb)(wstep *, int) = c->cb;
  free(c);
  if (ok) job_changed(s->j);
  cb(s, ok);
}

int runner_step_checkpoint(wstep *s, const char *ref, void (*cb)(wstep *s, int ok)) {
  ckpt_ctx *c = malloc(sizeof(*c));
  char *copy = ref && *ref ? strdup(ref) : no_ref;
  if (!c || !copy) {
    free(c);
    return -1;
  }
  c->s = s;
  c->cb = cb;
  const char *p[2] = {s->name, ref};
  if (job_stmt_query(s->j, "select genq_step_checkpoint($1::uuid, $2::bigint, $3, $4)", 2, p,
                     checkpointed, c) != 0) {
    free(c);
    if (copy != no_ref) free(copy);
    return -1;
  }
  if (s->ref != no_ref) free(s->ref);
  s->ref = copy;
  return 0;
}

static void poll_fire(uv_timer_t *t) {
  wstep *s = t->data;
  if (runner_step_should_stop(s))
    runner_step_stopped(s);
  else
    s->poll_cb(s);
}

/* Polls due within this grid step of loop time fire together: one wake-up
 * of the loop (and one round of curl's socket work) serves many waiting
 * steps instead of one each. Only for delays of a second and more. */
#define POLL_GRID_MS 50

void runner_step_poll_later(wstep *s, void (*cb)(wstep *s)) {
  const genq_config *c = &s->j->w->cfg;
  long cap = s->wakeable ? c->callback_poll_max_interval_ms : c->poll_max_interval_ms;
  uint64_t d = backoff_poll_cap_ms(c, cap, s->polls, s->retry_after_ms, genq_rand64());
  if (d >= 1000) {
    uint64_t now = uv_now(s->j->w->loop);
    d = (now + d + POLL_GRID_MS - 1) / POLL_GRID_MS * POLL_GRID_MS - now;
  }
  s->retry_after_ms = 0;
  s->polls++;
  s->poll_cb = cb;
  uv_timer_start(&s->timer, poll_fire, d, 0);
}

void runner_step_wait(wstep *s, uint64_t ms, void (*cb)(wstep *s)) {
  s->poll_cb = cb;
  uv_timer_start(&s->timer, poll_fire, ms, 0);
}

/* A step polls early for a wake at most this often, whatever the callbacks. */
#define WAKE_MIN_GAP_MS 1000

void runner_job_wake(wjob *j) {
  worker *w = j->w;
  uint64_t now = uv_now(w->loop);
  for (wstep *s = j->running; s; s = s->next) {
    /* only a step waiting on its poll timer: a poll in flight answers anyway */
    if (!s->wakeable || !s->poll_cb || s->xfer || !uv_is_active((uv_handle_t *)&s->timer)) continue;
    if (s->woken_at && now - s->woken_at < WAKE_MIN_GAP_MS) continue;
    s->woken_at = now;
    uv_timer_start(&s->timer, poll_fire, 0, 0);
  }
}

static void progress_written(const db_result *r, void *arg) {
  wjob *j = arg;
  j->db_busy--;
  if (r->ok && !db_fenced_ok(r)) {
    log_warn("job fenced at progress", LS("job_id", j->id), LI("epoch", j->epoch));
    runner_job_lost(j); /* canceled or reclaimed: stop paying for it */
  } else if (r->ok)
    job_changed(j);
  job_maybe_end(j);
}

void runner_step_progress(wstep *s, double progress) {
  wjob *j = s->j;
  if (progress < 0) progress = 0;
  if (progress > 1) progress = 1;
  if (progress < s->progress + 0.05) return; /* only real moves are written */
  s->progress = progress;
  char epoch[24], pr[32];
  snprintf(epoch, sizeof(epoch), "%lld", j->epoch);
  snprintf(pr, sizeof(pr), "%.3f", progress);
  const char *p[4] = {j->id, epoch, s->name, pr};
  j->db_busy++;
  if (db_query(j->w->db, "select genq_step_progress($1::uuid, $2::bigint, $3, $4::real)", 4, p,
               progress_written, j) != 0)
    j->db_busy--;
}

cJSON *runner_job_input(const wjob *j) {
  return j->input ? cJSON_Parse(j->input) : NULL;
}

const cJSON *runner_step_output(const wjob *j, const char *step) {
  const cJSON *s;
  cJSON_ArrayForEach(s, j->steps) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(s, "name");
    if (cJSON_IsString(n) && strcmp(n->valuestring, step) == 0)
      return cJSON_GetObjectItemCaseSensitive(s, "output");
  }
  return NULL;
}

/* ---- running steps ---- */

static void step_begun(const db_result *r, void *arg) {
  wstep *s = arg;
  wjob *j = s->j;
  if (!db_fenced_ok(r)) {
    if (!r->ok)
      log_error("step begin failed", LS("job_id", j->id), LS("error", r->error));
    else
      log_warn("job fenced at step begin", LS("job_id", j->id), LI("epoch", j->epoch));
    s->reported = 1;
    runner_job_lost(j);
    step_end(s);
    return;
  }
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  job_changed(j);
  const step_executor *e = j->w->executors;
  while (e->step_kind && strcmp(e->step_kind, s->step_kind) != 0)
    e++;
  if (!e->step_kind) {
    step_result f = {
        .ok = 0, .code = "unsupported", .message = "this worker has no executor for the step"};
    runner_step_done(s, &f);
  } else if (e->run(s) != 0) {
    step_result f = {.ok = 0,
                     .retryable = 1,
                     .code = "internal",
                     .message = "could not start the provider call"};
    runner_step_done(s, &f);
  }
}

static int step_start(wjob *j, cJSON *step) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(step, "name");
  const cJSON *sk = cJSON_GetObjectItemCaseSensitive(step, "step_kind");
  const cJSON *ref = cJSON_GetObjectItemCaseSensitive(step, "provider_ref");
  const cJSON *price = cJSON_GetObjectItemCaseSensitive(step, "price");
  if (!cJSON_IsString(name) || !cJSON_IsString(sk)) return -1;
  wstep *s = calloc(1, sizeof(*s));
  if (!s) return -1;
  s->j = j;
  s->started_at = uv_now(j->w->loop);
  s->price = cJSON_IsNumber(price) ? price->valueint : 0;
  s->step = step;
  s->name = name->valuestring;
  s->step_kind = sk->valuestring;
  s->ref = no_ref;
  if (cJSON_IsString(ref) && step_set_ref(s, ref->valuestring) != 0) {
    free(s);
    return -1;
  }
  /* from here on s->ref is the step's reference: the copy in the tree
   * would only cost a waiting step's memory */
  cJSON_DeleteItemFromObjectCaseSensitive(step, "provider_ref");
  cJSON_DeleteItemFromObjectCaseSensitive(step, "price"); /* s->price now */
  uv_timer_init(j->w->loop, &s->timer);
  s->timer.data = s;
  s->next = j->running;
  j->running = s;
  j->nrunning++;
  const char *p[1] = {s->name};
  if (batch_query(j, BATCH_STEP_BEGIN, 1, p, step_begun, s) != 0) {
    s->reported = 1;
    step_end(s);
    return -1;
  }
  return 0;
}

/* Starts every unfinished step of the lowest unfinished stage. */
static void start_stage(wjob *j) {
  int stage = stage_next(j->steps), started = 0;
  if (stage < 0) {
    /* nothing left: every step had succeeded before this run (the job is
     * finished in PostgreSQL already, or a commit answered late) */
    state_job_set(j, JOB_ENDING_WHEN_IDLE);
    job_maybe_end(j);
    return;
  }
  cJSON *s;
  cJSON_ArrayForEach(s, j->steps) {
    if (!stage_pending(s, stage)) continue;
    if (step_start(j, s) == 0)
      started++;
    else
      internal_failure(j, NULL, "cannot start step");
  }
  if (!started) job_maybe_end(j);
}

void runner_job_run(wjob *j) {
  j->claimed_at = uv_now(j->w->loop);
  cJSON *in = runner_job_input(j);
  int malformed = !in || !cJSON_IsArray(j->steps) || !cJSON_IsObject(j->uploads);
  cJSON_Delete(in);
  if (malformed) {
    step_result f = {.ok = 0, .code = "internal", .message = "job record is malformed"};
    note_failure(j, NULL, &f);
    job_maybe_end(j);
    return;
  }
  if (!j->uploads->child) { /* most jobs have none: absent reads the same */
    cJSON_Delete(j->uploads);
    j->uploads = NULL;
  }
  log_info("job claimed", LS("job_id", j->id), LS("kind", j->kind), LI("epoch", j->epoch),
           LI("attempt", j->attempt));
  job_changed(j);
  if (worker_past_grace(j->w))
    job_maybe_end(j); /* claimed as the grace ran out: hand it back */
  else
    start_stage(j);
}
