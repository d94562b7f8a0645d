#ifndef GENQ_WORKER_OPENAI_H
#define GENQ_WORKER_OPENAI_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "http_client.h"
#include "provider_http.h"

/* The storyboard step against OpenAI's chat completions (PROVIDERS.md):
 * one POST {base_url}/chat/completions with a strict JSON schema, the answer
 * validated by storyboard_parse_completion, every failure classified into a
 * code and a retryable flag for the worker's retry policy. */

typedef struct {
  const char *base_url; /* e.g. https://api.openai.com/v1 (a trailing '/' is tolerated) */
  const char *api_key;
  const char *model;
  long timeout_ms;       /* whole request; 0 → 60000 */
  provider_stats *stats; /* NULL, or where each answer is counted (metrics) */
} openai_opts;

typedef struct {
  int ok;                  /* 1: storyboard is a validated document */
  int retryable;           /* on failure: 1 for network errors, timeouts, 5xx, 429 (not
                              insufficient_quota), malformed/truncated bodies */
  const char *code;        /* on failure: "network", "timeout", "provider_error", "rate_limited",
                              "insufficient_quota", "refused", "content_filter", "truncated",
                              "invalid_output", "bad_request", "unauthorized" */
  const char *message;     /* human, bounded, never contains the API key */
  long retry_after_ms;     /* from retry-after(-ms), else -1 */
  const char *request_id;  /* x-request-id of the response, or NULL */
  const cJSON *storyboard; /* on ok: {title, scenes:[{index, visual_prompt, narration,
                              duration_s}]}; borrowed: valid only during the callback
                              (cJSON_Duplicate to keep) */
} openai_result;

/* Called exactly once when openai_storyboard returned 0, on the loop thread
 * (also when the transfer is canceled with httpc_cancel: code "network",
 * retryable). r and everything it points to are valid only during the call. */
typedef void (*openai_cb)(const openai_result *r, void *arg);

/* input: the job's validated storyboard input (prompt, scenes, style?,
 * aspect_ratio?). Copies what it needs from o and input. Returns 0 and sets
 * *xfer_id (if not NULL) to the httpc transfer id, usable with httpc_cancel;
 * or a negative value when the input or options are unusable or the request
 * could not be started (cb never runs). */
int openai_storyboard(httpc *c, const openai_opts *o, const cJSON *input, openai_cb cb, void *arg,
                      uint64_t *xfer_id);

/* ---- pure parts, exposed for tests and the fuzzer ---- */

/* Everything one response means, and the storage that r points into. Do not
 * copy it (r.message points into msg). */
typedef struct {
  openai_result r;
  cJSON *storyboard; /* r.storyboard, owned */
  char msg[512];
} openai_reply;

/* Reads resp, the answer to a storyboard of `scenes` scenes (1..12), into
 * rep->r: a failed transfer or oversized body, an error status and its
 * OpenAI error object, or the completion (storyboard_parse_completion).
 * The API key is not scrubbed here. Free with openai_reply_free. */
void openai_reply_read(openai_reply *rep, int scenes, const httpc_response *resp);
void openai_reply_free(openai_reply *rep);

#endif
