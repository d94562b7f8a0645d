-- Stripe (SPEC §6): purchases, refunds and debt, subscriptions. The API's
-- POST /v1/webhooks/stripe (api/stripe.c) verifies the signature and calls
-- genq_stripe_event once per delivery; everything an event changes happens
-- in that one call, so a redelivery, an event out of order or two
-- deliveries at once on two connections are safe. docs/credits.md says
-- which event does what.
--
-- What makes a grant happen once is the purchase (the Checkout Session or
-- the invoice) and its ledger key stripe:<ref>:grant, never the event id.
--
-- Lock order: the event row, a payment_intent's advisory lock, the
-- subscription row, the purchase rows (by ref), then the account. Nothing
-- here locks a job, and only one account per call.

-- genq_stripe_fail(field, message): raises GQ400 naming the field (the
-- error's column): the API answers 400 invalid_event with that message.
create or replace function genq_stripe_fail(p_field text, p_message text) returns void
language plpgsql as $$
begin
  raise exception '%: %', p_field, p_message using errcode = 'GQ400', column = p_field;
end $$;

-- genq_stripe_str(obj, key) → the key's value when it is a non-empty
-- string (an expandable Stripe field may be an object: then its id), else
-- NULL.
create or replace function genq_stripe_str(p_obj jsonb, p_key text) returns text
language sql immutable as $$
  select case jsonb_typeof(p_obj -> p_key)
           when 'string' then nullif(p_obj ->> p_key, '')
           when 'object' then case when jsonb_typeof(p_obj -> p_key -> 'id') = 'string'
                                   then nullif(p_obj -> p_key ->> 'id', '') end
         end
$$;

-- genq_stripe_count(value, field) → value as a whole number 0..10^15 (a
-- JSON number, or a string of digits as Stripe's metadata carries), else
-- GQ400 naming field. NULL for a missing value.
create or replace function genq_stripe_count(p_value jsonb, p_field text) returns bigint
language plpgsql immutable as $$
declare
  v text;
begin
  if p_value is null or jsonb_typeof(p_value) = 'null' then
    return null;
  end if;
  if jsonb_typeof(p_value) = 'number' then
    v := p_value::text;
  elsif jsonb_typeof(p_value) = 'string' then
    v := p_value #>> '{}';
  end if;
  if v is null or v !~ '^[0-9]{1,15}$' then
    perform genq_stripe_fail(p_field, 'must be a whole number 0..10^15');
  end if;
  return v::bigint;
end $$;

-- genq_account_repay(user, key) → credits paid. Internal, for a caller
-- holding the account row: pays the account's debt from what is available,
-- as one 'repay' row (−balance, −debt) keyed <key>:repay. genq_grant and
-- the Stripe grants call it after every grant, so a grant pays a debt first.
create or replace function genq_account_repay(p_user text, p_key text) returns bigint
language plpgsql as $$
declare
  v_pay bigint;
begin
  select least(a.debt, a.balance - a.held) into v_pay from accounts a where a.user_id = p_user;
  if coalesce(v_pay, 0) <= 0 then
    return 0;
  end if;
  insert into ledger (user_id, movement, balance_delta, held_delta, debt_delta, idem_key, note)
  values (p_user, 'repay', -v_pay, 0, -v_pay, p_key || ':repay', 'debt paid by a grant')
  on conflict (idem_key) do nothing;
  if not found then
    return 0;
  end if;
  update accounts set balance = balance - v_pay, debt = debt - v_pay where user_id = p_user;
  return v_pay;
end $$;

-- genq_stripe_refund_target(purchase) → the credits a purchase's refunds
-- take back in all: its credits × refunded / amount, rounded down (all of
-- them for a full refund, or any refund of a purchase of amount 0).
create or replace function genq_stripe_refund_target(p stripe_purchases) returns bigint
language sql immutable as $$
  select case when p.refunded <= 0 then 0
              when p.amount <= 0 or p.refunded >= p.amount then p.credits
              else floor(p.credits::numeric * p.refunded / p.amount)::bigint end
$$;

-- genq_stripe_reverse(ref, target) → credits taken back now. Internal, for
-- a caller holding the purchase row: takes the purchase's reversed up to
-- target (at most what was granted) with one 'reversal' row keyed
-- stripe:<ref>:reversal:<target>: from what is available first, the rest
-- as debt. Cumulative: a refund event repeated, or an older one after a
-- newer, takes nothing more.
create or replace function genq_stripe_reverse(p_ref text, p_target bigint) returns bigint
language plpgsql as $$
declare
  p stripe_purchases;
  v_target bigint;
  v_delta bigint;
  v_take bigint;
begin
  select * into p from stripe_purchases where ref = p_ref;
  v_target := least(p_target, p.granted);
  v_delta := v_target - p.reversed;
  if v_delta <= 0 then
    return 0;
  end if;
  select least(v_delta, a.balance - a.held) into v_take
  from accounts a where a.user_id = p.user_id for update;
  insert into ledger (user_id, movement, balance_delta, held_delta, debt_delta, idem_key, note,
                      ref)
  values (p.user_id, 'reversal', -v_take, 0, v_delta - v_take,
          'stripe:' || p.ref || ':reversal:' || v_target,
          case when p.status = 'failed' then 'payment failed' else 'refund' end, p.ref);
  update accounts set balance = balance - v_take, debt = debt + (v_delta - v_take)
  where user_id = p.user_id;
  update stripe_purchases set reversed = v_target, updated_at = now() where ref = p.ref;
  return v_delta;
end $$;

-- genq_stripe_grant(ref) → credits granted now. Internal, for a caller
-- holding the purchase row: a paid purchase whose user is known and that
-- was not granted gets its credits as one 'grant' row keyed
-- stripe:<ref>:grant, pays the user's debt, and has the refunds already
-- known for it (its own, and those waiting for its payment_intent) taken
-- back.
create or replace function genq_stripe_grant(p_ref text) returns bigint
language plpgsql as $$
declare
  p stripe_purchases;
  w stripe_refunds_waiting;
begin
  select * into p from stripe_purchases where ref = p_ref;
  if p.status <> 'paid' or p.user_id is null or p.granted > 0 or p.credits = 0 then
    return 0;
  end if;
  perform 1 from accounts a where a.user_id = p.user_id for update;
  insert into ledger (user_id, movement, balance_delta, held_delta, idem_key, note, ref)
  values (p.user_id, 'grant', p.credits, 0, 'stripe:' || p.ref || ':grant',
          case p.kind when 'checkout' then 'Stripe purchase' else 'subscription invoice' end,
          p.ref)
  on conflict (idem_key) do nothing;
  if not found then
    raise exception 'purchase % granted twice', p.ref using errcode = 'GQ500';
  end if;
  update accounts set balance = balance + p.credits where user_id = p.user_id;
  update stripe_purchases set granted = p.credits, updated_at = now() where ref = p.ref;
  perform genq_account_repay(p.user_id, 'stripe:' || p.ref || ':grant');
  if p.payment_intent is not null then
    delete from stripe_refunds_waiting r where r.payment_intent = p.payment_intent returning * into w;
    if found then
      update stripe_purchases
      set refunded = greatest(refunded, w.refunded),
          amount = case when w.amount > 0 then w.amount else amount end
      where ref = p.ref returning * into p;
    end if;
  end if;
  select * into p from stripe_purchases where ref = p_ref;
  perform genq_stripe_reverse(p.ref, genq_stripe_refund_target(p));
  return p.credits;
end $$;

-- genq_stripe_pi_lock(payment_intent): serializes the calls about one
-- payment_intent (a refund and the Checkout Session it refunds, arriving
-- at once), so a refund is never parked while its purchase is committing.
create or replace function genq_stripe_pi_lock(p_pi text) returns void
language sql as $$
  select pg_advisory_xact_lock(hashtextextended('genq:stripe:pi:' || p_pi, 0))
  where p_pi is not null
$$;

-- genq_stripe_plan_apply(user): the user's plan is that of their newest
-- live subscription (active, trialing or past_due, not ended, its price
-- mapped to a plan), else 'free'. Called when a subscription of the user
-- changes; a user without subscriptions keeps what operators set.
create or replace function genq_stripe_plan_apply(p_user text) returns text
language plpgsql as $$
declare
  v_plan text;
begin
  select s.plan into v_plan from stripe_subscriptions s
  where s.user_id = p_user and s.ended_at is null and s.plan is not null
    and s.status in ('active', 'trialing', 'past_due')
  order by s.event_at desc, s.subscription_id limit 1;
  v_plan := coalesce(v_plan, 'free');
  update accounts set plan = v_plan where user_id = p_user and plan is distinct from v_plan;
  return v_plan;
end $$;

-- genq_stripe_sub_user(sub, user) → credits granted. Internal, for a caller
-- holding the subscription row: names its user when it had none and grants
-- the invoices of it that were waiting for one.
create or replace function genq_stripe_sub_user(p_sub text, p_user text) returns bigint
language plpgsql as $$
declare
  c record;
  v_granted bigint := 0;
begin
  update stripe_subscriptions set user_id = p_user, updated_at = now()
  where subscription_id = p_sub and user_id is null;
  for c in select p.ref from stripe_purchases p
           where p.subscription = p_sub and p.user_id is null order by p.ref for update loop
    update stripe_purchases set user_id = p_user, updated_at = now() where ref = c.ref;
    v_granted := v_granted + genq_stripe_grant(c.ref);
  end loop;
  return v_granted;
end $$;

-- genq_stripe_sub_row(sub, customer) → the subscription row, created when
-- missing and locked.
create or replace function genq_stripe_sub_row(p_sub text, p_customer text)
returns stripe_subscriptions
language plpgsql as $$
declare
  s stripe_subscriptions;
begin
  insert into stripe_subscriptions (subscription_id, customer_id, status)
  values (p_sub, p_customer, 'unknown') on conflict (subscription_id) do nothing;
  select * into s from stripe_subscriptions where subscription_id = p_sub for update;
  if s.customer_id is null and p_customer is not null then
    update stripe_subscriptions set customer_id = p_customer where subscription_id = p_sub
    returning * into s;
  end if;
  return s;
end $$;

-- genq_stripe_customer_user(customer) → the user a customer was recorded
-- for, or NULL.
create or replace function genq_stripe_customer_user(p_customer text) returns text
language sql stable as $$
  select c.user_id from stripe_customers c where c.customer_id = p_customer
$$;

-- genq_stripe_customer_link(customer, user): records who a customer is
-- (the first user named for it stays).
create or replace function genq_stripe_customer_link(p_customer text, p_user text) returns void
language plpgsql as $$
begin
  if p_customer is not null then
    perform genq_account_ensure(p_user);
    insert into stripe_customers (customer_id, user_id) values (p_customer, p_user)
    on conflict (customer_id) do nothing;
  end if;
end $$;

-- genq_stripe_user_id(value, field) → a Clerk user id (a string of 1..255
-- bytes), else GQ400 naming field.
create or replace function genq_stripe_user_id(p_obj jsonb, p_key text, p_field text)
returns text
language plpgsql immutable as $$
begin
  if jsonb_typeof(p_obj -> p_key) is distinct from 'string' or p_obj ->> p_key = ''
     or octet_length(p_obj ->> p_key) > 255 then
    perform genq_stripe_fail(p_field, 'must be the user id (a string of 1..255 bytes)');
  end if;
  return p_obj ->> p_key;
end $$;

-- genq_stripe_checkout(session, type) → what was done: the three
-- checkout.session.* events. payment mode: the purchase of
-- metadata.credits by client_reference_id, granted once when paid
-- (completed with payment_status paid or no_payment_required, or
-- async_payment_succeeded); async_payment_failed marks it failed for good
-- and takes back anything it granted. subscription mode: records the
-- customer and the subscription as the user's and grants the invoices
-- that were waiting for them.
create or replace function genq_stripe_checkout(o jsonb, p_type text) returns jsonb
language plpgsql as $$
declare
  v_id text := genq_stripe_str(o, 'id');
  v_mode text := coalesce(genq_stripe_str(o, 'mode'), 'payment');
  v_user text;
  v_credits bigint;
  v_pi text := genq_stripe_str(o, 'payment_intent');
  v_paid boolean;
  v_sub text;
  s stripe_subscriptions;
  p stripe_purchases;
  v_n bigint;
begin
  if v_id is null then
    perform genq_stripe_fail('data.object.id', 'must be the Checkout Session id');
  end if;
  if v_mode not in ('payment', 'subscription') then
    return jsonb_build_object('outcome', 'ignored', 'reason', 'mode ' || v_mode);
  end if;
  v_user := genq_stripe_user_id(o, 'client_reference_id', 'data.object.client_reference_id');
  if v_mode = 'subscription' then
    v_sub := genq_stripe_str(o, 'subscription');
    if v_sub is null then
      perform genq_stripe_fail('data.object.subscription', 'must be the subscription id');
    end if;
    perform genq_stripe_customer_link(genq_stripe_str(o, 'customer'), v_user);
    perform genq_account_ensure(v_user);
    s := genq_stripe_sub_row(v_sub, genq_stripe_str(o, 'customer'));
    v_n := 0;
    if s.user_id is null then
      v_n := genq_stripe_sub_user(v_sub, v_user);
    end if;
    perform genq_stripe_plan_apply(coalesce(s.user_id, v_user));
    return jsonb_build_object('outcome', 'subscription_linked', 'subscription', v_sub,
                              'granted', v_n);
  end if;

  if jsonb_typeof(o -> 'metadata') is distinct from 'object' then
    perform genq_stripe_fail('data.object.metadata.credits', 'is missing');
  end if;
  v_credits := genq_stripe_count(o -> 'metadata' -> 'credits', 'data.object.metadata.credits');
  if v_credits is null or v_credits = 0 then
    perform genq_stripe_fail('data.object.metadata.credits', 'must be a whole number above 0');
  end if;
  v_paid := p_type = 'checkout.session.async_payment_succeeded'
            or (p_type = 'checkout.session.completed'
                and o ->> 'payment_status' in ('paid', 'no_payment_required'));

  perform genq_stripe_pi_lock(v_pi);
  perform genq_account_ensure(v_user);
  insert into stripe_purchases (ref, kind, user_id, credits, status, amount)
  values (v_id, 'checkout', v_user, v_credits, 'pending',
          coalesce(case when jsonb_typeof(o -> 'amount_total') = 'number'
                        and (o ->> 'amount_total') ~ '^[0-9]{1,15}$'
                        then (o ->> 'amount_total')::bigint end, 0))
  on conflict (ref) do nothing;
  select * into p from stripe_purchases where ref = v_id for update;
  if p.kind <> 'checkout' then
    perform genq_stripe_fail('data.object.id', 'names an invoice genq recorded');
  end if;
  if p.payment_intent is null and v_pi is not null
     and not exists (select 1 from stripe_purchases x where x.payment_intent = v_pi) then
    update stripe_purchases set payment_intent = v_pi where ref = v_id;
  end if;

  if p_type = 'checkout.session.async_payment_failed' then
    if p.status = 'failed' then
      return jsonb_build_object('outcome', 'already_failed', 'session', v_id);
    end if;
    update stripe_purchases set status = 'failed', updated_at = now() where ref = v_id;
    v_n := genq_stripe_reverse(v_id, p.granted);
    return jsonb_build_object('outcome', 'failed', 'session', v_id, 'reversed', v_n);
  end if;
  if not v_paid then
    return jsonb_build_object('outcome', 'awaiting_payment', 'session', v_id);
  end if;
  if p.status = 'failed' then
    return jsonb_build_object('outcome', 'ignored', 'reason', 'payment failed', 'session', v_id);
  end if;
  if p.status = 'paid' then
    return jsonb_build_object('outcome', 'already_granted', 'session', v_id);
  end if;
  update stripe_purchases set status = 'paid', updated_at = now() where ref = v_id;
  v_n := genq_stripe_grant(v_id);
  return jsonb_build_object('outcome', 'granted', 'session', v_id, 'credits', v_n);
end $$;

-- genq_stripe_charge_refunded(charge) → what was done. The charge's
-- amount_refunded (cumulative) takes back that share of the credits of the
-- purchase whose payment_intent it names; a charge of a payment_intent no
-- purchase has yet is kept in stripe_refunds_waiting and applied when the
-- purchase is granted.
create or replace function genq_stripe_charge_refunded(o jsonb) returns jsonb
language plpgsql as $$
declare
  v_pi text := genq_stripe_str(o, 'payment_intent');
  v_amount bigint := genq_stripe_count(o -> 'amount', 'data.object.amount');
  v_refunded bigint := genq_stripe_count(o -> 'amount_refunded', 'data.object.amount_refunded');
  p stripe_purchases;
  v_n bigint;
begin
  if v_pi is null then
    perform genq_stripe_fail('data.object.payment_intent', 'must be the payment intent id');
  end if;
  if v_amount is null then
    perform genq_stripe_fail('data.object.amount', 'is missing');
  end if;
  if v_refunded is null then
    perform genq_stripe_fail('data.object.amount_refunded', 'is missing');
  end if;
  perform genq_stripe_pi_lock(v_pi);
  select * into p from stripe_purchases where payment_intent = v_pi for update;
  if not found then
    insert into stripe_refunds_waiting (payment_intent, amount, refunded)
    values (v_pi, v_amount, v_refunded)
    on conflict (payment_intent) do update
      set refunded = greatest(stripe_refunds_waiting.refunded, excluded.refunded),
          amount = excluded.amount;
    return jsonb_build_object('outcome', 'refund_waiting', 'payment_intent', v_pi);
  end if;
  update stripe_purchases
  set refunded = greatest(refunded, v_refunded),
      amount = case when v_amount > 0 then v_amount else amount end, updated_at = now()
  where ref = p.ref returning * into p;
  v_n := genq_stripe_reverse(p.ref, genq_stripe_refund_target(p));
  return jsonb_build_object('outcome', case when v_n > 0 then 'reversed' else 'already_reversed' end,
                            'purchase', p.ref, 'reversed', v_n);
end $$;

-- genq_stripe_invoice_paid(invoice, created) → what was done. A paid
-- invoice of a subscription grants the credits of its lines' prices
-- (stripe_prices, × quantity) once per invoice, to the subscription's
-- user; while the user is not known yet the invoice waits for the
-- Checkout Session or subscription event that names them. An invoice paid
-- after its subscription ended (by event time) grants nothing.
create or replace function genq_stripe_invoice_paid(o jsonb, p_created bigint) returns jsonb
language plpgsql as $$
declare
  v_id text := genq_stripe_str(o, 'id');
  v_sub text := coalesce(genq_stripe_str(o, 'subscription'),
                         genq_stripe_str(o -> 'parent' -> 'subscription_details', 'subscription'));
  v_customer text := genq_stripe_str(o, 'customer');
  v_pi text := genq_stripe_str(o, 'payment_intent');
  v_credits bigint;
  v_user text;
  s stripe_subscriptions;
  p stripe_purchases;
  v_n bigint;
begin
  if v_id is null then
    perform genq_stripe_fail('data.object.id', 'must be the invoice id');
  end if;
  if v_sub is null then
    return jsonb_build_object('outcome', 'ignored', 'reason', 'not a subscription invoice');
  end if;
  if jsonb_typeof(o -> 'lines' -> 'data') is distinct from 'array' then
    perform genq_stripe_fail('data.object.lines.data', 'must be an array');
  end if;
  select coalesce(sum(sp.credits * coalesce(
           genq_stripe_count(case when jsonb_typeof(l -> 'quantity') = 'number' then l -> 'quantity' end,
                             'data.object.lines.data.quantity'), 1)), 0)
  into v_credits
  from jsonb_array_elements(o -> 'lines' -> 'data') l
  join stripe_prices sp
    on sp.price_id = coalesce(genq_stripe_str(l, 'price'),
                              genq_stripe_str(l -> 'pricing' -> 'price_details', 'price'),
                              l -> 'pricing' -> 'price_details' ->> 'price');

  s := genq_stripe_sub_row(v_sub, v_customer);
  if s.ended_at is not null and p_created > s.ended_at then
    return jsonb_build_object('outcome', 'ignored', 'reason', 'subscription ended',
                              'invoice', v_id);
  end if;
  v_user := coalesce(s.user_id, genq_stripe_customer_user(coalesce(v_customer, s.customer_id)));
  if v_user is not null and s.user_id is null then
    update stripe_subscriptions set user_id = v_user where subscription_id = v_sub;
  end if;
  perform genq_stripe_pi_lock(v_pi);
  insert into stripe_purchases (ref, kind, user_id, credits, status, subscription, amount,
                                payment_intent)
  values (v_id, 'invoice', v_user, v_credits, 'paid', v_sub,
          coalesce(genq_stripe_count(case when jsonb_typeof(o -> 'amount_paid') = 'number'
                                          then o -> 'amount_paid' end, 'data.object.amount_paid'), 0),
          case when v_pi is not null
                    and not exists (select 1 from stripe_purchases x where x.payment_intent = v_pi)
               then v_pi end)
  on conflict (ref) do nothing;
  select * into p from stripe_purchases where ref = v_id for update;
  if p.kind <> 'invoice' then
    perform genq_stripe_fail('data.object.id', 'names a Checkout Session genq recorded');
  end if;
  if p.granted > 0 then
    return jsonb_build_object('outcome', 'already_granted', 'invoice', v_id);
  end if;
  if p.user_id is null then
    if v_user is null then
      return jsonb_build_object('outcome', 'waiting_for_user', 'invoice', v_id);
    end if;
    update stripe_purchases set user_id = v_user where ref = v_id;
  end if;
  v_n := genq_stripe_grant(v_id);
  return jsonb_build_object('outcome', case when v_n > 0 then 'granted' else 'no_credits' end,
                            'invoice', v_id, 'credits', v_n);
end $$;

-- genq_stripe_subscription(subscription, type, created) → what was done:
-- customer.subscription.created|updated|deleted. The newest event (by
-- created) sets the subscription's status and price; deleted, canceled,
-- unpaid or incomplete_expired end it for good. Its user (metadata.user_id,
-- else the customer's) then gets the plan of their newest live
-- subscription, else 'free'.
create or replace function genq_stripe_subscription(o jsonb, p_type text, p_created bigint)
returns jsonb
language plpgsql as $$
declare
  v_id text := genq_stripe_str(o, 'id');
  v_customer text := genq_stripe_str(o, 'customer');
  v_status text := genq_stripe_str(o, 'status');
  v_meta_user text;
  v_user text;
  v_price text;
  v_plan text;
  v_ends boolean;
  s stripe_subscriptions;
  v_outcome text;
begin
  if v_id is null then
    perform genq_stripe_fail('data.object.id', 'must be the subscription id');
  end if;
  if v_status is null then
    perform genq_stripe_fail('data.object.status', 'must be the subscription status');
  end if;
  if jsonb_typeof(o -> 'metadata') = 'object' and o -> 'metadata' ? 'user_id' then
    v_meta_user := genq_stripe_user_id(o -> 'metadata', 'user_id', 'data.object.metadata.user_id');
  end if;
  -- the first item whose price sells a plan, else the first item's
  select coalesce(genq_stripe_str(i, 'price'),
                  genq_stripe_str(i -> 'pricing' -> 'price_details', 'price')), sp.plan
  into v_price, v_plan
  from jsonb_array_elements(case when jsonb_typeof(o -> 'items' -> 'data') = 'array'
                                 then o -> 'items' -> 'data' else '[]' end)
       with ordinality x (i, n)
  left join stripe_prices sp
    on sp.price_id = coalesce(genq_stripe_str(i, 'price'),
                              genq_stripe_str(i -> 'pricing' -> 'price_details', 'price'))
  order by (sp.plan is null), x.n limit 1;

  if v_meta_user is not null then
    perform genq_stripe_customer_link(v_customer, v_meta_user);
    perform genq_account_ensure(v_meta_user);
  end if;
  s := genq_stripe_sub_row(v_id, v_customer);
  v_user := coalesce(s.user_id, v_meta_user, genq_stripe_customer_user(v_customer));
  v_ends := p_type = 'customer.subscription.deleted'
            or v_status in ('canceled', 'unpaid', 'incomplete_expired');
  if s.ended_at is not null then
    v_outcome := 'ended';
  elsif p_created < s.event_at then
    v_outcome := 'stale';
  else
    update stripe_subscriptions
    set status = v_status, price_id = v_price, plan = v_plan, event_at = p_created,
        ended_at = case when v_ends then p_created end, updated_at = now()
    where subscription_id = v_id;
    v_outcome := case when v_ends then 'subscription_ended' else 'subscription_updated' end;
  end if;
  if v_user is null then
    return jsonb_build_object('outcome', v_outcome, 'subscription', v_id, 'user', null);
  end if;
  if s.user_id is null then
    perform genq_stripe_sub_user(v_id, v_user);
  end if;
  return jsonb_build_object('outcome', v_outcome, 'subscription', v_id,
                            'plan', genq_stripe_plan_apply(v_user));
end $$;

-- genq_stripe_event(event) → {"event", "type", "outcome", ...}: one Stripe
-- event, whose signature the caller verified, applied in full. Raises
-- GQ400 (the column names the field, e.g. data.object.metadata.credits)
-- for an event genq handles that lacks what it needs, changing nothing;
-- an event type genq does not handle is recorded and answered 'ignored'.
create or replace function genq_stripe_event(p_event jsonb) returns jsonb
language plpgsql as $$
declare
  v_id text;
  v_type text;
  v_created bigint;
  o jsonb;
  r jsonb;
begin
  if p_event is null or jsonb_typeof(p_event) <> 'object' then
    perform genq_stripe_fail('event', 'must be a JSON object');
  end if;
  v_id := genq_stripe_str(p_event, 'id');
  v_type := genq_stripe_str(p_event, 'type');
  if v_id is null or octet_length(v_id) > 255 then
    perform genq_stripe_fail('id', 'must be the event id');
  end if;
  if v_type is null or octet_length(v_type) > 255 then
    perform genq_stripe_fail('type', 'must be the event type');
  end if;
  v_created := coalesce(genq_stripe_count(p_event -> 'created', 'created'), 0);
  o := p_event -> 'data' -> 'object';
  if jsonb_typeof(o) is distinct from 'object' then
    perform genq_stripe_fail('data.object', 'must be an object');
  end if;
  -- the event's row first: two deliveries of one event take turns here
  insert into stripe_events (event_id, type, outcome) values (v_id, v_type, 'received')
  on conflict (event_id) do update
    set deliveries = stripe_events.deliveries + 1, updated_at = now();

  r := case
    when v_type in ('checkout.session.completed', 'checkout.session.async_payment_succeeded',
                    'checkout.session.async_payment_failed')
      then genq_stripe_checkout(o, v_type)
    when v_type = 'charge.refunded' then genq_stripe_charge_refunded(o)
    when v_type = 'invoice.paid' then genq_stripe_invoice_paid(o, v_created)
    when v_type in ('customer.subscription.created', 'customer.subscription.updated',
                    'customer.subscription.deleted')
      then genq_stripe_subscription(o, v_type, v_created)
    else jsonb_build_object('outcome', 'ignored', 'reason', 'event type not handled')
  end;
  update stripe_events set outcome = r ->> 'outcome' where event_id = v_id;
  return jsonb_build_object('event', v_id, 'type', v_type) || r;
end $$;

-- genq_audit_stripe() → the Stripe rows of genq_audit (audit.sql calls it
-- inside its one query, so in the same snapshot). Accounts: debt equals the
-- sum of the account's debt_delta. Purchases: granted is 0 or its credits
-- and equals its grant row, of its user; reversed equals what its reversal
-- rows took (balance and debt); a reversal row names a purchase.
create or replace function genq_audit_stripe()
returns table (check_name text, subject text, detail text)
language sql stable as $$
  with l as (
    select g.user_id, sum(g.debt_delta) as debt from ledger g group by g.user_id
  ), pg as (
    select g.ref, sum(g.balance_delta) filter (where g.movement = 'grant') as granted,
           sum(g.debt_delta - g.balance_delta) filter (where g.movement = 'reversal') as reversed,
           bool_or(g.user_id is distinct from p.user_id) as other_user
    from ledger g join stripe_purchases p on p.ref = g.ref
    where g.idem_key like 'stripe:%' group by g.ref
  )
  select 'debt_vs_ledger'::text, a.user_id,
         format('debt %s, ledger sum %s', a.debt, coalesce(l.debt, 0))
  from accounts a left join l on l.user_id = a.user_id
  where a.debt <> coalesce(l.debt, 0)
  union all
  select 'stripe_purchase_vs_ledger', p.ref,
         format('%s %s: credits %s, granted %s (ledger %s), reversed %s (ledger %s)%s', p.kind,
                p.status, p.credits, p.granted, coalesce(pg.granted, 0), p.reversed,
                coalesce(pg.reversed, 0),
                case when pg.other_user then ', a row of another user' else '' end)
  from stripe_purchases p left join pg on pg.ref = p.ref
  where (p.granted not in (0, p.credits) or p.granted <> coalesce(pg.granted, 0)
         or p.reversed <> coalesce(pg.reversed, 0) or coalesce(pg.other_user, false)
         or (p.granted > 0 and p.status = 'pending'))
    -- its rows folded into the carry row after 2 years (privacy.sql)
    and not (pg.ref is null and genq_audit_folded(p.user_id, p.updated_at))
  union all
  select 'stripe_row_without_purchase', g.user_id,
         format('%s row %s (%s) names purchase %s, which does not exist', g.movement, g.id,
                g.idem_key, coalesce(g.ref, 'none'))
  from ledger g
  where g.movement = 'reversal'
    and not exists (select 1 from stripe_purchases p where p.ref = g.ref)
$$;

-- genq_stripe_prices() → a JSON array of stripe_prices, by price id
-- (genqctl prices list).
create or replace function genq_stripe_prices() returns jsonb
language sql stable as $$
  select coalesce(jsonb_agg(jsonb_build_object('price_id', p.price_id, 'plan', p.plan,
                                               'credits', p.credits, 'updated_at', p.updated_at)
                            order by p.price_id), '[]')
  from stripe_prices p
$$;

-- genq_stripe_price_set(price, plan, credits) → the price's row as JSON
-- (genqctl prices set): creates or changes what a Stripe price sells. plan
-- NULL is a one-off price; a plan that does not exist is 22023. Events
-- read it when they come: earlier grants are never repriced.
create or replace function genq_stripe_price_set(p_price text, p_plan text, p_credits bigint)
returns jsonb
language plpgsql as $$
begin
  if p_price is null or p_price = '' then
    raise exception 'the price id is empty' using errcode = '22023';
  end if;
  if p_credits is null or p_credits < 0 then
    raise exception 'credits must be 0 or more' using errcode = '22023';
  end if;
  if p_plan is not null and not exists (select 1 from plans where plan = p_plan) then
    raise exception 'no plan %', p_plan using errcode = '22023';
  end if;
  insert into stripe_prices (price_id, plan, credits) values (p_price, p_plan, p_credits)
  on conflict (price_id) do update
    set plan = excluded.plan, credits = excluded.credits, updated_at = now();
  return (select x from jsonb_array_elements(genq_stripe_prices()) x
          where x ->> 'price_id' = p_price);
end $$;
