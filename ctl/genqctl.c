/* genqctl: the operator and developer CLI (SPEC §8). Synchronous libpq: each
 * command is one or a few calls of the schema's functions. */
#include "config.h"
#include "ctl.h"
#include "job.h"
#include "migrations.h"
#include "when.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: genqctl COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  migrate                                 apply pending schema migrations\n"
    "  token --user U [--admin] [--ttl SECS]   print a signed dev session token (default ttl "
    "3600)\n"
    "  credits grant U N [--key K] [--note T] [--json]\n"
    "                                          grant N credits to user U (once per key K)\n"
    "  credits show U [--json]                 print a user's balance, held and available\n"
    "  jobs show ID [--json]                   print a job (exit 1 when not found)\n"
    "  jobs list [--status S] [--kind K] [--user U] [--limit N] [--json]\n"
    "                                          every user's jobs, newest first (default limit 50)\n"
    "  jobs cancel ID [--json]                 cancel a queued or running job (as its user\n"
    "                                          would: what had started is charged)\n"
    "  jobs retry ID [--max-attempts N] [--json]\n"
    "                                          queue a failed job (dead or not) again; it holds\n"
    "                                          price - captured again (exit 1 when refused)\n"
    "  dead list [--kind K] [--since T] [--limit N] [--json]\n"
    "                                          the dead-letter set, newest first (default limit "
    "100)\n"
    "  dead retry [--kind K] [--since T] [--max-attempts N] [--json]\n"
    "                                          retry every matching dead job (exit 1 when any\n"
    "                                          could not be, e.g. insufficient credits)\n"
    "  audit [--json]                          check the ledger invariants (exit 1 on violations)\n"
    "  status [--json]                         queue depth and oldest age per kind, running\n"
    "                                          jobs, live workers and their last beat, providers\n"
    "  workers list [--json]                   the live workers (the registry in Redis)\n"
    "  workers quiet ID [--json]               worker ID takes no new job, finishes what it holds\n"
    "  workers stop ID [--json]                worker ID finishes or hands back its jobs, exits 0\n"
    "  webhooks secret --user U [--grace D] [--json]\n"
    "                                          a new webhook signing secret for U, printed once;\n"
    "                                          the old one signs beside it for D (default 1d)\n"
    "  webhooks list --job ID [--json]         a job's webhook deliveries\n"
    "  webhooks replay ID [--json]             deliver again (same webhook-id; ID or msg_...)\n"
    "  limits show [--plan P] [--user U] [--json]\n"
    "                                          the plans' usage limits, or a user's plan,\n"
    "                                          limits and usage (docs/limits.md)\n"
    "  limits set PLAN FIELD VALUE [--json]    set one limit of a plan (0: none)\n"
    "  limits plan USER PLAN [--json]          move a user to a plan\n"
    "  providers show [--json]                 the fleet's provider limits: window, slots in use,\n"
    "                                          pause, rate and breaker (docs/providers.md)\n"
    "  providers open|close PROVIDER [--json]  force a provider's breaker open (no new work\n"
    "                                          there) or closed (openai, luma, hedra)\n"
    "  secrets rekey [--json]                  seal every stored secret again under\n"
    "                                          GENQ_SECRETS_KEY (after a key rotation)\n"
    "  keys create --user U [--name N] [--admin] [--json]\n"
    "                                          a new API key for U (gq_...), printed once\n"
    "  keys list --user U [--json]             U's API keys (never the key itself)\n"
    "  keys revoke ID [--json]                 revoke an API key, on every API process at once\n"
    "  sweep [--now T] [--json]                run the retention sweep once, to the end: uploads\n"
    "                                          unused 24 h, accounts deleted 30 days ago, ledger\n"
    "                                          rows over 2 years (T: as if it were T; a duration\n"
    "                                          is after now, e.g. 31d)\n"
    "  prices list [--json]                    the Stripe prices (stripe_prices)\n"
    "  prices set PRICE_ID --plan P|none --credits N [--json]\n"
    "                                          what a Stripe price sells: plan P and N credits\n"
    "                                          per paid invoice\n"
    "\n"
    "K is a job kind (storyboard, image, video, lipsync, campaign); S a status (queued,\n"
    "running, succeeded, failed, canceled); T an RFC 3339 date-time (2025-01-31T08:00:00Z)\n"
    "or a duration before now (90s, 10m, 2h, 1d, 1w, 1h30m); --max-attempts 1..100 (default:\n"
    "the job's own); --limit 1..10000.\n"
    "\n"
    "Configuration comes from the environment (GENQ_DATABASE_URL; for token\n"
    "GENQ_DEV_JWT_PRIVATE_KEY, CLERK_ISSUER, CLERK_AUTHORIZED_PARTIES; for webhooks secret\n"
    "and secrets rekey GENQ_SECRETS_KEY, GENQ_SECRETS_KEY_PREVIOUS; for status and workers\n"
    "GENQ_REDIS_URL); variables\n"
    "that are unset are read from .genq/env when it exists.\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

