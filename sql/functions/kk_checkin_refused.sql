-- A refused check-in: record the attempt (evidence for fraud rules) and store the refusal as the
-- key's response, in one round trip. Returns the stored record instead when the key was used.
CREATE OR REPLACE FUNCTION public.kk_checkin_refused(p_scope text, p_key text, p_hash text, p_member bigint, p_mission bigint, p_lat double precision, p_lon double precision, p_accuracy double precision, p_distance double precision, p_decision text, p_device text, p_code text, p_status integer, p_problem jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
    v_prev jsonb := kk_idem_claim(p_scope, p_key, p_hash);
begin
    if v_prev is not null then
        return v_prev || jsonb_build_object('replay', true);
    end if;
    if exists (select 1 from missions where id = p_mission) then
        insert into checkins (member_id, mission_id, geofence_id, lat, lon, accuracy_m,
                              distance_to_edge_m, decision, device_id, status, refusal_code)
        select p_member, p_mission, m.geofence_id, p_lat, p_lon, p_accuracy, p_distance, p_decision,
               p_device, 'refused', p_code from missions m where m.id = p_mission;
    end if;
    perform kk_idem_store(p_scope, p_key, p_status, p_problem);
    return jsonb_build_object('status', p_status, 'body', p_problem, 'hash', p_hash, 'replay', false);
end $function$;
