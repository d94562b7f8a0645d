#!/usr/bin/env bash
# End to end: storyboard jobs through a running stack (genq-api, two
# genq-worker, genq-provsim, Redis, PostgreSQL) over real HTTP.
#
# Needs GENQ_API_URL (http://127.0.0.1:PORT), GENQCTL (path to genqctl) and
# the stack's variables in the environment (scripts/test provides them). The
# hold check relies on the provider taking a moment (scripts/test sets
# PROVSIM_OPENAI_LATENCY_MS=1000). Prints one line per check and, last,
# "e2e-summary: passed=N failed=M"; exits non-zero on any failure.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

: "${GENQ_API_URL:?GENQ_API_URL must be set}" "${GENQCTL:?GENQCTL must be set}"
API=${GENQ_API_URL%/}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

PASSED=0 FAILED=0
check() {
  local name=$1
  shift
  if "$@"; then
    PASSED=$((PASSED + 1))
    echo "ok   - $name"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL - $name"
    echo "       last response: HTTP $STATUS $(head -c 600 "$TMP/body" 2>/dev/null)"
  fi
}

# req METHOD PATH TOKEN [BODY]: sets STATUS and BODY; TOKEN "-" sends no
# Authorization. Counts responses without an X-Request-Id header.
STATUS="" BODY="" RESPONSES=0 NO_REQUEST_ID=0
req() {
  local method=$1 path=$2 token=$3 args=()
  [[ $token != - ]] && args+=(-H "Authorization: Bearer $token")
  (($# > 3)) && args+=(-H 'Content-Type: application/json' --data-binary "$4")
  : >"$TMP/body"
  : >"$TMP/headers"
  STATUS=$(curl -sS --max-time 10 -X "$method" -o "$TMP/body" -D "$TMP/headers" \
    -w '%{http_code}' "${args[@]}" "$API$path" 2>"$TMP/curl.err") || STATUS="curl-error: $(cat "$TMP/curl.err")"
  BODY=$(cat "$TMP/body")
  RESPONSES=$((RESPONSES + 1))
  if ! grep -qiE '^x-request-id: *[^[:space:]]+' "$TMP/headers"; then
    NO_REQUEST_ID=$((NO_REQUEST_ID + 1))
    echo "       (no X-Request-Id on $method $path)"
  fi
}

# jqt EXPR [jq args...]: true when EXPR holds for the last response body.
# Through `input`: with an empty body plain `jq -e` would exit 0.
jqt() {
  local expr=$1
  shift
  jq -n -e "$@" "input | ($expr)" <<<"$BODY" >/dev/null 2>&1
}
status_is() { [[ $STATUS == "$1" ]]; }
# error_is STATUS CODE: the error shape of every failure,
# {"error":{"code","message","request_id"}}; CODE "*" accepts any code.
error_is() {
  status_is "$1" && jqt '(.error.code | type == "string" and ($c == "*" or . == $c)) and (.error.message | type == "string")
    and (.error.request_id | type == "string" and length > 0)' --arg c "$2"
}

# poll_job TOKEN ID: GET every 0.2 s, up to 60 s, until the job is terminal.
poll_job() {
  local i
  [[ -n $2 ]] || return 1 # no job was created: nothing to wait for
  for ((i = 0; i < 300; i++)); do
    req GET "/v1/jobs/$2" "$1"
    if status_is 200 && jqt '.status | IN("succeeded", "failed", "canceled")'; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

credits_are() { # TOKEN BALANCE HELD
  req GET /v1/credits "$1"
  status_is 200 && jqt '.balance == $b and .held == $h and .available == $b - $h' \
    --argjson b "$2" --argjson h "$3"
}

# Users unique to this run, so the test can run against a used stack.
RUN=$$-$RANDOM
ALICE=e2e-alice-$RUN BOB=e2e-bob-$RUN ZED=e2e-zed-$RUN
check "genqctl grants alice 10 credits" "$GENQCTL" credits grant "$ALICE" 10 --key "e2e:$ALICE"
check "genqctl grants bob 5 credits" "$GENQCTL" credits grant "$BOB" 5 --key "e2e:$BOB"
ALICE_TOKEN=$("$GENQCTL" token --user "$ALICE" | tr -d '[:space:]')
BOB_TOKEN=$("$GENQCTL" token --user "$BOB" | tr -d '[:space:]')
ZED_TOKEN=$("$GENQCTL" token --user "$ZED" | tr -d '[:space:]')
check "genqctl token prints a JWT" [ "$(tr -cd . <<<"$ALICE_TOKEN" | wc -c)" -eq 2 ]

# --- the happy path -----------------------------------------------------
req POST /v1/jobs "$ALICE_TOKEN" '{"kind":"storyboard","input":{"prompt":"a 20 second ad for a bicycle repair shop","scenes":3}}'
check "submit storyboard answers 202" status_is 202
check "submitted job is queued, price 1, held 1" jqt \
  '.status == "queued" and .kind == "storyboard" and .cost.price == 1 and .cost.held == 1
   and (.id | type == "string" and length > 0)'
JOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
check "credits hold the price while the job runs" credits_are "$ALICE_TOKEN" 10 1
check "job finishes within 60 s" poll_job "$ALICE_TOKEN" "$JOB"
check "job succeeded" jqt '.status == "succeeded"'
check "storyboard has a title and 3 complete scenes" jqt \
  '.output.storyboard as $s | ($s.title | type == "string" and length > 0)
   and ($s.scenes | length == 3)
   and all($s.scenes[]; (.visual_prompt | type == "string" and length > 0)
       and (.narration | type == "string") and (.duration_s | type == "number" and . > 0))'
check "storyboard output has an assets array" jqt '.output.assets | type == "array"'
check "succeeded job captured its price" jqt \
  '.cost.price == 1 and .cost.held == 0 and .cost.captured == 1 and .cost.released == 0'
check "credits: balance 9, nothing held" credits_are "$ALICE_TOKEN" 9 0

# --- isolation ----------------------------------------------------------
req GET "/v1/jobs/$JOB" "$BOB_TOKEN"
check "bob reading alice's job gets 404 not_found" error_is 404 not_found
req GET /v1/jobs "$BOB_TOKEN"
check "bob's job list does not contain alice's job" jqt \
  '(.data | type == "array") and (any(.data[]; .id == $id) | not)' --arg id "$JOB"
req GET /v1/jobs "$ALICE_TOKEN"
check "alice's job list contains her job" jqt 'any(.data[]; .id == $id)' --arg id "$JOB"
check "job list has a next_cursor field" jqt 'has("next_cursor")'

# --- bad input ----------------------------------------------------------
req POST /v1/jobs "$ALICE_TOKEN" '{"kind": "storyboard", "input": {'
check "broken JSON is 400 invalid_json with a request id" error_is 400 invalid_json
req POST /v1/jobs "$ALICE_TOKEN" '{"kind":"no-such-kind","input":{"prompt":"x"}}'
check "unknown kind is 400 with the error shape" error_is 400 "*"
req POST /v1/jobs "$ALICE_TOKEN" '{"kind":"storyboard","input":{"scenes":3}}'
check "missing prompt is 400 naming prompt" error_is 400 invalid_request
check "missing prompt message names the field" jqt '.error.message | contains("prompt")'
req POST /v1/jobs "$ALICE_TOKEN" '{"kind":"storyboard","input":{"prompt":"x","scenes":13}}'
check "13 scenes is 400 naming scenes" error_is 400 invalid_request
check "13 scenes message names the field" jqt '.error.message | contains("scenes")'
check "rejected submissions hold nothing" credits_are "$ALICE_TOKEN" 9 0

# --- authentication -----------------------------------------------------
req GET /v1/jobs -
check "no Authorization is 401 unauthorized" error_is 401 unauthorized
req GET /v1/jobs "not-a-token"
check "garbage token is 401" error_is 401 unauthorized
# One character changed in the middle of the payload (never the last one,
# whose low bits base64url decoders may ignore): the signature must fail.
IFS=. read -r h p s <<<"$ALICE_TOKEN"
mid=$((${#p} / 2))
c=${p:mid:1}
[[ $c == A ]] && r=B || r=A
req GET /v1/jobs "$h.${p:0:mid}$r${p:mid+1}.$s"
check "token with a changed payload is 401" error_is 401 unauthorized

# --- credits ------------------------------------------------------------
req POST /v1/jobs "$ZED_TOKEN" '{"kind":"storyboard","input":{"prompt":"a poster for a bakery","scenes":2}}'
check "zed without credits gets 402 insufficient_credits" error_is 402 insufficient_credits
req GET /v1/jobs "$ZED_TOKEN"
check "402 created no job" jqt '.data == []'
check "zed's credits are 0/0/0" credits_are "$ZED_TOKEN" 0 0

# --- provider refusal ---------------------------------------------------
req POST /v1/jobs "$ALICE_TOKEN" '{"kind":"storyboard","input":{"prompt":"provsim:refuse something unacceptable","scenes":2}}'
check "refused-prompt job is accepted (202)" status_is 202
RJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
check "refused job finishes within 60 s" poll_job "$ALICE_TOKEN" "$RJOB"
check "refused job failed with error.code refused" jqt '.status == "failed" and .error.code == "refused"'
check "refused job released its hold" jqt '.cost.held == 0 and .cost.captured == 0 and .cost.released == 1'
check "refusal leaves alice's balance at 9, nothing held" credits_are "$ALICE_TOKEN" 9 0

# --- health -------------------------------------------------------------
req GET /healthz -
check "/healthz is 200" status_is 200
req GET /readyz -
check "/readyz is 200" status_is 200

check "every response carried X-Request-Id ($RESPONSES responses)" [ "$NO_REQUEST_ID" -eq 0 ]
check "genqctl audit finds no violation" "$GENQCTL" audit

echo "e2e-summary: passed=$PASSED failed=$FAILED"
((FAILED == 0))
