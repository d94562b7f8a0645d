/* webhooks.c — completion webhooks out of the outbox (SPEC §4,
 * docs/webhooks.md).
 *
 * Every GENQ_WEBHOOK_POLL_MS the worker claims the deliveries that are due
 * (genq_webhooks_claim: SKIP LOCKED, a lease of WH_LEASE_S, so any number
 * of workers share them and a dead one's claims come back), and for each:
 * makes the user's signing secret if there is none yet, checks the URL
 * again (net_guard.h), resolves its host on libuv's thread pool, refuses
 * the delivery when any address is refused, pins the first address for
 * curl (CURLOPT_RESOLVE: curl resolves nothing itself, and checks again the
 * address it connects to), signs the stored payload with every secret that
 * signs now (Standard Webhooks, webhook_sign.h), POSTs it without following
 * redirects, reading at most WH_RESPONSE_MAX bytes of the answer, and
 * records the outcome (genq_webhook_record: the backoff and the deadline
 * are the database's). Nothing here blocks the loop: the resolver runs on
 * the thread pool, the POST on the worker's libcurl multi of its own.
 *
 * A worker that stops hands back what it claimed and had not answered yet
 * (genq_webhook_release); what it cannot hand back its lease returns. */
#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "net_guard.h"
#include "secret_box.h"
#include "webhook_sign.h"
#include "worker.h"

#define WH_INFLIGHT_MAX 64 /* deliveries held at once */
#define WH_CLAIM_MAX 32    /* per claim */
#define WH_LEASE_S 60      /* a claim's lease: far past the longest attempt */
#define WH_CONNECT_TIMEOUT_MS 5000
#define WH_TIMEOUT_MS 10000
#define WH_RESPONSE_MAX 4096 /* of the receiver's answer, the rest is not read */
#define WH_SECRETS_MAX 8     /* signatures per message */
/* Resolutions at once: each holds a thread of libuv's pool (shared with the
 * file system calls of storage) for as long as a slow resolver takes. */
#define WH_RESOLVE_MAX 2

typedef struct wh_delivery wh_delivery;

struct webhooks {
  worker *w;
  httpc *http; /* its own multi: its DNS cache holds only pinned, checked addresses */
  uv_timer_t timer;
  secret_keyring keys;
  net_guard_nets allow;
  wh_delivery *list; /* held, doubly linked */
  int n;
  int resolving;                      /* resolutions in flight */
  wh_delivery *wait_head, *wait_tail; /* waiting for a resolution slot */
  int claiming;
  int closing;
  int timer_closed;
};

/* One claimed delivery, from its claim to the answer of its record. */
struct wh_delivery {
  webhooks *wh;
  wh_delivery *prev, *next;
  char id[37];
  char msg_id[40];
  char *user, *url, *payload;
  char *secrets; /* "<key_id>:<sealed>" separated by spaces, newest first */
  int attempt;
  net_guard_url u;
  uv_getaddrinfo_t gai;
  int resolving;
  int waiting; /* in the resolution queue */
  wh_delivery *wait_next;
  int sending;
  uint64_t xfer;
  char resolve[320]; /* "host:port:address" */
};

/* Frees wh once it is stopping, its timer is closed, no delivery is left
 * and no claim is on its way (its answer still names wh). */
static void wh_maybe_free_all(webhooks *wh) {
  if (!wh->closing || !wh->timer_closed || wh->n > 0 || wh->claiming) return;
  secret_keyring_wipe(&wh->keys);
  free(wh);
}

static void wh_free(wh_delivery *d) {
  webhooks *wh = d->wh;
  if (d->prev)
    d->prev->next = d->next;
  else
    wh->list = d->next;
  if (d->next) d->next->prev = d->prev;
  wh->n--;
  free(d->user);
  free(d->url);
  free(d->payload);
  if (d->secrets) OPENSSL_cleanse(d->secrets, strlen(d->secrets));
  free(d->secrets);
  free(d);
  wh_maybe_free_all(wh);
}

/* ---- the outcome ---- */

