/* genqctl limits: the plans' usage limits and a user's use of them
 * (docs/limits.md; schema/functions/limits.sql).
 *
 *   limits show [--plan P] [--user U] [--json]  every plan's limits, one
 *       plan's, or a user's plan, limits and current usage
 *   limits set PLAN FIELD VALUE [--json]         one limit of a plan (a new
 *       plan starts from free's values); takes effect at the next request of
 *       any API process, without a restart
 *   limits plan USER PLAN [--json]               moves a user to a plan
 *
 * Arguments are checked here before anything connects (exit 2 naming the
 * argument); the database checks the values again and names the field. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char *const limit_fields[] = {"max_unfinished_jobs", "submit_per_minute",
                                           "submit_burst",        "upload_bytes_per_day",
                                           "uploads_per_day",     "provider_weight"};
#define NFIELDS (sizeof limit_fields / sizeof limit_fields[0])

static int usage(const char *fmt, const char *arg) {
  fprintf(stderr, "genqctl limits: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(genqctl --help lists the commands)\n");
  return CTL_USAGE;
}

/* 1 when s is a plan name as plans allows: 1..32 of a-z 0-9 _ - */
static int plan_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 32) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
          s[i] == '-'))
      return 0;
  return 1;
}

/* A limit's value for people: "none" for 0. */
static void print_limit(const char *name, double v) {
  if (v == 0)
    printf("  %-22s none\n", name);
  else
    printf("  %-22s %.0f\n", name, v);
}

static void print_plans(const cJSON *rows, long unused) {
  (void)unused;
  printf("%-16s %12s %12s %12s %16s %12s\n", "plan", "unfinished", "per_minute", "burst",
         "upload_bytes/d", "uploads/d");
  const cJSON *r;
  cJSON_ArrayForEach(r, rows) {
    printf("%-16s %12.0f %12.0f %12.0f %16.0f %12.0f\n", ctl_str(r, "plan"),
           ctl_num(r, "max_unfinished_jobs"), ctl_num(r, "submit_per_minute"),
           ctl_num(r, "submit_burst"), ctl_num(r, "upload_bytes_per_day"),
           ctl_num(r, "uploads_per_day"));
  }
  printf("(0: no limit)\n");
}

/* Prints one JSON text (a plan row, or a user's usage) as it is, or for
 * people. */
static int print_one(const char *json_text, int json, int user) {
  if (json) {
    printf("%s\n", json_text);
    return CTL_OK;
  }
  cJSON *o = cJSON_Parse(json_text);
  if (!o) {
    fprintf(stderr, "genqctl limits: unreadable answer\n");
    return CTL_FAIL;
  }
  const cJSON *lim = user ? cJSON_GetObjectItem(o, "limits") : o;
  if (user) printf("user %s\n", ctl_str(o, "user"));
  printf("plan %s\n", ctl_str(o, "plan"));
  for (size_t i = 0; i < NFIELDS; i++)
    print_limit(limit_fields[i], ctl_num(lim, limit_fields[i]));
  if (user) {
    const cJSON *u = cJSON_GetObjectItem(o, "usage");
    const cJSON *tok = cJSON_GetObjectItem(u, "submit_tokens");
    printf("usage\n  %-22s %.0f\n", "unfinished_jobs", ctl_num(u, "unfinished_jobs"));
    if (cJSON_IsNumber(tok))
      printf("  %-22s %.2f\n", "submit_tokens", tok->valuedouble);
    else
      printf("  %-22s -\n", "submit_tokens");
    printf("  %-22s %.0f\n  %-22s %.0f\n", "uploads_today", ctl_num(u, "uploads_today"),
           "upload_bytes_today", ctl_num(u, "upload_bytes_today"));
  }
  cJSON_Delete(o);
  return CTL_OK;
}

/* Runs sql (one row, one JSON value or NULL → not found) and prints it. */
static int run_one(PGconn *c, const char *what, const char *sql, int n, const char *const *p,
                   int json, int user, const char *missing) {
  PGresult *r = ctl_query(c, what, sql, n, p);
  if (!r) return CTL_FAIL;
  int rc;
  if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
    fprintf(stderr, "genqctl %s: %s\n", what, missing);
    rc = CTL_FAIL;
  } else {
    rc = print_one(PQgetvalue(r, 0, 0), json, user);
  }
  PQclear(r);
  return rc;
}

