/* api/routes.c: the route table and the matcher genq-api routes by. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "routes.h"

static api_route_id id_of(const char *path, char param[API_ROUTE_PARAM_MAX]) {
  const api_route *r = api_route_match(path, param);
  return r ? r->id : API_ROUTE_NONE;
}

static void literal_paths_match_exactly(void **state) {
  char p[API_ROUTE_PARAM_MAX];
  assert_int_equal(id_of("/healthz", p), API_ROUTE_HEALTHZ);
  assert_string_equal(p, "");
  assert_int_equal(id_of("/readyz", p), API_ROUTE_READYZ);
  assert_int_equal(id_of("/v1/jobs", p), API_ROUTE_JOBS);
  assert_int_equal(id_of("/v1/credits", p), API_ROUTE_CREDITS);
  assert_int_equal(id_of("/v1/credits/ledger", p), API_ROUTE_LEDGER);
  assert_int_equal(id_of("/v1/usage", p), API_ROUTE_USAGE);
  assert_int_equal(id_of("/v1/uploads", p), API_ROUTE_UPLOADS);
  assert_int_equal(id_of("/v1/webhooks/stripe", p), API_ROUTE_WEBHOOK_STRIPE);
  assert_int_equal(id_of("/v1/me", p), API_ROUTE_ME);
  assert_int_equal(id_of("/v1/me/export", p), API_ROUTE_ME_EXPORT);
}

static void a_parameter_is_one_non_empty_segment(void **state) {
  char p[API_ROUTE_PARAM_MAX];
  const char *id = "0b5d1c2e-8f47-4e7a-9a61-3f2c7d9e4b10";
  char path[200];
  snprintf(path, sizeof path, "/v1/jobs/%s", id);
  assert_int_equal(id_of(path, p), API_ROUTE_JOB);
  assert_string_equal(p, id);
  snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
  assert_int_equal(id_of(path, p), API_ROUTE_JOB_CANCEL);
  assert_string_equal(p, id);
  snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
  assert_int_equal(id_of(path, p), API_ROUTE_JOB_EVENTS);
  snprintf(path, sizeof path, "/v1/uploads/%s/content", id);
  assert_int_equal(id_of(path, p), API_ROUTE_UPLOAD_CONTENT);
  assert_string_equal(p, id);
  assert_int_equal(id_of("/v1/assets/anything", p), API_ROUTE_ASSET);
  assert_string_equal(p, "anything"); /* the handler checks it is a UUID */
  assert_int_equal(id_of("/v1/callbacks/luma/x.y", p), API_ROUTE_CALLBACK_LUMA);
  assert_string_equal(p, "x.y");
}

static void near_misses_are_no_route(void **state) {
  char p[API_ROUTE_PARAM_MAX];
  static const char *const misses[] = {
      "",
      "/",
      "healthz",
      "//healthz",
      "/healthz/",
      "/healthzz",
      "/Healthz",
      "/v1/jobs/",
      "/v1/jobs//cancel",
      "/v1/jobs/x/",
      "/v1/jobs/x/cancel/",
      "/v1/jobs/x/y",
      "/v1/jobs/x/cancelx",
      "/v1/uploads/x",
      "/v1/uploads/x/content/y",
      "/v1/assets/",
      "/v1/assets/x/y",
      "/v1/callbacks/luma/",
      "/v1/credits/ledger/x",
      "/v1",
      "/v1/me/",
  };
  for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
    strcpy(p, "stale");
    if (api_route_match(misses[i], p)) fail_msg("'%s' matched a route", misses[i]);
    assert_string_equal(p, "");
  }
}

static void a_parameter_too_long_is_left_empty(void **state) {
  char p[API_ROUTE_PARAM_MAX];
  char path[300] = "/v1/jobs/";
  size_t n = strlen(path);
  memset(path + n, 'a', API_ROUTE_PARAM_MAX - 1);
  path[n + API_ROUTE_PARAM_MAX - 1] = 0;
  assert_int_equal(id_of(path, p), API_ROUTE_JOB); /* the longest that fits */
  assert_int_equal(strlen(p), API_ROUTE_PARAM_MAX - 1);
  path[n + API_ROUTE_PARAM_MAX - 1] = 'a';
  path[n + API_ROUTE_PARAM_MAX] = 0;
  assert_int_equal(id_of(path, p), API_ROUTE_JOB); /* still the route: its handler 404s */
  assert_string_equal(p, "");
}

static void methods_are_exact_names_of_the_list(void **state) {
  assert_true(api_route_allows("GET", "GET"));
  assert_true(api_route_allows("GET, POST", "POST"));
  assert_true(api_route_allows("GET, HEAD", "HEAD"));
  assert_false(api_route_allows("GET", "get"));
  assert_false(api_route_allows("GET", "GE"));
  assert_false(api_route_allows("GET", "GETS"));
  assert_false(api_route_allows("GET, POST", "PUT"));
  assert_false(api_route_allows("GET, POST", ""));
  assert_false(api_route_allows("GET, POST", "GET, POST"));
}

/* What `genq-api --routes` prints and the OpenAPI walk relies on: every
 * template is well formed, appears once, is reachable (no earlier template
 * shadows it), and every method list is non-empty, upper case, and has no
 * duplicates. */
static void the_table_is_well_formed(void **state) {
  assert_true(api_routes_count > 0 && api_routes_count <= API_ROUTES_MAX);
  for (size_t i = 0; i < api_routes_count; i++) {
    const api_route *r = &api_routes[i];
    assert_non_null(r->path);
    assert_int_equal(r->path[0], '/');
    assert_int_not_equal(r->id, API_ROUTE_NONE);
    int params = 0;
    for (const char *c = r->path; *c; c++)
      params += *c == '{';
    assert_true(params <= 1);
    /* a path made of the template with "x" for its parameter finds this row */
    char path[256], p[API_ROUTE_PARAM_MAX];
    size_t o = 0;
    for (const char *c = r->path; *c && o + 2 < sizeof path; c++) {
      if (*c == '{') {
        path[o++] = 'x';
        c = strchr(c, '}');
        assert_non_null(c);
      } else {
        path[o++] = *c;
      }
    }
    path[o] = 0;
    if (api_route_match(path, p) != r) fail_msg("row %zu (%s) is shadowed", i, r->path);
    for (size_t j = 0; j < i; j++) {
      assert_true(strcmp(api_routes[j].path, r->path) != 0);
      /* one row per id, but for the handlers that route inside (admin.c,
       * admin_page.c): each of their paths is a row of its own */
      if (r->id != API_ROUTE_ADMIN && r->id != API_ROUTE_ADMIN_PAGE)
        assert_int_not_equal(api_routes[j].id, r->id);
    }
    assert_true(strlen(r->methods) > 0);
    for (const char *m = r->methods; *m;) {
      size_t len = strcspn(m, ", ");
      assert_true(len > 0);
      for (size_t k = 0; k < len; k++)
        assert_true(m[k] >= 'A' && m[k] <= 'Z');
      char one[16];
      assert_true(len < sizeof one);
      memcpy(one, m, len);
      one[len] = 0;
      assert_true(api_route_allows(r->methods, one));
      assert_false(api_route_allows(m + len, one)); /* named once */
      m += len;
      while (*m == ',' || *m == ' ')
        m++;
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(literal_paths_match_exactly),
      cmocka_unit_test(a_parameter_is_one_non_empty_segment),
      cmocka_unit_test(near_misses_are_no_route),
      cmocka_unit_test(a_parameter_too_long_is_left_empty),
      cmocka_unit_test(methods_are_exact_names_of_the_list),
      cmocka_unit_test(the_table_is_well_formed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
