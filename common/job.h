#ifndef GENQ_JOB_H
#define GENQ_JOB_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The job model shared by the API and the workers: kinds, statuses and their
 * legal moves, and validation of what a user submits. The persistent job
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
const char *job_status_name(job_status s);
int job_status_parse(const char *s, job_status *out); /* 0 or -1 */
int job_status_terminal(job_status s);
/* The legal moves: queued→running|canceled|failed, running→queued (retry or
 * hand back)|succeeded|failed|canceled. Terminal states never move on
 * their own; the one exception is an operator's retry of a failed job
 * (genq_job_retry: failed→queued, its unpaid price held again), which
 * schema/ allows only inside that function. schema/ enforces the table. */
int job_status_can_move(job_status from, job_status to);

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
 * and bad ids are rejected. Returns 0, or -1 with the offending field
 * ("kind", "input.prompt", "input.scenes", "webhook_url", or "" for the body
 * itself) and a human message. Bad JSON → field "" and a message saying so;
 * an unknown kind → field "kind". */
int job_submission_parse(const char *body, size_t len, job_submission *out, char *field,
                         size_t fieldlen, char *msg, size_t msglen);
void job_submission_free(job_submission *s);

/* Validates one kind's input object and returns a normalized copy in *out.
 * Same error contract as above (field without the "input." prefix). */
int job_input_validate(job_kind k, const cJSON *input, cJSON **out, char *field, size_t fieldlen,
                       char *msg, size_t msglen);

#endif
