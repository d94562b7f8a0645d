#!/usr/bin/env bash
# End to end: genq-provsim's Luma AI and Hedra v3 wire formats over real HTTP
# (PROVIDERS.md): validation errors, state progression, downloads of valid
# media, idempotency, delete, test hooks, stats and reset.
#
# Starts its own simulator on a free loopback port, with short durations and
# counters nobody else touches: $PROVSIM_BIN, else $GENQ_BUILD_DIR/genq-provsim
# (scripts/test exports GENQ_BUILD_DIR). Prints one line per check and, last,
# "e2e-summary: passed=N failed=M"; exits non-zero on any failure.
# shellcheck disable=SC2016,SC2034 # single quotes hold jq variables and eval'd checks
set -uo pipefail

# This script talks only to its own simulator; helpers.bash insists on the
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
PORT=""
genq_free_port PORT
SIMLOG=$TMP/provsim.log
# Durations short enough to keep this fast. The checks of a job while it
# runs come right after its create: the Hedra job gets 3 s of margin, and
# Luma's are made on a provsim:slow generation (15 s).
genq_start provsim "$SIMLOG" env GENQ_PROVSIM_LISTEN="127.0.0.1:$PORT" GENQ_LOG_LEVEL=info \
  PROVSIM_OPENAI_LATENCY_MS=0 PROVSIM_LUMA_VIDEO_MS=1500 PROVSIM_LUMA_IMAGE_MS=1000 \
  PROVSIM_HEDRA_MS=3000 "$BIN"
SIM_PID=$GENQ_LAST_PID
genq_wait_for "$SIM_PID" 30 curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz"
SIM=http://127.0.0.1:$PORT
LUMA=$SIM/luma/dream-machine/v1
HEDRA=$SIM/hedra/v3
LUMA_AUTH="Authorization: Bearer luma-e2e-key"
HEDRA_AUTH="Authorization: Key hedra-e2e:secret"
RUN=$$-$RANDOM

# sreq METHOD URL AUTH [curl args...]: like req in helpers.bash, for any URL
# and header; AUTH "-" sends no Authorization. Sets STATUS and BODY. With
# SREQ_OUT set, the body goes to that file instead (BODY stays empty).
sreq() {
  local method=$1 url=$2 auth=$3 args=() out=${SREQ_OUT:-$TMP/body}
  shift 3
  [[ $auth != - ]] && args+=(-H "$auth")
  : >"$TMP/body"
  : >"$TMP/headers"
  STATUS=$(curl -sS --max-time 30 -X "$method" -o "$out" -D "$TMP/headers" \
    -w '%{http_code}' "${args[@]}" "$@" "$url" 2>"$TMP/curl.err") || STATUS="curl-error: $(cat "$TMP/curl.err")"
  BODY=$(cat "$TMP/body")
  RESPONSES=$((RESPONSES + 1))
  if ! grep -qiE '^x-request-id: *[^[:space:]]+' "$TMP/headers"; then
    NO_REQUEST_ID=$((NO_REQUEST_ID + 1))
    echo "       (no X-Request-Id on $method $url)"
  fi
}
# JSON body helpers
luma_post() { sreq POST "$LUMA$1" "$LUMA_AUTH" -H 'Content-Type: application/json' --data-binary "$2"; }
luma_get() { sreq GET "$LUMA$1" "$LUMA_AUTH"; }
hedra_post() { sreq POST "$HEDRA$1" "$HEDRA_AUTH" -H 'Content-Type: application/json' --data-binary "$2"; }
hedra_get() { sreq GET "$HEDRA$1" "$HEDRA_AUTH"; }
detail_is() { status_is "$1" && jqt '.detail | type == "string" and length > 0'; }
detail_has() { detail_is "$1" && jqt '.detail | contains($w)' --arg w "$2"; }
# hedra_error STATUS CODE RETRYABLE: Hedra's {"error":{code,message,retryable,retry_after}}
hedra_error() {
  status_is "$1" && jqt '.error.code == $c and (.error.message | type == "string" and length > 0)
    and .error.retryable == $r and (.error | has("retry_after"))' --arg c "$2" --argjson r "$3"
}
stats() { sreq GET "$SIM/_sim/stats" -; }
header_has() { tr -d '\r' <"$TMP/headers" | grep -qiE "^$1: $2\$"; }
field() { jq -r "$1 // empty" <<<"$BODY" 2>/dev/null; }

