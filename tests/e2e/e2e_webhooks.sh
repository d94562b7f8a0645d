#!/usr/bin/env bash
# End to end: signed completion webhooks (SPEC §4, docs/webhooks.md),
# verified by a receiver that uses the standardwebhooks npm package
# (tests/webhooks/receiver.mjs, pinned by its package-lock.json), not
# genq's code.
#   1. The stack of scripts/test (https only, nothing allowlisted) refuses
#      at submit an http:// URL, loopback, link-local (metadata) and
#      private IP literals, and a URL with a user name (400 naming
#      webhook_url); an https name is taken.
#   2. A mini stack (mini_stack.bash) whose API takes http:// and
#      127.0.0.1/32. A worker without the allowlist refuses, after DNS,
#      127.0.0.1 and localhost: the receiver gets nothing and genqctl
#      webhooks list says refused.
#   3. With the allowlist: exactly one verified delivery per terminal
#      state (succeeded, failed, canceled), the job as GET shows it.
#   4. A receiver that is down (not listening), across a worker restart,
#      gets the delivery once it is back, under the same webhook-id; one
#      answering 503 gets retries under one webhook-id; a redirect is not
#      followed; a 1 MiB answer is not read past its start; 410 stops.
#   5. Secrets: a receiver with a forged secret detects it; after
#      `genqctl webhooks secret` the old and new secrets both verify during
#      the grace, only the new one after it; a replay comes again under the
#      same webhook-id; `genqctl secrets rekey` moves the secrets to a new
#      GENQ_SECRETS_KEY and a worker with only that key still signs.
# Needs what mini_stack.bash needs, GENQ_SECRETS_KEY, node and npm
# (installed from Debian when missing). Prints one line per check and
# "e2e-summary: passed=N failed=M"; exits non-zero on any failure.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
: "${GENQ_SECRETS_KEY:?GENQ_SECRETS_KEY must be set (scripts/lib.sh genq_stack_env)}"
MAIN_API=${GENQ_API_URL%/} MAIN_DB=$GENQ_DATABASE_URL
MAIN_GENQCTL=${GENQCTL:-$GENQ_BUILD_DIR/genqctl}
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" webhooks 14
RECV_DIR=$(cd "$HERE/../webhooks" && pwd)

# ---- node and the pinned receiver --------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  genq_log "installing Debian's nodejs and npm for the webhook receiver"
  genq_as_root apt-get update -qq >"$TMP/apt.log" 2>&1
  genq_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    nodejs npm >>"$TMP/apt.log" 2>&1 || tail -n 20 "$TMP/apt.log"
fi
npm_ci() {
  (cd "$RECV_DIR" && timeout 600 npm ci --no-audit --no-fund) >"$TMP/npm.log" 2>&1 || {
    tail -n 30 "$TMP/npm.log"
    return 1
  }
}
check "npm ci installs tests/webhooks (standardwebhooks) from its lock file" npm_ci
pinned() {
  [[ $(jq -r .version "$RECV_DIR/node_modules/standardwebhooks/package.json" 2>/dev/null) == \
    "$(jq -r '.dependencies.standardwebhooks' "$RECV_DIR/package.json")" ]]
}
check "standardwebhooks is installed at its pinned version" pinned

# ---- 1. the scripts/test stack refuses hostile URLs at submit ----------------
main_user=e2e-webhooks-main-$RUN
GENQ_DATABASE_URL=$MAIN_DB "$MAIN_GENQCTL" credits grant "$main_user" 20 --key "e2e:$main_user" >/dev/null
main_token=$("$MAIN_GENQCTL" token --user "$main_user" | tr -d '[:space:]')
main_submit() { # URL → STATUS, BODY
  local api=$API
  API=$MAIN_API
  req POST /v1/jobs "$main_token" "{\"kind\":\"storyboard\",\"input\":{\"prompt\":\"p\"},\"webhook_url\":\"$1\"}"
  API=$api
}
refused_at_submit() { # URL WORDS
  main_submit "$1"
  error_is 400 invalid_request && jqt '.error.message | startswith("webhook_url") and contains($w)' --arg w "$2"
}
check "https-only stack: http:// is 400 naming webhook_url" refused_at_submit "http://hooks.example.com/x" "https://"
check "https-only stack: https://127.0.0.1 is 400 (loopback)" refused_at_submit "https://127.0.0.1:8443/x" "loopback"
check "https-only stack: 169.254.169.254 is 400 (link-local, metadata)" refused_at_submit "https://169.254.169.254/latest/meta-data/" "link-local"
check "https-only stack: [::1] is 400" refused_at_submit "https://[::1]/x" "loopback"
check "https-only stack: ::ffff:10.0.0.1 is 400 (private)" refused_at_submit "https://[::ffff:10.0.0.1]/x" "private"
check "https-only stack: 2130706433 (127.0.0.1 spelled as a number) is 400" refused_at_submit "https://2130706433/x" "loopback"
check "https-only stack: a user name in the URL is 400" refused_at_submit "https://u:p@hooks.example.com/x" "user name"
main_submit "https://hooks.genq.invalid/x"
check "https-only stack: an https name is taken (202)" status_is 202

