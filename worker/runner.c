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
  cJSON_Delete(j->uploads);
  free(j);
  w->inflight--;
  w->jobs_done++;
  if (w->stopping && w->inflight == 0)
    worker_stop(w); /* everything handed back: finish shutting down */
  else
    fetch_more(w);
}

static void job_changed(const wjob *j) {
  queue_publish_change(j->w->redis, j->id); /* event streams re-read the job */
}

static void epoch_str(const wjob *j, char buf[24]) {
  snprintf(buf, 24, "%lld", j->epoch);
}

/* ---- provider clean-up after a job ended failed or canceled ----
 * Generations still running at the provider for steps that will never use
 * them are deleted (Luma refunds them; Hedra has no cancel). Detached from
 * the wjob: it may already be gone. */

static void generation_deleted(const luma_result *r, void *arg) {
  char *ref = arg;
  if (!r->ok)
    log_warn("provider generation not deleted", LS("provider_ref", ref), LS("error", r->message));
  else
    log_info("provider generation deleted", LS("provider_ref", ref));
  free(ref);
}

void runner_delete_generation(worker *w, const char *provider, const char *ref) {
  if (strcmp(provider, "luma") != 0 || !w->http) return;
  char *id = strdup(ref);
  if (id && luma_delete(w->http, &w->luma, id, generation_deleted, id, NULL) != 0) free(id);
}

static void refs_listed(const db_result *r, void *arg) {
  worker *w = arg;
  if (!r->ok) {
    log_warn("provider clean-up failed", LS("error", r->error));
    return;
  }
  for (int i = 0; i < PQntuples(r->res); i++)
    runner_delete_generation(w, PQgetvalue(r->res, i, 2), PQgetvalue(r->res, i, 3));
}

void runner_release_provider_work(worker *w, const char *job_id) {
  const char *p[2] = {job_id, "100"};
  db_query(w->db, "select * from genq_refs_to_release($1::uuid, $2::int)", 2, p, refs_listed, w);
}

/* ---- statements about a job, surviving a PostgreSQL restart ----
 * A fenced statement that failed for a transient reason (connection lost,
 * server restarting: db_transient) is sent again with backoff while the job
 * is still this worker's. Each of them may be repeated: a checkpoint of the
 * same id, a step that already succeeded and a write fenced by an epoch that
 * moved on all change nothing the second time. Giving up instead would drop
 * a paid generation's id, or leave the job to its lease and a reclaim. */

#define STMT_RETRY_MIN_MS 200
#define STMT_RETRY_MAX_MS 5000
#define STMT_MAX_PARAMS 8

typedef struct {
  wjob *j;
  char *sql;
  int n;
  char *p[STMT_MAX_PARAMS];
  db_cb cb;
  void *arg;
  unsigned delay_ms;
  int sent; /* times sent so far */
  uv_timer_t timer;
} job_stmt;

static void job_stmt_free(job_stmt *q) {
  free(q->sql);
  for (int i = 0; i < q->n; i++)
    free(q->p[i]);
  free(q);
}

static void job_stmt_closed(uv_handle_t *h) {
  job_stmt_free(h->data);
}

static void job_stmt_done(const db_result *r, void *arg);

static void job_stmt_send(uv_timer_t *t) {
  job_stmt *q = t->data;
  if (q->sent++ && (q->j->lost || q->j->w->stopping >= 2)) {
    /* a resend only while the job is ours and the worker is not past its grace */
    db_result r = {.ok = 0, .sqlstate = "57014", .error = "the job was let go"};
    q->cb(&r, q->arg);
    uv_close((uv_handle_t *)&q->timer, job_stmt_closed);
    return;
  }
  if (db_query(q->j->w->db, q->sql, q->n, (const char *const *)q->p, job_stmt_done, q) != 0) {
    db_result r = {.ok = 0, .sqlstate = "53000", .error = "the statement queue is full"};
    job_stmt_done(&r, q);
  }
}

static void job_stmt_done(const db_result *r, void *arg) {
  job_stmt *q = arg;
  if (db_transient(r) && !q->j->lost && q->j->w->stopping < 2) {
    log_warn("job statement failed, sending it again", LS("job_id", q->j->id),
             LS("error", r->error), LI("delay_ms", q->delay_ms));
    uv_timer_start(&q->timer, job_stmt_send, q->delay_ms, 0);
    q->delay_ms = q->delay_ms * 2 > STMT_RETRY_MAX_MS ? STMT_RETRY_MAX_MS : q->delay_ms * 2;
    return;
  }
  q->cb(r, q->arg);
  uv_close((uv_handle_t *)&q->timer, job_stmt_closed);
}

