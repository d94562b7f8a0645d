#!/usr/bin/env bash
# End to end: the worker registry, `genqctl workers list|quiet|stop` and
# `genqctl status` (docs/fleet.md), on a mini stack of its own
# (mini_stack.bash, Redis db 8) with three workers beating every 500 ms
# with a TTL of 3 s:
#   W1 --kinds storyboard,video --concurrency 3   (the only video worker)
#   W2 --kinds storyboard       --concurrency 2
#   W3 --kinds storyboard       --concurrency 4
# No worker takes image jobs.
#
# - `workers list --json` shows each with its kinds, concurrency, pid,
#   host, version, state running and a fresh beat; the table too.
# - `workers quiet W1` while W1 runs a video: W1's record says quiet; six
#   storyboards all run on W2 and W3; a second video stays queued; the
#   video W1 held still succeeds on W1.
# - `genqctl status --json`: image jobs queued with their oldest age and no
#   worker taking the kind, one of them waiting for a retry; the video
#   queued with no running worker; the live workers with their beats and
#   the jobs PostgreSQL says run on them.
# - `workers stop W2`: W2 exits 0 and leaves the list at once.
# - W3 killed with -9 stays listed until its TTL, then ages out.
# - `workers stop W4` while W4 (a video worker started for it) holds the
#   second video: W4 says stopping, hands the video back at the end of its
#   grace (5 s), generation kept, and exits 0.
# - `workers stop W1` (quiet) exits it 0; unknown ids, bad ids and bad
#   arguments are refused; the audit is clean.
#
# Needs what mini_stack.bash needs (scripts/test sets it).
# shellcheck disable=SC2016,SC2034 # $names in single quotes: jq's, or eval's
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" workers 8

export GENQ_WORKER_BEAT_MS=500 GENQ_WORKER_TTL_MS=3000 GENQ_SHUTDOWN_GRACE_MS=5000
export PROVSIM_LUMA_VIDEO_MS=12000 GENQ_POLL_INTERVAL_MS=200 GENQ_POLL_MAX_INTERVAL_MS=500
mini_stack_start
mini_stack_user 1000

start_worker w1 -- --kinds storyboard,video --concurrency 3
P1=$WPID
start_worker w2 -- --kinds storyboard --concurrency 2
P2=$WPID
start_worker w3 -- --kinds storyboard --concurrency 4
P3=$WPID

