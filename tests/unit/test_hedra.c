/* worker/hedra.c: answer parsing, error classification, the submit body,
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

#include "hedra.h"
#include "unit/loopback.h"

/* ---- hedra_reply_read on 2xx bodies ---- */

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

/* Reads resp for op and checks the verdict; returns the reply for more
 * checks (free it with hedra_reply_free). */
static void read_expect(hedra_reply *rep, hedra_op op, const httpc_response *resp, want w,
                        const char *in_msg) {
  hedra_reply_read(rep, op, resp);
  assert_int_equal(rep->r.ok, w.ok);
  assert_int_equal(rep->r.retryable, w.retryable);
  assert_int_equal(rep->r.moderation, w.moderation);
  if (w.code)
    assert_string_equal(rep->r.code, w.code);
  else
    assert_null(rep->r.code);
  assert_non_null(rep->r.message);
  if (in_msg && !strstr(rep->r.message, in_msg))
    fail_msg("\"%s\" does not say \"%s\"", rep->r.message, in_msg);
  assert_int_equal(rep->r.status, resp->status);
}

static void expect(hedra_op op, const httpc_response *resp, want w, const char *in_msg) {
  hedra_reply rep;
  read_expect(&rep, op, resp, w, in_msg);
  hedra_reply_free(&rep);
}

static const want OK = {1, 0, 0, NULL};
static const want BAD = {0, 1, 0, "provider_bad_response"};

static void upload_answer_gives_the_file_url(void **state) {
  hedra_reply rep;
  httpc_response r = answer(201, "{\"url\":\"https://files.hedra.example/f/abc.png\","
                                 "\"content_type\":\"image/png\",\"expires_at\":\"2025-01-02\"}");
  read_expect(&rep, HEDRA_OP_UPLOAD, &r, OK, "ok");
  assert_string_equal(rep.r.url, "https://files.hedra.example/f/abc.png");
  assert_string_equal(rep.r.output_content_type, "image/png");
  assert_string_equal(rep.r.request_id, "req-1");
  hedra_reply_free(&rep);

  r = answer(201, "{\"content_type\":\"image/png\"}");
  expect(HEDRA_OP_UPLOAD, &r, BAD, "url");
  r = answer(201, "{\"url\":17}");
  expect(HEDRA_OP_UPLOAD, &r, BAD, "url");
  r = answer(201, "{\"url\":\"javascript:alert(1)\"}");
  expect(HEDRA_OP_UPLOAD, &r, BAD, "url");
}

static void submit_answer_gives_the_job_id(void **state) {
  hedra_reply rep;
  httpc_response r = answer(
      202, "{\"job_id\":\"job_8f2c\",\"model\":\"hedra-character-3\",\"status\":\"IN_QUEUE\","
           "\"status_url\":\"/v3/jobs/job_8f2c/status\",\"result_url\":\"/v3/jobs/job_8f2c\","
           "\"estimated_completion_at\":null}");
  read_expect(&rep, HEDRA_OP_SUBMIT, &r, OK, NULL);
  assert_string_equal(rep.r.job_id, "job_8f2c");
  assert_string_equal(rep.r.state, "IN_QUEUE");
  hedra_reply_free(&rep);

  r = answer(202, "{\"job_id\":\"j1\"}"); /* status is optional on submit */
  read_expect(&rep, HEDRA_OP_SUBMIT, &r, OK, NULL);
  assert_null(rep.r.state);
  hedra_reply_free(&rep);

  r = answer(202, "{\"status\":\"IN_QUEUE\"}");
  expect(HEDRA_OP_SUBMIT, &r, BAD, "missing job_id");
  r = answer(202, "{\"job_id\":\"../../files\"}");
  expect(HEDRA_OP_SUBMIT, &r, BAD, "job_id");
  r = answer(202, "{\"job_id\":42}");
  expect(HEDRA_OP_SUBMIT, &r, BAD, "job_id");
  r = answer(202, "{\"job_id\":\"j1\",\"status\":\"SLEEPING\"}");
  expect(HEDRA_OP_SUBMIT, &r, BAD, "unknown status");
}

