/* worker/luma.c: Generation parsing, error classification, request bodies,
 * and the client against a real HTTP server on loopback (common/http_server)
 * that answers what each test tells it to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luma.h"
#include "unit/loopback.h"

static const char *gen_queued =
    "{\"id\":\"0b3a5e1c-4d2f-4a8e-9c1b-2f6d7e8a9b0c\",\"generation_type\":\"video\","
    "\"state\":\"queued\",\"failure_reason\":null,\"created_at\":\"2025-01-01T00:00:00Z\","
    "\"model\":\"ray-2\",\"request\":{\"prompt\":\"a cup\"},\"assets\":null}";
static const char *gen_video_done =
    "{\"id\":\"0b3a5e1c-4d2f-4a8e-9c1b-2f6d7e8a9b0c\",\"generation_type\":\"video\","
    "\"state\":\"completed\",\"failure_reason\":null,"
    "\"assets\":{\"video\":\"https://cdn.example/v.mp4?sig=abc\",\"image\":null,"
    "\"progress_video\":null}}";
static const char *gen_image_done =
    "{\"id\":\"img-1\",\"generation_type\":\"image\",\"state\":\"completed\","
    "\"assets\":{\"image\":\"http://127.0.0.1:9/i.jpg\"}}";

/* ---- luma_parse_generation ---- */

static int parse(const char *body, luma_generation *g, char *err, size_t errlen) {
  return luma_parse_generation(body, strlen(body), g, err, errlen);
}

static void expect_bad(const char *body, const char *why) {
  luma_generation g;
  char err[200] = "";
  assert_int_equal(parse(body, &g, err, sizeof err), -1);
  assert_null(g.root);
  assert_null(g.id);
  if (why && !strstr(err, why)) fail_msg("\"%s\" does not say \"%s\"", err, why);
}

static void generation_queued_parses(void **state) {
  luma_generation g;
  char err[200];
  assert_int_equal(parse(gen_queued, &g, err, sizeof err), 0);
  assert_string_equal(g.id, "0b3a5e1c-4d2f-4a8e-9c1b-2f6d7e8a9b0c");
  assert_string_equal(g.state, "queued");
  assert_string_equal(g.generation_type, "video");
  assert_null(g.failure_reason);
  assert_null(g.asset_url);
  luma_generation_free(&g);
  assert_null(g.root);
}

static void generation_completed_video_and_image_name_their_asset(void **state) {
  luma_generation g;
  char err[200];
  assert_int_equal(parse(gen_video_done, &g, err, sizeof err), 0);
  assert_string_equal(g.asset_url, "https://cdn.example/v.mp4?sig=abc");
  luma_generation_free(&g);
  assert_int_equal(parse(gen_image_done, &g, err, sizeof err), 0);
  assert_string_equal(g.asset_url, "http://127.0.0.1:9/i.jpg");
  luma_generation_free(&g);
  /* Without generation_type, whichever asset is there. */
  assert_int_equal(
      parse("{\"id\":\"a\",\"state\":\"completed\",\"assets\":{\"image\":\"https://x/i.png\"}}", &g,
            err, sizeof err),
      0);
  assert_string_equal(g.asset_url, "https://x/i.png");
  luma_generation_free(&g);
}

static void generation_failed_keeps_its_reason(void **state) {
  luma_generation g;
  char err[200];
  assert_int_equal(parse("{\"id\":\"a-1\",\"state\":\"failed\",\"failure_reason\":\"Prompt "
                         "flagged by moderation\"}",
                         &g, err, sizeof err),
                   0);
  assert_string_equal(g.state, "failed");
  assert_string_equal(g.failure_reason, "Prompt flagged by moderation");
  luma_generation_free(&g);
  /* A wrong-typed reason is no reason, not a crash. */
  assert_int_equal(
      parse("{\"id\":\"a-1\",\"state\":\"failed\",\"failure_reason\":7}", &g, err, sizeof err), 0);
  assert_null(g.failure_reason);
  luma_generation_free(&g);
}

static void generation_unknown_state_is_rejected(void **state) {
  expect_bad("{\"id\":\"a\",\"state\":\"processing\"}", "unknown state \"processing\"");
  expect_bad("{\"id\":\"a\",\"state\":\"COMPLETED\"}", "unknown state");
  expect_bad("{\"id\":\"a\",\"state\":\"\"}", "unknown state");
  expect_bad("{\"id\":\"a\"}", "missing state");
}

