/* credits.c — GET /v1/credits: {balance, held, available, debt}; GET
 * /v1/credits/ledger: the caller's ledger rows, newest first, by pages. */
#include <stdlib.h>
#include <string.h>

#include "api.h"

static void credits_row(const db_result *r, void *arg) {
  http_request *req = arg;
  if (!r->ok) {
    api_reply_db_error(req, r);
    return;
  }
  const char *v = PQntuples(r->res) == 1 ? PQgetvalue(r->res, 0, 0) : "";
  if (!*v) {
    api_reply_error(req, 500, "internal", "internal error", NULL);
    return;
  }
  api_reply_json_text(req, 200, v, strlen(v));
}

static void query_json(api_ctx *ctx, http_request *req, const char *sql, int n,
                       const char *const *params) {
  if (db_query(ctx->db, sql, n, params, credits_row, req) != 0) {
    static const char *const retry[] = {"Retry-After: 1", NULL};
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}

void api_credits_get(api_ctx *ctx, http_request *req, const api_user *u) {
  const char *params[1] = {u->user};
  query_json(ctx, req, "select genq_credits($1)", 1, params);
}

/* 1 when s is a whole number from lo to hi (at most 18 digits). */
static int whole(const char *s, long long lo, long long hi) {
  char *end;
  size_t n = strlen(s);
  if (n == 0 || n > 18 || s[0] < '0' || s[0] > '9') return 0;
  long long v = strtoll(s, &end, 10);
  return !*end && v >= lo && v <= hi;
}

void api_credits_ledger(api_ctx *ctx, http_request *req, const api_user *u) {
  const char *q = http_req_query(req);
  char limit[8], cursor[24];
  int has_limit = api_query_param(q, "limit", limit, sizeof limit);
  int has_cursor = api_query_param(q, "cursor", cursor, sizeof cursor);
  if (has_limit < 0 || (has_limit > 0 && !whole(limit, 1, 100))) {
    api_reply_error(req, 400, "invalid_request", "limit must be an integer between 1 and 100",
                    NULL);
    return;
  }
  if (has_cursor < 0 || (has_cursor > 0 && !whole(cursor, 1, 999999999999999999LL))) {
    api_reply_error(req, 400, "invalid_request", "cursor is not a valid cursor", NULL);
    return;
  }
  const char *params[3] = {u->user, has_cursor > 0 ? cursor : NULL, has_limit > 0 ? limit : NULL};
  query_json(ctx, req, "select genq_ledger_page($1, $2::bigint, $3::int)", 3, params);
}