/* The arguments after the command words: positionals and known options. */
typedef struct {
  const char *pos[4];
  int npos;
  const char *key, *note;
  int json;
  long long amount; /* credits grant: pos[1], parsed before connecting */
  ctl_filter f;     /* jobs list|retry, dead list|retry */
  char since_secs[24];
  const char *job;   /* --job: webhooks list */
  const char *grace; /* --grace in seconds: webhooks secret */
  char grace_secs[24];
} ctl_args;

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "genqctl: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(genqctl --help lists the commands)\n");
  return CTL_USAGE;
}

/* A whole number in lo..hi; -1 if not. */
static long parse_bounded(const char *s, long lo, long hi) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  return v;
}

/* Parses argv (the words after the command). allow: which options are
 * accepted ("k" --key, "n" --note, "j" --json, "K" --kind, "S" --status,
 * "u" --user, "t" --since, "l" --limit, "m" --max-attempts, "J" --job, "g"
 * --grace). Returns 0 or
 * CTL_USAGE. */
static int parse_args(int argc, char **argv, const char *allow, int maxpos, ctl_args *a) {
  static const struct {
    const char *name;
    char letter;
  } valued[] = {{"--key", 'k'},  {"--note", 'n'},  {"--kind", 'K'},  {"--status", 'S'},
                {"--user", 'u'}, {"--since", 't'}, {"--limit", 'l'}, {"--max-attempts", 'm'},
                {"--job", 'J'},  {"--grace", 'g'}};
  memset(a, 0, sizeof *a);
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i], *v = NULL;
    char opt = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
      if (strcmp(s, valued[k].name) == 0 && strchr(allow, valued[k].letter)) opt = valued[k].letter;
    if (opt) {
      if (i + 1 >= argc) return usage_error("%s needs a value", s);
      v = argv[++i];
    }
    if (strcmp(s, "--json") == 0 && strchr(allow, 'j')) {
      a->json = 1;
    } else if (opt == 'k') {
      a->key = v;
    } else if (opt == 'n') {
      a->note = v;
    } else if (opt == 'K') {
      job_kind kind;
      if (job_kind_parse(v, &kind) != 0) return usage_error("unknown job kind '%s'", v);
      a->f.kind = v;
    } else if (opt == 'S') {
      job_status status;
      if (job_status_parse(v, &status) != 0) return usage_error("unknown job status '%s'", v);
      a->f.status = v;
    } else if (opt == 'u') {
      if (!*v) return usage_error("%s", "--user needs a user id");
      a->f.user = v;
    } else if (opt == 't') {
      a->f.since_at = a->f.since_secs = NULL;
      if (when_is_rfc3339(v)) {
        a->f.since_at = v;
      } else if (when_parse_duration(v, a->since_secs, sizeof a->since_secs) == 0) {
        a->f.since_secs = a->since_secs;
      } else {
        return usage_error("--since '%s' is neither an RFC 3339 date-time nor a duration like "
                           "10m, 2h or 1d",
                           v);
      }
    } else if (opt == 'l') {
      if ((a->f.limit = parse_bounded(v, 1, 10000)) < 0)
        return usage_error("--limit '%s' is not a whole number from 1 to 10000", v);
    } else if (opt == 'J') {
      a->job = v;
    } else if (opt == 'g') {
      if (when_parse_duration(v, a->grace_secs, sizeof a->grace_secs) < 0 ||
          atoll(a->grace_secs) > 30LL * 86400)
        return usage_error("--grace '%s' is not a duration of at most 30d (0s, 10m, 1d)", v);
      a->grace = a->grace_secs;
    } else if (opt == 'm') {
      if (parse_bounded(v, 1, 100) < 0)
        return usage_error("--max-attempts '%s' is not a whole number from 1 to 100", v);
      a->f.max_attempts = v;
    } else if (s[0] == '-' && s[1] != '\0' && !isdigit((unsigned char)s[1])) {
      return usage_error("unknown option '%s'", s);
    } else if (a->npos >= maxpos) {
      return usage_error("unexpected argument '%s'", s);
    } else {
      a->pos[a->npos++] = s;
    }
  }
  return 0;
}

