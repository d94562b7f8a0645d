-- Privacy rights and retention (SPEC §7; docs/privacy.md): account deletion
-- (DELETE /v1/me), the export (GET /v1/me/export) and the retention sweep's
-- steps (genqctl sweep; workers, worker/sweep.c). Every step takes p_now (a
-- clock the caller may move forward; NULL = now()) and a batch limit, and
-- does a bounded amount of work per call: the callers call it again until
-- it has nothing left (common/sweep_steps.h lists them).

-- How long a deleted account's data is kept; how long ledger rows are.
create or replace function genq_purge_delay() returns interval
language sql immutable as $$ select interval '30 days' $$;
create or replace function genq_ledger_retention() returns interval
language sql immutable as $$ select interval '2 years' $$;

-- genq_account_delete(user) → {deleted_at, purge_after, canceled: [job
-- ids], keys_revoked}: DELETE /v1/me, one transaction. Marks the account
-- deleted (once: a second call changes nothing and answers the same
-- deleted_at), revokes every API key of the user, and cancels every queued
-- or running job through genq_job_cancel (epoch bumped, steps canceled,
-- hold released), so nothing stays held. Jobs are canceled before the
-- account row is touched (genq_job_cancel locks the job, then the account,
-- as workers do); a submit that committed meanwhile is caught by a second
-- pass under the account lock, after which genq_submit_jobs and
-- genq_upload_create refuse the user (GQ401).
create or replace function genq_account_delete(p_user text) returns jsonb
language plpgsql as $$
declare
  v_ids uuid[] := '{}';
  v_id uuid;
  v_pass int;
  v_keys int;
  a accounts;
begin
  perform genq_account_ensure(p_user);
  for v_pass in 1 .. 2 loop
    for v_id in select j.id from jobs j
                where j.user_id = p_user and j.status in ('queued', 'running') order by j.id loop
      if genq_job_cancel(p_user, v_id) ->> 'status' = 'canceled' then
        v_ids := v_ids || v_id;
      end if;
    end loop;
    exit when v_pass = 2;
    update accounts set deleted_at = now() where user_id = p_user and deleted_at is null;
  end loop;
  update api_keys set revoked_at = now() where user_id = p_user and revoked_at is null;
  get diagnostics v_keys = row_count;
  select * into a from accounts x where x.user_id = p_user;
  return jsonb_build_object('deleted_at', genq_ts(a.deleted_at),
                            'purge_after', genq_ts(a.deleted_at + genq_purge_delay()),
                            'canceled', to_jsonb(v_ids), 'keys_revoked', v_keys);
end $$;

-- genq_account_refuse_deleted(user): raises GQ401 when the account is
-- deleted; else locks the account row (FOR NO KEY UPDATE, the lock
-- genq_account_delete's UPDATE waits for) until the caller commits. For
-- writers that create the user's things outside genq_submit_jobs.
create or replace function genq_account_refuse_deleted(p_user text) returns void
language plpgsql as $$
begin
  perform 1 from accounts a where a.user_id = p_user and a.deleted_at is null
  for no key update;
  if not found then
    raise exception 'the account is deleted' using errcode = 'GQ401';
  end if;
end $$;

-- ---- export (GET /v1/me/export, api/export.c) ----

-- genq_export_account(user) → the export's "account" object.
create or replace function genq_export_account(p_user text) returns jsonb
language plpgsql as $$
declare
  a accounts;
begin
  perform genq_account_ensure(p_user);
  select * into a from accounts x where x.user_id = p_user;
  return jsonb_build_object(
    'user_id', a.user_id, 'created_at', genq_ts(a.created_at), 'plan', a.plan,
    'balance', a.balance, 'held', a.held, 'available', a.balance - a.held, 'debt', a.debt,
    'deleted_at', genq_ts(a.deleted_at),
    'purge_after', genq_ts(a.deleted_at + genq_purge_delay()),
    'exported_at', genq_ts(now()));
end $$;

-- genq_export_page(user, section, after, limit) → one row (chunk, next,
-- n): the next at most limit (1..1000, NULL = 200) items of one section
-- of the user's export in key order after the key `after` (NULL: from the
-- first), as JSON texts joined by commas (chunk; NULL when n = 0), and the
-- key of the last (next; pass it back as after). Sections: jobs (the job
-- objects of genq_jobs_json), ledger, uploads, assets, webhook_deliveries,
-- api_keys (never the hash). Each page is one index range scan.
create or replace function genq_export_page(p_user text, p_section text, p_after text,
                                            p_limit int)
