#!/usr/bin/env bash
# End to end: the admin dashboard (GET /admin, docs/admin.md) in a real
# headless Chromium (Debian's chromium, driven by playwright-core from
# tests/admin/package-lock.json), on a mini stack of its own whose workers
# this script starts and stops:
#
# - an image job dies at once (GENQ_MAX_ATTEMPTS_IMAGE=1, Luma answering
#   429 for a few seconds: provsim's rate_limit knob), then the worker stops
#   and a storyboard job stays queued;
# - tests/admin/dashboard.mjs signs in with an admin token and checks the
#   page: its CSP, no console error, the queues, the queued job, the dead
#   job, the live event stream; clicks the dead job's retry button and
#   watches it leave the dead list; then signs in with a user's token and is
#   told the admin API answered 404. It saves a screenshot
#   (GENQ_ADMIN_SCREENSHOT, default in the state folder; docs/admin-dashboard.png
#   was made this way);
# - PostgreSQL then has the retried job queued again, out of the dead set,
#   holding its price again, and the retry in admin_actions with the admin
#   as its actor and the page's request id; once a worker runs again both
#   jobs succeed and `genqctl audit` is clean.
#
# Needs GENQ_BUILD_DIR and the stack's GENQ_DATABASE_URL and GENQ_REDIS_URL
# (scripts/test sets them), node and npm, and /usr/bin/chromium
# (GENQ_TEST_DEB_PACKAGES in scripts/lib.sh).
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" admin_browser 6

export GENQ_MAX_ATTEMPTS_IMAGE=1
export PROVSIM_LUMA_IMAGE_MS=300 PROVSIM_OPENAI_LATENCY_MS=100
mini_stack_start

ADMIN_DIR=$HERE/../admin
npm_ci() {
  (cd "$ADMIN_DIR" && timeout 600 npm ci --no-audit --no-fund) >"$TMP/npm.log" 2>&1 || {
    cat "$TMP/npm.log" >&2
    return 1
  }
}
check "npm ci installs tests/admin (playwright-core) from its lock file" npm_ci
check "Debian's chromium is installed" test -x "${CHROMIUM:-/usr/bin/chromium}"

mini_stack_user 20
ADMIN=e2e-admin-browser-$RUN
ADMIN_TOKEN=$("$GENQCTL" token --user "$ADMIN" --admin | tr -d '[:space:]')
submit() { # KIND INPUT: prints the new job's id
  curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "{\"kind\":\"$1\",\"input\":$2}" "$API/v1/jobs" | jq -r '.id // empty'
}

# --- a dead job, then no worker, then a queued job -----------------------------
curl -sS --max-time 5 -X POST -H 'Content-Type: application/json' \
  --data-binary '{"seconds":4,"retry_after_s":1}' "$SIM/_sim/luma/rate_limit" >/dev/null
WINDOW_END=$((SECONDS + 5))
start_worker worker-1
DEAD=$(submit image '{"prompt":"a lighthouse in the rain"}')
check "the image job (one attempt) is accepted" [ -n "$DEAD" ]
check "Luma's 429 kills it at once" poll_job "$TOKEN" "$DEAD"
check "it is failed and in the dead-letter set" jqt '.status == "failed" and (.dead_at | type == "string")'
genq_stop_pid "$WPID"
check "the worker stopped (exit 0)" [ "${GENQ_PID_RC[$WPID]}" == 0 ]
QUEUED=$(submit storyboard '{"prompt":"a coffee shop at dawn","scenes":2}')
check "a storyboard job is accepted and, with no worker, stays queued" \
  eval 'sleep 1; req GET "/v1/jobs/$QUEUED" "$TOKEN"; jqt ".status == \"queued\""'
while ((SECONDS < WINDOW_END)); do sleep 0.5; done # Luma answers again

