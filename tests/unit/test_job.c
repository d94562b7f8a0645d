/* job.c: kinds, statuses and their moves, and validation of POST /v1/jobs
 * bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"

#define ID1 "0b7e5c3a-1f2d-4e6a-9b8c-7d6e5f4a3b2c"
#define ID2 "9A8B7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D"

typedef struct {
  int rc;
  char field[128];
  char msg[256];
  job_submission sub;
} parsed;

static parsed parse(const char *body) {
  parsed p;
  memset(&p, 0, sizeof p);
  p.rc = job_submission_parse(body, strlen(body), &p.sub, p.field, sizeof p.field, p.msg,
                              sizeof p.msg);
  return p;
}

/* Expects a rejection naming field; returns nothing, frees nothing (a failed
 * parse owns nothing). */
static void expect_error(const char *body, const char *field, const char *msg) {
  parsed p = parse(body);
  if (p.rc == 0) {
    job_submission_free(&p.sub);
    fail_msg("accepted %s", body);
  }
  assert_string_equal(p.field, field);
  if (msg) assert_string_equal(p.msg, msg);
  /* a body that is not a JSON object says so by its code, not its message */
  int not_json = msg && (strcmp(msg, "body is not valid JSON") == 0 ||
                         strcmp(msg, "body must be a JSON object") == 0);
  assert_int_equal(p.rc, not_json ? JOB_ERR_JSON : JOB_ERR_FIELD);
  assert_null(p.sub.input);
  assert_null(p.sub.webhook_url);
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(it) ? it->valuestring : NULL;
}

static int num(const cJSON *o, const char *k) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
  assert_true(cJSON_IsNumber(it));
  return (int)it->valuedouble;
}

static int nkeys(const cJSON *o) {
  return cJSON_GetArraySize(o);
}

static void storyboard_error(const char *input, const char *field, const char *msg) {
  char body[16384];
  snprintf(body, sizeof body, "{\"kind\":\"storyboard\",\"input\":%s}", input);
  expect_error(body, field, msg);
}

/* ---- names and moves ---- */

static void test_kind_names_round_trip(void **state) {
  for (int k = 0; k < JOB_KIND_COUNT; k++) {
    job_kind out;
    assert_int_equal(job_kind_parse(job_kind_name((job_kind)k), &out), 0);
    assert_int_equal(out, k);
  }
  job_kind out;
  assert_string_equal(job_kind_name(JOB_LIPSYNC), "lipsync");
  assert_int_equal(job_kind_parse("Storyboard", &out), -1);
  assert_int_equal(job_kind_parse("", &out), -1);
  assert_int_equal(job_kind_parse(NULL, &out), -1);
}

static void test_status_names_round_trip_and_terminal(void **state) {
  const char *names[] = {"queued", "running", "succeeded", "failed", "canceled"};
  for (int s = 0; s < JOB_STATUS_COUNT; s++) {
    job_status out;
    assert_string_equal(job_status_name((job_status)s), names[s]);
    assert_int_equal(job_status_parse(names[s], &out), 0);
    assert_int_equal(out, s);
  }
  job_status out;
  assert_int_equal(job_status_parse("cancelled", &out), -1);
  assert_false(job_status_terminal(JOB_QUEUED));
  assert_false(job_status_terminal(JOB_RUNNING));
  assert_true(job_status_terminal(JOB_SUCCEEDED));
  assert_true(job_status_terminal(JOB_FAILED));
  assert_true(job_status_terminal(JOB_CANCELED));
}

/* ---- body ---- */

static void test_body_that_is_not_json_is_rejected(void **state) {
  expect_error("", "", "body is not valid JSON");
  expect_error("{", "", "body is not valid JSON");
  expect_error("{\"kind\":\"image\",}", "", "body is not valid JSON");
  expect_error("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"}} trailing", "",
               "body is not valid JSON");
}

static void test_body_that_is_not_an_object_is_rejected(void **state) {
  expect_error("[]", "", "body must be a JSON object");
  expect_error("\"storyboard\"", "", "body must be a JSON object");
  expect_error("null", "", "body must be a JSON object");
  expect_error("42", "", "body must be a JSON object");
}

