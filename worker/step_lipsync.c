/* step_lipsync.c — the `lipsync` step on Hedra (a lipsync job, or a
 * campaign's last step: its avatar speaking its voice).
 *
 *   the image and the audio from genq's storage → POST /files each → submit
 *   with idempotency_key = <job id>:<step> → checkpoint the Hedra job id →
 *   poll its status on a timer → its result → store the video (output.c).
 *
 * Uploads to Hedra are free and repeated on every run; the paid submit
 * carries the idempotency key, so a submit repeated after a crash (before
 * its id was committed) finds the same Hedra job. After a failed generation
 * the step forgets its ref (a checkpoint of no ref), which becomes the
 * step's retry_key, and the next key names it
 * (<job id>:<step>:<retry_key>): the retry is a fresh job and still
 * idempotent across crashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#define URL_MAX 2048 /* each of the two Hedra file URLs, in s->buf */

static void poll_now(wstep *s);

static void fail_with(wstep *s, int retryable, const char *code, const char *msg) {
  step_result e = {.ok = 0, .retryable = retryable, .code = code, .message = msg};
  runner_step_done(s, &e);
}

static void report(wstep *s, const hedra_result *r) {
  step_result e = {.ok = 0,
                   .retryable = r->retryable,
                   .code = r->code ? r->code : "provider_error",
                   .message = r->message ? r->message : "provider error",
                   .retry_after_ms = r->retry_after_ms};
  runner_step_done(s, &e);
}

static const cJSON *upload_for(const wstep *s, int audio) {
  const cJSON *u = s->j->uploads;
  const char *a = audio ? "audio" : "image", *b = audio ? "voice" : "avatar";
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, a);
  return v ? v : cJSON_GetObjectItemCaseSensitive(u, b);
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- result ---- */

static void forgotten(wstep *s, int ok);

/* The Hedra job is of no more use (gone at Hedra, or its output unusable):
 * the retry submits a fresh one under a key of its own. */
static void forget(wstep *s, const step_result *err) {
  if (runner_step_checkpoint(s, NULL, forgotten) != 0) runner_step_done(s, err);
}

/* Hedra no longer knows the job (expired, or never committed there). */
static void report_gone(wstep *s, const hedra_result *r) {
  step_result e = {.ok = 0,
                   .retryable = 1,
                   .code = "provider_not_found",
                   .message = r->message ? r->message : "the lip-sync job is gone at the provider"};
  forget(s, &e);
}

static void stored(wstep *s, const cJSON *asset, const step_result *err) {
  if (!asset && strcmp(err->code, "provider_bad_output") == 0 && !runner_step_should_stop(s)) {
    forget(s, err);
    return;
  }
  output_done(s, asset, err, "hedra_job_id");
}

static void forgotten(wstep *s, int ok);

/* The result of a finished job (COMPLETED or FAILED): only this answer says
 * why a job failed (moderation or not). */
static void got_result(const hedra_result *r, void *arg) {
  wstep *s = arg;
  s->xfer = 0;
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  if (!r->ok && r->state && strcmp(r->state, "FAILED") == 0) {
    log_warn("hedra generation failed", LS("job_id", s->j->id), LS("step", s->name),
             LS("hedra_job_id", s->ref), LS("message", r->message ? r->message : ""));
    if (r->moderation) {
      fail_with(s, 0, "provider_moderation",
                r->message ? r->message : "the provider refused the content");
      return;
    }
    step_result e = {.ok = 0,
                     .retryable = 1,
                     .code = "provider_generation_failed",
                     .message = "the lip-sync generation failed"};
    forget(s, &e);
    return;
  }
  if (!r->ok && r->status == 404) {
    report_gone(s, r);
    return;
  }
  if (!r->ok) {
    report(s, r);
    return;
  }
  if (!r->output_url || output_fetch(s, r->output_url, "video", "video", stored) != 0)
    fail_with(s, 1, "provider_bad_response", "the completed job has no usable output URL");
}

/* ---- polling ---- */

