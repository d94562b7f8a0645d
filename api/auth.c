/* auth.c — who is calling: a Clerk session JWT from the Authorization
 * header or Clerk's __session cookie, or a genq API key (gq_ and 43
 * base64url characters) as a Bearer token. A key is known by its SHA-256:
 * this process's copy of the live keys (access.c) answers at once; a key
 * it does not hold yet (made a moment ago) is looked up in PostgreSQL. A
 * deleted account is refused whatever it shows.
 *
 * A cookie travels with every request the browser makes to us, whichever
 * site made it, so a cookie-authenticated request that can change anything
 * (any method but GET, HEAD and OPTIONS) must show that our own frontend
 * sent it (SPEC §4): an Origin among CLERK_AUTHORIZED_PARTIES or the
 * origin of GENQ_PUBLIC_URL, or, from a browser that sends no Origin,
 * Sec-Fetch-Site: same-origin. Anything else is 403 cross_site_request and
 * changes nothing. A Bearer token is never sent by a browser on its own, so
 * it needs no such check. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "log.h"

#define TOKEN_MAX 8192
#define KEY_PREFIX "gq_"
#define KEY_LEN 46 /* gq_ and 43 base64url characters: 32 random bytes */

/* 1 when token has the shape of a genq API key. */
static int is_api_key(const char *token, size_t len) {
  if (len != KEY_LEN || strncmp(token, KEY_PREFIX, 3) != 0) return 0;
  for (size_t i = 3; i < len; i++) {
    char c = token[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return 0;
  }
  return 1;
}

/* The value of cookie `name` in a Cookie header, copied into out. */
static int cookie_value(const char *header, const char *name, char *out, size_t outlen) {
  size_t nlen = strlen(name);
  const char *p = header;
  while (*p) {
    while (*p == ' ' || *p == ';')
      p++;
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
      size_t vlen = len - nlen - 1;
      if (vlen + 1 > outlen) return -1;
      memcpy(out, p + nlen + 1, vlen);
      out[vlen] = 0;
      return 1;
    }
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

/* 1 when origin (an Origin header: scheme://host[:port]) is the origin of
 * url (a base URL: scheme://host[:port][/path]), compared exactly. */
static int origin_of(const char *origin, const char *url, size_t url_len) {
  const char *scheme = memchr(url, ':', url_len);
  if (!scheme || url_len < (size_t)(scheme - url) + 3 || strncmp(scheme, "://", 3) != 0) return 0;
  const char *host = scheme + 3, *end = url + url_len;
  const char *slash = memchr(host, '/', (size_t)(end - host));
  size_t n = (size_t)((slash ? slash : end) - url);
  return strlen(origin) == n && strncasecmp(origin, url, n) == 0;
}

/* 1 when a cookie-authenticated request may do what its method does. */
static int origin_allowed(const api_ctx *ctx, const http_request *req) {
  const char *m = http_req_method(req);
  if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0) return 1;
  const char *origin = http_req_header(req, "origin");
  if (!origin) {
    const char *site = http_req_header(req, "sec-fetch-site");
    return site && strcmp(site, "same-origin") == 0;
  }
  const char *pub = ctx->cfg.public_url;
  if (pub && origin_of(origin, pub, strlen(pub))) return 1;
  for (const char *p = ctx->cfg.clerk_authorized_parties; p && *p;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    while (n && *p == ' ')
      p++, n--;
    while (n && p[n - 1] == ' ')
      n--;
    if (n && origin_of(origin, p, n)) return 1;
    if (!comma) break;
    p = comma + 1;
  }
  return 0;
}

/* Answers 401 (or 429 when the address has had too many refusals:
 * limits.c); returns -1. */
static int unauthorized(api_ctx *ctx, http_request *req, const char *message) {
  static const char *const challenge[] = {"WWW-Authenticate: Bearer", NULL};
  api_ip_refuse(ctx, req, 401, "unauthorized", message, challenge);
  return -1;
}

/* The caller's identity, or NULL with why it was refused; *cookie is 1
 * when the token came from the __session cookie. An API key this process
 * does not hold leaves u->user empty and its SHA-256 in key_hash (for
 * PostgreSQL to say). Answers nothing. */
static const char *identify(api_ctx *ctx, const http_request *req, api_user *u, int *cookie,
                            unsigned char key_hash[32]) {
  char token[TOKEN_MAX + 1];
  const char *h = http_req_header(req, "authorization");
  size_t len;
  if (h) {
    if (strncasecmp(h, "Bearer ", 7) != 0) return "expected a Bearer token";
    h += 7;
    while (*h == ' ')
      h++;
    len = strlen(h);
    while (len && h[len - 1] == ' ')
      len--;
    if (len == 0 || len > TOKEN_MAX) return "invalid token";
    memcpy(token, h, len);
    token[len] = 0;
  } else {
    const char *c = http_req_header(req, "cookie");
    if (!c || cookie_value(c, "__session", token, sizeof(token)) != 1)
      return "authentication required";
    len = strlen(token);
    *cookie = 1;
  }
  u->key_id[0] = 0;
  u->user[0] = 0;
  if (!*cookie && is_api_key(token, len)) {
    if (EVP_Digest(token, len, key_hash, NULL, EVP_sha256(), NULL) != 1) return "invalid token";
    if (api_access_key(ctx, key_hash, u)) return NULL;
    if (api_access_key_hash_revoked(ctx, key_hash)) return "invalid or revoked API key";
    return NULL; /* user empty: to be looked up */
  }
  jwt_claims claims;
  const char *why = NULL;
  if (jwt_cache_verify(ctx->tokens, ctx->jwt, token, len, time(NULL), &claims, &why) != 0) {
    log_info("token rejected", LS("request_id", http_req_id(req)),
             LS("reason", why ? why : "invalid"));
    return "invalid or expired token";
  }
  snprintf(u->user, sizeof(u->user), "%s", claims.sub);
  u->admin = strcmp(claims.role, "admin") == 0;
  u->exp = claims.exp;
  return NULL;
}

/* A caller PostgreSQL must vouch for: an API key this process does not
 * hold yet, or (before access.c's first load) any caller, whose account
 * might have been deleted. */
typedef struct {
  api_ctx *ctx;
  http_request *req;
  api_auth_cb done;
  int route;
  char id[API_ROUTE_PARAM_MAX];
  api_user u; /* the caller when known (a session token), else user "" */
} pending_auth;

static void vouched(const db_result *r, void *arg) {
  pending_auth *k = arg;
  api_ctx *ctx = k->ctx;
  http_request *req = k->req;
  api_user *u = &k->u;
  int key = !u->user[0];
  if (!r->ok) {
    api_reply_db_error(req, r);
  } else if (PQntuples(r->res) != 1) { /* no live key with that hash */
    log_info("token rejected", LS("request_id", http_req_id(req)), LS("reason", "unknown key"));
    unauthorized(ctx, req, "invalid or revoked API key");
  } else if (!key && strcmp(PQgetvalue(r->res, 0, 0), "t") == 0) {
    unauthorized(ctx, req, "this account was deleted");
  } else {
    if (key) {
      snprintf(u->key_id, sizeof u->key_id, "%s", PQgetvalue(r->res, 0, 0));
      snprintf(u->user, sizeof u->user, "%s", PQgetvalue(r->res, 0, 1));
      u->admin = strcmp(PQgetvalue(r->res, 0, 2), "t") == 0;
    }
    /* revoked while the answer was on its way */
    if ((u->key_id[0] && api_access_key_revoked(ctx, u->key_id)) ||
        api_access_user_deleted(ctx, u->user))
      unauthorized(ctx, req, key ? "invalid or revoked API key" : "this account was deleted");
    else
      k->done(ctx, req, u, k->route, k->id);
  }
  free(k);
}

/* Asks PostgreSQL about the caller (u, or the key with key_hash when
 * u->user is empty); 1, or -1 after answering. */
static int vouch(api_ctx *ctx, http_request *req, const api_user *u,
                 const unsigned char key_hash[32], int route, const char *id, api_auth_cb done) {
  static const char *const retry[] = {"Retry-After: 1", NULL};
  pending_auth *k = calloc(1, sizeof(*k));
  if (!k) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return -1;
  }
  *k = (pending_auth){.ctx = ctx, .req = req, .done = done, .route = route, .u = *u};
  snprintf(k->id, sizeof k->id, "%s", id ? id : "");
  char hex[2 + 64 + 1] = "\\x";
  for (size_t i = 0; i < 32 && !u->user[0]; i++)
    snprintf(hex + 2 + 2 * i, 3, "%02x", key_hash[i]);
  const char *p[1] = {u->user[0] ? u->user : hex};
  int rc = u->user[0]
               ? db_query(ctx->db,
                          "select coalesce((select deleted_at is not null from accounts"
                          " where user_id = $1), false)",
                          1, p, vouched, k)
               : db_query(ctx->db, "select id, user_id, admin from genq_api_key_auth($1::bytea)", 1,
                          p, vouched, k);
  if (rc != 0) {
    free(k);
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
    return -1;
  }
  return 1;
}