static void status_answer_gives_state_and_clamped_progress(void **state) {
  hedra_reply rep;
  httpc_response r = answer(200, "{\"job_id\":\"j1\",\"status\":\"IN_PROGRESS\",\"progress\":0.42,"
                                 "\"estimated_completion_at\":\"2025-01-01T00:00:10Z\"}");
  read_expect(&rep, HEDRA_OP_STATUS, &r, OK, NULL);
  assert_string_equal(rep.r.state, "IN_PROGRESS");
  assert_true(rep.r.progress > 0.41 && rep.r.progress < 0.43);
  hedra_reply_free(&rep);

  const struct {
    const char *body;
    double lo, hi;
  } cases[] = {
      {"{\"status\":\"IN_PROGRESS\",\"progress\":7}", 1, 1},
      {"{\"status\":\"IN_PROGRESS\",\"progress\":-3}", 0, 0},
      {"{\"status\":\"IN_PROGRESS\",\"progress\":1e999}", -1, -1},
      {"{\"status\":\"IN_PROGRESS\",\"progress\":\"50%\"}", -1, -1},
      {"{\"status\":\"IN_PROGRESS\",\"progress\":null}", -1, -1},
      {"{\"status\":\"IN_QUEUE\"}", -1, -1},
      {"{\"status\":\"COMPLETED\",\"progress\":1}", 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    r = answer(200, cases[i].body);
    read_expect(&rep, HEDRA_OP_STATUS, &r, OK, NULL);
    assert_true(rep.r.progress >= cases[i].lo && rep.r.progress <= cases[i].hi);
    hedra_reply_free(&rep);
  }

  r = answer(200, "{\"job_id\":\"j1\",\"progress\":0.5}");
  expect(HEDRA_OP_STATUS, &r, BAD, "missing status");
  r = answer(200, "{\"job_id\":\"j1\",\"status\":\"in_progress\"}");
  expect(HEDRA_OP_STATUS, &r, BAD, "unknown status");
  r = answer(200, "{\"job_id\":\"j1\",\"status\":3}");
  expect(HEDRA_OP_STATUS, &r, BAD, "status");
}

static void failed_job_is_classified_by_its_error(void **state) {
  hedra_reply rep;
  httpc_response r = answer(
      200, "{\"job_id\":\"j1\",\"status\":\"FAILED\",\"error\":{\"code\":\"MODERATION_FAILED\","
           "\"message\":\"image rejected\",\"retryable\":true}}");
  read_expect(&rep, HEDRA_OP_STATUS, &r, (want){0, 0, 1, "provider_moderation"},
              "MODERATION_FAILED");
  assert_string_equal(rep.r.job_id, "j1");
  assert_string_equal(rep.r.state, "FAILED");
  hedra_reply_free(&rep);

  r = answer(200, "{\"job_id\":\"j1\",\"status\":\"FAILED\"}");
  expect(HEDRA_OP_STATUS, &r, (want){0, 1, 0, "provider_generation_failed"}, "(no reason)");
  r = answer(200, "{\"job_id\":\"j1\",\"status\":\"FAILED\",\"error\":{\"code\":\"INTERNAL\","
                  "\"message\":\"renderer crashed\",\"retryable\":false}}");
  expect(HEDRA_OP_STATUS, &r, (want){0, 0, 0, "provider_generation_failed"}, "renderer crashed");
  r = answer(200, "{\"job_id\":\"j1\",\"status\":\"FAILED\",\"error\":\"audio too short\"}");
  expect(HEDRA_OP_RESULT, &r, (want){0, 1, 0, "provider_generation_failed"}, "audio too short");
  /* the reason may be on the output only */
  r = answer(200,
             "{\"job_id\":\"j1\",\"status\":\"FAILED\",\"outputs\":[{\"status\":\"FAILED\","
             "\"error\":{\"code\":\"MODERATION_FAILED\",\"message\":\"no\"}}],\"error\":null}");
  expect(HEDRA_OP_RESULT, &r, (want){0, 0, 1, "provider_moderation"}, NULL);
}

static void result_answer_gives_the_first_output(void **state) {
  hedra_reply rep;
  httpc_response r = answer(
      200, "{\"job_id\":\"j1\",\"model\":\"hedra-character-3\",\"status\":\"COMPLETED\","
           "\"outputs\":[{\"status\":\"FAILED\",\"url\":null},{\"status\":\"COMPLETED\","
           "\"url\":\"https://cdn.hedra.example/o/1.mp4\",\"content_type\":\"video/mp4\","
           "\"duration_ms\":4000,\"error\":null},{\"url\":\"https://cdn.hedra.example/o/2.mp4\"}],"
           "\"error\":null}");
  read_expect(&rep, HEDRA_OP_RESULT, &r, OK, NULL);
  assert_string_equal(rep.r.state, "COMPLETED");
  assert_string_equal(rep.r.output_url, "https://cdn.hedra.example/o/1.mp4");
  assert_string_equal(rep.r.output_content_type, "video/mp4");
  hedra_reply_free(&rep);

  r = answer(200, "{\"job_id\":\"j1\",\"status\":\"IN_PROGRESS\",\"outputs\":[]}");
  read_expect(&rep, HEDRA_OP_RESULT, &r, OK, NULL);
  assert_null(rep.r.output_url);
  hedra_reply_free(&rep);

  r = answer(200, "{\"job_id\":\"j1\",\"status\":\"COMPLETED\",\"outputs\":[]}");
  expect(HEDRA_OP_RESULT, &r, BAD, "output URL");
  r = answer(200,
             "{\"job_id\":\"j1\",\"status\":\"COMPLETED\",\"outputs\":{\"url\":\"https://x/\"}}");
  expect(HEDRA_OP_RESULT, &r, BAD, "output URL");
  r = answer(200,
             "{\"job_id\":\"j1\",\"status\":\"COMPLETED\",\"outputs\":[{\"url\":\"ftp://x/a\"}]}");
  expect(HEDRA_OP_RESULT, &r, BAD, "output URL");
  r = answer(200, "{\"job_id\":\"j1\",\"status\":\"COMPLETED\"}");
  expect(HEDRA_OP_RESULT, &r, BAD, "output URL");
}

static void bad_bodies_are_retryable_bad_responses(void **state) {
  const char *bodies[] = {"",
                          "   ",
                          "null",
                          "[]",
                          "\"COMPLETED\"",
                          "{",
                          "{\"job_id\":\"j1\"",
                          "{\"status\":\"IN_QUEUE\"} trailing",
                          "<html>502</html>"};
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    httpc_response r = answer(200, bodies[i]);
    hedra_reply rep;
    read_expect(&rep, HEDRA_OP_STATUS, &r, BAD, NULL);
    /* a bad body says nothing: no half-read field survives */
    assert_null(rep.r.job_id);
    assert_null(rep.r.state);
    assert_true(rep.r.progress == -1);
    hedra_reply_free(&rep);
  }
}

