-- Rewards, coupons (two-phase redemption), member QR scans, tiers. Forward-only.
--
-- Lock order, shared with the ledger functions so nothing deadlocks:
--   coupons -> member_balances -> lots -> reward_member_counts -> rewards
-- The reward's stock row is the only hot row here and is taken last, so it is held for the
-- shortest time (DESIGN.md §3, one round trip per ledger operation).

-- Tiers are created by missions (0004) too; whichever migration runs first makes the table.
create table if not exists tiers (
    code text primary key,
    multiplier numeric(4, 2) not null,
    threshold_points bigint not null
);
insert into tiers (code, multiplier, threshold_points)
values ('standard', 1.0, 0), ('vip', 1.5, 5000)
on conflict do nothing;

-- Every tier change, with why; an upgrade happens at most once per crossing (members row lock).
create table tier_changes (
    id bigint generated always as identity primary key,
    member_id bigint not null references members (id),
    from_tier text not null,
    to_tier text not null,
    earned_12m_points bigint not null,
    reason text not null check (reason in ('upgrade', 'yearly_review')),
    created_at timestamptz not null default now()
);
create index tier_changes_member on tier_changes (member_id, id);

create table rewards (
    id bigint generated always as identity primary key,
    name_th text not null,
    name_en text not null,
    category text not null default 'merchant_voucher'
        check (category in ('otop_product', 'merchant_voucher', 'public_service')),
    cost_points bigint not null check (cost_points > 0),
    -- Stock can never go negative: the database refuses it, whatever the code does.
    stock bigint not null check (stock >= 0),
    per_member_limit int check (per_member_limit is null or per_member_limit > 0),
    coupon_valid_days int not null check (coupon_valid_days between 1 and 366),
    min_tier text references tiers (code),
    funder_id bigint references funders (id),
    status text not null default 'active' check (status in ('active', 'retired')),
    created_at timestamptz not null default now()
);

create table reward_merchants (
    reward_id bigint not null references rewards (id),
    merchant_id bigint not null references merchants (id),
    primary key (reward_id, merchant_id)
);
create index reward_merchants_merchant on reward_merchants (merchant_id);

-- Coupons a member holds for a reward (issued - voided), against per_member_limit.
create table reward_member_counts (
    reward_id bigint not null references rewards (id),
    member_id bigint not null references members (id),
    held int not null default 0 check (held >= 0),
    primary key (reward_id, member_id)
);

create table coupons (
    id bigint generated always as identity primary key,
    code text not null unique,
    reward_id bigint not null references rewards (id),
    member_id bigint not null references members (id),
    pending_id bigint not null unique references pending_transfers (id),
    points bigint not null check (points > 0),
    status text not null default 'issued' check (status in ('issued', 'redeemed', 'voided')),
    expires_at timestamptz not null,
    redeemed_merchant_id bigint references merchants (id),
    transfer_id bigint unique references transfers (id),
    created_at timestamptz not null default now(),
    resolved_at timestamptz,
    check ((status = 'redeemed') = (transfer_id is not null))
);
create index coupons_member on coupons (member_id, id desc);
create index coupons_open_expiry on coupons (expires_at) where status = 'issued';

-- Single use, enforced in the database: one posted transfer per pending transfer.
create unique index transfers_one_post_per_pending on transfers (pending_id)
    where pending_id is not null;
create index transfers_redeem_day on transfers (credit_account_id, created_at) where kind = 'redeem';

-- First use of each member QR token (its jti): the same token at another merchant is a replay.
create table qr_uses (
    jti text primary key,
    member_id bigint not null,
    merchant_id bigint not null,
    used_at timestamptz not null default now()
);
create index qr_uses_used_at on qr_uses (used_at);

