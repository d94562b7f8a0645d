/* genq-provsim: OpenAI, Luma AI and Hedra simulated on one loopback port.
 *   /openai/v1/...                sim_openai.c
 *   /luma/dream-machine/v1/...    sim_luma.c
 *   /hedra/v3/...                 sim_hedra.c
 *   GET|HEAD /files/<name>        sim_media.c: generated media and uploads
 *   GET /_sim/stats  counters; POST /_sim/reset zeroes them
 *   POST /_sim/luma/rate_limit, /_sim/luma/peak_reset  test knobs (sim_luma.c)
 *   GET /healthz     liveness
 * Requests under the three provider prefixes draw a fault first (faults.c,
 * through provsim_begin of respond.c);
 * /_sim, /files and /healthz never get one.
 * A bad setting stops it at start with exit code 1 and a message naming it.
 * SIGINT/SIGTERM: answer what is pending, close hung requests and the
 * server, exit 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "provsim.h"

/* Hedra audio uploads reach 100 MiB; larger bodies are refused on their
 * Content-Length. Every other endpoint keeps the old 1 MiB bound. */
#define PROVSIM_MAX_BODY (128u << 20)
#define PROVSIM_MAX_JSON_BODY (1u << 20)
#define UPLOAD_PATH "/hedra/v3/files"

typedef struct {
  provsim ps;
  http_server *server;
  uv_signal_t sigint, sigterm;
} app;

static int prefixed(const char *path, const char *prefix, const char **rest) {
  size_t n = strlen(prefix);
  if (strncmp(path, prefix, n) != 0 || (path[n] && path[n] != '/')) return 0;
  *rest = path + n;
  return 1;
}

static void on_request(http_request *req, void *arg) {
  app *a = arg;
  const char *path = http_req_path(req), *method = http_req_method(req), *rest;
  int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
  size_t blen;
  http_req_body(req, &blen);
  log_debug("request", LS("method", method), LS("path", path), LS("request_id", http_req_id(req)));
  if (blen > PROVSIM_MAX_JSON_BODY && strcmp(path, UPLOAD_PATH) != 0) {
    provsim_error(req, 413, "payload_too_large", "request body too large", NULL);
  } else if (prefixed(path, "/openai", &rest)) {
    if (provsim_begin(&a->ps, req, SIM_OPENAI)) sim_openai_handle(&a->ps, req, rest);
  } else if (prefixed(path, "/luma", &rest)) {
    if (provsim_begin(&a->ps, req, SIM_LUMA)) sim_luma_handle(&a->ps, req, rest);
  } else if (prefixed(path, "/hedra", &rest)) {
    if (provsim_begin(&a->ps, req, SIM_HEDRA)) sim_hedra_handle(&a->ps, req, rest);
  } else if (prefixed(path, "/files", &rest)) {
    simmedia_handle(&a->ps, req, rest);
  } else if (!strcmp(path, "/healthz")) {
    static const char ok[] = "{\"status\":\"ok\"}";
    http_respond(req, 200, "application/json", NULL, ok, sizeof ok - 1);
  } else if (!strcmp(path, "/_sim/stats") && get) {
    char *s = simstats_json(a->ps.stats);
    if (s)
      http_respond(req, 200, "application/json", NULL, s, strlen(s));
    else
      provsim_error(req, 500, "internal", "out of memory", NULL);
    cJSON_free(s);
  } else if (!strcmp(path, "/_sim/reset") && post) {
    static const char ok[] = "{\"reset\":true}";
    simstats_reset(a->ps.stats);
    http_respond(req, 200, "application/json", NULL, ok, sizeof ok - 1);
  } else if (!strcmp(path, "/_sim/luma/rate_limit") && post) {
    sim_luma_rate_limit(&a->ps, req);
  } else if (!strcmp(path, "/_sim/luma/peak_reset") && post) {
    sim_luma_peak_reset(&a->ps, req);
  } else if (!strcmp(path, "/_sim/stats") || !strcmp(path, "/_sim/reset")) {
    provsim_error(req, 405, "method_not_allowed", "method not allowed", NULL);
  } else {
    provsim_error(req, 404, "not_found", "no such simulated endpoint", NULL);
  }
}

static void on_server_closed(void *arg) {
  (void)arg;
  log_info("server closed", LOG_END);
}

static void on_signal(uv_signal_t *s, int signum) {
  app *a = s->data;
  if (a->ps.closing) return;
  log_info("shutting down", LI("signal", signum));
  a->ps.closing = 1;
  provsim_flush_pending(&a->ps);
  simfaults_release_hung(&a->ps);
  sim_luma_stop(&a->ps);
  http_server_close(a->server, on_server_closed, a);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
}

int main(void) {
  genq_config cfg;
  char err[512];
  if (config_load(&cfg, CONFIG_PROVSIM, err, sizeof err) < 0) {
    fprintf(stderr, "genq-provsim: %s\n", err);
    return 1;
  }
  log_init("provsim", cfg.log_level);
  signal(SIGPIPE, SIG_IGN);

  app a = {.ps = {.loop = uv_default_loop()}};
  int rc = 1;
  if (!(a.ps.stats = simstats_new()) || !(a.ps.media = simmedia_new())) {
    fprintf(stderr, "genq-provsim: out of memory\n");
    goto out;
  }
  if (sim_openai_init(&a.ps, err, sizeof err) < 0 || sim_luma_init(&a.ps, err, sizeof err) < 0 ||
      sim_hedra_init(&a.ps, err, sizeof err) < 0 || simfaults_init(&a.ps, err, sizeof err) < 0) {
    fprintf(stderr, "genq-provsim: %s\n", err);
    goto out;
  }
  http_limits limits = {.max_body_bytes = PROVSIM_MAX_BODY};
  int r = http_server_new(&a.server, a.ps.loop, &limits, on_request, &a);
  if (r == 0) http_server_set_error_writer(a.server, provsim_server_error, NULL);
  if (r == 0) r = http_server_listen(a.server, cfg.provsim_host, cfg.provsim_port);
  if (r < 0) {
    log_error("cannot listen", LS("host", cfg.provsim_host), LI("port", cfg.provsim_port),
              LS("error", uv_strerror(r)));
    if (a.server) http_server_close(a.server, NULL, NULL);
    uv_run(a.ps.loop, UV_RUN_DEFAULT);
    goto out;
  }
  if (strchr(cfg.provsim_host, ':')) /* IPv6 literal */
    snprintf(a.ps.self, sizeof a.ps.self, "[%s]:%d", cfg.provsim_host, http_server_port(a.server));
  else
    snprintf(a.ps.self, sizeof a.ps.self, "%s:%d", cfg.provsim_host, http_server_port(a.server));
  uv_signal_init(a.ps.loop, &a.sigint);
  uv_signal_init(a.ps.loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  log_info("listening", LS("host", cfg.provsim_host), LI("port", http_server_port(a.server)));
  uv_run(a.ps.loop, UV_RUN_DEFAULT);
  rc = 0;
out:
  uv_loop_close(a.ps.loop);
  sim_hedra_free(&a.ps);
  sim_luma_free(&a.ps);
  sim_openai_free(&a.ps);
  simfaults_free(&a.ps);
  simmedia_free(a.ps.media);
  simstats_free(a.ps.stats);
  config_free(&cfg);
  return rc;
}
