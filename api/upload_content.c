/* upload_content.c — GET /v1/uploads/{id}/content?expires=&sig=: an
 * upload's bytes for a provider.
 *
 * Providers take inputs (a Luma keyframe) only as a public URL, while
 * uploads live in genq's private storage. genq-worker signs a short-lived
 * URL (signed_url.h) and hands it to the provider; whoever holds it may
 * read those bytes, and nothing else: the signature is the capability, so
 * there is no bearer token here. Every refusal — no signing key
 * configured, a missing, malformed, tampered or expired signature, an
 * upload that does not exist or was swept — is the same 404, so a prober
 * learns nothing about which part was wrong or which ids exist. The reason
 * goes to the debug log only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "signed_url.h"

#define EXPIRES_MAX 32 /* canonical expiries are far shorter: longer is refused */
#define SIG_MAX 80     /* 64 hex digits */

typedef struct {
  api_ctx *ctx;
  http_request *req;
  char content_type[128];
} content_op;

/* A provider may fetch the same URL more than once while it works; it must
 * not outlive the signature by much in any cache, nor be taken for HTML. */
static const char *const content_headers[] = {"Cache-Control: private, max-age=300",
                                              "X-Content-Type-Options: nosniff", NULL};
static const char *const retry[] = {"Retry-After: 1", NULL};

static void not_found(http_request *req, const char *why) {
  log_debug("upload content refused", LS("request_id", http_req_id(req)), LS("reason", why));
  http_respond_error(req, 404, "not_found", "no such upload", NULL);
}

/* The recorded type goes into a header: anything but printable ASCII is
 * served as plain bytes. */
static void set_type(content_op *op, const char *t) {
  int ok = *t && strlen(t) < sizeof(op->content_type);
  for (const char *p = t; ok && *p; p++)
    ok = *p >= 0x20 && *p < 0x7f;
  snprintf(op->content_type, sizeof(op->content_type), "%s", ok ? t : "application/octet-stream");
}

static void got_bytes(const char *data, size_t len, int missing, const char *err, void *arg) {
  content_op *op = arg;
  http_request *req = op->req;
  if (missing) {
    /* swept between the row and the read */
    not_found(req, "bytes no longer stored");
  } else if (err) {
    log_error("upload read failed", LS("request_id", http_req_id(req)), LS("error", err));
    http_respond_error(req, 503, "unavailable", "storage is unavailable; retry", retry);
  } else {
    char *owned = op->ctx->storage ? storage_take(op->ctx->storage) : NULL;
    if (owned)
      http_respond_take(req, 200, op->content_type, content_headers, owned, len);
    else
      http_respond(req, 200, op->content_type, content_headers, data, len);
  }
  free(op);
}

static void upload_row(const db_result *r, void *arg) {
  content_op *op = arg;
  http_request *req = op->req;
  if (!r->ok) {
    api_reply_db_error(req, r);
    free(op);
    return;
  }
  if (PQntuples(r->res) != 1) {
    not_found(req, "no live upload with this id");
    free(op);
    return;
  }
  set_type(op, PQgetvalue(r->res, 0, 0));
  const char *key = PQgetvalue(r->res, 0, 1);
  if (!op->ctx->storage ||
      storage_get(op->ctx->storage, key, op->ctx->cfg.upload_max_bytes, got_bytes, op) != 0) {
    http_respond_error(req, 503, "unavailable", "storage is unavailable; retry", retry);
    free(op);
  }
}

void api_upload_content(api_ctx *ctx, http_request *req, const char *id) {
  const char *key = ctx->cfg.url_signing_key;
  if (!key) {
    not_found(req, "GENQ_URL_SIGNING_KEY is not set");
    return;
  }
  if (!api_is_uuid(id)) {
    not_found(req, "not an upload id");
    return;
  }
  char expires[EXPIRES_MAX], sig[SIG_MAX];
  const char *q = http_req_query(req);
  if (api_query_param(q, "expires", expires, sizeof expires) != 1 ||
      api_query_param(q, "sig", sig, sizeof sig) != 1) {
    not_found(req, "expires or sig missing or malformed");
    return;
  }
  if (!signed_url_check(key, id, expires, sig, (long long)time(NULL))) {
    not_found(req, "bad or expired signature");
    return;
  }
  content_op *op = calloc(1, sizeof(*op));
  if (!op) {
    http_respond_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  op->ctx = ctx;
  op->req = req;
  const char *params[1] = {id};
  if (db_query(ctx->db,
               "select content_type, storage_key from uploads"
               " where id = $1::uuid and deleted_at is null",
               1, params, upload_row, op) != 0) {
    free(op);
    http_respond_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}
