/* admin.c — /v1/admin: who may call it, its routes, and what its handlers
 * share (admin.h; docs/admin.md).
 *
 * Access: the caller must be an admin — a Clerk session whose public
 * metadata says role admin, or an API key made with `genqctl keys create
 * --admin`. Anyone else authenticated gets the same 404 as for a path that
 * does not exist, whatever the path and method under /v1/admin: the admin
 * API is a resource they may not see, and its routes are not told apart.
 * (A caller with no valid token was already answered 401, as everywhere.)
 *
 * Every action that changes something is one call of a function of
 * schema/functions/admin.sql, which records it in admin_actions in the same
 * transaction; after the commit the handler logs it as a JSON line and
 * announces it on QUEUE_ADMIN_CHANNEL (api_admin_announce). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin.h"
#include "log.h"
#include "queue.h"
#include "when.h"

#define ADMIN_PREFIX "/v1/admin"

/* ---- shared by the handlers ---- */

char *api_admin_actor(const api_user *u) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  int ok = u->key_id[0] ? cJSON_AddStringToObject(o, "kind", "api_key") &&
                              cJSON_AddStringToObject(o, "id", u->key_id) &&
                              cJSON_AddStringToObject(o, "user", u->user)
                        : cJSON_AddStringToObject(o, "kind", "user") &&
                              cJSON_AddStringToObject(o, "id", u->user);
  char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return s;
}

void api_admin_announce(api_ctx *ctx, http_request *req, const cJSON *action) {
  if (!cJSON_IsObject(action)) return;
  const cJSON *actor = cJSON_GetObjectItemCaseSensitive(action, "actor");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(action, "id");
  log_info("admin action", LS("request_id", http_req_id(req)),
           LI("action_id", cJSON_IsNumber(id) ? (long long)id->valuedouble : 0),
           LS("action", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(action, "action"))),
           LS("target", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(action, "target"))),
           LS("actor_kind", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(actor, "kind"))),
           LS("actor_id", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(actor, "id"))));
  char *text = cJSON_PrintUnformatted(action);
  if (text && rds_command(ctx->redis, NULL, NULL, "PUBLISH %s %s", QUEUE_ADMIN_CHANNEL, text) != 0)
    log_warn("admin action not announced (Redis down): dashboards see it at their next refresh",
             LS("request_id", http_req_id(req)));
  cJSON_free(text);
}

void api_admin_reply_busy(http_request *req) {
  static const char *const retry[] = {"Retry-After: 1", NULL};
  api_reply_error(req, 503, "unavailable", "the database is overloaded; nothing was changed",
                  retry);
}

void api_admin_reply_db(http_request *req, const db_result *r) {
  const char *st = r->sqlstate ? r->sqlstate : "";
  const char *msg = r->message ? r->message : "invalid request";
  if (!strcmp(st, "22023") || !strcmp(st, "22P02") || !strcmp(st, "22007") ||
      !strcmp(st, "22008")) {
    api_reply_error(req, 400, "invalid_request", msg, NULL);
  } else if (!strcmp(st, "GQ409")) {
    api_reply_error(req, 409, "idempotency_conflict", msg, NULL);
  } else {
    api_reply_db_error(req, r);
  }
}

static void json_row(const db_result *r, void *arg) {
  http_request *req = arg;
  if (!r->ok) {
    api_admin_reply_db(req, r);
    return;
  }
  if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
    api_reply_error(req, 500, "internal", "internal error", NULL);
    return;
  }
  const char *v = PQgetvalue(r->res, 0, 0);
  api_reply_json_text(req, 200, v, strlen(v));
}

void api_admin_query_json(api_ctx *ctx, http_request *req, const char *sql, int n,
                          const char *const *params) {
  if (db_query(ctx->db, sql, n, params, json_row, req) != 0) api_admin_reply_busy(req);
}

cJSON *api_admin_body(http_request *req, const char *const *allowed, int allow_empty) {
  size_t len;
  const char *body = http_req_body(req, &len);
  size_t i = 0;
  while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
    i++;
  if (i == len) {
    if (allow_empty) return cJSON_CreateObject();
    api_reply_error(req, 400, "invalid_json", "a JSON object body is required", NULL);
    return NULL;
  }
  const char *ct = http_req_header(req, "content-type");
  if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
      (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
    api_reply_error(req, 415, "unsupported_media_type", "Content-Type must be application/json",
                    NULL);
    return NULL;
  }
  cJSON *o = cJSON_ParseWithLength(body, len);
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    api_reply_error(req, 400, "invalid_json", "the body is not a JSON object", NULL);
    return NULL;
  }
  const cJSON *m;
  cJSON_ArrayForEach(m, o) {
    int known = 0;
    for (const char *const *a = allowed; a && *a && !known; a++)
      known = m->string && strcmp(m->string, *a) == 0;
    if (!known) {
      char msg[160];
      snprintf(msg, sizeof msg, "%.64s: unknown field", m->string ? m->string : "?");
      cJSON_Delete(o);
      api_reply_error(req, 400, "invalid_request", msg, NULL);
      return NULL;
    }
  }
  return o;
}

