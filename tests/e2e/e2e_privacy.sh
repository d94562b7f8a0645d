#!/usr/bin/env bash
# End to end: privacy rights (SPEC §7, docs/privacy.md) over HTTP, on a
# mini stack of its own (mini_stack.bash, Redis db 12) with one worker.
#
# - GET /v1/me/export: one JSON document (attachment genq-export.json)
#   with the account, every job, ledger row, upload, asset (whose URL
#   downloads the bytes), webhook delivery and API key (never its hash) of
#   the caller, and nothing of anyone else's.
# - A user with 2000 jobs: the export streams every one of them while the
#   API's resident memory stays bounded (measured and printed).
# - DELETE /v1/me: 202 {deleted_at, purge_after}; the running job is
#   canceled as any cancel is (its started Luma generation charged, nothing
#   left held); the user's API keys are revoked; new jobs and uploads are
#   refused; another user is unaffected; the deleted user's token is
#   refused at once.
# - genqctl sweep --now +29d purges nothing; --now +31d purges the user's
#   rows and stored files (a tombstone stays), nothing of another user's;
#   --now +731d folds the ledger: balances unchanged, genqctl audit clean.
#
# Needs what mini_stack.bash needs (scripts/test sets it).
# shellcheck disable=SC2016,SC2034 # $names in single quotes: jq's, or eval's
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" privacy 12

# a slow video ("provsim:slow" × 10) stays running while the user deletes
export PROVSIM_LUMA_VIDEO_MS=3000 PROVSIM_OPENAI_LATENCY_MS=50
# the worker sweeps every second (its steps at the real time: only the
# canceled video's keyframe upload is due)
export GENQ_SWEEP_INTERVAL_MS=1000
# ASan keeps freed memory in quarantine (256 MiB by default), which would
# make any streamed response look like one held whole: keep it at 1 MiB,
# so the API's RSS shows what it really holds.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1
mini_stack_start
API_PID=${SERVICES[1]}
start_worker worker

token() { "$GENQCTL" token --user "$1" | tr -d '[:space:]'; }
mini_stack_user 200
ANA=$USER_ID ANA_T=$TOKEN
BOB=e2e-privacy-bob-$RUN
check "genqctl grants bob 50 credits" "$GENQCTL" credits grant "$BOB" 50 --key "e2e:$BOB"
BOB_T=$(token "$BOB")

base64 -d >"$TMP/face.png" <<<'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
upload() { # TOKEN FILE TYPE → STATUS, BODY
  STATUS=$(curl -sS --max-time 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
    -H "Authorization: Bearer $1" -H "Content-Type: $3" --data-binary "@$2" "$API/v1/uploads") &&
    api_record POST /v1/uploads
  BODY=$(cat "$TMP/body")
}
submit() { # TOKEN JOB-JSON → JOB (its id)
  req POST /v1/jobs "$1" "$2"
  JOB=$(jq -r '.id // empty' <<<"$BODY")
  status_is 202
}

# --- ana's things: an upload, two finished jobs, a running one ---------------
upload "$ANA_T" "$TMP/face.png" image/png
check "ana uploads a PNG" status_is 201
ANA_UP=$(jq -r '.id // empty' <<<"$BODY")
check "ana submits an image job" submit "$ANA_T" '{"kind":"image","input":{"prompt":"a red bell","aspect_ratio":"1:1"}}'
ANA_IMG=$JOB
check "ana's image job succeeds" eval 'poll_job "$ANA_T" "$ANA_IMG" && jqt ".status == \"succeeded\" and (.output.assets | length == 1)"'
ANA_ASSET=$(jq -r '.output.assets[0].id // empty' <<<"$BODY")
check "ana submits a storyboard" submit "$ANA_T" '{"kind":"storyboard","input":{"prompt":"a bakery ad","scenes":3}}'
ANA_SB=$JOB
check "ana's storyboard succeeds" eval 'poll_job "$ANA_T" "$ANA_SB" && jqt ".status == \"succeeded\""'
check "ana submits a slow video, her PNG its keyframe" submit "$ANA_T" \
  "$(jq -nc --arg k "$ANA_UP" '{kind:"video",input:{prompt:"provsim:slow waves",duration:"5s",keyframe_upload_id:$k}}')"
ANA_VID=$JOB
running() {
  local i
  for ((i = 0; i < 100; i++)); do
    req GET "/v1/jobs/$ANA_VID" "$ANA_T"
    jqt '.status == "running" and ([.steps[] | select(.provider_ref != null)] | length == 1)' && return 0
    sleep 0.2
  done
  return 1
}
check "ana's video is generating" running
# an API key row (the keys' endpoints are another part of genq): exported
# without its hash, revoked by the deletion
psql_db -c "insert into api_keys (id, user_id, name, hash, prefix) values
  (genq_uuid7(), '$ANA', 'ci', sha256('gq_e2e_$RUN'::bytea), 'gq_e2e')" >/dev/null
