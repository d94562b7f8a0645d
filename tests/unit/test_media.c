/* media.c: the upload types, each signature, mismatches and short buffers,
 * SHA-256 against published vectors, and the UUID format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "media.h"

#define U(s) ((const unsigned char *)(s))

/* The leading bytes of a real file of each kind. */
static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                    0,    0,   0,   13,  'I',  'H',  'D',  'R'};
static const unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0};
static const unsigned char webp[] = {'R', 'I', 'F', 'F', 0x24, 0,   0,   0,
                                     'W', 'E', 'B', 'P', 'V',  'P', '8', ' '};
static const unsigned char wav[] = {'R', 'I', 'F', 'F', 0x24, 0,   0,   0,
                                    'W', 'A', 'V', 'E', 'f',  'm', 't', ' '};
static const unsigned char id3[] = {'I', 'D', '3', 4, 0, 0, 0, 0, 0x02, 0x01};
/* MPEG-1 layer III, 128 kbit/s, 44.1 kHz */
static const unsigned char mp3_frame[] = {0xff, 0xfb, 0x90, 0x64};
static const unsigned char m4a[] = {0, 0, 0, 0x20, 'f', 't', 'y', 'p', 'M', '4', 'A', ' '};
static const unsigned char mp4[] = {0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm'};
static const unsigned char heic[] = {0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c'};

static void test_upload_types_are_exactly_the_six_of_the_spec(void **state) {
  const char *ok[] = {"image/png",  "image/jpeg", "image/webp",
                      "audio/mpeg", "audio/wav",  "audio/mp4"};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    assert_int_equal(media_upload_type_allowed(ok[i]), 1);
  assert_int_equal(media_upload_type_allowed("IMAGE/PNG"), 1); /* types are case-insensitive */
  const char *no[] = {
      "text/plain", "image/gif", "video/mp4", "audio/x-wav", "image/png; charset=binary",
      "image/png ", "image/",    "",          "image/pngx"};
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
    assert_int_equal(media_upload_type_allowed(no[i]), 0);
  assert_int_equal(media_upload_type_allowed(NULL), 0);
}

static void test_each_signature_is_sniffed(void **state) {
  assert_string_equal(media_sniff(png, sizeof(png)), "image/png");
  assert_string_equal(media_sniff(jpeg, sizeof(jpeg)), "image/jpeg");
  assert_string_equal(media_sniff(webp, sizeof(webp)), "image/webp");
  assert_string_equal(media_sniff(wav, sizeof(wav)), "audio/wav");
  assert_string_equal(media_sniff(id3, sizeof(id3)), "audio/mpeg");
  assert_string_equal(media_sniff(mp3_frame, sizeof(mp3_frame)), "audio/mpeg");
  assert_string_equal(media_sniff(m4a, sizeof(m4a)), "audio/mp4");
  assert_string_equal(media_sniff(mp4, sizeof(mp4)), "video/mp4");
}

static void test_unknown_bytes_sniff_as_null(void **state) {
  assert_null(media_sniff(U("hello, world"), 12));
  assert_null(media_sniff(U("GIF89a\0\0\0\0"), 10));
  assert_null(media_sniff(heic, sizeof(heic)));    /* an image, not MP4 media */
  assert_null(media_sniff(U("RIFFxxxxAVI "), 12)); /* RIFF, but neither WEBP nor WAVE */
  assert_null(media_sniff(U(""), 0));
  assert_null(media_sniff(NULL, 0));
}

static void test_declared_type_must_match_the_bytes(void **state) {
  assert_int_equal(media_matches("image/png", png, sizeof(png)), 1);
  assert_int_equal(media_matches("image/jpeg", jpeg, sizeof(jpeg)), 1);
  assert_int_equal(media_matches("image/webp", webp, sizeof(webp)), 1);
  assert_int_equal(media_matches("audio/wav", wav, sizeof(wav)), 1);
  assert_int_equal(media_matches("audio/mpeg", id3, sizeof(id3)), 1);
  assert_int_equal(media_matches("audio/mpeg", mp3_frame, sizeof(mp3_frame)), 1);
  assert_int_equal(media_matches("audio/mp4", m4a, sizeof(m4a)), 1);
  /* MP4 audio and video share the ftyp box */
  assert_int_equal(media_matches("audio/mp4", mp4, sizeof(mp4)), 1);
  assert_int_equal(media_matches("video/mp4", m4a, sizeof(m4a)), 1);
  assert_int_equal(media_matches("Image/PNG", png, sizeof(png)), 1);

  assert_int_equal(media_matches("image/jpeg", png, sizeof(png)), 0);
  assert_int_equal(media_matches("image/png", jpeg, sizeof(jpeg)), 0);
  assert_int_equal(media_matches("image/webp", wav, sizeof(wav)), 0);
  assert_int_equal(media_matches("audio/wav", webp, sizeof(webp)), 0);
  assert_int_equal(media_matches("audio/mpeg", jpeg, sizeof(jpeg)), 0);
  assert_int_equal(media_matches("audio/mp4", heic, sizeof(heic)), 0);
  assert_int_equal(media_matches("audio/mpeg", U("hello world"), 11), 0);
  assert_int_equal(media_matches("text/plain", U("hello world"), 11), 0);
  assert_int_equal(media_matches("image/gif", U("GIF89a\0\0\0\0"), 10), 0);
  assert_int_equal(media_matches(NULL, png, sizeof(png)), 0);
  assert_int_equal(media_matches("image/png", NULL, 0), 0);
}

static void test_mpeg_frame_headers_with_reserved_fields_are_not_mp3(void **state) {
  /* ADTS AAC: sync bits, but layer 00 */
  assert_int_equal(media_matches("audio/mpeg", U("\xff\xf1\x50\x80"), 4), 0);
  /* reserved version 01 */
  assert_int_equal(media_matches("audio/mpeg", U("\xff\xeb\x90\x64"), 4), 0);
  /* bad bitrate index 1111 */
  assert_int_equal(media_matches("audio/mpeg", U("\xff\xfb\xf0\x64"), 4), 0);
  /* reserved sample rate 11 */
  assert_int_equal(media_matches("audio/mpeg", U("\xff\xfb\x9c\x64"), 4), 0);
  /* "ID3" followed by text is not a tag */
  assert_int_equal(media_matches("audio/mpeg", U("ID3 is a tag format"), 19), 0);
  /* a tag size byte with its high bit set */
  assert_int_equal(media_matches("audio/mpeg", U("ID3\x03\0\0\0\0\x80\0"), 10), 0);
}

static void test_short_buffers_never_match(void **state) {
  /* every prefix shorter than the signature is refused, never read past */
  for (size_t n = 0; n < 8; n++) {
    unsigned char *b = malloc(n ? n : 1);
    memcpy(b, png, n);
    assert_int_equal(media_matches("image/png", b, n), 0);
    assert_null(media_sniff(b, n));
    free(b);
  }
  for (size_t n = 0; n < 12; n++) {
    unsigned char *b = malloc(n ? n : 1);
    memcpy(b, webp, n);
    assert_int_equal(media_matches("image/webp", b, n), 0);
    memcpy(b, wav, n);
    assert_int_equal(media_matches("audio/wav", b, n), 0);
    memcpy(b, mp4, n);
    assert_int_equal(media_matches("video/mp4", b, n), 0);
    free(b);
  }
  assert_int_equal(media_matches("image/jpeg", jpeg, 2), 0);
  assert_int_equal(media_matches("audio/mpeg", mp3_frame, 3), 0);
  assert_int_equal(media_matches("audio/mpeg", id3, 9), 0);
}

static void test_media_class_of_content_types(void **state) {
  assert_string_equal(media_class("image/png"), "image");
  assert_string_equal(media_class("image/jpeg"), "image");
  assert_string_equal(media_class("audio/mpeg"), "audio");
  assert_string_equal(media_class("audio/mp4"), "audio");
  assert_string_equal(media_class("video/mp4"), "video");
  assert_null(media_class("text/plain"));
  assert_null(media_class("application/json"));
  assert_null(media_class("image/"));
  assert_null(media_class("image"));
  assert_null(media_class("imagex/png"));
  assert_null(media_class("image/png; q=1"));
  assert_null(media_class(""));
  assert_null(media_class(NULL));
}

static void test_sha256_of_known_vectors(void **state) {
  char hex[65];
  media_sha256_hex("", 0, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  media_sha256_hex("abc", 3, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  media_sha256_hex(two_blocks, strlen(two_blocks), hex);
  assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  char *million = malloc(1000000);
  memset(million, 'a', 1000000);
  media_sha256_hex(million, 1000000, hex);
  free(million);
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void check_uuid4(const char *u) {
  assert_int_equal(strlen(u), 36);
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23)
      assert_int_equal(u[i], '-');
    else
      assert_non_null(strchr("0123456789abcdef", u[i]));
  }
  assert_int_equal(u[14], '4');           /* version */
  assert_non_null(strchr("89ab", u[19])); /* variant */
}

static void test_uuid4_format_and_uniqueness(void **state) {
  char seen[64][37];
  for (int i = 0; i < 64; i++) {
    memset(seen[i], 'X', sizeof(seen[i]));
    assert_int_equal(media_uuid4(seen[i]), 0);
    check_uuid4(seen[i]);
    for (int j = 0; j < i; j++)
      assert_string_not_equal(seen[i], seen[j]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_upload_types_are_exactly_the_six_of_the_spec),
      cmocka_unit_test(test_each_signature_is_sniffed),
      cmocka_unit_test(test_unknown_bytes_sniff_as_null),
      cmocka_unit_test(test_declared_type_must_match_the_bytes),
      cmocka_unit_test(test_mpeg_frame_headers_with_reserved_fields_are_not_mp3),
      cmocka_unit_test(test_short_buffers_never_match),
      cmocka_unit_test(test_media_class_of_content_types),
      cmocka_unit_test(test_sha256_of_known_vectors),
      cmocka_unit_test(test_uuid4_format_and_uniqueness),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
