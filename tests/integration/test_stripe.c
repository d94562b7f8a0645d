/* Stripe's events through genq_stripe_event (schema/functions/stripe.sql),
 * against a real PostgreSQL: a Checkout Session grants once whatever the
 * order, count and ids of its events; a refund takes back what is
 * available and leaves the rest as a debt that blocks submits (GQ4D2)
 * until a grant pays it; partial refunds are cumulative and idempotent; a
 * refund before its session waits for it; async payments; an invoice
 * grants once, waits for its user, and not after its subscription ended;
 * subscription events move the plan, older events change nothing; two
 * deliveries of one event at once on two connections grant once; bad
 * events are GQ400 naming the field and change nothing. Each test ends
 * with the audit clean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg_helpers.h"

static const char *db_url;
static int seq;

static int group_setup(void **state) {
  db_url = getenv("GENQ_DATABASE_URL");
  return pg_connect(db_url, "s");
}

static int group_teardown(void **state) {
  pg_disconnect();
  return 0;
}

/* a Stripe id of this run: <prefix>_<run>_<n> */
static char *sid(const char *prefix) {
  char b[128];
  snprintf(b, sizeof b, "%s_%s%d", prefix, run_prefix, ++seq);
  return val_keep(b);
}

/* the event JSON of type with data.object obj, a fresh event id, created t */
static char *event(const char *type, long long t, const char *obj) {
  char *b = malloc(VAL_MAX);
  snprintf(b, VAL_MAX,
           "{\"id\":\"%s\",\"object\":\"event\",\"type\":\"%s\",\"created\":%lld,"
           "\"data\":{\"object\":%s}}",
           sid("evt"), type, t, obj);
  char *v = val_keep(b);
  free(b);
  return v;
}

/* a payment-mode Checkout Session */
static char *session(const char *id, const char *user, const char *credits, const char *status,
                     const char *pi) {
  char b[1024];
  snprintf(b, sizeof b,
           "{\"id\":\"%s\",\"object\":\"checkout.session\",\"mode\":\"payment\","
           "\"client_reference_id\":\"%s\",\"metadata\":{\"credits\":\"%s\"},"
           "\"payment_status\":\"%s\",\"payment_intent\":\"%s\",\"amount_total\":1000}",
           id, user, credits, status, pi);
  return val_keep(b);
}

static char *charge(const char *pi, long long amount, long long refunded) {
  char b[512];
  snprintf(b, sizeof b,
           "{\"id\":\"ch_%s\",\"object\":\"charge\",\"payment_intent\":\"%s\","
           "\"amount\":%lld,\"amount_refunded\":%lld,\"refunded\":%s}",
           pi, pi, amount, refunded, refunded >= amount ? "true" : "false");
  return val_keep(b);
}

/* delivers one event; returns its outcome */
static char *deliver(const char *ev) {
  return sql_val("SELECT genq_stripe_event($1::jsonb) ->> 'outcome'", P(ev));
}

static const char *deliver_state(const char *ev) {
  return sql_state("SELECT genq_stripe_event($1::jsonb)", P(ev));
}

static long long debt(const char *user) {
  return sql_int("SELECT debt FROM accounts WHERE user_id = $1", P(user));
}

static char *plan(const char *user) {
  return sql_val("SELECT plan FROM accounts WHERE user_id = $1", P(user));
}

static const char *submit_state(const char *user) {
  return sql_state("SELECT * FROM genq_submit_job($1, 'video', '{\"prompt\":\"p\"}', NULL, NULL, "
                   "NULL, 5)",
                   P(user));
}

/* submits a video (10 credits), claims it and succeeds its one step: the
 * credits are spent */
static void spend_video(const char *user) {
  char *job = sql_val("SELECT job->>'id' FROM genq_submit_job($1, 'video', "
                      "'{\"prompt\":\"p\"}', NULL, NULL, NULL, 5)",
                      P(user));
  char *epoch = sql_val("SELECT epoch FROM genq_claim_job($1, 'w1', 60)", P(job));
  sql_do("SELECT genq_step_succeed($1, $2, 'video', '{}', NULL, NULL)", P(job, epoch));
  assert_string_equal(sql_val("SELECT status FROM jobs WHERE id = $1", P(job)), "succeeded");
}

