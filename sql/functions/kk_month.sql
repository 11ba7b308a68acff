CREATE OR REPLACE FUNCTION public.kk_month(p_day date)
 RETURNS date
 LANGUAGE sql
 IMMUTABLE
AS $function$
    select date_trunc('month', p_day)::date
$function$;
