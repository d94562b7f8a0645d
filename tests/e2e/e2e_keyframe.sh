#!/usr/bin/env bash
# End to end: a video job's keyframe reaches Luma as a signed URL of
# genq-api (GET /v1/uploads/{id}/content), through a running stack
# (genq-api, two genq-worker, genq-provsim's Luma, Redis, PostgreSQL).
#
# The URL is read back from the simulator (the request Luma received), then
# fetched like a provider would: without a token. It serves the upload's
# exact bytes while the job runs; any changed byte of it answers 404; once
# the job is over and the sweep deleted the upload it answers 404 too.
# Submitting another user's upload or an audio upload as keyframe is 400.
#
# Needs GENQ_API_URL, GENQCTL and the stack's variables (scripts/test sets
# GENQ_SWEEP_INTERVAL_MS=500 and PROVSIM_LUMA_VIDEO_MS=1500, so a
# "provsim:slow" video takes 15 s).
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

. "$(dirname "$0")/helpers.bash"
: "${LUMA_BASE_URL:?LUMA_BASE_URL must be set}" "${LUMA_API_KEY:?LUMA_API_KEY must be set}"
: "${GENQ_PUBLIC_URL:?GENQ_PUBLIC_URL must be set}"
: "${GENQ_URL_SIGNING_KEY:?GENQ_URL_SIGNING_KEY must be set}"
BIN=$(dirname "$GENQCTL")
PUBLIC=${GENQ_PUBLIC_URL%/}

RUN=$$-$RANDOM
ERIN=e2e-erin-$RUN FRED=e2e-fred-$RUN
check "genqctl grants erin 100 credits" "$GENQCTL" credits grant "$ERIN" 100 --key "e2e:$ERIN"
check "genqctl grants fred 20 credits" "$GENQCTL" credits grant "$FRED" 20 --key "e2e:$FRED"
ERIN_TOKEN=$("$GENQCTL" token --user "$ERIN" | tr -d '[:space:]')
FRED_TOKEN=$("$GENQCTL" token --user "$FRED" | tr -d '[:space:]')

# --- configuration ---------------------------------------------------------
# refuses NAME CMD...: CMD exits non-zero within 10 s and its stderr names NAME.
refuses() {
  local name=$1 rc=0
  shift
  (cd "$TMP" && timeout 10 "$@") >"$TMP/out" 2>"$TMP/err" || rc=$?
  STATUS="exit $rc" BODY=$(cat "$TMP/err")
  ((rc != 0 && rc != 124)) && grep -q -- "$name" "$TMP/err"
}
check "genq-api: a GENQ_URL_SIGNING_KEY under 32 bytes is named" \
  refuses GENQ_URL_SIGNING_KEY env GENQ_URL_SIGNING_KEY=0123456789abcdef0123456789abcde "$BIN/genq-api"
check "genq-worker: a GENQ_URL_SIGNING_KEY under 32 bytes is named" \
  refuses GENQ_URL_SIGNING_KEY env GENQ_URL_SIGNING_KEY=short "$BIN/genq-worker"
check "genq-worker: a GENQ_PUBLIC_URL that is not http(s) is named" \
  refuses GENQ_PUBLIC_URL env GENQ_PUBLIC_URL=ftp://genq.example "$BIN/genq-worker"

# --- inputs ----------------------------------------------------------------
# A 2x2 RGB PNG and one second of 8 kHz 8-bit WAV.
base64 -d >"$TMP/frame.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFUlEQVR4nGM4oaGhcUKDAUh8+KABACFWBVETkkv/AAAAAElFTkSuQmCC'
cp "$TMP/frame.png" "$TMP/other.png"
printf 'genq' >>"$TMP/other.png" # other bytes, still a PNG by its signature
{
  printf 'RIFF\x64\x1f\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00data\x40\x1f\x00\x00'
  head -c 8000 /dev/zero | tr '\0' '\200'
} >"$TMP/voice.wav"
FRAME_SHA=$(sha256sum <"$TMP/frame.png" | cut -d' ' -f1)
FRAME_BYTES=$(stat -c %s "$TMP/frame.png")