/* ---- purchases ---- */

static void test_a_session_grants_once_whatever_the_events(void **state) {
  char *u = new_user(), *cs = sid("cs"), *pi = sid("pi");
  /* async_payment_succeeded before completed, then completed twice and a
   * redelivery of the first event under its own id */
  char *succeeded =
      event("checkout.session.async_payment_succeeded", 100, session(cs, u, "250", "paid", pi));
  assert_string_equal(deliver(succeeded), "granted");
  assert_string_equal(
      deliver(event("checkout.session.completed", 90, session(cs, u, "250", "paid", pi))),
      "already_granted");
  assert_string_equal(
      deliver(event("checkout.session.completed", 90, session(cs, u, "250", "paid", pi))),
      "already_granted");
  assert_string_equal(deliver(succeeded), "already_granted");
  assert_int_equal(balance(u), 250);
  assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE user_id = $1 AND ref = $2", P(u, cs)),
                   1);
  assert_int_equal(sql_int("SELECT deliveries FROM stripe_events WHERE event_id = $1::jsonb->>'id'",
                           P(succeeded)),
                   2);
  assert_audit_clean();
}

static void test_an_unpaid_completion_waits_for_the_async_payment(void **state) {
  char *u = new_user(), *cs = sid("cs"), *pi = sid("pi");
  assert_string_equal(
      deliver(event("checkout.session.completed", 1, session(cs, u, "40", "unpaid", pi))),
      "awaiting_payment");
  assert_int_equal(balance(u), 0);
  assert_string_equal(deliver(event("checkout.session.async_payment_succeeded", 2,
                                    session(cs, u, "40", "paid", pi))),
                      "granted");
  assert_int_equal(balance(u), 40);

  /* another session whose async payment fails: nothing granted, ever */
  char *cs2 = sid("cs"), *pi2 = sid("pi");
  assert_string_equal(
      deliver(event("checkout.session.completed", 1, session(cs2, u, "30", "unpaid", pi2))),
      "awaiting_payment");
  assert_string_equal(deliver(event("checkout.session.async_payment_failed", 2,
                                    session(cs2, u, "30", "unpaid", pi2))),
                      "failed");
  assert_string_equal(deliver(event("checkout.session.async_payment_failed", 2,
                                    session(cs2, u, "30", "unpaid", pi2))),
                      "already_failed");
  assert_string_equal(
      deliver(event("checkout.session.completed", 1, session(cs2, u, "30", "unpaid", pi2))),
      "awaiting_payment");
  assert_int_equal(balance(u), 40);
  assert_audit_clean();
}

static void test_a_failed_payment_takes_back_a_grant(void **state) {
  /* a session granted (completed paid), then failed: the credits go back,
   * the part spent as debt */
  char *u = new_user(), *cs = sid("cs"), *pi = sid("pi");
  deliver(event("checkout.session.completed", 1, session(cs, u, "15", "paid", pi)));
  spend_video(u);
  assert_int_equal(balance(u), 5);
  assert_string_equal(deliver(event("checkout.session.async_payment_failed", 2,
                                    session(cs, u, "15", "unpaid", pi))),
                      "failed");
  assert_int_equal(balance(u), 0);
  assert_int_equal(debt(u), 10);
  assert_audit_clean();
}

/* ---- refunds and debt ---- */

static void test_a_refund_after_spending_is_a_debt_that_blocks_and_is_paid(void **state) {
  char *u = new_user(), *cs = sid("cs"), *pi = sid("pi");
  deliver(event("checkout.session.completed", 1, session(cs, u, "30", "paid", pi)));
  spend_video(u); /* 10 spent: 20 left */
  assert_int_equal(balance(u), 20);
  assert_string_equal(deliver(event("charge.refunded", 2, charge(pi, 1000, 1000))), "reversed");
  assert_int_equal(balance(u), 0);
  assert_int_equal(debt(u), 10);
  char *c = sql_val("SELECT genq_credits($1)", P(u));
  assert_string_equal(c, "{\"debt\": 10, \"held\": 0, \"balance\": 0, \"available\": 0}");
  /* the refund again, under another event id: nothing more */
  assert_string_equal(deliver(event("charge.refunded", 3, charge(pi, 1000, 1000))),
                      "already_reversed");
  assert_int_equal(debt(u), 10);
  /* blocked, even with credits granted by an operator below the debt */
  assert_string_equal(submit_state(u), "GQ4D2");
  grant(u, "4");
  assert_int_equal(debt(u), 6);
  assert_int_equal(balance(u), 0);
  assert_string_equal(submit_state(u), "GQ4D2");
  /* a purchase pays the rest first */
  deliver(event("checkout.session.completed", 4, session(sid("cs"), u, "50", "paid", sid("pi"))));
  assert_int_equal(debt(u), 0);
  assert_int_equal(balance(u), 44);
  assert_string_equal(submit_state(u), "00000");
  assert_int_equal(held(u), 10);
  assert_audit_clean();
}

