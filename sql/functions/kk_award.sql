-- Award: funder -> member, with daily caps and budgets checked and counted in the same transaction.
--   p_member_cap:  the member's daily earning cap, or null when this award is not counted
--                  (admin awards and adjustments are audited corrections, API.md).
--   p_merchant:    merchant whose daily award cap applies, or null.
--   p_budget_keys: sliced budgets to take from (e.g. 'funder:3', 'mission:7').
CREATE OR REPLACE FUNCTION public.kk_award(p_member bigint, p_funder bigint, p_amount bigint, p_kind text, p_day date, p_member_cap bigint, p_merchant bigint, p_budget_keys text[], p_ref jsonb, p_check_hold boolean, p_slices integer)
 RETURNS TABLE(transfer_id bigint, balance bigint, available bigint)
 LANGUAGE plpgsql
AS $function$
declare
    v_status text;
    v_funding bigint;
    v_member_acct bigint;
    v_cap bigint;
    v_key text;
    v_slice int := (p_member % p_slices)::int;
    v_tid bigint;
begin
    if p_amount <= 0 then
        perform kk_refuse('invalid_amount', 'KK422');
    end if;
    select m.status into v_status from members m where m.id = p_member;
    if v_status is null then
        perform kk_refuse('member_not_found', 'KK404');
    end if;
    if p_check_hold and v_status <> 'active' then
        perform kk_refuse('member_on_hold', 'KK403');
    end if;
    select f.account_id into v_funding from funders f where f.id = p_funder;
    if v_funding is null then
        perform kk_refuse('funder_not_found', 'KK404');
    end if;
    if p_member_cap is not null then
        insert into member_daily as d (member_id, day, points) values (p_member, p_day, p_amount)
        on conflict (member_id, day) do update set points = d.points + excluded.points
         where d.points + excluded.points <= p_member_cap;
        if not found or p_amount > p_member_cap then
            perform kk_refuse('daily_limit_reached');
        end if;
    end if;
    if p_merchant is not null then
        select daily_award_cap_points into v_cap from merchants where id = p_merchant;
        insert into merchant_daily as d (merchant_id, day, points, awards)
        values (p_merchant, p_day, p_amount, 1)
        on conflict (merchant_id, day) do update
           set points = d.points + excluded.points, awards = d.awards + 1
         where v_cap is null or d.points + excluded.points <= v_cap;
        if not found or (v_cap is not null and p_amount > v_cap) then
            perform kk_refuse('merchant_daily_cap_reached');
        end if;
    end if;
    if p_budget_keys is not null then
        foreach v_key in array p_budget_keys loop
            if not kk_budget_take(v_key, p_amount, v_slice) then
                perform kk_refuse(split_part(v_key, ':', 1) || '_budget_exhausted');
            end if;
        end loop;
    end if;
    select mb.account_id into v_member_acct from member_balances mb where mb.member_id = p_member;
    insert into transfers (member_id, debit_account_id, credit_account_id, amount, kind, funder_id, ref)
    values (p_member, v_funding, v_member_acct, p_amount, p_kind, p_funder, coalesce(p_ref, '{}'))
    returning id into v_tid;
    -- Lock order everywhere: member_balances, then lots, then sliced accounts (no deadlocks).
    update member_balances mb set posted = mb.posted + p_amount
     where mb.member_id = p_member
    returning mb.posted, mb.posted - mb.reserved into balance, available;
    insert into lots as l (member_id, month, funder_id, earned)
    values (p_member, kk_month(p_day), p_funder, p_amount)
    on conflict (member_id, month, funder_id) do update set earned = l.earned + excluded.earned;
    perform kk_slice_add(v_funding, v_slice, -p_amount);
    transfer_id := v_tid;
    return next;
end $function$;