# download URL TYPE: fetches into $TMP/dl; true when 200 with that
# Content-Type and a Content-Length equal to the bytes received.
download() {
  local url=$1 type=$2 len
  SREQ_OUT=$TMP/dl sreq GET "$url" -
  len=$(tr -d '\r' <"$TMP/headers" | awk -F': ' 'tolower($1) == "content-length" {print $2}')
  status_is 200 && header_has Content-Type "$type" && [[ $len == "$(wc -c <"$TMP/dl")" ]]
}
# hex FILE OFFSET COUNT: the bytes as lowercase hex, no spaces.
hex() { od -An -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }
is_png() { [[ $(hex "$1" 0 8) == 89504e470d0a1a0a ]]; }
is_jpeg() { [[ $(hex "$1" 0 3) == ffd8ff && $(tail -c 2 "$1" | od -An -tx1 | tr -d ' \n') == ffd9 ]]; }
is_mp4() { [[ $(head -c 12 "$1" | tail -c 8) == ftypisom ]]; }

# poll_luma ID: GETs every 0.1 s, up to 60 s, until completed or failed; sets
# SEEN to the states observed in order (repeats collapsed).
SEEN=""
poll_luma() {
  local i s
  SEEN=""
  for ((i = 0; i < 600; i++)); do
    luma_get "/generations/$1"
    s=$(field .state)
    [[ $SEEN == *"$s" ]] || SEEN+="${SEEN:+ }$s"
    [[ $s == completed || $s == failed ]] && return 0
    status_is 200 || return 1
    sleep 0.1
  done
  return 1
}
poll_hedra() {
  local i s
  SEEN=""
  for ((i = 0; i < 600; i++)); do
    hedra_get "/jobs/$1/status"
    s=$(field .status)
    [[ $SEEN == *"$s" ]] || SEEN+="${SEEN:+ }$s"
    [[ $s == COMPLETED || $s == FAILED ]] && return 0
    status_is 200 || return 1
    sleep 0.1
  done
  return 1
}
# The states seen are a prefix-ordered walk of the given sequence.
states_in_order() {
  local want=" $1 " s pos=0 idx
  for s in $SEEN; do
    idx=${want%% "$s" *}
    [[ $idx == "$want" ]] && return 1 # not a known state
    idx=${#idx}
    ((idx >= pos)) || return 1
    pos=$idx
  done
}

UUID4='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
RFC3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'

# --- stats shape and reset ------------------------------------------------
sreq POST "$SIM/_sim/reset" -
check "POST /_sim/reset answers 200" status_is 200
stats
check "stats: luma and hedra counters present and zero" jqt \
  '.luma == {"creates":0,"creates_by_prompt":{},"deletes":0,"gets":0,"callbacks":0,
             "callback_failures":0,"callbacks_refused":0,"rate_limited":0,"in_flight":0,
             "in_flight_peak":0}
   and .hedra == {"files":0,"creates":0,"creates_by_idempotency_key":{},"jobs_started":0,"in_flight":0,
             "in_flight_peak":0}'

