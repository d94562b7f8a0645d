/* fuzz_job — job submission validation (common/job.c): the input is a
 * POST /v1/jobs body, given to job_submission_parse as genq-api gives it
 * (api/jobs.c, with its buffer sizes). Its "input" member (or the whole
 * document) is also validated as the input of every kind.
 *
 * What must hold: the result is one of the three documented ones; a
 * normalized input validates again to itself; and an accepted submission,
 * printed again, is accepted again with the same kind, input and
 * webhook_url. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "job.h"

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    if (!(x)) __builtin_trap();                                                                    \
  } while (0)

/* A normalized input is a fixed point of validation. */
static void check_normalized(job_kind k, const cJSON *input) {
  char field[64], msg[256];
  cJSON *again = NULL;
  CHECK(cJSON_IsObject(input));
  CHECK(job_input_validate(k, input, &again, field, sizeof field, msg, sizeof msg) == 0);
  CHECK(cJSON_Compare(input, again, 1));
  cJSON_Delete(again);
}

static void check_resubmit(const job_submission *s) {
  cJSON *o = cJSON_CreateObject();
  CHECK(o);
  CHECK(cJSON_AddStringToObject(o, "kind", job_kind_name(s->kind)));
  cJSON *in = cJSON_Duplicate(s->input, 1);
  CHECK(in && cJSON_AddItemToObject(o, "input", in));
  if (s->webhook_url) CHECK(cJSON_AddStringToObject(o, "webhook_url", s->webhook_url));
  char *text = cJSON_PrintUnformatted(o);
  CHECK(text);
  job_submission t;
  char field[64], msg[256];
  CHECK(job_submission_parse(text, strlen(text), &t, field, sizeof field, msg, sizeof msg) == 0);
  CHECK(t.kind == s->kind && cJSON_Compare(t.input, s->input, 1));
  CHECK((!t.webhook_url && !s->webhook_url) ||
        (t.webhook_url && s->webhook_url && strcmp(t.webhook_url, s->webhook_url) == 0));
  job_submission_free(&t);
  cJSON_free(text);
  cJSON_Delete(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *body = (const char *)data;
  job_submission sub;
  char field[64], msg[256];
  int rc = job_submission_parse(body, size, &sub, field, sizeof field, msg, sizeof msg);
  CHECK(rc == 0 || rc == JOB_ERR_FIELD || rc == JOB_ERR_JSON);
  if (rc == 0) {
    CHECK((unsigned)sub.kind < JOB_KIND_COUNT && job_kind_runnable(sub.kind));
    check_normalized(sub.kind, sub.input);
    check_resubmit(&sub);
    job_submission_free(&sub);
  } else {
    CHECK(memchr(field, '\0', sizeof field) && memchr(msg, '\0', sizeof msg) && msg[0]);
    CHECK(!sub.input && !sub.webhook_url);
  }

  cJSON *root = cJSON_ParseWithLength(body, size);
  const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
  if (!input) input = root;
  for (int k = 0; k < JOB_KIND_COUNT && input; k++) {
    cJSON *out = NULL;
    if (job_input_validate((job_kind)k, input, &out, field, sizeof field, msg, sizeof msg) == 0) {
      check_normalized((job_kind)k, out);
      cJSON_Delete(out);
    } else {
      CHECK(!out && msg[0]);
    }
  }
  cJSON_Delete(root);
  return 0;
}
