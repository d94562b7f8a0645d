#!/usr/bin/env bash
# End to end: the typed TypeScript client of clients/typescript against the
# stack's genq-api.
#
# - npm ci installs it at the versions its package-lock.json pins
#   (openapi-fetch, openapi-typescript, typescript, @types/node).
# - The committed src/schema.d.ts is what api/openapi.yaml generates now
#   (`npm run check-generated` generates it again and compares).
# - `tsc --noEmit` type-checks the client and example.ts against it.
# - A breaking change fails the type check: with Asset's `sha256` removed
#   from a copy of the document, the types generated from it make tsc
#   refuse example.ts, naming sha256.
# - example.ts, compiled with tsc and run with node, submits an image job,
#   follows it over GET /v1/jobs/{id}/events (fetch streaming, a Bearer
#   token) until it succeeded and downloads its assets: every one's bytes,
#   sha256 and Content-Type are the job's; the job it reports is the one
#   GET /v1/jobs/{id} shows, and the credits were captured.
#
# Needs GENQ_API_URL and GENQCTL (scripts/test sets them), node 20.19+ and
# npm. Prints one line per check and, last, "e2e-summary: passed=N failed=M".
# shellcheck disable=SC2016,SC2034 # $names in single quotes are jq's or eval's; STATUS is read by helpers
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/helpers.bash
. "$HERE/helpers.bash"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
cleanup_tmp() { rm -rf "$TMP"; }
genq_trap_cleanup cleanup_tmp
CLIENT=$ROOT/clients/typescript
TSC=$CLIENT/node_modules/.bin/tsc

# --- the pinned client ------------------------------------------------------
check "npm ci installs clients/typescript from its lock file" genq_npm_ci "$CLIENT" "$TMP/npm.log"
pinned() { # PKG: installed at exactly the version package.json names
  local want got
  want=$(jq -r --arg p "$1" '.dependencies[$p] // .devDependencies[$p]' "$CLIENT/package.json")
  got=$(jq -r .version "$CLIENT/node_modules/$1/package.json" 2>/dev/null)
  [[ $want =~ ^[0-9]+\.[0-9]+\.[0-9]+$ && $got == "$want" ]]
}
for p in openapi-fetch openapi-typescript typescript @types/node; do
  check "$p is installed at its pinned version" pinned "$p"
done

# --- generated types and the type check ---------------------------------------
in_client() { (cd "$CLIENT" && "$@") >"$TMP/out" 2>&1 || { sed 's/^/       /' "$TMP/out" | head -n 30; false; }; }
check "src/schema.d.ts is what api/openapi.yaml generates (npm run check-generated)" \
  in_client timeout 120 npm run --silent check-generated
check "tsc --noEmit: the client and example.ts type-check" in_client timeout 300 "$TSC" --noEmit -p tsconfig.json

# A copy of the client whose types come from a document without Asset's
# sha256, which example.ts reads.
BREAK=$TMP/break
mkdir -p "$BREAK/src"
cp "$CLIENT/example.ts" "$CLIENT/tsconfig.json" "$CLIENT/package.json" "$BREAK/"
cp "$CLIENT/src/index.ts" "$BREAK/src/"
ln -s "$CLIENT/node_modules" "$BREAK/node_modules"
awk '/^    Asset:$/ { a = 1 } a && /^    [A-Za-z]+:$/ && !/^    Asset:$/ { a = 0 }
     a && /^        sha256:/ { next }
     a && /^      required:/ { sub(/, sha256/, "") }
     { print }' "$ROOT/api/openapi.yaml" >"$BREAK/openapi.yaml"
check "the broken copy of the document lacks Asset's sha256 (and only that)" \
  eval '[ "$(diff "$ROOT/api/openapi.yaml" "$BREAK/openapi.yaml" | grep -c "^<")" = 2 ]'
broken_fails() {
  (cd "$CLIENT" && timeout 120 node generate.mjs --spec "$BREAK/openapi.yaml" --out "$BREAK/src/schema.d.ts") \
    >"$TMP/gen.out" 2>&1 || { cat "$TMP/gen.out"; return 1; }
  if (cd "$BREAK" && timeout 300 "$TSC" --noEmit -p tsconfig.json) >"$TMP/break.out" 2>&1; then
    echo "       tsc accepted example.ts without Asset.sha256"
    return 1
  fi
  sed 's/^/       /' "$TMP/break.out" | head -n 5
  grep -q "^example.ts(.*'sha256'" "$TMP/break.out"
}
check "a breaking change (Asset.sha256 removed) fails the type check of example.ts" broken_fails

# --- the example against the stack -----------------------------------------
OUT=$TMP/out-js
compile() {
  "$TSC" -p "$CLIENT/tsconfig.json" --outDir "$OUT" >"$TMP/tsc.out" 2>&1 || {
    sed 's/^/       /' "$TMP/tsc.out" | head -n 20
    return 1
  }
  cp "$CLIENT/package.json" "$OUT/" && ln -s "$CLIENT/node_modules" "$OUT/node_modules"
  [[ -f $OUT/example.js && -f $OUT/src/index.js ]]
}
check "tsc compiles the client and example.ts to JavaScript" compile

RUN=$$-$RANDOM
USER_ID=e2e-ts-$RUN
"$GENQCTL" credits grant "$USER_ID" 20 --key "e2e:$USER_ID" >/dev/null
TOKEN=$("$GENQCTL" token --user "$USER_ID" | tr -d '[:space:]')
rc=0
GENQ_API_URL=$API GENQ_TOKEN=$TOKEN timeout 120 node "$OUT/example.js" "a lighthouse at dawn $RUN" \
  >"$TMP/example.json" 2>"$TMP/example.err" || rc=$?
sed 's/^/       /' "$TMP/example.err" | head -n 20
check "example.js exits 0 (exit $rc)" [ "$rc" -eq 0 ]
ej() { jq -e "$@" "$TMP/example.json" >/dev/null 2>&1; }
check "... its job succeeded, as the last event of the stream showed it" \
  ej '.status == "succeeded" and (.events | length) >= 1 and .events[-1] == "succeeded"'
check "... the stream's first event was the job before it ended" ej '.events[0] | IN("queued", "running")'
check "... it downloaded at least one asset, every one with the job's bytes, sha256 and type" \
  ej '(.assets | length) >= 1 and all(.assets[]; .ok and .bytes > 0)'
JOB=$(jq -r '.job // empty' "$TMP/example.json" 2>/dev/null)
req GET "/v1/jobs/$JOB" "$TOKEN"
check "GET /v1/jobs/{id} shows that job succeeded, captured what the example saw" \
  eval 'status_is 200 && jqt ".status == \"succeeded\" and .cost.captured == \$c and .cost.held == 0" \
    --argjson c "$(jq .captured "$TMP/example.json")"'
check "... with the assets and checksums the example checked" \
  eval 'jqt "[.output.assets[] | {id, sha256}] == \$a" --argjson a "$(jq -c "[.assets[] | {id, sha256}]" "$TMP/example.json")"'
check "the user's credits were debited by that capture and nothing is held" \
  credits_are "$TOKEN" $((20 - $(jq -r '.captured // 0' "$TMP/example.json" 2>/dev/null || echo 0))) 0

finish
