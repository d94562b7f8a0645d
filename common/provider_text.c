/* provider_text.c — checks on text to and from providers (provider_text.h). */
#include "provider_text.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

void provider_scrub_secret(char *s, size_t cap, const char *secret) {
  static const char mask[] = "[redacted]";
  size_t klen = secret ? strlen(secret) : 0;
  char *p = s;
  if (klen < 4 || cap == 0) return;
  while ((p = strstr(p, secret))) {
    size_t tail = strlen(p + klen);
    size_t room = cap - (size_t)(p - s) - 1;
    size_t m = sizeof mask - 1 < room ? sizeof mask - 1 : room;
    if (tail > room - m) tail = room - m;
    memmove(p + m, p + klen, tail);
    memcpy(p, mask, m);
    p[m + tail] = '\0';
    p += m; /* past the mask: a secret that occurs in "[redacted]" cannot loop */
  }
}

int provider_id_ok(const char *s, size_t max) {
  size_t n = 0;
  for (; s[n]; n++)
    if (n >= max || !(isalnum((unsigned char)s[n]) || s[n] == '-' || s[n] == '_')) return 0;
  return n > 0;
}

int provider_url_ok(const char *s, size_t max) {
  size_t skip = !strncasecmp(s, "https://", 8) ? 8 : !strncasecmp(s, "http://", 7) ? 7 : 0;
  size_t n = 0;
  if (!skip) return 0;
  for (; s[n]; n++)
    if (n >= max || (unsigned char)s[n] <= 0x20 || s[n] == 0x7f) return 0;
  return n > skip;
}

cJSON *provider_json_object(const char *body, size_t len, size_t max) {
  const char *end = NULL;
  if (!body || len == 0 || len > max) return NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
  if (!root) return NULL;
  while (end && end < body + len && isspace((unsigned char)*end))
    end++;
  if (!cJSON_IsObject(root) || end != body + len) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

const char *provider_json_string(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

int provider_is_moderation(const char *s) {
  static const char *const words[] = {"moderat", "policy", "safety", "unsafe", "flagged", "nsfw"};
  if (!s) return 0;
  for (const char *p = s; *p; p++)
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
      if (!strncasecmp(p, words[i], strlen(words[i]))) return 1;
  return 0;
}
