/* Hedra v3 client (see hedra.h): upload, submit, status, result; validate
 * and classify every answer. */
#include "hedra.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "provider_http.h"
#include "provider_text.h"

/* Signed file URLs run to a few KiB; past this it is not a URL we fetch. */
#define HEDRA_MAX_URL 8192
#define HEDRA_MAX_FILENAME 200

static const char *const hedra_states[] = {"IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED"};

typedef struct {
  hedra_cb cb;
  void *arg;
  hedra_op op;
  char job_id[HEDRA_MAX_ID + 1];
  char api_key[]; /* only to scrub it from provider messages */
} hedra_call;

/* Hedra's error object, read defensively: every field may be missing. */
typedef struct {
  const char *code;
  const char *message;
  int retryable;       /* -1 absent or not a boolean */
  long retry_after_ms; /* -1 absent */
} hedra_err;

static const char *op_name(hedra_op op) {
  switch (op) {
  case HEDRA_OP_UPLOAD:
    return "upload";
  case HEDRA_OP_SUBMIT:
    return "submit";
  case HEDRA_OP_STATUS:
    return "status";
  case HEDRA_OP_RESULT:
    return "result";
  }
  return "?";
}

/* Printable ASCII and nothing else: safe in a header or a multipart part. */
static int printable(const char *s, size_t max, const char *forbidden) {
  size_t n = 0;
  for (; s[n]; n++)
    if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e ||
        strchr(forbidden, s[n]))
      return 0;
  return n > 0;
}

/* "type/subtype" of token characters, with a type Hedra takes as input. */
static int valid_media_type(const char *s) {
  const char *slash = strchr(s, '/');
  if (strncmp(s, "image/", 6) != 0 && strncmp(s, "audio/", 6) != 0 && strncmp(s, "video/", 6) != 0)
    return 0;
  if (!slash[1] || strlen(s) > 100) return 0;
  for (const char *p = slash + 1; *p; p++)
    if (!(isalnum((unsigned char)*p) || strchr("!#$&-^_.+", *p))) return 0;
  return 1;
}

static int known_state(const char *s) {
  for (size_t i = 0; i < sizeof hedra_states / sizeof hedra_states[0]; i++)
    if (!strcmp(s, hedra_states[i])) return 1;
  return 0;
}

/* e: the "error" member, an object (the documented shape) or a bare string. */
static void read_error_value(const cJSON *e, hedra_err *out) {
  out->code = out->message = NULL;
  out->retryable = -1;
  out->retry_after_ms = -1;
  if (cJSON_IsString(e)) {
    out->message = e->valuestring;
    return;
  }
  if (!cJSON_IsObject(e)) return;
  out->code = provider_json_string(e, "code");
  out->message = provider_json_string(e, "message");
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "retryable");
  if (cJSON_IsBool(r)) out->retryable = cJSON_IsTrue(r);
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "retry_after");
  if (cJSON_IsNumber(a) && isfinite(a->valuedouble) && a->valuedouble >= 0)
    out->retry_after_ms = a->valuedouble >= 86400 ? 86400000L : (long)ceil(a->valuedouble * 1000);
}

/* ---- pure parts ---- */

int hedra_is_moderation(const char *code, const char *message) {
  return (code && !strcmp(code, "MODERATION_FAILED")) || provider_is_moderation(message);
}