static void wh_recorded(const db_result *r, void *arg) {
  wh_delivery *d = arg;
  if (!r->ok)
    log_warn("webhook outcome not recorded: its lease brings it back", LS("delivery", d->id),
             LS("error", r->error));
  else if (PQgetisnull(r->res, 0, 0))
    log_warn("webhook outcome not recorded: the delivery was claimed again", LS("delivery", d->id));
  else
    log_debug("webhook state", LS("delivery", d->id), LS("state", PQgetvalue(r->res, 0, 0)));
  wh_free(d);
}

/* outcome as genq_webhook_record takes it; status 0 = none */
static void wh_record(wh_delivery *d, const char *outcome, int status, const char *error) {
  char st[16], attempt[16], base[16];
  snprintf(st, sizeof st, "%d", status);
  snprintf(attempt, sizeof attempt, "%d", d->attempt);
  snprintf(base, sizeof base, "%d", d->wh->w->cfg.webhook_retry_base_ms);
  const char *p[6] = {d->id, attempt, outcome, status ? st : NULL, error, base};
  if (strcmp(outcome, "delivered") == 0)
    log_info("webhook delivered", LS("delivery", d->id), LS("host", d->u.host),
             LI("status", status), LI("attempt", d->attempt));
  else
    log_info("webhook not delivered", LS("delivery", d->id), LS("outcome", outcome),
             LS("host", d->u.host), LI("status", status), LI("attempt", d->attempt),
             LS("error", error ? error : ""));
  if (db_query(d->wh->w->db,
               "select genq_webhook_record($1::uuid, $2::int, $3, $4::int, $5, $6::int)", 6, p,
               wh_recorded, d) != 0)
    wh_free(d);
}

static void wh_released(const db_result *r, void *arg) {
  (void)r; /* not handed back: the lease returns it */
  wh_free(arg);
}

/* Stopping: the claim goes back unattempted. */
static void wh_release(wh_delivery *d) {
  char attempt[16];
  snprintf(attempt, sizeof attempt, "%d", d->attempt);
  const char *p[2] = {d->id, attempt};
  if (db_query(d->wh->w->db, "select genq_webhook_release($1::uuid, $2::int)", 2, p, wh_released,
               d) != 0)
    wh_free(d);
}

/* ---- the POST ---- */

static int wh_addr_ok(const struct sockaddr *addr, void *arg) {
  webhooks *wh = arg;
  return net_guard_refused_sockaddr(addr, &wh->allow) == NULL;
}

static void wh_answered(const httpc_response *resp, void *arg) {
  wh_delivery *d = arg;
  d->sending = 0;
  if (d->wh->closing) {
    wh_release(d);
    return;
  }
  char why[600];
  int s = resp->status;
  if (s >= 200 && s <= 299) {
    wh_record(d, "delivered", s, NULL);
  } else if (s == 410) {
    wh_record(d, "gone", s, "HTTP 410: the receiver asked for no more deliveries");
  } else if (s > 0) {
    snprintf(why, sizeof why, "HTTP %d%s", s,
             s >= 300 && s <= 399 ? " (a redirect: genq does not follow them)" : "");
    wh_record(d, "retry", s, why);
  } else {
    snprintf(why, sizeof why, "%s", resp->error ? resp->error : "no answer");
    wh_record(d, "retry", 0, why);
  }
}

/* The webhook-signature value: "v1,<sig>" for every secret that opens. */
static int wh_signatures(wh_delivery *d, long long ts, char *out, size_t outlen) {
  webhooks *wh = d->wh;
  size_t len = 0;
  int n = 0;
  out[0] = '\0';
  char *save = NULL;
  for (char *tok = strtok_r(d->secrets, " ", &save); tok && n < WH_SECRETS_MAX;
       tok = strtok_r(NULL, " ", &save)) {
    char *colon = strchr(tok, ':');
    if (!colon) continue;
    *colon = '\0';
    unsigned char key[WEBHOOK_KEY_MAX];
    int kl = secret_box_open(&wh->keys, tok, d->user, colon + 1, key, sizeof key);
    if (kl < 0) {
      log_warn("a webhook signing secret does not open with GENQ_SECRETS_KEY", LS("key_id", tok),
               LI("code", kl));
      continue;
    }
    char sig[WEBHOOK_SIGNATURE_MAX];
    int rc = webhook_sign(key, (size_t)kl, d->msg_id, ts, d->payload, strlen(d->payload), sig);
    OPENSSL_cleanse(key, sizeof key);
    if (rc < 0 || len + strlen(sig) + 2 > outlen) continue;
    len += (size_t)snprintf(out + len, outlen - len, "%s%s", n ? " " : "", sig);
    n++;
  }
  return n;
}

