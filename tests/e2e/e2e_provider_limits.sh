#!/usr/bin/env bash
# End to end: fleet-wide provider limits (docs/providers.md) across THREE
# workers on one Redis (a mini stack of its own: mini_stack.bash, Redis db
# 7), with GENQ_LUMA_MAX_IN_FLIGHT=4.
#
# - Slots: 12 video jobs at once through 3 workers of concurrency 80 (240
#   could run): the simulator's peak of Luma generations in flight is 4,
#   never more; every job succeeds.
# - The adaptive window: the simulator answers every Luma create 429 with
#   Retry-After 2 for 5 s (POST /_sim/luma/rate_limit); `genqctl providers
#   show --json` shows Luma's window shrunk below 4 and paused; the jobs
#   wait (no attempt spent on a 429) and succeed once the 429s stop; more
#   jobs grow the window back to 4, one step per window of successes.
# - The breaker: `genqctl providers open luma` forces it open: a job
#   submitted then creates nothing at Luma while it is open (36 s), stays
#   queued, and its stream message stays with the worker that read it
#   (delivered once: no reclaim after 30 s idle); `close` lets it through
#   and it succeeds.
# - The breaker, tripped: 3 consecutive 500s from Luma creates
#   (GENQ_BREAKER_FAILURES=3) open it (a trip, shown by genqctl); once
#   those jobs are canceled, after the 2 s cool-down one probe goes through,
#   succeeds, and closes it.
# - OpenAI too (GENQ_OPENAI_MAX_IN_FLIGHT=2): 6 storyboards at once
#   succeed, some of them having waited for a slot.
# - Hedra too (GENQ_HEDRA_MAX_IN_FLIGHT=2): 5 lip-syncs at once succeed,
#   the simulator's peak of Hedra jobs in flight 2.
# - Fairness: user A submits 200 image jobs (every one read by a worker:
#   they wait for Luma's 4 slots before their claim), then user B one: B's
#   job is granted the next free slot (B holds fewer slots per weight than
#   A) and succeeds while most of A's still wait; then all of A's succeed,
#   the peak still 4.
# - Waiting is queued: while A's jobs wait for a slot they are queued in
#   PostgreSQL (at most the 4 holding a slot, and one finishing per worker,
#   are running), and the API shows a waiting one queued, with a
#   queue_position, no started_at, its step pending. A worker stopped
#   meanwhile hands its waiting jobs back, and the other two run them.
# - The books: every job succeeded, nothing is held, the audit is clean,
#   no slot is left in use.
#
# Needs what mini_stack.bash needs (scripts/test sets it).
# shellcheck disable=SC2016,SC2034,SC2119
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" provider_limits 7

export PROVSIM_LUMA_VIDEO_MS=1500 PROVSIM_LUMA_IMAGE_MS=300
export GENQ_POLL_INTERVAL_MS=200 GENQ_POLL_MAX_INTERVAL_MS=400
export GENQ_LUMA_MAX_IN_FLIGHT=4 GENQ_BREAKER_FAILURES=3 GENQ_BREAKER_COOLDOWN_MS=2000
export GENQ_OPENAI_MAX_IN_FLIGHT=2 GENQ_HEDRA_MAX_IN_FLIGHT=2 PROVSIM_HEDRA_MS=800
mini_stack_start
out=$(env GENQ_LUMA_MAX_IN_FLIGHT=-1 timeout 20 "$BIN/genq-worker" 2>&1)
rc=$?
check "a bad GENQ_LUMA_MAX_IN_FLIGHT stops genq-worker, naming it (exit $rc)" \
  eval '((rc != 0 && rc != 124)) && grep -q GENQ_LUMA_MAX_IN_FLIGHT <<<"$out"'
for n in 1 2 3; do
  start_worker "worker$n" -- --concurrency 80 --kinds video,image,storyboard,lipsync
done
W3=$WPID
mini_stack_user 1000

# submit N LABEL: N video jobs; their ids appended to $TMP/ids.
submit() {
  local i
  for ((i = 0; i < $1; i++)); do
    req POST /v1/jobs "$TOKEN" "$(jq -nc --arg p "e2e provider limits $2 $i" \
      '{kind:"video",input:{prompt:$p,duration:"5s"}}')"
    status_is 202 && jq -r .id <<<"$BODY" >>"$TMP/ids"
  done
}
jobs_in() { psql_db -c "select count(*) from jobs where user_id = '$USER_ID' and status = '$1'"; }
# wait_all N SECS: up to SECS for N of the user's jobs to have succeeded.
wait_all() {
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    (($(jobs_in succeeded) >= $1)) && return 0
    sleep 0.2
  done
  return 1
}
luma() { "$GENQCTL" providers show --json | jq -c '.providers[] | select(.provider == "luma")'; }
peak() { sim_count luma in_flight_peak; }

