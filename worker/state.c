/* state.c — the one place where the worker's and its jobs' lifecycle states
 * (worker.h) change. A move is legal only from the states listed for its
 * target; an illegal one is refused and logged as an error. The worker's
 * moves are logged at info (or warn), a job's at debug. */
#include "log.h"
#include "worker.h"

#define FROM(s) (1u << (s))
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
  const char *name, *msg;
  int level;
  unsigned from;
} worker_states[] = {
    [WORKER_RUNNING] = {"running", "", LOG_INFO, 0},
    [WORKER_QUIET] = {"quiet", "quiet: taking no new jobs; the ones in flight go on", LOG_INFO,
                      FROM(WORKER_RUNNING)},
    [WORKER_DRAINING] = {"draining", "stopping: taking no new jobs", LOG_INFO,
                         FROM(WORKER_RUNNING) | FROM(WORKER_QUIET)},
    [WORKER_GRACE_OVER] = {"grace_over", "grace period over: handing unfinished jobs back",
                           LOG_WARN, FROM(WORKER_DRAINING)},
    [WORKER_CLOSING] = {"closing", "stopped", LOG_INFO,
                        FROM(WORKER_DRAINING) | FROM(WORKER_GRACE_OVER)},
};

static const struct {
  const char *name;
  unsigned from;
} job_endings[] = {
    [JOB_ENDING_NONE] = {"none", 0},
    [JOB_ENDING_WHEN_IDLE] = {"when_idle", FROM(JOB_ENDING_NONE)},
    [JOB_ENDING_FINAL_WRITE] = {"final_write", FROM(JOB_ENDING_NONE)},
};

#define NAME(table, s) ((unsigned)(s) < COUNT(table) ? (table)[s].name : "invalid")
#define LEGAL(table, from, to) ((unsigned)(to) < COUNT(table) && ((table)[to].from & FROM(from)))

int state_worker_set(worker *w, worker_state to) {
  worker_state from = w->state;
  if (to == from) return 0;
  if (!LEGAL(worker_states, from, to)) {
    log_error("illegal worker state move refused", LS("from", NAME(worker_states, from)),
              LS("to", NAME(worker_states, to)));
    return -1;
  }
  w->state = to;
  log_emit(worker_states[to].level, worker_states[to].msg,
           (const log_field[]){LS("from", worker_states[from].name),
                               LS("to", worker_states[to].name), LI("in_flight", w->inflight),
                               LI("jobs_done", (long long)w->jobs_done), LOG_END});
  return 0;
}

int state_job_set(wjob *j, job_ending to) {
  job_ending from = j->ending;
  if (to == from) return 0;
  if (!LEGAL(job_endings, from, to)) {
    log_error("illegal job ending move refused", LS("job_id", j->id),
              LS("from", NAME(job_endings, from)), LS("to", NAME(job_endings, to)));
    return -1;
  }
  j->ending = to;
  log_debug("job ending", LS("job_id", j->id), LS("from", job_endings[from].name),
            LS("to", job_endings[to].name));
  return 0;
}
