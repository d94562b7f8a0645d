/* genqctl credits / jobs show / audit: thin wrappers over the schema's
 * functions (schema/functions/), which hold all logic; and the query and
 * printing helpers every command shares. */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <string.h>

PGresult *ctl_query(PGconn *c, const char *what, const char *sql, int n,
                    const char *const *params) {
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    fprintf(stderr, "genqctl %s: %.*s\n", what, (int)strcspn(m, "\n"), m);
    PQclear(r);
    return NULL;
  }
  return r;
}

static int report_credits(PGresult *r, const char *user, int json) {
  const char *v = PQgetvalue(r, 0, 0);
  if (json) {
    printf("%s\n", v);
    return CTL_OK;
  }
  cJSON *o = cJSON_Parse(v);
  printf("%-24s %12s %12s %12s\n", "user", "balance", "held", "available");
  printf("%-24s %12.0f %12.0f %12.0f\n", user,
         cJSON_GetNumberValue(cJSON_GetObjectItem(o, "balance")),
         cJSON_GetNumberValue(cJSON_GetObjectItem(o, "held")),
         cJSON_GetNumberValue(cJSON_GetObjectItem(o, "available")));
  cJSON_Delete(o);
  return CTL_OK;
}

int ctl_credits_grant(PGconn *c, const char *user, long long amount, const char *key,
                      const char *note, int json) {
  char amt[32];
  snprintf(amt, sizeof amt, "%lld", amount);
  /* recorded in admin_actions (genq_admin_credits_grant): the same key
   * again for the same user and amount changes nothing; for another, it is
   * refused */
  const char *p[5] = {ctl_actor(), user, amt, note, key};
  PGresult *r = ctl_query(c, "credits grant",
                          "SELECT g -> 'credits', g -> 'action' FROM genq_admin_credits_grant("
                          "$1::jsonb, NULL, $2, $3::bigint, $4, $5) AS g",
                          5, p);
  if (!r) return CTL_FAIL;
  cJSON *action = cJSON_Parse(PQgetvalue(r, 0, 1));
  ctl_announce_action(action);
  cJSON_Delete(action);
  int rc = report_credits(r, user, json);
  PQclear(r);
  return rc;
}

int ctl_credits_show(PGconn *c, const char *user, int json) {
  const char *p[1] = {user};
  PGresult *r = ctl_query(c, "credits show", "SELECT genq_credits($1)", 1, p);
  if (!r) return CTL_FAIL;
  int rc = report_credits(r, user, json);
  PQclear(r);
  return rc;
}

const char *ctl_str(const cJSON *o, const char *k) {
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
  return s ? s : "-";
}

