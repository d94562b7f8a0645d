#ifndef GENQ_JWT_H
#define GENQ_JWT_H

#include <stddef.h>
#include <time.h>

/* Clerk session tokens: RS256 JWTs verified offline with OpenSSL against a
 * PEM public key. Order: structure and header (alg must be exactly "RS256";
 * "none", HS256 and every other alg are rejected), then the signature, then
 * the claims: exp > now - skew, nbf <= now + skew, iat <= now + skew (each
 * required to be a number when present; exp required), iss equal to the
 * configured issuer, azp in the authorized parties when that list is set
 * (a missing azp is then rejected), sub a non-empty string. */

typedef struct jwt_verifier jwt_verifier;

typedef struct {
  char sub[256]; /* the user id */
  char azp[256]; /* "" if absent */
  char role[32]; /* "admin" when public/session metadata says so (metadata.role or role claim), else
                    "" */
  long long exp, nbf, iat; /* 0 if absent */
} jwt_claims;

/* pem: PEM public key ("\n" escapes already turned into newlines by config).
 * issuer: required, non-empty. authorized_parties: NULL/"" or a comma list of
 * origins. skew_s: allowed clock skew (5). Returns 0, or -1 with a message. */
int jwt_verifier_new(jwt_verifier **out, const char *pem, const char *issuer,
                     const char *authorized_parties, int skew_s, char *err, size_t errlen);
void jwt_verifier_free(jwt_verifier *v);
/* Refuses tokens meant to live longer than seconds ("lifetime too long"):
 * exp - iat, or exp - now without iat, beyond it (plus the skew). 0: no cap. */
void jwt_verifier_set_max_lifetime(jwt_verifier *v, long long seconds);

/* Returns 0 and fills *out, or -1 with *why set to a static reason
 * ("malformed", "bad alg", "bad signature", "expired", "not yet valid",
 * "issued in the future", "lifetime too long", "bad issuer", "bad azp", "missing azp",
 * "missing sub"). */
int jwt_verify(const jwt_verifier *v, const char *token, size_t len, time_t now, jwt_claims *out,
               const char **why);

/* 0 when claims that verified earlier still hold at now (exp, nbf, with
 * the verifier's skew), or -1 with *why "expired" or "not yet valid". */
int jwt_claims_current(const jwt_verifier *v, const jwt_claims *c, time_t now, const char **why);

/* A cache of verified tokens in front of jwt_verify (common/jwt_cache.c):
 * a token seen before, byte for byte (by SHA-256), is answered from the
 * cache while jwt_claims_current holds, without the RS256 check; any other
 * token is verified and, when valid, remembered. Fixed size (entries, a
 * power of two), direct-mapped: a newer token takes its slot. One thread. */
typedef struct jwt_cache jwt_cache;
jwt_cache *jwt_cache_new(size_t entries); /* NULL on OOM or a bad size */
void jwt_cache_free(jwt_cache *c);
/* Same contract as jwt_verify. */
int jwt_cache_verify(jwt_cache *c, const jwt_verifier *v, const char *token, size_t len, time_t now,
                     jwt_claims *out, const char **why);
/* Answers from the cache so far, and verifications it had to run. */
void jwt_cache_counts(const jwt_cache *c, unsigned long long *hits, unsigned long long *misses);

/* Signs claims_json (a JSON object) with a PEM RSA private key as RS256.
 * Returns 0 and a malloc'd token in *out, or -1 with a message. For genqctl
 * token and the tests. */
int jwt_sign_rs256(const char *private_pem, const char *claims_json, char **out, char *err,
                   size_t errlen);

/* base64url without padding; out must hold (len*4/3 + 4) bytes; returns the
 * length written. Decoding returns the length or -1 on bad input. */
size_t jwt_b64url_encode(const unsigned char *in, size_t len, char *out);
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap);

#endif
