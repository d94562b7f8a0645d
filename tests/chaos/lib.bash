# shellcheck shell=bash
# The functions of genq's chaos test, sourced by tests/chaos/chaos.sh: the
# fault schedule, the checks' pass/fail count and the event log, starting
# and restarting the stack's processes, the chaos events, and the duplicate
# list and summary table of the report. They read and set chaos.sh's
# variables (STATE, SEED, the ports, the pids, the counters); nothing runs
# when this file is sourced.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
# shellcheck disable=SC2034,SC2153,SC2154 # chaos.sh's variables, set and read there
# shellcheck disable=SC2004 # KILLED and DIED are chaos.sh's associative arrays

# ---- the schedule ------------------------------------------------------------------
# chaos_schedule: SCHEDULE, from SEED alone: "ms event pick" lines, sorted.
# Kills every 8-15 s; the other events one per slot of the chaos span, in a
# seeded order, so that they do not pile up.
chaos_schedule() {
  RANDOM=$SEED
  SCHEDULE=()
  at_ms=$((6000 + RANDOM % 4000))
  while ((at_ms < CHAOS_S * 1000)); do
    SCHEDULE+=("$at_ms kill $RANDOM")
    at_ms=$((at_ms + 8000 + RANDOM % 7000))
  done
  EVENTS=()
  for ((i = 0; i < N_STOP; i++)); do EVENTS+=(stop); done
  for ((i = 0; i < N_REDIS; i++)); do EVENTS+=(redis-restart); done
  for ((i = 0; i < N_FLUSH; i++)); do EVENTS+=(redis-flush); done
  for ((i = 0; i < N_PG; i++)); do EVENTS+=(pg-restart); done
  for ((i = ${#EVENTS[@]} - 1; i > 0; i--)); do # Fisher-Yates
    j=$((RANDOM % (i + 1)))
    e=${EVENTS[i]} EVENTS[i]=${EVENTS[j]} EVENTS[j]=$e
  done
  span_lo=10000 span_hi=$(((CHAOS_S - LEASE_S - 5) * 1000))
  slot=$(((span_hi - span_lo) / ${#EVENTS[@]}))
  for i in "${!EVENTS[@]}"; do
    SCHEDULE+=("$((span_lo + i * slot + RANDOM % (slot / 2))) ${EVENTS[i]} $RANDOM")
  done
  mapfile -t SCHEDULE < <(printf '%s\n' "${SCHEDULE[@]}" | sort -n)
}

# ---- checks and the report -----------------------------------------------------
pass() { PASSED=$((PASSED + 1)) && echo "ok   - $1"; }
# fail NAME [N]: a failed check with N violations (default 1)
fail() {
  FAILED=$((FAILED + 1))
  VIOLATIONS=$((VIOLATIONS + ${2:-1}))
  echo "FAIL - $1"
}
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
# event TEXT: one line of the chaos log, stamped with the time since the load began
event() {
  local el=$(($(now_ms) - T0_MS))
  printf '[chaos +%d.%ds] %s\n' $((el / 1000)) $((el % 1000 / 100)) "$*" | tee -a "$STATE/events.log"
}
indent() { sed 's/^/       /'; }

after_stop() {
  local rc=$1
  genq_archive_logs "$STATE/logs" chaos
  if ((rc == 0 && FAILED == 0 && CHAOS_DONE)) && [[ ${GENQ_TEST_KEEP:-} != 1 ]]; then
    rm -rf "$STATE"
  else
    echo "chaos: state and logs kept in $STATE (repeat with: tests/chaos/chaos.sh$( ((LONG)) && echo ' --long') --seed $SEED)" >&2
  fi
}
# The load's curl calls are its children, in its own session: stop the group.
chaos_on_exit() {
  local rc=$?
  if [[ -n $LOAD_PID ]] && genq_alive "$LOAD_PID"; then
    kill -TERM -- "-$LOAD_PID" 2>/dev/null || true
  fi
  (exit "$rc")
  genq_on_exit
}

psql_db() { psql "$GENQ_DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# ---- servers -----------------------------------------------------------------------
redis_start() {
  genq_start redis "$STATE/logs/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --dir "$STATE/redis" --appendonly yes --appendfsync everysec --save "" --daemonize no
  REDIS_PID=$GENQ_LAST_PID
  INFRA+=("$REDIS_PID")
  genq_wait_for "$REDIS_PID" 30 genq_redis_pong "$REDIS_PORT"
}
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
pg_start() {
  genq_start_postgres "$STATE" "$PG_PORT" "$STATE/logs/postgres.log" -c fsync=off \
    -c max_connections=200
  PG_PID=$GENQ_LAST_PID
  INFRA+=("$PG_PID")
}

# start_worker: one more worker, with a log of its own; waits (bounded) for it
# to say it started. A worker that cannot start is a violation, not an abort.
start_worker() {
  W_SEQ=$((W_SEQ + 1))
  local name=worker-$W_SEQ i
  genq_start "$name" "$STATE/logs/$name.log" "$BIN/genq-worker"
  local pid=$GENQ_LAST_PID
  SERVICES+=("$pid")
  WORKERS+=("$pid")
  for ((i = 0; i < 150; i++)); do
    grep -q '"worker started"' "$STATE/logs/$name.log" 2>/dev/null && return 0
    genq_alive "$pid" || break
    sleep 0.2
  done
  event "VIOLATION: $name (pid $pid) did not start"
  START_FAILS=$((START_FAILS + 1))
  ((START_FAILS < 5)) || FATAL="workers do not start"
  genq_log_tail "$pid"
  return 1
}

# ---- chaos ----------------------------------------------------------------------------
name_of() { echo "${GENQ_PID_NAME[$1]}"; }

# open_windows PID LINES EVENT: records the create windows open in the
# worker's log (its first LINES lines) as interrupted by EVENT (windows.jq);
# prints how many.
open_windows() {
  local pid=$1 lines=$2 what=$3 log=${GENQ_PID_LOG[$1]} out
  out=$(head -n "$lines" "$log" | jq -Rnr -f "$HERE/windows.jq" 2>/dev/null)
  if [[ -n $out ]]; then
    awk -v w="$(name_of "$pid")" -v e="$what" '{print $0 "\t" e "\t" w}' <<<"$out" >>"$STATE/windows.tsv"
    wc -l <<<"$out"
  else
    echo 0
  fi
}

# a random live worker that is not stopped, from PICK
pick_worker() {
  local cands=() p
  for p in "${WORKERS[@]}"; do
    [[ $p == "$STOPPED" ]] || cands+=("$p")
  done
  ((${#cands[@]})) || return 1
  echo "${cands[$1 % ${#cands[@]}]}"
}
drop_worker() {
  local p keep=()
  for p in "${WORKERS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  WORKERS=("${keep[@]}")
}

do_kill() {
  local pid n
  pid=$(pick_worker "$1") || {
    event "kill skipped: no running worker"
    return
  }
  kill -KILL "$pid" 2>/dev/null
  jq -cn --argjson ms "$(now_ms)" --arg log "${GENQ_PID_LOG[$pid]}" '{ms: $ms, log: $log}' \
    >>"$STATE/kills.jsonl"
  genq_stop_pid "$pid" 2>/dev/null # reaps it (status 137) without bash's "Killed" line
  KILLED[$pid]=1
  drop_worker "$pid"
  KILLS=$((KILLS + 1))
  n=$(open_windows "$pid" 1000000000 kill)
  ((n > 0)) && KILLS_IN=$((KILLS_IN + 1))
  event "SIGKILL $(name_of "$pid") (pid $pid): $n open create window(s)"
  start_worker && event "started $(name_of "${WORKERS[-1]}") (pid ${WORKERS[-1]}) in its place"
}

do_stop() {
  local pid n lines
  pid=$(pick_worker "$1") || {
    event "stop skipped: no running worker"
    return
  }
  kill -STOP "$pid"
  sleep 0.1 # let the signal land before the log is read
  lines=$(wc -l <"${GENQ_PID_LOG[$pid]}")
  STOPPED=$pid CONT_AT=$(($(now_ms) + (LEASE_S + 3) * 1000))
  STOPS=$((STOPS + 1))
  n=$(open_windows "$pid" "$lines" stop)
  ((n > 0)) && STOPS_IN=$((STOPS_IN + 1))
  event "SIGSTOP $(name_of "$pid") (pid $pid) for $((LEASE_S + 3)) s: $n open create window(s)"
}
do_cont() {
  kill -CONT "$STOPPED" 2>/dev/null
  event "SIGCONT $(name_of "$STOPPED") (pid $STOPPED)"
  STOPPED="" CONT_AT=0
}

# queued_in_redis: job messages Redis holds now (in the streams, delivered or not)
queued_in_redis() {
  local k n=0
  for k in $(rcli --scan --pattern 'genq:*jobs:*' 2>/dev/null); do
    n=$((n + $(rcli xlen "$k" 2>/dev/null || echo 0)))
  done
  echo "$n"
}

# burst: BURST image and video jobs at once (numbered after the load's), so
# that a backlog waits in Redis when it loses its data (the workers take
# CONCURRENCY each): the reconciler must send those again.
burst() {
  LOAD_KINDS="image video video" LOAD_CANCELS=0 bash "$HERE/load.sh" "$API" "$STATE/tokens" \
    "$STATE/jobs.jsonl" "$BURST" 0 "$((SEED + NJOBS + BURST_JOBS))" "$PREFIX" \
    "$((NJOBS + BURST_JOBS + 1))" >>"$STATE/logs/burst.log" 2>&1
  BURST_JOBS=$((BURST_JOBS + BURST))
}

do_redis() { # restart | flush
  local mark got held
  mark=$PREFIX-$(now_ms)
  if [[ $1 == flush ]]; then
    burst
  fi
  held=$(queued_in_redis)
  rcli set "chaos:marker" "$mark" >/dev/null
  genq_stop_pid "$REDIS_PID" # SIGTERM: an append-only Redis syncs its file and exits 0
  if [[ $1 == flush ]]; then
    rm -rf "${STATE:?}/redis"/*
    REDIS_FLUSHES=$((REDIS_FLUSHES + 1))
  else
    REDIS_RESTARTS=$((REDIS_RESTARTS + 1))
  fi
  redis_start
  got=$(rcli get chaos:marker)
  if [[ $1 == flush && -z $got ]] || [[ $1 == restart && $got == "$mark" ]]; then
    MARKER_OK=$((MARKER_OK + 1))
  else
    MARKER_BAD=$((MARKER_BAD + 1))
  fi
  event "Redis $1: $([[ $1 == flush ]] && echo "after a burst of $BURST jobs, data files deleted with $held job message(s), ")started again (pid $REDIS_PID), marker key '${got:-<none>}'"
}

do_pg_restart() {
  # pg_ctl restart -m fast, in two halves so that the new postmaster is
  # our child again (stopped by pid at exit like everything else)
  genq_as_pg "$GENQ_PG_BIN/pg_ctl" -D "$PGDATA_DIR" stop -m fast -w -t 60 \
    >>"$STATE/logs/postgres.log" 2>&1 || event "pg_ctl stop -m fast failed (see logs/postgres.log)"
  genq_stop_pid "$PG_PID"
  PG_RESTARTS=$((PG_RESTARTS + 1))
  pg_start
  event "PostgreSQL restarted (pg_ctl stop -m fast, then started again: pid $PG_PID)"
}

# check_alive: every process that should run does; a dead one is a violation
# (reported once), a dead worker is replaced so the run goes on.
check_alive() {
  local p
  for p in "$SIM_PID" "$API_PID" "$REDIS_PID" "$PG_PID" "${WORKERS[@]}"; do
    genq_alive "$p" && continue
    [[ -n ${DIED[$p]:-} ]] && continue
    DIED[$p]=1
    N_DIED=$((N_DIED + 1))
    genq_stop_pid "$p"
    event "VIOLATION: $(name_of "$p") (pid $p) died (status ${GENQ_PID_RC[$p]})"
    genq_log_tail "$p" 30
    case $(name_of "$p") in
    worker-*)
      drop_worker "$p"
      [[ $p == "$STOPPED" ]] && STOPPED="" CONT_AT=0
      start_worker
      ;;
    *) FATAL="$(name_of "$p") died" ;;
    esac
  done
}

# ---- the checks --------------------------------------------------------------------------
has_col() {
  [[ $(psql_db -c "select count(*) from information_schema.columns
    where table_schema = 'public' and table_name = '$1' and column_name = '$2'") == 1 ]]
}
cj() { jq -r "$@" "$STATE/creates.json"; }

# ---- the duplicate list and the summary ---------------------------------------------------
# evidence NAME JOB STEP: the worker log lines about that step, every worker
evidence() {
  local f
  for f in "$STATE"/logs/worker-*.log; do
    jq -Rr --arg j "$1" --arg s "$2" --arg w "$(basename "$f" .log)" 'fromjson? | select(type == "object"
      and .job_id == $j and (.step == $s or .step == null))
      | select(.msg | test("luma|hedra|checkpoint|step|claimed|fenced|lost|retry|left|failed"))
      | "         \(.ts // "") \($w) \(.msg) \(del(.ts, .level, .component, .msg, .job_id) | tostring)"' "$f"
  done | sort | head -n 30
}
# duplicate_list: the duplicate creates and what explains them, when there are any
duplicate_list() {
  if [[ $(cj '[.luma.rows[]? | select(.creates > 1)] + [.hedra.rows[]? | select(.creates > 1)] | length') != 0 ]]; then
    echo
    echo "# duplicate creates (creates beyond one per step, and what explains them)"
    cj '.luma.rows[]? | select(.creates > 1)
    | "  luma  \(.steps | join(",")): \(.creates) creates, allowed \(.allowed) = \(.steps | length) + windows \(.windows) + forgotten \(.forgotten) + lost \(.lost)  \(if .ok then "explained" else "UNEXPLAINED" end)"'
    cj '.hedra.rows[]? | select(.creates > 1)
    | "  hedra \(.key): \(.creates) creates, allowed \(.allowed) = 1 + windows \(.windows) + lost \(.lost)  \(if .ok then "explained" else "UNEXPLAINED" end)"'
    while IFS=$'\t' read -r job step; do
      echo "       evidence for $job $step:"
      evidence "$job" "$step"
    done < <(cj '(.luma.rows[]? | select(.ok | not) | .steps[] | split(":") | join("\t")),
               (.hedra.rows[]? | select(.ok | not) | "\(.job)\t\(.step)")')
  fi
}

# summary_table: the run's figures
summary_table() {
  # SPEC §11: after a SIGKILL, the worker's jobs are owned again within the
  # lease + 5 s. A figure, not an assertion (machines here are shared).
  RECLAIM="no kill left a job behind"
  if [[ -s $STATE/kills.jsonl ]]; then
    read -r RN RMAX RMED RWITHIN < <(jq -nrR --slurpfile kills "$STATE/kills.jsonl" \
      --argjson limit_ms $(((LEASE_S + 5) * 1000)) -f "$HERE/reclaims.jq" "$STATE"/logs/worker-*.log)
    ((RN > 0)) && RECLAIM="$RN jobs, median $((RMED / 1000)).$(printf %03d $((RMED % 1000))) s, max $((RMAX / 1000)).$(printf %03d $((RMAX % 1000))) s; $RWITHIN within lease + 5 s = $((LEASE_S + 5)) s"
  fi

  echo
  echo "==== genq chaos summary ($MODE, seed $SEED) ===="
  printf '%-26s %s\n' \
    "jobs" "$J_ALL (succeeded $J_OK, failed $J_FAIL, canceled $J_CANC, dead $J_DEAD)" \
    "kills" "$KILLS (in create windows: $KILLS_IN)" \
    "stops" "$STOPS (in create windows: $STOPS_IN)" \
    "redis restarts / flushes" "$REDIS_RESTARTS / $REDIS_FLUSHES" \
    "postgres restarts" "$PG_RESTARTS" \
    "retries" "$RETRIES" \
    "reclaims" "$RECLAIMS" \
    "owned again after a kill" "$RECLAIM" \
    "dead" "$J_DEAD" \
    "duplicate creates" "luma $DUP_ALL ($((DUP_ALL - DUP_BAD)) explained), hedra $HDUP ($((HDUP - HDUP_BAD)) explained)" \
    "violations" "$VIOLATIONS"
}
