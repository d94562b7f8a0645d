/* Simulated Luma AI Dream Machine under /luma/dream-machine/v1 (see
 * provsim.h and PROVIDERS.md): video and image generations, get, list,
 * delete, credits, ping. A generation's state is computed from the clock when
 * it is read: queued for the first fifth of its duration, dreaming until the
 * end, then completed (or failed), so no timer runs per generation.
 *
 * Test hooks in the prompt:
 *   provsim:moderation  ends failed, failure_reason naming moderation
 *   provsim:fail        ends failed with an internal (non-moderation) reason
 *   provsim:error500    the create answers 500 and creates nothing
 *   provsim:slow        takes ten times the configured duration
 * PROVSIM_LUMA_MODERATION_RATE and PROVSIM_LUMA_FAIL_RATE (faults.c) end a
 * generation as the first two hooks do.
 * Every generation created counts as luma.creates and in
 * luma.creates_by_prompt[prompt] (prompts over LU_MAX_PROMPT_KEY bytes are
 * counted as "sha256:<hex>"), as the real service would bill it.
 *
 * A create with a callback_url gets the Generation POSTed there when it
 * starts dreaming and when it ends: sim_callback.c sends them, asking here
 * when each is due and what the generation is by then. */
#include "provsim.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "uuid.h"

#define LU_BASE "/dream-machine/v1"
#define LU_DEFAULT_VIDEO_MS 10000
#define LU_DEFAULT_IMAGE_MS 4000
#define LU_MAX_MS 3600000u
#define LU_MAX_GENERATIONS 100000 /* beyond, the oldest finished one goes */
#define LU_MAX_BODY (64u << 10)   /* a create is a prompt and a few URLs */
#define LU_MAX_PROMPT_KEY 4096
#define LU_CREDIT_BALANCE 1000000
#define LU_MODERATION_REASON "Prompt not allowed because it failed moderation"
#define LU_ERROR_REASON "Internal generation error"

typedef enum { LG_VIDEO, LG_IMAGE, LG_FROM_BODY } lg_type; /* LG_FROM_BODY: generation_type */
typedef enum { LG_COMPLETES, LG_FAILS_MODERATION, LG_FAILS_INTERNALLY } lg_outcome;

typedef struct {
  simtab_node node;
  char id[37];
  lg_type type;
  lg_outcome outcome;
  const char *model;  /* static: one of the allowed names */
  const char *ext;    /* the asset's extension: mp4, jpg or png */
  long long wall_ms;  /* created, for created_at */
  long long mono_ms;  /* created, for the state */
  long long total_ms; /* from creation to the end state */
  cJSON *request;     /* the body as sent */
} luma_gen;

typedef struct {
  unsigned video_ms, image_ms;
  simtab gens;
  simcb *callbacks;         /* the sender of create's callback_url POSTs */
  long long peak;           /* most generations in flight at once (in_flight_peak) */
  long long limited_until;  /* mono ms: creates answer 429 until then (/_sim/luma/rate_limit) */
  unsigned limited_retry_s; /* their Retry-After */
} luma_state;

static const char *const video_models[] = {"ray-2", "ray-flash-2", NULL};
static const char *const image_models[] = {"photon-1", "photon-flash-1", NULL};
static const char *const aspect_ratios[] = {"1:1", "16:9", "9:16", "4:3",
                                            "3:4", "21:9", "9:21", NULL};
static const char *const durations[] = {"5s", "9s", NULL};
static const char *const resolutions[] = {"540p", "720p", "1080p", "4k", NULL};
static const char *const formats[] = {"jpg", "png", NULL};

/* ---- generations ----------------------------------------------------- */

static void gen_free(luma_gen *g) {
  cJSON_Delete(g->request);
  free(g);
}

static int gen_finished(const luma_gen *g, long long now) {
  return now - g->mono_ms >= g->total_ms;
}

