-- Ledger operations as SQL functions: each is one round trip from the API, one transaction,
-- and holds its row locks only while PostgreSQL itself runs (never across the network).
--
-- Refusals raise SQLSTATE KK409 (conflict) / KK403 (forbidden) / KK404 (not found) with the
-- stable refusal code as the message; the API maps them to problem+json.

-- One transfer key per (idempotency key, leg): the database itself refuses a second effect.
create unique index transfers_idem_leg on transfers ((ref ->> 'idem'), (coalesce(ref ->> 'leg', 'main')))
    where ref ? 'idem';

create function kk_refuse(p_code text, p_state text default 'KK409') returns void
language plpgsql as $$
begin
    raise exception '%', p_code using errcode = p_state;
end $$;

create function kk_month(p_day date) returns date language sql immutable as $$
    select date_trunc('month', p_day)::date
$$;

-- Add to a sliced (non-member) account balance.
create function kk_slice_add(p_account bigint, p_slice int, p_amount bigint) returns void
language sql as $$
    insert into account_slices (account_id, slice, posted) values (p_account, p_slice, p_amount)
    on conflict (account_id, slice) do update set posted = account_slices.posted + excluded.posted
$$;

-- Take p_amount from a sliced budget. No budget rows means no cap. Tries the preferred slice,
-- then the fullest others; only when no single slice can cover it, locks them all in order.
create function kk_budget_take(p_key text, p_amount bigint, p_slice int) returns boolean
language plpgsql as $$
declare
    v_slice smallint;
    v_left bigint := p_amount;
    v_take bigint;
    r record;
begin
    if p_amount <= 0 then
        return true;
    end if;
    update budget_slices set remaining = remaining - p_amount
     where budget_key = p_key and slice = p_slice and remaining >= p_amount;
    if found then
        return true;
    end if;
    for v_slice in
        select slice from budget_slices
         where budget_key = p_key and remaining >= p_amount order by remaining desc
    loop
        update budget_slices set remaining = remaining - p_amount
         where budget_key = p_key and slice = v_slice and remaining >= p_amount;
        if found then
            return true;
        end if;
    end loop;
    if not exists (select 1 from budget_slices where budget_key = p_key) then
        return true;
    end if;
    -- Slow path: lock every slice in slice order, then decide on what the locks protect,
    -- so a concurrent take can never make the spread fall short.
    perform 1 from budget_slices where budget_key = p_key order by slice for update;
    if (select sum(remaining) from budget_slices where budget_key = p_key) < p_amount then
        return false;
    end if;
    for r in select slice, remaining from budget_slices where budget_key = p_key
              order by slice
    loop
        v_take := least(r.remaining, v_left);
        if v_take > 0 then
            update budget_slices set remaining = remaining - v_take
             where budget_key = p_key and slice = r.slice;
            v_left := v_left - v_take;
        end if;
        exit when v_left = 0;
    end loop;
    return true;
end $$;

create function kk_budget_give(p_key text, p_amount bigint, p_slice int) returns void
language sql as $$
    update budget_slices set remaining = remaining + p_amount
     where budget_key = p_key and slice = (
        select coalesce((select slice from budget_slices where budget_key = p_key and slice = p_slice),
                        (select min(slice) from budget_slices where budget_key = p_key)))
$$;

-- Create (or reset) a budget split into p_slices slices.
create function kk_budget_set(p_key text, p_total bigint, p_slices int) returns void
language plpgsql as $$
begin
    delete from budget_slices where budget_key = p_key;
    if p_total is null then
        return;
    end if;
    insert into budget_slices (budget_key, slice, remaining)
    select p_key, s, p_total / p_slices + case when s = 0 then p_total % p_slices else 0 end
      from generate_series(0, p_slices - 1) s;
end $$;

create function kk_budget_remaining(p_key text) returns bigint language sql stable as $$
    select sum(remaining)::bigint from budget_slices where budget_key = p_key
$$;

