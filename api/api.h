#ifndef GENQ_API_H
#define GENQ_API_H

#include <cjson/cJSON.h>

#include "config.h"
#include "db.h"
#include "http_server.h"
#include "jwt.h"
#include "redis.h"
#include "relay.h"

/* genq-api: the process-wide context, shared by the route handlers. */
typedef struct api_ctx {
  uv_loop_t *loop;
  genq_config cfg;
  db *db;
  rds *redis;
  jwt_verifier *jwt;
  http_server *http;
  relay *relay;
} api_ctx;

/* The authenticated caller of one request. */
typedef struct {
  char user[256];
  int admin;
} api_user;

/* ---- auth.c ---- */
/* Authenticates the request (Bearer token, or Clerk's __session cookie).
 * Returns 0 and fills *u, or answers 401 itself and returns -1. */
int api_authenticate(api_ctx *ctx, http_request *req, api_user *u);

/* ---- reply.c ---- */
void api_reply_json_text(http_request *req, int status, const char *json, size_t len);
/* Serializes and frees obj. */
void api_reply_json(http_request *req, int status, cJSON *obj);
/* Maps a failed db_result to 503 (connection trouble) or 500 and answers. */
void api_reply_db_error(http_request *req, const db_result *r);

/* ---- route handlers (jobs.c, credits.c, health.c) ---- */
void api_jobs_submit(api_ctx *ctx, http_request *req, const api_user *u);
void api_jobs_get(api_ctx *ctx, http_request *req, const api_user *u, const char *id);
void api_jobs_list(api_ctx *ctx, http_request *req, const api_user *u);
void api_credits_get(api_ctx *ctx, http_request *req, const api_user *u);
void api_healthz(api_ctx *ctx, http_request *req);
void api_readyz(api_ctx *ctx, http_request *req);

/* ---- util ---- */
/* 1 if s is a canonical 36-char UUID. */
int api_is_uuid(const char *s);
/* Finds `name` in a raw query string and percent-decodes it into out.
 * Returns 1 found, 0 absent, -1 bad encoding or too long. */
int api_query_param(const char *query, const char *name, char *out, size_t outlen);

#endif
