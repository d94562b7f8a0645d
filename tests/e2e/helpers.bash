# Shared by the tests/e2e/*.sh scripts (sourced, not run): the request,
# check and polling helpers. Needs GENQ_API_URL and GENQCTL.
# shellcheck shell=bash disable=SC2016,SC2034
: "${GENQ_API_URL:?GENQ_API_URL must be set}" "${GENQCTL:?GENQCTL must be set}"
API=${GENQ_API_URL%/}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

PASSED=0 FAILED=0
check() {
  local name=$1
  shift
  if "$@"; then
    PASSED=$((PASSED + 1))
    echo "ok   - $name"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL - $name"
    echo "       last response: HTTP $STATUS $(head -c 600 "$TMP/body" 2>/dev/null)"
  fi
}

# api_record METHOD PATH [HEADERS [BODY]]: with GENQ_API_RECORD set (scripts/test
# sets it to a folder of its state), keeps one exchange with genq-api for
# tests/openapi/validate.mjs, which checks every kept response against
# api/openapi.yaml once every e2e script ran: the method, the raw PATH (its
# query included; a full URL is cut to its path), the response's headers as
# curl -D wrote them (default $TMP/headers) and its body (default
# $TMP/body). req calls it; so does any test with a curl of its own to
# genq-api, after the curl succeeded. The .req file is written last: the
# validator reads only complete exchanges.
API_RECORDS=0
api_record() {
  [[ -n ${GENQ_API_RECORD:-} && -s ${3:-$TMP/headers} ]] || return 0 # no answer: nothing to check
  local p=$2 f=${0##*/}
  [[ $p == *://* ]] && p=/${p#*://*/}
  API_RECORDS=$((API_RECORDS + 1))
  f=$GENQ_API_RECORD/${f%.sh}-$BASHPID-$API_RECORDS
  cp "${3:-$TMP/headers}" "$f.headers" && cp "${4:-$TMP/body}" "$f.body" &&
    printf '%s %s\n' "$1" "$p" >"$f.req"
}

# req METHOD PATH TOKEN [BODY]: sets STATUS and BODY; TOKEN "-" sends no
# Authorization; METHOD HEAD reads no body. Counts responses without an
# X-Request-Id header; records the exchange (api_record).
STATUS="" BODY="" RESPONSES=0 NO_REQUEST_ID=0
REQ_HEADERS=()
req() {
  local method=$1 path=$2 token=$3 args=(-X "$1")
  [[ $method == HEAD ]] && args=(--head) # curl -X HEAD would wait for a body
  [[ $token != - ]] && args+=(-H "Authorization: Bearer $token")
  args+=("${REQ_HEADERS[@]}") # extra curl arguments for this request, if set
  (($# > 3)) && args+=(-H 'Content-Type: application/json' --data-binary "$4")
  : >"$TMP/body"
  : >"$TMP/headers"
  if STATUS=$(curl -sS --max-time 10 -o "$TMP/body" -D "$TMP/headers" \
    -w '%{http_code}' "${args[@]}" "$API$path" 2>"$TMP/curl.err"); then
    [[ $method == HEAD ]] && : >"$TMP/body" # --head writes the headers there too
    api_record "$method" "$path"
  else
    STATUS="curl-error: $(cat "$TMP/curl.err")"
  fi
  BODY=$(cat "$TMP/body")
  RESPONSES=$((RESPONSES + 1))
  if ! grep -qiE '^x-request-id: *[^[:space:]]+' "$TMP/headers"; then
    NO_REQUEST_ID=$((NO_REQUEST_ID + 1))
    echo "       (no X-Request-Id on $method $path)"
  fi
}

# jqt EXPR [jq args...]: true when EXPR holds for the last response body.
# Through `input`: with an empty body plain `jq -e` would exit 0.
jqt() {
  local expr=$1
  shift
  jq -n -e "$@" "input | ($expr)" <<<"$BODY" >/dev/null 2>&1
}
status_is() { [[ $STATUS == "$1" ]]; }
# error_is STATUS CODE: the error shape of every failure,
# {"error":{"code","message","request_id"}}; CODE "*" accepts any code.
error_is() {
  status_is "$1" && jqt '(.error.code | type == "string" and ($c == "*" or . == $c)) and (.error.message | type == "string")
    and (.error.request_id | type == "string" and length > 0)' --arg c "$2"
}

# header_is NAME VALUE: the last response had that header with that value.
header_is() { tr -d '\r' <"$TMP/headers" | grep -qixF "$1: $2"; }

# poll_job TOKEN ID: GET every 0.2 s, up to 60 s, until the job is terminal.
poll_job() {
  local i
  [[ -n $2 ]] || return 1 # no job was created: nothing to wait for
  for ((i = 0; i < 300; i++)); do
    req GET "/v1/jobs/$2" "$1"
    if status_is 200 && jqt '.status | IN("succeeded", "failed", "canceled")'; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# sign_claims JSON: a token of those claims, signed RS256 with the stack's
# dev key (GENQ_DEV_JWT_PRIVATE_KEY), as Clerk would sign it.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
sign_claims() {
  local signed
  signed="$(printf '{"alg":"RS256","typ":"JWT"}' | b64url).$(printf '%s' "$1" | b64url)"
  printf '%s.%s' "$signed" \
    "$(printf '%s' "$signed" | openssl dgst -sha256 -sign "$GENQ_DEV_JWT_PRIVATE_KEY" | b64url)"
}

credits_are() { # TOKEN BALANCE HELD
  req GET /v1/credits "$1"
  status_is 200 && jqt '.balance == $b and .held == $h and .available == $b - $h' \
    --argjson b "$2" --argjson h "$3"
}

# finish: the summary line scripts/test reads, and the exit status.
finish() {
  if ((RESPONSES > 0)); then
    check "every response carried X-Request-Id ($RESPONSES responses)" [ "$NO_REQUEST_ID" -eq 0 ]
  fi
  echo "e2e-summary: passed=$PASSED failed=$FAILED"
  ((FAILED == 0))
}
