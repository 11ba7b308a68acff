-- Add to a sliced (non-member) account balance.
CREATE OR REPLACE FUNCTION public.kk_slice_add(p_account bigint, p_slice integer, p_amount bigint)
 RETURNS void
 LANGUAGE sql
AS $function$
    insert into account_slices (account_id, slice, posted) values (p_account, p_slice, p_amount)
    on conflict (account_id, slice) do update set posted = account_slices.posted + excluded.posted
$function$;
