/* Environment configuration: one table row per variable, so adding a setting
 * is one line and every variable gets the same checks and messages. An empty
 * value counts as unset (compose files pass optional variables as ""). Error
 * messages never echo URLs or keys: they may carry credentials. */
#include "config.h"
#include "log.h"
#include "net_guard.h"
#include "redis_url.h"
#include "secret_box.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_VALUE_MAX 4096 /* any one value */
#define CONFIG_PEM_MAX 16384

typedef enum {
  T_STR,      /* any non-empty text */
  T_SECRET,   /* like T_STR, never echoed */
  T_DBURL,    /* postgres:// postgresql:// or key=value conninfo */
  T_REDISURL, /* redis:// or redis-sentinel:// */
  T_BASEURL,  /* http(s)://, trailing '/' dropped */
  T_STORAGE,  /* file:///abs or s3://bucket */
  T_PEM,      /* PEM public key with "\n" escapes */
  T_INT,      /* integer in [min, max] */
  T_SIZE,     /* byte count in [min, max], optional k/m/g suffix */
  T_LISTEN,   /* host:port */
  T_LEVEL,    /* log level name */
} config_type;

#define ALL (CONFIG_API | CONFIG_WORKER | CONFIG_CTL | CONFIG_PROVSIM)
#define SRV (CONFIG_API | CONFIG_WORKER | CONFIG_CTL)

typedef struct {
  const char *name;
  unsigned need; /* components for which it is required */
  unsigned use;  /* components that read it (need is a subset) */
  config_type type;
  long long min, max;
  const char *def; /* NULL: no default */
  size_t off;      /* field in genq_config */
  size_t off2;     /* T_LISTEN: the port field */
} config_var;

#define F(f) offsetof(genq_config, f)

