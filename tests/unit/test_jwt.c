/* jwt.c: RS256 verification of Clerk session tokens against keys generated
 * here, and rejection of every forged, altered or malformed token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

#define NOW 1800000000LL
#define ISS "https://clerk.genq.test"
#define AZP "https://app.genq.test"
#define PARTIES "http://localhost:3000, " AZP

static char *pub_pem, *priv_pem, *other_priv_pem;
static EVP_PKEY *main_key;

static char *bio_string(BIO *b) {
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *s = malloc((size_t)n + 1);
  memcpy(s, data, (size_t)n);
  s[n] = '\0';
  return s;
}

static int setup_keys(void **state) {
  main_key = EVP_RSA_gen(2048);
  EVP_PKEY *other = EVP_RSA_gen(2048);
  if (!main_key || !other) return -1;
  BIO *b = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(b, main_key);
  pub_pem = bio_string(b);
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, main_key, NULL, NULL, 0, NULL, NULL);
  priv_pem = bio_string(b);
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, other, NULL, NULL, 0, NULL, NULL);
  other_priv_pem = bio_string(b);
  BIO_free(b);
  EVP_PKEY_free(other);
  return 0;
}

static int teardown_keys(void **state) {
  EVP_PKEY_free(main_key);
  free(pub_pem);
  free(priv_pem);
  free(other_priv_pem);
  return 0;
}

static jwt_verifier *verifier(const char *parties) {
  jwt_verifier *v;
  char err[256];
  if (jwt_verifier_new(&v, pub_pem, ISS, parties, 5, err, sizeof err) != 0) fail_msg("%s", err);
  return v;
}

static char *sign(const char *pem, const char *claims) {
  char *tok, err[256];
  if (jwt_sign_rs256(pem, claims, &tok, err, sizeof err) != 0) fail_msg("%s", err);
  return tok;
}

/* A standard valid claim set with extra members spliced in. */
static char *claims(const char *extra) {
  static char buf[4096];
  snprintf(buf, sizeof buf,
           "{\"sub\":\"user_2abc\",\"iss\":\"" ISS "\",\"azp\":\"" AZP "\",\"exp\":%lld,"
           "\"nbf\":%lld,\"iat\":%lld%s%s}",
           NOW + 60, NOW - 10, NOW - 10, extra && *extra ? "," : "", extra ? extra : "");
  return buf;
}

static int verify(const jwt_verifier *v, const char *tok, const char **why, jwt_claims *c) {
  jwt_claims local;
  return jwt_verify(v, tok, strlen(tok), NOW, c ? c : &local, why);
}

static void expect_reject(const jwt_verifier *v, const char *tok, const char *reason) {
  const char *why = NULL;
  jwt_claims c;
  if (verify(v, tok, &why, &c) == 0) fail_msg("accepted: expected %s", reason);
  assert_non_null(why);
  assert_string_equal(why, reason);
  assert_string_equal(c.sub, ""); /* nothing leaks out of a rejected token */
}

static void expect_claims_reject(const char *parties, const char *json, const char *reason) {
  jwt_verifier *v = verifier(parties);
  char *tok = sign(priv_pem, json);
  expect_reject(v, tok, reason);
  free(tok);
  jwt_verifier_free(v);
}

static char *b64(const void *data, size_t len) {
  char *out = malloc(len * 4 / 3 + 4);
  jwt_b64url_encode(data, len, out);
  return out;
}

/* header.payload.sig from raw JSON and an already encoded signature. */
static char *assemble(const char *header, const char *payload, const char *sig_b64) {
  char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
  size_t n = strlen(h) + strlen(p) + strlen(sig_b64) + 3;
  char *tok = malloc(n);
  snprintf(tok, n, "%s.%s.%s", h, p, sig_b64);
  free(h);
  free(p);
  return tok;
}

/* Signs header.payload with the main RSA key and the given digest. */
static char *rsa_token(const char *header, const char *payload, const EVP_MD *md) {
  char *unsigned_tok = assemble(header, payload, "");
  size_t n = strlen(unsigned_tok) - 1; /* drop the trailing '.' */
  unsigned char sig[512];
  size_t siglen = sizeof sig;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, main_key), 1);
  assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)unsigned_tok, n), 1);
  EVP_MD_CTX_free(ctx);
  char *s = b64(sig, siglen);
  unsigned_tok[n] = '\0';
  size_t total = n + strlen(s) + 2;
  char *tok = malloc(total);
  snprintf(tok, total, "%s.%s", unsigned_tok, s);
  free(s);
  free(unsigned_tok);
  return tok;
}

