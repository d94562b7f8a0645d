#!/usr/bin/env bash
# End to end: genq when its dependencies go away (SPEC §5).
#   1. Redis loses its data (FLUSHDB) while jobs wait in its streams: the
#      relay sees Redis's incarnation token change, PostgreSQL clears the
#      dispatch marks, and every job is sent again and runs once.
#   2. Quiet mode: a worker sent SIGUSR1 or SIGTSTP takes no new job, goes
#      on with the one it holds, and exits 0 on SIGTERM.
#   3. A genq-api whose PostgreSQL is unreachable answers readyz 503 naming
#      it and refuses writes with 503; one whose Redis is unreachable names
#      Redis and still takes jobs (PostgreSQL is the truth; the relay sends
#      them later). Workers without PostgreSQL or Redis wait without
#      spinning a core and exit 0 on SIGTERM.
#
# Like e2e_resume.sh it runs a mini stack of its own (mini_stack.bash: a
# new database, Redis db 12, its own genq-provsim, genq-api and workers) on
# the stack's servers, so that it can flush Redis and start workers at will.
# Needs GENQ_BUILD_DIR, GENQ_DATABASE_URL, GENQ_REDIS_URL, CLERK_* and
# GENQ_DEV_JWT_PRIVATE_KEY (scripts/test sets them). Prints one line per
# check and "e2e-summary: passed=N failed=M"; exits non-zero on any failure.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" recovery 12
API2_PORT="" DEAD_PORT=""
genq_free_port API2_PORT
genq_free_port DEAD_PORT # nothing listens there: a dependency that is down
export PROVSIM_LUMA_VIDEO_MS=3000 PROVSIM_LUMA_IMAGE_MS=800 PROVSIM_OPENAI_LATENCY_MS=100
export GENQ_LEASE_SECONDS=5 GENQ_POLL_INTERVAL_MS=200 GENQ_POLL_MAX_INTERVAL_MS=1000
export GENQ_RETRY_BASE_MS=100 GENQ_RETRY_CAP_MS=1000
mini_stack_start

# stopped_with PID RC: SIGTERM, wait (at most 10 s), compare the exit status
stopped_with() {
  genq_stop_pid "$1"
  [[ ${GENQ_PID_RC[$1]} == "$2" ]]
}
# cpu_ticks PID: user + system clock ticks used so far
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

mini_stack_user 100

submit() { # KIND PROMPT → JOB (empty when not 202)
  req POST /v1/jobs "$TOKEN" "{\"kind\":\"$1\",\"input\":{\"prompt\":\"$2\"}}"
  JOB=""
  status_is 202 && JOB=$(jq -r .id <<<"$BODY")
}
# all_succeeded ID...: each job ends succeeded (60 s each at most)
all_succeeded() {
  local id
  for id in "$@"; do
    poll_job "$TOKEN" "$id" && jqt '.status == "succeeded"' || return 1
  done
}
stream_entries() { # total entries in the job streams
  local k n=0
  for k in storyboard image; do
    n=$((n + $(rcli xlen "genq:{q}:jobs:$k")))
  done
  echo "$n"
}

# ---- 1. Redis loses its data while jobs wait in it -------------------------------
# No worker runs yet: the jobs are committed, sent to their streams by the
# API's relay and marked dispatched, then Redis forgets them all.
JOBS=()
for i in 1 2 3 4; do
  submit storyboard "recovery storyboard $RUN $i"
  JOBS+=("$JOB")