static void test_partial_refunds_are_cumulative_and_idempotent(void **state) {
  char *u = new_user(), *cs = sid("cs"), *pi = sid("pi");
  deliver(event("checkout.session.completed", 1, session(cs, u, "100", "paid", pi)));
  assert_string_equal(deliver(event("charge.refunded", 2, charge(pi, 1000, 250))), "reversed");
  assert_int_equal(balance(u), 75);
  /* the 60 % refund, then the older 25 % one delivered late */
  deliver(event("charge.refunded", 4, charge(pi, 1000, 600)));
  assert_string_equal(deliver(event("charge.refunded", 2, charge(pi, 1000, 250))),
                      "already_reversed");
  assert_int_equal(balance(u), 40);
  /* rounding down: 33.3 % of 100 credits is 33 */
  char *u2 = new_user(), *pi2 = sid("pi");
  deliver(event("checkout.session.completed", 1, session(sid("cs"), u2, "100", "paid", pi2)));
  deliver(event("charge.refunded", 2, charge(pi2, 999, 333)));
  assert_int_equal(balance(u2), 67);
  deliver(event("charge.refunded", 3, charge(pi2, 999, 999)));
  assert_int_equal(balance(u2), 0);
  assert_int_equal(debt(u2), 0);
  assert_audit_clean();
}

static void test_a_refund_before_its_session_waits_for_it(void **state) {
  char *u = new_user(), *cs = sid("cs"), *pi = sid("pi");
  assert_string_equal(deliver(event("charge.refunded", 5, charge(pi, 1000, 500))),
                      "refund_waiting");
  assert_int_equal(
      sql_int("SELECT count(*) FROM stripe_refunds_waiting WHERE payment_intent = $1", P(pi)), 1);
  assert_string_equal(
      deliver(event("checkout.session.completed", 1, session(cs, u, "80", "paid", pi))), "granted");
  assert_int_equal(balance(u), 40);
  assert_int_equal(
      sql_int("SELECT count(*) FROM stripe_refunds_waiting WHERE payment_intent = $1", P(pi)), 0);
  assert_audit_clean();
}

/* ---- subscriptions ---- */

static char *invoice(const char *id, const char *customer, const char *sub, const char *price,
                     int new_shape) {
  char b[1024];
  if (new_shape) /* API versions from 2025: parent.subscription_details, pricing.price_details */
    snprintf(b, sizeof b,
             "{\"id\":\"%s\",\"object\":\"invoice\",\"customer\":\"%s\","
             "\"parent\":{\"subscription_details\":{\"subscription\":\"%s\"}},\"amount_paid\":900,"
             "\"lines\":{\"data\":[{\"quantity\":1,\"pricing\":{\"price_details\":{\"price\":\"%"
             "s\"}}}]}}",
             id, customer, sub, price);
  else
    snprintf(b, sizeof b,
             "{\"id\":\"%s\",\"object\":\"invoice\",\"customer\":\"%s\","
             "\"subscription\":\"%s\",\"amount_paid\":900,"
             "\"lines\":{\"data\":[{\"quantity\":1,\"price\":{\"id\":\"%s\"}}]}}",
             id, customer, sub, price);
  return val_keep(b);
}

