/* usage.c — GET /v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD: per UTC day and
 * job kind, the caller's jobs submitted, succeeded, failed and canceled and
 * the credits captured (genq_usage in schema/functions/usage.sql). The
 * range is checked here, so a bad one costs no query. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"

#define USAGE_MAX_DAYS 366
#define USAGE_DEFAULT_DAYS 30

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static long days_from_civil(long y, unsigned m, unsigned d) {
  y -= m <= 2;
  long era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (long)doe - 719468;
}

/* The date as YYYY-MM-DD into out (years 1970..9999 fit 11 bytes). */
static void civil_from_days(long z, char out[16]) {
  z += 719468;
  long era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long y = (long)yoe + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  unsigned d = doy - (153 * mp + 2) / 5 + 1;
  unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  snprintf(out, 16, "%04d-%02u-%02u", (int)(y % 10000), m % 100, d % 100);
}

/* 1 and the day number in *day when s is a real date YYYY-MM-DD (years
 * 1970..9999), else 0. */
static int parse_day(const char *s, long *day) {
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return 0;
  long y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
  unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
  static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return 0;
  *day = days_from_civil(y, m, d);
  return 1;
}

static void usage_row(const db_result *r, void *arg) {
  http_request *req = arg;
  if (!r->ok) {
    api_reply_db_error(req, r);
    return;
  }
  const char *v = PQntuples(r->res) == 1 ? PQgetvalue(r->res, 0, 0) : "";
  if (!*v) {
    api_reply_error(req, 500, "internal", "internal error", NULL);
    return;
  }
  api_reply_json_text(req, 200, v, strlen(v));
}

void api_usage_get(api_ctx *ctx, http_request *req, const api_user *u) {
  const char *q = http_req_query(req);
  char from[16], to[16];
  long from_day = 0, to_day = (long)(time(NULL) / 86400); /* today, UTC */
  int has_from = api_query_param(q, "from", from, sizeof from);
  int has_to = api_query_param(q, "to", to, sizeof to);
  if (has_from < 0 || (has_from > 0 && !parse_day(from, &from_day))) {
    api_reply_error(req, 400, "invalid_request", "from must be a date YYYY-MM-DD", NULL);
    return;
  }
  if (has_to < 0 || (has_to > 0 && !parse_day(to, &to_day))) {
    api_reply_error(req, 400, "invalid_request", "to must be a date YYYY-MM-DD", NULL);
    return;
  }
  if (!has_from) from_day = to_day - (USAGE_DEFAULT_DAYS - 1);
  if (from_day > to_day) {
    api_reply_error(req, 400, "invalid_request", "from must not be after to", NULL);
    return;
  }
  if (to_day - from_day + 1 > USAGE_MAX_DAYS) {
    api_reply_error(req, 400, "invalid_request", "from: the range from..to is at most 366 days",
                    NULL);
    return;
  }
  civil_from_days(from_day, from);
  civil_from_days(to_day, to);
  const char *params[3] = {u->user, from, to};
  if (db_query(ctx->db, "select genq_usage($1, $2::date, $3::date)", 3, params, usage_row, req) !=
      0) {
    static const char *const retry[] = {"Retry-After: 1", NULL};
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}
