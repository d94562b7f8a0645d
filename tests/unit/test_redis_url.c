/* GENQ_REDIS_URL (common/redis_url.c): redis:// and redis-sentinel://, the
 * defaults, percent-decoding, and a reason for every refusal that never
 * echoes the URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "redis_url.h"

static void plain_url(void **state) {
  rds_url u;
  char err[128] = "";
  assert_int_equal(rds_url_parse(&u, "redis://127.0.0.1:6380/3", err, sizeof err), 0);
  assert_false(u.sentinel);
  assert_string_equal(u.node.host, "127.0.0.1");
  assert_int_equal(u.node.port, 6380);
  assert_int_equal(u.db, 3);
  assert_false(u.has_password);
  assert_int_equal(rds_url_parse(&u, "redis://:p%40ss@[::1]", err, sizeof err), 0);
  assert_string_equal(u.node.host, "::1");
  assert_int_equal(u.node.port, 6379);
  assert_int_equal(u.db, 0);
  assert_true(u.has_password);
  assert_string_equal(u.password, "p@ss");
  assert_string_equal(u.user, "");
}

static void sentinel_url(void **state) {
  rds_url u;
  char err[128] = "";
  assert_int_equal(rds_url_parse(&u,
                                 "redis-sentinel://app:s3cret@10.0.0.1:26380,10.0.0.2,[::1]:26381/"
                                 "my%2Dprimary/9?sentinel_password=sen%26t",
                                 err, sizeof err),
                   0);
  assert_true(u.sentinel);
  assert_int_equal(u.nsentinels, 3);
  assert_string_equal(u.sentinels[0].host, "10.0.0.1");
  assert_int_equal(u.sentinels[0].port, 26380);
  assert_string_equal(u.sentinels[1].host, "10.0.0.2");
  assert_int_equal(u.sentinels[1].port, 26379);
  assert_string_equal(u.sentinels[2].host, "::1");
  assert_int_equal(u.sentinels[2].port, 26381);
  assert_string_equal(u.master, "my-primary");
  assert_int_equal(u.db, 9);
  assert_string_equal(u.user, "app");
  assert_string_equal(u.password, "s3cret");
  assert_true(u.has_sentinel_password);
  assert_string_equal(u.sentinel_password, "sen&t");
  rds_url_wipe(&u);
  assert_string_equal(u.password, "");
  assert_string_equal(u.sentinel_password, "");

  assert_int_equal(rds_url_parse(&u, "redis-sentinel://127.0.0.1:26379/mymaster", err, sizeof err),
                   0);
  assert_int_equal(u.nsentinels, 1);
  assert_string_equal(u.master, "mymaster");
  assert_int_equal(u.db, 0);
  assert_false(u.has_password);
  assert_false(u.has_sentinel_password);
}

static void refused(const char *url, const char *reason) {
  rds_url u;
  char err[128] = "";
  if (rds_url_parse(&u, url, err, sizeof err) == 0) fail_msg("accepted: %s", url);
  if (!strstr(err, reason)) fail_msg("%s: \"%s\" does not say \"%s\"", url, err, reason);
  if (strstr(err, "hunter2")) fail_msg("%s: the message echoes the password: %s", url, err);
}

static void bad_urls(void **state) {
  refused("http://127.0.0.1:6379", "scheme");
  refused("rediss://127.0.0.1", "scheme");
  refused("redis://", "host");
  refused("redis://127.0.0.1:99999/0", "port");
  refused("redis://127.0.0.1:abc", "port");
  refused("redis://127.0.0.1:/0", "port");
  refused("redis://127.0.0.1:6379/x", "db");
  refused("redis://hunter2@127.0.0.1", "credentials");
  refused("redis-sentinel://127.0.0.1:26379", "primary's name");
  refused("redis-sentinel://127.0.0.1:26379/", "primary's name");
  refused("redis-sentinel:///mymaster", "sentinel");
  refused("redis-sentinel://a:1,,b:2/mymaster", "host");
  refused("redis-sentinel://a:1,/mymaster", "host");
  refused("redis-sentinel://a:0/mymaster", "port");
  refused("redis-sentinel://:hunter2@a:70000/mymaster", "port");
  refused("redis-sentinel://a:1/mymaster/db", "db");
  refused("redis-sentinel://a:1/my%20master", "master name");
  refused("redis-sentinel://a:1/mymaster?password=hunter2", "parameter");
  refused("redis-sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/mymaster", "too many");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain_url),
      cmocka_unit_test(sentinel_url),
      cmocka_unit_test(bad_urls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
