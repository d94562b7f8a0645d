/* RS256 verification of Clerk session tokens. The token is untrusted input:
 * everything is bounded, the alg is pinned before any key is used (so "none"
 * and HS256-with-the-public-key confusion cannot happen), and claims are only
 * looked at after the signature checks out. */
#include "jwt.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWT_TOKEN_MAX 8192
#define JWT_PART_MAX 6144 /* decoded header or payload */
#define JWT_SIG_MAX 1024  /* RSA-8192 */
#define JWT_PARTIES_MAX 32
#define JWT_KEYS_MAX 64   /* members of the header or of the payload */
#define JWT_TIME_MAX 1e15 /* claims beyond this are nonsense, and would overflow */

struct jwt_verifier {
  EVP_PKEY *key;
  char *issuer;
  char *parties[JWT_PARTIES_MAX];
  size_t nparties;
  int skew;
  long long max_lifetime; /* 0: none */
};

/* The reason, into err when the caller gave room for one. */
#define seterr(err, errlen, ...)                                                                   \
  ((err) && (errlen) ? (void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t jwt_b64url_encode(const unsigned char *in, size_t len, char *out) {
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64url_chars[v >> 18 & 63];
    out[o++] = b64url_chars[v >> 12 & 63];
    out[o++] = b64url_chars[v >> 6 & 63];
    out[o++] = b64url_chars[v & 63];
  }
  if (len - i == 1) {
    unsigned v = (unsigned)in[i] << 16;
    out[o++] = b64url_chars[v >> 18 & 63];
    out[o++] = b64url_chars[v >> 12 & 63];
  } else if (len - i == 2) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
    out[o++] = b64url_chars[v >> 18 & 63];
    out[o++] = b64url_chars[v >> 12 & 63];
    out[o++] = b64url_chars[v >> 6 & 63];
  }
  out[o] = '\0';
  return o;
}

static int b64url_val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

/* Strict: only the url alphabet, no padding, and the unused low bits of the
 * last character zero, so each byte string has exactly one encoding. */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap) {
  if (len % 4 == 1) return -1;
  size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
  if (need > outcap || need > (size_t)LONG_MAX) return -1;
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64url_val(in[i]);
    if (v < 0) return -1;
    acc = (acc << 6 | (unsigned)v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  if (bits && (acc & ((1u << bits) - 1))) return -1;
  return (long)o;
}

static EVP_PKEY *load_public_key(const char *pem) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if (!bio) return NULL;
  EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (key) return key;
  /* "BEGIN RSA PUBLIC KEY" (PKCS#1) needs the decoder. */
  OSSL_DECODER_CTX *dctx =
      OSSL_DECODER_CTX_new_for_pkey(&key, "PEM", NULL, "RSA", EVP_PKEY_PUBLIC_KEY, NULL, NULL);
  if (!dctx) return NULL;
  const unsigned char *data = (const unsigned char *)pem;
  size_t len = strlen(pem);
  if (!OSSL_DECODER_from_data(dctx, &data, &len)) key = NULL;
  OSSL_DECODER_CTX_free(dctx);
  return key;
}

int jwt_verifier_new(jwt_verifier **out, const char *pem, const char *issuer,
                     const char *authorized_parties, int skew_s, char *err, size_t errlen) {
  *out = NULL;
  if (!pem || !issuer || !*issuer) {
    seterr(err, errlen, "a PEM public key and a non-empty issuer are required");
    return -1;
  }
  jwt_verifier *v = calloc(1, sizeof *v);
  if (!v) goto oom;
  v->skew = skew_s < 0 ? 0 : skew_s;
  v->key = load_public_key(pem);
  if (!v->key || !EVP_PKEY_is_a(v->key, "RSA")) {
    seterr(err, errlen, "CLERK_JWT_KEY is not a PEM RSA public key");
    goto fail;
  }
  if (EVP_PKEY_get_bits(v->key) < 2048) {
    seterr(err, errlen, "CLERK_JWT_KEY is shorter than 2048 bits");
    goto fail;
  }
  if (!(v->issuer = strdup(issuer))) goto oom;
  for (const char *p = authorized_parties; p && *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *e = p;
    while (*e && *e != ',')
      e++;
    const char *t = e;
    while (t > p && t[-1] == ' ')
      t--;
    if (t > p) {
      if (v->nparties == JWT_PARTIES_MAX) {
        seterr(err, errlen, "CLERK_AUTHORIZED_PARTIES has more than %d entries", JWT_PARTIES_MAX);
        goto fail;
      }
      if (!(v->parties[v->nparties++] = strndup(p, (size_t)(t - p)))) goto oom;
    }
    p = e;
  }
  *out = v;
  return 0;
oom:
  seterr(err, errlen, "out of memory");
fail:
  jwt_verifier_free(v);
  return -1;
}

