CREATE OR REPLACE FUNCTION public.kk_idem_store(p_scope text, p_key text, p_status integer, p_body jsonb)
 RETURNS void
 LANGUAGE sql
AS $function$
    update idempotency_keys set status_code = p_status, body = p_body
     where scope = p_scope and key = p_key
$function$;