returns table (chunk text, next text, n int)
language plpgsql stable as $$
declare
  lim int := least(greatest(coalesce(p_limit, 200), 1), 1000);
begin
  if p_section = 'jobs' then
    return query
      with ids as (select j.id from jobs j
                   where j.user_id = p_user and (p_after is null or j.id > p_after::uuid)
                   order by j.id limit lim)
      select string_agg(x.job::text, ',' order by x.id),
             (array_agg(x.id order by x.id desc))[1]::text, count(*)::int
      from genq_jobs_json(array(select ids.id from ids)) x;
  elsif p_section = 'ledger' then
    return query
      select string_agg(jsonb_build_object(
               'id', g.id::text, 'movement', g.movement, 'amount', g.balance_delta,
               'held', g.held_delta, 'debt', g.debt_delta, 'job_id', g.job_id, 'ref', g.ref,
               'note', g.note, 'created_at', genq_ts(g.created_at))::text, ',' order by g.id),
             max(g.id)::text, count(*)::int
      from (select * from ledger l
            where l.user_id = p_user and (p_after is null or l.id > p_after::bigint)
            order by l.id limit lim) g;
  elsif p_section = 'uploads' then
    return query
      select string_agg(jsonb_build_object(
               'id', u.id, 'content_type', u.content_type, 'bytes', u.bytes, 'sha256', u.sha256,
               'created_at', genq_ts(u.created_at), 'expires_at', genq_ts(u.expires_at),
               'deleted_at', genq_ts(u.deleted_at),
               'jobs', coalesce((select jsonb_agg(ju.job_id order by ju.job_id)
                                 from job_uploads ju where ju.upload_id = u.id), '[]'::jsonb))::text,
               ',' order by u.id),
             (array_agg(u.id order by u.id desc))[1]::text, count(*)::int
      from (select * from uploads x
            where x.user_id = p_user and (p_after is null or x.id > p_after::uuid)
            order by x.id limit lim) u;
  elsif p_section = 'assets' then
    return query
      select string_agg(jsonb_build_object(
               'id', s.id, 'job_id', s.job_id, 'step', s.step, 'kind', s.kind,
               'content_type', s.content_type, 'bytes', s.bytes, 'sha256', s.sha256,
               'created_at', genq_ts(s.created_at), 'url', '/v1/assets/' || s.id)::text,
               ',' order by s.id),
             (array_agg(s.id order by s.id desc))[1]::text, count(*)::int
      from (select * from assets x
            where x.user_id = p_user and (p_after is null or x.id > p_after::uuid)
            order by x.id limit lim) s;
  elsif p_section = 'webhook_deliveries' then
    return query
      select string_agg(jsonb_build_object(
               'id', 'msg_' || replace(d.id::text, '-', ''), 'job_id', d.job_id,
               'event', d.event, 'url', d.url, 'state', d.state, 'attempts', d.attempts,
               'created_at', genq_ts(d.created_at), 'last_attempt_at', genq_ts(d.last_attempt_at),
               'last_status', d.last_status, 'delivered_at', genq_ts(d.delivered_at))::text,
               ',' order by d.id),
             (array_agg(d.id order by d.id desc))[1]::text, count(*)::int
      from (select * from webhook_deliveries x
            where x.user_id = p_user and (p_after is null or x.id > p_after::uuid)
            order by x.id limit lim) d;
  elsif p_section = 'api_keys' then
    return query
      select string_agg(jsonb_build_object(
               'id', k.id, 'name', k.name, 'prefix', k.prefix, 'admin', k.admin,
               'created_at', genq_ts(k.created_at), 'last_used_at', genq_ts(k.last_used_at),
               'revoked_at', genq_ts(k.revoked_at))::text, ',' order by k.id),
             (array_agg(k.id order by k.id desc))[1]::text, count(*)::int
      from (select * from api_keys x
            where x.user_id = p_user and (p_after is null or x.id > p_after::uuid)
            order by x.id limit lim) k;
  else
    raise exception 'no export section %', p_section using errcode = '22023';
  end if;
