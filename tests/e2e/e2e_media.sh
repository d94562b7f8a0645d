#!/usr/bin/env bash
# End to end: image, video, lipsync and campaign jobs through a running stack
# (genq-api, two genq-worker, genq-provsim's Luma and Hedra, Redis,
# PostgreSQL) over real HTTP: uploads in, assets out, credits captured per
# step, one provider create per step, and cancel in the middle of a campaign.
#
# Needs GENQ_API_URL, GENQCTL and the stack's variables (scripts/test sets
# short simulator durations: PROVSIM_LUMA_VIDEO_MS and friends).
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

. "$(dirname "$0")/helpers.bash"
SIM=http://${GENQ_PROVSIM_LISTEN:?GENQ_PROVSIM_LISTEN must be set}

RUN=$$-$RANDOM
CARA=e2e-cara-$RUN DAN=e2e-dan-$RUN
check "genqctl grants cara 200 credits" "$GENQCTL" credits grant "$CARA" 200 --key "e2e:$CARA"
CARA_TOKEN=$("$GENQCTL" token --user "$CARA" | tr -d '[:space:]')
DAN_TOKEN=$("$GENQCTL" token --user "$DAN" | tr -d '[:space:]')

# tiny valid inputs: a 1x1 PNG and one second of 8 kHz 8-bit WAV
base64 -d >"$TMP/avatar.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
{
  printf 'RIFF\x64\x1f\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00data\x40\x1f\x00\x00'
  head -c 8000 /dev/zero | tr '\0' '\200'
} >"$TMP/voice.wav"

upload() { # TOKEN FILE TYPE → sets STATUS, BODY
  : >"$TMP/headers"
  STATUS=$(curl -sS --max-time 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
    -H "Authorization: Bearer $1" -H "Content-Type: $3" --data-binary "@$2" "$API/v1/uploads") &&
    api_record POST /v1/uploads
  BODY=$(cat "$TMP/body")
}
sim_stats() { curl -sS --max-time 5 "$SIM/_sim/stats"; }
# sim_count PROVIDER MAP KEY: the simulator's count for one key (0 if none)
sim_count() { sim_stats | jq -r --arg p "$1" --arg m "$2" --arg k "$3" '.[$p][$m][$k] // 0'; }

# asset_ok TOKEN: every asset of the last job is downloadable by its owner
# with its content type, length and sha256, and 404 for another user.
assets_ok() {
  local token=$1 job=$BODY n id type bytes sha got
  n=$(jq '.output.assets | length' <<<"$job")
  for ((i = 0; i < n; i++)); do
    id=$(jq -r ".output.assets[$i].id" <<<"$job")
    type=$(jq -r ".output.assets[$i].content_type" <<<"$job")
    bytes=$(jq -r ".output.assets[$i].bytes" <<<"$job")
    sha=$(jq -r ".output.assets[$i].sha256" <<<"$job")
    got=$(curl -sS --max-time 10 -D "$TMP/ah" -o "$TMP/asset" -w '%{http_code}' \
      -H "Authorization: Bearer $token" "$API/v1/assets/$id") &&
      api_record GET "/v1/assets/$id" "$TMP/ah" "$TMP/asset"
    [[ $got == 200 ]] || { echo "       asset $id: HTTP $got"; return 1; }
    tr -d '\r' <"$TMP/ah" | grep -qixF "content-type: $type" || { echo "       asset $id: type"; return 1; }
    tr -d '\r' <"$TMP/ah" | grep -qixF "content-length: $bytes" || { echo "       asset $id: length"; return 1; }
    [[ $(sha256sum <"$TMP/asset" | cut -d' ' -f1) == "$sha" ]] || { echo "       asset $id: sha256"; return 1; }
    got=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' \
      -H "Authorization: Bearer $DAN_TOKEN" "$API/v1/assets/$id")
    [[ $got == 404 ]] || { echo "       asset $id for another user: HTTP $got"; return 1; }
  done
  return 0
}

# --- uploads: each job gets its own (a finished job's uploads are deleted) --
fresh_inputs() {
  upload "$CARA_TOKEN" "$TMP/avatar.png" image/png
  status_is 201 && jqt '.sha256 == $s and .bytes == ($n | tonumber)' \
    --arg s "$(sha256sum <"$TMP/avatar.png" | cut -d' ' -f1)" --arg n "$(stat -c %s "$TMP/avatar.png")" || return 1
  AVATAR=$(jq -r '.id // empty' <<<"$BODY")
  upload "$CARA_TOKEN" "$TMP/voice.wav" audio/wav
  status_is 201 || return 1
  VOICE=$(jq -r '.id // empty' <<<"$BODY")
}
check "PNG and WAV uploads answer 201 with their sha256" fresh_inputs

