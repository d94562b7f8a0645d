#!/usr/bin/env bash
# genq's chaos test (SPEC §5, §6, §11): a whole stack of its own — Redis
# (append-only, so a plain restart keeps its data), a PostgreSQL cluster,
# genq-provsim with seeded fault injection, genq-api and 3 workers (4 with
# --long) — takes a bounded load of every job kind while a seeded schedule
# SIGKILLs workers (each replaced at once), SIGSTOPs one for the lease + 3 s,
# restarts Redis keeping its data, restarts it with its data gone right after
# a burst of jobs (so queued messages are lost and the reconciler must send
# them again), and restarts PostgreSQL (fast shutdown). Then it waits
# (bounded) for every job to end and checks:
#   1. every job is terminal, and every submit was accepted exactly once;
#   2. `genqctl audit` exits 0;
#   3. per job, from SQL: a terminal job holds 0, held + captured +
#      released = price, a succeeded job captured its whole price, and the
#      ledger and the steps agree with the job row; per user, held = what
#      the jobs hold and balance = grant - captured;
#   4. Hedra: creates per idempotency key <= 1 + interrupted windows + lost
#      answers, and Hedra started one paid job per key;
#   5. Luma: creates per step <= 1 + create windows a kill or stop
#      interrupted + generations forgotten after a provider failure + the
#      simulator's lost_creates (see windows.jq and creates.jq);
#   6. Stripe events (tests/chaos/stripe_load.sh) sent through the same
#      chaos, each 1-3 times in any order: all answered 200 in the end, and
#      per user balance = grant + purchases - refunds - captured;
#   7. no sanitizer report in any log; every process not killed on purpose
#      ran to the end and exited 0 when stopped.
# It prints a summary table, the per-step duplicate list when there is any,
# and last "chaos-summary: passed=N failed=M" (checks). Exits 0
# only when no check failed; a missing piece (no fault counters in the
# simulator, no jobs.reclaims / jobs.dead_at) is a failure.
#
#   tests/chaos/chaos.sh [--long] [--seed N]
#
# Needs GENQ_BUILD_DIR (genq-api, genq-worker, genq-provsim, genqctl; built
# with ASan/UBSan by scripts/test). Runs ~1.5 minutes (--long: ~10). All on
# loopback ports; every process it starts is stopped by pid at exit. The state
# folder (logs, databases) is deleted on success unless GENQ_TEST_KEEP=1, and
# kept (its path printed) on failure. The seed fixes the load and the chaos
# schedule (timings still vary): a failing run prints how to repeat it.
# Its functions (the schedule, the checks' count, the processes, the chaos
# events, the report's tables) are in tests/chaos/lib.bash.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { sed -n '/^#   tests\/chaos/p' "$0" | sed 's/^# *//'; }
LONG=0 SEED=""
while (($#)); do
  case $1 in
  --long) LONG=1 ;;
  --seed)
    SEED=${2:-}
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    echo "chaos: unknown argument '$1'" >&2
    usage >&2
    exit 2
    ;;
  esac
  shift
done
[[ -z $SEED ]] && SEED=$(((RANDOM << 15 | RANDOM) % 1000000))
[[ $SEED =~ ^[0-9]{1,9}$ ]] || {
  echo "chaos: --seed needs a whole number" >&2
  exit 2
}

: "${GENQ_BUILD_DIR:?GENQ_BUILD_DIR must name a build with genq-api, genq-worker, genq-provsim, genqctl}"
BIN=$GENQ_BUILD_DIR
for b in genq-api genq-worker genq-provsim genqctl; do
  [[ -x $BIN/$b ]] || {
    echo "chaos: $BIN/$b is missing (build first)" >&2
    exit 2
  }
done
for t in redis-server redis-cli psql jq curl; do
  command -v "$t" >/dev/null || {
    echo "chaos: $t is not installed" >&2
    exit 2
  }
done
GENQCTL=$BIN/genqctl

