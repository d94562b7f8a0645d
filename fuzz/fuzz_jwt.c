/* fuzz_jwt — Clerk session tokens (common/jwt.c, jwt_cache.c), verified
 * against fuzz/jwt_test_key.pem, a key made for the fuzzer and nothing else,
 * at a fixed time (NOW), with an issuer and authorized parties set as
 * genq-api sets them.
 *
 * An input whose first byte is '{' is a claims set: it is signed with the
 * test key as jwt_sign_rs256 signs (that function reads the PEM key each
 * time, which would cost more than the rest) and the token verified, which
 * reaches the claim checks behind the signature. Any other input is a
 * token, verified as it comes: structure, base64url, header and payload,
 * signature.
 *
 * What must hold: the result is 0 with a user, or -1 with one of the
 * documented reasons and empty claims; the cache answers as jwt_verify
 * does, from a miss and from a hit; and each segment that decodes encodes
 * back to itself (one encoding per byte string). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cjson/cJSON.h>

#include "jwt.h"

#define NOW 1767225600 /* 2026-01-01T00:00:00Z */
#define ISSUER "https://clerk.genq.localhost"
#define PARTIES "http://localhost:3000, https://app.genq.example"

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    if (!(x)) __builtin_trap();                                                                    \
  } while (0)

static EVP_PKEY *key;
static jwt_verifier *verifier;

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  CHECK(f);
  static char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strdup(buf);
}

/* header.claims.signature, as jwt_sign_rs256 makes it (RS256 is
 * deterministic: PKCS#1 v1.5). NULL when claims are not a JSON object. */
static char *sign(const char *claims, size_t len) {
  static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
  cJSON *o = cJSON_ParseWithLength(claims, len);
  int is_obj = cJSON_IsObject(o);
  cJSON_Delete(o);
  if (!is_obj) return NULL;
  size_t siglen = (size_t)EVP_PKEY_get_size(key);
  char *tok = malloc((sizeof header + len + siglen) * 4 / 3 + 16);
  unsigned char *sig = malloc(siglen);
  CHECK(tok && sig);
  size_t n = jwt_b64url_encode((const unsigned char *)header, sizeof header - 1, tok);
  tok[n++] = '.';
  n += jwt_b64url_encode((const unsigned char *)claims, len, tok + n);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  CHECK(ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)tok, n) == 1);
  EVP_MD_CTX_free(ctx);
  tok[n++] = '.';
  jwt_b64url_encode(sig, siglen, tok + n);
  free(sig);
  return tok;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char err[256];
  char *pem = read_file(GENQ_FUZZ_JWT_KEY);
  BIO *in = BIO_new_mem_buf(pem, -1), *out = BIO_new(BIO_s_mem());
  key = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
  CHECK(key && out && PEM_write_bio_PUBKEY(out, key) == 1 && BIO_write(out, "", 1) == 1);
  char *pub;
  BIO_get_mem_data(out, &pub);
  CHECK(jwt_verifier_new(&verifier, pub, ISSUER, PARTIES, 5, err, sizeof err) == 0);
  jwt_verifier_set_max_lifetime(verifier, 86400); /* as genq-api sets it */
  /* The same token from jwt_sign_rs256 and from sign() below. */
  char *a = NULL, *b = sign("{\"sub\":\"a\"}", 11);
  CHECK(jwt_sign_rs256(pem, "{\"sub\":\"a\"}", &a, err, sizeof err) == 0 && b && !strcmp(a, b));
  free(a);
  free(b);
  free(pem);
  BIO_free(in);
  BIO_free(out);
  return 0;
}

static int known_reason(const char *why) {
  static const char *const reasons[] = {"malformed",   "bad alg",          "bad signature",
                                        "expired",     "not yet valid",    "issued in the future",
                                        "bad issuer",  "bad azp",          "missing azp",
                                        "missing sub", "lifetime too long"};
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (why == reasons[i] || (why && strcmp(why, reasons[i]) == 0)) return 1;
  return 0;
}

static void check_segments(const char *tok, size_t len) {
  size_t start = 0;
  unsigned char dec[8192];
  char enc[8192 * 4 / 3 + 8];
  for (size_t i = 0; i <= len; i++) {
    if (i < len && tok[i] != '.') continue;
    long n = jwt_b64url_decode(tok + start, i - start, dec, sizeof dec);
    if (n >= 0) {
      size_t m = jwt_b64url_encode(dec, (size_t)n, enc);
      CHECK(m == i - start && memcmp(enc, tok + start, m) == 0);
    }
    start = i + 1;
  }
}

static void verify(const char *tok, size_t len) {
  jwt_claims c, cc;
  const char *why = NULL, *cwhy = NULL;
  static const jwt_claims none;
  int rc = jwt_verify(verifier, tok, len, NOW, &c, &why);
  if (rc == 0) {
    CHECK(c.sub[0] && c.exp > NOW - 5);
    CHECK(memchr(c.sub, '\0', sizeof c.sub) && memchr(c.azp, '\0', sizeof c.azp) &&
          memchr(c.role, '\0', sizeof c.role));
  } else {
    CHECK(rc == -1 && known_reason(why) && memcmp(&c, &none, sizeof c) == 0);
  }
  /* A miss, then a hit: both answer what jwt_verify answered. */
  jwt_cache *cache = jwt_cache_new(4);
  CHECK(cache);
  for (int i = 0; i < 2; i++) {
    memset(&cc, 0x5a, sizeof cc);
    CHECK(jwt_cache_verify(cache, verifier, tok, len, NOW, &cc, &cwhy) == rc);
    CHECK(rc == 0 ? memcmp(&c, &cc, sizeof c) == 0 : strcmp(cwhy, why) == 0);
  }
  jwt_cache_free(cache);
  check_segments(tok, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 0 && data[0] == '{') {
    char *tok = sign((const char *)data, size);
    if (tok) verify(tok, strlen(tok));
    free(tok);
    return 0;
  }
  verify((const char *)data, size);
  return 0;
}
