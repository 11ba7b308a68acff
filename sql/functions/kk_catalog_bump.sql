CREATE OR REPLACE FUNCTION public.kk_catalog_bump()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
    update catalog_versions set version = version + 1 where name = tg_argv[0];
    return null;
end $function$;
