-- Missions and geofences: fences as GeoJSON MultiPolygons (WGS84 lon/lat, no PostGIS), missions
-- of every kind, check-ins, per-period completions, collection and chain progress, badges and
-- multiplier periods. The check-in itself is one SQL function call (kk_checkin_idem).

-- Catalogue versions: API processes cache fences and missions and reload when a version moves.
create table catalog_versions (
    name text primary key,
    version bigint not null default 1
);
insert into catalog_versions (name) values ('geofences'), ('missions');

create function kk_catalog_bump() returns trigger language plpgsql as $$
begin
    update catalog_versions set version = version + 1 where name = tg_argv[0];
    return null;
end $$;

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

-- The recurrence period a completion on p_day (Asia/Bangkok) belongs to.
create function kk_mission_period(p_recurrence text, p_day date) returns text
language sql immutable as $$
    select case p_recurrence
        when 'daily' then p_day::text
        when 'weekly' then 'w' || date_trunc('week', p_day)::date::text
        else 'once' end
$$;

-- Points after multipliers: the member's tier and any active multiplier period, when allowed.
create function kk_mission_points(p_points bigint, p_eligible boolean, p_member bigint, p_tier text)
returns bigint language sql stable as $$
    select case when not p_eligible then p_points else
        floor(p_points
              * coalesce((select t.multiplier from tiers t where t.code = p_tier), 1)
              * coalesce((select max(mm.multiplier) from member_multipliers mm
                           where mm.member_id = p_member and now() >= mm.starts_at
                             and now() < mm.ends_at), 1))::bigint end
$$;

-- Count a completion for (mission, member, period) under the progress row lock; refuse
-- already_completed when the period is done or the per-member cap is reached.
create function kk_mission_take(p_mission bigint, p_member bigint, p_period text, p_cap int)
returns void language plpgsql as $$
begin
    insert into mission_progress as p (mission_id, member_id, completions) values (p_mission, p_member, 1)
    on conflict (mission_id, member_id) do update
       set completions = p.completions + 1, updated_at = now()
     where p_cap is null or p.completions < p_cap;
    if not found or (p_cap is not null and p_cap < 1) then
        perform kk_refuse('already_completed');
    end if;
    if exists (select 1 from mission_completions c where c.mission_id = p_mission
                  and c.member_id = p_member and c.period = p_period) then
        perform kk_refuse('already_completed');
    end if;
end $$;

-- Reward a completed collection or chain: bonus points (not counted against the daily cap, so a
-- once-in-a-lifetime passport bonus is never lost to it), a badge and a multiplier period. A bonus
-- the budget cannot fund is recorded as 0 points with an outbox event for the organisers.
create function kk_mission_complete_bonus(p_mission bigint, p_member bigint, p_day date,
                                          p_slices int, p_checkin bigint)
returns jsonb language plpgsql as $$
declare
    m missions%rowtype;
    v_tid bigint;
    v_points bigint;
    v_tier text;
    v_unfunded boolean := false;
begin
    select * into m from missions where id = p_mission;
    select tier into v_tier from members where id = p_member;
    v_points := kk_mission_points(m.points, m.multiplier_eligible, p_member, v_tier);
    if v_points > 0 then
        begin
            select a.transfer_id into v_tid from kk_award(p_member, m.funder_id, v_points, 'award',
                p_day, null, null, array['funder:' || m.funder_id, 'mission:' || m.id],
                jsonb_build_object('idem', 'mission:' || m.id || ':' || p_member, 'leg', 'bonus',
                                   'mission_id', m.id),
                false, p_slices) a;
        exception when sqlstate 'KK409' or sqlstate 'KK403' or sqlstate 'KK404' then
            v_points := 0;
            v_unfunded := true;
        end;
    end if;
    insert into mission_completions (mission_id, member_id, period, points, transfer_id, checkin_id)
    values (m.id, p_member, 'once', v_points, v_tid, p_checkin) on conflict do nothing;
    if m.badge_code is not null then
        insert into member_badges (member_id, badge_code, mission_id) values (p_member, m.badge_code, m.id)
        on conflict do nothing;
    end if;
    if m.reward_multiplier is not null and m.reward_multiplier_days is not null then
        insert into member_multipliers (member_id, mission_id, multiplier, starts_at, ends_at)
        values (p_member, m.id, m.reward_multiplier, now(),
                now() + make_interval(days => m.reward_multiplier_days))
        on conflict do nothing;
    end if;
    insert into outbox (topic, member_id, payload) values (
        case when v_unfunded then 'mission.bonus_unfunded' else 'mission.completed' end, p_member,
        jsonb_build_object('mission_id', m.id, 'code', m.code, 'kind', m.kind, 'member_id', p_member,
                           'points', v_points, 'transfer_id', v_tid, 'badge', m.badge_code,
                           'at', now()));
    return jsonb_build_object('mission_id', m.id, 'code', m.code, 'kind', m.kind, 'points', v_points,
                              'transfer_id', v_tid, 'badge', m.badge_code,
                              'multiplier', m.reward_multiplier,
                              'multiplier_days', m.reward_multiplier_days);
