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
#include "http_server.h"
#include "openai.h"
#include "prom.h"
#include "prom_cache.h"
#include "redis.h"
#include "relay.h"
#include "storage.h"

/* genq-worker: one libuv loop, up to `concurrency` jobs in flight. A job in
 * flight costs a wjob and, while it waits on a provider, one transfer or one
 * timer: no thread, no CPU. */

typedef struct wjob wjob;
typedef struct wstep wstep;
typedef struct webhooks webhooks;

/* The first failure of a job's run (runner.c). */
typedef struct {
  int retryable;
  long delay_ms;
  char step[64], code[64], message[512];
} wfail;

/* Lifecycle states, changed only by state_worker_set and state_job_set
 * (state.c). The worker: RUNNING → QUIET | DRAINING; QUIET → DRAINING;
 * DRAINING → GRACE_OVER | CLOSING; GRACE_OVER → CLOSING. */
typedef enum {
  WORKER_RUNNING,    /* fetching and running jobs */
  WORKER_QUIET,      /* SIGUSR1/SIGTSTP: no new jobs, the ones held go on */
  WORKER_DRAINING,   /* SIGTERM: no new jobs, the ones in flight finish */
  WORKER_GRACE_OVER, /* provider calls aborted, nothing more committed: each
                        job is handed back (or left to its lease) */
  WORKER_CLOSING,    /* no job left: handles closing */
} worker_state;
/* How a job leaves once nothing about it is outstanding: NONE → WHEN_IDLE |
 * FINAL_WRITE. */
typedef enum {
  JOB_ENDING_NONE,        /* not yet: next stage, or the run's last word */
  JOB_ENDING_WHEN_IDLE,   /* nothing more to write: it leaves once idle */
  JOB_ENDING_FINAL_WRITE, /* the run's last write is out: its answer lets it go */
} job_ending;

/* Starts a step of its kind: 0 when started (runner_step_done follows
 * exactly once), -1 otherwise. */
typedef struct {
  const char *step_kind; /* NULL ends a table */
  int (*run)(wstep *s);
} step_executor;

/* The statements group-committed by batch.c, each kind with its batch
 * function (schema/functions/steps.sql). */
typedef enum {
  BATCH_STEP_BEGIN,   /* genq_step_begin → genq_steps_begin */
  BATCH_STEP_SUCCEED, /* genq_step_succeed → genq_steps_succeed */
  BATCH_KINDS,
} batch_kind;
typedef struct batch_item batch_item;
typedef struct {
  batch_item *head, *tail; /* waiting for the call in flight */
  int queued;
  int busy; /* a call of this kind is in flight */
} batch_queue;

/* How a claimed job's run ended, and how a step ended (metrics.c). The
 * zero value is what a run or step that records nothing else ends as. */
typedef enum {
  JOB_OUT_LOST,        /* no longer ours (fenced, canceled, reclaimed) or its last write failed */
  JOB_OUT_SUCCEEDED,   /* its last step's commit finished it */
  JOB_OUT_FAILED,      /* genq_job_fail: a refusal, invalid input */
  JOB_OUT_DEAD,        /* a retry with no attempt left: failed, into the dead-letter set */
  JOB_OUT_RETRY,       /* genq_job_requeue: queued again after a backoff */
  JOB_OUT_HANDED_BACK, /* genq_job_handback: the shutdown grace ran out */
  JOB_OUTCOMES,
} job_outcome;
typedef enum {
  STEP_OUT_STOPPED,   /* aborted, or the job was lost or its commit fenced */
  STEP_OUT_SUCCEEDED, /* its success committed */
  STEP_OUT_FAILED,    /* the provider or the executor failed it */
  STEP_OUTCOMES,
} step_outcome;
/* storyboard, image, video, lipsync, and any other */
#define METRICS_STEP_KINDS 5
#define METRICS_PROVIDERS 3 /* provlimit.c's prov_id */

/* This worker's own counts, kept on the loop thread and written on a
 * scrape (metrics.c, docs/metrics.md): array increments, nothing else. */
typedef struct {
  uint64_t claimed[JOB_KIND_COUNT];
  uint64_t reclaimed[JOB_KIND_COUNT]; /* claims of a job whose lease had lapsed */
  uint64_t stream_reclaims;           /* messages taken over from readers that died */
  uint64_t finished[JOB_KIND_COUNT][JOB_OUTCOMES];
  prom_hist job_seconds[JOB_KIND_COUNT][JOB_OUTCOMES];
  uint64_t steps[METRICS_STEP_KINDS][STEP_OUTCOMES];
  prom_hist step_seconds[METRICS_STEP_KINDS][STEP_OUTCOMES];
  uint64_t captured[JOB_KIND_COUNT]; /* credits captured by step successes committed here */
  provider_stats provider[METRICS_PROVIDERS];
} wmetrics;

