/* metrics.c — the worker's GET /metrics on GENQ_METRICS_LISTEN
 * (docs/metrics.md), served by genq's HTTP server on the worker's own
 * loop (nothing here blocks it):
 *
 *   this worker    jobs claimed and reclaimed, runs ended by outcome and
 *                  how long they took, steps by step kind and outcome and
 *                  how long they took, credits its step successes
 *                  captured, provider answers by code and their latency,
 *                  the jobs in flight, the provider slots it holds and the
 *                  steps waiting for one — counted by runner.c, fetch.c and
 *                  provider_send as array increments (wmetrics, worker.h);
 *                  process_*
 *   the fleet      each provider's limits as Redis has them: window, slots
 *                  in use, pause, rate, breaker (provlimit_state.h), read
 *                  when a scrape finds them older than a second
 *                  (prom_cache.h) and waited for a second at most; with
 *                  Redis down a scrape answers the last values and
 *                  genq_provider_state_up 0.
 *
 * Every worker that listens exports the providers' gauges with the same
 * values (dashboards take max); its own counts add up across workers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genq_version.h"
#include "http_server.h"
#include "log.h"
#include "provlimit_state.h"
#include "worker.h"

_Static_assert(METRICS_PROVIDERS == PROV_COUNT && PROV_COUNT == PROVLIMIT_NPROVIDERS,
               "a provider_stats per provider with limits");

#define METRICS_MAX_BYTES (8u << 20)
#define STATE_MAX_AGE_MS 1000
#define STATE_WAIT_MS 1000

static const char *const job_outcome_names[JOB_OUTCOMES] = {"lost", "succeeded", "failed",
                                                            "dead", "retry",     "handed_back"};
static const char *const step_outcome_names[STEP_OUTCOMES] = {"stopped", "succeeded", "failed"};
static const char *const step_kind_names[METRICS_STEP_KINDS] = {"storyboard", "image", "video",
                                                                "lipsync", "other"};

/* A run: from a quick storyboard to a campaign of many videos. */
static const double job_bounds[] = {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600};
static const prom_buckets job_buckets = {job_bounds, sizeof job_bounds / sizeof job_bounds[0]};
/* A step: a storyboard's second or two to a video's minutes. */
static const double step_bounds[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
static const prom_buckets step_buckets = {step_bounds, sizeof step_bounds / sizeof step_bounds[0]};

/* ---- counting ---- */

static int kind_index(const char *kind) {
  job_kind k;
  return job_kind_parse(kind, &k) == 0 ? (int)k : -1;
}

static int step_kind_index(const char *step_kind) {
  for (int i = 0; i < METRICS_STEP_KINDS - 1; i++)
    if (step_kind && strcmp(step_kind, step_kind_names[i]) == 0) return i;
  return METRICS_STEP_KINDS - 1;
}

void metrics_job_claimed(wjob *j, int reclaimed) {
  int k = kind_index(j->kind);
  if (k < 0) return;
  j->w->metrics.claimed[k]++;
  if (reclaimed) j->w->metrics.reclaimed[k]++;
}

void metrics_job_left(const wjob *j) {
  wmetrics *m = &j->w->metrics;
  int k = kind_index(j->kind);
  unsigned o = j->outcome < JOB_OUTCOMES ? j->outcome : JOB_OUT_LOST;
  if (k < 0) return;
  m->finished[k][o]++;
  uint64_t now = uv_now(j->w->loop);
  double s = j->claimed_at && now > j->claimed_at ? (double)(now - j->claimed_at) / 1000.0 : 0;
  prom_hist_observe(&m->job_seconds[k][o], &job_buckets, s);
}

void metrics_step_ended(const wstep *s) {
  wmetrics *m = &s->j->w->metrics;
  int sk = step_kind_index(s->step_kind);
  unsigned o = s->outcome < STEP_OUTCOMES ? s->outcome : STEP_OUT_STOPPED;
  m->steps[sk][o]++;
  uint64_t now = uv_now(s->j->w->loop);
  double secs = now > s->started_at ? (double)(now - s->started_at) / 1000.0 : 0;
  prom_hist_observe(&m->step_seconds[sk][o], &step_buckets, secs);
  int k = kind_index(s->j->kind);
  if (o == STEP_OUT_SUCCEEDED && k >= 0 && s->price > 0) m->captured[k] += (uint64_t)s->price;
}

/* ---- the fleet's provider limits, from Redis ---- */

static double jnum(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The exposition text of provlimit_state_read's array (provlimit_state.h:
 * one object per provider, in provlimit_providers' order). */
static char *state_text(const cJSON *providers, size_t *len) {
  static const char *const breakers[] = {"closed", "open", "half_open", "forced_open"};
  struct {
    const char *name, *type, *help, *field;
  } const fields[] = {
      {"genq_provider_max_in_flight", "gauge",
       "The configured limit of generations in flight at the provider across the fleet (0: "
       "none).",
       "max_in_flight"},
      {"genq_provider_window", "gauge",
       "Slots the provider's adaptive window allows now (a 429 shrinks it, successes grow it "
       "back).",
       "window"},
      {"genq_provider_slots_in_use", "gauge",
       "Provider slots held now across the fleet (generations in flight).", "in_use"},
      {"genq_provider_rate_per_minute", "gauge",
       "The configured paid calls a minute to the provider across the fleet (0: no rate).",
       "rate_per_minute"},
      {"genq_provider_breaker_failures", "gauge",
       "Consecutive failures (5xx, timeouts) toward the provider's breaker.", "failures"},
      {"genq_provider_breaker_trips_total", "counter",
       "Times the provider's breaker opened, across the fleet.", "breaker_trips"},
      {"genq_provider_rate_limited_total", "counter",
       "429 answers from the provider the fleet reported (each shrinks the window).",
       "rate_limited"},
      {"genq_provider_paused_seconds", "gauge",
       "How long new generations at the provider stay paused (a 429's Retry-After); 0: not "
       "paused.",
       "paused_for_ms"},
  };
  prom_buf b;
  prom_buf_init(&b, METRICS_MAX_BYTES);
  const cJSON *p;
  for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
    prom_family(&b, fields[f].name, fields[f].type, fields[f].help);
    int ms = strcmp(fields[f].field, "paused_for_ms") == 0;
    cJSON_ArrayForEach(p, providers) {
      const char *const labels[] = {"provider",
                                    cJSON_GetStringValue(cJSON_GetObjectItem(p, "provider")), NULL};
      double v = jnum(p, fields[f].field); /* paused_for_ms is null when not paused: 0 */
      prom_sample(&b, fields[f].name, labels[1] ? labels : NULL, ms ? v / 1000.0 : v);
    }
  }
  prom_family(&b, "genq_provider_breaker_state", "gauge",
              "The provider's breaker: 1 for the state it is in (closed, open, half_open: the "
              "next call is the probe, forced_open: genqctl providers open), 0 for the others.");
  cJSON_ArrayForEach(p, providers) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(p, "provider"));
    const char *br = cJSON_GetStringValue(cJSON_GetObjectItem(p, "breaker"));
    for (size_t i = 0; name && i < sizeof breakers / sizeof breakers[0]; i++) {
      const char *const labels[] = {"provider", name, "state", breakers[i], NULL};
      prom_sample(&b, "genq_provider_breaker_state", labels, br && !strcmp(br, breakers[i]));
    }
  }
  return prom_buf_take(&b, len);
}

