/* assets.c — GET /v1/assets/{id}: the bytes of a stored result.
 *
 * genq_asset_get() answers only for the caller's own assets, so another
 * user's id and an id that never existed both end as 404 (never 403). The
 * bytes come from storage whole (bounded by GENQ_ASSET_MAX_BYTES) and are
 * handed to the response without another copy. An asset never changes once
 * written, so browsers may keep it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

typedef struct {
  api_ctx *ctx;
  http_request *req;
  char content_type[128];
} asset_op;

static const char *const asset_headers[] = {"Cache-Control: private, max-age=31536000, immutable",
                                            "X-Content-Type-Options: nosniff", NULL};
static const char *const retry[] = {"Retry-After: 1", NULL};

static void not_found(http_request *req) {
  http_respond_error(req, 404, "not_found", "no such asset", NULL);
}

/* The recorded type goes into a header: anything but printable ASCII
 * without CR/LF is served as plain bytes. */
static void set_type(asset_op *op, const char *t) {
  int ok = *t && strlen(t) < sizeof(op->content_type);
  for (const char *p = t; ok && *p; p++)
    ok = *p >= 0x20 && *p < 0x7f;
  snprintf(op->content_type, sizeof(op->content_type), "%s", ok ? t : "application/octet-stream");
}

static void got_bytes(const char *data, size_t len, int missing, const char *err, void *arg) {
  asset_op *op = arg;
  http_request *req = op->req;
  if (missing) {
    log_warn("asset bytes missing from storage", LS("request_id", http_req_id(req)));
    http_respond_error(req, 404, "not_found", "the asset's bytes are no longer stored", NULL);
  } else if (err) {
    log_error("asset read failed", LS("request_id", http_req_id(req)), LS("error", err));
    http_respond_error(req, 503, "unavailable", "storage is unavailable; retry", retry);
  } else {
    char *owned = op->ctx->storage ? storage_take(op->ctx->storage) : NULL;
    if (owned)
      http_respond_take(req, 200, op->content_type, asset_headers, owned, len);
    else
      http_respond(req, 200, op->content_type, asset_headers, data, len);
  }
  free(op);
}

static void asset_row(const db_result *r, void *arg) {
  asset_op *op = arg;
  http_request *req = op->req;
  if (!r->ok) {
    api_reply_db_error(req, r);
    free(op);
    return;
  }
  if (PQntuples(r->res) != 1) {
    not_found(req);
    free(op);
    return;
  }
  set_type(op, PQgetvalue(r->res, 0, 0));
  const char *key = PQgetvalue(r->res, 0, 1);
  if (!op->ctx->storage ||
      storage_get(op->ctx->storage, key, op->ctx->cfg.asset_max_bytes, got_bytes, op) != 0) {
    http_respond_error(req, 503, "unavailable", "storage is unavailable; retry", retry);
    free(op);
  }
}

void api_assets_get(api_ctx *ctx, http_request *req, const api_user *u, const char *id) {
  if (!api_is_uuid(id)) {
    not_found(req);
    return;
  }
  asset_op *op = calloc(1, sizeof(*op));
  if (!op) {
    http_respond_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  op->ctx = ctx;
  op->req = req;
  const char *params[2] = {u->user, id};
  if (db_query(ctx->db, "select content_type, storage_key from genq_asset_get($1, $2::uuid)", 2,
               params, asset_row, op) != 0) {
    free(op);
    http_respond_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}