typedef struct worker {
  uv_loop_t *loop;
  genq_config cfg;
  db *db;
  rds *redis;       /* commands: acks, dispatch, relay */
  rds *redis_fetch; /* blocking XREADGROUP only */
  rds *redis_sub;   /* cancel notices (a subscription) */
  httpc *http;
  relay *relay;
  webhooks *webhooks; /* completion webhooks (webhooks.c); NULL: off */
  storage *storage;
  openai_opts openai;
  luma_opts luma;
  hedra_opts hedra;
  char id[96];         /* consumer name, jobs.worker_id and registry id: host:pid:random */
  char host[64];       /* gethostname */
  char started_at[32]; /* RFC 3339, UTC: when it started (its registry record) */
  const char *kinds[JOB_KIND_COUNT];
  int nkinds;
  int concurrency;
  int inflight;
  int fetching; /* an XREADGROUP is outstanding */
  worker_state state;
  const step_executor *executors;     /* by step kind (process.c) */
  void (*job_left)(struct worker *w); /* after a job left the in-flight list (process.c) */
  void (*step_ended)(wstep *s);       /* as a step ends: frees its provider slot (process.c) */
  wjob *jobs;                         /* in flight, doubly linked */
  wjob **jobs_by_id;                  /* the same, hashed by id (runner_job_find) */
  size_t jobs_mask;                   /* buckets - 1; jobs_by_id NULL: scan the list */
  uv_timer_t fetch_timer;             /* fetch again after an error */
  uv_timer_t heartbeat_timer;         /* lease renewal */
  uv_timer_t reclaim_timer;           /* pending messages of dead readers */
  uv_timer_t grace_timer;             /* shutdown deadline, then the last flush's */
  uv_timer_t sweep_timer;             /* upload retention (sweep.c) */
  uv_timer_t trim_timer;              /* returns freed heap pages to the system (process.c) */
  uv_timer_t provlimit_timer;         /* renews the provider slots held (provlimit.c) */
  struct wadmit *admits;              /* jobs waiting for a slot before their claim (admit.c) */
  int nadmits;
  uv_timer_t admit_timer;     /* keeps their messages from looking abandoned */
  void (*job_ended)(wjob *j); /* as a job leaves: frees what admit.c holds for it */
  int sweeping;
  batch_queue batches[BATCH_KINDS]; /* batch.c */
  int redis_closed;                 /* close_all has closed the Redis connections */
  uint64_t jobs_done;

  /* GET /metrics on GENQ_METRICS_LISTEN (metrics.c); NULL when unset */
  wmetrics metrics;
  http_server *metrics_server;
  prom_cache *provider_state; /* the fleet's provider limits in Redis, read on scrape */

  /* the registry (presence.c) */
  uv_timer_t presence_timer; /* the record's beat */
  int presence_busy;         /* a beat is unanswered */
  int presence_again;        /* the state changed meanwhile: beat once it answers */
  int presence_left;         /* the record is gone: no more beats */
  /* what an operator's command does (genqctl workers quiet|stop), set by
   * main.c: as SIGUSR1 and SIGTERM do */
  void (*request_quiet)(struct worker *w);
  void (*request_stop)(struct worker *w);
} worker;

/* One step of a job while it runs here. Steps of one stage run at once (a
 * campaign's videos); each waits on at most one thing at a time: a provider
 * transfer (xfer), a poll timer, a storage operation or a statement. */
struct wstep {
  wjob *j;
  wstep *next; /* the job's running steps */
  cJSON *step; /* its entry in j->steps */
  const char *name;
  const char *step_kind;
  uint64_t xfer;             /* provider transfer in flight, 0 if none */
  uv_timer_t timer;          /* status polls; closed when the step ends */
  uint64_t woken_at;         /* loop time of the last wake that polled it early */
  long retry_after_ms;       /* the provider's Retry-After for the next poll, or <= 0 */
  void (*poll_cb)(wstep *s); /* what the timer calls next */
  /* the provider's generation / job id, "" before create (never NULL); a
   * copy of its own length: thousands of steps wait holding one */
  char *ref;
  double progress; /* last progress written */
  int polls;       /* status polls so far (backoff) */
  int paid_xfer;   /* that transfer creates paid work: never cancel it */
  int wakeable;    /* a provider callback may wake it (runner_job_wake); its fallback
                      polls then back off to GENQ_CALLBACK_POLL_MAX_INTERVAL_MS */
  int aborted;     /* stop: report as soon as the current wait ends */

