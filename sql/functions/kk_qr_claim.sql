-- Claim one use (p_action: 'award' or 'redeem') of a member-QR token at p_merchant.
create or replace function kk_qr_claim(p_jti text, p_member bigint, p_merchant bigint,
                                       p_action text, p_ref jsonb)
returns void language plpgsql as $$
declare
    v_qr jsonb := p_ref -> 'qr';
    v_at timestamptz := coalesce((p_ref ->> 'scanned_at')::timestamptz, now());
    v_iat timestamptz;
    v_exp timestamptz;
    v_skew int;
begin
    if p_jti is null or v_qr is null or v_qr ->> 'iat' is null or v_qr ->> 'exp' is null then
        perform kk_refuse('member_token_invalid', 'KK403');
    end if;
    v_iat := to_timestamp((v_qr ->> 'iat')::double precision);
    v_exp := to_timestamp((v_qr ->> 'exp')::double precision);
    v_skew := coalesce((v_qr ->> 'skew_s')::int, 0);
    if v_at > v_exp then
        perform kk_refuse('member_token_expired', 'KK403');
    end if;
    if v_at < v_iat - make_interval(secs => v_skew) then
        perform kk_refuse('scan_time_before_token');
    end if;
    -- One statement in the common case (a fresh token): the first use inserts the row with
    -- its action stamped; a later use at the same merchant stamps the other action once. The
    -- row lock serialises two counters scanning the same token.
    insert into qr_uses as q (jti, member_id, merchant_id, awarded_at, redeemed_at)
    values (p_jti, p_member, p_merchant,
            case when p_action = 'award' then now() end,
            case when p_action = 'redeem' then now() end)
    on conflict (jti) do update
       set awarded_at = coalesce(q.awarded_at, excluded.awarded_at),
           redeemed_at = coalesce(q.redeemed_at, excluded.redeemed_at)
     where q.merchant_id = excluded.merchant_id
       and case when p_action = 'award' then q.awarded_at is null
                else q.redeemed_at is null end;
    if not found then
        if exists (select 1 from qr_uses where jti = p_jti and merchant_id <> p_merchant) then
            perform kk_refuse('member_token_replayed');
        end if;
        perform kk_refuse('member_token_used');
    end if;
end $$;