create function kk_qr_use(p_jti text, p_member bigint, p_merchant bigint) returns void
language plpgsql as $$
begin
    insert into qr_uses (jti, member_id, merchant_id) values (p_jti, p_member, p_merchant)
    on conflict (jti) do nothing;
    if not found and exists (select 1 from qr_uses where jti = p_jti and merchant_id <> p_merchant) then
        perform kk_refuse('member_token_replayed');
    end if;
end $$;

-- Rolling 12-month earnings, at month granularity (lots are monthly): this month and the 11 before.
create function kk_earned_12m(p_member bigint, p_today date) returns bigint
language sql stable as $$
    select coalesce(sum(earned), 0)::bigint from lots
     where member_id = p_member and month > (date_trunc('month', p_today) - interval '12 months')::date
$$;

-- Upgrade only (downgrades wait for the yearly review). Runs after every lot credit, so any award
-- (purchase, mission, admin) can upgrade; the members row lock makes a crossing upgrade once.
create function kk_tier_upgrade(p_member bigint) returns text
language plpgsql as $$
declare
    v_earned bigint;
    v_cur text;
    v_cur_threshold bigint;
    v_best text;
begin
    select m.tier, coalesce(t.threshold_points, 0) into v_cur, v_cur_threshold
      from members m left join tiers t on t.code = m.tier where m.id = p_member;
    -- Fast exit: no tier above the current one.
    if not exists (select 1 from tiers where threshold_points > v_cur_threshold) then
        return null;
    end if;
    v_earned := kk_earned_12m(p_member, (now() at time zone 'Asia/Bangkok')::date);
    select code into v_best from tiers
     where threshold_points <= v_earned and threshold_points > v_cur_threshold
     order by threshold_points desc limit 1;
    if v_best is null then
        return null;
    end if;
    update members set tier = v_best where id = p_member and tier = v_cur;
    if not found then
        return null;
    end if;
    insert into tier_changes (member_id, from_tier, to_tier, earned_12m_points, reason)
    values (p_member, v_cur, v_best, v_earned, 'upgrade');
    insert into outbox (topic, member_id, payload)
    values ('tier.changed', p_member, jsonb_build_object('from', v_cur, 'to', v_best,
            'earned_12m_points', v_earned));
    return v_best;
end $$;

create function kk_lots_tier_trigger() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' or new.earned > old.earned then
        perform kk_tier_upgrade(new.member_id);
    end if;
    return null;
end $$;
create trigger lots_tier_upgrade after insert or update of earned on lots
    for each row execute function kk_lots_tier_trigger();

-- Yearly review: every member gets the tier their rolling 12 months earn (up or down).
create function kk_tier_review(p_today date, p_after_member bigint, p_limit int)
returns table (member_id bigint, from_tier text, to_tier text)
language plpgsql as $$
declare
    r record;
    v_earned bigint;
    v_best text;
begin
    for r in select m.id, m.tier from members m where m.id > p_after_member order by m.id limit p_limit
    loop
        v_earned := kk_earned_12m(r.id, p_today);
        select code into v_best from tiers where threshold_points <= v_earned
         order by threshold_points desc limit 1;
        v_best := coalesce(v_best, 'standard');
        member_id := r.id; from_tier := r.tier; to_tier := v_best;
        if v_best <> r.tier then
            update members set tier = v_best where id = r.id and tier = r.tier;
            if found then
                insert into tier_changes (member_id, from_tier, to_tier, earned_12m_points, reason)
                values (r.id, r.tier, v_best, v_earned, 'yearly_review');
            end if;
        end if;
        return next;
    end loop;
end $$;

-- Redeem (phase one): reserve the points, take one from stock and the member's limit, issue the
-- coupon under the first free code among p_codes. One round trip.
create function kk_redeem_reward(p_member bigint, p_reward bigint, p_codes text[], p_ref jsonb)
returns jsonb language plpgsql as $$
declare
    r rewards%rowtype;
    v_tier_ok boolean;
    v_exp timestamptz;
    v_pid bigint;
    v_available bigint;
    v_code text;
    v_cid bigint;