  /* provlimit.c: 1 + the provider whose slot it holds (slot), or waits for
   * (slot_want), 0: none; slot_cb is what the grant calls */
  uint8_t slot, slot_want;
  void (*slot_cb)(wstep *s, int ok);

  int reported;
  uint64_t started_at; /* loop time (ms) it started (metrics) */
  int price;           /* what its success captures (from the claim) */
  uint8_t outcome;     /* step_outcome */
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
  wjob *hnext; /* bucket chain of w->jobs_by_id */
  char id[37];
  char kind[16];
  long long epoch;      /* every write about the job is fenced by it */
  uint64_t lease_until; /* loop time (ms) the lease surely runs to: sent time of the
                           claim or renewal that confirmed it, plus the lease */
  int attempt;
  uint32_t beat; /* the last lease renewal (lease.c) that named this job, 0 none */
  /* the job's input as claimed (JSON text): a step that reads it parses it
   * (runner_job_input); text is a fraction of the tree a waiting job would
   * hold for minutes */
  char *input;
  cJSON *steps;   /* as claimed, compacted (stage_compact_steps): [{name, step_kind, stage?,
                     status? (only "succeeded"), provider_ref?, retry_key?, index?, output?}] */
  cJSON *uploads; /* role → {id, content_type, bytes, storage_key, deleted}; NULL: none */

  /* provlimit.c: the job's user and its plan's provider_weight, read when a
   * step first wants a slot; NULL before */
  char *user;
  int weight;
  /* admit.c: the job waits for its first step's slot before its claim
   * (admit), or holds that slot (1 + the provider) for the step named
   * pre_step to adopt (provlimit_acquire) */
  struct wadmit *admit;
  const char *pre_step;
  uint8_t pre_slot;

  wstep *running; /* steps in flight */
  int nrunning;
  int lost;            /* the job is no longer ours (reclaimed, canceled): commit nothing more */
  uint64_t claimed_at; /* loop time (ms) its run began (metrics) */
  uint8_t outcome;     /* job_outcome: how the run ended (the final write's, once sent) */
  int db_busy;         /* job-level statements outstanding (claim, the final write) */
  job_ending ending;
  /* the first failure of this run, written once no step runs; allocated
   * when it happens (a waiting job carries no idle message buffers) */
  wfail *fail;
};

/* Past the grace: steps stop and nothing is committed but hand-backs. */
static inline int worker_past_grace(const worker *w) {
  return w->state == WORKER_GRACE_OVER || w->state == WORKER_CLOSING;
}
/* Stopping (SIGTERM): no new jobs, no sweeps. */
static inline int worker_stopping(const worker *w) {
  return w->state == WORKER_DRAINING || worker_past_grace(w);
}

/* Calls between the files go one way (no circle):
 *   main → worker → fetch, lease, sweep, presence, metrics, runner, state, the step executors
 *   fetch, runner → metrics (counting only)
 *   step executors → output, lease, cleanup, provlimit, runner
 *   provlimit → runner; fetch, process → admit → provlimit, runner
 *   fetch, lease, output → runner → batch → job_stmt; runner → cleanup, state, stage, backoff
 *   sweep → cleanup
 *   webhooks stands alone: the outbox in PostgreSQL, its own HTTP client
 * runner reaches the executors, provlimit, admit and process.c only
 * through w->executors, w->step_ended, w->job_ended and w->job_left; presence reaches main.c and
 * process.c only through w->request_quiet and w->request_stop. */

/* ---- process.c: start and stop ---- */
void worker_start(worker *w);
void worker_stop(worker *w);  /* SIGTERM: take nothing new, finish or hand back */
void worker_quiet(worker *w); /* take nothing new; keep running what is held */

/* ---- fetch.c: stream messages → claimed jobs; reclaims; cancels ---- */
void fetch_start(worker *w);
void fetch_more(worker *w); /* while the worker runs and has room */

/* ---- runner.c: a claimed job's stages and steps, up to its last write ---- */
/* A job enters the in-flight list before its claim and leaves it by
 * runner_job_finish (then w->job_left). runner_job_run runs it once claimed
 * (epoch, attempt, input, steps and uploads set; a malformed one fails). */
