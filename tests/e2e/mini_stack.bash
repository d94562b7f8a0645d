# Shared by the tests/e2e/*.sh scripts that run a mini stack of their own
# (sourced, not run): `. mini_stack.bash NAME REDIS_DB` configures one on the
# stack's PostgreSQL and Redis servers, with a new database
# genq_NAME_<run>, Redis db REDIS_DB, its own genq-provsim and genq-api on
# free loopback ports and a state folder /tmp/genq-NAME-*; it sources
# scripts/lib.sh and helpers.bash and installs the exit trap that stops
# every process started (by pid) and drops the database and Redis db, or
# keeps them with the logs when something failed or GENQ_TEST_KEEP=1.
# The script then exports its own settings (PROVSIM_*, GENQ_*) and calls
# mini_stack_start.
#
# Needs GENQ_BUILD_DIR (genq-api, genq-worker, genq-provsim, genqctl), the
# stack's GENQ_DATABASE_URL and GENQ_REDIS_URL (their servers are reused),
# CLERK_* and GENQ_DEV_JWT_PRIVATE_KEY for tokens; scripts/test sets them.
# GENQCTL defaults to $GENQ_BUILD_DIR/genqctl.
# shellcheck shell=bash disable=SC2034
MINI_NAME=$1 MINI_REDIS_DB=$2
MINI_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${GENQ_BUILD_DIR:?GENQ_BUILD_DIR must be set}" "${GENQ_DATABASE_URL:?}" "${GENQ_REDIS_URL:?}"
BIN=$GENQ_BUILD_DIR
export GENQCTL=${GENQCTL:-$BIN/genqctl}
for b in genq-api genq-worker genq-provsim genqctl; do
  [[ -x $BIN/$b ]] || {
    echo "e2e_$MINI_NAME: $BIN/$b is missing (build first)" >&2
    exit 1
  }
done

# shellcheck source=scripts/lib.sh
. "$MINI_HERE/../../scripts/lib.sh"