# --- the browser ---------------------------------------------------------------
SHOT=${GENQ_ADMIN_SCREENSHOT:-$STATE/admin-dashboard.png}
RC=0
GENQ_API_URL=$API ADMIN_TOKEN=$ADMIN_TOKEN USER_TOKEN=$TOKEN QUEUED_JOB=$QUEUED DEAD_JOB=$DEAD \
  SCREENSHOT=$SHOT timeout 300 node "$ADMIN_DIR/dashboard.mjs" >"$TMP/browser.log" 2>&1 || RC=$?
cat "$TMP/browser.log"
# each of the browser's checks counts as one of this script's
PASSED=$((PASSED + $(grep -c '^ok ' "$TMP/browser.log")))
FAILED=$((FAILED + $(grep -c '^FAIL ' "$TMP/browser.log")))
check "the browser run exits 0" [ "$RC" -eq 0 ]
check "the screenshot is a PNG" eval '[ "$(head -c 8 "$SHOT" | od -An -tx1 | tr -d " \n")" == 89504e470d0a1a0a ]'

# --- what the click did, as PostgreSQL has it ---------------------------------
check "the retried job is queued again, out of the dead set, holding its price again" \
  eval '[ "$(psql_db -c "select status, dead_at is null, held, retries from jobs where id = '"'$DEAD'"'")" == "queued|t|2|1" ]'
check "admin_actions has the retry, by the admin's session, with the page's request id" \
  eval '[ "$(psql_db -c "select actor_kind || '"' '"' || actor_id || '"' '"' || (length(request_id) > 0)::text
                        from admin_actions where action = '"'job.retry'"' and target = '"'$DEAD'"'")" == "user $ADMIN true" ]'
check "the admin API logged the action" grep -q "\"msg\":\"admin action\".*\"target\":\"$DEAD\"" "$STATE/logs/api.log"
check "the user's token never passed the admin API (no action by them)" \
  [ "$(psql_db -c "select count(*) from admin_actions where actor_id = '$USER_ID'")" == 0 ]

# --- a worker again: both jobs run ------------------------------------------
start_worker worker-2
check "the retried job now succeeds" eval 'poll_job "$TOKEN" "$DEAD" && jqt ".status == \"succeeded\" and .dead_at == null"'
check "the queued job succeeds" eval 'poll_job "$TOKEN" "$QUEUED" && jqt ".status == \"succeeded\""'
check "genqctl audit is clean" "$GENQCTL" audit

# --- a worker made quiet, then stopped, through the admin API --------------------
W2=$(curl -sS --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" "$API/v1/admin/workers" |
  jq -r '.workers[] | select(.pid == '"$WPID"') | .id')
check "the admin API lists worker-2" [ -n "$W2" ]
worker_state_is() { # STATE: the registry shows it within 10 s
  local i
  for ((i = 0; i < 50; i++)); do
    [ "$(curl -sS --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" "$API/v1/admin/workers" |
      jq -r --arg w "$W2" '.workers[] | select(.id == $w) | .state')" == "$1" ] && return 0
    sleep 0.2
  done
  return 1
}
req POST "/v1/admin/workers/$W2/quiet" "$ADMIN_TOKEN"
check "POST .../quiet: 202 with its action" jqt '.worker_id == $w and .command == "quiet" and .action.action == "worker.quiet"' --arg w "$W2"
check "the worker says quiet in the registry" worker_state_is quiet
req POST "/v1/admin/workers/$W2/stop" "$ADMIN_TOKEN"
check "POST .../stop: 202" eval 'status_is 202 && jqt ".command == \"stop\""'
stopped() {
  local i
  for ((i = 0; i < 100; i++)); do
    genq_alive "$WPID" || return 0
    sleep 0.2
  done
  return 1
}
check "the worker exits" stopped
check "both commands are in admin_actions, by the admin" \
  [ "$(psql_db -c "select string_agg(action || ' ' || actor_id, ',' order by id) from admin_actions where target = '$W2'")" == "worker.quiet $ADMIN,worker.stop $ADMIN" ]

mini_stack_stop
finish
