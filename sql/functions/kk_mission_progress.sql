-- Progress collections and chains after an accepted completion of p_mission with the place
-- fences p_fences (every active fence covering the check-in). Returns completed missions.
CREATE OR REPLACE FUNCTION public.kk_mission_progress(p_member bigint, p_mission bigint, p_fences bigint[], p_day date, p_slices integer, p_checkin bigint)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
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
end $function$;
