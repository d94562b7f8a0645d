/* SQL helpers shared by the integration tests that drive genq's schema
 * functions directly (test_credits.c, test_dead.c, test_dispatch.c).
 * Included once per test program (each is its own executable). Every value
 * comes back as text in a rotating buffer, so tests need not free anything;
 * NULL means SQL NULL. The includer's group setup and teardown call
 * pg_connect and pg_disconnect, which set conn and run_prefix (its fresh
 * users' prefix). */
#ifndef GENQ_TEST_PG_HELPERS_H
#define GENQ_TEST_PG_HELPERS_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrations.h"

static PGconn *conn;
static char run_prefix[64]; /* <tag>-<pid>-<time>-, set by pg_connect */
static int user_seq;

#define VAL_SLOTS 128
#define VAL_MAX 32768
static char vals[VAL_SLOTS][VAL_MAX];
static int val_next;

static inline char *val_keep(const char *s) {
  char *slot = vals[val_next++ % VAL_SLOTS];
  size_t n = strlen(s);
  assert_true(n < VAL_MAX);
  memcpy(slot, s, n + 1);
  return slot;
}

#define P(...)                                                                                     \
  (const char *const[]){__VA_ARGS__},                                                              \
      (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define NOP NULL, 0

/* Runs q and fails the test unless it succeeds. */
static inline PGresult *sql_on(PGconn *c, const char *q, const char *const *p, int n) {
  PGresult *r = PQexecParams(c, q, n, NULL, p, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
    PQclear(r);
    fail_msg("query failed: %s\n  %s", q, msg);
  }
  return r;
}

static inline void sql_do(const char *q, const char *const *p, int n) {
  PQclear(sql_on(conn, q, p, n));
}

/* The first column of the single row q returns (NULL for SQL NULL). */
static inline char *sql_val(const char *q, const char *const *p, int n) {
  PGresult *r = sql_on(conn, q, p, n);
  if (PQntuples(r) != 1) {
    int rows = PQntuples(r);
    PQclear(r);
    fail_msg("expected one row from %s, got %d", q, rows);
  }
  char *v = PQgetisnull(r, 0, 0) ? NULL : val_keep(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

/* The number of rows q returns. */
static inline int sql_rows(const char *q, const char *const *p, int n) {
  PGresult *r = sql_on(conn, q, p, n);
  int rows = PQntuples(r);
  PQclear(r);
  return rows;
}

static inline long long sql_int(const char *q, const char *const *p, int n) {
  char *v = sql_val(q, p, n);
  if (!v) fail_msg("NULL from %s", q);
  return atoll(v);
}

/* Runs q expecting it to fail; returns its SQLSTATE ("00000" if it worked). */
static inline const char *sql_state(const char *q, const char *const *p, int n) {
  PGresult *r = PQexecParams(conn, q, n, NULL, p, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  const char *s = "00000";
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const char *f = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    s = val_keep(f ? f : "?????");
  }
  PQclear(r);
  return s;
}

/* ---- the connection ---- */

/* For the group setup: connects conn to url (GENQ_DATABASE_URL), applies
 * genq's migrations and sets run_prefix to <tag>-<pid>-<time>-. Returns 0,
 * or -1 with the reason on stderr. */
static inline int pg_connect(const char *url, const char *tag) {
  if (!url || !*url) {
    fprintf(stderr, "GENQ_DATABASE_URL is not set: integration tests need a real PostgreSQL\n");
    return -1;
  }
  conn = PQconnectdb(url);
  if (PQstatus(conn) != CONNECTION_OK) {
    fprintf(stderr, "cannot connect to %s: %s", url, PQerrorMessage(conn));
    PQfinish(conn);
    conn = NULL;
    return -1;
  }
  snprintf(run_prefix, sizeof run_prefix, "%s-%ld-%ld-", tag, (long)getpid(), (long)time(NULL));
  char err[1024];
  if (migrations_apply(conn, NULL, err, sizeof err) < 0) {
    fprintf(stderr, "%s\n", err);
    PQfinish(conn);
    conn = NULL;
    return -1;
  }
  return 0;
}

/* For the group teardown. */
static inline void pg_disconnect(void) {
  PQfinish(conn);
  conn = NULL;
}

/* ---- the model, through the schema's functions ---- */

static inline char *new_user(void) {
  char u[96];
  snprintf(u, sizeof u, "%s%d", run_prefix, ++user_seq);
  return val_keep(u);
}

static inline void grant(const char *user, const char *amount) {
  char key[128];
  snprintf(key, sizeof key, "test:%s:%s:%d", user, amount, ++user_seq);
  sql_do("SELECT genq_grant($1, $2, $3, 'test')", P(user, amount, key));
}

static inline long long balance(const char *user) {
  return sql_int("SELECT balance FROM accounts WHERE user_id = $1", P(user));
}

static inline long long held(const char *user) {
  return sql_int("SELECT held FROM accounts WHERE user_id = $1", P(user));
}

/* A field of the job as the API shows it (genq_job_json), path a text[]
 * literal like "{cost,held}". */
static inline char *job_field(const char *job, const char *path) {
  return sql_val("SELECT genq_job_json($1) #>> $2::text[]", P(job, path));
}

static inline long long job_int(const char *job, const char *path) {
  char *v = job_field(job, path);
  if (!v) fail_msg("job %s has no %s", job, path);
  return atoll(v);
}

/* The audit, restricted to this run's accounts and jobs (the database may be
 * shared with other tests running at the same time). */
static inline void assert_audit_clean(void) {
  char like[80];
  snprintf(like, sizeof like, "%s%%", run_prefix);
  PGresult *r = sql_on(conn,
                       "SELECT a.check_name, a.subject, a.detail FROM genq_audit() a "
                       "WHERE a.subject LIKE $1 OR a.subject IN "
                       "(SELECT id::text FROM jobs WHERE user_id LIKE $1)",
                       P(like));
  int n = PQntuples(r);
  for (int i = 0; i < n; i++)
    print_error("audit: %s %s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
  PQclear(r);
  assert_int_equal(n, 0);
}

#endif