end $$;

-- ---- retention (SPEC §7): the sweep's steps ----

-- genq_account_purge(now, limit) → (user_id, what, storage_key) rows: the
-- data of accounts deleted over genq_purge_delay() before now, purged in
-- batches. One account per call, locked (SKIP LOCKED: sweepers running at
-- once take different accounts): first up to limit of its jobs (with their
-- steps, upload links, assets and webhook deliveries), rows 'asset' with
-- the bytes' keys, and a row 'jobs' (no key); once no job is left, up to
-- limit uploads, rows 'upload' (the key of those whose bytes are still
-- stored) and a row 'uploads' (no key); once none is left, the
-- rest — webhook secrets and deliveries, submit buckets, upload days, API
-- keys, Stripe customer and subscription links — and the account becomes a
-- tombstone (purged_at set; deleted_at, ledger and Stripe purchases kept),
-- row 'account' with no key. No row: nothing is due. The caller deletes
-- the returned keys from storage after the commit.
create or replace function genq_account_purge(p_now timestamptz, p_limit int)
returns table (user_id text, what text, storage_key text)
language plpgsql as $$
#variable_conflict use_column
declare
  lim int := least(greatest(coalesce(p_limit, 100), 1), 10000);
  v_user text;
  v_jobs uuid[];
  v_n int;
begin
  select a.user_id into v_user from accounts a
  where a.deleted_at < coalesce(p_now, now()) - genq_purge_delay() and a.purged_at is null
  order by a.deleted_at limit 1 for update skip locked;
  if not found then
    return;
  end if;
  user_id := v_user;
  v_jobs := array(select j.id from jobs j where j.user_id = v_user order by j.id limit lim);
  if cardinality(v_jobs) > 0 then
    what := 'asset';
    for storage_key in delete from assets s where s.job_id = any(v_jobs)
                       returning s.storage_key loop
      return next;
    end loop;
    delete from jobs j where j.id = any(v_jobs); -- steps, upload links, deliveries: cascade
    what := 'jobs';
    storage_key := null;
    return next;
    return;
  end if;
  what := 'upload';
  v_n := 0;
  for storage_key in
    delete from uploads u
    where u.id in (select x.id from uploads x where x.user_id = v_user order by x.id limit lim)
    returning case when u.deleted_at is null then u.storage_key end loop
    v_n := v_n + 1;
    continue when storage_key is null; -- its bytes were swept already
    return next;
  end loop;
  if v_n > 0 then
    what := 'uploads';
    storage_key := null;
    return next;
    return;
  end if;
  delete from webhook_deliveries d where d.user_id = v_user;
  delete from webhook_secrets w where w.user_id = v_user;
  delete from submit_buckets b where b.user_id = v_user;
  delete from upload_days d where d.user_id = v_user;
  delete from api_keys k where k.user_id = v_user;
  delete from stripe_subscriptions s where s.user_id = v_user;
  delete from stripe_customers c where c.user_id = v_user;
  update accounts set purged_at = now() where accounts.user_id = v_user;
  what := 'account';
  storage_key := null;
  return next;
end $$;

-- genq_ledger_fold(now, limit) → ledger rows folded: rows older than
-- genq_ledger_retention() before now, at most about limit per call, are
-- deleted and their sums added to their account's one 'carry' row
-- (idem_key carry:<user>; created when first needed, with the id and time
-- of the oldest rows it replaces), so every account's balance, held and
-- debt still equal its ledger's sums. A job's rows are folded together and
-- only when all of them are past the horizon and the job is terminal; a
-- Stripe purchase's (ref) likewise: the audit accepts a job or purchase
-- with no rows left only from before its account's ledger_carried_before,
-- the horizon recorded here. One sweeper folds at a time (an advisory
-- lock; the others return 0).
create or replace function genq_ledger_fold(p_now timestamptz, p_limit int) returns int
language plpgsql as $$
declare
  lim int := least(greatest(coalesce(p_limit, 100), 1), 10000);
  v_h timestamptz := coalesce(p_now, now()) - genq_ledger_retention();
  v_ids bigint[] := '{}';
  c record;
  s record;
