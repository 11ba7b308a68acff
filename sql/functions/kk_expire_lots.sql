-- Expire lots earned before p_before_month: each lot's remainder (earned - spent - reserved -
-- expired, never a total) moves member -> expired, attributed to the lot's funder.
CREATE OR REPLACE FUNCTION public.kk_expire_lots(p_before_month date, p_limit integer, p_slices integer)
 RETURNS TABLE(member_id bigint, month date, funder_id bigint, points bigint)
 LANGUAGE plpgsql
AS $function$
declare
    r record;
    v_tid bigint;
    v_acct bigint;
    v_free bigint;
    v_expired bigint := (select id from accounts where kind = 'expired' and owner_id is null);
begin
    for r in
        select l.member_id, l.month, l.funder_id from lots l
         where l.month < p_before_month and l.earned - l.spent - l.reserved - l.expired > 0
         order by l.month, l.member_id
         limit p_limit
    loop
        -- Same lock order as every other operation: the pocket first, then its lot; the
        -- remainder is recomputed under the lock so a concurrent spend is never expired.
        select mb.account_id into v_acct from member_balances mb
         where mb.member_id = r.member_id for update;
        select l.earned - l.spent - l.reserved - l.expired into v_free from lots l
         where l.member_id = r.member_id and l.month = r.month and l.funder_id = r.funder_id
           for update;
        continue when v_free is null or v_free <= 0;
        update lots l set expired = l.expired + v_free
         where l.member_id = r.member_id and l.month = r.month and l.funder_id = r.funder_id;
        update member_balances mb set posted = mb.posted - v_free where mb.member_id = r.member_id;
        insert into transfers (member_id, debit_account_id, credit_account_id, amount, kind, funder_id, ref)
        values (r.member_id, v_acct, v_expired, v_free, 'expire', r.funder_id,
                jsonb_build_object('lot_month', r.month))
        returning id into v_tid;
        insert into transfer_lots (transfer_id, member_id, month, funder_id, amount)
        values (v_tid, r.member_id, r.month, r.funder_id, v_free);
        perform kk_slice_add(v_expired, (r.member_id % p_slices)::int, v_free);
        member_id := r.member_id; month := r.month; funder_id := r.funder_id; points := v_free;
        return next;
    end loop;
end $function$;
