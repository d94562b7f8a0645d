/* admin_fleet.c — the fleet for operators, read as `genqctl status` reads
 * it (docs/fleet.md, docs/admin.md):
 *
 *   GET  /v1/admin/stats        per kind queued (ready, waiting for a
 *                               retry), the oldest ready job's age,
 *                               running, dead; totals (genq_fleet_status)
 *   GET  /v1/admin/workers      the worker registry in Redis (registry.h)
 *   POST /v1/admin/workers/{id}/quiet|stop   as genqctl workers quiet|stop
 *   GET  /v1/admin/providers    slots, window, pause, rate and breaker per
 *                               provider (provlimit_state.h)
 *
 * Redis unreachable: the Redis routes answer 503 unavailable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "provlimit_state.h"
#include "registry.h"

static void redis_down(http_request *req, const char *err) {
  static const char *const retry[] = {"Retry-After: 1", NULL};
  log_warn("admin: Redis", LS("request_id", http_req_id(req)), LS("error", err ? err : ""));
  api_reply_error(req, 503, "unavailable", "Redis is unavailable", retry);
}

void api_admin_stats(api_ctx *ctx, http_request *req) {
  api_admin_query_json(ctx, req, "select genq_fleet_status()", 0, NULL);
}

/* ---- workers ---- */

static void workers_listed(const cJSON *workers, long long now_ms, const char *err, void *arg) {
  http_request *req = arg;
  if (err || !workers) {
    redis_down(req, err);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  if (o) {
    cJSON_AddNumberToObject(o, "at_ms", (double)now_ms);
    cJSON_AddItemToObject(o, "workers", cJSON_Duplicate(workers, 1));
  }
  api_reply_json(req, 200, o);
}

void api_admin_workers(api_ctx *ctx, http_request *req) {
  if (registry_list(ctx->redis, workers_listed, req) != 0) redis_down(req, "not connected");
}

typedef struct {
  api_ctx *ctx;
  http_request *req;
  char *actor;
  char worker[REGISTRY_ID_MAX];
  registry_cmd cmd;
} worker_call;

static void call_free(worker_call *c) {
  free(c->actor);
  free(c);
}

static void command_recorded(const db_result *r, void *arg) {
  worker_call *c = arg;
  http_request *req = c->req;
  cJSON *action = r->ok && PQntuples(r->res) == 1 ? cJSON_Parse(PQgetvalue(r->res, 0, 0)) : NULL;
  if (!r->ok) {
    /* the worker has the command; only its row is missing: say so */
    log_error("admin worker command sent but not recorded", LS("request_id", http_req_id(req)),
              LS("worker_id", c->worker), LS("command", registry_cmd_name(c->cmd)),
              LS("error", r->error ? r->error : ""));
    api_admin_reply_db(req, r);
    call_free(c);
    return;
  }
  api_admin_announce(c->ctx, req, action);
  cJSON *o = cJSON_CreateObject();
  if (o) {
    cJSON_AddStringToObject(o, "worker_id", c->worker);
    cJSON_AddStringToObject(o, "command", registry_cmd_name(c->cmd));
    cJSON_AddItemToObject(o, "action", action ? action : cJSON_CreateNull());
  } else {
    cJSON_Delete(action);
  }
  call_free(c);
  api_reply_json(req, 202, o);
}

static void command_sent(int found, const char *err, void *arg) {
  worker_call *c = arg;
  if (err) {
    redis_down(c->req, err);
    call_free(c);
    return;
  }
  if (!found) {
    api_reply_error(c->req, 404, "not_found", "no live worker has that id", NULL);
    call_free(c);
    return;
  }
  const char *p[4] = {c->actor, http_req_id(c->req), c->worker, registry_cmd_name(c->cmd)};
  if (db_query(c->ctx->db, "select genq_admin_worker_command($1::jsonb, $2, $3, $4)", 4, p,
               command_recorded, c) != 0) {
    log_error("admin worker command sent but not recorded: the database is overloaded",
              LS("request_id", http_req_id(c->req)), LS("worker_id", c->worker));
    api_admin_reply_busy(c->req);
    call_free(c);
  }
}

void api_admin_worker_command(api_ctx *ctx, http_request *req, const api_user *u, const char *id,
                              const char *command) {
  registry_cmd cmd = registry_cmd_parse(command, strlen(command));
  if (!registry_id_ok(id) || cmd == REGISTRY_CMD_NONE) {
    api_reply_error(req, 404, "not_found", "no live worker has that id", NULL);
    return;
  }
  worker_call *c = calloc(1, sizeof *c);
  if (c) c->actor = api_admin_actor(u);
  if (!c || !c->actor) {
    if (c) call_free(c);
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  c->ctx = ctx;
  c->req = req;
  c->cmd = cmd;
  snprintf(c->worker, sizeof c->worker, "%s", id);
  if (registry_send(ctx->redis, id, cmd, command_sent, c) != 0) {
    call_free(c);
    redis_down(req, "not connected");
  }
}

/* ---- providers ---- */

static void providers_read(const cJSON *providers, const char *err, void *arg) {
  http_request *req = arg;
  if (!providers) {
    redis_down(req, err);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  if (o) cJSON_AddItemToObject(o, "providers", cJSON_Duplicate(providers, 1));
  api_reply_json(req, 200, o);
}

void api_admin_providers(api_ctx *ctx, http_request *req) {
  if (provlimit_state_read(ctx->redis, providers_read, req) != 0) redis_down(req, "not connected");
}
