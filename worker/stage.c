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

/* What the worker reads of a claimed step, and when each member may go. */
static int keep_member(const cJSON *m) {
  const char *k = m->string;
  if (cJSON_IsNull(m)) return 0; /* absent reads the same */
  if (!strcmp(k, "name") || !strcmp(k, "step_kind") || !strcmp(k, "provider_ref") ||
      !strcmp(k, "retry_key") || !strcmp(k, "output"))
    return 1;
  if (!strcmp(k, "status")) return cJSON_IsString(m) && !strcmp(m->valuestring, "succeeded");
  if (!strcmp(k, "stage") || !strcmp(k, "index"))
    return !cJSON_IsNumber(m) || m->valuedouble != 0; /* absent reads as 0 */
  if (!strcmp(k, "price")) /* what its success captures (metrics); absent reads as 0 */
    return cJSON_IsNumber(m) && m->valuedouble != 0;
  return 0; /* provider, attempt: nothing here reads them */
}

void stage_compact_steps(cJSON *steps) {
  cJSON *s;
  cJSON_ArrayForEach(s, steps) {
    if (!cJSON_IsObject(s)) continue;
    for (cJSON *m = s->child, *next; m; m = next) {
      next = m->next;
      if (!m->string || !keep_member(m)) cJSON_Delete(cJSON_DetachItemViaPointer(s, m));
    }
    if (succeeded(s)) cJSON_DeleteItemFromObjectCaseSensitive(s, "price"); /* it never runs here */
  }
}

int stage_step_set(cJSON *step, const char *key, cJSON *item) {
  if (!item) return -1;
  if (cJSON_GetObjectItemCaseSensitive(step, key))
    return cJSON_ReplaceItemInObjectCaseSensitive(step, key, item) ? 0 : -1;
  if (cJSON_AddItemToObject(step, key, item)) return 0;
  cJSON_Delete(item);
  return -1;
}
