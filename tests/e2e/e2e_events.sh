#!/usr/bin/env bash
# End to end: GET /v1/jobs/{id}/events, the server-sent event stream of a
# job — its head, one "job" event per change with ids counting from 1, the
# end of the stream after a terminal status (succeeded, canceled), 404 for
# what the caller may not see, and a client that leaves mid-stream.
#
# Needs what e2e_storyboard.sh needs; expects provider latency that keeps a
# storyboard job in flight for a moment (scripts/test sets
# PROVSIM_OPENAI_LATENCY_MS=1000). Uses redis-cli, when installed, to
# publish malformed change notices.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

. "$(dirname "$0")/helpers.bash"

RUN=$$-$RANDOM
ERIN=e2e-erin-$RUN FRANK=e2e-frank-$RUN
check "genqctl grants erin 20 credits" "$GENQCTL" credits grant "$ERIN" 20 --key "e2e:$ERIN"
ERIN_TOKEN=$("$GENQCTL" token --user "$ERIN" | tr -d '[:space:]')
FRANK_TOKEN=$("$GENQCTL" token --user "$FRANK" | tr -d '[:space:]')
SB='{"kind":"storyboard","input":{"prompt":"a teaser for a climbing gym","scenes":1}}'

# sse_start TOKEN ID MAXTIME NAME: opens a stream in the background into
# $TMP/NAME.body and $TMP/NAME.headers; sse_wait NAME sets SSE_RC (curl's
# exit status: 0 when the server ended the stream, 28 at MAXTIME) and
# SSE_STATUS.
declare -A SSE_PID
sse_start() {
  local token=$1 id=$2 max=$3 name=$4
  : >"$TMP/$name.body"
  curl -sS -N --max-time "$max" -H "Authorization: Bearer $token" -o "$TMP/$name.body" \
    -D "$TMP/$name.headers" -w '%{http_code}' "$API/v1/jobs/$id/events" \
    >"$TMP/$name.status" 2>"$TMP/$name.err" &
  SSE_PID[$name]=$!
}
SSE_RC="" SSE_STATUS=""
sse_wait() {
  SSE_RC=0
  wait "${SSE_PID[$1]}" || SSE_RC=$?
  SSE_STATUS=$(cat "$TMP/$1.status")
}

