/* Fault injection for the provider endpoints (see provsim.h and
 * PROVIDERS.md, "The simulator"), set by environment per provider:
 *
 *   PROVSIM_<P>_<F>, P in OPENAI, LUMA, HEDRA; PROVSIM_<F> is the default
 *   of all three when the provider's own variable is unset or empty.
 *
 *   ERROR_RATE, RATE_LIMIT_RATE, HANG_RATE, RESET_RATE, TRUNCATE_RATE,
 *   MALFORMED_RATE   request faults, probabilities 0..1 adding up to at most
 *                    1: each request to /openai, /luma or /hedra draws one
 *                    number and gets at most one of them.
 *   MODERATION_RATE, FAIL_RATE   how a new generation ends (adding up to at
 *                    most 1): failed for moderation (OpenAI: a refusal), or
 *                    failed for an internal, retryable reason (OpenAI: a
 *                    completion cut by finish_reason "length").
 *   LATENCY_MS       added before every answer (OpenAI's default 200, the
 *                    others 0).
 *   RETRY_AFTER_S    the Retry-After of an injected 429 (default 1).
 *   PROVSIM_SEED     seeds the draws so that a run can be replayed; default
 *                    from the clock; logged at start.
 *
 * Error, rate_limit and reset are decided before the handler runs, so a
 * create they hit never takes effect; hang, truncate and malformed spoil the
 * handler's answer, so the create happened and only its answer is lost
 * (counted in <provider>.lost_creates). Every injected fault counts in
 * <provider>.faults[<name>].
 *
 * Each provider has two random streams, one for request faults and one for
 * generation outcomes, derived from the seed: the sequence a provider draws
 * does not depend on the traffic of the others. */
#include "provsim.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define FAULTS_MAX_LATENCY_MS 600000
#define FAULTS_MAX_RETRY_AFTER_S 86400
#define FAULTS_OPENAI_LATENCY_MS 200
#define FAULTS_RATE_SLACK 1e-9            /* decimal rates that add up to 1 may pass it in binary */
#define FAULTS_MAX_HUNG 256               /* beyond, the oldest hung request is closed */
#define FAULTS_MAX_HUNG_BYTES (64u << 20) /* request bodies held by hung requests */
#define FAULTS_MAX_HEADERS 16

/* A request's fault, attached with http_req_set_data: one per provider and
 * fault, so that drawing allocates nothing. */
typedef struct {
  sim_provider p;
  simfault f;
  int variant; /* malformed: 0 the body cut in half, 1 a proxy's HTML page */
} fault_tag;

/* A request held unanswered. */
typedef struct sim_hung {
  struct simfaults *fs;
  http_request *req;
  size_t bytes; /* its body, held with it */
  struct sim_hung *prev, *next;
} sim_hung;

typedef struct {
  double rate[SIMFAULT_NREQUEST]; /* rate[SIMFAULT_NONE] unused */
  double moderation, fail;
  unsigned latency_ms, retry_after_s;
  uint64_t rng_req, rng_gen;
} prov_faults;

struct simfaults {
  prov_faults prov[SIM_NPROVIDERS];
  fault_tag tags[SIM_NPROVIDERS][SIMFAULT_NREQUEST][2];
  sim_hung *hung_oldest, *hung_newest;
  unsigned nhung;
  size_t hung_bytes;
};

static const char *const prov_env[SIM_NPROVIDERS] = {"OPENAI", "LUMA", "HEDRA"};
static const char *const prov_stats[SIM_NPROVIDERS] = {"openai", "luma", "hedra"};
/* The names of the faults in <provider>.faults, and of their variables. */
static const char *const fault_names[SIMFAULT_NREQUEST] = {
    NULL, "error", "rate_limit", "hang", "reset", "truncate", "malformed"};
static const char *const fault_env[SIMFAULT_NREQUEST] = {
    NULL,         "ERROR_RATE",    "RATE_LIMIT_RATE", "HANG_RATE",
    "RESET_RATE", "TRUNCATE_RATE", "MALFORMED_RATE"};

