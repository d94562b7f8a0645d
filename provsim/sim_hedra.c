/* Simulated Hedra v3 under /hedra/v3 (see provsim.h and PROVIDERS.md): file
 * uploads, hedra-character-3 jobs, their status and result. A job's status is
 * computed from the clock when it is read: IN_QUEUE for the first fifth of its
 * duration, IN_PROGRESS until the end, then COMPLETED (or FAILED).
 *
 * idempotency_key: a create whose key was seen before answers the job made
 * the first time and starts nothing (hedra.jobs_started does not move), but
 * still counts in hedra.creates and hedra.creates_by_idempotency_key[key], so
 * tests can see the repeat.
 *
 * Test hooks in input.prompt:
 *   provsim:moderation  ends FAILED with error code MODERATION_FAILED
 *   provsim:fail        ends FAILED with error code INTERNAL (retryable)
 *   provsim:error500    the create answers 500 INTERNAL and creates nothing
 *   provsim:slow        takes ten times the configured duration
 * PROVSIM_HEDRA_MODERATION_RATE and PROVSIM_HEDRA_FAIL_RATE (faults.c) end a
 * new job as the first two hooks do. */
#include "provsim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "multipart.h"

#define HE_BASE "/v3"
#define HE_MODEL "hedra-character-3"
#define HE_DEFAULT_MS 12000
#define HE_MAX_MS 3600000u
#define HE_MAX_JOBS 100000 /* beyond, the oldest finished job goes */
#define HE_MAX_JSON_BODY (1u << 20)
#define HE_MAX_IMAGE_BYTES (10u << 20)
#define HE_MAX_AUDIO_BYTES (100u << 20)
#define HE_MAX_KEY 255
#define HE_DEFAULT_OUTPUT_MS 5000
#define HE_FILE_TTL_MS (48LL * 3600 * 1000)

typedef enum { HJ_COMPLETES, HJ_FAILS_MODERATION, HJ_FAILS_INTERNALLY } hj_outcome;

typedef struct {
  simtab_node by_id;
  simtab_node by_key; /* in the keys table only when key is set */
  char id[37];
  char *key; /* idempotency_key, or NULL */
  hj_outcome outcome;
  long long wall_ms, mono_ms, total_ms;
  long long output_ms; /* the video's duration_ms */
} hedra_job;

typedef struct {
  unsigned job_ms;
  simtab jobs;    /* by job id */
  simtab keys;    /* by idempotency key */
  long long peak; /* most jobs in flight at once (in_flight_peak) */
} hedra_state;

static const char *const aspect_ratios[] = {"16:9", "9:16", "1:1", NULL};
static const char *const resolutions[] = {"540p", "720p", "1080p", NULL};

/* ---- jobs ------------------------------------------------------------ */

static const char *job_status(const hedra_job *j, long long now) {
  long long t = now - j->mono_ms;
  if (t >= j->total_ms) return j->outcome == HJ_COMPLETES ? "COMPLETED" : "FAILED";
  return t < j->total_ms / 5 ? "IN_QUEUE" : "IN_PROGRESS";
}

/* 0 while queued, rising through the run, 1 at the end. */
static double job_progress(const hedra_job *j, long long now) {
  long long t = now - j->mono_ms, q = j->total_ms / 5;
  if (t >= j->total_ms) return 1.0;
  if (t < q) return 0.0;
  return (double)(t - q) / (double)(j->total_ms - q);
}

static void job_drop(hedra_state *hs, hedra_job *j) {
  simtab_remove(&hs->jobs, &j->by_id);
  if (j->key) simtab_remove(&hs->keys, &j->by_key);
  free(j->key);
  free(j);
}

static long long in_flight(void *arg) {
  const hedra_state *hs = arg;
  long long now = sim_mono_ms(), n = 0;
  for (const simtab_node *p = hs->jobs.oldest; p; p = p->newer) {
    const hedra_job *j = SIMTAB_ENTRY(p, const hedra_job, by_id);
    n += now - j->mono_ms < j->total_ms;
  }
  return n;
}

static long long in_flight_peak(void *arg) {
  return ((const hedra_state *)arg)->peak;
}

/* ---- answers --------------------------------------------------------- */

/* Adds Hedra's error object {code, message, retryable, retry_after} as
 * parent[name]. retry_after < 0 is null. */