/* ---- base64url ---- */

static void test_b64url_round_trip_and_strictness(void **state) {
  const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\xfd"};
  const char *want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy", "__79"};
  for (size_t i = 0; i < 8; i++) {
    char out[32];
    unsigned char back[32];
    size_t n = jwt_b64url_encode((const unsigned char *)in[i], strlen(in[i]), out);
    assert_int_equal(n, strlen(want[i]));
    assert_string_equal(out, want[i]);
    assert_int_equal(jwt_b64url_decode(out, n, back, sizeof back), (long)strlen(in[i]));
    assert_memory_equal(back, in[i], strlen(in[i]));
  }
  unsigned char buf[32];
  assert_int_equal(jwt_b64url_decode("Zg==", 4, buf, sizeof buf), -1); /* padding */
  assert_int_equal(jwt_b64url_decode("Zm9+", 4, buf, sizeof buf), -1); /* std alphabet */
  assert_int_equal(jwt_b64url_decode("Zm9/", 4, buf, sizeof buf), -1);
  assert_int_equal(jwt_b64url_decode("Zm 9", 4, buf, sizeof buf), -1);
  assert_int_equal(jwt_b64url_decode("Z", 1, buf, sizeof buf), -1);  /* impossible length */
  assert_int_equal(jwt_b64url_decode("Zh", 2, buf, sizeof buf), -1); /* non-zero spare bits */
  assert_int_equal(jwt_b64url_decode("Zm9vYmFy", 8, buf, 5), -1);    /* does not fit */
}

/* ---- accepted tokens ---- */

static void test_valid_token_is_accepted_with_claims(void **state) {
  jwt_verifier *v = verifier(PARTIES);
  char *tok = sign(priv_pem, claims(NULL));
  jwt_claims c;
  const char *why = "unset";
  assert_int_equal(verify(v, tok, &why, &c), 0);
  assert_string_equal(c.sub, "user_2abc");
  assert_string_equal(c.azp, AZP);
  assert_string_equal(c.role, "");
  assert_int_equal(c.exp, NOW + 60);
  assert_int_equal(c.nbf, NOW - 10);
  assert_int_equal(c.iat, NOW - 10);
  free(tok);
  jwt_verifier_free(v);
}

static void test_exp_within_skew_is_still_valid(void **state) {
  jwt_verifier *v = verifier(NULL);
  char json[256];
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld}", NOW - 4);
  char *tok = sign(priv_pem, json);
  const char *why;
  assert_int_equal(verify(v, tok, &why, NULL), 0);
  free(tok);
  /* nbf and iat just inside the skew are fine too */
  snprintf(json, sizeof json,
           "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld}", NOW + 60,
           NOW + 5, NOW + 5);
  tok = sign(priv_pem, json);
  assert_int_equal(verify(v, tok, &why, NULL), 0);
  free(tok);
  jwt_verifier_free(v);
}

static void test_azp_not_required_when_parties_unset(void **state) {
  jwt_verifier *v = verifier("");
  char json[256];
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld}", NOW + 60);
  char *tok = sign(priv_pem, json);
  jwt_claims c;
  const char *why;
  assert_int_equal(verify(v, tok, &why, &c), 0);
  assert_string_equal(c.azp, "");
  free(tok);
  /* any azp is fine then */
  jwt_verifier_free(v);
  v = verifier(NULL);
  char json2[512];
  snprintf(json2, sizeof json2, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld,\"azp\":\"x\"}",
           NOW + 60);
  tok = sign(priv_pem, json2);
  assert_int_equal(verify(v, tok, &why, &c), 0);
  assert_string_equal(c.azp, "x");
  free(tok);
  jwt_verifier_free(v);
}

static void test_role_from_metadata_or_top_level(void **state) {
  jwt_verifier *v = verifier(PARTIES);
  jwt_claims c;
  const char *why;
  char *tok = sign(priv_pem, claims("\"metadata\":{\"role\":\"admin\"}"));
  assert_int_equal(verify(v, tok, &why, &c), 0);
  assert_string_equal(c.role, "admin");
  free(tok);
  tok = sign(priv_pem, claims("\"role\":\"admin\""));
  assert_int_equal(verify(v, tok, &why, &c), 0);
  assert_string_equal(c.role, "admin");
  free(tok);
  tok = sign(priv_pem, claims("\"metadata\":{\"role\":7}"));
  assert_int_equal(verify(v, tok, &why, &c), 0);
  assert_string_equal(c.role, "");
  free(tok);
  tok = sign(priv_pem,
             claims("\"role\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaadmin\""));
  assert_int_equal(verify(v, tok, &why, &c), 0);
  assert_string_equal(c.role, ""); /* too long to be a role: not truncated into one */
  free(tok);
  jwt_verifier_free(v);
}