-- Award: funder -> member, with daily caps and budgets checked and counted in the same transaction.
--   p_member_cap:  the member's daily earning cap, or null when this award is not counted
--                  (admin awards and adjustments are audited corrections, API.md).
--   p_merchant:    merchant whose daily award cap applies, or null.
--   p_budget_keys: sliced budgets to take from (e.g. 'funder:3', 'mission:7').
create function kk_award(
    p_member bigint, p_funder bigint, p_amount bigint, p_kind text, p_day date,
    p_member_cap bigint, p_merchant bigint, p_budget_keys text[], p_ref jsonb,
    p_check_hold boolean, p_slices int
) returns table (transfer_id bigint, balance bigint, available bigint)
language plpgsql as $$
declare
    v_status text;
    v_funding bigint;
    v_member_acct bigint;
    v_cap bigint;
    v_key text;
    v_slice int := (p_member % p_slices)::int;
    v_tid bigint;
begin
    if p_amount <= 0 then
        perform kk_refuse('invalid_amount', 'KK422');
    end if;
    select m.status into v_status from members m where m.id = p_member;
    if v_status is null then
        perform kk_refuse('member_not_found', 'KK404');
    end if;
    if p_check_hold and v_status <> 'active' then
        perform kk_refuse('member_on_hold', 'KK403');
    end if;
    select f.account_id into v_funding from funders f where f.id = p_funder;
    if v_funding is null then
        perform kk_refuse('funder_not_found', 'KK404');
    end if;
    if p_member_cap is not null then
        insert into member_daily as d (member_id, day, points) values (p_member, p_day, p_amount)
        on conflict (member_id, day) do update set points = d.points + excluded.points
         where d.points + excluded.points <= p_member_cap;
        if not found or p_amount > p_member_cap then
            perform kk_refuse('daily_limit_reached');
        end if;
    end if;
    if p_merchant is not null then
        select daily_award_cap_points into v_cap from merchants where id = p_merchant;
        insert into merchant_daily as d (merchant_id, day, points, awards)
        values (p_merchant, p_day, p_amount, 1)
        on conflict (merchant_id, day) do update
           set points = d.points + excluded.points, awards = d.awards + 1
         where v_cap is null or d.points + excluded.points <= v_cap;
        if not found or (v_cap is not null and p_amount > v_cap) then
            perform kk_refuse('merchant_daily_cap_reached');
        end if;
    end if;
    if p_budget_keys is not null then
        foreach v_key in array p_budget_keys loop
            if not kk_budget_take(v_key, p_amount, v_slice) then
                perform kk_refuse(split_part(v_key, ':', 1) || '_budget_exhausted');
            end if;
        end loop;
    end if;
    select mb.account_id into v_member_acct from member_balances mb where mb.member_id = p_member;
    insert into transfers (member_id, debit_account_id, credit_account_id, amount, kind, funder_id, ref)
    values (p_member, v_funding, v_member_acct, p_amount, p_kind, p_funder, coalesce(p_ref, '{}'))
    returning id into v_tid;
    -- Lock order everywhere: member_balances, then lots, then sliced accounts (no deadlocks).
    update member_balances mb set posted = mb.posted + p_amount
     where mb.member_id = p_member
    returning mb.posted, mb.posted - mb.reserved into balance, available;
    insert into lots as l (member_id, month, funder_id, earned)
    values (p_member, kk_month(p_day), p_funder, p_amount)
    on conflict (member_id, month, funder_id) do update set earned = l.earned + excluded.earned;
    perform kk_slice_add(v_funding, v_slice, -p_amount);
    transfer_id := v_tid;
    return next;
end $$;

-- Consume p_amount from a member's lots, oldest first (the preferred lot first when given),
-- recording the consumption against p_transfer. Caller has already debited member_balances.
create function kk_consume_lots(
    p_member bigint, p_amount bigint, p_transfer bigint,
    p_pref_month date default null, p_pref_funder bigint default null
) returns void language plpgsql as $$
declare
    v_left bigint := p_amount;
    v_take bigint;
    r record;
begin
    for r in
        select month, funder_id, earned - spent - reserved - expired as free
          from lots
         where member_id = p_member and earned - spent - reserved - expired > 0
         order by (month = p_pref_month and funder_id = p_pref_funder) desc nulls last,
                  month, funder_id
           for update
    loop
        v_take := least(r.free, v_left);
        update lots set spent = spent + v_take
         where member_id = p_member and month = r.month and funder_id = r.funder_id;
        insert into transfer_lots (transfer_id, member_id, month, funder_id, amount)
        values (p_transfer, p_member, r.month, r.funder_id, v_take);
        v_left := v_left - v_take;
        exit when v_left = 0;
    end loop;
    if v_left > 0 then
        raise exception 'lots do not cover % points of member %', v_left, p_member using errcode = 'KK500';
    end if;
