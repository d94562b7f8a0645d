/* admin_jobs.c — every user's jobs for operators (docs/admin.md):
 *
 *   GET  /v1/admin/jobs?status=&kind=&user=&since=&limit=&cursor=
 *        failed (default), dead, canceled, queued or running jobs, newest
 *        first (genq_admin_jobs)
 *   POST /v1/admin/jobs/{id}/retry    {max_attempts?}: one failed job
 *   POST /v1/admin/jobs/retry         {status, kind, user_id, since, max,
 *        max_attempts, dry_run}: the failed or dead jobs matching, oldest
 *        first, at most max (ADMIN_RETRY_MAX) per request
 *   POST /v1/admin/jobs/{id}/cancel   any user's queued or running job
 *
 * Retries and cancels are genqctl's own SQL (genq_admin_job_retry,
 * genq_admin_jobs_retry, genq_admin_job_cancel in admin.sql, around
 * genq_job_retry and genq_job_cancel), each recorded in admin_actions in
 * its transaction. After the commit: a retried job is dispatched at once
 * (the relay, with its new dispatch generation; the relay's scan would
 * send it within a second anyway), a canceled one's worker is told on the
 * cancel channel, and every changed job's change notice goes out, as
 * genqctl sends them (ctl/announce.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "job.h"
#include "log.h"
#include "queue.h"

/* ---- GET /v1/admin/jobs ---- */

static int list_status_ok(const char *s) {
  static const char *const ok[] = {"failed", "dead", "canceled", "queued", "running"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (!strcmp(s, ok[i])) return 1;
  return 0;
}

static int kind_ok(const char *s) {
  job_kind k;
  return job_kind_parse(s, &k) == 0;
}

static int whole_in(const char *s, long lo, long hi) {
  char *end;
  long v = strtol(s, &end, 10);
  return *s && !*end && strlen(s) <= 9 && v >= lo && v <= hi;
}

void api_admin_jobs_list(api_ctx *ctx, http_request *req) {
  char status[16] = "failed", kind[16], user[256], since[48], limit[8], cursor[64], secs[24];
  int hs, hk, hu, ht, hl, hc;
  if ((hs = api_admin_param(req, "status", status, sizeof status)) < 0 ||
      (hk = api_admin_param(req, "kind", kind, sizeof kind)) < 0 ||
      (hu = api_admin_param(req, "user", user, sizeof user)) < 0 ||
      (ht = api_admin_param(req, "since", since, sizeof since)) < 0 ||
      (hl = api_admin_param(req, "limit", limit, sizeof limit)) < 0 ||
      (hc = api_admin_param(req, "cursor", cursor, sizeof cursor)) < 0)
    return;
  const char *at, *ago;
  if (hs && !list_status_ok(status)) {
    api_reply_error(req, 400, "invalid_request",
                    "status must be one of failed, dead, canceled, queued, running", NULL);
  } else if (hk && !kind_ok(kind)) {
    api_reply_error(req, 400, "invalid_request",
                    "kind must be one of storyboard, image, video, lipsync, campaign", NULL);
  } else if (api_admin_since(ht ? since : NULL, &at, &ago, secs) != 0) {
    api_reply_error(req, 400, "invalid_request",
                    "since must be an RFC 3339 date-time or a duration before now (90s, 10m, 2h, "
                    "1d)",
                    NULL);
  } else if (hl && !whole_in(limit, 1, ADMIN_PAGE_MAX)) {
    api_reply_error(req, 400, "invalid_request", "limit must be an integer between 1 and 100",
                    NULL);
  } else {
    const char *p[7] = {status, hk ? kind : NULL,  hu ? user : NULL,  at,
                        ago,    hl ? limit : NULL, hc ? cursor : NULL};
    api_admin_query_json(
        ctx, req,
        "select genq_admin_jobs($1, $2, $3, " ADMIN_SINCE_SQL("$4", "$5") ", $6::int, $7)", 7, p);
  }
}

/* ---- after a retry or a cancel committed ---- */

/* The HTTP answer of a refusal genq_admin_job_retry names. */
static int refusal_status(const char *code) {
  if (!strcmp(code, "not_found")) return 404;
  if (!strcmp(code, "insufficient_credits")) return 402;
  if (!strcmp(code, "invalid_argument")) return 400;
  return 409; /* not_failed, inputs_gone */
}

/* A retried job: into its stream now, and its change notice. */
static void retried(api_ctx *ctx, const char *id, const char *kind, const cJSON *gen) {
  if (id && kind && cJSON_IsNumber(gen))
    relay_job_gen(ctx->relay, kind, id, (long long)gen->valuedouble);
  if (id) queue_publish_change(ctx->redis, id);
}

static const char *str(const cJSON *o, const char *k) {
  return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static cJSON *result_of(http_request *req, const db_result *r) {
  if (!r->ok) {
    api_admin_reply_db(req, r);
    return NULL;
  }
  cJSON *o = PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0)
                 ? cJSON_Parse(PQgetvalue(r->res, 0, 0))
                 : NULL;
  if (!o) api_reply_error(req, 404, "not_found", "no such job", NULL);
  return o;
}

/* ---- POST /v1/admin/jobs/{id}/retry ---- */

static void job_retried(const db_result *r, void *arg) {
  http_request *req = arg;
  api_ctx *ctx = http_req_data(req);
  cJSON *o = result_of(req, r);
  if (!o) return;
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
  if (err) {
    const char *code = str(err, "code");
    log_info("admin retry refused", LS("request_id", http_req_id(req)),
             LS("code", code ? code : ""));
    api_reply_error(req, refusal_status(code ? code : ""), code ? code : "refused",
                    str(err, "message") ? str(err, "message") : "refused", NULL);
    cJSON_Delete(o);
    return;
  }
  const cJSON *job = cJSON_GetObjectItemCaseSensitive(o, "job");
  retried(ctx, str(job, "id"), str(o, "kind"), cJSON_GetObjectItemCaseSensitive(o, "gen"));
  api_admin_announce(ctx, req, cJSON_GetObjectItemCaseSensitive(o, "action"));
  cJSON *out = cJSON_Duplicate(job, 1);
  if (out) cJSON_AddStringToObject(out, "user_id", str(o, "user_id") ? str(o, "user_id") : "");
  cJSON_Delete(o);
  api_reply_json(req, 200, out);
}

/* max_attempts of a body: 1 given (into buf), 0 absent, -1 answered. */
static int max_attempts_of(http_request *req, const cJSON *body, char buf[8]) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "max_attempts");
  if (!m || cJSON_IsNull(m)) return 0;
  if (!cJSON_IsNumber(m) || m->valuedouble != (double)(int)m->valuedouble || m->valuedouble < 1 ||
      m->valuedouble > 100) {
    api_reply_error(req, 400, "invalid_request", "max_attempts must be an integer from 1 to 100",
                    NULL);
    return -1;
  }
  snprintf(buf, 8, "%d", (int)m->valuedouble);
  return 1;
}