static const char *gen_state(const luma_gen *g, long long now) {
  long long t = now - g->mono_ms;
  if (t >= g->total_ms) return g->outcome == LG_COMPLETES ? "completed" : "failed";
  return t < g->total_ms / 5 ? "queued" : "dreaming";
}

static long long in_flight(void *arg) {
  const luma_state *ls = arg;
  long long now = sim_mono_ms(), n = 0;
  for (const simtab_node *p = ls->gens.oldest; p; p = p->newer)
    n += !gen_finished(SIMTAB_ENTRY(p, const luma_gen, node), now);
  return n;
}

static long long in_flight_peak(void *arg) {
  return ((const luma_state *)arg)->peak;
}

/* The Generation object; NULL on OOM. */
static cJSON *gen_json(const provsim *ps, http_request *req, const luma_gen *g) {
  long long now = sim_mono_ms();
  const char *state = gen_state(g, now);
  char created[32], origin[300], url[400];
  sim_rfc3339(g->wall_ms, created);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", g->id);
  cJSON_AddStringToObject(o, "generation_type", g->type == LG_VIDEO ? "video" : "image");
  cJSON_AddStringToObject(o, "state", state);
  if (!strcmp(state, "failed"))
    cJSON_AddStringToObject(o, "failure_reason",
                            g->outcome == LG_FAILS_MODERATION ? LU_MODERATION_REASON
                                                              : LU_ERROR_REASON);
  else
    cJSON_AddNullToObject(o, "failure_reason");
  cJSON_AddStringToObject(o, "created_at", created);
  if (!strcmp(state, "completed") && sim_origin(ps, req, origin, sizeof origin) == 0) {
    cJSON *assets = cJSON_AddObjectToObject(o, "assets");
    snprintf(url, sizeof url, "%s/files/%s.%s", origin, g->id, g->ext);
    cJSON_AddStringToObject(assets, g->type == LG_VIDEO ? "video" : "image", url);
    if (g->type == LG_VIDEO) {
      snprintf(url, sizeof url, "%s/files/%s-progress.mp4", origin, g->id);
      cJSON_AddStringToObject(assets, "progress_video", url);
    }
  } else {
    cJSON_AddNullToObject(o, "assets");
  }
  cJSON_AddStringToObject(o, "model", g->model);
  cJSON_AddItemToObject(o, "request", cJSON_Duplicate(g->request, 1));
  if (!cJSON_GetObjectItemCaseSensitive(o, "request")) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* ---- answers --------------------------------------------------------- */

/* Luma's error shape: {"detail": "..."}. */
static void lu_detail(provsim *ps, http_request *req, int status, const char *const *headers,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void lu_detail(provsim *ps, http_request *req, int status, const char *const *headers,
                      const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "detail", message);
  char *body = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!body) {
    provsim_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  provsim_reply(ps, req, -1, status, "application/json", headers, body, strlen(body));
  cJSON_free(body);
}

/* Sends o (consumed) as JSON with status. */
static void lu_json(provsim *ps, http_request *req, int status, cJSON *o) {
  char *body = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!body) {
    lu_detail(ps, req, 500, NULL, "genq-provsim ran out of memory");
    return;
  }
  provsim_reply(ps, req, -1, status, "application/json", NULL, body, strlen(body));
  cJSON_free(body);
}

/* ---- validation ------------------------------------------------------ */

/* The allowed value equal to s (a static string), or NULL. */
static const char *one_of(const char *s, const char *const *allowed) {
  for (int i = 0; allowed[i]; i++)
    if (!strcmp(s, allowed[i])) return allowed[i];
  return NULL;
}

static void join(const char *const *allowed, char *out, size_t n) {
  size_t w = 0;
  out[0] = '\0';
  for (int i = 0; allowed[i] && w < n; i++)
    w += (size_t)snprintf(out + w, n - w, "%s'%s'", i ? ", " : "", allowed[i]);
}

