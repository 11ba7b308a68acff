-- Refuse a step of an active chain until the member has completed the step before it.
CREATE OR REPLACE FUNCTION public.kk_chain_check(p_member bigint, p_mission bigint)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
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
end $function$;
