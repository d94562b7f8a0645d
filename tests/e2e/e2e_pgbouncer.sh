#!/usr/bin/env bash
# End to end: genq scaled out on PgBouncer (SPEC §12, docs/scaling.md). A
# mini stack of its own (mini_stack.bash, Redis db 8) whose every process —
# genqctl migrate included — reaches PostgreSQL only through Debian's
# pgbouncer in pool_mode = transaction, with fewer server connections than
# genq opens: two genq-api processes and three genq-workers.
#
# - every job kind succeeds (storyboard, image, video, lipsync, campaign),
#   submitted to both API processes, each paid generation created once;
# - the two API processes share a plan's submission bucket (burst 3: of 8
#   concurrent submissions to both, exactly 3 are accepted);
# - the same Idempotency-Key on both makes one job (the second a replay);
# - an event stream on API 2 follows a job submitted on API 1 to succeeded;
# - PgBouncer multiplexed: 20 client connections on at most the pool's 6
#   server connections, every transaction of the run through it;
# - genqctl audit is clean; every process exits 0 on SIGTERM.
#
# Needs what mini_stack.bash needs (scripts/test sets it) and pgbouncer
# (scripts/lib.sh installs it).
# shellcheck disable=SC2016,SC2034,SC2119 # $names in single quotes: jq's, or eval's; mini_stack_stop takes no script argument
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
[[ -x $PGBOUNCER ]] || {
  echo "e2e_pgbouncer: $PGBOUNCER is missing (apt-get install pgbouncer)" >&2
  exit 1
}
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" pgbouncer 8

# Short provider durations unless scripts/test set them.
export PROVSIM_LUMA_VIDEO_MS=${PROVSIM_LUMA_VIDEO_MS:-1500} PROVSIM_LUMA_IMAGE_MS=${PROVSIM_LUMA_IMAGE_MS:-800}
export PROVSIM_HEDRA_MS=${PROVSIM_HEDRA_MS:-1500} PROVSIM_OPENAI_LATENCY_MS=${PROVSIM_OPENAI_LATENCY_MS:-300}
export GENQ_POLL_INTERVAL_MS=${GENQ_POLL_INTERVAL_MS:-200} GENQ_POLL_MAX_INTERVAL_MS=${GENQ_POLL_MAX_INTERVAL_MS:-1000}
export GENQ_LEASE_SECONDS=${GENQ_LEASE_SECONDS:-5}

