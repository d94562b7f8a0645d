#!/usr/bin/env bash
# End to end: api/openapi.yaml is the truth about genq-api.
#
# - npm ci installs tests/openapi at the versions its package-lock.json pins
#   (@redocly/cli, ajv, ajv-formats, yaml).
# - Lint: `redocly lint` with tests/openapi/redocly.yaml (Redocly's
#   recommended rules, none turned off) finds 0 errors and 0 warnings, and
#   nothing is ignored.
# - The route walk: the "METHOD TEMPLATE" lines `genq-api --routes` prints
#   (api/routes.c's table, the one the router matches with) are exactly the
#   document's operations (tests/openapi/routes.mjs).
# - Live: every documented method of every documented path, sent to the
#   stack's genq-api with a probe user's token and the path's parameters
#   filled in, is answered by its handler: neither the router's 404 ("no
#   such endpoint") nor 405. (DELETE /v1/me goes last: it deletes the probe
#   user.)
# - The response validator (tests/openapi/validate.mjs), which scripts/test
#   runs over every response the e2e scripts recorded, accepts real
#   responses and names each kind of mismatch in doctored copies of them:
#   a missing or undocumented field, a wrong type, an undocumented status,
#   a wrong Content-Type, a missing X-Request-Id, an error whose request_id
#   is not its X-Request-Id, a 405 with the wrong Allow, an unknown path
#   answered 200, a 429 without Retry-After, and a bad event in a stream.
#
# Needs GENQ_API_URL, GENQCTL, GENQ_BUILD_DIR and GENQ_URL_SIGNING_KEY (the
# stack's; scripts/test sets them) and node 20.19+ with npm.
# Prints one line per check and, last, "e2e-summary: passed=N failed=M".
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
OA=$ROOT/tests/openapi
SPEC=$ROOT/api/openapi.yaml
: "${GENQ_BUILD_DIR:?GENQ_BUILD_DIR must be set}"

# --- the pinned tools -------------------------------------------------------
check "npm ci installs tests/openapi from its lock file" genq_npm_ci "$OA" "$TMP/npm.log"
pinned() { # PKG: installed at exactly the version package.json names
  local want got
  want=$(jq -r --arg p "$1" '.dependencies[$p]' "$OA/package.json")
  got=$(jq -r .version "$OA/node_modules/$1/package.json" 2>/dev/null)
  [[ $want =~ ^[0-9]+\.[0-9]+\.[0-9]+$ && $got == "$want" ]]
}
for p in @redocly/cli ajv ajv-formats yaml; do
  check "$p is installed at its pinned version" pinned "$p"
done

# --- lint -----------------------------------------------------------------
(cd "$OA" && timeout 120 node_modules/.bin/redocly lint --config redocly.yaml --format=json "$SPEC") \
  >"$TMP/lint.json" 2>"$TMP/lint.err"
lint_rc=$?
lint_clean() {
  jq -e '.totals.errors == 0 and .totals.warnings == 0 and .totals.ignored == 0' "$TMP/lint.json" >/dev/null 2>&1 ||
    {
      jq -r '.problems[]? | "       \(.severity) \(.ruleId): \(.message) at \(.location[0].pointer // "")"' "$TMP/lint.json" 2>/dev/null | head -n 40
      tail -n 5 "$TMP/lint.err"
      return 1
    }
}
check "redocly lint api/openapi.yaml: 0 errors, 0 warnings, 0 ignored (exit $lint_rc)" lint_clean
check "the lint config extends Redocly's recommended rules" grep -qxE '  - recommended' "$OA/redocly.yaml"
check "no lint-ignore file hides problems" eval '[ ! -e "$ROOT/api/.redocly.lint-ignore.yaml" ] && [ ! -e "$OA/.redocly.lint-ignore.yaml" ]'

# --- the route walk ---------------------------------------------------------
walk() {
  "$GENQ_BUILD_DIR/genq-api" --routes >"$TMP/routes" &&
    node "$OA/routes.mjs" --spec "$SPEC" <"$TMP/routes" >"$TMP/walk.out" 2>&1
  local rc=$?
  sed 's/^/       /' "$TMP/walk.out"
  return "$rc"
}
check "genq-api --routes and api/openapi.yaml's operations are the same set" walk
check "... of more than a dozen routes ($(wc -l <"$TMP/routes" 2>/dev/null))" eval '[ "$(wc -l <"$TMP/routes")" -gt 12 ]'

