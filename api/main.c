/* main.c — genq-api: configuration, the event loop, routing, shutdown.
 *
 * A thin HTTP front: authenticates, validates, holds credits and enqueues
 * (through PostgreSQL functions and the relay), answers polls, and moves
 * uploads and results between clients and storage. It never calls a
 * provider and keeps no state between requests, so any number of these run
 * behind a load balancer. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api.h"
#include "log.h"

static void method_not_allowed(http_request *req, const char *allow) {
  char hdr[64];
  snprintf(hdr, sizeof(hdr), "Allow: %s", allow);
  const char *const headers[] = {hdr, NULL};
  api_reply_error(req, 405, "method_not_allowed", "method not allowed", headers);
}

static void dispatch(api_ctx *ctx, http_request *req, const api_user *u, int route_no,
                     const char *id);

static void route(http_request *req, void *arg) {
  api_ctx *ctx = arg;
  const char *m = http_req_method(req);
  char id[API_ROUTE_PARAM_MAX];
  const api_route *rt = api_route_match(http_req_path(req), id);
  api_user u;
  /* its label in genq_http_requests_total: 0 unmatched, else 1 + its row */
  http_req_set_route(req, rt ? (unsigned)(rt - api_routes) + 1 : 0);

  if (!rt) {
    api_reply_error(req, 404, "not_found", "no such endpoint", NULL);
    return;
  }
  /* admin.c answers every method under /v1/admin itself: a caller who is
   * not an admin learns nothing there, not even which methods exist */
  if (rt->id != API_ROUTE_ADMIN && !api_route_allows(rt->methods, m)) {
    method_not_allowed(req, rt->methods);
    return;
  }
  api_route_id r = rt->id;
  if (r == API_ROUTE_HEALTHZ) {
    api_healthz(ctx, req);
    return;
  }
  if (r == API_ROUTE_READYZ) {
    api_readyz(ctx, req);
    return;
  }
  if (r == API_ROUTE_METRICS) { /* for the operator's scraper, on the network it reaches */
    api_metrics_get(ctx, req);
    return;
  }
  if (r == API_ROUTE_UPLOAD_CONTENT) { /* fetched by providers: the signed URL is the capability */
    api_upload_content(ctx, req, id);
    return;
  }
  if (r == API_ROUTE_CALLBACK_LUMA) { /* posted by Luma: the token in the path is the capability */
    api_callback_luma(ctx, req, id);
    return;
  }
  if (r == API_ROUTE_ADMIN_PAGE) { /* static files: the page signs in with a pasted token */
    api_admin_page(ctx, req);
    return;
  }
  /* posted by Stripe: the Stripe-Signature is the capability */
  if (r == API_ROUTE_WEBHOOK_STRIPE) {
    api_webhook_stripe(ctx, req);
    return;
  }
  if (api_authenticate(ctx, req, &u, (int)r, id, dispatch) == 0) dispatch(ctx, req, &u, (int)r, id);
}

/* The routes of an authenticated caller (u), now or once its API key was
 * looked up. */
static void dispatch(api_ctx *ctx, http_request *req, const api_user *u, int route_no,
                     const char *id) {
  const char *m = http_req_method(req);
  switch ((api_route_id)route_no) {
  case API_ROUTE_JOBS:
    if (strcmp(m, "POST") == 0)
      api_jobs_submit(ctx, req, u);
    else
      api_jobs_list(ctx, req, u);
    break;
  case API_ROUTE_JOB:
    api_jobs_get(ctx, req, u, id);
    break;
  case API_ROUTE_JOB_CANCEL:
    api_jobs_cancel(ctx, req, u, id);
    break;
  case API_ROUTE_JOB_EVENTS:
    api_jobs_events(ctx, req, u, id);
    break;
  case API_ROUTE_CREDITS:
    api_credits_get(ctx, req, u);
    break;
  case API_ROUTE_LEDGER:
    api_credits_ledger(ctx, req, u);
    break;
  case API_ROUTE_USAGE:
    api_usage_get(ctx, req, u);
    break;
  case API_ROUTE_UPLOADS:
    api_uploads_create(ctx, req, u);
    break;
  case API_ROUTE_ASSET:
    api_assets_get(ctx, req, u, id);
    break;
  case API_ROUTE_ME:
    api_me_delete(ctx, req, u);
    break;
  case API_ROUTE_ME_EXPORT:
    api_me_export(ctx, req, u);
    break;
  case API_ROUTE_ADMIN:
    api_admin(ctx, req, u);
    break;
  default:
    api_reply_error(req, 404, "not_found", "no such endpoint", NULL);
  }
}

/* Uploads carry media and get their own, larger limit, but only for a
 * caller with a valid token: anyone else cannot make the API buffer more
 * than a JSON body (their request is answered 401 once read). Every other
 * body (JSON) keeps GENQ_MAX_BODY_BYTES, Luma's callbacks and Stripe's
 * events their own. Runs before any body byte is read. */
