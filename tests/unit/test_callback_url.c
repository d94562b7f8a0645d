/* callback_url.c: a callback URL made for a job carries a token that the
 * check accepts and maps back to that job; the MAC matches an HMAC-SHA256
 * computed by hand; any changed byte, another key, another job's MAC, a
 * malformed token or a short key is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "callback_url.h"

#define KEY "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define KEY2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define JOB "5f0c8a52-3b7e-4c1e-9a0d-2f6b1c9e8d47"
#define JOB2 "a1b2c3d4-0000-4000-8000-000000000001"
#define BASE "https://genq.example.com"

static const char *token_of(const char *url) {
  const char *p = strstr(url, CALLBACK_URL_LUMA_PATH);
  assert_non_null(p);
  return p + strlen(CALLBACK_URL_LUMA_PATH);
}

static void made_url_has_the_documented_shape_and_mac(void **state) {
  char url[512];
  assert_int_equal(callback_url_make(KEY, BASE "/", JOB, url, sizeof url), 0);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  const char *msg = "luma-callback:" JOB;
  HMAC(EVP_sha256(), KEY, (int)strlen(KEY), (const unsigned char *)msg, strlen(msg), mac, &n);
  char want[600] = BASE "/v1/callbacks/luma/" JOB ".";
  for (int i = 0; i < 16; i++)
    snprintf(want + strlen(want), 3, "%02x", mac[i]);
  assert_string_equal(url, want);
  assert_int_equal(strlen(token_of(url)), CALLBACK_URL_TOKEN_LEN);
}

static void its_token_names_its_job(void **state) {
  char url[512], job[37] = "";
  assert_int_equal(callback_url_make(KEY, BASE, JOB, url, sizeof url), 0);
  assert_int_equal(callback_url_check(KEY, token_of(url), job), 1);
  assert_string_equal(job, JOB);
}

static void forged_and_malformed_tokens_are_refused(void **state) {
  char url[512], other[512], job[37];
  assert_int_equal(callback_url_make(KEY, BASE, JOB, url, sizeof url), 0);
  assert_int_equal(callback_url_make(KEY, BASE, JOB2, other, sizeof other), 0);
  char t[128];
  snprintf(t, sizeof t, "%s", token_of(url));
  assert_int_equal(callback_url_check(KEY2, t, job), 0); /* another key */
  for (size_t i = 0; i < strlen(t); i++) {               /* every byte matters */
    char c = t[i];
    t[i] = c == '0' ? '1' : (c == '-' || c == '.') ? 'x' : '0';
    assert_int_equal(callback_url_check(KEY, t, job), 0);
    t[i] = c;
  }
  /* the job id of one, the MAC of another */
  char mixed[160];
  snprintf(mixed, sizeof mixed, "%.37s%s", token_of(url), token_of(other) + 37);
  assert_int_equal(callback_url_check(KEY, mixed, job), 0);
  /* shapes */
  assert_int_equal(callback_url_check(KEY, "", job), 0);
  assert_int_equal(callback_url_check(KEY, JOB, job), 0);
  snprintf(mixed, sizeof mixed, "%sa", t); /* one byte too long */
  assert_int_equal(callback_url_check(KEY, mixed, job), 0);
  snprintf(mixed, sizeof mixed, "%s", t);
  for (char *p = mixed + 37; *p; p++) /* upper-case hex is not the MAC's spelling */
    if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 32);
  if (strcmp(mixed, t) != 0) assert_int_equal(callback_url_check(KEY, mixed, job), 0);
  assert_int_equal(callback_url_check(NULL, t, job), 0);
  assert_int_equal(callback_url_check("short", t, job), 0);
  assert_int_equal(callback_url_check(KEY, NULL, job), 0);
  assert_int_equal(callback_url_check(KEY, t, NULL), 0);
}

static void make_refuses_unusable_input(void **state) {
  char url[512];
  assert_int_equal(callback_url_make("short", BASE, JOB, url, sizeof url), -1);
  assert_int_equal(callback_url_make(KEY, "", JOB, url, sizeof url), -1);
  assert_int_equal(callback_url_make(KEY, "///", JOB, url, sizeof url), -1);
  assert_int_equal(callback_url_make(KEY, BASE, "not-a-uuid", url, sizeof url), -1);
  assert_int_equal(callback_url_make(KEY, BASE, NULL, url, sizeof url), -1);
  assert_int_equal(callback_url_make(KEY, BASE, JOB, url, 40), -1);
  assert_string_equal(url, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(made_url_has_the_documented_shape_and_mac),
      cmocka_unit_test(its_token_names_its_job),
      cmocka_unit_test(forged_and_malformed_tokens_are_refused),
      cmocka_unit_test(make_refuses_unusable_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