# --- every documented operation reaches its handler -------------------------
RUN=$$-$RANDOM
PROBE_USER=e2e-openapi-$RUN
PROBE_TOKEN=$("$GENQCTL" token --user "$PROBE_USER" | tr -d '[:space:]')
# /v1/admin answers anyone but an admin 404 on every path: an admin probes it
ADMIN_TOKEN=$("$GENQCTL" token --user "e2e-openapi-admin-$RUN" --admin | tr -d '[:space:]')
# A Luma callback token genq would make (callback_url.h): a forged one is
# answered like an unknown path on purpose, so only a valid one shows the
# route is there.
luma_token() {
  local job mac
  job=$(cat /proc/sys/kernel/random/uuid)
  mac=$(printf 'luma-callback:%s' "$job" | openssl dgst -sha256 -hmac "${GENQ_URL_SIGNING_KEY:?}" | awk '{print $NF}')
  echo "$job.${mac:0:32}"
}
node "$OA/routes.mjs" --probes --spec "$SPEC" >"$TMP/probes" 2>"$TMP/probes.err"
check "routes.mjs lists the document's operations to probe" eval '[ -s "$TMP/probes" ]'
# DELETE /v1/me last: it deletes the probe user.
{
  grep -v '^DELETE /v1/me ' "$TMP/probes"
  grep '^DELETE /v1/me ' "$TMP/probes"
} >"$TMP/probes.sorted"
while read -r method template path; do
  [[ $template == /v1/callbacks/luma/\{token\} ]] && path=/v1/callbacks/luma/$(luma_token)
  token=$PROBE_TOKEN
  [[ $template == /v1/admin/* ]] && token=$ADMIN_TOKEN
  if [[ $template == /v1/admin/events ]]; then
    # a stream: its status line is all the probe needs
    STATUS=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 \
      -H "Authorization: Bearer $token" "$API$path" 2>/dev/null || true)
  else
    req "$method" "$path" "$token"
  fi
  routed() {
    [[ $STATUS =~ ^[0-9]{3}$ && $STATUS != 405 ]] &&
      ! { [[ $STATUS == 404 ]] && jqt '.error.message == "no such endpoint"'; }
  }
  check "$method $template reaches its handler (HTTP $STATUS)" routed
done <"$TMP/probes.sorted"

# --- the validator, on real responses and doctored copies of them -------------
SELF=$TMP/self
mkdir -p "$SELF/good" "$SELF/bad"
# keep ONE: records the next req into $SELF/good/ONE.*
keep() {
  local saved=${GENQ_API_RECORD:-}
  GENQ_API_RECORD=$SELF/good
  API_RECORDS=0
  req "${@:2}"
  GENQ_API_RECORD=$saved
  for x in req headers body; do mv "$SELF/good/"*"-1.$x" "$SELF/good/$1.$x"; done
}
CREDIT_USER=e2e-openapi-c-$RUN
"$GENQCTL" credits grant "$CREDIT_USER" 5 --key "e2e:$CREDIT_USER" >/dev/null
CT=$("$GENQCTL" token --user "$CREDIT_USER" | tr -d '[:space:]')
keep credits GET /v1/credits "$CT"
keep job-post POST /v1/jobs "$CT" '{"kind":"storyboard","input":{"prompt":"a kiosk","scenes":1}}'
JOB=$(jq -r '.id // empty' <<<"$BODY")
keep job GET "/v1/jobs/$JOB" "$CT"
keep nojob GET /v1/jobs/00000000-0000-4000-8000-000000000000 "$CT"
keep put PUT /v1/credits "$CT" '{}'
keep nopath GET /v1/nothing-here "$CT"
check "a submitted job to follow" eval '[ -n "$JOB" ]'
curl -sS -N --max-time 30 -H "Authorization: Bearer $CT" -D "$SELF/good/events.headers" \
  -o "$SELF/good/events.body" "$API/v1/jobs/$JOB/events" 2>/dev/null
printf 'GET /v1/jobs/%s/events\n' "$JOB" >"$SELF/good/events.req"

validate() { # DIR: runs the validator over DIR into $TMP/validate.out
  node "$OA/validate.mjs" --spec "$SPEC" --min 1 "$1" >"$TMP/validate.out" 2>&1
}
show() { sed 's/^/       /' "$TMP/validate.out" | head -n 20; }
check "the validator accepts genq-api's real responses, an event stream among them" \
  eval 'validate "$SELF/good" || { show; false; }'
check "... and counted the stream's events" grep -qE 'openapi-summary: responses=7 events=[1-9]' "$TMP/validate.out"

# bad NAME FROM EXPECTED-TEXT EDIT...: a copy of exchange FROM, changed by EDIT
# (a shell command run in the copy's folder on files req/headers/body), must
# fail with EXPECTED-TEXT among its FAIL lines.
bad() {
  local name=$1 from=$2 want=$3 d=$SELF/bad/$1
  shift 3
  rm -rf "$d" && mkdir -p "$d"
  for x in req headers body; do cp "$SELF/good/$from.$x" "$d/$name.$x"; done
  (cd "$d" && eval "$*") || return 1
  if validate "$d"; then
    echo "       the validator accepted it"
    return 1
  fi
  grep -q "^FAIL $name: .*$want" "$TMP/validate.out" || {
    show
    return 1
  }
}
jqin() { jq -c "$2" "$1.body" >"$1.tmp" && mv "$1.tmp" "$1.body"; } # FILE-BASE EXPR
check "the validator refuses a job without its status" \
  bad nostatus job "must have required property 'status'" 'jqin nostatus "del(.status)"'
check "... a field the document does not name" \
  bad extra credits "must NOT have unevaluated properties (bonus)" 'jqin extra ".bonus = 1"'
check "... a field of the wrong type" \
  bad type credits "/balance must be integer" "jqin type '.balance = \"12\"'"
check "... a status the operation does not document" \
  bad status credits "status 418 is not a documented response" "sed -i '1s/ 200 / 418 /' status.headers"
check "... a JSON answer with another Content-Type" \
  bad ctype credits 'Content-Type "text/plain" is not one of application/json' \
  "sed -i 's#^[Cc]ontent-[Tt]ype: .*#Content-Type: text/plain\r#' ctype.headers"
check "... a response without X-Request-Id" \
  bad norid credits "no X-Request-Id header" "sed -i '/^[Xx]-[Rr]equest-[Ii]d:/d' norid.headers"
check "... an error whose request_id is not its X-Request-Id" \
  bad rid nojob "error.request_id \"other\" is not the X-Request-Id" "jqin rid '.error.request_id = \"other\"'"
check "... an error not in the error shape" \
  bad eshape nojob "/error must have required property 'code'" "jqin eshape 'del(.error.code)'"
check "... a 405 whose Allow is not the path's methods" \
  bad allow put "Allow: GET, POST but the document lists GET" "sed -i 's#^[Aa]llow: .*#Allow: GET, POST\r#' allow.headers"
check "... an unknown path answered 200" \
  bad nopath200 nopath "is in no path of the document, yet the answer is 200" "sed -i '1s/ 404 / 200 /' nopath200.headers"
check "... a 429 without its Retry-After" \
  bad retry nojob "the required header Retry-After is missing" \
  "sed -i '1s/ 404 / 429 /' retry.headers; sed -i 's#^GET /v1/jobs/[^ ]*#POST /v1/jobs#' retry.req"
check "... an event whose job is not a Job" \
  bad event events 'event job id [0-9]*: /kind must be equal to one of the allowed values' \
  "sed -i '0,/^data: /s/\"kind\": *\"storyboard\"/\"kind\": \"movie\"/' event.body"
check "... an event the stream does not document" \
  bad evname events 'event "jobs" is not one of x-event-data' "sed -i '0,/^event: job/s//event: jobs/' evname.body"

finish