static void every_truncation_is_rejected(void **state) {
  const char *good = "{\"job_id\":\"j1\",\"status\":\"COMPLETED\",\"outputs\":[{\"url\":"
                     "\"https://cdn.hedra.example/o/1.mp4\",\"content_type\":\"video/mp4\"}]}";
  size_t n = strlen(good);
  char *buf = malloc(n + 1);
  for (size_t k = 0; k < n; k++) {
    memcpy(buf, good, k);
    buf[k] = '\0';
    httpc_response r = {.status = 200, .body = buf, .body_len = k, .retry_after_ms = -1};
    hedra_reply rep;
    hedra_reply_read(&rep, HEDRA_OP_RESULT, &r);
    assert_false(rep.r.ok);
    assert_string_equal(rep.r.code, "provider_bad_response");
    assert_true(rep.r.retryable);
    hedra_reply_free(&rep);
  }
  free(buf);
}

static void huge_and_deep_bodies_do_not_crash(void **state) {
  size_t n = HEDRA_MAX_RESPONSE + 1;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  memcpy(big, "{\"job_id\":\"j1\",\"status\":\"IN_QUEUE\"}", 35);
  big[n] = '\0';
  httpc_response r = {.status = 200, .body = big, .body_len = n, .retry_after_ms = -1};
  expect(HEDRA_OP_STATUS, &r, BAD, NULL);
  for (size_t i = 0; i < n; i++)
    big[i] = '{';
  expect(HEDRA_OP_STATUS, &r, BAD, NULL);
  memset(big, '[', n);
  r.body_len = 100000;
  expect(HEDRA_OP_STATUS, &r, BAD, NULL);
  free(big);
  /* transfers cut at the cap by httpc */
  httpc_response t = {
      .curl_code = CURLE_WRITE_ERROR, .too_large = 1, .body = "", .retry_after_ms = -1};
  expect(HEDRA_OP_RESULT, &t, BAD, "larger");
}

