/* uploads.c — POST /v1/uploads: media a user hands in for generation.
 *
 * The body is raw bytes (the server refused it on Content-Length if it was
 * over GENQ_UPLOAD_MAX_BYTES). The declared Content-Type must be one genq
 * accepts and the bytes' signature must agree with it. The bytes are stored
 * first (uploads/<id>), then recorded by genq_upload_create(); a row never
 * names bytes that are not there, and bytes whose row failed are deleted
 * again. Uploads expire (SPEC §7): the sweeper deletes them.
 *
 * The plan's daily limits (uploads and bytes per UTC day, limits.sql) are
 * asked before anything is stored (genq_limits_upload_refusal: 429, nothing
 * stored) and decided exactly when the row is recorded (genq_upload_create
 * counts the upload in the day's row or refuses GQ429; the stored bytes are
 * deleted again), so concurrent uploads cannot pass them together. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "media.h"

#define UPLOAD_TYPES "image/png, image/jpeg, image/webp, audio/mpeg, audio/wav, audio/mp4"

typedef struct {
  api_ctx *ctx;
  http_request *req;
  char user[256];
  char id[37];
  char key[48];
  char content_type[32];
  char sha256[65];
  char bytes[24];
  size_t len;
  const char *body; /* the request's, valid until it is answered */
  uv_work_t work;
} upload_op;

static void deleted(const char *err, void *arg) {
  char *key = arg;
  if (err) log_warn("could not delete an unrecorded upload", LS("key", key), LS("error", err));
  free(key);
}

/* The row was not written: the stored bytes belong to nobody, drop them. */
static void drop_bytes(api_ctx *ctx, const char *key) {
  char *k = strdup(key);
  if (!ctx->storage || !k || storage_delete(ctx->storage, k, deleted, k) != 0) {
    log_warn("could not delete an unrecorded upload", LS("key", key));
    free(k);
  }
}

static void recorded(const db_result *r, void *arg) {
  upload_op *op = arg;
  http_request *req = op->req;
  if (!r->ok || PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
    drop_bytes(op->ctx, op->key);
    if (!r->ok && r->sqlstate && strcmp(r->sqlstate, "GQ429") == 0)
      api_reply_limit(req, r->column, r->message); /* a daily limit, decided exactly */
    else if (!r->ok && r->sqlstate && strcmp(r->sqlstate, "GQ401") == 0)
      api_reply_error(req, 401, "account_deleted", "the account is deleted", NULL);
    else if (r->ok)
      api_reply_error(req, 500, "internal", "internal error", NULL);
    else
      api_reply_db_error(req, r);
    free(op);
    return;
  }
  const char *json = PQgetvalue(r->res, 0, 0);
  log_info("upload stored", LS("request_id", http_req_id(req)), LS("upload_id", op->id),
           LS("content_type", op->content_type), LI("bytes", op->len));
  api_reply_json_text(req, 201, json, strlen(json));
  free(op);
}

static void stored(const char *err, void *arg) {
  upload_op *op = arg;
  http_request *req = op->req;
  static const char *const retry[] = {"Retry-After: 1", NULL};
  if (err) {
    log_error("upload storage failed", LS("request_id", http_req_id(req)), LS("error", err));
    api_reply_error(req, 503, "unavailable", "storage is unavailable; nothing was stored", retry);
    free(op);
    return;
  }
  const char *params[6] = {op->user, op->id, op->content_type, op->bytes, op->sha256, op->key};
  if (db_query(op->ctx->db, "select genq_upload_create($1, $2::uuid, $3, $4::bigint, $5, $6)", 6,
               params, recorded, op) != 0) {
    drop_bytes(op->ctx, op->key);
    api_reply_error(req, 503, "unavailable", "the database is overloaded; nothing was stored",
                    retry);
    free(op);
  }
}

/* The declared type, lowercased into out; -1 when absent, too long or not
 * one genq accepts. */
static int declared_type(const char *h, char *out, size_t outlen) {
  if (!h) return -1;
  size_t n = strlen(h);
  if (n == 0 || n >= outlen) return -1;
  for (size_t i = 0; i <= n; i++)
    out[i] = (char)tolower((unsigned char)h[i]);
  return media_upload_type_allowed(out) ? 0 : -1;
}

