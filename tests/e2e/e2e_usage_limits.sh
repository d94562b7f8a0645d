#!/usr/bin/env bash
# End to end: the plans' usage limits (docs/limits.md) hold fleet-wide, to
# the unit, across TWO genq-api processes on one database and one Redis (a
# mini stack of its own: mini_stack.bash, Redis db 11). Requests go to both
# processes at once; no worker runs, so submitted jobs stay queued and the
# unfinished count is what was accepted.
#
# - max_unfinished_jobs 5: of 12 concurrent submissions exactly 5 are 202,
#   7 are 429 too_many_unfinished_jobs with Retry-After, and nothing of them
#   was written (jobs, holds and ledger rows are the 5's). `genqctl limits
#   set` raising it to 7 lets exactly 2 more in, without a restart.
# - Submission rate (burst 4, 30 a minute): of 10 concurrent exactly 4 are
#   accepted, the rest 429 submit_rate_limited with Retry-After 2 (60/30 s
#   until one token); after 2 s exactly one more goes.
# - Uploads per UTC day: count 3 → of 6 concurrent uploads 3 are 201 and 3
#   are 429 upload_limit_reached with Retry-After the seconds until UTC
#   midnight; bytes (room for 2 more) → of 4 concurrent 2 are 201. Refused
#   uploads leave no row and no stored file.
# - Per address: refused unauthenticated requests (bad tokens, forged
#   callback tokens and signed URLs) to either process share one bucket
#   (GENQ_IP_REFUSALS_BURST 5, 60 a minute): the 6th is 429
#   too_many_requests with Retry-After 1, valid requests still pass, and a
#   second later one refusal is a 401 again.
#
# Needs what mini_stack.bash needs (scripts/test sets it).
# shellcheck disable=SC2016,SC2034 # $names in single quotes: jq's, or eval's
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" usage_limits 11

export GENQ_IP_REFUSALS_PER_MINUTE=60 GENQ_IP_REFUSALS_BURST=5
mini_stack_start
API2_PORT=""
genq_free_port API2_PORT
API2=http://127.0.0.1:$API2_PORT
genq_start api2 "$STATE/logs/api2.log" env GENQ_API_LISTEN="127.0.0.1:$API2_PORT" "$BIN/genq-api"
SERVICES+=("$GENQ_LAST_PID")
genq_wait_for "$GENQ_LAST_PID" 30 curl -fsS -o /dev/null "$API2/healthz"

