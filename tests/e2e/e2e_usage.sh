#!/usr/bin/env bash
# End to end: GET /v1/usage, what a cancel costs and Idempotency-Key expiry,
# over HTTP, on a mini stack of its own (mini_stack.bash, Redis db 10: one
# worker, Luma videos that take 30 s so that a cancel lands while one
# dreams).
#
# - A storyboard and an image run to the end; a video is canceled once its
#   step shows the Luma generation's provider_ref: the cancel answers the
#   job canceled with cost.captured = the video step's price (10) and
#   nothing held, the credits say so, genqctl audit is clean, and Luma is
#   not asked to delete the generation the user paid for.
# - GET /v1/usage (the default 30 days, and today alone) shows today's rows
#   per kind: submitted, succeeded, canceled and credits_spent 1, 2 and 10;
#   another user sees no rows; bad dates, from > to and more than 366 days
#   are 400 naming the field; 401 without a token, 405 for POST.
# - Idempotency-Key: a replay within 24 h is the same job with
#   Idempotent-Replayed; once its job is 25 h old (created_at moved back)
#   the same key makes a new job.
#
# Needs what mini_stack.bash needs (scripts/test sets it).
# shellcheck disable=SC2016,SC2034,SC2119 # $names in single quotes: jq's, or eval's; mini_stack_stop takes no arguments here
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" usage 10

export PROVSIM_LUMA_VIDEO_MS=30000 PROVSIM_LUMA_IMAGE_MS=300 PROVSIM_OPENAI_LATENCY_MS=50
mini_stack_start
start_worker worker
mini_stack_user 100

job_id() { jq -r '.id // empty' <<<"$BODY" 2>/dev/null; }

# --- jobs that end, and a cancel after the generation was created --------
req POST /v1/jobs "$TOKEN" '{"kind":"storyboard","input":{"prompt":"a bakery","scenes":1}}'
SB=$(job_id)
req POST /v1/jobs "$TOKEN" '{"kind":"image","input":{"prompt":"a loaf"}}'
IMG=$(job_id)
req POST /v1/jobs "$TOKEN" '{"kind":"video","input":{"prompt":"a loaf, rising"}}'
VID=$(job_id)
check "three jobs submitted" eval '[ -n "$SB" ] && [ -n "$IMG" ] && [ -n "$VID" ]'
check "the storyboard succeeds" eval 'poll_job "$TOKEN" "$SB" && jqt ".status == \"succeeded\""'
check "the image succeeds" eval 'poll_job "$TOKEN" "$IMG" && jqt ".status == \"succeeded\""'

ref_seen() {
  local i
  for ((i = 0; i < 150; i++)); do
    req GET "/v1/jobs/$VID" "$TOKEN"
    jqt '.status == "running" and (.steps[0].provider_ref | type == "string")' && return 0
    sleep 0.2
  done
  return 1
}
check "the video's step shows its Luma generation (provider_ref) while it runs" ref_seen
PRICE=$(jq -r '.cost.price' <<<"$BODY" 2>/dev/null)
DELETES_BEFORE=$(sim_count luma deletes)
req POST "/v1/jobs/$VID/cancel" "$TOKEN"
check "the cancel answers the job canceled" eval 'status_is 200 && jqt ".status == \"canceled\""'
check "the created generation is paid: cost.captured = the video step's price ($PRICE), nothing held or released" \
  jqt '.cost.captured == 10 and .cost.price == 10 and .cost.held == 0 and .cost.released == 0'
check "the step is canceled and keeps its provider_ref" \
  jqt '.steps[0].status == "canceled" and (.steps[0].provider_ref | type == "string")'
check "credits: 100 - 1 - 2 - 10 = 87, nothing held" credits_are "$TOKEN" 87 0
req GET "/v1/credits/ledger?limit=20" "$TOKEN"
check "the ledger has the video's capture and no release for it" \
  jqt '([.data[] | select(.job_id == $v) | .movement] | sort) == ["capture", "hold"]' --arg v "$VID"
sleep 1
check "Luma was not asked to delete the generation the user paid for" \
  [ "$(sim_count luma deletes)" == "$DELETES_BEFORE" ]
req POST "/v1/jobs/$VID/cancel" "$TOKEN"
check "a second cancel changes nothing" eval 'status_is 200 && jqt ".cost.captured == 10"'
check "genqctl audit is clean" "$GENQCTL" audit

