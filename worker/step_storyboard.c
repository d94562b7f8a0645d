/* step_storyboard.c — the `storyboard` step: one OpenAI chat completion
 * with a strict JSON schema (openai.c, storyboard.c). No provider
 * idempotency exists; a call repeated after a crash is cheap and tolerated
 * (PROVIDERS.md). The validated storyboard is the step's output and the
 * job's output.storyboard; a campaign's later steps read it from there. */
#include "log.h"
#include "worker.h"

static void storyboard_done(const openai_result *r, void *arg) {
  wstep *s = arg;
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

int step_storyboard_run(wstep *s) {
  worker *w = s->j->w;
  if (!w->http) return -1;
  /* a campaign plans as many scenes as it will film */
  cJSON *in = runner_job_input(s->j);
  int rc = in ? openai_storyboard(w->http, &w->openai, in, storyboard_done, s, &s->xfer) : -1;
  cJSON_Delete(in); /* the request body is built: nothing keeps it */
  return rc;
}
