#!/usr/bin/env bash
# End to end: genq-provsim's fault injection (PROVSIM_[<P>_]<F>, PROVSIM_SEED;
# see provsim/faults.c) over real HTTP, each fault at rate 1 on a simulator of
# its own: 5xx and 429 in each provider's error shape, latency, hung requests,
# connection resets, truncated and malformed bodies, moderation and internal
# failures of generations, lost_creates and the faults counters, /_sim and
# downloads untouched, replay by seed, and bad values refused at start.
#
# Starts its own simulators on free loopback ports ($PROVSIM_BIN, else
# $GENQ_BUILD_DIR/genq-provsim); needs no Redis, PostgreSQL or genq-api.
# Prints one line per check and, last, "e2e-summary: passed=N failed=M";
# exits non-zero on any failure.
# shellcheck disable=SC2016,SC2034 # single quotes hold jq variables and eval'd checks
set -uo pipefail

# This script talks only to its own simulators; helpers.bash insists on the
# stack's API variables, which a run by hand need not have.
: "${GENQ_API_URL:=http://127.0.0.1:9}" "${GENQCTL:=true}"
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/helpers.bash
. "$HERE/helpers.bash"
# shellcheck source=scripts/lib.sh
. "$HERE/../../scripts/lib.sh"
cleanup_tmp() { rm -rf "$TMP"; }
genq_trap_cleanup cleanup_tmp

BIN=${PROVSIM_BIN:-${GENQ_BUILD_DIR:+$GENQ_BUILD_DIR/genq-provsim}}
[[ -x $BIN ]] || genq_die "set PROVSIM_BIN or GENQ_BUILD_DIR to find genq-provsim (got '${BIN}')"
# The shared stack's simulator settings (scripts/test exports them) must not
# reach these simulators: each gets exactly the settings it names.
unset "${!PROVSIM_@}"

LUMA_AUTH="Authorization: Bearer luma-e2e-key"
HEDRA_AUTH="Authorization: Key hedra-e2e:secret"
OA_AUTH="Authorization: Bearer sk-e2e"
RUN=$$-$RANDOM
SANITIZER='ERROR: AddressSanitizer|runtime error:|LeakSanitizer'

# start_sim NAME [VAR=value...]: a simulator with exactly those settings (and
# short generations); sets SIM, LUMA, HEDRA, OPENAI, SIM_PID, SIMLOG.
start_sim() {
  local name=$1 port=""
  shift
  genq_free_port port
  SIMLOG=$TMP/provsim-$name.log
  genq_start "provsim-$name" "$SIMLOG" env GENQ_PROVSIM_LISTEN="127.0.0.1:$port" GENQ_LOG_LEVEL=info \
    PROVSIM_LUMA_VIDEO_MS=600 PROVSIM_LUMA_IMAGE_MS=400 PROVSIM_HEDRA_MS=600 "$@" "$BIN"
  SIM_PID=$GENQ_LAST_PID
  genq_wait_for "$SIM_PID" 30 curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz"
  SIM=http://127.0.0.1:$port
  LUMA=$SIM/luma/dream-machine/v1
  HEDRA=$SIM/hedra/v3
  OPENAI=$SIM/openai/v1
}
# stop_sim NAME: stops the current simulator; checks a clean exit.
stop_sim() {
  genq_stop_pid "$SIM_PID"
  check "$1: genq-provsim exits 0 on SIGTERM" [ "${GENQ_PID_RC[$SIM_PID]}" = 0 ]
  if grep -qE "$SANITIZER" "$SIMLOG"; then
    check "$1: no sanitizer report in the simulator log" false
    grep -E -A20 "$SANITIZER" "$SIMLOG" | head -n 40
  fi
}

