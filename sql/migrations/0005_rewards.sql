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
-- kk_qr_use(): its current body is sql/functions/kk_qr_use.sql
-- kk_earned_12m(): its current body is sql/functions/kk_earned_12m.sql
-- kk_tier_upgrade(): its current body is sql/functions/kk_tier_upgrade.sql
-- kk_lots_tier_trigger(): its current body is sql/functions/kk_lots_tier_trigger.sql
create trigger lots_tier_upgrade after insert or update of earned on lots
    for each row execute function kk_lots_tier_trigger();
-- kk_tier_review(): its current body is sql/functions/kk_tier_review.sql
-- kk_redeem_reward(): its current body is sql/functions/kk_redeem_reward.sql
-- kk_void_coupon(): its current body is sql/functions/kk_void_coupon.sql
-- kk_scan_coupon(): its current body is sql/functions/kk_scan_coupon.sql
-- kk_purchase_scan(): its current body is sql/functions/kk_purchase_scan.sql

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