/* Checks the optional (or, when required, mandatory) string field against
 * allowed. Returns the static allowed value, "" when absent and optional, or
 * NULL after writing why into msg. */
static const char *check_enum(const cJSON *root, const char *field, const char *const *allowed,
                              int required, char *msg, size_t n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, field);
  char list[200];
  join(allowed, list, sizeof list);
  if (!v || cJSON_IsNull(v)) {
    if (!required) return "";
    snprintf(msg, n, "Invalid request: '%s' is required; expected one of %s", field, list);
    return NULL;
  }
  const char *hit = cJSON_IsString(v) ? one_of(v->valuestring, allowed) : NULL;
  if (!hit) {
    if (cJSON_IsString(v))
      snprintf(msg, n, "Invalid request: %s '%.60s' is not supported; expected one of %s", field,
               v->valuestring, list);
    else
      snprintf(msg, n, "Invalid request: '%s' must be a string, one of %s", field, list);
  }
  return hit;
}

static int http_url(const char *s) {
  return (!strncmp(s, "https://", 8) && s[8]) || (!strncmp(s, "http://", 7) && s[7]);
}

/* An optional http(s) URL field. Returns 0, or -1 with msg. */
static int check_url(const cJSON *root, const char *field, char *msg, size_t n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, field);
  if (!v || cJSON_IsNull(v)) return 0;
  if (cJSON_IsString(v) && http_url(v->valuestring)) return 0;
  snprintf(msg, n, "Invalid request: '%s' must be an http or https URL", field);
  return -1;
}

/* keyframes: {frame0?, frame1?}, each {"type": "image", "url"} or
 * {"type": "generation", "id"}. Returns 0, or -1 with msg. */