static int parse_amount(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v <= 0 || v > 1000000000000LL) return -1;
  *out = v;
  return 0;
}

static PGconn *connect_db(void) {
  genq_config cfg;
  char err[512];
  if (config_load(&cfg, CONFIG_CTL, err, sizeof err) < 0) {
    fprintf(stderr, "genqctl: %s\n", err);
    return NULL;
  }
  PGconn *c = PQconnectdb(cfg.database_url);
  ctl_announce_init(cfg.redis_url);
  config_free(&cfg);
  if (PQstatus(c) != CONNECTION_OK) {
    const char *m = PQerrorMessage(c);
    fprintf(stderr, "genqctl: cannot connect to GENQ_DATABASE_URL: %.*s\n", (int)strcspn(m, "\n"),
            m);
    PQfinish(c);
    return NULL;
  }
  return c;
}

static int run_db_command(const char *cmd, const char *sub, const ctl_args *a) {
  PGconn *c = connect_db();
  if (!c) return CTL_FAIL;
  int rc = CTL_FAIL;
  if (strcmp(cmd, "migrate") == 0) {
    char err[1024];
    int n = migrations_apply(c, stdout, err, sizeof err);
    if (n < 0) {
      fprintf(stderr, "genqctl migrate: %s\n", err);
    } else {
      if (n == 0) printf("schema up to date\n");
      rc = CTL_OK;
    }
  } else if (strcmp(cmd, "credits") == 0 && strcmp(sub, "grant") == 0) {
    char key[64] = "ctl:";
    if (!a->key && ctl_random_hex(key + 4, 16) < 0) {
      fprintf(stderr, "genqctl: no randomness\n");
    } else {
      rc = ctl_credits_grant(c, a->pos[0], a->amount, a->key ? a->key : key,
                             a->note ? a->note : "genqctl credits grant", a->json);
    }
  } else if (strcmp(cmd, "credits") == 0) {
    rc = ctl_credits_show(c, a->pos[0], a->json);
  } else if (strcmp(cmd, "jobs") == 0 && strcmp(sub, "show") == 0) {
    rc = ctl_jobs_show(c, a->pos[0], a->json);
  } else if (strcmp(cmd, "jobs") == 0 && strcmp(sub, "retry") == 0) {
    rc = ctl_jobs_retry(c, a->pos[0], &a->f, a->json);
  } else if (strcmp(cmd, "jobs") == 0 && strcmp(sub, "cancel") == 0) {
    rc = ctl_jobs_cancel(c, a->pos[0], a->json);
  } else if (strcmp(cmd, "jobs") == 0) {
    rc = ctl_jobs_list(c, &a->f, a->json);
  } else if (strcmp(cmd, "dead") == 0 && strcmp(sub, "retry") == 0) {
    rc = ctl_dead_retry(c, &a->f, a->json);
  } else if (strcmp(cmd, "dead") == 0) {
    rc = ctl_dead_list(c, &a->f, a->json);
  } else if (strcmp(cmd, "webhooks") == 0 && strcmp(sub, "secret") == 0) {
    rc = ctl_webhooks_secret(c, a->f.user, a->grace, a->json);
  } else if (strcmp(cmd, "webhooks") == 0 && strcmp(sub, "list") == 0) {
    rc = ctl_webhooks_list(c, a->job, a->json);
  } else if (strcmp(cmd, "webhooks") == 0) {
    rc = ctl_webhooks_replay(c, a->pos[0], a->json);
  } else if (strcmp(cmd, "secrets") == 0) {
    rc = ctl_secrets_rekey(c, a->json);
  } else {
    rc = ctl_audit(c, a->json);
  }
  PQfinish(c);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage_error("%s", "missing command");
  const char *cmd = argv[1];
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
        (i == 1 && strcmp(argv[i], "help") == 0)) {
      fputs(usage_text, stdout);
      return CTL_OK;
    }

  char err[512];
  if (ctl_envfile_load(err, sizeof err) < 0) {
    fprintf(stderr, "genqctl: .genq/env: %s\n", err);
    return CTL_FAIL;
  }

  ctl_args a;
  const char *sub = "";
  if (strcmp(cmd, "token") == 0) return ctl_token(argc - 2, argv + 2);
  if (strcmp(cmd, "prices") == 0) return ctl_prices(argc - 2, argv + 2, connect_db);
  if (strcmp(cmd, "keys") == 0) return ctl_keys(argc - 2, argv + 2, connect_db);
  if (strcmp(cmd, "limits") == 0) return ctl_limits(argc - 2, argv + 2, connect_db);
  if (strcmp(cmd, "providers") == 0) return ctl_providers(argc - 2, argv + 2);
  if (strcmp(cmd, "sweep") == 0) return ctl_sweep(argc - 2, argv + 2, connect_db);
  if (strcmp(cmd, "status") == 0) return ctl_status(argc - 2, argv + 2, connect_db);
  if (strcmp(cmd, "workers") == 0) return ctl_workers(argc - 2, argv + 2);
  if (strcmp(cmd, "migrate") == 0) {
    if (parse_args(argc - 2, argv + 2, "", 0, &a)) return CTL_USAGE;
  } else if (strcmp(cmd, "audit") == 0) {
    if (parse_args(argc - 2, argv + 2, "j", 0, &a)) return CTL_USAGE;
  } else if (strcmp(cmd, "credits") == 0 || strcmp(cmd, "jobs") == 0) {
    int credits = strcmp(cmd, "credits") == 0;
    if (argc < 3) return usage_error("%s needs a subcommand", cmd);
    sub = argv[2];
    if (credits && strcmp(sub, "grant") == 0) {
      if (parse_args(argc - 3, argv + 3, "knj", 2, &a)) return CTL_USAGE;
      if (a.npos < 2) return usage_error("%s", "credits grant needs a user and an amount");
      if (parse_amount(a.pos[1], &a.amount) < 0)
        return usage_error("amount '%s' is not a positive whole number of credits", a.pos[1]);
    } else if (strcmp(sub, "show") == 0 ||
               (!credits && (strcmp(sub, "retry") == 0 || strcmp(sub, "cancel") == 0))) {
      if (parse_args(argc - 3, argv + 3, strcmp(sub, "retry") == 0 ? "jm" : "j", 1, &a))
        return CTL_USAGE;
      if (a.npos < 1 && credits) return usage_error("%s", "credits show needs a user");
      if (a.npos < 1) return usage_error("jobs %s needs a job id", sub);
    } else if (!credits && strcmp(sub, "list") == 0) {
      if (parse_args(argc - 3, argv + 3, "jSKul", 0, &a)) return CTL_USAGE;
      return run_db_command(cmd, sub, &a);
    } else {
      return usage_error("unknown subcommand '%s'", sub);
    }
    if (a.pos[0][0] == '\0') return usage_error("%s", "empty user or job id");
  } else if (strcmp(cmd, "dead") == 0) {
    if (argc < 3) return usage_error("%s", "dead needs a subcommand (list or retry)");
    sub = argv[2];
    if (strcmp(sub, "list") == 0) {
      if (parse_args(argc - 3, argv + 3, "jKtl", 0, &a)) return CTL_USAGE;
    } else if (strcmp(sub, "retry") == 0) {
      if (parse_args(argc - 3, argv + 3, "jKtm", 0, &a)) return CTL_USAGE;
    } else {
      return usage_error("unknown subcommand '%s'", sub);
    }
  } else if (strcmp(cmd, "webhooks") == 0) {
    if (argc < 3) return usage_error("%s", "webhooks needs a subcommand (secret, list or replay)");
    sub = argv[2];
    if (strcmp(sub, "secret") == 0) {
      if (parse_args(argc - 3, argv + 3, "jug", 0, &a)) return CTL_USAGE;
      if (!a.f.user) return usage_error("%s", "webhooks secret needs --user U");
    } else if (strcmp(sub, "list") == 0) {
      if (parse_args(argc - 3, argv + 3, "jJ", 0, &a)) return CTL_USAGE;
      if (!a.job || !*a.job) return usage_error("%s", "webhooks list needs --job ID");
    } else if (strcmp(sub, "replay") == 0) {
      if (parse_args(argc - 3, argv + 3, "j", 1, &a)) return CTL_USAGE;
      if (a.npos < 1 || !*a.pos[0]) return usage_error("%s", "webhooks replay needs a delivery id");
    } else {
      return usage_error("unknown subcommand '%s'", sub);
    }
  } else if (strcmp(cmd, "secrets") == 0) {
    if (argc < 3 || strcmp(argv[2], "rekey") != 0)
      return usage_error("%s", "secrets needs a subcommand (rekey)");
    sub = argv[2];
    if (parse_args(argc - 3, argv + 3, "j", 0, &a)) return CTL_USAGE;
  } else {
    return usage_error("unknown command '%s'", cmd);
  }
  return run_db_command(cmd, sub, &a);
}