int api_authenticate(api_ctx *ctx, http_request *req, api_user *u, int route, const char *id,
                     api_auth_cb done) {
  int cookie = 0;
  unsigned char key_hash[32];
  const char *why = identify(ctx, req, u, &cookie, key_hash);
  if (why) return unauthorized(ctx, req, why);
  if (cookie && !origin_allowed(ctx, req)) {
    const char *origin = http_req_header(req, "origin");
    log_warn("cross-site request refused", LS("request_id", http_req_id(req)),
             LS("method", http_req_method(req)), LS("origin", origin ? origin : "(none)"));
    api_reply_error(req, 403, "cross_site_request",
                    "a request authenticated by cookie must come from an allowed origin", NULL);
    return -1;
  }
  if (u->user[0] && api_access_user_deleted(ctx, u->user))
    return unauthorized(ctx, req, "this account was deleted");
  if (!u->user[0] || !api_access_ready(ctx)) return vouch(ctx, req, u, key_hash, route, id, done);
  return 0;
}

int api_authenticated(api_ctx *ctx, const http_request *req) {
  api_user u;
  int cookie = 0;
  unsigned char key_hash[32];
  return identify(ctx, req, &u, &cookie, key_hash) == NULL && u.user[0] &&
         !api_access_user_deleted(ctx, u.user) && (!cookie || origin_allowed(ctx, req));
}