end $$;

-- Debit: member -> another account (adjustment down, reversal), consuming lots oldest first.
create function kk_debit(
    p_member bigint, p_amount bigint, p_credit_account bigint, p_kind text, p_funder bigint,
    p_reverses bigint, p_ref jsonb, p_slices int,
    p_pref_month date default null, p_pref_funder bigint default null
) returns table (transfer_id bigint, balance bigint, available bigint)
language plpgsql as $$
declare
    v_member_acct bigint;
    v_tid bigint;
    v_posted bigint;
    v_reserved bigint;
begin
    update member_balances mb set posted = mb.posted - p_amount
     where mb.member_id = p_member and mb.posted - mb.reserved >= p_amount
    returning mb.account_id, mb.posted, mb.reserved into v_member_acct, v_posted, v_reserved;
    if v_member_acct is null then
        if not exists (select 1 from member_balances where member_id = p_member) then
            perform kk_refuse('member_not_found', 'KK404');
        end if;
        perform kk_refuse('insufficient_points');
    end if;
    insert into transfers (member_id, debit_account_id, credit_account_id, amount, kind, funder_id,
                           reverses_id, ref)
    values (p_member, v_member_acct, p_credit_account, p_amount, p_kind, p_funder, p_reverses,
            coalesce(p_ref, '{}'))
    returning id into v_tid;
    perform kk_consume_lots(p_member, p_amount, v_tid, p_pref_month, p_pref_funder);
    perform kk_slice_add(p_credit_account, (p_member % p_slices)::int, p_amount);
    return query select v_tid, v_posted, v_posted - v_reserved;
end $$;

-- Negative admin adjustment: member -> adjustment account.
create function kk_adjust_down(p_member bigint, p_amount bigint, p_ref jsonb, p_slices int)
returns table (transfer_id bigint, balance bigint, available bigint)
language sql as $$
    select * from kk_debit(p_member, p_amount,
        (select id from accounts where kind = 'adjustment' and owner_id is null),
        'adjust', null, null, p_ref, p_slices)
$$;

-- Reverse an award: the mirror transfer back to the funding account, from the same lot first.
create function kk_reverse(p_transfer bigint, p_ref jsonb, p_slices int)
returns table (transfer_id bigint, balance bigint, available bigint)
language plpgsql as $$
declare
    t transfers%rowtype;
begin
    select * into t from transfers where id = p_transfer;
    if t.id is null then
        perform kk_refuse('transfer_not_found', 'KK404');
    end if;
    if t.kind not in ('award', 'adjust') or t.funder_id is null
       or not exists (select 1 from member_balances where account_id = t.credit_account_id) then
        perform kk_refuse('transfer_not_reversible');
    end if;
    if exists (select 1 from transfers where reverses_id = p_transfer) then
        perform kk_refuse('transfer_already_reversed');
    end if;
    return query select * from kk_debit(t.member_id, t.amount, t.debit_account_id, 'reverse',
        t.funder_id, t.id, p_ref, p_slices, kk_month((t.created_at at time zone 'Asia/Bangkok')::date),
        t.funder_id);
end $$;

-- Reserve (phase one): points leave "available" but stay in the pocket until posted or voided.
create function kk_reserve(p_member bigint, p_amount bigint, p_expires_at timestamptz, p_ref jsonb,
                           p_check_hold boolean)
returns table (pending_id bigint, balance bigint, available bigint)
language plpgsql as $$
declare
    v_status text;
    v_acct bigint;
    v_posted bigint;
    v_reserved bigint;
    v_pid bigint;
    v_left bigint := p_amount;
    v_take bigint;
    r record;
