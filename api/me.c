/* me.c — privacy rights (SPEC §7; docs/privacy.md): DELETE /v1/me and
 * GET /v1/me/export.
 *
 * DELETE /v1/me is one call of genq_account_delete (schema/functions/
 * privacy.sql): the account marked deleted, its API keys revoked, its
 * unfinished jobs canceled with their holds released, in one transaction.
 * After the commit each canceled job is announced (event streams, job
 * caches, and its worker, which stops at once), and api_auth_user_deleted
 * makes every API process refuse the user's tokens and keys from then on.
 * 202 {deleted_at, purge_after, canceled, keys_revoked}: the data is purged
 * by the sweeper 30 days later. Calling it again changes nothing.
 *
 * GET /v1/me/export streams one JSON document, {"account": {...}, "jobs":
 * [...], "ledger": [...], "uploads": [...], "assets": [...],
 * "webhook_deliveries": [...], "api_keys": [...]}, built page by page
 * (genq_export_page: keyset pages, one index range scan each). The next
 * page is read only once the last one has drained into the socket, so a
 * user with any number of jobs costs one page of memory here and one
 * bounded query at a time there, and a client that stops reading is reset
 * by the server's write timeout. A failure after the head has gone ends
 * the stream with a reset connection, which the client sees as a truncated
 * (invalid) document. At most EXPORTS_MAX run at once in a process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "queue.h"

static const char *const retry[] = {"Retry-After: 1", NULL};

/* ---- DELETE /v1/me ---- */

typedef struct {
  api_ctx *ctx;
  http_request *req;
  char user[256];
} delete_op;

static void account_deleted(const db_result *r, void *arg) {
  delete_op *op = arg;
  http_request *req = op->req;
  if (!r->ok || PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
    if (r->ok)
      api_reply_error(req, 500, "internal", "internal error", NULL);
    else
      api_reply_db_error(req, r);
    free(op);
    return;
  }
  const char *text = PQgetvalue(r->res, 0, 0);
  /* committed: from now on the user is refused everywhere */
  api_auth_user_deleted(op->ctx, op->user);
  cJSON *o = cJSON_Parse(text);
  const cJSON *ids = cJSON_GetObjectItemCaseSensitive(o, "canceled"), *id;
  int n = 0;
  cJSON_ArrayForEach(id, ids) {
    if (!cJSON_IsString(id)) continue;
    queue_publish_change(op->ctx->redis, id->valuestring);
    queue_publish_cancel(op->ctx->redis, id->valuestring); /* its worker stops at once */
    n++;
  }
  cJSON_Delete(o);
  log_info("account deleted", LS("request_id", http_req_id(req)), LI("jobs_canceled", n));
  api_reply_json_text(req, 202, text, strlen(text));
  free(op);
}

