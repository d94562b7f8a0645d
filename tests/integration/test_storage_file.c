#define _GNU_SOURCE
/* storage's file:// backend (common/storage_file.c), in a fresh temporary
 * directory: no temporary file left behind by a put, a put under a file,
 * or a close with writes under way; the file's size and mode. */
#include "storage_fixture.h"

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(file_put_leaves_no_temporary_files, file_setup, teardown),
      cmocka_unit_test_setup_teardown(file_put_under_a_file_fails_clearly, file_setup, teardown),
      cmocka_unit_test_setup_teardown(file_close_leaves_no_temporary_files, file_setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