static void generation_wrong_types_are_rejected(void **state) {
  expect_bad("{\"id\":12,\"state\":\"queued\"}", "id");
  expect_bad("{\"id\":null,\"state\":\"queued\"}", "id");
  expect_bad("{\"state\":\"queued\"}", "id");
  expect_bad("{\"id\":\"a\",\"state\":1}", "state");
  expect_bad("{\"id\":\"a\",\"state\":[\"queued\"]}", "state");
  expect_bad("{\"id\":\"a\",\"state\":\"queued\",\"generation_type\":\"audio\"}",
             "generation_type");
  expect_bad("{\"id\":\"a\",\"state\":\"completed\",\"assets\":\"https://x/v.mp4\"}", "assets");
  expect_bad("{\"id\":\"a\",\"state\":\"completed\",\"assets\":{\"video\":5}}", "assets.video");
  expect_bad("{\"id\":\"a\",\"state\":\"completed\"}", "assets");
  expect_bad("[]", "object");
  expect_bad("\"queued\"", "object");
  expect_bad("null", "object");
  expect_bad("", "object");
  expect_bad("   ", "object");
}

static void generation_ids_and_urls_must_be_safe(void **state) {
  /* The id goes into a URL path later; the asset URL is fetched later. */
  expect_bad("{\"id\":\"../credits\",\"state\":\"queued\"}", "id");
  expect_bad("{\"id\":\"a/b\",\"state\":\"queued\"}", "id");
  expect_bad("{\"id\":\"a b\",\"state\":\"queued\"}", "id");
  expect_bad("{\"id\":\"\",\"state\":\"queued\"}", "id");
  char body[512];
  char longid[LUMA_MAX_ID + 2];
  memset(longid, 'a', sizeof longid - 1);
  longid[sizeof longid - 1] = '\0';
  snprintf(body, sizeof body, "{\"id\":\"%s\",\"state\":\"queued\"}", longid);
  expect_bad(body, "id");
  longid[LUMA_MAX_ID] = '\0'; /* exactly the limit is fine */
  snprintf(body, sizeof body, "{\"id\":\"%s\",\"state\":\"queued\"}", longid);
  luma_generation g;
  char err[200];
  assert_int_equal(parse(body, &g, err, sizeof err), 0);
  luma_generation_free(&g);
  expect_bad("{\"id\":\"a\",\"state\":\"completed\",\"assets\":{\"video\":\"file:///etc/passwd\"}}",
             "assets.video");
  expect_bad("{\"id\":\"a\",\"state\":\"completed\",\"assets\":{\"video\":\"https://\"}}",
             "assets.video");
  expect_bad("{\"id\":\"a\",\"state\":\"completed\",\"assets\":{\"video\":\"https://x/a b\"}}",
             "assets.video");
}

static void generation_every_truncation_is_rejected(void **state) {
  /* Every strict prefix of a good body is bad JSON or misses a field. */
  size_t n = strlen(gen_video_done);
  char *buf = malloc(n + 1);
  for (size_t k = 0; k < n; k++) {
    memcpy(buf, gen_video_done, k);
    buf[k] = '\0';
    luma_generation g;
    char err[200];
    assert_int_equal(luma_parse_generation(buf, k, &g, err, sizeof err), -1);
    assert_null(g.root);
  }
  free(buf);
}

static void generation_trailing_garbage_is_rejected(void **state) {
  expect_bad("{\"id\":\"a\",\"state\":\"queued\"}xyz", "object");
  expect_bad("{\"id\":\"a\",\"state\":\"queued\"}{}", "object");
  luma_generation g;
  char err[200];
  assert_int_equal(parse("{\"id\":\"a\",\"state\":\"queued\"} \r\n", &g, err, sizeof err), 0);
  luma_generation_free(&g);
  /* The length is what counts, not a NUL: bytes past len are not read. */
  const char *s = "{\"id\":\"a\",\"state\":\"queued\"}GARBAGE";
  assert_int_equal(luma_parse_generation(s, 27, &g, err, sizeof err), 0);
  luma_generation_free(&g);
}

