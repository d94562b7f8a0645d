/* migrations.c — applies the schema/ SQL embedded at build time: the one
 * implementation behind genqctl migrate and the tests. */
#include "migrations.h"

#include <stdio.h>
#include <string.h>

/* Serializes every migrating session ("genq" in ASCII). Transaction-level,
 * so a crashed migrator never leaves it held. */
#define MIGRATE_LOCK_KEY "1734700657"

static int migrate_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                        PGresult **out, char *err, size_t errlen) {
  PGresult *r =
      nparams ? PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
    const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    snprintf(err, errlen, "%.*s", (int)strcspn(m, "\n"), m);
    PQclear(r);
    return -1;
  }
  if (out)
    *out = r;
  else
    PQclear(r);
  return 0;
}

/* One migration inside the open transaction. Returns 1 applied, 0 already
 * there, -1. */
static int migrate_one(PGconn *c, const genq_migration *m, char *err, size_t errlen) {
  char version[16];
  snprintf(version, sizeof version, "%d", m->version);
  const char *params[2] = {version, m->name};
  PGresult *r = NULL;
  if (migrate_exec(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params, &r, err,
                   errlen) < 0)
    return -1;
  int applied = PQntuples(r) > 0;
  PQclear(r);
  if (applied) return 0;
  if (migrate_exec(c, m->sql, 0, NULL, NULL, err, errlen) < 0 ||
      migrate_exec(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params,
                   NULL, err, errlen) < 0)
    return -1;
  return 1;
}

int migrations_apply(PGconn *c, FILE *out, char *err, size_t errlen) {
  char why[512];
  const char *where = "the schema_migrations table";
  int n = 0, applied[256];
  if (genq_migrations_count > 256) {
    snprintf(err, errlen, "too many migrations");
    return -1;
  }
  if (migrate_exec(c,
                   "BEGIN; SET LOCAL client_min_messages = warning;"
                   " SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ");"
                   " CREATE TABLE IF NOT EXISTS schema_migrations ("
                   "version int PRIMARY KEY, name text NOT NULL,"
                   " applied_at timestamptz NOT NULL DEFAULT now())",
                   0, NULL, NULL, why, sizeof why) < 0)
    goto fail;
  for (int i = 0; i < genq_migrations_count; i++) {
    const genq_migration *m = &genq_migrations[i];
    where = m->name;
    int r = migrate_one(c, m, why, sizeof why);
    if (r < 0) goto fail;
    if (r == 1) applied[n++] = i;
  }
  for (int i = 0; i < genq_sql_functions_count; i++) {
    where = genq_sql_functions[i].name;
    if (migrate_exec(c, genq_sql_functions[i].sql, 0, NULL, NULL, why, sizeof why) < 0) goto fail;
  }
  where = "commit";
  if (migrate_exec(c, "COMMIT", 0, NULL, NULL, why, sizeof why) < 0) goto fail;
  for (int i = 0; out && i < n; i++)
    fprintf(out, "applied %s\n", genq_migrations[applied[i]].name);
  return n;
fail:
  PQclear(PQexec(c, "ROLLBACK"));
  snprintf(err, errlen, "migration %s: %s", where, why);
  return -1;
}
