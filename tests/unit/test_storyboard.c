/* worker/storyboard.c: schema, request body and completion validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storyboard.h"

/* A chat.completion body whose message content is `content` (a JSON text, or
 * NULL for null), with the given refusal (NULL → null) and finish_reason. */
static char *completion(const char *content, const char *refusal, const char *finish) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "id", "chatcmpl-test");
  cJSON_AddStringToObject(root, "object", "chat.completion");
  cJSON_AddNumberToObject(root, "created", 1700000000);
  cJSON_AddStringToObject(root, "model", "gpt-4o-mini");
  cJSON *choice = cJSON_CreateObject();
  cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
  cJSON_AddNumberToObject(choice, "index", 0);
  cJSON *m = cJSON_AddObjectToObject(choice, "message");
  cJSON_AddStringToObject(m, "role", "assistant");
  if (content)
    cJSON_AddStringToObject(m, "content", content);
  else
    cJSON_AddNullToObject(m, "content");
  if (refusal)
    cJSON_AddStringToObject(m, "refusal", refusal);
  else
    cJSON_AddNullToObject(m, "refusal");
  cJSON_AddStringToObject(choice, "finish_reason", finish);
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return s;
}

static const char *two_scenes =
    "{\"title\":\"Fresh Brew\",\"scenes\":["
    "{\"index\":1,\"visual_prompt\":\"A steaming "
    "cup\",\"narration\":\"Mornings.\",\"duration_s\":4},"
    "{\"index\":2,\"visual_prompt\":\"Beans pouring\",\"narration\":\"\",\"duration_s\":5.5}]}";

/* Parses content wrapped as a normal completion; returns rc, sets *code. */
static int parse_content(const char *content, int scenes, cJSON **out, const char **code) {
  char *body = completion(content, NULL, "stop");
  char msg[256];
  int rc = storyboard_parse_completion(body, strlen(body), scenes, out, code, msg, sizeof msg);
  if (rc != 0) assert_true(msg[0] != '\0');
  cJSON_free(body);
  return rc;
}

static void expect_invalid(const char *content, int scenes) {
  cJSON *out = (cJSON *)1;
  const char *code = NULL;
  assert_int_equal(parse_content(content, scenes, &out, &code), -1);
  assert_null(out);
  assert_string_equal(code, "invalid_output");
}

static void check_strict_object(const cJSON *node) {
  assert_string_equal(cJSON_GetObjectItem(node, "type")->valuestring, "object");
  const cJSON *ap = cJSON_GetObjectItem(node, "additionalProperties");
  assert_true(cJSON_IsFalse(ap));
  const cJSON *props = cJSON_GetObjectItem(node, "properties");
  const cJSON *req = cJSON_GetObjectItem(node, "required");
  assert_true(cJSON_IsArray(req));
  assert_int_equal(cJSON_GetArraySize(req), cJSON_GetArraySize(props));
  for (const cJSON *p = props->child; p; p = p->next) {
    int found = 0;
    for (const cJSON *r = req->child; r; r = r->next)
      found |= !strcmp(r->valuestring, p->string);
    assert_true(found);
  }
}

static void schema_is_strict_with_exact_scene_count(void **state) {
  cJSON *s = storyboard_schema(5);
  assert_non_null(s);
  check_strict_object(s);
  const cJSON *props = cJSON_GetObjectItem(s, "properties");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(props, "title"), "type")->valuestring,
                      "string");
  const cJSON *arr = cJSON_GetObjectItem(props, "scenes");
  assert_string_equal(cJSON_GetObjectItem(arr, "type")->valuestring, "array");
  assert_int_equal(cJSON_GetObjectItem(arr, "minItems")->valueint, 5);
  assert_int_equal(cJSON_GetObjectItem(arr, "maxItems")->valueint, 5);
  const cJSON *items = cJSON_GetObjectItem(arr, "items");
  check_strict_object(items);
  const cJSON *ip = cJSON_GetObjectItem(items, "properties");
  assert_int_equal(cJSON_GetArraySize(ip), 4);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ip, "index"), "type")->valuestring,
                      "integer");
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(ip, "duration_s"), "type")->valuestring, "number");
  cJSON_Delete(s);
}

static void schema_rejects_scene_count_out_of_range(void **state) {
  assert_null(storyboard_schema(0));
  assert_null(storyboard_schema(13));
}

