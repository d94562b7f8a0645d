/* step_luma.c — the `image` and `video` steps on Luma AI.
 *
 *   create → checkpoint the generation id (committed) → poll on a timer
 *   until completed → store the output (output.c) → succeed.
 *
 * Luma has no idempotency key, so the generation id is committed before
 * anything waits on it; a run that finds an id on its step (a reclaim, a
 * retry) polls that generation instead of paying for a new one. An id that
 * cannot be committed (the job was canceled or reclaimed meanwhile) is
 * deleted at once: nobody would ever poll it. A failed generation is
 * forgotten (checkpoint NULL) so that a retry creates a fresh one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "callback_url.h"
#include "log.h"
#include "signed_url.h"
#include "worker.h"

/* Luma fetches the keyframe while the generation is queued or dreaming; an
 * hour covers a long queue, and a leaked URL dies with it (or sooner, when
 * the sweep deletes the upload once the job is over). */
#define KEYFRAME_URL_TTL_S 3600

enum { PH_CREATE, PH_POLL, PH_FORGET };

static int is_video(const wstep *s) {
  return strcmp(s->step_kind, "video") == 0;
}

static void poll_now(wstep *s);

static void report(wstep *s, const luma_result *r) {
  step_result res = {.ok = 0,
                     .retryable = r->retryable,
                     .code = r->code ? r->code : "provider_error",
                     .message = r->message ? r->message : "provider error",
                     .retry_after_ms = r->retry_after_ms};
  runner_step_done(s, &res);
}

/* The failure to report once the failed generation is forgotten (s->buf). */
static void set_reason(wstep *s, const char *fmt, const char *arg) {
  free(s->buf);
  s->buf = malloc(512);
  if (s->buf) snprintf(s->buf, 512, fmt, arg);
}

static void forgotten(wstep *s, int ok);

static void stored(wstep *s, const cJSON *asset, const step_result *err) {
  if (!asset && strcmp(err->code, "provider_bad_output") == 0 && !runner_step_should_stop(s)) {
    /* the generation's output is unusable: the retry makes a fresh one */
    set_reason(s, "%s", err->message);
    if (runner_step_checkpoint(s, NULL, forgotten) != 0) runner_step_done(s, err);
    return;
  }
  output_done(s, asset, err, "generation_id");
}

/* A failed generation's id is cleared before the failure is reported, so the
 * retry does not poll a dead generation. */
static void forgotten(wstep *s, int ok) {
  (void)ok; /* not committed: the retry polls it, sees it failed, forgets it then */
  step_result r = {.ok = 0,
                   .retryable = 1,
                   .code = "provider_generation_failed",
                   .message = s->buf ? s->buf : "the generation failed at the provider"};
  runner_step_done(s, &r);
}

static void polled(const luma_result *r, void *arg) {
  wstep *s = arg;
  s->xfer = 0;
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  if (!r->ok && r->status == 404) {
    /* the provider no longer knows it (deleted, expired): start again */
    set_reason(s, "the generation %s is gone at the provider", s->ref);
    if (runner_step_checkpoint(s, NULL, forgotten) != 0) report(s, r);
    return;
  }
  if (!r->ok && !r->state) {
    if (r->retryable && s->polls < 1000) { /* a blip while waiting: keep waiting */
      log_info("luma poll failed, polling again", LS("job_id", s->j->id), LS("step", s->name),
               LS("code", r->code));
      s->retry_after_ms = r->retry_after_ms;
      runner_step_poll_later(s, poll_now);
      return;
    }
    report(s, r);
    return;
  }
  if (strcmp(r->state, "completed") == 0) {
    runner_step_progress(s, 0.95);
    const char *media = is_video(s) ? "video" : "image";
    if (!r->asset_url || output_fetch(s, r->asset_url, media, media, stored) != 0) {
      step_result e = {.ok = 0,
                       .retryable = 1,
                       .code = "provider_bad_response",
                       .message = "the completed generation has no usable output URL"};
      runner_step_done(s, &e);
    }
    return;
  }
  if (strcmp(r->state, "failed") == 0) {
    log_warn("luma generation failed", LS("job_id", s->j->id), LS("step", s->name),
             LS("generation_id", s->ref),
             LS("failure_reason", r->failure_reason ? r->failure_reason : ""));
    if (r->moderation) {
      step_result e = {.ok = 0,
                       .retryable = 0,
                       .code = "provider_moderation",
                       .message = r->failure_reason ? r->failure_reason
                                                    : "the provider refused the prompt"};
      runner_step_done(s, &e);
      return;
    }
    set_reason(s, "the generation failed at the provider: %s",
               r->failure_reason ? r->failure_reason : "no reason given");
    if (runner_step_checkpoint(s, NULL, forgotten) != 0) report(s, r);
    return;
  }
  /* queued or dreaming */
  /* Luma reports no progress: "dreaming" is all there is to show */
  if (strcmp(r->state, "dreaming") == 0) runner_step_progress(s, 0.1);
  runner_step_poll_later(s, poll_now);
}

