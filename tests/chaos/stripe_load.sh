#!/usr/bin/env bash
# The chaos test's Stripe events (tests/chaos/chaos.sh starts it; not meant
# to be run by hand): Checkout Sessions for the chaos users, each of its
# events delivered one to three times, shuffled, spread over SECONDS, while
# the chaos kills and restarts things, signed as Stripe signs them
# (Stripe-Signature: t=<now>,v1=<hex HMAC-SHA256 of "<t>.<body>">, computed
# with openssl, independently of genq's verifier).
#
#   stripe_load.sh API_URL SECRET USERS OUT SECONDS SEED PREFIX
#
# USERS: the users, one a line. Per user 6 sessions of 10..99 credits: two
# paid at completion; two completed unpaid and then paid asynchronously
# (the async_payment_succeeded event may come first); two paid and then
# refunded in full through two charge.refunded events (40 %, then 100 %),
# which may come before the session. Each event is sent again while the API
# answers 5xx or not at all, for up to 60 s. Writes OUT: one line per user,
# "<user> <credits granted> <credits taken back>" as genq must count them,
# and "sent <events> <answered 200> <other>" last.
set -uo pipefail

API=${1:?API_URL} SECRET=${2:?SECRET} USERS=${3:?USERS} OUT=${4:?OUT} SECS=${5:?SECONDS}
SEED=${6:?SEED} PREFIX=${7:?PREFIX}
RANDOM=$SEED
mapfile -t USER_IDS <"$USERS"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

EVENTS=() # one JSON body each, duplicates included
declare -A GRANTED REVERSED
n=0
event() { # event TYPE OBJECT_JSON: appends 1..3 deliveries of one event
  n=$((n + 1))
  local body copies
  body=$(printf '{"id":"evt_%s_%d","object":"event","type":"%s","created":%d,"data":{"object":%s}}' \
    "$PREFIX" "$n" "$1" "$(date +%s)" "$2")
  copies=$((1 + RANDOM % 3))
  while ((copies-- > 0)); do EVENTS+=("$body"); done
}
for u in "${USER_IDS[@]}"; do
  GRANTED[$u]=0 REVERSED[$u]=0
  for s in 1 2 3 4 5 6; do
    cs="cs_${PREFIX}_${u}_$s" pi="pi_${PREFIX}_${u}_$s" credits=$((10 + RANDOM % 90))
    sess() { printf '{"id":"%s","object":"checkout.session","client_reference_id":"%s","mode":"payment","payment_status":"%s","payment_intent":"%s","metadata":{"credits":"%d"}}' "$cs" "$u" "$1" "$pi" "$credits"; }
    GRANTED[$u]=$((GRANTED[$u] + credits))
    case $((s % 3)) in
    1) event checkout.session.completed "$(sess paid)" ;;
    2)
      event checkout.session.completed "$(sess unpaid)"
      event checkout.session.async_payment_succeeded "$(sess paid)"
      ;;
    0)
      event checkout.session.completed "$(sess paid)"
      event charge.refunded "{\"id\":\"ch_$cs\",\"object\":\"charge\",\"payment_intent\":\"$pi\",\"amount\":1000,\"amount_refunded\":400}"
      event charge.refunded "{\"id\":\"ch_$cs\",\"object\":\"charge\",\"payment_intent\":\"$pi\",\"amount\":1000,\"amount_refunded\":1000}"
      REVERSED[$u]=$((REVERSED[$u] + credits))
      ;;
    esac
  done
done
# shuffle (Fisher-Yates with the seeded RANDOM)
for ((i = ${#EVENTS[@]} - 1; i > 0; i--)); do
  j=$((RANDOM % (i + 1)))
  tmp=${EVENTS[i]} EVENTS[i]=${EVENTS[j]} EVENTS[j]=$tmp
done

ok=0 other=0
gap_ms=$((SECS * 1000 / (${#EVENTS[@]} + 1)))
for body in "${EVENTS[@]}"; do
  deadline=$((SECONDS + 60))
  while :; do
    t=$(date +%s)
    sig=$(printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')
    code=$(curl -sS --max-time 10 -o "$TMP/body" -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' -H "Stripe-Signature: t=$t,v1=$sig" \
      --data-binary "$body" "$API/v1/webhooks/stripe" 2>/dev/null) || true
    [[ $code =~ ^[0-9]{3}$ ]] || code=000
    if [[ $code == 200 ]]; then
      ok=$((ok + 1))
      break
    fi
    if [[ $code != 000 && $code != 5* ]] || ((SECONDS > deadline)); then
      other=$((other + 1))
      echo "stripe_load: $code for $(cut -c1-120 <<<"$body"): $(cut -c1-200 "$TMP/body")" >&2
      break
    fi
    sleep 0.5
  done
  sleep "$(printf '0.%03d' $((gap_ms % 1000)))"
  ((gap_ms >= 1000)) && sleep $((gap_ms / 1000))
done
{
  for u in "${USER_IDS[@]}"; do echo "$u ${GRANTED[$u]} ${REVERSED[$u]}"; done
  echo "sent ${#EVENTS[@]} $ok $other"
} >"$OUT"
echo "stripe_load: ${#EVENTS[@]} deliveries, $ok answered 200, $other not"
