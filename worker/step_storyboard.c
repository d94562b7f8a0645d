/* step_storyboard.c — the `storyboard` step: one OpenAI chat completion
 * with a strict JSON schema (openai.c, storyboard.c). No provider
 * idempotency exists; a call repeated after a crash is cheap and tolerated
 * (PROVIDERS.md). The validated storyboard is the step's output and the
 * job's output.storyboard; a campaign's later steps read it from there. */
#include <string.h>

#include "log.h"
#include "worker.h"

static void slot_taken(wstep *s, int ok);

/* openai.c names its failures by code: the status they stand for. */
static int status_of(const openai_result *r) {
  if (r->ok) return 200;
  if (!r->code) return 400;
  if (!strcmp(r->code, "rate_limited")) return 429;
  if (!strcmp(r->code, "provider_error") || !strcmp(r->code, "timeout") ||
      !strcmp(r->code, "network"))
    return 503;
  return 400;
}

static void storyboard_done(const openai_result *r, void *arg) {
  wstep *s = arg;
  s->xfer = 0;
  /* a call this worker canceled (an abort) says nothing about OpenAI */
  if (!runner_step_should_stop(s) &&
      provlimit_report(s, PROV_OPENAI, status_of(r), r->code, r->retry_after_ms) ==
          PROVLIMIT_LIMITED &&
      provlimit_on(s->j->w, PROV_OPENAI)) {
    provlimit_acquire(s, PROV_OPENAI, slot_taken); /* after the fleet's pause */
    return;
  }
  if (!r->ok) {
    step_result res = {.ok = 0,
                       .retryable = r->retryable,
                       .code = r->code,
                       .message = r->message,
                       .retry_after_ms = r->retry_after_ms};
    log_info("openai call failed", LS("job_id", s->j->id), LS("code", r->code),
             LS("provider_request_id", r->request_id ? r->request_id : ""));
    runner_step_done(s, &res);
    return;
  }
  cJSON *job_output = cJSON_CreateObject();
  cJSON_AddItemToObject(job_output, "storyboard", cJSON_Duplicate(r->storyboard, 1));
  step_result res = {.ok = 1, .output = r->storyboard, .job_output = job_output};
  runner_step_done(s, &res);
  cJSON_Delete(job_output);
}

/* A slot of OpenAI's is held (provlimit.c): the call goes out. */
static void slot_taken(wstep *s, int ok) {
  worker *w = s->j->w;
  /* a campaign plans as many scenes as it will film */
  cJSON *in = ok ? runner_job_input(s->j) : NULL;
  int rc = in ? openai_storyboard(w->http, &w->openai, in, storyboard_done, s, &s->xfer) : -1;
  cJSON_Delete(in); /* the request body is built: nothing keeps it */
  if (rc != 0) {
    step_result e = {.ok = 0,
                     .retryable = 1,
                     .code = "internal",
                     .message = "could not start the provider call"};
    runner_step_done(s, &e);
  }
}

int step_storyboard_run(wstep *s) {
  worker *w = s->j->w;
  if (!w->http) return -1;
  if (!provlimit_on(w, PROV_OPENAI)) { /* the common case: no detour */
    cJSON *in = runner_job_input(s->j);
    int rc = in ? openai_storyboard(w->http, &w->openai, in, storyboard_done, s, &s->xfer) : -1;
    cJSON_Delete(in);
    return rc;
  }
  provlimit_acquire(s, PROV_OPENAI, slot_taken);
  return 0;
}
