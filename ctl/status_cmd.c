/* status_cmd.c — genqctl status [--json] (SPEC §8, docs/fleet.md): the
 * fleet at a glance.
 *
 *   kinds      per job kind, from PostgreSQL (genq_fleet_status, fleet.sql):
 *              queued (ready now, waiting for a retry), the oldest ready
 *              job's age, running, dead; and how many live workers take the kind
 *              now (running: not quiet, not stopping)
 *   workers    the live workers from the registry in Redis (registry.h),
 *              each with the jobs PostgreSQL says run there
 *   unlisted_workers  workers PostgreSQL still has running jobs on but the
 *              registry no longer lists (they died: the jobs are reclaimed
 *              once their leases lapse)
 *   providers  windows, slots and breakers (status_providers.c)
 *
 * PostgreSQL is needed; when Redis cannot be reached the rest is still
 * printed, with "redis_error", and the exit status is 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static int usage(const char *fmt, const char *arg) {
  fprintf(stderr, "genqctl status: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(genqctl --help lists the commands)\n");
  return CTL_USAGE;
}

/* 1 when the worker record w takes kind. */
static int takes(const cJSON *w, const char *kind) {
  const cJSON *k;
  cJSON_ArrayForEach(k, cJSON_GetObjectItem(w, "kinds")) {
    const char *s = cJSON_GetStringValue(k);
    if (s && strcmp(s, kind) == 0) return 1;
  }
  return 0;
}

/* Joins PostgreSQL's view (st) and the registry's (workers, owned by st
 * afterwards): running jobs per live worker, live workers per kind, and the
 * workers with running jobs that the registry does not list. */
static void join(cJSON *st, cJSON *workers) {
  const cJSON *by_worker = cJSON_GetObjectItem(st, "running_by_worker");
  cJSON *unlisted = cJSON_CreateArray();
  const cJSON *r;
  cJSON_ArrayForEach(r, by_worker) {
    const char *id = ctl_str(r, "worker_id");
    cJSON *w, *found = NULL;
    cJSON_ArrayForEach(w, workers) if (strcmp(ctl_str(w, "id"), id) == 0) found = w;
    if (found)
      cJSON_AddNumberToObject(found, "running_jobs", ctl_num(r, "running"));
    else if (unlisted)
      cJSON_AddItemToArray(unlisted, cJSON_Duplicate(r, 1));
  }
  cJSON *w;
  cJSON_ArrayForEach(w, workers) if (!cJSON_GetObjectItem(w, "running_jobs"))
      cJSON_AddNumberToObject(w, "running_jobs", 0);
  cJSON *k;
  cJSON_ArrayForEach(k, cJSON_GetObjectItem(st, "kinds")) {
    int n = 0;
    cJSON_ArrayForEach(w, workers) n +=
        strcmp(ctl_str(w, "state"), "running") == 0 && takes(w, ctl_str(k, "kind"));
    cJSON_AddNumberToObject(k, "workers", n);
  }
  cJSON_DeleteItemFromObject(st, "running_by_worker");
  cJSON_AddItemToObject(st, "workers", workers);
  if (unlisted) cJSON_AddItemToObject(st, "unlisted_workers", unlisted);
}

static void print_status(const cJSON *st) {
  const cJSON *workers = cJSON_GetObjectItem(st, "workers");
  int redis_ok = cJSON_IsArray(workers);
  printf("queues at %s\n", ctl_str(st, "at"));
  printf("%-12s %8s %8s %9s %10s %8s %8s %8s\n", "KIND", "QUEUED", "READY", "RETRYING", "OLDEST",
         "RUNNING", "DEAD", "WORKERS");
  const cJSON *k;
  cJSON_ArrayForEach(k, cJSON_GetObjectItem(st, "kinds")) {
    char age[32] = "-", nw[16] = "?";
    const cJSON *a = cJSON_GetObjectItem(k, "oldest_age_s");
    if (cJSON_IsNumber(a)) ctl_fmt_age(age, sizeof age, a->valuedouble * 1000);
    if (redis_ok) snprintf(nw, sizeof nw, "%.0f", ctl_num(k, "workers"));
    printf("%-12s %8.0f %8.0f %9.0f %10s %8.0f %8.0f %8s%s\n", ctl_str(k, "kind"),
           ctl_num(k, "queued"), ctl_num(k, "ready"), ctl_num(k, "retry_waiting"), age,
           ctl_num(k, "running"), ctl_num(k, "dead"), nw,
           redis_ok && ctl_num(k, "queued") > 0 && ctl_num(k, "workers") == 0
               ? "  (no running worker takes it)"
               : "");
  }
  printf("%-12s %8.0f %8.0f %9.0f %10s %8.0f %8.0f\n\n", "all", ctl_num(st, "queued"),
         ctl_num(st, "ready"), ctl_num(st, "retry_waiting"), "", ctl_num(st, "running"),
         ctl_num(st, "dead"));
  if (redis_ok) {
    printf("workers (%d live)\n", cJSON_GetArraySize(workers));
    ctl_workers_print(workers, 1);
  } else {
    printf("workers: unknown (%s)\n", ctl_str(st, "redis_error"));
  }
  const cJSON *u, *unlisted = cJSON_GetObjectItem(st, "unlisted_workers");
  if (cJSON_GetArraySize(unlisted) > 0) {
    printf("running jobs on workers the registry no longer lists (reclaimed once their leases "
           "lapse):\n");
    cJSON_ArrayForEach(u, unlisted) {
      printf("  %s: %.0f running, leases until %s\n", ctl_str(u, "worker_id"),
             ctl_num(u, "running"), ctl_str(u, "lease_until"));
    }
  }
  printf("\n");
  ctl_status_print_providers(cJSON_GetObjectItem(st, "providers"));
}

int ctl_status(int argc, char **argv, PGconn *(*connect)(void)) {
  int json = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (argv[i][0] == '-')
      return usage("unknown option '%s'", argv[i]);
    else
      return usage("unexpected argument '%s'", argv[i]);
  }
  PGconn *pg = connect();
  if (!pg) return CTL_FAIL;
  PGresult *r = ctl_query(pg, "status", "select genq_fleet_status()", 0, NULL);
  cJSON *st = r ? cJSON_Parse(PQgetvalue(r, 0, 0)) : NULL;
  if (r && !st) fprintf(stderr, "genqctl status: unreadable answer from the database\n");
  PQclear(r);
  PQfinish(pg);
  if (!st) return CTL_FAIL;

  int rc = CTL_OK;
  char err[512];
  ctl_redis *c = ctl_redis_connect(err, sizeof err);
  cJSON *workers = c ? ctl_workers_read(c, err, sizeof err) : NULL;
  if (workers) {
    join(st, workers);
  } else {
    fprintf(stderr, "genqctl status: workers: %s\n", err);
    cJSON_AddStringToObject(st, "redis_error", err);
    cJSON_AddNullToObject(st, "workers");
    rc = CTL_FAIL;
  }
  if (ctl_status_providers(workers ? c : NULL, st) != 0) rc = CTL_FAIL;
  ctl_redis_close(c);

  if (json) {
    char *s = cJSON_PrintUnformatted(st);
    printf("%s\n", s ? s : "{}");
    cJSON_free(s);
  } else {
    print_status(st);
  }
  cJSON_Delete(st);
  return rc;
}