/* ---- random streams -------------------------------------------------- */

/* SplitMix64: small, fast, and every seed gives a full-period stream. */
static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double uniform(uint64_t *s) {
  return (double)(splitmix64(s) >> 11) * 0x1.0p-53;
}

/* ---- configuration --------------------------------------------------- */

/* The value of PROVSIM_<P>_<F>, else of PROVSIM_<F>, else NULL; *name gets
 * the variable it came from, for messages. */
static const char *env_value(sim_provider p, const char *f, char *name, size_t n) {
  snprintf(name, n, "PROVSIM_%s_%s", prov_env[p], f);
  const char *v = getenv(name);
  if (v && *v) return v;
  snprintf(name, n, "PROVSIM_%s", f);
  v = getenv(name);
  return v && *v ? v : NULL;
}

/* A probability; *name (when not NULL) gets the variable it came from. */
static int env_rate(sim_provider p, const char *f, double *out, char *name, char *err,
                    size_t errlen) {
  char own[64];
  if (!name) name = own;
  const char *v = env_value(p, f, name, 64);
  *out = 0;
  if (!v) return 0;
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end || !(x >= 0 && x <= 1)) {
    snprintf(err, errlen, "%s: expected a probability, a number from 0 to 1, got '%.32s'", name, v);
    return -1;
  }
  *out = x;
  return 0;
}

static int env_uint(sim_provider p, const char *f, unsigned def, unsigned max, unsigned *out,
                    char *err, size_t errlen) {
  char name[64];
  const char *v = env_value(p, f, name, sizeof name);
  *out = def;
  if (!v) return 0;
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || end == v || *end || n < 0 || n > (long long)max) {
    snprintf(err, errlen, "%s: expected an integer from 0 to %u, got '%.32s'", name, max, v);
    return -1;
  }
  *out = (unsigned)n;
  return 0;
}

/* PROVSIM_SEED: a decimal integer, signed or not, within 64 bits. */
static int env_seed(uint64_t *seed, int *given, char *err, size_t errlen) {
  const char *v = getenv("PROVSIM_SEED");
  *given = v && *v;
  if (!*given) {
    uint64_t t = uv_hrtime() ^ ((uint64_t)sim_wall_ms() << 20) ^ (uint64_t)getpid();
    *seed = splitmix64(&t);
    return 0;
  }
  char *end;
  errno = 0;
  if (*v == '-') {
    long long n = strtoll(v, &end, 10);
    *seed = (uint64_t)n;
  } else {
    *seed = strtoull(v, &end, 10);
  }
  if (errno || end == v || *end || (*v < '0' && *v != '-') || *v > '9') {
    snprintf(err, errlen, "PROVSIM_SEED: expected an integer, got '%.32s'", v);
    return -1;
  }
  return 0;
}

/* "NAME=value + NAME=value ..." of the rates that are set, for messages. */
static void list_rates(char *out, size_t n, char names[][64], const double *rates, int count) {
  size_t w = 0;
  out[0] = '\0';
  for (int i = 0; i < count && w < n; i++)
    if (rates[i] > 0)
      w += (size_t)snprintf(out + w, n - w, "%s%s=%g", w ? " + " : "", names[i], rates[i]);
}

