/* main.c — genq-api: configuration, the event loop, routing, shutdown.
 *
 * A thin HTTP front: authenticates, validates, holds credits and enqueues
 * (through PostgreSQL functions and the relay), answers polls. It never
 * calls a provider and keeps no state between requests, so any number of
 * these run behind a load balancer. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

#define JOBS_PREFIX "/v1/jobs/"

static void method_not_allowed(http_request *req, const char *allow) {
  char hdr[64];
  snprintf(hdr, sizeof(hdr), "Allow: %s", allow);
  const char *const headers[] = {hdr, NULL};
  http_respond_error(req, 405, "method_not_allowed", "method not allowed", headers);
}

/* The routes genq-api serves. */
typedef enum { R_NONE, R_HEALTHZ, R_READYZ, R_JOBS, R_JOB, R_CREDITS } route_id;

static route_id match(const char *p, const char **id) {
  size_t n = strlen(JOBS_PREFIX);
  if (strcmp(p, "/healthz") == 0) return R_HEALTHZ;
  if (strcmp(p, "/readyz") == 0) return R_READYZ;
  if (strcmp(p, "/v1/jobs") == 0) return R_JOBS;
  if (strcmp(p, "/v1/credits") == 0) return R_CREDITS;
  if (strncmp(p, JOBS_PREFIX, n) == 0 && p[n] && !strchr(p + n, '/')) {
    *id = p + n;
    return R_JOB;
  }
  return R_NONE;
}

static void route(http_request *req, void *arg) {
  api_ctx *ctx = arg;
  const char *m = http_req_method(req);
  const char *id = NULL;
  int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
  route_id r = match(http_req_path(req), &id);
  api_user u;

  if (r == R_NONE) {
    http_respond_error(req, 404, "not_found", "no such endpoint", NULL);
  } else if (r == R_JOBS ? !get && !post : !get) {
    method_not_allowed(req, r == R_JOBS ? "GET, POST" : "GET");
  } else if (r == R_HEALTHZ) {
    api_healthz(ctx, req);
  } else if (r == R_READYZ) {
    api_readyz(ctx, req);
  } else if (api_authenticate(ctx, req, &u) != 0) {
    /* answered 401 */
  } else if (r == R_JOBS) {
    if (post)
      api_jobs_submit(ctx, req, &u);
    else
      api_jobs_list(ctx, req, &u);
  } else if (r == R_JOB) {
    api_jobs_get(ctx, req, &u, id);
  } else {
    api_credits_get(ctx, req, &u);
  }
}

/* ---- shutdown ---- */

static uv_signal_t sigint, sigterm;

static void close_signals(void) {
  if (!uv_is_closing((uv_handle_t *)&sigint)) uv_close((uv_handle_t *)&sigint, NULL);
  if (!uv_is_closing((uv_handle_t *)&sigterm)) uv_close((uv_handle_t *)&sigterm, NULL);
}

static void http_closed(void *arg) {
  api_ctx *ctx = arg;
  /* requests in flight were answered or dropped: now the storage side */
  relay_stop(ctx->relay);
  db_close(ctx->db, NULL, NULL);
  rds_close(ctx->redis, NULL, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
  api_ctx *ctx = s->data;
  static int signals;
  if (++signals > 1) {
    log_warn("second signal: exiting now", LI("signal", signum));
    exit(0);
  }
  log_info("shutting down", LI("signal", signum));
  close_signals();
  http_server_close(ctx->http, http_closed, ctx);
}

int main(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    fprintf(stderr, "usage: genq-api  (configured by environment, see README)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  static api_ctx ctx;
  char err[512];
  if (config_load(&ctx.cfg, CONFIG_API, err, sizeof(err)) != 0) {
    fprintf(stderr, "genq-api: %s\n", err);
    return 1;
  }
  log_init("api", ctx.cfg.log_level);
  ctx.loop = uv_default_loop();

  if (jwt_verifier_new(&ctx.jwt, ctx.cfg.clerk_jwt_key, ctx.cfg.clerk_issuer,
                       ctx.cfg.clerk_authorized_parties, 5, err, sizeof(err)) != 0) {
    fprintf(stderr, "genq-api: CLERK_JWT_KEY: %s\n", err);
    return 1;
  }
  db_options dbo = {.conninfo = ctx.cfg.database_url, .pool_size = ctx.cfg.db_pool_size};
  if (db_open(&ctx.db, ctx.loop, &dbo) != 0) {
    fprintf(stderr, "genq-api: cannot set up the database pool\n");
    return 1;
  }
  if (rds_open(&ctx.redis, ctx.loop, ctx.cfg.redis_url, err, sizeof(err)) != 0) {
    fprintf(stderr, "genq-api: GENQ_REDIS_URL: %s\n", err);
    return 1;
  }
  if (relay_start(&ctx.relay, ctx.loop, ctx.db, ctx.redis, 1000, 5000) != 0) return 1;

  http_limits lim = {
      .max_header_bytes = ctx.cfg.max_header_bytes,
      .max_body_bytes = ctx.cfg.max_body_bytes,
      .header_timeout_ms = (unsigned)ctx.cfg.header_timeout_ms,
      .idle_timeout_ms = (unsigned)ctx.cfg.idle_timeout_ms,
  };
  int rc = http_server_new(&ctx.http, ctx.loop, &lim, route, &ctx);
  if (rc == 0) rc = http_server_listen(ctx.http, ctx.cfg.api_host, ctx.cfg.api_port);
  if (rc != 0) {
    fprintf(stderr, "genq-api: cannot listen on %s:%d: %s\n", ctx.cfg.api_host, ctx.cfg.api_port,
            uv_strerror(rc));
    return 1;
  }
  uv_signal_init(ctx.loop, &sigint);
  uv_signal_init(ctx.loop, &sigterm);
  sigint.data = sigterm.data = &ctx;
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  log_info("listening", LS("host", ctx.cfg.api_host), LI("port", ctx.cfg.api_port));

  uv_run(ctx.loop, UV_RUN_DEFAULT);
  jwt_verifier_free(ctx.jwt);
  config_free(&ctx.cfg);
  uv_loop_close(ctx.loop);
  log_info("stopped", LOG_END);
  return 0;
}