static void generation_huge_and_deep_bodies_do_not_crash(void **state) {
  size_t n = LUMA_MAX_RESPONSE + 10;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  memcpy(big, "{\"id\":\"a\",\"state\":\"queued\"}", 27);
  big[n] = '\0';
  luma_generation g;
  char err[200];
  assert_int_equal(luma_parse_generation(big, n, &g, err, sizeof err), -1);
  assert_non_null(strstr(err, "larger"));
  /* Within the cap, a long echoed prompt is fine. */
  size_t m = 900000;
  snprintf(big, n, "{\"id\":\"a\",\"state\":\"queued\",\"request\":{\"prompt\":\"");
  size_t at = strlen(big);
  memset(big + at, 'p', m);
  memcpy(big + at + m, "\"}}", 4);
  assert_int_equal(luma_parse_generation(big, strlen(big), &g, err, sizeof err), 0);
  luma_generation_free(&g);
  /* Nesting deeper than cJSON allows is an error, not a stack overflow. */
  size_t d = 200000;
  for (size_t i = 0; i < d; i++)
    big[i] = '[';
  assert_int_equal(luma_parse_generation(big, d, &g, err, sizeof err), -1);
  free(big);
}

/* ---- luma_classify_error and luma_reply_read ---- */

static httpc_response answer(int status, const char *body) {
  return (httpc_response){.status = status,
                          .body = body,
                          .body_len = strlen(body),
                          .retry_after_ms = -1,
                          .request_id = "req-1"};
}

typedef struct {
  int ok, retryable, moderation;
  const char *code;
} want;

static void expect_reply(luma_op op, const httpc_response *resp, want w, const char *in_msg) {
  luma_reply rep;
  luma_reply_read(&rep, op, resp);
  assert_int_equal(rep.r.ok, w.ok);
  assert_int_equal(rep.r.retryable, w.retryable);
  assert_int_equal(rep.r.moderation, w.moderation);
  if (w.code)
    assert_string_equal(rep.r.code, w.code);
  else
    assert_null(rep.r.code);
  assert_non_null(rep.r.message);
  if (in_msg && !strstr(rep.r.message, in_msg))
    fail_msg("\"%s\" does not say \"%s\"", rep.r.message, in_msg);
  assert_int_equal(rep.r.status, resp->status);
  luma_reply_free(&rep);
}

static void transfer_failures_are_retryable(void **state) {
  httpc_response r = {.curl_code = CURLE_COULDNT_CONNECT,
                      .error = "Connection refused",
                      .body = "",
                      .retry_after_ms = -1};
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_network"}, "Connection refused");
  r.curl_code = CURLE_OPERATION_TIMEDOUT;
  r.error = NULL;
  expect_reply(LUMA_OP_CREATE_VIDEO, &r, (want){0, 1, 0, "provider_timeout"}, "create_video");
  r.curl_code = CURLE_ABORTED_BY_CALLBACK;
  r.error = "canceled";
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_canceled"}, "canceled");
  r.curl_code = CURLE_WRITE_ERROR;
  r.too_large = 1;
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_bad_response"}, "larger");
}

static void error_statuses_are_classified(void **state) {
  httpc_response r = answer(429, "{\"detail\":\"Too many requests\"}");
  r.retry_after_ms = 3000;
  luma_reply rep;
  luma_reply_read(&rep, LUMA_OP_CREATE_VIDEO, &r);
  assert_string_equal(rep.r.code, "provider_rate_limited");
  assert_true(rep.r.retryable);
  assert_int_equal(rep.r.retry_after_ms, 3000);
  assert_string_equal(rep.r.request_id, "req-1");
  assert_string_equal(rep.r.message, "Luma HTTP 429: Too many requests");
  luma_reply_free(&rep);

  r = answer(500, "<html>oops</html>");
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_unavailable"}, "(no error detail)");
  r = answer(503, "");
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_unavailable"}, "503");
  r = answer(400, "{\"detail\":\"Invalid aspect ratio\"}");
  expect_reply(LUMA_OP_CREATE_VIDEO, &r, (want){0, 0, 0, "provider_invalid_request"},
               "Invalid aspect ratio");
  r = answer(422, "{\"detail\":[{\"loc\":[\"body\",\"model\"],\"msg\":\"field required\","
                  "\"type\":\"value_error.missing\"}]}");
  expect_reply(LUMA_OP_CREATE_IMAGE, &r, (want){0, 0, 0, "provider_invalid_request"},
               "field required");
  r = answer(400, "{\"detail\":\"Prompt not allowed because advanced moderation failed\"}");
  expect_reply(LUMA_OP_CREATE_VIDEO, &r, (want){0, 0, 1, "provider_moderation"}, "moderation");
  r = answer(401, "{\"detail\":\"Invalid API key\"}");
  expect_reply(LUMA_OP_GET, &r, (want){0, 0, 0, "provider_auth"}, "Invalid API key");
  r = answer(403, "{\"detail\":42}");
  expect_reply(LUMA_OP_GET, &r, (want){0, 0, 0, "provider_auth"}, "(no error detail)");
  r = answer(404, "{\"detail\":\"Generation not found\"}");
  expect_reply(LUMA_OP_GET, &r, (want){0, 0, 0, "provider_not_found"}, "not found");
  r = answer(302, "");
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_bad_response"}, "302");
  /* A 429 whose detail mentions a policy is still a rate limit. */
  r = answer(429, "{\"detail\":\"rate limit policy\"}");
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_rate_limited"}, NULL);
}

