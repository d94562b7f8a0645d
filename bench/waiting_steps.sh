#!/usr/bin/env bash
# bench/waiting_steps.sh [N] — what one genq-worker costs while it holds N
# provider generations that are waiting (SPEC §11: "one worker holding
# 10,000 generations that are waiting on providers: at most 32 MB resident
# and 3% of one core"). Prints figures; asserts nothing about speed.
#
# Starts a private stack on free loopback ports (Redis, PostgreSQL with fsync
# off and pg_stat_statements, genq-provsim, genq-api, ONE genq-worker
# --kinds video --concurrency N), submits N video jobs through POST /v1/jobs
# (one curl process, 16 transfers at a time), waits until N steps hold a
# provider_ref, and watches the processes in two windows:
#   queued    the simulator still says "queued" (first fifth of a
#             generation's duration): the cost of the status polls alone;
#   dreaming  every generation says "dreaming": the polls plus the progress
#             the worker records as it goes.
# For each: RSS, CPU (% of one core), threads and fds of the worker, the API,
# the simulator and Redis (and PostgreSQL's CPU), the simulator's GET rate,
# PostgreSQL statements, Redis commands and the worker's log growth.
# Everything it started is stopped on exit, by pid.
#
# N defaults to 10000. Environment (all optional):
#   BENCH_WINDOW_S=60         length of each window
#   BENCH_SETTLE_S=30         wait after the last provider_ref (polls reach their cap)
#   BENCH_READY_TIMEOUT_S=300 bound on submit + claim + create
#   BENCH_PHASES="queued dreaming"  which windows to measure
#   BENCH_VIDEO_MS=900000     PROVSIM_LUMA_VIDEO_MS: queued for a fifth (3 min), then
#                             dreaming; long enough that none completes
#   BENCH_POLL_INTERVAL_MS, BENCH_POLL_MAX_INTERVAL_MS
#                             override the worker's poll delays (unset: genq's
#                             defaults, 2000 and 15000, which is the point)
#   BENCH_CALLBACKS=0         1: GENQ_CALLBACK_URL set to the API, so genq-provsim POSTs
#                             each generation's state changes there (wake-ups) and the
#                             fallback polls back off to GENQ_CALLBACK_POLL_MAX_INTERVAL_MS
#                             (60000 unless BENCH_CALLBACK_POLL_MAX_MS says otherwise)
#   BENCH_DB_POOL=8           GENQ_DB_POOL of the worker and the API
#   BENCH_BUILD=build/bench   Release build dir (built when a binary is missing,
#                             or always with BENCH_REBUILD=1)
#   BENCH_KEEP=1              keep the state folder (logs) afterwards
set -euo pipefail
# shellcheck source=scripts/lib.sh
# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$GENQ_ROOT"

N=${1:-10000}
if ! [[ $N =~ ^[0-9]+$ ]] || ((N < 1 || N > 100000)); then
  echo "usage: bench/waiting_steps.sh [N]   (1..100000 held generations, default 10000)" >&2
  exit 2
fi
WINDOW=${BENCH_WINDOW_S:-60}
SETTLE=${BENCH_SETTLE_S:-30}
READY_TIMEOUT=${BENCH_READY_TIMEOUT_S:-300}
PHASES=${BENCH_PHASES:-queued dreaming}
VIDEO_MS=${BENCH_VIDEO_MS:-900000}
POLL_MAX_MS=${BENCH_POLL_MAX_INTERVAL_MS:-15000}
BUILD=$(realpath -m "${BENCH_BUILD:-$GENQ_ROOT/build/bench}")
POOL=${BENCH_DB_POOL:-8}
HZ=$(getconf CLK_TCK)

# Nothing from the caller's shell tunes the stack: only what is set below.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(GENQ_|PROVSIM_|LUMA_|OPENAI_|HEDRA_|CLERK_)' || true)

# ---- build ----
need_build=${BENCH_REBUILD:-0}
for b in genq-api genq-worker genq-provsim genqctl; do
  [[ -x $BUILD/$b ]] || need_build=1
