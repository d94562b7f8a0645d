/* Schema-driven JSON filler and OpenAI strict-schema checks (see provsim.h). */
#include "provsim.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FILL_MAX_DEPTH 32    /* $ref cycles and deep schemas stop here */
#define FILL_MAX_NODES 20000 /* whole document; arrays stop growing beyond */
#define FILL_MAX_ITEMS 100   /* per array, whatever minItems says */
#define SNIPPET_MAX 60

typedef struct {
  const cJSON *root;
  char topic[SNIPPET_MAX + 1]; /* short subject taken from the prompt */
  int nodes;
} fillctx;

/* The subject of the prompt: the text after "Brief:" when present (genq's own
 * prompts), else the first line; cut at a character boundary. */
static void make_topic(fillctx *fc, const char *prompt) {
  const char *p = prompt ? prompt : "";
  const char *b = strstr(p, "Brief:");
  if (b) p = b + 6;
  while (*p == ' ' || *p == '\n' || *p == '\t')
    p++;
  size_t n = strcspn(p, "\r\n");
  if (n > SNIPPET_MAX) {
    n = SNIPPET_MAX;
    while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
      n--;
  }
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '.'))
    n--;
  if (n == 0) p = "your product", n = strlen(p);
  memcpy(fc->topic, p, n);
  fc->topic[n] = '\0';
}

static const cJSON *resolve_ref(const fillctx *fc, const cJSON *s) {
  const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
  if (!cJSON_IsString(ref)) return s;
  const char *r = ref->valuestring;
  if (!strcmp(r, "#")) return fc->root;
  static const char *const prefixes[] = {"#/$defs/", "#/definitions/"};
  for (int i = 0; i < 2; i++) {
    size_t pl = strlen(prefixes[i]);
    if (!strncmp(r, prefixes[i], pl)) {
      const cJSON *defs = cJSON_GetObjectItemCaseSensitive(fc->root, i ? "definitions" : "$defs");
      const cJSON *d = cJSON_GetObjectItemCaseSensitive(defs, r + pl);
      return d ? d : s;
    }
  }
  return s;
}

/* The first non-null type a schema names, guessed from its keywords when it
 * names none. */
static const char *schema_type(const cJSON *s) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
  if (cJSON_IsString(t)) return t->valuestring;
  if (cJSON_IsArray(t)) {
    const cJSON *e;
    cJSON_ArrayForEach(e, t) if (cJSON_IsString(e) &&
                                 strcmp(e->valuestring, "null") != 0) return e->valuestring;
    return "null";
  }
  if (cJSON_GetObjectItemCaseSensitive(s, "properties")) return "object";
  if (cJSON_GetObjectItemCaseSensitive(s, "items")) return "array";
  return "string";
}

static double num_kw(const cJSON *s, const char *k, double dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, k);
  return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static int name_has(const char *name, const char *word) {
  return name && strstr(name, word) != NULL;
}

static void fill_text(const fillctx *fc, const cJSON *s, const char *name, int pos, char *out,
                      size_t cap) {
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
  const char *f = cJSON_IsString(fmt) ? fmt->valuestring : "";
  if (!strcmp(f, "date-time")) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
  } else if (!strcmp(f, "date")) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, cap, "%Y-%m-%d", &tm);
  } else if (!strcmp(f, "uri")) {
    snprintf(out, cap, "https://example.com/provsim/%d", pos);
  } else if (!strcmp(f, "email")) {
    snprintf(out, cap, "provsim@example.com");
  } else if (!strcmp(f, "uuid")) {
    snprintf(out, cap, "00000000-0000-4000-8000-%012d", pos);
  } else if (name_has(name, "title") || name_has(name, "headline")) {
    snprintf(out, cap, "%s: The Story", fc->topic);
    out[0] = (char)toupper((unsigned char)out[0]);
  } else if (name_has(name, "visual") || name_has(name, "prompt") || name_has(name, "shot")) {
    snprintf(out, cap,
             "Scene %d: cinematic shot of %s, soft natural light, shallow depth of field, slow "
             "dolly-in",
             pos ? pos : 1, fc->topic);
  } else if (name_has(name, "narration") || name_has(name, "voice") || name_has(name, "script") ||
             name_has(name, "caption")) {
    snprintf(out, cap, "Scene %d. Discover %s, made for the way you live.", pos ? pos : 1,
             fc->topic);
  } else if (name_has(name, "description") || name_has(name, "summary")) {
    snprintf(out, cap, "A short film about %s.", fc->topic);
  } else {
    snprintf(out, cap, "%s for %s", name ? name : "text", fc->topic);
  }
  /* Honour maxLength and minLength (in bytes; the filler writes ASCII
   * around the prompt's words, cut on character boundaries). */
  double maxl = num_kw(s, "maxLength", -1), minl = num_kw(s, "minLength", 0);
  size_t n = strlen(out);
  if (maxl >= 0 && n > (size_t)maxl) {
    n = (size_t)maxl;
    while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80)
      n--;
    out[n] = '\0';
  }
  while (minl > 0 && n < (size_t)minl && n + 1 < cap)
    out[n++] = '.', out[n] = '\0';
}

