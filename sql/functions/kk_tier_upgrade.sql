-- Upgrade only (downgrades wait for the yearly review). Runs after every lot credit, so any award
-- (purchase, mission, admin) can upgrade; the members row lock makes a crossing upgrade once.
CREATE OR REPLACE FUNCTION public.kk_tier_upgrade(p_member bigint)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
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
end $function$;