static void wh_send(wh_delivery *d) {
  webhooks *wh = d->wh;
  long long ts = (long long)time(NULL);
  char sigs[WH_SECRETS_MAX * WEBHOOK_SIGNATURE_MAX + 32];
  if (wh_signatures(d, ts, sigs, sizeof sigs) == 0) {
    wh_record(d, "retry", 0, "no signing secret of the user opens with GENQ_SECRETS_KEY");
    return;
  }
  char h_id[64], h_ts[48], h_sig[sizeof sigs + 32];
  snprintf(h_id, sizeof h_id, "webhook-id: %s", d->msg_id);
  snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", ts);
  snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sigs);
  const char *headers[] = {
      "Content-Type: application/json", "User-Agent: genq-webhooks/1", h_id, h_ts, h_sig, NULL};
  httpc_request req = {
      .method = "POST",
      .url = d->url,
      .headers = headers,
      .body = d->payload,
      .body_len = strlen(d->payload),
      .body_borrowed = 1,
      .timeout_ms = WH_TIMEOUT_MS,
      .connect_timeout_ms = WH_CONNECT_TIMEOUT_MS,
      .max_response_bytes = WH_RESPONSE_MAX,
      .truncate_response = 1,
      .resolve = d->u.literal ? NULL : d->resolve,
      .protocols = wh->w->cfg.webhook_allow_http ? "http,https" : "https",
      .no_proxy = 1,
      .addr_ok = wh_addr_ok,
      .addr_ok_arg = wh,
  };
  int rc = httpc_send(wh->http, &req, wh_answered, d, &d->xfer);
  OPENSSL_cleanse(h_sig, sizeof h_sig);
  OPENSSL_cleanse(sigs, sizeof sigs);
  if (rc != 0) {
    wh_record(d, "retry", 0, "the request could not be started");
    return;
  }
  d->sending = 1;
}

/* ---- the address ---- */

static void wh_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

static void wh_resolve(wh_delivery *d) {
  webhooks *wh = d->wh;
  char port[8];
  snprintf(port, sizeof port, "%d", d->u.port);
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
  d->gai.data = d;
  if (uv_getaddrinfo(wh->w->loop, &d->gai, wh_resolved, d->u.host, port, &hints) != 0) {
    wh_record(d, "retry", 0, "the resolver could not be started");
    return;
  }
  d->resolving = 1;
  wh->resolving++;
}

/* A resolution ended: the next waiting one starts. */
static void wh_resolve_next(webhooks *wh) {
  wh->resolving--;
  while (!wh->closing && wh->wait_head && wh->resolving < WH_RESOLVE_MAX) {
    wh_delivery *d = wh->wait_head;
    wh->wait_head = d->wait_next;
    if (!wh->wait_head) wh->wait_tail = NULL;
    d->waiting = 0;
    d->wait_next = NULL;
    wh_resolve(d);
  }
}

static void wh_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  wh_delivery *d = req->data;
  d->resolving = 0;
  wh_resolve_next(d->wh);
  char why[600];
  if (d->wh->closing) {
    /* canceled by webhooks_stop: the database may be gone already, so the
     * claim is left to its lease */
    uv_freeaddrinfo(res);
    wh_free(d);
    return;
  }
  if (status < 0 || !res) {
    snprintf(why, sizeof why, "cannot resolve %s: %s", d->u.host, uv_strerror(status));
    uv_freeaddrinfo(res);
    wh_record(d, "retry", 0, why);
    return;
  }
  char first[INET6_ADDRSTRLEN] = "";
  int first_v6 = 0;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = "?";
    const void *raw = a->ai_family == AF_INET6
                          ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                          : (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr;
    inet_ntop(a->ai_family, raw, text, sizeof text);
    const char *refused = net_guard_refused_sockaddr(a->ai_addr, &d->wh->allow);
    if (refused) {
      /* any refused address refuses the name: a rebinding name cannot pick */
      snprintf(why, sizeof why, "refused: %s resolves to %s, %s", d->u.host, text, refused);
      uv_freeaddrinfo(res);
      wh_record(d, "refused", 0, why);
      return;
    }
    if (!first[0]) {
      snprintf(first, sizeof first, "%s", text);
      first_v6 = a->ai_family == AF_INET6;
    }
  }
  uv_freeaddrinfo(res);
  snprintf(d->resolve, sizeof d->resolve, first_v6 ? "%s:%d:[%s]" : "%s:%d:%s", d->u.host,
           d->u.port, first);
  wh_send(d);
}