wjob *runner_job_new(worker *w, const char *id, const char *kind);
void runner_job_finish(wjob *j);
void runner_job_run(wjob *j);
/* The job is no longer this worker's (lease lost, canceled): abort its steps
 * and commit nothing more about it. */
void runner_job_lost(wjob *j);
/* The grace ran out: every step stops; each job is handed back once idle. */
void runner_grace_over(worker *w);
/* The job with this id that runs here (claimed at an epoch, not lost), or
 * NULL. */
wjob *runner_job_find(worker *w, const char *id);
/* Any job with this id in the in-flight list, claimed or not (a job
 * waiting for its slot before the claim), or NULL. */
wjob *runner_job_lookup(worker *w, const char *id);
/* A provider said something changed (a callback): each of the job's
 * wakeable steps waiting on its poll timer polls now, unless a wake already
 * polled it early within the last second, so that replayed callbacks cost
 * at most an early poll per step and second. */
void runner_job_wake(wjob *j);
/* Frees the id index (after the loop ended). */
void runner_free(worker *w);

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
/* Calls cb after the next poll delay (backoff_poll_ms); s->retry_after_ms,
 * when a 429 asked for it, is used then cleared. */
void runner_step_poll_later(wstep *s, void (*cb)(wstep *s));
/* Records progress (0..1) when it moved by 5 points or more; fire and forget. */
void runner_step_progress(wstep *s, double progress);
/* The output of an earlier step of this job, or NULL. */
const cJSON *runner_step_output(const wjob *j, const char *step);
/* The job's input parsed (the caller cJSON_Deletes it), or NULL when it is
 * not JSON or memory ran out. */
cJSON *runner_job_input(const wjob *j);

/* ---- job_stmt.c: a job's fenced statements ---- */
/* Like db_query, with $1 the job's id and $2 its epoch, then params as $3...;
 * sent again after a transient failure while the job is this worker's. cb
 * runs exactly once, never before 0 is returned. */
int job_stmt_query(wjob *j, const char *sql, int n, const char *const *params, db_cb cb, void *arg);

/* ---- batch.c: group commit of step begins and successes ---- */
/* Like job_stmt_query for the statement of kind k ($1 the job's id, $2 its
 * epoch, params the statement's own: the step for a begin; the step, output,
 * job output and asset for a success). Sent at once when no call of that
 * kind is in flight; otherwise it waits for that call's answer and goes with
 * every other that came meanwhile, in one call of the kind's batch function.
 * No timer: a lone statement never waits. Each is fenced by its own job's
 * epoch and answered on its own: cb gets a result of one row, the job's
 * status or NULL when fenced out, exactly as the single statement answers.
 * A batch call that fails is sent again statement by statement
 * (job_stmt_query with the single function), so a failure, and its resends
 * across a PostgreSQL restart, are each statement's own. cb runs exactly
 * once, never before 0 is returned (out of memory aside, when it may be
 * answered an error at once); -1: not queued (cb never runs). */
int batch_query(wjob *j, batch_kind k, int n, const char *const *params, db_cb cb, void *arg);

/* ---- steps: one file per step kind (step_executor) ---- */
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

/* Calls cb after ms on the step's timer (an abort stops it: the step then
 * reports stopped). */
void runner_step_wait(wstep *s, uint64_t ms, void (*cb)(wstep *s));

/* ---- provlimit.c: fleet-wide provider limits (docs/providers.md) ---- */
typedef enum { PROV_OPENAI, PROV_LUMA, PROV_HEDRA, PROV_COUNT } prov_id;
/* Asking again: every slot taken (plus jitter); Redis unreachable or an
 * error; the cap of a wait the script asks for (a pause is re-read after
 * it). */
#define PROVLIMIT_FULL_WAIT_MS 300
#define PROVLIMIT_JITTER_MS 400
#define PROVLIMIT_ERROR_WAIT_MS 1000
#define PROVLIMIT_MAX_WAIT_MS 30000
/* "<job id>:<step>@<worker id>|<user>": a uuid, a step name, the worker's
 * id (under 96), a user id (at most 255) */
#define PROVLIMIT_MEMBER_MAX 512
typedef enum {
  PROVLIMIT_OK,      /* 2xx */
  PROVLIMIT_LIMITED, /* 429: the fleet's window shrinks and pauses */
  PROVLIMIT_FAILED,  /* 5xx, 408, timeouts, network: counts toward the breaker */
  PROVLIMIT_NEUTRAL, /* another 4xx: says nothing about the provider's health */
} provlimit_outcome;
const char *provlimit_name(prov_id p);
/* 1 when p has a limit, a rate or the breaker configured (else no call to
 * Redis is made for it). */
