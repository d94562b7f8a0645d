#ifndef GENQ_WORKER_H
#define GENQ_WORKER_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "http_client.h"
#include "job.h"
#include "hedra.h"
#include "luma.h"
#include "openai.h"
#include "redis.h"
#include "relay.h"
#include "storage.h"

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
  rds *redis_sub;   /* cancel notices (a subscription) */
  httpc *http;
  relay *relay;
  storage *storage;
  openai_opts openai;
  luma_opts luma;
  hedra_opts hedra;
  char id[96]; /* consumer name and jobs.worker_id */
  const char *kinds[JOB_KIND_COUNT];
  int nkinds;
  int concurrency;
  int inflight;
  int fetching; /* an XREADGROUP is outstanding */
  int stopping;
  int quiet;                  /* SIGUSR1/SIGTSTP: take no new jobs, keep running the ones held */
  wjob *jobs;                 /* in flight, doubly linked */
  uv_timer_t fetch_timer;     /* fetch again after an error */
  uv_timer_t heartbeat_timer; /* lease renewal */
  uv_timer_t reclaim_timer;   /* pending messages of dead readers */
  uv_timer_t grace_timer;     /* shutdown deadline */
  uv_timer_t sweep_timer;     /* upload retention (sweep.c) */
  int sweeping;
  uint64_t jobs_done;
} worker;

/* One step of a job while it runs here. Steps of one stage run at once (a
 * campaign's videos); each waits on at most one thing at a time: a provider
 * transfer (xfer), a poll timer, a storage operation or a statement. */
typedef struct wstep wstep;
struct wstep {
  wjob *j;
  wstep *next; /* the job's running steps */
  cJSON *step; /* its entry in j->steps */
  const char *name;
  const char *step_kind;
  uint64_t xfer;             /* provider transfer in flight, 0 if none */
  int paid_xfer;             /* that transfer creates paid work: never cancel it */
  uv_timer_t timer;          /* status polls; closed when the step ends */
  int polls;                 /* status polls so far (backoff) */
  long retry_after_ms;       /* the provider's Retry-After for the next poll, or <= 0 */
  void (*poll_cb)(wstep *s); /* what the timer calls next */
  int aborted;               /* stop: report as soon as the current wait ends */
  int reported;
  char ref[128];   /* the provider's generation / job id, "" before create */
  double progress; /* last progress written */
  /* executor scratch (worker/step_*.c), allocated only by the steps that
   * need it: a waiting step stays small (thousands wait at once) */
  int phase;
  char *buf;       /* freed with the step */
  char *asset_key; /* stored bytes of the result being committed */
};

/* One job this worker claimed, from claim to its last write. */
struct wjob {
  worker *w;
  wjob *prev, *next;
  char id[37];
  char kind[16];
  long long epoch;      /* every write about the job is fenced by it */
  uint64_t lease_until; /* loop time (ms) the lease surely runs to: sent time of the
                           claim or renewal that confirmed it, plus the lease */
  int attempt, max_attempts;
  cJSON *input;
  cJSON *steps; /* as claimed: [{name, step_kind, provider, stage, status, provider_ref, output}] */
  cJSON *uploads; /* role → {id, content_type, bytes, storage_key, deleted} */
  wstep *running; /* steps in flight */
  int nrunning;
  int lost;    /* the job is no longer ours (reclaimed, canceled): commit nothing more */
  int db_busy; /* job-level statements outstanding (claim, the final write) */
  int ending;  /* the final write was sent or the job is being let go */
  /* the first failure of this run, written once no step runs */
  int failed, fail_retryable;
  long fail_delay_ms;
  char fail_step[64], fail_code[64], fail_message[512];
};

/* ---- runner.c: the fetch → claim → run → finish cycle ---- */
int worker_start(worker *w);
void worker_stop(worker *w);  /* SIGTERM: take nothing new, finish or hand back */
void worker_quiet(worker *w); /* take nothing new; keep running what is held */
/* The job is no longer this worker's (lease lost, canceled): abort its steps
 * and commit nothing more about it. */
