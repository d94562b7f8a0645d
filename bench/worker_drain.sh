#!/usr/bin/env bash
# bench/worker_drain.sh [N]: the worker side of SPEC §11's end-to-end case
# alone. N zero-latency storyboard jobs (default 3000) are submitted through
# genq-api with no worker running, and dispatched; then two genq-workers
# start and drain them. jobs/s counts from the first claim to the last finish
# (jobs.started_at, jobs.finished_at), so the submit rate plays no part.
# Prints pg_stat_statements for the drain (reset as the workers start), the
# statements per job, Redis's command counts and the workers' CPU time, then
# runs genqctl audit.
#
# Starts its own stack on free loopback ports (Redis, PostgreSQL with fsync
# off and pg_stat_statements, genq-provsim with zero OpenAI latency,
# genq-api) and stops exactly what it started, by pid. Bounded: the submits
# and the drain each give up after BENCH_TIMEOUT_S (300).
#
# Environment: BENCH_BUILD (binaries, default build/bench: built Release
# when missing), BENCH_WORKERS (2), BENCH_CONCURRENCY (64), BENCH_DB_POOL
# (GENQ_DB_POOL of the workers; unset: genq's default), BENCH_TIMEOUT_S,
# BENCH_PGSS_TRACK (pg_stat_statements.track: top, or all to see the
# statements inside genq's functions; statements per job count top only),
# BENCH_TOP (rows of the statement table, 12), BENCH_USERS (50, as in
# scripts/bench; the jobs go round robin over them),
# BENCH_KEEP=1 (keep the state folder and logs).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$GENQ_ROOT"

N=${1:-3000}
WORKERS=${BENCH_WORKERS:-2}
CONCURRENCY=${BENCH_CONCURRENCY:-64}
TIMEOUT=${BENCH_TIMEOUT_S:-300}
USERS=${BENCH_USERS:-50}
for v in N WORKERS CONCURRENCY TIMEOUT USERS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || genq_die "$v must be a whole number above 0 (got '${!v}')"
done
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(GENQ_|PROVSIM_|LUMA_|OPENAI_|HEDRA_|CLERK_)' || true)

BUILD=$(realpath -m "${BENCH_BUILD:-$GENQ_ROOT/build/bench}")
if [[ ! -x $BUILD/genq-worker ]]; then
  genq_log "building (Release) in ${BUILD#"$GENQ_ROOT"/}"
  genq_build "$BUILD" Release -DGENQ_TESTS=OFF >"$BUILD.make.log" 2>&1 || genq_die "build failed ($BUILD.make.log)"
fi
for b in genq-api genq-worker genq-provsim genqctl; do
  [[ -x $BUILD/$b ]] || genq_die "$BUILD has no $b"
done
GENQCTL=$BUILD/genqctl

STATE=$(mktemp -d /tmp/genq-drain-XXXXXX)
chmod 755 "$STATE"
mkdir -p "$STATE"/{logs,redis,storage,keys}
after_stop() {
  if (($1 != 0)) || [[ ${BENCH_KEEP:-} == 1 ]]; then echo "state and logs kept in $STATE" >&2; else rm -rf "$STATE"; fi
}
genq_trap_cleanup after_stop

REDIS_PORT="" PG_PORT="" SIM_PORT="" API_PORT=""
for p in REDIS_PORT PG_PORT SIM_PORT API_PORT; do genq_free_port "$p"; done
genq_start_redis "$STATE/redis" "$REDIS_PORT" "$STATE/logs/redis.log"
genq_start_postgres "$STATE" "$PG_PORT" "$STATE/logs/postgres.log" -c max_connections=100 \
  -c shared_preload_libraries=pg_stat_statements -c fsync=off -c synchronous_commit=off \
  -c full_page_writes=off -c "pg_stat_statements.track=${BENCH_PGSS_TRACK:-top}"
PG=$GENQ_LAST_PID
pg_cpu() { # CPU seconds (user + system) of the postmaster's children so far
  local c=0 p
  for p in $(ps -o pid= --ppid "$PG"); do
    c=$(awk -v c="$c" '{printf "%.2f", c + ($14 + $15) / 100}' "/proc/$p/stat" 2>/dev/null || echo "$c")
  done
  echo "$c"
}
genq_make_keys "$STATE/keys"
genq_stack_env "$STATE" "$REDIS_PORT" "$PG_PORT" genq "127.0.0.1:$API_PORT" "$SIM_PORT" \
  "$STATE/keys" >"$STATE/env"
{
  echo "PROVSIM_OPENAI_LATENCY_MS=0"
  echo "GENQ_SHUTDOWN_GRACE_MS=2000"
} >>"$STATE/env"
genq_load_env "$STATE/env"
psql_q() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d genq -X -qAt "$@"; }
"$GENQCTL" migrate >"$STATE/logs/migrate.log" 2>&1 || genq_die "genqctl migrate failed"
psql_q -c "create extension if not exists pg_stat_statements" >/dev/null

cd "$STATE"
genq_start provsim "$STATE/logs/provsim.log" "$BUILD/genq-provsim"
SIM=$GENQ_LAST_PID
genq_wait_for "$SIM" 30 genq_port_in_use "$SIM_PORT"
genq_start api "$STATE/logs/api.log" "$BUILD/genq-api"
API=$GENQ_LAST_PID
API_URL=http://127.0.0.1:$API_PORT
genq_wait_for "$API" 30 curl -fsS -o /dev/null "$API_URL/healthz"

