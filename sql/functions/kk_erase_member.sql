-- PDPA erasure of one member, everywhere a personal value can sit (migration 0122): refused
-- while on hold or banned, so erasure is no way back in for a banned account; the ledger
-- (transfers, lots, balances) is untouched and stays balanced under the pseudonym.
create or replace function kk_erase_member(p_member bigint, p_alias text) returns void
language plpgsql as $$
declare
    v_sub text;
    v_status text;
    v_phones text[];
begin
    select line_sub, status into v_sub, v_status from members where id = p_member for update;
    if v_sub is null then
        perform kk_refuse('member_not_found', 'KK404');
    end if;
    if v_status in ('on_hold', 'banned') then
        perform kk_refuse('erasure_refused_on_hold', 'KK403');
    end if;
    select array_agg(distinct p) filter (where p is not null and p <> '') into v_phones
      from (select phone as p from notify_prefs where member_id = p_member
            union all select phone from otp_challenges where member_id = p_member) x;
    v_phones := coalesce(v_phones, '{}');

    update members set line_sub = p_alias, display_name = '', district_code = null,
                       hold_reason = null, status = 'erased'
     where id = p_member;
    update notify_prefs set phone = null, phone_verified_at = null, line_opt_in = false
     where member_id = p_member;
    update otp_challenges set phone = '' where member_id = p_member;
    update fraud_checkins set lat = null, lon = null, device_id = null where member_id = p_member;
    update checkins set lat = null, lon = null, device_id = null where member_id = p_member;
    update outbox set payload = payload - kk_personal_keys() where member_id = p_member;
    -- The member's own sends (pushes, SMS): recipients and texts go; a pending one is skipped.
    update notify_messages
       set recipients = '[]'::jsonb, messages = '[]'::jsonb,
           status = case when status = 'pending' then 'skipped' else status end
     where member_id = p_member;
    -- Sends to many (multicast) drop this member's LINE id and phones from their recipients.
    update notify_messages set recipients = recipients - v_sub - v_phones
     where member_id is null and (recipients ? v_sub or recipients ?| v_phones);
    update line_webhook_events set user_id = null where user_id = v_sub;
    update fraud_alerts set evidence = jsonb_build_object('erased', true), device_id = null
     where member_id = p_member;
    update fraud_reviews set note = null where member_id = p_member;
    insert into erasures (member_id, pseudonym) values (p_member, p_alias)
    on conflict do nothing;
end $$;