void api_admin_job_retry(api_ctx *ctx, http_request *req, const api_user *u, const char *id) {
  static const char *const fields[] = {"max_attempts", NULL};
  if (!genq_is_uuid(id)) {
    api_reply_error(req, 404, "not_found", "no such job", NULL);
    return;
  }
  cJSON *body = api_admin_body(req, fields, 1);
  if (!body) return;
  char ma[8];
  int has = max_attempts_of(req, body, ma);
  cJSON_Delete(body);
  if (has < 0) return;
  char *actor = api_admin_actor(u);
  if (!actor) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  http_req_set_data(req, ctx);
  const char *p[4] = {actor, http_req_id(req), id, has ? ma : NULL};
  if (db_query(ctx->db, "select genq_admin_job_retry($1::jsonb, $2, $3::uuid, $4::int)", 4, p,
               job_retried, req) != 0)
    api_admin_reply_busy(req);
  free(actor);
}

/* ---- POST /v1/admin/jobs/retry ---- */

static void jobs_retried(const db_result *r, void *arg) {
  http_request *req = arg;
  api_ctx *ctx = http_req_data(req);
  cJSON *o = result_of(req, r);
  if (!o) return;
  cJSON *j;
  cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(o, "retried")) {
    retried(ctx, str(j, "id"), str(j, "kind"), cJSON_GetObjectItemCaseSensitive(j, "gen"));
    cJSON_DeleteItemFromObjectCaseSensitive(j, "gen");
  }
  const cJSON *a;
  cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(o, "actions")) {
    api_admin_announce(ctx, req, a);
  }
  cJSON_DeleteItemFromObjectCaseSensitive(o, "actions");
  api_reply_json(req, 200, o);
}