# ---- the mini stack ------------------------------------------------------------
R_PORT=""
genq_free_port R_PORT
RECV_LOG=$STATE/received.jsonl
SECRET_FILE=$STATE/receiver.secret
: >"$RECV_LOG"
echo "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" >"$SECRET_FILE" # not the user's: replaced below
export GENQ_WEBHOOK_ALLOW_HTTP=1 GENQ_WEBHOOK_ALLOW_NETS=127.0.0.1/32
export GENQ_WEBHOOK_RETRY_BASE_MS=300 GENQ_WEBHOOK_POLL_MS=200
export PROVSIM_OPENAI_LATENCY_MS=100 PROVSIM_LUMA_VIDEO_MS=20000
export GENQ_LEASE_SECONDS=5 GENQ_POLL_INTERVAL_MS=200 GENQ_POLL_MAX_INTERVAL_MS=1000
export GENQ_RETRY_BASE_MS=100 GENQ_RETRY_CAP_MS=1000
mini_stack_start
mini_stack_user 200

RECV_PID=""
receiver_start() {
  genq_start receiver "$STATE/logs/receiver.log" node "$RECV_DIR/receiver.mjs" "$R_PORT" \
    "$SECRET_FILE" "$RECV_LOG"
  RECV_PID=$GENQ_LAST_PID
  genq_wait_for "$RECV_PID" 30 genq_port_in_use "$R_PORT"
}
HOOK=http://127.0.0.1:$R_PORT

submit() { # KIND INPUT_JSON URL → JOB (empty when not 202)
  req POST /v1/jobs "$TOKEN" "{\"kind\":\"$1\",\"input\":$2,\"webhook_url\":\"$3\"}"
  JOB=""
  status_is 202 && JOB=$(jq -r .id <<<"$BODY")
}
# wait_until SECONDS CMD...: true once CMD is, polled every 0.2 s
wait_until() {
  local i n=$(($1 * 5))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}
deliveries() { "$GENQCTL" webhooks list --job "$1" --json 2>/dev/null; } # JOB → JSON array
# delivery_is JOB JQ: the job's one delivery satisfies JQ
delivery_is() { deliveries "$1" | jq -e --arg h "$HOOK" "length == 1 and (.[0] | $2)" >/dev/null; }
msg_id() { deliveries "$1" | jq -r '.[0].webhook_id'; } # JOB → its delivery's webhook-id
# received ID JQ [jq args...]: how many requests the receiver logged with
# webhook-id ID whose entry matches JQ
received() {
  local id=$1 expr=$2
  shift 2
  jq -s --arg id "$id" "$@" "[.[] | select(.id == \$id) | select($expr)] | length" "$RECV_LOG"
}
received_at_least() { (($(received "$1" "$2") >= $3)); }
nothing_received() { [[ ! -s $RECV_LOG ]]; }

# ---- 2. refused after DNS by a worker without the allowlist ----------------------
receiver_start
echo "$("$GENQCTL" webhooks secret --user "$USER_ID" 2>/dev/null)" >"$SECRET_FILE"
check "genqctl webhooks secret prints a whsec_ secret once" grep -qE '^whsec_[A-Za-z0-9+/]{43}=$' "$SECRET_FILE"
submit storyboard '{"prompt":"p"}' "http://169.254.169.254/latest/meta-data/"
check "mini stack (127.0.0.1/32 allowed): 169.254.169.254 is still 400" error_is 400 invalid_request
start_worker w-strict GENQ_WEBHOOK_ALLOW_NETS=
STRICT_PID=$WPID
submit storyboard '{"prompt":"p"}' "$HOOK/hook"
j_lit=$JOB
submit storyboard '{"prompt":"p"}' "http://localhost:$R_PORT/hook"
j_name=$JOB
check "jobs to 127.0.0.1 and localhost are taken by the API (allowlisted, a name)" [ -n "$j_lit" -a -n "$j_name" ]
poll_job "$TOKEN" "$j_lit"
poll_job "$TOKEN" "$j_name"
check "a worker without the allowlist refuses the 127.0.0.1 delivery" \
  wait_until 20 delivery_is "$j_lit" '.state == "refused" and (.last_error | contains("loopback"))'
check "... and the localhost one, after DNS (localhost resolves to loopback)" \
  wait_until 20 delivery_is "$j_name" '.state == "refused" and (.last_error | test("localhost resolves to (127\\.0\\.0\\.1|::1)"))'
