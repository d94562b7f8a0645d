/* process.c — starting and stopping genq-worker, and what wires its parts:
 * the step executors by step kind, and what follows a job leaving (another
 * fetch, or the end of a shutdown).
 *
 * Shutdown (worker_state): DRAINING takes no new jobs and lets the ones in
 * flight finish; at GRACE_OVER (GENQ_SHUTDOWN_GRACE_MS later) every step
 * stops and each job is handed back; once no job is left, CLOSING closes
 * every handle and the loop ends. */
#include <malloc.h>

#include "log.h"
#include "worker.h"

/* How often freed heap memory is handed back. A worker that took thousands
 * of jobs at once (claims, creates and checkpoints queued for the database
 * pool) frees most of what that took, but glibc returns a page only from the
 * top of the heap: the rest stays resident, interleaved with the jobs that
 * now wait for minutes. malloc_trim releases every free page; measured on
 * a heap holding 10,000 waiting jobs it takes about a millisecond. */
#define TRIM_INTERVAL_MS 30000

static const step_executor executors[] = {
    {"storyboard", step_storyboard_run},
    {"image", step_luma_run},
    {"video", step_luma_run},
    {"lipsync", step_lipsync_run},
    {NULL, NULL},
};

static void close_redis(worker *w) {
  if (w->redis_closed) return;
  w->redis_closed = 1;
  uv_close((uv_handle_t *)&w->grace_timer, NULL);
  rds_close(w->redis, NULL, NULL);
  rds_close(w->redis_fetch, NULL, NULL);
  rds_close(w->redis_sub, NULL, NULL);
}

static void redis_flushed(redisReply *reply, const char *err, void *arg) {
  (void)reply;
  (void)err;
  close_redis(arg);
}

static void redis_flush_timeout(uv_timer_t *t) {
  close_redis(t->data);
}

static void close_all(worker *w) {
  state_worker_set(w, WORKER_CLOSING);
  metrics_stop(w); /* before Redis closes: a scrape's read in flight fails then */
  uv_close((uv_handle_t *)&w->fetch_timer, NULL);
  uv_close((uv_handle_t *)&w->reclaim_timer, NULL);
  uv_close((uv_handle_t *)&w->sweep_timer, NULL);
  uv_close((uv_handle_t *)&w->heartbeat_timer, NULL);
  uv_close((uv_handle_t *)&w->trim_timer, NULL);
  uv_close((uv_handle_t *)&w->provlimit_timer, NULL);
  uv_close((uv_handle_t *)&w->admit_timer, NULL);
  if (w->storage) storage_close(w->storage);
  w->storage = NULL;
  if (w->http) httpc_close(w->http);
  w->http = NULL;
  webhooks_stop(w);
  relay_stop(w->relay);
  db_close(w->db, NULL, NULL);
  presence_leave(w); /* the registry record goes */
  /* The last change notices (a hand-back's) and the record's removal may
   * still sit in the connection's buffer: they are out once a PING behind
   * them is answered, or after a second at most. */
  uv_timer_stop(&w->grace_timer);
  if (rds_command(w->redis, redis_flushed, w, "PING") == 0)
    uv_timer_start(&w->grace_timer, redis_flush_timeout, 1000, 0);
  else
    close_redis(w);
}

static void job_left(worker *w) {
  if (worker_stopping(w) && w->inflight == 0)
    worker_stop(w); /* everything handed back: finish shutting down */
  else
    fetch_more(w);
}

static void trim_cb(uv_timer_t *t) {
  worker *w = t->data;
  uint64_t t0 = uv_hrtime();
  int released = malloc_trim(0);
  log_debug("heap trimmed", LI("released", released), LI("in_flight", w->inflight),
            LD("ms", (double)(uv_hrtime() - t0) / 1e6));
}

void worker_start(worker *w) {
  w->executors = executors;
  w->job_left = job_left;
  w->step_ended = provlimit_release;
  uv_timer_init(w->loop, &w->grace_timer);
  w->grace_timer.data = w;
  uv_timer_init(w->loop, &w->trim_timer);
  w->trim_timer.data = w;
  uv_timer_start(&w->trim_timer, trim_cb, TRIM_INTERVAL_MS, TRIM_INTERVAL_MS);
  uv_unref((uv_handle_t *)&w->trim_timer);
  fetch_start(w);
  lease_start(w);
  provlimit_start(w);
  admit_start(w);
  sweep_start(w);
  webhooks_start(w);
  presence_start(w);
}

static void grace_over(uv_timer_t *t) {
  worker *w = t->data;
  state_worker_set(w, WORKER_GRACE_OVER);
  runner_grace_over(w); /* may finish the last job, and close_all */
}

void worker_quiet(worker *w) {
  if (w->state != WORKER_RUNNING) return;
  state_worker_set(w, WORKER_QUIET);
  uv_timer_stop(&w->fetch_timer);
  uv_timer_stop(&w->reclaim_timer);
  admit_give_back(w); /* not taken yet: another worker's */
  presence_update(w);
}

void worker_stop(worker *w) {
  if (w->state == WORKER_CLOSING) return;
  if (!worker_stopping(w)) {
    state_worker_set(w, WORKER_DRAINING);
    uv_timer_stop(&w->fetch_timer);
    uv_timer_stop(&w->reclaim_timer);
    uv_timer_start(&w->grace_timer, grace_over, (uint64_t)w->cfg.shutdown_grace_ms, 0);
    presence_update(w);
    admit_give_back(w); /* may end the last job, and close_all through job_left */
    if (w->state == WORKER_CLOSING) return;
  }
  if (w->inflight == 0) close_all(w);
}
