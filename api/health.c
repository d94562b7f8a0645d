/* health.c — liveness and readiness. readyz runs a real round trip to
 * PostgreSQL and reports Redis's connection state and whether the API keys
 * and deleted accounts are loaded, naming what is not there. */
#include <stdlib.h>

#include "api.h"

void api_healthz(api_ctx *ctx, http_request *req) {
  (void)ctx;
  static const char ok[] = "{\"status\":\"ok\"}";
  api_reply_json_text(req, 200, ok, sizeof(ok) - 1);
}

typedef struct {
  http_request *req;
  int redis_ok, access_ok;
} ready_ctx;

/* Ready: PostgreSQL answers, Redis is connected, and this process has
 * loaded the live API keys and deleted accounts (access.c). */
static void ready_reply(ready_ctx *rc, int pg_ok) {
  cJSON *o = cJSON_CreateObject();
  int ok = pg_ok && rc->redis_ok && rc->access_ok;
  cJSON_AddStringToObject(o, "postgres", pg_ok ? "ok" : "down");
  cJSON_AddStringToObject(o, "redis", rc->redis_ok ? "ok" : "down");
  cJSON_AddStringToObject(o, "access", rc->access_ok ? "ok" : "loading");
  cJSON_AddStringToObject(o, "status", ok ? "ready" : "unavailable");
  api_reply_json(rc->req, ok ? 200 : 503, o);
  free(rc);
}

static void ping_done(const db_result *r, void *arg) {
  ready_reply(arg, r->ok);
}

void api_readyz(api_ctx *ctx, http_request *req) {
  ready_ctx *rc = malloc(sizeof(*rc));
  if (!rc) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  rc->req = req;
  rc->redis_ok = rds_connected(ctx->redis);
  rc->access_ok = api_access_ready(ctx);
  if (db_connected(ctx->db) == 0 || db_query(ctx->db, "select 1", 0, NULL, ping_done, rc) != 0)
    ready_reply(rc, 0);
}