static int check_keyframes(const cJSON *kf, char *msg, size_t n) {
  if (!kf || cJSON_IsNull(kf)) return 0;
  if (!cJSON_IsObject(kf)) {
    snprintf(msg, n, "Invalid request: 'keyframes' must be an object with frame0 and/or frame1");
    return -1;
  }
  const cJSON *f;
  cJSON_ArrayForEach(f, kf) {
    if (strcmp(f->string, "frame0") != 0 && strcmp(f->string, "frame1") != 0) {
      snprintf(msg, n, "Invalid request: keyframes.%.40s is not a keyframe; use frame0 or frame1",
               f->string);
      return -1;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(f, "type");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(f, "url");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(f, "id");
    if (!cJSON_IsObject(f) || !cJSON_IsString(type)) {
      snprintf(msg, n, "Invalid request: keyframes.%s must be an object with a 'type'", f->string);
      return -1;
    }
    if (!strcmp(type->valuestring, "image")) {
      if (!cJSON_IsString(url) || !http_url(url->valuestring)) {
        snprintf(msg, n, "Invalid request: keyframes.%s.url must be an http or https URL",
                 f->string);
        return -1;
      }
    } else if (!strcmp(type->valuestring, "generation")) {
      if (!cJSON_IsString(id) || !genq_is_uuid(id->valuestring)) {
        snprintf(msg, n, "Invalid request: keyframes.%s.id must be a generation id (a UUID)",
                 f->string);
        return -1;
      }
    } else {
      snprintf(msg, n,
               "Invalid request: keyframes.%s.type '%.40s' is not supported; expected 'image' "
               "or 'generation'",
               f->string, type->valuestring);
      return -1;
    }
  }
  return 0;
}

/* Checks a create body. Returns the model (static) and sets *ext, or NULL
 * with msg. */
static const char *check_create(const cJSON *root, lg_type type, const char **ext, char *msg,
                                size_t n) {
  const cJSON *gt = cJSON_GetObjectItemCaseSensitive(root, "generation_type");
  const char *want = type == LG_VIDEO ? "video" : "image";
  if (gt && !cJSON_IsNull(gt) && (!cJSON_IsString(gt) || strcmp(gt->valuestring, want) != 0)) {
    snprintf(msg, n, "Invalid request: 'generation_type' must be '%s' here", want);
    return NULL;
  }
  const char *model =
      check_enum(root, "model", type == LG_VIDEO ? video_models : image_models, 1, msg, n);
  if (!model) return NULL;
  const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
  if (!cJSON_IsString(prompt) || !prompt->valuestring[0]) {
    snprintf(msg, n, "Invalid request: 'prompt' is required and must be a non-empty string");
    return NULL;
  }
  if (!check_enum(root, "aspect_ratio", aspect_ratios, 0, msg, n)) return NULL;
  if (check_url(root, "callback_url", msg, n) < 0) return NULL;
  if (type == LG_IMAGE) {
    const char *format = check_enum(root, "format", formats, 0, msg, n);
    if (!format) return NULL;
    *ext = *format ? format : "jpg";
    return model;
  }
  *ext = "mp4";
  if (!check_enum(root, "duration", durations, 0, msg, n) ||
      !check_enum(root, "resolution", resolutions, 0, msg, n))
    return NULL;
  const cJSON *loop = cJSON_GetObjectItemCaseSensitive(root, "loop");
  if (loop && !cJSON_IsNull(loop) && !cJSON_IsBool(loop)) {
    snprintf(msg, n, "Invalid request: 'loop' must be a boolean");
    return NULL;
  }
  if (check_keyframes(cJSON_GetObjectItemCaseSensitive(root, "keyframes"), msg, n) < 0) return NULL;
  return model;
}

/* ---- callbacks (sent by sim_callback.c) ------------------------------ */

static luma_gen *gen_by_id(provsim *ps, const char *id) {
  simtab_node *n = simtab_get(&((luma_state *)ps->luma)->gens, id);
  return n ? SIMTAB_ENTRY(n, luma_gen, node) : NULL;
}

/* simcb_due_fn: callback 0 when the generation starts dreaming, 1 when it
 * ends, no other. */
static long long cb_due(void *arg, const char *id, int n) {
  const luma_gen *g = gen_by_id(arg, id);
  if (!g || n > 1) return -1;
  return g->mono_ms + (n ? g->total_ms : g->total_ms / 5);
}

/* simcb_body_fn: the Generation as a GET would answer it. */
static char *cb_body(void *arg, const char *id, int *gone) {
  const luma_gen *g = gen_by_id(arg, id);
  if (!g) {
    *gone = 1;
    return NULL;
  }
  cJSON *o = gen_json(arg, NULL, g);
  char *body = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return body;
}

/* Schedules g's callbacks when its create asked for them. */
static void cb_schedule(const luma_state *ls, const luma_gen *g, const cJSON *request) {
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(request, "callback_url");
  if (cJSON_IsString(u)) simcb_schedule(ls->callbacks, g->id, u->valuestring);
}

void sim_luma_stop(provsim *ps) {
  const luma_state *ls = ps->luma;
  if (ls) simcb_stop(ls->callbacks);
}

/* ---- endpoints ------------------------------------------------------- */

/* Makes room for one more generation: drops the oldest finished one when
 * the table is full. Returns 0, or -1 when every generation is running. */
static int make_room(luma_state *ls) {
  if (ls->gens.count < LU_MAX_GENERATIONS) return 0;
  long long now = sim_mono_ms();
  for (simtab_node *p = ls->gens.oldest; p; p = p->newer) {
    luma_gen *g = SIMTAB_ENTRY(p, luma_gen, node);
    if (gen_finished(g, now)) {
      simtab_remove(&ls->gens, p);
      gen_free(g);
      return 0;
    }
  }
  return -1;
}

/* Counts a create that took effect, and its lost answer when a fault will
 * spoil it (under the same key). */
static void count_create(provsim *ps, const http_request *req, const char *prompt) {
  simstats_incr(ps->stats, "luma", "creates", NULL);
  if (strlen(prompt) <= LU_MAX_PROMPT_KEY) {
    simstats_incr(ps->stats, "luma", "creates_by_prompt", prompt);
    simfaults_created(ps, req, prompt);
    return;
  }
  unsigned char d[SHA256_DIGEST_LENGTH];
  char key[8 + 2 * SHA256_DIGEST_LENGTH] = "sha256:";
  SHA256((const unsigned char *)prompt, strlen(prompt), d);
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++)
    snprintf(key + 7 + 2 * i, 3, "%02x", d[i]);
  simstats_incr(ps->stats, "luma", "creates_by_prompt", key);
  simfaults_created(ps, req, key);
}