/* ---- claims ---- */

static void test_expired_token_is_rejected(void **state) {
  char json[256];
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld}", NOW - 5);
  expect_claims_reject(NULL, json, "expired");
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld}", NOW - 3600);
  expect_claims_reject(NULL, json, "expired");
}

static void test_not_yet_valid_token_is_rejected(void **state) {
  char json[256];
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld,\"nbf\":%lld}",
           NOW + 600, NOW + 6);
  expect_claims_reject(NULL, json, "not yet valid");
}

static void test_iat_in_the_future_is_rejected(void **state) {
  char json[256];
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld,\"iat\":%lld}",
           NOW + 600, NOW + 300);
  expect_claims_reject(NULL, json, "issued in the future");
}

/* Capped at a day: a token that lives longer is refused, measured from
 * iat, or from now without one; a day (plus the skew) still passes. */
static void test_token_lifetime_over_the_cap_is_rejected(void **state) {
  jwt_verifier *v = verifier(NULL);
  jwt_verifier_set_max_lifetime(v, 86400);
  char json[256];
  const char *why = NULL;
  jwt_claims c;
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld,\"iat\":%lld}",
           NOW + 600, NOW - 86400);
  char *tok = sign(priv_pem, json);
  expect_reject(v, tok, "lifetime too long");
  free(tok);
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld}",
           NOW + 86400 * 365);
  tok = sign(priv_pem, json);
  expect_reject(v, tok, "lifetime too long");
  free(tok);
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld,\"iat\":%lld}",
           NOW + 86400, NOW);
  tok = sign(priv_pem, json);
  assert_int_equal(verify(v, tok, &why, &c), 0);
  free(tok);
  jwt_verifier_free(v);
}

static void test_missing_or_non_numeric_times_are_rejected(void **state) {
  expect_claims_reject(NULL, "{\"sub\":\"u\",\"iss\":\"" ISS "\"}", "malformed");
  expect_claims_reject(NULL, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":\"2099-01-01\"}",
                       "malformed");
  expect_claims_reject(NULL, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":1e300}", "malformed");
  char json[256];
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld,\"nbf\":null}",
           NOW + 60);
  expect_claims_reject(NULL, json, "malformed");
}

static void test_wrong_issuer_is_rejected(void **state) {
  char json[256];
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"https://evil.test\",\"exp\":%lld}",
           NOW + 60);
  expect_claims_reject(NULL, json, "bad issuer");
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"exp\":%lld}", NOW + 60);
  expect_claims_reject(NULL, json, "bad issuer");
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "/\",\"exp\":%lld}", NOW + 60);
  expect_claims_reject(NULL, json, "bad issuer");
}

static void test_wrong_azp_is_rejected(void **state) {
  char json[256];
  snprintf(json, sizeof json,
           "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld,\"azp\":\"https://evil.test\"}",
           NOW + 60);
  expect_claims_reject(PARTIES, json, "bad azp");
  snprintf(json, sizeof json,
           "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld,\"azp\":\"https://app.genq.tes\"}",
           NOW + 60);
  expect_claims_reject(PARTIES, json, "bad azp");
}

static void test_missing_azp_is_rejected_when_parties_set(void **state) {
  char json[256];
  snprintf(json, sizeof json, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":%lld}", NOW + 60);
  expect_claims_reject(PARTIES, json, "missing azp");
}

static void test_missing_or_empty_sub_is_rejected(void **state) {
  char json[256];
  snprintf(json, sizeof json, "{\"iss\":\"" ISS "\",\"exp\":%lld}", NOW + 60);
  expect_claims_reject(NULL, json, "missing sub");
  snprintf(json, sizeof json, "{\"sub\":\"\",\"iss\":\"" ISS "\",\"exp\":%lld}", NOW + 60);
  expect_claims_reject(NULL, json, "missing sub");
  snprintf(json, sizeof json, "{\"sub\":42,\"iss\":\"" ISS "\",\"exp\":%lld}", NOW + 60);
  expect_claims_reject(NULL, json, "missing sub");
}

/* ---- signatures and algorithms ---- */

