-- Consume p_amount from a member's lots, oldest first (the preferred lot first when given),
-- recording the consumption against p_transfer. Caller has already debited member_balances.
CREATE OR REPLACE FUNCTION public.kk_consume_lots(p_member bigint, p_amount bigint, p_transfer bigint, p_pref_month date DEFAULT NULL::date, p_pref_funder bigint DEFAULT NULL::bigint)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
declare
    v_left bigint := p_amount;
    v_take bigint;
    r record;
begin
    for r in
        select month, funder_id, earned - spent - reserved - expired as free
          from lots
         where member_id = p_member and earned - spent - reserved - expired > 0
         order by (month = p_pref_month and funder_id = p_pref_funder) desc nulls last,
                  month, funder_id
           for update
    loop
        v_take := least(r.free, v_left);
        update lots set spent = spent + v_take
         where member_id = p_member and month = r.month and funder_id = r.funder_id;
        insert into transfer_lots (transfer_id, member_id, month, funder_id, amount)
        values (p_transfer, p_member, r.month, r.funder_id, v_take);
        v_left := v_left - v_take;
        exit when v_left = 0;
    end loop;
    if v_left > 0 then
        raise exception 'lots do not cover % points of member %', v_left, p_member using errcode = 'KK500';
    end if;
end $function$;