# --- Luma: authentication and validation ----------------------------------
VIDEO='{"model":"ray-2","prompt":"a lighthouse at dusk '$RUN'","aspect_ratio":"16:9","duration":"5s","resolution":"720p","loop":false}'
sreq POST "$LUMA/generations/video" - -H 'Content-Type: application/json' --data-binary "$VIDEO"
check "luma: no Authorization is 401 with a detail" detail_is 401
sreq POST "$LUMA/generations/video" "$HEDRA_AUTH" -H 'Content-Type: application/json' --data-binary "$VIDEO"
check "luma: a non-Bearer Authorization is 401" detail_is 401
bad_video() { # NAME JQ-EDIT [FIELD]
  luma_post /generations/video "$(jq -c "$2" <<<"$VIDEO")"
  check "luma video: $1 is 400 naming ${3:-it}" detail_has 400 "${3:-}"
}
bad_video "missing model" 'del(.model)' model
bad_video "unknown model" '.model = "ray-1"' model
bad_video "an image model" '.model = "photon-1"' model
bad_video "bad aspect_ratio" '.aspect_ratio = "7:3"' aspect_ratio
bad_video "bad duration" '.duration = "7s"' duration
bad_video "bad resolution" '.resolution = "8k"' resolution
bad_video "missing prompt" 'del(.prompt)' prompt
bad_video "empty prompt" '.prompt = ""' prompt
bad_video "non-boolean loop" '.loop = "yes"' loop
bad_video "keyframes not an object" '.keyframes = []' keyframes
bad_video "unknown keyframe" '.keyframes = {"frame2": {"type": "image", "url": "https://x/y.jpg"}}' frame2
bad_video "image keyframe without url" '.keyframes = {"frame0": {"type": "image"}}' frame0
bad_video "generation keyframe with a bad id" '.keyframes = {"frame1": {"type": "generation", "id": "nope"}}' frame1
bad_video "keyframe of unknown type" '.keyframes = {"frame0": {"type": "video", "url": "https://x/y"}}' frame0
bad_video "callback_url not a URL" '.callback_url = "ftp://x"' callback_url
luma_post /generations/video '{"model": "ray-2", "prompt": '
check "luma: broken JSON is 422 with a detail" detail_is 422
luma_post /generations/image '{"model":"photon-1","prompt":"x","format":"gif"}'
check "luma image: bad format is 400 naming format" detail_has 400 format
luma_post /generations/image '{"model":"ray-2","prompt":"x"}'
check "luma image: a video model is 400 naming model" detail_has 400 model
luma_post /generations/image '{"model":"photon-1"}'
check "luma image: missing prompt is 400" detail_has 400 prompt
sreq GET "$LUMA/generations/video" "$LUMA_AUTH"
check "luma: GET on the create path is 405" detail_is 405
sreq PUT "$LUMA/generations/image" "$LUMA_AUTH"
check "luma: PUT on a create path is 405" detail_is 405
stats
check "luma: rejected creates counted nothing" jqt '.luma.creates == 0 and .luma.creates_by_prompt == {}'

# --- Luma: video life cycle ------------------------------------------------
luma_post /generations/video "$VIDEO"
check "luma video create answers 201" status_is 201
check "luma video: id, type, queued, no failure, created_at, model, request echo, no assets" jqt \
  '(.id | test($u)) and .generation_type == "video" and .state == "queued"
   and .failure_reason == null and (.created_at | test($t)) and .model == "ray-2"
   and .request == ($sent | fromjson) and .assets == null' \
  --arg u "$UUID4" --arg t "$RFC3339" --arg sent "$VIDEO"
VID=$(field .id)
luma_post /generations '{"model":"ray-flash-2","prompt":"older create path '$RUN'"}'
check "luma: POST /generations creates a video too" \
  jqt '.generation_type == "video" and .model == "ray-flash-2" and .state == "queued"'
VID2=$(field .id)
luma_post /generations/image '{"model":"photon-1","prompt":"a red bicycle '$RUN'","aspect_ratio":"1:1","format":"png"}'
check "luma image create (png) answers 201 image/queued" \
  jqt '.generation_type == "image" and .model == "photon-1" and .state == "queued"'
IMG=$(field .id)
luma_post /generations/image '{"model":"photon-flash-1","prompt":"a blue bicycle '$RUN'"}'
check "luma image create (default format) answers 201" status_is 201
IMG2=$(field .id)
stats
check "stats: 4 luma creates counted" jqt '.luma.creates == 4'

check "luma video reaches a final state" poll_luma "$VID"
check "luma video went queued → dreaming → completed, in order ($SEEN)" \
  states_in_order "queued dreaming completed"
