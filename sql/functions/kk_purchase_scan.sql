-- Merchant scan with a purchase: award p_points (already earn rule x tier multiplier) from the
-- merchant's funder, with the member's and the merchant's daily caps and the funder's budget.
-- A suspended merchant is refused; the member QR is claimed for one award within its validity
-- (kk_qr_claim); an offline item (p_ref has scanned_at) also counts against the merchant's
-- offline_daily_cap_points for the day (merchant_offline_daily, migration 0120).
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
