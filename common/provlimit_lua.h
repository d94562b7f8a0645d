/* provlimit_lua.h — the Redis side of the fleet-wide provider limits
 * (worker/provlimit.c, genqctl providers; docs/providers.md).
 *
 * Per provider P two keys in one hash slot ({P}):
 *   genq:prov:{P}:slots  sorted set: member = "<job id>:<step>@<worker id>|<user>", score =
 *                        the lease's end (Redis time, ms). A slot lives
 *                        while its holder renews it: a dead worker's slots
 *                        lapse by themselves.
 *   genq:prov:{P}:waiting, genq:prov:{P}:weights  the users waiting for
 *                        a slot and their weights (fairness, below)
 *   genq:prov:{P}:state  hash: max (the configured N, written by every
 *                        acquire), window (the adaptive limit, 1..max),
 *                        grown (successes since the window last grew),
 *                        paused_until (ms), limited (429s seen), rate,
 *                        tokens, tokens_at (the create token bucket),
 *                        breaker (closed|open|half_open|forced_open),
 *                        failures (consecutive), open_until (ms), probe
 *                        (the half-open probe's member), trips.
 * Every script reads the clock of Redis (TIME), so that every worker
 * agrees on it. */
#ifndef GENQ_PROVLIMIT_LUA_H
#define GENQ_PROVLIMIT_LUA_H

#define PROVLIMIT_KEY_FMT "genq:prov:{%s}:%s"

#define PROVLIMIT_LUA_NOW                                                                          \
  "local t = redis.call('TIME') "                                                                  \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "

/* Acquire. KEYS: slots, state, waiting, weights. ARGV: member
 * ("<job>:<step>@<worker>|<user>"), lease_ms, max (0: no slot limit), rate per
 * minute (0: none), user, weight (1..1000). Answers {1, 0} granted (or
 * renewed, when member holds one already), or {0, wait_ms}: paused or
 * breaker open (wait_ms until then), rate (until the next token), every
 * slot taken, or another waiting user's turn (wait_ms 0: ask again soon).
 *
 * Fairness: genq:prov:{P}:waiting is a sorted set of the users asking
 * (score: their last ask; gone 5 s after it), genq:prov:{P}:weights their
 * plans' weights. A free slot goes to the asker only when no other waiting
 * user holds fewer slots per weight than it does; a user granted leaves the
 * waiting set (its next step waiting joins it again at its next ask). */
#define PROVLIMIT_ACQUIRE_LUA                                                                      \
  PROVLIMIT_LUA_NOW                                                                                \
  "local member, lease, max, rate = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), "               \
  "tonumber(ARGV[4]) "                                                                             \
  "local user, weight = ARGV[5], math.max(1, tonumber(ARGV[6]) or 1) "                             \
  "local st = redis.call('HMGET', KEYS[2], 'window', 'paused_until', 'breaker', 'open_until', "    \
  "'probe', 'tokens', 'tokens_at') "                                                               \
  "local window = tonumber(st[1]) or max "                                                         \
  "if window > max then window = max end "                                                         \
  "if window < 1 then window = 1 end "                                                             \
  "redis.call('HSET', KEYS[2], 'max', max, 'window', window, 'rate', rate) "                       \
  "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "                                          \
  "if redis.call('ZSCORE', KEYS[1], member) then "                                                 \
  "  redis.call('ZADD', KEYS[1], now + lease, member) return {1, 0} end "                          \
  "redis.call('ZADD', KEYS[3], now, user) "                                                        \
  "redis.call('HSET', KEYS[4], user, weight) "                                                     \
  "local paused = tonumber(st[2]) or 0 "                                                           \
  "if paused > now then return {0, paused - now} end "                                             \
  "local br = st[3] or 'closed' "                                                                  \
  "if br == 'forced_open' then return {0, 1000} end "                                              \
  "if br == 'open' then "                                                                          \
  "  local ou = tonumber(st[4]) or 0 "                                                             \
  "  if ou > now then return {0, ou - now} end "                                                   \
  "  br = 'half_open' st[5] = false "                                                              \
  "  redis.call('HSET', KEYS[2], 'breaker', 'half_open', 'probe', '') end "                        \
  "if br == 'half_open' and st[5] and st[5] ~= '' and st[5] ~= member "                            \
  "  and redis.call('ZSCORE', KEYS[1], st[5]) then return {0, 1000} end "                          \
  "local held = redis.call('ZRANGE', KEYS[1], 0, -1) "                                             \
  "if max > 0 and #held >= window then return {0, 0} end "                                         \
  "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 5000) "                                   \
  "local used = {} "                                                                               \
  "for _, m in ipairs(held) do "                                                                   \
  "  local bar = string.find(m, '|', 1, true) "                                                    \
  "  local u = bar and string.sub(m, bar + 1) or '' "                                              \
  "  used[u] = (used[u] or 0) + 1 end "                                                            \
  "local mine = (used[user] or 0) / weight "                                                       \
  "for _, u in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do "                                   \
  "  if u ~= user then "                                                                           \
  "    local w = tonumber(redis.call('HGET', KEYS[4], u)) or 1 "                                   \
  "    if (used[u] or 0) / w < mine then return {0, 0} end end end "                               \
  "if rate > 0 then "                                                                              \
  "  local burst = math.max(1, math.floor(rate / 10)) "                                            \
  "  local tokens = tonumber(st[6]) or burst "                                                     \
  "  local at = tonumber(st[7]) or now "                                                           \
  "  tokens = math.min(burst, tokens + (now - at) * rate / 60000) "                                \
  "  if tokens < 1 then return {0, math.ceil((1 - tokens) * 60000 / rate)} end "                   \
  "  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens - 1), 'tokens_at', now) end "           \
  "if br == 'half_open' then redis.call('HSET', KEYS[2], 'probe', member) end "                    \
  "redis.call('ZADD', KEYS[1], now + lease, member) "                                              \
  "redis.call('ZREM', KEYS[3], user) "                                                             \
  "return {1, 0}"