static void poll_now(wstep *s) {
  worker *w = s->j->w;
  if (!w->http || luma_get(w->http, &w->luma, s->ref, polled, s, &s->xfer) != 0) {
    step_result e = {.ok = 0, .retryable = 1, .code = "internal", .message = "cannot poll"};
    runner_step_done(s, &e);
  }
}

static void checkpointed(wstep *s, int ok) {
  if (!ok) {
    /* the job is no longer ours: nobody will ever poll this generation */
    cleanup_delete_generation(s->j->w, "luma", s->ref);
    runner_job_lost(s->j);
    runner_step_stopped(s);
    return;
  }
  log_info("luma generation checkpointed", LS("job_id", s->j->id), LS("step", s->name),
           LS("generation_id", s->ref));
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  runner_step_poll_later(s, poll_now);
}

static void slot_taken(wstep *s, int ok);

static void created(const luma_result *r, void *arg) {
  wstep *s = arg;
  s->xfer = 0;
  s->paid_xfer = 0;
  if (provlimit_report(s, PROV_LUMA, r->status, r->code, r->retry_after_ms) == PROVLIMIT_LIMITED &&
      provlimit_on(s->j->w, PROV_LUMA) && !runner_step_should_stop(s)) {
    /* nothing was created: wait out the fleet's pause for a slot, then
     * create again, without spending an attempt */
    provlimit_acquire(s, PROV_LUMA, slot_taken);
    return;
  }
  if (!r->ok || !r->id) {
    if (r->ok) {
      step_result e = {
          .ok = 0, .retryable = 1, .code = "provider_bad_response", .message = "no generation id"};
      runner_step_done(s, &e);
    } else {
      report(s, r);
    }
    return;
  }
  log_info("luma generation created", LS("job_id", s->j->id), LS("step", s->name),
           LS("generation_id", r->id));
  /* committed before anything waits on it, even when the step is stopping:
   * a paid generation's id must not be lost */
  if (runner_step_checkpoint(s, r->id, checkpointed) != 0) {
    step_result e = {.ok = 0, .retryable = 1, .code = "internal", .message = "checkpoint failed"};
    runner_step_done(s, &e);
  }
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A campaign's video step n (its index, genq_plan_steps) films scene n of
 * the storyboard. */
static const cJSON *campaign_scene(const wstep *s) {
  const cJSON *idx = cJSON_GetObjectItemCaseSensitive(s->step, "index");
  if (strcmp(s->j->kind, "campaign") != 0 || !cJSON_IsNumber(idx) || idx->valueint < 1) return NULL;
  int n = idx->valueint;
  const cJSON *sb = runner_step_output(s->j, "storyboard");
  const cJSON *scenes = cJSON_GetObjectItemCaseSensitive(sb, "scenes");
  return cJSON_GetArrayItem(scenes, n - 1);
}

/* A video job's keyframe upload (role "keyframe") as a signed URL that Luma
 * can fetch from genq-api. Returns 1 when the job has no keyframe, 0 with
 * the URL in out, or -1 after reporting a failure that no retry can fix. */
static int keyframe_url(wstep *s, char *out, size_t outlen) {
  const cJSON *kf = cJSON_GetObjectItemCaseSensitive(s->j->uploads, "keyframe");
  if (!kf) return 1;
  const genq_config *cfg = &s->j->w->cfg;
  step_result e = {.ok = 0, .retryable = 0};
  const char *id = str(kf, "id");
  if (!id || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(kf, "deleted"))) {
    e.code = "input_missing";
    e.message = "the keyframe upload of this job is no longer stored";
  } else if (!cfg->public_url || !cfg->url_signing_key) {
    e.code = "keyframes_unconfigured";
    e.message = "keyframes need GENQ_PUBLIC_URL and GENQ_URL_SIGNING_KEY set on the worker (and "
                "the same GENQ_URL_SIGNING_KEY on genq-api)";
  } else if (signed_url_make(cfg->url_signing_key, cfg->public_url, id,
                             (long long)time(NULL) + KEYFRAME_URL_TTL_S, out, outlen) != 0) {
    e.code = "internal";
    e.message = "cannot sign the keyframe URL";
  } else {
    return 0;
  }
  log_warn("keyframe unusable", LS("job_id", s->j->id), LS("step", s->name), LS("code", e.code));
  runner_step_done(s, &e);
  return -1;
}

