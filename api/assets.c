/* assets.c — GET /v1/assets/{id}: the bytes of a stored result.
 *
 * genq_asset_get() answers only for the caller's own assets, so another
 * user's id and an id that never existed both end as 404 (never 403). The
 * bytes come from storage (bounded by GENQ_ASSET_MAX_BYTES): a small asset
 * whole, a large one streamed piece by piece (stored.c). An asset never changes once
 * written, so browsers may keep it. */
#include "api.h"

static const char *const asset_headers[] = {"Cache-Control: private, max-age=31536000, immutable",
                                            "X-Content-Type-Options: nosniff", NULL};

void api_assets_get(api_ctx *ctx, http_request *req, const api_user *u, const char *id) {
  if (!genq_is_uuid(id)) {
    api_reply_error(req, 404, "not_found", "no such asset", NULL);
    return;
  }
  api_stored_opts o = {.max_bytes = ctx->cfg.asset_max_bytes,
                       .headers = asset_headers,
                       .not_found_message = "no such asset"};
  const char *params[2] = {u->user, id};
  api_reply_stored(ctx, req, &o,
                   "select content_type, storage_key, bytes from genq_asset_get($1, $2::uuid)", 2,
                   params);
}
