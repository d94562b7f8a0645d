/* provlimit.c — fleet-wide provider limits (SPEC §5, docs/providers.md).
 *
 * Before a step creates paid work at a provider it takes one of that
 * provider's slots: a member "<job id>:<step>@<worker>|<user>" of a sorted
 * set in Redis, scored by its lease's end (common/provlimit_lua.h). The acquire script
 * grants it only while fewer than the provider's window are held, the
 * provider is not paused (a 429), its breaker lets it through and its rate
 * bucket has a token. A step that gets none waits on its own timer (with
 * jitter) and asks again; nothing spins. The slot is renewed every third
 * of the lease while the step runs, and freed when the step ends: a
 * worker that dies holds its slots only until their lease lapses.
 *
 * A job's first step takes its slot before the job is claimed (admit.c),
 * so that a job waiting for one is still queued; the step adopts it.
 *
 * A provider with no limit configured (GENQ_<P>_MAX_IN_FLIGHT and
 * _RATE_PER_MINUTE 0, GENQ_BREAKER_FAILURES 0) costs nothing: no Redis
 * call at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "provlimit_lua.h"
#include "provlimit_state.h"
#include "rand.h"
#include "worker.h"

/* prov_id order is provlimit_state.h's: one list of the providers with limits */
_Static_assert(PROV_COUNT == PROVLIMIT_NPROVIDERS, "prov_id and provlimit_providers agree");
#define prov_names provlimit_providers

const char *provlimit_name(prov_id p) {
  return p < PROV_COUNT ? prov_names[p] : "?";
}

int provlimit_on(const worker *w, prov_id p) {
  const genq_config *c = &w->cfg;
  return c->provider_max_in_flight[p] > 0 || c->provider_rate_per_minute[p] > 0 ||
         c->breaker_failures > 0;
}

int provlimit_parse(const char *name, prov_id *out) {
  for (int p = 0; name && p < PROV_COUNT; p++)
    if (strcmp(name, prov_names[p]) == 0) {
      *out = (prov_id)p;
      return 0;
    }
  return -1;
}

static void keys(prov_id p, char *slots, char *state, size_t n) {
  snprintf(slots, n, PROVLIMIT_KEY_FMT, prov_names[p], "slots");
  snprintf(state, n, PROVLIMIT_KEY_FMT, prov_names[p], "state");
}

/* "<job id>:<step>@<worker id>|<user>": the user's share is counted from
 * the slots; the worker's id keeps two workers that both hold a message of
 * one job (after a Redis restart) from sharing one slot, which the loser's
 * release would free under the winner. */
void provlimit_member(const wjob *j, const char *step, char *out, size_t n) {
  snprintf(out, n, "%s:%s@%s|%s", j->id, step, j->w->id, j->user ? j->user : "");
}

static void member(const wstep *s, char *out, size_t n) {
  provlimit_member(s->j, s->name, out, n);
}

long provlimit_wait_ms(long ms) {
  if (ms > PROVLIMIT_MAX_WAIT_MS) ms = PROVLIMIT_MAX_WAIT_MS;
  if (ms < 0) ms = 0;
  return ms + (long)(genq_rand64() % PROVLIMIT_JITTER_MS);
}

int provlimit_answer(const redisReply *reply, long long *wait_ms) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER ||
      reply->element[1]->type != REDIS_REPLY_INTEGER)
    return -1;
  *wait_ms = reply->element[1]->integer;
  return reply->element[0]->integer == 1;
}

int provlimit_ask(wjob *j, prov_id p, const char *m, rds_cb cb, void *arg) {
  worker *w = j->w;
  char ks[64], kst[64], kw[64], kwt[64], lease[24], max[16], rate[16], weight[16];
  keys(p, ks, kst, sizeof ks);
  snprintf(kw, sizeof kw, PROVLIMIT_KEY_FMT, prov_names[p], "waiting");
  snprintf(kwt, sizeof kwt, PROVLIMIT_KEY_FMT, prov_names[p], "weights");
  snprintf(lease, sizeof lease, "%d", w->cfg.lease_seconds * 1000);
  snprintf(max, sizeof max, "%d", w->cfg.provider_max_in_flight[p]);
  snprintf(rate, sizeof rate, "%d", w->cfg.provider_rate_per_minute[p]);
  snprintf(weight, sizeof weight, "%d", j->weight > 0 ? j->weight : 1);
  const char *argv[] = {"EVAL", PROVLIMIT_ACQUIRE_LUA,  "4",   ks, kst, kw, kwt, m, lease, max,
                        rate,   j->user ? j->user : "", weight};
  return rds_command_argv(w->redis, cb, arg, 13, argv, NULL);
}

void provlimit_free(wjob *j, prov_id p, const char *step) {
  worker *w = j->w;
  if (w->redis_closed) return; /* the lease lets it lapse */
  char ks[64], kst[64], m[PROVLIMIT_MEMBER_MAX];
  keys(p, ks, kst, sizeof ks);
  provlimit_member(j, step, m, sizeof m);
  rds_command(w->redis, NULL, NULL, "ZREM %s %s", ks, m);
}