static cJSON *add_error(cJSON *parent, const char *name, const char *code, const char *message,
                        int retryable, int retry_after) {
  cJSON *e = cJSON_AddObjectToObject(parent, name);
  cJSON_AddStringToObject(e, "code", code);
  cJSON_AddStringToObject(e, "message", message);
  cJSON_AddBoolToObject(e, "retryable", retryable);
  if (retry_after >= 0)
    cJSON_AddNumberToObject(e, "retry_after", retry_after);
  else
    cJSON_AddNullToObject(e, "retry_after");
  return e;
}

static void he_error(provsim *ps, http_request *req, int status, const char *code, int retryable,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void he_error(provsim *ps, http_request *req, int status, const char *code, int retryable,
                     const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  cJSON *o = cJSON_CreateObject();
  add_error(o, "error", code, message, retryable, status == 429 ? 1 : -1);
  char *body = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!body) {
    provsim_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  static const char *const retry[] = {"Retry-After: 1", NULL};
  provsim_reply(ps, req, -1, status, "application/json", status == 429 ? retry : NULL, body,
                strlen(body));
  cJSON_free(body);
}

#define INVALID(...) he_error(ps, req, 400, "INVALID_ARGUMENT", 0, __VA_ARGS__)

/* Sends o (consumed) as JSON. */
static void he_json(provsim *ps, http_request *req, int status, const char *const *headers,
                    cJSON *o) {
  char *body = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!body) {
    he_error(ps, req, 500, "INTERNAL", 1, "genq-provsim ran out of memory");
    return;
  }
  provsim_reply(ps, req, -1, status, "application/json", headers, body, strlen(body));
  cJSON_free(body);
}

/* ---- POST /files: multipart/form-data -------------------------------- */

/* The content type of an upload and its file extension: the part's own
 * type, or, when it is missing or generic, one guessed from the filename.
 * NULL when neither names an image, audio or video type. */
static const char *upload_type(const multipart_part *f, const char **ext) {
  static const struct {
    const char *ext, *type;
  } known[] = {{"png", "image/png"},
               {"jpg", "image/jpeg"},
               {"jpeg", "image/jpeg"},
               {"webp", "image/webp"},
               {"mp3", "audio/mpeg"},
               {"wav", "audio/wav"},
               {"m4a", "audio/mp4"},
               {"aac", "audio/aac"},
               {"ogg", "audio/ogg"},
               {"flac", "audio/flac"},
               {"mp4", "video/mp4"},
               {"mov", "video/quicktime"},
               {NULL, NULL}};
  const char *ct = f->content_type;
  if (!ct[0] || !strcasecmp(ct, "application/octet-stream")) {
    const char *dot = strrchr(f->filename, '.');
    ct = NULL;
    for (int i = 0; dot && known[i].ext; i++)
      if (!strcasecmp(dot + 1, known[i].ext)) ct = known[i].type;
    if (!ct) return NULL;
  }
  if (strncasecmp(ct, "image/", 6) != 0 && strncasecmp(ct, "audio/", 6) != 0 &&
      strncasecmp(ct, "video/", 6) != 0)
    return NULL;
  *ext = "bin";
  for (int i = 0; known[i].ext; i++)
    if (!strcasecmp(ct, known[i].type)) {
      *ext = known[i].ext;
      break;
    }
  return ct;
}

static void upload(provsim *ps, http_request *req) {
  const char *ct = http_req_header(req, "content-type");
  char boundary[72], msg[200];
  if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0 ||
      (ct[19] && ct[19] != ';' && ct[19] != ' ')) {
    INVALID("POST /files takes multipart/form-data with a 'file' field");
    return;
  }
  int r = multipart_param(ct, "boundary", boundary, sizeof boundary);
  if (r != 1 || !boundary[0]) {
    INVALID("multipart/form-data needs a boundary of 1 to 70 characters");
    return;
  }
  size_t blen;
  const char *body = http_req_body(req, &blen);
  multipart_part f;
  if (multipart_field(body, blen, boundary, "file", &f, msg, sizeof msg) < 0) {
    INVALID("%s", msg);
    return;
  }
  const char *ext = NULL, *type = upload_type(&f, &ext);
  if (!type) {
    INVALID("unsupported file type '%.60s': upload an image, audio or video file",
            f.content_type[0] ? f.content_type : f.filename);
    return;
  }
  size_t cap = !strncasecmp(type, "image/", 6) ? HE_MAX_IMAGE_BYTES : HE_MAX_AUDIO_BYTES;
  if (f.len == 0 || f.len > cap) {
    INVALID("file must be 1 byte to %zu MiB, got %zu bytes", cap >> 20, f.len);
    return;
  }
  char id[37], name[48], origin[300], url[400], expires[32];
  sim_uuid4(id);
  snprintf(name, sizeof name, "%s.%s", id, ext);
  if (simmedia_add_copy(ps->media, name, type, f.data, f.len) < 0 ||
      sim_origin(ps, req, origin, sizeof origin) < 0) {
    he_error(ps, req, 500, "INTERNAL", 1, "genq-provsim could not store the file");
    return;
  }
  simstats_incr(ps->stats, "hedra", "files", NULL);
  snprintf(url, sizeof url, "%s/files/%s", origin, name);
  sim_rfc3339(sim_wall_ms() + HE_FILE_TTL_MS, expires);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "url", url);
  cJSON_AddStringToObject(o, "content_type", type);
  cJSON_AddStringToObject(o, "expires_at", expires);
  he_json(ps, req, 201, NULL, o);
}

