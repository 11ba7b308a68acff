-- Offline scans bounded, suspended merchants stopped (issue #14, points 4 and 5).
--
-- Contract of a member-QR scan, enforced here whatever the API does:
--   * the scan time lies inside the token's validity: iat - skew <= scanned_at <= exp
--     (scanned_at is the device time of an offline scan, now() online); the API passes the
--     verified token's iat/exp and the allowed clock skew in p_ref->'qr', and a scan without
--     them is refused, so a caller that forgets them cannot skip the check;
--   * one member-QR token (its jti) pays at most one award and one redemption, and is used at
--     one merchant only;
--   * a merchant's offline uploads award at most merchants.offline_daily_cap_points per
--     Asia/Bangkok day of the scan (on top of the merchant's daily award cap);
--   * a suspended merchant neither awards nor redeems (403 merchant_suspended).
--
-- Lock order is unchanged: the QR token's row, then what kk_award / kk_post lock (the member's
-- pocket, its lots, sliced accounts); the offline counter is taken after kk_award refused or
-- not, in the same statement, so a refusal anywhere rolls everything back.

alter table qr_uses add column awarded_at timestamptz;
alter table qr_uses add column redeemed_at timestamptz;

alter table merchants add column offline_daily_cap_points bigint not null default 5000
    check (offline_daily_cap_points >= 0);

create table merchant_offline_daily (
    merchant_id bigint not null,
    day date not null,
    points bigint not null default 0 check (points >= 0),
    primary key (merchant_id, day)
);

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

create or replace function kk_purchase_scan(p_member bigint, p_merchant bigint, p_jti text,
                                            p_points bigint, p_day date, p_member_cap bigint,
                                            p_ref jsonb, p_slices int)
returns jsonb language plpgsql as $$
declare
    m record;
    r record;
    v_body jsonb;
begin
    select funder_id, status, offline_daily_cap_points into m from merchants where id = p_merchant;
    if m.funder_id is null then
        perform kk_refuse('merchant_not_found', 'KK404');
    end if;
    if m.status <> 'active' then
        perform kk_refuse('merchant_suspended', 'KK403');
    end if;
    perform kk_qr_claim(p_jti, p_member, p_merchant, 'award', p_ref);
    select * into r from kk_award(p_member, m.funder_id, p_points, 'award', p_day, p_member_cap,
        p_merchant, array['funder:' || m.funder_id], p_ref, true, p_slices);
    if p_ref ? 'scanned_at' then
        insert into merchant_offline_daily as d (merchant_id, day, points)
        values (p_merchant, p_day, p_points)
        on conflict (merchant_id, day) do update set points = d.points + excluded.points
         where d.points + excluded.points <= m.offline_daily_cap_points;
        if not found or p_points > m.offline_daily_cap_points then
            perform kk_refuse('merchant_offline_cap_reached');
        end if;
    end if;
    v_body := jsonb_build_object('action', 'award', 'points', p_points, 'member_id', p_member,
        'transfer_id', r.transfer_id, 'balance', r.balance, 'funder_id', m.funder_id);
    insert into outbox (topic, member_id, payload) values ('points.awarded', p_member,
        v_body || jsonb_build_object('merchant_id', p_merchant, 'ref', p_ref - 'qr', 'at', now()));
    return v_body;
end $$;

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
