#!/usr/bin/env bash
# End to end: the HTTP server's bounds, played against a genq-api of its own
# (mini_stack.bash: a new database, Redis db 14) with short clocks, as an
# attacker would (issue "a hostile world"). Each check looks at the answer
# (status, code, time to answer), at the API's memory, and at whether
# another user is still served meanwhile.
#
# - A large asset is streamed piece by piece: many clients that ask for it
#   and never read cost the API a piece each, not the asset each, and are
#   reset once nothing moved for GENQ_WRITE_TIMEOUT_MS; past 64 large
#   downloads at once the next is 503 with Retry-After.
# - A body's clock is progress: a trickle under GENQ_BODY_MIN_RATE is 408
#   soon after the GENQ_BODY_TIMEOUT_MS grace, a slow but steady upload
#   completes, and a chunk that announces more than the limit is 413 on its
#   size line.
# - At most GENQ_MAX_CONNECTIONS_PER_IP connections from one address.
# - At most GENQ_MAX_STREAMS_PER_USER event streams per user, counted in
#   Redis across two API processes; another user is not affected.
#
# Needs what mini_stack.bash needs (scripts/test sets it).
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" limits 14

export GENQ_WRITE_TIMEOUT_MS=2000 GENQ_BODY_TIMEOUT_MS=2000 GENQ_BODY_MIN_RATE=65536
export GENQ_MAX_CONNECTIONS_PER_IP=100 PROVSIM_LUMA_IMAGE_MS=100 GENQ_MAX_STREAMS_PER_USER=3
# Under AddressSanitizer freed memory waits in a quarantine (256 MB) before
# it is reused, which would show up as RSS; without it RSS is what is live.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0
mini_stack_start
API_PID=${SERVICES[1]}
start_worker worker
mini_stack_user 20
OTHER=e2e-limits-other-$RUN
check "genqctl grants another user 5 credits" "$GENQCTL" credits grant "$OTHER" 5 --key "e2e:$OTHER"
O_TOKEN=$("$GENQCTL" token --user "$OTHER" | tr -d '[:space:]')
req POST /v1/jobs "$O_TOKEN" '{"kind":"storyboard","input":{"prompt":"the other user","scenes":1}}'
O_JOB=$(jq -r '.id // empty' <<<"$BODY")
PORT=${API##*:}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$API_PID/status"; }
# served: the other user's poll answers 200 within a second.
served() {
  local t
  t=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 \
    -H "Authorization: Bearer $O_TOKEN" "$API/v1/jobs/$O_JOB") || return 1
  [[ ${t% *} == 200 ]] && awk -v s="${t#* }" 'BEGIN { exit !(s < 1.0) }'
}

# --- a large asset, and clients that never read it --------------------------
req POST /v1/jobs "$TOKEN" '{"kind":"image","input":{"prompt":"a large result"}}'
JOB=$(jq -r '.id // empty' <<<"$BODY")
check "an image job succeeds" poll_job "$TOKEN" "$JOB"
ASSET=$(jq -r '.output.assets[0].id // empty' <<<"$BODY")
KEY=$(psql_db -c "select storage_key from assets where id = '$ASSET'")
# Its bytes become 24 MiB (the simulator's images are tiny); the row says so.
BIG=$((24 << 20))
head -c "$BIG" /dev/urandom >"$STATE/storage/$KEY"
psql_db -c "update assets set bytes = $BIG where id = '$ASSET'"
WANT_SHA=$(sha256sum <"$STATE/storage/$KEY" | cut -d' ' -f1)
GOT=$(curl -sS --max-time 60 -H "Authorization: Bearer $TOKEN" -D "$TMP/asset.h" \
  "$API/v1/assets/$ASSET" | sha256sum | cut -d' ' -f1)
check "a 24 MiB asset downloads whole (sha256 matches)" [ "$GOT" = "$WANT_SHA" ]
check "... with its Content-Length" grep -qi "^content-length: $BIG" "$TMP/asset.h"