# ---- PgBouncer in front of the stack's PostgreSQL ---------------------------
# pgbouncer refuses to run as root: as root it runs as postgres, from a folder
# postgres can read (the mini stack's state folder is private).
PGB_DIR=$(mktemp -d /tmp/genq-pgb-XXXXXX)
PGB_PORT=""
genq_free_port PGB_PORT
PG_HOSTPORT=${PG_SERVER#*://}
PG_HOSTPORT=${PG_HOSTPORT#*@}
PG_HOST=${PG_HOSTPORT%:*} PG_PORT=${PG_HOSTPORT##*:}
PGB_POOL=6
cat >"$PGB_DIR/pgbouncer.ini" <<EOF
[databases]
$DB = host=$PG_HOST port=$PG_PORT dbname=$DB
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGB_DIR/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = $PGB_POOL
max_client_conn = 200
server_reset_query =
ignore_startup_parameters = extra_float_digits
EOF
echo '"postgres" ""' >"$PGB_DIR/userlist.txt"
AS=()
if [[ $(id -u) -eq 0 ]]; then
  chown -R postgres:postgres "$PGB_DIR"
  AS=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
pgb_after_stop() {
  mini_stack_after_stop "$1"
  if [[ ${GENQ_TEST_KEEP:-} == 1 ]] || (($1 != 0 || FAILED > 0)); then
    cp "$PGB_DIR/pgbouncer.ini" "$STATE/logs/" 2>/dev/null || true
  fi
  rm -rf "$PGB_DIR"
}
genq_trap_cleanup pgb_after_stop
genq_start pgbouncer "$STATE/logs/pgbouncer.log" "${AS[@]}" "$PGBOUNCER" "$PGB_DIR/pgbouncer.ini"
PGB_PID=$GENQ_LAST_PID
genq_wait_for "$PGB_PID" 20 genq_port_in_use "$PGB_PORT"
pgb_admin() { psql "postgresql://postgres@127.0.0.1:$PGB_PORT/pgbouncer" -X -q -At -F '|' -c "$1"; }
# pgb_sum SHOW COLUMN...: the sum of those columns over the rows of our
# database in the admin console's SHOW (columns by name: they vary by version)
pgb_sum() {
  local what=$1
  shift
  psql "postgresql://postgres@127.0.0.1:$PGB_PORT/pgbouncer" -X -q -A -F '|' -P footer=off -c "show $what" |
    awk -F'|' -v db="$DB" -v cols="$*" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; n = split(cols, want, " "); next }
      $c["database"] == db { for (j = 1; j <= n; j++) if (want[j] in c) s += $c[want[j]] }
      END { print s + 0 }'
}
check "pgbouncer $("$PGBOUNCER" --version 2>/dev/null | head -1 | awk '{print $2}') runs in transaction mode" \
  eval '[ "$(pgb_admin "show config" | awk -F"|" "\$1 == \"pool_mode\" {print \$2}")" = transaction ]'

# Everything of genq through PgBouncer from here on, genqctl migrate included.
DIRECT_URL=$GENQ_DATABASE_URL
export GENQ_DATABASE_URL=postgresql://postgres@127.0.0.1:$PGB_PORT/$DB
mini_stack_start
check "genqctl migrate ran through PgBouncer (transaction mode)" \
  eval '[ "$(psql "$DIRECT_URL" -X -At -c "select count(*) > 10 from schema_migrations")" = t ]'
API2_PORT=""
genq_free_port API2_PORT
API2=http://127.0.0.1:$API2_PORT
genq_start api2 "$STATE/logs/api2.log" env GENQ_API_LISTEN="127.0.0.1:$API2_PORT" \
  GENQ_PUBLIC_URL="$API2" "$BIN/genq-api"
SERVICES+=("$GENQ_LAST_PID")
genq_wait_for "$GENQ_LAST_PID" 30 curl -fsS -o /dev/null "$API2/healthz"
for w in 1 2 3; do start_worker "worker$w" -- --concurrency 16; done

API1=$API
use_api() { API=$1; } # req (helpers.bash) sends to $API

mini_stack_user 400
T=$TOKEN
USER2=e2e-pgb-other-$RUN
T2=$("$GENQCTL" token --user "$USER2" | tr -d '[:space:]')

# ---- every job kind, on both API processes ----------------------------------
base64 -d >"$TMP/avatar.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
{
  printf 'RIFF\x64\x1f\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00data\x40\x1f\x00\x00'
  head -c 8000 /dev/zero | tr '\0' '\200'
} >"$TMP/voice.wav"
upload() { # FILE TYPE → prints the upload's id (empty on failure)
  curl -sS --max-time 10 -H "Authorization: Bearer $T" -H "Content-Type: $2" \
    --data-binary "@$1" "$API/v1/uploads" | jq -r '.id // empty'
}
declare -A JOBS JOBTOK # id -> kind, id -> its owner's token
submit() {             # API KIND INPUT-JSON: a job (a check), recorded in JOBS
  use_api "$1"
  req POST /v1/jobs "$T" "$(jq -nc --arg k "$2" --argjson i "$3" '{kind:$k,input:$i}')"
  local id
  id=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
  check "$2 job accepted on $( [[ $1 == "$API1" ]] && echo "API 1" || echo "API 2")" \
    eval 'status_is 202 && [ -n "$id" ]'
  [[ -n $id ]] && JOBS[$id]=$2 JOBTOK[$id]=$T
}
use_api "$API2"
A1=$(upload "$TMP/avatar.png" image/png) V1=$(upload "$TMP/voice.wav" audio/wav)
use_api "$API1"
A2=$(upload "$TMP/avatar.png" image/png) V2=$(upload "$TMP/voice.wav" audio/wav)
check "uploads through both API processes" eval '[ -n "$A1" ] && [ -n "$V1" ] && [ -n "$A2" ] && [ -n "$V2" ]'
P="scale-out $RUN"
submit "$API1" storyboard '{"prompt":"a storyboard '"$P"'","scenes":2}'
submit "$API2" image '{"prompt":"an image '"$P"'","aspect_ratio":"1:1"}'
submit "$API1" video '{"prompt":"a video '"$P"'","duration":"5s"}'
submit "$API2" lipsync "$(jq -nc --arg a "$A1" --arg v "$V1" '{image_upload_id:$a,audio_upload_id:$v}')"
submit "$API1" campaign "$(jq -nc --arg p "a campaign $P" --arg a "$A2" --arg v "$V2" \
  '{prompt:$p,scenes:2,avatar_upload_id:$a,voice_upload_id:$v}')"
for i in 1 2 3 4 5 6; do # more load on the pool: storyboards and images
  submit "$API2" storyboard '{"prompt":"storyboard '"$i $P"'","scenes":1}'
  submit "$API1" image '{"prompt":"image '"$i $P"'","aspect_ratio":"16:9"}'
done

# ---- SSE fan-out: a stream on API 2 follows a job submitted on API 1 -----------
use_api "$API1"
req POST /v1/jobs "$T" '{"kind":"video","input":{"prompt":"the streamed video '"$P"'","duration":"5s"}}'
SSE_JOB=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
check "a video job submitted on API 1" eval 'status_is 202 && [ -n "$SSE_JOB" ]'
[[ -n $SSE_JOB ]] && JOBS[$SSE_JOB]=video JOBTOK[$SSE_JOB]=$T
curl -sS -N --max-time 60 -H "Authorization: Bearer $T" -o "$TMP/sse.body" -D "$TMP/sse.headers" \
  -w '%{http_code}' "$API2/v1/jobs/$SSE_JOB/events" >"$TMP/sse.status" 2>/dev/null &
SSE_PID=$!

# ---- a plan's submission bucket, shared by both API processes ------------------
check "a plan of burst 3 and 1 submission a minute" \
  eval '"$GENQCTL" limits set e2e_pgb_rate max_unfinished_jobs 0 >/dev/null &&
        "$GENQCTL" limits set e2e_pgb_rate submit_burst 3 >/dev/null &&
        "$GENQCTL" limits set e2e_pgb_rate submit_per_minute 1 >/dev/null'
RATE_USER=e2e-pgb-rate-$RUN
"$GENQCTL" credits grant "$RATE_USER" 50 --key "e2e:$RATE_USER" >/dev/null
"$GENQCTL" limits plan "$RATE_USER" e2e_pgb_rate >/dev/null
RT=$("$GENQCTL" token --user "$RATE_USER" | tr -d '[:space:]')
pids=()
for ((i = 0; i < 8; i++)); do
  base=$API1
  ((i % 2)) && base=$API2
  curl -sS --max-time 20 -w '%{http_code}' -X POST -H "Authorization: Bearer $RT" \
    -H 'Content-Type: application/json' --data-binary '{"kind":"storyboard","input":{"prompt":"rate '"$i $P"'","scenes":1}}' \
    -o "$TMP/rate.$i.body" "$base/v1/jobs" >"$TMP/rate.$i" 2>/dev/null &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
n202=0 n429=0
for ((i = 0; i < 8; i++)); do
  case $(cat "$TMP/rate.$i") in
  202)
    n202=$((n202 + 1))
    id=$(jq -r '.id // empty' "$TMP/rate.$i.body")
    [[ -n $id ]] && JOBS[$id]=storyboard JOBTOK[$id]=$RT
    ;;
  429) n429=$((n429 + 1)) ;;
  esac