void runner_job_lost(wjob *j);

/* ---- step results (runner.c) ---- */
typedef struct {
  int ok;
  int retryable;
  const char *code;
  const char *message;
  long retry_after_ms;
  const cJSON *output;     /* the step's output (stored on the step) */
  const cJSON *job_output; /* merged into the job's output */
  const cJSON *asset;      /* {id, kind, content_type, bytes, sha256, storage_key}: stored bytes */
} step_result;
/* A step executor reports here exactly once. r is borrowed. */
void runner_step_done(wstep *s, const step_result *r);
/* 1 when the step should stop now (aborted, job lost, shutdown past grace):
 * the executor then reports runner_step_stopped(s) instead of going on. */
int runner_step_should_stop(const wstep *s);
void runner_step_stopped(wstep *s);
/* Records the provider reference (committed) before the step waits on it;
 * NULL clears it (a fresh generation next time). cb gets ok = 1 when
 * committed, 0 when the job is no longer ours or PostgreSQL failed. */
int runner_step_checkpoint(wstep *s, const char *ref, void (*cb)(wstep *s, int ok));
/* Calls cb after the next poll delay (GENQ_POLL_INTERVAL_MS growing 1.5x per
 * poll up to GENQ_POLL_MAX_INTERVAL_MS, with jitter), and not sooner than
 * s->retry_after_ms when a 429 asked for it (then cleared). */
void runner_step_poll_later(wstep *s, void (*cb)(wstep *s));
/* Records progress (0..1) when it moved by 5 points or more; fire and forget. */
void runner_step_progress(wstep *s, double progress);
/* Deletes a generation at its provider (Luma; Hedra has no cancel), fire
 * and forget. */
void runner_delete_generation(worker *w, const char *provider, const char *ref);
/* Deletes the unused generations of job_id if it ended failed or canceled,
 * or with job_id NULL those of every such job that ended a minute ago and
 * more (genq_refs_to_release hands each out once). */
void runner_release_provider_work(worker *w, const char *job_id);
/* The output of an earlier step of this job, or NULL. */
const cJSON *runner_step_output(const wjob *j, const char *step);

/* ---- steps: one file per step kind; each returns 0 when started
 * (runner_step_done follows exactly once), -1 otherwise. ---- */
int step_storyboard_run(wstep *s);
int step_luma_run(wstep *s); /* image and video */
int step_lipsync_run(wstep *s);

/* ---- output.c: provider output → genq storage ---- */
/* Downloads url (bounded by GENQ_ASSET_MAX_BYTES), checks that the bytes are
 * of media class `media` ("image", "video"), stores them under
 * assets/<new id> and calls cb with the asset JSON (borrowed) or an error
 * result. */
typedef void (*output_cb)(wstep *s, const cJSON *asset, const step_result *err);
int output_fetch(wstep *s, const char *url, const char *media, const char *asset_kind,
                 output_cb cb);
/* Ends s as an output_cb's asset or err says: with the output {<ref_name>:
 * s->ref, "asset_id"} and the asset, or with err when there is no asset. */
void output_done(wstep *s, const cJSON *asset, const step_result *err, const char *ref_name);

/* ---- sweep.c: uploads no unfinished job needs (SPEC §7) ---- */
void sweep_start(worker *w);

/* ---- lease.c ---- */
void lease_start(worker *w);
/* Before paying for a generation: calls cb(s, 1) at once while the job's
 * lease surely runs, else renews it first (a worker that was paused past its
 * lease must not create what the job's new owner creates too) and calls
 * cb(s, ok) with ok = 0 when the job is no longer this worker's. */
void lease_confirm(wstep *s, void (*cb)(wstep *s, int ok));
/* Full-jitter exponential backoff for attempt n (1-based), at least
 * retry_after_ms when the provider asked for it. */
long lease_retry_delay_ms(const genq_config *c, int attempt, long retry_after_ms);

#endif
