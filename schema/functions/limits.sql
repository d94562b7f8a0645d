-- Usage limits (SPEC §4; docs/limits.md): what a user's plan (plans,
-- accounts.plan) allows, checked where it is exact for the whole fleet.
--
-- Unfinished jobs and the submission rate are decided inside the submit
-- transaction (genq_submit_jobs, jobs.sql) under the user's account lock,
-- which every submit of that user takes: the count of the user's queued and
-- running jobs and the token bucket (submit_buckets) cannot change under
-- it, whichever API process submits. Uploads per UTC day are counted by
-- genq_upload_create (media.sql) with one conditional upsert of the day's
-- row (upload_days), so concurrent uploads cannot pass the limit together.
-- A limit of 0 is none. Times are PostgreSQL's own clock.
--
-- A refusal is GQ429: its column (err_field) is '<code>/<retry seconds>'
-- (code too_many_unfinished_jobs, submit_rate_limited, upload_limit_reached;
-- the API answers 429 with that code and Retry-After), its message says
-- which limit.

-- How long a user at max_unfinished_jobs is told to wait: a job takes
-- seconds to minutes, and nothing says which ends first.
create or replace function genq_limits_unfinished_retry() returns int
language sql immutable as $$ select 5 $$;

-- genq_limits_submit_state(users) → one row, state: {user: {jobs_left,
-- tokens, per_minute, at}} for the users of one submit batch, read under
-- their account locks (genq_submit_jobs): jobs_left the jobs the plan still
-- allows unfinished (null: no limit; counted up to the limit only, so the
-- work is bounded by it), tokens the bucket's tokens now (null: no rate
-- limit), per_minute its refill, at the clock they were read at (what
-- genq_limits_submit_save stores). A user whose plan limits nothing is
-- left out.
--
-- Read it in FROM (select st.state from genq_limits_submit_state(u) st):
-- a set-returning SQL function of one statement is inlined there, planned
-- with the statement that reads it, and PL/pgSQL keeps that plan for the
-- connection. Called as a value, PostgreSQL 15 parses and plans the body
-- of a SQL function at every call (0.35 ms a batch, ten times the
-- statement's own run), and a PL/pgSQL one adds an executor of its own.
create or replace function genq_limits_submit_state(p_users text[]) returns table (state jsonb)
language sql stable as $$
  -- one statement; a user whose plan limits nothing has no entry (the
  -- submit then checks nothing for them)
  select coalesce(jsonb_object_agg(a.user_id, jsonb_build_object(
           'jobs_left',
           case when p.max_unfinished_jobs > 0 then
             p.max_unfinished_jobs - (select count(*) from (
               select 1 from jobs j
               where j.user_id = a.user_id and j.status in ('queued', 'running')
               limit p.max_unfinished_jobs) x) end,
           'tokens',
           case when p.submit_per_minute > 0 and p.submit_burst > 0 then
             case when b.at is null then p.submit_burst::double precision
                  else least(p.submit_burst::double precision,
                             b.tokens + greatest(extract(epoch from clock_timestamp() - b.at), 0)
                                        * p.submit_per_minute / 60.0) end end,
           'per_minute', p.submit_per_minute, 'at', clock_timestamp(), 'spent', 0)), '{}')
  from unnest(p_users) u (user_id)
  join accounts a on a.user_id = u.user_id
  join plans p on p.plan = a.plan
  left join submit_buckets b on b.user_id = a.user_id
  where p.max_unfinished_jobs > 0 or (p.submit_per_minute > 0 and p.submit_burst > 0)
$$;

-- genq_limits_submit_refusal(state of one user) → NULL when one more
-- submission is allowed, else {column, message} of its GQ429 refusal: at
-- the plan's unfinished jobs, or fewer than one token in the bucket
-- (Retry-After: the seconds until one token has refilled, at least 1).
create or replace function genq_limits_submit_refusal(p_state jsonb) returns text[]
language plpgsql immutable as $$
declare
  v_tokens double precision := (p_state ->> 'tokens')::double precision;
  v_rate int := (p_state ->> 'per_minute')::int;
begin
  if p_state is null then
    return null;
  end if;
  if (p_state ->> 'jobs_left')::int <= 0 then
    return array['too_many_unfinished_jobs/' || genq_limits_unfinished_retry(),
                 'the plan allows no more unfinished jobs; wait for one to finish'];
  end if;
  if v_tokens is not null and v_tokens < 1 then
    return array['submit_rate_limited/' ||
                   greatest(1, ceil((1 - v_tokens) * 60.0 / v_rate - 1e-9))::int,
                 format('the plan allows %s submissions a minute', v_rate)];
  end if;
  return null;
end $$;

-- genq_limits_submit_spent(state, user) → state with one submission of user
-- counted: one unfinished job more, one token less.
create or replace function genq_limits_submit_spent(p_state jsonb, p_user text) returns jsonb
language plpgsql immutable as $$
declare
  s jsonb := p_state -> p_user;
begin
  if s is null then
    return p_state;
  end if;
  s := s || jsonb_build_object(
    'jobs_left', (s ->> 'jobs_left')::int - 1,
    'tokens', (s ->> 'tokens')::double precision - 1,
    'spent', (s ->> 'spent')::int + 1);
  return p_state || jsonb_build_object(p_user, s);
end $$;

-- genq_limits_submit_save(state): stores the buckets that tokens were taken
-- from (one statement; the others are unchanged: a bucket refills from its
-- stored time as it would have from now). A state with no user in it (no
-- plan of the batch limits anything) runs no statement. PL/pgSQL, so that
-- its statement is planned once per connection (as a SQL function its body
-- was parsed and planned at every batch).
create or replace function genq_limits_submit_save(p_state jsonb) returns void
language plpgsql as $$
begin
  if p_state is null or p_state = '{}' then
    return;
  end if;
  insert into submit_buckets (user_id, tokens, at)
  select e.key, greatest((e.value ->> 'tokens')::double precision, 0),
         (e.value ->> 'at')::timestamptz
  from jsonb_each(p_state) e
  where (e.value ->> 'spent')::int > 0 and e.value ->> 'tokens' is not null
  order by e.key
  on conflict (user_id) do update set tokens = excluded.tokens, at = excluded.at;
end $$;

-- The seconds until the next UTC day, when the day's upload counts start
-- again (at least 1).
create or replace function genq_limits_upload_retry() returns int
language sql stable as $$
  select greatest(1, ceil(extract(epoch from
    ((date_trunc('day', clock_timestamp() at time zone 'utc') + interval '1 day')
       at time zone 'utc') - clock_timestamp())))::int
$$;

-- genq_limits_upload_refusal(user, bytes) → NULL when an upload of bytes
-- would fit the user's plan today, else {column, message} of its GQ429
-- refusal. Reads only (no lock): what the API asks before it stores the
-- bytes; genq_limits_upload_take decides exactly.
create or replace function genq_limits_upload_refusal(p_user text, p_bytes bigint) returns text[]
language plpgsql stable as $$
declare
  p plans;
  d upload_days;
begin
  select pl.* into p from plans pl
  where pl.plan = coalesce((select a.plan from accounts a where a.user_id = p_user), 'free');
  if not found then
    return null;
  end if;
  select * into d from upload_days u
  where u.user_id = p_user and u.day = (clock_timestamp() at time zone 'utc')::date;
  if p.uploads_per_day > 0 and coalesce(d.uploads, 0) + 1 > p.uploads_per_day then
    return array['upload_limit_reached/' || genq_limits_upload_retry(),
                 format('the plan allows %s uploads a day (UTC)', p.uploads_per_day)];
  end if;
  if p.upload_bytes_per_day > 0 and coalesce(d.bytes, 0) + p_bytes > p.upload_bytes_per_day then
    return array['upload_limit_reached/' || genq_limits_upload_retry(),
                 format('the plan allows %s upload bytes a day (UTC); %s are left',
                        p.upload_bytes_per_day,
                        greatest(p.upload_bytes_per_day - coalesce(d.bytes, 0), 0))];
  end if;
  return null;
end $$;

-- genq_limits_upload_take(user, bytes): counts one upload of bytes in the
-- user's day, or raises GQ429 (column and message as
-- genq_limits_upload_refusal) when it would pass the plan's limits. The
-- account exists (genq_upload_create ensures it). One conditional upsert:
-- a concurrent upload of the same user waits for this one's row and then
-- sees its count.
create or replace function genq_limits_upload_take(p_user text, p_bytes bigint) returns void
language plpgsql as $$
declare
  p plans;
  v_day date := (clock_timestamp() at time zone 'utc')::date;
  v_refusal text[];