static void request_body_has_model_messages_and_strict_response_format(void **state) {
  cJSON *in = cJSON_Parse("{\"prompt\":\"A coffee brand\",\"scenes\":3,\"style\":\"noir\","
                          "\"aspect_ratio\":\"9:16\"}");
  char *body = storyboard_request_body(in, "gpt-4o-mini");
  assert_non_null(body);
  cJSON *b = cJSON_Parse(body);
  assert_non_null(b);
  assert_string_equal(cJSON_GetObjectItem(b, "model")->valuestring, "gpt-4o-mini");
  const cJSON *msgs = cJSON_GetObjectItem(b, "messages");
  assert_int_equal(cJSON_GetArraySize(msgs), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")->valuestring,
                      "system");
  const char *user = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content")->valuestring;
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "role")->valuestring,
                      "user");
  assert_non_null(strstr(user, "A coffee brand"));
  assert_non_null(strstr(user, "noir"));
  assert_non_null(strstr(user, "9:16"));
  const cJSON *rf = cJSON_GetObjectItem(b, "response_format");
  assert_string_equal(cJSON_GetObjectItem(rf, "type")->valuestring, "json_schema");
  const cJSON *js = cJSON_GetObjectItem(rf, "json_schema");
  assert_string_equal(cJSON_GetObjectItem(js, "name")->valuestring, "storyboard");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(js, "strict")));
  const cJSON *arr = cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(js, "schema"), "properties"), "scenes");
  assert_int_equal(cJSON_GetObjectItem(arr, "maxItems")->valueint, 3);
  const cJSON *mct = cJSON_GetObjectItem(b, "max_completion_tokens");
  assert_true(cJSON_IsNumber(mct) && mct->valueint > 0 && mct->valueint <= 16384);
  cJSON_Delete(b);
  cJSON_free(body);
  cJSON_Delete(in);
}

static void request_body_defaults_to_four_scenes_and_rejects_bad_input(void **state) {
  cJSON *in = cJSON_Parse("{\"prompt\":\"Shoes\"}");
  char *body = storyboard_request_body(in, "m");
  cJSON *b = cJSON_Parse(body);
  const cJSON *arr = cJSON_GetObjectItem(
      cJSON_GetObjectItem(
          cJSON_GetObjectItem(
              cJSON_GetObjectItem(cJSON_GetObjectItem(b, "response_format"), "json_schema"),
              "schema"),
          "properties"),
      "scenes");
  assert_int_equal(cJSON_GetObjectItem(arr, "minItems")->valueint, 4);
  cJSON_Delete(b);
  cJSON_free(body);
  cJSON_Delete(in);
  in = cJSON_Parse("{\"prompt\":\"Shoes\",\"scenes\":13}");
  assert_null(storyboard_request_body(in, "m"));
  cJSON_Delete(in);
  in = cJSON_Parse("{\"scenes\":2}");
  assert_null(storyboard_request_body(in, "m"));
  cJSON_Delete(in);
}

static void parse_accepts_valid_completion_and_normalizes(void **state) {
  cJSON *out = NULL;
  const char *code = NULL;
  assert_int_equal(parse_content(two_scenes, 2, &out, &code), 0);
  assert_non_null(out);
  assert_string_equal(cJSON_GetObjectItem(out, "title")->valuestring, "Fresh Brew");
  const cJSON *sc = cJSON_GetObjectItem(out, "scenes");
  assert_int_equal(cJSON_GetArraySize(sc), 2);
  const cJSON *s2 = cJSON_GetArrayItem(sc, 1);
  assert_int_equal(cJSON_GetObjectItem(s2, "index")->valueint, 2);
  assert_string_equal(cJSON_GetObjectItem(s2, "visual_prompt")->valuestring, "Beans pouring");
  assert_true(cJSON_GetObjectItem(s2, "duration_s")->valuedouble == 5.5);
  cJSON_Delete(out);
}

static void parse_rejects_wrong_number_of_scenes(void **state) {
  expect_invalid(two_scenes, 3);
  expect_invalid(two_scenes, 1);
}

static void parse_rejects_missing_field(void **state) {
  expect_invalid("{\"title\":\"T\",\"scenes\":[{\"index\":1,\"visual_prompt\":\"v\","
                 "\"duration_s\":3}]}",
                 1);
  expect_invalid("{\"scenes\":[{\"index\":1,\"visual_prompt\":\"v\",\"narration\":\"n\","
                 "\"duration_s\":3}]}",
                 1);
}