void api_me_delete(api_ctx *ctx, http_request *req, const api_user *u) {
  delete_op *op = calloc(1, sizeof(*op));
  if (!op) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  op->ctx = ctx;
  op->req = req;
  snprintf(op->user, sizeof op->user, "%s", u->user);
  const char *p[1] = {op->user};
  if (db_query(ctx->db, "select genq_account_delete($1)::text", 1, p, account_deleted, op) != 0) {
    free(op);
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}

/* ---- GET /v1/me/export ---- */

#define EXPORTS_MAX 16

static const struct {
  const char *name;
  const char *page; /* rows per page */
} sections[] = {
    {"jobs", "100"},
    {"ledger", "200"},
    {"uploads", "200"},
    {"assets", "200"},
    {"webhook_deliveries", "200"},
    {"api_keys", "200"},
};
#define NSECTIONS ((int)(sizeof sections / sizeof sections[0]))

static unsigned exports; /* in progress in this process */

typedef struct {
  api_ctx *ctx;
  http_request *req;
  char user[256];
  int section;     /* in sections; NSECTIONS: all written */
  char after[64];  /* the section's last key sent; "" before its first page */
  long long items; /* sent in the section */
  int querying;    /* a page is being read (a statement has no cancel) */
  int gone;        /* the client left, or the stream ended */
} export_op;

static void export_free(export_op *op) {
  exports--;
  free(op);
}

/* Ends the stream: cleanly once the document is whole, else with a reset. */
static void export_finish(export_op *op) {
  if (op->req) {
    http_stream_on_drain(op->req, NULL, NULL);
    if (op->section >= NSECTIONS)
      http_stream_end(op->req);
    else
      http_abort(op->req);
    op->req = NULL;
  }
  op->gone = 1;
  if (!op->querying) export_free(op);
}

static void page_read(const db_result *r, void *arg) {
  export_op *op = arg;
  op->querying = 0;
  if (op->gone) {
    export_free(op);
    return;
  }
  if (!r->ok || PQntuples(r->res) != 1) {
    log_error("export: reading a page failed", LS("request_id", http_req_id(op->req)),
              LS("section", sections[op->section].name), LS("error", r->ok ? "no row" : r->error));
    export_finish(op);
    return;
  }
  int n = atoi(PQgetvalue(r->res, 0, 2));
  const char *chunk = PQgetvalue(r->res, 0, 0);
  size_t clen = (size_t)PQgetlength(r->res, 0, 0);
  int last = n < atoi(sections[op->section].page);
  char tail[64] = "";
  if (last) { /* the section's end, and the next one's start or the document's end */
    if (op->section + 1 < NSECTIONS)
      snprintf(tail, sizeof tail, "],\"%s\":[", sections[op->section + 1].name);
    else
      snprintf(tail, sizeof tail, "]}\n");
  }
  size_t tlen = strlen(tail);
  char *buf = malloc(clen + tlen + 2);
  if (!buf) {
    export_finish(op);
    return;
  }
  size_t len = 0;
  if (n > 0) {
    if (op->items > 0) buf[len++] = ',';
    memcpy(buf + len, chunk, clen);
    len += clen;
    op->items += n;
    snprintf(op->after, sizeof op->after, "%s", PQgetvalue(r->res, 0, 1));
  }
  memcpy(buf + len, tail, tlen);
  len += tlen;
  if (last) {
    op->section++;
    op->after[0] = 0;
    op->items = 0;
  }
  /* len > 0: a full page, or a section's end; its drain asks for the next */
  int bad = http_stream_write(op->req, buf, len) != 0;
  free(buf);
  if (bad || op->section >= NSECTIONS) export_finish(op);
}

static void page_next(http_request *req, void *arg) {
  export_op *op = arg;
  (void)req;
  if (op->gone || op->querying || op->section >= NSECTIONS) return;
  const char *p[4] = {op->user, sections[op->section].name, op->after[0] ? op->after : NULL,
                      sections[op->section].page};
  if (db_query(op->ctx->db, "select chunk, next, n from genq_export_page($1, $2, $3, $4::int)", 4,
               p, page_read, op) != 0) {
    log_warn("export: the database is overloaded", LS("request_id", http_req_id(op->req)));
    export_finish(op);
    return;
  }
  op->querying = 1;
}

static void export_gone(http_request *req, void *arg) {
  (void)req;
  export_finish(arg);
}

static const char *const export_headers[] = {
    "Content-Disposition: attachment; filename=\"genq-export.json\"", NULL};

static void account_read(const db_result *r, void *arg) {
  export_op *op = arg;
  http_request *req = op->req;
  op->querying = 0;
  if (!r->ok || PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
    if (r->ok)
      api_reply_error(req, 500, "internal", "internal error", NULL);
    else
      api_reply_db_error(req, r);
    export_free(op);
    return;
  }
  log_info("export", LS("request_id", http_req_id(req)));
  http_req_on_gone(req, export_gone, op);
  http_stream_on_drain(req, page_next, op); /* the first write's drain asks for the first page */
  if (http_stream_begin(req, 200, "application/json", export_headers) != 0) {
    export_finish(op);
    return;
  }
  const char *account = PQgetvalue(r->res, 0, 0);
  size_t alen = strlen(account);
  char *buf = malloc(alen + 64);
  if (!buf) {
    export_finish(op);
    return;
  }
  int len = snprintf(buf, alen + 64, "{\"account\":%s,\"%s\":[", account, sections[0].name);
  int bad = http_stream_write(req, buf, (size_t)len) != 0;
  free(buf);
  if (bad) export_finish(op);
}

void api_me_export(api_ctx *ctx, http_request *req, const api_user *u) {
  if (exports >= EXPORTS_MAX) {
    log_warn("export: too many at once", LS("request_id", http_req_id(req)));
    api_reply_error(req, 503, "unavailable", "too many exports at once; retry", retry);
    return;
  }
  export_op *op = calloc(1, sizeof(*op));
  if (!op) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  exports++;
  op->ctx = ctx;
  op->req = req;
  snprintf(op->user, sizeof op->user, "%s", u->user);
  const char *p[1] = {op->user};
  if (db_query(ctx->db, "select genq_export_account($1)::text", 1, p, account_read, op) != 0) {
    export_free(op);
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
    return;
  }
  op->querying = 1;
}
