/* output.c — a provider's output into genq's storage (SPEC §3: provider
 * outputs expire at the provider, so a step counts as done only once its
 * output is stored here). Download bounded by GENQ_ASSET_MAX_BYTES, the
 * bytes' signature checked against the media class the step produces, a
 * SHA-256 recorded, stored under assets/<new id>; the asset row itself is
 * written by genq_step_succeed in the same transaction as the capture. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "media.h"
#include "worker.h"

typedef struct {
  wstep *s;
  output_cb cb;
  char media[8];
  char kind[8];
  char id[37];
  char key[64];
  char type[64];
  char sha[65];
  size_t len;
  char *data;
} fetch_ctx;

static void fail(fetch_ctx *f, int retryable, const char *code, const char *msg) {
  step_result r = {.ok = 0, .retryable = retryable, .code = code, .message = msg};
  wstep *s = f->s;
  output_cb cb = f->cb;
  free(f->data);
  free(f);
  cb(s, NULL, &r);
}

static void stored(const char *err, void *arg) {
  fetch_ctx *f = arg;
  if (err) {
    log_error("asset not stored", LS("job_id", f->s->j->id), LS("step", f->s->name),
              LS("error", err));
    fail(f, 1, "storage_error", "the output could not be stored");
    return;
  }
  cJSON *a = cJSON_CreateObject();
  cJSON_AddStringToObject(a, "id", f->id);
  cJSON_AddStringToObject(a, "kind", f->kind);
  cJSON_AddStringToObject(a, "content_type", f->type);
  cJSON_AddNumberToObject(a, "bytes", (double)f->len);
  cJSON_AddStringToObject(a, "sha256", f->sha);
  cJSON_AddStringToObject(a, "storage_key", f->key);
  log_info("asset stored", LS("job_id", f->s->j->id), LS("step", f->s->name), LS("asset_id", f->id),
           LI("bytes", (long long)f->len));
  wstep *s = f->s;
  output_cb cb = f->cb;
  free(f->data);
  free(f);
  cb(s, a, NULL);
  cJSON_Delete(a);
}

/* Off the loop thread: a large video hashes for a while. */
static void hash_work(uv_work_t *req) {
  fetch_ctx *f = req->data;
  media_sha256_hex(f->data, f->len, f->sha);
}

static void hashed(uv_work_t *req, int status) {
  fetch_ctx *f = req->data;
  free(req);
  if (status != 0 || runner_step_should_stop(f->s)) {
    fail(f, 1, "aborted", "step stopped");
    return;
  }
  snprintf(f->key, sizeof(f->key), "assets/%s", f->id);
  if (storage_put(f->s->j->w->storage, f->key, f->data, f->len, f->type, stored, f) != 0)
    fail(f, 1, "storage_error", "the output could not be stored");
}

static void downloaded(const httpc_response *resp, void *arg) {
  fetch_ctx *f = arg;
  f->s->xfer = 0;
  if (runner_step_should_stop(f->s)) {
    fail(f, 1, "aborted", "step stopped");
    return;
  }
  if (resp->too_large) {
    fail(f, 0, "output_too_large", "the provider's output is larger than GENQ_ASSET_MAX_BYTES");
    return;
  }
  if (resp->status == 0 || resp->status >= 500 || resp->status == 429) {
    fail(f, 1, "provider_unavailable", "the provider's output could not be downloaded");
    return;
  }
  if (resp->status != 200 || resp->body_len == 0) {
    /* an expired or missing output URL: a fresh generation may fix it */
    fail(f, 1, "provider_bad_output", "the provider's output URL did not give the output");
    return;
  }
  const char *sniffed = media_sniff((const unsigned char *)resp->body, resp->body_len);
  const char *cls = sniffed ? media_class(sniffed) : NULL;
  /* an MP4 box is "audio/mp4" or "video/mp4" by name only */
  if (cls && strcmp(f->media, "video") == 0 && strcmp(sniffed, "audio/mp4") == 0) {
    sniffed = "video/mp4";
    cls = "video";
  }
  /* the declared type, when it names a media class, must agree too */
  char declared[64] = "";
  if (resp->content_type) sscanf(resp->content_type, "%63[^; ]", declared);
  const char *dcls = media_class(declared);
  int declared_ok = !dcls || strcmp(dcls, f->media) == 0 ||
                    (strcmp(f->media, "video") == 0 && strcmp(declared, "audio/mp4") == 0);
  if (!cls || strcmp(cls, f->media) != 0 || !declared_ok) {
    log_warn("provider output has the wrong type", LS("job_id", f->s->j->id),
             LS("step", f->s->name), LS("expected", f->media),
             LS("content_type", resp->content_type ? resp->content_type : ""));
    fail(f, 1, "provider_bad_output", "the provider's output is not the expected media type");
    return;
  }
  snprintf(f->type, sizeof(f->type), "%s", sniffed);
  f->len = resp->body_len;
  f->data = httpc_take_body(f->s->j->w->http); /* no copy of a large video */
  uv_work_t *work = malloc(sizeof(*work));
  if (!f->data || !work || media_uuid4(f->id) != 0) {
    free(work);
    fail(f, 1, "internal", "out of memory");
    return;
  }
  work->data = f;
  if (uv_queue_work(f->s->j->w->loop, work, hash_work, hashed) != 0) {
    free(work);
    fail(f, 1, "internal", "cannot hash the output");
  }
}

int output_fetch(wstep *s, const char *url, const char *media, const char *asset_kind,
                 output_cb cb) {
  worker *w = s->j->w;
  if (!w->http || !w->storage) return -1;
  if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) return -1;
  fetch_ctx *f = calloc(1, sizeof(*f));
  if (!f) return -1;
  f->s = s;
  f->cb = cb;
  snprintf(f->media, sizeof(f->media), "%s", media);
  snprintf(f->kind, sizeof(f->kind), "%s", asset_kind);
  httpc_request req = {.method = "GET",
                       .url = url,
                       .timeout_ms = w->cfg.provider_timeout_ms,
                       .max_response_bytes = w->cfg.asset_max_bytes};
  if (httpc_send(w->http, &req, downloaded, f, &s->xfer) != 0) {
    free(f);
    return -1;
  }
  return 0;
}

void output_done(wstep *s, const cJSON *asset, const step_result *err, const char *ref_name) {
  if (!asset) {
    runner_step_done(s, err);
    return;
  }
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, ref_name, s->ref);
  cJSON_AddStringToObject(out, "asset_id", cJSON_GetObjectItem(asset, "id")->valuestring);
  step_result r = {.ok = 1, .output = out, .asset = asset};
  runner_step_done(s, &r);
  cJSON_Delete(out);
}
