CREATE OR REPLACE FUNCTION public.kk_lots_tier_trigger()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
    if tg_op = 'INSERT' or new.earned > old.earned then
        perform kk_tier_upgrade(new.member_id);
    end if;
    return null;
end $function$;
