#!/usr/bin/env bash
# End to end: media in and out of the HTTP API, and canceling.
#   POST /v1/uploads — each accepted type stored with the right size and
#     sha256; a type genq does not take, bytes that are not what the
#     Content-Type says, an empty body, a body over the limit (refused on its
#     Content-Length before it is sent) and the routing around it;
#   job inputs that name uploads: another user's, or of the wrong media class,
#     is 400 naming the field and holds nothing;
#   GET /v1/assets/{id} — an image job's result served byte for byte to its
#     owner only; unknown and malformed ids are 404;
#   POST /v1/jobs/{id}/cancel — a running job canceled with its hold
#     released, another user's job untouched (404), repeats harmless.
#
# Needs what e2e_api.sh needs. The upload limit is read from
# GENQ_UPLOAD_MAX_BYTES (scripts/test sets 2 MiB for the stack; default
# 25 MiB); GENQ_MAX_BODY_BYTES likewise (default 1 MiB).
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

. "$(dirname "$0")/helpers.bash"

UPLOAD_MAX=${GENQ_UPLOAD_MAX_BYTES:-26214400}
JSON_MAX=${GENQ_MAX_BODY_BYTES:-1048576}
RUN=$$-$RANDOM
ERIN=e2e-erin-$RUN FRANK=e2e-frank-$RUN
check "genqctl grants erin 30 credits" "$GENQCTL" credits grant "$ERIN" 30 --key "e2e:$ERIN"
check "genqctl grants frank 10 credits" "$GENQCTL" credits grant "$FRANK" 10 --key "e2e:$FRANK"
ERIN_TOKEN=$("$GENQCTL" token --user "$ERIN" | tr -d '[:space:]')
FRANK_TOKEN=$("$GENQCTL" token --user "$FRANK" | tr -d '[:space:]')

# Tiny real files of each kind (made with ffmpeg): a 2x2 PNG and JPEG, 5 ms
# of 8 kHz WAV, and one MPEG-2.5 layer III frame without an ID3 tag.
base64 -d >"$TMP/a.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAACXBIWXMAAAABAAAAAQBPJcTWAAAAEElEQVR4nGP4y8AARAwQCgAfrgP19hgqWQAAAABJRU5ErkJggg=='
base64 -d >"$TMP/a.jpg" <<<'/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYHBwcICAgHBwcGBgcHCAgICAkJCQgICAgJCQoKCgwMCwsODg4RERT/xABMAAEBAAAAAAAAAAAAAAAAAAAABgEBAQAAAAAAAAAAAAAAAAAABgcQAQAAAAAAAAAAAAAAAAAAAAARAQAAAAAAAAAAAAAAAAAAAAD/wAARCAACAAIDASIAAhEAAxEA/9oADAMBAAIRAxEAPwCLAFF/f//Z'
base64 -d >"$TMP/a.wav" <<<'UklGRkwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YSgAAACBhYqNj4+OioWAe3ZycHBxdXl+hImNj4+Oi4aBfHdzcHBxdHh9g4iM'
base64 -d >"$TMP/a.mp3" <<<'/+MYxAANQJaceUwAAAgLdwL3ve973vSlKUpSnXve97/O007EMCYEwJiOf8OBAEMTh///nOn3dPSCHL+7EADB/hjpUkXjqLJf/+MYxAYOILa0AZJIAES6bFJJzI28hxIgN4IBEaK8GAhYvI2WUqkFiZUKu0BNKyoSCQ5/RRrWNGKf/6h9av/+tUxBTUUzLjEw/+MYxAgAAANIAcAAADBVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV'

# curl_status: after STATUS=$(curl -w '%{http_code}' ...) failed. A server
# that refuses a body closes the connection, and curl may then report a
# send error although it read the answer: the status it read counts.
curl_status() {
  [[ $STATUS =~ ^[1-5][0-9][0-9]$ ]] || STATUS="curl-error: $(cat "$TMP/curl.err")"
}