begin
    select * into r from rewards where id = p_reward;
    if r.id is null then
        perform kk_refuse('reward_not_found', 'KK404');
    end if;
    if r.status <> 'active' then
        perform kk_refuse('reward_unavailable');
    end if;
    if r.stock <= 0 then  -- unlocked read: fail fast; the locked update below decides
        perform kk_refuse('out_of_stock');
    end if;
    if r.min_tier is not null then
        select coalesce(mt.threshold_points, 0) >= rt.threshold_points into v_tier_ok
          from members m left join tiers mt on mt.code = m.tier, tiers rt
         where m.id = p_member and rt.code = r.min_tier;
        if not coalesce(v_tier_ok, false) then
            perform kk_refuse('tier_too_low', 'KK403');
        end if;
    end if;
    v_exp := now() + make_interval(days => r.coupon_valid_days);
    select k.pending_id, k.available into v_pid, v_available
      from kk_reserve(p_member, r.cost_points, v_exp,
                      coalesce(p_ref, '{}') || jsonb_build_object('reward_id', r.id), true) k;
    if r.per_member_limit is not null then
        insert into reward_member_counts as c (reward_id, member_id, held)
        values (r.id, p_member, 1)
        on conflict (reward_id, member_id) do update set held = c.held + 1
         where c.held + 1 <= r.per_member_limit;
        if not found then
            perform kk_refuse('reward_limit_reached');
        end if;
    end if;
    update rewards set stock = stock - 1 where id = r.id and stock > 0;
    if not found then
        perform kk_refuse('out_of_stock');
    end if;
    foreach v_code in array p_codes loop
        insert into coupons (code, reward_id, member_id, pending_id, points, expires_at)
        values (v_code, r.id, p_member, v_pid, r.cost_points, v_exp)
        on conflict (code) do nothing
        returning id into v_cid;
        exit when v_cid is not null;
    end loop;
    if v_cid is null then
        raise exception 'coupon code collision' using errcode = '40001';
    end if;
    insert into outbox (topic, member_id, payload) values ('reward.redeemed', p_member,
        jsonb_build_object('coupon_id', v_cid, 'reward_id', r.id, 'points', r.cost_points));
    return jsonb_build_object('redemption_id', v_cid, 'coupon_code', v_code, 'reward_id', r.id,
        'points_reserved', r.cost_points, 'expires_at', v_exp, 'available', v_available - r.cost_points);
end $$;

-- Void an unused coupon at expiry: points back to available, stock and limit back; exactly once.
create function kk_void_coupon(p_coupon bigint, p_now timestamptz) returns boolean
language plpgsql as $$
declare
    c coupons%rowtype;
begin
    update coupons set status = 'voided', resolved_at = now()
     where id = p_coupon and status = 'issued' and expires_at <= p_now
    returning * into c;
    if c.id is null then
        return false;
    end if;
    perform kk_void(c.pending_id);
    update reward_member_counts set held = held - 1
     where reward_id = c.reward_id and member_id = c.member_id and held > 0;
    update rewards set stock = stock + 1 where id = c.reward_id;
    insert into outbox (topic, member_id, payload) values ('coupon.voided', c.member_id,
        jsonb_build_object('coupon_id', c.id, 'reward_id', c.reward_id, 'points', c.points));
    return true;
end $$;

-- Merchant scan of a coupon (phase two): post the reserved points to the merchant's redemption
-- account. The coupon row lock serialises two counters scanning the same coupon.
create function kk_scan_coupon(p_code text, p_member bigint, p_merchant bigint, p_jti text,
                               p_ref jsonb, p_slices int)
returns jsonb language plpgsql as $$
declare
    c coupons%rowtype;
    v_acct bigint;
    v_status text;
    v_tid bigint;