# ---- the mini stack's configuration ----------------------------------------
STATE=$(mktemp -d "/tmp/genq-$MINI_NAME-XXXXXX")
mkdir -p "$STATE"/{logs,storage}
SIM_PORT="" API_PORT=""
genq_free_port SIM_PORT
genq_free_port API_PORT
RUN=$$-$RANDOM
DB=genq_${MINI_NAME}_${RUN//-/_}
PG_SERVER=${GENQ_DATABASE_URL%%\?*}
PG_SERVER=${PG_SERVER%/*}
export GENQ_DATABASE_URL=$PG_SERVER/$DB
export GENQ_REDIS_URL
GENQ_REDIS_URL=$(sed -E "s#^(rediss?://[^/]+)(/[0-9]*)?\$#\\1/$MINI_REDIS_DB#" <<<"$GENQ_REDIS_URL")
SIM=http://127.0.0.1:$SIM_PORT
export GENQ_API_LISTEN=127.0.0.1:$API_PORT GENQ_PROVSIM_LISTEN=127.0.0.1:$SIM_PORT
export GENQ_STORAGE=file://$STATE/storage
export OPENAI_BASE_URL=$SIM/openai/v1 LUMA_BASE_URL=$SIM/luma/dream-machine/v1 HEDRA_BASE_URL=$SIM/hedra/v3
export OPENAI_API_KEY=sk-genq-provsim LUMA_API_KEY=luma-genq-provsim HEDRA_API_KEY=hedra-genq-provsim
export GENQ_LOG_LEVEL=info
export GENQ_API_URL=http://127.0.0.1:$API_PORT
# URLs genq hands out (to providers, to clients) name this API, not the
# stack's; GENQ_URL_SIGNING_KEY, when the stack has one, is shared as is.
export GENQ_PUBLIC_URL=$GENQ_API_URL

# shellcheck source=tests/e2e/helpers.bash
. "$MINI_HERE/helpers.bash"

psql_db() { psql "$GENQ_DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
rcli() { redis-cli -u "$GENQ_REDIS_URL" "$@"; }

# At exit: every process still running is stopped (genq_trap_cleanup), the
# database and Redis db are dropped, the logs are kept when something failed.
mini_stack_after_stop() {
  local rc=$1
  genq_archive_logs "$STATE/logs" "$MINI_NAME"
  if [[ ${GENQ_TEST_KEEP:-} == 1 ]] || ((rc != 0 || FAILED > 0)); then
    echo "       mini stack logs kept in $STATE/logs (database $DB)" >&2
  else
    rcli flushdb >/dev/null 2>&1 || true
    psql "$PG_SERVER/postgres" -X -q -c "drop database if exists \"$DB\"" >/dev/null 2>&1 || true
    rm -rf "$STATE"
  fi
  rm -rf "$TMP"
}
genq_trap_cleanup mini_stack_after_stop

# ---- start the mini stack ----------------------------------------------------
# mini_stack_start: creates and migrates the database, empties the Redis db,
# starts genq-provsim and genq-api (SERVICES: every pid started, for the
# checks at the end).
SERVICES=()
mini_stack_start() {
  psql "$PG_SERVER/postgres" -X -q -v ON_ERROR_STOP=1 -c "create database \"$DB\"" >/dev/null ||
    genq_die "cannot create database $DB"
  "$GENQCTL" migrate >"$STATE/logs/migrate.log" 2>&1 || {
    cat "$STATE/logs/migrate.log" >&2
    genq_die "genqctl migrate on $DB failed"
  }
  rcli flushdb >/dev/null || genq_die "cannot reach Redis db $MINI_REDIS_DB"

  genq_start provsim "$STATE/logs/provsim.log" "$BIN/genq-provsim"
  SERVICES+=("$GENQ_LAST_PID")
  genq_wait_for "$GENQ_LAST_PID" 30 curl -fsS -o /dev/null "$SIM/healthz"
  genq_start api "$STATE/logs/api.log" "$BIN/genq-api"
  SERVICES+=("$GENQ_LAST_PID")
  genq_wait_for "$GENQ_LAST_PID" 30 curl -fsS -o /dev/null "$API/healthz"
}

# start_worker NAME [VAR=VALUE...] [-- ARG...]: a worker of the mini stack,
# with those variables and arguments; sets WPID once it logged its start.
WPID=""
start_worker() {
  local name=$1 vars=()
  shift
  while (($#)) && [[ $1 != -- ]]; do
    vars+=("$1")
    shift
  done
  (($#)) && shift
  genq_start "$name" "$STATE/logs/$name.log" env "${vars[@]}" "$BIN/genq-worker" "$@"
  WPID=$GENQ_LAST_PID
  SERVICES+=("$WPID")
  genq_wait_for "$WPID" 30 grep -q '"worker started"' "$STATE/logs/$name.log"
}

# mini_stack_user CREDITS: a user of its own (USER_ID), granted CREDITS (a
# check), and a token for it (TOKEN).
USER_ID="" TOKEN=""
mini_stack_user() {
  USER_ID=e2e-$MINI_NAME-$RUN
  check "genqctl grants the user $1 credits" "$GENQCTL" credits grant "$USER_ID" "$1" --key "e2e:$USER_ID"
  TOKEN=$("$GENQCTL" token --user "$USER_ID" | tr -d '[:space:]')
}

sim_stats() { curl -sS --max-time 5 "$SIM/_sim/stats"; }
# sim_count PROVIDER NAME [KEY]: a counter, or a map's count for KEY (0 if none)
sim_count() {
  if (($# == 3)); then
    sim_stats | jq -r --arg p "$1" --arg m "$2" --arg k "$3" '.[$p][$m][$k] // 0'
  else
    sim_stats | jq -r --arg p "$1" --arg m "$2" '.[$p][$m] // 0'
  fi
}

# ---- the end -------------------------------------------------------------------
# no_sanitizer_report PID: the started pid's log holds no sanitizer report.
no_sanitizer_report() { ! grep -qE "AddressSanitizer|runtime error|LeakSanitizer" "${GENQ_PID_LOG[$1]}"; }

# mini_stack_check_logs: for every service, a check that its log holds no
# sanitizer report (the services are left as they are).
mini_stack_check_logs() {
  local pid
  for pid in "${SERVICES[@]}"; do
    check "no sanitizer report in ${GENQ_PID_NAME[$pid]}'s log" no_sanitizer_report "$pid"
  done
}

# mini_stack_stop [PID...]: stops every service, newest first; then, for
# each, a check that it exited 0 on SIGTERM (unless it is one of the PIDs
# given: killed on purpose) and one that its log holds no sanitizer report.
mini_stack_stop() {
  local i pid name skip=" $* "
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    genq_stop_pid "${SERVICES[i]}"
  done
  for pid in "${SERVICES[@]}"; do
    name=${GENQ_PID_NAME[$pid]}
    if [[ $skip != *" $pid "* ]]; then
      check "$name exited 0 on SIGTERM" [ "${GENQ_PID_RC[$pid]}" == 0 ]
    fi
    check "no sanitizer report in $name's log" no_sanitizer_report "$pid"
  done
}