static void forgotten(wstep *s, int ok) {
  (void)ok; /* not committed: the next run sees the failed job again and forgets it then */
  fail_with(s, 1, "provider_generation_failed", "the lip-sync generation failed at the provider");
}

static void polled(const hedra_result *r, void *arg) {
  wstep *s = arg;
  s->xfer = 0;
  worker *w = s->j->w;
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  if (r->state && (strcmp(r->state, "COMPLETED") == 0 || strcmp(r->state, "FAILED") == 0)) {
    runner_step_progress(s, 0.95);
    if (hedra_get_result(w->http, &w->hedra, s->ref, got_result, s, &s->xfer) != 0)
      fail_with(s, 1, "internal", "cannot ask for the result");
    return;
  }
  if (!r->ok && r->status == 404) {
    report_gone(s, r);
    return;
  }
  if (!r->ok) {
    if (r->retryable && s->polls < 1000) { /* a blip while waiting: keep waiting */
      s->retry_after_ms = r->retry_after_ms;
      runner_step_poll_later(s, poll_now);
      return;
    }
    report(s, r);
    return;
  }
  if (r->progress >= 0) runner_step_progress(s, r->progress * 0.9);
  runner_step_poll_later(s, poll_now);
}

static void poll_now(wstep *s) {
  worker *w = s->j->w;
  if (hedra_status(w->http, &w->hedra, s->ref, polled, s, &s->xfer) != 0)
    fail_with(s, 1, "internal", "cannot poll");
}

/* ---- submit ---- */

static void checkpointed(wstep *s, int ok) {
  if (!ok) {
    runner_job_lost(s->j);
    runner_step_stopped(s);
    return;
  }
  log_info("hedra job checkpointed", LS("job_id", s->j->id), LS("step", s->name),
           LS("hedra_job_id", s->ref));
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  runner_step_poll_later(s, poll_now);
}

static void slot_taken(wstep *s, int ok);

static void submitted(const hedra_result *r, void *arg) {
  wstep *s = arg;
  s->xfer = 0;
  s->paid_xfer = 0;
  if (provlimit_report(s, PROV_HEDRA, r->status, r->code, r->retry_after_ms) == PROVLIMIT_LIMITED &&
      provlimit_on(s->j->w, PROV_HEDRA) && !runner_step_should_stop(s)) {
    /* not submitted: wait out the fleet's pause for a slot, then again */
    provlimit_acquire(s, PROV_HEDRA, slot_taken);
    return;
  }
  /* A submit under a key Hedra has seen answers that key's job, which may
   * have failed meanwhile: it is checkpointed and polled like any other, so
   * that its result says why and a failed one is forgotten (a fresh key). */
  int known_failed = !r->ok && r->job_id && r->state && strcmp(r->state, "FAILED") == 0;
  if ((!r->ok && !known_failed) || !r->job_id) {
    if (r->ok)
      fail_with(s, 1, "provider_bad_response", "no job id");
    else
      report(s, r);
    return;
  }
  log_info("hedra job submitted", LS("job_id", s->j->id), LS("step", s->name),
           LS("hedra_job_id", r->job_id), LS("state", r->state ? r->state : ""));
  if (runner_step_checkpoint(s, r->job_id, checkpointed) != 0)
    fail_with(s, 1, "internal", "checkpoint failed");
}

static int hedra_aspect_ok(const char *a) {
  return a && (strcmp(a, "1:1") == 0 || strcmp(a, "16:9") == 0 || strcmp(a, "9:16") == 0);
}

