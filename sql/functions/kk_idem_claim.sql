-- Idempotency: claim a key inside the caller's transaction. Returns null when claimed (go on),
-- or the stored record {hash, status, body} when the key was already used.
CREATE OR REPLACE FUNCTION public.kk_idem_claim(p_scope text, p_key text, p_hash text)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
    v jsonb;
begin
    insert into idempotency_keys (scope, key, request_hash, status_code, body)
    values (p_scope, p_key, p_hash, 0, 'null') on conflict do nothing;
    if found then
        return null;
    end if;
    select jsonb_build_object('hash', request_hash, 'status', status_code, 'body', body) into v
      from idempotency_keys where scope = p_scope and key = p_key;
    return v;
end $function$;
