/* jwt_cache.c: a token verified once is answered from the cache while its
 * times hold, and nothing else ever is: not an altered token, not one
 * signed by another key, not an expired one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

#define NOW 1800000000LL
#define ISS "https://clerk.genq.test"

static char *pub_pem, *priv_pem, *other_priv_pem;

static char *pem_of(EVP_PKEY *k, int private_key) {
  BIO *b = BIO_new(BIO_s_mem());
  if (private_key)
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
  else
    PEM_write_bio_PUBKEY(b, k);
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *s = strndup(data, (size_t)n);
  BIO_free(b);
  return s;
}

static int setup_keys(void **state) {
  EVP_PKEY *k = EVP_RSA_gen(2048), *other = EVP_RSA_gen(2048);
  if (!k || !other) return -1;
  pub_pem = pem_of(k, 0);
  priv_pem = pem_of(k, 1);
  other_priv_pem = pem_of(other, 1);
  EVP_PKEY_free(k);
  EVP_PKEY_free(other);
  return 0;
}

static int teardown_keys(void **state) {
  free(pub_pem);
  free(priv_pem);
  free(other_priv_pem);
  return 0;
}

static char *token(const char *pem, const char *sub, long long exp, long long nbf) {
  char claims[512], *tok, err[256];
  snprintf(claims, sizeof claims,
           "{\"sub\":\"%s\",\"iss\":\"" ISS "\",\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld}", sub, exp,
           nbf, NOW - 10);
  if (jwt_sign_rs256(pem, claims, &tok, err, sizeof err) != 0) fail_msg("%s", err);
  return tok;
}

typedef struct {
  jwt_verifier *v;
  jwt_cache *c;
} fixture;

static int setup(void **state) {
  static fixture f;
  char err[256];
  if (jwt_verifier_new(&f.v, pub_pem, ISS, NULL, 5, err, sizeof err) != 0) return -1;
  f.c = jwt_cache_new(64);
  *state = &f;
  return f.c ? 0 : -1;
}

static int teardown(void **state) {
  fixture *f = *state;
  jwt_cache_free(f->c);
  jwt_verifier_free(f->v);
  return 0;
}

static int check(fixture *f, const char *tok, long long now, jwt_claims *c, const char **why) {
  *why = NULL;
  memset(c, 0, sizeof *c);
  return jwt_cache_verify(f->c, f->v, tok, strlen(tok), (time_t)now, c, why);
}

static void counts_are(fixture *f, unsigned long long hits, unsigned long long misses) {
  unsigned long long h, m;
  jwt_cache_counts(f->c, &h, &m);
  assert_int_equal(h, hits);
  assert_int_equal(m, misses);
}

static void test_a_verified_token_is_answered_from_the_cache(void **state) {
  fixture *f = *state;
  char *tok = token(priv_pem, "user_a", NOW + 60, NOW - 10);
  jwt_claims c;
  const char *why;
  assert_int_equal(check(f, tok, NOW, &c, &why), 0);
  counts_are(f, 0, 1);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(check(f, tok, NOW + i, &c, &why), 0);
    assert_string_equal(c.sub, "user_a");
    assert_int_equal(c.exp, NOW + 60);
  }
  counts_are(f, 3, 1);
  free(tok);
}

static void test_a_cached_token_expires_on_time(void **state) {
  fixture *f = *state;
  char *tok = token(priv_pem, "user_b", NOW + 60, NOW - 10);
  jwt_claims c;
  const char *why;
  assert_int_equal(check(f, tok, NOW, &c, &why), 0);
  assert_int_equal(check(f, tok, NOW + 60 + 5, &c, &why), -1); /* past exp + skew */
  assert_string_equal(why, "expired");
  assert_int_equal(check(f, tok, NOW + 60 + 5, &c, &why), -1); /* and when verified again */
  assert_string_equal(why, "expired");
  counts_are(f, 0, 2);
  free(tok);
}

/* An altered token (one byte of its signature) is another digest: it is
 * verified, refused, and does not evict the good one. */
static void test_an_altered_or_foreign_token_is_never_answered_for(void **state) {
  fixture *f = *state;
  char *tok = token(priv_pem, "user_c", NOW + 60, NOW - 10);
  jwt_claims c;
  const char *why;
  assert_int_equal(check(f, tok, NOW, &c, &why), 0);
  char *bad = strdup(tok);
  size_t n = strlen(bad);
  bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
  assert_int_equal(check(f, bad, NOW, &c, &why), -1);
  assert_string_equal(why, "bad signature");
  char *foreign = token(other_priv_pem, "user_c", NOW + 60, NOW - 10);
  assert_int_equal(check(f, foreign, NOW, &c, &why), -1);
  assert_string_equal(why, "bad signature");
  assert_int_equal(check(f, tok, NOW, &c, &why), 0);
  counts_are(f, 1, 3);
  free(tok);
  free(bad);
  free(foreign);
}

/* A token not valid yet is refused and not remembered; once valid it is
 * verified and cached like any other. */
static void test_a_token_not_yet_valid_is_verified_when_it_is(void **state) {
  fixture *f = *state;
  char *tok = token(priv_pem, "user_d", NOW + 600, NOW + 100);
  jwt_claims c;
  const char *why;
  assert_int_equal(check(f, tok, NOW, &c, &why), -1);
  assert_string_equal(why, "not yet valid");
  assert_int_equal(check(f, tok, NOW + 100, &c, &why), 0);
  assert_int_equal(check(f, tok, NOW + 101, &c, &why), 0);
  counts_are(f, 1, 2);
  free(tok);
}

/* Many sessions through a small cache: each answer is its own token's. */
static void test_tokens_sharing_slots_keep_their_own_claims(void **state) {
  fixture *f = *state;
  enum { N = 200 };
  char *toks[N];
  for (int i = 0; i < N; i++) {
    char sub[32];
    snprintf(sub, sizeof sub, "user_%d", i);
    toks[i] = token(priv_pem, sub, NOW + 60, NOW - 10);
  }
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < N; i++) {
      jwt_claims c;
      const char *why;
      char sub[32];
      snprintf(sub, sizeof sub, "user_%d", i);
      assert_int_equal(check(f, toks[i], NOW, &c, &why), 0);
      assert_string_equal(c.sub, sub);
    }
  for (int i = 0; i < N; i++)
    free(toks[i]);
}

static void test_sizes_must_be_powers_of_two(void **state) {
  assert_null(jwt_cache_new(0));
  assert_null(jwt_cache_new(100));
  jwt_cache *c = jwt_cache_new(1);
  assert_non_null(c);
  jwt_cache_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_a_verified_token_is_answered_from_the_cache, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_a_cached_token_expires_on_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_an_altered_or_foreign_token_is_never_answered_for, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_a_token_not_yet_valid_is_verified_when_it_is, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_tokens_sharing_slots_keep_their_own_claims, setup,
                                      teardown),
      cmocka_unit_test(test_sizes_must_be_powers_of_two),
  };
  return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