/* The prompt's hook, else PROVSIM_LUMA_MODERATION_RATE / _FAIL_RATE. */
static lg_outcome pick_outcome(provsim *ps, const char *prompt) {
  if (strstr(prompt, "provsim:moderation")) return LG_FAILS_MODERATION;
  if (strstr(prompt, "provsim:fail")) return LG_FAILS_INTERNALLY;
  switch (simfaults_outcome(ps, SIM_LUMA)) {
  case SIMOUTCOME_MODERATION:
    return LG_FAILS_MODERATION;
  case SIMOUTCOME_FAIL:
    return LG_FAILS_INTERNALLY;
  default:
    return LG_COMPLETES;
  }
}

static void create(provsim *ps, http_request *req, lg_type type) {
  luma_state *ls = ps->luma;
  size_t blen;
  const char *body = http_req_body(req, &blen);
  if (blen > LU_MAX_BODY) {
    lu_detail(ps, req, 413, NULL, "Request body too large (limit %u bytes)", LU_MAX_BODY);
    return;
  }
  cJSON *root = cJSON_ParseWithLength(body, blen);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    lu_detail(ps, req, 422, NULL, "Invalid request: the body must be a JSON object");
    return;
  }
  if (type == LG_FROM_BODY) {
    const cJSON *gt = cJSON_GetObjectItemCaseSensitive(root, "generation_type");
    type = cJSON_IsString(gt) && !strcmp(gt->valuestring, "image") ? LG_IMAGE : LG_VIDEO;
  }
  char msg[400];
  const char *ext = NULL;
  const char *model = check_create(root, type, &ext, msg, sizeof msg);
  if (!model) {
    cJSON_Delete(root);
    lu_detail(ps, req, 400, NULL, "%s", msg);
    return;
  }
  const char *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt")->valuestring;
  if (strstr(prompt, "provsim:error500")) {
    cJSON_Delete(root);
    lu_detail(ps, req, 500, NULL, "Internal Server Error");
    return;
  }
  if (sim_mono_ms() < ls->limited_until) {
    char ra[48];
    const char *const hdr[] = {ra, NULL};
    snprintf(ra, sizeof ra, "Retry-After: %u", ls->limited_retry_s);
    cJSON_Delete(root);
    simstats_incr(ps->stats, "luma", "rate_limited", NULL);
    lu_detail(ps, req, 429, hdr, "Rate limit reached; try again later");
    return;
  }
  if (make_room(ls) < 0) {
    static const char *const retry[] = {"Retry-After: 1", NULL};
    cJSON_Delete(root);
    lu_detail(ps, req, 429, retry, "Too many generations in progress; try again later");
    return;
  }
  luma_gen *g = calloc(1, sizeof *g);
  if (!g) {
    cJSON_Delete(root);
    lu_detail(ps, req, 500, NULL, "genq-provsim ran out of memory");
    return;
  }
  sim_uuid4(g->id);
  g->type = type;
  g->model = model;
  g->ext = ext;
  g->outcome = pick_outcome(ps, prompt);
  g->wall_ms = sim_wall_ms();
  g->mono_ms = sim_mono_ms();
  g->total_ms = type == LG_VIDEO ? ls->video_ms : ls->image_ms;
  if (strstr(prompt, "provsim:slow")) g->total_ms *= 10;
  g->request = root;
  char name[64];
  int ok = 1;
  if (g->outcome == LG_COMPLETES) {
    simmedia_kind kind = type == LG_VIDEO      ? SIMMEDIA_MP4
                         : !strcmp(ext, "png") ? SIMMEDIA_PNG
                                               : SIMMEDIA_JPEG;
    snprintf(name, sizeof name, "%s.%s", g->id, ext);
    ok = simmedia_add_builtin(ps->media, name, kind) == 0;
    snprintf(name, sizeof name, "%s-progress.mp4", g->id);
    if (ok && type == LG_VIDEO) ok = simmedia_add_builtin(ps->media, name, SIMMEDIA_MP4) == 0;
  }
  if (!ok) {
    gen_free(g);
    lu_detail(ps, req, 500, NULL, "genq-provsim ran out of memory");
    return;
  }
  simtab_add(&ls->gens, &g->node, g->id);
  long long now_in_flight = in_flight(ls);
  if (now_in_flight > ls->peak) ls->peak = now_in_flight;
  count_create(ps, req, prompt);
  cb_schedule(ls, g, root);
  log_debug("luma generation created", LS("id", g->id), LS("model", model),
            LI("duration_ms", g->total_ms));
  lu_json(ps, req, 201, gen_json(ps, req, g));
}

