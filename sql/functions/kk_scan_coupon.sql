-- Merchant scan of a coupon (phase two): post the reserved points to the merchant's redemption
-- account. The coupon row lock serialises two counters scanning the same coupon. A suspended
-- merchant is refused (403 merchant_suspended), and the member QR is claimed for one redemption
-- within its validity (kk_qr_claim, migration 0120).
create or replace function kk_scan_coupon(p_code text, p_member bigint, p_merchant bigint,
                                          p_jti text, p_ref jsonb, p_slices int)
returns jsonb language plpgsql as $$
declare
    c coupons%rowtype;
    v_acct bigint;
    v_merchant_status text;
    v_status text;
    v_tid bigint;
begin
    select redemption_account_id, status into v_acct, v_merchant_status
      from merchants where id = p_merchant;
    if v_acct is null then
        perform kk_refuse('merchant_not_found', 'KK404');
    end if;
    if v_merchant_status <> 'active' then
        perform kk_refuse('merchant_suspended', 'KK403');
    end if;
    perform kk_qr_claim(p_jti, p_member, p_merchant, 'redeem', p_ref);
    select * into c from coupons where code = p_code for update;
    if c.id is null then
        perform kk_refuse('coupon_not_found', 'KK404');
    end if;
    if c.member_id <> p_member then
        perform kk_refuse('coupon_not_owned', 'KK403');
    end if;
    if not exists (select 1 from reward_merchants where reward_id = c.reward_id and merchant_id = p_merchant) then
        perform kk_refuse('coupon_wrong_merchant', 'KK403');
    end if;
    select status into v_status from members where id = p_member;
    if v_status <> 'active' then
        perform kk_refuse('member_on_hold', 'KK403');
    end if;
    if c.status = 'redeemed' then
        perform kk_refuse('coupon_already_used');
    elsif c.status = 'voided' then
        perform kk_refuse('coupon_void');
    elsif c.expires_at <= now() then
        perform kk_refuse('coupon_expired');
    end if;
    select k.transfer_id into v_tid from kk_post(c.pending_id, v_acct,
        coalesce(p_ref, '{}') || jsonb_build_object('coupon_id', c.id, 'merchant_id', p_merchant,
                                                    'reward_id', c.reward_id), p_slices) k;
    update coupons set status = 'redeemed', resolved_at = now(), redeemed_merchant_id = p_merchant,
                       transfer_id = v_tid
     where id = c.id;
    insert into outbox (topic, member_id, payload) values ('coupon.redeemed', p_member,
        jsonb_build_object('coupon_id', c.id, 'merchant_id', p_merchant, 'points', c.points,
                           'transfer_id', v_tid));
    return jsonb_build_object('action', 'redeem', 'points', c.points, 'member_id', p_member,
        'coupon_id', c.id, 'reward_id', c.reward_id, 'transfer_id', v_tid);
end $$;
