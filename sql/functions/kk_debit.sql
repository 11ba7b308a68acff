-- Debit: member -> another account (adjustment down, reversal), consuming lots oldest first.
CREATE OR REPLACE FUNCTION public.kk_debit(p_member bigint, p_amount bigint, p_credit_account bigint, p_kind text, p_funder bigint, p_reverses bigint, p_ref jsonb, p_slices integer, p_pref_month date DEFAULT NULL::date, p_pref_funder bigint DEFAULT NULL::bigint)
 RETURNS TABLE(transfer_id bigint, balance bigint, available bigint)
 LANGUAGE plpgsql
AS $function$
declare
    v_member_acct bigint;
    v_tid bigint;
    v_posted bigint;
    v_reserved bigint;
begin
    update member_balances mb set posted = mb.posted - p_amount
     where mb.member_id = p_member and mb.posted - mb.reserved >= p_amount
    returning mb.account_id, mb.posted, mb.reserved into v_member_acct, v_posted, v_reserved;
    if v_member_acct is null then
        if not exists (select 1 from member_balances where member_id = p_member) then
            perform kk_refuse('member_not_found', 'KK404');
        end if;
        perform kk_refuse('insufficient_points');
    end if;
    insert into transfers (member_id, debit_account_id, credit_account_id, amount, kind, funder_id,
                           reverses_id, ref)
    values (p_member, v_member_acct, p_credit_account, p_amount, p_kind, p_funder, p_reverses,
            coalesce(p_ref, '{}'))
    returning id into v_tid;
    perform kk_consume_lots(p_member, p_amount, v_tid, p_pref_month, p_pref_funder);
    perform kk_slice_add(p_credit_account, (p_member % p_slices)::int, p_amount);
    return query select v_tid, v_posted, v_posted - v_reserved;
end $function$;