static void test_body_length_is_respected_without_terminator(void **state) {
  const char *body = "{\"kind\":\"image\",\"input\":{\"prompt\":\"a cat\"}}GARBAGE";
  job_submission s;
  char field[64], msg[128];
  size_t len = strlen(body) - strlen("GARBAGE");
  assert_int_equal(job_submission_parse(body, len, &s, field, sizeof field, msg, sizeof msg), 0);
  assert_int_equal(s.kind, JOB_IMAGE);
  job_submission_free(&s);
}

static void test_missing_kind_and_input_are_named(void **state) {
  expect_error("{\"input\":{\"prompt\":\"x\"}}", "kind", "kind is required");
  expect_error("{\"kind\":\"storyboard\"}", "input", "input is required");
}

static void test_unknown_kind_is_rejected(void **state) {
  expect_error("{\"kind\":\"podcast\",\"input\":{}}", "kind", NULL);
  expect_error("{\"kind\":7,\"input\":{}}", "kind", NULL);
  expect_error("{\"kind\":\"STORYBOARD\",\"input\":{\"prompt\":\"x\"}}", "kind", NULL);
}

static void test_input_must_be_an_object(void **state) {
  expect_error("{\"kind\":\"storyboard\",\"input\":\"a cat\"}", "input",
               "input must be a JSON object");
  expect_error("{\"kind\":\"storyboard\",\"input\":[]}", "input", NULL);
  expect_error("{\"kind\":\"storyboard\",\"input\":null}", "input", NULL);
}

static void test_unknown_top_level_field_is_named(void **state) {
  expect_error("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"},\"priority\":1}", "priority",
               NULL);
  expect_error("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"},\"user_id\":\"u\"}", "user_id",
               NULL);
}

static void test_duplicate_keys_are_rejected(void **state) {
  expect_error("{\"kind\":\"image\",\"kind\":\"video\",\"input\":{\"prompt\":\"x\"}}", "kind",
               NULL);
  storyboard_error("{\"prompt\":\"x\",\"prompt\":\"y\"}", "input.prompt", NULL);
}

/* ---- bodies with many keys ---- */

#define MAX_BODY (1 << 20) /* GENQ_MAX_BODY_BYTES, the API's default body limit */

static char *big; /* freed by free_big, also when an assertion fails */

static int free_big(void **state) {
  free(big);
  big = NULL;
  return 0;
}

/* head, then members (member_fmt with the member's number) separated by
 * commas for as long as the body stays within MAX_BODY, then tail. */
static char *many_keys_body(const char *head, const char *member_fmt, const char *tail,
                            int *members) {
  char *body = big = malloc(MAX_BODY + 1);
  assert_non_null(body);
  size_t len = (size_t)snprintf(body, MAX_BODY + 1, "%s", head), tlen = strlen(tail);
  int n = 0;
  for (;;) {
    char m[64];
    size_t mlen = (size_t)snprintf(m, sizeof m, member_fmt, n);
    if (len + (n > 0) + mlen + tlen > MAX_BODY) break;
    if (n++ > 0) body[len++] = ',';
    memcpy(body + len, m, mlen);
    len += mlen;
  }
  memcpy(body + len, tail, tlen + 1);
  *members = n;
  return body;
}

static double cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A refusal costs one parse and one pass over the keys: milliseconds of CPU
 * even with sanitizers. Comparing every key with every other costs
 * ~4.5e9 string comparisons for the ~95,000 keys a 1 MiB body holds, which
 * is tens of seconds of CPU. The 1 s bound tells the two apart by the work
 * done (process CPU time, so a busy machine does not count); it is no speed
 * target. */
static void expect_error_quickly(const char *body, const char *field, const char *msg) {
  double t0 = cpu_seconds();
  expect_error(body, field, msg);
  double spent = cpu_seconds() - t0;
  if (spent > 1.0) fail_msg("refusing a %zu-byte body took %.1f s of CPU", strlen(body), spent);
}

static void test_many_unknown_input_keys_are_refused_in_linear_time(void **state) {
  int n;
  char *body = many_keys_body("{\"kind\":\"image\",\"input\":{", "\"k%05d\":0", "}}", &n);
  assert_true(n > 90000);
  expect_error_quickly(body, "input.k00000", "input.k00000 is not a known field for kind image");
}

static void test_one_input_key_repeated_is_refused_in_linear_time(void **state) {
  int n;
  char *body = many_keys_body("{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"x\",",
                              "\"scenes\":1", "}}", &n);
  assert_true(n > 90000);
  expect_error_quickly(body, "input.scenes", "input.scenes appears more than once");
}

