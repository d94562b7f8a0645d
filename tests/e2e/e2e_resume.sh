#!/usr/bin/env bash
# End to end: a worker that dies while a provider generation runs does not
# make genq pay for it twice (SPEC §5, §11). For a video, a lip-sync and a
# 3-scene campaign: the generation id is checkpointed, the owning worker is
# SIGKILLed, another worker reclaims the job once its lease lapses, resumes
# polling the same generation, and the job succeeds with each step's price
# captured exactly once and one provider create per step. Then the SIGTERM
# path: a worker with a short grace period hands a running video back and
# exits 0; another one finishes it. Last, `genqctl audit` is clean.
#
# The shared stack's workers must not be killed, so this script starts a
# mini stack of its own (mini_stack.bash) on the stack's PostgreSQL and
# Redis servers: a new database, Redis db 13, its own genq-provsim
# (generations of several seconds, so they outlive a kill), genq-api and
# workers (5 s leases, fast polls), all on free loopback ports and stopped
# by pid at exit.
#
# Needs GENQ_BUILD_DIR (genq-api, genq-worker, genq-provsim, genqctl), the
# stack's GENQ_DATABASE_URL and GENQ_REDIS_URL (their servers are reused),
# CLERK_* and GENQ_DEV_JWT_PRIVATE_KEY for tokens; scripts/test sets them.
# GENQCTL defaults to $GENQ_BUILD_DIR/genqctl. Prints one line per check and,
# last, "e2e-summary: passed=N failed=M"; exits non-zero on any failure.
# GENQ_TEST_KEEP=1 keeps the mini stack's logs and database.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" resume 13
# generations long enough to kill a worker in the middle of one
export PROVSIM_LUMA_VIDEO_MS=6000 PROVSIM_HEDRA_MS=6000 PROVSIM_LUMA_IMAGE_MS=3000
export PROVSIM_OPENAI_LATENCY_MS=200
# a short lease, frequent polls and sweeps, short retries
export GENQ_LEASE_SECONDS=5 GENQ_POLL_INTERVAL_MS=200 GENQ_POLL_MAX_INTERVAL_MS=1000
export GENQ_RETRY_BASE_MS=100 GENQ_RETRY_CAP_MS=1000 GENQ_SWEEP_INTERVAL_MS=500
mini_stack_start

# kill9 PID: SIGKILL, then reap it (its status is recorded as 137).
kill9() {
  kill -KILL "$1" 2>/dev/null || true
  genq_stop_pid "$1"
}
killed_by_sigkill() { [[ ${GENQ_PID_RC[$1]:-} == 137 ]]; }

# ---- helpers -------------------------------------------------------------------
mini_stack_user 200

# wait_refs ID JQ_STEPS N: polls the job until N of its steps selected by
# JQ_STEPS are running with a provider_ref (committed generation ids), at
# most 60 s; false early if the job ends.
wait_refs() {
  local i
  for ((i = 0; i < 300; i++)); do
    req GET "/v1/jobs/$1" "$TOKEN"
    if status_is 200 && jqt "[.steps[] | select($2) | select(.status == \"running\" and (.provider_ref | type == \"string\"))] | length == $3"; then
      return 0
    fi
    jqt '.status | IN("succeeded", "failed", "canceled")' && return 1
    sleep 0.2
  done
  return 1
}

# owner_is ID PID: jobs.worker_id (host:pid:random) names that process.
owner_is() {
  local wid
  wid=$(psql_db -c "select worker_id from jobs where id = '$1'")
  echo "       jobs.worker_id = $wid"
  [[ $(cut -d: -f2 <<<"$wid") == "$2" ]]
}

# log_lines NAME MESSAGE JOB [KEY VALUE]: the JSON lines of worker NAME's log
# with that message for that job (and that field); other lines are skipped.
log_lines() {
  jq -R -c --arg m "$2" --arg j "$3" --arg k "${4:-}" --arg v "${5:-}" \
    'fromjson? | select(.msg == $m and .job_id == $j and ($k == "" or .[$k] == $v))' \
    "$STATE/logs/$1.log" 2>/dev/null
}
log_has() { [[ -n $(log_lines "$@") ]]; }
log_count() { log_lines "$@" | wc -l; }

