/* genqctl jobs list: every user's jobs for operators, newest first
 * (genq_jobs_find in schema/functions/jobs.sql). */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <string.h>

static const char jobs_list_sql[] =
    "SELECT coalesce(jsonb_agg(jsonb_build_object("
    "  'id', f.id, 'user', f.user_id, 'kind', f.kind, 'status', f.status,"
    "  'attempt', f.attempt, 'max_attempts', f.max_attempts,"
    "  'created_at', genq_ts(f.created_at), 'finished_at', genq_ts(f.finished_at),"
    "  'error_code', f.error_code, 'dead_at', genq_ts(f.dead_at))"
    "  ORDER BY f.id DESC), '[]')"
    " FROM genq_jobs_find($1, $2, $3, $4::int) f";

static void jobs_print_table(const cJSON *rows, long unused) {
  (void)unused;
  int n = cJSON_GetArraySize(rows);
  if (n == 0) {
    printf("no jobs\n");
    return;
  }
  printf("%-36s %-10s %-10s %-24s %-7s %-24s %s\n", "id", "kind", "status", "user", "attempt",
         "created_at", "error");
  const cJSON *r;
  cJSON_ArrayForEach(r, rows) {
    char att[24];
    snprintf(att, sizeof att, "%d/%d", (int)ctl_num(r, "attempt"), (int)ctl_num(r, "max_attempts"));
    printf("%-36s %-10s %-10s %-24s %-7s %-24s %s%s\n", ctl_str(r, "id"), ctl_str(r, "kind"),
           ctl_str(r, "status"), ctl_str(r, "user"), att, ctl_str(r, "created_at"),
           ctl_str(r, "error_code"),
           cJSON_IsString(cJSON_GetObjectItem(r, "dead_at")) ? " (dead)" : "");
  }
  printf("%d job%s\n", n, n == 1 ? "" : "s");
}

int ctl_jobs_list(PGconn *c, const ctl_filter *f, int json) {
  char lim[24];
  snprintf(lim, sizeof lim, "%ld", f->limit ? f->limit : 50);
  const char *p[4] = {f->status, f->kind, f->user, lim};
  return ctl_list(c, "jobs list", jobs_list_sql, 4, p, json, jobs_print_table, 0);
}

int ctl_jobs_cancel(PGconn *c, const char *id, int json) {
  if (!genq_is_uuid(id)) {
    fprintf(stderr, "genqctl jobs cancel: '%s' is not a job id (a UUID)\n", id);
    return CTL_USAGE;
  }
  const char *p[2] = {ctl_actor(), id};
  /* as its user would: genq_job_cancel prices what had started; recorded
   * in admin_actions when it canceled (genq_admin_job_cancel) */
  PGresult *r =
      ctl_query(c, "jobs cancel", "SELECT genq_admin_job_cancel($1::jsonb, NULL, $2::uuid)", 2, p);
  if (!r) return CTL_FAIL;
  cJSON *o = PQgetisnull(r, 0, 0) ? NULL : cJSON_Parse(PQgetvalue(r, 0, 0));
  PQclear(r);
  char *job = o ? cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(o, "job")) : NULL;
  if (!job) {
    cJSON_Delete(o);
    fprintf(stderr, "genqctl jobs cancel: no job %s\n", id);
    return CTL_FAIL;
  }
  int canceled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "canceled"));
  if (canceled) {
    ctl_announce_canceled(id);
    ctl_announce_action(cJSON_GetObjectItemCaseSensitive(o, "action"));
  }
  if (json) {
    printf("%s\n", job);
  } else {
    if (!canceled) printf("already ended: nothing to cancel\n");
    ctl_print_job(job);
  }
  cJSON_free(job);
  cJSON_Delete(o);
  return CTL_OK;
}
