/* announce.c — tells the genq-api processes what an operator changed: the
 * change notice (queue_publish_change) that every writer of a job sends
 * after its commit, so that their job caches and event streams show an
 * operator's retry at once (docs/http.md, "The job cache"), and the
 * revocation of an API key (QUEUE_ACCESS_CHANNEL), refused at once. Best
 * effort, like every notice: without GENQ_REDIS_URL, or when Redis does not
 * answer within 2 s, the API shows the change once its cache's 5 s have
 * passed, and refuses the key within a second. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "queue.h"

#define ANNOUNCE_TIMEOUT_MS 2000

static char *announce_url;

void ctl_announce_init(const char *redis_url) {
  free(announce_url);
  announce_url = redis_url ? strdup(redis_url) : NULL;
}

typedef struct {
  int done, timed_out, closed;
} announce_state;

static void announce_timeout(uv_timer_t *t) {
  ((announce_state *)t->data)->timed_out = 1;
}

static void announce_pong(redisReply *reply, const char *err, void *arg) {
  (void)reply;
  (void)err;
  ((announce_state *)arg)->done = 1;
}

static void announce_closed(void *arg) {
  ((announce_state *)arg)->closed = 1;
}

/* PUBLISHes each of msgs (n) on channel, or when channel is NULL sends the
 * change notice of each job id in msgs. */
static void publish_all(const char *channel, const char *const *msgs, int n) {
  if (!announce_url || n <= 0) return;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return;
  log_init("ctl", LOG_ERROR); /* a missed notice is not the operator's concern */
  announce_state st = {0};
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  timer.data = &st;
  uv_timer_start(&timer, announce_timeout, ANNOUNCE_TIMEOUT_MS, 0);
  rds *r;
  char err[256];
  if (rds_open(&r, &loop, announce_url, err, sizeof err) == 0) {
    while (!rds_connected(r) && !st.timed_out)
      uv_run(&loop, UV_RUN_ONCE);
    int sent = 0;
    for (int i = 0; i < n && rds_connected(r); i++)
      sent += (channel ? rds_command(r, NULL, NULL, "PUBLISH %s %s", channel, msgs[i])
                       : queue_publish_change(r, msgs[i])) == 0;
    /* one connection answers in order: the PONG comes after every PUBLISH */
    if (sent && rds_command(r, announce_pong, &st, "PING") == 0)
      while (!st.done && !st.timed_out)
        uv_run(&loop, UV_RUN_ONCE);
    rds_close(r, announce_closed, &st);
    while (!st.closed)
      uv_run(&loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

void ctl_announce(const char *const *ids, int n) {
  publish_all(NULL, ids, n);
}

void ctl_announce_revoked(const char *key_id) {
  char msg[64];
  snprintf(msg, sizeof msg, "key %s", key_id);
  const char *m[1] = {msg};
  publish_all(QUEUE_ACCESS_CHANNEL, m, 1);
}

void ctl_announce_canceled(const char *job_id) {
  publish_all(QUEUE_CANCEL_CHANNEL, &job_id, 1);
  publish_all(NULL, &job_id, 1);
}

void ctl_announce_action(const cJSON *action) {
  if (!cJSON_IsObject(action)) return;
  char *text = cJSON_PrintUnformatted(action);
  if (!text) return;
  const char *m[1] = {text};
  publish_all(QUEUE_ADMIN_CHANNEL, m, 1);
  cJSON_free(text);
}

const char *ctl_actor(void) {
  static char actor[400];
  if (actor[0]) return actor;
  char host[256] = "";
  const struct passwd *pw = getpwuid(geteuid());
  const char *user = pw && pw->pw_name ? pw->pw_name : getenv("USER");
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) snprintf(host, sizeof host, "unknown");
  char id[300];
  snprintf(id, sizeof id, "%.120s@%.170s", user && *user ? user : "unknown", host);
  cJSON *o = cJSON_CreateObject();
  char *s =
      o && cJSON_AddStringToObject(o, "kind", "genqctl") && cJSON_AddStringToObject(o, "id", id)
          ? cJSON_PrintUnformatted(o)
          : NULL;
  snprintf(actor, sizeof actor, "%s", s ? s : "{\"kind\":\"genqctl\",\"id\":\"unknown\"}");
  cJSON_free(s);
  cJSON_Delete(o);
  return actor;
}
