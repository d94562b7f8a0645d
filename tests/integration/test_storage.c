#define _GNU_SOURCE
/* storage's interface (common/storage.c) on both backends: every case of the
 * contract runs on file:// and on s3:// (storage_fixture.h), the key and
 * argument checks included; and storage_open's refusals of bad URLs. */
#include "storage_fixture.h"

/* ---- both backends ---- */

static void put_get_roundtrip_keeps_binary_bytes(void **state) {
  fixture *f = *state;
  char *data = pattern(5000, 1);
  data[7] = '\0';
  const char *key = key_of(f, "uploads/deep/er/obj.bin");
  put_ok(f, key, data, 5000, "image/png");
  get_res g = {0};
  get_into(f, key, 1 << 20, &g);
  assert_false(g.has_err);
  assert_false(g.not_found);
  assert_int_equal(g.len, 5000);
  assert_memory_equal(g.data, data, 5000);
  free(g.data);
  free(data);
}

/* Pieces of an object: the middle, a piece cut short by the end, nothing
 * past the end; a piece is not limited by the object's size. */
static void ranges_read_pieces_of_an_object(void **state) {
  fixture *f = *state;
  char *data = pattern(300000, 3);
  const char *key = key_of(f, "assets/ranged");
  put_ok(f, key, data, 300000, "video/mp4");
  get_res g = {0};
  get_range_into(f, key, 0, 65536, &g);
  assert_false(g.has_err);
  assert_int_equal(g.len, 65536);
  assert_memory_equal(g.data, data, 65536);
  get_range_into(f, key, 131072, 65536, &g);
  assert_int_equal(g.len, 65536);
  assert_memory_equal(g.data, data + 131072, 65536);
  get_range_into(f, key, 290000, 65536, &g);
  assert_false(g.has_err);
  assert_int_equal(g.len, 10000);
  assert_memory_equal(g.data, data + 290000, 10000);
  get_range_into(f, key, 300000, 100, &g);
  assert_false(g.has_err);
  assert_false(g.not_found);
  assert_int_equal(g.len, 0);
  get_range_into(f, key_of(f, "assets/no-such"), 0, 100, &g);
  assert_int_equal(g.not_found, 1);
  free(g.data);
  free(data);
}

static void overwrite_replaces_the_whole_object(void **state) {
  fixture *f = *state;
  const char *key = key_of(f, "assets/over");
  put_ok(f, key, "a much longer first version", 27, "text/plain");
  put_ok(f, key, "short", 5, "text/plain");
  get_res g = {0};
  get_into(f, key, 1000, &g);
  assert_int_equal(g.len, 5);
  assert_string_equal(g.data, "short");
  free(g.data);
}

static void delete_removes_and_deleting_missing_succeeds(void **state) {
  fixture *f = *state;
  const char *key = key_of(f, "uploads/gone");
  put_ok(f, key, "x", 1, NULL);
  delete_ok(f, key);
  get_res g = {0};
  get_into(f, key, 100, &g);
  assert_int_equal(g.not_found, 1);
  assert_false(g.has_err);
  assert_true(g.data_null);
  delete_ok(f, key);                         /* again: still fine */
  delete_ok(f, key_of(f, "never/was/here")); /* never there */
}

static void missing_key_is_not_found_not_an_error(void **state) {
  fixture *f = *state;
  put_ok(f, key_of(f, "dir/child"), "c", 1, NULL);
  get_res g = {0};
  get_into(f, key_of(f, "no-such-object"), 100, &g);
  assert_int_equal(g.not_found, 1);
  assert_false(g.has_err);
  /* A key's prefix is not an object either. */
  get_into(f, key_of(f, "dir"), 100, &g);
  assert_int_equal(g.not_found, 1);
  assert_false(g.has_err);
  assert_true(g.data_null);
}

static void object_over_max_bytes_is_an_error(void **state) {
  fixture *f = *state;
  char *data = pattern(1000, 2);
  const char *key = key_of(f, "big");
  put_ok(f, key, data, 1000, NULL);
  get_res g = {0};
  get_into(f, key, 999, &g);
  assert_true(g.has_err);
  assert_false(g.not_found);
  assert_true(g.data_null);
  assert_non_null(strstr(g.err, "limit"));
  get_into(f, key, 1000, &g); /* exactly the limit passes */
  assert_false(g.has_err);
  assert_int_equal(g.len, 1000);
  assert_memory_equal(g.data, data, 1000);
  free(g.data);
  free(data);
}