# Hermetic: nothing of a caller's stack (scripts/test exports its own) leaks
# into this one; every variable below is set here.
for v in $(compgen -e); do
  case $v in
  GENQ_BUILD_DIR | GENQ_TEST_KEEP) ;;
  GENQ_* | PROVSIM_* | OPENAI_* | LUMA_* | HEDRA_* | CLERK_* | STRIPE_*) unset "$v" ;;
  esac
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# shellcheck source=scripts/lib.sh
. "$HERE/../../scripts/lib.sh"
# shellcheck source=tests/chaos/lib.bash
. "$HERE/lib.bash"

# ---- the run's shape ----------------------------------------------------------
LEASE_S=5
if ((LONG)); then
  MODE=long NWORKERS=4 CONCURRENCY=3 NJOBS=300 LOAD_S=480 CHAOS_S=500 DRAIN_S=240 MAX_ATTEMPTS=6
  N_STOP=4 N_REDIS=3 N_FLUSH=2 N_PG=3
else
  MODE=short NWORKERS=3 CONCURRENCY=2 NJOBS=48 LOAD_S=60 CHAOS_S=80 DRAIN_S=120 MAX_ATTEMPTS=5
  N_STOP=1 N_REDIS=1 N_FLUSH=1 N_PG=1
fi
# Few jobs in flight per worker, so that a backlog waits in Redis: a Redis
# that loses its data loses queued messages, which the reconciler must send again.
GRANT=1000000 # credits per user: the load never runs out
PREFIX=c$SEED # every prompt starts with PREFIX-<n>

# The schedule comes first, from the seed alone (ports use RANDOM too).
chaos_schedule

# ---- state, ports, configuration ------------------------------------------------
STATE=$(mktemp -d /tmp/genq-chaos-XXXXXX)
chmod 755 "$STATE" # the postgres user must reach the cluster inside it
mkdir -p "$STATE"/{logs,redis,storage,keys}
printf '%s\n' "${SCHEDULE[@]}" >"$STATE/schedule"
: >"$STATE/windows.tsv"
REDIS_PORT="" PG_PORT="" SIM_PORT="" API_PORT=""
genq_free_port REDIS_PORT
genq_free_port PG_PORT
genq_free_port SIM_PORT
genq_free_port API_PORT
API=http://127.0.0.1:$API_PORT SIM=http://127.0.0.1:$SIM_PORT

# ---- checks and the report -----------------------------------------------------
PASSED=0 FAILED=0 VIOLATIONS=0
T0_MS=0

CHAOS_DONE=0
genq_trap_cleanup after_stop
LOAD_PID=""
trap chaos_on_exit EXIT

# ---- servers -----------------------------------------------------------------------
REDIS_PID="" PG_PID="" INFRA=() # every Redis and PostgreSQL pid, restarts included

redis_start
pg_start
PGDATA_DIR=$(genq_pg_home "$STATE")/data
genq_make_keys "$STATE/keys"
genq_stack_env "$STATE" "$REDIS_PORT" "$PG_PORT" genq "127.0.0.1:$API_PORT" "$SIM_PORT" \
  "$STATE/keys" >"$STATE/env"
