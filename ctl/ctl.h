#ifndef GENQ_CTL_H
#define GENQ_CTL_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

#include "uuid.h"

/* genqctl's commands (SPEC §8). Each command returns the process exit code:
 * 0 success, 1 failure (database error, not found, audit violations),
 * 2 usage error. Errors are printed to stderr by the command itself. */

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

/* envfile.c: loads KEY=value lines from the first .genq/env found (the
 * current directory, else <dir of the executable>/../.genq/env) without
 * overriding variables already set. Values may be single- or double-quoted;
 * quotes are stripped, nothing is expanded. Blank lines, '#' comments and an
 * "export " prefix are accepted. Returns the number of variables set, 0 when
 * no file exists, or -1 with a message when the file cannot be read. */
int ctl_envfile_load(char *err, size_t errlen);
/* Same for one explicit path; -1 also when it does not exist. */
int ctl_envfile_load_path(const char *path, char *err, size_t errlen);

/* token.c: genqctl token --user U [--admin] [--ttl SECONDS]. Reads
 * GENQ_DEV_JWT_PRIVATE_KEY (a PEM file path), CLERK_ISSUER and
 * CLERK_AUTHORIZED_PARTIES from the environment. */
int ctl_token(int argc, char **argv);

/* The filters and knobs of the listing and retry commands, validated by
 * genqctl.c before anything connects. NULL / 0 = not given. */
typedef struct {
  const char *kind;         /* one of the job kinds */
  const char *status;       /* one of the job statuses */
  const char *user;         /* a user id */
  const char *since_at;     /* --since as an RFC 3339 date-time */
  const char *since_secs;   /* --since as a duration before now, in seconds (digits) */
  long limit;               /* --limit, 1..100000 */
  const char *max_attempts; /* --max-attempts, "1".."100" */
} ctl_filter;

/* announce.c: ctl_announce sends the change notice of each job in ids
 * (job caches and event streams of genq-api show the change at once), to
 * the Redis that ctl_announce_init named (NULL: nothing is sent). Best
 * effort, bounded to 2 s; says nothing. */
void ctl_announce_init(const char *redis_url);
void ctl_announce(const char *const *ids, int n);
/* Tells every genq-api process that the API key key_id was revoked. */
void ctl_announce_revoked(const char *key_id);
/* Tells the worker holding job_id that it was canceled, and the API
 * processes that it changed. */
void ctl_announce_canceled(const char *job_id);

/* keys_cmd.c: genqctl keys create|list|revoke (argv: the words after
 * "keys"); connects with connect only once the arguments are valid. */
int ctl_keys(int argc, char **argv, PGconn *(*connect)(void));

/* report.c: commands that call the schema's functions and print the result,
 * human-readable by default or JSON with json != 0. */
int ctl_credits_grant(PGconn *c, const char *user, long long amount, const char *key,
                      const char *note, int json);
int ctl_credits_show(PGconn *c, const char *user, int json);
int ctl_jobs_show(PGconn *c, const char *id, int json);
int ctl_audit(PGconn *c, int json);

/* Runs one parameterized statement that returns rows; on failure prints
 * "genqctl <what>: <server message>" and returns NULL. */
PGresult *ctl_query(PGconn *c, const char *what, const char *sql, int n, const char *const *params);
/* Runs a statement whose one row is a JSON array, and prints it: as it is
 * with json, else through print(rows, arg). CTL_OK, or CTL_FAIL after
 * saying why. */
int ctl_list(PGconn *c, const char *what, const char *sql, int n, const char *const *params,
             int json, void (*print)(const cJSON *rows, long arg), long arg);
/* A JSON member for a table cell: the string, or "-"; the number, or 0. */
const char *ctl_str(const cJSON *o, const char *k);
double ctl_num(const cJSON *o, const char *k);
/* Prints a job object (genq_job_json's text) for people. */
void ctl_print_job(const char *job_json);

/* limits_cmd.c: genqctl limits show|set|plan (argv: the words after
 * "limits"); connects with connect only once the arguments are valid. */
int ctl_limits(int argc, char **argv, PGconn *(*connect)(void));

/* providers_cmd.c: genqctl providers show|open|close (argv: the words
 * after "providers"), against GENQ_REDIS_URL. */
int ctl_providers(int argc, char **argv);
/* The providers array `genqctl providers show --json` prints (for genqctl
 * status), read from the Redis at redis_url; NULL after printing why to
 * stderr. The caller cJSON_Deletes it. */
cJSON *ctl_providers_state(const char *redis_url);

/* dead.c: the dead-letter set (SPEC §5, §8).
 * dead list: the set, newest first (f: kind, since, limit).
 * dead retry: genq_job_retry on every match (f: kind, since, max_attempts),
 * oldest first, each in its own transaction; CTL_FAIL when any could not be.
 * jobs retry: one failed job, dead or not (f: max_attempts). */
int ctl_dead_list(PGconn *c, const ctl_filter *f, int json);
int ctl_dead_retry(PGconn *c, const ctl_filter *f, int json);
int ctl_jobs_retry(PGconn *c, const char *id, const ctl_filter *f, int json);
/* jobs cancel ID: cancels a queued or running job as its user would
 * (genq_job_cancel) and tells its worker and the API processes. */
int ctl_jobs_cancel(PGconn *c, const char *id, int json);

/* jobs_cmd.c: jobs list across users for operators, newest first (f: status,
 * kind, user, limit). */
int ctl_jobs_list(PGconn *c, const ctl_filter *f, int json);

/* webhooks_cmd.c: completion webhooks (docs/webhooks.md).
 * webhooks secret: a new signing secret for user (made, sealed with
 * GENQ_SECRETS_KEY, stored as current; the one it replaces signs beside it
 * for grace_secs, NULL = 24 h), printed once ("whsec_..." on stdout).
 * webhooks list: the job's deliveries. webhooks replay: a delivery queued
 * again under its webhook-id (id: its UUID or "msg_..."). secrets rekey:
 * every stored secret sealed under an older key sealed again under
 * GENQ_SECRETS_KEY; CTL_FAIL when any does not open. */
int ctl_webhooks_secret(PGconn *c, const char *user, const char *grace_secs, int json);
int ctl_webhooks_list(PGconn *c, const char *job, int json);
int ctl_webhooks_replay(PGconn *c, const char *id, int json);
int ctl_secrets_rekey(PGconn *c, int json);

/* prices_cmd.c: genqctl prices list|set (stripe_prices). argv: the words
 * after "prices"; connect is called once the arguments are valid.
 * CTL_OK, CTL_FAIL or CTL_USAGE. */
int ctl_prices(int argc, char **argv, PGconn *(*connect)(void));

/* sweep_cmd.c: genqctl sweep [--now T] [--json] (argv: the words after
 * "sweep"): one full retention sweep, the stored objects it let go deleted
 * from GENQ_STORAGE (docs/privacy.md). connect is called once the
 * arguments are valid. */
int ctl_sweep(int argc, char **argv, PGconn *(*connect)(void));

/* token.c: fills buf with 2*n random lowercase hex digits (buf holds
 * 2*n + 1 bytes). Returns 0 or -1. */
int ctl_random_hex(char *buf, size_t n);

#endif
