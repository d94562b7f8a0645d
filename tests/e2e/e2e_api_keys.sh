#!/usr/bin/env bash
# End to end: API keys (README "API keys") on TWO genq-api processes of one
# mini stack (mini_stack.bash, Redis db 13), with a worker.
#
# - `genqctl keys create` prints a gq_ key once; the database holds only
#   its SHA-256 and prefix. The key works at once on both processes (the
#   one that does not hold it yet asks PostgreSQL), submits and reads the
#   user's jobs like the user's session token (one account, one
#   Idempotency-Key space), records its last use, and takes a large upload
#   once the processes hold it.
# - Another user's key sees none of it (404). Malformed, unknown and
#   cookie-borne keys are 401.
# - `genqctl keys revoke`: the very next request on either process is 401,
#   and an event stream opened with the key ends. A revocation written
#   without any notice (straight into PostgreSQL: Redis lost it) is refused
#   by both within a few seconds, and so is an account deleted that way.
# - A deletion notice on Redis refuses the user's session token and key at
#   once on both processes; a process started afterwards refuses them too.
#
# Needs what mini_stack.bash needs (scripts/test sets it).
# shellcheck disable=SC2016,SC2034 # $names in single quotes: jq's, or eval's
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" api_keys 13

export GENQ_UPLOAD_MAX_BYTES=4194304 GENQ_MAX_BODY_BYTES=65536
mini_stack_start
API2_PORT=""
genq_free_port API2_PORT
API2=http://127.0.0.1:$API2_PORT
start_api2() {
  genq_start api2 "$STATE/logs/api2.log" env GENQ_API_LISTEN="127.0.0.1:$API2_PORT" "$BIN/genq-api"
  SERVICES+=("$GENQ_LAST_PID")
  API2_PID=$GENQ_LAST_PID
  genq_wait_for "$GENQ_LAST_PID" 30 curl -fsS -o /dev/null "$API2/readyz"
}
start_api2
start_worker worker-1 -- --kinds storyboard # a video job stays queued: its stream stays open

