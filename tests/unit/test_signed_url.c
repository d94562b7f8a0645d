/* signed_url.c: a URL made is accepted until it expires; any changed byte of
 * id, expiry or signature, a wrong key, a malformed part or an expiry too far
 * ahead is refused; the signature matches an HMAC-SHA256 computed by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "signed_url.h"

#define KEY "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define KEY2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define ID "5f0c8a52-3b7e-4c1e-9a0d-2f6b1c9e8d47"
#define ID2 "a1b2c3d4-0000-4000-8000-000000000001"
#define NOW 1800000000LL

/* The parts of a made URL, split back out. */
typedef struct {
  char url[1024];
  char id[128], expires[64], sig[128];
} parts;

static void make(parts *p, const char *id, long long expires) {
  assert_int_equal(
      signed_url_make(KEY, "https://genq.example.com", id, expires, p->url, sizeof p->url), 0);
  const char *prefix = "https://genq.example.com/v1/uploads/";
  assert_true(strncmp(p->url, prefix, strlen(prefix)) == 0);
  assert_int_equal(sscanf(p->url + strlen(prefix), "%127[^/]/content?expires=%63[0-9]&sig=%127s",
                          p->id, p->expires, p->sig),
                   3);
}

static void test_made_url_has_the_documented_shape_and_signature(void **state) {
  parts p;
  make(&p, ID, NOW + 3600);
  assert_string_equal(p.id, ID);
  assert_string_equal(p.expires, "1800003600");
  /* sig = hex HMAC-SHA256(key, "upload:<id>:<expires>"), computed here apart */
  const char *msg = "upload:" ID ":1800003600";
  unsigned char mac[32];
  unsigned int len = 0;
  assert_non_null(HMAC(EVP_sha256(), KEY, (int)strlen(KEY), (const unsigned char *)msg, strlen(msg),
                       mac, &len));
  assert_int_equal(len, 32);
  char hex[65];
  for (size_t i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  assert_string_equal(p.sig, hex);
}

static void test_good_url_is_accepted_until_it_expires(void **state) {
  parts p;
  make(&p, ID, NOW + 3600);
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, p.sig, NOW), 1);
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, p.sig, NOW + 3600), 1); /* inclusive */
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, p.sig, NOW + 3601), 0); /* expired */
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, p.sig, NOW + 86400LL * 30), 0);
}

static void test_tampered_signature_is_refused(void **state) {
  parts p;
  make(&p, ID, NOW + 60);
  for (size_t i = 0; i < strlen(p.sig); i++) {
    char sig[128];
    snprintf(sig, sizeof sig, "%s", p.sig);
    sig[i] = sig[i] == '0' ? '1' : '0';
    assert_int_equal(signed_url_check(KEY, p.id, p.expires, sig, NOW), 0);
  }
  char upper[128];
  snprintf(upper, sizeof upper, "%s", p.sig);
  for (char *c = upper; *c; c++)
    if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
  if (strcmp(upper, p.sig) != 0) /* not canonical: refused */
    assert_int_equal(signed_url_check(KEY, p.id, p.expires, upper, NOW), 0);
  assert_int_equal(signed_url_check(KEY2, p.id, p.expires, p.sig, NOW), 0); /* other key */
}

static void test_signature_of_one_upload_does_not_open_another(void **state) {
  parts p;
  make(&p, ID, NOW + 60);
  assert_int_equal(signed_url_check(KEY, ID2, p.expires, p.sig, NOW), 0);
  char id[64];
  snprintf(id, sizeof id, "%s", ID);
  id[0] = '6'; /* one digit off */
  assert_int_equal(signed_url_check(KEY, id, p.expires, p.sig, NOW), 0);
  /* the same id spelled in capitals is another string: refused */
  char caps[64];
  snprintf(caps, sizeof caps, "%s", ID);
  for (char *c = caps; *c; c++)
    if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
  assert_int_equal(signed_url_check(KEY, caps, p.expires, p.sig, NOW), 0);
}

static void test_tampered_expiry_is_refused(void **state) {
  parts p;
  make(&p, ID, NOW + 60);
  assert_int_equal(signed_url_check(KEY, p.id, "1800000061", p.sig, NOW), 0); /* later */
  assert_int_equal(signed_url_check(KEY, p.id, "1800000059", p.sig, NOW), 0); /* earlier */
  /* the same number spelled otherwise */
  assert_int_equal(signed_url_check(KEY, p.id, "01800000060", p.sig, NOW), 0);
  assert_int_equal(signed_url_check(KEY, p.id, "+1800000060", p.sig, NOW), 0);
  assert_int_equal(signed_url_check(KEY, p.id, "1800000060 ", p.sig, NOW), 0);
  assert_int_equal(signed_url_check(KEY, p.id, "1800000060", p.sig, NOW), 1);
}