token() { "$GENQCTL" token --user "$1" | tr -d '[:space:]'; }
# new_user NAME PLAN: a user with 100 credits on PLAN; sets U and T.
new_user() {
  U=e2e-ul-$1-$RUN
  "$GENQCTL" credits grant "$U" 100 --key "e2e:$U" >/dev/null &&
    "$GENQCTL" limits plan "$U" "$2" >/dev/null
  T=$(token "$U")
}
# fire N NAME CURL-ARGS...: N requests at once, alternately to each API
# process; answer i's status in $TMP/NAME.i.code, headers and body beside.
# Every fire is a POST (CURL-ARGS say -X POST); each answer is recorded.
fire() {
  local n=$1 name=$2 i base pids=()
  shift 2
  rm -f "$TMP/$name".*
  for ((i = 0; i < n; i++)); do
    base=$API
    ((i % 2)) && base=$API2
    curl -sS --max-time 20 -o "$TMP/$name.$i.body" -D "$TMP/$name.$i.headers" \
      -w '%{http_code}' "$@" "$base${FIRE_PATH}" >"$TMP/$name.$i.code" 2>/dev/null &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
  for ((i = 0; i < n; i++)); do
    [[ $(cat "$TMP/$name.$i.code") =~ ^[1-5][0-9]{2}$ ]] &&
      api_record POST "$FIRE_PATH" "$TMP/$name.$i.headers" "$TMP/$name.$i.body"
  done
}
# count NAME STATUS: how many answers of NAME had STATUS.
count() {
  local f n=0
  for f in "$TMP/$1".*.code; do [[ $(cat "$f") == "$2" ]] && n=$((n + 1)); done
  echo "$n"
}
# all_429 NAME CODE RETRY: every 429 of NAME is the error shape with CODE and
# Retry-After RETRY (a number, or lo-hi).
all_429() {
  local f base lo=${3%-*} hi=${3#*-} ra n=0
  for f in "$TMP/$1".*.code; do
    [[ $(cat "$f") == 429 ]] || continue
    base=${f%.code}
    jq -e --arg c "$2" '.error.code == $c and (.error.message | type == "string")
      and (.error.request_id | length > 0)' "$base.body" >/dev/null || return 1
    ra=$(tr -d '\r' <"$base.headers" | awk -F': ' 'tolower($1) == "retry-after" {print $2}')
    if ! [[ $ra =~ ^[0-9]+$ ]] || ((ra < lo || ra > hi)); then
      echo "       Retry-After '$ra' not in $lo..$hi"
      return 1
    fi
    n=$((n + 1))
  done
  ((n > 0))
}
sql() { psql_db -c "$1"; }
SUBMIT=(-X POST -H 'Content-Type: application/json'
  --data-binary '{"kind":"storyboard","input":{"prompt":"a limit","scenes":1}}')

# --- unfinished jobs -----------------------------------------------------------
check "genqctl limits set makes a plan of 5 unfinished jobs and no rate limit" \
  eval '"$GENQCTL" limits set e2e_five max_unfinished_jobs 5 >/dev/null &&
        "$GENQCTL" limits set e2e_five submit_per_minute 0 >/dev/null'
new_user five e2e_five
FIVE=$U FIVE_T=$T
FIRE_PATH=/v1/jobs fire 12 unf -H "Authorization: Bearer $FIVE_T" "${SUBMIT[@]}"
check "of 12 concurrent submissions on two API processes exactly 5 are 202 ($(count unf 202))" \
  [ "$(count unf 202)" = 5 ]
check "... and 7 are 429 ($(count unf 429))" [ "$(count unf 429)" = 7 ]
check "... each too_many_unfinished_jobs with Retry-After 5" all_429 unf too_many_unfinished_jobs 5
check "nothing of the refused was written: 5 jobs" [ "$(sql "select count(*) from jobs where user_id = '$FIVE'")" = 5 ]
check "... 5 hold rows" [ "$(sql "select count(*) from ledger where user_id = '$FIVE' and movement = 'hold'")" = 5 ]
check "... 5 credits held of 100" credits_are "$FIVE_T" 100 5
"$GENQCTL" limits show --user "$FIVE" --json >"$TMP/show.json"
check "genqctl limits show --user: the plan and 5 unfinished jobs" \
  jq -e '.plan == "e2e_five" and .limits.max_unfinished_jobs == 5 and .usage.unfinished_jobs == 5' "$TMP/show.json"
check "genqctl limits set raises it to 7 (no restart)" eval '"$GENQCTL" limits set e2e_five max_unfinished_jobs 7 >/dev/null'
FIRE_PATH=/v1/jobs fire 6 unf2 -H "Authorization: Bearer $FIVE_T" "${SUBMIT[@]}"
check "then of 6 more exactly 2 are accepted ($(count unf2 202)), 4 are 429 ($(count unf2 429))" \
  eval '[ "$(count unf2 202)" = 2 ] && [ "$(count unf2 429)" = 4 ]'
check "... 7 jobs in all" [ "$(sql "select count(*) from jobs where user_id = '$FIVE'")" = 7 ]
check "genqctl limits set names a bad field (exit 2)" \
  eval '"$GENQCTL" limits set e2e_five max_jobs 3 2>"$TMP/err"; [ $? = 2 ] && grep -q "field: .max_jobs." "$TMP/err"'
check "genqctl limits set refuses a negative value, naming it" \
  eval '"$GENQCTL" limits set e2e_five submit_burst -1 2>"$TMP/err"; [ $? = 2 ] && grep -q "value" "$TMP/err"'

# --- submission rate -------------------------------------------------------------
check "a plan of burst 4 and 30 submissions a minute" \
  eval '"$GENQCTL" limits set e2e_rate max_unfinished_jobs 0 >/dev/null &&
        "$GENQCTL" limits set e2e_rate submit_burst 4 >/dev/null &&
        "$GENQCTL" limits set e2e_rate submit_per_minute 30 >/dev/null'
new_user rate e2e_rate
RATE=$U RATE_T=$T
FIRE_PATH=/v1/jobs fire 10 rate -H "Authorization: Bearer $RATE_T" "${SUBMIT[@]}"
check "of 10 concurrent submissions exactly 4 (the burst) are 202 ($(count rate 202))" \
  [ "$(count rate 202)" = 4 ]
check "... 6 are 429 ($(count rate 429))" [ "$(count rate 429)" = 6 ]
check "... submit_rate_limited with Retry-After 2 (one token of 30 a minute)" \
  all_429 rate submit_rate_limited 2
check "nothing of the refused was written: 4 jobs, 4 credits held" \
  eval '[ "$(sql "select count(*) from jobs where user_id = '\''$RATE'\''")" = 4 ] && credits_are "$RATE_T" 100 4'
# The bucket as if its last token had been taken 2.1 s ago (not a sleep:
# the checks above take a loaded machine seconds, which would refill more)
sql "update submit_buckets set tokens = 0, at = clock_timestamp() - interval '2.1 seconds'
     where user_id = '$RATE'" >/dev/null
FIRE_PATH=/v1/jobs fire 3 rate2 -H "Authorization: Bearer $RATE_T" "${SUBMIT[@]}"
check "2.1 s after the last token one has refilled: of 3, exactly 1 is accepted ($(count rate2 202))" \
  eval '[ "$(count rate2 202)" = 1 ] && [ "$(count rate2 429)" = 2 ]'