# hit METHOD URL [curl args...]: one request. Sets CURL_RC (curl's exit
# status: 0, or 18 partial body, 28 timeout, 52 empty reply, 56 reset),
# STATUS, BODY and TIME (seconds); the headers are in $TMP/headers. With
# HIT_OUT set, the body goes to that file instead (BODY stays empty).
CURL_RC=0 TIME=0
hit() {
  local method=$1 url=$2 out="" file=${HIT_OUT:-$TMP/body}
  shift 2
  : >"$TMP/body"
  : >"$TMP/headers"
  CURL_RC=0
  out=$(curl -sS --max-time "${MAXT:-10}" -X "$method" -o "$file" -D "$TMP/headers" \
    -w '%{http_code} %{time_total}' "$@" "$url" 2>"$TMP/curl.err") || CURL_RC=$?
  STATUS=${out%% *}
  TIME=${out#* }
  BODY=$(cat "$TMP/body")
}
json() { printf '%s' "$1" | jq -c .; }
luma_create() { # video|image PROMPT
  local model=ray-2
  [[ $1 == image ]] && model=photon-1
  hit POST "$LUMA/generations/$1" -H "$LUMA_AUTH" -H 'Content-Type: application/json' \
    --data-binary "$(jq -nc --arg m "$model" --arg p "$2" '{model: $m, prompt: $p}')"
}
luma_get() { hit GET "$LUMA$1" -H "$LUMA_AUTH"; }
hedra_create() { # PROMPT [IDEMPOTENCY_KEY]
  hit POST "$HEDRA/models/hedra-character-3" -H "$HEDRA_AUTH" -H 'Content-Type: application/json' \
    --data-binary "$(jq -nc --arg p "$1" --arg k "${2:-}" '{input: {prompt: $p, aspect_ratio: "16:9",
      resolution: "540p", start_image: {source: "url", url: "http://127.0.0.1:9/face.png"},
      audio: {source: "url", url: "http://127.0.0.1:9/voice.wav"}}}
      + (if $k == "" then {} else {idempotency_key: $k} end)')"
}
hedra_get() { hit GET "$HEDRA$1" -H "$HEDRA_AUTH"; }
chat() { # PROMPT
  hit POST "$OPENAI/chat/completions" -H "$OA_AUTH" -H 'Content-Type: application/json' \
    --data-binary "$(jq -nc --arg p "$1" '{model: "gpt-4o-mini", messages: [{role: "user", content: $p}]}')"
}
stats() { hit GET "$SIM/_sim/stats"; }
sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

curl_rc_is() { [[ $CURL_RC == "$1" ]]; }
is_5xx() { [[ $STATUS == 500 || $STATUS == 502 || $STATUS == 503 ]]; }
header_is_ci() { tr -d '\r' <"$TMP/headers" | grep -qiE "^$1: $2\$"; }
at_least() { awk -v t="$TIME" -v m="$1" 'BEGIN { exit !(t >= m) }'; }
not_json() { [[ -n $BODY ]] && ! jq . >/dev/null 2>&1 <<<"$BODY"; }
# The declared Content-Length is more than what arrived.
cut_short() {
  local len
  len=$(tr -d '\r' <"$TMP/headers" | awk -F': ' 'tolower($1) == "content-length" {print $2}')
  [[ -n $len ]] && ((len > $(wc -c <"$TMP/body")))
}
# poll URL-PATH FIELD (luma|hedra): GET every 0.1 s, up to 30 s, until FIELD
# is final (completed/failed, COMPLETED/FAILED).
poll() {
  local i s
  for ((i = 0; i < 300; i++)); do
    if [[ $1 == luma ]]; then luma_get "$2"; else hedra_get "$2"; fi
    s=$(jq -r "$3 // empty" <<<"$BODY" 2>/dev/null)
    [[ $s == completed || $s == failed || $s == COMPLETED || $s == FAILED ]] && return 0
    sleep 0.1
  done
  return 1
}
# download FILE-URL: 200, the whole Content-Length, an MP4.
download_ok() {
  HIT_OUT=$TMP/dl hit GET "$1"
  local len
  len=$(tr -d '\r' <"$TMP/headers" | awk -F': ' 'tolower($1) == "content-length" {print $2}')
  [[ $STATUS == 200 && $CURL_RC == 0 && $len == "$(wc -c <"$TMP/dl")" ]] &&
    [[ $(head -c 12 "$TMP/dl" | tail -c 8) == ftypisom ]]
}
# sim_untouched: /_sim/stats and /healthz answer normally.
sim_untouched() {
  hit GET "$SIM/healthz"
  [[ $STATUS == 200 && $CURL_RC == 0 ]] || return 1
  stats
  [[ $STATUS == 200 && $CURL_RC == 0 ]] && jqt '.luma.creates | type == "number"'
}