static void parse_rejects_extra_field(void **state) {
  expect_invalid("{\"title\":\"T\",\"scenes\":[{\"index\":1,\"visual_prompt\":\"v\","
                 "\"narration\":\"n\",\"duration_s\":3,\"music\":\"jazz\"}]}",
                 1);
  expect_invalid("{\"title\":\"T\",\"extra\":1,\"scenes\":[{\"index\":1,\"visual_prompt\":\"v\","
                 "\"narration\":\"n\",\"duration_s\":3}]}",
                 1);
}

static void parse_rejects_wrong_types_and_out_of_range_values(void **state) {
  const char *fmt = "{\"title\":%s,\"scenes\":[{\"index\":%s,\"visual_prompt\":%s,"
                    "\"narration\":%s,\"duration_s\":%s}]}";
  const char *cases[][5] = {
      {"1", "1", "\"v\"", "\"n\"", "3"},         /* title not a string */
      {"\"\"", "1", "\"v\"", "\"n\"", "3"},      /* title empty */
      {"\"T\"", "\"1\"", "\"v\"", "\"n\"", "3"}, /* index a string */
      {"\"T\"", "1.5", "\"v\"", "\"n\"", "3"},   /* index not an integer */
      {"\"T\"", "1", "\"\"", "\"n\"", "3"},      /* visual_prompt empty */
      {"\"T\"", "1", "7", "\"n\"", "3"},         /* visual_prompt a number */
      {"\"T\"", "1", "\"v\"", "null", "3"},      /* narration null */
      {"\"T\"", "1", "\"v\"", "\"n\"", "\"3\""}, /* duration a string */
      {"\"T\"", "1", "\"v\"", "\"n\"", "0"},     /* duration zero */
      {"\"T\"", "1", "\"v\"", "\"n\"", "60.5"},  /* duration over 60 */
      {"\"T\"", "2", "\"v\"", "\"n\"", "3"},     /* index out of sequence */
  };
  char buf[512];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(buf, sizeof buf, fmt, cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4]);
    expect_invalid(buf, 1);
  }
  expect_invalid("[]", 1);
  expect_invalid("{\"title\":\"T\",\"scenes\":{}}", 1);
}

static void parse_rejects_overlong_title(void **state) {
  char title[STORYBOARD_MAX_TITLE + 2];
  memset(title, 'a', sizeof title - 1);
  title[sizeof title - 1] = '\0';
  char buf[1024];
  snprintf(buf, sizeof buf,
           "{\"title\":\"%s\",\"scenes\":[{\"index\":1,\"visual_prompt\":\"v\","
           "\"narration\":\"n\",\"duration_s\":3}]}",
           title);
  expect_invalid(buf, 1);
}

static void parse_reports_refusal(void **state) {
  char *body = completion(NULL, "I can't help with that.", "stop");
  cJSON *out = NULL;
  const char *code = NULL;
  char msg[128];
  assert_int_equal(storyboard_parse_completion(body, strlen(body), 2, &out, &code, msg, sizeof msg),
                   -1);
  assert_string_equal(code, "refused");
  assert_non_null(strstr(msg, "I can't help with that."));
  assert_null(out);
  cJSON_free(body);
}

static void parse_reports_length_as_truncated(void **state) {
  char *body = completion("{\"title\":\"Fre", NULL, "length");
  cJSON *out = NULL;
  const char *code = NULL;
  char msg[128];
  assert_int_equal(storyboard_parse_completion(body, strlen(body), 2, &out, &code, msg, sizeof msg),
                   -1);
  assert_string_equal(code, "truncated");
  cJSON_free(body);
}

static void parse_reports_content_filter(void **state) {
  char *body = completion(two_scenes, NULL, "content_filter");
  cJSON *out = NULL;
  const char *code = NULL;
  char msg[128];
  assert_int_equal(storyboard_parse_completion(body, strlen(body), 2, &out, &code, msg, sizeof msg),
                   -1);
  assert_string_equal(code, "content_filter");
  cJSON_free(body);
}

