/* common/uuid.c: the text form of a UUID, as every genq program checks it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "uuid.h"

static void accepts_either_case(void **state) {
  assert_true(genq_is_uuid("0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b10"));
  assert_true(genq_is_uuid("0B5D1C2E-8F47-4E7A-9A61-3F2C7D9E4B10"));
  assert_true(genq_is_uuid("00000000-0000-0000-0000-000000000000"));
  assert_true(genq_is_uuid("ffffffff-FFFF-ffff-FFFF-ffffffffffff"));
}

static void rejects_other_shapes(void **state) {
  assert_false(genq_is_uuid(NULL));
  assert_false(genq_is_uuid(""));
  assert_false(genq_is_uuid("0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b1"));   /* 35 */
  assert_false(genq_is_uuid("0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b100")); /* 37 */
  assert_false(genq_is_uuid("0b5d1c2e8f474e7a9a613f2c7d9e4b10"));      /* no hyphens */
  assert_false(genq_is_uuid("0b5d1c2e-8f474-e7a-9a61-3f2c7d9e4b10"));  /* hyphen moved */
  assert_false(genq_is_uuid("{b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b10}"));
  assert_false(genq_is_uuid("0b5d1c2g-8f47-4e7a-9a61-3f2c7d9e4b10")); /* g */
  assert_false(genq_is_uuid("0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b1 "));
  assert_false(genq_is_uuid("0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b1\n"));
  assert_false(genq_is_uuid("0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b1-"));
  assert_false(genq_is_uuid("0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b1@")); /* '@' | 0x20 is '`' */
  assert_false(genq_is_uuid("0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b1G"));
  /* a NUL inside ends the text: never read past it */
  static const char cut[] = "0b5d1c2e-8f47\0e7a-9a61-3f2c7d9e4b10";
  assert_false(genq_is_uuid(cut));
  /* every byte value in every position */
  char u[] = "0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b10";
  for (int i = 0; i < 36; i++) {
    char keep = u[i];
    for (int c = 1; c < 256; c++) {
      u[i] = (char)c;
      int dash = i == 8 || i == 13 || i == 18 || i == 23;
      int ok = dash ? c == '-'
                    : (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      assert_int_equal(genq_is_uuid(u), ok);
    }
    u[i] = keep;
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepts_either_case),
      cmocka_unit_test(rejects_other_shapes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