static size_t body_limit(const http_request *req, void *arg) {
  api_ctx *ctx = arg;
  char param[API_ROUTE_PARAM_MAX];
  const api_route *rt = api_route_match(http_req_path(req), param);
  api_route_id r = rt ? rt->id : API_ROUTE_NONE;
  if (r == API_ROUTE_UPLOADS && strcmp(http_req_method(req), "POST") == 0 &&
      api_authenticated(ctx, req))
    return ctx->cfg.upload_max_bytes;
  if (r == API_ROUTE_CALLBACK_LUMA && ctx->cfg.max_body_bytes > API_CALLBACK_MAX_BODY)
    return API_CALLBACK_MAX_BODY;
  if (r == API_ROUTE_WEBHOOK_STRIPE) return API_STRIPE_MAX_BODY;
  return ctx->cfg.max_body_bytes;
}

/* Connections this process accepts: every event stream it may hold, and
 * room beside them for ordinary requests (so /healthz and polls still get
 * an answer, and a 503 for one stream too many). The soft limit on open
 * files is raised towards what that needs, within the hard limit; what
 * cannot be had shrinks the connection cap, so that accept never fails for
 * want of a descriptor. */
#define API_MAX_CONNECTIONS (API_MAX_STREAMS + 2048)
#define API_SPARE_FDS 256 /* the pool, Redis, storage, logs */

static unsigned connection_cap(void) {
  struct rlimit rl;
  rlim_t want = API_MAX_CONNECTIONS + API_SPARE_FDS;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return API_MAX_CONNECTIONS;
  if (rl.rlim_cur < want) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur >= want) return API_MAX_CONNECTIONS;
  unsigned cap =
      rl.rlim_cur > 2 * (rlim_t)API_SPARE_FDS ? (unsigned)(rl.rlim_cur - API_SPARE_FDS) : 64;
  log_warn("open files limited: fewer connections", LI("limit", (long long)rl.rlim_cur),
           LI("connections", cap));
  return cap;
}

/* ---- shutdown ---- */

static uv_signal_t sigint, sigterm;

static void close_signals(void) {
  if (!uv_is_closing((uv_handle_t *)&sigint)) uv_close((uv_handle_t *)&sigint, NULL);
  if (!uv_is_closing((uv_handle_t *)&sigterm)) uv_close((uv_handle_t *)&sigterm, NULL);
}

static void http_closed(void *arg) {
  api_ctx *ctx = arg;
  /* requests in flight were answered or dropped: now the storage side.
   * Storage first: its pending operations fail with "closed" and their
   * requests end without touching the database; database callbacks that
   * come after see ctx->storage NULL. */
  storage *st = ctx->storage;
  ctx->storage = NULL;
  storage_close(st);
  httpc_close(ctx->http);
  ctx->http = NULL;
  relay_stop(ctx->relay);
  job_cache_close(ctx->jobs); /* its reads still on the way end with db_close */
  ctx->jobs = NULL;
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
  api_metrics_stop(ctx); /* answers the scrapes waiting for the fleet's state */
  api_events_stop(ctx);  /* ends the open event streams */
  api_admin_events_stop(ctx);
  api_access_stop(ctx);
  http_server_close(ctx->server, http_closed, ctx);
}

/* genq-api --routes: "METHOD TEMPLATE" for every method of every route, in
 * table order, the list tests/e2e/e2e_openapi.sh compares with
 * api/openapi.yaml. Needs no configuration. */