void jwt_verifier_set_max_lifetime(jwt_verifier *v, long long seconds) {
  v->max_lifetime = seconds > 0 ? seconds : 0;
}

void jwt_verifier_free(jwt_verifier *v) {
  if (!v) return;
  EVP_PKEY_free(v->key);
  free(v->issuer);
  for (size_t i = 0; i < v->nparties; i++)
    free(v->parties[i]);
  free(v);
}

/* A duplicated key would let two parsers read two different tokens. The
 * pairwise check runs only on an object of at most JWT_KEYS_MAX keys (a Clerk
 * token has ~15 claims), so an unsigned token cannot buy quadratic work. */
static int has_duplicate_or_too_many_keys(const cJSON *o) {
  int n = 0;
  for (const cJSON *a = o->child; a; a = a->next)
    if (++n > JWT_KEYS_MAX) return 1;
  for (const cJSON *a = o->child; a; a = a->next)
    for (const cJSON *b = a->next; b; b = b->next)
      if (a->string && b->string && strcmp(a->string, b->string) == 0) return 1;
  return 0;
}

static cJSON *decode_json_object(const char *in, size_t len) {
  unsigned char buf[JWT_PART_MAX];
  long n = jwt_b64url_decode(in, len, buf, sizeof buf);
  if (n <= 0) return NULL;
  cJSON *o = cJSON_ParseWithLength((const char *)buf, (size_t)n);
  if (!o) return NULL;
  if (!cJSON_IsObject(o) || has_duplicate_or_too_many_keys(o)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* Reads an optional NumericDate. Returns 0 (absent: *present 0), or -1. */
static int get_time(const cJSON *payload, const char *name, long long *out, int *present) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(payload, name);
  *present = it != NULL;
  *out = 0;
  if (!it) return 0;
  if (!cJSON_IsNumber(it) || !(it->valuedouble > -JWT_TIME_MAX && it->valuedouble < JWT_TIME_MAX))
    return -1;
  *out = (long long)it->valuedouble;
  return 0;
}

static int verify_signature(const jwt_verifier *v, const char *signed_part, size_t signed_len,
                            const char *sig_b64, size_t sig_len) {
  unsigned char sig[JWT_SIG_MAX];
  long n = jwt_b64url_decode(sig_b64, sig_len, sig, sizeof sig);
  if (n <= 0) return -1;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return -1;
  int ok =
      EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, v->key) == 1 &&
      EVP_DigestVerify(ctx, sig, (size_t)n, (const unsigned char *)signed_part, signed_len) == 1;
  EVP_MD_CTX_free(ctx);
  return ok ? 0 : -1;
}

int jwt_claims_current(const jwt_verifier *v, const jwt_claims *c, time_t now, const char **why) {
  long long t = (long long)now;
  if (c->exp <= t - v->skew) {
    *why = "expired";
    return -1;
  }
  if (c->nbf && c->nbf > t + v->skew) {
    *why = "not yet valid";
    return -1;
  }
  return 0;
}

static int check_claims(const jwt_verifier *v, const cJSON *p, time_t now, jwt_claims *c,
                        const char **why) {
  int has_exp, has_nbf, has_iat;
  if (get_time(p, "exp", &c->exp, &has_exp) < 0 || !has_exp ||
      get_time(p, "nbf", &c->nbf, &has_nbf) < 0 || get_time(p, "iat", &c->iat, &has_iat) < 0) {
    *why = "malformed";
    return -1;
  }
  long long t = (long long)now;
  if (!has_nbf) c->nbf = 0;
  if (jwt_claims_current(v, c, now, why) != 0) return -1;
  if (has_iat && c->iat > t + v->skew) {
    *why = "issued in the future";
    return -1;
  }
  /* A token minted to live for a year is a key, not a session. */
  if (v->max_lifetime && c->exp - (has_iat ? c->iat : t) > v->max_lifetime + v->skew) {
    *why = "lifetime too long";
    return -1;
  }
  const cJSON *iss = cJSON_GetObjectItemCaseSensitive(p, "iss");
  if (!cJSON_IsString(iss) || strcmp(iss->valuestring, v->issuer) != 0) {
    *why = "bad issuer";
    return -1;
  }
  const cJSON *azp = cJSON_GetObjectItemCaseSensitive(p, "azp");
  if (azp && (!cJSON_IsString(azp) || strlen(azp->valuestring) >= sizeof c->azp)) {
    *why = "bad azp";
    return -1;
  }
  if (v->nparties) {
    if (!azp) {
      *why = "missing azp";
      return -1;
    }
    size_t i = 0;
    while (i < v->nparties && strcmp(v->parties[i], azp->valuestring) != 0)
      i++;
    if (i == v->nparties) {
      *why = "bad azp";
      return -1;
    }
  }
  if (azp) snprintf(c->azp, sizeof c->azp, "%s", azp->valuestring);
  const cJSON *sub = cJSON_GetObjectItemCaseSensitive(p, "sub");
  if (!cJSON_IsString(sub) || !sub->valuestring[0] || strlen(sub->valuestring) >= sizeof c->sub) {
    *why = "missing sub";
    return -1;
  }
  snprintf(c->sub, sizeof c->sub, "%s", sub->valuestring);
  /* Clerk puts custom session claims at the top level. */
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(p, "metadata");
  const cJSON *role = cJSON_GetObjectItemCaseSensitive(meta, "role");
  if (!cJSON_IsString(role)) role = cJSON_GetObjectItemCaseSensitive(p, "role");
  if (cJSON_IsString(role) && strlen(role->valuestring) < sizeof c->role)
    snprintf(c->role, sizeof c->role, "%s", role->valuestring);
  return 0;
}