static void hash_work(uv_work_t *w);
static void hashed(uv_work_t *w, int status);

/* The answer of genq_limits_upload_refusal: NULL (the upload fits the
 * plan today: on to hashing and storing), or {column, message} → 429. */
static void allowed(const db_result *r, void *arg) {
  upload_op *op = arg;
  http_request *req = op->req;
  if (!r->ok || PQntuples(r->res) != 1) {
    if (r->ok)
      api_reply_error(req, 500, "internal", "internal error", NULL);
    else
      api_reply_db_error(req, r);
    free(op);
    return;
  }
  if (!PQgetisnull(r->res, 0, 0)) {
    api_reply_limit(req, PQgetvalue(r->res, 0, 0),
                    PQgetisnull(r->res, 0, 1) ? NULL : PQgetvalue(r->res, 0, 1));
    free(op);
    return;
  }
  /* 25 MiB hash in ~0.1 s: off the loop thread */
  if (uv_queue_work(op->ctx->loop, &op->work, hash_work, hashed) != 0) {
    free(op);
    api_reply_error(req, 500, "internal", "cannot hash the upload", NULL);
  }
}

static void hash_work(uv_work_t *w) {
  upload_op *op = w->data;
  media_sha256_hex(op->body, op->len, op->sha256);
}

static void hashed(uv_work_t *w, int status) {
  upload_op *op = w->data;
  api_ctx *ctx = op->ctx;
  http_request *req = op->req;
  if (status == 0 && ctx->storage &&
      storage_put(ctx->storage, op->key, op->body, op->len, op->content_type, stored, op) == 0)
    return;
  free(op);
  static const char *const retry[] = {"Retry-After: 1", NULL};
  api_reply_error(req, 503, "unavailable", "storage is unavailable; nothing was stored", retry);
}

void api_uploads_create(api_ctx *ctx, http_request *req, const api_user *u) {
  char type[32], msg[160];
  if (declared_type(http_req_header(req, "content-type"), type, sizeof(type)) != 0) {
    api_reply_error(req, 415, "unsupported_media_type", "Content-Type must be one of " UPLOAD_TYPES,
                    NULL);
    return;
  }
  size_t len;
  const unsigned char *body = (const unsigned char *)http_req_body(req, &len);
  if (len == 0) {
    api_reply_error(req, 400, "invalid_request", "the upload is empty", NULL);
    return;
  }
  if (len > ctx->cfg.upload_max_bytes) {
    /* the server refuses it on Content-Length; this catches any other way */
    snprintf(msg, sizeof(msg), "an upload may be at most %zu bytes", ctx->cfg.upload_max_bytes);
    api_reply_error(req, 413, "payload_too_large", msg, NULL);
    return;
  }
  if (!media_matches(type, body, len)) {
    const char *seen = media_sniff(body, len);
    snprintf(msg, sizeof(msg), "the body is not %s (its bytes look like %s)", type,
             seen ? seen : "no supported media type");
    api_reply_error(req, 415, "unsupported_media_type", msg, NULL);
    return;
  }
  upload_op *op = calloc(1, sizeof(*op));
  if (!op) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  op->ctx = ctx;
  op->req = req;
  snprintf(op->user, sizeof(op->user), "%s", u->user);
  snprintf(op->content_type, sizeof(op->content_type), "%s", type);
  op->len = len;
  snprintf(op->bytes, sizeof(op->bytes), "%zu", len);
  if (media_uuid4(op->id) != 0) {
    free(op);
    api_reply_error(req, 500, "internal", "no randomness for an id", NULL);
    return;
  }
  snprintf(op->key, sizeof(op->key), "uploads/%s", op->id);
  op->body = (const char *)body;
  op->work.data = op;
  const char *params[2] = {op->user, op->bytes};
  if (db_query(ctx->db, "select r[1], r[2] from genq_limits_upload_refusal($1, $2::bigint) r", 2,
               params, allowed, op) != 0) {
    free(op);
    static const char *const retry[] = {"Retry-After: 1", NULL};
    api_reply_error(req, 503, "unavailable", "the database is overloaded; nothing was stored",
                    retry);
  }
}
