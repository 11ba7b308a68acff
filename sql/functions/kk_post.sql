-- Post (phase two): the reserved points move to p_credit_account; exactly once.
CREATE OR REPLACE FUNCTION public.kk_post(p_pending bigint, p_credit_account bigint, p_ref jsonb, p_slices integer)
 RETURNS TABLE(transfer_id bigint, balance bigint, available bigint)
 LANGUAGE plpgsql
AS $function$
declare
    p pending_transfers%rowtype;
    v_tid bigint;
    v_posted bigint;
    v_reserved bigint;
    r record;
begin
    update pending_transfers set status = 'posted', resolved_at = now(), credit_account_id = p_credit_account
     where id = p_pending and status = 'pending' and expires_at > now()
    returning * into p;
    if p.id is null then
        select * into p from pending_transfers where id = p_pending;
        if p.id is null then
            perform kk_refuse('pending_not_found', 'KK404');
        elsif p.status = 'posted' then
            perform kk_refuse('coupon_already_used');
        elsif p.status = 'voided' then
            perform kk_refuse('coupon_void');
        else
            perform kk_refuse('coupon_expired');
        end if;
    end if;
    insert into transfers (member_id, debit_account_id, credit_account_id, amount, kind, pending_id, ref)
    values (p.member_id, p.debit_account_id, p_credit_account, p.amount, 'redeem', p.id,
            coalesce(p_ref, '{}') || p.ref)
    returning id into v_tid;
    update pending_transfers set posted_transfer_id = v_tid where id = p.id;
    update member_balances mb set posted = mb.posted - p.amount, reserved = mb.reserved - p.amount
     where mb.member_id = p.member_id returning mb.posted, mb.reserved into v_posted, v_reserved;
    for r in select * from pending_lots where pending_id = p.id loop
        update lots set reserved = reserved - r.amount, spent = spent + r.amount
         where member_id = r.member_id and month = r.month and funder_id = r.funder_id;
        insert into transfer_lots (transfer_id, member_id, month, funder_id, amount)
        values (v_tid, r.member_id, r.month, r.funder_id, r.amount);
    end loop;
    perform kk_slice_add(p_credit_account, (p.member_id % p_slices)::int, p.amount);
    return query select v_tid, v_posted, v_posted - v_reserved;
end $function$;