# stream_well_formed NAME: every block is "event: job", "data: {…}" and
# "id: n" with n counting 1, 2, … (": ping" comments allowed); at least one.
stream_well_formed() {
  awk 'BEGIN { RS = ""; FS = "\n"; n = 0; bad = 0 }
       $0 == ": ping" { next }
       { if (NF != 3 || $1 != "event: job" || $2 !~ /^data: \{/ || $3 != "id: " (n + 1)) bad = 1; n++ }
       END { exit (bad || n == 0) }' "$TMP/$1.body"
}
# events_jq NAME EXPR [jq args]: EXPR holds for the array of the stream's jobs.
events_jq() {
  local name=$1 expr=$2
  shift 2
  sed -n 's/^data: //p' "$TMP/$name.body" | jq -s -e "$@" "$expr" >/dev/null 2>&1
}
sse_header_is() { tr -d '\r' <"$TMP/$1.headers" | grep -qixF "$2: $3"; }
sse_has_request_id() { tr -d '\r' <"$TMP/$1.headers" | grep -qiE '^x-request-id: *[^[:space:]]+'; }

# --- a job followed from queued to succeeded -------------------------------
req POST /v1/jobs "$ERIN_TOKEN" "$SB"
check "submit a storyboard job" status_is 202
JOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
sse_start "$ERIN_TOKEN" "$JOB" 60 live
sse_wait live
check "the stream answers 200" [ "$SSE_STATUS" = 200 ]
check "the stream is text/event-stream, not cached, with a request id" \
  eval 'sse_header_is live Content-Type text/event-stream && sse_header_is live Cache-Control no-cache && sse_has_request_id live'
check "the stream has no Content-Length" eval '! grep -qi "^content-length:" "$TMP/live.headers"'
check "the server ends the stream by itself after the terminal event (curl exit $SSE_RC)" [ "$SSE_RC" = 0 ]
check "every event is 'event: job', one data line, and ids 1, 2, ..." stream_well_formed live
check "every event is this job" events_jq live 'length > 0 and all(.[]; .id == $id)' --arg id "$JOB"
check "the first event is the job before it finished, the last one succeeded" \
  events_jq live '(.[0].status | IN("queued", "running")) and .[-1].status == "succeeded"'
check "events are sent only on a change" \
  events_jq live '[range(1; length) as $i | .[$i] != .[$i - 1]] | all'
check "only the last event is terminal" \
  events_jq live '[.[:-1][] | .status | IN("succeeded", "failed", "canceled")] | any | not'
req GET "/v1/jobs/$JOB" "$ERIN_TOKEN"
check "the last event is the job as GET shows it" \
  events_jq live '.[-1] == $job' --argjson job "$(jq -c . <<<"$BODY" 2>/dev/null || echo null)"

# --- a terminal job: one event, then the end ---------------------------------
sse_start "$ERIN_TOKEN" "$JOB" 30 finished
sse_wait finished
check "a finished job's stream has exactly one event and ends (curl exit $SSE_RC)" \
  eval '[ "$SSE_RC" = 0 ] && stream_well_formed finished && events_jq finished "length == 1 and .[0].status == \"succeeded\""'

# --- cancel: the stream ends with canceled -------------------------------------
req POST /v1/jobs "$ERIN_TOKEN" "$SB"
CJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
sse_start "$ERIN_TOKEN" "$CJOB" 60 cancel
# the stream is open once its first event is out
for ((i = 0; i < 100; i++)); do
  grep -q '^id: 1$' "$TMP/cancel.body" && break
  sleep 0.05
done
req POST "/v1/jobs/$CJOB/cancel" "$ERIN_TOKEN" '{}'
check "cancel the second job" eval 'status_is 200 || status_is 202'
sse_wait cancel
check "the canceled job's stream ends with a canceled event (curl exit $SSE_RC)" \
  eval '[ "$SSE_RC" = 0 ] && stream_well_formed cancel && events_jq cancel ".[-1].status == \"canceled\""'

# --- what the caller may not see ------------------------------------------------
req GET "/v1/jobs/$JOB/events" "$FRANK_TOKEN"
check "frank cannot follow erin's job: 404" error_is 404 not_found
req GET "/v1/jobs/01a2194f-39aa-7f8d-a5b2-121d8227cfe8/events" "$ERIN_TOKEN"
check "an unknown job id is 404" error_is 404 not_found
req GET "/v1/jobs/not-a-uuid/events" "$ERIN_TOKEN"
check "a malformed job id is 404" error_is 404 not_found
req GET "/v1/jobs/$JOB/events" -
check "no token is 401" error_is 401 '*'
req POST "/v1/jobs/$JOB/events" "$ERIN_TOKEN" '{}'
check "POST is 405" error_is 405 '*'

# --- a client that leaves, and notices that are not job ids ---------------------
req POST /v1/jobs "$ERIN_TOKEN" "$SB"
LJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
sse_start "$ERIN_TOKEN" "$LJOB" 0.5 leave
sse_wait leave
check "a client can leave mid-stream (curl timed out: exit $SSE_RC)" eval '[ "$SSE_RC" = 28 ] || [ "$SSE_RC" = 0 ]'
if command -v redis-cli >/dev/null 2>&1 && [[ -n ${GENQ_REDIS_URL:-} ]]; then
  for junk in "" "not-a-job" "$(head -c 5000 /dev/zero | tr '\0' x)" "${LJOB^^}x"; do
    redis-cli -u "$GENQ_REDIS_URL" PUBLISH 'genq:{q}:events' "$junk" >/dev/null 2>&1
  done
fi
sse_start "$ERIN_TOKEN" "$LJOB" 60 after
sse_wait after
check "streams still work after that, and end with the job (curl exit $SSE_RC)" \
  eval '[ "$SSE_RC" = 0 ] && stream_well_formed after && events_jq after ".[-1].status | IN(\"succeeded\", \"failed\", \"canceled\")"'
req GET /healthz -
check "the API still answers" status_is 200

finish
