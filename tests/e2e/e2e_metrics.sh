#!/usr/bin/env bash
# End to end: Prometheus metrics (docs/metrics.md) on a mini stack of its
# own (mini_stack.bash, Redis db 6: a database of its own, so every fleet
# figure is exactly what this test made).
#
# - A bad GENQ_METRICS_LISTEN, or one whose port is taken, stops
#   genq-worker naming the variable.
# - genq-api's GET /metrics: 200, the 0.0.4 content type, clean under
#   `promtool check metrics`, every histogram cumulative up to +Inf.
# - Values move by the right amounts: 5 jobs submitted (and one replay)
#   with no worker running: genq_api_jobs_submitted_total +5, the POST
#   /v1/jobs 202 counter +6, the fleet's ready queue and jobs per kind,
#   the oldest ready job's age, credits held 7; 4 polls count under the
#   route template /v1/jobs/{id} (no job id in any label), a 404 and an
#   unknown path too.
# - A scrape storm costs PostgreSQL at most one fleet read a second.
# - A worker with GENQ_METRICS_LISTEN runs them: claims, runs succeeded,
#   their durations, steps, credits captured (3 + 4), OpenAI and Luma
#   answers by code; promtool clean with every histogram observed.
# - A provider error counted: a storyboard whose OpenAI call answers 500
#   twice (GENQ_MAX_ATTEMPTS_STORYBOARD=2): 500s counted, one retry, one
#   dead run, and the fleet's dead-letter set shows it.
# - In flight: a video at Luma: the worker's in-flight gauge 1, its Luma
#   slot held, the fleet's slots in use 1 of max 2 and the job running;
#   all back to 0 once it succeeded.
# - The breaker forced open (genqctl providers): genq_provider_breaker_state
#   says so, and an image job waits for its Luma slot before its claim
#   (genq_worker_jobs_waiting_slot 1, in flight, still queued for the
#   fleet); closed: it is claimed and succeeds.
# - PostgreSQL away (a genq-api pointed at a closed port) or Redis away (a
#   worker pointed at one): a scrape still answers within 2.5 s, promtool
#   clean, with genq_fleet_up / genq_provider_state_up 0.
# - The worker's server answers other paths and methods in genq's error
#   shape.
# - docs/grafana/genq.json: every metric its queries use is one these
#   scrapes exported.
# - Every process exits 0 on SIGTERM, no sanitizer report.
#
# Needs what mini_stack.bash needs (scripts/test sets it), promtool (the
# prometheus package, scripts/lib.sh's GENQ_TEST_DEB_PACKAGES) and jq.
# shellcheck disable=SC2016,SC2034,SC2119
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" metrics 6

command -v promtool >/dev/null || genq_die "promtool is missing (the prometheus package)"
export PROVSIM_LUMA_VIDEO_MS=4000 PROVSIM_LUMA_IMAGE_MS=300 PROVSIM_OPENAI_LATENCY_MS=50
export GENQ_POLL_INTERVAL_MS=200 GENQ_POLL_MAX_INTERVAL_MS=400
export GENQ_RETRY_BASE_MS=100 GENQ_RETRY_CAP_MS=300 GENQ_MAX_ATTEMPTS_STORYBOARD=2
mini_stack_start
DASHBOARD=$HERE/../../docs/grafana/genq.json

