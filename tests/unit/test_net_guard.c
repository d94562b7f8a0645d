/* net_guard.c: every refused range refuses its first and last address and
 * lets the neighbours outside it through; IPv4 carried in IPv6 (mapped,
 * compatible, NAT64, 6to4) is judged as the IPv4 address; the allowlist
 * lets exactly its networks through and is parsed strictly; webhook URLs
 * are refused for a scheme other than https (http with the development
 * flag), a user name or password, a refused IP literal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net_guard.h"

/* Why text address a is refused (NULL: allowed). */
static const char *why(const char *a, const net_guard_nets *allow) {
  unsigned char b[16];
  if (inet_pton(AF_INET, a, b) == 1) return net_guard_refused(AF_INET, b, allow);
  assert_int_equal(inet_pton(AF_INET6, a, b), 1);
  return net_guard_refused(AF_INET6, b, allow);
}

static void refused(const char *a, const char *reason) {
  const char *w = why(a, NULL);
  if (!w || !strstr(w, reason)) fail_msg("%s: expected refused (%s), got %s", a, reason, w);
}

static void allowed(const char *a) {
  const char *w = why(a, NULL);
  if (w) fail_msg("%s: expected allowed, got refused (%s)", a, w);
}

static void test_each_ipv4_range_is_refused_at_both_ends_and_not_beyond(void **state) {
  static const struct {
    const char *first, *last, *before, *after, *reason;
  } r[] = {
      {"0.0.0.0", "0.255.255.255", NULL, "1.0.0.0", "unspecified"},
      {"10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0", "private"},
      {"100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0", "shared"},
      {"127.0.0.0", "127.255.255.255", "126.255.255.255", "128.0.0.0", "loopback"},
      {"169.254.0.0", "169.254.255.255", "169.253.255.255", "169.255.0.0", "link-local"},
      {"172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0", "private"},
      {"192.0.0.0", "192.0.0.255", "191.255.255.255", "192.0.1.0", "IETF"},
      {"192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0", "private"},
      {"198.18.0.0", "198.19.255.255", "198.17.255.255", "198.20.0.0", "benchmarking"},
      {"224.0.0.0", "239.255.255.255", "223.255.255.255", NULL, "multicast"},
      {"240.0.0.0", "255.255.255.254", NULL, NULL, "reserved"},
      {"255.255.255.255", "255.255.255.255", NULL, NULL, "broadcast"},
  };
  for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
    refused(r[i].first, r[i].reason);
    refused(r[i].last, r[i].reason);
    if (r[i].before) allowed(r[i].before);
    if (r[i].after) allowed(r[i].after);
  }
  refused("169.254.169.254", "metadata");
  allowed("8.8.8.8");
  allowed("93.184.216.34");
}

static void test_each_ipv6_range_is_refused(void **state) {
  refused("::", "unspecified");
  refused("::1", "loopback");
  allowed("::2:0:0:0:0"); /* not the compatible /96 */
  refused("fc00::", "unique-local");
  refused("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local");
  refused("fd00:ec2::254", "unique-local"); /* a cloud's IPv6 metadata address */
  allowed("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  allowed("fe00::");
  refused("fe80::", "link-local");
  refused("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local");
  refused("fec0::1", "site-local");
  refused("ff00::", "multicast");
  refused("ff02::1", "multicast");
  refused("64:ff9b:1::1", "NAT64");
  refused("100::1", "discard");
  allowed("2001:4860:4860::8888");
  allowed("2606:4700::1111");
}

static void test_ipv4_carried_in_ipv6_is_judged_as_ipv4(void **state) {
  refused("::ffff:127.0.0.1", "loopback");
  refused("::ffff:169.254.169.254", "link-local");
  refused("::ffff:10.1.2.3", "private");
  allowed("::ffff:8.8.8.8");
  refused("::127.0.0.1", "loopback"); /* compatible */
  refused("::10.0.0.1", "private");
  refused("64:ff9b::127.0.0.1", "loopback"); /* NAT64 */
  refused("64:ff9b::a9fe:a9fe", "link-local");
  allowed("64:ff9b::8.8.8.8");
  refused("2002:7f00:1::", "loopback"); /* 6to4 of 127.0.0.1 */
  refused("2002:c0a8:101::1", "private");
  allowed("2002:808:808::1");
}

static void test_allowlist_lets_exactly_its_networks_through(void **state) {
  net_guard_nets n;
  char err[256];
  assert_int_equal(net_guard_nets_parse("127.0.0.1/32, ", &n, err, sizeof err), -1);
  assert_int_equal(
      net_guard_nets_parse("127.0.0.1/32,fd00:1::/32,10.2.0.0/16", &n, err, sizeof err), 0);
  assert_int_equal(n.n, 3);
  assert_null(why("127.0.0.1", &n));
  assert_null(why("::ffff:127.0.0.1", &n)); /* the same address, mapped */
  assert_non_null(why("127.0.0.2", &n));
  assert_non_null(why("::1", &n));
  assert_null(why("fd00:1:ffff::1", &n));
  assert_non_null(why("fd00:2::1", &n));
  assert_null(why("10.2.255.255", &n));
  assert_non_null(why("10.3.0.0", &n));
  assert_non_null(why("169.254.169.254", &n));
  /* a bare address is one host */
  assert_int_equal(net_guard_nets_parse("127.0.0.1", &n, err, sizeof err), 0);
  assert_int_equal(n.nets[0].prefix, 32);
  /* empty is nothing */
  assert_int_equal(net_guard_nets_parse(NULL, &n, err, sizeof err), 0);
  assert_int_equal(n.n, 0);
  assert_int_equal(net_guard_nets_parse("", &n, err, sizeof err), 0);
  assert_int_equal(n.n, 0);
}

static void test_allowlist_parsing_is_strict(void **state) {
  const char *bad[] = {"127.0.0.1/8", /* host bits past the prefix */
                       "127.0.0.0/33", "::1/129",   "10.0.0.0/",   "10.0.0.0/-1", "10.0.0.0/+8",
                       "10.0.0/8",     "localhost", "10.0.0.0/8x", "1.2.3.4/32 "};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    net_guard_nets n;
    char err[256] = "";
    if (net_guard_nets_parse(bad[i], &n, err, sizeof err) != -1) fail_msg("accepted %s", bad[i]);
    assert_non_null(strstr(err, "GENQ_WEBHOOK_ALLOW_NETS"));
  }
  char many[1024] = "";
  for (int i = 0; i <= NET_GUARD_NETS_MAX; i++)
    snprintf(many + strlen(many), sizeof many - strlen(many), "10.%d.0.0/16,", i);
  net_guard_nets n;
  char err[256];
  assert_int_equal(net_guard_nets_parse(many, &n, err, sizeof err), -1);
}