/* ---- errors ---- */

static void transfer_failures_are_retryable(void **state) {
  httpc_response r = {.curl_code = CURLE_COULDNT_CONNECT,
                      .error = "Connection refused",
                      .body = "",
                      .retry_after_ms = -1};
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 1, 0, "provider_network"}, "Connection refused");
  r.curl_code = CURLE_OPERATION_TIMEDOUT;
  r.error = NULL;
  expect(HEDRA_OP_UPLOAD, &r, (want){0, 1, 0, "provider_timeout"}, "upload");
  r.curl_code = CURLE_ABORTED_BY_CALLBACK;
  r.error = "canceled";
  expect(HEDRA_OP_STATUS, &r, (want){0, 1, 0, "provider_canceled"}, "canceled");
}

static void error_bodies_are_classified(void **state) {
  hedra_reply rep;
  httpc_response r =
      answer(429, "{\"error\":{\"code\":\"RESOURCE_EXHAUSTED\",\"message\":\"Too many "
                  "requests\",\"retryable\":true,\"retry_after\":12}}");
  r.retry_after_ms = 3000; /* the header; the body's retry_after wins */
  read_expect(&rep, HEDRA_OP_SUBMIT, &r, (want){0, 1, 0, "provider_rate_limited"},
              "Hedra HTTP 429 RESOURCE_EXHAUSTED: Too many requests");
  assert_int_equal(rep.r.retry_after_ms, 12000);
  hedra_reply_free(&rep);

  r = answer(429, "{\"error\":{\"code\":\"RESOURCE_EXHAUSTED\",\"message\":\"slow\"}}");
  r.retry_after_ms = 3000;
  read_expect(&rep, HEDRA_OP_SUBMIT, &r, (want){0, 1, 0, "provider_rate_limited"}, NULL);
  assert_int_equal(rep.r.retry_after_ms, 3000);
  hedra_reply_free(&rep);

  r = answer(429, "{\"error\":{\"retry_after\":\"soon\"}}");
  read_expect(&rep, HEDRA_OP_SUBMIT, &r, (want){0, 1, 0, "provider_rate_limited"}, NULL);
  assert_int_equal(rep.r.retry_after_ms, -1);
  hedra_reply_free(&rep);

  r = answer(402, "{\"error\":{\"code\":\"INSUFFICIENT_BALANCE\",\"message\":\"Top up\","
                  "\"retryable\":true}}");
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 0, 0, "provider_insufficient_balance"}, "Top up");
  r = answer(400, "{\"error\":{\"code\":\"MODERATION_FAILED\",\"message\":\"rejected\","
                  "\"retryable\":true}}");
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 0, 1, "provider_moderation"}, "rejected");
  r = answer(400, "{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":\"bad resolution\"}}");
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 0, 0, "provider_invalid_request"}, "bad resolution");
  r = answer(422, "{\"error\":{\"message\":\"the image violates our content policy\"}}");
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 0, 1, "provider_moderation"}, NULL);
  r = answer(401, "{\"error\":{\"code\":\"UNAUTHORIZED\",\"message\":\"bad key\"}}");
  expect(HEDRA_OP_STATUS, &r, (want){0, 0, 0, "provider_auth"}, "bad key");
  r = answer(404, "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no such job\"}}");
  expect(HEDRA_OP_STATUS, &r, (want){0, 0, 0, "provider_not_found"}, NULL);
  r = answer(503, "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"later\"}}");
  expect(HEDRA_OP_STATUS, &r, (want){0, 1, 0, "provider_unavailable"}, NULL);
  r = answer(500, "<html>oops</html>");
  expect(HEDRA_OP_STATUS, &r, (want){0, 1, 0, "provider_unavailable"}, "(no error message)");
  /* "retryable" is trusted when it is a boolean, in both directions */
  r = answer(500, "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"x\",\"retryable\":false}}");
  expect(HEDRA_OP_STATUS, &r, (want){0, 0, 0, "provider_unavailable"}, NULL);
  r = answer(409, "{\"error\":{\"code\":\"ABORTED\",\"message\":\"busy\",\"retryable\":true}}");
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 1, 0, "provider_conflict"}, NULL);
  r = answer(500, "{\"error\":{\"code\":\"INTERNAL\",\"retryable\":\"no\"}}");
  expect(HEDRA_OP_STATUS, &r, (want){0, 1, 0, "provider_unavailable"}, NULL);
  /* a bare string error, wrong-typed fields, a 429 that mentions a policy */
  r = answer(400, "{\"error\":\"bad input\"}");
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 0, 0, "provider_invalid_request"}, "bad input");
  r = answer(400, "{\"error\":{\"code\":7,\"message\":[1]}}");
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 0, 0, "provider_invalid_request"}, "(no error message)");
  r = answer(429, "{\"error\":{\"message\":\"rate limit policy exceeded\"}}");
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 1, 0, "provider_rate_limited"}, NULL);
  r = answer(301, "");
  expect(HEDRA_OP_SUBMIT, &r, (want){0, 1, 0, "provider_bad_response"}, NULL);
}