/* Like db_query, for the job's fenced statements. cb runs exactly once,
 * never before job_query returned 0. */
static int job_query(wjob *j, const char *sql, int n, const char *const *params, db_cb cb,
                     void *arg) {
  job_stmt *q = calloc(1, sizeof(*q));
  if (!q || n > STMT_MAX_PARAMS || !(q->sql = strdup(sql))) {
    free(q);
    return -1;
  }
  q->j = j;
  q->cb = cb;
  q->arg = arg;
  q->delay_ms = STMT_RETRY_MIN_MS;
  for (q->n = 0; q->n < n; q->n++) {
    if (params[q->n] && !(q->p[q->n] = strdup(params[q->n]))) {
      job_stmt_free(q);
      return -1;
    }
  }
  uv_timer_init(j->w->loop, &q->timer);
  q->timer.data = q;
  uv_timer_start(&q->timer, job_stmt_send, 0, 0);
  return 0;
}

/* ---- ending a job: fenced writes ---- */

static void job_maybe_end(wjob *j);

/* The final write of a run answers the job's status after it, or NULL when
 * the epoch no longer matches (someone else owns the job now). */
static void final_write_done(const db_result *r, void *arg) {
  wjob *j = arg;
  j->db_busy--;
  if (!r->ok) {
    /* not committed: the lease lapses and the job is picked up again */
    log_error("job write failed", LS("job_id", j->id), LS("error", r->error));
  } else if (!db_fenced_ok(r)) {
    log_warn("job fenced: another worker owns it now", LS("job_id", j->id), LI("epoch", j->epoch));
  } else {
    const char *st = PQgetvalue(r->res, 0, 0);
    log_info("job left worker", LS("job_id", j->id), LS("status", st), LI("epoch", j->epoch));
    job_changed(j);
    if (strcmp(st, "failed") == 0) runner_release_provider_work(j->w, j->id);
  }
  job_finish(j);
}

static void final_write(wjob *j, const char *sql, int n, const char *const *params) {
  j->db_busy++;
  if (job_query(j, sql, n, params, final_write_done, j) != 0) {
    j->db_busy--;
    log_error("job write not queued", LS("job_id", j->id));
    job_finish(j);
  }
}

static void fail_job(wjob *j) {
  char epoch[24];
  epoch_str(j, epoch);
  const char *p[5] = {j->id, epoch, j->fail_step[0] ? j->fail_step : NULL, j->fail_code,
                      j->fail_message};
  log_warn("job failed", LS("job_id", j->id), LS("step", j->fail_step), LS("code", j->fail_code),
           LS("message", j->fail_message));
  final_write(j, "select genq_job_fail($1::uuid, $2::bigint, $3, $4, $5, false)", 5, p);
}

static void requeue_job(wjob *j) {
  char epoch[24], delay[24];
  epoch_str(j, epoch);
  long d = lease_retry_delay_ms(&j->w->cfg, j->attempt, j->fail_delay_ms);
  snprintf(delay, sizeof(delay), "%ld", d);
  const char *p[6] = {j->id, epoch, delay, j->fail_code, j->fail_message, j->fail_step};
  log_info("job retry scheduled", LS("job_id", j->id), LI("attempt", j->attempt), LI("delay_ms", d),
           LS("code", j->fail_code));
  final_write(j, "select genq_job_requeue($1::uuid, $2::bigint, $3::int, $4, $5, $6)", 6, p);
}

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
  if (j->w->stopping < 2) runner_release_provider_work(j->w, j->id);
}

static void start_stage(wjob *j);

/* Once nothing about the job is outstanding: the run's last word (fail,
 * requeue), the next stage, or letting go. ending: 1 done here, finish when
 * idle; 2 the final write is out (its callback finishes the job). */
