-- A user's ledger as the API shows it (GET /v1/credits/ledger, SPEC §4).

-- genq_ledger_page(user, before, limit) → {"data": [row...], "next_cursor"}:
-- the user's ledger rows newest first, only ids below before when given;
-- limit clamped to 1..100 (NULL = 20); next_cursor null on the last page.
-- Each row: id, movement, amount (the balance's change), held (the change
-- of what is held), debt (of the debt), job_id, ref (the Stripe Checkout
-- Session or invoice of a purchase, subscription grant or refund), note,
-- created_at. Read through the ledger_user_id index (user_id, id desc).
-- plpgsql, so that genq_ts (util.sql, applied after this file) binds late.
create or replace function genq_ledger_page(p_user text, p_before bigint, p_limit int)
returns jsonb
language plpgsql stable as $$
begin
  return (
  with lim as (select least(greatest(coalesce(p_limit, 20), 1), 100) as n),
  rows as (
    select g.* from ledger g
    where g.user_id = p_user and (p_before is null or g.id < p_before)
    order by g.id desc
    limit (select n + 1 from lim))
  select jsonb_build_object(
    'data', coalesce((select jsonb_agg(jsonb_build_object(
                        'id', r.id::text, 'movement', r.movement, 'amount', r.balance_delta,
                        'held', r.held_delta, 'debt', r.debt_delta, 'job_id', r.job_id,
                        'ref', r.ref, 'note', r.note, 'created_at', genq_ts(r.created_at))
                      order by r.id desc)
                      from (select * from rows order by id desc limit (select n from lim)) r),
                     '[]'::jsonb),
    'next_cursor', case when (select count(*) from rows) > (select n from lim)
                        then (select min(id)::text from (select id from rows order by id desc
                                                         limit (select n from lim)) t) end));
end $$;