req GET /v1/credits "$ANA_T"
ANA_CREDITS=$BODY
check "before deletion ana's video price (10) is held" jqt '.held == 10'
ANA_BALANCE=$(jq -r .balance <<<"$ANA_CREDITS")

# --- bob's things -----------------------------------------------------------------
upload "$BOB_T" "$TMP/face.png" image/png
check "bob uploads a PNG" status_is 201
check "bob submits an image job" submit "$BOB_T" '{"kind":"image","input":{"prompt":"a blue bell","aspect_ratio":"1:1"}}'
BOB_IMG=$JOB
check "bob's image job succeeds" eval 'poll_job "$BOB_T" "$BOB_IMG" && jqt ".status == \"succeeded\""'
BOB_ASSET=$(jq -r '.output.assets[0].id // empty' <<<"$BODY")
req GET /v1/credits "$BOB_T"
BOB_CREDITS=$BODY

# --- the export -------------------------------------------------------------------
export_of() { # TOKEN [CURL ARGS] → STATUS, $TMP/export.json
  local tok=$1
  shift
  STATUS=$(curl -sS --max-time 120 -o "$TMP/export.json" -D "$TMP/headers" -w '%{http_code}' \
    "$@" -H "Authorization: Bearer $tok" "$API/v1/me/export") &&
    api_record GET /v1/me/export "$TMP/headers" "$TMP/export.json"
  BODY=$(head -c 2000 "$TMP/export.json")
}
ej() { jq -e "$@" "$TMP/export.json" >/dev/null 2>&1; }
export_of "$ANA_T"
check "GET /v1/me/export is 200 application/json" eval 'status_is 200 && tr -d "\r" <"$TMP/headers" | grep -qi "^content-type: application/json"'
check "... as an attachment genq-export.json" header_is Content-Disposition 'attachment; filename="genq-export.json"'
check "... one valid JSON document" ej 'type == "object"'
check "account: ana's id, credits and plan" ej --arg u "$ANA" --argjson c "$ANA_CREDITS" \
  '.account | .user_id == $u and .balance == $c.balance and .held == $c.held and .available == $c.available and .debt == 0 and (.plan | type == "string") and (.created_at | type == "string") and .deleted_at == null'
check "jobs: ana's three, as genq's job objects, none of bob's" ej --arg a "$ANA_IMG" --arg b "$ANA_SB" --arg c "$ANA_VID" \
  '(.jobs | map(.id) | sort) == ([$a, $b, $c] | sort) and all(.jobs[]; has("cost") and has("steps") and has("status"))'
check "ledger: every row of ana's (grant, holds, captures), nothing else" ej --argjson n "$(psql_db -c "select count(*) from ledger where user_id = '$ANA'")" \
  '(.ledger | length) == $n and ([.ledger[].movement] | index("grant") != null) and ([.ledger[].movement] | index("capture") != null)'
check "uploads: ana's PNG with its metadata" ej --arg u "$ANA_UP" \
  '(.uploads | map(.id)) == [$u] and .uploads[0].content_type == "image/png" and .uploads[0].bytes > 0 and (.uploads[0].sha256 | length == 64)'
check "assets: ana's image, with its URL" ej --arg a "$ANA_ASSET" \
  '(.assets | map(.id)) == [$a] and .assets[0].url == "/v1/assets/" + $a'
assets_fetch() {
  local url code
  for url in $(jq -r '.assets[].url' "$TMP/export.json"); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ANA_T" "$API$url")
    [[ $code == 200 ]] || return 1
  done
}
check "every exported asset URL downloads (200)" assets_fetch
check "webhook_deliveries: an array (none asked for)" ej '.webhook_deliveries == []'
check "api_keys: ana's key, its prefix and never its hash" ej \
  '(.api_keys | length) == 1 and .api_keys[0].prefix == "gq_e2e" and .api_keys[0].revoked_at == null and ([.. | objects | has("hash")] | any | not)'
check "nothing of bob's anywhere in it" eval '! grep -qF -e "$BOB" -e "$BOB_IMG" -e "$BOB_ASSET" "$TMP/export.json"'
req GET /v1/me/export -
check "the export without a token is 401" error_is 401 '*'
req POST /v1/me/export "$ANA_T" '{}'
check "POST /v1/me/export is 405" error_is 405 method_not_allowed