cat >>"$STATE/env" <<ENV
GENQ_LEASE_SECONDS=$LEASE_S
GENQ_WORKER_CONCURRENCY=$CONCURRENCY
GENQ_PROVIDER_TIMEOUT_MS=3000
GENQ_RETRY_BASE_MS=200
GENQ_RETRY_CAP_MS=3000
GENQ_MAX_ATTEMPTS=$MAX_ATTEMPTS
GENQ_POLL_INTERVAL_MS=200
GENQ_POLL_MAX_INTERVAL_MS=1000
GENQ_SHUTDOWN_GRACE_MS=1000
GENQ_SWEEP_INTERVAL_MS=2000
GENQ_UPLOAD_MAX_BYTES=2097152
STRIPE_WEBHOOK_SECRET=whsec_chaos_$SEED
PROVSIM_LUMA_VIDEO_MS=2000
PROVSIM_LUMA_IMAGE_MS=1000
PROVSIM_HEDRA_MS=2000
PROVSIM_OPENAI_LATENCY_MS=200
PROVSIM_LUMA_LATENCY_MS=300
PROVSIM_SEED=$SEED
PROVSIM_ERROR_RATE=0.05
PROVSIM_RATE_LIMIT_RATE=0.05
PROVSIM_RETRY_AFTER_S=1
PROVSIM_RESET_RATE=0.02
PROVSIM_HANG_RATE=0.01
PROVSIM_TRUNCATE_RATE=0.01
PROVSIM_MALFORMED_RATE=0.01
PROVSIM_MODERATION_RATE=0.02
PROVSIM_FAIL_RATE=0.03
ENV
genq_load_env "$STATE/env"
"$GENQCTL" migrate >"$STATE/logs/migrate.log" 2>&1 || {
  cat "$STATE/logs/migrate.log" >&2
  genq_die "genqctl migrate failed"
}

SERVICES=()           # every genq pid started (provsim, api, workers), for the end checks
declare -A KILLED     # pid -> 1: SIGKILLed on purpose
declare -A DIED       # pid -> 1: found dead without being killed (a violation, reported once)
WORKERS=()            # the live fleet
STOPPED="" CONT_AT=0 # the SIGSTOPped worker and when it gets SIGCONT
W_SEQ=0 START_FAILS=0 FATAL="" N_DIED=0

genq_start provsim "$STATE/logs/provsim.log" "$BIN/genq-provsim"
SIM_PID=$GENQ_LAST_PID
SERVICES+=("$SIM_PID")
genq_wait_for "$SIM_PID" 30 curl -fsS -o /dev/null "$SIM/healthz"
genq_start api "$STATE/logs/api.log" "$BIN/genq-api"
API_PID=$GENQ_LAST_PID
SERVICES+=("$API_PID")
genq_wait_for "$API_PID" 30 curl -fsS -o /dev/null "$API/healthz"

for ((i = 0; i < NWORKERS; i++)); do start_worker; done

# ---- users and the load ---------------------------------------------------------------
: >"$STATE/tokens"
for u in 1 2 3 4; do
  "$GENQCTL" credits grant "$PREFIX-u$u" "$GRANT" --key "chaos:$PREFIX-u$u" >/dev/null ||
    genq_die "genqctl credits grant failed"
  # the load is checked job by job: no plan limit may refuse part of it (docs/limits.md)
  "$GENQCTL" limits plan "$PREFIX-u$u" unlimited >/dev/null || genq_die "genqctl limits plan failed"
  "$GENQCTL" token --user "$PREFIX-u$u" --ttl 7200 | tr -d '[:space:]' >>"$STATE/tokens"
  echo >>"$STATE/tokens"
done

echo "chaos: $MODE run, seed $SEED, state in $STATE"
echo "chaos: $NJOBS jobs over $LOAD_S s, $NWORKERS workers of $CONCURRENCY jobs each; schedule: $(cut -d' ' -f2 "$STATE/schedule" | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')"

T0_MS=$(now_ms)
genq_start load "$STATE/logs/load.log" bash "$HERE/load.sh" "$API" "$STATE/tokens" \
  "$STATE/jobs.jsonl" "$NJOBS" "$LOAD_S" "$SEED" "$PREFIX"
LOAD_PID=$GENQ_LAST_PID
# Stripe purchases, async payments and refunds of the same users, each event
# delivered 1-3 times in a shuffled order, through the same chaos.
for u in 1 2 3 4; do echo "$PREFIX-u$u"; done >"$STATE/users"
genq_start stripe "$STATE/logs/stripe.log" bash "$HERE/stripe_load.sh" "$API" \
  "$STRIPE_WEBHOOK_SECRET" "$STATE/users" "$STATE/stripe.out" "$LOAD_S" "$SEED" "$PREFIX"
