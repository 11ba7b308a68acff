CREATE OR REPLACE FUNCTION public.kk_budget_remaining(p_key text)
 RETURNS bigint
 LANGUAGE sql
 STABLE
AS $function$
    select sum(remaining)::bigint from budget_slices where budget_key = p_key
$function$;