# --- bad values refuse to start -----------------------------------------------
# refused NAME VAR=value...: genq-provsim exits 1 at once, naming NAME.
refused() {
  local name=$1 port="" rc=0
  shift
  genq_free_port port
  timeout 10 env GENQ_PROVSIM_LISTEN="127.0.0.1:$port" "$@" "$BIN" >"$TMP/refused.out" 2>&1 || rc=$?
  if [[ $rc != 1 ]] || ! grep -q "$name" "$TMP/refused.out"; then
    echo "       exit $rc: $(head -c 300 "$TMP/refused.out")"
    return 1
  fi
}
check "PROVSIM_LUMA_ERROR_RATE=2 refuses to start, naming it" \
  refused PROVSIM_LUMA_ERROR_RATE PROVSIM_LUMA_ERROR_RATE=2
check "PROVSIM_LUMA_ERROR_RATE=abc refuses to start, naming it" \
  refused PROVSIM_LUMA_ERROR_RATE PROVSIM_LUMA_ERROR_RATE=abc
check "PROVSIM_HANG_RATE=-0.1 refuses to start, naming it" refused PROVSIM_HANG_RATE PROVSIM_HANG_RATE=-0.1
check "PROVSIM_HEDRA_LATENCY_MS=1.5 refuses to start, naming it" \
  refused PROVSIM_HEDRA_LATENCY_MS PROVSIM_HEDRA_LATENCY_MS=1.5
check "PROVSIM_RETRY_AFTER_S=soon refuses to start, naming it" \
  refused PROVSIM_RETRY_AFTER_S PROVSIM_RETRY_AFTER_S=soon
check "PROVSIM_SEED=x1 refuses to start, naming it" refused PROVSIM_SEED PROVSIM_SEED=x1
check "request fault rates adding up past 1 refuse to start, naming both" \
  eval 'refused PROVSIM_ERROR_RATE PROVSIM_ERROR_RATE=0.6 PROVSIM_OPENAI_HANG_RATE=0.5 &&
        grep -q PROVSIM_OPENAI_HANG_RATE "$TMP/refused.out"'
check "MODERATION_RATE + FAIL_RATE past 1 refuse to start" \
  refused PROVSIM_HEDRA_FAIL_RATE PROVSIM_MODERATION_RATE=0.5 PROVSIM_HEDRA_FAIL_RATE=0.7

# --- ERROR_RATE=1: 5xx in each provider's shape, nothing created -------------
start_sim error PROVSIM_ERROR_RATE=1 PROVSIM_SEED=7
luma_create video "an error $RUN"
check "error: luma create is 500/502/503 with {detail}" \
  eval 'is_5xx && jqt "(.detail | type == \"string\" and length > 0) and (keys == [\"detail\"])"'