STRIPE_PID=$GENQ_LAST_PID

# ---- chaos ----------------------------------------------------------------------------
KILLS=0 KILLS_IN=0 STOPS=0 STOPS_IN=0 REDIS_RESTARTS=0 REDIS_FLUSHES=0 PG_RESTARTS=0
MARKER_OK=0 MARKER_BAD=0 # the harness's own check that Redis kept / lost its data

# the size of a burst (of image and video jobs, sent before Redis loses its data)
BURST=$((3 * NWORKERS * CONCURRENCY)) BURST_JOBS=0

NEXT=0
HARD_MS=$(((LOAD_S + 120) * 1000))
while :; do
  now=$(($(now_ms) - T0_MS))
  if [[ -n $STOPPED ]] && (($(now_ms) >= CONT_AT)); then do_cont; fi
  while ((NEXT < ${#SCHEDULE[@]})); do
    read -r at what pick <<<"${SCHEDULE[NEXT]}"
    ((at <= now)) || break
    NEXT=$((NEXT + 1))
    case $what in
    kill) do_kill "$pick" ;;
    stop)
      if [[ -n $STOPPED ]]; then event "stop skipped: a worker is stopped already"; else do_stop "$pick"; fi
      ;;
    redis-restart) do_redis restart ;;
    redis-flush) do_redis flush ;;
    pg-restart) do_pg_restart ;;
    esac
  done
  check_alive
  [[ -n $FATAL ]] && break
  if ((NEXT >= ${#SCHEDULE[@]})) && [[ -z $STOPPED ]] && ! genq_alive "$LOAD_PID"; then
    break
  fi
  if ((now > HARD_MS)); then
    event "the load did not end within $((HARD_MS / 1000)) s: stopping it"
    break
  fi
  sleep 0.2
done
[[ -n $STOPPED ]] && do_cont
LOAD_DONE=1
if genq_alive "$LOAD_PID"; then
  LOAD_DONE=0
  kill -TERM -- "-$LOAD_PID" 2>/dev/null
fi
genq_stop_pid "$LOAD_PID"
event "chaos over: $(tail -n 1 "$STATE/logs/load.log")"
for ((i = 0; i < 120; i++)); do genq_alive "$STRIPE_PID" || break; sleep 1; done
genq_stop_pid "$STRIPE_PID"
event "stripe events over: $(tail -n 1 "$STATE/logs/stripe.log")"

# ---- drain: every job ends (bounded) ----------------------------------------------------
NONTERMINAL_SQL="select count(*) from jobs where status not in ('succeeded', 'failed', 'canceled')"
left=-1
if [[ -z $FATAL ]]; then
  for ((i = 0; i < DRAIN_S; i++)); do
    left=$(psql_db -c "$NONTERMINAL_SQL" 2>/dev/null || echo -1)
    [[ $left == 0 ]] && break
    ((i % 15 == 0)) && event "waiting for $left unfinished job(s)"
    check_alive
    [[ -n $FATAL ]] && break
    sleep 1
  done
fi
event "drain over: $left unfinished job(s)"
CHAOS_DONE=1

# ---- the checks --------------------------------------------------------------------------
echo
echo "# checks"
curl -sS --max-time 10 "$SIM/_sim/stats" >"$STATE/sim_stats.json" 2>/dev/null
jq -e 'type == "object"' "$STATE/sim_stats.json" >/dev/null 2>&1 || echo '{}' >"$STATE/sim_stats.json"

# 1. every job terminal; every job the load submitted exists, none twice
jq -s '[.[] | select(.n)]' "$STATE/jobs.jsonl" >"$STATE/jobs.json" 2>/dev/null || echo '[]' >"$STATE/jobs.json"
SUBMITTED=$(jq 'length' "$STATE/jobs.json")
ACCEPTED=$(jq '[.[] | select(.accepted)] | length' "$STATE/jobs.json")
NJOBS_DB=$(psql_db -c "select count(*) from jobs")
stuck=$(psql_db -c "select id || ' ' || kind || ' ' || status || ' attempt=' || attempt
  || ' epoch=' || epoch || ' dispatched=' || dispatched || ' lease_until=' || coalesce(genq_ts(lease_until), '-')
  || ' next_attempt_at=' || coalesce(genq_ts(next_attempt_at), '-') || ' worker=' || coalesce(worker_id, '-')
  from jobs where status not in ('succeeded', 'failed', 'canceled') order by id")
if [[ -z $stuck ]] && ((${NJOBS_DB:-0} > 0)); then
  pass "every job is terminal ($NJOBS_DB jobs)"
else
  fail "every job is terminal: $(grep -c . <<<"$stuck") of $NJOBS_DB are not, after ${DRAIN_S} s" \
    "$(grep -c . <<<"$stuck")"
  printf '%s\n' "$stuck" | indent | head -n 40
fi
EXPECTED=$((NJOBS + BURST_JOBS))
if ((SUBMITTED == EXPECTED && ACCEPTED == EXPECTED)); then
  pass "the API accepted all $EXPECTED submits ($BURST_JOBS in bursts; retried ones with the same Idempotency-Key)"
else
  fail "the API accepted $ACCEPTED of $EXPECTED submits ($SUBMITTED sent)" $((EXPECTED - ACCEPTED))
  jq -r '.[] | select(.accepted | not) | "       job \(.n) (\(.kind)): last answer \(.http)"' "$STATE/jobs.json"
fi
DISTINCT=$(jq '[.[] | select(.accepted) | .id] | unique | length' "$STATE/jobs.json")
if ((NJOBS_DB == DISTINCT && DISTINCT == ACCEPTED)); then
  pass "one job per accepted submit ($NJOBS_DB in PostgreSQL)"
else
  fail "one job per accepted submit: $NJOBS_DB in PostgreSQL, $DISTINCT distinct ids for $ACCEPTED accepted"
fi

# 2. genqctl audit
if "$GENQCTL" audit >"$STATE/audit.txt" 2>&1; then
  pass "genqctl audit exits 0"
else
  fail "genqctl audit exits 0"
  indent <"$STATE/audit.txt" | head -n 60
fi

# 3. credits per job and per user
bad_jobs=$(psql_db -c "
  with l as (
    select job_id,
           coalesce(sum(held_delta) filter (where movement = 'hold'), 0) as lhold,
           coalesce(sum(-balance_delta) filter (where movement = 'capture'), 0) as lcap,
           coalesce(sum(-held_delta) filter (where movement = 'release'), 0) as lrel
    from ledger where job_id is not null group by job_id),
  s as (select job_id, sum(captured) as scap from job_steps group by job_id)
  select j.id || ' ' || j.kind || ' ' || j.status || ': price=' || j.price || ' held=' || j.held
         || ' captured=' || j.captured || ' released=' || j.released
         || ' | ledger hold=' || coalesce(l.lhold, 0) || ' capture=' || coalesce(l.lcap, 0)
         || ' release=' || coalesce(l.lrel, 0) || ' | steps captured=' || coalesce(s.scap, 0)
  from jobs j left join l on l.job_id = j.id left join s on s.job_id = j.id
  where (j.held <> 0 and j.status in ('succeeded', 'failed', 'canceled'))
     or j.held + j.captured + j.released <> j.price
     or (j.status = 'succeeded' and j.captured <> j.price)
     or coalesce(l.lcap, 0) <> j.captured or coalesce(s.scap, 0) <> j.captured
     or coalesce(l.lhold, 0) - coalesce(l.lrel, 0) - coalesce(l.lcap, 0) <> j.held
  order by j.id" 2>&1)
if [[ -z $bad_jobs ]]; then
  pass "per job: terminal holds 0, held + captured + released = price, succeeded captured all; ledger and steps agree"
else
  fail "per job credits: $(grep -c . <<<"$bad_jobs") job(s) wrong" "$(grep -c . <<<"$bad_jobs")"
  printf '%s\n' "$bad_jobs" | indent | head -n 40
fi
# Stripe: every delivery answered 200 in the end, and each user's balance
# counts each session's credits once and each refund once.
read -r _ S_SENT S_OK S_OTHER < <(grep '^sent ' "$STATE/stripe.out" 2>/dev/null || echo "sent 0 0 0")
if ((S_SENT > 0 && S_OK == S_SENT)); then
  pass "stripe: all $S_SENT event deliveries (duplicates, any order) answered 200"
else
  fail "stripe: $S_OK of $S_SENT event deliveries answered 200 ($S_OTHER refused or unanswered)"
fi
stripe_expect=$(awk '$1 != "sent" {printf "%s(%s, %d, %d)", sep, "\x27" $1 "\x27", $2, $3; sep=", "}' \
  "$STATE/stripe.out" 2>/dev/null)
bad_users=$(psql_db -c "
  with e (user_id, granted, reversed) as (values ${stripe_expect:-('', 0, 0)})
  select a.user_id || ': balance=' || a.balance || ' held=' || a.held || ' captured by jobs='
         || coalesce(sum(j.captured), 0) || ' held by jobs=' || coalesce(sum(j.held), 0)
         || ' stripe granted=' || coalesce(max(e.granted), 0) || ' taken back='
         || coalesce(max(e.reversed), 0) || ' debt=' || a.debt
  from accounts a left join jobs j on j.user_id = a.user_id left join e on e.user_id = a.user_id
  where a.user_id like '$PREFIX-u%'
  group by a.user_id, a.balance, a.held, a.debt
  having a.held <> coalesce(sum(j.held), 0) or a.debt <> 0
      or a.balance <> $GRANT + coalesce(max(e.granted), 0) - coalesce(max(e.reversed), 0)
                     - coalesce(sum(j.captured), 0)" 2>&1)
if [[ -z $bad_users ]]; then
  pass "per user: held = what the jobs hold, balance = grant + Stripe purchases - refunds - captured"
else
  fail "per user credits" "$(grep -c . <<<"$bad_users")"
  printf '%s\n' "$bad_users" | indent
fi

# the run's figures, while PostgreSQL runs (reclaims and dead need new columns)
counts=$(psql_db -c "select count(*), count(*) filter (where status = 'succeeded'),
  count(*) filter (where status = 'failed'), count(*) filter (where status = 'canceled'),
  coalesce(sum(attempt), 0) from jobs" 2>/dev/null | tr '|' ' ')
read -r J_ALL J_OK J_FAIL J_CANC ATTEMPTS <<<"${counts:-? ? ? ? 0}"
RECLAIMS=n/a J_DEAD=n/a
if has_col jobs reclaims; then
  RECLAIMS=$(psql_db -c "select coalesce(sum(reclaims), 0) from jobs")
else
  fail "reclaims: jobs.reclaims is missing"
fi
if has_col jobs dead_at; then
  J_DEAD=$(psql_db -c "select count(*) from jobs where dead_at is not null")
else
  fail "dead-letter: jobs.dead_at is missing"
fi
if [[ $RECLAIMS == n/a ]]; then
  RETRIES="n/a (sum(attempt) - jobs = $((ATTEMPTS - ${J_ALL//[!0-9]/0})), reclaims included)"
else
  RETRIES="$((ATTEMPTS - J_ALL - RECLAIMS)) (sum(attempt) - jobs - reclaims)"
fi

# 4 and 5. provider creates
FAULTS_KNOWN=$(jq '[.. | objects | has("faults")] | any' "$STATE/sim_stats.json")
if [[ $FAULTS_KNOWN == true ]]; then
  pass "genq-provsim injected faults: $(jq -c '[to_entries[] | select(.value | type == "object"
    and has("faults")) | {(.key): .value.faults}] + (if has("faults") then [{all: .faults}] else [] end)
    | add' "$STATE/sim_stats.json")"
else
  fail "fault injection: genq-provsim reports no fault counters: this run injected no provider faults"
fi
psql_db -c "
  select json_build_object('job', s.job_id, 'step', s.name,
    'prompt', case when j.kind in ('image', 'video') then j.input ->> 'prompt'
                   else (select st.output -> 'scenes' -> (substring(s.name from 7)::int - 1) ->> 'visual_prompt'
                         from job_steps st where st.job_id = s.job_id and st.name = 'storyboard') end)
  from job_steps s join jobs j on j.id = s.job_id where s.provider = 'luma'" >"$STATE/luma_steps.jsonl"
psql_db -c "select json_build_object('job', job_id, 'step', name) from job_steps
  where provider = 'hedra'" >"$STATE/hedra_steps.jsonl"
awk -F'\t' 'NF >= 2 {printf "{\"job\":\"%s\",\"step\":\"%s\"}\n", $1, $2}' "$STATE/windows.tsv" \
  >"$STATE/windows.jsonl"
for f in "$STATE"/logs/worker-*.log; do
  jq -Rc 'fromjson? | select(type == "object" and .msg == "step failed"
    and .code == "provider_generation_failed") | {job: .job_id, step: .step}' "$f"
done >"$STATE/forgot.jsonl"
jq -n -f "$HERE/creates.jq" --slurpfile stats "$STATE/sim_stats.json" \
  --slurpfile luma "$STATE/luma_steps.jsonl" --slurpfile hedra "$STATE/hedra_steps.jsonl" \
  --slurpfile windows "$STATE/windows.jsonl" --slurpfile forgot "$STATE/forgot.jsonl" \
  >"$STATE/creates.json" || echo '{}' >"$STATE/creates.json"

LUMA_LOST=$(cj '.luma.lost_known')
HEDRA_LOST=$(cj '.hedra.lost_known')
if [[ $FAULTS_KNOWN == true && ($LUMA_LOST != true || $HEDRA_LOST != true) ]]; then
  fail "genq-provsim injects faults but reports no lost_creates map (luma: $LUMA_LOST, hedra: $HEDRA_LOST)"
fi
h_bad=$(cj '[.hedra.rows[]? | select(.ok | not)] | length')
h_keys=$(cj '.hedra.rows | length')
h_started=$(cj '.hedra.started')
h_unknown=$(cj '.hedra.unknown | length')
if ((h_bad == 0 && h_keys > 0)); then
  pass "Hedra: one create per idempotency key ($h_keys keys$([[ $HEDRA_LOST == true ]] && echo ', lost answers allowed for'))"
else
  fail "Hedra: one create per idempotency key: $h_bad of $h_keys keys over" "$((h_bad > 0 ? h_bad : 1))"
fi
if [[ $h_started == "$h_keys" && $h_unknown == 0 ]]; then
  pass "Hedra: one paid job per key ($h_started started), every key names a step of ours"
else
  fail "Hedra: $h_started jobs started for $h_keys keys; $h_unknown key(s) name no lipsync step of ours"
  cj '.hedra.unknown[] | "       unknown key: \(.)"'
fi
l_bad=$(cj '[.luma.rows[]? | select(.ok | not)] | length')
l_rows=$(cj '.luma.rows | length')
l_unknown=$(cj '.luma.unknown | length')
if ((l_bad == 0 && l_rows > 0)); then
  pass "Luma: creates per step within 1 + interrupted windows + forgotten + lost ($l_rows prompts)"
else
  fail "Luma: creates per step: $l_bad of $l_rows prompts over their allowance" "$((l_bad > 0 ? l_bad : 1))"
fi
if ((l_unknown == 0)); then
  pass "Luma: every create was for a step of ours"
else
  fail "Luma: $l_unknown create prompt(s) belong to no step" "$l_unknown"
  cj '.luma.unknown[] | "       unknown prompt: \(.)"' | head -n 20
fi
DUP_ALL=$(cj '[.luma.rows[]? | select(.creates > 1) | .creates - 1] | add // 0')
DUP_BAD=$(cj '[.luma.rows[]? | select(.ok | not) | .creates - .allowed] | add // 0')
HDUP=$(cj '[.hedra.rows[]? | select(.creates > 1) | .creates - 1] | add // 0')
HDUP_BAD=$(cj '[.hedra.rows[]? | select(.ok | not) | .creates - .allowed] | add // 0')

# 6. processes: alive to the end, clean exits, no sanitizer report
dead_now=()
for p in "${SERVICES[@]}" "$REDIS_PID" "$PG_PID"; do
  [[ -n ${KILLED[$p]:-} || -n ${DIED[$p]:-} ]] && continue
  genq_alive "$p" || dead_now+=("$(name_of "$p") (pid $p)")
done
ndied=$((N_DIED + ${#dead_now[@]}))
if ((ndied == 0)); then
  pass "every process not killed on purpose ran to the end"
else
  fail "processes that died on their own: $N_DIED during the run, ${#dead_now[@]} found dead at the end${dead_now[*]:+: ${dead_now[*]}}" "$ndied"
  for p in "${!DIED[@]}"; do echo "       $(name_of "$p") (pid $p) exited ${GENQ_PID_RC[$p]}"; done
fi
# stop: workers first (SIGTERM; they hand their jobs back), then api, simulator, servers
for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do genq_stop_pid "${SERVICES[i]}"; done
genq_stop_pid "$REDIS_PID"
genq_stop_pid "$PG_PID"
unclean=()
for p in "${SERVICES[@]}" "${INFRA[@]}"; do
  [[ -n ${KILLED[$p]:-} || -n ${DIED[$p]:-} ]] && continue
  [[ ${GENQ_PID_RC[$p]:-} == 0 ]] || unclean+=("$(name_of "$p") (pid $p) exited ${GENQ_PID_RC[$p]:-?}")
done
if ((${#unclean[@]} == 0)); then
  pass "every process stopped by SIGTERM/SIGINT/SHUTDOWN exited 0"
else
  fail "unclean exits: ${unclean[*]}" "${#unclean[@]}"
fi
san=$(grep -lE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$STATE"/logs/*.log 2>/dev/null)
if [[ -z $san ]]; then
  pass "no sanitizer report in any log ($(find "$STATE/logs" -name '*.log' | wc -l) logs)"
else
  fail "sanitizer reports in: $(xargs -n1 basename <<<"$san" | tr '\n' ' ')" "$(grep -c . <<<"$san")"
  for f in $san; do
    echo "       --- $(basename "$f")"
    grep -m 3 -A 12 -E 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$f" | indent
  done
fi
if ((MARKER_BAD == 0)); then
  pass "the harness's Redis restarts kept (restart) or lost (flush) its data as meant"
else
  fail "the harness's Redis restarts: $MARKER_BAD did not keep/lose the marker key as meant"
fi
if ((KILLS > 0 && STOPS > 0 && REDIS_RESTARTS > 0 && REDIS_FLUSHES > 0 && PG_RESTARTS > 0)); then
  pass "every chaos event happened at least once"
else
  fail "every chaos event happened at least once (kills $KILLS, stops $STOPS, redis $REDIS_RESTARTS, flushes $REDIS_FLUSHES, postgres $PG_RESTARTS)"
fi
((START_FAILS == 0)) || fail "every worker started ($START_FAILS did not)" "$START_FAILS"
((LOAD_DONE)) || fail "the load ran to its end"
[[ -z $FATAL ]] || fail "the run went on to its end ($FATAL)"

# ---- the duplicate list and the summary ---------------------------------------------------
duplicate_list
summary_table
echo "chaos-summary: passed=$PASSED failed=$FAILED"
((FAILED == 0))