# upload TOKEN CONTENT_TYPE FILE [curl args...]: POST /v1/uploads with the
# file as the raw body; sets STATUS and BODY. CONTENT_TYPE "-" sends none.
upload() {
  local token=$1 type=$2 file=$3 args=()
  shift 3
  [[ $token != - ]] && args+=(-H "Authorization: Bearer $token")
  if [[ $type == - ]]; then args+=(-H 'Content-Type:'); else args+=(-H "Content-Type: $type"); fi
  : >"$TMP/body"
  : >"$TMP/headers"
  if STATUS=$(curl -sS --max-time 30 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
    "${args[@]}" "$@" --data-binary @"$file" "$API/v1/uploads" 2>"$TMP/curl.err"); then
    api_record POST /v1/uploads
  else
    curl_status
  fi
  BODY=$(cat "$TMP/body")
}

# An upload of each accepted type: 201 with what was stored.
uploaded_as() { # TYPE FILE
  local size sum
  size=$(stat -c %s "$2")
  sum=$(sha256sum "$2" | cut -d' ' -f1)
  status_is 201 && jqt '(.id | test("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"))
    and .content_type == $t and .bytes == $n and .sha256 == $s and (.expires_at | type == "string")' \
    --arg t "$1" --argjson n "$size" --arg s "$sum"
}
declare -A UP
for pair in image/png:a.png image/jpeg:a.jpg audio/wav:a.wav audio/mpeg:a.mp3; do
  type=${pair%%:*} file=$TMP/${pair#*:}
  upload "$ERIN_TOKEN" "$type" "$file"
  check "an upload of $type is 201 with its size and sha256" uploaded_as "$type" "$file"
  UP[$type]=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
done
upload "$FRANK_TOKEN" audio/wav "$TMP/a.wav"
check "frank uploads a WAV too" uploaded_as audio/wav "$TMP/a.wav"
FRANK_WAV=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
upload "$ERIN_TOKEN" IMAGE/PNG "$TMP/a.png"
check "the Content-Type is case-insensitive and recorded in lowercase" uploaded_as image/png "$TMP/a.png"

# --- what is refused -----------------------------------------------------
printf 'just some text\n' >"$TMP/a.txt"
upload "$ERIN_TOKEN" text/plain "$TMP/a.txt"
check "text/plain is 415" error_is 415 unsupported_media_type
upload "$ERIN_TOKEN" - "$TMP/a.png"
check "no Content-Type is 415" error_is 415 unsupported_media_type
upload "$ERIN_TOKEN" 'image/png; charset=binary' "$TMP/a.png"
check "a Content-Type with parameters is 415" error_is 415 unsupported_media_type
upload "$ERIN_TOKEN" image/jpeg "$TMP/a.png"
check "PNG bytes declared image/jpeg are 415 naming the declared type" \
  eval 'error_is 415 unsupported_media_type && jqt ".error.message | contains(\"image/jpeg\")"'
upload "$ERIN_TOKEN" audio/mpeg "$TMP/a.wav"
check "WAV bytes declared audio/mpeg are 415" error_is 415 unsupported_media_type
upload "$ERIN_TOKEN" audio/wav "$TMP/a.txt"
check "text declared audio/wav is 415" error_is 415 unsupported_media_type
: >"$TMP/empty"
upload "$ERIN_TOKEN" image/png "$TMP/empty"
check "an empty upload is 400" error_is 400 "*"
upload - image/png "$TMP/a.png"
check "an upload without a token is 401" error_is 401 unauthorized
req GET /v1/uploads "$ERIN_TOKEN"
check "GET /v1/uploads is 405" error_is 405 method_not_allowed
check "405 names POST as allowed" header_is Allow POST

# --- the size limit --------------------------------------------------------
# A PNG signature followed by zeros: the signature check passes, so only the
# size decides.
big_png() { { head -c 8 "$TMP/a.png"; head -c "$(($1 - 8))" /dev/zero; } >"$2"; }
big_png $((UPLOAD_MAX + 1048576)) "$TMP/over.png"
upload "$ERIN_TOKEN" image/png "$TMP/over.png"
check "an upload 1 MiB over GENQ_UPLOAD_MAX_BYTES ($UPLOAD_MAX) is 413" error_is 413 "*"
# A Content-Length over the limit and no body at all: answered at once from
# the headers (a server that waited for the body would hit curl's 10 s).
STATUS=$(curl -sS --max-time 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -X POST \
  -H "Authorization: Bearer $ERIN_TOKEN" -H 'Content-Type: image/png' \
  -H "Content-Length: $((UPLOAD_MAX + 1))" "$API/v1/uploads" 2>"$TMP/curl.err") || curl_status
[[ $STATUS =~ ^[0-9]{3}$ ]] && api_record POST /v1/uploads
BODY=$(cat "$TMP/body")
check "a Content-Length over the limit is 413 before any body byte" error_is 413 "*"
if ((UPLOAD_MAX > JSON_MAX + 65536)); then
  big_png $((JSON_MAX + 65536)) "$TMP/mid.png"
  upload "$ERIN_TOKEN" image/png "$TMP/mid.png"
  check "an upload over the JSON body limit but under the upload limit is 201" \
    uploaded_as image/png "$TMP/mid.png"
  STATUS=$(curl -sS --max-time 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
    -H "Authorization: Bearer $ERIN_TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$TMP/mid.png" "$API/v1/jobs" 2>"$TMP/curl.err") || curl_status
  [[ $STATUS =~ ^[0-9]{3}$ ]] && api_record POST /v1/jobs
  BODY=$(cat "$TMP/body")
  check "the same size to POST /v1/jobs is still 413" error_is 413 "*"
fi

# --- uploads named in job inputs --------------------------------------------
req POST /v1/jobs "$ERIN_TOKEN" "$(jq -nc --arg i "${UP[image/png]}" --arg a "$FRANK_WAV" \
  '{kind: "lipsync", input: {image_upload_id: $i, audio_upload_id: $a}}')"
check "another user's upload in a lipsync job is 400 naming the field" \
  eval 'error_is 400 invalid_input && jqt ".error.message | startswith(\"input.audio_upload_id:\")"'
req POST /v1/jobs "$ERIN_TOKEN" "$(jq -nc --arg i "${UP[image/png]}" --arg a "${UP[image/jpeg]}" \
  '{kind: "lipsync", input: {image_upload_id: $i, audio_upload_id: $a}}')"
check "an image upload as the audio is 400 naming the field" \
  eval 'error_is 400 invalid_input && jqt ".error.message | startswith(\"input.audio_upload_id:\")"'
req POST /v1/jobs "$ERIN_TOKEN" "$(jq -nc --arg i 01a2194f-39aa-4f8d-a5b2-121d8227cfe8 --arg a "${UP[audio/wav]}" \
  '{kind: "lipsync", input: {image_upload_id: $i, audio_upload_id: $a}}')"
check "an unknown upload id is 400 naming the field" \
  eval 'error_is 400 invalid_input && jqt ".error.message | startswith(\"input.image_upload_id:\")"'
check "the refused jobs held nothing" credits_are "$ERIN_TOKEN" 30 0
req POST /v1/jobs "$ERIN_TOKEN" "$(jq -nc --arg i "${UP[image/jpeg]}" --arg a "${UP[audio/mpeg]}" \
  '{kind: "lipsync", input: {image_upload_id: $i, audio_upload_id: $a}}')"
check "a lipsync job with erin's own uploads is 202" status_is 202
LJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
req POST "/v1/jobs/$LJOB/cancel" "$ERIN_TOKEN"
check "canceling it is 200 and leaves it terminal, holding nothing" \
  jqt '.status | IN("canceled", "succeeded", "failed")'
check "and its cost adds up to its price" \
  jqt '.cost.held == 0 and .cost.held + .cost.captured + .cost.released == .cost.price and .cost.price == 8'
LCAPTURED=$(jq -r '.cost.captured // 0' <<<"$BODY" 2>/dev/null)

# --- cancel -------------------------------------------------------------------
# The simulated provider answers this storyboard after 10 s: the job is
# queued or running, never terminal, while it is canceled.
req POST /v1/jobs "$ERIN_TOKEN" '{"kind":"storyboard","input":{"prompt":"provsim:sleep=10000 a slow one","scenes":1}}'
check "a slow storyboard is 202" status_is 202
CJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
req POST "/v1/jobs/$CJOB/cancel" "$FRANK_TOKEN"
check "frank cannot cancel erin's job: 404" error_is 404 not_found
req GET "/v1/jobs/$CJOB" "$ERIN_TOKEN"
check "and it is still unfinished" jqt '.status | IN("queued", "running")'
req POST "/v1/jobs/$CJOB/cancel" "$ERIN_TOKEN"
check "erin cancels it: 200 canceled" jqt '.id == $id and .status == "canceled" and (.finished_at | type == "string")' --arg id "$CJOB"
check "its hold is released whole" jqt '.cost == {price: 1, held: 0, captured: 0, released: 1}'
check "no step is left pending or running" jqt 'all(.steps[]; .status | IN("canceled", "succeeded", "failed"))'
req POST "/v1/jobs/$CJOB/cancel" "$ERIN_TOKEN"
check "canceling again is 200 and changes nothing" \
  jqt '.status == "canceled" and .cost == {price: 1, held: 0, captured: 0, released: 1}'
req GET "/v1/jobs/$CJOB/cancel" "$ERIN_TOKEN"
check "GET on cancel is 405" error_is 405 method_not_allowed
check "405 names POST as allowed" header_is Allow POST
req POST /v1/jobs/01a2194f-39aa-7f8d-a5b2-121d8227cfe8/cancel "$ERIN_TOKEN"
check "canceling an unknown job is 404" error_is 404 not_found
req POST /v1/jobs/not-a-uuid/cancel "$ERIN_TOKEN"
check "canceling a malformed id is 404" error_is 404 not_found
req POST "/v1/jobs/$CJOB/retry" "$ERIN_TOKEN"
check "an unknown job action is 404" error_is 404 not_found
check "erin holds nothing and paid only what lipsync captured" \
  credits_are "$ERIN_TOKEN" $((30 - LCAPTURED)) 0

# --- assets -------------------------------------------------------------------
req GET /v1/assets/01a2194f-39aa-7f8d-a5b2-121d8227cfe8 "$ERIN_TOKEN"
check "an unknown asset is 404" error_is 404 not_found
req GET /v1/assets/not-a-uuid "$ERIN_TOKEN"
check "a malformed asset id is 404" error_is 404 not_found
req GET "/v1/assets/${UP[image/png]}" "$ERIN_TOKEN"
check "an upload id is not an asset id: 404" error_is 404 not_found
req POST /v1/assets/01a2194f-39aa-7f8d-a5b2-121d8227cfe8 "$ERIN_TOKEN" '{}'
check "POST on an asset is 405" error_is 405 method_not_allowed
req GET /v1/assets/01a2194f-39aa-7f8d-a5b2-121d8227cfe8 -
check "an asset without a token is 401" error_is 401 unauthorized

req POST /v1/jobs "$ERIN_TOKEN" '{"kind":"image","input":{"prompt":"a red climbing hold on white"}}'
check "an image job is 202" status_is 202
IJOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
check "the image job finishes" poll_job "$ERIN_TOKEN" "$IJOB"
check "it succeeded with one image asset" \
  jqt '.status == "succeeded" and (.output.assets | length) == 1 and .output.assets[0].kind == "image"
    and .output.assets[0].url == "/v1/assets/" + .output.assets[0].id'
ASSET=$(jq -c '.output.assets[0] // {}' <<<"$BODY" 2>/dev/null)
AURL=$(jq -r '.url // "/v1/assets/none"' <<<"$ASSET")
STATUS=$(curl -sS --max-time 30 -o "$TMP/asset" -D "$TMP/headers" -w '%{http_code}' \
  -H "Authorization: Bearer $ERIN_TOKEN" "$API$AURL" 2>"$TMP/curl.err") || curl_status
api_record GET "$AURL" "$TMP/headers" "$TMP/asset"
BODY=""
asset_bytes_match() {
  [[ $(stat -c %s "$TMP/asset") == "$(jq -r .bytes <<<"$ASSET")" ]] &&
    [[ $(sha256sum "$TMP/asset" | cut -d' ' -f1) == "$(jq -r .sha256 <<<"$ASSET")" ]]
}
check "erin downloads the asset: 200" status_is 200
check "its bytes have the recorded size and sha256" asset_bytes_match
check "its Content-Type is the recorded one" header_is Content-Type "$(jq -r .content_type <<<"$ASSET")"
check "it may be cached privately for good" header_is Cache-Control "private, max-age=31536000, immutable"
check "and is never sniffed" header_is X-Content-Type-Options nosniff
req GET "$AURL" "$FRANK_TOKEN"
check "frank cannot download erin's asset: 404" error_is 404 not_found

check "genqctl audit finds no violation" "$GENQCTL" audit
finish
