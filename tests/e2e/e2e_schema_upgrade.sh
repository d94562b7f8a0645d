#!/usr/bin/env bash
# The upgrade path of the schema (schema/, common/migrations.c): a database
# migrated with the schema genq shipped before its functions moved to
# schema/functions/ (tests/schema/v0/, frozen copies of those migrations),
# holding a job, and then upgraded by genqctl migrate, ends with exactly the
# same functions (pg_get_functiondef), triggers, tables, columns,
# constraints, indexes and reference data as a database genqctl migrate
# created fresh. Runs against the PostgreSQL server of GENQ_DATABASE_URL, in
# two databases of its own.
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=tests/e2e/helpers.bash
. "$here/helpers.bash"
: "${GENQ_DATABASE_URL:?GENQ_DATABASE_URL must be set}"

server=${GENQ_DATABASE_URL%/*}
old=genq_upgrade_old_$$ fresh=genq_upgrade_fresh_$$
cleanup_dbs() {
  for d in "$old" "$fresh"; do
    psql -q "$server/postgres" -c "drop database if exists $d" >/dev/null 2>&1
  done
}
trap 'cleanup_dbs; rm -rf "$TMP"' EXIT
for d in "$old" "$fresh"; do
  psql -qX "$server/postgres" -c "create database $d" >/dev/null
done

# The old database as the old genqctl left it: each migration in its own
# transaction, recorded in schema_migrations.
old_ok=1
psql -qX -v ON_ERROR_STOP=1 "$server/$old" \
  -c "create table schema_migrations (version int primary key, name text not null,
      applied_at timestamptz not null default now())" >/dev/null || old_ok=0
for f in "$here"/../schema/v0/*.sql; do
  name=$(basename "$f" .sql)
  psql -qX -v ON_ERROR_STOP=1 -1 "$server/$old" -f "$f" \
    -c "insert into schema_migrations values (${name%%_*}, '$name')" >/dev/null || old_ok=0
done
check "the v0 schema applies" test "$old_ok" = 1
# A job and a step in flight across the upgrade.
psql -qX -v ON_ERROR_STOP=1 "$server/$old" >/dev/null <<'SQL' || old_ok=0
select genq_grant('upgrade-user', 10, 'upgrade-grant', null);
select genq_submit_job('upgrade-user', 'image', '{"prompt": "a cat"}', null, null, null, 3);
SQL
check "a job is submitted on the v0 schema" test "$old_ok" = 1

GENQ_DATABASE_URL=$server/$old "$GENQCTL" migrate >"$TMP/up.log" 2>&1
check "genqctl migrate upgrades the v0 database" test $? = 0
GENQ_DATABASE_URL=$server/$fresh "$GENQCTL" migrate >"$TMP/fresh.log" 2>&1
check "genqctl migrate creates a fresh database" test $? = 0

# Everything a migration or a function file defines, one line each, sorted.
describe() {
  psql -qAtX -v ON_ERROR_STOP=1 "$server/$1" <<'SQL'
select 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid)
from pg_proc p where p.pronamespace = 'public'::regnamespace
union all
select 'trigger ' || pg_get_triggerdef(t.oid) from pg_trigger t
where not t.tgisinternal
union all
select format('column %s.%s %s %s default %s', c.table_name, c.column_name, c.data_type,
              c.is_nullable, coalesce(c.column_default, '-'))
from information_schema.columns c where c.table_schema = 'public'
  and c.table_name <> 'schema_migrations'
union all
select format('column-order %s %s', c.table_name,
              string_agg(c.column_name, ',' order by c.ordinal_position))
from information_schema.columns c where c.table_schema = 'public'
group by c.table_name
union all
select format('constraint %s %s %s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid))
from pg_constraint k where k.connamespace = 'public'::regnamespace
union all
select 'index ' || indexdef from pg_indexes where schemaname = 'public'
union all
select 'view ' || viewname || ' ' || definition from pg_views where schemaname = 'public'
union all
select format('setting %s=%s', key, value) from settings
union all
select format('price %s=%s', step_kind, credits) from prices
union all
select format('transition %s->%s', from_status, to_status) from job_transitions
union all
select format('migration %s %s', version, name) from schema_migrations
order by 1
SQL
}
describe "$old" >"$TMP/old.txt" 2>&1
describe "$fresh" >"$TMP/fresh.txt" 2>&1
check "the description has functions and tables" \
  bash -c "grep -q '^function genq_claim_job' '$TMP/fresh.txt' && grep -q '^column jobs.epoch' '$TMP/fresh.txt'"
if ! diff -u "$TMP/fresh.txt" "$TMP/old.txt" >"$TMP/diff.txt"; then
  head -n 80 "$TMP/diff.txt"
fi
check "an upgraded database equals a fresh one" test ! -s "$TMP/diff.txt"
n=$(grep -c '^function ' "$TMP/fresh.txt")
check "every function is defined by exactly one file of schema/functions/ ($n functions)" \
  bash -c "cd '$here/../../schema' && test \"\$(grep -ohiE '^create (or replace )?function [a-z0-9_]+' functions/*.sql | wc -l)\" = '$n' &&
           ! grep -qiE '^create (or replace )?function' 0*.sql &&
           test -z \"\$(grep -ohiE '^create (or replace )?function [a-z0-9_]+' functions/*.sql | sort | uniq -d)\""

# The job submitted before the upgrade runs on the new functions.
job_ok=$(psql -qAtX "$server/$old" -c "select count(*) from genq_undispatched(0, 10)")
check "the job submitted before the upgrade is dispatched after it" test "$job_ok" = 1
finish
