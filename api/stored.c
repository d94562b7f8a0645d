/* stored.c — answering a request with bytes from storage: an asset for its
 * owner (assets.c), an upload for a provider holding a signed URL
 * (upload_content.c). A query names the object — one row (content_type,
 * storage_key) or none — and the bytes are read whole (bounded) and handed
 * to the response without another copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

typedef struct {
  api_ctx *ctx;
  http_request *req;
  api_stored_opts o;
  char content_type[128];
} stored_op;

static const char *const retry[] = {"Retry-After: 1", NULL};

static void not_found(stored_op *op, const char *why) {
  log_debug("stored bytes refused", LS("request_id", http_req_id(op->req)), LS("reason", why));
  api_reply_error(op->req, 404, "not_found", op->o.not_found_message, NULL);
  free(op);
}

/* The recorded type goes into a header: anything but printable ASCII is
 * served as plain bytes. */
static void set_type(stored_op *op, const char *t) {
  int ok = *t && strlen(t) < sizeof(op->content_type);
  for (const char *p = t; ok && *p; p++)
    ok = *p >= 0x20 && *p < 0x7f;
  snprintf(op->content_type, sizeof(op->content_type), "%s", ok ? t : "application/octet-stream");
}

static void got_bytes(const char *data, size_t len, int missing, const char *err, void *arg) {
  stored_op *op = arg;
  http_request *req = op->req;
  if (missing) {
    not_found(op, "bytes no longer stored");
    return;
  }
  if (err) {
    log_error("storage read failed", LS("request_id", http_req_id(req)), LS("error", err));
    api_reply_error(req, 503, "unavailable", "storage is unavailable; retry", retry);
  } else {
    char *owned = op->ctx->storage ? storage_take(op->ctx->storage) : NULL;
    if (owned)
      http_respond_take(req, 200, op->content_type, op->o.headers, owned, len);
    else
      http_respond(req, 200, op->content_type, op->o.headers, data, len);
  }
  free(op);
}

static void row(const db_result *r, void *arg) {
  stored_op *op = arg;
  if (!r->ok) {
    api_reply_db_error(op->req, r);
    free(op);
    return;
  }
  if (PQntuples(r->res) != 1) {
    not_found(op, "no such row");
    return;
  }
  set_type(op, PQgetvalue(r->res, 0, 0));
  if (!op->ctx->storage || storage_get(op->ctx->storage, PQgetvalue(r->res, 0, 1), op->o.max_bytes,
                                       got_bytes, op) != 0) {
    api_reply_error(op->req, 503, "unavailable", "storage is unavailable; retry", retry);
    free(op);
  }
}

void api_reply_stored(api_ctx *ctx, http_request *req, const api_stored_opts *o, const char *sql,
                      int nparams, const char *const *params) {
  stored_op *op = calloc(1, sizeof(*op));
  if (!op) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  op->ctx = ctx;
  op->req = req;
  op->o = *o;
  if (db_query(ctx->db, sql, nparams, params, row, op) != 0) {
    free(op);
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}
