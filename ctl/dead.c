/* genqctl dead list|retry, jobs retry: the dead-letter set (SPEC §5, §8).
 * The set and the retry live in schema/functions/dead_letters.sql (genq_dead_list,
 * genq_job_retry); these print them. A retry needs no Redis: the job is left
 * undispatched and the relay of any genq-api or genq-worker sends it. With
 * GENQ_REDIS_URL set, its change notice goes out too (announce.c), so polls
 * and event streams show it at once. Every retry is recorded in
 * admin_actions (genq_admin_job_retry, admin.sql), its actor genqctl and
 * the operating system user. */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* --since, evaluated by the database's clock (so a skewed operator machine
 * cannot shift it): an instant, or a duration before now, or NULL. */
#define DEAD_SINCE "coalesce($2::timestamptz, now() - make_interval(secs => $3::double precision))"

static const char dead_list_sql[] =
    "SELECT coalesce(jsonb_agg(jsonb_build_object("
    "  'id', d.id, 'user', d.user_id, 'kind', d.kind, 'attempt', d.attempt,"
    "  'max_attempts', d.max_attempts, 'reclaims', d.reclaims, 'retries', d.retries,"
    "  'dead_at', genq_ts(d.dead_at),"
    "  'error', jsonb_build_object('code', d.error_code, 'message', d.error_message))"
    "  ORDER BY d.dead_at DESC, d.id DESC), '[]')"
    " FROM genq_dead_list($1, " DEAD_SINCE ", $4::int) d";

/* Oldest first: when credits run short, what died first is retried first. */
static const char dead_ids_sql[] = "SELECT d.id, d.user_id FROM genq_dead_list($1, " DEAD_SINCE
                                   ", NULL) d ORDER BY d.dead_at, d.id";

static void dead_print_table(const cJSON *rows, long limit) {
  int n = cJSON_GetArraySize(rows);
  if (n == 0) {
    printf("no dead jobs\n");
    return;
  }
  printf("%-36s %-10s %-24s %-7s %-8s %-24s %s\n", "id", "kind", "user", "attempt", "reclaims",
         "dead_at", "error");
  const cJSON *r;
  cJSON_ArrayForEach(r, rows) {
    char att[24];
    snprintf(att, sizeof att, "%d/%d", (int)ctl_num(r, "attempt"), (int)ctl_num(r, "max_attempts"));
    const cJSON *e = cJSON_GetObjectItem(r, "error");
    printf("%-36s %-10s %-24s %-7s %-8d %-24s %s: %s\n", ctl_str(r, "id"), ctl_str(r, "kind"),
           ctl_str(r, "user"), att, (int)ctl_num(r, "reclaims"), ctl_str(r, "dead_at"),
           ctl_str(e, "code"), ctl_str(e, "message"));
  }
  printf("%d dead job%s%s\n", n, n == 1 ? "" : "s",
         n == limit ? " (the limit: --limit N shows more)" : "");
}

int ctl_dead_list(PGconn *c, const ctl_filter *f, int json) {
  long limit = f->limit ? f->limit : 100;
  char lim[24];
  snprintf(lim, sizeof lim, "%ld", limit);
  const char *p[4] = {f->kind, f->since_at, f->since_secs, lim};
  return ctl_list(c, "dead list", dead_list_sql, 4, p, json, dead_print_table, limit);
}

/* One retry in its own transaction, recorded in admin_actions with
 * genqctl as its actor (genq_admin_job_retry, admin.sql). Returns the
 * job JSON (malloc'd) or NULL, with the refusal's code and first message
 * line in code/msg: admin.sql names them (not_found, not_failed,
 * insufficient_credits, inputs_gone, invalid_argument); "error" for a
 * failure of the database. */
static char *dead_retry_one(PGconn *c, const char *id, const char *max_attempts, const char **code,
                            char *msg, size_t msglen) {
  static char refusal[32];
  const char *p[3] = {ctl_actor(), id, max_attempts};
  *code = "error";
  PGresult *r = PQexecParams(c, "SELECT genq_admin_job_retry($1::jsonb, NULL, $2::uuid, $3::int)",
                             3, NULL, p, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!m) m = PQerrorMessage(c);
    snprintf(msg, msglen, "%.*s", (int)strcspn(m, "\n"), m);
    PQclear(r);
    return NULL;
  }
  cJSON *o = cJSON_Parse(PQgetvalue(r, 0, 0));
  PQclear(r);
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
  char *job = NULL;
  if (err) {
    snprintf(refusal, sizeof refusal, "%s", ctl_str(err, "code"));
    *code = refusal;
    snprintf(msg, msglen, "%s", ctl_str(err, "message"));
  } else if (!(job = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(o, "job")))) {
    snprintf(msg, msglen, "unreadable answer from the database");
  } else {
    ctl_announce_action(cJSON_GetObjectItemCaseSensitive(o, "action"));
  }
  cJSON_Delete(o);
  return job;
}

