#!/usr/bin/env bash
# End to end: GET /v1/jobs/{id}/events, the server-sent event stream of a
# job — its head, one "job" event per change with ids counting from 1, the
# end of the stream after a terminal status (succeeded, canceled), 404 for
# what the caller may not see, and a client that leaves mid-stream.
#
# Needs what e2e_storyboard.sh needs; expects provider latency that keeps a
# storyboard job in flight for a moment (scripts/test sets
# PROVSIM_OPENAI_LATENCY_MS=1000), and the provider simulator's
# provsim:sleep hook for jobs that must stay in flight. Needs redis-cli and
# GENQ_REDIS_URL (to publish malformed change notices), and the API on this
# machine: whether it closed its end of a connection is read from the TCP
# table in /proc/net.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

. "$(dirname "$0")/helpers.bash"

RUN=$$-$RANDOM
ERIN=e2e-erin-$RUN FRANK=e2e-frank-$RUN
check "genqctl grants erin 20 credits" "$GENQCTL" credits grant "$ERIN" 20 --key "e2e:$ERIN"
ERIN_TOKEN=$("$GENQCTL" token --user "$ERIN" | tr -d '[:space:]')
FRANK_TOKEN=$("$GENQCTL" token --user "$FRANK" | tr -d '[:space:]')
SB='{"kind":"storyboard","input":{"prompt":"a teaser for a climbing gym","scenes":1}}'
# The simulated provider answers this one after 20 s: the job stays queued or
# running until it is canceled.
SLOW='{"kind":"storyboard","input":{"prompt":"provsim:sleep=20000 a job that stays","scenes":1}}'
API_PORT=$(sed -nE 's#^[a-z]+://[^/:]+:([0-9]+)(/.*)?$#\1#p' <<<"$API")

# sse_start TOKEN ID MAXTIME NAME: opens a stream in the background into
# $TMP/NAME.body and $TMP/NAME.headers; sse_wait NAME sets SSE_RC (curl's
# exit status: 0 when the server ended the stream, 28 at MAXTIME) and
# SSE_STATUS.
declare -A SSE_PID SSE_PATH
sse_start() {
  local token=$1 id=$2 max=$3 name=$4
  SSE_PATH[$name]=/v1/jobs/$id/events
  : >"$TMP/$name.body"
  curl -sS -N --max-time "$max" -H "Authorization: Bearer $token" -o "$TMP/$name.body" \
    -D "$TMP/$name.headers" -w '%{http_code}' "$API/v1/jobs/$id/events" \
    >"$TMP/$name.status" 2>"$TMP/$name.err" &
  SSE_PID[$name]=$!
}
SSE_RC="" SSE_STATUS=""
sse_wait() {
  SSE_RC=0
  { wait "${SSE_PID[$1]}"; } 2>/dev/null || SSE_RC=$? # no "Killed" notice on stderr
  SSE_STATUS=$(cat "$TMP/$1.status")
  # what arrived: its complete events are checked, a cut-off last one is not
  api_record GET "${SSE_PATH[$1]}" "$TMP/$1.headers" "$TMP/$1.body"
}

# sse_wait_event NAME N: true once event id N of stream NAME is out (10 s
# at most).
sse_wait_event() {
  local i
  for ((i = 0; i < 200; i++)); do
    grep -qx "id: $2" "$TMP/$1.body" && return 0
    sleep 0.05
  done
  return 1
}