upload() { # TOKEN FILE TYPE → sets STATUS, BODY, UPLOAD (the id)
  : >"$TMP/headers"
  STATUS=$(curl -sS --max-time 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
    -H "Authorization: Bearer $1" -H "Content-Type: $3" --data-binary "@$2" "$API/v1/uploads") &&
    api_record POST /v1/uploads
  BODY=$(cat "$TMP/body")
  UPLOAD=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
  [[ $STATUS == 201 && -n $UPLOAD ]]
}

# fetch URL [curl args...]: the URL as a provider fetches it (no token).
# Sets STATUS; the bytes go to $TMP/got, headers to $TMP/headers; BODY is
# set only for error answers (JSON).
fetch() {
  local url=$1 method=GET a prev="" got=$TMP/got
  shift
  for a in "$@"; do # the method, for the record
    [[ $a == -I || $a == --head ]] && method=HEAD got=/dev/null
    [[ $prev == -X ]] && method=$a
    prev=$a
  done
  : >"$TMP/got"
  : >"$TMP/headers"
  BODY=""
  if STATUS=$(curl -sS --max-time 10 -o "$TMP/got" -D "$TMP/headers" -w '%{http_code}' "$@" "$url" \
    2>"$TMP/curl.err"); then
    api_record "$method" "$url" "$TMP/headers" "$got"
  else
    STATUS="curl-error: $(cat "$TMP/curl.err")"
  fi
  RESPONSES=$((RESPONSES + 1))
  grep -qiE '^x-request-id: *[^[:space:]]+' "$TMP/headers" || NO_REQUEST_ID=$((NO_REQUEST_ID + 1))
  [[ $STATUS == 200 ]] || BODY=$(cat "$TMP/got")
  cp "$TMP/got" "$TMP/body"
}
# fetch_404 URL: 404 with the same error as any unknown upload (never says why).
fetch_404() {
  fetch "$1"
  error_is 404 not_found && jqt '.error.message == "no such upload"'
}
# The signature the test computes on its own from the shared key.
sign() { printf 'upload:%s:%s' "$1" "$2" | openssl dgst -sha256 -hmac "$GENQ_URL_SIGNING_KEY" -r | cut -d' ' -f1; }
content_url() { echo "$PUBLIC/v1/uploads/$1/content?expires=$2&sig=$3"; }

# luma_request REF: the body Luma received for generation REF, from the simulator.
luma_request() {
  curl -sS --max-time 5 -H "Authorization: Bearer $LUMA_API_KEY" "${LUMA_BASE_URL%/}/generations/$1" |
    jq -c '.request // empty'
}
# keyframe_url_of REF UPLOAD: sets KF_URL to keyframes.frame0.url of REF's
# request, and checks it is an image keyframe pointing at UPLOAD on genq-api.
keyframe_url_of() {
  local req
  req=$(luma_request "$1")
  KF_URL=$(jq -r '.keyframes.frame0.url // empty' <<<"$req")
  jq -e --arg p "$PUBLIC/v1/uploads/$2/content?expires=" \
    '.keyframes.frame0.type == "image" and (.keyframes.frame0.url | startswith($p))' <<<"$req" >/dev/null
}
# url_parts URL: EXP and SIG of a content URL.
url_parts() {
  EXP=$(sed -nE 's/.*[?&]expires=([0-9]+).*/\1/p' <<<"$1")
  SIG=$(sed -nE 's/.*[?&]sig=([0-9a-f]+).*/\1/p' <<<"$1")
  [[ -n $EXP && -n $SIG ]]
}
# served_as_upload: the last fetch was 200 with the frame's bytes and headers.
served_as_upload() {
  status_is 200 && header_is Content-Type image/png &&
    header_is Cache-Control "private, max-age=300" && header_is X-Content-Type-Options nosniff &&
    [[ $(sha256sum <"$TMP/got" | cut -d' ' -f1) == "$FRAME_SHA" ]]
}
# gone_within SECONDS URL: the URL answers 404 within SECONDS (the sweep).
gone_within() {
  local i
  for ((i = 0; i < $1 * 5; i++)); do
    fetch "$2"
    status_is 404 && return 0
    sleep 0.2
  done
  return 1
}