/* Checks the URL as it stands now, then finds where to connect. */
static void wh_route(wh_delivery *d) {
  webhooks *wh = d->wh;
  char msg[300], why[400];
  if (wh->closing) { /* from a statement's answer: the database is still there */
    wh_release(d);
    return;
  }
  if (net_guard_url_check(d->url, wh->w->cfg.webhook_allow_http, &wh->allow, &d->u, msg,
                          sizeof msg) < 0) {
    snprintf(why, sizeof why, "refused: webhook_url %s", msg);
    wh_record(d, "refused", 0, why);
    return;
  }
  if (d->u.literal) {
    wh_send(d);
    return;
  }
  if (wh->resolving >= WH_RESOLVE_MAX) {
    d->waiting = 1;
    if (wh->wait_tail)
      wh->wait_tail->wait_next = d;
    else
      wh->wait_head = d;
    wh->wait_tail = d;
    return;
  }
  wh_resolve(d);
}

/* ---- the user's signing secret ---- */

static void wh_secret_stored(const db_result *r, void *arg) {
  wh_delivery *d = arg;
  if (!r->ok || PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
    wh_record(d, "retry", 0, "the signing secret could not be stored");
    return;
  }
  free(d->secrets);
  if (!(d->secrets = strdup(PQgetvalue(r->res, 0, 0)))) {
    wh_record(d, "retry", 0, "out of memory");
    return;
  }
  log_info("webhook signing secret made", LS("user", d->user),
           LS("key_id", d->wh->keys.keys[0].id));
  wh_route(d);
}

/* The user has no secret yet: one is made and stored (a concurrent first
 * one wins), then the delivery goes on with what is stored. */
static void wh_secret_make(wh_delivery *d) {
  webhooks *wh = d->wh;
  unsigned char key[WEBHOOK_KEY_BYTES];
  char sealed[SECRET_SEALED_LEN(WEBHOOK_KEY_BYTES)];
  int ok = RAND_bytes(key, sizeof key) == 1 &&
           secret_box_seal(&wh->keys, d->user, key, sizeof key, sealed, sizeof sealed) == 0;
  OPENSSL_cleanse(key, sizeof key);
  if (!ok) {
    wh_record(d, "retry", 0, "a signing secret could not be made");
    return;
  }
  const char *p[3] = {d->user, wh->keys.keys[0].id, sealed};
  if (db_query(wh->w->db, "select array_to_string(genq_webhook_secret_ensure($1, $2, $3), ' ')", 3,
               p, wh_secret_stored, d) != 0)
    wh_record(d, "retry", 0, "the database is overloaded");
}

/* ---- claims ---- */

static void wh_claim(webhooks *wh);

static char *wh_dup(const db_result *r, int row, int col) {
  return strdup(PQgetvalue(r->res, row, col));
}

static void wh_claimed(const db_result *r, void *arg) {
  webhooks *wh = arg;
  if (!r->ok) {
    log_warn("webhook claim failed", LS("error", r->error));
    wh->claiming = 0;
    wh_maybe_free_all(wh); /* a stop may have waited for this answer */
    return;
  }
  int rows = PQntuples(r->res);
  for (int i = 0; i < rows; i++) {
    wh_delivery *d = calloc(1, sizeof *d);
    if (!d) break; /* what is claimed comes back with its lease */
    d->wh = wh;
    d->next = wh->list;
    if (wh->list) wh->list->prev = d;
    wh->list = d;
    wh->n++;
    snprintf(d->id, sizeof d->id, "%s", PQgetvalue(r->res, i, 0));
    snprintf(d->msg_id, sizeof d->msg_id, "%s", PQgetvalue(r->res, i, 1));
    d->user = wh_dup(r, i, 2);
    d->url = wh_dup(r, i, 3);
    d->payload = wh_dup(r, i, 4);
    d->attempt = atoi(PQgetvalue(r->res, i, 5));
    d->secrets = wh_dup(r, i, 6);
    if (!d->user || !d->url || !d->payload || !d->secrets) {
      wh_free(d);
      continue;
    }
    if (wh->closing)
      wh_release(d);
    else if (!d->secrets[0])
      wh_secret_make(d);
    else
      wh_route(d);
  }
  wh->claiming = 0; /* only now: a wh_free above must not free wh under this loop */
  if (wh->closing)
    wh_maybe_free_all(wh);
  else if (rows == WH_CLAIM_MAX)
    wh_claim(wh); /* more may be due */
}