# --- a user with 2000 jobs: streamed, bounded ------------------------------------
CARL=e2e-privacy-carl-$RUN
N=2000
PROMPT=$(head -c 3000 /dev/zero | tr '\0' 'p')
# submitted and canceled at once: no worker runs them
psql_db -c "select genq_grant('$CARL', 100000, 'e2e:$CARL', 'e2e');
  select genq_limits_user_plan('$CARL', 'unlimited');
  do \$\$ declare j jsonb; begin for i in 1 .. $N loop
    select s.job into j from genq_submit_job('$CARL', 'storyboard',
      jsonb_build_object('prompt', '$PROMPT ' || i, 'scenes', 3), null, null, null, 1) s;
    perform genq_job_cancel('$CARL', (j ->> 'id')::uuid);
  end loop; end \$\$" >/dev/null
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$API_PID/status"; }
RSS0=$(rss_kb)
(
  peak=0
  while :; do
    r=$(rss_kb) || break
    ((r > peak)) && peak=$r && echo "$peak" >"$TMP/rss.peak"
    sleep 0.05
  done
) &
SAMPLER=$!
# a client that reads slowly: the API must wait for it, not buffer for it
export_of "$(token "$CARL")" --limit-rate 1M
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
PEAK=$(cat "$TMP/rss.peak" 2>/dev/null || echo "$RSS0")
DOC_KB=$(($(stat -c %s "$TMP/export.json") / 1024))
GROWTH=$((PEAK - RSS0))
echo "       export of $N jobs: ${DOC_KB} KiB sent; API RSS ${RSS0} KiB before, peak ${PEAK} KiB (+${GROWTH} KiB)"
check "the $N-job export is 200 and holds every job" eval 'status_is 200 && ej --argjson n $N "(.jobs | length) == \$n and (.jobs | map(.id) | unique | length) == \$n"'
check "... and the API's RSS grew by less than a third of the document (${GROWTH} KiB of ${DOC_KB} KiB)" \
  [ "$GROWTH" -lt $((DOC_KB / 3)) ]

# a client that leaves in the middle: the stream ends, nothing leaks (the
# sanitizer checks at the end), the next export is whole
curl -sS -o /dev/null --limit-rate 100K --max-time 1 -H "Authorization: Bearer $(token "$CARL")" \
  "$API/v1/me/export" 2>/dev/null
export_of "$(token "$CARL")"
check "after a client left mid-export, the next export is whole" \
  eval 'status_is 200 && ej --argjson n $N "(.jobs | length) == \$n and (.api_keys == [])"'

# --- DELETE /v1/me ---------------------------------------------------------------
req DELETE /v1/me "$ANA_T"
check "DELETE /v1/me is 202 {deleted_at, purge_after 30 days later}" eval 'status_is 202 && jqt "(.deleted_at | type == \"string\") and ((.purge_after | sub(\"\\\\.[0-9]+Z$\"; \"Z\") | fromdate) - (.deleted_at | sub(\"\\\\.[0-9]+Z$\"; \"Z\") | fromdate) == 2592000)"'
DELETED=$BODY
check "... naming the running video as canceled, one key revoked" jqt '.canceled == [$v] and .keys_revoked == 1' --arg v "$ANA_VID"
ctl_json() { "$GENQCTL" "$@" --json 2>/dev/null; }
# Its Luma generation had been created (provider_ref): like any cancel, the
# deletion's cancel charges that step (README "Usage, idempotency and cancels").
check "the video is canceled, holds nothing and paid its started generation (genqctl jobs show)" eval \
  'ctl_json jobs show "$ANA_VID" | jq -e ".status == \"canceled\" and .cost.held == 0 and .cost.captured == 10 and .cost.released == 0" >/dev/null'
check "ana holds nothing, her balance less the started video's 10 (genqctl credits show)" eval \
  'ctl_json credits show "$ANA" | jq -e --argjson b "$ANA_BALANCE" ".held == 0 and .balance == \$b - 10" >/dev/null'
check "ana's API key is revoked" eval '[ "$(psql_db -c "select count(*) from api_keys where user_id = '\''$ANA'\'' and revoked_at is null")" = 0 ]'
req GET /v1/credits "$ANA_T"
# refused at once: api_auth_user_deleted (api/access.c)
check "the deleted user's token is refused at once (401)" error_is 401 '*'
req DELETE /v1/me "$ANA_T"
check "a second DELETE changes nothing (refused, or the same deleted_at)" eval \
  'error_is 401 "*" || (status_is 202 && jqt ".deleted_at == \$d.deleted_at and .canceled == []" --argjson d "$DELETED")'
