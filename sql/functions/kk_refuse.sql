CREATE OR REPLACE FUNCTION public.kk_refuse(p_code text, p_state text DEFAULT 'KK409'::text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
begin
    raise exception '%', p_code using errcode = p_state;
end $function$;