end $$;

-- Progress collections and chains after an accepted completion of p_mission with the place
-- fences p_fences (every active fence covering the check-in). Returns completed missions.
create function kk_mission_progress(p_member bigint, p_mission bigint, p_fences bigint[],
                                    p_day date, p_slices int, p_checkin bigint)
returns jsonb language plpgsql as $$
declare
    c missions%rowtype;
    v_new int;
    v_places int;
    v_done timestamptz;
    v_step int;
    v_pos int;
    v_out jsonb := '[]'::jsonb;
begin
    if p_fences is not null and cardinality(p_fences) > 0 then
        for c in select * from missions
                  where kind = 'collection' and status = 'active' and collection_geofence_ids && p_fences
                    and now() >= starts_at and (ends_at is null or now() < ends_at)
                  order by id
        loop
            insert into collection_places (mission_id, member_id, geofence_id, checkin_id)
            select c.id, p_member, f, p_checkin
              from unnest(p_fences) f where f = any (c.collection_geofence_ids)
            on conflict do nothing;
            get diagnostics v_new = row_count;
            continue when v_new = 0;
            insert into mission_progress as p (mission_id, member_id, places) values (c.id, p_member, v_new)
            on conflict (mission_id, member_id) do update set places = p.places + v_new, updated_at = now()
            returning p.places, p.completed_at into v_places, v_done;
            if v_done is null and v_places >= c.collection_required then
                update mission_progress set completed_at = now(), completions = completions + 1
                 where mission_id = c.id and member_id = p_member;
                v_out := v_out || kk_mission_complete_bonus(c.id, p_member, p_day, p_slices, p_checkin);
            end if;
        end loop;
    end if;
    for c in select * from missions
              where kind = 'chain' and status = 'active' and chain_steps @> array[p_mission]
              order by id
    loop
        v_pos := array_position(c.chain_steps, p_mission);
        insert into mission_progress as p (mission_id, member_id, step) values (c.id, p_member, v_pos)
        on conflict (mission_id, member_id) do update set step = greatest(p.step, v_pos), updated_at = now()
        returning p.step, p.completed_at into v_step, v_done;
        if v_done is null and v_step >= cardinality(c.chain_steps) then
            update mission_progress set completed_at = now(), completions = completions + 1
             where mission_id = c.id and member_id = p_member;
            v_out := v_out || kk_mission_complete_bonus(c.id, p_member, p_day, p_slices, p_checkin);
        end if;
    end loop;
    return v_out;
end $$;

-- Refuse a step of an active chain until the member has completed the step before it.
create function kk_chain_check(p_member bigint, p_mission bigint) returns void
language plpgsql as $$
declare
    c record;
    v_pos int;
begin
    for c in select chain_steps from missions
              where kind = 'chain' and status = 'active' and chain_steps @> array[p_mission]
    loop
        v_pos := array_position(c.chain_steps, p_mission);
        if v_pos > 1 and not exists (select 1 from mission_completions mc
                                      where mc.mission_id = c.chain_steps[v_pos - 1]
                                        and mc.member_id = p_member) then
            perform kk_refuse('mission_locked');
        end if;
    end loop;
end $$;

