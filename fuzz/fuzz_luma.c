/* fuzz_luma — how genq-worker reads Luma's answers (luma_reply_read,
 * worker/luma.c): a Generation for a create or a poll, an error body for an
 * error status, the answer to a delete. The input is "STATUS OP
 * [RETRY_AFTER_MS]" and the body (fuzz_response.h), OP one of create_video,
 * create_image, get, delete (anything else: get).
 *
 * What must hold: ok only for a 2xx Generation that is queued, dreaming or
 * completed (completed: with a usable asset URL), or a delete that was 2xx or
 * 404; a failed generation is moderation or retryable; every other failure
 * one of the documented codes; a message always, from which the API key is
 * scrubbed; the body parsed alone (luma_parse_generation) says the same. */
#include <stdio.h>
#include <string.h>

#include "fuzz_response.h"
#include "luma.h"
#include "provider_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const codes[] = {
      "provider_network",     "provider_timeout",           "provider_canceled",
      "provider_unavailable", "provider_rate_limited",      "provider_invalid_request",
      "provider_auth",        "provider_not_found",         "provider_bad_response",
      "provider_moderation",  "provider_generation_failed", NULL};
  static const char *const live[] = {"queued", "dreaming", "completed", NULL};
  httpc_response resp;
  char word[16], *body;
  if (fuzz_response(data, size, &resp, word, sizeof word, &body) < 0) return 0;
  luma_op op = !strcmp(word, "create_video")   ? LUMA_OP_CREATE_VIDEO
               : !strcmp(word, "create_image") ? LUMA_OP_CREATE_IMAGE
               : !strcmp(word, "delete")       ? LUMA_OP_DELETE
                                               : LUMA_OP_GET;
  luma_reply rep;
  luma_reply_read(&rep, op, &resp);
  const luma_result *r = &rep.r;
  int ok_status = resp.status >= 200 && resp.status < 300;
  CHECK(r->ok == 0 || r->ok == 1);
  CHECK(r->retryable == 0 || r->retryable == 1);
  CHECK(r->message == rep.msg && memchr(rep.msg, '\0', sizeof rep.msg) && rep.msg[0]);
  CHECK(r->status == resp.status && r->retry_after_ms == resp.retry_after_ms);
  if (r->ok) {
    CHECK(!r->code);
    if (op == LUMA_OP_DELETE) {
      CHECK(ok_status || resp.status == 404);
    } else {
      CHECK(ok_status && r->id && provider_id_ok(r->id, LUMA_MAX_ID) &&
            fuzz_one_of(r->state, live));
      if (!strcmp(r->state, "completed"))
        CHECK(r->asset_url && provider_url_ok(r->asset_url, 8192));
    }
  } else {
    CHECK(fuzz_one_of(r->code, codes));
    if (r->state) CHECK(!strcmp(r->state, "failed") && r->id);
    if (r->moderation) CHECK(!strcmp(r->code, "provider_moderation") && !r->retryable);
  }

  luma_generation g;
  char err[200];
  if (luma_parse_generation(resp.body, resp.body_len, &g, err, sizeof err) == 0) {
    CHECK(g.root && g.id && g.state);
    if (ok_status && op != LUMA_OP_DELETE) CHECK(r->id && !strcmp(r->id, g.id));
    luma_generation_free(&g);
  } else {
    CHECK(!g.root && err[0]);
    if (ok_status && op != LUMA_OP_DELETE) CHECK(!r->ok && !r->id);
  }
  provider_scrub_secret(rep.msg, sizeof rep.msg, FUZZ_API_KEY);
  CHECK(!strstr(rep.msg, FUZZ_API_KEY));
  luma_reply_free(&rep);
  free(body);
  return 0;
}
