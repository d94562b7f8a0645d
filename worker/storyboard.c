/* Storyboard schema, request body and completion validation (see storyboard.h). */
#include "storyboard.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Tokens the model may spend: a title plus ~300 per scene (two short texts),
 * bounded so a runaway answer is cut by the provider, not paid in full. */
#define TOKENS_BASE 256
#define TOKENS_PER_SCENE 300

int storyboard_scene_count(const cJSON *input) {
  const cJSON *n = cJSON_GetObjectItemCaseSensitive(input, "scenes");
  if (!n) return STORYBOARD_DEFAULT_SCENES;
  if (!cJSON_IsNumber(n)) return -1;
  double d = n->valuedouble;
  if (d != floor(d) || d < STORYBOARD_MIN_SCENES || d > STORYBOARD_MAX_SCENES) return -1;
  return (int)d;
}

static cJSON *prop(cJSON *props, const char *name, const char *type) {
  cJSON *p = cJSON_AddObjectToObject(props, name);
  if (p && !cJSON_AddStringToObject(p, "type", type)) return NULL;
  return p;
}

/* A strict object node: {type: object, properties, required: [names...],
 * additionalProperties: false}; returns the properties object. */
static cJSON *strict_object(cJSON *node, const char *const *names, cJSON **required) {
  if (!cJSON_AddStringToObject(node, "type", "object")) return NULL;
  cJSON *props = cJSON_AddObjectToObject(node, "properties");
  cJSON *req = cJSON_AddArrayToObject(node, "required");
  if (!props || !req || !cJSON_AddFalseToObject(node, "additionalProperties")) return NULL;
  for (const char *const *n = names; *n; n++) {
    cJSON *s = cJSON_CreateString(*n);
    if (!s || !cJSON_AddItemToArray(req, s)) {
      cJSON_Delete(s);
      return NULL;
    }
  }
  *required = req;
  return props;
}

cJSON *storyboard_schema(int scenes) {
  static const char *const top_names[] = {"title", "scenes", NULL};
  static const char *const scene_names[] = {"index", "visual_prompt", "narration", "duration_s",
                                            NULL};
  if (scenes < STORYBOARD_MIN_SCENES || scenes > STORYBOARD_MAX_SCENES) return NULL;
  cJSON *root = cJSON_CreateObject(), *req;
  if (!root) return NULL;
  cJSON *props = strict_object(root, top_names, &req);
  if (!props || !prop(props, "title", "string")) goto fail;
  cJSON *arr = prop(props, "scenes", "array");
  if (!arr || !cJSON_AddNumberToObject(arr, "minItems", scenes) ||
      !cJSON_AddNumberToObject(arr, "maxItems", scenes))
    goto fail;
  cJSON *item = cJSON_AddObjectToObject(arr, "items");
  cJSON *sp = item ? strict_object(item, scene_names, &req) : NULL;
  if (!sp || !prop(sp, "index", "integer") || !prop(sp, "visual_prompt", "string") ||
      !prop(sp, "narration", "string") || !prop(sp, "duration_s", "number"))
    goto fail;
  return root;
fail:
  cJSON_Delete(root);
  return NULL;
}

static const char *opt_string(const cJSON *input, const char *name, const char *dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(input, name);
  return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : dflt;
}

static int add_message(cJSON *messages, const char *role, const char *content) {
  cJSON *m = cJSON_CreateObject();
  if (!m || !cJSON_AddItemToArray(messages, m)) {
    cJSON_Delete(m);
    return -1;
  }
  return cJSON_AddStringToObject(m, "role", role) && cJSON_AddStringToObject(m, "content", content)
             ? 0
             : -1;
}