# --- image ----------------------------------------------------------------
P_IMG="a studio photo of a red bicycle bell $RUN"
req POST /v1/jobs "$CARA_TOKEN" "$(jq -nc --arg p "$P_IMG" '{kind:"image",input:{prompt:$p,aspect_ratio:"1:1"}}')"
check "image job accepted, price 2" eval 'status_is 202 && jqt ".cost.price == 2"'
JOB=$(jq -r '.id // empty' <<<"$BODY")
check "image job finishes" poll_job "$CARA_TOKEN" "$JOB"
check "image job succeeded with one image asset, captured 2" jqt \
  '.status == "succeeded" and .cost == {price: 2, held: 0, captured: 2, released: 0}
   and (.output.assets | length == 1) and (.output.assets[0].kind == "image")
   and (.output.assets[0].content_type | startswith("image/"))'
check "image asset downloads for its owner only" assets_ok "$CARA_TOKEN"
check "the simulator saw one image create for it" [ "$(sim_count luma creates_by_prompt "$P_IMG")" -eq 1 ]

# --- video ----------------------------------------------------------------
P_VID="a slow pan over a workshop bench $RUN"
req POST /v1/jobs "$CARA_TOKEN" "$(jq -nc --arg p "$P_VID" '{kind:"video",input:{prompt:$p,duration:"5s"}}')"
JOB=$(jq -r '.id // empty' <<<"$BODY")
check "video job finishes" poll_job "$CARA_TOKEN" "$JOB"
check "video job succeeded with an MP4, captured 10, step progress 1" jqt \
  '.status == "succeeded" and .cost.captured == 10 and .cost.held == 0
   and .output.assets[0].content_type == "video/mp4" and .steps[0].progress == 1
   and (.steps[0].provider_ref | type == "string")'
check "video asset downloads for its owner only" assets_ok "$CARA_TOKEN"
check "the simulator saw one video create for it" [ "$(sim_count luma creates_by_prompt "$P_VID")" -eq 1 ]

# --- lipsync --------------------------------------------------------------
req POST /v1/jobs "$DAN_TOKEN" "$(jq -nc --arg a "$AVATAR" --arg v "$VOICE" '{kind:"lipsync",input:{image_upload_id:$a,audio_upload_id:$v}}')"
check "another user's upload in a job: 400 naming the field" eval \
  'status_is 400 && jqt ".error.message | contains(\"image_upload_id\")"'
req POST /v1/jobs "$CARA_TOKEN" "$(jq -nc --arg a "$AVATAR" --arg v "$VOICE" '{kind:"lipsync",input:{image_upload_id:$a,audio_upload_id:$v}}')"
check "lipsync job accepted, price 8" eval 'status_is 202 && jqt ".cost.price == 8"'
JOB=$(jq -r '.id // empty' <<<"$BODY")
check "lipsync job finishes" poll_job "$CARA_TOKEN" "$JOB"
check "lipsync job succeeded with an MP4, captured 8" jqt \
  '.status == "succeeded" and .cost.captured == 8 and .output.assets[0].content_type == "video/mp4"'
check "lipsync asset downloads for its owner only" assets_ok "$CARA_TOKEN"
check "the simulator saw one Hedra create for its key" \
  [ "$(sim_count hedra creates_by_idempotency_key "$JOB:lipsync")" -eq 1 ]
req POST /v1/jobs "$CARA_TOKEN" "$(jq -nc --arg v "$VOICE" --arg a "$JOB" '{kind:"lipsync",input:{video_asset_id:$a,audio_upload_id:$v}}')"
check "lip-sync of a video asset: 400 naming video_asset_id" eval \
  'status_is 400 && jqt ".error.message | startswith(\"input.video_asset_id\")"'
STORE=${GENQ_STORAGE#file://}
swept() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ ! -e $STORE/uploads/$AVATAR && ! -e $STORE/uploads/$VOICE ]] && return 0
    sleep 0.2
  done
  return 1
}
check "the finished job's uploads are deleted from storage" swept
req POST /v1/jobs "$CARA_TOKEN" "$(jq -nc --arg a "$AVATAR" --arg v "$VOICE" '{kind:"lipsync",input:{image_upload_id:$a,audio_upload_id:$v}}')"
check "a deleted upload in a new job: 400 saying it expired" eval \
  'status_is 400 && jqt ".error.message | contains(\"expired\")"'

# --- campaign -------------------------------------------------------------
check "fresh uploads for the campaign" fresh_inputs
P_CAMP="a 15 second campaign for a neighbourhood bakery $RUN"
t0=$(date +%s.%N)
req POST /v1/jobs "$CARA_TOKEN" "$(jq -nc --arg p "$P_CAMP" --arg a "$AVATAR" --arg v "$VOICE" \
  '{kind:"campaign",input:{prompt:$p,scenes:3,avatar_upload_id:$a,voice_upload_id:$v}}')"