check "erin uploads a PNG for the finished video" upload "$ERIN_TOKEN" "$TMP/frame.png" image/png
KF_DONE=$UPLOAD
check "erin uploads a PNG for the slow video" upload "$ERIN_TOKEN" "$TMP/frame.png" image/png
KF_SLOW=$UPLOAD
check "erin uploads another PNG that no job uses" upload "$ERIN_TOKEN" "$TMP/other.png" image/png
KF_IDLE=$UPLOAD
check "erin uploads a WAV" upload "$ERIN_TOKEN" "$TMP/voice.wav" audio/wav
WAV=$UPLOAD

# --- a video with a keyframe, to the end ------------------------------------
P_DONE="a paper boat drifting from this first frame $RUN"
req POST /v1/jobs "$ERIN_TOKEN" "$(jq -nc --arg p "$P_DONE" --arg k "$KF_DONE" \
  '{kind:"video",input:{prompt:$p,duration:"5s",keyframe_upload_id:$k}}')"
check "video job with keyframe_upload_id accepted, price 10" eval 'status_is 202 && jqt ".cost.price == 10"'
JOB=$(jq -r '.id // empty' <<<"$BODY")
check "video job with a keyframe finishes" poll_job "$ERIN_TOKEN" "$JOB"
check "video job with a keyframe succeeded with an MP4, captured 10" jqt \
  '.status == "succeeded" and .cost.captured == 10 and .output.assets[0].content_type == "video/mp4"
   and (.steps[0].provider_ref | type == "string")'
REF=$(jq -r '.steps[0].provider_ref // empty' <<<"$BODY")
check "Luma got keyframes.frame0 {type: image, url: genq-api's content URL of the upload}" \
  keyframe_url_of "$REF" "$KF_DONE"
DONE_URL=$KF_URL
signed_by_worker() {
  url_parts "$DONE_URL" && [[ $SIG == "$(sign "$KF_DONE" "$EXP")" ]] &&
    ((EXP > $(date +%s) + 3000 && EXP <= $(date +%s) + 3600))
}
check "its sig is HMAC-SHA256(key, upload:<id>:<expires>), expiring in about an hour" signed_by_worker
check "once the job is over and swept, its keyframe URL answers 404" gone_within 30 "$DONE_URL"
check "and that 404 is the same as for any bad URL" fetch_404 "$DONE_URL"

# --- a slow video: the URL while Luma works ---------------------------------
P_SLOW="provsim:slow a kite rising from this first frame $RUN"
req POST /v1/jobs "$ERIN_TOKEN" "$(jq -nc --arg p "$P_SLOW" --arg k "$KF_SLOW" \
  '{kind:"video",input:{prompt:$p,keyframe_upload_id:$k}}')"
check "slow video job with a keyframe accepted" status_is 202
SLOW=$(jq -r '.id // empty' <<<"$BODY")
generating() { # until the step has its generation id (or the job ended)
  local i
  [[ -n $SLOW ]] || return 1
  for ((i = 0; i < 300; i++)); do
    req GET "/v1/jobs/$SLOW" "$ERIN_TOKEN"
    SLOW_REF=$(jq -r '.steps[0].provider_ref // empty' <<<"$BODY" 2>/dev/null)
    [[ -n $SLOW_REF ]] && jqt '.status == "running"' && return 0
    jqt '.status | IN("succeeded", "failed", "canceled")' && return 1
    sleep 0.1
  done
  return 1
}
SLOW_REF=""
check "the slow video is generating at the simulator" generating
check "Luma got the slow video's keyframe URL" keyframe_url_of "$SLOW_REF" "$KF_SLOW"
URL=$KF_URL
url_parts "$URL"
serves() { fetch "$@" && served_as_upload; }
head_ok() {
  fetch "$1" -I && status_is 200 && header_is Content-Length "$FRAME_BYTES" &&
    header_is Content-Type image/png
}
check "while the job runs, the URL serves the upload without a token: 200, same bytes (sha256), image/png, private max-age=300, nosniff" \
  serves "$URL"
check "HEAD on it: 200 with the upload's length and type" head_ok "$URL"
check "a bearer token changes nothing (200)" serves "$URL" -H "Authorization: Bearer $FRED_TOKEN"

