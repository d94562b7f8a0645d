/* genqctl sweep [--now T] [--json]: one full retention sweep (SPEC §7;
 * docs/privacy.md). Runs every step of common/sweep_steps.h — the list the
 * workers sweep with, a batch at a time — each until it has nothing left,
 * and deletes from storage (GENQ_STORAGE, file:// or s3://, through
 * common/storage.h as the services do) the objects each batch let go,
 * after its commit. --now T runs the sweep as if it were T (an RFC 3339
 * date-time, or a duration after now: 31d, +2h): a clock moved forward,
 * for tests and for operators checking what a sweep would take. */
#include "config.h"
#include "ctl.h"
#include "storage.h"
#include "sweep_steps.h"
#include "when.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_CTL_BATCH "500"
#define SWEEP_CTL_MAX_CALLS 1000000 /* per step: a step that never ends is a bug */

static const char sweep_usage[] = "usage: genqctl sweep [--now T] [--json]\n";

static int sweep_usage_error(const char *msg) {
  fprintf(stderr, "genqctl sweep: %s\n%s", msg, sweep_usage);
  return CTL_USAGE;
}

/* "+"? then a duration (when.h): whole seconds into out, or -1. */
static int duration_secs(const char *s, char *out, size_t outlen) {
  return when_parse_duration(*s == '+' ? s + 1 : s, out, outlen);
}

typedef struct {
  int pending;
  long long deleted, failed;
} sweep_bytes;

static void deleted_cb(const char *err, void *arg) {
  sweep_bytes *b = arg;
  b->pending--;
  if (err) {
    b->failed++;
    fprintf(stderr, "genqctl sweep: a stored object was not deleted: %s\n", err);
  } else {
    b->deleted++;
  }
}

int ctl_sweep(int argc, char **argv, PGconn *(*connect)(void)) {
  const char *now_arg = NULL;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--now") == 0) {
      if (i + 1 >= argc || !*argv[i + 1]) return sweep_usage_error("--now needs a value");
      now_arg = argv[++i];
    } else {
      return sweep_usage_error("unexpected argument");
    }
  }
  char secs[24] = "";
  if (now_arg && duration_secs(now_arg, secs, sizeof secs) != 0 &&
      (strlen(now_arg) < 20 || strlen(now_arg) > 40 || !isdigit((unsigned char)now_arg[0])))
    return sweep_usage_error("--now is neither an RFC 3339 date-time nor a duration like 31d");

  genq_config cfg;
  char err[512];
  if (config_load(&cfg, CONFIG_CTL, err, sizeof err) < 0) {
    fprintf(stderr, "genqctl: %s\n", err);
    return CTL_FAIL;
  }
  uv_loop_t *loop = uv_default_loop();
  httpc *http = NULL;
  storage *st = NULL;
  if (httpc_new(&http, loop) != 0) {
    fprintf(stderr, "genqctl sweep: cannot set up the HTTP client\n");
    config_free(&cfg);
    return CTL_FAIL;
  }
  if (storage_open(&st, loop, http, cfg.storage, cfg.s3_access_key, cfg.s3_secret_key, err,
                   sizeof err) != 0) {
    fprintf(stderr, "genqctl sweep: GENQ_STORAGE: %s\n", err);
    httpc_close(http);
    config_free(&cfg);
    return CTL_FAIL;
  }
  config_free(&cfg);

  int rc = CTL_FAIL;
  PGconn *c = connect();
  if (!c) goto out;
  /* the sweep's time, fixed once: every step runs at the same T */
  char at[64];
  {
    const char *p[1] = {now_arg ? (*secs ? secs : now_arg) : NULL};
    PGresult *r = ctl_query(c, "sweep",
                            *secs     ? "select genq_ts(now() + make_interval(secs => $1::bigint))"
                            : now_arg ? "select genq_ts($1::timestamptz)"
                                      : "select genq_ts(now())",
                            now_arg ? 1 : 0, now_arg ? p : NULL);
    if (!r) goto out;
    snprintf(at, sizeof at, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  long long totals[GENQ_SWEEP_STEPS];
  sweep_bytes b = {0};
  int failed = 0;
  for (int s = 0; s < GENQ_SWEEP_STEPS; s++) {
    totals[s] = 0;
    for (int call = 0; call < SWEEP_CTL_MAX_CALLS; call++) {
      const char *p[2] = {at, SWEEP_CTL_BATCH};
      PGresult *r = ctl_query(c, genq_sweep_steps[s].name, genq_sweep_steps[s].sql, 2, p);
      if (!r) {
        failed = 1;
        break;
      }
      int n = PQntuples(r);
      for (int i = 0; i < n; i++) {
        totals[s] += strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (PQgetisnull(r, i, 1)) continue;
        if (storage_delete(st, PQgetvalue(r, i, 1), deleted_cb, &b) != 0) {
          b.failed++;
          fprintf(stderr, "genqctl sweep: refused storage key %s\n", PQgetvalue(r, i, 1));
          continue;
        }
        b.pending++;
      }
      PQclear(r);
      while (b.pending > 0)
        uv_run(loop, UV_RUN_ONCE);
      if (n == 0) break;
    }
  }
  if (json) {
    cJSON *o = cJSON_CreateObject(), *steps = cJSON_AddObjectToObject(o, "steps");
    cJSON_AddStringToObject(o, "now", at);
    for (int s = 0; s < GENQ_SWEEP_STEPS; s++)
      cJSON_AddNumberToObject(steps, genq_sweep_steps[s].name, (double)totals[s]);
    cJSON_AddNumberToObject(o, "storage_deleted", (double)b.deleted);
    cJSON_AddNumberToObject(o, "storage_failed", (double)b.failed);
    cJSON_AddBoolToObject(o, "ok", !failed && !b.failed);
    char *text = cJSON_PrintUnformatted(o);
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
  } else {
    printf("sweep at %s\n", at);
    for (int s = 0; s < GENQ_SWEEP_STEPS; s++)
      printf("  %-10s %lld\n", genq_sweep_steps[s].name, totals[s]);
    printf("storage: %lld object%s deleted, %lld failed\n", b.deleted, b.deleted == 1 ? "" : "s",
           b.failed);
  }
  rc = failed || b.failed ? CTL_FAIL : CTL_OK;
out:
  if (c) PQfinish(c);
  storage_close(st);
  httpc_close(http);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return rc;
}