done
check "of 8 concurrent submissions to both API processes exactly 3 are 202 ($n202), 5 are 429 ($n429)" \
  eval '[ "$n202" = 3 ] && [ "$n429" = 5 ]'
check "... and 3 jobs were written" \
  eval '[ "$(psql_db -c "select count(*) from jobs where user_id = '\''$RATE_USER'\''")" = 3 ]'

# ---- Idempotency-Key: the same key on both API processes is one job --------------
"$GENQCTL" credits grant "$USER2" 20 --key "e2e:$USER2" >/dev/null
KEY=pgb-$RUN
REQ_HEADERS=(-H "Idempotency-Key: $KEY")
use_api "$API1"
req POST /v1/jobs "$T2" '{"kind":"storyboard","input":{"prompt":"once '"$P"'","scenes":1}}'
ID1=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
check "submit with an Idempotency-Key on API 1 is 202" eval 'status_is 202 && [ -n "$ID1" ]'
use_api "$API2"
req POST /v1/jobs "$T2" '{"kind":"storyboard","input":{"prompt":"once '"$P"'","scenes":1}}'
check "the same key on API 2 replays that job (Idempotent-Replayed: true)" \
  eval 'status_is 202 && jqt ".id == \$j" --arg j "$ID1" && header_is Idempotent-Replayed true'