begin
  select pl.* into p from plans pl join accounts a on a.plan = pl.plan where a.user_id = p_user;
  if p.uploads_per_day = 0 and p.upload_bytes_per_day = 0 then
    insert into upload_days (user_id, day, bytes, uploads) values (p_user, v_day, p_bytes, 1)
    on conflict (user_id, day) do update
      set bytes = upload_days.bytes + excluded.bytes, uploads = upload_days.uploads + 1;
    return;
  end if;
  if (p.uploads_per_day = 0 or 1 <= p.uploads_per_day)
     and (p.upload_bytes_per_day = 0 or p_bytes <= p.upload_bytes_per_day) then
    insert into upload_days (user_id, day, bytes, uploads) values (p_user, v_day, p_bytes, 1)
    on conflict (user_id, day) do update
      set bytes = upload_days.bytes + excluded.bytes, uploads = upload_days.uploads + 1
      where (p.uploads_per_day = 0 or upload_days.uploads + 1 <= p.uploads_per_day)
        and (p.upload_bytes_per_day = 0
             or upload_days.bytes + excluded.bytes <= p.upload_bytes_per_day);
    if found then
      return;
    end if;
  end if;
  v_refusal := coalesce(genq_limits_upload_refusal(p_user, p_bytes),
                        array['upload_limit_reached/' || genq_limits_upload_retry(),
                              'the plan''s daily upload limit is reached']);
  raise exception '%', v_refusal[2] using errcode = 'GQ429', column = v_refusal[1];