# One hex digit of the signature changed.
last=${SIG: -1}
[[ $last == 0 ]] && flip=1 || flip=0
check "the same URL with one sig digit changed: 404" fetch_404 "$(content_url "$KF_SLOW" "$EXP" "${SIG:0:63}$flip")"
check "with the first sig digit changed: 404" \
  fetch_404 "$(content_url "$KF_SLOW" "$EXP" "$([[ ${SIG:0:1} == a ]] && echo b || echo a)${SIG:1}")"
check "with expires one second later: 404" fetch_404 "$(content_url "$KF_SLOW" "$((EXP + 1))" "$SIG")"
check "with expires one second earlier: 404" fetch_404 "$(content_url "$KF_SLOW" "$((EXP - 1))" "$SIG")"
check "with expires spelled with a leading zero: 404" fetch_404 "$(content_url "$KF_SLOW" "0$EXP" "$SIG")"
check "with the sig in capitals: 404" fetch_404 "$(content_url "$KF_SLOW" "$EXP" "${SIG^^}")"
check "without sig: 404" fetch_404 "$PUBLIC/v1/uploads/$KF_SLOW/content?expires=$EXP"
check "without expires: 404" fetch_404 "$PUBLIC/v1/uploads/$KF_SLOW/content?sig=$SIG"
check "without a query: 404" fetch_404 "$PUBLIC/v1/uploads/$KF_SLOW/content"
check "another upload's id with this signature: 404" fetch_404 "$(content_url "$KF_IDLE" "$EXP" "$SIG")"
check "a made-up id with this signature: 404" \
  fetch_404 "$(content_url 00000000-0000-4000-8000-000000000000 "$EXP" "$SIG")"
# Correctly signed with the shared key, but outside the time window.
now=$(date +%s)
check "a correctly signed URL that expired: 404" \
  fetch_404 "$(content_url "$KF_SLOW" "$((now - 5))" "$(sign "$KF_SLOW" "$((now - 5))")")"
check "a correctly signed URL expiring 25 h ahead: 404" \
  fetch_404 "$(content_url "$KF_SLOW" "$((now + 90000))" "$(sign "$KF_SLOW" "$((now + 90000))")")"
# The idle upload is live: only a signature of its own opens it.
idle_opens() {
  fetch "$(content_url "$KF_IDLE" "$EXP" "$(sign "$KF_IDLE" "$EXP")")" && status_is 200 &&
    cmp -s "$TMP/got" "$TMP/other.png"
}
check "the other upload with a signature of its own: 200 with its bytes" idle_opens
check "POST on the content URL: 405" eval 'fetch "$URL" -X POST && status_is 405'
check "the URL still serves the upload just before cancel" serves "$URL"

req POST "/v1/jobs/$SLOW/cancel" "$ERIN_TOKEN"
check "cancel the slow video: 200 canceled" eval 'status_is 200 && jqt ".status == \"canceled\""'
check "after cancel, the sweep deletes the upload and the URL answers 404 (within 30 s)" \
  gone_within 30 "$URL"
check "and it stays the same 404" fetch_404 "$URL"

# --- keyframes the API refuses at submit ------------------------------------
req POST /v1/jobs "$FRED_TOKEN" "$(jq -nc --arg k "$KF_IDLE" \
  '{kind:"video",input:{prompt:"a keyframe that is not mine",keyframe_upload_id:$k}}')"
check "another user's upload as keyframe: 400 naming keyframe_upload_id" eval \
  'error_is 400 "*" && jqt ".error.message | contains(\"keyframe_upload_id\")"'
req POST /v1/jobs "$ERIN_TOKEN" "$(jq -nc --arg k "$WAV" \
  '{kind:"video",input:{prompt:"a keyframe that is a sound",keyframe_upload_id:$k}}')"
check "an audio upload as keyframe: 400 naming keyframe_upload_id" eval \
  'error_is 400 "*" && jqt ".error.message | contains(\"keyframe_upload_id\")"'
check "erin's credits: 100 - 10 - 10 (the canceled slow video's generation was created) captured, nothing held" \
  credits_are "$ERIN_TOKEN" 80 0
check "fred's credits untouched" credits_are "$FRED_TOKEN" 20 0

finish
