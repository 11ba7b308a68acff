-- Purchase missions progressed by a merchant scan, inside the scan's transaction. Each mission
-- runs in its own block (savepoint): a mission that is done, capped or unfunded is skipped and
-- never fails the scan. Returns the completed missions as a jsonb array.
CREATE OR REPLACE FUNCTION public.kk_purchase_progress(p_member bigint, p_merchant bigint, p_category text, p_amount numeric, p_day date, p_member_cap bigint, p_slices integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
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
end $function$;
