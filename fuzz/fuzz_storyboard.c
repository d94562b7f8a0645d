/* fuzz_storyboard — the storyboard parser (worker/storyboard.c): the input
 * is a chat.completion body as OpenAI answers the storyboard step, parsed
 * for the scene count its own storyboard has (when it has one: else the
 * default 4), and for one more, which must then fail.
 *
 * What must hold: a failure is one of the documented codes with a message;
 * a storyboard has exactly the scenes asked for, numbered 1..N, with
 * bounded texts and durations; and a storyboard sent back as the content of
 * a completion parses to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "storyboard.h"

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    if (!(x)) __builtin_trap();                                                                    \
  } while (0)

/* How many scenes the content's storyboard has, if it is one; else 4. */
static int scene_count(const uint8_t *data, size_t size) {
  cJSON *root = cJSON_ParseWithLength((const char *)data, size);
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 0), "message");
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
  cJSON *doc = cJSON_IsString(content) ? cJSON_Parse(content->valuestring) : NULL;
  int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "scenes"));
  cJSON_Delete(doc);
  cJSON_Delete(root);
  return n >= STORYBOARD_MIN_SCENES && n <= STORYBOARD_MAX_SCENES ? n : STORYBOARD_DEFAULT_SCENES;
}

static void check_storyboard(const cJSON *sb, int scenes) {
  const cJSON *title = cJSON_GetObjectItemCaseSensitive(sb, "title");
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(sb, "scenes");
  CHECK(cJSON_GetArraySize(sb) == 2 && cJSON_IsString(title) && title->valuestring[0]);
  CHECK(strlen(title->valuestring) <= STORYBOARD_MAX_TITLE);
  CHECK(cJSON_IsArray(list) && cJSON_GetArraySize(list) == scenes);
  int i = 1;
  for (const cJSON *s = list->child; s; s = s->next, i++) {
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(s, "index");
    const cJSON *vp = cJSON_GetObjectItemCaseSensitive(s, "visual_prompt");
    const cJSON *nar = cJSON_GetObjectItemCaseSensitive(s, "narration");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(s, "duration_s");
    CHECK(cJSON_GetArraySize(s) == 4 && cJSON_IsNumber(idx) && idx->valuedouble == i);
    CHECK(cJSON_IsString(vp) && vp->valuestring[0] &&
          strlen(vp->valuestring) <= STORYBOARD_MAX_TEXT);
    CHECK(cJSON_IsString(nar) && strlen(nar->valuestring) <= STORYBOARD_MAX_TEXT);
    CHECK(cJSON_IsNumber(dur) && dur->valuedouble > 0 &&
          dur->valuedouble <= STORYBOARD_MAX_DURATION);
  }
}

/* sb as the content of a completion parses to sb. */
static void check_fixed_point(const cJSON *sb, int scenes) {
  char *content = cJSON_PrintUnformatted(sb);
  cJSON *root = cJSON_CreateObject(), *choices, *choice, *message;
  CHECK(content && root);
  CHECK(cJSON_AddStringToObject(root, "object", "chat.completion"));
  CHECK((choices = cJSON_AddArrayToObject(root, "choices")));
  CHECK((choice = cJSON_CreateObject()) && cJSON_AddItemToArray(choices, choice));
  CHECK((message = cJSON_AddObjectToObject(choice, "message")));
  CHECK(cJSON_AddStringToObject(message, "content", content));
  CHECK(cJSON_AddNullToObject(message, "refusal"));
  CHECK(cJSON_AddStringToObject(choice, "finish_reason", "stop"));
  char *body = cJSON_PrintUnformatted(root);
  CHECK(body);
  cJSON *again = NULL;
  const char *code = NULL;
  char msg[256];
  CHECK(storyboard_parse_completion(body, strlen(body), scenes, &again, &code, msg, sizeof msg) ==
        0);
  CHECK(cJSON_Compare(again, sb, 1));
  cJSON_Delete(again);
  cJSON_free(body);
  cJSON_Delete(root);
  cJSON_free(content);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const codes[] = {"refused", "truncated", "content_filter", "invalid_output"};
  static cJSON unset; /* *out must be NULL after a failure */
  int scenes = scene_count(data, size), ok = 0;
  for (int n = scenes; n <= scenes + 1; n++) {
    cJSON *sb = &unset;
    const char *code = NULL;
    char msg[256];
    int rc = storyboard_parse_completion((const char *)data, size, n, &sb, &code, msg, sizeof msg);
    if (rc == 0) {
      CHECK(n == scenes && sb && sb != &unset);
      check_storyboard(sb, n);
      check_fixed_point(sb, n);
      cJSON_Delete(sb);
      ok = 1;
    } else {
      CHECK(rc == -1 && !sb && msg[0]);
      size_t i = 0;
      while (i < sizeof codes / sizeof codes[0] && (!code || strcmp(code, codes[i]) != 0))
        i++;
      CHECK(i < sizeof codes / sizeof codes[0]);
      if (n > scenes && ok) CHECK(strcmp(code, "invalid_output") == 0);
    }
  }
  return 0;
}