/* "name=value" of a raw query string into out; 1 if present. */
static int query_param(const char *q, const char *name, char *out, size_t n) {
  size_t nl = strlen(name);
  while (*q) {
    size_t len = strcspn(q, "&");
    if (len > nl && !strncmp(q, name, nl) && q[nl] == '=') {
      size_t vl = len - nl - 1;
      if (vl >= n) vl = n - 1;
      memcpy(out, q + nl + 1, vl);
      out[vl] = '\0';
      return 1;
    }
    q += len + (q[len] == '&');
  }
  return 0;
}

/* A query integer in [lo, hi], def when absent. Returns 0, or -1. */
static int query_int(const char *q, const char *name, long def, long lo, long hi, long *out) {
  char v[24];
  *out = def;
  if (!query_param(q, name, v, sizeof v)) return 0;
  char *end;
  long n = strtol(v, &end, 10);
  if (!v[0] || *end || n < lo || n > hi) return -1;
  *out = n;
  return 0;
}

static void list(provsim *ps, http_request *req) {
  const luma_state *ls = ps->luma;
  const char *q = http_req_query(req);
  long limit, offset;
  if (query_int(q, "limit", 100, 1, 1000, &limit) < 0) {
    lu_detail(ps, req, 422, NULL, "Invalid request: 'limit' must be an integer from 1 to 1000");
    return;
  }
  if (query_int(q, "offset", 0, 0, 1000000000L, &offset) < 0) {
    lu_detail(ps, req, 422, NULL, "Invalid request: 'offset' must be a non-negative integer");
    return;
  }
  cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "generations");
  long i = 0, count = 0;
  const simtab_node *p = ls->gens.newest;
  for (; p && i < offset; p = p->older)
    i++;
  for (; p && count < limit; p = p->older, count++) {
    cJSON *g = gen_json(ps, req, SIMTAB_ENTRY(p, const luma_gen, node));
    if (!g) {
      cJSON_Delete(o);
      lu_detail(ps, req, 500, NULL, "genq-provsim ran out of memory");
      return;
    }
    cJSON_AddItemToArray(arr, g);
  }
  cJSON_AddNumberToObject(o, "count", (double)count);
  cJSON_AddBoolToObject(o, "has_more", p != NULL);
  cJSON_AddNumberToObject(o, "limit", (double)limit);
  cJSON_AddNumberToObject(o, "offset", (double)offset);
  lu_json(ps, req, 200, o);
}