"$GENQCTL" webhooks list --job "$j_name" >"$TMP/list.txt" 2>&1
check "genqctl webhooks list shows refused in its table" grep -q "refused" "$TMP/list.txt"
check "the receiver got nothing" nothing_received
genq_stop_pid "$STRICT_PID"

# ---- 3. one verified delivery per terminal state ----------------------------------
start_worker w1
W1_PID=$WPID
submit storyboard '{"prompt":"a bakery"}' "$HOOK/hook"
j_ok=$JOB
submit storyboard '{"prompt":"provsim:refuse"}' "$HOOK/hook"
j_fail=$JOB
submit video '{"prompt":"a long video"}' "$HOOK/hook"
j_cancel=$JOB
req POST "/v1/jobs/$j_cancel/cancel" "$TOKEN" '{}'
check "the video job is canceled" jqt '.status == "canceled"'
for j in "$j_ok" "$j_fail"; do poll_job "$TOKEN" "$j"; done
one_verified() { # JOB EVENT STATUS
  local id
  id=$(msg_id "$1")
  [[ $id == msg_* ]] && wait_until 20 received_at_least "$id" '.verified' 1 &&
    sleep 1 && (($(received "$id" 'true') == 1)) &&
    (($(received "$id" '.verified and .type == $e and .job_status == $s and .job_id == $j' \
      --arg e "$2" --arg s "$3" --arg j "$1" 2>/dev/null || echo 0) == 1))
}
check "succeeded: exactly one verified job.succeeded delivery, the job succeeded" one_verified "$j_ok" job.succeeded succeeded
check "failed: exactly one verified job.failed delivery" one_verified "$j_fail" job.failed failed
check "canceled: exactly one verified job.canceled delivery" one_verified "$j_cancel" job.canceled canceled
check "genqctl webhooks list: delivered at the first attempt" \
  delivery_is "$j_ok" '.state == "delivered" and .attempts == 1 and .last_status == 204 and .event == "job.succeeded" and (.delivered_at | type == "string")'
check "the webhook-id is msg_ and the delivery's hex" \
  delivery_is "$j_ok" '.webhook_id == ("msg_" + (.id | gsub("-"; "")))'
req GET "/v1/jobs/$j_ok" "$TOKEN"
check "the delivered job object is the one GET /v1/jobs/{id} shows" \
  eval '(($(received "$(msg_id "$j_ok")" ".data == \$job" --argjson job "$BODY") == 1))'

# ---- 4. down, back, across a worker restart; 503; redirect; big; gone ---------------
genq_stop_pid "$RECV_PID" # nothing listens now
submit storyboard '{"prompt":"while down"}' "$HOOK/hook"
j_down=$JOB
poll_job "$TOKEN" "$j_down"
check "receiver down: the delivery is retried (attempts 2+, pending, connection error)" \
  wait_until 20 delivery_is "$j_down" '.state == "pending" and .attempts >= 2 and .last_status == null and (.last_error | length > 0)'
down_id=$(msg_id "$j_down")
genq_stop_pid "$W1_PID"
check "the worker exits 0 on SIGTERM with a delivery pending" [ "${GENQ_PID_RC[$W1_PID]}" == 0 ]
receiver_start
start_worker w2
W2_PID=$WPID
check "receiver back, new worker: the delivery arrives verified" wait_until 40 received_at_least "$down_id" '.verified' 1
check "... under the same webhook-id, once" eval '(($(received "$down_id" true) == 1))'
check "... and genqctl says delivered after several attempts" \
  delivery_is "$j_down" '.state == "delivered" and .attempts >= 3'

submit storyboard '{"prompt":"p"}' "$HOOK/down"
j_503=$JOB
poll_job "$TOKEN" "$j_503"
check "503: retried under one webhook-id (two verified requests, same id)" \
  wait_until 20 received_at_least "$(msg_id "$j_503")" '.verified' 2
check "503: genqctl shows pending with last status 503" \
  delivery_is "$j_503" '.state == "pending" and .last_status == 503 and .attempts >= 2'

submit storyboard '{"prompt":"p"}' "$HOOK/redirect"
j_302=$JOB
poll_job "$TOKEN" "$j_302"
check "redirect: recorded as 302, not followed" \
  wait_until 20 delivery_is "$j_302" '.last_status == 302 and (.last_error | contains("redirect"))'
check "redirect: the target (/hook?redirected=1) was never requested" \
  eval '(($(jq -s "[.[] | select(.path | contains(\"redirected\"))] | length" "$RECV_LOG") == 0))'

