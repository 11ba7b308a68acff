-- Yearly review: every member gets the tier their rolling 12 months earn (up or down).
CREATE OR REPLACE FUNCTION public.kk_tier_review(p_today date, p_after_member bigint, p_limit integer)
 RETURNS TABLE(member_id bigint, from_tier text, to_tier text)
 LANGUAGE plpgsql
AS $function$
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
end $function$;