done
if [[ $need_build == 1 ]]; then
  genq_log "building (Release) in $BUILD"
  genq_build "$BUILD" Release -DGENQ_TESTS=OFF
fi

STATE=$(mktemp -d /tmp/genq-bench-XXXXXX)
chmod 755 "$STATE" # the postgres user must reach the cluster inside it
mkdir -p "$STATE"/{logs,redis,storage,keys}
after_stop() {
  local rc=$1
  if [[ -n ${WORKER:-} && -n ${GENQ_PID_RC[$WORKER]:-} ]]; then
    echo "worker exit status on SIGTERM: ${GENQ_PID_RC[$WORKER]}"
  fi
  if ((rc != 0)) || [[ ${BENCH_KEEP:-} == 1 ]]; then
    echo "state and logs kept in $STATE"
  else
    rm -rf "$STATE"
  fi
}
genq_trap_cleanup after_stop

# ---- the stack ----
REDIS_PORT="" PG_PORT="" SIM_PORT="" API_PORT=""
genq_free_port REDIS_PORT
genq_free_port PG_PORT
genq_free_port SIM_PORT
genq_free_port API_PORT
genq_start_redis "$STATE/redis" "$REDIS_PORT" "$STATE/logs/redis.log"
REDIS=$GENQ_LAST_PID
# A throw-away cluster: durability buys nothing; pg_stat_statements counts
# what the worker asks of it.
genq_start_postgres "$STATE" "$PG_PORT" "$STATE/logs/postgres.log" -c fsync=off \
  -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 \
  -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top
PG=$GENQ_LAST_PID
genq_make_keys "$STATE/keys"
genq_stack_env "$STATE" "$REDIS_PORT" "$PG_PORT" genq "127.0.0.1:$API_PORT" "$SIM_PORT" \
  "$STATE/keys" >"$STATE/env"
{
  echo "PROVSIM_LUMA_VIDEO_MS=$VIDEO_MS"
  echo "GENQ_LEASE_SECONDS=60"
  echo "GENQ_DB_POOL=$POOL"
  echo "GENQ_SHUTDOWN_GRACE_MS=2000" # a stop hands the jobs back quickly
  if [[ -n ${BENCH_POLL_INTERVAL_MS:-} ]]; then
    echo "GENQ_POLL_INTERVAL_MS=$BENCH_POLL_INTERVAL_MS"
  fi
  if [[ -n ${BENCH_POLL_MAX_INTERVAL_MS:-} ]]; then
    echo "GENQ_POLL_MAX_INTERVAL_MS=$BENCH_POLL_MAX_INTERVAL_MS"
  fi
  if [[ ${BENCH_CALLBACKS:-0} == 1 ]]; then
    echo "GENQ_CALLBACK_URL=http://127.0.0.1:$API_PORT"
    if [[ -n ${BENCH_CALLBACK_POLL_MAX_MS:-} ]]; then
      echo "GENQ_CALLBACK_POLL_MAX_INTERVAL_MS=$BENCH_CALLBACK_POLL_MAX_MS"
    fi
  fi
} >>"$STATE/env"
genq_load_env "$STATE/env"
psql_q() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d genq -X -qAt "$@"; }

"$BUILD/genqctl" migrate >"$STATE/logs/migrate.log" 2>&1 || {
  tail -n 20 "$STATE/logs/migrate.log" >&2
  genq_die "genqctl migrate failed"
}
psql_q -c "create extension if not exists pg_stat_statements" >/dev/null

cd "$STATE" # no .genq/env of a checkout is in reach of the programs
genq_start provsim "$STATE/logs/provsim.log" "$BUILD/genq-provsim"
SIM=$GENQ_LAST_PID
genq_wait_for "$SIM" 30 genq_port_in_use "$SIM_PORT"
genq_start api "$STATE/logs/api.log" "$BUILD/genq-api"
API=$GENQ_LAST_PID
genq_wait_for "$API" 30 curl -fsS -o /dev/null "http://127.0.0.1:$API_PORT/healthz"
genq_start worker "$STATE/logs/worker.log" "$BUILD/genq-worker" --kinds video --concurrency "$N"
WORKER=$GENQ_LAST_PID
sleep 2
genq_require_alive "$WORKER"