static char *subscription(const char *id, const char *customer, const char *status,
                          const char *price, const char *user) {
  char b[1024], meta[300] = "{}";
  if (user) snprintf(meta, sizeof meta, "{\"user_id\":\"%s\"}", user);
  snprintf(b, sizeof b,
           "{\"id\":\"%s\",\"object\":\"subscription\",\"customer\":\"%s\","
           "\"status\":\"%s\",\"metadata\":%s,\"items\":{\"data\":[{\"price\":{\"id\":\"%s\"}}]}}",
           id, customer, status, meta, price);
  return val_keep(b);
}

static char *sub_session(const char *cs, const char *user, const char *customer, const char *sub) {
  char b[1024];
  snprintf(b, sizeof b,
           "{\"id\":\"%s\",\"object\":\"checkout.session\",\"mode\":\"subscription\","
           "\"client_reference_id\":\"%s\",\"customer\":\"%s\",\"subscription\":\"%s\","
           "\"payment_status\":\"paid\"}",
           cs, user, customer, sub);
  return val_keep(b);
}

static void test_invoices_grant_once_and_subscriptions_move_the_plan(void **state) {
  char *u = new_user(), *cus = sid("cus"), *sub = sid("sub"), *price = sid("price");
  sql_do("INSERT INTO stripe_prices (price_id, plan, credits) VALUES ($1, 'pro', 500)", P(price));
  sql_do("SELECT genq_account_ensure($1)", P(u));
  /* the first invoice before the session that names the user: it waits */
  char *in1 = sid("in");
  assert_string_equal(deliver(event("invoice.paid", 10, invoice(in1, cus, sub, price, 0))),
                      "waiting_for_user");
  assert_string_equal(deliver(event("customer.subscription.created", 10,
                                    subscription(sub, cus, "active", price, NULL))),
                      "subscription_updated");
  assert_string_equal(plan(u), "free");
  assert_string_equal(
      deliver(event("checkout.session.completed", 11, sub_session(sid("cs"), u, cus, sub))),
      "subscription_linked");
  assert_int_equal(balance(u), 500);
  assert_string_equal(plan(u), "pro");
  /* the same invoice again, then the next one in the newer shape */
  assert_string_equal(deliver(event("invoice.paid", 12, invoice(in1, cus, sub, price, 0))),
                      "already_granted");
  char *in2 = sid("in");
  assert_string_equal(deliver(event("invoice.paid", 20, invoice(in2, cus, sub, price, 1))),
                      "granted");
  assert_string_equal(deliver(event("invoice.paid", 21, invoice(in2, cus, sub, price, 1))),
                      "already_granted");
  assert_int_equal(balance(u), 1000);
  /* an update older than the one applied changes nothing */
  assert_string_equal(deliver(event("customer.subscription.updated", 5,
                                    subscription(sub, cus, "canceled", price, NULL))),
                      "stale");
  assert_string_equal(plan(u), "pro");
  /* deleted: back to free; an invoice paid after it grants nothing, one
   * paid before it (delivered late) still does */
  assert_string_equal(deliver(event("customer.subscription.deleted", 30,
                                    subscription(sub, cus, "canceled", price, NULL))),
                      "subscription_ended");
  assert_string_equal(plan(u), "free");
  assert_string_equal(deliver(event("customer.subscription.updated", 40,
                                    subscription(sub, cus, "active", price, NULL))),
                      "ended");
  assert_string_equal(plan(u), "free");
  assert_string_equal(deliver(event("invoice.paid", 31, invoice(sid("in"), cus, sub, price, 0))),
                      "ignored");
  assert_string_equal(deliver(event("invoice.paid", 29, invoice(sid("in"), cus, sub, price, 0))),
                      "granted");
  assert_int_equal(balance(u), 1500);
  assert_audit_clean();
}

static void test_a_subscription_names_its_user_in_metadata(void **state) {
  char *u = new_user(), *cus = sid("cus"), *sub = sid("sub"), *price = sid("price");
  sql_do("INSERT INTO stripe_prices (price_id, plan, credits) VALUES ($1, 'pro', 70)", P(price));
  assert_string_equal(deliver(event("customer.subscription.updated", 10,
                                    subscription(sub, cus, "active", price, u))),
                      "subscription_updated");
  assert_string_equal(plan(u), "pro");
  assert_string_equal(deliver(event("invoice.paid", 11, invoice(sid("in"), cus, sub, price, 0))),
                      "granted");
  assert_int_equal(balance(u), 70);
  /* unpaid ends it */
  deliver(event("customer.subscription.updated", 12, subscription(sub, cus, "unpaid", price, u)));
  assert_string_equal(plan(u), "free");
  assert_audit_clean();
}

