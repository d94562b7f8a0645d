/* Job kinds and statuses, and validation of submissions.
 * Inputs are checked against one field table per kind and rebuilt from the
 * validated values, so what is stored holds only known keys with defaults
 * filled in, whatever else the client sent. */
#include "job.h"
#include "uuid.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const job_kind_names[JOB_KIND_COUNT] = {"storyboard", "image", "video",
                                                           "lipsync", "campaign"};
static const char *const job_status_names[JOB_STATUS_COUNT] = {"queued", "running", "succeeded",
                                                               "failed", "canceled"};

const char *job_kind_name(job_kind k) {
  return (unsigned)k < JOB_KIND_COUNT ? job_kind_names[k] : "unknown";
}

int job_kind_parse(const char *s, job_kind *out) {
  for (int i = 0; s && i < JOB_KIND_COUNT; i++)
    if (strcmp(s, job_kind_names[i]) == 0) {
      *out = (job_kind)i;
      return 0;
    }
  return -1;
}

int job_kind_runnable(job_kind k) {
  return (unsigned)k < JOB_KIND_COUNT; /* every kind has its provider clients */
}

const char *job_kind_first_step(job_kind k, const char **provider) {
  static const char *const first[JOB_KIND_COUNT][2] = {
      {"storyboard", "openai"}, {"image", "luma"},        {"video", "luma"},
      {"lipsync", "hedra"},     {"storyboard", "openai"},
  };
  if ((unsigned)k >= JOB_KIND_COUNT) return NULL;
  if (provider) *provider = first[k][1];
  return first[k][0];
}

const char *job_status_name(job_status s) {
  return (unsigned)s < JOB_STATUS_COUNT ? job_status_names[s] : "unknown";
}

int job_status_parse(const char *s, job_status *out) {
  for (int i = 0; s && i < JOB_STATUS_COUNT; i++)
    if (strcmp(s, job_status_names[i]) == 0) {
      *out = (job_status)i;
      return 0;
    }
  return -1;
}

int job_status_terminal(job_status s) {
  return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELED;
}

/* ---- validation ---- */

typedef struct {
  char *field;
  size_t fieldlen;
  char *msg;
  size_t msglen;
  const char *prefix; /* "input." or "" */
} verr;

