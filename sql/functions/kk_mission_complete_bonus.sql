-- Reward a completed collection or chain: bonus points (not counted against the daily cap, so a
-- once-in-a-lifetime passport bonus is never lost to it), a badge and a multiplier period. A bonus
-- the budget cannot fund is recorded as 0 points with an outbox event for the organisers.
CREATE OR REPLACE FUNCTION public.kk_mission_complete_bonus(p_mission bigint, p_member bigint, p_day date, p_slices integer, p_checkin bigint)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
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
end $function$;