double ctl_num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItem(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int ctl_list(PGconn *c, const char *what, const char *sql, int n, const char *const *params,
             int json, void (*print)(const cJSON *rows, long arg), long arg) {
  PGresult *r = ctl_query(c, what, sql, n, params);
  if (!r) return CTL_FAIL;
  int rc = CTL_OK;
  if (json) {
    printf("%s\n", PQgetvalue(r, 0, 0));
  } else {
    cJSON *rows = cJSON_Parse(PQgetvalue(r, 0, 0));
    if (!rows) {
      fprintf(stderr, "genqctl %s: unreadable answer from the database\n", what);
      rc = CTL_FAIL;
    } else {
      print(rows, arg);
    }
    cJSON_Delete(rows);
  }
  PQclear(r);
  return rc;
}

static void report_job_human(const cJSON *j) {
  printf("job        %s\n", ctl_str(j, "id"));
  printf("kind       %s\n", ctl_str(j, "kind"));
  printf("status     %s", ctl_str(j, "status"));
  if (cJSON_IsNumber(cJSON_GetObjectItem(j, "queue_position")))
    printf(" (queue position %.0f)", ctl_num(j, "queue_position"));
  if (cJSON_IsString(cJSON_GetObjectItem(j, "next_attempt_at")))
    printf(" (next attempt %s)", ctl_str(j, "next_attempt_at"));
  printf("\nattempt    %.0f of %.0f\n", ctl_num(j, "attempt"), ctl_num(j, "max_attempts"));
  printf("created    %s\nstarted    %s\nfinished   %s\n", ctl_str(j, "created_at"),
         ctl_str(j, "started_at"), ctl_str(j, "finished_at"));
  if (cJSON_IsString(cJSON_GetObjectItem(j, "dead_at")))
    printf("dead       %s (in the dead-letter set: genqctl jobs retry %s)\n", ctl_str(j, "dead_at"),
           ctl_str(j, "id"));
  const cJSON *cost = cJSON_GetObjectItem(j, "cost");
  printf("cost       price %.0f, held %.0f, captured %.0f, released %.0f\n", ctl_num(cost, "price"),
         ctl_num(cost, "held"), ctl_num(cost, "captured"), ctl_num(cost, "released"));
  printf("steps\n  %-12s %-8s %-10s %-7s %s\n", "name", "provider", "status", "attempt",
         "provider_ref");
  const cJSON *s;
  cJSON_ArrayForEach(s, cJSON_GetObjectItem(j, "steps")) {
    printf("  %-12s %-8s %-10s %-7.0f %s\n", ctl_str(s, "name"), ctl_str(s, "provider"),
           ctl_str(s, "status"), ctl_num(s, "attempt"), ctl_str(s, "provider_ref"));
    const cJSON *e = cJSON_GetObjectItem(s, "error");
    if (cJSON_IsObject(e)) printf("    error: %s: %s\n", ctl_str(e, "code"), ctl_str(e, "message"));
  }
  const cJSON *e = cJSON_GetObjectItem(j, "error");
  if (cJSON_IsObject(e))
    printf("error      %s: %s%s\n", ctl_str(e, "code"), ctl_str(e, "message"),
           cJSON_IsTrue(cJSON_GetObjectItem(e, "retryable")) ? " (retryable)" : "");
}

void ctl_print_job(const char *job_json) {
  cJSON *j = cJSON_Parse(job_json);
  if (!cJSON_IsObject(j)) {
    printf("%s\n", job_json); /* not expected from genq_job_json: show it as it is */
  } else {
    report_job_human(j);
  }
  cJSON_Delete(j);
}

int ctl_jobs_show(PGconn *c, const char *id, int json) {
  if (!genq_is_uuid(id)) {
    fprintf(stderr, "genqctl jobs show: '%s' is not a job id (a UUID)\n", id);
    return CTL_USAGE;
  }
  const char *p[1] = {id};
  PGresult *r = ctl_query(c, "jobs show", "SELECT genq_job_json($1::uuid)", 1, p);
  if (!r) return CTL_FAIL;
  int rc = CTL_OK;
  if (PQgetisnull(r, 0, 0)) {
    fprintf(stderr, "genqctl jobs show: no job %s\n", id);
    rc = CTL_FAIL;
  } else if (json) {
    printf("%s\n", PQgetvalue(r, 0, 0));
  } else {
    ctl_print_job(PQgetvalue(r, 0, 0));
  }
  PQclear(r);
  return rc;
}

int ctl_audit(PGconn *c, int json) {
  PGresult *r =
      ctl_query(c, "audit", "SELECT check_name, subject, detail FROM genq_audit()", 0, NULL);
  if (!r) return CTL_FAIL;
  int n = PQntuples(r);
  if (json) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "check", PQgetvalue(r, i, 0));
      cJSON_AddStringToObject(o, "subject", PQgetvalue(r, i, 1));
      cJSON_AddStringToObject(o, "detail", PQgetvalue(r, i, 2));
      cJSON_AddItemToArray(a, o);
    }
    char *s = cJSON_PrintUnformatted(a);
    printf("{\"ok\":%s,\"violations\":%s}\n", n ? "false" : "true", s ? s : "[]");
    cJSON_free(s);
    cJSON_Delete(a);
  } else if (n == 0) {
    printf("audit: clean\n");
  } else {
    printf("%-24s %-38s %s\n", "check", "subject", "detail");
    for (int i = 0; i < n; i++)
      printf("%-24s %-38s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
    printf("audit: %d violation%s\n", n, n == 1 ? "" : "s");
  }
  PQclear(r);
  return n ? CTL_FAIL : CTL_OK;
}