begin
  if not pg_try_advisory_xact_lock(hashtext('genq_ledger_fold')) then
    return 0;
  end if;
  for c in select g.id, g.job_id, g.ref from ledger g
           where g.created_at < v_h and g.movement <> 'carry'
           order by g.created_at, g.id limit lim * 4 loop
    continue when c.id = any(v_ids);
    if c.job_id is not null then
      continue when exists (select 1 from jobs j
                            where j.id = c.job_id and j.status in ('queued', 'running'));
      continue when exists (select 1 from ledger g where g.job_id = c.job_id
                                                     and g.created_at >= v_h);
      v_ids := v_ids || array(select g.id from ledger g where g.job_id = c.job_id);
    elsif c.ref is not null then
      continue when exists (select 1 from ledger g where g.ref = c.ref and g.created_at >= v_h);
      v_ids := v_ids || array(select g.id from ledger g
                              where g.ref = c.ref and g.job_id is null and g.movement <> 'carry');
    else
      v_ids := v_ids || c.id;
    end if;
    exit when cardinality(v_ids) >= lim;
  end loop;
  if cardinality(v_ids) = 0 then
    return 0;
  end if;
  for s in select g.user_id, sum(g.balance_delta) as b, sum(g.held_delta) as h,
                  sum(g.debt_delta) as d, max(g.id) as last_id, min(g.created_at) as first_at
           from ledger g where g.id = any(v_ids) group by g.user_id order by g.user_id loop
    delete from ledger g where g.id = any(v_ids) and g.user_id = s.user_id;
    update ledger g
    set balance_delta = g.balance_delta + s.b, held_delta = g.held_delta + s.h,
        debt_delta = g.debt_delta + s.d
    where g.idem_key = 'carry:' || s.user_id;
    if not found then
      insert into ledger (id, user_id, movement, balance_delta, held_delta, debt_delta, idem_key,
                          note, created_at)
      values (s.last_id, s.user_id, 'carry', s.b, s.h, s.d, 'carry:' || s.user_id,
              'the sums of ledger rows older than the retention period', s.first_at);
    end if;
    update accounts a set ledger_carried_before = greatest(a.ledger_carried_before, v_h)
    where a.user_id = s.user_id;
  end loop;
  return cardinality(v_ids);
end $$;

-- genq_limits_sweep(now, limit) → rows deleted: upload_days of over 3 days
-- before now's UTC day (the limit counts today's only), and submit buckets
-- untouched for a day (refilled to full by then: no row means full).
create or replace function genq_limits_sweep(p_now timestamptz, p_limit int) returns int
language plpgsql as $$
declare
  lim int := least(greatest(coalesce(p_limit, 100), 1), 10000);
  v_now timestamptz := coalesce(p_now, now());
  a int;
  b int;
begin
  delete from upload_days d
  where (d.user_id, d.day) in (select x.user_id, x.day from upload_days x
                               where x.day < (v_now at time zone 'UTC')::date - 3 limit lim);
  get diagnostics a = row_count;
  delete from submit_buckets s
  where s.user_id in (select x.user_id from submit_buckets x
                      where x.at < v_now - interval '1 day' limit lim);
  get diagnostics b = row_count;
  return a + b;
end $$;

-- genq_webhooks_sweep(now, limit) → rows deleted: settled deliveries
-- (delivered, failed, refused) past their 24 h deadline, and signing
-- secrets rotated away whose grace ended.
create or replace function genq_webhooks_sweep(p_now timestamptz, p_limit int) returns int
language plpgsql as $$
declare
  lim int := least(greatest(coalesce(p_limit, 100), 1), 10000);
  v_now timestamptz := coalesce(p_now, now());
  a int;
  b int;
begin
  delete from webhook_deliveries d
  where d.id in (select x.id from webhook_deliveries x
                 where x.state in ('delivered', 'failed', 'refused') and x.deadline < v_now
                 limit lim);
  get diagnostics a = row_count;
  delete from webhook_secrets w
  where w.id in (select x.id from webhook_secrets x where x.expires_at < v_now limit lim);
  get diagnostics b = row_count;
  return a + b;
end $$;