: >"$STATE/tokens"
for ((i = 1; i <= USERS; i++)); do
  "$GENQCTL" credits grant "drain-$i" $((N / USERS + 10)) --key "drain:$i" >/dev/null
  "$GENQCTL" limits plan "drain-$i" unlimited >/dev/null
  "$GENQCTL" token --user "drain-$i" --ttl 7200 | tr -d '[:space:]' >>"$STATE/tokens"
  echo >>"$STATE/tokens"
done
mapfile -t TOKENS <"$STATE/tokens"
for ((i = 0; i < N; i++)); do
  ((i > 0)) && echo next
  printf 'url = "%s/v1/jobs"\nheader = "Authorization: Bearer %s"\n' "$API_URL" "${TOKENS[i % USERS]}"
  printf 'header = "Content-Type: application/json"\nsilent\nshow-error\noutput = "/dev/null"\n'
  printf 'data = "{\\"kind\\":\\"storyboard\\",\\"input\\":{\\"prompt\\":\\"a drain bench shot %s\\",\\"scenes\\":3}}"\n' "$i"
  printf 'write-out = "%%{http_code}\\n"\n'
done >"$STATE/submit.curl"
genq_log "submitting $N storyboard jobs (no worker runs)"
t0=$(date +%s.%N)
timeout "$TIMEOUT" curl -Z --parallel-max 16 -K "$STATE/submit.curl" >"$STATE/codes" 2>"$STATE/logs/curl.log" || true
ACCEPTED=$(grep -c '^202$' "$STATE/codes" || true)
genq_log "$ACCEPTED of $N accepted in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
deadline=$((SECONDS + TIMEOUT))
until (($(psql_q -c "select count(*) from jobs where dispatched") >= ACCEPTED)); do
  ((SECONDS < deadline)) || genq_die "jobs not all dispatched after ${TIMEOUT}s"
  sleep 0.5
done

psql_q -c "select pg_stat_statements_reset()" >/dev/null
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config resetstat >/dev/null
PG_CPU0=$(pg_cpu)
genq_log "draining with $WORKERS genq-workers --concurrency $CONCURRENCY"
WPIDS=()
for ((w = 1; w <= WORKERS; w++)); do
  genq_start "worker-$w" "$STATE/logs/worker-$w.log" env ${BENCH_DB_POOL:+GENQ_DB_POOL=$BENCH_DB_POOL} \
    "$BUILD/genq-worker" --concurrency "$CONCURRENCY"
  WPIDS+=("$GENQ_LAST_PID")
done
deadline=$((SECONDS + TIMEOUT))
while (($(psql_q -c "select count(*) from jobs where status in ('queued', 'running')") > 0)); do
  ((SECONDS < deadline)) || {
    genq_log "jobs unfinished after ${TIMEOUT}s"
    break
  }
  for pid in "${WPIDS[@]}"; do genq_require_alive "$pid"; done
  sleep 0.2
done
PG_CPU=$(awk -v a="$PG_CPU0" -v b="$(pg_cpu)" 'BEGIN {printf "%.2f", b - a}')
CPU=$(for pid in "${WPIDS[@]}"; do awk '{printf "%.2f ", ($14 + $15) / 100}' "/proc/$pid/stat"; done)
read -r OK SPAN < <(psql_q -F ' ' -c "
  select count(*) filter (where status = 'succeeded'),
         round(extract(epoch from max(finished_at) - min(started_at))::numeric, 3)
  from jobs")
echo
echo "## worker drain: $OK of $ACCEPTED storyboard jobs succeeded, $WORKERS workers --concurrency $CONCURRENCY"
echo
echo "- first claim to last finish: ${SPAN} s, $(awk -v n="$OK" -v s="$SPAN" 'BEGIN {printf "%.0f", (s > 0) ? n / s : 0}') jobs/s"
echo "- CPU (user + system, s) of the workers: $CPU; of PostgreSQL's backends: $PG_CPU"
echo "- PostgreSQL statements per job: $(psql_q -c "select round(sum(calls)::numeric / $OK, 2) from pg_stat_statements where toplevel and query !~* 'pg_stat_statements'")"
echo
echo "| calls | per job | total ms | mean ms | rows | statement |"
echo "| ---: | ---: | ---: | ---: | ---: | --- |"
psql_q -F ' | ' -c "
  select calls, round(calls::numeric / $OK, 2), round(total_exec_time::numeric, 0),
         round(mean_exec_time::numeric, 3), rows,
         left(regexp_replace(query, '\s+', ' ', 'g'), 90)
  from pg_stat_statements where query !~* 'pg_stat_statements'
  order by total_exec_time desc limit ${BENCH_TOP:-12}" | sed 's/^/| /; s/$/ |/'
echo
echo "Redis commands per job:"
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info commandstats | tr -d '\r' |
  awk -F'[:=,]' -v n="$OK" '/^cmdstat_/ {sub(/^cmdstat_/, "", $1); printf "  %s %d (%.2f)\n", $1, $3, $3 / n}' |
  sort -k2 -n -r | head -8
for ((i = ${#WPIDS[@]} - 1; i >= 0; i--)); do genq_stop_pid "${WPIDS[i]}"; done
if "$GENQCTL" audit >"$STATE/logs/audit.log" 2>&1; then echo "genqctl audit: clean"; else echo "genqctl audit: NOT clean"; fi
