#!/usr/bin/env bash
# The S3-compatible server of genq's storage tests (tests/s3/server.js:
# s3rver, checking SigV4 signatures and payload hashes), on loopback.
#
#   scripts/s3rver.sh start <dir> <port>   installs Node.js/npm (apt) if node
#       is missing and the pinned s3rver (npm ci in tests/s3) if it is not
#       installed yet, starts it in the background on 127.0.0.1:<port> with
#       bucket genq-test (data in <dir>/data, log in <dir>/s3rver.log, pid in
#       <dir>/s3rver.pid), waits until it answers, and prints the variables
#       the tests read, as env-file lines (for `set -a; . file; set +a`):
#         GENQ_TEST_S3_URL='s3://genq-test?endpoint=http://127.0.0.1:<port>&region=us-east-1'
#         GENQ_S3_ACCESS_KEY=S3RVER
#         GENQ_S3_SECRET_KEY=S3RVER
#   scripts/s3rver.sh stop <dir>           stops the server of that pid file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S3DIR=$ROOT/tests/s3
BUCKET=genq-test

log() { printf '[s3rver %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# True while pid $1 runs our server (not a zombie, not a recycled pid).
ours_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q 'server\.js'
}

install_node() {
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    return 0
  fi
  log "installing Node.js and npm (Debian packages)"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
}

# npm ci only when tests/s3/node_modules does not match package-lock.json,
# so that a second run needs no network.
install_s3rver() {
  local stamp=$S3DIR/node_modules/.package-lock.json
  if [[ -f $stamp && -d $S3DIR/node_modules/@20minutes/s3rver && ! $S3DIR/package-lock.json -nt $stamp ]]; then
    return 0
  fi
  log "npm ci in tests/s3"
  (cd "$S3DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2
}

answers() {
  # Any HTTP answer will do (anonymous requests get 403).
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null) || return 1
  [[ $code =~ ^[1-5][0-9][0-9]$ ]]
}

start() {
  local dir=$1 port=$2
  if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    die "bad port: $port"
  fi
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  local pidfile=$dir/s3rver.pid
  if [[ -f $pidfile ]] && ours_alive "$(cat "$pidfile")"; then
    die "already running (pid $(cat "$pidfile")); stop it first"
  fi
  install_node
  install_s3rver
  # setsid: its own session, so that a Ctrl-C aimed at the caller does not
  # reach it; it runs until `stop`.
  setsid node "$S3DIR/server.js" "$dir/data" "$port" "$BUCKET" >>"$dir/s3rver.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"
  local i
  for ((i = 0; i < 150; i++)); do
    if answers "$port"; then
      log "s3rver on 127.0.0.1:$port (pid $pid), data in $dir/data"
      # Quoted: the URL's '&' must survive sourcing the file.
      echo "GENQ_TEST_S3_URL='s3://$BUCKET?endpoint=http://127.0.0.1:$port&region=us-east-1'"
      echo "GENQ_S3_ACCESS_KEY=S3RVER"
      echo "GENQ_S3_SECRET_KEY=S3RVER"
      return 0
    fi
    if ! ours_alive "$pid"; then
      tail -n 30 "$dir/s3rver.log" >&2 || true
      rm -f "$pidfile"
      die "s3rver exited at start"
    fi
    sleep 0.2
  done
  tail -n 30 "$dir/s3rver.log" >&2 || true
  kill -TERM "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  die "s3rver did not answer on 127.0.0.1:$port within 30 s"
}

stop() {
  local pidfile=$1/s3rver.pid pid i
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if [[ $pid =~ ^[0-9]+$ ]] && ours_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      ours_alive "$pid" || break
      sleep 0.1
    done
    if ours_alive "$pid"; then
      log "pid $pid ignored SIGTERM for 5 s: killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
start)
  (($# == 3)) || die "usage: $0 start <dir> <port>"
  start "$2" "$3"
  ;;
stop)
  (($# == 2)) || die "usage: $0 stop <dir>"
  stop "$2"
  ;;
*)
  echo "usage: $0 start <dir> <port> | stop <dir>" >&2
  exit 2
  ;;
esac
