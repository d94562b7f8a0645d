/* The fixture of the storage tests (test_storage.c, test_storage_file.c,
 * test_storage_s3.c): a uv loop with an httpc client and a storage opened
 * on file:// in a fresh temporary directory (file_setup) or on s3://
 * against the S3 server at GENQ_TEST_S3_URL (s3_setup: scripts/s3rver.sh,
 * a real s3rver that checks SigV4 signatures and payload hashes, with
 * GENQ_S3_ACCESS_KEY / GENQ_S3_SECRET_KEY; without those variables the S3
 * tests fail, they never skip), and calls that wait for their callback.
 * Included once per test program (each is its own executable). */
#ifndef GENQ_TEST_STORAGE_FIXTURE_H
#define GENQ_TEST_STORAGE_FIXTURE_H
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

static inline void on_done(const char *err, void *arg) {
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

static inline void on_get(const char *data, size_t len, int not_found, const char *err, void *arg) {
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

static inline void run_until(fixture *f, const int *flag, int want) {
  uint64_t deadline = uv_hrtime() + 30ull * 1000000000ull;
  while (*flag < want && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(*flag >= want);
}

static inline fixture *fixture_new(void) {
  fixture *f = calloc(1, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(httpc_new(&f->http, &f->loop), 0);
  snprintf(f->prefix, sizeof f->prefix, "t%d-%llx", (int)getpid(), (unsigned long long)uv_hrtime());
  return f;
}

static inline void rm_rf(const char *path) {
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

static inline int file_setup(void **state) {
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

static inline int teardown(void **state) {
  fixture *f = *state;
  if (f->s) storage_close(f->s);
  httpc_close(f->http);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  if (f->dir[0]) rm_rf(f->dir);
  free(f);
  return 0;
}

static inline const char *env_or_fail(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v)
    fail_msg("%s is not set (scripts/test starts scripts/s3rver.sh and sets it)", name);
  return v;
}

static inline int s3_setup(void **state) {
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

static inline void put_ok(fixture *f, const char *key, const char *data, size_t len,
                          const char *type) {
  done_res r = {0};
  assert_int_equal(storage_put(f->s, key, data, len, type, on_done, &r), 0);
  run_until(f, &r.calls, 1);
  if (r.has_err) fail_msg("put %s: %s", key, r.err);
  assert_int_equal(r.calls, 1);
}

static inline void get_into(fixture *f, const char *key, size_t max, get_res *r) {
  r->calls = 0;
  assert_int_equal(storage_get(f->s, key, max, on_get, r), 0);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->calls, 1);
}

static inline void get_range_into(fixture *f, const char *key, size_t off, size_t len, get_res *r) {
  r->calls = 0;
  assert_int_equal(storage_get_range(f->s, key, off, len, on_get, r), 0);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->calls, 1);
}

static inline void delete_ok(fixture *f, const char *key) {
  done_res r = {0};
  assert_int_equal(storage_delete(f->s, key, on_done, &r), 0);
  run_until(f, &r.calls, 1);
  if (r.has_err) fail_msg("delete %s: %s", key, r.err);
}

static inline char *key_of(const fixture *f, const char *name) {
  static char k[4][256];
  static int i;
  char *out = k[i++ % 4];
  snprintf(out, 256, "%s/%s", f->prefix, name);
  return out;
}

static inline char *pattern(size_t n, unsigned seed) {
  char *b = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++)
    b[i] = (char)((i * 131 + (size_t)seed * 7 + (i >> 9)) & 0xff);
  return b;
}

/* ---- closing with operations in flight ---- */

typedef struct {
  int calls;
  int closed_before_return; /* set by the test once storage_close returned */
  int late;                 /* callbacks after storage_close returned */
  char err[64];
} close_res;

static inline void on_close_done(const char *err, void *arg) {
  close_res *r = arg;
  r->calls++;
  if (r->closed_before_return) r->late++;
  snprintf(r->err, sizeof r->err, "%s", err ? err : "(null)");
}

#endif