static void empty_object_roundtrips(void **state) {
  fixture *f = *state;
  const char *key = key_of(f, "empty");
  put_ok(f, key, NULL, 0, NULL);
  get_res g = {0};
  get_into(f, key, 10, &g);
  assert_false(g.has_err);
  assert_false(g.not_found);
  assert_false(g.data_null);
  assert_int_equal(g.len, 0);
  free(g.data);
}

static void large_object_roundtrips_in_many_chunks(void **state) {
  fixture *f = *state;
  size_t n = (3u << 20) + 12345; /* several 1 MiB chunks and a partial one */
  char *data = pattern(n, 3);
  const char *key = key_of(f, "assets/large.mp4");
  put_ok(f, key, data, n, "video/mp4");
  get_res g = {.take = f->s};
  get_into(f, key, 8u << 20, &g);
  assert_false(g.has_err);
  assert_int_equal(g.len, n);
  assert_memory_equal(g.data, data, n);
  assert_int_equal(g.data[n], '\0');
  free(g.data); /* taken: ours to free */
  /* One byte under its size: refused (on S3 from Content-Length, unread). */
  get_res small = {0};
  get_into(f, key, n - 1, &small);
  assert_true(small.has_err);
  assert_true(small.data_null);
  assert_non_null(strstr(small.err, "limit"));
  free(data);
}

static void take_gives_the_buffer_only_inside_the_callback(void **state) {
  fixture *f = *state;
  const char *key = key_of(f, "take");
  put_ok(f, key, "taken bytes", 11, NULL);
  assert_null(storage_take(f->s));
  get_res g = {.take = f->s};
  get_into(f, key, 100, &g);
  assert_false(g.has_err);
  assert_string_equal(g.data, "taken bytes");
  free(g.data);
  assert_null(storage_take(f->s));
}

static void bad_keys_are_refused_without_a_callback(void **state) {
  fixture *f = *state;
  char long_key[202];
  memset(long_key, 'k', 201);
  long_key[201] = '\0';
  const char *bad[] = {"",      "../etc/passwd", "a/../b",      "..",          "a..b",
                       "/abs",  "a//b",          "a/",          ".",           "./a",
                       "a/./b", "a/.",           "sp ace",      "back\\slash", "q?x",
                       "h#x",   "pct%2e",        "caf\xc3\xa9", "new\nline",   long_key};
  done_res d = {0};
  get_res g = {0};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(storage_put(f->s, bad[i], "x", 1, NULL, on_done, &d), -1);
    assert_int_equal(storage_get(f->s, bad[i], 10, on_get, &g), -1);
    assert_int_equal(storage_delete(f->s, bad[i], on_done, &d), -1);
  }
  assert_int_equal(storage_put(f->s, NULL, "x", 1, NULL, on_done, &d), -1);
  /* Other refusals: no callback, no limit, a content type with CR/LF. */
  assert_int_equal(storage_put(f->s, "ok", "x", 1, NULL, NULL, &d), -1);
  assert_int_equal(storage_get(f->s, "ok", 0, on_get, &g), -1);
  assert_int_equal(storage_put(f->s, "ok", "x", 1, "text/plain\r\nX-Evil: 1", on_done, &d), -1);
  for (int i = 0; i < 5; i++)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(d.calls, 0);
  assert_int_equal(g.calls, 0);
  /* The longest allowed key, and every allowed character, work. */
  char max_key[201];
  memset(max_key, 'm', 200);
  max_key[200] = '\0';
  memcpy(max_key, f->prefix, strlen(f->prefix));
  max_key[strlen(f->prefix)] = '/';
  put_ok(f, max_key, "m", 1, NULL);
  char chars[128];
  snprintf(chars, sizeof chars, "%s/AZaz09._-/x.y_z-W", f->prefix);
  put_ok(f, chars, "c", 1, NULL);
  get_into(f, chars, 10, &g);
  assert_string_equal(g.data, "c");
  free(g.data);
}