# sse_local_port NAME: the local port of the connection stream NAME's curl
# holds (its socket's inode, looked up in /proc/net/tcp and tcp6).
sse_local_port() {
  local fd link hex
  for fd in "/proc/${SSE_PID[$1]}/fd/"*; do
    link=$(readlink "$fd" 2>/dev/null) || continue
    [[ $link =~ ^socket:\[([0-9]+)\]$ ]] || continue
    hex=$(awk -v ino="${BASH_REMATCH[1]}" 'FNR > 1 && $10 == ino { split($2, a, ":"); print a[2]; exit }' \
      /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    if [[ -n $hex ]]; then
      echo $((16#$hex))
      return 0
    fi
  done
  return 1
}

# api_conn_state PORT: the TCP state of the API's end of the connection from
# client port PORT, as /proc/net/tcp writes it (01 established, 08 close-wait:
# the client left and the API did not close); nothing once that end is gone.
api_conn_state() {
  local lp rp
  lp=$(printf '%04X' "$API_PORT") rp=$(printf '%04X' "$1")
  awk -v lp="$lp" -v rp="$rp" 'FNR > 1 { split($2, l, ":"); split($3, r, ":")
       if (l[2] == lp && r[2] == rp) { print $4; exit } }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# api_let_go PORT: true once, within 5 s, the API has closed its end of the
# connection from client port PORT (gone, or closing: neither 01 nor 08).
api_let_go() {
  local i st
  [[ -n $1 && -n $API_PORT ]] || return 1
  for ((i = 0; i < 100; i++)); do
    st=$(api_conn_state "$1")
    [[ $st != 01 && $st != 08 ]] && return 0
    sleep 0.05
  done
  echo "       the API's end of the connection from port $1 is still in state $st"
  return 1
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
check "the stream has no Content-Length" eval '[ -s "$TMP/live.headers" ] && ! grep -qi "^content-length:" "$TMP/live.headers"'
check "the server ends the stream by itself after the terminal event (curl exit $SSE_RC)" [ "$SSE_RC" = 0 ]
check "every event is 'event: job', one data line, and ids 1, 2, ..." stream_well_formed live
check "every event is this job" events_jq live 'length > 0 and all(.[]; .id == $id)' --arg id "$JOB"
check "the first event is the job before it finished, the last one succeeded" \
  events_jq live '(.[0].status | IN("queued", "running")) and .[-1].status == "succeeded"'
check "events are sent only on a change" \
  events_jq live 'length > 1 and ([range(1; length) as $i | .[$i] != .[$i - 1]] | all)'
check "only the last event is terminal" \
  events_jq live 'length > 0 and ([.[:-1][] | .status | IN("succeeded", "failed", "canceled")] | any | not)'
req GET "/v1/jobs/$JOB" "$ERIN_TOKEN"
check "the last event is the job as GET shows it" \
  events_jq live '.[-1] == $job' --argjson job "$(jq -c . <<<"$BODY" 2>/dev/null || echo null)"

# --- a terminal job: one event, then the end ---------------------------------
sse_start "$ERIN_TOKEN" "$JOB" 30 finished
sse_wait finished
check "a finished job's stream has exactly one event and ends (curl exit $SSE_RC)" \
  eval '[ "$SSE_RC" = 0 ] && stream_well_formed finished && events_jq finished "length == 1 and .[0].status == \"succeeded\""'

# --- cancel: the stream ends with canceled -------------------------------------
req POST /v1/jobs "$ERIN_TOKEN" "$SLOW"
check "submit a slow storyboard job" status_is 202
CJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
sse_start "$ERIN_TOKEN" "$CJOB" 60 cancel
check "its stream is open (the first event is out)" sse_wait_event cancel 1
req POST "/v1/jobs/$CJOB/cancel" "$ERIN_TOKEN" '{}'
check "cancel the slow job, still in flight" jqt '.status == "canceled"'
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

# --- a client that leaves --------------------------------------------------------
# The job stays in flight, so the server has no reason of its own to end the
# stream. When the client goes, the connection reaches EOF: the API notices,
# ends the stream and closes its end. An API that did not notice would hold
# its end in CLOSE_WAIT until its next write (a ping, 15 s of silence on).
req POST /v1/jobs "$ERIN_TOKEN" "$SLOW"
check "submit another slow storyboard job" status_is 202
LJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
sse_start "$ERIN_TOKEN" "$LJOB" 60 leave
check "its stream is open (the first event is out)" sse_wait_event leave 1
LPORT=$(sse_local_port leave)
check "the API holds that connection (client port ${LPORT:-unknown}, API port ${API_PORT:-unknown})" \
  eval '[ -n "$LPORT" ] && [ -n "$API_PORT" ] && [ "$(api_conn_state "$LPORT")" = 01 ]'
kill -KILL "${SSE_PID[leave]}" 2>/dev/null
sse_wait leave
check "the client left: curl was killed, the server had not ended the stream (exit $SSE_RC)" \
  [ "$SSE_RC" = 137 ]
check "the API notices within 5 s and closes its end of the connection" api_let_go "$LPORT"
req GET "/v1/jobs/$LJOB" "$ERIN_TOKEN"
check "the job was still in flight, so only the client's leaving ended that stream" \
  jqt '.status | IN("queued", "running")'

# --- notices that are not job ids -----------------------------------------------
# Published on the channel the API subscribes to, while a stream of that job
# is open. PUBLISH answers how many subscribers got each: the API's at least.
# Then the cancel's notice must still wake the stream: it ends before its
# first fallback re-read (5 s after it opened).
has_redis_cli() { command -v redis-cli >/dev/null 2>&1 && [[ -n ${GENQ_REDIS_URL:-} ]]; }
check "redis-cli and GENQ_REDIS_URL are there (scripts/test installs redis-server and its tools)" \
  has_redis_cli
publish_junk() {
  local junk n
  for junk in "" "not-a-job" "$(head -c 5000 /dev/zero | tr '\0' x)" "${LJOB^^}x"; do
    n=$(redis-cli -u "$GENQ_REDIS_URL" PUBLISH 'genq:{q}:events' "$junk" 2>&1) || return 1
    [[ $n =~ ^[0-9]+$ ]] && ((n >= 1)) || return 1
  done
}
now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  echo $((t / 1000))
}
AFTER_T0=$(now_ms)
sse_start "$ERIN_TOKEN" "$LJOB" 60 after
check "a new stream of that job opens" sse_wait_event after 1
check "malformed change notices reach the API's subscription" publish_junk
req POST "/v1/jobs/$LJOB/cancel" "$ERIN_TOKEN" '{}'
check "cancel that job" jqt '.status == "canceled"'
sse_wait after
AFTER_MS=$(($(now_ms) - AFTER_T0))
check "streams still work after that: the open one ends with the cancel (curl exit $SSE_RC)" \
  eval '[ "$SSE_RC" = 0 ] && stream_well_formed after && events_jq after ".[-1].status == \"canceled\""'
check "woken by the cancel's notice, not the 5 s re-read (ended ${AFTER_MS} ms after it opened)" \
  [ "$AFTER_MS" -lt 4500 ]
req GET /healthz -
check "the API still answers" status_is 200

finish
