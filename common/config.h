#ifndef GENQ_CONFIG_H
#define GENQ_CONFIG_H

#include <stddef.h>

/* Environment configuration (SPEC §9), validated at start. Each program loads
 * the variables its component needs; a missing required variable or a bad
 * value makes config_load fail with a message naming the variable, and the
 * program exits with that message. */

enum {
  CONFIG_API = 1 << 0,
  CONFIG_WORKER = 1 << 1,
  CONFIG_CTL = 1 << 2,
  CONFIG_PROVSIM = 1 << 3,
};

typedef struct {
  /* shared */
  char *database_url; /* GENQ_DATABASE_URL  (api, worker, ctl) postgres:// or postgresql:// or
                         key=value conninfo */
  char *redis_url;    /* GENQ_REDIS_URL     (api, worker) redis://[:pass@]host[:port][/db] or
                         redis-sentinel://h1:p1,h2:p2/master[/db] */
  int log_level;      /* GENQ_LOG_LEVEL     debug|info|warn|error, default info */
  int db_pool_size;   /* GENQ_DB_POOL       1..64, default 4 */

  /* api */
  char api_host[64]; /* GENQ_API_LISTEN    host:port, default 127.0.0.1:8080 */
  int api_port;
  char *clerk_jwt_key; /* CLERK_JWT_KEY      PEM public key (required for api); "\n" escapes are
                          turned into newlines */
  char *clerk_issuer;  /* CLERK_ISSUER       required for api */
  char *clerk_authorized_parties; /* CLERK_AUTHORIZED_PARTIES comma list, optional */
  size_t max_body_bytes;          /* GENQ_MAX_BODY_BYTES  JSON request bodies, default 1048576 */
  size_t max_header_bytes;        /* GENQ_MAX_HEADER_BYTES default 16384 */
  int header_timeout_ms;          /* GENQ_HEADER_TIMEOUT_MS default 10000 */
  int idle_timeout_ms;            /* GENQ_IDLE_TIMEOUT_MS default 60000 */
  int body_timeout_ms;            /* GENQ_BODY_TIMEOUT_MS default 15000: stall, and grace */
  int body_min_rate;              /* GENQ_BODY_MIN_RATE bytes/s after the grace, default 1024 */
  int write_timeout_ms;           /* GENQ_WRITE_TIMEOUT_MS default 30000 */
  int max_streams_per_user;       /* GENQ_MAX_STREAMS_PER_USER default 32, 0 = no cap */
  int max_connections_per_ip;     /* GENQ_MAX_CONNECTIONS_PER_IP default 1024, 0 = no cap */
  int ip_refusals_per_minute;     /* GENQ_IP_REFUSALS_PER_MINUTE default 60, 0 = no limit */
  int ip_refusals_burst;          /* GENQ_IP_REFUSALS_BURST default 30, 0 = no limit */
  int dev_any_azp;             /* GENQ_DEV_ANY_AZP=1: no CLERK_AUTHORIZED_PARTIES (development) */
  int max_token_lifetime_s;    /* GENQ_MAX_TOKEN_LIFETIME_S default 86400 */
  char *stripe_webhook_secret; /* STRIPE_WEBHOOK_SECRET optional */

  /* worker */
  char *storage;          /* GENQ_STORAGE file:///abs/path or s3://bucket?endpoint=..., default
                             file://$PWD/.genq/storage */
  char *openai_api_key;   /* OPENAI_API_KEY  required for worker */
  char *openai_base_url;  /* OPENAI_BASE_URL default https://api.openai.com/v1 (http(s) URL, no
                             trailing slash kept) */
  char *openai_model;     /* GENQ_OPENAI_MODEL default gpt-4o-mini */
  char *luma_api_key;     /* LUMA_API_KEY optional for now */
  char *luma_base_url;    /* LUMA_BASE_URL default https://api.lumalabs.ai/dream-machine/v1 */
  char *hedra_api_key;    /* HEDRA_API_KEY optional for now */
  char *hedra_base_url;   /* HEDRA_BASE_URL default https://api.hedra.com/v3 */
  int worker_concurrency; /* GENQ_WORKER_CONCURRENCY 1..100000, default 64 (--concurrency overrides)
                           */
  int lease_seconds;      /* GENQ_LEASE_SECONDS 5..3600, default 60 */
  int max_attempts;       /* GENQ_MAX_ATTEMPTS 1..100, default 5 */
  /* GENQ_MAX_ATTEMPTS_<KIND> (STORYBOARD, IMAGE, VIDEO, LIPSYNC, CAMPAIGN),
   * in job_kind order; 0 (unset): max_attempts */
  int max_attempts_kind[5];
  int max_reclaims;        /* GENQ_MAX_RECLAIMS 1..100, default 3: a job whose runs die with
                              their worker that often is poison and goes dead */
  int retry_base_ms;       /* GENQ_RETRY_BASE_MS default 2000 */
  int retry_cap_ms;        /* GENQ_RETRY_CAP_MS default 600000 */
  int provider_timeout_ms; /* GENQ_PROVIDER_TIMEOUT_MS default 120000 */
  int shutdown_grace_ms;   /* GENQ_SHUTDOWN_GRACE_MS 0..3600000, default 30000 */
  int worker_beat_ms;      /* GENQ_WORKER_BEAT_MS 100..60000, default 2000: how often the
                              worker writes its registry record (docs/fleet.md) */
  int worker_ttl_ms;       /* GENQ_WORKER_TTL_MS 500..600000, default 10000: a record not
                              renewed for that long ages out (at least twice the beat) */
  char metrics_host[64];   /* GENQ_METRICS_LISTEN host:port of the worker's GET /metrics
                              (docs/metrics.md); unset: "" and no metrics server */
  int metrics_port;

  /* fleet-wide provider limits (worker/provlimit.c, docs/providers.md), by
   * provider: [0] OpenAI, [1] Luma, [2] Hedra */
  int provider_max_in_flight[3];   /* GENQ_<P>_MAX_IN_FLIGHT generations in flight across the
                                      fleet, 0..100000, default 0: no limit */
  int provider_rate_per_minute[3]; /* GENQ_<P>_RATE_PER_MINUTE paid calls a minute across the
                                      fleet, default 0: no limit */
  int breaker_failures;    /* GENQ_BREAKER_FAILURES consecutive failures (5xx, timeouts) that
                              open a provider's breaker, 0..1000, default 0: no breaker */
  int breaker_cooldown_ms; /* GENQ_BREAKER_COOLDOWN_MS open → half-open, default 30000 */

  /* media (api and worker) */
  size_t upload_max_bytes; /* GENQ_UPLOAD_MAX_BYTES POST /v1/uploads body limit, default 25 MiB */
  size_t asset_max_bytes;  /* GENQ_ASSET_MAX_BYTES  largest provider output downloaded/stored,
                              default 256 MiB */
  char *s3_access_key;     /* GENQ_S3_ACCESS_KEY    for s3:// storage */
  char *s3_secret_key;     /* GENQ_S3_SECRET_KEY    for s3:// storage */
  int poll_interval_ms; /* GENQ_POLL_INTERVAL_MS first provider status poll delay, default 2000 */
  int poll_max_interval_ms; /* GENQ_POLL_MAX_INTERVAL_MS backoff cap of status polls, default 15000
                             */
  int sweep_interval_ms; /* GENQ_SWEEP_INTERVAL_MS how often a worker deletes uploads no job needs,
                           default 60000 */

  /* keyframes: both set, or Luma cannot be handed a keyframe (api and worker) */
  char *public_url;      /* GENQ_PUBLIC_URL      base URL at which providers reach genq-api,
                            e.g. https://genq.example.com; optional, no default */
  char *url_signing_key; /* GENQ_URL_SIGNING_KEY HMAC key of signed upload URLs, at least 32
                            bytes; optional (unset: GET /v1/uploads/{id}/content answers 404) */

  /* provider callbacks as wake-ups (worker; callback_url.h) */
  char *callback_url; /* GENQ_CALLBACK_URL base URL at which providers reach genq-api's
                         POST /v1/callbacks/luma/{token}, e.g. https://genq.example.com;
                         optional, unset: no callbacks (needs GENQ_URL_SIGNING_KEY) */
  int callback_poll_max_interval_ms; /* GENQ_CALLBACK_POLL_MAX_INTERVAL_MS backoff cap of the
                                        fallback status polls of Luma steps while callbacks are
                                        on, default 60000 */

  /* completion webhooks (net_guard.h, secret_box.h, docs/webhooks.md) */
  int webhook_allow_http;     /* GENQ_WEBHOOK_ALLOW_HTTP 0|1 (api, worker), default 0: http://
                                 webhook URLs are refused (1: development only) */
  char *webhook_allow_nets;   /* GENQ_WEBHOOK_ALLOW_NETS (api, worker) CIDRs a webhook may reach
                                 although refused (e.g. 127.0.0.1/32 for tests); default none */
  int webhook_retry_base_ms;  /* GENQ_WEBHOOK_RETRY_BASE_MS worker: the first retry's delay,
                                 default 5000 (the schedule is a multiple of it) */
  int webhook_poll_ms;        /* GENQ_WEBHOOK_POLL_MS worker: how often due deliveries are
                                 looked for, default 1000 */
  char *secrets_key;          /* GENQ_SECRETS_KEY (worker, ctl) [kid:]base64 of 32 bytes: seals
                                 stored secrets; unset: no webhook is delivered */
  char *secrets_key_previous; /* GENQ_SECRETS_KEY_PREVIOUS comma list of keys that only open */

  /* provsim */
  char provsim_host[64]; /* GENQ_PROVSIM_LISTEN host:port, default 127.0.0.1:8090 */
  int provsim_port;
} genq_config;

/* Looks a variable up; returns NULL when unset. */
typedef const char *(*config_getenv_fn)(const char *name, void *ctx);

/* Loads and validates the variables `components` needs (CONFIG_* mask).
 * Returns 0, or -1 with a one-line message naming the variable in err.
 * On failure *c holds nothing to free. */
int config_load(genq_config *c, unsigned components, char *err, size_t errlen);
int config_load_from(genq_config *c, unsigned components, config_getenv_fn get, void *ctx,
                     char *err, size_t errlen);
void config_free(genq_config *c);

/* Parses "host:port" (port 0..65535; host non-empty, at most 63 bytes). */
int config_parse_listen(const char *s, char *host, size_t hostlen, int *port);

#endif