static int fail(verr *e, const char *name, const char *fmt, ...) {
  if (e->field && e->fieldlen) snprintf(e->field, e->fieldlen, "%s%.64s", e->prefix, name);
  if (e->msg && e->msglen) {
    int n = snprintf(e->msg, e->msglen, "%s%.64s ", e->prefix, name);
    if (n < 0 || (size_t)n >= e->msglen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + n, e->msglen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* Sets field and message verbatim. */
static int set_err(verr *e, const char *field, const char *msg) {
  if (e->field && e->fieldlen) snprintf(e->field, e->fieldlen, "%s", field);
  if (e->msg && e->msglen) snprintf(e->msg, e->msglen, "%s", msg);
  return -1;
}

/* F_UPLOAD: an id of one of the user's uploads (schema/functions/media.sql,
 * genq_upload_fields, names the same fields); F_ID: any other id. */
typedef enum { F_PROMPT, F_SCENES, F_STYLE, F_ASPECT, F_DURATION, F_ID, F_UPLOAD } field_type;

typedef struct {
  const char *name;
  field_type type;
  int required;
} field_spec;

#define FIELDS_MAX 6
static const field_spec kind_fields[JOB_KIND_COUNT][FIELDS_MAX + 1] = {
    [JOB_STORYBOARD] = {{"prompt", F_PROMPT, 1},
                        {"scenes", F_SCENES, 0},
                        {"style", F_STYLE, 0},
                        {"aspect_ratio", F_ASPECT, 0}},
    [JOB_IMAGE] = {{"prompt", F_PROMPT, 1}, {"aspect_ratio", F_ASPECT, 0}},
    [JOB_VIDEO] = {{"prompt", F_PROMPT, 1},
                   {"aspect_ratio", F_ASPECT, 0},
                   {"duration", F_DURATION, 0},
                   {"keyframe_upload_id", F_UPLOAD, 0}},
    /* exactly one of the first two: checked after the table */
    [JOB_LIPSYNC] = {{"image_upload_id", F_UPLOAD, 0},
                     {"video_asset_id", F_ID, 0},
                     {"audio_upload_id", F_UPLOAD, 1}},
    [JOB_CAMPAIGN] = {{"prompt", F_PROMPT, 1},
                      {"scenes", F_SCENES, 0},
                      {"avatar_upload_id", F_UPLOAD, 1},
                      {"voice_upload_id", F_UPLOAD, 1},
                      {"aspect_ratio", F_ASPECT, 0},
                      {"style", F_STYLE, 0}},
};

static const char *const aspect_ratios[] = {"16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"};
static const char *const durations[] = {"5s", "9s"};

static int valid_utf8(const unsigned char *s) {
  while (*s) {
    unsigned c = *s;
    int n;
    unsigned min;
    if (c < 0x80) {
      s++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, min = 0x10000, c &= 0x07;
    } else {
      return 0;
    }
    for (int i = 1; i <= n; i++) {
      if ((s[i] & 0xc0) != 0x80) return 0;
      c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    s += n + 1;
  }
  return 1;
}

/* Free text: valid UTF-8, at most max bytes, no control characters but
 * newlines and tabs. Returns the trimmed copy, or NULL with e set. */
static char *check_text(verr *e, const char *name, const cJSON *it, size_t max, int required) {
  if (!cJSON_IsString(it)) return fail(e, name, "must be a string"), NULL;
  const char *s = it->valuestring;
  size_t len = strlen(s);
  if (len > max) return fail(e, name, "must be at most %zu bytes", max), NULL;
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f)
      return fail(e, name, "must not contain control characters"), NULL;
  }
  if (!valid_utf8((const unsigned char *)s)) return fail(e, name, "must be valid UTF-8"), NULL;
  while (len && isspace((unsigned char)s[len - 1]))
    len--;
  while (len && isspace((unsigned char)*s))
    s++, len--;
  if (required && len == 0) return fail(e, name, "must not be empty"), NULL;
  char *out = strndup(s, len);
  if (!out) fail(e, name, "could not be stored (out of memory)");
  return out;
}

static int one_of(const char *s, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, list[i]) == 0) return (int)i;
  return -1;
}

/* Every key of o must be one of names (NULL-terminated, at most
 * KEYS_KNOWN_MAX), each at most once. One pass over the keys with a bit per
 * name seen: the work is linear in the number of keys (a body may hold
 * ~100,000) and stops at the first offending key, which is named. kind, when
 * given, ends the message for an unknown key. */
#define KEYS_KNOWN_MAX 16
_Static_assert(FIELDS_MAX <= KEYS_KNOWN_MAX, "a field table must fit the seen-bits of check_keys");

static int check_keys(verr *e, const cJSON *o, const char *const *names, const char *kind) {
  unsigned seen = 0;
  for (const cJSON *it = o->child; it; it = it->next) {
    const char *key = it->string ? it->string : "";
    int i = 0;
    while (i < KEYS_KNOWN_MAX && names[i] && strcmp(names[i], key) != 0)
      i++;
    if (i == KEYS_KNOWN_MAX || !names[i])
      return kind ? fail(e, key, "is not a known field for kind %s", kind)
                  : fail(e, key, "is not a known field");
    if (seen & 1u << i) return fail(e, key, "appears more than once");
    seen |= 1u << i;
  }
  return 0;
}