begin
    if p_amount <= 0 then
        perform kk_refuse('invalid_amount', 'KK422');
    end if;
    select status into v_status from members where id = p_member;
    if v_status is null then
        perform kk_refuse('member_not_found', 'KK404');
    end if;
    if p_check_hold and v_status <> 'active' then
        perform kk_refuse('member_on_hold', 'KK403');
    end if;
    update member_balances mb set reserved = mb.reserved + p_amount
     where mb.member_id = p_member and mb.posted - mb.reserved >= p_amount
    returning mb.account_id, mb.posted, mb.reserved into v_acct, v_posted, v_reserved;
    if v_acct is null then
        perform kk_refuse('insufficient_points');
    end if;
    insert into pending_transfers (member_id, debit_account_id, amount, expires_at, ref)
    values (p_member, v_acct, p_amount, p_expires_at, coalesce(p_ref, '{}'))
    returning id into v_pid;
    for r in
        select month, funder_id, earned - spent - reserved - expired as free
          from lots where member_id = p_member and earned - spent - reserved - expired > 0
         order by month, funder_id for update
    loop
        v_take := least(r.free, v_left);
        update lots set reserved = reserved + v_take
         where member_id = p_member and month = r.month and funder_id = r.funder_id;
        insert into pending_lots (pending_id, member_id, month, funder_id, amount)
        values (v_pid, p_member, r.month, r.funder_id, v_take);
        v_left := v_left - v_take;
        exit when v_left = 0;
    end loop;
    if v_left > 0 then
        raise exception 'lots do not cover reserve of member %', p_member using errcode = 'KK500';
    end if;
    return query select v_pid, v_posted, v_posted - v_reserved;
end $$;

-- Post (phase two): the reserved points move to p_credit_account; exactly once.
create function kk_post(p_pending bigint, p_credit_account bigint, p_ref jsonb, p_slices int)
returns table (transfer_id bigint, balance bigint, available bigint)
language plpgsql as $$
declare
    p pending_transfers%rowtype;
    v_tid bigint;
    v_posted bigint;
    v_reserved bigint;
    r record;
begin
    update pending_transfers set status = 'posted', resolved_at = now(), credit_account_id = p_credit_account
     where id = p_pending and status = 'pending' and expires_at > now()
    returning * into p;
    if p.id is null then
        select * into p from pending_transfers where id = p_pending;
        if p.id is null then
            perform kk_refuse('pending_not_found', 'KK404');
        elsif p.status = 'posted' then
            perform kk_refuse('coupon_already_used');
        elsif p.status = 'voided' then
            perform kk_refuse('coupon_void');
        else
            perform kk_refuse('coupon_expired');
        end if;
    end if;
    insert into transfers (member_id, debit_account_id, credit_account_id, amount, kind, pending_id, ref)
    values (p.member_id, p.debit_account_id, p_credit_account, p.amount, 'redeem', p.id,
            coalesce(p_ref, '{}') || p.ref)
    returning id into v_tid;
    update pending_transfers set posted_transfer_id = v_tid where id = p.id;
    update member_balances mb set posted = mb.posted - p.amount, reserved = mb.reserved - p.amount
     where mb.member_id = p.member_id returning mb.posted, mb.reserved into v_posted, v_reserved;
    for r in select * from pending_lots where pending_id = p.id loop
        update lots set reserved = reserved - r.amount, spent = spent + r.amount
         where member_id = r.member_id and month = r.month and funder_id = r.funder_id;
        insert into transfer_lots (transfer_id, member_id, month, funder_id, amount)
        values (v_tid, r.member_id, r.month, r.funder_id, r.amount);
    end loop;
    perform kk_slice_add(p_credit_account, (p.member_id % p_slices)::int, p.amount);
    return query select v_tid, v_posted, v_posted - v_reserved;
end $$;

-- Void: the reserved points return to "available"; exactly once.
create function kk_void(p_pending bigint)
returns table (balance bigint, available bigint)
language plpgsql as $$
declare
    p pending_transfers%rowtype;
    r record;
begin
    update pending_transfers set status = 'voided', resolved_at = now()
     where id = p_pending and status = 'pending'
    returning * into p;
    if p.id is null then
        perform kk_refuse('pending_not_open');
    end if;
    update member_balances mb set reserved = mb.reserved - p.amount
     where mb.member_id = p.member_id returning mb.posted, mb.posted - mb.reserved
      into balance, available;
    for r in select * from pending_lots where pending_id = p.id loop
        update lots set reserved = reserved - r.amount
         where member_id = r.member_id and month = r.month and funder_id = r.funder_id;
    end loop;
    return next;
end $$;

-- Expire lots earned before p_before_month: each lot's remainder (earned - spent - reserved -
-- expired, never a total) moves member -> expired, attributed to the lot's funder.
create function kk_expire_lots(p_before_month date, p_limit int, p_slices int)
returns table (member_id bigint, month date, funder_id bigint, points bigint)
language plpgsql as $$
declare
    r record;
    v_tid bigint;
    v_acct bigint;
    v_free bigint;
    v_expired bigint := (select id from accounts where kind = 'expired' and owner_id is null);