REQ_HEADERS=()
check "... one job for the key" \
  eval '[ "$(psql_db -c "select count(*) from jobs where user_id = '\''$USER2'\''")" = 1 ]'
[[ -n $ID1 ]] && JOBS[$ID1]=storyboard JOBTOK[$ID1]=$T2

# ---- every job ends succeeded ----------------------------------------------------
all_done() {
  local i ids
  ids=$(printf "'%s'," "${!JOBS[@]}")
  for ((i = 0; i < 600; i++)); do
    [[ $(psql_db -c "select count(*) from jobs where id in (${ids%,}) and status not in ('succeeded','failed','canceled')") == 0 ]] && return 0
    sleep 0.2
  done
  return 1
}
check "every job finished (${#JOBS[@]} jobs)" all_done
use_api "$API1"
for id in "${!JOBS[@]}"; do
  req GET "/v1/jobs/$id" "${JOBTOK[$id]}"
  check "${JOBS[$id]} job $id succeeded, its price captured" \
    jqt '.status == "succeeded" and .cost.captured == .cost.price and .cost.held == 0'
done
check "each paid generation created once at Luma (7 images, 2 videos, the campaign's 2 clips)" \
  eval '[ "$(sim_stats | jq "[.luma.creates_by_prompt // {} | .[]] | (length == 11 and all(. == 1))")" = true ]'
check "... and at Hedra (2 lip-syncs)" \
  eval '[ "$(sim_stats | jq "[.hedra.creates_by_idempotency_key // {} | to_entries[] | .value] | (length == 2 and all(. == 1))")" = true ]'

wait "$SSE_PID" 2>/dev/null
api_record GET "/v1/jobs/$SSE_JOB/events" "$TMP/sse.headers" "$TMP/sse.body"
check "the stream on API 2 answered 200 and ended" [ "$(cat "$TMP/sse.status")" = 200 ]
sse_jobs() { sed -n 's/^data: //p' "$TMP/sse.body" | jq -s -e "$1" >/dev/null 2>&1; }
check "... it followed the job from API 1 to succeeded" \
  sse_jobs 'length >= 2 and all(.[]; .id == "'"$SSE_JOB"'") and .[-1].status == "succeeded" and (.[0].status | IN("queued","running"))'

# ---- PgBouncer did the pooling -------------------------------------------------------
CLIENTS=$(pgb_sum pools cl_active cl_waiting)
SERVERS_MAX=$(pgb_sum pools sv_active sv_idle sv_used sv_tested sv_login)
XACTS=$(pgb_sum stats total_xact_count)
echo "       pgbouncer: $CLIENTS client connections, $SERVERS_MAX server connections, $XACTS transactions"
check "genq's connections go through PgBouncer: at least 20 clients ($CLIENTS)" [ "${CLIENTS:-0}" -ge 20 ]
check "... on at most $PGB_POOL server connections ($SERVERS_MAX)" [ "${SERVERS_MAX:-99}" -le "$PGB_POOL" ]
check "... carrying the run's transactions ($XACTS)" [ "${XACTS:-0}" -gt 100 ]
check "PostgreSQL saw no more than the pool from PgBouncer" \
  eval '[ "$(psql "$DIRECT_URL" -X -At -c "select count(*) from pg_stat_activity where datname = '\''$DB'\'' and backend_type = '\''client backend'\''")" -le $((PGB_POOL + 1)) ]'
check "pgbouncer logged no protocol errors" \
  eval '! grep -qiE "prepared statement|protocol error|unsupported|server conn crashed" "$STATE/logs/pgbouncer.log"'

check "the books are clean (genqctl audit, through PgBouncer)" eval '"$GENQCTL" audit >/dev/null'
mini_stack_stop
finish
