/* config.c: environment validation through config_load_from with a fake
 * variable table (the process environment is never touched). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>

#include "config.h"
#include "log.h"

#define PEM_ESCAPED                                                                                \
  "-----BEGIN PUBLIC KEY-----\\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\\n"                   \
  "-----END PUBLIC KEY-----\\n"
#define PEM_DECODED                                                                                \
  "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"                     \
  "-----END PUBLIC KEY-----\n"

typedef struct {
  const char *kv[64][2];
  int n;
} fakeenv;

static const char *fake_get(const char *name, void *ctx) {
  fakeenv *e = ctx;
  for (int i = 0; i < e->n; i++)
    if (strcmp(e->kv[i][0], name) == 0) return e->kv[i][1];
  return NULL;
}

/* Sets (or, with v NULL, removes) one variable. */
static void put(fakeenv *e, const char *k, const char *v) {
  for (int i = 0; i < e->n; i++)
    if (strcmp(e->kv[i][0], k) == 0) {
      if (v) {
        e->kv[i][1] = v;
      } else {
        e->kv[i][0] = e->kv[e->n - 1][0];
        e->kv[i][1] = e->kv[e->n - 1][1];
        e->n--;
      }
      return;
    }
  if (!v) return;
  e->kv[e->n][0] = k;
  e->kv[e->n][1] = v;
  e->n++;
}

/* Everything every component requires. */
static fakeenv full_env(void) {
  fakeenv e = {.n = 0};
  put(&e, "GENQ_DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/genq");
  put(&e, "GENQ_REDIS_URL", "redis://127.0.0.1:56379/3");
  put(&e, "CLERK_JWT_KEY", PEM_ESCAPED);
  put(&e, "CLERK_ISSUER", "https://clerk.example.dev");
  put(&e, "OPENAI_API_KEY", "sk-test");
  return e;
}

static char err[256];

static int load(fakeenv *e, unsigned comp, genq_config *c) {
  err[0] = '\0';
  return config_load_from(c, comp, fake_get, e, err, sizeof err);
}

/* Loads with one variable changed and expects the exact message. */
static void expect_bad(unsigned comp, const char *name, const char *value, const char *msg) {
  fakeenv e = full_env();
  put(&e, name, value);
  genq_config c;
  if (load(&e, comp, &c) == 0) {
    config_free(&c);
    fail_msg("%s=%s accepted", name, value ? value : "(unset)");
  }
  if (strstr(err, name) != err) fail_msg("message does not start with %s: %s", name, err);
  if (msg) assert_string_equal(err, msg);
}

static void test_api_loads_with_required_variables_and_defaults(void **state) {
  fakeenv e = full_env();
  genq_config c;
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  assert_string_equal(c.database_url, "postgresql://postgres@127.0.0.1:55432/genq");
  assert_string_equal(c.redis_url, "redis://127.0.0.1:56379/3");
  assert_string_equal(c.clerk_issuer, "https://clerk.example.dev");
  assert_null(c.clerk_authorized_parties);
  assert_null(c.stripe_webhook_secret);
  assert_int_equal(c.log_level, LOG_INFO);
  assert_int_equal(c.db_pool_size, 4);
  assert_string_equal(c.api_host, "127.0.0.1");
  assert_int_equal(c.api_port, 8080);
  assert_int_equal(c.max_body_bytes, 1048576);
  assert_int_equal(c.max_header_bytes, 16384);
  assert_int_equal(c.header_timeout_ms, 10000);
  assert_int_equal(c.idle_timeout_ms, 60000);
  assert_int_equal(c.lease_seconds, 60);
  assert_int_equal(c.max_attempts, 5);
  config_free(&c);
  assert_null(c.database_url);
}

