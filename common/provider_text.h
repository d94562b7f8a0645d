#ifndef GENQ_PROVIDER_TEXT_H
#define GENQ_PROVIDER_TEXT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* What every provider client (worker/openai.c, luma.c, hedra.c) checks
 * about the text it sends and receives: ids that go into URL paths, URLs it
 * is told to fetch, bodies that must be exactly one JSON object, API keys a
 * provider might echo back into an error message, and the words by which a
 * refusal or failure is moderation. */

/* Replaces every occurrence of secret (4 bytes or more) in s with
 * "[redacted]", in place, within cap bytes. */
void provider_scrub_secret(char *s, size_t cap, const char *secret);
/* 1 for 1..max bytes of [A-Za-z0-9_-]: safe in a URL path segment. */
int provider_id_ok(const char *s, size_t max);
/* 1 for an absolute http(s) URL of at most max bytes without spaces or
 * control characters. */
int provider_url_ok(const char *s, size_t max);
/* Parses exactly body[0..len), len at most max: one JSON object and nothing
 * but whitespace after it (cJSON alone accepts trailing garbage). NULL
 * otherwise. */
cJSON *provider_json_object(const char *body, size_t len, size_t max);
/* The string member name of o, or NULL. */
const char *provider_json_string(const cJSON *o, const char *name);
/* 1 if s (NULL: 0) speaks of moderation, content policy, safety or flagged
 * content, in any case. */
int provider_is_moderation(const char *s);

#endif
