#ifndef GENQ_MIGRATIONS_H
#define GENQ_MIGRATIONS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

/* The SQL of schema/, embedded at build time: the numbered migrations
 * (tables, columns, indexes, data; applied once each, in version order) and
 * the function files of schema/functions/ (every function, trigger and
 * view, each defined once; re-applied by every migrate, in file name
 * order). */
typedef struct {
  int version;      /* a migration's leading number; 0 for a function file */
  const char *name; /* file name without .sql */
  const char *sql;  /* whole file, NUL-terminated */
} genq_migration;

extern const genq_migration genq_migrations[];
extern const int genq_migrations_count;
extern const genq_migration genq_sql_functions[];
extern const int genq_sql_functions_count;

/* In one transaction, serialized by a transaction-level advisory lock (so
 * concurrent runs are safe and a crashed one leaves nothing half done):
 * applies every embedded migration not yet applied, in version order,
 * recording each in schema_migrations, then every function file. Writes one
 * line per applied migration to out (may be NULL). Returns how many
 * migrations were applied, or -1 with the failing file and the server's
 * message in err (nothing is changed then). */
int migrations_apply(PGconn *c, FILE *out, char *err, size_t errlen);

#endif
