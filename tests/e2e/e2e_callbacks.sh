#!/usr/bin/env bash
# End to end: Luma callbacks wake the worker, and are never trusted
# (PROVIDERS.md: "callbacks may be used only as a wake-up, never trusted for
# state").
#
# A mini stack of its own (mini_stack.bash: a new database, Redis db 12,
# its own genq-provsim, genq-api and one worker) whose worker has
# GENQ_CALLBACK_URL set to the API and a first status poll 30 s after the
# create (GENQ_POLL_INTERVAL_MS=30000), so that only a callback can make a
# job finish sooner:
#   1. an image of 3 s succeeds long before its first fallback poll, having
#      been polled only when genq-provsim's callbacks arrived; its create
#      carried the job's callback URL;
#   2. on a job that keeps waiting (a slow video), a forged token, a token of
#      the wrong shape, a GET and an oversized body are refused and cause no
#      poll; a valid token with a body claiming "completed" causes exactly
#      one early poll and the job still waits (the body is not read); a burst
#      of 20 valid callbacks causes at most a few polls (one a second);
#   3. the waiting job is canceled (its worker hears it through the index by
#      id), `genqctl audit` is clean, every process exits 0, no sanitizer
#      report.
#
# Needs GENQ_BUILD_DIR, the stack's GENQ_DATABASE_URL and GENQ_REDIS_URL,
# CLERK_* and GENQ_DEV_JWT_PRIVATE_KEY for tokens; scripts/test sets them.
# Prints one line per check and, last, "e2e-summary: passed=N failed=M".
# GENQ_TEST_KEEP=1 keeps the mini stack's logs and database.
# shellcheck disable=SC2016,SC2034 # $names in single quotes are jq variables; STATUS, REF are read by helpers and eval
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" callbacks 12
# an image of 3 s; a "provsim:slow" video waits 10 times 10 s, dreaming after 20 s
export PROVSIM_LUMA_IMAGE_MS=3000 PROVSIM_LUMA_VIDEO_MS=10000
export GENQ_LEASE_SECONDS=10
export GENQ_URL_SIGNING_KEY=${GENQ_URL_SIGNING_KEY:-$(openssl rand -hex 32)}
# the fallback poll comes 27-33 s after a create: anything sooner was a callback
export GENQ_POLL_INTERVAL_MS=30000 GENQ_CALLBACK_POLL_MAX_INTERVAL_MS=60000
mini_stack_start
start_worker worker GENQ_CALLBACK_URL="$GENQ_API_URL" -- --kinds image,video
# the wake-up subscription is up before anything needs it
genq_wait_for "$WPID" 30 grep -q '"channel":"genq:{q}:wakeups"' "$STATE/logs/worker.log"

mini_stack_user 100

# the callback token genq-api accepts for a job (callback_url.h), made here by hand
token_for() {
  local mac
  mac=$(printf 'luma-callback:%s' "$1" | openssl dgst -sha256 -hmac "$GENQ_URL_SIGNING_KEY" | awk '{print $NF}')
  echo "$1.${mac:0:32}"
}
# callback PATH_TOKEN [BODY]: POSTs like Luma (no Authorization); sets STATUS
callback() {
  req POST "/v1/callbacks/luma/$1" - "${2:-{\}}"
}
wait_ref() { # ID: until its step runs with a provider_ref (60 s at most)
  local i
  for ((i = 0; i < 300; i++)); do
    req GET "/v1/jobs/$1" "$TOKEN"
    status_is 200 && jqt '.steps[0].status == "running" and (.steps[0].provider_ref | type == "string")' && return 0
    sleep 0.2
  done
  return 1
}

# ---- 1. a callback wakes the worker before its fallback poll ---------------------
echo "# an image of 3 s, its first fallback poll 27-33 s after the create"
GETS0=$(sim_count luma gets)
T0=$SECONDS
req POST /v1/jobs "$TOKEN" "$(jq -nc --arg p "callbacks: a teapot $RUN" '{kind:"image",input:{prompt:$p}}')"
check "image job accepted" status_is 202
IMG=$(jq -r '.id // empty' <<<"$BODY")
check "the image job finishes" poll_job "$TOKEN" "$IMG"
ELAPSED=$((SECONDS - T0))
check "it succeeded in ${ELAPSED}s, before any fallback poll could have run (27 s)" eval \
  'jqt ".status == \"succeeded\"" && ((ELAPSED < 27))'
