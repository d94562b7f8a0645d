#!/usr/bin/env bash
# End to end: a Redis failover under Sentinel while jobs run (SPEC §12,
# docs/scaling.md). Its own Redis primary, a replica and three Sentinels on
# free loopback ports (down-after 1 s, failover-timeout 5 s); a mini stack
# (mini_stack.bash: the stack's PostgreSQL, genq-provsim, genq-api, two
# genq-workers) whose GENQ_REDIS_URL names the Sentinels
# (redis-sentinel://.../genq-primary/3), genqctl included.
#
# Jobs are submitted, and while some run the primary is killed with -9.
# Sentinel promotes the replica; every genq process asks the Sentinels again
# and follows it; the relay sees a new Redis (run_id) and sends every
# unfinished job again. Then:
# - every job submitted before and after the failover succeeds, each once:
#   its price captured exactly (no second capture), each Luma generation
#   created once at the simulator (no generation paid twice);
# - API and workers connected to the new primary, which holds genq's keys;
# - a Sentinel naming a replica (a stale answer) is not believed: ROLE is
#   checked and the API stays away (/readyz 503);
# - a primary demoted by hand (REPLICAOF, its clients not cut off) is left
#   at its first READONLY or UNBLOCKED answer;
# - genqctl audit is clean; every process exits 0 on SIGTERM.
#
# Needs what mini_stack.bash needs (scripts/test sets it); the Redis servers
# are its own (the stack's Redis is not used).
# shellcheck disable=SC2016,SC2034,SC2119 # $names in single quotes: jq's, or eval's; mini_stack_stop takes no script argument
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/mini_stack.bash
. "$HERE/mini_stack.bash" sentinel 9

export PROVSIM_LUMA_VIDEO_MS=6000 PROVSIM_LUMA_IMAGE_MS=1500 PROVSIM_OPENAI_LATENCY_MS=500
export GENQ_POLL_INTERVAL_MS=200 GENQ_POLL_MAX_INTERVAL_MS=500
export GENQ_LEASE_SECONDS=${GENQ_LEASE_SECONDS:-5}

# ---- Redis: a primary, a replica, three Sentinels ----------------------------------
MASTER=genq-primary RDB=3
RP="" RR="" S1="" S2="" S3=""
for v in RP RR S1 S2 S3; do genq_free_port "$v"; done
mkdir -p "$STATE"/redis/{primary,replica,s1,s2,s3}
genq_start redis-primary "$STATE/logs/redis-primary.log" redis-server --port "$RP" --bind 127.0.0.1 \
  --dir "$STATE/redis/primary" --save "" --appendonly no --daemonize no
PRIMARY_PID=$GENQ_LAST_PID
genq_wait_for "$PRIMARY_PID" 15 genq_redis_pong "$RP"
genq_start redis-replica "$STATE/logs/redis-replica.log" redis-server --port "$RR" --bind 127.0.0.1 \
  --dir "$STATE/redis/replica" --save "" --appendonly no --daemonize no --replicaof 127.0.0.1 "$RP"
REPLICA_PID=$GENQ_LAST_PID
genq_wait_for "$REPLICA_PID" 15 genq_redis_pong "$RR"
replica_linked() { redis-cli -p "$RR" info replication | grep -q '^master_link_status:up'; }
genq_wait_for "$REPLICA_PID" 20 replica_linked
for s in 1 2 3; do
  port_var=S$s
  cat >"$STATE/redis/s$s/sentinel.conf" <<EOF
port ${!port_var}
bind 127.0.0.1
daemonize no
dir $STATE/redis/s$s
sentinel monitor $MASTER 127.0.0.1 $RP 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 5000
sentinel parallel-syncs $MASTER 1
EOF
  genq_start "sentinel$s" "$STATE/logs/sentinel$s.log" redis-server "$STATE/redis/s$s/sentinel.conf" --sentinel
  eval "SPID$s=\$GENQ_LAST_PID"
