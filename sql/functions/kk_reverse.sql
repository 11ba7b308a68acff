-- Reverse an award: the mirror transfer back to the funding account, from the same lot first.
CREATE OR REPLACE FUNCTION public.kk_reverse(p_transfer bigint, p_ref jsonb, p_slices integer)
 RETURNS TABLE(transfer_id bigint, balance bigint, available bigint)
 LANGUAGE plpgsql
AS $function$
declare
    t transfers%rowtype;
begin
    select * into t from transfers where id = p_transfer;
    if t.id is null then
        perform kk_refuse('transfer_not_found', 'KK404');
    end if;
    if t.kind not in ('award', 'adjust') or t.funder_id is null
       or not exists (select 1 from member_balances where account_id = t.credit_account_id) then
        perform kk_refuse('transfer_not_reversible');
    end if;
    if exists (select 1 from transfers where reverses_id = p_transfer) then
        perform kk_refuse('transfer_already_reversed');
    end if;
    return query select * from kk_debit(t.member_id, t.amount, t.debit_account_id, 'reverse',
        t.funder_id, t.id, p_ref, p_slices, kk_month((t.created_at at time zone 'Asia/Bangkok')::date),
        t.funder_id);
end $function$;
