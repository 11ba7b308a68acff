-- Missions and geofences: fences as GeoJSON MultiPolygons (WGS84 lon/lat, no PostGIS), missions
-- of every kind, check-ins, per-period completions, collection and chain progress, badges and
-- multiplier periods. The check-in itself is one SQL function call (kk_checkin_idem).

-- Catalogue versions: API processes cache fences and missions and reload when a version moves.
create table catalog_versions (
    name text primary key,
    version bigint not null default 1
);
insert into catalog_versions (name) values ('geofences'), ('missions');
-- kk_catalog_bump(): its current body is sql/functions/kk_catalog_bump.sql

create table geofences (
    id bigint generated always as identity primary key,
    -- Stable natural key for seeded fences ('district:3001', 'venue:THAO_SURANARI'); null for ad hoc.
    code text unique,
    name text not null check (length(name) between 1 and 200),
    kind text not null default 'venue' check (kind in ('district', 'venue', 'event', 'custom')),
    -- GeoJSON MultiPolygon, WGS84 [lon, lat], already repaired (valid) by the API.
    geometry jsonb not null check (geometry ->> 'type' = 'MultiPolygon'),
    max_accuracy_m double precision not null default 100 check (max_accuracy_m > 0 and max_accuracy_m <= 5000),
    edge_tolerance_m double precision not null default 30 check (edge_tolerance_m >= 0 and edge_tolerance_m <= 1000),
    status text not null default 'active' check (status in ('active', 'disabled')),
    description text not null default '',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create trigger geofences_version after insert or update or delete on geofences
    for each statement execute function kk_catalog_bump('geofences');

-- Tier multipliers. The rewards/tiers domain owns this table's rows and rules; it is created here
-- (if absent) so that missions can read a multiplier without depending on migration order.
create table if not exists tiers (
    code text primary key,
    multiplier numeric(6, 3) not null default 1 check (multiplier > 0),
    threshold_points bigint not null default 0
);
insert into tiers (code, multiplier, threshold_points) values ('standard', 1.0, 0), ('vip', 1.5, 5000)
on conflict do nothing;

create table missions (
    id bigint generated always as identity primary key,
    code text not null unique check (length(code) between 1 and 64),
    kind text not null check (kind in ('checkin', 'event', 'purchase', 'action', 'collection', 'chain')),
    title_th text not null,
    title_en text not null,
    description_th text not null default '',
    description_en text not null default '',
    points bigint not null check (points >= 0),
    funder_id bigint not null references funders (id),
    geofence_id bigint references geofences (id),
    starts_at timestamptz not null,
    ends_at timestamptz,
    recurrence text not null default 'once' check (recurrence in ('once', 'daily', 'weekly')),
    per_member_cap int check (per_member_cap is null or per_member_cap > 0),
    budget_points bigint check (budget_points is null or budget_points >= 0),
    audience text not null default 'all' check (audience in ('all', 'resident', 'tourist')),
    multiplier_eligible boolean not null default true,
    -- Rotating venue / organiser codes (HMAC of the time window with this secret).
    venue_code_required boolean not null default false,
    venue_secret text not null,
    venue_code_rotate_s int not null default 30 check (venue_code_rotate_s between 5 and 3600),
    venue_code_grace_s int not null default 60 check (venue_code_grace_s between 0 and 3600),
    -- purchase: spend >= min_spend_thb at any of merchant_ids or categories (neither = anywhere).
    min_spend_thb numeric(12, 2),
    merchant_ids bigint[],
    categories text[],
    -- collection: check in at collection_required of collection_geofence_ids.
    collection_geofence_ids bigint[],
    collection_required int check (collection_required is null or collection_required > 0),
    -- collection/chain completion rewards (besides points): a badge and a multiplier period.
    badge_code text,
    reward_multiplier numeric(6, 3) check (reward_multiplier is null or reward_multiplier >= 1),
    reward_multiplier_days int check (reward_multiplier_days is null or reward_multiplier_days > 0),
    -- chain: ordered step missions; completing step k unlocks step k + 1.
    chain_steps bigint[],
    status text not null default 'active' check (status in ('active', 'disabled')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (ends_at is null or ends_at > starts_at)
);
create index missions_collection_fences on missions using gin (collection_geofence_ids)
    where kind = 'collection';
create index missions_chain_steps on missions using gin (chain_steps) where kind = 'chain';
create index missions_purchase on missions (id) where kind = 'purchase' and status = 'active';
create trigger missions_version after insert or update or delete on missions
    for each statement execute function kk_catalog_bump('missions');

-- Every check-in attempt that reached a decision: accepted or refused, with its evidence.
create table checkins (
    id bigint generated always as identity primary key,
    member_id bigint not null references members (id),
    mission_id bigint not null references missions (id),
    geofence_id bigint,
    lat double precision not null,
    lon double precision not null,
    accuracy_m double precision not null,
    distance_to_edge_m double precision,
    decision text not null check (decision in ('inside', 'edge', 'outside', 'inaccurate', 'none')),
    risk_flag boolean not null default false,
    device_id text,
    status text not null check (status in ('accepted', 'refused')),
    refusal_code text,
    points bigint not null default 0,
    transfer_id bigint,
    created_at timestamptz not null default now()
);
create index checkins_member on checkins (member_id, id desc);
create index checkins_mission on checkins (mission_id, id desc);
create index checkins_device on checkins (device_id) where device_id is not null;

-- Per member per mission: how many completions, places collected, chain step reached. This row
-- is also the lock that serialises one member's concurrent attempts at one mission.
create table mission_progress (
    mission_id bigint not null references missions (id),
    member_id bigint not null references members (id),
    completions int not null default 0,
    places int not null default 0,
    step int not null default 0,
    completed_at timestamptz,
    updated_at timestamptz not null default now(),
    primary key (mission_id, member_id)
);

-- One completion per member, mission and recurrence period ('once', a day, a week's Monday).
create table mission_completions (
    mission_id bigint not null references missions (id),
    member_id bigint not null references members (id),
    period text not null,
    points bigint not null default 0,
    transfer_id bigint,
    checkin_id bigint,
    created_at timestamptz not null default now(),
    primary key (mission_id, member_id, period)
);
create index mission_completions_member on mission_completions (member_id);

create table collection_places (
    mission_id bigint not null references missions (id),
    member_id bigint not null references members (id),
    geofence_id bigint not null references geofences (id),
    checkin_id bigint,
    created_at timestamptz not null default now(),
    primary key (mission_id, member_id, geofence_id)
);

create table member_badges (
    member_id bigint not null references members (id),
    badge_code text not null,
    mission_id bigint references missions (id),
    awarded_at timestamptz not null default now(),
    primary key (member_id, badge_code)
);

create table member_multipliers (
    member_id bigint not null references members (id),
    mission_id bigint not null references missions (id),
    multiplier numeric(6, 3) not null check (multiplier >= 1),
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    primary key (member_id, mission_id)
);
-- kk_mission_period(): its current body is sql/functions/kk_mission_period.sql
-- kk_mission_points(): its current body is sql/functions/kk_mission_points.sql
-- kk_mission_take(): its current body is sql/functions/kk_mission_take.sql
-- kk_mission_complete_bonus(): its current body is sql/functions/kk_mission_complete_bonus.sql
-- kk_mission_progress(): its current body is sql/functions/kk_mission_progress.sql
-- kk_chain_check(): its current body is sql/functions/kk_chain_check.sql
-- kk_checkin_idem(): its current body is sql/functions/kk_checkin_idem.sql
-- kk_checkin_refused(): its current body is sql/functions/kk_checkin_refused.sql
-- kk_purchase_progress(): its current body is sql/functions/kk_purchase_progress.sql
