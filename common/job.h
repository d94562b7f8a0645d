#ifndef GENQ_JOB_H
#define GENQ_JOB_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The job model shared by the API and the workers: kinds, statuses and
 * validation of what a user submits. PostgreSQL is the source of truth for
 * the vocabulary (schema/functions/jobs.sql plans each kind's steps,
 * media.sql names the upload fields, job_transitions the legal state
 * moves); the tables here are what the API validates against before it
 * asks, and tests/integration/test_vocabulary.c holds them to the
 * database's. The persistent job
 * (steps, attempt, epoch, cost) lives in PostgreSQL (schema/); its JSON is
 * rendered there by genq_job_json() so the API and workers agree. */

typedef enum {
  JOB_STORYBOARD,
  JOB_IMAGE,
  JOB_VIDEO,
  JOB_LIPSYNC,
  JOB_CAMPAIGN,
  JOB_KIND_COUNT
} job_kind;

typedef enum {
  JOB_QUEUED,
  JOB_RUNNING,
  JOB_SUCCEEDED,
  JOB_FAILED,
  JOB_CANCELED,
  JOB_STATUS_COUNT
} job_status;

const char *job_kind_name(job_kind k);
int job_kind_parse(const char *s, job_kind *out); /* 0 or -1 */
/* 1 for the kinds genq-worker can run today. The API refuses the others
 * (they validate, but would wait forever) and a worker will not take them. */
int job_kind_runnable(job_kind k);
/* The first step of a job of kind k (what runs before anything else: the
 * step whose provider slot a limited fleet takes before the claim), as
 * genq_plan_steps plans it: its name and its provider ("openai", "luma",
 * "hedra"). NULL for an unknown kind. */
const char *job_kind_first_step(job_kind k, const char **provider);
const char *job_status_name(job_status s);
int job_status_parse(const char *s, job_status *out); /* 0 or -1 */
int job_status_terminal(job_status s);

#define JOB_PROMPT_MAX 4000 /* bytes */
#define JOB_STYLE_MAX 200
#define JOB_SCENES_MIN 1
#define JOB_SCENES_MAX 12
#define JOB_SCENES_DEFAULT 4
#define JOB_WEBHOOK_URL_MAX 2048
#define JOB_IDEMPOTENCY_KEY_MAX 255

/* A validated submission: {kind, input, webhook_url?}. */
typedef struct {
  job_kind kind;
  cJSON *input;      /* normalized: defaults filled in, owned */
  char *webhook_url; /* NULL if absent, owned */
} job_submission;

/* Parses and validates a POST /v1/jobs body. Unknown top-level or input
 * fields, wrong types, out-of-range values, empty prompts, bad aspect ratios
 * and bad ids are rejected. Returns 0; JOB_ERR_JSON when the body is not a
 * JSON object (field "" and a message saying so); or JOB_ERR_FIELD with the
 * offending field ("kind", "input.prompt", "input.scenes", "webhook_url",
 * or "" for the body itself) and a human message. */
#define JOB_ERR_FIELD (-1)
#define JOB_ERR_JSON (-2)
int job_submission_parse(const char *body, size_t len, job_submission *out, char *field,
                         size_t fieldlen, char *msg, size_t msglen);
void job_submission_free(job_submission *s);

/* The i-th field (from 0) of kind k's input, NULL past the last; with
 * names_upload set to 1 when the field names one of the user's uploads. */
const char *job_kind_field(job_kind k, int i, int *names_upload);

/* Validates one kind's input object and returns a normalized copy in *out.
 * Same error contract as above (field without the "input." prefix). */
int job_input_validate(job_kind k, const cJSON *input, cJSON **out, char *field, size_t fieldlen,
                       char *msg, size_t msglen);

#endif
