/* main.c — genq-worker: options, configuration, connections, signals.
 *
 *   genq-worker [--kinds storyboard,...] [--concurrency N]
 *
 * SIGTERM/SIGINT: take no new jobs, let the ones in flight finish within
 * GENQ_SHUTDOWN_GRACE_MS, then exit 0 (leases cover what did not finish).
 * A second signal exits at once. SIGUSR1 or SIGTSTP: quiet — take no new
 * jobs, go on with the ones held (before scaling a worker down).
 * `genqctl workers quiet|stop ID` does the same through Redis (presence.c). */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

static worker W;
/* SIGINT and SIGTERM stop the worker; SIGUSR1 and SIGTSTP make it quiet */
static const int signums[4] = {SIGINT, SIGTERM, SIGUSR1, SIGTSTP};
static uv_signal_t sigs[4];

#define ALL_KINDS "storyboard,image,video,lipsync,campaign"

static void usage(void) {
  fprintf(stderr, "usage: genq-worker [--kinds kind[,kind...]] [--concurrency N]\n"
                  "  kinds: " ALL_KINDS " (default: all)\n");
}

static int parse_kinds(worker *w, const char *list) {
  char buf[256];
  snprintf(buf, sizeof(buf), "%s", list);
  w->nkinds = 0;
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    job_kind k;
    if (job_kind_parse(tok, &k) != 0) {
      fprintf(stderr, "genq-worker: --kinds: unknown kind '%s'\n", tok);
      return -1;
    }
    if (!job_kind_runnable(k)) {
      fprintf(stderr, "genq-worker: --kinds: '%s' jobs are not supported by this worker yet\n",
              tok);
      return -1;
    }
    int dup = 0;
    for (int i = 0; i < w->nkinds; i++)
      dup |= strcmp(w->kinds[i], job_kind_name(k)) == 0;
    if (!dup) w->kinds[w->nkinds++] = job_kind_name(k);
  }
  if (w->nkinds == 0) {
    fprintf(stderr, "genq-worker: --kinds: empty list\n");
    return -1;
  }
  return 0;
}

/* A stop lets the loop end once everything else closed: the stop signals
 * no longer keep it alive. */
static void stop(worker *w) {
  uv_unref((uv_handle_t *)&sigs[0]);
  uv_unref((uv_handle_t *)&sigs[1]);
  worker_stop(w);
}

static void on_signal(uv_signal_t *s, int signum) {
  static int signals; /* a stop by genqctl (stop_requested) is not one */
  if (signals++ > 0) {
    log_warn("second signal: exiting now", LI("signal", signum));
    _exit(1);
  }
  log_info("signal received", LI("signal", signum));
  stop(s->data);
}

/* genqctl workers stop ID, through Redis (presence.c) */
static void stop_requested(worker *w) {
  stop(w);
}

static void on_quiet(uv_signal_t *s, int signum) {
  log_info("signal received", LI("signal", signum));
  worker_quiet(s->data);
}

/* Blocks of this size and more are mapped on their own and unmapped when
 * freed. glibc otherwise raises the threshold to the largest block freed
 * so far, and the lease renewal's and the claims' buffers (hundreds of KiB
 * with thousands of jobs held) then come from the heap, where what they
 * leave stays resident between two trims (process.c). */