static void test_many_root_keys_are_refused_in_linear_time(void **state) {
  int n;
  char *body =
      many_keys_body("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"},", "\"r%05d\":0", "}", &n);
  assert_true(n > 90000);
  expect_error_quickly(body, "r00000", "r00000 is not a known field");
}

/* The first offending key in document order is the one named. */
static void test_first_offending_key_is_named(void **state) {
  storyboard_error("{\"prompt\":\"x\",\"model\":1,\"prompt\":\"y\"}", "input.model",
                   "input.model is not a known field for kind storyboard");
  storyboard_error("{\"prompt\":\"x\",\"prompt\":\"y\",\"model\":1}", "input.prompt",
                   "input.prompt appears more than once");
  expect_error("{\"kind\":\"image\",\"x\":1,\"kind\":\"image\",\"input\":{\"prompt\":\"x\"}}", "x",
               "x is not a known field");
  expect_error("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"},\"input\":{},\"x\":1}", "input",
               "input appears more than once");
  /* every known key once passes */
  parsed p = parse("{\"webhook_url\":\"https://h\",\"input\":{\"aspect_ratio\":\"1:1\","
                   "\"prompt\":\"x\"},\"kind\":\"image\"}");
  assert_int_equal(p.rc, 0);
  job_submission_free(&p.sub);
}

/* ---- webhook_url ---- */

static void test_webhook_url_accepted_and_copied(void **state) {
  parsed p = parse("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"},"
                   "\"webhook_url\":\"https://example.com/hooks/genq?x=1\"}");
  assert_int_equal(p.rc, 0);
  assert_string_equal(p.sub.webhook_url, "https://example.com/hooks/genq?x=1");
  job_submission_free(&p.sub);
  p = parse("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"},\"webhook_url\":\"http://h:8080\"}");
  assert_int_equal(p.rc, 0);
  assert_string_equal(p.sub.webhook_url, "http://h:8080");
  job_submission_free(&p.sub);
  p = parse("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"}}");
  assert_int_equal(p.rc, 0);
  assert_null(p.sub.webhook_url);
  job_submission_free(&p.sub);
}

static void test_webhook_url_validation(void **state) {
  const char *bad[] = {"\"ftp://example.com\"",
                       "\"example.com/hook\"",
                       "\"https://\"",
                       "\"https:///path\"",
                       "\"https://exa mple.com\"",
                       "\"https://a\\tb\"",
                       "\"javascript:alert(1)\"",
                       "42",
                       "null",
                       "\"\""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char body[256];
    snprintf(body, sizeof body,
             "{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"},\"webhook_url\":%s}", bad[i]);
    expect_error(body, "webhook_url", NULL);
  }
  /* length bound: exactly the maximum passes, one more fails */
  char body[JOB_WEBHOOK_URL_MAX + 128];
  char url[JOB_WEBHOOK_URL_MAX + 2];
  memset(url, 'a', sizeof url);
  memcpy(url, "https://", 8);
  url[JOB_WEBHOOK_URL_MAX] = '\0';
  snprintf(body, sizeof body,
           "{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"},\"webhook_url\":\"%s\"}", url);
  parsed p = parse(body);
  assert_int_equal(p.rc, 0);
  job_submission_free(&p.sub);
  url[JOB_WEBHOOK_URL_MAX] = 'a';
  url[JOB_WEBHOOK_URL_MAX + 1] = '\0';
  snprintf(body, sizeof body,
           "{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"},\"webhook_url\":\"%s\"}", url);
  expect_error(body, "webhook_url", "webhook_url must be at most 2048 bytes");
}

/* ---- storyboard ---- */

static void test_storyboard_minimal_gets_defaults(void **state) {
  parsed p = parse("{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"A lighthouse at dusk\"}}");
  assert_int_equal(p.rc, 0);
  assert_int_equal(p.sub.kind, JOB_STORYBOARD);
  assert_string_equal(str(p.sub.input, "prompt"), "A lighthouse at dusk");
  assert_int_equal(num(p.sub.input, "scenes"), JOB_SCENES_DEFAULT);
  assert_string_equal(str(p.sub.input, "aspect_ratio"), "16:9");
  assert_null(cJSON_GetObjectItem(p.sub.input, "style"));
  assert_int_equal(nkeys(p.sub.input), 3);
  job_submission_free(&p.sub);
}

