/* genqctl prices list|set: the Stripe prices table (stripe_prices, SPEC §6,
 * docs/credits.md): what a subscription price's paid invoice grants and
 * which plan it gives. Read by genq_stripe_event when events come, so a
 * change needs no restart. */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char prices_usage[] =
    "usage: genqctl prices list [--json]\n"
    "       genqctl prices set PRICE_ID --plan PLAN|none --credits N [--json]\n";

static void prices_print(const cJSON *rows, long unused) {
  (void)unused;
  int n = cJSON_GetArraySize(rows);
  if (n == 0) {
    printf("no prices\n");
    return;
  }
  printf("%-32s %-12s %12s %s\n", "price_id", "plan", "credits", "updated_at");
  const cJSON *r;
  cJSON_ArrayForEach(r, rows) {
    printf("%-32s %-12s %12.0f %s\n", ctl_str(r, "price_id"), ctl_str(r, "plan"),
           ctl_num(r, "credits"), ctl_str(r, "updated_at"));
  }
  printf("%d price%s\n", n, n == 1 ? "" : "s");
}

static int prices_usage_error(const char *msg) {
  fprintf(stderr, "genqctl prices: %s\n%s", msg, prices_usage);
  return CTL_USAGE;
}

int ctl_prices(int argc, char **argv, PGconn *(*connect)(void)) {
  if (argc < 1) return prices_usage_error("needs a subcommand (list or set)");
  const char *sub = argv[0], *price = NULL, *plan = NULL, *credits = NULL;
  int json = 0, set = strcmp(sub, "set") == 0;
  if (!set && strcmp(sub, "list") != 0) return prices_usage_error("unknown subcommand");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (set && (strcmp(argv[i], "--plan") == 0 || strcmp(argv[i], "--credits") == 0)) {
      if (i + 1 >= argc) return prices_usage_error("an option needs a value");
      if (argv[i][2] == 'p')
        plan = argv[++i];
      else
        credits = argv[++i];
    } else if (set && !price && argv[i][0] != '-') {
      price = argv[i];
    } else {
      return prices_usage_error("unexpected argument");
    }
  }
  if (set) {
    if (!price || !*price) return prices_usage_error("set needs a price id");
    if (!plan || !*plan) return prices_usage_error("set needs --plan PLAN (or none)");
    char *end;
    errno = 0;
    long long n = credits ? strtoll(credits, &end, 10) : -1;
    if (!credits || errno || end == credits || *end || n < 0 || n > 1000000000000LL)
      return prices_usage_error("--credits must be a whole number 0..10^12");
  }
  PGconn *c = connect();
  if (!c) return CTL_FAIL;
  int rc;
  if (set) {
    const char *p[3] = {price, strcmp(plan, "none") == 0 ? NULL : plan, credits};
    rc = ctl_list(c, "prices set",
                  "SELECT jsonb_build_array(genq_stripe_price_set($1, $2, $3::bigint))", 3, p, json,
                  prices_print, 0);
  } else {
    rc = ctl_list(c, "prices list", "SELECT genq_stripe_prices()", 0, NULL, json, prices_print, 0);
  }
  PQfinish(c);
  return rc;
}
