/* worker/stage.c: the next stage of a job is the lowest one with a step
 * that has not succeeded; its pending steps are those to start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker.h"

static cJSON *steps(const char *json) {
  cJSON *a = cJSON_Parse(json);
  assert_non_null(a);
  return a;
}

static void no_steps_or_all_succeeded_is_none(void **state) {
  assert_int_equal(stage_next(NULL), -1);
  cJSON *a = steps("[]");
  assert_int_equal(stage_next(a), -1);
  cJSON_Delete(a);
  a = steps("[{\"stage\":0,\"status\":\"succeeded\"},{\"stage\":1,\"status\":\"succeeded\"}]");
  assert_int_equal(stage_next(a), -1);
  cJSON_Delete(a);
}

static void lowest_unfinished_stage_wins(void **state) {
  cJSON *a = steps("[{\"name\":\"storyboard\",\"stage\":0,\"status\":\"succeeded\"},"
                   "{\"name\":\"video_2\",\"stage\":2,\"status\":\"queued\"},"
                   "{\"name\":\"image_1\",\"stage\":1,\"status\":\"failed\"},"
                   "{\"name\":\"image_2\",\"stage\":1,\"status\":\"succeeded\"},"
                   "{\"name\":\"image_3\",\"stage\":1,\"status\":\"running\"}]");
  assert_int_equal(stage_next(a), 1);
  int pending[] = {0, 0, 1, 0, 1};
  for (int i = 0; i < 5; i++)
    assert_int_equal(stage_pending(cJSON_GetArrayItem(a, i), 1), pending[i]);
  /* stage 1 done: stage 2 is next */
  for (int i = 2; i < 5; i++)
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(a, i), "status", cJSON_CreateString("succeeded"));
  assert_int_equal(stage_next(a), 2);
  assert_true(stage_pending(cJSON_GetArrayItem(a, 1), 2));
  assert_false(stage_pending(cJSON_GetArrayItem(a, 1), 1));
  cJSON_Delete(a);
}

static void order_in_the_array_does_not_matter(void **state) {
  cJSON *a = steps("[{\"stage\":3,\"status\":\"queued\"},{\"stage\":1,\"status\":\"queued\"},"
                   "{\"stage\":2,\"status\":\"queued\"}]");
  assert_int_equal(stage_next(a), 1);
  cJSON_Delete(a);
}

static void missing_stage_is_zero_missing_status_is_unfinished(void **state) {
  cJSON *a = steps("[{\"stage\":1,\"status\":\"queued\"},{\"status\":\"queued\"}]");
  assert_int_equal(stage_next(a), 0);
  assert_true(stage_pending(cJSON_GetArrayItem(a, 1), 0));
  cJSON_Delete(a);
  a = steps("[{\"stage\":\"2\",\"status\":\"queued\"},{\"stage\":1}]");
  assert_int_equal(stage_next(a), 0); /* a stage that is not a number counts as 0 */
  assert_true(stage_pending(cJSON_GetArrayItem(a, 1), 1));
  cJSON_Delete(a);
  a = steps("[{\"stage\":0,\"status\":null},{\"stage\":0,\"status\":\"Succeeded\"}]");
  assert_true(stage_pending(cJSON_GetArrayItem(a, 0), 0));
  assert_true(stage_pending(cJSON_GetArrayItem(a, 1), 0)); /* exactly "succeeded" */
  cJSON_Delete(a);
}

/* A claimed step as genq_claim_job hands it: compaction keeps what the
 * worker reads and nothing that reads the same absent (a succeeded step's
 * price: it never runs again in this claim). */
static void compaction_keeps_what_is_read_and_drops_the_rest(void **state) {
  cJSON *a =
      steps("[{\"name\":\"storyboard\",\"step_kind\":\"storyboard\",\"provider\":\"openai\","
            "\"stage\":0,\"status\":\"succeeded\",\"attempt\":1,\"provider_ref\":null,"
            "\"retry_key\":null,\"index\":0,\"output\":{\"scenes\":[]},\"price\":1},"
            "{\"name\":\"video_1\",\"step_kind\":\"video\",\"provider\":\"luma\",\"stage\":1,"
            "\"status\":\"running\",\"attempt\":2,\"provider_ref\":\"gen-1\",\"retry_key\":null,"
            "\"index\":1,\"output\":null,\"price\":10},"
            "{\"name\":\"lipsync\",\"step_kind\":\"lipsync\",\"provider\":\"hedra\",\"stage\":2,"
            "\"status\":\"queued\",\"attempt\":0,\"provider_ref\":null,\"retry_key\":\"r1\","
            "\"index\":0,\"output\":null,\"price\":0}]");
  int next_before = stage_next(a);
  stage_compact_steps(a);
  char *s = cJSON_PrintUnformatted(a);
  assert_string_equal(
      s, "[{\"name\":\"storyboard\",\"step_kind\":\"storyboard\",\"status\":\"succeeded\","
         "\"output\":{\"scenes\":[]}},"
         "{\"name\":\"video_1\",\"step_kind\":\"video\",\"stage\":1,\"provider_ref\":\"gen-1\","
         "\"index\":1,\"price\":10},"
         "{\"name\":\"lipsync\",\"step_kind\":\"lipsync\",\"stage\":2,\"retry_key\":\"r1\"}]");
  cJSON_free(s);
  /* the stages read the same */
  assert_int_equal(stage_next(a), next_before);
  assert_true(stage_pending(cJSON_GetArrayItem(a, 1), 1));
  assert_false(stage_pending(cJSON_GetArrayItem(a, 0), 0));
  stage_compact_steps(NULL); /* nothing to do, no crash */
  cJSON_Delete(a);
}

/* What the runner writes into a compacted step lands whether or not the
 * member survived compaction. */
static void step_set_adds_or_replaces(void **state) {
  cJSON *st = steps("{\"name\":\"image\",\"status\":\"succeeded\"}");
  assert_int_equal(stage_step_set(st, "output", cJSON_CreateString("o1")), 0);
  assert_string_equal(cJSON_GetObjectItem(st, "output")->valuestring, "o1");
  assert_int_equal(stage_step_set(st, "output", cJSON_CreateString("o2")), 0);
  assert_string_equal(cJSON_GetObjectItem(st, "output")->valuestring, "o2");
  assert_int_equal(stage_step_set(st, "status", cJSON_CreateString("succeeded")), 0);
  assert_int_equal(cJSON_GetArraySize(st), 3);
  assert_int_equal(stage_step_set(st, "x", NULL), -1);
  cJSON_Delete(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(no_steps_or_all_succeeded_is_none),
      cmocka_unit_test(compaction_keeps_what_is_read_and_drops_the_rest),
      cmocka_unit_test(step_set_adds_or_replaces),
      cmocka_unit_test(lowest_unfinished_stage_wins),
      cmocka_unit_test(order_in_the_array_does_not_matter),
      cmocka_unit_test(missing_stage_is_zero_missing_status_is_unfinished),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
