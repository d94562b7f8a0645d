# shellcheck shell=bash
# Shared by scripts/run and scripts/test (sourced, never executed): package
# installation, building, free ports, Redis and PostgreSQL in a state folder,
# dev keys, the env file, and background processes that are stopped by pid.
#
# Contract: callers run under `set -euo pipefail`, call genq_trap_cleanup
# once, and start every long-lived process with genq_start so that the exit
# trap stops exactly those pids (newest first: workers before the databases
# they drain into) and nothing else. scripts/run's supervisor restarts a
# started pid in its place (genq_restart), keeps GENQ_PIDFILE listing what
# runs, and the next run stops what a killed one left (genq_reclaim).

GENQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GENQ_PG_BIN=/usr/lib/postgresql/15/bin

GENQ_DEB_PACKAGES=(build-essential cmake pkg-config libuv1-dev libhiredis-dev
  libcurl4-openssl-dev libcjson-dev libpq-dev libcmocka-dev libssl-dev
  node-llhttp redis-server postgresql postgresql-contrib curl jq openssl
  ca-certificates procps)
# scripts/fuzz's, and scripts/test's, which runs the fuzzers: libFuzzer
# comes with clang (its runtime in libclang-rt-14-dev).
# shellcheck disable=SC2034 # used by the scripts that source this file
GENQ_FUZZ_DEB_PACKAGES=(clang libclang-rt-14-dev)
# scripts/test's: tests/e2e/e2e_pgbouncer.sh runs genq through PgBouncer
# (Debian 12: 1.18; docs/scaling.md). Sentinel is redis-server's own mode.
# tests/e2e/e2e_admin_browser.sh drives the dashboard in Debian's headless
# Chromium (/usr/bin/chromium). prometheus ships promtool, which
# tests/e2e/e2e_metrics.sh checks every /metrics answer with (its daemon is
# never started: GENQ_NO_START_DEB_PACKAGES); docker-compose (1.29)
# validates docker-compose.yml without a Docker daemon
# (tests/e2e/e2e_compose.sh).
# shellcheck disable=SC2034 # used by the scripts that source this file
GENQ_TEST_DEB_PACKAGES=(pgbouncer chromium prometheus docker-compose)
# Packages whose install would start a system service genq has no use for
# (and whose postinst fails the install where that service cannot start,
# e.g. in a container): installed with services kept from starting.
GENQ_NO_START_DEB_PACKAGES=(prometheus)

GENQ_PIDS=()              # started pids, in start order
declare -A GENQ_PID_NAME  # pid -> service name
declare -A GENQ_PID_LOG   # pid -> log file
declare -A GENQ_PID_SIG   # pid -> stop signal (TERM unless told otherwise)
declare -A GENQ_PID_RC    # pid -> exit status once reaped
declare -A GENQ_PID_CMD   # pid -> its command, shell-quoted (genq_restart)
declare -A GENQ_PID_BORN  # pid -> its start time in /proc (see genq_proc_start)
declare -A GENQ_PID_UP    # pid -> $SECONDS when it was started
GENQ_STAT=()              # genq_proc_stat's answer
GENQ_PIDFILE=""           # when set, kept listing what runs: "NAME PID START" lines
GENQ_PORTS_TAKEN=" "      # ports handed out by genq_free_port in this run

