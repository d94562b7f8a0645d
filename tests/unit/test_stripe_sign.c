/* stripe_sign.c: signatures match vectors derived independently with
 * `printf '%s' '<t>.<body>' | openssl dgst -sha256 -hmac <secret>`; any v1
 * of a header may match and any of several secrets may have signed; v0
 * and unknown keys are ignored; a stale or future t, a tampered body, a
 * wrong secret and malformed headers are refused with their own status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "stripe_sign.h"

#define SECRET "whsec_test_secret"
#define OTHER "whsec_other"
#define T 1733180000LL
#define BODY "{\"id\":\"evt_1\",\"object\":\"event\"}"
/* openssl dgst -sha256 -hmac whsec_test_secret over "1733180000.<BODY>" */
#define SIG "7d37e7095e6a1c5945fff33684b5a9788113344868cfc4bd33ab10b2fdfd18e3"
/* the same with -hmac whsec_other */
#define SIG_OTHER "fe7d97cebecd8d5eea334524fabe02e7ea39076028fe0820e83619c7c4dbadae"
/* "1700000000." (an empty body) with whsec_test_secret */
#define SIG_EMPTY "316b9ab98c15bfa039d243f3196acee619cf29749a91a634e6a8154e2f7b6727"

static stripe_sign_status verify(const char *header, const char *secrets, const char *body,
                                 long long now) {
  return stripe_sign_verify(header, secrets, body, strlen(body), now, STRIPE_SIGN_TOLERANCE_S,
                            NULL);
}

static void test_compute_matches_openssl_vectors(void **state) {
  char out[STRIPE_SIGN_HEX + 1];
  assert_int_equal(stripe_sign_compute(SECRET, strlen(SECRET), T, BODY, strlen(BODY), out), 0);
  assert_string_equal(out, SIG);
  assert_int_equal(stripe_sign_compute(OTHER, strlen(OTHER), T, BODY, strlen(BODY), out), 0);
  assert_string_equal(out, SIG_OTHER);
  assert_int_equal(stripe_sign_compute(SECRET, strlen(SECRET), 1700000000LL, "", 0, out), 0);
  assert_string_equal(out, SIG_EMPTY);
  assert_int_equal(stripe_sign_compute("", 0, T, BODY, strlen(BODY), out), -1);
  assert_int_equal(stripe_sign_compute(SECRET, strlen(SECRET), -1, BODY, strlen(BODY), out), -1);
}

static void test_a_valid_header_verifies(void **state) {
  long long t = 0;
  assert_int_equal(stripe_sign_verify("t=1733180000,v1=" SIG, SECRET, BODY, strlen(BODY), T,
                                      STRIPE_SIGN_TOLERANCE_S, &t),
                   STRIPE_SIGN_OK);
  assert_true(t == T);
  /* spaces after commas, v0 and unknown keys ignored, any order */
  assert_int_equal(verify("t=1733180000, v0=abc, scheme=x, v1=" SIG, SECRET, BODY, T),
                   STRIPE_SIGN_OK);
  assert_int_equal(verify("v1=" SIG ",t=1733180000", SECRET, BODY, T), STRIPE_SIGN_OK);
  assert_int_equal(verify("t=1700000000,v1=" SIG_EMPTY, SECRET, "", 1700000000LL), STRIPE_SIGN_OK);
}

static void test_any_v1_may_match(void **state) {
  /* Stripe rolling its secret: one v1 per secret, genq has one of them */
  assert_int_equal(verify("t=1733180000,v1=" SIG_OTHER ",v1=" SIG, SECRET, BODY, T),
                   STRIPE_SIGN_OK);
  assert_int_equal(verify("t=1733180000,v1=" SIG ",v1=" SIG_OTHER, SECRET, BODY, T),
                   STRIPE_SIGN_OK);
  /* a v1 that is not 64 hex digits matches nothing but spoils nothing */
  assert_int_equal(verify("t=1733180000,v1=zz,v1=" SIG, SECRET, BODY, T), STRIPE_SIGN_OK);
}

static void test_any_secret_may_have_signed(void **state) {
  assert_int_equal(verify("t=1733180000,v1=" SIG_OTHER, SECRET "," OTHER, BODY, T), STRIPE_SIGN_OK);
  assert_int_equal(verify("t=1733180000,v1=" SIG, " " OTHER " , " SECRET " ", BODY, T),
                   STRIPE_SIGN_OK);
  assert_int_equal(verify("t=1733180000,v1=" SIG_OTHER, SECRET, BODY, T), STRIPE_SIGN_MISMATCH);
  assert_int_equal(verify("t=1733180000,v1=" SIG, ",,", BODY, T), STRIPE_SIGN_MISMATCH);
}

static void test_tolerance_both_ways(void **state) {
  assert_int_equal(verify("t=1733180000,v1=" SIG, SECRET, BODY, T + 300), STRIPE_SIGN_OK);
  assert_int_equal(verify("t=1733180000,v1=" SIG, SECRET, BODY, T - 300), STRIPE_SIGN_OK);
  assert_int_equal(verify("t=1733180000,v1=" SIG, SECRET, BODY, T + 301), STRIPE_SIGN_STALE);
  assert_int_equal(verify("t=1733180000,v1=" SIG, SECRET, BODY, T - 301), STRIPE_SIGN_STALE);
}

static void test_tampering_is_refused(void **state) {
  /* one byte of the body, the timestamp, the signature */
  assert_int_equal(
      verify("t=1733180000,v1=" SIG, SECRET, "{\"id\":\"evt_2\",\"object\":\"event\"}", T),
      STRIPE_SIGN_MISMATCH);
  assert_int_equal(verify("t=1733180001,v1=" SIG, SECRET, BODY, T), STRIPE_SIGN_MISMATCH);
  char bad[] = "t=1733180000,v1=" SIG;
  bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '3' ? '4' : '3';
  assert_int_equal(verify(bad, SECRET, BODY, T), STRIPE_SIGN_MISMATCH);
  /* a body with a trailing newline is another body */
  assert_int_equal(verify("t=1733180000,v1=" SIG, SECRET, BODY "\n", T), STRIPE_SIGN_MISMATCH);
}

static void test_malformed_headers(void **state) {
  const char *bad[] = {"",
                       "v1=" SIG,
                       "t=,v1=" SIG,
                       "t=abc,v1=" SIG,
                       "t=-1,v1=" SIG,
                       "t=1733180000",
                       "t=1733180000,v0=" SIG,
                       "t=1733180000,t=1733180000,v1=" SIG,
                       "t=1234567890123456,v1=" SIG,
                       "garbage"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(verify(bad[i], SECRET, BODY, T), STRIPE_SIGN_MALFORMED);
  assert_int_equal(stripe_sign_verify(NULL, SECRET, BODY, strlen(BODY), T, 300, NULL),
                   STRIPE_SIGN_MALFORMED);
  /* a header of only bad v1 values has none to match */
  assert_int_equal(verify("t=1733180000,v1=short", SECRET, BODY, T), STRIPE_SIGN_MALFORMED);
  assert_string_equal(stripe_sign_status_name(STRIPE_SIGN_STALE), "stale");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compute_matches_openssl_vectors),
      cmocka_unit_test(test_a_valid_header_verifies),
      cmocka_unit_test(test_any_v1_may_match),
      cmocka_unit_test(test_any_secret_may_have_signed),
      cmocka_unit_test(test_tolerance_both_ways),
      cmocka_unit_test(test_tampering_is_refused),
      cmocka_unit_test(test_malformed_headers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