int api_admin_param(http_request *req, const char *name, char *buf, size_t len) {
  int rc = api_query_param(http_req_query(req), name, buf, len);
  if (rc < 0 || (rc > 0 && !buf[0])) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: bad encoding, empty or too long", name);
    api_reply_error(req, 400, "invalid_request", msg, NULL);
    return -1;
  }
  return rc;
}

int api_admin_since(const char *s, const char **at, const char **secs, char *secs_buf) {
  *at = *secs = NULL;
  if (!s) return 0;
  if (when_is_rfc3339(s)) {
    *at = s;
    return 0;
  }
  if (when_parse_duration(s, secs_buf, 24) == 0) {
    *secs = secs_buf;
    return 0;
  }
  return -1;
}

/* ---- routing ---- */

/* Copies the path segment at p (up to '/' or the end), percent-decoded,
 * into out; returns what follows it, or NULL when it is empty, too long or
 * badly encoded. */
static const char *segment(const char *p, char *out, size_t outlen) {
  size_t o = 0;
  for (; *p && *p != '/'; p++) {
    int c = (unsigned char)*p;
    if (c == '%') {
      unsigned v;
      if (sscanf(p + 1, "%2x", &v) != 1 || !p[1] || !p[2]) return NULL;
      c = (int)v;
      p += 2;
    }
    if (c == 0 || o + 1 >= outlen) return NULL;
    out[o++] = (char)c;
  }
  out[o] = 0;
  return o ? p : NULL;
}

static void not_found(http_request *req) {
  api_reply_error(req, 404, "not_found", "no such endpoint", NULL);
}

static void method_not_allowed(http_request *req, const char *allow) {
  char hdr[64];
  snprintf(hdr, sizeof(hdr), "Allow: %s", allow);
  const char *const headers[] = {hdr, NULL};
  api_reply_error(req, 405, "method_not_allowed", "method not allowed", headers);
}

/* 1 when the request's method is m; else answers 405 (allow: m). */
static int method_is(http_request *req, const char *m) {
  if (strcmp(http_req_method(req), m) == 0) return 1;
  method_not_allowed(req, m);
  return 0;
}

void api_admin(api_ctx *ctx, http_request *req, const api_user *u) {
  const char *path = http_req_path(req);
  if (!u->admin || strncmp(path, ADMIN_PREFIX, strlen(ADMIN_PREFIX)) != 0) {
    not_found(req);
    return;
  }
  const char *p = path + strlen(ADMIN_PREFIX);
  char id[ADMIN_ID_MAX];
  const char *rest;
  if (!strcmp(p, "/stats")) {
    if (method_is(req, "GET")) api_admin_stats(ctx, req);
  } else if (!strcmp(p, "/workers")) {
    if (method_is(req, "GET")) api_admin_workers(ctx, req);
  } else if (!strcmp(p, "/providers")) {
    if (method_is(req, "GET")) api_admin_providers(ctx, req);
  } else if (!strcmp(p, "/jobs")) {
    if (method_is(req, "GET")) api_admin_jobs_list(ctx, req);
  } else if (!strcmp(p, "/jobs/retry")) {
    if (method_is(req, "POST")) api_admin_jobs_retry(ctx, req, u);
  } else if (!strcmp(p, "/credits/grant")) {
    if (method_is(req, "POST")) api_admin_credits_grant(ctx, req, u);
  } else if (!strcmp(p, "/actions")) {
    if (method_is(req, "GET")) api_admin_actions(ctx, req);
  } else if (!strcmp(p, "/events")) {
    if (method_is(req, "GET")) api_admin_events(ctx, req, u);
  } else if (!strncmp(p, "/jobs/", 6) && (rest = segment(p + 6, id, sizeof id)) &&
             (!strcmp(rest, "/retry") || !strcmp(rest, "/cancel"))) {
    if (!method_is(req, "POST")) return;
    if (!strcmp(rest, "/retry"))
      api_admin_job_retry(ctx, req, u, id);
    else
      api_admin_job_cancel(ctx, req, u, id);
  } else if (!strncmp(p, "/workers/", 9) && (rest = segment(p + 9, id, sizeof id)) &&
             (!strcmp(rest, "/quiet") || !strcmp(rest, "/stop"))) {
    if (method_is(req, "POST")) api_admin_worker_command(ctx, req, u, id, rest + 1);
  } else {
    not_found(req);
  }
}
