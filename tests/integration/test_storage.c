#define _GNU_SOURCE
/* storage on both backends: file:// in a fresh temporary directory, and
 * s3:// against the S3 server at GENQ_TEST_S3_URL (scripts/s3rver.sh: a
 * real s3rver that checks SigV4 signatures and payload hashes) with
 * GENQ_S3_ACCESS_KEY / GENQ_S3_SECRET_KEY. Without those variables the S3
 * tests fail; they never skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"

/* ---- results ---- */

typedef struct {
  int calls;
  char err[400];
  int has_err;
} done_res;

static void on_done(const char *err, void *arg) {
  done_res *r = arg;
  r->calls++;
  r->has_err = err != NULL;
  snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

typedef struct {
  int calls;
  int not_found, has_err, data_null;
  char err[400];
  char *data; /* a copy (or the taken buffer when take is set) */
  size_t len;
  storage *take;    /* non-NULL: claim the buffer with storage_take */
  const char *seen; /* the pointer the callback was given */
} get_res;

static void on_get(const char *data, size_t len, int not_found, const char *err, void *arg) {
  get_res *r = arg;
  r->calls++;
  r->not_found = not_found;
  r->has_err = err != NULL;
  r->data_null = data == NULL;
  r->seen = data;
  snprintf(r->err, sizeof r->err, "%s", err ? err : "");
  r->len = len;
  free(r->data);
  r->data = NULL;
  if (!data) return;
  if (r->take) {
    r->data = storage_take(r->take);
    assert_non_null(r->data);
    assert_ptr_equal(r->data, data); /* handed over, not copied */
    assert_null(storage_take(r->take));
  } else {
    r->data = malloc(len + 1);
    memcpy(r->data, data, len);
    r->data[len] = '\0';
  }
}

/* ---- fixture ---- */

typedef struct {
  uv_loop_t loop;
  httpc *http;
  storage *s;
  char dir[128];
  char prefix[64]; /* keys of this run, so a kept S3 store never collides */
} fixture;

static void run_until(fixture *f, const int *flag, int want) {
  uint64_t deadline = uv_hrtime() + 30ull * 1000000000ull;
  while (*flag < want && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(*flag >= want);
}

static fixture *fixture_new(void) {
  fixture *f = calloc(1, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(httpc_new(&f->http, &f->loop), 0);
  snprintf(f->prefix, sizeof f->prefix, "t%d-%llx", (int)getpid(), (unsigned long long)uv_hrtime());
  return f;
}

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char sub[1024];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      rm_rf(sub);
    }
    if (d) closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

static int file_setup(void **state) {
  fixture *f = fixture_new();
  snprintf(f->dir, sizeof f->dir, "/tmp/genq-storage-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char url[256], err[256];
  /* A directory that does not exist yet: the first put makes it. */
  snprintf(url, sizeof url, "file://%s/store/", f->dir);
  assert_int_equal(storage_open(&f->s, &f->loop, NULL, url, NULL, NULL, err, sizeof err), 0);
  assert_string_equal(storage_backend(f->s), "file");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->s) storage_close(f->s);
  httpc_close(f->http);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  if (f->dir[0]) rm_rf(f->dir);
  free(f);
  return 0;
}

static const char *env_or_fail(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v)
    fail_msg("%s is not set (scripts/test starts scripts/s3rver.sh and sets it)", name);
  return v;
}

static int s3_setup(void **state) {
  const char *url = env_or_fail("GENQ_TEST_S3_URL");
  const char *access = env_or_fail("GENQ_S3_ACCESS_KEY");
  const char *secret = env_or_fail("GENQ_S3_SECRET_KEY");
  fixture *f = fixture_new();
  *state = f;
  char err[256];
  if (storage_open(&f->s, &f->loop, f->http, url, access, secret, err, sizeof err) != 0)
    fail_msg("storage_open(%s): %s", url, err);
  assert_string_equal(storage_backend(f->s), "s3");
  return 0;
}

/* ---- synchronous-looking helpers ---- */

static void put_ok(fixture *f, const char *key, const char *data, size_t len, const char *type) {
  done_res r = {0};
  assert_int_equal(storage_put(f->s, key, data, len, type, on_done, &r), 0);
  run_until(f, &r.calls, 1);
  if (r.has_err) fail_msg("put %s: %s", key, r.err);
  assert_int_equal(r.calls, 1);
}

static void get_into(fixture *f, const char *key, size_t max, get_res *r) {
  r->calls = 0;
  assert_int_equal(storage_get(f->s, key, max, on_get, r), 0);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->calls, 1);
}