-- The check-in, idempotent, in one round trip: claim the key; mission active; member active and
-- in the audience; chain step unlocked; one completion per period and the per-member cap; points
-- with multipliers; award from the funder (daily cap, funder and mission budgets); the check-in
-- row; collection and chain progress; outbox 'checkin.completed'; store the response.
-- The geofence decision was made by the API process (in memory) and arrives as evidence.
create function kk_checkin_idem(
    p_scope text, p_key text, p_hash text, p_member bigint, p_mission bigint, p_day date,
    p_lat double precision, p_lon double precision, p_accuracy double precision,
    p_distance double precision, p_decision text, p_risk boolean, p_device text,
    p_fences bigint[], p_member_cap bigint, p_slices int
) returns jsonb language plpgsql as $$
declare
    v_prev jsonb := kk_idem_claim(p_scope, p_key, p_hash);
    m missions%rowtype;
    v_member record;
    v_period text;
    v_points bigint;
    r record;
    v_cid bigint;
    v_completed jsonb;
    v_body jsonb;
begin
    if v_prev is not null then
        return v_prev || jsonb_build_object('replay', true);
    end if;
    select * into m from missions where id = p_mission;
    if m.id is null or m.status <> 'active' or m.kind not in ('checkin', 'event', 'action')
       or now() < m.starts_at or (m.ends_at is not null and now() >= m.ends_at) then
        perform kk_refuse('mission_not_active');
    end if;
    select status, segment, tier into v_member from members where id = p_member;
    if v_member.status is null then
        perform kk_refuse('member_not_found', 'KK404');
    end if;
    if v_member.status <> 'active' then
        perform kk_refuse('member_on_hold', 'KK403');
    end if;
    if m.audience <> 'all' and m.audience <> v_member.segment then
        perform kk_refuse('mission_not_for_audience', 'KK403');
    end if;
    perform kk_chain_check(p_member, m.id);
    v_period := kk_mission_period(m.recurrence, p_day);
    perform kk_mission_take(m.id, p_member, v_period,
                            case when m.recurrence = 'once' then 1 else m.per_member_cap end);
    v_points := kk_mission_points(m.points, m.multiplier_eligible, p_member, v_member.tier);
    -- Award first, then the check-in row with its transfer id: one insert, no update.
    if v_points > 0 then
        select * into r from kk_award(p_member, m.funder_id, v_points, 'award', p_day, p_member_cap,
            null, array['funder:' || m.funder_id, 'mission:' || m.id],
            jsonb_build_object('idem', p_scope || ':' || p_key, 'mission_id', m.id),
            true, p_slices);
    else
        select mb.posted as balance, mb.posted - mb.reserved as available, null::bigint as transfer_id
          into r from member_balances mb where mb.member_id = p_member;
    end if;
    insert into checkins (member_id, mission_id, geofence_id, lat, lon, accuracy_m, distance_to_edge_m,
                          decision, risk_flag, device_id, status, points, transfer_id)
    values (p_member, m.id, m.geofence_id, p_lat, p_lon, p_accuracy, p_distance, p_decision, p_risk,
            p_device, 'accepted', v_points, r.transfer_id)
    returning id into v_cid;
    insert into mission_completions (mission_id, member_id, period, points, transfer_id, checkin_id)
    values (m.id, p_member, v_period, v_points, r.transfer_id, v_cid);
    v_completed := kk_mission_progress(p_member, m.id,
        case when m.geofence_id is null then p_fences
             else array_append(coalesce(p_fences, '{}'), m.geofence_id) end,
        p_day, p_slices, v_cid);
    v_body := jsonb_build_object(
        'checkin_id', v_cid, 'mission_id', m.id, 'decision', p_decision,
        'distance_to_edge_m', p_distance, 'risk_flag', p_risk, 'points_awarded', v_points,
        'transfer_id', r.transfer_id, 'balance', r.balance, 'available', r.available,
        'period', v_period, 'completed', v_completed);
    insert into outbox (topic, member_id, payload) values ('checkin.completed', p_member,
        v_body || jsonb_build_object('member_id', p_member, 'funder_id', m.funder_id,
                                     'geofence_id', m.geofence_id, 'kind', m.kind,
                                     'event', m.kind = 'event', 'accuracy_m', p_accuracy,
                                     'lat', p_lat, 'lon', p_lon, 'device_id', p_device,
                                     'at', now()));
    perform kk_idem_store(p_scope, p_key, 201, v_body);
    return jsonb_build_object('status', 201, 'body', v_body, 'hash', p_hash, 'replay', false);
end $$;

