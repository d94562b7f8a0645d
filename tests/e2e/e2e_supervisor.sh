#!/usr/bin/env bash
# End to end: scripts/run as a supervisor (scripts/run's header, README "Two
# commands"). It runs scripts/run itself, on a temporary state folder, a
# free API port and the binaries of GENQ_BUILD_DIR (GENQ_RUN_STATE,
# GENQ_RUN_API_PORT, GENQ_RUN_SKIP_BUILD=1), in an environment of its own
# (env -i): never .genq/, port 8080 or scripts/test's stack.
#
# - a storyboard job succeeds on the supervised stack;
# - a bad argument (--workers many) exits 1 before anything starts;
# - kill -9 a worker: the supervisor logs it, starts it again (a new pid),
#   killed again at once it waits 2 s (backoff), and the next job succeeds;
# - SIGTERM a worker: it exits 0 and stays stopped, the supervisor says so,
#   and jobs still run on the other worker;
# - kill -9 Redis: started again on the same port, the next job succeeds;
# - kill -9 PostgreSQL: started again on the same port and data, the next
#   job succeeds and `genqctl audit` is clean;
# - kill -9 scripts/run itself (its children keep running), then a second
#   scripts/run (--workers 3) on the same state folder: it starts (no "postmaster.pid
#   already exists"), stops every process of the first run — found through
#   run.pids, and PostgreSQL and Redis through their own pid files only
#   (their lines are taken out of run.pids first) — leaves alone a process
#   that merely reuses a recorded pid number, and a job succeeds; a third
#   scripts/run meanwhile refuses (already running) and touches nothing;
# - SIGINT stops everything it started: no recorded pid runs, nothing
#   listens on the stack's ports, no process works in the state folder.
#
# Needs GENQ_BUILD_DIR (scripts/test sets it); starts its own Redis and
# PostgreSQL through scripts/run.
# shellcheck disable=SC2016 # $names in single quotes: jq's
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${GENQ_BUILD_DIR:?GENQ_BUILD_DIR must be set}"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

STATE=$(mktemp -d /tmp/genq-supervisor-XXXXXX)
chmod 755 "$STATE" # so that the postgres user keeps its data inside it
API_PORT=""
genq_free_port API_PORT
export GENQ_API_URL=http://127.0.0.1:$API_PORT GENQCTL=$GENQ_BUILD_DIR/genqctl
# shellcheck source=tests/e2e/helpers.bash
. "$HERE/helpers.bash"