/* ---- concurrency ---- */

typedef struct {
  pthread_barrier_t *start;
  const char *ev;
  char out[64];
} racer;

static void *race_run(void *arg) {
  racer *r = arg;
  PGconn *c = PQconnectdb(db_url);
  const char *p[1] = {r->ev};
  pthread_barrier_wait(r->start);
  PGresult *res = PQexecParams(c, "SELECT genq_stripe_event($1::jsonb) ->> 'outcome'", 1, NULL, p,
                               NULL, NULL, 0);
  snprintf(r->out, sizeof r->out, "%s",
           PQresultStatus(res) == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0) : "error");
  PQclear(res);
  PQfinish(c);
  return NULL;
}

static void race(racer *rs, int n) {
  pthread_barrier_t b;
  pthread_t t[4];
  pthread_barrier_init(&b, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) {
    rs[i].start = &b;
    assert_int_equal(pthread_create(&t[i], NULL, race_run, &rs[i]), 0);
  }
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&b);
}

static void test_one_event_twice_at_once_grants_once(void **state) {
  for (int round = 0; round < 5; round++) {
    char *u = new_user(), *cs = sid("cs");
    char *ev = event("checkout.session.completed", 1, session(cs, u, "25", "paid", sid("pi")));
    racer rs[2] = {{.ev = ev}, {.ev = ev}};
    race(rs, 2);
    int granted = !strcmp(rs[0].out, "granted") + !strcmp(rs[1].out, "granted");
    int again = !strcmp(rs[0].out, "already_granted") + !strcmp(rs[1].out, "already_granted");
    assert_int_equal(granted, 1);
    assert_int_equal(again, 1);
    assert_int_equal(balance(u), 25);
  }
  assert_audit_clean();
}

/* The deterministic interleaving: one connection holds the event's row
 * (its delivery in progress, not committed); the other delivery must wait
 * for it and then find the session granted. */
static void test_a_delivery_in_progress_makes_the_other_wait(void **state) {
  char *u = new_user(), *cs = sid("cs");
  char *ev = event("checkout.session.completed", 1, session(cs, u, "25", "paid", sid("pi")));
  PGconn *a = PQconnectdb(db_url), *b = PQconnectdb(db_url);
  PQclear(PQexec(a, "BEGIN"));
  const char *p[1] = {ev};
  PGresult *r = PQexecParams(a, "SELECT genq_stripe_event($1::jsonb) ->> 'outcome'", 1, NULL, p,
                             NULL, NULL, 0);
  assert_string_equal(PQgetvalue(r, 0, 0), "granted");
  PQclear(r);
  assert_int_equal(PQsendQueryParams(b, "SELECT genq_stripe_event($1::jsonb) ->> 'outcome'", 1,
                                     NULL, p, NULL, NULL, 0),
                   1);
  /* b waits on a's row lock: a lock of b's not granted in pg_locks */
  char pid[16];
  snprintf(pid, sizeof pid, "%d", PQbackendPID(b));
  int waiting = 0;
  for (int i = 0; i < 200 && !waiting; i++) {
    waiting =
        sql_int("SELECT count(*) FROM pg_locks WHERE pid = $1::int AND NOT granted", P(pid)) > 0;
    if (!waiting) usleep(10000);
  }
  assert_true(waiting);
  PQclear(PQexec(a, "COMMIT"));
  r = PQgetResult(b);
  assert_string_equal(PQgetvalue(r, 0, 0), "already_granted");
  PQclear(r);
  while ((r = PQgetResult(b)))
    PQclear(r);
  PQfinish(a);
  PQfinish(b);
  assert_int_equal(balance(u), 25);
  assert_audit_clean();
}

/* ---- bad events ---- */