static void delete_accepts_204_and_404(void **state) {
  httpc_response r = answer(204, "");
  expect_reply(LUMA_OP_DELETE, &r, (want){1, 0, 0, NULL}, "ok");
  r = answer(404, "{\"detail\":\"Generation not found\"}");
  expect_reply(LUMA_OP_DELETE, &r, (want){1, 0, 0, NULL}, "ok");
  r = answer(401, "{\"detail\":\"no\"}");
  expect_reply(LUMA_OP_DELETE, &r, (want){0, 0, 0, "provider_auth"}, NULL);
  r = answer(500, "");
  expect_reply(LUMA_OP_DELETE, &r, (want){0, 1, 0, "provider_unavailable"}, NULL);
}

static void generation_states_map_to_results(void **state) {
  httpc_response r = answer(201, gen_queued);
  luma_reply rep;
  luma_reply_read(&rep, LUMA_OP_CREATE_VIDEO, &r);
  assert_true(rep.r.ok);
  assert_null(rep.r.code);
  assert_string_equal(rep.r.id, "0b3a5e1c-4d2f-4a8e-9c1b-2f6d7e8a9b0c");
  assert_string_equal(rep.r.state, "queued");
  assert_null(rep.r.asset_url);
  luma_reply_free(&rep);

  r = answer(200, gen_video_done);
  luma_reply_read(&rep, LUMA_OP_GET, &r);
  assert_true(rep.r.ok);
  assert_string_equal(rep.r.state, "completed");
  assert_string_equal(rep.r.asset_url, "https://cdn.example/v.mp4?sig=abc");
  luma_reply_free(&rep);

  r = answer(200, "{\"id\":\"g1\",\"state\":\"failed\",\"failure_reason\":\"Content policy "
                  "violation\"}");
  luma_reply_read(&rep, LUMA_OP_GET, &r);
  assert_false(rep.r.ok);
  assert_false(rep.r.retryable);
  assert_true(rep.r.moderation);
  assert_string_equal(rep.r.code, "provider_moderation");
  assert_string_equal(rep.r.id, "g1");
  assert_string_equal(rep.r.state, "failed");
  assert_string_equal(rep.r.failure_reason, "Content policy violation");
  luma_reply_free(&rep);

  r = answer(200, "{\"id\":\"g1\",\"state\":\"failed\",\"failure_reason\":\"Internal error\"}");
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_generation_failed"}, "Internal error");
  r = answer(200, "{\"id\":\"g1\",\"state\":\"failed\"}");
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_generation_failed"}, "(no reason)");
  r = answer(200, "{\"id\":\"g1\",\"state\":\"paused\"}");
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_bad_response"}, "unknown state");
  r = answer(200, "{\"id\":\"g1\",\"state\":\"quel");
  expect_reply(LUMA_OP_GET, &r, (want){0, 1, 0, "provider_bad_response"}, "not a JSON object");
  r = answer(201, "{\"state\":\"queued\"}");
  expect_reply(LUMA_OP_CREATE_VIDEO, &r, (want){0, 1, 0, "provider_bad_response"}, "id");
}