static void test_expiry_too_far_ahead_is_refused(void **state) {
  parts p;
  make(&p, ID, NOW + SIGNED_URL_MAX_AHEAD);
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, p.sig, NOW), 1); /* exactly 24 h */
  make(&p, ID, NOW + SIGNED_URL_MAX_AHEAD + 1);
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, p.sig, NOW), 0);
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, p.sig, NOW + 1), 1);
  make(&p, ID, 999999999999999999LL); /* genuinely signed, still refused */
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, p.sig, NOW), 0);
}

static void test_malformed_parts_are_refused(void **state) {
  parts p;
  make(&p, ID, NOW + 60);
  const char *bad_expires[] = {"", "-1", "abc", "1e9", "0x6b49d200", "18000000600000000000000"};
  for (size_t i = 0; i < sizeof bad_expires / sizeof bad_expires[0]; i++)
    assert_int_equal(signed_url_check(KEY, p.id, bad_expires[i], p.sig, NOW), 0);
  char sig[160];
  snprintf(sig, sizeof sig, "%.63s", p.sig); /* short */
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, sig, NOW), 0);
  snprintf(sig, sizeof sig, "%s0", p.sig); /* long */
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, sig, NOW), 0);
  snprintf(sig, sizeof sig, "%.63sg", p.sig); /* not hex */
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, sig, NOW), 0);
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, "", NOW), 0);
  assert_int_equal(signed_url_check(KEY, "", p.expires, p.sig, NOW), 0);
  assert_int_equal(signed_url_check(KEY, "../x", p.expires, p.sig, NOW), 0);
  assert_int_equal(signed_url_check(NULL, p.id, p.expires, p.sig, NOW), 0);
  assert_int_equal(signed_url_check(KEY, NULL, p.expires, p.sig, NOW), 0);
  assert_int_equal(signed_url_check(KEY, p.id, NULL, p.sig, NOW), 0);
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, NULL, NOW), 0);
  assert_int_equal(signed_url_check(KEY, p.id, p.expires, p.sig, -1), 0);
}

static void test_make_refuses_bad_input_and_small_buffers(void **state) {
  char out[512];
  assert_int_equal(signed_url_make("short key", "https://g.example", ID, NOW, out, sizeof out), -1);
  assert_string_equal(out, "");
  assert_int_equal(signed_url_make(NULL, "https://g.example", ID, NOW, out, sizeof out), -1);
  assert_int_equal(signed_url_make(KEY, "", ID, NOW, out, sizeof out), -1);
  assert_int_equal(signed_url_make(KEY, "/", ID, NOW, out, sizeof out), -1);
  assert_int_equal(signed_url_make(KEY, NULL, ID, NOW, out, sizeof out), -1);
  assert_int_equal(signed_url_make(KEY, "https://g.example", "a/b", NOW, out, sizeof out), -1);
  assert_int_equal(signed_url_make(KEY, "https://g.example", "a?b", NOW, out, sizeof out), -1);
  assert_int_equal(signed_url_make(KEY, "https://g.example", "", NOW, out, sizeof out), -1);
  assert_int_equal(signed_url_make(KEY, "https://g.example", ID, -5, out, sizeof out), -1);
  char small[100];
  assert_int_equal(signed_url_make(KEY, "https://g.example", ID, NOW, small, sizeof small), -1);
  assert_string_equal(small, "");
  /* a trailing '/' of the base is dropped */
  assert_int_equal(signed_url_make(KEY, "http://127.0.0.1:8080//", ID, NOW, out, sizeof out), 0);
  assert_true(strncmp(out, "http://127.0.0.1:8080/v1/uploads/" ID "/content?expires=",
                      strlen("http://127.0.0.1:8080/v1/uploads/" ID "/content?expires=")) == 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_made_url_has_the_documented_shape_and_signature),
      cmocka_unit_test(test_good_url_is_accepted_until_it_expires),
      cmocka_unit_test(test_tampered_signature_is_refused),
      cmocka_unit_test(test_signature_of_one_upload_does_not_open_another),
      cmocka_unit_test(test_tampered_expiry_is_refused),
      cmocka_unit_test(test_expiry_too_far_ahead_is_refused),
      cmocka_unit_test(test_malformed_parts_are_refused),
      cmocka_unit_test(test_make_refuses_bad_input_and_small_buffers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
