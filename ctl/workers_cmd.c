/* workers_cmd.c — genqctl workers: the fleet's registry in Redis
 * (common/registry.h, docs/fleet.md).
 *
 *   workers list [--json]        the live workers: id, host, pid, version,
 *                                kinds, concurrency, in flight, state,
 *                                started, last beat's age
 *   workers quiet ID [--json]    ID takes no new job and finishes the ones
 *                                it holds (as SIGUSR1 does)
 *   workers stop ID [--json]     ID stops taking jobs, finishes or hands
 *                                back what it holds within its grace and
 *                                exits 0 (as SIGTERM does)
 *
 * quiet and stop reach the worker on whatever host it runs, through Redis:
 * the command is published to it and left for its next beat. Then genqctl
 * waits up to CONFIRM_MS for the worker's record to show it (quiet;
 * stopping, or gone) and exits 1 if it does not: the command still waits
 * for the worker's next beat for a minute. An ID no live worker has is
 * exit 1, and nothing is sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "registry.h"

#define CONFIRM_MS 10000
#define CONFIRM_POLL_MS 200

static int usage(const char *fmt, const char *arg) {
  fprintf(stderr, "genqctl workers: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(genqctl --help lists the commands)\n");
  return CTL_USAGE;
}

void ctl_fmt_age(char *buf, size_t len, double ms) {
  if (ms < 0) ms = 0;
  double s = ms / 1000;
  long long whole = (long long)s;
  if (ms < 1000)
    snprintf(buf, len, "%.0fms", ms);
  else if (s < 60)
    snprintf(buf, len, "%.1fs", s);
  else if (s < 3600)
    snprintf(buf, len, "%lldm%02llds", whole / 60, whole % 60);
  else if (s < 86400)
    snprintf(buf, len, "%lldh%02lldm", whole / 3600, whole / 60 % 60);
  else
    snprintf(buf, len, "%lldd%02lldh", whole / 86400, whole / 3600 % 24);
}

/* ---- reading the registry ---- */

/* Heap-held: an answer that comes after the deadline (or the close's
 * failure) frees it. */
typedef struct {
  int done, abandoned;
  cJSON *list;
  int found;
  char err[256];
} wait_state;

static int finish_wait(ctl_redis *c, wait_state *st) {
  if (ctl_redis_wait(c, &st->done, CTL_REDIS_TIMEOUT_MS) != 0) {
    st->abandoned = 1;
    return -1;
  }
  return 0;
}

static void listed(const cJSON *workers, long long now_ms, const char *err, void *arg) {
  (void)now_ms;
  wait_state *st = arg;
  if (st->abandoned) {
    free(st);
    return;
  }
  st->done = 1;
  if (err)
    snprintf(st->err, sizeof st->err, "%s", err);
  else if (!(st->list = cJSON_Duplicate(workers, 1)))
    snprintf(st->err, sizeof st->err, "out of memory");
}

cJSON *ctl_workers_read(ctl_redis *c, char *err, size_t errlen) {
  wait_state *st = calloc(1, sizeof *st);
  if (!st) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (registry_list(ctl_redis_rds(c), listed, st) != 0) {
    free(st);
    snprintf(err, errlen, "Redis is not connected");
    return NULL;
  }
  if (finish_wait(c, st) != 0) {
    snprintf(err, errlen, "Redis did not answer within %d ms", CTL_REDIS_TIMEOUT_MS);
    return NULL;
  }
  cJSON *list = st->list;
  if (!list) snprintf(err, errlen, "%s", st->err);
  free(st);
  return list;
}

/* ---- the table ---- */

static void kinds_text(const cJSON *w, char *buf, size_t len) {
  size_t o = 0;
  buf[0] = '\0';
  const cJSON *k;
  cJSON_ArrayForEach(k, cJSON_GetObjectItem(w, "kinds")) {
    const char *s = cJSON_GetStringValue(k);
    if (s && o < len) o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "," : "", s);
  }
  if (!buf[0]) snprintf(buf, len, "-");
}