static void moderation_words_are_recognized(void **state) {
  assert_true(luma_is_moderation("Prompt failed moderation"));
  assert_true(luma_is_moderation("CONTENT POLICY violation"));
  assert_true(luma_is_moderation("safety system"));
  assert_true(luma_is_moderation("image was flagged"));
  assert_false(luma_is_moderation("Internal server error"));
  assert_false(luma_is_moderation(""));
  assert_false(luma_is_moderation(NULL));
}

/* ---- luma_create_body ---- */

static void create_bodies_carry_the_documented_fields(void **state) {
  luma_create c = {.model = "ray-2",
                   .prompt = "a \"cup\" of coffee",
                   .aspect_ratio = "16:9",
                   .duration = "5s",
                   .resolution = "720p",
                   .keyframe_url = "https://x/frame.png",
                   .format = "png"};
  char *s = luma_create_body(&c, 1);
  assert_non_null(s);
  cJSON *j = cJSON_Parse(s);
  assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "ray-2");
  assert_string_equal(cJSON_GetObjectItem(j, "prompt")->valuestring, "a \"cup\" of coffee");
  assert_string_equal(cJSON_GetObjectItem(j, "aspect_ratio")->valuestring, "16:9");
  assert_string_equal(cJSON_GetObjectItem(j, "duration")->valuestring, "5s");
  assert_string_equal(cJSON_GetObjectItem(j, "resolution")->valuestring, "720p");
  assert_null(cJSON_GetObjectItem(j, "format"));
  const cJSON *f0 = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "keyframes"), "frame0");
  assert_string_equal(cJSON_GetObjectItem(f0, "type")->valuestring, "image");
  assert_string_equal(cJSON_GetObjectItem(f0, "url")->valuestring, "https://x/frame.png");
  cJSON_Delete(j);
  cJSON_free(s);

  c.keyframe_url = NULL;
  c.model = "photon-1";
  s = luma_create_body(&c, 0);
  j = cJSON_Parse(s);
  assert_string_equal(cJSON_GetObjectItem(j, "format")->valuestring, "png");
  assert_null(cJSON_GetObjectItem(j, "duration"));
  assert_null(cJSON_GetObjectItem(j, "resolution"));
  assert_null(cJSON_GetObjectItem(j, "keyframes"));
  assert_int_equal(cJSON_GetArraySize(j), 4); /* model, prompt, aspect_ratio, format */
  cJSON_Delete(j);
  cJSON_free(s);
}

static void create_bodies_refuse_unusable_input(void **state) {
  luma_create c = {.model = "ray-2", .prompt = "p"};
  char *s = luma_create_body(&c, 1);
  assert_non_null(s);
  assert_string_equal(s, "{\"model\":\"ray-2\",\"prompt\":\"p\"}");
  cJSON_free(s);
  c.model = "";
  assert_null(luma_create_body(&c, 1));
  c.model = NULL;
  assert_null(luma_create_body(&c, 1));
  c.model = "ray-2";
  c.prompt = NULL;
  assert_null(luma_create_body(&c, 1));
  c.prompt = "p";
  c.keyframe_url = "ftp://x/f.png";
  assert_null(luma_create_body(&c, 1));
  c.keyframe_url = "https://x/f.png";
  assert_null(luma_create_body(&c, 0)); /* images take no keyframe */
  assert_null(luma_create_body(NULL, 1));
}

static void create_bodies_carry_a_callback_url_when_given(void **state) {
  luma_create c = {.model = "ray-2",
                   .prompt = "p",
                   .callback_url = "https://genq.example.com/v1/callbacks/luma/t"};
  for (int video = 0; video <= 1; video++) {
    c.model = video ? "ray-2" : "photon-1";
    char *s = luma_create_body(&c, video);
    assert_non_null(s);
    cJSON *j = cJSON_Parse(s);
    assert_string_equal(cJSON_GetObjectItem(j, "callback_url")->valuestring,
                        "https://genq.example.com/v1/callbacks/luma/t");
    cJSON_Delete(j);
    cJSON_free(s);
  }
  c.callback_url = "javascript:alert(1)";
  assert_null(luma_create_body(&c, 0));
  c.callback_url = "https://x/a b";
  assert_null(luma_create_body(&c, 1));
}

/* ---- the client over loopback ---- */

typedef struct {
  loopback lb;
  luma_opts opts;
  char base[96];
  luma_result r;
  char id[160], state[32], code[64], message[512], asset_url[512], request_id[128];
} fixture;