# ---- helpers ------------------------------------------------------------------
# scrape URL FILE: GET URL into FILE; true on 200 with the exposition
# format's content type.
scrape() {
  local code
  code=$(curl -sS --max-time 10 -o "$2" -D "$2.headers" -w '%{http_code}' "$1" 2>"$TMP/scrape.err") || code=000
  [[ $code == 200 ]] &&
    tr -d '\r' <"$2.headers" | grep -qixF 'content-type: text/plain; version=0.0.4; charset=utf-8'
}
promtool_ok() { promtool check metrics <"$1" >"$1.promtool" 2>&1; }
# mval FILE NAME [KEY=VALUE...]: the sum of the samples of NAME whose labels
# include every KEY="VALUE" (0 when there is none).
mval() {
  local file=$1 name=$2
  shift 2
  awk -v name="$name" -v want="$*" '
    BEGIN { n = split(want, w, " ") }
    /^#/ || NF < 2 { next }
    {
      series = $1; value = $NF; base = series; sub(/\{.*/, "", base)
      if (base != name) next
      for (i = 1; i <= n; i++) {
        k = substr(w[i], 1, index(w[i], "=") - 1); v = substr(w[i], index(w[i], "=") + 1)
        pair = k "=\"" v "\""
        if (index(series, "{" pair) == 0 && index(series, "," pair) == 0) next
      }
      s += value
    }
    END { printf "%.15g\n", s + 0 }' "$file"
}
is() { [[ $(mval "$@") == "$EXPECT" ]]; }
# expect VALUE FILE NAME [KEY=VALUE...]: mval is VALUE.
expect() {
  EXPECT=$1
  shift
  is "$@"
}
# histograms_cumulative FILE [1]: every histogram of FILE has buckets that
# never decrease and a +Inf bucket equal to its _count (with 1: and FILE
# has at least one histogram)
histograms_cumulative() {
  awk -v want="${2:-0}" '
    /^#/ { next }
    $1 ~ /_bucket\{/ {
      key = $1; sub(/,?le="[^"]*"/, "", key); sub(/_bucket/, "", key); sub(/\{\}/, "", key)
      if ((key in last) && $2 + 0 < last[key]) bad = bad " " $1
      last[key] = $2 + 0
      if ($1 ~ /le="\+Inf"/) inf[key] = $2 + 0
      next
    }
    $1 ~ /_count/ { key = $1; sub(/_count/, "", key); cnt[key] = $2 + 0 }
    END {
      for (k in inf) if (!(k in cnt) || cnt[k] != inf[k]) bad = bad " " k
      if (bad != "") { print "not cumulative:" bad > "/dev/stderr"; exit 1 }
      exit (length(inf) == 0 && want == 1)
    }' "$1"
}
# the metric names a scrape exports: its samples' and its families'
# (a histogram family's _bucket, _sum and _count)
names_of() {
  awk '
    /^# TYPE / { print $3; if ($4 == "histogram") { print $3 "_bucket"; print $3 "_sum"; print $3 "_count" } next }
    /^#/ || NF < 2 { next }
    { n = $1; sub(/\{.*/, "", n); print n }' "$@" | sort -u
}
wait_for() { # wait_for SECONDS CMD...: CMD true within SECONDS (checked every 0.2 s)
  local i n=$(($1 * 5))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}
job_status_is() { # job_status_is ID STATUS
  req GET "/v1/jobs/$1" "$TOKEN"
  status_is 200 && jqt '.status == $s' --arg s "$2"
}
submit() { # submit KIND INPUT_JSON [IDEMPOTENCY_KEY]: sets JOB
  local extra=()
  [[ -n ${3:-} ]] && extra=(-H "Idempotency-Key: $3")
  REQ_HEADERS=("${extra[@]}")
  req POST /v1/jobs "$TOKEN" "$(jq -nc --arg k "$1" --argjson i "$2" '{kind:$k,input:$i}')"
  REQ_HEADERS=()
  JOB=$(jq -r '.id // empty' <<<"$BODY")
}
# the fleet is read at most once a second: a scrape after this reads it anew
fleet_settle() { sleep 1.1; }

# ---- configuration ------------------------------------------------------------
out=$(env GENQ_METRICS_LISTEN=9100 timeout 20 "$BIN/genq-worker" 2>&1)
rc=$?
check "a bad GENQ_METRICS_LISTEN stops genq-worker, naming it (exit $rc)" \
  eval '((rc != 0 && rc != 124)) && grep -q "GENQ_METRICS_LISTEN must be host:port" <<<"$out"'
out=$(env GENQ_METRICS_LISTEN="127.0.0.1:$API_PORT" timeout 20 "$BIN/genq-worker" 2>&1)
rc=$?
check "a GENQ_METRICS_LISTEN whose port is taken stops genq-worker, naming it (exit $rc)" \
  eval '((rc != 0 && rc != 124)) && grep -q "GENQ_METRICS_LISTEN: cannot listen on 127.0.0.1:$API_PORT" <<<"$out"'

mini_stack_user 1000
A0=$TMP/api0.prom
check "genq-api answers GET /metrics: 200, text/plain; version=0.0.4" scrape "$API/metrics" "$A0"
check "promtool check metrics: genq-api's first scrape is clean" promtool_ok "$A0"
check "  (and process_* are there)" eval '[[ $(mval "$A0" process_resident_memory_bytes) != 0 ]]'
check "the fleet was read from PostgreSQL (genq_fleet_up 1)" expect 1 "$A0" genq_fleet_up
check "an empty fleet: nothing queued, nothing held" \
  eval 'expect 0 "$A0" genq_queue_jobs && expect 0 "$A0" genq_credits_held'

# ---- submissions with no worker: the API's counts and the queue -----------------
posts0=$(mval "$A0" genq_http_requests_total route=/v1/jobs method=POST code=202)
submit storyboard '{"prompt":"e2e metrics 1","scenes":2}' "e2e-metrics-$RUN"
SB=("$JOB")
submit storyboard '{"prompt":"e2e metrics 1","scenes":2}' "e2e-metrics-$RUN" # a replay
check "an idempotent replay answers the same job" eval '[[ $JOB == "${SB[0]}" ]]'
for i in 2 3; do
  submit storyboard "{\"prompt\":\"e2e metrics $i\",\"scenes\":2}"
  SB+=("$JOB")
done
IMG=()
for i in 1 2; do
  submit image "{\"prompt\":\"e2e metrics image $i\"}"
  IMG+=("$JOB")
done
check "5 jobs made" eval '((${#SB[@]} == 3 && ${#IMG[@]} == 2)) && [[ -n ${SB[2]} && -n ${IMG[1]} ]]'
for i in 1 2 3 4; do req GET "/v1/jobs/${SB[0]}" "$TOKEN"; done
req GET /v1/jobs/00000000-0000-7000-8000-000000000000 "$TOKEN"
check "a job nobody has is 404" status_is 404
req GET /v1/nowhere "$TOKEN"
fleet_settle
A1=$TMP/api1.prom
check "genq-api scrape after the submissions" scrape "$API/metrics" "$A1"
check "promtool check metrics: clean" promtool_ok "$A1"
check "genq_api_jobs_submitted_total: 3 storyboards and 2 images (the replay not counted)" \
  eval 'expect 3 "$A1" genq_api_jobs_submitted_total kind=storyboard &&
        expect 2 "$A1" genq_api_jobs_submitted_total kind=image &&
        expect 0 "$A1" genq_api_jobs_submitted_total kind=video'
check "POST /v1/jobs answered 202 six more times (the replay counted)" \
  expect $((posts0 + 6)) "$A1" genq_http_requests_total route=/v1/jobs method=POST code=202
check "4 polls and a 404 under the route template /v1/jobs/{id}" \
  eval 'expect 4 "$A1" genq_http_requests_total "route=/v1/jobs/{id}" method=GET code=200 &&
        expect 1 "$A1" genq_http_requests_total "route=/v1/jobs/{id}" method=GET code=404'
check "an unknown path counts under route=unmatched" \
  eval '[[ $(mval "$A1" genq_http_requests_total route=unmatched code=404) -ge 1 ]]'
check "no job id appears in the metrics (bounded labels)" \
  eval '! grep -qE "${SB[0]}|${SB[1]}|00000000-0000-7000" "$A1"'
check "the poll latency histogram counted them" \
  eval 'expect 5 "$A1" genq_http_request_duration_seconds_count "route=/v1/jobs/{id}" method=GET'
check "fleet: 3 storyboards and 2 images ready, none waiting for a retry" \
  eval 'expect 3 "$A1" genq_queue_jobs kind=storyboard state=ready &&
        expect 2 "$A1" genq_queue_jobs kind=image state=ready &&
        expect 0 "$A1" genq_queue_jobs state=retry_waiting'
check "fleet: genq_jobs queued 5, running 0" \
  eval 'expect 5 "$A1" genq_jobs state=queued && expect 0 "$A1" genq_jobs state=running'
check "fleet: the oldest ready storyboard has waited over a second" \
  eval 'awk "BEGIN{exit !($(mval "$A1" genq_queue_oldest_age_seconds kind=storyboard) >= 1)}"'
check "fleet: credits held 7 (3 x 1 + 2 x 2)" expect 7 "$A1" genq_credits_held
check "every histogram of genq-api's scrape is cumulative up to +Inf" histograms_cumulative "$A1"

# ---- a scrape storm: one fleet read a second at most ---------------------------
# 2.5 s of scrapes, 10 at a time every 0.1 s, starting with the values stale
fleet_settle
reads0=$(mval "$A1" genq_fleet_reads_total)
t0=$(date +%s%N)
: >"$TMP/storm"
while (($(date +%s%N) - t0 < 2500000000)); do
  seq 10 | xargs -P 10 -I{} curl -sS --max-time 10 -o /dev/null -w '%{http_code}\n' "$API/metrics" >>"$TMP/storm"
  sleep 0.1
done
t1=$(date +%s%N)
A2=$TMP/api2.prom
scrape "$API/metrics" "$A2"
reads=$(($(mval "$A2" genq_fleet_reads_total) - reads0))
storm_ms=$(((t1 - t0) / 1000000))
scrapes=$(wc -l <"$TMP/storm")
check "$scrapes scrapes in $storm_ms ms all answered 200" \
  eval '((scrapes >= 50)) && [[ $(grep -c "^200$" "$TMP/storm") == "$scrapes" ]]'
check "... and read the fleet $reads times: at least once, at most once a second" \
  eval '((reads >= 1 && reads <= storm_ms / 1000 + 3))'

# ---- a worker runs them ---------------------------------------------------------
MPORT=""
genq_free_port MPORT
WURL=http://127.0.0.1:$MPORT/metrics
start_worker worker1 "GENQ_METRICS_LISTEN=127.0.0.1:$MPORT" GENQ_LUMA_MAX_IN_FLIGHT=2 \
  GENQ_BREAKER_FAILURES=5 -- --concurrency 8
W1=$WPID
check "the worker logs where its metrics listen" grep -q '"metrics listening"' "$STATE/logs/worker1.log"
for id in "${SB[@]}" "${IMG[@]}"; do poll_job "$TOKEN" "$id"; done
all_succeeded() {
  local id
  for id in "$@"; do job_status_is "$id" succeeded || return 1; done
}
check "the 5 jobs succeeded" all_succeeded "${SB[@]}" "${IMG[@]}"
W0=$TMP/w0.prom
check "the worker answers GET /metrics: 200, text/plain; version=0.0.4" scrape "$WURL" "$W0"
check "promtool check metrics: the worker's scrape after real jobs is clean" promtool_ok "$W0"
check "every histogram of the worker's scrape is cumulative up to +Inf (and there are some)" \
  histograms_cumulative "$W0" 1
check "claims: 3 storyboards, 2 images, no reclaim" \
  eval 'expect 3 "$W0" genq_worker_jobs_claimed_total kind=storyboard &&
        expect 2 "$W0" genq_worker_jobs_claimed_total kind=image &&
        expect 0 "$W0" genq_worker_reclaims_total'
check "runs ended: 3 + 2 succeeded, nothing else" \
  eval 'expect 3 "$W0" genq_worker_jobs_finished_total kind=storyboard outcome=succeeded &&
        expect 2 "$W0" genq_worker_jobs_finished_total kind=image outcome=succeeded &&
        expect 5 "$W0" genq_worker_jobs_finished_total'
check "run durations: 3 storyboard and 2 image observations" \
  eval 'expect 3 "$W0" genq_worker_job_duration_seconds_count kind=storyboard outcome=succeeded &&
        expect 2 "$W0" genq_worker_job_duration_seconds_count kind=image outcome=succeeded'
check "steps: 3 storyboard and 2 image steps succeeded, with their durations" \
  eval 'expect 3 "$W0" genq_worker_steps_total step_kind=storyboard outcome=succeeded &&
        expect 2 "$W0" genq_worker_step_duration_seconds_count step_kind=image outcome=succeeded &&
        awk "BEGIN{exit !($(mval "$W0" genq_worker_step_duration_seconds_sum step_kind=image) >= 0.3)}"'
check "credits captured: 3 for the storyboards, 4 for the images" \
  eval 'expect 3 "$W0" genq_worker_credits_captured_total kind=storyboard &&
        expect 4 "$W0" genq_worker_credits_captured_total kind=image'
check "OpenAI answered 200 three times; Luma answered (creates and polls) at least 4 times" \
  eval 'expect 3 "$W0" genq_worker_provider_requests_total provider=openai code=200 &&
        (($(mval "$W0" genq_worker_provider_requests_total provider=luma) >= 4)) &&
        (($(mval "$W0" genq_worker_provider_request_duration_seconds_count provider=openai) == 3))'
check "nothing in flight now, concurrency 8" \
  eval 'expect 0 "$W0" genq_worker_jobs_in_flight && expect 8 "$W0" genq_worker_concurrency'
check "the worker says who it is and that it runs" \
  eval 'grep -q "^genq_worker_info{worker_id=\"[^\"]*:[0-9]*:" "$W0" &&
        expect 1 "$W0" genq_worker_state state=running'
check "provider limits from Redis: Luma's max 2 (genq_provider_state_up 1)" \
  eval 'expect 1 "$W0" genq_provider_state_up && expect 2 "$W0" genq_provider_max_in_flight provider=luma'
fleet_settle
A3=$TMP/api3.prom
scrape "$API/metrics" "$A3"
check "fleet: nothing queued or running, nothing held" \
  eval 'expect 0 "$A3" genq_jobs && expect 0 "$A3" genq_credits_held'

# ---- a provider error ------------------------------------------------------------
submit storyboard '{"prompt":"e2e metrics provsim:error500","scenes":2}'
BAD=$JOB
poll_job "$TOKEN" "$BAD"
check "the storyboard whose OpenAI call fails ends failed" job_status_is "$BAD" failed
sleep 0.5
W1P=$TMP/w1.prom
scrape "$WURL" "$W1P"
check "OpenAI's 500s counted (one per attempt, at least 2)" \
  eval '(($(mval "$W1P" genq_worker_provider_requests_total provider=openai code=500) >= 2))'
check "its first run ended retry, its second dead" \
  eval 'expect 1 "$W1P" genq_worker_jobs_finished_total kind=storyboard outcome=retry &&
        expect 1 "$W1P" genq_worker_jobs_finished_total kind=storyboard outcome=dead'
check "its steps ended failed twice" \
  expect 2 "$W1P" genq_worker_steps_total step_kind=storyboard outcome=failed
fleet_settle
A4=$TMP/api4.prom
scrape "$API/metrics" "$A4"
check "fleet: the dead-letter set holds that storyboard" \
  eval 'expect 1 "$A4" genq_dead_jobs kind=storyboard && expect 1 "$A4" genq_dead_jobs'

# ---- in flight: a video at Luma ---------------------------------------------------
submit video '{"prompt":"e2e metrics video","duration":"5s"}'
VID=$JOB
at_luma() { req GET "/v1/jobs/$VID" "$TOKEN" && jqt '.status == "running" and (.steps[0].provider_ref // "") != ""'; }
check "the video's generation is at Luma" wait_for 15 at_luma
fleet_settle # both caches are stale now: the next scrapes read Redis and PostgreSQL
W2=$TMP/w2.prom
A5=$TMP/api5.prom
scrape "$WURL" "$W2"
scrape "$API/metrics" "$A5"
check "the worker's in-flight gauge is 1, its Luma slot held" \
  eval 'expect 1 "$W2" genq_worker_jobs_in_flight &&
        expect 1 "$W2" genq_worker_provider_slots_held provider=luma'
check "Redis: one of Luma's 2 slots in use" eval 'expect 1 "$W2" genq_provider_slots_in_use provider=luma'
check "fleet: the video runs" expect 1 "$A5" genq_jobs kind=video state=running
poll_job "$TOKEN" "$VID"
check "the video succeeded" job_status_is "$VID" succeeded
sleep 1.1
W3=$TMP/w3.prom
scrape "$WURL" "$W3"
check "then nothing in flight, no slot held or in use" \
  eval 'expect 0 "$W3" genq_worker_jobs_in_flight && expect 0 "$W3" genq_worker_provider_slots_held &&
        expect 0 "$W3" genq_provider_slots_in_use provider=luma'
check "the video's step and its 10 credits counted" \
  eval 'expect 1 "$W3" genq_worker_steps_total step_kind=video outcome=succeeded &&
        expect 10 "$W3" genq_worker_credits_captured_total kind=video'

# ---- the breaker, and a job waiting for its slot before its claim ----------------------
"$GENQCTL" providers open luma >/dev/null
submit image '{"prompt":"e2e metrics image while the breaker is open"}'
HELD=$JOB
W4=$TMP/w4.prom
# (the provider state is up to a second old: both show within the wait)
waiting_for_slot() {
  scrape "$WURL" "$W4" && expect 1 "$W4" genq_worker_jobs_waiting_slot provider=luma &&
    expect 1 "$W4" genq_provider_breaker_state provider=luma state=forced_open
}
check "genqctl providers open luma: a new image job waits for its Luma slot before its claim" \
  wait_for 10 waiting_for_slot
check "... genq_provider_breaker_state says forced_open (and OpenAI's closed)" \
  eval 'expect 1 "$W4" genq_provider_breaker_state provider=luma state=forced_open &&
        expect 0 "$W4" genq_provider_breaker_state provider=luma state=closed &&
        expect 1 "$W4" genq_provider_breaker_state provider=openai state=closed'
check "... it is in flight at the worker, not claimed" \
  eval 'expect 1 "$W4" genq_worker_jobs_in_flight && expect 2 "$W4" genq_worker_jobs_claimed_total kind=image'
fleet_settle
A6=$TMP/api6.prom
scrape "$API/metrics" "$A6"
check "... and queued for the fleet" expect 1 "$A6" genq_queue_jobs kind=image state=ready
"$GENQCTL" providers close luma >/dev/null
poll_job "$TOKEN" "$HELD"
check "genqctl providers close luma: the image job is claimed and succeeds" job_status_is "$HELD" succeeded
sleep 1.1
W5=$TMP/w5.prom
scrape "$WURL" "$W5"
check "... the breaker closed again, nothing waits" \
  eval 'expect 1 "$W5" genq_provider_breaker_state provider=luma state=closed &&
        expect 0 "$W5" genq_worker_jobs_waiting_slot && expect 3 "$W5" genq_worker_jobs_claimed_total kind=image'

# ---- the worker's server refuses the rest in genq's error shape -------------------------
code=$(curl -sS -o "$TMP/w404" -w '%{http_code}' "http://127.0.0.1:$MPORT/nowhere")
check "the worker's metrics server: another path is 404 in the error shape" \
  eval '[[ $code == 404 ]] && jq -e ".error.code == \"not_found\" and (.error.request_id | length > 0)" "$TMP/w404" >/dev/null'
code=$(curl -sS -o "$TMP/w405" -D "$TMP/w405.h" -w '%{http_code}' -X POST "$WURL")
check "... and POST /metrics is 405 with Allow: GET" \
  eval '[[ $code == 405 ]] && tr -d "\r" <"$TMP/w405.h" | grep -qix "allow: GET" &&
        jq -e ".error.code == \"method_not_allowed\"" "$TMP/w405" >/dev/null'

# ---- PostgreSQL away, Redis away ------------------------------------------------------
DEAD_PORT="" API2_PORT="" M2PORT=""
genq_free_port DEAD_PORT
genq_free_port API2_PORT
genq_free_port M2PORT
genq_start api-nodb "$STATE/logs/api-nodb.log" env \
  GENQ_DATABASE_URL="postgresql://postgres@127.0.0.1:$DEAD_PORT/genq" \
  GENQ_API_LISTEN="127.0.0.1:$API2_PORT" "$BIN/genq-api"
SERVICES+=("$GENQ_LAST_PID")
genq_wait_for "$GENQ_LAST_PID" 30 curl -fsS -o /dev/null "http://127.0.0.1:$API2_PORT/healthz"
t0=$(date +%s%N)
N0=$TMP/nodb.prom
scrape "http://127.0.0.1:$API2_PORT/metrics" "$N0"
nodb_rc=$?
t1=$(date +%s%N)
nodb_ms=$(((t1 - t0) / 1000000))
check "with PostgreSQL away genq-api still answers /metrics, in ${nodb_ms} ms (< 2500)" \
  eval '((nodb_rc == 0 && nodb_ms < 2500))'
check "... promtool clean, genq_fleet_up 0, a read error counted" \
  eval 'promtool_ok "$N0" && expect 0 "$N0" genq_fleet_up &&
        (($(mval "$N0" genq_fleet_read_errors_total) >= 1))'
start_worker worker-noredis GENQ_REDIS_URL="redis://127.0.0.1:$DEAD_PORT/0" \
  GENQ_METRICS_LISTEN="127.0.0.1:$M2PORT"
t0=$(date +%s%N)
R0=$TMP/noredis.prom
scrape "http://127.0.0.1:$M2PORT/metrics" "$R0"
nore_rc=$?
t1=$(date +%s%N)
nore_ms=$(((t1 - t0) / 1000000))
check "with Redis away a worker still answers /metrics, in ${nore_ms} ms (< 2500)" \
  eval '((nore_rc == 0 && nore_ms < 2500))'
check "... promtool clean, genq_provider_state_up 0" \
  eval 'promtool_ok "$R0" && expect 0 "$R0" genq_provider_state_up'

# ---- the dashboard uses only what genq exports -------------------------------------------
names_of "$A0" "$A1" "$A3" "$A4" "$A5" "$A6" "$W0" "$W1P" "$W2" "$W3" "$W4" "$W5" "$N0" "$R0" >"$TMP/exported"
jq -r '.. | objects | select(has("expr")) | .expr' "$DASHBOARD" |
  grep -oE '\b(genq|process)_[a-z0-9_]+' | sort -u >"$TMP/dashboard"
not_exported=$(comm -23 "$TMP/dashboard" "$TMP/exported" | tr '\n' ' ')
check "docs/grafana/genq.json is valid JSON with a Prometheus datasource" \
  jq -e '.panels | length > 10' "$DASHBOARD"
check "the dashboard queries $(wc -l <"$TMP/dashboard") metrics, every one exported (missing: ${not_exported:-none})" \
  eval '[[ -z $not_exported ]] && (($(wc -l <"$TMP/dashboard") >= 20))'
check "the dashboard has a quantile of the step durations and of the HTTP latency" \
  eval 'grep -q "histogram_quantile(0.95, sum by (le, step_kind) (rate(genq_worker_step_duration_seconds_bucket" <(jq -r ".. | .expr? // empty" "$DASHBOARD") &&
        grep -q "genq_http_request_duration_seconds_bucket" <(jq -r ".. | .expr? // empty" "$DASHBOARD")'

cp "$TMP"/*.prom "$STATE/logs/" 2>/dev/null # kept with the logs when something failed
mini_stack_stop
finish