RUN_PID="" DECOY=""
cleanup() {
  local rc=$?
  if [[ -n $RUN_PID ]] && genq_alive "$RUN_PID"; then
    kill -INT "$RUN_PID" 2>/dev/null
    for ((i = 0; i < 300; i++)); do genq_alive "$RUN_PID" || break; sleep 0.1; done
    kill -KILL "$RUN_PID" 2>/dev/null
  fi
  # whatever a failed step left running on the state folder, by pid
  (genq_reclaim "$STATE" "$STATE/redis" "$STATE/pg/data") >/dev/null 2>&1
  [[ -n $DECOY ]] && kill "$DECOY" 2>/dev/null
  genq_archive_logs "$STATE/logs" supervisor
  if [[ ${GENQ_TEST_KEEP:-} == 1 ]] || ((rc != 0 || FAILED > 0)); then
    echo "       scripts/run's state and logs kept in $STATE" >&2
  else
    rm -rf "$STATE"
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_run LOG [ARG...]: scripts/run ARG... in the background (RUN_PID), its console in
# LOG. `env --default-signal=INT`: a background job of a script starts with
# SIGINT ignored, and scripts/run must see the Ctrl-C this test sends.
start_run() {
  local log=$1
  shift
  env -i PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
    GENQ_RUN_STATE="$STATE" GENQ_RUN_API_PORT="$API_PORT" \
    GENQ_RUN_SKIP_BUILD=1 GENQ_BUILD_DIR="$GENQ_BUILD_DIR" \
    env --default-signal=INT "$ROOT/scripts/run" "$@" >>"$log" 2>&1 &
  RUN_PID=$!
}
# until SECONDS CMD...: retries CMD every 0.2 s for up to SECONDS.
until_ok() {
  local i n=$(($1 * 5))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
# pid_of NAME: the pid scripts/run lists for NAME in run.pids now.
pid_of() { awk -v n="$1" '$1 == n {print $2}' "$STATE/run.pids" 2>/dev/null; }
listed() { [[ -n $(pid_of "$1") ]]; }
# restarted NAME OLD: NAME runs under a pid other than OLD.
restarted() {
  local p
  p=$(pid_of "$1")
  [[ -n $p && $p != "$2" ]] && genq_alive "$p"
}
in_log() { grep -qF -- "$2" "$1"; }
ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$API/readyz") == 200 ]]; }
# a storyboard job is accepted and succeeds (after /readyz says the stack is up)
job_succeeds() {
  until_ok 60 ready || return 1
  req POST /v1/jobs "$TOKEN" '{"kind":"storyboard","input":{"prompt":"a supervised ad","scenes":2}}'
  status_is 202 || return 1
  poll_job "$TOKEN" "$(jq -r '.id // empty' <<<"$BODY")" && jqt '.status == "succeeded"'
}
# procs [NAME]: "pid:start" of every process in run.pids now (or NAME's)
procs() { awk -v n="${1:-}" 'n == "" || $1 == n {print $2 ":" $3}' "$STATE/run.pids"; }
# all_gone PID:START...: none of those processes runs (a pid number taken
# since by another process does not count)
all_gone() {
  local p
  for p in "$@"; do
    if genq_proc_same "${p%:*}" "${p#*:}"; then
      echo "       pid ${p%:*} still runs: $(tr '\0' ' ' <"/proc/${p%:*}/cmdline" 2>/dev/null)"
      return 1
    fi
  done
}
run_ended() { ! genq_alive "$RUN_PID"; }
all_alive() {
  local p
  for p in "$@"; do genq_proc_same "${p%:*}" "${p#*:}" || return 1; done
}
# nothing runs with a command line naming, or a working directory inside,
# the state folder
nothing_in_state() {
  local d cwd bad=0
  for d in /proc/[0-9]*; do
    [[ ${d#/proc/} == "$$" || ${d#/proc/} == "$BASHPID" ]] && continue
    cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
    if [[ $cwd == "$STATE"* ]] || grep -qaF -- "$STATE" "$d/cmdline" 2>/dev/null; then
      echo "       still running in $STATE: pid ${d#/proc/} $(tr '\0' ' ' <"$d/cmdline")"
      bad=1
    fi
  done
  ((bad == 0))
}
no_listener() {
  local p
  for p in "$@"; do
    if genq_port_in_use "$p"; then
      echo "       something still listens on port $p"
      return 1
    fi
  done
}

# ---- a supervised stack --------------------------------------------------------
BAD=$STATE/run-bad.log
start_run "$BAD" --workers many
wait "$RUN_PID"
check "scripts/run --workers many exits 1 at once" [ $? == 1 ]
check "... saying what it needs" in_log "$BAD" "--workers needs a count from 0 to 64"
check "... having started nothing" [ ! -e "$STATE/run.pids" ]
# a stale run.pid: a live pid (init's), recorded under a start time it does not have
echo "1 1" >"$STATE/run.pid"
LOG1=$STATE/run-1.log
start_run "$LOG1" --workers 2
check "scripts/run starts the stack past a stale run.pid (its banner within 180 s)" until_ok 180 in_log "$LOG1" "genq is running with 2 workers"
if ! in_log "$LOG1" "genq is running"; then
  tail -n 40 "$LOG1"
  finish
  exit 1
fi
check "run.pids lists redis, postgres, provsim, api, worker-1 and worker-2" \
  [ "$(awk '{print $1}' "$STATE/run.pids" | tr '\n' ' ')" == "redis postgres provsim api worker-1 worker-2 " ]
genq_load_env "$STATE/env" # genqctl talks to this stack
REDIS_PORT=$(genq_url_port "$GENQ_REDIS_URL")
PG_PORT=$(genq_url_port "$GENQ_DATABASE_URL")
SIM_PORT=$(genq_url_port "$GENQ_PROVSIM_LISTEN")
USER_ID=e2e-supervisor-$$
check "genqctl grants the user 100 credits" "$GENQCTL" credits grant "$USER_ID" 100 --key "e2e:$USER_ID"
TOKEN=$("$GENQCTL" token --user "$USER_ID" | tr -d '[:space:]')
check "a storyboard job succeeds" job_succeeds
FIRST=$(procs) # every process of the first run, for later

# ---- kill -9 a worker ------------------------------------------------------------
W1=$(pid_of worker-1)
kill -KILL "$W1"
check "the supervisor logs worker-1's SIGKILL" until_ok 10 in_log "$LOG1" "worker-1 (pid $W1) was killed by SIGKILL"
check "worker-1 is started again under a new pid" until_ok 10 restarted worker-1 "$W1"
check "the log says so" in_log "$LOG1" "worker-1 restarted (pid $(pid_of worker-1))"
W1=$(pid_of worker-1)
kill -KILL "$W1"
check "killed again at once, worker-1 waits twice as long (backoff)" until_ok 10 in_log "$LOG1" \
  "worker-1 (pid $W1) was killed by SIGKILL after"
check "... 'restarting it in 2 s'" grep -qE "worker-1 \(pid $W1\) was killed by SIGKILL after [0-9]+ s: restarting it in 2 s" "$LOG1"
check "... and it is started again" until_ok 10 restarted worker-1 "$W1"
check "the next job succeeds" job_succeeds
FIRST+=" $(procs worker-1)"

# ---- SIGTERM a worker: scale down --------------------------------------------------
W2=$(pid_of worker-2)
kill -TERM "$W2"
check "worker-2 exits 0 on SIGTERM and the supervisor says it stays stopped" until_ok 40 in_log "$LOG1" \
  "worker-2 (pid $W2) exited 0 after"
check "... with the count of workers left" in_log "$LOG1" "it stays stopped (1 of 2 workers running)"
check "worker-2 is no longer in run.pids" bash -c "! grep -q '^worker-2 ' '$STATE/run.pids'"
check "a job still succeeds on the other worker" job_succeeds
check "worker-2 was not started again" bash -c "! grep -qF 'worker-2 restarted' '$LOG1'"

# ---- kill -9 Redis ---------------------------------------------------------------
R=$(pid_of redis)
kill -KILL "$R"
check "Redis is started again under a new pid" until_ok 15 restarted redis "$R"
check "... on the same port" until_ok 15 genq_redis_pong "$REDIS_PORT"
check "the log says why" in_log "$LOG1" "redis (pid $R) was killed by SIGKILL"
check "the next job succeeds" job_succeeds
FIRST+=" $(procs redis)"

# ---- kill -9 PostgreSQL ----------------------------------------------------------
P=$(pid_of postgres)
PG_DATA=$(readlink "/proc/$P/cwd")
kill -KILL "$P"
check "PostgreSQL is started again under a new pid" until_ok 40 restarted postgres "$P"
check "... on the same port" until_ok 60 pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
check "... on the same data" [ "$(readlink "/proc/$(pid_of postgres)/cwd")" == "$PG_DATA" ]
check "the log says why" in_log "$LOG1" "postgres (pid $P) was killed by SIGKILL"
check "the next job succeeds" job_succeeds
check "genqctl audit is clean" "$GENQCTL" audit
succeeded_jobs() { psql "$GENQ_DATABASE_URL" -XAtc "select count(*) from jobs where user_id = '$USER_ID' and status = 'succeeded'"; }
check "the user's 5 jobs all succeeded" [ "$(succeeded_jobs)" == 5 ]
FIRST+=" $(procs postgres)"

# ---- kill -9 scripts/run itself, then run it again -----------------------------------
kill -KILL "$RUN_PID"
wait "$RUN_PID" 2>/dev/null
check "after kill -9 of scripts/run its PostgreSQL still runs (what the next run must clear)" \
  genq_alive "$(pid_of postgres)"
# PostgreSQL and Redis are then found through postmaster.pid and redis.pid
# alone; a process that took a recorded pid number (this sleep, listed under
# a start time it does not have) must be left alone.
sed -i -E '/^(postgres|redis) /d' "$STATE/run.pids"
sleep 600 &
DECOY=$!
echo "worker-9 $DECOY 1" >>"$STATE/run.pids"
LOG2=$STATE/run-2.log
start_run "$LOG2" --workers 3
check "a second scripts/run (--workers 3) on the same state folder starts" until_ok 180 in_log "$LOG2" "genq is running with 3 workers"
check "... with 3 workers" [ "$(grep -c '^worker-' "$STATE/run.pids")" == 3 ]
check "... without 'already exists' or an error" bash -c "! grep -qE 'already exists|ERROR:' '$LOG2'"
check "... after stopping the first run's PostgreSQL found by its postmaster.pid" \
  grep -qE "stopping postgres \(pid [0-9]+\), left running by an earlier run" "$LOG2"
check "... and its Redis found by its pid file" \
  grep -qE "stopping redis \(pid [0-9]+\), left running by an earlier run" "$LOG2"
# shellcheck disable=SC2086 # a list of pids
check "every process of the first run is gone" all_gone $FIRST
check "the process that reused a recorded pid number was left alone" genq_alive "$DECOY"
check "the stack keeps its ports" [ "$(genq_url_port "$(sed -n 's/^GENQ_REDIS_URL=//p' "$STATE/env")")" == "$REDIS_PORT" ]
check "a job succeeds on the second run" job_succeeds
check "genqctl audit is still clean" "$GENQCTL" audit
RUN2=$RUN_PID LOG3=$STATE/run-3.log
start_run "$LOG3"
wait "$RUN_PID"
check "a third scripts/run on the same state folder refuses (exit 1)" [ $? == 1 ]
check "... saying it is already running" in_log "$LOG3" "scripts/run is already running on $STATE (pid $RUN2)"
RUN_PID=$RUN2
# shellcheck disable=SC2046 # a list of pid:start words
check "... and the running stack is untouched" all_alive $(procs)

# ---- Ctrl-C -------------------------------------------------------------------------
SECOND=$(procs)
kill -INT "$RUN_PID"
rc=0
until_ok 60 run_ended || kill -KILL "$RUN_PID"
wait "$RUN_PID" 2>/dev/null || rc=$?
check "SIGINT ends scripts/run (status 130)" [ "$rc" == 130 ]
check "it says it stopped everything" in_log "$LOG2" "stopped everything scripts/run started"
# shellcheck disable=SC2086 # a list of pids
check "every process it started is gone" all_gone $SECOND
check "nothing listens on the stack's ports" no_listener "$API_PORT" "$REDIS_PORT" "$PG_PORT" "$SIM_PORT"
check "no process works in the state folder" nothing_in_state
check "run.pid and run.pids are removed" bash -c "[ ! -e '$STATE/run.pid' ] && [ ! -e '$STATE/run.pids' ]"
check "no sanitizer report in any log of the stack" bash -c \
  "! grep -lE 'AddressSanitizer|runtime error|LeakSanitizer' '$STATE'/logs/*.log"
RUN_PID=""
finish