static void test_storyboard_full_input_is_kept(void **state) {
  parsed p = parse("{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"  two lines\\nof text\\t \","
                   "\"scenes\":12,\"style\":\"noir\",\"aspect_ratio\":\"9:21\"}}");
  assert_int_equal(p.rc, 0);
  assert_string_equal(str(p.sub.input, "prompt"), "two lines\nof text");
  assert_int_equal(num(p.sub.input, "scenes"), 12);
  assert_string_equal(str(p.sub.input, "style"), "noir");
  assert_string_equal(str(p.sub.input, "aspect_ratio"), "9:21");
  assert_int_equal(nkeys(p.sub.input), 4);
  job_submission_free(&p.sub);
}

static void test_storyboard_prompt_required_and_non_blank(void **state) {
  storyboard_error("{}", "input.prompt", "input.prompt is required");
  storyboard_error("{\"prompt\":\"\"}", "input.prompt", "input.prompt must not be empty");
  storyboard_error("{\"prompt\":\" \\n\\t \"}", "input.prompt", "input.prompt must not be empty");
  storyboard_error("{\"prompt\":42}", "input.prompt", "input.prompt must be a string");
  storyboard_error("{\"prompt\":null}", "input.prompt", NULL);
  storyboard_error("{\"prompt\":[\"x\"]}", "input.prompt", NULL);
}

static void test_storyboard_prompt_length_bound(void **state) {
  char *body = malloc(JOB_PROMPT_MAX + 128);
  char *prompt = malloc(JOB_PROMPT_MAX + 2);
  memset(prompt, 'p', JOB_PROMPT_MAX + 1);
  prompt[JOB_PROMPT_MAX] = '\0';
  sprintf(body, "{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"%s\"}}", prompt);
  parsed p = parse(body);
  assert_int_equal(p.rc, 0);
  assert_int_equal(strlen(str(p.sub.input, "prompt")), JOB_PROMPT_MAX);
  job_submission_free(&p.sub);
  prompt[JOB_PROMPT_MAX] = 'p';
  prompt[JOB_PROMPT_MAX + 1] = '\0';
  sprintf(body, "{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"%s\"}}", prompt);
  expect_error(body, "input.prompt", "input.prompt must be at most 4000 bytes");
  free(body);
  free(prompt);
}

static void test_storyboard_prompt_control_characters_and_utf8(void **state) {
  storyboard_error("{\"prompt\":\"bell\\u0007\"}", "input.prompt", NULL);
  storyboard_error("{\"prompt\":\"esc\\u001b[31m\"}", "input.prompt", NULL);
  storyboard_error("{\"prompt\":\"del\\u007f\"}", "input.prompt", NULL);
  storyboard_error("{\"prompt\":\"bad \xff utf8\"}", "input.prompt", NULL);
  storyboard_error("{\"prompt\":\"overlong \xc0\xaf\"}", "input.prompt", NULL);
  parsed p = parse(
      "{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"caf\xc3\xa9 \\u00e9 \xf0\x9f\x8e\xac\"}}");
  assert_int_equal(p.rc, 0);
  job_submission_free(&p.sub);
}

static void test_storyboard_scenes_bounds_and_types(void **state) {
  const char *bad[] = {"0", "13", "-1", "2.5", "\"3\"", "true", "null", "[]", "1e9", "-1e300"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char in[128];
    snprintf(in, sizeof in, "{\"prompt\":\"x\",\"scenes\":%s}", bad[i]);
    storyboard_error(in, "input.scenes", "input.scenes must be an integer between 1 and 12");
  }
  const char *good[] = {"1", "12", "3.0"};
  const int want[] = {1, 12, 3};
  for (size_t i = 0; i < 3; i++) {
    char body[128];
    snprintf(body, sizeof body,
             "{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"x\",\"scenes\":%s}}", good[i]);
    parsed p = parse(body);
    assert_int_equal(p.rc, 0);
    assert_int_equal(num(p.sub.input, "scenes"), want[i]);
    job_submission_free(&p.sub);
  }
}

