CREATE OR REPLACE FUNCTION public.kk_budget_give(p_key text, p_amount bigint, p_slice integer)
 RETURNS void
 LANGUAGE sql
AS $function$
    update budget_slices set remaining = remaining + p_amount
     where budget_key = p_key and slice = (
        select coalesce((select slice from budget_slices where budget_key = p_key and slice = p_slice),
                        (select min(slice) from budget_slices where budget_key = p_key)))
$function$;