done
# Each Sentinel knows the replica and the two others (hello messages every
# 2 s), so that two of them can agree and elect a leader.
sentinels_ready() {
  local p
  for p in "$S1" "$S2" "$S3"; do
    redis-cli -p "$p" sentinel ckquorum "$MASTER" 2>/dev/null | grep -q '^OK 3 usable' || return 1
    [[ $(redis-cli -p "$p" sentinel replicas "$MASTER" 2>/dev/null | grep -c '^ip$') -ge 1 ]] || return 1
  done
}
genq_wait_for "$SPID1" 40 sentinels_ready
# named_primary PORT [NAME]: the port the Sentinel at PORT names for NAME
named_primary() { redis-cli -p "$1" sentinel get-master-addr-by-name "${2:-$MASTER}" 2>/dev/null | sed -n 2p; }
check "three Sentinels watch the primary (:$RP) and its replica (:$RR)" \
  eval '[ "$(named_primary "$S1")" = "$RP" ] && [ "$(named_primary "$S3")" = "$RP" ]'

# genq sees only the Sentinels (the first one a port nothing listens on: it
# is skipped).
DEAD_PORT=""
genq_free_port DEAD_PORT
export GENQ_REDIS_URL="redis-sentinel://127.0.0.1:$DEAD_PORT,127.0.0.1:$S1,127.0.0.1:$S2,127.0.0.1:$S3/$MASTER/$RDB"
# rcli: the current primary, db RDB (mini_stack.bash's flushes use it)
rcli() { redis-cli -p "$(named_primary "$S2")" -n "$RDB" "$@"; }

mini_stack_start

# A Sentinel that names a replica (a stale answer, as during a failover):
# genq checks ROLE and does not take it for the primary. A fourth Sentinel
# watches the replica under another name; an API given only that one stays
# away from Redis (/readyz 503) and says why.
S4=""
genq_free_port S4
mkdir -p "$STATE/redis/s4"
printf 'port %s\nbind 127.0.0.1\ndaemonize no\ndir %s\nsentinel monitor stale 127.0.0.1 %s 1\n' \
  "$S4" "$STATE/redis/s4" "$RR" >"$STATE/redis/s4/sentinel.conf"
genq_start sentinel4 "$STATE/logs/sentinel4.log" redis-server "$STATE/redis/s4/sentinel.conf" --sentinel
S4_PID=$GENQ_LAST_PID
genq_wait_for "$S4_PID" 15 eval '[ "$(named_primary "$S4" stale)" = "$RR" ]'
API3_PORT=""
genq_free_port API3_PORT
genq_start api-stale "$STATE/logs/api-stale.log" env GENQ_API_LISTEN="127.0.0.1:$API3_PORT" \
  GENQ_REDIS_URL="redis-sentinel://127.0.0.1:$S4/stale/$RDB" "$BIN/genq-api"
STALE_PID=$GENQ_LAST_PID
genq_wait_for "$STALE_PID" 30 curl -fsS -o /dev/null "http://127.0.0.1:$API3_PORT/healthz"
left_replica() { grep '"redis: leaving the server"' "$STATE/logs/api-stale.log" | grep -q '"why":"slave"'; }
within() { # SECONDS CMD...: CMD true within SECONDS
  local i n=$(($1 * 5))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}
check "an API whose Sentinel names a replica checks ROLE and leaves it (\"why\":\"slave\")" within 10 left_replica
check "... it never counts as connected: /readyz is 503" \
  eval '[ "$(curl -sS -o /dev/null -w "%{http_code}" "http://127.0.0.1:$API3_PORT/readyz")" = 503 ] &&
        ! grep -q "\"redis connected\"" "$STATE/logs/api-stale.log"'
genq_stop_pid "$STALE_PID"
check "... and exits 0 on SIGTERM, no sanitizer report" \
  eval '[ "${GENQ_PID_RC[$STALE_PID]}" = 0 ] && no_sanitizer_report "$STALE_PID"'
genq_stop_pid "$S4_PID"
start_worker worker1
start_worker worker2
mini_stack_user 500
USER_ID_A=$USER_ID

