#!/usr/bin/env bash
# End to end: the dead-letter set and operator retry (SPEC §5, §6, §8).
# An image job whose Luma create always answers 500 (provsim:error500) uses
# up its attempts and lands in the dead-letter set with its error and all
# its credits released; `genqctl jobs retry` holds its price again and
# queues it with a fresh attempt counter, and since the prompt still fails
# it dies again. A retry the user cannot pay for exits 1 and changes
# nothing, by id (`jobs retry`) and by filter (`dead retry`); once credits
# are granted, `dead retry` takes it. Last, `genqctl audit` is clean.
#
# Needs GENQ_API_URL, GENQCTL and GENQ_DATABASE_URL (psql reads the ledger)
# of a running stack, with small retry delays (scripts/test sets
# GENQ_RETRY_BASE_MS=100, GENQ_RETRY_CAP_MS=1000) so that five attempts take
# seconds. `dead retry` is filtered to image jobs that died since this
# script started, so it touches no other script's jobs (they run one at a
# time).
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

. "$(dirname "$0")/helpers.bash"
: "${GENQ_DATABASE_URL:?GENQ_DATABASE_URL must be set}"

START=$(date -u -d '-2 seconds' +%Y-%m-%dT%H:%M:%SZ)
RUN=$$-$RANDOM
ERIN=e2e-erin-$RUN
check "genqctl grants erin 4 credits" "$GENQCTL" credits grant "$ERIN" 4 --key "e2e:$ERIN"
ERIN_TOKEN=$("$GENQCTL" token --user "$ERIN" | tr -d '[:space:]')
psql_val() { psql "$GENQ_DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
ledger_row() { # IDEM_KEY: "movement balance_delta held_delta" of that ledger row
  psql_val -c "select movement || ' ' || balance_delta || ' ' || held_delta from ledger
               where idem_key = '$1'"
}
ledger_rows() { psql_val -c "select count(*) from ledger where job_id = '$1'"; }
ctl_json() { # runs genqctl ... --json; sets OUT and RC
  RC=0
  OUT=$("$GENQCTL" "$@" --json 2>"$TMP/ctl.err") || RC=$?
}
outq() { # EXPR [jq args...]: true when EXPR holds for OUT (as jqt for BODY)
  local expr=$1
  shift
  jq -n -e "$@" "input | ($expr)" <<<"$OUT" >/dev/null 2>&1
}

# --- a job that keeps failing lands in the dead-letter set ----------------
req POST /v1/jobs "$ERIN_TOKEN" '{"kind":"image","input":{"prompt":"provsim:error500 a lighthouse at dusk"}}'
check "the doomed image job is accepted" status_is 202
JOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
check "it ends within 60 s" poll_job "$ERIN_TOKEN" "$JOB"
check "it failed after all its attempts, retryable, and is dead" \
  jqt '.status == "failed" and .attempt == .max_attempts and .error.retryable == true
       and (.error.code | startswith("provider_")) and (.dead_at | type == "string")'
CODE=$(jq -r '.error.code // empty' <<<"$BODY" 2>/dev/null)
MAX=$(jq -r '.max_attempts // empty' <<<"$BODY" 2>/dev/null)
DEAD1=$(jq -r '.dead_at // empty' <<<"$BODY" 2>/dev/null)
check "its credits were all released, nothing captured" \
  jqt '.cost == {price: 2, held: 0, captured: 0, released: 2}'
check "erin holds nothing and has all 4 credits" credits_are "$ERIN_TOKEN" 4 0

ctl_json dead list
check "genqctl dead list --json shows it with its error" \
  outq 'any(.[]; .id == $id and .user == $u and .kind == "image" and .attempt == ($m | tonumber)
        and .error.code == $c and (.error.message | length > 0) and .dead_at == $d)' \
  --arg id "$JOB" --arg u "$ERIN" --arg c "$CODE" --arg m "$MAX" --arg d "$DEAD1"
ctl_json dead list --kind image --since 10m --limit 10000
check "dead list --kind image --since 10m has it" outq 'any(.[]; .id == $id)' --arg id "$JOB"
ctl_json dead list --kind video
check "dead list --kind video does not" outq 'all(.[]; .id != $id)' --arg id "$JOB"
ctl_json dead list --since 2999-01-01T00:00:00Z
check "nothing died after 2999-01-01T00:00:00Z" outq '. == []'
check "the human dead list names it" eval '"$GENQCTL" dead list --kind image | grep -q "$JOB"'
check "a bad --since is a usage error (exit 2)" eval '"$GENQCTL" dead list --since yesterday 2>/dev/null; [ $? -eq 2 ]'
ctl_json jobs show "$JOB"
check "genqctl jobs show has dead_at" outq '.dead_at == $d and .status == "failed"' --arg d "$DEAD1"
ctl_json jobs list --user "$ERIN" --status failed
check "genqctl jobs list --user --status finds it" outq 'length == 1 and .[0].id == $id and .[0].dead_at == $d' \
  --arg id "$JOB" --arg d "$DEAD1"

# --- jobs retry: held again, queued with a fresh counter, dead again --------
ctl_json jobs retry "$JOB"
check "genqctl jobs retry exits 0" [ "$RC" -eq 0 ]
check "the retried job is queued at attempt 0, out of the dead set, holding its price again" \
  outq '.status == "queued" and .attempt == 0 and .dead_at == null
        and .cost == {price: 2, held: 2, captured: 0, released: 0}'