static void many_concurrent_puts_all_land_whole(void **state) {
  fixture *f = *state;
  enum { DISTINCT = 40, SAME = 12, LEN = 70000 };
  done_res r[DISTINCT + SAME];
  memset(r, 0, sizeof r);
  char *bufs[DISTINCT + SAME];
  char keys[DISTINCT][128];
  for (int i = 0; i < DISTINCT + SAME; i++) {
    bufs[i] = pattern(LEN, (unsigned)i + 10);
    memcpy(bufs[i], &i, sizeof i); /* each version tells which it is */
  }
  const char *same = key_of(f, "race/same");
  for (int i = 0; i < DISTINCT; i++) {
    snprintf(keys[i], sizeof keys[i], "%s/race/k%02d/obj", f->prefix, i);
    assert_int_equal(storage_put(f->s, keys[i], bufs[i], LEN, NULL, on_done, &r[i]), 0);
  }
  for (int i = DISTINCT; i < DISTINCT + SAME; i++)
    assert_int_equal(storage_put(f->s, same, bufs[i], LEN, NULL, on_done, &r[i]), 0);
  int total = 0;
  uint64_t deadline = uv_hrtime() + 60ull * 1000000000ull;
  while (total < DISTINCT + SAME && uv_hrtime() < deadline) {
    uv_run(&f->loop, UV_RUN_ONCE);
    total = 0;
    for (int i = 0; i < DISTINCT + SAME; i++)
      total += r[i].calls;
  }
  for (int i = 0; i < DISTINCT + SAME; i++) {
    assert_int_equal(r[i].calls, 1);
    if (r[i].has_err) fail_msg("put %d: %s", i, r[i].err);
  }
  get_res g = {0};
  for (int i = 0; i < DISTINCT; i++) {
    get_into(f, keys[i], LEN, &g);
    assert_int_equal(g.len, LEN);
    assert_memory_equal(g.data, bufs[i], LEN);
  }
  /* The contested key holds exactly one of the versions, whole. */
  get_into(f, same, LEN, &g);
  assert_int_equal(g.len, LEN);
  int which;
  memcpy(&which, g.data, sizeof which);
  assert_true(which >= DISTINCT && which < DISTINCT + SAME);
  assert_memory_equal(g.data, bufs[which], LEN);
  free(g.data);
  for (int i = 0; i < DISTINCT + SAME; i++)
    free(bufs[i]);
}

static void on_close_get(const char *data, size_t len, int nf, const char *err, void *arg) {
  assert_null(data);
  assert_int_equal(nf, 0);
  on_close_done(err, arg);
}

static void close_completes_operations_in_flight_as_closed(void **state) {
  fixture *f = *state;
  const char *key = key_of(f, "close/existing");
  put_ok(f, key, "present", 7, NULL);
  enum { N = 6 };
  close_res r[3 * N];
  memset(r, 0, sizeof r);
  size_t big = 3u << 20;
  char *data = pattern(big, 4);
  for (int i = 0; i < N; i++) {
    char k[128];
    snprintf(k, sizeof k, "%s/close/p%d", f->prefix, i);
    assert_int_equal(storage_put(f->s, k, data, big, NULL, on_close_done, &r[i]), 0);
    assert_int_equal(storage_get(f->s, key, 100, on_close_get, &r[N + i]), 0);
    assert_int_equal(storage_delete(f->s, key, on_close_done, &r[2 * N + i]), 0);
  }
  storage_close(f->s);
  f->s = NULL;
  for (int i = 0; i < 3 * N; i++)
    r[i].closed_before_return = 1;
  /* The caller may free its bytes now: nothing reads them any more. */
  memset(data, 0, big);
  free(data);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* orphans finish and clean up */
  for (int i = 0; i < 3 * N; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].late, 0);
    assert_string_equal(r[i].err, "closed");
  }
}

typedef struct {
  fixture *f;
  int calls;
  done_res other;
} close_in_cb;

static void close_from_callback(const char *data, size_t len, int nf, const char *err, void *arg) {
  close_in_cb *c = arg;
  c->calls++;
  assert_null(err);
  assert_non_null(data);
  storage_close(c->f->s); /* inside a callback: freed once it returns */
  c->f->s = NULL;
}

