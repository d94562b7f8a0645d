#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119 # jq programs in single quotes; mini_stack_stop takes no arguments here
# e2e_stripe: POST /v1/webhooks/stripe on a mini stack, with events signed
# exactly as Stripe signs them (the stripe npm package's
# webhooks.generateTestHeaderString, through tests/stripe/send.mjs), and
# the user's credits checked to the credit with GET /v1/credits after every
# step:
#   1. Purchases: a paid Checkout Session grants once whatever the
#      deliveries (duplicates, async_payment_succeeded before its
#      completed, new event ids); unsigned, forged, stale (t 301 s old),
#      tampered events are 400 and change nothing; a header with two v1
#      (Stripe rolling its secret) and a second genq secret are accepted;
#      malformed JSON, a missing client_reference_id and non-numeric
#      credits are 400 with their codes; an unknown type is 200, ignored.
#   2. Refunds: after a job spent credits, full and partial refunds (one
#      repeated) take back what is available and leave the rest as a
#      debt; POST /v1/jobs is then 402 credit_debt; a purchase pays the
#      debt and submits work again. A refund before its session waits.
#   3. Subscriptions: a subscription Checkout Session names the user, its
#      invoice.paid grants the plan's credits once, the subscription moves
#      the plan to pro and its deletion back to free; an invoice after the
#      deletion grants nothing.
#   4. GET is 405, a body over 256 KiB 413, and a genq-api without a secret
#      answers 503 stripe_disabled (and says so at start).
#   5. genqctl audit is clean; no service log holds the secrets.
# Needs what mini_stack.bash needs, node and npm.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SENDER_DIR=$HERE/../stripe
SEC=whsec_e2e_$RANDOM$RANDOM$RANDOM
SEC2=whsec_e2e_second_$RANDOM$RANDOM
OLD=whsec_e2e_retired_$RANDOM
export STRIPE_WEBHOOK_SECRET="$SEC,$SEC2"

# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" stripe 15

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  genq_log "installing Debian's nodejs and npm for the Stripe sender"
  genq_as_root apt-get update -qq >"$TMP/apt.log" 2>&1 || true
  genq_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    nodejs npm >>"$TMP/apt.log" 2>&1 || tail -n 20 "$TMP/apt.log"
fi
npm_ci() {
  (cd "$SENDER_DIR" && timeout 600 npm ci --no-audit --no-fund) >"$TMP/npm.log" 2>&1 || {
    tail -n 30 "$TMP/npm.log"
    return 1
  }
}
check "npm ci installs tests/stripe (stripe) from its lock file" npm_ci

mini_stack_start
start_worker w1
USER_ID=e2e-stripe-$RUN
TOKEN=$("$GENQCTL" token --user "$USER_ID" | tr -d '[:space:]')
HOOK=$API/v1/webhooks/stripe