check "the retry's hold is one ledger row of its own" \
  [ "$(ledger_row "job:$JOB:hold:retry:1")" == "hold 0 2" ]
check "it dies again within 60 s" poll_job "$ERIN_TOKEN" "$JOB"
check "the attempt counter restarted: failed after max_attempts again, dead again" \
  jqt '.status == "failed" and .attempt == .max_attempts and (.dead_at | type == "string") and .dead_at > $d' \
  --arg d "$DEAD1"
check "and released its hold once more" [ "$(ledger_row "job:$JOB:release:retry:1")" == "release 0 -2" ]
check "erin again holds nothing and has all 4 credits" credits_are "$ERIN_TOKEN" 4 0

# --- a retry erin cannot pay for changes nothing ------------------------------
OK1=$(curl -sS --max-time 10 -H "Authorization: Bearer $ERIN_TOKEN" -H 'Content-Type: application/json' \
  --data-binary '{"kind":"image","input":{"prompt":"a red bicycle"}}' "$API/v1/jobs" | jq -r '.id // empty')
OK2=$(curl -sS --max-time 10 -H "Authorization: Bearer $ERIN_TOKEN" -H 'Content-Type: application/json' \
  --data-binary '{"kind":"image","input":{"prompt":"a blue bicycle"}}' "$API/v1/jobs" | jq -r '.id // empty')
both_succeed() {
  poll_job "$ERIN_TOKEN" "$OK1" && jqt '.status == "succeeded"' &&
    poll_job "$ERIN_TOKEN" "$OK2" && jqt '.status == "succeeded"' && credits_are "$ERIN_TOKEN" 0 0
}
check "two good image jobs spend erin's 4 credits" both_succeed
BEFORE_JOB=$("$GENQCTL" jobs show "$JOB" --json)
BEFORE_ROWS=$(ledger_rows "$JOB")
ctl_json jobs retry "$JOB"
check "jobs retry without the credits exits 1 with insufficient_credits" \
  eval '[ "$RC" -eq 1 ] && outq ".error.code == \"insufficient_credits\"" && grep -q "insufficient credits" "$TMP/ctl.err"'
ctl_json dead retry --kind image --since "$START"
check "dead retry by filter exits 1 and names it as not retried for credits" \
  eval '[ "$RC" -eq 1 ] && outq "any(.not_retried[]; .id == \$id and .user == \$u and .code == \"insufficient_credits\") and (.retried | length == 0)" --arg id "$JOB" --arg u "$ERIN"'
check "the job is unchanged" [ "$("$GENQCTL" jobs show "$JOB" --json)" == "$BEFORE_JOB" ]
check "no ledger row was written for it" [ "$(ledger_rows "$JOB")" == "$BEFORE_ROWS" ]
check "erin's credits are unchanged" credits_are "$ERIN_TOKEN" 0 0
ctl_json jobs retry "$OK1"
check "a succeeded job cannot be retried (exit 1, not_failed)" \
  eval '[ "$RC" -eq 1 ] && outq ".error.code == \"not_failed\""'
check "a malformed job id is a usage error (exit 2)" \
  eval '"$GENQCTL" jobs retry not-a-uuid 2>/dev/null; [ $? -eq 2 ]'

# --- paid for, dead retry takes it -----------------------------------------------
check "genqctl grants erin 2 more credits" "$GENQCTL" credits grant "$ERIN" 2 --key "e2e:$ERIN:more"
ctl_json dead retry --kind image --since "$START"
check "dead retry exits 0 and retried it" \
  eval '[ "$RC" -eq 0 ] && outq "any(.retried[]; . == \$id) and .not_retried == []" --arg id "$JOB"'
check "the second retry held under a key of its own" \
  [ "$(ledger_row "job:$JOB:hold:retry:2")" == "hold 0 2" ]
check "it dies a third time" eval 'poll_job "$ERIN_TOKEN" "$JOB" && jqt ".status == \"failed\" and (.dead_at | type == \"string\")"'
check "erin ends with 2 credits, nothing held" credits_are "$ERIN_TOKEN" 2 0

# --- an operator cancels ------------------------------------------------------------
# A job erin cannot see run yet (provsim:latency keeps its generation going):
# genqctl jobs cancel ends it as erin's own cancel would.
req POST /v1/jobs "$ERIN_TOKEN" '{"kind":"storyboard","input":{"prompt":"cancel me provsim:sleep=20000"}}'
CJOB=$(jq -r .id <<<"$BODY")
check "genqctl jobs cancel cancels a job of any user (exit 0)" \
  eval '"$GENQCTL" jobs cancel "$CJOB" --json | jq -e ".status == \"canceled\" and .cost.held == 0" >/dev/null'
req GET "/v1/jobs/$CJOB" "$ERIN_TOKEN"
check "... and erin sees it canceled" jqt '.status == "canceled"'
check "genqctl jobs cancel of an ended job says so and changes nothing" \
  eval '"$GENQCTL" jobs cancel "$CJOB" | grep -q "already ended"'
check "genqctl jobs cancel of an unknown job exits 1" \
  eval '"$GENQCTL" jobs cancel 00000000-0000-4000-8000-000000000000 2>/dev/null; [ $? -eq 1 ]'
check "erin still has 2 credits, nothing held" credits_are "$ERIN_TOKEN" 2 0

check "genqctl audit finds no violation" "$GENQCTL" audit
finish
