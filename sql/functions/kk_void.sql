-- Void: the reserved points return to "available"; exactly once.
CREATE OR REPLACE FUNCTION public.kk_void(p_pending bigint)
 RETURNS TABLE(balance bigint, available bigint)
 LANGUAGE plpgsql
AS $function$
declare
    p pending_transfers%rowtype;
    r record;
begin
    update pending_transfers set status = 'voided', resolved_at = now()
     where id = p_pending and status = 'pending'
    returning * into p;
    if p.id is null then
        perform kk_refuse('pending_not_open');
    end if;
    update member_balances mb set reserved = mb.reserved - p.amount
     where mb.member_id = p.member_id returning mb.posted, mb.posted - mb.reserved
      into balance, available;
    for r in select * from pending_lots where pending_id = p.id loop
        update lots set reserved = reserved - r.amount
         where member_id = r.member_id and month = r.month and funder_id = r.funder_id;
    end loop;
    return next;
end $function$;
