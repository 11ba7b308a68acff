-- Redeem (phase one): reserve the points, take one from stock and the member's limit, issue the
-- coupon under the first free code among p_codes. One round trip.
CREATE OR REPLACE FUNCTION public.kk_redeem_reward(p_member bigint, p_reward bigint, p_codes text[], p_ref jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
    r rewards%rowtype;
    v_tier_ok boolean;
    v_exp timestamptz;
    v_pid bigint;
    v_available bigint;
    v_code text;
    v_cid bigint;
begin
    select * into r from rewards where id = p_reward;
    if r.id is null then
        perform kk_refuse('reward_not_found', 'KK404');
    end if;
    if r.status <> 'active' then
        perform kk_refuse('reward_unavailable');
    end if;
    if r.stock <= 0 then  -- unlocked read: fail fast; the locked update below decides
        perform kk_refuse('out_of_stock');
    end if;
    if r.min_tier is not null then
        select coalesce(mt.threshold_points, 0) >= rt.threshold_points into v_tier_ok
          from members m left join tiers mt on mt.code = m.tier, tiers rt
         where m.id = p_member and rt.code = r.min_tier;
        if not coalesce(v_tier_ok, false) then
            perform kk_refuse('tier_too_low', 'KK403');
        end if;
    end if;
    v_exp := now() + make_interval(days => r.coupon_valid_days);
    select k.pending_id, k.available into v_pid, v_available
      from kk_reserve(p_member, r.cost_points, v_exp,
                      coalesce(p_ref, '{}') || jsonb_build_object('reward_id', r.id), true) k;
    if r.per_member_limit is not null then
        insert into reward_member_counts as c (reward_id, member_id, held)
        values (r.id, p_member, 1)
        on conflict (reward_id, member_id) do update set held = c.held + 1
         where c.held + 1 <= r.per_member_limit;
        if not found then
            perform kk_refuse('reward_limit_reached');
        end if;
    end if;
    update rewards set stock = stock - 1 where id = r.id and stock > 0;
    if not found then
        perform kk_refuse('out_of_stock');
    end if;
    foreach v_code in array p_codes loop
        insert into coupons (code, reward_id, member_id, pending_id, points, expires_at)
        values (v_code, r.id, p_member, v_pid, r.cost_points, v_exp)
        on conflict (code) do nothing
        returning id into v_cid;
        exit when v_cid is not null;
    end loop;
    if v_cid is null then
        raise exception 'coupon code collision' using errcode = '40001';
    end if;
    insert into outbox (topic, member_id, payload) values ('reward.redeemed', p_member,
        jsonb_build_object('coupon_id', v_cid, 'reward_id', r.id, 'points', r.cost_points));
    return jsonb_build_object('redemption_id', v_cid, 'coupon_code', v_code, 'reward_id', r.id,
        'points_reserved', r.cost_points, 'expires_at', v_exp, 'available', v_available - r.cost_points);
end $function$;