begin
    for r in
        select l.member_id, l.month, l.funder_id from lots l
         where l.month < p_before_month and l.earned - l.spent - l.reserved - l.expired > 0
         order by l.month, l.member_id
         limit p_limit
    loop
        -- Same lock order as every other operation: the pocket first, then its lot; the
        -- remainder is recomputed under the lock so a concurrent spend is never expired.
        select mb.account_id into v_acct from member_balances mb
         where mb.member_id = r.member_id for update;
        select l.earned - l.spent - l.reserved - l.expired into v_free from lots l
         where l.member_id = r.member_id and l.month = r.month and l.funder_id = r.funder_id
           for update;
        continue when v_free is null or v_free <= 0;
        update lots l set expired = l.expired + v_free
         where l.member_id = r.member_id and l.month = r.month and l.funder_id = r.funder_id;
        update member_balances mb set posted = mb.posted - v_free where mb.member_id = r.member_id;
        insert into transfers (member_id, debit_account_id, credit_account_id, amount, kind, funder_id, ref)
        values (r.member_id, v_acct, v_expired, v_free, 'expire', r.funder_id,
                jsonb_build_object('lot_month', r.month))
        returning id into v_tid;
        insert into transfer_lots (transfer_id, member_id, month, funder_id, amount)
        values (v_tid, r.member_id, r.month, r.funder_id, v_free);
        perform kk_slice_add(v_expired, (r.member_id % p_slices)::int, v_free);
        member_id := r.member_id; month := r.month; funder_id := r.funder_id; points := v_free;
        return next;
    end loop;
end $$;

-- Idempotency: claim a key inside the caller's transaction. Returns null when claimed (go on),
-- or the stored record {hash, status, body} when the key was already used.
create function kk_idem_claim(p_scope text, p_key text, p_hash text) returns jsonb
language plpgsql as $$
declare
    v jsonb;
begin
    insert into idempotency_keys (scope, key, request_hash, status_code, body)
    values (p_scope, p_key, p_hash, 0, 'null') on conflict do nothing;
    if found then
        return null;
    end if;
    select jsonb_build_object('hash', request_hash, 'status', status_code, 'body', body) into v
      from idempotency_keys where scope = p_scope and key = p_key;
    return v;
end $$;

create function kk_idem_store(p_scope text, p_key text, p_status int, p_body jsonb) returns void
language sql as $$
    update idempotency_keys set status_code = p_status, body = p_body
     where scope = p_scope and key = p_key
$$;

-- Idempotent award in one round trip: claim the key, award, store the response.
create function kk_award_idem(
    p_scope text, p_key text, p_hash text,
    p_member bigint, p_funder bigint, p_amount bigint, p_kind text, p_day date,
    p_member_cap bigint, p_merchant bigint, p_budget_keys text[], p_ref jsonb,
    p_check_hold boolean, p_slices int, p_extra jsonb default '{}'::jsonb,
    p_outbox_topic text default null
) returns jsonb language plpgsql as $$
declare
    v_prev jsonb := kk_idem_claim(p_scope, p_key, p_hash);
    r record;
    v_body jsonb;
begin
    if v_prev is not null then
        return v_prev || jsonb_build_object('replay', true);
    end if;
    select * into r from kk_award(p_member, p_funder, p_amount, p_kind, p_day, p_member_cap,
        p_merchant, p_budget_keys,
        coalesce(p_ref, '{}') || jsonb_build_object('idem', p_scope || ':' || p_key),
        p_check_hold, p_slices);
    v_body := coalesce(p_extra, '{}') || jsonb_build_object(
        'transfer_id', r.transfer_id, 'balance', r.balance, 'available', r.available,
        'points', p_amount, 'member_id', p_member);
    if p_outbox_topic is not null then
        insert into outbox (topic, member_id, payload) values (p_outbox_topic, p_member,
            v_body || jsonb_build_object('funder_id', p_funder, 'merchant_id', p_merchant,
                                         'ref', p_ref, 'at', now()));
    end if;
    perform kk_idem_store(p_scope, p_key, 201, v_body);
    return jsonb_build_object('status', 201, 'body', v_body, 'hash', p_hash, 'replay', false);
end $$;
