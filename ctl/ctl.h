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
/* Sends an admin action row (admin.sql's JSON; NULL or null: nothing) to
 * the API processes' admin event streams (QUEUE_ADMIN_CHANNEL). */
void ctl_announce_action(const cJSON *action);
/* genqctl as an actor of admin.sql: {"kind": "genqctl", "id":
 * "<os user>@<host>"} (static text). */
const char *ctl_actor(void);

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
/* Prints that array as genqctl providers show's table. */
void ctl_providers_print(const cJSON *arr);

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

/* redis_sync.c: Redis for genqctl, an rds connection (redis.h) on a private
 * loop that each call runs until its answer or a deadline: nothing hangs.
 * ctl_redis_open: connected within timeout_ms, or NULL with a message in
 * err that names GENQ_REDIS_URL, never its value. ctl_redis_wait runs the
 * loop until *flag is set (by an rds or registry callback): 0, or -1 after
 * timeout_ms. A callback's state must outlive the connection: a command
 * still unanswered is failed by ctl_redis_close, which runs its callback.
 * ctl_redis_call: one command (argv), its reply as JSON — strings,
 * numbers, arrays, null; an error reply is {"error": message} — or NULL
 * when Redis did not answer within CTL_REDIS_TIMEOUT_MS. */
#define CTL_REDIS_TIMEOUT_MS 5000
#define CTL_REDIS_CONNECT_MS 2000
typedef struct ctl_redis ctl_redis;
typedef struct rds rds;
ctl_redis *ctl_redis_open(const char *url, int timeout_ms, char *err, size_t errlen);
/* ctl_redis_open on GENQ_REDIS_URL (the environment, .genq/env), within
 * CTL_REDIS_CONNECT_MS. */
ctl_redis *ctl_redis_connect(char *err, size_t errlen);
rds *ctl_redis_rds(ctl_redis *c);
int ctl_redis_wait(ctl_redis *c, const int *flag, int timeout_ms);
cJSON *ctl_redis_call(ctl_redis *c, int argc, const char **argv);
void ctl_redis_close(ctl_redis *c);

/* workers_cmd.c: genqctl workers list|quiet|stop (argv: the words after
 * "workers"; docs/fleet.md). Redis only. */
int ctl_workers(int argc, char **argv);
/* The live workers (registry_list) as a JSON array the caller frees, or
 * NULL with a message in err. */
cJSON *ctl_workers_read(ctl_redis *c, char *err, size_t errlen);
/* A duration for people: 850ms, 12.3s, 4m05s, 2h03m, 3d04h. */
void ctl_fmt_age(char *buf, size_t len, double ms);
/* Prints workers (ctl_workers_read's array) as a table; running: the
 * running jobs PostgreSQL gives each (a "running_jobs" member), shown when
 * non-zero. */
void ctl_workers_print(const cJSON *workers, int running);

/* status_cmd.c: genqctl status [--json] (argv: the words after "status"):
 * queue depths and oldest age per kind, running jobs, the workers with
 * their last beat, the providers. connect is called once the arguments are
 * valid. */
int ctl_status(int argc, char **argv, PGconn *(*connect)(void));

/* status_providers.c: the providers section of genqctl status — provider
 * windows, slots and breakers (SPEC §5, fleet-wide provider limits). Adds
 * "providers" (an array) to the status object, read from Redis (r NULL:
 * Redis is unreachable); 0, or -1 after saying why on stderr. */
int ctl_status_providers(ctl_redis *r, cJSON *status);
/* Prints that section for people. */
void ctl_status_print_providers(const cJSON *providers);

/* token.c: fills buf with 2*n random lowercase hex digits (buf holds
 * 2*n + 1 bytes). Returns 0 or -1. */
int ctl_random_hex(char *buf, size_t n);

#endif