REF=$(jq -r '.steps[0].provider_ref // empty' <<<"$BODY")
check "genq-provsim delivered its callbacks (dreaming, completed)" [ "$(sim_count luma callbacks)" -ge 2 ]
GETS=$(($(sim_count luma gets) - GETS0))
check "the worker polled only when woken: $GETS status polls" eval '((GETS >= 1 && GETS <= 3))'
check "the create carried the job's callback URL" eval \
  '[[ $(curl -sS -H "Authorization: Bearer $LUMA_API_KEY" "$SIM/luma/dream-machine/v1/generations/$REF" |
        jq -r .request.callback_url) == "$GENQ_API_URL/v1/callbacks/luma/$(token_for "$IMG")" ]]'

# ---- 2. forged, garbage and replayed callbacks --------------------------------------
echo "# a video that keeps waiting (provsim:slow): what callbacks can and cannot do"
req POST /v1/jobs "$TOKEN" "$(jq -nc --arg p "callbacks: provsim:slow a long pan $RUN" '{kind:"video",input:{prompt:$p}}')"
check "slow video job accepted" status_is 202
VID=$(jq -r '.id // empty' <<<"$BODY")
check "its generation is checkpointed and waits" wait_ref "$VID"
GOOD=$(token_for "$VID")
sleep 1 # the create's answer is in; nothing polls it for 27 s or more
GETS0=$(sim_count luma gets)
callback "$VID.$(printf '%032d' 0)"
check "a forged token is 404" error_is 404 not_found
callback "$(token_for "$IMG" | cut -c1-37)${GOOD:37}"
check "another job's id with this job's MAC is 404" error_is 404 not_found
callback "$VID"
check "a token without a MAC is 404" error_is 404 not_found
callback "../../v1/jobs"
check "a path that is no token is 404" error_is 404 not_found
req GET "/v1/callbacks/luma/$GOOD" -
check "GET is 405" error_is 405 method_not_allowed
head -c 70000 /dev/zero | tr '\0' 'x' >"$TMP/big"
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary "@$TMP/big" \
  -H 'Content-Type: application/json' "$API/v1/callbacks/luma/$GOOD")
check "a body over 64 KiB is 413" status_is 413
sleep 1.5
check "none of them made the worker poll" [ "$(sim_count luma gets)" -eq "$GETS0" ]
check "the job still waits" eval 'req GET "/v1/jobs/$VID" "$TOKEN"; jqt ".status == \"running\" and .steps[0].status == \"running\""'

callback "$GOOD" "$(jq -nc --arg r "$(jq -r '.steps[0].provider_ref' <<<"$BODY")" \
  '{id:$r, state:"completed", generation_type:"video", assets:{video:"http://127.0.0.1:1/evil.mp4"}}')"
check "a valid token is 204, whatever the body says" status_is 204
sleep 1.5
check "it made exactly one early poll" [ "$(sim_count luma gets)" -eq $((GETS0 + 1)) ]
req GET "/v1/jobs/$VID" "$TOKEN"
check "the body was not believed: the job still waits, no output" jqt \
  '.status == "running" and .steps[0].status == "running" and (.output.assets // [] | length) == 0'

GETS1=$(sim_count luma gets)
for ((i = 0; i < 20; i++)); do callback "$GOOD"; done
check "a burst of 20 valid callbacks is answered 204" status_is 204
sleep 1.5
GETS=$(($(sim_count luma gets) - GETS1))
check "and makes at most a poll a second: $GETS polls" eval '((GETS >= 1 && GETS <= 3))'

# ---- 3. cancel, audit, a clean stop ------------------------------------------------
req POST "/v1/jobs/$VID/cancel" "$TOKEN"
check "the waiting job is canceled" eval 'status_is 200 || status_is 202'
stopped() { grep -q "\"msg\":\"job canceled: stopping it\",\"job_id\":\"$VID\"" "$STATE/logs/worker.log" ||
  jq -e -R --arg j "$VID" 'fromjson? | select(.msg == "job canceled: stopping it" and .job_id == $j)' \
    "$STATE/logs/worker.log" >/dev/null; }
check "its worker stops it at once" genq_wait_for "${SERVICES[2]}" 10 stopped
check "the user's credits: 100 - 2 - 10 (the canceled video's generation was created) captured, nothing held" \
  credits_are "$TOKEN" 88 0
check "genqctl audit is clean on the mini stack's database" "$GENQCTL" audit

# shellcheck disable=SC2119 # no service was killed on purpose
mini_stack_stop

finish