done
submit image "recovery image $RUN"
JOBS+=("$JOB")
check "5 jobs accepted" [ "$(printf "%s\n" "${JOBS[@]}" | grep -c .)" -eq 5 ]
marked() { [[ $(psql_db -c "select count(*) from jobs where dispatched") == 5 ]]; }
check "the relay sent all 5 to Redis and marked them dispatched" genq_wait_for "${SERVICES[1]}" 20 marked
ENTRIES=$(stream_entries)
check "their messages are in the streams ($ENTRIES entries)" [ "${ENTRIES:-0}" -ge 5 ]
check "Redis loses its data (FLUSHDB)" [ "$(rcli flushdb)" == OK ]
check "the streams are empty" [ "$(stream_entries)" -eq 0 ]
start_worker worker-1
W1=$WPID
check "every job is dispatched again and succeeds" all_succeeded "${JOBS[@]}"
ran_once() {
  [[ $(psql_db -c "select count(*) from jobs where status = 'succeeded' and attempt = 1") == 5 ]]
}
check "each ran once (attempt 1)" ran_once
check "PostgreSQL recorded the new Redis incarnation and the jobs it cleared" \
  [ "$(psql_db -c "select reset_jobs >= 5 and redis_incarnation = '$(rcli info server | tr -d '\r' | sed -n 's/^run_id://p')/$(rcli get 'genq:{q}:incarnation')' from dispatch_state")" == t ]

# ---- 2. quiet mode ---------------------------------------------------------------
submit image "recovery quiet holds $RUN"
HELD=$JOB
running() {
  req GET "/v1/jobs/$HELD" "$TOKEN"
  status_is 200 && jqt '.status == "running" and .steps[0].status == "running"'
}
check "worker-1 runs an image job" genq_wait_for "$W1" 20 running
kill -USR1 "$W1"
check "SIGUSR1: worker-1 goes quiet" genq_wait_for "$W1" 10 grep -q '"quiet: taking no new jobs' "$STATE/logs/worker-1.log"
check "the job it held still succeeds" all_succeeded "$HELD"
start_worker worker-2
W2=$WPID
kill -TSTP "$W2"
check "SIGTSTP: worker-2 goes quiet (and is not stopped by it)" genq_wait_for "$W2" 10 grep -q '"quiet: taking no new jobs' "$STATE/logs/worker-2.log"
submit storyboard "recovery while quiet $RUN"
QJOB=$JOB
sleep 3
req GET "/v1/jobs/$QJOB" "$TOKEN"
check "with every worker quiet a new job stays queued (3 s)" jqt '.status == "queued"'
check "worker-1 exits 0 on SIGTERM" stopped_with "$W1" 0
check "worker-2 exits 0 on SIGTERM" stopped_with "$W2" 0
start_worker worker-3
W3=$WPID
check "a live worker takes the queued job" all_succeeded "$QJOB"

# ---- 3. dependencies that are down -------------------------------------------------
genq_start api-nopg "$STATE/logs/api-nopg.log" env GENQ_API_LISTEN="127.0.0.1:$API2_PORT" \
  GENQ_DATABASE_URL="postgresql://postgres@127.0.0.1:$DEAD_PORT/$DB?connect_timeout=2" "$BIN/genq-api"
NOPG=$GENQ_LAST_PID
genq_wait_for "$NOPG" 30 curl -fsS -o /dev/null "http://127.0.0.1:$API2_PORT/healthz"
API_SAVED=$API
API=http://127.0.0.1:$API2_PORT
req GET /readyz -
check "no PostgreSQL: readyz is 503 and names it" jqt '.status == "unavailable" and .postgres == "down" and .redis == "ok"'
check "... with status 503" status_is 503
BEFORE=$(psql_db -c "select count(*) from jobs")
req POST /v1/jobs "$TOKEN" '{"kind":"storyboard","input":{"prompt":"recovery no database"}}'
check "no PostgreSQL: a submit is 503 with Retry-After" error_is 503 unavailable
check "... and changed nothing" [ "$(psql_db -c "select count(*) from jobs")" == "$BEFORE" ]
req GET /v1/credits "$TOKEN"
check "no PostgreSQL: a read is 503 too" error_is 503 unavailable
check "genq-api without PostgreSQL exits 0 on SIGTERM" stopped_with "$NOPG" 0

genq_start api-noredis "$STATE/logs/api-noredis.log" env GENQ_API_LISTEN="127.0.0.1:$API2_PORT" \
  GENQ_REDIS_URL="redis://127.0.0.1:$DEAD_PORT/12" "$BIN/genq-api"
NORDS=$GENQ_LAST_PID
genq_wait_for "$NORDS" 30 curl -fsS -o /dev/null "http://127.0.0.1:$API2_PORT/healthz"
req GET /readyz -
check "no Redis: readyz is 503 and names it" jqt '.status == "unavailable" and .redis == "down" and .postgres == "ok"'
submit storyboard "recovery no redis $RUN"
NRJOB=$JOB
check "no Redis: a submit is still accepted (PostgreSQL is the truth)" [ -n "$NRJOB" ]
API=$API_SAVED
check "the worker's relay sends it later and it succeeds" all_succeeded "$NRJOB"
check "genq-api without Redis exits 0 on SIGTERM" stopped_with "$NORDS" 0

for dep in pg redis; do
  if [[ $dep == pg ]]; then
    start_worker "worker-no$dep" GENQ_DATABASE_URL="postgresql://postgres@127.0.0.1:$DEAD_PORT/$DB?connect_timeout=2"
  else
    start_worker "worker-no$dep" GENQ_REDIS_URL="redis://127.0.0.1:$DEAD_PORT/12"
  fi
  W=$WPID
  T0=$(cpu_ticks "$W")
  sleep 5
  T1=$(cpu_ticks "$W")
  echo "       worker without $dep used $((T1 - T0)) clock ticks of CPU in 5 s"
  check "a worker without $dep waits without spinning (under 1 s of CPU in 5 s)" [ $((T1 - T0)) -lt "$(getconf CLK_TCK)" ]
  check "a worker without $dep exits 0 on SIGTERM" stopped_with "$W" 0
done

check "worker-3 exits 0 on SIGTERM" stopped_with "$W3" 0

# ---- 4. a worker paused past its lease -------------------------------------------
# worker-S holds a video whose generation id is checkpointed; it is stopped
# (SIGSTOP) past its lease; worker-T reclaims the job and finishes it; when
# S resumes it commits nothing about the job and lets it go.
start_worker worker-S
WS=$WPID
PROMPT_S="recovery paused $RUN"
submit video "$PROMPT_S"
SJOB=$JOB
has_ref() {
  req GET "/v1/jobs/$SJOB" "$TOKEN"
  status_is 200 && jqt '.steps[0].provider_ref | type == "string"'
}
check "worker-S checkpoints the video's generation" genq_wait_for "$WS" 20 has_ref
kill -STOP "$WS"
sleep $((GENQ_LEASE_SECONDS + 2))
start_worker worker-T
WT=$WPID
reclaimed() { [[ $(psql_db -c "select epoch >= 2 and worker_id like '%:$WT:%' from jobs where id = '$SJOB'") == t ]]; }
check "worker-T reclaims the job once the lease lapsed (epoch 2)" genq_wait_for "$WT" 30 reclaimed
check "the job succeeds" all_succeeded "$SJOB"
kill -CONT "$WS"
let_go() { grep -E '"(lease lost: abandoning job|job fenced[^"]*)"' "$STATE/logs/worker-S.log" | grep -q "$SJOB"; }
check "worker-S, resumed, finds the job is not its own any more and lets it go" genq_wait_for "$WS" 20 let_go
SEPOCH=$(grep -F "\"job claimed\",\"job_id\":\"$SJOB\"" "$STATE/logs/worker-S.log" | head -n 1 | jq -r .epoch)
check "... it held epoch 1" [ "$SEPOCH" == 1 ]
check "nothing was committed at epoch 1 after the reclaim: one capture of 10" \
  [ "$(psql_db -c "select count(*) || ':' || coalesce(sum(-balance_delta), 0) from ledger where job_id = '$SJOB' and movement = 'capture'")" == 1:10 ]
check "the simulator saw one create for the video" \
  [ "$(sim_count luma creates_by_prompt "$PROMPT_S")" -eq 1 ]
check "worker-S is still alive and exits 0 on SIGTERM" stopped_with "$WS" 0
check "worker-T exits 0 on SIGTERM" stopped_with "$WT" 0

check "genqctl audit is clean" "$GENQCTL" audit
mini_stack_check_logs
finish
