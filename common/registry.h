#ifndef GENQ_REGISTRY_H
#define GENQ_REGISTRY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "redis.h"

/* The worker registry in Redis (docs/fleet.md): every genq-worker writes a
 * record of itself on each beat, and takes operators' commands (quiet,
 * stop) from Redis, so that genqctl reaches a worker on any host.
 *
 *   genq:{q}:workers           sorted set: worker id → its last beat, in
 *                              the Redis server's clock (ms), so that ages
 *                              do not depend on any host's clock
 *   genq:{q}:worker:<id>       the record (JSON), expiring TTL ms after the
 *                              beat that wrote it: a dead worker ages out by
 *                              itself; readers drop its id from the set
 *   genq:{q}:worker-cmd:<id>   a command not yet taken (quiet, stop),
 *                              expiring after REGISTRY_COMMAND_TTL_MS
 *   genq:{q}:workers:control   channel: "<id> <command>", published with
 *                              the command key
 *
 * A command is both published (acted on at once) and left in the command
 * key, which the worker's next beat takes and deletes in the same script:
 * a worker whose subscription was down when the message went (Redis pub/sub
 * keeps nothing) acts on it within one beat. Acting twice is harmless: quiet
 * and stop are idempotent. Every key carries the {q} tag: one hash slot, so
 * the multi-key scripts run on Redis Cluster too. */

#define REGISTRY_WORKERS_KEY "genq:{q}:workers"
#define REGISTRY_RECORD_PREFIX "genq:{q}:worker:"
#define REGISTRY_COMMAND_PREFIX "genq:{q}:worker-cmd:"
#define REGISTRY_CONTROL_CHANNEL "genq:{q}:workers:control"
#define REGISTRY_ID_MAX 96 /* with its NUL */
#define REGISTRY_COMMAND_TTL_MS 60000
#define REGISTRY_LIST_MAX 10000 /* workers one listing reads */

typedef enum {
  REGISTRY_CMD_NONE,
  REGISTRY_CMD_QUIET, /* take no new job, finish what is held (SIGUSR1) */
  REGISTRY_CMD_STOP,  /* hand back or finish within the grace, exit 0 (SIGTERM) */
} registry_cmd;

/* "quiet", "stop" ("" for NONE). */
const char *registry_cmd_name(registry_cmd c);
/* The command named by s (len bytes); NONE when it names none. */
registry_cmd registry_cmd_parse(const char *s, size_t len);
/* A control message, "<id> <command>": its command when it is for id, else
 * NONE. */
registry_cmd registry_control_for(const char *msg, size_t len, const char *id);
/* 1 when id can name a worker: 1..95 bytes, printable ASCII, no space. */
int registry_id_ok(const char *id);

/* Called exactly once per registry_* call that returned 0. err is NULL on
 * success; when Redis failed or answered an error it says why. */

/* The beat: writes the record (JSON text) with its TTL, sets the worker's
 * last beat to the server's time, and takes the pending command if any.
 * now_ms is that time (Unix ms). Returns 0, or -1 when Redis is not
 * connected (cb never runs). */
typedef void (*registry_beat_cb)(long long now_ms, registry_cmd cmd, const char *err, void *arg);
int registry_beat(rds *r, const char *id, const char *record, long ttl_ms, registry_beat_cb cb,
                  void *arg);

/* A clean exit: the record, its last beat and any pending command go.
 * Fire and forget; 0 or -1 (not connected). */
int registry_leave(rds *r, const char *id);

/* The live workers: a JSON array (the callee's, freed after cb returns) of
 * their records, by id, each with last_beat_ms (server time) and
 * last_beat_age_ms added; now_ms the server's time. Ids whose record has
 * expired are dropped from the set on the way. */
typedef void (*registry_list_cb)(const cJSON *workers, long long now_ms, const char *err,
                                 void *arg);
int registry_list(rds *r, registry_list_cb cb, void *arg);

/* Sends cmd to the worker id: found is 1 when its record is live (the
 * command was published and left for its next beat), 0 when no live worker
 * has that id (nothing was sent). */
typedef void (*registry_send_cb)(int found, const char *err, void *arg);
int registry_send(rds *r, const char *id, registry_cmd cmd, registry_send_cb cb, void *arg);

#endif