/* ---- POST /models/hedra-character-3 ---------------------------------- */

static int http_url(const char *s) {
  return (!strncmp(s, "https://", 8) && s[8]) || (!strncmp(s, "http://", 7) && s[7]);
}

/* input[field]: {"source": "url", "url"} or {"source": "asset", "asset_id"}.
 * Returns 0, or -1 with msg. */
static int check_media_ref(const cJSON *input, const char *field, char *msg, size_t n) {
  const cJSON *ref = cJSON_GetObjectItemCaseSensitive(input, field);
  const cJSON *source = cJSON_GetObjectItemCaseSensitive(ref, "source");
  if (!ref) return snprintf(msg, n, "input.%s is required", field), -1;
  if (!cJSON_IsObject(ref) || !cJSON_IsString(source))
    return snprintf(msg, n, "input.%s must be an object with a 'source'", field), -1;
  if (!strcmp(source->valuestring, "url")) {
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(ref, "url");
    if (!cJSON_IsString(url) || !http_url(url->valuestring))
      return snprintf(msg, n, "input.%s.url must be an http or https URL", field), -1;
    return 0;
  }
  if (!strcmp(source->valuestring, "asset")) {
    const cJSON *aid = cJSON_GetObjectItemCaseSensitive(ref, "asset_id");
    if (!cJSON_IsString(aid) || !aid->valuestring[0] || strlen(aid->valuestring) > 128)
      return snprintf(msg, n, "input.%s.asset_id must be a non-empty string", field), -1;
    return 0;
  }
  snprintf(msg, n, "input.%s.source '%.40s' is not supported: use 'url' or 'asset'", field,
           source->valuestring);
  return -1;
}

static int check_enum(const cJSON *input, const char *field, const char *const *allowed, char *msg,
                      size_t n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(input, field);
  for (int i = 0; cJSON_IsString(v) && allowed[i]; i++)
    if (!strcmp(v->valuestring, allowed[i])) return 0;
  size_t w = (size_t)snprintf(msg, n, "input.%s %s; expected one of", field,
                              v ? "has an unsupported value" : "is required");
  for (int i = 0; allowed[i] && w < n; i++)
    w += (size_t)snprintf(msg + w, n - w, "%s '%s'", i ? "," : "", allowed[i]);
  return -1;
}

/* Checks a create body. Returns 0, or -1 with msg. */
static int check_create(const cJSON *root, char *msg, size_t n) {
  const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
  if (!cJSON_IsObject(input)) return snprintf(msg, n, "'input' is required (an object)"), -1;
  const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(input, "prompt");
  if (!cJSON_IsString(prompt)) return snprintf(msg, n, "input.prompt is required (a string)"), -1;
  if (check_enum(input, "aspect_ratio", aspect_ratios, msg, n) < 0 ||
      check_enum(input, "resolution", resolutions, msg, n) < 0 ||
      check_media_ref(input, "start_image", msg, n) < 0 ||
      check_media_ref(input, "audio", msg, n) < 0)
    return -1;
  const cJSON *dur = cJSON_GetObjectItemCaseSensitive(input, "duration_ms");
  if (dur && !cJSON_IsNull(dur) &&
      (!cJSON_IsNumber(dur) || dur->valuedouble != (double)(long long)dur->valuedouble ||
       dur->valuedouble < 500 || dur->valuedouble > 600000))
    return snprintf(msg, n, "input.duration_ms must be an integer from 500 to 600000"), -1;
  const cJSON *hook = cJSON_GetObjectItemCaseSensitive(root, "webhook");
  if (hook && !cJSON_IsNull(hook)) {
    const cJSON *url = cJSON_IsObject(hook) ? cJSON_GetObjectItemCaseSensitive(hook, "url") : hook;
    if (!cJSON_IsString(url) || !http_url(url->valuestring))
      return snprintf(msg, n, "webhook must be an http or https URL (or {\"url\": ...})"), -1;
  }
  const cJSON *key = cJSON_GetObjectItemCaseSensitive(root, "idempotency_key");
  if (key && !cJSON_IsNull(key) &&
      (!cJSON_IsString(key) || !key->valuestring[0] || strlen(key->valuestring) > HE_MAX_KEY))
    return snprintf(msg, n, "idempotency_key must be a string of 1 to %d bytes", HE_MAX_KEY), -1;
  return 0;
}

