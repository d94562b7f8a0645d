#ifndef GENQ_WORKER_STORYBOARD_H
#define GENQ_WORKER_STORYBOARD_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* The pure half of the storyboard step: the JSON schema the model must
 * follow, the chat-completion request body, and the parser/validator of the
 * answer. No I/O here (worker/openai.c does the HTTP call), so every branch
 * is unit-tested on literal bodies.
 *
 * A storyboard is {"title": string, "scenes": [{"index", "visual_prompt",
 * "narration", "duration_s"}]} with exactly the requested number of scenes. */

enum {
  STORYBOARD_MIN_SCENES = 1,
  STORYBOARD_MAX_SCENES = 12,
  STORYBOARD_DEFAULT_SCENES = 4,
  STORYBOARD_MAX_TITLE = 300,   /* bytes */
  STORYBOARD_MAX_TEXT = 2000,   /* bytes, visual_prompt and narration */
  STORYBOARD_MAX_DURATION = 60, /* seconds, duration_s in (0, 60] */
};

/* Scene count the input asks for: "scenes" when it is an integer in
 * 1..12, STORYBOARD_DEFAULT_SCENES when absent, -1 when present but invalid. */
int storyboard_scene_count(const cJSON *input);

/* The strict JSON schema for `scenes` scenes (1..12): every object has
 * additionalProperties false and lists every property in required; the scenes
 * array has minItems = maxItems = scenes. Caller owns the result (cJSON_Delete).
 * NULL on OOM or a scene count out of range. */
cJSON *storyboard_schema(int scenes);

/* The POST /chat/completions body for the job input {prompt, scenes?, style?,
 * aspect_ratio?}: a system and a user message, response_format json_schema
 * strict named "storyboard", and a max_completion_tokens bound that grows
 * with the scene count. Caller frees the string (cJSON_free). NULL when the
 * input has no string prompt, an invalid scene count, or on OOM. */
char *storyboard_request_body(const cJSON *input, const char *model);

/* Parses a chat.completion body (len bytes, need not be NUL-terminated) and
 * validates the storyboard in choices[0].message.content.
 *
 * On success returns 0 and *out is a new normalized storyboard (caller owns
 * it): keys in the order title, scenes; each scene index, visual_prompt,
 * narration, duration_s.
 *
 * Scene numbering: scenes keep their array order, and their indexes must be
 * exactly 1..N in that order. A model that numbered 0..N-1 in order is
 * accepted and renumbered to 1..N (a harmless off-by-one we see from models);
 * any other numbering (gaps, duplicates, out of order) is invalid_output.
 *
 * On failure returns -1, *out is NULL, *code is a static string and msg holds
 * a bounded human message:
 *   "refused"        message.refusal is non-null
 *   "truncated"      finish_reason "length"
 *   "content_filter" finish_reason "content_filter"
 *   "invalid_output" anything else: body not JSON, not a chat.completion, no
 *                    choices, content not a JSON string, storyboard invalid. */
int storyboard_parse_completion(const char *body, size_t len, int scenes, cJSON **out,
                                const char **code, char *msg, size_t msglen);

#endif
