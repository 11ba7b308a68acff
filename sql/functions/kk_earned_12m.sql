-- Rolling 12-month earnings, at month granularity (lots are monthly): this month and the 11 before.
CREATE OR REPLACE FUNCTION public.kk_earned_12m(p_member bigint, p_today date)
 RETURNS bigint
 LANGUAGE sql
 STABLE
AS $function$
    select coalesce(sum(earned), 0)::bigint from lots
     where member_id = p_member and month > (date_trunc('month', p_today) - interval '12 months')::date
$function$;