static void on_result(const luma_result *r, void *arg) {
  fixture *f = arg;
  f->lb.calls++;
  f->r = *r; /* the strings are copied below; the pointers die with the callback */
  snprintf(f->id, sizeof f->id, "%s", r->id ? r->id : "");
  snprintf(f->state, sizeof f->state, "%s", r->state ? r->state : "");
  snprintf(f->code, sizeof f->code, "%s", r->code ? r->code : "");
  snprintf(f->message, sizeof f->message, "%s", r->message);
  snprintf(f->asset_url, sizeof f->asset_url, "%s", r->asset_url ? r->asset_url : "");
  snprintf(f->request_id, sizeof f->request_id, "%s", r->request_id ? r->request_id : "");
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f || loopback_open(&f->lb, NULL) != 0) {
    free(f);
    return -1;
  }
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d/luma/dream-machine/v1/", f->lb.port);
  f->opts = (luma_opts){.base_url = f->base, .api_key = "luma-secret-key-123", .timeout_ms = 10000};
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  loopback_close(&f->lb);
  free(f);
  return 0;
}

static void client_creates_a_video_with_bearer_auth_and_json(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){201, gen_queued, {"X-Request-Id: luma-req-7", NULL}};
  luma_create c = {.model = "ray-2",
                   .prompt = "a cup",
                   .aspect_ratio = "16:9",
                   .duration = "5s",
                   .keyframe_url = "http://127.0.0.1:1/k.png"};
  uint64_t xfer = 0;
  assert_int_equal(luma_create_video(f->lb.h, &f->opts, &c, on_result, f, &xfer), 0);
  assert_true(xfer != 0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.method, "POST");
  assert_string_equal(f->lb.path, "/luma/dream-machine/v1/generations/video");
  assert_string_equal(f->lb.auth, "Bearer luma-secret-key-123");
  assert_string_equal(f->lb.content_type, "application/json");
  cJSON *j = cJSON_Parse(f->lb.body);
  assert_string_equal(cJSON_GetObjectItem(j, "prompt")->valuestring, "a cup");
  assert_non_null(cJSON_GetObjectItem(j, "keyframes"));
  cJSON_Delete(j);
  assert_true(f->r.ok);
  assert_string_equal(f->id, "0b3a5e1c-4d2f-4a8e-9c1b-2f6d7e8a9b0c");
  assert_string_equal(f->state, "queued");
  assert_string_equal(f->request_id, "luma-req-7");
  assert_int_equal(f->r.status, 201);
}

static void client_creates_an_image(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){
      201, "{\"id\":\"img-1\",\"generation_type\":\"image\",\"state\":\"queued\"}", {NULL}};
  luma_create c = {.model = "photon-1", .prompt = "a logo", .format = "jpg"};
  assert_int_equal(luma_create_image(f->lb.h, &f->opts, &c, on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.path, "/luma/dream-machine/v1/generations/image");
  assert_true(f->r.ok);
  assert_string_equal(f->id, "img-1");
}