static void state_answer(const cJSON *providers, const char *err, void *arg) {
  prom_cache *c = arg;
  size_t len = 0;
  char *text = NULL;
  if (providers && cJSON_GetArraySize(providers) == PROV_COUNT)
    text = state_text(providers, &len);
  else
    log_warn("metrics: the provider limits were not read",
             LS("error", err ? err : "unexpected answer"));
  prom_cache_done(c, text, len);
}

/* prom_cache's read: every provider's state (provlimit_state_read). */
static void state_read_start(prom_cache *c, void *arg) {
  worker *w = arg;
  if (w->redis_closed || provlimit_state_read(w->redis, state_answer, c) != 0)
    prom_cache_done(c, NULL, 0);
}

/* ---- the scrape ---- */

static void write_worker(worker *w, prom_buf *b) {
  const wmetrics *m = &w->metrics;
  char kinds[256] = "";
  for (int i = 0; i < w->nkinds; i++)
    snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s", i ? "," : "",
             w->kinds[i]);
  prom_family(b, "genq_worker_info", "gauge",
              "This worker: its registry id, version and the kinds it takes (always 1).");
  const char *const info[] = {"worker_id", w->id, "version", GENQ_VERSION, "kinds", kinds, NULL};
  prom_sample(b, "genq_worker_info", info, 1);
  prom_family(b, "genq_worker_state", "gauge",
              "The worker's state: 1 for running, quiet (takes no new job) or stopping.");
  static const char *const states[] = {"running", "quiet", "stopping"};
  for (int i = 0; i < 3; i++) {
    const char *const labels[] = {"state", states[i], NULL};
    prom_sample(b, "genq_worker_state", labels,
                strcmp(presence_state_name(w->state), states[i]) == 0);
  }
  prom_family(b, "genq_worker_concurrency", "gauge", "Jobs this worker may hold at once.");
  prom_sample(b, "genq_worker_concurrency", NULL, w->concurrency);
  prom_family(b, "genq_worker_jobs_in_flight", "gauge",
              "Jobs this worker holds now: waiting for a provider slot before their claim, "
              "claiming, running, or writing their end.");
  prom_sample(b, "genq_worker_jobs_in_flight", NULL, w->inflight);

  prom_family(b, "genq_worker_jobs_claimed_total", "counter",
              "Jobs this worker claimed, per kind.");
  for (int k = 0; k < JOB_KIND_COUNT; k++) {
    const char *const labels[] = {"kind", job_kind_name((job_kind)k), NULL};
    prom_sample_u64(b, "genq_worker_jobs_claimed_total", labels, m->claimed[k]);
  }
  prom_family(b, "genq_worker_reclaims_total", "counter",
              "Claims of a job another worker was running until its lease lapsed, per kind.");
  for (int k = 0; k < JOB_KIND_COUNT; k++) {
    const char *const labels[] = {"kind", job_kind_name((job_kind)k), NULL};
    prom_sample_u64(b, "genq_worker_reclaims_total", labels, m->reclaimed[k]);
  }
  prom_family(b, "genq_worker_stream_reclaims_total", "counter",
              "Stream messages this worker took over from readers that died before claiming.");
  prom_sample_u64(b, "genq_worker_stream_reclaims_total", NULL, m->stream_reclaims);
  prom_family(b, "genq_worker_jobs_finished_total", "counter",
              "Runs of claimed jobs that ended here, per kind and outcome: succeeded, failed, "
              "dead (no attempt left), retry (queued again after a backoff), handed_back "
              "(shutdown), lost (fenced, canceled, or its last write failed).");
  for (int k = 0; k < JOB_KIND_COUNT; k++)
    for (int o = 0; o < JOB_OUTCOMES; o++) {
      const char *const labels[] = {"kind", job_kind_name((job_kind)k), "outcome",
                                    job_outcome_names[o], NULL};
      prom_sample_u64(b, "genq_worker_jobs_finished_total", labels, m->finished[k][o]);
    }
  prom_family(b, "genq_worker_job_duration_seconds", "histogram",
              "From a job's claim to the end of its run here, per kind and outcome.");
  for (int k = 0; k < JOB_KIND_COUNT; k++)
    for (int o = 0; o < JOB_OUTCOMES; o++) {
      if (!prom_hist_count(&m->job_seconds[k][o], &job_buckets)) continue;
      const char *const labels[] = {"kind", job_kind_name((job_kind)k), "outcome",
                                    job_outcome_names[o], NULL};
      prom_histogram(b, "genq_worker_job_duration_seconds", labels, &job_buckets,
                     &m->job_seconds[k][o]);
    }
  prom_family(b, "genq_worker_steps_total", "counter",
              "Steps that ended here, per step kind and outcome (succeeded, failed, stopped).");
  for (int sk = 0; sk < METRICS_STEP_KINDS; sk++)
    for (int o = 0; o < STEP_OUTCOMES; o++) {
      const char *const labels[] = {"step_kind", step_kind_names[sk], "outcome",
                                    step_outcome_names[o], NULL};
      prom_sample_u64(b, "genq_worker_steps_total", labels, m->steps[sk][o]);
    }
  prom_family(b, "genq_worker_step_duration_seconds", "histogram",
              "From a step's start (its slot wait included) to its end, per step kind and "
              "outcome.");
  for (int sk = 0; sk < METRICS_STEP_KINDS; sk++)
    for (int o = 0; o < STEP_OUTCOMES; o++) {
      if (!prom_hist_count(&m->step_seconds[sk][o], &step_buckets)) continue;
      const char *const labels[] = {"step_kind", step_kind_names[sk], "outcome",
                                    step_outcome_names[o], NULL};
      prom_histogram(b, "genq_worker_step_duration_seconds", labels, &step_buckets,
                     &m->step_seconds[sk][o]);
    }
  prom_family(b, "genq_worker_credits_captured_total", "counter",
              "Credits captured by the step successes this worker committed, per kind.");
  for (int k = 0; k < JOB_KIND_COUNT; k++) {
    const char *const labels[] = {"kind", job_kind_name((job_kind)k), NULL};
    prom_sample_u64(b, "genq_worker_credits_captured_total", labels, m->captured[k]);
  }

  prom_family(b, "genq_worker_provider_requests_total", "counter",
              "Requests this worker sent to each provider, by the answer's HTTP status code, or "
              "timeout, network or canceled when none came.");
  for (int p = 0; p < PROV_COUNT; p++) {
    const provider_stats *ps = &m->provider[p];
    for (int c = 0; c < PROM_STATUS_SLOTS; c++) {
      if (!ps->status[c]) continue;
      const char *const labels[] = {"provider", provlimit_providers[p], "code",
                                    prom_status_label(c), NULL};
      prom_sample_u64(b, "genq_worker_provider_requests_total", labels, ps->status[c]);
    }
    for (int f = 0; f < PROVIDER_NO_ANSWERS; f++) {
      if (!ps->no_answer[f]) continue;
      const char *const labels[] = {"provider", provlimit_providers[p], "code",
                                    provider_no_answer_label(f), NULL};
      prom_sample_u64(b, "genq_worker_provider_requests_total", labels, ps->no_answer[f]);
    }
  }
  prom_family(b, "genq_worker_provider_request_duration_seconds", "histogram",
              "How long each request to a provider took, answered or not.");
  for (int p = 0; p < PROV_COUNT; p++) {
    const char *const labels[] = {"provider", provlimit_providers[p], NULL};
    prom_histogram(b, "genq_worker_provider_request_duration_seconds", labels,
                   &provider_seconds_buckets, &m->provider[p].seconds);
  }

  /* what the jobs in flight hold and wait for: one pass over them */
  uint64_t held[PROV_COUNT] = {0}, waiting[PROV_COUNT] = {0}, admitting[PROV_COUNT] = {0};
  for (const wjob *j = w->jobs; j; j = j->next) {
    if (j->pre_slot >= 1 && j->pre_slot <= PROV_COUNT) held[j->pre_slot - 1]++; /* not adopted */
    for (const wstep *s = j->running; s; s = s->next) {
      if (s->slot >= 1 && s->slot <= PROV_COUNT) held[s->slot - 1]++;
      if (s->slot_want >= 1 && s->slot_want <= PROV_COUNT && !s->slot) waiting[s->slot_want - 1]++;
    }
  }
  admit_waiting(w, admitting);
  prom_family(b, "genq_worker_provider_slots_held", "gauge",
              "Fleet-wide provider slots this worker's jobs hold now.");
  for (int p = 0; p < PROV_COUNT; p++) {
    const char *const labels[] = {"provider", provlimit_providers[p], NULL};
    prom_sample_u64(b, "genq_worker_provider_slots_held", labels, held[p]);
  }
  prom_family(b, "genq_worker_jobs_waiting_slot", "gauge",
              "Jobs this worker read that wait for their first step's provider slot before their "
              "claim (still queued in PostgreSQL).");
  for (int p = 0; p < PROV_COUNT; p++) {
    const char *const labels[] = {"provider", provlimit_providers[p], NULL};
    prom_sample_u64(b, "genq_worker_jobs_waiting_slot", labels, admitting[p]);
  }
  prom_family(b, "genq_worker_steps_waiting_slot", "gauge",
              "Steps of claimed jobs waiting for a provider slot (a later stage's, or one whose "
              "slot went back on a 429).");
  for (int p = 0; p < PROV_COUNT; p++) {
    const char *const labels[] = {"provider", provlimit_providers[p], NULL};
    prom_sample_u64(b, "genq_worker_steps_waiting_slot", labels, waiting[p]);
  }
  prom_write_process(b);
}