void api_admin_jobs_retry(api_ctx *ctx, http_request *req, const api_user *u) {
  static const char *const fields[] = {"status", "kind",         "user_id", "since",
                                       "max",    "max_attempts", "dry_run", NULL};
  cJSON *body = api_admin_body(req, fields, 0);
  if (!body) return;
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(body, "status"),
              *kind = cJSON_GetObjectItemCaseSensitive(body, "kind"),
              *user = cJSON_GetObjectItemCaseSensitive(body, "user_id"),
              *since = cJSON_GetObjectItemCaseSensitive(body, "since"),
              *max = cJSON_GetObjectItemCaseSensitive(body, "max"),
              *dry = cJSON_GetObjectItemCaseSensitive(body, "dry_run");
  const char *why = NULL, *at = NULL, *ago = NULL;
  char secs[24], maxbuf[8], ma[8];
  int has_ma = 0;
  if (st && !(cJSON_IsString(st) &&
              (!strcmp(st->valuestring, "dead") || !strcmp(st->valuestring, "failed"))))
    why = "status must be dead or failed";
  else if (kind && !(cJSON_IsString(kind) && kind_ok(kind->valuestring)))
    why = "kind must be one of storyboard, image, video, lipsync, campaign";
  else if (user && !(cJSON_IsString(user) && *user->valuestring && strlen(user->valuestring) < 256))
    why = "user_id must be a string of 1 to 255 characters";
  else if (since &&
           !(cJSON_IsString(since) && api_admin_since(since->valuestring, &at, &ago, secs) == 0))
    why = "since must be an RFC 3339 date-time or a duration before now (90s, 10m, 2h, 1d)";
  else if (max && !(cJSON_IsNumber(max) && max->valuedouble == (double)(int)max->valuedouble &&
                    max->valuedouble >= 1 && max->valuedouble <= ADMIN_RETRY_MAX))
    why = "max must be an integer from 1 to 1000";
  else if (dry && !cJSON_IsBool(dry))
    why = "dry_run must be true or false";
  if (why) {
    cJSON_Delete(body);
    api_reply_error(req, 400, "invalid_request", why, NULL);
    return;
  }
  if ((has_ma = max_attempts_of(req, body, ma)) < 0) {
    cJSON_Delete(body);
    return;
  }
  snprintf(maxbuf, sizeof maxbuf, "%d", max ? (int)max->valuedouble : ADMIN_RETRY_DEFAULT);
  char *actor = api_admin_actor(u);
  if (!actor) {
    cJSON_Delete(body);
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  http_req_set_data(req, ctx);
  const char *p[10] = {actor,
                       http_req_id(req),
                       st ? st->valuestring : "dead",
                       kind ? kind->valuestring : NULL,
                       user ? user->valuestring : NULL,
                       at,
                       ago,
                       maxbuf,
                       has_ma ? ma : NULL,
                       cJSON_IsTrue(dry) ? "true" : "false"};
  if (db_query(ctx->db,
               "select genq_admin_jobs_retry($1::jsonb, $2, $3, $4, $5, " ADMIN_SINCE_SQL(
                   "$6", "$7") ", $8::int, $9::int, $10::boolean)",
               10, p, jobs_retried, req) != 0)
    api_admin_reply_busy(req);
  free(actor);
  cJSON_Delete(body);
}

/* ---- POST /v1/admin/jobs/{id}/cancel ---- */

static void job_canceled(const db_result *r, void *arg) {
  http_request *req = arg;
  api_ctx *ctx = http_req_data(req);
  cJSON *o = result_of(req, r);
  if (!o) return;
  const cJSON *job = cJSON_GetObjectItemCaseSensitive(o, "job");
  const char *id = str(job, "id");
  if (id && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "canceled"))) {
    queue_publish_change(ctx->redis, id);
    queue_publish_cancel(ctx->redis, id); /* its worker stops at once */
    api_admin_announce(ctx, req, cJSON_GetObjectItemCaseSensitive(o, "action"));
  }
  cJSON *out = cJSON_Duplicate(job, 1);
  if (out) cJSON_AddStringToObject(out, "user_id", str(o, "user_id") ? str(o, "user_id") : "");
  cJSON_Delete(o);
  api_reply_json(req, 200, out);
}

void api_admin_job_cancel(api_ctx *ctx, http_request *req, const api_user *u, const char *id) {
  if (!genq_is_uuid(id)) {
    api_reply_error(req, 404, "not_found", "no such job", NULL);
    return;
  }
  char *actor = api_admin_actor(u);
  if (!actor) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  http_req_set_data(req, ctx);
  const char *p[3] = {actor, http_req_id(req), id};
  if (db_query(ctx->db, "select genq_admin_job_cancel($1::jsonb, $2, $3::uuid)", 3, p, job_canceled,
               req) != 0)
    api_admin_reply_busy(req);
  free(actor);
}
