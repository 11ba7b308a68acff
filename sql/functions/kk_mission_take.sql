-- Count a completion for (mission, member, period) under the progress row lock; refuse
-- already_completed when the period is done or the per-member cap is reached.
CREATE OR REPLACE FUNCTION public.kk_mission_take(p_mission bigint, p_member bigint, p_period text, p_cap integer)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
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
end $function$;