# ---- figures from /proc and the servers ----
# ticks PID: utime + stime in clock ticks (fields 14 and 15; comm may hold spaces).
ticks() {
  local line rest
  read -r line <"/proc/$1/stat" || return 1
  rest=${line##*) }
  # shellcheck disable=SC2086 # word splitting is the point
  set -- $rest
  echo $((${12} + ${13}))
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# PostgreSQL is a process per connection: the postmaster and its children.
pg_pids() {
  echo "$PG"
  pgrep -P "$PG" || true
}
pg_ticks() {
  local p t=0 x
  for p in $(pg_pids); do
    x=$(ticks "$p" 2>/dev/null) && t=$((t + x))
  done
  echo "$t"
}
sim_count() { curl -fsS --max-time 5 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq -r ".luma.$1 // 0"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
# The state of each held step as the worker last recorded it: progress 0.05
# while the provider says queued, 0.1 and up while it dreams.
USER_ID=bench-user-$$
step_states() {
  psql_q -F ' ' -c "select count(*) filter (where s.provider_ref is not null),
                           count(*) filter (where s.progress < 0.1),
                           count(*) filter (where s.progress >= 0.1),
                           count(*) filter (where s.progress >= 1)
                    from job_steps s join jobs j on j.id = s.job_id
                    where j.user_id = '$USER_ID' and s.status = 'running'"
}

IDLE_RSS=$(status_kb "$WORKER" VmRSS)

# ---- submit ----
"$BUILD/genqctl" credits grant "$USER_ID" $((N * 10 + 100)) --key "bench:$USER_ID" >/dev/null
"$BUILD/genqctl" limits plan "$USER_ID" unlimited >/dev/null # N waiting jobs of one user
TOKEN=$("$BUILD/genqctl" token --user "$USER_ID" --ttl 7200 | tr -d '[:space:]')
# One curl process: a config entry per job (options do not carry past "next").
for ((i = 1; i <= N; i++)); do
  ((i > 1)) && echo next
  printf 'url = "http://127.0.0.1:%s/v1/jobs"\nheader = "Authorization: Bearer %s"\n' "$API_PORT" "$TOKEN"
  printf 'header = "Content-Type: application/json"\nsilent\nshow-error\noutput = "/dev/null"\n'
  printf 'data = "{\\"kind\\":\\"video\\",\\"input\\":{\\"prompt\\":\\"a waiting bench shot %s\\",\\"duration\\":\\"5s\\"}}"\n' "$i"
  printf 'write-out = "%%{http_code}\\n"\n'
done >"$STATE/submit.curl"
genq_log "submitting $N video jobs through POST /v1/jobs"
t_submit=$(now)
timeout "$READY_TIMEOUT" curl -Z --parallel-max 16 -K "$STATE/submit.curl" \
  >"$STATE/submit.codes" 2>"$STATE/logs/submit-curl.log" || true
t_submitted=$(now)
ACCEPTED=$(grep -c '^202$' "$STATE/submit.codes" || true)
SUBMIT_S=$(secs "$t_submit" "$t_submitted")
JOBS=$(psql_q -c "select count(*) from jobs where user_id = '$USER_ID'")
genq_log "submitted: $ACCEPTED of $N answered 202 in ${SUBMIT_S}s ($JOBS jobs in PostgreSQL)"
if ((ACCEPTED < N)); then
  genq_log "other answers: $(sort "$STATE/submit.codes" | uniq -c | tr '\n' ' ')"
fi

# ---- wait until every generation is created and checkpointed ----
deadline=$((SECONDS + READY_TIMEOUT))
REFS=0
next_note=$((SECONDS + 10))
while ((SECONDS < deadline)); do
  genq_require_alive "$WORKER"
  read -r REFS _ <<<"$(step_states)"
  if ((REFS >= JOBS)); then break; fi
  if ((SECONDS >= next_note)); then
    genq_log "steps with a provider_ref: $REFS of $JOBS"
    next_note=$((SECONDS + 10))
  fi
  sleep 1
done
t_ready=$(now)
READY_S=$(secs "$t_submit" "$t_ready")
if ((REFS < JOBS)); then
  genq_log "warning: only $REFS of $JOBS steps have a provider_ref after ${READY_TIMEOUT}s: measuring anyway"
else
  genq_log "$REFS generations checkpointed, ${READY_S}s after the first submit"
fi
RAMP_CPU_S=$(awk -v t="$(ticks "$WORKER")" -v hz="$HZ" 'BEGIN {printf "%.1f", t / hz}')
RAMP_HWM=$(status_kb "$WORKER" VmHWM)

echo
echo "==== genq bench: one worker holding waiting generations (SPEC §11) ===="
echo "tree at $(git -C "$GENQ_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); binaries in $BUILD," \
  "genq-worker built $(date -r "$BUILD/genq-worker" '+%F %T'); $(nproc) cpus"
echo "worker: --kinds video --concurrency $N, GENQ_POLL_INTERVAL_MS=${GENQ_POLL_INTERVAL_MS:-2000 (default)}" \
  "GENQ_POLL_MAX_INTERVAL_MS=${GENQ_POLL_MAX_INTERVAL_MS:-15000 (default)} GENQ_LEASE_SECONDS=60" \
  "GENQ_DB_POOL=$POOL GENQ_LOG_LEVEL=$GENQ_LOG_LEVEL" \
  "GENQ_CALLBACK_URL=${GENQ_CALLBACK_URL:-(unset: no callbacks)}" \
  "${GENQ_CALLBACK_URL:+GENQ_CALLBACK_POLL_MAX_INTERVAL_MS=${GENQ_CALLBACK_POLL_MAX_INTERVAL_MS:-60000 (default)}}"
echo "provsim: PROVSIM_LUMA_VIDEO_MS=$VIDEO_MS (queued for the first $((VIDEO_MS / 5000)) s, then dreaming)"
echo "submit: $ACCEPTED of $N jobs accepted (202) through POST /v1/jobs in ${SUBMIT_S}s" \
  "($(awk -v n="$ACCEPTED" -v s="$SUBMIT_S" 'BEGIN {printf "%.0f", (s > 0) ? n / s : 0}')/s, 16 at a time)"
echo "ready:  $REFS generations checkpointed ${READY_S}s after the first submit;" \
  "worker CPU so far ${RAMP_CPU_S}s, VmHWM $(mb "$RAMP_HWM") MB (idle before any job: VmRSS $(mb "$IDLE_RSS") MB)"
echo "SPEC §11 target for N=10000: at most 32 MB resident and 3% of one core (printed, not asserted)"

# ---- one window ----
NAMES=(worker api provsim redis)
declare -A PIDOF=([worker]=$WORKER [api]=$API [provsim]=$SIM [redis]=$REDIS)
declare -A T0 T1 MAXRSS
# pg_stat_statements is exact at once (the pg_stat_* table counters lag by
# seconds); the bench's own queries are left out.
PGSS_MINE="query ~ 'pg_stat|count\\(\\*\\) filter|from jobs where user_id'"

measure() { # LABEL
  local label=$1 n r p t0 t1 el gets0 gets1 cbs0 cbs1 log0 log1 lines0 lines1
  local held queued dreaming full wrss calls wal
  psql_q -c "select pg_stat_statements_reset()" >/dev/null
  redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
  gets0=$(sim_count gets)
  cbs0=$(sim_count callbacks)
  log0=$(stat -c %s "$STATE/logs/worker.log")
  lines0=$(wc -l <"$STATE/logs/worker.log")
  for n in "${NAMES[@]}"; do
    T0[$n]=$(ticks "${PIDOF[$n]}")
    MAXRSS[$n]=0
  done
  T0[postgres]=$(pg_ticks)
  t0=$(now)
  genq_log "measuring the $label window for ${WINDOW}s"
  local end=$((SECONDS + WINDOW))
  while ((SECONDS < end)); do
    for n in "${NAMES[@]}"; do
      r=$(status_kb "${PIDOF[$n]}" VmRSS)
      if ((r > MAXRSS[$n])); then MAXRSS[$n]=$r; fi
    done
    sleep 5
  done
  for n in "${NAMES[@]}"; do
    genq_require_alive "${PIDOF[$n]}"
    T1[$n]=$(ticks "${PIDOF[$n]}")
  done
  T1[postgres]=$(pg_ticks)
  t1=$(now)
  gets1=$(sim_count gets)
  cbs1=$(sim_count callbacks)
  log1=$(stat -c %s "$STATE/logs/worker.log")
  lines1=$(wc -l <"$STATE/logs/worker.log")
  read -r held queued dreaming full <<<"$(step_states)"
  el=$(secs "$t0" "$t1")
  rate() { awk -v d="$1" -v e="$el" 'BEGIN {printf "%.1f", d / e}'; }
  cpu_pct() { awk -v d="$1" -v hz="$HZ" -v e="$el" 'BEGIN {printf "%.2f", 100 * d / hz / e}'; }

  echo
  echo "---- window: $label, ${el}s ----"
  echo "held generations at its end: $held (last recorded state: queued $queued, dreaming $dreaming," \
    "of which progress already 1: $full)"
  printf '%-9s %9s %9s %9s %10s %8s %6s\n' process "VmRSS MB" "max MB" "VmHWM MB" "CPU %core" threads fds
  for n in "${NAMES[@]}"; do
    p=${PIDOF[$n]}
    printf '%-9s %9s %9s %9s %10s %8s %6s\n' "$n" "$(mb "$(status_kb "$p" VmRSS)")" "$(mb "${MAXRSS[$n]}")" \
      "$(mb "$(status_kb "$p" VmHWM)")" "$(cpu_pct $((T1[$n] - T0[$n])))" "$(status_kb "$p" Threads)" "$(nfds "$p")"
  done
  printf '%-9s %9s %9s %9s %10s %8s %6s\n' postgres - - - "$(cpu_pct $((T1[postgres] - T0[postgres])))" \
    "$(wc -l <<<"$(pg_pids)")p" -
  echo "(postgres: the postmaster and its backends together, p = processes; max MB: sampled every 5 s)"
  wrss=$(status_kb "$WORKER" VmRSS)
  echo "worker per held generation: $(awk -v a="$wrss" -v b="$IDLE_RSS" -v n="$held" \
    'BEGIN {printf "%.0f", (n > 0) ? (a - b) * 1024 / n : 0}') bytes resident" \
    "(VmRSS minus the idle $(mb "$IDLE_RSS") MB); CPU per provider GET: $(awk -v d=$((T1[worker] - T0[worker])) \
      -v hz="$HZ" -v g=$((gets1 - gets0)) 'BEGIN {printf "%.0f", (g > 0) ? 1e6 * d / hz / g : 0}') µs" \
    "(all worker CPU in the window / GETs)"
  echo "provider status polls (provsim luma.gets): $((gets1 - gets0)), $(rate $((gets1 - gets0)))/s" \
    "(one poll per held generation every 15 s would be $(awk -v n="$held" 'BEGIN {printf "%.1f", n / 15}')/s)"
  echo "provider callbacks delivered (provsim luma.callbacks): $((cbs1 - cbs0)), $(rate $((cbs1 - cbs0)))/s"
  read -r calls wal <<<"$(psql_q -F ' ' -c "select coalesce(sum(calls), 0), coalesce(sum(wal_bytes), 0)
                                            from pg_stat_statements where not ($PGSS_MINE)")"
  echo "PostgreSQL: $(rate "$calls") statements/s from genq, $(awk -v b="$wal" -v e="$el" \
    'BEGIN {printf "%.1f", b / 1024 / e}') KB/s of WAL"
  echo "worker log: $((log1 - log0)) bytes, $((lines1 - lines0)) lines" \
    "($(awk -v b=$((log1 - log0)) -v e="$el" 'BEGIN {printf "%.0f", b * 60 / e}') bytes/min); by message:"
  tail -c +"$((log0 + 1))" "$STATE/logs/worker.log" | head -c $((log1 - log0)) |
    grep -o '"msg":"[^"]*"' | sort | uniq -c | sort -rn |
    awk 'NR <= 8 {printf "  %8d  %s\n", $1, substr($0, index($0, $2))}' || true
  echo "PostgreSQL statements (pg_stat_statements, top level, by calls):"
  printf '  %7s %8s %8s %8s %8s  %s\n' calls "calls/s" "mean ms" "rows" "WAL KB" query
  psql_q -F $'\t' -c "select calls, round(mean_exec_time::numeric, 2), rows, round(wal_bytes / 1024, 1),
                             left(regexp_replace(query, '\s+', ' ', 'g'), 80)
                      from pg_stat_statements where not ($PGSS_MINE)
                      order by calls desc limit 10" |
    while IFS=$'\t' read -r calls mean rows wal q; do
      printf '  %7s %8s %8s %8s %8s  %s\n' "$calls" "$(rate "$calls")" "$mean" "$rows" "$wal" "$q"
    done
  echo "Redis commands (INFO commandstats, all clients):"
  redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | grep '^cmdstat_' |
    sed -E 's/^cmdstat_([^:]+):calls=([0-9]+),.*/\2 \1/' | grep -v 'config|resetstat' | sort -rn |
    while read -r calls cmd; do
      printf '  %8s %8s/s  %s\n' "$calls" "$(rate "$calls")" "$cmd"
    done || true
}

# ---- the windows ----
# A generation created at c is queued until c + VIDEO_MS/5 and dreaming until
# c + VIDEO_MS; all were created between t_submit and t_ready.
at() { awk -v a="$1" -v ms="$2" 'BEGIN {printf "%.3f", a + ms / 1000}'; }
sleep_until() { # EPOCH: sleeps until then (not at all if past), the worker alive
  local left
  while left=$(awk -v t="$1" -v n="$(now)" 'BEGIN {d = t - n; print (d > 0) ? int(d + 0.999) : 0}') &&
    ((left > 0)); do
    genq_require_alive "$WORKER"
    sleep $((left > 5 ? 5 : left))
  done
}
QUEUED_UNTIL=$(at "$t_submit" $((VIDEO_MS / 5))) # the earliest a generation starts dreaming
for phase in $PHASES; do
  case $phase in
  queued)
    genq_log "settling ${SETTLE}s so that every status poll reaches its backoff cap"
    sleep "$SETTLE"
    if awk -v q="$QUEUED_UNTIL" -v e="$(at "$(now)" $((WINDOW * 1000)))" 'BEGIN {exit !(e > q)}'; then
      genq_log "note: some generations start dreaming during the queued window (raise BENCH_VIDEO_MS)"
    fi
    measure queued
    ;;
  dreaming)
    # every generation dreams, and has been polled at least once since
    start=$(at "$t_ready" $((VIDEO_MS / 5 + POLL_MAX_MS * 11 / 10 + 2000)))
    if awk -v s="$start" -v e="$(at "$t_submit" "$VIDEO_MS")" -v w="$WINDOW" 'BEGIN {exit !(s + w > e)}'; then
      genq_log "note: some generations complete before the dreaming window ends (raise BENCH_VIDEO_MS)"
    fi
    genq_log "waiting $(secs "$(now)" "$start")s until every generation dreams"
    sleep_until "$start"
    measure dreaming
    ;;
  *) genq_die "BENCH_PHASES: unknown phase '$phase' (queued, dreaming)" ;;
  esac
done
echo