static int read_provider(prov_faults *pf, sim_provider p, char *err, size_t errlen) {
  char names[SIMFAULT_NREQUEST][64], list[320];
  double sum = 0;
  for (int f = SIMFAULT_ERROR; f < SIMFAULT_NREQUEST; f++) {
    if (env_rate(p, fault_env[f], &pf->rate[f], names[f], err, errlen) < 0) return -1;
    sum += pf->rate[f];
  }
  if (sum > 1 + FAULTS_RATE_SLACK) {
    list_rates(list, sizeof list, names + 1, pf->rate + 1, SIMFAULT_NREQUEST - 1);
    snprintf(err, errlen,
             "%s: the request fault rates of %s add up to %g, more than 1 (a request gets at "
             "most one fault)",
             list, prov_stats[p], sum);
    return -1;
  }
  double outcome[2];
  if (env_rate(p, "MODERATION_RATE", &outcome[0], names[0], err, errlen) < 0 ||
      env_rate(p, "FAIL_RATE", &outcome[1], names[1], err, errlen) < 0)
    return -1;
  pf->moderation = outcome[0];
  pf->fail = outcome[1];
  if (outcome[0] + outcome[1] > 1 + FAULTS_RATE_SLACK) {
    list_rates(list, sizeof list, names, outcome, 2);
    snprintf(err, errlen,
             "%s: the generation fault rates of %s add up to %g, more than 1 (a generation "
             "ends one way)",
             list, prov_stats[p], outcome[0] + outcome[1]);
    return -1;
  }
  unsigned def_latency = p == SIM_OPENAI ? FAULTS_OPENAI_LATENCY_MS : 0;
  if (env_uint(p, "LATENCY_MS", def_latency, FAULTS_MAX_LATENCY_MS, &pf->latency_ms, err, errlen) <
          0 ||
      env_uint(p, "RETRY_AFTER_S", 1, FAULTS_MAX_RETRY_AFTER_S, &pf->retry_after_s, err, errlen) <
          0)
    return -1;
  return 0;
}

static int injects(const prov_faults *pf) {
  double sum = pf->moderation + pf->fail;
  for (int f = SIMFAULT_ERROR; f < SIMFAULT_NREQUEST; f++)
    sum += pf->rate[f];
  return sum > 0;
}