/* ---- hedra_submit_body ---- */

static void submit_body_has_the_documented_shape(void **state) {
  hedra_submit_req q = {.prompt = "A person speaking",
                        .aspect_ratio = "9:16",
                        .resolution = "720p",
                        .image_url = "https://f/i.png",
                        .audio_url = "https://f/a.mp3",
                        .idempotency_key = "job-1:lipsync"};
  char *s = hedra_submit_body(&q);
  assert_non_null(s);
  cJSON *j = cJSON_Parse(s);
  const cJSON *in = cJSON_GetObjectItem(j, "input");
  assert_string_equal(cJSON_GetObjectItem(in, "prompt")->valuestring, "A person speaking");
  assert_string_equal(cJSON_GetObjectItem(in, "aspect_ratio")->valuestring, "9:16");
  assert_string_equal(cJSON_GetObjectItem(in, "resolution")->valuestring, "720p");
  const cJSON *img = cJSON_GetObjectItem(in, "start_image");
  assert_string_equal(cJSON_GetObjectItem(img, "source")->valuestring, "url");
  assert_string_equal(cJSON_GetObjectItem(img, "url")->valuestring, "https://f/i.png");
  const cJSON *au = cJSON_GetObjectItem(in, "audio");
  assert_string_equal(cJSON_GetObjectItem(au, "source")->valuestring, "url");
  assert_string_equal(cJSON_GetObjectItem(au, "url")->valuestring, "https://f/a.mp3");
  assert_string_equal(cJSON_GetObjectItem(j, "idempotency_key")->valuestring, "job-1:lipsync");
  assert_int_equal(cJSON_GetArraySize(j), 2);
  cJSON_Delete(j);
  cJSON_free(s);

  q.prompt = q.aspect_ratio = q.resolution = NULL;
  s = hedra_submit_body(&q);
  j = cJSON_Parse(s);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "input")), 2);
  cJSON_Delete(j);
  cJSON_free(s);
}

