/* webhook_sign.c: the Standard Webhooks specification's own example signs
 * to its published signature; secrets encode and decode; any change of id,
 * timestamp, body or key changes the signature; bad arguments are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "b64.h"
#include "webhook_sign.h"

/* The example of the Standard Webhooks specification (and of the Svix
 * libraries' tests). */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS 1614265330LL
#define SPEC_BODY "{\"test\": 2432232314}"
#define SPEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_the_specification_example_signs_to_its_signature(void **state) {
  unsigned char key[WEBHOOK_KEY_MAX];
  int n = webhook_secret_decode(SPEC_SECRET, key);
  assert_int_equal(n, 24);
  char sig[WEBHOOK_SIGNATURE_MAX];
  assert_int_equal(
      webhook_sign(key, (size_t)n, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
  assert_string_equal(sig, SPEC_SIG);
}

static void test_any_change_changes_the_signature(void **state) {
  unsigned char key[WEBHOOK_KEY_MAX];
  int n = webhook_secret_decode(SPEC_SECRET, key);
  char sig[WEBHOOK_SIGNATURE_MAX];
  assert_int_equal(webhook_sign(key, (size_t)n, "msg_p5jXN8AQM9LWM0D4loKWxJel", SPEC_TS, SPEC_BODY,
                                strlen(SPEC_BODY), sig),
                   0);
  assert_string_not_equal(sig, SPEC_SIG);
  assert_int_equal(
      webhook_sign(key, (size_t)n, SPEC_ID, SPEC_TS + 1, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
  assert_string_not_equal(sig, SPEC_SIG);
  assert_int_equal(webhook_sign(key, (size_t)n, SPEC_ID, SPEC_TS, "{\"test\": 2432232315}",
                                strlen(SPEC_BODY), sig),
                   0);
  assert_string_not_equal(sig, SPEC_SIG);
  key[0] ^= 1;
  assert_int_equal(
      webhook_sign(key, (size_t)n, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
  assert_string_not_equal(sig, SPEC_SIG);
  assert_int_equal(strlen(sig), WEBHOOK_SIGNATURE_MAX - 1);
  /* an empty body is a message too */
  assert_int_equal(webhook_sign(key, (size_t)n, SPEC_ID, SPEC_TS, NULL, 0, sig), 0);
}

static void test_secrets_encode_and_decode(void **state) {
  unsigned char key[WEBHOOK_KEY_BYTES], back[WEBHOOK_KEY_MAX];
  for (int i = 0; i < WEBHOOK_KEY_BYTES; i++)
    key[i] = (unsigned char)(i * 37 + 11);
  char text[WEBHOOK_SECRET_TEXT_MAX];
  assert_int_equal(webhook_secret_encode(key, sizeof key, text, sizeof text), 0);
  assert_true(strncmp(text, "whsec_", 6) == 0);
  assert_int_equal(strlen(text), 6 + 44);
  assert_int_equal(webhook_secret_decode(text, back), WEBHOOK_KEY_BYTES);
  assert_memory_equal(key, back, sizeof key);
  char small[20];
  assert_int_equal(webhook_secret_encode(key, sizeof key, small, sizeof small), -1);
  assert_int_equal(webhook_secret_encode(key, 0, text, sizeof text), -1);
}

static void test_bad_secrets_and_arguments_are_refused(void **state) {
  unsigned char key[WEBHOOK_KEY_MAX];
  const char *bad[] = {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                       "whsec_",
                       "whsec_MfKQ9r8GKYqrTwjU*D8I",
                       "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
                       "whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                       NULL};
  for (int i = 0; i < 6; i++)
    assert_int_equal(webhook_secret_decode(bad[i], key), -1);
  int n = webhook_secret_decode(SPEC_SECRET, key);
  char sig[WEBHOOK_SIGNATURE_MAX];
  assert_int_equal(webhook_sign(key, 0, SPEC_ID, SPEC_TS, "x", 1, sig), -1);
  assert_int_equal(webhook_sign(key, (size_t)n, "a.b", SPEC_TS, "x", 1, sig), -1);
  assert_int_equal(webhook_sign(key, (size_t)n, "", SPEC_TS, "x", 1, sig), -1);
  assert_int_equal(webhook_sign(key, (size_t)n, SPEC_ID, -1, "x", 1, sig), -1);
  assert_string_equal(sig, "");
}

static void test_base64_is_strict(void **state) {
  unsigned char out[16];
  assert_int_equal(b64_decode("YWJj", 4, out, sizeof out), 3);
  assert_memory_equal(out, "abc", 3);
  assert_int_equal(b64_decode("YWI=", 4, out, sizeof out), 2);
  assert_int_equal(b64_decode("YQ==", 4, out, 1), 1); /* exactly the room needed */
  assert_int_equal(b64_decode("YQ", 2, out, sizeof out), -1);
  assert_int_equal(b64_decode("Y===", 4, out, sizeof out), -1);
  assert_int_equal(b64_decode("YW=j", 4, out, sizeof out), -1);
  assert_int_equal(b64_decode(" YWJ", 4, out, sizeof out), -1);
  assert_int_equal(b64_decode("YWJj", 4, out, 2), -1);
  char enc[8];
  assert_int_equal(b64_encode((const unsigned char *)"abcd", 4, enc, sizeof enc), -1);
  assert_int_equal(b64_encode((const unsigned char *)"abc", 3, enc, sizeof enc), 4);
  assert_string_equal(enc, "YWJj");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_the_specification_example_signs_to_its_signature),
      cmocka_unit_test(test_any_change_changes_the_signature),
      cmocka_unit_test(test_secrets_encode_and_decode),
      cmocka_unit_test(test_bad_secrets_and_arguments_are_refused),
      cmocka_unit_test(test_base64_is_strict),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