int provlimit_on(const worker *w, prov_id p);
/* Takes a slot of p for the step (waiting on its timer while none is free,
 * p is paused, its breaker is open or its rate is spent) and calls cb(s, 1);
 * at once when p has no limit or the step holds its slot already. An abort
 * meanwhile reports the step stopped instead. The slot is renewed while
 * the step runs and freed when it ends (provlimit_release). The first ask
 * of a job reads its user and plan weight (genq_job_fair_share). */
void provlimit_acquire(wstep *s, prov_id p, void (*cb)(wstep *s, int ok));
/* What a provider's answer (HTTP status, or 0 with the transfer's error
 * code) says about it. */
provlimit_outcome provlimit_classify(int status, const char *code);
/* Records the answer to a paid call for the whole fleet (window, pause,
 * breaker) and returns its class. LIMITED frees the step's slot: nothing
 * was created, and the step should provlimit_acquire again (it waits out
 * the pause) instead of failing. */
provlimit_outcome provlimit_report(wstep *s, prov_id p, int status, const char *code,
                                   long retry_after_ms);
/* Frees the step's slot, if it holds one (runner.c, when a step ends). */
void provlimit_release(wstep *s);
/* The pieces admit.c shares: p by name (0, or -1); the slot member of the
 * job's step; a wait of ms (capped, with jitter); one ask (the acquire
 * script, with the job's user and weight; cb gets its reply, which
 * provlimit_answer reads: 1 granted, 0 not (wait_ms set), -1 no answer);
 * freeing the job's slot for step (fire and forget). */
int provlimit_parse(const char *name, prov_id *out);
void provlimit_member(const wjob *j, const char *step, char *out, size_t n);
long provlimit_wait_ms(long ms);
int provlimit_ask(wjob *j, prov_id p, const char *member, rds_cb cb, void *arg);
int provlimit_answer(const redisReply *reply, long long *wait_ms);
void provlimit_free(wjob *j, prov_id p, const char *step);

/* ---- admit.c: a slot before the claim (docs/providers.md) ---- */
/* Called for each stream message fetch.c reads: 0 when the job's first
 * step needs no slot (claim it now), 1 when admit.c took the message: the
 * job waits for its slot, still queued, and claim(j, msg_id) runs once it
 * holds one (j->pre_slot), or the message is handed back or dropped. */
int admit_take(worker *w, wjob *j, const char *msg_id, void (*claim)(wjob *j, const char *msg_id));
/* After the messages of one read were taken: asks whose turn each is (one
 * statement for all of them). */
void admit_flush(worker *w);
/* 1 when a job with this id already waits here for its slot (a message of
 * it read again: the newer message id is kept, the older acknowledged). */
int admit_holds(worker *w, const char *id, const char *kind, const char *msg_id);
/* The worker goes quiet or stops: every waiting job's message goes back to
 * its stream for another worker. */
void admit_give_back(worker *w);
/* A cancel notice: the job, if it waits here, is dropped (its message
 * acknowledged: PostgreSQL has it canceled). 1 when it was. */
int admit_cancel(worker *w, const char *id);
/* After the claim: frees the slot when the step it was taken for is done
 * already (a retried campaign past its storyboard). */
void admit_claimed(wjob *j);
/* Adds the jobs waiting for a slot before their claim to out, per
 * provider (metrics.c). */
void admit_waiting(const worker *w, uint64_t out[PROV_COUNT]);
/* The job leaves (w->job_ended): its admission or unadopted slot goes. */
void admit_job_ended(wjob *j);
void admit_start(worker *w);
void provlimit_start(worker *w);

/* ---- lease.c ---- */
void lease_start(worker *w);
/* Before paying for a generation: calls cb(s, 1) at once while the job's
 * lease surely runs, else renews it first (a worker that was paused past its
 * lease must not create what the job's new owner creates too) and calls
 * cb(s, ok) with ok = 0 when the job is no longer this worker's. */
void lease_confirm(wstep *s, void (*cb)(wstep *s, int ok));

/* ---- presence.c: the worker registry in Redis (common/registry.h) ---- */
/* Beats every GENQ_WORKER_BEAT_MS (record: id, host, pid, version, kinds,
 * concurrency, in flight, started, state) and takes operators' commands
 * (quiet, stop) from the control channel and the beat's command key. */
