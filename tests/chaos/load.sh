#!/usr/bin/env bash
# The chaos test's load (tests/chaos/chaos.sh starts it; not meant to be run
# by hand): NJOBS jobs of every kind spread over SECONDS, from the users whose
# tokens are in TOKENS (one a line), while chaos.sh kills and restarts things.
#
#   load.sh API_URL TOKENS OUT NJOBS SECONDS SEED PREFIX [FIRST]
#
# Jobs are numbered FIRST (default 1) on; SECONDS 0 sends them all at once
# (a burst). LOAD_KINDS (space-separated) overrides the mix of kinds, and
# LOAD_CANCELS=0 sends no cancel.
#
# Every job carries a prompt that starts with "PREFIX-<n>", so that the
# simulator's per-prompt counts map to exactly one job (a campaign's scene
# prompts are made from the first 60 characters of its prompt). lipsync and
# campaign jobs upload a fresh PNG and WAV first. A submit that meets a 5xx or
# a broken connection (the database or Redis restarting) is sent again with
# the same body and Idempotency-Key, for up to SUBMIT_TRY_S seconds; a few
# jobs are canceled a moment after they were accepted.
#
# Writes one JSON line per job to OUT: {n, user, kind, prompt, id, http,
# accepted, cancel, cancel_http}; a job that was never accepted has id null.
# Bounded: it ends after the last job, whatever the answers.
set -uo pipefail

API=${1:?API_URL} TOKENS=${2:?TOKENS} OUT=${3:?OUT} NJOBS=${4:?NJOBS} SECS=${5:?SECONDS}
SEED=${6:?SEED} PREFIX=${7:?PREFIX} FIRST=${8:-1}
SUBMIT_TRY_S=${SUBMIT_TRY_S:-45}
RANDOM=$SEED

mapfile -t TOKEN <"$TOKENS"
((${#TOKEN[@]} > 0)) || {
  echo "load: no tokens in $TOKENS" >&2
  exit 2
}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# tiny valid inputs: a 1x1 PNG and one second of 8 kHz 8-bit WAV
base64 -d >"$TMP/avatar.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
{
  printf 'RIFF\x64\x1f\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00data\x40\x1f\x00\x00'
  head -c 8000 /dev/zero | tr '\0' '\200'
} >"$TMP/voice.wav"

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
T0=$(now_ms)

# http METHOD PATH TOKEN [curl args...]: sets CODE (000 when no answer) and BODY.
CODE="" BODY=""
http() {
  local method=$1 path=$2 token=$3
  shift 3
  : >"$TMP/body"
  CODE=$(curl -sS --max-time 10 -X "$method" -o "$TMP/body" -w '%{http_code}' \
    -H "Authorization: Bearer $token" "$@" "$API$path" 2>/dev/null) || true
  [[ $CODE =~ ^[0-9]{3}$ ]] || CODE=000
  BODY=$(cat "$TMP/body")
}
# Worth sending again: no answer, a 5xx, or 429.
transient() { [[ $CODE == 000 || $CODE == 429 || $CODE == 5* ]]; }

# upload TOKEN FILE TYPE: prints the new upload's id; empty after
# SUBMIT_TRY_S seconds of failures. An upload sent twice is harmless.
upload() {
  local end=$(($(now_ms) + SUBMIT_TRY_S * 1000)) id
  while :; do
    http POST /v1/uploads "$1" -H "Content-Type: $3" --data-binary "@$2"
    if [[ $CODE == 201 ]]; then
      id=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
      echo "$id"
      return 0
    fi
    if ! transient || (($(now_ms) >= end)); then return 0; fi
    sleep 1
  done
}

# input_for N KIND TOKEN: prints the job's input JSON (uploads made here).
input_for() {
  local n=$1 kind=$2 token=$3 p img voice
  p="$PREFIX-$n"
  case $kind in
  storyboard)
    jq -nc --arg p "$p a storyboard for a corner bakery" --argjson s $((1 + RANDOM % 4)) \
      '{prompt:$p,scenes:$s}'
    ;;
  image)
    jq -nc --arg p "$p a studio photo of a brass door knob" '{prompt:$p,aspect_ratio:"1:1"}'
    ;;
  video)
    jq -nc --arg p "$p a slow pan over a harbour at dawn" '{prompt:$p,duration:"5s"}'
    ;;
  lipsync)
    img=$(upload "$token" "$TMP/avatar.png" image/png)
    voice=$(upload "$token" "$TMP/voice.wav" audio/wav)
    [[ -n $img && -n $voice ]] || return 1
    jq -nc --arg i "$img" --arg v "$voice" '{image_upload_id:$i,audio_upload_id:$v}'
    ;;
  campaign)
    img=$(upload "$token" "$TMP/avatar.png" image/png)
    voice=$(upload "$token" "$TMP/voice.wav" audio/wav)
    [[ -n $img && -n $voice ]] || return 1
    jq -nc --arg p "$p a campaign for a bicycle shop" --argjson s $((2 + RANDOM % 2)) \
      --arg i "$img" --arg v "$voice" '{prompt:$p,scenes:$s,avatar_upload_id:$i,voice_upload_id:$v}'
    ;;
  esac
}

