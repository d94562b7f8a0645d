/* callbacks.c — POST /v1/callbacks/luma/{token}: a provider's callback as a
 * wake-up (callback_url.h).
 *
 * Luma POSTs the Generation on each state change, unsigned, up to three
 * times. genq never trusts it for state: the body is not even read (the
 * server bounds it, CALLBACK_MAX_BODY); the token in the path names the job
 * and proves that genq made the URL. A valid one publishes the job id on
 * QUEUE_WAKEUP_CHANNEL and the worker holding the job polls Luma early, at
 * most once per step per GENQ_POLL_INTERVAL_MS. No bearer token: the
 * capability is in the URL. Every refusal — no key configured, a malformed
 * or forged token — is the same 404, and changes nothing. */
#include "api.h"
#include "callback_url.h"
#include "log.h"
#include "queue.h"

void api_callback_luma(api_ctx *ctx, http_request *req, const char *token) {
  char job_id[37];
  if (!ctx->cfg.url_signing_key || !callback_url_check(ctx->cfg.url_signing_key, token, job_id)) {
    log_debug("callback refused", LS("request_id", http_req_id(req)));
    api_ip_refuse(ctx, req, 404, "not_found", "no such endpoint", NULL);
    return;
  }
  if (queue_publish_wakeup(ctx->redis, job_id) != 0) {
    /* Luma tries again; the worker's fallback poll comes anyway */
    static const char *const retry[] = {"Retry-After: 1", NULL};
    api_reply_error(req, 503, "unavailable", "Redis is unavailable; retry", retry);
    return;
  }
  log_debug("callback: job woken", LS("request_id", http_req_id(req)), LS("job_id", job_id));
  http_respond(req, 204, NULL, NULL, NULL, 0);
}