end $$;

-- genq_limits_usage(user) → {plan, limits {...}, usage {unfinished_jobs,
-- submit_tokens, uploads_today, upload_bytes_today}} for genqctl limits
-- show (NULL when there is no such account). submit_tokens is null when
-- the plan has no rate limit; unfinished_jobs is counted in full.
create or replace function genq_limits_usage(p_user text) returns jsonb
language plpgsql stable as $$
declare
  a accounts;
  p plans;
  s jsonb;
  d upload_days;
  v_unfinished bigint;
begin
  select * into a from accounts x where x.user_id = p_user;
  if not found then
    return null;
  end if;
  select * into p from plans x where x.plan = a.plan;
  select count(*) into v_unfinished from jobs j
  where j.user_id = p_user and j.status in ('queued', 'running');
  select st.state -> p_user into s from genq_limits_submit_state(array[p_user]) st;
  select * into d from upload_days u
  where u.user_id = p_user and u.day = (clock_timestamp() at time zone 'utc')::date;
  return jsonb_build_object(
    'user', p_user, 'plan', a.plan,
    'limits', to_jsonb(p) - 'plan' - 'updated_at',
    'usage', jsonb_build_object(
      'unfinished_jobs', v_unfinished,
      'submit_tokens', round(((s ->> 'tokens')::double precision)::numeric, 2),
      'uploads_today', coalesce(d.uploads, 0),
      'upload_bytes_today', coalesce(d.bytes, 0)));
end $$;

-- genq_limits_set(plan, field, value) → the plan's row as JSON, after
-- setting one of its limits (the plan is created, with free's values, when
-- new). 22023 naming the field when it is not a limit or value is not a
-- whole number ≥ 0 in its range, or the plan name is malformed.
create or replace function genq_limits_set(p_plan text, p_field text, p_value text) returns jsonb
language plpgsql as $$
declare
  v numeric;
  v_max numeric;
  r plans;
begin
  if p_plan is null or p_plan !~ '^[a-z0-9_-]{1,32}$' then
    raise exception 'plan: must be 1..32 of a-z, 0-9, _ and -' using errcode = '22023',
      column = 'plan';
  end if;
  if p_field is null or p_field not in ('max_unfinished_jobs', 'submit_per_minute', 'submit_burst',
                                        'upload_bytes_per_day', 'uploads_per_day',
                                        'provider_weight') then
    raise exception '%: not a limit (max_unfinished_jobs, submit_per_minute, submit_burst, upload_bytes_per_day, uploads_per_day, provider_weight)',
      coalesce(p_field, '(none)') using errcode = '22023', column = coalesce(p_field, 'field');
  end if;
  if p_value is null or p_value !~ '^[0-9]{1,19}$' then
    raise exception '%: must be a whole number, 0 or more (0: no limit)', p_field
      using errcode = '22023', column = p_field;
  end if;
  v := p_value::numeric;
  v_max := 2147483647;
  if p_field = 'upload_bytes_per_day' then
    v_max := 9223372036854775807;
  end if;
  if p_field = 'provider_weight' and (v < 1 or v > 1000) then
    raise exception '%: must be 1..1000 (docs/providers.md)', p_field using errcode = '22023',
      column = p_field;
  end if;
  if v > v_max then
    raise exception '%: % is too large', p_field, p_value using errcode = '22023', column = p_field;
  end if;
  insert into plans (plan, max_unfinished_jobs, submit_per_minute, submit_burst,
                     upload_bytes_per_day, uploads_per_day)
  select p_plan, f.max_unfinished_jobs, f.submit_per_minute, f.submit_burst,
         f.upload_bytes_per_day, f.uploads_per_day
  from plans f where f.plan = 'free'
  on conflict (plan) do nothing;
  execute format('update plans set %I = $1, updated_at = now() where plan = $2 returning *',
                 p_field)
    into r using v, p_plan;
  return to_jsonb(r);
end $$;

-- genq_limits_user_plan(user, plan) → the account's previous plan: moves a
-- user to plan (an operator's hand; subscriptions move it too). The account
-- is created when new. 22023 naming 'plan' when there is no such plan.
create or replace function genq_limits_user_plan(p_user text, p_plan text) returns text
language plpgsql as $$
declare
  v_prev text;
begin
  if not exists (select 1 from plans where plan = p_plan) then
    raise exception 'plan: no such plan: %', coalesce(p_plan, '(none)') using errcode = '22023',
      column = 'plan';
  end if;
  perform genq_account_ensure(p_user);
  select a.plan into v_prev from accounts a where a.user_id = p_user for no key update;
  update accounts set plan = p_plan where user_id = p_user;
  return v_prev;
end $$;