static void job_maybe_end(wjob *j) {
  if (j->nrunning > 0 || j->db_busy > 0 || j->ending == 2) return;
  if (j->ending == 1 || j->lost || j->epoch == 0 || j->w->stopping > 2) {
    job_finish(j);
  } else if (j->failed) {
    j->ending = 2;
    if (j->fail_retryable)
      requeue_job(j);
    else
      fail_job(j);
  } else if (j->w->stopping == 2) {
    char epoch[24];
    epoch_str(j, epoch);
    const char *p[2] = {j->id, epoch};
    j->ending = 2;
    final_write(j, "select genq_job_handback($1::uuid, $2::bigint)", 2, p);
  } else {
    start_stage(j);
  }
}

static void step_closed(uv_handle_t *h) {
  wstep *s = h->data;
  wjob *j = s->j;
  free(s->buf);
  free(s->asset_key);
  free(s);
  j->nrunning--; /* counted until here, so the job outlives its steps */
  job_maybe_end(j);
}

/* Unlinks s from its job and frees it (after its timer closed). */
static void step_end(wstep *s) {
  wjob *j = s->j;
  for (wstep **pp = &j->running; *pp; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  uv_close((uv_handle_t *)&s->timer, step_closed);
}

static void note_failure(wjob *j, const wstep *s, const step_result *r) {
  /* a non-retryable failure wins over a retryable one */
  if (j->failed && (!j->fail_retryable || r->retryable)) {
    if (r->retryable && r->retry_after_ms > j->fail_delay_ms) j->fail_delay_ms = r->retry_after_ms;
    return;
  }
  j->failed = 1;
  j->fail_retryable = r->retryable;
  j->fail_delay_ms = r->retry_after_ms;
  snprintf(j->fail_step, sizeof(j->fail_step), "%s", s ? s->name : "");
  snprintf(j->fail_code, sizeof(j->fail_code), "%s", r->code ? r->code : "internal");
  snprintf(j->fail_message, sizeof(j->fail_message), "%s", r->message ? r->message : "");
  if (!r->retryable) abort_steps(j); /* nothing else of this job is worth paying for */
}

static void orphan_deleted(const char *err, void *arg) {
  char *key = arg;
  if (err) log_warn("uncommitted result bytes not deleted", LS("key", key), LS("error", err));
  free(key);
}

/* Stored bytes whose asset row will never be written (the job is not ours
 * any more): delete them, or nothing would ever purge them. */
static void drop_asset_bytes(worker *w, const char *key) {
  char *k = key ? strdup(key) : NULL;
  if (k && (!w->storage || storage_delete(w->storage, k, orphan_deleted, k) != 0)) free(k);
}

static void step_succeeded(const db_result *r, void *arg) {
  wstep *s = arg;
  wjob *j = s->j;
  if (!r->ok) {
    log_error("step write failed", LS("job_id", j->id), LS("step", s->name), LS("error", r->error));
    step_result f = {.ok = 0, .retryable = 1, .code = "internal", .message = "database error"};
    note_failure(j, s, &f);
  } else if (!db_fenced_ok(r)) {
    /* NULL: no asset row has this asset's id (a resend of a success that
     * committed answers the job's status instead), so the bytes are ours
     * alone and nobody will ever read them */
    log_warn("job fenced at step commit", LS("job_id", j->id), LI("epoch", j->epoch));
    drop_asset_bytes(j->w, s->asset_key);
    runner_job_lost(j);
  } else {
    cJSON_ReplaceItemInObject(s->step, "status", cJSON_CreateString("succeeded"));
    job_changed(j);
    if (strcmp(PQgetvalue(r->res, 0, 0), "succeeded") == 0) {
      log_info("job succeeded", LS("job_id", j->id));
      j->ending = 1; /* the commit finished the job */
    }
  }
  step_end(s);
}

int runner_step_should_stop(const wstep *s) {
  return s->aborted || s->j->lost || s->j->w->stopping > 1;
}

void runner_step_stopped(wstep *s) {
  step_result r = {.ok = 0, .retryable = 1, .code = "aborted", .message = "step stopped"};
  runner_step_done(s, &r);
}

void runner_step_done(wstep *s, const step_result *r) {
  wjob *j = s->j;
  s->xfer = 0;
  if (s->reported) return;
  s->reported = 1;
  if (runner_step_should_stop(s) && !(r->ok && !j->lost)) {
    log_info("step stopped", LS("job_id", j->id), LS("step", s->name));
    if (r->asset)
      drop_asset_bytes(j->w, cJSON_GetStringValue(cJSON_GetObjectItem(r->asset, "storage_key")));
    step_end(s);
    return;
  }
  if (!r->ok) {
    log_info("step failed", LS("job_id", j->id), LS("step", s->name), LS("code", r->code),
             LI("retryable", r->retryable), LS("message", r->message));
    note_failure(j, s, r);
    step_end(s);
    return;
  }
  char epoch[24];
  epoch_str(j, epoch);
  char *out = cJSON_PrintUnformatted(r->output);
  char *job_out = r->job_output ? cJSON_PrintUnformatted(r->job_output) : NULL;
  char *asset = r->asset ? cJSON_PrintUnformatted(r->asset) : NULL;
  if (out) {
    /* later steps of this run read it from here */
    cJSON *copy = cJSON_Duplicate(r->output, 1);
    if (copy) cJSON_ReplaceItemInObject(s->step, "output", copy);
  }
  if (r->asset) {
    const char *key = cJSON_GetStringValue(cJSON_GetObjectItem(r->asset, "storage_key"));
    s->asset_key = key ? strdup(key) : NULL;
  }
  const char *p[6] = {j->id, epoch, s->name, out, job_out, asset};
  log_info("step succeeded", LS("job_id", j->id), LS("step", s->name));
  if (!out || job_query(j,
                        "select genq_step_succeed($1::uuid, $2::bigint, $3, $4::jsonb, $5::jsonb, "
                        "$6::jsonb)",
                        6, p, step_succeeded, s) != 0) {
    step_result f = {.ok = 0, .retryable = 1, .code = "internal", .message = "step not recorded"};
    note_failure(j, s, &f);
    step_end(s);
  }
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
  if (!c) return -1;
  c->s = s;
  c->cb = cb;
  char epoch[24];
  epoch_str(s->j, epoch);
  const char *p[4] = {s->j->id, epoch, s->name, ref};
  if (job_query(s->j, "select genq_step_checkpoint($1::uuid, $2::bigint, $3, $4)", 4, p,
                checkpointed, c) != 0) {
    free(c);
    return -1;
  }
  if (ref)
    snprintf(s->ref, sizeof(s->ref), "%s", ref);
  else
    s->ref[0] = '\0';
  return 0;
}

static void poll_fire(uv_timer_t *t) {
  wstep *s = t->data;
  if (runner_step_should_stop(s))
    runner_step_stopped(s);
  else
    s->poll_cb(s);
}

void runner_step_poll_later(wstep *s, void (*cb)(wstep *s)) {
  const genq_config *c = &s->j->w->cfg;
  double d = c->poll_interval_ms;
  for (int i = 0; i < s->polls && d < c->poll_max_interval_ms; i++)
    d *= 1.5;
  if (d > c->poll_max_interval_ms) d = c->poll_max_interval_ms;
  /* ±10%: polls of many steps spread out (xorshift: no syscall per poll) */
  static uint64_t x;
  if (!x) x = uv_hrtime() | 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  d = d * 0.9 + d * 0.2 * (double)(x % 1000) / 1000.0;
  if (s->retry_after_ms > d) /* the provider asked, within reason */
    d = (double)(s->retry_after_ms < c->retry_cap_ms ? s->retry_after_ms : c->retry_cap_ms);
  s->retry_after_ms = 0;
  s->polls++;
  s->poll_cb = cb;
  uv_timer_start(&s->timer, poll_fire, (uint64_t)d, 0);
}

static void progress_written(const db_result *r, void *arg) {
  wjob *j = arg;
  j->db_busy--;
  if (r->ok && !db_fenced_ok(r))
    runner_job_lost(j); /* canceled or reclaimed: stop paying for it */
  else if (r->ok)
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
  epoch_str(j, epoch);
  snprintf(pr, sizeof(pr), "%.3f", progress);
  const char *p[4] = {j->id, epoch, s->name, pr};
  j->db_busy++;
  if (db_query(j->w->db, "select genq_step_progress($1::uuid, $2::bigint, $3, $4::real)", 4, p,
               progress_written, j) != 0)
    j->db_busy--;
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

typedef struct {
  const char *step_kind;
  int (*run)(wstep *s);
} step_executor;

static const step_executor executors[] = {
    {"storyboard", step_storyboard_run},
    {"image", step_luma_run},
    {"video", step_luma_run},
    {"lipsync", step_lipsync_run},
};

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
  cJSON_ReplaceItemInObject(s->step, "status", cJSON_CreateString("running"));
  job_changed(j);
  for (size_t i = 0; i < sizeof(executors) / sizeof(executors[0]); i++) {
    if (strcmp(executors[i].step_kind, s->step_kind) == 0) {
      if (executors[i].run(s) != 0) {
        step_result fail = {.ok = 0,
                            .retryable = 1,
                            .code = "internal",
                            .message = "could not start the provider call"};
        runner_step_done(s, &fail);
      }
      return;
    }
  }
  step_result fail = {
      .ok = 0, .code = "unsupported", .message = "this worker has no executor for the step"};
  runner_step_done(s, &fail);
}

static int step_start(wjob *j, cJSON *step) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(step, "name");
  const cJSON *sk = cJSON_GetObjectItemCaseSensitive(step, "step_kind");
  const cJSON *ref = cJSON_GetObjectItemCaseSensitive(step, "provider_ref");
  if (!cJSON_IsString(name) || !cJSON_IsString(sk)) return -1;
  wstep *s = calloc(1, sizeof(*s));
  if (!s) return -1;
  s->j = j;
  s->step = step;
  s->name = name->valuestring;
  s->step_kind = sk->valuestring;
  if (cJSON_IsString(ref)) snprintf(s->ref, sizeof(s->ref), "%s", ref->valuestring);
  uv_timer_init(j->w->loop, &s->timer);
  s->timer.data = s;
  s->next = j->running;
  j->running = s;
  j->nrunning++;
  char epoch[24];
  epoch_str(j, epoch);
  const char *p[3] = {j->id, epoch, s->name};
  if (job_query(j, "select genq_step_begin($1::uuid, $2::bigint, $3)", 3, p, step_begun, s) != 0) {
    s->reported = 1;
    step_end(s);
    return -1;
  }
  return 0;
}

