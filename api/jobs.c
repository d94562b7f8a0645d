/* jobs.c — POST /v1/jobs, GET /v1/jobs/{id}, GET /v1/jobs,
 * POST /v1/jobs/{id}/cancel.
 *
 * Submitting: validate (job.c), then the submission joins the next batch
 * (submit_batch.c): one call of genq_submit_jobs() for every submission
 * that arrived together, which in one transaction creates the accounts if
 * new, checks and holds each job's full price, checks and links the uploads
 * each input names, and creates the jobs and their steps, answering each
 * submission on its own (schema/functions/jobs.sql). Only a committed job
 * is answered 202 and handed to the relay for Redis.
 *
 * Every committed change of a job is announced on the events channel
 * (queue_publish_change) so event streams wake up at once and the job cache
 * (common/job_cache.h), which answers GET /v1/jobs/{id}, drops it. */
#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "job.h"
#include "log.h"
#include "net_guard.h"
#include "queue.h"

static int idempotency_key_ok(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > JOB_IDEMPOTENCY_KEY_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (k[i] < 0x21 || k[i] > 0x7e) return 0;
  return 1;
}

void api_jobs_submit(api_ctx *ctx, http_request *req, const api_user *u) {
  /* required: a cross-site form or a "simple" fetch cannot send it */
  const char *ct = http_req_header(req, "content-type");
  if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
      (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
    api_reply_error(req, 415, "unsupported_media_type", "Content-Type must be application/json",
                    NULL);
    return;
  }
  size_t len;
  const char *body = http_req_body(req, &len);
  job_submission sub;
  char field[64], msg[256], full[360];
  int bad = job_submission_parse(body, len, &sub, field, sizeof(field), msg, sizeof(msg));
  if (bad != 0) {
    api_reply_error(req, 400, bad == JOB_ERR_JSON ? "invalid_json" : "invalid_request", msg, NULL);
    return;
  }
  if (!job_kind_runnable(sub.kind)) {
    snprintf(full, sizeof(full), "kind: '%s' jobs are not available yet", job_kind_name(sub.kind));
    job_submission_free(&sub);
    api_reply_error(req, 400, "invalid_request", full, NULL);
    return;
  }
  /* the URL is hostile input: https, no credentials, no refused address
   * (net_guard.h); the worker checks it again, and what it resolves to */
  if (sub.webhook_url) {
    net_guard_nets allow; /* valid: config_load checked it */
    char why[200];
    if (net_guard_nets_parse(ctx->cfg.webhook_allow_nets, &allow, NULL, 0) < 0 ||
        net_guard_url_check(sub.webhook_url, ctx->cfg.webhook_allow_http, &allow, NULL, why,
                            sizeof why) < 0) {
      snprintf(full, sizeof(full), "webhook_url %s", why);
      job_submission_free(&sub);
      api_reply_error(req, 400, "invalid_request", full, NULL);
      return;
    }
  }
  const char *idem = http_req_header(req, "idempotency-key");
  if (idem && !idempotency_key_ok(idem)) {
    job_submission_free(&sub);
    api_reply_error(req, 400, "invalid_request",
                    "Idempotency-Key must be 1 to 255 printable ASCII characters", NULL);
    return;
  }
  /* the request hash tells a replay from a reuse of the key with another body */
  unsigned char digest[SHA256_DIGEST_LENGTH];
  char hash[2 * SHA256_DIGEST_LENGTH + 1];
  SHA256((const unsigned char *)body, len, digest);
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
    snprintf(hash + (size_t)2 * (size_t)i, 3, "%02x", digest[i]);

  _Static_assert(sizeof(ctx->cfg.max_attempts_kind) / sizeof(int) == JOB_KIND_COUNT,
                 "one GENQ_MAX_ATTEMPTS_<KIND> per kind");
  int kind_attempts = ctx->cfg.max_attempts_kind[sub.kind];
  /* the submission as genq_submit_jobs reads it; the input by reference */
  cJSON *item = cJSON_CreateObject();
  int rc = -1;
  if (item && cJSON_AddStringToObject(item, "user", u->user) &&
      cJSON_AddStringToObject(item, "kind", job_kind_name(sub.kind)) &&
      cJSON_AddItemReferenceToObject(item, "input", sub.input) &&
      (!sub.webhook_url || cJSON_AddStringToObject(item, "webhook_url", sub.webhook_url)) &&
      (!idem || cJSON_AddStringToObject(item, "idempotency_key", idem)) &&
      cJSON_AddStringToObject(item, "request_hash", hash) &&
      cJSON_AddNumberToObject(item, "max_attempts",
                              kind_attempts ? kind_attempts : ctx->cfg.max_attempts))
    rc = api_submit_enqueue(ctx, req, u->user, job_kind_name(sub.kind), item);
  cJSON_Delete(item);
  job_submission_free(&sub);
  if (rc != 0) api_reply_error(req, 500, "internal", "out of memory", NULL);
}

/* ---- reading ---- */

/* 1 when r is one row about a job this user may see; else 0, answered
 * (the database's error, or 404 for a job that is missing or not theirs). */
static int job_row(http_request *req, const db_result *r) {
  if (!r->ok) {
    api_reply_db_error(req, r);
    return 0;
  }
  if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
    api_reply_error(req, 404, "not_found", "no such job", NULL);
    return 0;
  }
  return 1;
}

static void one_json_row(const db_result *r, void *arg) {
  http_request *req = arg;
  if (!job_row(req, r)) return;
  const char *v = PQgetvalue(r->res, 0, 0);
  api_reply_json_text(req, 200, v, strlen(v));
}

