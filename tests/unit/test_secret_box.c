/* secret_box.c: a sealed secret opens with its key and context and with
 * nothing else (another key, another key id, another user, a changed
 * byte); each seal uses a fresh nonce; a rotated-away key still opens what
 * it sealed; the key variables are parsed strictly and named in errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "secret_box.h"

/* base64 of 32 bytes (openssl rand -base64 32) */
#define K1 "q83vEjRWeJq8T0x9Gm5rVQp2a1b3c4d5e6f7g8h9i0k="
#define K2 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static const unsigned char secret[32] = "0123456789abcdef0123456789abcde";

static void ring(secret_keyring *kr, const char *cur, const char *prev) {
  char err[256];
  if (secret_keyring_parse(kr, cur, prev, err, sizeof err) != 0) fail_msg("%s", err);
}

static void test_sealed_secret_opens_with_its_key_and_context(void **state) {
  secret_keyring kr;
  ring(&kr, K1, NULL);
  char sealed[SECRET_SEALED_LEN(32)], sealed2[SECRET_SEALED_LEN(32)];
  assert_int_equal(secret_box_seal(&kr, "user-1", secret, 32, sealed, sizeof sealed), 0);
  assert_int_equal(strlen(sealed), sizeof sealed - 1);
  unsigned char pt[64];
  assert_int_equal(secret_box_open(&kr, kr.keys[0].id, "user-1", sealed, pt, sizeof pt), 32);
  assert_memory_equal(pt, secret, 32);
  /* a fresh nonce each time */
  assert_int_equal(secret_box_seal(&kr, "user-1", secret, 32, sealed2, sizeof sealed2), 0);
  assert_string_not_equal(sealed, sealed2);
  /* the plaintext does not show */
  assert_null(strstr(sealed, "0123456789"));
  secret_keyring_wipe(&kr);
}

static void test_tampering_another_user_or_key_does_not_open(void **state) {
  secret_keyring kr, other;
  ring(&kr, K1, NULL);
  ring(&other, K2, NULL);
  char sealed[SECRET_SEALED_LEN(32)];
  assert_int_equal(secret_box_seal(&kr, "user-1", secret, 32, sealed, sizeof sealed), 0);
  unsigned char pt[64];
  assert_int_equal(secret_box_open(&kr, kr.keys[0].id, "user-2", sealed, pt, sizeof pt),
                   SECRET_BOX_FORGED);
  /* every byte of nonce, ciphertext and tag counts */
  for (size_t i = 0; i + 1 < sizeof sealed - 1; i++) {
    char t[sizeof sealed];
    memcpy(t, sealed, sizeof sealed);
    t[i] = t[i] == 'A' ? 'B' : 'A';
    int rc = secret_box_open(&kr, kr.keys[0].id, "user-1", t, pt, sizeof pt);
    if (rc != SECRET_BOX_FORGED && rc != SECRET_BOX_MALFORMED)
      fail_msg("changed character %zu opened (%d)", i, rc);
  }
  /* another key under the same id does not open it */
  snprintf(other.keys[0].id, sizeof other.keys[0].id, "%s", kr.keys[0].id);
  assert_int_equal(secret_box_open(&other, kr.keys[0].id, "user-1", sealed, pt, sizeof pt),
                   SECRET_BOX_FORGED);
  assert_int_equal(secret_box_open(&kr, "nosuchkey", "user-1", sealed, pt, sizeof pt),
                   SECRET_BOX_UNKNOWN_KEY);
  assert_int_equal(secret_box_open(&kr, kr.keys[0].id, "user-1", "not base64!", pt, sizeof pt),
                   SECRET_BOX_MALFORMED);
  assert_int_equal(secret_box_open(&kr, kr.keys[0].id, "user-1", sealed, pt, 31),
                   SECRET_BOX_MALFORMED);
  secret_keyring_wipe(&kr);
  secret_keyring_wipe(&other);
}