# send FILE [send.mjs options]: signs with $SEC unless options say
# otherwise, posts; sets STATUS and BODY like req.
send() {
  local file=$1 out
  shift
  local opts=("$@")
  ((${#opts[@]})) || opts=(--secret "$SEC")
  out=$(node "$SENDER_DIR/send.mjs" --url "$HOOK" "${opts[@]}" "$file" 2>"$TMP/send.err") ||
    out="curl-error $(cat "$TMP/send.err")"
  STATUS=${out%% *}
  BODY=${out#* }
}

# ev TYPE OBJECT_JSON: writes an event (a fresh id, created now) to a file
# and prints its path. Called in $(...): the id comes from the clock, not
# from a counter the subshell would lose.
ev() {
  local n
  n=$(date +%s%N)$RANDOM
  jq -n --arg id "evt_${RUN}_$n" --arg type "$1" --argjson o "$2" --argjson t "$(date +%s)" \
    '{id: $id, object: "event", api_version: "2025-06-30.basil", created: $t, type: $type,
      livemode: false, data: {object: $o}}' >"$TMP/ev$n.json"
  echo "$TMP/ev$n.json"
}
# session ID CREDITS PAYMENT_STATUS PAYMENT_INTENT: a payment-mode Checkout Session
session() {
  jq -n --arg id "cs_${RUN}_$1" --arg u "$USER_ID" --arg c "$2" --arg ps "$3" --arg pi "pi_${RUN}_$4" \
    '{id: $id, object: "checkout.session", mode: "payment", client_reference_id: $u,
      metadata: {credits: $c}, payment_status: $ps, status: "complete", payment_intent: $pi,
      amount_total: 1000, currency: "usd"}'
}
charge() { # PAYMENT_INTENT AMOUNT_REFUNDED (of 1000)
  jq -n --arg pi "pi_${RUN}_$1" --argjson r "$2" \
    '{id: ("ch_" + $pi), object: "charge", payment_intent: $pi, amount: 1000,
      amount_refunded: $r, refunded: ($r >= 1000)}'
}
credits() { # BALANCE HELD DEBT
  req GET /v1/credits "$TOKEN"
  status_is 200 && jqt '.balance == $b and .held == $h and .available == $b - $h and .debt == $d' \
    --argjson b "$1" --argjson h "$2" --argjson d "$3"
}
ok_outcome() { status_is 200 && jqt '.received == true and .outcome == $o' --arg o "$1"; }

# ---- 1. purchases -----------------------------------------------------------
req GET /v1/credits "$TOKEN"
check "a new user has 0 credits" credits 0 0 0
E1=$(ev checkout.session.completed "$(session 1 100 paid 1)")
send "$E1" --no-signature
check "an unsigned event is 400 invalid_signature" error_is 400 invalid_signature
send "$E1"
check "checkout.session.completed (paid, 100 credits) is 200 granted" ok_outcome granted
check "... 100 credits" credits 100 0 0
send "$E1"
check "the same event again is 200 already_granted" ok_outcome already_granted
send "$(ev checkout.session.async_payment_succeeded "$(session 1 100 paid 1)")"
check "async_payment_succeeded of the session, another event id: already_granted" ok_outcome already_granted
send "$(ev checkout.session.completed "$(session 1 100 paid 1)")"
check "completed again under a new event id: already_granted" ok_outcome already_granted
check "... still 100 credits" credits 100 0 0

E2=$(ev checkout.session.completed "$(session 2 50 paid 2)")
send "$E2" --secret whsec_forged_secret
check "an event signed with another secret is 400 invalid_signature" error_is 400 invalid_signature
send "$E2" --secret "$SEC" --timestamp $(($(date +%s) - 301))
check "t 301 s old is 400 signature_expired" error_is 400 signature_expired
send "$E2" --secret "$SEC" --tamper
check "a body changed after signing is 400 invalid_signature" error_is 400 invalid_signature
check "... none of them changed anything" credits 100 0 0
send "$E2" --secret "$OLD" --secret "$SEC"
check "two v1 (a retired secret's and the current one) are accepted" ok_outcome granted
check "... 150 credits" credits 150 0 0
send "$(ev checkout.session.completed "$(session 3 20 paid 3)")" --secret "$SEC2"
check "signed with genq's second secret (STRIPE_WEBHOOK_SECRET=a,b) is accepted" ok_outcome granted
check "... 170 credits" credits 170 0 0

E4S=$(ev checkout.session.async_payment_succeeded "$(session 4 30 paid 4)")
E4C=$(ev checkout.session.completed "$(session 4 30 unpaid 4)")
send "$E4S"
check "async_payment_succeeded before its completed grants" ok_outcome granted
send "$E4C"
check "... the unpaid completed after it grants nothing more" status_is 200
check "... 200 credits" credits 200 0 0

printf '{"id":"evt_x","type":"checkout.session.completed","data":{"object":' >"$TMP/bad.json"
send "$TMP/bad.json"
check "malformed JSON (signed) is 400 invalid_json" error_is 400 invalid_json
send "$(ev checkout.session.completed "$(session 9 ten paid 9)")"
check "non-numeric metadata.credits is 400 invalid_event" error_is 400 invalid_event
check "... naming the field" jqt '.error.message | contains("data.object.metadata.credits")'
send "$(ev checkout.session.completed "$(session 9 10 paid 9 | jq 'del(.client_reference_id)')")"
check "a missing client_reference_id is 400 naming it" \
  eval 'error_is 400 invalid_event && jqt ".error.message | contains(\"client_reference_id\")"'
send "$(ev customer.created '{"id":"cus_x","object":"customer"}')"
check "an event type genq does not handle is 200 ignored" ok_outcome ignored
check "... nothing changed" credits 200 0 0

# ---- 2. refunds and debt -----------------------------------------------------
req POST /v1/jobs "$TOKEN" '{"kind":"video","input":{"prompt":"a product shot"}}'
check "a video job is accepted (10 credits)" status_is 202
JOB=$(jq -r .id <<<"$BODY")
check "... and succeeds" poll_job "$TOKEN" "$JOB"
check "... 10 credits spent" credits 190 0 0
send "$(ev charge.refunded "$(charge 1 1000)")"
check "a full refund of the 100-credit session is reversed" ok_outcome reversed
check "... 90 credits" credits 90 0 0
REF2=$(ev charge.refunded "$(charge 2 500)")
send "$REF2"
check "a 50 % refund of the 50-credit session takes 25" credits 65 0 0
send "$REF2"
check "... the same refund again is already_reversed" ok_outcome already_reversed
send "$(ev charge.refunded "$(charge 2 500)")"
check "... and under a new event id too" credits 65 0 0
send "$(ev charge.refunded "$(charge 2 1000)")"
check "the rest of it refunded: 25 more" credits 40 0 0
send "$(ev charge.refunded "$(charge 3 1000)")"
send "$(ev charge.refunded "$(charge 4 1000)")"
check "refunds beyond what is available leave a debt of what was spent" credits 0 0 10
req POST /v1/jobs "$TOKEN" '{"kind":"image","input":{"prompt":"p"}}'
check "POST /v1/jobs in debt is 402 credit_debt" error_is 402 credit_debt
send "$(ev checkout.session.completed "$(session 5 25 paid 5)")"
check "a purchase of 25 pays the debt of 10 first" credits 15 0 0
req POST /v1/jobs "$TOKEN" '{"kind":"image","input":{"prompt":"p"}}'
check "... and jobs are accepted again" status_is 202
JOB2=$(jq -r .id <<<"$BODY")
check "... the image job succeeds" poll_job "$TOKEN" "$JOB2"
req GET /v1/credits "$TOKEN"
B=$(jq .balance <<<"$BODY")
send "$(ev charge.refunded "$(charge 6 500)")"
check "a refund before its session waits" ok_outcome refund_waiting
send "$(ev checkout.session.completed "$(session 6 40 paid 6)")"
check "... and is applied when the session comes: +40 -20" credits $((B + 20)) 0 0

# ---- 3. subscriptions ------------------------------------------------------------
PRICE=price_${RUN}_pro
check "genqctl prices set maps a price to the pro plan and 300 credits" \
  "$GENQCTL" prices set "$PRICE" --plan pro --credits 300
price_listed() {
  "$GENQCTL" prices list --json |
    jq -e --arg p "$PRICE" 'any(.[]; .price_id == $p and .plan == "pro" and .credits == 300)' >/dev/null
}
check "... genqctl prices list shows it" price_listed
check "... a plan that does not exist is refused" \
  eval '! "$GENQCTL" prices set "$PRICE" --plan gold --credits 1 2>/dev/null'
check "... and changed nothing" price_listed
SUB=sub_$RUN CUS=cus_$RUN
sub_session() {
  jq -n --arg u "$USER_ID" --arg s "$SUB" --arg c "$CUS" --arg id "cs_${RUN}_sub" \
    '{id: $id, object: "checkout.session", mode: "subscription", client_reference_id: $u,
      customer: $c, subscription: $s, payment_status: "paid", status: "complete"}'
}
subscription() { # STATUS
  jq -n --arg s "$SUB" --arg c "$CUS" --arg st "$1" --arg p "$PRICE" \
    '{id: $s, object: "subscription", customer: $c, status: $st, metadata: {},
      items: {object: "list", data: [{id: "si_1", price: {id: $p, object: "price"}}]}}'
}
invoice() { # ID
  jq -n --arg id "in_${RUN}_$1" --arg s "$SUB" --arg c "$CUS" --arg p "$PRICE" \
    '{id: $id, object: "invoice", customer: $c, status: "paid", amount_paid: 900,
      parent: {type: "subscription_details", subscription_details: {subscription: $s}},
      lines: {object: "list", data: [{id: "il_1", quantity: 1,
        pricing: {type: "price_details", price_details: {price: $p}}}]}}'
}
plan_is() { [[ $(psql_db -c "select plan from accounts where user_id = '$USER_ID'") == "$1" ]]; }
B=$((B + 20))
send "$(ev invoice.paid "$(invoice 1)")"
check "the first invoice, before the session naming its user, waits" ok_outcome waiting_for_user
send "$(ev customer.subscription.created "$(subscription active)")"
send "$(ev checkout.session.completed "$(sub_session)")"
check "the subscription's Checkout Session links the user" ok_outcome subscription_linked
check "... the waiting invoice grants 300" credits $((B + 300)) 0 0
check "... and the plan is pro" plan_is pro
INV2=$(ev invoice.paid "$(invoice 2)")
send "$INV2"
send "$INV2"
send "$(ev invoice.paid "$(invoice 2)")"
check "the next invoice, delivered three times, grants 300 once" credits $((B + 600)) 0 0
send "$(ev customer.subscription.deleted "$(subscription canceled)")"
check "customer.subscription.deleted ends it" ok_outcome subscription_ended
check "... the plan is free again" plan_is free
sleep 1.1 # an invoice paid after the deletion, by event time
send "$(ev invoice.paid "$(invoice 3)")"
check "an invoice after the deletion grants nothing" credits $((B + 600)) 0 0

