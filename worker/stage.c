/* stage.c — which steps of a job run next: every unfinished step of the
 * lowest stage with one (steps of a stage run at once; a stage starts once
 * every earlier one succeeded). Pure functions over the claimed steps. */
#include <string.h>

#include "worker.h"

static int stage_of(const cJSON *step) {
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(step, "stage");
  return cJSON_IsNumber(st) ? st->valueint : 0;
}

static int succeeded(const cJSON *step) {
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(step, "status");
  return cJSON_IsString(st) && strcmp(st->valuestring, "succeeded") == 0;
}

int stage_next(const cJSON *steps) {
  int stage = -1;
  const cJSON *s;
  cJSON_ArrayForEach(s, steps) {
    if (!succeeded(s) && (stage < 0 || stage_of(s) < stage)) stage = stage_of(s);
  }
  return stage;
}

int stage_pending(const cJSON *step, int stage) {
  return !succeeded(step) && stage_of(step) == stage;
}
