/* credits.c — GET /v1/credits: {balance, held, available}. */
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

void api_credits_get(api_ctx *ctx, http_request *req, const api_user *u) {
  const char *params[1] = {u->user};
  if (db_query(ctx->db, "select genq_credits($1)", 1, params, credits_row, req) != 0) {
    static const char *const retry[] = {"Retry-After: 1", NULL};
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}