check "luma video completed with video and progress_video URLs" jqt \
  '.state == "completed" and .failure_reason == null
   and (.assets.video | startswith($s + "/files/")) and (.assets.progress_video | startswith($s + "/files/"))' \
  --arg s "$SIM"
VURL=$(field .assets.video) PURL=$(field .assets.progress_video)
check "luma video download is video/mp4 with the right length" download "$VURL" video/mp4
check "luma video download is an MP4 (....ftypisom)" is_mp4 "$TMP/dl"
check "luma progress video download is an MP4" eval 'download "$PURL" video/mp4 && is_mp4 "$TMP/dl"'
SREQ_OUT=/dev/null sreq HEAD "$VURL" - -I
check "luma video HEAD answers 200 with a Content-Length" eval 'status_is 200 && header_has Content-Length "[1-9][0-9]*"'
check "luma image (png) reaches completed" eval 'poll_luma "$IMG" && jqt ".state == \"completed\""'
IURL=$(field .assets.image)
check "luma image download is image/png with the PNG signature" eval 'download "$IURL" image/png && is_png "$TMP/dl"'
check "luma image (default jpg) reaches completed" eval 'poll_luma "$IMG2" && jqt ".state == \"completed\""'
check "luma default image download is a JPEG (SOI … EOI)" eval 'download "$(field .assets.image)" image/jpeg && is_jpeg "$TMP/dl"'
check "luma older-path video completes" eval 'poll_luma "$VID2" && jqt ".state == \"completed\""'
sreq GET "$SIM/files/00000000-0000-4000-8000-000000000000.mp4" -
check "an unknown file is 404" status_is 404

# --- Luma: list, delete, credits, ping ---------------------------------------
luma_get "/generations?limit=2&offset=0"
check "luma list limit=2: two newest first, has_more" jqt \
  '.count == 2 and (.generations | length) == 2 and .has_more == true and .limit == 2 and .offset == 0
   and .generations[0].id == $a and .generations[1].id == $b' --arg a "$IMG2" --arg b "$IMG"
luma_get "/generations?limit=2&offset=2"
check "luma list offset=2: the two oldest, no more" jqt \
  '.count == 2 and .has_more == false and .generations[0].id == $a and .generations[1].id == $b' \
  --arg a "$VID2" --arg b "$VID"
luma_get "/generations?limit=abc"
check "luma list with a bad limit is 422" detail_is 422
sreq DELETE "$LUMA/generations/$VID" "$LUMA_AUTH"
check "luma delete answers 204 with no body" eval 'status_is 204 && [[ -z $BODY ]]'
luma_get "/generations/$VID"
check "luma get after delete is 404" detail_is 404
sreq DELETE "$LUMA/generations/$VID" "$LUMA_AUTH"
check "luma delete again is 404" detail_is 404
luma_get /credits
check "luma credits: a numeric credit_balance" jqt '.credit_balance | type == "number"'
luma_get /ping
check "luma ping: pong" jqt '. == {"message": "pong"}'

# --- Luma: hooks ------------------------------------------------------------
luma_post /generations/video '{"model":"ray-2","prompt":"provsim:moderation '$RUN'"}'
MOD=$(field .id)
luma_post /generations/video '{"model":"ray-2","prompt":"provsim:fail '$RUN'"}'
FAIL=$(field .id)
luma_post /generations/video '{"model":"ray-2","prompt":"provsim:slow '$RUN'"}'
SLOW=$(field .id)
luma_post /generations/video '{"model":"ray-2","prompt":"provsim:error500 '$RUN'"}'
check "luma provsim:error500 answers 500 with a detail" detail_is 500
check "luma moderation hook ends failed" eval 'poll_luma "$MOD" && jqt ".state == \"failed\""'
check "luma moderation failure: reason names moderation, no assets" \
  jqt '(.failure_reason | test("moderation"; "i")) and .assets == null'
check "luma fail hook ends failed without a moderation reason" eval \
  'poll_luma "$FAIL" && jqt ".state == \"failed\" and (.failure_reason | type == \"string\" and (test(\"moderation\"; \"i\") | not))"'
