/* metrics.c — GET /metrics: Prometheus text (docs/metrics.md).
 *
 *   this process   HTTP requests by route template, method and code, and
 *                  their latency (common/http_metrics.h, counted by the
 *                  server's observer); jobs submitted per kind; open event
 *                  streams and asset downloads; process_*
 *   the fleet      the queue per kind, jobs queued and running, the
 *                  dead-letter set, lapsed leases, credits held, webhook
 *                  deliveries — genq_fleet_metrics (schema/functions/
 *                  fleet.sql), read when a scrape finds it older than a
 *                  second (prom_cache.h): a scrape storm costs PostgreSQL
 *                  one statement a second per API process, and a scrape
 *                  while PostgreSQL is down answers within a second with
 *                  the last values and genq_fleet_up 0.
 *
 * Every genq-api process exports the fleet's gauges with the same values:
 * dashboards aggregate them with max, never sum (the workers' own series
 * are per process and do add up). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http_metrics.h"
#include "job.h"
#include "log.h"
#include "prom_cache.h"

#define METRICS_MAX_BYTES (8u << 20) /* a scrape's answer; it is a few KiB */
#define FLEET_MAX_AGE_MS 1000
#define FLEET_WAIT_MS 1000

struct api_metrics {
  http_metrics *http;
  prom_cache *fleet;
  uint64_t submitted[JOB_KIND_COUNT];
};

/* ---- the fleet, from genq_fleet_metrics() ---- */

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k) {
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
  return s ? s : "";
}

/* The jobs of kind in genq_fleet_metrics' dead list (0 when absent). */
static double dead_of(const cJSON *dead, const char *kind) {
  const cJSON *d;
  cJSON_ArrayForEach(d, dead) if (strcmp(str(d, "kind"), kind) == 0) return num(d, "jobs");
  return 0;
}

/* The exposition text of genq_fleet_metrics' answer; NULL when it is not
 * what that function answers, or out of memory. */
static char *fleet_text(const char *json, size_t *len) {
  cJSON *f = cJSON_Parse(json);
  const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(f, "kinds");
  if (!cJSON_IsArray(kinds)) {
    cJSON_Delete(f);
    return NULL;
  }
  prom_buf b;
  prom_buf_init(&b, METRICS_MAX_BYTES);
  const cJSON *k;
  prom_family(&b, "genq_queue_jobs", "gauge",
              "Jobs queued, per kind: ready to run now, or waiting for a retry's time (fleet-wide, "
              "from PostgreSQL).");
  cJSON_ArrayForEach(k, kinds) {
    const char *const ready[] = {"kind", str(k, "kind"), "state", "ready", NULL};
    const char *const waiting[] = {"kind", str(k, "kind"), "state", "retry_waiting", NULL};
    prom_sample(&b, "genq_queue_jobs", ready, num(k, "ready"));
    prom_sample(&b, "genq_queue_jobs", waiting, num(k, "retry_waiting"));
  }
  prom_family(&b, "genq_queue_oldest_age_seconds", "gauge",
              "How long the ready job that has waited longest has waited, per kind (0 when none "
              "is ready).");
  cJSON_ArrayForEach(k, kinds) {
    const char *const labels[] = {"kind", str(k, "kind"), NULL};
    prom_sample(&b, "genq_queue_oldest_age_seconds", labels, num(k, "oldest_age_s"));
  }
  prom_family(&b, "genq_jobs", "gauge",
              "Unfinished jobs per kind and state (queued or running), fleet-wide.");
  cJSON_ArrayForEach(k, kinds) {
    const char *const queued[] = {"kind", str(k, "kind"), "state", "queued", NULL};
    const char *const running[] = {"kind", str(k, "kind"), "state", "running", NULL};
    prom_sample(&b, "genq_jobs", queued, num(k, "queued"));
    prom_sample(&b, "genq_jobs", running, num(k, "running"));
  }
  const cJSON *dead = cJSON_GetObjectItemCaseSensitive(f, "dead");
  prom_family(&b, "genq_dead_jobs", "gauge",
              "Jobs in the dead-letter set per kind (genqctl dead list), fleet-wide.");
  cJSON_ArrayForEach(k, kinds) {
    const char *const labels[] = {"kind", str(k, "kind"), NULL};
    prom_sample(&b, "genq_dead_jobs", labels, dead_of(dead, str(k, "kind")));
  }
  prom_family(&b, "genq_jobs_lease_lapsed", "gauge",
              "Running jobs whose lease has lapsed (their worker stopped renewing): a live "
              "worker reclaims them.");
  prom_sample(&b, "genq_jobs_lease_lapsed", NULL, num(f, "leases_lapsed"));
  prom_family(&b, "genq_credits_held", "gauge",
              "Credits held by unfinished jobs, fleet-wide (the sum of every account's held).");
  prom_sample(&b, "genq_credits_held", NULL, num(f, "credits_held"));
  prom_family(&b, "genq_webhook_deliveries", "gauge",
              "Completion webhook deliveries kept in the outbox, per state (pending, "
              "delivering, delivered, failed, refused; a state with none is absent).");
  cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(f, "webhooks")) {
    const char *const labels[] = {"state", str(k, "state"), NULL};
    prom_sample(&b, "genq_webhook_deliveries", labels, num(k, "deliveries"));
  }
  cJSON_Delete(f);
  return prom_buf_take(&b, len);
}

