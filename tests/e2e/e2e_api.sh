#!/usr/bin/env bash
# End to end: the HTTP API's contract around the happy path — idempotency,
# pagination and filters, routing, limits, cookie and expired-token auth,
# request ids — and the retry path of a provider that keeps failing.
#
# Needs what e2e_storyboard.sh needs; the retry check expects small retry
# delays (scripts/test sets GENQ_RETRY_BASE_MS=100, GENQ_RETRY_CAP_MS=1000).
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

. "$(dirname "$0")/helpers.bash"

RUN=$$-$RANDOM
CAROL=e2e-carol-$RUN DAN=e2e-dan-$RUN
check "genqctl grants carol 20 credits" "$GENQCTL" credits grant "$CAROL" 20 --key "e2e:$CAROL"
CAROL_TOKEN=$("$GENQCTL" token --user "$CAROL" | tr -d '[:space:]')
DAN_TOKEN=$("$GENQCTL" token --user "$DAN" | tr -d '[:space:]')
SB='{"kind":"storyboard","input":{"prompt":"a teaser for a climbing gym","scenes":1}}'

# --- idempotency --------------------------------------------------------
KEY=e2e-key-$RUN
REQ_HEADERS=(-H "Idempotency-Key: $KEY")
req POST /v1/jobs "$CAROL_TOKEN" "$SB"
check "submit with an Idempotency-Key is 202" status_is 202
check "a new job is queued with a queue position" jqt '.status == "queued" or .status == "running"'
IJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
req POST /v1/jobs "$CAROL_TOKEN" "$SB"
check "the same key and body again is 202 (the first answer's status) with the same job" \
  eval 'status_is 202 && jqt ".id == \$id" --arg id "$IJOB"'
check "the replay says so: Idempotent-Replayed: true" \
  eval 'curl -sS -o /dev/null -D - -X POST -H "Authorization: Bearer $CAROL_TOKEN" \
    -H "Content-Type: application/json" -H "Idempotency-Key: $KEY" --data-binary "$SB" \
    "$GENQ_API_URL/v1/jobs" | tr -d "\r" | grep -qix "idempotent-replayed: true"'
CAROL_TOKEN2=$("$GENQCTL" token --user "$CAROL" --ttl 600 | tr -d '[:space:]')
req POST /v1/jobs "$CAROL_TOKEN2" "$SB"
check "another token of the same user shares the key: the same job again" \
  eval 'status_is 202 && jqt ".id == \$id" --arg id "$IJOB"'
req POST /v1/jobs "$DAN_TOKEN" "$SB"
check "the same key from another user is that user's own submit (402: dan has no credits), not carol's job" \
  error_is 402 insufficient_credits
req POST /v1/jobs "$CAROL_TOKEN" '{"kind":"storyboard","input":{"prompt":"something else"}}'
check "the same key with another body is 409" error_is 409 idempotency_conflict
REQ_HEADERS=()
req GET /v1/credits "$CAROL_TOKEN"
check "the replay held the price once" jqt '.available == 19'
check "the idempotent job finishes" poll_job "$CAROL_TOKEN" "$IJOB"

# --- listing: newest first, cursor pages, filters -----------------------
req POST /v1/jobs "$CAROL_TOKEN" "$SB"
J2=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
req POST /v1/jobs "$CAROL_TOKEN" "$SB"
J3=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
req GET "/v1/jobs?limit=2" "$CAROL_TOKEN"
check "limit=2 gives the two newest jobs, newest first" \
  jqt '(.data | map(.id)) == [$a, $b] and (.next_cursor | type == "string")' --arg a "$J3" --arg b "$J2"
CURSOR=$(jq -r '.next_cursor // empty' <<<"$BODY" 2>/dev/null)
req GET "/v1/jobs?limit=2&cursor=$CURSOR" "$CAROL_TOKEN"
check "the next page has the oldest job and no further cursor" \
  jqt '(.data | map(.id)) == [$c] and .next_cursor == null' --arg c "$IJOB"
poll_job "$CAROL_TOKEN" "$J2" >/dev/null
poll_job "$CAROL_TOKEN" "$J3" >/dev/null
req GET "/v1/jobs?status=succeeded&kind=storyboard" "$CAROL_TOKEN"
check "status and kind filters" jqt '(.data | length) == 3 and all(.data[]; .status == "succeeded")'
req GET "/v1/jobs?kind=video" "$CAROL_TOKEN"
check "a kind with no jobs lists nothing" jqt '.data == []'
req GET "/v1/jobs?status=bogus" "$CAROL_TOKEN"
check "an unknown status filter is 400" error_is 400 invalid_request
req GET "/v1/jobs?limit=0" "$CAROL_TOKEN"
check "limit 0 is 400" error_is 400 invalid_request
req GET "/v1/jobs?cursor=nope" "$CAROL_TOKEN"
check "a bad cursor is 400" error_is 400 invalid_request
req GET "/v1/jobs/01a2194f-39aa-7f8d-a5b2-121d8227cfe8" "$CAROL_TOKEN"
check "an unknown job id is 404" error_is 404 not_found
req GET "/v1/jobs/not-a-uuid" "$CAROL_TOKEN"
check "a malformed job id is 404" error_is 404 not_found
req GET "/v1/jobs/$IJOB" "$DAN_TOKEN"
check "dan cannot see carol's job" error_is 404 not_found

# --- validation beyond the basics ---------------------------------------
req POST /v1/jobs "$CAROL_TOKEN" '{"kind":"storyboard","input":{"prompt":"x","colour":"red"}}'
check "an unknown input field is 400 naming it" \
  eval 'error_is 400 invalid_request && jqt ".error.message | contains(\"colour\")"'