static void submit(wstep *s) {
  worker *w = s->j->w;
  char key[256];
  const char *retry_key = str(s->step, "retry_key");
  if (retry_key)
    snprintf(key, sizeof key, "%s:%s:%.100s", s->j->id, s->name, retry_key);
  else
    snprintf(key, sizeof key, "%s:%s", s->j->id, s->name);
  cJSON *in = runner_job_input(s->j); /* the submit copies what it reads */
  const char *prompt = str(in, "prompt");
  const cJSON *sb = runner_step_output(s->j, "storyboard");
  if (str(sb, "title")) prompt = str(sb, "title"); /* a campaign speaks its storyboard */
  hedra_submit_req q = {.prompt = prompt ? prompt : "A person speaking naturally to the camera",
                        .aspect_ratio = str(in, "aspect_ratio"),
                        .resolution = "720p",
                        .image_url = s->buf,
                        .audio_url = s->buf + URL_MAX,
                        .idempotency_key = key};
  if (!hedra_aspect_ok(q.aspect_ratio))
    q.aspect_ratio = "16:9"; /* required by Hedra, whose set is smaller than genq's */
  s->paid_xfer = 1;
  log_info("hedra create sent", LS("job_id", s->j->id), LS("step", s->name), LS("key", key));
  int rc = hedra_submit(w->http, &w->hedra, &q, submitted, s, &s->xfer);
  cJSON_Delete(in);
  if (rc != 0) fail_with(s, 1, "internal", "cannot submit");
}

/* ---- inputs: genq storage → Hedra files ---- */

static void read_input(wstep *s);

static void uploaded(const hedra_result *r, void *arg) {
  wstep *s = arg;
  s->xfer = 0;
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  if (!r->ok || !r->url) {
    if (r->ok)
      fail_with(s, 1, "provider_bad_response", "no file url");
    else
      report(s, r);
    return;
  }
  snprintf(s->buf + (size_t)s->phase * URL_MAX, URL_MAX, "%s", r->url);
  s->phase++;
  if (s->phase < 2)
    read_input(s);
  else
    provlimit_acquire(s, PROV_HEDRA, slot_taken); /* the submit is the paid part */
}

static void input_read(const char *data, size_t len, int not_found, const char *err, void *arg) {
  wstep *s = arg;
  worker *w = s->j->w;
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  if (not_found) {
    fail_with(s, 0, "input_missing", "an uploaded input of this job is no longer stored");
    return;
  }
  if (err) {
    log_error("upload not read", LS("job_id", s->j->id), LS("error", err));
    fail_with(s, 1, "storage_error", "an uploaded input could not be read");
    return;
  }
  const cJSON *u = upload_for(s, s->phase);
  if (hedra_upload(w->http, &w->hedra, data, len, str(u, "content_type"),
                   s->phase ? "audio" : "image", uploaded, s, &s->xfer) != 0)
    fail_with(s, 0, "input_invalid", "an uploaded input is not acceptable to the provider");
}

static void read_input(wstep *s) {
  worker *w = s->j->w;
  const cJSON *u = upload_for(s, s->phase);
  const char *key = str(u, "storage_key");
  if (!key || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(u, "deleted"))) {
    fail_with(s, 0, "input_missing", "an uploaded input of this job is no longer stored");
    return;
  }
  if (storage_get(w->storage, key, w->cfg.upload_max_bytes, input_read, s) != 0)
    fail_with(s, 1, "storage_error", "an uploaded input could not be read");
}

/* A slot of Hedra's is held (provlimit.c): a checkpointed job is polled,
 * else the submit goes out. */
static void slot_taken(wstep *s, int ok) {
  if (!ok) {
    fail_with(s, 1, "internal", "no provider slot");
    return;
  }
  if (s->ref[0]) {
    log_info("resuming hedra job", LS("job_id", s->j->id), LS("step", s->name),
             LS("hedra_job_id", s->ref));
    poll_now(s);
    return;
  }
  submit(s);
}

int step_lipsync_run(wstep *s) {
  worker *w = s->j->w;
  if (!w->http || !w->storage) return -1;
  if (s->ref[0]) {
    /* a resumed job is in flight at Hedra too: it holds a slot */
    provlimit_acquire(s, PROV_HEDRA, slot_taken);
    return 0;
  }
  s->phase = 0;
  if (!(s->buf = calloc(2, URL_MAX))) return -1;
  read_input(s);
  return 0;
}