static void one(provsim *ps, http_request *req, const char *id, const char *method) {
  luma_state *ls = ps->luma;
  int get = !strcmp(method, "GET"), del = !strcmp(method, "DELETE");
  if (!get && !del) {
    static const char *const allow[] = {"Allow: GET, DELETE", NULL};
    lu_detail(ps, req, 405, allow, "Method Not Allowed");
    return;
  }
  if (get) simstats_incr(ps->stats, "luma", "gets", NULL);
  simtab_node *n = genq_is_uuid(id) ? simtab_get(&ls->gens, id) : NULL;
  if (!n) {
    lu_detail(ps, req, 404, NULL, "Generation not found");
    return;
  }
  luma_gen *g = SIMTAB_ENTRY(n, luma_gen, node);
  if (get) {
    lu_json(ps, req, 200, gen_json(ps, req, g));
    return;
  }
  simtab_remove(&ls->gens, n);
  log_debug("luma generation deleted", LS("id", g->id));
  gen_free(g);
  simstats_incr(ps->stats, "luma", "deletes", NULL);
  provsim_reply(ps, req, -1, 204, NULL, NULL, NULL, 0);
}

/* POST /_sim/luma/rate_limit {"seconds": S, "retry_after_s": R}: every
 * create answers 429 with Retry-After R (default 1) for the next S seconds
 * (0 ends it); counted in luma.rate_limited. */
void sim_luma_rate_limit(provsim *ps, http_request *req) {
  luma_state *ls = ps->luma;
  size_t blen;
  const char *body = http_req_body(req, &blen);
  cJSON *root = cJSON_ParseWithLength(body, blen);
  const cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, "seconds");
  const cJSON *ra = cJSON_GetObjectItemCaseSensitive(root, "retry_after_s");
  if (!cJSON_IsNumber(sec) || sec->valuedouble < 0 || sec->valuedouble > 3600 ||
      (ra && (!cJSON_IsNumber(ra) || ra->valuedouble < 0 || ra->valuedouble > 3600))) {
    cJSON_Delete(root);
    provsim_error(req, 400, "invalid_request",
                  "body: {\"seconds\": 0..3600, \"retry_after_s\"?: 0..3600}", NULL);
    return;
  }
  ls->limited_until = sim_mono_ms() + (long long)(sec->valuedouble * 1000);
  ls->limited_retry_s = ra ? (unsigned)ra->valuedouble : 1;
  cJSON_Delete(root);
  static const char ok[] = "{\"rate_limit\":true}";
  http_respond(req, 200, "application/json", NULL, ok, sizeof ok - 1);
}

/* POST /_sim/luma/peak_reset: in_flight_peak starts again from what is in
 * flight now. */
void sim_luma_peak_reset(provsim *ps, http_request *req) {
  luma_state *ls = ps->luma;
  ls->peak = in_flight(ls);
  static const char ok[] = "{\"peak_reset\":true}";
  http_respond(req, 200, "application/json", NULL, ok, sizeof ok - 1);
}

/* ---- setup and routing ----------------------------------------------- */

int sim_luma_init(provsim *ps, char *err, size_t errlen) {
  luma_state *ls = calloc(1, sizeof *ls);
  if (!ls) return snprintf(err, errlen, "out of memory"), -1;
  if (sim_env_ms("PROVSIM_LUMA_VIDEO_MS", LU_DEFAULT_VIDEO_MS, LU_MAX_MS, &ls->video_ms, err,
                 errlen) < 0 ||
      sim_env_ms("PROVSIM_LUMA_IMAGE_MS", LU_DEFAULT_IMAGE_MS, LU_MAX_MS, &ls->image_ms, err,
                 errlen) < 0) {
    free(ls);
    return -1;
  }
  if (simtab_init(&ls->gens, LU_MAX_GENERATIONS) < 0 ||
      simstats_declare(ps->stats, "luma", "creates", 0) < 0 ||
      simstats_declare(ps->stats, "luma", "creates_by_prompt", 1) < 0 ||
      simstats_declare(ps->stats, "luma", "deletes", 0) < 0 ||
      simstats_declare(ps->stats, "luma", "gets", 0) < 0 ||
      simcb_new(&ls->callbacks, ps, cb_due, cb_body, ps) < 0 ||
      simstats_declare(ps->stats, "luma", "rate_limited", 0) < 0 ||
      simstats_declare_gauge(ps->stats, "luma", "in_flight", in_flight, ls) < 0 ||
      simstats_declare_gauge(ps->stats, "luma", "in_flight_peak", in_flight_peak, ls) < 0) {
    simtab_free(&ls->gens);
    simcb_stop(ls->callbacks);
    simcb_free(ls->callbacks);
    free(ls);
    return snprintf(err, errlen, "out of memory"), -1;
  }
  ps->luma = ls;
  return 0;
}

