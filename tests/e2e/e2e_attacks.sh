#!/usr/bin/env bash
# End to end: the API read as an attacker would (issue "a hostile world").
# Each hole is played against the running stack and the answer checked:
# its status and error code, and that nothing changed.
#
# Cross-site requests: Clerk's __session cookie travels with every request
# a browser makes to us, whichever site made it, so a cookie-authenticated
# request that changes anything must come from an allowed origin (SPEC §4):
# an Origin among CLERK_AUTHORIZED_PARTIES (here http://localhost:3000) or
# GENQ_PUBLIC_URL's, or Sec-Fetch-Site: same-origin. A cross-site form or
# "simple" fetch cannot send Content-Type: application/json, which
# POST /v1/jobs requires.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

. "$(dirname "$0")/helpers.bash"

RUN=$$-$RANDOM
VICTIM=e2e-victim-$RUN
check "genqctl grants the victim 10 credits" "$GENQCTL" credits grant "$VICTIM" 10 --key "e2e:$VICTIM"
TOKEN=$("$GENQCTL" token --user "$VICTIM" | tr -d '[:space:]')
SB='{"kind":"storyboard","input":{"prompt":"a cross-site shot","scenes":1}}'
COOKIE=(-H "Cookie: __session=$TOKEN")
jobs_of_victim() { # the number of the victim's jobs, read with its Bearer token
  req GET "/v1/jobs?limit=100" "$TOKEN"
  jq -r '.data | length' <<<"$BODY"
}

# --- cross-site requests with the victim's cookie --------------------------
REQ_HEADERS=("${COOKIE[@]}" -H "Origin: https://evil.example")
req POST /v1/jobs - "$SB"
check "a cookie POST /v1/jobs from another origin is 403 cross_site_request" \
  error_is 403 cross_site_request
REQ_HEADERS=("${COOKIE[@]}" -H "Origin: http://localhost:3000.evil.example")
req POST /v1/jobs - "$SB"
check "... and from an origin that only starts like an allowed one" error_is 403 cross_site_request
REQ_HEADERS=("${COOKIE[@]}" -H "Origin: null")
req POST /v1/jobs - "$SB"
check "... and from an opaque origin (null)" error_is 403 cross_site_request
REQ_HEADERS=("${COOKIE[@]}" -H "Sec-Fetch-Site: cross-site")
req POST /v1/jobs - "$SB"
check "... and with no Origin, Sec-Fetch-Site: cross-site" error_is 403 cross_site_request
REQ_HEADERS=("${COOKIE[@]}")
req POST /v1/jobs - "$SB"
check "... and with neither Origin nor Sec-Fetch-Site" error_is 403 cross_site_request
check "none of them created a job" [ "$(jobs_of_victim)" = 0 ]
check "none of them held a credit" credits_are "$TOKEN" 10 0

REQ_HEADERS=("${COOKIE[@]}" -H "Origin: http://localhost:3000")
req POST /v1/jobs - "$SB"
check "a cookie POST from an allowed origin (CLERK_AUTHORIZED_PARTIES) is 202" status_is 202
JOB=$(jq -r '.id // empty' <<<"$BODY")
REQ_HEADERS=("${COOKIE[@]}" -H "Origin: ${API%/}")
req POST /v1/jobs - "$SB"
check "a cookie POST from GENQ_PUBLIC_URL's own origin is 202" status_is 202
REQ_HEADERS=("${COOKIE[@]}" -H "Sec-Fetch-Site: same-origin")
req POST /v1/jobs - "$SB"
check "a cookie POST with Sec-Fetch-Site: same-origin and no Origin is 202" status_is 202

REQ_HEADERS=("${COOKIE[@]}" -H "Origin: https://evil.example")
req POST "/v1/jobs/$JOB/cancel" -
check "a cross-site cookie cancel is 403" error_is 403 cross_site_request
REQ_HEADERS=()
req GET "/v1/jobs/$JOB" "$TOKEN"
check "... and the job was not canceled" jqt '.status != "canceled"'
REQ_HEADERS=("${COOKIE[@]}" -H "Origin: https://evil.example")
req GET /v1/credits -
check "a cross-site cookie GET answers (reads change nothing; CORS keeps the answer from the other site)" \
  status_is 200