/* Adds one validated field (or its default) to out. */
static int add_field(verr *e, const field_spec *f, const cJSON *it, cJSON *out) {
  cJSON *v = NULL;
  char *text = NULL;
  switch (f->type) {
  case F_PROMPT:
  case F_STYLE:
    text = check_text(e, f->name, it, f->type == F_PROMPT ? JOB_PROMPT_MAX : JOB_STYLE_MAX,
                      f->type == F_PROMPT);
    if (!text) return -1;
    if (f->type == F_STYLE && !*text) { /* a blank style means no style */
      free(text);
      return 0;
    }
    v = cJSON_CreateString(text);
    free(text);
    break;
  case F_SCENES:
    if (!it) {
      v = cJSON_CreateNumber(JOB_SCENES_DEFAULT);
      break;
    }
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= JOB_SCENES_MIN) ||
        !(it->valuedouble <= JOB_SCENES_MAX) || it->valuedouble != (int)it->valuedouble)
      return fail(e, f->name, "must be an integer between %d and %d", JOB_SCENES_MIN,
                  JOB_SCENES_MAX);
    v = cJSON_CreateNumber((int)it->valuedouble);
    break;
  case F_ASPECT:
    if (!it) {
      v = cJSON_CreateString(aspect_ratios[0]);
      break;
    }
    if (!cJSON_IsString(it) || one_of(it->valuestring, aspect_ratios, 7) < 0)
      return fail(e, f->name, "must be one of 16:9, 9:16, 1:1, 4:3, 3:4, 21:9, 9:21");
    v = cJSON_CreateString(it->valuestring);
    break;
  case F_DURATION:
    if (!it) {
      v = cJSON_CreateString(durations[0]);
      break;
    }
    if (!cJSON_IsString(it) || one_of(it->valuestring, durations, 2) < 0)
      return fail(e, f->name, "must be \"5s\" or \"9s\"");
    v = cJSON_CreateString(it->valuestring);
    break;
  case F_ID:
  case F_UPLOAD: {
    if (!cJSON_IsString(it) || !genq_is_uuid(it->valuestring))
      return fail(e, f->name, "must be an id (a UUID)");
    char id[37];
    for (int i = 0; i < 37; i++)
      id[i] = (char)tolower((unsigned char)it->valuestring[i]);
    v = cJSON_CreateString(id);
    break;
  }
  }
  if (!v || !cJSON_AddItemToObject(out, f->name, v)) {
    cJSON_Delete(v);
    return fail(e, f->name, "could not be stored (out of memory)");
  }
  return 0;
}

static int validate_input(job_kind k, const cJSON *in, cJSON **out, verr *e) {
  *out = NULL;
  if ((unsigned)k >= JOB_KIND_COUNT)
    return set_err(e, *e->prefix ? "kind" : "",
                   "kind must be one of storyboard, image, video, lipsync, campaign");
  if (!cJSON_IsObject(in)) /* the whole input is the offending field */
    return set_err(e, *e->prefix ? "input" : "", "input must be a JSON object");
  const char *names[FIELDS_MAX + 1] = {0};
  for (int i = 0; kind_fields[k][i].name; i++)
    names[i] = kind_fields[k][i].name;
  if (check_keys(e, in, names, job_kind_names[k]) < 0) return -1;

  cJSON *o = cJSON_CreateObject();
  if (!o) return set_err(e, "", "out of memory");
  for (const field_spec *f = kind_fields[k]; f->name; f++) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(in, f->name);
    if (!it && f->required) {
      fail(e, f->name, "is required");
      goto bad;
    }
    if (!it &&
        (f->type == F_PROMPT || f->type == F_STYLE || f->type == F_ID || f->type == F_UPLOAD))
      continue;
    if (add_field(e, f, it, o) < 0) goto bad;
  }
  if (k == JOB_LIPSYNC) {
    int img = cJSON_HasObjectItem(o, "image_upload_id");
    int vid = cJSON_HasObjectItem(o, "video_asset_id");
    if (!img && !vid) {
      fail(e, "image_upload_id", "or %svideo_asset_id is required", e->prefix);
      goto bad;
    }
    if (img && vid) {
      fail(e, "video_asset_id", "cannot be given together with %simage_upload_id", e->prefix);
      goto bad;
    }
  }
  *out = o;
  return 0;
bad:
  cJSON_Delete(o);
  return -1;
}

