#!/usr/bin/env bash
# End to end: every program refuses a bad or missing setting at start, with a
# message naming the variable (SPEC §9), and bad command lines with exit 2.
# Needs GENQCTL (the programs are beside it) and the stack's variables.
set -uo pipefail

. "$(dirname "$0")/helpers.bash"
BIN=$(dirname "$GENQCTL")

# refuses NAME CMD...: CMD exits non-zero within 10 s and its stderr names NAME.
refuses() {
  local name=$1 rc=0
  shift
  (cd "$TMP" && timeout 10 "$@") >"$TMP/out" 2>"$TMP/err" || rc=$?
  STATUS="exit $rc" BODY=$(cat "$TMP/err")
  ((rc != 0 && rc != 124)) && grep -q -- "$name" "$TMP/err"
}

check "genq-worker: a non-integer GENQ_LEASE_SECONDS is named" \
  refuses GENQ_LEASE_SECONDS env GENQ_LEASE_SECONDS=abc "$BIN/genq-worker"
check "genq-worker: GENQ_MAX_ATTEMPTS out of range is named" \
  refuses GENQ_MAX_ATTEMPTS env GENQ_MAX_ATTEMPTS=0 "$BIN/genq-worker"
check "genq-worker: a missing OPENAI_API_KEY is named" \
  refuses OPENAI_API_KEY env -u OPENAI_API_KEY "$BIN/genq-worker"
check "genq-worker: an unknown kind is refused" refuses "unknown kind" "$BIN/genq-worker" --kinds nope
check "genq-worker: concurrency 0 is refused" refuses "concurrency" "$BIN/genq-worker" --concurrency 0
check "genq-api: a missing CLERK_JWT_KEY is named" \
  refuses CLERK_JWT_KEY env -u CLERK_JWT_KEY "$BIN/genq-api"
check "genq-api: a CLERK_JWT_KEY that is not a PEM key is named" \
  refuses CLERK_JWT_KEY env CLERK_JWT_KEY=not-a-key "$BIN/genq-api"
check "genq-api: a non-redis GENQ_REDIS_URL is named" \
  refuses GENQ_REDIS_URL env GENQ_REDIS_URL=http://127.0.0.1:1 "$BIN/genq-api"
check "genq-api: a redis-sentinel:// GENQ_REDIS_URL without the primary's name is named" \
  refuses "GENQ_REDIS_URL: redis url: the primary's name is missing" \
  env GENQ_REDIS_URL=redis-sentinel://:hunter2@127.0.0.1:26379 "$BIN/genq-api"
check "... and the message does not repeat the URL's password" eval '! grep -q hunter2 "$TMP/err"'
check "genqctl: a bad sentinel port in GENQ_REDIS_URL is named" \
  refuses GENQ_REDIS_URL env GENQ_REDIS_URL=redis-sentinel://127.0.0.1:0/genq "$GENQCTL" credits show nobody
check "genq-api: a bad GENQ_API_LISTEN is named" \
  refuses GENQ_API_LISTEN env GENQ_API_LISTEN=nonsense "$BIN/genq-api"
check "genq-api: a missing GENQ_DATABASE_URL is named" \
  refuses GENQ_DATABASE_URL env -u GENQ_DATABASE_URL "$BIN/genq-api"
check "genq-api: a missing CLERK_AUTHORIZED_PARTIES is named (azp is required)" \
  refuses CLERK_AUTHORIZED_PARTIES env -u CLERK_AUTHORIZED_PARTIES "$BIN/genq-api"
check "genq-api: GENQ_MAX_TOKEN_LIFETIME_S out of range is named" \
  refuses GENQ_MAX_TOKEN_LIFETIME_S env GENQ_MAX_TOKEN_LIFETIME_S=5 "$BIN/genq-api"
check "genq-api: a negative GENQ_MAX_CONNECTIONS_PER_IP is named" \
  refuses GENQ_MAX_CONNECTIONS_PER_IP env GENQ_MAX_CONNECTIONS_PER_IP=-1 "$BIN/genq-api"
check "genq-provsim: a bad PROVSIM_OPENAI_LATENCY_MS is named" \
  refuses PROVSIM_OPENAI_LATENCY_MS env PROVSIM_OPENAI_LATENCY_MS=-5 "$BIN/genq-provsim"
"$GENQCTL" frobnicate >/dev/null 2>&1
RC=$?
check "genqctl: an unknown command exits 2" [ "$RC" -eq 2 ]
check "genqctl: a bad GENQ_DATABASE_URL is named" \
  refuses GENQ_DATABASE_URL env GENQ_DATABASE_URL=mysql://x "$GENQCTL" migrate
finish