static double clamp_number(const cJSON *s, double v, int integer) {
  double lo = num_kw(s, "minimum", -INFINITY), hi = num_kw(s, "maximum", INFINITY);
  const cJSON *xlo = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum");
  const cJSON *xhi = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum");
  double step = integer ? 1 : 0.5;
  if (cJSON_IsNumber(xlo) && xlo->valuedouble + step > lo) lo = xlo->valuedouble + step;
  if (cJSON_IsNumber(xhi) && xhi->valuedouble - step < hi) hi = xhi->valuedouble - step;
  if (integer) lo = ceil(lo), hi = floor(hi);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

static cJSON *fill(fillctx *fc, const cJSON *s, const char *name, int pos, int depth) {
  if (depth > FILL_MAX_DEPTH || ++fc->nodes > FILL_MAX_NODES) return cJSON_CreateNull();
  s = resolve_ref(fc, s);
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, "const");
  if (c) return cJSON_Duplicate(c, 1);
  const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
  if (cJSON_IsArray(en) && en->child) return cJSON_Duplicate(en->child, 1);
  const cJSON *any = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
  if (!any) any = cJSON_GetObjectItemCaseSensitive(s, "oneOf");
  if (cJSON_IsArray(any) && any->child) {
    const cJSON *pick = any->child, *e;
    cJSON_ArrayForEach(e, any) if (strcmp(schema_type(resolve_ref(fc, e)), "null") != 0) {
      pick = e;
      break;
    }
    return fill(fc, pick, name, pos, depth + 1);
  }

  const char *t = schema_type(s);
  if (!strcmp(t, "object")) {
    cJSON *o = cJSON_CreateObject();
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties"), *p;
    cJSON_ArrayForEach(p, props) {
      cJSON *v = fill(fc, p, p->string, pos, depth + 1);
      if (!v || !cJSON_AddItemToObject(o, p->string, v)) {
        cJSON_Delete(v);
        cJSON_Delete(o);
        return NULL;
      }
    }
    return o;
  }
  if (!strcmp(t, "array")) {
    double lo = num_kw(s, "minItems", 1), hi = num_kw(s, "maxItems", 3);
    int n = lo > 2 ? (int)fmin(lo, FILL_MAX_ITEMS) : (int)fmin(2, fmax(hi, lo));
    if (n < 0) n = 0;
    cJSON *a = cJSON_CreateArray();
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    for (int i = 0; a && i < n && fc->nodes < FILL_MAX_NODES; i++) {
      cJSON *v = fill(fc, items, name, i + 1, depth + 1);
      if (!v || !cJSON_AddItemToArray(a, v)) {
        cJSON_Delete(v);
        cJSON_Delete(a);
        return NULL;
      }
    }
    return a;
  }
  if (!strcmp(t, "integer")) {
    double v = name_has(name, "index") || name_has(name, "number") || name_has(name, "position")
                   ? (pos ? pos : 1)
               : name_has(name, "duration") ? 5
                                            : 1;
    return cJSON_CreateNumber(clamp_number(s, v, 1));
  }
  if (!strcmp(t, "number")) {
    double v = name_has(name, "duration") ? 4 + (pos % 3) : 1.5;
    return cJSON_CreateNumber(clamp_number(s, v, 0));
  }
  if (!strcmp(t, "boolean")) return cJSON_CreateTrue();
  if (!strcmp(t, "null")) return cJSON_CreateNull();
  char text[512];
  fill_text(fc, s, name, pos, text, sizeof text);
  return cJSON_CreateString(text);
}

