-- Transfers are never updated or deleted: corrections are new transfers.
CREATE OR REPLACE FUNCTION public.kk_forbid_change()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
    raise exception '% is append-only', tg_table_name using errcode = 'KK900';
end $function$;