check "campaign accepted, price 1 + 3*10 + 8 = 39" eval 'status_is 202 && jqt ".cost.price == 39 and .cost.held == 39"'
CAMP=$(jq -r '.id // empty' <<<"$BODY")
check "campaign finishes" poll_job "$CARA_TOKEN" "$CAMP"
t1=$(date +%s.%N)
echo "       campaign wall time: $(echo "$t1 - $t0" | bc 2>/dev/null || echo "?") s"
check "campaign succeeded: storyboard, 3 clips, 1 lip-sync video; captured exactly 39" jqt \
  '.status == "succeeded" and .cost == {price: 39, held: 0, captured: 39, released: 0}
   and (.output.storyboard.scenes | length == 3)
   and ([.output.assets[] | select(.step | startswith("video_"))] | length == 3)
   and ([.output.assets[] | select(.step == "lipsync")] | length == 1)
   and all(.output.assets[]; .content_type == "video/mp4")
   and all(.steps[]; .status == "succeeded")'
check "campaign assets download for their owner only" assets_ok "$CARA_TOKEN"
CAMP_JOB=$BODY
vcreates=0
for s in 0 1 2; do
  vp=$(jq -r ".output.storyboard.scenes[$s].visual_prompt" <<<"$CAMP_JOB")
  vcreates=$((vcreates + $(sim_count luma creates_by_prompt "$vp")))
done
check "the simulator saw exactly one create per video scene (3)" [ "$vcreates" -eq 3 ]
check "and exactly one Hedra create for the lip-sync step" \
  [ "$(sim_count hedra creates_by_idempotency_key "$CAMP:lipsync")" -eq 1 ]
captures=$(psql "$GENQ_DATABASE_URL" -Atc "select string_agg((-balance_delta)::text, ',' order by idem_key)
  from ledger where job_id = '$CAMP' and movement = 'capture'")
check "the ledger has one capture per step: 1, 10, 10, 10, 8 ($captures)" \
  [ "$captures" == "8,1,10,10,10" ]

# --- cancel in the middle of a campaign ------------------------------------
check "fresh uploads for the canceled campaign" fresh_inputs
P_SLOW="provsim:slow campaign for a hardware store $RUN"
req POST /v1/jobs "$CARA_TOKEN" "$(jq -nc --arg p "$P_SLOW" --arg a "$AVATAR" --arg v "$VOICE" \
  '{kind:"campaign",input:{prompt:$p,scenes:3,avatar_upload_id:$a,voice_upload_id:$v}}')"
SLOW=$(jq -r '.id // empty' <<<"$BODY")
videos_running() {
  local i
  for ((i = 0; i < 300; i++)); do
    req GET "/v1/jobs/$SLOW" "$CARA_TOKEN"
    jqt '[.steps[] | select(.name | startswith("video_")) | select(.status == "running" and .provider_ref != null)] | length == 3' && return 0
    jqt '.status | IN("succeeded", "failed", "canceled")' && return 1
    sleep 0.1
  done
  return 1
}
check "the slow campaign's three videos are generating" videos_running
req POST "/v1/jobs/$SLOW/cancel" "$DAN_TOKEN"
check "another user cannot cancel it (404)" error_is 404 not_found
req POST "/v1/jobs/$SLOW/cancel" "$CARA_TOKEN"
check "cancel answers 200 with status canceled" eval 'status_is 200 && jqt ".status == \"canceled\""'
check "canceled: nothing held, the storyboard and the three created generations captured (1 + 30), the lip-sync released (8)" jqt \
  '.cost.held == 0 and .cost.captured == 31 and .cost.released == 8
   and all(.steps[] | select(.name != "storyboard"); .status == "canceled")'
kept() { # the canceled campaign's three generations are still at the simulator
  local ref n=0
  sleep 1
  for ref in $(jq -r '.steps[] | select(.name | startswith("video_")) | .provider_ref' <<<"$BODY"); do
    [[ $(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${LUMA_API_KEY:-e2e}" \
      "$SIM/luma/dream-machine/v1/generations/$ref") == 200 ]] && n=$((n + 1))
  done
  ((n == 3))
}
check "Luma is not asked to delete the three generations the user paid for" kept
req GET "/v1/jobs/$SLOW" "$CARA_TOKEN"
check "the canceled job stays canceled" jqt '.status == "canceled" and .cost.held == 0'
check "cara's credits: 200 - 2 - 10 - 8 - 39 - 31 captured, nothing held" credits_are "$CARA_TOKEN" 110 0
check "genqctl audit is clean" "$GENQCTL" audit

finish