static int width(const cJSON *workers, const char *key, int min, int max) {
  int w = min;
  const cJSON *r;
  cJSON_ArrayForEach(r, workers) {
    int n = (int)strlen(ctl_str(r, key));
    if (n > w) w = n;
  }
  return w < max ? w : max;
}

void ctl_workers_print(const cJSON *workers, int running) {
  int n = cJSON_GetArraySize(workers);
  if (n == 0) {
    printf("no live worker\n");
    return;
  }
  int wid = width(workers, "id", 2, 64), whost = width(workers, "host", 4, 32),
      wver = width(workers, "version", 7, 32);
  printf("%-*s %-*s %7s %-*s %-39s %5s %9s", wid, "ID", whost, "HOST", "PID", wver, "VERSION",
         "KINDS", "CONC", "IN_FLIGHT");
  if (running) printf(" %7s", "RUNNING");
  printf(" %-8s %-20s %9s\n", "STATE", "STARTED", "LAST_BEAT");
  const cJSON *r;
  cJSON_ArrayForEach(r, workers) {
    char kinds[128], age[32];
    kinds_text(r, kinds, sizeof kinds);
    ctl_fmt_age(age, sizeof age, ctl_num(r, "last_beat_age_ms"));
    printf("%-*s %-*s %7.0f %-*s %-39s %5.0f %9.0f", wid, ctl_str(r, "id"), whost,
           ctl_str(r, "host"), ctl_num(r, "pid"), wver, ctl_str(r, "version"), kinds,
           ctl_num(r, "concurrency"), ctl_num(r, "in_flight"));
    if (running) printf(" %7.0f", ctl_num(r, "running_jobs"));
    printf(" %-8s %-20s %9s\n", ctl_str(r, "state"), ctl_str(r, "started_at"), age);
  }
}

/* ---- quiet, stop ---- */

static void sent(int found, const char *err, void *arg) {
  wait_state *st = arg;
  if (st->abandoned) {
    free(st);
    return;
  }
  st->done = 1;
  st->found = found;
  if (err) snprintf(st->err, sizeof st->err, "%s", err);
}

/* The worker's record now: 1 with *rec set (the caller frees it), 0 when
 * it has none (gone), -1 when Redis did not answer. */
static int read_record(ctl_redis *c, const char *id, cJSON **rec) {
  char key[sizeof(REGISTRY_RECORD_PREFIX) + REGISTRY_ID_MAX];
  snprintf(key, sizeof key, "%s%s", REGISTRY_RECORD_PREFIX, id);
  const char *argv[] = {"GET", key};
  cJSON *v = ctl_redis_call(c, 2, argv);
  if (!v) return -1;
  *rec = cJSON_IsString(v) ? cJSON_Parse(v->valuestring) : NULL;
  int rc = cJSON_IsString(v) ? 1 : cJSON_IsNull(v) ? 0 : -1;
  cJSON_Delete(v);
  return rc == 1 && !*rec ? -1 : rc;
}

