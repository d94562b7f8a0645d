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

/* A provider may fetch the same URL more than once while it works; it must
 * not outlive the signature by much in any cache, nor be taken for HTML. */
static const char *const content_headers[] = {"Cache-Control: private, max-age=300",
                                              "X-Content-Type-Options: nosniff", NULL};

/* The 404 of every refusal; it counts against the caller's address
 * (api_ip_refuse, limits.c), which may turn it into 429. */
static void not_found(api_ctx *ctx, http_request *req, const char *why) {
  log_debug("upload content refused", LS("request_id", http_req_id(req)), LS("reason", why));
  api_ip_refuse(ctx, req, 404, "not_found", "no such upload", NULL);
}

void api_upload_content(api_ctx *ctx, http_request *req, const char *id) {
  const char *key = ctx->cfg.url_signing_key;
  if (!key) {
    not_found(ctx, req, "GENQ_URL_SIGNING_KEY is not set");
    return;
  }
  if (!genq_is_uuid(id)) {
    not_found(ctx, req, "not an upload id");
    return;
  }
  char expires[EXPIRES_MAX], sig[SIG_MAX];
  const char *q = http_req_query(req);
  if (api_query_param(q, "expires", expires, sizeof expires) != 1 ||
      api_query_param(q, "sig", sig, sizeof sig) != 1) {
    not_found(ctx, req, "expires or sig missing or malformed");
    return;
  }
  if (!signed_url_check(key, id, expires, sig, (long long)time(NULL))) {
    not_found(ctx, req, "bad or expired signature");
    return;
  }
  api_stored_opts o = {.max_bytes = ctx->cfg.upload_max_bytes,
                       .headers = content_headers,
                       .not_found_message = "no such upload"};
  const char *params[1] = {id};
  api_reply_stored(ctx, req, &o,
                   "select content_type, storage_key, bytes from uploads"
                   " where id = $1::uuid and deleted_at is null",
                   1, params);
}