static void test_worker_defaults(void **state) {
  fakeenv e = full_env();
  genq_config c;
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_string_equal(c.openai_api_key, "sk-test");
  assert_string_equal(c.openai_base_url, "https://api.openai.com/v1");
  assert_string_equal(c.openai_model, "gpt-4o-mini");
  assert_string_equal(c.luma_base_url, "https://api.lumalabs.ai/dream-machine/v1");
  assert_string_equal(c.hedra_base_url, "https://api.hedra.com/v3");
  assert_null(c.luma_api_key);
  assert_null(c.hedra_api_key);
  assert_int_equal(c.worker_concurrency, 64);
  assert_int_equal(c.lease_seconds, 60);
  assert_int_equal(c.max_attempts, 5);
  assert_int_equal(c.retry_base_ms, 2000);
  assert_int_equal(c.retry_cap_ms, 600000);
  assert_int_equal(c.provider_timeout_ms, 120000);
  char cwd[PATH_MAX], want[PATH_MAX + 64];
  assert_non_null(getcwd(cwd, sizeof cwd));
  snprintf(want, sizeof want, "file://%s/.genq/storage", cwd);
  assert_string_equal(c.storage, want);
  config_free(&c);
}

static void test_provsim_needs_nothing(void **state) {
  fakeenv e = {.n = 0};
  genq_config c;
  assert_int_equal(load(&e, CONFIG_PROVSIM, &c), 0);
  assert_string_equal(c.provsim_host, "127.0.0.1");
  assert_int_equal(c.provsim_port, 8090);
  assert_null(c.database_url);
  config_free(&c);
}

