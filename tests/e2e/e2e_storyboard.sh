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

. "$(dirname "$0")/helpers.bash"

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

check "genqctl audit finds no violation" "$GENQCTL" audit
finish