int jwt_verify(const jwt_verifier *v, const char *token, size_t len, time_t now, jwt_claims *out,
               const char **why) {
  static const char *unused;
  if (!why) why = &unused;
  memset(out, 0, sizeof *out);
  *why = "malformed";
  if (!v || !token || len == 0 || len > JWT_TOKEN_MAX || memchr(token, '\0', len)) return -1;
  const char *d1 = memchr(token, '.', len);
  if (!d1) return -1;
  const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
  if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) return -1;
  size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1);
  size_t slen = len - (size_t)(d2 + 1 - token);

  cJSON *header = decode_json_object(token, hlen);
  if (!header) return -1;
  const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
  const cJSON *typ = cJSON_GetObjectItemCaseSensitive(header, "typ");
  int alg_ok = cJSON_IsString(alg) && strcmp(alg->valuestring, "RS256") == 0;
  int typ_ok = !typ || (cJSON_IsString(typ) && strcmp(typ->valuestring, "JWT") == 0);
  /* We implement no extension, so a critical one must fail the token. */
  int crit_ok = !cJSON_GetObjectItemCaseSensitive(header, "crit");
  cJSON_Delete(header);
  if (!alg_ok) {
    *why = "bad alg";
    return -1;
  }
  if (!typ_ok || !crit_ok) return -1;

  cJSON *payload = decode_json_object(d1 + 1, plen);
  if (!payload) return -1;
  if (verify_signature(v, token, (size_t)(d2 - token), d2 + 1, slen) < 0) {
    cJSON_Delete(payload);
    *why = "bad signature";
    return -1;
  }
  int rc = check_claims(v, payload, now, out, why);
  cJSON_Delete(payload);
  if (rc < 0) {
    memset(out, 0, sizeof *out);
    return -1;
  }
  *why = NULL;
  return 0;
}

int jwt_sign_rs256(const char *private_pem, const char *claims_json, char **out, char *err,
                   size_t errlen) {
  static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
  *out = NULL;
  int rc = -1;
  EVP_PKEY *key = NULL;
  EVP_MD_CTX *ctx = NULL;
  unsigned char *sig = NULL;
  char *tok = NULL;

  cJSON *claims = cJSON_Parse(claims_json ? claims_json : "");
  int is_obj = cJSON_IsObject(claims);
  cJSON_Delete(claims);
  if (!claims_json || !is_obj) {
    seterr(err, errlen, "claims are not a JSON object");
    return -1;
  }
  BIO *bio = BIO_new_mem_buf(private_pem ? private_pem : "", -1);
  if (bio) key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (!key || !EVP_PKEY_is_a(key, "RSA")) {
    seterr(err, errlen, "not a PEM RSA private key");
    goto done;
  }

  size_t hl = strlen(header), cl = strlen(claims_json);
  size_t siglen = (size_t)EVP_PKEY_get_size(key);
  size_t cap = (hl + cl + siglen) * 4 / 3 + 16;
  if (!(tok = malloc(cap)) || !(sig = malloc(siglen))) {
    seterr(err, errlen, "out of memory");
    goto done;
  }
  size_t n = jwt_b64url_encode((const unsigned char *)header, hl, tok);
  tok[n++] = '.';
  n += jwt_b64url_encode((const unsigned char *)claims_json, cl, tok + n);
  if (!(ctx = EVP_MD_CTX_new()) || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
      EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)tok, n) != 1) {
    seterr(err, errlen, "RSA signing failed");
    goto done;
  }
  tok[n++] = '.';
  jwt_b64url_encode(sig, siglen, tok + n); /* NUL-terminates the token */
  *out = tok;
  tok = NULL;
  rc = 0;
done:
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  free(sig);
  free(tok);
  return rc;
}
