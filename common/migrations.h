#ifndef GENQ_MIGRATIONS_H
#define GENQ_MIGRATIONS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

/* The SQL migrations of schema/, embedded at build time, in version order. */
typedef struct {
  int version;      /* the file's leading number */
  const char *name; /* file name without .sql */
  const char *sql;  /* whole file, NUL-terminated */
} genq_migration;

extern const genq_migration genq_migrations[];
extern const int genq_migrations_count;

/* Applies every embedded migration not yet applied, in version order, each
 * in its own transaction serialized by a transaction-level advisory lock, so
 * concurrent runs are safe. Writes one line per applied migration to out
 * (may be NULL). Returns how many were applied, or -1 with the failing
 * migration and the server's message in err. */
int migrations_apply(PGconn *c, FILE *out, char *err, size_t errlen);

#endif
