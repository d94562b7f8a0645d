#!/usr/bin/env bash
# docker-compose.yml, the Dockerfile and the monitoring configuration,
# checked without a Docker daemon (Debian 12's docker-compose 1.29, which
# `config` needs none for; scripts/lib.sh's GENQ_TEST_DEB_PACKAGES):
#
# - `docker-compose -f docker-compose.yml config -q` accepts the file, with
#   and without the monitoring profile.
# - Every long-running service has a health check — genq-api's asks
#   /readyz, a worker's its GET /metrics, provsim's /healthz — and the
#   one-shots (keys, migrate) restart "no" and are awaited with
#   condition: service_completed_successfully by what needs them.
# - `--scale worker=N` works: the worker has no container_name and
#   publishes no host port.
# - genq-api and the worker get the variables of scripts/run's .genq/env
#   (genq_stack_env in scripts/lib.sh): a name in one and not the other
#   fails unless the allow-list below says why (and an entry no longer
#   needed fails too).
# - Every program the compose file runs is one the Dockerfile builds, from
#   folders it copies in.
# - docs/prometheus/prometheus.yml passes `promtool check config` and
#   scrapes the ports the compose file gives genq-api and the workers.
#
# Needs docker-compose, python3 with PyYAML (docker-compose's own
# dependency), promtool, jq, openssl; scripts/test sets GENQ_API_URL and
# GENQCTL for helpers.bash (nothing here talks to them).
# shellcheck disable=SC2016
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/helpers.bash
. "$HERE/helpers.bash"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

COMPOSE=$ROOT/docker-compose.yml
for tool in docker-compose python3 promtool jq; do
  command -v "$tool" >/dev/null || genq_die "$tool is missing (scripts/lib.sh installs it)"
done

# Variables of .genq/env the compose file's api and worker do not set, or
# the other way round, and why.
declare -A ALLOWED=(
  [CLERK_JWT_KEY]="genq-api's command reads it from the keys volume, where the keys service made the pair"
  [GENQ_PROVSIM_LISTEN]="only genq-provsim's: the compose file sets it on the provsim service"
  [GENQ_METRICS_LISTEN]="per worker process: scripts/run gives each worker its own port, the compose file each replica its own address"
  [GENQ_SECRETS_KEY_PREVIOUS]="empty unless a key is being rotated; scripts/run never rotates"
)

cd "$ROOT" || exit 1
check "docker-compose config -q accepts docker-compose.yml" \
  docker-compose -f "$COMPOSE" config -q
check "... with the monitoring profile too" \
  docker-compose -f "$COMPOSE" --profile monitoring config -q
docker-compose -f "$COMPOSE" --profile monitoring config 2>"$TMP/config.err" |
  python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)' >"$TMP/compose.json"
C() { jq -e "$@" "$TMP/compose.json" >/dev/null 2>&1; }
check "the resolved file has the genq services" \
  C '.services | has("redis") and has("postgres") and has("keys") and has("migrate") and has("provsim")
                 and has("api") and has("worker") and has("prometheus") and has("grafana")'

# ---- health checks and the one-shots ---------------------------------------------------
ONESHOTS="keys migrate"
check "every service but the one-shots ($ONESHOTS) has a health check" \
  C --arg o "$ONESHOTS" '[.services | to_entries[] | select((.key | IN($o | split(" ")[])) | not)
                          | select(.value.healthcheck.test == null) | .key] == []'
check "the one-shots restart no and have no health check" \
  C --arg o "$ONESHOTS" '. as $d | [$o | split(" ")[] | $d.services[.] | .restart == "no" and .healthcheck == null] | all'
check "api, worker and migrate wait for migrate, keys and the databases as they should" \
  C '.services.api.depends_on.migrate.condition == "service_completed_successfully"
     and .services.api.depends_on.keys.condition == "service_completed_successfully"
     and .services.worker.depends_on.migrate.condition == "service_completed_successfully"
     and .services.migrate.depends_on.postgres.condition == "service_healthy"
     and .services.api.depends_on.redis.condition == "service_healthy"
     and .services.worker.depends_on.redis.condition == "service_healthy"'
check "genq-api's health check asks /readyz" \
  C '.services.api.healthcheck.test | join(" ") | test("curl .*http://127.0.0.1:8080/readyz")'
check "a worker's health check asks its GET /metrics, where GENQ_METRICS_LISTEN points" \
  C '(.services.worker.environment.GENQ_METRICS_LISTEN == "0.0.0.0:9100")
     and (.services.worker.healthcheck.test | join(" ") | test("curl .*http://127.0.0.1:9100/metrics"))'