static void wh_claim(webhooks *wh) {
  worker *w = wh->w;
  if (wh->closing || wh->claiming || worker_stopping(w)) return;
  int room = WH_INFLIGHT_MAX - wh->n;
  if (room <= 0) return;
  char lim[16], lease[16];
  snprintf(lim, sizeof lim, "%d", room < WH_CLAIM_MAX ? room : WH_CLAIM_MAX);
  snprintf(lease, sizeof lease, "%d", WH_LEASE_S);
  const char *p[3] = {w->id, lim, lease};
  wh->claiming = 1;
  if (db_query(w->db,
               "select id, webhook_id, user_id, url, payload, attempt,"
               " array_to_string(secrets, ' ') from genq_webhooks_claim($1, $2::int, $3::int)",
               3, p, wh_claimed, wh) != 0)
    wh->claiming = 0;
}

static void wh_tick(uv_timer_t *t) {
  wh_claim(t->data);
}

static void wh_timer_closed(uv_handle_t *h) {
  webhooks *wh = h->data;
  wh->timer_closed = 1;
  wh_maybe_free_all(wh);
}

void webhooks_start(worker *w) {
  genq_config *c = &w->cfg;
  if (!c->secrets_key) {
    log_warn("completion webhooks off: this worker delivers none",
             LS("missing", "GENQ_SECRETS_KEY"));
    return;
  }
  webhooks *wh = calloc(1, sizeof *wh);
  char err[256] = "out of memory";
  if (!wh || httpc_new(&wh->http, w->loop) != 0 ||
      secret_keyring_parse(&wh->keys, c->secrets_key, c->secrets_key_previous, err, sizeof err) !=
          0 ||
      net_guard_nets_parse(c->webhook_allow_nets, &wh->allow, err, sizeof err) != 0) {
    log_error("completion webhooks cannot start: this worker delivers none", LS("error", err));
    if (wh && wh->http) httpc_close(wh->http);
    free(wh);
    return;
  }
  wh->w = w;
  w->webhooks = wh;
  uv_timer_init(w->loop, &wh->timer);
  wh->timer.data = wh;
  uv_timer_start(&wh->timer, wh_tick, (uint64_t)c->webhook_poll_ms, (uint64_t)c->webhook_poll_ms);
  uv_unref((uv_handle_t *)&wh->timer);
  log_info("completion webhooks on", LS("key_id", wh->keys.keys[0].id),
           LI("previous_keys", wh->keys.n - 1), LI("allow_http", c->webhook_allow_http),
           LS("allow_nets", c->webhook_allow_nets ? c->webhook_allow_nets : ""),
           LI("retry_base_ms", c->webhook_retry_base_ms));
}

void webhooks_stop(worker *w) {
  webhooks *wh = w->webhooks;
  if (!wh || wh->closing) return;
  wh->closing = 1;
  w->webhooks = NULL;
  uv_close((uv_handle_t *)&wh->timer, wh_timer_closed);
  for (wh_delivery *d = wh->list; d; d = d->next)
    if (d->resolving) uv_cancel((uv_req_t *)&d->gai);
  while (wh->wait_head) { /* never resolved: handed back */
    wh_delivery *d = wh->wait_head;
    wh->wait_head = d->wait_next;
    d->waiting = 0;
    wh_release(d);
  }
  wh->wait_tail = NULL;
  httpc_close(wh->http); /* each POST in flight is answered "aborted": handed back */
  wh->http = NULL;
}
