/* providers_cmd.c — genqctl providers show [--json] | open PROVIDER |
 * close PROVIDER: the fleet-wide provider limits as the workers share them
 * in Redis (common/provlimit_lua.h, docs/providers.md). Talks to
 * GENQ_REDIS_URL on a private loop, like announce.c, and waits for every
 * answer (5 s at most). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "ctl.h"
#include "log.h"
#include "provlimit_lua.h"
#include "provlimit_state.h"
#include "redis.h"

#define PROVIDERS_TIMEOUT_MS 5000

#define NPROV PROVLIMIT_NPROVIDERS
static const char *const *const providers = provlimit_providers;

typedef struct {
  int pending, timed_out, closed, failed;
  cJSON *out; /* show: the providers array */
} run_state;

static void on_timeout(uv_timer_t *t) {
  ((run_state *)t->data)->timed_out = 1;
}

static void on_closed(void *arg) {
  ((run_state *)arg)->closed = 1;
}

/* show: every provider's state (provlimit_state.c). */
static void on_show(const cJSON *arr, const char *err, void *arg) {
  run_state *st = arg;
  st->pending--;
  if (!arr) {
    fprintf(stderr, "genqctl providers: %s\n", err ? err : "unexpected reply");
    st->failed = 1;
    return;
  }
  cJSON_Delete(st->out);
  st->out = cJSON_Duplicate(arr, 1);
  if (!st->out) st->failed = 1;
}

static void on_set(redisReply *reply, const char *err, void *arg) {
  run_state *st = arg;
  st->pending--;
  if (!reply || reply->type == REDIS_REPLY_ERROR) {
    fprintf(stderr, "genqctl providers: Redis: %s\n",
            err ? err : (reply && reply->str ? reply->str : "error"));
    st->failed = 1;
  }
}

/* Runs the command on a private loop: show (provider NULL) or the breaker
 * forced open (open 1) or closed. */
