/* fuzz_hedra — how genq-worker reads Hedra's answers (hedra_reply_read,
 * worker/hedra.c): an upload, a submit, a status poll, a result, and the
 * error object of an error status. The input is "STATUS OP
 * [RETRY_AFTER_MS]" and the body (fuzz_response.h), OP one of upload,
 * submit, status, result (anything else: status).
 *
 * What must hold: ok only for a 2xx answer with what its operation needs
 * (an upload's URL, a submit's job id, a known live state, a completed
 * result's output URL); progress in [0, 1] or -1; every failure one of the
 * documented codes, moderation never retryable; a message always, from which
 * the API key is scrubbed. */
#include <stdio.h>
#include <string.h>

#include "fuzz_response.h"
#include "hedra.h"
#include "provider_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const codes[] = {"provider_network",
                                      "provider_timeout",
                                      "provider_canceled",
                                      "provider_unavailable",
                                      "provider_rate_limited",
                                      "provider_invalid_request",
                                      "provider_auth",
                                      "provider_not_found",
                                      "provider_conflict",
                                      "provider_insufficient_balance",
                                      "provider_moderation",
                                      "provider_bad_response",
                                      "provider_generation_failed",
                                      NULL};
  static const char *const live[] = {"IN_QUEUE", "IN_PROGRESS", "COMPLETED", NULL};
  httpc_response resp;
  char word[16], *body;
  if (fuzz_response(data, size, &resp, word, sizeof word, &body) < 0) return 0;
  hedra_op op = !strcmp(word, "upload")   ? HEDRA_OP_UPLOAD
                : !strcmp(word, "submit") ? HEDRA_OP_SUBMIT
                : !strcmp(word, "result") ? HEDRA_OP_RESULT
                                          : HEDRA_OP_STATUS;
  hedra_reply rep;
  hedra_reply_read(&rep, op, &resp);
  const hedra_result *r = &rep.r;
  int ok_status = resp.status >= 200 && resp.status < 300;
  CHECK(r->ok == 0 || r->ok == 1);
  CHECK(r->retryable == 0 || r->retryable == 1);
  CHECK(r->message == rep.msg && memchr(rep.msg, '\0', sizeof rep.msg) && rep.msg[0]);
  CHECK(r->status == resp.status);
  CHECK(r->progress == -1 || (r->progress >= 0 && r->progress <= 1));
  CHECK(r->retry_after_ms == resp.retry_after_ms ||
        (r->retry_after_ms >= 0 && r->retry_after_ms <= 86400000L)); /* error.retry_after */
  if (r->ok) {
    CHECK(ok_status && !r->code);
    if (op == HEDRA_OP_UPLOAD) CHECK(r->url && provider_url_ok(r->url, 8192));
    if (op == HEDRA_OP_SUBMIT) CHECK(r->job_id && provider_id_ok(r->job_id, HEDRA_MAX_ID));
    if (op == HEDRA_OP_STATUS || op == HEDRA_OP_RESULT) CHECK(fuzz_one_of(r->state, live));
    if (op == HEDRA_OP_RESULT && !strcmp(r->state, "COMPLETED"))
      CHECK(r->output_url && provider_url_ok(r->output_url, 8192));
    if (op != HEDRA_OP_STATUS) CHECK(r->progress == -1);
  } else {
    CHECK(fuzz_one_of(r->code, codes));
    if (r->moderation) CHECK(!strcmp(r->code, "provider_moderation") && !r->retryable);
    if (!strcmp(r->code, "provider_insufficient_balance")) CHECK(!r->retryable);
    if (!strcmp(r->code, "provider_bad_response") && ok_status)
      CHECK(!r->job_id && !r->state && !r->url && !r->output_url && r->progress == -1);
  }
  provider_scrub_secret(rep.msg, sizeof rep.msg, FUZZ_API_KEY);
  CHECK(!strstr(rep.msg, FUZZ_API_KEY));
  hedra_reply_free(&rep);
  free(body);
  return 0;
}
