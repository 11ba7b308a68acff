-- KueKan core: members, funders, merchants, the double-entry ledger, idempotency, limits, outbox.
-- Forward-only. Points are bigint; times are timestamptz (UTC); business days are Asia/Bangkok dates.

create table organisations (
    code text primary key,
    name text not null
);
insert into organisations (code, name) values
    ('pao', 'Nakhon Ratchasima Provincial Administrative Organisation'),
    ('chamber', 'Nakhon Ratchasima Chamber of Commerce');

create table members (
    id bigint generated always as identity primary key,
    line_sub text not null unique,
    display_name text not null default '',
    tier text not null default 'standard',
    status text not null default 'active' check (status in ('active', 'on_hold', 'banned', 'erased')),
    hold_reason text,
    segment text not null default 'resident' check (segment in ('resident', 'tourist')),
    district_code text,
    created_at timestamptz not null default now()
);

create table accounts (
    id bigint generated always as identity primary key,
    kind text not null check (kind in ('member', 'funding', 'merchant_redemption', 'expired', 'adjustment')),
    owner_id bigint,
    created_at timestamptz not null default now(),
    unique (kind, owner_id)
);
-- Exactly one expired and one adjustment system account.
create unique index accounts_one_system on accounts (kind) where owner_id is null;
insert into accounts (kind) values ('expired'), ('adjustment');

-- A member's pocket: one exact row, so the database itself refuses an overdraft.
create table member_balances (
    member_id bigint primary key references members (id),
    account_id bigint not null unique references accounts (id),
    posted bigint not null default 0,
    reserved bigint not null default 0,
    constraint member_reserved_non_negative check (reserved >= 0),
    constraint member_available_non_negative check (posted - reserved >= 0)
);

-- Every other account's balance is spread over slices so that thousands of concurrent awards
-- from one funder never queue on one row lock (DESIGN.md §3, hot accounts).
create table account_slices (
    account_id bigint not null references accounts (id),
    slice smallint not null,
    posted bigint not null default 0,
    primary key (account_id, slice)
);

create table funders (
    id bigint generated always as identity primary key,
    code text not null unique,
    name text not null,
    org text references organisations (code),
    account_id bigint not null unique references accounts (id),
    budget_points bigint check (budget_points is null or budget_points >= 0),
    created_at timestamptz not null default now()
);

create table merchants (
    id bigint generated always as identity primary key,
    name text not null,
    district_code text not null,
    lat double precision not null,
    lon double precision not null,
    category text not null,
    thb_per_point numeric(12, 2) not null check (thb_per_point > 0),
    min_spend_thb numeric(12, 2) not null default 0,
    funder_id bigint not null references funders (id),
    daily_award_cap_points bigint check (daily_award_cap_points is null or daily_award_cap_points >= 0),
    redemption_account_id bigint not null unique references accounts (id),
    status text not null default 'active',
    created_at timestamptz not null default now()
);

-- Staff identities (merchant staff and admins); members are in members.
create table staff (
    id bigint generated always as identity primary key,
    line_sub text not null unique,
    role text not null check (role in ('merchant', 'admin')),
    merchant_id bigint references merchants (id),
    org text references organisations (code),
    created_at timestamptz not null default now(),
    check ((role = 'merchant' and merchant_id is not null) or (role = 'admin' and org is not null))
);

-- Immutable transfers: debit account loses, credit account gains. member_id is the member the
-- movement belongs to (the shard key at national scale); funder_id whose points these are.
create table transfers (
    id bigint generated always as identity primary key,
    member_id bigint references members (id),
    debit_account_id bigint not null references accounts (id),
    credit_account_id bigint not null references accounts (id),
    amount bigint not null check (amount > 0),
    kind text not null check (kind in ('award', 'adjust', 'redeem', 'expire', 'reverse')),
    funder_id bigint references funders (id),
    reverses_id bigint unique references transfers (id),
    pending_id bigint,
    ref jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    check (debit_account_id <> credit_account_id)
);
create index transfers_member_id on transfers (member_id, id desc);
create index transfers_created_at on transfers (created_at);
create index transfers_funder_kind on transfers (funder_id, kind);