int hedra_classify_error(int status, const char *body, size_t len, const char **code,
                         int *moderation, long *retry_after_ms, char *msg, size_t msglen) {
  cJSON *root = provider_json_object(body, len, HEDRA_MAX_RESPONSE);
  hedra_err e;
  int retryable = provider_status_error(status, code), forced = 0;
  read_error_value(cJSON_GetObjectItemCaseSensitive(root, "error"), &e);
  const char *ec = e.code ? e.code : "";

  if (status == 402) {
    *code = "provider_insufficient_balance";
    forced = 1;
  } else if (status == 409) {
    *code = "provider_conflict";
  }
  /* Hedra's code says more than the status when the two disagree. */
  if (!strcmp(ec, "RESOURCE_EXHAUSTED")) {
    *code = "provider_rate_limited";
    retryable = 1;
  } else if (!strcmp(ec, "UNAVAILABLE") || !strcmp(ec, "INTERNAL")) {
    *code = "provider_unavailable";
    retryable = 1;
  } else if (!strcmp(ec, "INSUFFICIENT_BALANCE")) {
    *code = "provider_insufficient_balance";
    retryable = 0;
    forced = 1; /* only an operator's top-up helps: retrying burns attempts */
  } else if (!strcmp(ec, "UNAUTHORIZED")) {
    *code = "provider_auth";
    retryable = 0;
  } else if (!strcmp(ec, "INVALID_ARGUMENT")) {
    *code = "provider_invalid_request";
    retryable = 0;
  }
  /* The words of a message count only where a refusal is plausible: a 429
   * "rate limit policy" is no moderation. */
  int refusal = (status == 400 || status == 422) && (!e.code || !strcmp(ec, "INVALID_ARGUMENT"));
  *moderation = hedra_is_moderation(e.code, refusal ? e.message : NULL);
  if (*moderation) {
    *code = "provider_moderation";
    retryable = 0;
    forced = 1; /* the same input is refused again */
  }
  if (!forced && e.retryable >= 0) retryable = e.retryable;
  if (e.retry_after_ms >= 0) *retry_after_ms = e.retry_after_ms;

  snprintf(msg, msglen, "Hedra HTTP %d%s%.40s: %.300s", status, e.code ? " " : "",
           e.code ? e.code : "", e.message && *e.message ? e.message : "(no error message)");
  cJSON_Delete(root);
  return retryable;
}

static int add_string(cJSON *o, const char *name, const char *v) {
  return !v || cJSON_AddStringToObject(o, name, v) ? 0 : -1;
}

static int add_url_source(cJSON *input, const char *name, const char *url) {
  cJSON *o = cJSON_AddObjectToObject(input, name);
  if (!o) return -1;
  return add_string(o, "source", "url") | add_string(o, "url", url);
}

char *hedra_submit_body(const hedra_submit_req *s) {
  if (!s || !s->image_url || !provider_url_ok(s->image_url, HEDRA_MAX_URL) || !s->audio_url ||
      !provider_url_ok(s->audio_url, HEDRA_MAX_URL) || !s->idempotency_key ||
      !printable(s->idempotency_key, HEDRA_MAX_IDEMPOTENCY_KEY, ""))
    return NULL;
  cJSON *root = cJSON_CreateObject();
  cJSON *input = root ? cJSON_AddObjectToObject(root, "input") : NULL;
  char *out = NULL;
  int rc = input ? 0 : -1;
  rc |= add_string(input, "prompt", s->prompt);
  rc |= add_string(input, "aspect_ratio", s->aspect_ratio);
  rc |= add_string(input, "resolution", s->resolution);
  rc |= add_url_source(input, "start_image", s->image_url);
  rc |= add_url_source(input, "audio", s->audio_url);
  rc |= add_string(root, "idempotency_key", s->idempotency_key);
  if (rc == 0) out = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return out;
}

/* The job id and status of a submit, status or result body. need_status:
 * the status must be there. Returns 0 or -1 with a reason in err. */
static int read_job(const cJSON *root, hedra_result *r, int need_status, char *err, size_t errlen) {
  const cJSON *jid = cJSON_GetObjectItemCaseSensitive(root, "job_id");
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
  if (jid && !cJSON_IsNull(jid)) {
    if (!cJSON_IsString(jid) || !provider_id_ok(jid->valuestring, HEDRA_MAX_ID)) {
      snprintf(err, errlen, "invalid job_id");
      return -1;
    }
    r->job_id = jid->valuestring;
  }
  if (!st || cJSON_IsNull(st)) {
    if (!need_status) return 0;
    snprintf(err, errlen, "missing status");
    return -1;
  }
  if (!cJSON_IsString(st)) {
    snprintf(err, errlen, "status is not a string");
    return -1;
  }
  if (!known_state(st->valuestring)) {
    snprintf(err, errlen, "unknown status \"%.40s\"", st->valuestring);
    return -1;
  }
  r->state = st->valuestring;
  return 0;
}

/* A FAILED job: why, from the job's error or its first output's error. */
static void read_failure(hedra_reply *rep, const cJSON *root) {
  hedra_result *r = &rep->r;
  hedra_err e;
  read_error_value(cJSON_GetObjectItemCaseSensitive(root, "error"), &e);
  if (!e.code && !e.message) {
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    read_error_value(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(outs, 0), "error"), &e);
  }
  r->moderation = hedra_is_moderation(e.code, e.message);
  r->code = r->moderation ? "provider_moderation" : "provider_generation_failed";
  r->retryable = r->moderation ? 0 : e.retryable >= 0 ? e.retryable : 1;
  if (e.retry_after_ms >= 0) r->retry_after_ms = e.retry_after_ms;
  snprintf(rep->msg, sizeof rep->msg, "Hedra job %s failed%s%.40s: %.300s",
           r->job_id ? r->job_id : "?", e.code ? " " : "", e.code ? e.code : "",
           e.message && *e.message ? e.message : "(no reason)");
}