cJSON *schemafill_generate(const cJSON *schema, const char *prompt) {
  fillctx fc = {.root = schema};
  make_topic(&fc, prompt);
  return fill(&fc, schema, NULL, 0, 0);
}

/* ---- strict mode ------------------------------------------------------- */

typedef struct {
  const char *name;
  char *msg;
  size_t msglen;
  char ctx[256]; /* OpenAI reports where: context=('properties', 'scenes', 'items') */
} strictctx;

static int strict_fail(strictctx *sc, const char *what) {
  snprintf(sc->msg, sc->msglen, "Invalid schema for response_format '%.64s': In context=(%s), %s",
           sc->name, sc->ctx, what);
  return -1;
}

static int check(strictctx *sc, const cJSON *s, int depth);

/* Descends into s[key] (and, for maps, every member), extending the context. */
static int check_child(strictctx *sc, const cJSON *s, const char *key, int map, int depth) {
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, key), *e;
  if (!c) return 0;
  size_t saved = strlen(sc->ctx);
  int rc = 0;
  if (map || cJSON_IsArray(c)) {
    int i = 0;
    for (e = c->child; e && rc == 0; e = e->next, i++) {
      if (map)
        snprintf(sc->ctx + saved, sizeof sc->ctx - saved, "%s'%s', '%.40s'", saved ? ", " : "", key,
                 e->string);
      else
        snprintf(sc->ctx + saved, sizeof sc->ctx - saved, "%s'%s', '%d'", saved ? ", " : "", key,
                 i);
      rc = check(sc, e, depth + 1);
    }
  } else {
    snprintf(sc->ctx + saved, sizeof sc->ctx - saved, "%s'%s'", saved ? ", " : "", key);
    rc = check(sc, c, depth + 1);
  }
  if (rc == 0) sc->ctx[saved] = '\0';
  return rc;
}

static int check(strictctx *sc, const cJSON *s, int depth) {
  if (!cJSON_IsObject(s)) return 0;
  if (depth > FILL_MAX_DEPTH) return strict_fail(sc, "the schema is nested too deeply.");
  const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
  int is_object = cJSON_IsObject(props) || (cJSON_IsString(t) && !strcmp(t->valuestring, "object"));
  const cJSON *e;
  cJSON_ArrayForEach(e, t) if (cJSON_IsString(e) && !strcmp(e->valuestring, "object")) is_object =
      1;
  if (is_object) {
    if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "additionalProperties")))
      return strict_fail(sc, "'additionalProperties' is required to be supplied and to be false.");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required"), *p;
    cJSON_ArrayForEach(p, props) {
      int found = 0;
      cJSON_ArrayForEach(e, req) found |= cJSON_IsString(e) && !strcmp(e->valuestring, p->string);
      if (!found) {
        char what[160];
        snprintf(what, sizeof what,
                 "'required' is required to be supplied and to be an array including every key "
                 "in properties. Missing '%.40s'.",
                 p->string);
        return strict_fail(sc, what);
      }
    }
  }
  if (check_child(sc, s, "properties", 1, depth) || check_child(sc, s, "items", 0, depth) ||
      check_child(sc, s, "anyOf", 0, depth) || check_child(sc, s, "$defs", 1, depth) ||
      check_child(sc, s, "definitions", 1, depth))
    return -1;
  return 0;
}

int schemafill_check_strict(const cJSON *schema, const char *name, char *msg, size_t msglen) {
  strictctx sc = {.name = name ? name : "", .msg = msg, .msglen = msglen};
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(schema, "type");
  if (!cJSON_IsObject(schema) || !cJSON_IsString(t) || strcmp(t->valuestring, "object") != 0) {
    snprintf(msg, msglen,
             "Invalid schema for response_format '%.64s': schema must be a JSON Schema of 'type: "
             "\"object\"'.",
             sc.name);
    return -1;
  }
  return check(&sc, schema, 0);
}
