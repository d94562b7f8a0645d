/* genqctl jobs list: every user's jobs for operators, newest first
 * (genq_jobs_find in schema/0006_dead_letters.sql). */
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

static const char *jobs_str(const cJSON *o, const char *k) {
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
  return s ? s : "-";
}

static int jobs_int(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItem(o, k);
  return cJSON_IsNumber(v) ? v->valueint : 0;
}

static void jobs_print_table(const cJSON *rows) {
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
    snprintf(att, sizeof att, "%d/%d", jobs_int(r, "attempt"), jobs_int(r, "max_attempts"));
    printf("%-36s %-10s %-10s %-24s %-7s %-24s %s%s\n", jobs_str(r, "id"), jobs_str(r, "kind"),
           jobs_str(r, "status"), jobs_str(r, "user"), att, jobs_str(r, "created_at"),
           jobs_str(r, "error_code"),
           cJSON_IsString(cJSON_GetObjectItem(r, "dead_at")) ? " (dead)" : "");
  }
  printf("%d job%s\n", n, n == 1 ? "" : "s");
}

int ctl_jobs_list(PGconn *c, const ctl_filter *f, int json) {
  char lim[24];
  snprintf(lim, sizeof lim, "%ld", f->limit ? f->limit : 50);
  const char *p[4] = {f->status, f->kind, f->user, lim};
  PGresult *r = ctl_query(c, "jobs list", jobs_list_sql, 4, p);
  if (!r) return CTL_FAIL;
  int rc = CTL_OK;
  if (json) {
    printf("%s\n", PQgetvalue(r, 0, 0));
  } else {
    cJSON *rows = cJSON_Parse(PQgetvalue(r, 0, 0));
    if (!rows) {
      fprintf(stderr, "genqctl jobs list: unreadable answer from the database\n");
      rc = CTL_FAIL;
    } else {
      jobs_print_table(rows);
    }
    cJSON_Delete(rows);
  }
  PQclear(r);
  return rc;
}