# --- slots --------------------------------------------------------------------
: >"$TMP/ids"
submit 12 a
check "12 video jobs accepted" [ "$(wc -l <"$TMP/ids")" -eq 12 ]
check "all 12 succeed through 3 workers" wait_all 12 90
p=$(peak)
check "the simulator's peak of Luma generations in flight is 4 ($p)" [ "$p" -eq 4 ]
check "genqctl providers show: Luma max 4, window 4, no slot left in use ($(luma))" \
  eval 'luma | jq -e ".max_in_flight == 4 and .window == 4 and .in_use == 0 and .breaker == \"closed\"" >/dev/null'
"$GENQCTL" providers show >"$TMP/table"
check "genqctl providers show prints a table with luma" grep -qE '^luma +4 +4 +0 ' "$TMP/table"

# --- the adaptive window under 429s ----------------------------------------
curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \
  --data '{"seconds":5,"retry_after_s":2}' "$SIM/_sim/luma/rate_limit"
submit 8 b
shrunk=""
for ((i = 0; i < 50; i++)); do
  l=$(luma)
  if jq -e '.window < 4 and .paused == true and .rate_limited > 0' <<<"$l" >/dev/null; then
    shrunk=$l
    break
  fi
  sleep 0.2
done
check "under 429s Luma's window shrank below 4 and is paused ($shrunk)" [ -n "$shrunk" ]
check "the jobs waiting meanwhile are not failed" [ "$(jobs_in failed)" -eq 0 ]
check "the 8 succeed once the 429s stop" wait_all 20 90
rl=$(sim_count luma rate_limited)
check "the simulator answered 429s ($rl)" [ "$rl" -gt 0 ]
# additive increase: one step per window of successes; more jobs until 4
for batch in c d e; do
  jq -e '.window == 4' <<<"$(luma)" >/dev/null && break
  before=$(wc -l <"$TMP/ids")
  submit 4 "$batch"
  wait_all "$((before + 4))" 60
done
total=$(wc -l <"$TMP/ids")
check "after the 429s stopped the window grew back to 4 ($(luma))" \
  eval 'luma | jq -e ".window == 4 and .paused == false" >/dev/null'
p=$(peak)
check "the peak of Luma generations in flight never passed 4 ($p)" [ "$p" -le 4 ]
check "a job that waited out the 429s spent one attempt" eval \
  'req GET "/v1/jobs/$(sed -n 13p "$TMP/ids")" "$TOKEN"; jqt ".status == \"succeeded\" and .attempt == 1"'

# --- the breaker, forced ------------------------------------------------------
"$GENQCTL" providers open luma >/dev/null
check "genqctl providers open luma: the breaker shows forced_open" \
  eval 'luma | jq -e ".breaker == \"forced_open\"" >/dev/null'
creates=$(sim_count luma creates)
submit 1 f
total=$((total + 1))
F_JOB=$(tail -n 1 "$TMP/ids")
# past the 30 s after which any worker reclaims a message idle that long:
# the worker holding the waiting job keeps its message fresh
sleep 36
check "while it is forced open a new job creates nothing at Luma" \
  [ "$(sim_count luma creates)" -eq "$creates" ]
check "... and is not failed" [ "$(jobs_in failed)" -eq 0 ]
req GET "/v1/jobs/$F_JOB" "$TOKEN"
check "... and is queued, not started, after 36 s of waiting" \
  jqt '.status == "queued" and .started_at == null and .attempt == 0'
pending=$(rcli XPENDING 'genq:{q}:jobs:video' workers - + 10 | paste -sd' ')
# one entry: id, consumer, idle ms, deliveries
read -r _ _ idle deliveries _ <<<"$pending"
check "its message is still pending with the worker that read it, delivered once, idle ${idle:-?} ms ($pending)" \
  eval '[[ $deliveries == 1 ]] && ((idle < 20000))'
"$GENQCTL" providers close luma >/dev/null
check "genqctl providers close luma: closed" eval 'luma | jq -e ".breaker == \"closed\"" >/dev/null'
check "the job then succeeds" wait_all "$total" 60
"$GENQCTL" providers open nosuch >/dev/null 2>&1
check "genqctl providers open of an unknown provider is a usage error (exit 2)" [ $? -eq 2 ]

# new_user NAME CREDITS: a user on plan unlimited (no submit limits); sets U, T.
new_user() {
  U=e2e-pl-$1-$RUN
  "$GENQCTL" credits grant "$U" "$2" --key "e2e:$U" >/dev/null &&
    "$GENQCTL" limits plan "$U" unlimited >/dev/null
  T=$("$GENQCTL" token --user "$U" | tr -d '[:space:]')
}