# ---- 4. the endpoint's limits ------------------------------------------------------
req GET /v1/webhooks/stripe -
check "GET /v1/webhooks/stripe is 405" error_is 405 method_not_allowed
head -c 300000 /dev/zero | tr '\0' ' ' | sed 's/^/{"id":"evt_big","pad":"/; s/$/"}/' >"$TMP/big.json"
REQ_HEADERS=(-H "Stripe-Signature: t=1,v1=00")
req POST /v1/webhooks/stripe - "@$TMP/big.json" # curl reads the file
REQ_HEADERS=()
check "a body over 256 KiB is 413" error_is 413 '*'
API2_PORT=""
genq_free_port API2_PORT
API2=http://127.0.0.1:$API2_PORT
genq_start api2 "$STATE/logs/api2.log" env -u STRIPE_WEBHOOK_SECRET \
  GENQ_API_LISTEN="127.0.0.1:$API2_PORT" "$BIN/genq-api"
SERVICES+=("$GENQ_LAST_PID")
genq_wait_for "$GENQ_LAST_PID" 30 curl -fsS -o /dev/null "$API2/healthz"
API=$API2 req POST /v1/webhooks/stripe - '{}'
check "a genq-api without STRIPE_WEBHOOK_SECRET answers 503 stripe_disabled" error_is 503 stripe_disabled
check "... and said why when it started" grep -q 'STRIPE_WEBHOOK_SECRET is not set' "$STATE/logs/api2.log"
check "the Stripe tables hold no event of a refused delivery" \
  [ "$(psql_db -c "select count(*) from stripe_events where event_id in ('evt_big', 'evt_x')")" = 0 ]

# ---- 5. the books -------------------------------------------------------------------
check "genqctl audit is clean" "$GENQCTL" audit
no_secret_in_logs() { ! grep -rqF -e "$SEC" -e "$SEC2" "$STATE/logs"; }
check "no service log holds a webhook secret" no_secret_in_logs
mini_stack_stop
finish