static void client_polls_and_deletes_by_id(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){200, gen_video_done, {NULL}};
  assert_int_equal(luma_get(f->lb.h, &f->opts, "gen-1", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.method, "GET");
  assert_string_equal(f->lb.path, "/luma/dream-machine/v1/generations/gen-1");
  assert_true(f->r.ok);
  assert_string_equal(f->asset_url, "https://cdn.example/v.mp4?sig=abc");

  f->lb.next = (loopback_answer){204, NULL, {NULL}};
  assert_int_equal(luma_delete(f->lb.h, &f->opts, "gen-1", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.method, "DELETE");
  assert_true(f->r.ok);
  assert_string_equal(f->id, "");
}

static void client_honours_retry_after_and_scrubs_the_key(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){
      429, "{\"detail\":\"slow down, luma-secret-key-123\"}", {"Retry-After: 7", NULL}};
  assert_int_equal(luma_get(f->lb.h, &f->opts, "gen-1", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_false(f->r.ok);
  assert_true(f->r.retryable);
  assert_string_equal(f->code, "provider_rate_limited");
  assert_int_equal(f->r.retry_after_ms, 7000);
  assert_null(strstr(f->message, "luma-secret-key-123"));
  assert_non_null(strstr(f->message, "[redacted]"));
}

static void client_refuses_unusable_calls(void **state) {
  fixture *f = *state;
  luma_create c = {.model = "ray-2", .prompt = "p"};
  assert_int_equal(luma_get(f->lb.h, &f->opts, "../credits", on_result, f, NULL), -1);
  assert_int_equal(luma_get(f->lb.h, &f->opts, "", on_result, f, NULL), -1);
  assert_int_equal(luma_delete(f->lb.h, &f->opts, NULL, on_result, f, NULL), -1);
  assert_int_equal(luma_get(f->lb.h, &f->opts, "a", NULL, f, NULL), -1);
  luma_opts bad = f->opts;
  bad.api_key = "k\r\nX-Evil: 1";
  assert_int_equal(luma_create_video(f->lb.h, &bad, &c, on_result, f, NULL), -1);
  bad = f->opts;
  bad.base_url = "///";
  assert_int_equal(luma_create_video(f->lb.h, &bad, &c, on_result, f, NULL), -1);
  assert_int_equal(httpc_in_flight(f->lb.h), 0);
  /* nothing reaches the server, and no callback runs, once the loop had time */
  loopback_run_for(&f->lb, 200);
  assert_int_equal(f->lb.requests, 0);
  assert_int_equal(f->lb.calls, 0);
}

static void client_without_a_key_sends_no_authorization(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){401, "{\"detail\":\"Invalid API key\"}", {NULL}};
  luma_opts o = f->opts;
  o.api_key = "";
  assert_int_equal(luma_get(f->lb.h, &o, "gen-1", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.auth, "");
  assert_string_equal(f->code, "provider_auth");
  assert_false(f->r.retryable);
}

static void client_reports_a_refused_connection(void **state) {
  fixture *f = *state;
  luma_opts o = f->opts;
  o.base_url = "http://127.0.0.1:1/v1"; /* nothing listens on port 1 */
  assert_int_equal(luma_get(f->lb.h, &o, "gen-1", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_false(f->r.ok);
  assert_true(f->r.retryable);
  assert_string_equal(f->code, "provider_network");
  assert_int_equal(f->r.status, 0);
}

static void client_cancel_reports_canceled(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){200, gen_queued, {NULL}};
  uint64_t xfer = 0;
  assert_int_equal(luma_get(f->lb.h, &f->opts, "gen-1", on_result, f, &xfer), 0);
  httpc_cancel(f->lb.h, xfer);
  assert_int_equal(f->lb.calls, 1);
  f->lb.calls = 0;
  assert_string_equal(f->code, "provider_canceled");
  assert_true(f->r.retryable);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(generation_queued_parses),
      cmocka_unit_test(create_bodies_carry_a_callback_url_when_given),
      cmocka_unit_test(generation_completed_video_and_image_name_their_asset),
      cmocka_unit_test(generation_failed_keeps_its_reason),
      cmocka_unit_test(generation_unknown_state_is_rejected),
      cmocka_unit_test(generation_wrong_types_are_rejected),
      cmocka_unit_test(generation_ids_and_urls_must_be_safe),
      cmocka_unit_test(generation_every_truncation_is_rejected),
      cmocka_unit_test(generation_trailing_garbage_is_rejected),
      cmocka_unit_test(generation_huge_and_deep_bodies_do_not_crash),
      cmocka_unit_test(transfer_failures_are_retryable),
      cmocka_unit_test(error_statuses_are_classified),
      cmocka_unit_test(delete_accepts_204_and_404),
      cmocka_unit_test(generation_states_map_to_results),
      cmocka_unit_test(moderation_words_are_recognized),
      cmocka_unit_test(create_bodies_carry_the_documented_fields),
      cmocka_unit_test(create_bodies_refuse_unusable_input),
      cmocka_unit_test_setup_teardown(client_creates_a_video_with_bearer_auth_and_json, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(client_creates_an_image, setup, teardown),
      cmocka_unit_test_setup_teardown(client_polls_and_deletes_by_id, setup, teardown),
      cmocka_unit_test_setup_teardown(client_honours_retry_after_and_scrubs_the_key, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(client_refuses_unusable_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(client_without_a_key_sends_no_authorization, setup, teardown),
      cmocka_unit_test_setup_teardown(client_reports_a_refused_connection, setup, teardown),
      cmocka_unit_test_setup_teardown(client_cancel_reports_canceled, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