int ctl_jobs_retry(PGconn *c, const char *id, const ctl_filter *f, int json) {
  if (!genq_is_uuid(id)) {
    fprintf(stderr, "genqctl jobs retry: '%s' is not a job id (a UUID)\n", id);
    return CTL_USAGE;
  }
  const char *code = "error";
  char msg[512] = "";
  char *r = dead_retry_one(c, id, f->max_attempts, &code, msg, sizeof msg);
  if (!r) {
    if (json) {
      cJSON *o = cJSON_CreateObject();
      cJSON *e = cJSON_AddObjectToObject(o, "error");
      cJSON_AddStringToObject(e, "code", code);
      cJSON_AddStringToObject(e, "message", msg);
      char *s = cJSON_PrintUnformatted(o);
      if (s) printf("%s\n", s);
      cJSON_free(s);
      cJSON_Delete(o);
    }
    fprintf(stderr, "genqctl jobs retry: %s (%s)\n", msg, code);
    return CTL_FAIL;
  }
  ctl_announce(&id, 1);
  if (json) {
    printf("%s\n", r);
  } else {
    printf("retried: queued again, the relay dispatches it within seconds\n");
    ctl_print_job(r);
  }
  cJSON_free(r);
  return CTL_OK;
}

int ctl_dead_retry(PGconn *c, const ctl_filter *f, int json) {
  const char *p[3] = {f->kind, f->since_at, f->since_secs};
  PGresult *ids = ctl_query(c, "dead retry", dead_ids_sql, 3, p);
  if (!ids) return CTL_FAIL;
  int n = PQntuples(ids), ok = 0;
  cJSON *out = cJSON_CreateObject(), *done = cJSON_CreateArray(), *refused = cJSON_CreateArray();
  if (!out || !done || !refused) {
    cJSON_Delete(out);
    cJSON_Delete(done);
    cJSON_Delete(refused);
    PQclear(ids);
    fprintf(stderr, "genqctl dead retry: out of memory\n");
    return CTL_FAIL;
  }
  for (int i = 0; i < n; i++) {
    const char *id = PQgetvalue(ids, i, 0), *code = "error";
    char msg[512] = "";
    char *r = dead_retry_one(c, id, f->max_attempts, &code, msg, sizeof msg);
    if (r) {
      ok++;
      cJSON_AddItemToArray(done, cJSON_CreateString(id));
      cJSON_free(r);
      continue;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "user", PQgetvalue(ids, i, 1));
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddItemToArray(refused, o);
  }
  const char **retried = calloc((size_t)ok + 1, sizeof(*retried));
  int k = 0;
  const cJSON *d;
  cJSON_ArrayForEach(d, done) {
    if (retried) retried[k++] = d->valuestring;
  }
  ctl_announce(retried, k);
  free(retried);
  if (json) {
    cJSON_AddNumberToObject(out, "matched", n);
    cJSON_AddItemToObject(out, "retried", done);
    cJSON_AddItemToObject(out, "not_retried", refused);
    char *s = cJSON_PrintUnformatted(out);
    if (s) printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(out);
  } else {
    printf("retried %d of %d dead job%s\n", ok, n, n == 1 ? "" : "s");
    if (ok < n) {
      printf("not retried:\n  %-36s %-24s %-20s %s\n", "id", "user", "why", "message");
      const cJSON *o;
      cJSON_ArrayForEach(o, refused) {
        printf("  %-36s %-24s %-20s %s\n", ctl_str(o, "id"), ctl_str(o, "user"), ctl_str(o, "code"),
               ctl_str(o, "message"));
      }
    }
    cJSON_Delete(done);
    cJSON_Delete(refused);
    cJSON_Delete(out);
  }
  PQclear(ids);
  return ok == n ? CTL_OK : CTL_FAIL;
}
