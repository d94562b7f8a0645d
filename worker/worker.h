#ifndef GENQ_WORKER_H
#define GENQ_WORKER_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "http_client.h"
#include "job.h"
#include "openai.h"
#include "redis.h"
#include "relay.h"

/* genq-worker: one libuv loop, up to `concurrency` jobs in flight. A job in
 * flight costs a wjob and, while it waits on a provider, one transfer or one
 * timer: no thread, no CPU. */

typedef struct wjob wjob;

typedef struct worker {
  uv_loop_t *loop;
  genq_config cfg;
  db *db;
  rds *redis;       /* commands: acks, dispatch, relay */
  rds *redis_fetch; /* blocking XREADGROUP only */
  httpc *http;
  relay *relay;
  openai_opts openai;
  char id[96]; /* consumer name and jobs.worker_id */
  const char *kinds[JOB_KIND_COUNT];
  int nkinds;
  int concurrency;
  int inflight;
  int fetching; /* an XREADGROUP is outstanding */
  int stopping;
  wjob *jobs;                 /* in flight, doubly linked */
  uv_timer_t fetch_timer;     /* fetch again after an error */
  uv_timer_t heartbeat_timer; /* lease renewal */
  uv_timer_t reclaim_timer;   /* pending messages of dead readers */
  uv_timer_t grace_timer;     /* shutdown deadline */
  uint64_t jobs_done;
} worker;

/* One job this worker claimed, from claim to its last write. */
struct wjob {
  worker *w;
  wjob *prev, *next;
  char id[37];
  char kind[16];
  long long epoch; /* every write about the job is fenced by it */
  int attempt, max_attempts;
  cJSON *input;
  cJSON *steps;      /* as claimed: [{name, step_kind, provider, status, provider_ref, output}] */
  const cJSON *step; /* the step running now */
  uint64_t xfer;     /* provider transfer in flight, 0 if none */
  int lost;          /* the lease was lost: commit nothing more */
  int db_busy;       /* a statement about this job is outstanding */
};

/* ---- runner.c: the fetch → claim → run → finish cycle ---- */
int worker_start(worker *w);
void worker_stop(worker *w); /* SIGTERM: take nothing new, finish or hand back */
/* Starts the next unfinished step of j, or completes j. */
void runner_next_step(wjob *j);

/* ---- step results (runner.c) ---- */
typedef struct {
  int ok;
  int retryable;
  const char *code;
  const char *message;
  long retry_after_ms;
  const cJSON *output;     /* the step's output (stored on the step) */
  const cJSON *job_output; /* merged into the job's output */
} step_result;
/* A step executor reports here exactly once. r is borrowed. */
void runner_step_done(wjob *j, const step_result *r);

/* ---- steps: one file per step kind ---- */
/* Returns 0 when started (runner_step_done follows), -1 otherwise. */
int step_storyboard_run(wjob *j);

/* ---- lease.c ---- */
void lease_start(worker *w);
/* Full-jitter exponential backoff for attempt n (1-based), at least
 * retry_after_ms when the provider asked for it. */
long lease_retry_delay_ms(const genq_config *c, int attempt, long retry_after_ms);

#endif
