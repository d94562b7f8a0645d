/* limits_lua.h — the per-address refusal bucket's Redis script (limits.c;
 * its integration test runs the same text). KEYS[1] the address's bucket
 * (a hash: tokens, at in ms); ARGV: refill per minute, burst. Returns 0 when
 * a token was taken, else the milliseconds until one will be there (the
 * bucket unchanged). Timed by Redis's own clock (TIME); the key expires
 * once the bucket would be full again. */
#ifndef GENQ_API_LIMITS_LUA_H
#define GENQ_API_LIMITS_LUA_H

#define API_IP_BUCKET_LUA                                                                          \
  "local t = redis.call('TIME') "                                                                  \
  "local now = t[1] * 1000 + math.floor(t[2] / 1000) "                                             \
  "local rate = tonumber(ARGV[1]) / 60000 "                                                        \
  "local burst = tonumber(ARGV[2]) "                                                               \
  "local v = redis.call('HMGET', KEYS[1], 'tokens', 'at') "                                        \
  "local tokens = tonumber(v[1]) or burst "                                                        \
  "local at = tonumber(v[2]) or now "                                                              \
  "tokens = math.min(burst, tokens + math.max(0, now - at) * rate) "                               \
  "if tokens < 1 then return math.ceil((1 - tokens) / rate) end "                                  \
  "redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens - 1), 'at', now) "           \
  "redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000) "                                \
  "return 0"

#endif