# code BASE TOKEN PATH: the status of GET PATH on BASE with TOKEN.
code() { curl -sS --max-time 10 -o "$TMP/code.body" -w '%{http_code}' -H "Authorization: Bearer $2" "$1$3"; }
# both TOKEN PATH: "<status on API> <status on API2>"
both() { echo "$(code "$API" "$1" "$2") $(code "$API2" "$1" "$2")"; }
# within SECS CMD...: CMD succeeds within SECS seconds (tried every 0.1 s).
within() {
  local end=$((SECONDS + $1))
  shift
  while ((SECONDS <= end)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
new_key() { # USER [ARGS...]: a new key, printed
  local u=$1
  shift
  "$GENQCTL" keys create --user "$u" "$@" 2>/dev/null
}

mini_stack_user 100
"$GENQCTL" limits plan "$USER_ID" unlimited >/dev/null
KEY=$(new_key "$USER_ID" --name "ci server")
check "genqctl keys create prints a gq_ key of 46 characters" eval '[[ $KEY =~ ^gq_[A-Za-z0-9_-]{43}$ ]]'
KEY_ID=$("$GENQCTL" keys list --user "$USER_ID" --json | jq -r '.[0].id')
check "the database holds its SHA-256 and prefix, not the key" \
  eval '[ "$(psql_db -c "select encode(hash, '"'hex'"') = encode(sha256(convert_to('"'$KEY'"', '"'UTF8'"')), '"'hex'"')
           and prefix = left('"'$KEY'"', 10) from api_keys where id = '"'$KEY_ID'"'")" = t ] &&
        ! psql_db -c "select * from api_keys" | grep -qF "$KEY"'
r=$(both "$KEY" /v1/credits)
check "the new key works at once on both processes ($r)" [ "$r" = "200 200" ]

API_SAVE=$API
submit_with() { # TOKEN IDEMPOTENCY-KEY → STATUS, BODY
  REQ_HEADERS=(-H "Idempotency-Key: $2")
  req POST /v1/jobs "$1" '{"kind":"storyboard","input":{"prompt":"a key","scenes":1}}'
  REQ_HEADERS=()
}
submit_with "$KEY" "ik-$RUN"
check "the key submits a job (202)" status_is 202
JOB=$(jq -r .id <<<"$BODY")
submit_with "$TOKEN" "ik-$RUN"
check "the user's session token with the same Idempotency-Key replays the key's job" \
  eval 'status_is 202 && jqt ".id == \$j" --arg j "$JOB" && header_is Idempotent-Replayed true'
API=$API2
poll_job "$KEY" "$JOB"
API=$API_SAVE
req GET "/v1/jobs/$JOB" "$KEY"
check "the key reads the job to its end on the other process (succeeded)" jqt '.status == "succeeded"'
req GET "/v1/jobs?limit=5" "$TOKEN"
check "the session token lists the key's job" jqt '[.data[].id] | index($j) != null' --arg j "$JOB"
check "genqctl keys list shows its name, prefix and last use" \
  eval '"$GENQCTL" keys list --user "$USER_ID" --json | jq -e --arg p "${KEY:0:10}" \
    ".[0].name == \"ci server\" and .[0].prefix == \$p and .[0].last_used_at != null and .[0].revoked_at == null and .[0].admin == false and (.[0] | has(\"hash\") | not)" >/dev/null'

# A large upload: once a process holds the key, it may send more than a JSON body.
sleep 1.2
head -c 300000 /dev/urandom >"$TMP/big.wav.raw"
{ printf 'RIFF\x24\x93\x04\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x93\x04\x00'; cat "$TMP/big.wav.raw"; } >"$TMP/big.wav"
up() {
  curl -sS --max-time 20 -o "$TMP/up.body" -w '%{http_code}' -H "Authorization: Bearer $2" \
    -H 'Content-Type: audio/wav' --data-binary @"$TMP/big.wav" "$1/v1/uploads"
}
c=$(up "$API2" "$KEY")
check "an upload of 300 KB (over the 64 KiB JSON limit) with the key is 201 ($c)" [ "$c" = 201 ]

OTHER=e2e-keys-other-$RUN
OKEY=$(new_key "$OTHER")
r=$(both "$OKEY" "/v1/jobs/$JOB")
check "another user's key does not see the job: 404 on both ($r)" [ "$r" = "404 404" ]
r=$(both "gq_short" /v1/credits)
check "a malformed key is 401 on both ($r)" [ "$r" = "401 401" ]
r=$(both "gq_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-43)" /v1/credits)
check "an unknown well-formed key is 401 on both ($r)" [ "$r" = "401 401" ]
c=$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: __session=$KEY" "$API/v1/credits")
check "a key in the __session cookie is not accepted (401: $c)" [ "$c" = 401 ]
AKEY=$(new_key "$OTHER" --admin)
check "genqctl keys create --admin marks the key admin" \
  eval '"$GENQCTL" keys list --user "$OTHER" --json | jq -e ".[0].admin == true" >/dev/null'

# ---- revocation --------------------------------------------------------------
# An event stream opened with the key, on the second process, of a job no
# worker takes (the worker runs storyboards only).
req POST "/v1/jobs" "$KEY" '{"kind":"video","input":{"prompt":"long","duration":"5s"}}'
JOB3=$(jq -r .id <<<"$BODY")
curl -sS -N --max-time 30 -H "Authorization: Bearer $KEY" "$API2/v1/jobs/$JOB3/events" >"$TMP/sse3.out" 2>/dev/null &
SSE3=$!
check "an event stream opened with the key sends the job" within 5 grep -q '^event: job' "$TMP/sse3.out"
"$GENQCTL" keys revoke "$KEY_ID" >/dev/null
r=$(both "$KEY" /v1/credits)
check "right after genqctl keys revoke the key is 401 on both processes ($r)" [ "$r" = "401 401" ]
check "... with the error shape" eval 'jq -e ".error.code == \"unauthorized\"" "$TMP/code.body" >/dev/null'
r=$(both "$TOKEN" /v1/credits)
check "the user's session token still works ($r)" [ "$r" = "200 200" ]
sse_ended() { ! kill -0 "$SSE3" 2>/dev/null; }
check "the event stream opened with the key ended" within 3 sse_ended
check "genqctl keys list shows it revoked" \
  eval '"$GENQCTL" keys list --user "$USER_ID" --json | jq -e ".[0].revoked_at != null" >/dev/null'
check "genqctl keys revoke of an unknown id fails" \
  eval '! "$GENQCTL" keys revoke 00000000-0000-4000-8000-000000000000 2>/dev/null'

# A revocation that no notice announced (as if Redis had lost it).
KEY2=$(new_key "$USER_ID")
sleep 1.2 # both processes hold it now
r=$(both "$KEY2" /v1/credits)
check "a second key works on both ($r)" [ "$r" = "200 200" ]
psql_db -c "update api_keys set revoked_at = now() where hash = sha256(convert_to('$KEY2', 'UTF8'))"
refused_both() { [ "$(both "$1" "$2")" = "401 401" ]; }
check "a revocation without a notice is refused by both within 3 s" within 3 refused_both "$KEY2" /v1/credits

# ---- deleted accounts ------------------------------------------------------------
U3=e2e-keys-del-$RUN
"$GENQCTL" credits grant "$U3" 5 --key "e2e:$U3" >/dev/null
K3=$(new_key "$U3")
T3=$("$GENQCTL" token --user "$U3" | tr -d '[:space:]')
sleep 1.2
r="$(both "$T3" /v1/credits) $(both "$K3" /v1/credits)"
check "before: the user's token and key work on both ($r)" [ "$r" = "200 200 200 200" ]
psql_db -c "update accounts set deleted_at = now() where user_id = '$U3'"
rcli publish "genq:{q}:access" "user $U3" >/dev/null
r="$(both "$T3" /v1/credits) $(both "$K3" /v1/credits)"
check "a deletion notice refuses the user's token and key at once on both ($r)" \
  [ "$r" = "401 401 401 401" ]
check "... saying the account was deleted" eval 'jq -e ".error.message | test(\"deleted\")" "$TMP/code.body" >/dev/null'
U4=e2e-keys-del2-$RUN
T4=$("$GENQCTL" token --user "$U4" | tr -d '[:space:]')
r=$(both "$T4" /v1/credits)
check "another user's token works ($r)" [ "$r" = "200 200" ]
psql_db -c "update accounts set deleted_at = now() where user_id = '$U4'"
check "a deletion without a notice is refused by both within 3 s" within 3 refused_both "$T4" /v1/credits
genq_stop_pid "$API2_PID"
start_api2
r="$(both "$T3" /v1/credits) $(both "$K3" /v1/credits)"
check "a process started afterwards refuses them too ($r)" [ "$r" = "401 401 401 401" ]
req GET /v1/credits "$OKEY"
check "other users' keys are unaffected" status_is 200

check "the books are clean (genqctl audit)" eval '"$GENQCTL" audit >/dev/null'
no_key_in_logs() { ! grep -rqF -e "$KEY" -e "$KEY2" -e "$OKEY" -e "$AKEY" -e "$K3" "$STATE/logs"; }
check "no key appears in any log" no_key_in_logs
mini_stack_check_logs
finish