char *storyboard_request_body(const cJSON *input, const char *model) {
  const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(input, "prompt");
  int scenes = storyboard_scene_count(input);
  if (!cJSON_IsString(prompt) || scenes < 0 || !model || !model[0]) return NULL;
  const char *style = opt_string(input, "style", "clean, modern, professional");
  const char *aspect = opt_string(input, "aspect_ratio", "16:9");

  char system[1024];
  snprintf(system, sizeof system,
           "You plan storyboards for short marketing videos. Answer with a title and exactly %d "
           "scene%s, numbered from 1 in playing order. For each scene give a visual_prompt (what a "
           "text-to-video model should render: subject, setting, camera, lighting, in the "
           "requested style and framed for the requested aspect ratio), the narration spoken over "
           "it, and its duration_s in seconds (at most %d). Keep the whole video coherent and "
           "focused on the product.",
           scenes, scenes == 1 ? "" : "s", STORYBOARD_MAX_DURATION);

  cJSON *root = cJSON_CreateObject(), *rf, *js, *schema = NULL;
  char *user = NULL, *out = NULL;
  if (!root) return NULL;
  cJSON *messages = cJSON_AddArrayToObject(root, "messages");
  size_t ulen = strlen(prompt->valuestring) + strlen(style) + strlen(aspect) + 128;
  user = cJSON_malloc(ulen);
  if (!user || !messages || !cJSON_AddStringToObject(root, "model", model)) goto done;
  snprintf(user, ulen, "Brief: %s\nStyle: %s\nAspect ratio: %s\nScenes: %d", prompt->valuestring,
           style, aspect, scenes);
  if (add_message(messages, "system", system) < 0 || add_message(messages, "user", user) < 0)
    goto done;
  if (!(rf = cJSON_AddObjectToObject(root, "response_format")) ||
      !cJSON_AddStringToObject(rf, "type", "json_schema") ||
      !(js = cJSON_AddObjectToObject(rf, "json_schema")) ||
      !cJSON_AddStringToObject(js, "name", "storyboard") || !cJSON_AddTrueToObject(js, "strict"))
    goto done;
  if (!(schema = storyboard_schema(scenes)) || !cJSON_AddItemToObject(js, "schema", schema)) {
    cJSON_Delete(schema);
    goto done;
  }
  if (!cJSON_AddNumberToObject(root, "max_completion_tokens",
                               TOKENS_BASE + TOKENS_PER_SCENE * scenes))
    goto done;
  out = cJSON_PrintUnformatted(root);
done:
  cJSON_free(user);
  cJSON_Delete(root);
  return out;
}

/* ---- completion parsing ---------------------------------------------- */

#define FAIL(c, ...)                                                                               \
  do {                                                                                             \
    *code = (c);                                                                                   \
    snprintf(msg, msglen, __VA_ARGS__);                                                            \
    goto fail;                                                                                     \
  } while (0)

/* NULL (a missing field) is not an integer. */
static int is_integer(const cJSON *v) {
  return v != NULL && cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
         v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e9;
}

/* Every key of obj is one of names (each at most once) and all are present. */
static int exact_keys(const cJSON *obj, const char *const *names, const char **bad) {
  int n = 0;
  for (const char *const *k = names; *k; k++, n++)
    if (!cJSON_GetObjectItemCaseSensitive(obj, *k)) return *bad = *k, -1;
  if (cJSON_GetArraySize(obj) == n) return 0;
  for (const cJSON *c = obj->child; c; c = c->next) {
    int known = 0;
    for (const char *const *k = names; *k; k++)
      known |= c->string && !strcmp(c->string, *k);
    if (!known) return *bad = c->string ? c->string : "?", 1;
  }
  return *bad = "duplicate key", 1;
}