P="failover $RUN"
declare -a JOBS=()
submit() { # KIND INPUT-JSON; a 503 (Redis away) is tried again, 10 s at most
  local i id
  for ((i = 0; i < 50; i++)); do
    req POST /v1/jobs "$TOKEN" "$(jq -nc --arg k "$1" --argjson i "$2" '{kind:$k,input:$i}')"
    [[ $STATUS == 503 ]] || break
    sleep 0.2
  done
  id=$(jq -r '.id // empty' <<<"$BODY" 2>/dev/null)
  [[ $STATUS == 202 && -n $id ]] || return 1
  JOBS+=("$id")
}
wave() { # N TAG: N videos, N images, N storyboards
  local i ok=0
  for ((i = 0; i < $1; i++)); do
    submit video '{"prompt":"video '"$2 $i $P"'","duration":"5s"}' && ok=$((ok + 1))
    submit image '{"prompt":"image '"$2 $i $P"'","aspect_ratio":"1:1"}' && ok=$((ok + 1))
    submit storyboard '{"prompt":"storyboard '"$2 $i $P"'","scenes":1}' && ok=$((ok + 1))
  done
  [[ $ok == $(($1 * 3)) ]]
}
check "12 jobs submitted before the failover" wave 4 before
count_status() { psql_db -c "select count(*) from jobs where user_id = '$USER_ID_A' and status = '$1'"; }
some_running() {
  local i
  for ((i = 0; i < 100; i++)); do
    (($(count_status running) >= 2)) && return 0
    sleep 0.1
  done
  return 1
}
check "jobs are running" some_running
RUNNING=$(count_status running) DONE_BEFORE=$(count_status succeeded)

# ---- the failover ---------------------------------------------------------------------
{
  kill -9 "$PRIMARY_PID"
  wait "$PRIMARY_PID"
} 2>/dev/null # no "Killed" notice
GENQ_PID_RC[$PRIMARY_PID]=137
T0=$(date +%s.%N)
echo "       primary (:$RP) killed with -9: $RUNNING jobs running, $DONE_BEFORE succeeded"
promoted() {
  local i
  for ((i = 0; i < 150; i++)); do
    [[ $(named_primary "$S1") == "$RR" && $(redis-cli -p "$RR" role 2>/dev/null | head -1) == master ]] && return 0
    sleep 0.2
  done
  return 1
}
check "Sentinel promoted the replica (:$RR)" promoted
echo "       failover took $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
# genqctl's notices (ctl/announce.c) go through the Sentinels too: a key's
# revocation is published on the new primary.
KEY=$("$GENQCTL" keys create --user "$USER_ID_A" 2>/dev/null)
KEY_ID=$("$GENQCTL" keys list --user "$USER_ID_A" --json | jq -r '.[0].id')
timeout 6 redis-cli -p "$RR" subscribe 'genq:{q}:access' >"$TMP/access.out" 2>&1 &
SUB_PID=$!
sleep 0.5
"$GENQCTL" keys revoke "$KEY_ID" >/dev/null
wait "$SUB_PID" 2>/dev/null
check "genqctl keys revoke announced it on the new primary, found through the Sentinels" \
  grep -qx "key $KEY_ID" "$TMP/access.out"
# More submissions once the replica is promoted (a 503 would be tried again).
check "6 more jobs submitted after the failover" wave 2 after

all_done() {
  local i ids
  ids=$(printf "'%s'," "${JOBS[@]}")
  for ((i = 0; i < 450; i++)); do
    [[ $(psql_db -c "select count(*) from jobs where id in (${ids%,}) and status not in ('succeeded','failed','canceled')") == 0 ]] && return 0
    sleep 0.2
  done
  return 1
}
check "every job finished (${#JOBS[@]})" all_done
check "every job succeeded" \
  eval '[ "$(count_status succeeded)" = "${#JOBS[@]}" ] && [ "$(psql_db -c "select count(*) from jobs where user_id = '\''$USER_ID_A'\''")" = "${#JOBS[@]}" ]'
