-- Reserve (phase one): points leave "available" but stay in the pocket until posted or voided.
CREATE OR REPLACE FUNCTION public.kk_reserve(p_member bigint, p_amount bigint, p_expires_at timestamp with time zone, p_ref jsonb, p_check_hold boolean)
 RETURNS TABLE(pending_id bigint, balance bigint, available bigint)
 LANGUAGE plpgsql
AS $function$
declare
    v_status text;
    v_acct bigint;
    v_posted bigint;
    v_reserved bigint;
    v_pid bigint;
    v_left bigint := p_amount;
    v_take bigint;
    r record;
begin
    if p_amount <= 0 then
        perform kk_refuse('invalid_amount', 'KK422');
    end if;
    select status into v_status from members where id = p_member;
    if v_status is null then
        perform kk_refuse('member_not_found', 'KK404');
    end if;
    if p_check_hold and v_status <> 'active' then
        perform kk_refuse('member_on_hold', 'KK403');
    end if;
    update member_balances mb set reserved = mb.reserved + p_amount
     where mb.member_id = p_member and mb.posted - mb.reserved >= p_amount
    returning mb.account_id, mb.posted, mb.reserved into v_acct, v_posted, v_reserved;
    if v_acct is null then
        perform kk_refuse('insufficient_points');
    end if;
    insert into pending_transfers (member_id, debit_account_id, amount, expires_at, ref)
    values (p_member, v_acct, p_amount, p_expires_at, coalesce(p_ref, '{}'))
    returning id into v_pid;
    for r in
        select month, funder_id, earned - spent - reserved - expired as free
          from lots where member_id = p_member and earned - spent - reserved - expired > 0
         order by month, funder_id for update
    loop
        v_take := least(r.free, v_left);
        update lots set reserved = reserved + v_take
         where member_id = p_member and month = r.month and funder_id = r.funder_id;
        insert into pending_lots (pending_id, member_id, month, funder_id, amount)
        values (v_pid, p_member, r.month, r.funder_id, v_take);
        v_left := v_left - v_take;
        exit when v_left = 0;
    end loop;
    if v_left > 0 then
        raise exception 'lots do not cover reserve of member %', p_member using errcode = 'KK500';
    end if;
    return query select v_pid, v_posted, v_posted - v_reserved;
end $function$;