int simfaults_init(provsim *ps, char *err, size_t errlen) {
  simfaults *fs = calloc(1, sizeof *fs);
  if (!fs) return snprintf(err, errlen, "out of memory"), -1;
  uint64_t seed;
  int given;
  if (env_seed(&seed, &given, err, errlen) < 0) goto fail;
  uint64_t s = seed;
  for (int p = 0; p < SIM_NPROVIDERS; p++) {
    prov_faults *pf = &fs->prov[p];
    if (read_provider(pf, (sim_provider)p, err, errlen) < 0) goto fail;
    pf->rng_req = splitmix64(&s);
    pf->rng_gen = splitmix64(&s);
    for (int f = 0; f < SIMFAULT_NREQUEST; f++)
      for (int v = 0; v < 2; v++)
        fs->tags[p][f][v] = (fault_tag){(sim_provider)p, (simfault)f, v};
    /* Only a provider that injects shows the maps even when empty: the
     * counters of a simulator run without faults keep their old shape. */
    if (injects(pf) && (simstats_declare(ps->stats, prov_stats[p], "faults", 1) < 0 ||
                        simstats_declare(ps->stats, prov_stats[p], "lost_creates", 1) < 0)) {
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
  }
  char seedstr[24];
  snprintf(seedstr, sizeof seedstr, "%llu", (unsigned long long)seed);
  log_info("fault injection", LS("seed", seedstr),
           LS("seed_from", given ? "PROVSIM_SEED" : "clock"));
  for (int p = 0; p < SIM_NPROVIDERS; p++) {
    const prov_faults *pf = &fs->prov[p];
    if (!injects(pf)) continue;
    log_info("faults configured", LS("provider", prov_stats[p]),
             LD("error", pf->rate[SIMFAULT_ERROR]), LD("rate_limit", pf->rate[SIMFAULT_RATE_LIMIT]),
             LD("hang", pf->rate[SIMFAULT_HANG]), LD("reset", pf->rate[SIMFAULT_RESET]),
             LD("truncate", pf->rate[SIMFAULT_TRUNCATE]),
             LD("malformed", pf->rate[SIMFAULT_MALFORMED]), LD("moderation", pf->moderation),
             LD("fail", pf->fail), LI("latency_ms", pf->latency_ms),
             LI("retry_after_s", pf->retry_after_s));
  }
  ps->faults = fs;
  return 0;
fail:
  free(fs);
  return -1;
}

void simfaults_free(provsim *ps) {
  simfaults *fs = ps->faults;
  if (!fs) return;
  /* Hung requests are released (simfaults_release_hung, or their gone
   * notice) before the loop ends; what is left here is only our nodes. */
  while (fs->hung_oldest) {
    sim_hung *h = fs->hung_oldest;
    fs->hung_oldest = h->next;
    free(h);
  }
  free(fs);
  ps->faults = NULL;
}

unsigned simfaults_latency(const provsim *ps, sim_provider p) {
  return ps->faults ? ps->faults->prov[p].latency_ms : 0;
}

int simfaults_of(const http_request *req, sim_provider *p, simfault *f) {
  const fault_tag *t = http_req_data(req);
  *f = t ? t->f : SIMFAULT_NONE;
  if (t) *p = t->p;
  return t != NULL;
}

static void count(provsim *ps, sim_provider p, const char *name) {
  simstats_incr(ps->stats, prov_stats[p], "faults", name);
}

/* ---- answers of the faults decided up front -------------------------- */

/* One of n variants of a fault, from where u fell inside its bucket
 * [lo, lo + w): no second draw, so the sequence replays the same. */
static int pick(double u, double lo, double w, int n) {
  int i = w > 0 ? (int)((u - lo) / w * n) : 0;
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}

static const char *status_message(int status) {
  return status == 429   ? "Rate limit reached for requests; try again later"
         : status == 502 ? "Bad gateway"
         : status == 503 ? "The service is temporarily overloaded; try again later"
                         : "The server had an error while processing your request";
}

/* The provider's error body for status: OpenAI {"error": {message, type,
 * param, code}}, Luma {"detail"}, Hedra {"error": {code, message,
 * retryable, retry_after}}. Caller frees with cJSON_free; NULL on OOM. */
static char *error_body(sim_provider p, int status, unsigned retry_after_s) {
  cJSON *o = cJSON_CreateObject(), *e;
  const char *msg = status_message(status);
  switch (p) {
  case SIM_OPENAI:
    e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", status == 429 ? "requests" : "server_error");
    cJSON_AddNullToObject(e, "param");
    if (status == 429)
      cJSON_AddStringToObject(e, "code", "rate_limit_exceeded"); /* not insufficient_quota */
    else
      cJSON_AddNullToObject(e, "code");
    break;
  case SIM_LUMA:
    cJSON_AddStringToObject(o, "detail", msg);
    break;
  default:
    e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code",
                            status == 429   ? "RESOURCE_EXHAUSTED"
                            : status == 500 ? "INTERNAL"
                                            : "UNAVAILABLE");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddBoolToObject(e, "retryable", 1);
    if (status == 429)
      cJSON_AddNumberToObject(e, "retry_after", retry_after_s);
    else
      cJSON_AddNullToObject(e, "retry_after");
    break;
  }
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

/* Fills r with the answer of an injected error or rate limit: status, the
 * Retry-After headers of a 429, and the provider's error body. */
static void error_reply(const simfaults *fs, sim_provider p, int status, simfault_reply *r) {
  unsigned ra = fs->prov[p].retry_after_s;
  snprintf(r->retry, sizeof r->retry, "Retry-After: %u", ra);
  snprintf(r->retry_ms, sizeof r->retry_ms, "retry-after-ms: %llu", (unsigned long long)ra * 1000);
  snprintf(r->reset, sizeof r->reset, "x-ratelimit-reset-requests: %us", ra);
  int n = 0;
  r->hdr[n++] = r->retry;
  if (p == SIM_OPENAI) {
    r->hdr[n++] = r->retry_ms;
    r->hdr[n++] = "x-ratelimit-limit-requests: 10000";
    r->hdr[n++] = "x-ratelimit-remaining-requests: 0";
    r->hdr[n++] = r->reset;
  }
  r->hdr[n] = NULL;
  r->status = status;
  r->content_type = "application/json";
  r->headers = status == 429 ? r->hdr : NULL;
  r->body = error_body(p, status, ra);
}

simbegin simfaults_begin(provsim *ps, http_request *req, sim_provider p, simfault_reply *reply) {
  simfaults *fs = ps->faults;
  prov_faults *pf = &fs->prov[p];
  double u = uniform(&pf->rng_req), lo = 0;
  simfault f = SIMFAULT_NONE;
  for (int i = SIMFAULT_ERROR; i < SIMFAULT_NREQUEST && f == SIMFAULT_NONE; i++) {
    if (u < lo + pf->rate[i])
      f = (simfault)i;
    else
      lo += pf->rate[i];
  }
  int variant = f == SIMFAULT_MALFORMED ? pick(u, lo, pf->rate[f], 2) : 0;
  http_req_set_data(req, &fs->tags[p][f][variant]);
  if (f == SIMFAULT_NONE) return SIMBEGIN_HANDLE;
  count(ps, p, fault_names[f]);
  log_debug("fault injected", LS("provider", prov_stats[p]), LS("fault", fault_names[f]),
            LS("path", http_req_path(req)), LS("request_id", http_req_id(req)));
  switch (f) {
  case SIMFAULT_ERROR:
    error_reply(fs, p, (const int[]){500, 502, 503}[pick(u, lo, pf->rate[f], 3)], reply);
    return SIMBEGIN_REPLY;
  case SIMFAULT_RATE_LIMIT:
    error_reply(fs, p, 429, reply);
    return SIMBEGIN_REPLY;
  case SIMFAULT_RESET:
    http_abort(req);
    return SIMBEGIN_DONE;
  default:
    return SIMBEGIN_HANDLE; /* hang, truncate, malformed: the answer carries them */
  }
}

void simfaults_created(provsim *ps, const http_request *req, const char *key) {
  sim_provider p;
  simfault f;
  if (!key || !simfaults_of(req, &p, &f)) return;
  if (f == SIMFAULT_HANG || f == SIMFAULT_TRUNCATE || f == SIMFAULT_MALFORMED)
    simstats_incr(ps->stats, prov_stats[p], "lost_creates", key);
}

simoutcome simfaults_outcome(provsim *ps, sim_provider p) {
  prov_faults *pf = &ps->faults->prov[p];
  double u = uniform(&pf->rng_gen);
  if (u < pf->moderation) {
    count(ps, p, "moderation");
    return SIMOUTCOME_MODERATION;
  }
  if (u < pf->moderation + pf->fail) {
    count(ps, p, "fail");
    return SIMOUTCOME_FAIL;
  }
  return SIMOUTCOME_OK;
}

/* ---- hung requests --------------------------------------------------- */

static void hung_unlink(simfaults *fs, sim_hung *h) {
  if (h->prev)
    h->prev->next = h->next;
  else
    fs->hung_oldest = h->next;
  if (h->next)
    h->next->prev = h->prev;
  else
    fs->hung_newest = h->prev;
  fs->nhung--;
  fs->hung_bytes -= h->bytes;
}

/* The connection closed while the request hung (the server closing, or an
 * error reading from it): release the request. */
static void hung_gone(http_request *req, void *arg) {
  sim_hung *h = arg;
  hung_unlink(h->fs, h);
  free(h);
  http_stream_end(req); /* gone: only frees it */
}

/* Closes the oldest hung request's connection, without an answer. */
static void hung_drop_oldest(simfaults *fs) {
  sim_hung *h = fs->hung_oldest;
  hung_unlink(fs, h);
  http_req_on_gone(h->req, NULL, NULL);
  http_stream_end(h->req);
  free(h);
}

/* Holds req unanswered. http_server does not tell a held request that its
 * client closed (a half-close may still expect the answer), so a hung
 * connection stays until the simulator closes it: the oldest are closed
 * once FAULTS_MAX_HUNG requests or FAULTS_MAX_HUNG_BYTES of their bodies
 * are held, long after any client gave up on them. */
static void hang(provsim *ps, http_request *req) {
  simfaults *fs = ps->faults;
  sim_hung *h = ps->closing || http_req_gone(req) ? NULL : calloc(1, sizeof *h);
  if (!h) { /* closing, gone or out of memory: close now, still unanswered */
    http_stream_end(req);
    return;
  }
  size_t blen;
  http_req_body(req, &blen);
  h->fs = fs;
  h->req = req;
  h->bytes = blen;
  h->prev = fs->hung_newest;
  if (h->prev)
    h->prev->next = h;
  else
    fs->hung_oldest = h;
  fs->hung_newest = h;
  fs->nhung++;
  fs->hung_bytes += blen;
  http_req_on_gone(req, hung_gone, h);
  while (fs->nhung > 1 && (fs->nhung > FAULTS_MAX_HUNG || fs->hung_bytes > FAULTS_MAX_HUNG_BYTES))
    hung_drop_oldest(fs);
}

void simfaults_release_hung(provsim *ps) {
  if (!ps->faults) return;
  while (ps->faults->hung_oldest)
    hung_drop_oldest(ps->faults);
}

/* ---- spoiled answers ------------------------------------------------- */

/* The status line and headers of the normal answer with its full
 * Content-Length, then the first half of the body, then the connection
 * closes. A body-less answer is cut to nothing. */
static void truncate_answer(http_request *req, int status, const char *content_type,
                            const char *const *extra_headers, const char *body, size_t len) {
  const char *headers[FAULTS_MAX_HEADERS + 2];
  char clen[48];
  int n = 0;
  if (len == 0) {
    http_stream_end(req);
    return;
  }
  for (; extra_headers && extra_headers[n] && n < FAULTS_MAX_HEADERS; n++)
    headers[n] = extra_headers[n];
  snprintf(clen, sizeof clen, "Content-Length: %zu", len);
  headers[n++] = clen;
  headers[n] = NULL;
  /* A stream's head carries no length of its own: ours is the only one. */
  if (http_stream_begin(req, status, content_type, headers) == 0)
    http_stream_write(req, body, len / 2);
  http_stream_end(req);
}

/* The normal status with a body that is no JSON: the first half of the
 * normal one, or (html) the error page of a proxy in between. */
static void malformed_answer(http_request *req, int html, int status, const char *content_type,
                             const char *const *extra_headers, const char *body, size_t len) {
  static const char page[] =
      "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
      "Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
  if (len >= 2 && !html) {
    http_respond(req, status, content_type, extra_headers, body, len / 2);
    return;
  }
  /* A body-less answer (a 204) cannot carry the page: it becomes a 200. */
  if (status == 204 || status == 304 || status < 200) status = 200;
  http_respond(req, status, content_type ? content_type : "application/json", extra_headers, page,
               sizeof page - 1);
}

void simfaults_answer(provsim *ps, http_request *req, int status, const char *content_type,
                      const char *const *extra_headers, const char *body, size_t len) {
  sim_provider p;
  simfault f;
  simfaults_of(req, &p, &f);
  if (!body) len = 0;
  switch (f) {
  case SIMFAULT_HANG:
    hang(ps, req);
    break;
  case SIMFAULT_TRUNCATE:
    truncate_answer(req, status, content_type, extra_headers, body, len);
    break;
  case SIMFAULT_MALFORMED:
    malformed_answer(req, ((const fault_tag *)http_req_data(req))->variant, status, content_type,
                     extra_headers, body, len);
    break;
  default:
    http_respond(req, status, content_type, extra_headers, body, len);
    break;
  }
}