static int command(ctl_redis *c, const char *sub, const char *id, registry_cmd cmd, int json) {
  wait_state *st = calloc(1, sizeof *st);
  if (!st) return CTL_FAIL;
  if (registry_send(ctl_redis_rds(c), id, cmd, sent, st) != 0) {
    free(st);
    fprintf(stderr, "genqctl workers %s: Redis is not connected\n", sub);
    return CTL_FAIL;
  }
  if (finish_wait(c, st) != 0) {
    fprintf(stderr, "genqctl workers %s: Redis did not answer\n", sub);
    return CTL_FAIL;
  }
  int found = st->found;
  if (st->err[0]) {
    fprintf(stderr, "genqctl workers %s: Redis: %s\n", sub, st->err);
    free(st);
    return CTL_FAIL;
  }
  free(st);
  if (!found) {
    fprintf(stderr, "genqctl workers %s: no live worker '%s' (genqctl workers list shows them)\n",
            sub, id);
    return CTL_FAIL;
  }
  /* wait for the worker's record to show it */
  const char *want = cmd == REGISTRY_CMD_QUIET ? "quiet" : "stopping";
  char state[16] = "";
  double in_flight = 0;
  for (int waited = 0;; waited += CONFIRM_POLL_MS) {
    cJSON *rec = NULL;
    int rc = read_record(c, id, &rec);
    if (rc < 0) {
      fprintf(stderr, "genqctl workers %s: Redis did not answer\n", sub);
      return CTL_FAIL;
    }
    if (rc == 0) {
      snprintf(state, sizeof state, "gone");
      break;
    }
    snprintf(state, sizeof state, "%s", ctl_str(rec, "state"));
    in_flight = ctl_num(rec, "in_flight");
    cJSON_Delete(rec);
    /* a stopping worker is past quiet too */
    if (strcmp(state, want) == 0 || strcmp(state, "stopping") == 0) break;
    if (waited >= CONFIRM_MS) {
      fprintf(stderr,
              "genqctl workers %s: worker '%s' is still %s after %d s; the command waits for "
              "its next beat\n",
              sub, id, state, CONFIRM_MS / 1000);
      return CTL_FAIL;
    }
    struct timespec ts = {0, CONFIRM_POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
  int gone = strcmp(state, "gone") == 0;
  if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "command", registry_cmd_name(cmd));
    cJSON_AddStringToObject(o, "state", state);
    if (!gone) cJSON_AddNumberToObject(o, "in_flight", in_flight);
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s ? s : "{}");
    cJSON_free(s);
    cJSON_Delete(o);
  } else if (gone) {
    printf("worker %s: stopped (it left the registry)\n", id);
  } else if (strcmp(state, "quiet") == 0) {
    printf("worker %s: quiet, %.0f in flight: it takes no new job and finishes the ones it holds\n",
           id, in_flight);
  } else {
    printf("worker %s: stopping, %.0f in flight: it exits once they are finished or handed back\n",
           id, in_flight);
  }
  return CTL_OK;
}

int ctl_workers(int argc, char **argv) {
  if (argc < 1) return usage("%s", "needs a subcommand (list, quiet or stop)");
  const char *sub = argv[0], *id = NULL;
  int json = 0;
  registry_cmd cmd = REGISTRY_CMD_NONE;
  if (strcmp(sub, "quiet") == 0)
    cmd = REGISTRY_CMD_QUIET;
  else if (strcmp(sub, "stop") == 0)
    cmd = REGISTRY_CMD_STOP;
  else if (strcmp(sub, "list") != 0)
    return usage("unknown subcommand '%s'", sub);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (argv[i][0] == '-' && argv[i][1])
      return usage("unknown option '%s'", argv[i]);
    else if (cmd == REGISTRY_CMD_NONE || id)
      return usage("unexpected argument '%s'", argv[i]);
    else
      id = argv[i];
  }
  if (cmd != REGISTRY_CMD_NONE && !id) return usage("%s needs a worker id", sub);
  if (id && !registry_id_ok(id))
    return usage("'%s' is not a worker id (genqctl workers list shows them)", id);

  char err[512];
  ctl_redis *c = ctl_redis_connect(err, sizeof err);
  if (!c) {
    fprintf(stderr, "genqctl workers %s: %s\n", sub, err);
    return CTL_FAIL;
  }
  int rc = CTL_FAIL;
  if (cmd != REGISTRY_CMD_NONE) {
    rc = command(c, sub, id, cmd, json);
  } else {
    cJSON *list = ctl_workers_read(c, err, sizeof err);
    if (!list) {
      fprintf(stderr, "genqctl workers list: %s\n", err);
    } else {
      if (json) {
        char *s = cJSON_PrintUnformatted(list);
        printf("%s\n", s ? s : "[]");
        cJSON_free(s);
      } else {
        ctl_workers_print(list, 0);
      }
      cJSON_Delete(list);
      rc = CTL_OK;
    }
  }
  ctl_redis_close(c);
  return rc;
}