RSS0=$(rss_kb)
HOLD=()
for ((i = 0; i < 64; i++)); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'GET /v1/assets/%s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n' "$ASSET" \
    "$TOKEN" 1>&"$fd"
  HOLD+=("$fd")
done
sleep 1
RSS1=$(rss_kb)
check "64 clients that never read hold the API to +$(((RSS1 - RSS0) / 1024)) MB (under 48 MB; the assets are 1.5 GB)" \
  [ $((RSS1 - RSS0)) -lt $((48 * 1024)) ]
check "... while another user is served" served
STATUS=$(curl -sS -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' --max-time 10 \
  -H "Authorization: Bearer $TOKEN" "$API/v1/assets/$ASSET")
BODY=$(cat "$TMP/body")
check "a 65th large download at once is 503 unavailable" error_is 503 unavailable
check "... with Retry-After" grep -qi '^retry-after:' "$TMP/headers"
sleep 3 # past GENQ_WRITE_TIMEOUT_MS with nothing read
short=0
for fd in "${HOLD[@]}"; do
  n=$(timeout 20 cat <&"$fd" 2>/dev/null | wc -c)
  ((n < BIG)) && short=$((short + 1))
  exec {fd}<&-
done
check "the server reset all 64 once nothing moved for the write timeout ($short of 64 cut short)" \
  [ "$short" -eq 64 ]
check "... and logged it" grep -q '"http: a client stopped reading; connection reset"' "$STATE/logs/api.log"
GOT=$(curl -sS --max-time 60 -H "Authorization: Bearer $TOKEN" "$API/v1/assets/$ASSET" |
  sha256sum | cut -d' ' -f1)
check "afterwards a download works again" [ "$GOT" = "$WANT_SHA" ]

# --- bodies: a trickle, a slow honest upload, a chunk too large --------------
base64 -d >"$TMP/a.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAACXBIWXMAAAABAAAAAQBPJcTWAAAAEElEQVR4nGP4y8AARAwQCgAfrgP19hgqWQAAAABJRU5ErkJggg=='
exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/uploads HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Type: image/png\r\nContent-Length: 1000000\r\n\r\n' \
  "$TOKEN" 1>&"$fd"
(for ((i = 0; i < 100; i++)); do printf 'x' || exit 0; sleep 0.2; done) 1>&"$fd" 2>/dev/null &
TRICKLE=$!
started=$SECONDS
answer=$(timeout 30 head -c 12 <&"$fd")
took=$((SECONDS - started))
kill "$TRICKLE" 2>/dev/null
wait "$TRICKLE" 2>/dev/null
exec {fd}<&-
check "an upload trickled at 5 bytes/s is 408 ('$answer' after ${took}s, under 6 s)" \
  eval '[[ $answer == "HTTP/1.1 408" ]] && ((took < 6))'

{
  cat "$TMP/a.png"
  head -c $((1 << 20)) /dev/zero
} >"$TMP/slow.png"
STATUS=$(curl -sS -o "$TMP/body" -w '%{http_code} %{time_total}' --max-time 60 --limit-rate 200k \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: image/png' --data-binary @"$TMP/slow.png" \
  "$API/v1/uploads")
took=${STATUS#* } STATUS=${STATUS% *} BODY=$(cat "$TMP/body")
check "a 1 MiB upload at 200 KiB/s (${took}s, more than twice the 2 s body timeout) is 201" \
  status_is 201

exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/uploads HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\n' \
  "$TOKEN" 1>&"$fd"
started=$SECONDS
answer=$(timeout 10 head -c 12 <&"$fd")
took=$((SECONDS - started))
exec {fd}<&-
check "a chunk announcing 1 GiB is 413 on its size line ('$answer' after ${took}s)" \
  eval '[[ $answer == "HTTP/1.1 413" ]] && ((took < 2))'

# --- connections per address ---------------------------------------------------
# the server's established connections (its side: local port $PORT)
api_conns() { awk -v p="$(printf ':%04X' "$PORT")" '$2 ~ p"$" && $4 == "01"' /proc/net/tcp | wc -l; }
# the earlier checks' connections first end (each counts against the cap)
for ((i = 0; i < 100; i++)); do
  (($(api_conns) == 0)) && break
  sleep 0.1
done
before=$(api_conns)
HOLD=()
for ((i = 0; i < 110; i++)); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" && HOLD+=("$fd")
done
sleep 1
# a connection the server closed reads EOF at once; an open one times out.
# All at once: one by one, the last would be read after the server's
# header timeout closed it.
PROBES=()
for fd in "${HOLD[@]}"; do
  (
    rc=0
    timeout 1 head -c 1 <&"$fd" >/dev/null 2>&1 || rc=$?
    echo "$rc" >"$TMP/conn.$fd"
  ) &
  PROBES+=($!)
done
wait "${PROBES[@]}"
open=$(cat "$TMP"/conn.* | grep -c '^124$')
check "of 110 connections from one address the server kept $open (GENQ_MAX_CONNECTIONS_PER_IP 100; $before open before)" \
  [ "$open" -eq 100 ]
check "... and logged the refusal" grep -q '"http: per-address connection limit reached' "$STATE/logs/api.log"
for fd in "${HOLD[@]}"; do exec {fd}<&-; done
sleep 0.5
check "once they closed, the address is served again" served

# --- event streams per user, across two API processes --------------------------
API2_PORT=""
genq_free_port API2_PORT
API2=http://127.0.0.1:$API2_PORT
genq_start api2 "$STATE/logs/api2.log" env GENQ_API_LISTEN="127.0.0.1:$API2_PORT" "$BIN/genq-api"
SERVICES+=("$GENQ_LAST_PID")
genq_wait_for "$GENQ_LAST_PID" 30 curl -fsS -o /dev/null "$API2/healthz"
req POST /v1/jobs "$TOKEN" '{"kind":"video","input":{"prompt":"a slow shot provsim:slow"}}'
VIDEO=$(jq -r '.id // empty' <<<"$BODY")
STREAMS=()
# open_stream BASE N: a stream of the video in the background, once its first event is in.
open_stream() {
  curl -sS -N --max-time 60 -H "Authorization: Bearer $TOKEN" -o "$TMP/stream.$2" \
    "$1/v1/jobs/$VIDEO/events" 2>/dev/null &
  STREAMS+=($!)
  genq_wait_for "$!" 10 grep -q '^event: job' "$TMP/stream.$2"
}
# stream_status BASE: the status of one more stream, given up after 2 s.
stream_status() {
  STATUS=$(curl -sS -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' --max-time 2 \
    -H "Authorization: Bearer $1" "$2/v1/jobs/$3/events" 2>/dev/null)
  BODY=$(head -c 2000 "$TMP/body")
}
check "a first stream on one API process" open_stream "$API" 1
check "a second on the same one" open_stream "$API" 2
check "a third on the other process" open_stream "$API2" 3
stream_status "$TOKEN" "$API2" "$VIDEO"
check "a fourth, on either process, is 429 too_many_streams (GENQ_MAX_STREAMS_PER_USER 3)" \
  error_is 429 too_many_streams
check "... with Retry-After" grep -qi '^retry-after:' "$TMP/headers"
stream_status "$TOKEN" "$API" "$VIDEO"
check "... on the first process too" error_is 429 too_many_streams
stream_status "$O_TOKEN" "$API" "$O_JOB"
check "another user's stream is still served" status_is 200
kill "${STREAMS[0]}" 2>/dev/null
wait "${STREAMS[0]}" 2>/dev/null
sleep 0.5
check "once one stream closed, a new one opens" open_stream "$API2" 4
check "... and the user is at the cap again" eval 'stream_status "$TOKEN" "$API" "$VIDEO"; error_is 429 too_many_streams'
for p in "${STREAMS[@]:1}"; do
  kill "$p" 2>/dev/null
  wait "$p" 2>/dev/null
done
req POST "/v1/jobs/$VIDEO/cancel" "$TOKEN" # nothing left running for the worker's stop

mini_stack_check_logs
finish
