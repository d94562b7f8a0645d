/* OpenAI chat-completions client for the storyboard step (see openai.h). */
#include "openai.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider_http.h"
#include "provider_text.h"
#include "storyboard.h"

#define OPENAI_MAX_RESPONSE (1u << 20) /* a storyboard is a few KiB; 1 MiB is generous */

typedef struct {
  openai_cb cb;
  void *arg;
  int scenes;
  char api_key[]; /* only to scrub it from provider messages */
} openai_call;

/* ---- pure parts ---- */

/* The OpenAI error object of an error body: {"error":{"message","type","param","code"}}. */
static void read_error(const httpc_response *resp, char *msg, size_t msglen,
                       const char **err_code) {
  cJSON *root = cJSON_ParseWithLength(resp->body, resp->body_len);
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(err, "code");
  *err_code = NULL;
  if (cJSON_IsString(c) && !strcmp(c->valuestring, "insufficient_quota"))
    *err_code = "insufficient_quota";
  snprintf(msg, msglen, "OpenAI HTTP %d: %.300s", resp->status,
           cJSON_IsString(m) ? m->valuestring : "(no error message)");
  cJSON_Delete(root);
}

void openai_reply_read(openai_reply *rep, int scenes, const httpc_response *resp) {
  memset(rep, 0, sizeof *rep);
  openai_result *r = &rep->r;
  r->retry_after_ms = resp->retry_after_ms;
  r->request_id = resp->request_id;
  r->message = rep->msg;
  const char *err_code;

  if (resp->status == 0 || resp->curl_code != CURLE_OK || resp->too_large) {
    r->retryable = 1;
    if (resp->too_large) {
      r->code = "invalid_output";
      snprintf(rep->msg, sizeof rep->msg, "OpenAI response larger than %u bytes",
               OPENAI_MAX_RESPONSE);
    } else {
      r->code = resp->curl_code == CURLE_OPERATION_TIMEDOUT ? "timeout" : "network";
      snprintf(rep->msg, sizeof rep->msg, "OpenAI request failed: %.300s",
               resp->error ? resp->error : curl_easy_strerror((CURLcode)resp->curl_code));
    }
  } else if (resp->status >= 200 && resp->status < 300) {
    const char *code = NULL;
    if (storyboard_parse_completion(resp->body, resp->body_len, scenes, &rep->storyboard, &code,
                                    rep->msg, sizeof rep->msg) == 0) {
      r->ok = 1;
      r->storyboard = rep->storyboard;
      snprintf(rep->msg, sizeof rep->msg, "ok");
    } else {
      r->code = code;
      /* A refusal or a filtered answer will come again; a truncated or
       * malformed one may not. */
      r->retryable = strcmp(code, "refused") != 0 && strcmp(code, "content_filter") != 0;
    }
  } else {
    read_error(resp, rep->msg, sizeof rep->msg, &err_code);
    int s = resp->status;
    if (s == 429) {
      r->code = err_code ? err_code : "rate_limited";
      r->retryable = !err_code;
    } else if (s >= 500 || s == 409) { /* OpenAI documents 409 as a transient conflict */
      r->code = "provider_error";
      r->retryable = 1;
    } else if (s == 401 || s == 403) {
      r->code = "unauthorized";
    } else if (s == 408) {
      r->code = "timeout";
      r->retryable = 1;
    } else {
      r->code = "bad_request";
    }
  }
}

void openai_reply_free(openai_reply *rep) {
  cJSON_Delete(rep->storyboard);
  rep->storyboard = NULL;
  rep->r.storyboard = NULL;
}

/* ---- transfers ---- */

static void on_response(const httpc_response *resp, void *arg) {
  openai_call *call = arg;
  openai_reply rep;
  openai_reply_read(&rep, call->scenes, resp);
  provider_scrub_secret(rep.msg, sizeof rep.msg, call->api_key);
  call->cb(&rep.r, call->arg);
  openai_reply_free(&rep);
  free(call);
}

int openai_storyboard(httpc *c, const openai_opts *o, const cJSON *input, openai_cb cb, void *arg,
                      uint64_t *xfer_id) {
  if (!c || !o || !o->base_url || !o->api_key || !o->model || !cb) return -1;
  int scenes = storyboard_scene_count(input);
  if (scenes < 0) return -1;
  size_t klen = strlen(o->api_key);
  char *body = storyboard_request_body(input, o->model);
  openai_call *call = calloc(1, sizeof *call + klen + 1);
  int rc = -1;
  if (!body || !call) goto done;
  memcpy(call->api_key, o->api_key, klen);
  call->cb = cb;
  call->arg = arg;
  call->scenes = scenes;
  provider_target t = {.base_url = o->base_url,
                       .path = "/chat/completions",
                       .auth_scheme = "Bearer",
                       .api_key = o->api_key,
                       .stats = o->stats};
  httpc_request req = {
      .method = "POST",
      .body = body,
      .body_len = strlen(body),
      .timeout_ms = o->timeout_ms,
      .max_response_bytes = OPENAI_MAX_RESPONSE,
  };
  rc = provider_send(c, &t, &req, on_response, call, xfer_id);
done:
  if (rc < 0) free(call);
  cJSON_free(body);
  return rc;
}
