-- Void an unused coupon at expiry: points back to available, stock and limit back; exactly once.
CREATE OR REPLACE FUNCTION public.kk_void_coupon(p_coupon bigint, p_now timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
declare
    c coupons%rowtype;
begin
    update coupons set status = 'voided', resolved_at = now()
     where id = p_coupon and status = 'issued' and expires_at <= p_now
    returning * into c;
    if c.id is null then
        return false;
    end if;
    perform kk_void(c.pending_id);
    update reward_member_counts set held = held - 1
     where reward_id = c.reward_id and member_id = c.member_id and held > 0;
    update rewards set stock = stock + 1 where id = c.reward_id;
    insert into outbox (topic, member_id, payload) values ('coupon.voided', c.member_id,
        jsonb_build_object('coupon_id', c.id, 'reward_id', c.reward_id, 'points', c.points));
    return true;
end $function$;