-- Two-phase (pending) transfers: reserve -> post | void.
create table pending_transfers (
    id bigint generated always as identity primary key,
    member_id bigint not null references members (id),
    debit_account_id bigint not null references accounts (id),
    amount bigint not null check (amount > 0),
    status text not null default 'pending' check (status in ('pending', 'posted', 'voided')),
    expires_at timestamptz not null,
    posted_transfer_id bigint references transfers (id),
    credit_account_id bigint references accounts (id),
    ref jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    resolved_at timestamptz
);
create index pending_open_expiry on pending_transfers (expires_at) where status = 'pending';
create index pending_member on pending_transfers (member_id);

-- Monthly lots: what each funder put in a member's pocket in a month, and what became of it.
create table lots (
    member_id bigint not null references members (id),
    month date not null check (extract(day from month) = 1),
    funder_id bigint not null references funders (id),
    earned bigint not null default 0 check (earned >= 0),
    spent bigint not null default 0 check (spent >= 0),
    reserved bigint not null default 0 check (reserved >= 0),
    expired bigint not null default 0 check (expired >= 0),
    primary key (member_id, month, funder_id),
    constraint lot_not_overdrawn check (spent + reserved + expired <= earned)
);
create index lots_month on lots (month) where earned > spent + expired;

-- Which lots each outgoing transfer consumed (settlement: spent at B, funded by A).
create table transfer_lots (
    transfer_id bigint not null references transfers (id),
    member_id bigint not null,
    month date not null,
    funder_id bigint not null,
    amount bigint not null check (amount > 0),
    primary key (transfer_id, month, funder_id)
);
create index transfer_lots_funder on transfer_lots (funder_id);

-- Lot allocations held by an open pending transfer.
create table pending_lots (
    pending_id bigint not null references pending_transfers (id),
    member_id bigint not null,
    month date not null,
    funder_id bigint not null,
    amount bigint not null check (amount > 0),
    primary key (pending_id, month, funder_id)
);

-- Budgets (funder, mission, ...) split into slices: a take tries one slice, then the others.
create table budget_slices (
    budget_key text not null,
    slice smallint not null,
    remaining bigint not null check (remaining >= 0),
    primary key (budget_key, slice)
);

-- Daily counters on Asia/Bangkok days: the durable side of the Redis limit check.
create table member_daily (
    member_id bigint not null,
    day date not null,
    points bigint not null default 0 check (points >= 0),
    primary key (member_id, day)
);
create table merchant_daily (
    merchant_id bigint not null,
    day date not null,
    points bigint not null default 0 check (points >= 0),
    awards bigint not null default 0,
    primary key (merchant_id, day)
);

-- Durable idempotency records; scope is the caller ("m:<id>", "s:<id>").
create table idempotency_keys (
    scope text not null,
    key text not null check (length(key) between 1 and 255),
    request_hash text not null,
    status_code int not null,
    body jsonb not null,
    created_at timestamptz not null default now(),
    primary key (scope, key)
);
create index idempotency_keys_created on idempotency_keys (created_at);

-- Transactional outbox: written with the effect, relayed to the worker queue.
create table outbox (
    id bigint generated always as identity primary key,
    topic text not null,
    member_id bigint,
    payload jsonb not null,
    created_at timestamptz not null default now(),
    relayed_at timestamptz
);
create index outbox_unrelayed on outbox (id) where relayed_at is null;
-- kk_forbid_change(): its current body is sql/functions/kk_forbid_change.sql
create trigger transfers_immutable before update or delete on transfers
    for each row execute function kk_forbid_change();
create trigger transfer_lots_immutable before update or delete on transfer_lots
    for each row execute function kk_forbid_change();