static void fleet_read_done(const db_result *r, void *arg) {
  prom_cache *c = arg;
  size_t len = 0;
  char *text = NULL;
  if (!r->ok)
    log_warn("metrics: the fleet state was not read", LS("error", r->error ? r->error : ""));
  else if (PQntuples(r->res) != 1 || !(text = fleet_text(PQgetvalue(r->res, 0, 0), &len)))
    log_error("metrics: genq_fleet_metrics answered what it should not", LOG_END);
  prom_cache_done(c, text, len);
}

/* prom_cache's read: genq_fleet_metrics(), unless PostgreSQL is known to
 * be away (then it fails at once instead of queueing for seconds). */
static void fleet_read(prom_cache *c, void *arg) {
  api_ctx *ctx = arg;
  if (db_connected(ctx->db) == 0 ||
      db_query(ctx->db, "select genq_fleet_metrics()", 0, NULL, fleet_read_done, c) != 0)
    prom_cache_done(c, NULL, 0);
}

/* ---- this process ---- */

static void write_process(const api_ctx *ctx, prom_buf *b) {
  const struct api_metrics *m = ctx->metrics;
  prom_family(b, "genq_api_jobs_submitted_total", "counter",
              "Jobs this process created (202 with a new job; idempotent replays are not "
              "counted), per kind.");
  for (int k = 0; k < JOB_KIND_COUNT; k++) {
    const char *const labels[] = {"kind", job_kind_name((job_kind)k), NULL};
    prom_sample_u64(b, "genq_api_jobs_submitted_total", labels, m->submitted[k]);
  }
  prom_family(b, "genq_api_event_streams", "gauge",
              "Server-sent event streams this process holds open.");
  prom_sample_u64(b, "genq_api_event_streams", NULL, api_events_open(ctx));
  prom_family(b, "genq_api_asset_streams", "gauge",
              "Large asset downloads this process streams now.");
  prom_sample_u64(b, "genq_api_asset_streams", NULL, ctx->stored_streams);
  http_metrics_write(m->http, ctx->server, b);
  prom_write_process(b);
}

/* ---- the scrape ---- */

static void scrape_ready(void *arg) {
  http_request *req = arg;
  api_ctx *ctx = http_req_data(req);
  prom_buf b;
  prom_buf_init(&b, METRICS_MAX_BYTES);
  if (ctx->metrics->fleet) prom_cache_write(ctx->metrics->fleet, &b);
  write_process(ctx, &b);
  size_t len;
  char *text = prom_buf_take(&b, &len);
  if (!text) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  static const char *const no_store[] = {"Cache-Control: no-store", NULL};
  http_respond_take(req, 200, PROM_CONTENT_TYPE, no_store, text, len);
}

void api_metrics_get(api_ctx *ctx, http_request *req) {
  http_req_set_data(req, ctx);
  if (ctx->metrics->fleet)
    prom_cache_get(ctx->metrics->fleet, scrape_ready, req);
  else
    scrape_ready(req); /* shutting down */
}

void api_metrics_submitted(api_ctx *ctx, const char *kind) {
  job_kind k;
  if (ctx->metrics && job_kind_parse(kind, &k) == 0) ctx->metrics->submitted[k]++;
}

int api_metrics_start(api_ctx *ctx, const char *const *routes, unsigned nroutes) {
  struct api_metrics *m = calloc(1, sizeof *m);
  if (!m || !(m->http = http_metrics_new(routes, nroutes))) {
    free(m);
    return -1;
  }
  prom_cache_opts o = {.name = "genq_fleet",
                       .what = "the fleet state in PostgreSQL",
                       .max_age_ms = FLEET_MAX_AGE_MS,
                       .wait_ms = FLEET_WAIT_MS,
                       .read = fleet_read,
                       .arg = ctx};
  if (prom_cache_new(&m->fleet, ctx->loop, &o) != 0) {
    http_metrics_free(m->http);
    free(m);
    return -1;
  }
  ctx->metrics = m;
  http_server_set_observer(ctx->server, http_metrics_observe, m->http);
  return 0;
}

void api_metrics_stop(api_ctx *ctx) {
  if (!ctx->metrics || !ctx->metrics->fleet) return;
  prom_cache_close(ctx->metrics->fleet); /* waiting scrapes are answered now */
  ctx->metrics->fleet = NULL;
}

void api_metrics_free(api_ctx *ctx) {
  if (!ctx->metrics) return;
  http_metrics_free(ctx->metrics->http);
  free(ctx->metrics);
  ctx->metrics = NULL;
}