static int print_routes(void) {
  for (size_t i = 0; i < api_routes_count; i++) {
    for (const char *m = api_routes[i].methods; *m;) {
      size_t len = strcspn(m, ", ");
      printf("%.*s %s\n", (int)len, m, api_routes[i].path);
      m += len;
      while (*m == ',' || *m == ' ')
        m++;
    }
  }
  return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--routes") == 0) return print_routes();
  if (argc > 1) {
    fprintf(stderr, "usage: genq-api [--routes]  (configured by environment, see README)\n");
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
  unsigned char rnd[8];
  if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) {
    fprintf(stderr, "genq-api: no random source\n");
    return 1;
  }
  for (size_t i = 0; i < sizeof rnd; i++)
    snprintf(ctx.instance + 2 * i, 3, "%02x", rnd[i]);

  /* Without the list any site Clerk signs tokens for could spend here. */
  if (!ctx.cfg.dev_any_azp &&
      (!ctx.cfg.clerk_authorized_parties || !*ctx.cfg.clerk_authorized_parties)) {
    fprintf(stderr, "genq-api: CLERK_AUTHORIZED_PARTIES: required (the origins whose tokens are "
                    "accepted; GENQ_DEV_ANY_AZP=1 accepts any, for development only)\n");
    return 1;
  }
  if (jwt_verifier_new(&ctx.jwt, ctx.cfg.clerk_jwt_key, ctx.cfg.clerk_issuer,
                       ctx.cfg.clerk_authorized_parties, 5, err, sizeof(err)) != 0) {
    fprintf(stderr, "genq-api: CLERK_JWT_KEY: %s\n", err);
    return 1;
  }
  jwt_verifier_set_max_lifetime(ctx.jwt, ctx.cfg.max_token_lifetime_s);
  if (!ctx.cfg.stripe_webhook_secret || !*ctx.cfg.stripe_webhook_secret)
    log_info("Stripe webhooks off (503): STRIPE_WEBHOOK_SECRET is not set", LOG_END);
  if (ctx.cfg.dev_any_azp && !ctx.cfg.clerk_authorized_parties)
    log_warn("GENQ_DEV_ANY_AZP=1: tokens of any authorized party are accepted", LOG_END);
  if (!(ctx.tokens = jwt_cache_new(API_TOKEN_CACHE))) {
    fprintf(stderr, "genq-api: out of memory\n");
    return 1;
  }
  db_options dbo = {.conninfo = ctx.cfg.database_url, .pool_size = ctx.cfg.db_pool_size};
  if (db_open(&ctx.db, ctx.loop, &dbo) != 0) {
    fprintf(stderr, "genq-api: cannot set up the database pool\n");
    return 1;
  }
  if (job_cache_open(&ctx.jobs, ctx.loop, ctx.db, NULL) != 0) {
    fprintf(stderr, "genq-api: out of memory\n");
    return 1;
  }
  if (rds_open(&ctx.redis, ctx.loop, ctx.cfg.redis_url, err, sizeof(err)) != 0) {
    fprintf(stderr, "genq-api: GENQ_REDIS_URL: %s\n", err);
    return 1;
  }
  if (relay_start(&ctx.relay, ctx.loop, ctx.db, ctx.redis, 1000, 5000) != 0) return 1;
  if (httpc_new(&ctx.http, ctx.loop) != 0) {
    fprintf(stderr, "genq-api: cannot set up the HTTP client\n");
    return 1;
  }
  if (storage_open(&ctx.storage, ctx.loop, ctx.http, ctx.cfg.storage, ctx.cfg.s3_access_key,
                   ctx.cfg.s3_secret_key, err, sizeof(err)) != 0) {
    fprintf(stderr, "genq-api: GENQ_STORAGE: %s\n", err);
    return 1;
  }

  http_limits lim = {
      .max_header_bytes = ctx.cfg.max_header_bytes,
      .max_body_bytes = ctx.cfg.max_body_bytes,
      .header_timeout_ms = (unsigned)ctx.cfg.header_timeout_ms,
      .idle_timeout_ms = (unsigned)ctx.cfg.idle_timeout_ms,
      .body_timeout_ms = (unsigned)ctx.cfg.body_timeout_ms,
      .body_min_rate = (unsigned)ctx.cfg.body_min_rate,
      .write_timeout_ms = (unsigned)ctx.cfg.write_timeout_ms,
      .max_connections = connection_cap(),
      .max_per_ip = (unsigned)ctx.cfg.max_connections_per_ip,
  };
  int rc = http_server_new(&ctx.server, ctx.loop, &lim, route, &ctx);
  /* the route label of genq_http_requests_total: "unmatched", then each
   * row's template (api/routes.c), by http_req_set_route's number */
  static const char *route_labels[1 + API_ROUTES_MAX];
  route_labels[0] = "unmatched";
  for (size_t i = 0; i < api_routes_count && i < API_ROUTES_MAX; i++)
    route_labels[i + 1] = api_routes[i].path;
  if (rc == 0 && api_metrics_start(&ctx, route_labels, 1 + (unsigned)api_routes_count) != 0)
    rc = UV_ENOMEM;
  if (rc == 0) {
    http_server_set_body_limit(ctx.server, body_limit, &ctx);
    http_server_set_error_writer(ctx.server, api_server_error, NULL);
    rc = http_server_listen(ctx.server, ctx.cfg.api_host, ctx.cfg.api_port);
  }
  if (rc != 0) {
    fprintf(stderr, "genq-api: cannot listen on %s:%d: %s\n", ctx.cfg.api_host, ctx.cfg.api_port,
            uv_strerror(rc));
    return 1;
  }
  if (api_events_start(&ctx) != 0) {
    fprintf(stderr, "genq-api: cannot start the job event streams\n");
    return 1;
  }
  if (api_admin_events_start(&ctx) != 0) {
    fprintf(stderr, "genq-api: cannot start the admin event streams\n");
    return 1;
  }
  if (api_access_start(&ctx) != 0) {
    fprintf(stderr, "genq-api: cannot follow API key revocations\n");
    return 1;
  }
  uv_signal_init(ctx.loop, &sigint);
  uv_signal_init(ctx.loop, &sigterm);
  sigint.data = sigterm.data = &ctx;
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  log_info("listening", LS("host", ctx.cfg.api_host), LI("port", ctx.cfg.api_port));

  uv_run(ctx.loop, UV_RUN_DEFAULT);
  api_submits_free(&ctx);
  api_metrics_free(&ctx);
  jwt_cache_free(ctx.tokens);
  jwt_verifier_free(ctx.jwt);
  config_free(&ctx.cfg);
  uv_loop_close(ctx.loop);
  log_info("stopped", LOG_END);
  return 0;
}