void presence_start(worker *w);
/* The state or what the record shows changed: beat now (or once the beat
 * in flight answers). */
void presence_update(worker *w);
/* A clean exit: no more beats, the record removed. Before Redis closes. */
void presence_leave(worker *w);
/* "running", "quiet" or "stopping" (every state past DRAINING). */
const char *presence_state_name(worker_state s);

/* ---- metrics.c: GET /metrics on GENQ_METRICS_LISTEN (docs/metrics.md) ---- */
/* Listens when GENQ_METRICS_LISTEN is set (on the worker's loop, with
 * genq's HTTP server): 0, or -1 with err set when it cannot. */
int metrics_start(worker *w, char *err, size_t errlen);
/* Closes the server and the provider state's cache (close_all). */
void metrics_stop(worker *w);
/* Counting (runner.c, fetch.c): a claim (reclaimed: the lease of another
 * worker had lapsed), a claimed job leaving (its outcome, and the time
 * since its claim), a step ending (its outcome, time and, when it
 * succeeded, the credits it captured). */
void metrics_job_claimed(wjob *j, int reclaimed);
void metrics_job_left(const wjob *j);
void metrics_step_ended(const wstep *s);

/* ---- sweep.c: uploads no unfinished job needs (SPEC §7) ---- */
void sweep_start(worker *w);

/* ---- webhooks.c: completion webhooks from the outbox (docs/webhooks.md) ---- */
/* Starts delivering (off, with a warning, when GENQ_SECRETS_KEY is unset). */
void webhooks_start(worker *w);
/* Stops claiming; what is held and unanswered is handed back. Before the
 * database closes. */
void webhooks_stop(worker *w);

/* ---- cleanup.c: what ended jobs leave behind, fire and forget ---- */
/* A generation at its provider (Luma; Hedra has no cancel). */
void cleanup_delete_generation(worker *w, const char *provider, const char *ref);
/* The unused generations of job_id if it ended failed or canceled, or with
 * job_id NULL those of every such job that ended a minute ago and more. */
void cleanup_release_provider_work(worker *w, const char *job_id);
/* Stored bytes no asset row will ever name (key NULL: none). */
void cleanup_drop_asset_bytes(worker *w, const char *key);

/* ---- pure logic (unit tested) ---- */
/* state.c: moves to `to` and logs it; 0, or -1 for an illegal move (refused
 * and logged as an error). A move to the state held changes nothing. */
int state_worker_set(worker *w, worker_state to);
int state_job_set(wjob *j, job_ending to);
/* stage.c: the lowest stage (a step's "stage", 0 when absent) with a step
 * not succeeded, -1 when none; stage_pending: step is one of them. */
int stage_next(const cJSON *steps);
int stage_pending(const cJSON *step, int stage);
/* Drops from claimed steps what nobody here reads or what reads the same
 * absent (a waiting job holds its steps for minutes; cJSON costs about 100
 * bytes a member): null members, provider and attempt, a status other than
 * "succeeded" (stage_pending counts any other as unfinished), a stage or
 * index of 0, the price of a succeeded step. Keeps name, step_kind,
 * provider_ref, retry_key, output, price. */
void stage_compact_steps(cJSON *steps);
/* Sets step[key] to item, replacing or adding it (a compacted step may lack
 * it); item is owned by step then, or freed on failure (-1). */
int stage_step_set(cJSON *step, const char *key, cJSON *item);
/* backoff.c, rnd a draw of genq_rand64. Before attempt `attempt` (1-based):
 * full jitter over 0..min(GENQ_RETRY_CAP_MS, GENQ_RETRY_BASE_MS *
 * 2^(attempt-1)), at least retry_after_ms, never above the cap. Before
 * status poll polls + 1: GENQ_POLL_INTERVAL_MS growing 1.5x per poll up to
 * GENQ_POLL_MAX_INTERVAL_MS, +-10%; retry_after_ms (capped) when longer. */
long backoff_retry_ms(const genq_config *c, int attempt, long retry_after_ms, uint64_t rnd);
uint64_t backoff_poll_ms(const genq_config *c, int polls, long retry_after_ms, uint64_t rnd);
/* The same with the backoff cap max_ms instead of GENQ_POLL_MAX_INTERVAL_MS. */
uint64_t backoff_poll_cap_ms(const genq_config *c, long max_ms, int polls, long retry_after_ms,
                             uint64_t rnd);

#endif