REQ_HEADERS=(-H "Origin: https://evil.example")
req POST /v1/jobs "$TOKEN" "$SB"
check "a Bearer token needs no origin: a browser never sends it by itself" status_is 202
REQ_HEADERS=()

# --- bodies a cross-site form or simple fetch can send ----------------------
for ct in "" "text/plain" "application/x-www-form-urlencoded" "multipart/form-data; boundary=x" \
  "application/jsonp"; do
  args=(-H "Authorization: Bearer $TOKEN" -H "Content-Type: $ct")
  [[ -z $ct ]] && args=(-H "Authorization: Bearer $TOKEN" -H "Content-Type:")
  STATUS=$(curl -sS --max-time 10 -o "$TMP/body" -w '%{http_code}' "${args[@]}" \
    --data-binary "$SB" "$API/v1/jobs")
  BODY=$(cat "$TMP/body")
  check "POST /v1/jobs with Content-Type '${ct:-none}' is 415" error_is 415 unsupported_media_type
done
req POST /v1/jobs "$TOKEN" "$SB"
check "with application/json it is 202" status_is 202
check "the victim has exactly the 5 jobs it sent itself" [ "$(jobs_of_victim)" = 5 ]

# --- tokens: azp and lifetime ----------------------------------------------
# Signed with the right key and issuer: only azp or the lifetime is wrong.
tok() { # tok AZP LIFETIME_S: a token for the victim ("-" AZP: none)
  local now
  now=$(date +%s)
  sign_claims "$(jq -nc --arg sub "$VICTIM" --arg iss "$CLERK_ISSUER" --arg azp "$1" \
    --argjson now "$now" --argjson life "$2" \
    '{sub: $sub, iss: $iss, iat: $now, nbf: $now, exp: ($now + $life)}
     + (if $azp == "-" then {} else {azp: $azp} end)')"
}
req GET /v1/credits "$(tok "${CLERK_AUTHORIZED_PARTIES%%,*}" 300)"
check "a token of an allowed azp that lives 5 minutes is accepted" status_is 200
req GET /v1/credits "$(tok - 300)"
check "a token without azp is 401" error_is 401 unauthorized
req GET /v1/credits "$(tok https://evil.example 300)"
check "a token of another azp is 401" error_is 401 unauthorized
req GET /v1/credits "$(tok "${CLERK_AUTHORIZED_PARTIES%%,*}" $((2 * 86400)))"
check "a token minted to live 2 days is 401 (GENQ_MAX_TOKEN_LIFETIME_S is a day)" \
  error_is 401 unauthorized

# --- an event stream does not outlive its token ---------------------------
# A video that takes ten times the simulator's 1.5 s (provsim:slow), watched
# with a token of 1 s: the stream must end at a tick past exp + 5 s of skew
# (within about 12 s), before the job's own end, with no terminal event.
STREAMER=e2e-streamer-$RUN
check "genqctl grants the streamer 10 credits" "$GENQCTL" credits grant "$STREAMER" 10 --key "e2e:$STREAMER"
S_TOKEN=$("$GENQCTL" token --user "$STREAMER" | tr -d '[:space:]')
req POST /v1/jobs "$S_TOKEN" '{"kind":"video","input":{"prompt":"a slow shot provsim:slow"}}'
check "the slow video job is accepted" status_is 202
VIDEO=$(jq -r '.id // empty' <<<"$BODY")
SHORT=$("$GENQCTL" token --user "$STREAMER" --ttl 1 | tr -d '[:space:]')
started=$SECONDS
curl -sS -N --max-time 30 -H "Authorization: Bearer $SHORT" -o "$TMP/short.body" \
  -D "$TMP/short.headers" "$API/v1/jobs/$VIDEO/events" 2>"$TMP/short.err"
rc=$? took=$((SECONDS - started))
api_record GET "/v1/jobs/$VIDEO/events" "$TMP/short.headers" "$TMP/short.body"
check "the server ended the stream (curl exit $rc after ${took}s)" [ "$rc" -eq 0 ]
check "... within 20 s of its token's 1 s" [ "$took" -le 20 ]
check "... without a terminal event (the token's end, not the job's)" \
  eval '! grep -Eq "\"status\": *\"(succeeded|failed|canceled)\"" "$TMP/short.body"'
req GET "/v1/jobs/$VIDEO" "$S_TOKEN"
check "... while the job was still going" jqt '.status | IN("queued", "running")'

finish