static void url_refused(const char *url, int allow_http, const net_guard_nets *allow,
                        const char *words) {
  char msg[256] = "";
  if (net_guard_url_check(url, allow_http, allow, NULL, msg, sizeof msg) != -1)
    fail_msg("accepted %s", url);
  if (!strstr(msg, words)) fail_msg("%s: message '%s' lacks '%s'", url, msg, words);
}

static void test_url_check_refuses_what_it_must(void **state) {
  url_refused("http://example.com/hook", 0, NULL, "https://");
  url_refused("http://example.com/hook", 0, NULL, "GENQ_WEBHOOK_ALLOW_HTTP");
  url_refused("ftp://example.com/hook", 1, NULL, "https://");
  url_refused("file:///etc/passwd", 1, NULL, "https://");
  url_refused("gopher://example.com/", 1, NULL, "https://");
  url_refused("https://user:pw@example.com/", 0, NULL, "user name or password");
  url_refused("https://user@example.com/", 0, NULL, "user name or password");
  url_refused("https://127.0.0.1/hook", 0, NULL, "loopback");
  url_refused("https://127.0.0.1:8443/hook", 0, NULL, "loopback");
  url_refused("http://169.254.169.254/latest/meta-data/", 1, NULL, "link-local");
  url_refused("https://[::1]/hook", 0, NULL, "loopback");
  url_refused("https://[::ffff:127.0.0.1]/hook", 0, NULL, "loopback");
  url_refused("https://[fe80::1%25eth0]/hook", 0, NULL, "zone");
  url_refused("https://10.0.0.5/", 0, NULL, "private");
  url_refused("https://0.0.0.0/", 0, NULL, "unspecified");
  /* other spellings of an IPv4 address, as libcurl reads them */
  url_refused("https://2130706433/", 0, NULL, "loopback");
  url_refused("https://0x7f.1/", 0, NULL, "loopback");
  url_refused("https://127.1/", 0, NULL, "loopback");
  url_refused("not a url", 0, NULL, "https://");
  url_refused("", 0, NULL, "https://");
}

static void test_url_check_accepts_and_splits_good_urls(void **state) {
  net_guard_url u;
  char msg[256];
  assert_int_equal(
      net_guard_url_check("https://hooks.example.com/genq?x=1", 0, NULL, &u, msg, sizeof msg), 0);
  assert_string_equal(u.host, "hooks.example.com");
  assert_int_equal(u.port, 443);
  assert_int_equal(u.https, 1);
  assert_int_equal(u.literal, 0);
  assert_int_equal(net_guard_url_check("http://example.com:8080/h", 1, NULL, &u, msg, sizeof msg),
                   0);
  assert_int_equal(u.port, 8080);
  assert_int_equal(u.https, 0);
  assert_int_equal(
      net_guard_url_check("https://[2606:4700::1111]:8443/", 0, NULL, &u, msg, sizeof msg), 0);
  assert_string_equal(u.host, "2606:4700::1111");
  assert_int_equal(u.literal, 1);
  assert_int_equal(u.addr.ss_family, AF_INET6);
  /* a refused address passes once allowlisted, and only that one */
  net_guard_nets n;
  assert_int_equal(net_guard_nets_parse("127.0.0.1/32", &n, msg, sizeof msg), 0);
  assert_int_equal(net_guard_url_check("http://127.0.0.1:9000/h", 1, &n, &u, msg, sizeof msg), 0);
  assert_int_equal(u.literal, 1);
  assert_int_equal(ntohs(((struct sockaddr_in *)&u.addr)->sin_port), 9000);
  url_refused("http://127.0.0.2:9000/h", 1, &n, "loopback");
  url_refused("http://169.254.169.254/", 1, &n, "link-local");
  /* a name is not resolved here: the worker checks what it resolves to */
  assert_int_equal(net_guard_url_check("http://localhost:9000/", 1, NULL, &u, msg, sizeof msg), 0);
  assert_int_equal(u.literal, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_ipv4_range_is_refused_at_both_ends_and_not_beyond),
      cmocka_unit_test(test_each_ipv6_range_is_refused),
      cmocka_unit_test(test_ipv4_carried_in_ipv6_is_judged_as_ipv4),
      cmocka_unit_test(test_allowlist_lets_exactly_its_networks_through),
      cmocka_unit_test(test_allowlist_parsing_is_strict),
      cmocka_unit_test(test_url_check_refuses_what_it_must),
      cmocka_unit_test(test_url_check_accepts_and_splits_good_urls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