static cJSON *validate_storyboard(const cJSON *doc, int scenes, const char **code, char *msg,
                                  size_t msglen) {
  static const char *const top_names[] = {"title", "scenes", NULL};
  static const char *const scene_names[] = {"index", "visual_prompt", "narration", "duration_s",
                                            NULL};
  const char *bad;
  cJSON *out = NULL;
  int r;
  if (!cJSON_IsObject(doc)) FAIL("invalid_output", "storyboard is not a JSON object");
  if ((r = exact_keys(doc, top_names, &bad)) != 0)
    FAIL("invalid_output", "storyboard %s: %.64s", r < 0 ? "misses" : "has unexpected key", bad);
  const cJSON *title = cJSON_GetObjectItemCaseSensitive(doc, "title");
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "scenes");
  if (!cJSON_IsString(title) || !title->valuestring[0] ||
      strlen(title->valuestring) > STORYBOARD_MAX_TITLE)
    FAIL("invalid_output", "title must be a non-empty string of at most %d bytes",
         STORYBOARD_MAX_TITLE);
  if (!cJSON_IsArray(list)) FAIL("invalid_output", "scenes is not an array");
  int n = cJSON_GetArraySize(list);
  if (n != scenes) FAIL("invalid_output", "expected %d scenes, got %d", scenes, n);

  /* Numbering base: 1, or 0 when the model started from 0 (renumbered). */
  const cJSON *first =
      cJSON_IsObject(list->child) ? cJSON_GetObjectItemCaseSensitive(list->child, "index") : NULL;
  int base = is_integer(first) && first->valuedouble == 0 ? 0 : 1;

  out = cJSON_CreateObject();
  cJSON *oscenes;
  if (!out || !cJSON_AddStringToObject(out, "title", title->valuestring) ||
      !(oscenes = cJSON_AddArrayToObject(out, "scenes")))
    FAIL("invalid_output", "out of memory");
  int i = 0;
  for (const cJSON *s = list->child; s; s = s->next, i++) {
    if (!cJSON_IsObject(s)) FAIL("invalid_output", "scene %d is not an object", i + 1);
    if ((r = exact_keys(s, scene_names, &bad)) != 0)
      FAIL("invalid_output", "scene %d %s: %.64s", i + 1, r < 0 ? "misses" : "has unexpected key",
           bad);
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(s, "index");
    const cJSON *vp = cJSON_GetObjectItemCaseSensitive(s, "visual_prompt");
    const cJSON *nar = cJSON_GetObjectItemCaseSensitive(s, "narration");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(s, "duration_s");
    if (!is_integer(idx)) FAIL("invalid_output", "scene %d: index is not an integer", i + 1);
    if (idx->valuedouble != i + base)
      FAIL("invalid_output", "scene %d: index %.0f out of sequence", i + 1, idx->valuedouble);
    if (!cJSON_IsString(vp) || !vp->valuestring[0] || strlen(vp->valuestring) > STORYBOARD_MAX_TEXT)
      FAIL("invalid_output",
           "scene %d: visual_prompt must be a non-empty string of at most %d bytes", i + 1,
           STORYBOARD_MAX_TEXT);
    if (!cJSON_IsString(nar) || strlen(nar->valuestring) > STORYBOARD_MAX_TEXT)
      FAIL("invalid_output", "scene %d: narration must be a string of at most %d bytes", i + 1,
           STORYBOARD_MAX_TEXT);
    if (!cJSON_IsNumber(dur) || !(dur->valuedouble > 0) ||
        dur->valuedouble > STORYBOARD_MAX_DURATION)
      FAIL("invalid_output", "scene %d: duration_s must be a number in (0, %d]", i + 1,
           STORYBOARD_MAX_DURATION);
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(oscenes, o)) {
      cJSON_Delete(o);
      FAIL("invalid_output", "out of memory");
    }
    if (!cJSON_AddNumberToObject(o, "index", i + 1) ||
        !cJSON_AddStringToObject(o, "visual_prompt", vp->valuestring) ||
        !cJSON_AddStringToObject(o, "narration", nar->valuestring) ||
        !cJSON_AddNumberToObject(o, "duration_s", dur->valuedouble))
      FAIL("invalid_output", "out of memory");
  }
  return out;
fail:
  cJSON_Delete(out);
  return NULL;
}

int storyboard_parse_completion(const char *body, size_t len, int scenes, cJSON **out,
                                const char **code, char *msg, size_t msglen) {
  cJSON *root = NULL, *doc = NULL;
  *out = NULL;
  if (msglen) msg[0] = '\0';
  if (!body || !(root = cJSON_ParseWithLength(body, len)))
    FAIL("invalid_output", "response body is not JSON");
  const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "object");
  if (!cJSON_IsString(obj) || strcmp(obj->valuestring, "chat.completion") != 0)
    FAIL("invalid_output", "response is not a chat.completion");
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  const cJSON *choice = cJSON_IsArray(choices) ? choices->child : NULL;
  if (!cJSON_IsObject(choice)) FAIL("invalid_output", "response has no choices");
  const cJSON *message = cJSON_GetObjectItemCaseSensitive(choice, "message");
  if (!cJSON_IsObject(message)) FAIL("invalid_output", "choice has no message");
  const cJSON *refusal = cJSON_GetObjectItemCaseSensitive(message, "refusal");
  if (refusal && !cJSON_IsNull(refusal))
    FAIL("refused", "model refused: %.200s",
         cJSON_IsString(refusal) ? refusal->valuestring : "(no reason given)");
  const cJSON *finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
  const char *fr = cJSON_IsString(finish) ? finish->valuestring : "";
  if (!strcmp(fr, "length")) FAIL("truncated", "output truncated at the token limit");
  if (!strcmp(fr, "content_filter")) FAIL("content_filter", "output blocked by content filter");
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(message, "content");
  if (!cJSON_IsString(content)) FAIL("invalid_output", "message content is not a string");
  if (!(doc = cJSON_ParseWithOpts(content->valuestring, NULL, 1)))
    FAIL("invalid_output", "message content is not JSON");
  if (!(*out = validate_storyboard(doc, scenes, code, msg, msglen))) goto fail;
  cJSON_Delete(doc);
  cJSON_Delete(root);
  return 0;
fail:
  cJSON_Delete(doc);
  cJSON_Delete(root);
  return -1;
}