static void test_each_required_variable_missing_is_named(void **state) {
  static const struct {
    unsigned comp;
    const char *name;
  } cases[] = {
      {CONFIG_API, "GENQ_DATABASE_URL"},    {CONFIG_API, "GENQ_REDIS_URL"},
      {CONFIG_API, "CLERK_JWT_KEY"},        {CONFIG_API, "CLERK_ISSUER"},
      {CONFIG_WORKER, "GENQ_DATABASE_URL"}, {CONFIG_WORKER, "GENQ_REDIS_URL"},
      {CONFIG_WORKER, "OPENAI_API_KEY"},    {CONFIG_CTL, "GENQ_DATABASE_URL"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char want[128];
    snprintf(want, sizeof want, "%s is required", cases[i].name);
    expect_bad(cases[i].comp, cases[i].name, NULL, want);
    expect_bad(cases[i].comp, cases[i].name, "", want); /* empty counts as unset */
  }
}

static void test_component_masks(void **state) {
  /* the worker does not need Clerk, the api does not need OpenAI, ctl needs
   * only the database */
  fakeenv e = full_env();
  put(&e, "CLERK_JWT_KEY", NULL);
  put(&e, "CLERK_ISSUER", NULL);
  genq_config c;
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_null(c.clerk_jwt_key);
  config_free(&c);

  e = full_env();
  put(&e, "OPENAI_API_KEY", NULL);
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  config_free(&c);

  fakeenv only_db = {.n = 0};
  put(&only_db, "GENQ_DATABASE_URL", "host=127.0.0.1 port=55432 dbname=genq");
  assert_int_equal(load(&only_db, CONFIG_CTL, &c), 0);
  assert_string_equal(c.database_url, "host=127.0.0.1 port=55432 dbname=genq");
  config_free(&c);

  /* api|worker together need the union */
  e = full_env();
  put(&e, "OPENAI_API_KEY", NULL);
  assert_int_equal(load(&e, CONFIG_API | CONFIG_WORKER, &c), -1);
  assert_string_equal(err, "OPENAI_API_KEY is required");

  /* a bad value of a variable the component does not read is ignored */
  e = full_env();
  put(&e, "GENQ_WORKER_CONCURRENCY", "lots");
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  config_free(&c);
}

static void test_bad_integers_are_rejected_with_the_value(void **state) {
  expect_bad(CONFIG_WORKER, "GENQ_LEASE_SECONDS", "abc",
             "GENQ_LEASE_SECONDS must be an integer between 5 and 3600 (got \"abc\")");
  expect_bad(CONFIG_WORKER, "GENQ_LEASE_SECONDS", "4",
             "GENQ_LEASE_SECONDS must be an integer between 5 and 3600 (got \"4\")");
  expect_bad(CONFIG_WORKER, "GENQ_LEASE_SECONDS", "3601", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_LEASE_SECONDS", "60s", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_LEASE_SECONDS", " 60", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_LEASE_SECONDS", "+60", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_LEASE_SECONDS", "6.0", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_LEASE_SECONDS", "99999999999999999999999", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_LEASE_SECONDS", "4294967356", NULL); /* 60 mod 2^32 */
  expect_bad(CONFIG_WORKER, "GENQ_WORKER_CONCURRENCY", "0", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_WORKER_CONCURRENCY", "100001", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_MAX_ATTEMPTS", "-1", NULL);
  expect_bad(CONFIG_API, "GENQ_DB_POOL", "65", NULL);
  expect_bad(CONFIG_API, "GENQ_HEADER_TIMEOUT_MS", "x", NULL);
  expect_bad(CONFIG_API, "GENQ_MAX_BODY_BYTES", "12q", NULL);
  expect_bad(CONFIG_API, "GENQ_MAX_BODY_BYTES", "99999999999999999999g", NULL);
  expect_bad(CONFIG_API, "GENQ_MAX_BODY_BYTES", "2g", NULL);
  expect_bad(CONFIG_API, "GENQ_MAX_BODY_BYTES", "-5", NULL);
}

static void test_integers_in_range_are_accepted(void **state) {
  fakeenv e = full_env();
  put(&e, "GENQ_LEASE_SECONDS", "5");
  put(&e, "GENQ_WORKER_CONCURRENCY", "100000");
  put(&e, "GENQ_MAX_ATTEMPTS", "1");
  put(&e, "GENQ_RETRY_BASE_MS", "10");
  put(&e, "GENQ_RETRY_CAP_MS", "20");
  genq_config c;
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_int_equal(c.lease_seconds, 5);
  assert_int_equal(c.worker_concurrency, 100000);
  assert_int_equal(c.max_attempts, 1);
  assert_int_equal(c.retry_base_ms, 10);
  assert_int_equal(c.retry_cap_ms, 20);
  config_free(&c);

  e = full_env();
  put(&e, "GENQ_MAX_BODY_BYTES", "2m");
  put(&e, "GENQ_MAX_HEADER_BYTES", "8192");
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  assert_int_equal(c.max_body_bytes, 2 * 1024 * 1024);
  assert_int_equal(c.max_header_bytes, 8192);
  config_free(&c);
}

static void test_retry_cap_below_base_is_rejected(void **state) {
  fakeenv e = full_env();
  put(&e, "GENQ_RETRY_BASE_MS", "5000");
  put(&e, "GENQ_RETRY_CAP_MS", "1000");
  genq_config c;
  assert_int_equal(load(&e, CONFIG_WORKER, &c), -1);
  assert_non_null(strstr(err, "GENQ_RETRY_CAP_MS"));
}

static void test_callbacks_are_off_by_default_and_need_the_signing_key(void **state) {
  fakeenv e = full_env();
  genq_config c;
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_null(c.callback_url);
  assert_int_equal(c.callback_poll_max_interval_ms, 60000);
  config_free(&c);
  put(&e, "GENQ_CALLBACK_URL", "https://genq.example.com/");
  assert_int_equal(load(&e, CONFIG_WORKER, &c), -1);
  assert_non_null(strstr(err, "GENQ_CALLBACK_URL needs GENQ_URL_SIGNING_KEY"));
  put(&e, "GENQ_URL_SIGNING_KEY", "0123456789abcdef0123456789abcdef");
  put(&e, "GENQ_CALLBACK_POLL_MAX_INTERVAL_MS", "120000");
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_string_equal(c.callback_url, "https://genq.example.com");
  assert_int_equal(c.callback_poll_max_interval_ms, 120000);
  config_free(&c);
  put(&e, "GENQ_CALLBACK_URL", "ftp://genq.example.com");
  assert_int_equal(load(&e, CONFIG_WORKER, &c), -1);
  assert_non_null(strstr(err, "GENQ_CALLBACK_URL"));
}

static void test_webhook_settings_default_off_and_bad_values_are_named(void **state) {
  fakeenv e = full_env();
  genq_config c;
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_int_equal(c.webhook_allow_http, 0);
  assert_null(c.webhook_allow_nets);
  assert_null(c.secrets_key);
  assert_int_equal(c.webhook_retry_base_ms, 5000);
  assert_int_equal(c.webhook_poll_ms, 1000);
  config_free(&c);
  put(&e, "GENQ_SECRETS_KEY", "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  put(&e, "GENQ_WEBHOOK_ALLOW_NETS", "127.0.0.1/32,::1/128");
  put(&e, "GENQ_WEBHOOK_ALLOW_HTTP", "1");
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_int_equal(c.webhook_allow_http, 1);
  assert_string_equal(c.webhook_allow_nets, "127.0.0.1/32,::1/128");
  config_free(&c);
  expect_bad(CONFIG_WORKER, "GENQ_SECRETS_KEY", "not-a-key", NULL);
  expect_bad(CONFIG_CTL, "GENQ_SECRETS_KEY", "c2hvcnQ=", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_SECRETS_KEY_PREVIOUS",
             "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", NULL); /* previous without current */
  expect_bad(CONFIG_API, "GENQ_WEBHOOK_ALLOW_NETS", "127.0.0.1/8", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_WEBHOOK_ALLOW_NETS", "localhost", NULL);
  expect_bad(CONFIG_API, "GENQ_WEBHOOK_ALLOW_HTTP", "yes", NULL);
  /* the API reads no key: a bad one there is not its concern */
  put(&e, "GENQ_SECRETS_KEY", "not-a-key");
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  config_free(&c);
}

static void test_bad_urls_are_rejected(void **state) {
  const char *dbmsg = "GENQ_DATABASE_URL must be a postgres:// or postgresql:// URL or a key=value "
                      "conninfo";
  expect_bad(CONFIG_API, "GENQ_DATABASE_URL", "mysql://localhost/genq", dbmsg);
  expect_bad(CONFIG_API, "GENQ_DATABASE_URL", "localhost", dbmsg);
  expect_bad(CONFIG_API, "GENQ_REDIS_URL", "127.0.0.1:6379",
             "GENQ_REDIS_URL must be a redis:// or redis-sentinel:// URL");
  expect_bad(CONFIG_API, "GENQ_REDIS_URL", "redis://", NULL);
  expect_bad(CONFIG_API, "GENQ_REDIS_URL", "redis://a b", NULL);
  expect_bad(CONFIG_API, "GENQ_REDIS_URL", "redis://127.0.0.1:6379/x", NULL);
  /* Sentinels: the reason, never the URL (it may carry a password) */
  expect_bad(CONFIG_WORKER, "GENQ_REDIS_URL", "redis-sentinel://:hunter2@127.0.0.1:26379", NULL);
  assert_non_null(strstr(err, "GENQ_REDIS_URL: redis url: the primary's name is missing"));
  assert_null(strstr(err, "hunter2"));
  expect_bad(CONFIG_CTL, "GENQ_REDIS_URL", "redis-sentinel://127.0.0.1:99999/mymaster", NULL);
  assert_non_null(strstr(err, "bad port"));
  {
    fakeenv se = full_env();
    put(&se, "GENQ_REDIS_URL", "redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/2");
    genq_config sc;
    assert_int_equal(load(&se, CONFIG_WORKER, &sc), 0);
    assert_string_equal(sc.redis_url,
                        "redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/2");
    config_free(&sc);
  }
  expect_bad(CONFIG_WORKER, "OPENAI_BASE_URL", "api.openai.com/v1",
             "OPENAI_BASE_URL must be an http:// or https:// URL");
  expect_bad(CONFIG_WORKER, "LUMA_BASE_URL", "ftp://luma", NULL);
  expect_bad(CONFIG_WORKER, "HEDRA_BASE_URL", "https://", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_STORAGE", "/var/lib/genq", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_STORAGE", "file://relative", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_STORAGE", "s3://", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_STORAGE", "gs://bucket", NULL);
}

static void test_urls_are_accepted_and_trailing_slash_dropped(void **state) {
  fakeenv e = full_env();
  put(&e, "GENQ_DATABASE_URL", "postgres://u:p@db/genq?sslmode=disable");
  put(&e, "OPENAI_BASE_URL", "http://127.0.0.1:8090/openai/v1/");
  put(&e, "LUMA_BASE_URL", "https://luma.test//");
  put(&e, "GENQ_STORAGE", "s3://genq-assets?endpoint=http://minio:9000");
  genq_config c;
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_string_equal(c.database_url, "postgres://u:p@db/genq?sslmode=disable");
  assert_string_equal(c.openai_base_url, "http://127.0.0.1:8090/openai/v1");
  assert_string_equal(c.luma_base_url, "https://luma.test");
  assert_string_equal(c.storage, "s3://genq-assets?endpoint=http://minio:9000");
  config_free(&c);
  put(&e, "GENQ_STORAGE", "file:///var/lib/genq");
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_string_equal(c.storage, "file:///var/lib/genq");
  config_free(&c);
}

static void test_url_errors_do_not_echo_credentials(void **state) {
  fakeenv e = full_env();
  put(&e, "GENQ_DATABASE_URL", "mysql://root:hunter2@db/genq");
  genq_config c;
  assert_int_equal(load(&e, CONFIG_API, &c), -1);
  assert_null(strstr(err, "hunter2"));
}

static void test_listen_addresses(void **state) {
  char host[64];
  int port = -1;
  assert_int_equal(config_parse_listen("0.0.0.0:80", host, sizeof host, &port), 0);
  assert_string_equal(host, "0.0.0.0");
  assert_int_equal(port, 80);
  assert_int_equal(config_parse_listen("localhost:0", host, sizeof host, &port), 0);
  assert_int_equal(port, 0);
  assert_int_equal(config_parse_listen("[::1]:65535", host, sizeof host, &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 65535);
  const char *bad[] = {"8080",
                       ":8080",
                       "host:",
                       "host:65536",
                       "host:-1",
                       "host:80x",
                       "host:123456",
                       "ho st:80",
                       "",
                       "a234567890123456789012345678901234567890123456789012345678901234:80"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (config_parse_listen(bad[i], host, sizeof host, &port) == 0) fail_msg("accepted %s", bad[i]);

  fakeenv e = full_env();
  put(&e, "GENQ_API_LISTEN", "0.0.0.0:9000");
  genq_config c;
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  assert_string_equal(c.api_host, "0.0.0.0");
  assert_int_equal(c.api_port, 9000);
  config_free(&c);
  expect_bad(CONFIG_API, "GENQ_API_LISTEN", "8080", NULL);
  expect_bad(CONFIG_API, "GENQ_API_LISTEN", "0.0.0.0:99999", NULL);
  expect_bad(CONFIG_PROVSIM, "GENQ_PROVSIM_LISTEN", "nowhere", NULL);
}

static void test_metrics_listen_is_off_unless_set_and_checked(void **state) {
  fakeenv e = full_env();
  genq_config c;
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_string_equal(c.metrics_host, ""); /* unset: no metrics server */
  config_free(&c);
  put(&e, "GENQ_METRICS_LISTEN", ""); /* empty counts as unset */
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_string_equal(c.metrics_host, "");
  config_free(&c);
  put(&e, "GENQ_METRICS_LISTEN", "0.0.0.0:9100");
  assert_int_equal(load(&e, CONFIG_WORKER, &c), 0);
  assert_string_equal(c.metrics_host, "0.0.0.0");
  assert_int_equal(c.metrics_port, 9100);
  config_free(&c);
  expect_bad(CONFIG_WORKER, "GENQ_METRICS_LISTEN", "9100",
             "GENQ_METRICS_LISTEN must be host:port with a port between 0 and 65535 (got "
             "\"9100\")");
  expect_bad(CONFIG_WORKER, "GENQ_METRICS_LISTEN", "127.0.0.1:70000", NULL);
  expect_bad(CONFIG_WORKER, "GENQ_METRICS_LISTEN", "127.0.0.1:", NULL);
}

static void test_clerk_jwt_key_escapes_are_decoded(void **state) {
  fakeenv e = full_env();
  genq_config c;
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  assert_string_equal(c.clerk_jwt_key, PEM_DECODED);
  config_free(&c);
  /* real newlines pass through unchanged; PKCS#1 headers are accepted */
  put(&e, "CLERK_JWT_KEY", "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n");
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  assert_string_equal(c.clerk_jwt_key,
                      "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n");
  config_free(&c);
  expect_bad(CONFIG_API, "CLERK_JWT_KEY", "not a key",
             "CLERK_JWT_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)");
  expect_bad(CONFIG_API, "CLERK_JWT_KEY",
             "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----", NULL);
}

static void test_log_level(void **state) {
  fakeenv e = full_env();
  put(&e, "GENQ_LOG_LEVEL", "debug");
  genq_config c;
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  assert_int_equal(c.log_level, LOG_DEBUG);
  config_free(&c);
  expect_bad(CONFIG_API, "GENQ_LOG_LEVEL", "verbose",
             "GENQ_LOG_LEVEL must be one of debug, info, warn, error (got \"verbose\")");
  expect_bad(CONFIG_API, "GENQ_LOG_LEVEL", "INFO", NULL);
}

static void test_optional_strings_are_copied(void **state) {
  fakeenv e = full_env();
  put(&e, "CLERK_AUTHORIZED_PARTIES", "https://app.example.com,http://localhost:3000");
  put(&e, "STRIPE_WEBHOOK_SECRET", "whsec_abc");
  genq_config c;
  assert_int_equal(load(&e, CONFIG_API, &c), 0);
  assert_string_equal(c.clerk_authorized_parties, "https://app.example.com,http://localhost:3000");
  assert_string_equal(c.stripe_webhook_secret, "whsec_abc");
  config_free(&c);
}

static void test_failure_leaves_nothing_to_free(void **state) {
  /* a late failure after strings were copied: LeakSanitizer would report them */
  fakeenv e = full_env();
  put(&e, "GENQ_PROVIDER_TIMEOUT_MS", "1");
  genq_config c;
  assert_int_equal(load(&e, CONFIG_WORKER, &c), -1);
  assert_string_equal(
      err, "GENQ_PROVIDER_TIMEOUT_MS must be an integer between 1000 and 3600000 (got \"1\")");
  assert_null(c.database_url);
  assert_null(c.openai_api_key);
}

static void test_overlong_value_is_rejected(void **state) {
  static char big[5000];
  memset(big, 'a', sizeof big - 1);
  memcpy(big, "redis://", 8);
  expect_bad(CONFIG_API, "GENQ_REDIS_URL", big, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_api_loads_with_required_variables_and_defaults),
      cmocka_unit_test(test_worker_defaults),
      cmocka_unit_test(test_provsim_needs_nothing),
      cmocka_unit_test(test_each_required_variable_missing_is_named),
      cmocka_unit_test(test_component_masks),
      cmocka_unit_test(test_bad_integers_are_rejected_with_the_value),
      cmocka_unit_test(test_integers_in_range_are_accepted),
      cmocka_unit_test(test_retry_cap_below_base_is_rejected),
      cmocka_unit_test(test_callbacks_are_off_by_default_and_need_the_signing_key),
      cmocka_unit_test(test_webhook_settings_default_off_and_bad_values_are_named),
      cmocka_unit_test(test_bad_urls_are_rejected),
      cmocka_unit_test(test_urls_are_accepted_and_trailing_slash_dropped),
      cmocka_unit_test(test_url_errors_do_not_echo_credentials),
      cmocka_unit_test(test_listen_addresses),
      cmocka_unit_test(test_metrics_listen_is_off_unless_set_and_checked),
      cmocka_unit_test(test_clerk_jwt_key_escapes_are_decoded),
      cmocka_unit_test(test_log_level),
      cmocka_unit_test(test_optional_strings_are_copied),
      cmocka_unit_test(test_failure_leaves_nothing_to_free),
      cmocka_unit_test(test_overlong_value_is_rejected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