#define MMAP_THRESHOLD_BYTES (128 * 1024)

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES); /* also stops glibc moving it */
  worker *w = &W;
  const char *kinds = NULL, *conc = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--kinds") == 0 && i + 1 < argc) {
      kinds = argv[++i];
    } else if (strncmp(argv[i], "--kinds=", 8) == 0) {
      kinds = argv[i] + 8;
    } else if (strcmp(argv[i], "--concurrency") == 0 && i + 1 < argc) {
      conc = argv[++i];
    } else if (strncmp(argv[i], "--concurrency=", 14) == 0) {
      conc = argv[i] + 14;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage();
      return 0;
    } else {
      fprintf(stderr, "genq-worker: unknown argument '%s'\n", argv[i]);
      usage();
      return 2;
    }
  }
  char err[512];
  if (config_load(&w->cfg, CONFIG_WORKER, err, sizeof(err)) != 0) {
    fprintf(stderr, "genq-worker: %s\n", err);
    return 1;
  }
  log_init("worker", w->cfg.log_level);
  if (parse_kinds(w, kinds ? kinds : ALL_KINDS) != 0) return 2;
  w->concurrency = w->cfg.worker_concurrency;
  if (conc) {
    char *end;
    long n = strtol(conc, &end, 10);
    if (!*conc || *end || n < 1 || n > 100000) {
      fprintf(stderr, "genq-worker: --concurrency must be an integer between 1 and 100000\n");
      return 2;
    }
    w->concurrency = (int)n;
  }
  if (w->cfg.worker_ttl_ms < 2 * w->cfg.worker_beat_ms) {
    fprintf(stderr, "genq-worker: GENQ_WORKER_TTL_MS must be at least twice GENQ_WORKER_BEAT_MS\n");
    config_free(&w->cfg);
    return 1;
  }
  snprintf(w->host, sizeof(w->host), "host");
  gethostname(w->host, sizeof(w->host) - 1);
  for (char *c = w->host; *c; c++) /* a registry id has no space or control byte */
    if (*c <= ' ' || *c > '~') *c = '-';
  unsigned char rnd[3] = {0};
  uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL);
  snprintf(w->id, sizeof(w->id), "%.63s:%d:%02x%02x%02x", w->host, (int)getpid(), rnd[0], rnd[1],
           rnd[2]);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(w->started_at, sizeof(w->started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
  w->request_quiet = worker_quiet;
  w->request_stop = stop_requested;

  w->loop = uv_default_loop();
  w->openai = (openai_opts){.base_url = w->cfg.openai_base_url,
                            .api_key = w->cfg.openai_api_key,
                            .model = w->cfg.openai_model,
                            .timeout_ms = w->cfg.provider_timeout_ms};
  w->luma = (luma_opts){.base_url = w->cfg.luma_base_url,
                        .api_key = w->cfg.luma_api_key ? w->cfg.luma_api_key : "",
                        .timeout_ms = w->cfg.provider_timeout_ms};
  w->hedra = (hedra_opts){.base_url = w->cfg.hedra_base_url,
                          .api_key = w->cfg.hedra_api_key ? w->cfg.hedra_api_key : "",
                          .timeout_ms = w->cfg.provider_timeout_ms};
  db_options dbo = {.conninfo = w->cfg.database_url, .pool_size = w->cfg.db_pool_size};
  if (db_open(&w->db, w->loop, &dbo) != 0 ||
      rds_open(&w->redis, w->loop, w->cfg.redis_url, err, sizeof(err)) != 0 ||
      rds_open(&w->redis_fetch, w->loop, w->cfg.redis_url, err, sizeof(err)) != 0 ||
      rds_open(&w->redis_sub, w->loop, w->cfg.redis_url, err, sizeof(err)) != 0 ||
      httpc_new(&w->http, w->loop) != 0 ||
      storage_open(&w->storage, w->loop, w->http, w->cfg.storage, w->cfg.s3_access_key,
                   w->cfg.s3_secret_key, err, sizeof(err)) != 0 ||
      relay_start(&w->relay, w->loop, w->db, w->redis, 1000, 5000) != 0) {
    fprintf(stderr, "genq-worker: cannot start: %s\n", err);
    return 1;
  }
  if (metrics_start(w, err, sizeof(err)) != 0) { /* GET /metrics, when GENQ_METRICS_LISTEN is set */
    fprintf(stderr, "genq-worker: %s\n", err);
    return 1;
  }
  worker_start(w);
  for (int i = 0; i < 4; i++) {
    uv_signal_init(w->loop, &sigs[i]);
    sigs[i].data = w;
    uv_signal_start(&sigs[i], i < 2 ? on_signal : on_quiet, signums[i]);
    if (i >= 2) uv_unref((uv_handle_t *)&sigs[i]); /* quiet does not keep the loop alive */
  }
  log_info("worker started", LS("worker_id", w->id), LI("concurrency", w->concurrency),
           LS("kinds", kinds ? kinds : ALL_KINDS));

  uv_run(w->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 4; i++)
    uv_close((uv_handle_t *)&sigs[i], NULL);
  uv_run(w->loop, UV_RUN_DEFAULT);
  uv_loop_close(w->loop);
  runner_free(w);
  config_free(&w->cfg);
  return 0;
}
