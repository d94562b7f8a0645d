/* fuzz_openai — how genq-worker reads OpenAI's answer to the storyboard
 * step (openai_reply_read, worker/openai.c): the status, the error object
 * of an error body, the completion of a 2xx one (worker/storyboard.c). The
 * input is "STATUS SCENES [RETRY_AFTER_MS]" and the body (fuzz_response.h).
 *
 * What must hold: ok exactly when a 2xx body held a storyboard; otherwise
 * one of the documented codes, retryable as documented; a message always,
 * from which the API key is scrubbed; Retry-After passed through. */
#include <stdio.h>
#include <string.h>

#include "fuzz_response.h"
#include "openai.h"
#include "provider_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const codes[] = {"network",
                                      "timeout",
                                      "provider_error",
                                      "rate_limited",
                                      "insufficient_quota",
                                      "refused",
                                      "content_filter",
                                      "truncated",
                                      "invalid_output",
                                      "bad_request",
                                      "unauthorized",
                                      NULL};
  httpc_response resp;
  char word[16], *body;
  if (fuzz_response(data, size, &resp, word, sizeof word, &body) < 0) return 0;
  int scenes = atoi(word);
  if (scenes < 1 || scenes > 12) scenes = 4;
  openai_reply rep;
  openai_reply_read(&rep, scenes, &resp);
  const openai_result *r = &rep.r;
  int ok_status = resp.status >= 200 && resp.status < 300;
  CHECK(r->ok == 0 || r->ok == 1);
  CHECK(r->retryable == 0 || r->retryable == 1);
  CHECK(r->message == rep.msg && memchr(rep.msg, '\0', sizeof rep.msg) && rep.msg[0]);
  CHECK(r->retry_after_ms == resp.retry_after_ms && r->request_id == resp.request_id);
  if (r->ok) {
    CHECK(ok_status && !r->code && r->storyboard && r->storyboard == rep.storyboard);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r->storyboard, "scenes")) == scenes);
  } else {
    CHECK(fuzz_one_of(r->code, codes) && !r->storyboard);
    if (!strcmp(r->code, "insufficient_quota")) CHECK(resp.status == 429 && !r->retryable);
    if (!strcmp(r->code, "refused") || !strcmp(r->code, "content_filter"))
      CHECK(ok_status && !r->retryable);
    if (resp.status == 0) CHECK(r->retryable);
  }
  provider_scrub_secret(rep.msg, sizeof rep.msg, FUZZ_API_KEY);
  CHECK(!strstr(rep.msg, FUZZ_API_KEY));
  openai_reply_free(&rep);
  free(body);
  return 0;
}