begin
    if p_jti is not null then
        perform kk_qr_use(p_jti, p_member, p_merchant);
    end if;
    select * into c from coupons where code = p_code for update;
    if c.id is null then
        perform kk_refuse('coupon_not_found', 'KK404');
    end if;
    if c.member_id <> p_member then
        perform kk_refuse('coupon_not_owned', 'KK403');
    end if;
    if not exists (select 1 from reward_merchants where reward_id = c.reward_id and merchant_id = p_merchant) then
        perform kk_refuse('coupon_wrong_merchant', 'KK403');
    end if;
    select status into v_status from members where id = p_member;
    if v_status <> 'active' then
        perform kk_refuse('member_on_hold', 'KK403');
    end if;
    if c.status = 'redeemed' then
        perform kk_refuse('coupon_already_used');
    elsif c.status = 'voided' then
        perform kk_refuse('coupon_void');
    elsif c.expires_at <= now() then
        perform kk_refuse('coupon_expired');
    end if;
    select redemption_account_id into v_acct from merchants where id = p_merchant;
    select k.transfer_id into v_tid from kk_post(c.pending_id, v_acct,
        coalesce(p_ref, '{}') || jsonb_build_object('coupon_id', c.id, 'merchant_id', p_merchant,
                                                    'reward_id', c.reward_id), p_slices) k;
    update coupons set status = 'redeemed', resolved_at = now(), redeemed_merchant_id = p_merchant,
                       transfer_id = v_tid
     where id = c.id;
    insert into outbox (topic, member_id, payload) values ('coupon.redeemed', p_member,
        jsonb_build_object('coupon_id', c.id, 'merchant_id', p_merchant, 'points', c.points,
                           'transfer_id', v_tid));
    return jsonb_build_object('action', 'redeem', 'points', c.points, 'member_id', p_member,
        'coupon_id', c.id, 'reward_id', c.reward_id, 'transfer_id', v_tid);
end $$;

-- Merchant scan with a purchase: award p_points (already earn rule x tier multiplier) from the
-- merchant's funder, with the member's and the merchant's daily caps and the funder's budget.
create function kk_purchase_scan(p_member bigint, p_merchant bigint, p_jti text, p_points bigint,
                                 p_day date, p_member_cap bigint, p_ref jsonb, p_slices int)
returns jsonb language plpgsql as $$
declare
    v_funder bigint;
    r record;
    v_body jsonb;
begin
    if p_jti is not null then
        perform kk_qr_use(p_jti, p_member, p_merchant);
    end if;
    select funder_id into v_funder from merchants where id = p_merchant and status = 'active';
    if v_funder is null then
        perform kk_refuse('merchant_not_found', 'KK404');
    end if;
    select * into r from kk_award(p_member, v_funder, p_points, 'award', p_day, p_member_cap,
        p_merchant, array['funder:' || v_funder], p_ref, true, p_slices);
    v_body := jsonb_build_object('action', 'award', 'points', p_points, 'member_id', p_member,
        'transfer_id', r.transfer_id, 'balance', r.balance, 'funder_id', v_funder);
    insert into outbox (topic, member_id, payload) values ('points.awarded', p_member,
        v_body || jsonb_build_object('merchant_id', p_merchant, 'ref', p_ref, 'at', now()));
    return v_body;
end $$;

-- Merchant reports: what happened at a shop, by day, without scanning all transfers.
create index transfers_merchant_created on transfers (((ref ->> 'merchant_id')::bigint), created_at)
    where ref ? 'merchant_id';
create index coupons_redeemed_at on coupons (redeemed_merchant_id, resolved_at)
    where status = 'redeemed';

-- Missions completed by a purchase scan at a shop ("top missions done at the shop").
create table merchant_mission_completions (
    merchant_id bigint not null references merchants (id),
    day date not null,
    mission_id bigint not null,
    mission_code text not null,
    member_id bigint not null,
    points bigint not null,
    created_at timestamptz not null default now()
);
create index merchant_mission_completions_day on merchant_mission_completions (merchant_id, day);
