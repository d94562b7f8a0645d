/* Luma AI Dream Machine client (see luma.h): create, poll and delete
 * generations; validate and classify every answer. */
#include "luma.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "provider_http.h"
#include "provider_text.h"

/* Signed asset URLs run to a few KiB; past this it is not a URL we fetch. */
#define LUMA_MAX_ASSET_URL 8192

static const char *const luma_states[] = {"queued", "dreaming", "completed", "failed"};

typedef struct {
  luma_cb cb;
  void *arg;
  luma_op op;
  char id[LUMA_MAX_ID + 1];
  char api_key[]; /* only to scrub it from provider messages */
} luma_call;

static const char *op_name(luma_op op) {
  switch (op) {
  case LUMA_OP_CREATE_VIDEO:
    return "create_video";
  case LUMA_OP_CREATE_IMAGE:
    return "create_image";
  case LUMA_OP_GET:
    return "get";
  case LUMA_OP_DELETE:
    return "delete";
  }
  return "?";
}

/* A header value must not smuggle a line break into the request. */
static int valid_header_value(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
  return 1;
}

/* ---- pure parts ---- */

void luma_generation_free(luma_generation *g) {
  if (!g) return;
  cJSON_Delete(g->root);
  memset(g, 0, sizeof *g);
}

int luma_parse_generation(const char *body, size_t len, luma_generation *out, char *err,
                          size_t errlen) {
  memset(out, 0, sizeof *out);
  if (len > LUMA_MAX_RESPONSE) {
    snprintf(err, errlen, "body of %zu bytes is larger than %u", len, LUMA_MAX_RESPONSE);
    return -1;
  }
  cJSON *root = provider_json_object(body, len, LUMA_MAX_RESPONSE);
  if (!root) {
    snprintf(err, errlen, "body is not a JSON object");
    return -1;
  }
  const char *id = provider_json_string(root, "id");
  const char *state = provider_json_string(root, "state");
  const char *type = provider_json_string(root, "generation_type");
  int known = 0;
  if (!id || !provider_id_ok(id, LUMA_MAX_ID)) {
    snprintf(err, errlen, "missing or invalid id");
    goto fail;
  }
  if (!state) {
    snprintf(err, errlen, "missing state");
    goto fail;
  }
  for (size_t i = 0; i < sizeof luma_states / sizeof luma_states[0]; i++)
    known |= !strcmp(state, luma_states[i]);
  if (!known) {
    snprintf(err, errlen, "unknown state \"%.40s\"", state);
    goto fail;
  }
  if (type && strcmp(type, "video") != 0 && strcmp(type, "image") != 0) {
    snprintf(err, errlen, "unknown generation_type \"%.40s\"", type);
    goto fail;
  }
  out->failure_reason = provider_json_string(root, "failure_reason");
  if (!strcmp(state, "completed")) {
    const cJSON *assets = cJSON_GetObjectItemCaseSensitive(root, "assets");
    /* Without generation_type: the image only when no video is named. */
    const cJSON *video = cJSON_GetObjectItemCaseSensitive(assets, "video");
    const char *which = type ? type
                        : (!video || cJSON_IsNull(video)) && provider_json_string(assets, "image")
                            ? "image"
                            : "video";
    const char *url = provider_json_string(assets, which);
    if (!url || !provider_url_ok(url, LUMA_MAX_ASSET_URL)) {
      snprintf(err, errlen, "completed without a usable assets.%s URL", which);
      goto fail;
    }
    out->asset_url = url;
  }
  out->root = root;
  out->id = id;
  out->state = state;
  out->generation_type = type;
  return 0;
fail:
  cJSON_Delete(root);
  memset(out, 0, sizeof *out);
  return -1;
}

int luma_is_moderation(const char *reason) {
  return provider_is_moderation(reason);
}

/* Luma errors are {"detail": "..."}; validation errors come FastAPI-style
 * as {"detail": [{"loc", "msg", "type"}]}. */