/* A 2xx body of op. Returns 0, or -1 with a reason in err. */
static int read_body(hedra_reply *rep, hedra_op op, const httpc_response *resp, char *err,
                     size_t errlen) {
  hedra_result *r = &rep->r;
  cJSON *root = rep->root = provider_json_object(resp->body, resp->body_len, HEDRA_MAX_RESPONSE);
  if (!root) {
    snprintf(err, errlen, "body is not a JSON object");
    return -1;
  }
  if (op == HEDRA_OP_UPLOAD) {
    const char *url = provider_json_string(root, "url");
    if (!url || !provider_url_ok(url, HEDRA_MAX_URL)) {
      snprintf(err, errlen, "missing or invalid url");
      return -1;
    }
    r->url = url;
    r->output_content_type = provider_json_string(root, "content_type");
    return 0;
  }
  if (read_job(root, r, op != HEDRA_OP_SUBMIT, err, errlen) != 0) return -1;
  if (op == HEDRA_OP_SUBMIT && !r->job_id) {
    snprintf(err, errlen, "missing job_id");
    return -1;
  }
  if (op == HEDRA_OP_STATUS) {
    /* Progress is cosmetic: a strange value does not fail the poll. */
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "progress");
    if (cJSON_IsNumber(p) && isfinite(p->valuedouble))
      r->progress = p->valuedouble < 0 ? 0 : p->valuedouble > 1 ? 1 : p->valuedouble;
  }
  if (op == HEDRA_OP_RESULT && r->state && !strcmp(r->state, "COMPLETED")) {
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    const cJSON *list = cJSON_IsArray(outs) ? outs : NULL;
    const cJSON *o;
    cJSON_ArrayForEach(o, list) {
      const char *url = provider_json_string(o, "url");
      if (url && provider_url_ok(url, HEDRA_MAX_URL)) {
        r->output_url = url;
        r->output_content_type = provider_json_string(o, "content_type");
        break;
      }
    }
    if (!r->output_url) {
      snprintf(err, errlen, "COMPLETED without an output URL");
      return -1;
    }
  }
  return 0;
}

void hedra_reply_read(hedra_reply *rep, hedra_op op, const httpc_response *resp) {
  memset(rep, 0, sizeof *rep);
  hedra_result *r = &rep->r;
  r->retry_after_ms = resp->retry_after_ms;
  r->status = resp->status;
  r->request_id = resp->request_id;
  r->progress = -1;

  if (provider_transfer_failed(resp, "Hedra", op_name(op), HEDRA_MAX_RESPONSE, &r->code, rep->msg,
                               sizeof rep->msg)) {
    r->retryable = 1;
  } else if (resp->status < 200 || resp->status >= 300) {
    r->retryable =
        hedra_classify_error(resp->status, resp->body, resp->body_len, &r->code, &r->moderation,
                             &r->retry_after_ms, rep->msg, sizeof rep->msg);
  } else {
    char err[200];
    if (read_body(rep, op, resp, err, sizeof err) != 0) {
      /* Keep no half-read field: a bad body says nothing. */
      hedra_result keep = {.status = r->status, .request_id = r->request_id};
      keep.retry_after_ms = r->retry_after_ms;
      keep.progress = -1;
      *r = keep;
      r->code = "provider_bad_response";
      r->retryable = 1;
      snprintf(rep->msg, sizeof rep->msg, "Hedra %s: bad response: %s", op_name(op), err);
    } else if (r->state && !strcmp(r->state, "FAILED")) {
      read_failure(rep, rep->root);
    } else {
      r->ok = 1;
    }
  }
  if (r->ok) snprintf(rep->msg, sizeof rep->msg, "ok");
  r->message = rep->msg;
}

void hedra_reply_free(hedra_reply *rep) {
  cJSON_Delete(rep->root);
  rep->root = NULL;
}

/* ---- transfers ---- */

