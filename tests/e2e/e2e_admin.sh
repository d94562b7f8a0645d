#!/usr/bin/env bash
# End to end: the admin API, /v1/admin (docs/admin.md), with curl against
# the running stack:
# - a user's session token and a plain API key get the same 404 as an
#   unknown path on every admin route, whatever the method; no token is
#   401; an admin's session token and an admin API key get in;
# - stats (per kind and totals, dead included), workers, providers;
# - GET /v1/admin/jobs with each filter (status failed, dead, canceled,
#   queued, running; kind; user; since; limit and cursor) and its 400s;
# - retry by filter: a dry run counts and changes nothing, max and the
#   fields are bounded, the real one retries oldest first up to max;
# - retry one (402 without credits and nothing changed, 409 for a job that
#   did not fail, 404), cancel (once; again changes nothing);
# - credits grant: once per Idempotency-Key (a replay says so and changes
#   nothing, the key with another amount is 409), its 400s and 415;
# - every action is one audit row, with who, what, the target and the
#   request id, listed by GET /v1/admin/actions and logged by genq-api;
#   genqctl's retries, cancels and grants are recorded too (actor genqctl);
# - the admin event stream sends stats, workers and providers, and the
#   actions as they happen.
# Jobs are this script's own users', and the retries by filter are
# filtered to them, so no other script's jobs are touched.
#
# Needs GENQ_API_URL, GENQCTL, GENQ_DATABASE_URL and the stack's short
# retry delays (scripts/test: GENQ_RETRY_BASE_MS=100), as e2e_dead.
# shellcheck disable=SC2016,SC2034 # $names in single quotes are jq variables; eval reads some
set -uo pipefail

. "$(dirname "$0")/helpers.bash"
: "${GENQ_DATABASE_URL:?GENQ_DATABASE_URL must be set}"

