#!/usr/bin/env bash
# End to end: many concurrent POST /v1/jobs, which the API sends to
# PostgreSQL in batches (api/submit_batch.c, genq_submit_jobs), each client
# getting its own answer: its own job (its own prompt, a distinct id), its
# own 402 when its user's credits ran out (exactly as many accepted as the
# credits pay for), its own 400 naming the input field, one job for many
# submissions under one Idempotency-Key, and a clean audit.
# shellcheck disable=SC2016 # $names in single quotes are jq variables
set -uo pipefail

. "$(dirname "$0")/helpers.bash"

RUN=$$-$RANDOM
RICH=e2e-rich-$RUN POOR=e2e-poor-$RUN BROKE=e2e-broke-$RUN KEYED=e2e-keyed-$RUN
check "genqctl grants rich 40 credits" "$GENQCTL" credits grant "$RICH" 40 --key "e2e:$RICH"
check "genqctl grants poor 3 credits" "$GENQCTL" credits grant "$POOR" 3 --key "e2e:$POOR"
check "genqctl grants keyed 5 credits" "$GENQCTL" credits grant "$KEYED" 5 --key "e2e:$KEYED"
token() { "$GENQCTL" token --user "$1" | tr -d '[:space:]'; }
T_RICH=$(token "$RICH") T_POOR=$(token "$POOR") T_BROKE=$(token "$BROKE") T_KEYED=$(token "$KEYED")

# one curl config entry per request: its answer in $TMP/r-<n>.body (headers
# in r-<n>.headers), its status on stdout as "<n> <status>"
N=0
add() { # TOKEN BODY [IDEMPOTENCY-KEY]
  N=$((N + 1))
  ((N > 1)) && echo next
  printf 'url = "%s/v1/jobs"\nheader = "Authorization: Bearer %s"\n' "$API" "$1"
  printf 'header = "Content-Type: application/json"\n'
  [[ -n ${3:-} ]] && printf 'header = "Idempotency-Key: %s"\n' "$3"
  printf 'data = "%s"\n' "${2//\"/\\\"}"
  printf 'output = "%s/r-%d.body"\ndump-header = "%s/r-%d.headers"\n' "$TMP" "$N" "$TMP" "$N"
  printf 'write-out = "%d %%{http_code}\\n"\nsilent\nshow-error\n' "$N"
}
sb() { printf '{"kind":"storyboard","input":{"prompt":"%s","scenes":1}}' "$1"; }
KEYED_BODY=$(sb "keyed once")
{
  # interleaved, so that batches mix users and outcomes
  for i in $(seq 1 30); do
    add "$T_RICH" "$(sb "rich $i")"
    ((i <= 8)) && add "$T_POOR" "$(sb "poor $i")"
    ((i <= 4)) && add "$T_BROKE" "$(sb "broke $i")"
    ((i <= 10)) && add "$T_KEYED" "$KEYED_BODY" "one-key-$RUN"
    ((i == 15)) && add "$T_RICH" \
      '{"kind":"lipsync","input":{"image_upload_id":"00000000-0000-4000-8000-000000000000","audio_upload_id":"00000000-0000-4000-8000-000000000001"}}'
  done
} >"$TMP/batch.curl"
curl -Z --parallel-max 48 -K "$TMP/batch.curl" >"$TMP/codes" 2>"$TMP/curl.err"
check "every request was answered" [ "$(wc -l <"$TMP/codes")" -eq "$(grep -c '^url' "$TMP/batch.curl")" ]
while read -r n code; do
  [[ $code =~ ^[1-5][0-9]{2}$ ]] && api_record POST /v1/jobs "$TMP/r-$n.headers" "$TMP/r-$n.body"
done <"$TMP/codes"

# the n-th entry's prompt, as sent, from the config
sent_prompt() { awk -v n="$1" '/^url/ {i++} i == n && /^data/ {print; exit}' "$TMP/batch.curl" | sed -E 's/.*prompt\\":\\"([^\\]*)\\".*/\1/'; }
rich_ids="" rich_ok=0 rich_own=0 poor_ok=0 poor_402=0 broke_402=0 bad_400=0 keyed_ids="" other=""
while read -r n code; do
  body=$TMP/r-$n.body
  prompt=$(sent_prompt "$n")
  case $prompt in
  rich*)
    [[ $code == 202 ]] && rich_ok=$((rich_ok + 1))
    [[ $code == 202 ]] && jq -e --arg p "$prompt" '.input.prompt == $p and .status == "queued"' "$body" >/dev/null &&
      rich_own=$((rich_own + 1))
    rich_ids+="$(jq -r '.id // empty' "$body" 2>/dev/null) "
    ;;
  poor*)
    if [[ $code == 202 ]]; then poor_ok=$((poor_ok + 1)); fi
    if [[ $code == 402 ]] && jq -e '.error.code == "insufficient_credits"' "$body" >/dev/null; then
      poor_402=$((poor_402 + 1))
    fi
    ;;
  broke*)
    [[ $code == 402 ]] && broke_402=$((broke_402 + 1))
    ;;
  "keyed once")
    if [[ $code == 202 || $code == 200 ]]; then
      keyed_ids+="$(jq -r .id "$body") "
    else
      other+="keyed:$code "
    fi
    ;;
  *)
    if [[ $code == 400 ]] && jq -e '.error.code == "invalid_input" and (.error.message | startswith("input.image_upload_id"))' "$body" >/dev/null; then
      bad_400=$((bad_400 + 1))
    else
      other+="$n:$code "
    fi
    ;;
  esac
done <"$TMP/codes"
check "30 submits of rich: all 202" [ "$rich_ok" -eq 30 ]
check "each of rich's answers is its own job (its prompt, queued)" [ "$rich_own" -eq 30 ]
check "each of rich's answers has a distinct id" \
  [ "$(tr ' ' '\n' <<<"$rich_ids" | sed '/^$/d' | sort -u | wc -l)" -eq 30 ]
check "poor (3 credits): exactly 3 of 8 accepted, the other 5 are 402" [ "$poor_ok:$poor_402" = 3:5 ]
check "broke (no credits): all 4 are 402" [ "$broke_402" -eq 4 ]
check "the lip-sync naming an unknown upload is 400 naming input.image_upload_id" [ "$bad_400" -eq 1 ]
check "10 submits under one Idempotency-Key: one job" \
  [ "$(wc -w <<<"$keyed_ids"):$(tr ' ' '\n' <<<"$keyed_ids" | sed '/^$/d' | sort -u | wc -l)" = 10:1 ]
check "nothing else came back ($other)" [ -z "$other" ]

req GET /v1/jobs?limit=100 "$T_KEYED"
check "keyed has exactly one job" jqt '.data | length == 1'
REQ_HEADERS=(-H "Idempotency-Key: one-key-$RUN")
req POST /v1/jobs "$T_KEYED" "$(sb "another body")"
# shellcheck disable=SC2034 # read by req (helpers.bash)
REQ_HEADERS=()
check "the key with another body afterwards is 409" error_is 409 idempotency_conflict
req GET /v1/jobs?limit=100 "$T_POOR"
check "poor has exactly 3 jobs" jqt '.data | length == 3'
req GET /v1/credits "$T_BROKE"
check "broke's account exists and holds nothing" jqt '.held == 0 and .balance == 0'

check "genqctl audit finds no violation" "$GENQCTL" audit
finish