static void query_or_503(api_ctx *ctx, http_request *req, const char *sql, int n,
                         const char *const *params) {
  if (db_query(ctx->db, sql, n, params, one_json_row, req) != 0) {
    static const char *const retry[] = {"Retry-After: 1", NULL};
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}

typedef struct {
  http_request *req;
  char user[sizeof(((api_user *)0)->user)];
} poll_ctx;

static void polled(const job_cache_read *r, void *arg) {
  poll_ctx *p = arg;
  if (!r->ok)
    api_reply_db_error(p->req, r->failure);
  else if (!r->user || strcmp(r->user, p->user) != 0)
    api_reply_error(p->req, 404, "not_found", "no such job", NULL);
  else
    api_reply_json_text(p->req, 200, r->json, r->len);
  free(p);
}

/* Served from the job cache (common/job_cache.h): polled every second by
 * every open tab, a job is read from PostgreSQL once per change, not once
 * per poll. */
void api_jobs_get(api_ctx *ctx, http_request *req, const api_user *u, const char *id) {
  /* an id that cannot exist is simply not found: never tell ids apart */
  if (!genq_is_uuid(id)) {
    api_reply_error(req, 404, "not_found", "no such job", NULL);
    return;
  }
  poll_ctx *p = malloc(sizeof(*p));
  if (!p) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  p->req = req;
  snprintf(p->user, sizeof(p->user), "%s", u->user);
  char key[37];
  for (size_t i = 0; i < 36; i++)
    key[i] = (char)tolower((unsigned char)id[i]);
  key[36] = '\0';
  if (job_cache_get(ctx->jobs, key, polled, p) != 0) {
    free(p);
    static const char *const retry[] = {"Retry-After: 1", NULL};
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}

static int status_ok(const char *s) {
  job_status st;
  return job_status_parse(s, &st) == 0;
}

static int kind_ok(const char *s) {
  job_kind k;
  return job_kind_parse(s, &k) == 0;
}

static int limit_ok(const char *s) {
  char *end;
  long n = strtol(s, &end, 10);
  return *s && !*end && n >= 1 && n <= 100;
}

/* One query parameter of GET /v1/jobs into buf: 0 absent, 1 given and
 * accepted by ok, -1 refused (answered 400 with msg). */
static int list_param(http_request *req, const char *q, const char *name, char *buf, size_t len,
                      int (*ok)(const char *), const char *msg) {
  int rc = api_query_param(q, name, buf, len);
  if (rc > 0 && ok(buf)) return 1;
  if (rc != 0) api_reply_error(req, 400, "invalid_request", msg, NULL);
  return rc == 0 ? 0 : -1;
}

void api_jobs_list(api_ctx *ctx, http_request *req, const api_user *u) {
  const char *q = http_req_query(req);
  char status[16], kind[16], limit[8], cursor[40];
  int has_status, has_kind, has_limit, has_cursor;
  if ((has_status = list_param(req, q, "status", status, sizeof status, status_ok,
                               "status must be one of queued, running, succeeded, failed, "
                               "canceled")) < 0 ||
      (has_kind = list_param(req, q, "kind", kind, sizeof kind, kind_ok,
                             "kind must be one of storyboard, image, video, lipsync, campaign")) <
          0 ||
      (has_limit = list_param(req, q, "limit", limit, sizeof limit, limit_ok,
                              "limit must be an integer between 1 and 100")) < 0 ||
      (has_cursor = list_param(req, q, "cursor", cursor, sizeof cursor, genq_is_uuid,
                               "cursor is not a valid cursor")) < 0)
    return;
  const char *params[5] = {u->user, has_status ? status : NULL, has_kind ? kind : NULL,
                           has_limit ? limit : "20", has_cursor ? cursor : NULL};
  query_or_503(ctx, req, "select genq_jobs_list($1, $2, $3, $4::int, $5::uuid)", 5, params);
}

/* ---- canceling ---- */

static void canceled(const db_result *r, void *arg) {
  api_ctx *ctx = http_req_data(arg);
  http_request *req = arg;
  if (!job_row(req, r)) return;
  const char *job = PQgetvalue(r->res, 0, 0), *id = PQgetvalue(r->res, 0, 1);
  /* a terminal job comes back unchanged; announcing it again is harmless */
  queue_publish_change(ctx->redis, id);
  if (strcmp(PQgetvalue(r->res, 0, 2), "canceled") == 0)
    queue_publish_cancel(ctx->redis, id); /* its worker stops at once */
  log_info("job cancel", LS("request_id", http_req_id(req)), LS("job_id", id),
           LS("status", PQgetvalue(r->res, 0, 2)));
  api_reply_json_text(req, 200, job, strlen(job));
}

void api_jobs_cancel(api_ctx *ctx, http_request *req, const api_user *u, const char *id) {
  if (!genq_is_uuid(id)) {
    api_reply_error(req, 404, "not_found", "no such job", NULL);
    return;
  }
  http_req_set_data(req, ctx);
  const char *params[2] = {u->user, id};
  if (db_query(ctx->db, "select j, j->>'id', j->>'status' from genq_job_cancel($1, $2::uuid) as j",
               2, params, canceled, req) != 0) {
    static const char *const retry[] = {"Retry-After: 1", NULL};
    api_reply_error(req, 503, "unavailable", "the database is overloaded; nothing was changed",
                    retry);
  }
}
