#!/usr/bin/env bash
# End to end: the official `openai` and `lumaai` npm clients, at the exact
# versions pinned in tests/sdk/package.json (and its package-lock.json),
# accept genq-provsim: tests/sdk/sdk_check.mjs makes every call through them
# and checks every answer.
#
# Installs Debian's nodejs and npm with apt-get only when they are missing,
# runs `npm ci` in tests/sdk, and starts its own simulator on a free loopback
# port with short durations: $PROVSIM_BIN, else $GENQ_BUILD_DIR/genq-provsim
# (scripts/test exports GENQ_BUILD_DIR). Prints one line per check and, last,
# "e2e-summary: passed=N failed=M"; exits non-zero on any failure.
# shellcheck disable=SC2016,SC2034 # single quotes hold jq variables and eval'd checks
set -uo pipefail

# This script talks only to its own simulator; helpers.bash insists on the
# stack's API variables, which a run by hand need not have.
: "${GENQ_API_URL:=http://127.0.0.1:9}" "${GENQCTL:=true}"
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/helpers.bash
. "$HERE/helpers.bash"
# shellcheck source=scripts/lib.sh
. "$HERE/../../scripts/lib.sh"
cleanup_tmp() { rm -rf "$TMP"; }
genq_trap_cleanup cleanup_tmp
SDK_DIR=$(cd "$HERE/../sdk" && pwd)

BIN=${PROVSIM_BIN:-${GENQ_BUILD_DIR:+$GENQ_BUILD_DIR/genq-provsim}}
[[ -x $BIN ]] || genq_die "set PROVSIM_BIN or GENQ_BUILD_DIR to find genq-provsim (got '${BIN}')"

# --- node and the pinned SDKs ----------------------------------------------
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
command -v node >/dev/null 2>&1 && ! command -v npm >/dev/null 2>&1 && missing+=(npm)
if ((${#missing[@]})); then
  genq_log "installing Debian packages for the SDK check: ${missing[*]}"
  genq_as_root apt-get update -qq >"$TMP/apt.log" 2>&1
  genq_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >>"$TMP/apt.log" 2>&1 || tail -n 20 "$TMP/apt.log"
fi
has() { command -v "$1" >/dev/null 2>&1; }
check "node is installed ($(node --version 2>/dev/null || echo none))" has node
check "npm is installed" has npm

npm_ci() {
  (cd "$SDK_DIR" && timeout 600 npm ci --no-audit --no-fund) >"$TMP/npm.log" 2>&1 || {
    tail -n 30 "$TMP/npm.log"
    return 1
  }
}
check "npm ci installs tests/sdk from its lock file" npm_ci
# pinned PKG: the installed version is the exact one package.json names.
pinned() {
  local want got
  want=$(jq -r --arg p "$1" '.dependencies[$p]' "$SDK_DIR/package.json")
  got=$(jq -r .version "$SDK_DIR/node_modules/$1/package.json" 2>/dev/null)
  [[ $want =~ ^[0-9]+\.[0-9]+\.[0-9]+$ && $got == "$want" ]]
}
check "openai is installed at its pinned version" pinned openai
check "lumaai is installed at its pinned version" pinned lumaai

# --- the simulator ----------------------------------------------------------
PORT=""
genq_free_port PORT
SIMLOG=$TMP/provsim.log
genq_start provsim "$SIMLOG" env GENQ_PROVSIM_LISTEN="127.0.0.1:$PORT" GENQ_LOG_LEVEL=info \
  PROVSIM_OPENAI_LATENCY_MS=0 PROVSIM_LUMA_VIDEO_MS=1500 PROVSIM_LUMA_IMAGE_MS=1000 \
  PROVSIM_HEDRA_MS=1500 "$BIN"
SIM_PID=$GENQ_LAST_PID
genq_wait_for "$SIM_PID" 30 curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz"

# --- the check: its own lines, its counts added to ours ----------------------
rc=0
OPENAI_BASE_URL=http://127.0.0.1:$PORT/openai/v1 OPENAI_API_KEY=sk-genq-sdk-check \
  LUMA_BASE_URL=http://127.0.0.1:$PORT/luma/dream-machine/v1 LUMA_API_KEY=luma-genq-sdk-check \
  timeout 300 node "$SDK_DIR/sdk_check.mjs" >"$TMP/sdk.log" 2>&1 || rc=$?
cat "$TMP/sdk.log"
line=$(grep -E '^sdk-check: passed=[0-9]+ failed=[0-9]+' "$TMP/sdk.log" | tail -n 1)
if [[ $line =~ passed=([0-9]+)\ failed=([0-9]+) ]]; then
  PASSED=$((PASSED + BASH_REMATCH[1]))
  FAILED=$((FAILED + BASH_REMATCH[2]))
fi
check "sdk_check.mjs finished and exited 0 (exit $rc)" eval '[[ $rc == 0 && -n $line ]]'

genq_stop_pid "$SIM_PID"
check "genq-provsim exits 0 on SIGTERM" [ "${GENQ_PID_RC[$SIM_PID]}" = 0 ]
check "genq-provsim log has no sanitizer report" \
  eval '! grep -qE "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$SIMLOG"'
if ((FAILED)); then
  echo "----- last lines of the simulator log -----"
  tail -n 30 "$SIMLOG"
fi
finish
