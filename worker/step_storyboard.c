/* step_storyboard.c — the `storyboard` step: one OpenAI chat completion
 * with a strict JSON schema (openai.c, storyboard.c). No provider
 * idempotency exists; a call repeated after a crash is cheap and tolerated
 * (PROVIDERS.md). The validated storyboard is the step's output and the
 * job's output.storyboard. */
#include "log.h"
#include "worker.h"

static void storyboard_done(const openai_result *r, void *arg) {
  wjob *j = arg;
  if (!r->ok) {
    step_result res = {.ok = 0,
                       .retryable = r->retryable,
                       .code = r->code,
                       .message = r->message,
                       .retry_after_ms = r->retry_after_ms};
    log_info("openai call failed", LS("job_id", j->id), LS("code", r->code),
             LS("provider_request_id", r->request_id ? r->request_id : ""));
    runner_step_done(j, &res);
    return;
  }
  cJSON *job_output = cJSON_CreateObject();
  cJSON_AddItemToObject(job_output, "storyboard", cJSON_Duplicate(r->storyboard, 1));
  cJSON_AddItemToObject(job_output, "assets", cJSON_CreateArray());
  step_result res = {.ok = 1, .output = r->storyboard, .job_output = job_output};
  runner_step_done(j, &res);
  cJSON_Delete(job_output);
}

int step_storyboard_run(wjob *j) {
  if (!j->w->http) return -1;
  return openai_storyboard(j->w->http, &j->w->openai, j->input, storyboard_done, j, &j->xfer);
}