/* The job's user and plan weight (genq_job_fair_share), asked once per
 * job, the first time one of its steps wants a slot. */
static void acquire_send(wstep *s);
static void wait_then_ask(wstep *s, long ms);

static void share_read(const db_result *r, void *arg) {
  wstep *s = arg;
  wjob *j = s->j;
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  if (!j->user && r->ok && PQntuples(r->res) == 1) {
    j->user = strdup(PQgetvalue(r->res, 0, 0));
    j->weight = atoi(PQgetvalue(r->res, 0, 1));
  }
  if (!j->user) {
    if (r->ok && PQntuples(r->res) == 0) { /* the job is gone: nothing to run */
      runner_job_lost(j);
      runner_step_stopped(s);
      return;
    }
    log_warn("provider slot: the job's user not read, asking again", LS("job_id", j->id),
             LS("error", r->ok ? "out of memory" : r->error));
    wait_then_ask(s, PROVLIMIT_ERROR_WAIT_MS);
    return;
  }
  acquire_send(s);
}

/* The step's wait for a slot is over: ask again. */
static void wait_over(wstep *s) {
  acquire_send(s);
}

static void wait_then_ask(wstep *s, long ms) {
  runner_step_wait(s, (uint64_t)provlimit_wait_ms(ms), wait_over);
}

static void acquired(redisReply *reply, const char *err, void *arg) {
  wstep *s = arg;
  prov_id p = (prov_id)(s->slot_want - 1);
  long long wait = 0;
  int granted = provlimit_answer(reply, &wait);
  if (granted == 1) s->slot = s->slot_want; /* freed by step_end */
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  if (granted < 0) {
    log_warn("provider slot: Redis did not answer, asking again", LS("job_id", s->j->id),
             LS("provider", prov_names[p]),
             LS("error", err ? err : (reply && reply->str ? reply->str : "bad reply")));
    wait_then_ask(s, PROVLIMIT_ERROR_WAIT_MS);
    return;
  }
  if (s->slot) {
    void (*cb)(wstep *, int) = s->slot_cb;
    s->slot_want = 0;
    s->slot_cb = NULL;
    s->polls = 0; /* the status polls' backoff starts from here */
    cb(s, 1);
    return;
  }
  if (s->polls++ == 0)
    log_info("waiting for a provider slot", LS("job_id", s->j->id), LS("step", s->name),
             LS("provider", prov_names[p]), LI("wait_ms", wait));
  wait_then_ask(s, wait > 0 ? (long)wait : PROVLIMIT_FULL_WAIT_MS);
}

static void acquire_send(wstep *s) {
  worker *w = s->j->w;
  if (runner_step_should_stop(s)) {
    runner_step_stopped(s);
    return;
  }
  if (!s->j->user) {
    const char *p1[1] = {s->j->id};
    if (db_query(w->db, "select user_id, weight from genq_job_fair_share($1::uuid)", 1, p1,
                 share_read, s) != 0)
      wait_then_ask(s, PROVLIMIT_ERROR_WAIT_MS);
    return;
  }
  prov_id p = (prov_id)(s->slot_want - 1);
  char m[PROVLIMIT_MEMBER_MAX];
  member(s, m, sizeof m);
  if (provlimit_ask(s->j, p, m, acquired, s) != 0) {
    log_warn("provider slot: Redis is not connected, asking again", LS("job_id", s->j->id),
             LS("provider", prov_names[p]));
    wait_then_ask(s, PROVLIMIT_ERROR_WAIT_MS);
  }
}

void provlimit_acquire(wstep *s, prov_id p, void (*cb)(wstep *s, int ok)) {
  wjob *j = s->j;
  if (j->pre_slot == p + 1 && j->pre_step && strcmp(j->pre_step, s->name) == 0) {
    s->slot = j->pre_slot; /* taken before the claim (admit.c): the step's now */
    j->pre_slot = 0;
  }
  if (!provlimit_on(s->j->w, p) || s->slot == p + 1) {
    cb(s, 1);
    return;
  }
  s->slot_want = (uint8_t)(p + 1);
  s->slot_cb = cb;
  s->polls = 0;
  acquire_send(s);
}

/* Fire and forget: the window and breaker move on the provider's answer. */
static void send_report(wstep *s, prov_id p, const char *outcome, long retry_after_ms, int drop) {
  worker *w = s->j->w;
  char ks[64], kst[64], m[PROVLIMIT_MEMBER_MAX], ra[24], max[16], k[16], cool[16];
  keys(p, ks, kst, sizeof ks);
  member(s, m, sizeof m);
  snprintf(ra, sizeof ra, "%ld", retry_after_ms);
  snprintf(max, sizeof max, "%d", w->cfg.provider_max_in_flight[p]);
  snprintf(k, sizeof k, "%d", w->cfg.breaker_failures);
  snprintf(cool, sizeof cool, "%d", w->cfg.breaker_cooldown_ms);
  const char *argv[] = {"EVAL", PROVLIMIT_REPORT_LUA, "2", ks, kst, m, outcome, ra, max, k,
                        cool,   drop ? "1" : "0"};
  rds_command_argv(w->redis, NULL, NULL, 12, argv, NULL);
}

