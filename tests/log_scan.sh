#!/usr/bin/env bash
# tests/log_scan.sh DIR... — fails when a genq service log under DIR (api*.log,
# worker*.log, recursively) holds a credential (SPEC §7: tokens, API keys,
# secrets and signatures never appear in logs). Looks for the shapes of
# every credential genq handles — a JWT (three base64url parts, the first a
# JSON header), a genq API key (gq_…), a webhook secret (whsec_…), a Stripe
# signature (v1=<64 hex>), a Standard Webhooks signature (v1,<base64>),
# a Stripe key (sk_live_/sk_test_/rk_) — and for the literal values of the
# secrets in the environment (every *_KEY, *_SECRET, *_SECRET_KEY variable
# of 8 characters or more but the public CLERK_JWT_KEY).
#
# tests/log_scan.sh --self-test plants each shape in a temporary log and
# checks that each one is found, so the scan cannot pass by matching nothing.
set -euo pipefail

PATTERNS=(
  'eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}'
  'gq_[A-Za-z0-9]{16,}'
  'whsec_[A-Za-z0-9+/=]{16,}'
  'v1=[0-9a-f]{64}'
  'v1,[A-Za-z0-9+/]{40,}={0,2}'
  '(sk_live|sk_test|rk_live|rk_test)_[A-Za-z0-9]{8,}'
)

# scan DIR...: prints every offending file:line (the match itself masked) and
# returns 1 when there is any.
scan() {
  local files=() bad=0 p name v
  mapfile -t files < <(find "$@" -type f \( -name 'api*.log' -o -name 'worker*.log' \) 2>/dev/null)
  ((${#files[@]})) || {
    echo "log_scan: no service logs under $*" >&2
    return 1
  }
  local lits=()
  while read -r name; do
    case $name in
    CLERK_JWT_KEY) ;;
    *_KEY | *_SECRET | *_KEY_PREVIOUS)
      v=${!name}
      ((${#v} >= 8)) && lits+=("$v")
      ;;
    esac
  done < <(compgen -e)
  for p in "${PATTERNS[@]}"; do
    if grep -EHn -- "$p" "${files[@]}" | sed -E "s#$p#<masked>#g" | head -n 5 | grep .; then
      echo "log_scan: a credential of the shape /$p/ is in the logs above" >&2
      bad=1
    fi
  done
  for p in "${lits[@]}"; do
    if grep -FHn -- "$p" "${files[@]}" | cut -d: -f1,2 | head -n 5 | grep .; then
      echo "log_scan: the value of a secret from the environment is in the logs above" >&2
      bad=1
    fi
  done
  echo "log_scan: ${#files[@]} service logs, ${#PATTERNS[@]} credential shapes and ${#lits[@]} secret values checked" >&2
  return $bad
}

self_test() {
  local t s ok=1
  t=$(mktemp -d)
  for s in 'auth eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlc2lnbmF0dXJl' \
    'key gq_0123456789abcdef0123456789abcdef' 'secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' \
    'Stripe-Signature: t=1,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd' \
    'webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=' 'sk_test_4eC39HqLyjWDarjtT1zdp7dc' \
    "value ${GENQ_SELF_TEST_SECRET:=not-a-real-secret-value}"; do
    printf '{"msg":"request","detail":"%s"}\n' "$s" >"$t/api.log"
    if GENQ_SELF_TEST_SECRET=$GENQ_SELF_TEST_SECRET scan "$t" >/dev/null 2>&1; then
      echo "log_scan --self-test: not found: $s" >&2
      ok=0
    fi
  done
  printf '{"msg":"request","request_id":"0123456789abcdef","path":"/v1/jobs"}\n' >"$t/api.log"
  if ! scan "$t" >/dev/null 2>&1; then
    echo "log_scan --self-test: a clean log was refused" >&2
    ok=0
  fi
  rm -rf "$t"
  ((ok)) && echo "log_scan --self-test: every credential shape is found, a clean log passes" >&2
  ((ok))
}

if [[ ${1:-} == --self-test ]]; then
  self_test
else
  scan "$@"
fi
