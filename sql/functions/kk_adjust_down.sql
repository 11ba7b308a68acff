-- Negative admin adjustment: member -> adjustment account.
CREATE OR REPLACE FUNCTION public.kk_adjust_down(p_member bigint, p_amount bigint, p_ref jsonb, p_slices integer)
 RETURNS TABLE(transfer_id bigint, balance bigint, available bigint)
 LANGUAGE sql
AS $function$
    select * from kk_debit(p_member, p_amount,
        (select id from accounts where kind = 'adjustment' and owner_id is null),
        'adjust', null, null, p_ref, p_slices)
$function$;