# --- uploads per day --------------------------------------------------------------
base64 -d >"$TMP/a.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAACXBIWXMAAAABAAAAAQBPJcTWAAAAEElEQVR4nGP4y8AARAwQCgAfrgP19hgqWQAAAABJRU5ErkJggg=='
SIZE=$(stat -c %s "$TMP/a.png")
check "a plan of 3 uploads a day" eval '"$GENQCTL" limits set e2e_up uploads_per_day 3 >/dev/null'
new_user up e2e_up
UP=$U UP_T=$T
UPLOAD=(-X POST -H "Authorization: Bearer $UP_T" -H 'Content-Type: image/png' --data-binary "@$TMP/a.png")
stored() { find "$STATE/storage" -path '*uploads*' -type f | wc -l; }
S0=$(stored)
FIRE_PATH=/v1/uploads fire 6 up "${UPLOAD[@]}"
MIDNIGHT=$(($(date -u -d 'tomorrow 00:00' +%s) - $(date -u +%s)))
check "of 6 concurrent uploads exactly 3 are 201 ($(count up 201))" [ "$(count up 201)" = 3 ]
check "... 3 are 429 ($(count up 429))" [ "$(count up 429)" = 3 ]
check "... upload_limit_reached, Retry-After until UTC midnight (~$MIDNIGHT s)" \
  all_429 up upload_limit_reached "$((MIDNIGHT - 5))-$((MIDNIGHT + 5))"
check "3 upload rows" [ "$(sql "select count(*) from uploads where user_id = '$UP'")" = 3 ]
check "3 stored files: the refused left none ($(($(stored) - S0)))" [ "$(($(stored) - S0))" = 3 ]
check "room for 2 more by bytes: uploads unlimited, $((5 * SIZE)) bytes a day" \
  eval '"$GENQCTL" limits set e2e_up uploads_per_day 0 >/dev/null &&
        "$GENQCTL" limits set e2e_up upload_bytes_per_day $((5 * SIZE)) >/dev/null'
FIRE_PATH=/v1/uploads fire 4 up2 "${UPLOAD[@]}"
check "of 4 concurrent uploads exactly 2 are 201 ($(count up2 201)), 2 are 429" \
  eval '[ "$(count up2 201)" = 2 ] && [ "$(count up2 429)" = 2 ]'
check "... 5 rows, 5 stored files, $((5 * SIZE)) bytes counted today" \
  eval '[ "$(sql "select count(*) from uploads where user_id = '\''$UP'\''")" = 5 ] &&
        [ "$(($(stored) - S0))" = 5 ] &&
        [ "$(sql "select bytes from upload_days where user_id = '\''$UP'\''")" = $((5 * SIZE)) ]'

# --- per address: refused unauthenticated requests ----------------------------------
BAD=(-H 'Authorization: Bearer not-a-token')
codes=""
for ((i = 0; i < 7; i++)); do
  base=$API
  ((i % 2)) && base=$API2
  c=$(curl -sS -o "$TMP/ip.body" -D "$TMP/ip.headers" -w '%{http_code}' --max-time 10 "${BAD[@]}" "$base/v1/credits") &&
    api_record GET /v1/credits "$TMP/ip.headers" "$TMP/ip.body"
  codes+="$c "
done
check "bad tokens to both processes: 5 are 401, then 429 ($codes)" \
  [ "$codes" = "401 401 401 401 401 429 429 " ]
check "... too_many_requests with Retry-After 1 (60 a minute)" \
  eval 'jq -e ".error.code == \"too_many_requests\"" "$TMP/ip.body" >/dev/null &&
        tr -d "\r" <"$TMP/ip.headers" | grep -qix "retry-after: 1"'
c=$(curl -sS -o "$TMP/ip.body" -D "$TMP/ip.headers" -w '%{http_code}' -X POST "$API2/v1/callbacks/luma/forged-token") &&
  api_record POST /v1/callbacks/luma/forged-token "$TMP/ip.headers" "$TMP/ip.body"
check "a forged callback token from the address is 429 too ($c)" [ "$c" = 429 ]
c=$(curl -sS -o "$TMP/ip.body" -D "$TMP/ip.headers" -w '%{http_code}' \
  "$API/v1/uploads/00000000-0000-4000-8000-000000000000/content?expires=1&sig=00") &&
  api_record GET "/v1/uploads/00000000-0000-4000-8000-000000000000/content?expires=1&sig=00" "$TMP/ip.headers" "$TMP/ip.body"
check "a forged signed URL from the address is 429 too ($c)" [ "$c" = 429 ]
req GET /v1/credits "$FIVE_T"
check "a valid token from the same address is still served" status_is 200
sleep 1.1
c=$(curl -sS -o /dev/null -w '%{http_code}' "${BAD[@]}" "$API2/v1/credits")
c2=$(curl -sS -o /dev/null -w '%{http_code}' "${BAD[@]}" "$API/v1/credits")
check "a second later one refusal is a 401 again, the next 429 ($c $c2)" \
  eval '[ "$c" = 401 ] && [ "$c2" = 429 ]'

check "the books are clean (genqctl audit)" eval '"$GENQCTL" audit >/dev/null'
mini_stack_check_logs
finish
