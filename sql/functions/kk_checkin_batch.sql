-- Group commit of check-ins: several kk_checkin_idem calls in one statement, one round trip and
-- one commit (one WAL flush) for all of them. The API's batcher (kuekan.missions.batch) sends the
-- check-ins that arrive while the previous batch is in flight.
--
-- p_items: a jsonb array of objects {scope, key, hash, member, mission, day, lat, lon, accuracy,
-- distance, decision, risk, device, fences}, the arguments of kk_checkin_idem. The caller orders
-- them by (member % slices, member), the order kk_award takes budget and funder slices in, so two
-- batches running at once wait for each other instead of deadlocking.
--
-- Each item runs in its own block (a subtransaction): a refusal (KKnnn) rolls back that item only
-- and comes back as {"refused": code, "state": sqlstate}. Any other error (deadlock, serialization
-- failure, a bug) aborts the whole batch, nothing of it commits, and the caller runs the items one
-- by one through kk_checkin_idem. Returns one result per item, in the order given.
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