static const config_var config_vars[] = {
    {"GENQ_DATABASE_URL", SRV, SRV, T_DBURL, 0, 0, NULL, F(database_url), 0},
    {"GENQ_REDIS_URL", CONFIG_API | CONFIG_WORKER, SRV, T_REDISURL, 0, 0, NULL, F(redis_url), 0},
    {"GENQ_LOG_LEVEL", 0, ALL, T_LEVEL, 0, 0, "info", F(log_level), 0},
    {"GENQ_DB_POOL", 0, SRV, T_INT, 1, 64, "4", F(db_pool_size), 0},
    {"GENQ_API_LISTEN", 0, CONFIG_API, T_LISTEN, 0, 0, "127.0.0.1:8080", F(api_host), F(api_port)},
    {"CLERK_JWT_KEY", CONFIG_API, CONFIG_API, T_PEM, 0, 0, NULL, F(clerk_jwt_key), 0},
    {"CLERK_ISSUER", CONFIG_API, CONFIG_API | CONFIG_CTL, T_STR, 0, 0, NULL, F(clerk_issuer), 0},
    {"CLERK_AUTHORIZED_PARTIES", 0, CONFIG_API | CONFIG_CTL, T_STR, 0, 0, NULL,
     F(clerk_authorized_parties), 0},
    {"GENQ_DEV_ANY_AZP", 0, CONFIG_API, T_INT, 0, 1, "0", F(dev_any_azp), 0},
    {"GENQ_MAX_TOKEN_LIFETIME_S", 0, CONFIG_API, T_INT, 60, 31622400, "86400",
     F(max_token_lifetime_s), 0},
    {"GENQ_MAX_BODY_BYTES", 0, CONFIG_API, T_SIZE, 1024, 1LL << 30, "1048576", F(max_body_bytes),
     0},
    {"GENQ_MAX_HEADER_BYTES", 0, CONFIG_API, T_SIZE, 1024, 1LL << 20, "16384", F(max_header_bytes),
     0},
    {"GENQ_HEADER_TIMEOUT_MS", 0, CONFIG_API, T_INT, 100, 600000, "10000", F(header_timeout_ms), 0},
    {"GENQ_IDLE_TIMEOUT_MS", 0, CONFIG_API, T_INT, 100, 3600000, "60000", F(idle_timeout_ms), 0},
    {"GENQ_BODY_TIMEOUT_MS", 0, CONFIG_API, T_INT, 100, 600000, "15000", F(body_timeout_ms), 0},
    {"GENQ_BODY_MIN_RATE", 0, CONFIG_API, T_INT, 1, 1 << 30, "1024", F(body_min_rate), 0},
    {"GENQ_WRITE_TIMEOUT_MS", 0, CONFIG_API, T_INT, 100, 600000, "30000", F(write_timeout_ms), 0},
    {"GENQ_MAX_STREAMS_PER_USER", 0, CONFIG_API, T_INT, 0, 100000, "32", F(max_streams_per_user),
     0},
    {"GENQ_MAX_CONNECTIONS_PER_IP", 0, CONFIG_API, T_INT, 0, 1000000, "1024",
     F(max_connections_per_ip), 0},
    {"GENQ_IP_REFUSALS_PER_MINUTE", 0, CONFIG_API, T_INT, 0, 1000000, "60",
     F(ip_refusals_per_minute), 0},
    {"GENQ_IP_REFUSALS_BURST", 0, CONFIG_API, T_INT, 0, 1000000, "30", F(ip_refusals_burst), 0},
    {"STRIPE_WEBHOOK_SECRET", 0, CONFIG_API, T_SECRET, 0, 0, NULL, F(stripe_webhook_secret), 0},
    {"GENQ_STORAGE", 0, SRV, T_STORAGE, 0, 0, NULL /* $PWD/.genq/storage */, F(storage), 0},
    {"OPENAI_API_KEY", CONFIG_WORKER, CONFIG_WORKER, T_SECRET, 0, 0, NULL, F(openai_api_key), 0},
    {"OPENAI_BASE_URL", 0, CONFIG_WORKER, T_BASEURL, 0, 0, "https://api.openai.com/v1",
     F(openai_base_url), 0},
    {"GENQ_OPENAI_MODEL", 0, CONFIG_WORKER, T_STR, 0, 0, "gpt-4o-mini", F(openai_model), 0},
    {"LUMA_API_KEY", 0, CONFIG_WORKER, T_SECRET, 0, 0, NULL, F(luma_api_key), 0},
    {"LUMA_BASE_URL", 0, CONFIG_WORKER, T_BASEURL, 0, 0, "https://api.lumalabs.ai/dream-machine/v1",
     F(luma_base_url), 0},
    {"HEDRA_API_KEY", 0, CONFIG_WORKER, T_SECRET, 0, 0, NULL, F(hedra_api_key), 0},
    {"HEDRA_BASE_URL", 0, CONFIG_WORKER, T_BASEURL, 0, 0, "https://api.hedra.com/v3",
     F(hedra_base_url), 0},
    {"GENQ_OPENAI_MAX_IN_FLIGHT", 0, CONFIG_WORKER, T_INT, 0, 100000, "0",
     F(provider_max_in_flight[0]), 0},
    {"GENQ_LUMA_MAX_IN_FLIGHT", 0, CONFIG_WORKER, T_INT, 0, 100000, "0",
     F(provider_max_in_flight[1]), 0},
    {"GENQ_HEDRA_MAX_IN_FLIGHT", 0, CONFIG_WORKER, T_INT, 0, 100000, "0",
     F(provider_max_in_flight[2]), 0},
    {"GENQ_OPENAI_RATE_PER_MINUTE", 0, CONFIG_WORKER, T_INT, 0, 1000000, "0",
     F(provider_rate_per_minute[0]), 0},
    {"GENQ_LUMA_RATE_PER_MINUTE", 0, CONFIG_WORKER, T_INT, 0, 1000000, "0",
     F(provider_rate_per_minute[1]), 0},
    {"GENQ_HEDRA_RATE_PER_MINUTE", 0, CONFIG_WORKER, T_INT, 0, 1000000, "0",
     F(provider_rate_per_minute[2]), 0},
    {"GENQ_BREAKER_FAILURES", 0, CONFIG_WORKER, T_INT, 0, 1000, "0", F(breaker_failures), 0},
    {"GENQ_BREAKER_COOLDOWN_MS", 0, CONFIG_WORKER, T_INT, 100, 3600000, "30000",
     F(breaker_cooldown_ms), 0},
    {"GENQ_WORKER_CONCURRENCY", 0, CONFIG_WORKER, T_INT, 1, 100000, "64", F(worker_concurrency), 0},
    {"GENQ_LEASE_SECONDS", 0, SRV, T_INT, 5, 3600, "60", F(lease_seconds), 0},
    {"GENQ_MAX_ATTEMPTS", 0, SRV, T_INT, 1, 100, "5", F(max_attempts), 0},
    {"GENQ_MAX_ATTEMPTS_STORYBOARD", 0, SRV, T_INT, 1, 100, NULL, F(max_attempts_kind[0]), 0},
    {"GENQ_MAX_ATTEMPTS_IMAGE", 0, SRV, T_INT, 1, 100, NULL, F(max_attempts_kind[1]), 0},
    {"GENQ_MAX_ATTEMPTS_VIDEO", 0, SRV, T_INT, 1, 100, NULL, F(max_attempts_kind[2]), 0},
    {"GENQ_MAX_ATTEMPTS_LIPSYNC", 0, SRV, T_INT, 1, 100, NULL, F(max_attempts_kind[3]), 0},
    {"GENQ_MAX_ATTEMPTS_CAMPAIGN", 0, SRV, T_INT, 1, 100, NULL, F(max_attempts_kind[4]), 0},
    {"GENQ_MAX_RECLAIMS", 0, CONFIG_WORKER, T_INT, 1, 100, "3", F(max_reclaims), 0},
    {"GENQ_RETRY_BASE_MS", 0, SRV, T_INT, 1, 3600000, "2000", F(retry_base_ms), 0},
    {"GENQ_RETRY_CAP_MS", 0, SRV, T_INT, 1, 86400000, "600000", F(retry_cap_ms), 0},
    {"GENQ_PROVIDER_TIMEOUT_MS", 0, CONFIG_WORKER, T_INT, 1000, 3600000, "120000",
     F(provider_timeout_ms), 0},
    {"GENQ_SHUTDOWN_GRACE_MS", 0, CONFIG_WORKER, T_INT, 0, 3600000, "30000", F(shutdown_grace_ms),
     0},
    {"GENQ_WORKER_BEAT_MS", 0, CONFIG_WORKER, T_INT, 100, 60000, "2000", F(worker_beat_ms), 0},
    {"GENQ_WORKER_TTL_MS", 0, CONFIG_WORKER, T_INT, 500, 600000, "10000", F(worker_ttl_ms), 0},
    {"GENQ_METRICS_LISTEN", 0, CONFIG_WORKER, T_LISTEN, 0, 0, NULL, F(metrics_host),
     F(metrics_port)},
    {"GENQ_UPLOAD_MAX_BYTES", 0, SRV, T_SIZE, 1024, 1LL << 30, "26214400", F(upload_max_bytes), 0},
    {"GENQ_ASSET_MAX_BYTES", 0, SRV, T_SIZE, 1024, 1LL << 31, "268435456", F(asset_max_bytes), 0},
    {"GENQ_S3_ACCESS_KEY", 0, SRV, T_SECRET, 0, 0, NULL, F(s3_access_key), 0},
    {"GENQ_S3_SECRET_KEY", 0, SRV, T_SECRET, 0, 0, NULL, F(s3_secret_key), 0},
    {"GENQ_POLL_INTERVAL_MS", 0, CONFIG_WORKER, T_INT, 10, 600000, "2000", F(poll_interval_ms), 0},
    {"GENQ_POLL_MAX_INTERVAL_MS", 0, CONFIG_WORKER, T_INT, 10, 3600000, "15000",
     F(poll_max_interval_ms), 0},
    {"GENQ_SWEEP_INTERVAL_MS", 0, CONFIG_WORKER, T_INT, 100, 86400000, "60000",
     F(sweep_interval_ms), 0},
    {"GENQ_PUBLIC_URL", 0, CONFIG_API | CONFIG_WORKER, T_BASEURL, 0, 0, NULL, F(public_url), 0},
    {"GENQ_URL_SIGNING_KEY", 0, CONFIG_API | CONFIG_WORKER, T_SECRET, 32, 0, NULL,
     F(url_signing_key), 0},
    {"GENQ_CALLBACK_URL", 0, CONFIG_WORKER, T_BASEURL, 0, 0, NULL, F(callback_url), 0},
    {"GENQ_CALLBACK_POLL_MAX_INTERVAL_MS", 0, CONFIG_WORKER, T_INT, 10, 3600000, "60000",
     F(callback_poll_max_interval_ms), 0},
    {"GENQ_WEBHOOK_ALLOW_HTTP", 0, CONFIG_API | CONFIG_WORKER, T_INT, 0, 1, "0",
     F(webhook_allow_http), 0},
    {"GENQ_WEBHOOK_ALLOW_NETS", 0, CONFIG_API | CONFIG_WORKER, T_STR, 0, 0, NULL,
     F(webhook_allow_nets), 0},
    {"GENQ_WEBHOOK_RETRY_BASE_MS", 0, CONFIG_WORKER, T_INT, 10, 3600000, "5000",
     F(webhook_retry_base_ms), 0},
    {"GENQ_WEBHOOK_POLL_MS", 0, CONFIG_WORKER, T_INT, 10, 60000, "1000", F(webhook_poll_ms), 0},
    {"GENQ_SECRETS_KEY", 0, CONFIG_WORKER | CONFIG_CTL, T_SECRET, 0, 0, NULL, F(secrets_key), 0},
    {"GENQ_SECRETS_KEY_PREVIOUS", 0, CONFIG_WORKER | CONFIG_CTL, T_SECRET, 0, 0, NULL,
     F(secrets_key_previous), 0},
    {"GENQ_PROVSIM_LISTEN", 0, CONFIG_PROVSIM, T_LISTEN, 0, 0, "127.0.0.1:8090", F(provsim_host),
     F(provsim_port)},
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* URLs and keys: printable ASCII or UTF-8, no spaces or control bytes. */
static int clean_token(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || *s == 0x7f) return 0;
  return 1;
}