provlimit_outcome provlimit_classify(int status, const char *code) {
  if (status == 429) return PROVLIMIT_LIMITED;
  if (status >= 200 && status < 300) return PROVLIMIT_OK;
  if (status >= 500 || status == 408) return PROVLIMIT_FAILED;
  if (status == 0 && code &&
      (strcmp(code, "provider_timeout") == 0 || strcmp(code, "provider_network") == 0))
    return PROVLIMIT_FAILED;
  return PROVLIMIT_NEUTRAL;
}

provlimit_outcome provlimit_report(wstep *s, prov_id p, int status, const char *code,
                                   long retry_after_ms) {
  provlimit_outcome o = provlimit_classify(status, code);
  if (!provlimit_on(s->j->w, p) || o == PROVLIMIT_NEUTRAL) return o;
  int held = s->slot == p + 1;
  if (o == PROVLIMIT_LIMITED) {
    log_info("provider rate limited: the fleet's window shrinks", LS("job_id", s->j->id),
             LS("provider", prov_names[p]), LI("retry_after_ms", retry_after_ms));
    /* nothing was created: the slot goes back, and the step asks again */
    send_report(s, p, "limited", retry_after_ms, held);
    if (held) s->slot = 0;
  } else {
    send_report(s, p, o == PROVLIMIT_OK ? "ok" : "failed", 0, 0);
  }
  return o;
}

void provlimit_release(wstep *s) {
  if (!s->slot) return;
  prov_id p = (prov_id)(s->slot - 1);
  s->slot = 0;
  provlimit_free(s->j, p, s->name);
}

/* Every third of the lease: one renewal per provider naming every slot
 * held here. */
static void renew(uv_timer_t *t) {
  worker *w = t->data;
  if (w->inflight == 0 || w->redis_closed) return;
  for (int p = 0; p < PROV_COUNT; p++) {
    size_t n = 0, cap = 0;
    for (wjob *j = w->jobs; j; j = j->next) {
      cap += j->pre_slot == p + 1;
      for (wstep *s = j->running; s; s = s->next)
        cap += s->slot == p + 1;
    }
    if (!cap) continue;
    const char **argv = malloc((cap + 5) * sizeof *argv);
    char *mem = malloc(cap * PROVLIMIT_MEMBER_MAX);
    if (!argv || !mem) {
      free(argv);
      free(mem);
      continue;
    }
    char ks[64], kst[64], lease[24];
    keys((prov_id)p, ks, kst, sizeof ks);
    snprintf(lease, sizeof lease, "%d", w->cfg.lease_seconds * 1000);
    argv[0] = "EVAL";
    argv[1] = PROVLIMIT_RENEW_LUA;
    argv[2] = "1";
    argv[3] = ks;
    argv[4] = lease;
    for (wjob *j = w->jobs; j && n < cap; j = j->next) {
      if (j->pre_slot == p + 1) {
        provlimit_member(j, j->pre_step, mem + n * PROVLIMIT_MEMBER_MAX, PROVLIMIT_MEMBER_MAX);
        argv[5 + n] = mem + n * PROVLIMIT_MEMBER_MAX;
        n++;
      }
      for (wstep *s = j->running; s && n < cap; s = s->next)
        if (s->slot == p + 1) {
          member(s, mem + n * PROVLIMIT_MEMBER_MAX, PROVLIMIT_MEMBER_MAX);
          argv[5 + n] = mem + n * PROVLIMIT_MEMBER_MAX;
          n++;
        }
    }
    rds_command_argv(w->redis, NULL, NULL, (int)(5 + n), argv, NULL);
    free(argv);
    free(mem);
  }
}

void provlimit_start(worker *w) {
  uv_timer_init(w->loop, &w->provlimit_timer);
  w->provlimit_timer.data = w;
  int any = 0;
  for (int p = 0; p < PROV_COUNT; p++)
    any |= provlimit_on(w, (prov_id)p);
  if (!any) return;
  uint64_t every = (uint64_t)w->cfg.lease_seconds * 1000 / 3;
  uv_timer_start(&w->provlimit_timer, renew, every, every);
  for (int p = 0; p < PROV_COUNT; p++)
    if (provlimit_on(w, (prov_id)p))
      log_info("provider limits on", LS("provider", prov_names[p]),
               LI("max_in_flight", w->cfg.provider_max_in_flight[p]),
               LI("rate_per_minute", w->cfg.provider_rate_per_minute[p]),
               LI("breaker_failures", w->cfg.breaker_failures));
}
