/* The job vocabulary has one home, PostgreSQL; common/job.c keeps the tables
 * the API validates against before it asks. This holds them to the
 * database's (GENQ_DATABASE_URL): the kinds and statuses the jobs table
 * allows, the scene bounds genq_plan_steps enforces, and the upload fields
 * genq_upload_fields names per kind. */
#include "pg_helpers.h"

#include "job.h"

/* The values a CHECK (col in (...)) constraint of table allows, sorted,
 * comma-separated. */
static char *allowed(const char *table, const char *column) {
  return sql_val("SELECT string_agg(v, ',' ORDER BY v) FROM (SELECT (regexp_matches("
                 "pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g'))[1] AS v "
                 "FROM pg_constraint c WHERE c.conrelid = $1::regclass AND c.contype = 'c' "
                 "AND pg_get_constraintdef(c.oid) LIKE '%' || $2 || '%ANY%') x",
                 P(table, column));
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* v sorted (in place) and comma-separated. */
static char *joined(const char **v, int n) {
  static char buf[1024];
  qsort(v, (size_t)n, sizeof *v, cmp_str);
  buf[0] = 0;
  for (int i = 0; i < n; i++)
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "", v[i]);
  return val_keep(buf);
}

static void test_kinds_are_the_databases(void **state) {
  const char *k[JOB_KIND_COUNT];
  for (int i = 0; i < JOB_KIND_COUNT; i++)
    k[i] = job_kind_name((job_kind)i);
  char *db = allowed("jobs", "kind");
  assert_non_null(db);
  assert_string_equal(joined(k, JOB_KIND_COUNT), db);
  /* and genq_plan_steps plans each of them */
  for (int i = 0; i < JOB_KIND_COUNT; i++)
    assert_true(sql_int("SELECT count(*) FROM genq_plan_steps($1, '{\"scenes\": 1}')",
                        P(job_kind_name((job_kind)i))) >= 1);
  assert_string_equal(sql_state("SELECT * FROM genq_plan_steps('podcast', '{}')", NOP), "22023");
  /* the first step of each, and its provider, are the plan's */
  for (int i = 0; i < JOB_KIND_COUNT; i++) {
    const char *prov = NULL, *step = job_kind_first_step((job_kind)i, &prov);
    assert_non_null(step);
    assert_int_equal(
        sql_int("SELECT (name = $2 AND provider = $3)::int "
                "FROM genq_plan_steps($1, '{\"scenes\": 1}') ORDER BY stage, idx LIMIT 1",
                P(job_kind_name((job_kind)i), step, prov)),
        1);
  }
  assert_null(job_kind_first_step(JOB_KIND_COUNT, NULL));
}

static void test_statuses_are_the_databases(void **state) {
  const char *s[JOB_STATUS_COUNT];
  for (int i = 0; i < JOB_STATUS_COUNT; i++)
    s[i] = job_status_name((job_status)i);
  assert_string_equal(joined(s, JOB_STATUS_COUNT), allowed("jobs", "status"));
  /* the terminal ones are those no transition leaves */
  for (int i = 0; i < JOB_STATUS_COUNT; i++)
    assert_int_equal(
        job_status_terminal((job_status)i),
        sql_int("SELECT (count(*) = 0)::int FROM job_transitions WHERE from_status = $1",
                P(job_status_name((job_status)i))) == 1);
}

static void test_scene_bounds_are_the_databases(void **state) {
  const char *q = "SELECT count(*) FROM genq_plan_steps('campaign', jsonb_build_object('scenes', "
                  "$1::int))";
  char n[16];
  snprintf(n, sizeof n, "%d", JOB_SCENES_MIN);
  assert_int_equal(sql_int(q, P(n)), JOB_SCENES_MIN + 2);
  snprintf(n, sizeof n, "%d", JOB_SCENES_MAX);
  assert_int_equal(sql_int(q, P(n)), JOB_SCENES_MAX + 2);
  snprintf(n, sizeof n, "%d", JOB_SCENES_MIN - 1);
  assert_string_equal(sql_state(q, P(n)), "22023");
  snprintf(n, sizeof n, "%d", JOB_SCENES_MAX + 1);
  assert_string_equal(sql_state(q, P(n)), "22023");
}

static void test_upload_fields_are_the_databases(void **state) {
  for (int k = 0; k < JOB_KIND_COUNT; k++) {
    const char *f[8];
    int n = 0, up;
    const char *name;
    for (int i = 0; (name = job_kind_field((job_kind)k, i, &up)) != NULL; i++)
      if (up) f[n++] = name;
    const char *kind = job_kind_name((job_kind)k);
    char *db = sql_val("SELECT coalesce(string_agg(field, ',' ORDER BY field), '') FROM "
                       "genq_upload_fields($1)",
                       P(kind));
    if (strcmp(joined(f, n), db) != 0)
      fail_msg("kind %s: common/job.c names uploads %s, the database %s", kind, joined(f, n), db);
  }
}

static int group_setup(void **state) {
  return pg_connect(getenv("GENQ_DATABASE_URL"), "v");
}

static int group_teardown(void **state) {
  pg_disconnect();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kinds_are_the_databases),
      cmocka_unit_test(test_statuses_are_the_databases),
      cmocka_unit_test(test_scene_bounds_are_the_databases),
      cmocka_unit_test(test_upload_fields_are_the_databases),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
