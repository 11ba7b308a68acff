-- Hand out what kuekan.audit.append needs to seal rows, under the chain lock (held to the end
-- of the caller's transaction): the previous hash, then per row an id, a timestamp (and its
-- text as sealed) and the canonical jsonb text of its details. The key never comes here: the
-- application computes each HMAC and inserts the rows (sql/migrations/0110_audit_hmac.sql).
CREATE OR REPLACE FUNCTION public.kk_audit_prepare(p_details text[])
 RETURNS TABLE(id bigint, prev_hash text, at timestamp with time zone, at_text text, details_text text)
 LANGUAGE plpgsql
AS $function$
declare
    v_prev text;
    v_details text;
begin
    perform pg_advisory_xact_lock(7364001);
    select a.hash into v_prev from audit_log a order by a.id desc limit 1;
    prev_hash := coalesce(v_prev, repeat('0', 64));
    foreach v_details in array p_details loop
        id := nextval('audit_log_id_seq');
        at := date_trunc('microseconds', clock_timestamp());
        at_text := to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
        details_text := coalesce(v_details::jsonb, '{}'::jsonb)::text;
        return next;
    end loop;
end $function$;
