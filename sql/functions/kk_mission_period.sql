-- The recurrence period a completion on p_day (Asia/Bangkok) belongs to.
CREATE OR REPLACE FUNCTION public.kk_mission_period(p_recurrence text, p_day date)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    select case p_recurrence
        when 'daily' then p_day::text
        when 'weekly' then 'w' || date_trunc('week', p_day)::date::text
        else 'once' end
$function$;
