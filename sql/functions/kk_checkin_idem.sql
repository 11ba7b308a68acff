-- The check-in, idempotent, in one round trip: claim the key; mission active; member active and
-- in the audience; chain step unlocked; one completion per period and the per-member cap; points
-- with multipliers; award from the funder (daily cap, funder and mission budgets); the check-in
-- row; collection and chain progress; outbox 'checkin.completed'; store the response.
-- The geofence decision was made by the API process (in memory) and arrives as evidence.
CREATE OR REPLACE FUNCTION public.kk_checkin_idem(p_scope text, p_key text, p_hash text, p_member bigint, p_mission bigint, p_day date, p_lat double precision, p_lon double precision, p_accuracy double precision, p_distance double precision, p_decision text, p_risk boolean, p_device text, p_fences bigint[], p_member_cap bigint, p_slices integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
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
end $function$;
