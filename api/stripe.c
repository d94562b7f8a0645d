/* stripe.c — POST /v1/webhooks/stripe: Stripe's events (SPEC §6).
 *
 * No bearer token: the Stripe-Signature header is the capability
 * (stripe_sign.h), checked over the raw body, byte for byte, with every
 * secret of STRIPE_WEBHOOK_SECRET. A verified event goes to
 * genq_stripe_event (schema/functions/stripe.sql) as one call: purchases,
 * refunds, debts and subscriptions all move there, in one transaction,
 * so a redelivered or concurrent event is safe. Answers: 200
 * {"received":true,"outcome":…} for an event applied or ignored (an event
 * type genq does not handle); 400 invalid_signature, signature_expired,
 * invalid_json or invalid_event (its message names the field), changing
 * nothing; 503 stripe_disabled while no secret is configured, and 503 or
 * 500 when the database fails (Stripe delivers again). The signature is
 * never logged. */
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "stripe_sign.h"

/* the answer of genq_stripe_event: 200 with its outcome, or the error */
static void event_done(const db_result *r, void *arg) {
  http_request *req = arg;
  if (!r->ok) {
    const char *st = r->sqlstate ? r->sqlstate : "";
    if (strcmp(st, "GQ400") == 0) {
      log_warn("stripe event refused", LS("request_id", http_req_id(req)),
               LS("error", r->message ? r->message : ""));
      api_reply_error(req, 400, "invalid_event",
                      r->message && *r->message ? r->message : "event refused", NULL);
    } else if (strcmp(st, "22P02") == 0 || strcmp(st, "22P05") == 0 || strcmp(st, "22025") == 0) {
      /* JSON that PostgreSQL's jsonb refuses (\u0000, a bad escape) */
      api_reply_error(req, 400, "invalid_json", "the body is not JSON genq can store", NULL);
    } else {
      api_reply_db_error(req, r);
    }
    return;
  }
  const char *v = PQntuples(r->res) == 1 ? PQgetvalue(r->res, 0, 0) : "";
  cJSON *out = cJSON_Parse(v);
  const cJSON *ev = cJSON_GetObjectItemCaseSensitive(out, "event");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(out, "type");
  const cJSON *outcome = cJSON_GetObjectItemCaseSensitive(out, "outcome");
  log_info("stripe event", LS("request_id", http_req_id(req)),
           LS("event_id", cJSON_IsString(ev) ? ev->valuestring : ""),
           LS("type", cJSON_IsString(type) ? type->valuestring : ""),
           LS("outcome", cJSON_IsString(outcome) ? outcome->valuestring : ""));
  cJSON *reply = cJSON_CreateObject();
  cJSON_AddBoolToObject(reply, "received", 1);
  cJSON_AddStringToObject(reply, "outcome", cJSON_IsString(outcome) ? outcome->valuestring : "");
  cJSON_Delete(out);
  api_reply_json(req, 200, reply);
}

void api_webhook_stripe(api_ctx *ctx, http_request *req) {
  const char *secrets = ctx->cfg.stripe_webhook_secret;
  if (!secrets || !*secrets) {
    api_reply_error(req, 503, "stripe_disabled",
                    "Stripe webhooks are off: STRIPE_WEBHOOK_SECRET is not set", NULL);
    return;
  }
  size_t len = 0;
  const char *body = http_req_body(req, &len);
  long long t = 0;
  stripe_sign_status s =
      stripe_sign_verify(http_req_header(req, "Stripe-Signature"), secrets, body, len,
                         (long long)time(NULL), STRIPE_SIGN_TOLERANCE_S, &t);
  if (s != STRIPE_SIGN_OK) {
    log_warn("stripe signature refused", LS("request_id", http_req_id(req)),
             LS("reason", stripe_sign_status_name(s)), LI("t", t));
    /* a refusal of an unauthenticated caller: counted per address (limits.c) */
    if (s == STRIPE_SIGN_STALE)
      api_ip_refuse(ctx, req, 400, "signature_expired",
                    "Stripe-Signature: t is more than 300 s away from now", NULL);
    else if (s == STRIPE_SIGN_MALFORMED)
      api_ip_refuse(ctx, req, 400, "invalid_signature",
                    "Stripe-Signature: missing or malformed (t=…,v1=…)", NULL);
    else
      api_ip_refuse(ctx, req, 400, "invalid_signature", "Stripe-Signature: no v1 signature matches",
                    NULL);
    return;
  }
  /* a body PostgreSQL would cut at a NUL byte, or that is no JSON object */
  cJSON *ev = memchr(body, 0, len) ? NULL : cJSON_ParseWithLength(body, len);
  int object = cJSON_IsObject(ev);
  cJSON_Delete(ev);
  if (!object) {
    api_reply_error(req, 400, "invalid_json", "the body must be a JSON object (a Stripe event)",
                    NULL);
    return;
  }
  const char *params[1] = {body};
  if (db_query(ctx->db, "select genq_stripe_event($1::jsonb)", 1, params, event_done, req) != 0) {
    static const char *const retry[] = {"Retry-After: 1", NULL};
    api_reply_error(req, 503, "unavailable", "the database is overloaded", retry);
  }
}
