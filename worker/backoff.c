/* backoff.c — how long to wait: before a job's next attempt and before a
 * step's next status poll. Pure functions of the configuration and one
 * random draw (the caller's genq_rand64), so that tests can pin them. */
#include "worker.h"

long backoff_retry_ms(const genq_config *c, int attempt, long retry_after_ms, uint64_t rnd) {
  long ceiling = c->retry_base_ms;
  for (int i = 1; i < attempt && ceiling < c->retry_cap_ms; i++)
    ceiling *= 2;
  if (ceiling > c->retry_cap_ms) ceiling = c->retry_cap_ms;
  long delay = ceiling > 0 ? (long)(rnd % (uint64_t)(ceiling + 1)) : 0;
  if (retry_after_ms > delay) delay = retry_after_ms;
  if (delay > c->retry_cap_ms) delay = c->retry_cap_ms;
  return delay;
}

uint64_t backoff_poll_cap_ms(const genq_config *c, long max_ms, int polls, long retry_after_ms,
                             uint64_t rnd) {
  double d = c->poll_interval_ms, max = (double)max_ms;
  for (int i = 0; i < polls && d < max; i++)
    d *= 1.5;
  if (d > max) d = max;
  d = d * 0.9 + d * 0.2 * (double)(rnd % 1000) / 1000.0; /* polls of many steps spread out */
  if (retry_after_ms > d)                                /* the provider asked, within reason */
    d = (double)(retry_after_ms < c->retry_cap_ms ? retry_after_ms : c->retry_cap_ms);
  return (uint64_t)d;
}

uint64_t backoff_poll_ms(const genq_config *c, int polls, long retry_after_ms, uint64_t rnd) {
  return backoff_poll_cap_ms(c, c->poll_max_interval_ms, polls, retry_after_ms, rnd);
}