# captures ID: the job's capture rows as step=credits, sorted by step
captures() {
  psql_db -c "select coalesce(string_agg(split_part(idem_key, ':capture:', 2) || '=' || (-balance_delta),
    ',' order by split_part(idem_key, ':capture:', 2)), '')
    from ledger where job_id = '$1' and movement = 'capture'"
}

upload() { # FILE TYPE → sets STATUS, BODY
  : >"$TMP/headers"
  STATUS=$(curl -sS --max-time 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: $2" --data-binary "@$1" "$API/v1/uploads") &&
    api_record POST /v1/uploads
  BODY=$(cat "$TMP/body")
}
# tiny valid inputs: a 1x1 PNG and one second of 8 kHz 8-bit WAV
base64 -d >"$TMP/avatar.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
{
  printf 'RIFF\x64\x1f\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00data\x40\x1f\x00\x00'
  head -c 8000 /dev/zero | tr '\0' '\200'
} >"$TMP/voice.wav"
AVATAR="" VOICE=""
fresh_inputs() {
  upload "$TMP/avatar.png" image/png
  status_is 201 || return 1
  AVATAR=$(jq -r '.id // empty' <<<"$BODY")
  upload "$TMP/voice.wav" audio/wav
  status_is 201 || return 1
  VOICE=$(jq -r '.id // empty' <<<"$BODY")
  [[ -n $AVATAR && -n $VOICE ]]
}

# ---- 1. video: SIGKILL mid-generation, resumed by another worker ------------------
echo "# video: worker A is SIGKILLed while its Luma generation runs"
start_worker worker-A
A=$WPID
P_VID="resume: a slow dolly over a lighthouse at dusk $RUN"
req POST /v1/jobs "$TOKEN" "$(jq -nc --arg p "$P_VID" '{kind:"video",input:{prompt:$p,duration:"5s"}}')"
check "video job accepted, price 10" eval 'status_is 202 && jqt ".cost.price == 10"'
VID=$(jq -r '.id // empty' <<<"$BODY")
check "worker A checkpointed the generation id while it runs" wait_refs "$VID" 'true' 1
REF=$(jq -r '.steps[0].provider_ref // empty' <<<"$BODY")
check "jobs.worker_id names worker A (pid $A)" owner_is "$VID" "$A"
check "worker A created the generation it checkpointed" log_has worker-A "luma generation created" "$VID" generation_id "$REF"
kill9 "$A"
check "worker A died of SIGKILL" killed_by_sigkill "$A"
start_worker worker-B
B=$WPID
check "the video job finishes" poll_job "$TOKEN" "$VID"
check "it succeeded on attempt 2 with the same generation; captured 10, nothing held" jqt \
  '.status == "succeeded" and .attempt == 2 and .steps[0].provider_ref == $r
   and .cost == {price: 10, held: 0, captured: 10, released: 0}
   and .output.assets[0].content_type == "video/mp4"' --arg r "$REF"
check "the simulator saw exactly one create for its prompt" [ "$(sim_count luma creates_by_prompt "$P_VID")" -eq 1 ]
check "worker B resumed the generation instead of creating one" \
  log_has worker-B "resuming luma generation" "$VID" generation_id "$REF"
check "worker B created no generation for it" [ "$(log_count worker-B "luma generation created" "$VID")" -eq 0 ]
check "the ledger has one capture: video=10" [ "$(captures "$VID")" == "video=10" ]

# ---- 2. lipsync: the same for a Hedra job ------------------------------------------
echo "# lipsync: worker B is SIGKILLed while its Hedra job runs"
check "PNG and WAV uploads answer 201" fresh_inputs
STARTED0=$(sim_count hedra jobs_started)
req POST /v1/jobs "$TOKEN" "$(jq -nc --arg a "$AVATAR" --arg v "$VOICE" '{kind:"lipsync",input:{image_upload_id:$a,audio_upload_id:$v}}')"
check "lipsync job accepted, price 8" eval 'status_is 202 && jqt ".cost.price == 8"'
LIP=$(jq -r '.id // empty' <<<"$BODY")
check "worker B checkpointed the Hedra job id while it runs" wait_refs "$LIP" 'true' 1
HREF=$(jq -r '.steps[0].provider_ref // empty' <<<"$BODY")
check "jobs.worker_id names worker B (pid $B)" owner_is "$LIP" "$B"
kill9 "$B"
check "worker B died of SIGKILL" killed_by_sigkill "$B"
start_worker worker-C
C=$WPID
check "the lipsync job finishes" poll_job "$TOKEN" "$LIP"
check "it succeeded on attempt 2 with the same Hedra job; captured 8, nothing held" jqt \
  '.status == "succeeded" and .attempt == 2 and .steps[0].provider_ref == $r
   and .cost == {price: 8, held: 0, captured: 8, released: 0}
   and .output.assets[0].content_type == "video/mp4"' --arg r "$HREF"
check "the simulator saw exactly one Hedra create for its key" \
  [ "$(sim_count hedra creates_by_idempotency_key "$LIP:lipsync")" -eq 1 ]
check "and Hedra started exactly one job" [ "$(sim_count hedra jobs_started)" -eq $((STARTED0 + 1)) ]
check "worker C resumed the Hedra job" log_has worker-C "resuming hedra job" "$LIP" hedra_job_id "$HREF"
check "the ledger has one capture: lipsync=8" [ "$(captures "$LIP")" == "lipsync=8" ]

# ---- 3. campaign: three videos in flight at once ----------------------------------
echo "# campaign: worker C is SIGKILLed while three scene videos generate"
check "fresh uploads for the campaign" fresh_inputs
CHATS0=$(sim_count openai chat_completions)
P_CAMP="resume: a 15 second campaign for a bicycle repair shop $RUN"
req POST /v1/jobs "$TOKEN" "$(jq -nc --arg p "$P_CAMP" --arg a "$AVATAR" --arg v "$VOICE" \
  '{kind:"campaign",input:{prompt:$p,scenes:3,avatar_upload_id:$a,voice_upload_id:$v}}')"
check "campaign accepted, price 39" eval 'status_is 202 && jqt ".cost.price == 39 and .cost.held == 39"'
CAMP=$(jq -r '.id // empty' <<<"$BODY")
check "worker C checkpointed all three scene generations" wait_refs "$CAMP" '.name | startswith("video_")' 3
CREFS=$(jq -c '[.steps[] | select(.name | startswith("video_")) | {(.name): .provider_ref}] | add' <<<"$BODY")
check "jobs.worker_id names worker C (pid $C)" owner_is "$CAMP" "$C"
kill9 "$C"
check "worker C died of SIGKILL" killed_by_sigkill "$C"
start_worker worker-D
D=$WPID
check "the campaign finishes" poll_job "$TOKEN" "$CAMP"
check "it succeeded on attempt 2 with the same three generations; captured exactly 39" jqt \
  '.status == "succeeded" and .attempt == 2
   and .cost == {price: 39, held: 0, captured: 39, released: 0}
   and ([.steps[] | select(.name | startswith("video_")) | {(.name): .provider_ref}] | add) == $refs
   and ([.output.assets[] | select(.step | startswith("video_"))] | length == 3)
   and ([.output.assets[] | select(.step == "lipsync")] | length == 1)
   and all(.steps[]; .status == "succeeded")' --argjson refs "$CREFS"
CAMP_JOB=$BODY
one_create_per_scene() {
  local s vp n
  for s in 0 1 2; do
    vp=$(jq -r ".output.storyboard.scenes[$s].visual_prompt // empty" <<<"$CAMP_JOB")
    n=$(sim_count luma creates_by_prompt "$vp")
    echo "       scene $((s + 1)): $n create(s)"
    [[ -n $vp && $n -eq 1 ]] || return 1
  done
}
check "the simulator saw exactly one create per scene's visual prompt" one_create_per_scene
check "the storyboard was planned once (one chat completion)" \
  [ "$(sim_count openai chat_completions)" -eq $((CHATS0 + 1)) ]
check "and exactly one Hedra create for the lip-sync step" \
  [ "$(sim_count hedra creates_by_idempotency_key "$CAMP:lipsync")" -eq 1 ]
check "worker D resumed all three scene generations" [ "$(log_count worker-D "resuming luma generation" "$CAMP")" -eq 3 ]
check "worker D created no scene generation" [ "$(log_count worker-D "luma generation created" "$CAMP")" -eq 0 ]
CAPS=$(captures "$CAMP")
check "the ledger has one capture per step: 1, 10, 10, 10, 8 ($CAPS)" \
  [ "$CAPS" == "lipsync=8,storyboard=1,video_1=10,video_2=10,video_3=10" ]

# ---- 4. SIGTERM: a short grace period, the job handed back ------------------------
echo "# SIGTERM: worker E (GENQ_SHUTDOWN_GRACE_MS=500) stops mid-generation"
genq_stop_pid "$D"
check "idle worker D exits 0 on SIGTERM" [ "${GENQ_PID_RC[$D]}" == 0 ]
start_worker worker-E GENQ_SHUTDOWN_GRACE_MS=500
E=$WPID
P_TERM="resume: a time-lapse of a harbour crane at work $RUN"
req POST /v1/jobs "$TOKEN" "$(jq -nc --arg p "$P_TERM" '{kind:"video",input:{prompt:$p,duration:"5s"}}')"
TERMJ=$(jq -r '.id // empty' <<<"$BODY")
check "video job accepted" status_is 202
check "worker E checkpointed the generation id while it runs" wait_refs "$TERMJ" 'true' 1
TREF=$(jq -r '.steps[0].provider_ref // empty' <<<"$BODY")
check "jobs.worker_id names worker E (pid $E)" owner_is "$TERMJ" "$E"
kill -TERM "$E"
exited_soon() { # PID: gone within 15 s (bounded wait, not a timing assertion)
  local i
  for ((i = 0; i < 75; i++)); do
    genq_alive "$1" || return 0
    sleep 0.2
  done
  return 1
}
check "worker E exits after SIGTERM" exited_soon "$E"
genq_stop_pid "$E"
check "worker E exited 0" [ "${GENQ_PID_RC[$E]}" == 0 ]
check "worker E handed the job back when its grace period ended" \
  grep -q '"grace period over: handing unfinished jobs back"' "$STATE/logs/worker-E.log"
req GET "/v1/jobs/$TERMJ" "$TOKEN"
check "the handed-back job is queued again at once, its attempt given back, its checkpoint kept" jqt \
  '.status == "queued" and .attempt == 0 and .steps[0].provider_ref == $r' --arg r "$TREF"
start_worker worker-F
check "the video job finishes" poll_job "$TOKEN" "$TERMJ"
check "it succeeded on attempt 1 (a hand-back uses no attempt) with the same generation; captured 10" jqt \
  '.status == "succeeded" and .attempt == 1 and .steps[0].provider_ref == $r
   and .cost == {price: 10, held: 0, captured: 10, released: 0}' --arg r "$TREF"
check "the simulator saw exactly one create for its prompt" [ "$(sim_count luma creates_by_prompt "$P_TERM")" -eq 1 ]
check "worker F resumed the generation" log_has worker-F "resuming luma generation" "$TERMJ" generation_id "$TREF"

# ---- 5. credits: the ledger holds together ------------------------------------------
check "the user's credits: 200 - 10 - 8 - 39 - 10 captured, nothing held" credits_are "$TOKEN" 133 0
check "genqctl audit is clean on the mini stack's database" "$GENQCTL" audit

# ---- the mini stack stops cleanly; no sanitizer report in any log ---------------------
mini_stack_stop "$A" "$B" "$C" # SIGKILLed on purpose

finish