static int run(const char *url, const char *provider, int open, run_state *st) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return -1;
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  timer.data = st;
  uv_timer_start(&timer, on_timeout, PROVIDERS_TIMEOUT_MS, 0);
  rds *r;
  char err[256];
  int rc = -1;
  if (rds_open(&r, &loop, url, err, sizeof err) != 0) {
    fprintf(stderr, "genqctl providers: GENQ_REDIS_URL: %s\n", err);
  } else {
    while (!rds_connected(r) && !st->timed_out)
      uv_run(&loop, UV_RUN_ONCE);
    char kst[64];
    if (!provider && rds_connected(r)) {
      st->pending++;
      if (provlimit_state_read(r, on_show, st) != 0) st->pending--;
    }
    for (int i = 0; i < NPROV && provider && rds_connected(r); i++) {
      if (strcmp(provider, providers[i]) != 0) continue;
      snprintf(kst, sizeof kst, PROVLIMIT_KEY_FMT, providers[i], "state");
      int sent;
      if (open) {
        sent = rds_command(r, on_set, st, "HSET %s breaker forced_open probe %s", kst, "") == 0;
      } else {
        sent = rds_command(r, on_set, st, "HSET %s breaker closed failures 0 open_until 0 probe %s",
                           kst, "") == 0;
      }
      st->pending += sent;
    }
    if (st->pending == 0 && !rds_connected(r))
      fprintf(stderr, "genqctl providers: cannot reach Redis (GENQ_REDIS_URL)\n");
    else
      rc = 0;
    while (st->pending > 0 && !st->timed_out)
      uv_run(&loop, UV_RUN_ONCE);
    if (st->pending > 0) {
      fprintf(stderr, "genqctl providers: Redis did not answer within %d ms\n",
              PROVIDERS_TIMEOUT_MS);
      rc = -1;
    }
    rds_close(r, on_closed, st);
    while (!st->closed)
      uv_run(&loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc == 0 && !st->failed ? 0 : -1;
}

cJSON *ctl_providers_state(const char *redis_url) {
  run_state st = {.out = cJSON_CreateArray()};
  if (!redis_url || !st.out || run(redis_url, NULL, 0, &st) != 0) {
    cJSON_Delete(st.out);
    return NULL;
  }
  return st.out;
}

void ctl_providers_print(const cJSON *arr) {
  printf("%-8s %5s %6s %6s %10s %8s %-12s %8s %8s\n", "PROVIDER", "MAX", "WINDOW", "IN_USE",
         "PAUSED_MS", "RATE/MIN", "BREAKER", "FAILURES", "LIMITED");
  const cJSON *p;
  cJSON_ArrayForEach(p, arr) {
    const cJSON *pf = cJSON_GetObjectItem(p, "paused_for_ms");
    char paused[24] = "-";
    if (cJSON_IsNumber(pf)) snprintf(paused, sizeof paused, "%.0f", pf->valuedouble);
    printf("%-8s %5.0f %6.0f %6.0f %10s %8.0f %-12s %8.0f %8.0f\n",
           cJSON_GetObjectItem(p, "provider")->valuestring,
           cJSON_GetObjectItem(p, "max_in_flight")->valuedouble,
           cJSON_GetObjectItem(p, "window")->valuedouble,
           cJSON_GetObjectItem(p, "in_use")->valuedouble, paused,
           cJSON_GetObjectItem(p, "rate_per_minute")->valuedouble,
           cJSON_GetObjectItem(p, "breaker")->valuestring,
           cJSON_GetObjectItem(p, "failures")->valuedouble,
           cJSON_GetObjectItem(p, "rate_limited")->valuedouble);
  }
}

static int usage(const char *msg) {
  fprintf(stderr,
          "genqctl providers: %s\nusage: genqctl providers show [--json] | open PROVIDER [--json] "
          "| close PROVIDER [--json]\n  PROVIDER: openai, luma or hedra\n",
          msg);
  return CTL_USAGE;
}

int ctl_providers(int argc, char **argv) {
  if (argc < 1) return usage("needs a subcommand");
  const char *sub = argv[0], *provider = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (argv[i][0] == '-')
      return usage("unknown option");
    else if (!provider)
      provider = argv[i];
    else
      return usage("too many arguments");
  }
  int show = !strcmp(sub, "show"), open = !strcmp(sub, "open");
  if (!show && !open && strcmp(sub, "close") != 0) return usage("unknown subcommand");
  if (show && provider) return usage("show takes no provider");
  if (!show) {
    int known = 0;
    for (int i = 0; provider && i < NPROV; i++)
      known |= !strcmp(provider, providers[i]);
    if (!known) return usage(provider ? "unknown provider" : "needs a provider");
  }
  genq_config cfg;
  char err[512];
  if (config_load(&cfg, CONFIG_CTL, err, sizeof err) < 0) {
    fprintf(stderr, "genqctl: %s\n", err);
    return CTL_FAIL;
  }
  if (!cfg.redis_url) {
    config_free(&cfg);
    fprintf(stderr, "genqctl providers: GENQ_REDIS_URL is not set\n");
    return CTL_FAIL;
  }
  log_init("ctl", LOG_ERROR);
  run_state st = {.out = cJSON_CreateArray()};
  int rc = run(cfg.redis_url, show ? NULL : provider, open, &st);
  config_free(&cfg);
  if (rc == 0) {
    if (show && json) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddItemToObject(o, "providers", st.out);
      st.out = NULL;
      char *s = cJSON_PrintUnformatted(o);
      printf("%s\n", s ? s : "{}");
      cJSON_free(s);
      cJSON_Delete(o);
    } else if (show) {
      ctl_providers_print(st.out);
    } else if (json) {
      printf("{\"provider\":\"%s\",\"breaker\":\"%s\"}\n", provider,
             open ? "forced_open" : "closed");
    } else {
      printf("%s: breaker %s\n", provider, open ? "forced open" : "closed");
    }
  }
  cJSON_Delete(st.out);
  return rc == 0 ? CTL_OK : CTL_FAIL;
}