static void test_storyboard_aspect_ratio_values(void **state) {
  const char *good[] = {"16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"};
  for (size_t i = 0; i < 7; i++) {
    char body[128];
    snprintf(body, sizeof body,
             "{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"x\",\"aspect_ratio\":\"%s\"}}",
             good[i]);
    parsed p = parse(body);
    assert_int_equal(p.rc, 0);
    assert_string_equal(str(p.sub.input, "aspect_ratio"), good[i]);
    job_submission_free(&p.sub);
  }
  storyboard_error("{\"prompt\":\"x\",\"aspect_ratio\":\"16/9\"}", "input.aspect_ratio", NULL);
  storyboard_error("{\"prompt\":\"x\",\"aspect_ratio\":\"2:1\"}", "input.aspect_ratio", NULL);
  storyboard_error("{\"prompt\":\"x\",\"aspect_ratio\":\"\"}", "input.aspect_ratio", NULL);
  storyboard_error("{\"prompt\":\"x\",\"aspect_ratio\":1.77}", "input.aspect_ratio", NULL);
}

static void test_storyboard_style_bounds_and_type(void **state) {
  char style[JOB_STYLE_MAX + 2];
  char in[512];
  memset(style, 's', sizeof style);
  style[JOB_STYLE_MAX] = '\0';
  snprintf(in, sizeof in, "{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"x\",\"style\":\"%s\"}}",
           style);
  parsed p = parse(in);
  assert_int_equal(p.rc, 0);
  assert_int_equal(strlen(str(p.sub.input, "style")), JOB_STYLE_MAX);
  job_submission_free(&p.sub);
  style[JOB_STYLE_MAX] = 's';
  style[JOB_STYLE_MAX + 1] = '\0';
  snprintf(in, sizeof in, "{\"prompt\":\"x\",\"style\":\"%s\"}", style);
  storyboard_error(in, "input.style", "input.style must be at most 200 bytes");
  storyboard_error("{\"prompt\":\"x\",\"style\":7}", "input.style", "input.style must be a string");
  /* cJSON would cut the string at \u0000: the body is refused instead */
  storyboard_error("{\"prompt\":\"x\",\"style\":\"a\\u0000b\"}", "", NULL);
  parsed p2 = parse("{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"C:\\\\u0000\"}}");
  assert_int_equal(p2.rc, 0);
  assert_string_equal(str(p2.sub.input, "prompt"), "C:\\u0000");
  job_submission_free(&p2.sub);
}

static void test_storyboard_unknown_input_field_is_named(void **state) {
  storyboard_error("{\"prompt\":\"x\",\"duration\":\"5s\"}", "input.duration", NULL);
  storyboard_error("{\"prompt\":\"x\",\"model\":\"gpt-5\"}", "input.model", NULL);
}

/* ---- other kinds ---- */

static void test_image_requires_prompt_and_defaults_aspect(void **state) {
  expect_error("{\"kind\":\"image\",\"input\":{}}", "input.prompt", "input.prompt is required");
  expect_error("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\",\"scenes\":2}}", "input.scenes",
               NULL);
  parsed p = parse("{\"kind\":\"image\",\"input\":{\"prompt\":\"x\"}}");
  assert_int_equal(p.rc, 0);
  assert_string_equal(str(p.sub.input, "aspect_ratio"), "16:9");
  assert_int_equal(nkeys(p.sub.input), 2);
  job_submission_free(&p.sub);
}