sql() { psql_db -c "$1"; }
# ctl ARGS...: genqctl with its output in OUT, its status in RC, stderr in $TMP/ctl.err
ctl() {
  RC=0
  OUT=$("$GENQCTL" "$@" 2>"$TMP/ctl.err") || RC=$?
}
outq() { # EXPR [jq args...]: true when EXPR holds for OUT
  local expr=$1
  shift
  jq -n -e "$@" "input | ($expr)" <<<"$OUT" >/dev/null 2>&1
}
# wait_until SECS CMD...: retries CMD every 0.2 s for up to SECS.
wait_until() {
  local i secs=$1
  shift
  for ((i = 0; i < secs * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
# the registry id of the worker with pid $1 (empty when it is not listed)
id_of() { "$GENQCTL" workers list --json | jq -r --argjson p "$1" '.[] | select(.pid == $p) | .id'; }
listed() { [[ -n $(id_of "$1") ]]; }
three_listed() { [[ $("$GENQCTL" workers list --json | jq 'length') == 3 ]]; }
submit() { # KIND INPUT_JSON: sets JOB
  req POST /v1/jobs "$TOKEN" "{\"kind\":\"$1\",\"input\":$2}"
  JOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
  status_is 202
}

# ---- the registry lists every worker --------------------------------------------
check "the three workers are listed within 5 s" wait_until 5 three_listed
W1=$(id_of "$P1") W2=$(id_of "$P2") W3=$(id_of "$P3")
ctl workers list --json
check "workers list --json exits 0 with 3 workers" eval '[ "$RC" = 0 ] && outq "length == 3"'
check "W1: kinds storyboard,video, concurrency 3, its pid and host, running" outq \
  '.[] | select(.id == $id) | .kinds == ["storyboard","video"] and .concurrency == 3
   and .pid == $p and .host == $h and .state == "running" and .in_flight == 0' \
  --arg id "$W1" --argjson p "$P1" --arg h "$(hostname)"
check "W2: kinds storyboard, concurrency 2" outq \
  '.[] | select(.id == $id) | .kinds == ["storyboard"] and .concurrency == 2 and .pid == $p' \
  --arg id "$W2" --argjson p "$P2"
check "W3: kinds storyboard, concurrency 4" outq \
  '.[] | select(.id == $id) | .kinds == ["storyboard"] and .concurrency == 4 and .pid == $p' \
  --arg id "$W3" --argjson p "$P3"
check "every record: id host:pid:random, a version, started_at, a beat under 1.5 s old, TTL 3 s" \
  outq 'all(.[]; (.id | test("^[^ ]+:[0-9]+:[0-9a-f]{6}$")) and (.version | length > 0)
        and (.started_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))
        and .last_beat_age_ms < 1500 and .last_beat_ms > 1700000000000 and .ttl_ms == 3000)'
check "the worker's id is the one it logs" grep -qF "\"worker_id\":\"$W1\"" "$STATE/logs/w1.log"
ctl workers list
check "workers list prints a table with each worker, running" eval \
  '[ "$RC" = 0 ] && grep -q "^ID .*STATE .*LAST_BEAT" <<<"$OUT" &&
   [ "$(grep -cE " running +[0-9T:-]+Z +[0-9.]+m?s$" <<<"$OUT")" = 3 ]'
sleep 1.2
ctl workers list --json
check "a second later every beat is still fresh (the beat goes on)" \
  outq 'length == 3 and all(.[]; .last_beat_age_ms < 1500)'

# ---- quiet: no new job, the held one finishes -------------------------------------
check "a video is accepted" submit video '{"prompt":"a quiet harbour at dawn","duration":"5s"}'
V1=$JOB
running_on_w1() { [[ $(sql "select worker_id from jobs where id = '$V1' and status = 'running'") == "$W1" ]]; }
check "it runs on W1, the only video worker" wait_until 15 running_on_w1
ctl workers quiet "$W1"
check "workers quiet W1 exits 0 and says so" eval '[ "$RC" = 0 ] && grep -q "quiet" <<<"$OUT"'
ctl workers list --json
check "W1's record: quiet, holding its video; the others running" outq \
  '(.[] | select(.id == $w1) | .state == "quiet" and .in_flight == 1)
   and ([.[] | select(.id != $w1) | .state] == ["running","running"])' --arg w1 "$W1"
check "W1 logged the operator's command" grep -q '"operator command".*"command":"quiet"' "$STATE/logs/w1.log"
SB=()
for i in 1 2 3 4 5 6; do
  submit storyboard "{\"prompt\":\"quiet test $i\",\"scenes\":1}" && SB+=("$JOB")
done
check "six storyboards are accepted" [ "${#SB[@]}" = 6 ]
all_done() {
  [[ $(sql "select count(*) from jobs where id in ($(printf "'%s'," "${SB[@]}" | sed 's/,$//'))
            and status = 'succeeded'") == 6 ]]
}
check "the six succeed" wait_until 30 all_done
ran_on=$(sql "select string_agg(distinct worker_id, ' ' order by worker_id) from jobs
              where id in ($(printf "'%s'," "${SB[@]}" | sed 's/,$//'))")
check "none ran on the quiet W1 (they ran on: $ran_on)" \
  eval '[[ " $ran_on " != *" $W1 "* ]] && [[ -n $ran_on ]]'
check "a second video is accepted" submit video '{"prompt":"a second harbour","duration":"5s"}'
V2=$JOB

# ---- status --------------------------------------------------------------------
check "an image job is accepted (no worker takes images)" submit image '{"prompt":"an orphan lamp"}'
I1=$JOB
check "a second image job is accepted" submit image '{"prompt":"a second orphan lamp"}'
I2=$JOB
sleep 1.5
check "one image job is made to wait for a retry an hour away" \
  eval '[ "$(sql "update jobs set next_attempt_at = now() + interval '\''1 hour'\'' where id = '\''$I2'\'' returning 1")" = 1 ]'
ctl status --json
check "status --json exits 0" [ "$RC" = 0 ]
check "image: 2 queued, 1 ready, 1 waiting for a retry, the oldest ready over 1.5 s old, no worker" outq \
  '.kinds[] | select(.kind == "image") | .queued == 2 and .ready == 1 and .retry_waiting == 1
   and .oldest_age_s >= 1.5 and .oldest_age_s < 60 and (.next_retry_at | type == "string")
   and .running == 0 and .workers == 0'
check "video: the second queued, the first still running on W1, no running worker takes it" outq \
  '.kinds[] | select(.kind == "video") | .queued == 1 and .ready == 1 and .running == 1 and .workers == 0'
check "storyboard: nothing queued, two running workers take it" outq \
  '.kinds[] | select(.kind == "storyboard") | .queued == 0 and .oldest_age_s == null and .workers == 2'
check "every kind is there, in order; totals 3 queued, 1 running" outq \
  '[.kinds[].kind] == ["storyboard","image","video","lipsync","campaign"] and .queued == 3 and .running == 1'
check "the three live workers with fresh beats; W1 runs 1 job as PostgreSQL sees it" outq \
  '(.workers | length == 3 and all(.[]; .last_beat_age_ms < 1500))
   and (.workers[] | select(.id == $w1) | .running_jobs == 1 and .state == "quiet")
   and .unlisted_workers == [] and (.providers | type == "array")' --arg w1 "$W1"
ctl status
check "status prints the queues, the workers and the providers" eval \
  '[ "$RC" = 0 ] && grep -qE "^image +2 +1 +1 .*no running worker takes it" <<<"$OUT" &&
   grep -q "^workers (3 live)" <<<"$OUT" && grep -qF "$W1" <<<"$OUT" && grep -q "^providers" <<<"$OUT"'
req GET "/v1/jobs/$I1" "$TOKEN"
check "the ready image job stays queued with queue_position 1" jqt '.status == "queued" and .queue_position == 1'

check "the video W1 held while quiet still succeeds" poll_job "$TOKEN" "$V1"
check "... succeeded, on W1" eval 'jqt ".status == \"succeeded\"" &&
  [ "$(sql "select worker_id from jobs where id = '\''$V1'\''")" = "$W1" ]'
req GET "/v1/jobs/$V2" "$TOKEN"
check "the second video is still queued: the quiet W1 took no new job" jqt '.status == "queued"'
w1_idle() {
  "$GENQCTL" workers list --json | jq -e --arg w1 "$W1" \
    '.[] | select(.id == $w1) | .state == "quiet" and .in_flight == 0 and .jobs_done >= 1'
}
check "W1's record at its next beat: quiet, 0 in flight, its video done" wait_until 3 w1_idle

# ---- stop ------------------------------------------------------------------------
ctl workers stop "$W2"
check "workers stop W2 exits 0 ($OUT)" eval '[ "$RC" = 0 ] && grep -qE "stopp" <<<"$OUT"'
w2_gone() { ! genq_alive "$P2"; }
check "W2 exits within 10 s" wait_until 10 w2_gone
genq_stop_pid "$P2"
check "... with status 0 (${GENQ_PID_RC[$P2]})" [ "${GENQ_PID_RC[$P2]}" = 0 ]
check "W2 is no longer listed at once (its record went with it)" eval '! listed "$P2"'
check "W2 logged the command and stopped" eval \
  'grep -q "\"operator command\".*\"command\":\"stop\"" "$STATE/logs/w2.log" && grep -q "\"stopped\"" "$STATE/logs/w2.log"'

# ---- kill -9: ages out within the TTL ---------------------------------------------
KILLED_AT=$(date +%s%N)
kill -KILL "$P3" 2>/dev/null
genq_stop_pid "$P3"
W3_PTTL=$(rcli pttl "genq:{q}:worker:$W3")
check "W3, killed with -9: its record expires within the TTL ($W3_PTTL ms left)" \
  eval '[ "$W3_PTTL" -gt 0 ] && [ "$W3_PTTL" -le 3000 ]'
sleep 1
check "W3, killed with -9, is still listed a second later (its record lives up to the TTL)" listed "$P3"
ctl workers list --json
check "... its beat now over 1 s old" outq '.[] | select(.id == $w3) | .last_beat_age_ms >= 1000' --arg w3 "$W3"
check "W3 ages out of the list" wait_until 6 eval '! listed "$P3"'
GONE_MS=$((($(date +%s%N) - KILLED_AT) / 1000000))
check "... once its TTL ran out: ${GONE_MS} ms after the kill (TTL 3 s, listings every 0.2 s)" \
  [ "$GONE_MS" -le 5000 ]
ctl workers quiet "$W3"
check "a command to the dead W3 exits 1: no live worker" eval \
  '[ "$RC" = 1 ] && grep -q "no live worker" "$TMP/ctl.err"'
check "... and leaves no command behind" [ "$(rcli exists "genq:{q}:worker-cmd:$W3")" = 0 ]

# ---- stop while holding a job: handed back at the end of the grace ------------------
start_worker w4 -- --kinds video --concurrency 1
P4=$WPID
running_on_w4() {
  W4=$(id_of "$P4")
  [[ -n $W4 && $(sql "select worker_id from jobs where id = '$V2' and status = 'running'") == "$W4" ]]
}
check "a new video worker W4 takes the queued second video" wait_until 15 running_on_w4
has_ref() { [[ -n $(sql "select provider_ref from job_steps where job_id = '$V2' and provider_ref is not null") ]]; }
check "... and records its generation" wait_until 10 has_ref
ctl workers stop "$W4" --json
check "workers stop W4 while it holds the video: stopping, 1 in flight" eval \
  '[ "$RC" = 0 ] && outq ".state == \"stopping\" and .in_flight == 1"'
ctl workers list --json
check "W4's record says stopping" outq '.[] | select(.id == $w) | .state == "stopping"' --arg w "$W4"
w4_gone() { ! genq_alive "$P4"; }
check "W4 exits once its grace (5 s) is over" wait_until 12 w4_gone
genq_stop_pid "$P4"
check "... with status 0 (${GENQ_PID_RC[$P4]}), having handed the video back" eval \
  '[ "${GENQ_PID_RC[$P4]}" = 0 ] && grep -q "handing unfinished jobs back" "$STATE/logs/w4.log"'
req GET "/v1/jobs/$V2" "$TOKEN"
check "the video is queued again, its generation kept for the next worker" \
  jqt '.status == "queued" and (.steps[0].provider_ref | type == "string")'
check "W4 is no longer listed" eval '! listed "$P4"'

# ---- stop the quiet W1 ----------------------------------------------------------------
ctl workers stop "$W1" --json
check "workers stop W1 --json (quiet) exits 0" eval '[ "$RC" = 0 ] && outq ".id == \$w and .command == \"stop\" and (.state == \"stopping\" or .state == \"gone\")" --arg w "$W1"'
w1_gone() { ! genq_alive "$P1"; }
check "W1 exits" wait_until 10 w1_gone
genq_stop_pid "$P1"
check "... with status 0 (${GENQ_PID_RC[$P1]})" [ "${GENQ_PID_RC[$P1]}" = 0 ]
ctl workers list --json
check "no live worker is left" eval '[ "$RC" = 0 ] && outq "length == 0"'
ctl workers list
check "the table says so" eval '[ "$RC" = 0 ] && [ "$OUT" = "no live worker" ]'

# ---- refusals -------------------------------------------------------------------
ctl workers stop no-such-host:1:abcdef
check "stop of an unknown id exits 1, naming it" eval '[ "$RC" = 1 ] && grep -q "no-such-host:1:abcdef" "$TMP/ctl.err"'
ctl workers stop "bad id"
check "a bad id is a usage error (exit 2)" [ "$RC" = 2 ]
ctl workers quiet
check "quiet without an id is a usage error" [ "$RC" = 2 ]
ctl workers frob
check "an unknown subcommand is a usage error" [ "$RC" = 2 ]
ctl status --bogus
check "status with an unknown option is a usage error" [ "$RC" = 2 ]
check "a worker refuses a TTL under twice its beat, naming GENQ_WORKER_TTL_MS" eval \
  'GENQ_WORKER_BEAT_MS=2000 GENQ_WORKER_TTL_MS=3000 timeout 10 "$BIN/genq-worker" 2>"$TMP/ttl.err";
   [ $? -ne 0 ] && grep -q GENQ_WORKER_TTL_MS "$TMP/ttl.err"'
check "... and a beat out of range, naming GENQ_WORKER_BEAT_MS" eval \
  'GENQ_WORKER_BEAT_MS=10 timeout 10 "$BIN/genq-worker" 2>"$TMP/beat.err";
   [ $? -ne 0 ] && grep -q GENQ_WORKER_BEAT_MS "$TMP/beat.err"'
check "an unreachable Redis: workers list exits 1 naming GENQ_REDIS_URL, never its value" eval \
  'GENQ_REDIS_URL=redis://:sekrit@127.0.0.1:1/8 "$GENQCTL" workers list >/dev/null 2>"$TMP/down.err"; [ $? = 1 ] &&
   grep -q GENQ_REDIS_URL "$TMP/down.err" && ! grep -q sekrit "$TMP/down.err"'
check "... and status still prints the queues, with redis_error, exit 1" eval \
  'GENQ_REDIS_URL=redis://127.0.0.1:1/8 "$GENQCTL" status --json >"$TMP/down.json" 2>/dev/null; [ $? = 1 ] &&
   jq -e ".workers == null and (.redis_error | length > 0) and .queued == 3" "$TMP/down.json" >/dev/null'

check "the books are clean (genqctl audit)" "$GENQCTL" audit
mini_stack_stop "$P3" # SIGKILLed on purpose
finish