succeeded_of() { psql_db -c "select count(*) from jobs where user_id = '$1' and status = 'succeeded'"; }

# --- the breaker, tripped -----------------------------------------------------
new_user c 100
UC=$U TC=$T
: >"$TMP/c.ids"
for i in 1 2 3; do
  req POST /v1/jobs "$TC" "{\"kind\":\"video\",\"input\":{\"prompt\":\"e2e breaker provsim:error500 $i\"}}"
  status_is 202 && jq -r .id <<<"$BODY" >>"$TMP/c.ids"
done
tripped=""
for ((i = 0; i < 100; i++)); do
  l=$(luma)
  if jq -e '.breaker_trips >= 1 and (.breaker == "open" or .breaker == "half_open")' <<<"$l" >/dev/null; then
    tripped=$l
    break
  fi
  sleep 0.2
done
check "3 consecutive 500s from Luma open its breaker ($tripped)" [ -n "$tripped" ]
while read -r id; do req POST "/v1/jobs/$id/cancel" "$TC"; done <"$TMP/c.ids"
req POST /v1/jobs "$TC" '{"kind":"video","input":{"prompt":"e2e breaker probe"}}'
PROBE=$(jq -r '.id // empty' <<<"$BODY")
check "after the cool-down the probe job succeeds" poll_job "$TC" "$PROBE"
check "... succeeded" jqt '.status == "succeeded"'
check "its success closed the breaker ($(luma))" \
  eval 'luma | jq -e ".breaker == \"closed\" and .failures == 0" >/dev/null'
req GET /v1/credits "$TC"
check "the canceled jobs hold nothing" jqt '.held == 0'

# --- OpenAI ---------------------------------------------------------------------
new_user d 10
UD=$U TD=$T
: >"$TMP/d.ids"
for i in 1 2 3 4 5 6; do
  req POST /v1/jobs "$TD" "{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"e2e openai slots $i\",\"scenes\":2}}"
  status_is 202 && jq -r .id <<<"$BODY" >>"$TMP/d.ids"
done
for ((i = 0; i < 300; i++)); do
  (($(succeeded_of "$UD") >= 6)) && break
  sleep 0.2
done
check "6 storyboards succeed under an OpenAI limit of 2" [ "$(succeeded_of "$UD")" -eq 6 ]
openai() { "$GENQCTL" providers show --json | jq -c '.providers[] | select(.provider == "openai")'; }
check "genqctl providers show: OpenAI max 2, window 2, no slot left in use ($(openai))" \
  eval 'openai | jq -e ".max_in_flight == 2 and .window == 2 and .in_use == 0" >/dev/null'
waited=$(cat "$STATE"/logs/worker*.log | grep "waiting for a provider slot" | grep -c '"provider":"openai"')
check "some of them waited for an OpenAI slot ($waited times)" [ "$waited" -gt 0 ]
check "D holds nothing" credits_are "$TD" 4 0

# --- Hedra ----------------------------------------------------------------------
new_user h 100
UH=$U TH=$T
# upload TOKEN FILE TYPE: the upload's id
upload() {
  curl -sS --max-time 10 -H "Authorization: Bearer $1" -H "Content-Type: $3" \
    --data-binary "@$2" "$API/v1/uploads" | jq -r '.id // empty'
}
# tiny valid inputs: a 1x1 PNG and one second of 8 kHz 8-bit WAV
base64 -d >"$TMP/avatar.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
{
  printf 'RIFF\x64\x1f\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00data\x40\x1f\x00\x00'
  head -c 8000 /dev/zero | tr '\0' '\200'
} >"$TMP/voice.wav"
: >"$TMP/h.ids"
for i in 1 2 3 4 5; do
  a=$(upload "$TH" "$TMP/avatar.png" image/png) v=$(upload "$TH" "$TMP/voice.wav" audio/wav)
  req POST /v1/jobs "$TH" "$(jq -nc --arg a "$a" --arg v "$v" '{kind:"lipsync",input:{image_upload_id:$a,audio_upload_id:$v}}')"
  status_is 202 && jq -r .id <<<"$BODY" >>"$TMP/h.ids"
done
check "5 lip-sync jobs accepted" [ "$(wc -l <"$TMP/h.ids")" -eq 5 ]
for ((i = 0; i < 300; i++)); do
  (($(succeeded_of "$UH") >= 5)) && break
  sleep 0.2
