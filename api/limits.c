/* limits.c — the answers of genq's usage limits (docs/limits.md): the 429
 * of a per-user limit that PostgreSQL decided (schema/functions/limits.sql),
 * and the per-IP limit on refused unauthenticated requests.
 *
 * Per user (unfinished jobs, submission rate, uploads per day) the limits
 * are decided inside the transactions that would write (genq_submit_jobs,
 * genq_upload_create), under locks every API process takes, so they hold
 * fleet-wide to the unit; their refusal is SQLSTATE GQ429 with the column
 * '<code>/<retry seconds>'.
 *
 * Per IP: a request that fails authentication (401), or presents a
 * capability genq did not make on an unauthenticated route (a forged Luma
 * callback token or upload signed URL: 404), takes one token from its peer
 * address's bucket in Redis (genq:ip-refusals:<address>; refill
 * GENQ_IP_REFUSALS_PER_MINUTE, size GENQ_IP_REFUSALS_BURST), shared by every
 * API process and timed by Redis's own clock (TIME). An empty bucket turns
 * the refusal into 429 too_many_requests with Retry-After: the seconds
 * until one token. Valid requests never touch the bucket: they are the
 * callers' own, bounded by their per-user limits, and providers fetching
 * uploads or calling back share their addresses. Redis unreachable: the
 * refusal is answered as it was (logged), never let through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "limits_lua.h"
#include "log.h"

void api_reply_limit(http_request *req, const char *column, const char *message) {
  char code[48] = "too_many_requests", hdr[40];
  long secs = 1;
  const char *slash = column ? strchr(column, '/') : NULL;
  if (slash && (size_t)(slash - column) < sizeof code && slash > column) {
    memcpy(code, column, (size_t)(slash - column));
    code[slash - column] = 0;
    char *end;
    long v = strtol(slash + 1, &end, 10);
    if (end != slash + 1 && *end == 0 && v > 0) secs = v;
  }
  snprintf(hdr, sizeof hdr, "Retry-After: %ld", secs);
  const char *const headers[] = {hdr, NULL};
  api_reply_error(req, 429, code, message && *message ? message : "a usage limit is reached",
                  headers);
}

typedef struct {
  http_request *req;
  int status;
  const char *const *headers;
  char code[48];
  char message[200];
  char peer[48];
} refuse_op;

static void refused(redisReply *reply, const char *err, void *arg) {
  refuse_op *op = arg;
  if (err || !reply || reply->type != REDIS_REPLY_INTEGER) {
    log_warn("per-address refusal count unavailable; refusal answered as is",
             LS("error", err                                         ? err
                         : reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                     : "bad reply"));
  } else if (reply->integer > 0) {
    char hdr[40];
    snprintf(hdr, sizeof hdr, "Retry-After: %lld", (reply->integer + 999) / 1000);
    const char *const headers[] = {hdr, NULL};
    log_info("per-address limit on refused requests reached", LS("peer", op->peer),
             LS("request_id", http_req_id(op->req)));
    api_reply_error(op->req, 429, "too_many_requests",
                    "too many refused requests from this address; retry later", headers);
    free(op);
    return;
  }
  api_reply_error(op->req, op->status, op->code, op->message, op->headers);
  free(op);
}

void api_ip_refuse(api_ctx *ctx, http_request *req, int status, const char *code,
                   const char *message, const char *const *headers) {
  int rate = ctx->cfg.ip_refusals_per_minute, burst = ctx->cfg.ip_refusals_burst;
  refuse_op *op = rate > 0 && burst > 0 ? calloc(1, sizeof(*op)) : NULL;
  if (!op || http_req_peer(req, op->peer, sizeof op->peer) != 0) {
    free(op);
    api_reply_error(req, status, code, message, headers);
    return;
  }
  op->req = req;
  op->status = status;
  op->headers = headers;
  snprintf(op->code, sizeof op->code, "%s", code);
  snprintf(op->message, sizeof op->message, "%s", message);
  char key[80], r[16], b[16];
  snprintf(key, sizeof key, "genq:ip-refusals:%s", op->peer);
  snprintf(r, sizeof r, "%d", rate);
  snprintf(b, sizeof b, "%d", burst);
  const char *argv[] = {"EVAL", API_IP_BUCKET_LUA, "1", key, r, b};
  if (rds_command_argv(ctx->redis, refused, op, 6, argv, NULL) != 0) {
    log_warn("Redis is down; refusal answered without its per-address count", LOG_END);
    api_reply_error(req, status, code, message, headers);
    free(op);
  }
}