all_captured() {
  local id
  for id in "${JOBS[@]}"; do
    req GET "/v1/jobs/$id" "$TOKEN"
    jqt '.status == "succeeded" and .cost.captured == .cost.price and .cost.held == 0' || return 1
  done
}
check "each job's price captured exactly, nothing held (the API's answer for each)" all_captured
check "no Luma generation paid twice: 12 creates, one per prompt" \
  eval '[ "$(sim_stats | jq "[.luma.creates_by_prompt // {} | .[]] | (length == 12 and all(. == 1))")" = true ]'

# Every process followed the Sentinels to the new primary.
followed() { grep '"redis connected"' "$1" | grep -q "\"port\":$RR"; }
for pid in "${SERVICES[@]}"; do
  name=${GENQ_PID_NAME[$pid]}
  [[ $name == provsim ]] && continue
  check "$name connected to the new primary (:$RR)" followed "${GENQ_PID_LOG[$pid]}"
done
check "the new primary holds genq's queue" eval '[ "$(redis-cli -p "$RR" -n "$RDB" exists "genq:{q}:incarnation")" = 1 ]'
check "the API answers a poll after the failover" eval 'req GET "/v1/jobs/${JOBS[0]}" "$TOKEN"; status_is 200'

# A primary demoted without its clients being cut off (REPLICAOF by hand:
# no Sentinel CLIENT KILL) answers writes with READONLY: genq leaves it at
# the first one and asks the Sentinels again. A worker (it writes at once:
# XREADGROUP) on a Redis of its own, watched by a fifth Sentinel.
SOLO="" S5=""
genq_free_port SOLO
genq_free_port S5
mkdir -p "$STATE/redis/solo" "$STATE/redis/s5"
genq_start redis-solo "$STATE/logs/redis-solo.log" redis-server --port "$SOLO" --bind 127.0.0.1 \
  --dir "$STATE/redis/solo" --save "" --appendonly no --daemonize no
SOLO_PID=$GENQ_LAST_PID
genq_wait_for "$SOLO_PID" 15 genq_redis_pong "$SOLO"
printf 'port %s\nbind 127.0.0.1\ndaemonize no\ndir %s\nsentinel monitor solo 127.0.0.1 %s 1\nsentinel down-after-milliseconds solo 60000\n' \
  "$S5" "$STATE/redis/s5" "$SOLO" >"$STATE/redis/s5/sentinel.conf"
genq_start sentinel5 "$STATE/logs/sentinel5.log" redis-server "$STATE/redis/s5/sentinel.conf" --sentinel
S5_PID=$GENQ_LAST_PID
genq_wait_for "$S5_PID" 15 eval '[ "$(named_primary "$S5" solo)" = "$SOLO" ]'
genq_start worker-solo "$STATE/logs/worker-solo.log" env GENQ_REDIS_URL="redis-sentinel://127.0.0.1:$S5/solo/$RDB" \
  "$BIN/genq-worker" --kinds storyboard
WSOLO_PID=$GENQ_LAST_PID
genq_wait_for "$WSOLO_PID" 30 grep -q "\"redis connected\".*\"port\":$SOLO" "$STATE/logs/worker-solo.log"
redis-cli -p "$SOLO" replicaof 127.0.0.1 "$RR" >/dev/null
left_readonly() { grep '"redis: leaving the server"' "$STATE/logs/worker-solo.log" | grep -q '"why":"READONLY'; }
check "a demoted primary's READONLY answer makes the worker leave it" within 10 left_readonly
left_slave() { grep '"redis: leaving the server"' "$STATE/logs/worker-solo.log" | grep -q '"why":"slave"'; }
check "... and the next connect refuses it as a replica (ROLE)" within 10 left_slave
genq_stop_pid "$WSOLO_PID"
check "... the worker exits 0 on SIGTERM, no sanitizer report" \
  eval '[ "${GENQ_PID_RC[$WSOLO_PID]}" = 0 ] && no_sanitizer_report "$WSOLO_PID"'
genq_stop_pid "$S5_PID"
genq_stop_pid "$SOLO_PID"

check "the books are clean (genqctl audit)" eval '"$GENQCTL" audit >/dev/null'
mini_stack_stop
finish