# The slow one needs 10x as long as the (later) fail hook, which is done now.
luma_get "/generations/$SLOW"
check "luma slow hook is still running when a normal one has ended" jqt '.state | IN("queued", "dreaming")'
stats
check "stats: the slow generation is the one in flight" jqt '.luma.in_flight == 1'
sreq DELETE "$LUMA/generations/$SLOW" "$LUMA_AUTH"
check "luma delete cancels the running generation" status_is 204
stats
check "stats: luma creates 7 (error500 not counted), one per prompt" jqt \
  '.luma.creates == 7 and (.luma.creates_by_prompt | length) == 7
   and .luma.creates_by_prompt[$p] == 1 and (.luma.creates_by_prompt | all(. == 1))' \
  --arg p "a lighthouse at dusk $RUN"
check "stats: luma deletes 2, gets counted, nothing in flight" jqt \
  '.luma.deletes == 2 and .luma.gets > 5 and .luma.in_flight == 0'

# --- Hedra: authentication and uploads --------------------------------------
printf '\x89PNG\r\n\x1a\nnot really a png %s' "$RUN" >"$TMP/face.png"
head -c 4096 /dev/urandom >"$TMP/voice.wav"
sreq POST "$HEDRA/files" - -F "file=@$TMP/face.png;type=image/png"
check "hedra: no Authorization is 401 UNAUTHORIZED" hedra_error 401 UNAUTHORIZED false
sreq POST "$HEDRA/files" "$LUMA_AUTH" -F "file=@$TMP/face.png;type=image/png"
check "hedra: Bearer instead of Key is 401" hedra_error 401 UNAUTHORIZED false
sreq POST "$HEDRA/files" "$HEDRA_AUTH" -F "file=@$TMP/face.png;type=image/png"
check "hedra upload (image) answers 201 {url, content_type, expires_at}" eval \
  'status_is 201 && jqt "(.url | startswith(\$s + \"/files/\")) and .content_type == \"image/png\" and (.expires_at | test(\$t))" --arg s "$SIM" --arg t "$RFC3339"'
IMG_URL=$(field .url)
check "hedra uploaded file downloads byte for byte" eval 'download "$IMG_URL" image/png && cmp -s "$TMP/dl" "$TMP/face.png"'
sreq POST "$HEDRA/files" "$HEDRA_AUTH" -F "file=@$TMP/voice.wav;type=audio/wav"
check "hedra upload (audio) answers 201 audio/wav" eval 'status_is 201 && jqt ".content_type == \"audio/wav\""'
AUDIO_URL=$(field .url)
check "hedra uploaded audio downloads byte for byte" eval 'download "$AUDIO_URL" audio/wav && cmp -s "$TMP/dl" "$TMP/voice.wav"'
sreq POST "$HEDRA/files" "$HEDRA_AUTH" -F "upload=@$TMP/face.png;type=image/png"
check "hedra upload without a 'file' field is 400 INVALID_ARGUMENT" hedra_error 400 INVALID_ARGUMENT false
sreq POST "$HEDRA/files" "$HEDRA_AUTH" -H 'Content-Type: multipart/form-data' --data-binary 'x'
check "hedra upload without a boundary is 400" hedra_error 400 INVALID_ARGUMENT false
sreq POST "$HEDRA/files" "$HEDRA_AUTH" -H 'Content-Type: application/json' --data-binary '{}'
check "hedra upload that is not multipart is 400" hedra_error 400 INVALID_ARGUMENT false
sreq POST "$HEDRA/files" "$HEDRA_AUTH" -H 'Content-Type: multipart/form-data; boundary=b0' \
  --data-binary $'--b0\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nabc'
check "hedra upload cut off inside the part is 400" hedra_error 400 INVALID_ARGUMENT false
sreq POST "$HEDRA/files" "$HEDRA_AUTH" -F "file=@$TMP/voice.wav;type=text/plain"
check "hedra upload of text is 400" hedra_error 400 INVALID_ARGUMENT false