static void test_bad_events_are_gq400_naming_the_field(void **state) {
  char *u = new_user(), *cs = sid("cs");
  struct {
    const char *ev;
    const char *column;
  } bad[] = {
      {event("checkout.session.completed", 1, session(cs, u, "ten", "paid", "pi_x")),
       "data.object.metadata.credits"},
      {event("checkout.session.completed", 1, session(cs, u, "0", "paid", "pi_x")),
       "data.object.metadata.credits"},
      {event("checkout.session.completed", 1, session(cs, u, "-5", "paid", "pi_x")),
       "data.object.metadata.credits"},
      {event("checkout.session.completed", 1,
             "{\"id\":\"cs_x\",\"mode\":\"payment\",\"metadata\":{\"credits\":\"5\"}}"),
       "data.object.client_reference_id"},
      {event("checkout.session.completed", 1, "{\"id\":\"cs_y\",\"client_reference_id\":\"u\"}"),
       "data.object.metadata.credits"},
      {event("charge.refunded", 1, "{\"id\":\"ch\",\"amount\":5,\"amount_refunded\":5}"),
       "data.object.payment_intent"},
      {event("charge.refunded", 1, "{\"payment_intent\":\"pi\",\"amount\":5}"),
       "data.object.amount_refunded"},
      {event("invoice.paid", 1, "{\"id\":\"in\",\"subscription\":\"sub\"}"),
       "data.object.lines.data"},
      {"{\"type\":\"charge.refunded\",\"data\":{\"object\":{}}}", "id"},
      {"{\"id\":\"evt\",\"type\":\"charge.refunded\",\"data\":{}}", "data.object"},
      {"[1,2]", "event"},
  };
  long long before = sql_int("SELECT count(*) FROM stripe_events", NOP);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *p[1] = {bad[i].ev};
    PGresult *r =
        PQexecParams(conn, "SELECT genq_stripe_event($1::jsonb)", 1, NULL, p, NULL, NULL, 0);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *col = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
    if (!st || strcmp(st, "GQ400") != 0 || !col || strcmp(col, bad[i].column) != 0)
      fail_msg("event %zu: %s %s, wanted GQ400 %s", i, st ? st : "ok", col ? col : "-",
               bad[i].column);
    PQclear(r);
  }
  assert_int_equal(sql_int("SELECT count(*) FROM stripe_events", NOP), before);
  assert_int_equal(sql_int("SELECT count(*) FROM stripe_purchases WHERE ref = $1", P(cs)), 0);
  /* an event type genq does not handle is recorded, ignored */
  assert_string_equal(deliver(event("customer.created", 1, "{\"id\":\"cus_x\"}")), "ignored");
  assert_string_equal(deliver_state(event("invoice.paid", 1, "{\"id\":\"in_nosub\"}")), "00000");
  assert_audit_clean();
}

static void test_the_audit_sees_a_debt_off_its_ledger(void **state) {
  char *u = new_user();
  grant(u, "5");
  sql_do("UPDATE accounts SET debt = 3 WHERE user_id = $1", P(u));
  char like[80];
  snprintf(like, sizeof like, "%s", u);
  assert_int_equal(sql_int("SELECT count(*) FROM genq_audit() WHERE check_name = 'debt_vs_ledger' "
                           "AND subject = $1",
                           P(like)),
                   1);
  sql_do("UPDATE accounts SET debt = 0 WHERE user_id = $1", P(u));
  assert_audit_clean();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_session_grants_once_whatever_the_events),
      cmocka_unit_test(test_an_unpaid_completion_waits_for_the_async_payment),
      cmocka_unit_test(test_a_failed_payment_takes_back_a_grant),
      cmocka_unit_test(test_a_refund_after_spending_is_a_debt_that_blocks_and_is_paid),
      cmocka_unit_test(test_partial_refunds_are_cumulative_and_idempotent),
      cmocka_unit_test(test_a_refund_before_its_session_waits_for_it),
      cmocka_unit_test(test_invoices_grant_once_and_subscriptions_move_the_plan),
      cmocka_unit_test(test_a_subscription_names_its_user_in_metadata),
      cmocka_unit_test(test_one_event_twice_at_once_grants_once),
      cmocka_unit_test(test_a_delivery_in_progress_makes_the_other_wait),
      cmocka_unit_test(test_bad_events_are_gq400_naming_the_field),
      cmocka_unit_test(test_the_audit_sees_a_debt_off_its_ledger),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