static void submit_body_refuses_unusable_input(void **state) {
  hedra_submit_req good = {
      .image_url = "https://f/i.png", .audio_url = "https://f/a.mp3", .idempotency_key = "k"};
  hedra_submit_req q = good;
  q.image_url = NULL;
  assert_null(hedra_submit_body(&q));
  q = good;
  q.audio_url = "file:///etc/passwd";
  assert_null(hedra_submit_body(&q));
  q = good;
  q.idempotency_key = NULL;
  assert_null(hedra_submit_body(&q));
  q.idempotency_key = "";
  assert_null(hedra_submit_body(&q));
  q.idempotency_key = "a\nb";
  assert_null(hedra_submit_body(&q));
  char key[HEDRA_MAX_IDEMPOTENCY_KEY + 2];
  memset(key, 'k', sizeof key - 1);
  key[sizeof key - 1] = '\0';
  q.idempotency_key = key;
  assert_null(hedra_submit_body(&q));
  key[HEDRA_MAX_IDEMPOTENCY_KEY] = '\0';
  char *s = hedra_submit_body(&q);
  assert_non_null(s);
  cJSON_free(s);
  assert_null(hedra_submit_body(NULL));
}

/* ---- the client over loopback ---- */

typedef struct {
  loopback lb;
  hedra_opts opts;
  char base[96];
  hedra_result r;
  char url[512], job_id[160], state[32], code[64], message[512], output_url[512], request_id[128];
} fixture;

static void on_result(const hedra_result *r, void *arg) {
  fixture *f = arg;
  f->lb.calls++;
  f->r = *r; /* the strings are copied below; the pointers die with the callback */
  snprintf(f->url, sizeof f->url, "%s", r->url ? r->url : "");
  snprintf(f->job_id, sizeof f->job_id, "%s", r->job_id ? r->job_id : "");
  snprintf(f->state, sizeof f->state, "%s", r->state ? r->state : "");
  snprintf(f->code, sizeof f->code, "%s", r->code ? r->code : "");
  snprintf(f->message, sizeof f->message, "%s", r->message);
  snprintf(f->output_url, sizeof f->output_url, "%s", r->output_url ? r->output_url : "");
  snprintf(f->request_id, sizeof f->request_id, "%s", r->request_id ? r->request_id : "");
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  http_limits lim = {.max_body_bytes = 16u << 20};
  if (!f || loopback_open(&f->lb, &lim) != 0) {
    free(f);
    return -1;
  }
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d/hedra/v3", f->lb.port);
  f->opts = (hedra_opts){.base_url = f->base, .api_key = "kid:hedra-secret-9", .timeout_ms = 10000};
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  loopback_close(&f->lb);
  free(f);
  return 0;
}

static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m) {
  for (size_t i = 0; m <= n && i <= n - m; i++)
    if (!memcmp(hay + i, needle, m)) return hay + i;
  return NULL;
}

static void client_uploads_one_multipart_file_part(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){
      201,
      "{\"url\":\"http://127.0.0.1:1/files/f1.png\",\"content_type\":\"image/png\","
      "\"expires_at\":\"2025-01-02T00:00:00Z\"}",
      {"X-Request-Id: hedra-req-3", NULL}};
  char data[5000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (char)(i * 31 + 7); /* binary, with NULs and CRLFs */
  assert_int_equal(hedra_upload(f->lb.h, &f->opts, data, sizeof data, "image/png", "image.png",
                                on_result, f, NULL),
                   0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.method, "POST");
  assert_string_equal(f->lb.path, "/hedra/v3/files");
  assert_string_equal(f->lb.auth, "Key kid:hedra-secret-9");
  assert_int_equal(strncmp(f->lb.content_type, "multipart/form-data; boundary=", 30), 0);
  const char *disp = "Content-Disposition: form-data; name=\"file\"; filename=\"image.png\"";
  assert_non_null(find_bytes(f->lb.body, f->lb.body_len, disp, strlen(disp)));
  assert_non_null(find_bytes(f->lb.body, f->lb.body_len, "Content-Type: image/png", 23));
  assert_non_null(find_bytes(f->lb.body, f->lb.body_len, data, sizeof data));
  assert_true(f->r.ok);
  assert_string_equal(f->url, "http://127.0.0.1:1/files/f1.png");
  assert_string_equal(f->request_id, "hedra-req-3");
}

