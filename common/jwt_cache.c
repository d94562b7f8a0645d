/* jwt_cache.c — verified tokens remembered, so that a session polling every
 * second pays for one RS256 verification, not one per request (see jwt.h).
 *
 * Each slot holds the SHA-256 of a token that verified and its claims. A
 * lookup hashes the token, compares the whole digest (so a different token
 * never answers for another) and re-checks the claims' times; only tokens
 * that verified are ever stored, so a flood of bad tokens costs each one a
 * hash and a verification, as without the cache, and evicts nothing. */
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

typedef struct {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  int used;
  jwt_claims claims;
} jwt_slot;

struct jwt_cache {
  size_t mask;
  unsigned long long hits, misses;
  jwt_slot slots[];
};

jwt_cache *jwt_cache_new(size_t entries) {
  if (entries == 0 || (entries & (entries - 1)) != 0 || entries > (1u << 20)) return NULL;
  jwt_cache *c = calloc(1, sizeof *c + entries * sizeof(jwt_slot));
  if (c) c->mask = entries - 1;
  return c;
}

void jwt_cache_free(jwt_cache *c) {
  free(c);
}

int jwt_cache_verify(jwt_cache *c, const jwt_verifier *v, const char *token, size_t len, time_t now,
                     jwt_claims *out, const char **why) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)token, len, d);
  uint64_t h;
  memcpy(&h, d, sizeof h);
  jwt_slot *s = &c->slots[h & c->mask];
  if (s->used && memcmp(s->digest, d, sizeof d) == 0) {
    if (jwt_claims_current(v, &s->claims, now, why) != 0) {
      s->used = 0; /* expired for good (or not yet valid: verified again then) */
      return -1;
    }
    c->hits++;
    *out = s->claims;
    return 0;
  }
  c->misses++;
  if (jwt_verify(v, token, len, now, out, why) != 0) return -1;
  memcpy(s->digest, d, sizeof d);
  s->claims = *out;
  s->used = 1;
  return 0;
}

void jwt_cache_counts(const jwt_cache *c, unsigned long long *hits, unsigned long long *misses) {
  *hits = c->hits;
  *misses = c->misses;
}
