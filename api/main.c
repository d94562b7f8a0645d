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

#define JOBS_PREFIX "/v1/jobs/"
#define ASSETS_PREFIX "/v1/assets/"
#define UPLOADS_PREFIX "/v1/uploads/"
#define CALLBACK_LUMA_PREFIX "/v1/callbacks/luma/"
#define ADMIN_API_PREFIX "/v1/admin" /* admin.c routes what is under it */
#define ADMIN_PAGE_PREFIX "/admin"   /* the dashboard (admin_page.c) */
#define ID_MAX API_PATH_ID_MAX

static void method_not_allowed(http_request *req, const char *allow) {
  char hdr[64];
  snprintf(hdr, sizeof(hdr), "Allow: %s", allow);
  const char *const headers[] = {hdr, NULL};
  api_reply_error(req, 405, "method_not_allowed", "method not allowed", headers);
}

/* The routes genq-api serves, and the methods each allows. */
typedef enum {
  R_NONE,
  R_HEALTHZ,
  R_READYZ,
  R_METRICS,
  R_JOBS,
  R_JOB,
  R_JOB_CANCEL,
  R_JOB_EVENTS,
  R_CREDITS,
  R_LEDGER,
  R_USAGE,
  R_UPLOADS,
  R_ASSET,
  R_UPLOAD_CONTENT,
  R_CALLBACK_LUMA,
  R_WEBHOOK_STRIPE,
  R_ME,
  R_ME_EXPORT,
  R_ADMIN,
  R_ADMIN_PAGE,
} route_id;

static const char *const route_allow[] = {
    [R_HEALTHZ] = "GET",        [R_READYZ] = "GET",
    [R_JOBS] = "GET, POST",     [R_JOB] = "GET",
    [R_JOB_CANCEL] = "POST",    [R_JOB_EVENTS] = "GET",
    [R_CREDITS] = "GET",        [R_LEDGER] = "GET",
    [R_USAGE] = "GET",          [R_UPLOADS] = "POST",
    [R_ASSET] = "GET",          [R_UPLOAD_CONTENT] = "GET, HEAD",
    [R_CALLBACK_LUMA] = "POST", [R_WEBHOOK_STRIPE] = "POST",
    [R_ME] = "DELETE",          [R_ME_EXPORT] = "GET",
    [R_ADMIN] = "GET, POST",    [R_ADMIN_PAGE] = "GET, HEAD",
    [R_METRICS] = "GET",
};

/* Each route's template: the route label of its requests in
 * genq_http_requests_total (never a raw path with ids in it). */
static const char *const route_name[] = {
    [R_NONE] = "unmatched",
    [R_HEALTHZ] = "/healthz",
    [R_READYZ] = "/readyz",
    [R_METRICS] = "/metrics",
    [R_JOBS] = "/v1/jobs",
    [R_JOB] = "/v1/jobs/{id}",
    [R_JOB_CANCEL] = "/v1/jobs/{id}/cancel",
    [R_JOB_EVENTS] = "/v1/jobs/{id}/events",
    [R_CREDITS] = "/v1/credits",
    [R_LEDGER] = "/v1/credits/ledger",
    [R_USAGE] = "/v1/usage",
    [R_UPLOADS] = "/v1/uploads",
    [R_ASSET] = "/v1/assets/{id}",
    [R_UPLOAD_CONTENT] = "/v1/uploads/{id}/content",
    [R_CALLBACK_LUMA] = "/v1/callbacks/luma/{token}",
    [R_WEBHOOK_STRIPE] = "/v1/webhooks/stripe",
    [R_ME] = "/v1/me",
    [R_ME_EXPORT] = "/v1/me/export",
    [R_ADMIN] = "/v1/admin/*", /* admin.c routes inside it */
    [R_ADMIN_PAGE] = "/admin/*",
};
#define NROUTES (sizeof route_name / sizeof route_name[0])
_Static_assert(sizeof route_name / sizeof route_name[0] ==
                   sizeof route_allow / sizeof route_allow[0],
               "every route has its template in route_name");

/* "<prefix><id>[<suffix>]": copies the id (one non-empty path segment) into
 * id and returns the rest of the path after it, or NULL when p does not
 * start with prefix. An id too long for the buffer is left empty: the
 * handler answers 404 for it like for any other id that is not a UUID. */
static const char *path_id(const char *p, const char *prefix, char id[ID_MAX]) {
  size_t n = strlen(prefix);
  if (strncmp(p, prefix, n) != 0) return NULL;
  p += n;
  size_t len = strcspn(p, "/");
  if (len == 0) return NULL;
  id[0] = 0;
  if (len < ID_MAX) {
    memcpy(id, p, len);
    id[len] = 0;
  }
  return p + len;
}