check "provsim's health check asks /healthz" \
  C '.services.provsim.healthcheck.test | join(" ") | test("http://127.0.0.1:8090/healthz")'
check "redis and postgres are asked with their own clients" \
  C '(.services.redis.healthcheck.test | index("redis-cli")) and (.services.postgres.healthcheck.test | index("pg_isready"))'

# ---- --scale worker=N ----------------------------------------------------------------------
check "the worker scales: no container_name, no host port" \
  C '.services.worker | (has("container_name") | not) and ((.ports // []) == [])'

# ---- the same variables as .genq/env ---------------------------------------------------------
mkdir -p "$TMP/keys"
genq_make_keys "$TMP/keys" >/dev/null 2>&1
genq_stack_env "$TMP" 6379 5432 genq 127.0.0.1:8080 8090 "$TMP/keys" >"$TMP/env"
grep -oE '^[A-Z][A-Z0-9_]*=' "$TMP/env" | tr -d = | sort -u >"$TMP/env.names"
jq -r '.services.api.environment, .services.worker.environment | keys[]' "$TMP/compose.json" |
  sort -u >"$TMP/compose.names"
check ".genq/env has the variables genq_stack_env writes" eval '(($(wc -l <"$TMP/env.names") >= 15))'
unexplained="" unused=""
while read -r name; do
  [[ -n ${ALLOWED[$name]:-} ]] || unexplained+="$name "
done < <(comm -3 "$TMP/env.names" "$TMP/compose.names" | tr -d '\t')
for name in "${!ALLOWED[@]}"; do
  if grep -qx "$name" "$TMP/env.names" && grep -qx "$name" "$TMP/compose.names"; then
    unused+="$name "
  fi
done
check "api and worker set .genq/env's variables, differences explained (unexplained: ${unexplained:-none})" \
  [ -z "$unexplained" ]
check "every allow-listed difference still is one (no longer needed: ${unused:-none})" [ -z "$unused" ]
for name in "${!ALLOWED[@]}"; do
  echo "       allowed: $name — ${ALLOWED[$name]}"
done

# ---- the Dockerfile builds what the compose file runs -----------------------------------------
programs=$(jq -r '.services[] | select(.image == "genq:local") | .command | if type == "array" then join(" ") else . end' \
  "$TMP/compose.json" | grep -oE '\bgenq(-api|-worker|-provsim|ctl)\b' | sort -u | tr '\n' ' ')
not_built=""
for p in $programs; do
  grep -qE -- "--target .*\\b$p\\b" "$ROOT/Dockerfile" || not_built+="$p "
  grep -qE "COPY --from=build .*/build/$p\\b" "$ROOT/Dockerfile" || not_built+="$p(copy) "
done
check "the Dockerfile builds and installs every program the compose file runs (${programs% }; missing: ${not_built:-none})" \
  eval '[[ -n $programs && -z $not_built ]]'
dirs_missing=""
for d in common schema api worker provsim ctl cmake; do
  grep -qE "^COPY $d $d\$" "$ROOT/Dockerfile" || dirs_missing+="$d "
done
check "the Dockerfile copies every source folder the build needs (missing: ${dirs_missing:-none})" \
  [ -z "$dirs_missing" ]
check "the Dockerfile's runtime has curl (the health checks) and exposes 8080 and 9100" \
  eval 'grep -q "ca-certificates curl openssl" "$ROOT/Dockerfile" && grep -qE "^EXPOSE 8080 9100$" "$ROOT/Dockerfile"'

# ---- Prometheus' configuration ----------------------------------------------------------------
check "promtool check config accepts docs/prometheus/prometheus.yml" \
  promtool check config "$ROOT/docs/prometheus/prometheus.yml"
check "it scrapes api:8080 and every worker replica at 9100 (DNS of the worker service)" \
  eval 'grep -q "targets: \[\"api:8080\"\]" "$ROOT/docs/prometheus/prometheus.yml" &&
        grep -q "names: \[\"worker\"\]" "$ROOT/docs/prometheus/prometheus.yml" &&
        grep -q "port: 9100" "$ROOT/docs/prometheus/prometheus.yml"'
check "Grafana gets the dashboard and the config files the compose file mounts exist" \
  eval 'C "[.services.grafana.volumes[] | if type == \"string\" then . else .source end
            | select(test(\"/docs/grafana/(provisioning|genq.json)\"))] | length == 2" &&
        [ -f "$ROOT/docs/grafana/genq.json" ] && [ -d "$ROOT/docs/grafana/provisioning/dashboards" ] &&
        [ -f "$ROOT/docs/grafana/provisioning/datasources/genq.yml" ]'

finish