static void close_inside_a_callback_is_safe(void **state) {
  fixture *f = *state;
  const char *key = key_of(f, "close/in-cb");
  put_ok(f, key, "abc", 3, NULL);
  close_in_cb c = {.f = f};
  assert_int_equal(storage_get(f->s, key, 100, close_from_callback, &c), 0);
  run_until(f, &c.calls, 1);
  assert_null(f->s);
  uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void open_refuses_bad_urls_with_a_reason(void **state) {
  fixture *f = *state;
  struct {
    const char *url, *access, *secret, *want;
  } bad[] = {
      {"file://relative/dir", NULL, NULL, "absolute"},
      {"ftp://x/y", NULL, NULL, "file:// or s3://"},
      {"", NULL, NULL, "file:// or s3://"},
      {"file:///a/../b", NULL, NULL, ".."},
      {"s3://genq-test?endpoint=http://127.0.0.1:1", NULL, NULL, "GENQ_S3_ACCESS_KEY"},
      {"s3://genq-test?endpoint=http://127.0.0.1:1", "a", "", "GENQ_S3_SECRET_KEY"},
      {"s3://genq-test?endpoint=http://127.0.0.1:1", "a:b", "s", "without ':'"},
      {"s3://Bad_Bucket?endpoint=http://127.0.0.1:1", "a", "s", "bucket"},
      {"s3://ab?endpoint=http://127.0.0.1:1", "a", "s", "bucket"},
      {"s3://genq-test/prefix?endpoint=http://127.0.0.1:1", "a", "s", "not a path"},
      {"s3://genq-test?endpoint=ftp://127.0.0.1:1", "a", "s", "endpoint"},
      {"s3://genq-test?endpoint=http://user@127.0.0.1:1", "a", "s", "endpoint"},
      {"s3://genq-test?endpoint=http://127.0.0.1:1&region=US_EAST", "a", "s", "region"},
      {"s3://genq-test?endpoint=http://127.0.0.1:1&bucket=x", "a", "s", "\"bucket\""},
      {"s3://genq-test?region=eu-west-1&region=us-east-1", "a", "s", "repeated"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    storage *s = (storage *)1;
    char err[256] = "";
    assert_int_equal(storage_open(&s, &f->loop, f->http, bad[i].url, bad[i].access, bad[i].secret,
                                  err, sizeof err),
                     -1);
    assert_null(s);
    if (!strstr(err, bad[i].want))
      fail_msg("%s: error \"%s\" lacks \"%s\"", bad[i].url, err, bad[i].want);
  }
  /* s3:// needs the HTTP client. */
  storage *s = NULL;
  char err[256];
  assert_int_equal(storage_open(&s, &f->loop, NULL, "s3://genq-test?endpoint=http://127.0.0.1:1",
                                "a", "s", err, sizeof err),
                   -1);
  /* Without an endpoint, AWS's for the region. */
  assert_int_equal(storage_open(&s, &f->loop, f->http, "s3://genq-test/?region=eu-west-3", "a", "s",
                                err, sizeof err),
                   0);
  assert_string_equal(storage_backend(s), "s3");
  storage_close(s);
}

#define BOTH(t)                                                                                    \
  cmocka_unit_test_setup_teardown(t, file_setup, teardown),                                        \
      cmocka_unit_test_setup_teardown(t, s3_setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(put_get_roundtrip_keeps_binary_bytes),
      BOTH(ranges_read_pieces_of_an_object),
      BOTH(overwrite_replaces_the_whole_object),
      BOTH(delete_removes_and_deleting_missing_succeeds),
      BOTH(missing_key_is_not_found_not_an_error),
      BOTH(object_over_max_bytes_is_an_error),
      BOTH(empty_object_roundtrips),
      BOTH(large_object_roundtrips_in_many_chunks),
      BOTH(take_gives_the_buffer_only_inside_the_callback),
      BOTH(bad_keys_are_refused_without_a_callback),
      BOTH(many_concurrent_puts_all_land_whole),
      BOTH(close_completes_operations_in_flight_as_closed),
      BOTH(close_inside_a_callback_is_safe),
      cmocka_unit_test_setup_teardown(open_refuses_bad_urls_with_a_reason, file_setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