# --- Hedra: create validation ----------------------------------------------
JOB='{"input":{"prompt":"hello there '$RUN'","aspect_ratio":"16:9","resolution":"720p",
  "start_image":{"source":"url","url":"'$IMG_URL'"},"audio":{"source":"url","url":"'$AUDIO_URL'"},
  "duration_ms":4000},"idempotency_key":"e2e-'$RUN':lipsync"}'
bad_job() { # NAME JQ-EDIT
  hedra_post /models/hedra-character-3 "$(jq -c "$2" <<<"$JOB")"
  check "hedra create: $1 is 400 INVALID_ARGUMENT" hedra_error 400 INVALID_ARGUMENT false
}
bad_job "missing input" 'del(.input)'
bad_job "missing start_image" 'del(.input.start_image)'
bad_job "missing audio" 'del(.input.audio)'
bad_job "missing prompt" 'del(.input.prompt)'
bad_job "bad resolution" '.input.resolution = "4k"'
bad_job "missing resolution" 'del(.input.resolution)'
bad_job "bad aspect_ratio" '.input.aspect_ratio = "21:9"'
bad_job "unknown media source" '.input.audio = {"source": "file", "path": "/x"}'
bad_job "url source without url" '.input.start_image = {"source": "url"}'
bad_job "asset source without asset_id" '.input.audio = {"source": "asset"}'
bad_job "duration_ms too short" '.input.duration_ms = 10'
bad_job "empty idempotency_key" '.idempotency_key = ""'
hedra_post /models/hedra-character-3 '{"input": '
check "hedra create with broken JSON is 400" hedra_error 400 INVALID_ARGUMENT false
hedra_post /models/hedra-character-9 "$JOB"
check "hedra unknown model is 404" hedra_error 404 NOT_FOUND false
stats
check "hedra: rejected creates counted nothing" jqt '.hedra.creates == 0 and .hedra.jobs_started == 0'

# --- Hedra: job life cycle and idempotency ----------------------------------
hedra_post /models/hedra-character-3 "$JOB"
check "hedra create answers 202" status_is 202
check "hedra create: job_id, model, IN_QUEUE, status_url, result_url, estimated_completion_at" jqt \
  '(.job_id | test($u)) and .model == "hedra-character-3" and .status == "IN_QUEUE"
   and .status_url == ($h + "/jobs/" + .job_id + "/status") and .result_url == ($h + "/jobs/" + .job_id)
   and (.estimated_completion_at | test($t))' --arg u "$UUID4" --arg h "$HEDRA" --arg t "$RFC3339"
HJOB=$(field .job_id)
check "hedra create has a Location header (the status URL)" header_is Location "$HEDRA/jobs/$HJOB/status"
hedra_post /models/hedra-character-3 "$JOB"
check "hedra create with the same idempotency_key answers the same job" \
  eval 'status_is 202 && jqt ".job_id == \$j" --arg j "$HJOB"'
stats
check "stats: by-key counter 2, one job started, one in flight" jqt \
  '.hedra.creates_by_idempotency_key[$k] == 2 and .hedra.creates == 2 and .hedra.jobs_started == 1
   and .hedra.in_flight == 1 and .hedra.files == 2' --arg k "e2e-$RUN:lipsync"
hedra_get "/jobs/$HJOB/status"
check "hedra status: job_id, status, progress 0..1, estimated_completion_at" jqt \
  '.job_id == $j and (.status | IN("IN_QUEUE", "IN_PROGRESS", "COMPLETED")) and (.progress >= 0 and .progress <= 1)
   and (.estimated_completion_at | test($t))' --arg j "$HJOB" --arg t "$RFC3339"
hedra_get "/jobs/$HJOB"
check "hedra result while running: no outputs yet, error null" jqt \
  '.job_id == $j and .model == "hedra-character-3" and (.status | IN("IN_QUEUE", "IN_PROGRESS"))
   and .outputs == [] and .error == null' --arg j "$HJOB"
check "hedra job reaches a final state" poll_hedra "$HJOB"
check "hedra job went IN_QUEUE → IN_PROGRESS → COMPLETED, in order ($SEEN)" \
  states_in_order "IN_QUEUE IN_PROGRESS COMPLETED"
