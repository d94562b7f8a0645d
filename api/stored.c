/* stored.c — answering a request with bytes from storage: an asset for its
 * owner (assets.c), an upload for a provider holding a signed URL
 * (upload_content.c). A query names the object — one row (content_type,
 * storage_key, bytes) or none.
 *
 * An object of up to STORED_PIECE bytes is read whole and handed to the
 * response without another copy. A larger one is streamed: a sized
 * response (Content-Length from the row), then one piece read from storage
 * (storage_get_range) and written at a time, the next only once the last
 * has drained into the socket. So a download holds at most one piece in
 * memory whatever the object's size, a client that reads slowly slows the
 * reads instead of filling memory, and one that stops reading is reset by
 * the server's write timeout. At most API_STORED_STREAMS stream at once in
 * a process; past that a download is 503 with Retry-After. An object that
 * turns out shorter than its row says ends with a reset connection, which
 * the client sees as a truncated body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

#define STORED_PIECE (256u << 10)

typedef struct {
  api_ctx *ctx;
  http_request *req;
  api_stored_opts o;
  char content_type[128];
  char key[256];
  size_t total, sent;
  int streaming; /* counted in ctx->stored_streams */
  int reading;   /* a storage read is outstanding (it has no cancel) */
  int gone;      /* the client left, or the stream ended: free once no read is outstanding */
} stored_op;

static const char *const retry[] = {"Retry-After: 1", NULL};

static void op_free(stored_op *op) {
  if (op->streaming) op->ctx->stored_streams--;
  free(op);
}

static void not_found(stored_op *op, const char *why) {
  log_debug("stored bytes refused", LS("request_id", http_req_id(op->req)), LS("reason", why));
  api_reply_error(op->req, 404, "not_found", op->o.not_found_message, NULL);
  op_free(op);
}

/* The recorded type goes into a header: anything but printable ASCII is
 * served as plain bytes. */
static void set_type(stored_op *op, const char *t) {
  int ok = *t && strlen(t) < sizeof(op->content_type);
  for (const char *p = t; ok && *p; p++)
    ok = *p >= 0x20 && *p < 0x7f;
  snprintf(op->content_type, sizeof(op->content_type), "%s", ok ? t : "application/octet-stream");
}

/* ---- small objects: read whole ---- */

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
  op_free(op);
}

/* ---- large objects: streamed piece by piece ---- */

/* Ends the stream: cleanly when every byte went out, else with a reset so
 * the client cannot take a short body for the whole one. */
static void stream_finish(stored_op *op) {
  if (op->req) {
    if (op->sent == op->total)
      http_stream_end(op->req);
    else
      http_abort(op->req);
    op->req = NULL;
  }
  op->gone = 1;
  if (!op->reading) op_free(op);
}

static void piece_read(const char *data, size_t len, int missing, const char *err, void *arg) {
  stored_op *op = arg;
  op->reading = 0;
  if (op->gone) {
    op_free(op);
    return;
  }
  if (missing || err || len == 0 || len > op->total - op->sent) {
    log_error("stored bytes: reading a piece failed", LS("request_id", http_req_id(op->req)),
              LS("error", err       ? err
                          : missing ? "bytes no longer stored"
                                    : "shorter than recorded"),
              LI("sent", (long long)op->sent), LI("bytes", (long long)op->total));
    stream_finish(op);
    return;
  }
  op->sent += len;
  if (http_stream_write(op->req, data, len) != 0) stream_finish(op);
  /* else the drain of this piece asks for the next */
}

static void piece_next(http_request *req, void *arg) {
  stored_op *op = arg;
  (void)req;
  if (op->gone || op->reading) return;
  if (op->sent == op->total) {
    stream_finish(op);
    return;
  }
  size_t n = op->total - op->sent < STORED_PIECE ? op->total - op->sent : STORED_PIECE;
  if (!op->ctx->storage ||
      storage_get_range(op->ctx->storage, op->key, op->sent, n, piece_read, op) != 0) {
    stream_finish(op);
    return;
  }
  op->reading = 1;
}

static void stream_gone(http_request *req, void *arg) {
  (void)req;
  stream_finish(arg);
}

static void stream_start(stored_op *op) {
  http_request *req = op->req;
  if (op->ctx->stored_streams >= API_STORED_STREAMS) {
    log_warn("stored bytes: too many large downloads at once", LS("request_id", http_req_id(req)),
             LI("streams", op->ctx->stored_streams));
    api_reply_error(req, 503, "unavailable", "too many large downloads at once; retry", retry);
    free(op);
    return;
  }
  op->ctx->stored_streams++;
  op->streaming = 1;
  http_req_on_gone(req, stream_gone, op);
  http_stream_on_drain(req, piece_next, op); /* the head's drain asks for the first piece */
  if (http_stream_begin_sized(req, 200, op->content_type, op->o.headers, op->total) != 0 ||
      strcmp(http_req_method(req), "HEAD") == 0) {
    op->sent = op->total; /* a HEAD gets the head only; a gone client nothing */
    stream_finish(op);
  }
}

static void row(const db_result *r, void *arg) {
  stored_op *op = arg;
  if (!r->ok) {
    api_reply_db_error(op->req, r);
    op_free(op);
    return;
  }
  if (PQntuples(r->res) != 1) {
    not_found(op, "no such row");
    return;
  }
  set_type(op, PQgetvalue(r->res, 0, 0));
  const char *key = PQgetvalue(r->res, 0, 1);
  long long bytes = strtoll(PQgetvalue(r->res, 0, 2), NULL, 10);
  if (bytes > (long long)STORED_PIECE && (size_t)bytes <= op->o.max_bytes &&
      strlen(key) < sizeof(op->key)) {
    snprintf(op->key, sizeof(op->key), "%s", key);
    op->total = (size_t)bytes;
    stream_start(op);
    return;
  }
  if (!op->ctx->storage ||
      storage_get(op->ctx->storage, key, op->o.max_bytes, got_bytes, op) != 0) {
    api_reply_error(op->req, 503, "unavailable", "storage is unavailable; retry", retry);
    op_free(op);
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