done
check "5 lip-syncs succeed under a Hedra limit of 2" [ "$(succeeded_of "$UH")" -eq 5 ]
hp=$(sim_count hedra in_flight_peak)
check "the simulator's peak of Hedra jobs in flight is 2 ($hp)" [ "$hp" -eq 2 ]
hedra() { "$GENQCTL" providers show --json | jq -c '.providers[] | select(.provider == "hedra")'; }
check "genqctl providers show: Hedra max 2, no slot left in use ($(hedra))" \
  eval 'hedra | jq -e ".max_in_flight == 2 and .in_use == 0" >/dev/null'
check "H holds nothing" credits_are "$TH" 60 0

# --- fairness -------------------------------------------------------------------
new_user a 1000
UA=$U TA=$T
new_user b 10
UB=$U TB=$T
seq 1 200 | xargs -P 8 -I{} curl -sS -o /dev/null -w '%{http_code}\n' --max-time 20 \
  -H "Authorization: Bearer $TA" -H 'Content-Type: application/json' \
  --data '{"kind":"image","input":{"prompt":"e2e fairness A {}"}}' "$API/v1/jobs" >"$TMP/a.codes"
check "user A's 200 image jobs accepted" [ "$(grep -c '^202$' "$TMP/a.codes")" -eq 200 ]
req POST /v1/jobs "$TB" '{"kind":"image","input":{"prompt":"e2e fairness B"}}'
B_JOB=$(jq -r '.id // empty' <<<"$BODY")
check "user B's one job accepted" status_is 202
a_then=$(succeeded_of "$UA")
# while A's wait: how many are running (the most of 10 looks) and queued
of_a() { psql_db -c "select count(*) from jobs where user_id = '$UA' and status = '$1'"; }
most_running=0 least_queued=200
for ((i = 0; i < 10; i++)); do
  r=$(of_a running) q=$(of_a queued)
  ((r > most_running)) && most_running=$r
  ((q < least_queued)) && least_queued=$q
  sleep 0.1
done
check "while A's jobs wait for Luma's 4 slots at most 7 are running ($most_running), the rest queued ($least_queued)" \
  eval '((most_running <= 7 && least_queued >= 50))'
LAST_A=$(psql_db -c "select id from jobs where user_id = '$UA' and status = 'queued' order by queue_no desc limit 1")
req GET "/v1/jobs/$LAST_A" "$TA"
check "a job waiting for its slot shows queued, with a queue_position, not started, its step pending ($(jq -c '{status, queue_position, started_at, s: .steps[0].status}' <<<"$BODY"))" \
  jqt '.status == "queued" and .queue_position >= 1 and .started_at == null and .steps[0].status == "pending"'
check "B's job succeeds" poll_job "$TB" "$B_JOB"
check "... succeeded" jqt '.status == "succeeded"'
a_done=$(succeeded_of "$UA")
check "B's job finished while most of A's still waited (A: $a_then done at B's submit, $a_done at its end)" \
  [ "$a_done" -lt 100 ]
# one of the three stops (SIGTERM) while it holds waiting jobs: they go
# back to the queue for the other two
genq_stop_pid "$W3"
check "a worker stopped while jobs waited for their slot there exits 0 (${GENQ_PID_RC[$W3]})" \
  [ "${GENQ_PID_RC[$W3]}" == 0 ]
check "... having handed its waiting jobs back" \
  grep -q "jobs waiting for a provider slot go back to their queues" "$STATE/logs/worker3.log"
for ((i = 0; i < 600; i++)); do
  (($(succeeded_of "$UA") >= 200)) && break
  sleep 0.2
done
check "then all 200 of A's succeed" [ "$(succeeded_of "$UA")" -eq 200 ]
p=$(peak)
check "the peak of Luma generations in flight is still at most 4 ($p)" [ "$p" -le 4 ]
check "A holds nothing" credits_are "$TA" 600 0
waited=$(cat "$STATE"/logs/worker*.log | grep "waiting for a provider slot, still queued" | grep -c '"provider":"luma"')
check "the workers said Luma jobs waited still queued ($waited times)" [ "$waited" -gt 0 ]
check "every A job ran one attempt: waiting took none ($(psql_db -c "select max(attempt) from jobs where user_id = '$UA'"))" \
  [ "$(psql_db -c "select max(attempt) from jobs where user_id = '$UA'")" -eq 1 ]
check "B holds nothing" credits_are "$TB" 8 0

# --- the books ----------------------------------------------------------------
check "every job succeeded ($(jobs_in succeeded) of $total)" [ "$(jobs_in succeeded)" -eq "$total" ]
check "no Luma slot is left in use" eval 'luma | jq -e ".in_use == 0" >/dev/null'
check "nothing is held" credits_are "$TOKEN" $((1000 - 10 * total)) 0
check "the books are clean (genqctl audit)" eval '"$GENQCTL" audit >/dev/null'
mini_stack_stop
finish