static void test_tampered_payload_is_rejected(void **state) {
  jwt_verifier *v = verifier(PARTIES);
  char *tok = sign(priv_pem, claims(NULL));
  const char *sig = strrchr(tok, '.') + 1;
  char *forged = assemble("{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
                          claims("\"metadata\":{\"role\":\"admin\"}"), sig);
  expect_reject(v, forged, "bad signature");
  free(forged);
  /* one flipped signature character */
  char *flip = strdup(tok);
  char *last = flip + strlen(flip) - 5;
  *last = *last == 'A' ? 'B' : 'A';
  expect_reject(v, flip, "bad signature");
  free(flip);
  free(tok);
  jwt_verifier_free(v);
}

static void test_token_signed_by_another_key_is_rejected(void **state) {
  jwt_verifier *v = verifier(PARTIES);
  char *tok = sign(other_priv_pem, claims(NULL));
  expect_reject(v, tok, "bad signature");
  free(tok);
  jwt_verifier_free(v);
}

static void test_alg_none_is_rejected(void **state) {
  jwt_verifier *v = verifier(PARTIES);
  char *tok = assemble("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims(NULL), "");
  expect_reject(v, tok, "bad alg");
  free(tok);
  tok = assemble("{\"alg\":\"None\"}", claims(NULL), "");
  expect_reject(v, tok, "bad alg");
  free(tok);
  /* RS256 header but no signature */
  tok = assemble("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims(NULL), "");
  expect_reject(v, tok, "bad signature");
  free(tok);
  jwt_verifier_free(v);
}

static void test_hs256_signed_with_the_public_key_is_rejected(void **state) {
  jwt_verifier *v = verifier(PARTIES);
  char *tok = assemble("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims(NULL), "");
  size_t n = strlen(tok) - 1;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned maclen = 0;
  assert_non_null(
      HMAC(EVP_sha256(), pub_pem, (int)strlen(pub_pem), (unsigned char *)tok, n, mac, &maclen));
  char *s = b64(mac, maclen);
  tok[n] = '\0';
  size_t total = n + strlen(s) + 2;
  char *full = malloc(total);
  snprintf(full, total, "%s.%s", tok, s);
  expect_reject(v, full, "bad alg");
  free(full);
  free(s);
  free(tok);
  jwt_verifier_free(v);
}

static void test_other_algs_and_headers_are_rejected(void **state) {
  jwt_verifier *v = verifier(PARTIES);
  char *tok = rsa_token("{\"alg\":\"RS512\",\"typ\":\"JWT\"}", claims(NULL), EVP_sha512());
  expect_reject(v, tok, "bad alg");
  free(tok);
  tok = rsa_token("{\"typ\":\"JWT\"}", claims(NULL), EVP_sha256());
  expect_reject(v, tok, "bad alg");
  free(tok);
  tok = rsa_token("{\"alg\":\"rs256\"}", claims(NULL), EVP_sha256());
  expect_reject(v, tok, "bad alg");
  free(tok);
  tok = rsa_token("{\"alg\":[\"RS256\"]}", claims(NULL), EVP_sha256());
  expect_reject(v, tok, "bad alg");
  free(tok);
  /* a correctly signed RS256 token passes through rsa_token, so these checks
   * are not vacuous */
  tok = rsa_token("{\"alg\":\"RS256\",\"kid\":\"ins_1\"}", claims(NULL), EVP_sha256());
  const char *why;
  assert_int_equal(verify(v, tok, &why, NULL), 0);
  free(tok);
  tok = rsa_token("{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", claims(NULL), EVP_sha256());
  expect_reject(v, tok, "malformed");
  free(tok);
  tok = rsa_token("{\"alg\":\"RS256\",\"alg\":\"none\"}", claims(NULL), EVP_sha256());
  expect_reject(v, tok, "malformed");
  free(tok);
  tok = rsa_token("{\"alg\":\"RS256\",\"crit\":[\"b64\"]}", claims(NULL), EVP_sha256());
  expect_reject(v, tok, "malformed");
  free(tok);
  tok = rsa_token("{\"alg\":\"RS256\"}", "[1,2]", EVP_sha256());
  expect_reject(v, tok, "malformed");
  free(tok);
  jwt_verifier_free(v);
}

/* ---- malformed tokens ---- */

/* Appends member i (fmt holds one %d) to the string in buf. */
static void append_member(char *buf, size_t cap, const char *fmt, int i) {
  size_t n = strlen(buf);
  assert_true(snprintf(buf + n, cap - n, fmt, i) < (int)(cap - n));
}

/* At most 64 members in the header and in the payload: the duplicate check
 * compares every pair, so the count is bounded first. */
static void test_too_many_members_are_malformed(void **state) {
  jwt_verifier *v = verifier(PARTIES);
  const char *why;
  char extra[2048] = "";
  /* claims(NULL) has 6 members: 58 more reach the bound */
  for (int i = 0; i < 58; i++)
    append_member(extra, sizeof extra, i ? ",\"c%02d\":0" : "\"c%02d\":0", i);
  char *tok = sign(priv_pem, claims(extra));
  assert_int_equal(verify(v, tok, &why, NULL), 0);
  free(tok);
  append_member(extra, sizeof extra, ",\"c%02d\":0", 58);
  tok = sign(priv_pem, claims(extra));
  expect_reject(v, tok, "malformed");
  free(tok);

  /* alg and 63 more members, then 64 more */
  char header[2048] = "{\"alg\":\"RS256\"";
  for (int i = 0; i < 63; i++)
    append_member(header, sizeof header, ",\"h%02d\":0", i);
  append_member(header, sizeof header, "}", 0);
  tok = rsa_token(header, claims(NULL), EVP_sha256());
  assert_int_equal(verify(v, tok, &why, NULL), 0);
  free(tok);
  header[strlen(header) - 1] = '\0'; /* reopened */
  append_member(header, sizeof header, ",\"h%02d\":0}", 63);
  tok = rsa_token(header, claims(NULL), EVP_sha256());
  expect_reject(v, tok, "malformed");
  free(tok);

  /* a valid claim set padded to ~700 members, a token within the size bound */
  char big[5600];
  snprintf(big, sizeof big, "%s", claims(NULL));
  big[strlen(big) - 1] = '\0'; /* reopened */
  for (int i = 0; strlen(big) + 16 < sizeof big; i++)
    append_member(big, sizeof big, ",\"%d\":0", i);
  append_member(big, sizeof big, "}", 0);
  tok = sign(priv_pem, big);
  expect_reject(v, tok, "malformed");
  free(tok);
  jwt_verifier_free(v);
}

static void test_garbage_and_truncated_tokens_are_malformed(void **state) {
  jwt_verifier *v = verifier(PARTIES);
  char *good = sign(priv_pem, claims(NULL));
  char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
  const char *why;
  jwt_claims c;

  char *one = strndup(good, (size_t)(d1 - good));
  expect_reject(v, one, "malformed");
  char *two = strndup(good, (size_t)(d2 - good));
  expect_reject(v, two, "malformed");
  size_t n = strlen(good);
  char *four = malloc(n + 8);
  snprintf(four, n + 8, "%s.AAAA", good);
  expect_reject(v, four, "malformed");
  expect_reject(v, "", "malformed");
  expect_reject(v, "..", "malformed");
  expect_reject(v, "a.b.c", "malformed");
  expect_reject(v, "not a token at all", "malformed");

  /* bad base64 in the header and in the payload */
  char *bad = strdup(good);
  bad[1] = '+';
  expect_reject(v, bad, "malformed");
  free(bad);
  bad = strdup(good);
  d1 = strchr(bad, '.');
  d1[1] = '=';
  expect_reject(v, bad, "malformed");
  free(bad);
  /* padded encoding of the same token */
  bad = malloc(n + 8);
  size_t hl = (size_t)(strchr(good, '.') - good);
  snprintf(bad, n + 8, "%.*s==%s", (int)hl, good, good + hl);
  expect_reject(v, bad, "malformed");
  free(bad);

  /* length given excludes part of the token */
  assert_int_equal(jwt_verify(v, good, n - 1, NOW, &c, &why), -1);
  /* an embedded NUL inside the length */
  bad = strdup(good);
  bad[n - 3] = '\0';
  assert_int_equal(jwt_verify(v, bad, n, NOW, &c, &why), -1);
  assert_string_equal(why, "malformed");
  free(bad);

  /* huge token, and a payload too big to decode */
  size_t big = 64 * 1024;
  char *huge = malloc(big + 1);
  memset(huge, 'A', big);
  huge[100] = '.';
  huge[200] = '.';
  huge[big] = '\0';
  expect_reject(v, huge, "malformed");
  huge[8000] = '\0';
  expect_reject(v, huge, "malformed");
  free(huge);

  /* the intact token still verifies, so the cases above fail for their reason */
  assert_int_equal(verify(v, good, &why, &c), 0);
  free(one);
  free(two);
  free(four);
  free(good);
  jwt_verifier_free(v);
}

/* ---- construction ---- */

static void test_verifier_construction_errors(void **state) {
  jwt_verifier *v = (jwt_verifier *)1;
  char err[256];
  assert_int_equal(jwt_verifier_new(&v, "not a pem", ISS, NULL, 5, err, sizeof err), -1);
  assert_null(v);
  assert_true(strlen(err) > 0);
  assert_int_equal(jwt_verifier_new(&v, pub_pem, "", NULL, 5, err, sizeof err), -1);
  /* a verifier takes a public key only */
  assert_int_equal(jwt_verifier_new(&v, priv_pem, ISS, NULL, 5, err, sizeof err), -1);
  /* PKCS#1 "BEGIN RSA PUBLIC KEY" form verifies the same tokens */
  unsigned char *pkcs1 = NULL;
  size_t pkcs1_len = 0;
  OSSL_ENCODER_CTX *ectx =
      OSSL_ENCODER_CTX_new_for_pkey(main_key, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", NULL);
  assert_non_null(ectx);
  assert_int_equal(OSSL_ENCODER_to_data(ectx, &pkcs1, &pkcs1_len), 1);
  OSSL_ENCODER_CTX_free(ectx);
  char *pem = strndup((char *)pkcs1, pkcs1_len);
  OPENSSL_free(pkcs1);
  assert_non_null(strstr(pem, "BEGIN RSA PUBLIC KEY"));
  assert_int_equal(jwt_verifier_new(&v, pem, ISS, PARTIES, 5, err, sizeof err), 0);
  char *tok = sign(priv_pem, claims(NULL));
  const char *why;
  assert_int_equal(verify(v, tok, &why, NULL), 0);
  free(tok);
  free(pem);
  jwt_verifier_free(v);
  /* keys shorter than 2048 bits are refused */
  EVP_PKEY *small = EVP_RSA_gen(1024);
  BIO *b = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(b, small);
  char *small_pem = bio_string(b);
  BIO_free(b);
  EVP_PKEY_free(small);
  assert_int_equal(jwt_verifier_new(&v, small_pem, ISS, NULL, 5, err, sizeof err), -1);
  free(small_pem);
  jwt_verifier_free(NULL);
}

static void test_sign_rejects_bad_input(void **state) {
  char *tok = (char *)1, err[256];
  assert_int_equal(jwt_sign_rs256(priv_pem, "not json", &tok, err, sizeof err), -1);
  assert_null(tok);
  assert_int_equal(jwt_sign_rs256(priv_pem, "[1]", &tok, err, sizeof err), -1);
  assert_int_equal(jwt_sign_rs256(pub_pem, "{}", &tok, err, sizeof err), -1);
  assert_int_equal(jwt_sign_rs256("garbage", "{}", &tok, err, sizeof err), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_b64url_round_trip_and_strictness),
      cmocka_unit_test(test_valid_token_is_accepted_with_claims),
      cmocka_unit_test(test_exp_within_skew_is_still_valid),
      cmocka_unit_test(test_azp_not_required_when_parties_unset),
      cmocka_unit_test(test_role_from_metadata_or_top_level),
      cmocka_unit_test(test_expired_token_is_rejected),
      cmocka_unit_test(test_not_yet_valid_token_is_rejected),
      cmocka_unit_test(test_iat_in_the_future_is_rejected),
      cmocka_unit_test(test_token_lifetime_over_the_cap_is_rejected),
      cmocka_unit_test(test_missing_or_non_numeric_times_are_rejected),
      cmocka_unit_test(test_wrong_issuer_is_rejected),
      cmocka_unit_test(test_wrong_azp_is_rejected),
      cmocka_unit_test(test_missing_azp_is_rejected_when_parties_set),
      cmocka_unit_test(test_missing_or_empty_sub_is_rejected),
      cmocka_unit_test(test_tampered_payload_is_rejected),
      cmocka_unit_test(test_token_signed_by_another_key_is_rejected),
      cmocka_unit_test(test_alg_none_is_rejected),
      cmocka_unit_test(test_hs256_signed_with_the_public_key_is_rejected),
      cmocka_unit_test(test_other_algs_and_headers_are_rejected),
      cmocka_unit_test(test_garbage_and_truncated_tokens_are_malformed),
      cmocka_unit_test(test_too_many_members_are_malformed),
      cmocka_unit_test(test_verifier_construction_errors),
      cmocka_unit_test(test_sign_rejects_bad_input),
  };
  return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
