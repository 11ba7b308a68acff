-- Merchant scan with a purchase: award p_points (already earn rule x tier multiplier) from the
-- merchant's funder, with the member's and the merchant's daily caps and the funder's budget.
CREATE OR REPLACE FUNCTION public.kk_purchase_scan(p_member bigint, p_merchant bigint, p_jti text, p_points bigint, p_day date, p_member_cap bigint, p_ref jsonb, p_slices integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
    v_funder bigint;
    r record;
    v_body jsonb;
begin
    if p_jti is not null then
        perform kk_qr_use(p_jti, p_member, p_merchant);
    end if;
    select funder_id into v_funder from merchants where id = p_merchant and status = 'active';
    if v_funder is null then
        perform kk_refuse('merchant_not_found', 'KK404');
    end if;
    select * into r from kk_award(p_member, v_funder, p_points, 'award', p_day, p_member_cap,
        p_merchant, array['funder:' || v_funder], p_ref, true, p_slices);
    v_body := jsonb_build_object('action', 'award', 'points', p_points, 'member_id', p_member,
        'transfer_id', r.transfer_id, 'balance', r.balance, 'funder_id', v_funder);
    insert into outbox (topic, member_id, payload) values ('points.awarded', p_member,
        v_body || jsonb_build_object('merchant_id', p_merchant, 'ref', p_ref, 'at', now()));
    return v_body;
end $function$;
