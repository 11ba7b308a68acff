-- Points after multipliers: the member's tier and any active multiplier period, when allowed.
CREATE OR REPLACE FUNCTION public.kk_mission_points(p_points bigint, p_eligible boolean, p_member bigint, p_tier text)
 RETURNS bigint
 LANGUAGE sql
 STABLE
AS $function$
    select case when not p_eligible then p_points else
        floor(p_points
              * coalesce((select t.multiplier from tiers t where t.code = p_tier), 1)
              * coalesce((select max(mm.multiplier) from member_multipliers mm
                           where mm.member_id = p_member and now() >= mm.starts_at
                             and now() < mm.ends_at), 1))::bigint end
$function$;
