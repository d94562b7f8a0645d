#ifndef GENQ_API_ADMIN_H
#define GENQ_API_ADMIN_H

/* admin.h — what the files of genq-api's admin API share (docs/admin.md):
 * admin.c (access and routing), admin_jobs.c, admin_fleet.c,
 * admin_credits.c, admin_events.c. Every handler here runs for an admin
 * caller only: admin.c answered everyone else 404. */

#include "api.h"

/* Page sizes and bounds of every admin request's work. */
#define ADMIN_PAGE_MAX 100      /* rows of one listing */
#define ADMIN_RETRY_MAX 1000    /* jobs one retry by filter takes */
#define ADMIN_RETRY_DEFAULT 100 /* when the request names no max */
#define ADMIN_STREAMS_MAX 256   /* open admin event streams per process */
#define ADMIN_ID_MAX 128        /* a path id: a job id, a worker id (common/registry.h) */

/* The caller as admin.sql takes it: {"kind": "user", "id": U} or
 * {"kind": "api_key", "id": KEY, "user": U}; malloc'd JSON text, NULL on
 * OOM. */
char *api_admin_actor(const api_user *u);

/* After an action committed: its JSON log line and its notice on
 * QUEUE_ADMIN_CHANNEL, for every API process's admin event streams.
 * action: genq_admin_action_json's object (NULL or JSON null: nothing). */
void api_admin_announce(api_ctx *ctx, http_request *req, const cJSON *action);

/* Answers a failed admin statement: 22023/22P02/22007/22008 → 400
 * invalid_request with the database's message, GQ409 → 409 conflict, else
 * as api_reply_db_error. */
void api_admin_reply_db(http_request *req, const db_result *r);
/* Runs sql, whose one row's one column is the JSON answer (200), or
 * answers its failure (api_admin_reply_db); 503 when the pool is full. */
void api_admin_query_json(api_ctx *ctx, http_request *req, const char *sql, int n,
                          const char *const *params);
/* 503 "the database is overloaded" for a db_query that returned -1. */
void api_admin_reply_busy(http_request *req);

/* The request's JSON body, an object (an empty body is {} when
 * allow_empty), parsed; NULL after answering 400 (or 415 when a body is
 * not sent as application/json). allowed: the member names accepted, a
 * NULL-ended list; any other member is 400 naming it. */
cJSON *api_admin_body(http_request *req, const char *const *allowed, int allow_empty);
/* A query parameter or 400 naming it: 1 given, 0 absent, -1 answered. */
int api_admin_param(http_request *req, const char *name, char *buf, size_t len);
/* since (RFC 3339, or a duration before now like 2h; common/when.h) as
 * two SQL parameters, an instant or seconds before now (at most one set;
 * both NULL when s is NULL): 0, or -1 when s is neither. secs holds 24. */
int api_admin_since(const char *s, const char **at, const char **secs, char *secs_buf);
/* The SQL of an instant from those two parameters ($a, $b). */
#define ADMIN_SINCE_SQL(a, b)                                                                      \
  "coalesce(" a "::timestamptz, now() - make_interval(secs => " b "::double precision))"

/* ---- the routes (admin.c dispatches) ---- */
void api_admin_stats(api_ctx *ctx, http_request *req);
void api_admin_workers(api_ctx *ctx, http_request *req);
void api_admin_worker_command(api_ctx *ctx, http_request *req, const api_user *u, const char *id,
                              const char *command);
void api_admin_providers(api_ctx *ctx, http_request *req);
void api_admin_jobs_list(api_ctx *ctx, http_request *req);
void api_admin_job_retry(api_ctx *ctx, http_request *req, const api_user *u, const char *id);
void api_admin_jobs_retry(api_ctx *ctx, http_request *req, const api_user *u);
void api_admin_job_cancel(api_ctx *ctx, http_request *req, const api_user *u, const char *id);
void api_admin_credits_grant(api_ctx *ctx, http_request *req, const api_user *u);
void api_admin_actions(api_ctx *ctx, http_request *req);
/* GET /v1/admin/events (admin_events.c). */
void api_admin_events(api_ctx *ctx, http_request *req, const api_user *u);

#endif