genq_log() { printf '[genq %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
genq_die() {
  genq_log "ERROR: $*"
  exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
genq_as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    genq_die "need root (or sudo) to run: $*"
  fi
}

# Installs the Debian packages genq needs, and those given as arguments
# (e.g. "${GENQ_FUZZ_DEB_PACKAGES[@]}"); does nothing (and touches no
# network) when they are all installed already.
genq_install_deps() {
  local p missing=()
  for p in "${GENQ_DEB_PACKAGES[@]}" "$@"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != "install ok installed" ]]; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  genq_log "installing missing packages: ${missing[*]}"
  genq_as_root apt-get update
  local no_start=() rest=()
  for p in "${missing[@]}"; do
    if [[ " ${GENQ_NO_START_DEB_PACKAGES[*]} " == *" $p "* ]]; then
      no_start+=("$p")
    else
      rest+=("$p")
    fi
  done
  if ((${#rest[@]})); then
    genq_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${rest[@]}"
  fi
  if ((${#no_start[@]})); then
    genq_install_no_start "${no_start[@]}"
  fi
}

# genq_install_no_start PKG...: installs the packages without starting the
# services they ship. invoke-rc.d and deb-systemd-invoke ask
# /usr/sbin/policy-rc.d first; when the machine has none, one that refuses
# every start (exit 101) stands there for the install and goes after it. A
# machine's own policy-rc.d is left as it is. Nothing is stopped: what was
# never started needs no stopping.
genq_install_no_start() {
  local policy=/usr/sbin/policy-rc.d placed=0 rc=0
  if [[ ! -e $policy ]]; then
    genq_as_root sh -c "printf '#!/bin/sh\n# genq: no service starts while it installs packages\nexit 101\n' >$policy && chmod 755 $policy"
    placed=1
  fi
  genq_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" || rc=$?
  if ((placed)); then
    genq_as_root rm -f "$policy"
  fi
  return "$rc"
}

# True when something accepts connections on 127.0.0.1:$1, or ss lists a
# listener on it on any address.
genq_port_in_use() {
  local port=$1
  if command -v ss >/dev/null 2>&1 && [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]; then
    return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# genq_free_port VAR: sets VAR to a loopback port nobody listens on and that
# this run has not handed out yet (a variable, not stdout: the record of
# handed-out ports must survive, which a $(...) subshell would lose). There
# is a window before the caller binds it: callers wait for their server to
# answer and fail loudly if it does not.
genq_free_port() {
  # Odd local names: the nameref must not resolve to one of our own locals.
  local -n genq_fp_out=$1
  local genq_fp_port genq_fp_i genq_fp_lo=32768 genq_fp_span
  # Below the kernel's ephemeral range: an outgoing connection cannot take
  # the port between this check and the server's bind.
  read -r genq_fp_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((genq_fp_lo > 12000)) || genq_fp_lo=32768
  genq_fp_span=$((genq_fp_lo - 10000))
  for ((genq_fp_i = 0; genq_fp_i < 200; genq_fp_i++)); do
    genq_fp_port=$((10000 + (RANDOM * 32768 + RANDOM) % genq_fp_span))
    [[ $GENQ_PORTS_TAKEN == *" $genq_fp_port "* ]] && continue
    if ! genq_port_in_use "$genq_fp_port"; then
      GENQ_PORTS_TAKEN+="$genq_fp_port "
      # shellcheck disable=SC2034 # a nameref: assigns the caller's variable
      genq_fp_out=$genq_fp_port
      return 0
    fi
  done
  genq_die "no free port found"
}

# genq_build DIR BUILD_TYPE [cmake args...] [-- targets...]
genq_build() {
  local dir=$1 type=$2 targets=()
  shift 2
  local args=()
  while (($#)); do
    if [[ $1 == -- ]]; then
      shift
      targets=("$@")
      break
    fi
    args+=("$1")
    shift
  done
  mkdir -p "$dir"
  cmake -S "$GENQ_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "${args[@]}" >"$dir/configure.log" 2>&1 ||
    {
      cat "$dir/configure.log" >&2
      genq_die "cmake configure failed"
    }
  local t=()
  if ((${#targets[@]})); then
    t=(--target "${targets[@]}")
  fi
  cmake --build "$dir" -j"$(nproc)" "${t[@]}"
}

# Reads /proc/PID/stat into the array GENQ_STAT: its fields from the 3rd
# (the state) on, so that field N is GENQ_STAT[N-3]. Fails when there is no
# such process. Pure bash: the supervisor calls it twice a second per pid.
genq_proc_stat() {
  local s
  [[ $1 =~ ^[0-9]+$ ]] || return 1 # (/proc//stat is /proc/stat)
  read -r s 2>/dev/null <"/proc/$1/stat" || return 1
  read -ra GENQ_STAT <<<"${s##*) }" # after the command name, which may hold spaces
}

# True while pid $1 runs (a zombie waiting to be reaped counts as gone).
genq_alive() { genq_proc_stat "$1" && [[ ${GENQ_STAT[0]} != Z ]]; }

# Prints the start time of pid $1 (field 22 of /proc/PID/stat, clock ticks
# since boot; an exec keeps it): with the pid, it names one process for as
# long as the machine runs. Fails when there is no such process.
genq_proc_start() { genq_proc_stat "$1" && echo "${GENQ_STAT[19]}"; }

# genq_proc_same PID START: true while pid PID runs and is the process that
# had start time START (genq_proc_start), not a later one on its pid.
genq_proc_same() {
  [[ $1 =~ ^[0-9]+$ && -n $2 ]] && genq_proc_stat "$1" &&
    [[ ${GENQ_STAT[0]} != Z && ${GENQ_STAT[19]} == "$2" ]]
}

# genq_start NAME LOG [--signal SIG] CMD...: starts CMD in the background,
# stdout and stderr appended to LOG; sets GENQ_LAST_PID. CMD gets a session
# of its own (setsid execs, so the pid stays CMD's): a Ctrl-C reaches only the
# script, which then stops everything in order, workers before databases.
genq_start() {
  local name=$1 log=$2 sig=TERM
  shift 2
  if [[ ${1:-} == --signal ]]; then
    sig=$2
    shift 2
  fi
  setsid "$@" >>"$log" 2>&1 </dev/null &
  GENQ_LAST_PID=$!
  GENQ_PIDS+=("$GENQ_LAST_PID")
  GENQ_PID_NAME[$GENQ_LAST_PID]=$name
  GENQ_PID_LOG[$GENQ_LAST_PID]=$log
  GENQ_PID_SIG[$GENQ_LAST_PID]=$sig
  printf -v "GENQ_PID_CMD[$GENQ_LAST_PID]" '%q ' "$@"
  GENQ_PID_BORN[$GENQ_LAST_PID]=$(genq_proc_start "$GENQ_LAST_PID" || true)
  # shellcheck disable=SC2034 # read by scripts/run's supervisor
  GENQ_PID_UP[$GENQ_LAST_PID]=$SECONDS
  genq_write_pidfile
}

# genq_restart PID: starts the command of the started pid PID (which has
# exited and been reaped) again, with its name, log and stop signal, and puts
# the new pid in PID's place in the stop order; sets GENQ_LAST_PID.
genq_restart() {
  local old=$1 i
  eval "genq_start \"\${GENQ_PID_NAME[$old]}\" \"\${GENQ_PID_LOG[$old]}\" \
    --signal \"\${GENQ_PID_SIG[$old]}\" ${GENQ_PID_CMD[$old]}"
  unset 'GENQ_PIDS[-1]'
  for i in "${!GENQ_PIDS[@]}"; do
    if [[ ${GENQ_PIDS[i]} == "$old" ]]; then
      GENQ_PIDS[i]=$GENQ_LAST_PID
    fi
  done
  genq_write_pidfile
}

# True while the started pid $1 runs: the very process started (its start
# time unchanged), not another that reused the pid.
genq_started_alive() { genq_proc_same "$1" "${GENQ_PID_BORN[$1]:-}"; }

# Rewrites GENQ_PIDFILE (when set) from the started pids not yet reaped, in
# start order: "NAME PID START" lines (START: genq_proc_start).
genq_write_pidfile() {
  [[ -n $GENQ_PIDFILE ]] || return 0
  local pid
  for pid in "${GENQ_PIDS[@]}"; do
    if [[ -z ${GENQ_PID_RC[$pid]:-} ]]; then
      echo "${GENQ_PID_NAME[$pid]} $pid ${GENQ_PID_BORN[$pid]:-0}"
    fi
  done >"$GENQ_PIDFILE.tmp"
  mv -f "$GENQ_PIDFILE.tmp" "$GENQ_PIDFILE"
}

# genq_proc_in PID NAME DIR: true while pid PID runs a program named NAME
# (its /proc comm) with DIR as its working directory (PostgreSQL and Redis
# both chdir to their data folder): that server on that data.
genq_proc_in() {
  local pid=$1 comm cwd
  [[ $pid =~ ^[0-9]+$ ]] && genq_alive "$pid" || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) && cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
  [[ $comm == "$2"* && -d $3 && $cwd == "$(cd "$3" && pwd -P)" ]]
}

# genq_stop_left NAME PID SIG: stops a process an earlier run left running
# (not our child: no wait, the exit is seen in /proc): SIG, up to 15 s,
# then KILL.
genq_stop_left() {
  local name=$1 pid=$2 sig=$3 i
  genq_log "stopping $name (pid $pid), left running by an earlier run"
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    genq_alive "$pid" || return 0
    sleep 0.1
  done
  genq_log "$name (pid $pid) ignored SIG$sig for 15 s: killing"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    genq_alive "$pid" || return 0
    sleep 0.1
  done
  genq_die "$name (pid $pid) is still running after SIGKILL"
}

# genq_reclaim STATE REDIS_DIR PG_DATA: what an earlier run on the state
# folder STATE left running (a scripts/run killed with -9 leaves its
# children) is stopped, newest first, and its stale pid and lock files are
# removed, so that nothing blocks the next start. Only our own processes:
# a pid of STATE/run.pids only while its start time is the one recorded (the
# very process started then), a pid of PG_DATA/postmaster.pid or
# REDIS_DIR/redis.pid only while it is a postgres or redis-server working in
# that folder. Anything else with such a pid is left alone.
genq_reclaim() {
  local state=$1 rdir=$2 pgdata=$3 lines=() name pid start i sig
  if [[ -f $state/run.pids ]]; then
    mapfile -t lines <"$state/run.pids"
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
      read -r name pid start <<<"${lines[i]}"
      if genq_proc_same "${pid:-}" "${start:-}"; then
        sig=TERM
        [[ $name == postgres ]] && sig=INT # a fast shutdown
        genq_stop_left "$name" "$pid" "$sig"
      fi
    done
  fi
  pid=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null || true)
  if genq_proc_in "$pid" postgres "$pgdata"; then
    genq_stop_left postgres "$pid" INT
  fi
  pid=$(cat "$rdir/redis.pid" 2>/dev/null || true)
  if genq_proc_in "$pid" redis-server "$rdir"; then
    genq_stop_left redis "$pid" TERM
  fi
  # Nothing of ours runs there any more: every such file is stale.
  rm -f "$state/run.pids" "$state/run.pid" "$pgdata/postmaster.pid" "$rdir/redis.pid" \
    "$(dirname "$pgdata")"/sock/.s.PGSQL.*
}

genq_log_tail() {
  local pid=$1
  echo "----- last lines of ${GENQ_PID_LOG[$pid]} (${GENQ_PID_NAME[$pid]}, pid $pid) -----" >&2
  tail -n "${2:-40}" "${GENQ_PID_LOG[$pid]}" >&2 || true
  echo "-----" >&2
}

# Stops one started pid: its stop signal, up to 10 s, then KILL. Records the
# exit status in GENQ_PID_RC (128+N when it died of signal N).
genq_stop_pid() {
  local pid=$1 i rc=0
  [[ -n ${GENQ_PID_RC[$pid]:-} ]] && return 0
  if genq_alive "$pid"; then
    kill "-${GENQ_PID_SIG[$pid]}" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      genq_alive "$pid" || break
      sleep 0.1
    done
    if genq_alive "$pid"; then
      genq_log "${GENQ_PID_NAME[$pid]} (pid $pid) ignored SIG${GENQ_PID_SIG[$pid]} for 10 s: killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || rc=$?
  GENQ_PID_RC[$pid]=$rc
}

# Stops every started pid, newest first.
genq_stop_all() {
  local i
  for ((i = ${#GENQ_PIDS[@]} - 1; i >= 0; i--)); do
    genq_stop_pid "${GENQ_PIDS[i]}"
  done
}

# Installs the exit trap; INT, TERM and HUP become an exit so that the trap
# runs once.
# $1 (optional): a function to run after everything is stopped.
genq_trap_cleanup() {
  GENQ_AFTER_STOP=${1:-}
  trap 'genq_on_exit' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

genq_on_exit() {
  local rc=$?
  trap - EXIT INT TERM HUP
  genq_stop_all
  if [[ -n ${GENQ_AFTER_STOP:-} ]]; then
    "$GENQ_AFTER_STOP" "$rc" || true
  fi
  exit "$rc"
}

# Fails (with the log tail) if the started pid $1 is no longer running.
genq_require_alive() {
  local pid=$1
  if ! genq_alive "$pid"; then
    genq_log "${GENQ_PID_NAME[$pid]} exited at start"
    genq_log_tail "$pid"
    exit 1
  fi
}

# genq_wait_for PID SECONDS CMD...: retries CMD every 0.2 s until it
# succeeds, failing early if PID dies and after SECONDS.
genq_wait_for() {
  local pid=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    genq_require_alive "$pid"
    sleep 0.2
  done
  genq_log "${GENQ_PID_NAME[$pid]} not ready after ${secs} s"
  genq_log_tail "$pid"
  exit 1
}

# genq_start_redis DIR PORT LOG: a throw-away Redis (no persistence: genq
# keeps its truth in PostgreSQL and re-dispatches what Redis forgets).
genq_start_redis() {
  local dir=$1 port=$2 log=$3
  mkdir -p "$dir"
  genq_start redis "$log" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
    --save "" --appendonly no --daemonize no --pidfile "$dir/redis.pid"
  local pid=$GENQ_LAST_PID
  genq_wait_for "$pid" 15 genq_redis_pong "$port"
  genq_log "redis on 127.0.0.1:$port (pid $pid)"
}

genq_redis_pong() { [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]; }

# Runs a command as the user that owns the PostgreSQL cluster: `postgres`
# when we are root (initdb and postgres refuse root), else ourselves.
genq_as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
  else
    "$@"
  fi
}

# Prints the directory that holds the cluster for state folder $1: $1/pg,
# unless the postgres user cannot reach it (a checkout under /root), in which
# case $1/pg is a symlink to a /tmp/genq-pg-* directory made once.
genq_pg_home() {
  local state=$1 home
  if [[ -L $state/pg ]]; then
    home=$(readlink "$state/pg")
    if [[ -d $home ]]; then
      echo "$home"
      return 0
    fi
    genq_log "warning: $state/pg pointed at $home, which is gone (reboot?): starting an empty database"
    rm -f "$state/pg"
  fi
  mkdir -p "$state/pg"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$state/pg"
    if ! genq_as_pg test -w "$state/pg" -a -x "$state/pg"; then
      rmdir "$state/pg" 2>/dev/null || true
      home=$(mktemp -d /tmp/genq-pg-XXXXXX)
      chown postgres:postgres "$home"
      ln -s "$home" "$state/pg"
      genq_log "postgres cannot reach $state: PostgreSQL data lives in $home ($state/pg links to it)"
      echo "$home"
      return 0
    fi
  fi
  (cd "$state/pg" && pwd -P)
}

# genq_start_postgres STATE PORT LOG [postgres -c settings...]: initdb once (trust auth on loopback,
# superuser `postgres`), then runs the postmaster in the foreground of a
# background job so its pid is ours. Creates database `genq`.
genq_start_postgres() {
  local state=$1 port=$2 log=$3 home
  shift 3
  home=$(genq_pg_home "$state")
  if [[ ! -f $home/data/PG_VERSION ]]; then
    genq_as_pg mkdir -p "$home/data"
    genq_as_pg "$GENQ_PG_BIN/initdb" -D "$home/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      >>"$log" 2>&1 || {
      tail -n 30 "$log" >&2
      genq_die "initdb failed"
    }
  fi
  # Unix sockets go inside the cluster's folder (never /var/run); a path past
  # the 107-byte socket limit means TCP only, which is all genq uses.
  local sock="$home/sock"
  genq_as_pg mkdir -p "$sock"
  if ((${#sock} > 90)); then
    sock=""
  fi
  local as=()
  if [[ $(id -u) -eq 0 ]]; then
    as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  # An external command (not a function) so that $! is the postmaster itself.
  genq_start postgres "$log" --signal INT "${as[@]}" "$GENQ_PG_BIN/postgres" -D "$home/data" -p "$port" \
    -c listen_addresses=127.0.0.1 -c "unix_socket_directories=$sock" "$@"
  local pid=$GENQ_LAST_PID
  genq_wait_for "$pid" 60 pg_isready -q -h 127.0.0.1 -p "$port" -U postgres
  genq_create_db "$port" genq
  genq_log "postgres on 127.0.0.1:$port, data in $home/data (pid $pid)"
}

# genq_create_db PORT NAME: creates the database unless it exists.
genq_create_db() {
  local port=$1 db=$2
  if [[ -z $(psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
    "select 1 from pg_database where datname = '$db'") ]]; then
    psql -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "create database \"$db\"" >/dev/null
  fi
}

# genq_make_keys DIR: the dev RSA key pair that `genqctl token` signs with
# and genq-api verifies (as CLERK_JWT_KEY); kept if it exists.
genq_make_keys() {
  local dir=$1
  mkdir -p "$dir"
  if [[ ! -s $dir/dev_jwt_private.pem ]]; then
    (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
      -out "$dir/dev_jwt_private.pem" 2>/dev/null)
    rm -f "$dir/dev_jwt_public.pem"
  fi
  if [[ ! -s $dir/dev_jwt_public.pem ]]; then
    openssl pkey -in "$dir/dev_jwt_private.pem" -pubout -out "$dir/dev_jwt_public.pem"
  fi
}

# genq_secrets_key DIR: prints the key that seals stored secrets
# (GENQ_SECRETS_KEY: base64 of 32 bytes), made once in DIR/secrets.key and
# kept, like the dev JWT key: secrets sealed under it outlive a restart.
genq_secrets_key() {
  local f=$1/secrets.key
  if [[ ! -s $f ]]; then
    (umask 077 && openssl rand -base64 32 >"$f")
  fi
  cat "$f"
}

# Prints PEM file $1 on one line with two-character "\n" escapes (the form
# CLERK_JWT_KEY takes in an env file; genq decodes them).
genq_pem_oneline() { awk '{printf "%s\\n", $0}' "$1"; }

# genq_stack_env STATE REDIS_PORT PG_PORT DB API_LISTEN PROVSIM_PORT KEYDIR:
# prints the stack's configuration as env-file lines (SPEC §9).
genq_stack_env() {
  local state=$1 rport=$2 pport=$3 db=$4 api=$5 sport=$6 keys=$7
  local sim="http://127.0.0.1:$sport"
  cat <<EOF
# genq stack configuration, written by scripts/$(basename "$0"). Load with: set -a; . $state/env; set +a
GENQ_DATABASE_URL=postgresql://postgres@127.0.0.1:$pport/$db
GENQ_REDIS_URL=redis://127.0.0.1:$rport/0
GENQ_API_LISTEN=$api
GENQ_PUBLIC_URL=http://$api
GENQ_URL_SIGNING_KEY=$(openssl rand -hex 32)
GENQ_STORAGE=file://$state/storage
GENQ_PROVSIM_LISTEN=127.0.0.1:$sport
OPENAI_API_KEY=sk-genq-provsim
OPENAI_BASE_URL=$sim/openai/v1
LUMA_API_KEY=luma-genq-provsim
LUMA_BASE_URL=$sim/luma/dream-machine/v1
HEDRA_API_KEY=hedra-genq-provsim
HEDRA_BASE_URL=$sim/hedra/v3
CLERK_JWT_KEY="$(genq_pem_oneline "$keys/dev_jwt_public.pem")"
CLERK_ISSUER=https://clerk.genq.localhost
CLERK_AUTHORIZED_PARTIES=http://localhost:3000
GENQ_DEV_JWT_PRIVATE_KEY=$keys/dev_jwt_private.pem
GENQ_SECRETS_KEY=$(genq_secrets_key "$keys")
GENQ_LOG_LEVEL=${GENQ_LOG_LEVEL:-info}
EOF
}

# Loads an env file into the environment (every variable exported).
genq_load_env() {
  set -a
  # shellcheck disable=SC1090
  . "$1"
  set +a
}

# Prints the port of a URL/listen value like scheme://host:PORT/x or host:PORT.
genq_url_port() { sed -E 's#^([a-z]+://)?([^@/]*@)?[^:/]+:([0-9]+).*#\3#' <<<"$1"; }

# genq_archive_logs DIR NAME: when GENQ_LOG_ARCHIVE is set (scripts/test sets
# it), copies the genq service logs of DIR (genq-api, genq-worker and genqctl
# logs: api*.log, worker*.log) into $GENQ_LOG_ARCHIVE/NAME-<pid>/ before a
# test removes its state, so that tests/log_scan.sh sees every log of the run.
genq_archive_logs() {
  local dir=$1 name=$2 dest
  [[ -n ${GENQ_LOG_ARCHIVE:-} && -d $dir ]] || return 0
  dest=$GENQ_LOG_ARCHIVE/$name-$$
  mkdir -p "$dest"
  find "$dir" -maxdepth 2 -type f \( -name 'api*.log' -o -name 'worker*.log' \) \
    -exec cp {} "$dest/" \; 2>/dev/null || true
}

# genq_npm_ci DIR LOG: installs DIR's npm packages exactly as its
# package-lock.json pins them (npm ci, from the npm registry), output in LOG
# (its tail on stderr when it fails). Needs node 20.19 or later (the OpenAPI
# tools' least) and npm; fails naming what is missing.
genq_npm_ci() {
  local dir=$1 log=$2 v
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "genq_npm_ci: node and npm are needed (node 20.19 or later)" >&2
    return 1
  fi
  v=$(node -p 'process.versions.node')
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 19) ? 0 : 1)'; then
    echo "genq_npm_ci: node $v is too old: 20.19 or later is needed" >&2
    return 1
  fi
  (cd "$dir" && timeout 600 npm ci --no-audit --no-fund) >"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    return 1
  }
}
