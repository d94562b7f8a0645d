#ifndef GENQ_DB_H
#define GENQ_DB_H

#include <libpq-fe.h>
#include <uv.h>

/* Asynchronous PostgreSQL on libuv: a small pool of libpq connections, each
 * driven by PQconnectStart/PQconnectPoll and PQsendQueryParams/
 * PQconsumeInput on a uv_poll_t. One statement per call, text parameters,
 * unnamed statements (works through PgBouncer in transaction mode). A
 * statement is its own transaction unless it is inside a function: genq does
 * every multi-row change inside one SQL function call (schema/), so no
 * transaction spans two calls.
 *
 * A connection that goes away is reopened with exponential backoff (100 ms
 * doubling to 5 s). Statements wait in a bounded FIFO queue while no
 * connection is free; a statement that waited more than queue_timeout_ms for
 * a connection fails with sqlstate "08001" (callers answer 503). */

typedef struct db db;

typedef struct {
  int ok;               /* 1: the statement succeeded */
  const char *sqlstate; /* on failure: 5-char SQLSTATE; "08006" connection lost mid-statement,
                           "08001" no connection in time, "57014" canceled */
  const char *error;    /* on failure: the server's or libpq's message */
  /* On a server's refusal, its structured fields (NULL when absent): the
   * primary message alone, and the column it names — genq's functions name
   * the offending input field there ("input.image_upload_id") with GQ400. */
  const char *message;
  const char *column;
  PGresult *res; /* on success: the result (PGRES_TUPLES_OK or COMMAND_OK) */
} db_result;

/* Called exactly once per db_query that returned 0, on the loop thread. r and
 * r->res are valid only during the call (the pool clears the result after). */
typedef void (*db_cb)(const db_result *r, void *arg);

typedef struct {
  const char *conninfo;      /* URL or key=value string */
  int pool_size;             /* connections, default 4 */
  unsigned max_queue;        /* queued statements, default 10000; beyond, db_query fails */
  unsigned queue_timeout_ms; /* default 5000 */
} db_options;

/* Starts connecting (asynchronously); returns 0 or -1 on bad options/OOM. */
int db_open(db **out, uv_loop_t *loop, const db_options *o);
/* Queues a statement. params: nparams NUL-terminated text values (NULL entry
 * = SQL NULL); copied. Returns 0 (cb will run), or -1 when the queue is full
 * or the pool is closing (cb never runs). */
int db_query(db *d, const char *sql, int nparams, const char *const *params, db_cb cb, void *arg);
/* 1 when a failed statement is worth sending again as it is: the connection
 * failed or was never there (class 08), the server is shutting down or
 * starting (57P01..57P03), out of resources (class 53), or a serialization
 * failure or deadlock (40001, 40P01). Only idempotent statements may be
 * resent: one that lost its connection mid-way may have committed. */
int db_transient(const db_result *r);
/* 1 when a fenced statement (schema/functions/leases.sql: one row, the job's
 * status after the call, or NULL when the caller was fenced out) succeeded
 * and was not fenced out. */
int db_fenced_ok(const db_result *r);
/* Number of connections that would take a statement queued now at once:
 * the idle ones, or 0 while statements wait. */
int db_idle(const db *d);
/* A PostgreSQL array literal of n text values, every one quoted ({"a","b\\"c"});
 * a NULL entry is SQL NULL. Cast it to the element type in the statement
 * ($1::uuid[], $2::jsonb[]). malloc'd (the caller frees it); NULL on OOM. */
char *db_array_literal(const char *const *vals, int n);
/* Number of connections currently up. */
int db_connected(const db *d);
/* Fails queued statements (sqlstate "57014"), waits for running ones to
 * finish or fail, closes every connection and frees d; then calls done. */
void db_close(db *d, void (*done)(void *arg), void *arg);

#endif