static void client_submits_polls_and_reads_the_result(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){202, "{\"job_id\":\"job-77\",\"status\":\"IN_QUEUE\"}", {NULL}};
  hedra_submit_req q = {.prompt = "hello",
                        .image_url = "http://127.0.0.1:1/files/f1.png",
                        .audio_url = "http://127.0.0.1:1/files/f2.mp3",
                        .idempotency_key = "job-1:lipsync"};
  assert_int_equal(hedra_submit(f->lb.h, &f->opts, &q, on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.path, "/hedra/v3/models/hedra-character-3");
  assert_string_equal(f->lb.content_type, "application/json");
  cJSON *j = cJSON_Parse(f->lb.body);
  assert_string_equal(cJSON_GetObjectItem(j, "idempotency_key")->valuestring, "job-1:lipsync");
  cJSON_Delete(j);
  assert_true(f->r.ok);
  assert_string_equal(f->job_id, "job-77");

  f->lb.next = (loopback_answer){
      200, "{\"job_id\":\"job-77\",\"status\":\"IN_PROGRESS\",\"progress\":0.5}", {NULL}};
  assert_int_equal(hedra_status(f->lb.h, &f->opts, "job-77", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.method, "GET");
  assert_string_equal(f->lb.path, "/hedra/v3/jobs/job-77/status");
  assert_string_equal(f->state, "IN_PROGRESS");
  assert_true(f->r.progress == 0.5);

  f->lb.next =
      (loopback_answer){200,
                        "{\"job_id\":\"job-77\",\"status\":\"COMPLETED\",\"outputs\":[{\"url\":"
                        "\"http://127.0.0.1:1/o.mp4\",\"content_type\":\"video/mp4\"}]}",
                        {NULL}};
  assert_int_equal(hedra_get_result(f->lb.h, &f->opts, "job-77", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.path, "/hedra/v3/jobs/job-77");
  assert_true(f->r.ok);
  assert_string_equal(f->output_url, "http://127.0.0.1:1/o.mp4");
}

static void client_honours_rate_limits_and_scrubs_the_key(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){429,
                                 "{\"error\":{\"code\":\"RESOURCE_EXHAUSTED\",\"message\":\"key "
                                 "kid:hedra-secret-9 is over its limit\",\"retryable\":true}}",
                                 {"Retry-After: 4", NULL}};
  assert_int_equal(hedra_status(f->lb.h, &f->opts, "job-77", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_false(f->r.ok);
  assert_true(f->r.retryable);
  assert_string_equal(f->code, "provider_rate_limited");
  assert_int_equal(f->r.retry_after_ms, 4000);
  assert_null(strstr(f->message, "hedra-secret-9"));
  assert_non_null(strstr(f->message, "[redacted]"));
}

static void client_refuses_unusable_calls(void **state) {
  fixture *f = *state;
  char big[64];
  memset(big, 0, sizeof big);
  assert_int_equal(hedra_status(f->lb.h, &f->opts, "../files", on_result, f, NULL), -1);
  assert_int_equal(hedra_get_result(f->lb.h, &f->opts, "", on_result, f, NULL), -1);
  assert_int_equal(hedra_status(f->lb.h, &f->opts, NULL, on_result, f, NULL), -1);
  assert_int_equal(
      hedra_upload(f->lb.h, &f->opts, big, 0, "image/png", "a.png", on_result, f, NULL), -1);
  assert_int_equal(
      hedra_upload(f->lb.h, &f->opts, big, sizeof big, "text/html", "a.png", on_result, f, NULL),
      -1);
  assert_int_equal(hedra_upload(f->lb.h, &f->opts, big, sizeof big, "image/png\r\nX: y", "a",
                                on_result, f, NULL),
                   -1);
  assert_int_equal(
      hedra_upload(f->lb.h, &f->opts, big, sizeof big, "image/png", "a\".png", on_result, f, NULL),
      -1);
  assert_int_equal(
      hedra_upload(f->lb.h, &f->opts, big, sizeof big, "image/png", "../a.png", on_result, f, NULL),
      -1);
  /* an image over Hedra's 10 MiB limit (the length is checked before the bytes are read) */
  assert_int_equal(hedra_upload(f->lb.h, &f->opts, big, HEDRA_MAX_IMAGE_UPLOAD + 1, "image/png",
                                "a.png", on_result, f, NULL),
                   -1);
  assert_int_equal(hedra_upload(f->lb.h, &f->opts, big, HEDRA_MAX_UPLOAD + 1, "audio/mpeg", "a.mp3",
                                on_result, f, NULL),
                   -1);
  hedra_opts bad = f->opts;
  bad.api_key = "k\r\nX-Evil: 1";
  assert_int_equal(hedra_status(f->lb.h, &bad, "job-1", on_result, f, NULL), -1);
  hedra_submit_req q = {.image_url = "https://f/i.png", .audio_url = "https://f/a.mp3"};
  assert_int_equal(hedra_submit(f->lb.h, &f->opts, &q, on_result, f, NULL), -1);
  assert_int_equal(httpc_in_flight(f->lb.h), 0);
  /* nothing reaches the server, and no callback runs, once the loop had time */
  loopback_run_for(&f->lb, 200);
  assert_int_equal(f->lb.requests, 0);
  assert_int_equal(f->lb.calls, 0);
}

static void client_without_a_key_sends_no_authorization(void **state) {
  fixture *f = *state;
  f->lb.next = (loopback_answer){
      401, "{\"error\":{\"code\":\"UNAUTHORIZED\",\"message\":\"missing key\"}}", {NULL}};
  hedra_opts o = f->opts;
  o.api_key = "";
  assert_int_equal(hedra_status(f->lb.h, &o, "job-1", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_string_equal(f->lb.auth, "");
  assert_string_equal(f->code, "provider_auth");
  assert_false(f->r.retryable);
}

static void client_reports_a_refused_connection(void **state) {
  fixture *f = *state;
  hedra_opts o = f->opts;
  o.base_url = "http://127.0.0.1:1/v3"; /* nothing listens on port 1 */
  assert_int_equal(hedra_status(f->lb.h, &o, "job-1", on_result, f, NULL), 0);
  loopback_run_until_called(&f->lb);
  assert_false(f->r.ok);
  assert_true(f->r.retryable);
  assert_string_equal(f->code, "provider_network");
  assert_int_equal(f->r.status, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(upload_answer_gives_the_file_url),
      cmocka_unit_test(submit_answer_gives_the_job_id),
      cmocka_unit_test(status_answer_gives_state_and_clamped_progress),
      cmocka_unit_test(failed_job_is_classified_by_its_error),
      cmocka_unit_test(result_answer_gives_the_first_output),
      cmocka_unit_test(bad_bodies_are_retryable_bad_responses),
      cmocka_unit_test(every_truncation_is_rejected),
      cmocka_unit_test(huge_and_deep_bodies_do_not_crash),
      cmocka_unit_test(transfer_failures_are_retryable),
      cmocka_unit_test(error_bodies_are_classified),
      cmocka_unit_test(submit_body_has_the_documented_shape),
      cmocka_unit_test(submit_body_refuses_unusable_input),
      cmocka_unit_test_setup_teardown(client_uploads_one_multipart_file_part, setup, teardown),
      cmocka_unit_test_setup_teardown(client_submits_polls_and_reads_the_result, setup, teardown),
      cmocka_unit_test_setup_teardown(client_honours_rate_limits_and_scrubs_the_key, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(client_refuses_unusable_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(client_without_a_key_sends_no_authorization, setup, teardown),
      cmocka_unit_test_setup_teardown(client_reports_a_refused_connection, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