luma_get /ping
check "error: every luma endpoint draws (ping is 5xx too)" is_5xx
hedra_create "an error $RUN" "e2e-$RUN:error"
check "error: hedra create is 5xx with {error: {code, message, retryable: true, retry_after}}" \
  eval 'is_5xx && jqt "(.error.code | IN(\"INTERNAL\", \"UNAVAILABLE\")) and (.error.message | type == \"string\")
        and .error.retryable == true and (.error | has(\"retry_after\"))"'
chat "an error $RUN"
check "error: openai completion is 5xx with {error: {message, type, param, code}}" \
  eval 'is_5xx && jqt "(.error | keys) == [\"code\", \"message\", \"param\", \"type\"] and (.error.message | type == \"string\")"'
check "error: OpenAI's default latency (200 ms) comes before an injected error too" at_least 0.2
statuses=""
for ((i = 0; i < 12; i++)); do
  luma_get /credits
  statuses+="$STATUS "
done
check "error: 12 more luma answers are all 500, 502 or 503 ($statuses)" \
  eval '[[ $statuses =~ ^((500|502|503)\ ){12}$ ]]'
check "error: /_sim/stats and /healthz are never faulted" sim_untouched
check "error: nothing created or counted (no creates, no completions, no lost_creates)" jqt \
  '.luma.creates == 0 and .luma.creates_by_prompt == {} and .luma.lost_creates == {}
   and .hedra.creates == 0 and .hedra.jobs_started == 0 and .hedra.lost_creates == {}
   and .openai.chat_completions == 0 and .openai.lost_creates == {}'
check "error: faults counters {error: 14} luma, 1 hedra, 1 openai" jqt \
  '.luma.faults == {"error": 14} and .hedra.faults == {"error": 1} and .openai.faults == {"error": 1}'
stop_sim error

# --- RATE_LIMIT_RATE=1: 429 with Retry-After -----------------------------------
start_sim ratelimit PROVSIM_RATE_LIMIT_RATE=1 PROVSIM_RETRY_AFTER_S=2 PROVSIM_HEDRA_RETRY_AFTER_S=5 \
  PROVSIM_OPENAI_LATENCY_MS=0
luma_create video "a rate limit $RUN"
check "rate_limit: luma create is 429 with Retry-After: 2 and {detail}" \
  eval 'status_is 429 && header_is_ci Retry-After 2 && jqt ".detail | type == \"string\""'
chat "a rate limit $RUN"
check "rate_limit: openai is 429 with retry-after: 2 and retry-after-ms: 2000" \
  eval 'status_is 429 && header_is_ci retry-after 2 && header_is_ci retry-after-ms 2000'
check "rate_limit: openai error is rate_limit_exceeded (not insufficient_quota)" jqt \
  '.error.code == "rate_limit_exceeded" and (.error.type | type == "string") and (.error | has("param"))'
hedra_create "a rate limit $RUN" "e2e-$RUN:rl"
check "rate_limit: hedra is 429 RESOURCE_EXHAUSTED, Retry-After: 5 and retry_after 5" \
  eval 'status_is 429 && header_is_ci Retry-After 5 &&
        jqt ".error.code == \"RESOURCE_EXHAUSTED\" and .error.retry_after == 5 and .error.retryable == true"'
stats
check "rate_limit: nothing created; faults {rate_limit: 1} for each" jqt \
  '.luma.creates == 0 and .hedra.jobs_started == 0 and .openai.chat_completions == 0
   and .luma.faults == {"rate_limit": 1} and .hedra.faults == {"rate_limit": 1}
   and .openai.faults == {"rate_limit": 1}'
stop_sim ratelimit

# --- LATENCY_MS ----------------------------------------------------------------
start_sim latency PROVSIM_LATENCY_MS=400 PROVSIM_LUMA_LATENCY_MS=1500 PROVSIM_OPENAI_LATENCY_MS=600
luma_get /ping
check "latency: a luma answer takes at least PROVSIM_LUMA_LATENCY_MS (${TIME}s)" \
  eval 'status_is 200 && at_least 1.5'
hedra_get /jobs/00000000-0000-4000-8000-000000000000
check "latency: hedra falls back to PROVSIM_LATENCY_MS, even for a 404 (${TIME}s)" \
  eval 'status_is 404 && at_least 0.4'
chat "a slow answer $RUN"
check "latency: PROVSIM_OPENAI_LATENCY_MS keeps its meaning (${TIME}s)" eval 'status_is 200 && at_least 0.6'
# A latency is a timer, not a sleep: a slow answer does not hold the others up.
curl -sS --max-time 10 -o "$TMP/slow" -H "$LUMA_AUTH" "$LUMA/ping" 2>/dev/null &
SLOW_PID=$!
sleep 0.3 # for it to arrive; it then waits 1.5 s
hit GET "$SIM/healthz"
check "latency: /healthz answers while a luma answer waits" \
  eval 'status_is 200 && [[ ! -s $TMP/slow ]]'
wait "$SLOW_PID"
check "latency: the waiting luma answer comes after all" eval 'jq -e ".message == \"pong\"" "$TMP/slow" >/dev/null'
stop_sim latency

# --- HANG_RATE=1: the create happened, its answer never comes ------------------
start_sim hang PROVSIM_HANG_RATE=1
MAXT=2 luma_create video "a hung create $RUN"
check "hang: luma create gets no answer (curl --max-time 2 exits 28)" curl_rc_is 28
MAXT=2 hedra_create "a hung job $RUN" "e2e-$RUN:hang"
check "hang: hedra create gets no answer" curl_rc_is 28
MAXT=2 hedra_create "a hung job $RUN" "e2e-$RUN:hang"
check "hang: the same hedra create again gets no answer" curl_rc_is 28
MAXT=2 chat "a hung completion $RUN"
check "hang: openai completion gets no answer" curl_rc_is 28
check "hang: /_sim/stats and /healthz still answer" sim_untouched
check "hang: the luma create took effect and its lost answer is counted by prompt" jqt \
  '.luma.creates == 1 and .luma.creates_by_prompt == {($p): 1} and .luma.lost_creates == {($p): 1}' \
  --arg p "a hung create $RUN"
check "hang: one hedra job for the key, both lost answers counted under it" jqt \
  '.hedra.jobs_started == 1 and .hedra.creates_by_idempotency_key == {($k): 2}
   and .hedra.lost_creates == {($k): 2}' --arg k "e2e-$RUN:hang"
check "hang: the completion counted, lost under sha256(prompt)" jqt \
  '.openai.chat_completions == 1 and .openai.lost_creates == {($h): 1} and .openai.by_prompt == {($h): 1}' \
  --arg h "$(sha256 "a hung completion $RUN")"
check "hang: faults {hang: N} per provider" jqt \
  '.luma.faults == {"hang": 1} and .hedra.faults == {"hang": 2} and .openai.faults == {"hang": 1}'
# A client still waiting when the simulator stops sees its connection close.
curl -sS --max-time 20 -o /dev/null -H "$LUMA_AUTH" "$LUMA/ping" 2>/dev/null &
HUNG_PID=$!
for ((i = 0; i < 100; i++)); do
  stats
  jqt '.luma.faults.hang == 2' && break
  sleep 0.05
done
stop_sim hang
HUNG_RC=0
wait "$HUNG_PID" || HUNG_RC=$?
check "hang: stopping the simulator closes a hung connection unanswered (curl exit $HUNG_RC = 52)" \
  [ "$HUNG_RC" = 52 ]

# --- RESET_RATE=1: RST before anything happens --------------------------------
start_sim reset PROVSIM_RESET_RATE=1 PROVSIM_OPENAI_LATENCY_MS=0
luma_create video "a reset $RUN"
check "reset: luma create is reset (curl exit 56)" curl_rc_is 56
hedra_create "a reset $RUN" "e2e-$RUN:reset"
check "reset: hedra create is reset" curl_rc_is 56
chat "a reset $RUN"
check "reset: openai completion is reset" curl_rc_is 56
check "reset: /_sim/stats and /healthz still answer" sim_untouched
check "reset: nothing created, nothing lost; faults {reset: 1} each" jqt \
  '.luma.creates == 0 and .luma.lost_creates == {} and .hedra.jobs_started == 0 and .hedra.lost_creates == {}
   and .openai.chat_completions == 0 and .luma.faults == {"reset": 1} and .hedra.faults == {"reset": 1}
   and .openai.faults == {"reset": 1}'
stop_sim reset

# --- TRUNCATE_RATE=1: the full length promised, half sent ----------------------
start_sim truncate PROVSIM_TRUNCATE_RATE=1 PROVSIM_OPENAI_LATENCY_MS=0
luma_create video "a truncated create $RUN"
check "truncate: luma create is 201 but the body stops short (curl exit 18)" \
  eval 'curl_rc_is 18 && status_is 201 && cut_short'
VID=$(grep -oE '"id":"[0-9a-f-]{36}"' <<<"$BODY" | cut -d'"' -f4)
hedra_create "a truncated job $RUN" "e2e-$RUN:truncate"
check "truncate: hedra create is 202 but cut short" eval 'curl_rc_is 18 && status_is 202 && cut_short'
JOB=$(grep -oE '"job_id":"[0-9a-f-]{36}"' <<<"$BODY" | cut -d'"' -f4)
chat "a truncated completion $RUN"
check "truncate: openai completion is 200 but cut short" eval 'curl_rc_is 18 && status_is 200 && cut_short'
luma_get /ping
check "truncate: a luma GET is cut short too" eval 'curl_rc_is 18 && status_is 200'
check "truncate: the lost luma create counted by prompt" eval 'stats && jqt \
  ".luma.creates == 1 and .luma.lost_creates == {(\$p): 1}" --arg p "a truncated create $RUN"'
check "truncate: the lost hedra create counted by key, the completion by sha256" jqt \
  '.hedra.lost_creates == {($k): 1} and .hedra.jobs_started == 1 and .openai.lost_creates == {($h): 1}' \
  --arg k "e2e-$RUN:truncate" --arg h "$(sha256 "a truncated completion $RUN")"
check "truncate: faults {truncate: N}" jqt \
  '.luma.faults == {"truncate": 2} and .hedra.faults == {"truncate": 1} and .openai.faults == {"truncate": 1}'
check "truncate: the created video downloads whole (downloads are never faulted)" \
  eval '[[ -n $VID ]] && download_ok "$SIM/files/$VID.mp4"'
check "truncate: the created hedra video downloads whole" \
  eval '[[ -n $JOB ]] && download_ok "$SIM/files/$JOB.mp4"'
stop_sim truncate

# --- MALFORMED_RATE=1: the normal status, a body that is not JSON --------------
start_sim malformed PROVSIM_MALFORMED_RATE=1 PROVSIM_OPENAI_LATENCY_MS=0
luma_create video "a malformed create $RUN"
check "malformed: luma create is 201 with a body jq cannot parse" \
  eval 'curl_rc_is 0 && status_is 201 && not_json'
hedra_create "a malformed job $RUN" "e2e-$RUN:malformed"
check "malformed: hedra create is 202 with a body jq cannot parse" \
  eval 'curl_rc_is 0 && status_is 202 && not_json'
chat "a malformed completion $RUN"
check "malformed: openai completion is 200 with a body jq cannot parse" \
  eval 'curl_rc_is 0 && status_is 200 && not_json'
bad=0
for ((i = 0; i < 10; i++)); do
  luma_get /credits
  { curl_rc_is 0 && status_is 200 && not_json; } || bad=$((bad + 1))
done
check "malformed: 10 luma GETs, all 200 and none parses" [ "$bad" = 0 ]
stats
check "malformed: the lost creates counted; faults {malformed: N}" jqt \
  '.luma.lost_creates == {($p): 1} and .hedra.lost_creates == {($k): 1} and (.openai.lost_creates | length) == 1
   and .luma.faults == {"malformed": 11} and .hedra.faults == {"malformed": 1}' \
  --arg p "a malformed create $RUN" --arg k "e2e-$RUN:malformed"
stop_sim malformed

# --- MODERATION_RATE=1 and FAIL_RATE=1: how generations end --------------------
start_sim moderation PROVSIM_MODERATION_RATE=1 PROVSIM_OPENAI_LATENCY_MS=0
luma_create video "a moderated video $RUN"
MVID=$(jq -r '.id // empty' <<<"$BODY")
check "moderation: the luma create itself answers 201" status_is 201
luma_create image "a moderated image $RUN"
MIMG=$(jq -r '.id // empty' <<<"$BODY")
luma_create video "provsim:fail a hook wins over the rate $RUN"
HOOK=$(jq -r '.id // empty' <<<"$BODY")
hedra_create "a moderated job $RUN" "e2e-$RUN:moderation"
MJOB=$(jq -r '.job_id // empty' <<<"$BODY")
check "moderation: luma video ends failed with a moderation reason" eval \
  'poll luma "/generations/$MVID" .state && jqt ".state == \"failed\" and (.failure_reason | test(\"moderat\"; \"i\")) and .assets == null"'
check "moderation: luma image ends failed with a moderation reason" eval \
  'poll luma "/generations/$MIMG" .state && jqt ".state == \"failed\" and (.failure_reason | test(\"moderat\"; \"i\"))"'
check "moderation: the provsim:fail hook still ends in a non-moderation failure" eval \
  'poll luma "/generations/$HOOK" .state && jqt ".state == \"failed\" and (.failure_reason | test(\"moderat|policy|safety\"; \"i\") | not)"'
check "moderation: hedra job ends FAILED with MODERATION_FAILED, not retryable" eval \
  'poll hedra "/jobs/$MJOB/status" .status && hedra_get "/jobs/$MJOB" &&
   jqt ".status == \"FAILED\" and .error.code == \"MODERATION_FAILED\" and .error.retryable == false and .outputs == []"'
chat "a refused completion $RUN"
check "moderation: openai answers 200 with a refusal and content null" eval 'status_is 200 &&
  jqt ".choices[0].message.refusal | type == \"string\" and length > 0" && jqt ".choices[0].message.content == null"'
stats
check "moderation: faults {moderation: N}; generations were created and counted" jqt \
  '.luma.faults == {"moderation": 2} and .hedra.faults == {"moderation": 1} and .openai.faults == {"moderation": 1}
   and .luma.creates == 3 and .hedra.jobs_started == 1 and .openai.chat_completions == 1'
stop_sim moderation

start_sim fail PROVSIM_FAIL_RATE=1 PROVSIM_OPENAI_LATENCY_MS=0
luma_create video "a failing video $RUN"
FVID=$(jq -r '.id // empty' <<<"$BODY")
hedra_create "a failing job $RUN"
FJOB=$(jq -r '.job_id // empty' <<<"$BODY")
check "fail: luma video ends failed with a reason that is not moderation" eval \
  'poll luma "/generations/$FVID" .state && jqt ".state == \"failed\" and (.failure_reason | type == \"string\" and (test(\"moderat|policy|safety|unsafe|flagged|nsfw\"; \"i\") | not))"'
check "fail: hedra job ends FAILED with a retryable non-moderation error" eval \
  'poll hedra "/jobs/$FJOB/status" .status && hedra_get "/jobs/$FJOB" &&
   jqt ".status == \"FAILED\" and .error.code == \"INTERNAL\" and .error.retryable == true"'
chat "a cut completion $RUN"
check "fail: openai answers 200 with finish_reason length" jqt \
  '.choices[0].finish_reason == "length" and .choices[0].message.refusal == null'
stats
check "fail: faults {fail: 1} each" jqt \
  '.luma.faults == {"fail": 1} and .hedra.faults == {"fail": 1} and .openai.faults == {"fail": 1}'
stop_sim fail

# --- PROVSIM_SEED: the same seed draws the same sequence ------------------------
# sequence NAME SEED-SETTING...: the statuses of 20 luma pings at error rate 0.5.
SEQ=""
sequence() {
  local name=$1 i
  shift
  start_sim "$name" PROVSIM_LUMA_ERROR_RATE=0.5 "$@"
  SEQ=""
  for ((i = 0; i < 20; i++)); do
    luma_get /ping
    SEQ+="$STATUS "
  done
  stop_sim "$name"
}
sequence seed-a PROVSIM_SEED=12345
SEQ_A=$SEQ
check "seed: the seed is logged at start" grep -q '"seed":"12345"' "$SIMLOG"
sequence seed-b PROVSIM_SEED=12345
SEQ_B=$SEQ
check "seed: rate 0.5 mixes answers and faults ($SEQ_A)" \
  eval '[[ $SEQ_A == *200* && $SEQ_A =~ 50[023] ]]'
check "seed: the same seed gives the same sequence twice" [ "$SEQ_A" = "$SEQ_B" ]
sequence seed-clock
SEQ_C=$SEQ
CLOCK_SEED=$(grep -o '"seed":"[0-9]*"' "$SIMLOG" | head -n 1 | cut -d'"' -f4)
check "seed: without PROVSIM_SEED one from the clock is logged" eval '[[ -n $CLOCK_SEED ]]'
sequence seed-replay PROVSIM_SEED="$CLOCK_SEED"
check "seed: the logged seed replays that run" [ "$SEQ_C" = "$SEQ" ]

finish