static int step_stage(const cJSON *s) {
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(s, "stage");
  return cJSON_IsNumber(st) ? st->valueint : 0;
}

static int step_done(const cJSON *s) {
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(s, "status");
  return cJSON_IsString(st) && strcmp(st->valuestring, "succeeded") == 0;
}

/* Starts every unfinished step of the lowest unfinished stage. */
static void start_stage(wjob *j) {
  int stage = -1;
  cJSON *s;
  cJSON_ArrayForEach(s, j->steps) {
    if (!step_done(s) && (stage < 0 || step_stage(s) < stage)) stage = step_stage(s);
  }
  if (stage < 0) {
    /* nothing left: every step had succeeded before this run (the job is
     * finished in PostgreSQL already, or a commit answered late) */
    j->ending = 1;
    job_maybe_end(j);
    return;
  }
  int started = 0;
  cJSON_ArrayForEach(s, j->steps) {
    if (step_done(s) || step_stage(s) != stage) continue;
    if (step_start(j, s) == 0) {
      started++;
    } else {
      step_result f = {.ok = 0, .retryable = 1, .code = "internal", .message = "cannot start step"};
      note_failure(j, NULL, &f);
    }
  }
  if (!started) job_maybe_end(j);
}

/* ---- claiming ---- */

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
    job_finish(j);
    return;
  }
  /* PostgreSQL has decided; the message has done its job either way */
  queue_done(w->redis, j->kind, c->msg_id, NULL, NULL);
  uint64_t sent_at = c->sent_at;
  free(c);
  if (PQntuples(r->res) != 1) {
    log_debug("job not claimable, message dropped", LS("job_id", j->id));
    job_finish(j);
    return;
  }
  j->epoch = strtoll(PQgetvalue(r->res, 0, 0), NULL, 10);
  j->lease_until = sent_at + (uint64_t)w->cfg.lease_seconds * 1000;
  snprintf(j->kind, sizeof(j->kind), "%s", PQgetvalue(r->res, 0, 1));
  j->input = cJSON_Parse(PQgetvalue(r->res, 0, 2));
  j->attempt = atoi(PQgetvalue(r->res, 0, 3));
  j->max_attempts = atoi(PQgetvalue(r->res, 0, 4));
  j->steps = cJSON_Parse(PQgetvalue(r->res, 0, 5));
  j->uploads = cJSON_Parse(PQgetvalue(r->res, 0, 6));
  if (!j->input || !cJSON_IsArray(j->steps) || !cJSON_IsObject(j->uploads)) {
    step_result f = {.ok = 0, .code = "internal", .message = "job record is malformed"};
    note_failure(j, NULL, &f);
    job_maybe_end(j);
    return;
  }
  log_info("job claimed", LS("job_id", j->id), LS("kind", j->kind), LI("epoch", j->epoch),
           LI("attempt", j->attempt));
  job_changed(j);
  if (w->stopping > 1)
    job_maybe_end(j); /* claimed as the grace ran out: hand it back */
  else
    start_stage(j);
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
  c->sent_at = uv_now(w->loop);
  char lease[16];
  snprintf(lease, sizeof(lease), "%d", w->cfg.lease_seconds);
  char reclaims[16];
  snprintf(reclaims, sizeof(reclaims), "%d", w->cfg.max_reclaims);
  const char *p[4] = {j->id, w->id, lease, reclaims};
  j->db_busy++;
  if (db_query(w->db,
               "select epoch, kind, input, attempt, max_attempts, steps, uploads "
               "from genq_claim_job($1::uuid, $2, $3::int, $4::int)",
               4, p, claimed, c) != 0) {
    free(c);
    j->db_busy--;
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
  if (w->quiet) {
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

static void fetch_more(worker *w) {
  if (w->stopping || w->quiet || w->fetching || w->inflight >= w->concurrency) return;
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
  if (err || w->stopping) return;
  for (int i = 0; i < n; i++)
    claim(w, &msgs[i]);
}

static void reclaim_cb(uv_timer_t *t) {
  worker *w = t->data;
  if (w->stopping || w->quiet || db_connected(w->db) == 0) return;
  for (int i = 0; i < w->nkinds; i++)
    queue_reclaim(w->redis, w->id, w->kinds[i], 30000, 64, reclaimed, w);
}

/* A cancel committed by the API: stop that job now if it is here. Cancels
 * are rare; a scan of the in-flight list is enough. */
static void on_cancel(const char *channel, const char *msg, size_t len, void *arg) {
  (void)channel;
  worker *w = arg;
  if (len != 36 || w->stopping > 1) return;
  for (wjob *j = w->jobs; j; j = j->next) {
    if (memcmp(j->id, msg, 36) == 0 && j->epoch && !j->lost) {
      log_info("job canceled: stopping it", LS("job_id", j->id));
      runner_job_lost(j);
      return;
    }
  }
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
  if (rds_subscribe(w->redis_sub, QUEUE_CANCEL_CHANNEL, on_cancel, w) != 0)
    log_warn("no cancel subscription: cancels reach this worker with the lease renewal", LOG_END);
  uv_timer_start(&w->reclaim_timer, reclaim_cb, 10000, 10000);
  lease_start(w);
  sweep_start(w);
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
  uv_close((uv_handle_t *)&w->sweep_timer, NULL);
  uv_close((uv_handle_t *)&w->heartbeat_timer, NULL);
  if (w->storage) storage_close(w->storage);
  w->storage = NULL;
  if (w->http) httpc_close(w->http);
  w->http = NULL;
  relay_stop(w->relay);
  db_close(w->db, NULL, NULL);
  rds_close(w->redis, NULL, NULL);
  rds_close(w->redis_fetch, NULL, NULL);
  rds_close(w->redis_sub, NULL, NULL);
}

static void grace_over(uv_timer_t *t) {
  worker *w = t->data;
  log_warn("grace period over: handing unfinished jobs back", LI("in_flight", w->inflight));
  w->stopping = 2;
  /* every step stops (polls stop, downloads abort; a create in flight is
   * let answer so its generation is checkpointed); then each job is handed
   * back (genq_job_handback: queued again at once, the attempt not used),
   * and the next worker resumes its checkpoints */
  for (wjob *j = w->jobs, *next; j; j = next) {
    next = j->next;
    abort_steps(j);
    job_maybe_end(j); /* may finish j, and close_all when it was the last */
  }
}

void worker_quiet(worker *w) {
  if (w->quiet || w->stopping) return;
  w->quiet = 1;
  uv_timer_stop(&w->fetch_timer);
  uv_timer_stop(&w->reclaim_timer);
  log_info("quiet: taking no new jobs; the ones in flight go on", LI("in_flight", w->inflight));
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