/* Sends the create of the job input in. */
static void create_from(wstep *s, const cJSON *in) {
  worker *w = s->j->w;
  step_result e = {.ok = 0, .retryable = 1, .code = "internal", .message = "cannot create"};
  luma_create c = {.prompt = str(in, "prompt"), .aspect_ratio = str(in, "aspect_ratio")};
  int rc;
  char cb_url[2048]; /* the create copies it */
  if (s->wakeable) {
    if (callback_url_make(w->cfg.url_signing_key, w->cfg.callback_url, s->j->id, cb_url,
                          sizeof cb_url) == 0)
      c.callback_url = cb_url;
    else
      log_warn("no callback URL for this generation: polling only", LS("job_id", s->j->id),
               LS("step", s->name));
  }
  if (is_video(s)) {
    c.model = "ray-2";
    c.duration = str(in, "duration");
    char kf[2048]; /* luma_create_video copies it */
    int k = keyframe_url(s, kf, sizeof kf);
    if (k < 0) return; /* reported */
    if (k == 0) c.keyframe_url = kf;
    if (strcmp(s->j->kind, "campaign") == 0) {
      const cJSON *scene = campaign_scene(s);
      const cJSON *d = cJSON_GetObjectItemCaseSensitive(scene, "duration_s");
      c.prompt = str(scene, "visual_prompt");
      c.duration = cJSON_IsNumber(d) && d->valuedouble > 5 ? "9s" : "5s";
      if (!c.prompt) {
        e.retryable = 0;
        e.message = "the storyboard has no scene for this video";
        runner_step_done(s, &e);
        return;
      }
    }
    s->paid_xfer = 1;
    log_info("luma create sent", LS("job_id", s->j->id), LS("step", s->name));
    rc = luma_create_video(w->http, &w->luma, &c, created, s, &s->xfer);
  } else {
    c.model = "photon-1";
    s->paid_xfer = 1;
    log_info("luma create sent", LS("job_id", s->j->id), LS("step", s->name));
    rc = luma_create_image(w->http, &w->luma, &c, created, s, &s->xfer);
  }
  if (rc != 0) {
    s->paid_xfer = 0;
    runner_step_done(s, &e);
  }
}

/* Creates the generation, once the job's lease is confirmed (lease_confirm):
 * a worker that was paused past its lease must not pay for a generation
 * that the job's new owner pays for too. */
static void create_now(wstep *s, int ok) {
  if (!ok) {
    runner_job_lost(s->j);
    runner_step_stopped(s);
    return;
  }
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  cJSON *in = runner_job_input(s->j); /* the create body copies what it reads */
  create_from(s, in);
  cJSON_Delete(in);
}

/* A slot of Luma's is held (provlimit.c): a generation resumed (its id is
 * checkpointed) is polled, else one is created. */
static void slot_taken(wstep *s, int ok) {
  if (!ok) {
    step_result e = {.ok = 0, .retryable = 1, .code = "internal", .message = "no provider slot"};
    runner_step_done(s, &e);
    return;
  }
  if (s->ref[0]) {
    log_info("resuming luma generation", LS("job_id", s->j->id), LS("step", s->name),
             LS("generation_id", s->ref));
    poll_now(s);
    return;
  }
  lease_confirm(s, create_now);
}

int step_luma_run(wstep *s) {
  worker *w = s->j->w;
  if (!w->http) return -1;
  /* with callbacks configured, Luma's POST wakes the step (a resumed
   * generation is assumed to have been created with its callback_url) */
  s->wakeable = w->cfg.callback_url != NULL;
  /* a resumed generation is in flight at Luma too: it holds a slot */
  provlimit_acquire(s, PROV_LUMA, slot_taken);
  return 0;
}