check "hedra status at the end: COMPLETED, progress 1" jqt '.status == "COMPLETED" and .progress == 1'
hedra_get "/jobs/$HJOB"
check "hedra result: one COMPLETED video/mp4 output with url and duration_ms" jqt \
  '.status == "COMPLETED" and .error == null and (.outputs | length) == 1
   and (.outputs[0] | .status == "COMPLETED" and .content_type == "video/mp4" and .duration_ms == 4000
        and .error == null and (.url | startswith($s + "/files/")))' --arg s "$SIM"
check "hedra output download is an MP4" eval 'download "$(field ".outputs[0].url")" video/mp4 && is_mp4 "$TMP/dl"'
hedra_post /models/hedra-character-3 "$JOB"
check "hedra same key after completion: still the same job, COMPLETED" \
  eval 'status_is 202 && jqt ".job_id == \$j and .status == \"COMPLETED\"" --arg j "$HJOB"'
NOKEY=$(jq -c 'del(.idempotency_key) | .input.audio = {"source": "asset", "asset_id": "asset-1"}' <<<"$JOB")
hedra_post /models/hedra-character-3 "$NOKEY"
J1=$(field .job_id)
hedra_post /models/hedra-character-3 "$NOKEY"
J2=$(field .job_id)
check "hedra creates without a key are separate jobs" eval '[[ -n $J1 && -n $J2 && $J2 != "$J1" ]]'

# --- Hedra: hooks and errors -------------------------------------------------
hedra_post /models/hedra-character-3 "$(jq -c 'del(.idempotency_key) | .input.prompt = "provsim:moderation"' <<<"$JOB")"
HMOD=$(field .job_id)
hedra_post /models/hedra-character-3 "$(jq -c '.idempotency_key = "e2e-'$RUN':500" | .input.prompt = "provsim:error500"' <<<"$JOB")"
check "hedra provsim:error500 is 500 INTERNAL, retryable" hedra_error 500 INTERNAL true
check "hedra moderation hook ends FAILED" eval 'poll_hedra "$HMOD" && jqt ".status == \"FAILED\""'
hedra_get "/jobs/$HMOD"
check "hedra moderation result: error MODERATION_FAILED, not retryable, no outputs" jqt \
  '.status == "FAILED" and .outputs == [] and .error.code == "MODERATION_FAILED" and .error.retryable == false'
hedra_get /jobs/00000000-0000-4000-8000-000000000000
check "hedra unknown job is 404 NOT_FOUND" hedra_error 404 NOT_FOUND false
hedra_get /jobs/00000000-0000-4000-8000-000000000000/status
check "hedra unknown job status is 404" hedra_error 404 NOT_FOUND false
for j in "$J1" "$J2"; do poll_hedra "$j" >/dev/null; done
stats
check "stats: hedra creates 6, jobs 4, error500 not counted, none in flight" jqt \
  '.hedra.creates == 6 and .hedra.jobs_started == 4 and .hedra.in_flight == 0
   and .hedra.creates_by_idempotency_key == {($k): 3}' --arg k "e2e-$RUN:lipsync"

# --- reset ------------------------------------------------------------------
sreq POST "$SIM/_sim/reset" -
stats
check "reset zeroes luma and hedra counters" jqt \
  '.luma.creates == 0 and .luma.creates_by_prompt == {} and .luma.deletes == 0 and .luma.gets == 0
   and .hedra.creates == 0 and .hedra.creates_by_idempotency_key == {} and .hedra.jobs_started == 0
   and .hedra.files == 0'
luma_get "/generations/$IMG"
check "reset keeps the generations themselves" status_is 200

# --- a clean stop -------------------------------------------------------------
genq_stop_pid "$SIM_PID"
check "genq-provsim exits 0 on SIGTERM" [ "${GENQ_PID_RC[$SIM_PID]}" = 0 ]
check "genq-provsim log has no sanitizer report" \
  eval '! grep -qE "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$SIMLOG"'
if ((FAILED)); then
  echo "----- last lines of the simulator log -----"
  tail -n 30 "$SIMLOG"
fi
finish
