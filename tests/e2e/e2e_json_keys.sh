#!/usr/bin/env bash
# End to end: a body of the largest size the API takes, packed with JSON
# keys, is refused quickly and does not stall the event loop: /healthz sent
# meanwhile still answers at once. And a signed token with more claims than
# genq-api reads is refused.
#
# Needs genq-api (with PostgreSQL and Redis), GENQ_API_URL and GENQCTL;
# GENQ_DEV_JWT_PRIVATE_KEY for the token check.
# shellcheck disable=SC2016 # $k in single quotes is a jq variable
set -uo pipefail

. "$(dirname "$0")/helpers.bash"

RUN=$$-$RANDOM
ERIN=e2e-erin-$RUN # no credits: the body is refused before they matter
ERIN_TOKEN=$("$GENQCTL" token --user "$ERIN" | tr -d '[:space:]')
MAX_BODY=${GENQ_MAX_BODY_BYTES:-1048576}
((MAX_BODY > 1048576)) && MAX_BODY=1048576
LIMIT_S=3 # generous: a refusal is one parse and one pass over the keys

# keys_body FILE HEAD MEMBER_FMT TAIL: HEAD, then MEMBER_FMT (printf, with
# the member's number) members joined by commas as long as the body fits
# MAX_BODY, then TAIL.
keys_body() {
  awk -v max="$MAX_BODY" -v head="$2" -v fmt="$3" -v tail="$4" 'BEGIN {
    printf "%s", head
    len = length(head)
    n = 0
    while (1) {
      m = (n ? "," : "") sprintf(fmt, n++)
      if (len + length(m) + length(tail) > max) break
      printf "%s", m
      len += length(m)
    }
    printf "%s", tail
  }' >"$1"
}

# post_during_healthz FILE: POSTs FILE to /v1/jobs and, until the API has
# answered it, GETs /healthz again and again; each request within LIMIT_S.
# Sets STATUS and BODY (of the POST) and HEALTH: 200 when every /healthz
# answered 200, else the first other status (000: no answer in time).
post_during_healthz() {
  local file=$1 post_s out n=0 slowest=0
  rm -f "$TMP/post.done"
  : >"$TMP/body"
  {
    curl -sS --max-time "$LIMIT_S" -o "$TMP/body" -w '%{http_code} %{time_total}' \
      -H "Authorization: Bearer $ERIN_TOKEN" -H 'Content-Type: application/json' \
      --data-binary @"$file" "$API/v1/jobs" >"$TMP/post.status" 2>"$TMP/post.err" ||
      echo "       (POST: $(cat "$TMP/post.err"))"
    touch "$TMP/post.done"
  } &
  HEALTH=200
  sleep 0.02 # the POST is on its way first
  while :; do
    out=$(curl -sS --max-time "$LIMIT_S" -o /dev/null -w '%{http_code} %{time_total}' \
      "$API/healthz" 2>"$TMP/health.err") || echo "       (/healthz: $(cat "$TMP/health.err"))"
    n=$((n + 1))
    [[ $HEALTH == 200 && ${out%% *} != 200 ]] && HEALTH=${out%% *}
    slowest=$(awk -v a="$slowest" -v b="${out#* }" 'BEGIN { print (b + 0 > a + 0 ? b : a) }')
    [[ -e $TMP/post.done ]] && break
  done
  wait
  read -r STATUS post_s <"$TMP/post.status"
  BODY=$(cat "$TMP/body")
  echo "       (POST answered $STATUS in ${post_s:-?} s; $n /healthz meanwhile, slowest $slowest s)"
}

# refused_naming KEY: the last POST was a 400 whose message names KEY.
refused_naming() {
  error_is 400 invalid_request && jqt '.error.message | startswith($k + " ")' --arg k "$1"
}
health_ok() { [[ $HEALTH == 200 ]]; }

keys_body "$TMP/input_keys" '{"kind":"image","input":{' '"k%05d":0' '}}'
post_during_healthz "$TMP/input_keys"
check "$(wc -c <"$TMP/input_keys") bytes, ~95,000 unknown input keys: 400 naming the first" \
  refused_naming input.k00000
check "/healthz meanwhile answers 200, each within ${LIMIT_S} s" health_ok

keys_body "$TMP/repeated_key" '{"kind":"storyboard","input":{"prompt":"x",' '"scenes":1' '}}'
post_during_healthz "$TMP/repeated_key"
check "one input key repeated ~95,000 times: 400 naming it" refused_naming input.scenes
check "/healthz meanwhile answers 200, each within ${LIMIT_S} s" health_ok

keys_body "$TMP/root_keys" '{"kind":"image","input":{"prompt":"x"},' '"r%05d":0' '}'
post_during_healthz "$TMP/root_keys"
check "~95,000 unknown top-level keys: 400 naming the first" refused_naming r00000
check "/healthz meanwhile answers 200, each within ${LIMIT_S} s" health_ok

# A correctly signed token with 65 claims (genq reads at most 64).
if [[ -s ${GENQ_DEV_JWT_PRIVATE_KEY:-} ]]; then
  now=$(date +%s)
  claims=$(jq -nc --arg sub "$ERIN" --arg iss "$CLERK_ISSUER" --arg azp "${CLERK_AUTHORIZED_PARTIES%%,*}" \
    --argjson now "$now" '{sub: $sub, iss: $iss, azp: $azp, iat: $now, nbf: $now, exp: ($now + 300)}
      + ([range(59)] | map({key: "c\(.)", value: 0}) | from_entries)')
  req GET /v1/credits "$(sign_claims "$claims")"
  check "a signed token with 65 claims is 401" error_is 401 "*"
  # the same claims less one are a valid token: the 401 is for the count
  claims=$(jq -c 'del(.c58)' <<<"$claims")
  req GET /v1/credits "$(sign_claims "$claims")"
  check "with 64 claims it is accepted" status_is 200
fi
finish