/* Makes room for one more job: drops the oldest finished one when the
 * table is full. Returns 0, or -1 when every job is running. */
static int make_room(hedra_state *hs) {
  if (hs->jobs.count < HE_MAX_JOBS) return 0;
  long long now = sim_mono_ms();
  for (simtab_node *p = hs->jobs.oldest; p; p = p->newer) {
    hedra_job *j = SIMTAB_ENTRY(p, hedra_job, by_id);
    if (now - j->mono_ms >= j->total_ms) {
      job_drop(hs, j);
      return 0;
    }
  }
  return -1;
}

/* The prompt's hook, else PROVSIM_HEDRA_MODERATION_RATE / _FAIL_RATE. */
static hj_outcome pick_outcome(provsim *ps, const char *prompt) {
  if (strstr(prompt, "provsim:moderation")) return HJ_FAILS_MODERATION;
  if (strstr(prompt, "provsim:fail")) return HJ_FAILS_INTERNALLY;
  switch (simfaults_outcome(ps, SIM_HEDRA)) {
  case SIMOUTCOME_MODERATION:
    return HJ_FAILS_MODERATION;
  case SIMOUTCOME_FAIL:
    return HJ_FAILS_INTERNALLY;
  default:
    return HJ_COMPLETES;
  }
}

/* A new job for a checked input, in the tables, its video registered for
 * download when it is to complete. NULL on OOM. */
static hedra_job *job_new(provsim *ps, const cJSON *input, const char *key) {
  hedra_state *hs = ps->hedra;
  const char *prompt = cJSON_GetObjectItemCaseSensitive(input, "prompt")->valuestring;
  const cJSON *dur = cJSON_GetObjectItemCaseSensitive(input, "duration_ms");
  hedra_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  if (key && !(j->key = strdup(key))) {
    free(j);
    return NULL;
  }
  sim_uuid4(j->id);
  j->outcome = pick_outcome(ps, prompt);
  char name[48];
  snprintf(name, sizeof name, "%s.mp4", j->id);
  if (j->outcome == HJ_COMPLETES && simmedia_add_builtin(ps->media, name, SIMMEDIA_MP4) < 0) {
    free(j->key);
    free(j);
    return NULL;
  }
  j->wall_ms = sim_wall_ms();
  j->mono_ms = sim_mono_ms();
  j->total_ms = (long long)hs->job_ms * (strstr(prompt, "provsim:slow") ? 10 : 1);
  j->output_ms = cJSON_IsNumber(dur) ? (long long)dur->valuedouble : HE_DEFAULT_OUTPUT_MS;
  simtab_add(&hs->jobs, &j->by_id, j->id);
  if (j->key) simtab_add(&hs->keys, &j->by_key, j->key);
  long long now_in_flight = in_flight(hs);
  if (now_in_flight > hs->peak) hs->peak = now_in_flight;
  return j;
}

static void job_urls(const char *origin, const hedra_job *j, char *status_url, char *result_url,
                     size_t n) {
  snprintf(status_url, n, "%s/hedra" HE_BASE "/jobs/%s/status", origin, j->id);
  snprintf(result_url, n, "%s/hedra" HE_BASE "/jobs/%s", origin, j->id);
}