/* Strict decimal: optional '-', digits only, no overflow. */
static int parse_ll(const char *s, long long *out) {
  const char *d = s[0] == '-' ? s + 1 : s;
  if (!isdigit((unsigned char)d[0])) return -1;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno == ERANGE || *end != '\0') return -1;
  *out = v;
  return 0;
}

static int parse_size(const char *s, long long *out) {
  char buf[32];
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, s, n + 1);
  long long mul = 1;
  switch (buf[n - 1]) {
  case 'k':
  case 'K':
    mul = 1LL << 10;
    break;
  case 'm':
  case 'M':
    mul = 1LL << 20;
    break;
  case 'g':
  case 'G':
    mul = 1LL << 30;
    break;
  default:
    break;
  }
  if (mul != 1) buf[n - 1] = '\0';
  long long v;
  if (buf[0] == '-' || parse_ll(buf, &v) < 0) return -1;
  if (v > LLONG_MAX / mul) return -1;
  *out = v * mul;
  return 0;
}

int config_parse_listen(const char *s, char *host, size_t hostlen, int *port) {
  if (!s) return -1;
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s) return -1;
  const char *h = s;
  size_t hl = (size_t)(colon - s);
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [::1]:8080 */
    h++;
    hl -= 2;
  }
  if (hl == 0 || hl > 63 || hl >= hostlen) return -1;
  for (size_t i = 0; i < hl; i++)
    if ((unsigned char)h[i] <= 0x20 || h[i] == 0x7f || h[i] == '/') return -1;
  const char *p = colon + 1;
  size_t pl = strlen(p);
  if (pl == 0 || pl > 5) return -1;
  long v = 0;
  for (size_t i = 0; i < pl; i++) {
    if (!isdigit((unsigned char)p[i])) return -1;
    v = v * 10 + (p[i] - '0');
  }
  if (v > 65535) return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (int)v;
  return 0;
}

