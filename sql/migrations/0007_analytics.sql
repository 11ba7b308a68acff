-- Analytics rollups, agency API keys and outgoing webhooks (issue 6).
-- The analytics consumer reads outbox rows by id with its own cursor, so it never competes with
-- the relay; every rollup below is written in the same transaction that advances the cursor,
-- which makes each outbox row count exactly once.

create table analytics_cursor (
    name text primary key,
    last_id bigint not null default 0,
    updated_at timestamptz not null default now()
);
-- 'outbox' for events; 'transfers' for points awarded, read off the ledger itself so the
-- dashboard equals the ledger whatever each producer puts in its outbox payloads.
insert into analytics_cursor (name, last_id) values ('outbox', 0), ('transfers', 0);

-- Small per-day counters: metric with an optional dimension (mission id, merchant id, hour...).
create table analytics_daily (
    day date not null,
    metric text not null,
    dim text not null default '',
    value bigint not null default 0,
    primary key (day, metric, dim)
);

-- One row per member per Asia/Bangkok day they did something (DAU, MAU, cohorts, return rate).
create table daily_member_activity (
    member_id bigint not null,
    day date not null,
    events int not null default 0,
    primary key (member_id, day)
);
create index daily_member_activity_day on daily_member_activity (day, member_id);

-- Accepted check-ins per geofence and district per day (heat map); coordinate sums give a centroid.
create table checkins_daily (
    day date not null,
    geofence_id bigint not null default 0,
    district_code text not null default '',
    checkins bigint not null default 0,
    lat_sum double precision not null default 0,
    lon_sum double precision not null default 0,
    located bigint not null default 0,
    primary key (day, geofence_id, district_code)
);

-- Each accepted check-in, by member and time: "where do attendees check in next".
create table member_checkins (
    outbox_id bigint primary key,
    member_id bigint not null,
    at timestamptz not null,
    mission_id bigint,
    geofence_id bigint,
    district_code text
);
create index member_checkins_member_at on member_checkins (member_id, at);
create index member_checkins_geofence_at on member_checkins (geofence_id, at);
create index member_checkins_mission_at on member_checkins (mission_id, at);

-- Campaign (or mission) cost in points against merchant-recorded spend, per day.
create table campaign_daily (
    day date not null,
    campaign text not null,
    points_cost bigint not null default 0,
    spend_thb numeric(14, 2) not null default 0,
    scans bigint not null default 0,
    primary key (day, campaign)
);

-- Members' signup week (Asia/Bangkok, Monday) for cohorts: an index instead of a copy.
create index if not exists members_created_at on members (created_at);

-- Partner agencies: API keys (only a SHA-256 of the key is kept) with scopes.
create table agency_keys (
    id bigint generated always as identity primary key,
    agency text not null,
    prefix text not null,
    key_hash text not null unique,
    scopes text[] not null,
    created_by text not null,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);

create table agency_webhooks (
    id bigint generated always as identity primary key,
    agency_key_id bigint not null references agency_keys (id),
    url text not null,
    secret text not null,
    topics text[] not null,
    active boolean not null default true,
    created_at timestamptz not null default now()
);

-- One delivery per (webhook, outbox row): enqueued with the cursor, so never twice, never lost.
create table webhook_deliveries (
    id bigint generated always as identity primary key,
    webhook_id bigint not null references agency_webhooks (id),
    outbox_id bigint not null,
    topic text not null,
    payload jsonb not null,
    status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
    attempts int not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_status int,
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz not null default now(),
    unique (webhook_id, outbox_id)
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