RUN=$$-$RANDOM
U=e2e-admin-u-$RUN       # the jobs' owner
BOSS=e2e-admin-boss-$RUN # an admin
psql_val() { psql "$GENQ_DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
USER_TOKEN=$("$GENQCTL" token --user "$U" | tr -d '[:space:]')
ADMIN_TOKEN=$("$GENQCTL" token --user "$BOSS" --admin | tr -d '[:space:]')
KEY_JSON=$("$GENQCTL" keys create --user "$BOSS" --name "e2e admin" --admin --json)
ADMIN_KEY=$(jq -r '.key // empty' <<<"$KEY_JSON")
ADMIN_KEY_ID=$(jq -r '.id // empty' <<<"$KEY_JSON")
PLAIN_KEY=$("$GENQCTL" keys create --user "$U" --json | jq -r '.key // empty')
check "an admin API key and a plain one are made" [ -n "$ADMIN_KEY" -a -n "$PLAIN_KEY" ]
check "genqctl grants the user 4 credits (recorded)" "$GENQCTL" credits grant "$U" 4 --key "e2e:$U"
check "genqctl's grant is in the audit, its actor genqctl" \
  [ "$(psql_val -c "select actor_kind from admin_actions where action = 'credits.grant' and target = '$U'")" == genqctl ]

# --- who gets in ---------------------------------------------------------------
ROUTES=("GET /v1/admin/stats" "GET /v1/admin/workers" "GET /v1/admin/providers" "GET /v1/admin/jobs"
  "GET /v1/admin/jobs?status=dead" "GET /v1/admin/actions" "GET /v1/admin/events"
  "POST /v1/admin/jobs/retry" "POST /v1/admin/jobs/00000000-0000-7000-8000-000000000000/retry"
  "POST /v1/admin/jobs/00000000-0000-7000-8000-000000000000/cancel" "POST /v1/admin/credits/grant"
  "POST /v1/admin/workers/some-worker/quiet" "POST /v1/admin/workers/some-worker/stop"
  "DELETE /v1/admin/stats" "GET /v1/admin" "GET /v1/admin/nothing-here")
all_404() { # TOKEN: every admin route (and method) answers it 404 not_found, "no such endpoint"
  local r m p
  for r in "${ROUTES[@]}"; do
    read -r m p <<<"$r"
    if [[ $m == POST ]]; then req POST "$p" "$1" '{"user_id":"x","credits":1,"reason":"x"}'; else req "$m" "$p" "$1"; fi
    if ! error_is 404 not_found || ! jqt '.error.message == "no such endpoint"'; then
      echo "       $r answered $STATUS"
      return 1
    fi
  done
}
check "a user's session token: 404 on every admin route and method" all_404 "$USER_TOKEN"
check "a user's plain API key: 404 on every admin route" all_404 "$PLAIN_KEY"
req GET /v1/admin/stats -
check "no token: 401" error_is 401 unauthorized
req GET /v1/admin/stats "$ADMIN_TOKEN"
check "an admin's session token: 200" status_is 200
req GET /v1/admin/stats "$ADMIN_KEY"
check "an admin API key: 200" status_is 200
req DELETE /v1/admin/stats "$ADMIN_TOKEN"
check "an admin with a wrong method: 405 with Allow" eval 'error_is 405 method_not_allowed && header_is Allow GET'
req GET /v1/admin/nothing-here "$ADMIN_TOKEN"
check "an admin on an unknown admin path: 404" error_is 404 not_found

# --- the fleet -------------------------------------------------------------------
req GET /v1/admin/stats "$ADMIN_TOKEN"
check "stats: every kind with queued, ready, retry_waiting, oldest_age_s, running, dead; totals" \
  jqt '(.kinds | map(.kind)) == ["storyboard", "image", "video", "lipsync", "campaign"]
       and all(.kinds[]; (.queued | type == "number") and (.ready | type == "number")
                         and (.retry_waiting | type == "number") and has("oldest_age_s")
                         and (.running | type == "number") and (.dead | type == "number"))
       and .queued == ([.kinds[].queued] | add) and .dead == ([.kinds[].dead] | add)
       and .running == ([.kinds[].running] | add) and (.at | type == "string")'
DEAD_BEFORE=$(jq -r '.kinds[] | select(.kind == "image") | .dead' <<<"$BODY")
req GET /v1/admin/workers "$ADMIN_TOKEN"
check "workers: the stack's live workers, from the registry" \
  jqt '(.workers | length) >= 1 and all(.workers[]; (.id | type == "string") and .state == "running"
       and (.last_beat_age_ms | type == "number")) and (.at_ms | type == "number")'
req GET /v1/admin/providers "$ADMIN_TOKEN"
check "providers: openai, luma and hedra with window, slots, pause, rate and breaker" \
  jqt '(.providers | map(.provider)) == ["openai", "luma", "hedra"]
       and all(.providers[]; has("window") and has("in_use") and has("paused") and has("rate_per_minute")
                             and (.breaker | IN("closed", "open", "half_open", "forced_open")))'
req POST /v1/admin/workers/no-such-worker:1:abcdef/quiet "$ADMIN_TOKEN"
check "quiet for an id no live worker has: 404, nothing recorded" \
  eval 'error_is 404 not_found && [ "$(psql_val -c "select count(*) from admin_actions where target = '"'no-such-worker:1:abcdef'"'")" == 0 ]'

# --- jobs of every status ------------------------------------------------------
submit() { # KIND INPUT: sets JID
  req POST /v1/jobs "$USER_TOKEN" "{\"kind\":\"$1\",\"input\":$2}"
  JID=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
}
T0=$(date -u -d '-2 seconds' +%Y-%m-%dT%H:%M:%SZ)
submit image '{"prompt":"provsim:error500 a lighthouse"}'
DEAD=$JID
submit storyboard '{"prompt":"provsim:refuse a ransom note","scenes":2}'
REFUSED=$JID
check "a doomed image job and a refused storyboard are accepted" [ -n "$DEAD" -a -n "$REFUSED" ]
check "the image job dies (its attempts run out)" eval 'poll_job "$USER_TOKEN" "$DEAD" && jqt ".dead_at | type == \"string\""'
check "the storyboard fails at once, not dead" eval 'poll_job "$USER_TOKEN" "$REFUSED" && jqt ".status == \"failed\" and .dead_at == null"'
req GET /v1/admin/stats "$ADMIN_TOKEN"
check "stats count the dead job among the image kind's dead" \
  jqt '(.kinds[] | select(.kind == "image") | .dead) >= ($b | tonumber) + 1' --arg b "$DEAD_BEFORE"