# --- GET /v1/usage ---------------------------------------------------------
TODAY=$(date -u +%F)
WANT='[{"day":$d,"kind":"image","submitted":1,"succeeded":1,"failed":0,"canceled":0,"credits_spent":2},
       {"day":$d,"kind":"storyboard","submitted":1,"succeeded":1,"failed":0,"canceled":0,"credits_spent":1},
       {"day":$d,"kind":"video","submitted":1,"succeeded":0,"failed":0,"canceled":1,"credits_spent":10}]'
req GET /v1/usage "$TOKEN"
check "GET /v1/usage: the last 30 days by default" \
  jqt '.to == $d and ((.to | strptime("%Y-%m-%d") | mktime) - (.from | strptime("%Y-%m-%d") | mktime)) == 29 * 86400' \
  --arg d "$TODAY"
check "today's rows per kind: submitted, succeeded, canceled, credits_spent 2, 1, 10" \
  jqt ".days == $WANT" --arg d "$TODAY"
req GET "/v1/usage?from=$TODAY&to=$TODAY" "$TOKEN"
check "from=to=today: the same rows" eval 'status_is 200 && jqt ".from == \$d and .to == \$d and .days == $WANT" --arg d "$TODAY"'
check "credits_spent adds up to what the balance lost" jqt '([.days[].credits_spent] | add) == 13'
OTHER_TOKEN=$("$GENQCTL" token --user "e2e-usage-other-$RUN" | tr -d '[:space:]')
req GET /v1/usage "$OTHER_TOKEN"
check "another user sees only their own: no rows" eval 'status_is 200 && jqt ".days == []"'
req GET "/v1/usage?from=2024-02-29&to=2024-03-01" "$TOKEN"
check "a leap day is a date: 200 with no rows" eval 'status_is 200 && jqt ".days == [] and .from == \"2024-02-29\""'
req GET "/v1/usage?from=2023-02-29" "$TOKEN"
check "2023-02-29 is 400 naming from" eval 'error_is 400 invalid_request && jqt ".error.message | test(\"^from\")"'
req GET "/v1/usage?to=2025-13-01" "$TOKEN"
check "month 13 is 400 naming to" eval 'error_is 400 invalid_request && jqt ".error.message | test(\"^to\")"'
req GET "/v1/usage?from=yesterday" "$TOKEN"
check "a word is 400" error_is 400 invalid_request
req GET "/v1/usage?from=2025-03-02&to=2025-03-01" "$TOKEN"
check "from after to is 400" eval 'error_is 400 invalid_request && jqt ".error.message | test(\"from\")"'
req GET "/v1/usage?from=2024-01-01&to=2025-01-01" "$TOKEN"
check "367 days is 400 naming from" eval 'error_is 400 invalid_request && jqt ".error.message | test(\"^from\")"'
req GET "/v1/usage?from=2024-01-01&to=2024-12-31" "$TOKEN"
check "366 days is 200" status_is 200
req GET /v1/usage -
check "no token is 401" error_is 401 '*'
req POST /v1/usage "$TOKEN" '{}'
check "POST is 405 with Allow: GET" eval 'error_is 405 method_not_allowed && header_is Allow GET'

# --- Idempotency-Key: 24 h ---------------------------------------------------
KEY=e2e-usage-key-$RUN
REQ_HEADERS=(-H "Idempotency-Key: $KEY")
SBODY='{"kind":"storyboard","input":{"prompt":"a key that expires","scenes":1}}'
req POST /v1/jobs "$TOKEN" "$SBODY"
K1=$(job_id)
req POST /v1/jobs "$TOKEN" "$SBODY"
check "within 24 h the key replays the same job (Idempotent-Replayed: true)" \
  eval 'status_is 202 && jqt ".id == \$id" --arg id "$K1" && header_is Idempotent-Replayed true'
psql_db -c "update jobs set created_at = now() - interval '25 hours' where id = '$K1'"
req POST /v1/jobs "$TOKEN" "$SBODY"
K2=$(job_id)
check "25 h later the same key makes a new job, not a replay" \
  eval 'status_is 202 && [ -n "$K2" ] && [ "$K2" != "$K1" ] && ! header_is Idempotent-Replayed true'
req POST /v1/jobs "$TOKEN" '{"kind":"storyboard","input":{"prompt":"another body"}}'
check "and the key now names the new job: another body is 409" error_is 409 idempotency_conflict
REQ_HEADERS=()
poll_job "$TOKEN" "$K1" >/dev/null
poll_job "$TOKEN" "$K2" >/dev/null
check "genqctl audit is clean at the end" "$GENQCTL" audit

mini_stack_stop
finish
