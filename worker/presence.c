/* presence.c — this worker in the fleet's registry (common/registry.h,
 * docs/fleet.md).
 *
 * Every GENQ_WORKER_BEAT_MS, and at once when its state changes, the worker
 * writes its record (id, host, pid, version, kinds, concurrency, in flight,
 * started, state) with a TTL of GENQ_WORKER_TTL_MS: a worker that dies
 * without a word ages out of `genqctl workers list` by itself. One beat at
 * a time: a beat asked for while one is unanswered goes once it answers.
 *
 * Operators' commands (genqctl workers quiet|stop ID) arrive on the control
 * channel, acted on at once, and stay in the worker's command key, which
 * the next beat takes: a message lost while the subscription was down is
 * acted on within one beat. Quiet does what SIGUSR1 does, stop what SIGTERM
 * does. A clean exit removes the record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "genq_version.h" /* GENQ_VERSION: git describe at build time */
#include "log.h"
#include "registry.h"
#include "worker.h"

const char *presence_state_name(worker_state s) {
  switch (s) {
  case WORKER_RUNNING:
    return "running";
  case WORKER_QUIET:
    return "quiet";
  default:
    return "stopping";
  }
}

static char *record_json(const worker *w) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", w->id);
  cJSON_AddStringToObject(o, "host", w->host);
  cJSON_AddNumberToObject(o, "pid", (double)getpid());
  cJSON_AddStringToObject(o, "version", GENQ_VERSION);
  cJSON *kinds = cJSON_AddArrayToObject(o, "kinds");
  if (!o || !kinds) {
    cJSON_Delete(o);
    return NULL;
  }
  for (int i = 0; i < w->nkinds; i++)
    cJSON_AddItemToArray(kinds, cJSON_CreateString(w->kinds[i]));
  cJSON_AddNumberToObject(o, "concurrency", w->concurrency);
  cJSON_AddNumberToObject(o, "in_flight", w->inflight);
  cJSON_AddNumberToObject(o, "jobs_done", (double)w->jobs_done);
  cJSON_AddStringToObject(o, "state", presence_state_name(w->state));
  cJSON_AddStringToObject(o, "started_at", w->started_at);
  cJSON_AddNumberToObject(o, "beat_ms", w->cfg.worker_beat_ms);
  cJSON_AddNumberToObject(o, "ttl_ms", w->cfg.worker_ttl_ms);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

static void act(worker *w, registry_cmd cmd, const char *via) {
  if (cmd == REGISTRY_CMD_NONE || w->presence_left || w->state == WORKER_CLOSING) return;
  log_info("operator command", LS("command", registry_cmd_name(cmd)), LS("via", via),
           LS("state", presence_state_name(w->state)));
  if (cmd == REGISTRY_CMD_QUIET)
    w->request_quiet(w);
  else
    w->request_stop(w);
}

static void beat(worker *w);

static void beaten(long long now_ms, registry_cmd cmd, const char *err, void *arg) {
  (void)now_ms;
  worker *w = arg;
  w->presence_busy = 0;
  if (err && !w->presence_left) log_warn("registry beat failed", LS("error", err));
  act(w, cmd, "beat");
  if (w->presence_again) {
    w->presence_again = 0;
    beat(w);
  }
}

static void beat(worker *w) {
  if (w->presence_left) return;
  if (w->presence_busy) {
    w->presence_again = 1;
    return;
  }
  char *rec = record_json(w);
  if (!rec) return; /* the next beat tries again */
  /* not connected: nothing to do, the next beat tries again */
  if (registry_beat(w->redis, w->id, rec, w->cfg.worker_ttl_ms, beaten, w) == 0)
    w->presence_busy = 1;
  cJSON_free(rec);
}

static void beat_cb(uv_timer_t *t) {
  beat(t->data);
}

static void on_control(const char *channel, const char *msg, size_t len, void *arg) {
  (void)channel;
  worker *w = arg;
  if (!msg) {
    /* (re)subscribed: announce ourselves, and take a command sent while the
     * subscription was down */
    beat(w);
    return;
  }
  act(w, registry_control_for(msg, len, w->id), "channel");
}

void presence_start(worker *w) {
  uv_timer_init(w->loop, &w->presence_timer);
  w->presence_timer.data = w;
  uv_timer_start(&w->presence_timer, beat_cb, 100, (uint64_t)w->cfg.worker_beat_ms);
  if (rds_subscribe(w->redis_sub, REGISTRY_CONTROL_CHANNEL, on_control, w) != 0)
    log_warn("no control subscription: operators' commands reach this worker with its beat",
             LOG_END);
}

void presence_update(worker *w) {
  beat(w);
}

void presence_leave(worker *w) {
  if (w->presence_left) return;
  w->presence_left = 1;
  uv_close((uv_handle_t *)&w->presence_timer, NULL);
  if (registry_leave(w->redis, w->id) != 0)
    log_warn("registry record not removed (Redis away): it ages out", LOG_END);
}