/* 1 when p is prefix or under it (prefix/...). */
static int under(const char *p, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(p, prefix, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static route_id match(const char *p, char id[ID_MAX]) {
  const char *rest;
  if (under(p, ADMIN_API_PREFIX)) return R_ADMIN;
  if (under(p, ADMIN_PAGE_PREFIX)) return R_ADMIN_PAGE;
  if (strcmp(p, "/healthz") == 0) return R_HEALTHZ;
  if (strcmp(p, "/readyz") == 0) return R_READYZ;
  if (strcmp(p, "/metrics") == 0) return R_METRICS;
  if (strcmp(p, "/v1/jobs") == 0) return R_JOBS;
  if (strcmp(p, "/v1/credits") == 0) return R_CREDITS;
  if (strcmp(p, "/v1/credits/ledger") == 0) return R_LEDGER;
  if (strcmp(p, "/v1/usage") == 0) return R_USAGE;
  if (strcmp(p, "/v1/uploads") == 0) return R_UPLOADS;
  if (strcmp(p, "/v1/webhooks/stripe") == 0) return R_WEBHOOK_STRIPE;
  if (strcmp(p, "/v1/me") == 0) return R_ME;
  if (strcmp(p, "/v1/me/export") == 0) return R_ME_EXPORT;
  if ((rest = path_id(p, JOBS_PREFIX, id))) {
    if (!*rest) return R_JOB;
    if (strcmp(rest, "/cancel") == 0) return R_JOB_CANCEL;
    if (strcmp(rest, "/events") == 0) return R_JOB_EVENTS;
    return R_NONE;
  }
  if ((rest = path_id(p, ASSETS_PREFIX, id)) && !*rest) return R_ASSET;
  if ((rest = path_id(p, UPLOADS_PREFIX, id)) && strcmp(rest, "/content") == 0)
    return R_UPLOAD_CONTENT;
  if ((rest = path_id(p, CALLBACK_LUMA_PREFIX, id)) && !*rest) return R_CALLBACK_LUMA;
  return R_NONE;
}

/* 1 when method is one of allow's comma-separated methods. */
static int method_allowed(const char *allow, const char *method) {
  size_t n = strlen(method);
  for (const char *a = allow; *a;) {
    size_t len = strcspn(a, ",");
    if (len == n && strncmp(a, method, n) == 0) return 1;
    a += len;
    while (*a == ',' || *a == ' ')
      a++;
  }
  return 0;
}

static void dispatch(api_ctx *ctx, http_request *req, const api_user *u, int route_no,
                     const char *id);

static void route(http_request *req, void *arg) {
  api_ctx *ctx = arg;
  const char *m = http_req_method(req);
  char id[ID_MAX];
  route_id r = match(http_req_path(req), id);
  api_user u;
  http_req_set_route(req, (unsigned)r); /* its label in genq_http_requests_total */

  if (r == R_NONE) {
    api_reply_error(req, 404, "not_found", "no such endpoint", NULL);
    return;
  }
  /* admin.c answers every method under /v1/admin itself: a caller who is
   * not an admin learns nothing there, not even which methods exist */
  if (r != R_ADMIN && !method_allowed(route_allow[r], m)) {
    method_not_allowed(req, route_allow[r]);
    return;
  }
  if (r == R_HEALTHZ) {
    api_healthz(ctx, req);
    return;
  }
  if (r == R_READYZ) {
    api_readyz(ctx, req);
    return;
  }
  if (r == R_METRICS) { /* for the operator's scraper, on the network it reaches */
    api_metrics_get(ctx, req);
    return;
  }
  if (r == R_UPLOAD_CONTENT) { /* fetched by providers: the signed URL is the capability */
    api_upload_content(ctx, req, id);
    return;
  }
  if (r == R_CALLBACK_LUMA) { /* posted by Luma: the token in the path is the capability */
    api_callback_luma(ctx, req, id);
    return;
  }
  if (r == R_ADMIN_PAGE) { /* static files: the page signs in with a pasted token */
    api_admin_page(ctx, req);
    return;
  }
  if (r == R_WEBHOOK_STRIPE) { /* posted by Stripe: the Stripe-Signature is the capability */
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
  switch ((route_id)route_no) {
  case R_JOBS:
    if (strcmp(m, "POST") == 0)
      api_jobs_submit(ctx, req, u);
    else
      api_jobs_list(ctx, req, u);
    break;
  case R_JOB:
    api_jobs_get(ctx, req, u, id);
    break;
  case R_JOB_CANCEL:
    api_jobs_cancel(ctx, req, u, id);
    break;
  case R_JOB_EVENTS:
    api_jobs_events(ctx, req, u, id);
    break;
  case R_CREDITS:
    api_credits_get(ctx, req, u);
    break;
  case R_LEDGER:
    api_credits_ledger(ctx, req, u);
    break;
  case R_USAGE:
    api_usage_get(ctx, req, u);
    break;
  case R_UPLOADS:
    api_uploads_create(ctx, req, u);
    break;
  case R_ASSET:
    api_assets_get(ctx, req, u, id);
    break;
  case R_ME:
    api_me_delete(ctx, req, u);
    break;
  case R_ME_EXPORT:
    api_me_export(ctx, req, u);
    break;
  case R_ADMIN:
    api_admin(ctx, req, u);
    break;
  default:
    api_reply_error(req, 404, "not_found", "no such endpoint", NULL);
  }
}

/* Uploads carry media and get their own, larger limit; every other body
 * (JSON) keeps GENQ_MAX_BODY_BYTES. Runs before any body byte is read. */
/* Uploads may be large, but only for a caller with a valid token: anyone
 * else cannot make the API buffer more than a JSON body (their request is
 * answered 401 once read). */
static size_t body_limit(const http_request *req, void *arg) {
  api_ctx *ctx = arg;
  if (strcmp(http_req_method(req), "POST") == 0 && strcmp(http_req_path(req), "/v1/uploads") == 0 &&
      api_authenticated(ctx, req))
    return ctx->cfg.upload_max_bytes;
  if (strncmp(http_req_path(req), CALLBACK_LUMA_PREFIX, strlen(CALLBACK_LUMA_PREFIX)) == 0 &&
      ctx->cfg.max_body_bytes > API_CALLBACK_MAX_BODY)
    return API_CALLBACK_MAX_BODY;
  if (strcmp(http_req_path(req), "/v1/webhooks/stripe") == 0) return API_STRIPE_MAX_BODY;
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
  if (rc == 0 && api_metrics_start(&ctx, route_name, NROUTES) != 0) rc = UV_ENOMEM;
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