-- A refused check-in: record the attempt (evidence for fraud rules) and store the refusal as the
-- key's response, in one round trip. Returns the stored record instead when the key was used.
create function kk_checkin_refused(
    p_scope text, p_key text, p_hash text, p_member bigint, p_mission bigint,
    p_lat double precision, p_lon double precision, p_accuracy double precision,
    p_distance double precision, p_decision text, p_device text, p_code text,
    p_status int, p_problem jsonb
) returns jsonb language plpgsql as $$
declare
    v_prev jsonb := kk_idem_claim(p_scope, p_key, p_hash);
begin
    if v_prev is not null then
        return v_prev || jsonb_build_object('replay', true);
    end if;
    if exists (select 1 from missions where id = p_mission) then
        insert into checkins (member_id, mission_id, geofence_id, lat, lon, accuracy_m,
                              distance_to_edge_m, decision, device_id, status, refusal_code)
        select p_member, p_mission, m.geofence_id, p_lat, p_lon, p_accuracy, p_distance, p_decision,
               p_device, 'refused', p_code from missions m where m.id = p_mission;
    end if;
    perform kk_idem_store(p_scope, p_key, p_status, p_problem);
    return jsonb_build_object('status', p_status, 'body', p_problem, 'hash', p_hash, 'replay', false);
end $$;

-- Purchase missions progressed by a merchant scan, inside the scan's transaction. Each mission
-- runs in its own block (savepoint): a mission that is done, capped or unfunded is skipped and
-- never fails the scan. Returns the completed missions as a jsonb array.
create function kk_purchase_progress(
    p_member bigint, p_merchant bigint, p_category text, p_amount numeric, p_day date,
    p_member_cap bigint, p_slices int
) returns jsonb language plpgsql as $$
declare
    m missions%rowtype;
    v_member record;
    v_period text;
    v_points bigint;
    v_tid bigint;
    v_out jsonb := '[]'::jsonb;
begin
    select status, segment, tier into v_member from members where id = p_member;
    if v_member.status is distinct from 'active' then
        return v_out;
    end if;
    for m in select * from missions
              where kind = 'purchase' and status = 'active'
                and now() >= starts_at and (ends_at is null or now() < ends_at)
                and p_amount >= coalesce(min_spend_thb, 0)
                and (audience = 'all' or audience = v_member.segment)
                and ((merchant_ids is null and categories is null)
                     or p_merchant = any (coalesce(merchant_ids, '{}'))
                     or p_category = any (coalesce(categories, '{}')))
              order by id
    loop
        begin
            perform kk_chain_check(p_member, m.id);
            v_period := kk_mission_period(m.recurrence, p_day);
            perform kk_mission_take(m.id, p_member, v_period,
                                    case when m.recurrence = 'once' then 1 else m.per_member_cap end);
            v_points := kk_mission_points(m.points, m.multiplier_eligible, p_member, v_member.tier);
            v_tid := null;
            if v_points > 0 then
                select a.transfer_id into v_tid from kk_award(p_member, m.funder_id, v_points, 'award',
                    p_day, p_member_cap, null, array['funder:' || m.funder_id, 'mission:' || m.id],
                    jsonb_build_object('idem', 'mission:' || m.id || ':' || p_member || ':' || v_period,
                                       'leg', 'mission', 'mission_id', m.id, 'merchant_id', p_merchant),
                    true, p_slices) a;
            end if;
            insert into mission_completions (mission_id, member_id, period, points, transfer_id)
            values (m.id, p_member, v_period, v_points, v_tid);
            insert into outbox (topic, member_id, payload) values ('mission.completed', p_member,
                jsonb_build_object('mission_id', m.id, 'code', m.code, 'kind', 'purchase',
                                   'member_id', p_member, 'merchant_id', p_merchant,
                                   'points', v_points, 'transfer_id', v_tid, 'period', v_period,
                                   'at', now()));
            v_out := v_out || jsonb_build_array(jsonb_build_object(
                'mission_id', m.id, 'code', m.code, 'points', v_points, 'transfer_id', v_tid,
                'period', v_period));
            v_out := v_out || kk_mission_progress(p_member, m.id, null, p_day, p_slices, null);
        exception when sqlstate 'KK409' or sqlstate 'KK403' or sqlstate 'KK404' or sqlstate 'KK422' then
            null;
        end;
    end loop;
    return v_out;
end $$;