static void create(provsim *ps, http_request *req) {
  hedra_state *hs = ps->hedra;
  size_t blen;
  const char *body = http_req_body(req, &blen);
  if (blen > HE_MAX_JSON_BODY) {
    INVALID("request body over %u bytes", HE_MAX_JSON_BODY);
    return;
  }
  cJSON *root = cJSON_ParseWithLength(body, blen);
  char msg[300];
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    INVALID("the request body must be a JSON object");
    return;
  }
  if (check_create(root, msg, sizeof msg) < 0) {
    cJSON_Delete(root);
    INVALID("%s", msg);
    return;
  }
  const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
  const char *prompt = cJSON_GetObjectItemCaseSensitive(input, "prompt")->valuestring;
  const cJSON *keyj = cJSON_GetObjectItemCaseSensitive(root, "idempotency_key");
  const char *key = cJSON_IsString(keyj) ? keyj->valuestring : NULL;
  if (strstr(prompt, "provsim:error500")) {
    cJSON_Delete(root);
    he_error(ps, req, 500, "INTERNAL", 1, "Internal error; please retry");
    return;
  }
  simtab_node *seen = key ? simtab_get(&hs->keys, key) : NULL;
  hedra_job *j = seen ? SIMTAB_ENTRY(seen, hedra_job, by_key) : NULL;
  if (!j) {
    if (make_room(hs) < 0) {
      cJSON_Delete(root);
      he_error(ps, req, 429, "RESOURCE_EXHAUSTED", 1, "too many jobs in progress");
      return;
    }
    if (!(j = job_new(ps, input, key))) {
      cJSON_Delete(root);
      he_error(ps, req, 500, "INTERNAL", 1, "genq-provsim ran out of memory");
      return;
    }
    simstats_incr(ps->stats, "hedra", "jobs_started", NULL);
    log_debug("hedra job created", LS("job_id", j->id), LI("duration_ms", j->total_ms));
  }
  simstats_incr(ps->stats, "hedra", "creates", NULL);
  if (key) simstats_incr(ps->stats, "hedra", "creates_by_idempotency_key", key);
  simfaults_created(ps, req, key); /* a repeat's lost answer too: each one is lost */
  cJSON_Delete(root);

  char origin[300], status_url[400], result_url[400], eta[32], location[420];
  if (sim_origin(ps, req, origin, sizeof origin) < 0) origin[0] = '\0';
  job_urls(origin, j, status_url, result_url, sizeof status_url);
  sim_rfc3339(j->wall_ms + j->total_ms, eta);
  snprintf(location, sizeof location, "Location: %s", status_url);
  const char *const headers[] = {location, NULL};
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "job_id", j->id);
  cJSON_AddStringToObject(o, "model", HE_MODEL);
  cJSON_AddStringToObject(o, "status", job_status(j, sim_mono_ms()));
  cJSON_AddStringToObject(o, "status_url", status_url);
  cJSON_AddStringToObject(o, "result_url", result_url);
  cJSON_AddStringToObject(o, "estimated_completion_at", eta);
  he_json(ps, req, 202, headers, o);
}

/* ---- GET /jobs/{id}[/status] ----------------------------------------- */

static void job_get(provsim *ps, http_request *req, const char *id, int status_only) {
  hedra_state *hs = ps->hedra;
  simtab_node *n = strlen(id) == 36 ? simtab_get(&hs->jobs, id) : NULL;
  if (!n) {
    he_error(ps, req, 404, "NOT_FOUND", 0, "no job with id '%.64s'", id);
    return;
  }
  const hedra_job *j = SIMTAB_ENTRY(n, hedra_job, by_id);
  long long now = sim_mono_ms();
  const char *status = job_status(j, now);
  char eta[32];
  sim_rfc3339(j->wall_ms + j->total_ms, eta);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "job_id", j->id);
  if (status_only) {
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddNumberToObject(o, "progress", job_progress(j, now));
    cJSON_AddStringToObject(o, "estimated_completion_at", eta);
    he_json(ps, req, 200, NULL, o);
    return;
  }
  cJSON_AddStringToObject(o, "model", HE_MODEL);
  cJSON_AddStringToObject(o, "status", status);
  cJSON *outputs = cJSON_AddArrayToObject(o, "outputs");
  if (!strcmp(status, "COMPLETED")) {
    char origin[300], url[400];
    if (sim_origin(ps, req, origin, sizeof origin) < 0) origin[0] = '\0';
    snprintf(url, sizeof url, "%s/files/%s.mp4", origin, j->id);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToArray(outputs, out);
    cJSON_AddStringToObject(out, "status", "COMPLETED");
    cJSON_AddStringToObject(out, "url", url);
    cJSON_AddStringToObject(out, "content_type", "video/mp4");
    cJSON_AddNumberToObject(out, "duration_ms", (double)j->output_ms);
    cJSON_AddNullToObject(out, "error");
  }
  if (!strcmp(status, "FAILED")) {
    if (j->outcome == HJ_FAILS_MODERATION)
      add_error(o, "error", "MODERATION_FAILED", "The input was rejected by content moderation", 0,
                -1);
    else
      add_error(o, "error", "INTERNAL", "Internal generation error", 1, -1);
  } else {
    cJSON_AddNullToObject(o, "error");
  }
  he_json(ps, req, 200, NULL, o);
}