req POST /v1/jobs "$ANA_T" '{"kind":"storyboard","input":{"prompt":"again","scenes":3}}'
check "a new job of the deleted user is refused 401" error_is 401 '*'
upload "$ANA_T" "$TMP/face.png" image/png
check "a new upload of the deleted user is refused 401" status_is 401
check "nothing was created for her after the deletion" eval \
  '[ "$(psql_db -c "select count(*) from jobs where user_id = '\''$ANA'\''") $(psql_db -c "select count(*) from uploads where user_id = '\''$ANA'\''")" = "3 1" ]'
req GET /v1/credits "$BOB_T"
check "bob is unaffected: his credits" eval 'status_is 200 && [ "$BODY" = "$BOB_CREDITS" ]'
req GET "/v1/jobs/$BOB_IMG" "$BOB_T"
check "... and his job" eval 'status_is 200 && jqt ".status == \"succeeded\""'
check "the books are clean after the deletion (genqctl audit)" eval '"$GENQCTL" audit >/dev/null'
gone_file() { # PATH: gone within 10 s
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -e $1 ]] || return 0
    sleep 0.2
  done
  return 1
}
check "the worker's sweep deletes the canceled video's keyframe bytes" gone_file "$STATE/storage/uploads/$ANA_UP"
check "... and no sweep step failed in the worker" eval '! grep -q "sweep step failed" "$STATE/logs/worker.log" && grep -q "\"step\":\"uploads\"" "$STATE/logs/worker.log"'

# --- the sweep ---------------------------------------------------------------------
ana_rows() {
  psql_db -c "select (select count(*) from jobs where user_id = '$ANA') + (select count(*) from uploads where user_id = '$ANA')
    + (select count(*) from assets where user_id = '$ANA') + (select count(*) from api_keys where user_id = '$ANA')
    + (select count(*) from job_steps s join jobs j on j.id = s.job_id where j.user_id = '$ANA')"
}
ls "$STATE/storage/assets" >"$TMP/assets.before" 2>/dev/null
check "ana's and bob's asset files are stored" eval 'grep -qx "$ANA_ASSET" "$TMP/assets.before" && grep -qx "$BOB_ASSET" "$TMP/assets.before"'
swj() { jq -e "$1" <<<"$SW" >/dev/null; } # the last sweep's report holds EXPR
SW=$("$GENQCTL" sweep --now +29d --json)
echo "       sweep +29d: $SW"
check "genqctl sweep --now +29d purges no account" swj '.ok and .steps.accounts == 0'
check "... ana's rows and asset file are still there" eval '[ "$(ana_rows)" -gt 0 ] && [ -e "$STATE/storage/assets/$ANA_ASSET" ]'
SW=$("$GENQCTL" sweep --now +31d --json)
echo "       sweep +31d: $SW"
check "genqctl sweep --now +31d purges ana's account" swj '.ok and .steps.accounts == 1 and .storage_deleted >= 1 and .storage_failed == 0'
check "... her jobs, steps, uploads, assets and keys are gone" eval '[ "$(ana_rows)" = 0 ]'
check "... her stored files are gone" eval '[ ! -e "$STATE/storage/assets/$ANA_ASSET" ] && [ ! -e "$STATE/storage/uploads/$ANA_UP" ]'
check "... a tombstone stays: deleted_at and purged_at set" eval \
  '[ "$(psql_db -c "select deleted_at is not null and purged_at is not null from accounts where user_id = '\''$ANA'\''")" = t ]'
check "... bob's job and asset file are still there" eval \
  '[ -e "$STATE/storage/assets/$BOB_ASSET" ] && [ "$(psql_db -c "select count(*) from jobs where user_id = '\''$BOB'\''")" = 1 ]'
check "... and bob still downloads it" eval '[ "$(curl -sS -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $BOB_T" "$API/v1/assets/$BOB_ASSET")" = 200 ]'
check "the books are clean after the purge (genqctl audit)" eval '"$GENQCTL" audit >/dev/null'
SW=$("$GENQCTL" sweep --now +731d --json)
echo "       sweep +731d: $SW"
check "genqctl sweep --now +731d folds the ledger" swj '.ok and .steps.ledger > 0'
check "... into one carry row per account" eval \
  '[ "$(psql_db -c "select count(*) = count(distinct user_id) and count(*) > 0 from ledger where movement = '\''carry'\''")" = t ]'
req GET /v1/credits "$BOB_T"
check "... bob's credits unchanged" eval 'status_is 200 && [ "$BODY" = "$BOB_CREDITS" ]'
check "the books are clean after the fold (genqctl audit)" eval '"$GENQCTL" audit >/dev/null'
check "a second sweep finds nothing more to purge or fold" eval \
  '"$GENQCTL" sweep --now +731d --json | jq -e ".steps.accounts == 0 and .steps.ledger == 0" >/dev/null'

mini_stack_stop
finish