submit image '{"prompt":"provsim:slow waves"}'
CANCEL=$JID
check "a slow image job is accepted" [ -n "$CANCEL" ]
req POST "/v1/admin/jobs/$CANCEL/cancel" "$ADMIN_TOKEN"
check "an admin cancels the user's image job: 200, canceled, what it held released" \
  jqt '.id == $id and .status == "canceled" and .user_id == $u and .cost.held == 0' --arg id "$CANCEL" --arg u "$U"
req POST "/v1/admin/jobs/$CANCEL/cancel" "$ADMIN_TOKEN"
check "a second cancel answers the job as it is" jqt '.status == "canceled"'
check "the cancel is one audit row (the second changed nothing)" \
  [ "$(psql_val -c "select count(*) from admin_actions where action = 'job.cancel' and target = '$CANCEL'")" == 1 ]

jobs_are() { # QUERY IDS: GET /v1/admin/jobs?QUERY answers 200 with exactly those ids, in order
  req GET "/v1/admin/jobs?$1" "$ADMIN_TOKEN"
  status_is 200 && [ "$(jq -r '[.data[].id] | join(" ")' <<<"$BODY" 2>/dev/null)" == "$2" ]
}
check "status=dead&user= lists the dead job alone" jobs_are "status=dead&user=$U" "$DEAD"
BY_END=$(psql_val -c "select string_agg(id::text, ' ' order by finished_at desc, id desc) from jobs
                      where user_id = '$U' and status = 'failed'")
check "status=failed (the default) lists both failures, the last to end first" jobs_are "user=$U" "$BY_END"
check "the rows carry user, kind, status, error and dead_at" \
  jqt 'all(.data[]; .user_id == $u and .status == "failed" and (.error.code | type == "string") and has("dead_at"))' --arg u "$U"
check "status=canceled lists the canceled job" jobs_are "status=canceled&user=$U" "$CANCEL"
check "kind=storyboard keeps the refused one" jobs_are "status=failed&kind=storyboard&user=$U" "$REFUSED"
check "kind=video has no failure" jobs_are "status=failed&kind=video&user=$U" ""
check "since=10m keeps them" jobs_are "status=dead&user=$U&since=10m" "$DEAD"
check "since an RFC 3339 time in the future: none" jobs_are "status=dead&user=$U&since=2999-01-01T00:00:00Z" ""
check "limit=1 gives the last to end and a cursor" \
  eval 'jobs_are "status=failed&user=$U&limit=1" "${BY_END%% *}" && jqt ".next_cursor | type == \"string\""'
CURSOR=$(jq -r '.next_cursor // empty' <<<"$BODY")
check "the cursor gives the other, and the last page has no cursor" \
  eval 'jobs_are "status=failed&user=$U&limit=1&cursor=$CURSOR" "${BY_END##* }" && jqt ".next_cursor == null"'
bad_list() { # QUERY: 400 invalid_request naming the parameter
  req GET "/v1/admin/jobs?$1" "$ADMIN_TOKEN"
  error_is 400 invalid_request && jqt '.error.message | test($p)' --arg p "$2"
}
check "status=succeeded is 400" bad_list "status=succeeded" status
check "an unknown kind is 400" bad_list "kind=poem" kind
check "limit=0 and limit=101 are 400" eval 'bad_list "limit=0" limit && bad_list "limit=101" limit'
check "since=yesterday is 400" bad_list "since=yesterday" since
check "a forged cursor is 400" bad_list "cursor=12.not-a-cursor" cursor

# --- retry by filter -------------------------------------------------------------
BEFORE_JOB=$(psql_val -c "select status, dead_at, epoch from jobs where id = '$DEAD'")
req POST /v1/admin/jobs/retry "$ADMIN_TOKEN" "{\"status\":\"dead\",\"user_id\":\"$U\",\"since\":\"$T0\",\"dry_run\":true}"
check "a dry run counts the user's dead job and lists it" \
  jqt '.dry_run == true and .matched == 1 and .more == false and .jobs == [$id]' --arg id "$DEAD"
check "and changes nothing" [ "$(psql_val -c "select status, dead_at, epoch from jobs where id = '$DEAD'")" == "$BEFORE_JOB" ]
req POST /v1/admin/jobs/retry "$ADMIN_TOKEN" "{\"status\":\"failed\",\"user_id\":\"$U\",\"dry_run\":true,\"max\":1}"
check "status=failed with max 1: one of the two, and more" jqt '.matched == 1 and .more == true and (.jobs | length) == 1'
bad_retry() { # BODY PATTERN
  req POST /v1/admin/jobs/retry "$ADMIN_TOKEN" "$1"
  error_is 400 "*" && jqt '.error.message | test($p)' --arg p "$2"
}
check "max 0 and max 1001 are 400" eval 'bad_retry "{\"max\":0}" max && bad_retry "{\"max\":1001}" max'
check "status canceled is 400" bad_retry '{"status":"canceled"}' status
check "an unknown field is 400 naming it" bad_retry '{"kinds":"image"}' kinds
check "a body that is not JSON is 400" bad_retry 'retry!' JSON
check "max_attempts 0 is 400" bad_retry '{"max_attempts":0}' max_attempts
REQ_HEADERS=(-H "X-Request-Id: e2e-admin-filter-$RUN")
req POST /v1/admin/jobs/retry "$ADMIN_TOKEN" "{\"status\":\"dead\",\"user_id\":\"$U\",\"kind\":\"image\",\"max\":10}"
REQ_HEADERS=()
check "the retry by filter retries the dead job" \
  jqt '.dry_run == false and .matched == 1 and (.retried | map(.id)) == [$id] and .not_retried == []' --arg id "$DEAD"
check "it was taken out of the dead set and holds its price again (its retry's hold)" \
  eval '[ "$(psql_val -c "select retries from jobs where id = '"'$DEAD'"'")" == 1 ] &&
        [ "$(psql_val -c "select movement || '"' '"' || held_delta from ledger where idem_key = '"'job:$DEAD:hold:retry:1'"'")" == "hold 2" ]'

check "its audit row names the admin, the filter and the request id" \
  [ "$(psql_val -c "select actor_kind || ' ' || actor_id || ' ' || request_id || ' ' || (detail -> 'filter' ->> 'user_id')
                    from admin_actions where action = 'job.retry' and target = '$DEAD'")" == "user $BOSS e2e-admin-filter-$RUN $U" ]
check "GET /v1/admin/actions?target= has it with the request id" eval 'req GET "/v1/admin/actions?target=$DEAD" "$ADMIN_TOKEN"; jqt ".data[0].request_id == \$r" --arg r "e2e-admin-filter-$RUN"'
check "it dies again (its prompt still fails)" eval 'sleep 1; poll_job "$USER_TOKEN" "$DEAD" && jqt ".dead_at | type == \"string\""'

# --- retry one -----------------------------------------------------------------------
# the user spends what is still available (storyboards at 1 credit), so that
# a retry's hold cannot be paid
AVAIL=$(curl -sS -H "Authorization: Bearer $USER_TOKEN" "$API/v1/credits" | jq -r '.available')
spend() { # submit storyboard jobs until nothing is available (each costs 1)
  local i
  for ((i = 0; i < AVAIL; i++)); do submit storyboard '{"prompt":"a poster","scenes":1}'; done
  for ((i = 0; i < 50; i++)); do
    [ "$(curl -sS -H "Authorization: Bearer $USER_TOKEN" "$API/v1/credits" | jq -r '.available')" == 0 ] && return 0
    sleep 0.2
  done
  return 1
}
check "the user spends every available credit" spend
BEFORE_JOB=$(psql_val -c "select status, dead_at, epoch, held from jobs where id = '$DEAD'")
req POST "/v1/admin/jobs/$DEAD/retry" "$ADMIN_KEY"
check "a retry the user cannot pay for: 402 insufficient_credits" error_is 402 insufficient_credits
check "and nothing changed, nothing recorded" \
  eval '[ "$(psql_val -c "select status, dead_at, epoch, held from jobs where id = '"'$DEAD'"'")" == "$BEFORE_JOB" ] &&
        [ "$(psql_val -c "select count(*) from admin_actions where action = '"'job.retry'"' and target = '"'$DEAD'"'")" == 1 ]'

# --- credits grant --------------------------------------------------------------------
grant() { # KEY BODY
  REQ_HEADERS=(-H "Idempotency-Key: $1")
  req POST /v1/admin/credits/grant "$ADMIN_KEY" "$2"
  REQ_HEADERS=()
}
grant "e2e-$RUN" "{\"user_id\":\"$U\",\"credits\":5,\"reason\":\"e2e goodwill\"}"
check "an admin API key grants 5 credits: 200, not a replay" \
  eval 'status_is 200 && jqt ".granted == 5 and .replayed == false and .credits.available == 5 and .action.action == \"credits.grant\"" &&
        ! grep -qi "^idempotent-replayed" "$TMP/headers"'
GRANT_ACTION=$(jq -r '.action.id' <<<"$BODY")
grant "e2e-$RUN" "{\"user_id\":\"$U\",\"credits\":5,\"reason\":\"e2e goodwill\"}"
check "the same key again: 200, Idempotent-Replayed, the first grant's action, nothing added" \
  eval 'status_is 200 && header_is Idempotent-Replayed true && jqt ".replayed == true and .credits.available == 5 and .action.id == (\$a | tonumber)" --arg a "$GRANT_ACTION"'
grant "e2e-$RUN" "{\"user_id\":\"$U\",\"credits\":6,\"reason\":\"e2e goodwill\"}"
check "the key with another amount: 409, nothing added" \
  eval 'error_is 409 idempotency_conflict &&
        [ "$(curl -sS -H "Authorization: Bearer $USER_TOKEN" "$API/v1/credits" | jq .available)" == 5 ]'
check "the grant is one audit row: the API key is its actor, its user beside it" \
  [ "$(psql_val -c "select count(*) || ' ' || min(actor_kind) || ' ' || min(actor_id) || ' ' || min(actor_user)
                    from admin_actions where action = 'credits.grant' and detail ->> 'ledger_key' = 'admin:e2e-$RUN'")" == "1 api_key $ADMIN_KEY_ID $BOSS" ]
bad_grant() { # BODY PATTERN
  req POST /v1/admin/credits/grant "$ADMIN_TOKEN" "$1"
  error_is 400 "*" && jqt '.error.message | test($p)' --arg p "$2"
}
check "no reason, 0 credits, 1.5 credits, no user: 400 naming the field" \
  eval 'bad_grant "{\"user_id\":\"$U\",\"credits\":1}" reason && bad_grant "{\"user_id\":\"$U\",\"credits\":0,\"reason\":\"x\"}" credits &&
        bad_grant "{\"user_id\":\"$U\",\"credits\":1.5,\"reason\":\"x\"}" credits && bad_grant "{\"credits\":1,\"reason\":\"x\"}" user_id'
STATUS=$(curl -sS -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: text/plain' \
  --data-binary '{"user_id":"x","credits":1,"reason":"x"}' "$API/v1/admin/credits/grant")
BODY=$(cat "$TMP/body")
check "a grant that is not application/json: 415" error_is 415 unsupported_media_type

# --- retry one, paid for; refusals --------------------------------------------------
req POST "/v1/admin/jobs/$DEAD/retry" "$ADMIN_TOKEN" '{"max_attempts":2}'
check "paid for, the retry of one job: 200, queued again with max_attempts 2" \
  jqt '.id == $id and .user_id == $u and .dead_at == null and .max_attempts == 2 and .attempt == 0' --arg id "$DEAD" --arg u "$U"
check "two retry rows now: by filter, then by id" \
  [ "$(psql_val -c "select string_agg(coalesce(detail -> 'filter' ->> 'status', 'id'), ',' order by id) from admin_actions where action = 'job.retry' and target = '$DEAD'")" == "dead,id" ]
req POST "/v1/admin/jobs/$CANCEL/retry" "$ADMIN_TOKEN"
check "a canceled job cannot be retried: 409 not_failed" error_is 409 not_failed
req POST /v1/admin/jobs/00000000-0000-7000-8000-000000000000/retry "$ADMIN_TOKEN"
check "an unknown job: 404" error_is 404 not_found
req POST /v1/admin/jobs/not-a-job/retry "$ADMIN_TOKEN"
check "a malformed id: 404" error_is 404 not_found

# --- genqctl is recorded the same way -------------------------------------------------
check "it dies once more" eval 'sleep 1; poll_job "$USER_TOKEN" "$DEAD" && jqt ".dead_at | type == \"string\""'
check "genqctl jobs retry takes it (exit 0)" eval '"$GENQCTL" jobs retry "$DEAD" >/dev/null'
check "the audit has genqctl's retry, its actor the OS user and host" \
  eval '[ "$(psql_val -c "select actor_kind || (actor_id like '"'%@%'"')::text || coalesce(request_id, '"'-'"')
                          from admin_actions where action = '"'job.retry'"' and target = '"'$DEAD'"' order by id desc limit 1")" == "genqctltrue-" ]'

# --- the audit, listed ---------------------------------------------------------------
req GET "/v1/admin/actions?target=$DEAD" "$ADMIN_TOKEN"
check "actions?target= lists the job's three retries, newest first" \
  jqt '(.data | length) == 3 and all(.data[]; .action == "job.retry" and .target == $id)
       and .data[0].actor.kind == "genqctl" and .data[2].actor == {kind: "user", id: $b}
       and (.data | map(.id)) == (.data | map(.id) | sort | reverse)' --arg id "$DEAD" --arg b "$BOSS"
req GET "/v1/admin/actions?action=credits.grant&target=$U" "$ADMIN_TOKEN"
check "actions?action=credits.grant&target= lists genqctl's grant and the API key's" \
  jqt '(.data | map(.actor.kind)) == ["api_key", "genqctl"] and .data[0].detail.reason == "e2e goodwill"'
req GET "/v1/admin/actions?actor=$BOSS&limit=1" "$ADMIN_TOKEN"
check "actions?actor=&limit=1: the admin's newest, and a cursor" \
  jqt '(.data | length) == 1 and .data[0].actor.id == $b and (.next_cursor | type == "string")' --arg b "$BOSS"
req GET "/v1/admin/actions?action=job.delete" "$ADMIN_TOKEN"
check "an unknown action filter is 400" error_is 400 invalid_request

# --- the admin event stream -------------------------------------------------------
(timeout 4 curl -sSN -H "Authorization: Bearer $ADMIN_TOKEN" "$API/v1/admin/events" >"$TMP/events" 2>/dev/null) &
EV=$!
sleep 1.5
grant "e2e-ev-$RUN" "{\"user_id\":\"$U\",\"credits\":1,\"reason\":\"e2e event\"}"
wait "$EV"
check "the admin event stream sends stats, workers and providers" \
  eval 'grep -q "^event: stats" "$TMP/events" && grep -q "^event: workers" "$TMP/events" && grep -q "^event: providers" "$TMP/events"'
check "and the grant as an action event, as it happens" \
  eval 'grep -A1 "^event: action" "$TMP/events" | grep "^data: " | grep -q "e2e event"'
STATUS=$(curl -sS -o "$TMP/body" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $USER_TOKEN" "$API/v1/admin/events")
BODY=$(cat "$TMP/body")
check "a user's token gets no admin stream: 404" error_is 404 not_found

# genqctl's retry dies before the next script starts (its filters see only its own)
check "genqctl's retry ends (dead again)" eval 'poll_job "$USER_TOKEN" "$DEAD" && jqt ".dead_at | type == \"string\""'
check "genqctl audit is clean" "$GENQCTL" audit
finish