/* An error in genq's shape; the message is one of ours (no escaping
 * needed), the request id is [A-Za-z0-9._-]. */
static void reply_error(http_request *r, int status, const char *code, const char *message,
                        const char *const *headers) {
  char out[512];
  int n = snprintf(out, sizeof out,
                   "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"request_id\":\"%s\"}}", code,
                   message, http_req_id(r));
  http_respond(r, status, "application/json", headers, out, (size_t)n);
}

static void server_error(http_request *r, int status, const char *code, const char *message,
                         void *arg) {
  (void)arg;
  reply_error(r, status, code, message, NULL);
}

static void scrape_ready(void *arg) {
  http_request *req = arg;
  worker *w = http_req_data(req);
  prom_buf b;
  prom_buf_init(&b, METRICS_MAX_BYTES);
  if (w->provider_state) prom_cache_write(w->provider_state, &b);
  write_worker(w, &b);
  size_t len;
  char *text = prom_buf_take(&b, &len);
  if (!text) {
    reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  static const char *const no_store[] = {"Cache-Control: no-store", NULL};
  http_respond_take(req, 200, PROM_CONTENT_TYPE, no_store, text, len);
}

static void on_request(http_request *req, void *arg) {
  worker *w = arg;
  if (strcmp(http_req_path(req), "/metrics") != 0) {
    reply_error(req, 404, "not_found", "no such endpoint (GET /metrics)", NULL);
    return;
  }
  if (strcmp(http_req_method(req), "GET") != 0) {
    static const char *const allow[] = {"Allow: GET", NULL};
    reply_error(req, 405, "method_not_allowed", "method not allowed", allow);
    return;
  }
  http_req_set_data(req, w);
  if (w->provider_state)
    prom_cache_get(w->provider_state, scrape_ready, req);
  else
    scrape_ready(req); /* stopping */
}

int metrics_start(worker *w, char *err, size_t errlen) {
  w->luma.stats = &w->metrics.provider[PROV_LUMA];
  w->openai.stats = &w->metrics.provider[PROV_OPENAI];
  w->hedra.stats = &w->metrics.provider[PROV_HEDRA];
  if (!w->cfg.metrics_host[0]) return 0; /* GENQ_METRICS_LISTEN unset */
  /* a scraper's requests: small, few, and never a body */
  http_limits lim = {.max_header_bytes = 8192,
                     .max_body_bytes = 1024,
                     .header_timeout_ms = 10000,
                     .idle_timeout_ms = 60000,
                     .max_connections = 64};
  prom_cache_opts o = {.name = "genq_provider_state",
                       .what = "the provider limits in Redis",
                       .max_age_ms = STATE_MAX_AGE_MS,
                       .wait_ms = STATE_WAIT_MS,
                       .read = state_read_start,
                       .arg = w};
  int rc = http_server_new(&w->metrics_server, w->loop, &lim, on_request, w);
  if (rc == 0) {
    http_server_set_error_writer(w->metrics_server, server_error, NULL);
    rc = http_server_listen(w->metrics_server, w->cfg.metrics_host, w->cfg.metrics_port);
  }
  if (rc == 0 && prom_cache_new(&w->provider_state, w->loop, &o) != 0) rc = UV_ENOMEM;
  if (rc != 0) {
    snprintf(err, errlen, "GENQ_METRICS_LISTEN: cannot listen on %s:%d: %s", w->cfg.metrics_host,
             w->cfg.metrics_port, uv_strerror(rc));
    if (w->metrics_server) http_server_close(w->metrics_server, NULL, NULL);
    w->metrics_server = NULL;
    return -1;
  }
  log_info("metrics listening", LS("host", w->cfg.metrics_host),
           LI("port", http_server_port(w->metrics_server)));
  return 0;
}

void metrics_stop(worker *w) {
  if (w->provider_state) prom_cache_close(w->provider_state); /* waiting scrapes answered */
  w->provider_state = NULL;
  if (w->metrics_server) http_server_close(w->metrics_server, NULL, NULL);
  w->metrics_server = NULL;
}