/* ---- setup and routing ----------------------------------------------- */

int sim_hedra_init(provsim *ps, char *err, size_t errlen) {
  hedra_state *hs = calloc(1, sizeof *hs);
  if (!hs) return snprintf(err, errlen, "out of memory"), -1;
  if (sim_env_ms("PROVSIM_HEDRA_MS", HE_DEFAULT_MS, HE_MAX_MS, &hs->job_ms, err, errlen) < 0) {
    free(hs);
    return -1;
  }
  if (simtab_init(&hs->jobs, HE_MAX_JOBS) < 0 || simtab_init(&hs->keys, HE_MAX_JOBS) < 0 ||
      simstats_declare(ps->stats, "hedra", "files", 0) < 0 ||
      simstats_declare(ps->stats, "hedra", "creates", 0) < 0 ||
      simstats_declare(ps->stats, "hedra", "creates_by_idempotency_key", 1) < 0 ||
      simstats_declare(ps->stats, "hedra", "jobs_started", 0) < 0 ||
      simstats_declare_gauge(ps->stats, "hedra", "in_flight", in_flight, hs) < 0 ||
      simstats_declare_gauge(ps->stats, "hedra", "in_flight_peak", in_flight_peak, hs) < 0) {
    simtab_free(&hs->jobs);
    simtab_free(&hs->keys);
    free(hs);
    return snprintf(err, errlen, "out of memory"), -1;
  }
  ps->hedra = hs;
  return 0;
}

void sim_hedra_free(provsim *ps) {
  hedra_state *hs = ps->hedra;
  if (!hs) return;
  while (hs->jobs.oldest)
    job_drop(hs, SIMTAB_ENTRY(hs->jobs.oldest, hedra_job, by_id));
  simtab_free(&hs->jobs);
  simtab_free(&hs->keys);
  free(hs);
  ps->hedra = NULL;
}

/* "Authorization: Key <key>", as the real service asks on every endpoint. */
static int authorized(http_request *req) {
  const char *auth = http_req_header(req, "authorization");
  const char *key = auth && !strncasecmp(auth, "Key ", 4) ? auth + 4 : "";
  while (*key == ' ')
    key++;
  return *key != '\0';
}

static int method_is(provsim *ps, http_request *req, const char *method, const char *want) {
  if (!strcmp(method, want)) return 1;
  he_error(ps, req, 405, "METHOD_NOT_ALLOWED", 0, "use %s here", want);
  return 0;
}

void sim_hedra_handle(provsim *ps, http_request *req, const char *path) {
  const char *method = http_req_method(req);
  size_t bl = strlen(HE_BASE);
  if (strncmp(path, HE_BASE, bl) != 0 || (path[bl] && path[bl] != '/')) {
    he_error(ps, req, 404, "NOT_FOUND", 0, "no such endpoint");
    return;
  }
  path += bl;
  if (!authorized(req)) {
    he_error(ps, req, 401, "UNAUTHORIZED", 0,
             "missing or invalid API key: send Authorization: Key <key>");
    return;
  }
  if (!strcmp(path, "/files")) {
    if (method_is(ps, req, method, "POST")) upload(ps, req);
  } else if (!strcmp(path, "/models/" HE_MODEL)) {
    if (method_is(ps, req, method, "POST")) create(ps, req);
  } else if (!strncmp(path, "/jobs/", 6)) {
    char id[64];
    const char *rest = path + 6, *slash = strchr(rest, '/');
    size_t il = slash ? (size_t)(slash - rest) : strlen(rest);
    int status_only = slash && !strcmp(slash, "/status");
    if (il == 0 || il >= sizeof id || (slash && !status_only)) {
      he_error(ps, req, 404, "NOT_FOUND", 0, "no such endpoint");
      return;
    }
    memcpy(id, rest, il);
    id[il] = '\0';
    if (method_is(ps, req, method, "GET")) job_get(ps, req, id, status_only);
  } else if (!strncmp(path, "/models/", 8)) {
    he_error(ps, req, 404, "NOT_FOUND", 0, "unknown model '%.64s'", path + 8);
  } else {
    he_error(ps, req, 404, "NOT_FOUND", 0, "no such endpoint");
  }
}