/* An answer from the provider. KEYS: slots, state. ARGV: member, outcome
 * (ok | limited | failed), retry_after_ms (limited: the pause, <= 0: 1 s),
 * max, breaker failures (0: no breaker), cooldown_ms, drop (1: the member's
 * slot is freed: nothing was created). ok: the window grows by one after a
 * window's worth of successes (additive increase, up to max), failures
 * reset, the breaker closes. limited: the window halves (floor 1) and the
 * provider pauses until the time given, once per pause (the 429s of the
 * requests sent before it do not halve it again). failed: one more
 * consecutive failure; the breaker opens at the threshold, or at once when
 * half-open (the probe failed). Answers the window. */
#define PROVLIMIT_REPORT_LUA                                                                       \
  PROVLIMIT_LUA_NOW                                                                                \
  "local member, outcome, ra, max = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]) "       \
  "local k, cool, drop = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] "                           \
  "if drop == '1' then redis.call('ZREM', KEYS[1], member) end "                                   \
  "local st = redis.call('HMGET', KEYS[2], 'window', 'grown', 'breaker', 'paused_until') "         \
  "local window = tonumber(st[1]) or max "                                                         \
  "if window > max then window = max end "                                                         \
  "if window < 1 then window = 1 end "                                                             \
  "local br = st[3] or 'closed' "                                                                  \
  "if outcome == 'ok' then "                                                                       \
  "  local grown = (tonumber(st[2]) or 0) + 1 "                                                    \
  "  if window < max and grown >= window then window = window + 1 grown = 0 end "                  \
  "  redis.call('HSET', KEYS[2], 'window', window, 'grown', grown, 'failures', 0) "                \
  "  if br == 'open' or br == 'half_open' then "                                                   \
  "    redis.call('HSET', KEYS[2], 'breaker', 'closed', 'probe', '') end "                         \
  "elseif outcome == 'limited' then "                                                              \
  "  if ra <= 0 then ra = 1000 end "                                                               \
  "  local pu = tonumber(st[4]) or 0 "                                                             \
  "  if pu <= now then "                                                                           \
  "    window = math.max(1, math.floor(window / 2)) "                                              \
  "    redis.call('HSET', KEYS[2], 'window', window, 'grown', 0) end "                             \
  "  if now + ra > pu then redis.call('HSET', KEYS[2], 'paused_until', now + ra) end "             \
  "  redis.call('HINCRBY', KEYS[2], 'limited', 1) "                                                \
  "elseif outcome == 'failed' then "                                                               \
  "  local f = redis.call('HINCRBY', KEYS[2], 'failures', 1) "                                     \
  "  if k > 0 and (br == 'half_open' or (br == 'closed' and f >= k)) then "                        \
  "    redis.call('HSET', KEYS[2], 'breaker', 'open', 'open_until', now + cool, 'probe', '') "     \
  "    redis.call('HINCRBY', KEYS[2], 'trips', 1) end "                                            \
  "end "                                                                                           \
  "return window"

/* Renews held slots. KEYS: slots. ARGV: lease_ms, member... Only members
 * still held (XX): a lapsed slot is not taken back by a renewal. */
#define PROVLIMIT_RENEW_LUA                                                                        \
  PROVLIMIT_LUA_NOW                                                                                \
  "local upto = now + tonumber(ARGV[1]) "                                                          \
  "for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', upto, ARGV[i]) end "                      \
  "return #ARGV - 1"

/* What genqctl providers show reads. KEYS: slots, state. Answers {now,
 * slots in use, the state hash as a flat list}. */
#define PROVLIMIT_SHOW_LUA                                                                         \
  PROVLIMIT_LUA_NOW                                                                                \
  "return {now, redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'), "                               \
  "redis.call('HGETALL', KEYS[2])}"

#endif