static void read_detail(const char *body, size_t len, char *out, size_t outlen) {
  cJSON *root = provider_json_object(body, len, LUMA_MAX_RESPONSE);
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "detail");
  const char *s = NULL;
  if (cJSON_IsString(d))
    s = d->valuestring;
  else if (cJSON_IsArray(d))
    s = provider_json_string(cJSON_GetArrayItem(d, 0), "msg");
  if (!s) s = provider_json_string(root, "message");
  snprintf(out, outlen, "%.300s", s && *s ? s : "(no error detail)");
  cJSON_Delete(root);
}

int luma_classify_error(int status, const char *body, size_t len, const char **code,
                        int *moderation, char *msg, size_t msglen) {
  char detail[320];
  int retryable = provider_status_error(status, code);
  read_detail(body, len, detail, sizeof detail);
  /* Luma refuses some prompts up front with a 400 naming moderation. */
  *moderation = (status == 400 || status == 422) && luma_is_moderation(detail);
  if (*moderation) *code = "provider_moderation";
  snprintf(msg, msglen, "Luma HTTP %d: %s", status, detail);
  return retryable;
}

void luma_reply_read(luma_reply *rep, luma_op op, const httpc_response *resp) {
  memset(rep, 0, sizeof *rep);
  luma_result *r = &rep->r;
  r->retry_after_ms = resp->retry_after_ms;
  r->status = resp->status;
  r->request_id = resp->request_id;
  int ok_status = resp->status >= 200 && resp->status < 300;

  if (provider_transfer_failed(resp, "Luma", op_name(op), LUMA_MAX_RESPONSE, &r->code, rep->msg,
                               sizeof rep->msg)) {
    r->retryable = 1;
  } else if (op == LUMA_OP_DELETE && (ok_status || resp->status == 404)) {
    r->ok = 1; /* 404: already gone, which is what a delete wants */
  } else if (!ok_status) {
    r->retryable = luma_classify_error(resp->status, resp->body, resp->body_len, &r->code,
                                       &r->moderation, rep->msg, sizeof rep->msg);
  } else {
    char err[200];
    if (luma_parse_generation(resp->body, resp->body_len, &rep->gen, err, sizeof err) != 0) {
      r->code = "provider_bad_response";
      r->retryable = 1;
      snprintf(rep->msg, sizeof rep->msg, "Luma %s: bad Generation: %s", op_name(op), err);
    } else {
      r->id = rep->gen.id;
      r->state = rep->gen.state;
      r->failure_reason = rep->gen.failure_reason;
      r->asset_url = rep->gen.asset_url;
      if (!strcmp(r->state, "failed")) {
        r->moderation = luma_is_moderation(r->failure_reason);
        r->code = r->moderation ? "provider_moderation" : "provider_generation_failed";
        r->retryable = !r->moderation;
        snprintf(rep->msg, sizeof rep->msg, "Luma generation %s failed: %.300s", r->id,
                 r->failure_reason && *r->failure_reason ? r->failure_reason : "(no reason)");
      } else {
        r->ok = 1;
      }
    }
  }
  if (r->ok) snprintf(rep->msg, sizeof rep->msg, "ok");
  r->message = rep->msg;
}

void luma_reply_free(luma_reply *rep) {
  luma_generation_free(&rep->gen);
}

static int add_string(cJSON *o, const char *name, const char *v) {
  return !v || cJSON_AddStringToObject(o, name, v) ? 0 : -1;
}

char *luma_create_body(const luma_create *c, int video) {
  if (!c || !c->model || !*c->model || !c->prompt || !*c->prompt) return NULL;
  if (c->keyframe_url && (!video || !provider_url_ok(c->keyframe_url, LUMA_MAX_ASSET_URL)))
    return NULL;
  if (c->callback_url && !provider_url_ok(c->callback_url, LUMA_MAX_ASSET_URL)) return NULL;
  cJSON *root = cJSON_CreateObject();
  char *s = NULL;
  int rc = root ? 0 : -1;
  rc |= add_string(root, "model", c->model);
  rc |= add_string(root, "prompt", c->prompt);
  rc |= add_string(root, "aspect_ratio", c->aspect_ratio);
  if (video) {
    rc |= add_string(root, "duration", c->duration);
    rc |= add_string(root, "resolution", c->resolution);
    if (c->keyframe_url) {
      cJSON *kf = cJSON_AddObjectToObject(root, "keyframes");
      cJSON *f0 = kf ? cJSON_AddObjectToObject(kf, "frame0") : NULL;
      rc |= f0 ? 0 : -1;
      rc |= add_string(f0, "type", "image");
      rc |= add_string(f0, "url", c->keyframe_url);
    }
  } else {
    rc |= add_string(root, "format", c->format);
  }
  rc |= add_string(root, "callback_url", c->callback_url);
  if (rc == 0) s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return s;
}

