CREATE OR REPLACE FUNCTION public.kk_ensure_staff(p_sub text, p_role text, p_merchant bigint, p_org text)
 RETURNS bigint
 LANGUAGE sql
AS $function$
    insert into staff (line_sub, role, merchant_id, org) values (p_sub, p_role, p_merchant, p_org)
    on conflict (line_sub) do update
       set role = excluded.role, merchant_id = excluded.merchant_id, org = excluded.org
    returning id
$function$;