static void test_the_key_id_is_bound(void **state) {
  /* the same key under two ids: what one sealed does not open as the other */
  secret_keyring a, b;
  ring(&a, "one:" K1, NULL);
  ring(&b, "two:" K1, NULL);
  char sealed[SECRET_SEALED_LEN(32)];
  assert_int_equal(secret_box_seal(&a, "u", secret, 32, sealed, sizeof sealed), 0);
  unsigned char pt[64];
  assert_int_equal(secret_box_open(&b, "two", "u", sealed, pt, sizeof pt), SECRET_BOX_FORGED);
  assert_int_equal(secret_box_open(&a, "one", "u", sealed, pt, sizeof pt), 32);
}

static void test_rotation_previous_keys_open_the_current_seals(void **state) {
  secret_keyring old, now;
  ring(&old, K1, NULL);
  char sealed[SECRET_SEALED_LEN(32)];
  assert_int_equal(secret_box_seal(&old, "u", secret, 32, sealed, sizeof sealed), 0);
  /* rotate: K2 current, K1 previous */
  ring(&now, K2, "nope:" K2 "," K1);
  assert_int_equal(now.n, 3);
  unsigned char pt[64];
  assert_int_equal(secret_box_open(&now, old.keys[0].id, "u", sealed, pt, sizeof pt), 32);
  assert_memory_equal(pt, secret, 32);
  /* what is sealed now is under K2, which the old ring cannot open */
  char resealed[SECRET_SEALED_LEN(32)];
  assert_int_equal(secret_box_seal(&now, "u", pt, 32, resealed, sizeof resealed), 0);
  assert_int_equal(secret_box_open(&old, now.keys[0].id, "u", resealed, pt, sizeof pt),
                   SECRET_BOX_UNKNOWN_KEY);
  assert_int_equal(secret_box_open(&now, now.keys[0].id, "u", resealed, pt, sizeof pt), 32);
  /* the derived id: 8 hex digits of the key's SHA-256 */
  assert_int_equal(strlen(old.keys[0].id), 8);
  assert_string_equal(now.keys[1].id, "nope");
}

static void expect_bad(const char *cur, const char *prev, const char *var) {
  secret_keyring kr;
  char err[256] = "";
  assert_int_equal(secret_keyring_parse(&kr, cur, prev, err, sizeof err), -1);
  if (!strstr(err, var)) fail_msg("'%s' does not name %s", err, var);
  if (cur && strlen(cur) > 10 && strstr(err, cur + 6)) fail_msg("'%s' echoes the key", err);
  assert_int_equal(kr.n, 0);
}

static void test_bad_keys_are_refused_naming_the_variable(void **state) {
  expect_bad(NULL, NULL, "GENQ_SECRETS_KEY");
  expect_bad(NULL, K1, "GENQ_SECRETS_KEY_PREVIOUS");
  expect_bad("c2hvcnQ=", NULL, "GENQ_SECRETS_KEY");              /* 5 bytes */
  expect_bad(K1 "AAAA", NULL, "GENQ_SECRETS_KEY");               /* 35 bytes */
  expect_bad("bad id!:" K1, NULL, "GENQ_SECRETS_KEY");           /* kid chars */
  expect_bad("abcdefghijklmnopq:" K1, NULL, "GENQ_SECRETS_KEY"); /* kid too long */
  expect_bad(":" K1, NULL, "GENQ_SECRETS_KEY");                  /* empty kid */
  expect_bad(K1, "garbage", "GENQ_SECRETS_KEY_PREVIOUS");
  expect_bad(K1, K1, "GENQ_SECRETS_KEY_PREVIOUS"); /* same id twice */
  expect_bad(K1, "a:" K2 ",b:" K2 ",c:" K2 ",d:" K2 ",e:" K2 ",f:" K2 ",g:" K2 ",h:" K2,
             "GENQ_SECRETS_KEY_PREVIOUS"); /* more than 8 keys */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sealed_secret_opens_with_its_key_and_context),
      cmocka_unit_test(test_tampering_another_user_or_key_does_not_open),
      cmocka_unit_test(test_the_key_id_is_bound),
      cmocka_unit_test(test_rotation_previous_keys_open_the_current_seals),
      cmocka_unit_test(test_bad_keys_are_refused_naming_the_variable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