/* ---- transfers ---- */

static void on_response(const httpc_response *resp, void *arg) {
  luma_call *call = arg;
  luma_reply rep;
  luma_reply_read(&rep, call->op, resp);
  provider_scrub_secret(rep.msg, sizeof rep.msg, call->api_key);
  log_debug("luma response", LS("op", op_name(call->op)), LI("status", resp->status),
            LS("provider_request_id", resp->request_id),
            LS("generation_id", rep.r.id ? rep.r.id : call->id), LS("state", rep.r.state),
            LS("code", rep.r.code), LD("ms", resp->total_ms));
  call->cb(&rep.r, call->arg);
  luma_reply_free(&rep);
  free(call);
}

/* One request to {base_url}{path}{id}. body: NULL or JSON. */
static int luma_send(httpc *h, const luma_opts *o, luma_op op, const char *method, const char *path,
                     const char *id, const char *body, luma_cb cb, void *arg, uint64_t *xfer) {
  if (!h || !o || !o->base_url || !o->api_key || !cb) return -1;
  if (!valid_header_value(o->api_key)) return -1;
  char full[LUMA_MAX_ID + 64];
  snprintf(full, sizeof full, "%s%s", path, id ? id : "");
  size_t klen = strlen(o->api_key);
  luma_call *call = calloc(1, sizeof *call + klen + 1);
  if (!call) return -1;
  memcpy(call->api_key, o->api_key, klen);
  call->cb = cb;
  call->arg = arg;
  call->op = op;
  snprintf(call->id, sizeof call->id, "%s", id ? id : "");
  /* No key configured: no header, and Luma's 401 says so (provider_auth). */
  provider_target t = {.base_url = o->base_url,
                       .path = full,
                       .auth_scheme = "Bearer",
                       .api_key = o->api_key,
                       .stats = o->stats};
  httpc_request req = {
      .method = method,
      .body = body,
      .body_len = body ? strlen(body) : 0,
      .timeout_ms = o->timeout_ms,
      .max_response_bytes = LUMA_MAX_RESPONSE,
  };
  if (provider_send(h, &t, &req, on_response, call, xfer) == 0) return 0;
  free(call);
  return -1;
}

static int luma_create_any(httpc *h, const luma_opts *o, const luma_create *c, int video,
                           luma_cb cb, void *arg, uint64_t *xfer) {
  char *body = luma_create_body(c, video);
  if (!body) return -1;
  int rc =
      luma_send(h, o, video ? LUMA_OP_CREATE_VIDEO : LUMA_OP_CREATE_IMAGE, "POST",
                video ? "/generations/video" : "/generations/image", NULL, body, cb, arg, xfer);
  cJSON_free(body);
  return rc;
}

int luma_create_video(httpc *h, const luma_opts *o, const luma_create *c, luma_cb cb, void *arg,
                      uint64_t *xfer) {
  return luma_create_any(h, o, c, 1, cb, arg, xfer);
}

int luma_create_image(httpc *h, const luma_opts *o, const luma_create *c, luma_cb cb, void *arg,
                      uint64_t *xfer) {
  return luma_create_any(h, o, c, 0, cb, arg, xfer);
}

int luma_get(httpc *h, const luma_opts *o, const char *id, luma_cb cb, void *arg, uint64_t *xfer) {
  if (!id || !provider_id_ok(id, LUMA_MAX_ID)) return -1;
  return luma_send(h, o, LUMA_OP_GET, "GET", "/generations/", id, NULL, cb, arg, xfer);
}

int luma_delete(httpc *h, const luma_opts *o, const char *id, luma_cb cb, void *arg,
                uint64_t *xfer) {
  if (!id || !provider_id_ok(id, LUMA_MAX_ID)) return -1;
  return luma_send(h, o, LUMA_OP_DELETE, "DELETE", "/generations/", id, NULL, cb, arg, xfer);
}
