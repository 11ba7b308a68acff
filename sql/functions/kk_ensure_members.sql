CREATE OR REPLACE FUNCTION public.kk_ensure_members(p_subs text[])
 RETURNS TABLE(line_sub text, member_id bigint)
 LANGUAGE plpgsql
AS $function$
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
end $function$;
