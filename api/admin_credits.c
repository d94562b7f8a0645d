/* admin_credits.c — credits and the audit for operators (docs/admin.md):
 *
 *   POST /v1/admin/credits/grant  {user_id, credits, reason}, with an
 *        optional Idempotency-Key: as `genqctl credits grant`
 *        (genq_admin_credits_grant around genq_grant), recorded in
 *        admin_actions in the same transaction. The key makes it once: the
 *        same request again answers 200 with Idempotent-Replayed: true and
 *        changes nothing; the key with another user or amount is 409.
 *        Keys live in one space for every admin (ledger key
 *        admin:<Idempotency-Key>) and never expire.
 *   GET  /v1/admin/actions?action=&target=&actor=&limit=&cursor=  the
 *        audit of every admin action, newest first (genq_admin_actions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

#define GRANT_KEY_MAX 255

static void granted(const db_result *r, void *arg) {
  http_request *req = arg;
  api_ctx *ctx = http_req_data(req);
  if (!r->ok) {
    api_admin_reply_db(req, r);
    return;
  }
  cJSON *o = cJSON_Parse(PQgetvalue(r->res, 0, 0));
  int replayed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "replayed"));
  if (o && !replayed) api_admin_announce(ctx, req, cJSON_GetObjectItemCaseSensitive(o, "action"));
  static const char *const replay[] = {"Idempotent-Replayed: true", "Cache-Control: no-store",
                                       NULL};
  char *text = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!text) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  if (replayed)
    http_respond(req, 200, "application/json", replay, text, strlen(text));
  else
    api_reply_json_text(req, 200, text, strlen(text));
  free(text);
}

static int key_ok(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > GRANT_KEY_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (k[i] < 0x21 || k[i] > 0x7e) return 0;
  return 1;
}

void api_admin_credits_grant(api_ctx *ctx, http_request *req, const api_user *u) {
  static const char *const fields[] = {"user_id", "credits", "reason", NULL};
  const char *idem = http_req_header(req, "idempotency-key");
  if (idem && !key_ok(idem)) {
    api_reply_error(req, 400, "invalid_request",
                    "Idempotency-Key must be 1 to 255 printable ASCII characters", NULL);
    return;
  }
  cJSON *body = api_admin_body(req, fields, 0);
  if (!body) return;
  const cJSON *user = cJSON_GetObjectItemCaseSensitive(body, "user_id"),
              *credits = cJSON_GetObjectItemCaseSensitive(body, "credits"),
              *reason = cJSON_GetObjectItemCaseSensitive(body, "reason");
  const char *why = NULL;
  if (!cJSON_IsString(user) || !*user->valuestring || strlen(user->valuestring) > 255)
    why = "user_id is required: a string of 1 to 255 characters";
  else if (!cJSON_IsNumber(credits) || credits->valuedouble < 1 || credits->valuedouble > 1e12 ||
           credits->valuedouble != (double)(long long)credits->valuedouble)
    why = "credits is required: a whole number from 1 to 1000000000000";
  else if (!cJSON_IsString(reason) || !*reason->valuestring || strlen(reason->valuestring) > 500)
    why = "reason is required: a string of 1 to 500 characters";
  if (why) {
    cJSON_Delete(body);
    api_reply_error(req, 400, "invalid_request", why, NULL);
    return;
  }
  char amount[24], key[8 + GRANT_KEY_MAX + 1];
  snprintf(amount, sizeof amount, "%lld", (long long)credits->valuedouble);
  if (idem) snprintf(key, sizeof key, "admin:%s", idem); /* else a key of its own (admin.sql) */
  char *actor = api_admin_actor(u);
  if (!actor) {
    cJSON_Delete(body);
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  http_req_set_data(req, ctx);
  const char *p[6] = {actor,  http_req_id(req),    user->valuestring,
                      amount, reason->valuestring, idem ? key : NULL};
  if (db_query(ctx->db, "select genq_admin_credits_grant($1::jsonb, $2, $3, $4::bigint, $5, $6)", 6,
               p, granted, req) != 0)
    api_admin_reply_busy(req);
  free(actor);
  cJSON_Delete(body);
}

static int action_name_ok(const char *s) {
  static const char *const ok[] = {"job.retry", "job.cancel", "credits.grant", "worker.quiet",
                                   "worker.stop"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (!strcmp(s, ok[i])) return 1;
  return 0;
}

void api_admin_actions(api_ctx *ctx, http_request *req) {
  char action[24], target[304], actor[304], limit[8], cursor[24];
  int ha, ht, hr, hl, hc;
  if ((ha = api_admin_param(req, "action", action, sizeof action)) < 0 ||
      (ht = api_admin_param(req, "target", target, sizeof target)) < 0 ||
      (hr = api_admin_param(req, "actor", actor, sizeof actor)) < 0 ||
      (hl = api_admin_param(req, "limit", limit, sizeof limit)) < 0 ||
      (hc = api_admin_param(req, "cursor", cursor, sizeof cursor)) < 0)
    return;
  char *end;
  if (ha && !action_name_ok(action)) {
    api_reply_error(req, 400, "invalid_request",
                    "action must be one of job.retry, job.cancel, credits.grant, worker.quiet, "
                    "worker.stop",
                    NULL);
    return;
  }
  long lim = hl ? strtol(limit, &end, 10) : 50;
  if (hl && (*end || lim < 1 || lim > ADMIN_PAGE_MAX)) {
    api_reply_error(req, 400, "invalid_request", "limit must be an integer between 1 and 100",
                    NULL);
    return;
  }
  long long cur = hc ? strtoll(cursor, &end, 10) : 0;
  if (hc && (*end || cur < 1 || strlen(cursor) > 18)) {
    api_reply_error(req, 400, "invalid_request", "cursor is not a valid cursor", NULL);
    return;
  }
  const char *p[5] = {ha ? action : NULL, ht ? target : NULL, hr ? actor : NULL, hl ? limit : NULL,
                      hc ? cursor : NULL};
  api_admin_query_json(ctx, req, "select genq_admin_actions($1, $2, $3, $4::int, $5::bigint)", 5,
                       p);
}