/* Turns two-character "\n" sequences into newlines (keys pasted into .env
 * files arrive that way). */
static void unescape_newlines(char *s) {
  char *w = s;
  for (const char *r = s; *r; r++) {
    if (r[0] == '\\' && r[1] == 'n') {
      *w++ = '\n';
      r++;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

static const char *default_storage(char *buf, size_t len) {
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return NULL;
  int n = snprintf(buf, len, "file://%s/.genq/storage", cwd);
  if (n < 0 || (size_t)n >= len) return NULL;
  return buf;
}

/* Validates one value and stores it. Returns 0 or -1 with err set. */
static int apply(genq_config *c, const config_var *v, const char *val, char *err, size_t errlen) {
  char *base = (char *)c;
  const char *n = v->name;
  size_t maxlen = v->type == T_PEM ? CONFIG_PEM_MAX : CONFIG_VALUE_MAX;
  if (strnlen(val, maxlen + 1) > maxlen) {
    seterr(err, errlen, "%s is too long (at most %zu bytes)", n, maxlen);
    return -1;
  }
  long long num = 0;
  switch (v->type) {
  case T_INT:
    if (parse_ll(val, &num) < 0 || num < v->min || num > v->max) {
      seterr(err, errlen, "%s must be an integer between %lld and %lld (got \"%.32s\")", n, v->min,
             v->max, val);
      return -1;
    }
    *(int *)(base + v->off) = (int)num;
    return 0;
  case T_SIZE:
    if (parse_size(val, &num) < 0 || num < v->min || num > v->max) {
      seterr(err, errlen, "%s must be a byte count between %lld and %lld (got \"%.32s\")", n,
             v->min, v->max, val);
      return -1;
    }
    *(size_t *)(base + v->off) = (size_t)num;
    return 0;
  case T_LEVEL:
    num = log_level_parse(val);
    if (num < 0) {
      seterr(err, errlen, "%s must be one of debug, info, warn, error (got \"%.32s\")", n, val);
      return -1;
    }
    *(int *)(base + v->off) = (int)num;
    return 0;
  case T_LISTEN:
    if (config_parse_listen(val, base + v->off, 64, (int *)(base + v->off2)) < 0) {
      seterr(err, errlen, "%s must be host:port with a port between 0 and 65535 (got \"%.80s\")", n,
             val);
      return -1;
    }
    return 0;
  case T_DBURL:
    if (!(((starts(val, "postgres://") || starts(val, "postgresql://")) && clean_token(val)) ||
          strchr(val, '='))) {
      seterr(err, errlen, "%s must be a postgres:// or postgresql:// URL or a key=value conninfo",
             n);
      return -1;
    }
    break;
  case T_REDISURL: {
    if (!(starts(val, "redis://") || starts(val, "redis-sentinel://")) || !clean_token(val)) {
      seterr(err, errlen, "%s must be a redis:// or redis-sentinel:// URL", n);
      return -1;
    }
    rds_url u;
    char why[128];
    int bad = rds_url_parse(&u, val, why, sizeof why);
    rds_url_wipe(&u);
    if (bad) {
      /* why never echoes the URL: it may carry a password */
      seterr(err, errlen,
             "%s: %s (redis://[[user]:password@]host[:port][/db] or "
             "redis-sentinel://host[:port][,host[:port]...]/master[/db])",
             n, why);
      return -1;
    }
    break;
  }
  case T_BASEURL: {
    const char *rest = starts(val, "https://") ? val + 8 : starts(val, "http://") ? val + 7 : NULL;
    if (!rest || !*rest || *rest == '/' || !clean_token(val)) {
      seterr(err, errlen, "%s must be an http:// or https:// URL", n);
      return -1;
    }
    break;
  }
  case T_STORAGE:
    if (!((starts(val, "file:///") && val[8]) ||
          (starts(val, "s3://") && val[5] && val[5] != '/' && val[5] != '?')) ||
        !clean_token(val)) {
      seterr(err, errlen,
             "%s must be file:///absolute/path or s3://bucket?endpoint=... (got \"%.80s\")", n,
             val);
      return -1;
    }
    break;
  case T_SECRET:
    /* min: the shortest key worth having (signing keys); 0 for API keys */
    if (strlen(val) < (size_t)v->min) {
      seterr(err, errlen, "%s must be at least %lld bytes long", n, v->min);
      return -1;
    }
    break;
  case T_PEM:
  case T_STR:
    break;
  }

  char *copy = strdup(val);
  if (!copy) {
    seterr(err, errlen, "%s: out of memory", n);
    return -1;
  }
  if (v->type == T_BASEURL) {
    size_t l = strlen(copy);
    while (l > 0 && copy[l - 1] == '/')
      copy[--l] = '\0';
  } else if (v->type == T_PEM) {
    unescape_newlines(copy);
    if (!strstr(copy, "-----BEGIN PUBLIC KEY-----") && !strstr(copy, "BEGIN RSA PUBLIC KEY")) {
      seterr(err, errlen, "%s must be a PEM public key (-----BEGIN PUBLIC KEY-----)", n);
      free(copy);
      return -1;
    }
  }
  char **slot = (char **)(base + v->off);
  free(*slot);
  *slot = copy;
  return 0;
}

int config_load_from(genq_config *c, unsigned components, config_getenv_fn get, void *ctx,
                     char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  if (err && errlen) err[0] = '\0';
  char storage[PATH_MAX + 32];
  for (size_t i = 0; i < sizeof config_vars / sizeof config_vars[0]; i++) {
    const config_var *v = &config_vars[i];
    /* Variables of other components still get their defaults, so a struct
     * never holds a zero where the code expects a sane value. */
    const char *val = (v->use & components) && get ? get(v->name, ctx) : NULL;
    if (val && !*val) val = NULL;
    if (!val && (v->need & components)) {
      seterr(err, errlen, "%s is required", v->name);
      goto fail;
    }
    if (!val) val = v->def;
    if (!val && v->type == T_STORAGE) {
      val = default_storage(storage, sizeof storage);
      if (!val) {
        seterr(err, errlen, "GENQ_STORAGE is unset and the working directory is unknown");
        goto fail;
      }
    }
    if (val && apply(c, v, val, err, errlen) < 0) goto fail;
  }
  if (c->callback_url && !c->url_signing_key) {
    seterr(err, errlen, "GENQ_CALLBACK_URL needs GENQ_URL_SIGNING_KEY (the callback tokens' key)");
    goto fail;
  }
  if (c->secrets_key || c->secrets_key_previous) {
    secret_keyring kr; /* checked here, parsed again where used */
    int bad = secret_keyring_parse(&kr, c->secrets_key, c->secrets_key_previous, err, errlen);
    secret_keyring_wipe(&kr);
    if (bad) goto fail;
  }
  net_guard_nets nets;
  if (net_guard_nets_parse(c->webhook_allow_nets, &nets, err, errlen) < 0) goto fail;
  if (c->retry_cap_ms < c->retry_base_ms) {
    seterr(err, errlen, "GENQ_RETRY_CAP_MS must be at least GENQ_RETRY_BASE_MS (%d)",
           c->retry_base_ms);
    goto fail;
  }
  return 0;
fail:
  config_free(c);
  return -1;
}

static const char *config_getenv(const char *name, void *ctx) {
  (void)ctx;
  return getenv(name);
}

int config_load(genq_config *c, unsigned components, char *err, size_t errlen) {
  return config_load_from(c, components, config_getenv, NULL, err, errlen);
}

void config_free(genq_config *c) {
  if (!c) return;
  for (size_t i = 0; i < sizeof config_vars / sizeof config_vars[0]; i++) {
    const config_var *v = &config_vars[i];
    switch (v->type) {
    case T_INT:
    case T_SIZE:
    case T_LEVEL:
    case T_LISTEN:
      break;
    default:
      free(*(char **)((char *)c + v->off));
      break;
    }
  }
  memset(c, 0, sizeof *c);
}