static void parse_rejects_content_that_is_not_json(void **state) {
  expect_invalid("Here is your storyboard: a cup of coffee.", 2);
  expect_invalid("{\"title\":\"T\"} trailing", 2);
  char *body = completion(NULL, NULL, "stop"); /* content null without a refusal */
  cJSON *out = NULL;
  const char *code = NULL;
  char msg[128];
  assert_int_equal(storyboard_parse_completion(body, strlen(body), 2, &out, &code, msg, sizeof msg),
                   -1);
  assert_string_equal(code, "invalid_output");
  cJSON_free(body);
}

static void parse_rejects_body_that_is_not_json(void **state) {
  const char *bodies[] = {"<html>502 Bad Gateway</html>", "", "{\"object\":\"chat.compl",
                          "{\"object\":\"list\",\"choices\":[]}"};
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    cJSON *out = (cJSON *)1;
    const char *code = NULL;
    char msg[128];
    assert_int_equal(
        storyboard_parse_completion(bodies[i], strlen(bodies[i]), 2, &out, &code, msg, sizeof msg),
        -1);
    assert_null(out);
    assert_string_equal(code, "invalid_output");
  }
}

static void parse_rejects_empty_choices(void **state) {
  const char *body = "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[]}";
  cJSON *out = NULL;
  const char *code = NULL;
  char msg[128];
  assert_int_equal(storyboard_parse_completion(body, strlen(body), 2, &out, &code, msg, sizeof msg),
                   -1);
  assert_string_equal(code, "invalid_output");
  assert_non_null(strstr(msg, "choices"));
}

static void parse_renumbers_zero_based_indexes(void **state) {
  const char *content =
      "{\"title\":\"T\",\"scenes\":["
      "{\"index\":0,\"visual_prompt\":\"a\",\"narration\":\"x\",\"duration_s\":2},"
      "{\"index\":1,\"visual_prompt\":\"b\",\"narration\":\"y\",\"duration_s\":3},"
      "{\"index\":2,\"visual_prompt\":\"c\",\"narration\":\"z\",\"duration_s\":4}]}";
  cJSON *out = NULL;
  const char *code = NULL;
  assert_int_equal(parse_content(content, 3, &out, &code), 0);
  const cJSON *sc = cJSON_GetObjectItem(out, "scenes");
  for (int i = 0; i < 3; i++)
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sc, i), "index")->valueint, i + 1);
  cJSON_Delete(out);
  /* Mixed numbering (0 then 2) is neither 0..N-1 nor 1..N. */
  expect_invalid("{\"title\":\"T\",\"scenes\":["
                 "{\"index\":0,\"visual_prompt\":\"a\",\"narration\":\"x\",\"duration_s\":2},"
                 "{\"index\":2,\"visual_prompt\":\"b\",\"narration\":\"y\",\"duration_s\":3}]}",
                 2);
}

static void parse_rejects_duplicate_keys(void **state) {
  expect_invalid("{\"title\":\"T\",\"title\":\"U\",\"scenes\":[{\"index\":1,"
                 "\"visual_prompt\":\"v\",\"narration\":\"n\",\"duration_s\":3}]}",
                 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(schema_is_strict_with_exact_scene_count),
      cmocka_unit_test(schema_rejects_scene_count_out_of_range),
      cmocka_unit_test(request_body_has_model_messages_and_strict_response_format),
      cmocka_unit_test(request_body_defaults_to_four_scenes_and_rejects_bad_input),
      cmocka_unit_test(parse_accepts_valid_completion_and_normalizes),
      cmocka_unit_test(parse_rejects_wrong_number_of_scenes),
      cmocka_unit_test(parse_rejects_missing_field),
      cmocka_unit_test(parse_rejects_extra_field),
      cmocka_unit_test(parse_rejects_wrong_types_and_out_of_range_values),
      cmocka_unit_test(parse_rejects_overlong_title),
      cmocka_unit_test(parse_reports_refusal),
      cmocka_unit_test(parse_reports_length_as_truncated),
      cmocka_unit_test(parse_reports_content_filter),
      cmocka_unit_test(parse_rejects_content_that_is_not_json),
      cmocka_unit_test(parse_rejects_body_that_is_not_json),
      cmocka_unit_test(parse_rejects_empty_choices),
      cmocka_unit_test(parse_renumbers_zero_based_indexes),
      cmocka_unit_test(parse_rejects_duplicate_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
