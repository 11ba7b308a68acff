-- Members and staff are created on first use (first LINE login, or the token CLI), in bulk.

create function kk_ensure_members(p_subs text[])
returns table (line_sub text, member_id bigint)
language plpgsql as $$
begin
    insert into members (line_sub) select s from unnest(p_subs) s on conflict do nothing;
    with newm as (
        select m.id from members m
         where m.line_sub = any (p_subs)
           and not exists (select 1 from member_balances b where b.member_id = m.id)
    ), acct as (
        insert into accounts (kind, owner_id) select 'member', id from newm
        on conflict do nothing returning id, owner_id
    )
    insert into member_balances (member_id, account_id) select owner_id, id from acct
    on conflict do nothing;
    return query select m.line_sub, m.id from members m where m.line_sub = any (p_subs);
end $$;

create function kk_ensure_staff(p_sub text, p_role text, p_merchant bigint, p_org text)
returns bigint language sql as $$
    insert into staff (line_sub, role, merchant_id, org) values (p_sub, p_role, p_merchant, p_org)
    on conflict (line_sub) do update
       set role = excluded.role, merchant_id = excluded.merchant_id, org = excluded.org
    returning id
$$;