int ctl_limits(int argc, char **argv, PGconn *(*connect)(void)) {
  if (argc < 1) return usage("%s", "needs a subcommand (show, set or plan)");
  const char *sub = argv[0], *plan = NULL, *user = NULL, *pos[3];
  int npos = 0, json = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "--json") == 0) {
      json = 1;
    } else if (strcmp(sub, "show") == 0 && (strcmp(s, "--plan") == 0 || strcmp(s, "--user") == 0)) {
      if (i + 1 >= argc) return usage("%s needs a value", s);
      if (s[2] == 'p')
        plan = argv[++i];
      else
        user = argv[++i];
    } else if (s[0] == '-' && s[1] && !(s[1] >= '0' && s[1] <= '9')) {
      return usage("unknown option '%s'", s);
    } else if (npos >= 3) {
      return usage("unexpected argument '%s'", s);
    } else {
      pos[npos++] = s;
    }
  }
  if (strcmp(sub, "show") == 0) {
    if (npos) return usage("unexpected argument '%s'", pos[0]);
    if (plan && user) return usage("%s", "show takes --plan or --user, not both");
    if (plan && !plan_name_ok(plan)) return usage("plan: '%s' is not a plan name", plan);
    if (user && !*user) return usage("%s", "--user needs a user id");
  } else if (strcmp(sub, "set") == 0) {
    if (npos != 3) return usage("%s", "set needs PLAN FIELD VALUE");
    if (!plan_name_ok(pos[0])) return usage("plan: '%s' is not a plan name", pos[0]);
    size_t f = 0;
    while (f < NFIELDS && strcmp(limit_fields[f], pos[1]) != 0)
      f++;
    if (f == NFIELDS)
      return usage("field: '%s' is not a limit (max_unfinished_jobs, submit_per_minute, "
                   "submit_burst, upload_bytes_per_day, uploads_per_day, provider_weight)",
                   pos[1]);
    const char *v = pos[2];
    size_t n = strlen(v);
    if (n == 0 || n > 19 || strspn(v, "0123456789") != n)
      return usage("value: '%s' is not a whole number, 0 or more (0: no limit)", v);
  } else if (strcmp(sub, "plan") == 0) {
    if (npos != 2) return usage("%s", "plan needs USER PLAN");
    if (!*pos[0]) return usage("%s", "user: empty user id");
    if (!plan_name_ok(pos[1])) return usage("plan: '%s' is not a plan name", pos[1]);
  } else {
    return usage("unknown subcommand '%s'", sub);
  }

  PGconn *c = connect();
  if (!c) return CTL_FAIL;
  int rc;
  if (strcmp(sub, "set") == 0) {
    rc = run_one(c, "limits set", "select genq_limits_set($1, $2, $3)", 3, pos, json, 0, "failed");
  } else if (strcmp(sub, "plan") == 0) {
    const char *p[2] = {pos[0], pos[1]};
    PGresult *r = ctl_query(c, "limits plan", "select genq_limits_user_plan($1, $2)", 2, p);
    rc = CTL_FAIL;
    if (r) {
      PQclear(r);
      rc = run_one(c, "limits plan", "select genq_limits_usage($1)", 1, p, json, 1, "failed");
    }
  } else if (user) {
    const char *p[1] = {user};
    rc = run_one(c, "limits show", "select genq_limits_usage($1)", 1, p, json, 1,
                 "no such user (no account)");
  } else if (plan) {
    const char *p[1] = {plan};
    rc = run_one(c, "limits show",
                 "select to_jsonb(p) - 'updated_at' from plans p where p.plan = $1", 1, p, json, 0,
                 "no such plan");
  } else {
    rc = ctl_list(c, "limits show",
                  "select coalesce(jsonb_agg(to_jsonb(p) - 'updated_at' order by p.plan), '[]')"
                  " from plans p",
                  0, NULL, json, print_plans, 0);
  }
  PQfinish(c);
  return rc;
}