static void on_response(const httpc_response *resp, void *arg) {
  hedra_call *call = arg;
  hedra_reply rep;
  hedra_reply_read(&rep, call->op, resp);
  provider_scrub_secret(rep.msg, sizeof rep.msg, call->api_key);
  log_debug("hedra response", LS("op", op_name(call->op)), LI("status", resp->status),
            LS("provider_request_id", resp->request_id),
            LS("hedra_job_id", rep.r.job_id ? rep.r.job_id : call->job_id),
            LS("state", rep.r.state), LS("code", rep.r.code), LD("ms", resp->total_ms));
  call->cb(&rep.r, call->arg);
  hedra_reply_free(&rep);
  free(call);
}

/* One request to {base_url}{path}. req carries method, body and the
 * multipart fields; the rest is set here and by provider_send. */
static int hedra_send(httpc *h, const hedra_opts *o, hedra_op op, const char *path,
                      const char *job_id, httpc_request *req, hedra_cb cb, void *arg,
                      uint64_t *xfer) {
  if (!h || !o || !o->base_url || !o->api_key || !cb) return -1;
  if (*o->api_key && !printable(o->api_key, 4096, "")) return -1;
  size_t klen = strlen(o->api_key);
  hedra_call *call = calloc(1, sizeof *call + klen + 1);
  if (!call) return -1;
  memcpy(call->api_key, o->api_key, klen);
  call->cb = cb;
  call->arg = arg;
  call->op = op;
  snprintf(call->job_id, sizeof call->job_id, "%s", job_id ? job_id : "");
  /* No key configured: no header, and Hedra's 401 says so (provider_auth). */
  provider_target t = {.base_url = o->base_url,
                       .path = path,
                       .auth_scheme = "Key",
                       .api_key = o->api_key,
                       .stats = o->stats};
  req->timeout_ms = o->timeout_ms;
  req->max_response_bytes = HEDRA_MAX_RESPONSE;
  if (provider_send(h, &t, req, on_response, call, xfer) == 0) return 0;
  free(call);
  return -1;
}

int hedra_upload(httpc *h, const hedra_opts *o, const char *data, size_t len,
                 const char *content_type, const char *filename, hedra_cb cb, void *arg,
                 uint64_t *xfer) {
  if (!data || len == 0 || !content_type || !valid_media_type(content_type)) return -1;
  size_t max = !strncmp(content_type, "image/", 6) ? HEDRA_MAX_IMAGE_UPLOAD : HEDRA_MAX_UPLOAD;
  if (len > max) return -1;
  if (!filename) filename = "upload";
  if (!printable(filename, HEDRA_MAX_FILENAME, "\"\\/")) return -1;
  httpc_request req = {
      .method = "POST",
      .body = data,
      .body_len = len,
      .mime_field = "file",
      .mime_filename = filename,
      .mime_type = content_type,
  };
  return hedra_send(h, o, HEDRA_OP_UPLOAD, "/files", NULL, &req, cb, arg, xfer);
}

int hedra_submit(httpc *h, const hedra_opts *o, const hedra_submit_req *s, hedra_cb cb, void *arg,
                 uint64_t *xfer) {
  char *body = hedra_submit_body(s);
  if (!body) return -1;
  httpc_request req = {.method = "POST", .body = body, .body_len = strlen(body)};
  int rc =
      hedra_send(h, o, HEDRA_OP_SUBMIT, "/models/hedra-character-3", NULL, &req, cb, arg, xfer);
  cJSON_free(body);
  return rc;
}

static int hedra_job_get(httpc *h, const hedra_opts *o, hedra_op op, const char *job_id,
                         hedra_cb cb, void *arg, uint64_t *xfer) {
  char path[HEDRA_MAX_ID + 32];
  if (!job_id || !provider_id_ok(job_id, HEDRA_MAX_ID)) return -1;
  snprintf(path, sizeof path, "/jobs/%s%s", job_id, op == HEDRA_OP_STATUS ? "/status" : "");
  httpc_request req = {.method = "GET"};
  return hedra_send(h, o, op, path, job_id, &req, cb, arg, xfer);
}

int hedra_status(httpc *h, const hedra_opts *o, const char *job_id, hedra_cb cb, void *arg,
                 uint64_t *xfer) {
  return hedra_job_get(h, o, HEDRA_OP_STATUS, job_id, cb, arg, xfer);
}

int hedra_get_result(httpc *h, const hedra_opts *o, const char *job_id, hedra_cb cb, void *arg,
                     uint64_t *xfer) {
  return hedra_job_get(h, o, HEDRA_OP_RESULT, job_id, cb, arg, xfer);
}