submit storyboard '{"prompt":"p"}' "$HOOK/big"
j_big=$JOB
poll_job "$TOKEN" "$j_big"
check "a 1 MiB answer: delivered, its body not read" \
  wait_until 20 delivery_is "$j_big" '.state == "delivered" and .last_status == 200'

submit storyboard '{"prompt":"p"}' "$HOOK/gone"
j_410=$JOB
poll_job "$TOKEN" "$j_410"
check "410 Gone: failed after one attempt" \
  wait_until 20 delivery_is "$j_410" '.state == "failed" and .attempts == 1 and .last_status == 410'

# ---- 5. secrets: forged, rotated, replayed, rekeyed ----------------------------------
good_secret=$(cat "$SECRET_FILE")
echo "whsec_$(openssl rand -base64 32)" >"$SECRET_FILE"
submit storyboard '{"prompt":"p"}' "$HOOK/hook"
j_forged=$JOB
poll_job "$TOKEN" "$j_forged"
check "a receiver with another secret detects the forgery (verification fails)" \
  wait_until 20 received_at_least "$(msg_id "$j_forged")" '.verified == false' 1
echo "$good_secret" >"$SECRET_FILE"
check "... and verifies the retry once it has the user's secret" \
  wait_until 20 received_at_least "$(msg_id "$j_forged")" '.verified' 1

new_secret=$("$GENQCTL" webhooks secret --user "$USER_ID" --grace 1h 2>/dev/null)
check "rotation prints a new secret" eval '[[ $new_secret == whsec_* && $new_secret != "$good_secret" ]]'
submit storyboard '{"prompt":"p"}' "$HOOK/hook"
j_grace=$JOB
poll_job "$TOKEN" "$j_grace"
check "during the grace the old secret still verifies" \
  wait_until 20 received_at_least "$(msg_id "$j_grace")" '.verified' 1
check "... the delivery carrying two signatures (v1,old v1,new)" \
  received_at_least "$(msg_id "$j_grace")" '.sigs == 2' 1
echo "$new_secret" >"$SECRET_FILE"
submit storyboard '{"prompt":"p"}' "$HOOK/hook"
j_new=$JOB
poll_job "$TOKEN" "$j_new"
check "... and so does the new one" wait_until 20 received_at_least "$(msg_id "$j_new")" '.verified' 1
third=$("$GENQCTL" webhooks secret --user "$USER_ID" --grace 0s 2>/dev/null)
submit storyboard '{"prompt":"p"}' "$HOOK/hook"
j_after=$JOB
poll_job "$TOKEN" "$j_after"
check "after a rotation without grace the old secret no longer verifies" \
  wait_until 20 received_at_least "$(msg_id "$j_after")" '.verified == false' 1
echo "$third" >"$SECRET_FILE"
check "... the new one does" wait_until 20 received_at_least "$(msg_id "$j_after")" '.verified' 1

ok_id=$(msg_id "$j_ok")
"$GENQCTL" webhooks replay "$ok_id" >"$TMP/replay.txt" 2>&1
check "genqctl webhooks replay takes the webhook-id" grep -q "replayed $ok_id" "$TMP/replay.txt"
check "the replay arrives verified under the same webhook-id" \
  wait_until 20 received_at_least "$ok_id" '.verified' 2

new_key="k2:$(openssl rand -base64 32)" old_key=$GENQ_SECRETS_KEY
GENQ_SECRETS_KEY=$new_key GENQ_SECRETS_KEY_PREVIOUS=$old_key "$GENQCTL" secrets rekey >"$TMP/rekey.txt" 2>&1
check "genqctl secrets rekey seals the stored secrets under the new key" grep -qE "^[1-9][0-9]* secrets? sealed again under key k2" "$TMP/rekey.txt"
secrets_not_under() { [[ $(psql_db -c "select count(*) from webhook_secrets where key_id <> '$1'") == 0 ]]; }
check "no stored secret is left under the old key" secrets_not_under k2
no_plaintext() { # psql variables are read from stdin only
  [[ $(psql_db -v s="${1#whsec_}" <<<"select count(*) from webhook_secrets where strpos(sealed, :'s') > 0") == 0 ]]
}
check "the database holds no plaintext secret" no_plaintext "$third"
genq_stop_pid "$W2_PID"
start_worker w3 GENQ_SECRETS_KEY="$new_key" GENQ_SECRETS_KEY_PREVIOUS=
submit storyboard '{"prompt":"p"}' "$HOOK/hook"
j_rekeyed=$JOB
poll_job "$TOKEN" "$j_rekeyed"
check "a worker with only the new key signs (verified)" \
  wait_until 20 received_at_least "$(msg_id "$j_rekeyed")" '.verified' 1

check "no log holds a secret" eval '! grep -rqF "${third#whsec_}" "$STATE/logs"'
genq_stop_pid "$RECV_PID"
mini_stack_stop
finish
