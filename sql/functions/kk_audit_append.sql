-- Append one row under a transaction-scoped lock, so rows chain in id order.
CREATE OR REPLACE FUNCTION public.kk_audit_append(p_actor text, p_action text, p_subject text, p_details jsonb)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
declare
    v_prev text;
    v_id bigint;
    v_at timestamptz := date_trunc('microseconds', clock_timestamp());
    v_details jsonb := coalesce(p_details, '{}'::jsonb);
begin
    perform pg_advisory_xact_lock(7364001);
    select hash into v_prev from audit_log order by id desc limit 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    v_id := nextval('audit_log_id_seq');
    insert into audit_log (id, at, actor, action, subject, details, prev_hash, hash)
    values (v_id, v_at, p_actor, p_action, p_subject, v_details, v_prev,
            encode(sha256(convert_to(kk_audit_material(v_prev, v_id, v_at, p_actor, p_action,
                                                       p_subject, v_details), 'UTF8')), 'hex'));
    return v_id;
end $function$;