req POST /v1/jobs "$CAROL_TOKEN" '{"kind":"storyboard","input":{"prompt":"x"},"priority":1}'
check "an unknown top-level field is 400 naming it" \
  eval 'error_is 400 invalid_request && jqt ".error.message | contains(\"priority\")"'
req POST /v1/jobs "$CAROL_TOKEN" '{"kind":"storyboard","input":{"prompt":"x","scenes":"3"}}'
check "scenes as a string is 400" error_is 400 invalid_request
req POST /v1/jobs "$CAROL_TOKEN" '{"kind":"storyboard","input":{"prompt":"   "}}'
check "a blank prompt is 400" error_is 400 invalid_request
req POST /v1/jobs "$CAROL_TOKEN" '{"kind":"video","input":{"prompt":"a video","duration":"7s"}}'
check "a video duration outside 5s/9s is 400 naming the field" \
  eval 'error_is 400 invalid_request && jqt ".error.message | contains(\"duration\")"'
req POST /v1/jobs "$CAROL_TOKEN" '[1,2]'
check "a non-object body is 400" error_is 400 "*"
req POST /v1/jobs "$CAROL_TOKEN" '{"kind":"storyboard","input":{"prompt":"x"},"webhook_url":"ftp://x"}'
check "a non-http webhook_url is 400" error_is 400 invalid_request

# --- routing, media type, limits ----------------------------------------
req DELETE /v1/jobs "$CAROL_TOKEN"
check "DELETE /v1/jobs is 405" error_is 405 method_not_allowed
check "405 names the allowed methods" header_is Allow "GET, POST"
req GET /v1/nothing-here "$CAROL_TOKEN"
check "an unknown path is 404" error_is 404 not_found
STATUS=$(curl -sS -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $CAROL_TOKEN" \
  -H 'Content-Type: text/plain' --data-binary "$SB" "$API/v1/jobs")
BODY=$(cat "$TMP/body")
check "a text/plain body is 415" error_is 415 unsupported_media_type
head -c 2100000 /dev/zero | tr '\0' 'a' >"$TMP/big"
STATUS=$(curl -sS -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $CAROL_TOKEN" \
  -H 'Content-Type: application/json' --data-binary @"$TMP/big" "$API/v1/jobs")
BODY=$(cat "$TMP/body")
check "a 2 MB body is 413" error_is 413 "*"

# --- authentication variants --------------------------------------------
REQ_HEADERS=(-H "Cookie: theme=dark; __session=$CAROL_TOKEN")
req GET /v1/credits -
REQ_HEADERS=()
check "Clerk's __session cookie authenticates" eval 'status_is 200 && jqt ".balance == 17"'
SHORT=$("$GENQCTL" token --user "$CAROL" --ttl 1 | tr -d '[:space:]')
sleep 7 # past exp plus the 5 s clock skew allowed
req GET /v1/credits "$SHORT"
check "an expired token is 401" error_is 401 unauthorized
REQ_HEADERS=(-H "X-Request-Id: e2e-trace-$RUN")
req GET /v1/jobs/not-a-uuid "$CAROL_TOKEN"
REQ_HEADERS=()
check "a client X-Request-Id is echoed in the header" header_is X-Request-Id "e2e-trace-$RUN"
check "and in the error body" jqt '.error.request_id == $r' --arg r "e2e-trace-$RUN"

# --- a provider that keeps failing: retried, then failed, hold released --
req POST /v1/jobs "$CAROL_TOKEN" '{"kind":"storyboard","input":{"prompt":"provsim:error500 keeps failing","scenes":1}}'
FJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
check "the failing job is accepted" status_is 202
check "the failing job ends within 60 s" poll_job "$CAROL_TOKEN" "$FJOB"
check "it failed after all its attempts, retryable provider_error" \
  jqt '.status == "failed" and .attempt == .max_attempts and .error.code == "provider_error" and .error.retryable == true'
check "the failing step carries the error, not just the job" \
  jqt '.steps[0].status == "failed" and .steps[0].error.code == "provider_error"'
check "its hold was released, nothing captured" jqt '.cost.held == 0 and .cost.captured == 0 and .cost.released == 1'
check "carol paid exactly the 3 storyboards that succeeded" credits_are "$CAROL_TOKEN" 17 0

# --- a provider call longer than the lease --------------------------------
# scripts/test runs the workers with GENQ_LEASE_SECONDS=5: a call of 8 s
# succeeds on its first attempt only if the heartbeat renewed the lease, and
# the simulator sees exactly one completion for it.
SIM=${OPENAI_BASE_URL%/openai/v1}
sim_completions() { curl -sS --max-time 5 "$SIM/_sim/stats" | jq -e '.openai.chat_completions // 0'; }
BEFORE=$(sim_completions)
req POST /v1/jobs "$CAROL_TOKEN" '{"kind":"storyboard","input":{"prompt":"provsim:sleep=8000 a slow one","scenes":1}}'
SJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
check "the slow job finishes" poll_job "$CAROL_TOKEN" "$SJOB"
check "it succeeded on its first attempt: the lease was renewed, not lost" \
  jqt '.status == "succeeded" and .attempt == 1'
AFTER=$(sim_completions)
check "the provider saw exactly one call for it" [ "$((AFTER - BEFORE))" -eq 1 ]

check "genqctl audit finds no violation" "$GENQCTL" audit
finish
