#ifndef GENQ_MIGRATIONS_H
#define GENQ_MIGRATIONS_H

/* The SQL migrations of schema/, embedded at build time, in version order. */
typedef struct {
  int version;      /* the file's leading number */
  const char *name; /* file name without .sql */
  const char *sql;  /* whole file, NUL-terminated */
} genq_migration;

extern const genq_migration genq_migrations[];
extern const int genq_migrations_count;

#endif