static void delete_ok(fixture *f, const char *key) {
  done_res r = {0};
  assert_int_equal(storage_delete(f->s, key, on_done, &r), 0);
  run_until(f, &r.calls, 1);
  if (r.has_err) fail_msg("delete %s: %s", key, r.err);
}

static char *key_of(const fixture *f, const char *name) {
  static char k[4][256];
  static int i;
  char *out = k[i++ % 4];
  snprintf(out, 256, "%s/%s", f->prefix, name);
  return out;
}

static char *pattern(size_t n, unsigned seed) {
  char *b = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++)
    b[i] = (char)((i * 131 + (size_t)seed * 7 + (i >> 9)) & 0xff);
  return b;
}

/* Counts directory entries whose name holds ".tmp." under path. */
static int count_tmp(const char *path) {
  int n = 0;
  DIR *d = opendir(path);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    struct stat st;
    if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
      n += count_tmp(sub);
    else if (strstr(e->d_name, ".tmp."))
      n++;
  }
  if (d) closedir(d);
  return n;
}

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

typedef struct {
  int calls;
  int closed_before_return; /* set by the test once storage_close returned */
  int late;                 /* callbacks after storage_close returned */
  char err[64];
} close_res;

static void on_close_done(const char *err, void *arg) {
  close_res *r = arg;
  r->calls++;
  if (r->closed_before_return) r->late++;
  snprintf(r->err, sizeof r->err, "%s", err ? err : "(null)");
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

/* ---- file:// only ---- */

static void file_put_leaves_no_temporary_files(void **state) {
  fixture *f = *state;
  put_ok(f, "uploads/u1", "one", 3, NULL);
  put_ok(f, "uploads/u1", "two", 3, NULL);
  put_ok(f, "assets/a/b/c", "three", 5, NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/store/assets/a/b/c", f->dir);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, 5);
  assert_int_equal(st.st_mode & 0777, 0640);
  assert_int_equal(count_tmp(f->dir), 0);
}

static void file_put_under_a_file_fails_clearly(void **state) {
  fixture *f = *state;
  put_ok(f, "blocker", "i am a file", 11, NULL);
  done_res r = {0};
  assert_int_equal(storage_put(f->s, "blocker/below", "x", 1, NULL, on_done, &r), 0);
  run_until(f, &r.calls, 1);
  assert_true(r.has_err);
  assert_non_null(strstr(r.err, "blocker/below"));
  assert_int_equal(count_tmp(f->dir), 0);
  /* Reading it is "not there", not an error. */
  get_res g = {0};
  get_into(f, "blocker/below", 10, &g);
  assert_int_equal(g.not_found, 1);
}

static void file_close_leaves_no_temporary_files(void **state) {
  fixture *f = *state;
  size_t big = 4u << 20;
  char *data = pattern(big, 5);
  close_res r[8];
  memset(r, 0, sizeof r);
  for (int i = 0; i < 8; i++) {
    char k[64];
    snprintf(k, sizeof k, "assets/c%d", i);
    assert_int_equal(storage_put(f->s, k, data, big, NULL, on_close_done, &r[i]), 0);
  }
  /* Let them get going first: temporary files made, writes under way. */
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  while (count_tmp(f->dir) < 4 && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  storage_close(f->s);
  f->s = NULL;
  free(data);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 8; i++)
    assert_int_equal(r[i].calls, 1);
  assert_int_equal(count_tmp(f->dir), 0);
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

/* ---- s3:// only ---- */

static void s3_raw_get(fixture *f, const char *path, const char *userpwd, void *res, httpc_cb cb) {
  /* path-style URL of the test bucket from GENQ_TEST_S3_URL */
  const char *u = env_or_fail("GENQ_TEST_S3_URL");
  const char *ep = strstr(u, "endpoint=");
  assert_non_null(ep);
  ep += strlen("endpoint=");
  char url[512];
  snprintf(url, sizeof url, "%.*s/%.*s/%s", (int)strcspn(ep, "&"), ep, (int)strcspn(u + 5, "/?"),
           u + 5, path);
  const char *hdrs[] = {
      "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      NULL};
  httpc_request req = {.method = "GET", .url = url, .headers = hdrs};
  char sig[64];
  if (userpwd) {
    const char *reg = strstr(u, "region=");
    snprintf(sig, sizeof sig, "aws:amz:%.*s:s3", reg ? (int)strcspn(reg + 7, "&") : 9,
             reg ? reg + 7 : "us-east-1");
    req.aws_sigv4 = sig;
    req.userpwd = userpwd;
  }
  assert_int_equal(httpc_send(f->http, &req, cb, res, NULL), 0);
}

typedef struct {
  int calls, status;
  char content_type[128];
  char body[512];
} raw_res;

static void on_raw(const httpc_response *r, void *arg) {
  raw_res *o = arg;
  o->calls++;
  o->status = r->status;
  snprintf(o->content_type, sizeof o->content_type, "%s", r->content_type ? r->content_type : "");
  snprintf(o->body, sizeof o->body, "%.*s", (int)r->body_len, r->body);
}

static void s3_put_records_the_content_type(void **state) {
  fixture *f = *state;
  const char *key = key_of(f, "typed.png");
  put_ok(f, key, "\x89PNG....", 8, "image/png");
  char userpwd[300];
  snprintf(userpwd, sizeof userpwd, "%s:%s", env_or_fail("GENQ_S3_ACCESS_KEY"),
           env_or_fail("GENQ_S3_SECRET_KEY"));
  raw_res r = {0};
  s3_raw_get(f, key, userpwd, &r, on_raw);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.content_type, "image/png");
}

static void s3_unsigned_request_is_refused_by_the_server(void **state) {
  fixture *f = *state;
  const char *key = key_of(f, "private");
  put_ok(f, key, "secret bytes", 12, NULL);
  raw_res r = {0};
  s3_raw_get(f, key, NULL, &r, on_raw); /* no signature at all */
  run_until(f, &r.calls, 1);
  assert_int_equal(r.status, 403);
}

static void s3_wrong_secret_is_rejected(void **state) {
  fixture *f = *state;
  const char *key = key_of(f, "wrong-secret");
  put_ok(f, key, "right", 5, NULL);
  storage *bad = NULL;
  char err[256];
  assert_int_equal(storage_open(&bad, &f->loop, f->http, env_or_fail("GENQ_TEST_S3_URL"),
                                env_or_fail("GENQ_S3_ACCESS_KEY"), "not-the-secret", err,
                                sizeof err),
                   0);
  done_res d = {0};
  assert_int_equal(storage_put(bad, key, "forged", 6, NULL, on_done, &d), 0);
  run_until(f, &d.calls, 1);
  assert_true(d.has_err);
  if (!strstr(d.err, "HTTP 403") || !strstr(d.err, "SignatureDoesNotMatch"))
    fail_msg("unexpected error: %s", d.err);
  get_res g = {0};
  assert_int_equal(storage_get(bad, key, 100, on_get, &g), 0);
  run_until(f, &g.calls, 1);
  assert_true(g.has_err);
  assert_false(g.not_found);
  done_res d2 = {0};
  assert_int_equal(storage_delete(bad, key, on_done, &d2), 0);
  run_until(f, &d2.calls, 1);
  assert_true(d2.has_err);
  storage_close(bad);
  /* The object is untouched. */
  get_into(f, key, 100, &g);
  assert_string_equal(g.data, "right");
  free(g.data);
}

static void s3_tampered_payload_hash_is_rejected(void **state) {
  /* The server checks x-amz-content-sha256 against the body, so the hash
   * storage sends is checked too (the roundtrip tests pass only if right). */
  fixture *f = *state;
  const char *u = env_or_fail("GENQ_TEST_S3_URL");
  const char *ep = strstr(u, "endpoint=") + strlen("endpoint=");
  char url[512], userpwd[300];
  snprintf(url, sizeof url, "%.*s/%.*s/%s", (int)strcspn(ep, "&"), ep, (int)strcspn(u + 5, "/?"),
           u + 5, key_of(f, "tampered"));
  snprintf(userpwd, sizeof userpwd, "%s:%s", env_or_fail("GENQ_S3_ACCESS_KEY"),
           env_or_fail("GENQ_S3_SECRET_KEY"));
  const char *hdrs[] = {
      "x-amz-content-sha256: 0000000000000000000000000000000000000000000000000000000000000000",
      NULL};
  const char *reg = strstr(u, "region=");
  char sig[64];
  snprintf(sig, sizeof sig, "aws:amz:%.*s:s3", reg ? (int)strcspn(reg + 7, "&") : 9,
           reg ? reg + 7 : "us-east-1");
  httpc_request req = {.method = "PUT",
                       .url = url,
                       .headers = hdrs,
                       .body = "payload",
                       .body_len = 7,
                       .aws_sigv4 = sig,
                       .userpwd = userpwd};
  raw_res r = {0};
  assert_int_equal(httpc_send(f->http, &req, on_raw, &r, NULL), 0);
  run_until(f, &r.calls, 1);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body, "XAmzContentSHA256Mismatch"));
}

static void s3_missing_bucket_is_an_error_not_not_found(void **state) {
  fixture *f = *state;
  const char *u = env_or_fail("GENQ_TEST_S3_URL");
  const char *q = strchr(u, '?');
  char url[512];
  snprintf(url, sizeof url, "s3://genq-no-such-bucket%s", q ? q : "");
  storage *s = NULL;
  char err[256];
  assert_int_equal(storage_open(&s, &f->loop, f->http, url, env_or_fail("GENQ_S3_ACCESS_KEY"),
                                env_or_fail("GENQ_S3_SECRET_KEY"), err, sizeof err),
                   0);
  get_res g = {0};
  assert_int_equal(storage_get(s, "x", 100, on_get, &g), 0);
  run_until(f, &g.calls, 1);
  assert_true(g.has_err);
  assert_false(g.not_found);
  assert_non_null(strstr(g.err, "NoSuchBucket"));
  done_res d = {0};
  assert_int_equal(storage_delete(s, "x", on_done, &d), 0);
  run_until(f, &d.calls, 1);
  assert_true(d.has_err);
  storage_close(s);
}

static void s3_unreachable_endpoint_is_an_error(void **state) {
  fixture *f = *state;
  storage *s = NULL;
  char err[256];
  /* Port 1 on loopback: nothing listens there. */
  assert_int_equal(storage_open(&s, &f->loop, f->http, "s3://genq-test?endpoint=http://127.0.0.1:1",
                                "a", "b", err, sizeof err),
                   0);
  done_res d = {0};
  assert_int_equal(storage_put(s, "x", "y", 1, NULL, on_done, &d), 0);
  run_until(f, &d.calls, 1);
  assert_true(d.has_err);
  assert_non_null(strstr(d.err, "storage s3 PUT x"));
  storage_close(s);
}

#define BOTH(t)                                                                                    \
  cmocka_unit_test_setup_teardown(t, file_setup, teardown),                                        \
      cmocka_unit_test_setup_teardown(t, s3_setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(put_get_roundtrip_keeps_binary_bytes),
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
      cmocka_unit_test_setup_teardown(file_put_leaves_no_temporary_files, file_setup, teardown),
      cmocka_unit_test_setup_teardown(file_put_under_a_file_fails_clearly, file_setup, teardown),
      cmocka_unit_test_setup_teardown(file_close_leaves_no_temporary_files, file_setup, teardown),
      cmocka_unit_test_setup_teardown(open_refuses_bad_urls_with_a_reason, file_setup, teardown),
      cmocka_unit_test_setup_teardown(s3_put_records_the_content_type, s3_setup, teardown),
      cmocka_unit_test_setup_teardown(s3_unsigned_request_is_refused_by_the_server, s3_setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(s3_wrong_secret_is_rejected, s3_setup, teardown),
      cmocka_unit_test_setup_teardown(s3_tampered_payload_hash_is_rejected, s3_setup, teardown),
      cmocka_unit_test_setup_teardown(s3_missing_bucket_is_an_error_not_not_found, s3_setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(s3_unreachable_endpoint_is_an_error, s3_setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