static void test_video_fields_and_defaults(void **state) {
  expect_error("{\"kind\":\"video\",\"input\":{\"duration\":\"5s\"}}", "input.prompt", NULL);
  expect_error("{\"kind\":\"video\",\"input\":{\"prompt\":\"x\",\"duration\":\"7s\"}}",
               "input.duration", NULL);
  expect_error("{\"kind\":\"video\",\"input\":{\"prompt\":\"x\",\"duration\":5}}", "input.duration",
               NULL);
  expect_error("{\"kind\":\"video\",\"input\":{\"prompt\":\"x\",\"keyframe_upload_id\":\"abc\"}}",
               "input.keyframe_upload_id", NULL);
  parsed p = parse("{\"kind\":\"video\",\"input\":{\"prompt\":\"x\"}}");
  assert_int_equal(p.rc, 0);
  assert_string_equal(str(p.sub.input, "duration"), "5s");
  assert_string_equal(str(p.sub.input, "aspect_ratio"), "16:9");
  assert_null(cJSON_GetObjectItem(p.sub.input, "keyframe_upload_id"));
  job_submission_free(&p.sub);
  p = parse("{\"kind\":\"video\",\"input\":{\"prompt\":\"x\",\"duration\":\"9s\","
            "\"keyframe_upload_id\":\"" ID2 "\"}}");
  assert_int_equal(p.rc, 0);
  assert_string_equal(str(p.sub.input, "duration"), "9s");
  assert_string_equal(str(p.sub.input, "keyframe_upload_id"),
                      "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
  job_submission_free(&p.sub);
}

static void test_lipsync_requires_exactly_one_visual_and_audio(void **state) {
  expect_error("{\"kind\":\"lipsync\",\"input\":{\"audio_upload_id\":\"" ID1 "\"}}",
               "input.image_upload_id", NULL);
  expect_error("{\"kind\":\"lipsync\",\"input\":{\"image_upload_id\":\"" ID1
               "\",\"video_asset_id\":\"" ID2 "\",\"audio_upload_id\":\"" ID1 "\"}}",
               "input.video_asset_id", NULL);
  expect_error("{\"kind\":\"lipsync\",\"input\":{\"image_upload_id\":\"" ID1 "\"}}",
               "input.audio_upload_id", "input.audio_upload_id is required");
  expect_error("{\"kind\":\"lipsync\",\"input\":{\"image_upload_id\":\"" ID1
               "x\",\"audio_upload_id\":\"" ID1 "\"}}",
               "input.image_upload_id", NULL);
  expect_error("{\"kind\":\"lipsync\",\"input\":{\"image_upload_id\":\"" ID1
               "\",\"audio_upload_id\":\"" ID1 "\",\"prompt\":\"x\"}}",
               "input.prompt", NULL);
  parsed p = parse("{\"kind\":\"lipsync\",\"input\":{\"video_asset_id\":\"" ID1
                   "\",\"audio_upload_id\":\"" ID2 "\"}}");
  assert_int_equal(p.rc, 0);
  assert_string_equal(str(p.sub.input, "video_asset_id"), ID1);
  assert_int_equal(nkeys(p.sub.input), 2);
  job_submission_free(&p.sub);
}

static void test_ids_must_be_uuids(void **state) {
  const char *bad[] = {"0b7e5c3a1f2d4e6a9b8c7d6e5f4a3b2c",      /* no dashes */
                       "0b7e5c3a-1f2d-4e6a-9b8c-7d6e5f4a3b2",   /* short */
                       "0b7e5c3a-1f2d-4e6a-9b8c-7d6e5f4a3b2cc", /* long */
                       "0b7e5c3a-1f2d-4e6a-9b8c-7d6e5f4a3b2g",  /* not hex */
                       "{0b7e5c3a-1f2d-4e6a-9b8c-7d6e5f4a3b2c}", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char body[256];
    snprintf(body, sizeof body,
             "{\"kind\":\"lipsync\",\"input\":{\"image_upload_id\":\"" ID1
             "\",\"audio_upload_id\":\"%s\"}}",
             bad[i]);
    expect_error(body, "input.audio_upload_id", "input.audio_upload_id must be an id (a UUID)");
  }
  expect_error("{\"kind\":\"lipsync\",\"input\":{\"image_upload_id\":\"" ID1
               "\",\"audio_upload_id\":42}}",
               "input.audio_upload_id", NULL);
}

static void test_campaign_fields_and_defaults(void **state) {
  expect_error("{\"kind\":\"campaign\",\"input\":{\"avatar_upload_id\":\"" ID1
               "\",\"voice_upload_id\":\"" ID2 "\"}}",
               "input.prompt", NULL);
  expect_error("{\"kind\":\"campaign\",\"input\":{\"prompt\":\"x\",\"voice_upload_id\":\"" ID2
               "\"}}",
               "input.avatar_upload_id", NULL);
  expect_error("{\"kind\":\"campaign\",\"input\":{\"prompt\":\"x\",\"avatar_upload_id\":\"" ID1
               "\"}}",
               "input.voice_upload_id", NULL);
  expect_error("{\"kind\":\"campaign\",\"input\":{\"prompt\":\"x\",\"scenes\":13,"
               "\"avatar_upload_id\":\"" ID1 "\",\"voice_upload_id\":\"" ID2 "\"}}",
               "input.scenes", "input.scenes must be an integer between 1 and 12");
  parsed p =
      parse("{\"kind\":\"campaign\",\"input\":{\"prompt\":\"launch\",\"avatar_upload_id\":\"" ID1
            "\",\"voice_upload_id\":\"" ID2 "\",\"style\":\"warm\"}}");
  assert_int_equal(p.rc, 0);
  assert_int_equal(p.sub.kind, JOB_CAMPAIGN);
  assert_int_equal(num(p.sub.input, "scenes"), 4);
  assert_string_equal(str(p.sub.input, "aspect_ratio"), "16:9");
  assert_string_equal(str(p.sub.input, "style"), "warm");
  assert_int_equal(nkeys(p.sub.input), 6);
  job_submission_free(&p.sub);
}

/* ---- job_input_validate directly ---- */

static void test_input_validate_reports_field_without_prefix(void **state) {
  cJSON *in = cJSON_Parse("{\"prompt\":\"x\",\"scenes\":0}");
  cJSON *out = (cJSON *)1;
  char field[64], msg[128];
  assert_int_equal(
      job_input_validate(JOB_STORYBOARD, in, &out, field, sizeof field, msg, sizeof msg), -1);
  assert_null(out);
  assert_string_equal(field, "scenes");
  assert_string_equal(msg, "scenes must be an integer between 1 and 12");
  cJSON_Delete(in);

  in = cJSON_Parse("{\"prompt\":\"x\"}");
  assert_int_equal(job_input_validate(JOB_IMAGE, in, &out, field, sizeof field, msg, sizeof msg),
                   0);
  assert_string_equal(str(out, "aspect_ratio"), "16:9");
  assert_ptr_not_equal(out, in);
  cJSON_Delete(out);
  cJSON_Delete(in);

  assert_int_equal(job_input_validate(JOB_IMAGE, NULL, &out, field, sizeof field, msg, sizeof msg),
                   -1);
  assert_string_equal(field, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kind_names_round_trip),
      cmocka_unit_test(test_status_names_round_trip_and_terminal),
      cmocka_unit_test(test_body_that_is_not_json_is_rejected),
      cmocka_unit_test(test_body_that_is_not_an_object_is_rejected),
      cmocka_unit_test(test_body_length_is_respected_without_terminator),
      cmocka_unit_test(test_missing_kind_and_input_are_named),
      cmocka_unit_test(test_unknown_kind_is_rejected),
      cmocka_unit_test(test_input_must_be_an_object),
      cmocka_unit_test(test_unknown_top_level_field_is_named),
      cmocka_unit_test(test_duplicate_keys_are_rejected),
      cmocka_unit_test_teardown(test_many_unknown_input_keys_are_refused_in_linear_time, free_big),
      cmocka_unit_test_teardown(test_one_input_key_repeated_is_refused_in_linear_time, free_big),
      cmocka_unit_test_teardown(test_many_root_keys_are_refused_in_linear_time, free_big),
      cmocka_unit_test(test_first_offending_key_is_named),
      cmocka_unit_test(test_webhook_url_accepted_and_copied),
      cmocka_unit_test(test_webhook_url_validation),
      cmocka_unit_test(test_storyboard_minimal_gets_defaults),
      cmocka_unit_test(test_storyboard_full_input_is_kept),
      cmocka_unit_test(test_storyboard_prompt_required_and_non_blank),
      cmocka_unit_test(test_storyboard_prompt_length_bound),
      cmocka_unit_test(test_storyboard_prompt_control_characters_and_utf8),
      cmocka_unit_test(test_storyboard_scenes_bounds_and_types),
      cmocka_unit_test(test_storyboard_aspect_ratio_values),
      cmocka_unit_test(test_storyboard_style_bounds_and_type),
      cmocka_unit_test(test_storyboard_unknown_input_field_is_named),
      cmocka_unit_test(test_image_requires_prompt_and_defaults_aspect),
      cmocka_unit_test(test_video_fields_and_defaults),
      cmocka_unit_test(test_lipsync_requires_exactly_one_visual_and_audio),
      cmocka_unit_test(test_ids_must_be_uuids),
      cmocka_unit_test(test_campaign_fields_and_defaults),
      cmocka_unit_test(test_input_validate_reports_field_without_prefix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
