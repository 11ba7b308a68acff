CREATE OR REPLACE FUNCTION public.kk_checkin_batch(p_items jsonb, p_member_cap bigint, p_slices integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
    it jsonb;
    v_res jsonb;
    v_out jsonb := '[]'::jsonb;
begin
    if jsonb_array_length(p_items) > 32 then
        -- Each item is a subtransaction; past 64 per transaction PostgreSQL's subxid cache
        -- overflows and every snapshot on the server gets slower.
        raise exception 'kk_checkin_batch: at most 32 items' using errcode = '22023';
    end if;
    for it in select value from jsonb_array_elements(p_items) loop
        begin
            v_res := kk_checkin_idem(
                it->>'scope', it->>'key', it->>'hash', (it->>'member')::bigint,
                (it->>'mission')::bigint, (it->>'day')::date, (it->>'lat')::float8,
                (it->>'lon')::float8, (it->>'accuracy')::float8, (it->>'distance')::float8,
                it->>'decision', (it->>'risk')::boolean, it->>'device',
                array(select f::bigint from jsonb_array_elements_text(it->'fences') f),
                p_member_cap, p_slices);
        exception when sqlstate 'KK409' or sqlstate 'KK403' or sqlstate 'KK404'
                       or sqlstate 'KK422' then
            v_res := jsonb_build_object('refused', sqlerrm, 'state', sqlstate);
        end;
        v_out := v_out || jsonb_build_array(v_res);
    end loop;
    return v_out;
end $function$;