void sim_luma_free(provsim *ps) {
  luma_state *ls = ps->luma;
  if (!ls) return;
  while (ls->gens.oldest) {
    luma_gen *g = SIMTAB_ENTRY(ls->gens.oldest, luma_gen, node);
    simtab_remove(&ls->gens, &g->node);
    gen_free(g);
  }
  simtab_free(&ls->gens);
  simcb_free(ls->callbacks);
  free(ls);
  ps->luma = NULL;
}

/* Bearer auth, as the real service asks on every endpoint. */
static int authorized(http_request *req) {
  const char *auth = http_req_header(req, "authorization");
  const char *key = auth && !strncasecmp(auth, "Bearer ", 7) ? auth + 7 : "";
  while (*key == ' ')
    key++;
  return *key != '\0';
}

/* Answers 405 unless method is want; returns 1 when it is. */
static int method_is(provsim *ps, http_request *req, const char *method, const char *want) {
  if (!strcmp(method, want)) return 1;
  char allow[32];
  snprintf(allow, sizeof allow, "Allow: %s", want);
  const char *const headers[] = {allow, NULL};
  lu_detail(ps, req, 405, headers, "Method Not Allowed");
  return 0;
}

void sim_luma_handle(provsim *ps, http_request *req, const char *path) {
  const char *method = http_req_method(req);
  size_t bl = strlen(LU_BASE);
  if (strncmp(path, LU_BASE, bl) != 0 || (path[bl] && path[bl] != '/')) {
    lu_detail(ps, req, 404, NULL, "Not Found");
    return;
  }
  path += bl;
  if (!authorized(req)) {
    lu_detail(ps, req, 401, NULL, "Invalid or missing API key: send Authorization: Bearer <key>");
    return;
  }
  if (!strcmp(path, "/generations")) {
    /* POST /generations is the older create path (video unless the body
     * says generation_type "image"); GET lists. */
    if (!strcmp(method, "POST")) {
      create(ps, req, LG_FROM_BODY);
    } else if (!strcmp(method, "GET")) {
      list(ps, req);
    } else {
      static const char *const allow[] = {"Allow: GET, POST", NULL};
      lu_detail(ps, req, 405, allow, "Method Not Allowed");
    }
  } else if (!strcmp(path, "/generations/video")) {
    if (method_is(ps, req, method, "POST")) create(ps, req, LG_VIDEO);
  } else if (!strcmp(path, "/generations/image")) {
    if (method_is(ps, req, method, "POST")) create(ps, req, LG_IMAGE);
  } else if (!strncmp(path, "/generations/", 13) && !strchr(path + 13, '/')) {
    one(ps, req, path + 13, method);
  } else if (!strcmp(path, "/credits")) {
    if (method_is(ps, req, method, "GET")) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddNumberToObject(o, "credit_balance", LU_CREDIT_BALANCE);
      lu_json(ps, req, 200, o);
    }
  } else if (!strcmp(path, "/ping")) {
    if (method_is(ps, req, method, "GET")) {
      static const char pong[] = "{\"message\":\"pong\"}";
      provsim_reply(ps, req, -1, 200, "application/json", NULL, pong, sizeof pong - 1);
    }
  } else {
    lu_detail(ps, req, 404, NULL, "Not Found");
  }
}
