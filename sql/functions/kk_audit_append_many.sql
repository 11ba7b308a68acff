-- Append many audit rows under one chain lock and one transaction: the HTTP audit middleware
-- buffers rows for a few milliseconds and writes them together, so every admin or merchant
-- request no longer costs its own transaction under the global chain lock.
CREATE OR REPLACE FUNCTION public.kk_audit_append_many(p_rows jsonb)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
declare
    r jsonb;
    v_last bigint;
begin
    for r in select value from jsonb_array_elements(p_rows) loop
        v_last := kk_audit_append(r ->> 'actor', r ->> 'action', r ->> 'subject', r -> 'details');
    end loop;
    return v_last;
end $function$;