const char *job_kind_field(job_kind k, int i, int *names_upload) {
  if ((unsigned)k >= JOB_KIND_COUNT || i < 0 || i >= FIELDS_MAX) return NULL;
  const field_spec *f = &kind_fields[k][i];
  if (f->name && names_upload) *names_upload = f->type == F_UPLOAD;
  return f->name;
}

int job_input_validate(job_kind k, const cJSON *input, cJSON **out, char *field, size_t fieldlen,
                       char *msg, size_t msglen) {
  verr e = {field, fieldlen, msg, msglen, ""};
  return validate_input(k, input, out, &e);
}

static int check_webhook_url(verr *e, const cJSON *it, char **out) {
  if (!cJSON_IsString(it)) return fail(e, "webhook_url", "must be a string");
  const char *s = it->valuestring;
  size_t len = strlen(s);
  const char *host = strncmp(s, "https://", 8) == 0  ? s + 8
                     : strncmp(s, "http://", 7) == 0 ? s + 7
                                                     : NULL;
  if (len > JOB_WEBHOOK_URL_MAX)
    return fail(e, "webhook_url", "must be at most %d bytes", JOB_WEBHOOK_URL_MAX);
  if (!host || !*host || *host == '/' || *host == '?' || *host == '#')
    return fail(e, "webhook_url", "must be an http:// or https:// URL");
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return fail(e, "webhook_url", "must not contain spaces or control characters");
  if (!(*out = strdup(s))) return fail(e, "webhook_url", "could not be stored (out of memory)");
  return 0;
}

/* cJSON would decode \u0000 and silently cut the string there. Outside
 * strings valid JSON has no backslash, so a plain scan is exact. */
static int has_nul_escape(const char *s, size_t len) {
  for (size_t i = 0; i + 1 < len; i++) {
    if (s[i] != '\\') continue;
    if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0) return 1;
    i++; /* the escaped character */
  }
  return 0;
}

int job_submission_parse(const char *body, size_t len, job_submission *out, char *field,
                         size_t fieldlen, char *msg, size_t msglen) {
  verr e = {field, fieldlen, msg, msglen, ""};
  memset(out, 0, sizeof *out);
  const char *end = NULL;
  cJSON *root = body && len ? cJSON_ParseWithLengthOpts(body, len, &end, 0) : NULL;
  if (root) /* only whitespace may follow the value */
    for (; end < body + len; end++)
      if (!isspace((unsigned char)*end)) {
        cJSON_Delete(root);
        root = NULL;
        break;
      }
  if (!root) return set_err(&e, "", "body is not valid JSON"), JOB_ERR_JSON;
  if (has_nul_escape(body, len)) {
    set_err(&e, "", "body must not contain \\u0000");
    goto bad;
  }
  if (!cJSON_IsObject(root)) {
    set_err(&e, "", "body must be a JSON object");
    cJSON_Delete(root);
    return JOB_ERR_JSON;
  }
  static const char *const root_names[] = {"kind", "input", "webhook_url", NULL};
  if (check_keys(&e, root, root_names, NULL) < 0) goto bad;
  const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
  if (!kind) {
    fail(&e, "kind", "is required");
    goto bad;
  }
  if (!cJSON_IsString(kind) || job_kind_parse(kind->valuestring, &out->kind) < 0) {
    fail(&e, "kind", "must be one of storyboard, image, video, lipsync, campaign");
    goto bad;
  }
  const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
  if (!input) {
    fail(&e, "input", "is required");
    goto bad;
  }
  e.prefix = "input.";
  if (validate_input(out->kind, input, &out->input, &e) < 0) goto bad;
  e.prefix = "";
  const cJSON *hook = cJSON_GetObjectItemCaseSensitive(root, "webhook_url");
  if (hook && check_webhook_url(&e, hook, &out->webhook_url) < 0) goto bad;
  cJSON_Delete(root);
  return 0;
bad:
  cJSON_Delete(root);
  job_submission_free(out);
  return -1;
}

void job_submission_free(job_submission *s) {
  if (!s) return;
  cJSON_Delete(s->input);
  free(s->webhook_url);
  memset(s, 0, sizeof *s);
}