# Cancels are sent a moment after the submit: queued as (due ms, job, user).
CANCEL_DUE=() CANCEL_JOB=() CANCEL_USER=()
send_due_cancels() {
  local i now end
  now=$(now_ms)
  for i in "${!CANCEL_DUE[@]}"; do
    ((CANCEL_DUE[i] <= now)) || continue
    end=$((now + SUBMIT_TRY_S * 1000))
    while :; do
      http POST "/v1/jobs/${CANCEL_JOB[i]}/cancel" "${TOKEN[CANCEL_USER[i]]}"
      if ! transient || (($(now_ms) >= end)); then break; fi
      sleep 1
    done
    echo "{\"cancel_of\":\"${CANCEL_JOB[i]}\",\"http\":\"$CODE\"}" >>"$OUT.cancels"
    unset "CANCEL_DUE[i]" "CANCEL_JOB[i]" "CANCEL_USER[i]"
  done
}

read -r -a KINDS <<<"${LOAD_KINDS:-storyboard image image video video lipsync campaign campaign}"
accepted=0 refused=0
for ((k = 0; k < NJOBS; k++)); do
  n=$((FIRST + k))
  # job k is due at k/NJOBS of the way through, with a little jitter
  due=$((T0 + k * SECS * 1000 / NJOBS + (SECS > 0 ? RANDOM % 400 : 0)))
  while (($(now_ms) < due)); do
    send_due_cancels
    sleep 0.1
  done
  u=$((RANDOM % ${#TOKEN[@]}))
  kind=${KINDS[RANDOM % ${#KINDS[@]}]}
  cancel=false
  ((RANDOM % 12 == 0 && ${LOAD_CANCELS:-1})) && cancel=true
  id="" code=000 input=""
  if input=$(input_for "$n" "$kind" "${TOKEN[u]}"); then
    body=$(jq -nc --arg k "$kind" --argjson i "$input" '{kind:$k,input:$i}')
    end=$(($(now_ms) + SUBMIT_TRY_S * 1000))
    while :; do
      http POST /v1/jobs "${TOKEN[u]}" -H 'Content-Type: application/json' \
        -H "Idempotency-Key: $PREFIX-$n" --data-binary "$body"
      if [[ $CODE == 200 || $CODE == 201 || $CODE == 202 ]]; then
        id=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
        break
      fi
      if ! transient || (($(now_ms) >= end)); then break; fi
      sleep 1
    done
    code=$CODE
  else
    code=upload-failed
  fi
  prompt=""
  [[ -n $input ]] && prompt=$(jq -r '.prompt // ""' <<<"$input" 2>/dev/null)
  if [[ -n $id ]]; then
    accepted=$((accepted + 1))
    if [[ $cancel == true ]]; then
      CANCEL_DUE+=($(($(now_ms) + 300 + RANDOM % 3000)))
      CANCEL_JOB+=("$id")
      CANCEL_USER+=("$u")
    fi
  else
    refused=$((refused + 1))
    cancel=false
  fi
  jq -nc --argjson n "$n" --argjson u "$u" --arg k "$kind" --arg p "$prompt" --arg id "$id" \
    --arg h "$code" --argjson c "$cancel" \
    '{n:$n,user:$u,kind:$k,prompt:$p,id:(if $id == "" then null else $id end),http:$h,
      accepted:($id != ""),cancel:$c}' >>"$OUT"
done
# the last cancels
while ((${#CANCEL_DUE[@]})); do
  send_due_cancels
  sleep 0.1
done
echo "load: $accepted jobs accepted, $refused never accepted, in $((($(now_ms) - T0) / 1000)) s"
